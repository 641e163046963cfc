/* migrate.c - applies the embedded migrations (see migrate.h). Talks to
 * PostgreSQL only through db.h. */
#include "migrate.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Generated at configure time from migrations/ (server/CMakeLists.txt). */
extern const migration herald_migrations[];
extern const size_t herald_migrations_count;

static const char create_tables_sql[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                        " version bigint NOT NULL PRIMARY KEY,"
                                        " dirty boolean NOT NULL);"
                                        "CREATE TABLE IF NOT EXISTS schema_migration_history ("
                                        " version bigint NOT NULL PRIMARY KEY,"
                                        " name text NOT NULL,"
                                        " sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),"
                                        " applied_at timestamptz NOT NULL DEFAULT now(),"
                                        " execution_ms bigint NOT NULL CHECK (execution_ms >= 0));";

const migration *migrate_embedded(size_t *n)
{
    *n = herald_migrations_count;
    return herald_migrations;
}

int64_t migrate_expected_version(void)
{
    return herald_migrations_count ? herald_migrations[herald_migrations_count - 1].version : -1;
}

void migrate_options_init(migrate_options *o, const char *conninfo)
{
    memset(o, 0, sizeof *o);
    o->conninfo = conninfo;
    o->lock_wait_ms = 120000;
    o->step_ms = 600000;
}

static void set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(char **err, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL)
        return;
    free(*err);
    va_start(ap, fmt);
    *err = xvasprintf(fmt, ap);
    va_end(ap);
}

/* The set the options name: theirs, or the embedded one. */
static const migration *opt_set(const migrate_options *o, size_t *n)
{
    if (o != NULL && o->set != NULL) {
        *n = o->n_set;
        return o->set;
    }
    return migrate_embedded(n);
}

static const migration *find(const migration *set, size_t n, int64_t version)
{
    for (size_t i = 0; i < n; i++)
        if (set[i].version == version)
            return &set[i];
    return NULL;
}

static db_conn *open_conn(const migrate_options *o)
{
    db_options dbo;
    db_options_init(&dbo);
    dbo.conninfo = o->conninfo;
    dbo.application_name = "herald-migrate";
    dbo.connect_timeout_ms = 5000;
    return db_open(&dbo);
}

/* Reads version/dirty (-1/false when the table is missing or empty). */
static status read_state(db_conn *db, int64_t *version, bool *dirty)
{
    status st;
    db_res *res = NULL;

    *version = -1;
    *dirty = false;
    st = db_query(db, "migrate_exists", "SELECT to_regclass('schema_migrations') IS NOT NULL", NULL,
                  &res);
    if (st != ST_OK || !db_res_bool(res, 0, 0))
        goto out;
    db_res_free(res);
    res = NULL;
    st = db_query(db, "migrate_state",
                  "SELECT version, dirty FROM schema_migrations ORDER BY version DESC LIMIT 1",
                  NULL, &res);
    if (st == ST_OK && db_res_rows(res) > 0) {
        *version = db_res_int64(res, 0, 0);
        *dirty = db_res_bool(res, 0, 1);
    }
out:
    db_res_free(res);
    return st;
}

/* Checks the database against the set; ST_FAILED_PRECONDITION with *err on
 * a hard error. expect_current: also require version == the set's latest. */
