#!/usr/bin/env bash
# bench/health_load.sh - grpc.health.v1.Health/Check throughput, latency and RSS.
#
#   bench/health_load.sh [--bin PATH] [-n REQUESTS] [-c CONNS] [-m STREAMS]
#                        [--service NAME] [--workers N] [--log-level LEVEL]
#
# Starts the server (default build/bin/heraldd; rpc_testd works too) on
# 127.0.0.1 with a free port, runs h2load with a pre-framed gRPC request (the
# 5-byte gRPC prefix + a serialized HealthCheckRequest), prints calls/s, p50/p99
# latency (from h2load's per-request log), the server's RSS (VmRSS idle and
# after the load, VmHWM) and, when the server exports it, the number of Check
# calls that ended with grpc-status OK (h2load itself only sees HTTP 200s).
# Then stops the server by its PID. The last line is one JSON object.
#
# Defaults: -n 200000 -c 8 -m 16 --service readiness --log-level warn (the
# per-call access line is debug-level for OK calls in production settings; pass
# --log-level info to measure with it). No DATABASE_URL is needed: Check reads
# the health table only.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
BIN=$ROOT/build/bin/heraldd
N=200000
CONNS=8
STREAMS=16
SERVICE=readiness
WORKERS=
LOG_LEVEL=warn

while [ $# -gt 0 ]; do
    case "$1" in
    --bin) BIN=$2; shift 2 ;;
    -n) N=$2; shift 2 ;;
    -c) CONNS=$2; shift 2 ;;
    -m) STREAMS=$2; shift 2 ;;
    --service) SERVICE=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --log-level) LOG_LEVEL=$2; shift 2 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "health_load.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

