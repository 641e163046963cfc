#!/usr/bin/python3
"""End-to-end tests of the herald CLI (label e2e).

Runs build/bin/herald (or $HERALD_BIN_DIR/herald) against servers this test
starts itself on 127.0.0.1 with free ports (rpc_testd and heraldd without a
database), and stops them by PID. Covers every exit code (0; 1 unreachable and
unreadable files; 2 usage, including an unknown flag with its hint; 64 + code
from rpc_testd and heraldd errors), -d @file and -d @-, JSON output that
parses, tables, `herald health` (0, 1, 2, 3, 4) against a live server and a
dead port, the generated request_id, describe/list, and the bash completion
script (syntax and behaviour under bash).

Debian's /usr/bin/python3 (python3-grpcio) flips rpc_testd's health entries
through TestService/Echo; nothing else needs more than the standard library.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("HERALD_BIN_DIR") or os.path.join(SRC, "build", "bin")
HERALD = os.path.join(BIN, "herald")
RUN_TIMEOUT_S = 60


def dead_port():
    """A port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server started with --port-file; stopped by its own PID only."""

    def __init__(self, argv, env=None):
        self.dir = tempfile.mkdtemp(prefix="herald-cli-test-")
        pf = os.path.join(self.dir, "port")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen(
            argv + ["--listen", "127.0.0.1:0", "--port-file", pf],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=full_env)
        self.port = None
        deadline = time.monotonic() + 30
        while self.port is None:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s" % (argv[0], self.proc.returncode))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("%s wrote no port file" % argv[0])
            try:
                with open(pf) as f:
                    txt = f.read().strip()
                if txt:
                    self.port = int(txt)
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        self.addr = "127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def herald(*args, stdin=None, env=None, timeout=RUN_TIMEOUT_S):
    """Runs herald; returns (exit code, stdout, stderr, seconds)."""
    full_env = dict(os.environ)
    for k in ("HERALD_ADDR", "HERALD_TOKEN", "HERALD_TOKEN_FILE"):
        full_env.pop(k, None)
    full_env.update(env or {})
    t0 = time.monotonic()
    p = subprocess.run([HERALD] + list(args), input=stdin, capture_output=True, text=True,
                       env=full_env, timeout=timeout)
    # Under -DSANITIZE=address,undefined a report fails the test outright.
    for marker in ("Sanitizer", "runtime error:"):
        if marker in p.stderr:
            raise AssertionError("herald %s: sanitizer report:\n%s" % (" ".join(args), p.stderr))
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t0


def echo_raw(addr, message):
    """TestService/Echo with only `message` set, via grpcio and raw bytes."""
    import grpc  # Debian's python3-grpcio
    data = message.encode()
    body = b"\x0a" + bytes([len(data)]) + data  # field 1, length-delimited (< 128)
    with grpc.insecure_channel(addr) as ch:
        call = ch.unary_unary("/herald.test.v1.TestService/Echo")
        call(body, timeout=10)


TESTD = None
HERALDD = None


def setUpModule():
    global TESTD, HERALDD
    if not os.access(HERALD, os.X_OK):
        raise RuntimeError("herald is not built (looked in %s)" % BIN)
    TESTD = Server([os.path.join(BIN, "rpc_testd"), "--workers", "2", "--log-level", "error"])
    heraldd = os.path.join(BIN, "heraldd")
    if os.access(heraldd, os.X_OK):
        # No database: handlers that need one fail, which is what the exit
        # code tests want; the admin HTTP listener is off.
        env = {"HERALD_ADMIN_LISTEN": "", "DATABASE_URL": "", "REDIS_URL": "",
               "HERALD_LOG_LEVEL": "error"}
        HERALDD = Server([heraldd], env=env)


def tearDownModule():
    for s in (TESTD, HERALDD):
        if s:
            s.stop()


class Help(unittest.TestCase):
    def test_help_everywhere(self):
        for args in (["--help"], ["-h"], ["help"], ["ops", "--help"], ["help", "ops"],
                     ["ops", "get-profile", "--help"], ["content", "generate-draft", "-h"],
                     ["call", "--help"], ["call", "herald.v1.OpsService/GetProfile", "--help"],
                     ["health", "--help"], ["list", "--help"], ["describe", "--help"],
                     ["completion", "--help"]):
            rc, out, err, _ = herald(*args)
            self.assertEqual(rc, 0, (args, err))
            self.assertIn("Usage: herald", out, args)
            self.assertEqual(err, "", args)

    def test_method_help_lists_field_flags_with_comments(self):
        rc, out, _, _ = herald("content", "generate-draft", "--help")
        self.assertEqual(rc, 0)
        for flag in ("--topic", "--content-type", "--voice-style", "--platform", "--request-id",
                     "--target-time", "--seed"):
            self.assertIn(flag, out)
        self.assertIn("herald.v1.ContentService/GenerateDraft (unary)", out)
        self.assertIn("x|threads", out)  # enum values, prefix stripped
        self.assertIn("Topic catalog key", out)  # the field's comment
        rc, out, _, _ = herald("ops", "--help")
        self.assertIn("get-profile", out)
        self.assertIn("list-profiles", out)

    def test_version(self):
        rc, out, _, _ = herald("--version")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^herald \d+\.\d+\.\d+ ")
        rc2, out2, _, _ = herald("version")
        self.assertEqual((rc2, out2), (rc, out))


class Usage(unittest.TestCase):
    def expect_usage(self, args, needle, hint="herald"):
        rc, out, err, _ = herald(*args)
        self.assertEqual(rc, 2, (args, err))
        self.assertEqual(out, "", args)
        self.assertIn(needle, err, args)
        self.assertIn("Try '%s --help'." % hint, err, args)

    def test_unknown_flag_has_hint(self):
        self.expect_usage(["content", "generate-draft", "--topik", "sleep"],
                          "unknown flag '--topik' (did you mean --topic?)",
                          "herald content generate-draft")
        self.expect_usage(["--bogus", "list"], "unknown flag '--bogus'", "herald list")

    def test_unknown_command_and_method(self):
        self.expect_usage(["frobnicate"], 'unknown command "frobnicate"')
        self.expect_usage(["ops", "get-profle"], "is not a method of 'ops'", "herald ops")
        self.expect_usage(["ops"], "a method is required", "herald ops")
        self.expect_usage(["call"], "call wants a METHOD", "herald call")
        self.expect_usage(["call", "no.Such/Method"], 'unknown method "no.Such/Method"',
                          "herald call")
        self.expect_usage(["completion", "zsh"], "only bash", "herald completion")

    def test_bad_values(self):
        ctx = "herald content generate-draft"
        self.expect_usage(["content", "generate-draft", "--platform", "mastodon"],
                          'unknown value "mastodon" (one of x|threads', ctx)
        self.expect_usage(["content", "generate-draft", "--seed", "-1"],
                          "--seed: expected a non-negative integer", ctx)
        self.expect_usage(["content", "generate-draft", "--target-time", "soon"],
                          "--target-time: expected an RFC 3339 time", ctx)
        self.expect_usage(["content", "generate-draft", "-d", "{"], "-d: invalid JSON", ctx)
        self.expect_usage(["content", "generate-draft", "-d", '{"topik":"x"}'],
                          'unknown field "topik" in herald.v1.GenerateDraftRequest', ctx)
        self.expect_usage(["content", "generate-draft", "-d", "[1]"], "must be a JSON object",
                          ctx)
        self.expect_usage(["list", "-o", "yaml"], "expected json or table", "herald list")
        self.expect_usage(["ops", "get-profile", "--timeout", "soon"], "--timeout", "herald ops get-profile")
        self.expect_usage(["ops", "get-profile", "-H", "no-colon"], "-H wants 'key: value'",
                          "herald ops get-profile")
        self.expect_usage(["ops", "get-profile", "--cert", "a.pem"], "--cert and --key go together",
                          "herald ops get-profile")
        self.expect_usage(["ops", "get-profile", "--profile-id"], "needs a value",
                          "herald ops get-profile")


class Operational(unittest.TestCase):
    def test_unreachable_is_1(self):
        addr = "127.0.0.1:%d" % dead_port()
        rc, out, err, took = herald("ops", "get-profile", "--profile-id", "p1", "--addr", addr)
        self.assertEqual(rc, 1, err)
        self.assertEqual(out, "")
        self.assertIn("cannot connect to " + addr, err)
        self.assertLess(took, 10)
        # HERALD_ADDR works the same way.
        rc, _, err, _ = herald("ops", "get-profile", env={"HERALD_ADDR": addr})
        self.assertEqual(rc, 1, err)
        self.assertIn(addr, err)

    def test_unreadable_files_are_1(self):
        rc, _, err, _ = herald("call", "grpc.health.v1.Health/Check", "-d", "@/nonexistent/x.json",
                               "--addr", TESTD.addr)
        self.assertEqual(rc, 1)
        self.assertIn("/nonexistent/x.json", err)
        rc, _, err, _ = herald("ops", "get-profile", "--cacert", "/nonexistent/ca.pem",
                               "--addr", TESTD.addr)
        self.assertEqual(rc, 1)
        self.assertIn("ca.pem", err)


class Calls(unittest.TestCase):
    def test_data_from_file_and_stdin(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            f.write('{"service": ""}\n')
            path = f.name
        try:
            rc, out, err, _ = herald("call", "grpc.health.v1.Health/Check", "-d", "@" + path,
                                     "--addr", TESTD.addr)
            self.assertEqual(rc, 0, err)
            self.assertEqual(json.loads(out), {"status": "SERVING"})
        finally:
            os.unlink(path)
        for form in ("@-", "@"):
            rc, out, err, _ = herald("call", "grpc.health.v1.Health/Check", "-d", form,
                                     "--addr", TESTD.addr, stdin='{"service": "liveness"}')
            self.assertEqual(rc, 0, err)
            self.assertEqual(json.loads(out)["status"], "SERVING")
        # The same request through a field flag, and the dotted method form.
        rc, out, err, _ = herald("call", "grpc.health.v1.Health.Check", "--service", "readiness",
                                 "--addr", TESTD.addr, "-o", "json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out), {"status": "SERVING"})

    def test_rpc_errors_are_64_plus_code(self):
        rc, out, err, _ = herald("call", "grpc.health.v1.Health/Check", "-d", "@-",
                                 "--addr", TESTD.addr, stdin='{"service":"no-such"}')
        self.assertEqual(rc, 64 + 5, err)  # NOT_FOUND
        self.assertEqual(out, "")
        self.assertIn("herald: NOT_FOUND: unknown service", err)
        # rpc_testd does not serve OpsService: UNIMPLEMENTED.
        rc, out, err, _ = herald("ops", "get-profile", "--profile-id", "p1", "--addr", TESTD.addr)
        self.assertEqual(rc, 64 + 12, err)
        self.assertIn("herald: UNIMPLEMENTED", err)
        # A stream cut by its deadline: DEADLINE_EXCEEDED after what it sent.
        rc, out, err, took = herald("call", "grpc.health.v1.Health/Watch", "-d", "{}",
                                    "--timeout", "700ms", "--addr", TESTD.addr, "-o", "json")
        self.assertEqual(rc, 64 + 4, err)
        self.assertGreater(took, 0.6)
        lines = [json.loads(l) for l in out.splitlines()]
        self.assertEqual(lines, [{"status": "SERVING"}])

    @unittest.skipIf(not os.access(os.path.join(BIN, "heraldd"), os.X_OK), "heraldd not built")
    def test_every_api_method_against_heraldd(self):
        """Each RPC of the API, called with an empty request on heraldd (no
        database): whatever the server answers, the exit status is 0 with JSON
        on stdout, or 64 + the code named on stderr."""
        rc, out, _, _ = herald("list")
        services = [s for s in out.split() if s.startswith("herald.v1.")]
        self.assertEqual(len(services), 4)
        codes = {}
        names = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                 "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                 "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                 "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"]
        calls = 0
        for svc in services:
            rc, out, _, _ = herald("list", svc)
            for m in out.split():
                method = m[len(svc) + 1:]
                rc, mout, err, _ = herald("call", "%s/%s" % (svc, method), "-d", "{}",
                                          "--addr", HERALDD.addr, "--timeout", "5s",
                                          "-o", "json")
                calls += 1
                if rc == 0:
                    json.loads(mout)
                    continue
                self.assertGreaterEqual(rc, 65, (m, err))
                self.assertIn("herald: %s:" % names[rc - 64], err, m)
                codes[rc - 64] = codes.get(rc - 64, 0) + 1
        self.assertGreater(calls, 40)
        # The foundation answers UNIMPLEMENTED for methods not built yet;
        # the rest fail without a database. Either way: 64 + code.
        self.assertTrue(codes, "no method failed without a database?")
        sys.stderr.write("heraldd without a database: %d calls, exit codes %s\n"
                         % (calls, {64 + c: n for c, n in sorted(codes.items())}))

    def test_json_by_default_off_a_tty_and_table_on_request(self):
        rc, out, _, _ = herald("call", "grpc.health.v1.Health/Check", "--addr", TESTD.addr)
        self.assertEqual(rc, 0)
        self.assertEqual(json.loads(out), {"status": "SERVING"})
        rc, out, _, _ = herald("call", "grpc.health.v1.Health/Check", "--addr", TESTD.addr,
                               "-o", "table")
        self.assertEqual(out, "status: SERVING\n")
        rc, out, _, _ = herald("call", "grpc.health.v1.Health/Check", "--addr", TESTD.addr,
                               "--emit-defaults", "-o", "json")
        self.assertEqual(json.loads(out), {"status": "SERVING"})

    def test_interrupt_cancels_a_stream(self):
        p = subprocess.Popen([HERALD, "call", "grpc.health.v1.Health/Watch", "-d", "{}",
                              "--timeout", "0", "--addr", TESTD.addr, "-o", "json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = p.stdout.readline()  # the stream is open once a status arrived
            self.assertEqual(json.loads(first), {"status": "SERVING"})
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        self.assertEqual(p.returncode, 130, err)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertIn("herald: interrupted", err)
        self.assertNotIn("Sanitizer", err)

    def test_bidi_reflection_through_call(self):
        rc, out, err, _ = herald("call", "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                 "-d", '{"listServices": ""} {"fileContainingSymbol": "no.Such"}',
                                 "--addr", TESTD.addr, "-o", "json")
        self.assertEqual(rc, 0, err)
        msgs = [json.loads(l) for l in out.splitlines()]
        self.assertEqual(len(msgs), 2)
        names = [s["name"] for s in msgs[0]["listServicesResponse"]["service"]]
        self.assertIn("grpc.health.v1.Health", names)
        self.assertEqual(msgs[1]["errorResponse"]["errorCode"], 5)

    def test_request_id_generated_for_mutations(self):
        rc, _, err, _ = herald("ops", "create-profile", "--addr", TESTD.addr, "-v")
        self.assertEqual(rc, 64 + 12)
        m = re.search(r"> request_id: ([0-9a-f-]+) \(generated\)", err)
        self.assertIsNotNone(m, err)
        self.assertRegex(m.group(1),
                         r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        self.assertIn('"requestId":"%s"' % m.group(1), err)
        # Two calls, two keys.
        _, _, err2, _ = herald("ops", "create-profile", "--addr", TESTD.addr, "-v")
        self.assertNotIn(m.group(1), err2)
        # A given key is kept; reads get none.
        _, _, err3, _ = herald("ops", "create-profile", "--request-id",
                               "11111111-2222-4333-8444-555555555555", "--addr", TESTD.addr, "-v")
        self.assertNotIn("(generated)", err3)
        self.assertIn('"requestId":"11111111-2222-4333-8444-555555555555"', err3)
        _, _, err4, _ = herald("ops", "get-profile", "--addr", TESTD.addr, "-v")
        self.assertNotIn("requestId", err4)

    def test_flags_build_the_request(self):
        # -v prints the request as sent: flags over -d, enums by value name,
        # repeated flags, nested dotted flags, times.
        rc, _, err, _ = herald(
            "content", "generate-draft", "--addr", TESTD.addr, "-v",
            "-d", '{"topic": "stress", "profileId": "p0"}',
            "--topic", "sleep", "--content-type", "myth-busting", "--voice-style", "truth-seeker",
            "--platform", "x", "--seed", "18446744073709551615",
            "--target-time", "2026-01-31T09:00:00Z", "--request-id", "r" * 36)
        self.assertEqual(rc, 64 + 12, err)
        sent = json.loads(re.search(r"^> (\{.*\})$", err, re.M).group(1))
        self.assertEqual(sent, {"requestId": "r" * 36, "profileId": "p0", "platform": "PLATFORM_X",
                                "contentType": "myth-busting", "voiceStyle": "truth-seeker",
                                "topic": "sleep", "seed": "18446744073709551615",
                                "targetTime": "2026-01-31T09:00:00Z"})


class Metadata(unittest.TestCase):
    """What herald sends, seen by a grpcio server that records each call."""

    @classmethod
    def setUpClass(cls):
        import grpc
        from concurrent import futures
        cls.calls = []

        class Recorder(grpc.GenericRpcHandler):
            def service(self, details):
                def handle(request, context):
                    md = {}
                    for k, v in context.invocation_metadata():
                        md[k] = v
                    cls.calls.append({"method": details.method, "md": md,
                                      "remaining": context.time_remaining(),
                                      "request": request})
                    return b"\x08\x01"  # HealthCheckResponse{status: SERVING}
                return grpc.unary_unary_rpc_method_handler(handle)

        cls.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2),
                                 handlers=[Recorder()])
        cls.port = cls.server.add_insecure_port("127.0.0.1:0")
        cls.server.start()
        cls.addr = "127.0.0.1:%d" % cls.port

    @classmethod
    def tearDownClass(cls):
        cls.server.stop(grace=None)

    def call(self, *args, env=None):
        before = len(self.calls)
        rc, out, err, _ = herald("call", "grpc.health.v1.Health/Check", "--addr", self.addr,
                                 *args, env=env)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out), {"status": "SERVING"})
        self.assertEqual(len(self.calls), before + 1)
        return self.calls[-1]

    def test_headers_token_deadline_and_user_agent(self):
        c = self.call("-H", "X-Trace: abc 123", "-H", "x-blob-bin: AAH/", "--token", "t0k3n",
                      "--timeout", "7s", "--service", "svc")
        self.assertEqual(c["method"], "/grpc.health.v1.Health/Check")
        self.assertEqual(c["md"]["x-trace"], "abc 123")
        self.assertEqual(c["md"]["x-blob-bin"], b"\x00\x01\xff")
        self.assertEqual(c["md"]["authorization"], "Bearer t0k3n")
        self.assertIn("herald-cli/", c["md"]["user-agent"])
        self.assertTrue(5.0 < c["remaining"] <= 7.1, c["remaining"])  # grpc-timeout rounds up
        self.assertEqual(c["request"], b"\x0a\x03svc")
        # No token, no header; --timeout 0: no deadline.
        c = self.call("--timeout", "0")
        self.assertNotIn("authorization", c["md"])
        self.assertTrue(c["remaining"] is None or c["remaining"] > 1e9, c["remaining"])

    def test_token_from_environment_and_file(self):
        c = self.call(env={"HERALD_TOKEN": "from-env"})
        self.assertEqual(c["md"]["authorization"], "Bearer from-env")
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write("from-file\n")
            path = f.name
        try:
            c = self.call(env={"HERALD_TOKEN_FILE": path})
            self.assertEqual(c["md"]["authorization"], "Bearer from-file")
            # The flag wins over both.
            c = self.call("--token", "flag", env={"HERALD_TOKEN_FILE": path,
                                                  "HERALD_TOKEN": "env"})
            self.assertEqual(c["md"]["authorization"], "Bearer flag")
        finally:
            os.unlink(path)


class Health(unittest.TestCase):
    def test_serving_is_0(self):
        rc, out, err, _ = herald("health", "--addr", TESTD.addr)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out), {"status": "SERVING"})
        rc, out, _, _ = herald("health", "-addr", TESTD.addr, "-service", "liveness", "-o", "table")
        self.assertEqual((rc, out), (0, "status: SERVING\n"))

    def test_bad_arguments_are_1(self):
        for args in (["health", "--bogus"], ["health", "extra"], ["health", "--rpc-timeout", "x"]):
            rc, out, err, _ = herald(*args, "--addr", TESTD.addr)
            self.assertEqual(rc, 1, args)
            self.assertIn("Try 'herald health --help'.", err)

    def test_dead_port_is_2(self):
        rc, out, err, took = herald("health", "--addr", "127.0.0.1:%d" % dead_port())
        self.assertEqual(rc, 2, err)
        self.assertEqual(out, "")
        self.assertLess(took, 5)

    def test_unknown_service_is_3(self):
        rc, _, err, _ = herald("health", "--addr", TESTD.addr, "--service", "no.Such")
        self.assertEqual(rc, 3)
        self.assertIn("NOT_FOUND", err)

    def test_not_serving_is_4(self):
        echo_raw(TESTD.addr, "health:cli-test=NOT_SERVING")
        rc, out, err, _ = herald("health", "--addr", TESTD.addr, "--service", "cli-test")
        self.assertEqual(rc, 4, err)
        self.assertEqual(json.loads(out), {"status": "NOT_SERVING"})
        echo_raw(TESTD.addr, "health:cli-test=SERVING")
        rc, _, _, _ = herald("health", "--addr", TESTD.addr, "--service", "cli-test")
        self.assertEqual(rc, 0)

    def test_watch_streams_changes(self):
        p = subprocess.Popen([HERALD, "health", "--watch", "--service", "cli-watch", "--addr",
                              TESTD.addr, "--timeout", "3s", "-o", "json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)
            echo_raw(TESTD.addr, "health:cli-watch=SERVING")
            time.sleep(0.3)
            echo_raw(TESTD.addr, "health:cli-watch=NOT_SERVING")
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        states = [json.loads(l)["status"] for l in out.splitlines()]
        self.assertEqual(states, ["SERVICE_UNKNOWN", "SERVING", "NOT_SERVING"], err)
        self.assertEqual(p.returncode, 4)  # the last status seen

    @unittest.skipIf(not os.access(os.path.join(BIN, "heraldd"), os.X_OK), "heraldd not built")
    def test_heraldd_liveness(self):
        rc, out, err, _ = herald("health", "--addr", HERALDD.addr, "--service", "liveness")
        self.assertEqual(rc, 0, err)


class Tls(unittest.TestCase):
    """The TLS flags (grpcurl's and grpc-health-probe's names) against an
    rpc_testd serving a self-signed certificate for 127.0.0.1 / localhost."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="herald-cli-tls-")
        cls.cert = os.path.join(cls.dir, "cert.pem")
        key = os.path.join(cls.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key,
                        "-out", cls.cert], check=True, capture_output=True, timeout=60)
        cls.srv = Server([os.path.join(BIN, "rpc_testd"), "--workers", "1", "--log-level",
                          "error", "--tls-cert", cls.cert, "--tls-key", key])

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_call_with_ca_name_and_insecure(self):
        a = self.srv.addr
        for flags in (["--cacert", self.cert], ["--cacert", self.cert, "--servername", "localhost"],
                      ["--insecure"], ["--tls", "--insecure"]):
            rc, out, err, _ = herald("call", "grpc.health.v1.Health/Check", "--addr", a, *flags)
            self.assertEqual(rc, 0, (flags, err))
            self.assertEqual(json.loads(out), {"status": "SERVING"})
        # The system roots do not know the certificate; plaintext cannot talk to TLS.
        for flags in (["--tls"], ["--cacert", self.cert, "--servername", "wrong.example"], []):
            rc, _, err, _ = herald("call", "grpc.health.v1.Health/Check", "--addr", a,
                                   "--connect-timeout", "3s", *flags)
            self.assertEqual(rc, 1, (flags, err))
            self.assertIn("cannot connect", err)
        rc, _, err, _ = herald("call", "grpc.health.v1.Health/Check", "--addr", a, "--plaintext",
                               "--insecure")
        self.assertEqual(rc, 2)
        self.assertIn("--plaintext contradicts the TLS flags", err)

    def test_health_probe_tls_flags(self):
        a = self.srv.addr
        rc, out, err, _ = herald("health", "--addr", a, "--tls", "--tls-ca-cert", self.cert,
                                 "--tls-server-name", "localhost", "--connect-timeout", "5s",
                                 "--rpc-timeout", "5s")
        self.assertEqual(rc, 0, err)
        rc, _, err, _ = herald("health", "--addr", a, "--tls", "--tls-no-verify",
                               "--connect-timeout", "5s", "--rpc-timeout", "5s")
        self.assertEqual(rc, 0, err)
        rc, _, err, _ = herald("health", "--addr", a, "--tls", "--connect-timeout", "3s")
        self.assertEqual(rc, 2, err)  # verification failed: no connection


