/* learning_store.c - the SQL of LearningService (see learning_store.h). */
#include "learning_store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outcomes.h"

/* ---------------------------------------------------------------- array literals */

void lstore_arr_init(lstore_arr *a)
{
    strbuf_init(&a->b);
    a->n = 0;
    a->closed = false;
}

void lstore_arr_fini(lstore_arr *a)
{
    strbuf_fini(&a->b);
    a->n = 0;
}

static void arr_sep(lstore_arr *a)
{
    strbuf_putc(&a->b, a->n++ == 0 ? '{' : ',');
}

void lstore_arr_text(lstore_arr *a, const char *s)
{
    if (s == NULL) {
        lstore_arr_null(a);
        return;
    }
    arr_sep(a);
    strbuf_putc(&a->b, '"');
    for (const char *c = s; *c; c++) {
        if (*c == '"' || *c == '\\')
            strbuf_putc(&a->b, '\\');
        strbuf_putc(&a->b, *c);
    }
    strbuf_putc(&a->b, '"');
}

void lstore_arr_int(lstore_arr *a, int64_t v)
{
    char num[32];
    arr_sep(a);
    (void)snprintf(num, sizeof num, "%lld", (long long)v);
    strbuf_puts(&a->b, num);
}

void lstore_arr_double(lstore_arr *a, double v)
{
    char num[40];
    if (!isfinite(v)) {
        lstore_arr_null(a);
        return;
    }
    arr_sep(a);
    (void)snprintf(num, sizeof num, "%.17g", v);
    strbuf_puts(&a->b, num);
}

void lstore_arr_bool(lstore_arr *a, bool v)
{
    arr_sep(a);
    strbuf_putc(&a->b, v ? 't' : 'f');
}

void lstore_arr_null(lstore_arr *a)
{
    arr_sep(a);
    strbuf_puts(&a->b, "NULL");
}

const char *lstore_arr_end(lstore_arr *a)
{
    if (!a->closed) {
        strbuf_puts(&a->b, a->n == 0 ? "{}" : "}");
        a->closed = true;
    }
    return a->b.data;
}

static char *adup(arena *a, const char *s)
{
    char *d = arena_strdup(a, s != NULL ? s : "");
    return d != NULL ? d : (char *)"";
}

/* ---------------------------------------------------------------- versions, profiles */

status lstore_current_version_tx(db_conn *db, char *buf, size_t cap)
{
    db_res *res = NULL;
    status st = db_query(db, "reward_version_current",
                         "SELECT reward_version FROM reward_versions WHERE is_current", NULL, &res);
    buf[0] = '\0';
    if (st == ST_OK && db_res_rows(res) > 0)
        (void)snprintf(buf, cap, "%s", db_res_text(res, 0, 0));
    db_res_free(res);
    return st;
}

status lstore_learning_version(db_conn *db, int64_t budget_ms, const char *profile_id,
                               int64_t *version, int64_t *vtime_us)
{
    db_params p;
    db_res *res = NULL;
    *version = 0;
    *vtime_us = 0;
    char scope[128];
    (void)snprintf(scope, sizeof scope, LEARNING_VERSION_PREFIX "%s", profile_id);
    db_params_init(&p);
    db_param_text(&p, profile_id);
    db_param_text(&p, scope);
    status st = db_run(db, budget_ms, "learning_version",
                       "SELECT v.version, (extract(epoch FROM v.updated_at) * 1000000)::int8 "
                       "FROM profiles p LEFT JOIN cache_versions v ON v.scope = $2 "
                       "WHERE p.profile_id = $1",
                       &p, &res);
    if (st == ST_OK && db_res_rows(res) == 0)
        st = ST_NOT_FOUND;
    if (st == ST_OK) {
        *version = db_res_int64(res, 0, 0);
        *vtime_us = db_res_int64(res, 0, 1);
    }
    db_res_free(res);
    return st;
}

status lstore_learning_bump_tx(db_conn *db, const char *profile_id)
{
    char scope[128];
    int64_t v = 0;
    (void)snprintf(scope, sizeof scope, LEARNING_VERSION_PREFIX "%s", profile_id);
    return db_version_bump(db, scope, &v);
}

status lstore_profile_check_tx(db_conn *db, arena *a, const char *profile_id,
                               const char **time_zone)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, profile_id);
    status st = db_query(db, "learning_profile",
                         "SELECT time_zone FROM profiles WHERE profile_id = $1", &p, &res);
    if (st == ST_OK && db_res_rows(res) == 0)
        st = ST_NOT_FOUND;
    if (st == ST_OK && time_zone != NULL)
        *time_zone = adup(a, db_res_text(res, 0, 0));
    db_res_free(res);
    return st;
}

/* ---------------------------------------------------------------- engagement */

static int str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *ids_array(char *const *ids, size_t n)
{
    lstore_arr arr;
    lstore_arr_init(&arr);
    for (size_t i = 0; i < n; i++)
        lstore_arr_text(&arr, ids[i]);
    lstore_arr_end(&arr);
    return strbuf_take(&arr.b);
}

status lstore_posts_get_tx(db_conn *db, arena *a, char *const *ids, size_t n, lstore_post **out,
                           size_t *n_out)
{
    db_params p;
    db_res *res = NULL;
    *out = NULL;
    *n_out = 0;
    /* each post once */
    char **uniq = malloc((n ? n : 1) * sizeof *uniq);
    if (uniq == NULL)
        return ST_EXHAUSTED;
    if (n > 0)
        memcpy(uniq, ids, n * sizeof *uniq);
    if (n > 1)
        qsort(uniq, n, sizeof *uniq, str_ptr_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || strcmp(uniq[m - 1], uniq[i]) != 0)
            uniq[m++] = uniq[i];
    char *arr = ids_array(uniq, m);
    free(uniq);
    db_params_init(&p);
    db_param_text(&p, arr);
    status st = db_query(
        db, "learning_posts",
        "SELECT p.post_id::text, p.state, "
        "COALESCE((extract(epoch FROM p.publish_time) * 1000000)::int8, 0), "
        "EXISTS (SELECT 1 FROM outcomes o JOIN reward_versions v "
        "ON v.reward_version = o.reward_version AND v.is_current WHERE o.post_id = p.post_id), "
        "p.profile_id "
        "FROM posts p WHERE p.post_id = ANY($1::uuid[])",
        &p, &res);
    if (st == ST_OK && db_res_rows(res) > 0) {
        size_t found = (size_t)db_res_rows(res);
        lstore_post *v = arena_calloc(a, found * sizeof *v);
        if (v == NULL) {
            st = ST_EXHAUSTED;
        } else {
            for (size_t i = 0; i < found; i++) {
                (void)snprintf(v[i].post_id, sizeof v[i].post_id, "%s",
                               db_res_text(res, (int)i, 0));
                (void)snprintf(v[i].state, sizeof v[i].state, "%s", db_res_text(res, (int)i, 1));
                v[i].publish_us = db_res_int64(res, (int)i, 2);
                v[i].scored = db_res_bool(res, (int)i, 3);
                v[i].profile_id = adup(a, db_res_text(res, (int)i, 4));
            }
            *out = v;
            *n_out = found;
        }
    }
    db_res_free(res);
    free(arr);
    return st;
}

