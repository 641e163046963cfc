#!/usr/bin/env python3
"""cg_calls.py - call counts and costs from a callgrind output file.

    bench/prof/cg_calls.py CALLGRIND.OUT [--per N] [--match REGEX] [--top K]

callgrind_annotate shows instructions; this adds how many times each
function was called (summed over all call sites), divided by --per (the
number of RPCs the profile covered), so "allocations per call", "locks per
call" and "syscalls per call" can be read off directly. --match keeps the
functions whose name matches (default: allocation, locking and syscall
entry points)."""
import argparse
import re
import sys
from collections import defaultdict

DEFAULT = (r"^(malloc|calloc|realloc|free|operator new|operator delete|gpr_malloc|gpr_free"
           r"|gpr_mu_lock|pthread_mutex_lock|absl::[a-z0-9_:]*Mutex::Lock|absl::[a-z0-9_:]*Mutex::Unlock"
           r"|absl::[a-z0-9_:]*GraphCycles::GetId|sendmsg|recvmsg|read|write|writev|readv|epoll_wait"
           r"|epoll_ctl|eventfd_write|eventfd_read|futex|syscall|__libc_sendmsg|__libc_recvmsg"
           r"|clock_gettime|__clock_gettime|pthread_cond_signal|pthread_cond_wait"
           r"|pthread_cond_timedwait|sched_yield|memcpy|__memcpy_avx_unaligned_erms)(\(|$| )")


def parse(path):
    names = {}  # id -> name, per kind (fn/cfn share one table)
    calls = defaultdict(int)
    incl = defaultdict(int)
    self_cost = defaultdict(int)
    cur_fn = None
    pending_cfn = None
    expect_call_cost = False
    total = 0

    def name_of(tok):
        m = re.match(r"\((\d+)\)(?: (.*))?", tok)
        if not m:
            return tok
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), tok)

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if expect_call_cost:
                expect_call_cost = False
                parts = line.split()
                if len(parts) >= 2 and pending_cfn is not None:
                    incl[pending_cfn] += int(parts[1])
                continue
            if line.startswith("fn="):
                cur_fn = name_of(line[3:])
            elif line.startswith("cfn="):
                pending_cfn = name_of(line[4:])
            elif line.startswith("calls="):
                n = int(line[6:].split()[0])
                if pending_cfn is not None:
                    calls[pending_cfn] += n
                expect_call_cost = True
            elif line.startswith("summary:") or line.startswith("totals:"):
                total = max(total, int(line.split()[1]))
            elif line and (line[0].isdigit() or line[0] in "+-*") and cur_fn is not None:
                parts = line.split()
                if len(parts) >= 2:
                    self_cost[cur_fn] += int(parts[1])
    return calls, incl, self_cost, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--per", type=float, default=1.0, help="divide by this many RPCs")
    ap.add_argument("--match", default=DEFAULT)
    ap.add_argument("--top", type=int, default=40)
    a = ap.parse_args()
    calls, incl, self_cost, total = parse(a.file)
    rx = re.compile(a.match)
    print(f"total Ir {total:,} = {total / a.per:,.0f} per call (over {a.per:,.0f} calls)")
    print(f"{'calls/call':>11} {'incl Ir/call':>13} {'self Ir/call':>13}  function")
    rows = [(n, c) for n, c in calls.items() if rx.search(n)]
    rows.sort(key=lambda x: -x[1])
    for n, c in rows[:a.top]:
        print(f"{c / a.per:11.2f} {incl[n] / a.per:13,.0f} {self_cost[n] / a.per:13,.0f}  {n[:110]}")


if __name__ == "__main__":
    sys.exit(main())