class Describe(unittest.TestCase):
    def test_list_and_describe(self):
        rc, out, _, _ = herald("list")
        self.assertEqual(rc, 0)
        self.assertEqual(sorted(out.split()), sorted([
            "herald.v1.ContentService", "herald.v1.SchedulingService", "herald.v1.LearningService",
            "herald.v1.OpsService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"]))
        rc, out, _, _ = herald("list", "herald.v1.OpsService")
        self.assertIn("herald.v1.OpsService.GetProfile", out.split())
        rc, out, _, _ = herald("describe", "herald.v1.OpsService/GetProfile")
        self.assertEqual(rc, 0)
        self.assertIn("rpc GetProfile(herald.v1.GetProfileRequest) returns (herald.v1.Profile);",
                      out)
        self.assertIn("CLI: herald ops get-profile --help", out)
        rc, out, _, _ = herald("describe", "herald.v1.Platform")
        self.assertIn("PLATFORM_X = ", out)
        rc, out, _, _ = herald("describe", "grpc.health.v1.Health")
        self.assertIn("rpc Watch(grpc.health.v1.HealthCheckRequest) returns "
                      "(stream grpc.health.v1.HealthCheckResponse);", out)
        rc, _, err, _ = herald("describe", "no.Such")
        self.assertEqual(rc, 1)
        self.assertIn('no symbol named "no.Such"', err)


