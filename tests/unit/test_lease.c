/* test_lease.c - the publishing state machine: every (state, event) pair in
 * one table (anything not listed must be refused with FAILED_PRECONDITION
 * and leave the record untouched), invalid events, broken records, backoff
 * and retry exhaustion, reconcile windows, and a seeded simulation of
 * executors that crash, repeat and delay reports (no post published twice,
 * none lost). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "backoff.h"
#include "lease.h"
#include "policy.h"

#define NOW 1717236000000LL /* 2024-06-01T10:00Z, ms */
#define MIN_MS 60000LL

static lease_limits limits(void)
{
    policy p;
    lease_limits l;
    policy_defaults(&p);
    lease_limits_from_policy(&p, &l);
    return l; /* 5 attempts, 60 s doubling to 3600 s, 30 min reconcile window */
}

/* ---------------------------------------------------------------- fixtures */

typedef enum {
    F_DRAFT,
    F_APPROVED,
    F_SCHED_DUE,
    F_SCHED_FUTURE,
    F_SCHED_BACKOFF, /* attempt 1 failed RETRYABLE by A; next attempt later */
    F_PUB_LIVE,      /* attempt 2 leased by A until NOW + 1 min */
    F_PUB_LAPSED,    /* attempt 2 leased by A until NOW - 1 min */
    F_UNCONFIRMED,   /* attempt 1 unknown by A, reported 40 min ago */
    F_PUBLISHED,     /* attempt 1 succeeded by A, "x1" */
    F_FAILED,        /* attempt 1 failed PERMANENT by A */
    F_REJECTED,
    F_CANCELLED,
    F_COUNT
} fixture;

static const char *const fixture_names[F_COUNT] = {
    "DRAFT",      "APPROVED",    "SCHED_DUE", "SCHED_FUTURE", "SCHED_BACKOFF", "PUB_LIVE",
    "PUB_LAPSED", "UNCONFIRMED", "PUBLISHED", "FAILED",       "REJECTED",      "CANCELLED",
};

static lease_record make(fixture f)
{
    lease_record r;
    memset(&r, 0, sizeof r);
    r.post.state_reason = "";
    r.post.schedule_ms = NOW - 5 * MIN_MS;
    switch (f) {
    case F_DRAFT:
        r.post.state = LEASE_POST_DRAFT;
        break;
    case F_APPROVED:
        r.post.state = LEASE_POST_APPROVED;
        break;
    case F_SCHED_DUE:
        r.post.state = LEASE_POST_SCHEDULED;
        break;
    case F_SCHED_FUTURE:
        r.post.state = LEASE_POST_SCHEDULED;
        r.post.schedule_ms = NOW + 10 * MIN_MS;
        break;
    case F_SCHED_BACKOFF:
        r.post.state = LEASE_POST_SCHEDULED;
        r.post.attempt_count = 1;
        r.post.next_attempt_ms = NOW + MIN_MS;
        r.attempt = (lease_attempt){ 1,
                                     LEASE_ATTEMPT_FAILED,
                                     "A",
                                     NOW - 3 * MIN_MS,
                                     NOW - MIN_MS,
                                     NOW - 2 * MIN_MS,
                                     LEASE_OUTCOME_RETRYABLE,
                                     6,
                                     NULL };
        break;
    case F_PUB_LIVE:
    case F_PUB_LAPSED:
        r.post.state = LEASE_POST_PUBLISHING;
        r.post.attempt_count = 2;
        r.attempt = (lease_attempt){ 2,
                                     LEASE_ATTEMPT_LEASED,
                                     "A",
                                     NOW - MIN_MS,
                                     f == F_PUB_LIVE ? NOW + MIN_MS : NOW - MIN_MS,
                                     0,
                                     LEASE_OUTCOME_NONE,
                                     0,
                                     NULL };
        break;
    case F_UNCONFIRMED:
        r.post.state = LEASE_POST_UNCONFIRMED;
        r.post.attempt_count = 1;
        r.attempt = (lease_attempt){ 1,
                                     LEASE_ATTEMPT_UNKNOWN,
                                     "A",
                                     NOW - 41 * MIN_MS,
                                     NOW - 39 * MIN_MS,
                                     NOW - 40 * MIN_MS,
                                     LEASE_OUTCOME_UNKNOWN,
                                     5,
                                     NULL };
        break;
    case F_PUBLISHED:
        r.post.state = LEASE_POST_PUBLISHED;
        r.post.attempt_count = 1;
        r.post.external_id = "x1";
        r.attempt = (lease_attempt){ 1,
                                     LEASE_ATTEMPT_SUCCEEDED,
                                     "A",
                                     NOW - 3 * MIN_MS,
                                     NOW - MIN_MS,
                                     NOW - 2 * MIN_MS,
                                     LEASE_OUTCOME_SUCCESS,
                                     0,
                                     "x1" };
        break;
    case F_FAILED:
        r.post.state = LEASE_POST_FAILED;
        r.post.attempt_count = 1;
        r.attempt = (lease_attempt){ 1,
                                     LEASE_ATTEMPT_FAILED,
                                     "A",
                                     NOW - 3 * MIN_MS,
                                     NOW - MIN_MS,
                                     NOW - 2 * MIN_MS,
                                     LEASE_OUTCOME_PERMANENT,
                                     7,
                                     NULL };
        break;
    case F_REJECTED:
        r.post.state = LEASE_POST_REJECTED;
        break;
    case F_CANCELLED:
        r.post.state = LEASE_POST_CANCELLED;
        break;
    case F_COUNT:
        break;
    }
    return r;
}

