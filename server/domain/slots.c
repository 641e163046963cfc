/* slots.c - candidate quarter hours, Thompson scores per hour-of-week cell,
 * greedy selection under the posting policy. */
#include "slots.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sampling.h"
#include "util.h"

#define DAY_S ((int64_t)86400)

/* clang-format off */
static const double prior_hod[24] = {
    -0.30, -0.45, -0.55, -0.60, -0.55, -0.40, /* 00-05 night */
    -0.15,  0.05,  0.15,  0.15,  0.10,  0.10, /* 06-11 morning */
     0.20,  0.15,  0.05,  0.05,  0.10,  0.15, /* 12-17 lunch, afternoon */
     0.25,  0.30,  0.30,  0.20,  0.05, -0.10, /* 18-23 evening */
};
/* clang-format on */

static const char *const day_names[7] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };

double slots_prior_hour(int hour)
{
    return hour >= 0 && hour < 24 ? prior_hod[hour] : 0.0;
}

static const char *prior_band(int hour)
{
    if (hour < 6)
        return "night trough";
    if (hour < 8)
        return "early morning";
    if (hour < 12)
        return "morning";
    if (hour < 14)
        return "lunchtime";
    if (hour < 18)
        return "afternoon";
    if (hour < 22)
        return "evening peak";
    return "late evening";
}

typedef struct cand {
    int64_t t;
    int how; /* profile-local hour of week */
    int local_hour;
    double mean;
    double sd;
    double score;
    double jitter;
} cand;

/* Sort: score desc, jitter desc, time asc. */
static int cand_cmp(const void *a, const void *b)
{
    const cand *x = *(const cand *const *)a, *y = *(const cand *const *)b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->jitter != y->jitter)
        return x->jitter > y->jitter ? -1 : 1;
    return (x->t > y->t) - (x->t < y->t);
}

static int slot_time_cmp(const void *a, const void *b)
{
    const slots_slot *x = a, *y = b;
    return (x->start_s > y->start_s) - (x->start_s < y->start_s);
}

/* z such that P(-z < Z < z) = level. */
static double level_z(double level)
{
    return sampling_normal_quantile(0.5 + level / 2.0);
}

static status check_request(const slots_request *req)
{
    if (req == NULL || req->ctx == NULL || req->ctx->policy == NULL)
        return ST_INVALID;
    if (req->count < 1 || req->count > SLOTS_MAX)
        return ST_INVALID;
    if (req->after_s < 0 || req->after_s > TZ_MAX_S - (int64_t)SLOTS_MAX_HORIZON_DAYS * DAY_S)
        return ST_INVALID;
    if (req->max_horizon_days < 0 || req->max_horizon_days > SLOTS_MAX_HORIZON_DAYS)
        return ST_INVALID;
    if (req->ctx->n_posts > 0 && req->ctx->posts_s == NULL)
        return ST_INVALID;
    const slots_model *m = req->model;
    if (m != NULL) {
        if (!(m->level > 0.0 && m->level < 1.0))
            return ST_INVALID;
        for (int h = 0; h < SLOTS_HOURS_PER_WEEK; h++) {
            if (!isfinite(m->mean[h]) || !isfinite(m->lower[h]) || !isfinite(m->upper[h]) ||
                m->lower[h] > m->upper[h] || !(m->history_weight[h] >= 0.0) ||
                !(m->history_weight[h] <= 1.0) || !(m->posts[h] >= 0.0) || !isfinite(m->posts[h]))
                return ST_INVALID;
        }
    }
    if (req->n_audience > SLOTS_MAX_AUDIENCE || (req->n_audience > 0 && req->audience == NULL))
        return ST_INVALID;
    double total = 0;
    for (size_t i = 0; i < req->n_audience; i++) {
        double s = req->audience[i].share;
        if (req->audience[i].zone == NULL || !(s >= 0.0) || !isfinite(s))
            return ST_INVALID;
        total += s;
    }
    if (req->n_audience > 0 && !(total > 0.0))
        return ST_INVALID;
    return ST_OK;
}

