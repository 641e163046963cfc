/* reward.h - the one versioned reward the learner optimises.
 *
 * A post's outcome is computed once, at its checkpoint (by default 24 h
 * after publishing), from the latest engagement observation at or before
 * it. Reward version "v1":
 *
 *   engagement rate = (likes + replies + reposts + quotes) / impressions
 *   follows per 1k  = 1000 * follows / impressions
 *   z_e = (engagement rate - median) / scale, over the profile's baseline
 *   z_f = the same for follows per 1k
 *   reward = clip(0.7 z_e + 0.3 z_f, -5, 5)   (z_e alone without follows)
 *
 * The baseline is the profile's own trailing window (30 days before the
 * checkpoint): the engagement rates (and follows per 1k) of its earlier
 * outcomes that have one. scale = max(1.4826 MAD, 10% of the median, an
 * absolute floor), so a window of identical values cannot divide by zero;
 * the floors are part of the version.
 *
 * Metrics. v1 counts the four public interactions every platform with
 * impressions reports. Bookmarks are private on most platforms and often
 * unavailable; profile visits and link clicks are not engagement with the
 * post's content (and reward clickbait), so v1 leaves them out. A missing
 * metric is unknown, never 0: if impressions or any counted metric is
 * unknown, the engagement rate is unknown and the outcome is recorded but
 * not learnable. Unknown follows drop the follows term (the weights are
 * renormalised), they never count as zero follows.
 *
 * Learnable. An outcome feeds the arms only when impressions >=
 * reward_options.min_impressions (default 100), every counted metric is
 * known, and the baseline holds >= min_baseline (default 5) engagement
 * rates. Only outcomes with impressions >= min_impressions get a rate at
 * all, so "engagement_rate IS NOT NULL" is exactly the set of outcomes a
 * later baseline may use, learnable or not (the first posts of a profile
 * build the baseline before anything is learnt).
 *
 * Version "v2" ("conversation-weighted") exists so that outcomes can be
 * re-scored (RecomputeOutcomes): likes + 2 replies + 2 reposts + 2 quotes +
 * bookmarks (bookmarks required), weights 0.6 / 0.4.
 *
 * Ownership: versions are static and immutable; everything else is
 * caller-owned. Threads: pure functions; any thread. */
#ifndef HERALD_REWARD_H
#define HERALD_REWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* The counts of herald.v1.EngagementObservation. */
typedef enum {
    REWARD_IMPRESSIONS = 0,
    REWARD_LIKES,
    REWARD_REPLIES,
    REWARD_REPOSTS,
    REWARD_QUOTES,
    REWARD_BOOKMARKS,
    REWARD_PROFILE_VISITS,
    REWARD_LINK_CLICKS,
    REWARD_FOLLOWS,
    REWARD_METRIC_COUNT
} reward_metric;

/* Column name ("impressions", "likes", ...); NULL out of range. */
const char *reward_metric_name(reward_metric m);

/* Cumulative counts of one post at one instant. Zero-initialise: every
 * metric starts unknown. */
typedef struct reward_counts {
    int64_t value[REWARD_METRIC_COUNT];
    uint32_t known; /* bit m set: value[m] was observed */
} reward_counts;

/* Marks m as observed with value v (>= 0). */
void reward_counts_set(reward_counts *c, reward_metric m, int64_t v);
/* True and *v when m is known. */
bool reward_counts_get(const reward_counts *c, reward_metric m, int64_t *v);

typedef struct reward_version {
    const char *name;        /* "v1" */
    const char *description; /* one line for reward_versions.description */
    /* Weight of each metric in the engagement count; 0 = not counted.
     * Impressions and follows are never engagement. */
    double weight[REWARD_METRIC_COUNT];
    double w_engagement; /* combination weights of z_e and z_f */
    double w_follows;
    double eng_abs_floor; /* scale floors: absolute (in the rate's unit) */
    double fol_abs_floor;
    double rel_floor; /* and relative to |median| */
    double clip;      /* |reward| <= clip */
} reward_version;

/* The version "v1", the default. */
const reward_version *reward_version_default(void);
/* NULL for an unknown name. */
const reward_version *reward_version_find(const char *name);
size_t reward_version_count(void);
const reward_version *reward_version_at(size_t i);

typedef struct reward_options {
    int64_t min_impressions; /* >= 1; default 100 */
    int baseline_days;       /* 1 to 365; default 30 */
    size_t min_baseline;     /* >= 1; default 5 */
} reward_options;

void reward_options_default(reward_options *o);
status reward_options_validate(const reward_options *o, char *err, size_t errcap);

/* Median, median absolute deviation and the z-score scale of a baseline. */
typedef struct reward_baseline {
    size_t n;
    double median;
    double mad;
    double scale; /* max(1.4826 mad, rel_floor |median|, abs_floor) */
} reward_baseline;

/* Median and MAD of v[0..n) (n may be 0: then everything is 0). The array
 * is not modified. */
void reward_baseline_compute(const double *v, size_t n, double rel_floor, double abs_floor,
                             reward_baseline *out);

/* One outcome: the columns of the outcomes table. */
typedef struct reward_outcome {
    bool has_engagement_rate;
    double engagement_rate; /* weighted engagements / impressions */
    bool has_follows_per_1k;
    double follows_per_1k;
    bool has_reward;
    double reward;
    bool has_baseline;
    double baseline;     /* median engagement rate of the baseline used */
    size_t baseline_n;   /* engagement rates in that baseline */
    double z_engagement; /* valid with has_reward */
    bool has_z_follows;
    double z_follows;
    bool learnable;
    char reason[128]; /* why not learnable; "" when learnable */
} reward_outcome;

/* Scores one post. c: its counts at the checkpoint. eng_hist[0..n_eng):
 * the engagement rates under the same version of the profile's outcomes
 * with a checkpoint in [checkpoint - baseline_days, checkpoint) that have
 * one; fol_hist[0..n_fol) the same for follows per 1k. Never fails: what
 * is missing makes the outcome not learnable, with the reason. */
void reward_score(const reward_version *v, const reward_options *o, const reward_counts *c,
                  const double *eng_hist, size_t n_eng, const double *fol_hist, size_t n_fol,
                  reward_outcome *out);

/* One post of a profile's history for reward_recompute. */
typedef struct reward_post {
    int64_t checkpoint_ms;
    reward_counts counts;
} reward_post;

/* Re-scores a profile's whole history under v (RecomputeOutcomes): posts
 * sorted by checkpoint_ms (ties allowed); out[i] is posts[i]'s outcome with
 * the baseline of the posts before it in the trailing window, exactly as
 * reward_score would have computed it online. O(n * window) time and O(n)
 * scratch memory. ST_INVALID (message in err) when posts are out of order
 * or the options are invalid. */
status reward_recompute(const reward_version *v, const reward_options *o, const reward_post *posts,
                        size_t n, reward_outcome *out, char *err, size_t errcap);

#endif