/* Orders pointers to observations by (post_id, observe_us, source). */
static int obs_key_cmp(const void *pa, const void *pb)
{
    const lstore_obs *a = *(const lstore_obs *const *)pa, *b = *(const lstore_obs *const *)pb;
    int c = strcmp(a->post_id, b->post_id);
    if (c != 0)
        return c;
    if (a->observe_us != b->observe_us)
        return a->observe_us < b->observe_us ? -1 : 1;
    return strcmp(a->source, b->source);
}

status lstore_engagement_insert_tx(db_conn *db, arena *a, const lstore_obs *obs, size_t n,
                                   size_t **inserted, size_t *n_inserted)
{
    lstore_arr ids, ts, src, m[REWARD_METRIC_COUNT];
    db_params p;
    db_res *res = NULL;
    *inserted = NULL;
    *n_inserted = 0;
    lstore_arr_init(&ids);
    lstore_arr_init(&ts);
    lstore_arr_init(&src);
    for (int k = 0; k < REWARD_METRIC_COUNT; k++)
        lstore_arr_init(&m[k]);
    for (size_t i = 0; i < n; i++) {
        lstore_arr_text(&ids, obs[i].post_id);
        lstore_arr_int(&ts, obs[i].observe_us);
        lstore_arr_text(&src, obs[i].source);
        for (int k = 0; k < REWARD_METRIC_COUNT; k++) {
            int64_t v;
            if (reward_counts_get(&obs[i].counts, (reward_metric)k, &v))
                lstore_arr_int(&m[k], v);
            else
                lstore_arr_null(&m[k]);
        }
    }
    db_params_init(&p);
    db_param_text(&p, lstore_arr_end(&ids));
    db_param_text(&p, lstore_arr_end(&ts));
    db_param_text(&p, lstore_arr_end(&src));
    for (int k = 0; k < REWARD_METRIC_COUNT; k++)
        db_param_text(&p, lstore_arr_end(&m[k]));
    /* The ordinality comes back so the caller knows which rows were new. */
    status st = db_query(
        db, "engagement_insert",
        "INSERT INTO engagement_observations AS e (post_id, observed_at, source, impressions, "
        "likes, replies, reposts, quotes, bookmarks, profile_visits, link_clicks, follows) "
        "SELECT u.id, timestamptz 'epoch' + u.t * interval '1 microsecond', u.s, u.m0, u.m1, "
        "u.m2, u.m3, u.m4, u.m5, u.m6, u.m7, u.m8 FROM unnest($1::uuid[], $2::int8[], "
        "$3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], "
        "$10::int8[], $11::int8[], $12::int8[]) "
        "AS u(id, t, s, m0, m1, m2, m3, m4, m5, m6, m7, m8) "
        "ON CONFLICT (post_id, observed_at, source) DO NOTHING "
        "RETURNING e.post_id::text, (extract(epoch FROM e.observed_at) * 1000000)::int8, e.source",
        &p, &res);
    if (st == ST_OK && db_res_rows(res) > 0) {
        /* match each returned row to a request row with its key: the
         * request sorted by key, then a binary search per row (repeats of a
         * key in one request are adjacent; each is taken once) */
        size_t rows = (size_t)db_res_rows(res);
        size_t *idx = arena_alloc(a, rows * sizeof *idx);
        const lstore_obs **by_key = malloc(n * sizeof(const lstore_obs *));
        bool *taken = calloc(n + 1, sizeof *taken);
        if (idx == NULL || by_key == NULL || taken == NULL) {
            st = ST_EXHAUSTED;
        } else {
            for (size_t i = 0; i < n; i++)
                by_key[i] = &obs[i];
            qsort(by_key, n, sizeof(const lstore_obs *), obs_key_cmp);
            size_t k = 0;
            for (size_t r = 0; r < rows; r++) {
                lstore_obs key = { .post_id = db_res_text(res, (int)r, 0),
                                   .observe_us = db_res_int64(res, (int)r, 1),
                                   .source = db_res_text(res, (int)r, 2) };
                const lstore_obs *kp = &key;
                const lstore_obs **hit =
                    bsearch(&kp, by_key, n, sizeof(const lstore_obs *), obs_key_cmp);
                if (hit == NULL)
                    continue;
                while (hit > by_key && obs_key_cmp(hit - 1, &kp) == 0)
                    hit--;
                for (; hit < by_key + n && obs_key_cmp(hit, &kp) == 0; hit++) {
                    size_t i = (size_t)(*hit - obs);
                    if (!taken[i]) {
                        taken[i] = true;
                        idx[k++] = i;
                        break;
                    }
                }
            }
            *inserted = idx;
            *n_inserted = k;
        }
        free(taken);
        free(by_key);
    }
    db_res_free(res);
    for (int k = 0; k < REWARD_METRIC_COUNT; k++)
        lstore_arr_fini(&m[k]);
    lstore_arr_fini(&src);
    lstore_arr_fini(&ts);
    lstore_arr_fini(&ids);
    return st;
}

/* ---------------------------------------------------------------- follower snapshots */

status lstore_profiles_missing_tx(db_conn *db, arena *a, char *const *ids, size_t n,
                                  size_t **missing, size_t *n_missing)
{
    db_params p;
    db_res *res = NULL;
    *missing = NULL;
    *n_missing = 0;
    char *arr = ids_array(ids, n);
    db_params_init(&p);
    db_param_text(&p, arr);
    status st = db_query(db, "learning_profiles_missing",
                         "SELECT u.i - 1 FROM unnest($1::text[]) WITH ORDINALITY AS u(id, i) "
                         "WHERE NOT EXISTS (SELECT 1 FROM profiles p WHERE p.profile_id = u.id) "
                         "ORDER BY u.i",
                         &p, &res);
    if (st == ST_OK && db_res_rows(res) > 0) {
        size_t m = (size_t)db_res_rows(res);
        size_t *v = arena_alloc(a, m * sizeof *v);
        if (v == NULL) {
            st = ST_EXHAUSTED;
        } else {
            for (size_t i = 0; i < m; i++)
                v[i] = (size_t)db_res_int64(res, (int)i, 0);
            *missing = v;
            *n_missing = m;
        }
    }
    db_res_free(res);
    free(arr);
    return st;
}

