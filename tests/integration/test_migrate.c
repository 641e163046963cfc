/* test_migrate.c - migrate.[ch] against a real PostgreSQL: the embedded
 * migrations apply once, concurrent migrators agree, a changed file or a
 * newer database refuses, a failing migration rolls back, dirty state needs
 * force, up -> down -> up leaves the same schema. Each test uses its own
 * fresh database. Needs DATABASE_URL; skips without it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "db.h"
#include "migrate.h"
#include "test_db_support.h"
#include "util.h"

static const char *g_admin;

typedef struct fixture {
    char *url;
    char *name;
} fixture;

static int fresh_db(void **state)
{
    static int seq;
    fixture *f = xcalloc(1, sizeof *f);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "herald_test_mig%d", seq++);
    f->url = tdb_create(g_admin, prefix, &f->name);
    *state = f;
    return 0;
}

static int drop_db(void **state)
{
    fixture *f = *state;
    tdb_drop(g_admin, f->name);
    free(f->url);
    free(f->name);
    free(f);
    return 0;
}

/* A fingerprint of the public schema: columns, constraints, indexes, triggers,
 * functions. */
static char *schema_fingerprint(const char *url)
{
    db_conn *db = tdb_open(url);
    db_res *res = NULL;
    status st = db_run(
        db, 30000, "fingerprint",
        "SELECT coalesce(md5(string_agg(x, E'\\n' ORDER BY x)), 'empty') FROM ("
        " SELECT table_name || '.' || column_name || ':' || data_type || ':' || is_nullable"
        "  || ':' || coalesce(column_default, '') FROM information_schema.columns"
        "  WHERE table_schema = 'public' AND table_name NOT LIKE 'schema_migration%'"
        " UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'"
        "  AND tablename NOT LIKE 'schema_migration%'"
        " UNION ALL SELECT conrelid::regclass || ':' || conname || ':' || pg_get_constraintdef(oid)"
        "  FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
        "  AND conrelid::regclass::text NOT LIKE 'schema_migration%'"
        " UNION ALL SELECT tgname || ':' || pg_get_triggerdef(oid) FROM pg_trigger"
        "  WHERE NOT tgisinternal"
        " UNION ALL SELECT proname || ':' || md5(prosrc) FROM pg_proc"
        "  WHERE pronamespace = 'public'::regnamespace) s(x)",
        NULL, &res);
    assert_int_equal(st, ST_OK);
    char *fp = xstrdup(db_res_text(res, 0, 0));
    db_res_free(res);
    db_close(db);
    return fp;
}

static int64_t count_rows(const char *url, const char *sql)
{
    db_conn *db = tdb_open(url);
    int64_t n = tdb_int(db, sql);
    db_close(db);
    return n;
}

static void embedded_set_is_sane(void **state)
{
    (void)state;
    size_t n;
    const migration *m = migrate_embedded(&n);
    assert_true(n >= 2);
    for (size_t i = 0; i < n; i++) {
        assert_true(i == 0 || m[i].version > m[i - 1].version);
        assert_int_equal(strlen(m[i].sha256), 64);
        uint8_t h[32];
        char hex[65];
        db_sha256(m[i].up_sql, strlen(m[i].up_sql), h);
        for (int k = 0; k < 32; k++)
            sprintf(hex + 2 * k, "%02x", h[k]);
        /* the build-time checksum is the checksum of the embedded bytes */
        assert_string_equal(hex, m[i].sha256);
        assert_non_null(m[i].down_sql);
    }
    assert_int_equal(migrate_expected_version(), m[n - 1].version);
}

