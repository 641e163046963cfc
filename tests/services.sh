#!/usr/bin/env bash
# services.sh - a private PostgreSQL 15 and Redis for tests and `scripts/run`.
#
#   tests/services.sh up DIR      start both (idempotent), wait until they accept
#                                 connections, write DIR/env and print it
#   tests/services.sh down DIR    stop both by PID; safe when already down
#   tests/services.sh env DIR     print DIR/env
#   tests/services.sh status DIR  exit 0 when both run, 1 otherwise
#
# Layout under DIR (absolute paths; DIR is created):
#   pg/               PostgreSQL data (owned by user postgres when run as root)
#   sock/             PostgreSQL's unix socket (.s.PGSQL.5432) and redis.sock
#   postgres.log, redis.log, redis.pid, env
# PostgreSQL listens on the unix socket only: database `herald`, superuser role
# `herald`, auth trust. Redis listens on DIR/sock/redis.sock and on 127.0.0.1 at a
# free TCP port, with no persistence and maxmemory + allkeys-lru.
#
# DIR/env holds shell assignments, one per line, values single-quoted so that the
# file can be sourced (`set -a; . DIR/env; set +a`): DATABASE_URL, REDIS_URL,
# REDIS_HOST, REDIS_PORT, PGHOST, PGDATA, PG_BINDIR, PG_PID, REDIS_PID,
# HERALD_TEST_SERVICES_DIR.
#
# initdb refuses to run as root, so as root PostgreSQL runs as user `postgres`.
# When DIR's parents are not searchable by that user (a checkout under /root),
# pg/ and sock/ are symlinks to a private directory under /tmp: clients still use
# the DIR/... paths. Processes are only ever stopped by the PIDs recorded here.
set -euo pipefail

PG_PORT=5432
SUN_PATH_MAX=107 # sizeof(sockaddr_un.sun_path) - 1
WAIT_S=30

die()
{
    echo "services.sh: $*" >&2
    exit 1
}

usage()
{
    echo "usage: $0 up|down|env|status DIR" >&2
    exit 2
}

# Runs a command as the user that owns the PostgreSQL cluster.
as_pg()
{
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_bindir()
{
    local d
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir)
        if [ -x "$d/initdb" ]; then
            echo "$d"
            return
        fi
    fi
    # pg_config (libpq-dev) may point at a client-only directory; use the server's.
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ]; then
            echo "$d"
            return
        fi
    done
    die "no PostgreSQL server binaries (initdb) found; run scripts/deps"
}

# Is PID alive and running the named program?
pid_is()
{
    local pid=$1 name=$2
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$name"
}

pg_pid()
{
    local f="$DIR/pg/postmaster.pid" pid
    [ -r "$f" ] || return 1
    pid=$(head -n 1 "$f")
    pid_is "$pid" postgres || return 1
    echo "$pid"
}

redis_pid()
{
    local pid
    [ -r "$DIR/redis.pid" ] || return 1
    pid=$(head -n 1 "$DIR/redis.pid")
    pid_is "$pid" redis-server || return 1
    echo "$pid"
}

pg_ready()
{
    "$BINDIR/pg_isready" -q -h "$DIR/sock" -p "$PG_PORT" -d postgres -U herald -t 2
}

redis_ready()
{
    [ "$(redis-cli -s "$DIR/sock/redis.sock" ping 2>/dev/null)" = PONG ]
}

# A TCP port nobody listens on, from a range below Linux's ephemeral ports.
# Racy by nature; start_redis retries on a bind failure.
pick_port()
{
    local i port hex
    for i in $(seq 1 50); do
        port=$((20000 + RANDOM % 12000))
        hex=$(printf ':%04X ' "$port")
        if ! grep -q "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    die "no free TCP port found"
}

