/* sched_slots.c - the slot side of scheduling (see sched_slots.h). Moved
 * out of svc_scheduling.c so that GenerateBatch schedules exactly as
 * SchedulePost does. */
#include "sched_slots.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bandit.h"
#include "besttimes.h"
#include "tz.h"

void sched_slots_policy_for_kind(const policy *in, bool reply, policy *out)
{
    *out = *in;
    if (!reply)
        return;
    out->max_posts_per_hour = in->max_replies_per_hour;
    out->max_posts_per_day = in->max_replies_per_day;
    out->min_gap_minutes = 0;
}

const char *sched_slots_rule_name(policy_rule r, bool reply)
{
    if (reply && r == POLICY_RULE_HOURLY_QUOTA)
        return "max_replies_per_hour";
    if (reply && r == POLICY_RULE_DAILY_QUOTA)
        return "max_replies_per_day";
    return policy_rule_name(r);
}

void sched_slots_rule_reason(policy_rule r, bool reply, char *buf, size_t cap)
{
    const char *name = sched_slots_rule_name(r, reply);
    size_t k = 0;
    if (cap == 0)
        return;
    for (const char *s = "POLICY_"; *s && k + 1 < cap; s++)
        buf[k++] = *s;
    for (const char *s = name; *s && k + 1 < cap; s++)
        buf[k++] = (char)toupper((unsigned char)*s);
    buf[k] = '\0';
}

status sched_slots_ctx_load_tx(db_conn *db, arena *a, const char *profile_id, bool lock,
                               const char *exclude_post_id, int64_t from_ms, bool reply,
                               sched_slots_ctx *c)
{
    memset(c, 0, sizeof *c);
    status st = sched_profile_load_tx(db, a, profile_id, lock, &c->prof);
    if (st != ST_OK)
        return st;
    int64_t from = from_ms != 0 && from_ms < c->prof.now_ms ? from_ms : c->prof.now_ms;
    st = sched_instants_tx(db, a, profile_id, exclude_post_id,
                           from / 1000 - (int64_t)SCHED_SLOTS_HISTORY_DAYS * 86400, &c->inst);
    if (st != ST_OK)
        return st;
    sched_slots_policy_for_kind(&c->prof.policy, reply, &c->pol);
    c->ctx.policy = &c->pol;
    c->ctx.zone = c->prof.zone;
    c->ctx.cooldown = c->prof.has_cooldown ? &c->prof.cooldown : NULL;
    c->ctx.posts_s = reply ? c->inst.replies_s : c->inst.posts_s;
    c->ctx.n_posts = reply ? c->inst.n_replies : c->inst.n_posts;
    return ST_OK;
}

void sched_slots_ctx_add(sched_slots_ctx *c, arena *a, int64_t t_s)
{
    /* arena memory cannot grow in place: a new array each time (a batch
     * adds at most a few dozen) */
    int64_t *p = arena_alloc(a, (c->ctx.n_posts + 1) * sizeof *p);
    if (p == NULL)
        return; /* arena exhausted: the caller's arena_exhausted check fails the call */
    if (c->ctx.n_posts > 0)
        memcpy(p, c->ctx.posts_s, c->ctx.n_posts * sizeof *p);
    p[c->ctx.n_posts] = t_s;
    c->ctx.posts_s = p;
    c->ctx.n_posts++;
}

