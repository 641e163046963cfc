/* reward.c - versioned reward: rates, robust baselines, z-scores; see
 * reward.h. */
#include "reward.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MS_PER_DAY 86400000LL
/* 1.4826 MAD estimates the standard deviation of normal data. */
#define MAD_TO_SD 1.4826

static const char *const metric_names[REWARD_METRIC_COUNT] = {
    "impressions", "likes",          "replies",     "reposts", "quotes",
    "bookmarks",   "profile_visits", "link_clicks", "follows",
};

/* clang-format off */
static const reward_version versions[] = {
    {
        .name = "v1",
        .description = "0.7 z(engagement rate) + 0.3 z(follows per 1k impressions); engagement ="
                       " likes + replies + reposts + quotes; robust z against the trailing 30-day"
                       " median and MAD; clipped to +-5",
        .weight = { [REWARD_LIKES] = 1.0, [REWARD_REPLIES] = 1.0, [REWARD_REPOSTS] = 1.0,
                    [REWARD_QUOTES] = 1.0 },
        .w_engagement = 0.7, .w_follows = 0.3,
        .eng_abs_floor = 0.001, .fol_abs_floor = 0.25, .rel_floor = 0.1, .clip = 5.0,
    },
    {
        .name = "v2",
        .description = "conversation-weighted: 0.6 z(engagement rate) + 0.4 z(follows per 1k);"
                       " engagement = likes + 2 replies + 2 reposts + 2 quotes + bookmarks;"
                       " robust z against the trailing 30-day median and MAD; clipped to +-5",
        .weight = { [REWARD_LIKES] = 1.0, [REWARD_REPLIES] = 2.0, [REWARD_REPOSTS] = 2.0,
                    [REWARD_QUOTES] = 2.0, [REWARD_BOOKMARKS] = 1.0 },
        .w_engagement = 0.6, .w_follows = 0.4,
        .eng_abs_floor = 0.001, .fol_abs_floor = 0.25, .rel_floor = 0.1, .clip = 5.0,
    },
};
/* clang-format on */

const char *reward_metric_name(reward_metric m)
{
    if ((int)m < 0 || m >= REWARD_METRIC_COUNT)
        return NULL;
    return metric_names[m];
}

void reward_counts_set(reward_counts *c, reward_metric m, int64_t v)
{
    c->value[m] = v;
    c->known |= 1u << m;
}

bool reward_counts_get(const reward_counts *c, reward_metric m, int64_t *v)
{
    if (!(c->known & (1u << m)))
        return false;
    *v = c->value[m];
    return true;
}

const reward_version *reward_version_default(void)
{
    return &versions[0];
}

const reward_version *reward_version_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof(versions) / sizeof(versions[0]); i++) {
        if (strcmp(versions[i].name, name) == 0)
            return &versions[i];
    }
    return NULL;
}

size_t reward_version_count(void)
{
    return sizeof(versions) / sizeof(versions[0]);
}

const reward_version *reward_version_at(size_t i)
{
    return i < reward_version_count() ? &versions[i] : NULL;
}

void reward_options_default(reward_options *o)
{
    o->min_impressions = 100;
    o->baseline_days = 30;
    o->min_baseline = 5;
}

