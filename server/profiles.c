/* profiles.c - profile rows <-> herald.v1.Profile (see profiles.h). */
#include "profiles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "util.h"

/* The columns of a profile, for a row source aliased p; row_to_profile reads
 * them from a column offset (ListProfiles puts the list version first). */
#define PROFILE_COLS                                                                           \
    "p.profile_id, p.display_name, p.platform, p.handle, p.time_zone, p.language, p.state, "   \
    "p.pause_reason, (extract(epoch FROM p.pause_time) * 1000000)::bigint, p.auto_approve, "   \
    "p.default_provider, p.topic_cooldown_hours, p.draft_buffer_size, p.publish_kind, "        \
    "p.publish_url, p.publish_secret IS NOT NULL, p.publish_timeout_ms, p.revision, "          \
    "(extract(epoch FROM p.created_at) * 1000000)::bigint, "                                   \
    "(extract(epoch FROM p.updated_at) * 1000000)::bigint, "                                   \
    "COALESCE((SELECT string_agg(t.topic_key, ',' ORDER BY t.position) FROM profile_topics t " \
    "WHERE t.profile_id = p.profile_id), '')"

enum {
    C_ID = 0,
    C_DISPLAY,
    C_PLATFORM,
    C_HANDLE,
    C_TZ,
    C_LANG,
    C_STATE,
    C_PAUSE_REASON,
    C_PAUSE_US,
    C_AUTO_APPROVE,
    C_PROVIDER,
    C_COOLDOWN,
    C_BUFFER,
    C_PUB_KIND,
    C_PUB_URL,
    C_PUB_SECRET_SET,
    C_PUB_TIMEOUT,
    C_REVISION,
    C_CREATED_US,
    C_UPDATED_US,
    C_TOPICS,
};

static char *adup(arena *a, const char *s)
{
    char *d = arena_strdup(a, s);
    return d != NULL ? d : (char *)"";
}

static int enum_of(const ProtobufCEnumDescriptor *d, const char *text)
{
    int v = 0;
    return handler_enum_from_db(d, text, &v) ? v : 0;
}

/* The profile in row r starting at column off; NULL when the arena is full. */
static Herald__V1__Profile *row_to_profile(const db_res *r, int row, int off, arena *a)
{
    Herald__V1__Profile *p = arena_alloc(a, sizeof *p);
    Herald__V1__PublishTarget *pt = arena_alloc(a, sizeof *pt);
    if (p == NULL || pt == NULL)
        return NULL;
    herald__v1__profile__init(p);
    herald__v1__publish_target__init(pt);
#define TXT(c) adup(a, db_res_text(r, row, off + (c)))
    p->profile_id = TXT(C_ID);
    p->display_name = TXT(C_DISPLAY);
    p->platform = enum_of(&herald__v1__platform__descriptor, db_res_text(r, row, off + C_PLATFORM));
    p->handle = TXT(C_HANDLE);
    p->time_zone = TXT(C_TZ);
    p->language = TXT(C_LANG);
    p->state = enum_of(&herald__v1__profile_state__descriptor, db_res_text(r, row, off + C_STATE));
    p->pause_reason = TXT(C_PAUSE_REASON);
    if (!db_res_null(r, row, off + C_PAUSE_US))
        p->pause_time = handler_ts_from_us(a, db_res_int64(r, row, off + C_PAUSE_US));
    p->auto_approve = db_res_bool(r, row, off + C_AUTO_APPROVE);
    p->default_provider =
        enum_of(&herald__v1__provider__descriptor, db_res_text(r, row, off + C_PROVIDER));
    p->topic_cooldown_hours = (int32_t)db_res_int64(r, row, off + C_COOLDOWN);
    p->draft_buffer_size = (int32_t)db_res_int64(r, row, off + C_BUFFER);
    pt->kind = enum_of(&herald__v1__publish_target_kind__descriptor,
                       db_res_text(r, row, off + C_PUB_KIND));
    pt->url = TXT(C_PUB_URL);
    pt->secret_set = db_res_bool(r, row, off + C_PUB_SECRET_SET);
    pt->timeout_ms = (int32_t)db_res_int64(r, row, off + C_PUB_TIMEOUT);
    p->publish_target = pt;
    p->revision = db_res_int64(r, row, off + C_REVISION);
    p->create_time = handler_ts_from_us(a, db_res_int64(r, row, off + C_CREATED_US));
    p->update_time = handler_ts_from_us(a, db_res_int64(r, row, off + C_UPDATED_US));
#undef TXT
    /* topics: "a,b,c" (keys are [a-z0-9_], never a comma) */
    const char *t = db_res_text(r, row, off + C_TOPICS);
    if (t[0] != '\0') {
        size_t n = 1;
        for (const char *c = t; *c; c++)
            n += *c == ',';
        p->topics = arena_alloc(a, n * sizeof *p->topics);
        if (p->topics == NULL)
            return NULL;
        const char *s = t;
        for (size_t i = 0; i < n; i++) {
            const char *e = strchr(s, ',');
            size_t len = e != NULL ? (size_t)(e - s) : strlen(s);
            p->topics[i] = arena_strndup(a, s, len);
            if (p->topics[i] == NULL)
                return NULL;
            s += len + 1;
        }
        p->n_topics = n;
    }
    if (p->create_time == NULL || p->update_time == NULL)
        return NULL;
    return p;
}

