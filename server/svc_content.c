/* svc_content.c - herald.v1.ContentService handlers (proto/herald/v1/content.proto).
 *
 * Drafts, review and the catalog (issue 5). Handlers run on worker threads
 * and follow rpc.h and handler.h; the SQL is in content_store.c, the
 * built-in drafting step and the completion threads in pregen.c.
 *
 * Where each part of GenerateDraft runs:
 *   1. Worker thread: validate; replay a committed request_id at once
 *      (content_idem_peek, before any slow work); resolve the profile (a
 *      paused one gets FAILED_PRECONDITION); take the catalog snapshot; pick
 *      the provider; choose the arms left open (content_plan_choose:
 *      Thompson sampling over the arm statistics, topic cooldown).
 *   2a. BUILTIN (or AUTO with no LLM configured): handler_mutate on the
 *      worker's connection; its body loads the history, composes, gates and
 *      stores post + gate results + decision in one transaction
 *      (pregen_draft_tx).
 *   2b. LLM (or AUTO with an LLM): the worker loads the history, detaches
 *      the call and starts llm_generate with a deadline short of the call's
 *      (AUTO keeps room for the fallback), and returns: the worker is free
 *      at once. The llm callback runs on the http thread, which must not
 *      block and must never use a worker's db_conn: it copies the result
 *      and hands the job to a completion thread (pregen_submit), which has
 *      its own connection. There the LLM text is gated; when the LLM failed
 *      or its text failed a gate, AUTO falls back to the built-in generator
 *      and says so in `attempts` and `fallback`; an explicit PROVIDER_LLM
 *      does not fall back (the proto says so): an upstream failure becomes
 *      its code (DEADLINE_EXCEEDED, UNAVAILABLE with RetryInfo, INTERNAL for
 *      a malformed or oversized reply, FAILED_PRECONDITION for auth/config)
 *      with the llm's ErrorInfo reason, and a gate failure becomes
 *      FAILED_PRECONDITION naming the gates. The store is handler_mutate_on
 *      with the completion thread's connection: still one transaction,
 *      still idempotent by request_id. A client that cancels (or whose
 *      deadline passes) cancels the LLM transfer from on_done.
 *   A job is shared by on_done and the completion (two references); the
 *   call stays valid until both happened (rpc.h), so the completion thread
 *   may use the call's arena: nothing else touches it after the handler
 *   detached and started the LLM.
 *
 * AdaptForPlatform takes the same two paths with the source post's arms and
 * its closest fact. GenerateBatch, GenerateReply and the pre-generation job
 * write with the built-in generator only (a batch never waits on an LLM;
 * the LLM prompt has no reply mode): PROVIDER_LLM there is
 * FAILED_PRECONDITION, AUTO means BUILTIN.
 *
 * Rules kept here:
 *   - Gates fail closed; nothing is stored unless every gate passed.
 *   - Every mutation is idempotent by request_id (handler_mutate).
 *   - A text already live for the profile (posts_live_content_uq) is never
 *     stored twice: the built-in generator tries another seed; an LLM text
 *     counts as failing GATE_DUPLICATE; a concurrent twin that wins the
 *     unique index makes the loser ABORTED (retry).
 *   - Illegal transitions are FAILED_PRECONDITION with ErrorInfo reason
 *     INVALID_POST_STATE and a message naming the state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdatomic.h>

#include "config.h"
#include "content_store.h"
#include "generator.h"
#include "google/protobuf/field_mask.pb-c.h"
#include "handler.h"
#include "herald/v1/content.pb-c.h"
#include "llm.h"
#include "log.h"
#include "pregen.h"
#include "replyopp.h"
#include "sched_slots.h"
#include "svc.h"
#include "util.h"

enum {
    TEXT_MAX = 10000,
    REASON_MAX = 500,
    LIST_DEFAULT = 50,
    LIST_MAX = 500,
    CATALOG_LIST_DEFAULT = 100,
    BATCH_MAX = 50,
    AUTO_RESERVE_MS = 400, /* AUTO keeps this much of the deadline for the fallback */
    LLM_RESERVE_MS = 150,  /* an explicit LLM call keeps this much for the store */
};

#define REASON_POST_STATE "INVALID_POST_STATE"

/* ================================================================ helpers */

static const char *state_short(int state)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&herald__v1__post_state__descriptor, state);
    return v != NULL ? v->name + strlen("POST_STATE_") : "UNSPECIFIED";
}

/* An optional catalog key: "" passes with *out NULL. */
static void opt_key(hv *v, const char *field, const char *in, const char **out)
{
    *out = NULL;
    if (in != NULL && in[0] != '\0')
        hv_catalog_key(v, field, in, out);
}

static void fail_post_state(rpc_call *call, const Herald__V1__Post *p, const char *method,
                            const char *needs)
{
    rpc_call_set_error_info(call, REASON_POST_STATE, HANDLER_ERROR_DOMAIN);
    rpc_call_fail(call, ST_FAILED_PRECONDITION, "post %s is %s; %s needs %s", p->post_id,
                  state_short(p->state), method, needs);
}

static status reject_post_state(handler_tx *tx, const Herald__V1__Post *p, const char *method,
                                const char *needs)
{
    rpc_call_set_error_info(tx->call, REASON_POST_STATE, HANDLER_ERROR_DOMAIN);
    return handler_tx_reject(tx, ST_FAILED_PRECONDITION, "post %s is %s; %s needs %s", p->post_id,
                             state_short(p->state), method, needs);
}

/* Ends the call after a failed content_plan_choose / profile lookup. */
static void fail_with(rpc_call *call, db_conn *db, status st, const char *err, const char *what)
{
    if (st == ST_INVALID || st == ST_FAILED_PRECONDITION || st == ST_NOT_FOUND)
        rpc_call_fail(call, st, "%s", err != NULL && err[0] ? err : what);
    else
        handler_fail_db(call, db, st, what);
}

static Herald__V1__ProviderAttempt *attempt_new(arena *a, Herald__V1__Provider p, bool accepted,
                                                const char *reason, int64_t ms)
{
    Herald__V1__ProviderAttempt *at = arena_alloc(a, sizeof *at);
    if (at == NULL)
        return NULL;
    herald__v1__provider_attempt__init(at);
    at->provider = p;
    at->accepted = accepted;
    at->reason = arena_strdup(a, reason != NULL ? reason : "");
    if (at->reason == NULL)
        at->reason = (char *)"";
    at->duration_ms = ms;
    return at;
}

/* The profile for a generation: resolved, and active. false: call ended. */
static bool profile_for_generation(rpc_call *call, db_conn *db, const char *id, const char *field,
                                   Herald__V1__Profile **out)
{
    char err[160];
    status st = content_profile_resolve(db, handler_budget_ms(call), rpc_call_arena(call), id, out,
                                        err, sizeof err);
    if (st == ST_NOT_FOUND) {
        rpc_call_fail(call, st, "profile %s not found", id);
        return false;
    }
    if (st == ST_INVALID) {
        rpc_call_add_violation(call, field, err);
        rpc_call_fail(call, st, "%s: %s", field, err);
        return false;
    }
    if (st != ST_OK) {
        handler_fail_db(call, db, st, "profile");
        return false;
    }
    if ((*out)->state == HERALD__V1__PROFILE_STATE__PROFILE_STATE_PAUSED) {
        rpc_call_set_error_info(call, "PROFILE_PAUSED", HANDLER_ERROR_DOMAIN);
        rpc_call_fail(call, ST_FAILED_PRECONDITION,
                      "profile %s is paused (%s): a paused profile gets no generation",
                      (*out)->profile_id, (*out)->pause_reason);
        return false;
    }
    return true;
}

static content_catalog *catalog_for(rpc_call *call, db_conn *db)
{
    content_catalog *snap = NULL;
    char err[300];
    status st = content_catalog_acquire(db, handler_budget_ms(call), &snap, err, sizeof err);
    if (st == ST_INVALID) {
        log_field f[] = { LOG_S("req", rpc_call_request_id(call)), LOG_S("error", err) };
        log_event(LOG_ERROR, "the catalog in the database is invalid", f, 2);
        rpc_call_fail(call, ST_INTERNAL, "internal error: the catalog is invalid");
        return NULL;
    }
    if (st != ST_OK) {
        handler_fail_db(call, db, st, "catalog");
        return NULL;
    }
    return snap;
}

/* Replays a committed request_id before slow work. true: the call ended
 * (replayed or refused); false: go on (nothing stored under the key yet). */
static bool idem_replayed(rpc_call *call, db_conn *db, const char *request_id,
                          const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
                          const ProtobufCMessage **reply)
{
    *reply = NULL;
    if (request_id == NULL || request_id[0] == '\0')
        return false;
    size_t len = 0;
    uint8_t *bytes = handler_pack(call, req, &len);
    if (bytes == NULL)
        return false; /* handler_mutate will say so */
    uint8_t hash[32];
    db_sha256(bytes, len, hash);
    content_idem_state state;
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    int code = 0;
    status st = content_idem_peek(db, handler_budget_ms(call), request_id, rpc_call_path(call),
                                  hash, &state, &resp, &resp_len, &code);
    if (st != ST_OK || state == CONTENT_IDEM_NONE) {
        free(resp);
        return false; /* a failed peek is not fatal: the mutation decides */
    }
    if (state == CONTENT_IDEM_OTHER) {
        rpc_call_set_error_info(call, DB_IDEM_REUSED, HANDLER_ERROR_DOMAIN);
        rpc_call_add_violation(call, "request_id", "was already used for a different request");
        rpc_call_fail(call, ST_INVALID, "request_id was already used for a different request");
        return true;
    }
    if (code != GRPC_CODE_OK) {
        free(resp);
        rpc_call_finish_code(call, code, "the first call with this request_id failed");
        return true;
    }
    *reply = protobuf_c_message_unpack(reply_desc, arena_allocator(rpc_call_arena(call)), resp_len,
                                       resp);
    free(resp);
    if (*reply == NULL) {
        rpc_call_fail(call, ST_INTERNAL, "internal error");
        return true;
    }
    return true;
}

/* ================================================================ GetPost */

static void content_get_post(Herald__V1__ContentService_Service *svc,
                             const Herald__V1__GetPostRequest *req, Herald__V1__Post_Closure done,
                             void *data)
{
    rpc_call *call = data;
    hv v;
    (void)svc;
    hv_init(&v, call, &req->base);
    hv_uuid(&v, "post_id", req->post_id, true);
    if (hv_failed(&v))
        return;
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;
    Herald__V1__Post *p = NULL;
    status st = content_post_get(db, handler_budget_ms(call), rpc_call_arena(call), req->post_id,
                                 false, &p);
    if (st == ST_NOT_FOUND) {
        rpc_call_fail(call, st, "post %s not found", req->post_id);
        return;
    }
    if (st != ST_OK) {
        handler_fail_db(call, db, st, "post");
        return;
    }
    done(p, call);
}

/* ================================================================ ListPosts */

static const char *enum_db(const ProtobufCEnumDescriptor *d, int value, arena *a)
{
    char buf[48];
    if (value == 0)
        return NULL;
    const char *s = handler_enum_db_name(d, value, buf, sizeof buf);
    return s != NULL ? arena_strdup(a, s) : NULL;
}

