/* sim_learning_svc.c - the learner in a closed loop through the RPCs (issue
 * 6, "Done when"): a synthetic audience (learnsim.h) with hidden engagement
 * rates per content type x voice style x hour of week answers >= 2,000
 * posts that a real heraldd chose.
 *
 * Each simulated day has four posting windows (06-10, 10-14, 14-18, 18-23
 * UTC, the profile's zone); the hour inside a window is drawn uniformly
 * (timing is not Recommend's job). Simulated time runs in the past, so the
 * server's clock never gets in the way: every instant below is the
 * simulation's. For each post, in order:
 *   1. RecordEngagement: the counts of every earlier post whose observation
 *      time (publishing + 20 h, before its 24 h checkpoint) has come;
 *   2. the outcome checkpoint job (outcomes_score_due_tx, run here on the
 *      test's own connection with the simulation's clock): posts past
 *      their checkpoint get their reward against the trailing baseline,
 *      and their arms are updated in the same transaction;
 *   3. Recommend(profile, target_time = the post's time, seed): the
 *      server's Thompson draw over its own arm statistics;
 *   4. the post is written (GenerateDraft belongs to another issue) with the
 *      recommended arms and the decision id, published at its time;
 *   5. the audience draws the post's counts (learnsim_observe).
 *
 * Score: the hidden expected engagement rate of every post's content at its
 * hour. The oracle posts the best content type x voice style at the same
 * hour; uniform random's exact expectation is learnsim_mean. Over the last
 * 1,000 posts the learner must reach >= 90 % of the oracle and beat random
 * by >= 10 points of it (as tests/sim/sim_learning.c does in process).
 *
 * Needs the services fixture; skips (77) without. SIM_POSTS (default 2400,
 * at least 2000) and SIM_AUDIENCES (1 to 3, default 1) change the size. */
#include <math.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "besttimes.h"
#include "learnsim.h"
#include "sampling.h"
#include "test_learning_svc_support.h"

#define LAST 1000
#define WINDOWS 4
#define OBSERVE_AFTER_MS (20 * HOUR_MS)

static const int window_hours[WINDOWS][2] = { { 6, 10 }, { 10, 14 }, { 14, 18 }, { 18, 23 } };

static ls_env E;

typedef struct sim_post {
    char id[37];
    int64_t publish_ms;
    reward_counts counts;
    bool sent;
} sim_post;

typedef struct keys {
    char **k;
    size_t n;
} keys;

static void keys_load(keys *out, const char *table)
{
    char *sql = xasprintf("SELECT key FROM %s WHERE enabled ORDER BY key", table);
    db_res *res = NULL;
    assert_int_equal(db_run(E.db, 10000, "sim_keys", sql, NULL, &res), ST_OK);
    free(sql);
    out->n = (size_t)db_res_rows(res);
    out->k = xcalloc(out->n, sizeof *out->k);
    for (size_t i = 0; i < out->n; i++)
        out->k[i] = xstrdup(db_res_text(res, (int)i, 0));
    db_res_free(res);
}

static void keys_free(keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->k[i]);
    free(k->k);
}

static size_t key_index(const keys *k, const char *key)
{
    for (size_t i = 0; i < k->n; i++)
        if (strcmp(k->k[i], key) == 0)
            return i;
    fail_msg("Recommend chose %s, not a catalog key", key);
    return 0;
}

/* The observation of p: every metric the audience produced. */
static void obs_of(Herald__V1__EngagementObservation *o, const sim_post *p)
{
    int64_t v[REWARD_METRIC_COUNT];
    for (int m = 0; m < REWARD_METRIC_COUNT; m++)
        if (!reward_counts_get(&p->counts, (reward_metric)m, &v[m]))
            v[m] = -1;
    ls_obs(o, p->id, p->publish_ms + OBSERVE_AFTER_MS, v[REWARD_IMPRESSIONS], v[REWARD_LIKES],
           v[REWARD_REPLIES], v[REWARD_REPOSTS], v[REWARD_QUOTES], v[REWARD_FOLLOWS]);
    if (v[REWARD_BOOKMARKS] >= 0) {
        o->bookmarks = v[REWARD_BOOKMARKS];
        o->bookmarks_opt_case = HERALD__V1__ENGAGEMENT_OBSERVATION__BOOKMARKS_OPT_BOOKMARKS;
    }
}

