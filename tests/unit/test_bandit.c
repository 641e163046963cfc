/* test_bandit.c - discounted sufficient statistics, the Normal-Gamma
 * posterior, pooled priors and Thompson sampling with propensities.
 * Statistical checks use fixed seeds and tolerances of 5 standard errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bandit.h"
#include "sampling.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define DAY_MS 86400000LL
#define T0 (1800000000000LL) /* an arbitrary "now" (2027) */

static bandit_config cfg_default(void)
{
    bandit_config c;
    bandit_config_default(&c);
    return c;
}

static void scopes_and_config(void **state)
{
    (void)state;
    bandit_scope s;
    for (int i = BANDIT_SCOPE_CONTENT_TYPE; i <= BANDIT_SCOPE_REPLY_TIER; i++) {
        assert_true(bandit_scope_parse(bandit_scope_name((bandit_scope)i), &s));
        assert_int_equal(s, i);
    }
    assert_string_equal(bandit_scope_name(BANDIT_SCOPE_HOUR_OF_WEEK), "hour_of_week");
    assert_null(bandit_scope_name((bandit_scope)0));
    assert_null(bandit_scope_name((bandit_scope)6));
    assert_false(bandit_scope_parse("colour", &s));

    bandit_config c = cfg_default();
    char err[160];
    assert_int_equal(bandit_config_validate(&c, err, sizeof(err)), ST_OK);
    c.prior_alpha = 1.0;
    assert_int_equal(bandit_config_validate(&c, err, sizeof(err)), ST_INVALID);
    assert_non_null(strstr(err, "prior_alpha"));
    c = cfg_default();
    c.interval_level = 1.0;
    assert_int_equal(bandit_config_validate(&c, err, sizeof(err)), ST_INVALID);
    c = cfg_default();
    c.kappa_min = 20.0;
    assert_int_equal(bandit_config_validate(&c, err, sizeof(err)), ST_INVALID);
}

static void decay_halves_per_half_life(void **state)
{
    (void)state;
    bandit_config c = cfg_default();
    assert_true(fabs(bandit_decay_factor(90 * DAY_MS, &c) - 0.5) < 1e-12); /* the default */
    c.half_life_days = 30.0;
    assert_true(fabs(bandit_decay_factor(30 * DAY_MS, &c) - 0.5) < 1e-12);
    assert_true(fabs(bandit_decay_factor(90 * DAY_MS, &c) - 0.125) < 1e-12);
    assert_true(bandit_decay_factor(-5, &c) == 1.0);
    c.half_life_days = 0.0;
    assert_true(bandit_decay_factor(1000 * DAY_MS, &c) == 1.0);

    c = cfg_default();
    c.half_life_days = 30.0;
    bandit_stats s = { 0 };
    bandit_stats_add(&s, 2.0, T0, &c);
    bandit_stats_decay_to(&s, T0 + 30 * DAY_MS, &c);
    assert_true(fabs(s.n - 0.5) < 1e-12);
    assert_true(fabs(s.sum - 1.0) < 1e-12);
    assert_true(fabs(s.sum_sq - 2.0) < 1e-12);
    assert_int_equal(s.count, 1);
    /* moving backwards is a no-op */
    bandit_stats_decay_to(&s, T0, &c);
    assert_true(fabs(s.n - 0.5) < 1e-12);
}

/* Incremental updates, in any arrival order, equal the discounted sums
 * computed from scratch. */