/* ---------------------------------------------------------------- events */

typedef enum {
    E_SCHEDULE,
    E_CLAIM_B,
    E_RENEW_A,
    E_RENEW_B,
    E_EXPIRE,
    E_REPORT_A_SUCCESS,
    E_REPORT_A_RETRYABLE,
    E_REPORT_A_PERMANENT,
    E_REPORT_A_UNKNOWN,
    E_REPORT_B_SUCCESS,
    E_RECONCILE_FOUND,
    E_RECONCILE_ABSENT, /* observed the whole window: requeue */
    E_RECONCILE_EARLY,  /* observation ends inside the window: pending */
    E_CANCEL,
    E_COUNT
} event_id;

static const char *const event_names[E_COUNT] = {
    "SCHEDULE",
    "CLAIM_B",
    "RENEW_A",
    "RENEW_B",
    "EXPIRE",
    "REPORT_A_SUCCESS",
    "REPORT_A_RETRYABLE",
    "REPORT_A_PERMANENT",
    "REPORT_A_UNKNOWN",
    "REPORT_B_SUCCESS",
    "RECONCILE_FOUND",
    "RECONCILE_ABSENT",
    "RECONCILE_EARLY",
    "CANCEL",
};

static lease_event make_event(event_id e)
{
    lease_event ev;
    memset(&ev, 0, sizeof ev);
    ev.now_ms = NOW;
    ev.retry_after_s = -1;
    ev.jitter = 0.5;
    ev.lease_ms = 2 * MIN_MS;
    switch (e) {
    case E_SCHEDULE:
        ev.kind = LEASE_EV_SCHEDULE;
        ev.schedule_ms = NOW + 60 * MIN_MS;
        break;
    case E_CLAIM_B:
        ev.kind = LEASE_EV_CLAIM;
        ev.executor_id = "B";
        break;
    case E_RENEW_A:
    case E_RENEW_B:
        ev.kind = LEASE_EV_RENEW;
        ev.executor_id = e == E_RENEW_A ? "A" : "B";
        break;
    case E_EXPIRE:
        ev.kind = LEASE_EV_EXPIRE;
        break;
    case E_REPORT_A_SUCCESS:
    case E_REPORT_B_SUCCESS:
        ev.kind = LEASE_EV_REPORT;
        ev.executor_id = e == E_REPORT_A_SUCCESS ? "A" : "B";
        ev.outcome = LEASE_OUTCOME_SUCCESS;
        ev.external_id = "x1";
        break;
    case E_REPORT_A_RETRYABLE:
        ev.kind = LEASE_EV_REPORT;
        ev.executor_id = "A";
        ev.outcome = LEASE_OUTCOME_RETRYABLE;
        ev.error_class = 6;
        break;
    case E_REPORT_A_PERMANENT:
        ev.kind = LEASE_EV_REPORT;
        ev.executor_id = "A";
        ev.outcome = LEASE_OUTCOME_PERMANENT;
        ev.error_class = 7;
        break;
    case E_REPORT_A_UNKNOWN:
        ev.kind = LEASE_EV_REPORT;
        ev.executor_id = "A";
        ev.outcome = LEASE_OUTCOME_UNKNOWN;
        ev.error_class = 5;
        break;
    case E_RECONCILE_FOUND:
        ev.kind = LEASE_EV_RECONCILE;
        ev.found = true;
        ev.external_id = "x9";
        ev.observe_start_ms = NOW - 60 * MIN_MS;
        ev.observe_end_ms = NOW;
        break;
    case E_RECONCILE_ABSENT:
    case E_RECONCILE_EARLY:
        ev.kind = LEASE_EV_RECONCILE;
        ev.observe_start_ms = NOW - 60 * MIN_MS;
        ev.observe_end_ms = e == E_RECONCILE_ABSENT ? NOW : NOW - 15 * MIN_MS;
        break;
    case E_CANCEL:
        ev.kind = LEASE_EV_CANCEL;
        break;
    case E_COUNT:
        break;
    }
    return ev;
}

/* ---------------------------------------------------------------- the table */

enum { DUP = 1, NEW = 2 };