status sched_slots_inputs_load_tx(db_conn *db, arena *a, const sched_profile *pr,
                                  double half_life_days, sched_slots_inputs *in)
{
    bandit_stats stats[BESTTIMES_CELLS];
    sched_zone_share *zones = NULL;
    size_t nz = 0;
    bool any = false;

    memset(in, 0, sizeof *in);
    status st = sched_audience_tx(db, a, pr->profile_id, SLOTS_MAX_AUDIENCE, &zones, &nz);
    if (st != ST_OK)
        return st;
    besttimes_zone bz[SLOTS_MAX_AUDIENCE];
    size_t nbz = 0;
    int64_t now_s = pr->now_ms / 1000;
    for (size_t i = 0; i < nz; i++) {
        const tz_zone *z = NULL;
        if (!(zones[i].share > 0) || !isfinite(zones[i].share) ||
            tz_get(zones[i].time_zone, &z, NULL, 0) != ST_OK)
            continue;
        in->audience[in->n_audience].zone = z;
        in->audience[in->n_audience].share = zones[i].share;
        in->n_audience++;
        bz[nbz].offset_minutes = tz_offset_at(z, now_s) / 60;
        bz[nbz].weight = zones[i].share;
        nbz++;
    }
    st = sched_hour_stats_tx(db, pr->profile_id, stats, &any);
    if (st != ST_OK || !any)
        return st;

    bandit_config bc;
    besttimes_config cfg;
    besttimes_map *map = arena_alloc(a, sizeof *map);
    char err[160];
    if (map == NULL)
        return ST_EXHAUSTED;
    bandit_config_default(&bc);
    if (half_life_days >= 0)
        bc.half_life_days = half_life_days;
    besttimes_config_default(&cfg);
    int profile_offset = tz_offset_at(pr->zone, now_s) / 60;
    if (besttimes_compute(stats, pr->now_ms, &bc, profile_offset, nbz > 0 ? bz : NULL, nbz, &cfg,
                          map, err, sizeof err) != ST_OK)
        return ST_OK; /* unusable statistics: the prior it is */
    besttimes_arrays(map, in->model.mean, in->model.lower, in->model.upper);
    in->model.level = map->level;
    for (int h = 0; h < BESTTIMES_CELLS; h++) {
        in->model.history_weight[h] = map->cells[h].history_weight;
        in->model.posts[h] = map->cells[h].effective_n;
    }
    in->has_model = true;
    return ST_OK;
}

void sched_slots_req_init(slots_request *r, const sched_slots_ctx *c, const sched_slots_inputs *in,
                          int64_t after_s, size_t count, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    r->ctx = &c->ctx;
    r->model = in->has_model ? &in->model : NULL;
    r->audience = in->n_audience > 0 ? in->audience : NULL;
    r->n_audience = in->n_audience;
    r->after_s = after_s;
    r->count = count;
    r->seed = seed;
}

status sched_slots_next_best(const sched_slots_ctx *c, const sched_slots_inputs *in,
                             int64_t after_ms, uint64_t seed, slots_slot *out, double *propensity)
{
    slots_request sr;
    int64_t now_ms = c->prof.now_ms;
    int64_t from = after_ms > now_ms ? after_ms : now_ms;

    *propensity = 0;
    sched_slots_req_init(&sr, c, in, (from + 999) / 1000, 1, seed);
    status st = slots_next_best(&sr, out, propensity);
    if (st == ST_OK || st == ST_NOT_FOUND)
        return st;
    return ST_INTERNAL;
}

status sched_slots_decision_tx(db_conn *db, arena *a, const sched_slots_ctx *c, const slots_slot *s,
                               uint64_t seed, double propensity, const char **decision_id)
{
    *decision_id = NULL;
    char *cands = arena_printf(a,
                               "[{\"start_time\":%lld,\"hour_of_week\":%d,"
                               "\"expected_reward\":%.6g,\"draw\":%.6g}]",
                               (long long)s->start_s, s->hour_of_week, s->expected_reward, s->draw);
    if (cands == NULL)
        return ST_EXHAUSTED;
    return sched_decision_insert_tx(db, a, c->prof.profile_id, s->hour_of_week, s->start_s * 1000,
                                    seed, propensity > 0 ? (propensity < 1 ? propensity : 1) : 1e-6,
                                    cands, s->reason, decision_id);
}

status sched_slots_may_schedule(const sched_post_meta *meta, int64_t now_ms, int64_t schedule_ms,
                                const char **why)
{
    lease_record rec;
    lease_result lr;
    lease_limits lim = { 1, 1, 1, 1 };
    memset(&rec, 0, sizeof rec);
    memset(&lr, 0, sizeof lr);
    rec.post.state = meta->state;
    rec.post.attempt_count = meta->attempt_count;
    rec.post.state_reason = "";
    rec.attempt.number = meta->attempt_count;
    rec.attempt.state = meta->live_lease ? LEASE_ATTEMPT_LEASED : LEASE_ATTEMPT_NONE;
    if (!meta->live_lease && meta->attempt_count > 0)
        rec.attempt.state = LEASE_ATTEMPT_FAILED; /* some finished attempt */
    lease_event ev = { .kind = LEASE_EV_SCHEDULE, .now_ms = now_ms, .schedule_ms = schedule_ms };
    status st = lease_apply(&lim, &rec, &ev, &lr);
    *why = st == ST_OK ? "" : (lr.reason != NULL ? lr.reason : "refused");
    return st;
}
