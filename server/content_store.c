/* content_store.c - ContentService's store side (see content_store.h). */
#include "content_store.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bandit.h"
#include "generator.h"
#include "handler.h"
#include "profiles.h"
#include "textscan.h"
#include "tz.h"
#include "util.h"

/* An instant column as epoch microseconds (NULL stays NULL). */
#define US(x) "(extract(epoch FROM " x ") * 1000000)::bigint"

/* Inside the caller's transaction when one is open, else on its own. */
static status q(db_conn *db, int64_t budget_ms, const char *name, const char *sql,
                const db_params *p, db_res **out)
{
    if (db_in_tx(db))
        return db_query(db, name, sql, p, out);
    return db_run(db, budget_ms, name, sql, p, out);
}

static char *adup(arena *a, const char *s)
{
    char *d = arena_strdup(a, s != NULL ? s : "");
    return d != NULL ? d : (char *)"";
}

static int enum_of(const ProtobufCEnumDescriptor *d, const char *text)
{
    int v = 0;
    return handler_enum_from_db(d, text, &v) ? v : 0;
}

static void set_err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    if (err == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* ================================================================ catalog */

struct content_catalog {
    catalog *cat;
    int64_t version;
    int64_t vtime_us;
    int64_t *upd_us[4]; /* by catalog_kind, parallel to catalog_entry_at */
    atomic_int refs;
};

static pthread_mutex_t cat_mu = PTHREAD_MUTEX_INITIALIZER; /* protects cat_cur */
static content_catalog *cat_cur; /* the newest snapshot; holds one reference */

static void snap_free(content_catalog *c)
{
    if (c == NULL)
        return;
    catalog_free(c->cat);
    for (int k = 0; k < 4; k++)
        free(c->upd_us[k]);
    free(c);
}

void content_catalog_release(content_catalog *c)
{
    if (c != NULL && atomic_fetch_sub(&c->refs, 1) == 1)
        snap_free(c);
}

content_catalog *content_catalog_ref(content_catalog *c)
{
    if (c != NULL)
        atomic_fetch_add(&c->refs, 1);
    return c;
}

void content_catalog_reset(void)
{
    pthread_mutex_lock(&cat_mu);
    content_catalog *old = cat_cur;
    cat_cur = NULL;
    pthread_mutex_unlock(&cat_mu);
    content_catalog_release(old);
}

const catalog *content_catalog_get(const content_catalog *c)
{
    return c->cat;
}

int64_t content_catalog_version(const content_catalog *c)
{
    return c->version;
}

static const char *const kind_tables[4] = { NULL, "content_types", "voice_styles", "topics" };

static status catalog_version_read(db_conn *db, int64_t budget_ms, int64_t *v, int64_t *vt)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, CONTENT_CATALOG_SCOPE);
    status st = q(db, budget_ms, "catalog_version",
                  "SELECT COALESCE(max(version), 0), "
                  "COALESCE((extract(epoch FROM max(updated_at)) * 1000000)::bigint, 0) "
                  "FROM cache_versions WHERE scope = $1",
                  &p, &res);
    if (st == ST_OK) {
        *v = db_res_int64(res, 0, 0);
        *vt = db_res_int64(res, 0, 1);
    }
    db_res_free(res);
    return st;
}

static status load_entries(db_conn *db, content_catalog *s, catalog_kind kind, char *err,
                           size_t errcap)
{
    static const char *const sql[4] = {
        NULL,
        "SELECT key, display_name, description, enabled, min_chars, max_chars, prior_weight, " US(
            "updated_at") " FROM content_types ORDER BY key",
        "SELECT key, display_name, description, enabled, min_chars, max_chars, prior_weight, " US(
            "updated_at") " FROM voice_styles ORDER BY key",
        "SELECT key, display_name, description, enabled, min_chars, max_chars, prior_weight, " US(
            "updated_at") " FROM topics ORDER BY key",
    };
    static const char *const names[4] = { NULL, "catalog_load_content_types",
                                          "catalog_load_voice_styles", "catalog_load_topics" };
    db_res *res = NULL;
    status st = db_query(db, names[kind], sql[kind], NULL, &res);
    if (st != ST_OK)
        return st;
    int n = db_res_rows(res);
    s->upd_us[kind] = xcalloc((size_t)n + 1, sizeof(int64_t));
    for (int i = 0; i < n && st == ST_OK; i++) {
        catalog_entry e = {
            .key = db_res_text(res, i, 0),
            .display_name = db_res_text(res, i, 1),
            .description = db_res_text(res, i, 2),
            .enabled = db_res_bool(res, i, 3),
            .min_chars = (int)db_res_int64(res, i, 4),
            .max_chars = (int)db_res_int64(res, i, 5),
            .prior_weight = db_res_double(res, i, 6),
        };
        st = catalog_add_entry(s->cat, kind, &e);
        if (st != ST_OK) {
            set_err(err, errcap, "%s row %s: %s", kind_tables[kind], e.key, catalog_errmsg(s->cat));
            st = ST_INVALID;
        }
        s->upd_us[kind][i] = db_res_int64(res, i, 7);
    }
    db_res_free(res);
    return st;
}

static status load_snapshot(db_conn *db, content_catalog *s, char *err, size_t errcap)
{
    status st = ST_OK;
    db_res *res = NULL;
    for (int k = CATALOG_CONTENT_TYPE; k <= CATALOG_TOPIC && st == ST_OK; k++)
        st = load_entries(db, s, (catalog_kind)k, err, errcap);
    if (st == ST_OK)
        st = db_query(db, "catalog_load_facts",
                      "SELECT key, topic_key, fact, myth, takeaway, source, year, enabled "
                      "FROM topic_facts ORDER BY topic_key, key",
                      NULL, &res);
    for (int i = 0; st == ST_OK && i < db_res_rows(res); i++) {
        catalog_fact f = {
            .key = db_res_text(res, i, 0),
            .topic_key = db_res_text(res, i, 1),
            .fact = db_res_text(res, i, 2),
            .myth = db_res_text(res, i, 3),
            .takeaway = db_res_text(res, i, 4),
            .source = db_res_text(res, i, 5),
            .year = (int)db_res_int64(res, i, 6),
            .enabled = db_res_bool(res, i, 7),
        };
        if (catalog_add_fact(s->cat, &f) != ST_OK) {
            set_err(err, errcap, "topic_facts row %s: %s", f.key, catalog_errmsg(s->cat));
            st = ST_INVALID;
        }
    }
    db_res_free(res);
    res = NULL;
    if (st == ST_OK)
        st = db_query(db, "catalog_load_phrases",
                      "SELECT phrase, category, enabled FROM banned_phrases ORDER BY phrase", NULL,
                      &res);
    for (int i = 0; st == ST_OK && i < db_res_rows(res); i++) {
        catalog_phrase ph = { .phrase = db_res_text(res, i, 0),
                              .category = db_res_text(res, i, 1),
                              .enabled = db_res_bool(res, i, 2) };
        if (catalog_add_phrase(s->cat, &ph) != ST_OK) {
            set_err(err, errcap, "banned_phrases row %s: %s", ph.phrase, catalog_errmsg(s->cat));
            st = ST_INVALID;
        }
    }
    db_res_free(res);
    if (st == ST_OK && catalog_finish(s->cat) != ST_OK) {
        set_err(err, errcap, "catalog: %s", catalog_errmsg(s->cat));
        st = ST_INVALID;
    }
    return st;
}

status content_catalog_acquire(db_conn *db, int64_t budget_ms, content_catalog **out, char *err,
                               size_t errcap)
{
    int64_t v = 0, vt = 0;
    *out = NULL;
    set_err(err, errcap, "%s", "");
    status st = catalog_version_read(db, budget_ms, &v, &vt);
    if (st != ST_OK)
        return st;
    pthread_mutex_lock(&cat_mu);
    if (cat_cur != NULL && cat_cur->version == v && cat_cur->vtime_us == vt)
        *out = content_catalog_ref(cat_cur);
    pthread_mutex_unlock(&cat_mu);
    if (*out != NULL)
        return ST_OK;

    /* Load outside the lock: a slow load must not stall callers that hold
     * a current snapshot already. Two loaders may race; either result is
     * correct for its version. */
    content_catalog *s = xcalloc(1, sizeof *s);
    s->cat = catalog_new();
    s->version = v;
    s->vtime_us = vt;
    atomic_init(&s->refs, 1);
    bool own_tx = !db_in_tx(db);
    st = own_tx ? db_begin(db, budget_ms) : ST_OK;
    if (st == ST_OK)
        st = load_snapshot(db, s, err, errcap);
    if (own_tx) {
        if (st == ST_OK)
            st = db_commit(db);
        else
            db_rollback(db);
    }
    if (st != ST_OK) {
        snap_free(s);
        return st;
    }
    pthread_mutex_lock(&cat_mu);
    content_catalog *old = cat_cur;
    cat_cur = content_catalog_ref(s);
    pthread_mutex_unlock(&cat_mu);
    content_catalog_release(old);
    *out = s;
    return ST_OK;
}

static Herald__V1__CatalogEntry *entry_msg(arena *a, catalog_kind kind, const catalog_entry *e,
                                           int64_t upd_us)
{
    Herald__V1__CatalogEntry *m = arena_alloc(a, sizeof *m);
    if (m == NULL)
        return NULL;
    herald__v1__catalog_entry__init(m);
    m->kind = (Herald__V1__CatalogKind)kind;
    m->key = adup(a, e->key);
    m->display_name = adup(a, e->display_name);
    m->description = adup(a, e->description);
    m->enabled = e->enabled;
    m->min_length = e->min_chars;
    m->max_length = e->max_chars;
    m->prior_weight = e->prior_weight;
    m->update_time = handler_ts_from_us(a, upd_us);
    return m;
}

static bool facts_msg(arena *a, Herald__V1__CatalogEntry *m, const catalog_fact *facts, size_t n,
                      bool include_disabled)
{
    size_t k = 0;
    m->facts = arena_alloc(a, (n + 1) * sizeof *m->facts);
    if (m->facts == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!facts[i].enabled && !include_disabled)
            continue;
        Herald__V1__TopicFact *f = arena_alloc(a, sizeof *f);
        if (f == NULL)
            return false;
        herald__v1__topic_fact__init(f);
        f->text = adup(a, facts[i].fact);
        f->source = adup(a, facts[i].source);
        f->year = facts[i].year;
        m->facts[k++] = f;
    }
    m->n_facts = k;
    return true;
}

Herald__V1__CatalogEntry *content_catalog_entry_msg(arena *a, const content_catalog *c,
                                                    catalog_kind kind, size_t i,
                                                    bool include_disabled)
{
    const catalog_entry *e = catalog_entry_at(c->cat, kind, i);
    if (e == NULL)
        return NULL;
    Herald__V1__CatalogEntry *m = entry_msg(a, kind, e, c->upd_us[kind][i]);
    if (m != NULL && kind == CATALOG_TOPIC) {
        size_t n = 0;
        const catalog_fact *f = catalog_topic_facts(c->cat, e->key, &n);
        if (!facts_msg(a, m, f, n, include_disabled))
            return NULL;
    }
    return m;
}

