#!/usr/bin/python3
"""Hostile input against a running heraldd (issue 9; conventions §3, §10,
§11; §16 T10), with the services fixture's PostgreSQL and Redis.

Requests are built with python3-protobuf, then edited as bytes where
protobuf would refuse (invalid UTF-8, NUL). Checked, with each figure
printed as `figure: <name> <value>` for the note:
  - invalid UTF-8 and an embedded NUL in a string: INVALID_ARGUMENT;
  - an unknown enum number: INVALID_ARGUMENT;
  - undecodable bytes: INTERNAL (never a crash);
  - exactly max_recv_bytes passes the transport; max + 1: RESOURCE_EXHAUSTED;
  - amplification: ~2 M empty repeated strings just under a 4 MiB limit (a
    second heraldd with max_recv_bytes=4MiB) and ~0.5 M under the default 1
    MiB: INVALID_ARGUMENT or RESOURCE_EXHAUSTED, RSS growth (VmHWM and
    VmRSS from /proc) < 64 MB;
  - SQL-shaped and odd strings round-trip byte for byte through a profile's
    display_name, and the schema (pg_dump -s) is unchanged;
  - 500 idle TCP connections (and 50 that stop mid-preface) are closed by
    the server after its handshake timeout and its fd count returns to the
    baseline (± 5);
  - oversized metadata is refused without harm;
  - the server never crashes (same PID, SERVING, exit 0 on SIGTERM) and its
    log stays one JSON object per line.
"""

import hashlib
import os
import socket
import subprocess
import threading
import time
import unittest
import uuid

import grpc

import sec_common as sc  # noqa: I100 (puts tests/interop on sys.path)
import interop_common as ic  # noqa: E402

HP = None
SRV = None  # default limits (1 MiB)
CH = None
MAX = 1 << 20
HANDSHAKE_TIMEOUT_S = 10  # rpc_options.handshake_timeout_ms default


def figure(name, value):
    print("figure: %s %s" % (name, value), flush=True)


def setUpModule():
    global HP, SRV, CH
    if "DATABASE_URL" not in os.environ:
        raise unittest.SkipTest("needs the services fixture (DATABASE_URL)")
    HP = sc.HeraldProtos()
    SRV = sc.Heraldd(env={"ASAN_OPTIONS": asan_options()})
    CH = grpc.insecure_channel(SRV.target, options=[("grpc.max_send_message_length", -1)])
    sc.wait_serving(CH)
    sc.wait_serving(CH, service="readiness", timeout_s=60)


def tearDownModule():
    try:
        if CH is not None:
            CH.close()
        if SRV is not None:
            pid_alive = SRV.alive()
            rc = SRV.stop()
            ok, bad = sc.json_lines_ok(SRV.log_bytes())
            lines = SRV.log_bytes().count(b"\n")
            figure("log_lines_all_json", "%s (%d lines)" % (ok, lines))
            if not pid_alive or rc != 0:
                raise AssertionError("heraldd crashed or exited %r:\n%s" %
                                     (rc, SRV.log_text()[-3000:]))
            if not ok:
                raise AssertionError("log line is not one JSON object: %r" % bad)
            SRV.cleanup()
    finally:
        if HP is not None:
            HP.cleanup()


def raw_call(ch, path, data, timeout=20, metadata=None):
    """(code, details) of a unary call with raw request bytes."""
    try:
        ch.unary_unary(path)(data, timeout=timeout, metadata=metadata)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def platform_value():
    return [v for n, v in HP.common.Platform.items() if not n.endswith("UNSPECIFIED")][0]


