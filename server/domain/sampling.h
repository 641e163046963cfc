/* sampling.h - a seedable PRNG and exact draws from the distributions the
 * learner needs (Normal, Gamma, Beta, Student-t), plus the special functions
 * behind their CDFs and quantiles (credible intervals).
 *
 * The generator is xoshiro256** (Blackman and Vigna), seeded by expanding
 * one 64-bit seed with splitmix64, so one seed reproduces a whole sequence on
 * every platform. No other PRNG exists in server/domain/ yet; other modules
 * should use this one rather than write a second.
 *
 * Draws are exact methods, not approximations: Normal by the ziggurat
 * method (Marsaglia and Tsang 2000, 128 layers), Gamma by Marsaglia and Tsang (2000) with the
 * U^(1/a) boost for shape < 1, Beta as G1 / (G1 + G2), Student-t as Z / sqrt(V / nu) with V ~
 * chi-square(nu) = 2 Gamma(nu / 2).
 *
 * Threads: a sampling_rng belongs to one thread at a time (it is plain
 * state, no locking). Every other function is pure and may be called from
 * any thread. Nothing here allocates. */
#ifndef HERALD_SAMPLING_H
#define HERALD_SAMPLING_H

#include <stdbool.h>
#include <stdint.h>

typedef struct sampling_rng {
    uint64_t s[4];
} sampling_rng;

/* Seeds r from one 64-bit value (any value, 0 included). An rng must be
 * seeded before any draw (this also builds the normal sampler's tables). */
void sampling_rng_seed(sampling_rng *r, uint64_t seed);

/* The next 64 random bits. */
uint64_t sampling_u64(sampling_rng *r);

/* Uniform on [0, 1) with 53 random bits. */
double sampling_uniform(sampling_rng *r);

/* Uniform on (0, 1): never exactly 0 (safe under log). */
double sampling_uniform_pos(sampling_rng *r);

/* Uniform integer in [0, n); n > 0. Unbiased (rejection). */
uint64_t sampling_below(sampling_rng *r, uint64_t n);

/* Standard normal N(0, 1). */
double sampling_normal(sampling_rng *r);

/* Gamma(shape, scale 1); shape > 0 (asserted). Divide by a rate for
 * Gamma(shape, rate). */
double sampling_gamma(sampling_rng *r, double shape);

/* Gamma draws with a fixed shape, for loops that draw many times from the
 * same distribution: the Marsaglia-Tsang constants are computed once.
 * Exactly the same distribution (and the same stream of values from the
 * same rng state) as sampling_gamma(r, shape). */
typedef struct sampling_gamma_prep {
    double shape;
    double d; /* shape (+ 1 when boosted) - 1/3 */
    double c; /* 1 / sqrt(9 d) */
} sampling_gamma_prep;

void sampling_gamma_prepare(sampling_gamma_prep *g, double shape); /* shape > 0 */
double sampling_gamma_prepared(sampling_rng *r, const sampling_gamma_prep *g);

/* Beta(a, b); a, b > 0. */
double sampling_beta(sampling_rng *r, double a, double b);

/* Student-t with nu > 0 degrees of freedom (location 0, scale 1). */
double sampling_student_t(sampling_rng *r, double nu);

/* ---- special functions (pure) ---- */

/* ln Gamma(x) for x > 0 (thread-safe: never touches signgam). */
double sampling_lgamma(double x);

/* Regularised incomplete beta I_x(a, b), x in [0, 1], a, b > 0; relative
 * accuracy about 1e-12. */
double sampling_incbeta(double x, double a, double b);

/* Standard normal CDF and its inverse (p in (0, 1); 0 and 1 give -/+inf). */
double sampling_normal_cdf(double x);
double sampling_normal_quantile(double p);

/* Student-t CDF, density and inverse CDF with nu > 0 degrees of freedom.
 * The quantile is accurate to about 1e-9 (Newton on the exact CDF). */
double sampling_t_cdf(double x, double nu);
double sampling_t_pdf(double x, double nu);
double sampling_t_quantile(double p, double nu);

#endif
