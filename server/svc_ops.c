/* svc_ops.c - herald.v1.OpsService handlers (proto/herald/v1/ops.proto).
 *
 * Profiles (issue 4): CreateProfile, GetProfile, ListProfiles,
 * UpdateProfile, PauseProfile, ResumeProfile. Status, SLOs, slow queries and
 * config (issue 8) are still NULL slots: the runtime answers UNIMPLEMENTED.
 * Handlers run on worker threads and follow rpc.h and handler.h; the SQL is
 * in profiles.c.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/field_mask.pb-c.h"
#include "handler.h"
#include "herald/v1/ops.pb-c.h"
#include "log.h"
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
    const char *what = arena_printf(a, "profile %s", req->profile_id);

    /* The version from PostgreSQL, then the copy under that version. */
    int64_t rev = 0, create_us = 0;
    status st = profile_version(db, handler_budget_ms(call), req->profile_id, &rev, &create_us);
    if (st != ST_OK) {
        handler_fail_db(call, db, st, what);
        return;
    }
    const char *key = profile_key(call, req->profile_id, create_us, rev);
    Herald__V1__Profile *p =
        (Herald__V1__Profile *)handler_cache_get(call, key, &herald__v1__profile__descriptor);
    if (p == NULL) {
        st = profile_get(db, handler_budget_ms(call), a, req->profile_id, &p);
        if (st != ST_OK) {
            handler_fail_db(call, db, st, what);
            return;
        }
        /* cached under the version it was read at (a write may have come in between) */
        key = profile_key(call, p->profile_id, handler_ts_us(p->create_time), p->revision);
        handler_cache_put(call, key, &p->base, PROFILE_TTL_S);
    }
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
    Herald__V1__ListProfilesResponse *resp = (Herald__V1__ListProfilesResponse *)handler_cache_get(
        call, k, &herald__v1__list_profiles_response__descriptor);
    free(k);
    if (resp == NULL) {
        profile_page pg;
        st = profile_list(db, handler_budget_ms(call), a, st_txt, pf_txt, after, size, &pg);
        if (st != ST_OK) {
            handler_fail_db(call, db, st, "profiles");
            return;
        }
        resp = arena_alloc(a, sizeof *resp);
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
    }
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

/* clang-format off */
static Herald__V1__OpsService_Service svc = {
    .base = HERALD__V1__OPS_SERVICE__BASE_INIT,
    .create_profile = ops_create_profile,
    .get_profile = ops_get_profile,
    .list_profiles = ops_list_profiles,
    .update_profile = ops_update_profile,
    .pause_profile = ops_pause_profile,
    .resume_profile = ops_resume_profile,
    .get_status = NULL,
    .get_slo_report = NULL,
    .list_slow_queries = NULL,
    .get_config = NULL,
};
/* clang-format on */

ProtobufCService *svc_ops_service(void)
{
    return &svc.base;
}
