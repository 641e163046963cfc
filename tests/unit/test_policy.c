/* test_policy.c - posting policy: defaults, validation with named
 * violations, each publish-time rule on its own (quiet hours across midnight
 * and DST, gap, rolling hour, local day in a non-UTC zone), cooldowns from
 * platform signals, rule order, quota status. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "policy.h"
#include "tz.h"

#define MIN_S 60
#define HOUR_S 3600

static const tz_zone *zone(const char *name)
{
    const tz_zone *z = NULL;
    assert_int_equal(tz_get(name, &z, NULL, 0), ST_OK);
    return z;
}

/* Unix seconds of a local wall time in zone z (searching offsets around it). */
static int64_t local_to_utc(const tz_zone *z, int y, int mo, int d, int h, int mi)
{
    int64_t wall = tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
    for (int32_t guess = -14 * 3600; guess <= 14 * 3600; guess += 900) {
        int64_t t = wall - guess;
        if (tz_offset_at(z, t) == guess)
            return t;
    }
    fail_msg("no such local time");
    return 0;
}

static void policy_defaults_are_documented_and_valid(void **state)
{
    (void)state;
    policy p;
    policy_defaults(&p);
    assert_int_equal(p.max_posts_per_hour, 2);
    assert_int_equal(p.max_posts_per_day, 24);
    assert_int_equal(p.min_gap_minutes, 20);
    assert_int_equal(p.min_replies_per_hour, 4);
    assert_int_equal(p.max_replies_per_hour, 6);
    assert_int_equal(p.reply_root_cooldown_hours, 24);
    assert_int_equal(p.reply_author_cooldown_hours, 12);
    assert_true(p.cooldown_target_factor == 0.5);
    assert_int_equal(p.n_quiet_hours, 0);
    assert_int_equal(policy_validate(&p, NULL, 0), 0);
    p.max_posts_per_hour = 60;
    p.max_posts_per_day = 1440; /* the proto's maximum stores since 0006 */
    assert_int_equal(policy_validate(&p, NULL, 0), 0);
}

typedef void (*mutator)(policy *p);
static void m_hour(policy *p)
{
    p->max_posts_per_hour = 61;
}
static void m_day(policy *p)
{
    p->max_posts_per_day = -1;
}
static void m_day_max(policy *p)
{
    p->max_posts_per_day = 1441; /* the proto's limit is one a minute */
}
static void m_gap(policy *p)
{
    p->min_gap_minutes = 1441;
}
static void m_quiet_n(policy *p)
{
    p->n_quiet_hours = POLICY_MAX_QUIET + 1;
}
static void m_quiet_end(policy *p)
{
    p->n_quiet_hours = 2;
    p->quiet_hours[1].end_minute_of_day = 1440;
}
static void m_quiet_days(policy *p)
{
    p->n_quiet_hours = 1;
    p->quiet_hours[0].days_mask = 0x80;
}
static void m_replies(policy *p)
{
    p->min_replies_per_hour = 7;
}
static void m_factor0(policy *p)
{
    p->cooldown_target_factor = 0.0;
}
static void m_factor_nan(policy *p)
{
    p->cooldown_target_factor = 0.0 / 0.0;
}
static void m_attempts(policy *p)
{
    p->max_publish_attempts = 0;
}
static void m_backoff(policy *p)
{
    p->retry_initial_backoff_seconds = 4000;
}
static void m_hour_gt_day(policy *p)
{
    p->max_posts_per_hour = 10;
    p->max_posts_per_day = 5;
}
static void m_fresh(policy *p)
{
    p->reply_freshness_minutes = 0;
}
static void m_reconcile(policy *p)
{
    p->reconcile_window_minutes = 1441;
}