status lstore_snapshots_insert_tx(db_conn *db, const lstore_snapshot *s, size_t n,
                                  int64_t *accepted)
{
    lstore_arr ids, ts, src, fc, fg;
    db_params p;
    db_res *res = NULL;
    lstore_arr_init(&ids);
    lstore_arr_init(&ts);
    lstore_arr_init(&src);
    lstore_arr_init(&fc);
    lstore_arr_init(&fg);
    for (size_t i = 0; i < n; i++) {
        lstore_arr_text(&ids, s[i].profile_id);
        lstore_arr_int(&ts, s[i].observe_us);
        lstore_arr_text(&src, s[i].source);
        lstore_arr_int(&fc, s[i].followers);
        if (s[i].has_following)
            lstore_arr_int(&fg, s[i].following);
        else
            lstore_arr_null(&fg);
    }
    db_params_init(&p);
    db_param_text(&p, lstore_arr_end(&ids));
    db_param_text(&p, lstore_arr_end(&ts));
    db_param_text(&p, lstore_arr_end(&src));
    db_param_text(&p, lstore_arr_end(&fc));
    db_param_text(&p, lstore_arr_end(&fg));
    status st = db_query(db, "follower_snapshot_insert",
                         "INSERT INTO follower_snapshots (profile_id, observed_at, source, "
                         "follower_count, following_count) "
                         "SELECT u.id, timestamptz 'epoch' + u.t * interval '1 microsecond', u.s, "
                         "u.fc, u.fg FROM unnest($1::text[], $2::int8[], $3::text[], $4::int8[], "
                         "$5::int8[]) AS u(id, t, s, fc, fg) ON CONFLICT DO NOTHING",
                         &p, &res);
    *accepted = st == ST_OK ? db_res_affected(res) : 0;
    db_res_free(res);
    lstore_arr_fini(&fg);
    lstore_arr_fini(&fc);
    lstore_arr_fini(&src);
    lstore_arr_fini(&ts);
    lstore_arr_fini(&ids);
    return st;
}

/* ---------------------------------------------------------------- replies */

status lstore_replies_insert_tx(db_conn *db, const lstore_reply *r, size_t n, int64_t *accepted)
{
    lstore_arr ids, ext, aid, ah, tx, ts, lb, sc;
    db_params p;
    db_res *res = NULL;
    lstore_arr_init(&ids);
    lstore_arr_init(&ext);
    lstore_arr_init(&aid);
    lstore_arr_init(&ah);
    lstore_arr_init(&tx);
    lstore_arr_init(&ts);
    lstore_arr_init(&lb);
    lstore_arr_init(&sc);
    for (size_t i = 0; i < n; i++) {
        lstore_arr_text(&ids, r[i].post_id);
        lstore_arr_text(&ext, r[i].external_id);
        lstore_arr_text(&aid, r[i].author_id);
        lstore_arr_text(&ah, r[i].author_handle);
        lstore_arr_text(&tx, r[i].text);
        lstore_arr_int(&ts, r[i].create_us);
        lstore_arr_text(&lb, r[i].label);
        lstore_arr_double(&sc, r[i].score);
    }
    db_params_init(&p);
    db_param_text(&p, lstore_arr_end(&ids));
    db_param_text(&p, lstore_arr_end(&ext));
    db_param_text(&p, lstore_arr_end(&aid));
    db_param_text(&p, lstore_arr_end(&ah));
    db_param_text(&p, lstore_arr_end(&tx));
    db_param_text(&p, lstore_arr_end(&ts));
    db_param_text(&p, lstore_arr_end(&lb));
    db_param_text(&p, lstore_arr_end(&sc));
    status st = db_query(db, "reply_insert",
                         "INSERT INTO post_replies (post_id, external_reply_id, author_id, "
                         "author_handle, text, reply_time, label, score) "
                         "SELECT u.id, u.x, u.a, u.h, u.tx, timestamptz 'epoch' + u.t * "
                         "interval '1 microsecond', u.l, u.s FROM unnest($1::uuid[], $2::text[], "
                         "$3::text[], $4::text[], $5::text[], $6::int8[], $7::text[], "
                         "$8::float8[]) AS u(id, x, a, h, tx, t, l, s) ON CONFLICT DO NOTHING",
                         &p, &res);
    *accepted = st == ST_OK ? db_res_affected(res) : 0;
    db_res_free(res);
    lstore_arr_fini(&sc);
    lstore_arr_fini(&lb);
    lstore_arr_fini(&ts);
    lstore_arr_fini(&tx);
    lstore_arr_fini(&ah);
    lstore_arr_fini(&aid);
    lstore_arr_fini(&ext);
    lstore_arr_fini(&ids);
    return st;
}

status lstore_reply_summaries_tx(db_conn *db, arena *a, char *const *post_ids, size_t n,
                                 lstore_label_count **out, size_t *n_out)
{
    db_params p;
    db_res *res = NULL;
    *out = NULL;
    *n_out = 0;
    char *arr = ids_array(post_ids, n);
    db_params_init(&p);
    db_param_text(&p, arr);
    status st = db_query(db, "reply_summaries",
                         "SELECT post_id::text, label, count(*), sum(score) FROM post_replies "
                         "WHERE post_id = ANY($1::uuid[]) GROUP BY 1, 2 ORDER BY 1, 2",
                         &p, &res);
    if (st == ST_OK && db_res_rows(res) > 0) {
        size_t m = (size_t)db_res_rows(res);
        lstore_label_count *v = arena_calloc(a, m * sizeof *v);
        if (v == NULL) {
            st = ST_EXHAUSTED;
        } else {
            for (size_t i = 0; i < m; i++) {
                v[i].post_id = adup(a, db_res_text(res, (int)i, 0));
                v[i].label = adup(a, db_res_text(res, (int)i, 1));
                v[i].count = db_res_int64(res, (int)i, 2);
                v[i].score_sum = db_res_double(res, (int)i, 3);
            }
            *out = v;
            *n_out = m;
        }
    }
    db_res_free(res);
    free(arr);
    return st;
}

/* ---------------------------------------------------------------- topics and trends */

static const char *opt_profile(const char *profile_id)
{
    return profile_id != NULL && profile_id[0] != '\0' ? profile_id : NULL;
}

