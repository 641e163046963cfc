/* bandit.h - arm statistics and Thompson sampling for the learner.
 *
 * Model. Each arm (profile x scope x key) has an unknown expected reward mu
 * and an unknown noise precision; rewards are z-scores under the active
 * reward version (reward.h). The prior is Normal-Gamma, so the posterior is
 * Normal-Gamma too and the posterior of mu is a Student-t. Data enter as
 * discounted sufficient statistics {n, sum, sum_sq}: every outcome has weight
 * 1 when it arrives and loses half of it every half-life. Decay is applied
 * lazily from the time the sums refer to (updated_ms), so an update is O(1)
 * and needs only the arm's own row.
 *
 * Pooling. An arm's prior comes from the other arms of its scope (empirical
 * Bayes, leave-one-out): their pooled within-arm variance sigma^2, the
 * DerSimonian-Laird between-arm variance tau^2 and the random-effects mean
 * mu0. The prior is N(mu0, sigma^2 / kappa0) with kappa0 = sigma^2 / tau^2,
 * so a new arm starts where its siblings are, as uncertain as they differ.
 * Without enough siblings the defaults of bandit_config apply (mu0 = 0, the
 * baseline median of a z-score).
 *
 * Choice. The expected reward of a post is modelled as additive in its
 * scopes (content type + voice style + topic + hour + ...), so the best
 * combination is the best key of each scope and Thompson sampling
 * factorises: bandit_recommend draws once from every eligible arm's
 * posterior in each scope to be chosen and takes each scope's maximum. A
 * key's propensity is the probability that it wins its scope, estimated by
 * Monte Carlo over bandit_config.propensity_draws further rounds of draws
 * plus the real one; the propensity of the combination is the product over
 * the drawn scopes (scopes are drawn independently), and 1 for a scope the
 * caller fixed. Arms whose chance to win is provably below 1e-4 are left
 * out of those further rounds (not of the real draw); that moves any
 * propensity by less than (1 + arms left out) * 1e-4.
 *
 * How a handler uses it. RecordEngagement, in the outcome's transaction:
 * read the post's arm_stats rows (one per scope: content_type, voice_style,
 * topic, hour_of_week), call bandit_stats_add with the outcome's reward
 * and checkpoint time on each, write them back. Recommend: read the
 * profile's arms of the three content scopes and arm_settings, mark
 * recently used topics with bandit_arms_exclude, call bandit_recommend,
 * log the candidates and the propensity (decisions). ListArms/GetInsights:
 * bandit_scope_posteriors. RecomputeOutcomes: zero the arms and fold the
 * re-scored learnable outcomes in checkpoint order. arm_stats has no
 * column for bandit_stats.count (Posterior.n): store one or leave it 0.
 *
 * Ownership: every function works on caller-owned memory; keys are borrowed
 * and never copied. Nothing allocates; bandit_recommend uses about 64 KB
 * of stack.
 * Threads: pure functions; any thread. */
#ifndef HERALD_BANDIT_H
#define HERALD_BANDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "util.h"

/* Values match herald.v1.ArmScope; names match the arm_stats.scope column. */
typedef enum {
    BANDIT_SCOPE_CONTENT_TYPE = 1,
    BANDIT_SCOPE_VOICE_STYLE = 2,
    BANDIT_SCOPE_TOPIC = 3,
    BANDIT_SCOPE_HOUR_OF_WEEK = 4,
    BANDIT_SCOPE_REPLY_TIER = 5,
} bandit_scope;

/* "content_type", "voice_style", "topic", "hour_of_week", "reply_tier";
 * NULL for a value outside the enum. */
const char *bandit_scope_name(bandit_scope s);
/* Parses a name above; false when unknown. */
bool bandit_scope_parse(const char *name, bandit_scope *out);

/* Largest number of arms in one scope bandit_recommend accepts. */
#define BANDIT_MAX_ARMS 256
/* Largest number of scopes one bandit_recommend call chooses in. */
#define BANDIT_MAX_DIMS 5

/* Discounted sufficient statistics of one arm: one arm_stats row
 * (n, sum_reward, sum_sq, updated_at). Zero-initialise for a new arm. */
