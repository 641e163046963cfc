/* sim_learning.c - the learner in a closed loop against a synthetic
 * audience (issue 6, "Done when"): the same domain functions the handlers
 * call, in the order they call them.
 *
 * Each simulated day has four posting windows (06-10, 10-14, 14-18, 18-23
 * in the profile's hours). At the start of a window the loop
 *   1. folds every outcome whose 24 h checkpoint has passed: reward_score
 *      against the trailing 30-day baseline of earlier outcomes, then, if
 *      learnable, bandit_stats_add on the post's content_type, voice_style,
 *      topic and hour_of_week arms (RecordEngagement's transaction);
 *   2. picks the hour inside the window by a Thompson draw from the
 *      besttimes_compute heatmap (GetNextSlots);
 *   3. calls bandit_recommend for content type x voice style x topic, with
 *      the last three topics excluded as recently used (Recommend);
 *   4. posts: learnsim_observe draws the counts the audience produces.
 * The audience's hidden rates depend on content type x voice style x hour
 * of week (learnsim.h); topics do not matter to it.
 *
 * Score: the hidden expected engagement rate of every post. Recommend
 * chooses the content for a profile and a time, so its oracle knows the
 * hidden rates and posts the best content type x voice style at the same
 * time; uniform random picks the content uniformly at that time (its exact
 * expectation is used). Over the last 1,000 posts the learner must reach
 * >= 90 % of that oracle and beat random by >= 10 points of it, for each
 * of three audiences (issue 6). Timing is reported apart: the hour the
 * heatmap's Thompson draw picked against the best hour of the window (best
 * content at both), and the whole loop against an oracle that also knows
 * the best hour; timing must beat a uniformly random hour. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bandit.h"
#include "besttimes.h"
#include "learnsim.h"
#include "reward.h"
#include "sampling.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
#define START_MS 1704067200000LL /* Monday 2024-01-01 00:00 UTC */
#define POSTS 2400
#define LAST 1000
#define WINDOWS 4
#define N_CT 6
#define N_VS 6
#define N_TOPIC 11
#define RECENT_TOPICS 3

static const int window_hours[WINDOWS][2] = { { 6, 10 }, { 10, 14 }, { 14, 18 }, { 18, 23 } };

static const char *const ct_keys[N_CT] = { "myth_busting",        "counterintuitive_insight",
                                           "practical_tip",       "research_breakdown",
                                           "curious_observation", "story_insight" };
static const char *const vs_keys[N_VS] = { "research_enthusiast",     "truth_seeker",
                                           "practical_optimizer",     "curious_investigator",
                                           "evidence_based_advocate", "storyteller" };
static const char *const topic_keys[N_TOPIC] = {
    "sleep",     "nutrition",         "exercise",     "stress",       "longevity",
    "hydration", "social_connection", "brain_health", "heart_health", "gut_health",
    "habits"
};

typedef struct post {
    int64_t post_ms;
    int64_t checkpoint_ms;
    size_t ct, vs, tp;
    int how;
    reward_counts counts;
} post;

typedef struct sim_result {
    /* sums of hidden rates; content at the chosen time */
    double learner_last, oracle_last, random_last;
    double learner_all, oracle_all, random_all;
    /* timing: best content at the chosen hour / at the best hour / mean
     * over the window's hours, last LAST posts */
    double time_chosen, time_best, time_random;
    double full_oracle_last; /* best content at the best hour */
    double mean_propensity;
    double min_propensity;
    int learnable;
    int best_ct_share_last; /* posts with the oracle's content in the last LAST */
    /* where the last LAST posts lose against the oracle, as mean ratios of
     * the hidden factors to the best available one */
    double ct_eff, vs_eff, hour_eff;
    double seconds;
} sim_result;