status content_catalog_update_tx(db_conn *db, catalog_kind kind, const char *key,
                                 const content_catalog_patch *p, char *err, size_t errcap)
{
    static const char *const sel[4] = {
        NULL,
        "SELECT min_chars, max_chars FROM content_types WHERE key = $1 FOR UPDATE",
        "SELECT min_chars, max_chars FROM voice_styles WHERE key = $1 FOR UPDATE",
        "SELECT min_chars, max_chars FROM topics WHERE key = $1 FOR UPDATE",
    };
#define UPD_SET                                                                                   \
    " SET display_name = CASE WHEN $2 THEN $3 ELSE display_name END, "                            \
    "description = CASE WHEN $4 THEN $5 ELSE description END, "                                   \
    "enabled = CASE WHEN $6 THEN $7 ELSE enabled END, min_chars = $8::int, max_chars = $9::int, " \
    "prior_weight = CASE WHEN $10 THEN $11::float8 ELSE prior_weight END, updated_at = now() "    \
    "WHERE key = $1"
    static const char *const upd[4] = {
        NULL,
        "UPDATE content_types" UPD_SET,
        "UPDATE voice_styles" UPD_SET,
        "UPDATE topics" UPD_SET,
    };
#undef UPD_SET
    db_params prm;
    db_res *res = NULL;
    if (kind < CATALOG_CONTENT_TYPE || kind > CATALOG_TOPIC)
        return ST_INVALID;
    db_params_init(&prm);
    db_param_text(&prm, key);
    status st = db_query(db, "catalog_entry_lock", sel[kind], &prm, &res);
    if (st == ST_OK && db_res_rows(res) == 0)
        st = ST_NOT_FOUND;
    if (st != ST_OK) {
        db_res_free(res);
        return st;
    }
    int min_c = p->has_min ? p->min_chars : (int)db_res_int64(res, 0, 0);
    int max_c = p->has_max ? p->max_chars : (int)db_res_int64(res, 0, 1);
    db_res_free(res);
    if (min_c > max_c) {
        set_err(err, errcap, "min_length %d would exceed max_length %d", min_c, max_c);
        return ST_INVALID;
    }
    db_params_init(&prm);
    db_param_text(&prm, key);
    db_param_bool(&prm, p->has_display_name);
    db_param_text(&prm, p->display_name != NULL ? p->display_name : "");
    db_param_bool(&prm, p->has_description);
    db_param_text(&prm, p->description != NULL ? p->description : "");
    db_param_bool(&prm, p->has_enabled);
    db_param_bool(&prm, p->enabled);
    db_param_int64(&prm, min_c);
    db_param_int64(&prm, max_c);
    db_param_bool(&prm, p->has_weight);
    db_param_double(&prm, p->has_weight ? p->prior_weight : 1.0);
    st = db_query(db, "catalog_entry_update", upd[kind], &prm, NULL);
    if (st == ST_OK) {
        int64_t v = 0;
        st = db_version_bump(db, CONTENT_CATALOG_SCOPE, &v);
    }
    return st;
}

status content_catalog_entry_get_tx(db_conn *db, arena *a, catalog_kind kind, const char *key,
                                    Herald__V1__CatalogEntry **out)
{
    static const char *const sel[4] = {
        NULL,
        "SELECT key, display_name, description, enabled, min_chars, max_chars, prior_weight, " US(
            "updated_at") " FROM content_types WHERE key = $1",
        "SELECT key, display_name, description, enabled, min_chars, max_chars, prior_weight, " US(
            "updated_at") " FROM voice_styles WHERE key = $1",
        "SELECT key, display_name, description, enabled, min_chars, max_chars, prior_weight, " US(
            "updated_at") " FROM topics WHERE key = $1",
    };
    db_params prm;
    db_res *res = NULL;
    *out = NULL;
    if (kind < CATALOG_CONTENT_TYPE || kind > CATALOG_TOPIC)
        return ST_INVALID;
    db_params_init(&prm);
    db_param_text(&prm, key);
    status st = db_query(db, "catalog_entry_get", sel[kind], &prm, &res);
    if (st == ST_OK && db_res_rows(res) == 0)
        st = ST_NOT_FOUND;
    if (st != ST_OK) {
        db_res_free(res);
        return st;
    }
    catalog_entry e = {
        .key = db_res_text(res, 0, 0),
        .display_name = db_res_text(res, 0, 1),
        .description = db_res_text(res, 0, 2),
        .enabled = db_res_bool(res, 0, 3),
        .min_chars = (int)db_res_int64(res, 0, 4),
        .max_chars = (int)db_res_int64(res, 0, 5),
        .prior_weight = db_res_double(res, 0, 6),
    };
    Herald__V1__CatalogEntry *m = entry_msg(a, kind, &e, db_res_int64(res, 0, 7));
    db_res_free(res);
    res = NULL;
    if (m == NULL)
        return ST_EXHAUSTED;
    if (kind == CATALOG_TOPIC) {
        st = db_query(db, "catalog_topic_facts",
                      "SELECT fact, source, year FROM topic_facts WHERE topic_key = $1 "
                      "AND enabled ORDER BY key",
                      &prm, &res);
        if (st != ST_OK)
            return st;
        int n = db_res_rows(res);
        m->facts = arena_alloc(a, ((size_t)n + 1) * sizeof *m->facts);
        for (int i = 0; m->facts != NULL && i < n; i++) {
            Herald__V1__TopicFact *f = arena_alloc(a, sizeof *f);
            if (f == NULL)
                break;
            herald__v1__topic_fact__init(f);
            f->text = adup(a, db_res_text(res, i, 0));
            f->source = adup(a, db_res_text(res, i, 1));
            f->year = (int32_t)db_res_int64(res, i, 2);
            m->facts[m->n_facts++] = f;
        }
        db_res_free(res);
        if (m->facts == NULL || (int)m->n_facts != n)
            return ST_EXHAUSTED;
    }
    *out = m;
    return ST_OK;
}

/* ================================================================ profiles */

status content_profile_resolve(db_conn *db, int64_t budget_ms, arena *a, const char *id,
                               Herald__V1__Profile **out, char *err, size_t errcap)
{
    *out = NULL;
    set_err(err, errcap, "%s", "");
    if (id == NULL || id[0] == '\0') {
        db_res *res = NULL;
        status st = q(db, budget_ms, "content_only_profile",
                      "SELECT profile_id FROM profiles ORDER BY profile_id LIMIT 2", NULL, &res);
        if (st != ST_OK)
            return st;
        int n = db_res_rows(res);
        char one[64] = "";
        if (n == 1)
            (void)snprintf(one, sizeof one, "%s", db_res_text(res, 0, 0));
        db_res_free(res);
        if (n != 1) {
            set_err(err, errcap,
                    n == 0 ? "no profile exists yet: create one first"
                           : "several profiles exist: name one in profile_id");
            return ST_INVALID;
        }
        return db_in_tx(db) ? profile_get_tx(db, a, one, false, out)
                            : profile_get(db, budget_ms, a, one, out);
    }
    return db_in_tx(db) ? profile_get_tx(db, a, id, false, out)
                        : profile_get(db, budget_ms, a, id, out);
}

/* ================================================================ posts */

bool content_hash_hex(const char *text, size_t len, char out[CONTENT_HASH_HEX])
{
    static const char hex[] = "0123456789abcdef";
    strbuf norm = { 0 };
    uint8_t sum[32];
    out[0] = '\0';
    if (textsim_normalize(text, len, &norm) != ST_OK) {
        strbuf_fini(&norm);
        return false;
    }
    db_sha256(norm.data != NULL ? norm.data : "", norm.len, sum);
    strbuf_fini(&norm);
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = hex[sum[i] >> 4];
        out[2 * i + 1] = hex[sum[i] & 15];
    }
    out[64] = '\0';
    return true;
}

status content_live_hash_owner(db_conn *db, int64_t budget_ms, const char *profile_id,
                               const char *hash, const char *exclude_id,
                               char out_id[CONTENT_ID_MAX])
{
    db_params p;
    db_res *res = NULL;
    out_id[0] = '\0';
    db_params_init(&p);
    db_param_text(&p, profile_id);
    db_param_text(&p, hash);
    db_param_text(&p, exclude_id != NULL && exclude_id[0] != '\0' ? exclude_id : NULL);
    status st = q(db, budget_ms, "post_live_hash",
                  "SELECT post_id::text FROM posts WHERE profile_id = $1 AND content_hash = $2 "
                  "AND state NOT IN ('rejected', 'cancelled', 'failed') "
                  "AND ($3::uuid IS NULL OR post_id <> $3::uuid) LIMIT 1",
                  &p, &res);
    if (st == ST_OK && db_res_rows(res) > 0)
        (void)snprintf(out_id, CONTENT_ID_MAX, "%s", db_res_text(res, 0, 0));
    db_res_free(res);
    return st;
}

/* The columns of a post for a row source aliased p (with n, e, o, s joined
 * as in POST_FROM); row_to_post reads them in this order. */
#define POST_COLS                                                                                                                    \
    "p.post_id::text, p.profile_id, p.state, p.platform, p.kind, p.text, "                                                           \
    "COALESCE(p.content_type, ''), COALESCE(p.voice_style, ''), COALESCE(p.topic, ''), "                                             \
    "p.provider, p.llm_model, p.seed, p.human_edited, COALESCE(p.decision_id::text, ''), "                                           \
    "COALESCE(p.source_post_id::text, ''), COALESCE(p.reply_opportunity_id::text, ''), "                                             \
    "p.reply_to_external_id, p.content_hash, " US("p.schedule_time") ", p.hour_of_week, " US(                                        \
        "p.publish_time") ", COALESCE(p.external_id, "                                                                               \
                          "''), "                                                                                                    \
                          "COALESCE(p.external_url, "                                                                                \
                          "''), "                                                                                                    \
                          "p.attempt_count, "                                                                                        \
                          "COALESCE(p.last_outcome, "                                                                                \
                          "''), "                                                                                                    \
                          "COALESCE(p.last_error_"                                                                                   \
                          "class, ''), "                                                                                             \
                          "p.last_error, " US(                                                                                       \
                              "p.next_"                                                                                              \
                              "attempt"                                                                                              \
                              "_time") ", p.state_reason, p.revision, " US("p.created_at") ","                                       \
                                                                                           " " US(                                   \
                                                                                               "p"                                   \
                                                                                               "."                                   \
                                                                                               "u"                                   \
                                                                                               "p"                                   \
                                                                                               "d"                                   \
                                                                                               "a"                                   \
                                                                                               "t"                                   \
                                                                                               "e"                                   \
                                                                                               "d"                                   \
                                                                                               "_"                                   \
                                                                                               "a"                                   \
                                                                                               "t") ", "                             \
                                                                                                    "COALESC"                        \
                                                                                                    "E(p."                           \
                                                                                                    "slot_"                          \
                                                                                                    "decisio"                        \
                                                                                                    "n_id::"                         \
                                                                                                    "text, "                         \
                                                                                                    "''), "                          \
                                                                                                    "COALESC"                        \
                                                                                                    "E(p."                           \
                                                                                                    "nearest"                        \
                                                                                                    "_duplic"                        \
                                                                                                    "ate_id:"                        \
                                                                                                    ":text, "                        \
                                                                                                    "''), "                          \
                                                                                                    "p."                             \
                                                                                                    "nearest"                        \
                                                                                                    "_simila"                        \
                                                                                                    "rity, "                         \
                                                                                                    "left(n."                        \
                                                                                                    "text, "                         \
                                                                                                    "200),"                          \
                                                                                                    " " US(                          \
                                                                                                        "n."                         \
                                                                                                        "cre"                        \
                                                                                                        "ate"                        \
                                                                                                        "d_"                         \
                                                                                                        "at") ", "                   \
                                                                                                              "n.content_hash = "    \
                                                                                                              "p.content_hash, " US( \
                                                                                                                  "e.observed_at") ", "

