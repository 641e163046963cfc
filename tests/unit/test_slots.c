/* test_slots.c - GetNextSlots: determinism, the hour-of-day prior (also
 * across audience time zones), concentration in the hidden best hours of a
 * synthetic history, "next best" with its propensity, slot ids, and a
 * property test over 1,200 random policies and histories checked by an
 * independent re-implementation of every rule. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "policy.h"
#include "slots.h"
#include "tz.h"
#include "util.h"

#define HOUR_S 3600
#define DAY_S 86400

static const tz_zone *zone(const char *name)
{
    const tz_zone *z = NULL;
    assert_int_equal(tz_get(name, &z, NULL, 0), ST_OK);
    return z;
}

static uint64_t mix_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int rnd(uint64_t *s, int lo, int hi) /* inclusive */
{
    return lo + (int)(mix_next(s) % (uint64_t)(hi - lo + 1));
}

static double unif(uint64_t *s)
{
    return (double)(mix_next(s) >> 11) / 9007199254740992.0;
}

static double gauss(uint64_t *s)
{
    double u1 = unif(s), u2 = unif(s);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static const int64_t T0 = 1717200000; /* 2024-06-01T00:00Z, a Saturday */

static void slots_prior_is_deterministic_and_sane(void **state)
{
    (void)state;
    policy p;
    policy_defaults(&p);
    policy_ctx ctx = { .policy = &p, .zone = zone("Europe/Berlin") };
    slots_request req = { .ctx = &ctx, .after_s = T0 + 7 * 60, .count = 5, .seed = 11 };
    slots_slot a[5], b[5], c[5];
    size_t na, nb, nc;
    assert_int_equal(slots_next(&req, a, &na), ST_OK);
    assert_int_equal(slots_next(&req, b, &nb), ST_OK);
    assert_int_equal(na, 5);
    assert_int_equal(nb, 5);
    assert_memory_equal(a, b, sizeof a);
    bool differs = false;
    for (uint64_t seed = 12; seed < 40 && !differs; seed++) {
        req.seed = seed;
        assert_int_equal(slots_next(&req, c, &nc), ST_OK);
        differs = nc != na || memcmp(a, c, sizeof a) != 0;
    }
    assert_true(differs); /* the seed matters */
    for (size_t i = 0; i < na; i++) {
        assert_true(a[i].start_s >= req.after_s);
        assert_int_equal(a[i].start_s % SLOTS_GRANULARITY_S, 0);
        if (i > 0)
            assert_true(a[i].start_s > a[i - 1].start_s);
        assert_true(a[i].start_s < req.after_s + DAY_S); /* 5 fit in the first day */
        assert_int_equal(a[i].basis, SLOTS_BASIS_PRIOR);
        assert_true(a[i].history_weight == 0.0);
        assert_true(a[i].lower <= a[i].expected_reward && a[i].expected_reward <= a[i].upper);
        assert_int_equal(a[i].hour_of_week, tz_hour_of_week(ctx.zone, a[i].start_s));
        assert_non_null(strstr(a[i].reason, "prior"));
        assert_int_equal(policy_check(&ctx, a[i].start_s, NULL), POLICY_RULE_OK);
    }
    /* Over many seeds the prior's good hours (>= +0.15) win most slots. */
    int good = 0, total = 0;
    for (uint64_t seed = 0; seed < 60; seed++) {
        req.seed = seed;
        req.after_s = T0 + (int64_t)seed * 5400;
        assert_int_equal(slots_next(&req, c, &nc), ST_OK);
        for (size_t i = 0; i < nc; i++, total++) {
            tz_local lt;
            assert_int_equal(tz_localtime(ctx.zone, c[i].start_s, &lt), ST_OK);
            good += slots_prior_hour(lt.hour) >= 0.15;
        }
    }
    assert_int_equal(total, 300);
    if (good < total * 8 / 10)
        fail_msg("only %d of %d slots in the prior's good hours", good, total);
}

static void slots_prior_follows_the_audience_zones(void **state)
{
    (void)state;
    policy p;
    policy_defaults(&p);
    policy_ctx ctx = { .policy = &p, .zone = zone("UTC") };
    slots_audience aud[2] = { { zone("Asia/Tokyo"), 0.9 }, { zone("Europe/London"), 0.1 } };
    slots_request req = { .ctx = &ctx, .audience = aud, .n_audience = 2, .count = 4 };
    int tokyo_evening = 0, total = 0;
    for (uint64_t seed = 0; seed < 40; seed++) {
        slots_slot s[4];
        size_t n;
        req.seed = seed;
        req.after_s = T0 + (int64_t)seed * 7200;
        assert_int_equal(slots_next(&req, s, &n), ST_OK);
        for (size_t i = 0; i < n; i++, total++) {
            tz_local lt;
            assert_int_equal(tz_localtime(aud[0].zone, s[i].start_s, &lt), ST_OK);
            tokyo_evening += lt.hour >= 17 && lt.hour <= 21;
            assert_non_null(strstr(s[i].reason, "audience"));
        }
    }
    /* 5 of 24 hours by chance; the prior puts most slots there. */
    if (tokyo_evening < total * 6 / 10)
        fail_msg("%d of %d slots in Tokyo's evening", tokyo_evening, total);
}

/* A synthetic account: 26 weeks of posts at random hours; rewards (z-scores)
 * are noise (sd 0.8) plus +2.0 in the hidden best hours. The model is the conjugate
 * Normal posterior per cell with the prior N(prior_hour, 0.5^2) and unit
 * noise: what the learner's besttimes does, simplified. */
static const int hidden[] = { 8, 13, 20 }; /* local hours, every day */

static bool is_hidden(int how)
{
    for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++)
        if (how % 24 == hidden[i])
            return true;
    return false;
}

