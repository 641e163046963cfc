/* lease.h - the state machine of publishing a post: schedule, claim under a
 * lease, renew, expire, report an outcome, reconcile an unknown one, cancel.
 *
 * One pure transition function over one post (posts row) and one attempt
 * (publish_attempts row); the store mirrors it in SQL and runs each event in
 * one transaction: load the rows FOR UPDATE, lease_apply(), write back what
 * lease_result says changed. Names match herald.v1.PostState and
 * PublishOutcome and the publish_attempts.state column.
 *
 * Which attempt the record holds: for SCHEDULE, CLAIM, EXPIRE, RECONCILE and
 * CANCEL the post's latest attempt (number == attempt_count; number 0 when
 * there is none); for RENEW and REPORT the attempt the request's lease_id
 * names, which may be an older one (a late or duplicate report).
 *
 * Transitions (anything else is ST_FAILED_PRECONDITION and changes nothing):
 *   SCHEDULE   APPROVED -> SCHEDULED; SCHEDULED -> SCHEDULED (new time).
 *   CLAIM      SCHEDULED and due (schedule <= now, next_attempt <= now) ->
 *              PUBLISHING with a new attempt (number attempt_count + 1,
 *              LEASED until now + lease_ms). A PUBLISHING post with a lapsed
 *              lease must be EXPIRED first (the claim query does both).
 *   RENEW      the live lease of this executor: expire = now + lease_ms.
 *   EXPIRE     a lapsed lease (expire <= now): attempt EXPIRED, post back to
 *              SCHEDULED (claimable now), or FAILED when the attempts are
 *              used up.
 *   REPORT     on the live, unexpired lease of this executor:
 *                SUCCESS    -> PUBLISHED with the receipt (external_id)
 *                RETRYABLE  -> SCHEDULED, next attempt after backoff.h's
 *                              delay; FAILED once max_attempts are used
 *                PERMANENT  -> FAILED
 *                UNKNOWN    -> UNCONFIRMED: never claimed again until
 *                              RECONCILE settles it
 *              The same report again (same outcome; for SUCCESS the same
 *              external id) is ST_OK with duplicate = true and no change,
 *              whenever it comes. A report on an expired, released or
 *              someone else's lease, or a different outcome for an already
 *              reported one, is ST_FAILED_PRECONDITION, no change.
 *   RECONCILE  UNCONFIRMED: found on the account -> PUBLISHED (MATCHED);
 *              absent, and the executor's complete observation period
 *              started by the attempt's claim and ended at least the
 *              reconcile window after its report -> SCHEDULED (REQUEUED),
 *              or FAILED when the attempts are used up; else PENDING with
 *              no change.
 *   CANCEL     DRAFT, APPROVED, SCHEDULED -> CANCELLED; CANCELLED again is a
 *              duplicate. PUBLISHING and UNCONFIRMED may already be on the
 *              platform: refused.
 * PUBLISHED, FAILED, REJECTED and CANCELLED are terminal: nothing claims,
 * reports on or requeues them, so a post is never published twice by
 * Herald's own doing. (An executor that publishes and then lets its lease
 * lapse without reporting can still cause a second attempt; executors must
 * renew, and give the platform the post id as idempotency key.)
 *
 * Times are Unix milliseconds. Strings in the records are borrowed: after a
 * transition a record may point into the event (executor_id, external_id)
 * or at static strings (state_reason), so copy them before the event dies.
 *
 * Threads: pure; any thread. */
#ifndef HERALD_LEASE_H
#define HERALD_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"
#include "status.h"

/* Values match herald.v1.PostState. */
typedef enum lease_post_state {
    LEASE_POST_DRAFT = 1,
    LEASE_POST_APPROVED = 2,
    LEASE_POST_SCHEDULED = 3,
    LEASE_POST_PUBLISHING = 4,
    LEASE_POST_UNCONFIRMED = 5,
    LEASE_POST_PUBLISHED = 6,
    LEASE_POST_FAILED = 7,
    LEASE_POST_REJECTED = 8,
    LEASE_POST_CANCELLED = 9,
} lease_post_state;

/* publish_attempts.state; NONE = no attempt row. */
typedef enum lease_attempt_state {
    LEASE_ATTEMPT_NONE = 0,
    LEASE_ATTEMPT_LEASED,
    LEASE_ATTEMPT_SUCCEEDED,
    LEASE_ATTEMPT_FAILED, /* RETRYABLE or PERMANENT was reported */
    LEASE_ATTEMPT_UNKNOWN,
    LEASE_ATTEMPT_EXPIRED,
    LEASE_ATTEMPT_RELEASED, /* given back unused (not produced here) */
} lease_attempt_state;