status lstore_topic_obs_insert_tx(db_conn *db, arena *a, const char *profile_id,
                                  const lstore_topic_obs *o, size_t n, size_t **inserted,
                                  size_t *n_inserted)
{
    lstore_arr tp, dn, ct, ts, pm, src;
    db_params p;
    db_res *res = NULL;
    *inserted = NULL;
    *n_inserted = 0;
    lstore_arr_init(&tp);
    lstore_arr_init(&dn);
    lstore_arr_init(&ct);
    lstore_arr_init(&ts);
    lstore_arr_init(&pm);
    lstore_arr_init(&src);
    for (size_t i = 0; i < n; i++) {
        lstore_arr_text(&tp, o[i].topic);
        lstore_arr_text(&dn, o[i].display_name);
        lstore_arr_int(&ct, o[i].count);
        lstore_arr_int(&ts, o[i].observe_us);
        lstore_arr_int(&pm, o[i].period_minutes);
        lstore_arr_text(&src, o[i].source);
    }
    db_params_init(&p);
    db_param_text(&p, opt_profile(profile_id));
    db_param_text(&p, lstore_arr_end(&tp));
    db_param_text(&p, lstore_arr_end(&dn));
    db_param_text(&p, lstore_arr_end(&ct));
    db_param_text(&p, lstore_arr_end(&ts));
    db_param_text(&p, lstore_arr_end(&pm));
    db_param_text(&p, lstore_arr_end(&src));
    status st = db_query(
        db, "topic_obs_insert",
        "INSERT INTO topic_observations AS o (profile_id, topic, display_name, mention_count, "
        "observed_at, period_minutes, source) "
        "SELECT $1, u.tp, u.dn, u.c, timestamptz 'epoch' + u.t * interval '1 microsecond', u.pm, "
        "u.s FROM unnest($2::text[], $3::text[], $4::int8[], $5::int8[], $6::int4[], $7::text[]) "
        "AS u(tp, dn, c, t, pm, s) ON CONFLICT DO NOTHING "
        "RETURNING o.topic, (extract(epoch FROM o.observed_at) * 1000000)::int8, o.source",
        &p, &res);
    if (st == ST_OK && db_res_rows(res) > 0) {
        size_t rows = (size_t)db_res_rows(res);
        size_t *idx = arena_alloc(a, rows * sizeof *idx);
        bool *taken = calloc(n + 1, sizeof *taken);
        if (idx == NULL || taken == NULL) {
            st = ST_EXHAUSTED;
        } else {
            size_t k = 0;
            for (size_t r = 0; r < rows; r++) {
                const char *t = db_res_text(res, (int)r, 0);
                int64_t at = db_res_int64(res, (int)r, 1);
                const char *s = db_res_text(res, (int)r, 2);
                for (size_t i = 0; i < n; i++) {
                    if (!taken[i] && o[i].observe_us == at && strcmp(o[i].topic, t) == 0 &&
                        strcmp(o[i].source, s) == 0) {
                        taken[i] = true;
                        idx[k++] = i;
                        break;
                    }
                }
            }
            *inserted = idx;
            *n_inserted = k;
        }
        free(taken);
    }
    db_res_free(res);
    lstore_arr_fini(&src);
    lstore_arr_fini(&pm);
    lstore_arr_fini(&ts);
    lstore_arr_fini(&ct);
    lstore_arr_fini(&dn);
    lstore_arr_fini(&tp);
    return st;
}

#define TREND_COLS                                                                         \
    "t.topic, t.display_name, EXISTS (SELECT 1 FROM topics c WHERE c.key = t.topic), "     \
    "t.velocity, t.acceleration, t.first_ms, t.last_ms, t.observations, t.prev_velocity, " \
    "t.prev_acceleration, t.step_alpha, t.step_beta, t.step_hours"

static void trend_from_row(const db_res *r, int row, arena *a, lstore_trend *t)
{
    memset(t, 0, sizeof *t);
    t->topic = adup(a, db_res_text(r, row, 0));
    t->display_name = adup(a, db_res_text(r, row, 1));
    t->in_catalog = db_res_bool(r, row, 2);
    t->state.velocity = db_res_double(r, row, 3);
    t->state.acceleration = db_res_double(r, row, 4);
    t->state.first_ms = db_res_int64(r, row, 5);
    t->state.last_ms = db_res_int64(r, row, 6);
    t->state.observations = db_res_int64(r, row, 7);
    t->state.prev_velocity = db_res_double(r, row, 8);
    t->state.prev_acceleration = db_res_double(r, row, 9);
    t->state.step_alpha = db_res_double(r, row, 10);
    t->state.step_beta = db_res_double(r, row, 11);
    t->state.step_hours = db_res_double(r, row, 12);
}

status lstore_trends_lock_tx(db_conn *db, arena *a, const char *profile_id, char *const *topics,
                             size_t n, lstore_trend **out)
{
    db_params p;
    db_res *res = NULL;
    *out = NULL;
    char *arr = ids_array(topics, n);
    db_params_init(&p);
    db_param_text(&p, opt_profile(profile_id));
    db_param_text(&p, arr);
    status st = db_query(db, "trend_lock",
                         "INSERT INTO topic_trends (profile_id, topic) SELECT $1, u.tp "
                         "FROM unnest($2::text[]) WITH ORDINALITY AS u(tp, i) ORDER BY u.i "
                         "ON CONFLICT DO NOTHING",
                         &p, NULL);
    if (st == ST_OK)
        st = db_query(db, "trend_lock_read",
                      "SELECT " TREND_COLS " FROM topic_trends t "
                      "WHERE t.profile_id IS NOT DISTINCT FROM $1 AND t.topic = ANY($2::text[]) "
                      "ORDER BY t.topic FOR UPDATE OF t",
                      &p, &res);
    if (st == ST_OK) {
        lstore_trend *v = arena_calloc(a, (n ? n : 1) * sizeof *v);
        if (v == NULL) {
            st = ST_EXHAUSTED;
        } else {
            for (size_t i = 0; i < n; i++) {
                v[i].topic = topics[i];
                v[i].display_name = "";
            }
            for (int r = 0; r < db_res_rows(res); r++) {
                const char *t = db_res_text(res, r, 0);
                for (size_t i = 0; i < n; i++)
                    if (strcmp(topics[i], t) == 0)
                        trend_from_row(res, r, a, &v[i]);
            }
            *out = v;
        }
    }
    db_res_free(res);
    free(arr);
    return st;
}

