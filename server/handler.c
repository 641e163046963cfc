/* handler.c - the handler toolkit (see handler.h). Runs on worker threads;
 * all state is the call's. */
#include "handler.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lcache.h"
#include "log.h"
#include "tz.h"
#include "util.h"

enum {
    HV_MAX_VIOLATIONS = 100, /* a BadRequest lists at most this many */
    SCAN_MAX_DEPTH = 64,     /* message nesting the NUL scan follows */
    RETRY_DB_MS = 500,       /* RetryInfo for a database outage */
    RETRY_NOT_READY_MS = 1000,
};

/* ---------------------------------------------------------------- access */

worker *handler_worker(const rpc_call *call)
{
    return rpc_call_worker(call);
}

db_conn *handler_db(rpc_call *call)
{
    worker *w = handler_worker(call);
    if (w == NULL || w->db == NULL) {
        rpc_call_fail(call, ST_UNAVAILABLE, "no database configured");
        return NULL;
    }
    switch (worker_schema_get(w->shared)) {
    case WORKER_SCHEMA_OK:
        return w->db;
    case WORKER_SCHEMA_PENDING:
        rpc_call_set_retry_delay_ms(call, RETRY_NOT_READY_MS);
        rpc_call_fail(call, ST_UNAVAILABLE,
                      "not ready: the database schema is not verified yet; retry");
        return NULL;
    case WORKER_SCHEMA_REFUSED:
        rpc_call_fail(call, ST_UNAVAILABLE,
                      "not serving: the database schema does not match this server (see its log)");
        return NULL;
    case WORKER_SCHEMA_NO_DB:
        break;
    }
    rpc_call_fail(call, ST_UNAVAILABLE, "no database configured");
    return NULL;
}

cache_conn *handler_cache(rpc_call *call)
{
    worker *w = handler_worker(call);
    return w != NULL ? w->cache : NULL;
}

const cache *handler_cache_shared(const rpc_call *call)
{
    worker *w = handler_worker(call);
    return w != NULL ? w->shared->cache : NULL;
}

int64_t handler_budget_ms(const rpc_call *call)
{
    return rpc_call_remaining_ms(call);
}

void handler_fail_db(rpc_call *call, db_conn *db, status st, const char *what)
{
    const char *why = db != NULL ? db_errmsg(db) : "";
    const char *rid = rpc_call_request_id(call);

    switch (st) {
    case ST_NOT_FOUND:
        rpc_call_fail(call, st, "%s not found", what);
        return;
    case ST_ALREADY_EXISTS:
        rpc_call_fail(call, st, "%s already exists", what);
        return;
    case ST_CONFLICT:
        rpc_call_fail(call, st, "%s: concurrent change; retry", what);
        return;
    case ST_UNAVAILABLE:
        log_debug("req %s: %s: %s", rid, rpc_call_path(call), why);
        rpc_call_set_retry_delay_ms(call, RETRY_DB_MS);
        rpc_call_fail(call, st, "database unavailable; retry");
        return;
    case ST_TIMEOUT:
        rpc_call_fail(call, st, "deadline exceeded in the database");
        return;
    case ST_CANCELLED:
        rpc_call_fail(call, st, "cancelled");
        return;
    case ST_INVALID: {
        log_field f[] = { LOG_S("req", rid), LOG_S("rpc", rpc_call_path(call)),
                          LOG_S("error", why) };
        log_event(LOG_WARN, "the database rejected a value", f, 3);
        rpc_call_fail(call, st, "%s: a value was rejected", what);
        return;
    }
    case ST_FAILED_PRECONDITION:
    case ST_EXHAUSTED:
    case ST_UNAUTHENTICATED:
    case ST_PERMISSION_DENIED:
    case ST_UNIMPLEMENTED:
    case ST_INTERNAL:
    case ST_OK:
        break;
    }
    log_field f[] = { LOG_S("req", rid), LOG_S("rpc", rpc_call_path(call)),
                      LOG_S("status", status_name(st)), LOG_S("error", why) };
    log_event(LOG_ERROR, "store failure", f, 4);
    rpc_call_fail(call, ST_INTERNAL, "internal error");
}

/* ---------------------------------------------------------------- validation */

