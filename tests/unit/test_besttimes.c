/* test_besttimes.c - the hour-of-week heatmap: clock arithmetic, the
 * audience prior, pooling toward hour of day, determinism. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "besttimes.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
/* 2024-01-01T00:00:00Z, a Monday */
#define MON0 1704067200000LL

static bandit_stats stats[BESTTIMES_CELLS];

static void setup_cfg(bandit_config *bc, besttimes_config *cfg)
{
    bandit_config_default(bc);
    besttimes_config_default(cfg);
}

static void hour_of_week_clock(void **state)
{
    (void)state;
    assert_int_equal(besttimes_hour_of_week(MON0, 0), 0);
    assert_int_equal(besttimes_hour_of_week(MON0 + 30 * 60000LL, 0), 0);
    assert_int_equal(besttimes_hour_of_week(MON0 - 1, 0), 167); /* Sunday 23:59 */
    assert_int_equal(besttimes_hour_of_week(MON0 + 2 * DAY_MS + 13 * HOUR_MS, 0), 61);
    /* Paris in winter (+60): 2023-12-31T23:30Z is Monday 00:30 local */
    assert_int_equal(besttimes_hour_of_week(MON0 - 30 * 60000LL, 60), 0);
    /* New York (-300): Monday 03:00Z is Sunday 22:00 local */
    assert_int_equal(besttimes_hour_of_week(MON0 + 3 * HOUR_MS, -300), 166);
    /* before 1970: 1969-12-31T23:00Z was a Wednesday */
    assert_int_equal(besttimes_hour_of_week(-HOUR_MS, 0), 2 * 24 + 23);
    /* a week later, the same hour */
    for (int h = 0; h < 168; h += 7)
        assert_int_equal(besttimes_hour_of_week(MON0 + h * HOUR_MS + 7 * DAY_MS, 0), h);
}

static void activity_curve(void **state)
{
    (void)state;
    for (int d = 0; d < 7; d++) {
        for (int m = 0; m < 1440; m += 15) {
            double a = besttimes_activity(d, m);
            assert_true(a > 0.0 && a <= 1.0);
        }
    }
    /* awake in the evening, asleep at 3, a later morning at weekends */
    assert_true(besttimes_activity(2, 20 * 60) > 3 * besttimes_activity(2, 3 * 60));
    assert_true(besttimes_activity(5, 8 * 60) < besttimes_activity(2, 8 * 60));
    /* continuous across midnight */
    assert_true(fabs(besttimes_activity(0, 1439) - besttimes_activity(1, 0)) < 0.01);
}

static int argmax_audience(const besttimes_map *m)
{
    int best = 0;
    for (int c = 1; c < BESTTIMES_CELLS; c++) {
        if (m->cells[c].audience_weight > m->cells[best].audience_weight)
            best = c;
    }
    return best;
}

static void no_history_follows_audience(void **state)
{
    (void)state;
    bandit_config bc;
    besttimes_config cfg;
    setup_cfg(&bc, &cfg);
    memset(stats, 0, sizeof(stats));
    besttimes_map m, tokyo;
    char err[128];

    assert_int_equal(besttimes_compute(stats, MON0, &bc, 0, NULL, 0, &cfg, &m, err, sizeof(err)),
                     ST_OK);
    /* best hour is in the evening, worst at night */
    int best = m.ranked[0] % 24, worst = m.ranked[167] % 24;
    assert_true(best >= 18 && best <= 22);
    assert_true(worst >= 1 && worst <= 6);
    for (int c = 0; c < BESTTIMES_CELLS; c++) {
        assert_true(m.cells[c].history_weight == 0.0);
        assert_true(m.cells[c].lower < m.cells[c].expected_reward);
        assert_true(m.cells[c].upper > m.cells[c].expected_reward);
    }
    /* the same audience in Tokyo (+540) while the profile counts hours in
     * UTC: the audience's evening is the profile's late morning */
    const besttimes_zone jp = { 540, 1.0 };
    assert_int_equal(besttimes_compute(stats, MON0, &bc, 0, &jp, 1, &cfg, &tokyo, err, sizeof(err)),
                     ST_OK);
    int shift = ((argmax_audience(&m) - argmax_audience(&tokyo)) % 24 + 24) % 24;
    assert_int_equal(shift, 9);
    /* a split audience: weights average the zones */
    const besttimes_zone split[2] = { { 0, 1.0 }, { 540, 3.0 } };
    besttimes_map sm;
    assert_int_equal(besttimes_compute(stats, MON0, &bc, 0, split, 2, &cfg, &sm, err, sizeof(err)),
                     ST_OK);
    for (int c = 0; c < BESTTIMES_CELLS; c++) {
        double want = 0.25 * m.cells[c].audience_weight + 0.75 * tokyo.cells[c].audience_weight;
        assert_true(fabs(sm.cells[c].audience_weight - want) < 1e-12);
    }
}