status lstore_trends_save_tx(db_conn *db, const char *profile_id, const lstore_trend *t, size_t n)
{
    lstore_arr tp, dn, v, ac, fm, lm, ob, pv, pa, sa, sb, sh;
    db_params p;
    lstore_arr *all[] = { &tp, &dn, &v, &ac, &fm, &lm, &ob, &pv, &pa, &sa, &sb, &sh };
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        lstore_arr_init(all[k]);
    for (size_t i = 0; i < n; i++) {
        lstore_arr_text(&tp, t[i].topic);
        lstore_arr_text(&dn, t[i].display_name);
        lstore_arr_double(&v, t[i].state.velocity);
        lstore_arr_double(&ac, t[i].state.acceleration);
        lstore_arr_int(&fm, t[i].state.first_ms);
        lstore_arr_int(&lm, t[i].state.last_ms);
        lstore_arr_int(&ob, t[i].state.observations);
        lstore_arr_double(&pv, t[i].state.prev_velocity);
        lstore_arr_double(&pa, t[i].state.prev_acceleration);
        lstore_arr_double(&sa, t[i].state.step_alpha);
        lstore_arr_double(&sb, t[i].state.step_beta);
        lstore_arr_double(&sh, t[i].state.step_hours);
    }
    db_params_init(&p);
    db_param_text(&p, opt_profile(profile_id));
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        db_param_text(&p, lstore_arr_end(all[k]));
    status st = db_query(
        db, "trend_save",
        "UPDATE topic_trends t SET display_name = u.dn, velocity = COALESCE(u.v, 0), "
        "acceleration = COALESCE(u.ac, 0), first_ms = u.fm, last_ms = u.lm, observations = u.ob, "
        "prev_velocity = COALESCE(u.pv, 0), prev_acceleration = COALESCE(u.pa, 0), "
        "step_alpha = COALESCE(u.sa, 0), step_beta = COALESCE(u.sb, 0), "
        "step_hours = COALESCE(u.sh, 0), updated_at = now() "
        "FROM unnest($2::text[], $3::text[], $4::float8[], $5::float8[], $6::int8[], $7::int8[], "
        "$8::int8[], $9::float8[], $10::float8[], $11::float8[], $12::float8[], $13::float8[]) "
        "AS u(tp, dn, v, ac, fm, lm, ob, pv, pa, sa, sb, sh) "
        "WHERE t.profile_id IS NOT DISTINCT FROM $1 AND t.topic = u.tp",
        &p, NULL);
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        lstore_arr_fini(all[k]);
    return st;
}

status lstore_trends_list(db_conn *db, int64_t budget_ms, arena *a, const char *profile_id,
                          bool catalog_only, lstore_trend **out, size_t *n_out)
{
    db_params p;
    db_res *res = NULL;
    *out = NULL;
    *n_out = 0;
    db_params_init(&p);
    db_param_text(&p, opt_profile(profile_id));
    db_param_bool(&p, catalog_only);
    status st = db_run(db, budget_ms, "trend_list",
                       "SELECT " TREND_COLS " FROM topic_trends t "
                       "WHERE t.profile_id IS NOT DISTINCT FROM $1 AND t.observations > 0 "
                       "AND (NOT $2 OR EXISTS (SELECT 1 FROM topics c WHERE c.key = t.topic)) "
                       "ORDER BY t.topic",
                       &p, &res);
    if (st == ST_OK && db_res_rows(res) > 0) {
        size_t m = (size_t)db_res_rows(res);
        lstore_trend *v = arena_calloc(a, m * sizeof *v);
        if (v == NULL) {
            st = ST_EXHAUSTED;
        } else {
            for (size_t i = 0; i < m; i++)
                trend_from_row(res, (int)i, a, &v[i]);
            *out = v;
            *n_out = m;
        }
    }
    db_res_free(res);
    return st;
}

status lstore_mentions_24h(db_conn *db, int64_t budget_ms, bool tx, const char *profile_id,
                           int64_t now_ms, lstore_trend *t, size_t n)
{
    lstore_arr tp;
    db_params p;
    db_res *res = NULL;
    if (n == 0)
        return ST_OK;
    lstore_arr_init(&tp);
    for (size_t i = 0; i < n; i++)
        lstore_arr_text(&tp, t[i].topic);
    db_params_init(&p);
    db_param_text(&p, opt_profile(profile_id));
    db_param_text(&p, lstore_arr_end(&tp));
    db_param_int64(&p, now_ms);
    const char *sql = "SELECT o.topic, sum(o.mention_count)::int8 FROM topic_observations o "
                      "WHERE o.profile_id IS NOT DISTINCT FROM $1 AND o.topic = ANY($2::text[]) "
                      "AND o.observed_at > to_timestamp($3::int8 / 1000.0) - interval '24 hours' "
                      "AND o.observed_at <= to_timestamp($3::int8 / 1000.0) GROUP BY o.topic";
    status st = tx ? db_query(db, "topic_mentions_24h", sql, &p, &res)
                   : db_run(db, budget_ms, "topic_mentions_24h", sql, &p, &res);
    for (size_t i = 0; i < n; i++)
        t[i].mentions_24h = 0;
    for (int r = 0; st == ST_OK && r < db_res_rows(res); r++)
        for (size_t i = 0; i < n; i++)
            if (strcmp(t[i].topic, db_res_text(res, r, 0)) == 0)
                t[i].mentions_24h = db_res_int64(res, r, 1);
    db_res_free(res);
    lstore_arr_fini(&tp);
    return st;
}

/* ---------------------------------------------------------------- audience */

status lstore_audience_put_tx(db_conn *db, const char *profile_id, const lstore_zone *z, size_t n,
                              const char *source, int64_t *update_us)
{
    strbuf js = { 0 };
    db_params p;
    db_res *res = NULL;
    strbuf_putc(&js, '[');
    for (size_t i = 0; i < n; i++) {
        char num[40];
        (void)snprintf(num, sizeof num, "%.17g", z[i].share);
        strbuf_puts(&js, i > 0 ? ",{\"time_zone\":\"" : "{\"time_zone\":\"");
        strbuf_json_escape(&js, z[i].time_zone, strlen(z[i].time_zone));
        strbuf_puts(&js, "\",\"share\":");
        strbuf_puts(&js, num);
        strbuf_putc(&js, '}');
    }
    strbuf_putc(&js, ']');
    db_params_init(&p);
    db_param_text(&p, profile_id);
    db_param_text(&p, js.data);
    db_param_text(&p, source);
    status st = db_query(db, "audience_put",
                         "INSERT INTO audiences AS a (profile_id, time_zones, source) "
                         "VALUES ($1, $2::jsonb, $3) ON CONFLICT (profile_id) DO UPDATE "
                         "SET time_zones = EXCLUDED.time_zones, source = EXCLUDED.source, "
                         "revision = a.revision + 1, updated_at = now() "
                         "RETURNING (extract(epoch FROM a.updated_at) * 1000000)::int8",
                         &p, &res);
    *update_us = st == ST_OK ? db_res_int64(res, 0, 0) : 0;
    db_res_free(res);
    strbuf_fini(&js);
    return st;
}

