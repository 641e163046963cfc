/* bandit.c - Normal-Gamma arms, pooled priors, Thompson sampling; see
 * bandit.h for the model. */
#include "bandit.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sampling.h"

#define MS_PER_DAY 86400000.0
/* An arm whose discounted n is below this does not inform its siblings'
 * prior (an outcome older than two half-lives). */
#define POOL_MIN_N 0.25
/* Siblings with data needed before tau^2 is estimated rather than taken
 * from bandit_config.default_tau2. */
#define POOL_MIN_ARMS 3
/* Pseudo-observations of default_sigma2 in the pooled noise variance. */
#define POOL_SIGMA_WEIGHT 2.0
/* Propensity rounds that share one draw of each arm's precision. */
#define PROP_BLOCK 4
/* Win probability below which an arm is left out of the propensity rounds
 * (see bandit_recommend). */
#define PRUNE_EPS 1e-4

static const char *const scope_names[] = {
    [BANDIT_SCOPE_CONTENT_TYPE] = "content_type",
    [BANDIT_SCOPE_VOICE_STYLE] = "voice_style",
    [BANDIT_SCOPE_TOPIC] = "topic",
    [BANDIT_SCOPE_HOUR_OF_WEEK] = "hour_of_week",
    [BANDIT_SCOPE_REPLY_TIER] = "reply_tier",
};

const char *bandit_scope_name(bandit_scope s)
{
    if ((int)s < BANDIT_SCOPE_CONTENT_TYPE || (int)s > BANDIT_SCOPE_REPLY_TIER)
        return NULL;
    return scope_names[s];
}

bool bandit_scope_parse(const char *name, bandit_scope *out)
{
    for (int s = BANDIT_SCOPE_CONTENT_TYPE; s <= BANDIT_SCOPE_REPLY_TIER; s++) {
        if (name != NULL && strcmp(name, scope_names[s]) == 0) {
            *out = (bandit_scope)s;
            return true;
        }
    }
    return false;
}

void bandit_config_default(bandit_config *c)
{
    c->half_life_days = 90.0;
    c->interval_level = 0.9;
    c->propensity_draws = 200;
    c->prior_alpha = 2.0;
    c->default_sigma2 = 1.0;
    c->default_tau2 = 0.25;
    c->kappa_min = 0.1;
    c->kappa_max = 10.0;
}

status bandit_config_validate(const bandit_config *c, char *err, size_t errcap)
{
    const char *bad = NULL;
    if (!(c->half_life_days >= 0.0 && c->half_life_days <= 3650.0))
        bad = "half_life_days must be in [0, 3650]";
    else if (!(c->interval_level > 0.0 && c->interval_level < 1.0))
        bad = "interval_level must be in (0, 1)";
    else if (c->propensity_draws < 0 || c->propensity_draws > 100000)
        bad = "propensity_draws must be in [0, 100000]";
    else if (!(c->prior_alpha > 1.0 && c->prior_alpha <= 1000.0))
        bad = "prior_alpha must be in (1, 1000]";
    else if (!(c->default_sigma2 > 0.0 && c->default_sigma2 < 1e6))
        bad = "default_sigma2 must be in (0, 1e6)";
    else if (!(c->default_tau2 > 0.0 && c->default_tau2 < 1e6))
        bad = "default_tau2 must be in (0, 1e6)";
    else if (!(c->kappa_min > 0.0 && c->kappa_min <= c->kappa_max && c->kappa_max <= 1e6))
        bad = "kappa bounds must satisfy 0 < kappa_min <= kappa_max <= 1e6";
    if (bad == NULL)
        return ST_OK;
    if (err != NULL && errcap > 0)
        snprintf(err, errcap, "bandit config: %s", bad);
    return ST_INVALID;
}

double bandit_decay_factor(int64_t dt_ms, const bandit_config *c)
{
    if (dt_ms <= 0 || c->half_life_days <= 0.0)
        return 1.0;
    return exp(-M_LN2 * ((double)dt_ms / MS_PER_DAY) / c->half_life_days);
}

bool bandit_stats_valid(const bandit_stats *s)
{
    if (!isfinite(s->n) || !isfinite(s->sum) || !isfinite(s->sum_sq))
        return false;
    if (s->n < 0.0 || s->sum_sq < 0.0 || s->count < 0)
        return false;
    /* Cauchy-Schwarz: sum^2 <= n * sum_sq for non-negative weights. */
    return s->sum * s->sum <= s->n * s->sum_sq * (1.0 + 1e-9) + 1e-12;
}

