/* test_reward.c - reward v1/v2: rates, unknown metrics, robust baselines,
 * learnability, re-scoring a history. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "reward.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define DAY_MS 86400000LL

/* Counts with every v1 metric known. */
static reward_counts counts(int64_t imp, int64_t likes, int64_t replies, int64_t reposts,
                            int64_t quotes)
{
    reward_counts c = { 0 };
    reward_counts_set(&c, REWARD_IMPRESSIONS, imp);
    reward_counts_set(&c, REWARD_LIKES, likes);
    reward_counts_set(&c, REWARD_REPLIES, replies);
    reward_counts_set(&c, REWARD_REPOSTS, reposts);
    reward_counts_set(&c, REWARD_QUOTES, quotes);
    return c;
}

static const double hist5[] = { 0.01, 0.02, 0.03, 0.04, 0.05 };

static void versions_and_counts(void **state)
{
    (void)state;
    assert_string_equal(reward_version_default()->name, "v1");
    assert_ptr_equal(reward_version_find("v1"), reward_version_default());
    assert_non_null(reward_version_find("v2"));
    assert_null(reward_version_find("v9"));
    assert_null(reward_version_find(NULL));
    assert_int_equal(reward_version_count(), 2);
    assert_null(reward_version_at(2));
    assert_string_equal(reward_metric_name(REWARD_FOLLOWS), "follows");
    assert_null(reward_metric_name(REWARD_METRIC_COUNT));

    reward_counts c = { 0 };
    int64_t v = -1;
    assert_false(reward_counts_get(&c, REWARD_LIKES, &v));
    reward_counts_set(&c, REWARD_LIKES, 0);
    assert_true(reward_counts_get(&c, REWARD_LIKES, &v));
    assert_int_equal(v, 0);

    reward_options o;
    reward_options_default(&o);
    assert_int_equal(o.min_impressions, 100);
    assert_int_equal(o.baseline_days, 30);
    char err[128];
    assert_int_equal(reward_options_validate(&o, err, sizeof(err)), ST_OK);
    o.min_impressions = 0;
    assert_int_equal(reward_options_validate(&o, err, sizeof(err)), ST_INVALID);
    assert_non_null(strstr(err, "min_impressions"));
}

static void baseline_median_mad(void **state)
{
    (void)state;
    reward_baseline b;
    reward_baseline_compute(hist5, 5, 0.1, 0.001, &b);
    assert_true(fabs(b.median - 0.03) < 1e-15);
    assert_true(fabs(b.mad - 0.01) < 1e-15);
    assert_true(fabs(b.scale - 1.4826 * 0.01) < 1e-15);
    /* even count, unsorted input left untouched */
    const double even[] = { 4.0, 1.0, 3.0, 2.0 };
    reward_baseline_compute(even, 4, 0.0, 0.0, &b);
    assert_true(fabs(b.median - 2.5) < 1e-15);
    assert_true(fabs(b.mad - 1.0) < 1e-15);
    assert_true(even[0] == 4.0 && even[1] == 1.0);
    /* identical values: the floors keep the scale positive */
    const double same[] = { 0.02, 0.02, 0.02 };
    reward_baseline_compute(same, 3, 0.1, 0.001, &b);
    assert_true(b.mad == 0.0);
    assert_true(fabs(b.scale - 0.002) < 1e-15);
    reward_baseline_compute(same, 3, 0.01, 0.001, &b);
    assert_true(fabs(b.scale - 0.001) < 1e-15);
    /* an outlier moves neither median nor MAD much (robust) */
    const double outlier[] = { 0.01, 0.02, 0.03, 0.04, 0.05, 9.0 };
    reward_baseline_compute(outlier, 6, 0.0, 0.0, &b);
    assert_true(b.median < 0.04 && b.mad < 0.02);
    /* large arrays use the heap path */
    static double big[1000];
    for (int i = 0; i < 1000; i++)
        big[i] = (double)(i % 100);
    reward_baseline_compute(big, 1000, 0.0, 0.0, &b);
    assert_true(fabs(b.median - 49.5) < 1e-12);
    assert_true(fabs(b.mad - 25.0) < 1e-12);
}

