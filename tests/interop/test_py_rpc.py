#!/usr/bin/python3
"""Python grpcio against rpc_testd: the runtime's behaviour, seen by a real client.

rpc_testd serves herald.test.v1.TestService (tests/proto/herald/test/v1/test.proto)
and grpc.health.v1.Health. One server for the whole module; it must exit 0 on
SIGTERM at the end.
"""

import queue
import threading
import time
import unittest

import grpc

import interop_common as ic

P = None
SRV = None
CH = None
SVC = "herald.test.v1.TestService"


def setUpModule():
    global P, SRV, CH
    P = ic.Protos()
    SRV = ic.Server([ic.bin_path("rpc_testd"), "--workers", "2", "--grace-ms", "3000"],
                    port_file=True)
    CH = grpc.insecure_channel(SRV.target)
    grpc.channel_ready_future(CH).result(timeout=10)


def tearDownModule():
    try:
        if CH is not None:
            CH.close()
        if SRV is not None:
            rc = SRV.stop(timeout_s=10)
            if rc != 0:
                raise AssertionError("rpc_testd exited %r after SIGTERM\n%s" % (rc, SRV.log_tail()))
            SRV.cleanup()
    finally:
        if P is not None:
            P.cleanup()


def check(name, timeout=5):
    h = P.health
    return ic.unary(CH, ic.HEALTH + "Check", h.HealthCheckRequest, h.HealthCheckResponse)(
        h.HealthCheckRequest(service=name), timeout=timeout)


def echo(timeout=5, metadata=None, **kw):
    t = P.test
    return ic.unary(CH, ic.TEST + "Echo", t.EchoRequest, t.EchoReply).with_call(
        t.EchoRequest(**kw), timeout=timeout, metadata=metadata)


class Health(unittest.TestCase):
    def test_check_serving(self):
        S = P.health.HealthCheckResponse
        for name in ["", "liveness", "readiness", SVC]:
            with self.subTest(name=name):
                self.assertEqual(check(name).status, S.SERVING)

    def test_check_unknown_is_not_found(self):
        with self.assertRaises(grpc.RpcError) as cm:
            check("no.such.Service")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_watch_sees_pushed_changes(self):
        S = P.health.HealthCheckResponse
        h = P.health
        call = ic.server_stream(CH, ic.HEALTH + "Watch", h.HealthCheckResponse)(
            h.HealthCheckRequest(service=SVC), timeout=20)
        try:
            got = []
            self.assertEqual(next(call).status, S.SERVING)
            for want in (S.NOT_SERVING, S.SERVING):
                name = S.ServingStatus.Name(want)
                reply, _ = echo(message="health:%s=%s" % (SVC, name))
                t0 = time.monotonic()
                msg = next(call)
                got.append(msg.status)
                self.assertEqual(msg.status, want)
                self.assertLess(time.monotonic() - t0, 2.0)
                self.assertEqual(check(SVC).status, want)
        finally:
            call.cancel()
            echo(message="health:%s=SERVING" % SVC)

    def test_watch_unknown_stays_open(self):
        S = P.health.HealthCheckResponse
        h = P.health
        t0 = time.monotonic()
        call = ic.server_stream(CH, ic.HEALTH + "Watch", h.HealthCheckResponse)(
            h.HealthCheckRequest(service="no.such.Service"), timeout=2.5)
        self.assertEqual(next(call).status, S.SERVICE_UNKNOWN)
        with self.assertRaises(grpc.RpcError) as cm:
            next(call)
        elapsed = time.monotonic() - t0
        # Only our own deadline ended it: the server kept the stream open.
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertGreaterEqual(elapsed, 2.0)