void bandit_stats_decay_to(bandit_stats *s, int64_t now_ms, const bandit_config *c)
{
    if (now_ms <= s->updated_ms)
        return;
    double f = bandit_decay_factor(now_ms - s->updated_ms, c);
    s->n *= f;
    s->sum *= f;
    s->sum_sq *= f;
    s->updated_ms = now_ms;
}

void bandit_stats_add(bandit_stats *s, double reward, int64_t at_ms, const bandit_config *c)
{
    assert(isfinite(reward));
    double w = 1.0;
    if (s->count == 0 && s->n == 0.0)
        s->updated_ms = at_ms;
    else if (at_ms >= s->updated_ms)
        bandit_stats_decay_to(s, at_ms, c);
    else
        w = bandit_decay_factor(s->updated_ms - at_ms, c);
    s->n += w;
    s->sum += w * reward;
    s->sum_sq += w * reward * reward;
    s->count++;
}

void bandit_prior_default(const bandit_config *c, bandit_prior *out)
{
    double kappa = c->default_sigma2 / c->default_tau2;
    out->mu0 = 0.0;
    out->kappa0 = fmin(fmax(kappa, c->kappa_min), c->kappa_max);
    out->alpha0 = c->prior_alpha;
    out->beta0 = c->default_sigma2 * (c->prior_alpha - 1.0);
}

void bandit_posterior_compute(const bandit_stats *s, const bandit_prior *p, int64_t now_ms,
                              const bandit_config *c, bandit_posterior *out)
{
    bandit_stats d = *s;
    bandit_stats_decay_to(&d, now_ms, c);

    double n = d.n;
    double kn = p->kappa0 + n;
    double mun = (p->kappa0 * p->mu0 + d.sum) / kn;
    double an = p->alpha0 + 0.5 * n;
    double bn = p->beta0;
    if (n > 0.0) {
        double xbar = d.sum / n;
        double ss = fmax(0.0, d.sum_sq - d.sum * xbar);
        double dev = xbar - p->mu0;
        bn += 0.5 * ss + p->kappa0 * n * dev * dev / (2.0 * kn);
    }
    double scale = sqrt(bn / (an * kn));
    double q = sampling_t_quantile(0.5 * (1.0 + c->interval_level), 2.0 * an);

    out->mean = mun;
    out->lower = mun - q * scale;
    out->upper = mun + q * scale;
    out->level = c->interval_level;
    out->effective_n = n;
    out->n = d.count;
    out->mu_n = mun;
    out->kappa_n = kn;
    out->alpha_n = an;
    out->beta_n = bn;
    out->prior = *p;
}

size_t bandit_arms_exclude(bandit_arm *arms, size_t n, const char *const *keys, size_t nkeys,
                           const char *reason)
{
    size_t marked = 0;
    for (size_t i = 0; i < n; i++) {
        if (arms[i].exclude_reason != NULL)
            continue;
        for (size_t k = 0; k < nkeys; k++) {
            if (keys[k] != NULL && strcmp(arms[i].key, keys[k]) == 0) {
                arms[i].exclude_reason = reason;
                marked++;
                break;
            }
        }
    }
    return marked;
}

/* Per-arm summaries the pooled prior is built from. */
typedef struct arm_summary {
    double n;    /* discounted n */
    double mean; /* sum / n */
    double ss;   /* within-arm sum of squared deviations */
} arm_summary;

