/* test_learning_svc_support.h - a real heraldd for LearningService tests,
 * the simulation and the benchmark: its own database on the services
 * fixture, typed calls through the C client's stubs
 * (herald__v1__learning_service__* over herald_stub), posts written with
 * SQL (GenerateDraft is another issue's), and the outcome job run directly
 * (outcomes.h) with a clock of the caller's choosing. Header-only (static
 * functions); one thread uses the stubs unless noted. */
#ifndef HERALD_TEST_LEARNING_SVC_SUPPORT_H
#define HERALD_TEST_LEARNING_SVC_SUPPORT_H

#include "google/protobuf/timestamp.pb-c.h"
#include "herald/v1/learning.pb-c.h"
#include "outcomes.h"
#include "svc.h"
#include "test_db_support.h"
#include "test_profiles_support.h"

#define LS "/herald.v1.LearningService/"
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

typedef struct ls_env {
    hd hd;
    char *admin, *url, *dbname, *redis;
    char dir[128];
    herald_stub *learn; /* LearningService */
    herald_stub *ops;   /* OpsService */
    db_conn *db;        /* the test's own connection (SQL set-up, the job) */
    learning_config lc; /* as heraldd runs it */
    unsigned rid;
} ls_env;

/* A copy of m (pack + unpack) the caller frees with
 * protobuf_c_message_free_unpacked. */
static ProtobufCMessage *ls_copy(const ProtobufCMessage *m) __attribute__((unused));
static ProtobufCMessage *ls_copy(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = xmalloc(n + 1);
    protobuf_c_message_pack(m, buf);
    ProtobufCMessage *c = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
    free(buf);
    return c;
}

typedef struct ls_got {
    ProtobufCMessage *msg;
    int calls;
} ls_got;

/* ls_<method>(env, req, &reply): one typed call through the stub; returns
 * the gRPC code, *out (may be NULL) a copy of the reply or NULL. */
#define LS_METHOD(method, ReqT, RespT)                                                             \
    static void ls_on_##method(const RespT *m, void *d)                                            \
    {                                                                                              \
        ls_got *g = d;                                                                             \
        g->calls++;                                                                                \
        if (m != NULL)                                                                             \
            g->msg = ls_copy(&m->base);                                                            \
    }                                                                                              \
    static int ls_##method(ls_env *e, const ReqT *req, RespT **out) __attribute__((unused));       \
    static int ls_##method(ls_env *e, const ReqT *req, RespT **out)                                \
    {                                                                                              \
        ls_got g = { 0 };                                                                          \
        herald__v1__learning_service__##method(herald_stub_service(e->learn), req, ls_on_##method, \
                                               &g);                                                \
        if (out != NULL)                                                                           \
            *out = (RespT *)g.msg;                                                                 \
        else if (g.msg != NULL)                                                                    \
            protobuf_c_message_free_unpacked(g.msg, NULL);                                         \
        return herald_stub_status(e->learn)->code;                                                 \
    }

LS_METHOD(record_engagement, Herald__V1__RecordEngagementRequest,
          Herald__V1__RecordEngagementResponse)
LS_METHOD(record_follower_snapshots, Herald__V1__RecordFollowerSnapshotsRequest,
          Herald__V1__RecordFollowerSnapshotsResponse)
LS_METHOD(record_replies, Herald__V1__RecordRepliesRequest, Herald__V1__RecordRepliesResponse)
LS_METHOD(recompute_outcomes, Herald__V1__RecomputeOutcomesRequest,
          Herald__V1__RecomputeOutcomesResponse)
