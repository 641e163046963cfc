/* test_sampling.c - the PRNG, the exact samplers and the special functions.
 *
 * Moment checks draw N values with a fixed seed and accept a deviation of
 * at most 5 standard errors (a correct sampler fails one such check with
 * probability < 1e-6 for a random seed; with the fixed seed the outcome is
 * deterministic). Distribution shapes are checked with a Kolmogorov-Smirnov
 * statistic against the CDF below the 0.1 % critical value 1.95 / sqrt(N).
 * Loops are bounded by N. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sampling.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define N 200000
#define Z_TOL 5.0

static double buf[N];

typedef struct moments {
    double mean, var, skew, kurt; /* kurt: excess */
} moments;

static moments moments_of(const double *x, size_t n)
{
    moments m = { 0 };
    for (size_t i = 0; i < n; i++)
        m.mean += x[i];
    m.mean /= (double)n;
    double m2 = 0, m3 = 0, m4 = 0;
    for (size_t i = 0; i < n; i++) {
        double d = x[i] - m.mean;
        m2 += d * d;
        m3 += d * d * d;
        m4 += d * d * d * d;
    }
    m2 /= (double)n;
    m3 /= (double)n;
    m4 /= (double)n;
    m.var = m2 * (double)n / (double)(n - 1);
    m.skew = m3 / pow(m2, 1.5);
    m.kurt = m4 / (m2 * m2) - 3.0;
    return m;
}

/* |mean - mu| within Z_TOL standard errors of a distribution with variance
 * var; |sample variance - var| within Z_TOL standard errors given the
 * central fourth moment mu4. */
static void check_mean_var(const double *x, size_t n, double mu, double var, double mu4)
{
    moments m = moments_of(x, n);
    double se_mean = sqrt(var / (double)n);
    double se_var = sqrt((mu4 - var * var) / (double)n);
    if (fabs(m.mean - mu) > Z_TOL * se_mean || fabs(m.var - var) > Z_TOL * se_var)
        printf("mean %.6f (want %.6f, se %.2g) var %.6f (want %.6f, se %.2g)\n", m.mean, mu,
               se_mean, m.var, var, se_var);
    assert_true(fabs(m.mean - mu) <= Z_TOL * se_mean);
    assert_true(fabs(m.var - var) <= Z_TOL * se_var);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef double (*cdf_fn)(double x, const double *params);

/* Kolmogorov-Smirnov statistic of x[0..n) (sorted in place) against cdf. */
static double ks_stat(double *x, size_t n, cdf_fn cdf, const double *params)
{
    qsort(x, n, sizeof(double), cmp_double);
    double d = 0.0;
    for (size_t i = 0; i < n; i++) {
        double f = cdf(x[i], params);
        double lo = f - (double)i / (double)n;
        double hi = (double)(i + 1) / (double)n - f;
        d = fmax(d, fmax(lo, hi));
    }
    return d;
}

static void check_ks(double *x, size_t n, cdf_fn cdf, const double *params)
{
    double d = ks_stat(x, n, cdf, params);
    double crit = 1.95 / sqrt((double)n);
    if (d >= crit)
        printf("KS D = %.5f >= %.5f\n", d, crit);
    assert_true(d < crit);
}

static double cdf_normal(double x, const double *p)
{
    (void)p;
    return sampling_normal_cdf(x);
}

static double cdf_t(double x, const double *p)
{
    return sampling_t_cdf(x, p[0]);
}

static double cdf_beta(double x, const double *p)
{
    return sampling_incbeta(x, p[0], p[1]);
}

/* CDF of Gamma(k, 1) for k = 1 or 2. */
static double cdf_gamma12(double x, const double *p)
{
    return p[0] == 1.0 ? 1.0 - exp(-x) : 1.0 - exp(-x) * (1.0 + x);
}

static double cdf_uniform(double x, const double *p)
{
    (void)p;
    return x;
}

static void rng_is_deterministic(void **state)
{
    (void)state;
    sampling_rng a, b, c;
    sampling_rng_seed(&a, 12345);
    sampling_rng_seed(&b, 12345);
    sampling_rng_seed(&c, 12346);
    int same_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = sampling_u64(&a);
        assert_true(x == sampling_u64(&b));
        same_c += x == sampling_u64(&c);
    }
    assert_int_equal(same_c, 0);
    /* seed 0 works too (splitmix64 expansion) and is not stuck */
    sampling_rng z;
    sampling_rng_seed(&z, 0);
    uint64_t first = sampling_u64(&z);
    int changed = 0;
    for (int i = 0; i < 10; i++)
        changed += sampling_u64(&z) != first;
    assert_true(changed >= 9);
}