typedef struct row {
    fixture f;
    event_id e;
    status st;
    lease_post_state post; /* after */
    lease_attempt_state att;
    unsigned flags;
    lease_reconcile_action action;
} row;

/* clang-format off */
static const row table[] = {
    { F_APPROVED, E_SCHEDULE, ST_OK, LEASE_POST_SCHEDULED, LEASE_ATTEMPT_NONE, 0, 0 },
    { F_SCHED_DUE, E_SCHEDULE, ST_OK, LEASE_POST_SCHEDULED, LEASE_ATTEMPT_NONE, 0, 0 },
    { F_SCHED_FUTURE, E_SCHEDULE, ST_OK, LEASE_POST_SCHEDULED, LEASE_ATTEMPT_NONE, 0, 0 },
    { F_SCHED_BACKOFF, E_SCHEDULE, ST_OK, LEASE_POST_SCHEDULED, LEASE_ATTEMPT_FAILED, 0, 0 },
    { F_SCHED_DUE, E_CLAIM_B, ST_OK, LEASE_POST_PUBLISHING, LEASE_ATTEMPT_LEASED, NEW, 0 },
    { F_PUB_LIVE, E_RENEW_A, ST_OK, LEASE_POST_PUBLISHING, LEASE_ATTEMPT_LEASED, 0, 0 },
    { F_PUB_LAPSED, E_EXPIRE, ST_OK, LEASE_POST_SCHEDULED, LEASE_ATTEMPT_EXPIRED, 0, 0 },
    { F_PUB_LIVE, E_REPORT_A_SUCCESS, ST_OK, LEASE_POST_PUBLISHED, LEASE_ATTEMPT_SUCCEEDED, 0, 0 },
    { F_PUB_LIVE, E_REPORT_A_RETRYABLE, ST_OK, LEASE_POST_SCHEDULED, LEASE_ATTEMPT_FAILED, 0, 0 },
    { F_PUB_LIVE, E_REPORT_A_PERMANENT, ST_OK, LEASE_POST_FAILED, LEASE_ATTEMPT_FAILED, 0, 0 },
    { F_PUB_LIVE, E_REPORT_A_UNKNOWN, ST_OK, LEASE_POST_UNCONFIRMED, LEASE_ATTEMPT_UNKNOWN, 0, 0 },
    /* the same report again, whenever it comes: duplicate, no change */
    { F_SCHED_BACKOFF, E_REPORT_A_RETRYABLE, ST_OK, LEASE_POST_SCHEDULED, LEASE_ATTEMPT_FAILED, DUP, 0 },
    { F_UNCONFIRMED, E_REPORT_A_UNKNOWN, ST_OK, LEASE_POST_UNCONFIRMED, LEASE_ATTEMPT_UNKNOWN, DUP, 0 },
    { F_PUBLISHED, E_REPORT_A_SUCCESS, ST_OK, LEASE_POST_PUBLISHED, LEASE_ATTEMPT_SUCCEEDED, DUP, 0 },
    { F_FAILED, E_REPORT_A_PERMANENT, ST_OK, LEASE_POST_FAILED, LEASE_ATTEMPT_FAILED, DUP, 0 },
    { F_UNCONFIRMED, E_RECONCILE_FOUND, ST_OK, LEASE_POST_PUBLISHED, LEASE_ATTEMPT_UNKNOWN, 0,
      LEASE_RECONCILE_MATCHED },
    { F_UNCONFIRMED, E_RECONCILE_ABSENT, ST_OK, LEASE_POST_SCHEDULED, LEASE_ATTEMPT_UNKNOWN, 0,
      LEASE_RECONCILE_REQUEUED },
    { F_UNCONFIRMED, E_RECONCILE_EARLY, ST_OK, LEASE_POST_UNCONFIRMED, LEASE_ATTEMPT_UNKNOWN, 0,
      LEASE_RECONCILE_PENDING },
    { F_DRAFT, E_CANCEL, ST_OK, LEASE_POST_CANCELLED, LEASE_ATTEMPT_NONE, 0, 0 },
    { F_APPROVED, E_CANCEL, ST_OK, LEASE_POST_CANCELLED, LEASE_ATTEMPT_NONE, 0, 0 },
    { F_SCHED_DUE, E_CANCEL, ST_OK, LEASE_POST_CANCELLED, LEASE_ATTEMPT_NONE, 0, 0 },
    { F_SCHED_FUTURE, E_CANCEL, ST_OK, LEASE_POST_CANCELLED, LEASE_ATTEMPT_NONE, 0, 0 },
    { F_SCHED_BACKOFF, E_CANCEL, ST_OK, LEASE_POST_CANCELLED, LEASE_ATTEMPT_FAILED, 0, 0 },
    { F_CANCELLED, E_CANCEL, ST_OK, LEASE_POST_CANCELLED, LEASE_ATTEMPT_NONE, DUP, 0 },
};
/* clang-format on */