/* The learner's state: what arm_stats and outcomes hold for one profile. */
typedef struct learner {
    bandit_arm ct[N_CT], vs[N_VS], tp[N_TOPIC];
    bandit_stats hours[BESTTIMES_CELLS];
    /* outcomes so far, in checkpoint order: the baseline source */
    int64_t out_ms[POSTS];
    double out_eng[POSTS], out_fol[POSTS];
    bool has_eng[POSTS], has_fol[POSTS];
    size_t n_out;
} learner;

static learner L;
static post posts[POSTS];

/* RecordEngagement at the checkpoint: one outcome, then the arm updates. */
static bool fold_outcome(const post *p, const reward_version *v, const reward_options *o,
                         const bandit_config *bc)
{
    double eng[POSTS], fol[POSTS];
    size_t ne = 0, nf = 0;
    for (size_t i = 0; i < L.n_out; i++) {
        if (L.out_ms[i] >= p->checkpoint_ms ||
            L.out_ms[i] < p->checkpoint_ms - o->baseline_days * DAY_MS)
            continue;
        if (L.has_eng[i])
            eng[ne++] = L.out_eng[i];
        if (L.has_fol[i])
            fol[nf++] = L.out_fol[i];
    }
    reward_outcome out;
    reward_score(v, o, &p->counts, eng, ne, fol, nf, &out);
    size_t k = L.n_out++;
    L.out_ms[k] = p->checkpoint_ms;
    L.has_eng[k] = out.has_engagement_rate;
    L.out_eng[k] = out.engagement_rate;
    L.has_fol[k] = out.has_follows_per_1k;
    L.out_fol[k] = out.follows_per_1k;
    if (!out.learnable)
        return false;
    bandit_stats_add(&L.ct[p->ct].stats, out.reward, p->checkpoint_ms, bc);
    bandit_stats_add(&L.vs[p->vs].stats, out.reward, p->checkpoint_ms, bc);
    bandit_stats_add(&L.tp[p->tp].stats, out.reward, p->checkpoint_ms, bc);
    bandit_stats_add(&L.hours[p->how], out.reward, p->checkpoint_ms, bc);
    return true;
}

static void learner_init(void)
{
    memset(&L, 0, sizeof(L));
    for (int i = 0; i < N_CT; i++)
        L.ct[i] = (bandit_arm){ .key = ct_keys[i], .enabled = true };
    for (int i = 0; i < N_VS; i++)
        L.vs[i] = (bandit_arm){ .key = vs_keys[i], .enabled = true };
    for (int i = 0; i < N_TOPIC; i++)
        L.tp[i] = (bandit_arm){ .key = topic_keys[i], .enabled = true };
}