void hv_add(hv *v, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *desc = NULL;
    if (v->n < HV_MAX_VIOLATIONS) {
        desc = xvasprintf(fmt, ap);
        rpc_call_add_violation(v->call, field, desc);
    }
    va_end(ap);
    if (v->n == 0) {
        v->first_field = arena_strdup(v->arena, field);
        v->first_desc = arena_strdup(v->arena, desc != NULL ? desc : "");
    }
    free(desc);
    v->n++;
}

const char *hv_path(hv *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvasprintf(fmt, ap);
    va_end(ap);
    const char *out = arena_strdup(v->arena, s);
    free(s);
    return out != NULL ? out : "";
}

bool hv_failed(hv *v)
{
    if (v->n == 0)
        return false;
    const char *field = v->first_field != NULL ? v->first_field : "";
    const char *desc = v->first_desc != NULL ? v->first_desc : "invalid";
    if (v->n == 1)
        rpc_call_fail(v->call, ST_INVALID, "%s%s%s", field, field[0] ? ": " : "", desc);
    else
        rpc_call_fail(v->call, ST_INVALID, "%s%s%s (and %d more violations)", field,
                      field[0] ? ": " : "", desc, v->n - 1);
    return true;
}

/* A field path kept as a chain on the stack; materialised only on a
 * violation. */
typedef struct path_seg {
    const struct path_seg *parent;
    const char *name;
    long index; /* -1: not repeated */
} path_seg;

static void path_build(const path_seg *p, strbuf *b)
{
    if (p == NULL)
        return;
    path_build(p->parent, b);
    if (p->parent != NULL)
        strbuf_putc(b, '.');
    strbuf_puts(b, p->name);
    if (p->index >= 0)
        strbuf_printf(b, "[%ld]", p->index);
}

static void hv_add_at(hv *v, const path_seg *p, const char *desc)
{
    strbuf b = { 0 };
    path_build(p, &b);
    hv_add(v, b.data != NULL ? b.data : "", "%s", desc);
    strbuf_fini(&b);
}

/* Every set string of m (recursively) must be valid UTF-8. */
static void walk_utf8(hv *v, const ProtobufCMessage *m, const path_seg *parent, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    if (depth > SCAN_MAX_DEPTH)
        return;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        size_t n = 1;
        void *const *items = (void *const *)(base + f->offset);
        bool repeated = f->label == PROTOBUF_C_LABEL_REPEATED;
        if (repeated) {
            n = *(const size_t *)(base + f->quantifier_offset);
            items = *(void *const *const *)(base + f->offset);
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                continue;
        }
        for (size_t k = 0; k < n; k++) {
            const void *item = items[k];
            if (item == NULL)
                continue;
            path_seg seg = { parent, f->name, repeated ? (long)k : -1 };
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                const char *s = item;
                if (!utf8_valid(s, strlen(s)))
                    hv_add_at(v, &seg, "must be valid UTF-8");
            } else {
                walk_utf8(v, item, &seg, depth + 1);
            }
        }
    }
}

static bool read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *pos < len; shift += 7) {
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Scans the wire bytes of a message of type d for string fields holding a
 * NUL. Returns false on bytes it cannot follow (groups, truncation): the
 * caller then falls back to a generic violation. */
static bool scan_nul(hv *v, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                     const path_seg *parent, int depth)
{
    size_t pos = 0;
    size_t *counts = NULL;

    if (depth > SCAN_MAX_DEPTH)
        return true;
    while (pos < len) {
        uint64_t key = 0, l = 0;
        if (!read_varint(p, len, &pos, &key))
            return false;
        unsigned wt = (unsigned)(key & 7);
        const ProtobufCFieldDescriptor *f =
            key >> 3 <= UINT32_MAX
                ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3))
                : NULL;
        switch (wt) {
        case 0:
            if (!read_varint(p, len, &pos, &l))
                return false;
            continue;
        case 1:
        case 5:
            if (len - pos < (wt == 1 ? 8u : 4u))
                return false;
            pos += wt == 1 ? 8 : 4;
            continue;
        case 2:
            break;
        default:
            return false; /* groups: not in our API */
        }
        if (!read_varint(p, len, &pos, &l) || l > len - pos)
            return false;
        const uint8_t *sub = p + pos;
        pos += (size_t)l;
        if (f == NULL || (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE))
            continue;
        long index = -1;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (counts == NULL) {
                counts = arena_calloc(v->arena, d->n_fields * sizeof *counts);
                if (counts == NULL)
                    return false;
            }
            index = (long)counts[f - d->fields]++;
        }
        path_seg seg = { parent, f->name, index };
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            if (memchr(sub, 0, (size_t)l) != NULL)
                hv_add_at(v, &seg, "must not contain NUL bytes");
        } else if (!scan_nul(v, f->descriptor, sub, (size_t)l, &seg, depth + 1)) {
            return false;
        }
    }
    return true;
}

