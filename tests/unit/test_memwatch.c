/* test_memwatch.c - the memory manager: the state machine with hysteresis
 * over a scripted RSS, shed callbacks once per move up, the admission rule
 * and its table, a disabled manager, an unreadable RSS, the sampling thread,
 * and the real RSS of this process against a limit below it. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "log.h"
#include "memwatch.h"
#include "procstat.h"
#include "util.h"

#define MIB ((int64_t)1 << 20)

static _Atomic int64_t fake_rss;

static int64_t read_fake(void *user)
{
    (void)user;
    return atomic_load(&fake_rss);
}

typedef struct shed_log {
    int calls;
    memwatch_level last;
} shed_log;

static void on_shed(memwatch_level level, void *user)
{
    shed_log *s = user;
    s->calls++;
    s->last = level;
}

static memwatch *fake_watch(int64_t limit)
{
    memwatch_options o;
    memwatch_options_init(&o);
    o.limit_bytes = limit;
    o.soft_pct = 75;
    o.hysteresis_pct = 5;
    o.retry_ms = 1234;
    o.rss = read_fake;
    return memwatch_new(&o);
}

static void states_follow_rss_with_hysteresis(void **state)
{
    (void)state;
    memwatch *m = fake_watch(100 * MIB); /* soft 75 MiB, hysteresis 5 MiB */
    shed_log shed = { 0 };
    memwatch_add_shed(m, on_shed, &shed);
    assert_int_equal(memwatch_state(m), MEMWATCH_OK);

    /* rss (MiB) -> expected state, sheds so far. */
    static const struct {
        int64_t mib;
        memwatch_level want;
        int sheds;
    } steps[] = {
        { 10, MEMWATCH_OK, 0 },   { 74, MEMWATCH_OK, 0 },   { 75, MEMWATCH_SOFT, 1 },
        { 72, MEMWATCH_SOFT, 1 }, /* inside the band: stays */
        { 70, MEMWATCH_SOFT, 1 }, /* exactly soft - hysteresis: stays */
        { 69, MEMWATCH_OK, 1 },   { 76, MEMWATCH_SOFT, 2 }, { 100, MEMWATCH_HARD, 3 },
        { 96, MEMWATCH_HARD, 3 }, { 95, MEMWATCH_HARD, 3 }, { 94, MEMWATCH_SOFT, 3 },
        { 99, MEMWATCH_SOFT, 3 }, /* back up but under the limit: still soft */
        { 71, MEMWATCH_SOFT, 3 }, { 60, MEMWATCH_OK, 3 },   { 120, MEMWATCH_HARD, 4 },
        { 50, MEMWATCH_OK, 4 }, /* straight down past both bands */
        { 50, MEMWATCH_OK, 4 },
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        atomic_store(&fake_rss, steps[i].mib * MIB);
        memwatch_level got = memwatch_tick(m);
        if (got != steps[i].want || shed.calls != steps[i].sheds)
            fail_msg("step %zu (%lld MiB): state %s, want %s; sheds %d, want %d", i,
                     (long long)steps[i].mib, memwatch_level_name(got),
                     memwatch_level_name(steps[i].want), shed.calls, steps[i].sheds);
        assert_int_equal(memwatch_state(m), got);
    }
    assert_int_equal(shed.last, MEMWATCH_HARD);

    memwatch_stats st;
    memwatch_stats_get(m, &st);
    assert_int_equal(st.samples, sizeof steps / sizeof steps[0]);
    assert_int_equal(st.shed_count, 4);
    assert_int_equal(st.transitions, 8);
    assert_int_equal(st.rss_bytes, 50 * MIB);
    assert_int_equal(st.peak_rss_bytes, 120 * MIB);
    assert_int_equal(st.limit_bytes, 100 * MIB);
    assert_int_equal(st.soft_limit_bytes, 75 * MIB);
    memwatch_free(m);
}

