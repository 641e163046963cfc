#!/usr/bin/python3
"""Bearer tokens and scopes end to end against heraldd (issue 9; §3, §16 T11).

heraldd runs with four tokens from HERALD_TOKENS_FILE (read, write,
executor, admin), reflection token-gated, and the services fixture's
PostgreSQL, so an allowed call reaches its handler. Checked:
  - no token, a wrong token, a malformed header: UNAUTHENTICATED (+ ErrorInfo
    reason in the message path) and the handler never runs;
  - a read token on a write method and on an admin method: PERMISSION_DENIED
    naming the token; an executor token on a write method: PERMISSION_DENIED;
  - the right scope: OK (admin CreateProfile, read GetProfile), and implied
    scopes (write and executor read; admin everything);
  - health without a token: SERVING; reflection: UNAUTHENTICATED without a
    token, answers with one;
  - tokens never appear in heraldd's log (stdout and stderr) nor in
    --print-config; denials name the token (its name, not its secret);
  - SIGHUP with a changed tokens file: the old token stops working and the
    new one works, without a restart;
  - a malformed tokens file stops start-up with exit 78 and a message naming
    the entry, not the token.
"""

import os
import subprocess
import time
import unittest
import uuid

import grpc

import sec_common as sc  # noqa: I100 (puts tests/interop on sys.path)
import interop_common as ic  # noqa: E402

TOKENS = {
    "reader": ("read", "rd-" + uuid.uuid4().hex + "Zz"),
    "writer": ("write", "wr-" + uuid.uuid4().hex + "Yy"),
    "runner-1": ("executor", "ex-" + uuid.uuid4().hex + "Xx"),
    "ops.admin": ("admin", "ad-" + uuid.uuid4().hex + "Ww=="),
}
NEW_TOKEN = "nw-" + uuid.uuid4().hex + "Vv"

HP = None
SRV = None
CH = None
TOKFILE = None
PROFILE_ID = "sec-" + uuid.uuid4().hex[:12]


def tok(name):
    return TOKENS[name][1]


def write_tokens(path, entries):
    with open(path + ".tmp", "w") as f:
        f.write("# name:scopes:token (test)\n")
        for name, (scope, t) in entries.items():
            f.write("%s:%s:%s\n" % (name, scope, t))
    os.rename(path + ".tmp", path)


def setUpModule():
    global HP, SRV, CH, TOKFILE
    if "DATABASE_URL" not in os.environ:
        raise unittest.SkipTest("needs the services fixture (DATABASE_URL)")
    HP = sc.HeraldProtos()
    SRV = None
    d = os.environ.get("TMPDIR", "/tmp")
    TOKFILE = os.path.join(d, "herald-sec-tokens-%d" % os.getpid())
    write_tokens(TOKFILE, TOKENS)
    SRV = sc.Heraldd(env={"HERALD_TOKENS_FILE": TOKFILE, "HERALD_AUTH_REFLECTION": "token"})
    CH = grpc.insecure_channel(SRV.target)
    sc.wait_serving(CH)
    sc.wait_serving(CH, service="readiness", timeout_s=60)
    st, msg = code_of(sc.OPS + "CreateProfile", create_req(), token=tok("ops.admin"))
    if st != grpc.StatusCode.OK:
        raise AssertionError("admin CreateProfile: %s %s" % (st, msg))


def tearDownModule():
    try:
        if CH is not None:
            CH.close()
        if SRV is not None:
            rc = SRV.stop()
            if rc != 0:
                raise AssertionError("heraldd exited %r:\n%s" % (rc, SRV.log_text()[-3000:]))
            SRV.cleanup()
    finally:
        if TOKFILE is not None and os.path.exists(TOKFILE):
            os.unlink(TOKFILE)
        if HP is not None:
            HP.cleanup()


def call(path, req, resp_cls=None, token=None, header=None, timeout=10):
    md = []
    if token is not None:
        md.append(("authorization", "Bearer " + token))
    if header is not None:
        md.append(("authorization", header))
    fn = CH.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                        response_deserializer=resp_cls.FromString if resp_cls else None)
    return fn(req, metadata=md, timeout=timeout)


