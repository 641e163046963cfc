/* outcomes.c - outcomes at the checkpoint and the arm statistics they feed
 * (see outcomes.h). */
#include "outcomes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "jobs.h"
#include "learning_store.h"
#include "tz.h"
#include "util.h"

#define MS_PER_DAY 86400000LL

enum { KEY_CAP = 65, PROFILE_CAP = 64, TZ_CAP = 65 };

void learning_config_default(learning_config *c)
{
    memset(c, 0, sizeof *c);
    c->checkpoint_ms = MS_PER_DAY;
    c->no_data_wait_ms = MS_PER_DAY;
    c->lookback_ms = 30 * MS_PER_DAY;
    c->job_interval_ms = 60000;
    c->batch = 200;
    reward_options_default(&c->reward);
    bandit_config_default(&c->bandit);
}

void learning_config_from(const struct config *cfg, learning_config *c)
{
    learning_config_default(c);
    if (cfg == NULL)
        return;
    c->checkpoint_ms = cfg->learning_checkpoint_ms;
    c->bandit.half_life_days = (double)cfg->learning_half_life_days;
    c->reward.min_impressions = cfg->learning_min_impressions;
    c->job_interval_ms = cfg->learning_job_interval_ms;
}

/* ---------------------------------------------------------------- claimed posts */

/* A post being scored: what the claim query returned, then its counts. */
typedef struct claim {
    char post_id[37];
    char profile_id[PROFILE_CAP];
    int64_t publish_ms;
    int64_t checkpoint_ms;
    char ct[KEY_CAP], vs[KEY_CAP], tp[KEY_CAP], tier[KEY_CAP];
    char tz[TZ_CAP];
    bool simulated;
    bool has_obs;
    reward_counts counts;
} claim;

#define CLAIM_COLS                                                                       \
    "p.post_id::text, p.profile_id, (extract(epoch FROM p.publish_time) * 1000)::int8, " \
    "COALESCE(p.content_type, ''), COALESCE(p.voice_style, ''), COALESCE(p.topic, ''), " \
    "COALESCE(ro.tier, ''), pr.time_zone, COALESCE(d.simulated, false)"
#define CLAIM_FROM                                                                    \
    " FROM posts p JOIN profiles pr ON pr.profile_id = p.profile_id "                 \
    "LEFT JOIN decisions d ON d.decision_id = p.decision_id "                         \
    "LEFT JOIN reply_opportunities ro ON ro.opportunity_id = p.reply_opportunity_id " \
    "AND p.kind = 'reply' "
enum { CLAIM_NCOLS = 9 };

static void copy_text(char *dst, size_t cap, const char *src)
{
    (void)snprintf(dst, cap, "%s", src != NULL ? src : "");
}

static void claim_from_row(const db_res *r, int row, const learning_config *lc, claim *c)
{
    memset(c, 0, sizeof *c);
    copy_text(c->post_id, sizeof c->post_id, db_res_text(r, row, 0));
    copy_text(c->profile_id, sizeof c->profile_id, db_res_text(r, row, 1));
    c->publish_ms = db_res_int64(r, row, 2);
    c->checkpoint_ms = c->publish_ms + lc->checkpoint_ms;
    copy_text(c->ct, sizeof c->ct, db_res_text(r, row, 3));
    copy_text(c->vs, sizeof c->vs, db_res_text(r, row, 4));
    copy_text(c->tp, sizeof c->tp, db_res_text(r, row, 5));
    copy_text(c->tier, sizeof c->tier, db_res_text(r, row, 6));
    copy_text(c->tz, sizeof c->tz, db_res_text(r, row, 7));
    c->simulated = db_res_bool(r, row, 8);
}

/* Metric columns of engagement_observations in reward_metric order. */
#define OBS_METRICS                                                                           \
    "e.impressions, e.likes, e.replies, e.reposts, e.quotes, e.bookmarks, e.profile_visits, " \
    "e.link_clicks, e.follows"
/* The observation a checkpoint uses: the latest at or before it, else the
 * earliest after it; among equals, the one with the most metrics known. */
#define OBS_ORDER(cp)                                                                   \
    "(e.observed_at <= " cp ") DESC, abs(extract(epoch FROM e.observed_at - " cp ")), " \
    "num_nonnulls(" OBS_METRICS ") DESC, e.source"

static void counts_from_row(const db_res *r, int row, int col, reward_counts *c)
{
    memset(c, 0, sizeof *c);
    for (int m = 0; m < REWARD_METRIC_COUNT; m++)
        if (!db_res_null(r, row, col + m))
            reward_counts_set(c, (reward_metric)m, db_res_int64(r, row, col + m));
}

/* The counts of each claim at its checkpoint (has_obs false when none). */
static status fetch_counts(db_conn *db, claim *c, size_t n)
{
    lstore_arr ids, cps;
    db_params p;
    db_res *res = NULL;
    lstore_arr_init(&ids);
    lstore_arr_init(&cps);
    for (size_t i = 0; i < n; i++) {
        lstore_arr_text(&ids, c[i].post_id);
        lstore_arr_int(&cps, c[i].checkpoint_ms);
    }
    db_params_init(&p);
    db_param_text(&p, lstore_arr_end(&ids));
    db_param_text(&p, lstore_arr_end(&cps));
    status st = db_query(db, "outcome_counts",
                         "SELECT DISTINCT ON (e.post_id) e.post_id::text, " OBS_METRICS
                         " FROM unnest($1::uuid[], $2::int8[]) AS c(id, cp) "
                         "JOIN engagement_observations e ON e.post_id = c.id "
                         "ORDER BY e.post_id, " OBS_ORDER("to_timestamp(c.cp / 1000.0)"),
                         &p, &res);
    if (st == ST_OK) {
        for (int row = 0; row < db_res_rows(res); row++) {
            const char *id = db_res_text(res, row, 0);
            for (size_t i = 0; i < n; i++) {
                if (!c[i].has_obs && strcmp(c[i].post_id, id) == 0) {
                    counts_from_row(res, row, 1, &c[i].counts);
                    c[i].has_obs = true;
                    break;
                }
            }
        }
    }
    db_res_free(res);
    lstore_arr_fini(&cps);
    lstore_arr_fini(&ids);
    return st;
}

