/* svc_scheduling.c - herald.v1.SchedulingService handlers
 * (proto/herald/v1/scheduling.proto), issue 7.
 *
 * Posting policy, quotas and cooldowns; slots (GetNextSlots, SchedulePost);
 * leased publishing (ClaimDueWork, RenewLease, ReportPublishResult,
 * ReconcilePublished); reply opportunities. Handlers run on worker threads
 * and follow rpc.h and handler.h; the SQL is in sched_store.c, the slot side
 * shared with GenerateBatch (policy context, slot inputs, next best, the
 * SCHEDULE check) in sched_slots.c, the rules in server/domain (policy.h,
 * slots.h, lease.h, backoff.h, replyopp.h, besttimes.h).
 *
 * Rules kept here:
 *   - Every mutation goes through handler_mutate (idempotent by request_id;
 *     the transaction is the mutation's). Reads open one transaction too, so
 *     a reply is one snapshot, and take the database clock as "now".
 *   - Policy violations of SchedulePost are FAILED_PRECONDITION naming the
 *     rule (policy_rule_name) in the message and in ErrorInfo.reason
 *     ("POLICY_MIN_GAP_MINUTES"). Replies (posts of kind REPLY) are held to
 *     the reply quotas (max_replies_per_hour / _per_day) and quiet hours and
 *     cooldowns, not to the post quotas and gap.
 *   - State refusals of the lease machine (a lease no longer held, a second
 *     outcome for a reported lease) are FAILED_PRECONDITION with lease.h's
 *     reason; nothing changes. See sched_store.h for lease expiry: a lapsed
 *     lease makes its post UNCONFIRMED, never directly claimable again.
 *   - Slots come from the profile's hour_of_week arms (besttimes over the
 *     current reward version, the learner's half-life) when it has any,
 *     else from slots.h's hour-of-day prior over the audience's zones. */
#include <ctype.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "google/protobuf/field_mask.pb-c.h"
#include "handler.h"
#include "herald/v1/scheduling.pb-c.h"
#include "lease.h"
#include "policy.h"
#include "replyopp.h"
#include "sched_slots.h"
#include "sched_store.h"
#include "slots.h"
#include "svc.h"
#include "tz.h"
#include "util.h"

enum {
    EXECUTOR_ID_MAX = 128,
    EXTERNAL_ID_MAX = 128,
    URL_MAX = 2048,
    ERROR_MESSAGE_MAX = 2000,
    DETAIL_MAX = 1000,
    TEXT_MAX = 10000,
    OBSERVED_MAX = 500,
    TARGETS_MAX = 500,
    TARGET_TEXT_MAX = 4000,
    HANDLE_MAX = 100,
    CLAIM_MAX = 100,
    REPORTS_MAX = 500, /* ReportPublishResults */
    LEASE_DEFAULT_S = 120,
    LEASE_MIN_S = 10,
    LEASE_MAX_S = 3600,
    PAST_SKEW_MS = 60000, /* a publish time this far in the past still means "now" */
    OPP_DEFAULT_PAGE = 20,
    OPP_MAX_PAGE = 200,
};

/* ---------------------------------------------------------------- helpers */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* A seed for a request that gave none: distinct per call, any thread. */
static uint64_t fresh_seed(void)
{
    static atomic_uint_fast64_t counter;
    uint64_t c = atomic_fetch_add(&counter, 1);
    return splitmix64((uint64_t)now_real_ms() ^ ((uint64_t)now_mono_us() << 20) ^ (c << 40));
}

/* Ends a read's transaction and the call on a store failure. */
static void fail_read(rpc_call *call, db_conn *db, status st, const char *what)
{
    db_rollback(db);
    handler_fail_db(call, db, st, what);
}

/* executor_id: 1..128 printable ASCII (required) or 0..128 (optional). */
static void check_executor(hv *v, const char *field, const char *s, bool required)
{
    if (required || s[0] != '\0')
        hv_ascii(v, field, s, 1, EXECUTOR_ID_MAX);
}

/* ---------------------------------------------------------------- messages */

static Herald__V1__PostingPolicy *policy_msg(arena *a, const sched_profile *pr)
{
    const policy *p = &pr->policy;
    Herald__V1__PostingPolicy *m = arena_alloc(a, sizeof *m);
    if (m == NULL)
        return NULL;
    herald__v1__posting_policy__init(m);
    m->profile_id = (char *)pr->profile_id;
    m->max_posts_per_hour = p->max_posts_per_hour;
    m->max_posts_per_day = p->max_posts_per_day;
    m->min_gap_minutes = p->min_gap_minutes;
    if (p->n_quiet_hours > 0) {
        m->quiet_hours = arena_alloc(a, p->n_quiet_hours * sizeof(Herald__V1__QuietHours *));
        if (m->quiet_hours == NULL)
            return NULL;
        for (size_t i = 0; i < p->n_quiet_hours; i++) {
            const policy_quiet *q = &p->quiet_hours[i];
            Herald__V1__QuietHours *w = arena_alloc(a, sizeof *w);
            Herald__V1__DayOfWeek *days = arena_alloc(a, 7 * sizeof *days);
            if (w == NULL || days == NULL)
                return NULL;
            herald__v1__quiet_hours__init(w);
            w->start_minute_of_day = q->start_minute_of_day;
            w->end_minute_of_day = q->end_minute_of_day;
            for (int d = 1; d <= 7; d++)
                if (q->days_mask & (1u << (d - 1)))
                    days[w->n_days++] = (Herald__V1__DayOfWeek)d;
            w->days = days;
            m->quiet_hours[i] = w;
        }
        m->n_quiet_hours = p->n_quiet_hours;
    }
    m->min_replies_per_hour = p->min_replies_per_hour;
    m->max_replies_per_hour = p->max_replies_per_hour;
    m->max_replies_per_day = p->max_replies_per_day;
    m->reply_root_cooldown_hours = p->reply_root_cooldown_hours;
    m->reply_author_cooldown_hours = p->reply_author_cooldown_hours;
    m->reply_freshness_minutes = p->reply_freshness_minutes;
    m->rate_limit_cooldown_minutes = p->rate_limit_cooldown_minutes;
    m->auth_wall_cooldown_minutes = p->auth_wall_cooldown_minutes;
    m->challenge_cooldown_minutes = p->challenge_cooldown_minutes;
    m->cooldown_target_factor = p->cooldown_target_factor;
    m->max_publish_attempts = p->max_publish_attempts;
    m->retry_initial_backoff_seconds = p->retry_initial_backoff_seconds;
    m->retry_max_backoff_seconds = p->retry_max_backoff_seconds;
    m->reconcile_window_minutes = p->reconcile_window_minutes;
    m->revision = pr->policy_revision;
    if (pr->policy_stored)
        m->update_time = handler_ts_from_us(a, pr->policy_update_us);
    return m;
}

/* GetQuotaStatus's message from a loaded context (posts, not replies). */
static Herald__V1__QuotaStatus *quota_msg(arena *a, const sched_slots_ctx *c)
{
    int64_t now_s = c->prof.now_ms / 1000;
    policy_quota q;
    policy_quota_status(&c->ctx, now_s, &q);
    Herald__V1__QuotaStatus *m = arena_alloc(a, sizeof *m);
    if (m == NULL)
        return NULL;
    herald__v1__quota_status__init(m);
    m->profile_id = (char *)c->prof.profile_id;
    m->posts_last_hour = q.posts_last_hour;
    m->posts_today = q.posts_today;
    m->max_posts_per_hour = q.max_posts_per_hour;
    m->max_posts_per_day = q.max_posts_per_day;
    /* replies: the same policy functions over the reply instants */
    policy rp;
    sched_slots_policy_for_kind(&c->prof.policy, true, &rp);
    policy_ctx rc = c->ctx;
    rc.policy = &rp;
    rc.posts_s = c->inst.replies_s;
    rc.n_posts = c->inst.n_replies;
    policy_quota rq;
    policy_quota_status(&rc, now_s, &rq);
    m->replies_last_hour = rq.posts_last_hour;
    m->max_replies_per_hour = rq.max_posts_per_hour;
    if (q.last_publish_s != 0)
        m->last_publish_time = handler_ts_from_ms(a, q.last_publish_s * 1000);
    if (q.next_allowed_s != 0)
        m->next_allowed_time = handler_ts_from_ms(a, q.next_allowed_s * 1000);
    m->in_quiet_hours = q.in_quiet_hours;
    m->in_cooldown = q.in_cooldown;
    const policy_cooldown *cd = c->ctx.cooldown;
    if (cd != NULL && cd->end_s > now_s && cd->start_s <= now_s) {
        m->cooldown_reason = (Herald__V1__PlatformSignalKind)cd->kind;
        m->cooldown_end_time = handler_ts_from_ms(a, cd->end_s * 1000);
    }
    m->paused = c->prof.paused;
    m->scheduled_count = c->inst.scheduled;
    m->server_time = handler_ts_from_ms(a, c->prof.now_ms);
    return arena_exhausted(a) ? NULL : m;
}

/* ---------------------------------------------------------------- the slot model */