def code_of(path, req, **kw):
    try:
        call(path, req, **kw)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def get_req():
    return HP.ops.GetProfileRequest(profile_id=PROFILE_ID)


def create_req():
    p = HP.ops.Profile(profile_id=PROFILE_ID, display_name="Sec test",
                       platform=HP.common.Platform.Value(
                           [n for n in HP.common.Platform.keys() if not n.endswith("UNSPECIFIED")][0]))
    return HP.ops.CreateProfileRequest(request_id=str(uuid.uuid4()), profile=p)


class Tokens(unittest.TestCase):
    def test_no_token(self):
        st, msg = code_of(sc.OPS + "GetProfile", get_req())
        self.assertEqual(st, grpc.StatusCode.UNAUTHENTICATED, msg)
        self.assertIn("missing bearer token", msg)

    def test_wrong_token(self):
        for bad in ("wr-" + uuid.uuid4().hex + "Yy", tok("reader") + "x", tok("reader")[:-1]):
            st, msg = code_of(sc.OPS + "GetProfile", get_req(), token=bad)
            self.assertEqual(st, grpc.StatusCode.UNAUTHENTICATED, msg)

    def test_malformed_header(self):
        for h in ("Basic dXNlcjpwYXNz", tok("reader"), "Bearer", "Token " + tok("reader")):
            st, msg = code_of(sc.OPS + "GetProfile", get_req(), header=h)
            self.assertEqual(st, grpc.StatusCode.UNAUTHENTICATED, "%s: %s" % (h, msg))

    def test_read_token_on_write_and_admin(self):
        st, msg = code_of(CONTENT_UPDATE, HP.content.UpdateDraftRequest(), token=tok("reader"))
        self.assertEqual(st, grpc.StatusCode.PERMISSION_DENIED, msg)
        self.assertIn("reader", msg)
        self.assertIn("write", msg)
        st, msg = code_of(sc.OPS + "CreateProfile", create_req(), token=tok("reader"))
        self.assertEqual(st, grpc.StatusCode.PERMISSION_DENIED, msg)
        self.assertIn("admin", msg)

    def test_executor_token_on_write(self):
        st, msg = code_of(CONTENT_UPDATE, HP.content.UpdateDraftRequest(),
                          token=tok("runner-1"))
        self.assertEqual(st, grpc.StatusCode.PERMISSION_DENIED, msg)

    def test_right_scope_ok(self):
        prof = call(sc.OPS + "GetProfile", get_req(), HP.ops.Profile, token=tok("reader"))
        self.assertEqual(prof.profile_id, PROFILE_ID)
        # write and executor imply read; admin implies everything
        for name in ("writer", "runner-1", "ops.admin"):
            st, msg = code_of(sc.OPS + "GetProfile", get_req(), token=tok(name))
            self.assertEqual(st, grpc.StatusCode.OK, "%s: %s" % (name, msg))
        # scopes that pass auth reach the method (unimplemented ones say so)
        for name, path, req in (
                ("writer", CONTENT_UPDATE, HP.content.UpdateDraftRequest()),
                ("runner-1", sc.SCHED + "ClaimDueWork", HP.sched.ClaimDueWorkRequest()),
                ("ops.admin", CONTENT_UPDATE, HP.content.UpdateDraftRequest())):
            st, msg = code_of(path, req, token=tok(name))
            self.assertNotIn(st, (grpc.StatusCode.UNAUTHENTICATED,
                                  grpc.StatusCode.PERMISSION_DENIED), "%s %s: %s" % (name, path, msg))

    def test_health_without_token(self):
        self.assertEqual(sc.health_status(CH), 1)

    def test_reflection_gated(self):
        P = ic.Protos()
        try:
            pb = P.refl["v1"]
            fn = ic.bidi(CH, ic.REFLECTION_V1, pb.ServerReflectionResponse)
            with self.assertRaises(grpc.RpcError) as cm:
                list(fn(iter([pb.ServerReflectionRequest(list_services="")]), timeout=5))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
            out = list(fn(iter([pb.ServerReflectionRequest(list_services="")]), timeout=5,
                          metadata=[("authorization", "Bearer " + tok("runner-1"))]))
            names = [s.name for s in out[0].list_services_response.service]
            self.assertIn("herald.v1.OpsService", names)
        finally:
            P.cleanup()

    def test_zz_tokens_never_logged(self):
        time.sleep(0.2)  # the access lines of the calls above
        log = SRV.log_bytes() + SRV.stderr_bytes()
        for name, (_, t) in TOKENS.items():
            self.assertNotIn(t.encode(), log, "token of %s in the log" % name)
        self.assertIn(b'"auth on: bearer tokens required"', log)
        self.assertIn(b"token reader lacks scope", log)  # names, not secrets
        self.assertIn(b'"auth.principal":"reader"', log)  # who, on the access line
        ok, bad = sc.json_lines_ok(SRV.log_bytes())
        self.assertTrue(ok, bad)
        env = dict(os.environ, HERALD_TOKENS_FILE=TOKFILE)
        out = subprocess.run([ic.bin_path("heraldd"), "--print-config"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30).stdout
        self.assertIn(b"auth.tokens = ***", out)
        for _, t in TOKENS.values():
            self.assertNotIn(t.encode(), out)


CONTENT_UPDATE = sc.CONTENT + "UpdateDraft"


class Reload(unittest.TestCase):
    def test_sighup_rotates_tokens(self):
        entries = dict(TOKENS)
        entries["reader"] = ("read", NEW_TOKEN)
        write_tokens(TOKFILE, entries)
        try:
            SRV.hup()
            deadline = time.monotonic() + 10
            st = None
            while time.monotonic() < deadline:
                st, _ = code_of(sc.OPS + "GetProfile", get_req(), token=NEW_TOKEN)
                if st == grpc.StatusCode.OK:
                    break
                time.sleep(0.1)
            self.assertEqual(st, grpc.StatusCode.OK)
            st, _ = code_of(sc.OPS + "GetProfile", get_req(), token=tok("reader"))
            self.assertEqual(st, grpc.StatusCode.UNAUTHENTICATED)
            self.assertIn(b'"auth.tokens reloaded"', SRV.log_bytes())
            self.assertNotIn(NEW_TOKEN.encode(), SRV.log_bytes())
            # a broken file keeps the tokens in force
            with open(TOKFILE, "w") as f:
                f.write("reader:reed:" + NEW_TOKEN + "\n")
            SRV.hup()
            deadline = time.monotonic() + 10
            while b"auth.tokens not reloaded" not in SRV.log_bytes() and \
                    b"config reload failed" not in SRV.log_bytes() and \
                    time.monotonic() < deadline:
                time.sleep(0.1)
            st, _ = code_of(sc.OPS + "GetProfile", get_req(), token=NEW_TOKEN)
            self.assertEqual(st, grpc.StatusCode.OK)
            self.assertNotIn(NEW_TOKEN.encode(), SRV.log_bytes())
        finally:
            write_tokens(TOKFILE, TOKENS)
            SRV.hup()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if code_of(sc.OPS + "GetProfile", get_req(), token=tok("reader"))[0] == \
                        grpc.StatusCode.OK:
                    break
                time.sleep(0.1)


class BadTokens(unittest.TestCase):
    def test_bad_file_stops_start(self):
        secret = "bad-" + uuid.uuid4().hex
        path = TOKFILE + ".bad"
        with open(path, "w") as f:
            f.write("ok:read:%s\nbroken:superuser:%s\n" % (tok("reader"), secret))
        try:
            srv = sc.Heraldd(env={"HERALD_TOKENS_FILE": path}, expect_exit=True)
            try:
                rc = srv.wait_exit(30)
                if rc is None:
                    srv.kill()
                self.assertEqual(rc, 78, srv.log_text()[-2000:])
                text = srv.log_bytes() + srv.stderr_bytes()
                self.assertIn(b"token entry 2 (broken)", text)
                self.assertNotIn(secret.encode(), text)
                self.assertNotIn(tok("reader").encode(), text)
            finally:
                srv.cleanup()
        finally:
            os.unlink(path)


if __name__ == "__main__":
    sc.run_main()
