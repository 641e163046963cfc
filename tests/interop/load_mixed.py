#!/usr/bin/python3
"""A mixed call load for leak checks (scripts/valgrind-check) and soak runs.

    load_mixed.py --target 127.0.0.1:PORT --kind rpc_testd|heraldd --calls N [--threads T]

Each step is one RPC with the status code it must end with: health Check (known
and unknown names), Watch cancelled after its first message, Echo (OK, handler
error with a trailer, deadline exceeded, detached), server streaming, client
streaming, bidi, a garbage payload, an unknown method and, on heraldd,
reflection v1 and v1alpha (list, symbol lookup, error). Prints the count per
step and code; exits 1 if any call ended with another code than expected.
"""

import argparse
import collections
import itertools
import sys
import threading
import time

import grpc

import interop_common as ic

SC = grpc.StatusCode


def steps_common(p, ch):
    h = p.health
    check = ic.unary(ch, ic.HEALTH + "Check", h.HealthCheckRequest, h.HealthCheckResponse)
    watch = ic.server_stream(ch, ic.HEALTH + "Watch", h.HealthCheckResponse)

    def check_ok():
        check(h.HealthCheckRequest(service=""), timeout=30)

    def check_unknown():
        check(h.HealthCheckRequest(service="no.such.Service"), timeout=30)

    def watch_cancel():
        call = watch(h.HealthCheckRequest(service="liveness"), timeout=30)
        next(call)
        call.cancel()
        raise Cancelled()

    def garbage():
        ic.unary(ch, ic.HEALTH + "Check")(b"\x0f\xff\xff\xff\xff", timeout=30)

    def unknown_method():
        ic.unary(ch, "/no.such.Service/Method")(b"", timeout=30)

    return [
        ("check", check_ok, SC.OK),
        ("check_unknown", check_unknown, SC.NOT_FOUND),
        ("watch_cancel", watch_cancel, SC.CANCELLED),
        ("garbage", garbage, SC.INTERNAL),
        ("unknown_method", unknown_method, SC.UNIMPLEMENTED),
    ]


class Cancelled(grpc.RpcError):
    """Stands for a call this client cancelled itself."""

    def code(self):
        return SC.CANCELLED


def steps_testd(p, ch):
    t = p.test
    echo = ic.unary(ch, ic.TEST + "Echo", t.EchoRequest, t.EchoReply)
    sstream = ic.server_stream(ch, ic.TEST + "ServerStream", t.EchoReply)
    collect = ic.client_stream(ch, ic.TEST + "Collect", t.EchoReply)
    chat = ic.bidi(ch, ic.TEST + "Chat", t.EchoReply)

    def echo_ok():
        echo(t.EchoRequest(message="hello", reply_bytes=512), timeout=30,
             metadata=[("x-test", "v"), ("x-request-id", "load-1")])

    def echo_fail():
        echo(t.EchoRequest(message="x", fail_code=9, fail_message="nope",
                           trailer_key="x-herald-test", trailer_value="t"), timeout=30)

    def echo_deadline():
        echo(t.EchoRequest(message="slow", sleep_ms=400), timeout=0.05)

    def echo_cancel():
        f = echo.future(t.EchoRequest(message="cancel me", sleep_ms=400, detach=True),
                        timeout=30)
        time.sleep(0.02)
        f.cancel()
        raise Cancelled()

    def echo_detach():
        echo(t.EchoRequest(message="later", sleep_ms=5, detach=True), timeout=30)

    def stream():
        n = len(list(sstream(t.StreamRequest(count=3, interval_ms=1), timeout=30)))
        assert n == 3, n

    def stream_fail():
        list(sstream(t.StreamRequest(count=3, fail_after=1, fail_code=10), timeout=30))

    def client_stream():
        r = collect(iter([t.EchoRequest(message=s) for s in "abc"]), timeout=30)
        assert r.message == "abc", r.message

    def bidi():
        got = [r.message for r in chat(iter([t.EchoRequest(message=s) for s in "xy"]),
                                         timeout=30)]
        assert got == ["x", "y"], got

    return [
        ("echo", echo_ok, SC.OK),
        ("echo_error", echo_fail, SC.FAILED_PRECONDITION),
        ("echo_deadline", echo_deadline, SC.DEADLINE_EXCEEDED),
        ("echo_cancel", echo_cancel, SC.CANCELLED),
        ("echo_detach", echo_detach, SC.OK),
        ("server_stream", stream, SC.OK),
        ("server_stream_error", stream_fail, SC.ABORTED),
        ("client_stream", client_stream, SC.OK),
        ("bidi", bidi, SC.OK),
    ]


def steps_heraldd(p, ch):
    out = []
    for version, path in (("v1", ic.REFLECTION_V1), ("v1alpha", ic.REFLECTION_V1ALPHA)):
        pb = p.refl[version]
        call = ic.bidi(ch, path, pb.ServerReflectionResponse)

        def ask(reqs, pb=pb, call=call):
            return list(call(iter([pb.ServerReflectionRequest(**r) for r in reqs]),
                             timeout=30))

        def listing(ask=ask):
            (r,) = ask([{"list_services": ""}])
            assert len(r.list_services_response.service) == len(ic.EXPECTED_SERVICES)

        def symbols(ask=ask):
            rs = ask([{"file_containing_symbol": s} for s in ic.HERALD_SERVICES] +
                     [{"file_containing_symbol": "herald.v1.NoSuchThing"}])
            assert len(rs) == len(ic.HERALD_SERVICES) + 1
            assert rs[-1].HasField("error_response")

        out += [("reflection_%s_list" % version, listing, SC.OK),
                ("reflection_%s_symbols" % version, symbols, SC.OK)]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--kind", choices=["rpc_testd", "heraldd"], required=True)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--max-seconds", type=float, default=600)
    a = ap.parse_args()

    p = ic.Protos()
    ch = grpc.insecure_channel(a.target)
    grpc.channel_ready_future(ch).result(timeout=60)
    steps = steps_common(p, ch)
    steps += steps_testd(p, ch) if a.kind == "rpc_testd" else steps_heraldd(p, ch)

    lock = threading.Lock()
    counts = collections.Counter()
    bad = []
    seq = itertools.count()
    end = time.monotonic() + a.max_seconds

    def worker():
        while time.monotonic() < end:
            i = next(seq)
            if i >= a.calls:
                return
            name, fn, want = steps[i % len(steps)]
            try:
                fn()
                got = SC.OK
            except grpc.RpcError as e:
                got = e.code()
            except AssertionError as e:
                got = "assert: %s" % e
            with lock:
                counts[(name, got)] += 1
                if got != want and not (isinstance(want, tuple) and got in want):
                    bad.append((name, want, got))

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(a.threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ch.close()
    p.cleanup()
    total = sum(counts.values())
    for (name, code), n in sorted(counts.items(), key=lambda kv: kv[0][0]):
        print("%-26s %-22s %6d" % (name, getattr(code, "name", code), n))
    print("%d calls in %.1f s, %d unexpected" % (total, time.monotonic() - t0, len(bad)))
    for b in bad[:10]:
        print("unexpected: %s wanted %s got %s" % b, file=sys.stderr)
    if total < a.calls:
        print("only %d of %d calls within %.0f s" % (total, a.calls, a.max_seconds),
              file=sys.stderr)
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