/* The slot model's inputs, with the learner's half-life from the config. */
static status slot_inputs_load(rpc_call *call, db_conn *db, const sched_profile *pr,
                               sched_slots_inputs *in)
{
    const worker *w = handler_worker(call);
    double half_life = w != NULL && w->cfg != NULL ? w->cfg->learning_half_life_days : -1;
    return sched_slots_inputs_load_tx(db, rpc_call_arena(call), pr, half_life, in);
}

static Herald__V1__Slot *slot_msg(arena *a, const slots_slot *s)
{
    Herald__V1__Slot *m = arena_alloc(a, sizeof *m);
    Herald__V1__Interval *iv = arena_alloc(a, sizeof *iv);
    char id[32];
    if (m == NULL || iv == NULL)
        return NULL;
    herald__v1__slot__init(m);
    herald__v1__interval__init(iv);
    slots_id_format(s->start_s, id, sizeof id);
    m->slot_id = arena_strdup(a, id);
    m->start_time = handler_ts_from_ms(a, s->start_s * 1000);
    m->hour_of_week = s->hour_of_week;
    m->expected_reward = s->expected_reward;
    iv->lower = s->lower;
    iv->upper = s->upper;
    iv->level = s->level;
    m->interval = iv;
    m->basis = (Herald__V1__SlotBasis)s->basis;
    m->history_weight = s->history_weight;
    m->reason = arena_strdup(a, s->reason);
    return arena_exhausted(a) ? NULL : m;
}

/* A slot for a time the caller chose: its cell's posterior (or the prior). */
static void slot_for_time(const sched_slots_ctx *c, const sched_slots_inputs *in, int64_t t_s,
                          slots_slot *s)
{
    memset(s, 0, sizeof *s);
    s->start_s = t_s;
    s->hour_of_week = tz_hour_of_week(c->prof.zone, t_s);
    if (s->hour_of_week < 0)
        s->hour_of_week = 0;
    if (in->has_model) {
        int h = s->hour_of_week;
        s->expected_reward = in->model.mean[h];
        s->lower = in->model.lower[h];
        s->upper = in->model.upper[h];
        s->level = in->model.level;
        s->history_weight = in->model.history_weight[h];
        s->basis = s->history_weight >= 0.9  ? SLOTS_BASIS_HISTORY
                   : s->history_weight > 0.0 ? SLOTS_BASIS_POOLED
                                             : SLOTS_BASIS_PRIOR;
    } else {
        s->expected_reward = slots_prior_hour(s->hour_of_week % 24);
        s->lower = s->expected_reward - 1.6448536269514722 * SLOTS_PRIOR_SD;
        s->upper = s->expected_reward + 1.6448536269514722 * SLOTS_PRIOR_SD;
        s->level = SLOTS_PRIOR_LEVEL;
        s->basis = SLOTS_BASIS_PRIOR;
    }
    (void)snprintf(s->reason, sizeof s->reason, "requested time (hour of week %d)",
                   s->hour_of_week);
}

/* ---------------------------------------------------------------- GetPostingPolicy */

static void sched_get_posting_policy(Herald__V1__SchedulingService_Service *svc,
                                     const Herald__V1__GetPostingPolicyRequest *req,
                                     Herald__V1__PostingPolicy_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    sched_profile pr;
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_profile_id(&v, "profile_id", req->profile_id);
    if (hv_failed(&v))
        return;
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;
    status st = db_begin(db, handler_budget_ms(call));
    if (st == ST_OK)
        st = sched_profile_load_tx(db, a, req->profile_id, false, &pr);
    if (st == ST_OK)
        st = db_commit(db);
    if (st != ST_OK) {
        fail_read(call, db, st, arena_printf(a, "profile %s", req->profile_id));
        return;
    }
    Herald__V1__PostingPolicy *m = policy_msg(a, &pr);
    if (m == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    done(m, call);
}

/* ---------------------------------------------------------------- SetPostingPolicy */

enum {
    PF_MAX_HOUR = 0,
    PF_MAX_DAY,
    PF_GAP,
    PF_QUIET,
    PF_MIN_REPLIES_HOUR,
    PF_MAX_REPLIES_HOUR,
    PF_MAX_REPLIES_DAY,
    PF_ROOT_COOLDOWN,
    PF_AUTHOR_COOLDOWN,
    PF_FRESHNESS,
    PF_RATE_LIMIT,
    PF_AUTH_WALL,
    PF_CHALLENGE,
    PF_FACTOR,
    PF_ATTEMPTS,
    PF_BACKOFF_INIT,
    PF_BACKOFF_MAX,
    PF_WINDOW,
    PF_COUNT,
};

/* clang-format off */
static const char *const policy_fields[PF_COUNT] = {
    "max_posts_per_hour", "max_posts_per_day", "min_gap_minutes", "quiet_hours",
    "min_replies_per_hour", "max_replies_per_hour", "max_replies_per_day",
    "reply_root_cooldown_hours", "reply_author_cooldown_hours", "reply_freshness_minutes",
    "rate_limit_cooldown_minutes", "auth_wall_cooldown_minutes", "challenge_cooldown_minutes",
    "cooldown_target_factor", "max_publish_attempts", "retry_initial_backoff_seconds",
    "retry_max_backoff_seconds", "reconcile_window_minutes",
};
/* clang-format on */
#define PF_ALL ((1u << PF_COUNT) - 1)

/* camelCase -> snake_case (JSON clients may send either). */
static void path_snake(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *c = in; *c && o + 2 < cap; c++) {
        if (*c >= 'A' && *c <= 'Z') {
            out[o++] = '_';
            out[o++] = (char)(*c - 'A' + 'a');
        } else {
            out[o++] = *c;
        }
    }
    out[o] = '\0';
}

static int *policy_int_field(policy *p, int f)
{
    switch (f) {
    case PF_MAX_HOUR:
        return &p->max_posts_per_hour;
    case PF_MAX_DAY:
        return &p->max_posts_per_day;
    case PF_GAP:
        return &p->min_gap_minutes;
    case PF_MIN_REPLIES_HOUR:
        return &p->min_replies_per_hour;
    case PF_MAX_REPLIES_HOUR:
        return &p->max_replies_per_hour;
    case PF_MAX_REPLIES_DAY:
        return &p->max_replies_per_day;
    case PF_ROOT_COOLDOWN:
        return &p->reply_root_cooldown_hours;
    case PF_AUTHOR_COOLDOWN:
        return &p->reply_author_cooldown_hours;
    case PF_FRESHNESS:
        return &p->reply_freshness_minutes;
    case PF_RATE_LIMIT:
        return &p->rate_limit_cooldown_minutes;
    case PF_AUTH_WALL:
        return &p->auth_wall_cooldown_minutes;
    case PF_CHALLENGE:
        return &p->challenge_cooldown_minutes;
    case PF_ATTEMPTS:
        return &p->max_publish_attempts;
    case PF_BACKOFF_INIT:
        return &p->retry_initial_backoff_seconds;
    case PF_BACKOFF_MAX:
        return &p->retry_max_backoff_seconds;
    case PF_WINDOW:
        return &p->reconcile_window_minutes;
    default:
        return NULL;
    }
}

/* The request's policy as a struct policy (quiet hours as masks). */
static void policy_from_msg(const Herald__V1__PostingPolicy *m, policy *p)
{
    memset(p, 0, sizeof *p);
    int32_t vals[PF_COUNT] = {
        [PF_MAX_HOUR] = m->max_posts_per_hour,
        [PF_MAX_DAY] = m->max_posts_per_day,
        [PF_GAP] = m->min_gap_minutes,
        [PF_MIN_REPLIES_HOUR] = m->min_replies_per_hour,
        [PF_MAX_REPLIES_HOUR] = m->max_replies_per_hour,
        [PF_MAX_REPLIES_DAY] = m->max_replies_per_day,
        [PF_ROOT_COOLDOWN] = m->reply_root_cooldown_hours,
        [PF_AUTHOR_COOLDOWN] = m->reply_author_cooldown_hours,
        [PF_FRESHNESS] = m->reply_freshness_minutes,
        [PF_RATE_LIMIT] = m->rate_limit_cooldown_minutes,
        [PF_AUTH_WALL] = m->auth_wall_cooldown_minutes,
        [PF_CHALLENGE] = m->challenge_cooldown_minutes,
        [PF_ATTEMPTS] = m->max_publish_attempts,
        [PF_BACKOFF_INIT] = m->retry_initial_backoff_seconds,
        [PF_BACKOFF_MAX] = m->retry_max_backoff_seconds,
        [PF_WINDOW] = m->reconcile_window_minutes,
    };
    for (int f = 0; f < PF_COUNT; f++) {
        int *dst = policy_int_field(p, f);
        if (dst != NULL)
            *dst = vals[f];
    }
    p->cooldown_target_factor = m->cooldown_target_factor;
    for (size_t i = 0; i < m->n_quiet_hours && i < POLICY_MAX_QUIET; i++) {
        const Herald__V1__QuietHours *q = m->quiet_hours[i];
        policy_quiet *w = &p->quiet_hours[p->n_quiet_hours++];
        w->start_minute_of_day = q->start_minute_of_day;
        w->end_minute_of_day = q->end_minute_of_day;
        for (size_t d = 0; d < q->n_days; d++)
            if (q->days[d] >= 1 && q->days[d] <= 7)
                w->days_mask |= 1u << (q->days[d] - 1);
    }
}