void hv_init(hv *v, rpc_call *call, const ProtobufCMessage *req)
{
    memset(v, 0, sizeof *v);
    v->call = call;
    v->arena = rpc_call_arena(call);
    if (req == NULL)
        return;
    walk_utf8(v, req, NULL, 0);

    /* A NUL shortens a decoded string, so the canonical re-encoding is
     * smaller than what came. Equal sizes: no NUL (the usual case). */
    size_t received = rpc_call_request_bytes(call);
    if (received == protobuf_c_message_get_packed_size(req))
        return;
    size_t len = 0;
    const uint8_t *data = rpc_call_request_data(call, &len);
    if (data != NULL && scan_nul(v, req->descriptor, data, len, NULL, 0))
        return;
    if (received > protobuf_c_message_get_packed_size(req))
        hv_add(v, "", "a string holds a NUL byte, or the request could not be checked for one");
}

bool hv_text(hv *v, const char *field, const char *s, size_t min_cp, size_t max_cp)
{
    size_t n = s != NULL ? utf8_count(s, strlen(s)) : 0;
    if (n >= min_cp && n <= max_cp)
        return true;
    if (n == 0)
        hv_add(v, field, "is required");
    else if (min_cp <= 1)
        hv_add(v, field, "must be at most %zu characters (got %zu)", max_cp, n);
    else
        hv_add(v, field, "must be %zu to %zu characters (got %zu)", min_cp, max_cp, n);
    return false;
}

bool hv_ascii(hv *v, const char *field, const char *s, size_t min, size_t max)
{
    size_t n = s != NULL ? strlen(s) : 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) {
            hv_add(v, field, "must be printable ASCII");
            return false;
        }
    }
    if (n >= min && n <= max)
        return true;
    if (n == 0)
        hv_add(v, field, "is required");
    else
        hv_add(v, field, "must be %zu to %zu characters (got %zu)", min, max, n);
    return false;
}

bool hv_present(hv *v, const char *field, const void *msg)
{
    if (msg != NULL)
        return true;
    hv_add(v, field, "is required");
    return false;
}

bool handler_request_id_valid(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0)
        return true;
    if (n < 36 || n > DB_IDEM_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    return true;
}

bool hv_request_id(hv *v, const char *field, const char *s)
{
    if (handler_request_id_valid(s))
        return true;
    hv_add(v, field, "must be empty or 36 to 255 printable ASCII characters (a UUID)");
    return false;
}

bool handler_profile_id_valid(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n < 1 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '_' || c == '-'));
        if (!ok)
            return false;
    }
    return true;
}

bool hv_profile_id(hv *v, const char *field, const char *s)
{
    if (handler_profile_id_valid(s))
        return true;
    if (s == NULL || s[0] == '\0')
        hv_add(v, field, "is required");
    else
        hv_add(v, field,
               "must be 1 to 63 characters of [a-z0-9_-], starting with a letter or digit");
    return false;
}