typedef struct sim_result {
    double learner_last, oracle_last, random_last;
    double learner_all, oracle_all, random_all;
    double mean_propensity, min_propensity;
    int best_share_last;
    int64_t scored, learnable, skipped;
    double seconds, recommend_ms_max, recommend_ms_sum;
} sim_result;

static void simulate(const char *profile, uint64_t seed, int audience_offset, int posts,
                     sim_result *res)
{
    int64_t t0 = now_mono_us();
    keys ct, vs;
    keys_load(&ct, "content_types");
    keys_load(&vs, "voice_styles");
    assert_true(ct.n >= 2 && ct.n <= LEARNSIM_MAX_KEYS);
    assert_true(vs.n >= 2 && vs.n <= LEARNSIM_MAX_KEYS);
    assert_int_equal(ls_profile(&E, profile, "UTC", 24), 0);

    learnsim_config lc;
    learnsim_config_default(&lc);
    lc.n_content_types = ct.n;
    lc.n_voice_styles = vs.n;
    lc.audience_offset_minutes = audience_offset;
    lc.seed = seed;
    static learnsim_audience aud;
    learnsim_audience_init(&aud, &lc);
    sampling_rng world, hours;
    sampling_rng_seed(&world, seed * 1000003u + 17u);
    sampling_rng_seed(&hours, seed * 7919u + 5u);

    /* simulated days end two days before now, on a day boundary */
    int days = posts / WINDOWS + 1;
    int64_t start = (now_real_ms() / DAY_MS - days - 2) * DAY_MS;
    sim_post *p = xcalloc((size_t)posts, sizeof *p);
    Herald__V1__EngagementObservation *obs = xcalloc((size_t)posts, sizeof *obs);
    Herald__V1__EngagementObservation **obsp = xcalloc((size_t)posts, sizeof *obsp);
    size_t next_obs = 0;
    memset(res, 0, sizeof *res);
    res->min_propensity = 1.0;

    for (int i = 0; i < posts; i++) {
        int day = i / WINDOWS, w = i % WINDOWS;
        int span = window_hours[w][1] - window_hours[w][0];
        int hour = window_hours[w][0] + (int)sampling_below(&hours, (uint64_t)span);
        int64_t at = start + (int64_t)day * DAY_MS + hour * HOUR_MS;

        /* 1. observations whose time has come */
        size_t n_obs = 0;
        while (next_obs < (size_t)i && p[next_obs].publish_ms + OBSERVE_AFTER_MS <= at) {
            obs_of(&obs[n_obs], &p[next_obs]);
            obsp[n_obs] = &obs[n_obs];
            n_obs++;
            next_obs++;
        }
        if (n_obs > 0) {
            Herald__V1__RecordEngagementResponse *r = NULL;
            char rid[40];
            assert_int_equal(ls_engage(&E, ls_rid(&E, rid), obsp, n_obs, &r), 0);
            assert_int_equal(r->accepted, (int)n_obs);
            herald__v1__record_engagement_response__free_unpacked(r, NULL);
        }
        /* 2. the checkpoint job, on the simulation's clock */
        outcomes_result jr = ls_job(&E, at);
        res->scored += jr.scored;
        res->learnable += jr.learnable;
        res->skipped += jr.skipped;

        /* 3. Recommend */
        Herald__V1__RecommendRequest req = HERALD__V1__RECOMMEND_REQUEST__INIT;
        Herald__V1__RecommendResponse *rec = NULL;
        req.profile_id = (char *)profile;
        req.target_time = ls_ts(at);
        req.seed = seed * 100000u + (uint64_t)i;
        req.seed_opt_case = HERALD__V1__RECOMMEND_REQUEST__SEED_OPT_SEED;
        int64_t c0 = now_mono_us();
        assert_int_equal(ls_recommend(&E, &req, &rec), 0);
        double ms = (double)(now_mono_us() - c0) / 1000.0;
        res->recommend_ms_sum += ms;
        res->recommend_ms_max = fmax(res->recommend_ms_max, ms);
        int how = besttimes_hour_of_week(at, 0);
        assert_int_equal(rec->hour_of_week, how);
        res->mean_propensity += rec->propensity / posts;
        res->min_propensity = fmin(res->min_propensity, rec->propensity);
        size_t c = key_index(&ct, rec->choice->content_type);
        size_t v = key_index(&vs, rec->choice->voice_style);

        /* 4. the post, 5. the audience's answer */
        ls_post(&E, profile, rec->choice->content_type, rec->choice->voice_style,
                rec->choice->topic, at, rec->decision_id, p[i].id);
        p[i].publish_ms = at;
        learnsim_observe(&aud, c, v, how, &world, &p[i].counts);
        herald__v1__recommend_response__free_unpacked(rec, NULL);

        size_t oc = 0, ov = 0;
        double mine = learnsim_rate(&aud, c, v, how);
        double oracle = learnsim_best(&aud, how, &oc, &ov);
        double random = learnsim_mean(&aud, how);
        res->learner_all += mine;
        res->oracle_all += oracle;
        res->random_all += random;
        if (i < posts - LAST)
            continue;
        res->learner_last += mine;
        res->oracle_last += oracle;
        res->random_last += random;
        res->best_share_last += c == oc && v == ov;
    }
    res->seconds = (double)(now_mono_us() - t0) / 1e6;

    /* what the server logged and learnt */
    assert_int_equal(ls_int(&E, "SELECT count(*) FROM decisions WHERE profile_id = $1", profile),
                     posts);
    assert_int_equal(ls_int(&E,
                            "SELECT count(*) FROM outcomes o JOIN posts p USING (post_id) "
                            "WHERE p.profile_id = $1",
                            profile),
                     res->scored);
    free(obsp);
    free(obs);
    free(p);
    keys_free(&vs);
    keys_free(&ct);
}

