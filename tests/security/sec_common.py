"""Shared helpers of the security tests (Debian's /usr/bin/python3 + grpcio).

- Protos: health, reflection (from interop_common) plus Herald's own
  herald.v1 protos compiled with protoc into a private temp dir.
- Heraldd: heraldd on 127.0.0.1 with a port file and its log captured,
  stopped by PID only; waits for the port file, not for a plaintext Check
  (a TLS-only port would never answer one).
- make_pki(): a throw-away CA, server and client certificates made with the
  openssl command in a temp dir at test time (nothing is committed): server
  SAN IP:127.0.0.1 and DNS:localhost; clients valid, expired (openssl ca
  -startdate/-enddate in 2020) and from another CA.
- Log helpers: every line one JSON object; secrets absent.
- Process figures: /proc/PID/status VmRSS/VmHWM and /proc/PID/fd counts.

Every wait is bounded in time.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "interop"))

import grpc  # noqa: E402

import interop_common as ic  # noqa: E402

OPS = "/herald.v1.OpsService/"
CONTENT = "/herald.v1.ContentService/"
SCHED = "/herald.v1.SchedulingService/"


class HeraldProtos:
    """herald.v1 message classes (ops_pb2, content_pb2, ...) from a temp dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="herald-sec-proto-")
        protos = sorted(
            os.path.join("herald", "v1", f)
            for f in os.listdir(os.path.join(SRC, "proto", "herald", "v1"))
            if f.endswith(".proto"))
        cmd = ["protoc", "-I" + os.path.join(SRC, "proto"), "-I/usr/include",
               "--python_out=" + self.dir] + protos
        subprocess.run(cmd, check=True, timeout=60)
        sys.path.insert(0, self.dir)
        from herald.v1 import common_pb2, content_pb2, ops_pb2, scheduling_pb2

        self.common = common_pb2
        self.content = content_pb2
        self.ops = ops_pb2
        self.sched = scheduling_pb2

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Heraldd:
    """heraldd under test on 127.0.0.1 (free port via --port-file)."""

    def __init__(self, env=None, args=(), start_timeout_s=30.0, expect_exit=False):
        self.dir = tempfile.mkdtemp(prefix="herald-sec-srv-")
        self.log_path = os.path.join(self.dir, "heraldd.log")
        pf = os.path.join(self.dir, "port")
        full_env = dict(os.environ)
        full_env.update(ic.HERALDD_ENV)
        full_env.update(env or {})
        self.argv = [ic.bin_path("heraldd"), "--listen", "127.0.0.1:0", "--port-file", pf] + \
            list(args)
        self.err_path = os.path.join(self.dir, "heraldd.stderr")
        self._log = open(self.log_path, "wb")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._err, env=full_env)
        self.pid = self.proc.pid
        self.port = None
        self.exit_code = None
        if expect_exit:
            return
        deadline = time.monotonic() + start_timeout_s
        while self.port is None:
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError("heraldd exited %d at start:\n%s" % (rc, self.log_text()))
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("no port file after %.0f s:\n%s" % (start_timeout_s,
                                                                      self.log_text()))
            try:
                with open(pf) as f:
                    txt = f.read().strip()
                if txt:
                    self.port = int(txt)
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        self.target = "127.0.0.1:%d" % self.port

    def log_text(self):
        """stdout (the JSON log) then stderr, for failure messages."""
        return (self.log_bytes() + b"\n--- stderr ---\n" + self.stderr_bytes()).decode(
            "utf-8", "replace")

    def log_bytes(self):
        """heraldd's stdout: its log, one JSON object per line."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def stderr_bytes(self):
        """heraldd's stderr: start-up errors, and whatever gRPC core prints."""
        try:
            with open(self.err_path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def _close_logs(self):
        for f in (self._log, self._err):
            if not f.closed:
                f.close()

    def wait_exit(self, timeout_s):
        try:
            self.exit_code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    def alive(self):
        return self.proc.poll() is None

    def hup(self):
        os.kill(self.pid, signal.SIGHUP)

    def stop(self, timeout_s=30.0):
        """SIGTERM, bounded wait; SIGKILL (and -9) if it hangs."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            if self.wait_exit(timeout_s) is None:
                self.kill()
                return -9
        self.exit_code = self.proc.returncode
        self._close_logs()
        return self.exit_code

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._close_logs()

    def cleanup(self):
        self._close_logs()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- /proc figures ----
    def status_kb(self, field):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))


def wait_serving(channel, timeout_s=20.0, service=""):
    """Polls Health/Check until SERVING (bounded); returns the status seen."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            raw = channel.unary_unary(ic.HEALTH + "Check")(
                b"" if not service else b"\x0a" + bytes([len(service)]) + service.encode(),
                timeout=1.0)
            last = raw
            if raw == b"\x08\x01":
                return True
        except grpc.RpcError as e:
            last = e.code()
        time.sleep(0.05)
    raise AssertionError("not SERVING after %.0f s (last %r)" % (timeout_s, last))