static status verify(db_conn *db, const migration *set, size_t n, bool expect_current,
                     int64_t *version_out, char **err)
{
    status st;
    db_res *res = NULL;
    int64_t version;
    bool dirty;
    int64_t latest = n ? set[n - 1].version : -1;

    st = read_state(db, &version, &dirty);
    if (st != ST_OK) {
        set_err(err, "reading the schema version: %s", db_errmsg(db));
        goto out;
    }
    *version_out = version;
    if (dirty) {
        st = ST_FAILED_PRECONDITION;
        set_err(err,
                "database is dirty at version %" PRId64 ": a migration failed half-way; repair "
                "it, then run `heraldd migrate force %" PRId64 "`",
                version, version);
        goto out;
    }
    if (version > latest) {
        st = ST_FAILED_PRECONDITION;
        set_err(err,
                "database schema version %" PRId64 " is newer than this binary (latest %" PRId64
                "): refusing to run an old binary on a newer schema",
                version, latest);
        goto out;
    }
    if (version >= 0 && find(set, n, version) == NULL) {
        st = ST_FAILED_PRECONDITION;
        set_err(err, "database schema version %" PRId64 " is not a migration this binary knows",
                version);
        goto out;
    }
    st = db_query(db, "migrate_exists",
                  "SELECT to_regclass('schema_migration_history') IS NOT NULL", NULL, &res);
    if (st != ST_OK) {
        set_err(err, "reading migration history: %s", db_errmsg(db));
        goto out;
    }
    bool have_history = db_res_bool(res, 0, 0);
    db_res_free(res);
    res = NULL;
    if (have_history) {
        st = db_query(db, "migrate_history",
                      "SELECT version, name, sha256 FROM schema_migration_history ORDER BY version",
                      NULL, &res);
        if (st != ST_OK) {
            set_err(err, "reading migration history: %s", db_errmsg(db));
            goto out;
        }
        for (int r = 0; r < db_res_rows(res); r++) {
            int64_t v = db_res_int64(res, r, 0);
            if (v > version)
                continue; /* left by a forced rollback; reapplying replaces it */
            const migration *m = find(set, n, v);
            if (m == NULL) {
                st = ST_FAILED_PRECONDITION;
                set_err(err, "applied migration %04" PRId64 "_%s is missing from this binary", v,
                        db_res_text(res, r, 1));
                goto out;
            }
            if (strcmp(m->sha256, db_res_text(res, r, 2)) != 0) {
                st = ST_FAILED_PRECONDITION;
                set_err(err,
                        "migration %04" PRId64 "_%s.up.sql changed after it was applied "
                        "(sha256 in database %.12s..., in this binary %.12s...): never edit a "
                        "merged migration; add a new one",
                        v, m->name, db_res_text(res, r, 2), m->sha256);
                goto out;
            }
        }
    }
    if (expect_current && version != latest) {
        st = ST_FAILED_PRECONDITION;
        set_err(err,
                "database schema version %" PRId64 ", this binary expects %" PRId64
                ": migrations pending",
                version, latest);
        goto out;
    }
    st = ST_OK;
out:
    db_res_free(res);
    return st;
}

static status lock(db_conn *db, const migrate_options *o, char **err)
{
    db_params p;
    db_params_init(&p);
    db_param_int64(&p, MIGRATE_LOCK_KEY);
    /* lock_timeout (from the budget) bounds the wait for another migrator;
     * the session lock outlives this transaction. */
    status st = db_run(db, o->lock_wait_ms, "migrate_lock", "SELECT pg_advisory_lock($1::bigint)",
                       &p, NULL);
    if (st == ST_TIMEOUT)
        set_err(err, "another migrator held the migration lock for more than %" PRId64 " ms",
                o->lock_wait_ms);
    else if (st != ST_OK)
        set_err(err, "taking the migration lock: %s", db_errmsg(db));
    return st;
}

static void unlock(db_conn *db)
{
    db_params p;
    db_params_init(&p);
    db_param_int64(&p, MIGRATE_LOCK_KEY);
    /* Best effort: closing the connection releases it anyway. */
    (void)db_run(db, 5000, "migrate_unlock", "SELECT pg_advisory_unlock($1::bigint)", &p, NULL);
}

static status ensure_tables(db_conn *db, const migrate_options *o, char **err)
{
    status st = db_begin(db, o->step_ms);
    if (st == ST_OK)
        st = db_script(db, "migrate_tables", create_tables_sql);
    if (st == ST_OK)
        st = db_commit(db);
    else
        db_rollback(db);
    if (st != ST_OK)
        set_err(err, "creating the migration tables: %s", db_errmsg(db));
    return st;
}

/* Sets schema_migrations to version (-1: empty) inside the open transaction. */
static status set_version(db_conn *db, int64_t version, bool dirty)
{
    db_params p;
    status st = db_query(db, "migrate_clear", "DELETE FROM schema_migrations", NULL, NULL);
    if (st != ST_OK || version < 0)
        return st;
    db_params_init(&p);
    db_param_int64(&p, version);
    db_param_bool(&p, dirty);
    return db_query(db, "migrate_set_version",
                    "INSERT INTO schema_migrations (version, dirty) VALUES ($1::bigint, $2::bool)",
                    &p, NULL);
}