static void content_list_posts(Herald__V1__ContentService_Service *svc,
                               const Herald__V1__ListPostsRequest *req,
                               Herald__V1__ListPostsResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    content_post_filter f = { 0 };
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    if (req->profile_id[0] != '\0')
        hv_profile_id(&v, "profile_id", req->profile_id);
    if (hv_count(&v, "states", req->n_states, 0, 10))
        for (size_t i = 0; i < req->n_states; i++)
            hv_enum(&v, hv_path(&v, "states[%zu]", i), &herald__v1__post_state__descriptor,
                    (int)req->states[i], false);
    hv_enum(&v, "platform", &herald__v1__platform__descriptor, (int)req->platform, false);
    hv_enum(&v, "kind", &herald__v1__post_kind__descriptor, (int)req->kind, false);
    opt_key(&v, "content_type", req->content_type, &f.content_type);
    opt_key(&v, "voice_style", req->voice_style, &f.voice_style);
    opt_key(&v, "topic", req->topic, &f.topic);
    int64_t min_ms = 0, max_ms = 0;
    hv_timestamp(&v, "min_create_time", req->min_create_time, false, &min_ms);
    hv_timestamp(&v, "max_create_time", req->max_create_time, false, &max_ms);
    int32_t size = hv_page_size(&v, "page_size", req->page_size, LIST_DEFAULT, LIST_MAX);
    strbuf sc = { 0 };
    strbuf_printf(&sc, "ListPosts|p=%s|s=", req->profile_id);
    for (size_t i = 0; i < req->n_states && i < 10; i++)
        strbuf_printf(&sc, "%d,", (int)req->states[i]);
    strbuf_printf(&sc, "|pl=%d|k=%d|ct=%s|vs=%s|t=%s|min=%lld|max=%lld", (int)req->platform,
                  (int)req->kind, f.content_type ? f.content_type : "",
                  f.voice_style ? f.voice_style : "", f.topic ? f.topic : "",
                  (long long)handler_ts_us(req->min_create_time),
                  (long long)handler_ts_us(req->max_create_time));
    const char *scope = arena_strdup(a, sc.data);
    strbuf_fini(&sc);
    const uint8_t *cur = NULL;
    size_t cur_len = 0;
    hv_page_token(&v, "page_token", req->page_token, scope != NULL ? scope : "ListPosts", &cur,
                  &cur_len);
    if (hv_failed(&v))
        return;

    if (cur != NULL) {
        /* "<created_us>|<post_id>" */
        char buf[HANDLER_PAGE_CURSOR_MAX + 1];
        (void)snprintf(buf, sizeof buf, "%.*s", (int)cur_len, (const char *)cur);
        char *bar = strchr(buf, '|');
        if (bar == NULL || !handler_uuid_valid(bar + 1)) {
            rpc_call_add_violation(call, "page_token", "is not a token of this list");
            rpc_call_fail(call, ST_INVALID, "page_token: is not a token of this list");
            return;
        }
        *bar = '\0';
        f.has_after = true;
        f.after_us = strtoll(buf, NULL, 10);
        f.after_id = arena_strdup(a, bar + 1);
    }
    f.profile_id = req->profile_id[0] ? req->profile_id : NULL;
    if (req->n_states > 0) {
        const char **st = arena_alloc(a, req->n_states * sizeof *st);
        for (size_t i = 0; st != NULL && i < req->n_states; i++) {
            const char *nm = enum_db(&herald__v1__post_state__descriptor, (int)req->states[i], a);
            st[i] = nm != NULL ? nm : "unspecified"; /* matches nothing */
        }
        f.states = st;
        f.n_states = req->n_states;
    }
    f.platform = enum_db(&herald__v1__platform__descriptor, (int)req->platform, a);
    f.kind = enum_db(&herald__v1__post_kind__descriptor, (int)req->kind, a);
    f.min_create_us = min_ms * 1000;
    f.max_create_us = max_ms * 1000;
    if (req->min_create_time != NULL && f.min_create_us == 0)
        f.min_create_us = 1; /* the epoch itself: still a bound */
    if (req->max_create_time != NULL && f.max_create_us == 0)
        f.max_create_us = 1;
    f.limit = size;

    db_conn *db = handler_db(call);
    if (db == NULL)
        return;
    content_post_page pg;
    status st = content_post_list(db, handler_budget_ms(call), a, &f, &pg);
    if (st != ST_OK) {
        handler_fail_db(call, db, st, "posts");
        return;
    }
    Herald__V1__ListPostsResponse resp = HERALD__V1__LIST_POSTS_RESPONSE__INIT;
    resp.posts = pg.posts;
    resp.n_posts = pg.n;
    if (pg.more && pg.n > 0) {
        char *c =
            arena_printf(a, "%lld|%s", (long long)pg.last_create_us, pg.posts[pg.n - 1]->post_id);
        resp.next_page_token = c != NULL ? handler_page_token_encode(a, scope, c, strlen(c)) : NULL;
        if (resp.next_page_token == NULL)
            resp.next_page_token = (char *)"";
    }
    done(&resp, call);
}

/* ================================================================ ListCatalog */

static void content_list_catalog(Herald__V1__ContentService_Service *svc,
                                 const Herald__V1__ListCatalogRequest *req,
                                 Herald__V1__ListCatalogResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    hv v;
    (void)svc;
    hv_init(&v, call, &req->base);
    hv_enum(&v, "kind", &herald__v1__catalog_kind__descriptor, (int)req->kind, false);
    int32_t size = hv_page_size(&v, "page_size", req->page_size, CATALOG_LIST_DEFAULT, LIST_MAX);
    const char *scope =
        arena_printf(a, "ListCatalog|k=%d|d=%d", (int)req->kind, req->include_disabled ? 1 : 0);
    const uint8_t *cur = NULL;
    size_t cur_len = 0;
    hv_page_token(&v, "page_token", req->page_token, scope != NULL ? scope : "ListCatalog", &cur,
                  &cur_len);
    if (hv_failed(&v))
        return;
    int after_kind = 0;
    char after_key[CONTENT_KEY_MAX] = "";
    if (cur != NULL) {
        char buf[96];
        (void)snprintf(buf, sizeof buf, "%.*s", (int)cur_len, (const char *)cur);
        /* "<kind>:<key>" */
        char *colon = strchr(buf, ':');
        if (colon != NULL && colon == buf + 1 && buf[0] >= '1' && buf[0] <= '3') {
            after_kind = buf[0] - '0';
            (void)snprintf(after_key, sizeof after_key, "%.64s", colon + 1);
        }
        if (after_kind == 0 || after_key[0] == '\0') {
            rpc_call_add_violation(call, "page_token", "is not a token of this list");
            rpc_call_fail(call, ST_INVALID, "page_token: is not a token of this list");
            return;
        }
    }
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;
    content_catalog *snap = catalog_for(call, db);
    if (snap == NULL)
        return;
    const catalog *cat = content_catalog_get(snap);
    Herald__V1__ListCatalogResponse resp = HERALD__V1__LIST_CATALOG_RESPONSE__INIT;
    resp.entries = arena_alloc(a, ((size_t)size + 1) * sizeof *resp.entries);
    bool more = false;
    int last_kind = 0;
    const char *last_key = NULL;
    for (int k = CATALOG_CONTENT_TYPE; resp.entries != NULL && k <= CATALOG_TOPIC && !more; k++) {
        if (req->kind != 0 && (int)req->kind != k)
            continue;
        if (k < after_kind)
            continue;
        for (size_t i = 0; i < catalog_count(cat, (catalog_kind)k); i++) {
            const catalog_entry *e = catalog_entry_at(cat, (catalog_kind)k, i);
            if (!e->enabled && !req->include_disabled)
                continue;
            if (k == after_kind && strcmp(e->key, after_key) <= 0)
                continue;
            if (resp.n_entries == (size_t)size) {
                more = true;
                break;
            }
            Herald__V1__CatalogEntry *m =
                content_catalog_entry_msg(a, snap, (catalog_kind)k, i, req->include_disabled);
            if (m == NULL)
                break;
            resp.entries[resp.n_entries++] = m;
            last_kind = k;
            last_key = e->key;
        }
    }
    if (resp.entries == NULL || arena_exhausted(a)) {
        content_catalog_release(snap);
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        return;
    }
    if (more && last_key != NULL) {
        char *c = arena_printf(a, "%d:%s", last_kind, last_key);
        resp.next_page_token = c != NULL ? handler_page_token_encode(a, scope, c, strlen(c)) : NULL;
        if (resp.next_page_token == NULL)
            resp.next_page_token = (char *)"";
    }
    done(&resp, call);
    content_catalog_release(snap);
}

/* ================================================================ UpdateCatalogEntry */

enum {
    CF_NAME = 1 << 0,
    CF_DESC = 1 << 1,
    CF_ENABLED = 1 << 2,
    CF_MIN = 1 << 3,
    CF_MAX = 1 << 4,
    CF_WEIGHT = 1 << 5,
};

/* clang-format off */
static const struct {
    const char *path;
    unsigned bits; /* 0: immutable or output only */
} catalog_paths[] = {
    { "display_name", CF_NAME }, { "description", CF_DESC }, { "enabled", CF_ENABLED },
    { "min_length", CF_MIN }, { "max_length", CF_MAX }, { "prior_weight", CF_WEIGHT },
    { "kind", 0 }, { "key", 0 }, { "facts", 0 }, { "update_time", 0 },
};
/* clang-format on */

typedef struct catalog_update_ctx {
    catalog_kind kind;
    const char *key;
    content_catalog_patch patch;
} catalog_update_ctx;

static status catalog_update_body(handler_tx *tx, ProtobufCMessage **reply)
{
    catalog_update_ctx *c = tx->ctx;
    char err[160];
    status st = content_catalog_update_tx(tx->db, c->kind, c->key, &c->patch, err, sizeof err);
    if (st == ST_NOT_FOUND)
        return handler_tx_reject(tx, st, "catalog entry %s not found", c->key);
    if (st == ST_INVALID) {
        rpc_call_add_violation(tx->call, "entry.min_length", err);
        return handler_tx_reject(tx, st, "entry: %s", err);
    }
    if (st != ST_OK)
        return st;
    Herald__V1__CatalogEntry *e = NULL;
    st = content_catalog_entry_get_tx(tx->db, rpc_call_arena(tx->call), c->kind, c->key, &e);
    if (st == ST_OK)
        *reply = &e->base;
    return st;
}

/* camelCase -> snake_case (JSON clients may send either). */
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

static void content_update_catalog_entry(Herald__V1__ContentService_Service *svc,
                                         const Herald__V1__UpdateCatalogEntryRequest *req,
                                         Herald__V1__CatalogEntry_Closure done, void *data)
{
    rpc_call *call = data;
    catalog_update_ctx c = { 0 };
    unsigned mask = 0;
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    const Herald__V1__CatalogEntry *e = req->entry;
    if (hv_present(&v, "entry", e)) {
        hv_enum(&v, "entry.kind", &herald__v1__catalog_kind__descriptor, (int)e->kind, true);
        hv_catalog_key(&v, "entry.key", e->key, &c.key);
    }
    const Google__Protobuf__FieldMask *fm = req->update_mask;
    size_t n_paths = fm != NULL ? fm->n_paths : 0;
    hv_count(&v, "update_mask.paths", n_paths, 0, 16);
    for (size_t i = 0; i < n_paths && i < 16; i++) {
        char snake[64];
        path_snake(fm->paths[i], snake, sizeof snake);
        size_t k = 0;
        for (; k < sizeof catalog_paths / sizeof catalog_paths[0]; k++)
            if (strcmp(catalog_paths[k].path, snake) == 0)
                break;
        const char *field = hv_path(&v, "update_mask.paths[%zu]", i);
        if (k == sizeof catalog_paths / sizeof catalog_paths[0])
            hv_add(&v, field, "unknown field of CatalogEntry");
        else if (catalog_paths[k].bits == 0)
            hv_add(&v, field, "%s cannot change (new entries come with migrations)",
                   catalog_paths[k].path);
        else
            mask |= catalog_paths[k].bits;
    }
    if (e != NULL && n_paths == 0) {
        mask |= e->display_name[0] ? CF_NAME : 0;
        mask |= e->description[0] ? CF_DESC : 0;
        mask |= e->enabled ? CF_ENABLED : 0;
        mask |= e->min_length != 0 ? CF_MIN : 0;
        mask |= e->max_length != 0 ? CF_MAX : 0;
        mask |= e->prior_weight != 0 ? CF_WEIGHT : 0;
    }
    if (e != NULL) {
        /* the database's limits (0001_catalog), tighter than the proto's */
        if (mask & CF_NAME)
            hv_text(&v, "entry.display_name", e->display_name, 1, 80);
        if (mask & CF_DESC)
            hv_text(&v, "entry.description", e->description, 1, 500);
        if (mask & CF_MIN)
            hv_int(&v, "entry.min_length", e->min_length, 0, TEXT_MAX);
        if (mask & CF_MAX)
            hv_int(&v, "entry.max_length", e->max_length, 0, TEXT_MAX);
        if ((mask & CF_WEIGHT) && !(e->prior_weight > 0 && e->prior_weight <= 1e6))
            hv_add(&v, "entry.prior_weight", "must be > 0 and at most 1e6");
        if (mask == 0)
            hv_add(&v, "update_mask", "names no field to change");
    }
    if (hv_failed(&v))
        return;
    c.kind = (catalog_kind)e->kind;
    c.patch = (content_catalog_patch){
        .has_display_name = (mask & CF_NAME) != 0,
        .has_description = (mask & CF_DESC) != 0,
        .has_enabled = (mask & CF_ENABLED) != 0,
        .has_min = (mask & CF_MIN) != 0,
        .has_max = (mask & CF_MAX) != 0,
        .has_weight = (mask & CF_WEIGHT) != 0,
        .display_name = e->display_name,
        .description = e->description,
        .enabled = e->enabled,
        .min_chars = e->min_length,
        /* 0 = the platform's limit: the widest bound the table allows */
        .max_chars = e->max_length == 0 ? TEXT_MAX : e->max_length,
        .prior_weight = e->prior_weight,
    };
    handler_mutation m = { .request = &req->base,
                           .request_id = req->request_id,
                           .reply_desc = &herald__v1__catalog_entry__descriptor,
                           .body = catalog_update_body,
                           .ctx = &c,
                           .what = "catalog entry" };
    handler_result r;
    if (handler_mutate(call, &m, &r))
        done((const Herald__V1__CatalogEntry *)r.reply, call);
}