static void synth_model(uint64_t seed, slots_model *m)
{
    double n[168] = { 0 }, sum[168] = { 0 };
    uint64_t s = seed;
    for (int k = 0; k < 26 * 7 * 8; k++) { /* 8 posts a day */
        int how = rnd(&s, 0, 167);
        n[how] += 1;
        sum[how] += gauss(&s) * 0.8 + (is_hidden(how) ? 2.0 : 0.0);
    }
    m->level = 0.9;
    double z = 1.6448536269514722;
    for (int h = 0; h < 168; h++) {
        double prior = slots_prior_hour(h % 24), prior_prec = 1.0 / 0.25;
        double prec = prior_prec + n[h];
        double mean = (prior * prior_prec + sum[h]) / prec;
        double sd = sqrt(1.0 / prec);
        m->mean[h] = mean;
        m->lower[h] = mean - z * sd;
        m->upper[h] = mean + z * sd;
        m->history_weight[h] = n[h] / prec;
        m->posts[h] = n[h];
    }
}

/* Share of slots in the hidden hours over 50 seeds, after local midnight
 * (aligned) or at arbitrary quarter hours. */
static double hidden_share(const slots_model *m, policy *p, const tz_zone *z, bool aligned)
{
    int in_hidden = 0, total = 0;
    policy_ctx ctx = { .policy = p, .zone = z };
    slots_request req = { .ctx = &ctx, .model = m, .count = 6 };
    for (uint64_t seed = 0; seed < 50; seed++) {
        slots_slot s[6];
        size_t n;
        req.seed = seed;
        /* 2024-06-01 00:00 in New York is 04:00Z; then whole days, or not */
        req.after_s =
            T0 + 4 * HOUR_S + (int64_t)seed * DAY_S + (aligned ? 0 : (int64_t)seed * 11 * 900);
        assert_int_equal(slots_next(&req, s, &n), ST_OK);
        assert_int_equal(n, 6);
        for (size_t i = 0; i < n; i++, total++) {
            in_hidden += is_hidden(s[i].hour_of_week);
            assert_true(s[i].basis != SLOTS_BASIS_PRIOR);
            assert_true(s[i].expected_reward == m->mean[s[i].hour_of_week]);
        }
    }
    return (double)in_hidden / total;
}

