/* svc_learning.c - herald.v1.LearningService handlers (proto/herald/v1/learning.proto).
 *
 * Issue 6 at the RPC level: ingest (RecordEngagement, RecordFollowerSnapshots,
 * RecordReplies, UpsertTopics, UpdateAudience), outcomes (RecomputeOutcomes;
 * the checkpoint job is outcomes.c), Recommend, GetInsights, GetBestTimes,
 * ListArms, SetArmEnabled and ListTrends. Handlers run on worker threads and
 * follow rpc.h and handler.h; the SQL is in learning_store.c and outcomes.c,
 * the maths in server/domain (reward, bandit, besttimes, sentiment, trends).
 *
 * Rules kept here:
 *   - A batch is validated as a whole: every bad item is one BadRequest
 *     violation ("observations[3].likes") and nothing is stored. Checks that
 *     need the database (the post exists, was published before the
 *     observation) run inside the mutation's transaction and reject it the
 *     same way.
 *   - Every mutation is idempotent by request_id (handler_mutate); ingest is
 *     also idempotent per item (ON CONFLICT DO NOTHING): a repeated item is
 *     counted in `duplicates`, never stored twice.
 *   - A metric that was not sent is stored as NULL, never 0.
 *   - RecordEngagement scores a post at once when an observation at or after
 *     its checkpoint arrives (outcomes_score_posts_tx, same transaction);
 *     the checkpoint job scores the rest.
 *   - GetInsights and GetBestTimes are cache-aside under versioned keys: the
 *     version is the profile's learning version in PostgreSQL, bumped by
 *     every outcome, arm setting, audience change and recomputation in the
 *     writer's transaction, so an acknowledged outcome is never followed by
 *     a stale cached read.
 *   - Recommend draws with a real seedable Thompson sample (bandit.h) and
 *     logs the decision with its propensity and candidates; the chosen arms'
 *     pull counters go up in the same statement. Posteriors are evaluated at
 *     the target time; topics used within the profile's topic_cooldown_hours
 *     of it are excluded. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "bandit.h"
#include "besttimes.h"
#include "handler.h"
#include "herald/v1/learning.pb-c.h"
#include "learning_store.h"
#include "log.h"
#include "outcomes.h"
#include "reward.h"
#include "sampling.h"
#include "sentiment.h"
#include "svc.h"
#include "trends.h"
#include "tz.h"
#include "util.h"
#include "vercache.h"

enum {
    BATCH_MAX = 1000,
    SOURCE_MAX = 64,
    FUTURE_SLACK_MS = 5 * 60 * 1000, /* observe_time may be this far ahead of us */
    INSIGHTS_TTL_S = 300,
    BESTTIMES_TTL_S = 300,
    ARMS_DEFAULT = 100,
    ARMS_MAX = 500,
    TRENDS_DEFAULT = 20,
    TRENDS_MAX = 200,
    REASON_MAX = 500,
    EXCLUDE_MAX = 100,
    ZONES_MAX = 100,
};

#define DEFAULT_SOURCE "default"

/* ---------------------------------------------------------------- helpers */

static void lconfig(rpc_call *call, learning_config *lc)
{
    const worker *w = handler_worker(call);
    learning_config_from(w != NULL ? w->cfg : NULL, lc);
}

/* A lower-case copy of a validated UUID. */
static char *uuid_lower(arena *a, const char *s)
{
    char *d = arena_strdup(a, s);
    for (char *c = d; c != NULL && *c; c++)
        if (*c >= 'A' && *c <= 'F')
            *c = (char)(*c - 'A' + 'a');
    return d;
}

static const char *source_of(const char *s)
{
    return s[0] != '\0' ? s : DEFAULT_SOURCE;
}

/* observe_time-like field: required, not more than 5 minutes ahead. */
static bool check_time(hv *v, const char *field, const Google__Protobuf__Timestamp *ts,
                       int64_t now_ms)
{
    int64_t ms = 0;
    if (!hv_timestamp(v, field, ts, true, &ms))
        return false;
    if (ms > now_ms + FUTURE_SLACK_MS) {
        hv_add(v, field, "is more than 5 minutes in the future");
        return false;
    }
    return true;
}

static uint64_t random_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s)
        s = (uint64_t)now_mono_us() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)now_real_ms();
    return s;
}

static Herald__V1__Interval *interval_msg(arena *a, double lo, double hi, double level)
{
    Herald__V1__Interval *iv = arena_alloc(a, sizeof *iv);
    if (iv == NULL)
        return NULL;
    herald__v1__interval__init(iv);
    iv->lower = lo;
    iv->upper = hi;
    iv->level = level;
    return iv;
}

static Herald__V1__Posterior *posterior_msg(arena *a, const bandit_posterior *p)
{
    Herald__V1__Posterior *m = arena_alloc(a, sizeof *m);
    if (m == NULL)
        return NULL;
    herald__v1__posterior__init(m);
    m->mean = p->mean;
    m->interval = interval_msg(a, p->lower, p->upper, p->level);
    m->effective_n = p->effective_n;
    m->n = p->n;
    return m;
}

static Herald__V1__Arm *arm_msg(arena *a, const char *profile_id, const lstore_arm *s,
                                const bandit_posterior *p)
{
    Herald__V1__Arm *m = arena_alloc(a, sizeof *m);
    if (m == NULL)
        return NULL;
    herald__v1__arm__init(m);
    m->profile_id = (char *)profile_id;
    m->scope = (Herald__V1__ArmScope)s->scope;
    m->key = (char *)s->key;
    m->enabled = s->enabled;
    m->disabled_reason = (char *)s->disabled_reason;
    m->posterior = posterior_msg(a, p);
    m->pulls = s->pulls;
    if (s->update_ms > 0)
        m->update_time = handler_ts_from_ms(a, s->update_ms);
    return m;
}

/* The posteriors of every arm in arms (grouped by scope, as lstore_arms_get
 * sorts them), each pooled with the other arms of its scope; post[i] is
 * arms[i]'s. */
static void posteriors_of(const lstore_arm *arms, size_t n, int64_t now_ms, const bandit_config *bc,
                          bandit_arm *scratch, bandit_posterior *post)
{
    for (size_t lo = 0; lo < n;) {
        size_t hi = lo;
        while (hi < n && arms[hi].scope == arms[lo].scope && hi - lo < BANDIT_MAX_ARMS)
            hi++;
        for (size_t i = lo; i < hi; i++)
            scratch[i - lo] = (bandit_arm){ .key = arms[i].key,
                                            .stats = arms[i].stats,
                                            .enabled = arms[i].enabled };
        bandit_scope_posteriors(scratch, hi - lo, now_ms, bc, post + lo);
        lo = hi;
    }
}

/* The learning version of profile_id (lstore_learning_version): from the
 * process's version map when it is trusted and holds the profile, else
 * from PostgreSQL, merged into the map with the token taken before the
 * read (vercache.h says why a read that raced with a write stays out). */
static status learning_version(rpc_call *call, db_conn *db, const char *profile_id, int64_t *ver,
                               int64_t *vtime)
{
    vercache *vc = vercache_process();
    char scope[128];
    (void)snprintf(scope, sizeof scope, LEARNING_VERSION_PREFIX "%s", profile_id);
    if (vercache_get(vc, scope, ver, vtime))
        return ST_OK;
    uint64_t token = vercache_token(vc);
    status st = lstore_learning_version(db, handler_budget_ms(call), profile_id, ver, vtime);
    if (st == ST_OK)
        vercache_merge(vc, scope, *ver, *vtime, token);
    return st;
}

/* After a mutation that may have bumped profile_id's learning version
 * (committed or not: a failed COMMIT may have committed), before the
 * reply: later reads in this process go to PostgreSQL until one puts the
 * new version in the map. */
static void learning_changed(const char *profile_id)
{
    char scope[128];
    (void)snprintf(scope, sizeof scope, LEARNING_VERSION_PREFIX "%s", profile_id);
    vercache_forget(vercache_process(), scope);
}

static const char *versioned_key(rpc_call *call, const char *ns, const char *id, int64_t version)
{
    char *k = cache_key(handler_cache_shared(call), ns, id, version);
    const char *out = arena_strdup(rpc_call_arena(call), k);
    free(k);
    return out;
}

/* Ends the call for a failed rejection built from violations recorded on
 * the call (inside a mutation body). */
static status reject_first(handler_tx *tx, const char *field, const char *desc)
{
    return handler_tx_reject(tx, ST_INVALID, "%s: %s", field, desc);
}

/* ---------------------------------------------------------------- RecordEngagement */

typedef struct engage_ctx {
    const Herald__V1__RecordEngagementRequest *req;
    lstore_obs *obs;
    size_t n;
    learning_config lc;
    const char **changed; /* profiles whose outcomes were scored (arena) */
    size_t n_changed;
} engage_ctx;

static int post_cmp(const void *a, const void *b)
{
    return strcmp(((const lstore_post *)a)->post_id, ((const lstore_post *)b)->post_id);
}

static const lstore_post *post_find(const lstore_post *v, size_t n, const char *id)
{
    lstore_post key;
    if (n == 0)
        return NULL;
    (void)snprintf(key.post_id, sizeof key.post_id, "%s", id);
    return bsearch(&key, v, n, sizeof *v, post_cmp);
}

static bool state_observable(const char *state)
{
    return strcmp(state, "published") == 0 || strcmp(state, "publishing") == 0 ||
           strcmp(state, "unconfirmed") == 0;
}

