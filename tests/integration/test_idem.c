/* test_idem.c - idempotency keys (db_idem_*) against a real PostgreSQL: a
 * retried mutation leaves one row and replays the same bytes, a reused key
 * with another request is INVALID (IDEMPOTENCY_KEY_REUSED), a duplicate in
 * flight is CONFLICT at once, a rolled-back mutation leaves no key, pruning
 * keeps >= 24 h, and racing duplicates commit exactly once. Also the cache
 * version helpers. Needs DATABASE_URL; skips without it. */
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
static char *g_url;
static char *g_name;

#define METHOD "/herald.v1.OpsService/CreateProfile"

/* The "mutation" under test: insert a row named after the request and store
 * a response derived from it, in the idempotency transaction. */
static status do_mutation(db_conn *db, const char *key, const char *req, char *resp_out, size_t cap,
                          bool *replayed, const char **reason)
{
    db_idem idem;
    status st = db_idem_begin(db, 5000, key, METHOD, req, strlen(req), &idem);
    *replayed = false;
    *reason = idem.reason;
    if (st != ST_OK)
        goto out;
    if (idem.replay) {
        *replayed = true;
        snprintf(resp_out, cap, "%.*s", (int)idem.response_len, (const char *)idem.response);
        goto out;
    }
    db_params p;
    db_params_init(&p);
    db_param_text(&p, req);
    db_res *res = NULL;
    st = db_query(db, "idem_test_insert", "INSERT INTO widgets (name) VALUES ($1) RETURNING id", &p,
                  &res);
    if (st != ST_OK) {
        db_rollback(db);
        goto out;
    }
    snprintf(resp_out, cap, "widget %s #%s", req, db_res_text(res, 0, 0));
    db_res_free(res);
    st = db_idem_store(db, &idem, 0, resp_out, strlen(resp_out));
    if (st == ST_OK)
        st = db_commit(db);
    else
        db_rollback(db);
    *reason = idem.reason;
out:
    db_idem_fini(&idem);
    return st;
}

static int64_t widgets(db_conn *db, const char *name)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, name);
    assert_int_equal(
        db_run(db, 5000, "count", "SELECT count(*) FROM widgets WHERE name = $1", &p, &res), ST_OK);
    int64_t n = db_res_int64(res, 0, 0);
    db_res_free(res);
    return n;
}

static void replay_and_reuse(void **state)
{
    (void)state;
    db_conn *db = tdb_open(g_url);
    char r1[128], r2[128];
    bool replayed;
    const char *reason;
    const char *key = "7b0c5f1e-58b4-4c57-9a57-2f3bd1f6d8a1";

    assert_int_equal(do_mutation(db, key, "alpha", r1, sizeof r1, &replayed, &reason), ST_OK);
    assert_false(replayed);
    assert_int_equal(do_mutation(db, key, "alpha", r2, sizeof r2, &replayed, &reason), ST_OK);
    assert_true(replayed);
    assert_string_equal(r1, r2); /* the same response bytes */
    assert_int_equal(widgets(db, "alpha"), 1);
    /* same key, different request */
    assert_int_equal(do_mutation(db, key, "beta", r2, sizeof r2, &replayed, &reason), ST_INVALID);
    assert_non_null(reason);
    assert_string_equal(reason, DB_IDEM_REUSED);
    assert_int_equal(widgets(db, "beta"), 0);
    /* same key and bytes but another method is another request */
    db_idem idem;
    assert_int_equal(
        db_idem_begin(db, 5000, key, "/herald.v1.OpsService/UpdateProfile", "alpha", 5, &idem),
        ST_INVALID);
    assert_string_equal(idem.reason, DB_IDEM_REUSED);
    assert_false(db_in_tx(db));
    db_idem_fini(&idem);
    db_close(db);
}

static void bad_keys(void **state)
{
    (void)state;
    db_conn *db = tdb_open(g_url);
    db_idem idem;
    char *long_key = xmalloc(DB_IDEM_KEY_MAX + 2);
    memset(long_key, 'k', DB_IDEM_KEY_MAX + 1);
    long_key[DB_IDEM_KEY_MAX + 1] = '\0';
    const char *keys[] = { "", "has\nnewline", "tab\there", "\xff\xfe", long_key };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        assert_int_equal(db_idem_begin(db, 5000, keys[i], METHOD, "x", 1, &idem), ST_INVALID);
        assert_null(idem.reason);
        assert_false(db_in_tx(db));
        db_idem_fini(&idem);
    }
    long_key[DB_IDEM_KEY_MAX] = '\0'; /* exactly the maximum is fine */
    assert_int_equal(db_idem_begin(db, 5000, long_key, METHOD, "x", 1, &idem), ST_OK);
    db_rollback(db);
    db_idem_fini(&idem);
    free(long_key);
    /* no time left: nothing touched */
    assert_int_equal(db_idem_begin(db, 0, "k", METHOD, "x", 1, &idem), ST_TIMEOUT);
    db_close(db);
}

