/* besttimes.h - the 168-cell hour-of-week heatmap of expected reward
 * (GetBestTimes; the scheduler's slot scores).
 *
 * Input: the profile's hour_of_week arm statistics (keys "0".."167" in the
 * profile's time zone, 0 = Monday 00:00-00:59), discounted like every arm
 * (bandit.h), and the audience's time-zone distribution as {UTC offset in
 * minutes, weight} pairs. The caller converts IANA zones to offsets at the
 * time of interest, so this module stays pure.
 *
 * Model (normal, three levels, deterministic):
 *   audience  a_c in [0, 1]: the audience-weighted activity at cell c's
 *             local time in each audience zone (a fixed diurnal curve of
 *             social-media use, weekday and weekend; besttimes_activity).
 *   prior     p_c = g + audience_gain * (a_c - mean a): the profile's
 *             overall mean reward g (shrunk to 0), tilted toward hours when
 *             the audience is awake.
 *   hour      the 7 cells of one hour of day share a deviation d_h from
 *             their priors, estimated from those cells' outcomes with
 *             kappa_hod pseudo-outcomes at 0.
 *   (kappa_hod and kappa_cell are estimated from the data by default,
 *   see besttimes_config.)
 *   cell      mean_c = (kappa_cell (p_c + d_h) + sum_c) / (kappa_cell + n_c):
 *             the cell's own outcomes, pooled toward its hour of day.
 * Variance: sigma^2 / (kappa_cell + n_c) + (kappa_cell / (kappa_cell +
 * n_c))^2 sigma^2 / (n_h + kappa_hod), sigma^2 the pooled within-cell
 * variance; intervals are normal. With no data the map ranks hours by
 * audience activity; with data the profile's own history takes over.
 *
 * Ownership: caller-owned structs. Threads: pure; any thread. */
#ifndef HERALD_BESTTIMES_H
#define HERALD_BESTTIMES_H

#include <stdbool.h>
#include <stddef.h>

#include "bandit.h"
#include "sampling.h"
#include "status.h"

#define BESTTIMES_CELLS 168

/* One audience time zone: its UTC offset (minutes east of UTC, -720 to
 * 840) and its relative weight (> 0). */
typedef struct besttimes_zone {
    int offset_minutes;
    double weight;
} besttimes_zone;

typedef struct besttimes_config {
    /* Pseudo-outcomes of the hour-of-day prior per cell (default 3) and of
     * the audience prior per hour of day (default 6). With estimate_kappa
     * (default true) both are estimated from the data instead (method of
     * moments for the variance between cells of one hour of day, and
     * between hours of day; kappa = sigma^2 / tau^2 within [1, 100]); the
     * values here are then only the fallback while there is too little
     * data (fewer than 3 hours of day with data). */
    double kappa_cell;
    double kappa_hod;
    bool estimate_kappa;
    double audience_gain;  /* reward (z) per unit of audience activity; default 0.5 */
    double default_sigma2; /* reward variance without data; default 1 */
    double interval_level; /* mass of the intervals; default 0.9 */
} besttimes_config;

void besttimes_config_default(besttimes_config *c);

typedef struct besttimes_cell {
    double expected_reward; /* posterior mean */
    double sd;              /* its posterior standard deviation */
    double lower;           /* credible interval at the map's level */
    double upper;
    double effective_n;     /* discounted outcomes in this cell */
    double history_weight;  /* n / (n + kappa_cell), in [0, 1] */
    double audience_weight; /* a_c, in [0, 1] */
} besttimes_cell;

typedef struct besttimes_map {
    besttimes_cell cells[BESTTIMES_CELLS]; /* by hour of week */
    int ranked[BESTTIMES_CELLS];           /* hours of week, best expected reward first
                                            * (ties: lower hour first) */
    double level;                          /* interval mass */
    double sigma2;                         /* pooled within-cell variance used */
    double kappa_cell;                     /* pooling strengths used */
    double kappa_hod;
} besttimes_map;

/* Audience activity in [0, 1] at a local time: day 0 = Monday .. 6 =
 * Sunday, minute 0..1439 (linear between the hourly points of the curve). */
double besttimes_activity(int day, int minute);

/* The heatmap. stats: 168 hour_of_week arms (index = hour of week; empty
 * ones zero-initialised). profile_offset_minutes: the offset of the
 * profile's own zone (the one hours of week are counted in). zones: the
 * audience (nzones 0 means "all in the profile's zone"), at most 100.
 * ST_INVALID with a message in err for offsets outside [-720, 840],
 * weights <= 0 or not finite, invalid statistics or config. */
status besttimes_compute(const bandit_stats *stats, int64_t now_ms, const bandit_config *bc,
                         int profile_offset_minutes, const besttimes_zone *zones, size_t nzones,
                         const besttimes_config *cfg, besttimes_map *out, char *err, size_t errcap);

/* Copies the per-cell expected rewards / interval bounds into 168-entry
 * arrays (for the scheduler's slot scoring). Any pointer may be NULL. */
void besttimes_arrays(const besttimes_map *m, double *expected, double *lower, double *upper);

/* One Thompson draw for cell how (0..167) from its normal posterior. */
double besttimes_draw(const besttimes_map *m, int how, sampling_rng *r);

/* Hour of week (0..167) of epoch ms t in a zone with the given offset. */
int besttimes_hour_of_week(int64_t t_ms, int offset_minutes);

#endif