static int group_setup(void **state)
{
    (void)state;
    if (!ls_setup(&E, "learning_sim", NULL, NULL))
        return -1;
    /* The simulation's own writes (posts, the job) need not wait for the
     * disk; heraldd's keep their durable commits. */
    return db_run(E.db, 10000, "sim_async", "SET synchronous_commit = off", NULL, NULL) == ST_OK
               ? 0
               : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return ls_teardown(&E) == 0 ? 0 : -1;
}

static void closed_loop_through_rpcs(void **state)
{
    (void)state;
    const struct {
        uint64_t seed;
        int offset;
    } audiences[] = { { 1, 0 }, { 2, -300 }, { 3, 60 } };
    const char *pe = getenv("SIM_POSTS");
    const char *ae = getenv("SIM_AUDIENCES");
    int posts = pe != NULL ? atoi(pe) : 2400;
    int n_aud = ae != NULL ? atoi(ae) : 1;
    if (posts < 2000)
        posts = 2000;
    if (posts > 20000)
        posts = 20000;
    if (n_aud < 1)
        n_aud = 1;
    if (n_aud > 3)
        n_aud = 3;

    for (int a = 0; a < n_aud; a++) {
        sim_result r;
        char profile[32];
        snprintf(profile, sizeof profile, "sim%d", a + 1);
        simulate(profile, audiences[a].seed, audiences[a].offset, posts, &r);
        double ratio = r.learner_last / r.oracle_last;
        double random_ratio = r.random_last / r.oracle_last;
        printf("sim through the RPCs, audience %llu (offset %+d min): %d posts, %lld outcomes "
               "(%lld learnable), %.1f s\n",
               (unsigned long long)audiences[a].seed, audiences[a].offset, posts,
               (long long)r.scored, (long long)r.learnable, r.seconds);
        printf("  last %d posts: learner %.1f%% of the oracle, uniform random %.1f%%; the "
               "oracle's exact content in %d posts\n",
               LAST, 100.0 * ratio, 100.0 * random_ratio, r.best_share_last);
        printf("  regret: %.3f expected engagements per 1k impressions per post over the last "
               "%d; cumulative %.1f over all %d posts (uniform random: %.1f)\n",
               (r.oracle_last - r.learner_last) * 1000.0 / LAST, LAST,
               (r.oracle_all - r.learner_all) * 1000.0, posts,
               (r.oracle_all - r.random_all) * 1000.0);
        printf("  propensity of the chosen combinations: mean %.3f, min %.2g; Recommend "
               "round trip mean %.2f ms, max %.1f ms\n",
               r.mean_propensity, r.min_propensity, r.recommend_ms_sum / posts, r.recommend_ms_max);
        fflush(stdout);
        assert_true(ratio >= 0.9);
        assert_true(ratio - random_ratio >= 0.1);
        assert_true(r.min_propensity > 0.0);
        assert_true(r.learnable > r.scored * 9 / 10);
        assert_true(r.scored >= posts - 8); /* all but the last day's posts */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(closed_loop_through_rpcs) };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
