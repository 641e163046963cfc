#!/usr/bin/env bash
# tests/fuzz/run.sh - build the libFuzzer targets with clang and run each one.
#
#   tests/fuzz/run.sh [-t SECONDS] [-s SEED] [--build DIR] [TARGET...]
#
# Builds DIR (default build-fuzz/) with clang, -DHERALD_FUZZ=ON and
# -fsanitize=fuzzer,address,undefined (our libraries with fuzzer-no-link, so
# libFuzzer sees their coverage), then runs every target (or the ones named)
# for SECONDS each (default 60, as CI runs them) with
#   -rss_limit_mb=512 -timeout=1 -max_len=65536
# and -seed=SEED (default 0: libFuzzer draws one, printed in the log). CI
# passes a fixed seed so that a run is repeatable and a red CI reproduces;
# exploratory runs leave it random and run longer (-t 600).
# over a working copy of its committed seeds (tests/fuzz/corpus/<target>/;
# new inputs go to DIR/fuzz-corpus/<target>/, never into the repository).
# Any crash, sanitizer report, leak, timeout or OOM fails the run; the input
# is saved as DIR/fuzz-artifacts/<target>-crash-* (or leak-, timeout-, oom-)
# and the log tail printed. One summary line per target:
#   fuzz: <target> ok|FAILED runs=<n> exec/s=<n> cov=<n> corpus=<n> seconds=<n>
# Needs clang and libclang-rt-14-dev (scripts/deps installs both).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd -P)
BUILD=$ROOT/build-fuzz
SECONDS_EACH=60
SEED=0
TARGETS=()
while [ $# -gt 0 ]; do
    case "$1" in
    -t) SECONDS_EACH=$2; shift 2 ;;
    -s) SEED=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    -h | --help) sed -n '2,23p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
    esac
done
ALL=(fuzz_request fuzz_reflection fuzz_pbjson fuzz_llm_parse fuzz_config fuzz_auth fuzz_descset)
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")

CC=$(command -v clang-14 || command -v clang || true)
CXX=$(command -v clang++-14 || command -v clang++ || true)
if [ -z "$CC" ] || [ -z "$CXX" ]; then
    echo "run.sh: clang is not installed (scripts/deps installs clang and libclang-rt-14-dev)" >&2
    exit 1
fi

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_FUZZ=ON -DWERROR=OFF \
    -DSANITIZE=address,undefined,fuzzer-no-link >/dev/null
cmake --build "$BUILD" -j 2 --target "${TARGETS[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:quarantine_size_mb=64}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$BUILD/fuzz-corpus" "$BUILD/fuzz-artifacts" "$BUILD/fuzz-logs"
failed=0
for t in "${TARGETS[@]}"; do
    seeds=$ROOT/tests/fuzz/corpus/$t
    work=$BUILD/fuzz-corpus/$t
    log=$BUILD/fuzz-logs/$t.log
    mkdir -p "$work"
    t0=$(date +%s)
    rc=0
    # The hard timeout is a backstop: libFuzzer stops itself at SECONDS.
    timeout -k 10 $((SECONDS_EACH + 120)) "$BUILD/bin/$t" \
        -max_total_time="$SECONDS_EACH" -seed="$SEED" -rss_limit_mb=512 -timeout=1 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$BUILD/fuzz-artifacts/$t-" \
        "$work" "$seeds" >"$log" 2>&1 || rc=$?
    took=$(($(date +%s) - t0))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    corpus=$(find "$work" -type f | wc -l)
    if [ $rc -eq 0 ]; then
        echo "fuzz: $t ok runs=${runs:-?} exec/s=${speed:-?} cov=${cov:-?} corpus=$corpus seconds=$took"
    else
        failed=1
        echo "fuzz: $t FAILED (exit $rc) runs=${runs:-?} seconds=$took; log $log"
        grep -E 'ERROR|SUMMARY|invariant failed|Test unit written' "$log" | head -20 >&2 || true
        tail -40 "$log" >&2
    fi
done
exit $failed