static void uniform_and_below(void **state)
{
    (void)state;
    sampling_rng r;
    sampling_rng_seed(&r, 1);
    for (size_t i = 0; i < N; i++) {
        buf[i] = sampling_uniform(&r);
        assert_true(buf[i] >= 0.0 && buf[i] < 1.0);
        double p = sampling_uniform_pos(&r);
        assert_true(p > 0.0 && p < 1.0);
    }
    check_mean_var(buf, N, 0.5, 1.0 / 12.0, 1.0 / 80.0);
    check_ks(buf, N, cdf_uniform, NULL);

    /* sampling_below: every residue, equally often (chi-square, 9 dof,
     * 0.1 % critical value 27.88) */
    enum { K = 10 };
    long count[K] = { 0 };
    for (size_t i = 0; i < N; i++) {
        uint64_t v = sampling_below(&r, K);
        assert_true(v < K);
        count[v]++;
    }
    double chi2 = 0.0, expect = (double)N / K;
    for (int k = 0; k < K; k++)
        chi2 += ((double)count[k] - expect) * ((double)count[k] - expect) / expect;
    assert_true(chi2 < 27.88);
    assert_int_equal(sampling_below(&r, 1), 0);
}

static void normal_moments_and_shape(void **state)
{
    (void)state;
    sampling_rng r;
    sampling_rng_seed(&r, 2);
    for (size_t i = 0; i < N; i++)
        buf[i] = sampling_normal(&r);
    check_mean_var(buf, N, 0.0, 1.0, 3.0);
    moments m = moments_of(buf, N);
    /* skewness se sqrt(6/N), excess kurtosis se sqrt(24/N) */
    assert_true(fabs(m.skew) < Z_TOL * sqrt(6.0 / N));
    assert_true(fabs(m.kurt) < Z_TOL * sqrt(24.0 / N));
    check_ks(buf, N, cdf_normal, NULL);
    /* the tail beyond the ziggurat's base (|x| > 3.44) is drawn at the
     * right rate: P(|Z| > 3.442619855899) = 5.76e-4 */
    size_t tail = 0;
    for (size_t i = 0; i < N; i++)
        tail += fabs(buf[i]) > 3.442619855899;
    double p = 2.0 * (1.0 - sampling_normal_cdf(3.442619855899));
    assert_true(fabs((double)tail - N * p) < Z_TOL * sqrt(N * p));
}

static void gamma_moments(void **state)
{
    (void)state;
    const double shapes[] = { 0.3, 1.0, 2.5, 10.0, 150.0 };
    sampling_rng r;
    sampling_rng_seed(&r, 3);
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        double k = shapes[s];
        for (size_t i = 0; i < N; i++) {
            buf[i] = sampling_gamma(&r, k);
            assert_true(buf[i] >= 0.0 && isfinite(buf[i]));
        }
        /* Gamma(k, 1): mean k, variance k, central 4th moment 3k(k + 2) */
        check_mean_var(buf, N, k, k, 3.0 * k * (k + 2.0));
    }
    /* shapes with a closed-form CDF: Gamma(1) = Exp(1), Gamma(2) */
    const double one[1] = { 1.0 }, two[1] = { 2.0 };
    for (size_t i = 0; i < N; i++)
        buf[i] = sampling_gamma(&r, 1.0);
    check_ks(buf, N, cdf_gamma12, one);
    for (size_t i = 0; i < N; i++)
        buf[i] = sampling_gamma(&r, 2.0);
    check_ks(buf, N, cdf_gamma12, two);
    /* the prepared form is the same stream as the plain one */
    sampling_rng a, b;
    sampling_rng_seed(&a, 99);
    sampling_rng_seed(&b, 99);
    for (int i = 0; i < 1000; i++) {
        double k = i % 2 ? 0.7 : 4.2;
        sampling_gamma_prep g;
        sampling_gamma_prepare(&g, k);
        assert_true(sampling_gamma(&a, k) == sampling_gamma_prepared(&b, &g));
    }
}

static void beta_moments_and_shape(void **state)
{
    (void)state;
    const double ab[][2] = { { 2.0, 5.0 }, { 0.5, 0.5 }, { 0.05, 0.05 }, { 30.0, 3.0 } };
    sampling_rng r;
    sampling_rng_seed(&r, 4);
    for (size_t s = 0; s < sizeof(ab) / sizeof(ab[0]); s++) {
        double a = ab[s][0], b = ab[s][1];
        for (size_t i = 0; i < N; i++) {
            buf[i] = sampling_beta(&r, a, b);
            assert_true(buf[i] >= 0.0 && buf[i] <= 1.0);
        }
        double mu = a / (a + b);
        double var = a * b / ((a + b) * (a + b) * (a + b + 1.0));
        /* central 4th moment from the excess kurtosis of Beta(a, b) */
        double kurt = 6.0 * ((a - b) * (a - b) * (a + b + 1.0) - a * b * (a + b + 2.0)) /
                      (a * b * (a + b + 2.0) * (a + b + 3.0));
        double mu4 = (kurt + 3.0) * var * var;
        check_mean_var(buf, N, mu, var, mu4);
        if (a >= 0.5)
            check_ks(buf, N, cdf_beta, ab[s]);
    }
}