status reward_options_validate(const reward_options *o, char *err, size_t errcap)
{
    const char *bad = NULL;
    if (o->min_impressions < 1 || o->min_impressions > 1000000000LL)
        bad = "min_impressions must be in [1, 1e9]";
    else if (o->baseline_days < 1 || o->baseline_days > 365)
        bad = "baseline_days must be in [1, 365]";
    else if (o->min_baseline < 1 || o->min_baseline > 100000)
        bad = "min_baseline must be in [1, 100000]";
    if (bad == NULL)
        return ST_OK;
    if (err != NULL && errcap > 0)
        snprintf(err, errcap, "reward options: %s", bad);
    return ST_INVALID;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of sorted v[0..n), n > 0. */
static double median_sorted(const double *v, size_t n)
{
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void reward_baseline_compute(const double *v, size_t n, double rel_floor, double abs_floor,
                             reward_baseline *out)
{
    double stackbuf[256];
    double *w = n <= 256 ? stackbuf : xmalloc(n * sizeof(double));

    memset(out, 0, sizeof(*out));
    out->n = n;
    if (n > 0) {
        memcpy(w, v, n * sizeof(double));
        qsort(w, n, sizeof(double), cmp_double);
        out->median = median_sorted(w, n);
        for (size_t i = 0; i < n; i++)
            w[i] = fabs(w[i] - out->median);
        qsort(w, n, sizeof(double), cmp_double);
        out->mad = median_sorted(w, n);
    }
    out->scale = fmax(fmax(MAD_TO_SD * out->mad, rel_floor * fabs(out->median)), abs_floor);
    if (w != stackbuf)
        free(w);
}

/* The rates of c under v; false with a reason when the engagement rate is
 * unknown. */
static bool rates(const reward_version *v, const reward_options *o, const reward_counts *c,
                  reward_outcome *out)
{
    int64_t imp;
    if (!reward_counts_get(c, REWARD_IMPRESSIONS, &imp)) {
        snprintf(out->reason, sizeof(out->reason), "impressions unknown (not observed)");
        return false;
    }
    if (imp < o->min_impressions) {
        snprintf(out->reason, sizeof(out->reason), "too few impressions: %lld < %lld",
                 (long long)imp, (long long)o->min_impressions);
        return false;
    }
    double eng = 0.0;
    for (int m = 0; m < REWARD_METRIC_COUNT; m++) {
        if (v->weight[m] == 0.0)
            continue;
        int64_t x;
        if (!reward_counts_get(c, (reward_metric)m, &x)) {
            snprintf(out->reason, sizeof(out->reason), "%s unknown (not observed)",
                     metric_names[m]);
            return false;
        }
        eng += v->weight[m] * (double)x;
    }
    out->has_engagement_rate = true;
    out->engagement_rate = eng / (double)imp;
    int64_t fol;
    if (reward_counts_get(c, REWARD_FOLLOWS, &fol)) {
        out->has_follows_per_1k = true;
        out->follows_per_1k = 1000.0 * (double)fol / (double)imp;
    }
    return true;
}

void reward_score(const reward_version *v, const reward_options *o, const reward_counts *c,
                  const double *eng_hist, size_t n_eng, const double *fol_hist, size_t n_fol,
                  reward_outcome *out)
{
    memset(out, 0, sizeof(*out));
    if (!rates(v, o, c, out))
        return;

    reward_baseline be;
    reward_baseline_compute(eng_hist, n_eng, v->rel_floor, v->eng_abs_floor, &be);
    out->baseline_n = n_eng;
    if (n_eng > 0) {
        out->has_baseline = true;
        out->baseline = be.median;
    }
    if (n_eng < o->min_baseline) {
        snprintf(out->reason, sizeof(out->reason), "baseline too short: %zu of %zu posts", n_eng,
                 o->min_baseline);
        return;
    }
    out->z_engagement = (out->engagement_rate - be.median) / be.scale;
    double r = out->z_engagement;
    if (out->has_follows_per_1k && n_fol >= o->min_baseline) {
        reward_baseline bf;
        reward_baseline_compute(fol_hist, n_fol, v->rel_floor, v->fol_abs_floor, &bf);
        out->has_z_follows = true;
        out->z_follows = (out->follows_per_1k - bf.median) / bf.scale;
        r = (v->w_engagement * out->z_engagement + v->w_follows * out->z_follows) /
            (v->w_engagement + v->w_follows);
    }
    out->reward = fmin(fmax(r, -v->clip), v->clip);
    out->has_reward = true;
    out->learnable = true;
}

status reward_recompute(const reward_version *v, const reward_options *o, const reward_post *posts,
                        size_t n, reward_outcome *out, char *err, size_t errcap)
{
    if (reward_options_validate(o, err, errcap) != ST_OK)
        return ST_INVALID;
    for (size_t i = 1; i < n; i++) {
        if (posts[i].checkpoint_ms < posts[i - 1].checkpoint_ms) {
            if (err != NULL && errcap > 0)
                snprintf(err, errcap, "posts out of checkpoint order at index %zu", i);
            return ST_INVALID;
        }
    }
    double *eng = NULL, *fol = NULL, *eh = NULL, *fh = NULL;
    if (n > 0) {
        eng = xmalloc(n * sizeof(double)); /* each post's rate; NAN when none */
        fol = xmalloc(n * sizeof(double));
        eh = xmalloc(n * sizeof(double)); /* the current window's values */
        fh = xmalloc(n * sizeof(double));
    }
    int64_t window_ms = (int64_t)o->baseline_days * MS_PER_DAY;
    size_t lo = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t t = posts[i].checkpoint_ms;
        while (lo < i && posts[lo].checkpoint_ms < t - window_ms)
            lo++;
        size_t ne = 0, nf = 0;
        for (size_t j = lo; j < i && posts[j].checkpoint_ms < t; j++) {
            if (!isnan(eng[j]))
                eh[ne++] = eng[j];
            if (!isnan(fol[j]))
                fh[nf++] = fol[j];
        }
        reward_score(v, o, &posts[i].counts, eh, ne, fh, nf, &out[i]);
        eng[i] = out[i].has_engagement_rate ? out[i].engagement_rate : NAN;
        fol[i] = out[i].has_follows_per_1k ? out[i].follows_per_1k : NAN;
    }
    free(fh);
    free(eh);
    free(fol);
    free(eng);
    return ST_OK;
}
