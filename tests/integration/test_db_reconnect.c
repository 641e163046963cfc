/* test_db_reconnect.c - on a private PostgreSQL that this test starts, kills
 * (pg_ctl -m immediate stop) and restarts: calls during the outage fail fast
 * with UNAVAILABLE, the same handle serves again soon after PostgreSQL
 * accepts connections, and the readiness pinger goes NOT_SERVING after 3
 * failed probes and SERVING after one success. Needs root (runuser) and the
 * PostgreSQL binaries; skips without DATABASE_URL (the integration label). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "db.h"
#include "migrate.h"
#include "test_db_support.h"
#include "util.h"

static tpriv g_pg;

/* transitions seen by the pinger callback; mu protects the fields below it */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int n_changes;
static bool last_ready;
static int64_t last_change_ms;

static void on_change(bool ready, const char *why, void *user)
{
    (void)why;
    (void)user;
    pthread_mutex_lock(&mu);
    n_changes++;
    last_ready = ready;
    last_change_ms = now_mono_ms();
    pthread_mutex_unlock(&mu);
}

static bool wait_ready(bool want, int64_t limit_ms, int64_t *at_ms)
{
    int64_t t0 = now_mono_ms();
    while (now_mono_ms() - t0 < limit_ms) {
        pthread_mutex_lock(&mu);
        bool r = last_ready;
        int64_t at = last_change_ms;
        int n = n_changes;
        pthread_mutex_unlock(&mu);
        if (n > 0 && r == want) {
            *at_ms = at;
            return true;
        }
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
    return false;
}

static void kill_and_restart(void **state)
{
    (void)state;
    db_conn *db = tdb_open(g_pg.database_url);
    db_options dbo;
    db_options_init(&dbo);
    dbo.conninfo = g_pg.database_url;
    db_pinger_options po;
    db_pinger_options_init(&po);
    po.interval_ms = 300;
    po.fail_threshold = 3;
    po.probe_budget_ms = 250;
    po.on_change = on_change;
    char *err = NULL;
    int64_t at = 0;

    assert_int_equal(db_ping(db, 1000), ST_OK);
    db_pinger *p = db_pinger_start(&dbo, &po, &err);
    assert_non_null(p);
    assert_true(wait_ready(true, 3000, &at));
    assert_true(db_pinger_ready(p));

    for (int cycle = 0; cycle < 2; cycle++) {
        assert_int_equal(tpriv_pg_kill(&g_pg), 0);
        int64_t t_kill = now_mono_ms();
        /* during the outage: fast, clean failures */
        for (int i = 0; i < 20; i++) {
            int64_t t0 = now_mono_ms();
            status st = db_ping(db, 500);
            int64_t took = now_mono_ms() - t0;
            assert_true(st == ST_UNAVAILABLE || st == ST_TIMEOUT);
            assert_true(took <= 600);
            struct timespec ts = { 0, 50 * 1000000L };
            nanosleep(&ts, NULL);
        }
        assert_false(db_connected(db));
        /* readiness: 3 failed probes 300 ms apart, not before */
        assert_true(wait_ready(false, 4000, &at));
        assert_true(at - t_kill >= 2 * po.interval_ms);
        fprintf(stderr, "# cycle %d: NOT_SERVING %lld ms after the kill\n", cycle,
                (long long)(at - t_kill));

        assert_true(tpriv_restart(&g_pg));
        int64_t t_up = now_mono_ms(); /* services.sh returns once PG accepts */
        status st = ST_UNAVAILABLE;
        while (now_mono_ms() - t_up < 10000) {
            st = db_ping(db, 500);
            if (st == ST_OK)
                break;
            struct timespec ts = { 0, 20 * 1000000L };
            nanosleep(&ts, NULL);
        }
        int64_t recovered = now_mono_ms() - t_up;
        assert_int_equal(st, ST_OK);
        assert_true(recovered < 5000);
        assert_true(wait_ready(true, 3000, &at));
        fprintf(stderr,
                "# cycle %d: handle serves %lld ms after PostgreSQL accepts, "
                "SERVING after %lld ms\n",
                cycle, (long long)recovered, (long long)(at - t_up));
    }
    db_pool_stats ps;
    db_pool_stats_get(&ps);
    assert_true(ps.connect_fails > 0);
    assert_true(ps.drops >= 2);
    db_pinger_stop(p);
    db_close(db);
}

int main(void)
{
    const char *admin = getenv("DATABASE_URL");
    if (admin == NULL || admin[0] == '\0') {
        fprintf(stderr, "DATABASE_URL not set: skipping\n");
        return TEST_SKIP;
    }
    if (!tpriv_up(&g_pg, "reconnect")) {
        fprintf(stderr, "cannot start a private PostgreSQL\n");
        tpriv_down(&g_pg);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kill_and_restart),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tpriv_down(&g_pg);
    return rc;
}