#define POST_COLS2                                                                    \
    "e.source, e.impressions, e.likes, e.replies, e.reposts, e.quotes, e.bookmarks, " \
    "e.profile_visits, e.link_clicks, e.follows, o.reward_version, o.reward, "        \
    "o.engagement_rate, o.follows_per_1k, o.learnable, o.learnable_reason, " US(      \
        "o.checkpoint_time") ", " US("o.computed_at") ", s.n, s.mean, s.counts"

#define POST_FROM                                                                               \
    " FROM posts p LEFT JOIN posts n ON n.post_id = p.nearest_duplicate_id "                    \
    "LEFT JOIN LATERAL (SELECT * FROM engagement_observations e0 WHERE e0.post_id = p.post_id " \
    "ORDER BY e0.observed_at DESC, e0.observation_id DESC LIMIT 1) e ON true "                  \
    "LEFT JOIN LATERAL (SELECT o0.* FROM outcomes o0 JOIN reward_versions r0 "                  \
    "ON r0.reward_version = o0.reward_version AND r0.is_current "                               \
    "WHERE o0.post_id = p.post_id) o ON true "                                                  \
    "LEFT JOIN LATERAL (SELECT count(*) AS n, avg(r1.score) AS mean, "                          \
    "(SELECT string_agg(x.label || ':' || x.c, ',') FROM (SELECT r2.label, count(*) AS c "      \
    "FROM post_replies r2 WHERE r2.post_id = p.post_id GROUP BY r2.label) x) AS counts "        \
    "FROM post_replies r1 WHERE r1.post_id = p.post_id) s ON true"

enum {
    P_ID = 0,
    P_PROFILE,
    P_STATE,
    P_PLATFORM,
    P_KIND,
    P_TEXT,
    P_CT,
    P_VS,
    P_TOPIC,
    P_PROVIDER,
    P_MODEL,
    P_SEED,
    P_HUMAN,
    P_DECISION,
    P_SOURCE,
    P_OPP,
    P_REPLY_TO,
    P_HASH,
    P_SCHED_US,
    P_HOW,
    P_PUB_US,
    P_EXT_ID,
    P_EXT_URL,
    P_ATTEMPTS,
    P_OUTCOME,
    P_ERR_CLASS,
    P_ERR,
    P_NEXT_US,
    P_REASON,
    P_REVISION,
    P_CREATED_US,
    P_UPDATED_US,
    P_SLOT_DECISION,
    P_DUP_ID,
    P_DUP_SIM,
    P_DUP_EXCERPT,
    P_DUP_CREATED_US,
    P_DUP_EXACT,
    P_E_US,
    P_E_SOURCE,
    P_E_METRICS, /* 9 metric columns */
    P_O_VERSION = P_E_METRICS + 9,
    P_O_REWARD,
    P_O_RATE,
    P_O_F1K,
    P_O_LEARNABLE,
    P_O_LREASON,
    P_O_CHECK_US,
    P_O_COMPUTED_US,
    P_S_N,
    P_S_MEAN,
    P_S_COUNTS,
};

static Google__Protobuf__Timestamp *ts_col(arena *a, const db_res *r, int row, int col)
{
    return db_res_null(r, row, col) ? NULL : handler_ts_from_us(a, db_res_int64(r, row, col));
}

static Herald__V1__EngagementObservation *engagement_of(arena *a, const db_res *r, int row,
                                                        const char *post_id)
{
    if (db_res_null(r, row, P_E_US))
        return NULL;
    Herald__V1__EngagementObservation *e = arena_alloc(a, sizeof *e);
    if (e == NULL)
        return NULL;
    herald__v1__engagement_observation__init(e);
    e->post_id = (char *)post_id;
    e->observe_time = ts_col(a, r, row, P_E_US);
    e->source = adup(a, db_res_text(r, row, P_E_SOURCE));
#define METRIC(i, field, CASE)                                            \
    if (!db_res_null(r, row, P_E_METRICS + (i))) {                        \
        e->field = db_res_int64(r, row, P_E_METRICS + (i));               \
        e->field##_opt_case = HERALD__V1__ENGAGEMENT_OBSERVATION__##CASE; \
    }
    METRIC(0, impressions, IMPRESSIONS_OPT_IMPRESSIONS)
    METRIC(1, likes, LIKES_OPT_LIKES)
    METRIC(2, replies, REPLIES_OPT_REPLIES)
    METRIC(3, reposts, REPOSTS_OPT_REPOSTS)
    METRIC(4, quotes, QUOTES_OPT_QUOTES)
    METRIC(5, bookmarks, BOOKMARKS_OPT_BOOKMARKS)
    METRIC(6, profile_visits, PROFILE_VISITS_OPT_PROFILE_VISITS)
    METRIC(7, link_clicks, LINK_CLICKS_OPT_LINK_CLICKS)
    METRIC(8, follows, FOLLOWS_OPT_FOLLOWS)
#undef METRIC
    return e;
}

static Herald__V1__PostOutcome *outcome_of(arena *a, const db_res *r, int row)
{
    if (db_res_null(r, row, P_O_VERSION))
        return NULL;
    Herald__V1__PostOutcome *o = arena_alloc(a, sizeof *o);
    if (o == NULL)
        return NULL;
    herald__v1__post_outcome__init(o);
    o->reward_version = adup(a, db_res_text(r, row, P_O_VERSION));
    if (!db_res_null(r, row, P_O_REWARD)) {
        o->reward = db_res_double(r, row, P_O_REWARD);
        o->reward_opt_case = HERALD__V1__POST_OUTCOME__REWARD_OPT_REWARD;
    }
    if (!db_res_null(r, row, P_O_RATE)) {
        o->engagement_rate = db_res_double(r, row, P_O_RATE);
        o->engagement_rate_opt_case = HERALD__V1__POST_OUTCOME__ENGAGEMENT_RATE_OPT_ENGAGEMENT_RATE;
    }
    if (!db_res_null(r, row, P_O_F1K)) {
        o->follows_per_1k_impressions = db_res_double(r, row, P_O_F1K);
        o->follows_per_1k_impressions_opt_case =
            HERALD__V1__POST_OUTCOME__FOLLOWS_PER_1K_IMPRESSIONS_OPT_FOLLOWS_PER_1K_IMPRESSIONS;
    }
    o->learnable = db_res_bool(r, row, P_O_LEARNABLE);
    o->learnable_reason = adup(a, db_res_text(r, row, P_O_LREASON));
    o->checkpoint_time = ts_col(a, r, row, P_O_CHECK_US);
    o->compute_time = ts_col(a, r, row, P_O_COMPUTED_US);
    return o;
}

static Herald__V1__SentimentSummary *sentiment_of(arena *a, const db_res *r, int row,
                                                  const char *post_id)
{
    int64_t n = db_res_int64(r, row, P_S_N);
    if (n <= 0)
        return NULL;
    Herald__V1__SentimentSummary *s = arena_alloc(a, sizeof *s);
    if (s == NULL)
        return NULL;
    herald__v1__sentiment_summary__init(s);
    s->post_id = (char *)post_id;
    s->reply_count = n;
    if (!db_res_null(r, row, P_S_MEAN)) {
        s->mean_score = db_res_double(r, row, P_S_MEAN);
        s->mean_score_opt_case = HERALD__V1__SENTIMENT_SUMMARY__MEAN_SCORE_OPT_MEAN_SCORE;
    }
    /* "label:count,label:count", put in enum order */
    const char *t = db_res_text(r, row, P_S_COUNTS);
    size_t cap = 1;
    for (const char *c = t; *c; c++)
        cap += *c == ',';
    s->counts = arena_alloc(a, cap * sizeof *s->counts);
    if (s->counts == NULL)
        return NULL;
    while (*t != '\0') {
        const char *colon = strchr(t, ':');
        const char *end = strchr(t, ',');
        if (end == NULL)
            end = t + strlen(t);
        if (colon == NULL || colon > end)
            break;
        char label[32];
        (void)snprintf(label, sizeof label, "%.*s", (int)(colon - t), t);
        Herald__V1__SentimentCount *sc = arena_alloc(a, sizeof *sc);
        if (sc == NULL)
            return NULL;
        herald__v1__sentiment_count__init(sc);
        sc->label = enum_of(&herald__v1__sentiment_label__descriptor, label);
        sc->count = strtoll(colon + 1, NULL, 10);
        size_t k = s->n_counts++;
        while (k > 0 && s->counts[k - 1]->label > sc->label) {
            s->counts[k] = s->counts[k - 1];
            k--;
        }
        s->counts[k] = sc;
        t = *end == ',' ? end + 1 : end;
    }
    return s;
}

