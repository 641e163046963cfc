/* svc_ops.c - herald.v1.OpsService handlers (proto/herald/v1/ops.proto).
 *
 * Profiles (issue 4): CreateProfile, GetProfile, ListProfiles,
 * UpdateProfile, PauseProfile, ResumeProfile; the SQL is in profiles.c.
 * The operator's view (issue 8): GetStatus (cheap: in-process figures from
 * ops_status.h plus two bounded queries; answers without them when the
 * database is away), GetSloReport (each figure against its target; posting
 * outcomes, growth and engagement from PostgreSQL over the window, the error
 * rate, generation p95 and database p95 from this process's counters over
 * the window), ListSlowQueries (db.h's statement statistics: names and
 * normalised SQL, never parameter values) and GetConfig (the settings in
 * force, secrets masked). Handlers run on worker threads and follow rpc.h
 * and handler.h.
 *
 * Rules kept here:
 *   - Every mutation is idempotent by request_id (handler_mutate): a retry
 *     replays the first reply, a reused id with another request is
 *     INVALID_ARGUMENT.
 *   - Reads are cache-aside under versioned keys whose version comes from
 *     PostgreSQL (profiles.h): an acknowledged write is never followed by a
 *     stale read, whatever Redis did meanwhile.
 *   - publish_target.secret is input only: stored, never returned, never
 *     logged. In UpdateProfile an empty secret keeps the stored one unless
 *     the mask names "publish_target.secret" (then it clears it).
 *   - Defaults at creation: time_zone "UTC", language "en", default_provider
 *     AUTO, topic_cooldown_hours 24 (0 is read as unset), publish target
 *     EXECUTOR with timeout 10,000 ms. In UpdateProfile a named field takes
 *     the value given (empty time_zone/language and unspecified enums still
 *     mean their defaults; 0 hours means 0).
 *   - PauseProfile / ResumeProfile write a system_events row in the same
 *     transaction and log one line after the commit (not on replays, nor
 *     when nothing changed). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "google/protobuf/field_mask.pb-c.h"
#include "handler.h"
#include "herald/v1/ops.pb-c.h"
#include "log.h"
#include "ops_status.h"
#include "profiles.h"
#include "svc.h"
#include "tz.h"
#include "util.h"

enum {
    PROFILE_TTL_S = 300, /* cached GetProfile values */
    LIST_TTL_S = 60,     /* cached ListProfiles pages */
    LIST_DEFAULT_SIZE = 50,
    LIST_MAX_SIZE = 500,
    URL_MAX = 2048,
    SECRET_MAX_BYTES = 4096,
    REASON_MAX = 500,
    DEFAULT_COOLDOWN_H = 24,
    DEFAULT_TIMEOUT_MS = 10000,
};

/* ---------------------------------------------------------------- validation */

/* BCP 47 shape: 2-8 letters, then -subtags of 1-8 alphanumerics; <= 35. */
static bool language_tag_valid(const char *s)
{
    size_t n = strlen(s), run = 0, i = 0;
    if (n < 2 || n > 35)
        return false;
    for (; i < n && s[i] != '-'; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
            return false;
    if (i < 2 || i > 8)
        return false;
    for (; i < n; i++) {
        if (s[i] == '-') {
            if (i + 1 == n || (run == 0 && i > 0 && s[i - 1] == '-'))
                return false;
            run = 0;
            continue;
        }
        bool alnum = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                     (s[i] >= '0' && s[i] <= '9');
        if (!alnum || ++run > 8)
            return false;
    }
    return true;
}

/* http(s)://host..., printable ASCII without spaces. */
static bool url_valid(const char *s)
{
    size_t skip = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;
    if (skip == 0 || s[skip] == '\0' || s[skip] == '/')
        return false;
    for (const char *c = s; *c; c++)
        if (*c <= 0x20 || *c > 0x7e)
            return false;
    return true;
}

/* Checks every value a Profile in a request may carry (output-only fields
 * are ignored); *topics gets the normalised topic keys (arena). */
static void check_profile(hv *v, const Herald__V1__Profile *p, char ***topics)
{
    arena *a = rpc_call_arena(v->call);
    hv_text(v, "profile.display_name", p->display_name, 0, 100);
    hv_text(v, "profile.handle", p->handle, 0, 100);
    if (p->time_zone[0] != '\0') {
        const tz_zone *z = NULL;
        if (strlen(p->time_zone) > TZ_NAME_MAX || tz_get(p->time_zone, &z, NULL, 0) != ST_OK)
            hv_add(v, "profile.time_zone", "must be an IANA time zone such as Europe/Berlin");
    }
    if (p->language[0] != '\0' && !language_tag_valid(p->language))
        hv_add(v, "profile.language", "must be a BCP 47 language tag such as en or pt-BR");
    hv_enum(v, "profile.default_provider", &herald__v1__provider__descriptor,
            (int)p->default_provider, false);
    hv_int(v, "profile.topic_cooldown_hours", p->topic_cooldown_hours, 0, 720);
    hv_int(v, "profile.draft_buffer_size", p->draft_buffer_size, 0, 100);

    *topics = NULL;
    if (hv_count(v, "profile.topics", p->n_topics, 0, PROFILE_TOPICS_MAX) && p->n_topics > 0) {
        *topics = arena_alloc(a, p->n_topics * sizeof **topics);
        for (size_t i = 0; *topics != NULL && i < p->n_topics; i++) {
            const char *key = NULL;
            const char *field = hv_path(v, "profile.topics[%zu]", i);
            (*topics)[i] = NULL;
            if (!hv_catalog_key(v, field, p->topics[i], &key))
                continue;
            (*topics)[i] = (char *)key;
            for (size_t j = 0; j < i; j++) {
                if ((*topics)[j] != NULL && strcmp((*topics)[j], key) == 0) {
                    hv_add(v, field, "repeats profile.topics[%zu]", j);
                    break;
                }
            }
        }
    }

    const Herald__V1__PublishTarget *pt = p->publish_target;
    if (pt == NULL)
        return;
    hv_enum(v, "profile.publish_target.kind", &herald__v1__publish_target_kind__descriptor,
            (int)pt->kind, false);
    if (pt->url[0] != '\0' && (strlen(pt->url) > URL_MAX || !url_valid(pt->url)))
        hv_add(v, "profile.publish_target.url",
               "must be an http or https URL of at most %d "
               "characters",
               URL_MAX);
    if (strlen(pt->secret) > SECRET_MAX_BYTES)
        hv_add(v, "profile.publish_target.secret", "must be at most %d bytes", SECRET_MAX_BYTES);
    if (pt->timeout_ms != 0)
        hv_int(v, "profile.publish_target.timeout_ms", pt->timeout_ms, 100, 60000);
}

/* A non-executor target needs a URL and a secret. */
static void check_target(hv *v, const Herald__V1__PublishTarget *pt, bool has_secret)
{
    if (pt->kind == HERALD__V1__PUBLISH_TARGET_KIND__PUBLISH_TARGET_KIND_EXECUTOR)
        return;
    if (pt->url[0] == '\0')
        hv_add(v, "profile.publish_target.url", "is required for WEBHOOK and X_API_V2");
    if (!has_secret)
        hv_add(v, "profile.publish_target.secret", "is required for WEBHOOK and X_API_V2");
}

static Herald__V1__PublishTarget *target_copy(arena *a, const Herald__V1__PublishTarget *src)
{
    Herald__V1__PublishTarget *pt = arena_alloc(a, sizeof *pt);
    if (pt == NULL)
        return NULL;
    herald__v1__publish_target__init(pt);
    if (src != NULL) {
        pt->kind = src->kind;
        pt->url = src->url;
        pt->timeout_ms = src->timeout_ms;
        pt->secret_set = src->secret_set;
    }
    /* never carry the secret in a message we may return or cache */
    pt->secret = (char *)"";
    return pt;
}

/* ---------------------------------------------------------------- cache keys */

static const char *profile_key(rpc_call *call, const char *id, int64_t create_us, int64_t rev)
{
    char inc[160];
    snprintf(inc, sizeof inc, "%s@%lld", id, (long long)create_us);
    char *k = cache_key(handler_cache_shared(call), "profile", inc, rev);
    const char *out = arena_strdup(rpc_call_arena(call), k);
    free(k);
    return out;
}

/* ---------------------------------------------------------------- CreateProfile */

typedef struct create_ctx {
    Herald__V1__Profile *p; /* normalised, secret-free */
    const char *secret;
} create_ctx;

static status create_body(handler_tx *tx, ProtobufCMessage **reply)
{
    create_ctx *c = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    size_t *bad = NULL, n_bad = 0;

    status st = profile_unknown_topics_tx(tx->db, a, c->p->topics, c->p->n_topics, &bad, &n_bad);
    if (st != ST_OK)
        return st;
    if (n_bad > 0) {
        for (size_t i = 0; i < n_bad; i++) {
            char field[48];
            snprintf(field, sizeof field, "profile.topics[%zu]", bad[i]);
            rpc_call_add_violation(tx->call, field, "is not a topic of the catalog");
        }
        return handler_tx_reject(tx, ST_INVALID, "profile.topics[%zu]: unknown topic %s%s", bad[0],
                                 c->p->topics[bad[0]], n_bad > 1 ? " (and more)" : "");
    }
    st = profile_insert_tx(tx->db, c->p, c->secret);
    if (st == ST_ALREADY_EXISTS)
        return handler_tx_reject(tx, st, "profile %s already exists", c->p->profile_id);
    if (st != ST_OK)
        return st;
    Herald__V1__Profile *out = NULL;
    st = profile_get_tx(tx->db, a, c->p->profile_id, false, &out);
    if (st == ST_OK)
        *reply = &out->base;
    return st;
}

static void ops_create_profile(Herald__V1__OpsService_Service *svc,
                               const Herald__V1__CreateProfileRequest *req,
                               Herald__V1__Profile_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    char **topics = NULL;
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    const Herald__V1__Profile *in = req->profile;
    if (hv_present(&v, "profile", in)) {
        hv_profile_id(&v, "profile.profile_id", in->profile_id);
        hv_enum(&v, "profile.platform", &herald__v1__platform__descriptor, (int)in->platform, true);
        check_profile(&v, in, &topics);
    }
    if (hv_failed(&v))
        return;

    Herald__V1__Profile *p = arena_alloc(a, sizeof *p);
    Herald__V1__PublishTarget *pt = target_copy(a, in->publish_target);
    if (p == NULL || pt == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "request too large");
        return;
    }
    herald__v1__profile__init(p);
    p->profile_id = in->profile_id;
    p->display_name = in->display_name;
    p->platform = in->platform;
    p->handle = in->handle;
    p->time_zone = in->time_zone[0] != '\0' ? in->time_zone : (char *)"UTC";
    p->language = in->language[0] != '\0' ? in->language : (char *)"en";
    p->auto_approve = in->auto_approve;
    p->default_provider =
        in->default_provider != 0 ? in->default_provider : HERALD__V1__PROVIDER__PROVIDER_AUTO;
    p->topics = topics;
    p->n_topics = in->n_topics;
    p->topic_cooldown_hours =
        in->topic_cooldown_hours != 0 ? in->topic_cooldown_hours : DEFAULT_COOLDOWN_H;
    p->draft_buffer_size = in->draft_buffer_size;
    if (pt->kind == 0)
        pt->kind = HERALD__V1__PUBLISH_TARGET_KIND__PUBLISH_TARGET_KIND_EXECUTOR;
    if (pt->timeout_ms == 0)
        pt->timeout_ms = DEFAULT_TIMEOUT_MS;
    p->publish_target = pt;
    const char *secret = in->publish_target != NULL ? in->publish_target->secret : "";
    check_target(&v, pt, secret[0] != '\0');
    if (hv_failed(&v))
        return;

    create_ctx c = { p, secret };
    handler_mutation m = { .request = &req->base,
                           .request_id = req->request_id,
                           .reply_desc = &herald__v1__profile__descriptor,
                           .body = create_body,
                           .ctx = &c,
                           .what = "profile" };
    handler_result r;
    if (handler_mutate(call, &m, &r))
        done((const Herald__V1__Profile *)r.reply, call);
}