status profile_version(db_conn *db, int64_t budget_ms, const char *id, int64_t *revision,
                       int64_t *create_us)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, id);
    status st = db_run(db, budget_ms, "profile_version",
                       "SELECT revision, (extract(epoch FROM created_at) * 1000000)::bigint "
                       "FROM profiles WHERE profile_id = $1",
                       &p, &res);
    if (st == ST_OK && db_res_rows(res) == 0)
        st = ST_NOT_FOUND;
    if (st == ST_OK) {
        *revision = db_res_int64(res, 0, 0);
        *create_us = db_res_int64(res, 0, 1);
    }
    db_res_free(res);
    return st;
}

static status profile_from(db_res *res, arena *a, Herald__V1__Profile **out)
{
    if (db_res_rows(res) == 0)
        return ST_NOT_FOUND;
    *out = row_to_profile(res, 0, 0, a);
    return *out != NULL ? ST_OK : ST_EXHAUSTED;
}

status profile_get(db_conn *db, int64_t budget_ms, arena *a, const char *id,
                   Herald__V1__Profile **out)
{
    db_params p;
    db_res *res = NULL;
    *out = NULL;
    db_params_init(&p);
    db_param_text(&p, id);
    status st = db_run(db, budget_ms, "profile_get",
                       "SELECT " PROFILE_COLS " FROM profiles p WHERE p.profile_id = $1", &p, &res);
    if (st == ST_OK)
        st = profile_from(res, a, out);
    db_res_free(res);
    return st;
}

status profile_get_tx(db_conn *db, arena *a, const char *id, bool for_update,
                      Herald__V1__Profile **out)
{
    db_params p;
    db_res *res = NULL;
    *out = NULL;
    db_params_init(&p);
    db_param_text(&p, id);
    status st =
        for_update
            ? db_query(db, "profile_get_for_update",
                       "SELECT " PROFILE_COLS " FROM profiles p WHERE p.profile_id = $1 "
                       "FOR UPDATE OF p",
                       &p, &res)
            : db_query(db, "profile_get",
                       "SELECT " PROFILE_COLS " FROM profiles p WHERE p.profile_id = $1", &p, &res);
    if (st == ST_OK)
        st = profile_from(res, a, out);
    db_res_free(res);
    return st;
}

/* A text[] literal of catalog keys ({a,b}); keys are [a-z0-9_]: no quoting. */
static char *keys_array(char *const *keys, size_t n)
{
    strbuf b = { 0 };
    strbuf_putc(&b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            strbuf_putc(&b, ',');
        strbuf_puts(&b, keys[i]);
    }
    strbuf_putc(&b, '}');
    return strbuf_take(&b);
}

