/* sched_store.h - SchedulingService's SQL (svc_scheduling.c) and the
 * built-in publisher's (publisher.c): posting policies, platform cooldowns,
 * the publishing state machine of server/domain/lease.h in PostgreSQL, the
 * inputs of slots.h and replyopp.h, reply opportunities.
 *
 * Transactions. Every function runs inside the caller's open transaction
 * (db_begin, or handler_mutate's): a handler that only reads opens one too,
 * so all its reads see one snapshot. Times come from the database clock
 * (now(), the transaction's start) so that every replica and the domain
 * functions agree on what is due or lapsed; *_ms values are Unix
 * milliseconds, *_us microseconds, *_s seconds.
 *
 * The state machine. Each publishing event loads the post and attempt rows
 * FOR UPDATE, runs lease_apply() and writes back what changed, so SQL and
 * domain never disagree, with one deliberate exception:
 *
 *   LEASE EXPIRY. lease.h puts a post whose lease lapsed back in the queue.
 *   Herald does not: an executor that published and then crashed before
 *   reporting would make the next claim publish the post a second time.
 *   A lapsed lease ends its attempt EXPIRED (so a late report of it is
 *   refused, FAILED_PRECONDITION, changing nothing) and the post becomes
 *   UNCONFIRMED (last_outcome UNKNOWN, error class TIMEOUT) until
 *   ReconcilePublished settles it: found on the account -> PUBLISHED;
 *   absent once the executor's complete observation covers the claim and
 *   the reconcile window after the expiry -> SCHEDULED again (or FAILED
 *   when the attempts are used up). For RECONCILE the expired attempt of
 *   an UNCONFIRMED post is presented to lease_apply as an UNKNOWN outcome
 *   reported at the expiry instant; that is the whole difference.
 *   Expiry happens lazily (each ClaimDueWork and ReconcilePublished sweeps
 *   first) and in the background (the publisher thread sweeps every tick),
 *   always FOR UPDATE SKIP LOCKED, so replicas never wait on each other.
 *
 * Claims are split by publish target: ClaimDueWork (executors) only sees
 * profiles whose publish_target is EXECUTOR; the built-in publisher only
 * WEBHOOK and X_API_V2 ones. Paused profiles and profiles inside a platform
 * cooldown get no claims. FOR UPDATE SKIP LOCKED: concurrent claimers never
 * wait for or get the same post; the unique index on live leases
 * (publish_attempts_one_live_uq) backs "at most one live lease per post".
 *
 * Memory: results are allocated in the arena given (the call's, or the
 * publisher's per-round arena); strings are copies. Threads: no state; a
 * db_conn belongs to one thread. */
#ifndef HERALD_SCHED_STORE_H
#define HERALD_SCHED_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "bandit.h"
#include "db.h"
#include "herald/v1/common.pb-c.h"
#include "herald/v1/scheduling.pb-c.h"
#include "lease.h"
#include "policy.h"
#include "replyopp.h"
#include "status.h"
#include "tz.h"

/* state_reason of a post whose lease lapsed unreported. */
#define SCHED_EXPIRED_REASON                                                              \
    "the lease lapsed without a report: the executor may have published it; waiting for " \
    "ReconcilePublished"

enum {
    SCHED_EXPIRE_BATCH = 200,    /* leases expired per sweep */
    SCHED_UNCONFIRMED_MAX = 500, /* UNCONFIRMED posts settled per ReconcilePublished */
};

/* ---- profiles, policies, cooldowns ---- */

typedef struct sched_profile {
    const char *profile_id; /* arena */
    const char *time_zone;
    const tz_zone *zone;  /* tz_get of time_zone; UTC when it does not load */
    const char *platform; /* database spelling ("x") */
    const char *handle;
    bool paused;
    const char *publish_kind; /* "executor", "webhook", "x_api_v2" */
    policy policy;            /* the stored policy, or policy_defaults() */
    bool policy_stored;
    int64_t policy_revision; /* 0 when never stored */
    int64_t policy_update_us;
    bool has_cooldown; /* a cooldown row exists (it may have ended) */
    policy_cooldown cooldown;
    int64_t now_ms; /* the database clock (the transaction's start) */
} sched_profile;