/* The prior of arm `skip` from the other arms (skip >= n: from all). */
static void prior_pooled(const arm_summary *a, size_t n, size_t skip, const bandit_config *c,
                         bandit_prior *out)
{
    double ss = 0.0, dof = 0.0, sum_n = 0.0, sum_nm = 0.0;
    size_t k = 0;
    for (size_t j = 0; j < n; j++) {
        if (j == skip || a[j].n < POOL_MIN_N)
            continue;
        ss += a[j].ss;
        dof += fmax(a[j].n - 1.0, 0.0);
        sum_n += a[j].n;
        sum_nm += a[j].n * a[j].mean;
        k++;
    }
    double sigma2 = (ss + POOL_SIGMA_WEIGHT * c->default_sigma2) / (dof + POOL_SIGMA_WEIGHT);
    double tau2 = c->default_tau2;
    double mu0;
    if (k < POOL_MIN_ARMS) {
        /* Too few siblings to estimate the spread between arms: their data
         * pulls the mean away from 0 as much as default_tau2 allows. */
        mu0 = sum_nm / (sum_n + sigma2 / tau2);
    } else {
        /* DerSimonian-Laird: fixed-effect weights n_j / sigma^2, Cochran's
         * Q, then the random-effects mean with weights 1 / (tau^2 +
         * sigma^2 / n_j). */
        double w = 0.0, w2 = 0.0, wm = 0.0;
        for (size_t j = 0; j < n; j++) {
            if (j == skip || a[j].n < POOL_MIN_N)
                continue;
            double wj = a[j].n / sigma2;
            w += wj;
            w2 += wj * wj;
            wm += wj * a[j].mean;
        }
        double mfe = wm / w;
        double q = 0.0;
        for (size_t j = 0; j < n; j++) {
            if (j == skip || a[j].n < POOL_MIN_N)
                continue;
            double dm = a[j].mean - mfe;
            q += a[j].n / sigma2 * dm * dm;
        }
        double denom = w - w2 / w;
        tau2 = denom > 0.0 ? (q - (double)(k - 1)) / denom : 0.0;
        /* Keep kappa0 = sigma^2 / tau^2 within [kappa_min, kappa_max]. */
        tau2 = fmin(fmax(tau2, sigma2 / c->kappa_max), sigma2 / c->kappa_min);
        double rw = 0.0, rwm = 0.0;
        for (size_t j = 0; j < n; j++) {
            if (j == skip || a[j].n < POOL_MIN_N)
                continue;
            double wj = 1.0 / (tau2 + sigma2 / a[j].n);
            rw += wj;
            rwm += wj * a[j].mean;
        }
        mu0 = rwm / rw;
    }
    out->mu0 = mu0;
    out->kappa0 = fmin(fmax(sigma2 / tau2, c->kappa_min), c->kappa_max);
    out->alpha0 = c->prior_alpha;
    out->beta0 = sigma2 * (c->prior_alpha - 1.0);
}

static void summarize(const bandit_arm *arms, size_t n, int64_t now_ms, const bandit_config *c,
                      arm_summary *out)
{
    for (size_t j = 0; j < n; j++) {
        bandit_stats d = arms[j].stats;
        bandit_stats_decay_to(&d, now_ms, c);
        out[j].n = d.n;
        out[j].mean = d.n > 0.0 ? d.sum / d.n : 0.0;
        out[j].ss = d.n > 0.0 ? fmax(0.0, d.sum_sq - d.sum * out[j].mean) : 0.0;
    }
}

void bandit_scope_posteriors(const bandit_arm *arms, size_t n, int64_t now_ms,
                             const bandit_config *c, bandit_posterior *out)
{
    arm_summary sum[BANDIT_MAX_ARMS];
    assert(n <= BANDIT_MAX_ARMS);
    summarize(arms, n, now_ms, c, sum);
    for (size_t i = 0; i < n; i++) {
        bandit_prior p;
        prior_pooled(sum, n, i, c, &p);
        bandit_posterior_compute(&arms[i].stats, &p, now_ms, c, &out[i]);
    }
}

/* What one posterior draw needs: mu = mu_n + Z * sqrt(beta_n / (kappa_n G))
 * with G ~ Gamma(alpha_n), i.e. tau = G / beta_n, mu | tau ~ N(mu_n,
 * 1 / (kappa_n tau)). */
typedef struct draw_prep {
    double mu;
    double sf; /* sqrt(beta_n / kappa_n) */
    sampling_gamma_prep g;
} draw_prep;

static void draw_prepare(draw_prep *d, const bandit_posterior *p)
{
    d->mu = p->mu_n;
    d->sf = sqrt(p->beta_n / p->kappa_n);
    sampling_gamma_prepare(&d->g, p->alpha_n);
}

static double draw_one(sampling_rng *r, const draw_prep *d)
{
    double z = sampling_normal(r);
    double g = sampling_gamma_prepared(r, &d->g);
    return d->mu + z * d->sf / sqrt(g);
}

static status fail(bandit_choice *out, status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static status fail(bandit_choice *out, status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->errmsg, sizeof(out->errmsg), fmt, ap);
    va_end(ap);
    return st;
}