status profile_unknown_topics_tx(db_conn *db, arena *a, char *const *keys, size_t n, size_t **bad,
                                 size_t *n_bad)
{
    db_params p;
    db_res *res = NULL;
    *bad = NULL;
    *n_bad = 0;
    if (n == 0)
        return ST_OK;
    char *arr = keys_array(keys, n);
    db_params_init(&p);
    db_param_text(&p, arr);
    status st = db_query(db, "profile_unknown_topics",
                         "SELECT u.i - 1 FROM unnest($1::text[]) WITH ORDINALITY AS u(k, i) "
                         "WHERE NOT EXISTS (SELECT 1 FROM topics t WHERE t.key = u.k) ORDER BY u.i",
                         &p, &res);
    if (st == ST_OK && db_res_rows(res) > 0) {
        size_t m = (size_t)db_res_rows(res);
        *bad = arena_alloc(a, m * sizeof **bad);
        if (*bad == NULL) {
            st = ST_EXHAUSTED;
        } else {
            for (size_t i = 0; i < m; i++)
                (*bad)[i] = (size_t)db_res_int64(res, (int)i, 0);
            *n_bad = m;
        }
    }
    db_res_free(res);
    free(arr);
    return st;
}

static status topics_replace_tx(db_conn *db, const char *id, char *const *keys, size_t n,
                                bool delete_first)
{
    db_params p;
    status st = ST_OK;
    if (delete_first) {
        db_params_init(&p);
        db_param_text(&p, id);
        st = db_query(db, "profile_topics_delete",
                      "DELETE FROM profile_topics WHERE profile_id = $1", &p, NULL);
    }
    if (st != ST_OK || n == 0)
        return st;
    char *arr = keys_array(keys, n);
    db_params_init(&p);
    db_param_text(&p, id);
    db_param_text(&p, arr);
    st = db_query(db, "profile_topics_insert",
                  "INSERT INTO profile_topics (profile_id, topic_key, position) "
                  "SELECT $1, u.k, u.i - 1 FROM unnest($2::text[]) WITH ORDINALITY AS u(k, i)",
                  &p, NULL);
    free(arr);
    return st;
}

status profile_list_bump_tx(db_conn *db)
{
    int64_t v = 0;
    return db_version_bump(db, PROFILES_LIST_SCOPE, &v);
}

/* Database spellings of a profile's enums; "" when unset (the caller
 * validated: never for the required platform). */
typedef struct enum_texts {
    char platform[32], provider[32], kind[32];
} enum_texts;

static void enum_texts_of(const Herald__V1__Profile *p, enum_texts *e)
{
    const Herald__V1__PublishTarget *pt = p->publish_target;
    if (!handler_enum_db_name(&herald__v1__platform__descriptor, (int)p->platform, e->platform,
                              sizeof e->platform))
        e->platform[0] = '\0';
    if (!handler_enum_db_name(&herald__v1__provider__descriptor, (int)p->default_provider,
                              e->provider, sizeof e->provider))
        snprintf(e->provider, sizeof e->provider, "auto");
    if (pt == NULL || !handler_enum_db_name(&herald__v1__publish_target_kind__descriptor,
                                            (int)pt->kind, e->kind, sizeof e->kind))
        snprintf(e->kind, sizeof e->kind, "executor");
}

