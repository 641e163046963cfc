/* learnsim.h - a synthetic audience for closed-loop tests of the learner
 * (tests/sim). Nothing in the server calls it: simulated rows never feed
 * real learning (DESIGN.md section 5). It lives in the domain library so
 * that the in-process simulation and the later one through the RPCs share
 * one audience model.
 *
 * The audience has a hidden expected engagement rate for every content
 * type x voice style x hour of week:
 *
 *   rate = base_rate * f_ct * f_vs * f_hour * i[ct][vs][hour of day]
 *
 *   f_ct, f_vs  exp(N(0, spread^2)) per key (drawn once from the seed)
 *   f_hour      (0.5 + 0.7 activity) * exp(N(0, hour_quirk_sd^2) per hour of
 *               day): the audience's waking hours (besttimes_activity at the
 *               audience's UTC offset) with quirks a learner must discover
 *   i           small interactions, exp(N(0, interaction_sd^2))
 *
 * A post's counts: impressions log-normal around median_impressions; the
 * post's own quality multiplies the rate by exp(N(0, post_noise_sd^2));
 * likes, replies, reposts, quotes and bookmarks are Poisson with fixed
 * shares of the engagements; follows are Poisson with a mean proportional
 * to the post's rate. Poisson draws use inversion below a mean of 30 and a
 * rounded normal above (an approximation that is immaterial here).
 *
 * Ownership: a plain caller-owned struct. Threads: pure functions; the rng
 * passed in is the only state that changes. */
#ifndef HERALD_LEARNSIM_H
#define HERALD_LEARNSIM_H

#include <stddef.h>
#include <stdint.h>

#include "reward.h"
#include "sampling.h"

#define LEARNSIM_MAX_KEYS 16

typedef struct learnsim_config {
    size_t n_content_types;      /* 1 to LEARNSIM_MAX_KEYS */
    size_t n_voice_styles;       /* 1 to LEARNSIM_MAX_KEYS */
    int audience_offset_minutes; /* the audience's zone relative to the
                                  * profile's hours of week */
    double base_rate;            /* default 0.03 */
    double ct_spread;            /* default 0.25 */
    double vs_spread;            /* default 0.2 */
    double hour_quirk_sd;        /* default 0.15 */
    double interaction_sd;       /* default 0.05 */
    double post_noise_sd;        /* default 0.3 */
    double median_impressions;   /* default 1200 */
    double impressions_sd;       /* log scale; default 0.8 */
    double follows_per_1k;       /* at base_rate; default 0.4 */
    uint64_t seed;               /* draws the hidden factors */
} learnsim_config;

void learnsim_config_default(learnsim_config *c);

typedef struct learnsim_audience {
    learnsim_config cfg;
    double f_ct[LEARNSIM_MAX_KEYS];
    double f_vs[LEARNSIM_MAX_KEYS];
    double f_hour[168];
    double inter[LEARNSIM_MAX_KEYS][LEARNSIM_MAX_KEYS][24];
} learnsim_audience;

/* Draws the hidden audience from c (ct/vs counts are clamped to 1..16). */
void learnsim_audience_init(learnsim_audience *a, const learnsim_config *c);

/* The hidden expected engagement rate of (ct, vs) posted at hour of week
 * how (0..167). */
double learnsim_rate(const learnsim_audience *a, size_t ct, size_t vs, int how);

/* The best (ct, vs) at hour how and its rate (the oracle). */
double learnsim_best(const learnsim_audience *a, int how, size_t *ct, size_t *vs);

/* The mean rate of a uniformly random (ct, vs) at hour how. */
double learnsim_mean(const learnsim_audience *a, int how);

/* One post's counts at its checkpoint; every metric known. */
void learnsim_observe(const learnsim_audience *a, size_t ct, size_t vs, int how, sampling_rng *r,
                      reward_counts *out);

#endif