/* ---------------------------------------------------------------- baselines */

typedef struct base_row {
    char profile_id[PROFILE_CAP];
    int64_t checkpoint_ms;
    bool has_eng, has_fol;
    double eng, fol;
} base_row;

typedef struct base_set {
    base_row *rows;
    size_t n, cap;
} base_set;

static void base_push(base_set *b, const char *profile, int64_t cp_ms, bool has_eng, double eng,
                      bool has_fol, double fol)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->rows = xrealloc(b->rows, b->cap * sizeof *b->rows);
    }
    base_row *r = &b->rows[b->n++];
    copy_text(r->profile_id, sizeof r->profile_id, profile);
    r->checkpoint_ms = cp_ms;
    r->has_eng = has_eng;
    r->eng = eng;
    r->has_fol = has_fol;
    r->fol = fol;
}

/* Outcomes under version of the claims' profiles with a checkpoint in
 * [min - window, max), the values later baselines may use. */
static status fetch_baselines(db_conn *db, const char *version, const claim *c, size_t n,
                              int64_t window_ms, base_set *out)
{
    lstore_arr profiles;
    db_params p;
    db_res *res = NULL;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    lstore_arr_init(&profiles);
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(c[j].profile_id, c[i].profile_id) == 0;
        if (!seen)
            lstore_arr_text(&profiles, c[i].profile_id);
        lo = c[i].checkpoint_ms < lo ? c[i].checkpoint_ms : lo;
        hi = c[i].checkpoint_ms > hi ? c[i].checkpoint_ms : hi;
    }
    db_params_init(&p);
    db_param_text(&p, version);
    db_param_text(&p, lstore_arr_end(&profiles));
    db_param_int64(&p, lo - window_ms);
    db_param_int64(&p, hi);
    status st = db_query(
        db, "outcome_baselines",
        "SELECT p.profile_id, (extract(epoch FROM o.checkpoint_time) * 1000)::int8, "
        "o.engagement_rate, o.follows_per_1k FROM outcomes o JOIN posts p ON p.post_id = o.post_id "
        "WHERE o.reward_version = $1 AND p.profile_id = ANY($2::text[]) "
        "AND o.checkpoint_time >= to_timestamp($3::int8 / 1000.0) "
        "AND o.checkpoint_time < to_timestamp($4::int8 / 1000.0) "
        "AND (o.engagement_rate IS NOT NULL OR o.follows_per_1k IS NOT NULL)",
        &p, &res);
    if (st == ST_OK)
        for (int r = 0; r < db_res_rows(res); r++)
            base_push(out, db_res_text(res, r, 0), db_res_int64(res, r, 1), !db_res_null(res, r, 2),
                      db_res_double(res, r, 2), !db_res_null(res, r, 3), db_res_double(res, r, 3));
    db_res_free(res);
    lstore_arr_fini(&profiles);
    return st;
}

/* ---------------------------------------------------------------- arms */

/* One arm touched by this transaction. */
typedef struct arm_acc {
    char profile_id[PROFILE_CAP];
    const char *scope; /* bandit_scope_name (static) */
    char key[KEY_CAP];
    bandit_stats stats;
    int64_t pulls;
    bool found; /* its row was read */
} arm_acc;

typedef struct arm_add {
    size_t arm; /* index into the arm_acc table */
    double reward;
    int64_t at_ms;
} arm_add;

typedef struct arm_table {
    arm_acc *arms;
    size_t n, cap;
    arm_add *adds;
    size_t n_adds, cap_adds;
} arm_table;

static int arm_cmp(const char *p1, const char *s1, const char *k1, const char *p2, const char *s2,
                   const char *k2)
{
    int c = strcmp(p1, p2);
    if (c == 0)
        c = strcmp(s1, s2);
    return c != 0 ? c : strcmp(k1, k2);
}

static int arm_acc_cmp(const void *a, const void *b)
{
    const arm_acc *x = a, *y = b;
    return arm_cmp(x->profile_id, x->scope, x->key, y->profile_id, y->scope, y->key);
}

/* The index of the arm (profile, scope, key), added when new. */
static size_t arm_find(arm_table *t, const char *profile, const char *scope, const char *key)
{
    for (size_t i = 0; i < t->n; i++)
        if (arm_cmp(t->arms[i].profile_id, t->arms[i].scope, t->arms[i].key, profile, scope, key) ==
            0)
            return i;
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 32;
        t->arms = xrealloc(t->arms, t->cap * sizeof *t->arms);
    }
    arm_acc *a = &t->arms[t->n];
    memset(a, 0, sizeof *a);
    copy_text(a->profile_id, sizeof a->profile_id, profile);
    a->scope = scope;
    copy_text(a->key, sizeof a->key, key);
    return t->n++;
}

static void arm_queue(arm_table *t, const char *profile, bandit_scope scope, const char *key,
                      double reward, int64_t at_ms)
{
    if (key == NULL || key[0] == '\0')
        return;
    size_t i = arm_find(t, profile, bandit_scope_name(scope), key);
    if (t->n_adds == t->cap_adds) {
        t->cap_adds = t->cap_adds ? 2 * t->cap_adds : 64;
        t->adds = xrealloc(t->adds, t->cap_adds * sizeof *t->adds);
    }
    t->adds[t->n_adds++] = (arm_add){ i, reward, at_ms };
}