status profile_insert_tx(db_conn *db, const Herald__V1__Profile *p, const char *secret)
{
    const Herald__V1__PublishTarget *pt = p->publish_target;
    enum_texts e;
    db_params q;

    enum_texts_of(p, &e);
    db_params_init(&q);
    db_param_text(&q, p->profile_id);
    db_param_text(&q, p->display_name);
    db_param_text(&q, e.platform);
    db_param_text(&q, p->handle);
    db_param_text(&q, p->time_zone);
    db_param_text(&q, p->language);
    db_param_bool(&q, p->auto_approve);
    db_param_text(&q, e.provider);
    db_param_int64(&q, p->topic_cooldown_hours);
    db_param_int64(&q, p->draft_buffer_size);
    db_param_text(&q, e.kind);
    db_param_text(&q, pt != NULL ? pt->url : "");
    if (secret != NULL && secret[0] != '\0')
        db_param_bytes(&q, secret, strlen(secret));
    else
        db_param_null(&q);
    db_param_int64(&q, pt != NULL ? pt->timeout_ms : 10000);
    status st = db_query(db, "profile_insert",
                         "INSERT INTO profiles (profile_id, display_name, platform, handle, "
                         "time_zone, language, auto_approve, default_provider, "
                         "topic_cooldown_hours, draft_buffer_size, publish_kind, publish_url, "
                         "publish_secret, publish_timeout_ms) "
                         "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::int, $10::int, $11, $12, "
                         "$13, $14::int)",
                         &q, NULL);
    if (st == ST_OK)
        st = topics_replace_tx(db, p->profile_id, p->topics, p->n_topics, false);
    if (st == ST_OK)
        st = profile_list_bump_tx(db);
    return st;
}

status profile_update_tx(db_conn *db, const Herald__V1__Profile *p, bool topics_changed,
                         profile_secret_op secret_op, const char *secret)
{
    const Herald__V1__PublishTarget *pt = p->publish_target;
    enum_texts e;
    db_params q;
    db_res *res = NULL;

    enum_texts_of(p, &e);
    db_params_init(&q);
    db_param_text(&q, p->profile_id);
    db_param_text(&q, p->display_name);
    db_param_text(&q, p->handle);
    db_param_text(&q, p->time_zone);
    db_param_text(&q, p->language);
    db_param_bool(&q, p->auto_approve);
    db_param_text(&q, e.provider);
    db_param_int64(&q, p->topic_cooldown_hours);
    db_param_int64(&q, p->draft_buffer_size);
    db_param_text(&q, e.kind);
    db_param_text(&q, pt != NULL ? pt->url : "");
    db_param_int64(&q, pt != NULL ? pt->timeout_ms : 10000);
    db_param_int64(&q, (int64_t)secret_op);
    if (secret_op == PROFILE_SECRET_SET && secret != NULL && secret[0] != '\0')
        db_param_bytes(&q, secret, strlen(secret));
    else
        db_param_null(&q);
    status st = db_query(db, "profile_update",
                         "UPDATE profiles SET display_name = $2, handle = $3, time_zone = $4, "
                         "language = $5, auto_approve = $6, default_provider = $7, "
                         "topic_cooldown_hours = $8::int, draft_buffer_size = $9::int, "
                         "publish_kind = $10, publish_url = $11, publish_timeout_ms = $12::int, "
                         "publish_secret = CASE $13::int WHEN 0 THEN publish_secret "
                         "WHEN 1 THEN $14::bytea ELSE NULL END, "
                         "revision = revision + 1, updated_at = now() "
                         "WHERE profile_id = $1",
                         &q, &res);
    if (st == ST_OK && db_res_affected(res) == 0)
        st = ST_NOT_FOUND;
    db_res_free(res);
    if (st == ST_OK && topics_changed)
        st = topics_replace_tx(db, p->profile_id, p->topics, p->n_topics, true);
    if (st == ST_OK)
        st = profile_list_bump_tx(db);
    return st;
}