bool handler_uuid_valid(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

bool hv_uuid(hv *v, const char *field, const char *s, bool required)
{
    if ((s == NULL || s[0] == '\0') && !required)
        return true;
    if (handler_uuid_valid(s))
        return true;
    if (s == NULL || s[0] == '\0')
        hv_add(v, field, "is required");
    else
        hv_add(v, field, "must be a UUID (36 characters)");
    return false;
}

bool hv_enum(hv *v, const char *field, const ProtobufCEnumDescriptor *d, int value, bool required)
{
    if (protobuf_c_enum_descriptor_get_value(d, value) == NULL) {
        hv_add(v, field, "unknown %s value %d", d->short_name, value);
        return false;
    }
    if (required && value == 0) {
        hv_add(v, field, "is required");
        return false;
    }
    return true;
}

bool hv_int(hv *v, const char *field, int64_t value, int64_t min, int64_t max)
{
    if (value >= min && value <= max)
        return true;
    hv_add(v, field, "must be %lld to %lld (got %lld)", (long long)min, (long long)max,
           (long long)value);
    return false;
}

bool hv_count(hv *v, const char *field, size_t n, size_t min, size_t max)
{
    if (n >= min && n <= max)
        return true;
    if (min > 0 && n == 0)
        hv_add(v, field, "is required (at least %zu)", min);
    else
        hv_add(v, field, "must have %zu to %zu items (got %zu)", min, max, n);
    return false;
}

bool handler_catalog_key_normalize(const char *in, char *out, size_t cap)
{
    size_t n = in != NULL ? strlen(in) : 0;
    if (n < 1 || n > 64 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = in[i] == '-' ? '_' : (char)tolower((unsigned char)in[i]);
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
        out[i] = c;
    }
    out[n] = '\0';
    return true;
}

bool hv_catalog_key(hv *v, const char *field, const char *in, const char **out)
{
    char buf[72];
    if (out != NULL)
        *out = NULL;
    if (!handler_catalog_key_normalize(in, buf, sizeof buf)) {
        if (in == NULL || in[0] == '\0')
            hv_add(v, field, "is required");
        else
            hv_add(v, field, "must be 1 to 64 characters of [a-z0-9_] ('-' is read as '_')");
        return false;
    }
    if (out != NULL)
        *out = arena_strdup(v->arena, buf);
    return true;
}

bool hv_timestamp(hv *v, const char *field, const Google__Protobuf__Timestamp *ts, bool required,
                  int64_t *epoch_ms)
{
    if (epoch_ms != NULL)
        *epoch_ms = 0;
    if (ts == NULL) {
        if (required)
            hv_add(v, field, "is required");
        return !required;
    }
    if (ts->nanos < 0 || ts->nanos > 999999999 || ts->seconds < TZ_MIN_S ||
        ts->seconds > TZ_MAX_S) {
        hv_add(v, field, "must be between 0001-01-01 and 9999-12-31 with nanos 0 to 999999999");
        return false;
    }
    if (epoch_ms != NULL)
        *epoch_ms = handler_ts_ms(ts);
    return true;
}

int32_t hv_page_size(hv *v, const char *field, int32_t page_size, int32_t dflt, int32_t max)
{
    if (page_size < 0) {
        hv_add(v, field, "must not be negative");
        return dflt;
    }
    if (page_size == 0)
        return dflt;
    return page_size > max ? max : page_size;
}

bool hv_page_token(hv *v, const char *field, const char *token, const char *scope,
                   const uint8_t **cursor, size_t *cursor_len)
{
    *cursor = NULL;
    *cursor_len = 0;
    if (token == NULL || token[0] == '\0')
        return true;
    if (strlen(token) > HANDLER_PAGE_TOKEN_MAX ||
        handler_page_token_decode(v->arena, scope, token, cursor, cursor_len) != ST_OK) {
        hv_add(v, field,
               "is not a page token of this list with these filters (use next_page_token as "
               "returned)");
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- enums */

/* Length of the values' common prefix, taken from the zero value's name
 * ("PROFILE_STATE_UNSPECIFIED" -> 14). */
static size_t enum_prefix_len(const ProtobufCEnumDescriptor *d)
{
    static const char unspec[] = "UNSPECIFIED";
    const ProtobufCEnumValue *z = protobuf_c_enum_descriptor_get_value(d, 0);
    if (z == NULL)
        return 0;
    size_t n = strlen(z->name);
    if (n < sizeof unspec - 1 || strcmp(z->name + n - (sizeof unspec - 1), unspec) != 0)
        return 0;
    return n - (sizeof unspec - 1);
}

const char *handler_enum_db_name(const ProtobufCEnumDescriptor *d, int value, char *buf, size_t cap)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, value);
    if (ev == NULL || value == 0)
        return NULL;
    size_t pre = enum_prefix_len(d);
    const char *zero = protobuf_c_enum_descriptor_get_value(d, 0)->name;
    if (strlen(ev->name) <= pre || strncmp(ev->name, zero, pre) != 0)
        return NULL;
    const char *s = ev->name + pre;
    size_t n = strlen(s);
    if (n >= cap)
        return NULL;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)tolower((unsigned char)s[i]);
    buf[n] = '\0';
    return buf;
}

