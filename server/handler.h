/* handler.h - the toolkit every herald.v1 handler (server/svc_*.c) uses.
 *
 * Threads. Everything here runs on the handler's worker thread and uses the
 * call's own state; the pure helpers (names without an rpc_call) are
 * thread-safe. Memory handed out comes from the call's arena
 * (rpc_call_arena) and lives until the call ends: never free it.
 *
 * The shape of a handler (rpc.h has the runtime contract):
 *
 *     static void ops_get_profile(Herald__V1__OpsService_Service *svc,
 *                                 const Herald__V1__GetProfileRequest *req,
 *                                 Herald__V1__Profile_Closure done, void *data)
 *     {
 *         rpc_call *call = data;
 *         hv v;
 *         hv_init(&v, call, &req->base);   // UTF-8 and NUL checks of every string
 *         hv_profile_id(&v, "profile_id", req->profile_id);
 *         if (hv_failed(&v))               // INVALID_ARGUMENT + BadRequest, call ended
 *             return;
 *         db_conn *db = handler_db(call);  // NULL: call ended (UNAVAILABLE)
 *         if (db == NULL)
 *             return;
 *         ... st = db_run(db, handler_budget_ms(call), ...);
 *         if (st != ST_OK) {
 *             handler_fail_db(call, db, st, "profile");  // clean message, no SQL
 *             return;
 *         }
 *         done(&reply, call);
 *     }
 *
 * Functions documented as "ending the call" complete it (rpc_call_fail):
 * the handler must then return without calling done. A mutation goes
 * through handler_mutate, which owns the transaction and the idempotency
 * key (request_id) so that the body only does the writes.
 *
 * Error messages are for humans and never carry SQL, secrets or stack
 * traces; details a program needs travel as google.rpc details (BadRequest
 * field violations, ErrorInfo reasons). */
#ifndef HERALD_HANDLER_H
#define HERALD_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "arena.h"
#include "cache.h"
#include "db.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "rpc.h"
#include "status.h"
#include "worker.h"

#define HANDLER_ERROR_DOMAIN "herald.v1" /* ErrorInfo.domain of our reasons */

/* ---- the worker's store and cache ---- */

/* The worker serving call (NULL on the priority pool). */
worker *handler_worker(const rpc_call *call);

/* The worker's PostgreSQL connection, if the store may be used now. NULL
 * ends the call with UNAVAILABLE (no database configured, or the schema is
 * not verified yet / refused; see worker_schema). */
db_conn *handler_db(rpc_call *call);

/* The worker's Redis connection (never NULL on a worker; every call on it
 * is a miss when Redis is absent, broken or bypassed), and the shared cache
 * for cache_key(). */
cache_conn *handler_cache(rpc_call *call);
const cache *handler_cache_shared(const rpc_call *call);

/* Milliseconds the call has left (rpc_call_remaining_ms): the budget to
 * pass to db_begin / db_run. */
int64_t handler_budget_ms(const rpc_call *call);

/* Ends the call after a store failure: st (as returned by the db_* call)
 * becomes the gRPC code with a clean message naming `what` ("profile"):
 *   ST_NOT_FOUND "<what> not found", ST_ALREADY_EXISTS "<what> already
 *   exists", ST_CONFLICT (ABORTED) "concurrent change; retry",
 *   ST_UNAVAILABLE "database unavailable; retry" (+ RetryInfo),
 *   ST_TIMEOUT "deadline exceeded in the database", ST_INVALID "a value
 *   was rejected", anything else INTERNAL "internal error".
 * db_errmsg(db) (no SQL, no secrets) goes to the log, not to the client.
 * db may be NULL. */
void handler_fail_db(rpc_call *call, db_conn *db, status st, const char *what);

/* ---- request validation ----
 * A validator collects every violation of a request (docs/api.md: a
 * BadRequest lists every bad field), then hv_failed ends the call with
 * INVALID_ARGUMENT. Field paths are the proto names: "profile.topics[2]".
 * Each hv_* check returns true when the value passed (and records a
 * violation otherwise). Strings: lengths are in Unicode code points. */