class Errors(unittest.TestCase):
    def test_unknown_method_is_unimplemented_fast(self):
        check("")  # connection up, so only the call is timed
        for path in ["/herald.test.v1.TestService/NoSuchMethod", "/no.such.Service/Method",
                     ic.TEST + "Unbuilt"]:
            with self.subTest(path=path):
                t0 = time.monotonic()
                with self.assertRaises(grpc.RpcError) as cm:
                    ic.unary(CH, path)(b"", timeout=5)
                ms = (time.monotonic() - t0) * 1000
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
                self.assertLess(ms, 100.0)

    def test_deadline_shorter_than_handler(self):
        for detach in (False, True):
            with self.subTest(detach=detach):
                t0 = time.monotonic()
                with self.assertRaises(grpc.RpcError) as cm:
                    echo(timeout=0.3, message="slow", sleep_ms=1500, detach=detach)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
                self.assertLess(time.monotonic() - t0, 1.0)
        # The worker is usable again afterwards.
        reply, _ = echo(message="after")
        self.assertEqual(reply.message, "after")

    def test_handler_error_with_message_and_trailer(self):
        with self.assertRaises(grpc.RpcError) as cm:
            echo(fail_code=grpc.StatusCode.FAILED_PRECONDITION.value[0],
                 fail_message="post already published",
                 trailer_key="x-herald-test", trailer_value="trailer-value-1")
        e = cm.exception
        self.assertEqual(e.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(e.details(), "post already published")
        self.assertEqual(ic.trailer(e, "x-herald-test"), "trailer-value-1")

    def test_garbage_payload_is_internal(self):
        # Field 1 with wire type 7 does not exist: not a protobuf message.
        for path in [ic.TEST + "Echo", ic.HEALTH + "Check"]:
            with self.subTest(path=path):
                with self.assertRaises(grpc.RpcError) as cm:
                    ic.unary(CH, path)(b"\x0f\xff\xff\xff\xff", timeout=5)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.INTERNAL)


class Calls(unittest.TestCase):
    def test_echo_metadata_deadline_request_id(self):
        reply, call = echo(timeout=5, message="héllo", metadata=[
            ("x-test", "meta-1"), ("x-request-id", "req-abc-123")])
        self.assertEqual(reply.message, "héllo")
        self.assertEqual(reply.metadata_echo, "meta-1")
        self.assertEqual(reply.request_id, "req-abc-123")
        self.assertGreater(reply.remaining_ms, 3000)
        self.assertLessEqual(reply.remaining_ms, 5100)  # grpc-timeout rounds up
        self.assertEqual(ic.trailer(call, "x-request-id"), "req-abc-123")
        self.assertEqual(call.code(), grpc.StatusCode.OK)

    def test_detached_reply(self):
        t0 = time.monotonic()
        reply, _ = echo(message="later", sleep_ms=100, detach=True)
        self.assertEqual(reply.message, "later")
        self.assertGreaterEqual(time.monotonic() - t0, 0.09)

    def test_large_reply(self):
        reply, _ = echo(message="big", reply_bytes=200000)
        self.assertEqual(len(reply.padding), 200000)

    def test_server_streaming(self):
        t = P.test
        stream = ic.server_stream(CH, ic.TEST + "ServerStream", t.EchoReply)
        call = stream(t.StreamRequest(count=5, interval_ms=10), timeout=10)
        msgs = list(call)
        self.assertEqual(len(msgs), 5)
        self.assertEqual(call.code(), grpc.StatusCode.OK)

        call = stream(t.StreamRequest(count=5, interval_ms=10, fail_after=2,
                                      fail_code=grpc.StatusCode.ABORTED.value[0]), timeout=10)
        got = []
        with self.assertRaises(grpc.RpcError) as cm:
            for m in call:
                got.append(m)
        self.assertEqual(len(got), 2)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.ABORTED)

    def test_client_streaming(self):
        t = P.test
        collect = ic.client_stream(CH, ic.TEST + "Collect", t.EchoReply)
        reply = collect(iter([t.EchoRequest(message=s) for s in ("ab", "cd", "ef")]),
                        timeout=10)
        self.assertEqual(reply.message, "abcdef")

    def test_bidi_ping_pong(self):
        t = P.test
        out = queue.Queue()

        def requests():
            while True:
                m = out.get(timeout=10)
                if m is None:
                    return
                yield m

        call = ic.bidi(CH, ic.TEST + "Chat", t.EchoReply)(requests(), timeout=10)
        # One at a time: each reply must arrive before the next request is sent.
        for i in range(5):
            out.put(t.EchoRequest(message="ping-%d" % i))
            self.assertEqual(next(call).message, "ping-%d" % i)
        out.put(None)
        self.assertEqual(list(call), [])
        self.assertEqual(call.code(), grpc.StatusCode.OK)

    def test_concurrent_calls(self):
        errors = []

        def worker(n):
            try:
                for i in range(20):
                    reply, _ = echo(message="%d-%d" % (n, i))
                    if reply.message != "%d-%d" % (n, i):
                        errors.append(reply.message)
            except grpc.RpcError as e:
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=30)
        self.assertEqual(errors, [])


if __name__ == "__main__":
    ic.run_main()