static const row *find_row(fixture f, event_id e)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].f == f && table[i].e == e)
            return &table[i];
    return NULL;
}

static void lease_every_state_and_event(void **state)
{
    (void)state;
    lease_limits lim = limits();
    size_t legal = 0, refused = 0;
    for (int f = 0; f < F_COUNT; f++) {
        for (int e = 0; e < E_COUNT; e++) {
            lease_record rec = make((fixture)f), before = rec;
            lease_event ev = make_event((event_id)e);
            lease_result res;
            status st = lease_apply(&lim, &rec, &ev, &res);
            const row *want = find_row((fixture)f, (event_id)e);
            const char *what = res.reason ? res.reason : "(none)";
            if (want == NULL) {
                if (st != ST_FAILED_PRECONDITION)
                    fail_msg("%s + %s: status %s (%s), want FAILED_PRECONDITION", fixture_names[f],
                             event_names[e], status_name(st), what);
                if (memcmp(&rec, &before, sizeof rec) != 0)
                    fail_msg("%s + %s: refused but changed", fixture_names[f], event_names[e]);
                assert_non_null(res.reason);
                assert_false(res.changed);
                refused++;
                continue;
            }
            if (st != want->st)
                fail_msg("%s + %s: status %s (%s)", fixture_names[f], event_names[e],
                         status_name(st), what);
            if (rec.post.state != want->post || rec.attempt.state != want->att)
                fail_msg("%s + %s: -> %s/%s, want %s/%s", fixture_names[f], event_names[e],
                         lease_post_state_name(rec.post.state),
                         lease_attempt_state_name(rec.attempt.state),
                         lease_post_state_name(want->post), lease_attempt_state_name(want->att));
            assert_int_equal(res.duplicate, (want->flags & DUP) != 0);
            assert_int_equal(res.new_attempt, (want->flags & NEW) != 0);
            assert_int_equal(res.action, want->action);
            bool no_change = (want->flags & DUP) || want->action == LEASE_RECONCILE_PENDING;
            assert_int_equal(res.changed, !no_change);
            if (no_change)
                assert_memory_equal(&rec, &before, sizeof rec);
            legal++;
        }
    }
    assert_int_equal(legal, sizeof table / sizeof table[0]);
    assert_int_equal(legal + refused, F_COUNT * E_COUNT);
}

/* ---------------------------------------------------------------- details */