# Makes DIR/pg and DIR/sock usable by the cluster's owner; see the header.
prepare_dirs()
{
    mkdir -p "$DIR"
    if [ "$(id -u)" -ne 0 ]; then
        mkdir -p "$DIR/pg" "$DIR/sock"
        chmod 700 "$DIR/pg"
        return
    fi
    id postgres >/dev/null 2>&1 || die "user postgres missing; run scripts/deps"
    if [ ! -L "$DIR/pg" ] && runuser -u postgres -- test -x "$DIR"; then
        mkdir -p "$DIR/pg" "$DIR/sock"
        chown postgres: "$DIR" "$DIR/pg" "$DIR/sock"
        chmod 700 "$DIR/pg"
        chmod 755 "$DIR" "$DIR/sock"
        return
    fi
    if [ -L "$DIR/pg" ] && [ -d "$(readlink -f "$DIR/pg")" ]; then
        return
    fi
    local real
    real=$(mktemp -d /tmp/herald-services.XXXXXX)
    mkdir -p "$real/pg" "$real/sock"
    chown postgres: "$real" "$real/pg" "$real/sock"
    chmod 700 "$real/pg"
    chmod 755 "$real" "$real/sock"
    rm -rf "$DIR/pg" "$DIR/sock"
    ln -s "$real/pg" "$DIR/pg"
    ln -s "$real/sock" "$DIR/sock"
}

start_pg()
{
    local data sock
    data=$(readlink -f "$DIR/pg")
    sock=$(readlink -f "$DIR/sock")
    if [ ! -f "$data/PG_VERSION" ]; then
        as_pg "$BINDIR/initdb" -D "$data" --auth=trust -U herald -E UTF8 --no-locale \
            --no-sync >"$DIR/initdb.log" 2>&1 || {
            cat "$DIR/initdb.log" >&2
            die "initdb failed"
        }
        echo "include_if_exists 'herald.conf'" >>"$data/postgresql.conf"
    fi
    # Rewritten on every start so that the socket path follows DIR.
    as_pg tee "$data/herald.conf" >/dev/null <<EOF
# Written by tests/services.sh; overwritten on every start.
listen_addresses = ''
port = $PG_PORT
unix_socket_directories = '$sock'
unix_socket_permissions = 0777
synchronous_commit = on
fsync = on
shared_buffers = 32MB
work_mem = 4MB
maintenance_work_mem = 32MB
max_connections = 100
max_wal_size = 256MB
huge_pages = off
timezone = 'UTC'
log_timezone = 'UTC'
logging_collector = off
EOF
    # The log sits beside pg/ (in DIR, or the private directory it links to), where
    # the cluster owner may write; DIR/postgres.log always names it.
    local log
    log=$(dirname "$data")/postgres.log
    [ "$log" = "$DIR/postgres.log" ] || ln -sfn "$log" "$DIR/postgres.log"
    if ! as_pg "$BINDIR/pg_ctl" -D "$data" -l "$log" -w -t "$WAIT_S" start >/dev/null 9>&-; then
        tail -n 20 "$DIR/postgres.log" >&2 || true
        die "PostgreSQL did not start"
    fi
}