/* The post in row `row`; NULL when the arena is full. */
static Herald__V1__Post *row_to_post(arena *a, const db_res *r, int row)
{
    Herald__V1__Post *p = arena_alloc(a, sizeof *p);
    Herald__V1__ArmChoice *arms = arena_alloc(a, sizeof *arms);
    if (p == NULL || arms == NULL)
        return NULL;
    herald__v1__post__init(p);
    herald__v1__arm_choice__init(arms);
#define TXT(c) adup(a, db_res_text(r, row, (c)))
    p->post_id = TXT(P_ID);
    p->profile_id = TXT(P_PROFILE);
    p->state = enum_of(&herald__v1__post_state__descriptor, db_res_text(r, row, P_STATE));
    p->platform = enum_of(&herald__v1__platform__descriptor, db_res_text(r, row, P_PLATFORM));
    p->kind = enum_of(&herald__v1__post_kind__descriptor, db_res_text(r, row, P_KIND));
    p->text = TXT(P_TEXT);
    arms->content_type = TXT(P_CT);
    arms->voice_style = TXT(P_VS);
    arms->topic = TXT(P_TOPIC);
    p->arms = arms;
    p->provider = enum_of(&herald__v1__provider__descriptor, db_res_text(r, row, P_PROVIDER));
    p->llm_model = TXT(P_MODEL);
    p->seed = (uint64_t)db_res_int64(r, row, P_SEED);
    p->human_edited = db_res_bool(r, row, P_HUMAN);
    p->decision_id = TXT(P_DECISION);
    p->source_post_id = TXT(P_SOURCE);
    p->reply_opportunity_id = TXT(P_OPP);
    p->reply_to_external_id = TXT(P_REPLY_TO);
    p->content_hash = TXT(P_HASH);
    p->schedule_time = ts_col(a, r, row, P_SCHED_US);
    if (!db_res_null(r, row, P_HOW)) {
        p->hour_of_week = (int32_t)db_res_int64(r, row, P_HOW);
        p->hour_of_week_opt_case = HERALD__V1__POST__HOUR_OF_WEEK_OPT_HOUR_OF_WEEK;
    }
    p->publish_time = ts_col(a, r, row, P_PUB_US);
    p->external_id = TXT(P_EXT_ID);
    p->external_url = TXT(P_EXT_URL);
    p->attempt_count = (int32_t)db_res_int64(r, row, P_ATTEMPTS);
    p->last_outcome =
        enum_of(&herald__v1__publish_outcome__descriptor, db_res_text(r, row, P_OUTCOME));
    p->last_error_class =
        enum_of(&herald__v1__publish_error_class__descriptor, db_res_text(r, row, P_ERR_CLASS));
    p->last_error = TXT(P_ERR);
    p->next_attempt_time = ts_col(a, r, row, P_NEXT_US);
    p->state_reason = TXT(P_REASON);
    p->revision = db_res_int64(r, row, P_REVISION);
    p->create_time = ts_col(a, r, row, P_CREATED_US);
    p->update_time = ts_col(a, r, row, P_UPDATED_US);
    p->timing_decision_id = TXT(P_SLOT_DECISION);
    if (!db_res_null(r, row, P_DUP_ID) && db_res_text(r, row, P_DUP_ID)[0] != '\0') {
        Herald__V1__DuplicateMatch *d = arena_alloc(a, sizeof *d);
        if (d == NULL)
            return NULL;
        herald__v1__duplicate_match__init(d);
        d->post_id = TXT(P_DUP_ID);
        d->similarity = db_res_double(r, row, P_DUP_SIM);
        d->exact = db_res_bool(r, row, P_DUP_EXACT);
        d->text_excerpt = TXT(P_DUP_EXCERPT);
        d->create_time = ts_col(a, r, row, P_DUP_CREATED_US);
        p->nearest_duplicate = d;
    }
#undef TXT
    p->latest_engagement = engagement_of(a, r, row, p->post_id);
    p->outcome = outcome_of(a, r, row);
    p->sentiment = sentiment_of(a, r, row, p->post_id);
    if (p->create_time == NULL || p->update_time == NULL)
        return NULL;
    return p;
}

static Herald__V1__GateResult *gate_row_msg(arena *a, const db_res *r, int row, int off)
{
    Herald__V1__GateResult *g = arena_alloc(a, sizeof *g);
    if (g == NULL)
        return NULL;
    herald__v1__gate_result__init(g);
    g->gate = enum_of(&herald__v1__gate__descriptor, db_res_text(r, row, off));
    g->verdict = enum_of(&herald__v1__gate_verdict__descriptor, db_res_text(r, row, off + 1));
    g->reason = adup(a, db_res_text(r, row, off + 2));
    if (!db_res_null(r, row, off + 3)) {
        g->score = db_res_double(r, row, off + 3);
        g->score_opt_case = HERALD__V1__GATE_RESULT__SCORE_OPT_SCORE;
    }
    if (!db_res_null(r, row, off + 4)) {
        g->threshold = db_res_double(r, row, off + 4);
        g->threshold_opt_case = HERALD__V1__GATE_RESULT__THRESHOLD_OPT_THRESHOLD;
    }
    return g;
}

/* Appends g to p's gate results (capacity GATE_COUNT), in gate order. */
static void gate_add(Herald__V1__Post *p, Herald__V1__GateResult *g)
{
    size_t k = p->n_gate_results++;
    while (k > 0 && p->gate_results[k - 1]->gate > g->gate) {
        p->gate_results[k] = p->gate_results[k - 1];
        k--;
    }
    p->gate_results[k] = g;
}

status content_post_get(db_conn *db, int64_t budget_ms, arena *a, const char *post_id,
                        bool for_update, Herald__V1__Post **out)
{
    db_params p;
    db_res *res = NULL;
    status st;
    bool own_tx = !db_in_tx(db);
    *out = NULL;
    if (own_tx && (st = db_begin(db, budget_ms)) != ST_OK)
        return st;
    db_params_init(&p);
    db_param_text(&p, post_id);
    st = for_update
             ? db_query(db, "post_get_for_update",
                        "SELECT " POST_COLS POST_COLS2 POST_FROM
                        " WHERE p.post_id = $1::uuid FOR UPDATE OF p",
                        &p, &res)
             : db_query(db, "post_get",
                        "SELECT " POST_COLS POST_COLS2 POST_FROM " WHERE p.post_id = $1::uuid", &p,
                        &res);
    if (st == ST_OK && db_res_rows(res) == 0)
        st = ST_NOT_FOUND;
    Herald__V1__Post *post = NULL;
    if (st == ST_OK && (post = row_to_post(a, res, 0)) == NULL)
        st = ST_EXHAUSTED;
    db_res_free(res);
    res = NULL;
    if (st == ST_OK) {
        db_params_init(&p);
        db_param_text(&p, post_id);
        db_param_int64(&p, post->revision);
        st = db_query(db, "post_gate_results",
                      "SELECT gate, verdict, reason, score, threshold FROM gate_results "
                      "WHERE post_id = $1::uuid AND revision = (SELECT max(revision) FROM "
                      "gate_results WHERE post_id = $1::uuid AND revision <= $2)",
                      &p, &res);
    }
    if (st == ST_OK) {
        post->gate_results = arena_alloc(a, GATE_COUNT * sizeof *post->gate_results);
        for (int i = 0; post->gate_results != NULL && i < db_res_rows(res) && i < GATE_COUNT; i++) {
            Herald__V1__GateResult *g = gate_row_msg(a, res, i, 0);
            if (g == NULL)
                break;
            gate_add(post, g);
        }
        if (post->gate_results == NULL)
            st = ST_EXHAUSTED;
    }
    db_res_free(res);
    if (own_tx) {
        if (st == ST_OK)
            st = db_commit(db);
        else
            db_rollback(db);
    }
    if (st == ST_OK)
        *out = post;
    return st;
}

/* A text[] literal {a,b} of values that need no quoting (database enum
 * spellings, catalog keys, uuids). */
static char *plain_array(const char *const *v, size_t n)
{
    strbuf b = { 0 };
    strbuf_putc(&b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            strbuf_putc(&b, ',');
        strbuf_puts(&b, v[i]);
    }
    strbuf_putc(&b, '}');
    return strbuf_take(&b);
}

status content_post_list(db_conn *db, int64_t budget_ms, arena *a, const content_post_filter *f,
                         content_post_page *out)
{
    db_params p;
    db_res *res = NULL;
    char *states = NULL, *ids = NULL;
    status st;
    bool own_tx = !db_in_tx(db);

    memset(out, 0, sizeof *out);
    if (own_tx && (st = db_begin(db, budget_ms)) != ST_OK)
        return st;
    if (f->n_states > 0)
        states = plain_array(f->states, f->n_states);
    db_params_init(&p);
    db_param_text(&p, f->profile_id);
    db_param_text(&p, states);
    db_param_text(&p, f->platform);
    db_param_text(&p, f->kind);
    db_param_text(&p, f->content_type);
    db_param_text(&p, f->voice_style);
    db_param_text(&p, f->topic);
    if (f->min_create_us != 0)
        db_param_int64(&p, f->min_create_us);
    else
        db_param_null(&p);
    if (f->max_create_us != 0)
        db_param_int64(&p, f->max_create_us);
    else
        db_param_null(&p);
    if (f->has_after) {
        db_param_int64(&p, f->after_us);
        db_param_text(&p, f->after_id);
    } else {
        db_param_null(&p);
        db_param_null(&p);
    }
    db_param_int64(&p, (int64_t)f->limit + 1);
    st = db_query(db, "post_list",
                  "SELECT " POST_COLS POST_COLS2 POST_FROM
                  " WHERE ($1::text IS NULL OR p.profile_id = $1) "
                  "AND ($2::text[] IS NULL OR p.state = ANY($2::text[])) "
                  "AND ($3::text IS NULL OR p.platform = $3) AND ($4::text IS NULL OR p.kind = $4) "
                  "AND ($5::text IS NULL OR p.content_type = $5) "
                  "AND ($6::text IS NULL OR p.voice_style = $6) "
                  "AND ($7::text IS NULL OR p.topic = $7) "
                  "AND ($8::bigint IS NULL OR p.created_at >= "
                  "timestamptz 'epoch' + $8::bigint * interval '1 microsecond') "
                  "AND ($9::bigint IS NULL OR p.created_at < "
                  "timestamptz 'epoch' + $9::bigint * interval '1 microsecond') "
                  "AND ($10::bigint IS NULL OR (p.created_at, p.post_id) < "
                  "(timestamptz 'epoch' + $10::bigint * interval '1 microsecond', $11::uuid)) "
                  "ORDER BY p.created_at DESC, p.post_id DESC LIMIT $12::int",
                  &p, &res);
    if (st != ST_OK)
        goto out;
    size_t n = (size_t)db_res_rows(res);
    if (n > (size_t)f->limit) {
        out->more = true;
        n = (size_t)f->limit;
    }
    out->posts = arena_alloc(a, (n + 1) * sizeof *out->posts);
    if (out->posts == NULL) {
        st = ST_EXHAUSTED;
        goto out;
    }
    const char **idv = xcalloc(n + 1, sizeof *idv);
    for (size_t i = 0; i < n; i++) {
        out->posts[i] = row_to_post(a, res, (int)i);
        if (out->posts[i] == NULL) {
            free(idv);
            st = ST_EXHAUSTED;
            goto out;
        }
        out->posts[i]->gate_results =
            arena_alloc(a, GATE_COUNT * sizeof *out->posts[i]->gate_results);
        idv[i] = out->posts[i]->post_id;
    }
    out->n = n;
    if (n > 0)
        out->last_create_us = db_res_int64(res, (int)n - 1, P_CREATED_US);
    ids = plain_array(idv, n);
    free(idv);
    db_res_free(res);
    res = NULL;
    if (n == 0)
        goto out;
    db_params_init(&p);
    db_param_text(&p, ids);
    st = db_query(db, "post_list_gate_results",
                  "SELECT g.post_id::text, g.gate, g.verdict, g.reason, g.score, g.threshold "
                  "FROM gate_results g WHERE g.post_id = ANY($1::uuid[]) AND g.revision = "
                  "(SELECT max(g2.revision) FROM gate_results g2 WHERE g2.post_id = g.post_id)",
                  &p, &res);
    for (int i = 0; st == ST_OK && i < db_res_rows(res); i++) {
        const char *id = db_res_text(res, i, 0);
        for (size_t k = 0; k < n; k++) {
            Herald__V1__Post *post = out->posts[k];
            if (strcmp(post->post_id, id) != 0 || post->gate_results == NULL ||
                post->n_gate_results >= GATE_COUNT)
                continue;
            Herald__V1__GateResult *g = gate_row_msg(a, res, i, 1);
            if (g == NULL) {
                st = ST_EXHAUSTED;
                break;
            }
            gate_add(post, g);
            break;
        }
    }
out:
    db_res_free(res);
    free(states);
    free(ids);
    if (own_tx) {
        if (st == ST_OK)
            st = db_commit(db);
        else
            db_rollback(db);
    }
    return st;
}