typedef struct hv {
    rpc_call *call;
    arena *arena;
    int n;                   /* violations so far */
    const char *first_field; /* the first one, for grpc-message */
    const char *first_desc;
} hv;

/* Starts validating req, the call's decoded request: every string field
 * (recursively) must be valid UTF-8 without NUL bytes. protobuf-c accepts
 * invalid UTF-8 and silently truncates a string at its first NUL (notes
 * §11), so the NUL check compares the received size with the re-packed
 * size of req, once per request; when they differ it scans the received
 * bytes (rpc_call_request_data) to tell a NUL from a merely non-canonical
 * encoding (explicit default values, as protobuf.js sends). */
void hv_init(hv *v, rpc_call *call, const ProtobufCMessage *req);

/* Records a violation. field is copied. */
void hv_add(hv *v, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A field path built with printf ("topics[%zu]") in the call's arena. */
const char *hv_path(hv *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True (and the call ended with INVALID_ARGUMENT, every violation in a
 * BadRequest, the first in the message) when any check failed. */
bool hv_failed(hv *v);

/* s: min_cp..max_cp code points (UTF-8 validity is hv_init's). */
bool hv_text(hv *v, const char *field, const char *s, size_t min_cp, size_t max_cp);
/* s: min..max bytes of printable ASCII (0x20..0x7e). */
bool hv_ascii(hv *v, const char *field, const char *s, size_t min, size_t max);
/* A required sub-message. */
bool hv_present(hv *v, const char *field, const void *msg);
/* request_id: empty, or 36..255 printable ASCII (common.proto). */
bool hv_request_id(hv *v, const char *field, const char *s);
/* profile_id: 1..63 of [a-z0-9_-], starting with a letter or digit. Required. */
bool hv_profile_id(hv *v, const char *field, const char *s);
/* A server-assigned UUID in canonical text form (36 chars, hex any case). */
bool hv_uuid(hv *v, const char *field, const char *s, bool required);
/* value is one of d's values; required: the zero (_UNSPECIFIED) value is a
 * violation too. protobuf-c keeps unknown enum numbers as they came. */
bool hv_enum(hv *v, const char *field, const ProtobufCEnumDescriptor *d, int value, bool required);
/* An integer in [min, max]. */
bool hv_int(hv *v, const char *field, int64_t value, int64_t min, int64_t max);
/* A repeated field's count in [min, max]. */
bool hv_count(hv *v, const char *field, size_t n, size_t min, size_t max);
/* A catalog key (common.proto): '-' read as '_', upper case folded, then
 * 1..64 of [a-z0-9_]. *out (may be NULL) gets the normalised key in the
 * call's arena, or NULL when it failed. */
bool hv_catalog_key(hv *v, const char *field, const char *in, const char **out);
/* ts: nanos in 0..999,999,999 and seconds in 0001..9999 (Timestamp's range).
 * NULL passes unless required. *epoch_ms (may be NULL) gets its value, 0 for
 * NULL. */
bool hv_timestamp(hv *v, const char *field, const Google__Protobuf__Timestamp *ts, bool required,
                  int64_t *epoch_ms);
/* page_size: negative is a violation, 0 gives dflt, above max gives max
 * (common.proto). Returns the size to use. */
int32_t hv_page_size(hv *v, const char *field, int32_t page_size, int32_t dflt, int32_t max);
/* Decodes page_token (see handler_page_token_*): "" gives *cursor NULL and
 * passes; a malformed, tampered or foreign token (other filters) is a
 * violation of field. */
bool hv_page_token(hv *v, const char *field, const char *token, const char *scope,
                   const uint8_t **cursor, size_t *cursor_len);

/* ---- pure syntax helpers (any thread) ---- */

bool handler_profile_id_valid(const char *s);
bool handler_uuid_valid(const char *s);
/* Empty, or 36..255 printable ASCII. */
bool handler_request_id_valid(const char *s);
/* Catalog key normalisation into out[0..cap): false when the result is not
 * 1..64 of [a-z0-9_] (or does not fit). */
bool handler_catalog_key_normalize(const char *in, char *out, size_t cap);

/* ---- enums <-> database text (0002_core: lower snake case of the value's
 * name without the enum's prefix, PROFILE_STATE_PAUSED <-> "paused") ---- */

/* The database spelling of value into buf, or NULL when value is not one of
 * d's (or is the _UNSPECIFIED zero, which is never stored). */
const char *handler_enum_db_name(const ProtobufCEnumDescriptor *d, int value, char *buf,
                                 size_t cap);
/* The value whose database spelling is text; false when none. */
bool handler_enum_from_db(const ProtobufCEnumDescriptor *d, const char *text, int *value);

/* ---- google.protobuf.Timestamp ---- */

/* Epoch ms / µs of ts, rounded toward minus infinity and saturated at the
 * int64 range (any wire value is safe); 0 for NULL. */
int64_t handler_ts_ms(const Google__Protobuf__Timestamp *ts);
int64_t handler_ts_us(const Google__Protobuf__Timestamp *ts);
/* A new Timestamp in a (for replies). */
Google__Protobuf__Timestamp *handler_ts_from_ms(arena *a, int64_t epoch_ms);
Google__Protobuf__Timestamp *handler_ts_from_us(arena *a, int64_t epoch_us);

/* ---- page tokens ----
 * Opaque to clients: base64url (no padding) of a version byte, 8 bytes of
 * SHA-256(scope), the cursor and an 8-byte SHA-256 check over all of it.
 * scope names the method and its filters ("ListProfiles|state=2|platform=0"),
 * so a token used with other filters is refused. Tamper-evident (any edit or
 * truncation fails the check), not secret: a cursor only says where the
 * previous page ended, so a client forging one gains nothing. */
enum { HANDLER_PAGE_CURSOR_MAX = 700, HANDLER_PAGE_TOKEN_MAX = 1024 };

/* The token for cursor (1..HANDLER_PAGE_CURSOR_MAX bytes) in a. */
char *handler_page_token_encode(arena *a, const char *scope, const void *cursor, size_t len);
/* ST_OK with *cursor (in a) and *len; ST_INVALID when malformed, tampered
 * or minted for another scope. */
status handler_page_token_decode(arena *a, const char *scope, const char *token,
                                 const uint8_t **cursor, size_t *len);

/* ---- messages and the cache ---- */

/* req packed into the call's arena; *len gets its size. */
uint8_t *handler_pack(rpc_call *call, const ProtobufCMessage *msg, size_t *len);

/* Cache-aside for replies, served as stored bytes. Keys come from
 * cache_key(handler_cache_shared(call), ns, id, version) with the version read
 * from PostgreSQL or the version map (vercache.h; cache.h).
 * put: packs msg exactly as a later hit must answer (set any "cached" flag
 * before, clear it for the fresh reply after) and stores it for ttl_s (> 0)
 * tagged with msg's type, in Redis and, when Redis took it, in the
 * in-process tier (cache_local) for as long; failures are ignored (the cache
 * is only a copy).
 * reply: looks in the in-process tier, then in Redis (GET with PTTL in one
 * round trip; a Redis hit is copied into the in-process tier until the
 * Redis entry expires). On a hit on an entry put with a message of type d,
 * sends its bytes verbatim as call's reply (rpc_call_reply_raw: no unpack,
 * no repack) and returns true: the call has ended, return without calling
 * done. false on any miss (absent, Redis down or bypassed, truncated or
 * corrupted bytes: cache.h's envelope checksum; another type or an older
 * layout: the tag); then compute the reply. The bytes are not decoded: an
 * entry that passes both checks was packed by handler_cache_put.
 * A Redis failure (not a plain miss, not a breaker bypass) logs one debug
 * line "cache unavailable" with op get/set. */
bool handler_cache_reply(rpc_call *call, const char *key, const ProtobufCMessageDescriptor *d);
void handler_cache_put(rpc_call *call, const char *key, const ProtobufCMessage *msg, int ttl_s);

/* ---- idempotent mutations (conventions §5) ----
 *
 *     static status create_body(handler_tx *tx, ProtobufCMessage **reply)
 *     {
 *         const Herald__V1__CreateProfileRequest *req = tx->ctx;
 *         status st = db_query(tx->db, ...);         // inside the open transaction
 *         if (st == ST_ALREADY_EXISTS)
 *             return handler_tx_reject(tx, st, "profile %s already exists", id);
 *         if (st != ST_OK)
 *             return st;                               // mapped by handler_fail_db
 *         *reply = &out->base;                         // built in the call's arena
 *         return ST_OK;
 *     }
 *     ...
 *     handler_mutation m = { .request = &req->base, .request_id = req->request_id,
 *                            .reply_desc = &herald__v1__profile__descriptor,
 *                            .body = create_body, .ctx = (void *)req, .what = "profile" };
 *     handler_result r;
 *     if (!handler_mutate(call, &m, &r))
 *         return;                                      // call ended
 *     done((const Herald__V1__Profile *)r.reply, call);
 *
 * handler_mutate opens the transaction (with the call's budget as
 * statement_timeout), and with a request_id reserves the key
 * (db_idem_begin):
 *   - a retry with the same request replays the stored reply (unpacked into
 *     the call's arena); the body does not run;
 *   - the same request_id with a different request: INVALID_ARGUMENT,
 *     ErrorInfo IDEMPOTENCY_KEY_REUSED, violation on request_id;
 *   - the same request_id still in flight: ABORTED, ErrorInfo
 *     IDEMPOTENCY_KEY_IN_FLIGHT.
 * Then the body runs inside the transaction; on ST_OK its reply is stored
 * under the key in the same transaction and committed (nothing is
 * acknowledged before COMMIT). Any failure rolls back and ends the call;
 * failures are never stored, so a retry runs the body again. With an empty
 * request_id the body runs in a plain transaction (not idempotent). The
 * request is hashed from its canonical re-packed bytes. Validate first:
 * handler_mutate does not. */
typedef struct handler_tx {
    rpc_call *call;
    db_conn *db; /* a transaction is open on it */
    void *ctx;   /* handler_mutation.ctx */
    /* private: set by handler_tx_reject */
    status reject_st;
    const char *reject_msg;
} handler_tx;

/* Returns ST_OK with *reply set (a message of reply_desc's type, in the
 * call's arena or otherwise valid until the call ends), or a failure:
 * either a store status as returned by db_* (handler_fail_db maps it), or
 * what handler_tx_reject returned. */
typedef status (*handler_body_fn)(handler_tx *tx, ProtobufCMessage **reply);

/* From a body: fail with st and this message (violations or ErrorInfo may
 * be added to tx->call before). Returns st. */
status handler_tx_reject(handler_tx *tx, status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef struct handler_mutation {
    const ProtobufCMessage *request; /* the decoded request (hashed) */
    const char *request_id;          /* "" or NULL: not idempotent */
    const ProtobufCMessageDescriptor *reply_desc;
    handler_body_fn body;
    void *ctx;        /* for the body */
    const char *what; /* noun for store failures ("profile") */
} handler_mutation;

typedef struct handler_result {
    const ProtobufCMessage *reply; /* valid until the call ends */
    bool replayed;                 /* true: a stored reply; the body did not run now */
} handler_result;

/* true: committed (or replayed); reply with r->reply. false: the call has
 * ended with a failure. */
bool handler_mutate(rpc_call *call, const handler_mutation *m, handler_result *r);

/* handler_mutate on db instead of the worker's connection: for a detached
 * call finished on another thread that owns db (a worker's connection must
 * never be used off its thread; ContentService finishes LLM-backed calls on
 * its own completion thread). The caller passed the schema gate
 * (handler_db) when the call started. */
bool handler_mutate_on(rpc_call *call, db_conn *db, const handler_mutation *m, handler_result *r);

#endif