static void policy_validation_names_each_field(void **state)
{
    (void)state;
    /* clang-format off */
    static const struct { mutator m; const char *field; } cases[] = {
        { m_hour, "max_posts_per_hour" },
        { m_day, "max_posts_per_day" },
        { m_day_max, "max_posts_per_day" },
        { m_gap, "min_gap_minutes" },
        { m_quiet_n, "quiet_hours" },
        { m_quiet_end, "quiet_hours[1].end_minute_of_day" },
        { m_quiet_days, "quiet_hours[0].days" },
        { m_replies, "min_replies_per_hour" },
        { m_factor0, "cooldown_target_factor" },
        { m_factor_nan, "cooldown_target_factor" },
        { m_attempts, "max_publish_attempts" },
        { m_backoff, "retry_initial_backoff_seconds" },
        { m_hour_gt_day, "max_posts_per_hour" },
        { m_fresh, "reply_freshness_minutes" },
        { m_reconcile, "reconcile_window_minutes" },
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        policy p;
        policy_defaults(&p);
        cases[i].m(&p);
        policy_violation v[8];
        size_t n = policy_validate(&p, v, 8);
        assert_true(n >= 1);
        bool found = false;
        for (size_t k = 0; k < n && k < 8; k++)
            found = found || strcmp(v[k].field, cases[i].field) == 0;
        if (!found)
            fail_msg("case %zu: no violation named %s (first: %s: %s)", i, cases[i].field,
                     v[0].field, v[0].description);
        assert_true(strlen(v[0].description) > 0);
    }
    /* Several at once: all counted, only cap written. */
    policy p;
    policy_defaults(&p);
    p.max_posts_per_hour = -5;
    p.min_gap_minutes = -1;
    p.max_publish_attempts = 99;
    policy_violation one[1];
    assert_int_equal(policy_validate(&p, one, 1), 3);
    assert_string_equal(one[0].field, "max_posts_per_hour");
}

static policy_ctx ctx_of(const policy *p, const tz_zone *z, const int64_t *posts, size_t n)
{
    policy_ctx c = { .policy = p, .zone = z, .posts_s = posts, .n_posts = n };
    return c;
}

static void policy_quiet_hours_wrap_days_and_dst(void **state)
{
    (void)state;
    const tz_zone *berlin = zone("Europe/Berlin");
    policy p;
    policy_defaults(&p);
    p.n_quiet_hours = 2;
    /* Fridays 23:00 -> 07:00 (wraps into Saturday) */
    p.quiet_hours[0] = (policy_quiet){ 23 * 60, 7 * 60, 1u << (5 - 1) };
    /* Every day 02:00 -> 03:30 */
    p.quiet_hours[1] = (policy_quiet){ 2 * 60, 3 * 60 + 30, 0 };
    policy_ctx c = ctx_of(&p, berlin, NULL, 0);
    /* 2024-03-29 is a Friday. */
    assert_true(policy_in_quiet_hours(&c, local_to_utc(berlin, 2024, 3, 29, 23, 30)));
    assert_false(policy_in_quiet_hours(&c, local_to_utc(berlin, 2024, 3, 29, 22, 59)));
    assert_true(policy_in_quiet_hours(&c, local_to_utc(berlin, 2024, 3, 30, 6, 59)));
    assert_false(policy_in_quiet_hours(&c, local_to_utc(berlin, 2024, 3, 30, 7, 0)));
    /* Saturday night is not quiet (the window starts on Fridays only)... */
    assert_false(policy_in_quiet_hours(&c, local_to_utc(berlin, 2024, 3, 30, 23, 30)));
    /* ...nor is Friday 01:00 (that belongs to Thursday's night). */
    assert_false(policy_in_quiet_hours(&c, local_to_utc(berlin, 2024, 3, 29, 1, 0)));
    /* 2024-03-31 02:00 does not exist in Berlin: 01:59 CET -> 03:00 CEST. */
    int64_t before = local_to_utc(berlin, 2024, 3, 31, 1, 59);
    assert_false(policy_in_quiet_hours(&c, before));
    assert_true(policy_in_quiet_hours(&c, before + 60)); /* 03:00 CEST */
    assert_true(policy_in_quiet_hours(&c, before + 60 + 29 * MIN_S));
    assert_false(policy_in_quiet_hours(&c, before + 60 + 30 * MIN_S)); /* 03:30 */
    /* The same UTC instant is not quiet in another zone. */
    policy_ctx cu = ctx_of(&p, zone("America/New_York"), NULL, 0);
    assert_false(policy_in_quiet_hours(&cu, local_to_utc(berlin, 2024, 3, 29, 23, 30)));
    assert_int_equal(policy_check(&c, local_to_utc(berlin, 2024, 3, 29, 23, 30), NULL),
                     POLICY_RULE_QUIET_HOURS);

    /* start == end: 24 hours from start, here Sundays 00:00 to Monday 00:00. */
    p.n_quiet_hours = 1;
    p.quiet_hours[0] = (policy_quiet){ 0, 0, 1u << (7 - 1) };
    assert_true(policy_in_quiet_hours(&c, local_to_utc(berlin, 2024, 4, 7, 0, 0)));
    assert_true(policy_in_quiet_hours(&c, local_to_utc(berlin, 2024, 4, 7, 23, 59)));
    assert_false(policy_in_quiet_hours(&c, local_to_utc(berlin, 2024, 4, 8, 0, 0)));
    assert_false(policy_in_quiet_hours(&c, local_to_utc(berlin, 2024, 4, 6, 23, 59)));
}