typedef struct bandit_stats {
    double n;           /* effective number of outcomes after discounting, >= 0 */
    double sum;         /* discounted sum of rewards */
    double sum_sq;      /* discounted sum of squared rewards, >= 0 */
    int64_t count;      /* outcomes folded in, not discounted */
    int64_t updated_ms; /* epoch ms the sums refer to; 0 while empty */
} bandit_stats;

typedef struct bandit_config {
    /* Half-life of an outcome's weight, days; 0 disables discounting.
     * Default 90: at 4 posts a day that keeps about 520 effective outcomes
     * for all arms together. In tests/sim a 30-day half-life (about 170)
     * reached only 88 % of the content oracle, 60 days 91.6 %, 90 days
     * 93.7 % (means over 10 synthetic audiences). */
    double half_life_days;
    /* Mass of the credible intervals, in (0, 1). Default 0.9. */
    double interval_level;
    /* Monte Carlo rounds for propensities, besides the real draw, 0 to
     * 100,000. Default 200: a propensity p is then within about
     * 2 * sqrt(p (1 - p) / 201) (<= 0.07) of the exact value (measured
     * against 300,000 independent rounds in test_bandit). The estimate is
     * (wins + [chosen by the real draw]) / 201, never 0 for the choice. */
    int propensity_draws;
    /* Shape alpha0 of the prior on the noise precision, > 1 (the pooled
     * noise variance counts as 2 * (alpha0 - 1) pseudo-observations).
     * Default 2. */
    double prior_alpha;
    /* Noise variance of a reward and variance between arms of a scope used
     * while a scope has too little data to estimate them (< 3 other arms
     * with data). Defaults 1 (a z-score) and 0.25. */
    double default_sigma2;
    double default_tau2;
    /* kappa0 = sigma^2 / tau^2 is clamped to [kappa_min, kappa_max] so that
     * the pooled prior never weighs less than kappa_min or more than
     * kappa_max outcomes. Defaults 0.1 and 10. */
    double kappa_min;
    double kappa_max;
} bandit_config;

void bandit_config_default(bandit_config *c);
/* ST_INVALID with a message in err (errcap bytes) for an out-of-range
 * value. */
status bandit_config_validate(const bandit_config *c, char *err, size_t errcap);

/* The weight an outcome keeps after dt_ms milliseconds (1 for dt <= 0 or
 * without discounting). */
double bandit_decay_factor(int64_t dt_ms, const bandit_config *c);

/* True when s could have been produced by these functions (finite, n >= 0,
 * sum_sq >= 0, sum^2 <= n * sum_sq within rounding, count >= 0); use it on
 * rows read back from the database. */
bool bandit_stats_valid(const bandit_stats *s);

/* Moves the sums forward to now_ms, discounting them; a no-op when now_ms is
 * not after updated_ms. */
void bandit_stats_decay_to(bandit_stats *s, int64_t now_ms, const bandit_config *c);

/* Folds one learnable outcome (reward, finite) observed at at_ms into s in
 * O(1). An outcome older than s->updated_ms (a late checkpoint) enters with
 * the weight it would have today instead of moving the clock back, so the
 * order in which outcomes arrive does not matter. */
void bandit_stats_add(bandit_stats *s, double reward, int64_t at_ms, const bandit_config *c);

/* A Normal-Gamma prior. */
typedef struct bandit_prior {
    double mu0;    /* prior mean of the expected reward */
    double kappa0; /* its weight, in outcomes */
    double alpha0; /* shape of the precision's Gamma prior */
    double beta0;  /* rate of the precision's Gamma prior */
} bandit_prior;

/* The posterior of one arm. */
typedef struct bandit_posterior {
    double mean;  /* posterior mean of the expected reward */
    double lower; /* equal-tailed credible interval of the mean */
    double upper;
    double level;       /* its mass (bandit_config.interval_level) */
    double effective_n; /* discounted n at now_ms */
    int64_t n;          /* raw outcome count */
    /* Normal-Gamma parameters: mu | tau ~ N(mu_n, 1 / (kappa_n tau)),
     * tau ~ Gamma(alpha_n, rate beta_n); mu ~ t(2 alpha_n) with location
     * mu_n and scale sqrt(beta_n / (alpha_n kappa_n)). */
    double mu_n;
    double kappa_n;
    double alpha_n;
    double beta_n;
    bandit_prior prior; /* the prior it was computed from */
} bandit_posterior;

