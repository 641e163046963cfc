/* test_trends.c - EWMA velocity, acceleration, trend score; a rising topic
 * is surfaced before its volume peaks. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sampling.h"
#include "trends.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define HOUR_MS 3600000LL
#define T0 1800000000000LL

static void ewma_by_hand(void **state)
{
    (void)state;
    trends_config c;
    trends_config_default(&c);
    trends_state s = { 0 };
    trends_update(&s, T0, 30, 60, &c); /* 30 per hour */
    assert_true(s.velocity == 30.0);
    assert_true(s.acceleration == 0.0);
    /* one half-life later at 90/h: velocity halfway, 60 */
    trends_update(&s, T0 + 6 * HOUR_MS, 90, 60, &c);
    assert_true(fabs(s.velocity - 60.0) < 1e-12);
    /* slope 30 / 6 h = 5 per hour per hour, half of it enters */
    assert_true(fabs(s.acceleration - 2.5) < 1e-12);
    /* a 15-minute period counts as a rate per hour */
    trends_state q = { 0 };
    trends_update(&q, T0, 10, 15, &c);
    assert_true(q.velocity == 40.0);

    /* constant rate: velocity converges, acceleration fades */
    trends_state k = { 0 };
    for (int h = 0; h < 200; h++)
        trends_update(&k, T0 + h * HOUR_MS, 50, 60, &c);
    trends_result r;
    trends_evaluate(&k, T0 + 199 * HOUR_MS, &c, &r);
    assert_true(fabs(r.velocity_per_hour - 50.0) < 1e-6);
    assert_true(fabs(r.acceleration_per_hour) < 1e-6);
    assert_false(r.rising);
    assert_int_equal(r.mentions_24h, -1);
    assert_int_equal(k.observations, 200);
}

static void same_period_merges(void **state)
{
    (void)state;
    trends_config c;
    trends_config_default(&c);
    trends_state one = { 0 }, two = { 0 };
    for (int h = 0; h < 10; h++) {
        trends_update(&one, T0 + h * HOUR_MS, 30 + 4 * h, 60, &c);
        trends_update(&two, T0 + h * HOUR_MS, 10 + h, 60, &c);
        trends_update(&two, T0 + h * HOUR_MS, 20 + 3 * h, 60, &c); /* second source */
    }
    assert_true(fabs(one.velocity - two.velocity) < 1e-9);
    assert_true(fabs(one.acceleration - two.acceleration) < 1e-9);
}

static void stale_topics_fade(void **state)
{
    (void)state;
    trends_config c;
    trends_config_default(&c);
    trends_state s = { 0 };
    for (int h = 0; h < 24; h++)
        trends_update(&s, T0 + h * HOUR_MS, 10 + 5 * h, 60, &c);
    trends_result fresh, stale;
    trends_evaluate(&s, T0 + 23 * HOUR_MS, &c, &fresh);
    assert_true(fresh.rising);
    trends_evaluate(&s, T0 + 47 * HOUR_MS, &c, &stale);
    assert_false(stale.rising);
    assert_true(stale.velocity_per_hour < fresh.velocity_per_hour / 2.0);
    assert_true(stale.score < 0.0);
}

static void compute_validates_and_counts(void **state)
{
    (void)state;
    trends_config c;
    trends_config_default(&c);
    trends_obs obs[30];
    for (int i = 0; i < 30; i++)
        obs[i] = (trends_obs){ T0 + i * HOUR_MS, i, 60 };
    trends_result r;
    char err[128];
    assert_int_equal(trends_compute(obs, 30, T0 + 29 * HOUR_MS, &c, &r, err, sizeof(err)), ST_OK);
    /* periods ending in (now - 24 h, now]: hours 6..29 */
    int64_t want = 0;
    for (int i = 6; i < 30; i++)
        want += i;
    assert_int_equal(r.mentions_24h, want);
    assert_true(r.first_ms == T0 && r.last_ms == T0 + 29 * HOUR_MS);
    obs[7].at_ms = obs[3].at_ms;
    assert_int_equal(trends_compute(obs, 30, T0 + 29 * HOUR_MS, &c, &r, err, sizeof(err)),
                     ST_INVALID);
    assert_non_null(strstr(err, "out of time order"));
    obs[7].at_ms = T0 + 7 * HOUR_MS;
    obs[2].count = -1;
    assert_int_equal(trends_compute(obs, 30, T0 + 29 * HOUR_MS, &c, &r, err, sizeof(err)),
                     ST_INVALID);
    obs[2].count = 2;
    obs[4].period_minutes = 0;
    assert_int_equal(trends_compute(obs, 30, T0 + 29 * HOUR_MS, &c, &r, err, sizeof(err)),
                     ST_INVALID);
    c.half_life_hours = 0.0;
    obs[4].period_minutes = 60;
    assert_int_equal(trends_compute(obs, 30, T0 + 29 * HOUR_MS, &c, &r, err, sizeof(err)),
                     ST_INVALID);
}