static void incremental_equals_batch(void **state)
{
    (void)state;
    bandit_config c = cfg_default();
    c.half_life_days = 30.0;
    enum { K = 200 };
    double r[K];
    int64_t at[K];
    sampling_rng rng;
    sampling_rng_seed(&rng, 7);
    for (int i = 0; i < K; i++) {
        r[i] = sampling_normal(&rng);
        at[i] = T0 + (int64_t)(sampling_uniform(&rng) * 200.0 * DAY_MS);
    }
    int64_t now = T0 + 200 * DAY_MS;
    double n = 0, sum = 0, sq = 0;
    for (int i = 0; i < K; i++) {
        double w = exp2(-(double)(now - at[i]) / (30.0 * DAY_MS));
        n += w;
        sum += w * r[i];
        sq += w * r[i] * r[i];
    }
    /* arrival order = index order (times are random, so often late) */
    bandit_stats s = { 0 };
    for (int i = 0; i < K; i++)
        bandit_stats_add(&s, r[i], at[i], &c);
    bandit_stats_decay_to(&s, now, &c);
    assert_true(fabs(s.n - n) < 1e-9 * n);
    assert_true(fabs(s.sum - sum) < 1e-9 * (fabs(sum) + n));
    assert_true(fabs(s.sum_sq - sq) < 1e-9 * sq);
    assert_int_equal(s.count, K);
    assert_true(bandit_stats_valid(&s));

    bandit_stats bad = s;
    bad.n = -1.0;
    assert_false(bandit_stats_valid(&bad));
    bad = s;
    bad.sum = NAN;
    assert_false(bandit_stats_valid(&bad));
    bad = s;
    bad.sum = sqrt(bad.n * bad.sum_sq) * 1.01; /* violates Cauchy-Schwarz */
    assert_false(bandit_stats_valid(&bad));
}

static void posterior_by_hand(void **state)
{
    (void)state;
    bandit_config c = cfg_default();
    c.half_life_days = 0.0;
    bandit_prior p = { .mu0 = 0.0, .kappa0 = 1.0, .alpha0 = 2.0, .beta0 = 1.0 };
    bandit_stats s = { 0 };
    bandit_stats_add(&s, 1.0, T0, &c);
    bandit_stats_add(&s, 2.0, T0, &c);
    bandit_stats_add(&s, 3.0, T0, &c);
    bandit_posterior post;
    bandit_posterior_compute(&s, &p, T0, &c, &post);
    /* kappa_n 4, mu_n 6 / 4, alpha_n 3.5, beta_n 1 + 2 / 2 + 1 * 3 * 4 / 8 */
    assert_true(fabs(post.kappa_n - 4.0) < 1e-12);
    assert_true(fabs(post.mean - 1.5) < 1e-12);
    assert_true(fabs(post.alpha_n - 3.5) < 1e-12);
    assert_true(fabs(post.beta_n - 3.5) < 1e-12);
    double half = 1.894578605090 * 0.5; /* t(7) 95 % quantile x scale */
    assert_true(fabs(post.upper - (1.5 + half)) < 1e-9);
    assert_true(fabs(post.lower - (1.5 - half)) < 1e-9);
    assert_int_equal(post.n, 3);
    assert_true(fabs(post.effective_n - 3.0) < 1e-12);

    /* no data: the prior */
    bandit_stats empty = { 0 };
    bandit_posterior_compute(&empty, &p, T0, &c, &post);
    assert_true(post.mean == 0.0);
    assert_true(fabs(post.upper + post.lower) < 1e-12);
}

/* With the truth drawn from the prior, the 90 % interval covers it 90 % of
 * the time (exact Bayesian coverage). */
static void interval_coverage(void **state)
{
    (void)state;
    bandit_config c = cfg_default();
    c.half_life_days = 0.0;
    bandit_prior p;
    bandit_prior_default(&c, &p);
    sampling_rng rng;
    sampling_rng_seed(&rng, 11);
    enum { REPS = 4000 };
    int covered = 0;
    for (int i = 0; i < REPS; i++) {
        double tau = sampling_gamma(&rng, p.alpha0) / p.beta0;
        double mu = p.mu0 + sampling_normal(&rng) / sqrt(p.kappa0 * tau);
        bandit_stats s = { 0 };
        int n = 1 + i % 8;
        for (int k = 0; k < n; k++)
            bandit_stats_add(&s, mu + sampling_normal(&rng) / sqrt(tau), T0, &c);
        bandit_posterior post;
        bandit_posterior_compute(&s, &p, T0, &c, &post);
        covered += post.lower <= mu && mu <= post.upper;
    }
    double rate = (double)covered / REPS;
    printf("90%% interval coverage: %.4f over %d draws from the prior\n", rate, REPS);
    assert_true(fabs(rate - 0.9) < 5.0 * sqrt(0.09 / REPS));
}