LS_METHOD(recommend, Herald__V1__RecommendRequest, Herald__V1__RecommendResponse)
LS_METHOD(get_insights, Herald__V1__GetInsightsRequest, Herald__V1__GetInsightsResponse)
LS_METHOD(get_best_times, Herald__V1__GetBestTimesRequest, Herald__V1__GetBestTimesResponse)
LS_METHOD(list_arms, Herald__V1__ListArmsRequest, Herald__V1__ListArmsResponse)
LS_METHOD(set_arm_enabled, Herald__V1__SetArmEnabledRequest, Herald__V1__Arm)
LS_METHOD(list_trends, Herald__V1__ListTrendsRequest, Herald__V1__ListTrendsResponse)
LS_METHOD(upsert_topics, Herald__V1__UpsertTopicsRequest, Herald__V1__UpsertTopicsResponse)
LS_METHOD(update_audience, Herald__V1__UpdateAudienceRequest, Herald__V1__Audience)

static void ls_on_profile(const Herald__V1__Profile *m, void *d)
{
    ls_got *g = d;
    g->calls++;
    if (m != NULL)
        g->msg = ls_copy(&m->base);
}

static const herald_status *ls_status(ls_env *e) __attribute__((unused));
static const herald_status *ls_status(ls_env *e)
{
    return herald_stub_status(e->learn);
}

static char *ls_rid(ls_env *e, char out[40]) __attribute__((unused));
static char *ls_rid(ls_env *e, char out[40])
{
    rid_make(out, 6, ++e->rid);
    return out;
}

/* A Timestamp at epoch ms (static storage rotates over 64 slots). */
static Google__Protobuf__Timestamp *ls_ts(int64_t ms) __attribute__((unused));
static Google__Protobuf__Timestamp *ls_ts(int64_t ms)
{
    static Google__Protobuf__Timestamp slots[64];
    static unsigned next;
    Google__Protobuf__Timestamp *t = &slots[next++ % 64];
    google__protobuf__timestamp__init(t);
    t->seconds = ms / 1000;
    t->nanos = (int32_t)(ms % 1000) * 1000000;
    if (t->nanos < 0) {
        t->seconds--;
        t->nanos += 1000000000;
    }
    return t;
}

/* Starts heraldd (extra: NAME=value settings, may be NULL; heraldd's own
 * outcome job runs once a day unless extra sets HERALD_LEARNING_JOB_INTERVAL)
 * on a fresh database; lc gets the learning settings the caller passed (as
 * heraldd runs them). Exits 77 when the services fixture is absent. */
static bool ls_setup(ls_env *e, const char *tag, const char *const *extra,
                     const learning_config *lc) __attribute__((unused));
static bool ls_setup(ls_env *e, const char *tag, const char *const *extra,
                     const learning_config *lc)
{
    memset(e, 0, sizeof *e);
    e->admin = getenv("DATABASE_URL");
    const char *redis = getenv("REDIS_URL");
    if (e->admin == NULL || redis == NULL) {
        fprintf(stderr, "DATABASE_URL / REDIS_URL not set: skipping\n");
        exit(TEST_SKIP);
    }
    char prefix[64];
    snprintf(prefix, sizeof prefix, "herald_test_%s", tag);
    e->url = tdb_create(e->admin, prefix, &e->dbname);
    e->redis = xasprintf("%s%sdb=8", redis, strchr(redis, '?') ? "&" : "?");
    snprintf(e->dir, sizeof e->dir, "/tmp/herald-test-%s-%d", tag, (int)getpid());
    if (lc != NULL)
        e->lc = *lc;
    else
        learning_config_default(&e->lc);
    /* heraldd's own outcome job would race the test's clock: once a day
     * unless the caller says otherwise (the first of two settings wins) */
    const char *env[16];
    size_t k = 0;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && k < 14; i++)
        env[k++] = extra[i];
    env[k++] = "HERALD_LEARNING_JOB_INTERVAL=24h";
    env[k] = NULL;
    herald_client_init();
    if (!hd_start(&e->hd, e->dir, e->url, e->redis, env)) {
        fprintf(stderr, "heraldd did not start (log: %s)\n", e->hd.log);
        return false;
    }
    if (!hd_wait_health(&e->hd, "readiness", 1, 30000) ||
        !hd_wait_health(&e->hd, "herald.v1.LearningService", 1, 5000)) {
        fprintf(stderr, "heraldd never became ready (log: %s)\n", e->hd.log);
        return false;
    }
    e->learn = herald_stub_new(e->hd.ch, &herald__v1__learning_service__descriptor);
    e->ops = herald_stub_new(e->hd.ch, &herald__v1__ops_service__descriptor);
    herald_call_options o = { .timeout_ms = 30000 };
    herald_stub_set_options(e->learn, &o);
    herald_stub_set_options(e->ops, &o);
    e->db = tdb_open(e->url);
    /* Redis DB 8 is ours: start from an empty cache */
    return true;
}

