/* sampling.c - xoshiro256** and exact draws; see sampling.h. */
#include "sampling.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <pthread.h>

/* Rejection loops below accept with probability >= 0.5 per round (>= 0.95
 * for Marsaglia-Tsang), so 1000 rounds are never reached in practice; the
 * cap only keeps every loop bounded. */
#define SAMPLING_MAX_ROUNDS 1000

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Ziggurat (Marsaglia and Tsang 2000) with 128 layers of equal area V
 * under f(x) = exp(-x^2 / 2); R is where the base layer's tail starts. The
 * method is exact: rectangles are accepted outright, wedges by comparing
 * with f, and the tail beyond R is drawn by Marsaglia's exponential
 * rejection. zig_x[i] is the right edge of layer i (zig_x[0] the virtual
 * width V / f(R) of the base layer), zig_f[i] = f(zig_x[i]). Built once
 * by sampling_rng_seed (pthread_once); read-only afterwards. */
#define ZIG_N 128
#define ZIG_R 3.442619855899
#define ZIG_V 9.91256303526217e-3

static double zig_x[ZIG_N + 1];
static double zig_f[ZIG_N + 1];
static pthread_once_t zig_once = PTHREAD_ONCE_INIT;

static void zig_build(void)
{
    double f = exp(-0.5 * ZIG_R * ZIG_R);
    zig_x[0] = ZIG_V / f;
    zig_f[0] = 0.0;
    zig_x[1] = ZIG_R;
    zig_f[1] = f;
    for (int i = 1; i < ZIG_N - 1; i++) {
        double y = zig_f[i] + ZIG_V / zig_x[i];
        zig_x[i + 1] = y < 1.0 ? sqrt(-2.0 * log(y)) : 0.0;
        zig_f[i + 1] = y < 1.0 ? y : 1.0;
    }
    zig_x[ZIG_N] = 0.0;
    zig_f[ZIG_N] = 1.0;
}

void sampling_rng_seed(sampling_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    /* splitmix64 never yields four zero words from one seed, but keep the
     * all-zero state (a fixed point of xoshiro) impossible anyway. */
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
        r->s[0] = 1;
    pthread_once(&zig_once, zig_build);
}

uint64_t sampling_u64(sampling_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double sampling_uniform(sampling_rng *r)
{
    return (double)(sampling_u64(r) >> 11) * 0x1.0p-53;
}

double sampling_uniform_pos(sampling_rng *r)
{
    return ((double)(sampling_u64(r) >> 11) + 0.5) * 0x1.0p-53;
}

uint64_t sampling_below(sampling_rng *r, uint64_t n)
{
    assert(n > 0);
    /* Reject the first (2^64 mod n) values so every residue is equally
     * likely. */
    uint64_t threshold = (0 - n) % n;
    uint64_t x = sampling_u64(r);
    for (int i = 0; i < SAMPLING_MAX_ROUNDS && x < threshold; i++)
        x = sampling_u64(r);
    return x % n;
}

double sampling_normal(sampling_rng *r)
{
    for (int round = 0; round < SAMPLING_MAX_ROUNDS; round++) {
        uint64_t b = sampling_u64(r);
        int i = (int)(b & (ZIG_N - 1));
        bool neg = (b >> 7) & 1;
        double x = (double)(b >> 11) * 0x1.0p-53 * zig_x[i];
        if (x < zig_x[i + 1])
            return neg ? -x : x;
        if (i == 0) {
            double a, y;
            int j = 0;
            do {
                a = -log(sampling_uniform_pos(r)) / ZIG_R;
                y = -log(sampling_uniform_pos(r));
            } while (y + y < a * a && ++j < SAMPLING_MAX_ROUNDS);
            return neg ? -(ZIG_R + a) : ZIG_R + a;
        }
        double y = zig_f[i] + sampling_uniform(r) * (zig_f[i + 1] - zig_f[i]);
        if (y < exp(-0.5 * x * x))
            return neg ? -x : x;
    }
    return 0.0; /* unreachable in practice (acceptance is about 0.99) */
}

/* Marsaglia-Tsang for shape >= 1, constants d = shape - 1/3 and
 * c = 1 / sqrt(9 d) given. */
static double gamma_mt_dc(sampling_rng *r, double d, double c)
{
    for (int i = 0; i < SAMPLING_MAX_ROUNDS; i++) {
        double x, v;
        int j = 0;
        do {
            x = sampling_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0.0 && ++j < SAMPLING_MAX_ROUNDS);
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = sampling_uniform_pos(r);
        double x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2)
            return d * v;
        if (log(u) < 0.5 * x2 + d * (1.0 - v + log(v)))
            return d * v;
    }
    return d; /* unreachable in practice: a central value keeps callers finite */
}