static void policy_min_gap_is_symmetric_and_inclusive(void **state)
{
    (void)state;
    policy p;
    policy_defaults(&p);
    p.max_posts_per_hour = 60;
    p.max_posts_per_day = 1000;
    int64_t t0 = 1717236000; /* 2024-06-01T10:00Z */
    int64_t posts[] = { t0 };
    policy_ctx c = ctx_of(&p, NULL, posts, 1);
    assert_int_equal(policy_check(&c, t0 + 19 * MIN_S + 59, NULL), POLICY_RULE_MIN_GAP);
    assert_int_equal(policy_check(&c, t0 + 20 * MIN_S, NULL), POLICY_RULE_OK);
    assert_int_equal(policy_check(&c, t0 - 19 * MIN_S, NULL), POLICY_RULE_MIN_GAP);
    assert_int_equal(policy_check(&c, t0 - 20 * MIN_S, NULL), POLICY_RULE_OK);
    assert_int_equal(policy_check(&c, t0, NULL), POLICY_RULE_MIN_GAP);
    p.min_gap_minutes = 0;
    assert_int_equal(policy_check(&c, t0, NULL), POLICY_RULE_OK);
}

static void policy_hourly_quota_is_a_rolling_window(void **state)
{
    (void)state;
    policy p;
    policy_defaults(&p);
    p.min_gap_minutes = 0;
    int64_t t0 = 1717236000;
    int64_t posts[] = { t0 + 10 * MIN_S, t0 }; /* any order */
    policy_ctx c = ctx_of(&p, NULL, posts, 2);
    assert_int_equal(policy_check(&c, t0 + 20 * MIN_S, NULL), POLICY_RULE_HOURLY_QUOTA);
    assert_int_equal(policy_check(&c, t0 + 59 * MIN_S + 59, NULL), POLICY_RULE_HOURLY_QUOTA);
    /* [t0+10m, t0+70m) holds t0+10m and t0+60m: 2, allowed. */
    assert_int_equal(policy_check(&c, t0 + HOUR_S, NULL), POLICY_RULE_OK);
    /* Before them: [t0-50m, t0+10m) holds t0-50m and t0 (the end is
     * exclusive); one second later the window reaches t0+10m too. */
    assert_int_equal(policy_check(&c, t0 - 50 * MIN_S, NULL), POLICY_RULE_OK);
    assert_int_equal(policy_check(&c, t0 - 50 * MIN_S + 1, NULL), POLICY_RULE_HOURLY_QUOTA);
    /* Between two posts an hour apart: each window with t holds 2. */
    int64_t apart[] = { t0, t0 + HOUR_S };
    policy_ctx c2 = ctx_of(&p, NULL, apart, 2);
    p.max_posts_per_hour = 1;
    assert_int_equal(policy_check(&c2, t0 + 30 * MIN_S, NULL), POLICY_RULE_HOURLY_QUOTA);
    p.max_posts_per_hour = 2;
    assert_int_equal(policy_check(&c2, t0 + 30 * MIN_S, NULL), POLICY_RULE_OK);
    p.max_posts_per_hour = 0;
    assert_int_equal(policy_check(&c2, t0 + 5 * HOUR_S, NULL), POLICY_RULE_HOURLY_QUOTA);
}

static void policy_daily_quota_counts_the_local_day(void **state)
{
    (void)state;
    const tz_zone *kol = zone("Asia/Kolkata");
    policy p;
    policy_defaults(&p);
    p.max_posts_per_day = 3;
    int64_t posts[] = {
        local_to_utc(kol, 2024, 6, 1, 1, 0),
        local_to_utc(kol, 2024, 6, 1, 10, 0),
        local_to_utc(kol, 2024, 6, 1, 20, 0),
    };
    policy_ctx c = ctx_of(&p, kol, posts, 3);
    assert_int_equal(policy_check(&c, local_to_utc(kol, 2024, 6, 1, 23, 50), NULL),
                     POLICY_RULE_DAILY_QUOTA);
    assert_int_equal(policy_check(&c, local_to_utc(kol, 2024, 6, 2, 0, 10), NULL), POLICY_RULE_OK);
    /* 2024-06-01 00:10 local is still 2024-05-31 in UTC: a UTC day would allow it. */
    int64_t early = local_to_utc(kol, 2024, 6, 1, 0, 10);
    policy_ctx cu = ctx_of(&p, NULL, posts, 3);
    assert_int_equal(policy_check(&c, early, NULL), POLICY_RULE_DAILY_QUOTA);
    assert_int_equal(policy_check(&cu, early, NULL), POLICY_RULE_OK);
}

