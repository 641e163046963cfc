/* trends.c - EWMA velocity, acceleration and trend score of topic
 * mentions; see trends.h. */
#include "trends.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MS_PER_HOUR 3600000.0

void trends_config_default(trends_config *c)
{
    c->half_life_hours = 6.0;
    c->accel_half_life_hours = 6.0;
    c->min_velocity = 1.0;
    c->rising_growth = 0.1;
    c->rising_noise = 2.0;
    c->stale_hours = 6.0;
}

status trends_config_validate(const trends_config *c, char *err, size_t errcap)
{
    const char *bad = NULL;
    if (!(c->half_life_hours > 0.0 && c->half_life_hours <= 24.0 * 365))
        bad = "half_life_hours must be in (0, 8760]";
    else if (!(c->accel_half_life_hours > 0.0 && c->accel_half_life_hours <= 24.0 * 365))
        bad = "accel_half_life_hours must be in (0, 8760]";
    else if (!(c->min_velocity > 0.0 && isfinite(c->min_velocity)))
        bad = "min_velocity must be > 0";
    else if (!isfinite(c->rising_growth))
        bad = "rising_growth must be finite";
    else if (!(c->rising_noise >= 0.0 && isfinite(c->rising_noise)))
        bad = "rising_noise must be >= 0";
    else if (!(c->stale_hours > 0.0 && isfinite(c->stale_hours)))
        bad = "stale_hours must be > 0";
    if (bad == NULL)
        return ST_OK;
    if (err != NULL && errcap > 0)
        snprintf(err, errcap, "trends config: %s", bad);
    return ST_INVALID;
}

static double ewma_weight(double dt_hours, double half_life_hours)
{
    return 1.0 - exp2(-dt_hours / half_life_hours);
}

/* One EWMA step of rate over dt_hours from the state before it. */
static void step(trends_state *s, double rate, double dt_hours, const trends_config *c)
{
    s->prev_velocity = s->velocity;
    s->prev_acceleration = s->acceleration;
    s->step_hours = dt_hours;
    s->step_alpha = ewma_weight(dt_hours, c->half_life_hours);
    s->step_beta = ewma_weight(dt_hours, c->accel_half_life_hours);
    s->velocity += s->step_alpha * (rate - s->velocity);
    double slope = (s->velocity - s->prev_velocity) / dt_hours;
    s->acceleration += s->step_beta * (slope - s->acceleration);
}

void trends_update(trends_state *s, int64_t at_ms, int64_t count, int period_minutes,
                   const trends_config *c)
{
    double rate =
        (double)(count < 0 ? 0 : count) * 60.0 / (period_minutes < 1 ? 1 : period_minutes);
    if (s->observations == 0) {
        memset(s, 0, sizeof(*s));
        s->velocity = rate;
        s->prev_velocity = rate;
        s->first_ms = at_ms;
        s->last_ms = at_ms;
        s->observations = 1;
        return;
    }
    s->observations++;
    if (at_ms <= s->last_ms) {
        /* Same period from another source: the rate of the last step grows
         * by this one. The very first observation had no step; it simply
         * sums. */
        if (s->step_hours <= 0.0) {
            s->velocity += rate;
            s->prev_velocity = s->velocity;
            return;
        }
        s->velocity += s->step_alpha * rate;
        double slope = (s->velocity - s->prev_velocity) / s->step_hours;
        s->acceleration = s->prev_acceleration + s->step_beta * (slope - s->prev_acceleration);
        return;
    }
    step(s, rate, (double)(at_ms - s->last_ms) / MS_PER_HOUR, c);
    s->last_ms = at_ms;
}

void trends_evaluate(const trends_state *s, int64_t now_ms, const trends_config *c,
                     trends_result *out)
{
    trends_state t = *s;
    memset(out, 0, sizeof(*out));
    out->mentions_24h = -1;
    out->first_ms = s->first_ms;
    out->last_ms = s->last_ms;
    if (s->observations == 0)
        return;
    double gap_hours = (double)(now_ms - s->last_ms) / MS_PER_HOUR;
    if (gap_hours > c->stale_hours)
        step(&t, 0.0, gap_hours, c);
    out->velocity_per_hour = t.velocity;
    out->acceleration_per_hour = t.acceleration;
    out->growth_per_day = 24.0 * t.acceleration / fmax(t.velocity, c->min_velocity);
    out->score = out->growth_per_day * log2(1.0 + fmax(t.velocity, 0.0));
    double floor =
        fmax(c->rising_growth, c->rising_noise / sqrt(fmax(t.velocity, c->min_velocity)));
    out->rising = t.acceleration > 0.0 && out->growth_per_day >= floor;
}

status trends_compute(const trends_obs *obs, size_t n, int64_t now_ms, const trends_config *c,
                      trends_result *out, char *err, size_t errcap)
{
    if (trends_config_validate(c, err, errcap) != ST_OK)
        return ST_INVALID;
    for (size_t i = 0; i < n; i++) {
        const char *bad = NULL;
        if (obs[i].count < 0)
            bad = "negative mention count";
        else if (obs[i].period_minutes < 1 || obs[i].period_minutes > 10080)
            bad = "period outside 1-10080 minutes";
        else if (i > 0 && obs[i].at_ms < obs[i - 1].at_ms)
            bad = "observations out of time order";
        if (bad != NULL) {
            if (err != NULL && errcap > 0)
                snprintf(err, errcap, "trends: %s at index %zu", bad, i);
            return ST_INVALID;
        }
    }
    trends_state s = { 0 };
    int64_t m24 = 0;
    for (size_t i = 0; i < n; i++) {
        trends_update(&s, obs[i].at_ms, obs[i].count, obs[i].period_minutes, c);
        if (obs[i].at_ms > now_ms - 24 * 3600000LL && obs[i].at_ms <= now_ms)
            m24 += obs[i].count;
    }
    trends_evaluate(&s, now_ms, c, out);
    out->mentions_24h = m24;
    return ST_OK;
}
