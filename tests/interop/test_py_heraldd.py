#!/usr/bin/python3
"""Python grpcio against heraldd: health, reflection v1 and v1alpha, unknown methods.

Reflection must list exactly Herald's four services, Health and both reflection
services, and every symbol of every service (the service, its methods, their
input and output types) must resolve through file_containing_symbol, on a fresh
stream, to files that load into an empty descriptor pool.
"""

import time
import unittest

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

import interop_common as ic

P = None
SRV = None
CH = None


def setUpModule():
    global P, SRV, CH
    P = ic.Protos()
    SRV = ic.Server([ic.bin_path("heraldd")], port_file=True, env=ic.HERALDD_ENV)
    CH = grpc.insecure_channel(SRV.target)
    grpc.channel_ready_future(CH).result(timeout=10)


def tearDownModule():
    try:
        if CH is not None:
            CH.close()
        if SRV is not None:
            rc = SRV.stop(timeout_s=30)
            if rc != 0:
                raise AssertionError("heraldd exited %r after SIGTERM\n%s" % (rc, SRV.log_tail()))
            SRV.cleanup()
    finally:
        if P is not None:
            P.cleanup()


def check(name, timeout=5):
    h = P.health
    return ic.unary(CH, ic.HEALTH + "Check", h.HealthCheckRequest, h.HealthCheckResponse)(
        h.HealthCheckRequest(service=name), timeout=timeout)


class Reflector:
    """One reflection version: each ask() is a fresh ServerReflectionInfo stream."""

    def __init__(self, version):
        self.pb = P.refl[version]
        path = ic.REFLECTION_V1 if version == "v1" else ic.REFLECTION_V1ALPHA
        self.call = ic.bidi(CH, path, self.pb.ServerReflectionResponse)

    def ask(self, *reqs, timeout=10):
        msgs = [self.pb.ServerReflectionRequest(**r) for r in reqs]
        return list(self.call(iter(msgs), timeout=timeout))

    def files_for(self, symbol):
        (resp,) = self.ask({"file_containing_symbol": symbol})
        if resp.HasField("error_response"):
            raise AssertionError("%s: error %d %s" % (symbol, resp.error_response.error_code,
                                                      resp.error_response.error_message))
        return list(resp.file_descriptor_response.file_descriptor_proto)


def load_pool(blobs):
    """An empty pool holding these serialized FileDescriptorProtos, all built.

    The C++ pool builds each file as it is added, so files go in dependency
    order; a dependency missing from blobs is an error."""
    pool = descriptor_pool.DescriptorPool()
    todo = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in blobs]
    done = set()
    while todo:
        ready = [f for f in todo if all(d in done for d in f.dependency)]
        if not ready:
            missing = sorted({d for f in todo for d in f.dependency if d not in done} -
                             {f.name for f in todo})
            raise AssertionError("files %s need %s, which were not sent" %
                                 ([f.name for f in todo], missing))
        for f in ready:
            pool.Add(f)  # raises when the file does not build
            done.add(f.name)
            pool.FindFileByName(f.name)
        todo = [f for f in todo if f.name not in done]
    return pool


class Health(unittest.TestCase):
    def test_check_serving(self):
        S = P.health.HealthCheckResponse
        for name in ["", "liveness"]:
            with self.subTest(name=name):
                self.assertEqual(check(name).status, S.SERVING)
        # readiness and the services may wait for the database: bounded poll.
        for name in ["readiness"] + ic.HERALD_SERVICES:
            with self.subTest(name=name):
                deadline = time.monotonic() + 20
                st = check(name).status
                while st != S.SERVING and time.monotonic() < deadline:
                    time.sleep(0.2)
                    st = check(name).status
                self.assertEqual(st, S.SERVING)

    def test_check_unknown_is_not_found(self):
        with self.assertRaises(grpc.RpcError) as cm:
            check("herald.v1.NoSuchService")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_watch_unknown_stays_open(self):
        S = P.health.HealthCheckResponse
        h = P.health
        t0 = time.monotonic()
        call = ic.server_stream(CH, ic.HEALTH + "Watch", h.HealthCheckResponse)(
            h.HealthCheckRequest(service="herald.v1.NoSuchService"), timeout=2.5)
        self.assertEqual(next(call).status, S.SERVICE_UNKNOWN)
        with self.assertRaises(grpc.RpcError) as cm:
            next(call)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertGreaterEqual(time.monotonic() - t0, 2.0)

    def test_watch_current_status(self):
        S = P.health.HealthCheckResponse
        h = P.health
        call = ic.server_stream(CH, ic.HEALTH + "Watch", h.HealthCheckResponse)(
            h.HealthCheckRequest(service="liveness"), timeout=5)
        self.assertEqual(next(call).status, S.SERVING)
        call.cancel()


