/* migrate.h - schema migrations embedded in the binary (notes/conventions.md §13).
 *
 * migrations/NNNN_title.up.sql (and optional .down.sql) are compiled into a
 * table at build time together with each .up.sql file's SHA-256. The state
 * lives in golang-migrate's one-row table schema_migrations(version,
 * dirty), so the stock `migrate` CLI can inspect and force it, plus
 * schema_migration_history(version, name, sha256, applied_at, execution_ms).
 *
 * migrate_up takes pg_advisory_lock(MIGRATE_LOCK_KEY) on its own dedicated
 * connection (direct to PostgreSQL, not through PgBouncer), so concurrent
 * starters wait and then find nothing left to do; each migration and its
 * version bump commit in one transaction. A file marked with the first line
 * `-- herald:no-transaction` (CREATE INDEX CONCURRENTLY) runs outside one,
 * with dirty=true while it runs. Hard errors (ST_FAILED_PRECONDITION, with a
 * message naming the file): an applied file whose checksum changed, a
 * database newer than the binary, a dirty database.
 *
 * Every function opens and closes its own connection (conninfo is a libpq
 * URI or key=value string) and may block for as long as a migration takes;
 * call them from main or a tool, not from a worker. Thread-safe (no shared
 * state). On failure *err is a message for the operator (caller frees;
 * never contains the conninfo). */
#ifndef HERALD_MIGRATE_H
#define HERALD_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "status.h"

#define MIGRATE_LOCK_KEY 0x4845524C44000001LL /* pg_advisory_lock key, one bigint */
#define MIGRATE_NO_TX_MARK "-- herald:no-transaction"

typedef struct migration {
    int64_t version;      /* from the NNNN prefix */
    const char *name;     /* the title: "core" for 0002_core.up.sql */
    const char *up_sql;   /* the .up.sql file's bytes */
    const char *down_sql; /* NULL when there is no .down.sql */
    const char *sha256;   /* lower-case hex SHA-256 of up_sql */
} migration;

/* The migrations built into this binary, ascending by version. */
const migration *migrate_embedded(size_t *n);
/* The version the binary expects: the highest embedded (-1 when none). */
int64_t migrate_expected_version(void);

typedef struct migrate_options {
    const char *conninfo;
    const migration *set; /* NULL: the embedded migrations (tests pass their own) */
    size_t n_set;
    int64_t lock_wait_ms; /* how long to wait for another migrator, default 120000 */
    int64_t step_ms;      /* statement budget of one migration, default 600000 */
} migrate_options;

void migrate_options_init(migrate_options *o, const char *conninfo);

/* Applies every pending migration. ST_OK also when there was nothing to do;
 * *applied (may be NULL) gets how many this call applied. */
status migrate_up_opts(const migrate_options *o, int *applied, char **err);
status migrate_up(const char *conninfo, char **err);

/* Reverts the n most recent migrations (n < 0: all) with their .down.sql;
 * ST_FAILED_PRECONDITION when one has none. */
status migrate_down_opts(const migrate_options *o, int n, char **err);
status migrate_down(const char *conninfo, int n, char **err);

/* The database's version (-1: none applied yet) and dirty flag. */
status migrate_version_opts(const migrate_options *o, int64_t *version, bool *dirty, char **err);
status migrate_version(const char *conninfo, int64_t *version, bool *dirty, char **err);

/* Sets the version (-1: none) and clears dirty without running anything,
 * like `migrate force V`, after an operator repaired a failed migration.
 * History rows above version are removed. */
status migrate_force_opts(const migrate_options *o, int64_t version, char **err);
status migrate_force(const char *conninfo, int64_t version, char **err);

/* Is the database exactly at the expected version, clean, with unchanged
 * checksums? ST_OK, ST_FAILED_PRECONDITION (why in *err), or the
 * connection's status (ST_UNAVAILABLE...). */
status migrate_check_opts(const migrate_options *o, char **err);
status migrate_check(const char *conninfo, char **err);

/* The same check on an existing connection within budget_ms; the reason goes
 * to why[0..cap). Matches db_probe_fn (user: a migrate_options *, or NULL
 * for the embedded set), so the readiness pinger can run it every second. */
status migrate_check_conn(db_conn *db, char *why, size_t cap, void *user);

#endif
