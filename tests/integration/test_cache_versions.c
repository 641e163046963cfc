/* test_cache_versions.c - cache versions pushed by LISTEN/NOTIFY
 * (server/vercache.h, migration 0007) and the in-process cache tier, with
 * two heraldd processes on one database and one Redis:
 *   - a write on A shows on A at once (read-your-writes) and on B within
 *     the staleness bound (2 s), through the notification;
 *   - B's reads come from its version map (a bump with the trigger
 *     disabled goes unseen until the next notified one);
 *   - killing the listeners' backends: reads stay correct (PostgreSQL) and
 *     both listeners subscribe again.
 * A reply "reflects" a write when its compute_time differs from the reply
 * computed before: every version makes a new key, so a new computation.
 * Every wait is bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "test_learning_svc_support.h"

static ls_env A;
static hd B;
static herald_stub *B_learn;
static char B_dir[128];

enum { BOUND_MS = 2000 };

static int group_setup(void **state)
{
    (void)state;
    static const char *const extra[] = { "HERALD_CACHE_VERSION_STALE_MS=2s", NULL };
    if (!ls_setup(&A, "cachever", extra, NULL))
        return -1;
    snprintf(B_dir, sizeof B_dir, "/tmp/herald-test-cachever-b-%d", (int)getpid());
    if (!hd_start(&B, B_dir, A.url, A.redis, extra) ||
        !hd_wait_health(&B, "herald.v1.LearningService", 1, 30000)) {
        fprintf(stderr, "second heraldd did not start (log: %s)\n", B.log);
        return -1;
    }
    B_learn = herald_stub_new(B.ch, &herald__v1__learning_service__descriptor);
    herald_call_options o = { .timeout_ms = 30000 };
    herald_stub_set_options(B_learn, &o);
    if (ls_profile(&A, "vc", "UTC", 24) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    herald_stub_free(B_learn);
    int rb = hd_stop(&B);
    if (rb != 0)
        fprintf(stderr, "second heraldd exited %d (log: %s)\n", rb, B.log);
    else if (getenv("HERALD_TEST_KEEP") == NULL)
        (void)tsh("rm -rf %s", B_dir);
    return ls_teardown(&A) == 0 && rb == 0 ? 0 : -1;
}

static void on_insights(const Herald__V1__GetInsightsResponse *m, void *d)
{
    ls_got *g = d;
    g->calls++;
    if (m != NULL)
        g->msg = ls_copy(&m->base);
}

/* GetInsights of profile "vc" on stub: its compute_time in ms and whether
 * it was a cache hit. */
static int64_t insights_at(herald_stub *stub, bool *cached)
{
    Herald__V1__GetInsightsRequest req = HERALD__V1__GET_INSIGHTS_REQUEST__INIT;
    req.profile_id = (char *)"vc";
    ls_got g = { 0 };
    herald__v1__learning_service__get_insights(herald_stub_service(stub), &req, on_insights, &g);
    assert_int_equal(herald_stub_status(stub)->code, 0);
    assert_non_null(g.msg);
    Herald__V1__GetInsightsResponse *r = (Herald__V1__GetInsightsResponse *)g.msg;
    int64_t ms = r->compute_time->seconds * 1000 + r->compute_time->nanos / 1000000;
    if (cached != NULL)
        *cached = r->cached;
    herald__v1__get_insights_response__free_unpacked(r, NULL);
    return ms;
}

/* A reply served from the cache on both A and B, as they have it now (a
 * first call may compute; a later one hits). */
static int64_t settled(herald_stub *stub)
{
    bool cached = false;
    int64_t t = 0;
    for (int i = 0; i < 5 && !cached; i++)
        t = insights_at(stub, &cached);
    assert_true(cached);
    return t;
}

/* Polls stub until its reply differs from before (true) or ms pass. */
static bool changes_within(herald_stub *stub, int64_t before, int ms, int64_t *took_ms)
{
    int64_t t0 = now_mono_ms();
    for (int i = 0; i < 1000; i++) {
        if (insights_at(stub, NULL) != before) {
            *took_ms = now_mono_ms() - t0;
            return true;
        }
        if (now_mono_ms() - t0 > ms)
            break;
        hd_sleep_ms(20);
    }
    return false;
}