static void expensive_table(void **state)
{
    (void)state;
    static const char *const expensive[] = {
        "/herald.v1.ContentService/GenerateDraft",
        "/herald.v1.ContentService/GenerateBatch",
        "/herald.v1.ContentService/GenerateReply",
        "/herald.v1.ContentService/AdaptForPlatform",
        "/herald.v1.LearningService/RecordEngagement",
        "/herald.v1.LearningService/RecordFollowerSnapshots",
        "/herald.v1.LearningService/RecordReplies",
        "/herald.v1.LearningService/RecomputeOutcomes",
    };
    static const char *const cheap[] = {
        "/herald.v1.ContentService/GetPost",
        "/herald.v1.ContentService/ValidateText",
        "/herald.v1.OpsService/GetStatus",
        "/herald.v1.SchedulingService/ClaimDueWork",
        "/herald.v1.LearningService/Recommend",
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/herald.v1.ContentService/GenerateDraftX",
        "/herald.v1.ContentService/Generate",
        "GenerateDraft",
        "",
    };
    for (size_t i = 0; i < sizeof expensive / sizeof expensive[0]; i++)
        assert_true(memwatch_method_expensive(expensive[i]));
    for (size_t i = 0; i < sizeof cheap / sizeof cheap[0]; i++)
        assert_false(memwatch_method_expensive(cheap[i]));
    assert_false(memwatch_method_expensive(NULL));
}

static void admission_in_each_state(void **state)
{
    (void)state;
    memwatch *m = fake_watch(100 * MIB);
    int64_t retry = 0;
    const char *gen = "/herald.v1.ContentService/GenerateDraft";
    const char *get = "/herald.v1.ContentService/GetPost";

    atomic_store(&fake_rss, 10 * MIB);
    memwatch_tick(m);
    assert_int_equal(memwatch_admit(m, gen, &retry), ST_OK);
    assert_int_equal(retry, -1);

    atomic_store(&fake_rss, 80 * MIB); /* SOFT: shed, but admit everything */
    assert_int_equal(memwatch_tick(m), MEMWATCH_SOFT);
    assert_int_equal(memwatch_admit(m, gen, &retry), ST_OK);

    atomic_store(&fake_rss, 101 * MIB);
    assert_int_equal(memwatch_tick(m), MEMWATCH_HARD);
    assert_int_equal(memwatch_admit(m, gen, &retry), ST_EXHAUSTED);
    assert_int_equal(retry, 1234);
    assert_int_equal(memwatch_admit(m, gen, NULL), ST_EXHAUSTED);
    assert_int_equal(memwatch_admit(m, get, &retry), ST_OK);
    assert_int_equal(retry, -1);
    assert_int_equal(memwatch_admit(m, "/grpc.health.v1.Health/Check", NULL), ST_OK);
    assert_int_equal(memwatch_admit(m, NULL, NULL), ST_OK);
    assert_int_equal(memwatch_admit(NULL, gen, &retry), ST_OK);

    memwatch_stats st;
    memwatch_stats_get(m, &st);
    assert_int_equal(st.rejected_calls, 2);

    atomic_store(&fake_rss, 20 * MIB);
    assert_int_equal(memwatch_tick(m), MEMWATCH_OK);
    assert_int_equal(memwatch_admit(m, gen, &retry), ST_OK);
    memwatch_free(m);
}

static void custom_table(void **state)
{
    (void)state;
    static const char *const mine[] = { "/x.v1.S/Heavy", NULL };
    memwatch_options o;
    memwatch_options_init(&o);
    o.limit_bytes = 10 * MIB;
    o.rss = read_fake;
    o.expensive = mine;
    memwatch *m = memwatch_new(&o);
    atomic_store(&fake_rss, 11 * MIB);
    assert_int_equal(memwatch_tick(m), MEMWATCH_HARD);
    assert_int_equal(memwatch_admit(m, "/x.v1.S/Heavy", NULL), ST_EXHAUSTED);
    /* The built-in table no longer applies. */
    assert_int_equal(memwatch_admit(m, "/herald.v1.ContentService/GenerateDraft", NULL), ST_OK);
    memwatch_free(m);
}

static int64_t read_fail(void *user)
{
    (void)user;
    return -1;
}