static int ls_teardown(ls_env *e) __attribute__((unused));
static int ls_teardown(ls_env *e)
{
    herald_stub_free(e->learn);
    herald_stub_free(e->ops);
    db_close(e->db);
    int rc = hd_stop(&e->hd);
    if (rc != 0)
        fprintf(stderr, "heraldd exited %d (log: %s)\n", rc, e->hd.log);
    herald_client_shutdown();
    if (e->url != NULL)
        tdb_drop(e->admin, e->dbname);
    if (rc == 0 && getenv("HERALD_TEST_KEEP") == NULL) /* set it to keep the log */
        (void)tsh("rm -rf %s", e->dir);
    free(e->url);
    free(e->dbname);
    free(e->redis);
    return rc;
}

/* CreateProfile through OpsService; returns the gRPC code. */
static int ls_profile(ls_env *e, const char *id, const char *tz, int cooldown_h)
    __attribute__((unused));
static int ls_profile(ls_env *e, const char *id, const char *tz, int cooldown_h)
{
    Herald__V1__CreateProfileRequest req = HERALD__V1__CREATE_PROFILE_REQUEST__INIT;
    Herald__V1__Profile p = HERALD__V1__PROFILE__INIT;
    char rid[40];
    req.request_id = ls_rid(e, rid);
    req.profile = &p;
    p.profile_id = (char *)id;
    p.platform = HERALD__V1__PLATFORM__PLATFORM_X;
    p.time_zone = (char *)tz;
    p.topic_cooldown_hours = cooldown_h;
    ls_got g = { 0 };
    herald__v1__ops_service__create_profile(herald_stub_service(e->ops), &req, ls_on_profile, &g);
    if (g.msg != NULL)
        protobuf_c_message_free_unpacked(g.msg, NULL);
    return herald_stub_status(e->ops)->code;
}

/* A published post of profile with these arms (NULL = none), published at
 * publish_ms, optionally chosen by decision_id; its id into out (37). */
static void ls_post(ls_env *e, const char *profile, const char *ct, const char *vs, const char *tp,
                    int64_t publish_ms, const char *decision_id, char out[37])
    __attribute__((unused));
static void ls_post(ls_env *e, const char *profile, const char *ct, const char *vs, const char *tp,
                    int64_t publish_ms, const char *decision_id, char out[37])
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, profile);
    db_param_text(&p, ct);
    db_param_text(&p, vs);
    db_param_text(&p, tp);
    db_param_int64(&p, publish_ms);
    db_param_text(&p, decision_id);
    status st = db_run(
        e->db, 10000, "test_post",
        "INSERT INTO posts (profile_id, state, platform, text, content_hash, content_type, "
        "voice_style, topic, provider, publish_time, external_id, decision_id, created_at) "
        "SELECT $1, 'published', 'x', 'a test post', "
        "encode(sha256(convert_to(g::text, 'UTF8')), 'hex'), $2, $3, $4, 'builtin', "
        "to_timestamp($5::int8 / 1000.0), g::text, $6::uuid, to_timestamp($5::int8 / 1000.0) "
        "FROM gen_random_uuid() g RETURNING post_id::text",
        &p, &res);
    if (st != ST_OK) {
        fprintf(stderr, "post insert: %s\n", db_errmsg(e->db));
        abort();
    }
    snprintf(out, 37, "%s", db_res_text(res, 0, 0));
    db_res_free(res);
}