static void lease_transitions_carry_the_right_values(void **state)
{
    (void)state;
    lease_limits lim = limits();
    lease_result res;

    /* Claim: a new attempt numbered after the last one. */
    lease_record r = make(F_SCHED_DUE);
    r.post.attempt_count = 2;
    r.attempt = (lease_attempt){ 2,
                                 LEASE_ATTEMPT_EXPIRED,
                                 "A",
                                 NOW - 9 * MIN_MS,
                                 NOW - 7 * MIN_MS,
                                 NOW - 6 * MIN_MS,
                                 LEASE_OUTCOME_NONE,
                                 0,
                                 NULL };
    lease_event ev = make_event(E_CLAIM_B);
    assert_int_equal(lease_apply(&lim, &r, &ev, &res), ST_OK);
    assert_int_equal(r.attempt.number, 3);
    assert_int_equal(r.post.attempt_count, 3);
    assert_string_equal(r.attempt.executor_id, "B");
    assert_int_equal(r.attempt.claim_ms, NOW);
    assert_int_equal(r.attempt.expire_ms, NOW + 2 * MIN_MS);
    /* A second claim while it is live is refused; B renews; A cannot. */
    assert_int_equal(lease_apply(&lim, &r, &ev, &res), ST_FAILED_PRECONDITION);
    lease_event renew = make_event(E_RENEW_B);
    renew.now_ms = NOW + MIN_MS;
    renew.lease_ms = 5 * MIN_MS;
    assert_int_equal(lease_apply(&lim, &r, &renew, &res), ST_OK);
    assert_int_equal(r.attempt.expire_ms, NOW + 6 * MIN_MS);
    renew.executor_id = "A";
    assert_int_equal(lease_apply(&lim, &r, &renew, &res), ST_FAILED_PRECONDITION);
    /* At exactly the expiry instant the lease is gone. */
    lease_event rep = make_event(E_REPORT_A_SUCCESS);
    rep.executor_id = "B";
    rep.now_ms = NOW + 6 * MIN_MS;
    assert_int_equal(lease_apply(&lim, &r, &rep, &res), ST_FAILED_PRECONDITION);
    assert_string_equal(res.reason, "the lease has expired");
    rep.now_ms = NOW + 6 * MIN_MS - 1;
    rep.publish_ms = NOW + 3 * MIN_MS;
    assert_int_equal(lease_apply(&lim, &r, &rep, &res), ST_OK);
    assert_int_equal(r.post.state, LEASE_POST_PUBLISHED);
    assert_string_equal(r.post.external_id, "x1");
    assert_int_equal(r.post.publish_ms, NOW + 3 * MIN_MS);
    assert_int_equal(r.post.last_outcome, LEASE_OUTCOME_SUCCESS);
    /* The same success with another receipt is not a duplicate. */
    rep.external_id = "x2";
    assert_int_equal(lease_apply(&lim, &r, &rep, &res), ST_FAILED_PRECONDITION);

    /* Retryable: next attempt after the backoff for attempt 2 (120 s base). */
    r = make(F_PUB_LIVE);
    ev = make_event(E_REPORT_A_RETRYABLE);
    ev.jitter = 0.0;
    assert_int_equal(lease_apply(&lim, &r, &ev, &res), ST_OK);
    assert_int_equal(r.post.next_attempt_ms, NOW + 60000);
    assert_int_equal(res.next_attempt_ms, r.post.next_attempt_ms);
    /* Retry-After wins when longer. */
    r = make(F_PUB_LIVE);
    ev.retry_after_s = 900;
    assert_int_equal(lease_apply(&lim, &r, &ev, &res), ST_OK);
    assert_int_equal(r.post.next_attempt_ms, NOW + 900000);
    /* Not claimable before then, claimable after. */
    lease_event claim = make_event(E_CLAIM_B);
    claim.now_ms = NOW + 899999;
    assert_int_equal(lease_apply(&lim, &r, &claim, &res), ST_FAILED_PRECONDITION);
    claim.now_ms = NOW + 900000;
    assert_int_equal(lease_apply(&lim, &r, &claim, &res), ST_OK);
    assert_int_equal(r.attempt.number, 3);

    /* Reconcile: the observation must start by the claim. */
    r = make(F_UNCONFIRMED);
    ev = make_event(E_RECONCILE_ABSENT);
    ev.observe_start_ms = r.attempt.claim_ms + 1;
    assert_int_equal(lease_apply(&lim, &r, &ev, &res), ST_OK);
    assert_int_equal(res.action, LEASE_RECONCILE_PENDING);
    ev.observe_start_ms = r.attempt.claim_ms;
    assert_int_equal(lease_apply(&lim, &r, &ev, &res), ST_OK);
    assert_int_equal(res.action, LEASE_RECONCILE_REQUEUED);
    assert_int_equal(r.post.next_attempt_ms, 0);
    /* Found: published with the observed receipt and time. */
    r = make(F_UNCONFIRMED);
    ev = make_event(E_RECONCILE_FOUND);
    ev.publish_ms = NOW - 39 * MIN_MS;
    assert_int_equal(lease_apply(&lim, &r, &ev, &res), ST_OK);
    assert_string_equal(r.post.external_id, "x9");
    assert_int_equal(r.post.publish_ms, NOW - 39 * MIN_MS);
}

static void lease_attempts_run_out(void **state)
{
    (void)state;
    lease_limits lim = limits();
    lease_result res;
    lease_record r = make(F_SCHED_DUE);
    int64_t now = NOW, prev_delay = 0;
    int attempts = 0;
    char lease_id[32];
    for (int i = 0; i < 100 && r.post.state == LEASE_POST_SCHEDULED; i++) {
        lease_event c = make_event(E_CLAIM_B);
        c.now_ms = now;
        assert_int_equal(lease_apply(&lim, &r, &c, &res), ST_OK);
        attempts++;
        lease_event rep = make_event(E_REPORT_A_RETRYABLE);
        rep.executor_id = "B";
        rep.now_ms = now + 1000;
        snprintf(lease_id, sizeof lease_id, "lease-%d", r.attempt.number);
        rep.jitter = backoff_jitter(lease_id, strlen(lease_id));
        assert_int_equal(lease_apply(&lim, &r, &rep, &res), ST_OK);
        if (r.post.state == LEASE_POST_SCHEDULED) {
            int64_t delay = r.post.next_attempt_ms - rep.now_ms;
            int64_t base = 60000LL << (attempts - 1);
            assert_true(delay >= base / 2 && delay <= base);
            assert_true(delay > prev_delay / 2);
            prev_delay = delay;
            now = r.post.next_attempt_ms;
        }
    }
    assert_int_equal(attempts, lim.max_attempts);
    assert_int_equal(r.post.state, LEASE_POST_FAILED);
    assert_non_null(strstr(r.post.state_reason, "exhausted"));
    assert_string_equal(res.reason, "retries exhausted");
    /* A FAILED post is never claimed again. */
    lease_event c = make_event(E_CLAIM_B);
    c.now_ms = now + 86400000LL;
    assert_int_equal(lease_apply(&lim, &r, &c, &res), ST_FAILED_PRECONDITION);

    /* Lapsed leases count as attempts too. */
    r = make(F_SCHED_DUE);
    now = NOW;
    for (int i = 0; i < 100 && r.post.state == LEASE_POST_SCHEDULED; i++) {
        lease_event cl = make_event(E_CLAIM_B);
        cl.now_ms = now;
        assert_int_equal(lease_apply(&lim, &r, &cl, &res), ST_OK);
        lease_event ex = make_event(E_EXPIRE);
        ex.now_ms = now + cl.lease_ms - 1;
        assert_int_equal(lease_apply(&lim, &r, &ex, &res), ST_FAILED_PRECONDITION);
        ex.now_ms = now + cl.lease_ms;
        assert_int_equal(lease_apply(&lim, &r, &ex, &res), ST_OK);
        now += cl.lease_ms;
    }
    assert_int_equal(r.post.attempt_count, lim.max_attempts);
    assert_int_equal(r.post.state, LEASE_POST_FAILED);
}