static void add_outcomes(bandit_stats *s, double mean, int n, sampling_rng *rng,
                         const bandit_config *c)
{
    for (int i = 0; i < n; i++)
        bandit_stats_add(s, mean + sampling_normal(rng), T0 - (int64_t)(i % 10) * DAY_MS, c);
}

static void pooled_priors(void **state)
{
    (void)state;
    bandit_config c = cfg_default();
    sampling_rng rng;
    sampling_rng_seed(&rng, 5);
    bandit_arm arms[6];
    const char *keys[6] = { "a", "b", "c", "d", "e", "new" };
    memset(arms, 0, sizeof(arms));
    for (int i = 0; i < 6; i++) {
        arms[i].key = keys[i];
        arms[i].enabled = true;
        if (i < 5)
            add_outcomes(&arms[i].stats, 2.0 + 0.5 * (i - 2), 40, &rng, &c);
    }
    bandit_posterior post[6];
    bandit_scope_posteriors(arms, 6, T0, &c, post);
    /* the new arm starts where its siblings are, not at 0 */
    assert_true(fabs(post[5].mean - 2.0) < 0.4);
    assert_true(fabs(post[5].prior.mu0 - 2.0) < 0.4);
    /* and is the most uncertain */
    for (int i = 0; i < 5; i++)
        assert_true(post[5].upper - post[5].lower > post[i].upper - post[i].lower);
    /* leave-one-out: arm e's prior mean comes from a..d only (means ~1..2.5),
     * so it is below e's own data (~3) */
    assert_true(post[4].prior.mu0 < post[4].mean);

    /* siblings that agree make a stronger prior than siblings that differ */
    bandit_arm close[6];
    memcpy(close, arms, sizeof(close));
    for (int i = 0; i < 5; i++) {
        memset(&close[i].stats, 0, sizeof(bandit_stats));
        add_outcomes(&close[i].stats, 2.0, 40, &rng, &c);
    }
    bandit_posterior cpost[6];
    bandit_scope_posteriors(close, 6, T0, &c, cpost);
    assert_true(cpost[5].prior.kappa0 > post[5].prior.kappa0);
    assert_true(cpost[5].prior.kappa0 <= c.kappa_max + 1e-12);

    /* with fewer than three siblings with data, the default spread */
    bandit_posterior two[3];
    bandit_arm few[3] = { arms[0], arms[1], arms[5] };
    bandit_scope_posteriors(few, 3, T0, &c, two);
    assert_true(fabs(two[2].prior.kappa0 - two[2].prior.beta0 / c.default_tau2) < 1e-9);
}

/* A dim of arms keyed k0..k{n-1} with given means and counts. */
typedef struct fixture {
    bandit_arm arms[3][8];
    char keys[3][8][16];
    bandit_dim dims[3];
} fixture;

static void fixture_init(fixture *f, const int *n_arms, sampling_rng *rng, const bandit_config *c)
{
    memset(f, 0, sizeof(*f));
    const bandit_scope scopes[3] = { BANDIT_SCOPE_CONTENT_TYPE, BANDIT_SCOPE_VOICE_STYLE,
                                     BANDIT_SCOPE_TOPIC };
    for (int d = 0; d < 3; d++) {
        for (int i = 0; i < n_arms[d]; i++) {
            snprintf(f->keys[d][i], sizeof(f->keys[d][i]), "k%d", i);
            f->arms[d][i].key = f->keys[d][i];
            f->arms[d][i].enabled = true;
            add_outcomes(&f->arms[d][i].stats, 0.3 * i - 0.5, 3 + 4 * i, rng, c);
        }
        f->dims[d] = (bandit_dim){ scopes[d], f->arms[d], (size_t)n_arms[d], NULL };
    }
}