/* The gate results of r as a JSON array for jsonb_to_recordset. */
static char *gates_json(const gates_report *r)
{
    strbuf b = { 0 };
    strbuf_putc(&b, '[');
    for (int k = 0; k < GATE_COUNT; k++) {
        const gate_verdict *v = &r->verdicts[k];
        if (k > 0)
            strbuf_putc(&b, ',');
        strbuf_printf(&b, "{\"gate\":\"%s\",\"verdict\":\"%s\",\"reason\":\"", gate_name(v->gate),
                      v->pass ? "pass" : "fail");
        strbuf_json_escape(&b, v->reason, strlen(v->reason));
        strbuf_puts(&b, "\",\"score\":");
        if (v->has_score && isfinite(v->score))
            strbuf_printf(&b, "%.17g", v->score);
        else
            strbuf_puts(&b, "null");
        strbuf_puts(&b, ",\"threshold\":");
        if (v->has_threshold && isfinite(v->threshold))
            strbuf_printf(&b, "%.17g", v->threshold);
        else
            strbuf_puts(&b, "null");
        strbuf_putc(&b, '}');
    }
    strbuf_putc(&b, ']');
    return strbuf_take(&b);
}

static status gates_insert_tx(db_conn *db, const char *post_id, int64_t revision,
                              const gates_report *r)
{
    db_params p;
    char *js = gates_json(r);
    db_params_init(&p);
    db_param_text(&p, post_id);
    db_param_int64(&p, revision);
    db_param_text(&p, js);
    status st =
        db_query(db, "gate_results_insert",
                 "INSERT INTO gate_results (post_id, revision, gate, verdict, reason, "
                 "score, threshold) SELECT $1::uuid, $2, g.gate, g.verdict, "
                 "left(g.reason, 1000), g.score, g.threshold FROM jsonb_to_recordset($3::jsonb) "
                 "AS g(gate text, verdict text, reason text, score float8, threshold float8)",
                 &p, NULL);
    free(js);
    return st;
}

/* The nearest duplicate of r as (id or NULL, similarity clamped to [0, 1]). */
static const char *dup_of(const gates_report *r, double *sim)
{
    *sim = 0;
    if (!r->has_nearest || r->nearest.id == NULL || !handler_uuid_valid(r->nearest.id))
        return NULL;
    *sim = r->nearest.score < 0 ? 0 : r->nearest.score > 1 ? 1 : r->nearest.score;
    return r->nearest.id;
}

static status decision_insert_tx(db_conn *db, const char *profile_id, const content_decision *d,
                                 char id_out[CONTENT_ID_MAX])
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, profile_id);
    db_param_text(&p, d->kind);
    db_param_text(&p, d->reward_version != NULL && d->reward_version[0] ? d->reward_version : NULL);
    db_param_text(&p, d->content_type);
    db_param_text(&p, d->voice_style);
    db_param_text(&p, d->topic);
    if (d->hour_of_week >= 0)
        db_param_int64(&p, d->hour_of_week);
    else
        db_param_null(&p);
    db_param_time_ms(&p, d->target_ms);
    db_param_int64(&p, (int64_t)d->seed);
    double prop = d->propensity > 1 ? 1 : d->propensity;
    if (!(prop > 0))
        prop = 1e-9; /* a draw always had some chance; the column demands > 0 */
    db_param_double(&p, d->forced ? 1.0 : prop);
    db_param_bool(&p, d->forced);
    db_param_text(&p, d->candidates_json != NULL ? d->candidates_json : "[]");
    db_param_text(&p, d->reason != NULL ? d->reason : "");
    status st =
        db_query(db, "decision_insert",
                 "INSERT INTO decisions (profile_id, kind, reward_version, content_type, "
                 "voice_style, topic, hour_of_week, target_time, seed, propensity, forced, "
                 "candidates, reason) VALUES ($1, $2, $3, $4, $5, $6, $7::smallint, "
                 "$8::timestamptz, $9::bigint, $10::float8, $11, $12::jsonb, left($13, 2000)) "
                 "RETURNING decision_id::text",
                 &p, &res);
    if (st == ST_OK)
        (void)snprintf(id_out, CONTENT_ID_MAX, "%s", db_res_text(res, 0, 0));
    db_res_free(res);
    if (st != ST_OK || d->n_pulls == 0 || d->reward_version == NULL || !d->reward_version[0])
        return st;
    /* pulls, in the lock order LearningService uses (scope, then key) */
    const char *sc[3], *ky[3];
    size_t n = d->n_pulls < 3 ? d->n_pulls : 3;
    for (size_t i = 0; i < n; i++) {
        sc[i] = d->pull_scope[i];
        ky[i] = d->pull_key[i];
    }
    char *sa = plain_array(sc, n), *ka = plain_array(ky, n);
    db_params_init(&p);
    db_param_text(&p, profile_id);
    db_param_text(&p, d->reward_version);
    db_param_text(&p, sa);
    db_param_text(&p, ka);
    st = db_query(db, "decision_pulls",
                  "INSERT INTO arm_stats AS a (profile_id, scope, arm_key, reward_version, pulls) "
                  "SELECT $1, u.s, u.k, $2, 1 FROM unnest($3::text[], $4::text[]) AS u(s, k) "
                  "ORDER BY u.s, u.k ON CONFLICT (profile_id, scope, arm_key, reward_version) "
                  "DO UPDATE SET pulls = a.pulls + 1",
                  &p, NULL);
    free(sa);
    free(ka);
    return st;
}

/* A unique violation on the live-text index means a concurrent writer stored
 * the same text first: ST_CONFLICT (ABORTED, retry) rather than
 * ALREADY_EXISTS, which would suggest the caller created it. */
static status unique_to_conflict(db_conn *db, status st)
{
    if (st == ST_ALREADY_EXISTS && (strcmp(db_constraint(db), "posts_live_content_uq") == 0 ||
                                    strcmp(db_constraint(db), "posts_reply_opportunity_uq") == 0))
        return ST_CONFLICT;
    return st;
}

status content_post_insert_tx(db_conn *db, const content_new_post *np, char id_out[CONTENT_ID_MAX])
{
    char hash[CONTENT_HASH_HEX];
    char decision_id[CONTENT_ID_MAX] = "";
    db_params p;
    db_res *res = NULL;
    status st = ST_OK;
    double sim = 0;

    id_out[0] = '\0';
    if (!content_hash_hex(np->text, np->len, hash))
        return ST_INVALID;
    if (np->decision != NULL)
        st = decision_insert_tx(db, np->profile_id, np->decision, decision_id);
    else if (np->decision_id != NULL && np->decision_id[0] != '\0')
        (void)snprintf(decision_id, sizeof decision_id, "%s", np->decision_id);
    if (st != ST_OK)
        return st;
    const char *dup = dup_of(np->gates, &sim);
    db_params_init(&p);
    db_param_text(&p, np->profile_id);
    db_param_text(&p, np->state);
    db_param_text(&p, platform_key(np->platform));
    db_param_text(&p, np->kind);
    db_param_text(&p, np->text);
    db_param_text(&p, hash);
    db_param_text(&p, np->content_type != NULL && np->content_type[0] ? np->content_type : NULL);
    db_param_text(&p, np->voice_style != NULL && np->voice_style[0] ? np->voice_style : NULL);
    db_param_text(&p, np->topic != NULL && np->topic[0] ? np->topic : NULL);
    db_param_text(&p, np->provider);
    db_param_text(&p, np->llm_model != NULL ? np->llm_model : "");
    db_param_int64(&p, (int64_t)np->seed);
    db_param_text(&p, decision_id[0] ? decision_id : NULL);
    db_param_text(&p, np->source_post_id);
    db_param_text(&p, np->reply_opportunity_id);
    db_param_text(&p, np->reply_to_external_id != NULL ? np->reply_to_external_id : "");
    db_param_text(&p, dup);
    if (dup != NULL)
        db_param_double(&p, sim);
    else
        db_param_null(&p);
    st = db_query(db, "post_insert",
                  "INSERT INTO posts (profile_id, state, platform, kind, text, content_hash, "
                  "content_type, voice_style, topic, provider, llm_model, seed, decision_id, "
                  "source_post_id, reply_opportunity_id, reply_to_external_id, "
                  "nearest_duplicate_id, nearest_similarity) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                  "$8, $9, $10, left($11, 200), $12::bigint, $13::uuid, $14::uuid, $15::uuid, $16, "
                  "$17::uuid, $18::float8) RETURNING post_id::text",
                  &p, &res);
    if (st != ST_OK)
        return unique_to_conflict(db, st);
    (void)snprintf(id_out, CONTENT_ID_MAX, "%s", db_res_text(res, 0, 0));
    db_res_free(res);
    return gates_insert_tx(db, id_out, 1, np->gates);
}

status content_post_set_state_tx(db_conn *db, const char *post_id, const char *state,
                                 const char *reason)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, post_id);
    db_param_text(&p, state);
    db_param_text(&p, reason != NULL ? reason : "");
    status st = db_query(db, "post_set_state",
                         "UPDATE posts SET state = $2, state_reason = left($3, 1000), "
                         "revision = revision + 1, updated_at = now() WHERE post_id = $1::uuid "
                         "RETURNING COALESCE(reply_opportunity_id::text, '')",
                         &p, &res);
    if (st == ST_OK && db_res_rows(res) == 0)
        st = ST_NOT_FOUND;
    char opp[CONTENT_ID_MAX] = "";
    if (st == ST_OK)
        (void)snprintf(opp, sizeof opp, "%s", db_res_text(res, 0, 0));
    db_res_free(res);
    bool dead = strcmp(state, "rejected") == 0 || strcmp(state, "cancelled") == 0 ||
                strcmp(state, "failed") == 0;
    if (st == ST_OK && dead && opp[0] != '\0') {
        db_params_init(&p);
        db_param_text(&p, opp);
        db_param_text(&p, post_id);
        st = db_query(db, "reply_opportunity_reopen",
                      "UPDATE reply_opportunities SET state = 'open', reply_post_id = NULL, "
                      "revision = revision + 1, updated_at = now() WHERE opportunity_id = $1::uuid "
                      "AND reply_post_id = $2::uuid AND state = 'drafted'",
                      &p, NULL);
    }
    return st;
}