static void simulate(uint64_t seed, int audience_offset, sim_result *res)
{
    int64_t t_start = now_mono_us();
    learnsim_config lc;
    learnsim_config_default(&lc);
    lc.n_content_types = N_CT;
    lc.n_voice_styles = N_VS;
    lc.audience_offset_minutes = audience_offset;
    lc.seed = seed;
    static learnsim_audience aud;
    learnsim_audience_init(&aud, &lc);

    bandit_config bc;
    bandit_config_default(&bc);
    /* diagnostics only: SIM_HALF_LIFE_DAYS overrides the default */
    const char *hl = getenv("SIM_HALF_LIFE_DAYS");
    if (hl != NULL)
        bc.half_life_days = atof(hl);
    besttimes_config btc;
    besttimes_config_default(&btc);
    reward_options ro;
    reward_options_default(&ro);
    const reward_version *rv = reward_version_default();
    const besttimes_zone audience = { audience_offset, 1.0 };

    learner_init();
    memset(res, 0, sizeof(*res));
    res->min_propensity = 1.0;
    sampling_rng world, timing;
    sampling_rng_seed(&world, seed * 1000003u + 17u); /* the audience's noise */
    sampling_rng_seed(&timing, seed * 7919u + 5u);    /* the timing draws */
    size_t folded = 0;
    bandit_candidate cands[N_CT + N_VS + N_TOPIC];
    char err[160];

    for (int i = 0; i < POSTS; i++) {
        int day = i / WINDOWS, w = i % WINDOWS;
        int64_t day_ms = START_MS + (int64_t)day * DAY_MS;
        int64_t now = day_ms + window_hours[w][0] * HOUR_MS;

        /* 1. outcomes whose checkpoint has passed */
        while (folded < (size_t)i && posts[folded].checkpoint_ms <= now)
            res->learnable += fold_outcome(&posts[folded++], rv, &ro, &bc);

        /* 2. the hour: a Thompson draw over the window's cells */
        besttimes_map map;
        assert_int_equal(
            besttimes_compute(L.hours, now, &bc, 0, &audience, 1, &btc, &map, err, sizeof(err)),
            ST_OK);
        int hour = window_hours[w][0];
        double best_draw = -INFINITY;
        for (int h = window_hours[w][0]; h < window_hours[w][1]; h++) {
            int how = besttimes_hour_of_week(day_ms + h * HOUR_MS, 0);
            double d = besttimes_draw(&map, how, &timing);
            if (d > best_draw) {
                best_draw = d;
                hour = h;
            }
        }
        int64_t post_ms = day_ms + hour * HOUR_MS;
        int how = besttimes_hour_of_week(post_ms, 0);

        /* 3. Recommend, with the recently used topics excluded */
        for (int k = 0; k < N_TOPIC; k++)
            L.tp[k].exclude_reason = NULL;
        for (int k = 1; k <= RECENT_TOPICS && k <= i; k++)
            L.tp[posts[i - k].tp].exclude_reason = "used recently";
        bandit_dim dims[3] = {
            { BANDIT_SCOPE_CONTENT_TYPE, L.ct, N_CT, NULL },
            { BANDIT_SCOPE_VOICE_STYLE, L.vs, N_VS, NULL },
            { BANDIT_SCOPE_TOPIC, L.tp, N_TOPIC, NULL },
        };
        bandit_choice ch;
        assert_int_equal(bandit_recommend(dims, 3, now, seed * 100000u + (uint64_t)i, &bc, cands,
                                          N_CT + N_VS + N_TOPIC, &ch),
                         ST_OK);
        res->mean_propensity += ch.propensity / POSTS;
        res->min_propensity = fmin(res->min_propensity, ch.propensity);

        /* 4. post and let the audience answer */
        post *p = &posts[i];
        p->post_ms = post_ms;
        p->checkpoint_ms = post_ms + DAY_MS;
        p->ct = ch.chosen[0];
        p->vs = ch.chosen[1];
        p->tp = ch.chosen[2];
        p->how = how;
        learnsim_observe(&aud, p->ct, p->vs, how, &world, &p->counts);

        /* scores: hidden expected rates */
        size_t oct = 0, ovs = 0;
        double mine = learnsim_rate(&aud, p->ct, p->vs, how);
        double oracle = learnsim_best(&aud, how, &oct, &ovs);
        double random = learnsim_mean(&aud, how);
        res->learner_all += mine;
        res->oracle_all += oracle;
        res->random_all += random;
        if (i < POSTS - LAST)
            continue;
        res->learner_last += mine;
        res->oracle_last += oracle;
        res->random_last += random;
        res->best_ct_share_last += p->ct == oct && p->vs == ovs;
        double best_hour = 0.0, mean_hour = 0.0, fct = 0.0, fvs = 0.0, fh = 0.0;
        int span = window_hours[w][1] - window_hours[w][0];
        for (int h = window_hours[w][0]; h < window_hours[w][1]; h++) {
            int hw = besttimes_hour_of_week(day_ms + h * HOUR_MS, 0);
            size_t bct, bvs;
            double b = learnsim_best(&aud, hw, &bct, &bvs);
            best_hour = fmax(best_hour, b);
            mean_hour += b / span;
            fh = fmax(fh, aud.f_hour[hw]);
        }
        res->time_chosen += oracle;
        res->time_best += best_hour;
        res->time_random += mean_hour;
        res->full_oracle_last += best_hour;
        for (int k = 0; k < N_CT; k++)
            fct = fmax(fct, aud.f_ct[k]);
        for (int k = 0; k < N_VS; k++)
            fvs = fmax(fvs, aud.f_vs[k]);
        res->ct_eff += aud.f_ct[p->ct] / fct / LAST;
        res->vs_eff += aud.f_vs[p->vs] / fvs / LAST;
        res->hour_eff += aud.f_hour[how] / fh / LAST;
    }
    res->seconds = (double)(now_mono_us() - t_start) / 1e6;
}

