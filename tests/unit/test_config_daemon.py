#!/usr/bin/python3
"""heraldd lifecycle, end to end: command-line exits, --print-config masking,
start on 127.0.0.1:0 with --port-file, Health/Check through grpcio, the logged
config line, the health-only listener, SIGHUP reload of log.level, SIGTERM
drain (Watch sees NOT_SERVING, exit 0), a second SIGTERM (exit 143), a bind
failure (exit 1) and TLS from tls.cert/tls.key.

Usage: test_config_daemon.py /path/to/heraldd

Only Debian's /usr/bin/python3 has grpcio. Every wait is bounded; every
process started here is stopped here, by PID."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import grpc

HERALDD = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="herald-daemon-test-")
FAILS = []
PROCS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def base_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("HERALD_") or k in ("DATABASE_URL", "REDIS_URL"))}
    env["HERALD_ADMIN_LISTEN"] = ""  # several daemons run at once: no fixed ports
    env.update(extra)
    return env


def run(args, env=None, timeout=20):
    return subprocess.run([HERALDD] + args, env=env or base_env(), capture_output=True,
                          text=True, timeout=timeout)


def health_req(name):
    b = name.encode()
    return b"\x0a" + bytes([len(b)]) + b if b else b""


def health_status(resp):
    # HealthCheckResponse{status = 1 (varint)}; empty = UNKNOWN (0).
    return resp[1] if len(resp) >= 2 and resp[0] == 0x08 else 0


class Daemon:
    def __init__(self, name, args, env):
        self.log_path = os.path.join(TMP, name + ".log")
        self.err_path = os.path.join(TMP, name + ".err")
        self.port_file = os.path.join(TMP, name + ".port")
        self.out = open(self.log_path, "w")
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(
            [HERALDD, "--listen", "127.0.0.1:0", "--port-file", self.port_file] + args,
            env=env, stdout=self.out, stderr=self.err)
        PROCS.append(self.proc)
        self.port = None

    def wait_port(self, timeout=15):
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.proc.poll() is None:
            try:
                with open(self.port_file) as f:
                    self.port = int(f.read().strip())
                    return True
            except (OSError, ValueError):
                time.sleep(0.05)
        return False

    def lines(self):
        out = []
        with open(self.log_path) as f:
            for line in f:
                out.append(line)
        return out

    def wait_line(self, pred, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in self.lines():
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if pred(obj):
                    return obj
            time.sleep(0.05)
        return None

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.out.close()
        self.err.close()


def test_command_line():
    r = run(["--help"])
    check(r.returncode == 0 and "log.level" in r.stdout and "$HERALD_SHUTDOWN_GRACE" in r.stdout,
          "--help exits 0 and lists settings")
    r = run(["--version"])
    check(r.returncode == 0 and r.stdout.startswith("heraldd ") and "gRPC core " in r.stdout,
          "--version exits 0 with heraldd and gRPC versions: %r" % r.stdout.strip())
    r = run(["--workers", "0"])
    check(r.returncode == 78 and r.stderr.strip() ==
          'heraldd: bad value "0" for workers (from --workers): is out of range; allowed: an '
          'integer in 1..256, or auto', "bad value exits 78 naming key, value and range")
    r = run([], env=base_env(HERALD_LOG_LEVEL="loud"))
    check(r.returncode == 78 and "HERALD_LOG_LEVEL" in r.stderr and "loud" in r.stderr and
          "debug, info, warn, error, off" in r.stderr, "bad env value exits 78")
    r = run(["--wrokers", "2"])
    check(r.returncode == 64 and "did you mean --workers?" in r.stderr,
          "unknown flag exits 64 with a hint")
    r = run(["frobnicate"])
    check(r.returncode == 64 and "unknown command 'frobnicate'" in r.stderr,
          "unknown command exits 64")
    r = run(["migrate", "sideways"])
    check(r.returncode == 64 and "migrate up | down N | version | force V" in r.stderr,
          "bad migrate usage exits 64")
    r = run(["--print-config", "--workers=3"],
            env=base_env(DATABASE_URL="postgresql://herald:topsecret@db:5432/herald"))
    check(r.returncode == 0 and "topsecret" not in r.stdout and
          "database_url = postgresql://herald:***@db:5432/herald" in r.stdout and
          "# DATABASE_URL" in r.stdout and "# --workers" in r.stdout,
          "--print-config masks the password and names sources")


def test_serve_reload_term():
    conf = os.path.join(TMP, "herald.conf")
    with open(conf, "w") as f:
        f.write("log.level = info\nworkers = 2\n")
    env = base_env(REDIS_URL="redis://:topsecret@127.0.0.1:1/0")
    d = Daemon("main", ["--config", conf, "--shutdown-grace-ms", "5s",
                        "--health-listen=127.0.0.1:0"], env)
    try:
        check(d.wait_port(), "heraldd writes its port file")
        if d.port is None:
            return
        cfg_line = d.wait_line(lambda o: o.get("msg") == "effective config")
        check(cfg_line is not None and cfg_line.get("workers") == 2 and
              cfg_line.get("redis_url") == "redis://:***@127.0.0.1:1/0",
              "effective config logged once, secrets masked")
        check(d.wait_line(lambda o: o.get("msg") == "listening" and
                          o.get("port") == d.port) is not None, "'listening' line with the port")

        hl = d.wait_line(lambda o: o.get("msg") == "health listener up")
        check(hl is not None and isinstance(hl.get("port"), int), "health listener logged")
        if hl is not None:
            with grpc.insecure_channel("127.0.0.1:%d" % hl["port"]) as hch:
                resp = hch.unary_unary("/grpc.health.v1.Health/Check")(health_req(""), timeout=5)
                check(health_status(resp) == 1, "Health/Check on health_listen is SERVING")
                try:
                    hch.unary_unary("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")(
                        b"", timeout=5)
                    check(False, "health_listen serves only health")
                except grpc.RpcError as e:
                    check(e.code() == grpc.StatusCode.UNIMPLEMENTED,
                          "health_listen serves only health (%s)" % e.code())

        ch = grpc.insecure_channel("127.0.0.1:%d" % d.port)
        check_rpc = ch.unary_unary("/grpc.health.v1.Health/Check")
        resp = check_rpc(health_req(""), timeout=5)
        check(health_status(resp) == 1, "Health/Check \"\" is SERVING")
        resp = check_rpc(health_req("liveness"), timeout=5)
        check(health_status(resp) == 1, "Health/Check liveness is SERVING")
        try:
            check_rpc(health_req("no.such.Service"), timeout=5)
            check(False, "unknown health service fails")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.NOT_FOUND, "unknown health service is NOT_FOUND")

        # A second server on the same port must fail to bind (SO_REUSEPORT off).
        r = subprocess.run([HERALDD, "--listen", "127.0.0.1:%d" % d.port], env=base_env(),
                           capture_output=True, text=True, timeout=20)
        check(r.returncode == 1 and "cannot listen on 127.0.0.1:%d" % d.port in r.stderr,
              "bind failure exits 1 with a message on stderr: %r" % r.stderr.strip()[-200:])

        # SIGHUP: log.level info -> debug from the file.
        with open(conf, "w") as f:
            f.write("log.level = debug\nworkers = 2\n")
        d.proc.send_signal(signal.SIGHUP)
        got = d.wait_line(lambda o: o.get("msg") == "config reloaded" and
                          o.get("key") == "log.level")
        check(got is not None and got.get("old") == "info" and got.get("new") == "debug",
              "SIGHUP reloads log.level and logs the change")

        # Watch "" and see NOT_SERVING pushed at SIGTERM.
        watch = ch.unary_stream("/grpc.health.v1.Health/Watch")
        seen = []
        ended = {}

        def watcher():
            try:
                for msg in watch(health_req(""), timeout=20):
                    seen.append(health_status(msg))
            except grpc.RpcError as e:
                ended["code"] = e.code()
        t = threading.Thread(target=watcher)
        t.start()
        end = time.monotonic() + 5
        while not seen and time.monotonic() < end:
            time.sleep(0.02)
        check(seen[:1] == [1], "Watch starts with SERVING")
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        rc = d.wait_exit(15)
        took = time.monotonic() - t0
        t.join(10)
        check(rc == 0, "SIGTERM exits 0 (rc %r, %.2f s)" % (rc, took))
        check(2 in seen, "Watch saw NOT_SERVING during the drain: %r" % seen)
        check(d.wait_line(lambda o: o.get("msg") == "stopped", 1) is not None,
              "'stopped' logged")
        text = "".join(d.lines())
        check("topsecret" not in text, "no secret anywhere in the log")
        for line in d.lines():
            try:
                json.loads(line)
            except ValueError:
                check(False, "log line is JSON: %r" % line[:200])
                break
        ch.close()
    finally:
        d.close()


def test_second_signal():
    d = Daemon("forced", ["--shutdown-delay-ms", "20s"], base_env())
    try:
        check(d.wait_port(), "second daemon up")
        d.proc.send_signal(signal.SIGTERM)
        d.wait_line(lambda o: o.get("msg") == "shutdown requested; draining", 5)
        time.sleep(0.2)
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        rc = d.wait_exit(5)
        took = time.monotonic() - t0
        check(rc == 128 + signal.SIGTERM and took < 2.5,
              "second SIGTERM exits 143 at once (rc %r, %.2f s)" % (rc, took))
    finally:
        d.close()


def test_tls():
    """tls.cert/tls.key serve TLS; a missing file stops start-up with 78."""
    r = run(["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"])
    check(r.returncode == 78 and 'bad value "/nonexistent/cert.pem" for tls.cert' in r.stderr,
          "unreadable tls.cert exits 78")
    cert = os.path.join(TMP, "cert.pem")
    key = os.path.join(TMP, "key.pem")
    g = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], capture_output=True, timeout=60)
    if g.returncode != 0:
        check(False, "openssl made a test certificate")
        return
    d = Daemon("tls", ["--tls-cert", cert, "--tls-key", key], base_env())
    try:
        check(d.wait_port(), "TLS daemon up")
        check(d.wait_line(lambda o: o.get("msg") == "listening" and o.get("tls") == "tls", 5)
              is not None, "'listening' says tls")
        with open(cert, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        with grpc.secure_channel("127.0.0.1:%d" % d.port, creds) as ch:
            resp = ch.unary_unary("/grpc.health.v1.Health/Check")(health_req(""), timeout=5)
            check(health_status(resp) == 1, "Health/Check over TLS is SERVING")
        d.proc.send_signal(signal.SIGTERM)
        check(d.wait_exit(15) == 0, "TLS daemon exits 0 on SIGTERM")
    finally:
        d.close()


def main():
    try:
        test_command_line()
        test_serve_reload_term()
        test_second_signal()
        test_tls()
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    if FAILS:
        print("%d failure(s); logs in %s" % (len(FAILS), TMP))
        sys.exit(1)
    subprocess.run(["rm", "-rf", TMP])
    print("all passed")


if __name__ == "__main__":
    main()