static void up_applies_once_and_check_passes(void **state)
{
    fixture *f = *state;
    char *err = NULL;
    int applied = -1;
    migrate_options o;
    migrate_options_init(&o, f->url);

    assert_int_equal(migrate_check(f->url, &err), ST_FAILED_PRECONDITION);
    assert_non_null(err);
    free(err);
    err = NULL;
    assert_int_equal(migrate_up_opts(&o, &applied, &err), ST_OK);
    size_t n;
    migrate_embedded(&n);
    assert_int_equal(applied, (int)n);
    assert_int_equal(migrate_up_opts(&o, &applied, &err), ST_OK);
    assert_int_equal(applied, 0);
    int64_t v = -2;
    bool dirty = true;
    assert_int_equal(migrate_version(f->url, &v, &dirty, &err), ST_OK);
    assert_int_equal(v, migrate_expected_version());
    assert_false(dirty);
    assert_int_equal(migrate_check(f->url, &err), ST_OK);
    assert_int_equal(count_rows(f->url, "SELECT count(*) FROM schema_migration_history"), (int)n);
    assert_int_equal(count_rows(f->url, "SELECT count(*) FROM schema_migrations"), 1);
    /* the schema is there: the catalog seed and the core tables */
    assert_true(count_rows(f->url, "SELECT count(*) FROM topics") > 0);
    assert_int_equal(count_rows(f->url, "SELECT count(*) FROM posts"), 0);
    free(err);
}

static void tampered_checksum_refuses(void **state)
{
    fixture *f = *state;
    char *err = NULL;
    assert_int_equal(migrate_up(f->url, &err), ST_OK);
    db_conn *db = tdb_open(f->url);
    tdb_must(db, "UPDATE schema_migration_history SET sha256 = repeat('0', 64) WHERE version = 1");
    assert_int_equal(migrate_up(f->url, &err), ST_FAILED_PRECONDITION);
    assert_non_null(strstr(err, "changed after it was applied"));
    assert_non_null(strstr(err, "0001_catalog"));
    free(err);
    err = NULL;
    assert_int_equal(migrate_check(f->url, &err), ST_FAILED_PRECONDITION);
    assert_non_null(strstr(err, "changed"));
    free(err);
    err = NULL;
    /* the probe the readiness pinger runs says the same */
    char why[256];
    assert_int_equal(migrate_check_conn(db, why, sizeof why, NULL), ST_FAILED_PRECONDITION);
    assert_non_null(strstr(why, "changed"));
    db_close(db);
}

/* A binary whose migration file differs from the one applied refuses. */
static void changed_file_refuses(void **state)
{
    fixture *f = *state;
    char *err = NULL;
    static const migration a[] = {
        { 1, "one", "CREATE TABLE one (id int)", "DROP TABLE one",
          "1111111111111111111111111111111111111111111111111111111111111111" },
    };
    static const migration b[] = {
        { 1, "one", "CREATE TABLE one (id bigint)", "DROP TABLE one",
          "2222222222222222222222222222222222222222222222222222222222222222" },
    };
    migrate_options o;
    migrate_options_init(&o, f->url);
    o.set = a;
    o.n_set = 1;
    assert_int_equal(migrate_up_opts(&o, NULL, &err), ST_OK);
    o.set = b;
    assert_int_equal(migrate_up_opts(&o, NULL, &err), ST_FAILED_PRECONDITION);
    assert_non_null(strstr(err, "0001_one.up.sql changed"));
    free(err);
}

static void newer_database_refuses(void **state)
{
    fixture *f = *state;
    char *err = NULL;
    int64_t latest = migrate_expected_version();
    assert_int_equal(migrate_up(f->url, &err), ST_OK);
    assert_int_equal(migrate_force(f->url, latest + 1, &err), ST_OK);
    assert_int_equal(migrate_up(f->url, &err), ST_FAILED_PRECONDITION);
    assert_non_null(strstr(err, "newer than this binary"));
    free(err);
    err = NULL;
    assert_int_equal(migrate_check(f->url, &err), ST_FAILED_PRECONDITION);
    free(err);
    err = NULL;
    assert_int_equal(migrate_force(f->url, latest, &err), ST_OK);
    assert_int_equal(migrate_check(f->url, &err), ST_OK);
}