/* Cells ranked by mean (1 = best), for reasons. */
static void rank_cells(const slots_model *m, int rank[SLOTS_HOURS_PER_WEEK])
{
    for (int h = 0; h < SLOTS_HOURS_PER_WEEK; h++) {
        int r = 1;
        for (int k = 0; k < SLOTS_HOURS_PER_WEEK; k++)
            if (m->mean[k] > m->mean[h] || (k < h && m->mean[k] == m->mean[h]))
                r++;
        rank[h] = r;
    }
}

static const char *ordinal_suffix(int n)
{
    if (n % 100 >= 11 && n % 100 <= 13)
        return "th";
    switch (n % 10) {
    case 1:
        return "st";
    case 2:
        return "nd";
    case 3:
        return "rd";
    default:
        return "th";
    }
}

static void fill_slot(const slots_request *req, const cand *c, const int *rank, slots_slot *s)
{
    const slots_model *m = req->model;
    tz_local lt;
    const tz_zone *z = req->ctx->zone ? req->ctx->zone : tz_utc();

    memset(s, 0, sizeof *s);
    s->start_s = c->t;
    s->hour_of_week = c->how;
    s->expected_reward = c->mean;
    s->draw = c->score;
    (void)tz_localtime(z, c->t, &lt);
    const char *day = day_names[c->how / 24];
    if (m == NULL) {
        double half = SLOTS_PRIOR_SD * level_z(SLOTS_PRIOR_LEVEL);
        s->lower = c->mean - half;
        s->upper = c->mean + half;
        s->level = SLOTS_PRIOR_LEVEL;
        s->basis = SLOTS_BASIS_PRIOR;
        s->history_weight = 0.0;
        (void)snprintf(s->reason, sizeof s->reason,
                       "%s %02d:%02d: %s of the hour-of-day prior%s, no history yet", day, lt.hour,
                       lt.minute, prior_band(c->local_hour),
                       req->n_audience > 0 ? " across the audience's time zones" : "");
        return;
    }
    int h = c->how;
    s->lower = m->lower[h];
    s->upper = m->upper[h];
    s->level = m->level;
    s->history_weight = m->history_weight[h];
    s->basis = m->history_weight[h] >= 0.9  ? SLOTS_BASIS_HISTORY
               : m->history_weight[h] > 0.0 ? SLOTS_BASIS_POOLED
                                            : SLOTS_BASIS_PRIOR;
    long posts = lround(m->posts[h]);
    if (rank[h] <= 24)
        (void)snprintf(s->reason, sizeof s->reason,
                       "%s %02d:%02d: %d%s best hour of the week (%ld posts, %.0f%% own history)",
                       day, lt.hour, lt.minute, rank[h], ordinal_suffix(rank[h]), posts,
                       100.0 * m->history_weight[h]);
    else
        (void)snprintf(s->reason, sizeof s->reason,
                       "%s %02d:%02d: exploring an uncertain hour (ranked %d%s by mean, %ld posts)",
                       day, lt.hour, lt.minute, rank[h], ordinal_suffix(rank[h]), posts);
}

/* Candidates are scored lazily, a day at a time, in time order: 168 cell
 * normals are drawn first, then one uniform per candidate, so a candidate's
 * draws do not depend on how far the horizon grows. */
typedef struct builder {
    sampling_rng rng;
    double eps[SLOTS_HOURS_PER_WEEK];
    double sd_cell[SLOTS_HOURS_PER_WEEK];
    double total_share;
    int64_t next_t; /* the next candidate instant */
    size_t n;       /* candidates built */
    bool done;      /* out of range: no more candidates */
} builder;