class Completion(unittest.TestCase):
    def complete(self, words, cword):
        script, = [herald("completion", "bash")[1]]
        prog = script + "\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\n_herald\nprintf '%%s\\n' \"${COMPREPLY[@]}\"\n" % (
            " ".join("'%s'" % w for w in words), cword)
        p = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog], capture_output=True,
                           text=True, timeout=RUN_TIMEOUT_S)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.split()

    def test_script_is_valid_bash(self):
        rc, out, _, _ = herald("completion", "bash")
        self.assertEqual(rc, 0)
        p = subprocess.run(["bash", "-n"], input=out, capture_output=True, text=True,
                           timeout=RUN_TIMEOUT_S)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("complete -F _herald herald", out)

    def test_completes_commands_methods_flags_and_enums(self):
        self.assertIn("content", self.complete(["herald", "con"], 1))
        self.assertEqual(self.complete(["herald", "content", "generate-d"], 2), ["generate-draft"])
        flags = self.complete(["herald", "content", "generate-draft", "--top"], 3)
        self.assertEqual(flags, ["--topic"])
        self.assertEqual(sorted(self.complete(["herald", "content", "generate-draft", "--platform",
                                               ""], 4)), ["bluesky", "linkedin", "threads", "x"])
        self.assertIn("herald.v1.OpsService/GetProfile",
                      self.complete(["herald", "call", "herald.v1.Ops"], 2))
        self.assertEqual(self.complete(["herald", "-o", "t"], 2), ["table"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