command -v h2load >/dev/null || { echo "h2load missing: run scripts/deps" >&2; exit 1; }
[ -x "$BIN" ] || { echo "health_load.sh: $BIN is not built" >&2; exit 1; }
[ ${#SERVICE} -lt 120 ] || { echo "health_load.sh: service name too long" >&2; exit 2; }

TMP=$(mktemp -d /tmp/herald-bench.XXXXXX)
PID=
cleanup()
{
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        for _ in $(seq 1 300); do
            kill -0 "$PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$PID" 2>/dev/null && kill -KILL "$PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# Request body: gRPC frame (flag 0, 4-byte big-endian length) around
# HealthCheckRequest{service = SERVICE} (tag 0x0a, one-byte length).
slen=${#SERVICE}
printf "\\x00\\x00\\x00\\x00\\x$(printf %02x $((slen + 2)))\\x0a\\x$(printf %02x "$slen")%s" \
    "$SERVICE" >"$TMP/check.bin"

free_port()
{
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
ADMIN_PORT=$(free_port)

args=(--listen 127.0.0.1:0 --port-file "$TMP/port")
[ -n "$WORKERS" ] && args+=(--workers "$WORKERS")
HERALD_ADMIN_LISTEN=127.0.0.1:$ADMIN_PORT HERALD_LOG_LEVEL=$LOG_LEVEL \
    "$BIN" "${args[@]}" </dev/null >"$TMP/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do
    [ -s "$TMP/port" ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$TMP/server.log" >&2; exit 1; }
    sleep 0.1
done
[ -s "$TMP/port" ] || { echo "health_load.sh: server did not start" >&2; exit 1; }
PORT=$(cat "$TMP/port")
URL=http://127.0.0.1:$PORT/grpc.health.v1.Health/Check
H2=(-H 'content-type: application/grpc' -H 'te: trailers' -d "$TMP/check.bin")

rss_kb()
{
    awk -v k="$1:" '$1 == k { print $2 }' "/proc/$PID/status"
}

# Prints the server's count of Check calls ended OK; fails without /metrics.
handled_ok()
{
    local v
    command -v curl >/dev/null || return 1
    curl -fsS -m 5 "http://127.0.0.1:$ADMIN_PORT/metrics" >"$TMP/metrics" 2>/dev/null || return 1
    v=$(awk '/^grpc_server_handled_total\{/ && /grpc_method="Check"/ &&
        /grpc_service="grpc.health.v1.Health"/ && /grpc_code="OK"/ { print $NF }' "$TMP/metrics")
    [ -n "$v" ] || return 1
    printf '%.0f\n' "$v"
}

sleep 0.5
RSS_IDLE=$(rss_kb VmRSS)
# Warm-up: connections, allocator pools, CPU caches.
timeout 120 h2load -n 5000 -c "$CONNS" -m "$STREAMS" "${H2[@]}" "$URL" >/dev/null
OK_BEFORE=$(handled_ok) || OK_BEFORE=

timeout 600 h2load -n "$N" -c "$CONNS" -m "$STREAMS" "${H2[@]}" --log-file "$TMP/req.log" \
    "$URL" >"$TMP/h2load.out"
RSS=$(rss_kb VmRSS)
HWM=$(rss_kb VmHWM)

RPS=$(awk '/^finished in/ { gsub(",", "", $4); print $4 }' "$TMP/h2load.out")
read -r TOTAL SUCCEEDED FAILED ERRORED < <(awk '/^requests:/ {
    print $2, $8, $10, $12 }' "$TMP/h2load.out")
# Latency: column 3 of the log is microseconds until the end of the response.
read -r P50 P99 MAXL < <(awk -F'\t' '$2 == 200 { print $3 }' "$TMP/req.log" | sort -n |
    awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "null null null"; exit }
        i50 = int(NR * 0.50 + 0.5); if (i50 < 1) i50 = 1
        i99 = int(NR * 0.99 + 0.5); if (i99 < 1) i99 = 1
        printf "%.3f %.3f %.3f\n", v[i50] / 1000, v[i99] / 1000, v[NR] / 1000 }')

# Calls of the measured run that ended with grpc-status OK, from the server's
# grpc_server_handled_total (admin /metrics), when it has one.
GRPC_OK=null
if [ -n "$OK_BEFORE" ] && OK_AFTER=$(handled_ok); then
    GRPC_OK=$((OK_AFTER - OK_BEFORE))
fi

kill -TERM "$PID"
EXIT=
for _ in $(seq 1 300); do
    if ! kill -0 "$PID" 2>/dev/null; then
        wait "$PID" && EXIT=0 || EXIT=$?
        break
    fi
    sleep 0.1
done
PID_DONE=$PID
PID=
[ -n "$EXIT" ] || { echo "health_load.sh: server $PID_DONE ignored SIGTERM" >&2; EXIT=null; }

sed -n '/^finished in/,/^time to 1st byte/p' "$TMP/h2load.out"
echo "server: $(basename "$BIN") workers=${WORKERS:-default} RSS idle ${RSS_IDLE} kB," \
    "after load ${RSS} kB, peak ${HWM} kB; exit ${EXIT}"
echo "latency: p50 ${P50} ms, p99 ${P99} ms, max ${MAXL} ms; grpc OK (server count): ${GRPC_OK}"
printf '{"bench":"health_check","binary":"%s","service":"%s","connections":%d,"streams":%d,' \
    "$(basename "$BIN")" "$SERVICE" "$CONNS" "$STREAMS"
printf '"requests":%d,"succeeded":%d,"failed":%d,"errored":%d,"calls_per_s":%s,' \
    "$TOTAL" "$SUCCEEDED" "$FAILED" "$ERRORED" "$RPS"
printf '"p50_ms":%s,"p99_ms":%s,"max_ms":%s,"grpc_ok":%s,' "$P50" "$P99" "$MAXL" "$GRPC_OK"
printf '"rss_idle_kb":%d,"rss_kb":%d,"hwm_kb":%d,"exit":%s,"nproc":%d}\n' \
    "$RSS_IDLE" "$RSS" "$HWM" "$EXIT" "$(nproc)"