class Errors(unittest.TestCase):
    def test_unknown_method_is_unimplemented_fast(self):
        check("")
        for path in ["/herald.v1.ContentService/NoSuchMethod", "/no.such.Service/Method"]:
            with self.subTest(path=path):
                t0 = time.monotonic()
                with self.assertRaises(grpc.RpcError) as cm:
                    ic.unary(CH, path)(b"", timeout=5)
                ms = (time.monotonic() - t0) * 1000
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
                self.assertLess(ms, 100.0)

    def test_garbage_payload_is_internal(self):
        with self.assertRaises(grpc.RpcError) as cm:
            ic.unary(CH, ic.HEALTH + "Check")(b"\x0f\xff\xff\xff\xff", timeout=5)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INTERNAL)


class Reflection(unittest.TestCase):
    def _versions(self):
        for v in ("v1", "v1alpha"):
            with self.subTest(version=v):
                yield Reflector(v)

    def test_list_services_exact(self):
        for r in self._versions():
            (resp,) = r.ask({"list_services": ""})
            names = sorted(s.name for s in resp.list_services_response.service)
            self.assertEqual(names, ic.EXPECTED_SERVICES)

    def test_every_symbol_resolves(self):
        for r in self._versions():
            (resp,) = r.ask({"list_services": ""})
            services = [s.name for s in resp.list_services_response.service]
            checked = 0
            for svc_name in services:
                pool = load_pool(r.files_for(svc_name))
                svc = pool.FindServiceByName(svc_name)
                self.assertGreater(len(svc.methods), 0, svc_name)
                for m in svc.methods:
                    symbols = [m.full_name, m.input_type.full_name, m.output_type.full_name]
                    for sym in symbols:
                        p = load_pool(r.files_for(sym))
                        if sym == m.full_name:
                            found = p.FindMethodByName(sym)
                        else:
                            found = p.FindMessageTypeByName(sym)
                        self.assertEqual(found.full_name, sym)
                        checked += 1
            # 4 Herald services with several methods each, plus health and reflection.
            self.assertGreater(checked, 30)

    def test_file_by_filename_and_errors_keep_stream_open(self):
        for r in self._versions():
            resps = r.ask(
                {"file_containing_symbol": "herald.v1.NoSuchThing"},
                {"file_by_filename": "grpc/health/v1/health.proto"},
                {"file_by_filename": "no/such/file.proto"},
                {"list_services": ""},
            )
            self.assertEqual(len(resps), 4)
            self.assertTrue(resps[0].HasField("error_response"))
            self.assertEqual(resps[0].error_response.error_code,
                             grpc.StatusCode.NOT_FOUND.value[0])
            files = resps[1].file_descriptor_response.file_descriptor_proto
            pool = load_pool(files)
            self.assertEqual(pool.FindServiceByName("grpc.health.v1.Health").name, "Health")
            self.assertTrue(resps[2].HasField("error_response"))
            self.assertEqual(resps[2].error_response.error_code,
                             grpc.StatusCode.NOT_FOUND.value[0])
            self.assertEqual(len(resps[3].list_services_response.service),
                             len(ic.EXPECTED_SERVICES))

    def test_dependencies_are_sent(self):
        for r in self._versions():
            files = r.files_for("herald.v1.ContentService")
            names = [descriptor_pb2.FileDescriptorProto.FromString(b).name for b in files]
            # The requested file comes first; its imports follow.
            fdp = descriptor_pb2.FileDescriptorProto.FromString(files[0])
            self.assertIn("ContentService", [s.name for s in fdp.service])
            for dep in fdp.dependency:
                self.assertIn(dep, names)


if __name__ == "__main__":
    ic.run_main()