static void failure_rolls_back_and_dirty_needs_force(void **state)
{
    fixture *f = *state;
    char *err = NULL;
    static const migration set[] = {
        { 1, "ok", "CREATE TABLE ok1 (id int)", "DROP TABLE ok1",
          "1111111111111111111111111111111111111111111111111111111111111111" },
        { 2, "broken", "CREATE TABLE half (id int); SELECT 1/0;", "DROP TABLE half",
          "2222222222222222222222222222222222222222222222222222222222222222" },
    };
    migrate_options o;
    migrate_options_init(&o, f->url);
    o.set = set;
    o.n_set = 2;
    int applied = -1;
    assert_int_equal(migrate_up_opts(&o, &applied, &err), ST_INVALID); /* 22012 */
    assert_int_equal(applied, 1);
    assert_non_null(strstr(err, "0002_broken failed"));
    free(err);
    err = NULL;
    int64_t v;
    bool dirty;
    assert_int_equal(migrate_version_opts(&o, &v, &dirty, &err), ST_OK);
    assert_int_equal(v, 1);
    assert_false(dirty);
    assert_int_equal(count_rows(f->url, "SELECT count(*) FROM pg_tables WHERE tablename = 'half'"),
                     0);
    /* a dirty database (left by a crashed non-transactional migration) refuses */
    db_conn *db = tdb_open(f->url);
    tdb_must(db, "UPDATE schema_migrations SET dirty = true");
    db_close(db);
    o.n_set = 1;
    assert_int_equal(migrate_up_opts(&o, NULL, &err), ST_FAILED_PRECONDITION);
    assert_non_null(strstr(err, "dirty"));
    free(err);
    err = NULL;
    assert_int_equal(migrate_force_opts(&o, 1, &err), ST_OK);
    assert_int_equal(migrate_check_opts(&o, &err), ST_OK);
}

static void no_transaction_migration(void **state)
{
    fixture *f = *state;
    char *err = NULL;
    static const migration set[] = {
        { 1, "t", "CREATE TABLE t (id int)", "DROP TABLE t",
          "1111111111111111111111111111111111111111111111111111111111111111" },
        { 2, "idx", MIGRATE_NO_TX_MARK "\nCREATE INDEX CONCURRENTLY t_id_idx ON t (id);",
          "DROP INDEX t_id_idx",
          "2222222222222222222222222222222222222222222222222222222222222222" },
    };
    migrate_options o;
    migrate_options_init(&o, f->url);
    o.set = set;
    o.n_set = 2;
    assert_int_equal(migrate_up_opts(&o, NULL, &err), ST_OK);
    assert_int_equal(
        count_rows(f->url, "SELECT count(*) FROM pg_indexes WHERE indexname = 't_id_idx'"), 1);
    assert_int_equal(migrate_check_opts(&o, &err), ST_OK);
}

static void up_down_up_same_schema(void **state)
{
    fixture *f = *state;
    char *err = NULL;
    char *empty = schema_fingerprint(f->url);
    assert_int_equal(migrate_up(f->url, &err), ST_OK);
    char *first = schema_fingerprint(f->url);
    assert_string_not_equal(first, empty);
    assert_int_equal(migrate_down(f->url, 1, &err), ST_OK);
    int64_t v;
    bool dirty;
    assert_int_equal(migrate_version(f->url, &v, &dirty, &err), ST_OK);
    size_t n;
    const migration *m = migrate_embedded(&n);
    assert_int_equal(v, m[n - 2].version);
    assert_int_equal(migrate_down(f->url, -1, &err), ST_OK);
    assert_int_equal(migrate_version(f->url, &v, &dirty, &err), ST_OK);
    assert_int_equal(v, -1);
    char *gone = schema_fingerprint(f->url);
    assert_string_equal(gone, empty);
    assert_int_equal(migrate_up(f->url, &err), ST_OK);
    char *second = schema_fingerprint(f->url);
    assert_string_equal(first, second);
    assert_int_equal(migrate_check(f->url, &err), ST_OK);
    free(empty);
    free(first);
    free(gone);
    free(second);
}

struct racer {
    const migrate_options *o;
    status st;
    int applied;
    char *err;
};

static void *race(void *p)
{
    struct racer *r = p;
    r->st = migrate_up_opts(r->o, &r->applied, &r->err);
    return NULL;
}

/* Two migrators at once on an empty database: both succeed, each migration
 * runs exactly once (the slow one makes them overlap). */