bool handler_enum_from_db(const ProtobufCEnumDescriptor *d, const char *text, int *value)
{
    char name[128];
    size_t pre = enum_prefix_len(d);
    size_t n = text != NULL ? strlen(text) : 0;
    if (pre == 0 || n == 0 || pre + n >= sizeof name)
        return false;
    memcpy(name, protobuf_c_enum_descriptor_get_value(d, 0)->name, pre);
    for (size_t i = 0; i < n; i++)
        name[pre + i] = (char)toupper((unsigned char)text[i]);
    name[pre + n] = '\0';
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(d, name);
    if (ev == NULL || ev->value == 0)
        return false;
    *value = ev->value;
    return true;
}

/* ---------------------------------------------------------------- timestamps */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* seconds * scale + floor(nanos / (1e9 / scale)), saturated at the int64
 * range: a Timestamp straight off the wire may hold any seconds value, and
 * callers (page-token scopes, say) may convert before validating. */
static int64_t ts_scaled(const Google__Protobuf__Timestamp *ts, int64_t scale)
{
    if (ts == NULL)
        return 0;
    int64_t v;
    if (__builtin_mul_overflow(ts->seconds, scale, &v) ||
        __builtin_add_overflow(v, floor_div(ts->nanos, 1000000000 / scale), &v))
        return ts->seconds < 0 ? INT64_MIN : INT64_MAX;
    return v;
}

int64_t handler_ts_ms(const Google__Protobuf__Timestamp *ts)
{
    return ts_scaled(ts, 1000);
}

int64_t handler_ts_us(const Google__Protobuf__Timestamp *ts)
{
    return ts_scaled(ts, 1000000);
}

Google__Protobuf__Timestamp *handler_ts_from_us(arena *a, int64_t epoch_us)
{
    Google__Protobuf__Timestamp *ts = arena_alloc(a, sizeof *ts);
    if (ts == NULL)
        return NULL;
    google__protobuf__timestamp__init(ts);
    ts->seconds = floor_div(epoch_us, 1000000);
    ts->nanos = (int32_t)((epoch_us - ts->seconds * 1000000) * 1000);
    return ts;
}

Google__Protobuf__Timestamp *handler_ts_from_ms(arena *a, int64_t epoch_ms)
{
    return handler_ts_from_us(a, epoch_ms * 1000);
}

/* ---------------------------------------------------------------- page tokens */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(char c)
{
    const char *p = c != '\0' ? strchr(b64url, c) : NULL;
    return p != NULL ? (int)(p - b64url) : -1;
}

enum { TOKEN_VERSION = 1, TOKEN_SCOPE_BYTES = 8, TOKEN_CHECK_BYTES = 8 };

/* The check over bytes[0..n): the first TOKEN_CHECK_BYTES of SHA-256 of a
 * fixed label and the bytes. */
static void token_check(const uint8_t *bytes, size_t n, uint8_t out[TOKEN_CHECK_BYTES])
{
    static const char label[] = "herald.v1 page token";
    uint8_t *buf = xmalloc(sizeof label + n);
    uint8_t sum[32];
    memcpy(buf, label, sizeof label);
    memcpy(buf + sizeof label, bytes, n);
    db_sha256(buf, sizeof label + n, sum);
    free(buf);
    memcpy(out, sum, TOKEN_CHECK_BYTES);
}

char *handler_page_token_encode(arena *a, const char *scope, const void *cursor, size_t len)
{
    uint8_t raw[1 + TOKEN_SCOPE_BYTES + HANDLER_PAGE_CURSOR_MAX + TOKEN_CHECK_BYTES];
    uint8_t sum[32];
    if (len < 1 || len > HANDLER_PAGE_CURSOR_MAX)
        return NULL;
    size_t n = 0;
    raw[n++] = TOKEN_VERSION;
    db_sha256(scope, strlen(scope), sum);
    memcpy(raw + n, sum, TOKEN_SCOPE_BYTES);
    n += TOKEN_SCOPE_BYTES;
    memcpy(raw + n, cursor, len);
    n += len;
    token_check(raw, n, raw + n);
    n += TOKEN_CHECK_BYTES;

    char *out = arena_alloc(a, (n * 4 + 2) / 3 + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t chunk = (uint32_t)raw[i] << 16;
        if (i + 1 < n)
            chunk |= (uint32_t)raw[i + 1] << 8;
        if (i + 2 < n)
            chunk |= raw[i + 2];
        out[o++] = b64url[(chunk >> 18) & 63];
        out[o++] = b64url[(chunk >> 12) & 63];
        if (i + 1 < n)
            out[o++] = b64url[(chunk >> 6) & 63];
        if (i + 2 < n)
            out[o++] = b64url[chunk & 63];
    }
    out[o] = '\0';
    return out;
}