status profile_set_paused_tx(db_conn *db, const char *id, bool paused, const char *reason,
                             const char *request_id, const char *actor)
{
    db_params q;
    db_res *res = NULL;

    db_params_init(&q);
    db_param_text(&q, id);
    db_param_bool(&q, paused);
    db_param_text(&q, paused ? reason : "");
    status st = db_query(db, "profile_set_paused",
                         "UPDATE profiles SET state = CASE WHEN $2 THEN 'paused' ELSE 'active' "
                         "END, pause_reason = $3, pause_time = CASE WHEN $2 THEN now() END, "
                         "revision = revision + 1, updated_at = now() WHERE profile_id = $1",
                         &q, &res);
    if (st == ST_OK && db_res_affected(res) == 0)
        st = ST_NOT_FOUND;
    db_res_free(res);
    if (st == ST_OK) {
        db_params_init(&q);
        db_param_text(&q, paused ? "profile_paused" : "profile_resumed");
        db_param_text(&q, id);
        db_param_text(&q, reason != NULL ? reason : "");
        db_param_text(&q, request_id != NULL ? request_id : "");
        db_param_text(&q, actor != NULL ? actor : "");
        st = db_query(db, "system_event_insert",
                      "INSERT INTO system_events (kind, profile_id, reason, request_id, actor) "
                      "VALUES ($1, $2, $3, $4, left($5, 200))",
                      &q, NULL);
    }
    if (st == ST_OK)
        st = profile_list_bump_tx(db);
    return st;
}

status profile_list_version(db_conn *db, int64_t budget_ms, int64_t *version, int64_t *vtime_us)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, PROFILES_LIST_SCOPE);
    status st = db_run(db, budget_ms, "profile_list_version",
                       "SELECT version, (extract(epoch FROM updated_at) * 1000000)::bigint "
                       "FROM cache_versions WHERE scope = $1",
                       &p, &res);
    *version = 0;
    *vtime_us = 0;
    if (st == ST_OK && db_res_rows(res) > 0) {
        *version = db_res_int64(res, 0, 0);
        *vtime_us = db_res_int64(res, 0, 1);
    }
    db_res_free(res);
    return st;
}

status profile_list(db_conn *db, int64_t budget_ms, arena *a, const char *state,
                    const char *platform, const char *after, int limit, profile_page *out)
{
    db_params p;
    db_res *res = NULL;

    memset(out, 0, sizeof *out);
    db_params_init(&p);
    db_param_text(&p, PROFILES_LIST_SCOPE);
    db_param_text(&p, state);
    db_param_text(&p, platform);
    db_param_text(&p, after != NULL ? after : "");
    db_param_int64(&p, (int64_t)limit + 1);
    /* One statement: the page and the version it belongs to come from the
     * same snapshot, so the page is cached under the right version. */
    status st = db_run(db, budget_ms, "profile_list",
                       "WITH v AS (SELECT COALESCE(max(version), 0) AS version, "
                       "COALESCE((extract(epoch FROM max(updated_at)) * 1000000)::bigint, 0) AS vt "
                       "FROM cache_versions WHERE scope = $1) "
                       "SELECT v.version, v.vt, " PROFILE_COLS " FROM v LEFT JOIN LATERAL ("
                       "SELECT * FROM profiles q WHERE ($2::text IS NULL OR q.state = $2) "
                       "AND ($3::text IS NULL OR q.platform = $3) AND q.profile_id > $4 "
                       "ORDER BY q.profile_id LIMIT $5::int) p ON true ORDER BY p.profile_id",
                       &p, &res);
    if (st != ST_OK)
        goto out;
    int rows = db_res_rows(res);
    if (rows < 1) {
        st = ST_INTERNAL;
        goto out;
    }
    out->version = db_res_int64(res, 0, 0);
    out->vtime_us = db_res_int64(res, 0, 1);
    if (db_res_null(res, 0, 2 + C_ID))
        goto out; /* no profiles: the one row only carries the version */
    size_t n = (size_t)rows;
    if (n > (size_t)limit) {
        out->more = true;
        n = (size_t)limit;
    }
    out->profiles = arena_alloc(a, n * sizeof *out->profiles);
    if (out->profiles == NULL) {
        st = ST_EXHAUSTED;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        out->profiles[i] = row_to_profile(res, (int)i, 2, a);
        if (out->profiles[i] == NULL) {
            st = ST_EXHAUSTED;
            goto out;
        }
    }
    out->n = n;
out:
    db_res_free(res);
    return st;
}