/* ---------------------------------------------------------------- GetProfile */

static void ops_get_profile(Herald__V1__OpsService_Service *svc,
                            const Herald__V1__GetProfileRequest *req,
                            Herald__V1__Profile_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_profile_id(&v, "profile_id", req->profile_id);
    if (hv_failed(&v))
        return;
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;

    /* The version from PostgreSQL, then the copy under that version. */
    int64_t rev = 0, create_us = 0;
    status st = profile_version(db, handler_budget_ms(call), req->profile_id, &rev, &create_us);
    if (st != ST_OK) {
        handler_fail_db(call, db, st, arena_printf(a, "profile %s", req->profile_id));
        return;
    }
    const char *key = profile_key(call, req->profile_id, create_us, rev);
    if (handler_cache_reply(call, key, &herald__v1__profile__descriptor))
        return;
    Herald__V1__Profile *p = NULL;
    st = profile_get(db, handler_budget_ms(call), a, req->profile_id, &p);
    if (st != ST_OK) {
        handler_fail_db(call, db, st, arena_printf(a, "profile %s", req->profile_id));
        return;
    }
    /* cached under the version it was read at (a write may have come in between) */
    key = profile_key(call, p->profile_id, handler_ts_us(p->create_time), p->revision);
    handler_cache_put(call, key, &p->base, PROFILE_TTL_S);
    done(p, call);
}

/* ---------------------------------------------------------------- ListProfiles */

static void ops_list_profiles(Herald__V1__OpsService_Service *svc,
                              const Herald__V1__ListProfilesRequest *req,
                              Herald__V1__ListProfilesResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    const uint8_t *cursor = NULL;
    size_t cursor_len = 0;
    char state[32], platform[32];
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_enum(&v, "state", &herald__v1__profile_state__descriptor, (int)req->state, false);
    hv_enum(&v, "platform", &herald__v1__platform__descriptor, (int)req->platform, false);
    int32_t size = hv_page_size(&v, "page_size", req->page_size, LIST_DEFAULT_SIZE, LIST_MAX_SIZE);
    const char *scope =
        arena_printf(a, "ListProfiles|state=%d|platform=%d", (int)req->state, (int)req->platform);
    hv_page_token(&v, "page_token", req->page_token, scope, &cursor, &cursor_len);
    if (cursor != NULL && !handler_profile_id_valid((const char *)cursor))
        hv_add(&v, "page_token", "is not a page token of this list");
    if (hv_failed(&v))
        return;
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;
    const char *st_txt = handler_enum_db_name(&herald__v1__profile_state__descriptor,
                                              (int)req->state, state, sizeof state);
    const char *pf_txt = handler_enum_db_name(&herald__v1__platform__descriptor, (int)req->platform,
                                              platform, sizeof platform);
    const char *after = (const char *)cursor;

    int64_t ver = 0, vtime = 0;
    status st = profile_list_version(db, handler_budget_ms(call), &ver, &vtime);
    if (st != ST_OK) {
        handler_fail_db(call, db, st, "profiles");
        return;
    }
    const char *page_id =
        arena_printf(a, "s%d|p%d|n%d|a%s@%lld", (int)req->state, (int)req->platform, (int)size,
                     after ? after : "", (long long)vtime);
    char *k = cache_key(handler_cache_shared(call), PROFILES_LIST_SCOPE, page_id, ver);
    bool hit = handler_cache_reply(call, k, &herald__v1__list_profiles_response__descriptor);
    free(k);
    if (hit)
        return;
    profile_page pg;
    st = profile_list(db, handler_budget_ms(call), a, st_txt, pf_txt, after, size, &pg);
    if (st != ST_OK) {
        handler_fail_db(call, db, st, "profiles");
        return;
    }
    Herald__V1__ListProfilesResponse *resp = arena_alloc(a, sizeof *resp);
    if (resp == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    herald__v1__list_profiles_response__init(resp);
    resp->profiles = pg.profiles;
    resp->n_profiles = pg.n;
    if (pg.more && pg.n > 0) {
        const char *last = pg.profiles[pg.n - 1]->profile_id;
        resp->next_page_token = handler_page_token_encode(a, scope, last, strlen(last));
        if (resp->next_page_token == NULL)
            resp->next_page_token = (char *)"";
    }
    page_id = arena_printf(a, "s%d|p%d|n%d|a%s@%lld", (int)req->state, (int)req->platform,
                           (int)size, after ? after : "", (long long)pg.vtime_us);
    k = cache_key(handler_cache_shared(call), PROFILES_LIST_SCOPE, page_id, pg.version);
    handler_cache_put(call, k, &resp->base, LIST_TTL_S);
    free(k);
    done(resp, call);
}

/* ---------------------------------------------------------------- UpdateProfile */

enum {
    F_DISPLAY = 1 << 0,
    F_HANDLE = 1 << 1,
    F_TZ = 1 << 2,
    F_LANG = 1 << 3,
    F_AUTO = 1 << 4,
    F_PROVIDER = 1 << 5,
    F_TOPICS = 1 << 6,
    F_COOLDOWN = 1 << 7,
    F_BUFFER = 1 << 8,
    F_PT_KIND = 1 << 9,
    F_PT_URL = 1 << 10,
    F_PT_SECRET = 1 << 11, /* named explicitly: "" clears */
    F_PT_TIMEOUT = 1 << 12,
    F_PT_ALL = F_PT_KIND | F_PT_URL | F_PT_TIMEOUT,
    /* "*": every mutable field; the secret as with "publish_target" */
    F_ALL = F_DISPLAY | F_HANDLE | F_TZ | F_LANG | F_AUTO | F_PROVIDER | F_TOPICS | F_COOLDOWN |
            F_BUFFER | F_PT_ALL,
};

/* clang-format off */
static const struct {
    const char *path;
    unsigned bits; /* 0: immutable or output only */
} mask_paths[] = {
    { "display_name", F_DISPLAY }, { "handle", F_HANDLE }, { "time_zone", F_TZ },
    { "language", F_LANG }, { "auto_approve", F_AUTO }, { "default_provider", F_PROVIDER },
    { "topics", F_TOPICS }, { "topic_cooldown_hours", F_COOLDOWN },
    { "draft_buffer_size", F_BUFFER }, { "publish_target", F_PT_ALL },
    { "publish_target.kind", F_PT_KIND }, { "publish_target.url", F_PT_URL },
    { "publish_target.secret", F_PT_SECRET }, { "publish_target.timeout_ms", F_PT_TIMEOUT },
    { "*", F_ALL },
    { "profile_id", 0 }, { "platform", 0 }, { "state", 0 }, { "pause_reason", 0 },
    { "pause_time", 0 }, { "revision", 0 }, { "create_time", 0 }, { "update_time", 0 },
    { "publish_target.secret_set", 0 },
};
/* clang-format on */

/* camelCase -> snake_case (JSON clients may send either); into out. */
static void path_snake(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *c = in; *c && o + 2 < cap; c++) {
        if (*c >= 'A' && *c <= 'Z') {
            out[o++] = '_';
            out[o++] = (char)(*c - 'A' + 'a');
        } else {
            out[o++] = *c;
        }
    }
    out[o] = '\0';
}