static void recommend_contract(void **state)
{
    (void)state;
    bandit_config c = cfg_default();
    sampling_rng rng;
    sampling_rng_seed(&rng, 21);
    fixture f;
    const int n[3] = { 4, 3, 6 };
    fixture_init(&f, n, &rng, &c);
    f.arms[1][2].enabled = false;
    static const char *const recent[] = { "k5", "k1", "nope" };
    assert_int_equal(bandit_arms_exclude(f.arms[2], 6, recent, 3, "used in the last 24 h"), 2);
    bandit_candidate cands[13];
    bandit_choice a, b;

    assert_int_equal(bandit_recommend(f.dims, 3, T0, 42, &c, cands, 13, &a), ST_OK);
    assert_int_equal(a.n_candidates, 13);
    assert_true(a.seed == 42);
    bandit_candidate again[13];
    assert_int_equal(bandit_recommend(f.dims, 3, T0, 42, &c, again, 13, &b), ST_OK);
    assert_memory_equal(a.chosen, b.chosen, sizeof(a.chosen));
    assert_true(a.propensity == b.propensity);
    for (int i = 0; i < 13; i++)
        assert_true(cands[i].sampled_value == again[i].sampled_value);

    double prod = 1.0;
    size_t k = 0;
    for (int d = 0; d < 3; d++) {
        double psum = 0.0;
        for (int i = 0; i < n[d]; i++, k++) {
            const bandit_candidate *cd = &cands[k];
            assert_int_equal(cd->dim, d);
            assert_int_equal(cd->arm, i);
            psum += cd->propensity;
            if (!cd->eligible) {
                assert_non_null(cd->excluded_reason);
                assert_true(cd->propensity == 0.0);
                assert_false(cd->chosen);
            } else {
                assert_null(cd->excluded_reason);
            }
            if (cd->chosen) {
                assert_int_equal(a.chosen[d], i);
                assert_true(cd->propensity > 0.0);
                prod *= cd->propensity;
                /* the chosen arm has the largest draw of its scope */
                for (int j = 0; j < n[d]; j++) {
                    const bandit_candidate *o = &cands[k - (size_t)i + (size_t)j];
                    if (o->eligible)
                        assert_true(o->sampled_value <= cd->sampled_value);
                }
            }
        }
        assert_true(fabs(psum - 1.0) < 1e-9);
    }
    assert_true(fabs(a.propensity - prod) < 1e-12);
    assert_string_equal(cands[4 + 2].excluded_reason, "disabled");
    assert_string_equal(cands[7 + 5].excluded_reason, "used in the last 24 h");

    /* excluded and disabled arms are never chosen; seeds vary the choice */
    int seen[6] = { 0 };
    for (uint64_t seed = 0; seed < 300; seed++) {
        assert_int_equal(bandit_recommend(f.dims, 3, T0, seed, &c, cands, 13, &a), ST_OK);
        assert_true(a.chosen[1] != 2);
        assert_true(a.chosen[2] != 5 && a.chosen[2] != 1);
        seen[a.chosen[2]]++;
    }
    assert_true((seen[0] > 0) + (seen[2] > 0) + (seen[3] > 0) + (seen[4] > 0) >= 2);

    strbuf sb = { 0 };
    bandit_explain(f.dims, 3, cands, &a, &sb);
    assert_non_null(strstr(sb.data, "content_type k"));
    assert_non_null(strstr(sb.data, "(2 excluded)"));
    strbuf_fini(&sb);
}