static void lease_backoff_shape(void **state)
{
    (void)state;
    assert_int_equal(backoff_delay_ms(1, 60, 3600, -1, 0.0), 30000);
    assert_int_equal(backoff_delay_ms(1, 60, 3600, -1, 0.999999), 59999);
    assert_int_equal(backoff_delay_ms(3, 60, 3600, -1, 0.0), 120000);
    assert_int_equal(backoff_delay_ms(30, 60, 3600, -1, 0.0), 1800000); /* capped at max */
    assert_int_equal(backoff_delay_ms(1000000, 1, 86400, -1, 0.0), 43200000);
    assert_int_equal(backoff_delay_ms(1, 60, 3600, 100000, 0.0), 86400000); /* Retry-After cap */
    assert_int_equal(backoff_delay_ms(0, 0, 0, -1, -1.0), 500);
    double a = backoff_jitter("lease-1", 7), b = backoff_jitter("lease-1", 7);
    double c = backoff_jitter("lease-2", 7);
    assert_true(a == b);
    assert_true(a != c);
    assert_true(a >= 0.0 && a < 1.0 && c >= 0.0 && c < 1.0);
}

static void lease_invalid_events_and_broken_records(void **state)
{
    (void)state;
    lease_limits lim = limits();
    lease_result res;
    lease_record r = make(F_SCHED_DUE), before = r;
    lease_event ev = make_event(E_CLAIM_B);
    ev.executor_id = "";
    assert_int_equal(lease_apply(&lim, &r, &ev, &res), ST_INVALID);
    ev.executor_id = "B";
    ev.lease_ms = 0;
    assert_int_equal(lease_apply(&lim, &r, &ev, &res), ST_INVALID);
    r = make(F_PUB_LIVE);
    before = r;
    ev = make_event(E_REPORT_A_SUCCESS);
    ev.external_id = NULL;
    assert_int_equal(lease_apply(&lim, &r, &ev, &res), ST_INVALID);
    ev = make_event(E_REPORT_A_SUCCESS);
    ev.outcome = LEASE_OUTCOME_NONE;
    assert_int_equal(lease_apply(&lim, &r, &ev, &res), ST_INVALID);
    ev.outcome = (lease_outcome)9;
    assert_int_equal(lease_apply(&lim, &r, &ev, &res), ST_INVALID);
    ev = make_event(E_CLAIM_B);
    ev.kind = (lease_event_kind)42;
    assert_int_equal(lease_apply(&lim, &r, &ev, &res), ST_INVALID);
    assert_memory_equal(&r, &before, sizeof r);

    /* A live lease on a SCHEDULED post; an attempt newer than the count; a
     * live lease that is not the latest attempt. */
    r = make(F_SCHED_DUE);
    r.attempt = make(F_PUB_LIVE).attempt;
    r.post.attempt_count = 2;
    ev = make_event(E_CLAIM_B);
    assert_int_equal(lease_apply(&lim, &r, &ev, &res), ST_INTERNAL);
    r = make(F_PUB_LIVE);
    r.post.attempt_count = 1;
    assert_int_equal(lease_apply(&lim, &r, &ev, &res), ST_INTERNAL);
    r = make(F_PUB_LIVE);
    r.post.attempt_count = 3;
    ev = make_event(E_REPORT_A_SUCCESS);
    assert_int_equal(lease_apply(&lim, &r, &ev, &res), ST_INTERNAL);
    r = make(F_SCHED_DUE);
    r.post.state = (lease_post_state)0;
    assert_int_equal(lease_apply(&lim, &r, &ev, &res), ST_INTERNAL);
    assert_string_equal(lease_post_state_name(LEASE_POST_UNCONFIRMED), "unconfirmed");
    assert_string_equal(lease_attempt_state_name(LEASE_ATTEMPT_LEASED), "leased");
    assert_string_equal(lease_outcome_name(LEASE_OUTCOME_RETRYABLE), "retryable");
}

/* ---------------------------------------------------------------- simulation */

static uint64_t mix_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define SIM_POSTS 1000
#define SIM_EXECUTORS 8
#define SIM_STEPS 200000

