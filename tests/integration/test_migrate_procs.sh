#!/usr/bin/env bash
# test_migrate_procs.sh HERALDD - process-level migration checks (issue 4):
#  1. two `heraldd migrate up` started at once on an empty database both
#     succeed and every migration is applied exactly once;
#  2. after an applied migration's checksum is tampered with, `heraldd
#     migrate up` refuses (non-zero exit, message naming the file).
# Uses DATABASE_URL (the services fixture) to create and drop its own
# database; skips (77) without it. Bounded: every wait has a timeout.
set -euo pipefail
HERALDD=$1
[ -n "${DATABASE_URL:-}" ] || { echo "DATABASE_URL not set: skipping"; exit 77; }
export PGOPTIONS="-c client_min_messages=warning"
PSQL="psql -X -q -v ON_ERROR_STOP=1 -tA"
DB="herald_test_procs_$$"
base=${DATABASE_URL%%\?*}
query=${DATABASE_URL#"$base"}
URL="${base%/*}/$DB$query"
cleanup() { $PSQL "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true; rm -f /tmp/$DB.*; }
trap cleanup EXIT
$PSQL "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null

DATABASE_URL=$URL timeout 60 "$HERALDD" migrate up >/tmp/$DB.a 2>&1 &
pa=$!
DATABASE_URL=$URL timeout 60 "$HERALDD" migrate up >/tmp/$DB.b 2>&1 &
pb=$!
ra=0; wait $pa || ra=$?
rb=0; wait $pb || rb=$?
cat /tmp/$DB.a /tmp/$DB.b
[ $ra -eq 0 ] && [ $rb -eq 0 ] || { echo "FAIL: exit codes $ra $rb"; exit 1; }
n_files=$(ls "$(dirname "$0")"/../../migrations/*.up.sql | wc -l)
hist=$($PSQL "$URL" -c "SELECT count(*) FROM schema_migration_history")
distinct=$($PSQL "$URL" -c "SELECT count(DISTINCT version) FROM schema_migration_history")
[ "$hist" = "$n_files" ] && [ "$distinct" = "$n_files" ] || { echo "FAIL: history $hist/$distinct, files $n_files"; exit 1; }
# applied counts reported by the two processes add up to the number of files
sum=$(cat /tmp/$DB.a /tmp/$DB.b | sed -n 's/^applied \([0-9]*\) migration.*/\1/p' | awk '{s += $1} END {print s + 0}')
[ "$sum" = "$n_files" ] || { echo "FAIL: applied $sum in total, expected $n_files"; exit 1; }
echo "ok: two concurrent migrators applied $n_files migrations exactly once"

$PSQL "$URL" -c "UPDATE schema_migration_history SET sha256 = repeat('0', 64) WHERE version = (SELECT max(version) FROM schema_migration_history)" >/dev/null
rc=0; DATABASE_URL=$URL timeout 60 "$HERALDD" migrate up >/tmp/$DB.c 2>&1 || rc=$?
cat /tmp/$DB.c
[ $rc -ne 0 ] || { echo "FAIL: tampered checksum accepted"; exit 1; }
grep -q "changed after it was applied" /tmp/$DB.c || { echo "FAIL: no clear message"; exit 1; }
echo "ok: tampered checksum refused (exit $rc)"
