/* besttimes.c - hour-of-week heatmap pooled toward hour of day and the
 * audience's waking hours; see besttimes.h. */
#include "besttimes.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MINUTES_PER_WEEK 10080
#define MAX_ZONES 100
/* Cells or hours with less discounted data do not inform the estimates of
 * the pooling strengths. */
#define POOL_MIN_N 0.25
#define KAPPA_MIN 1.0
#define KAPPA_MAX 100.0

/* kappa = sigma^2 / tau^2 with tau^2 = max(0, num) / den (method of moments),
 * clamped to [KAPPA_MIN, KAPPA_MAX]. */
static double kappa_from(double num, double den, double sigma2)
{
    double tau2 = num > 0.0 ? num / den : 0.0;
    if (!(tau2 > sigma2 / KAPPA_MAX))
        return KAPPA_MAX;
    return fmax(sigma2 / tau2, KAPPA_MIN);
}

/* Share of a population using social media at each local hour (value at
 * hh:00; 1 = the daily peak), weekdays and weekends. A plain, documented
 * shape: asleep 1-5, a morning rise (later at weekends), a lunch bump and
 * the evening peak around 20-21. It only sets the prior; a profile's own
 * outcomes override it. */
/* clang-format off */
static const double activity_weekday[24] = {
    0.25, 0.15, 0.10, 0.07, 0.07, 0.12, 0.30, 0.55, 0.70, 0.70, 0.65, 0.70,
    0.85, 0.80, 0.65, 0.65, 0.70, 0.80, 0.85, 0.95, 1.00, 0.95, 0.75, 0.45,
};
static const double activity_weekend[24] = {
    0.35, 0.25, 0.15, 0.10, 0.07, 0.07, 0.12, 0.25, 0.45, 0.65, 0.80, 0.85,
    0.85, 0.80, 0.75, 0.75, 0.75, 0.80, 0.85, 0.90, 0.95, 0.90, 0.75, 0.50,
};
/* clang-format on */

void besttimes_config_default(besttimes_config *c)
{
    c->kappa_cell = 3.0;
    c->kappa_hod = 6.0;
    c->estimate_kappa = true;
    c->audience_gain = 0.5;
    c->default_sigma2 = 1.0;
    c->interval_level = 0.9;
}

static double activity_at_hour(int day, int hour)
{
    return (day >= 5 ? activity_weekend : activity_weekday)[hour];
}

double besttimes_activity(int day, int minute)
{
    day = ((day % 7) + 7) % 7;
    minute = ((minute % 1440) + 1440) % 1440;
    int h = minute / 60;
    double frac = (double)(minute % 60) / 60.0;
    int nday = h == 23 ? (day + 1) % 7 : day;
    int nh = (h + 1) % 24;
    return (1.0 - frac) * activity_at_hour(day, h) + frac * activity_at_hour(nday, nh);
}

int besttimes_hour_of_week(int64_t t_ms, int offset_minutes)
{
    int64_t minutes = t_ms / 60000 - (t_ms % 60000 < 0 ? 1 : 0) + offset_minutes;
    int64_t days = minutes / 1440 - (minutes % 1440 < 0 ? 1 : 0);
    int64_t minute_of_day = minutes - days * 1440;
    /* 1970-01-01 was a Thursday (3 with Monday = 0). */
    int64_t weekday = ((days + 3) % 7 + 7) % 7;
    return (int)(weekday * 24 + minute_of_day / 60);
}

static status fail(char *err, size_t errcap, const char *msg)
{
    if (err != NULL && errcap > 0)
        snprintf(err, errcap, "best times: %s", msg);
    return ST_INVALID;
}