static double gamma_mt(sampling_rng *r, double shape)
{
    double d = shape - 1.0 / 3.0;
    return gamma_mt_dc(r, d, 1.0 / sqrt(9.0 * d));
}

/* ln of a Gamma(shape) draw; exact for every shape > 0 and free of
 * underflow when shape is tiny (the draw itself may be below DBL_MIN). */
static double gamma_log(sampling_rng *r, double shape)
{
    if (shape >= 1.0)
        return log(gamma_mt(r, shape));
    /* Gamma(a) = Gamma(a + 1) * U^(1/a) */
    return log(gamma_mt(r, shape + 1.0)) + log(sampling_uniform_pos(r)) / shape;
}

double sampling_gamma(sampling_rng *r, double shape)
{
    assert(shape > 0.0 && isfinite(shape));
    if (shape >= 1.0)
        return gamma_mt(r, shape);
    return exp(gamma_log(r, shape));
}

void sampling_gamma_prepare(sampling_gamma_prep *g, double shape)
{
    assert(shape > 0.0 && isfinite(shape));
    g->shape = shape;
    g->d = (shape >= 1.0 ? shape : shape + 1.0) - 1.0 / 3.0;
    g->c = 1.0 / sqrt(9.0 * g->d);
}

double sampling_gamma_prepared(sampling_rng *r, const sampling_gamma_prep *g)
{
    double x = gamma_mt_dc(r, g->d, g->c);
    if (g->shape >= 1.0)
        return x;
    return exp(log(x) + log(sampling_uniform_pos(r)) / g->shape);
}

double sampling_beta(sampling_rng *r, double a, double b)
{
    assert(a > 0.0 && b > 0.0);
    if (a >= 1.0 && b >= 1.0) {
        double x = gamma_mt(r, a);
        double y = gamma_mt(r, b);
        return x / (x + y);
    }
    /* X / (X + Y) = 1 / (1 + exp(ln Y - ln X)), safe when both underflow. */
    double lx = gamma_log(r, a);
    double ly = gamma_log(r, b);
    return 1.0 / (1.0 + exp(ly - lx));
}

double sampling_student_t(sampling_rng *r, double nu)
{
    assert(nu > 0.0);
    double z = sampling_normal(r);
    /* V = 2 G with G ~ Gamma(nu / 2); T = Z / sqrt(V / nu). */
    if (nu >= 2.0)
        return z / sqrt(2.0 * gamma_mt(r, 0.5 * nu) / nu);
    double lg = gamma_log(r, 0.5 * nu);
    return z * exp(-0.5 * (M_LN2 + lg - log(nu)));
}

/* ---- special functions ---- */

double sampling_lgamma(double x)
{
    int sign;
    return lgamma_r(x, &sign);
}

/* Continued fraction of I_x(a, b) (modified Lentz), valid and fast for
 * x < (a + 1) / (a + b + 2). */
static double incbeta_cf(double x, double a, double b)
{
    const double tiny = 1e-300;
    double f = 1.0, c = 1.0, d = 0.0;
    for (int i = 0; i <= 2000; i++) {
        int m = i / 2;
        double num;
        if (i == 0)
            num = 1.0;
        else if (i % 2 == 0)
            num = (m * (b - m) * x) / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        else
            num = -((a + m) * (a + b + m) * x) / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 + num * d;
        if (fabs(d) < tiny)
            d = tiny;
        d = 1.0 / d;
        c = 1.0 + num / c;
        if (fabs(c) < tiny)
            c = tiny;
        double cd = c * d;
        f *= cd;
        if (fabs(1.0 - cd) < 1e-14)
            break;
    }
    double lfront = sampling_lgamma(a + b) - sampling_lgamma(a) - sampling_lgamma(b) + a * log(x) +
                    b * log1p(-x);
    return exp(lfront) / a * (f - 1.0);
}

double sampling_incbeta(double x, double a, double b)
{
    assert(a > 0.0 && b > 0.0);
    if (!(x > 0.0))
        return 0.0;
    if (!(x < 1.0))
        return 1.0;
    if (x < (a + 1.0) / (a + b + 2.0))
        return incbeta_cf(x, a, b);
    return 1.0 - incbeta_cf(1.0 - x, b, a);
}

double sampling_normal_cdf(double x)
{
    return 0.5 * erfc(-x * M_SQRT1_2);
}

