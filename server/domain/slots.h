/* slots.h - choosing publish times (GetNextSlots, SchedulePost "next best").
 *
 * Candidates. Every quarter hour (SLOTS_GRANULARITY_S = 900 s, aligned to
 * UTC, which is also the local quarter hour in every zone in use today:
 * offsets are whole quarter hours) from after_s rounded up, over a horizon
 * of whole days: first 1 day; if fewer than count slots fit the policy
 * there, 2 days, and so on up to max_horizon_days (default 14). So "the N
 * best upcoming slots" are the best ones of the shortest horizon that holds
 * N, not the best of a far week.
 *
 * Scores. Each candidate falls in a cell of the profile's local hour of week
 * (0 = Monday 00h). With a model (the learner's besttimes output: mean and
 * credible interval per cell, already pooled toward the prior) a cell's
 * posterior is taken as Normal(mean, sd) with sd = (upper - lower) /
 * (2 z(level)). Without one (no usable history) the hour-of-day prior below
 * is used, evaluated in each audience time zone at the candidate instant and
 * averaged by audience share (the profile's own zone when no audience is
 * given), with sd SLOTS_PRIOR_SD.
 * Thompson sampling: one standard normal draw per cell, eps[h], from the
 * seeded PRNG (sampling.h); a candidate's score is mean + sd * eps[cell].
 * Ties (the quarter hours of one cell) are broken by a seeded uniform per
 * candidate. The same request and seed always give the same slots.
 *
 * Selection. Greedy by score: a candidate is taken when policy_check passes
 * against the other posts plus the slots taken so far, so the returned slots
 * keep every rule among themselves too (gap, rolling hour, local day, quiet
 * hours, cooldown). Slots are returned in time order.
 *
 * The hour-of-day prior (rewards are z-scores against the account's own
 * baseline, 0 = baseline; see bandit.h): a night trough (-0.60 at 03h), a
 * morning rise to +0.15 at 08-09h, a lunch bump (+0.20 at 12h), and the
 * evening peak (+0.30 at 19-20h); slots_prior_hour() has the table. It is a
 * typical consumer social-media curve, deliberately mild (|z| <= 0.6) so a
 * few weeks of the account's own history outweigh it.
 *
 * Threads: pure functions of their inputs; any thread. Nothing allocated is
 * kept. */
#ifndef HERALD_SLOTS_H
#define HERALD_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "status.h"
#include "tz.h"

#define SLOTS_HOURS_PER_WEEK 168
#define SLOTS_GRANULARITY_S 900
#define SLOTS_MAX 50
#define SLOTS_DEFAULT_COUNT 5
#define SLOTS_MAX_HORIZON_DAYS 28
#define SLOTS_DEFAULT_HORIZON_DAYS 14
#define SLOTS_PRIOR_SD 0.15
#define SLOTS_PRIOR_LEVEL 0.9
#define SLOTS_MAX_AUDIENCE 32
#define SLOTS_PROPENSITY_DRAWS 63

/* Values match herald.v1.SlotBasis. */
typedef enum slots_basis {
    SLOTS_BASIS_PRIOR = 1,
    SLOTS_BASIS_POOLED = 2,
    SLOTS_BASIS_HISTORY = 3, /* history_weight >= 0.9 */
} slots_basis;

/* The hour-of-week model, cells in the profile's local hour of week. */
typedef struct slots_model {
    double mean[SLOTS_HOURS_PER_WEEK];  /* posterior mean reward */
    double lower[SLOTS_HOURS_PER_WEEK]; /* credible interval, lower <= upper */
    double upper[SLOTS_HOURS_PER_WEEK];
    double level;                                /* of the interval, in (0, 1), e.g. 0.9 */
    double history_weight[SLOTS_HOURS_PER_WEEK]; /* own history vs prior, [0, 1] */
    double posts[SLOTS_HOURS_PER_WEEK];          /* (discounted) posts behind each cell */
} slots_model;

typedef struct slots_audience {
    const tz_zone *zone;
    double share; /* >= 0; shares are normalised */
} slots_audience;

typedef struct slots_request {
    const policy_ctx *ctx;          /* policy, profile zone, cooldown, other posts */
    const slots_model *model;       /* NULL: no history, use the hour-of-day prior */
    const slots_audience *audience; /* prior only; may be NULL */
    size_t n_audience;              /* 0-SLOTS_MAX_AUDIENCE */
    int64_t after_s;                /* first possible start (rounded up to 900 s) */
    size_t count;                   /* 1-SLOTS_MAX */
    uint64_t seed;
    int max_horizon_days; /* 0 = SLOTS_DEFAULT_HORIZON_DAYS; at most SLOTS_MAX_HORIZON_DAYS */
} slots_request;

typedef struct slots_slot {
    int64_t start_s;
    int hour_of_week;           /* profile-local, 0-167 */
    double expected_reward;     /* posterior mean */
    double lower, upper, level; /* credible interval */
    double draw;                /* the Thompson score it was ranked by */
    slots_basis basis;
    double history_weight;
    char reason[160];
} slots_slot;

/* The prior's mean reward at a local hour of day (0-23). */
double slots_prior_hour(int hour);

/* Fills out[count] with the best slots in time order; *n_out (< count when
 * the policy leaves fewer within the horizon, possibly 0) says how many.
 * ST_INVALID for a request out of range (NULL ctx/policy, count, after_s,
 * non-finite model values, lower > upper, level, audience). */
status slots_next(const slots_request *req, slots_slot *out, size_t *n_out);

/* SchedulePost's "next best": the single best slot (req->count is ignored)
 * and the probability, estimated over SLOTS_PROPENSITY_DRAWS further seeds
 * plus this one, that the Thompson draw picks that same slot (> 0, for the
 * decision log). ST_NOT_FOUND when the policy allows no slot within the
 * horizon. */
status slots_next_best(const slots_request *req, slots_slot *out, double *propensity);

/* Slot ids for SchedulePost: "slot-<start unix seconds>". format writes at
 * most cap bytes (32 suffice); parse returns false for anything else. The
 * handler re-checks a parsed slot with policy_check. */
void slots_id_format(int64_t start_s, char *buf, size_t cap);
bool slots_id_parse(const char *id, int64_t *start_s);

#endif