static void closed_loop_reaches_oracle(void **state)
{
    (void)state;
    const struct {
        uint64_t seed;
        int offset;
    } audiences[] = { { 1, 0 }, { 2, -300 }, { 3, 60 } };
    /* diagnostics only: SIM_EXTRA_SEEDS=k runs k more audiences, printed
     * and not asserted */
    const char *extra = getenv("SIM_EXTRA_SEEDS");
    int n_extra = extra != NULL ? atoi(extra) : 0;
    double sum_ratio = 0.0, min_ratio = 1.0;
    for (int e = 0; e < n_extra && e < 50; e++) {
        sim_result r;
        simulate(100u + (uint64_t)e, (e % 5 - 2) * 120, &r);
        double ratio = r.learner_last / r.oracle_last;
        sum_ratio += ratio;
        min_ratio = fmin(min_ratio, ratio);
        printf("extra audience %d: content %.1f%% of oracle (ct %.3f vs %.3f), timing %.1f%%, "
               "whole loop %.1f%%\n",
               100 + e, 100.0 * ratio, r.ct_eff, r.vs_eff, 100.0 * r.time_chosen / r.time_best,
               100.0 * r.learner_last / r.full_oracle_last);
    }
    if (n_extra > 0)
        printf("extra audiences: mean %.1f%%, min %.1f%%\n", 100.0 * sum_ratio / n_extra,
               100.0 * min_ratio);
    for (size_t a = 0; a < sizeof(audiences) / sizeof(audiences[0]); a++) {
        sim_result r;
        simulate(audiences[a].seed, audiences[a].offset, &r);
        double ratio = r.learner_last / r.oracle_last;
        double random_ratio = r.random_last / r.oracle_last;
        double time_ratio = r.time_chosen / r.time_best;
        double time_random = r.time_random / r.time_best;
        printf("sim audience %llu (offset %+d min): %d posts, %d learnable, %.2f s\n",
               (unsigned long long)audiences[a].seed, audiences[a].offset, POSTS, r.learnable,
               r.seconds);
        printf("  content, last %d posts: learner %.1f%% of oracle, uniform random %.1f%%; "
               "oracle's exact choice in %d posts (mean factor vs best: content type %.3f, "
               "voice style %.3f)\n",
               LAST, 100.0 * ratio, 100.0 * random_ratio, r.best_ct_share_last, r.ct_eff, r.vs_eff);
        printf("  content regret: %.3f expected engagements per 1k impressions per post (last "
               "%d); cumulative %.1f over all %d posts (uniform random: %.1f)\n",
               (r.oracle_last - r.learner_last) * 1000.0 / LAST, LAST,
               (r.oracle_all - r.learner_all) * 1000.0, POSTS,
               (r.oracle_all - r.random_all) * 1000.0);
        printf("  timing, last %d posts: chosen hour %.1f%% of the window's best hour, random "
               "hour %.1f%%; whole loop %.1f%% of an oracle knowing content and hour\n",
               LAST, 100.0 * time_ratio, 100.0 * time_random,
               100.0 * r.learner_last / r.full_oracle_last);
        printf("  propensity of the chosen combinations: mean %.3f, min %.2g\n", r.mean_propensity,
               r.min_propensity);
        assert_true(ratio >= 0.9);
        assert_true(ratio - random_ratio >= 0.1);
        assert_true(time_ratio > time_random);
        assert_true(r.min_propensity > 0.0);
        assert_true(r.learnable > POSTS * 9 / 10);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(closed_loop_reaches_oracle) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