double sampling_normal_quantile(double p)
{
    if (!(p > 0.0))
        return -INFINITY;
    if (!(p < 1.0))
        return INFINITY;
    /* Start from the rational approximation of Abramowitz and Stegun
     * 26.2.23 (error < 4.5e-4), then polish with Halley steps on erfc. */
    double q = p < 0.5 ? p : 1.0 - p;
    double t = sqrt(-2.0 * log(q));
    double x = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) /
                       (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
    if (p < 0.5)
        x = -x;
    for (int i = 0; i < 4; i++) {
        double e = sampling_normal_cdf(x) - p;
        double u = e * sqrt(2.0 * M_PI) * exp(0.5 * x * x);
        if (!isfinite(u))
            break;
        double nx = x - u / (1.0 + 0.5 * x * u);
        if (!isfinite(nx))
            break;
        x = nx;
    }
    return x;
}

/* Beyond this many degrees of freedom the t distribution equals the normal
 * to double precision for our purposes (difference < 1e-8). */
#define T_NORMAL_NU 1e8

double sampling_t_cdf(double x, double nu)
{
    assert(nu > 0.0);
    if (isnan(x))
        return x;
    if (nu > T_NORMAL_NU)
        return sampling_normal_cdf(x);
    if (isinf(x))
        return x > 0 ? 1.0 : 0.0;
    double x2 = x * x;
    /* P(|T| > |x|) = I_{nu / (nu + x^2)}(nu / 2, 1 / 2) */
    double tail;
    if (x2 < nu) /* compute from the small side to avoid cancellation */
        tail = 1.0 - sampling_incbeta(x2 / (nu + x2), 0.5, 0.5 * nu);
    else
        tail = sampling_incbeta(nu / (nu + x2), 0.5 * nu, 0.5);
    return x > 0 ? 1.0 - 0.5 * tail : 0.5 * tail;
}

double sampling_t_pdf(double x, double nu)
{
    assert(nu > 0.0);
    if (nu > T_NORMAL_NU)
        return exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
    double l = sampling_lgamma(0.5 * (nu + 1.0)) - sampling_lgamma(0.5 * nu) -
               0.5 * log(nu * M_PI) - 0.5 * (nu + 1.0) * log1p(x * x / nu);
    return exp(l);
}

double sampling_t_quantile(double p, double nu)
{
    assert(nu > 0.0);
    if (!(p > 0.0))
        return -INFINITY;
    if (!(p < 1.0))
        return INFINITY;
    if (p == 0.5)
        return 0.0;
    if (p < 0.5)
        return -sampling_t_quantile(1.0 - p, nu);
    if (nu > T_NORMAL_NU)
        return sampling_normal_quantile(p);
    if (nu == 1.0)
        return tan(M_PI * (p - 0.5));
    if (nu == 2.0)
        return (2.0 * p - 1.0) / sqrt(2.0 * p * (1.0 - p));

    /* Start from the Cornish-Fisher expansion in 1/nu around the normal
     * quantile (Abramowitz and Stegun 26.7.5; relative error in x below
     * 1e-11 for nu >= 1000 and p within 1e-6 of 0 or 1, ~1e-4 at nu = 4),
     * which is the answer for nu >= 1000; otherwise Newton
     * on the exact CDF, inside a bracket that bisection keeps valid.
     * Newton converges quadratically from there: once a step is below 1e-7
     * of x, the next one would be below double precision. */
    double z = sampling_normal_quantile(p);
    double z2 = z * z;
    double g1 = (z2 + 1.0) * z / 4.0;
    double g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
    double g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
    double g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0;
    double inv = 1.0 / nu;
    double x = z + inv * (g1 + inv * (g2 + inv * (g3 + inv * g4)));
    if (nu >= 1000.0 && isfinite(x))
        return x;
    if (!(x > 0.0) || !isfinite(x))
        x = z > 0 ? z : 1.0;

    /* ln of the density's constant, once. */
    double lc =
        sampling_lgamma(0.5 * (nu + 1.0)) - sampling_lgamma(0.5 * nu) - 0.5 * log(nu * M_PI);
    /* [lo, hi] brackets the root (hi infinite until a CDF value above p is
     * seen); a Newton step that leaves it is replaced by bisection, or by
     * doubling while there is no upper bound. */
    double lo = 0.0, hi = INFINITY;
    for (int i = 0; i < 300; i++) {
        double f = sampling_t_cdf(x, nu) - p;
        if (f == 0.0)
            break;
        if (f < 0.0)
            lo = x;
        else
            hi = x;
        double pdf = exp(lc - 0.5 * (nu + 1.0) * log1p(x * x / nu));
        double nx = x - f / pdf;
        bool newton = nx > lo && nx < hi;
        if (!newton)
            nx = isinf(hi) ? 2.0 * x : 0.5 * (lo + hi);
        double step = fabs(nx - x);
        x = nx;
        if (newton ? step <= 1e-7 * fabs(x) : step <= 1e-15 * fabs(x))
            break;
    }
    return x;
}