status content_post_update_text_tx(db_conn *db, const char *post_id, const char *text, size_t len,
                                   const char *state, const gates_report *gates,
                                   double dup_threshold)
{
    char hash[CONTENT_HASH_HEX];
    db_params p;
    db_res *res = NULL;
    double sim = 0;
    (void)dup_threshold;
    if (!content_hash_hex(text, len, hash))
        return ST_INVALID;
    const char *dup = dup_of(gates, &sim);
    db_params_init(&p);
    db_param_text(&p, post_id);
    db_param_text(&p, text);
    db_param_text(&p, hash);
    db_param_text(&p, state);
    db_param_text(&p, dup);
    if (dup != NULL)
        db_param_double(&p, sim);
    else
        db_param_null(&p);
    status st = db_query(db, "post_update_text",
                         "UPDATE posts SET text = $2, content_hash = $3, human_edited = true, "
                         "state = $4, nearest_duplicate_id = $5::uuid, "
                         "nearest_similarity = $6::float8, revision = revision + 1, "
                         "updated_at = now() WHERE post_id = $1::uuid RETURNING revision",
                         &p, &res);
    if (st == ST_OK && db_res_rows(res) == 0)
        st = ST_NOT_FOUND;
    if (st != ST_OK) {
        db_res_free(res);
        return unique_to_conflict(db, st);
    }
    int64_t rev = db_res_int64(res, 0, 0);
    db_res_free(res);
    return gates_insert_tx(db, post_id, rev, gates);
}

Herald__V1__GateResult **content_gate_results_msg(arena *a, const gates_report *r, size_t *n)
{
    Herald__V1__GateResult **v = arena_alloc(a, GATE_COUNT * sizeof *v);
    *n = 0;
    if (v == NULL)
        return NULL;
    for (int k = 0; k < GATE_COUNT; k++) {
        const gate_verdict *gv = &r->verdicts[k];
        Herald__V1__GateResult *g = arena_alloc(a, sizeof *g);
        if (g == NULL)
            return NULL;
        herald__v1__gate_result__init(g);
        g->gate = (Herald__V1__Gate)gv->gate;
        g->verdict = gv->pass ? HERALD__V1__GATE_VERDICT__GATE_VERDICT_PASS
                              : HERALD__V1__GATE_VERDICT__GATE_VERDICT_FAIL;
        g->reason = adup(a, gv->reason);
        if (gv->has_score) {
            g->score = gv->score;
            g->score_opt_case = HERALD__V1__GATE_RESULT__SCORE_OPT_SCORE;
        }
        if (gv->has_threshold) {
            g->threshold = gv->threshold;
            g->threshold_opt_case = HERALD__V1__GATE_RESULT__THRESHOLD_OPT_THRESHOLD;
        }
        v[k] = g;
    }
    *n = GATE_COUNT;
    return v;
}

Herald__V1__DuplicateMatch *content_dup_match_msg(arena *a, const gates_report *r)
{
    if (!r->has_nearest)
        return NULL;
    Herald__V1__DuplicateMatch *d = arena_alloc(a, sizeof *d);
    if (d == NULL)
        return NULL;
    herald__v1__duplicate_match__init(d);
    d->post_id = adup(a, r->nearest.id);
    d->similarity = r->nearest.score;
    d->exact = r->nearest.exact;
    d->text_excerpt = adup(a, r->nearest.excerpt);
    d->create_time = handler_ts_from_ms(a, r->nearest.created_ms);
    return d;
}

/* ================================================================ history and gates */

/* Fingerprints of stored posts, shared by every thread: fingerprinting a
 * text costs about 80 us (measured: 500 posts took 40 ms, most of a
 * GenerateDraft), a hit costs a copy. Keyed by post_id and content hash, so
 * an edited text never meets its old fingerprint. Direct-mapped: a new
 * post simply replaces whatever shared its slot. Redis was not used: the
 * cache API reads one key per round trip (500 posts = 500 trips, 10-20 ms),
 * and a copy held by the process is as rebuildable as one in Redis. */
enum { FP_SLOTS = 4096 }; /* at ~2 KB a fingerprint: at most ~8 MB */

typedef struct fp_slot {
    char id[CONTENT_ID_MAX];
    char hash[CONTENT_HASH_HEX];
    textsim_fp fp;
} fp_slot;

static pthread_mutex_t fp_mu = PTHREAD_MUTEX_INITIALIZER; /* protects fp_cache and its slots */
static fp_slot *fp_cache;                                 /* FP_SLOTS, allocated on first use */

static size_t fp_slot_of(const char *id)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *c = id; *c; c++)
        h = (h ^ (uint8_t)*c) * 0x100000001b3ULL;
    return (size_t)(h % FP_SLOTS);
}

void content_store_reset(void)
{
    content_catalog_reset();
    pthread_mutex_lock(&fp_mu);
    for (size_t i = 0; fp_cache != NULL && i < FP_SLOTS; i++)
        textsim_fp_fini(&fp_cache[i].fp);
    free(fp_cache);
    fp_cache = NULL;
    pthread_mutex_unlock(&fp_mu);
}

status content_history_load(db_conn *db, int64_t budget_ms, const char *profile_id, int window_days,
                            textsim_index *ix)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, profile_id);
    db_param_int64(&p, window_days > 0 ? window_days : CONTENT_DUP_WINDOW_DAYS);
    db_param_int64(&p, CONTENT_HISTORY_MAX);
    status st = q(db, budget_ms, "post_history",
                  "SELECT post_id::text, text, (extract(epoch FROM created_at) * 1000)::bigint, "
                  "content_hash FROM posts WHERE profile_id = $1 "
                  "AND created_at >= now() - $2::int * interval '1 day' "
                  "ORDER BY created_at DESC LIMIT $3::int",
                  &p, &res);
    int n = st == ST_OK ? db_res_rows(res) : 0;
    bool *done = xcalloc((size_t)n + 1, sizeof *done);
    char excerpt[TEXTSIM_EXCERPT_BYTES + 1];
    pthread_mutex_lock(&fp_mu);
    if (fp_cache == NULL)
        fp_cache = xcalloc(FP_SLOTS, sizeof *fp_cache);
    for (int i = 0; i < n; i++) {
        const fp_slot *sl = &fp_cache[fp_slot_of(db_res_text(res, i, 0))];
        if (sl->fp.grams == NULL || strcmp(sl->id, db_res_text(res, i, 0)) != 0 ||
            strcmp(sl->hash, db_res_text(res, i, 3)) != 0)
            continue;
        const char *text = db_res_text(res, i, 1);
        textscan_excerpt(text, db_res_len(res, i, 1), TEXTSIM_EXCERPT_BYTES, excerpt,
                         sizeof excerpt);
        done[i] =
            textsim_index_add_fp(ix, sl->id, &sl->fp, excerpt, db_res_int64(res, i, 2)) == ST_OK;
    }
    pthread_mutex_unlock(&fp_mu);
    for (int i = 0; i < n; i++) {
        if (done[i])
            continue;
        const char *id = db_res_text(res, i, 0);
        const char *text = db_res_text(res, i, 1);
        size_t len = db_res_len(res, i, 1);
        textsim_fp fp = { 0 };
        /* stored texts are valid UTF-8 (PostgreSQL checked them) */
        if (textsim_fp_compute(text, len, &fp) != ST_OK) {
            textsim_fp_fini(&fp);
            continue;
        }
        textscan_excerpt(text, len, TEXTSIM_EXCERPT_BYTES, excerpt, sizeof excerpt);
        (void)textsim_index_add_fp(ix, id, &fp, excerpt, db_res_int64(res, i, 2));
        pthread_mutex_lock(&fp_mu);
        fp_slot *sl = &fp_cache[fp_slot_of(id)];
        textsim_fp_fini(&sl->fp);
        (void)snprintf(sl->id, sizeof sl->id, "%s", id);
        (void)snprintf(sl->hash, sizeof sl->hash, "%s", db_res_text(res, i, 3));
        sl->fp = fp; /* handed over */
        pthread_mutex_unlock(&fp_mu);
    }
    free(done);
    db_res_free(res);
    return st;
}

void content_gates_run(const catalog *cat, const char *text, size_t len, platform_id platform,
                       const char *content_type, const char *voice_style, const char *topic,
                       const textsim_index *recent, const char *exclude_id, double threshold,
                       int window_days, gates_report *out)
{
    int min_c = 0, max_c = 0;
    if (content_type != NULL && voice_style != NULL && topic != NULL && content_type[0] &&
        voice_style[0] && topic[0]) {
        if (generator_length_bounds(cat, content_type, voice_style, topic, platform, &min_c,
                                    &max_c) != ST_OK)
            min_c = max_c = 0;
    } else if (content_type != NULL && content_type[0] != '\0') {
        const catalog_entry *e = catalog_find(cat, CATALOG_CONTENT_TYPE, content_type);
        int lim = platform_max_chars(platform);
        if (e != NULL) {
            max_c = e->max_chars > 0 && e->max_chars < lim ? e->max_chars : lim;
            min_c = e->min_chars < max_c ? e->min_chars : max_c;
        }
    }
    gates_config cfg;
    gates_config_default(&cfg);
    cfg.dup_threshold = threshold > 0 ? threshold : CONTENT_DUP_THRESHOLD;
    cfg.dup_window_days = window_days > 0 ? window_days : CONTENT_DUP_WINDOW_DAYS;
    gates_input in = {
        .text = text,
        .len = len,
        .platform = platform,
        .min_chars = min_c,
        .max_chars = max_c,
        .cat = cat,
        .recent = recent,
        .exclude_id = exclude_id,
        .now_ms = 0,
    };
    gates_validate_all(&in, &cfg, out);
}

void content_gates_failed_names(const gates_report *r, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int k = 0; k < GATE_COUNT && o + 1 < cap; k++) {
        const gate_verdict *v = &r->verdicts[k];
        if (v->pass)
            continue;
        char up[40];
        const char *nm = gate_name(v->gate);
        size_t i = 0;
        for (; nm[i] != '\0' && i + 1 < sizeof up; i++)
            up[i] = (char)(nm[i] >= 'a' && nm[i] <= 'z' ? nm[i] - 'a' + 'A' : nm[i]);
        up[i] = '\0';
        int w = snprintf(buf + o, cap - o, "%sGATE_%s (%s)", o > 0 ? ", " : "", up, v->reason);
        if (w < 0)
            break;
        o += (size_t)w < cap - o ? (size_t)w : cap - o - 1;
    }
}

/* ================================================================ arm choice */

int content_hour_of_week(const char *tz, int64_t t_ms)
{
    const tz_zone *z = NULL;
    if (tz == NULL || tz_get(tz, &z, NULL, 0) != ST_OK)
        z = tz_utc();
    int h = tz_hour_of_week(z, t_ms / 1000);
    return h >= 0 ? h : 0;
}

void content_plan_fini(content_plan *p)
{
    if (p == NULL)
        return;
    free(p->candidates_json);
    free(p->reason);
    p->candidates_json = NULL;
    p->reason = NULL;
}

/* Whether the built-in templates cover key in scope (with some partner key
 * of the other scope from the catalog). */