/* The fields an empty mask means: those set to a non-default value. */
static unsigned implicit_policy_mask(const policy *in)
{
    unsigned m = 0;
    policy tmp = *in;
    for (int f = 0; f < PF_COUNT; f++) {
        const int *v = policy_int_field(&tmp, f);
        if (v != NULL && *v != 0)
            m |= 1u << f;
    }
    if (in->n_quiet_hours > 0)
        m |= 1u << PF_QUIET;
    if (in->cooldown_target_factor != 0.0)
        m |= 1u << PF_FACTOR;
    return m;
}

typedef struct set_policy_ctx {
    const Herald__V1__SetPostingPolicyRequest *req;
    policy in;
    unsigned mask;
} set_policy_ctx;

static status set_policy_body(handler_tx *tx, ProtobufCMessage **reply)
{
    set_policy_ctx *c = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    sched_profile pr;

    status st = sched_profile_load_tx(tx->db, a, c->req->profile_id, true, &pr);
    if (st == ST_NOT_FOUND)
        return handler_tx_reject(tx, st, "profile %s not found", c->req->profile_id);
    if (st != ST_OK)
        return st;
    if (c->req->expected_revision != 0 && c->req->expected_revision != pr.policy_revision)
        return handler_tx_reject(tx, ST_CONFLICT,
                                 "the posting policy of %s is at revision %lld, not %lld; read "
                                 "it again",
                                 pr.profile_id, (long long)pr.policy_revision,
                                 (long long)c->req->expected_revision);
    policy merged = pr.policy;
    for (int f = 0; f < PF_COUNT; f++) {
        if (!(c->mask & (1u << f)))
            continue;
        if (f == PF_QUIET) {
            memcpy(merged.quiet_hours, c->in.quiet_hours, sizeof merged.quiet_hours);
            merged.n_quiet_hours = c->in.n_quiet_hours;
        } else if (f == PF_FACTOR) {
            merged.cooldown_target_factor = c->in.cooldown_target_factor;
        } else {
            policy in = c->in;
            *policy_int_field(&merged, f) = *policy_int_field(&in, f);
        }
    }
    policy_violation viol[32];
    size_t nv = policy_validate(&merged, viol, sizeof viol / sizeof viol[0]);
    if (nv > 0) {
        size_t shown = nv < 32 ? nv : 32;
        for (size_t i = 0; i < shown; i++)
            rpc_call_add_violation(tx->call, arena_printf(a, "policy.%s", viol[i].field),
                                   viol[i].description);
        return handler_tx_reject(tx, ST_INVALID, "policy.%s: %s", viol[0].field,
                                 viol[0].description);
    }
    st = sched_policy_put_tx(tx->db, pr.profile_id, &merged, &pr.policy_revision,
                             &pr.policy_update_us);
    if (st != ST_OK)
        return st;
    pr.policy = merged;
    pr.policy_stored = true;
    Herald__V1__PostingPolicy *m = policy_msg(a, &pr);
    if (m == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    *reply = &m->base;
    return ST_OK;
}

static void sched_set_posting_policy(Herald__V1__SchedulingService_Service *svc,
                                     const Herald__V1__SetPostingPolicyRequest *req,
                                     Herald__V1__PostingPolicy_Closure done, void *data)
{
    rpc_call *call = data;
    set_policy_ctx c = { .req = req };
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    hv_profile_id(&v, "profile_id", req->profile_id);
    hv_int(&v, "expected_revision", req->expected_revision, 0, INT64_MAX);
    const Herald__V1__PostingPolicy *in = req->policy;
    if (hv_present(&v, "policy", in)) {
        if (hv_count(&v, "policy.quiet_hours", in->n_quiet_hours, 0, POLICY_MAX_QUIET)) {
            for (size_t i = 0; i < in->n_quiet_hours; i++) {
                const Herald__V1__QuietHours *q = in->quiet_hours[i];
                hv_count(&v, hv_path(&v, "policy.quiet_hours[%zu].days", i), q->n_days, 0, 7);
                for (size_t d = 0; d < q->n_days && d < 7; d++)
                    hv_enum(&v, hv_path(&v, "policy.quiet_hours[%zu].days[%zu]", i, d),
                            &herald__v1__day_of_week__descriptor, (int)q->days[d], true);
            }
        }
        if (!isfinite(in->cooldown_target_factor))
            hv_add(&v, "policy.cooldown_target_factor", "must be a finite number");
        policy_from_msg(in, &c.in);
    }
    const Google__Protobuf__FieldMask *mask = req->update_mask;
    if (mask == NULL || mask->n_paths == 0) {
        c.mask = in != NULL ? implicit_policy_mask(&c.in) : 0;
    } else {
        hv_count(&v, "update_mask.paths", mask->n_paths, 1, 64);
        for (size_t i = 0; i < mask->n_paths && i < 64; i++) {
            char path[80];
            path_snake(mask->paths[i], path, sizeof path);
            if (strcmp(path, "*") == 0) {
                c.mask |= PF_ALL;
                continue;
            }
            int f = 0;
            while (f < PF_COUNT && strcmp(policy_fields[f], path) != 0)
                f++;
            if (f < PF_COUNT)
                c.mask |= 1u << f;
            else if (strcmp(path, "profile_id") == 0 || strcmp(path, "revision") == 0 ||
                     strcmp(path, "update_time") == 0)
                hv_add(&v, hv_path(&v, "update_mask.paths[%zu]", i), "%s is output only", path);
            else
                hv_add(&v, hv_path(&v, "update_mask.paths[%zu]", i),
                       "is not a field of PostingPolicy");
        }
    }
    if (hv_failed(&v))
        return;
    handler_mutation m = { .request = &req->base,
                           .request_id = req->request_id,
                           .reply_desc = &herald__v1__posting_policy__descriptor,
                           .body = set_policy_body,
                           .ctx = &c,
                           .what = "posting policy" };
    handler_result r;
    if (handler_mutate(call, &m, &r))
        done((const Herald__V1__PostingPolicy *)r.reply, call);
}

/* ---------------------------------------------------------------- GetQuotaStatus */

static void sched_get_quota_status(Herald__V1__SchedulingService_Service *svc,
                                   const Herald__V1__GetQuotaStatusRequest *req,
                                   Herald__V1__QuotaStatus_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    sched_slots_ctx c;
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_profile_id(&v, "profile_id", req->profile_id);
    if (hv_failed(&v))
        return;
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;
    status st = db_begin(db, handler_budget_ms(call));
    if (st == ST_OK)
        st = sched_slots_ctx_load_tx(db, a, req->profile_id, false, NULL, 0, false, &c);
    if (st == ST_OK)
        st = db_commit(db);
    if (st != ST_OK) {
        fail_read(call, db, st, arena_printf(a, "profile %s", req->profile_id));
        return;
    }
    Herald__V1__QuotaStatus *m = quota_msg(a, &c);
    if (m == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    done(m, call);
}

/* ---------------------------------------------------------------- ReportPlatformSignal */

static status signal_body(handler_tx *tx, ProtobufCMessage **reply)
{
    const Herald__V1__ReportPlatformSignalRequest *req = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    sched_slots_ctx c;
    char kind[32];

    status st = sched_slots_ctx_load_tx(tx->db, a, req->profile_id, true, NULL, 0, false, &c);
    if (st == ST_NOT_FOUND)
        return handler_tx_reject(tx, st, "profile %s not found", req->profile_id);
    if (st != ST_OK)
        return st;
    int64_t now_s = c.prof.now_ms / 1000;
    const policy_cooldown *cur =
        c.prof.has_cooldown && c.prof.cooldown.end_s > now_s ? &c.prof.cooldown : NULL;
    int64_t reset_ms = handler_ts_ms(req->reset_time);
    int64_t reset_s = reset_ms > 0 ? reset_ms / 1000 : 0;
    policy_cooldown next;
    st = policy_cooldown_from_signal(&c.prof.policy, cur, (policy_signal)req->kind, now_s, reset_s,
                                     &next);
    if (st != ST_OK)
        return handler_tx_reject(tx, ST_INVALID, "kind: not a platform signal");
    const char *k = handler_enum_db_name(&herald__v1__platform_signal_kind__descriptor,
                                         (int)req->kind, kind, sizeof kind);
    st = sched_cooldown_put_tx(tx->db, c.prof.profile_id, req->executor_id, k, reset_ms,
                               req->detail, &next);
    if (st != ST_OK)
        return st;
    c.prof.has_cooldown = true;
    c.prof.cooldown = next;
    c.ctx.cooldown = &c.prof.cooldown;

    Herald__V1__ReportPlatformSignalResponse *out = arena_alloc(a, sizeof *out);
    if (out == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    herald__v1__report_platform_signal_response__init(out);
    if (next.end_s > now_s)
        out->cooldown_end_time = handler_ts_from_ms(a, next.end_s * 1000);
    out->quota = quota_msg(a, &c);
    if (out->quota == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    *reply = &out->base;
    return ST_OK;
}

static void sched_report_platform_signal(Herald__V1__SchedulingService_Service *svc,
                                         const Herald__V1__ReportPlatformSignalRequest *req,
                                         Herald__V1__ReportPlatformSignalResponse_Closure done,
                                         void *data)
{
    rpc_call *call = data;
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    hv_profile_id(&v, "profile_id", req->profile_id);
    check_executor(&v, "executor_id", req->executor_id, false);
    hv_enum(&v, "kind", &herald__v1__platform_signal_kind__descriptor, (int)req->kind, true);
    hv_timestamp(&v, "reset_time", req->reset_time, false, NULL);
    hv_text(&v, "detail", req->detail, 0, DETAIL_MAX);
    if (hv_failed(&v))
        return;
    handler_mutation m = { .request = &req->base,
                           .request_id = req->request_id,
                           .reply_desc = &herald__v1__report_platform_signal_response__descriptor,
                           .body = signal_body,
                           .ctx = (void *)req,
                           .what = "platform signal" };
    handler_result r;
    if (handler_mutate(call, &m, &r))
        done((const Herald__V1__ReportPlatformSignalResponse *)r.reply, call);
}

/* ---------------------------------------------------------------- GetNextSlots */

static void sched_get_next_slots(Herald__V1__SchedulingService_Service *svc,
                                 const Herald__V1__GetNextSlotsRequest *req,
                                 Herald__V1__GetNextSlotsResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    int64_t after_ms = 0;
    sched_slots_ctx c;
    sched_slots_inputs *in = arena_alloc(a, sizeof *in);
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_profile_id(&v, "profile_id", req->profile_id);
    hv_timestamp(&v, "after_time", req->after_time, false, &after_ms);
    hv_int(&v, "count", req->count, 0, SLOTS_MAX);
    if (hv_failed(&v))
        return;
    if (in == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "request too large");
        return;
    }
    size_t count = req->count > 0 ? (size_t)req->count : SLOTS_DEFAULT_COUNT;
    uint64_t seed = SVC_HAS(req, seed) ? req->seed : fresh_seed();
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;
    status st = db_begin(db, handler_budget_ms(call));
    if (st == ST_OK)
        st = sched_slots_ctx_load_tx(db, a, req->profile_id, false, NULL, after_ms, false, &c);
    if (st == ST_OK)
        st = slot_inputs_load(call, db, &c.prof, in);
    if (st == ST_OK)
        st = db_commit(db);
    if (st != ST_OK) {
        fail_read(call, db, st, arena_printf(a, "profile %s", req->profile_id));
        return;
    }
    int64_t from_ms = after_ms > c.prof.now_ms ? after_ms : c.prof.now_ms;
    slots_request sr;
    slots_slot *slots = arena_alloc(a, count * sizeof *slots);
    size_t n = 0;
    if (slots == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    sched_slots_req_init(&sr, &c, in, (from_ms + 999) / 1000, count, seed);
    st = slots_next(&sr, slots, &n);
    if (st != ST_OK) {
        rpc_call_fail(call, ST_INTERNAL, "the slot model could not be evaluated");
        return;
    }
    Herald__V1__GetNextSlotsResponse resp = HERALD__V1__GET_NEXT_SLOTS_RESPONSE__INIT;
    resp.time_zone = (char *)c.prof.time_zone;
    resp.seed = seed;
    if (n > 0) {
        resp.slots = arena_alloc(a, n * sizeof(Herald__V1__Slot *));
        for (size_t i = 0; resp.slots != NULL && i < n; i++)
            resp.slots[i] = slot_msg(a, &slots[i]);
        if (resp.slots == NULL || arena_exhausted(a)) {
            rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
            return;
        }
        resp.n_slots = n;
    }
    done(&resp, call);
}

/* ---------------------------------------------------------------- SchedulePost */

typedef struct schedule_ctx {
    const Herald__V1__SchedulePostRequest *req;
    int64_t when_ms; /* publish_time / slot start; 0 for next_best */
    int64_t after_ms;
    uint64_t seed;
} schedule_ctx;

static status schedule_body(handler_tx *tx, ProtobufCMessage **reply)
{
    schedule_ctx *sc = tx->ctx;
    const Herald__V1__SchedulePostRequest *req = sc->req;
    arena *a = rpc_call_arena(tx->call);
    Herald__V1__Post *post = NULL;
    sched_post_meta meta;
    sched_slots_ctx c;
    sched_slots_inputs *in = arena_alloc(a, sizeof *in);

    if (in == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "request too large");
    status st = sched_post_get_tx(tx->db, a, req->post_id, true, &post, &meta);
    if (st == ST_NOT_FOUND)
        return handler_tx_reject(tx, st, "post %s not found", req->post_id);
    if (st != ST_OK)
        return st;
    /* the state machine decides whether it may be (re)scheduled */
    const char *why = "";
    if (sched_slots_may_schedule(&meta, 0, 1, &why) != ST_OK) {
        rpc_call_set_error_info(tx->call, "POST_STATE", HANDLER_ERROR_DOMAIN);
        return handler_tx_reject(tx, ST_FAILED_PRECONDITION, "post %s is %s: %s", req->post_id,
                                 lease_post_state_name(meta.state), why);
    }

    st = sched_slots_ctx_load_tx(tx->db, a, meta.profile_id, true, req->post_id,
                                 sc->when_ms != 0 ? sc->when_ms : sc->after_ms, meta.reply, &c);
    if (st != ST_OK)
        return st;
    int64_t now_ms = c.prof.now_ms;
    if (sc->when_ms != 0 && sc->when_ms < now_ms - PAST_SKEW_MS) {
        const char *field = req->when_case == HERALD__V1__SCHEDULE_POST_REQUEST__WHEN_SLOT_ID
                                ? "slot_id"
                                : "publish_time";
        rpc_call_add_violation(tx->call, field, "is in the past");
        return handler_tx_reject(tx, ST_INVALID, "%s: is in the past", field);
    }
    st = slot_inputs_load(tx->call, tx->db, &c.prof, in);
    if (st != ST_OK)
        return st;

    slots_slot chosen;
    const char *decision_id = NULL;
    if (sc->when_ms == 0) {
        double propensity = 0;
        st = sched_slots_next_best(&c, in, sc->after_ms, sc->seed, &chosen, &propensity);
        if (st == ST_NOT_FOUND) {
            rpc_call_set_error_info(tx->call, "POLICY_NO_SLOT", HANDLER_ERROR_DOMAIN);
            return handler_tx_reject(tx, ST_FAILED_PRECONDITION,
                                     "no slot within %d days keeps the posting policy",
                                     SLOTS_DEFAULT_HORIZON_DAYS);
        }
        if (st != ST_OK)
            return handler_tx_reject(tx, ST_INTERNAL, "the slot model could not be evaluated");
        st = sched_slots_decision_tx(tx->db, a, &c, &chosen, sc->seed, propensity, &decision_id);
        if (st == ST_EXHAUSTED)
            return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
        if (st != ST_OK)
            return st;
    } else {
        int64_t t_ms = sc->when_ms < now_ms ? now_ms : sc->when_ms;
        slot_for_time(&c, in, t_ms / 1000, &chosen);
        if (req->when_case == HERALD__V1__SCHEDULE_POST_REQUEST__WHEN_PUBLISH_TIME)
            chosen.start_s = t_ms / 1000; /* whole seconds, as policy.h counts */
    }

    unsigned broken = 0;
    policy_rule rule = policy_check(&c.ctx, chosen.start_s, &broken);
    if (rule != POLICY_RULE_OK) {
        const char *name = sched_slots_rule_name(rule, meta.reply);
        char reason[64];
        sched_slots_rule_reason(rule, meta.reply, reason, sizeof reason);
        rpc_call_set_error_info(tx->call, reason, HANDLER_ERROR_DOMAIN);
        return handler_tx_reject(tx, ST_FAILED_PRECONDITION, "%s: %s", name,
                                 policy_rule_describe(rule));
    }
    int64_t schedule_ms = chosen.start_s * 1000;
    if (req->when_case == HERALD__V1__SCHEDULE_POST_REQUEST__WHEN_PUBLISH_TIME &&
        sc->when_ms >= now_ms)
        schedule_ms = sc->when_ms; /* keep the milliseconds asked for */
    if (sched_slots_may_schedule(&meta, now_ms, schedule_ms, &why) != ST_OK)
        return handler_tx_reject(tx, ST_FAILED_PRECONDITION, "%s", why);
    st = sched_post_schedule_tx(tx->db, req->post_id, schedule_ms,
                                tz_hour_of_week(c.prof.zone, chosen.start_s), decision_id);
    if (st != ST_OK)
        return st;
    st = sched_post_get_tx(tx->db, a, req->post_id, false, &post, NULL);
    if (st != ST_OK)
        return st;
    Herald__V1__SchedulePostResponse *out = arena_alloc(a, sizeof *out);
    if (out == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    herald__v1__schedule_post_response__init(out);
    out->post = post;
    out->slot = slot_msg(a, &chosen);
    out->decision_id = decision_id != NULL ? (char *)decision_id : (char *)"";
    if (out->slot == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    *reply = &out->base;
    return ST_OK;
}

static void sched_schedule_post(Herald__V1__SchedulingService_Service *svc,
                                const Herald__V1__SchedulePostRequest *req,
                                Herald__V1__SchedulePostResponse_Closure done, void *data)
{
    rpc_call *call = data;
    schedule_ctx sc = { .req = req };
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    hv_uuid(&v, "post_id", req->post_id, true);
    switch (req->when_case) {
    case HERALD__V1__SCHEDULE_POST_REQUEST__WHEN_PUBLISH_TIME:
        if (hv_timestamp(&v, "publish_time", req->publish_time, true, &sc.when_ms) &&
            sc.when_ms == 0)
            sc.when_ms = 1; /* the epoch itself: certainly in the past */
        break;
    case HERALD__V1__SCHEDULE_POST_REQUEST__WHEN_SLOT_ID: {
        int64_t start_s = 0;
        if (!slots_id_parse(req->slot_id, &start_s) || start_s <= 0 || start_s > TZ_MAX_S)
            hv_add(&v, "slot_id", "is not a slot id from GetNextSlots");
        else
            sc.when_ms = start_s * 1000;
        break;
    }
    case HERALD__V1__SCHEDULE_POST_REQUEST__WHEN_NEXT_BEST:
        if (req->next_best != NULL)
            hv_timestamp(&v, "next_best.after_time", req->next_best->after_time, false,
                         &sc.after_ms);
        break;
    default:
        hv_add(&v, "when", "one of publish_time, slot_id or next_best is required");
        break;
    }
    if (hv_failed(&v))
        return;
    /* next best: a seed derived from the request, so a retry under another
     * request_id picks the same slot */
    uint8_t h[32];
    size_t len = 0;
    const uint8_t *bytes = rpc_call_request_data(call, &len);
    db_sha256(bytes != NULL ? bytes : (const uint8_t *)"", len, h);
    memcpy(&sc.seed, h, sizeof sc.seed);
    handler_mutation m = { .request = &req->base,
                           .request_id = req->request_id,
                           .reply_desc = &herald__v1__schedule_post_response__descriptor,
                           .body = schedule_body,
                           .ctx = &sc,
                           .what = "post" };
    handler_result r;
    if (handler_mutate(call, &m, &r))
        done((const Herald__V1__SchedulePostResponse *)r.reply, call);
}

/* ---------------------------------------------------------------- ClaimDueWork */

typedef struct claim_ctx {
    sched_claim claim;
} claim_ctx;

static status claim_body(handler_tx *tx, ProtobufCMessage **reply)
{
    claim_ctx *c = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    sched_work *w = NULL;
    size_t n = 0;
    int64_t now_ms = 0;

    status st = sched_claim_tx(tx->db, a, &c->claim, &w, &n, &now_ms);
    if (st != ST_OK)
        return st;
    Herald__V1__ClaimDueWorkResponse *out = arena_alloc(a, sizeof *out);
    if (out == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    herald__v1__claim_due_work_response__init(out);
    if (n > 0) {
        out->items = arena_alloc(a, n * sizeof(Herald__V1__WorkItem *));
        if (out->items == NULL)
            return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
        for (size_t i = 0; i < n; i++) {
            Herald__V1__WorkItem *it = arena_alloc(a, sizeof *it);
            if (it == NULL)
                return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
            herald__v1__work_item__init(it);
            it->lease = w[i].lease;
            it->post = w[i].post;
            out->items[i] = it;
        }
        out->n_items = n;
    }
    out->server_time = handler_ts_from_ms(a, now_ms != 0 ? now_ms : now_real_ms());
    *reply = &out->base;
    return ST_OK;
}

/* A text[] literal of platform database spellings ({x,bluesky}). */
static const char *platforms_literal(arena *a, const Herald__V1__Platform *p, size_t n)
{
    if (n == 0)
        return NULL;
    strbuf b = { 0 };
    strbuf_putc(&b, '{');
    for (size_t i = 0; i < n; i++) {
        char name[32];
        const char *s =
            handler_enum_db_name(&herald__v1__platform__descriptor, (int)p[i], name, sizeof name);
        strbuf_printf(&b, "%s%s", i > 0 ? "," : "", s != NULL ? s : "none");
    }
    strbuf_putc(&b, '}');
    const char *out = arena_strdup(a, b.data);
    strbuf_fini(&b);
    return out;
}

static int32_t lease_seconds(hv *v, const char *field, int32_t s)
{
    if (s == 0)
        return LEASE_DEFAULT_S;
    hv_int(v, field, s, LEASE_MIN_S, LEASE_MAX_S);
    return s;
}

static void sched_claim_due_work(Herald__V1__SchedulingService_Service *svc,
                                 const Herald__V1__ClaimDueWorkRequest *req,
                                 Herald__V1__ClaimDueWorkResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    claim_ctx c;
    hv v;
    (void)svc;

    memset(&c, 0, sizeof c);
    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    check_executor(&v, "executor_id", req->executor_id, true);
    if (req->profile_id[0] != '\0')
        hv_profile_id(&v, "profile_id", req->profile_id);
    if (hv_count(&v, "platforms", req->n_platforms, 0, 4))
        for (size_t i = 0; i < req->n_platforms; i++)
            hv_enum(&v, hv_path(&v, "platforms[%zu]", i), &herald__v1__platform__descriptor,
                    (int)req->platforms[i], true);
    hv_int(&v, "limit", req->limit, 0, CLAIM_MAX);
    int32_t ls = lease_seconds(&v, "lease_seconds", req->lease_seconds);
    if (hv_failed(&v))
        return;
    c.claim.executor_id = req->executor_id;
    c.claim.profile_id = req->profile_id;
    c.claim.platforms = platforms_literal(a, req->platforms, req->n_platforms);
    c.claim.builtin = false;
    c.claim.limit = req->limit > 0 ? req->limit : 1;
    c.claim.lease_ms = (int64_t)ls * 1000;
    handler_mutation m = { .request = &req->base,
                           .request_id = req->request_id,
                           .reply_desc = &herald__v1__claim_due_work_response__descriptor,
                           .body = claim_body,
                           .ctx = &c,
                           .what = "due work" };
    handler_result r;
    if (handler_mutate(call, &m, &r))
        done((const Herald__V1__ClaimDueWorkResponse *)r.reply, call);
}

/* ---------------------------------------------------------------- RenewLease */

typedef struct renew_ctx {
    const Herald__V1__RenewLeaseRequest *req;
    int64_t lease_ms;
} renew_ctx;

static status renew_body(handler_tx *tx, ProtobufCMessage **reply)
{
    renew_ctx *c = tx->ctx;
    Herald__V1__Lease *l = NULL;
    sched_refusal why;
    status st = sched_renew_tx(tx->db, rpc_call_arena(tx->call), c->req->lease_id,
                               c->req->executor_id, c->lease_ms, &l, &why);
    if (st == ST_NOT_FOUND)
        return handler_tx_reject(tx, st, "lease %s not found", c->req->lease_id);
    if (why.st != ST_OK)
        return handler_tx_reject(tx, why.st, "lease %s: %s", c->req->lease_id, why.reason);
    if (st != ST_OK)
        return st;
    *reply = &l->base;
    return ST_OK;
}

static void sched_renew_lease(Herald__V1__SchedulingService_Service *svc,
                              const Herald__V1__RenewLeaseRequest *req,
                              Herald__V1__Lease_Closure done, void *data)
{
    rpc_call *call = data;
    renew_ctx c = { .req = req };
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    hv_uuid(&v, "lease_id", req->lease_id, true);
    check_executor(&v, "executor_id", req->executor_id, true);
    c.lease_ms = (int64_t)lease_seconds(&v, "lease_seconds", req->lease_seconds) * 1000;
    if (hv_failed(&v))
        return;
    handler_mutation m = { .request = &req->base,
                           .request_id = req->request_id,
                           .reply_desc = &herald__v1__lease__descriptor,
                           .body = renew_body,
                           .ctx = &c,
                           .what = "lease" };
    handler_result r;
    if (handler_mutate(call, &m, &r))
        done((const Herald__V1__Lease *)r.reply, call);
}

/* ---------------------------------------------------------------- ReportPublishResult(s) */

/* The ErrorInfo reason of a refused report: st and why as sched_report_tx
 * (or sched_report_batch_tx, per report) gave them. */
static const char *report_refusal_reason(status st, const char *why)
{
    if (st == ST_NOT_FOUND)
        return "LEASE_NOT_FOUND";
    if (st == ST_ALREADY_EXISTS)
        return "RECEIPT_TAKEN";
    return strstr(why, "different outcome") != NULL ? "OUTCOME_CONFLICT"
           : strstr(why, "another post") != NULL    ? "LEASE_POST_MISMATCH"
                                                    : "LEASE_NOT_HELD";
}

/* The fields of one report as both requests carry them. */
typedef struct report_in {
    const char *lease_id;
    const char *post_id;
    Herald__V1__PublishOutcome outcome;
    const char *external_id;
    const char *external_url;
    Herald__V1__PublishErrorClass error_class;
    const char *error_message;
    const Google__Protobuf__Timestamp *publish_time;
    bool has_retry_after;
    int32_t retry_after_s;
} report_in;

/* Validates in (field paths under prefix: "" or "reports[3].") and fills
 * *out (strings borrowed from in, post_id lower-cased in the call's arena). */
static void report_check(hv *v, const char *prefix, const report_in *in, const char *executor_id,
                         sched_report *out)
{
    int64_t publish_ms = 0;
#define F(name) (prefix[0] != '\0' ? hv_path(v, "%s%s", prefix, name) : name)
    hv_uuid(v, F("lease_id"), in->lease_id, true);
    hv_uuid(v, F("post_id"), in->post_id, true);
    hv_enum(v, F("outcome"), &herald__v1__publish_outcome__descriptor, (int)in->outcome, true);
    if (in->outcome == HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_SUCCESS)
        hv_text(v, F("external_id"), in->external_id, 1, EXTERNAL_ID_MAX);
    else
        hv_text(v, F("external_id"), in->external_id, 0, EXTERNAL_ID_MAX);
    hv_text(v, F("external_url"), in->external_url, 0, URL_MAX);
    hv_enum(v, F("error_class"), &herald__v1__publish_error_class__descriptor, (int)in->error_class,
            false);
    hv_text(v, F("error_message"), in->error_message, 0, ERROR_MESSAGE_MAX);
    hv_timestamp(v, F("publish_time"), in->publish_time, false, &publish_ms);
    if (in->has_retry_after)
        hv_int(v, F("retry_after_seconds"), in->retry_after_s, 0, 86400);
#undef F
    memset(out, 0, sizeof *out);
    out->lease_id = in->lease_id;
    out->executor_id = executor_id;
    /* canonical lower case, as the database prints uuids */
    char *pid = arena_strdup(v->arena, in->post_id);
    for (char *c = pid; c != NULL && *c != '\0'; c++)
        *c = (char)tolower((unsigned char)*c);
    out->post_id = pid != NULL ? pid : "";
    out->outcome = (lease_outcome)in->outcome;
    out->error_class = (int)in->error_class;
    out->external_id = in->external_id;
    out->external_url = in->external_url;
    out->error_message = in->error_message;
    out->publish_ms = publish_ms;
    out->retry_after_s = in->has_retry_after ? in->retry_after_s : -1;
}

static status report_body(handler_tx *tx, ProtobufCMessage **reply)
{
    const sched_report *rq = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    sched_report_result res;
    sched_refusal why;

    status st = sched_report_tx(tx->db, a, rq, &res, &why);
    if (st == ST_NOT_FOUND)
        return handler_tx_reject(tx, st, "lease %s not found", rq->lease_id);
    if (why.st != ST_OK) {
        rpc_call_set_error_info(tx->call, report_refusal_reason(why.st, why.reason),
                                HANDLER_ERROR_DOMAIN);
        return handler_tx_reject(tx, why.st, "lease %s: %s", rq->lease_id, why.reason);
    }
    if (st == ST_ALREADY_EXISTS) {
        rpc_call_set_error_info(tx->call, report_refusal_reason(st, ""), HANDLER_ERROR_DOMAIN);
        return handler_tx_reject(tx, ST_FAILED_PRECONDITION,
                                 "external_id %s is already the receipt of another post",
                                 rq->external_id);
    }
    if (st != ST_OK)
        return st;
    Herald__V1__ReportPublishResultResponse *out = arena_alloc(a, sizeof *out);
    if (out == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    herald__v1__report_publish_result_response__init(out);
    out->post = res.post;
    out->duplicate_report = res.duplicate;
    if (res.next_attempt_ms != 0)
        out->next_attempt_time = handler_ts_from_ms(a, res.next_attempt_ms);
    *reply = &out->base;
    return ST_OK;
}

static void sched_report_publish_result(Herald__V1__SchedulingService_Service *svc,
                                        const Herald__V1__ReportPublishResultRequest *req,
                                        Herald__V1__ReportPublishResultResponse_Closure done,
                                        void *data)
{
    rpc_call *call = data;
    sched_report rq;
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    check_executor(&v, "executor_id", req->executor_id, true);
    report_in in = { .lease_id = req->lease_id,
                     .post_id = req->post_id,
                     .outcome = req->outcome,
                     .external_id = req->external_id,
                     .external_url = req->external_url,
                     .error_class = req->error_class,
                     .error_message = req->error_message,
                     .publish_time = req->publish_time,
                     .has_retry_after = SVC_HAS(req, retry_after_seconds),
                     .retry_after_s = req->retry_after_seconds };
    report_check(&v, "", &in, req->executor_id, &rq);
    if (hv_failed(&v))
        return;
    /* Idempotent per attempt (the proto's contract): the lease is the key, so
     * the request_id is not stored: a repeated report is answered by the state
     * machine (duplicate_report), which also saves three round trips on the
     * hottest path. */
    handler_mutation m = { .request = &req->base,
                           .request_id = NULL,
                           .reply_desc = &herald__v1__report_publish_result_response__descriptor,
                           .body = report_body,
                           .ctx = &rq,
                           .what = "publish result" };
    handler_result r;
    if (handler_mutate(call, &m, &r))
        done((const Herald__V1__ReportPublishResultResponse *)r.reply, call);
}

typedef struct reports_ctx {
    const Herald__V1__ReportPublishResultsRequest *req;
    const sched_report *rq; /* one per req->reports[i] */
} reports_ctx;

static status reports_body(handler_tx *tx, ProtobufCMessage **reply)
{
    const reports_ctx *c = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    size_t n = c->req->n_reports;
    sched_batch_item *items = arena_alloc(a, n * sizeof *items);
    Herald__V1__ReportPublishResultsResponse *out = arena_alloc(a, sizeof *out);
    Herald__V1__PublishReportResult *res = arena_alloc(a, n * sizeof *res);
    Herald__V1__PublishReportResult **resp = arena_alloc(a, n * sizeof *resp);
    if (items == NULL || out == NULL || res == NULL || resp == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");

    status st = sched_report_batch_tx(tx->db, a, c->rq, n, items);
    if (st != ST_OK)
        return st;
    herald__v1__report_publish_results_response__init(out);
    for (size_t i = 0; i < n; i++) {
        const sched_batch_item *it = &items[i];
        Herald__V1__PublishReportResult *r = &res[i];
        herald__v1__publish_report_result__init(r);
        r->lease_id = c->req->reports[i]->lease_id;
        r->post_id = c->req->reports[i]->post_id;
        if (it->st == ST_OK) {
            r->duplicate_report = it->duplicate;
            r->state = (Herald__V1__PostState)it->state;
            if (it->next_attempt_ms != 0)
                r->next_attempt_time = handler_ts_from_ms(a, it->next_attempt_ms);
            out->applied++;
            out->duplicates += it->duplicate ? 1 : 0;
        } else {
            /* the code ReportPublishResult would answer: a taken receipt
             * is FAILED_PRECONDITION there too */
            r->code = status_to_grpc(it->st == ST_ALREADY_EXISTS ? ST_FAILED_PRECONDITION : it->st);
            r->message = (char *)it->message;
            r->reason = (char *)report_refusal_reason(it->st, it->message);
        }
        resp[i] = r;
    }
    out->results = resp;
    out->n_results = n;
    if (arena_exhausted(a))
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    *reply = &out->base;
    return ST_OK;
}

static void sched_report_publish_results(Herald__V1__SchedulingService_Service *svc,
                                         const Herald__V1__ReportPublishResultsRequest *req,
                                         Herald__V1__ReportPublishResultsResponse_Closure done,
                                         void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    check_executor(&v, "executor_id", req->executor_id, true);
    sched_report *rq = NULL;
    if (hv_count(&v, "reports", req->n_reports, 1, REPORTS_MAX)) {
        rq = arena_alloc(a, req->n_reports * sizeof *rq);
        for (size_t i = 0; rq != NULL && i < req->n_reports; i++) {
            const Herald__V1__PublishReport *pr = req->reports[i];
            report_in in = { .lease_id = pr->lease_id,
                             .post_id = pr->post_id,
                             .outcome = pr->outcome,
                             .external_id = pr->external_id,
                             .external_url = pr->external_url,
                             .error_class = pr->error_class,
                             .error_message = pr->error_message,
                             .publish_time = pr->publish_time,
                             .has_retry_after = SVC_HAS(pr, retry_after_seconds),
                             .retry_after_s = pr->retry_after_seconds };
            report_check(&v, hv_path(&v, "reports[%zu].", i), &in, req->executor_id, &rq[i]);
        }
    }
    if (hv_failed(&v))
        return;
    if (rq == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "request too large");
        return;
    }
    /* Idempotent per attempt, as ReportPublishResult: the request_id is not
     * stored (each lease answers a repeat with duplicate_report). */
    reports_ctx c = { .req = req, .rq = rq };
    handler_mutation m = { .request = &req->base,
                           .request_id = NULL,
                           .reply_desc = &herald__v1__report_publish_results_response__descriptor,
                           .body = reports_body,
                           .ctx = &c,
                           .what = "publish results" };
    handler_result r;
    if (handler_mutate(call, &m, &r))
        done((const Herald__V1__ReportPublishResultsResponse *)r.reply, call);
}

/* ---------------------------------------------------------------- ReconcilePublished */

typedef struct reconcile_ctx {
    const Herald__V1__ReconcilePublishedRequest *req;
    sched_observed *obs;
    int64_t start_ms, end_ms;
} reconcile_ctx;

static status reconcile_body(handler_tx *tx, ProtobufCMessage **reply)
{
    reconcile_ctx *c = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    sched_profile pr;
    sched_reconciled *res = NULL;
    size_t n = 0;

    status st = sched_profile_load_tx(tx->db, a, c->req->profile_id, false, &pr);
    if (st == ST_NOT_FOUND)
        return handler_tx_reject(tx, st, "profile %s not found", c->req->profile_id);
    if (st != ST_OK)
        return st;
    st = sched_reconcile_tx(tx->db, a, pr.profile_id, c->obs, c->req->n_observed, c->start_ms,
                            c->end_ms, &res, &n);
    if (st != ST_OK)
        return st;
    Herald__V1__ReconcilePublishedResponse *out = arena_alloc(a, sizeof *out);
    if (out == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    herald__v1__reconcile_published_response__init(out);
    if (n > 0) {
        out->results = arena_alloc(a, n * sizeof(Herald__V1__ReconcileResult *));
        if (out->results == NULL)
            return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
        for (size_t i = 0; i < n; i++) {
            Herald__V1__ReconcileResult *r = arena_alloc(a, sizeof *r);
            if (r == NULL)
                return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
            herald__v1__reconcile_result__init(r);
            r->post_id = (char *)res[i].post_id;
            r->action = (Herald__V1__ReconcileAction)res[i].action;
            r->external_id = (char *)res[i].external_id;
            out->results[i] = r;
        }
        out->n_results = n;
    }
    *reply = &out->base;
    return ST_OK;
}

static void sched_reconcile_published(Herald__V1__SchedulingService_Service *svc,
                                      const Herald__V1__ReconcilePublishedRequest *req,
                                      Herald__V1__ReconcilePublishedResponse_Closure done,
                                      void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    reconcile_ctx c = { .req = req };
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    hv_profile_id(&v, "profile_id", req->profile_id);
    check_executor(&v, "executor_id", req->executor_id, true);
    hv_timestamp(&v, "observe_start_time", req->observe_start_time, true, &c.start_ms);
    hv_timestamp(&v, "observe_end_time", req->observe_end_time, false, &c.end_ms);
    if (req->observe_end_time != NULL && req->observe_start_time != NULL && c.end_ms < c.start_ms)
        hv_add(&v, "observe_end_time", "must not be before observe_start_time");
    if (hv_count(&v, "observed", req->n_observed, 0, OBSERVED_MAX) && req->n_observed > 0) {
        c.obs = arena_alloc(a, req->n_observed * sizeof *c.obs);
        if (c.obs == NULL) {
            rpc_call_fail(call, ST_EXHAUSTED, "request too large");
            return;
        }
        for (size_t i = 0; i < req->n_observed; i++) {
            const Herald__V1__ObservedPost *o = req->observed[i];
            int64_t pub = 0;
            hv_text(&v, hv_path(&v, "observed[%zu].external_id", i), o->external_id, 1,
                    EXTERNAL_ID_MAX);
            hv_text(&v, hv_path(&v, "observed[%zu].text", i), o->text, 1, TEXT_MAX);
            hv_timestamp(&v, hv_path(&v, "observed[%zu].publish_time", i), o->publish_time, false,
                         &pub);
            hv_text(&v, hv_path(&v, "observed[%zu].external_url", i), o->external_url, 0, URL_MAX);
            c.obs[i].external_id = o->external_id;
            c.obs[i].text = o->text;
            c.obs[i].publish_ms = pub;
            c.obs[i].external_url = o->external_url;
        }
    }
    if (hv_failed(&v))
        return;
    handler_mutation m = { .request = &req->base,
                           .request_id = req->request_id,
                           .reply_desc = &herald__v1__reconcile_published_response__descriptor,
                           .body = reconcile_body,
                           .ctx = &c,
                           .what = "reconciliation" };
    handler_result r;
    if (handler_mutate(call, &m, &r))
        done((const Herald__V1__ReconcilePublishedResponse *)r.reply, call);
}

/* ---------------------------------------------------------------- UpsertReplyOpportunities */

/* "@Name" and "name" are the same handle. */
static bool same_handle(const char *a, const char *b)
{
    while (*a == '@')
        a++;
    while (*b == '@')
        b++;
    return *a != '\0' && strcasecmp(a, b) == 0;
}

static status upsert_opps_body(handler_tx *tx, ProtobufCMessage **reply)
{
    const Herald__V1__UpsertReplyOpportunitiesRequest *req = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    sched_profile pr;
    replyopp_reply *replies = NULL;
    replyopp_topic *topics = NULL;
    replyopp_topics *kw = NULL;
    size_t n_replies = 0, n_topics = 0;
    const char **ids = NULL;
    status st;

    st = sched_profile_load_tx(tx->db, a, req->profile_id, false, &pr);
    if (st == ST_NOT_FOUND)
        return handler_tx_reject(tx, st, "profile %s not found", req->profile_id);
    if (st != ST_OK)
        return st;
    for (size_t i = 0; i < req->n_targets; i++) {
        char name[32];
        const char *pf = handler_enum_db_name(&herald__v1__platform__descriptor,
                                              (int)req->targets[i]->platform, name, sizeof name);
        if (pf == NULL || strcmp(pf, pr.platform) != 0) {
            rpc_call_add_violation(tx->call, arena_printf(a, "targets[%zu].platform", i),
                                   "is not the profile's platform");
            return handler_tx_reject(tx, ST_INVALID,
                                     "targets[%zu].platform: is not the profile's platform", i);
        }
    }
    int cool_h = pr.policy.reply_root_cooldown_hours > pr.policy.reply_author_cooldown_hours
                     ? pr.policy.reply_root_cooldown_hours
                     : pr.policy.reply_author_cooldown_hours;
    st = sched_own_replies_tx(tx->db, a, pr.profile_id, pr.now_ms - (int64_t)cool_h * 3600 * 1000,
                              &replies, &n_replies);
    if (st == ST_OK)
        st = sched_topics_tx(tx->db, a, pr.profile_id, &topics, &n_topics);
    if (st != ST_OK)
        return st;
    if (n_topics > 0 && replyopp_topics_new(topics, n_topics, &kw) != ST_OK)
        kw = NULL;

    const char *own[1] = { pr.handle };
    replyopp_ctx rc = { .policy = &pr.policy,
                        .own_author_ids = own,
                        .n_own = pr.handle[0] != '\0' ? 1 : 0,
                        .replies = replies,
                        .n_replies = n_replies,
                        .topics = kw };
    Herald__V1__UpsertReplyOpportunitiesResponse *out = arena_alloc(a, sizeof *out);
    sched_opp_row *rows = arena_calloc(a, req->n_targets * sizeof *rows);
    replyopp_eval *ev = arena_calloc(a, req->n_targets * sizeof *ev);
    if (out == NULL || rows == NULL || ev == NULL) {
        replyopp_topics_free(kw);
        return handler_tx_reject(tx, ST_EXHAUSTED, "request too large");
    }
    for (size_t i = 0; i < req->n_targets; i++) {
        const Herald__V1__ReplyTarget *t = req->targets[i];
        int64_t obs_ms = handler_ts_ms(t->observe_time);
        replyopp_target rt = { .external_post_id = t->external_post_id,
                               .root_external_id = t->root_external_id,
                               .author_id = t->author_id,
                               .author_followers = t->author_followers,
                               .text = t->text,
                               .text_len = strlen(t->text),
                               .create_ms = handler_ts_ms(t->create_time),
                               .observe_ms = obs_ms != 0 ? obs_ms : pr.now_ms,
                               .likes = t->likes,
                               .replies = t->replies,
                               .reposts = t->reposts };
        st = replyopp_evaluate(&rc, &rt, pr.now_ms, &ev[i]);
        if (st != ST_OK) {
            replyopp_topics_free(kw);
            const char *f = arena_printf(a, "targets[%zu].create_time", i);
            rpc_call_add_violation(tx->call, f, "must not be in the future");
            return handler_tx_reject(tx, ST_INVALID, "%s: must not be in the future", f);
        }
        if (ev[i].filter == REPLYOPP_KEEP && same_handle(t->author_handle, pr.handle))
            ev[i].filter = REPLYOPP_OWN_POST;
        rows[i].t = t;
        rows[i].platform = pr.platform;
        rows[i].tier = replyopp_tier_name(ev[i].tier);
        rows[i].create_ms = rt.create_ms;
        rows[i].observe_ms = rt.observe_ms;
        rows[i].expire_ms = ev[i].expire_ms;
        rows[i].velocity = ev[i].velocity_per_hour;
        rows[i].relevance = ev[i].relevance;
        rows[i].score = ev[i].score;
        rows[i].kept = ev[i].filter == REPLYOPP_KEEP;
    }
    replyopp_topics_free(kw);
    st = sched_opp_upsert_tx(tx->db, a, pr.profile_id, rows, req->n_targets, &ids);
    if (st != ST_OK)
        return st;
    herald__v1__upsert_reply_opportunities_response__init(out);
    out->results =
        arena_alloc(a, req->n_targets * sizeof(Herald__V1__UpsertReplyOpportunityResult *));
    if (out->results == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    for (size_t i = 0; i < req->n_targets; i++) {
        Herald__V1__UpsertReplyOpportunityResult *r = arena_alloc(a, sizeof *r);
        if (r == NULL)
            return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
        herald__v1__upsert_reply_opportunity_result__init(r);
        r->external_post_id = req->targets[i]->external_post_id;
        r->kept = rows[i].kept;
        r->filter_reason = (Herald__V1__ReplyFilterReason)ev[i].filter;
        r->opportunity_id = (char *)ids[i];
        out->results[i] = r;
    }
    out->n_results = req->n_targets;
    *reply = &out->base;
    return ST_OK;
}

static void
sched_upsert_reply_opportunities(Herald__V1__SchedulingService_Service *svc,
                                 const Herald__V1__UpsertReplyOpportunitiesRequest *req,
                                 Herald__V1__UpsertReplyOpportunitiesResponse_Closure done,
                                 void *data)
{
    rpc_call *call = data;
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    hv_profile_id(&v, "profile_id", req->profile_id);
    if (hv_count(&v, "targets", req->n_targets, 1, TARGETS_MAX)) {
        for (size_t i = 0; i < req->n_targets; i++) {
            const Herald__V1__ReplyTarget *t = req->targets[i];
            hv_enum(&v, hv_path(&v, "targets[%zu].platform", i), &herald__v1__platform__descriptor,
                    (int)t->platform, true);
            hv_text(&v, hv_path(&v, "targets[%zu].external_post_id", i), t->external_post_id, 1,
                    EXTERNAL_ID_MAX);
            hv_text(&v, hv_path(&v, "targets[%zu].root_external_id", i), t->root_external_id, 0,
                    EXTERNAL_ID_MAX);
            hv_text(&v, hv_path(&v, "targets[%zu].author_id", i), t->author_id, 1, EXTERNAL_ID_MAX);
            hv_text(&v, hv_path(&v, "targets[%zu].author_handle", i), t->author_handle, 0,
                    HANDLE_MAX);
            hv_int(&v, hv_path(&v, "targets[%zu].author_followers", i), t->author_followers, 0,
                   INT64_MAX);
            hv_text(&v, hv_path(&v, "targets[%zu].text", i), t->text, 1, TARGET_TEXT_MAX);
            hv_text(&v, hv_path(&v, "targets[%zu].url", i), t->url, 0, URL_MAX);
            hv_timestamp(&v, hv_path(&v, "targets[%zu].create_time", i), t->create_time, true,
                         NULL);
            hv_timestamp(&v, hv_path(&v, "targets[%zu].observe_time", i), t->observe_time, false,
                         NULL);
            hv_int(&v, hv_path(&v, "targets[%zu].likes", i), t->likes, 0, INT64_MAX);
            hv_int(&v, hv_path(&v, "targets[%zu].replies", i), t->replies, 0, INT64_MAX);
            hv_int(&v, hv_path(&v, "targets[%zu].reposts", i), t->reposts, 0, INT64_MAX);
            if (t->create_time != NULL && handler_ts_ms(t->create_time) <= 0)
                hv_add(&v, hv_path(&v, "targets[%zu].create_time", i), "must be after 1970");
        }
    }
    if (hv_failed(&v))
        return;
    handler_mutation m = { .request = &req->base,
                           .request_id = req->request_id,
                           .reply_desc =
                               &herald__v1__upsert_reply_opportunities_response__descriptor,
                           .body = upsert_opps_body,
                           .ctx = (void *)req,
                           .what = "reply opportunities" };
    handler_result r;
    if (handler_mutate(call, &m, &r))
        done((const Herald__V1__UpsertReplyOpportunitiesResponse *)r.reply, call);
}

/* ---------------------------------------------------------------- ListReplyOpportunities */

static void sched_list_reply_opportunities(Herald__V1__SchedulingService_Service *svc,
                                           const Herald__V1__ListReplyOpportunitiesRequest *req,
                                           Herald__V1__ListReplyOpportunitiesResponse_Closure done,
                                           void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    const uint8_t *cursor = NULL;
    size_t cursor_len = 0;
    unsigned tier_mask = 0;
    char state[32], platform[32];
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_profile_id(&v, "profile_id", req->profile_id);
    hv_enum(&v, "state", &herald__v1__reply_opportunity_state__descriptor, (int)req->state, false);
    hv_enum(&v, "platform", &herald__v1__platform__descriptor, (int)req->platform, false);
    if (hv_count(&v, "tiers", req->n_tiers, 0, 5)) {
        for (size_t i = 0; i < req->n_tiers; i++)
            if (hv_enum(&v, hv_path(&v, "tiers[%zu]", i), &herald__v1__reply_tier__descriptor,
                        (int)req->tiers[i], true))
                tier_mask |= 1u << req->tiers[i];
    }
    int32_t size = hv_page_size(&v, "page_size", req->page_size, OPP_DEFAULT_PAGE, OPP_MAX_PAGE);
    const char *scope = arena_printf(a, "ListReplyOpportunities|%s|s%d|t%u|p%d", req->profile_id,
                                     (int)req->state, tier_mask, (int)req->platform);
    hv_page_token(&v, "page_token", req->page_token, scope, &cursor, &cursor_len);
    sched_opp_filter f;
    memset(&f, 0, sizeof f);
    if (cursor != NULL) {
        /* "<score %.17g>|<create us>|<external post id>" */
        char *cur = arena_strndup(a, (const char *)cursor, cursor_len);
        char *bar1 = cur != NULL ? strchr(cur, '|') : NULL;
        char *bar2 = bar1 != NULL ? strchr(bar1 + 1, '|') : NULL;
        if (bar2 == NULL) {
            hv_add(&v, "page_token", "is not a page token of this list");
        } else {
            *bar1 = '\0';
            *bar2 = '\0';
            f.has_after = true;
            f.after_score = strtod(cur, NULL);
            f.after_create_us = strtoll(bar1 + 1, NULL, 10);
            f.after_external_id = bar2 + 1;
        }
    }
    if (hv_failed(&v))
        return;
    f.profile_id = req->profile_id;
    f.state = req->state != 0
                  ? handler_enum_db_name(&herald__v1__reply_opportunity_state__descriptor,
                                         (int)req->state, state, sizeof state)
                  : "open";
    f.platform = handler_enum_db_name(&herald__v1__platform__descriptor, (int)req->platform,
                                      platform, sizeof platform);
    if (req->n_tiers > 0) {
        strbuf b = { 0 };
        strbuf_putc(&b, '{');
        for (size_t i = 0; i < req->n_tiers; i++)
            strbuf_printf(&b, "%s%s", i > 0 ? "," : "",
                          replyopp_tier_name((replyopp_tier)req->tiers[i]));
        strbuf_putc(&b, '}');
        f.tiers = arena_strdup(a, b.data);
        strbuf_fini(&b);
    }
    f.limit = size;
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;
    sched_opp_page pg;
    sched_profile pr;
    status st = db_begin(db, handler_budget_ms(call));
    if (st == ST_OK)
        st = sched_profile_load_tx(db, a, req->profile_id, false, &pr);
    if (st == ST_OK)
        st = sched_opp_list_tx(db, a, &f, &pg);
    if (st == ST_OK)
        st = db_commit(db);
    if (st != ST_OK) {
        fail_read(call, db, st, arena_printf(a, "profile %s", req->profile_id));
        return;
    }
    Herald__V1__ListReplyOpportunitiesResponse resp =
        HERALD__V1__LIST_REPLY_OPPORTUNITIES_RESPONSE__INIT;
    resp.opportunities = pg.items;
    resp.n_opportunities = pg.n;
    if (pg.more && pg.n > 0) {
        const Herald__V1__ReplyOpportunity *last = pg.items[pg.n - 1];
        const char *cur =
            arena_printf(a, "%.17g|%lld|%s", last->score, (long long)pg.last_create_us,
                         last->target->external_post_id);
        resp.next_page_token =
            cur != NULL ? handler_page_token_encode(a, scope, cur, strlen(cur)) : NULL;
        if (resp.next_page_token == NULL)
            resp.next_page_token = (char *)"";
    }
    done(&resp, call);
}

/* ---------------------------------------------------------------- the service */

/* clang-format off */
static Herald__V1__SchedulingService_Service svc = {
    .base = HERALD__V1__SCHEDULING_SERVICE__BASE_INIT,
    .get_next_slots = sched_get_next_slots,
    .schedule_post = sched_schedule_post,
    .claim_due_work = sched_claim_due_work,
    .renew_lease = sched_renew_lease,
    .report_publish_result = sched_report_publish_result,
    .report_publish_results = sched_report_publish_results,
    .reconcile_published = sched_reconcile_published,
    .report_platform_signal = sched_report_platform_signal,
    .get_posting_policy = sched_get_posting_policy,
    .set_posting_policy = sched_set_posting_policy,
    .get_quota_status = sched_get_quota_status,
    .upsert_reply_opportunities = sched_upsert_reply_opportunities,
    .list_reply_opportunities = sched_list_reply_opportunities,
};
/* clang-format on */

ProtobufCService *svc_scheduling_service(void)
{
    return &svc.base;
}