/* Values match herald.v1.PublishOutcome; NONE = not reported. */
typedef enum lease_outcome {
    LEASE_OUTCOME_NONE = 0,
    LEASE_OUTCOME_SUCCESS = 1,
    LEASE_OUTCOME_RETRYABLE = 2,
    LEASE_OUTCOME_PERMANENT = 3,
    LEASE_OUTCOME_UNKNOWN = 4,
} lease_outcome;

/* Values match herald.v1.ReconcileAction. */
typedef enum lease_reconcile_action {
    LEASE_RECONCILE_NONE = 0,
    LEASE_RECONCILE_MATCHED = 1,
    LEASE_RECONCILE_PENDING = 2,
    LEASE_RECONCILE_REQUEUED = 3,
} lease_reconcile_action;

typedef struct lease_attempt {
    int number; /* attempt_number, >= 1; 0 = no attempt */
    lease_attempt_state state;
    const char *executor_id;
    int64_t claim_ms;
    int64_t expire_ms;
    int64_t finish_ms; /* 0 while LEASED */
    lease_outcome outcome;
    int error_class; /* herald.v1.PublishErrorClass value */
    const char *external_id;
} lease_attempt;

typedef struct lease_post {
    lease_post_state state;
    int attempt_count;
    int64_t schedule_ms;     /* schedule_time */
    int64_t next_attempt_ms; /* next_attempt_time; 0 = none */
    int64_t publish_ms;      /* publish_time (PUBLISHED) */
    const char *external_id; /* receipt (PUBLISHED) */
    lease_outcome last_outcome;
    int last_error_class;
    const char *state_reason; /* "" when none */
} lease_post;

typedef struct lease_record {
    lease_post post;
    lease_attempt attempt;
} lease_record;

typedef enum lease_event_kind {
    LEASE_EV_SCHEDULE,
    LEASE_EV_CLAIM,
    LEASE_EV_RENEW,
    LEASE_EV_EXPIRE,
    LEASE_EV_REPORT,
    LEASE_EV_RECONCILE,
    LEASE_EV_CANCEL,
} lease_event_kind;

typedef struct lease_event {
    lease_event_kind kind;
    int64_t now_ms;
    const char *executor_id;  /* CLAIM, RENEW, REPORT: required */
    int64_t lease_ms;         /* CLAIM, RENEW: > 0 */
    int64_t schedule_ms;      /* SCHEDULE */
    lease_outcome outcome;    /* REPORT */
    int error_class;          /* REPORT */
    const char *external_id;  /* REPORT SUCCESS, RECONCILE found: required */
    int64_t publish_ms;       /* REPORT SUCCESS, RECONCILE found: 0 = now */
    int retry_after_s;        /* REPORT RETRYABLE: < 0 = none */
    double jitter;            /* REPORT RETRYABLE: backoff_jitter(lease id) */
    bool found;               /* RECONCILE */
    int64_t observe_start_ms; /* RECONCILE: the period read completely */
    int64_t observe_end_ms;
} lease_event;

typedef struct lease_limits {
    int max_attempts;
    int initial_backoff_s;
    int max_backoff_s;
    int64_t reconcile_window_ms;
} lease_limits;

void lease_limits_from_policy(const policy *p, lease_limits *out);

typedef struct lease_result {
    bool changed;                  /* write the post and the attempt back */
    bool new_attempt;              /* CLAIM: the attempt is a new row to insert */
    bool duplicate;                /* REPORT/CANCEL: already applied; nothing changed */
    lease_reconcile_action action; /* RECONCILE */
    int64_t next_attempt_ms;       /* REPORT RETRYABLE that re-queued; else 0 */
    const char *reason;            /* why it was refused, or what happened; static */
} lease_result;

/* Applies ev to *rec. On ST_OK *rec is the new state (res->changed says
 * whether anything differs); on any other status *rec is untouched and
 * res->reason explains: ST_INVALID (bad event: missing executor or
 * external id, lease_ms <= 0, unknown outcome or kind),
 * ST_FAILED_PRECONDITION (not allowed in this state; see above),
 * ST_INTERNAL (the record contradicts itself, e.g. a live lease on a post
 * that is not PUBLISHING). */
status lease_apply(const lease_limits *lim, lease_record *rec, const lease_event *ev,
                   lease_result *res);

/* Lower-case names as stored: "scheduled", "leased", "retryable"... */
const char *lease_post_state_name(lease_post_state s);
const char *lease_attempt_state_name(lease_attempt_state s);
const char *lease_outcome_name(lease_outcome o);

#endif