/* The profile with its policy and cooldown. lock: FOR NO KEY UPDATE on the
 * profile row, which serializes SchedulePost / SetPostingPolicy /
 * ReportPlatformSignal per profile. ST_NOT_FOUND when absent. */
status sched_profile_load_tx(db_conn *db, arena *a, const char *profile_id, bool lock,
                             sched_profile *out);

/* Upserts every column of p (validated), bumping the revision; *revision
 * and *update_us get the new ones. */
status sched_policy_put_tx(db_conn *db, const char *profile_id, const policy *p, int64_t *revision,
                           int64_t *update_us);

/* Appends the signal to platform_signals and stores c as the profile's
 * cooldown. kind: the database spelling ("rate_limited"); reset_ms 0 =
 * none. */
status sched_cooldown_put_tx(db_conn *db, const char *profile_id, const char *executor_id,
                             const char *kind, int64_t reset_ms, const char *detail,
                             const policy_cooldown *c);

/* The instants policy.h counts ("other posts"), in Unix seconds, of the
 * profile's posts other than exclude_post_id (NULL: none) from from_s on:
 * PUBLISHED (publish time), PUBLISHING and UNCONFIRMED (claim time of the
 * latest attempt), SCHEDULED (schedule time). Original and adaptation posts
 * in posts_s, replies in replies_s. scheduled: SCHEDULED posts of any kind
 * (GetQuotaStatus). */
typedef struct sched_instants {
    int64_t *posts_s; /* arena */
    size_t n_posts;
    int64_t *replies_s;
    size_t n_replies;
    int scheduled;
} sched_instants;

status sched_instants_tx(db_conn *db, arena *a, const char *profile_id, const char *exclude_post_id,
                         int64_t from_s, sched_instants *out);

/* ---- the slot model's inputs ---- */

/* The profile's hour_of_week arm statistics under the current reward
 * version, by hour of week (zeroed cells without data); *any = some cell
 * has data. */
status sched_hour_stats_tx(db_conn *db, const char *profile_id, bandit_stats stats[168], bool *any);

typedef struct sched_zone_share {
    const char *time_zone; /* arena */
    double share;
} sched_zone_share;

/* The audience's zones (UpdateAudience), at most max; n 0 when none. */
status sched_audience_tx(db_conn *db, arena *a, const char *profile_id, size_t max,
                         sched_zone_share **out, size_t *n);

/* Logs a timing decision (decisions.kind 'timing', the current reward
 * version) and returns its id (arena). */
status sched_decision_insert_tx(db_conn *db, arena *a, const char *profile_id, int hour_of_week,
                                int64_t target_ms, uint64_t seed, double propensity,
                                const char *candidates_json, const char *reason,
                                const char **decision_id);

/* ---- posts ---- */

/* What the scheduler needs to know of a post besides its message. */
typedef struct sched_post_meta {
    lease_post_state state;
    bool reply; /* kind 'reply' */
    int attempt_count;
    bool live_lease; /* its latest attempt is LEASED */
    const char *profile_id;
} sched_post_meta;

/* One post as a herald.v1.Post built from its posts row (gate results,
 * engagement, outcome and sentiment are left empty: GetPost has them).
 * lock: FOR UPDATE. ST_NOT_FOUND when absent. meta may be NULL. */
status sched_post_get_tx(db_conn *db, arena *a, const char *post_id, bool lock,
                         Herald__V1__Post **out, sched_post_meta *meta);

/* SCHEDULE's write: state 'scheduled' at schedule_ms (its hour of week in
 * the profile's zone), timing decision (NULL: none). */
status sched_post_schedule_tx(db_conn *db, const char *post_id, int64_t schedule_ms,
                              int hour_of_week, const char *decision_id);

