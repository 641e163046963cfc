/* test_learning_svc.c - LearningService end to end (issue 6 at the RPC
 * level): a real heraldd (started here, migrating its own fresh database)
 * driven through the C client's typed stubs, posts written with SQL, and
 * the outcome checkpoint job run directly (outcomes.h) on the test's own
 * connection.
 *
 * Covers every RPC's happy path and errors: RecordEngagement (idempotent per
 * observation and per request_id, a missing metric stays NULL, a batch
 * rejected as a whole with one violation per bad item, draft posts and
 * observations before publishing refused), the outcome job -> outcomes ->
 * arm statistics -> Recommend chain (and a late observation scoring a post
 * at once, a simulated decision never learnt from), GetInsights and
 * GetBestTimes served from the cache and never stale after a new outcome or
 * audience (a hit is the stored fresh reply byte for byte but for
 * `cached`; a corrupted, truncated, untagged or other-typed entry is a
 * miss), SetArmEnabled (the disabled arm is never recommended), recently
 * used and excluded topics, ListArms paging, RecordReplies sentiment,
 * RecordFollowerSnapshots, UpsertTopics / ListTrends (a rising
 * topic first, filters, paging, per-profile scope), UpdateAudience and
 * RecomputeOutcomes (switch versions, deterministic re-runs).
 *
 * Needs the services fixture (DATABASE_URL, REDIS_URL); skips (77)
 * without. Its database is herald_test_learning_<pid>; Redis DB 8. */
#include <math.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "cache.h"
#include "learning_store.h"
#include "test_learning_svc_support.h"

static ls_env E;
static int64_t NOW;
static char P1[37]; /* alpha's first post, published NOW - 2 h */

/* ---- helpers ---- */

static int64_t count_rows(const char *sql, const char *arg)
{
    return ls_int(&E, sql, arg);
}

static bool has_violation(const char *field)
{
    return st_violation(ls_status(&E), field);
}

static size_t n_violations(void)
{
    Google__Rpc__BadRequest *br = st_bad_request(ls_status(&E));
    size_t n = br != NULL ? br->n_field_violations : 0;
    if (br != NULL)
        google__rpc__bad_request__free_unpacked(br, NULL);
    return n;
}

static int recommend(const char *profile, uint64_t seed, int64_t target_ms,
                     Herald__V1__RecommendResponse **out)
{
    Herald__V1__RecommendRequest req = HERALD__V1__RECOMMEND_REQUEST__INIT;
    req.profile_id = (char *)profile;
    req.seed = seed;
    req.seed_opt_case = HERALD__V1__RECOMMEND_REQUEST__SEED_OPT_SEED;
    if (target_ms > 0)
        req.target_time = ls_ts(target_ms);
    return ls_recommend(&E, &req, out);
}

static const Herald__V1__ArmCandidate *candidate(const Herald__V1__RecommendResponse *r,
                                                 Herald__V1__ArmScope scope, const char *key)
{
    for (size_t i = 0; i < r->n_candidates; i++)
        if (r->candidates[i]->scope == scope && strcmp(r->candidates[i]->key, key) == 0)
            return r->candidates[i];
    return NULL;
}

/* One observation with the usual v1 metrics all known. */
static int engage_one(const char *post, int64_t at_ms, int64_t impressions, int64_t eng,
                      int64_t follows, Herald__V1__RecordEngagementResponse **out)
{
    Herald__V1__EngagementObservation o;
    Herald__V1__EngagementObservation *obs[1] = { &o };
    char rid[40];
    ls_obs(&o, post, at_ms, impressions, eng * 7 / 10, eng / 10, eng / 10,
           eng - eng * 7 / 10 - 2 * (eng / 10), follows);
    return ls_engage(&E, ls_rid(&E, rid), obs, 1, out);
}

/* ---- fixture ---- */

static int group_setup(void **state)
{
    (void)state;
    /* these tests look at and corrupt the Redis tier itself: no in-process
     * copy in front of it (test_cache_versions covers that tier) */
    static const char *const extra[] = { "HERALD_CACHE_LOCAL_BYTES=0", NULL };
    if (!ls_setup(&E, "learning", extra, NULL))
        return -1;
    NOW = now_real_ms();
    if (ls_profile(&E, "alpha", "UTC", 24) != 0 || ls_profile(&E, "beta", "UTC", 24) != 0) {
        fprintf(stderr, "CreateProfile failed: %s\n", herald_stub_status(E.ops)->message);
        return -1;
    }
    ls_post(&E, "alpha", "myth_busting", "storyteller", "sleep", NOW - 2 * HOUR_MS, NULL, P1);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return ls_teardown(&E) == 0 ? 0 : -1;
}

/* ---- RecordEngagement ---- */