status besttimes_compute(const bandit_stats *stats, int64_t now_ms, const bandit_config *bc,
                         int profile_offset_minutes, const besttimes_zone *zones, size_t nzones,
                         const besttimes_config *cfg, besttimes_map *out, char *err, size_t errcap)
{
    if (bandit_config_validate(bc, err, errcap) != ST_OK)
        return ST_INVALID;
    if (!(cfg->kappa_cell > 0.0 && cfg->kappa_hod > 0.0 && isfinite(cfg->audience_gain) &&
          cfg->default_sigma2 > 0.0 && cfg->interval_level > 0.0 && cfg->interval_level < 1.0))
        return fail(err, errcap, "invalid config");
    if (profile_offset_minutes < -720 || profile_offset_minutes > 840)
        return fail(err, errcap, "profile offset outside [-720, 840] minutes");
    if (nzones > MAX_ZONES)
        return fail(err, errcap, "more than 100 audience zones");
    double wsum = 0.0;
    for (size_t z = 0; z < nzones; z++) {
        if (zones[z].offset_minutes < -720 || zones[z].offset_minutes > 840)
            return fail(err, errcap, "audience offset outside [-720, 840] minutes");
        if (!(zones[z].weight > 0.0 && isfinite(zones[z].weight)))
            return fail(err, errcap, "audience weight must be > 0 and finite");
        wsum += zones[z].weight;
    }
    for (int c = 0; c < BESTTIMES_CELLS; c++) {
        if (!bandit_stats_valid(&stats[c]))
            return fail(err, errcap, "invalid hour_of_week statistics");
    }
    memset(out, 0, sizeof(*out));
    out->level = cfg->interval_level;

    /* Audience activity of every cell. */
    double amean = 0.0;
    for (int c = 0; c < BESTTIMES_CELLS; c++) {
        int mow = 60 * c + 30; /* the middle of the profile's hour */
        double a = 0.0;
        if (nzones == 0) {
            a = besttimes_activity(mow / 1440, mow % 1440);
        } else {
            for (size_t z = 0; z < nzones; z++) {
                int local = mow + zones[z].offset_minutes - profile_offset_minutes;
                local = ((local % MINUTES_PER_WEEK) + MINUTES_PER_WEEK) % MINUTES_PER_WEEK;
                a += zones[z].weight * besttimes_activity(local / 1440, local % 1440);
            }
            a /= wsum;
        }
        out->cells[c].audience_weight = a;
        amean += a / BESTTIMES_CELLS;
    }

    /* Discounted data per cell and the pooled noise variance. */
    double n[BESTTIMES_CELLS], s[BESTTIMES_CELLS];
    double ss = 0.0, dof = 0.0, ntot = 0.0, stot = 0.0;
    for (int c = 0; c < BESTTIMES_CELLS; c++) {
        bandit_stats d = stats[c];
        bandit_stats_decay_to(&d, now_ms, bc);
        n[c] = d.n;
        s[c] = d.sum;
        if (d.n > 0.0)
            ss += fmax(0.0, d.sum_sq - d.sum * d.sum / d.n);
        dof += fmax(d.n - 1.0, 0.0);
        ntot += d.n;
        stot += d.sum;
    }
    double sigma2 = (ss + 2.0 * cfg->default_sigma2) / (dof + 2.0);
    out->sigma2 = sigma2;
    double g = stot / (ntot + 1.0);

    /* Hour-of-day deviations from the audience prior. */
    double prior[BESTTIMES_CELLS], dev[24], dev_var[24], nh[24], mh[24];
    for (int c = 0; c < BESTTIMES_CELLS; c++)
        prior[c] = g + cfg->audience_gain * (out->cells[c].audience_weight - amean);
    for (int h = 0; h < 24; h++) {
        double resid = 0.0;
        nh[h] = 0.0;
        for (int c = h; c < BESTTIMES_CELLS; c += 24) {
            resid += s[c] - n[c] * prior[c];
            nh[h] += n[c];
        }
        mh[h] = nh[h] > 0.0 ? resid / nh[h] : 0.0; /* mean deviation observed */
    }
    /* Pooling strengths: fixed when configured (> 0), else estimated from
     * the data like the bandit's priors (DerSimonian-Laird between-group
     * variance tau^2, kappa = sigma^2 / tau^2 within [KAPPA_MIN, KAPPA_MAX]),
     * falling back to the defaults without enough data. */
    double kappa_hod = cfg->kappa_hod, kappa_cell = cfg->kappa_cell;
    if (cfg->estimate_kappa) {
        /* hours of day around the audience prior */
        double w = 0.0, w2 = 0.0, q = 0.0;
        int k = 0;
        for (int h = 0; h < 24; h++) {
            if (nh[h] < POOL_MIN_N)
                continue;
            double wh = nh[h] / sigma2;
            w += wh;
            w2 += wh * wh;
            q += wh * mh[h] * mh[h];
            k++;
        }
        if (k >= 3 && w > 0.0)
            kappa_hod = kappa_from(q - k, w - w2 / w, sigma2);
        /* cells around their hour of day */
        double num = 0.0, den = 0.0;
        int groups = 0;
        for (int h = 0; h < 24; h++) {
            double wh = 0.0, wh2 = 0.0, wm = 0.0;
            int kh = 0;
            for (int c = h; c < BESTTIMES_CELLS; c += 24) {
                if (n[c] < POOL_MIN_N)
                    continue;
                double wc = n[c] / sigma2;
                wh += wc;
                wh2 += wc * wc;
                wm += wc * (s[c] / n[c] - prior[c]);
                kh++;
            }
            if (kh < 2)
                continue;
            double mfe = wm / wh, qh = 0.0;
            for (int c = h; c < BESTTIMES_CELLS; c += 24) {
                if (n[c] < POOL_MIN_N)
                    continue;
                double d = s[c] / n[c] - prior[c] - mfe;
                qh += n[c] / sigma2 * d * d;
            }
            num += qh - (kh - 1);
            den += wh - wh2 / wh;
            groups++;
        }
        if (groups >= 3 && den > 0.0)
            kappa_cell = kappa_from(num, den, sigma2);
    }
    out->kappa_hod = kappa_hod;
    out->kappa_cell = kappa_cell;
    for (int h = 0; h < 24; h++) {
        dev[h] = mh[h] * nh[h] / (nh[h] + kappa_hod);
        dev_var[h] = sigma2 / (nh[h] + kappa_hod);
    }

    double zq = sampling_normal_quantile(0.5 * (1.0 + cfg->interval_level));
    for (int c = 0; c < BESTTIMES_CELLS; c++) {
        besttimes_cell *cell = &out->cells[c];
        double k = kappa_cell;
        double share = k / (k + n[c]);
        cell->expected_reward = (k * (prior[c] + dev[c % 24]) + s[c]) / (k + n[c]);
        cell->sd = sqrt(sigma2 / (k + n[c]) + share * share * dev_var[c % 24]);
        cell->lower = cell->expected_reward - zq * cell->sd;
        cell->upper = cell->expected_reward + zq * cell->sd;
        cell->effective_n = n[c];
        cell->history_weight = 1.0 - share;
    }

    /* Rank: insertion sort, stable, so ties keep the lower hour first. */
    for (int c = 0; c < BESTTIMES_CELLS; c++) {
        int j = c;
        while (j > 0 &&
               out->cells[out->ranked[j - 1]].expected_reward < out->cells[c].expected_reward) {
            out->ranked[j] = out->ranked[j - 1];
            j--;
        }
        out->ranked[j] = c;
    }
    return ST_OK;
}

void besttimes_arrays(const besttimes_map *m, double *expected, double *lower, double *upper)
{
    for (int c = 0; c < BESTTIMES_CELLS; c++) {
        if (expected != NULL)
            expected[c] = m->cells[c].expected_reward;
        if (lower != NULL)
            lower[c] = m->cells[c].lower;
        if (upper != NULL)
            upper[c] = m->cells[c].upper;
    }
}

double besttimes_draw(const besttimes_map *m, int how, sampling_rng *r)
{
    const besttimes_cell *c = &m->cells[how];
    return c->expected_reward + c->sd * sampling_normal(r);
}