static status engage_body(handler_tx *tx, ProtobufCMessage **reply)
{
    engage_ctx *c = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    lstore_post *posts = NULL;
    size_t n_posts = 0;
    char **ids = arena_alloc(a, c->n * sizeof *ids);
    if (ids == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "request too large");
    for (size_t i = 0; i < c->n; i++)
        ids[i] = (char *)c->obs[i].post_id;
    status st = lstore_posts_get_tx(tx->db, a, ids, c->n, &posts, &n_posts);
    if (st != ST_OK)
        return st;
    if (n_posts > 1)
        qsort(posts, n_posts, sizeof *posts, post_cmp);

    const char *ff = NULL, *fd = NULL;
    for (size_t i = 0; i < c->n; i++) {
        const lstore_obs *o = &c->obs[i];
        const lstore_post *p = post_find(posts, n_posts, o->post_id);
        const char *field = NULL, *desc = NULL;
        if (p == NULL) {
            field = arena_printf(a, "observations[%zu].post_id", i);
            desc = "no such post";
        } else if (p->publish_us == 0 && !state_observable(p->state)) {
            field = arena_printf(a, "observations[%zu].post_id", i);
            desc = arena_printf(a, "the post is %s, not published", p->state);
        } else if (p->publish_us > 0 && o->observe_us < p->publish_us) {
            field = arena_printf(a, "observations[%zu].observe_time", i);
            desc = "is before the post was published";
        }
        if (field == NULL)
            continue;
        rpc_call_add_violation(tx->call, field, desc);
        if (ff == NULL) {
            ff = field;
            fd = desc;
        }
    }
    if (ff != NULL)
        return reject_first(tx, ff, fd);

    size_t *ins = NULL, n_ins = 0;
    st = lstore_engagement_insert_tx(tx->db, a, c->obs, c->n, &ins, &n_ins);
    if (st != ST_OK)
        return st;

    /* posts this call moved past their checkpoint: score them now */
    char **due = arena_alloc(a, (n_ins ? n_ins : 1) * sizeof *due);
    size_t n_due = 0;
    c->changed = arena_alloc(a, (n_ins ? n_ins : 1) * sizeof *c->changed);
    c->n_changed = 0;
    if (due == NULL || c->changed == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "request too large");
    for (size_t k = 0; k < n_ins; k++) {
        const lstore_obs *o = &c->obs[ins[k]];
        const lstore_post *p = post_find(posts, n_posts, o->post_id);
        if (p == NULL || p->scored || p->publish_us == 0 || strcmp(p->state, "published") != 0 ||
            o->observe_us < p->publish_us + c->lc.checkpoint_ms * 1000)
            continue;
        bool seen = false;
        for (size_t j = 0; j < n_due && !seen; j++)
            seen = strcmp(due[j], p->post_id) == 0;
        if (!seen)
            due[n_due++] = (char *)p->post_id;
        seen = false;
        for (size_t j = 0; j < c->n_changed && !seen; j++)
            seen = strcmp(c->changed[j], p->profile_id) == 0;
        if (!seen)
            c->changed[c->n_changed++] = p->profile_id;
    }
    outcomes_result r = { 0 };
    if (n_due > 0) {
        st = outcomes_score_posts_tx(tx->db, &c->lc, due, n_due, now_real_ms(), &r);
        if (st != ST_OK)
            return st;
    }

    Herald__V1__RecordEngagementResponse *out = arena_alloc(a, sizeof *out);
    if (out == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    herald__v1__record_engagement_response__init(out);
    out->accepted = (int32_t)n_ins;
    out->duplicates = (int32_t)(c->n - n_ins);
    out->outcomes_updated = (int32_t)r.scored;
    *reply = &out->base;
    return ST_OK;
}

/* The metrics of an observation in reward_metric order. */
#define OBS_METRIC(o, f) ((o)->f##_opt_case != 0), ((o)->f)

static void learning_record_engagement(Herald__V1__LearningService_Service *svc,
                                       const Herald__V1__RecordEngagementRequest *req,
                                       Herald__V1__RecordEngagementResponse_Closure done,
                                       void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    int64_t now_ms = now_real_ms();
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    bool count_ok = hv_count(&v, "observations", req->n_observations, 1, BATCH_MAX);
    engage_ctx c = { .req = req };
    lconfig(call, &c.lc);
    if (count_ok) {
        c.n = req->n_observations;
        c.obs = arena_calloc(a, c.n * sizeof *c.obs);
        if (c.obs == NULL) {
            rpc_call_fail(call, ST_EXHAUSTED, "request too large");
            return;
        }
    }
    for (size_t i = 0; count_ok && i < req->n_observations; i++) {
        const Herald__V1__EngagementObservation *o = req->observations[i];
        lstore_obs *dst = &c.obs[i];
        hv_uuid(&v, hv_path(&v, "observations[%zu].post_id", i), o->post_id, true);
        check_time(&v, hv_path(&v, "observations[%zu].observe_time", i), o->observe_time, now_ms);
        hv_text(&v, hv_path(&v, "observations[%zu].source", i), o->source, 0, SOURCE_MAX);
        const struct {
            bool set;
            int64_t val;
        } m[REWARD_METRIC_COUNT] = {
            { OBS_METRIC(o, impressions) },    { OBS_METRIC(o, likes) },
            { OBS_METRIC(o, replies) },        { OBS_METRIC(o, reposts) },
            { OBS_METRIC(o, quotes) },         { OBS_METRIC(o, bookmarks) },
            { OBS_METRIC(o, profile_visits) }, { OBS_METRIC(o, link_clicks) },
            { OBS_METRIC(o, follows) },
        };
        bool any = false;
        for (int k = 0; k < REWARD_METRIC_COUNT; k++) {
            if (!m[k].set)
                continue;
            any = true;
            if (m[k].val < 0)
                hv_add(&v, hv_path(&v, "observations[%zu].%s", i, reward_metric_name(k)),
                       "must be >= 0");
            else
                reward_counts_set(&dst->counts, (reward_metric)k, m[k].val);
        }
        if (!any)
            hv_add(&v, hv_path(&v, "observations[%zu]", i), "needs at least one metric");
        dst->post_id = uuid_lower(a, o->post_id);
        dst->observe_us = handler_ts_us(o->observe_time);
        dst->source = source_of(o->source);
    }
    if (hv_failed(&v))
        return;

    handler_mutation mu = { .request = &req->base,
                            .request_id = req->request_id,
                            .reply_desc = &herald__v1__record_engagement_response__descriptor,
                            .body = engage_body,
                            .ctx = &c,
                            .what = "engagement" };
    handler_result r;
    bool ok = handler_mutate(call, &mu, &r);
    for (size_t i = 0; i < c.n_changed; i++)
        learning_changed(c.changed[i]);
    if (ok)
        done((const Herald__V1__RecordEngagementResponse *)r.reply, call);
}

/* ---------------------------------------------------------------- RecordFollowerSnapshots */

typedef struct snap_ctx {
    lstore_snapshot *s;
    size_t n;
} snap_ctx;

static status snap_body(handler_tx *tx, ProtobufCMessage **reply)
{
    snap_ctx *c = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    char **ids = arena_alloc(a, c->n * sizeof *ids);
    size_t *missing = NULL, n_missing = 0;
    if (ids == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "request too large");
    for (size_t i = 0; i < c->n; i++)
        ids[i] = (char *)c->s[i].profile_id;
    status st = lstore_profiles_missing_tx(tx->db, a, ids, c->n, &missing, &n_missing);
    if (st != ST_OK)
        return st;
    if (n_missing > 0) {
        for (size_t k = 0; k < n_missing; k++)
            rpc_call_add_violation(tx->call,
                                   arena_printf(a, "snapshots[%zu].profile_id", missing[k]),
                                   "no such profile");
        return reject_first(tx, arena_printf(a, "snapshots[%zu].profile_id", missing[0]),
                            "no such profile");
    }
    int64_t accepted = 0;
    st = lstore_snapshots_insert_tx(tx->db, c->s, c->n, &accepted);
    if (st != ST_OK)
        return st;
    Herald__V1__RecordFollowerSnapshotsResponse *out = arena_alloc(a, sizeof *out);
    if (out == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    herald__v1__record_follower_snapshots_response__init(out);
    out->accepted = (int32_t)accepted;
    out->duplicates = (int32_t)((int64_t)c->n - accepted);
    *reply = &out->base;
    return ST_OK;
}

static void learning_record_follower_snapshots(
    Herald__V1__LearningService_Service *svc, const Herald__V1__RecordFollowerSnapshotsRequest *req,
    Herald__V1__RecordFollowerSnapshotsResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    int64_t now_ms = now_real_ms();
    snap_ctx c = { 0 };
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    bool count_ok = hv_count(&v, "snapshots", req->n_snapshots, 1, BATCH_MAX);
    if (count_ok) {
        c.n = req->n_snapshots;
        c.s = arena_calloc(a, c.n * sizeof *c.s);
        if (c.s == NULL) {
            rpc_call_fail(call, ST_EXHAUSTED, "request too large");
            return;
        }
    }
    for (size_t i = 0; count_ok && i < c.n; i++) {
        const Herald__V1__FollowerSnapshot *s = req->snapshots[i];
        hv_profile_id(&v, hv_path(&v, "snapshots[%zu].profile_id", i), s->profile_id);
        check_time(&v, hv_path(&v, "snapshots[%zu].observe_time", i), s->observe_time, now_ms);
        hv_text(&v, hv_path(&v, "snapshots[%zu].source", i), s->source, 0, SOURCE_MAX);
        hv_int(&v, hv_path(&v, "snapshots[%zu].follower_count", i), s->follower_count, 0,
               INT64_MAX);
        if (SVC_HAS(s, following_count))
            hv_int(&v, hv_path(&v, "snapshots[%zu].following_count", i), s->following_count, 0,
                   INT64_MAX);
        c.s[i] = (lstore_snapshot){ .profile_id = s->profile_id,
                                    .observe_us = handler_ts_us(s->observe_time),
                                    .source = source_of(s->source),
                                    .followers = s->follower_count,
                                    .has_following = SVC_HAS(s, following_count),
                                    .following = s->following_count };
    }
    if (hv_failed(&v))
        return;
    handler_mutation mu = { .request = &req->base,
                            .request_id = req->request_id,
                            .reply_desc =
                                &herald__v1__record_follower_snapshots_response__descriptor,
                            .body = snap_body,
                            .ctx = &c,
                            .what = "follower snapshot" };
    handler_result r;
    if (handler_mutate(call, &mu, &r))
        done((const Herald__V1__RecordFollowerSnapshotsResponse *)r.reply, call);
}

/* ---------------------------------------------------------------- RecordReplies */

typedef struct replies_ctx {
    lstore_reply *r;
    sentiment_result *s;
    size_t n;
} replies_ctx;

static Herald__V1__SentimentSummary *summary_msg(arena *a, const char *post_id,
                                                 const lstore_label_count *lc, size_t n)
{
    Herald__V1__SentimentSummary *m = arena_alloc(a, sizeof *m);
    Herald__V1__SentimentCount **counts = arena_alloc(a, (n ? n : 1) * sizeof *counts);
    if (m == NULL || counts == NULL)
        return NULL;
    herald__v1__sentiment_summary__init(m);
    m->post_id = (char *)post_id;
    double sum = 0.0;
    /* by label enum order */
    for (int label = 1; label <= SENTIMENT_LABEL_MAX; label++) {
        for (size_t i = 0; i < n; i++) {
            sentiment_label l;
            if (!sentiment_label_parse(lc[i].label, &l) || (int)l != label)
                continue;
            Herald__V1__SentimentCount *c = arena_alloc(a, sizeof *c);
            if (c == NULL)
                return NULL;
            herald__v1__sentiment_count__init(c);
            c->label = (Herald__V1__SentimentLabel)l;
            c->count = lc[i].count;
            counts[m->n_counts++] = c;
            m->reply_count += lc[i].count;
            sum += lc[i].score_sum;
        }
    }
    m->counts = counts;
    if (m->reply_count > 0) {
        m->mean_score = sum / (double)m->reply_count;
        m->mean_score_opt_case = HERALD__V1__SENTIMENT_SUMMARY__MEAN_SCORE_OPT_MEAN_SCORE;
    }
    return m;
}

static status replies_body(handler_tx *tx, ProtobufCMessage **reply)
{
    replies_ctx *c = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    lstore_post *posts = NULL;
    size_t n_posts = 0;
    char **ids = arena_alloc(a, c->n * sizeof *ids);
    if (ids == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "request too large");
    for (size_t i = 0; i < c->n; i++)
        ids[i] = (char *)c->r[i].post_id;
    status st = lstore_posts_get_tx(tx->db, a, ids, c->n, &posts, &n_posts);
    if (st != ST_OK)
        return st;
    if (n_posts > 1)
        qsort(posts, n_posts, sizeof *posts, post_cmp);
    const char *ff = NULL;
    for (size_t i = 0; i < c->n; i++) {
        if (post_find(posts, n_posts, c->r[i].post_id) != NULL)
            continue;
        const char *field = arena_printf(a, "replies[%zu].post_id", i);
        rpc_call_add_violation(tx->call, field, "no such post");
        if (ff == NULL)
            ff = field;
    }
    if (ff != NULL)
        return reject_first(tx, ff, "no such post");

    int64_t accepted = 0;
    st = lstore_replies_insert_tx(tx->db, c->r, c->n, &accepted);
    if (st != ST_OK)
        return st;
    /* the distinct posts, in order of first appearance */
    size_t n_uniq = 0;
    for (size_t i = 0; i < c->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < n_uniq && !seen; j++)
            seen = strcmp(ids[j], c->r[i].post_id) == 0;
        if (!seen)
            ids[n_uniq++] = (char *)c->r[i].post_id;
    }
    lstore_label_count *lc = NULL;
    size_t n_lc = 0;
    st = lstore_reply_summaries_tx(tx->db, a, ids, n_uniq, &lc, &n_lc);
    if (st != ST_OK)
        return st;

    Herald__V1__RecordRepliesResponse *out = arena_alloc(a, sizeof *out);
    Herald__V1__ReplySentiment **sent = arena_alloc(a, c->n * sizeof *sent);
    Herald__V1__SentimentSummary **sums = arena_alloc(a, n_uniq * sizeof *sums);
    if (out == NULL || sent == NULL || sums == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    herald__v1__record_replies_response__init(out);
    out->accepted = (int32_t)accepted;
    out->duplicates = (int32_t)((int64_t)c->n - accepted);
    for (size_t i = 0; i < c->n; i++) {
        Herald__V1__ReplySentiment *s = arena_alloc(a, sizeof *s);
        if (s == NULL)
            return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
        herald__v1__reply_sentiment__init(s);
        s->external_reply_id = (char *)c->r[i].external_id;
        s->post_id = (char *)c->r[i].post_id;
        s->label = (Herald__V1__SentimentLabel)c->s[i].label;
        s->score = c->s[i].score;
        sent[i] = s;
    }
    for (size_t k = 0; k < n_uniq; k++) {
        size_t lo = 0;
        while (lo < n_lc && strcmp(lc[lo].post_id, ids[k]) != 0)
            lo++;
        size_t hi = lo;
        while (hi < n_lc && strcmp(lc[hi].post_id, ids[k]) == 0)
            hi++;
        sums[k] = summary_msg(a, ids[k], lc + lo, hi - lo);
        if (sums[k] == NULL)
            return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    }
    out->sentiments = sent;
    out->n_sentiments = c->n;
    out->summaries = sums;
    out->n_summaries = n_uniq;
    *reply = &out->base;
    return ST_OK;
}

static void learning_record_replies(Herald__V1__LearningService_Service *svc,
                                    const Herald__V1__RecordRepliesRequest *req,
                                    Herald__V1__RecordRepliesResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    int64_t now_ms = now_real_ms();
    replies_ctx c = { 0 };
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    bool count_ok = hv_count(&v, "replies", req->n_replies, 1, BATCH_MAX);
    if (count_ok) {
        c.n = req->n_replies;
        c.r = arena_calloc(a, c.n * sizeof *c.r);
        c.s = arena_calloc(a, c.n * sizeof *c.s);
        if (c.r == NULL || c.s == NULL) {
            rpc_call_fail(call, ST_EXHAUSTED, "request too large");
            return;
        }
    }
    for (size_t i = 0; count_ok && i < c.n; i++) {
        const Herald__V1__ReplyRecord *r = req->replies[i];
        hv_uuid(&v, hv_path(&v, "replies[%zu].post_id", i), r->post_id, true);
        hv_text(&v, hv_path(&v, "replies[%zu].external_reply_id", i), r->external_reply_id, 1, 128);
        hv_text(&v, hv_path(&v, "replies[%zu].author_id", i), r->author_id, 0, 128);
        hv_text(&v, hv_path(&v, "replies[%zu].author_handle", i), r->author_handle, 0, 100);
        bool text_ok = hv_text(&v, hv_path(&v, "replies[%zu].text", i), r->text, 1, 4000);
        check_time(&v, hv_path(&v, "replies[%zu].create_time", i), r->create_time, now_ms);
        if (text_ok)
            (void)sentiment_score(r->text, strlen(r->text), &c.s[i]);
        c.r[i] = (lstore_reply){ .post_id = uuid_lower(a, r->post_id),
                                 .external_id = r->external_reply_id,
                                 .author_id = r->author_id,
                                 .author_handle = r->author_handle,
                                 .text = r->text,
                                 .create_us = handler_ts_us(r->create_time),
                                 .label = sentiment_label_name(c.s[i].label),
                                 .score = c.s[i].score };
    }
    if (hv_failed(&v))
        return;
    handler_mutation mu = { .request = &req->base,
                            .request_id = req->request_id,
                            .reply_desc = &herald__v1__record_replies_response__descriptor,
                            .body = replies_body,
                            .ctx = &c,
                            .what = "reply" };
    handler_result r;
    if (handler_mutate(call, &mu, &r))
        done((const Herald__V1__RecordRepliesResponse *)r.reply, call);
}

/* ---------------------------------------------------------------- RecomputeOutcomes */

typedef struct recompute_ctx {
    const reward_version *version;
    const char *profile_id;
    learning_config lc;
} recompute_ctx;

static status recompute_body(handler_tx *tx, ProtobufCMessage **reply)
{
    recompute_ctx *c = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    char prev[80], err[256];
    outcomes_result r = { 0 };
    if (c->profile_id[0] != '\0') {
        status st = lstore_profile_check_tx(tx->db, a, c->profile_id, NULL);
        if (st == ST_NOT_FOUND)
            return handler_tx_reject(tx, st, "profile %s not found", c->profile_id);
        if (st != ST_OK)
            return st;
    }
    status st = outcomes_recompute_tx(tx->db, &c->lc, c->version, c->profile_id, now_real_ms(),
                                      prev, sizeof prev, &r, err, sizeof err);
    if (st == ST_FAILED_PRECONDITION)
        return handler_tx_reject(tx, st, "%s", err);
    if (st == ST_INVALID)
        return handler_tx_reject(tx, ST_INTERNAL, "internal error");
    if (st != ST_OK)
        return st;
    Herald__V1__RecomputeOutcomesResponse *out = arena_alloc(a, sizeof *out);
    if (out == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    herald__v1__recompute_outcomes_response__init(out);
    out->reward_version = (char *)c->version->name;
    out->previous_reward_version = arena_strdup(a, prev);
    out->outcomes = r.scored;
    out->learnable = r.learnable;
    out->arms = r.arms;
    *reply = &out->base;
    return ST_OK;
}

static void learning_recompute_outcomes(Herald__V1__LearningService_Service *svc,
                                        const Herald__V1__RecomputeOutcomesRequest *req,
                                        Herald__V1__RecomputeOutcomesResponse_Closure done,
                                        void *data)
{
    rpc_call *call = data;
    recompute_ctx c = { .profile_id = req->profile_id };
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    if (hv_ascii(&v, "reward_version", req->reward_version, 1, 64)) {
        c.version = reward_version_find(req->reward_version);
        if (c.version == NULL) {
            strbuf known = { 0 };
            for (size_t i = 0; i < reward_version_count(); i++) {
                strbuf_puts(&known, i > 0 ? ", " : "");
                strbuf_puts(&known, reward_version_at(i)->name);
            }
            hv_add(&v, "reward_version", "is not a reward version this server knows (%s)",
                   known.data != NULL ? known.data : "");
            strbuf_fini(&known);
        }
    }
    if (req->profile_id[0] != '\0')
        hv_profile_id(&v, "profile_id", req->profile_id);
    if (hv_failed(&v))
        return;
    lconfig(call, &c.lc);
    handler_mutation mu = { .request = &req->base,
                            .request_id = req->request_id,
                            .reply_desc = &herald__v1__recompute_outcomes_response__descriptor,
                            .body = recompute_body,
                            .ctx = &c,
                            .what = "outcomes" };
    handler_result r;
    bool ok = handler_mutate(call, &mu, &r);
    if (c.profile_id[0] != '\0')
        learning_changed(c.profile_id);
    else
        vercache_forget_all(vercache_process());
    if (ok)
        done((const Herald__V1__RecomputeOutcomesResponse *)r.reply, call);
}

/* ---------------------------------------------------------------- Recommend */

static const bandit_scope content_scopes[3] = { BANDIT_SCOPE_CONTENT_TYPE, BANDIT_SCOPE_VOICE_STYLE,
                                                BANDIT_SCOPE_TOPIC };

/* The candidates as the decision row's JSON array. */
static char *candidates_json(const bandit_dim *dims, const bandit_candidate *cands, size_t n)
{
    strbuf b = { 0 };
    strbuf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        const bandit_candidate *c = &cands[i];
        const bandit_arm *arm = &dims[c->dim].arms[c->arm];
        strbuf_printf(&b, "%s{\"scope\":\"%s\",\"key\":\"", i ? "," : "",
                      bandit_scope_name(dims[c->dim].scope));
        strbuf_json_escape(&b, arm->key, strlen(arm->key));
        strbuf_printf(&b,
                      "\",\"mean\":%.6g,\"lower\":%.6g,\"upper\":%.6g,\"effective_n\":%.6g,"
                      "\"n\":%lld,\"eligible\":%s,\"chosen\":%s,\"propensity\":%.6g",
                      c->post.mean, c->post.lower, c->post.upper, c->post.effective_n,
                      (long long)c->post.n, c->eligible ? "true" : "false",
                      c->chosen ? "true" : "false", c->propensity);
        if (c->eligible)
            strbuf_printf(&b, ",\"sampled\":%.6g", c->sampled_value);
        else {
            strbuf_puts(&b, ",\"excluded_reason\":\"");
            const char *why = c->excluded_reason != NULL ? c->excluded_reason : "";
            strbuf_json_escape(&b, why, strlen(why));
            strbuf_putc(&b, '"');
        }
        strbuf_putc(&b, '}');
    }
    strbuf_putc(&b, ']');
    return strbuf_take(&b);
}

static bool catalog_opt(hv *v, const char *field, const char *in, const char **out)
{
    *out = NULL;
    if (in[0] == '\0')
        return true;
    return hv_catalog_key(v, field, in, out);
}

static void learning_recommend(Herald__V1__LearningService_Service *svc,
                               const Herald__V1__RecommendRequest *req,
                               Herald__V1__RecommendResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    const char *fixed[3] = { NULL, NULL, NULL };
    const char **excl = NULL;
    int64_t target_ms = 0;
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_profile_id(&v, "profile_id", req->profile_id);
    hv_timestamp(&v, "target_time", req->target_time, false, &target_ms);
    catalog_opt(&v, "content_type", req->content_type, &fixed[0]);
    catalog_opt(&v, "voice_style", req->voice_style, &fixed[1]);
    catalog_opt(&v, "topic", req->topic, &fixed[2]);
    if (hv_count(&v, "exclude_topics", req->n_exclude_topics, 0, EXCLUDE_MAX) &&
        req->n_exclude_topics > 0) {
        excl = arena_calloc(a, req->n_exclude_topics * sizeof *excl);
        if (excl == NULL) {
            rpc_call_fail(call, ST_EXHAUSTED, "request too large");
            return;
        }
        for (size_t i = 0; i < req->n_exclude_topics; i++)
            hv_catalog_key(&v, hv_path(&v, "exclude_topics[%zu]", i), req->exclude_topics[i],
                           &excl[i]);
    }
    if (hv_failed(&v))
        return;
    if (req->target_time == NULL)
        target_ms = now_real_ms();

    learning_config lc;
    lconfig(call, &lc);
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;
    lstore_arms arms;
    char **recent = NULL;
    size_t n_recent = 0;
    status st = db_begin(db, handler_budget_ms(call));
    if (st == ST_OK)
        st = lstore_recommend_load_tx(db, a, req->profile_id, target_ms, &arms, &recent, &n_recent);
    if (st != ST_OK) {
        db_rollback(db);
        handler_fail_db(call, db, st, arena_printf(a, "profile %s", req->profile_id));
        return;
    }

    /* the three dimensions */
    bandit_arm *barms = arena_calloc(a, (arms.n ? arms.n : 1) * sizeof *barms);
    bandit_dim dims[3];
    const char *cooldown_why =
        arena_printf(a, "topic used within %d h of the target time", arms.topic_cooldown_hours);
    if (barms == NULL) {
        db_rollback(db);
        rpc_call_fail(call, ST_EXHAUSTED, "request too large");
        return;
    }
    size_t k = 0;
    for (int d = 0; d < 3; d++) {
        dims[d] = (bandit_dim){
            .scope = content_scopes[d], .arms = barms + k, .n_arms = 0, .fixed_key = fixed[d]
        };
        for (size_t i = 0; i < arms.n && dims[d].n_arms < BANDIT_MAX_ARMS; i++) {
            const lstore_arm *s = &arms.arms[i];
            if (s->scope != content_scopes[d])
                continue;
            bandit_arm *b = &barms[k++];
            *b = (bandit_arm){ .key = s->key, .stats = s->stats, .enabled = s->enabled };
            if (!s->in_profile)
                b->exclude_reason = "not one of the profile's topics";
            dims[d].n_arms++;
        }
        if (content_scopes[d] == BANDIT_SCOPE_TOPIC) {
            bandit_arm *t = (bandit_arm *)dims[d].arms;
            if (n_recent > 0)
                bandit_arms_exclude(t, dims[d].n_arms, (const char *const *)recent, n_recent,
                                    cooldown_why);
            if (req->n_exclude_topics > 0)
                bandit_arms_exclude(t, dims[d].n_arms, excl, req->n_exclude_topics,
                                    "excluded by the request");
        }
        if (fixed[d] != NULL) {
            bool found = false;
            for (size_t i = 0; i < dims[d].n_arms && !found; i++)
                found = strcmp(dims[d].arms[i].key, fixed[d]) == 0;
            if (!found)
                hv_add(&v,
                       d == 0   ? "content_type"
                       : d == 1 ? "voice_style"
                                : "topic",
                       "is not an enabled %s of the catalog", bandit_scope_name(content_scopes[d]));
        }
        if (dims[d].n_arms == 0 && fixed[d] == NULL) {
            db_rollback(db);
            rpc_call_fail(call, ST_FAILED_PRECONDITION, "the catalog has no enabled %s",
                          bandit_scope_name(content_scopes[d]));
            return;
        }
    }
    if (v.n > 0) {
        db_rollback(db);
        (void)hv_failed(&v);
        return;
    }

    uint64_t seed = SVC_HAS(req, seed) ? req->seed : random_seed();
    size_t cap = arms.n + 1;
    bandit_candidate *cands = arena_calloc(a, cap * sizeof *cands);
    bandit_choice ch;
    if (cands == NULL) {
        db_rollback(db);
        rpc_call_fail(call, ST_EXHAUSTED, "request too large");
        return;
    }
    st = bandit_recommend(dims, 3, target_ms, seed, &lc.bandit, cands, cap, &ch);
    if (st != ST_OK) {
        db_rollback(db);
        if (st == ST_FAILED_PRECONDITION) {
            rpc_call_fail(call, st, "%s", ch.errmsg);
        } else {
            log_field f[] = { LOG_S("req", rpc_call_request_id(call)), LOG_S("why", ch.errmsg) };
            log_event(LOG_ERROR, "bandit_recommend refused its input", f, 2);
            rpc_call_fail(call, ST_INTERNAL, "internal error");
        }
        return;
    }
    const char *chosen[3];
    for (int d = 0; d < 3; d++)
        chosen[d] = dims[d].arms[ch.chosen[d]].key;
    const tz_zone *z = NULL;
    if (tz_get(arms.time_zone, &z, NULL, 0) != ST_OK)
        z = tz_utc();
    int how = tz_hour_of_week(z, target_ms / 1000);

    strbuf why = { 0 };
    bandit_explain(dims, 3, cands, &ch, &why);
    char *cj = candidates_json(dims, cands, ch.n_candidates);
    /* pulls in the lock order of outcomes.c: scope names sorted */
    lstore_decision dec = { .profile_id = req->profile_id,
                            .reward_version = arms.reward_version,
                            .content_type = chosen[0],
                            .voice_style = chosen[1],
                            .topic = chosen[2],
                            .hour_of_week = how < 0 ? 0 : how,
                            .target_ms = target_ms,
                            .seed = seed,
                            .propensity = ch.propensity > 0.0 ? fmin(ch.propensity, 1.0) : 1e-9,
                            .forced = fixed[0] != NULL && fixed[1] != NULL && fixed[2] != NULL,
                            .candidates_json = cj,
                            .reason = why.data != NULL ? why.data : "",
                            .pull_scope = { "content_type", "topic", "voice_style" },
                            .pull_key = { chosen[0], chosen[2], chosen[1] },
                            .n_pulls = 3 };
    if (dec.forced)
        dec.propensity = 1.0;
    const char *decision_id = NULL;
    int64_t create_us = 0;
    st = lstore_decision_insert_tx(db, a, &dec, &decision_id, &create_us);
    if (st == ST_OK)
        st = db_commit(db);
    else
        db_rollback(db);
    free(cj);
    if (st != ST_OK) {
        strbuf_fini(&why);
        handler_fail_db(call, db, st, "decision");
        return;
    }

    Herald__V1__RecommendResponse out = HERALD__V1__RECOMMEND_RESPONSE__INIT;
    Herald__V1__ArmChoice choice = HERALD__V1__ARM_CHOICE__INIT;
    choice.content_type = (char *)chosen[0];
    choice.voice_style = (char *)chosen[1];
    choice.topic = (char *)chosen[2];
    out.decision_id = (char *)decision_id;
    out.choice = &choice;
    out.propensity = dec.propensity;
    out.reason = arena_strdup(a, why.data != NULL ? why.data : "");
    strbuf_fini(&why);
    out.reward_version = (char *)arms.reward_version;
    out.seed = seed;
    out.hour_of_week = how < 0 ? 0 : how;
    out.decide_time = handler_ts_from_us(a, create_us);
    out.candidates =
        arena_alloc(a, (ch.n_candidates ? ch.n_candidates : 1) * sizeof *out.candidates);
    if (out.candidates == NULL || out.reason == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    for (size_t i = 0; i < ch.n_candidates; i++) {
        const bandit_candidate *c = &cands[i];
        Herald__V1__ArmCandidate *m = arena_alloc(a, sizeof *m);
        if (m == NULL) {
            rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
            return;
        }
        herald__v1__arm_candidate__init(m);
        m->scope = (Herald__V1__ArmScope)dims[c->dim].scope;
        m->key = (char *)dims[c->dim].arms[c->arm].key;
        m->posterior = posterior_msg(a, &c->post);
        if (c->eligible) {
            m->sampled_value = c->sampled_value;
            m->sampled_value_opt_case = HERALD__V1__ARM_CANDIDATE__SAMPLED_VALUE_OPT_SAMPLED_VALUE;
        }
        m->chosen = c->chosen;
        m->propensity = c->propensity;
        m->eligible = c->eligible;
        m->excluded_reason = (char *)(c->excluded_reason != NULL ? c->excluded_reason : "");
        out.candidates[i] = m;
    }
    out.n_candidates = ch.n_candidates;
    done(&out, call);
}

/* ---------------------------------------------------------------- GetInsights */

/* Top and bottom arms of each scope with outcomes. */
static status insight_scopes(arena *a, const char *profile_id, const lstore_arms *arms,
                             int64_t now_ms, const bandit_config *bc, int top_n,
                             Herald__V1__GetInsightsResponse *out)
{
    bandit_arm *scratch = arena_calloc(a, (arms->n ? arms->n : 1) * sizeof *scratch);
    bandit_posterior *post = arena_calloc(a, (arms->n ? arms->n : 1) * sizeof *post);
    size_t *order = arena_calloc(a, (arms->n ? arms->n : 1) * sizeof *order);
    out->scopes = arena_calloc(a, 5 * sizeof *out->scopes);
    if (scratch == NULL || post == NULL || order == NULL || out->scopes == NULL)
        return ST_EXHAUSTED;
    posteriors_of(arms->arms, arms->n, now_ms, bc, scratch, post);
    for (int sc = BANDIT_SCOPE_CONTENT_TYPE; sc <= BANDIT_SCOPE_REPLY_TIER; sc++) {
        size_t m = 0;
        for (size_t i = 0; i < arms->n; i++)
            if ((int)arms->arms[i].scope == sc && arms->arms[i].stats.count > 0)
                order[m++] = i;
        if (m == 0)
            continue;
        /* by posterior mean, best first (insertion sort: m <= 256) */
        for (size_t i = 1; i < m; i++) {
            size_t x = order[i], j = i;
            while (j > 0 && post[order[j - 1]].mean < post[x].mean) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = x;
        }
        size_t take = (size_t)top_n < m ? (size_t)top_n : m;
        Herald__V1__ScopeInsight *si = arena_alloc(a, sizeof *si);
        Herald__V1__Arm **top = arena_alloc(a, take * sizeof *top);
        Herald__V1__Arm **bottom = arena_alloc(a, take * sizeof *bottom);
        if (si == NULL || top == NULL || bottom == NULL)
            return ST_EXHAUSTED;
        herald__v1__scope_insight__init(si);
        si->scope = (Herald__V1__ArmScope)sc;
        for (size_t i = 0; i < take; i++) {
            top[i] = arm_msg(a, profile_id, &arms->arms[order[i]], &post[order[i]]);
            bottom[i] =
                arm_msg(a, profile_id, &arms->arms[order[m - 1 - i]], &post[order[m - 1 - i]]);
            if (top[i] == NULL || bottom[i] == NULL)
                return ST_EXHAUSTED;
        }
        si->top = top;
        si->n_top = take;
        si->bottom = bottom;
        si->n_bottom = take;
        out->scopes[out->n_scopes++] = si;
    }
    return ST_OK;
}

/* The UTC instant (s) of local midnight starting civil day `day` in z. */
static int64_t local_midnight_s(const tz_zone *z, int64_t day)
{
    int64_t t = day * 86400;
    int32_t off = tz_offset_at(z, t);
    off = tz_offset_at(z, t - off);
    return t - off;
}

static status insight_trend(arena *a, const tz_zone *z, int64_t now_ms, int window_days,
                            const lstore_day *days, size_t n_days,
                            Herald__V1__EngagementTrend **out)
{
    tz_local lt;
    if (tz_localtime(z, now_ms / 1000, &lt) != ST_OK)
        return ST_INTERNAL;
    int64_t today = tz_days_from_civil(lt.year, lt.month, lt.day);
    Herald__V1__EngagementTrend *t = arena_alloc(a, sizeof *t);
    Herald__V1__TrendPoint **pts = arena_alloc(a, (size_t)window_days * sizeof *pts);
    if (t == NULL || pts == NULL)
        return ST_EXHAUSTED;
    herald__v1__engagement_trend__init(t);
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int nrate = 0;
    for (int i = 0; i < window_days; i++) {
        int64_t day = today - window_days + 1 + i;
        Herald__V1__TrendPoint *p = arena_alloc(a, sizeof *p);
        if (p == NULL)
            return ST_EXHAUSTED;
        herald__v1__trend_point__init(p);
        p->day_start_time = handler_ts_from_ms(a, local_midnight_s(z, day) * 1000);
        for (size_t k = 0; k < n_days; k++) {
            if (days[k].local_day != day)
                continue;
            p->posts = days[k].posts;
            p->impressions = days[k].impressions;
            if (days[k].rate_impressions > 0) {
                double rate = (double)days[k].engagements / (double)days[k].rate_impressions;
                p->engagement_rate = rate;
                p->engagement_rate_opt_case =
                    HERALD__V1__TREND_POINT__ENGAGEMENT_RATE_OPT_ENGAGEMENT_RATE;
                sx += i;
                sy += rate;
                sxx += (double)i * i;
                sxy += i * rate;
                nrate++;
            }
        }
        pts[i] = p;
    }
    t->points = pts;
    t->n_points = (size_t)window_days;
    double den = nrate * sxx - sx * sx;
    if (nrate >= 2 && den > 0) {
        t->slope_per_day = (nrate * sxy - sx * sy) / den;
        t->slope_per_day_opt_case = HERALD__V1__ENGAGEMENT_TREND__SLOPE_PER_DAY_OPT_SLOPE_PER_DAY;
    }
    *out = t;
    return ST_OK;
}

static status insight_conversion(arena *a, const lstore_conversion *c, size_t n, double level,
                                 Herald__V1__GetInsightsResponse *out)
{
    out->follower_conversion = arena_alloc(a, (n ? n : 1) * sizeof *out->follower_conversion);
    if (out->follower_conversion == NULL)
        return ST_EXHAUSTED;
    double z = sampling_normal_quantile(0.5 * (1.0 + level));
    for (size_t i = 0; i < n; i++) {
        Herald__V1__FollowerConversion *f = arena_alloc(a, sizeof *f);
        if (f == NULL)
            return ST_EXHAUSTED;
        herald__v1__follower_conversion__init(f);
        f->content_type = (char *)c[i].content_type;
        f->post_count = c[i].posts;
        f->impressions = c[i].impressions;
        if (c[i].follow_impressions > 0) {
            double k = 1000.0 / (double)c[i].follow_impressions, fo = (double)c[i].follows;
            f->follows_per_1k_impressions = fo * k;
            f->follows_per_1k_impressions_opt_case =
                HERALD__V1__FOLLOWER_CONVERSION__FOLLOWS_PER_1K_IMPRESSIONS_OPT_FOLLOWS_PER_1K_IMPRESSIONS;
            /* Poisson count: the square-root interval (Anscombe) */
            double lo = sqrt(fo) - z / 2.0, hi = sqrt(fo + 1.0) + z / 2.0;
            f->interval = interval_msg(a, lo > 0 ? lo * lo * k : 0.0, hi * hi * k, level);
        }
        out->follower_conversion[out->n_follower_conversion++] = f;
    }
    return ST_OK;
}

static void learning_get_insights(Herald__V1__LearningService_Service *svc,
                                  const Herald__V1__GetInsightsRequest *req,
                                  Herald__V1__GetInsightsResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_profile_id(&v, "profile_id", req->profile_id);
    hv_int(&v, "window_days", req->window_days, 0, 365);
    hv_int(&v, "top_n", req->top_n, 0, 20);
    if (hv_failed(&v))
        return;
    int window = req->window_days > 0 ? req->window_days : 30;
    int top_n = req->top_n > 0 ? req->top_n : 3;
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;

    int64_t ver = 0, vtime = 0;
    status st = learning_version(call, db, req->profile_id, &ver, &vtime);
    if (st != ST_OK) {
        handler_fail_db(call, db, st, arena_printf(a, "profile %s", req->profile_id));
        return;
    }
    const char *key = versioned_key(
        call, "insights",
        arena_printf(a, "%s@%lld|w%d|n%d", req->profile_id, (long long)vtime, window, top_n), ver);
    if (handler_cache_reply(call, key, &herald__v1__get_insights_response__descriptor))
        return; /* stored with cached = true, sent as stored */

    learning_config lc;
    lconfig(call, &lc);
    int64_t now_ms = now_real_ms();
    lstore_arms arms;
    lstore_day *days = NULL;
    lstore_conversion *conv = NULL;
    size_t n_days = 0, n_conv = 0;
    st = db_begin(db, handler_budget_ms(call));
    if (st == ST_OK)
        st = lstore_arms_get(db, 0, true, a, req->profile_id, 0, false, &arms);
    if (st == ST_OK)
        st = lstore_insights_tx(db, a, req->profile_id, arms.time_zone, now_ms, window, &days,
                                &n_days, &conv, &n_conv);
    if (st == ST_OK)
        st = db_commit(db);
    else
        db_rollback(db);
    if (st != ST_OK) {
        handler_fail_db(call, db, st, arena_printf(a, "profile %s", req->profile_id));
        return;
    }
    const tz_zone *z = NULL;
    if (tz_get(arms.time_zone, &z, NULL, 0) != ST_OK)
        z = tz_utc();

    Herald__V1__GetInsightsResponse out = HERALD__V1__GET_INSIGHTS_RESPONSE__INIT;
    out.profile_id = req->profile_id;
    out.reward_version = (char *)arms.reward_version;
    out.window_days = window;
    st = insight_scopes(a, req->profile_id, &arms, now_ms, &lc.bandit, top_n, &out);
    if (st == ST_OK)
        st = insight_conversion(a, conv, n_conv, lc.bandit.interval_level, &out);
    if (st == ST_OK)
        st = insight_trend(a, z, now_ms, window, days, n_days, &out.engagement_trend);
    out.compute_time = handler_ts_from_ms(a, now_ms);
    if (st != ST_OK || out.compute_time == NULL) {
        rpc_call_fail(call, st == ST_INTERNAL ? ST_INTERNAL : ST_EXHAUSTED, "reply too large");
        return;
    }
    out.cached = true; /* as a hit answers */
    handler_cache_put(call, key, &out.base, INSIGHTS_TTL_S);
    out.cached = false;
    done(&out, call);
}

/* ---------------------------------------------------------------- GetBestTimes */

static void learning_get_best_times(Herald__V1__LearningService_Service *svc,
                                    const Herald__V1__GetBestTimesRequest *req,
                                    Herald__V1__GetBestTimesResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_profile_id(&v, "profile_id", req->profile_id);
    hv_int(&v, "top_n", req->top_n, 0, BESTTIMES_CELLS);
    if (hv_failed(&v))
        return;
    int top_n = req->top_n > 0 ? req->top_n : 5;
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;

    int64_t ver = 0, vtime = 0;
    status st = learning_version(call, db, req->profile_id, &ver, &vtime);
    if (st != ST_OK) {
        handler_fail_db(call, db, st, arena_printf(a, "profile %s", req->profile_id));
        return;
    }
    const char *key = versioned_key(
        call, "besttimes", arena_printf(a, "%s@%lld|n%d", req->profile_id, (long long)vtime, top_n),
        ver);
    if (handler_cache_reply(call, key, &herald__v1__get_best_times_response__descriptor))
        return; /* stored with cached = true, sent as stored */

    learning_config lc;
    lconfig(call, &lc);
    int64_t now_ms = now_real_ms();
    lstore_arms arms;
    lstore_zone *zones = NULL;
    size_t n_zones = 0;
    const char *source = "";
    int64_t aud_us = 0;
    st = db_begin(db, handler_budget_ms(call));
    if (st == ST_OK)
        st = lstore_arms_get(db, 0, true, a, req->profile_id, BANDIT_SCOPE_HOUR_OF_WEEK, false,
                             &arms);
    if (st == ST_OK)
        st = lstore_audience_get_tx(db, a, req->profile_id, &zones, &n_zones, &source, &aud_us);
    if (st == ST_OK)
        st = db_commit(db);
    else
        db_rollback(db);
    if (st != ST_OK) {
        handler_fail_db(call, db, st, arena_printf(a, "profile %s", req->profile_id));
        return;
    }

    bandit_stats stats[BESTTIMES_CELLS];
    memset(stats, 0, sizeof stats);
    for (size_t i = 0; i < arms.n; i++) {
        char *end = NULL;
        long h = strtol(arms.arms[i].key, &end, 10);
        if (end != arms.arms[i].key && *end == '\0' && h >= 0 && h < BESTTIMES_CELLS)
            stats[h] = arms.arms[i].stats;
    }
    const tz_zone *pz = NULL;
    if (tz_get(arms.time_zone, &pz, NULL, 0) != ST_OK)
        pz = tz_utc();
    int poff = tz_offset_at(pz, now_ms / 1000) / 60;
    besttimes_zone *bz = arena_calloc(a, (n_zones ? n_zones : 1) * sizeof *bz);
    Herald__V1__TimeZoneShare **aud = arena_calloc(a, (n_zones ? n_zones : 1) * sizeof *aud);
    size_t nb = 0;
    if (bz == NULL || aud == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    for (size_t i = 0; i < n_zones; i++) {
        const tz_zone *z = NULL;
        Herald__V1__TimeZoneShare *s = arena_alloc(a, sizeof *s);
        if (s == NULL) {
            rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
            return;
        }
        herald__v1__time_zone_share__init(s);
        s->time_zone = (char *)zones[i].time_zone;
        s->share = zones[i].share;
        aud[i] = s;
        if (zones[i].share > 0 && tz_get(zones[i].time_zone, &z, NULL, 0) == ST_OK)
            bz[nb++] = (besttimes_zone){ tz_offset_at(z, now_ms / 1000) / 60, zones[i].share };
    }
    besttimes_config btc;
    besttimes_config_default(&btc);
    besttimes_map *map = arena_alloc(a, sizeof *map);
    char err[160];
    if (map == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    st = besttimes_compute(stats, now_ms, &lc.bandit, poff, bz, nb, &btc, map, err, sizeof err);
    if (st != ST_OK) {
        log_field f[] = { LOG_S("req", rpc_call_request_id(call)), LOG_S("why", err) };
        log_event(LOG_ERROR, "best times could not be computed", f, 2);
        rpc_call_fail(call, ST_INTERNAL, "internal error");
        return;
    }

    Herald__V1__GetBestTimesResponse out = HERALD__V1__GET_BEST_TIMES_RESPONSE__INIT;
    out.profile_id = req->profile_id;
    out.time_zone = (char *)arms.time_zone;
    out.cells = arena_alloc(a, BESTTIMES_CELLS * sizeof *out.cells);
    out.best_hours_of_week = arena_alloc(a, (size_t)top_n * sizeof *out.best_hours_of_week);
    if (out.cells == NULL || out.best_hours_of_week == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    for (int h = 0; h < BESTTIMES_CELLS; h++) {
        const besttimes_cell *c = &map->cells[h];
        Herald__V1__HourCell *m = arena_alloc(a, sizeof *m);
        if (m == NULL) {
            rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
            return;
        }
        herald__v1__hour_cell__init(m);
        m->hour_of_week = h;
        m->expected_reward = c->expected_reward;
        m->interval = interval_msg(a, c->lower, c->upper, map->level);
        m->effective_n = c->effective_n;
        m->history_weight = c->history_weight;
        m->audience_weight = c->audience_weight;
        out.cells[h] = m;
    }
    out.n_cells = BESTTIMES_CELLS;
    for (int i = 0; i < top_n; i++)
        out.best_hours_of_week[i] = map->ranked[i];
    out.n_best_hours_of_week = (size_t)top_n;
    out.audience = aud;
    out.n_audience = n_zones;
    out.compute_time = handler_ts_from_ms(a, now_ms);
    out.cached = true; /* as a hit answers */
    handler_cache_put(call, key, &out.base, BESTTIMES_TTL_S);
    out.cached = false;
    done(&out, call);
}

/* ---------------------------------------------------------------- ListArms */

static void learning_list_arms(Herald__V1__LearningService_Service *svc,
                               const Herald__V1__ListArmsRequest *req,
                               Herald__V1__ListArmsResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    const uint8_t *cursor = NULL;
    size_t cursor_len = 0;
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_profile_id(&v, "profile_id", req->profile_id);
    hv_enum(&v, "scope", &herald__v1__arm_scope__descriptor, (int)req->scope, false);
    int32_t size = hv_page_size(&v, "page_size", req->page_size, ARMS_DEFAULT, ARMS_MAX);
    const char *scope_s = arena_printf(a, "ListArms|p=%s|s=%d|e=%d", req->profile_id,
                                       (int)req->scope, (int)req->enabled_only);
    hv_page_token(&v, "page_token", req->page_token, scope_s, &cursor, &cursor_len);
    int c_scope = 0;
    const char *c_key = NULL;
    if (cursor != NULL) {
        /* "<scope>|<key>" */
        const char *bar = memchr(cursor, '|', cursor_len);
        if (bar == NULL || sscanf((const char *)cursor, "%d|", &c_scope) != 1)
            hv_add(&v, "page_token", "is not a page token of this list");
        else
            c_key =
                arena_strndup(a, bar + 1, cursor_len - (size_t)(bar + 1 - (const char *)cursor));
    }
    if (hv_failed(&v))
        return;
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;
    learning_config lc;
    lconfig(call, &lc);
    lstore_arms arms;
    status st = lstore_arms_get(db, handler_budget_ms(call), false, a, req->profile_id,
                                (int)req->scope, true, &arms);
    if (st != ST_OK) {
        handler_fail_db(call, db, st, arena_printf(a, "profile %s", req->profile_id));
        return;
    }
    bandit_arm *scratch = arena_calloc(a, (arms.n ? arms.n : 1) * sizeof *scratch);
    bandit_posterior *post = arena_calloc(a, (arms.n ? arms.n : 1) * sizeof *post);
    Herald__V1__Arm **list = arena_calloc(a, (size_t)size * sizeof *list);
    if (scratch == NULL || post == NULL || list == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    posteriors_of(arms.arms, arms.n, now_real_ms(), &lc.bandit, scratch, post);

    Herald__V1__ListArmsResponse out = HERALD__V1__LIST_ARMS_RESPONSE__INIT;
    size_t n = 0;
    const lstore_arm *last = NULL;
    bool more = false;
    for (size_t i = 0; i < arms.n; i++) {
        const lstore_arm *s = &arms.arms[i];
        if (req->enabled_only && !s->enabled)
            continue;
        if (c_key != NULL) {
            lstore_arm ck = { .scope = (bandit_scope)c_scope, .key = c_key };
            if ((int)s->scope < c_scope ||
                ((int)s->scope == c_scope &&
                 (s->scope == BANDIT_SCOPE_HOUR_OF_WEEK
                      ? strtol(s->key, NULL, 10) <= strtol(ck.key, NULL, 10)
                      : strcmp(s->key, ck.key) <= 0)))
                continue;
        }
        if (n == (size_t)size) {
            more = true;
            break;
        }
        list[n] = arm_msg(a, req->profile_id, s, &post[i]);
        if (list[n] == NULL) {
            rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
            return;
        }
        n++;
        last = s;
    }
    out.arms = list;
    out.n_arms = n;
    out.reward_version = (char *)arms.reward_version;
    out.next_page_token = (char *)"";
    if (more && last != NULL) {
        const char *cur = arena_printf(a, "%d|%s", (int)last->scope, last->key);
        out.next_page_token = handler_page_token_encode(a, scope_s, cur, strlen(cur));
    }
    done(&out, call);
}

/* ---------------------------------------------------------------- SetArmEnabled */

typedef struct setarm_ctx {
    const Herald__V1__SetArmEnabledRequest *req;
    bandit_scope scope;
    const char *key;
    learning_config lc;
} setarm_ctx;

static status setarm_body(handler_tx *tx, ProtobufCMessage **reply)
{
    setarm_ctx *c = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    const char *pid = c->req->profile_id;
    status st = lstore_profile_check_tx(tx->db, a, pid, NULL);
    if (st == ST_NOT_FOUND)
        return handler_tx_reject(tx, st, "profile %s not found", pid);
    if (st != ST_OK)
        return st;
    st = lstore_catalog_has_tx(tx->db, c->scope, c->key);
    if (st == ST_NOT_FOUND)
        return handler_tx_reject(tx, st, "%s %s is not in the catalog", bandit_scope_name(c->scope),
                                 c->key);
    if (st == ST_OK)
        st = lstore_arm_setting_put_tx(tx->db, pid, c->scope, c->key, c->req->enabled,
                                       c->req->reason);
    if (st == ST_OK)
        st = lstore_learning_bump_tx(tx->db, pid);
    lstore_arms arms;
    if (st == ST_OK)
        st = lstore_arms_get(tx->db, 0, true, a, pid, (int)c->scope, true, &arms);
    if (st != ST_OK)
        return st;
    bandit_arm *scratch = arena_calloc(a, (arms.n ? arms.n : 1) * sizeof *scratch);
    bandit_posterior *post = arena_calloc(a, (arms.n ? arms.n : 1) * sizeof *post);
    if (scratch == NULL || post == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    posteriors_of(arms.arms, arms.n, now_real_ms(), &c->lc.bandit, scratch, post);
    for (size_t i = 0; i < arms.n; i++) {
        if (strcmp(arms.arms[i].key, c->key) != 0)
            continue;
        Herald__V1__Arm *m = arm_msg(a, pid, &arms.arms[i], &post[i]);
        if (m == NULL)
            return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
        *reply = &m->base;
        return ST_OK;
    }
    return ST_INTERNAL; /* the setting row makes the arm exist */
}

static void learning_set_arm_enabled(Herald__V1__LearningService_Service *svc,
                                     const Herald__V1__SetArmEnabledRequest *req,
                                     Herald__V1__Arm_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    setarm_ctx c = { .req = req };
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    hv_profile_id(&v, "profile_id", req->profile_id);
    bool scope_ok = hv_enum(&v, "scope", &herald__v1__arm_scope__descriptor, (int)req->scope, true);
    hv_text(&v, "reason", req->reason, 0, REASON_MAX);
    c.scope = (bandit_scope)req->scope;
    if (scope_ok) {
        switch (c.scope) {
        case BANDIT_SCOPE_CONTENT_TYPE:
        case BANDIT_SCOPE_VOICE_STYLE:
        case BANDIT_SCOPE_TOPIC:
            hv_catalog_key(&v, "key", req->key, &c.key);
            break;
        case BANDIT_SCOPE_HOUR_OF_WEEK: {
            char *end = NULL;
            long h = strtol(req->key, &end, 10);
            if (req->key[0] < '0' || req->key[0] > '9' || *end != '\0' || h < 0 || h > 167)
                hv_add(&v, "key", "must be an hour of the week, 0 to 167");
            else
                c.key = arena_printf(a, "%ld", h);
            break;
        }
        case BANDIT_SCOPE_REPLY_TIER: {
            char low[32];
            size_t n = strlen(req->key);
            bool ok = n > 0 && n < sizeof low;
            for (size_t i = 0; ok && i <= n; i++)
                low[i] = (char)(req->key[i] >= 'A' && req->key[i] <= 'Z' ? req->key[i] + 32
                                                                         : req->key[i]);
            int tier = 0;
            if (ok && handler_enum_from_db(&herald__v1__reply_tier__descriptor, low, &tier) &&
                tier != 0)
                c.key = arena_strdup(a, low);
            else
                hv_add(&v, "key", "must be a reply tier: nano, micro, mid, macro or mega");
            break;
        }
        }
    }
    if (hv_failed(&v))
        return;
    lconfig(call, &c.lc);
    handler_mutation mu = { .request = &req->base,
                            .request_id = req->request_id,
                            .reply_desc = &herald__v1__arm__descriptor,
                            .body = setarm_body,
                            .ctx = &c,
                            .what = "arm" };
    handler_result r;
    bool ok = handler_mutate(call, &mu, &r);
    learning_changed(req->profile_id);
    if (ok)
        done((const Herald__V1__Arm *)r.reply, call);
}

/* ---------------------------------------------------------------- trends */

static Herald__V1__Trend *trend_msg(arena *a, const lstore_trend *t, const trends_result *r)
{
    Herald__V1__Trend *m = arena_alloc(a, sizeof *m);
    if (m == NULL)
        return NULL;
    herald__v1__trend__init(m);
    m->topic = (char *)t->topic;
    m->display_name = (char *)t->display_name;
    m->in_catalog = t->in_catalog;
    m->velocity_per_hour = r->velocity_per_hour;
    m->acceleration_per_hour = r->acceleration_per_hour;
    m->trend_score = r->score;
    m->rising = r->rising;
    m->mentions_24h = t->mentions_24h;
    if (t->state.first_ms > 0)
        m->first_seen_time = handler_ts_from_ms(a, t->state.first_ms);
    if (t->state.last_ms > 0)
        m->last_seen_time = handler_ts_from_ms(a, t->state.last_ms);
    return m;
}

static void trend_eval(const lstore_trend *t, int64_t now_ms, const trends_config *tc,
                       trends_result *r)
{
    int64_t at = now_ms > t->state.last_ms ? now_ms : t->state.last_ms;
    trends_evaluate(&t->state, at, tc, r);
}

typedef struct topics_ctx {
    const char *profile_id;
    lstore_topic_obs *o;
    size_t n;
    char **topics; /* sorted unique */
    size_t n_topics;
} topics_ctx;

/* Sort indexes of observations by time (stable on index). */
static void sort_by_time(const lstore_topic_obs *o, size_t *idx, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        size_t x = idx[i], j = i;
        while (j > 0 && (o[idx[j - 1]].observe_us > o[x].observe_us ||
                         (o[idx[j - 1]].observe_us == o[x].observe_us && idx[j - 1] > x))) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = x;
    }
}

static status topics_body(handler_tx *tx, ProtobufCMessage **reply)
{
    topics_ctx *c = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    if (c->profile_id != NULL) {
        status st = lstore_profile_check_tx(tx->db, a, c->profile_id, NULL);
        if (st == ST_NOT_FOUND)
            return handler_tx_reject(tx, st, "profile %s not found", c->profile_id);
        if (st != ST_OK)
            return st;
    }
    size_t *ins = NULL, n_ins = 0;
    status st = lstore_topic_obs_insert_tx(tx->db, a, c->profile_id, c->o, c->n, &ins, &n_ins);
    if (st != ST_OK)
        return st;
    lstore_trend *t = NULL;
    st = lstore_trends_lock_tx(tx->db, a, c->profile_id, c->topics, c->n_topics, &t);
    if (st != ST_OK)
        return st;
    sort_by_time(c->o, ins, n_ins);
    trends_config tc;
    trends_config_default(&tc);
    for (size_t k = 0; k < n_ins; k++) {
        const lstore_topic_obs *o = &c->o[ins[k]];
        for (size_t i = 0; i < c->n_topics; i++) {
            if (strcmp(c->topics[i], o->topic) != 0)
                continue;
            trends_update(&t[i].state, o->observe_us / 1000, o->count, o->period_minutes, &tc);
            if (o->display_name[0] != '\0')
                t[i].display_name = o->display_name;
            break;
        }
    }
    st = lstore_trends_save_tx(tx->db, c->profile_id, t, c->n_topics);
    int64_t now_ms = now_real_ms();
    if (st == ST_OK)
        st = lstore_mentions_24h(tx->db, 0, true, c->profile_id, now_ms, t, c->n_topics);
    if (st != ST_OK)
        return st;
    Herald__V1__UpsertTopicsResponse *out = arena_alloc(a, sizeof *out);
    Herald__V1__Trend **list = arena_alloc(a, c->n_topics * sizeof *list);
    if (out == NULL || list == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    herald__v1__upsert_topics_response__init(out);
    out->accepted = (int32_t)n_ins;
    out->duplicates = (int32_t)(c->n - n_ins);
    for (size_t i = 0; i < c->n_topics; i++) {
        trends_result r;
        trend_eval(&t[i], now_ms, &tc, &r);
        list[i] = trend_msg(a, &t[i], &r);
        if (list[i] == NULL)
            return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    }
    out->trends = list;
    out->n_trends = c->n_topics;
    *reply = &out->base;
    return ST_OK;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void learning_upsert_topics(Herald__V1__LearningService_Service *svc,
                                   const Herald__V1__UpsertTopicsRequest *req,
                                   Herald__V1__UpsertTopicsResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    int64_t now_ms = now_real_ms();
    topics_ctx c = { 0 };
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    if (req->profile_id[0] != '\0' && hv_profile_id(&v, "profile_id", req->profile_id))
        c.profile_id = req->profile_id;
    bool count_ok = hv_count(&v, "observations", req->n_observations, 1, BATCH_MAX);
    if (count_ok) {
        c.n = req->n_observations;
        c.o = arena_calloc(a, c.n * sizeof *c.o);
        c.topics = arena_calloc(a, c.n * sizeof *c.topics);
        if (c.o == NULL || c.topics == NULL) {
            rpc_call_fail(call, ST_EXHAUSTED, "request too large");
            return;
        }
    }
    for (size_t i = 0; count_ok && i < c.n; i++) {
        const Herald__V1__TopicObservation *o = req->observations[i];
        const char *topic = NULL;
        const char *tf = hv_path(&v, "observations[%zu].topic", i);
        if (hv_catalog_key(&v, tf, o->topic, &topic) && topic[0] == '_') {
            hv_add(&v, tf, "must start with a letter or digit");
            topic = NULL;
        }
        hv_text(&v, hv_path(&v, "observations[%zu].display_name", i), o->display_name, 0, 100);
        hv_int(&v, hv_path(&v, "observations[%zu].mention_count", i), o->mention_count, 0,
               INT64_MAX);
        check_time(&v, hv_path(&v, "observations[%zu].observe_time", i), o->observe_time, now_ms);
        hv_int(&v, hv_path(&v, "observations[%zu].period_minutes", i), o->period_minutes, 0, 1440);
        hv_text(&v, hv_path(&v, "observations[%zu].source", i), o->source, 0, SOURCE_MAX);
        c.o[i] =
            (lstore_topic_obs){ .topic = topic != NULL ? topic : "",
                                .display_name = o->display_name,
                                .count = o->mention_count,
                                .observe_us = handler_ts_us(o->observe_time),
                                .period_minutes = o->period_minutes > 0 ? o->period_minutes : 60,
                                .source = source_of(o->source) };
        c.topics[i] = (char *)c.o[i].topic;
    }
    if (hv_failed(&v))
        return;
    if (c.n > 1)
        qsort(c.topics, c.n, sizeof *c.topics, str_cmp);
    for (size_t i = 0; i < c.n; i++)
        if (c.n_topics == 0 || strcmp(c.topics[c.n_topics - 1], c.topics[i]) != 0)
            c.topics[c.n_topics++] = c.topics[i];
    handler_mutation mu = { .request = &req->base,
                            .request_id = req->request_id,
                            .reply_desc = &herald__v1__upsert_topics_response__descriptor,
                            .body = topics_body,
                            .ctx = &c,
                            .what = "topic" };
    handler_result r;
    if (handler_mutate(call, &mu, &r))
        done((const Herald__V1__UpsertTopicsResponse *)r.reply, call);
}

typedef struct ranked_trend {
    lstore_trend *t;
    trends_result r;
} ranked_trend;

static int ranked_cmp(const void *pa, const void *pb)
{
    const ranked_trend *a = pa, *b = pb;
    if (a->r.score != b->r.score)
        return a->r.score > b->r.score ? -1 : 1;
    return strcmp(a->t->topic, b->t->topic);
}

/* Cursor of ListTrends: the evaluation time, then the last (score, topic). */
typedef struct trend_cursor {
    int64_t now_ms;
    double score;
    char topic[65];
} trend_cursor;

static void learning_list_trends(Herald__V1__LearningService_Service *svc,
                                 const Herald__V1__ListTrendsRequest *req,
                                 Herald__V1__ListTrendsResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    const uint8_t *cursor = NULL;
    size_t cursor_len = 0;
    trend_cursor cur;
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    if (req->profile_id[0] != '\0')
        hv_profile_id(&v, "profile_id", req->profile_id);
    int32_t size = hv_page_size(&v, "page_size", req->page_size, TRENDS_DEFAULT, TRENDS_MAX);
    const char *scope_s = arena_printf(a, "ListTrends|p=%s|r=%d|c=%d", req->profile_id,
                                       (int)req->rising_only, (int)req->catalog_only);
    hv_page_token(&v, "page_token", req->page_token, scope_s, &cursor, &cursor_len);
    memset(&cur, 0, sizeof cur);
    if (cursor != NULL) {
        if (cursor_len != sizeof cur)
            hv_add(&v, "page_token", "is not a page token of this list");
        else
            memcpy(&cur, cursor, sizeof cur);
        cur.topic[sizeof cur.topic - 1] = '\0';
    }
    if (hv_failed(&v))
        return;
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;
    lstore_trend *all = NULL;
    size_t n_all = 0;
    status st = lstore_trends_list(db, handler_budget_ms(call), a, req->profile_id,
                                   req->catalog_only, &all, &n_all);
    if (st != ST_OK) {
        handler_fail_db(call, db, st, "trends");
        return;
    }
    int64_t now_ms = cursor != NULL ? cur.now_ms : now_real_ms();
    trends_config tc;
    trends_config_default(&tc);
    ranked_trend *rk = arena_calloc(a, (n_all ? n_all : 1) * sizeof *rk);
    if (rk == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < n_all; i++) {
        rk[n].t = &all[i];
        trend_eval(&all[i], now_ms, &tc, &rk[n].r);
        if (!req->rising_only || rk[n].r.rising)
            n++;
    }
    qsort(rk, n, sizeof *rk, ranked_cmp);
    size_t start = 0;
    if (cursor != NULL) {
        while (start < n &&
               (rk[start].r.score > cur.score ||
                (rk[start].r.score == cur.score && strcmp(rk[start].t->topic, cur.topic) <= 0)))
            start++;
    }
    size_t take = n - start < (size_t)size ? n - start : (size_t)size;
    lstore_trend *page = arena_calloc(a, (take ? take : 1) * sizeof *page);
    Herald__V1__Trend **list = arena_calloc(a, (take ? take : 1) * sizeof *list);
    if (page == NULL || list == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    for (size_t i = 0; i < take; i++)
        page[i] = *rk[start + i].t;
    st = lstore_mentions_24h(db, handler_budget_ms(call), false, req->profile_id, now_ms, page,
                             take);
    if (st != ST_OK) {
        handler_fail_db(call, db, st, "trends");
        return;
    }
    for (size_t i = 0; i < take; i++) {
        list[i] = trend_msg(a, &page[i], &rk[start + i].r);
        if (list[i] == NULL) {
            rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
            return;
        }
    }
    Herald__V1__ListTrendsResponse out = HERALD__V1__LIST_TRENDS_RESPONSE__INIT;
    out.trends = list;
    out.n_trends = take;
    out.next_page_token = (char *)"";
    if (start + take < n && take > 0) {
        trend_cursor nc;
        memset(&nc, 0, sizeof nc);
        nc.now_ms = now_ms;
        nc.score = rk[start + take - 1].r.score;
        (void)snprintf(nc.topic, sizeof nc.topic, "%s", rk[start + take - 1].t->topic);
        out.next_page_token = handler_page_token_encode(a, scope_s, &nc, sizeof nc);
    }
    done(&out, call);
}

/* ---------------------------------------------------------------- UpdateAudience */

typedef struct audience_ctx {
    const Herald__V1__UpdateAudienceRequest *req;
    lstore_zone *z;
    size_t n;
} audience_ctx;

static status audience_body(handler_tx *tx, ProtobufCMessage **reply)
{
    audience_ctx *c = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    const char *pid = c->req->profile_id;
    status st = lstore_profile_check_tx(tx->db, a, pid, NULL);
    if (st == ST_NOT_FOUND)
        return handler_tx_reject(tx, st, "profile %s not found", pid);
    int64_t update_us = 0;
    if (st == ST_OK)
        st = lstore_audience_put_tx(tx->db, pid, c->z, c->n, c->req->source, &update_us);
    if (st == ST_OK)
        st = lstore_learning_bump_tx(tx->db, pid);
    if (st != ST_OK)
        return st;
    Herald__V1__Audience *out = arena_alloc(a, sizeof *out);
    Herald__V1__TimeZoneShare **zs = arena_alloc(a, c->n * sizeof *zs);
    if (out == NULL || zs == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    herald__v1__audience__init(out);
    for (size_t i = 0; i < c->n; i++) {
        zs[i] = arena_alloc(a, sizeof *zs[i]);
        if (zs[i] == NULL)
            return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
        herald__v1__time_zone_share__init(zs[i]);
        zs[i]->time_zone = (char *)c->z[i].time_zone;
        zs[i]->share = c->z[i].share;
    }
    out->profile_id = (char *)pid;
    out->time_zones = zs;
    out->n_time_zones = c->n;
    out->source = c->req->source;
    out->update_time = handler_ts_from_us(a, update_us);
    *reply = &out->base;
    return ST_OK;
}

static void learning_update_audience(Herald__V1__LearningService_Service *svc,
                                     const Herald__V1__UpdateAudienceRequest *req,
                                     Herald__V1__Audience_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    audience_ctx c = { .req = req };
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    hv_profile_id(&v, "profile_id", req->profile_id);
    hv_text(&v, "source", req->source, 0, SOURCE_MAX);
    bool count_ok = hv_count(&v, "time_zones", req->n_time_zones, 1, ZONES_MAX);
    double total = 0.0;
    if (count_ok) {
        c.n = req->n_time_zones;
        c.z = arena_calloc(a, c.n * sizeof *c.z);
        if (c.z == NULL) {
            rpc_call_fail(call, ST_EXHAUSTED, "request too large");
            return;
        }
    }
    for (size_t i = 0; count_ok && i < c.n; i++) {
        const Herald__V1__TimeZoneShare *s = req->time_zones[i];
        const char *zf = hv_path(&v, "time_zones[%zu].time_zone", i);
        const tz_zone *z = NULL;
        if (strlen(s->time_zone) > TZ_NAME_MAX || tz_get(s->time_zone, &z, NULL, 0) != ST_OK)
            hv_add(&v, zf, "must be an IANA time zone such as Europe/Berlin");
        for (size_t j = 0; j < i; j++) {
            if (strcmp(req->time_zones[j]->time_zone, s->time_zone) == 0) {
                hv_add(&v, zf, "repeats time_zones[%zu]", j);
                break;
            }
        }
        if (!(isfinite(s->share) && s->share > 0.0 && s->share < 1e12))
            hv_add(&v, hv_path(&v, "time_zones[%zu].share", i), "must be a number > 0");
        else
            total += s->share;
        c.z[i] = (lstore_zone){ .time_zone = s->time_zone, .share = s->share };
    }
    if (hv_failed(&v))
        return;
    for (size_t i = 0; i < c.n; i++)
        c.z[i].share /= total;
    handler_mutation mu = { .request = &req->base,
                            .request_id = req->request_id,
                            .reply_desc = &herald__v1__audience__descriptor,
                            .body = audience_body,
                            .ctx = &c,
                            .what = "audience" };
    handler_result r;
    bool ok = handler_mutate(call, &mu, &r);
    learning_changed(req->profile_id);
    if (ok)
        done((const Herald__V1__Audience *)r.reply, call);
}

/* clang-format off */
static Herald__V1__LearningService_Service svc = {
    .base = HERALD__V1__LEARNING_SERVICE__BASE_INIT,
    .record_engagement = learning_record_engagement,
    .record_follower_snapshots = learning_record_follower_snapshots,
    .record_replies = learning_record_replies,
    .recompute_outcomes = learning_recompute_outcomes,
    .recommend = learning_recommend,
    .get_insights = learning_get_insights,
    .get_best_times = learning_get_best_times,
    .list_arms = learning_list_arms,
    .set_arm_enabled = learning_set_arm_enabled,
    .list_trends = learning_list_trends,
    .upsert_topics = learning_upsert_topics,
    .update_audience = learning_update_audience,
};
/* clang-format on */

ProtobufCService *svc_learning_service(void)
{
    return &svc.base;
}