static void history_overrides_prior(void **state)
{
    (void)state;
    bandit_config bc;
    besttimes_config cfg;
    setup_cfg(&bc, &cfg);
    memset(stats, 0, sizeof(stats));
    sampling_rng rng;
    sampling_rng_seed(&rng, 3);
    /* 40 posts at Tuesday 07:00 (hour 31) did very well; 40 at the
     * audience's evening peak (Tuesday 20:00, hour 44) did poorly */
    for (int i = 0; i < 40; i++) {
        bandit_stats_add(&stats[31], 1.5 + 0.5 * sampling_normal(&rng), MON0 - i * DAY_MS, &bc);
        bandit_stats_add(&stats[44], -0.5 + 0.5 * sampling_normal(&rng), MON0 - i * DAY_MS, &bc);
    }
    besttimes_map m;
    char err[128];
    assert_int_equal(besttimes_compute(stats, MON0, &bc, 0, NULL, 0, &cfg, &m, err, sizeof(err)),
                     ST_OK);
    assert_int_equal(m.ranked[0], 31);
    assert_true(m.cells[44].expected_reward < 0.0);
    assert_true(m.cells[31].history_weight > 0.8);
    assert_true(m.cells[31].upper - m.cells[31].lower < m.cells[32].upper - m.cells[32].lower);
    /* pooling: Wednesday 07:00 (55) has no posts of its own but shares the
     * hour of day with the good cell, so it beats Wednesday 20:00 (68) */
    assert_true(m.cells[55].effective_n == 0.0);
    assert_true(m.cells[55].expected_reward > m.cells[68].expected_reward);
    assert_true(m.cells[55].expected_reward < m.cells[31].expected_reward);
    /* the arrays mirror the cells */
    double e[168], lo[168], hi[168];
    besttimes_arrays(&m, e, lo, hi);
    besttimes_arrays(&m, NULL, NULL, hi);
    for (int c = 0; c < 168; c++) {
        assert_true(e[c] == m.cells[c].expected_reward);
        assert_true(lo[c] == m.cells[c].lower && hi[c] == m.cells[c].upper);
    }
    /* deterministic */
    besttimes_map again;
    assert_int_equal(
        besttimes_compute(stats, MON0, &bc, 0, NULL, 0, &cfg, &again, err, sizeof(err)), ST_OK);
    assert_memory_equal(&m, &again, sizeof(m));
    /* ranked is a permutation, best first */
    int seen[168] = { 0 };
    for (int i = 0; i < 168; i++) {
        seen[m.ranked[i]]++;
        if (i > 0)
            assert_true(m.cells[m.ranked[i - 1]].expected_reward >=
                        m.cells[m.ranked[i]].expected_reward);
    }
    for (int c = 0; c < 168; c++)
        assert_int_equal(seen[c], 1);

    /* a year later the evidence has faded (with a 30-day half-life) */
    bc.half_life_days = 30.0;
    besttimes_map late;
    assert_int_equal(besttimes_compute(stats, MON0 + 365 * DAY_MS, &bc, 0, NULL, 0, &cfg, &late,
                                       err, sizeof(err)),
                     ST_OK);
    assert_true(late.cells[31].effective_n < 0.01);
    assert_true(late.ranked[0] % 24 >= 18);
}

static void draws_center_on_expected(void **state)
{
    (void)state;
    bandit_config bc;
    besttimes_config cfg;
    setup_cfg(&bc, &cfg);
    memset(stats, 0, sizeof(stats));
    besttimes_map m;
    char err[128];
    assert_int_equal(besttimes_compute(stats, MON0, &bc, 0, NULL, 0, &cfg, &m, err, sizeof(err)),
                     ST_OK);
    sampling_rng rng;
    sampling_rng_seed(&rng, 8);
    enum { D = 20000 };
    double sum = 0.0;
    for (int i = 0; i < D; i++)
        sum += besttimes_draw(&m, 44, &rng);
    double se = m.cells[44].sd / sqrt(D);
    assert_true(fabs(sum / D - m.cells[44].expected_reward) < 5.0 * se);
}

static void rejects_bad_input(void **state)
{
    (void)state;
    bandit_config bc;
    besttimes_config cfg;
    setup_cfg(&bc, &cfg);
    memset(stats, 0, sizeof(stats));
    besttimes_map m;
    char err[128];
    besttimes_zone z = { 900, 1.0 };
    assert_int_equal(besttimes_compute(stats, MON0, &bc, 0, &z, 1, &cfg, &m, err, sizeof(err)),
                     ST_INVALID);
    z = (besttimes_zone){ 60, 0.0 };
    assert_int_equal(besttimes_compute(stats, MON0, &bc, 0, &z, 1, &cfg, &m, err, sizeof(err)),
                     ST_INVALID);
    assert_non_null(strstr(err, "weight"));
    assert_int_equal(besttimes_compute(stats, MON0, &bc, -800, NULL, 0, &cfg, &m, err, sizeof(err)),
                     ST_INVALID);
    stats[3].sum_sq = -1.0;
    assert_int_equal(besttimes_compute(stats, MON0, &bc, 0, NULL, 0, &cfg, &m, err, sizeof(err)),
                     ST_INVALID);
    stats[3].sum_sq = 0.0;
    cfg.interval_level = 1.5;
    assert_int_equal(besttimes_compute(stats, MON0, &bc, 0, NULL, 0, &cfg, &m, err, sizeof(err)),
                     ST_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hour_of_week_clock),          cmocka_unit_test(activity_curve),
        cmocka_unit_test(no_history_follows_audience), cmocka_unit_test(history_overrides_prior),
        cmocka_unit_test(draws_center_on_expected),    cmocka_unit_test(rejects_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