static void arm_table_fini(arm_table *t)
{
    free(t->arms);
    free(t->adds);
    memset(t, 0, sizeof *t);
}

/* The arms a learnable outcome of c feeds. */
static void queue_post_arms(arm_table *t, const claim *c, double reward)
{
    char how[16];
    const tz_zone *z = NULL;
    if (tz_get(c->tz, &z, NULL, 0) != ST_OK)
        z = tz_utc();
    int h = tz_hour_of_week(z, c->publish_ms / 1000);
    if (h < 0)
        h = 0;
    (void)snprintf(how, sizeof how, "%d", h);
    arm_queue(t, c->profile_id, BANDIT_SCOPE_CONTENT_TYPE, c->ct, reward, c->checkpoint_ms);
    arm_queue(t, c->profile_id, BANDIT_SCOPE_VOICE_STYLE, c->vs, reward, c->checkpoint_ms);
    arm_queue(t, c->profile_id, BANDIT_SCOPE_TOPIC, c->tp, reward, c->checkpoint_ms);
    arm_queue(t, c->profile_id, BANDIT_SCOPE_HOUR_OF_WEEK, how, reward, c->checkpoint_ms);
    arm_queue(t, c->profile_id, BANDIT_SCOPE_REPLY_TIER, c->tier, reward, c->checkpoint_ms);
}

/* Sorts the arms (the global lock order) and remaps the queued adds. */
static void arm_table_sort(arm_table *t)
{
    if (t->n < 2)
        return;
    /* remember each arm's identity through its old index */
    size_t *old_of = xmalloc(t->n * sizeof *old_of);
    arm_acc *copy = xmalloc(t->n * sizeof *copy);
    memcpy(copy, t->arms, t->n * sizeof *copy);
    qsort(t->arms, t->n, sizeof *t->arms, arm_acc_cmp);
    for (size_t i = 0; i < t->n; i++) {
        for (size_t j = 0; j < t->n; j++) {
            if (arm_acc_cmp(&copy[j], &t->arms[i]) == 0) {
                old_of[j] = i;
                break;
            }
        }
    }
    for (size_t k = 0; k < t->n_adds; k++)
        t->adds[k].arm = old_of[t->adds[k].arm];
    free(copy);
    free(old_of);
}

/* Creates missing rows and locks every arm of t (sorted) under version,
 * reading their statistics. */
static status arms_lock(db_conn *db, const char *version, arm_table *t)
{
    lstore_arr pa, sa, ka;
    db_params p;
    db_res *res = NULL;
    lstore_arr_init(&pa);
    lstore_arr_init(&sa);
    lstore_arr_init(&ka);
    for (size_t i = 0; i < t->n; i++) {
        lstore_arr_text(&pa, t->arms[i].profile_id);
        lstore_arr_text(&sa, t->arms[i].scope);
        lstore_arr_text(&ka, t->arms[i].key);
    }
    db_params_init(&p);
    db_param_text(&p, version);
    db_param_text(&p, lstore_arr_end(&pa));
    db_param_text(&p, lstore_arr_end(&sa));
    db_param_text(&p, lstore_arr_end(&ka));
    /* ON CONFLICT DO UPDATE locks existing rows in input order; the no-op
     * assignment makes RETURNING report them too. */
    status st = db_query(
        db, "arm_lock",
        "INSERT INTO arm_stats AS a (profile_id, scope, arm_key, reward_version) "
        "SELECT u.p, u.s, u.k, $1 FROM unnest($2::text[], $3::text[], $4::text[]) "
        "WITH ORDINALITY AS u(p, s, k, i) ORDER BY u.i "
        "ON CONFLICT (profile_id, scope, arm_key, reward_version) DO UPDATE SET pulls = a.pulls "
        "RETURNING a.profile_id, a.scope, a.arm_key, a.n, a.sum_reward, a.sum_sq, "
        "a.outcome_count, (extract(epoch FROM a.updated_at) * 1000)::int8, a.pulls",
        &p, &res);
    if (st == ST_OK) {
        for (int r = 0; r < db_res_rows(res); r++) {
            const char *pr = db_res_text(res, r, 0), *sc = db_res_text(res, r, 1),
                       *k = db_res_text(res, r, 2);
            for (size_t i = 0; i < t->n; i++) {
                arm_acc *a = &t->arms[i];
                if (a->found || arm_cmp(a->profile_id, a->scope, a->key, pr, sc, k) != 0)
                    continue;
                a->stats.n = db_res_double(res, r, 3);
                a->stats.sum = db_res_double(res, r, 4);
                a->stats.sum_sq = db_res_double(res, r, 5);
                a->stats.count = db_res_int64(res, r, 6);
                a->stats.updated_ms = db_res_int64(res, r, 7);
                a->pulls = db_res_int64(res, r, 8);
                if (!bandit_stats_valid(&a->stats))
                    memset(&a->stats, 0, sizeof a->stats); /* a broken row restarts */
                a->found = true;
                break;
            }
        }
    }
    db_res_free(res);
    lstore_arr_fini(&ka);
    lstore_arr_fini(&sa);
    lstore_arr_fini(&pa);
    return st;
}

/* Writes the statistics of every arm of t under version (insert or
 * overwrite; pulls only on insert when with_pulls). */