static void builder_init(builder *b, const slots_request *req, uint64_t seed)
{
    const slots_model *m = req->model;
    double zl = m ? level_z(m->level) : 1.0;
    int64_t g = SLOTS_GRANULARITY_S;

    memset(b, 0, sizeof *b);
    sampling_rng_seed(&b->rng, seed);
    for (int h = 0; h < SLOTS_HOURS_PER_WEEK; h++) {
        b->eps[h] = sampling_normal(&b->rng);
        b->sd_cell[h] = m ? (m->upper[h] - m->lower[h]) / (2.0 * zl) : SLOTS_PRIOR_SD;
    }
    for (size_t i = 0; i < req->n_audience; i++)
        b->total_share += req->audience[i].share;
    b->next_t = req->after_s % g == 0 ? req->after_s : (req->after_s / g + 1) * g;
}

/* Appends the candidates before end to cs (room for cap). */
static void builder_extend(builder *b, const slots_request *req, cand *cs, size_t cap, int64_t end)
{
    const slots_model *m = req->model;
    const tz_zone *z = req->ctx->zone ? req->ctx->zone : tz_utc();

    for (; !b->done && b->next_t < end && b->n < cap; b->next_t += SLOTS_GRANULARITY_S) {
        int64_t t = b->next_t;
        tz_local lt;
        if (tz_localtime(z, t, &lt) != ST_OK) {
            b->done = true;
            break;
        }
        cand *c = &cs[b->n++];
        c->t = t;
        c->how = (lt.iso_weekday - 1) * 24 + lt.hour;
        c->local_hour = lt.hour;
        if (m) {
            c->mean = m->mean[c->how];
        } else if (req->n_audience == 0) {
            c->mean = prior_hod[lt.hour];
        } else {
            double acc = 0;
            for (size_t i = 0; i < req->n_audience; i++) {
                tz_local al;
                if (tz_localtime(req->audience[i].zone, t, &al) == ST_OK)
                    acc += req->audience[i].share * prior_hod[al.hour];
            }
            c->mean = acc / b->total_share;
        }
        c->sd = b->sd_cell[c->how];
        c->score = c->mean + c->sd * b->eps[c->how];
        c->jitter = sampling_uniform(&b->rng);
    }
}

/* The greedy pass over the first ncand candidates; returns how many were
 * taken into chosen[] (pointers into cs). posts has room for n_posts +
 * count instants and starts with the context's posts. */
static size_t select_greedy(const slots_request *req, cand *cs, size_t ncand, cand **order,
                            int64_t *posts, size_t count, cand **chosen)
{
    policy_ctx ctx = *req->ctx;
    size_t n_chosen = 0;

    ctx.posts_s = posts;
    for (size_t i = 0; i < ncand; i++)
        order[i] = &cs[i];
    qsort(order, ncand, sizeof *order, cand_cmp); // NOLINT(bugprone-sizeof-expression)
    for (size_t i = 0; i < ncand && n_chosen < count; i++) {
        ctx.n_posts = req->ctx->n_posts + n_chosen;
        if (policy_check(&ctx, order[i]->t, NULL) != POLICY_RULE_OK)
            continue;
        posts[ctx.n_posts] = order[i]->t;
        chosen[n_chosen++] = order[i];
    }
    return n_chosen;
}

/* One complete selection with seed; returns the number of slots found and
 * leaves them in chosen[]. */
static size_t run_selection(const slots_request *req, uint64_t seed, size_t count, cand *cs,
                            cand **order, int64_t *posts, cand **chosen)
{
    size_t cap = (size_t)SLOTS_MAX_HORIZON_DAYS * DAY_S / SLOTS_GRANULARITY_S + 1;
    int days = req->max_horizon_days ? req->max_horizon_days : SLOTS_DEFAULT_HORIZON_DAYS;
    size_t n = 0;
    builder b;

    builder_init(&b, req, seed);
    if (req->ctx->n_posts > 0)
        memcpy(posts, req->ctx->posts_s, req->ctx->n_posts * sizeof *posts);
    for (int d = 1; d <= days; d++) {
        builder_extend(&b, req, cs, cap, req->after_s + (int64_t)d * DAY_S);
        n = select_greedy(req, cs, b.n, order, posts, count, chosen);
        if (n >= count || b.done)
            break;
    }
    return n;
}