static void engagement_idempotent_and_nulls(void **state)
{
    (void)state;
    Herald__V1__RecordEngagementResponse *r = NULL;
    Herald__V1__EngagementObservation o, o2, o3;
    Herald__V1__EngagementObservation *one[1] = { &o };
    char rid[40], rid2[40];

    /* impressions and likes only: the other metrics are unknown */
    ls_obs(&o, P1, NOW - HOUR_MS, 500, 20, -1, -1, -1, -1);
    ls_rid(&E, rid);
    assert_int_equal(ls_engage(&E, rid, one, 1, &r), 0);
    assert_int_equal(r->accepted, 1);
    assert_int_equal(r->duplicates, 0);
    assert_int_equal(r->outcomes_updated, 0);
    herald__v1__record_engagement_response__free_unpacked(r, NULL);
    assert_int_equal(count_rows("SELECT count(*) FROM engagement_observations WHERE post_id = "
                                "$1::uuid AND impressions = 500 AND likes = 20 AND replies IS NULL "
                                "AND reposts IS NULL AND quotes IS NULL AND bookmarks IS NULL "
                                "AND profile_visits IS NULL AND link_clicks IS NULL "
                                "AND follows IS NULL AND source = 'default'",
                                P1),
                     1);

    /* the same request_id replays the first reply */
    assert_int_equal(ls_engage(&E, rid, one, 1, &r), 0);
    assert_int_equal(r->accepted, 1);
    herald__v1__record_engagement_response__free_unpacked(r, NULL);
    /* the same observation under a new request_id (or none) is a duplicate */
    assert_int_equal(ls_engage(&E, ls_rid(&E, rid2), one, 1, &r), 0);
    assert_int_equal(r->accepted, 0);
    assert_int_equal(r->duplicates, 1);
    herald__v1__record_engagement_response__free_unpacked(r, NULL);
    assert_int_equal(ls_engage(&E, NULL, one, 1, &r), 0);
    assert_int_equal(r->duplicates, 1);
    herald__v1__record_engagement_response__free_unpacked(r, NULL);
    assert_int_equal(count_rows("SELECT count(*) FROM engagement_observations WHERE post_id = "
                                "$1::uuid",
                                P1),
                     1);

    /* the same request_id with another request */
    o.likes = 21;
    char reason[64];
    assert_int_equal(ls_engage(&E, rid, one, 1, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_string_equal(st_reason(ls_status(&E), reason, sizeof reason), "IDEMPOTENCY_KEY_REUSED");
    o.likes = 20;

    /* within one batch: twice the same plus one from another source */
    ls_obs(&o2, P1, NOW - HOUR_MS, 510, 22, -1, -1, -1, -1);
    o2.source = (char *)"x_api";
    ls_obs(&o3, P1, NOW - HOUR_MS, 500, 20, -1, -1, -1, -1);
    Herald__V1__EngagementObservation *three[3] = { &o, &o2, &o3 };
    assert_int_equal(ls_engage(&E, ls_rid(&E, rid2), three, 3, &r), 0);
    assert_int_equal(r->accepted, 1);
    assert_int_equal(r->duplicates, 2);
    herald__v1__record_engagement_response__free_unpacked(r, NULL);
    assert_int_equal(count_rows("SELECT count(*) FROM engagement_observations WHERE post_id = "
                                "$1::uuid",
                                P1),
                     2);
}

static void engagement_batch_rejected_whole(void **state)
{
    (void)state;
    Herald__V1__EngagementObservation o[5];
    Herald__V1__EngagementObservation *obs[5] = { &o[0], &o[1], &o[2], &o[3], &o[4] };
    char rid[40];
    int64_t before = count_rows("SELECT count(*) FROM engagement_observations", NULL);

    /* syntax: each bad item is one violation; the good one is not stored */
    ls_obs(&o[0], "nope", NOW - HOUR_MS, 10, 1, -1, -1, -1, -1);
    ls_obs(&o[1], P1, NOW - HOUR_MS + 1, 10, -1, -1, -1, -1, -1);
    o[1].likes = -3;
    o[1].likes_opt_case = HERALD__V1__ENGAGEMENT_OBSERVATION__LIKES_OPT_LIKES;
    ls_obs(&o[2], P1, NOW + HOUR_MS, 10, 1, -1, -1, -1, -1);
    ls_obs(&o[3], P1, NOW - HOUR_MS + 3, -1, -1, -1, -1, -1, -1);
    ls_obs(&o[4], P1, NOW - HOUR_MS + 4, 10, 1, -1, -1, -1, -1);
    assert_int_equal(ls_engage(&E, ls_rid(&E, rid), obs, 5, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("observations[0].post_id"));
    assert_true(has_violation("observations[1].likes"));
    assert_true(has_violation("observations[2].observe_time"));
    assert_true(has_violation("observations[3]"));
    assert_int_equal(n_violations(), 4);

    /* checks against the database: an unknown post, an observation before
     * the post was published, a post that is only a draft */
    char draft[37];
    db_res *res = NULL;
    assert_int_equal(db_run(E.db, 10000, "test_draft",
                            "INSERT INTO posts (profile_id, state, platform, text, content_hash, "
                            "provider) VALUES ('alpha', 'draft', 'x', 'a draft', "
                            "repeat('d', 64), 'builtin') RETURNING post_id::text",
                            NULL, &res),
                     ST_OK);
    snprintf(draft, sizeof draft, "%s", db_res_text(res, 0, 0));
    db_res_free(res);
    ls_obs(&o[0], "00000000-0000-4000-8000-000000000000", NOW - HOUR_MS, 10, 1, -1, -1, -1, -1);
    ls_obs(&o[1], P1, NOW - 3 * HOUR_MS, 10, 1, -1, -1, -1, -1);
    ls_obs(&o[2], draft, NOW - HOUR_MS, 10, 1, -1, -1, -1, -1);
    ls_obs(&o[3], P1, NOW - HOUR_MS + 7, 10, 1, -1, -1, -1, -1);
    assert_int_equal(ls_engage(&E, ls_rid(&E, rid), obs, 4, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("observations[0].post_id"));
    assert_true(has_violation("observations[1].observe_time"));
    assert_true(has_violation("observations[2].post_id"));
    assert_int_equal(n_violations(), 3);
    /* the same request can be sent again once fixed: failures are not stored */
    assert_int_equal(count_rows("SELECT count(*) FROM engagement_observations", NULL), before);

    /* counts: none, and more than 1,000 */
    assert_int_equal(ls_engage(&E, ls_rid(&E, rid), obs, 0, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("observations"));
    Herald__V1__EngagementObservation **many = xcalloc(1001, sizeof *many);
    for (size_t i = 0; i < 1001; i++)
        many[i] = &o[4];
    assert_int_equal(ls_engage(&E, ls_rid(&E, rid), many, 1001, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("observations"));
    free(many);
    assert_int_equal(count_rows("SELECT count(*) FROM engagement_observations", NULL), before);
}

/* ---- outcomes, arms, Recommend ---- */

static void outcome_job_feeds_arms_and_recommend(void **state)
{
    (void)state;
    enum { N = 16 };
    char ids[N][37];
    Herald__V1__EngagementObservation o[N];
    Herald__V1__EngagementObservation *obs[N];
    static const char *const topics[] = { "nutrition", "stress", "longevity", "hydration" };
    for (int i = 0; i < N; i++) {
        bool good = i % 2 == 0;
        int64_t pub = NOW - (int64_t)(20 - i) * DAY_MS;
        ls_post(&E, "beta", good ? "myth_busting" : "practical_tip", "storyteller", topics[i % 4],
                pub, NULL, ids[i]);
        int64_t eng = good ? 90 + i : 12 + i % 3;
        /* observed 20 h after publishing: before the 24 h checkpoint */
        ls_obs(&o[i], ids[i], pub + 20 * HOUR_MS, 1000, eng * 7 / 10, eng / 10, eng / 10,
               eng - eng * 7 / 10 - 2 * (eng / 10), good ? 3 : 0);
        obs[i] = &o[i];
    }
    Herald__V1__RecordEngagementResponse *r = NULL;
    db_res *res = NULL;
    char rid[40];
    assert_int_equal(ls_engage(&E, ls_rid(&E, rid), obs, N, &r), 0);
    assert_int_equal(r->accepted, N);
    assert_int_equal(r->outcomes_updated, 0); /* nothing reached its checkpoint in this call */
    herald__v1__record_engagement_response__free_unpacked(r, NULL);
    const char *beta_outcomes = "SELECT count(*) FROM outcomes o JOIN posts p USING (post_id) "
                                "WHERE p.profile_id = 'beta' AND ($1::text IS NULL OR "
                                "o.learnable::text = $1)";
    assert_int_equal(count_rows(beta_outcomes, NULL), 0);

    /* the job: every post scored once; the first 5 only build the baseline */
    outcomes_result jr = ls_job(&E, NOW);
    assert_int_equal(jr.scored, N);
    assert_int_equal(jr.learnable, N - 5);
    assert_int_equal(count_rows(beta_outcomes, NULL), N);
    assert_int_equal(count_rows(beta_outcomes, "true"), N - 5);
    jr = ls_job(&E, NOW);
    assert_int_equal(jr.scored, 0);

    /* the arms: counts and means in the same transaction */
    const char *arm = "SELECT outcome_count FROM arm_stats WHERE profile_id = 'beta' "
                      "AND scope = 'content_type' AND arm_key = $1 AND reward_version = 'v1'";
    assert_int_equal(count_rows(arm, "myth_busting") + count_rows(arm, "practical_tip"), N - 5);
    assert_int_equal(count_rows("SELECT count(*) FROM arm_stats WHERE profile_id = 'beta' AND "
                                "scope = 'content_type' AND sum_reward / n > 0 AND arm_key = $1",
                                "myth_busting"),
                     1);
    assert_int_equal(count_rows("SELECT sum(outcome_count) FROM arm_stats WHERE profile_id = "
                                "'beta' AND scope = 'hour_of_week'",
                                NULL),
                     N - 5);

    /* Recommend sees it */
    int myth = 0, tip = 0;
    const int calls = 40;
    for (int s = 1; s <= calls; s++) {
        Herald__V1__RecommendResponse *rec = NULL;
        assert_int_equal(recommend("beta", (uint64_t)s, 0, &rec), 0);
        myth += strcmp(rec->choice->content_type, "myth_busting") == 0;
        tip += strcmp(rec->choice->content_type, "practical_tip") == 0;
        if (s == 1) {
            const Herald__V1__ArmCandidate *a =
                candidate(rec, HERALD__V1__ARM_SCOPE__ARM_SCOPE_CONTENT_TYPE, "myth_busting");
            const Herald__V1__ArmCandidate *b =
                candidate(rec, HERALD__V1__ARM_SCOPE__ARM_SCOPE_CONTENT_TYPE, "practical_tip");
            assert_non_null(a);
            assert_non_null(b);
            assert_true(a->posterior->n + b->posterior->n == N - 5);
            assert_true(a->posterior->mean > b->posterior->mean);
            assert_true(rec->propensity > 0 && rec->propensity <= 1);
            assert_string_equal(rec->reward_version, "v1");
            assert_true(strlen(rec->decision_id) == 36);
            assert_true(strstr(rec->reason, "content_type") != NULL);
        }
        herald__v1__recommend_response__free_unpacked(rec, NULL);
    }
    assert_true(myth > tip);
    assert_true(tip <= 4);
    /* every call is a logged decision; the chosen arms' pulls went up */
    assert_int_equal(count_rows("SELECT count(*) FROM decisions WHERE profile_id = 'beta' AND "
                                "kind = 'content' AND propensity > 0",
                                NULL),
                     calls);
    assert_int_equal(count_rows("SELECT sum(pulls) FROM arm_stats WHERE profile_id = 'beta' AND "
                                "scope = 'content_type'",
                                NULL),
                     calls);
    /* the same seed, the same draw */
    Herald__V1__RecommendResponse *x = NULL, *y = NULL;
    assert_int_equal(recommend("beta", 777, NOW, &x), 0);
    assert_int_equal(recommend("beta", 777, NOW, &y), 0);
    assert_string_equal(x->choice->content_type, y->choice->content_type);
    assert_string_equal(x->choice->topic, y->choice->topic);
    assert_true(x->propensity == y->propensity);
    assert_true(x->seed == 777);
    herald__v1__recommend_response__free_unpacked(x, NULL);
    herald__v1__recommend_response__free_unpacked(y, NULL);

    /* a late observation (after the checkpoint) scores its post at once */
    char late[37];
    ls_post(&E, "beta", "myth_busting", "truth_seeker", "sleep", NOW - 30 * HOUR_MS, NULL, late);
    assert_int_equal(engage_one(late, NOW - HOUR_MS, 1000, 100, 2, &r), 0);
    assert_int_equal(r->outcomes_updated, 1);
    herald__v1__record_engagement_response__free_unpacked(r, NULL);
    assert_int_equal(count_rows("SELECT count(*) FROM outcomes WHERE post_id = $1::uuid AND "
                                "learnable",
                                late),
                     1);

    /* a reply feeds the reply tier of the author it answered */
    char reply[37], opp[37];
    res = NULL;
    assert_int_equal(db_run(E.db, 10000, "test_opportunity",
                            "INSERT INTO reply_opportunities (profile_id, platform, "
                            "external_post_id, tier, expire_time) VALUES ('beta', 'x', 'ext-1', "
                            "'micro', now() + interval '1 day') RETURNING opportunity_id::text",
                            NULL, &res),
                     ST_OK);
    snprintf(opp, sizeof opp, "%s", db_res_text(res, 0, 0));
    db_res_free(res);
    ls_post(&E, "beta", NULL, NULL, NULL, NOW - 30 * HOUR_MS, NULL, reply);
    db_params rp;
    db_params_init(&rp);
    db_param_text(&rp, opp);
    db_param_text(&rp, reply);
    assert_int_equal(db_run(E.db, 10000, "test_make_reply",
                            "UPDATE posts SET kind = 'reply', reply_to_external_id = 'ext-1', "
                            "reply_opportunity_id = $1::uuid WHERE post_id = $2::uuid",
                            &rp, NULL),
                     ST_OK);
    assert_int_equal(engage_one(reply, NOW - HOUR_MS, 900, 60, 1, &r), 0);
    assert_int_equal(r->outcomes_updated, 1);
    herald__v1__record_engagement_response__free_unpacked(r, NULL);
    assert_int_equal(count_rows("SELECT outcome_count FROM arm_stats WHERE profile_id = 'beta' "
                                "AND scope = 'reply_tier' AND arm_key = $1",
                                "micro"),
                     1);

    /* a post chosen by a simulated decision is recorded, never learnt from */
    char dec[37], sim[37];
    assert_int_equal(db_run(E.db, 10000, "test_decision",
                            "INSERT INTO decisions (profile_id, kind, content_type, voice_style, "
                            "topic, seed, propensity, simulated) VALUES ('beta', 'content', "
                            "'myth_busting', 'storyteller', 'sleep', 1, 0.5, true) "
                            "RETURNING decision_id::text",
                            NULL, &res),
                     ST_OK);
    snprintf(dec, sizeof dec, "%s", db_res_text(res, 0, 0));
    db_res_free(res);
    int64_t before = count_rows(arm, "myth_busting");
    ls_post(&E, "beta", "myth_busting", "storyteller", "sleep", NOW - 30 * HOUR_MS, dec, sim);
    assert_int_equal(engage_one(sim, NOW - HOUR_MS, 1000, 100, 2, &r), 0);
    assert_int_equal(r->outcomes_updated, 1);
    herald__v1__record_engagement_response__free_unpacked(r, NULL);
    assert_int_equal(count_rows("SELECT count(*) FROM outcomes WHERE post_id = $1::uuid AND NOT "
                                "learnable AND learnable_reason LIKE 'simulated%'",
                                sim),
                     1);
    assert_int_equal(count_rows(arm, "myth_busting"), before);

    /* errors */
    assert_int_equal(recommend("nobody", 1, 0, NULL), GRPC_CODE_NOT_FOUND);
    Herald__V1__RecommendRequest req = HERALD__V1__RECOMMEND_REQUEST__INIT;
    req.profile_id = (char *)"beta";
    req.content_type = (char *)"Not a key!";
    assert_int_equal(ls_recommend(&E, &req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("content_type"));
    req.content_type = (char *)"no_such_type";
    assert_int_equal(ls_recommend(&E, &req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("content_type"));
    req.content_type = (char *)"Myth-Busting"; /* normalised, and fixed: propensity 1 there */
    Herald__V1__RecommendResponse *f = NULL;
    assert_int_equal(ls_recommend(&E, &req, &f), 0);
    assert_string_equal(f->choice->content_type, "myth_busting");
    assert_null(candidate(f, HERALD__V1__ARM_SCOPE__ARM_SCOPE_CONTENT_TYPE, "practical_tip"));
    herald__v1__recommend_response__free_unpacked(f, NULL);
}

/* ---- exclusions ---- */

static void set_arm_enabled_and_exclusions(void **state)
{
    (void)state;
    Herald__V1__SetArmEnabledRequest req = HERALD__V1__SET_ARM_ENABLED_REQUEST__INIT;
    Herald__V1__Arm *arm = NULL;
    char rid[40];
    req.request_id = ls_rid(&E, rid);
    req.profile_id = (char *)"beta";
    req.scope = HERALD__V1__ARM_SCOPE__ARM_SCOPE_TOPIC;
    req.key = (char *)"Sleep";
    req.enabled = false;
    req.reason = (char *)"taking a break";
    assert_int_equal(ls_set_arm_enabled(&E, &req, &arm), 0);
    assert_string_equal(arm->key, "sleep");
    assert_false(arm->enabled);
    assert_string_equal(arm->disabled_reason, "taking a break");
    assert_non_null(arm->posterior);
    herald__v1__arm__free_unpacked(arm, NULL);
    /* replay, and the same key for another request */
    assert_int_equal(ls_set_arm_enabled(&E, &req, NULL), 0);
    req.enabled = true;
    assert_int_equal(ls_set_arm_enabled(&E, &req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    req.enabled = false;

    for (int s = 100; s < 130; s++) {
        Herald__V1__RecommendResponse *rec = NULL;
        assert_int_equal(recommend("beta", (uint64_t)s, NOW + 3 * DAY_MS, &rec), 0);
        assert_string_not_equal(rec->choice->topic, "sleep");
        const Herald__V1__ArmCandidate *c =
            candidate(rec, HERALD__V1__ARM_SCOPE__ARM_SCOPE_TOPIC, "sleep");
        assert_non_null(c);
        assert_false(c->eligible);
        assert_string_equal(c->excluded_reason, "disabled");
        assert_true(c->propensity == 0.0);
        herald__v1__recommend_response__free_unpacked(rec, NULL);
    }

    /* errors */
    req.request_id = ls_rid(&E, rid);
    req.profile_id = (char *)"nobody";
    assert_int_equal(ls_set_arm_enabled(&E, &req, NULL), GRPC_CODE_NOT_FOUND);
    req.profile_id = (char *)"beta";
    req.scope = HERALD__V1__ARM_SCOPE__ARM_SCOPE_UNSPECIFIED;
    assert_int_equal(ls_set_arm_enabled(&E, &req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("scope"));
    req.scope = HERALD__V1__ARM_SCOPE__ARM_SCOPE_HOUR_OF_WEEK;
    req.key = (char *)"168";
    assert_int_equal(ls_set_arm_enabled(&E, &req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("key"));
    req.scope = HERALD__V1__ARM_SCOPE__ARM_SCOPE_REPLY_TIER;
    req.key = (char *)"giant";
    assert_int_equal(ls_set_arm_enabled(&E, &req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    req.key = (char *)"MICRO";
    assert_int_equal(ls_set_arm_enabled(&E, &req, &arm), 0);
    assert_string_equal(arm->key, "micro");
    herald__v1__arm__free_unpacked(arm, NULL);
    req.request_id = ls_rid(&E, rid);
    req.scope = HERALD__V1__ARM_SCOPE__ARM_SCOPE_CONTENT_TYPE;
    req.key = (char *)"no_such_type";
    assert_int_equal(ls_set_arm_enabled(&E, &req, NULL), GRPC_CODE_NOT_FOUND);

    /* a topic used within the cooldown of the target time, and one the
     * request excludes, are not eligible */
    char recent[37];
    ls_post(&E, "beta", "myth_busting", "storyteller", "exercise", NOW + 10 * DAY_MS - 3 * HOUR_MS,
            NULL, recent);
    Herald__V1__RecommendRequest rr = HERALD__V1__RECOMMEND_REQUEST__INIT;
    char *ex[] = { (char *)"Stress" };
    rr.profile_id = (char *)"beta";
    rr.target_time = ls_ts(NOW + 10 * DAY_MS);
    rr.exclude_topics = ex;
    rr.n_exclude_topics = 1;
    Herald__V1__RecommendResponse *rec = NULL;
    assert_int_equal(ls_recommend(&E, &rr, &rec), 0);
    const Herald__V1__ArmCandidate *c =
        candidate(rec, HERALD__V1__ARM_SCOPE__ARM_SCOPE_TOPIC, "exercise");
    assert_false(c->eligible);
    assert_non_null(strstr(c->excluded_reason, "within 24 h"));
    c = candidate(rec, HERALD__V1__ARM_SCOPE__ARM_SCOPE_TOPIC, "stress");
    assert_false(c->eligible);
    assert_string_equal(c->excluded_reason, "excluded by the request");
    assert_string_not_equal(rec->choice->topic, "exercise");
    assert_string_not_equal(rec->choice->topic, "stress");
    herald__v1__recommend_response__free_unpacked(rec, NULL);

    /* every topic excluded: nothing to recommend */
    db_res *res = NULL;
    assert_int_equal(
        db_run(E.db, 10000, "test_topics", "SELECT key FROM topics ORDER BY key", NULL, &res),
        ST_OK);
    size_t nt = (size_t)db_res_rows(res);
    char **all = xcalloc(nt, sizeof *all);
    for (size_t i = 0; i < nt; i++)
        all[i] = xstrdup(db_res_text(res, (int)i, 0));
    db_res_free(res);
    rr.exclude_topics = all;
    rr.n_exclude_topics = nt;
    assert_int_equal(ls_recommend(&E, &rr, NULL), GRPC_CODE_FAILED_PRECONDITION);
    for (size_t i = 0; i < nt; i++)
        free(all[i]);
    free(all);

    /* enabled again; a fixed topic is used even when it is disabled */
    req.request_id = ls_rid(&E, rid);
    req.scope = HERALD__V1__ARM_SCOPE__ARM_SCOPE_TOPIC;
    req.key = (char *)"sleep";
    req.enabled = true;
    assert_int_equal(ls_set_arm_enabled(&E, &req, &arm), 0);
    assert_true(arm->enabled);
    assert_string_equal(arm->disabled_reason, "");
    herald__v1__arm__free_unpacked(arm, NULL);
    rr.exclude_topics = NULL;
    rr.n_exclude_topics = 0;
    rr.topic = (char *)"sleep";
    assert_int_equal(ls_recommend(&E, &rr, &rec), 0);
    assert_string_equal(rec->choice->topic, "sleep");
    herald__v1__recommend_response__free_unpacked(rec, NULL);
}

/* ---- insights and best times: cache-aside, never stale ---- */

static const Herald__V1__ScopeInsight *scope_of(const Herald__V1__GetInsightsResponse *r,
                                                Herald__V1__ArmScope s)
{
    for (size_t i = 0; i < r->n_scopes; i++)
        if (r->scopes[i]->scope == s)
            return r->scopes[i];
    return NULL;
}

static void insights_cached_and_invalidated(void **state)
{
    (void)state;
    Herald__V1__GetInsightsRequest req = HERALD__V1__GET_INSIGHTS_REQUEST__INIT;
    Herald__V1__GetInsightsResponse *a = NULL, *b = NULL;
    req.profile_id = (char *)"beta";
    req.top_n = 5;
    /* a first read may already be cached from another test; a second one is */
    assert_int_equal(ls_get_insights(&E, &req, &a), 0);
    herald__v1__get_insights_response__free_unpacked(a, NULL);
    assert_int_equal(ls_get_insights(&E, &req, &a), 0);
    assert_true(a->cached);
    assert_string_equal(a->reward_version, "v1");
    assert_int_equal(a->window_days, 30);
    const Herald__V1__ScopeInsight *ct = scope_of(a, HERALD__V1__ARM_SCOPE__ARM_SCOPE_CONTENT_TYPE);
    assert_non_null(ct);
    assert_string_equal(ct->top[0]->key, "myth_busting");
    assert_string_equal(ct->bottom[0]->key, "practical_tip");
    assert_non_null(scope_of(a, HERALD__V1__ARM_SCOPE__ARM_SCOPE_HOUR_OF_WEEK));
    assert_int_equal(a->engagement_trend->n_points, 30);
    bool conv = false;
    for (size_t i = 0; i < a->n_follower_conversion; i++) {
        const Herald__V1__FollowerConversion *f = a->follower_conversion[i];
        if (strcmp(f->content_type, "myth_busting") != 0)
            continue;
        conv = true;
        assert_true(SVC_HAS(f, follows_per_1k_impressions));
        assert_true(f->follows_per_1k_impressions > 1.0);
        assert_true(f->interval->lower <= f->follows_per_1k_impressions);
        assert_true(f->interval->upper >= f->follows_per_1k_impressions);
    }
    assert_true(conv);

    /* a new outcome (story_insight, never seen before) must show at once */
    char post[37];
    Herald__V1__RecordEngagementResponse *r = NULL;
    ls_post(&E, "beta", "story_insight", "storyteller", "habits", NOW - 26 * HOUR_MS, NULL, post);
    assert_int_equal(engage_one(post, NOW - HOUR_MS, 1000, 150, 4, &r), 0);
    assert_int_equal(r->outcomes_updated, 1);
    herald__v1__record_engagement_response__free_unpacked(r, NULL);
    assert_int_equal(ls_get_insights(&E, &req, &b), 0);
    assert_false(b->cached);
    ct = scope_of(b, HERALD__V1__ARM_SCOPE__ARM_SCOPE_CONTENT_TYPE);
    bool seen = false;
    for (size_t i = 0; i < ct->n_top; i++)
        if (strcmp(ct->top[i]->key, "story_insight") == 0)
            seen = ct->top[i]->posterior->n == 1;
    assert_true(seen);
    herald__v1__get_insights_response__free_unpacked(a, NULL);
    herald__v1__get_insights_response__free_unpacked(b, NULL);
    assert_int_equal(ls_get_insights(&E, &req, &b), 0);
    assert_true(b->cached);
    herald__v1__get_insights_response__free_unpacked(b, NULL);

    /* errors */
    req.profile_id = (char *)"nobody";
    assert_int_equal(ls_get_insights(&E, &req, NULL), GRPC_CODE_NOT_FOUND);
    req.profile_id = (char *)"beta";
    req.window_days = 366;
    req.top_n = -1;
    assert_int_equal(ls_get_insights(&E, &req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("window_days"));
    assert_true(has_violation("top_n"));

    /* best times: cached, and a new audience is never served stale */
    Herald__V1__GetBestTimesRequest bt = HERALD__V1__GET_BEST_TIMES_REQUEST__INIT;
    Herald__V1__GetBestTimesResponse *t = NULL;
    bt.profile_id = (char *)"beta";
    assert_int_equal(ls_get_best_times(&E, &bt, NULL), 0);
    assert_int_equal(ls_get_best_times(&E, &bt, &t), 0);
    assert_true(t->cached);
    assert_int_equal(t->n_cells, 168);
    assert_int_equal(t->n_best_hours_of_week, 5);
    assert_string_equal(t->time_zone, "UTC");
    for (size_t i = 0; i < 168; i++) {
        assert_int_equal(t->cells[i]->hour_of_week, (int)i);
        assert_true(t->cells[i]->interval->lower <= t->cells[i]->expected_reward);
        assert_true(t->cells[i]->audience_weight >= 0 && t->cells[i]->audience_weight <= 1);
    }
    herald__v1__get_best_times_response__free_unpacked(t, NULL);
    Herald__V1__UpdateAudienceRequest ua = HERALD__V1__UPDATE_AUDIENCE_REQUEST__INIT;
    Herald__V1__TimeZoneShare z = HERALD__V1__TIME_ZONE_SHARE__INIT;
    Herald__V1__TimeZoneShare *zs[1] = { &z };
    char rid[40];
    z.time_zone = (char *)"Asia/Tokyo";
    z.share = 3;
    ua.request_id = ls_rid(&E, rid);
    ua.profile_id = (char *)"beta";
    ua.time_zones = zs;
    ua.n_time_zones = 1;
    assert_int_equal(ls_update_audience(&E, &ua, NULL), 0);
    bt.top_n = 168;
    assert_int_equal(ls_get_best_times(&E, &bt, &t), 0);
    assert_false(t->cached);
    assert_int_equal(t->n_audience, 1);
    assert_string_equal(t->audience[0]->time_zone, "Asia/Tokyo");
    assert_true(t->audience[0]->share == 1.0);
    assert_int_equal(t->n_best_hours_of_week, 168);
    herald__v1__get_best_times_response__free_unpacked(t, NULL);
    bt.top_n = 169;
    assert_int_equal(ls_get_best_times(&E, &bt, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("top_n"));
    bt.top_n = 0;
    bt.profile_id = (char *)"nobody";
    assert_int_equal(ls_get_best_times(&E, &bt, NULL), GRPC_CODE_NOT_FOUND);
    bt.profile_id = (char *)"Not An Id";
    assert_int_equal(ls_get_best_times(&E, &bt, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("profile_id"));
}

/* ---- cache hits are the stored bytes; a corrupt entry is a miss ---- */

/* m packed into a new buffer the caller frees. */
static uint8_t *packed(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = xmalloc(*len + 1);
    protobuf_c_message_pack(m, b);
    return b;
}

/* Asserts that a and b pack to the same bytes. */
static void assert_same_bytes(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t na = 0, nb = 0;
    uint8_t *pa = packed(a, &na);
    uint8_t *pb = packed(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, na);
    free(pa);
    free(pb);
}

/* redis-cli on heraldd's Redis database; args are appended as given. */
static int redis_cli(const cache_url *u, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int redis_cli(const cache_url *u, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *args = xvasprintf(fmt, ap);
    va_end(ap);
    int rc = u->path[0] != '\0'
                 ? tsh("redis-cli -s %s -n %d %s >/dev/null", u->path, u->db, args)
                 : tsh("redis-cli -h %s -p %d -n %d %s >/dev/null", u->host, u->port, u->db, args);
    free(args);
    return rc;
}

static void hit_is_the_stored_fresh_reply_and_corruption_a_miss(void **state)
{
    (void)state;
    enum { WINDOW = 14, TOP_N = 7, ENV_HEAD = 16 }; /* cache.c: magic, length, FNV-1a 64 */
    static const char tag[] = "\007pb1 herald.v1.GetInsightsResponse\n";
    const size_t tag_len = sizeof tag - 1;
    Herald__V1__GetInsightsRequest req = HERALD__V1__GET_INSIGHTS_REQUEST__INIT;
    Herald__V1__GetInsightsResponse *fresh = NULL, *hit = NULL, *r = NULL;
    req.profile_id = (char *)"beta";
    req.window_days = WINDOW;
    req.top_n = TOP_N;

    /* the key heraldd uses (svc_learning.c), on heraldd's Redis database */
    cache_options o;
    cache_options_init(&o);
    o.url = E.redis;
    o.timeout_ms = 2000;
    char *err = NULL;
    cache *c = cache_new(&o, &err);
    assert_non_null(c);
    cache_conn *cc = cache_open(c);
    cache_url u;
    char uerr[200];
    assert_true(cache_url_parse(E.redis, &u, uerr, sizeof uerr));
    int64_t ver = 0, vtime = 0;
    assert_int_equal(lstore_learning_version(E.db, 5000, "beta", &ver, &vtime), ST_OK);
    char id[128];
    snprintf(id, sizeof id, "beta@%lld|w%d|n%d", (long long)vtime, WINDOW, TOP_N);
    char *key = cache_key(c, "insights", id, ver);
    assert_int_equal(cache_del(cc, key), CACHE_OK);

    /* a miss computes and stores; the hit is that reply, byte for byte, but
     * for cached */
    assert_int_equal(ls_get_insights(&E, &req, &fresh), 0);
    assert_false(fresh->cached);
    assert_int_equal(ls_get_insights(&E, &req, &hit), 0);
    assert_true(hit->cached);
    fresh->cached = true;
    assert_same_bytes(&fresh->base, &hit->base);

    /* stored: the type tag, then the hit's bytes; the tag's first byte is
     * no protobuf field, so no parser takes the entry for a message */
    uint8_t *v = NULL;
    size_t n = 0, hit_len = 0;
    uint8_t *hit_bytes = packed(&hit->base, &hit_len);
    assert_int_equal(cache_get(cc, key, &v, &n), CACHE_OK);
    assert_int_equal(n, tag_len + hit_len);
    assert_memory_equal(v, tag, tag_len);
    assert_memory_equal(v + tag_len, hit_bytes, hit_len);
    assert_null(
        protobuf_c_message_unpack(&herald__v1__get_insights_response__descriptor, NULL, n, v));
    free(v);

    /* each a miss, answered with a freshly computed reply, after which the
     * entry is rewritten and hits again */
    uint8_t *other = xmalloc(hit_len + 64);
    static const char other_tag[] = "\007pb1 herald.v1.GetBestTimesResponse\n";
    memcpy(other, other_tag, sizeof other_tag - 1);
    memcpy(other + sizeof other_tag - 1, hit_bytes, hit_len);
    for (int k = 0; k < 4; k++) {
        switch (k) {
        case 0: /* one byte of the message changed in Redis */
            assert_int_equal(redis_cli(&u, "SETRANGE '%s' %zu '%c'", key, ENV_HEAD + tag_len + 2,
                                       hit_bytes[2] == 'X' ? 'Y' : 'X'),
                             0);
            break;
        case 1: /* the tail cut off */
            assert_int_equal(redis_cli(&u,
                                       "EVAL \"local v = redis.call('GET', KEYS[1]) return "
                                       "redis.call('SET', KEYS[1], string.sub(v, 1, -4))\" 1 '%s'",
                                       key),
                             0);
            break;
        case 2: /* a sound entry of the older, untagged layout */
            assert_int_equal(cache_set(cc, key, hit_bytes, hit_len, 60), CACHE_OK);
            break;
        default: /* a sound entry tagged with another type */
            assert_int_equal(cache_set(cc, key, other, sizeof other_tag - 1 + hit_len, 60),
                             CACHE_OK);
            break;
        }
        Herald__V1__GetInsightsResponse *again = NULL;
        assert_int_equal(ls_get_insights(&E, &req, &r), 0);
        assert_false(r->cached);
        assert_string_equal(r->profile_id, "beta");
        assert_int_equal(r->window_days, WINDOW);
        assert_int_equal(r->n_scopes, hit->n_scopes);
        assert_string_equal(r->reward_version, hit->reward_version);
        assert_int_equal(ls_get_insights(&E, &req, &again), 0);
        assert_true(again->cached);
        r->cached = true;
        assert_same_bytes(&r->base, &again->base);
        herald__v1__get_insights_response__free_unpacked(r, NULL);
        herald__v1__get_insights_response__free_unpacked(again, NULL);
    }

    /* GetBestTimes: the same, byte for byte */
    Herald__V1__GetBestTimesRequest bt = HERALD__V1__GET_BEST_TIMES_REQUEST__INIT;
    Herald__V1__GetBestTimesResponse *t1 = NULL, *t2 = NULL;
    bt.profile_id = (char *)"beta";
    bt.top_n = 11;
    assert_int_equal(ls_get_best_times(&E, &bt, &t1), 0);
    assert_int_equal(ls_get_best_times(&E, &bt, &t2), 0);
    assert_true(t2->cached);
    if (!t1->cached) /* else another test cached it first: t1 is a hit too */
        t1->cached = true;
    assert_same_bytes(&t1->base, &t2->base);
    herald__v1__get_best_times_response__free_unpacked(t1, NULL);
    herald__v1__get_best_times_response__free_unpacked(t2, NULL);

    free(other);
    free(hit_bytes);
    herald__v1__get_insights_response__free_unpacked(fresh, NULL);
    herald__v1__get_insights_response__free_unpacked(hit, NULL);
    free(key);
    cache_close(cc);
    cache_free(c);
}

/* ---- ListArms ---- */

static void list_arms_paging(void **state)
{
    (void)state;
    Herald__V1__ListArmsRequest req = HERALD__V1__LIST_ARMS_REQUEST__INIT;
    Herald__V1__ListArmsResponse *all = NULL, *page = NULL;
    req.profile_id = (char *)"beta";
    req.page_size = 500;
    assert_int_equal(ls_list_arms(&E, &req, &all), 0);
    assert_true(all->n_arms > 20); /* the catalog's keys plus hours and a reply tier */
    assert_string_equal(all->next_page_token, "");
    assert_string_equal(all->reward_version, "v1");
    for (size_t i = 1; i < all->n_arms; i++)
        assert_true(all->arms[i - 1]->scope <= all->arms[i]->scope);

    req.page_size = 7;
    size_t k = 0;
    char *token = xstrdup("");
    for (int guard = 0; guard < 100; guard++) {
        req.page_token = token;
        assert_int_equal(ls_list_arms(&E, &req, &page), 0);
        assert_true(page->n_arms <= 7);
        for (size_t i = 0; i < page->n_arms; i++, k++) {
            assert_true(k < all->n_arms);
            assert_int_equal(page->arms[i]->scope, all->arms[k]->scope);
            assert_string_equal(page->arms[i]->key, all->arms[k]->key);
        }
        free(token);
        token = xstrdup(page->next_page_token);
        herald__v1__list_arms_response__free_unpacked(page, NULL);
        if (token[0] == '\0')
            break;
    }
    free(token);
    assert_int_equal(k, all->n_arms);
    herald__v1__list_arms_response__free_unpacked(all, NULL);

    /* a token is bound to its filters and tamper-evident */
    req.page_token = (char *)"";
    assert_int_equal(ls_list_arms(&E, &req, &page), 0);
    char *t = xstrdup(page->next_page_token);
    herald__v1__list_arms_response__free_unpacked(page, NULL);
    req.page_token = t;
    req.scope = HERALD__V1__ARM_SCOPE__ARM_SCOPE_TOPIC;
    assert_int_equal(ls_list_arms(&E, &req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("page_token"));
    req.scope = 0;
    t[strlen(t) / 2] = t[strlen(t) / 2] == 'A' ? 'B' : 'A';
    assert_int_equal(ls_list_arms(&E, &req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    free(t);

    /* one scope; enabled only */
    Herald__V1__SetArmEnabledRequest s = HERALD__V1__SET_ARM_ENABLED_REQUEST__INIT;
    char rid[40];
    s.request_id = ls_rid(&E, rid);
    s.profile_id = (char *)"beta";
    s.scope = HERALD__V1__ARM_SCOPE__ARM_SCOPE_VOICE_STYLE;
    s.key = (char *)"storyteller";
    assert_int_equal(ls_set_arm_enabled(&E, &s, NULL), 0);
    req.page_token = (char *)"";
    req.page_size = 0;
    req.scope = HERALD__V1__ARM_SCOPE__ARM_SCOPE_VOICE_STYLE;
    assert_int_equal(ls_list_arms(&E, &req, &page), 0);
    size_t n_all = page->n_arms;
    bool found = false;
    for (size_t i = 0; i < page->n_arms; i++) {
        assert_int_equal(page->arms[i]->scope, HERALD__V1__ARM_SCOPE__ARM_SCOPE_VOICE_STYLE);
        if (strcmp(page->arms[i]->key, "storyteller") == 0) {
            found = true;
            assert_false(page->arms[i]->enabled);
            assert_true(page->arms[i]->posterior->n > 0);
            assert_non_null(page->arms[i]->update_time);
        }
    }
    assert_true(found);
    herald__v1__list_arms_response__free_unpacked(page, NULL);
    req.enabled_only = true;
    assert_int_equal(ls_list_arms(&E, &req, &page), 0);
    assert_int_equal(page->n_arms, n_all - 1);
    herald__v1__list_arms_response__free_unpacked(page, NULL);
    s.request_id = ls_rid(&E, rid);
    s.enabled = true;
    assert_int_equal(ls_set_arm_enabled(&E, &s, NULL), 0);

    req.profile_id = (char *)"nobody";
    assert_int_equal(ls_list_arms(&E, &req, NULL), GRPC_CODE_NOT_FOUND);
    req.profile_id = (char *)"beta";
    req.page_size = -1;
    assert_int_equal(ls_list_arms(&E, &req, NULL), GRPC_CODE_INVALID_ARGUMENT);
}

/* ---- replies and follower snapshots ---- */

static void replies_and_snapshots(void **state)
{
    (void)state;
    Herald__V1__ReplyRecord r[3];
    Herald__V1__ReplyRecord *rs[3] = { &r[0], &r[1], &r[2] };
    static const char *const texts[] = { "This is really helpful, thank you so much!",
                                         "Does this also work for teenagers?", "you are an idiot" };
    char rid[40];
    for (int i = 0; i < 3; i++) {
        herald__v1__reply_record__init(&r[i]);
        r[i].post_id = P1;
        r[i].external_reply_id = xasprintf("reply-%d", i);
        r[i].text = (char *)texts[i];
        r[i].create_time = ls_ts(NOW - HOUR_MS);
    }
    Herald__V1__RecordRepliesRequest req = HERALD__V1__RECORD_REPLIES_REQUEST__INIT;
    Herald__V1__RecordRepliesResponse *out = NULL;
    req.request_id = ls_rid(&E, rid);
    req.replies = rs;
    req.n_replies = 3;
    assert_int_equal(ls_record_replies(&E, &req, &out), 0);
    assert_int_equal(out->accepted, 3);
    assert_int_equal(out->n_sentiments, 3);
    assert_int_equal(out->sentiments[0]->label,
                     HERALD__V1__SENTIMENT_LABEL__SENTIMENT_LABEL_POSITIVE);
    assert_true(out->sentiments[0]->score > 0);
    assert_int_equal(out->sentiments[1]->label,
                     HERALD__V1__SENTIMENT_LABEL__SENTIMENT_LABEL_QUESTION);
    assert_int_equal(out->sentiments[2]->label,
                     HERALD__V1__SENTIMENT_LABEL__SENTIMENT_LABEL_HOSTILE);
    assert_int_equal(out->n_summaries, 1);
    assert_int_equal(out->summaries[0]->reply_count, 3);
    assert_true(SVC_HAS(out->summaries[0], mean_score));
    assert_int_equal(out->summaries[0]->n_counts, 3);
    herald__v1__record_replies_response__free_unpacked(out, NULL);
    /* again, under a new request_id: duplicates, same summary */
    req.request_id = ls_rid(&E, rid);
    assert_int_equal(ls_record_replies(&E, &req, &out), 0);
    assert_int_equal(out->accepted, 0);
    assert_int_equal(out->duplicates, 3);
    assert_int_equal(out->summaries[0]->reply_count, 3);
    herald__v1__record_replies_response__free_unpacked(out, NULL);
    /* errors */
    r[0].post_id = (char *)"00000000-0000-4000-8000-000000000001";
    r[1].text = (char *)"";
    req.request_id = ls_rid(&E, rid);
    assert_int_equal(ls_record_replies(&E, &req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("replies[1].text"));
    r[1].text = (char *)texts[1];
    assert_int_equal(ls_record_replies(&E, &req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("replies[0].post_id"));
    for (int i = 0; i < 3; i++)
        free(r[i].external_reply_id);

    Herald__V1__FollowerSnapshot s[2];
    Herald__V1__FollowerSnapshot *ss[2] = { &s[0], &s[1] };
    for (int i = 0; i < 2; i++) {
        herald__v1__follower_snapshot__init(&s[i]);
        s[i].profile_id = (char *)"alpha";
        s[i].observe_time = ls_ts(NOW - (2 - i) * HOUR_MS);
        s[i].follower_count = 100 + i;
    }
    s[1].following_count = 42;
    s[1].following_count_opt_case =
        HERALD__V1__FOLLOWER_SNAPSHOT__FOLLOWING_COUNT_OPT_FOLLOWING_COUNT;
    Herald__V1__RecordFollowerSnapshotsRequest sr =
        HERALD__V1__RECORD_FOLLOWER_SNAPSHOTS_REQUEST__INIT;
    Herald__V1__RecordFollowerSnapshotsResponse *so = NULL;
    sr.request_id = ls_rid(&E, rid);
    sr.snapshots = ss;
    sr.n_snapshots = 2;
    assert_int_equal(ls_record_follower_snapshots(&E, &sr, &so), 0);
    assert_int_equal(so->accepted, 2);
    herald__v1__record_follower_snapshots_response__free_unpacked(so, NULL);
    assert_int_equal(count_rows("SELECT count(*) FROM follower_snapshots WHERE profile_id = $1 "
                                "AND following_count IS NULL AND follower_count = 100",
                                "alpha"),
                     1);
    sr.request_id = ls_rid(&E, rid);
    assert_int_equal(ls_record_follower_snapshots(&E, &sr, &so), 0);
    assert_int_equal(so->duplicates, 2);
    herald__v1__record_follower_snapshots_response__free_unpacked(so, NULL);
    s[1].profile_id = (char *)"nobody";
    sr.request_id = ls_rid(&E, rid);
    assert_int_equal(ls_record_follower_snapshots(&E, &sr, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("snapshots[1].profile_id"));
    s[1].profile_id = (char *)"alpha";
    s[0].follower_count = -1;
    assert_int_equal(ls_record_follower_snapshots(&E, &sr, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("snapshots[0].follower_count"));
}

/* ---- topics and trends ---- */

static int upsert(const char *profile, const char *topic, const char *name, const int64_t *counts,
                  int n, int64_t end_ms, Herald__V1__UpsertTopicsResponse **out)
{
    Herald__V1__TopicObservation o[16];
    Herald__V1__TopicObservation *os[16];
    char rid[40];
    for (int i = 0; i < n; i++) {
        herald__v1__topic_observation__init(&o[i]);
        o[i].topic = (char *)topic;
        o[i].display_name = (char *)name;
        o[i].mention_count = counts[i];
        o[i].observe_time = ls_ts(end_ms - (int64_t)(n - 1 - i) * HOUR_MS);
        os[i] = &o[i];
    }
    Herald__V1__UpsertTopicsRequest req = HERALD__V1__UPSERT_TOPICS_REQUEST__INIT;
    req.request_id = ls_rid(&E, rid);
    req.profile_id = (char *)(profile != NULL ? profile : "");
    req.observations = os;
    req.n_observations = (size_t)n;
    return ls_upsert_topics(&E, &req, out);
}

static void topics_and_trends(void **state)
{
    (void)state;
    static const int64_t rising[] = { 5, 8, 13, 21, 34, 55, 89, 144 };
    static const int64_t flat[] = { 100, 100, 100, 100, 100, 100, 100, 100 };
    Herald__V1__UpsertTopicsResponse *u = NULL;
    assert_int_equal(upsert(NULL, "Cold-Plunge", "Cold plunge", rising, 8, NOW - HOUR_MS, &u), 0);
    assert_int_equal(u->accepted, 8);
    assert_int_equal(u->n_trends, 1);
    assert_string_equal(u->trends[0]->topic, "cold_plunge");
    assert_true(u->trends[0]->rising);
    assert_false(u->trends[0]->in_catalog);
    herald__v1__upsert_topics_response__free_unpacked(u, NULL);
    assert_int_equal(upsert(NULL, "sleep", "", flat, 8, NOW - HOUR_MS, NULL), 0);
    /* the same observations again: duplicates, nothing moves */
    assert_int_equal(upsert(NULL, "sleep", "", flat, 8, NOW - HOUR_MS, &u), 0);
    assert_int_equal(u->accepted, 0);
    assert_int_equal(u->duplicates, 8);
    assert_true(fabs(u->trends[0]->velocity_per_hour - 100.0) < 1.0);
    assert_int_equal(u->trends[0]->mentions_24h, 800);
    herald__v1__upsert_topics_response__free_unpacked(u, NULL);

    Herald__V1__ListTrendsRequest lr = HERALD__V1__LIST_TRENDS_REQUEST__INIT;
    Herald__V1__ListTrendsResponse *l = NULL;
    assert_int_equal(ls_list_trends(&E, &lr, &l), 0);
    assert_int_equal(l->n_trends, 2);
    assert_string_equal(l->trends[0]->topic, "cold_plunge");
    assert_string_equal(l->trends[0]->display_name, "Cold plunge");
    assert_true(l->trends[0]->trend_score > l->trends[1]->trend_score);
    assert_false(l->trends[1]->rising);
    assert_true(l->trends[1]->in_catalog);
    herald__v1__list_trends_response__free_unpacked(l, NULL);
    lr.rising_only = true;
    assert_int_equal(ls_list_trends(&E, &lr, &l), 0);
    assert_int_equal(l->n_trends, 1);
    assert_string_equal(l->trends[0]->topic, "cold_plunge");
    herald__v1__list_trends_response__free_unpacked(l, NULL);
    lr.rising_only = false;
    lr.catalog_only = true;
    assert_int_equal(ls_list_trends(&E, &lr, &l), 0);
    assert_int_equal(l->n_trends, 1);
    assert_string_equal(l->trends[0]->topic, "sleep");
    herald__v1__list_trends_response__free_unpacked(l, NULL);
    /* paging */
    lr.catalog_only = false;
    lr.page_size = 1;
    assert_int_equal(ls_list_trends(&E, &lr, &l), 0);
    assert_int_equal(l->n_trends, 1);
    assert_string_equal(l->trends[0]->topic, "cold_plunge");
    char *tok = xstrdup(l->next_page_token);
    herald__v1__list_trends_response__free_unpacked(l, NULL);
    assert_true(tok[0] != '\0');
    lr.page_token = tok;
    assert_int_equal(ls_list_trends(&E, &lr, &l), 0);
    assert_int_equal(l->n_trends, 1);
    assert_string_equal(l->trends[0]->topic, "sleep");
    assert_string_equal(l->next_page_token, "");
    herald__v1__list_trends_response__free_unpacked(l, NULL);
    lr.rising_only = true; /* another filter: the token does not apply */
    assert_int_equal(ls_list_trends(&E, &lr, NULL), GRPC_CODE_INVALID_ARGUMENT);
    free(tok);

    /* a profile's own trends are apart from the global ones */
    assert_int_equal(upsert("alpha", "gut_health", "Gut health", rising, 4, NOW, NULL), 0);
    Herald__V1__ListTrendsRequest pr = HERALD__V1__LIST_TRENDS_REQUEST__INIT;
    pr.profile_id = (char *)"alpha";
    assert_int_equal(ls_list_trends(&E, &pr, &l), 0);
    assert_int_equal(l->n_trends, 1);
    assert_string_equal(l->trends[0]->topic, "gut_health");
    herald__v1__list_trends_response__free_unpacked(l, NULL);

    /* errors */
    Herald__V1__ListTrendsRequest bad = HERALD__V1__LIST_TRENDS_REQUEST__INIT;
    bad.page_size = -1;
    bad.page_token = (char *)"garbage";
    assert_int_equal(ls_list_trends(&E, &bad, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("page_size"));
    assert_true(has_violation("page_token"));
    assert_int_equal(upsert(NULL, "_bad", "", flat, 1, NOW, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("observations[0].topic"));
    assert_int_equal(upsert("nobody", "sleep", "", flat, 1, NOW, NULL), GRPC_CODE_NOT_FOUND);
    assert_int_equal(upsert(NULL, "sleep", "", flat, 1, NOW + DAY_MS, NULL),
                     GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("observations[0].observe_time"));
}

/* ---- audience ---- */

static void audience_validation(void **state)
{
    (void)state;
    Herald__V1__UpdateAudienceRequest req = HERALD__V1__UPDATE_AUDIENCE_REQUEST__INIT;
    Herald__V1__TimeZoneShare z[3];
    Herald__V1__TimeZoneShare *zs[3] = { &z[0], &z[1], &z[2] };
    Herald__V1__Audience *a = NULL;
    char rid[40];
    for (int i = 0; i < 3; i++)
        herald__v1__time_zone_share__init(&z[i]);
    z[0].time_zone = (char *)"Mars/Olympus_Mons";
    z[0].share = 1;
    z[1].time_zone = (char *)"Europe/Paris";
    z[1].share = 0;
    z[2].time_zone = (char *)"Europe/Paris";
    z[2].share = 1;
    req.request_id = ls_rid(&E, rid);
    req.profile_id = (char *)"alpha";
    req.time_zones = zs;
    req.n_time_zones = 3;
    req.source = (char *)"x_analytics";
    assert_int_equal(ls_update_audience(&E, &req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("time_zones[0].time_zone"));
    assert_true(has_violation("time_zones[1].share"));
    assert_true(has_violation("time_zones[2].time_zone"));
    req.n_time_zones = 0;
    assert_int_equal(ls_update_audience(&E, &req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("time_zones"));

    z[0].time_zone = (char *)"America/New_York";
    z[0].share = 2;
    z[1].time_zone = (char *)"Europe/Paris";
    z[1].share = 6;
    req.n_time_zones = 2;
    assert_int_equal(ls_update_audience(&E, &req, &a), 0);
    assert_int_equal(a->n_time_zones, 2);
    assert_true(fabs(a->time_zones[0]->share - 0.25) < 1e-12);
    assert_true(fabs(a->time_zones[1]->share - 0.75) < 1e-12);
    assert_string_equal(a->source, "x_analytics");
    assert_non_null(a->update_time);
    herald__v1__audience__free_unpacked(a, NULL);
    req.request_id = ls_rid(&E, rid);
    req.profile_id = (char *)"nobody";
    assert_int_equal(ls_update_audience(&E, &req, NULL), GRPC_CODE_NOT_FOUND);
}

/* ---- RecomputeOutcomes ---- */

static char *rewards_snapshot(const char *version)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, version);
    assert_int_equal(
        db_run(E.db, 10000, "test_rewards",
               "SELECT COALESCE(string_agg(post_id::text || '=' || "
               "COALESCE(round(reward::numeric, 9)::text, '-') || learnable::text, ',' "
               "ORDER BY post_id), '') FROM outcomes WHERE reward_version = $1",
               &p, &res),
        ST_OK);
    char *s = xstrdup(db_res_text(res, 0, 0));
    db_res_free(res);
    return s;
}

static void recompute_outcomes(void **state)
{
    (void)state;
    Herald__V1__RecomputeOutcomesRequest req = HERALD__V1__RECOMPUTE_OUTCOMES_REQUEST__INIT;
    Herald__V1__RecomputeOutcomesResponse *r = NULL;
    char rid[40];
    int64_t v1_outcomes =
        count_rows("SELECT count(*) FROM outcomes WHERE reward_version = $1", "v1");
    req.request_id = ls_rid(&E, rid);
    req.reward_version = (char *)"v2";
    assert_int_equal(ls_recompute_outcomes(&E, &req, &r), 0);
    assert_string_equal(r->reward_version, "v2");
    assert_string_equal(r->previous_reward_version, "v1");
    assert_true(r->outcomes >= v1_outcomes);
    assert_true(r->arms > 0);
    int64_t n2 = r->outcomes;
    herald__v1__recompute_outcomes_response__free_unpacked(r, NULL);
    assert_int_equal(count_rows("SELECT count(*) FROM outcomes WHERE reward_version = $1", "v2"),
                     n2);
    assert_int_equal(count_rows("SELECT count(*) FROM reward_versions WHERE is_current AND "
                                "reward_version = $1",
                                "v2"),
                     1);
    /* the arms now answer under v2 */
    Herald__V1__RecommendResponse *rec = NULL;
    assert_int_equal(recommend("beta", 5, 0, &rec), 0);
    assert_string_equal(rec->reward_version, "v2");
    herald__v1__recommend_response__free_unpacked(rec, NULL);
    /* deterministic: again gives the same outcomes */
    char *first = rewards_snapshot("v2");
    req.request_id = ls_rid(&E, rid);
    assert_int_equal(ls_recompute_outcomes(&E, &req, &r), 0);
    assert_string_equal(r->previous_reward_version, "v2");
    assert_int_equal(r->outcomes, n2);
    herald__v1__recompute_outcomes_response__free_unpacked(r, NULL);
    char *second = rewards_snapshot("v2");
    assert_string_equal(first, second);
    free(first);
    free(second);

    /* one profile only under the active version; not another version */
    req.request_id = ls_rid(&E, rid);
    req.profile_id = (char *)"beta";
    req.reward_version = (char *)"v1";
    assert_int_equal(ls_recompute_outcomes(&E, &req, NULL), GRPC_CODE_FAILED_PRECONDITION);
    req.reward_version = (char *)"v9";
    assert_int_equal(ls_recompute_outcomes(&E, &req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(has_violation("reward_version"));
    req.reward_version = (char *)"v2";
    req.profile_id = (char *)"nobody";
    assert_int_equal(ls_recompute_outcomes(&E, &req, NULL), GRPC_CODE_NOT_FOUND);

    /* back to v1: the v1 arms are rebuilt from the same history */
    char *v1_before = rewards_snapshot("v1");
    req.request_id = ls_rid(&E, rid);
    req.profile_id = (char *)"";
    req.reward_version = (char *)"v1";
    assert_int_equal(ls_recompute_outcomes(&E, &req, &r), 0);
    assert_string_equal(r->previous_reward_version, "v2");
    herald__v1__recompute_outcomes_response__free_unpacked(r, NULL);
    char *v1_after = rewards_snapshot("v1");
    /* online scoring and the recomputation agree (same baselines, same order) */
    assert_string_equal(v1_before, v1_after);
    free(v1_before);
    free(v1_after);
    assert_int_equal(count_rows("SELECT count(*) FROM reward_versions WHERE is_current AND "
                                "reward_version = $1",
                                "v1"),
                     1);
}

/* heraldd runs the checkpoint job itself (main.c registers it): a second
 * heraldd on its own database, with a 1-hour checkpoint and the job every
 * second, scores a post whose only observation came before the checkpoint,
 * without the test touching the job. */
static void heraldd_runs_the_outcome_job(void **state)
{
    (void)state;
    static const char *const extra[] = { "HERALD_LEARNING_CHECKPOINT=1h",
                                         "HERALD_LEARNING_JOB_INTERVAL=1s", NULL };
    ls_env e2;
    assert_true(ls_setup(&e2, "learning_job", extra, NULL));
    assert_int_equal(ls_profile(&e2, "gamma", "UTC", 24), 0);
    char post[37], rid[40];
    int64_t now = now_real_ms();
    ls_post(&e2, "gamma", "myth_busting", "storyteller", "sleep", now - 2 * HOUR_MS, NULL, post);
    Herald__V1__EngagementObservation o;
    Herald__V1__EngagementObservation *obs[1] = { &o };
    Herald__V1__RecordEngagementResponse *r = NULL;
    ls_obs(&o, post, now - 90 * 60000, 800, 20, 3, 2, 1, 1);
    assert_int_equal(ls_engage(&e2, ls_rid(&e2, rid), obs, 1, &r), 0);
    assert_int_equal(r->outcomes_updated, 0); /* observed before its checkpoint */
    herald__v1__record_engagement_response__free_unpacked(r, NULL);
    int64_t n = 0;
    for (int i = 0; i < 150 && n == 0; i++) { /* at most 15 s */
        n = ls_int(&e2, "SELECT count(*) FROM outcomes WHERE post_id = $1::uuid", post);
        if (n == 0)
            hd_sleep_ms(100);
    }
    assert_int_equal(n, 1);
    /* the first post of a profile only starts its baseline */
    assert_int_equal(ls_int(&e2,
                            "SELECT count(*) FROM outcomes WHERE post_id = $1::uuid AND "
                            "NOT learnable AND engagement_rate IS NOT NULL",
                            post),
                     1);
    assert_int_equal(ls_teardown(&e2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(engagement_idempotent_and_nulls),
        cmocka_unit_test(engagement_batch_rejected_whole),
        cmocka_unit_test(outcome_job_feeds_arms_and_recommend),
        cmocka_unit_test(set_arm_enabled_and_exclusions),
        cmocka_unit_test(insights_cached_and_invalidated),
        cmocka_unit_test(hit_is_the_stored_fresh_reply_and_corruption_a_miss),
        cmocka_unit_test(list_arms_paging),
        cmocka_unit_test(replies_and_snapshots),
        cmocka_unit_test(topics_and_trends),
        cmocka_unit_test(audience_validation),
        cmocka_unit_test(recompute_outcomes),
        cmocka_unit_test(heraldd_runs_the_outcome_job),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