status bandit_recommend(const bandit_dim *dims, size_t n_dims, int64_t now_ms, uint64_t seed,
                        const bandit_config *c, bandit_candidate *cands, size_t cap,
                        bandit_choice *out)
{
    memset(out, 0, sizeof(*out));
    out->seed = seed;
    if (bandit_config_validate(c, out->errmsg, sizeof(out->errmsg)) != ST_OK)
        return ST_INVALID;
    if (n_dims == 0 || n_dims > BANDIT_MAX_DIMS)
        return fail(out, ST_INVALID, "between 1 and %d scopes must be given", BANDIT_MAX_DIMS);

    /* Validate everything before drawing anything. */
    size_t need = 0;
    size_t fixed[BANDIT_MAX_DIMS];
    for (size_t d = 0; d < n_dims; d++) {
        const bandit_dim *dim = &dims[d];
        const char *name = bandit_scope_name(dim->scope);
        if (name == NULL)
            return fail(out, ST_INVALID, "unknown scope %d", (int)dim->scope);
        if (dim->n_arms == 0 || dim->n_arms > BANDIT_MAX_ARMS)
            return fail(out, ST_INVALID, "%s: between 1 and %d arms must be given", name,
                        BANDIT_MAX_ARMS);
        for (size_t i = 0; i < dim->n_arms; i++) {
            if (dim->arms[i].key == NULL || !bandit_stats_valid(&dim->arms[i].stats))
                return fail(out, ST_INVALID, "%s: arm %s has invalid statistics", name,
                            dim->arms[i].key != NULL ? dim->arms[i].key : "(null)");
        }
        fixed[d] = SIZE_MAX;
        if (dim->fixed_key != NULL && dim->fixed_key[0] != '\0') {
            for (size_t i = 0; i < dim->n_arms && fixed[d] == SIZE_MAX; i++) {
                if (strcmp(dim->arms[i].key, dim->fixed_key) == 0)
                    fixed[d] = i;
            }
            if (fixed[d] == SIZE_MAX)
                return fail(out, ST_INVALID, "%s: unknown key %s", name, dim->fixed_key);
            continue;
        }
        size_t eligible = 0;
        for (size_t i = 0; i < dim->n_arms; i++)
            eligible += dim->arms[i].enabled && dim->arms[i].exclude_reason == NULL;
        if (eligible == 0)
            return fail(out, ST_FAILED_PRECONDITION,
                        "%s: no eligible arm (all disabled or excluded)", name);
        need += dim->n_arms;
    }
    if (need > cap)
        return fail(out, ST_INVALID, "candidate array too small (%zu < %zu)", cap, need);

    sampling_rng rng;
    sampling_rng_seed(&rng, seed);
    bandit_posterior post[BANDIT_MAX_ARMS];
    draw_prep prep[BANDIT_MAX_ARMS];
    size_t elig[BANDIT_MAX_ARMS];
    uint32_t wins[BANDIT_MAX_ARMS];
    double scale[BANDIT_MAX_ARMS];
    size_t keep[BANDIT_MAX_ARMS];
    double z[BANDIT_MAX_ARMS];

    out->propensity = 1.0;
    size_t nc = 0;
    for (size_t d = 0; d < n_dims; d++) {
        const bandit_dim *dim = &dims[d];
        if (fixed[d] != SIZE_MAX) {
            out->chosen[d] = fixed[d];
            continue;
        }
        bandit_scope_posteriors(dim->arms, dim->n_arms, now_ms, c, post);

        /* The real draw: one value from every eligible posterior. */
        size_t ne = 0, best = SIZE_MAX;
        double best_v = -INFINITY;
        bandit_candidate *cd = &cands[nc];
        for (size_t i = 0; i < dim->n_arms; i++) {
            const bandit_arm *a = &dim->arms[i];
            bandit_candidate *k = &cd[i];
            memset(k, 0, sizeof(*k));
            k->dim = d;
            k->arm = i;
            k->post = post[i];
            k->eligible = a->enabled && a->exclude_reason == NULL;
            if (!k->eligible) {
                k->excluded_reason = !a->enabled ? "disabled" : a->exclude_reason;
                continue;
            }
            draw_prepare(&prep[ne], &post[i]);
            k->sampled_value = draw_one(&rng, &prep[ne]);
            if (k->sampled_value > best_v) {
                best_v = k->sampled_value;
                best = ne;
            }
            elig[ne] = i;
            wins[ne] = 0;
            ne++;
        }
        wins[best]++;

        /* Arms that cannot win are left out of the propensity rounds: with
         * L the PRUNE_EPS-quantile of a strong arm, P(max of all draws < L)
         * <= PRUNE_EPS, so an arm with P(draw > L) < PRUNE_EPS wins with
         * probability < 2 PRUNE_EPS. Leaving such arms out changes any
         * propensity by at most (1 + pruned) PRUNE_EPS, far below the Monte
         * Carlo error. Their propensity is estimated as 0 (or 1 / rounds if
         * the real draw picked one). */
        size_t lead = 0;
        double lead_lo = -INFINITY;
        for (size_t e = 0; e < ne; e++) {
            const bandit_posterior *p = &post[elig[e]];
            double lo = p->mu_n - 3.0 * sqrt(p->beta_n / (p->alpha_n * p->kappa_n));
            if (lo > lead_lo) {
                lead_lo = lo;
                lead = e;
            }
        }
        const bandit_posterior *lp = &post[elig[lead]];
        double lscale = sqrt(lp->beta_n / (lp->alpha_n * lp->kappa_n));
        double floor_l = lp->mu_n + lscale * sampling_t_quantile(PRUNE_EPS, 2.0 * lp->alpha_n);
        size_t nk = 0;
        for (size_t e = 0; e < ne; e++) {
            const bandit_posterior *p = &post[elig[e]];
            double sc = sqrt(p->beta_n / (p->alpha_n * p->kappa_n));
            double above = 1.0 - sampling_t_cdf((floor_l - p->mu_n) / sc, 2.0 * p->alpha_n);
            if (e == lead || above >= PRUNE_EPS)
                keep[nk++] = e;
        }

        /* Propensities: propensity_draws further rounds of the same draw.
         * An arm's draw is mu + sf * Z / sqrt(G) (G the precision part).
         * To save time G is drawn once per block of PROP_BLOCK rounds and
         * the normals come in antithetic pairs (Z, -Z). Each round is still
         * an exact joint draw from the posteriors (arms independent), so
         * the win frequency is an unbiased estimate; rounds within a block
         * are merely dependent. */
        for (int m = 0; m < c->propensity_draws; m += PROP_BLOCK) {
            for (size_t k = 0; k < nk; k++) {
                const draw_prep *dp = &prep[keep[k]];
                scale[k] = dp->sf / sqrt(sampling_gamma_prepared(&rng, &dp->g));
            }
            int rounds =
                c->propensity_draws - m < PROP_BLOCK ? c->propensity_draws - m : PROP_BLOCK;
            for (int r = 0; r < rounds; r++) {
                size_t w = 0;
                double wv = -INFINITY;
                for (size_t k = 0; k < nk; k++) {
                    if (r % 2 == 0)
                        z[k] = sampling_normal(&rng);
                    double v = prep[keep[k]].mu + scale[k] * (r % 2 == 0 ? z[k] : -z[k]);
                    if (v > wv) {
                        wv = v;
                        w = k;
                    }
                }
                wins[keep[w]]++;
            }
        }
        double rounds = (double)c->propensity_draws + 1.0;
        for (size_t e = 0; e < ne; e++)
            cd[elig[e]].propensity = (double)wins[e] / rounds;

        out->chosen[d] = elig[best];
        cd[elig[best]].chosen = true;
        out->propensity *= cd[elig[best]].propensity;
        nc += dim->n_arms;
    }
    out->n_candidates = nc;
    return ST_OK;
}