/* The fields an empty mask means: those set to a non-default value. */
static unsigned implicit_mask(const Herald__V1__Profile *p)
{
    unsigned m = 0;
    const Herald__V1__PublishTarget *pt = p->publish_target;
    m |= p->display_name[0] ? F_DISPLAY : 0;
    m |= p->handle[0] ? F_HANDLE : 0;
    m |= p->time_zone[0] ? F_TZ : 0;
    m |= p->language[0] ? F_LANG : 0;
    m |= p->auto_approve ? F_AUTO : 0;
    m |= p->default_provider != 0 ? F_PROVIDER : 0;
    m |= p->n_topics > 0 ? F_TOPICS : 0;
    m |= p->topic_cooldown_hours != 0 ? F_COOLDOWN : 0;
    m |= p->draft_buffer_size != 0 ? F_BUFFER : 0;
    if (pt != NULL) {
        m |= pt->kind != 0 ? F_PT_KIND : 0;
        m |= pt->url[0] ? F_PT_URL : 0;
        m |= pt->timeout_ms != 0 ? F_PT_TIMEOUT : 0;
    }
    return m;
}

typedef struct update_ctx {
    const Herald__V1__UpdateProfileRequest *req;
    char **topics; /* normalised */
    unsigned mask;
    bool secret_named; /* "publish_target.secret" in the mask: "" clears it */
    bool secret_whole; /* empty mask, "*" or "publish_target": "" keeps it */
} update_ctx;

