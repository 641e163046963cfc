"""Shared helpers for the Python interop tests (Debian's /usr/bin/python3 + grpcio).

- compile_protos(): protoc --python_out into a temp dir, with the gRPC protos
  copied flat (health.proto, reflection_v1.proto, ...) because a `grpc/`
  package directory on sys.path would shadow the grpc module.
- Server: starts a server binary on 127.0.0.1 with a free port, waits until it
  serves, and stops it by PID (SIGTERM, bounded wait, SIGKILL as a last resort).
- Raw multicallables for every method, so no generated stubs are needed.

Every wait here is bounded in time.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
GRPC_PROTO_ROOT = "/usr/share/grpc-proto"
TEST_PROTO_ROOT = os.path.join(SRC, "tests", "proto")

HEALTH = "/grpc.health.v1.Health/"
TEST = "/herald.test.v1.TestService/"
REFLECTION_V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
REFLECTION_V1ALPHA = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"

HERALD_SERVICES = [
    "herald.v1.ContentService",
    "herald.v1.SchedulingService",
    "herald.v1.LearningService",
    "herald.v1.OpsService",
]
EXPECTED_SERVICES = sorted(
    HERALD_SERVICES
    + [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]
)

# heraldd under test: no admin HTTP listener (its default port would clash
# between concurrent servers); DATABASE_URL/REDIS_URL come from the environment.
HERALDD_ENV = {"HERALD_ADMIN_LISTEN": ""}


def bin_path(name):
    """Path of a built binary: $HERALD_BIN_DIR/name (set by ctest) or build/bin."""
    d = os.environ.get("HERALD_BIN_DIR") or os.path.join(SRC, "build", "bin")
    p = os.path.join(d, name)
    if not os.access(p, os.X_OK):
        raise RuntimeError("%s is not built (looked in %s)" % (name, d))
    return p


class Protos:
    """The generated message modules, importable from a private temp dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="herald-interop-py-")
        flat = [
            ("grpc/health/v1/health.proto", "health.proto"),
            ("grpc/reflection/v1/reflection.proto", "reflection_v1.proto"),
            ("grpc/reflection/v1alpha/reflection.proto", "reflection_v1alpha.proto"),
        ]
        for src, dst in flat:
            shutil.copy(os.path.join(GRPC_PROTO_ROOT, src), os.path.join(self.dir, dst))
        cmd = [
            "protoc",
            "-I" + self.dir,
            "-I" + TEST_PROTO_ROOT,
            "--python_out=" + self.dir,
        ] + [dst for _, dst in flat] + ["herald/test/v1/test.proto"]
        subprocess.run(cmd, check=True, cwd=self.dir, timeout=60)
        sys.path.insert(0, self.dir)
        import health_pb2
        import reflection_v1_pb2
        import reflection_v1alpha_pb2
        from herald.test.v1 import test_pb2

        self.health = health_pb2
        self.refl = {"v1": reflection_v1_pb2, "v1alpha": reflection_v1alpha_pb2}
        self.test = test_pb2

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def free_port():
    """A port that was free a moment ago (for servers without --port-file)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process under test, stopped only by its own PID."""

    def __init__(self, argv, env=None, port_file=False, start_timeout_s=30.0):
        self.log_dir = tempfile.mkdtemp(prefix="herald-interop-srv-")
        self.log_path = os.path.join(self.log_dir, "server.log")
        self.port = None
        self.proc = None
        self.exit_code = None
        full_env = dict(os.environ)
        full_env.update(env or {})
        if port_file:
            pf = os.path.join(self.log_dir, "port")
            argv = list(argv) + ["--listen", "127.0.0.1:0", "--port-file", pf]
        else:
            pf = None
            self.port = free_port()
            argv = list(argv) + ["--listen", "127.0.0.1:%d" % self.port]
        self.argv = argv
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env=full_env)
        deadline = time.monotonic() + start_timeout_s
        try:
            if pf:
                while self.port is None:
                    self._check_alive()
                    if time.monotonic() > deadline:
                        raise RuntimeError("no port file after %.0f s" % start_timeout_s)
                    try:
                        with open(pf) as f:
                            txt = f.read().strip()
                        if txt:
                            self.port = int(txt)
                    except (OSError, ValueError):
                        pass
                    time.sleep(0.02)
            self.target = "127.0.0.1:%d" % self.port
            # Serving = a health Check answers (whatever the status).
            while True:
                self._check_alive()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("server not answering after %.0f s" % start_timeout_s)
                with grpc.insecure_channel(self.target) as ch:
                    try:
                        ch.unary_unary(HEALTH + "Check")(b"", timeout=min(1.0, left))
                        break
                    except grpc.RpcError as e:
                        if e.code() not in (grpc.StatusCode.UNAVAILABLE,
                                            grpc.StatusCode.DEADLINE_EXCEEDED):
                            break
                time.sleep(0.05)
        except Exception:
            self.kill()
            sys.stderr.write(self.log_tail())
            raise

    def _check_alive(self):
        rc = self.proc.poll()
        if rc is not None:
            raise RuntimeError("server exited early with %d:\n%s" % (rc, self.log_tail()))

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join(["--- server log (%s) ---" % " ".join(self.argv)] + lines[-n:]) + "\n"

    def signal(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout_s):
        """Exit code, or None if still running after timeout_s."""
        try:
            self.exit_code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    def stop(self, timeout_s=15.0):
        """SIGTERM and wait; returns the exit code (SIGKILL and -9 on timeout)."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            if self.wait(timeout_s) is None:
                self.kill()
                sys.stderr.write("server ignored SIGTERM for %.0f s\n" % timeout_s)
                return -9
        self.exit_code = self.proc.returncode
        self._log.close()
        return self.exit_code

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._log.close()

    def cleanup(self):
        shutil.rmtree(self.log_dir, ignore_errors=True)


def unary(ch, path, req_cls=None, resp_cls=None):
    """A unary multicallable; with no classes it sends and returns raw bytes."""
    return ch.unary_unary(
        path,
        request_serializer=(lambda m: m.SerializeToString()) if req_cls else None,
        response_deserializer=resp_cls.FromString if resp_cls else None)


def server_stream(ch, path, resp_cls):
    return ch.unary_stream(
        path, request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=resp_cls.FromString)


def client_stream(ch, path, resp_cls):
    return ch.stream_unary(
        path, request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=resp_cls.FromString)


def bidi(ch, path, resp_cls):
    return ch.stream_stream(
        path, request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=resp_cls.FromString)


def trailer(call_or_err, key):
    for k, v in call_or_err.trailing_metadata() or ():
        if k == key:
            return v
    return None


def run_main():
    """unittest.main with verbose output; exits non-zero on failure."""
    import unittest

    unittest.main(verbosity=2)