/* Four topics, hourly Poisson counts (fixed seed):
 *   steady   100 per hour throughout
 *   surge    2 per hour plus a bump of 120 per hour peaking at hour 96
 *            (standard deviation 16 h)
 *   fading   had its bump at hour 10, declining since
 *   niche    3 per hour
 * At hour 72, 24 h before the surge peaks, the surge must rank first by
 * trend score although the steady topic has more volume; it must stay
 * first from well before its peak. */
enum { TOPICS = 4, HOURS = 140, PEAK = 96 };

static double rate_of(int topic, int h)
{
    switch (topic) {
    case 0:
        return 100.0;
    case 1:
        return 2.0 + 120.0 * exp(-0.5 * ((h - PEAK) / 16.0) * ((h - PEAK) / 16.0));
    case 2:
        return 5.0 + 80.0 * exp(-0.5 * ((h - 10) / 12.0) * ((h - 10) / 12.0));
    default:
        return 3.0;
    }
}

/* Poisson draw by inversion for small means, normal approximation with
 * continuity for large ones (bounded loop either way). */
static int64_t poisson(sampling_rng *r, double mean)
{
    if (mean > 50.0) {
        double x = mean + sqrt(mean) * sampling_normal(r) + 0.5;
        return x < 0 ? 0 : (int64_t)x;
    }
    double l = exp(-mean), p = 1.0;
    int64_t k = 0;
    while (k < 1000) {
        p *= sampling_uniform(r);
        if (p <= l)
            break;
        k++;
    }
    return k;
}

static void rising_topic_surfaces_before_peak(void **state)
{
    (void)state;
    trends_config c;
    trends_config_default(&c);
    sampling_rng rng;
    sampling_rng_seed(&rng, 2024);
    trends_state s[TOPICS];
    memset(s, 0, sizeof(s));
    int first_top = -1; /* first hour from which the surge stays on top until 72 */
    double peak_velocity = 0.0;
    int peak_velocity_hour = 0;
    for (int h = 0; h < HOURS; h++) {
        int64_t now = T0 + h * HOUR_MS;
        trends_result r[TOPICS];
        for (int t = 0; t < TOPICS; t++) {
            trends_update(&s[t], now, poisson(&rng, rate_of(t, h)), 60, &c);
            trends_evaluate(&s[t], now, &c, &r[t]);
        }
        int top = 0;
        for (int t = 1; t < TOPICS; t++) {
            if (r[t].score > r[top].score)
                top = t;
        }
        if (h <= 72) {
            if (top == 1 && first_top < 0)
                first_top = h;
            else if (top != 1)
                first_top = -1;
        }
        if (r[1].velocity_per_hour > peak_velocity) {
            peak_velocity = r[1].velocity_per_hour;
            peak_velocity_hour = h;
        }
        if (h == 72) {
            printf("hour 72: steady v %.1f score %.2f | surge v %.1f a %.2f score %.2f rising %d"
                   " | fading score %.2f | niche score %.2f\n",
                   r[0].velocity_per_hour, r[0].score, r[1].velocity_per_hour,
                   r[1].acceleration_per_hour, r[1].score, r[1].rising, r[2].score, r[3].score);
            assert_int_equal(top, 1);
            assert_true(r[1].rising);
            assert_false(r[0].rising);
            assert_false(r[2].rising);
            /* ranked by volume the surge would still be below the steady topic */
            assert_true(r[1].velocity_per_hour < r[0].velocity_per_hour);
        }
        if (h == PEAK + 24) {
            /* past the peak the surge is falling */
            assert_false(r[1].rising);
            assert_true(r[1].score < 0.0);
        }
    }
    printf("surge on top continuously from hour %d; its rate peaks at %d, its velocity at %d\n",
           first_top, PEAK, peak_velocity_hour);
    assert_true(first_top >= 0 && first_top <= PEAK - 36);
    assert_true(peak_velocity_hour >= PEAK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ewma_by_hand),
        cmocka_unit_test(same_period_merges),
        cmocka_unit_test(stale_topics_fade),
        cmocka_unit_test(compute_validates_and_counts),
        cmocka_unit_test(rising_topic_surfaces_before_peak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
