/* lease.c - the publishing state machine. Works on a copy of the record and
 * writes it back only on success, so a refused event never changes it. */
#include "lease.h"

#include <string.h>

#include "backoff.h"

void lease_limits_from_policy(const policy *p, lease_limits *out)
{
    out->max_attempts = p->max_publish_attempts;
    out->initial_backoff_s = p->retry_initial_backoff_seconds;
    out->max_backoff_s = p->retry_max_backoff_seconds;
    out->reconcile_window_ms = (int64_t)p->reconcile_window_minutes * 60 * 1000;
}

const char *lease_post_state_name(lease_post_state s)
{
    switch (s) {
    case LEASE_POST_DRAFT:
        return "draft";
    case LEASE_POST_APPROVED:
        return "approved";
    case LEASE_POST_SCHEDULED:
        return "scheduled";
    case LEASE_POST_PUBLISHING:
        return "publishing";
    case LEASE_POST_UNCONFIRMED:
        return "unconfirmed";
    case LEASE_POST_PUBLISHED:
        return "published";
    case LEASE_POST_FAILED:
        return "failed";
    case LEASE_POST_REJECTED:
        return "rejected";
    case LEASE_POST_CANCELLED:
        return "cancelled";
    }
    return "unknown";
}

const char *lease_attempt_state_name(lease_attempt_state s)
{
    switch (s) {
    case LEASE_ATTEMPT_NONE:
        return "none";
    case LEASE_ATTEMPT_LEASED:
        return "leased";
    case LEASE_ATTEMPT_SUCCEEDED:
        return "succeeded";
    case LEASE_ATTEMPT_FAILED:
        return "failed";
    case LEASE_ATTEMPT_UNKNOWN:
        return "unknown";
    case LEASE_ATTEMPT_EXPIRED:
        return "expired";
    case LEASE_ATTEMPT_RELEASED:
        return "released";
    }
    return "invalid";
}

const char *lease_outcome_name(lease_outcome o)
{
    switch (o) {
    case LEASE_OUTCOME_NONE:
        return "none";
    case LEASE_OUTCOME_SUCCESS:
        return "success";
    case LEASE_OUTCOME_RETRYABLE:
        return "retryable";
    case LEASE_OUTCOME_PERMANENT:
        return "permanent";
    case LEASE_OUTCOME_UNKNOWN:
        return "unknown";
    }
    return "invalid";
}