/* ================================================================ Approve / Reject / Cancel */

typedef enum { T_APPROVE, T_REJECT, T_CANCEL } transition;

typedef struct transition_ctx {
    transition t;
    const char *post_id;
    const char *reason;
    int64_t expected_revision;
} transition_ctx;

static status transition_body(handler_tx *tx, ProtobufCMessage **reply)
{
    transition_ctx *c = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    Herald__V1__Post *p = NULL;
    status st = content_post_get(tx->db, 0, a, c->post_id, true, &p);
    if (st == ST_NOT_FOUND)
        return handler_tx_reject(tx, st, "post %s not found", c->post_id);
    if (st != ST_OK)
        return st;
    if (c->expected_revision != 0 && c->expected_revision != p->revision)
        return handler_tx_reject(tx, ST_CONFLICT,
                                 "post %s is at revision %lld, not %lld; read it again", p->post_id,
                                 (long long)p->revision, (long long)c->expected_revision);
    int s = p->state;
    const char *to = NULL;
    switch (c->t) {
    case T_APPROVE:
        if (s == HERALD__V1__POST_STATE__POST_STATE_APPROVED) {
            *reply = &p->base; /* approving again is a no-op */
            return ST_OK;
        }
        if (s != HERALD__V1__POST_STATE__POST_STATE_DRAFT)
            return reject_post_state(tx, p, "ApprovePost", "DRAFT");
        to = "approved";
        break;
    case T_REJECT:
        if (s != HERALD__V1__POST_STATE__POST_STATE_DRAFT &&
            s != HERALD__V1__POST_STATE__POST_STATE_APPROVED)
            return reject_post_state(tx, p, "RejectPost", "DRAFT or APPROVED");
        to = "rejected";
        break;
    case T_CANCEL:
        if (s != HERALD__V1__POST_STATE__POST_STATE_DRAFT &&
            s != HERALD__V1__POST_STATE__POST_STATE_APPROVED &&
            s != HERALD__V1__POST_STATE__POST_STATE_SCHEDULED)
            return reject_post_state(tx, p, "CancelPost", "DRAFT, APPROVED or SCHEDULED");
        to = "cancelled";
        break;
    }
    st = content_post_set_state_tx(tx->db, c->post_id, to, c->reason);
    if (st == ST_OK)
        st = content_post_get(tx->db, 0, a, c->post_id, false, &p);
    if (st == ST_OK)
        *reply = &p->base;
    return st;
}

static void do_transition(rpc_call *call, const ProtobufCMessage *req, const char *request_id,
                          transition_ctx *c, Herald__V1__Post_Closure done)
{
    hv v;
    hv_init(&v, call, req);
    hv_request_id(&v, "request_id", request_id);
    hv_uuid(&v, "post_id", c->post_id, true);
    if (c->t == T_REJECT)
        hv_text(&v, "reason", c->reason, 1, REASON_MAX);
    else if (c->t == T_CANCEL)
        hv_text(&v, "reason", c->reason, 0, REASON_MAX);
    hv_int(&v, "expected_revision", c->expected_revision, 0, INT64_MAX);
    if (hv_failed(&v))
        return;
    handler_mutation m = { .request = req,
                           .request_id = request_id,
                           .reply_desc = &herald__v1__post__descriptor,
                           .body = transition_body,
                           .ctx = c,
                           .what = "post" };
    handler_result r;
    if (handler_mutate(call, &m, &r))
        done((const Herald__V1__Post *)r.reply, call);
}

static void content_approve_post(Herald__V1__ContentService_Service *svc,
                                 const Herald__V1__ApprovePostRequest *req,
                                 Herald__V1__Post_Closure done, void *data)
{
    transition_ctx c = { T_APPROVE, req->post_id, "", req->expected_revision };
    (void)svc;
    do_transition(data, &req->base, req->request_id, &c, done);
}

static void content_reject_post(Herald__V1__ContentService_Service *svc,
                                const Herald__V1__RejectPostRequest *req,
                                Herald__V1__Post_Closure done, void *data)
{
    transition_ctx c = { T_REJECT, req->post_id, req->reason, 0 };
    (void)svc;
    do_transition(data, &req->base, req->request_id, &c, done);
}

static void content_cancel_post(Herald__V1__ContentService_Service *svc,
                                const Herald__V1__CancelPostRequest *req,
                                Herald__V1__Post_Closure done, void *data)
{
    transition_ctx c = { T_CANCEL, req->post_id, req->reason, 0 };
    (void)svc;
    do_transition(data, &req->base, req->request_id, &c, done);
}

/* ================================================================ UpdateDraft */

typedef struct update_draft_ctx {
    const Herald__V1__UpdateDraftRequest *req;
    content_catalog *snap;
} update_draft_ctx;

static status update_draft_body(handler_tx *tx, ProtobufCMessage **reply)
{
    update_draft_ctx *c = tx->ctx;
    const Herald__V1__UpdateDraftRequest *req = c->req;
    arena *a = rpc_call_arena(tx->call);
    Herald__V1__Post *p = NULL;
    Herald__V1__Profile *prof = NULL;
    textsim_index *hist = NULL;
    char err[160];

    status st = content_post_get(tx->db, 0, a, req->post_id, true, &p);
    if (st == ST_NOT_FOUND)
        return handler_tx_reject(tx, st, "post %s not found", req->post_id);
    if (st != ST_OK)
        return st;
    if (req->expected_revision != 0 && req->expected_revision != p->revision)
        return handler_tx_reject(tx, ST_CONFLICT,
                                 "post %s is at revision %lld, not %lld; read it again", p->post_id,
                                 (long long)p->revision, (long long)req->expected_revision);
    if (p->state != HERALD__V1__POST_STATE__POST_STATE_DRAFT &&
        p->state != HERALD__V1__POST_STATE__POST_STATE_APPROVED)
        return reject_post_state(tx, p, "UpdateDraft", "DRAFT or APPROVED");
    st = content_profile_resolve(tx->db, 0, a, p->profile_id, &prof, err, sizeof err);
    if (st != ST_OK)
        return st;

    hist = textsim_index_new();
    st = content_history_load(tx->db, 0, p->profile_id, CONTENT_DUP_WINDOW_DAYS, hist);
    if (st != ST_OK) {
        textsim_index_free(hist);
        return st;
    }
    gates_report rep;
    size_t len = strlen(req->text);
    const Herald__V1__ArmChoice *arms = p->arms;
    content_gates_run(content_catalog_get(c->snap), req->text, len, (platform_id)p->platform,
                      arms != NULL ? arms->content_type : NULL,
                      arms != NULL ? arms->voice_style : NULL, arms != NULL ? arms->topic : NULL,
                      hist, p->post_id, CONTENT_DUP_THRESHOLD, CONTENT_DUP_WINDOW_DAYS, &rep);
    if (!rep.pass) {
        char names[600];
        content_gates_failed_names(&rep, names, sizeof names);
        textsim_index_free(hist);
        rpc_call_set_error_info(tx->call, "GATE_FAILED", HANDLER_ERROR_DOMAIN);
        return handler_tx_reject(tx, ST_FAILED_PRECONDITION,
                                 "the new text failed %s; the post is unchanged", names);
    }
    char hash[CONTENT_HASH_HEX], owner[CONTENT_ID_MAX];
    if (!content_hash_hex(req->text, len, hash)) {
        textsim_index_free(hist);
        return handler_tx_reject(tx, ST_INVALID, "text: must be valid UTF-8");
    }
    st = content_live_hash_owner(tx->db, 0, p->profile_id, hash, p->post_id, owner);
    if (st == ST_OK && owner[0] != '\0') {
        textsim_index_free(hist);
        rpc_call_set_error_info(tx->call, "GATE_FAILED", HANDLER_ERROR_DOMAIN);
        return handler_tx_reject(tx, ST_FAILED_PRECONDITION,
                                 "the same text is already live as post %s; the post is unchanged",
                                 owner);
    }
    const char *state =
        p->state == HERALD__V1__POST_STATE__POST_STATE_APPROVED && prof->auto_approve ? "approved"
                                                                                      : "draft";
    if (st == ST_OK)
        st = content_post_update_text_tx(tx->db, p->post_id, req->text, len, state, &rep,
                                         CONTENT_DUP_THRESHOLD);
    textsim_index_free(hist);
    if (st == ST_CONFLICT)
        return handler_tx_reject(tx, st,
                                 "another post with the same text was stored concurrently; "
                                 "retry");
    if (st == ST_OK)
        st = content_post_get(tx->db, 0, a, req->post_id, false, &p);
    if (st == ST_OK)
        *reply = &p->base;
    return st;
}

static void content_update_draft(Herald__V1__ContentService_Service *svc,
                                 const Herald__V1__UpdateDraftRequest *req,
                                 Herald__V1__Post_Closure done, void *data)
{
    rpc_call *call = data;
    hv v;
    (void)svc;
    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    hv_uuid(&v, "post_id", req->post_id, true);
    hv_text(&v, "text", req->text, 1, TEXT_MAX);
    hv_int(&v, "expected_revision", req->expected_revision, 0, INT64_MAX);
    if (hv_failed(&v))
        return;
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;
    update_draft_ctx c = { .req = req, .snap = catalog_for(call, db) };
    if (c.snap == NULL)
        return;
    handler_mutation m = { .request = &req->base,
                           .request_id = req->request_id,
                           .reply_desc = &herald__v1__post__descriptor,
                           .body = update_draft_body,
                           .ctx = &c,
                           .what = "post" };
    handler_result r;
    if (handler_mutate(call, &m, &r))
        done((const Herald__V1__Post *)r.reply, call);
    content_catalog_release(c.snap);
}

/* ================================================================ ValidateText */