static status arms_write(db_conn *db, const char *version, const arm_table *t, bool insert)
{
    lstore_arr pa, sa, ka, na, su, sq, co, up, pu;
    db_params p;
    lstore_arr_init(&pa);
    lstore_arr_init(&sa);
    lstore_arr_init(&ka);
    lstore_arr_init(&na);
    lstore_arr_init(&su);
    lstore_arr_init(&sq);
    lstore_arr_init(&co);
    lstore_arr_init(&up);
    lstore_arr_init(&pu);
    for (size_t i = 0; i < t->n; i++) {
        const arm_acc *a = &t->arms[i];
        lstore_arr_text(&pa, a->profile_id);
        lstore_arr_text(&sa, a->scope);
        lstore_arr_text(&ka, a->key);
        lstore_arr_double(&na, a->stats.n);
        lstore_arr_double(&su, a->stats.sum);
        lstore_arr_double(&sq, a->stats.sum_sq);
        lstore_arr_int(&co, a->stats.count);
        lstore_arr_int(&up, a->stats.count > 0 ? a->stats.updated_ms : now_real_ms());
        lstore_arr_int(&pu, a->pulls);
    }
    db_params_init(&p);
    db_param_text(&p, version);
    db_param_text(&p, lstore_arr_end(&pa));
    db_param_text(&p, lstore_arr_end(&sa));
    db_param_text(&p, lstore_arr_end(&ka));
    db_param_text(&p, lstore_arr_end(&na));
    db_param_text(&p, lstore_arr_end(&su));
    db_param_text(&p, lstore_arr_end(&sq));
    db_param_text(&p, lstore_arr_end(&co));
    db_param_text(&p, lstore_arr_end(&up));
    status st;
    if (insert) {
        db_param_text(&p, lstore_arr_end(&pu));
        st = db_query(db, "arm_insert",
                      "INSERT INTO arm_stats (profile_id, scope, arm_key, reward_version, n, "
                      "sum_reward, sum_sq, outcome_count, updated_at, pulls) "
                      "SELECT u.p, u.s, u.k, $1, u.n, u.su, u.sq, u.c, "
                      "to_timestamp(u.t / 1000.0), u.pu FROM unnest($2::text[], $3::text[], "
                      "$4::text[], $5::float8[], $6::float8[], $7::float8[], $8::int8[], "
                      "$9::int8[], $10::int8[]) AS u(p, s, k, n, su, sq, c, t, pu)",
                      &p, NULL);
    } else {
        st = db_query(db, "arm_update",
                      "UPDATE arm_stats a SET n = u.n, sum_reward = u.su, sum_sq = u.sq, "
                      "outcome_count = u.c, updated_at = to_timestamp(u.t / 1000.0) "
                      "FROM unnest($2::text[], $3::text[], $4::text[], $5::float8[], "
                      "$6::float8[], $7::float8[], $8::int8[], $9::int8[]) "
                      "AS u(p, s, k, n, su, sq, c, t) WHERE a.profile_id = u.p "
                      "AND a.scope = u.s AND a.arm_key = u.k AND a.reward_version = $1",
                      &p, NULL);
    }
    lstore_arr_fini(&pu);
    lstore_arr_fini(&up);
    lstore_arr_fini(&co);
    lstore_arr_fini(&sq);
    lstore_arr_fini(&su);
    lstore_arr_fini(&na);
    lstore_arr_fini(&ka);
    lstore_arr_fini(&sa);
    lstore_arr_fini(&pa);
    return st;
}

/* Folds the queued adds into the arms, oldest first (the result does not
 * depend on the order, see bandit_stats_add, but rounding is stabler). */
static int add_cmp(const void *a, const void *b)
{
    const arm_add *x = a, *y = b;
    if (x->at_ms != y->at_ms)
        return x->at_ms < y->at_ms ? -1 : 1;
    return x->arm < y->arm ? -1 : x->arm > y->arm;
}

static void arms_fold(arm_table *t, const bandit_config *bc)
{
    if (t->n_adds > 1)
        qsort(t->adds, t->n_adds, sizeof *t->adds, add_cmp);
    for (size_t k = 0; k < t->n_adds; k++)
        bandit_stats_add(&t->arms[t->adds[k].arm].stats, t->adds[k].reward, t->adds[k].at_ms, bc);
}

/* Bumps the learning cache version of each profile (sorted, unique). */
static status bump_profiles(db_conn *db, char profiles[][PROFILE_CAP], size_t n)
{
    lstore_arr sa;
    db_params p;
    lstore_arr_init(&sa);
    for (size_t i = 0; i < n; i++) {
        char scope[PROFILE_CAP + 16];
        (void)snprintf(scope, sizeof scope, LEARNING_VERSION_PREFIX "%s", profiles[i]);
        lstore_arr_text(&sa, scope);
    }
    db_params_init(&p);
    db_param_text(&p, lstore_arr_end(&sa));
    status st = db_query(db, "learning_bump",
                         "INSERT INTO cache_versions (scope, version) "
                         "SELECT u.s, 1 FROM unnest($1::text[]) WITH ORDINALITY AS u(s, i) "
                         "ORDER BY u.i ON CONFLICT (scope) DO UPDATE "
                         "SET version = cache_versions.version + 1, updated_at = now()",
                         &p, NULL);
    lstore_arr_fini(&sa);
    return st;
}

static int profile_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* The sorted unique profiles of claims c[0..n) into out (n entries). */
static size_t unique_profiles(const claim *c, size_t n, char out[][PROFILE_CAP])
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        copy_text(out[m++], PROFILE_CAP, c[i].profile_id);
    qsort(out, m, PROFILE_CAP, profile_cmp);
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        if (k == 0 || strcmp(out[k - 1], out[i]) != 0)
            memmove(out[k++], out[i], PROFILE_CAP);
    return k;
}

/* ---------------------------------------------------------------- outcome rows */

typedef struct out_rows {
    lstore_arr id, rw, er, fp, bl, le, why, cp;
    size_t n;
} out_rows;