static status update_body(handler_tx *tx, ProtobufCMessage **reply)
{
    update_ctx *c = tx->ctx;
    const Herald__V1__Profile *in = c->req->profile;
    const Herald__V1__PublishTarget *ipt = in->publish_target;
    arena *a = rpc_call_arena(tx->call);
    Herald__V1__Profile *cur = NULL;

    status st = profile_get_tx(tx->db, a, in->profile_id, true, &cur);
    if (st == ST_NOT_FOUND)
        return handler_tx_reject(tx, st, "profile %s not found", in->profile_id);
    if (st != ST_OK)
        return st;
    if (in->revision != 0 && in->revision != cur->revision)
        return handler_tx_reject(tx, ST_CONFLICT,
                                 "profile %s is at revision %lld, not %lld; read it again",
                                 in->profile_id, (long long)cur->revision, (long long)in->revision);
    if (in->platform != 0 && in->platform != cur->platform) {
        rpc_call_add_violation(tx->call, "profile.platform", "is immutable");
        return handler_tx_reject(tx, ST_INVALID, "profile.platform: is immutable");
    }

    unsigned m = c->mask;
    Herald__V1__PublishTarget *pt = target_copy(a, cur->publish_target);
    if (pt == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    if (m & F_DISPLAY)
        cur->display_name = in->display_name;
    if (m & F_HANDLE)
        cur->handle = in->handle;
    if (m & F_TZ)
        cur->time_zone = in->time_zone[0] ? in->time_zone : (char *)"UTC";
    if (m & F_LANG)
        cur->language = in->language[0] ? in->language : (char *)"en";
    if (m & F_AUTO)
        cur->auto_approve = in->auto_approve;
    if (m & F_PROVIDER)
        cur->default_provider =
            in->default_provider ? in->default_provider : HERALD__V1__PROVIDER__PROVIDER_AUTO;
    if (m & F_TOPICS) {
        cur->topics = c->topics;
        cur->n_topics = in->n_topics;
    }
    if (m & F_COOLDOWN)
        cur->topic_cooldown_hours = in->topic_cooldown_hours;
    if (m & F_BUFFER)
        cur->draft_buffer_size = in->draft_buffer_size;
    if (m & F_PT_KIND)
        pt->kind = ipt != NULL && ipt->kind != 0
                       ? ipt->kind
                       : HERALD__V1__PUBLISH_TARGET_KIND__PUBLISH_TARGET_KIND_EXECUTOR;
    if (m & F_PT_URL)
        pt->url = ipt != NULL ? ipt->url : (char *)"";
    if (m & F_PT_TIMEOUT)
        pt->timeout_ms = ipt != NULL && ipt->timeout_ms != 0 ? ipt->timeout_ms : DEFAULT_TIMEOUT_MS;
    cur->publish_target = pt;

    const char *secret = ipt != NULL ? ipt->secret : "";
    profile_secret_op op = PROFILE_SECRET_KEEP;
    if (secret[0] != '\0' && (c->secret_named || c->secret_whole))
        op = PROFILE_SECRET_SET;
    else if (c->secret_named)
        op = PROFILE_SECRET_CLEAR;
    bool has_secret = op == PROFILE_SECRET_SET || (op == PROFILE_SECRET_KEEP && pt->secret_set);

    hv v;
    hv_init(&v, tx->call, NULL);
    check_target(&v, pt, has_secret);
    if (v.n > 0)
        return handler_tx_reject(tx, ST_INVALID, "%s: %s", v.first_field, v.first_desc);

    if (m & F_TOPICS) {
        size_t *bad = NULL, n_bad = 0;
        st = profile_unknown_topics_tx(tx->db, a, cur->topics, cur->n_topics, &bad, &n_bad);
        if (st != ST_OK)
            return st;
        if (n_bad > 0) {
            for (size_t i = 0; i < n_bad; i++) {
                char field[48];
                snprintf(field, sizeof field, "profile.topics[%zu]", bad[i]);
                rpc_call_add_violation(tx->call, field, "is not a topic of the catalog");
            }
            return handler_tx_reject(tx, ST_INVALID, "profile.topics[%zu]: unknown topic %s",
                                     bad[0], cur->topics[bad[0]]);
        }
    }
    st = profile_update_tx(tx->db, cur, (m & F_TOPICS) != 0, op, secret);
    if (st != ST_OK)
        return st;
    Herald__V1__Profile *out = NULL;
    st = profile_get_tx(tx->db, a, in->profile_id, false, &out);
    if (st == ST_OK)
        *reply = &out->base;
    return st;
}

static void ops_update_profile(Herald__V1__OpsService_Service *svc,
                               const Herald__V1__UpdateProfileRequest *req,
                               Herald__V1__Profile_Closure done, void *data)
{
    rpc_call *call = data;
    update_ctx c = { .req = req };
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    const Herald__V1__Profile *in = req->profile;
    if (hv_present(&v, "profile", in)) {
        hv_profile_id(&v, "profile.profile_id", in->profile_id);
        hv_enum(&v, "profile.platform", &herald__v1__platform__descriptor, (int)in->platform,
                false);
        hv_int(&v, "profile.revision", in->revision, 0, INT64_MAX);
        check_profile(&v, in, &c.topics);
    }
    const Google__Protobuf__FieldMask *mask = req->update_mask;
    size_t n_paths = mask != NULL ? mask->n_paths : 0;
    hv_count(&v, "update_mask.paths", n_paths, 0, 64);
    for (size_t i = 0; i < n_paths && i < 64; i++) {
        char snake[96];
        path_snake(mask->paths[i], snake, sizeof snake);
        size_t k = 0;
        for (; k < sizeof mask_paths / sizeof mask_paths[0]; k++)
            if (strcmp(mask_paths[k].path, snake) == 0)
                break;
        const char *field = hv_path(&v, "update_mask.paths[%zu]", i);
        if (k == sizeof mask_paths / sizeof mask_paths[0])
            hv_add(&v, field, "unknown field of Profile");
        else if (mask_paths[k].bits == 0)
            hv_add(&v, field, "%s is immutable or output only (state: use PauseProfile)",
                   mask_paths[k].path);
        else
            c.mask |= mask_paths[k].bits;
        if (strcmp(snake, "publish_target") == 0 || strcmp(snake, "*") == 0)
            c.secret_whole = true;
    }
    if (hv_failed(&v))
        return;
    c.secret_named = (c.mask & F_PT_SECRET) != 0;
    if (n_paths == 0) {
        c.mask = implicit_mask(in);
        c.secret_whole = true;
    }

    handler_mutation m = { .request = &req->base,
                           .request_id = req->request_id,
                           .reply_desc = &herald__v1__profile__descriptor,
                           .body = update_body,
                           .ctx = &c,
                           .what = "profile" };
    handler_result r;
    if (handler_mutate(call, &m, &r))
        done((const Herald__V1__Profile *)r.reply, call);
}

/* ---------------------------------------------------------------- Pause / Resume */

typedef struct pause_ctx {
    const char *profile_id;
    const char *reason;
    const char *request_id;
    bool pause;
    bool changed; /* set by the body: the state moved (and an event was written) */
} pause_ctx;

static status pause_body(handler_tx *tx, ProtobufCMessage **reply)
{
    pause_ctx *c = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    Herald__V1__Profile *cur = NULL;

    status st = profile_get_tx(tx->db, a, c->profile_id, true, &cur);
    if (st == ST_NOT_FOUND)
        return handler_tx_reject(tx, st, "profile %s not found", c->profile_id);
    if (st != ST_OK)
        return st;
    bool paused = cur->state == HERALD__V1__PROFILE_STATE__PROFILE_STATE_PAUSED;
    if (paused == c->pause) {
        *reply = &cur->base; /* already there: the first pause (and reason) stands */
        return ST_OK;
    }
    st = profile_set_paused_tx(tx->db, c->profile_id, c->pause, c->reason, c->request_id,
                               rpc_call_peer(tx->call));
    if (st != ST_OK)
        return st;
    st = profile_get_tx(tx->db, a, c->profile_id, false, &cur);
    if (st == ST_OK) {
        *reply = &cur->base;
        c->changed = true;
    }
    return st;
}

static void pause_or_resume(rpc_call *call, const ProtobufCMessage *req, const char *request_id,
                            const char *profile_id, const char *reason, bool pause,
                            const Herald__V1__Profile **out)
{
    hv v;
    *out = NULL;
    hv_init(&v, call, req);
    hv_request_id(&v, "request_id", request_id);
    hv_profile_id(&v, "profile_id", profile_id);
    hv_text(&v, "reason", reason, pause ? 1 : 0, REASON_MAX);
    if (hv_failed(&v))
        return;

    pause_ctx c = { profile_id, reason, request_id, pause, false };
    handler_mutation m = { .request = req,
                           .request_id = request_id,
                           .reply_desc = &herald__v1__profile__descriptor,
                           .body = pause_body,
                           .ctx = &c,
                           .what = "profile" };
    handler_result r;
    if (!handler_mutate(call, &m, &r))
        return;
    if (c.changed) {
        /* the system event's log line, once the change is committed */
        log_field f[] = { LOG_S("profile_id", profile_id), LOG_S("reason", reason),
                          LOG_S("request_id", request_id), LOG_S("req", rpc_call_request_id(call)),
                          LOG_S("actor", rpc_call_peer(call)) };
        log_event(LOG_INFO, pause ? "profile paused" : "profile resumed", f, 5);
    }
    *out = (const Herald__V1__Profile *)r.reply;
}

static void ops_pause_profile(Herald__V1__OpsService_Service *svc,
                              const Herald__V1__PauseProfileRequest *req,
                              Herald__V1__Profile_Closure done, void *data)
{
    const Herald__V1__Profile *out = NULL;
    (void)svc;
    pause_or_resume(data, &req->base, req->request_id, req->profile_id, req->reason, true, &out);
    if (out != NULL)
        done(out, data);
}

static void ops_resume_profile(Herald__V1__OpsService_Service *svc,
                               const Herald__V1__ResumeProfileRequest *req,
                               Herald__V1__Profile_Closure done, void *data)
{
    const Herald__V1__Profile *out = NULL;
    (void)svc;
    pause_or_resume(data, &req->base, req->request_id, req->profile_id, req->reason, false, &out);
    if (out != NULL)
        done(out, data);
}

/* ================================================================ status (issue 8)
 *
 * GetStatus, GetSloReport, ListSlowQueries and GetConfig. What the process
 * knows comes from ops_status.h through worker_shared.ops (absent in
 * programs that do not set it: those parts stay unset); what only the
 * database knows is read here with the worker's connection. */

enum {
    STATUS_PROFILES_DEFAULT = 100,
    STATUS_PROFILES_MAX = 1000,
    STATUS_DB_BUDGET_MS = 1000, /* GetStatus must stay cheap: its queries get at most this */
    SLO_DEFAULT_WINDOW_MS = 7 * 24 * 3600 * 1000,
    SLO_PROFILES_MAX = 1000,
    SLOW_DEFAULT_SIZE = 50,
    SLOW_MAX_SIZE = 500,
    CONFIG_PREFIX_MAX = 128,
};
#define SLO_MAX_WINDOW_MS (366LL * 24 * 3600 * 1000)

/* SLO targets (issue 8 item 4). */
#define SLO_POSTING_SUCCESS_MIN 0.95
#define SLO_GENERATION_P95_MAX_S 30.0
#define SLO_DATABASE_P95_MAX_MS 500.0
#define SLO_ERROR_RATE_MAX 0.01

static const ops_view *status_view(rpc_call *call)
{
    worker *w = handler_worker(call);
    return w != NULL && w->shared != NULL ? w->shared->ops : NULL;
}

/* The worker's connection when the schema is verified, else NULL (and the
 * reason in why): GetStatus answers without its database part. */
static db_conn *status_db(rpc_call *call, const char **why)
{
    worker *w = handler_worker(call);
    *why = "";
    if (w == NULL || w->db == NULL) {
        *why = "no database configured";
        return NULL;
    }
    switch (worker_schema_get(w->shared)) {
    case WORKER_SCHEMA_OK:
        return w->db;
    case WORKER_SCHEMA_PENDING:
        *why = "database schema not verified yet";
        return NULL;
    case WORKER_SCHEMA_REFUSED:
        *why = "database schema does not match this server";
        return NULL;
    case WORKER_SCHEMA_NO_DB:
        break;
    }
    *why = "no database configured";
    return NULL;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* An epoch-ms column (NULL -> no Timestamp). */
static Google__Protobuf__Timestamp *ts_col(arena *a, const db_res *r, int row, int col)
{
    return db_res_null(r, row, col) ? NULL : handler_ts_from_ms(a, db_res_int64(r, row, col));
}

static Herald__V1__LatencySummary *latency_summary(arena *a, const uint64_t *bucket)
{
    Herald__V1__LatencySummary *l = arena_alloc(a, sizeof *l);
    if (l == NULL)
        return NULL;
    herald__v1__latency_summary__init(l);
    for (size_t b = 0; b <= DB_LATENCY_BUCKETS; b++)
        l->count += (int64_t)bucket[b];
    if (l->count == 0)
        return l;
    l->p50_ms = db_stats_quantile_ms(bucket, 0.50);
    l->p50_ms_opt_case = HERALD__V1__LATENCY_SUMMARY__P50_MS_OPT_P50_MS;
    l->p95_ms = db_stats_quantile_ms(bucket, 0.95);
    l->p95_ms_opt_case = HERALD__V1__LATENCY_SUMMARY__P95_MS_OPT_P95_MS;
    l->p99_ms = db_stats_quantile_ms(bucket, 0.99);
    l->p99_ms_opt_case = HERALD__V1__LATENCY_SUMMARY__P99_MS_OPT_P99_MS;
    return l;
}

static Herald__V1__UpstreamStatus *upstream_status(arena *a, const ops_upstream *u)
{
    Herald__V1__UpstreamStatus *s = arena_alloc(a, sizeof *s);
    if (s == NULL)
        return NULL;
    herald__v1__upstream_status__init(s);
    s->configured = u->configured;
    s->in_flight = u->in_flight;
    s->requests = u->requests;
    s->errors = u->errors;
    /* no breaker on outbound HTTP (ops_status.h): calls always flow */
    s->breaker = u->configured ? HERALD__V1__BREAKER_STATE__BREAKER_STATE_CLOSED
                               : HERALD__V1__BREAKER_STATE__BREAKER_STATE_UNSPECIFIED;
    return s;
}

static Herald__V1__MemoryState memory_state(const memwatch_stats *m)
{
    if (m->samples == 0)
        return HERALD__V1__MEMORY_STATE__MEMORY_STATE_UNSPECIFIED;
    switch (m->state) {
    case MEMWATCH_OK:
        return HERALD__V1__MEMORY_STATE__MEMORY_STATE_NORMAL;
    case MEMWATCH_SOFT:
        return HERALD__V1__MEMORY_STATE__MEMORY_STATE_SOFT;
    case MEMWATCH_HARD:
        return HERALD__V1__MEMORY_STATE__MEMORY_STATE_HARD;
    }
    return HERALD__V1__MEMORY_STATE__MEMORY_STATE_UNSPECIFIED;
}

static Herald__V1__BreakerState cache_breaker(const ops_snapshot *s)
{
    if (!s->cache_configured)
        return HERALD__V1__BREAKER_STATE__BREAKER_STATE_UNSPECIFIED;
    switch (s->cache.breaker) {
    case CACHE_BREAKER_CLOSED:
        return HERALD__V1__BREAKER_STATE__BREAKER_STATE_CLOSED;
    case CACHE_BREAKER_OPEN:
        return HERALD__V1__BREAKER_STATE__BREAKER_STATE_OPEN;
    case CACHE_BREAKER_HALF_OPEN:
        return HERALD__V1__BREAKER_STATE__BREAKER_STATE_HALF_OPEN;
    }
    return HERALD__V1__BREAKER_STATE__BREAKER_STATE_UNSPECIFIED;
}

/* The publishing queue: one statement of counts. */
static status status_queue(db_conn *db, int64_t budget_ms, Herald__V1__QueueStatus *q)
{
    db_res *res = NULL;
    status st = db_run(
        db, budget_ms, "ops_status_queue",
        "SELECT "
        "(SELECT count(*) FROM posts WHERE state = 'scheduled' AND schedule_time <= now() "
        " AND (next_attempt_time IS NULL OR next_attempt_time <= now())), "
        "(SELECT count(*) FROM posts WHERE state = 'scheduled' AND schedule_time > now()), "
        "(SELECT count(*) FROM publish_attempts WHERE state = 'leased' AND expire_time > now()), "
        "(SELECT count(*) FROM publish_attempts WHERE state = 'leased' AND expire_time <= now()), "
        "(SELECT count(*) FROM posts WHERE state = 'unconfirmed'), "
        "(SELECT COALESCE(floor(extract(epoch FROM now() - min(schedule_time))), 0)::bigint "
        " FROM posts WHERE state = 'scheduled' AND schedule_time <= now() "
        " AND (next_attempt_time IS NULL OR next_attempt_time <= now()))",
        NULL, &res);
    if (st == ST_OK) {
        q->due_posts = db_res_int64(res, 0, 0);
        q->scheduled_posts = db_res_int64(res, 0, 1);
        q->leased_posts = db_res_int64(res, 0, 2);
        q->stuck_leases = db_res_int64(res, 0, 3);
        q->unconfirmed_posts = db_res_int64(res, 0, 4);
        q->oldest_due_age_seconds = db_res_int64(res, 0, 5);
    }
    db_res_free(res);
    return st;
}

/* The first max profiles by id, each with its last publish and metric. */
static status status_profiles(db_conn *db, int64_t budget_ms, arena *a, int max,
                              Herald__V1__GetStatusResponse *out)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_int64(&p, (int64_t)max + 1);
    status st =
        db_run(db, budget_ms, "ops_status_profiles",
               "SELECT pr.profile_id, pr.state, "
               "EXISTS (SELECT 1 FROM profile_cooldowns cd WHERE cd.profile_id = pr.profile_id "
               " AND cd.start_time <= now() AND cd.end_time > now()), "
               "(SELECT floor(extract(epoch FROM max(q.publish_time)) * 1000)::bigint FROM posts q "
               " WHERE q.profile_id = pr.profile_id AND q.publish_time IS NOT NULL), "
               "(SELECT floor(extract(epoch FROM max(o.recorded_at)) * 1000)::bigint "
               " FROM engagement_observations o JOIN posts q ON q.post_id = o.post_id "
               " WHERE q.profile_id = pr.profile_id), "
               "(SELECT count(*) FROM posts q WHERE q.profile_id = pr.profile_id "
               " AND q.state = 'scheduled'), "
               "(SELECT count(*) FROM posts q WHERE q.profile_id = pr.profile_id "
               " AND q.state = 'approved') "
               "FROM profiles pr ORDER BY pr.profile_id LIMIT $1",
               &p, &res);
    if (st != ST_OK)
        goto out;
    int rows = db_res_rows(res);
    out->profiles_truncated = rows > max;
    size_t n = (size_t)(rows > max ? max : rows);
    out->profiles = arena_alloc(a, (n > 0 ? n : 1) * sizeof(Herald__V1__ProfileStatus *));
    if (out->profiles == NULL) {
        st = ST_EXHAUSTED;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        Herald__V1__ProfileStatus *ps = arena_alloc(a, sizeof *ps);
        if (ps == NULL) {
            st = ST_EXHAUSTED;
            goto out;
        }
        herald__v1__profile_status__init(ps);
        int r = (int)i;
        ps->profile_id = arena_strdup(a, db_res_text(res, r, 0));
        int state = 0;
        if (handler_enum_from_db(&herald__v1__profile_state__descriptor, db_res_text(res, r, 1),
                                 &state))
            ps->state = (Herald__V1__ProfileState)state;
        ps->in_cooldown = db_res_bool(res, r, 2);
        ps->last_publish_time = ts_col(a, res, r, 3);
        ps->last_metric_time = ts_col(a, res, r, 4);
        ps->scheduled_posts = db_res_int64(res, r, 5);
        ps->approved_drafts = db_res_int64(res, r, 6);
        out->profiles[i] = ps;
    }
    out->n_profiles = n;
out:
    db_res_free(res);
    return st;
}

static void ops_get_status(Herald__V1__OpsService_Service *svc,
                           const Herald__V1__GetStatusRequest *req,
                           Herald__V1__GetStatusResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_int(&v, "max_profiles", req->max_profiles, 0, STATUS_PROFILES_MAX);
    if (hv_failed(&v))
        return;
    int max = req->max_profiles > 0 ? req->max_profiles : STATUS_PROFILES_DEFAULT;

    Herald__V1__GetStatusResponse resp = HERALD__V1__GET_STATUS_RESPONSE__INIT;
    Herald__V1__MemoryStatus mem = HERALD__V1__MEMORY_STATUS__INIT;
    Herald__V1__WorkerStatus workers = HERALD__V1__WORKER_STATUS__INIT;
    Herald__V1__DatabaseStatus dbs = HERALD__V1__DATABASE_STATUS__INIT;
    Herald__V1__CacheStatus cs = HERALD__V1__CACHE_STATUS__INIT;
    Herald__V1__QueueStatus queue = HERALD__V1__QUEUE_STATUS__INIT;
    ops_snapshot *s = arena_calloc(a, sizeof *s);
    if (s == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    const ops_view *ov = status_view(call);
    int64_t now_ms = now_real_ms();
    if (ov != NULL) {
        ov->snapshot(ov->impl, s);
        now_ms = s->now_ms;
    } else {
        s->schema_version = -1;
        s->version = s->commit = s->build = "";
    }
    resp.server_time = handler_ts_from_ms(a, now_ms);
    resp.version = (char *)s->version;
    resp.commit = (char *)s->commit;
    resp.build = (char *)s->build;
    if (s->start_ms > 0) {
        resp.start_time = handler_ts_from_ms(a, s->start_ms);
        resp.uptime_seconds = (now_ms - s->start_ms) / 1000;
    }

    if (s->have_mem) {
        mem.rss_bytes = s->mem.rss_bytes;
        mem.limit_bytes = s->mem.limit_bytes;
        mem.soft_limit_bytes = s->mem.soft_limit_bytes;
        mem.state = memory_state(&s->mem);
        mem.shed_count = (int64_t)s->mem.shed_count;
        mem.rejected_calls = (int64_t)s->mem.rejected_calls;
        resp.memory = &mem;
    }
    workers.workers = s->workers;
    workers.busy_workers = s->busy_workers;
    workers.inflight_calls = s->inflight_calls;
    resp.workers = &workers;

    dbs.up = s->db_up;
    dbs.ping_ms = s->ping_ms;
    if (s->last_ping_ms > 0)
        dbs.last_ping_time = handler_ts_from_ms(a, s->last_ping_ms);
    dbs.latency = latency_summary(a, s->db_total.bucket);
    dbs.pool_size = s->db_configured ? s->workers : 0;
    dbs.pool_in_use = (int32_t)s->pool.busy;
    dbs.schema_version = s->schema_version;
    dbs.last_error = arena_strdup(a, s->db_error);
    resp.database = &dbs;

    cs.configured = s->cache_configured;
    cs.breaker = cache_breaker(s);
    cs.hits = (int64_t)s->cache.hits;
    cs.misses = (int64_t)(s->cache.misses + s->cache.errors); /* an error is a miss too */
    cs.errors = (int64_t)s->cache.errors;
    cs.bypasses = (int64_t)s->cache.bypasses;
    if (cs.hits + cs.misses > 0) {
        cs.hit_ratio = (double)cs.hits / (double)(cs.hits + cs.misses);
        cs.hit_ratio_opt_case = HERALD__V1__CACHE_STATUS__HIT_RATIO_OPT_HIT_RATIO;
    }
    resp.cache = &cs;
    resp.llm = upstream_status(a, &s->llm);
    resp.publisher = upstream_status(a, &s->publisher);

    /* What only the database knows, within a small budget: a slow or absent
     * database costs this call its queue and profiles, never the answer. */
    const char *why = "";
    db_conn *db = status_db(call, &why);
    if (db != NULL) {
        int64_t budget = min64(handler_budget_ms(call), STATUS_DB_BUDGET_MS);
        status st = status_queue(db, budget, &queue);
        if (st == ST_OK) {
            resp.queue = &queue;
            budget = min64(handler_budget_ms(call), STATUS_DB_BUDGET_MS);
            st = status_profiles(db, budget, a, max, &resp);
        }
        if (st != ST_OK) {
            const char *msg = st == ST_EXHAUSTED ? "reply too large" : db_errmsg(db);
            if (s->db_error[0] == '\0')
                dbs.last_error = arena_printf(a, "status queries failed: %s", msg);
            log_field f[] = { LOG_S("req", rpc_call_request_id(call)), LOG_S("error", msg) };
            log_event(LOG_WARN, "GetStatus answered without its database part", f, 2);
        }
    } else if (s->db_error[0] == '\0' && s->db_configured) {
        dbs.last_error = (char *)why;
    }
    done(&resp, call);
}

/* ---------------------------------------------------------------- GetSloReport */

static Herald__V1__SloFigure *slo_figure(arena *a, const char *name, bool has, double value,
                                         double target, bool above, const char *unit, int64_t n)
{
    Herald__V1__SloFigure *f = arena_alloc(a, sizeof *f);
    if (f == NULL)
        return NULL;
    herald__v1__slo_figure__init(f);
    f->name = (char *)name;
    f->target = target;
    f->comparison = above ? HERALD__V1__SLO_COMPARISON__SLO_COMPARISON_ABOVE
                          : HERALD__V1__SLO_COMPARISON__SLO_COMPARISON_BELOW;
    f->unit = (char *)unit;
    f->sample_count = n;
    if (!has) {
        f->state = HERALD__V1__SLO_STATE__SLO_STATE_NO_DATA;
        return f;
    }
    f->value = value;
    f->value_opt_case = HERALD__V1__SLO_FIGURE__VALUE_OPT_VALUE;
    bool met = above ? value > target : value < target;
    f->state = met ? HERALD__V1__SLO_STATE__SLO_STATE_MET : HERALD__V1__SLO_STATE__SLO_STATE_MISSED;
    return f;
}

static Herald__V1__SloFigure *posting_figure(arena *a, int64_t published, int64_t failed,
                                             int64_t unknown)
{
    int64_t n = published + failed + unknown;
    return slo_figure(a, "posting_success", n > 0, n > 0 ? (double)published / (double)n : 0,
                      SLO_POSTING_SUCCESS_MIN, true, "ratio", n);
}

/* Posting outcomes over every profile: published (by publish_time), failed
 * and unknown (UNCONFIRMED: the last attempt's outcome was UNKNOWN or its
 * lease lapsed; by when the post got there) in [$1, $2). */
static status slo_totals(db_conn *db, int64_t budget_ms, int64_t start_ms, int64_t end_ms,
                         int64_t out[3])
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_time_ms(&p, start_ms);
    db_param_time_ms(&p, end_ms);
    status st = db_run(
        db, budget_ms, "ops_slo_totals",
        "SELECT count(*) FILTER (WHERE state = 'published' AND publish_time >= $1::timestamptz "
        " AND publish_time < $2::timestamptz), "
        "count(*) FILTER (WHERE state = 'failed' AND updated_at >= $1::timestamptz "
        " AND updated_at < $2::timestamptz), "
        "count(*) FILTER (WHERE state = 'unconfirmed' AND updated_at >= $1::timestamptz "
        " AND updated_at < $2::timestamptz) "
        "FROM posts WHERE state IN ('published', 'failed', 'unconfirmed')",
        &p, &res);
    if (st == ST_OK)
        for (int i = 0; i < 3; i++)
            out[i] = db_res_int64(res, 0, i);
    db_res_free(res);
    return st;
}

/* Per profile (all, or profile_id): the same outcomes, follower growth
 * (last minus first snapshot in the window, per day of the span between
 * them) and the engagement rate of the window's published posts (each
 * post's latest observation before the end that has impressions and at
 * least one of likes, replies, reposts, quotes; engagements = their sum,
 * missing ones not counted). */
static status slo_profiles(db_conn *db, int64_t budget_ms, arena *a, int64_t start_ms,
                           int64_t end_ms, const char *profile_id,
                           Herald__V1__GetSloReportResponse *out)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_time_ms(&p, start_ms);
    db_param_time_ms(&p, end_ms);
    db_param_text(&p, profile_id != NULL && profile_id[0] != '\0' ? profile_id : NULL);
    db_param_int64(&p, SLO_PROFILES_MAX);
    status st = db_run(
        db, budget_ms, "ops_slo_profiles",
        "WITH pr AS (SELECT profile_id FROM profiles WHERE ($3::text IS NULL OR profile_id = $3) "
        " ORDER BY profile_id LIMIT $4::int), "
        "outc AS (SELECT q.profile_id, "
        " count(*) FILTER (WHERE q.state = 'published' AND q.publish_time >= $1::timestamptz "
        "  AND q.publish_time < $2::timestamptz) AS published, "
        " count(*) FILTER (WHERE q.state = 'failed' AND q.updated_at >= $1::timestamptz "
        "  AND q.updated_at < $2::timestamptz) AS failed, "
        " count(*) FILTER (WHERE q.state = 'unconfirmed' AND q.updated_at >= $1::timestamptz "
        "  AND q.updated_at < $2::timestamptz) AS unknown "
        " FROM posts q JOIN pr ON pr.profile_id = q.profile_id "
        " WHERE q.state IN ('published', 'failed', 'unconfirmed') GROUP BY q.profile_id), "
        "growth AS (SELECT f.profile_id, "
        " (array_agg(f.follower_count ORDER BY f.observed_at DESC))[1] "
        "  - (array_agg(f.follower_count ORDER BY f.observed_at))[1] AS delta, "
        " extract(epoch FROM max(f.observed_at) - min(f.observed_at))::float8 AS span_s "
        " FROM follower_snapshots f JOIN pr ON pr.profile_id = f.profile_id "
        " WHERE f.observed_at >= $1::timestamptz AND f.observed_at < $2::timestamptz "
        " GROUP BY f.profile_id), "
        "eng AS (SELECT q.profile_id, "
        " sum(COALESCE(o.likes, 0) + COALESCE(o.replies, 0) + COALESCE(o.reposts, 0) "
        "  + COALESCE(o.quotes, 0))::float8 AS engagements, "
        " sum(o.impressions)::float8 AS impressions "
        " FROM posts q JOIN pr ON pr.profile_id = q.profile_id "
        " CROSS JOIN LATERAL (SELECT eo.likes, eo.replies, eo.reposts, eo.quotes, eo.impressions "
        "  FROM engagement_observations eo WHERE eo.post_id = q.post_id "
        "  AND eo.impressions IS NOT NULL "
        "  AND num_nonnulls(eo.likes, eo.replies, eo.reposts, eo.quotes) > 0 "
        "  AND eo.observed_at < $2::timestamptz ORDER BY eo.observed_at DESC LIMIT 1) o "
        " WHERE q.state = 'published' AND q.publish_time >= $1::timestamptz "
        " AND q.publish_time < $2::timestamptz GROUP BY q.profile_id) "
        "SELECT pr.profile_id, COALESCE(outc.published, 0), COALESCE(outc.failed, 0), "
        " COALESCE(outc.unknown, 0), growth.delta, growth.span_s, eng.engagements, "
        " eng.impressions "
        "FROM pr LEFT JOIN outc ON outc.profile_id = pr.profile_id "
        "LEFT JOIN growth ON growth.profile_id = pr.profile_id "
        "LEFT JOIN eng ON eng.profile_id = pr.profile_id ORDER BY pr.profile_id",
        &p, &res);
    if (st != ST_OK)
        goto out;
    size_t n = (size_t)db_res_rows(res);
    out->profiles = arena_alloc(a, (n > 0 ? n : 1) * sizeof(Herald__V1__ProfileSlo *));
    if (out->profiles == NULL) {
        st = ST_EXHAUSTED;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int r = (int)i;
        Herald__V1__ProfileSlo *ps = arena_alloc(a, sizeof *ps);
        if (ps == NULL) {
            st = ST_EXHAUSTED;
            goto out;
        }
        herald__v1__profile_slo__init(ps);
        ps->profile_id = arena_strdup(a, db_res_text(res, r, 0));
        ps->published = db_res_int64(res, r, 1);
        ps->failed = db_res_int64(res, r, 2);
        ps->unknown = db_res_int64(res, r, 3);
        ps->posting_success = posting_figure(a, ps->published, ps->failed, ps->unknown);
        double span_s = db_res_double(res, r, 5);
        if (!db_res_null(res, r, 4) && span_s > 0) {
            ps->follower_growth_per_day = (double)db_res_int64(res, r, 4) / (span_s / 86400.0);
            ps->follower_growth_per_day_opt_case =
                HERALD__V1__PROFILE_SLO__FOLLOWER_GROWTH_PER_DAY_OPT_FOLLOWER_GROWTH_PER_DAY;
        }
        double impressions = db_res_double(res, r, 7);
        if (!db_res_null(res, r, 7) && impressions > 0) {
            ps->engagement_rate = db_res_double(res, r, 6) / impressions;
            ps->engagement_rate_opt_case =
                HERALD__V1__PROFILE_SLO__ENGAGEMENT_RATE_OPT_ENGAGEMENT_RATE;
        }
        out->profiles[i] = ps;
    }
    out->n_profiles = n;
out:
    db_res_free(res);
    return st;
}

