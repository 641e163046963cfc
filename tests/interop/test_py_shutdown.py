#!/usr/bin/python3
"""Graceful shutdown of rpc_testd, seen by Python grpcio clients.

- 20 in-flight 2 s Echo calls, then SIGTERM: all 20 complete OK, health goes
  NOT_SERVING (seen by a Watch), calls started after SIGTERM fail UNAVAILABLE,
  and the process exits 0 within grace + 1 s.
- A call longer than the grace period is cancelled and the process still exits
  0 within grace + 1 s.
- A second SIGTERM exits at once.
Each test starts its own server and stops only that PID.
"""

import signal
import threading
import time
import unittest

import grpc

import interop_common as ic

P = None


def setUpModule():
    global P
    P = ic.Protos()


def tearDownModule():
    if P is not None:
        P.cleanup()


class Shutdown(unittest.TestCase):
    def start(self, grace_ms):
        srv = ic.Server([ic.bin_path("rpc_testd"), "--workers", "2", "--grace-ms",
                         str(grace_ms)], port_file=True)
        self.addCleanup(srv.cleanup)
        self.addCleanup(srv.kill)
        return srv

    def echo_future(self, ch, timeout=15, **kw):
        t = P.test
        return ic.unary(ch, ic.TEST + "Echo", t.EchoRequest, t.EchoReply).future(
            t.EchoRequest(**kw), timeout=timeout)

    def watch(self, ch, name):
        """Starts Watch(name) in a thread; returns (events list, thread)."""
        h = P.health
        events = []
        call = ic.server_stream(ch, ic.HEALTH + "Watch", h.HealthCheckResponse)(
            h.HealthCheckRequest(service=name), timeout=30)

        def run():
            try:
                for m in call:
                    events.append((time.monotonic(), m.status))
            except grpc.RpcError as e:
                events.append((time.monotonic(), e.code()))

        th = threading.Thread(target=run, daemon=True)
        th.start()
        return events, th, call

    def wait_for(self, pred, timeout_s):
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if pred():
                return True
            time.sleep(0.01)
        return pred()

    def test_in_flight_calls_finish(self):
        S = P.health.HealthCheckResponse
        grace_ms = 5000
        srv = self.start(grace_ms)
        ch = grpc.insecure_channel(srv.target)
        self.addCleanup(ch.close)
        grpc.channel_ready_future(ch).result(timeout=10)

        events, th, _ = self.watch(ch, "")
        self.assertTrue(self.wait_for(lambda: len(events) >= 1, 5), "no Watch message")
        self.assertEqual(events[0][1], S.SERVING)

        futures = [self.echo_future(ch, message="inflight-%d" % i, sleep_ms=2000, detach=True)
                   for i in range(20)]
        time.sleep(0.5)  # let all 20 reach the server
        self.assertFalse(any(f.done() for f in futures), "calls ended before SIGTERM")

        t_term = time.monotonic()
        srv.signal(signal.SIGTERM)

        # Health goes NOT_SERVING and the watcher is told.
        self.assertTrue(self.wait_for(lambda: any(e[1] == S.NOT_SERVING for e in events), 2),
                        "Watch never saw NOT_SERVING: %r" % events)
        not_serving_ms = (next(e[0] for e in events if e[1] == S.NOT_SERVING) - t_term) * 1000
        self.assertLess(not_serving_ms, 1000)

        # New calls fail UNAVAILABLE, on a new channel and on the old one.
        time.sleep(0.2)
        with grpc.insecure_channel(srv.target) as ch2:
            for c in (ch2, ch):
                f = self.echo_future(c, timeout=5, message="late")
                with self.assertRaises(grpc.RpcError) as cm:
                    f.result(timeout=6)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)

        # All 20 in-flight calls complete OK.
        for i, f in enumerate(futures):
            reply = f.result(timeout=10)
            self.assertEqual(reply.message, "inflight-%d" % i)

        rc = srv.wait(grace_ms / 1000 + 1 - (time.monotonic() - t_term))
        exit_s = time.monotonic() - t_term
        self.assertEqual(rc, 0, "exit code %r after %.2f s\n%s" % (rc, exit_s, srv.log_tail()))
        self.assertLessEqual(exit_s, grace_ms / 1000 + 1)
        th.join(timeout=5)
        print("shutdown: NOT_SERVING after %.0f ms, exit 0 after %.2f s" %
              (not_serving_ms, exit_s))

    def test_calls_past_grace_are_cancelled(self):
        grace_ms = 1000
        srv = self.start(grace_ms)
        ch = grpc.insecure_channel(srv.target)
        self.addCleanup(ch.close)
        slow = self.echo_future(ch, timeout=30, message="slow", sleep_ms=8000, detach=True)
        time.sleep(0.3)
        t_term = time.monotonic()
        srv.signal(signal.SIGTERM)
        with self.assertRaises(grpc.RpcError) as cm:
            slow.result(timeout=grace_ms / 1000 + 3)
        self.assertIn(cm.exception.code(),
                      (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED))
        rc = srv.wait(grace_ms / 1000 + 1 - (time.monotonic() - t_term))
        self.assertEqual(rc, 0, srv.log_tail())
        self.assertLessEqual(time.monotonic() - t_term, grace_ms / 1000 + 1)

    def test_second_signal_exits_at_once(self):
        srv = self.start(20000)
        ch = grpc.insecure_channel(srv.target)
        self.addCleanup(ch.close)
        slow = self.echo_future(ch, timeout=30, message="slow", sleep_ms=10000, detach=True)
        time.sleep(0.3)
        srv.signal(signal.SIGTERM)
        time.sleep(0.3)
        self.assertIsNone(srv.proc.poll(), "exited before the grace period")
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        rc = srv.wait(1.0)
        self.assertIsNotNone(rc, "still running 1 s after the second SIGTERM")
        self.assertLess(time.monotonic() - t0, 1.0)
        with self.assertRaises(grpc.RpcError):
            slow.result(timeout=5)


if __name__ == "__main__":
    ic.run_main()