static void concurrent_migrators_apply_once(void **state)
{
    fixture *f = *state;
    static const migration set[] = {
        { 1, "counter",
          "CREATE TABLE runs (version int); INSERT INTO runs VALUES (1); SELECT pg_sleep(0.5);",
          "DROP TABLE runs", "1111111111111111111111111111111111111111111111111111111111111111" },
        { 2, "second", "INSERT INTO runs VALUES (2);", "DELETE FROM runs WHERE version = 2",
          "2222222222222222222222222222222222222222222222222222222222222222" },
    };
    migrate_options o;
    migrate_options_init(&o, f->url);
    o.set = set;
    o.n_set = 2;
    struct racer r[3] = { { &o, ST_INTERNAL, 0, NULL },
                          { &o, ST_INTERNAL, 0, NULL },
                          { &o, ST_INTERNAL, 0, NULL } };
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, race, &r[i]);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    int total = 0;
    for (int i = 0; i < 3; i++) {
        if (r[i].st != ST_OK)
            fail_msg("migrator %d: %s", i, r[i].err ? r[i].err : "?");
        total += r[i].applied;
        free(r[i].err);
    }
    assert_int_equal(total, 2);
    assert_int_equal(count_rows(f->url, "SELECT count(*) FROM runs"), 2);
    assert_int_equal(count_rows(f->url, "SELECT count(*) FROM schema_migration_history"), 2);

    /* and the real embedded set, raced on another fresh database */
    char *name = NULL;
    char *url = tdb_create(g_admin, "herald_test_migrace", &name);
    migrate_options e;
    migrate_options_init(&e, url);
    struct racer q[2] = { { &e, ST_INTERNAL, 0, NULL }, { &e, ST_INTERNAL, 0, NULL } };
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, race, &q[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    size_t n;
    migrate_embedded(&n);
    assert_int_equal(q[0].st, ST_OK);
    assert_int_equal(q[1].st, ST_OK);
    assert_int_equal(q[0].applied + q[1].applied, (int)n);
    assert_int_equal(count_rows(url, "SELECT count(*) FROM schema_migration_history"), (int)n);
    char *err = NULL;
    assert_int_equal(migrate_check(url, &err), ST_OK);
    tdb_drop(g_admin, name);
    free(url);
    free(name);
}