static void out_rows_init(out_rows *o)
{
    memset(o, 0, sizeof *o);
    lstore_arr_init(&o->id);
    lstore_arr_init(&o->rw);
    lstore_arr_init(&o->er);
    lstore_arr_init(&o->fp);
    lstore_arr_init(&o->bl);
    lstore_arr_init(&o->le);
    lstore_arr_init(&o->why);
    lstore_arr_init(&o->cp);
}

static void out_rows_fini(out_rows *o)
{
    lstore_arr_fini(&o->id);
    lstore_arr_fini(&o->rw);
    lstore_arr_fini(&o->er);
    lstore_arr_fini(&o->fp);
    lstore_arr_fini(&o->bl);
    lstore_arr_fini(&o->le);
    lstore_arr_fini(&o->why);
    lstore_arr_fini(&o->cp);
}

static void out_rows_add(out_rows *o, const char *post_id, const reward_outcome *r, int64_t cp_ms)
{
    lstore_arr_text(&o->id, post_id);
    if (r->has_reward)
        lstore_arr_double(&o->rw, r->reward);
    else
        lstore_arr_null(&o->rw);
    if (r->has_engagement_rate)
        lstore_arr_double(&o->er, r->engagement_rate);
    else
        lstore_arr_null(&o->er);
    if (r->has_follows_per_1k)
        lstore_arr_double(&o->fp, r->follows_per_1k);
    else
        lstore_arr_null(&o->fp);
    if (r->has_baseline)
        lstore_arr_double(&o->bl, r->baseline);
    else
        lstore_arr_null(&o->bl);
    lstore_arr_bool(&o->le, r->learnable);
    lstore_arr_text(&o->why, r->learnable ? "" : r->reason);
    lstore_arr_int(&o->cp, cp_ms);
    o->n++;
}

static status out_rows_write(db_conn *db, const char *version, out_rows *o)
{
    db_params p;
    if (o->n == 0)
        return ST_OK;
    db_params_init(&p);
    db_param_text(&p, version);
    db_param_text(&p, lstore_arr_end(&o->id));
    db_param_text(&p, lstore_arr_end(&o->rw));
    db_param_text(&p, lstore_arr_end(&o->er));
    db_param_text(&p, lstore_arr_end(&o->fp));
    db_param_text(&p, lstore_arr_end(&o->bl));
    db_param_text(&p, lstore_arr_end(&o->le));
    db_param_text(&p, lstore_arr_end(&o->why));
    db_param_text(&p, lstore_arr_end(&o->cp));
    return db_query(db, "outcome_insert",
                    "INSERT INTO outcomes (post_id, reward_version, reward, engagement_rate, "
                    "follows_per_1k, baseline, learnable, learnable_reason, checkpoint_time) "
                    "SELECT u.id, $1, u.rw, u.er, u.fp, u.bl, u.le, left(u.why, 500), "
                    "to_timestamp(u.cp / 1000.0) FROM unnest($2::uuid[], $3::float8[], "
                    "$4::float8[], $5::float8[], $6::float8[], $7::bool[], $8::text[], "
                    "$9::int8[]) AS u(id, rw, er, fp, bl, le, why, cp) "
                    "ON CONFLICT (post_id, reward_version) DO UPDATE SET reward = EXCLUDED.reward, "
                    "engagement_rate = EXCLUDED.engagement_rate, "
                    "follows_per_1k = EXCLUDED.follows_per_1k, baseline = EXCLUDED.baseline, "
                    "learnable = EXCLUDED.learnable, learnable_reason = EXCLUDED.learnable_reason, "
                    "checkpoint_time = EXCLUDED.checkpoint_time, computed_at = now()",
                    &p, NULL);
}

/* An outcome that is recorded but never learnt from, for a reason of ours. */
static void outcome_unlearnable(reward_outcome *o, const char *why)
{
    memset(o, 0, sizeof *o);
    (void)snprintf(o->reason, sizeof o->reason, "%s", why);
}

/* ---------------------------------------------------------------- scoring */

static status take_shared_lock(db_conn *db, bool exclusive)
{
    db_params p;
    db_params_init(&p);
    db_param_int64(&p, LEARNING_LOCK_KEY);
    return db_query(db, exclusive ? "learning_lock" : "learning_lock_shared",
                    exclusive ? "SELECT pg_advisory_xact_lock($1::int8)"
                              : "SELECT pg_advisory_xact_lock_shared($1::int8)",
                    &p, NULL);
}

