/* learnsim.c - synthetic audience; see learnsim.h. */
#include "learnsim.h"

#include <math.h>
#include <string.h>

#include "besttimes.h"

/* Shares of the engagements by kind (sum 1); bookmarks on top, not part of
 * v1's count. */
#define SHARE_LIKES 0.72
#define SHARE_REPLIES 0.10
#define SHARE_REPOSTS 0.12
#define SHARE_QUOTES 0.06
#define SHARE_BOOKMARKS 0.08

void learnsim_config_default(learnsim_config *c)
{
    memset(c, 0, sizeof(*c));
    c->n_content_types = 6;
    c->n_voice_styles = 6;
    c->audience_offset_minutes = 0;
    c->base_rate = 0.03;
    c->ct_spread = 0.25;
    c->vs_spread = 0.2;
    c->hour_quirk_sd = 0.15;
    c->interaction_sd = 0.05;
    c->post_noise_sd = 0.3;
    c->median_impressions = 1200.0;
    c->impressions_sd = 0.8;
    c->follows_per_1k = 0.4;
    c->seed = 1;
}

static size_t clamp_keys(size_t n)
{
    return n < 1 ? 1 : n > LEARNSIM_MAX_KEYS ? LEARNSIM_MAX_KEYS : n;
}

void learnsim_audience_init(learnsim_audience *a, const learnsim_config *c)
{
    memset(a, 0, sizeof(*a));
    a->cfg = *c;
    a->cfg.n_content_types = clamp_keys(c->n_content_types);
    a->cfg.n_voice_styles = clamp_keys(c->n_voice_styles);
    sampling_rng r;
    sampling_rng_seed(&r, c->seed);
    for (size_t i = 0; i < LEARNSIM_MAX_KEYS; i++) {
        a->f_ct[i] = exp(c->ct_spread * sampling_normal(&r));
        a->f_vs[i] = exp(c->vs_spread * sampling_normal(&r));
    }
    double quirk[24];
    for (int h = 0; h < 24; h++)
        quirk[h] = exp(c->hour_quirk_sd * sampling_normal(&r));
    for (int how = 0; how < 168; how++) {
        int local = 60 * how + 30 + c->audience_offset_minutes;
        local = ((local % 10080) + 10080) % 10080;
        double act = besttimes_activity(local / 1440, local % 1440);
        a->f_hour[how] = (0.5 + 0.7 * act) * quirk[how % 24];
    }
    for (size_t i = 0; i < LEARNSIM_MAX_KEYS; i++)
        for (size_t j = 0; j < LEARNSIM_MAX_KEYS; j++)
            for (int h = 0; h < 24; h++)
                a->inter[i][j][h] = exp(c->interaction_sd * sampling_normal(&r));
}

double learnsim_rate(const learnsim_audience *a, size_t ct, size_t vs, int how)
{
    return a->cfg.base_rate * a->f_ct[ct] * a->f_vs[vs] * a->f_hour[how] *
           a->inter[ct][vs][how % 24];
}

double learnsim_best(const learnsim_audience *a, int how, size_t *ct, size_t *vs)
{
    double best = -1.0;
    for (size_t i = 0; i < a->cfg.n_content_types; i++) {
        for (size_t j = 0; j < a->cfg.n_voice_styles; j++) {
            double r = learnsim_rate(a, i, j, how);
            if (r > best) {
                best = r;
                *ct = i;
                *vs = j;
            }
        }
    }
    return best;
}

double learnsim_mean(const learnsim_audience *a, int how)
{
    double sum = 0.0;
    for (size_t i = 0; i < a->cfg.n_content_types; i++)
        for (size_t j = 0; j < a->cfg.n_voice_styles; j++)
            sum += learnsim_rate(a, i, j, how);
    return sum / (double)(a->cfg.n_content_types * a->cfg.n_voice_styles);
}

static int64_t poisson(sampling_rng *r, double mean)
{
    if (!(mean > 0.0))
        return 0;
    if (mean >= 30.0) {
        double x = floor(mean + sqrt(mean) * sampling_normal(r) + 0.5);
        return x < 0.0 ? 0 : (int64_t)x;
    }
    double limit = exp(-mean), p = 1.0;
    int64_t k = 0;
    for (; k < 1000; k++) {
        p *= sampling_uniform(r);
        if (p <= limit)
            break;
    }
    return k;
}

void learnsim_observe(const learnsim_audience *a, size_t ct, size_t vs, int how, sampling_rng *r,
                      reward_counts *out)
{
    const learnsim_config *c = &a->cfg;
    double imp = floor(c->median_impressions * exp(c->impressions_sd * sampling_normal(r)));
    double rate = learnsim_rate(a, ct, vs, how) * exp(c->post_noise_sd * sampling_normal(r));
    double eng = imp * rate;
    memset(out, 0, sizeof(*out));
    reward_counts_set(out, REWARD_IMPRESSIONS, (int64_t)imp);
    reward_counts_set(out, REWARD_LIKES, poisson(r, eng * SHARE_LIKES));
    reward_counts_set(out, REWARD_REPLIES, poisson(r, eng * SHARE_REPLIES));
    reward_counts_set(out, REWARD_REPOSTS, poisson(r, eng * SHARE_REPOSTS));
    reward_counts_set(out, REWARD_QUOTES, poisson(r, eng * SHARE_QUOTES));
    reward_counts_set(out, REWARD_BOOKMARKS, poisson(r, eng * SHARE_BOOKMARKS));
    reward_counts_set(out, REWARD_FOLLOWS,
                      poisson(r, imp / 1000.0 * c->follows_per_1k * rate / c->base_rate));
}