static void student_t_moments_and_shape(void **state)
{
    (void)state;
    sampling_rng r;
    sampling_rng_seed(&r, 5);
    /* nu = 9: variance nu / (nu - 2), 4th moment 3 nu^2 / ((nu - 2)(nu - 4)) */
    double nu = 9.0;
    for (size_t i = 0; i < N; i++)
        buf[i] = sampling_student_t(&r, nu);
    check_mean_var(buf, N, 0.0, nu / (nu - 2.0), 3.0 * nu * nu / ((nu - 2.0) * (nu - 4.0)));
    const double params[][1] = { { 9.0 }, { 3.0 }, { 1.5 }, { 0.8 }, { 40.0 } };
    for (size_t s = 0; s < sizeof(params) / sizeof(params[0]); s++) {
        for (size_t i = 0; i < N; i++)
            buf[i] = sampling_student_t(&r, params[s][0]);
        check_ks(buf, N, cdf_t, params[s]);
    }
}

static void special_functions(void **state)
{
    (void)state;
    for (double x = 0.1; x < 200.0; x *= 1.7)
        assert_true(fabs(sampling_lgamma(x) - lgamma(x)) < 1e-12 * fmax(1.0, fabs(lgamma(x))));
    /* closed forms of the incomplete beta */
    for (double x = 0.0; x <= 1.0; x += 0.05) {
        assert_true(fabs(sampling_incbeta(x, 1.0, 1.0) - x) < 1e-12);
        assert_true(fabs(sampling_incbeta(x, 3.0, 1.0) - x * x * x) < 1e-12);
        assert_true(fabs(sampling_incbeta(x, 2.5, 4.0) + sampling_incbeta(1.0 - x, 4.0, 2.5) -
                         1.0) < 1e-12);
    }
    assert_true(fabs(sampling_incbeta(0.5, 7.3, 7.3) - 0.5) < 1e-12);
    /* normal CDF and quantile */
    assert_true(fabs(sampling_normal_quantile(0.975) - 1.959963984540054) < 1e-12);
    assert_true(fabs(sampling_normal_quantile(0.5)) < 1e-15);
    for (double p = 1e-10; p < 1.0; p = p < 0.5 ? p * 10.0 : 1.0 - (1.0 - p) / 10.0) {
        double x = sampling_normal_quantile(p);
        assert_true(fabs(sampling_normal_cdf(x) - p) < 1e-12 * fmax(1.0, p / (1.0 - p)));
        if (p > 1.0 - 1e-9)
            break;
    }
    /* t: closed forms for nu = 1 and nu = 2, known quantiles */
    for (double x = -20.0; x <= 20.0; x += 0.37) {
        assert_true(fabs(sampling_t_cdf(x, 1.0) - (0.5 + atan(x) / M_PI)) < 1e-12);
        assert_true(fabs(sampling_t_cdf(x, 2.0) - (0.5 + x / (2.0 * sqrt(2.0 + x * x)))) < 1e-12);
    }
    assert_true(fabs(sampling_t_quantile(0.975, 10.0) - 2.228138851986273) < 1e-9);
    assert_true(fabs(sampling_t_quantile(0.95, 4.0) - 2.131846786326649) < 1e-9);
    assert_true(fabs(sampling_t_quantile(0.995, 30.0) - 2.749995653567) < 1e-8);
    assert_true(fabs(sampling_t_quantile(0.05, 4.0) + 2.131846786326649) < 1e-9);
    /* quantile inverts the CDF over a wide grid of p and nu */
    for (double nu = 0.7; nu < 5000.0; nu *= 1.9) {
        for (double p = 1e-6; p < 1.0; p += p < 0.5 ? p : (1.0 - p) / 2.0) {
            double x = sampling_t_quantile(p, nu);
            double back = sampling_t_cdf(x, nu);
            assert_true(fabs(back - p) < 1e-8 * fmin(p, 1.0 - p) + 1e-14);
            if (1.0 - p < 2e-6)
                break;
        }
    }
    /* density integrates to the CDF difference (Simpson, 2000 panels) */
    double a = -1.3, b = 2.1, h = (b - a) / 2000.0, sum = 0.0;
    for (int i = 0; i <= 2000; i++) {
        double w = (i == 0 || i == 2000) ? 1.0 : (i % 2 ? 4.0 : 2.0);
        sum += w * sampling_t_pdf(a + i * h, 3.5);
    }
    assert_true(fabs(sum * h / 3.0 - (sampling_t_cdf(b, 3.5) - sampling_t_cdf(a, 3.5))) < 1e-10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rng_is_deterministic),     cmocka_unit_test(uniform_and_below),
        cmocka_unit_test(normal_moments_and_shape), cmocka_unit_test(gamma_moments),
        cmocka_unit_test(beta_moments_and_shape),   cmocka_unit_test(student_t_moments_and_shape),
        cmocka_unit_test(special_functions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