static void ops_get_slo_report(Herald__V1__OpsService_Service *svc,
                               const Herald__V1__GetSloReportRequest *req,
                               Herald__V1__GetSloReportResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    hv v;
    int64_t start_ms = 0, end_ms = 0;
    (void)svc;

    int64_t now_ms = now_real_ms();
    hv_init(&v, call, &req->base);
    hv_timestamp(&v, "start_time", req->start_time, false, &start_ms);
    hv_timestamp(&v, "end_time", req->end_time, false, &end_ms);
    if (req->profile_id[0] != '\0')
        hv_profile_id(&v, "profile_id", req->profile_id);
    if (hv_failed(&v))
        return;
    if (req->end_time == NULL || end_ms > now_ms)
        end_ms = now_ms; /* the future has no data yet */
    if (req->start_time == NULL)
        start_ms = end_ms - SLO_DEFAULT_WINDOW_MS;
    if (start_ms >= end_ms)
        hv_add(&v, req->start_time != NULL ? "start_time" : "end_time",
               "must be before end_time (and start_time before now)");
    else if (end_ms - start_ms > SLO_MAX_WINDOW_MS)
        hv_add(&v, "start_time", "the window may span at most 366 days");
    if (hv_failed(&v))
        return;
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;

    Herald__V1__GetSloReportResponse resp = HERALD__V1__GET_SLO_REPORT_RESPONSE__INIT;
    resp.start_time = handler_ts_from_ms(a, start_ms);
    resp.end_time = handler_ts_from_ms(a, end_ms);

    int64_t totals[3] = { 0, 0, 0 };
    status st = slo_totals(db, handler_budget_ms(call), start_ms, end_ms, totals);
    if (st == ST_OK)
        st = slo_profiles(db, handler_budget_ms(call), a, start_ms, end_ms, req->profile_id, &resp);
    if (st == ST_EXHAUSTED) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    if (st != ST_OK) {
        handler_fail_db(call, db, st, "SLO report");
        return;
    }
    resp.posting_success = posting_figure(a, totals[0], totals[1], totals[2]);

    /* The process-local figures: this replica's counters over the window
     * (ops_status.h), since its start at the earliest. */
    ops_window *w = arena_calloc(a, sizeof *w);
    const ops_view *ov = status_view(call);
    if (w != NULL && ov != NULL)
        ov->window(ov->impl, start_ms, end_ms, w);
    bool have = w != NULL && ov != NULL;
    double gen_p95 =
        have && w->gen_count > 0 ? ops_quantile(w->gen, w->gen_bounds, w->n_gen_bounds, 0.95) : -1;
    resp.generation_p95 =
        slo_figure(a, "generation_p95", gen_p95 >= 0, gen_p95, SLO_GENERATION_P95_MAX_S, false,
                   "seconds", have ? (int64_t)w->gen_count : 0);
    double db_p95 = have && w->db_count > 0 ? db_stats_quantile_ms(w->db, 0.95) : -1;
    resp.database_p95 = slo_figure(a, "database_p95", db_p95 >= 0, db_p95, SLO_DATABASE_P95_MAX_MS,
                                   false, "milliseconds", have ? (int64_t)w->db_count : 0);
    bool calls = have && w->calls > 0;
    resp.error_rate =
        slo_figure(a, "error_rate", calls, calls ? (double)w->server_errors / (double)w->calls : 0,
                   SLO_ERROR_RATE_MAX, false, "ratio", have ? (int64_t)w->calls : 0);
    resp.compute_time = handler_ts_from_ms(a, now_real_ms());
    done(&resp, call);
}