ensure_database()
{
    local i exists
    for i in $(seq 1 $((WAIT_S * 10))); do
        pg_ready && break
        sleep 0.1
    done
    pg_ready || die "PostgreSQL does not accept connections on $DIR/sock"
    exists=$("$BINDIR/psql" -X -q -h "$DIR/sock" -p "$PG_PORT" -U herald -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'herald'")
    if [ "$exists" != 1 ]; then
        "$BINDIR/createdb" -h "$DIR/sock" -p "$PG_PORT" -U herald herald
    fi
}

start_redis()
{
    local attempt port pid i
    for attempt in 1 2 3 4 5; do
        port=$(pick_port)
        rm -f "$DIR/redis.pid" "$DIR/sock/redis.sock"
        # setsid: keep Redis out of the caller's process group (terminal ^C,
        # test-runner kills); it is stopped by PID with `down`.
        setsid redis-server --bind 127.0.0.1 --port "$port" \
            --unixsocket "$DIR/sock/redis.sock" --unixsocketperm 777 \
            --save '' --appendonly no --maxmemory 64mb --maxmemory-policy allkeys-lru \
            --daemonize no --pidfile "$DIR/redis.pid" --dir "$DIR" \
            --logfile "$DIR/redis.log" </dev/null >/dev/null 2>&1 9>&- &
        pid=$!
        for i in $(seq 1 $((WAIT_S * 10))); do
            kill -0 "$pid" 2>/dev/null || break
            if redis_ready && [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]
            then
                REDIS_PORT=$port
                return
            fi
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
        echo "services.sh: Redis did not start on port $port (attempt $attempt)" >&2
    done
    tail -n 20 "$DIR/redis.log" >&2 || true
    die "Redis did not start"
}

write_env()
{
    local data
    data=$(readlink -f "$DIR/pg")
    cat >"$DIR/env.tmp" <<EOF
DATABASE_URL='postgresql:///herald?host=$DIR/sock&user=herald'
REDIS_URL='unix://$DIR/sock/redis.sock'
REDIS_HOST='127.0.0.1'
REDIS_PORT='$REDIS_PORT'
PGHOST='$DIR/sock'
PGDATA='$data'
PG_BINDIR='$BINDIR'
PG_PID='$(pg_pid)'
REDIS_PID='$(redis_pid)'
HERALD_TEST_SERVICES_DIR='$DIR'
EOF
    mv "$DIR/env.tmp" "$DIR/env"
}

cmd_up()
{
    prepare_dirs
    [ -n "$(pg_pid)" ] && pg_ready || start_pg
    ensure_database
    REDIS_PORT=
    if [ -n "$(redis_pid)" ] && redis_ready; then
        REDIS_PORT=$(redis-cli -s "$DIR/sock/redis.sock" config get port | tail -n 1)
    else
        start_redis
    fi
    write_env
    cat "$DIR/env"
}

cmd_down()
{
    local pid i data
    if pid=$(pg_pid); then
        data=$(readlink -f "$DIR/pg")
        if ! as_pg "$BINDIR/pg_ctl" -D "$data" -m fast -w -t "$WAIT_S" stop >/dev/null; then
            echo "services.sh: fast stop failed; stopping PostgreSQL immediately" >&2
            as_pg "$BINDIR/pg_ctl" -D "$data" -m immediate -w -t "$WAIT_S" stop >/dev/null ||
                kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    if pid=$(redis_pid); then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 $((WAIT_S * 10))); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "services.sh: Redis $pid ignored SIGTERM; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$DIR/redis.pid"
}

cmd_status()
{
    local ok=0
    if [ -n "$(pg_pid)" ] && pg_ready; then
        echo "postgresql: up (pid $(pg_pid))"
    else
        echo "postgresql: down"
        ok=1
    fi
    if [ -n "$(redis_pid)" ] && redis_ready; then
        echo "redis: up (pid $(redis_pid))"
    else
        echo "redis: down"
        ok=1
    fi
    return $ok
}

[ $# -eq 2 ] || usage
CMD=$1
[ -n "$2" ] || usage
mkdir -p "$2"
DIR=$(cd "$2" && pwd -P)
BINDIR=$(pg_bindir)

if [ $((${#DIR} + 5 + 14)) -gt $SUN_PATH_MAX ]; then
    die "$DIR is too long for a unix socket path ($SUN_PATH_MAX bytes); use a shorter DIR"
fi

# One services.sh at a time per DIR. The servers must not inherit fd 9 (9>&-).
exec 9>"$DIR/.lock"
flock -w 120 9 || die "timed out waiting for the lock on $DIR"

case "$CMD" in
up) cmd_up ;;
down) cmd_down ;;
env) cat "$DIR/env" ;;
status) cmd_status ;;
*) usage ;;
esac