static void recommend_fixed_and_errors(void **state)
{
    (void)state;
    bandit_config c = cfg_default();
    sampling_rng rng;
    sampling_rng_seed(&rng, 22);
    fixture f;
    const int n[3] = { 4, 3, 6 };
    fixture_init(&f, n, &rng, &c);
    bandit_candidate cands[13];
    bandit_choice ch;

    f.dims[1].fixed_key = "k2";
    f.arms[1][2].enabled = false; /* a request may still fix a disabled key */
    assert_int_equal(bandit_recommend(f.dims, 3, T0, 1, &c, cands, 13, &ch), ST_OK);
    assert_int_equal(ch.chosen[1], 2);
    assert_int_equal(ch.n_candidates, 10); /* 4 + 6: none for the fixed dim */
    for (size_t i = 0; i < ch.n_candidates; i++)
        assert_true(cands[i].dim != 1);
    double prod = cands[ch.chosen[0]].propensity * cands[4 + ch.chosen[2]].propensity;
    assert_true(fabs(ch.propensity - prod) < 1e-12);
    strbuf sb = { 0 };
    bandit_explain(f.dims, 3, cands, &ch, &sb);
    assert_non_null(strstr(sb.data, "voice_style k2 fixed by request"));
    strbuf_fini(&sb);

    f.dims[1].fixed_key = "k9";
    assert_int_equal(bandit_recommend(f.dims, 3, T0, 1, &c, cands, 13, &ch), ST_INVALID);
    assert_non_null(strstr(ch.errmsg, "unknown key k9"));
    f.dims[1].fixed_key = NULL;
    f.arms[1][2].enabled = true;

    assert_int_equal(bandit_recommend(f.dims, 3, T0, 1, &c, cands, 12, &ch), ST_INVALID);
    assert_int_equal(bandit_recommend(f.dims, 0, T0, 1, &c, cands, 13, &ch), ST_INVALID);
    for (int i = 0; i < 6; i++)
        f.arms[2][i].exclude_reason = "used recently";
    assert_int_equal(bandit_recommend(f.dims, 3, T0, 1, &c, cands, 13, &ch),
                     ST_FAILED_PRECONDITION);
    assert_non_null(strstr(ch.errmsg, "topic: no eligible arm"));
    f.arms[2][0].exclude_reason = NULL;
    f.arms[2][0].stats.n = -1.0;
    assert_int_equal(bandit_recommend(f.dims, 3, T0, 1, &c, cands, 13, &ch), ST_INVALID);
    assert_non_null(strstr(ch.errmsg, "invalid statistics"));
}

/* The real draw of a lone arm is a draw from its Student-t posterior of the
 * mean: Kolmogorov-Smirnov over 20,000 seeds. */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void thompson_draw_is_posterior(void **state)
{
    (void)state;
    bandit_config c = cfg_default();
    c.propensity_draws = 0;
    sampling_rng rng;
    sampling_rng_seed(&rng, 31);
    bandit_arm arm = { .key = "only", .enabled = true };
    add_outcomes(&arm.stats, 0.7, 6, &rng, &c);
    bandit_dim dim = { BANDIT_SCOPE_REPLY_TIER, &arm, 1, NULL };
    enum { DRAWS = 20000 };
    static double x[DRAWS];
    bandit_candidate cand;
    bandit_choice ch;
    for (int i = 0; i < DRAWS; i++) {
        assert_int_equal(bandit_recommend(&dim, 1, T0, (uint64_t)i * 7919u, &c, &cand, 1, &ch),
                         ST_OK);
        x[i] = cand.sampled_value;
        assert_true(ch.propensity == 1.0);
    }
    const bandit_posterior *p = &cand.post;
    double scale = sqrt(p->beta_n / (p->alpha_n * p->kappa_n));
    qsort(x, DRAWS, sizeof(double), cmp_double);
    double d = 0.0;
    for (int i = 0; i < DRAWS; i++) {
        double f = sampling_t_cdf((x[i] - p->mu_n) / scale, 2.0 * p->alpha_n);
        d = fmax(d, fmax(f - (double)i / DRAWS, (double)(i + 1) / DRAWS - f));
    }
    printf("Thompson draw vs posterior t: KS D = %.4f (0.1%% critical %.4f)\n", d,
           1.95 / sqrt(DRAWS));
    assert_true(d < 1.95 / sqrt(DRAWS));
}

/* Propensities agree with an independent high-precision estimate of each
 * arm's chance to have the largest posterior draw, and with how often
 * Thompson sampling actually picks it. */