static void content_validate_text(Herald__V1__ContentService_Service *svc,
                                  const Herald__V1__ValidateTextRequest *req,
                                  Herald__V1__ValidateTextResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    const char *ct = NULL;
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_text(&v, "text", req->text, 1, TEXT_MAX);
    hv_enum(&v, "platform", &herald__v1__platform__descriptor, (int)req->platform, true);
    if (req->profile_id[0] != '\0')
        hv_profile_id(&v, "profile_id", req->profile_id);
    opt_key(&v, "content_type", req->content_type, &ct);
    hv_int(&v, "duplicate_window_days", req->duplicate_window_days, 0, 365);
    double threshold = CONTENT_DUP_THRESHOLD;
    if (SVC_HAS(req, duplicate_threshold)) {
        threshold = req->duplicate_threshold;
        if (!(threshold > 0 && threshold <= 1))
            hv_add(&v, "duplicate_threshold", "must be in (0, 1]");
    }
    if (req->exclude_post_id[0] != '\0')
        hv_uuid(&v, "exclude_post_id", req->exclude_post_id, false);
    if (hv_failed(&v))
        return;
    int window =
        req->duplicate_window_days > 0 ? req->duplicate_window_days : CONTENT_DUP_WINDOW_DAYS;

    db_conn *db = handler_db(call);
    if (db == NULL)
        return;
    content_catalog *snap = catalog_for(call, db);
    if (snap == NULL)
        return;
    const catalog *cat = content_catalog_get(snap);
    textsim_index *hist = textsim_index_new();
    status st = ST_OK;
    if (ct != NULL && catalog_find(cat, CATALOG_CONTENT_TYPE, ct) == NULL) {
        rpc_call_add_violation(call, "content_type", "is not a content type of the catalog");
        rpc_call_fail(call, ST_INVALID, "content_type: unknown content type %s", ct);
        goto out;
    }
    if (req->profile_id[0] != '\0') {
        Herald__V1__Profile *prof = NULL;
        char err[160];
        st = content_profile_resolve(db, handler_budget_ms(call), a, req->profile_id, &prof, err,
                                     sizeof err);
        if (st == ST_OK)
            st = content_history_load(db, handler_budget_ms(call), req->profile_id, window, hist);
        if (st == ST_NOT_FOUND) {
            rpc_call_fail(call, st, "profile %s not found", req->profile_id);
            goto out;
        }
        if (st != ST_OK) {
            handler_fail_db(call, db, st, "posts");
            goto out;
        }
    }
    gates_report rep;
    size_t len = strlen(req->text);
    platform_id pf = (platform_id)req->platform;
    content_gates_run(cat, req->text, len, pf, ct, NULL, NULL, hist,
                      req->exclude_post_id[0] ? req->exclude_post_id : NULL, threshold, window,
                      &rep);
    if (req->profile_id[0] == '\0') {
        gate_verdict *d = &rep.verdicts[GATE_DUPLICATE - 1];
        d->pass = true;
        d->has_score = false;
        (void)snprintf(d->reason, sizeof d->reason, "not checked: no profile_id given");
        rep.has_nearest = false;
        rep.pass = true;
        for (int k = 0; k < GATE_COUNT; k++)
            rep.pass = rep.pass && rep.verdicts[k].pass;
    }
    Herald__V1__ValidateTextResponse resp = HERALD__V1__VALIDATE_TEXT_RESPONSE__INIT;
    resp.passed = rep.pass;
    resp.gate_results = content_gate_results_msg(a, &rep, &resp.n_gate_results);
    resp.nearest_duplicate = content_dup_match_msg(a, &rep);
    resp.length = (int32_t)utf8_count(req->text, len);
    int lim = platform_max_chars(pf);
    const catalog_entry *e = ct != NULL ? catalog_find(cat, CATALOG_CONTENT_TYPE, ct) : NULL;
    resp.max_length = e != NULL && e->max_chars > 0 && e->max_chars < lim ? e->max_chars : lim;
    if (resp.gate_results == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        goto out;
    }
    done(&resp, call);
out:
    textsim_index_free(hist);
    content_catalog_release(snap);
}

/* ================================================================ generation jobs */

typedef enum { GEN_DRAFT, GEN_ADAPT } gen_kind;

/* One GenerateDraft / AdaptForPlatform in progress. Owned by its references:
 * on the LLM path the detach's on_done, the completion and the starter hold
 * one each; on the built-in path the handler alone. */
typedef struct gen_job {
    atomic_int refs;
    rpc_call *call;
    gen_kind kind;
    Herald__V1__GenerateDraftResponse_Closure done_draft;
    Herald__V1__AdaptForPlatformResponse_Closure done_adapt;
    const ProtobufCMessage *req; /* the call's request (valid while the call is) */
    const char *request_id;
    content_catalog *snap;     /* a reference */
    Herald__V1__Profile *prof; /* call arena */
    content_plan plan;
    platform_id platform;
    uint64_t seed;
    textsim_index *hist;
    const char *exclude_id;     /* call arena */
    const char *fact_key;       /* owned by snap */
    const char *source_post_id; /* call arena */
    bool explicit_llm;
    llm_client *llm;
    _Atomic uint64_t llm_job;
    atomic_bool cancelled;
    atomic_bool llm_finished;
    /* the LLM's outcome, written by the callback before the hand-off */
    status llm_st;
    char *llm_text;
    size_t llm_len;
    char llm_model[201];
    char llm_reason[300];
    char llm_code[48];
    int64_t retry_delay_ms;
    int64_t llm_ms;
    /* the text being stored (gen_store_body) */
    const char *text;
    size_t len;
    const char *provider;
    const char *model;
    uint64_t text_seed;
    const gates_report *gates;
    Herald__V1__ProviderAttempt *attempts[2];
    size_t n_attempts;
    bool fallback;
} gen_job;

static void gen_unref(gen_job *j)
{
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    content_plan_fini(&j->plan);
    textsim_index_free(j->hist);
    content_catalog_release(j->snap);
    free(j->llm_text);
    free(j);
}

static const ProtobufCMessageDescriptor *gen_reply_desc(const gen_job *j)
{
    return j->kind == GEN_DRAFT ? &herald__v1__generate_draft_response__descriptor
                                : &herald__v1__adapt_for_platform_response__descriptor;
}

static void gen_done(gen_job *j, const ProtobufCMessage *reply)
{
    if (j->kind == GEN_DRAFT)
        j->done_draft((const Herald__V1__GenerateDraftResponse *)reply, j->call);
    else
        j->done_adapt((const Herald__V1__AdaptForPlatformResponse *)reply, j->call);
}

static void gen_attempt(gen_job *j, Herald__V1__Provider p, bool accepted, const char *reason,
                        int64_t ms)
{
    if (j->n_attempts < 2)
        j->attempts[j->n_attempts++] =
            attempt_new(rpc_call_arena(j->call), p, accepted, reason, ms);
}

static pregen_draft_in gen_input(gen_job *j)
{
    pregen_draft_in in = {
        .cat = content_catalog_get(j->snap),
        .profile = j->prof,
        .plan = &j->plan,
        .platform = j->platform,
        .seed = j->seed,
        .history = j->hist,
        .exclude_id = j->exclude_id,
        .fact_key = j->fact_key,
        .kind = j->kind == GEN_ADAPT ? "adaptation" : "original",
        .source_post_id = j->source_post_id,
    };
    return in;
}

/* Stores j's text (inside handler_mutate's transaction) and builds the
 * reply. */