/* Scores the claims c[0..n) (in checkpoint order) under version. */
static status score_claims(db_conn *db, const learning_config *lc, const reward_version *rv,
                           const char *version, claim *c, size_t n, int64_t now_ms,
                           outcomes_result *r)
{
    status st;
    base_set base = { 0 };
    arm_table arms = { 0 };
    out_rows rows;
    double *eh = NULL, *fh = NULL;
    char(*profiles)[PROFILE_CAP] = NULL;
    int64_t window_ms = (int64_t)lc->reward.baseline_days * MS_PER_DAY;

    out_rows_init(&rows);
    if (n == 0)
        return ST_OK;
    st = fetch_counts(db, c, n);
    if (st == ST_OK)
        st = fetch_baselines(db, version, c, n, window_ms, &base);
    if (st != ST_OK)
        goto out;

    size_t scored = 0;
    for (size_t i = 0; i < n; i++) {
        claim *p = &c[i];
        reward_outcome o;
        if (!p->has_obs && now_ms < p->checkpoint_ms + lc->no_data_wait_ms) {
            r->skipped++; /* an observation may still come */
            continue;
        }
        if (p->simulated) {
            outcome_unlearnable(&o, "simulated decision: never learnt from");
        } else if (!p->has_obs) {
            outcome_unlearnable(&o, "no engagement observed");
        } else {
            size_t ne = 0, nf = 0;
            eh = xrealloc(eh, (base.n + 1) * sizeof *eh);
            fh = xrealloc(fh, (base.n + 1) * sizeof *fh);
            for (size_t k = 0; k < base.n; k++) {
                const base_row *b = &base.rows[k];
                if (strcmp(b->profile_id, p->profile_id) != 0 ||
                    b->checkpoint_ms < p->checkpoint_ms - window_ms ||
                    b->checkpoint_ms >= p->checkpoint_ms)
                    continue;
                if (b->has_eng)
                    eh[ne++] = b->eng;
                if (b->has_fol)
                    fh[nf++] = b->fol;
            }
            reward_score(rv, &lc->reward, &p->counts, eh, ne, fh, nf, &o);
        }
        /* later posts of this batch see this one in their baseline */
        if (o.has_engagement_rate || o.has_follows_per_1k)
            base_push(&base, p->profile_id, p->checkpoint_ms, o.has_engagement_rate,
                      o.engagement_rate, o.has_follows_per_1k, o.follows_per_1k);
        out_rows_add(&rows, p->post_id, &o, p->checkpoint_ms);
        if (o.learnable) {
            queue_post_arms(&arms, p, o.reward);
            r->learnable++;
        }
        if (scored != i)
            c[scored] = *p; /* keep the scored ones for the version bump */
        scored++;
    }
    r->scored += (int64_t)scored;
    st = out_rows_write(db, version, &rows);
    if (st != ST_OK || scored == 0)
        goto out;
    if (arms.n > 0) {
        arm_table_sort(&arms);
        st = arms_lock(db, version, &arms);
        if (st == ST_OK) {
            arms_fold(&arms, &lc->bandit);
            st = arms_write(db, version, &arms, false);
        }
        if (st != ST_OK)
            goto out;
        r->arms += (int64_t)arms.n;
    }
    profiles = xmalloc(scored * sizeof *profiles);
    size_t np = unique_profiles(c, scored, profiles);
    st = bump_profiles(db, profiles, np);
out:
    free(profiles);
    free(fh);
    free(eh);
    arm_table_fini(&arms);
    free(base.rows);
    out_rows_fini(&rows);
    return st;
}

/* Claims with the query's rows; *claims (malloc'd) and *n. */
static status claim_rows(db_conn *db, const learning_config *lc, const char *name, const char *sql,
                         const db_params *p, claim **claims, size_t *n)
{
    db_res *res = NULL;
    *claims = NULL;
    *n = 0;
    status st = db_query(db, name, sql, p, &res);
    if (st == ST_OK && db_res_rows(res) > 0) {
        size_t m = (size_t)db_res_rows(res);
        *claims = xcalloc(m, sizeof **claims);
        for (size_t i = 0; i < m; i++)
            claim_from_row(res, (int)i, lc, &(*claims)[i]);
        *n = m;
    }
    db_res_free(res);
    return st;
}

static status begin_scoring(db_conn *db, const reward_version **rv, char *version, size_t cap)
{
    status st = take_shared_lock(db, false);
    if (st == ST_OK)
        st = lstore_current_version_tx(db, version, cap);
    if (st != ST_OK)
        return st;
    *rv = version[0] != '\0' ? reward_version_find(version) : NULL;
    return ST_OK;
}

status outcomes_score_posts_tx(db_conn *db, const learning_config *lc, char *const *posts, size_t n,
                               int64_t now_ms, outcomes_result *r)
{
    char version[80];
    const reward_version *rv = NULL;
    claim *c = NULL;
    size_t nc = 0;
    if (n == 0)
        return ST_OK;
    status st = begin_scoring(db, &rv, version, sizeof version);
    if (st != ST_OK || rv == NULL)
        return st; /* no version this binary can score: nothing to do */

    lstore_arr ids;
    db_params p;
    lstore_arr_init(&ids);
    for (size_t i = 0; i < n; i++)
        lstore_arr_text(&ids, posts[i]);
    db_params_init(&p);
    db_param_text(&p, lstore_arr_end(&ids));
    db_param_text(&p, version);
    db_param_int64(&p, now_ms - lc->checkpoint_ms);
    st = claim_rows(db, lc, "outcome_claim_posts",
                    "SELECT " CLAIM_COLS CLAIM_FROM
                    "WHERE p.post_id = ANY($1::uuid[]) AND p.state = 'published' "
                    "AND p.publish_time <= to_timestamp($3::int8 / 1000.0) "
                    "AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.post_id = p.post_id "
                    "AND o.reward_version = $2) "
                    "ORDER BY p.publish_time, p.post_id FOR NO KEY UPDATE OF p SKIP LOCKED",
                    &p, &c, &nc);
    lstore_arr_fini(&ids);
    if (st == ST_OK)
        st = score_claims(db, lc, rv, version, c, nc, now_ms, r);
    free(c);
    return st;
}