static bool builtin_covers(const catalog *cat, catalog_kind kind, const char *key)
{
    catalog_kind other = kind == CATALOG_CONTENT_TYPE ? CATALOG_VOICE_STYLE : CATALOG_CONTENT_TYPE;
    for (size_t i = 0; i < catalog_count(cat, other); i++) {
        const char *o = catalog_entry_at(cat, other, i)->key;
        if (kind == CATALOG_CONTENT_TYPE ? generator_supports(key, o) : generator_supports(o, key))
            return true;
    }
    return false;
}

static bool topic_has_fact(const catalog *cat, const char *key)
{
    size_t n = 0;
    const catalog_fact *f = catalog_topic_facts(cat, key, &n);
    for (size_t i = 0; i < n; i++)
        if (f[i].enabled)
            return true;
    return false;
}

static bool in_list(const char *key, char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], key) == 0)
            return true;
    return false;
}

/* One scope's arms, built from the catalog and the rows read. */
typedef struct scope_arms {
    bandit_scope scope;
    catalog_kind kind;
    bandit_arm *arms;
    size_t n;
    const char *fixed;
} scope_arms;

static status scope_build(const content_plan_req *rq, scope_arms *s, char *err, size_t errcap)
{
    const catalog *cat = rq->cat;
    const char *what = s->kind == CATALOG_CONTENT_TYPE  ? "content_type"
                       : s->kind == CATALOG_VOICE_STYLE ? "voice_style"
                                                        : "topic";
    size_t cnt = catalog_count(cat, s->kind);
    s->arms = xcalloc(cnt + 1, sizeof *s->arms);
    s->n = 0;
    if (s->fixed != NULL) {
        const catalog_entry *e = catalog_find(cat, s->kind, s->fixed);
        if (e == NULL) {
            set_err(err, errcap, "%s %s is not in the catalog", what, s->fixed);
            return ST_INVALID;
        }
        if (!e->enabled) {
            set_err(err, errcap, "%s %s is disabled in the catalog", what, s->fixed);
            return ST_INVALID;
        }
        s->arms[s->n].enabled = true;
        s->arms[s->n++].key = e->key;
        return ST_OK;
    }
    for (size_t i = 0; i < cnt; i++) {
        const catalog_entry *e = catalog_entry_at(cat, s->kind, i);
        if (!e->enabled)
            continue;
        if (s->kind == CATALOG_TOPIC) {
            if (!topic_has_fact(cat, e->key))
                continue;
            if (rq->profile->n_topics > 0 &&
                !in_list(e->key, rq->profile->topics, rq->profile->n_topics))
                continue;
        } else if (rq->builtin_only && !builtin_covers(cat, s->kind, e->key)) {
            continue;
        }
        s->arms[s->n].enabled = true;
        s->arms[s->n++].key = e->key;
    }
    if (s->n == 0) {
        set_err(err, errcap, "no enabled %s is available%s", what,
                s->kind == CATALOG_TOPIC && rq->profile->n_topics > 0
                    ? " among the profile's topics"
                    : "");
        return ST_FAILED_PRECONDITION;
    }
    return ST_OK;
}

static scope_arms *scope_of(scope_arms *all, size_t n, const char *name)
{
    bandit_scope sc;
    if (!bandit_scope_parse(name, &sc))
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (all[i].scope == sc)
            return &all[i];
    return NULL;
}

static bandit_arm *arm_of(scope_arms *s, const char *key)
{
    for (size_t i = 0; s != NULL && i < s->n; i++)
        if (strcmp(s->arms[i].key, key) == 0)
            return &s->arms[i];
    return NULL;
}

/* Arm statistics (current reward version) and operator switches. */
static status arms_read(db_conn *db, int64_t budget_ms, const content_plan_req *rq, scope_arms *all,
                        size_t n_all, char reward_version[CONTENT_KEY_MAX])
{
    db_params p;
    db_res *res = NULL;
    reward_version[0] = '\0';
    status st = q(db, budget_ms, "reward_version_current",
                  "SELECT reward_version FROM reward_versions WHERE is_current", NULL, &res);
    if (st == ST_OK && db_res_rows(res) > 0)
        (void)snprintf(reward_version, CONTENT_KEY_MAX, "%s", db_res_text(res, 0, 0));
    db_res_free(res);
    res = NULL;
    if (st != ST_OK)
        return st;
    if (reward_version[0] != '\0') {
        db_params_init(&p);
        db_param_text(&p, rq->profile->profile_id);
        db_param_text(&p, reward_version);
        st = q(db, budget_ms, "arm_stats_content",
               "SELECT scope, arm_key, n, sum_reward, sum_sq, "
               "(extract(epoch FROM updated_at) * 1000)::bigint FROM arm_stats "
               "WHERE profile_id = $1 AND reward_version = $2 "
               "AND scope IN ('content_type', 'voice_style', 'topic')",
               &p, &res);
        for (int i = 0; st == ST_OK && i < db_res_rows(res); i++) {
            bandit_arm *a =
                arm_of(scope_of(all, n_all, db_res_text(res, i, 0)), db_res_text(res, i, 1));
            if (a == NULL)
                continue;
            bandit_stats s = { .n = db_res_double(res, i, 2),
                               .sum = db_res_double(res, i, 3),
                               .sum_sq = db_res_double(res, i, 4),
                               .updated_ms = db_res_int64(res, i, 5) };
            if (bandit_stats_valid(&s))
                a->stats = s;
        }
        db_res_free(res);
        res = NULL;
        if (st != ST_OK)
            return st;
    }
    db_params_init(&p);
    db_param_text(&p, rq->profile->profile_id);
    st = q(db, budget_ms, "arm_settings_content",
           "SELECT scope, arm_key, enabled FROM arm_settings WHERE profile_id = $1 "
           "AND scope IN ('content_type', 'voice_style', 'topic')",
           &p, &res);
    for (int i = 0; st == ST_OK && i < db_res_rows(res); i++) {
        bandit_arm *a =
            arm_of(scope_of(all, n_all, db_res_text(res, i, 0)), db_res_text(res, i, 1));
        if (a != NULL && !db_res_bool(res, i, 2))
            a->enabled = false;
    }
    db_res_free(res);
    return st;
}

static void num_json(strbuf *b, double v)
{
    if (isfinite(v))
        strbuf_printf(b, "%.6g", v);
    else
        strbuf_puts(b, "null");
}

static char *candidates_json(const bandit_dim *dims, const bandit_candidate *c, size_t n)
{
    strbuf b = { 0 };
    strbuf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        const bandit_candidate *k = &c[i];
        const bandit_dim *d = &dims[k->dim];
        const char *key = d->arms[k->arm].key;
        if (i > 0)
            strbuf_putc(&b, ',');
        strbuf_printf(&b, "{\"scope\":\"%s\",\"key\":\"", bandit_scope_name(d->scope));
        strbuf_json_escape(&b, key, strlen(key));
        strbuf_printf(&b,
                      "\",\"eligible\":%s,\"excluded_reason\":", k->eligible ? "true" : "false");
        if (k->excluded_reason != NULL) {
            strbuf_putc(&b, '"');
            strbuf_json_escape(&b, k->excluded_reason, strlen(k->excluded_reason));
            strbuf_putc(&b, '"');
        } else {
            strbuf_puts(&b, "null");
        }
        strbuf_puts(&b, ",\"sampled\":");
        num_json(&b, k->eligible ? k->sampled_value : NAN);
        strbuf_puts(&b, ",\"mean\":");
        num_json(&b, k->post.mean);
        strbuf_puts(&b, ",\"lower\":");
        num_json(&b, k->post.lower);
        strbuf_puts(&b, ",\"upper\":");
        num_json(&b, k->post.upper);
        strbuf_puts(&b, ",\"effective_n\":");
        num_json(&b, k->post.effective_n);
        strbuf_printf(&b, ",\"n\":%lld,\"propensity\":", (long long)k->post.n);
        num_json(&b, k->propensity);
        strbuf_printf(&b, ",\"chosen\":%s}", k->chosen ? "true" : "false");
    }
    strbuf_putc(&b, ']');
    return strbuf_take(&b);
}

/* Topic cooldown: excludes the recently used topics from s (most recent
 * first in keys), keeping at least one eligible arm. Returns true when it
 * had to let recently used topics back in. */
static bool cooldown_apply(scope_arms *s, char *const *keys, size_t n, const char *reason)
{
    for (size_t i = 0; i < n; i++) {
        bandit_arm *a = arm_of(s, keys[i]);
        if (a == NULL || !a->enabled || a->exclude_reason != NULL)
            continue;
        size_t eligible = 0;
        for (size_t k = 0; k < s->n; k++)
            eligible += s->arms[k].enabled && s->arms[k].exclude_reason == NULL;
        if (eligible <= 1)
            return true;
        a->exclude_reason = reason;
    }
    return false;
}

/* The profile's topics of live posts in the last `hours`, most recent first
 * (pending ones first of all); the caller frees the array and strings. */
static status recent_topics(db_conn *db, int64_t budget_ms, const content_plan_req *rq, int hours,
                            char ***out, size_t *n_out)
{
    db_params p;
    db_res *res = NULL;
    *out = NULL;
    *n_out = 0;
    db_params_init(&p);
    db_param_text(&p, rq->profile->profile_id);
    db_param_int64(&p, hours);
    /* "used" as Recommend reads it: a live post due (published, scheduled
     * or created) within the cooldown */
    status st = q(db, budget_ms, "post_recent_topics",
                  "SELECT topic FROM posts WHERE profile_id = $1 AND topic IS NOT NULL "
                  "AND state NOT IN ('rejected', 'cancelled', 'failed') "
                  "AND COALESCE(publish_time, schedule_time, created_at) > "
                  "now() - $2::int * interval '1 hour' "
                  "AND COALESCE(publish_time, schedule_time, created_at) < "
                  "now() + $2::int * interval '1 hour' "
                  "GROUP BY topic ORDER BY max(COALESCE(publish_time, schedule_time, created_at)) "
                  "DESC",
                  &p, &res);
    if (st != ST_OK)
        return st;
    size_t rows = (size_t)db_res_rows(res);
    char **v = xcalloc(rows + rq->n_pending + 1, sizeof *v);
    size_t n = 0;
    for (size_t i = rq->n_pending; i > 0; i--)
        v[n++] = xstrdup(rq->pending_topics[i - 1]);
    for (size_t i = 0; i < rows; i++)
        v[n++] = xstrdup(db_res_text(res, (int)i, 0));
    db_res_free(res);
    *out = v;
    *n_out = n;
    return ST_OK;
}