static void disabled_and_unreadable(void **state)
{
    (void)state;
    /* limit 0: figures only, never a state change. */
    memwatch *m = fake_watch(0);
    atomic_store(&fake_rss, 100000 * MIB);
    assert_int_equal(memwatch_tick(m), MEMWATCH_OK);
    assert_int_equal(memwatch_admit(m, "/herald.v1.ContentService/GenerateDraft", NULL), ST_OK);
    memwatch_stats st;
    memwatch_stats_get(m, &st);
    assert_int_equal(st.limit_bytes, 0);
    assert_int_equal(st.soft_limit_bytes, 0);
    assert_int_equal(st.rss_bytes, 100000 * MIB);
    memwatch_free(m);

    /* RSS unreadable: the state stays where it was. */
    memwatch_options o;
    memwatch_options_init(&o);
    o.limit_bytes = 10 * MIB;
    o.rss = read_fail;
    m = memwatch_new(&o);
    assert_int_equal(memwatch_tick(m), MEMWATCH_OK);
    memwatch_stats_get(m, &st);
    assert_int_equal(st.samples, 0);
    assert_int_equal(st.rss_bytes, -1);
    memwatch_free(m);
}

static void sampler_thread(void **state)
{
    (void)state;
    memwatch_options o;
    memwatch_options_init(&o);
    o.limit_bytes = 100 * MIB;
    o.sample_ms = 20;
    o.rss = read_fake;
    memwatch *m = memwatch_new(&o);
    atomic_store(&fake_rss, 10 * MIB);
    char *err = NULL;
    assert_int_equal(memwatch_start(m, &err), ST_OK);
    assert_int_equal(memwatch_start(m, &err), ST_OK); /* idempotent */
    atomic_store(&fake_rss, 200 * MIB);
    int64_t until = now_mono_ms() + 3000;
    while (memwatch_state(m) != MEMWATCH_HARD && now_mono_ms() < until) {
        struct timespec ts = { 0, 5 * 1000000L };
        nanosleep(&ts, NULL);
    }
    assert_int_equal(memwatch_state(m), MEMWATCH_HARD);
    atomic_store(&fake_rss, 1 * MIB);
    until = now_mono_ms() + 3000;
    while (memwatch_state(m) != MEMWATCH_OK && now_mono_ms() < until) {
        struct timespec ts = { 0, 5 * 1000000L };
        nanosleep(&ts, NULL);
    }
    assert_int_equal(memwatch_state(m), MEMWATCH_OK);
    /* Stop wakes the thread instead of waiting out a long period. */
    int64_t t0 = now_mono_ms();
    memwatch_stop(m);
    memwatch_stop(m);
    assert_true(now_mono_ms() - t0 < 1000);
    memwatch_free(m);

    /* A long period: stop still returns at once. */
    o.sample_ms = 60000;
    m = memwatch_new(&o);
    assert_int_equal(memwatch_start(m, &err), ST_OK);
    t0 = now_mono_ms();
    memwatch_free(m);
    assert_true(now_mono_ms() - t0 < 1000);
}

/* The real RSS of this process against a limit below it. */
static void real_rss_over_a_low_limit(void **state)
{
    (void)state;
    int64_t rss = procstat_rss_bytes();
    assert_true(rss > 2 * MIB);
    memwatch_options o;
    memwatch_options_init(&o);
    o.limit_bytes = rss / 2; /* well below what we use now */
    memwatch *m = memwatch_new(&o);
    assert_int_equal(memwatch_tick(m), MEMWATCH_HARD);
    assert_int_equal(memwatch_admit(m, "/herald.v1.LearningService/RecordEngagement", NULL),
                     ST_EXHAUSTED);
    assert_int_equal(memwatch_admit(m, "/herald.v1.OpsService/GetStatus", NULL), ST_OK);
    memwatch_stats st;
    memwatch_stats_get(m, &st);
    assert_true(st.rss_bytes > o.limit_bytes);
    memwatch_free(m);

    /* And a generous limit: OK. */
    o.limit_bytes = rss * 4;
    m = memwatch_new(&o);
    assert_int_equal(memwatch_tick(m), MEMWATCH_OK);
    memwatch_free(m);
}

int main(void)
{
    atomic_store(&log_level, LOG_OFF); /* transitions log; keep the test output clean */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(states_follow_rss_with_hysteresis), cmocka_unit_test(expensive_table),
        cmocka_unit_test(admission_in_each_state),           cmocka_unit_test(custom_table),
        cmocka_unit_test(disabled_and_unreadable),           cmocka_unit_test(sampler_thread),
        cmocka_unit_test(real_rss_over_a_low_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