status lstore_audience_get_tx(db_conn *db, arena *a, const char *profile_id, lstore_zone **out,
                              size_t *n, const char **source, int64_t *update_us)
{
    db_params p;
    db_res *res = NULL;
    *out = NULL;
    *n = 0;
    *source = "";
    *update_us = 0;
    db_params_init(&p);
    db_param_text(&p, profile_id);
    status st = db_query(db, "audience_get",
                         "SELECT z->>'time_zone', (z->>'share')::float8, a.source, "
                         "(extract(epoch FROM a.updated_at) * 1000000)::int8 "
                         "FROM audiences a, jsonb_array_elements(a.time_zones) z "
                         "WHERE a.profile_id = $1",
                         &p, &res);
    if (st == ST_OK && db_res_rows(res) > 0) {
        size_t m = (size_t)db_res_rows(res);
        lstore_zone *v = arena_calloc(a, m * sizeof *v);
        if (v == NULL) {
            st = ST_EXHAUSTED;
        } else {
            for (size_t i = 0; i < m; i++) {
                v[i].time_zone = adup(a, db_res_text(res, (int)i, 0));
                v[i].share = db_res_double(res, (int)i, 1);
            }
            *out = v;
            *n = m;
            *source = adup(a, db_res_text(res, 0, 2));
            *update_us = db_res_int64(res, 0, 3);
        }
    }
    db_res_free(res);
    return st;
}

/* ---------------------------------------------------------------- arms */