/* The schema's constraints make bad states impossible. */
static void schema_constraints(void **state)
{
    fixture *f = *state;
    char *err = NULL;
    assert_int_equal(migrate_up(f->url, &err), ST_OK);
    db_conn *db = tdb_open(f->url);
    tdb_must(db, "INSERT INTO profiles (profile_id, platform) VALUES ('p1', 'x')");
    const char *hash = "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'";
    char *ins = xasprintf("INSERT INTO posts (post_id, profile_id, state, platform, text,"
                          " content_hash, provider) VALUES"
                          " ('00000000-0000-4000-8000-000000000001', 'p1', 'draft', 'x', 'hi', %s,"
                          " 'builtin')",
                          hash);
    tdb_must(db, ins);
    free(ins);
    /* same text, still live: refused by the partial unique index */
    char *dup = xasprintf("INSERT INTO posts (profile_id, state, platform, text, content_hash,"
                          " provider) VALUES ('p1', 'approved', 'x', 'hi', %s, 'builtin')",
                          hash);
    assert_int_equal(db_run(db, 5000, "post_insert", dup, NULL, NULL), ST_ALREADY_EXISTS);
    assert_string_equal(db_constraint(db), "posts_live_content_uq");
    /* once the first is rejected, the text may be used again */
    tdb_must(db, "UPDATE posts SET state = 'rejected'");
    assert_int_equal(db_run(db, 5000, "post_insert", dup, NULL, NULL), ST_OK);
    free(dup);
    /* unknown states are refused */
    assert_int_equal(db_run(db, 5000, "post_state", "UPDATE posts SET state = 'bogus'", NULL, NULL),
                     ST_INVALID);
    assert_string_equal(db_sqlstate(db), "23514");
    /* scheduled needs a time */
    assert_int_equal(db_run(db, 5000, "post_state",
                            "UPDATE posts SET state = 'scheduled' WHERE state = 'approved'", NULL,
                            NULL),
                     ST_INVALID);
    /* at most one live lease per post */
#define LEASE_SQL(n)                                                                          \
    "INSERT INTO publish_attempts (post_id, attempt_number, executor_id, expire_time) VALUES" \
    " ('00000000-0000-4000-8000-000000000001', " #n ", 'e', now() + interval '1 minute')"
    char *l1 = xstrdup(LEASE_SQL(1));
    char *l2 = xstrdup(LEASE_SQL(2));
    tdb_must(db, l1);
    assert_int_equal(db_run(db, 5000, "lease", l2, NULL, NULL), ST_ALREADY_EXISTS);
    assert_string_equal(db_constraint(db), "publish_attempts_one_live_uq");
    tdb_must(db, "UPDATE publish_attempts SET state = 'expired', finish_time = now()");
    assert_int_equal(db_run(db, 5000, "lease", l2, NULL, NULL), ST_OK);
    free(l1);
    free(l2);
    /* engagement: unknown metrics are NULL, rows are append-only and unique */
    tdb_must(db, "INSERT INTO engagement_observations (post_id, observed_at, source, likes)"
                 " VALUES ('00000000-0000-4000-8000-000000000001', '2026-01-01T00:00:00Z', 'api',"
                 " 3)");
    assert_int_equal(count_rows(f->url, "SELECT count(*) FROM engagement_observations"
                                        " WHERE impressions IS NULL AND likes = 3"),
                     1);
    assert_int_equal(db_run(db, 5000, "eng_dup",
                            "INSERT INTO engagement_observations (post_id, observed_at, source,"
                            " likes) VALUES ('00000000-0000-4000-8000-000000000001',"
                            " '2026-01-01T00:00:00Z', 'api', 4)",
                            NULL, NULL),
                     ST_ALREADY_EXISTS);
    assert_int_equal(
        db_run(db, 5000, "eng_update", "UPDATE engagement_observations SET likes = 5", NULL, NULL),
        ST_INTERNAL); /* append-only trigger (23001 restrict_violation) */
    assert_string_equal(db_sqlstate(db), "23001");
    assert_int_equal(db_run(db, 5000, "eng_neg",
                            "INSERT INTO engagement_observations (post_id, observed_at, source,"
                            " likes) VALUES ('00000000-0000-4000-8000-000000000001', now(), 'api',"
                            " -1)",
                            NULL, NULL),
                     ST_INVALID);
    /* a decision's propensity is a probability */
    assert_int_equal(db_run(db, 5000, "decision",
                            "INSERT INTO decisions (profile_id, kind, hour_of_week, seed,"
                            " propensity) VALUES ('p1', 'timing', 3, 1, 1.5)",
                            NULL, NULL),
                     ST_INVALID);
    db_close(db);
}

int main(void)
{
    g_admin = getenv("DATABASE_URL");
    if (g_admin == NULL || g_admin[0] == '\0') {
        fprintf(stderr, "DATABASE_URL not set: skipping\n");
        return TEST_SKIP;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(embedded_set_is_sane),
        cmocka_unit_test_setup_teardown(up_applies_once_and_check_passes, fresh_db, drop_db),
        cmocka_unit_test_setup_teardown(tampered_checksum_refuses, fresh_db, drop_db),
        cmocka_unit_test_setup_teardown(changed_file_refuses, fresh_db, drop_db),
        cmocka_unit_test_setup_teardown(newer_database_refuses, fresh_db, drop_db),
        cmocka_unit_test_setup_teardown(failure_rolls_back_and_dirty_needs_force, fresh_db,
                                        drop_db),
        cmocka_unit_test_setup_teardown(no_transaction_migration, fresh_db, drop_db),
        cmocka_unit_test_setup_teardown(up_down_up_same_schema, fresh_db, drop_db),
        cmocka_unit_test_setup_teardown(concurrent_migrators_apply_once, fresh_db, drop_db),
        cmocka_unit_test_setup_teardown(schema_constraints, fresh_db, drop_db),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