static void slots_concentrate_in_the_hidden_best_hours(void **state)
{
    (void)state;
    slots_model m;
    synth_model(99, &m);
    policy p;
    policy_defaults(&p);
    const tz_zone *ny = zone("America/New_York");
    /* By chance 3 of 24 hours: 12.5%. From local midnight, the first day
     * (24/day) or the first two (3/day) hold 6 hidden-hour slots: nearly
     * all are taken, exploration takes the rest. From an arbitrary time the
     * first 24 h may hold fewer hidden hours and the partial local day's
     * quota is filled with what is left there (the nearest horizon wins). */
    p.max_posts_per_day = 24;
    double a24 = hidden_share(&m, &p, ny, true), u24 = hidden_share(&m, &p, ny, false);
    p.max_posts_per_day = 3;
    double a3 = hidden_share(&m, &p, ny, true), u3 = hidden_share(&m, &p, ny, false);
    print_message("hidden-hour share: 24/day %.2f aligned, %.2f any time; 3/day %.2f, %.2f\n", a24,
                  u24, a3, u3);
    assert_true(a24 >= 0.9);
    assert_true(a3 >= 0.9);
    assert_true(u24 >= 0.75);
    assert_true(u3 >= 0.6);
    /* Without the model (prior only) the same requests rarely hit them. */
    p.max_posts_per_day = 24;
    policy_ctx ctx = { .policy = &p, .zone = ny };
    slots_request req = { .ctx = &ctx, .count = 6, .seed = 1, .after_s = T0 + 4 * HOUR_S };
    slots_slot s[6];
    size_t n, hits = 0;
    assert_int_equal(slots_next(&req, s, &n), ST_OK);
    for (size_t i = 0; i < n; i++)
        hits += is_hidden(s[i].hour_of_week);
    assert_true(hits <= 4);
}

static void slots_next_best_and_propensity(void **state)
{
    (void)state;
    slots_model m;
    synth_model(5, &m);
    policy p;
    policy_defaults(&p);
    policy_ctx ctx = { .policy = &p, .zone = zone("Europe/Berlin") };
    slots_request req = { .ctx = &ctx, .model = &m, .after_s = T0, .count = 7, .seed = 3 };
    slots_slot best, first[7];
    double prop = 0;
    size_t n;
    assert_int_equal(slots_next_best(&req, &best, &prop), ST_OK);
    assert_true(prop > 0.0 && prop <= 1.0);
    /* With one slot asked, next_best is what slots_next gives for count 1. */
    req.count = 1;
    assert_int_equal(slots_next(&req, first, &n), ST_OK);
    assert_int_equal(n, 1);
    assert_int_equal(first[0].start_s, best.start_s);
    /* A near-certain model: propensity close to 1; a flat uncertain one: low. */
    slots_model sharp;
    memset(&sharp, 0, sizeof sharp);
    sharp.level = 0.9;
    for (int h = 0; h < 168; h++) {
        sharp.mean[h] = h == 24 + 9 ? 3.0 : 0.0; /* Tue 09h */
        sharp.lower[h] = sharp.mean[h] - 0.01;
        sharp.upper[h] = sharp.mean[h] + 0.01;
        sharp.history_weight[h] = 1.0;
        sharp.posts[h] = 20;
    }
    ctx.zone = zone("UTC");
    req.model = &sharp;
    req.after_s = T0 + 2 * DAY_S + 12 * HOUR_S; /* Monday 12:00Z: Tue 09h is in the first day */
    assert_int_equal(slots_next_best(&req, &best, &prop), ST_OK);
    assert_int_equal(best.hour_of_week, 24 + 9);
    assert_true(prop > 0.2); /* the 4 quarter hours share the cell: ties broken at random */
    assert_int_equal(best.basis, SLOTS_BASIS_HISTORY);
    assert_non_null(strstr(best.reason, "1st best hour"));
    for (int h = 0; h < 168; h++) {
        sharp.mean[h] = 0.0;
        sharp.lower[h] = -2.0;
        sharp.upper[h] = 2.0;
    }
    assert_int_equal(slots_next_best(&req, &best, &prop), ST_OK);
    assert_true(prop < 0.2);
    /* Nothing allowed: NOT_FOUND. */
    p.max_posts_per_hour = 0;
    assert_int_equal(slots_next_best(&req, &best, &prop), ST_NOT_FOUND);
    req.count = 3;
    assert_int_equal(slots_next(&req, first, &n), ST_OK);
    assert_int_equal(n, 0);
}