/* ---------------------------------------------------------------- ListSlowQueries */

typedef struct slow_row {
    const char *name;
    const char *sql;
    uint64_t count;
    double max_ms;
    double mean_ms;
    int64_t last_ms;
    const char *method;
} slow_row;

typedef struct slow_list {
    arena *a;
    slow_row *rows;
    size_t n, cap;
    double min_ms;
} slow_list;

static void slow_collect(const db_stmt_stats *s, void *user)
{
    slow_list *l = user;
    if (s->slow == 0 || s->worst_ms < l->min_ms || l->n == l->cap)
        return;
    slow_row *r = &l->rows[l->n++];
    r->name = s->name;
    r->sql = s->sql != NULL ? s->sql : "";
    r->count = s->slow;
    r->max_ms = s->worst_ms;
    r->mean_ms = s->slow_sum_ms / (double)s->slow;
    r->last_ms = s->last_slow_at_ms;
    r->method = arena_strdup(l->a, s->last_method);
}

/* Slowest first, then by name: a total order for the page cursor. */
static int slow_cmp(const void *x, const void *y)
{
    const slow_row *a = x, *b = y;
    if (a->max_ms != b->max_ms)
        return a->max_ms > b->max_ms ? -1 : 1;
    return strcmp(a->name, b->name);
}

