#!/usr/bin/python3
"""TLS and mTLS on heraldd's gRPC port (issue 9; conventions §16 T11).

A CA, a server certificate (SAN IP:127.0.0.1, DNS:localhost) and client
certificates (valid, expired, from another CA) are made with openssl in a
temp dir. heraldd serves with tls.cert/tls.key/tls.client_ca (mTLS) and a
plaintext health-only listener (health_listen). Checked:
  - a valid client certificate: Health/Check SERVING;
  - a client certificate from the wrong CA, an expired one, and none at all:
    the handshake fails (UNAVAILABLE) and the server stays healthy (a valid
    client works right after each, same PID);
  - a client that does not trust the server's CA fails;
  - plaintext h2c against the TLS port fails;
  - the plaintext health-only port answers SERVING without TLS or token, and
    serves nothing else (herald.v1 methods: UNIMPLEMENTED);
  - TLS without client_ca (server-auth only) accepts a client without a
    certificate;
  - the herald CLI with --cacert/--cert/--key works, and without --cert fails.
"""

import os
import subprocess
import time
import unittest

import grpc

import sec_common as sc  # noqa: I100 (puts tests/interop on sys.path)
import interop_common as ic  # noqa: E402

PKI = None
SRV = None  # mTLS + health listener
HEALTH_PORT = None


def setUpModule():
    global PKI, SRV, HEALTH_PORT
    PKI = sc.Pki()
    HEALTH_PORT = ic.free_port()
    SRV = sc.Heraldd(env={
        "HERALD_TLS_CERT": PKI.path("server.crt"),
        "HERALD_TLS_KEY": PKI.path("server.key"),
        "HERALD_TLS_CLIENT_CA": PKI.path("ca.crt"),
        "HERALD_HEALTH_LISTEN": "127.0.0.1:%d" % HEALTH_PORT,
    })
    with sc.tls_channel(SRV.target, PKI, client="client") as ch:
        sc.wait_serving(ch)


def tearDownModule():
    try:
        if SRV is not None:
            rc = SRV.stop()
            if rc != 0:
                raise AssertionError("heraldd exited %r:\n%s" % (rc, SRV.log_text()[-3000:]))
            ok, bad = sc.json_lines_ok(SRV.log_bytes())
            if not ok:
                raise AssertionError("log line is not one JSON object: %r" % bad)
            # gRPC core's own messages (refused handshakes) come through the
            # log too (rpc.c core_log): nothing in core's format on stderr.
            foreign = sc.foreign_lines(SRV.stderr_bytes())
            core = SRV.log_bytes().count(b'"component":"grpc-core"')
            print("heraldd: %d grpc-core line(s) in the JSON log, %d non-JSON on stderr" %
                  (core, len(foreign)))
            if foreign:
                raise AssertionError("non-JSON lines on stderr: %r" % foreign[:3])
            SRV.cleanup()
    finally:
        if PKI is not None:
            PKI.cleanup()


def check_with(ch, timeout=3.0):
    return sc.health_status(ch, timeout=timeout)


class MutualTls(unittest.TestCase):
    def assert_still_healthy(self):
        self.assertTrue(SRV.alive(), "heraldd died")
        with sc.tls_channel(SRV.target, PKI, client="client") as ch:
            self.assertEqual(check_with(ch), 1)

    def assert_handshake_fails(self, ch):
        t0 = time.monotonic()
        with self.assertRaises(grpc.RpcError) as cm:
            check_with(ch)
        took = time.monotonic() - t0
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE,
                         cm.exception.details())
        print("  handshake refused in %.0f ms: %s" % (took * 1000, cm.exception.details()))

    def test_valid_client(self):
        with sc.tls_channel(SRV.target, PKI, client="client") as ch:
            self.assertEqual(check_with(ch), 1)

    def test_wrong_ca_client(self):
        with sc.tls_channel(SRV.target, PKI, client="client_wrong_ca") as ch:
            self.assert_handshake_fails(ch)
        self.assert_still_healthy()

    def test_expired_client(self):
        with sc.tls_channel(SRV.target, PKI, client="client_expired") as ch:
            self.assert_handshake_fails(ch)
        self.assert_still_healthy()

    def test_missing_client_cert(self):
        with sc.tls_channel(SRV.target, PKI, client=None) as ch:
            self.assert_handshake_fails(ch)
        self.assert_still_healthy()

    def test_client_not_trusting_server(self):
        with sc.tls_channel(SRV.target, PKI, ca="ca2.crt", client="client") as ch:
            self.assert_handshake_fails(ch)
        self.assert_still_healthy()

    def test_plaintext_against_tls_port(self):
        with grpc.insecure_channel(SRV.target) as ch:
            self.assert_handshake_fails(ch)
        self.assert_still_healthy()

    def test_many_bad_handshakes_then_good(self):
        """50 refused handshakes of each kind leave fds near the baseline."""
        base = SRV.fd_count()
        for i in range(50):
            for client in ("client_wrong_ca", "client_expired", None):
                with sc.tls_channel(SRV.target, PKI, client=client) as ch:
                    try:
                        check_with(ch, timeout=2)
                        self.fail("handshake with %r succeeded" % client)
                    except grpc.RpcError as e:
                        self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE)
        deadline = time.monotonic() + 10
        while SRV.fd_count() > base + 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        print("  fds: %d before, %d after 150 refused handshakes" % (base, SRV.fd_count()))
        self.assertLessEqual(SRV.fd_count(), base + 5)
        self.assert_still_healthy()