static void slots_reject_bad_requests_and_ids(void **state)
{
    (void)state;
    policy p;
    policy_defaults(&p);
    policy_ctx ctx = { .policy = &p };
    slots_slot s[SLOTS_MAX];
    size_t n;
    slots_request req = { .ctx = &ctx, .after_s = T0, .count = 0 };
    assert_int_equal(slots_next(&req, s, &n), ST_INVALID);
    req.count = SLOTS_MAX + 1;
    assert_int_equal(slots_next(&req, s, &n), ST_INVALID);
    req.count = 2;
    req.after_s = -1;
    assert_int_equal(slots_next(&req, s, &n), ST_INVALID);
    req.after_s = T0;
    slots_model m;
    synth_model(1, &m);
    m.lower[7] = m.upper[7] + 1;
    req.model = &m;
    assert_int_equal(slots_next(&req, s, &n), ST_INVALID);
    synth_model(1, &m);
    m.mean[3] = NAN;
    assert_int_equal(slots_next(&req, s, &n), ST_INVALID);
    req.model = NULL;
    slots_audience aud = { NULL, 1.0 };
    req.audience = &aud;
    req.n_audience = 1;
    assert_int_equal(slots_next(&req, s, &n), ST_INVALID);
    aud.zone = tz_utc();
    aud.share = 0.0;
    assert_int_equal(slots_next(&req, s, &n), ST_INVALID);
    aud.share = 1.0;
    assert_int_equal(slots_next(&req, s, &n), ST_OK);
    req.ctx = NULL;
    assert_int_equal(slots_next(&req, s, &n), ST_INVALID);

    char id[32];
    int64_t t;
    slots_id_format(1717236000, id, sizeof id);
    assert_string_equal(id, "slot-1717236000");
    assert_true(slots_id_parse(id, &t));
    assert_int_equal(t, 1717236000);
    static const char *const bad[] = {
        "",       "slot-", "slot-x", "slot-01", "slot-12a", "slot--5", "slot-9999999999999",
        "Slot-1", NULL
    };
    for (size_t i = 0; bad[i]; i++)
        assert_false(slots_id_parse(bad[i], &t));
    assert_false(slots_id_parse(NULL, &t));
}

/* ---------------------------------------------------------------- property test */

/* The rules, re-implemented from the documentation in policy.h, with no
 * code shared with policy.c. */
typedef struct oracle {
    const policy *p;
    const tz_zone *z;
    const policy_cooldown *cd; /* may be NULL */
} oracle;

static int64_t o_day(const oracle *o, int64_t t)
{
    tz_local lt;
    assert_int_equal(tz_localtime(o->z, t, &lt), ST_OK);
    return tz_days_from_civil(lt.year, lt.month, lt.day);
}

static int o_hour_target(const oracle *o, int64_t t)
{
    int v = o->p->max_posts_per_hour;
    if (o->cd && o->cd->end_s > o->cd->start_s && o->cd->start_s <= t && o->cd->end_s > t - HOUR_S)
        v = (int)floor(v * o->p->cooldown_target_factor + 1e-9);
    return v;
}

static int o_day_target(const oracle *o, int64_t t)
{
    int v = o->p->max_posts_per_day;
    if (o->cd && o->cd->end_s > o->cd->start_s) {
        int64_t d = o_day(o, t);
        if (o_day(o, o->cd->start_s) <= d && d <= o_day(o, o->cd->end_s - 1))
            v = (int)floor(v * o->p->cooldown_target_factor + 1e-9);
    }
    return v;
}

static bool o_quiet(const oracle *o, int64_t t)
{
    tz_local lt;
    assert_int_equal(tz_localtime(o->z, t, &lt), ST_OK);
    int minute = lt.hour * 60 + lt.minute;
    for (size_t i = 0; i < o->p->n_quiet_hours; i++) {
        const policy_quiet *q = &o->p->quiet_hours[i];
        /* Walk back to the local day the window would have started on. */
        for (int back = 0; back <= 1; back++) {
            int day = (lt.iso_weekday - 1 - back + 7) % 7 + 1;
            if (q->days_mask && !(q->days_mask & (1u << (day - 1))))
                continue;
            int len = q->end_minute_of_day - q->start_minute_of_day;
            if (len <= 0)
                len += 1440;
            int since = minute + back * 1440 - q->start_minute_of_day;
            if (since >= 0 && since < len)
                return true;
        }
    }
    return false;
}