def profile_req(pid, display_name="x", **kw):
    p = HP.ops.Profile(profile_id=pid, display_name=display_name, platform=platform_value(), **kw)
    return HP.ops.CreateProfileRequest(request_id=str(uuid.uuid4()), profile=p)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def ld(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def new_id():
    return "hostile-" + uuid.uuid4().hex[:12]


class Strings(unittest.TestCase):
    def edited(self, replacement):
        """A CreateProfile whose display_name bytes are replaced (same length)."""
        marker = "M" * len(replacement)
        data = profile_req(new_id(), display_name=marker).SerializeToString()
        self.assertEqual(data.count(marker.encode()), 1)
        return data.replace(marker.encode(), replacement)

    def test_invalid_utf8(self):
        for bad in (b"\xff\xfeAB", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"):
            code, msg = raw_call(CH, sc.OPS + "CreateProfile", self.edited(bad))
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, "%r: %s" % (bad, msg))
            self.assertIn("UTF-8", msg)

    def test_embedded_nul(self):
        for bad in (b"ab\x00cd", b"\x00", b"abc\x00"):
            code, msg = raw_call(CH, sc.OPS + "CreateProfile", self.edited(bad))
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, "%r: %s" % (bad, msg))
            self.assertIn("NUL", msg)

    def test_unknown_enum(self):
        req = profile_req(new_id())
        req.profile.ClearField("platform")
        # platform is field 3 of Profile (a varint): 999 names no value
        prof = req.profile.SerializeToString() + varint(3 << 3) + varint(999)
        raw = ld(1, req.request_id.encode()) + ld(2, prof)
        code, msg = raw_call(CH, sc.OPS + "CreateProfile", raw)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, msg)
        # ListProfiles' optional filters too
        code, msg = raw_call(CH, sc.OPS + "ListProfiles", varint(1 << 3) + varint(12345))
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, msg)

    def test_undecodable_bytes(self):
        for junk in (b"\xff\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x0b", b"\x12\x05ab"):
            code, msg = raw_call(CH, sc.OPS + "GetProfile", junk)
            self.assertEqual(code, grpc.StatusCode.INTERNAL, "%r: %s" % (junk, msg))

    def test_sql_shaped_round_trip(self):
        names = [
            "Robert'); DROP TABLE profiles;--",
            "' OR '1'='1' --",
            "\"; SELECT pg_sleep(10); --",
            "$1 $2 %s %n %x {0} ${x}",
            "back\\slash \\x00 \\' E'\\\\'",
            "tab\tand\nnewline\rcr",
            "unicode é 😀 ﷽ \u202e rtl",
            "admin'/*",
            "1; COPY profiles TO '/tmp/x'",
        ]
        schema_before = pg_schema_hash()
        for name in names:
            pid = new_id()
            code, msg = raw_call(CH, sc.OPS + "CreateProfile",
                                 profile_req(pid, display_name=name).SerializeToString())
            self.assertEqual(code, grpc.StatusCode.OK, "%r: %s" % (name, msg))
            got = CH.unary_unary(sc.OPS + "GetProfile",
                                 request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=HP.ops.Profile.FromString)(
                HP.ops.GetProfileRequest(profile_id=pid), timeout=10)
            self.assertEqual(got.display_name.encode("utf-8"), name.encode("utf-8"))
        schema_after = pg_schema_hash()
        figure("sql_shaped_round_trip", "%d/%d" % (len(names), len(names)))
        if schema_before is not None:
            self.assertEqual(schema_before, schema_after)
            figure("pg_dump_schema_sha256_unchanged", schema_after[:16])


def pg_schema_hash():
    svc = os.environ.get("HERALD_TEST_SERVICES_DIR")
    if not svc:
        return None
    env = {}
    with open(os.path.join(svc, "env")) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            env[k] = v.strip("'")
    pg_dump = os.path.join(env["PG_BINDIR"], "pg_dump")
    out = subprocess.run([pg_dump, "-s", "-h", env["PGHOST"], "-U", "herald", "herald"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=True)
    # pg_dump >= 15.14 wraps its output in \restrict/\unrestrict with a random
    # key on every run: not part of the schema.
    lines = [ln for ln in out.stdout.split(b"\n")
             if not ln.startswith((b"\\restrict ", b"\\unrestrict "))]
    return hashlib.sha256(b"\n".join(lines)).hexdigest()


class Sizes(unittest.TestCase):
    def padded_get(self, total):
        """A GetProfileRequest of exactly total bytes (unknown field 99)."""
        head = ld(1, b"some-profile")
        for n in range(total, 0, -1):
            pad = ld(99, b"a" * n)
            if len(head) + len(pad) <= total:
                pad = ld(99, b"a" * (n + total - len(head) - len(pad)))
                if len(head) + len(pad) == total:
                    return head + pad
        raise AssertionError("cannot pad to %d" % total)

    def test_max_and_max_plus_one(self):
        exact = self.padded_get(MAX)
        self.assertEqual(len(exact), MAX)
        code, msg = raw_call(CH, sc.OPS + "GetProfile", exact)
        self.assertNotEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, msg)
        over = self.padded_get(MAX + 1)
        code, msg = raw_call(CH, sc.OPS + "GetProfile", over)
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, msg)
        figure("max_recv_bytes_plus_one", code.name)
        self.assertEqual(sc.health_status(CH), 1)

    def test_oversized_metadata(self):
        # its own connection: core may close the connection that sent it
        with grpc.insecure_channel(SRV.target) as ch:
            code, msg = raw_call(ch, sc.OPS + "GetProfile", ld(1, b"x"),
                                 metadata=[("x-junk", "v" * 40000)])
        self.assertNotEqual(code, grpc.StatusCode.OK)
        figure("metadata_40KB", code.name)
        self.assertTrue(SRV.alive())
        self.assertEqual(sc.health_status(CH), 1)