def health_status(channel, timeout=2.0):
    """Raw Health/Check of "": 1 SERVING, 2 NOT_SERVING (0 if absent)."""
    raw = channel.unary_unary(ic.HEALTH + "Check")(b"", timeout=timeout)
    return raw[1] if len(raw) >= 2 and raw[0] == 0x08 else 0


def foreign_lines(data):
    """Non-empty lines of data that are not JSON objects (e.g. gRPC core's
    own E1128 ... lines on stderr)."""
    out = []
    for line in data.split(b"\n"):
        if line.strip() and not json_lines_ok(line)[0]:
            out.append(line)
    return out


def json_lines_ok(data):
    """(ok, bad_line): every non-empty line of data is one JSON object."""
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return False, line[:300]
        if not isinstance(obj, dict):
            return False, line[:300]
    return True, None


# ---- throw-away PKI ----

def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _key(d, name):
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", name + ".key", cwd=d)


def _ca(d, name, cn):
    _key(d, name)
    _openssl("req", "-x509", "-new", "-key", name + ".key", "-sha256", "-days", "3",
             "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", name + ".crt", cwd=d)


def _leaf(d, name, ca, cn, ext, days=3):
    _key(d, name)
    _openssl("req", "-new", "-key", name + ".key", "-subj", "/CN=" + cn, "-out", name + ".csr",
             cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(ext)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
             "-CAcreateserial", "-sha256", "-days", str(days), "-extfile", name + ".ext",
             "-out", name + ".crt", cwd=d)


def _expired_leaf(d, name, ca, cn):
    """A client certificate valid only on 2020-01-01 (openssl ca sets the dates)."""
    _key(d, name)
    _openssl("req", "-new", "-key", name + ".key", "-subj", "/CN=" + cn, "-out", name + ".csr",
             cwd=d)
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("1000\n")
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = tca\n"
                "[tca]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
                "default_md = sha256\npolicy = pol\nunique_subject = no\n"
                "[pol]\ncommonName = supplied\n"
                "[client_ext]\nbasicConstraints = CA:FALSE\nextendedKeyUsage = clientAuth\n")
    _openssl("ca", "-batch", "-config", "ca.cnf", "-cert", ca + ".crt", "-keyfile", ca + ".key",
             "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
             "-extensions", "client_ext", "-notext", "-in", name + ".csr", "-out", name + ".crt",
             cwd=d)


SERVER_EXT = ("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
              "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
CLIENT_EXT = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"


class Pki:
    """Files in self.dir: ca, ca2 (another CA), server, server2 (by ca2),
    client, client_expired, client_wrong_ca (by ca2): NAME.crt and NAME.key."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="herald-sec-pki-")
        d = self.dir
        _ca(d, "ca", "herald-test-ca")
        _ca(d, "ca2", "herald-other-ca")
        _leaf(d, "server", "ca", "localhost", SERVER_EXT)
        _leaf(d, "server2", "ca2", "localhost", SERVER_EXT)
        _leaf(d, "client", "ca", "executor-1", CLIENT_EXT)
        _leaf(d, "client_wrong_ca", "ca2", "intruder", CLIENT_EXT)
        _expired_leaf(d, "client_expired", "ca", "executor-old")

    def path(self, name):
        return os.path.join(self.dir, name)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def tls_channel(target, pki, ca="ca.crt", client=None):
    """A TLS channel trusting ca; client = "client" etc. for mTLS."""
    key = pki.read(client + ".key") if client else None
    crt = pki.read(client + ".crt") if client else None
    creds = grpc.ssl_channel_credentials(root_certificates=pki.read(ca), private_key=key,
                                         certificate_chain=crt)
    return grpc.secure_channel(target, creds,
                               options=[("grpc.ssl_target_name_override", "localhost")])


def run_main():
    import unittest

    unittest.main(verbosity=2)
