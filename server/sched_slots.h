/* sched_slots.h - the slot side of scheduling, shared by SchedulingService
 * (GetNextSlots, SchedulePost) and ContentService (GenerateBatch with
 * schedule = true), so both choose and check publish times the same way:
 *   - a profile's policy context (policy.h) over the posts that count;
 *   - the slot model's inputs (the hour-of-week arms through besttimes, or
 *     slots.h's prior over the audience's zones);
 *   - "next best" (slots_next_best) with its timing decision logged;
 *   - lease.h's verdict on SCHEDULE for a post.
 *
 * Transactions: the _tx functions run inside the caller's open transaction
 * (sched_store.h). Memory: everything is allocated in the arena given.
 * Threads: no state; a db_conn belongs to one thread. */
#ifndef HERALD_SCHED_SLOTS_H
#define HERALD_SCHED_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "db.h"
#include "lease.h"
#include "policy.h"
#include "sched_store.h"
#include "slots.h"
#include "status.h"

/* Posts this long before the first possible slot still count for the
 * policy checks (a gap or a rolling hour reaching back). */
#define SCHED_SLOTS_HISTORY_DAYS 2

/* The policy context of a profile for posts of one kind. */
typedef struct sched_slots_ctx {
    sched_profile prof;
    sched_instants inst;
    policy pol; /* sched_slots_policy_for_kind */
    policy_ctx ctx;
} sched_slots_ctx;

/* The policy that applies to a post of this kind: replies are held to the
 * reply quotas instead of the post quotas and gap. */
void sched_slots_policy_for_kind(const policy *in, bool reply, policy *out);

/* The rule's name as SchedulePost reports it (reply quotas for replies). */
const char *sched_slots_rule_name(policy_rule r, bool reply);
/* Its ErrorInfo reason: "POLICY_" and the name in upper case. */
void sched_slots_rule_reason(policy_rule r, bool reply, char *buf, size_t cap);

/* Loads the profile (lock: FOR NO KEY UPDATE, which serializes every
 * scheduling writer of the profile), its policy and cooldown, and the
 * instants of its other posts from SCHED_SLOTS_HISTORY_DAYS before
 * min(from_ms, now) on, leaving out exclude_post_id (may be NULL).
 * ST_NOT_FOUND when the profile does not exist. */
status sched_slots_ctx_load_tx(db_conn *db, arena *a, const char *profile_id, bool lock,
                               const char *exclude_post_id, int64_t from_ms, bool reply,
                               sched_slots_ctx *c);

/* Counts one more post at t_s in c (a slot just taken), so that later
 * checks and choices keep every rule with it too. */
void sched_slots_ctx_add(sched_slots_ctx *c, arena *a, int64_t t_s);

/* The profile's hour-of-week model (has_model false when it has no usable
 * hour_of_week history) and the audience as slots.h wants it. */
typedef struct sched_slots_inputs {
    slots_model model;
    bool has_model;
    slots_audience audience[SLOTS_MAX_AUDIENCE];
    size_t n_audience;
} sched_slots_inputs;

/* half_life_days: the learner's (config learning.half_life_days; 0 = no
 * discounting); < 0 keeps bandit_config_default's. */
status sched_slots_inputs_load_tx(db_conn *db, arena *a, const sched_profile *pr,
                                  double half_life_days, sched_slots_inputs *in);

void sched_slots_req_init(slots_request *r, const sched_slots_ctx *c, const sched_slots_inputs *in,
                          int64_t after_s, size_t count, uint64_t seed);

/* SchedulePost's "next best": the single best slot from max(after_ms, now)
 * on (slots_next_best over c and in) and the probability that the draw
 * picks it. ST_NOT_FOUND when the policy leaves no slot within
 * SLOTS_DEFAULT_HORIZON_DAYS; ST_INTERNAL when the model cannot be
 * evaluated. Pure. */
status sched_slots_next_best(const sched_slots_ctx *c, const sched_slots_inputs *in,
                             int64_t after_ms, uint64_t seed, slots_slot *out, double *propensity);

/* Logs the timing decision of a next-best slot (sched_decision_insert_tx)
 * and returns its id (arena) for sched_post_schedule_tx. */
status sched_slots_decision_tx(db_conn *db, arena *a, const sched_slots_ctx *c, const slots_slot *s,
                               uint64_t seed, double propensity, const char **decision_id);

/* lease.h's SCHEDULE for a post in meta's state at schedule_ms: ST_OK, or
 * ST_FAILED_PRECONDITION (or ST_INTERNAL for a broken row) with lease.h's
 * sentence in *why (static storage). */
status sched_slots_may_schedule(const sched_post_meta *meta, int64_t now_ms, int64_t schedule_ms,
                                const char **why);

#endif