static int key_order(bandit_scope s, const char *a, const char *b)
{
    if (s == BANDIT_SCOPE_HOUR_OF_WEEK) {
        long x = strtol(a, NULL, 10), y = strtol(b, NULL, 10);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return strcmp(a, b);
}

static int arm_order(const void *pa, const void *pb)
{
    const lstore_arm *a = pa, *b = pb;
    if (a->scope != b->scope)
        return a->scope < b->scope ? -1 : 1;
    return key_order(a->scope, a->key, b->key);
}

/* The arms query, optionally with the topics recently used around
 * recent_at_ms and with this transaction's commit made asynchronous
 * (Recommend). One statement of simple index scans glued by UNION ALL
 * (planning dominates a statement this size: joins and de-duplication are
 * done here instead). Row kinds (column 0):
 *   0 the profile: time zone, topic cooldown, active reward version
 *   1 an enabled catalog key of a content scope (with catalog)
 *   2 one of the profile's topics
 *   3 an arm_stats row under the active version
 *   4 an arm_settings row
 *   5 a topic used within the cooldown of recent_at_ms (with recent) */
enum { K_PROFILE, K_CATALOG, K_PROFILE_TOPIC, K_STATS, K_SETTING, K_RECENT };

static lstore_arm *arm_slot(lstore_arm *arms, size_t *n, bandit_scope sc, const char *key)
{
    for (size_t i = 0; i < *n; i++)
        if (arms[i].scope == sc && strcmp(arms[i].key, key) == 0)
            return &arms[i];
    lstore_arm *a = &arms[(*n)++];
    memset(a, 0, sizeof *a);
    a->scope = sc;
    a->enabled = true;
    a->disabled_reason = "";
    return a;
}

static status arms_query(db_conn *db, int64_t budget_ms, bool tx, arena *a, const char *profile_id,
                         int scope, bool catalog, bool recent, int64_t recent_at_ms,
                         lstore_arms *out, char ***topics, size_t *n_topics)
{
    db_params p;
    db_res *res = NULL;
    memset(out, 0, sizeof *out);
    out->reward_version = "";
    out->time_zone = "UTC";
    db_params_init(&p);
    db_param_text(&p, profile_id);
    db_param_bool(&p, catalog);
    db_param_bool(&p, recent);
    db_param_int64(&p, recent_at_ms);
    const char *sql =
        "SELECT 0, CASE WHEN $3 THEN set_config('synchronous_commit', 'off', true) END, "
        "time_zone, 0::float8, 0::float8, 0::float8, topic_cooldown_hours::int8, 0::int8, "
        "0::int8, true, (SELECT reward_version FROM reward_versions WHERE is_current) "
        "FROM profiles WHERE profile_id = $1 "
        "UNION ALL SELECT 1, 'content_type', key, 0, 0, 0, 0, 0, 0, true, NULL "
        "FROM content_types WHERE enabled AND $2 "
        "UNION ALL SELECT 1, 'voice_style', key, 0, 0, 0, 0, 0, 0, true, NULL "
        "FROM voice_styles WHERE enabled AND $2 "
        "UNION ALL SELECT 1, 'topic', key, 0, 0, 0, 0, 0, 0, true, NULL "
        "FROM topics WHERE enabled AND $2 "
        "UNION ALL SELECT 2, 'topic', topic_key, 0, 0, 0, 0, 0, 0, true, NULL "
        "FROM profile_topics WHERE profile_id = $1 "
        "UNION ALL SELECT 3, scope, arm_key, n, sum_reward, sum_sq, outcome_count, "
        "(extract(epoch FROM updated_at) * 1000)::int8, pulls, true, NULL FROM arm_stats "
        "WHERE profile_id = $1 "
        "AND reward_version = (SELECT reward_version FROM reward_versions WHERE is_current) "
        "UNION ALL SELECT 4, scope, arm_key, 0, 0, 0, 0, 0, 0, enabled, disabled_reason "
        "FROM arm_settings WHERE profile_id = $1 "
        /* live posts due (published, scheduled or created) within the
         * profile's cooldown of the target time */
        "UNION ALL SELECT 5, 'topic', topic, 0, 0, 0, 0, 0, 0, true, NULL FROM posts "
        "WHERE $3 AND profile_id = $1 AND topic IS NOT NULL "
        "AND state NOT IN ('rejected', 'cancelled', 'failed') "
        "AND COALESCE(publish_time, schedule_time, created_at) > to_timestamp($4::int8 / 1000.0) "
        "- (SELECT topic_cooldown_hours FROM profiles WHERE profile_id = $1) * interval '1 hour' "
        "AND COALESCE(publish_time, schedule_time, created_at) < to_timestamp($4::int8 / 1000.0) "
        "+ (SELECT topic_cooldown_hours FROM profiles WHERE profile_id = $1) * interval '1 hour'";
    status st = tx ? db_query(db, recent ? "recommend_load" : "arms_get", sql, &p, &res)
                   : db_run(db, budget_ms, "arms_get", sql, &p, &res);
    if (st != ST_OK)
        goto out;
    int rows = db_res_rows(res);
    bool found = false, any_profile_topic = false;
    size_t n_recent = 0;
    for (int r = 0; r < rows; r++) {
        int64_t kind = db_res_int64(res, r, 0);
        if (kind == K_PROFILE) {
            found = true;
            out->time_zone = adup(a, db_res_text(res, r, 2));
            out->topic_cooldown_hours = (int)db_res_int64(res, r, 6);
            out->reward_version = adup(a, db_res_text(res, r, 10));
        }
        any_profile_topic |= kind == K_PROFILE_TOPIC;
        n_recent += kind == K_RECENT;
    }
    if (!found) {
        st = ST_NOT_FOUND;
        goto out;
    }
    size_t cap = (size_t)rows;
    out->arms = arena_calloc(a, (cap ? cap : 1) * sizeof *out->arms);
    char **rt = arena_calloc(a, (n_recent ? n_recent : 1) * sizeof *rt);
    if (out->arms == NULL || rt == NULL) {
        st = ST_EXHAUSTED;
        goto out;
    }
    size_t n = 0, nr = 0;
    for (int r = 0; r < rows; r++) {
        int64_t kind = db_res_int64(res, r, 0);
        bandit_scope sc;
        if (kind == K_PROFILE || kind == K_PROFILE_TOPIC)
            continue;
        if (kind == K_RECENT) {
            rt[nr++] = adup(a, db_res_text(res, r, 2));
            continue;
        }
        if (!bandit_scope_parse(db_res_text(res, r, 1), &sc))
            continue;
        if (scope > 0 && (int)sc != scope)
            continue;
        if (scope == LSTORE_CONTENT_SCOPES && sc != BANDIT_SCOPE_CONTENT_TYPE &&
            sc != BANDIT_SCOPE_VOICE_STYLE && sc != BANDIT_SCOPE_TOPIC)
            continue;
        const char *key = db_res_text(res, r, 2);
        lstore_arm *arm = arm_slot(out->arms, &n, sc, key);
        if (arm->key == NULL)
            arm->key = adup(a, key);
        if (kind == K_STATS) {
            arm->stats.n = db_res_double(res, r, 3);
            arm->stats.sum = db_res_double(res, r, 4);
            arm->stats.sum_sq = db_res_double(res, r, 5);
            arm->stats.count = db_res_int64(res, r, 6);
            arm->stats.updated_ms = db_res_int64(res, r, 7);
            arm->pulls = db_res_int64(res, r, 8);
            arm->update_ms = arm->stats.count > 0 ? arm->stats.updated_ms : 0;
            if (!bandit_stats_valid(&arm->stats))
                memset(&arm->stats, 0, sizeof arm->stats);
            if (arm->stats.count == 0 && arm->stats.n == 0.0)
                arm->stats.updated_ms = 0;
        } else if (kind == K_SETTING) {
            arm->enabled = db_res_bool(res, r, 9);
            arm->disabled_reason = adup(a, db_res_text(res, r, 10));
        }
    }
    /* a topic is the profile's when it has none or lists it */
    for (size_t i = 0; i < n; i++) {
        lstore_arm *arm = &out->arms[i];
        arm->in_profile = arm->scope != BANDIT_SCOPE_TOPIC || !any_profile_topic;
        for (int r = 0; !arm->in_profile && r < rows; r++)
            arm->in_profile = db_res_int64(res, r, 0) == K_PROFILE_TOPIC &&
                              strcmp(db_res_text(res, r, 2), arm->key) == 0;
    }
    out->n = n;
    qsort(out->arms, out->n, sizeof *out->arms, arm_order);
    if (topics != NULL) {
        *topics = rt;
        *n_topics = nr;
    }
out:
    db_res_free(res);
    return st;
}

status lstore_arms_get(db_conn *db, int64_t budget_ms, bool tx, arena *a, const char *profile_id,
                       int scope, bool catalog, lstore_arms *out)
{
    return arms_query(db, budget_ms, tx, a, profile_id, scope, catalog, false, 0, out, NULL, NULL);
}

status lstore_recommend_load_tx(db_conn *db, arena *a, const char *profile_id, int64_t at_ms,
                                lstore_arms *out, char ***recent, size_t *n_recent)
{
    *recent = NULL;
    *n_recent = 0;
    return arms_query(db, 0, true, a, profile_id, LSTORE_CONTENT_SCOPES, true, true, at_ms, out,
                      recent, n_recent);
}

status lstore_arm_setting_put_tx(db_conn *db, const char *profile_id, bandit_scope scope,
                                 const char *key, bool enabled, const char *reason)
{
    db_params p;
    db_params_init(&p);
    db_param_text(&p, profile_id);
    db_param_text(&p, bandit_scope_name(scope));
    db_param_text(&p, key);
    db_param_bool(&p, enabled);
    db_param_text(&p, enabled ? "" : reason);
    return db_query(db, "arm_setting_put",
                    "INSERT INTO arm_settings AS s (profile_id, scope, arm_key, enabled, "
                    "disabled_reason) VALUES ($1, $2, $3, $4, $5) "
                    "ON CONFLICT (profile_id, scope, arm_key) DO UPDATE SET enabled = $4, "
                    "disabled_reason = $5, revision = s.revision + 1, updated_at = now()",
                    &p, NULL);
}

status lstore_catalog_has_tx(db_conn *db, bandit_scope scope, const char *key)
{
    const char *sql = NULL;
    switch (scope) {
    case BANDIT_SCOPE_CONTENT_TYPE:
        sql = "SELECT 1 FROM content_types WHERE key = $1";
        break;
    case BANDIT_SCOPE_VOICE_STYLE:
        sql = "SELECT 1 FROM voice_styles WHERE key = $1";
        break;
    case BANDIT_SCOPE_TOPIC:
        sql = "SELECT 1 FROM topics WHERE key = $1";
        break;
    case BANDIT_SCOPE_HOUR_OF_WEEK:
    case BANDIT_SCOPE_REPLY_TIER:
        return ST_OK;
    }
    if (sql == NULL)
        return ST_NOT_FOUND;
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, key);
    status st = db_query(db, "catalog_has", sql, &p, &res);
    if (st == ST_OK && db_res_rows(res) == 0)
        st = ST_NOT_FOUND;
    db_res_free(res);
    return st;
}

/* ---------------------------------------------------------------- decisions */