static bool nonempty(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static bool same_str(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* A record whose attempt is live must be PUBLISHING with that attempt as
 * its latest; anything else is a broken invariant of the store. */
static bool live_lease_consistent(const lease_record *r)
{
    return r->post.state == LEASE_POST_PUBLISHING && r->attempt.number == r->post.attempt_count &&
           r->attempt.number >= 1;
}

static status refuse(lease_result *res, status st, const char *why)
{
    res->reason = why;
    return st;
}

/* The post goes back to the queue after a failed or lapsed attempt, unless
 * that was the last one allowed. */
static void requeue_or_fail(const lease_limits *lim, lease_record *r, int64_t next_ms,
                            const char *fail_reason, lease_result *res)
{
    if (r->post.attempt_count >= lim->max_attempts) {
        r->post.state = LEASE_POST_FAILED;
        r->post.next_attempt_ms = 0;
        r->post.state_reason = fail_reason;
        res->next_attempt_ms = 0;
    } else {
        r->post.state = LEASE_POST_SCHEDULED;
        r->post.next_attempt_ms = next_ms;
        r->post.state_reason = "";
        res->next_attempt_ms = next_ms;
    }
}

static status on_schedule(lease_record *r, const lease_event *ev, lease_result *res)
{
    if (r->post.state != LEASE_POST_APPROVED && r->post.state != LEASE_POST_SCHEDULED)
        return refuse(res, ST_FAILED_PRECONDITION,
                      "only APPROVED or SCHEDULED posts can be scheduled");
    if (r->attempt.state == LEASE_ATTEMPT_LEASED)
        return refuse(res, ST_INTERNAL, "a SCHEDULED post holds a live lease");
    r->post.state = LEASE_POST_SCHEDULED;
    r->post.schedule_ms = ev->schedule_ms;
    res->reason = "scheduled";
    return ST_OK;
}

static status on_claim(lease_record *r, const lease_event *ev, lease_result *res)
{
    if (!nonempty(ev->executor_id) || ev->lease_ms <= 0)
        return refuse(res, ST_INVALID, "a claim needs an executor and a positive lease length");
    if (r->post.state == LEASE_POST_PUBLISHING)
        return refuse(res, ST_FAILED_PRECONDITION,
                      ev->now_ms < r->attempt.expire_ms ? "the post is leased"
                                                        : "the lease lapsed: expire it first");
    if (r->post.state != LEASE_POST_SCHEDULED)
        return refuse(res, ST_FAILED_PRECONDITION, "only SCHEDULED posts can be claimed");
    if (r->attempt.state == LEASE_ATTEMPT_LEASED)
        return refuse(res, ST_INTERNAL, "a SCHEDULED post holds a live lease");
    if (r->post.schedule_ms > ev->now_ms ||
        (r->post.next_attempt_ms != 0 && r->post.next_attempt_ms > ev->now_ms))
        return refuse(res, ST_FAILED_PRECONDITION, "the post is not due yet");
    r->post.attempt_count++;
    r->post.state = LEASE_POST_PUBLISHING;
    r->post.next_attempt_ms = 0;
    r->post.state_reason = "";
    memset(&r->attempt, 0, sizeof r->attempt);
    r->attempt.number = r->post.attempt_count;
    r->attempt.state = LEASE_ATTEMPT_LEASED;
    r->attempt.executor_id = ev->executor_id;
    r->attempt.claim_ms = ev->now_ms;
    r->attempt.expire_ms = ev->now_ms + ev->lease_ms;
    res->new_attempt = true;
    res->reason = "claimed";
    return ST_OK;
}

/* Common checks of RENEW and REPORT on a lease that is still LEASED. */
static status check_live(const lease_record *r, const lease_event *ev, lease_result *res)
{
    if (!same_str(r->attempt.executor_id, ev->executor_id))
        return refuse(res, ST_FAILED_PRECONDITION, "the lease is held by another executor");
    if (ev->now_ms >= r->attempt.expire_ms)
        return refuse(res, ST_FAILED_PRECONDITION, "the lease has expired");
    if (!live_lease_consistent(r))
        return refuse(res, ST_INTERNAL, "a live lease on a post that is not being published");
    return ST_OK;
}

static status on_renew(lease_record *r, const lease_event *ev, lease_result *res)
{
    if (!nonempty(ev->executor_id) || ev->lease_ms <= 0)
        return refuse(res, ST_INVALID, "a renewal needs an executor and a positive lease length");
    if (r->attempt.state != LEASE_ATTEMPT_LEASED)
        return refuse(res, ST_FAILED_PRECONDITION, "the lease is no longer held");
    status st = check_live(r, ev, res);
    if (st != ST_OK)
        return st;
    r->attempt.expire_ms = ev->now_ms + ev->lease_ms;
    res->reason = "renewed";
    return ST_OK;
}

static status on_expire(const lease_limits *lim, lease_record *r, const lease_event *ev,
                        lease_result *res)
{
    if (r->attempt.state != LEASE_ATTEMPT_LEASED)
        return refuse(res, ST_FAILED_PRECONDITION, "no live lease to expire");
    if (ev->now_ms < r->attempt.expire_ms)
        return refuse(res, ST_FAILED_PRECONDITION, "the lease has not lapsed");
    if (!live_lease_consistent(r))
        return refuse(res, ST_INTERNAL, "a live lease on a post that is not being published");
    r->attempt.state = LEASE_ATTEMPT_EXPIRED;
    r->attempt.finish_ms = ev->now_ms;
    requeue_or_fail(lim, r, 0, "publish attempts exhausted (the last lease lapsed unreported)",
                    res);
    res->reason = "lease expired";
    return ST_OK;
}

static bool outcome_valid(lease_outcome o)
{
    return o >= LEASE_OUTCOME_SUCCESS && o <= LEASE_OUTCOME_UNKNOWN;
}

static status on_report(const lease_limits *lim, lease_record *r, const lease_event *ev,
                        lease_result *res)
{
    if (!nonempty(ev->executor_id) || !outcome_valid(ev->outcome))
        return refuse(res, ST_INVALID, "a report needs an executor and an outcome");
    if (ev->outcome == LEASE_OUTCOME_SUCCESS && !nonempty(ev->external_id))
        return refuse(res, ST_INVALID, "SUCCESS needs the platform's external id");
    if (r->attempt.number < 1)
        return refuse(res, ST_FAILED_PRECONDITION, "no such lease");

    switch (r->attempt.state) {
    case LEASE_ATTEMPT_SUCCEEDED:
    case LEASE_ATTEMPT_FAILED:
    case LEASE_ATTEMPT_UNKNOWN:
        if (!same_str(r->attempt.executor_id, ev->executor_id))
            return refuse(res, ST_FAILED_PRECONDITION, "the lease is held by another executor");
        if (r->attempt.outcome == ev->outcome &&
            (ev->outcome != LEASE_OUTCOME_SUCCESS ||
             same_str(r->attempt.external_id, ev->external_id))) {
            res->duplicate = true;
            res->reason = "this report was already applied";
            return ST_OK;
        }
        return refuse(res, ST_FAILED_PRECONDITION,
                      "a different outcome was already reported for this lease");
    case LEASE_ATTEMPT_EXPIRED:
    case LEASE_ATTEMPT_RELEASED:
        return refuse(res, ST_FAILED_PRECONDITION, "the lease is no longer held");
    case LEASE_ATTEMPT_NONE:
        return refuse(res, ST_FAILED_PRECONDITION, "no such lease");
    case LEASE_ATTEMPT_LEASED:
        break;
    }
    status st = check_live(r, ev, res);
    if (st != ST_OK)
        return st;

    r->attempt.finish_ms = ev->now_ms;
    r->attempt.outcome = ev->outcome;
    r->attempt.error_class = ev->error_class;
    r->post.last_outcome = ev->outcome;
    r->post.last_error_class = ev->error_class;
    switch (ev->outcome) {
    case LEASE_OUTCOME_SUCCESS:
        r->attempt.state = LEASE_ATTEMPT_SUCCEEDED;
        r->attempt.external_id = ev->external_id;
        r->post.state = LEASE_POST_PUBLISHED;
        r->post.external_id = ev->external_id;
        r->post.publish_ms = ev->publish_ms ? ev->publish_ms : ev->now_ms;
        r->post.state_reason = "";
        res->reason = "published";
        break;
    case LEASE_OUTCOME_RETRYABLE: {
        r->attempt.state = LEASE_ATTEMPT_FAILED;
        int64_t delay = backoff_delay_ms(r->attempt.number, lim->initial_backoff_s,
                                         lim->max_backoff_s, ev->retry_after_s, ev->jitter);
        requeue_or_fail(lim, r, ev->now_ms + delay,
                        "publish attempts exhausted (the last one failed and was retryable)", res);
        res->reason = r->post.state == LEASE_POST_FAILED ? "retries exhausted" : "re-queued";
        break;
    }
    case LEASE_OUTCOME_PERMANENT:
        r->attempt.state = LEASE_ATTEMPT_FAILED;
        r->post.state = LEASE_POST_FAILED;
        r->post.next_attempt_ms = 0;
        r->post.state_reason = "permanent publish failure";
        res->reason = "failed";
        break;
    case LEASE_OUTCOME_UNKNOWN:
        r->attempt.state = LEASE_ATTEMPT_UNKNOWN;
        r->post.state = LEASE_POST_UNCONFIRMED;
        r->post.state_reason = "publish outcome unknown: waiting for reconciliation";
        res->reason = "unconfirmed";
        break;
    case LEASE_OUTCOME_NONE:
        break; /* excluded above */
    }
    return ST_OK;
}

static status on_reconcile(const lease_limits *lim, lease_record *r, const lease_event *ev,
                           lease_result *res)
{
    if (r->post.state != LEASE_POST_UNCONFIRMED)
        return refuse(res, ST_FAILED_PRECONDITION, "only UNCONFIRMED posts are reconciled");
    if (r->attempt.state != LEASE_ATTEMPT_UNKNOWN || r->attempt.number != r->post.attempt_count)
        return refuse(res, ST_INTERNAL, "an UNCONFIRMED post without an unknown last attempt");
    if (ev->found) {
        if (!nonempty(ev->external_id))
            return refuse(res, ST_INVALID, "a match needs the platform's external id");
        r->attempt.external_id = ev->external_id;
        r->post.state = LEASE_POST_PUBLISHED;
        r->post.external_id = ev->external_id;
        r->post.publish_ms = ev->publish_ms ? ev->publish_ms : ev->now_ms;
        r->post.state_reason = "";
        res->action = LEASE_RECONCILE_MATCHED;
        res->reason = "found on the account";
        return ST_OK;
    }
    bool covered = ev->observe_start_ms <= r->attempt.claim_ms &&
                   ev->observe_end_ms >= r->attempt.finish_ms + lim->reconcile_window_ms &&
                   ev->observe_end_ms <= ev->now_ms;
    if (!covered) {
        res->action = LEASE_RECONCILE_PENDING;
        res->reason = "not found yet; within the reconcile window";
        return ST_OK;
    }
    requeue_or_fail(lim, r, 0,
                    "publish attempts exhausted (the last one was unknown and is not on the "
                    "account)",
                    res);
    res->action = LEASE_RECONCILE_REQUEUED;
    res->reason = r->post.state == LEASE_POST_FAILED ? "absent after the window; attempts exhausted"
                                                     : "absent after the window; re-queued";
    return ST_OK;
}

static status on_cancel(lease_record *r, lease_result *res)
{
    switch (r->post.state) {
    case LEASE_POST_DRAFT:
    case LEASE_POST_APPROVED:
    case LEASE_POST_SCHEDULED:
        if (r->attempt.state == LEASE_ATTEMPT_LEASED)
            return refuse(res, ST_INTERNAL, "a post that is not publishing holds a live lease");
        r->post.state = LEASE_POST_CANCELLED;
        r->post.next_attempt_ms = 0;
        r->post.state_reason = "cancelled";
        res->reason = "cancelled";
        return ST_OK;
    case LEASE_POST_CANCELLED:
        res->duplicate = true;
        res->reason = "already cancelled";
        return ST_OK;
    case LEASE_POST_PUBLISHING:
        return refuse(res, ST_FAILED_PRECONDITION, "the post is being published under a lease");
    case LEASE_POST_UNCONFIRMED:
        return refuse(res, ST_FAILED_PRECONDITION,
                      "the post may already be published: reconcile it first");
    case LEASE_POST_PUBLISHED:
    case LEASE_POST_FAILED:
    case LEASE_POST_REJECTED:
        return refuse(res, ST_FAILED_PRECONDITION, "the post is in a terminal state");
    }
    return refuse(res, ST_INTERNAL, "unknown post state");
}

/* Field by field: struct padding must not count as a change. Strings are
 * compared by pointer, which is what a transition changes. */
static bool record_equal(const lease_record *a, const lease_record *b)
{
    const lease_post *p = &a->post, *q = &b->post;
    const lease_attempt *x = &a->attempt, *y = &b->attempt;
    return p->state == q->state && p->attempt_count == q->attempt_count &&
           p->schedule_ms == q->schedule_ms && p->next_attempt_ms == q->next_attempt_ms &&
           p->publish_ms == q->publish_ms && p->external_id == q->external_id &&
           p->last_outcome == q->last_outcome && p->last_error_class == q->last_error_class &&
           p->state_reason == q->state_reason && x->number == y->number && x->state == y->state &&
           x->executor_id == y->executor_id && x->claim_ms == y->claim_ms &&
           x->expire_ms == y->expire_ms && x->finish_ms == y->finish_ms &&
           x->outcome == y->outcome && x->error_class == y->error_class &&
           x->external_id == y->external_id;
}

static bool record_sane(const lease_record *r)
{
    return r->post.state >= LEASE_POST_DRAFT && r->post.state <= LEASE_POST_CANCELLED &&
           r->attempt.state >= LEASE_ATTEMPT_NONE && r->attempt.state <= LEASE_ATTEMPT_RELEASED &&
           r->post.attempt_count >= 0 && r->attempt.number >= 0 &&
           r->attempt.number <= r->post.attempt_count;
}

status lease_apply(const lease_limits *lim, lease_record *rec, const lease_event *ev,
                   lease_result *res)
{
    status st;
    lease_record work = *rec;

    memset(res, 0, sizeof *res);
    if (!record_sane(&work))
        return refuse(res, ST_INTERNAL, "the record contradicts itself");
    switch (ev->kind) {
    case LEASE_EV_SCHEDULE:
        st = on_schedule(&work, ev, res);
        break;
    case LEASE_EV_CLAIM:
        st = on_claim(&work, ev, res);
        break;
    case LEASE_EV_RENEW:
        st = on_renew(&work, ev, res);
        break;
    case LEASE_EV_EXPIRE:
        st = on_expire(lim, &work, ev, res);
        break;
    case LEASE_EV_REPORT:
        st = on_report(lim, &work, ev, res);
        break;
    case LEASE_EV_RECONCILE:
        st = on_reconcile(lim, &work, ev, res);
        break;
    case LEASE_EV_CANCEL:
        st = on_cancel(&work, res);
        break;
    default:
        return refuse(res, ST_INVALID, "unknown event");
    }
    if (st != ST_OK) {
        res->new_attempt = false;
        res->duplicate = false;
        res->action = LEASE_RECONCILE_NONE;
        res->next_attempt_ms = 0;
        return st;
    }
    res->changed = !res->duplicate && !record_equal(&work, rec);
    *rec = work;
    return ST_OK;
}