static status record_history(db_conn *db, const migration *m, int64_t ms)
{
    db_params p;
    db_params_init(&p);
    db_param_int64(&p, m->version);
    db_param_text(&p, m->name);
    db_param_text(&p, m->sha256);
    db_param_int64(&p, ms);
    return db_query(db, "migrate_history_add",
                    "INSERT INTO schema_migration_history (version, name, sha256, execution_ms) "
                    "VALUES ($1::bigint, $2, $3, $4::bigint) ON CONFLICT (version) DO UPDATE SET "
                    "name = EXCLUDED.name, sha256 = EXCLUDED.sha256, applied_at = now(), "
                    "execution_ms = EXCLUDED.execution_ms",
                    &p, NULL);
}

static status apply_one(db_conn *db, const migrate_options *o, const migration *m, char **err)
{
    status st;
    int64_t t0 = now_mono_ms();
    bool no_tx = strncmp(m->up_sql, MIGRATE_NO_TX_MARK, strlen(MIGRATE_NO_TX_MARK)) == 0;

    if (!no_tx) {
        st = db_begin(db, o->step_ms);
        if (st == ST_OK)
            st = db_script(db, "migrate_up", m->up_sql);
        if (st == ST_OK)
            st = set_version(db, m->version, false);
        if (st == ST_OK)
            st = record_history(db, m, now_mono_ms() - t0);
        if (st == ST_OK)
            st = db_commit(db);
        else
            db_rollback(db);
        goto out;
    }
    /* Outside a transaction: mark dirty first so a crash half-way is seen. */
    st = db_begin(db, o->step_ms);
    if (st == ST_OK)
        st = set_version(db, m->version, true);
    if (st == ST_OK)
        st = db_commit(db);
    else
        db_rollback(db);
    if (st == ST_OK)
        st = db_script(db, "migrate_up", m->up_sql);
    if (st != ST_OK)
        goto out;
    st = db_begin(db, o->step_ms);
    if (st == ST_OK)
        st = set_version(db, m->version, false);
    if (st == ST_OK)
        st = record_history(db, m, now_mono_ms() - t0);
    if (st == ST_OK)
        st = db_commit(db);
    else
        db_rollback(db);
out:
    if (st != ST_OK)
        set_err(err, "migration %04" PRId64 "_%s failed: %s", m->version, m->name, db_errmsg(db));
    return st;
}

status migrate_up_opts(const migrate_options *o, int *applied, char **err)
{
    status st;
    size_t n;
    const migration *set = opt_set(o, &n);
    db_conn *db = open_conn(o);
    bool locked = false;
    int64_t version = -1;
    int count = 0;

    if (applied)
        *applied = 0;
    st = lock(db, o, err);
    if (st != ST_OK)
        goto out;
    locked = true;
    st = ensure_tables(db, o, err);
    if (st != ST_OK)
        goto out;
    st = db_begin(db, o->step_ms);
    if (st == ST_OK) {
        st = verify(db, set, n, false, &version, err);
        db_rollback(db);
    } else {
        set_err(err, "reading the schema version: %s", db_errmsg(db));
    }
    if (st != ST_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (set[i].version <= version)
            continue;
        st = apply_one(db, o, &set[i], err);
        if (st != ST_OK)
            goto out;
        count++;
    }
    st = ST_OK;
out:
    if (locked)
        unlock(db);
    db_close(db);
    if (applied)
        *applied = count;
    return st;
}

status migrate_up(const char *conninfo, char **err)
{
    migrate_options o;
    migrate_options_init(&o, conninfo);
    return migrate_up_opts(&o, NULL, err);
}