status handler_page_token_decode(arena *a, const char *scope, const char *token,
                                 const uint8_t **cursor, size_t *len)
{
    uint8_t raw[1 + TOKEN_SCOPE_BYTES + HANDLER_PAGE_CURSOR_MAX + TOKEN_CHECK_BYTES];
    uint8_t sum[32], check[TOKEN_CHECK_BYTES];
    size_t tl = token != NULL ? strlen(token) : 0;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;

    *cursor = NULL;
    *len = 0;
    if (tl == 0 || tl % 4 == 1 || tl > (sizeof raw * 4 + 2) / 3)
        return ST_INVALID;
    for (size_t i = 0; i < tl; i++) {
        int val = b64url_value(token[i]);
        if (val < 0)
            return ST_INVALID;
        acc = (acc << 6) | (uint32_t)val;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[n++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return ST_INVALID; /* non-canonical trailing bits: an edited token */
    if (n < 1 + TOKEN_SCOPE_BYTES + 1 + TOKEN_CHECK_BYTES || raw[0] != TOKEN_VERSION)
        return ST_INVALID;
    size_t body = n - TOKEN_CHECK_BYTES;
    token_check(raw, body, check);
    if (memcmp(check, raw + body, TOKEN_CHECK_BYTES) != 0)
        return ST_INVALID;
    db_sha256(scope, strlen(scope), sum);
    if (memcmp(sum, raw + 1, TOKEN_SCOPE_BYTES) != 0)
        return ST_INVALID;
    size_t clen = body - 1 - TOKEN_SCOPE_BYTES;
    uint8_t *c = arena_alloc(a, clen + 1);
    if (c == NULL)
        return ST_EXHAUSTED;
    memcpy(c, raw + 1 + TOKEN_SCOPE_BYTES, clen);
    c[clen] = '\0'; /* text cursors may be used as strings */
    *cursor = c;
    *len = clen;
    return ST_OK;
}

/* ---------------------------------------------------------------- messages, cache */

uint8_t *handler_pack(rpc_call *call, const ProtobufCMessage *msg, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = arena_alloc(rpc_call_arena(call), n > 0 ? n : 1);
    *len = 0;
    if (buf == NULL)
        return NULL;
    *len = protobuf_c_message_pack(msg, buf);
    return buf;
}

/* A Redis failure the caller saw (each one paid a refusal or the timeout):
 * a debug line, so that an operator (or a fault test) can count them. */
static void cache_failed(rpc_call *call, const cache_conn *cc, const char *op, int64_t t0_us)
{
    if (LOG_DEBUG < atomic_load(&log_level))
        return;
    char us[24];
    snprintf(us, sizeof us, "%lld", (long long)(now_mono_us() - t0_us));
    log_field f[] = { LOG_S("req", rpc_call_request_id(call)), LOG_S("op", op),
                      LOG_S("error", cache_errmsg(cc)), LOG_RAW("us", us) };
    log_event(LOG_DEBUG, "cache unavailable", f, 4);
}

/* A cached message is stored as a tag, "\007pb1 " + its type's full name +
 * "\n", then the packed message, all inside cache.c's envelope (magic,
 * length, checksum): the envelope turns truncated or corrupted bytes into a
 * miss, the tag an entry of another type or of an older layout, so that a
 * hit can go to the wire without being decoded. The first byte, 0x07, is
 * field 0 with wire type 7, which no protobuf parser accepts: a heraldd from
 * before this layout (it unpacked untagged entries) reading one of these
 * during a rolling upgrade sees a miss, never a garbled message. */
#define CACHE_TAG "\007pb1 "

static size_t cache_tag_len(const ProtobufCMessageDescriptor *d)
{
    return sizeof CACHE_TAG - 1 + strlen(d->name) + 1;
}

static void cache_tag_write(uint8_t *p, const ProtobufCMessageDescriptor *d)
{
    size_t n = strlen(d->name);
    memcpy(p, CACHE_TAG, sizeof CACHE_TAG - 1);
    memcpy(p + sizeof CACHE_TAG - 1, d->name, n);
    p[sizeof CACHE_TAG - 1 + n] = '\n';
}

/* Sends a tagged entry's message as call's reply; false (a miss) when the
 * tag is not d's. */
static bool cache_send(rpc_call *call, const char *key, const uint8_t *val, size_t len,
                       const ProtobufCMessageDescriptor *d)
{
    size_t tag = cache_tag_len(d);
    bool ok = len >= tag && memcmp(val, CACHE_TAG, sizeof CACHE_TAG - 1) == 0 &&
              memcmp(val + sizeof CACHE_TAG - 1, d->name, tag - sizeof CACHE_TAG) == 0 &&
              val[tag - 1] == '\n';
    if (ok) {
        rpc_call_reply_raw(call, val + tag, len - tag);
    } else if (LOG_DEBUG >= atomic_load(&log_level)) {
        log_field f[] = { LOG_S("req", rpc_call_request_id(call)), LOG_S("key", key),
                          LOG_S("type", d->name) };
        log_event(LOG_DEBUG, "cache entry of another type or layout: a miss", f, 3);
    }
    return ok;
}

bool handler_cache_reply(rpc_call *call, const char *key, const ProtobufCMessageDescriptor *d)
{
    cache_conn *cc = handler_cache(call);
    uint8_t *val = NULL;
    size_t len = 0;
    int64_t ttl_ms = 0;
    if (cc == NULL || key == NULL)
        return false;
    lcache *local = cache_local(handler_cache_shared(call));
    int64_t t0 = now_mono_us();
    if (lcache_get(local, key, t0, &val, &len)) {
        bool ok = cache_send(call, key, val, len, d);
        free(val);
        return ok;
    }
    cache_rc rc = cache_get_ttl(cc, key, &val, &len, local != NULL ? &ttl_ms : NULL);
    if (rc == CACHE_ERROR)
        cache_failed(call, cc, "get", t0);
    if (rc != CACHE_OK)
        return false;
    bool ok = cache_send(call, key, val, len, d);
    if (ok && ttl_ms > 0)
        lcache_put(local, key, val, len, t0 + ttl_ms * 1000);
    free(val);
    return ok;
}

void handler_cache_put(rpc_call *call, const char *key, const ProtobufCMessage *msg, int ttl_s)
{
    cache_conn *cc = handler_cache(call);
    if (cc == NULL || key == NULL || ttl_s <= 0)
        return;
    size_t tag = cache_tag_len(msg->descriptor);
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = arena_alloc(rpc_call_arena(call), tag + n);
    if (buf == NULL)
        return; /* the arena is spent: only the copy is lost */
    cache_tag_write(buf, msg->descriptor);
    n = protobuf_c_message_pack(msg, buf + tag);
    int64_t t0 = now_mono_us();
    cache_rc rc = cache_set(cc, key, buf, tag + n, ttl_s);
    if (rc == CACHE_ERROR)
        cache_failed(call, cc, "set", t0);
    /* the in-process copy only of what Redis holds, and never longer */
    if (rc == CACHE_OK)
        lcache_put(cache_local(handler_cache_shared(call)), key, buf, tag + n,
                   t0 + (int64_t)ttl_s * 1000000);
}

/* ---------------------------------------------------------------- mutations */

status handler_tx_reject(handler_tx *tx, status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    tx->reject_st = st;
    tx->reject_msg = arena_strdup(rpc_call_arena(tx->call), msg);
    free(msg);
    return st;
}

/* Ends the call after a failed body or commit. */
static void mutate_fail(handler_tx *tx, const handler_mutation *m, status st)
{
    if (tx->reject_msg != NULL && st == tx->reject_st)
        rpc_call_fail(tx->call, st, "%s", tx->reject_msg);
    else
        handler_fail_db(tx->call, tx->db, st, m->what);
}

/* Runs the body in the open transaction; packs its reply. */
static status mutate_body(handler_tx *tx, const handler_mutation *m, ProtobufCMessage **reply,
                          uint8_t **bytes, size_t *len)
{
    *reply = NULL;
    status st = m->body(tx, reply);
    if (st == ST_OK && *reply == NULL)
        st = handler_tx_reject(tx, ST_INTERNAL, "internal error: no reply");
    if (st == ST_OK && bytes != NULL) {
        *bytes = handler_pack(tx->call, *reply, len);
        if (*bytes == NULL)
            st = handler_tx_reject(tx, ST_EXHAUSTED, "reply too large");
    }
    return st;
}

bool handler_mutate(rpc_call *call, const handler_mutation *m, handler_result *r)
{
    r->reply = NULL;
    r->replayed = false;
    db_conn *db = handler_db(call);
    if (db == NULL)
        return false;
    return handler_mutate_on(call, db, m, r);
}

bool handler_mutate_on(rpc_call *call, db_conn *db, const handler_mutation *m, handler_result *r)
{
    handler_tx tx = { .call = call, .db = db, .ctx = m->ctx };
    ProtobufCMessage *reply = NULL;
    status st;

    r->reply = NULL;
    r->replayed = false;

    if (m->request_id == NULL || m->request_id[0] == '\0') {
        st = db_begin(tx.db, handler_budget_ms(call));
        if (st == ST_OK)
            st = mutate_body(&tx, m, &reply, NULL, NULL);
        if (st == ST_OK)
            st = db_commit(tx.db);
        else
            db_rollback(tx.db);
        if (st != ST_OK) {
            mutate_fail(&tx, m, st);
            return false;
        }
        r->reply = reply;
        return true;
    }

    size_t req_len = 0;
    uint8_t *req_bytes = handler_pack(call, m->request, &req_len);
    if (req_bytes == NULL) {
        rpc_call_fail(call, ST_EXHAUSTED, "request too large");
        return false;
    }
    db_idem idem;
    st = db_idem_begin(tx.db, handler_budget_ms(call), m->request_id, rpc_call_path(call),
                       req_bytes, req_len, &idem);
    if (st != ST_OK) {
        if (idem.reason != NULL && strcmp(idem.reason, DB_IDEM_REUSED) == 0) {
            rpc_call_set_error_info(call, DB_IDEM_REUSED, HANDLER_ERROR_DOMAIN);
            rpc_call_add_violation(call, "request_id", "was already used for a different request");
            rpc_call_fail(call, ST_INVALID, "request_id was already used for a different request");
        } else if (idem.reason != NULL && strcmp(idem.reason, DB_IDEM_IN_FLIGHT) == 0) {
            rpc_call_set_error_info(call, DB_IDEM_IN_FLIGHT, HANDLER_ERROR_DOMAIN);
            rpc_call_fail(call, ST_CONFLICT,
                          "a call with this request_id is still in progress; retry later");
        } else {
            handler_fail_db(call, tx.db, st, m->what);
        }
        db_idem_fini(&idem);
        return false;
    }
    if (idem.replay) {
        bool ok = false;
        if (idem.code != GRPC_CODE_OK) {
            rpc_call_finish_code(call, idem.code, "the first call with this request_id failed");
        } else {
            reply = protobuf_c_message_unpack(m->reply_desc, arena_allocator(rpc_call_arena(call)),
                                              idem.response_len, idem.response);
            if (reply == NULL) {
                log_field f[] = { LOG_S("req", rpc_call_request_id(call)),
                                  LOG_S("rpc", rpc_call_path(call)) };
                log_event(LOG_ERROR, "stored idempotent reply does not decode", f, 2);
                rpc_call_fail(call, ST_INTERNAL, "internal error");
            } else {
                r->reply = reply;
                r->replayed = true;
                ok = true;
            }
        }
        db_idem_fini(&idem);
        return ok;
    }

    uint8_t *resp = NULL;
    size_t resp_len = 0;
    st = mutate_body(&tx, m, &reply, &resp, &resp_len);
    if (st == ST_OK)
        st = db_idem_store(tx.db, &idem, GRPC_CODE_OK, resp, resp_len);
    if (st == ST_OK)
        st = db_commit(tx.db);
    else
        db_rollback(tx.db);
    if (st != ST_OK) {
        if (st == ST_CONFLICT && idem.reason != NULL) {
            rpc_call_set_error_info(call, DB_IDEM_IN_FLIGHT, HANDLER_ERROR_DOMAIN);
            rpc_call_fail(call, ST_CONFLICT,
                          "a call with this request_id committed concurrently; retry");
        } else {
            mutate_fail(&tx, m, st);
        }
        db_idem_fini(&idem);
        return false;
    }
    db_idem_fini(&idem);
    r->reply = reply;
    return true;
}