static void propensity_matches_choice_frequency(void **state)
{
    (void)state;
    bandit_config c = cfg_default();
    sampling_rng rng;
    sampling_rng_seed(&rng, 41);
    bandit_arm arms[3] = { { .key = "a", .enabled = true },
                           { .key = "b", .enabled = true },
                           { .key = "c", .enabled = true } };
    add_outcomes(&arms[0].stats, 0.0, 8, &rng, &c);
    add_outcomes(&arms[1].stats, 0.3, 5, &rng, &c);
    add_outcomes(&arms[2].stats, 0.1, 3, &rng, &c);
    bandit_dim dim = { BANDIT_SCOPE_CONTENT_TYPE, arms, 3, NULL };
    bandit_posterior post[3];
    bandit_scope_posteriors(arms, 3, T0, &c, post);

    /* reference: 300,000 rounds of independent exact t draws */
    enum { REF = 300000, CALLS = 3000 };
    long win[3] = { 0 };
    for (int r = 0; r < REF; r++) {
        int best = 0;
        double bv = -INFINITY;
        for (int i = 0; i < 3; i++) {
            double scale = sqrt(post[i].beta_n / (post[i].alpha_n * post[i].kappa_n));
            double v = post[i].mu_n + scale * sampling_student_t(&rng, 2.0 * post[i].alpha_n);
            if (v > bv) {
                bv = v;
                best = i;
            }
        }
        win[best]++;
    }
    double ref[3], mean_p[3] = { 0 }, freq[3] = { 0 };
    for (int i = 0; i < 3; i++)
        ref[i] = (double)win[i] / REF;
    bandit_candidate cands[3];
    bandit_choice ch;
    for (int k = 0; k < CALLS; k++) {
        assert_int_equal(bandit_recommend(&dim, 1, T0, 1000u + (uint64_t)k, &c, cands, 3, &ch),
                         ST_OK);
        freq[ch.chosen[0]] += 1.0 / CALLS;
        for (int i = 0; i < 3; i++)
            mean_p[i] += cands[i].propensity / CALLS;
    }
    for (int i = 0; i < 3; i++) {
        printf("arm %s: reference %.4f, mean propensity %.4f, chosen %.4f\n", arms[i].key, ref[i],
               mean_p[i], freq[i]);
        double se_freq = sqrt(ref[i] * (1.0 - ref[i]) / CALLS);
        assert_true(fabs(freq[i] - ref[i]) < 5.0 * se_freq + 0.002);
        /* the mean of 3,000 estimates from 201 rounds each (block
         * correlation at most x4 variance) */
        double se_mean = sqrt(4.0 * ref[i] * (1.0 - ref[i]) / (201.0 * CALLS));
        assert_true(fabs(mean_p[i] - ref[i]) < 5.0 * se_mean + 0.002);
    }
}

/* With clear evidence, Thompson sampling exploits. */
static void exploits_clear_winner(void **state)
{
    (void)state;
    bandit_config c = cfg_default();
    sampling_rng rng;
    sampling_rng_seed(&rng, 51);
    bandit_arm arms[4] = { { .key = "w", .enabled = true },
                           { .key = "x", .enabled = true },
                           { .key = "y", .enabled = true },
                           { .key = "z", .enabled = true } };
    add_outcomes(&arms[0].stats, 1.5, 60, &rng, &c);
    for (int i = 1; i < 4; i++)
        add_outcomes(&arms[i].stats, 0.0, 60, &rng, &c);
    bandit_dim dim = { BANDIT_SCOPE_CONTENT_TYPE, arms, 4, NULL };
    bandit_candidate cands[4];
    bandit_choice ch;
    int w = 0;
    for (uint64_t s = 0; s < 200; s++) {
        assert_int_equal(bandit_recommend(&dim, 1, T0, s, &c, cands, 4, &ch), ST_OK);
        w += ch.chosen[0] == 0;
    }
    assert_true(w >= 195);
    assert_true(cands[0].propensity > 0.95);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scopes_and_config),
        cmocka_unit_test(decay_halves_per_half_life),
        cmocka_unit_test(incremental_equals_batch),
        cmocka_unit_test(posterior_by_hand),
        cmocka_unit_test(interval_coverage),
        cmocka_unit_test(pooled_priors),
        cmocka_unit_test(recommend_contract),
        cmocka_unit_test(recommend_fixed_and_errors),
        cmocka_unit_test(thompson_draw_is_posterior),
        cmocka_unit_test(propensity_matches_choice_frequency),
        cmocka_unit_test(exploits_clear_winner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