/* ---- leases ---- */

typedef struct sched_claim {
    const char *executor_id;
    const char *profile_id; /* NULL or "": any profile */
    const char *platforms;  /* text[] literal of database spellings, NULL: any */
    bool builtin;           /* false: EXECUTOR targets; true: WEBHOOK / X_API_V2 */
    int limit;              /* 1..100 */
    int64_t lease_ms;       /* > 0 */
} sched_claim;

typedef struct sched_work {
    Herald__V1__Lease *lease; /* arena */
    Herald__V1__Post *post;   /* as stored after the claim (PUBLISHING) */
} sched_work;

/* Sweeps lapsed leases first (of c->profile_id when given), then claims up
 * to c->limit due posts, oldest due first. *now_ms gets the claim instant. */
status sched_claim_tx(db_conn *db, arena *a, const sched_claim *c, sched_work **out, size_t *n,
                      int64_t *now_ms);

/* Expires up to limit lapsed leases (of profile_id; NULL: any), skipping
 * rows others hold; *expired gets how many. See LEASE EXPIRY above. */
status sched_expire_lapsed_tx(db_conn *db, const char *profile_id, int limit, int *expired);

/* Why an event was refused: a status and a sentence (static storage). */
typedef struct sched_refusal {
    status st; /* ST_OK when the event applied */
    const char *reason;
} sched_refusal;

/* RENEW: the lease's new state in *out. A refusal (not held, lapsed,
 * another executor's) changes nothing; ST_NOT_FOUND for an unknown lease. */
status sched_renew_tx(db_conn *db, arena *a, const char *lease_id, const char *executor_id,
                      int64_t lease_ms, Herald__V1__Lease **out, sched_refusal *why);

typedef struct sched_report {
    const char *lease_id;
    const char *executor_id;
    const char *post_id; /* must be the lease's */
    lease_outcome outcome;
    int error_class; /* herald.v1.PublishErrorClass */
    const char *external_id;
    const char *external_url;
    const char *error_message;
    int64_t publish_ms; /* 0 = now */
    int retry_after_s;  /* < 0: none */
} sched_report;

typedef struct sched_report_result {
    Herald__V1__Post *post; /* after the report */
    bool duplicate;
    int64_t next_attempt_ms; /* RETRYABLE that re-queued; 0 otherwise */
} sched_report_result;

/* REPORT. ST_NOT_FOUND for an unknown lease; ST_FAILED_PRECONDITION (with
 * why) when refused, changing nothing; ST_ALREADY_EXISTS when the receipt
 * (platform, external_id) already belongs to another post. */
status sched_report_tx(db_conn *db, arena *a, const sched_report *r, sched_report_result *out,
                       sched_refusal *why);

/* REPORT of many attempts in one transaction (ReportPublishResults): every
 * named attempt and its post are loaded FOR UPDATE in post order (so two
 * batches never deadlock), each report is decided by lease_apply() in
 * request order against the rows as the earlier reports of the batch left
 * them (a repeated lease is a duplicate or a refusal, never a second
 * write), receipts already taken by another post (or by an earlier report
 * of the batch) are refused, and what changed is written back with one
 * statement per table. Refusals change nothing and need no savepoint: they
 * are decided before any write. */
typedef struct sched_batch_item {
    /* ST_OK (applied or a duplicate); else what sched_report_tx would have
     * returned for this report alone: ST_NOT_FOUND (unknown lease),
     * ST_FAILED_PRECONDITION or lease_apply's status (refused),
     * ST_ALREADY_EXISTS (the receipt is another post's) */
    status st;
    const char *message; /* why (static), "" when ST_OK */
    bool duplicate;
    lease_post_state state;  /* after the report (ST_OK) */
    int64_t next_attempt_ms; /* RETRYABLE that re-queued; 0 otherwise */
} sched_batch_item;

/* rq[i].executor_id may differ per report. out[0..n) gets each result.
 * ST_CONFLICT when a concurrent transaction took a receipt between the
 * check and the write (nothing is written; retry the batch). */