typedef struct sim_post {
    lease_record rec;       /* current: post + latest attempt */
    lease_attempt hist[32]; /* every attempt by number (1-based) */
    int on_platform;        /* times the platform accepted it */
    char ext[16];
} sim_post;

typedef struct sim_exec {
    int post;        /* -1 idle */
    int attempt;     /* attempt number it holds */
    int64_t plan_ms; /* when it acts */
    int plan;        /* 0 publish ok, 1 retryable, 2 unknown-published, 3 unknown-not, 4 crash */
} sim_exec;

static const char *const exec_ids[SIM_EXECUTORS] = {
    "e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7"
};

/* Executors claim, act after a random delay (sometimes past their lease),
 * crash, repeat reports and send stale ones; a reconciler settles UNKNOWN
 * outcomes against the platform. Every report goes through lease_apply with
 * the attempt it names, as the store would load it. */
static void lease_simulation_never_publishes_twice(void **state)
{
    (void)state;
    static sim_post posts[SIM_POSTS];
    sim_exec ex[SIM_EXECUTORS];
    lease_limits lim = limits();
    lim.max_attempts = 20;
    lim.initial_backoff_s = 1;
    lim.max_backoff_s = 30;
    lim.reconcile_window_ms = 60000;
    uint64_t s = 77;
    int64_t now = NOW;
    size_t stale_refused = 0, dup_ok = 0, expired = 0, published_by_report = 0, matched = 0,
           requeued = 0, stale_applied = 0;

    memset(posts, 0, sizeof posts);
    for (int i = 0; i < SIM_POSTS; i++) {
        posts[i].rec.post.state = LEASE_POST_SCHEDULED;
        posts[i].rec.post.state_reason = "";
        posts[i].rec.post.schedule_ms = NOW + (int64_t)(mix_next(&s) % 600000);
        snprintf(posts[i].ext, sizeof posts[i].ext, "ext%d", i);
    }
    for (int e = 0; e < SIM_EXECUTORS; e++)
        ex[e] = (sim_exec){ -1, 0, 0, 0 };

    int steps = 0;
    for (int step = 0; step < SIM_STEPS; step++, steps++) {
        now += 250;
        if (step % 1000 == 999) {
            bool settled = true;
            for (int i = 0; i < SIM_POSTS && settled; i++)
                settled = posts[i].rec.post.state == LEASE_POST_PUBLISHED ||
                          posts[i].rec.post.state == LEASE_POST_FAILED;
            if (settled)
                break;
        }
        lease_result res;
        /* The reconciler: every UNCONFIRMED post, against the platform. */
        if (step % 50 == 0) {
            for (int i = 0; i < SIM_POSTS; i++) {
                sim_post *q = &posts[i];
                if (q->rec.post.state != LEASE_POST_UNCONFIRMED)
                    continue;
                lease_event rc = { .kind = LEASE_EV_RECONCILE,
                                   .now_ms = now,
                                   .found = q->on_platform > 0,
                                   .external_id = q->ext,
                                   .observe_start_ms = NOW,
                                   .observe_end_ms = now };
                assert_int_equal(lease_apply(&lim, &q->rec, &rc, &res), ST_OK);
                q->hist[q->rec.attempt.number] = q->rec.attempt;
                matched += res.action == LEASE_RECONCILE_MATCHED;
                requeued += res.action == LEASE_RECONCILE_REQUEUED;
            }
        }
        int e = (int)(mix_next(&s) % SIM_EXECUTORS);
        if (ex[e].post < 0) {
            /* Background expiry of lapsed leases, then claim the first due post. */
            int start = (int)(mix_next(&s) % SIM_POSTS);
            for (int k = 0; k < SIM_POSTS; k++) {
                sim_post *p = &posts[(start + k) % SIM_POSTS];
                lease_event ev = { .kind = LEASE_EV_EXPIRE, .now_ms = now };
                if (p->rec.post.state == LEASE_POST_PUBLISHING &&
                    lease_apply(&lim, &p->rec, &ev, &res) == ST_OK) {
                    p->hist[p->rec.attempt.number] = p->rec.attempt;
                    expired++;
                }
                if (p->rec.post.state != LEASE_POST_SCHEDULED)
                    continue;
                lease_event cl = { .kind = LEASE_EV_CLAIM,
                                   .now_ms = now,
                                   .executor_id = exec_ids[e],
                                   .lease_ms = 20000 };
                if (lease_apply(&lim, &p->rec, &cl, &res) == ST_OK) {
                    assert_true(p->rec.attempt.number < 32);
                    p->hist[p->rec.attempt.number] = p->rec.attempt;
                    ex[e].post = (start + k) % SIM_POSTS;
                    ex[e].attempt = p->rec.attempt.number;
                    ex[e].plan = (int)(mix_next(&s) % 10);
                    ex[e].plan = ex[e].plan < 5 ? 0 : ex[e].plan - 4; /* 50% clean success */
                    if (ex[e].plan > 4)
                        ex[e].plan = 1;
                    /* Usually well within the lease, sometimes past it. */
                    uint64_t span = mix_next(&s) % 8 ? 15000 : 40000;
                    ex[e].plan_ms = now + (int64_t)(mix_next(&s) % span);
                    break;
                }
            }
            continue;
        }
        if (now < ex[e].plan_ms)
            continue;
        sim_post *p = &posts[ex[e].post];
        int n = ex[e].attempt;
        lease_record named = p->rec;
        named.attempt = p->hist[n]; /* the store loads the attempt the lease id names */
        bool was_live =
            named.attempt.state == LEASE_ATTEMPT_LEASED && now < named.attempt.expire_ms;
        lease_event rep = {
            .kind = LEASE_EV_REPORT, .now_ms = now, .executor_id = exec_ids[e], .retry_after_s = -1
        };
        char key[32];
        snprintf(key, sizeof key, "%d/%d", ex[e].post, n);
        rep.jitter = backoff_jitter(key, strlen(key));
        switch (ex[e].plan) {
        case 0: /* publishes (only while it holds the lease), reports success */
        case 2: /* publishes, then times out: UNKNOWN */
            if (!was_live)
                break; /* a careful executor checks its lease before publishing */
            p->on_platform++;
            rep.outcome = ex[e].plan == 0 ? LEASE_OUTCOME_SUCCESS : LEASE_OUTCOME_UNKNOWN;
            rep.external_id = ex[e].plan == 0 ? p->ext : NULL;
            break;
        case 1:
            rep.outcome = LEASE_OUTCOME_RETRYABLE;
            break;
        case 3: /* timed out before the platform took it */
            rep.outcome = LEASE_OUTCOME_UNKNOWN;
            break;
        case 4: /* crashed: never reports; the lease lapses */
            ex[e].post = -1;
            continue;
        }
        if (rep.outcome == LEASE_OUTCOME_NONE) {
            ex[e].post = -1;
            continue;
        }
        status st = lease_apply(&lim, &named, &rep, &res);
        if (st == ST_OK && !res.duplicate) {
            if (!was_live)
                stale_applied++;
            p->rec.post = named.post;
            if (named.attempt.number == p->rec.post.attempt_count)
                p->rec.attempt = named.attempt;
            p->hist[n] = named.attempt;
            published_by_report += p->rec.post.state == LEASE_POST_PUBLISHED;
            /* Sometimes the same report again, at once or later. */
            if (mix_next(&s) % 3 == 0) {
                lease_record again = p->rec;
                again.attempt = p->hist[n];
                rep.now_ms = now + 100000;
                assert_int_equal(lease_apply(&lim, &again, &rep, &res), ST_OK);
                assert_true(res.duplicate);
                dup_ok++;
            }
        } else if (st == ST_FAILED_PRECONDITION) {
            assert_false(was_live);
            stale_refused++;
        } else {
            fail_msg("report: %s (%s)", status_name(st), res.reason);
        }
        ex[e].post = -1;
    }
    size_t published = 0, failed = 0, other = 0;
    for (int i = 0; i < SIM_POSTS; i++) {
        if (posts[i].on_platform > 1)
            fail_msg("post %d published %d times", i, posts[i].on_platform);
        if (posts[i].rec.post.state == LEASE_POST_PUBLISHED) {
            published++;
            assert_int_equal(posts[i].on_platform, 1);
        } else if (posts[i].rec.post.state == LEASE_POST_FAILED) {
            failed++;
            assert_int_equal(posts[i].on_platform, 0);
        } else {
            other++;
            print_message("unsettled post %d: %s attempt %d %s next %lld (now %lld)\n", i,
                          lease_post_state_name(posts[i].rec.post.state),
                          posts[i].rec.attempt.number,
                          lease_attempt_state_name(posts[i].rec.attempt.state),
                          (long long)posts[i].rec.post.next_attempt_ms, (long long)now);
        }
    }
    print_message(
        "simulation: %d posts: %zu published (%zu by report, %zu reconciled), %zu failed, "
        "%zu unsettled after %d steps; %zu leases expired, %zu stale reports refused, %zu "
        "duplicates "
        "answered, %zu requeued by reconcile\n",
        SIM_POSTS, published, published_by_report, matched, failed, other, steps, expired,
        stale_refused, dup_ok, requeued);
    assert_int_equal(stale_applied, 0);
    assert_int_equal(other, 0);
    assert_true(expired > 0 && stale_refused > 0 && dup_ok > 0 && matched > 0 && requeued > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lease_every_state_and_event),
        cmocka_unit_test(lease_transitions_carry_the_right_values),
        cmocka_unit_test(lease_attempts_run_out),
        cmocka_unit_test(lease_backoff_shape),
        cmocka_unit_test(lease_invalid_events_and_broken_records),
        cmocka_unit_test(lease_simulation_never_publishes_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
