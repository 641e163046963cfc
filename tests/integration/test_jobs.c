/* Integration test of the background job runner (server/jobs.c) against a
 * real PostgreSQL: two replicas share one job without running it twice per
 * interval, a dead replica's lock expires, failures are recorded, and the
 * runner thread runs jobs on its own. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "jobs.h"
#include "migrate.h"
#include "test_db_support.h"

static const char *g_admin;
static char *g_url;
static char *g_name;

static atomic_int g_runs;

static status count_job(db_conn *db, int64_t budget_ms, char *note, size_t cap, void *user)
{
    (void)db;
    (void)budget_ms;
    (void)user;
    int n = atomic_fetch_add(&g_runs, 1) + 1;
    snprintf(note, cap, "run %d", n);
    return ST_OK;
}

static status failing_job(db_conn *db, int64_t budget_ms, char *note, size_t cap, void *user)
{
    (void)db;
    (void)budget_ms;
    (void)user;
    snprintf(note, cap, "upstream refused");
    return ST_UNAVAILABLE;
}

/* The job writes through the runner's connection inside its budget. */
static status writing_job(db_conn *db, int64_t budget_ms, char *note, size_t cap, void *user)
{
    (void)user;
    status st =
        db_run(db, budget_ms, "test_job_write", "INSERT INTO job_marks DEFAULT VALUES", NULL, NULL);
    snprintf(note, cap, "%s", st == ST_OK ? "wrote" : db_errmsg(db));
    return st;
}

static jobs *runner(const char *owner, db_options *dbo)
{
    db_options_init(dbo);
    dbo->conninfo = g_url;
    jobs_options o = { .db = dbo, .owner = owner, .tick_ms = 20 };
    return jobs_new(&o);
}

static void reset(db_conn *db)
{
    tdb_must(db, "DELETE FROM background_jobs");
    atomic_store(&g_runs, 0);
}

static void two_replicas_run_a_job_once_per_interval(void **state)
{
    (void)state;
    db_options dbo_a, dbo_b;
    jobs *a = runner("replica-a", &dbo_a);
    jobs *b = runner("replica-b", &dbo_b);
    jobs_add(a, "count", 60000, 5000, count_job, NULL);
    jobs_add(b, "count", 60000, 5000, count_job, NULL);
    db_conn *da = tdb_open(g_url), *dbb = tdb_open(g_url);
    reset(da);
    int64_t now = now_mono_ms();
    /* Both replicas see the job due at the same moment: exactly one runs. */
    int ran = jobs_run_due(a, da, now) + jobs_run_due(b, dbb, now);
    assert_int_equal(ran, 1);
    assert_int_equal(atomic_load(&g_runs), 1);
    /* Local schedules ignored (kick): the row says not due, nobody runs. */
    assert_int_equal(jobs_run_due(a, da, now + 120000) + jobs_run_due(b, dbb, now + 120000), 0);
    assert_int_equal(atomic_load(&g_runs), 1);
    assert_int_equal(tdb_int(da, "SELECT count(*) FROM background_jobs WHERE name = 'count' "
                                 "AND last_status = 'ok' AND lease_owner IS NULL"),
                     1);
    /* Once the row is due again, one of them runs it. */
    tdb_must(da, "UPDATE background_jobs SET next_run_at = now() - interval '1 second'");
    ran = jobs_run_due(b, dbb, now + 240000) + jobs_run_due(a, da, now + 240000);
    assert_int_equal(ran, 1);
    assert_int_equal(atomic_load(&g_runs), 2);
    db_close(da);
    db_close(dbb);
    jobs_free(a);
    jobs_free(b);
}

static void a_dead_replicas_lock_expires(void **state)
{
    (void)state;
    db_options dbo;
    jobs *a = runner("replica-a", &dbo);
    jobs_add(a, "count", 60000, 5000, count_job, NULL);
    db_conn *db = tdb_open(g_url);
    reset(db);
    /* A replica that claimed the job and died: locked until the future. */
    tdb_must(db, "INSERT INTO background_jobs (name, interval_seconds, next_run_at, "
                 "lease_owner, lease_until) VALUES ('count', 60, now() - interval '1 s', "
                 "'dead', now() + interval '1 hour')");
    assert_int_equal(jobs_run_due(a, db, now_mono_ms()), 0);
    assert_int_equal(atomic_load(&g_runs), 0);
    tdb_must(db, "UPDATE background_jobs SET lease_until = now() - interval '1 ms'");
    jobs_kick(a, "count");
    assert_int_equal(jobs_run_due(a, db, now_mono_ms()), 1);
    assert_int_equal(atomic_load(&g_runs), 1);
    db_close(db);
    jobs_free(a);
}

static void failures_are_recorded(void **state)
{
    (void)state;
    db_options dbo;
    jobs *a = runner("replica-a", &dbo);
    jobs_add(a, "flaky", 60000, 5000, failing_job, NULL);
    db_conn *db = tdb_open(g_url);
    reset(db);
    assert_int_equal(jobs_run_due(a, db, now_mono_ms()), 1);
    assert_int_equal(tdb_int(db, "SELECT count(*) FROM background_jobs WHERE name = 'flaky' "
                                 "AND last_error = 'upstream refused' AND last_status = 'error'"),
                     1);
    db_close(db);
    jobs_free(a);
}

static void the_thread_runs_jobs(void **state)
{
    (void)state;
    db_options dbo;
    jobs *a = runner("replica-a", &dbo);
    jobs_add(a, "write", 1000, 2000, writing_job, NULL);
    db_conn *db = tdb_open(g_url);
    reset(db);
    tdb_must(db, "DELETE FROM job_marks");
    char *err = NULL;
    assert_int_equal(jobs_start(a, &err), ST_OK);
    /* 1 s interval: within 4 s it must have run at least twice. */
    int64_t marks = 0;
    for (int i = 0; i < 80 && marks < 2; i++) {
        usleep(50 * 1000);
        marks = tdb_int(db, "SELECT count(*) FROM job_marks");
    }
    jobs_free(a); /* stops and joins */
    assert_true(marks >= 2);
    int64_t after = tdb_int(db, "SELECT count(*) FROM job_marks");
    usleep(300 * 1000);
    assert_int_equal(tdb_int(db, "SELECT count(*) FROM job_marks"), after); /* really stopped */
    db_close(db);
}

int main(void)
{
    g_admin = getenv("DATABASE_URL");
    if (g_admin == NULL || g_admin[0] == '\0') {
        fprintf(stderr, "DATABASE_URL not set: skipping\n");
        return TEST_SKIP;
    }
    g_url = tdb_create(g_admin, "herald_test_jobs", &g_name);
    char *err = NULL;
    if (migrate_up(g_url, &err) != ST_OK) {
        fprintf(stderr, "migrate: %s\n", err);
        return 1;
    }
    db_conn *db = tdb_open(g_url);
    tdb_must(db, "CREATE TABLE job_marks (id bigint GENERATED ALWAYS AS IDENTITY, "
                 "at timestamptz DEFAULT now())");
    db_close(db);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_replicas_run_a_job_once_per_interval),
        cmocka_unit_test(a_dead_replicas_lock_expires),
        cmocka_unit_test(failures_are_recorded),
        cmocka_unit_test(the_thread_runs_jobs),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tdb_drop(g_admin, g_name);
    free(g_url);
    free(g_name);
    return rc;
}