static void in_flight_is_conflict_and_rollback_leaves_no_key(void **state)
{
    (void)state;
    db_conn *a = tdb_open(g_url);
    db_conn *b = tdb_open(g_url);
    db_idem ia, ib;
    const char *key = "in-flight-key-0000000000000000000001";

    assert_int_equal(db_idem_begin(a, 5000, key, METHOD, "gamma", 5, &ia), ST_OK);
    assert_false(ia.replay);
    int64_t t0 = now_mono_ms();
    assert_int_equal(db_idem_begin(b, 5000, key, METHOD, "gamma", 5, &ib), ST_CONFLICT);
    assert_true(now_mono_ms() - t0 < 200); /* at once, no waiting on the lock */
    assert_string_equal(ib.reason, DB_IDEM_IN_FLIGHT);
    db_idem_fini(&ib);
    db_rollback(a); /* the first call failed: its key must not survive */
    db_idem_fini(&ia);
    assert_int_equal(db_idem_begin(b, 5000, key, METHOD, "gamma", 5, &ib), ST_OK);
    assert_false(ib.replay);
    assert_int_equal(db_idem_store(b, &ib, 0, "done", 4), ST_OK);
    assert_int_equal(db_commit(b), ST_OK);
    db_idem_fini(&ib);
    assert_int_equal(db_idem_begin(a, 5000, key, METHOD, "gamma", 5, &ia), ST_OK);
    assert_true(ia.replay);
    assert_int_equal(ia.response_len, 4);
    assert_memory_equal(ia.response, "done", 4);
    assert_int_equal(ia.code, 0);
    db_idem_fini(&ia);
    db_close(a);
    db_close(b);
}

struct racer {
    int id;
    status st;
    bool replayed;
    char resp[128];
};

static void *race(void *p)
{
    struct racer *r = p;
    db_conn *db = tdb_open(g_url);
    const char *reason;
    /* retry ABORTED (in flight) a bounded number of times, as a client would */
    for (int attempt = 0; attempt < 50; attempt++) {
        r->st = do_mutation(db, "race-key-000000000000000000000000001", "delta", r->resp,
                            sizeof r->resp, &r->replayed, &reason);
        if (r->st != ST_CONFLICT)
            break;
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }
    db_close(db);
    return NULL;
}

static void racing_duplicates_commit_once(void **state)
{
    (void)state;
    enum { N = 6 };
    struct racer r[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].id = i;
        pthread_create(&t[i], NULL, race, &r[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    int fresh = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].st, ST_OK);
        if (!r[i].replayed)
            fresh++;
        assert_string_equal(r[i].resp, r[0].resp);
    }
    assert_int_equal(fresh, 1);
    db_conn *db = tdb_open(g_url);
    assert_int_equal(widgets(db, "delta"), 1);
    db_close(db);
}

static void prune_keeps_a_day(void **state)
{
    (void)state;
    db_conn *db = tdb_open(g_url);
    int64_t deleted = -1;
    tdb_must(db, "INSERT INTO idempotency_keys (key, method, request_hash, response, created_at)"
                 " VALUES ('old-1', 'm', sha256('a'), '', now() - interval '25 hours'),"
                 " ('old-2', 'm', sha256('b'), '', now() - interval '49 hours'),"
                 " ('young', 'm', sha256('c'), '', now() - interval '23 hours')");
    assert_int_equal(db_idem_prune(db, 5000, 3600, 100, &deleted), ST_INVALID);
    assert_int_equal(db_idem_prune(db, 5000, 86400, 1, &deleted), ST_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(tdb_int(db, "SELECT count(*) FROM idempotency_keys WHERE key = 'old-2'"), 0);
    assert_int_equal(db_idem_prune(db, 5000, 86400, 100, &deleted), ST_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(tdb_int(db, "SELECT count(*) FROM idempotency_keys WHERE key LIKE 'old-%'"),
                     0);
    assert_int_equal(tdb_int(db, "SELECT count(*) FROM idempotency_keys WHERE key = 'young'"), 1);
    db_close(db);
}

static void cache_versions(void **state)
{
    (void)state;
    db_conn *db = tdb_open(g_url);
    int64_t v = -1;
    assert_int_equal(db_begin(db, 5000), ST_OK);
    assert_int_equal(db_version_get(db, "profile:p1", &v), ST_OK);
    assert_int_equal(v, 0);
    assert_int_equal(db_version_bump(db, "profile:p1", &v), ST_OK);
    assert_int_equal(v, 1);
    assert_int_equal(db_version_bump(db, "profile:p1", &v), ST_OK);
    assert_int_equal(v, 2);
    db_rollback(db); /* a rolled-back write does not move the version */
    assert_int_equal(db_begin(db, 5000), ST_OK);
    assert_int_equal(db_version_get(db, "profile:p1", &v), ST_OK);
    assert_int_equal(v, 0);
    assert_int_equal(db_version_bump(db, "profile:p1", &v), ST_OK);
    assert_int_equal(db_commit(db), ST_OK);
    assert_int_equal(db_begin(db, 5000), ST_OK);
    assert_int_equal(db_version_get(db, "profile:p1", &v), ST_OK);
    assert_int_equal(v, 1);
    db_rollback(db);
    db_close(db);
}

int main(void)
{
    g_admin = getenv("DATABASE_URL");
    if (g_admin == NULL || g_admin[0] == '\0') {
        fprintf(stderr, "DATABASE_URL not set: skipping\n");
        return TEST_SKIP;
    }
    g_url = tdb_create(g_admin, "herald_test_idem", &g_name);
    char *err = NULL;
    if (migrate_up(g_url, &err) != ST_OK) {
        fprintf(stderr, "migrate: %s\n", err);
        return 1;
    }
    db_conn *db = tdb_open(g_url);
    tdb_must(db, "CREATE TABLE widgets (id bigint GENERATED ALWAYS AS IDENTITY, name text)");
    db_close(db);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replay_and_reuse),
        cmocka_unit_test(bad_keys),
        cmocka_unit_test(in_flight_is_conflict_and_rollback_leaves_no_key),
        cmocka_unit_test(racing_duplicates_commit_once),
        cmocka_unit_test(prune_keeps_a_day),
        cmocka_unit_test(cache_versions),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tdb_drop(g_admin, g_name);
    free(g_url);
    free(g_name);
    return rc;
}