status lstore_decision_insert_tx(db_conn *db, arena *a, const lstore_decision *d, const char **id,
                                 int64_t *create_us)
{
    lstore_arr ps, pk;
    db_params p;
    db_res *res = NULL;
    lstore_arr_init(&ps);
    lstore_arr_init(&pk);
    for (size_t i = 0; i < d->n_pulls && i < 3; i++) {
        lstore_arr_text(&ps, d->pull_scope[i]);
        lstore_arr_text(&pk, d->pull_key[i]);
    }
    db_params_init(&p);
    db_param_text(&p, d->profile_id);
    db_param_text(&p, d->reward_version[0] ? d->reward_version : NULL);
    db_param_text(&p, d->content_type);
    db_param_text(&p, d->voice_style);
    db_param_text(&p, d->topic);
    db_param_int64(&p, d->hour_of_week);
    db_param_int64(&p, d->target_ms);
    db_param_int64(&p, (int64_t)d->seed);
    db_param_double(&p, d->propensity);
    db_param_bool(&p, d->forced);
    db_param_text(&p, d->candidates_json);
    db_param_text(&p, d->reason);
    db_param_text(&p, lstore_arr_end(&ps));
    db_param_text(&p, lstore_arr_end(&pk));
    status st = db_query(
        db, "decision_insert",
        "WITH d AS (INSERT INTO decisions (profile_id, kind, reward_version, content_type, "
        "voice_style, topic, hour_of_week, target_time, seed, propensity, forced, candidates, "
        "reason) VALUES ($1, 'content', $2, $3, $4, $5, $6::int2, to_timestamp($7::int8 / "
        "1000.0), $8::int8, $9::float8, $10, $11::jsonb, left($12, 2000)) "
        "RETURNING decision_id, created_at), "
        "pulls AS (INSERT INTO arm_stats AS a (profile_id, scope, arm_key, reward_version, pulls) "
        "SELECT $1, u.s, u.k, $2, 1 FROM unnest($13::text[], $14::text[]) WITH ORDINALITY "
        "AS u(s, k, i) WHERE $2::text IS NOT NULL ORDER BY u.i "
        "ON CONFLICT (profile_id, scope, arm_key, reward_version) "
        "DO UPDATE SET pulls = a.pulls + 1) "
        "SELECT decision_id::text, (extract(epoch FROM created_at) * 1000000)::int8 FROM d",
        &p, &res);
    if (st == ST_OK && db_res_rows(res) == 1) {
        *id = adup(a, db_res_text(res, 0, 0));
        *create_us = db_res_int64(res, 0, 1);
    } else if (st == ST_OK) {
        st = ST_INTERNAL;
    }
    db_res_free(res);
    lstore_arr_fini(&pk);
    lstore_arr_fini(&ps);
    return st;
}

/* ---------------------------------------------------------------- insights */

status lstore_insights_tx(db_conn *db, arena *a, const char *profile_id, const char *time_zone,
                          int64_t now_ms, int window_days, lstore_day **days, size_t *n_days,
                          lstore_conversion **conv, size_t *n_conv)
{
    db_params p;
    db_res *res = NULL;
    *days = NULL;
    *n_days = 0;
    *conv = NULL;
    *n_conv = 0;
    db_params_init(&p);
    db_param_text(&p, profile_id);
    db_param_text(&p, time_zone);
    db_param_int64(&p, now_ms);
    db_param_int64(&p, window_days);
    /* Each post of the window with its latest observation; grouped twice
     * (grouping sets): by local day and by content type. */
    status st = db_query(
        db, "insights",
        "WITH w AS (SELECT p.post_id, p.content_type, "
        "(p.publish_time AT TIME ZONE $2)::date AS day, e.impressions, e.follows, "
        "e.likes + e.replies + e.reposts + e.quotes AS eng "
        "FROM posts p LEFT JOIN LATERAL (SELECT * FROM engagement_observations e "
        "WHERE e.post_id = p.post_id ORDER BY e.observed_at DESC, "
        "num_nonnulls(e.impressions, e.likes, e.replies, e.reposts, e.quotes, e.follows) DESC "
        "LIMIT 1) e ON true "
        "WHERE p.profile_id = $1 AND p.state = 'published' "
        "AND p.publish_time > to_timestamp($3::int8 / 1000.0) - $4::int8 * interval '1 day' "
        "AND p.publish_time <= to_timestamp($3::int8 / 1000.0)) "
        "SELECT GROUPING(day), "
        "CASE WHEN GROUPING(day) = 0 THEN (day - DATE '1970-01-01')::int8 END, content_type, "
        "count(*), COALESCE(sum(impressions), 0)::int8, "
        "COALESCE(sum(impressions) FILTER (WHERE eng IS NOT NULL), 0)::int8, "
        "COALESCE(sum(eng) FILTER (WHERE impressions IS NOT NULL), 0)::int8, "
        "COALESCE(sum(impressions) FILTER (WHERE follows IS NOT NULL), 0)::int8, "
        "COALESCE(sum(follows) FILTER (WHERE impressions IS NOT NULL), 0)::int8 "
        "FROM w GROUP BY GROUPING SETS ((day), (content_type)) ORDER BY 1, 2, 3",
        &p, &res);
    if (st != ST_OK)
        goto out;
    int rows = db_res_rows(res);
    size_t nd = 0, nc = 0;
    for (int r = 0; r < rows; r++) {
        if (db_res_int64(res, r, 0) == 0)
            nd++;
        else if (!db_res_null(res, r, 2))
            nc++;
    }
    lstore_day *d = arena_calloc(a, (nd ? nd : 1) * sizeof *d);
    lstore_conversion *c = arena_calloc(a, (nc ? nc : 1) * sizeof *c);
    if (d == NULL || c == NULL) {
        st = ST_EXHAUSTED;
        goto out;
    }
    nd = nc = 0;
    for (int r = 0; r < rows; r++) {
        if (db_res_int64(res, r, 0) == 0) {
            lstore_day *x = &d[nd++];
            x->local_day = db_res_int64(res, r, 1);
            x->posts = (int)db_res_int64(res, r, 3);
            x->impressions = db_res_int64(res, r, 4);
            x->rate_impressions = db_res_int64(res, r, 5);
            x->engagements = db_res_int64(res, r, 6);
        } else if (!db_res_null(res, r, 2)) {
            lstore_conversion *x = &c[nc++];
            x->content_type = adup(a, db_res_text(res, r, 2));
            x->posts = db_res_int64(res, r, 3);
            x->impressions = db_res_int64(res, r, 4);
            x->follow_impressions = db_res_int64(res, r, 7);
            x->follows = db_res_int64(res, r, 8);
        }
    }
    *days = d;
    *n_days = nd;
    *conv = c;
    *n_conv = nc;
out:
    db_res_free(res);
    return st;
}