status sched_report_batch_tx(db_conn *db, arena *a, const sched_report *rq, size_t n,
                             sched_batch_item *out);

/* An account's post as an executor saw it. */
typedef struct sched_observed {
    const char *external_id;
    const char *text;
    int64_t publish_ms; /* 0 = unknown */
    const char *external_url;
} sched_observed;

typedef struct sched_reconciled {
    const char *post_id; /* arena */
    lease_reconcile_action action;
    const char *external_id; /* MATCHED */
} sched_reconciled;

/* RECONCILE of every UNCONFIRMED post of the profile (up to
 * SCHED_UNCONFIRMED_MAX, lapsed leases expired first): a post matches an
 * observed post with the same normalised text (its content hash), published
 * no earlier than 5 minutes before the attempt's claim, whose external id
 * is no other post's receipt; each observed post matches at most one.
 * observe_end_ms 0 = now. */
status sched_reconcile_tx(db_conn *db, arena *a, const char *profile_id, const sched_observed *obs,
                          size_t n_obs, int64_t observe_start_ms, int64_t observe_end_ms,
                          sched_reconciled **out, size_t *n);

/* ---- the built-in publisher ---- */

typedef struct sched_target {
    const char *profile_id; /* arena */
    const char *kind;       /* "webhook" or "x_api_v2" */
    const char *url;
    uint8_t *secret; /* arena copy; wipe when done */
    size_t secret_len;
    int timeout_ms;
} sched_target;

/* Profiles with a WEBHOOK or X_API_V2 target that have due posts and may be
 * claimed from (active, no cooldown in force), at most limit. */
status sched_builtin_due_tx(db_conn *db, arena *a, int limit, sched_target **out, size_t *n);

/* ---- reply opportunities ---- */

/* The profile's own replies of the last since_ms (live reply posts with the
 * root and author of the opportunity they answer), for replyopp's cooldowns. */
status sched_own_replies_tx(db_conn *db, arena *a, const char *profile_id, int64_t since_ms,
                            replyopp_reply **out, size_t *n);

/* The profile's topics (or every enabled topic when it has none) with
 * their descriptions. */
status sched_topics_tx(db_conn *db, arena *a, const char *profile_id, replyopp_topic **out,
                       size_t *n);

/* One evaluated target to store. */
typedef struct sched_opp_row {
    const Herald__V1__ReplyTarget *t;
    const char *platform; /* database spelling */
    const char *tier;     /* database spelling */
    int64_t create_ms, observe_ms, expire_ms;
    double velocity, relevance, score;
    bool kept;
} sched_opp_row;

/* Kept rows are inserted or refreshed (counts, scores, expiry) unless the
 * stored observation is newer; a refreshed EXPIRED one is open again (its
 * cooldown ended), DRAFTED and REPLIED stay. Known rows that are no longer
 * kept and still OPEN become EXPIRED. (*ids)[i] (arena) gets row i's
 * opportunity id, "" when it is not kept. */
status sched_opp_upsert_tx(db_conn *db, arena *a, const char *profile_id, const sched_opp_row *rows,
                           size_t n, const char ***ids);

typedef struct sched_opp_filter {
    const char *profile_id;
    const char *state;    /* database spelling; "open" excludes lapsed ones */
    const char *tiers;    /* text[] literal, NULL: any */
    const char *platform; /* NULL: any */
    int limit;
    /* keyset cursor (score DESC, target create DESC, external id ASC) */
    bool has_after;
    double after_score;
    int64_t after_create_us;
    const char *after_external_id;
} sched_opp_filter;

typedef struct sched_opp_page {
    Herald__V1__ReplyOpportunity **items; /* arena */
    size_t n;
    bool more;
    int64_t last_create_us; /* of items[n - 1]'s target */
} sched_opp_page;

status sched_opp_list_tx(db_conn *db, arena *a, const sched_opp_filter *f, sched_opp_page *out);

#endif