static void score_v1_by_hand(void **state)
{
    (void)state;
    const reward_version *v1 = reward_version_default();
    reward_options o;
    reward_options_default(&o);
    reward_outcome out;

    /* 1000 impressions, 40 + 10 + 8 + 2 = 60 engagements: rate 0.06 */
    reward_counts c = counts(1000, 40, 10, 8, 2);
    reward_score(v1, &o, &c, hist5, 5, NULL, 0, &out);
    assert_true(out.learnable);
    assert_string_equal(out.reason, "");
    assert_true(fabs(out.engagement_rate - 0.06) < 1e-15);
    double z = (0.06 - 0.03) / (1.4826 * 0.01);
    assert_true(fabs(out.z_engagement - z) < 1e-12);
    /* follows unknown: the follows term is dropped, not counted as 0 */
    assert_false(out.has_follows_per_1k);
    assert_false(out.has_z_follows);
    assert_true(fabs(out.reward - z) < 1e-12);
    assert_true(out.has_baseline && fabs(out.baseline - 0.03) < 1e-15);
    assert_int_equal(out.baseline_n, 5);

    /* with follows: 3 per 1000 impressions against a baseline of 1 +- ... */
    reward_counts_set(&c, REWARD_FOLLOWS, 3);
    const double fol[] = { 0.0, 1.0, 1.0, 2.0, 2.0, 3.0 };
    reward_score(v1, &o, &c, hist5, 5, fol, 6, &out);
    assert_true(out.has_follows_per_1k && fabs(out.follows_per_1k - 3.0) < 1e-12);
    double zf = (3.0 - 1.5) / (1.4826 * 0.5);
    assert_true(fabs(out.z_follows - zf) < 1e-12);
    assert_true(fabs(out.reward - (0.7 * z + 0.3 * zf)) < 1e-12);
    /* follows known but too short a follows baseline: engagement alone */
    reward_score(v1, &o, &c, hist5, 5, fol, 2, &out);
    assert_false(out.has_z_follows);
    assert_true(fabs(out.reward - z) < 1e-12);

    /* clipped */
    c = counts(1000, 900, 50, 30, 20);
    reward_score(v1, &o, &c, hist5, 5, NULL, 0, &out);
    assert_true(out.reward == 5.0);
    c = counts(1000, 0, 0, 0, 0);
    const double high[] = { 0.5, 0.5, 0.5, 0.5, 0.6 }; /* scale 0.05: z = -10 */
    reward_score(v1, &o, &c, high, 5, NULL, 0, &out);
    assert_true(out.reward == -5.0);
    assert_true(out.learnable);
}

static void unknown_is_not_zero(void **state)
{
    (void)state;
    const reward_version *v1 = reward_version_default();
    reward_options o;
    reward_options_default(&o);
    reward_outcome known, unknown;

    reward_counts c = counts(1000, 0, 5, 5, 5);
    reward_score(v1, &o, &c, hist5, 5, NULL, 0, &known);
    assert_true(known.learnable);
    reward_counts u = c;
    u.known &= ~(1u << REWARD_LIKES); /* likes not observed */
    reward_score(v1, &o, &u, hist5, 5, NULL, 0, &unknown);
    assert_false(unknown.learnable);
    assert_false(unknown.has_engagement_rate);
    assert_false(unknown.has_reward);
    assert_non_null(strstr(unknown.reason, "likes unknown"));

    reward_counts noimp = c;
    noimp.known &= ~(1u << REWARD_IMPRESSIONS);
    reward_score(v1, &o, &noimp, hist5, 5, NULL, 0, &unknown);
    assert_false(unknown.learnable);
    assert_non_null(strstr(unknown.reason, "impressions unknown"));

    /* metrics v1 does not count may be unknown */
    reward_counts extra = c;
    reward_counts_set(&extra, REWARD_LINK_CLICKS, 500);
    reward_score(v1, &o, &extra, hist5, 5, NULL, 0, &unknown);
    assert_true(fabs(unknown.reward - known.reward) < 1e-15);

    /* v2 also needs bookmarks and weighs replies double */
    const reward_version *v2 = reward_version_find("v2");
    reward_outcome o2;
    reward_score(v2, &o, &c, hist5, 5, NULL, 0, &o2);
    assert_false(o2.learnable);
    assert_non_null(strstr(o2.reason, "bookmarks unknown"));
    reward_counts_set(&c, REWARD_BOOKMARKS, 10);
    reward_score(v2, &o, &c, hist5, 5, NULL, 0, &o2);
    assert_true(o2.learnable);
    assert_true(fabs(o2.engagement_rate - (0.0 + 2 * 5 + 2 * 5 + 2 * 5 + 10) / 1000.0) < 1e-15);
}