def amplify(srv, limit, label):
    """Sends CreateProfile{profile{topics: N x ""}} of nearly `limit` bytes
    five times; returns the codes, and checks RSS growth."""
    head = ld(1, b"amp")
    n = (limit - 16 - len(head)) // 2
    prof = head + b"\x62\x00" * n
    data = ld(2, prof)
    assert len(data) <= limit, (len(data), limit)
    ch = grpc.insecure_channel(srv.target, options=[("grpc.max_send_message_length", -1)])
    try:
        sc.wait_serving(ch)
        rss0 = srv.status_kb("VmRSS")
        hwm0 = srv.status_kb("VmHWM")
        codes = []
        for _ in range(5):
            t0 = time.monotonic()
            code, msg = raw_call(ch, sc.OPS + "CreateProfile", data, timeout=30)
            codes.append((code.name, round((time.monotonic() - t0) * 1000)))
        rss1 = srv.status_kb("VmRSS")
        hwm1 = srv.status_kb("VmHWM")
    finally:
        ch.close()
    figure("amplify_%s_strings" % label, n)
    figure("amplify_%s_codes_ms" % label, codes)
    figure("amplify_%s_VmHWM_growth_MB" % label, "%.1f" % ((hwm1 - hwm0) / 1024))
    figure("amplify_%s_VmRSS_growth_MB" % label, "%.1f" % ((rss1 - rss0) / 1024))
    return [c for c, _ in codes], (hwm1 - hwm0) / 1024, (rss1 - rss0) / 1024


def asan_options():
    """ASAN_OPTIONS for a heraldd whose RSS is measured: in a sanitizer build
    ASan's quarantine keeps freed memory (256 MB by default) resident, which
    would hide what the server itself holds. No effect in a normal build."""
    cur = os.environ.get("ASAN_OPTIONS", "")
    return (cur + ":" if cur else "") + "quarantine_size_mb=1"


class Amplification(unittest.TestCase):
    def check(self, srv, limit, label):
        codes, hwm, rss = amplify(srv, limit, label)
        for c in codes:
            self.assertIn(c, ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"))
        self.assertLess(hwm, 64)
        self.assertLess(rss, 64)
        self.assertTrue(srv.alive())

    def test_half_million_under_1MiB(self):
        self.check(SRV, MAX, "1MiB")

    def test_two_million_under_4MiB(self):
        srv = sc.Heraldd(env={"HERALD_MAX_RECV_BYTES": "4MiB", "ASAN_OPTIONS": asan_options()})
        try:
            self.check(srv, 4 * MAX, "4MiB")
        finally:
            self.assertEqual(srv.stop(), 0, srv.log_text()[-2000:])
            srv.cleanup()


class Connections(unittest.TestCase):
    def test_idle_connections_closed(self):
        base = SRV.fd_count()
        socks = []
        try:
            for _ in range(500):
                s = socket.create_connection(("127.0.0.1", SRV.port), timeout=5)
                socks.append(s)
            # 50 more that send half of the HTTP/2 preface and stall
            for _ in range(50):
                s = socket.create_connection(("127.0.0.1", SRV.port), timeout=5)
                s.sendall(b"PRI * HTTP/2.0\r\n")
                socks.append(s)
            t0 = time.monotonic()
            deadline = t0 + 10
            while SRV.fd_count() < base + 500 and time.monotonic() < deadline:
                time.sleep(0.05)
            peak = SRV.fd_count()
            figure("idle_conns_fds_base_peak", "%d %d" % (base, peak))
            self.assertGreaterEqual(peak, base + 500)
            # still serving while they are open
            self.assertEqual(sc.health_status(CH), 1)
            # the server closes each one: a read sees EOF (or a reset)
            closed = [False] * len(socks)
            last_close = None
            deadline = t0 + HANDSHAKE_TIMEOUT_S + 20
            for s in socks:
                s.setblocking(False)
            while not all(closed) and time.monotonic() < deadline:
                for i, s in enumerate(socks):
                    if closed[i]:
                        continue
                    try:
                        data = s.recv(4096)
                        if data == b"":
                            closed[i] = True
                    except BlockingIOError:
                        continue
                    except OSError:
                        closed[i] = True
                    if closed[i]:
                        last_close = time.monotonic() - t0
                time.sleep(0.1)
            n_closed = sum(closed)
            figure("idle_conns_closed_by_server", "%d/%d in %.1f s" %
                   (n_closed, len(socks), last_close or -1))
            self.assertEqual(n_closed, len(socks))
        finally:
            for s in socks:
                s.close()
        deadline = time.monotonic() + 10
        while SRV.fd_count() > base + 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        figure("idle_conns_fds_after", "%d (base %d)" % (SRV.fd_count(), base))
        self.assertLessEqual(abs(SRV.fd_count() - base), 5)
        self.assertEqual(sc.health_status(CH), 1)


class Concurrency(unittest.TestCase):
    def test_parallel_garbage_keeps_serving(self):
        """8 threads x 200 hostile calls while Check stays SERVING."""
        junk = [b"\xff" * 10, ld(1, b"\xff\xfe"), ld(1, b"a\x00b"), b"", ld(99, b"z" * 5000)]
        errors = []

        def worker(k):
            try:
                with grpc.insecure_channel(SRV.target) as ch:
                    for i in range(200):
                        raw_call(ch, sc.OPS + "GetProfile", junk[(i + k) % len(junk)], timeout=10)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        self.assertEqual(errors, [])
        self.assertTrue(SRV.alive())
        self.assertEqual(sc.health_status(CH), 1)


if __name__ == "__main__":
    sc.run_main()