status migrate_down_opts(const migrate_options *o, int n_steps, char **err)
{
    status st;
    size_t n;
    const migration *set = opt_set(o, &n);
    db_conn *db = open_conn(o);
    bool locked = false;
    int64_t version = -1;

    st = lock(db, o, err);
    if (st != ST_OK)
        goto out;
    locked = true;
    st = ensure_tables(db, o, err);
    if (st != ST_OK)
        goto out;
    for (int step = 0; n_steps < 0 || step < n_steps; step++) {
        st = db_begin(db, o->step_ms);
        if (st != ST_OK) {
            set_err(err, "reading the schema version: %s", db_errmsg(db));
            goto out;
        }
        st = verify(db, set, n, false, &version, err);
        if (st != ST_OK || version < 0) {
            db_rollback(db);
            goto out; /* version < 0: nothing left to revert */
        }
        const migration *m = find(set, n, version);
        if (m->down_sql == NULL) {
            db_rollback(db);
            st = ST_FAILED_PRECONDITION;
            set_err(err, "migration %04" PRId64 "_%s has no .down.sql", m->version, m->name);
            goto out;
        }
        int64_t prev = -1;
        for (size_t i = 0; i < n; i++)
            if (set[i].version < version)
                prev = set[i].version;
        db_params p;
        db_params_init(&p);
        db_param_int64(&p, version);
        st = db_script(db, "migrate_down", m->down_sql);
        if (st == ST_OK)
            st = set_version(db, prev, false);
        if (st == ST_OK)
            st = db_query(db, "migrate_history_del",
                          "DELETE FROM schema_migration_history WHERE version = $1::bigint", &p,
                          NULL);
        if (st == ST_OK)
            st = db_commit(db);
        else
            db_rollback(db);
        if (st != ST_OK) {
            set_err(err, "reverting migration %04" PRId64 "_%s failed: %s", m->version, m->name,
                    db_errmsg(db));
            goto out;
        }
    }
    st = ST_OK;
out:
    if (locked)
        unlock(db);
    db_close(db);
    return st;
}

status migrate_down(const char *conninfo, int n, char **err)
{
    migrate_options o;
    migrate_options_init(&o, conninfo);
    return migrate_down_opts(&o, n, err);
}

status migrate_version_opts(const migrate_options *o, int64_t *version, bool *dirty, char **err)
{
    db_conn *db = open_conn(o);
    status st = db_begin(db, 10000);
    if (st == ST_OK) {
        st = read_state(db, version, dirty);
        db_rollback(db);
    }
    if (st != ST_OK)
        set_err(err, "reading the schema version: %s", db_errmsg(db));
    db_close(db);
    return st;
}

status migrate_version(const char *conninfo, int64_t *version, bool *dirty, char **err)
{
    migrate_options o;
    migrate_options_init(&o, conninfo);
    return migrate_version_opts(&o, version, dirty, err);
}

status migrate_force_opts(const migrate_options *o, int64_t version, char **err)
{
    status st;
    db_conn *db = open_conn(o);
    bool locked = false;
    db_params p;

    if (version < -1) {
        set_err(err, "cannot force version %" PRId64 " (use -1 for none)", version);
        st = ST_INVALID;
        goto out;
    }
    st = lock(db, o, err);
    if (st != ST_OK)
        goto out;
    locked = true;
    st = ensure_tables(db, o, err);
    if (st != ST_OK)
        goto out;
    db_params_init(&p);
    db_param_int64(&p, version);
    st = db_begin(db, o->step_ms);
    if (st == ST_OK)
        st = set_version(db, version, false);
    if (st == ST_OK)
        st = db_query(db, "migrate_history_trim",
                      "DELETE FROM schema_migration_history WHERE version > $1::bigint", &p, NULL);
    if (st == ST_OK)
        st = db_commit(db);
    else
        db_rollback(db);
    if (st != ST_OK)
        set_err(err, "forcing the schema version: %s", db_errmsg(db));
out:
    if (locked)
        unlock(db);
    db_close(db);
    return st;
}

status migrate_force(const char *conninfo, int64_t version, char **err)
{
    migrate_options o;
    migrate_options_init(&o, conninfo);
    return migrate_force_opts(&o, version, err);
}

static status check_on(db_conn *db, const migrate_options *o, int64_t budget_ms, char **err)
{
    size_t n;
    const migration *set = opt_set(o, &n);
    int64_t version;

    status st = db_begin(db, budget_ms);
    if (st != ST_OK) {
        set_err(err, "%s", db_errmsg(db));
        return st;
    }
    st = verify(db, set, n, true, &version, err);
    db_rollback(db);
    return st;
}

status migrate_check_opts(const migrate_options *o, char **err)
{
    db_conn *db = open_conn(o);
    status st = check_on(db, o, 10000, err);
    db_close(db);
    return st;
}

status migrate_check(const char *conninfo, char **err)
{
    migrate_options o;
    migrate_options_init(&o, conninfo);
    return migrate_check_opts(&o, err);
}

status migrate_check_conn(db_conn *db, char *why, size_t cap, void *user)
{
    char *err = NULL;
    status st = check_on(db, user, 1000, &err);
    snprintf(why, cap, "%s", err ? err : "");
    free(err);
    return st;
}