typedef struct work {
    cand *cs;
    cand **order;
    cand **chosen;
    int64_t *posts;
} work;

static void work_init(work *w, const slots_request *req, size_t count)
{
    size_t cap = (size_t)SLOTS_MAX_HORIZON_DAYS * DAY_S / SLOTS_GRANULARITY_S + 1;
    w->cs = xcalloc(cap, sizeof *w->cs);
    w->order = xcalloc(cap, sizeof *w->order);     // NOLINT(bugprone-sizeof-expression)
    w->chosen = xcalloc(count, sizeof *w->chosen); // NOLINT(bugprone-sizeof-expression)
    w->posts = xcalloc(req->ctx->n_posts + count, sizeof *w->posts);
}

static void work_fini(work *w)
{
    free(w->cs);
    free(w->order);
    free(w->chosen);
    free(w->posts);
}

status slots_next(const slots_request *req, slots_slot *out, size_t *n_out)
{
    status st;
    work w = { 0 };
    int rank[SLOTS_HOURS_PER_WEEK];

    *n_out = 0;
    st = check_request(req);
    if (st != ST_OK)
        return st;
    work_init(&w, req, req->count);
    size_t n = run_selection(req, req->seed, req->count, w.cs, w.order, w.posts, w.chosen);
    if (req->model)
        rank_cells(req->model, rank);
    for (size_t i = 0; i < n; i++)
        fill_slot(req, w.chosen[i], rank, &out[i]);
    qsort(out, n, sizeof *out, slot_time_cmp);
    *n_out = n;
    work_fini(&w);
    return ST_OK;
}

/* splitmix64 step: derives the propensity rounds' seeds from the request's. */
static uint64_t derive_seed(uint64_t seed, uint64_t i)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (i + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

status slots_next_best(const slots_request *req, slots_slot *out, double *propensity)
{
    status st;
    work w = { 0 };
    int rank[SLOTS_HOURS_PER_WEEK];
    slots_request one;

    *propensity = 0.0;
    if (req == NULL)
        return ST_INVALID;
    one = *req;
    one.count = 1;
    st = check_request(&one);
    if (st != ST_OK)
        return st;
    work_init(&w, &one, 1);
    if (run_selection(&one, one.seed, 1, w.cs, w.order, w.posts, w.chosen) == 0) {
        st = ST_NOT_FOUND;
        goto out;
    }
    if (one.model)
        rank_cells(one.model, rank);
    fill_slot(&one, w.chosen[0], rank, out);
    int same = 1;
    for (uint64_t i = 0; i < SLOTS_PROPENSITY_DRAWS; i++) {
        if (run_selection(&one, derive_seed(one.seed, i), 1, w.cs, w.order, w.posts, w.chosen) ==
                1 &&
            w.chosen[0]->t == out->start_s)
            same++;
    }
    *propensity = (double)same / (SLOTS_PROPENSITY_DRAWS + 1);
    st = ST_OK;
out:
    work_fini(&w);
    return st;
}

void slots_id_format(int64_t start_s, char *buf, size_t cap)
{
    (void)snprintf(buf, cap, "slot-%lld", (long long)start_s);
}

bool slots_id_parse(const char *id, int64_t *start_s)
{
    if (id == NULL || strncmp(id, "slot-", 5) != 0)
        return false;
    const char *p = id + 5;
    int64_t v = 0;
    size_t n = 0;
    for (; *p; p++, n++) {
        if (*p < '0' || *p > '9' || n >= 12)
            return false;
        v = v * 10 + (*p - '0');
    }
    if (n == 0 || (n > 1 && id[5] == '0') || v > TZ_MAX_S)
        return false;
    *start_s = v;
    return true;
}