status content_plan_choose(db_conn *db, int64_t budget_ms, const content_plan_req *rq,
                           content_plan *out, char *err, size_t errcap)
{
    scope_arms all[3] = {
        { .scope = BANDIT_SCOPE_CONTENT_TYPE, .kind = CATALOG_CONTENT_TYPE },
        { .scope = BANDIT_SCOPE_VOICE_STYLE, .kind = CATALOG_VOICE_STYLE },
        { .scope = BANDIT_SCOPE_TOPIC, .kind = CATALOG_TOPIC },
    };
    bandit_dim dims[3];
    bandit_candidate *cands = NULL;
    char **recent = NULL;
    size_t n_recent = 0, n_dims = 0, cap = 0;
    bool drawn = false, relaxed = false;
    char cool_reason[64];
    status st = ST_OK;

    memset(out, 0, sizeof *out);
    set_err(err, errcap, "%s", "");
    all[0].fixed = rq->content_type;
    all[1].fixed = rq->voice_style;
    all[2].fixed = rq->topic;
    size_t first = rq->reply ? 1 : 0;
    for (size_t i = first; i < 3 && st == ST_OK; i++) {
        st = scope_build(rq, &all[i], err, errcap);
        drawn |= all[i].fixed == NULL;
    }
    if (st != ST_OK)
        goto out;
    if (drawn) {
        st = arms_read(db, budget_ms, rq, all + first, 3 - first, out->reward_version);
        if (st != ST_OK)
            goto out;
        int hours = rq->profile->topic_cooldown_hours;
        if (all[2].fixed == NULL && hours > 0) {
            st = recent_topics(db, budget_ms, rq, hours, &recent, &n_recent);
            if (st != ST_OK)
                goto out;
            (void)snprintf(cool_reason, sizeof cool_reason, "topic used in the last %d h", hours);
            relaxed = cooldown_apply(&all[2], recent, n_recent, cool_reason);
        }
        for (size_t i = first; i < 3; i++) {
            dims[n_dims] = (bandit_dim){ .scope = all[i].scope,
                                         .arms = all[i].arms,
                                         .n_arms = all[i].n,
                                         .fixed_key = all[i].fixed };
            cap += all[i].n;
            n_dims++;
        }
        cands = xcalloc(cap + 1, sizeof *cands);
        bandit_config cfg;
        bandit_config_default(&cfg);
        bandit_choice choice;
        int64_t now = rq->now_ms > 0 ? rq->now_ms : now_real_ms();
        uint64_t bseed = rq->seed ^ 0x6a09e667f3bcc909ULL;
        st = bandit_recommend(dims, n_dims, now, bseed, &cfg, cands, cap + 1, &choice);
        if (st != ST_OK) {
            set_err(err, errcap, "%s", choice.errmsg);
            goto out;
        }
        for (size_t d = 0; d < n_dims; d++) {
            const char *key = dims[d].arms[choice.chosen[d]].key;
            char *dst = dims[d].scope == BANDIT_SCOPE_CONTENT_TYPE  ? out->content_type
                        : dims[d].scope == BANDIT_SCOPE_VOICE_STYLE ? out->voice_style
                                                                    : out->topic;
            (void)snprintf(dst, CONTENT_KEY_MAX, "%s", key);
        }
        strbuf why = { 0 };
        bandit_explain(dims, n_dims, cands, &choice, &why);
        if (relaxed)
            strbuf_printf(&why, "; topic cooldown relaxed: every topic was used in the last %d h",
                          hours);
        out->reason = strbuf_take(&why);
        out->candidates_json = candidates_json(dims, cands, choice.n_candidates);
        out->automatic = true;
        content_decision *d = &out->decision;
        d->kind = rq->reply ? "reply" : "content";
        d->reward_version = out->reward_version;
        d->content_type = rq->reply ? NULL : out->content_type;
        d->voice_style = out->voice_style;
        d->topic = out->topic;
        d->target_ms = rq->target_ms > 0 ? rq->target_ms : now;
        d->hour_of_week = content_hour_of_week(rq->profile->time_zone, d->target_ms);
        d->seed = bseed;
        d->propensity = choice.propensity;
        d->forced = false;
        d->candidates_json = out->candidates_json;
        d->reason = out->reason;
        for (size_t i = 0; i < n_dims; i++) {
            if (dims[i].fixed_key != NULL)
                continue;
            d->pull_scope[d->n_pulls] = bandit_scope_name(dims[i].scope);
            d->pull_key[d->n_pulls] = dims[i].scope == BANDIT_SCOPE_CONTENT_TYPE ? out->content_type
                                      : dims[i].scope == BANDIT_SCOPE_VOICE_STYLE ? out->voice_style
                                                                                  : out->topic;
            d->n_pulls++;
        }
    } else {
        if (!rq->reply)
            (void)snprintf(out->content_type, CONTENT_KEY_MAX, "%s", all[0].arms[0].key);
        (void)snprintf(out->voice_style, CONTENT_KEY_MAX, "%s", all[1].arms[0].key);
        (void)snprintf(out->topic, CONTENT_KEY_MAX, "%s", all[2].arms[0].key);
    }
out:
    for (size_t i = 0; i < 3; i++)
        free(all[i].arms);
    for (size_t i = 0; i < n_recent; i++)
        free(recent[i]);
    free(recent);
    free(cands);
    if (st != ST_OK)
        content_plan_fini(out);
    return st;
}

status content_plan_from_decision(db_conn *db, int64_t budget_ms, const char *decision_id,
                                  const char *profile_id, content_plan *out)
{
    db_params p;
    db_res *res = NULL;
    memset(out, 0, sizeof *out);
    db_params_init(&p);
    db_param_text(&p, decision_id);
    db_param_text(&p, profile_id);
    status st = q(db, budget_ms, "decision_get_content",
                  "SELECT content_type, voice_style, topic FROM decisions "
                  "WHERE decision_id = $1::uuid AND profile_id = $2 AND kind = 'content'",
                  &p, &res);
    if (st == ST_OK && db_res_rows(res) == 0)
        st = ST_NOT_FOUND;
    if (st == ST_OK) {
        (void)snprintf(out->content_type, CONTENT_KEY_MAX, "%s", db_res_text(res, 0, 0));
        (void)snprintf(out->voice_style, CONTENT_KEY_MAX, "%s", db_res_text(res, 0, 1));
        (void)snprintf(out->topic, CONTENT_KEY_MAX, "%s", db_res_text(res, 0, 2));
        (void)snprintf(out->decision_id, CONTENT_ID_MAX, "%s", decision_id);
    }
    db_res_free(res);
    return st;
}

/* ================================================================ replies */

status content_opportunity_get(db_conn *db, int64_t budget_ms, arena *a, const char *id,
                               bool for_update, content_opportunity *out)
{
    db_params p;
    db_res *res = NULL;
    memset(out, 0, sizeof *out);
    db_params_init(&p);
    db_param_text(&p, id);
    status st = for_update
                    ? q(db, budget_ms, "reply_opportunity_lock",
                        "SELECT opportunity_id::text, profile_id, platform, external_post_id, "
                        "text, state, (extract(epoch FROM expire_time) * 1000)::bigint "
                        "FROM reply_opportunities WHERE opportunity_id = $1::uuid FOR UPDATE",
                        &p, &res)
                    : q(db, budget_ms, "reply_opportunity_get",
                        "SELECT opportunity_id::text, profile_id, platform, external_post_id, "
                        "text, state, (extract(epoch FROM expire_time) * 1000)::bigint "
                        "FROM reply_opportunities WHERE opportunity_id = $1::uuid",
                        &p, &res);
    if (st == ST_OK && db_res_rows(res) == 0)
        st = ST_NOT_FOUND;
    if (st == ST_OK) {
        (void)snprintf(out->id, sizeof out->id, "%s", db_res_text(res, 0, 0));
        (void)snprintf(out->profile_id, sizeof out->profile_id, "%s", db_res_text(res, 0, 1));
        out->platform = platform_from_key(db_res_text(res, 0, 2));
        out->external_post_id = adup(a, db_res_text(res, 0, 3));
        out->text = adup(a, db_res_text(res, 0, 4));
        out->state = adup(a, db_res_text(res, 0, 5));
        out->expire_ms = db_res_int64(res, 0, 6);
    }
    db_res_free(res);
    return st;
}

status content_opportunity_drafted_tx(db_conn *db, const char *id, const char *post_id)
{
    db_params p;
    db_params_init(&p);
    db_param_text(&p, id);
    db_param_text(&p, post_id);
    return db_query(db, "reply_opportunity_drafted",
                    "UPDATE reply_opportunities SET state = 'drafted', reply_post_id = $2::uuid, "
                    "revision = revision + 1, updated_at = now() WHERE opportunity_id = $1::uuid",
                    &p, NULL);
}

/* ================================================================ pre-generation */

status content_pregen_claim_tx(db_conn *db, const char *const *skip, size_t n_skip, char id_out[64],
                               int *missing, bool *found)
{
    db_params p;
    db_res *res = NULL;
    char *arr = plain_array(skip, n_skip);
    *found = false;
    *missing = 0;
    id_out[0] = '\0';
    db_params_init(&p);
    db_param_text(&p, arr);
    /* profile ids are [a-z0-9_-]: no quoting needed in the array literal */
    status st = db_query(
        db, "pregen_claim",
        "SELECT p.profile_id, p.draft_buffer_size - (SELECT count(*) FROM posts q "
        "WHERE q.profile_id = p.profile_id AND q.kind = 'original' "
        "AND q.state IN ('draft', 'approved') AND q.schedule_time IS NULL) "
        "FROM profiles p WHERE p.state = 'active' AND p.draft_buffer_size > 0 "
        "AND p.profile_id <> ALL($1::text[]) "
        "AND p.draft_buffer_size > (SELECT count(*) FROM posts q WHERE q.profile_id = p.profile_id "
        "AND q.kind = 'original' AND q.state IN ('draft', 'approved') AND q.schedule_time IS NULL) "
        "ORDER BY p.profile_id LIMIT 1 FOR NO KEY UPDATE OF p SKIP LOCKED",
        &p, &res);
    free(arr);
    if (st == ST_OK && db_res_rows(res) > 0) {
        (void)snprintf(id_out, 64, "%s", db_res_text(res, 0, 0));
        *missing = (int)db_res_int64(res, 0, 1);
        *found = true;
    }
    db_res_free(res);
    return st;
}

/* ================================================================ idempotency */

status content_idem_peek(db_conn *db, int64_t budget_ms, const char *key, const char *method,
                         const uint8_t hash[32], content_idem_state *state, uint8_t **resp,
                         size_t *resp_len, int *code)
{
    db_params p;
    db_res *res = NULL;
    *state = CONTENT_IDEM_NONE;
    *resp = NULL;
    *resp_len = 0;
    *code = 0;
    db_params_init(&p);
    db_param_text(&p, key);
    status st = q(db, budget_ms, "idem_peek",
                  "SELECT method, request_hash, response, status FROM idempotency_keys "
                  "WHERE key = $1",
                  &p, &res);
    if (st == ST_OK && db_res_rows(res) > 0) {
        size_t hl = 0;
        uint8_t *h = db_res_bytes(res, 0, 1, &hl);
        bool same = strcmp(db_res_text(res, 0, 0), method) == 0 && h != NULL && hl == 32 &&
                    memcmp(h, hash, 32) == 0;
        free(h);
        if (same) {
            *state = CONTENT_IDEM_SAME;
            *resp = db_res_bytes(res, 0, 2, resp_len);
            *code = (int)db_res_int64(res, 0, 3);
        } else {
            *state = CONTENT_IDEM_OTHER;
        }
    }
    db_res_free(res);
    return st;
}