static void policy_rule_order_and_mask(void **state)
{
    (void)state;
    policy p;
    policy_defaults(&p);
    p.n_quiet_hours = 1;
    p.quiet_hours[0] = (policy_quiet){ 9 * 60, 11 * 60, 0 };
    int64_t t0 = 1717236000; /* 10:00Z */
    int64_t posts[] = { t0 - 5 * MIN_S, t0 - 10 * MIN_S };
    policy_cooldown cd = { t0 - HOUR_S, t0 + HOUR_S, POLICY_SIGNAL_AUTH_WALL };
    policy_ctx c = ctx_of(&p, NULL, posts, 2);
    c.cooldown = &cd;
    unsigned mask = 0;
    assert_int_equal(policy_check(&c, t0, &mask), POLICY_RULE_COOLDOWN);
    assert_true(mask & (1u << POLICY_RULE_COOLDOWN));
    assert_true(mask & (1u << POLICY_RULE_QUIET_HOURS));
    assert_true(mask & (1u << POLICY_RULE_MIN_GAP));
    assert_true(mask & (1u << POLICY_RULE_HOURLY_QUOTA));
    assert_false(mask & (1u << POLICY_RULE_DAILY_QUOTA));
    c.cooldown = NULL;
    assert_int_equal(policy_check(&c, t0, &mask), POLICY_RULE_QUIET_HOURS);
    assert_int_equal(policy_check(&c, TZ_MAX_S + 1, &mask), POLICY_RULE_INVALID_TIME);
    assert_string_equal(policy_rule_name(POLICY_RULE_QUIET_HOURS), "quiet_hours");
    assert_string_equal(policy_rule_name(POLICY_RULE_MIN_GAP), "min_gap_minutes");
    assert_string_equal(policy_rule_name(POLICY_RULE_HOURLY_QUOTA), "max_posts_per_hour");
    assert_string_equal(policy_rule_name(POLICY_RULE_DAILY_QUOTA), "max_posts_per_day");
    assert_string_equal(policy_rule_name(POLICY_RULE_COOLDOWN), "cooldown");
}

static void policy_cooldowns_block_then_halve(void **state)
{
    (void)state;
    policy p;
    policy_defaults(&p);
    int64_t now = 1717236000; /* 2024-06-01T10:00Z */
    policy_cooldown cd, cd2, cd3;

    /* Rate limited with a reset time: until the reset. */
    assert_int_equal(
        policy_cooldown_from_signal(&p, NULL, POLICY_SIGNAL_RATE_LIMITED, now, now + 900, &cd),
        ST_OK);
    assert_int_equal(cd.end_s, now + 900);
    /* Without: the policy's minutes. A far reset is capped at 7 days. */
    assert_int_equal(
        policy_cooldown_from_signal(&p, NULL, POLICY_SIGNAL_RATE_LIMITED, now, 0, &cd2), ST_OK);
    assert_int_equal(cd2.end_s, now + 60 * MIN_S);
    assert_int_equal(policy_cooldown_from_signal(&p, NULL, POLICY_SIGNAL_RATE_LIMITED, now,
                                                 now + 30 * 86400, &cd2),
                     ST_OK);
    assert_int_equal(cd2.end_s, now + 7 * 86400);
    /* A shorter signal while one is in force never shortens it. */
    assert_int_equal(policy_cooldown_from_signal(&p, NULL, POLICY_SIGNAL_AUTH_WALL, now, 0, &cd2),
                     ST_OK);
    assert_int_equal(cd2.end_s, now + 720 * MIN_S);
    assert_int_equal(
        policy_cooldown_from_signal(&p, &cd2, POLICY_SIGNAL_RATE_LIMITED, now + 60, 0, &cd3),
        ST_OK);
    assert_int_equal(cd3.end_s, now + 720 * MIN_S);
    assert_int_equal(cd3.kind, POLICY_SIGNAL_AUTH_WALL);
    assert_int_equal(cd3.start_s, now);
    /* CLEARED ends it now. */
    assert_int_equal(
        policy_cooldown_from_signal(&p, &cd2, POLICY_SIGNAL_CLEARED, now + 120, 0, &cd3), ST_OK);
    assert_int_equal(cd3.end_s, now + 120);
    assert_int_equal(policy_cooldown_from_signal(&p, NULL, (policy_signal)9, now, 0, &cd3),
                     ST_INVALID);

    /* Blocked inside; hourly target halved in the trailing hour after the
     * end; daily target halved for the rest of that local day. */
    p.min_gap_minutes = 0;
    policy_ctx c = ctx_of(&p, NULL, NULL, 0);
    c.cooldown = &cd; /* [10:00, 10:15) */
    assert_int_equal(policy_check(&c, now + 600, NULL), POLICY_RULE_COOLDOWN);
    assert_int_equal(policy_check(&c, now + 900, NULL), POLICY_RULE_OK);
    assert_int_equal(policy_hourly_target(&c, now + 900), 1);
    assert_int_equal(policy_hourly_target(&c, now + 900 + HOUR_S - 1), 1);
    assert_int_equal(policy_hourly_target(&c, now + 900 + HOUR_S), 2);
    assert_int_equal(policy_daily_target(&c, now + 12 * HOUR_S), 12);
    assert_int_equal(policy_daily_target(&c, now + 14 * HOUR_S + 1), 24); /* next UTC day */
    int64_t one[] = { now + 900 };
    c.posts_s = one;
    c.n_posts = 1;
    assert_int_equal(policy_check(&c, now + 1200, NULL), POLICY_RULE_HOURLY_QUOTA);
    assert_int_equal(policy_check(&c, now + 900 + HOUR_S, NULL), POLICY_RULE_OK);
}