class HealthPort(unittest.TestCase):
    def test_plaintext_health_port_serves(self):
        with grpc.insecure_channel("127.0.0.1:%d" % HEALTH_PORT) as ch:
            self.assertEqual(check_with(ch), 1)

    def test_health_port_serves_only_health(self):
        with grpc.insecure_channel("127.0.0.1:%d" % HEALTH_PORT) as ch:
            with self.assertRaises(grpc.RpcError) as cm:
                ch.unary_unary(sc.OPS + "GetProfile")(b"", timeout=3)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)


class Cli(unittest.TestCase):
    def herald(self, *args):
        # 127.0.0.1 (in the certificate's SAN): a name would go through
        # c-ares, which leaks 10 bytes per resolution under LeakSanitizer
        return subprocess.run([ic.bin_path("herald"), "--addr", "127.0.0.1:%d" % SRV.port]
                              + list(args) + ["health"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)

    def test_cli_mtls(self):
        r = self.herald("--cacert", PKI.path("ca.crt"), "--cert", PKI.path("client.crt"),
                        "--key", PKI.path("client.key"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertIn(b"SERVING", r.stdout)

    def test_cli_without_client_cert_fails(self):
        r = self.herald("--cacert", PKI.path("ca.crt"))
        self.assertNotEqual(r.returncode, 0)

    def test_cli_plaintext_fails(self):
        r = self.herald("--plaintext")
        self.assertNotEqual(r.returncode, 0)


class Reload(unittest.TestCase):
    """SIGHUP re-reads tls.cert/tls.key/tls.client_ca: connections made after
    it see the new certificate, and a broken file keeps the old one."""

    def test_sighup_rotates_certificate(self):
        d = os.path.join(PKI.dir, "live")
        os.makedirs(d, exist_ok=True)
        live = {n: os.path.join(d, n) for n in ("cert.pem", "key.pem", "ca.pem")}

        def install(cert, key, ca="ca.crt"):
            for dst, src in ((live["cert.pem"], cert), (live["key.pem"], key),
                             (live["ca.pem"], ca)):
                with open(dst + ".tmp", "wb") as f:
                    f.write(PKI.read(src))
                os.rename(dst + ".tmp", dst)

        install("server.crt", "server.key")
        srv = sc.Heraldd(env={"HERALD_TLS_CERT": live["cert.pem"],
                              "HERALD_TLS_KEY": live["key.pem"],
                              "HERALD_TLS_CLIENT_CA": live["ca.pem"]})
        try:
            with sc.tls_channel(srv.target, PKI, client="client") as ch:
                sc.wait_serving(ch)
            # a client trusting only ca2 fails before the rotation
            with sc.tls_channel(srv.target, PKI, ca="ca2.crt", client="client") as ch:
                with self.assertRaises(grpc.RpcError):
                    check_with(ch)
            install("server2.crt", "server2.key")
            srv.hup()
            t0 = time.monotonic()
            ok = False
            while time.monotonic() - t0 < 10 and not ok:
                with sc.tls_channel(srv.target, PKI, ca="ca2.crt", client="client") as ch:
                    try:
                        ok = check_with(ch) == 1
                    except grpc.RpcError:
                        time.sleep(0.1)
            print("  new certificate served %.0f ms after SIGHUP" %
                  ((time.monotonic() - t0) * 1000))
            self.assertTrue(ok, "server2's certificate never served:\n" + srv.log_text()[-2000:])
            with sc.tls_channel(srv.target, PKI, ca="ca.crt", client="client") as ch:
                with self.assertRaises(grpc.RpcError):
                    check_with(ch)
            self.assertIn(b"TLS certificates reloaded", srv.log_bytes())
            # a key that does not match: core keeps serving server2's pair
            install("server.crt", "server2.key")
            srv.hup()
            time.sleep(0.5)
            with sc.tls_channel(srv.target, PKI, ca="ca2.crt", client="client") as ch:
                self.assertEqual(check_with(ch), 1)
            self.assertTrue(srv.alive())
        finally:
            self.assertEqual(srv.stop(), 0, srv.log_text()[-2000:])
            ok, bad = sc.json_lines_ok(srv.log_bytes())
            self.assertTrue(ok, bad)
            srv.cleanup()


class ServerTlsOnly(unittest.TestCase):
    """tls.cert/tls.key without tls.client_ca: no client certificate needed."""

    def test_server_auth_only(self):
        srv = sc.Heraldd(env={"HERALD_TLS_CERT": PKI.path("server.crt"),
                              "HERALD_TLS_KEY": PKI.path("server.key")})
        try:
            with sc.tls_channel(srv.target, PKI, client=None) as ch:
                sc.wait_serving(ch)
                self.assertEqual(check_with(ch), 1)
            with grpc.insecure_channel(srv.target) as ch:
                with self.assertRaises(grpc.RpcError) as cm:
                    check_with(ch)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        finally:
            self.assertEqual(srv.stop(), 0, srv.log_text()[-2000:])
            srv.cleanup()

    def test_bad_key_fails_start(self):
        """A key that does not match the certificate stops start-up (exit 1)."""
        srv = sc.Heraldd(env={"HERALD_TLS_CERT": PKI.path("server.crt"),
                              "HERALD_TLS_KEY": PKI.path("client.key")}, expect_exit=True)
        try:
            rc = srv.wait_exit(30)
            if rc is None:
                srv.kill()
            self.assertIsNotNone(rc, "heraldd served with a mismatched key")
            self.assertNotEqual(rc, 0)
        finally:
            srv.cleanup()


if __name__ == "__main__":
    sc.run_main()