/* An observation with impressions, likes, replies, reposts, quotes and
 * follows set (each < 0 = leave unset). */
static void ls_obs(Herald__V1__EngagementObservation *o, const char *post_id, int64_t at_ms,
                   int64_t impressions, int64_t likes, int64_t replies, int64_t reposts,
                   int64_t quotes, int64_t follows) __attribute__((unused));
static void ls_obs(Herald__V1__EngagementObservation *o, const char *post_id, int64_t at_ms,
                   int64_t impressions, int64_t likes, int64_t replies, int64_t reposts,
                   int64_t quotes, int64_t follows)
{
    herald__v1__engagement_observation__init(o);
    o->post_id = (char *)post_id;
    o->observe_time = ls_ts(at_ms);
#define LS_SET(f, v, C)                                            \
    if ((v) >= 0) {                                                \
        o->f = (v);                                                \
        o->f##_opt_case = HERALD__V1__ENGAGEMENT_OBSERVATION__##C; \
    }
    LS_SET(impressions, impressions, IMPRESSIONS_OPT_IMPRESSIONS)
    LS_SET(likes, likes, LIKES_OPT_LIKES)
    LS_SET(replies, replies, REPLIES_OPT_REPLIES)
    LS_SET(reposts, reposts, REPOSTS_OPT_REPOSTS)
    LS_SET(quotes, quotes, QUOTES_OPT_QUOTES)
    LS_SET(follows, follows, FOLLOWS_OPT_FOLLOWS)
#undef LS_SET
}

/* RecordEngagement of obs[0..n); returns the code, *out the reply. */
static int ls_engage(ls_env *e, const char *rid, Herald__V1__EngagementObservation **obs, size_t n,
                     Herald__V1__RecordEngagementResponse **out) __attribute__((unused));
static int ls_engage(ls_env *e, const char *rid, Herald__V1__EngagementObservation **obs, size_t n,
                     Herald__V1__RecordEngagementResponse **out)
{
    Herald__V1__RecordEngagementRequest req = HERALD__V1__RECORD_ENGAGEMENT_REQUEST__INIT;
    req.request_id = (char *)(rid != NULL ? rid : "");
    req.observations = obs;
    req.n_observations = n;
    return ls_record_engagement(e, &req, out);
}

/* Runs the outcome job once with the clock at now_ms (one transaction). */
static outcomes_result ls_job(ls_env *e, int64_t now_ms) __attribute__((unused));
static outcomes_result ls_job(ls_env *e, int64_t now_ms)
{
    outcomes_result r = { 0 };
    bool more = true;
    for (int i = 0; i < 100 && more; i++) {
        status st = db_begin(e->db, 60000);
        if (st == ST_OK)
            st = outcomes_score_due_tx(e->db, &e->lc, now_ms, &r, &more);
        if (st == ST_OK)
            st = db_commit(e->db);
        else
            db_rollback(e->db);
        if (st != ST_OK) {
            fprintf(stderr, "outcome job: %s\n", db_errmsg(e->db));
            abort();
        }
    }
    return r;
}

/* First column of the first row of sql, as int64; arg (may be NULL: SQL
 * NULL) is $1 when sql has one. */
static int64_t ls_int(ls_env *e, const char *sql, const char *arg) __attribute__((unused));
static int64_t ls_int(ls_env *e, const char *sql, const char *arg)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    if (strstr(sql, "$1") != NULL)
        db_param_text(&p, arg); /* NULL -> SQL NULL */
    status st = db_run(e->db, 10000, "test_int", sql, &p, &res);
    if (st != ST_OK || db_res_rows(res) < 1) {
        fprintf(stderr, "query failed: %s\n", db_errmsg(e->db));
        abort();
    }
    int64_t v = db_res_int64(res, 0, 0);
    db_res_free(res);
    return v;
}

#endif