status outcomes_score_due_tx(db_conn *db, const learning_config *lc, int64_t now_ms,
                             outcomes_result *r, bool *more)
{
    char version[80];
    const reward_version *rv = NULL;
    claim *c = NULL;
    size_t nc = 0;
    *more = false;
    status st = begin_scoring(db, &rv, version, sizeof version);
    if (st != ST_OK || rv == NULL)
        return st;
    db_params p;
    db_params_init(&p);
    db_param_text(&p, version);
    db_param_int64(&p, now_ms - lc->checkpoint_ms);                   /* latest publish time */
    db_param_int64(&p, now_ms - lc->checkpoint_ms - lc->lookback_ms); /* earliest */
    db_param_int64(&p, now_ms - lc->checkpoint_ms - lc->no_data_wait_ms);
    db_param_int64(&p, lc->batch > 0 ? lc->batch : 200);
    /* Posts without any observation wait until no_data_wait_ms is over, so
     * they never fill a batch with nothing to score. */
    st = claim_rows(db, lc, "outcome_claim_due",
                    "SELECT " CLAIM_COLS CLAIM_FROM "WHERE p.state = 'published' "
                    "AND p.publish_time <= to_timestamp($2::int8 / 1000.0) "
                    "AND p.publish_time > to_timestamp($3::int8 / 1000.0) "
                    "AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.post_id = p.post_id "
                    "AND o.reward_version = $1) "
                    "AND (p.publish_time <= to_timestamp($4::int8 / 1000.0) OR EXISTS "
                    "(SELECT 1 FROM engagement_observations e WHERE e.post_id = p.post_id)) "
                    "ORDER BY p.publish_time, p.post_id LIMIT $5::int "
                    "FOR NO KEY UPDATE OF p SKIP LOCKED",
                    &p, &c, &nc);
    if (st == ST_OK) {
        *more = nc >= (size_t)(lc->batch > 0 ? lc->batch : 200);
        st = score_claims(db, lc, rv, version, c, nc, now_ms, r);
    }
    free(c);
    return st;
}

status outcomes_job(db_conn *db, int64_t budget_ms, char *note, size_t cap, void *user)
{
    const learning_config *lc = user;
    outcomes_result r = { 0 };
    int64_t until = now_mono_ms() + budget_ms;
    status st = ST_OK;
    for (int round = 0; round < 1000; round++) {
        int64_t left = until - now_mono_ms();
        if (left <= 0)
            break;
        bool more = false;
        st = db_begin(db, left);
        if (st == ST_OK)
            st = outcomes_score_due_tx(db, lc, now_real_ms(), &r, &more);
        if (st == ST_OK)
            st = db_commit(db);
        else
            db_rollback(db);
        if (st != ST_OK || !more)
            break;
    }
    if (st != ST_OK)
        (void)snprintf(note, cap, "scored %lld before failing: %s", (long long)r.scored,
                       db_errmsg(db));
    else if (r.scored > 0)
        (void)snprintf(note, cap, "scored %lld outcomes (%lld learnable)", (long long)r.scored,
                       (long long)r.learnable);
    return st;
}

static learning_config job_config; /* written once, before the runner starts */

void outcomes_jobs_add(struct jobs *j, const struct config *cfg)
{
    learning_config_from(cfg, &job_config);
    int64_t lock_ms = job_config.job_interval_ms * 5;
    if (lock_ms < 30000)
        lock_ms = 30000;
    jobs_add(j, "learning_outcomes", job_config.job_interval_ms, lock_ms, outcomes_job,
             &job_config);
}

/* ---------------------------------------------------------------- recompute */

static status recompute_posts(db_conn *db, const learning_config *lc, const char *profile_id,
                              int64_t now_ms, claim **claims, size_t *n)
{
    db_params p;
    db_res *res = NULL;
    *claims = NULL;
    *n = 0;
    db_params_init(&p);
    db_param_text(&p, profile_id != NULL && profile_id[0] != '\0' ? profile_id : NULL);
    db_param_int64(&p, now_ms - lc->checkpoint_ms);
    db_param_int64(&p, lc->checkpoint_ms);
    status st = db_query(
        db, "recompute_posts",
        "SELECT " CLAIM_COLS ", e.post_id IS NOT NULL, " OBS_METRICS CLAIM_FROM
        "LEFT JOIN LATERAL (SELECT * FROM engagement_observations e WHERE e.post_id = p.post_id "
        "ORDER BY " OBS_ORDER(
            "(p.publish_time + $3::int8 * interval '1 millisecond')") " LIMIT 1) e ON true "
                                                                      "WHERE p.state = 'published' "
                                                                      "AND p.publish_time <= "
                                                                      "to_timestamp($2::int8 / "
                                                                      "1000.0) "
                                                                      "AND ($1::text IS NULL OR "
                                                                      "p.profile_id = $1) "
                                                                      "ORDER BY p.profile_id, "
                                                                      "p.publish_time, p.post_id",
        &p, &res);
    if (st == ST_OK && db_res_rows(res) > 0) {
        size_t m = (size_t)db_res_rows(res);
        claim *c = xcalloc(m, sizeof *c);
        for (size_t i = 0; i < m; i++) {
            claim_from_row(res, (int)i, lc, &c[i]);
            c[i].has_obs = db_res_bool(res, (int)i, CLAIM_NCOLS);
            if (c[i].has_obs)
                counts_from_row(res, (int)i, CLAIM_NCOLS + 1, &c[i].counts);
        }
        *claims = c;
        *n = m;
    }
    db_res_free(res);
    return st;
}

/* Pull counters to carry into the rebuilt arms: those of version when it
 * has rows, else those of previous. */
static status recompute_pulls(db_conn *db, const char *version, const char *previous,
                              const char *profile_id, arm_table *t)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, version);
    db_param_text(&p, previous);
    db_param_text(&p, profile_id != NULL && profile_id[0] != '\0' ? profile_id : NULL);
    status st = db_query(db, "recompute_pulls",
                         "SELECT DISTINCT ON (profile_id, scope, arm_key) profile_id, scope, "
                         "arm_key, pulls FROM arm_stats WHERE reward_version IN ($1, $2) "
                         "AND ($3::text IS NULL OR profile_id = $3) "
                         "ORDER BY profile_id, scope, arm_key, (reward_version = $1) DESC",
                         &p, &res);
    for (int r = 0; st == ST_OK && r < db_res_rows(res); r++) {
        bandit_scope sc;
        if (db_res_int64(res, r, 3) <= 0 || !bandit_scope_parse(db_res_text(res, r, 1), &sc))
            continue;
        size_t i =
            arm_find(t, db_res_text(res, r, 0), bandit_scope_name(sc), db_res_text(res, r, 2));
        t->arms[i].pulls = db_res_int64(res, r, 3);
    }
    db_res_free(res);
    return st;
}