static status gen_store_body(handler_tx *tx, ProtobufCMessage **reply)
{
    gen_job *j = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    content_new_post np = {
        .profile_id = j->prof->profile_id,
        .state = pregen_initial_state(j->prof),
        .platform = j->platform,
        .kind = j->kind == GEN_ADAPT ? "adaptation" : "original",
        .text = j->text,
        .len = j->len,
        .content_type = j->plan.content_type,
        .voice_style = j->plan.voice_style,
        .topic = j->plan.topic,
        .provider = j->provider,
        .llm_model = j->model,
        .seed = j->text_seed,
        .decision = j->plan.automatic ? &j->plan.decision : NULL,
        .decision_id = j->plan.decision_id,
        .source_post_id = j->source_post_id,
        .gates = j->gates,
        .dup_threshold = CONTENT_DUP_THRESHOLD,
    };
    char id[CONTENT_ID_MAX];
    status st = content_post_insert_tx(tx->db, &np, id);
    if (st == ST_CONFLICT)
        return handler_tx_reject(tx, st,
                                 "a post with the same text was stored concurrently; retry");
    if (st != ST_OK)
        return st;
    Herald__V1__Post *p = NULL;
    st = content_post_get(tx->db, 0, a, id, false, &p);
    if (st != ST_OK)
        return st;
    Herald__V1__ProviderAttempt **att = arena_alloc(a, 2 * sizeof *att);
    if (att == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    size_t n = 0;
    for (size_t i = 0; i < j->n_attempts; i++)
        if (j->attempts[i] != NULL)
            att[n++] = j->attempts[i];
    if (j->kind == GEN_DRAFT) {
        Herald__V1__GenerateDraftResponse *r = arena_alloc(a, sizeof *r);
        if (r == NULL)
            return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
        herald__v1__generate_draft_response__init(r);
        r->post = p;
        r->attempts = att;
        r->n_attempts = n;
        r->fallback = j->fallback;
        *reply = &r->base;
    } else {
        Herald__V1__AdaptForPlatformResponse *r = arena_alloc(a, sizeof *r);
        if (r == NULL)
            return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
        herald__v1__adapt_for_platform_response__init(r);
        r->post = p;
        r->attempts = att;
        r->n_attempts = n;
        r->fallback = j->fallback;
        *reply = &r->base;
    }
    return ST_OK;
}

/* The built-in path, whole, inside the mutation's transaction. */
static status gen_builtin_body(handler_tx *tx, ProtobufCMessage **reply)
{
    gen_job *j = tx->ctx;
    char err[600];
    status st =
        content_history_load(tx->db, 0, j->prof->profile_id, CONTENT_DUP_WINDOW_DAYS, j->hist);
    if (st != ST_OK)
        return st;
    pregen_draft_in in = gen_input(j);
    pregen_text t;
    st = pregen_compose_builtin(tx->db, 0, &in, &t, err, sizeof err);
    if (st == ST_OK) {
        gen_attempt(j, HERALD__V1__PROVIDER__PROVIDER_BUILTIN, true, "", t.duration_ms);
        j->text = t.text;
        j->len = t.len;
        j->provider = "builtin";
        j->model = "";
        j->text_seed = t.seed;
        j->gates = &t.gates;
        st = gen_store_body(tx, reply);
    } else if (st == ST_FAILED_PRECONDITION) {
        rpc_call_set_error_info(tx->call, "GATE_FAILED", HANDLER_ERROR_DOMAIN);
        st = handler_tx_reject(tx, st, "no provider produced a text that passes every gate: %s",
                               err);
    }
    pregen_text_fini(&t);
    j->text = NULL;
    j->gates = NULL;
    return st;
}

/* Stores the accepted text with handler_mutate_on and completes the call. */
static void gen_store_and_reply(gen_job *j, db_conn *db)
{
    handler_mutation m = { .request = j->req,
                           .request_id = j->request_id,
                           .reply_desc = gen_reply_desc(j),
                           .body = gen_store_body,
                           .ctx = j,
                           .what = "post" };
    handler_result r;
    if (handler_mutate_on(j->call, db, &m, &r))
        gen_done(j, r.reply);
}

/* An explicit PROVIDER_LLM that failed upstream: its own code. */
static void gen_fail_llm(gen_job *j)
{
    rpc_call *call = j->call;
    if (j->llm_code[0] != '\0')
        rpc_call_set_error_info(call, j->llm_code, HANDLER_ERROR_DOMAIN);
    switch (j->llm_st) {
    case ST_UNAVAILABLE:
        if (j->retry_delay_ms >= 0)
            rpc_call_set_retry_delay_ms(call, j->retry_delay_ms);
        rpc_call_fail(call, ST_UNAVAILABLE, "LLM unavailable: %s", j->llm_reason);
        break;
    case ST_TIMEOUT:
        rpc_call_fail(call, ST_TIMEOUT, "LLM timed out: %s", j->llm_reason);
        break;
    default:
        rpc_call_fail(call, j->llm_st == ST_OK ? ST_INTERNAL : j->llm_st, "LLM failed: %s",
                      j->llm_reason);
        break;
    }
}

/* Gates the LLM's text, falls back when AUTO, stores, completes the call.
 * Runs on a completion thread (or, when the LLM call could not even start,
 * on the worker) with that thread's own connection. Drops the completion's
 * reference. */
static void gen_finish(db_conn *db, gen_job *j)
{
    const catalog *cat = content_catalog_get(j->snap);
    int64_t budget = handler_budget_ms(j->call);
    char why[700] = "";
    gates_report rep;

    if (atomic_load(&j->cancelled) || rpc_call_cancelled(j->call)) {
        /* the client left (or the server is stopping): store nothing */
        rpc_call_fail(j->call, ST_CANCELLED, "call cancelled while the LLM was writing");
        goto out;
    }
    if (j->llm_st == ST_OK) {
        content_gates_run(cat, j->llm_text, j->llm_len, j->platform, j->plan.content_type,
                          j->plan.voice_style, j->plan.topic, j->hist, j->exclude_id,
                          CONTENT_DUP_THRESHOLD, CONTENT_DUP_WINDOW_DAYS, &rep);
        bool ok = rep.pass;
        if (ok) {
            char hash[CONTENT_HASH_HEX], owner[CONTENT_ID_MAX] = "";
            status st =
                content_hash_hex(j->llm_text, j->llm_len, hash)
                    ? content_live_hash_owner(db, budget, j->prof->profile_id, hash, NULL, owner)
                    : ST_INVALID;
            if (st != ST_OK) {
                handler_fail_db(j->call, db, st, "post");
                goto out;
            }
            if (owner[0] != '\0') {
                ok = false;
                (void)snprintf(why, sizeof why,
                               "failed GATE_DUPLICATE (the same text is already live as post %s)",
                               owner);
            }
        } else {
            char names[600];
            content_gates_failed_names(&rep, names, sizeof names);
            (void)snprintf(why, sizeof why, "failed %s", names);
        }
        if (ok) {
            gen_attempt(j, HERALD__V1__PROVIDER__PROVIDER_LLM, true, "", j->llm_ms);
            j->text = j->llm_text;
            j->len = j->llm_len;
            j->provider = "llm";
            j->model = j->llm_model;
            j->text_seed = j->seed;
            j->gates = &rep;
            gen_store_and_reply(j, db);
            goto out;
        }
        gen_attempt(j, HERALD__V1__PROVIDER__PROVIDER_LLM, false, why, j->llm_ms);
        if (j->explicit_llm) {
            rpc_call_set_error_info(j->call, "GATE_FAILED", HANDLER_ERROR_DOMAIN);
            rpc_call_fail(j->call, ST_FAILED_PRECONDITION,
                          "the LLM's text %s; PROVIDER_LLM does not fall back, nothing was stored",
                          why);
            goto out;
        }
    } else {
        (void)snprintf(why, sizeof why, "%s", j->llm_reason);
        gen_attempt(j, HERALD__V1__PROVIDER__PROVIDER_LLM, false, why, j->llm_ms);
        if (j->explicit_llm) {
            gen_fail_llm(j);
            goto out;
        }
    }

    /* AUTO: the built-in generator takes over */
    pregen_draft_in in = gen_input(j);
    pregen_text t;
    char err[600];
    status st = pregen_compose_builtin(db, budget, &in, &t, err, sizeof err);
    if (st == ST_OK) {
        gen_attempt(j, HERALD__V1__PROVIDER__PROVIDER_BUILTIN, true, "", t.duration_ms);
        j->fallback = true;
        j->text = t.text;
        j->len = t.len;
        j->provider = "builtin";
        j->model = "";
        j->text_seed = t.seed;
        j->gates = &t.gates;
        gen_store_and_reply(j, db);
    } else if (st == ST_FAILED_PRECONDITION) {
        rpc_call_set_error_info(j->call, "GATE_FAILED", HANDLER_ERROR_DOMAIN);
        rpc_call_fail(j->call, ST_FAILED_PRECONDITION,
                      "no provider produced a text that passes every gate: LLM %s; built-in: %s",
                      why, err);
    } else {
        handler_fail_db(j->call, db, st, "post");
    }
    pregen_text_fini(&t);
out:
    j->text = NULL;
    j->gates = NULL;
    gen_unref(j);
}

static void gen_finish_task(db_conn *db, void *arg)
{
    gen_finish(db, arg);
}

/* llm_done_fn: on the http thread. Copies the result and hands the job to
 * a completion thread; never blocks, never touches a database. */
static void gen_llm_done(const llm_result *r, void *user)
{
    gen_job *j = user;
    j->llm_st = r->st;
    if (r->st == ST_OK && r->text != NULL) {
        j->llm_text = xstrndup(r->text, r->len);
        j->llm_len = r->len;
    }
    (void)snprintf(j->llm_model, sizeof j->llm_model, "%s", r->model != NULL ? r->model : "");
    (void)snprintf(j->llm_reason, sizeof j->llm_reason, "%s", r->reason != NULL ? r->reason : "");
    (void)snprintf(j->llm_code, sizeof j->llm_code, "%s",
                   r->error_code != NULL ? r->error_code : "");
    j->retry_delay_ms = r->retry_delay_ms;
    j->llm_ms = r->duration_ms;
    atomic_store(&j->llm_finished, true);
    if (pregen_submit(gen_finish_task, j) != ST_OK) {
        /* shutting down: no thread may store it */
        rpc_call_set_retry_delay_ms(j->call, 1000);
        rpc_call_fail(j->call, ST_UNAVAILABLE, "server shutting down; retry");
        gen_unref(j);
    }
}

/* rpc_done_fn of the detached call. */
static void gen_on_done(rpc_call *call, bool cancelled, void *user)
{
    gen_job *j = user;
    (void)call;
    if (cancelled) {
        atomic_store(&j->cancelled, true);
        uint64_t id = atomic_load(&j->llm_job);
        if (id != 0 && !atomic_load(&j->llm_finished))
            llm_cancel(j->llm, id);
    }
    gen_unref(j);
}

/* On the worker: loads the history, detaches the call and starts the LLM.
 * Consumes the handler's reference. */
static void gen_start_llm(gen_job *j, db_conn *db)
{
    rpc_call *call = j->call;
    const catalog *cat = content_catalog_get(j->snap);
    status st = content_history_load(db, handler_budget_ms(call), j->prof->profile_id,
                                     CONTENT_DUP_WINDOW_DAYS, j->hist);
    if (st != ST_OK) {
        handler_fail_db(call, db, st, "posts");
        gen_unref(j);
        return;
    }
    size_t n_facts = 0;
    const catalog_fact *facts = catalog_topic_facts(cat, j->plan.topic, &n_facts);
    int min_c = 0, max_c = 0;
    if (generator_length_bounds(cat, j->plan.content_type, j->plan.voice_style, j->plan.topic,
                                j->platform, &min_c, &max_c) != ST_OK)
        min_c = max_c = 0;
    llm_request lr = {
        .cat = cat,
        .content_type = catalog_find(cat, CATALOG_CONTENT_TYPE, j->plan.content_type),
        .voice_style = catalog_find(cat, CATALOG_VOICE_STYLE, j->plan.voice_style),
        .topic = catalog_find(cat, CATALOG_TOPIC, j->plan.topic),
        .facts = facts,
        .n_facts = n_facts,
        .fact_key = j->fact_key,
        .platform = j->platform,
        .min_chars = min_c,
        .max_chars = max_c,
        .request_id = rpc_call_request_id(call),
        .traceparent = rpc_call_metadata(call, "traceparent", NULL),
    };
    int64_t remaining = rpc_call_remaining_ms(call);
    int64_t reserve = j->explicit_llm ? LLM_RESERVE_MS : AUTO_RESERVE_MS;
    if (remaining < 3 * reserve)
        reserve = remaining / 3;
    int64_t deadline = now_mono_ms() + remaining - reserve;

    atomic_store(&j->refs, 3); /* on_done, the completion, this function */
    rpc_call_detach(call, gen_on_done, j);
    uint64_t id = 0;
    char err[200] = "";
    st = llm_generate(j->llm, &lr, deadline, gen_llm_done, j, &id, err, sizeof err);
    if (st != ST_OK) {
        /* never started: finish here, on this worker, with its connection */
        j->llm_st = st;
        (void)snprintf(j->llm_reason, sizeof j->llm_reason, "LLM call not started: %s", err);
        (void)snprintf(j->llm_code, sizeof j->llm_code, "%s",
                       st == ST_TIMEOUT ? "LLM_TIMEOUT" : "LLM_UNAVAILABLE");
        j->retry_delay_ms = -1;
        atomic_store(&j->llm_finished, true);
        gen_finish(db, j);
    } else {
        atomic_store(&j->llm_job, id);
        if (atomic_load(&j->cancelled) && !atomic_load(&j->llm_finished))
            llm_cancel(j->llm, id);
    }
    gen_unref(j);
}

static gen_job *gen_new(rpc_call *call, gen_kind kind, const ProtobufCMessage *req,
                        const char *request_id)
{
    gen_job *j = xcalloc(1, sizeof *j);
    atomic_init(&j->refs, 1);
    atomic_init(&j->llm_job, 0);
    atomic_init(&j->cancelled, false);
    atomic_init(&j->llm_finished, false);
    j->call = call;
    j->kind = kind;
    j->req = req;
    j->request_id = request_id;
    j->hist = textsim_index_new();
    j->retry_delay_ms = -1;
    return j;
}

/* The provider a request resolves to. false: the call ended. */
static bool resolve_provider(rpc_call *call, int requested, const Herald__V1__Profile *prof,
                             bool llm_allowed, bool *use_llm, bool *explicit_llm)
{
    int p = requested != 0 ? requested : (int)prof->default_provider;
    if (p == 0)
        p = HERALD__V1__PROVIDER__PROVIDER_AUTO;
    llm_client *llm = pregen_llm();
    *explicit_llm = p == HERALD__V1__PROVIDER__PROVIDER_LLM;
    *use_llm =
        llm_allowed && llm != NULL &&
        (p == HERALD__V1__PROVIDER__PROVIDER_LLM || p == HERALD__V1__PROVIDER__PROVIDER_AUTO);
    if (*explicit_llm && !llm_allowed) {
        rpc_call_fail(call, ST_FAILED_PRECONDITION,
                      "%s writes with the built-in generator only; use PROVIDER_AUTO or "
                      "PROVIDER_BUILTIN",
                      rpc_call_method(call));
        return false;
    }
    if (*explicit_llm && llm == NULL) {
        rpc_call_set_error_info(call, "LLM_NOT_CONFIGURED", HANDLER_ERROR_DOMAIN);
        rpc_call_fail(call, ST_FAILED_PRECONDITION,
                      "PROVIDER_LLM was requested but no LLM is configured (llm.url)");
        return false;
    }
    return true;
}

/* Runs a prepared job down the built-in or the LLM path; consumes it. */
static void gen_run(gen_job *j, db_conn *db, bool use_llm)
{
    if (use_llm) {
        j->llm = pregen_llm();
        gen_start_llm(j, db);
        return;
    }
    handler_mutation m = { .request = j->req,
                           .request_id = j->request_id,
                           .reply_desc = gen_reply_desc(j),
                           .body = gen_builtin_body,
                           .ctx = j,
                           .what = "post" };
    handler_result r;
    if (handler_mutate(j->call, &m, &r))
        gen_done(j, r.reply);
    gen_unref(j);
}

/* ================================================================ GenerateDraft */

static void content_generate_draft(Herald__V1__ContentService_Service *svc,
                                   const Herald__V1__GenerateDraftRequest *req,
                                   Herald__V1__GenerateDraftResponse_Closure done, void *data)
{
    rpc_call *call = data;
    const char *ct = NULL, *vs = NULL, *tp = NULL;
    int64_t target_ms = 0;
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    if (req->profile_id[0] != '\0')
        hv_profile_id(&v, "profile_id", req->profile_id);
    hv_enum(&v, "platform", &herald__v1__platform__descriptor, (int)req->platform, false);
    opt_key(&v, "content_type", req->content_type, &ct);
    opt_key(&v, "voice_style", req->voice_style, &vs);
    opt_key(&v, "topic", req->topic, &tp);
    hv_enum(&v, "provider", &herald__v1__provider__descriptor, (int)req->provider, false);
    hv_timestamp(&v, "target_time", req->target_time, false, &target_ms);
    if (req->decision_id[0] != '\0') {
        hv_uuid(&v, "decision_id", req->decision_id, true);
        if (req->content_type[0] || req->voice_style[0] || req->topic[0])
            hv_add(&v, "decision_id",
                   "content_type, voice_style and topic must be empty with decision_id");
    }
    if (hv_failed(&v))
        return;

    db_conn *db = handler_db(call);
    if (db == NULL)
        return;
    const ProtobufCMessage *replay = NULL;
    if (idem_replayed(call, db, req->request_id, &req->base,
                      &herald__v1__generate_draft_response__descriptor, &replay)) {
        if (replay != NULL)
            done((const Herald__V1__GenerateDraftResponse *)replay, call);
        return;
    }
    Herald__V1__Profile *prof = NULL;
    if (!profile_for_generation(call, db, req->profile_id, "profile_id", &prof))
        return;
    bool use_llm = false, explicit_llm = false;
    if (!resolve_provider(call, (int)req->provider, prof, true, &use_llm, &explicit_llm))
        return;
    content_catalog *snap = catalog_for(call, db);
    if (snap == NULL)
        return;

    gen_job *j = gen_new(call, GEN_DRAFT, &req->base, req->request_id);
    j->done_draft = done;
    j->snap = snap;
    j->prof = prof;
    j->explicit_llm = explicit_llm;
    j->platform = req->platform != 0 ? (platform_id)req->platform : (platform_id)prof->platform;
    j->seed = SVC_HAS(req, seed) ? req->seed : pregen_seed();
    char err[300];
    status st;
    if (req->decision_id[0] != '\0') {
        st = content_plan_from_decision(db, handler_budget_ms(call), req->decision_id,
                                        prof->profile_id, &j->plan);
        if (st == ST_NOT_FOUND)
            (void)snprintf(err, sizeof err, "decision %s not found for profile %s",
                           req->decision_id, prof->profile_id);
        const catalog *cat = content_catalog_get(snap);
        const catalog_entry *e1 = catalog_find(cat, CATALOG_CONTENT_TYPE, j->plan.content_type);
        const catalog_entry *e2 = catalog_find(cat, CATALOG_VOICE_STYLE, j->plan.voice_style);
        const catalog_entry *e3 = catalog_find(cat, CATALOG_TOPIC, j->plan.topic);
        if (st == ST_OK && (e1 == NULL || e2 == NULL || e3 == NULL || !e1->enabled ||
                            !e2->enabled || !e3->enabled)) {
            st = ST_FAILED_PRECONDITION;
            (void)snprintf(err, sizeof err,
                           "decision %s chose %s/%s/%s, which is no longer enabled in the catalog",
                           req->decision_id, j->plan.content_type, j->plan.voice_style,
                           j->plan.topic);
        }
    } else {
        content_plan_req rq = {
            .cat = content_catalog_get(snap),
            .profile = prof,
            .content_type = ct,
            .voice_style = vs,
            .topic = tp,
            .builtin_only = !explicit_llm,
            .now_ms = now_real_ms(),
            .target_ms = target_ms,
            .seed = j->seed,
        };
        st = content_plan_choose(db, handler_budget_ms(call), &rq, &j->plan, err, sizeof err);
    }
    if (st != ST_OK) {
        fail_with(call, db, st, err, "catalog");
        gen_unref(j);
        return;
    }
    gen_run(j, db, use_llm);
}

/* ================================================================ AdaptForPlatform */

/* The enabled fact of topic most similar to text (the one a post was
 * written from, as near as the text shows); NULL when none. */
static const catalog_fact *closest_fact(const catalog *cat, const char *topic, const char *text)
{
    size_t n = 0;
    const catalog_fact *f = catalog_topic_facts(cat, topic, &n);
    const catalog_fact *best = NULL;
    double best_s = -1;
    for (size_t i = 0; i < n; i++) {
        if (!f[i].enabled)
            continue;
        double s = textsim_compare(f[i].fact, strlen(f[i].fact), text, strlen(text));
        if (s > best_s) {
            best_s = s;
            best = &f[i];
        }
    }
    return best;
}

static void content_adapt_for_platform(Herald__V1__ContentService_Service *svc,
                                       const Herald__V1__AdaptForPlatformRequest *req,
                                       Herald__V1__AdaptForPlatformResponse_Closure done,
                                       void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    hv_uuid(&v, "post_id", req->post_id, true);
    hv_enum(&v, "platform", &herald__v1__platform__descriptor, (int)req->platform, true);
    hv_enum(&v, "provider", &herald__v1__provider__descriptor, (int)req->provider, false);
    if (hv_failed(&v))
        return;
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;
    const ProtobufCMessage *replay = NULL;
    if (idem_replayed(call, db, req->request_id, &req->base,
                      &herald__v1__adapt_for_platform_response__descriptor, &replay)) {
        if (replay != NULL)
            done((const Herald__V1__AdaptForPlatformResponse *)replay, call);
        return;
    }
    Herald__V1__Post *src = NULL;
    status st = content_post_get(db, handler_budget_ms(call), a, req->post_id, false, &src);
    if (st == ST_NOT_FOUND) {
        rpc_call_fail(call, st, "post %s not found", req->post_id);
        return;
    }
    if (st != ST_OK) {
        handler_fail_db(call, db, st, "post");
        return;
    }
    if (src->platform == req->platform) {
        rpc_call_add_violation(call, "platform", "must differ from the post's platform");
        rpc_call_fail(call, ST_INVALID, "platform: must differ from the post's platform");
        return;
    }
    if (src->state == HERALD__V1__POST_STATE__POST_STATE_REJECTED ||
        src->state == HERALD__V1__POST_STATE__POST_STATE_CANCELLED ||
        src->state == HERALD__V1__POST_STATE__POST_STATE_FAILED) {
        fail_post_state(call, src, "AdaptForPlatform", "a live post");
        return;
    }
    const Herald__V1__ArmChoice *arms = src->arms;
    if (src->kind == HERALD__V1__POST_KIND__POST_KIND_REPLY || arms == NULL ||
        arms->content_type[0] == '\0' || arms->voice_style[0] == '\0' || arms->topic[0] == '\0') {
        rpc_call_fail(call, ST_FAILED_PRECONDITION,
                      "post %s has no content type, voice style and topic to adapt (replies "
                      "cannot be adapted)",
                      src->post_id);
        return;
    }
    Herald__V1__Profile *prof = NULL;
    if (!profile_for_generation(call, db, src->profile_id, "post_id", &prof))
        return;
    bool use_llm = false, explicit_llm = false;
    if (!resolve_provider(call, (int)req->provider, prof, true, &use_llm, &explicit_llm))
        return;
    content_catalog *snap = catalog_for(call, db);
    if (snap == NULL)
        return;
    const catalog *cat = content_catalog_get(snap);
    const char *keys[3] = { arms->content_type, arms->voice_style, arms->topic };
    const catalog_kind kinds[3] = { CATALOG_CONTENT_TYPE, CATALOG_VOICE_STYLE, CATALOG_TOPIC };
    for (int k = 0; k < 3; k++) {
        const catalog_entry *e = catalog_find(cat, kinds[k], keys[k]);
        if (e == NULL || !e->enabled) {
            rpc_call_fail(call, ST_FAILED_PRECONDITION,
                          "post %s uses %s, which is not enabled in the catalog", src->post_id,
                          keys[k]);
            content_catalog_release(snap);
            return;
        }
    }
    const catalog_fact *fact = closest_fact(cat, arms->topic, src->text);

    gen_job *j = gen_new(call, GEN_ADAPT, &req->base, req->request_id);
    j->done_adapt = done;
    j->snap = snap;
    j->prof = prof;
    j->explicit_llm = explicit_llm;
    j->platform = (platform_id)req->platform;
    j->seed = SVC_HAS(req, seed) ? req->seed : pregen_seed();
    j->exclude_id = src->post_id;
    j->source_post_id = src->post_id;
    j->fact_key = fact != NULL ? fact->key : NULL;
    (void)snprintf(j->plan.content_type, CONTENT_KEY_MAX, "%s", arms->content_type);
    (void)snprintf(j->plan.voice_style, CONTENT_KEY_MAX, "%s", arms->voice_style);
    (void)snprintf(j->plan.topic, CONTENT_KEY_MAX, "%s", arms->topic);
    gen_run(j, db, use_llm);
}

/* ================================================================ GenerateBatch */

/* GenerateBatch with schedule = true places each draft as SchedulePost's
 * "next best" would (sched_slots.h, the same code): inside the batch's one
 * transaction the profile row is locked first (FOR NO KEY UPDATE, as
 * SchedulePost and SetPostingPolicy lock it, so no other scheduling writer
 * of the profile interleaves), then for each item
 *   1. the next best slot from after_time on, over the profile's policy
 *      context (its published, in-flight and scheduled posts plus the
 *      slots this batch took) and slot model: it keeps the gap, quotas,
 *      quiet hours and any cooldown with everything counted;
 *   2. the draft, with that slot as its target time (its hour-of-week arm);
 *   3. the timing decision, lease.h's SCHEDULE check and the write; the
 *      slot joins the context.
 * An item whose draft fails leaves its slot free for the next one; when the
 * policy leaves no slot within the horizon, that item and the rest are
 * failures (no draft is written for them). Scheduling needs APPROVED posts:
 * a profile that does not auto-approve is FAILED_PRECONDITION, so review is
 * never bypassed. The slot seed comes from the request (without its
 * request_id), so the same request draws the same slots. */
typedef struct batch_ctx {
    const Herald__V1__GenerateBatchRequest *req;
    Herald__V1__Profile *prof;
    content_catalog *snap;
    int count;
    platform_id platform;
    int64_t target_ms;
    bool schedule;
    uint64_t slot_seed;
    double half_life_days; /* the learner's, for the slot model; < 0 = default */
} batch_ctx;

/* The scheduling state of one batch (schedule = true). */
typedef struct batch_sched {
    sched_slots_ctx ctx;
    sched_slots_inputs in;
} batch_sched;

/* Locks the profile and loads what choosing slots needs. */
static status batch_sched_load(handler_tx *tx, const batch_ctx *c, batch_sched *bs)
{
    arena *a = rpc_call_arena(tx->call);
    status st = sched_slots_ctx_load_tx(tx->db, a, c->prof->profile_id, true, NULL, c->target_ms,
                                        false, &bs->ctx);
    if (st == ST_NOT_FOUND)
        return handler_tx_reject(tx, st, "profile %s not found", c->prof->profile_id);
    if (st != ST_OK)
        return st;
    if (bs->ctx.prof.paused) { /* paused since the handler looked */
        rpc_call_set_error_info(tx->call, "PROFILE_PAUSED", HANDLER_ERROR_DOMAIN);
        return handler_tx_reject(tx, ST_FAILED_PRECONDITION,
                                 "profile %s is paused: a paused profile gets no generation",
                                 c->prof->profile_id);
    }
    return sched_slots_inputs_load_tx(tx->db, a, &bs->ctx.prof, c->half_life_days, &bs->in);
}

/* Schedules the new post post_id onto slot s (chosen by
 * sched_slots_next_best with propensity p) as SchedulePost does. */
static status batch_schedule_one(handler_tx *tx, const batch_ctx *c, batch_sched *bs,
                                 const slots_slot *s, double p, const char *post_id)
{
    arena *a = rpc_call_arena(tx->call);
    Herald__V1__Post *post = NULL;
    sched_post_meta meta;
    const char *decision_id = NULL, *why = "";

    /* next best already kept every rule: a broken one is a bug here */
    policy_rule rule = policy_check(&bs->ctx.ctx, s->start_s, NULL);
    if (rule != POLICY_RULE_OK)
        return handler_tx_reject(tx, ST_INTERNAL, "slot %lld breaks %s", (long long)s->start_s,
                                 policy_rule_name(rule));
    status st = sched_post_get_tx(tx->db, a, post_id, true, &post, &meta);
    if (st != ST_OK)
        return st;
    int64_t schedule_ms = s->start_s * 1000;
    if (sched_slots_may_schedule(&meta, bs->ctx.prof.now_ms, schedule_ms, &why) != ST_OK)
        return handler_tx_reject(tx, ST_INTERNAL, "post %s cannot be scheduled: %s", post_id, why);
    st = sched_slots_decision_tx(tx->db, a, &bs->ctx, s, c->slot_seed, p, &decision_id);
    if (st == ST_EXHAUSTED)
        return handler_tx_reject(tx, st, "reply too large");
    if (st == ST_OK)
        st = sched_post_schedule_tx(tx->db, post_id, schedule_ms, s->hour_of_week, decision_id);
    if (st == ST_OK)
        sched_slots_ctx_add(&bs->ctx, a, s->start_s);
    return st;
}

static int post_by_schedule_time(const void *x, const void *y)
{
    const Herald__V1__Post *p = *(Herald__V1__Post *const *)x;
    const Herald__V1__Post *q = *(Herald__V1__Post *const *)y;
    int64_t a = handler_ts_ms(p->schedule_time), b = handler_ts_ms(q->schedule_time);
    return a < b ? -1 : a > b;
}

static bool batch_fail_item(arena *a, Herald__V1__GenerateBatchResponse *r, int index,
                            const char *reason)
{
    Herald__V1__GenerateBatchFailure *f = arena_alloc(a, sizeof *f);
    if (f == NULL)
        return false;
    herald__v1__generate_batch_failure__init(f);
    f->index = index;
    f->reason = arena_strdup(a, reason);
    if (f->reason == NULL)
        f->reason = (char *)"";
    r->failures[r->n_failures++] = f;
    return true;
}

static status batch_body(handler_tx *tx, ProtobufCMessage **reply)
{
    batch_ctx *c = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    textsim_index *hist = NULL;
    batch_sched *bs = NULL;
    Herald__V1__GenerateBatchResponse *r = arena_alloc(a, sizeof *r);
    status st = ST_OK;
    char err[600];

    if (r == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    herald__v1__generate_batch_response__init(r);
    r->posts = arena_alloc(a, (size_t)c->count * sizeof *r->posts);
    r->failures = arena_alloc(a, (size_t)c->count * sizeof *r->failures);
    if (r->posts == NULL || r->failures == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    if (c->schedule) {
        bs = arena_alloc(a, sizeof *bs);
        if (bs == NULL)
            return handler_tx_reject(tx, ST_EXHAUSTED, "request too large");
        st = batch_sched_load(tx, c, bs); /* first: the profile lock before any write */
        if (st != ST_OK)
            return st;
    }
    hist = textsim_index_new();
    st = content_history_load(tx->db, 0, c->prof->profile_id, CONTENT_DUP_WINDOW_DAYS, hist);
    for (int i = 0; st == ST_OK && i < c->count; i++) {
        slots_slot slot;
        double propensity = 0;
        int64_t target_ms = c->target_ms;
        if (bs != NULL) {
            status sst = sched_slots_next_best(&bs->ctx, &bs->in, c->target_ms, c->slot_seed, &slot,
                                               &propensity);
            if (sst == ST_NOT_FOUND) {
                (void)snprintf(err, sizeof err,
                               "no slot within %d days keeps the posting policy: not generated",
                               SLOTS_DEFAULT_HORIZON_DAYS);
                for (int k = i; k < c->count; k++)
                    if (!batch_fail_item(a, r, k, err))
                        st = handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
                break;
            }
            if (sst != ST_OK) {
                st = handler_tx_reject(tx, ST_INTERNAL, "the slot model could not be evaluated");
                break;
            }
            target_ms = slot.start_s * 1000;
        }
        content_plan plan;
        uint64_t seed = pregen_seed();
        content_plan_req rq = {
            .cat = content_catalog_get(c->snap),
            .profile = c->prof,
            .builtin_only = true,
            .now_ms = now_real_ms(),
            .target_ms = target_ms,
            .seed = seed,
        };
        char id[CONTENT_ID_MAX] = "";
        status ist = content_plan_choose(tx->db, 0, &rq, &plan, err, sizeof err);
        if (ist == ST_OK) {
            pregen_draft_in in = { .cat = content_catalog_get(c->snap),
                                   .profile = c->prof,
                                   .plan = &plan,
                                   .platform = c->platform,
                                   .seed = seed,
                                   .history = hist };
            ist = pregen_draft_tx(tx->db, &in, id, NULL, err, sizeof err);
        }
        content_plan_fini(&plan);
        if (ist == ST_OK) {
            if (bs != NULL)
                st = batch_schedule_one(tx, c, bs, &slot, propensity, id);
            Herald__V1__Post *p = NULL;
            if (st == ST_OK)
                st = content_post_get(tx->db, 0, a, id, false, &p);
            if (st == ST_OK)
                r->posts[r->n_posts++] = p;
        } else if (ist == ST_INVALID || ist == ST_FAILED_PRECONDITION) {
            if (!batch_fail_item(a, r, i, err))
                st = handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
        } else if (ist == ST_CONFLICT) {
            st = handler_tx_reject(tx, ist,
                                   "a post with the same text was stored concurrently; retry");
        } else {
            st = ist; /* the store failed: the transaction is gone */
        }
    }
    textsim_index_free(hist);
    if (st == ST_OK && arena_exhausted(a))
        st = handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    if (st != ST_OK)
        return st;
    if (bs != NULL && r->n_posts > 1) /* "in slot order" */
        qsort(r->posts, r->n_posts, sizeof *r->posts, post_by_schedule_time);
    *reply = &r->base;
    return ST_OK;
}

static void content_generate_batch(Herald__V1__ContentService_Service *svc,
                                   const Herald__V1__GenerateBatchRequest *req,
                                   Herald__V1__GenerateBatchResponse_Closure done, void *data)
{
    rpc_call *call = data;
    int64_t after_ms = 0;
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    hv_profile_id(&v, "profile_id", req->profile_id);
    hv_int(&v, "count", req->count, 0, BATCH_MAX);
    hv_enum(&v, "platform", &herald__v1__platform__descriptor, (int)req->platform, false);
    hv_enum(&v, "provider", &herald__v1__provider__descriptor, (int)req->provider, false);
    hv_timestamp(&v, "after_time", req->after_time, false, &after_ms);
    if (hv_failed(&v))
        return;
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;
    Herald__V1__Profile *prof = NULL;
    if (!profile_for_generation(call, db, req->profile_id, "profile_id", &prof))
        return;
    bool use_llm = false, explicit_llm = false;
    if (!resolve_provider(call, (int)req->provider, prof, false, &use_llm, &explicit_llm))
        return;
    if (req->schedule && !prof->auto_approve) {
        rpc_call_set_error_info(call, "PROFILE_NOT_AUTO_APPROVE", HANDLER_ERROR_DOMAIN);
        rpc_call_fail(call, ST_FAILED_PRECONDITION,
                      "profile %s does not auto-approve: its drafts need review before they are "
                      "scheduled (ApprovePost, then SchedulePost), or set auto_approve",
                      prof->profile_id);
        return;
    }
    int count = req->count > 0 ? req->count : prof->draft_buffer_size;
    if (count <= 0) {
        rpc_call_add_violation(call, "count",
                               "is 0 and the profile's draft_buffer_size is 0: say how many");
        rpc_call_fail(call, ST_INVALID, "count: is 0 and the profile has no draft_buffer_size");
        return;
    }
    if (count > BATCH_MAX)
        count = BATCH_MAX;
    batch_ctx c = {
        .req = req,
        .prof = prof,
        .count = count,
        .platform = req->platform != 0 ? (platform_id)req->platform : (platform_id)prof->platform,
        .target_ms = after_ms,
        .schedule = req->schedule,
        .half_life_days = -1,
    };
    if (req->schedule) {
        /* the slot draw's seed comes from the request without its
         * request_id: the same request always draws the same slots */
        Herald__V1__GenerateBatchRequest key = *req;
        key.request_id = (char *)"";
        size_t len = protobuf_c_message_get_packed_size(&key.base);
        uint8_t *bytes = xmalloc(len + 1), h[32];
        (void)protobuf_c_message_pack(&key.base, bytes);
        db_sha256(bytes, len, h);
        free(bytes);
        memcpy(&c.slot_seed, h, sizeof c.slot_seed);
        const worker *w = handler_worker(call);
        if (w != NULL && w->cfg != NULL)
            c.half_life_days = w->cfg->learning_half_life_days;
    }
    c.snap = catalog_for(call, db);
    if (c.snap == NULL)
        return;
    handler_mutation m = { .request = &req->base,
                           .request_id = req->request_id,
                           .reply_desc = &herald__v1__generate_batch_response__descriptor,
                           .body = batch_body,
                           .ctx = &c,
                           .what = "post" };
    handler_result r;
    if (handler_mutate(call, &m, &r))
        done((const Herald__V1__GenerateBatchResponse *)r.reply, call);
    content_catalog_release(c.snap);
}

/* ================================================================ GenerateReply */

/* clang-format off */
static const struct {
    const char *style;
    const char *open[3]; /* %s: the topic's name in lower case */
} reply_openers[] = {
    { "research_enthusiast", { "Lovely %s thread. One study worth knowing:",
                               "This is what the %s research shows:",
                               "For anyone curious about %s, a well-run study found this:" } },
    { "truth_seeker", { "On %s, here is what was actually measured:",
                        "The %s data are clearer than the claims:",
                        "Checking this %s point against the evidence:" } },
    { "practical_optimizer", { "Useful %s data point:",
                               "The %s number that matters here:",
                               "Short version of the %s evidence:" } },
    { "curious_investigator", { "This %s question has a measured answer:",
                                "Good %s point. What did the studies find?",
                                "Following the %s evidence on this one:" } },
    { "evidence_based_advocate", { "Adding the evidence on %s:",
                                   "The wider %s evidence supports a careful reading:",
                                   "The %s research helps weigh this:" } },
    { "storyteller", { "There is a good %s study behind this:",
                       "This %s point has a backstory in the research:",
                       "A %s study tells this story well:" } },
};
/* clang-format on */

/* A reply in voice `style` to a post about topic (display name), built on
 * fact: an opener naming the topic (so it is about what the target said),
 * the fact with its source and year, and the fact's takeaway when it fits
 * in max_chars. variant picks the opener and the source's form. false when
 * nothing fits. */
static bool reply_compose(const char *style, const char *topic_name, const catalog_fact *f,
                          unsigned variant, int max_chars, strbuf *out)
{
    const char *const *open = NULL;
    for (size_t i = 0; i < sizeof reply_openers / sizeof reply_openers[0]; i++)
        if (strcmp(reply_openers[i].style, style) == 0)
            open = reply_openers[i].open;
    static const char *const plain[3] = { "On %s, one measured finding:",
                                          "A %s study worth adding:", "The %s evidence here:" };
    if (open == NULL)
        open = plain;
    char topic[96];
    size_t k = 0;
    for (; topic_name[k] != '\0' && k + 1 < sizeof topic; k++)
        topic[k] = (char)(topic_name[k] >= 'A' && topic_name[k] <= 'Z' ? topic_name[k] + 32
                                                                       : topic_name[k]);
    topic[k] = '\0';
    /* authors only: the part of the source before its first comma */
    const char *comma = strstr(f->source, ", ");
    int auth_len = comma != NULL ? (int)(comma - f->source) : (int)strlen(f->source);
    for (int form = 0; form < 3; form++) {
        strbuf_reset(out);
        const char *tmpl = open[variant % 3];
        const char *hole = strstr(tmpl, "%s"); /* the one place the topic goes */
        if (hole != NULL) {
            strbuf_append(out, tmpl, (size_t)(hole - tmpl));
            strbuf_puts(out, topic);
            strbuf_puts(out, hole + 2);
        } else {
            strbuf_puts(out, tmpl);
        }
        strbuf_printf(out, " %s", f->fact);
        if (form == 0 || (form == 1 && variant % 2 == 0))
            strbuf_printf(out, " (%s, %d)", f->source, f->year);
        else
            strbuf_printf(out, " (%.*s, %d)", auth_len, f->source, f->year);
        if (form == 0 && (variant / 3) % 2 == 0)
            strbuf_printf(out, " %s", f->takeaway);
        if ((int)utf8_count(out->data, out->len) <= max_chars)
            return true;
    }
    return false;
}

typedef struct reply_ctx {
    const Herald__V1__GenerateReplyRequest *req;
    Herald__V1__Profile *prof;
    content_catalog *snap;
    content_plan plan;
    const catalog_fact **facts; /* the topic's enabled facts, closest to the target first */
    size_t n_facts;
    platform_id platform;
    uint64_t seed;
    textsim_index *hist; /* the gates' report points into it until the post is stored */
} reply_ctx;

static status reply_body(handler_tx *tx, ProtobufCMessage **reply)
{
    reply_ctx *c = tx->ctx;
    arena *a = rpc_call_arena(tx->call);
    const catalog *cat = content_catalog_get(c->snap);
    content_opportunity opp;
    textsim_index *hist = c->hist;
    strbuf text = { 0 };
    char why[600] = "no fact of the topic fits the platform's limit";
    int64_t t0 = now_mono_ms();

    status st = content_opportunity_get(tx->db, 0, a, c->req->opportunity_id, true, &opp);
    if (st == ST_NOT_FOUND)
        return handler_tx_reject(tx, st, "reply opportunity %s not found", c->req->opportunity_id);
    if (st != ST_OK)
        return st;
    if (strcmp(opp.state, "open") != 0) {
        rpc_call_set_error_info(tx->call, "OPPORTUNITY_NOT_OPEN", HANDLER_ERROR_DOMAIN);
        return handler_tx_reject(tx, ST_FAILED_PRECONDITION,
                                 "reply opportunity %s is %s; GenerateReply needs an open one",
                                 opp.id, opp.state);
    }
    st = content_history_load(tx->db, 0, c->prof->profile_id, CONTENT_DUP_WINDOW_DAYS, hist);
    const catalog_entry *te = catalog_find(cat, CATALOG_TOPIC, c->plan.topic);
    int lim = platform_max_chars(c->platform);
    gates_report rep;
    bool found = false;
    uint64_t seed_used = c->seed;
    for (size_t fi = 0; st == ST_OK && !found && fi < c->n_facts; fi++) {
        for (unsigned t = 0; t < 6 && !found; t++) {
            unsigned variant = (unsigned)((c->seed + t) % 6);
            if (!reply_compose(c->plan.voice_style, te != NULL ? te->display_name : c->plan.topic,
                               c->facts[fi], variant, lim, &text))
                break;
            content_gates_run(cat, text.data, text.len, c->platform, NULL, c->plan.voice_style,
                              c->plan.topic, hist, NULL, CONTENT_DUP_THRESHOLD,
                              CONTENT_DUP_WINDOW_DAYS, &rep);
            if (!rep.pass) {
                char names[500];
                content_gates_failed_names(&rep, names, sizeof names);
                (void)snprintf(why, sizeof why, "built-in reply failed %s", names);
                continue;
            }
            char hash[CONTENT_HASH_HEX], owner[CONTENT_ID_MAX];
            if (!content_hash_hex(text.data, text.len, hash))
                continue;
            st = content_live_hash_owner(tx->db, 0, c->prof->profile_id, hash, NULL, owner);
            if (st == ST_OK && owner[0] != '\0') {
                (void)snprintf(why, sizeof why, "the same reply is already live as post %s", owner);
                continue;
            }
            found = st == ST_OK;
            seed_used = c->seed + t;
        }
    }
    if (st != ST_OK) {
        strbuf_fini(&text);
        return st;
    }
    if (!found) {
        strbuf_fini(&text);
        rpc_call_set_error_info(tx->call, "GATE_FAILED", HANDLER_ERROR_DOMAIN);
        return handler_tx_reject(tx, ST_FAILED_PRECONDITION,
                                 "no provider produced a reply that passes every gate: %s", why);
    }
    content_new_post np = {
        .profile_id = c->prof->profile_id,
        .state = pregen_initial_state(c->prof),
        .platform = c->platform,
        .kind = "reply",
        .text = text.data,
        .len = text.len,
        .content_type = NULL,
        .voice_style = c->plan.voice_style,
        .topic = c->plan.topic,
        .provider = "builtin",
        .llm_model = "",
        .seed = seed_used,
        .decision = c->plan.automatic ? &c->plan.decision : NULL,
        .reply_opportunity_id = opp.id,
        .reply_to_external_id = opp.external_post_id,
        .gates = &rep,
        .dup_threshold = CONTENT_DUP_THRESHOLD,
    };
    char id[CONTENT_ID_MAX];
    st = content_post_insert_tx(tx->db, &np, id);
    strbuf_fini(&text);
    if (st == ST_CONFLICT)
        return handler_tx_reject(tx, st,
                                 "a reply to this opportunity was stored concurrently; "
                                 "retry");
    if (st == ST_OK)
        st = content_opportunity_drafted_tx(tx->db, opp.id, id);
    Herald__V1__Post *p = NULL;
    if (st == ST_OK)
        st = content_post_get(tx->db, 0, a, id, false, &p);
    if (st != ST_OK)
        return st;
    Herald__V1__GenerateReplyResponse *r = arena_alloc(a, sizeof *r);
    Herald__V1__ProviderAttempt **att = arena_alloc(a, sizeof *att);
    if (r == NULL || att == NULL)
        return handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    herald__v1__generate_reply_response__init(r);
    att[0] = attempt_new(a, HERALD__V1__PROVIDER__PROVIDER_BUILTIN, true, "", now_mono_ms() - t0);
    r->post = p;
    r->attempts = att;
    r->n_attempts = att[0] != NULL ? 1 : 0;
    *reply = &r->base;
    return ST_OK;
}

/* The topic a target text is about: the best replyopp relevance among the
 * candidate topics, ties (and no keyword at all) broken by how close the
 * topic's facts come to the text. NULL when no topic qualifies. */
static const catalog_entry *reply_topic(const catalog *cat, const Herald__V1__Profile *prof,
                                        const char *text)
{
    const catalog_entry *best = NULL;
    double best_s = -1;
    size_t len = strlen(text);
    for (size_t i = 0; i < catalog_count(cat, CATALOG_TOPIC); i++) {
        const catalog_entry *e = catalog_entry_at(cat, CATALOG_TOPIC, i);
        if (!e->enabled)
            continue;
        bool mine = prof->n_topics == 0;
        for (size_t k = 0; k < prof->n_topics; k++)
            mine = mine || strcmp(prof->topics[k], e->key) == 0;
        if (!mine)
            continue;
        size_t nf = 0;
        const catalog_fact *f = catalog_topic_facts(cat, e->key, &nf);
        double fact_s = -1;
        for (size_t k = 0; k < nf; k++)
            if (f[k].enabled) {
                double s = textsim_compare(f[k].fact, strlen(f[k].fact), text, len);
                fact_s = s > fact_s ? s : fact_s;
            }
        if (fact_s < 0)
            continue; /* no enabled fact */
        replyopp_topic rt = { .name = e->display_name, .description = e->description };
        replyopp_topics *ts = NULL;
        double rel = 0;
        if (replyopp_topics_new(&rt, 1, &ts) == ST_OK)
            rel = replyopp_relevance(ts, text, len);
        replyopp_topics_free(ts);
        double s = rel + 0.5 * fact_s;
        if (s > best_s) {
            best_s = s;
            best = e;
        }
    }
    return best;
}

static int fact_cmp_desc(const void *x, const void *y)
{
    double a = ((const double *)x)[0], b = ((const double *)y)[0];
    return a < b ? 1 : a > b ? -1 : 0;
}

static void content_generate_reply(Herald__V1__ContentService_Service *svc,
                                   const Herald__V1__GenerateReplyRequest *req,
                                   Herald__V1__GenerateReplyResponse_Closure done, void *data)
{
    rpc_call *call = data;
    arena *a = rpc_call_arena(call);
    const char *vs = NULL;
    hv v;
    (void)svc;

    hv_init(&v, call, &req->base);
    hv_request_id(&v, "request_id", req->request_id);
    hv_uuid(&v, "opportunity_id", req->opportunity_id, true);
    hv_enum(&v, "provider", &herald__v1__provider__descriptor, (int)req->provider, false);
    opt_key(&v, "voice_style", req->voice_style, &vs);
    if (hv_failed(&v))
        return;
    db_conn *db = handler_db(call);
    if (db == NULL)
        return;
    const ProtobufCMessage *replay = NULL;
    if (idem_replayed(call, db, req->request_id, &req->base,
                      &herald__v1__generate_reply_response__descriptor, &replay)) {
        if (replay != NULL)
            done((const Herald__V1__GenerateReplyResponse *)replay, call);
        return;
    }
    content_opportunity opp;
    status st =
        content_opportunity_get(db, handler_budget_ms(call), a, req->opportunity_id, false, &opp);
    if (st == ST_NOT_FOUND) {
        rpc_call_fail(call, st, "reply opportunity %s not found", req->opportunity_id);
        return;
    }
    if (st != ST_OK) {
        handler_fail_db(call, db, st, "reply opportunity");
        return;
    }
    if (strcmp(opp.state, "open") != 0 || opp.expire_ms < now_real_ms()) {
        rpc_call_set_error_info(call, "OPPORTUNITY_NOT_OPEN", HANDLER_ERROR_DOMAIN);
        rpc_call_fail(call, ST_FAILED_PRECONDITION,
                      "reply opportunity %s is %s; GenerateReply needs an open one", opp.id,
                      strcmp(opp.state, "open") == 0 ? "expired" : opp.state);
        return;
    }
    if (opp.text[0] == '\0') {
        rpc_call_fail(call, ST_FAILED_PRECONDITION, "reply opportunity %s has no text to reply to",
                      opp.id);
        return;
    }
    reply_ctx c = { .req = req };
    if (!profile_for_generation(call, db, opp.profile_id, "opportunity_id", &c.prof))
        return;
    bool use_llm = false, explicit_llm = false;
    if (!resolve_provider(call, (int)req->provider, c.prof, false, &use_llm, &explicit_llm))
        return;
    c.snap = catalog_for(call, db);
    if (c.snap == NULL)
        return;
    const catalog *cat = content_catalog_get(c.snap);
    const catalog_entry *topic = reply_topic(cat, c.prof, opp.text);
    char err[300];
    if (topic == NULL) {
        rpc_call_fail(call, ST_FAILED_PRECONDITION,
                      "no enabled topic with facts to reply from (profile %s)", c.prof->profile_id);
        goto out;
    }
    c.platform =
        opp.platform != PLATFORM_UNSPECIFIED ? opp.platform : (platform_id)c.prof->platform;
    c.seed = SVC_HAS(req, seed) ? req->seed : pregen_seed();
    content_plan_req rq = {
        .cat = cat,
        .profile = c.prof,
        .voice_style = vs,
        .topic = topic->key,
        .reply = true,
        .now_ms = now_real_ms(),
        .seed = c.seed,
    };
    st = content_plan_choose(db, handler_budget_ms(call), &rq, &c.plan, err, sizeof err);
    if (st != ST_OK) {
        fail_with(call, db, st, err, "catalog");
        goto out;
    }
    /* the topic's facts, closest to the target's text first */
    size_t nf = 0;
    const catalog_fact *facts = catalog_topic_facts(cat, topic->key, &nf);
    double *order = arena_alloc(a, (nf + 1) * 2 * sizeof *order);
    c.facts = arena_alloc(a, (nf + 1) * sizeof *c.facts);
    if (order == NULL || c.facts == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "reply too large");
        goto out;
    }
    size_t m = 0;
    for (size_t i = 0; i < nf; i++)
        if (facts[i].enabled) {
            order[2 * m] =
                textsim_compare(facts[i].fact, strlen(facts[i].fact), opp.text, strlen(opp.text));
            order[2 * m + 1] = (double)i;
            m++;
        }
    qsort(order, m, 2 * sizeof *order, fact_cmp_desc);
    for (size_t i = 0; i < m; i++)
        c.facts[i] = &facts[(size_t)order[2 * i + 1]];
    c.n_facts = m;

    c.hist = textsim_index_new();
    handler_mutation mu = { .request = &req->base,
                            .request_id = req->request_id,
                            .reply_desc = &herald__v1__generate_reply_response__descriptor,
                            .body = reply_body,
                            .ctx = &c,
                            .what = "post" };
    handler_result r;
    if (handler_mutate(call, &mu, &r))
        done((const Herald__V1__GenerateReplyResponse *)r.reply, call);
out:
    content_plan_fini(&c.plan);
    content_catalog_release(c.snap);
    textsim_index_free(c.hist);
}

/* ================================================================ the service */

/* clang-format off */
static Herald__V1__ContentService_Service svc = {
    .base = HERALD__V1__CONTENT_SERVICE__BASE_INIT,
    .generate_draft = content_generate_draft,
    .generate_batch = content_generate_batch,
    .validate_text = content_validate_text,
    .adapt_for_platform = content_adapt_for_platform,
    .generate_reply = content_generate_reply,
    .get_post = content_get_post,
    .list_posts = content_list_posts,
    .update_draft = content_update_draft,
    .approve_post = content_approve_post,
    .reject_post = content_reject_post,
    .cancel_post = content_cancel_post,
    .list_catalog = content_list_catalog,
    .update_catalog_entry = content_update_catalog_entry,
};
/* clang-format on */

ProtobufCService *svc_content_service(void)
{
    return &svc.base;
}
