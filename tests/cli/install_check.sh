#!/usr/bin/env bash
# install_check.sh BUILD_DIR - the installed client works on its own:
# `cmake --install --component client` into a temp prefix, compile
# client/examples/get_profile.c with nothing but pkg-config's flags (shared,
# then static), and run both against a heraldd without a database that this
# script starts on 127.0.0.1 and stops by PID.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d /tmp/herald-install-XXXXXX)
PID=""
cleanup()
{
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID"
        for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

cmake --install "$BUILD" --component client --prefix "$TMP/prefix" >/dev/null
export PKG_CONFIG_PATH="$TMP/prefix/lib/pkgconfig"
for f in include/herald/herald_client.h include/herald/herald/v1/ops.pb-c.h \
         lib/libherald_client.a lib/libherald_proto.a share/herald/api.pb \
         share/herald/proto/herald/v1/ops.proto bin/herald; do
    [ -e "$TMP/prefix/$f" ] || { echo "missing after install: $f" >&2; exit 1; }
done
# A sanitizer build's library needs the same runtime in the program.
SAN=$(sed -n 's/^SANITIZE:STRING=//p' "$BUILD/CMakeCache.txt")
CFLAGS=(-std=c11 -Wall -Wextra -Werror)
[ -n "$SAN" ] && CFLAGS+=("-fsanitize=$SAN")
cc "${CFLAGS[@]}" "$SRC/client/examples/get_profile.c" \
    $(pkg-config --cflags --libs herald_client) -o "$TMP/gp_shared"
cc "${CFLAGS[@]}" "$SRC/client/examples/get_profile.c" \
    $(pkg-config --cflags herald_client) "$TMP/prefix/lib/libherald_client.a" \
    "$TMP/prefix/lib/libherald_proto.a" $(pkg-config --libs grpc libprotobuf-c) -lpthread \
    -o "$TMP/gp_static"

HERALD_ADMIN_LISTEN= DATABASE_URL= REDIS_URL= HERALD_LOG_LEVEL=error \
    "$BUILD/bin/heraldd" --listen 127.0.0.1:0 --port-file "$TMP/port" >"$TMP/log" 2>&1 &
PID=$!
for _ in $(seq 300); do [ -s "$TMP/port" ] && break; sleep 0.05; done
[ -s "$TMP/port" ] || { echo "heraldd wrote no port file" >&2; cat "$TMP/log" >&2; exit 1; }
ADDR=127.0.0.1:$(cat "$TMP/port")

for bin in gp_shared gp_static; do
    set +e
    out=$(LD_LIBRARY_PATH="$TMP/prefix/lib" timeout 30 "$TMP/$bin" "$ADDR" nobody 2>&1)
    rc=$?
    set -e
    echo "$bin: rc=$rc"
    echo "$out"
    grep -q '^health: ok$' <<<"$out" || { echo "$bin: no health line" >&2; exit 1; }
    # No profile "nobody" (or no database): an explicit status, exit 1.
    grep -Eq '^GetProfile: [A-Z_]+: ' <<<"$out" || { echo "$bin: no status line" >&2; exit 1; }
    [ "$rc" -eq 1 ] || { echo "$bin: exit $rc, expected 1" >&2; exit 1; }
done
"$TMP/prefix/bin/herald" --version
echo "install check: ok"