void bandit_explain(const bandit_dim *dims, size_t n_dims, const bandit_candidate *cands,
                    const bandit_choice *choice, strbuf *b)
{
    size_t nc = 0;
    for (size_t d = 0; d < n_dims; d++) {
        const bandit_dim *dim = &dims[d];
        const char *name = bandit_scope_name(dim->scope);
        const char *key = dim->arms[choice->chosen[d]].key;
        if (d > 0)
            strbuf_puts(b, "; ");
        bool drawn = dim->fixed_key == NULL || dim->fixed_key[0] == '\0';
        if (!drawn) {
            strbuf_printf(b, "%s %s fixed by request", name != NULL ? name : "?", key);
            continue;
        }
        const bandit_candidate *cd = &cands[nc];
        const bandit_candidate *k = &cd[choice->chosen[d]];
        size_t eligible = 0;
        for (size_t i = 0; i < dim->n_arms; i++)
            eligible += cd[i].eligible;
        strbuf_printf(b,
                      "%s %s drew %.2f (mean %.2f, %.0f%% [%.2f, %.2f], n %lld, p %.2f), best of "
                      "%zu",
                      name != NULL ? name : "?", key, k->sampled_value, k->post.mean,
                      100.0 * k->post.level, k->post.lower, k->post.upper, (long long)k->post.n,
                      k->propensity, eligible);
        if (eligible < dim->n_arms)
            strbuf_printf(b, " (%zu excluded)", dim->n_arms - eligible);
        nc += dim->n_arms;
    }
}