static void ops_list_slow_queries(Herald__V1__OpsService_Service *svc,
                                  const Herald__V1__ListSlowQueriesRequest *req,
                                  Herald__V1__ListSlowQueriesResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    const uint8_t *cursor = NULL;
    size_t cursor_len = 0;
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_int(&v, "min_duration_ms", req->min_duration_ms, 0, INT32_MAX);
    int32_t size = hv_page_size(&v, "page_size", req->page_size, SLOW_DEFAULT_SIZE, SLOW_MAX_SIZE);
    const char *scope = arena_printf(a, "ListSlowQueries|min=%d", (int)req->min_duration_ms);
    hv_page_token(&v, "page_token", req->page_token, scope, &cursor, &cursor_len);
    /* the cursor: the last row's max_ms and name, "<%.17g>|<name>" */
    double after_ms = 0;
    const char *after_name = NULL;
    if (cursor != NULL) {
        char *c = arena_strndup(a, (const char *)cursor, cursor_len);
        char *bar = c != NULL ? strchr(c, '|') : NULL;
        char *end = NULL;
        if (bar != NULL) {
            *bar = '\0';
            after_ms = strtod(c, &end);
            after_name = bar + 1;
        }
        if (bar == NULL || end == NULL || *end != '\0')
            hv_add(&v, "page_token", "is not a page token of this list");
    }
    if (hv_failed(&v))
        return;

    slow_list l = { .a = a, .cap = DB_STMT_SLOTS + 1, .min_ms = req->min_duration_ms };
    l.rows = arena_alloc(a, l.cap * sizeof *l.rows);
    if (l.rows == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    db_stats_foreach(slow_collect, &l);
    qsort(l.rows, l.n, sizeof *l.rows, slow_cmp);

    size_t first = 0;
    if (after_name != NULL) {
        slow_row key = { .name = after_name, .max_ms = after_ms };
        while (first < l.n && slow_cmp(&l.rows[first], &key) <= 0)
            first++;
    }
    size_t n = l.n - first < (size_t)size ? l.n - first : (size_t)size;
    Herald__V1__ListSlowQueriesResponse resp = HERALD__V1__LIST_SLOW_QUERIES_RESPONSE__INIT;
    int64_t threshold = db_slow_threshold_ms();
    resp.threshold_ms = threshold > INT32_MAX ? INT32_MAX : (int32_t)threshold;
    resp.queries = arena_alloc(a, (n > 0 ? n : 1) * sizeof(Herald__V1__SlowQuery *));
    if (resp.queries == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const slow_row *r = &l.rows[first + i];
        Herald__V1__SlowQuery *q = arena_alloc(a, sizeof *q);
        if (q == NULL) {
            rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
            return;
        }
        herald__v1__slow_query__init(q);
        q->statement_name = (char *)r->name;
        q->normalized_statement = (char *)r->sql;
        q->count = (int64_t)r->count;
        q->max_ms = r->max_ms;
        q->mean_ms = r->mean_ms;
        if (r->last_ms > 0)
            q->last_time = handler_ts_from_ms(a, r->last_ms);
        q->last_method = (char *)r->method;
        resp.queries[i] = q;
    }
    resp.n_queries = n;
    if (first + n < l.n && n > 0) {
        const slow_row *last = &l.rows[first + n - 1];
        const char *c = arena_printf(a, "%.17g|%s", last->max_ms, last->name);
        resp.next_page_token = c != NULL ? handler_page_token_encode(a, scope, c, strlen(c)) : NULL;
        if (resp.next_page_token == NULL)
            resp.next_page_token = (char *)"";
    }
    done(&resp, call);
}

/* ---------------------------------------------------------------- GetConfig */

static int setting_cmp(const void *x, const void *y)
{
    const Herald__V1__ConfigSetting *const *a = x, *const *b = y;
    return strcmp((*a)->key, (*b)->key);
}

static Herald__V1__ConfigSource config_source_proto(cfg_source s)
{
    switch (s) {
    case CFG_SRC_DEFAULT:
        return HERALD__V1__CONFIG_SOURCE__CONFIG_SOURCE_DEFAULT;
    case CFG_SRC_FILE:
        return HERALD__V1__CONFIG_SOURCE__CONFIG_SOURCE_FILE;
    case CFG_SRC_ENV:
        return HERALD__V1__CONFIG_SOURCE__CONFIG_SOURCE_ENV;
    case CFG_SRC_FLAG:
        return HERALD__V1__CONFIG_SOURCE__CONFIG_SOURCE_FLAG;
    }
    return HERALD__V1__CONFIG_SOURCE__CONFIG_SOURCE_UNSPECIFIED;
}

static void ops_get_config(Herald__V1__OpsService_Service *svc,
                           const Herald__V1__GetConfigRequest *req,
                           Herald__V1__GetConfigResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_text(&v, "key_prefix", req->key_prefix, 0, CONFIG_PREFIX_MAX);
    if (hv_failed(&v))
        return;
    worker *w = handler_worker(call);
    if (w == NULL || w->shared == NULL || w->cfg == NULL) {
        rpc_call_fail(call, ST_UNAVAILABLE, "no configuration on this thread");
        return;
    }
    size_t total = config_key_count(), prefix = strlen(req->key_prefix), n = 0;
    Herald__V1__ConfigSetting **out = arena_alloc(a, total * sizeof(Herald__V1__ConfigSetting *));
    if (out == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    /* The settings in force (the last SIGHUP reload's, else the start-up
     * ones), copied while the signal thread cannot swap them. Secrets are
     * masked by config_value_string. */
    pthread_mutex_lock(&w->shared->live_mu);
    const config *cfg = w->shared->live != NULL ? w->shared->live : w->cfg;
    for (size_t i = 0; i < total; i++) {
        const cfg_key *k = config_key_at(i);
        if (strncmp(k->name, req->key_prefix, prefix) != 0)
            continue;
        Herald__V1__ConfigSetting *s = arena_alloc(a, sizeof *s);
        char *val = config_value_string(cfg, k, true);
        if (s == NULL) {
            free(val);
            break;
        }
        herald__v1__config_setting__init(s);
        s->key = (char *)k->name;
        s->value = arena_strdup(a, val);
        free(val);
        s->source = config_source_proto(config_source(cfg, k));
        s->secret = (k->flags & CFG_SECRET) != 0;
        s->reloadable = (k->flags & CFG_RELOAD) != 0;
        if (s->value == NULL)
            break;
        out[n++] = s;
    }
    pthread_mutex_unlock(&w->shared->live_mu);
    if (arena_exhausted(a)) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    qsort(out, n, sizeof(Herald__V1__ConfigSetting *), setting_cmp);
    Herald__V1__GetConfigResponse resp = HERALD__V1__GET_CONFIG_RESPONSE__INIT;
    resp.settings = out;
    resp.n_settings = n;
    done(&resp, call);
}

/* clang-format off */
static Herald__V1__OpsService_Service svc = {
    .base = HERALD__V1__OPS_SERVICE__BASE_INIT,
    .create_profile = ops_create_profile,
    .get_profile = ops_get_profile,
    .list_profiles = ops_list_profiles,
    .update_profile = ops_update_profile,
    .pause_profile = ops_pause_profile,
    .resume_profile = ops_resume_profile,
    .get_status = ops_get_status,
    .get_slo_report = ops_get_slo_report,
    .list_slow_queries = ops_list_slow_queries,
    .get_config = ops_get_config,
};
/* clang-format on */

ProtobufCService *svc_ops_service(void)
{
    return &svc.base;
}