static void check_slots_against_oracle(const oracle *o, const int64_t *hist, size_t nh,
                                       const slots_slot *s, size_t ns, int64_t after, size_t iter)
{
    size_t nall = nh + ns;
    int64_t *all = calloc(nall ? nall : 1, sizeof *all);
    assert_non_null(all);
    memcpy(all, hist, nh * sizeof *hist);
    for (size_t i = 0; i < ns; i++)
        all[nh + i] = s[i].start_s;
    for (size_t i = 0; i < ns; i++) {
        int64_t t = s[i].start_s;
        if (t < after || (i > 0 && t <= s[i - 1].start_s))
            fail_msg("iter %zu: slot %zu out of order or before after_s", iter, i);
        if (o->cd && t >= o->cd->start_s && t < o->cd->end_s)
            fail_msg("iter %zu: slot in cooldown", iter);
        if (o_quiet(o, t))
            fail_msg("iter %zu: slot %lld in quiet hours", iter, (long long)t);
        for (size_t j = 0; j < nall; j++) {
            if (j == nh + i)
                continue;
            if (llabs(all[j] - t) < (int64_t)o->p->min_gap_minutes * 60)
                fail_msg("iter %zu: gap %lld s < %d min", iter, (long long)llabs(all[j] - t),
                         o->p->min_gap_minutes);
        }
        /* Every window [w, w + 1h) containing t, w any instant in (t - 1h, t]. */
        for (size_t j = 0; j < nall; j++) {
            int64_t w = all[j];
            if (w > t || w <= t - HOUR_S)
                continue;
            int count = 0, target = INT32_MAX;
            for (size_t k = 0; k < nall; k++) {
                if (all[k] >= w && all[k] < w + HOUR_S) {
                    count++;
                    int tk = o_hour_target(o, all[k]);
                    target = tk < target ? tk : target;
                }
            }
            if (count > target)
                fail_msg("iter %zu: %d posts in the hour from %lld (target %d)", iter, count,
                         (long long)w, target);
        }
        int64_t day = o_day(o, t);
        int count = 0;
        for (size_t k = 0; k < nall; k++)
            count += o_day(o, all[k]) == day;
        if (count > o_day_target(o, t))
            fail_msg("iter %zu: %d posts on local day %lld (target %d)", iter, count,
                     (long long)day, o_day_target(o, t));
    }
    free(all);
}

static void slots_never_break_a_policy_rule(void **state)
{
    (void)state;
    static const char *const zones[] = {
        "UTC",          "America/New_York", "Europe/Berlin",    "Australia/Sydney",
        "Asia/Kolkata", "Pacific/Chatham",  "America/Sao_Paulo"
    };
    uint64_t s = 2024;
    size_t iterations = 1200, slots_total = 0, full = 0, with_cooldown = 0, with_quiet = 0;
    for (size_t iter = 0; iter < iterations; iter++) {
        policy p;
        policy_defaults(&p);
        p.max_posts_per_hour = rnd(&s, 0, 6);
        p.max_posts_per_day = p.max_posts_per_hour + rnd(&s, 0, 20);
        p.min_gap_minutes = rnd(&s, 0, 4) == 0 ? 0 : rnd(&s, 1, 180);
        p.cooldown_target_factor = rnd(&s, 1, 10) / 10.0;
        p.n_quiet_hours = (size_t)rnd(&s, 0, 3);
        for (size_t q = 0; q < p.n_quiet_hours; q++) {
            p.quiet_hours[q].start_minute_of_day = rnd(&s, 0, 1439);
            p.quiet_hours[q].end_minute_of_day =
                rnd(&s, 0, 5) == 0 ? p.quiet_hours[q].start_minute_of_day : rnd(&s, 0, 1439);
            p.quiet_hours[q].days_mask = rnd(&s, 0, 1) ? 0 : (unsigned)rnd(&s, 1, 127);
        }
        with_quiet += p.n_quiet_hours > 0;
        assert_int_equal(policy_validate(&p, NULL, 0), 0);
        const tz_zone *z = zone(zones[rnd(&s, 0, 6)]);
        /* after: any time in 2024-2060 (past 2037 too), on any second */
        int64_t after = T0 + (int64_t)(mix_next(&s) % (uint64_t)(36LL * 365 * DAY_S));
        int64_t hist[64];
        size_t nh = (size_t)rnd(&s, 0, 40);
        for (size_t i = 0; i < nh; i++)
            hist[i] = after + rnd(&s, -2 * DAY_S, 4 * DAY_S);
        policy_cooldown cd = { 0 }, *cdp = NULL;
        if (rnd(&s, 0, 2) == 0) {
            cd.start_s = after + rnd(&s, -DAY_S, DAY_S);
            cd.end_s = cd.start_s + rnd(&s, 60, 2 * DAY_S);
            cd.kind = POLICY_SIGNAL_RATE_LIMITED;
            cdp = &cd;
            with_cooldown++;
        }
        slots_model m;
        slots_model *mp = NULL;
        if (rnd(&s, 0, 1)) {
            synth_model(mix_next(&s), &m);
            mp = &m;
        }
        policy_ctx ctx = { &p, z, cdp, hist, nh };
        size_t count = (size_t)rnd(&s, 1, 12);
        uint64_t seed = mix_next(&s);
        int horizon = rnd(&s, 0, 1) ? 0 : 3;
        slots_request req = { .ctx = &ctx,
                              .model = mp,
                              .after_s = after,
                              .count = count,
                              .seed = seed,
                              .max_horizon_days = horizon };
        slots_slot out[12];
        size_t n = 99;
        assert_int_equal(slots_next(&req, out, &n), ST_OK);
        assert_true(n <= count);
        full += n == count;
        slots_total += n;
        oracle o = { &p, z, cdp };
        check_slots_against_oracle(&o, hist, nh, out, n, after, iter);
    }
    print_message("property: %zu policies (%zu with quiet hours, %zu with a cooldown), "
                  "%zu slots checked, %zu requests filled\n",
                  iterations, with_quiet, with_cooldown, slots_total, full);
    /* The generator must leave room: most requests are filled in full. */
    assert_true(full > iterations / 2);
    assert_true(slots_total > iterations * 3);
}