static void policy_quota_status_reports_where_it_stands(void **state)
{
    (void)state;
    policy p;
    policy_defaults(&p);
    int64_t now = 1717236000; /* 10:00Z */
    int64_t posts[] = { now - 50 * MIN_S, now - 10 * MIN_S, now - 5 * HOUR_S, now + 3 * HOUR_S,
                        now - 11 * HOUR_S /* previous UTC day */ };
    policy_ctx c = ctx_of(&p, NULL, posts, 5);
    policy_quota q;
    policy_quota_status(&c, now, &q);
    assert_int_equal(q.posts_last_hour, 2);
    assert_int_equal(q.posts_today, 3);
    assert_int_equal(q.scheduled_count, 1);
    assert_int_equal(q.last_publish_s, now - 10 * MIN_S);
    assert_int_equal(q.max_posts_per_hour, 2);
    assert_false(q.in_cooldown);
    /* Gap frees at now+10m; the hour window with -50m and -10m frees when
     * -50m leaves it: at now + 10m as well. */
    assert_int_equal(q.next_allowed_s, now + 10 * MIN_S);
    assert_int_equal(policy_check(&c, q.next_allowed_s, NULL), POLICY_RULE_OK);
    assert_int_not_equal(policy_check(&c, q.next_allowed_s - 1, NULL), POLICY_RULE_OK);

    /* Quiet until 12:00 and a cooldown until 11:00. */
    p.n_quiet_hours = 1;
    p.quiet_hours[0] = (policy_quiet){ 9 * 60, 12 * 60, 0 };
    policy_cooldown cd = { now - 60, now + HOUR_S, POLICY_SIGNAL_CHALLENGE };
    c.cooldown = &cd;
    policy_quota_status(&c, now, &q);
    assert_true(q.in_quiet_hours);
    assert_true(q.in_cooldown);
    assert_int_equal(q.max_posts_per_hour, 1);
    assert_int_equal(q.next_allowed_s, now + 2 * HOUR_S);
    /* Posting disabled: nothing within the search horizon. */
    p.max_posts_per_hour = 0;
    policy_quota_status(&c, now, &q);
    assert_int_equal(q.next_allowed_s, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(policy_defaults_are_documented_and_valid),
        cmocka_unit_test(policy_validation_names_each_field),
        cmocka_unit_test(policy_quiet_hours_wrap_days_and_dst),
        cmocka_unit_test(policy_min_gap_is_symmetric_and_inclusive),
        cmocka_unit_test(policy_hourly_quota_is_a_rolling_window),
        cmocka_unit_test(policy_daily_quota_counts_the_local_day),
        cmocka_unit_test(policy_rule_order_and_mask),
        cmocka_unit_test(policy_cooldowns_block_then_halve),
        cmocka_unit_test(policy_quota_status_reports_where_it_stands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