status outcomes_recompute_tx(db_conn *db, const learning_config *lc, const reward_version *version,
                             const char *profile_id, int64_t now_ms, char *prev, size_t prev_cap,
                             outcomes_result *r, char *err, size_t errcap)
{
    claim *c = NULL;
    size_t n = 0;
    reward_post *posts = NULL;
    reward_outcome *outs = NULL;
    arm_table arms = { 0 };
    out_rows rows;
    bool one = profile_id != NULL && profile_id[0] != '\0';
    db_params p;

    out_rows_init(&rows);
    prev[0] = '\0';
    err[0] = '\0';
    status st = take_shared_lock(db, true);
    if (st == ST_OK) {
        db_params_init(&p);
        db_param_text(&p, version->name);
        db_param_text(&p, version->description);
        st = db_query(db, "reward_version_ensure",
                      "INSERT INTO reward_versions (reward_version, description) "
                      "VALUES ($1, left($2, 1000)) ON CONFLICT DO NOTHING",
                      &p, NULL);
    }
    if (st == ST_OK)
        st = lstore_current_version_tx(db, prev, prev_cap);
    if (st != ST_OK)
        goto out;
    if (one && strcmp(prev, version->name) != 0) {
        (void)snprintf(err, errcap,
                       "reward version %s is not the active one (%s): re-score every profile "
                       "(empty profile_id) to switch versions",
                       version->name, prev[0] ? prev : "none");
        st = ST_FAILED_PRECONDITION;
        goto out;
    }
    st = recompute_posts(db, lc, profile_id, now_ms, &c, &n);
    if (st == ST_OK)
        st = recompute_pulls(db, version->name, prev, profile_id, &arms);
    if (st != ST_OK)
        goto out;

    posts = xcalloc(n + 1, sizeof *posts);
    outs = xcalloc(n + 1, sizeof *outs);
    /* one profile at a time: its posts are contiguous, in checkpoint order */
    for (size_t lo = 0; lo < n;) {
        size_t hi = lo;
        while (hi < n && strcmp(c[hi].profile_id, c[lo].profile_id) == 0)
            hi++;
        for (size_t i = lo; i < hi; i++) {
            posts[i].checkpoint_ms = c[i].checkpoint_ms;
            /* a simulated post's counts must not shape anyone's baseline */
            if (c[i].has_obs && !c[i].simulated)
                posts[i].counts = c[i].counts;
        }
        st = reward_recompute(version, &lc->reward, posts + lo, hi - lo, outs + lo, err, errcap);
        if (st != ST_OK)
            goto out;
        lo = hi;
    }
    for (size_t i = 0; i < n; i++) {
        if (!c[i].has_obs && now_ms < c[i].checkpoint_ms + lc->no_data_wait_ms) {
            r->skipped++;
            continue;
        }
        if (c[i].simulated)
            outcome_unlearnable(&outs[i], "simulated decision: never learnt from");
        else if (!c[i].has_obs)
            outcome_unlearnable(&outs[i], "no engagement observed");
        out_rows_add(&rows, c[i].post_id, &outs[i], c[i].checkpoint_ms);
        r->scored++;
        if (outs[i].learnable) {
            queue_post_arms(&arms, &c[i], outs[i].reward);
            r->learnable++;
        }
    }

    db_params_init(&p);
    db_param_text(&p, version->name);
    db_param_text(&p, one ? profile_id : NULL);
    st = db_query(db, "recompute_clear_outcomes",
                  "DELETE FROM outcomes o USING posts p WHERE o.post_id = p.post_id "
                  "AND o.reward_version = $1 AND ($2::text IS NULL OR p.profile_id = $2)",
                  &p, NULL);
    if (st == ST_OK)
        st = out_rows_write(db, version->name, &rows);
    if (st == ST_OK)
        st = db_query(db, "recompute_clear_arms",
                      "DELETE FROM arm_stats WHERE reward_version = $1 "
                      "AND ($2::text IS NULL OR profile_id = $2)",
                      &p, NULL);
    if (st != ST_OK)
        goto out;
    arm_table_sort(&arms);
    arms_fold(&arms, &lc->bandit);
    if (arms.n > 0) {
        st = arms_write(db, version->name, &arms, true);
        if (st != ST_OK)
            goto out;
    }
    r->arms = (int64_t)arms.n;

    db_params_init(&p);
    db_param_text(&p, version->name);
    st = db_query(db, "reward_version_unset",
                  "UPDATE reward_versions SET is_current = false "
                  "WHERE is_current AND reward_version <> $1",
                  &p, NULL);
    if (st == ST_OK)
        st = db_query(db, "reward_version_set",
                      "UPDATE reward_versions SET is_current = true WHERE reward_version = $1 "
                      "AND NOT is_current",
                      &p, NULL);
    if (st == ST_OK) {
        db_params_init(&p);
        db_param_text(&p, one ? profile_id : NULL);
        st = db_query(db, "recompute_bump",
                      "INSERT INTO cache_versions (scope, version) "
                      "SELECT '" LEARNING_VERSION_PREFIX "' || profile_id, 1 FROM profiles "
                      "WHERE $1::text IS NULL OR profile_id = $1 ORDER BY 1 "
                      "ON CONFLICT (scope) DO UPDATE SET version = cache_versions.version + 1, "
                      "updated_at = now()",
                      &p, NULL);
    }
out:
    arm_table_fini(&arms);
    out_rows_fini(&rows);
    free(outs);
    free(posts);
    free(c);
    return st;
}