/* A permissive policy always yields the full count (the selection does not
 * give up early). */
static void slots_fill_the_count_when_allowed(void **state)
{
    (void)state;
    policy p;
    policy_defaults(&p);
    p.max_posts_per_hour = 4;
    p.max_posts_per_day = 1000;
    p.min_gap_minutes = 15;
    policy_ctx ctx = { .policy = &p, .zone = zone("Australia/Sydney") };
    slots_request req = { .ctx = &ctx, .after_s = T0 + 123, .count = SLOTS_MAX, .seed = 8 };
    slots_slot s[SLOTS_MAX];
    size_t n;
    assert_int_equal(slots_next(&req, s, &n), ST_OK);
    assert_int_equal(n, SLOTS_MAX);
    /* One a day for 20 slots: the horizon grows to 20 days. */
    p.max_posts_per_day = 1;
    p.max_posts_per_hour = 1;
    req.count = 20;
    req.max_horizon_days = SLOTS_MAX_HORIZON_DAYS;
    assert_int_equal(slots_next(&req, s, &n), ST_OK);
    assert_int_equal(n, 20);
    assert_true(s[19].start_s - s[0].start_s > 18 * DAY_S);
    /* ... but not beyond the default 14 days. */
    req.max_horizon_days = 0;
    assert_int_equal(slots_next(&req, s, &n), ST_OK);
    assert_true(n >= 14 && n <= 15);
}

/* Cost of one call, printed for the report (no bound: the machine is
 * shared). A request with 40 other posts and a model, as a handler makes. */
static void slots_cost(void **state)
{
    (void)state;
    slots_model m;
    synth_model(3, &m);
    policy p;
    policy_defaults(&p);
    int64_t hist[40];
    for (int i = 0; i < 40; i++)
        hist[i] = T0 - 2 * DAY_S + i * 3 * HOUR_S;
    policy_ctx ctx = { &p, zone("Europe/Berlin"), NULL, hist, 40 };
    slots_request req = { .ctx = &ctx, .model = &m, .after_s = T0, .count = 5 };
    slots_slot s[SLOTS_MAX];
    size_t n;
    int64_t t0 = now_mono_us();
    for (uint64_t i = 0; i < 200; i++) {
        req.seed = i;
        assert_int_equal(slots_next(&req, s, &n), ST_OK);
        assert_int_equal(n, 5);
    }
    int64_t t1 = now_mono_us();
    double prop;
    for (uint64_t i = 0; i < 20; i++) {
        req.seed = i;
        assert_int_equal(slots_next_best(&req, s, &prop), ST_OK);
    }
    int64_t t2 = now_mono_us();
    req.count = SLOTS_MAX;
    for (uint64_t i = 0; i < 20; i++) {
        req.seed = i;
        assert_int_equal(slots_next(&req, s, &n), ST_OK);
    }
    int64_t t3 = now_mono_us();
    print_message("cost: slots_next(5) %.0f us, slots_next_best %.0f us, slots_next(50) %.0f us\n",
                  (double)(t1 - t0) / 200, (double)(t2 - t1) / 20, (double)(t3 - t2) / 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slots_prior_is_deterministic_and_sane),
        cmocka_unit_test(slots_prior_follows_the_audience_zones),
        cmocka_unit_test(slots_concentrate_in_the_hidden_best_hours),
        cmocka_unit_test(slots_next_best_and_propensity),
        cmocka_unit_test(slots_reject_bad_requests_and_ids),
        cmocka_unit_test(slots_never_break_a_policy_rule),
        cmocka_unit_test(slots_fill_the_count_when_allowed),
        cmocka_unit_test(slots_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
