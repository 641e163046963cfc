/* trends.h - topic trends from mention counts (UpsertTopics, ListTrends).
 *
 * Each observation is a count of mentions over a period ending at a time;
 * its rate is count / period in mentions per hour. Then, with dt the time
 * since the previous observation:
 *
 *   velocity      v += (1 - 2^(-dt / half_life)) (rate - v)        (EWMA)
 *   acceleration  a += (1 - 2^(-dt / accel_half_life)) ((v - v_prev) / dt - a)
 *   growth/day    = 24 a / max(v, min_velocity)
 *   trend score   = growth/day * log2(1 + v)
 *   rising        = a > 0 and growth/day >= max(rising_growth,
 *                                             rising_noise / sqrt(max(v, min_velocity)))
 *
 * The score is a relative growth rate, so a small topic that is taking off
 * outranks a large one that is flat or past its peak; the log factor keeps
 * a handful of stray mentions from outranking a real surge. A rising topic
 * therefore tops the list while its volume is still climbing, before the
 * peak: velocity lags the rate, and acceleration turns negative only after
 * the rate's inflection. A topic with no observation for stale_hours is
 * evaluated as if a zero count had arrived at the evaluation time, so quiet
 * topics fade instead of keeping their last score.
 *
 * Counting noise alone makes a flat topic's growth wander: with hourly
 * Poisson counts its largest |growth/day| over three weeks is about
 * 1.4 / sqrt(v) (0.7 at 3 mentions/hour, 0.07 at 300), hence the noise
 * floor of "rising".
 *
 * Ownership: caller-owned structs. Threads: pure; any thread. */
#ifndef HERALD_TRENDS_H
#define HERALD_TRENDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct trends_config {
    double half_life_hours;       /* velocity EWMA; default 6 */
    double accel_half_life_hours; /* acceleration EWMA; default 6 */
    double min_velocity;          /* mentions/hour floor of the growth's denominator; default 1 */
    double rising_growth;         /* growth/day above which a topic is rising; default 0.1 */
    double rising_noise;          /* noise floor factor of "rising" (see above); default 2 */
    double stale_hours;           /* see above; default 6 */
} trends_config;

void trends_config_default(trends_config *c);
status trends_config_validate(const trends_config *c, char *err, size_t errcap);

/* The running state of one topic. Zero-initialise for a new topic. */
typedef struct trends_state {
    double velocity;     /* mentions per hour (EWMA) */
    double acceleration; /* mentions per hour, per hour (EWMA) */
    int64_t first_ms;    /* first and last observation folded in */
    int64_t last_ms;
    int64_t observations;
    /* The last step, so that a second report of the same period can be
     * merged into it: the state before it and its EWMA weights. */
    double prev_velocity;
    double prev_acceleration;
    double step_alpha;
    double step_beta;
    double step_hours;
} trends_state;

/* Folds one observation (count >= 0 over period_minutes >= 1, ending at
 * at_ms) into s in O(1). Observations must come in time order; one at or
 * before s->last_ms is added to the current rate instead of moving the
 * clock back (two sources reporting the same period). */
void trends_update(trends_state *s, int64_t at_ms, int64_t count, int period_minutes,
                   const trends_config *c);

/* What ListTrends shows for a topic. */
typedef struct trends_result {
    double velocity_per_hour;
    double acceleration_per_hour;
    double growth_per_day;
    double score;
    bool rising;
    int64_t mentions_24h; /* trends_compute only; -1 from trends_evaluate */
    int64_t first_ms;
    int64_t last_ms;
} trends_result;

/* The trend of s as of now_ms (>= s->last_ms; see stale_hours). */
void trends_evaluate(const trends_state *s, int64_t now_ms, const trends_config *c,
                     trends_result *out);

/* One stored observation (topic_observations row). */
typedef struct trends_obs {
    int64_t at_ms;
    int64_t count;
    int period_minutes;
} trends_obs;

/* Folds obs[0..n) (sorted by at_ms) and evaluates at now_ms; also counts
 * the mentions of periods ending in (now - 24 h, now]. ST_INVALID (message
 * in err) for unsorted input, negative counts or periods outside 1-10080. */
status trends_compute(const trends_obs *obs, size_t n, int64_t now_ms, const trends_config *c,
                      trends_result *out, char *err, size_t errcap);

#endif