static int set_arm(bool enabled)
{
    Herald__V1__SetArmEnabledRequest req = HERALD__V1__SET_ARM_ENABLED_REQUEST__INIT;
    char rid[40];
    req.request_id = ls_rid(&A, rid);
    req.profile_id = (char *)"vc";
    req.scope = HERALD__V1__ARM_SCOPE__ARM_SCOPE_TOPIC;
    req.key = (char *)"sleep";
    req.enabled = enabled;
    req.reason = (char *)"test";
    return ls_set_arm_enabled(&A, &req, NULL);
}

/* One statement, or several in one implicit transaction. */
static void sql(const char *stmt)
{
    status st = db_script(A.db, "test_sql", stmt);
    if (st != ST_OK)
        fprintf(stderr, "%s: %s\n", stmt, db_errmsg(A.db));
    assert_int_equal(st, ST_OK);
}

static void write_on_a_shows_on_a_at_once_and_on_b_within_the_bound(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        int64_t a0 = settled(A.learn), b0 = settled(B_learn);
        hd_sleep_ms(5); /* a later compute_time for anything computed now */
        assert_int_equal(set_arm(round % 2 == 1), 0);
        assert_true(insights_at(A.learn, NULL) != a0); /* read-your-writes, no waiting */
        int64_t took = 0;
        assert_true(changes_within(B_learn, b0, BOUND_MS, &took));
        fprintf(stderr, "round %d: B saw the write after %lld ms\n", round, (long long)took);
    }
}

static void reads_come_from_the_map(void **state)
{
    (void)state;
    int64_t b0 = settled(B_learn);
    settled(A.learn);
    hd_sleep_ms(5);
    /* a bump nobody is told about: the maps keep the version they have (a
     * reader asking PostgreSQL each time would see it) */
    sql("ALTER TABLE cache_versions DISABLE TRIGGER cache_versions_notify; "
        "UPDATE cache_versions SET version = version + 1, updated_at = now() "
        "WHERE scope = 'learning:vc'; "
        "ALTER TABLE cache_versions ENABLE ALWAYS TRIGGER cache_versions_notify");
    for (int i = 0; i < 5; i++)
        assert_int_equal(insights_at(B_learn, NULL), b0);
    /* the next notified bump carries the latest version */
    sql("UPDATE cache_versions SET version = version + 1, updated_at = now() "
        "WHERE scope = 'learning:vc'");
    int64_t took = 0;
    assert_true(changes_within(B_learn, b0, BOUND_MS, &took));
}

static int listeners(void)
{
    db_res *res = NULL;
    assert_int_equal(
        db_run(A.db, 10000, "test_listeners",
               "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
               "'heraldd-versions' AND datname = current_database() AND state = 'idle'",
               NULL, &res),
        ST_OK);
    int n = (int)db_res_int64(res, 0, 0);
    db_res_free(res);
    return n;
}

static void listener_loss_falls_back_and_resubscribes(void **state)
{
    (void)state;
    int64_t until = now_mono_ms() + 10000;
    while (listeners() < 2 && now_mono_ms() < until)
        hd_sleep_ms(50);
    assert_int_equal(listeners(), 2);
    for (int round = 0; round < 2; round++) {
        int64_t a0 = settled(A.learn), b0 = settled(B_learn);
        sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
            "'heraldd-versions' AND datname = current_database()");
        hd_sleep_ms(5);
        /* written while nobody listens (or while they subscribe again) */
        assert_int_equal(set_arm(round % 2 == 0), 0);
        assert_true(insights_at(A.learn, NULL) != a0);
        int64_t took = 0;
        assert_true(changes_within(B_learn, b0, BOUND_MS, &took));
        /* both subscribe again */
        until = now_mono_ms() + 10000;
        while (listeners() < 2 && now_mono_ms() < until)
            hd_sleep_ms(50);
        assert_int_equal(listeners(), 2);
        /* and the maps serve notified versions again */
        b0 = settled(B_learn);
        settled(A.learn);
        hd_sleep_ms(5);
        sql("UPDATE cache_versions SET version = version + 1, updated_at = now() "
            "WHERE scope = 'learning:vc'");
        assert_true(changes_within(B_learn, b0, BOUND_MS, &took));
    }
    assert_true(hd_alive(&A.hd));
    assert_true(hd_alive(&B));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(write_on_a_shows_on_a_at_once_and_on_b_within_the_bound),
        cmocka_unit_test(reads_come_from_the_map),
        cmocka_unit_test(listener_loss_falls_back_and_resubscribes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