/* The default prior (no pooling). */
void bandit_prior_default(const bandit_config *c, bandit_prior *out);

/* The posterior of an arm with statistics s under prior p, discounted to
 * now_ms, with its credible interval. */
void bandit_posterior_compute(const bandit_stats *s, const bandit_prior *p, int64_t now_ms,
                              const bandit_config *c, bandit_posterior *out);

/* One input arm of a scope. */
typedef struct bandit_arm {
    const char *key;            /* borrowed; unique within its scope */
    bandit_stats stats;         /* as stored (decay is applied internally) */
    bool enabled;               /* false: disabled by an operator (SetArmEnabled) */
    const char *exclude_reason; /* non-NULL: not eligible this time, e.g.
                                 * "topic used in the last 24 h"; borrowed */
} bandit_arm;

/* Sets exclude_reason = reason on every arm whose key is in keys[0..nkeys)
 * (and that has none yet). Returns how many arms it marked. */
size_t bandit_arms_exclude(bandit_arm *arms, size_t n, const char *const *keys, size_t nkeys,
                           const char *reason);

/* The posteriors of all n arms of one scope, each with the leave-one-out
 * pooled prior from the others (disabled and excluded arms are data too).
 * out has n entries. O(n^2) flops; n <= BANDIT_MAX_ARMS. */
void bandit_scope_posteriors(const bandit_arm *arms, size_t n, int64_t now_ms,
                             const bandit_config *c, bandit_posterior *out);

/* One scope to choose a key in. */
typedef struct bandit_dim {
    bandit_scope scope;
    const bandit_arm *arms; /* borrowed, n_arms of them (1 to BANDIT_MAX_ARMS) */
    size_t n_arms;
    /* Non-NULL and non-empty: the caller fixes this scope to this key (it
     * must be one of the arms; it is used even when disabled or excluded,
     * as an explicit request). The scope is then not drawn, has no
     * candidates and propensity 1. */
    const char *fixed_key;
} bandit_dim;

/* One arm of a drawn scope, as bandit_recommend saw it. */
typedef struct bandit_candidate {
    size_t dim; /* index into the dims given */
    size_t arm; /* index into that dim's arms */
    bandit_posterior post;
    bool eligible;
    const char *excluded_reason; /* NULL when eligible: "disabled" or the
                                  * arm's exclude_reason (borrowed) */
    double sampled_value;        /* the Thompson draw; eligible arms only */
    bool chosen;
    double propensity; /* P(this key wins its scope), Monte Carlo; 0 when not eligible */
} bandit_candidate;

typedef struct bandit_choice {
    size_t chosen[BANDIT_MAX_DIMS]; /* arm index chosen in each dim */
    double propensity;              /* product of the chosen keys' propensities */
    size_t n_candidates;            /* candidates written */
    uint64_t seed;
    char errmsg[160]; /* why, when the call did not return ST_OK */
} bandit_choice;

/* Thompson sampling over dims[0..n_dims) at now_ms with the given seed (the
 * same inputs and seed give the same choice and propensities). Writes one
 * candidate per arm of every drawn dim into cands (cap entries, in dim then
 * arm order) and the choice into *out.
 * ST_INVALID: no dims or more than BANDIT_MAX_DIMS, a dim with no arms or
 * more than BANDIT_MAX_ARMS, a fixed key that is not an arm, cap too small,
 * invalid statistics or config. ST_FAILED_PRECONDITION: a drawn dim has no
 * eligible arm (all disabled or excluded). out->errmsg says which. */
status bandit_recommend(const bandit_dim *dims, size_t n_dims, int64_t now_ms, uint64_t seed,
                        const bandit_config *c, bandit_candidate *cands, size_t cap,
                        bandit_choice *out);

/* Appends a one-line explanation of a choice for people to b, e.g.
 * "content_type myth_busting drew 0.91 (mean 0.40, 90% [0.10, 0.70], n 12),
 * best of 6; voice_style storyteller fixed; topic sleep drew ..., best of 8
 * (3 excluded)". */
void bandit_explain(const bandit_dim *dims, size_t n_dims, const bandit_candidate *cands,
                    const bandit_choice *choice, strbuf *b);

#endif