static void learnability(void **state)
{
    (void)state;
    const reward_version *v1 = reward_version_default();
    reward_options o;
    reward_options_default(&o);
    reward_outcome out;

    reward_counts few = counts(99, 10, 0, 0, 0);
    reward_score(v1, &o, &few, hist5, 5, NULL, 0, &out);
    assert_false(out.learnable);
    assert_false(out.has_engagement_rate); /* so later baselines skip it */
    assert_non_null(strstr(out.reason, "too few impressions: 99 < 100"));
    o.min_impressions = 50;
    reward_score(v1, &o, &few, hist5, 5, NULL, 0, &out);
    assert_true(out.learnable);

    /* short baseline: the rate is recorded (it builds the baseline), the
     * reward is not */
    reward_counts c = counts(1000, 10, 0, 0, 0);
    reward_score(v1, &o, &c, hist5, 4, NULL, 0, &out);
    assert_false(out.learnable);
    assert_true(out.has_engagement_rate);
    assert_false(out.has_reward);
    assert_non_null(strstr(out.reason, "baseline too short: 4 of 5"));

    /* more engagement, more reward (monotone) */
    double prev = -INFINITY;
    for (int likes = 0; likes <= 100; likes += 5) {
        reward_counts m = counts(2000, likes, 1, 1, 0);
        reward_score(v1, &o, &m, hist5, 5, NULL, 0, &out);
        assert_true(out.reward >= prev);
        prev = out.reward;
    }
}

/* A history where the baseline of each post must come from the 30 days
 * before its checkpoint; reward_recompute must equal reward_score fed the
 * same windows by hand. */
static void recompute_matches_online(void **state)
{
    (void)state;
    enum { NP = 60 };
    reward_post posts[NP];
    reward_outcome out[NP];
    memset(posts, 0, sizeof(posts));
    for (int i = 0; i < NP; i++) {
        /* one post every 1.5 days, two pairs share a checkpoint */
        posts[i].checkpoint_ms =
            1000 * DAY_MS + (int64_t)(i * 1.5 * DAY_MS) - (i == 11 ? DAY_MS / 2 : 0);
        int64_t imp = i % 7 == 3 ? 60 : 800 + 37 * i; /* some too small */
        posts[i].counts = counts(imp, 10 + (i * 7) % 23, i % 4, i % 3, i % 2);
        if (i % 5 == 0)
            reward_counts_set(&posts[i].counts, REWARD_FOLLOWS, i % 3);
    }
    posts[11].checkpoint_ms = posts[10].checkpoint_ms; /* a tie */
    reward_options o;
    reward_options_default(&o);
    char err[128];
    assert_int_equal(
        reward_recompute(reward_version_default(), &o, posts, NP, out, err, sizeof(err)), ST_OK);

    int learnable = 0;
    for (int i = 0; i < NP; i++) {
        double eh[NP], fh[NP];
        size_t ne = 0, nf = 0;
        for (int j = 0; j < NP; j++) {
            if (posts[j].checkpoint_ms >= posts[i].checkpoint_ms ||
                posts[j].checkpoint_ms < posts[i].checkpoint_ms - 30 * DAY_MS)
                continue;
            if (out[j].has_engagement_rate)
                eh[ne++] = out[j].engagement_rate;
            if (out[j].has_follows_per_1k)
                fh[nf++] = out[j].follows_per_1k;
        }
        reward_outcome want;
        reward_score(reward_version_default(), &o, &posts[i].counts, eh, ne, fh, nf, &want);
        assert_int_equal(want.learnable, out[i].learnable);
        assert_int_equal(want.has_reward, out[i].has_reward);
        assert_true(want.reward == out[i].reward);
        assert_int_equal(want.baseline_n, out[i].baseline_n);
        assert_true(ne <= 20); /* the window really is 30 days of 1.5-day posts */
        learnable += out[i].learnable;
        if (posts[i].counts.value[REWARD_IMPRESSIONS] < 100)
            assert_false(out[i].has_engagement_rate);
    }
    /* the first posts build the baseline, most later ones learn */
    assert_false(out[0].learnable);
    assert_true(learnable > NP / 2);

    /* re-scoring under v2 gives different rewards for the same history */
    reward_outcome out2[NP];
    for (int i = 0; i < NP; i++)
        reward_counts_set(&posts[i].counts, REWARD_BOOKMARKS, i % 6);
    assert_int_equal(
        reward_recompute(reward_version_find("v2"), &o, posts, NP, out2, err, sizeof(err)), ST_OK);
    int differ = 0;
    for (int i = 0; i < NP; i++)
        differ += out2[i].learnable && out[i].learnable && out2[i].reward != out[i].reward;
    assert_true(differ > 0);

    /* out of order is refused */
    posts[5].checkpoint_ms = posts[6].checkpoint_ms + 1;
    assert_int_equal(
        reward_recompute(reward_version_default(), &o, posts, NP, out, err, sizeof(err)),
        ST_INVALID);
    assert_non_null(strstr(err, "out of checkpoint order"));
    assert_int_equal(
        reward_recompute(reward_version_default(), &o, posts, 0, out, err, sizeof(err)), ST_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(versions_and_counts), cmocka_unit_test(baseline_median_mad),
        cmocka_unit_test(score_v1_by_hand),    cmocka_unit_test(unknown_is_not_zero),
        cmocka_unit_test(learnability),        cmocka_unit_test(recompute_matches_online),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
