/* pbjson.c - proto3 JSON <-> protobuf-c messages, walking descriptors.
 *
 * Decoding builds messages with the system allocator exactly as
 * protobuf_c_message_unpack would (so protobuf_c_message_free_unpacked
 * releases them): every allocation is attached to the tree before anything
 * that can fail, so a failure anywhere is cleaned up by freeing the root. */
#include "pbjson.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum { PBJSON_MAX_DEPTH = 64 };

#define TS_MIN_SECONDS INT64_C(-62135596800) /* 0001-01-01T00:00:00Z */
#define TS_MAX_SECONDS INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define DUR_MAX_SECONDS INT64_C(315576000000)

typedef struct jctx {
    const pbjson_options *o;
    strbuf path; /* field path of the value being processed, for errors */
    char *err;
    int depth;
} jctx;

static const pbjson_options default_options = { 0 };

static status jfail(jctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static status jfail(jctx *c, const char *fmt, ...)
{
    if (c->err)
        return ST_INVALID; /* keep the innermost reason */
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    if (c->path.len > 0)
        c->err = xasprintf("%s: %s", c->path.data, msg);
    else
        c->err = xstrdup(msg);
    free(msg);
    return ST_INVALID;
}

static size_t path_push_field(jctx *c, const char *name)
{
    size_t mark = c->path.len;
    if (c->path.len > 0)
        strbuf_putc(&c->path, '.');
    strbuf_puts(&c->path, name);
    return mark;
}

static size_t path_push_index(jctx *c, size_t i)
{
    size_t mark = c->path.len;
    strbuf_printf(&c->path, "[%zu]", i);
    return mark;
}

static size_t path_push_key(jctx *c, const char *key)
{
    size_t mark = c->path.len;
    strbuf_printf(&c->path, "[\"%s\"]", key);
    return mark;
}

static void path_pop(jctx *c, size_t mark)
{
    c->path.len = mark;
    if (c->path.data)
        c->path.data[mark] = '\0';
}

/* ---- names ---- */

static char ascii_upper(char c)
{
    if (c >= 'a' && c <= 'z')
        return (char)(c - 'a' + 'A');
    return c;
}

static char ascii_lower(char c)
{
    if (c >= 'A' && c <= 'Z')
        return (char)(c - 'A' + 'a');
    return c;
}

char *pbjson_json_name(const char *proto_name)
{
    size_t n = strlen(proto_name);
    char *out = xmalloc(n + 1);
    size_t j = 0;
    bool upper_next = false;
    for (size_t i = 0; i < n; i++) {
        char ch = proto_name[i];
        if (ch == '_') {
            upper_next = true;
        } else if (upper_next) {
            out[j++] = ascii_upper(ch);
            upper_next = false;
        } else {
            out[j++] = ch;
        }
    }
    out[j] = '\0';
    return out;
}

static bool json_name_equals(const char *proto_name, const char *key)
{
    char *jn = pbjson_json_name(proto_name);
    bool eq = strcmp(jn, key) == 0;
    free(jn);
    return eq;
}

bool pbjson_field_is_map(const ProtobufCMessageDescriptor *parent,
                         const ProtobufCFieldDescriptor *f)
{
    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return false;
    const ProtobufCMessageDescriptor *e = f->descriptor;
    if (e->n_fields != 2 || e->fields[0].id != 1 || e->fields[1].id != 2 ||
        strcmp(e->fields[0].name, "key") != 0 || strcmp(e->fields[1].name, "value") != 0)
        return false;
    /* protoc names the entry <FieldInCamelCase>Entry, nested in the parent,
     * and refuses any user type of that name. */
    strbuf want = { 0 };
    strbuf_puts(&want, parent->name);
    strbuf_putc(&want, '.');
    bool cap = true;
    for (const char *p = f->name; *p; p++) {
        if (*p == '_') {
            cap = true;
        } else {
            if (cap)
                strbuf_putc(&want, ascii_upper(*p));
            else
                strbuf_putc(&want, *p);
            cap = false;
        }
    }
    strbuf_puts(&want, "Entry");
    bool is_map = strcmp(want.data, e->name) == 0;
    strbuf_fini(&want);
    return is_map;
}

/* ---- well-known types ---- */

typedef enum {
    WKT_NONE = 0,
    WKT_TIMESTAMP,
    WKT_DURATION,
    WKT_FIELD_MASK,
    WKT_WRAPPER,
    WKT_STRUCT,
    WKT_VALUE,
    WKT_LIST_VALUE,
    WKT_ANY,
    WKT_EMPTY,
} wkt_kind;

static wkt_kind wkt_of(const ProtobufCMessageDescriptor *d)
{
    static const struct {
        const char *name;
        wkt_kind kind;
    } table[] = {
        { "google.protobuf.Timestamp", WKT_TIMESTAMP },
        { "google.protobuf.Duration", WKT_DURATION },
        { "google.protobuf.FieldMask", WKT_FIELD_MASK },
        { "google.protobuf.DoubleValue", WKT_WRAPPER },
        { "google.protobuf.FloatValue", WKT_WRAPPER },
        { "google.protobuf.Int64Value", WKT_WRAPPER },
        { "google.protobuf.UInt64Value", WKT_WRAPPER },
        { "google.protobuf.Int32Value", WKT_WRAPPER },
        { "google.protobuf.UInt32Value", WKT_WRAPPER },
        { "google.protobuf.BoolValue", WKT_WRAPPER },
        { "google.protobuf.StringValue", WKT_WRAPPER },
        { "google.protobuf.BytesValue", WKT_WRAPPER },
        { "google.protobuf.Struct", WKT_STRUCT },
        { "google.protobuf.Value", WKT_VALUE },
        { "google.protobuf.ListValue", WKT_LIST_VALUE },
        { "google.protobuf.Any", WKT_ANY },
        { "google.protobuf.Empty", WKT_EMPTY },
    };
    if (strncmp(d->name, "google.protobuf.", 16) != 0)
        return WKT_NONE;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].name, d->name) == 0)
            return table[i].kind;
    }
    return WKT_NONE;
}

bool pbjson_is_wkt(const ProtobufCMessageDescriptor *d)
{
    /* Empty is {} either way, but listing it keeps callers (the CLI's flag
     * generator) from descending into it. */
    return wkt_of(d) != WKT_NONE;
}

/* ---- field storage helpers ---- */

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static void *fmember(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (char *)m + f->offset;
}

static void *fquant(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (char *)m + f->quantifier_offset;
}

static const ProtobufCFieldDescriptor *field_named(const ProtobufCMessageDescriptor *d,
                                                   const char *name)
{
    return protobuf_c_message_descriptor_get_field_by_name(d, name);
}

/* Is a singular field present (worth emitting)? */
static bool field_is_set(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const void *p = fmember(m, f);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)fquant(m, f) == f->id;
    if (f->label == PROTOBUF_C_LABEL_REQUIRED)
        return true;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            const char *s = *(char *const *)p;
            return s != NULL && s != f->default_value;
        }
        if (f->type == PROTOBUF_C_TYPE_MESSAGE)
            return *(ProtobufCMessage *const *)p != NULL;
        return *(const protobuf_c_boolean *)fquant(m, f) != 0;
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return *(const uint32_t *)p != 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)p != 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p != 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p != 0;
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)p != 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s != NULL && s[0] != '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len > 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p != NULL;
    }
    return false;
}

/* Marks a singular field present (oneof case or has_ flag). */
static void field_mark_set(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        *(uint32_t *)fquant(m, f) = f->id;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
               f->type != PROTOBUF_C_TYPE_MESSAGE) {
        *(protobuf_c_boolean *)fquant(m, f) = 1;
    }
}

static ProtobufCMessage *msg_new(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = xmalloc(d->sizeof_message);
    protobuf_c_message_init(d, m);
    return m;
}

/* ---- base64 ---- */

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *pbjson_base64_encode(const uint8_t *data, size_t len)
{
    char *out = xmalloc((len + 2) / 3 * 4 + 1);
    size_t j = 0;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        out[j++] = b64_std[(v >> 18) & 63];
        out[j++] = b64_std[(v >> 12) & 63];
        out[j++] = b64_std[(v >> 6) & 63];
        out[j++] = b64_std[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)data[i + 1] << 8;
        out[j++] = b64_std[(v >> 18) & 63];
        out[j++] = b64_std[(v >> 12) & 63];
        out[j++] = b64_std[(v >> 6) & 63];
        if (i + 1 >= len)
            out[j - 1] = '=';
        out[j++] = '=';
    }
    out[j] = '\0';
    return out;
}

static int b64_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+' || ch == '-')
        return 62;
    if (ch == '/' || ch == '_')
        return 63;
    return -1;
}

bool pbjson_base64_decode(const char *s, size_t len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    size_t pad = 0;
    while (len > 0 && s[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if (pad > 0 && (len + pad) % 4 != 0)
        return false;
    if (len % 4 == 1)
        return false;
    uint8_t *buf = xmalloc(len / 4 * 3 + 3);
    size_t j = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(s[i]);
        if (v < 0) {
            free(buf);
            return false;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[j++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) { /* non-canonical trailing bits */
        free(buf);
        return false;
    }
    *out = buf;
    *out_len = j;
    return true;
}

/* ---- Timestamp and Duration text ---- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static void put_nanos(char *buf, size_t cap, int32_t nanos)
{
    if (nanos == 0)
        buf[0] = '\0';
    else if (nanos % 1000000 == 0)
        (void)snprintf(buf, cap, ".%03d", (int)(nanos / 1000000));
    else if (nanos % 1000 == 0)
        (void)snprintf(buf, cap, ".%06d", (int)(nanos / 1000));
    else
        (void)snprintf(buf, cap, ".%09d", (int)nanos);
}

bool pbjson_format_timestamp(int64_t seconds, int32_t nanos, char *buf, size_t cap)
{
    if (seconds < TS_MIN_SECONDS || seconds > TS_MAX_SECONDS || nanos < 0 || nanos > 999999999)
        return false;
    int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
    int64_t rem = seconds - days * 86400;
    int64_t y;
    int mo, d;
    civil_from_days(days, &y, &mo, &d);
    char frac[16];
    put_nanos(frac, sizeof frac, nanos);
    int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", (int)y, mo, d, (int)(rem / 3600),
                     (int)(rem / 60 % 60), (int)(rem % 60), frac);
    return n > 0 && (size_t)n < cap;
}

/* Reads exactly n digits. */
static bool read_digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*s)[i];
        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + (ch - '0');
    }
    *s += n;
    *out = v;
    return true;
}

/* ".123" -> nanos; up to 9 digits. Leaves *s after the digits. */
static bool read_fraction(const char **s, int32_t *nanos)
{
    *nanos = 0;
    if (**s != '.')
        return true;
    (*s)++;
    int digits = 0;
    int32_t v = 0;
    while (**s >= '0' && **s <= '9') {
        if (++digits > 9)
            return false;
        v = v * 10 + (**s - '0');
        (*s)++;
    }
    if (digits == 0)
        return false;
    for (int i = digits; i < 9; i++)
        v *= 10;
    *nanos = v;
    return true;
}

bool pbjson_parse_timestamp(const char *s, int64_t *seconds, int32_t *nanos)
{
    int y, mo, d, h, mi, sec;
    if (!read_digits(&s, 4, &y) || *s++ != '-' || !read_digits(&s, 2, &mo) || *s++ != '-' ||
        !read_digits(&s, 2, &d))
        return false;
    if (*s != 'T' && *s != 't')
        return false;
    s++;
    if (!read_digits(&s, 2, &h) || *s++ != ':' || !read_digits(&s, 2, &mi) || *s++ != ':' ||
        !read_digits(&s, 2, &sec))
        return false;
    int32_t ns;
    if (!read_fraction(&s, &ns))
        return false;
    int64_t offset_s = 0;
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s == '-' ? -1 : 1;
        int oh, om;
        s++;
        if (!read_digits(&s, 2, &oh) || *s++ != ':' || !read_digits(&s, 2, &om) || oh > 23 ||
            om > 59)
            return false;
        offset_s = (int64_t)sign * (oh * 3600 + om * 60);
    } else {
        return false;
    }
    if (*s != '\0')
        return false;
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap))
        return false;
    int64_t t =
        days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec - offset_s;
    if (t < TS_MIN_SECONDS || t > TS_MAX_SECONDS)
        return false;
    *seconds = t;
    *nanos = ns;
    return true;
}

bool pbjson_format_duration(int64_t seconds, int32_t nanos, char *buf, size_t cap)
{
    if (seconds < -DUR_MAX_SECONDS || seconds > DUR_MAX_SECONDS || nanos < -999999999 ||
        nanos > 999999999 || (seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0))
        return false;
    bool neg = seconds < 0 || nanos < 0;
    char frac[16];
    put_nanos(frac, sizeof frac, nanos < 0 ? -nanos : nanos);
    int n = snprintf(buf, cap, "%s%" PRId64 "%ss", neg ? "-" : "", seconds < 0 ? -seconds : seconds,
                     frac);
    return n > 0 && (size_t)n < cap;
}

bool pbjson_parse_duration(const char *s, int64_t *seconds, int32_t *nanos)
{
    bool neg = false;
    if (*s == '-') {
        neg = true;
        s++;
    }
    if (*s < '0' || *s > '9')
        return false;
    int64_t v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s - '0');
        if (v > DUR_MAX_SECONDS)
            return false;
        s++;
    }
    int32_t ns;
    if (!read_fraction(&s, &ns))
        return false;
    if (s[0] != 's' || s[1] != '\0')
        return false;
    *seconds = neg ? -v : v;
    *nanos = neg ? -ns : ns;
    return true;
}

/* ---- JSON text ---- */

status pbjson_parse(const char *text, size_t len, json_object **out, char **err)
{
    status st = ST_INVALID;
    json_tokener *tok = NULL;
    char *copy = NULL;
    json_object *j = NULL;

    *out = NULL;
    *err = NULL;
    if (len > INT_MAX - 1) {
        *err = xstrdup("JSON input too large");
        goto out;
    }
    /* json-c needs the terminating NUL to finish a top-level number. */
    copy = xmalloc(len + 1);
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (memchr(copy, '\0', len) != NULL) {
        *err = xstrdup("JSON input contains a NUL byte");
        goto out;
    }
    tok = json_tokener_new_ex(PBJSON_MAX_DEPTH);
    if (!tok) {
        *err = xstrdup("cannot allocate JSON parser");
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    j = json_tokener_parse_ex(tok, copy, (int)len + 1);
    enum json_tokener_error e = json_tokener_get_error(tok);
    if (e != json_tokener_success) {
        size_t at = json_tokener_get_parse_end(tok);
        const char *why = json_tokener_error_desc(e);
        if (e == json_tokener_error_parse_utf8_string)
            why = "not valid UTF-8";
        else if (at >= len)
            why = "unexpected end of input";
        *err = xasprintf("invalid JSON at byte %zu: %s", at, why);
        goto out;
    }
    *out = j;
    j = NULL;
    st = ST_OK;
out:
    json_object_put(j);
    if (tok)
        json_tokener_free(tok);
    free(copy);
    return st;
}

/* ======================= encoding ======================= */

/* "PLATFORM_X" of enum Platform -> "x"; "PROFILE_STATE_ACTIVE" of
 * ProfileState -> "active". Names without the enum's prefix (health's
 * "SERVING") stay as they are. New string. */
static char *enum_short_name(const ProtobufCEnumDescriptor *ed, const char *name)
{
    strbuf prefix = { 0 };
    const char *sn = ed->short_name;
    for (size_t i = 0; sn[i]; i++) {
        char ch = sn[i];
        bool upper = ch >= 'A' && ch <= 'Z';
        if (upper && i > 0 &&
            ((sn[i - 1] >= 'a' && sn[i - 1] <= 'z') || (sn[i - 1] >= '0' && sn[i - 1] <= '9')))
            strbuf_putc(&prefix, '_');
        strbuf_putc(&prefix, ascii_upper(ch));
    }
    strbuf_putc(&prefix, '_');
    bool has_prefix = strncmp(name, prefix.data, prefix.len) == 0 && name[prefix.len] != '\0';
    char *out = xstrdup(has_prefix ? name + prefix.len : name);
    for (char *p = out; *p && has_prefix; p++)
        *p = (*p == '_') ? '-' : ascii_lower(*p); /* NOLINT(bugprone-narrowing-conversions) */
    strbuf_fini(&prefix);
    return out;
}

static status enc_message(jctx *c, const ProtobufCMessage *m, json_object **out);

static json_object *json_double(double d, bool is_float)
{
    if (isnan(d))
        return json_object_new_string("NaN");
    if (isinf(d))
        return json_object_new_string(d > 0 ? "Infinity" : "-Infinity");
    char buf[40];
    /* The shortest representation that reads back to the same value. */
    for (int prec = is_float ? 6 : 15; prec <= 17; prec++) {
        (void)snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (is_float ? strtof(buf, NULL) == (float)d : strtod(buf, NULL) == d)
            break;
    }
    return json_object_new_double_s(d, buf);
}

static status enc_string(jctx *c, const char *s, json_object **out)
{
    if (s == NULL)
        s = "";
    size_t n = strlen(s);
    if (!utf8_valid(s, n))
        return jfail(c, "string is not valid UTF-8");
    *out = json_object_new_string_len(s, (int)n);
    return ST_OK;
}

/* One value of field f stored at p (a singular field or one array slot). */
static status enc_value(jctx *c, const ProtobufCFieldDescriptor *f, const void *p,
                        json_object **out)
{
    char buf[32];
    *out = NULL;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *out = json_object_new_int(*(const int32_t *)p);
        return ST_OK;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *out = json_object_new_int64(*(const uint32_t *)p);
        return ST_OK;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        (void)snprintf(buf, sizeof buf, "%" PRId64, *(const int64_t *)p);
        *out = json_object_new_string(buf);
        return ST_OK;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        (void)snprintf(buf, sizeof buf, "%" PRIu64, *(const uint64_t *)p);
        *out = json_object_new_string(buf);
        return ST_OK;
    case PROTOBUF_C_TYPE_FLOAT:
        *out = json_double(*(const float *)p, true);
        return ST_OK;
    case PROTOBUF_C_TYPE_DOUBLE:
        *out = json_double(*(const double *)p, false);
        return ST_OK;
    case PROTOBUF_C_TYPE_BOOL:
        *out = json_object_new_boolean(*(const protobuf_c_boolean *)p != 0);
        return ST_OK;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        if (strcmp(ed->name, "google.protobuf.NullValue") == 0)
            return ST_OK; /* null */
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);
        if (ev && c->o->enums_short) {
            char *short_name = enum_short_name(ed, ev->name);
            *out = json_object_new_string(short_name);
            free(short_name);
        } else if (ev && !c->o->enums_as_ints) {
            *out = json_object_new_string(ev->name);
        } else {
            *out = json_object_new_int(v);
        }
        return ST_OK;
    }
    case PROTOBUF_C_TYPE_STRING:
        return enc_string(c, *(char *const *)p, out);
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        char *s = pbjson_base64_encode(b->data, b->len);
        *out = json_object_new_string(s);
        free(s);
        return ST_OK;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (sub == NULL)
            return ST_OK; /* only reachable for repeated slots left NULL */
        return enc_message(c, sub, out);
    }
    }
    return jfail(c, "unsupported field type %d", (int)f->type);
}

static status enc_map_key(jctx *c, const ProtobufCFieldDescriptor *kf, const void *p, char *buf,
                          size_t cap, const char **key)
{
    switch (kf->type) {
    case PROTOBUF_C_TYPE_STRING:
        *key = *(char *const *)p ? *(char *const *)p : "";
        if (!utf8_valid(*key, strlen(*key)))
            return jfail(c, "map key is not valid UTF-8");
        return ST_OK;
    case PROTOBUF_C_TYPE_BOOL:
        *key = *(const protobuf_c_boolean *)p ? "true" : "false";
        return ST_OK;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        (void)snprintf(buf, cap, "%" PRId32, *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        (void)snprintf(buf, cap, "%" PRIu32, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        (void)snprintf(buf, cap, "%" PRId64, *(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        (void)snprintf(buf, cap, "%" PRIu64, *(const uint64_t *)p);
        break;
    default:
        return jfail(c, "unsupported map key type");
    }
    *key = buf;
    return ST_OK;
}

static status enc_field(jctx *c, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                        json_object **out)
{
    status st = ST_OK;
    json_object *res = NULL;
    json_object *v = NULL;

    *out = NULL;
    if (f->label != PROTOBUF_C_LABEL_REPEATED)
        return enc_value(c, f, fmember(m, f), out);

    size_t n = *(const size_t *)fquant(m, f);
    const char *arr = *(char *const *)fmember(m, f);
    size_t sz = elem_size(f->type);
    if (pbjson_field_is_map(m->descriptor, f)) {
        res = json_object_new_object();
        for (size_t i = 0; i < n; i++) {
            const ProtobufCMessage *e = ((ProtobufCMessage *const *)(const void *)arr)[i];
            const ProtobufCFieldDescriptor *kf = &e->descriptor->fields[0];
            const ProtobufCFieldDescriptor *vf = &e->descriptor->fields[1];
            char kbuf[32];
            const char *key = NULL;
            st = enc_map_key(c, kf, fmember(e, kf), kbuf, sizeof kbuf, &key);
            if (st != ST_OK)
                goto out;
            size_t mark = path_push_key(c, key);
            if (vf->type == PROTOBUF_C_TYPE_MESSAGE &&
                *(ProtobufCMessage *const *)fmember(e, vf) == NULL) {
                /* An entry without a value means the value type's default. */
                ProtobufCMessage *tmp = msg_new(vf->descriptor);
                st = enc_message(c, tmp, &v);
                protobuf_c_message_free_unpacked(tmp, NULL);
            } else {
                st = enc_value(c, vf, fmember(e, vf), &v);
            }
            path_pop(c, mark);
            if (st != ST_OK)
                goto out;
            json_object_object_add(res, key, v);
            v = NULL;
        }
    } else {
        res = json_object_new_array_ext((int)n);
        for (size_t i = 0; i < n; i++) {
            size_t mark = path_push_index(c, i);
            st = enc_value(c, f, arr + i * sz, &v);
            path_pop(c, mark);
            if (st != ST_OK)
                goto out;
            json_object_array_add(res, v);
            v = NULL;
        }
    }
    *out = res;
    res = NULL;
out:
    json_object_put(v);
    json_object_put(res);
    return st;
}

static status enc_any(jctx *c, const ProtobufCMessage *m, json_object **out)
{
    status st = ST_OK;
    ProtobufCMessage *inner = NULL;
    json_object *ij = NULL;
    json_object *res = NULL;

    const ProtobufCFieldDescriptor *tf = field_named(m->descriptor, "type_url");
    const ProtobufCFieldDescriptor *vf = field_named(m->descriptor, "value");
    if (!tf || !vf)
        return jfail(c, "malformed google.protobuf.Any descriptor");
    const char *url = *(char *const *)fmember(m, tf);
    const ProtobufCBinaryData *val = fmember(m, vf);
    if (url == NULL || url[0] == '\0') {
        *out = json_object_new_object();
        return ST_OK;
    }
    const char *slash = strrchr(url, '/');
    const char *tname = slash ? slash + 1 : url;
    const ProtobufCMessageDescriptor *d =
        c->o->resolve ? c->o->resolve(tname, c->o->resolve_user) : NULL;
    if (!d) {
        st = jfail(c, "cannot resolve Any type \"%s\"", url);
        goto out;
    }
    inner = protobuf_c_message_unpack(d, NULL, val->len, val->data);
    if (!inner) {
        st = jfail(c, "Any value does not parse as %s", d->name);
        goto out;
    }
    st = enc_message(c, inner, &ij);
    if (st != ST_OK)
        goto out;
    res = json_object_new_object();
    json_object_object_add(res, "@type", json_object_new_string(url));
    if (wkt_of(d) != WKT_NONE) {
        json_object_object_add(res, "value", ij);
        ij = NULL;
    } else {
        json_object_object_foreach(ij, k, v)
        {
            json_object_object_add(res, k, json_object_get(v));
        }
    }
    *out = res;
    res = NULL;
out:
    json_object_put(res);
    json_object_put(ij);
    if (inner)
        protobuf_c_message_free_unpacked(inner, NULL);
    return st;
}

static status enc_wkt(jctx *c, wkt_kind k, const ProtobufCMessage *m, json_object **out)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    char buf[64];
    *out = NULL;
    switch (k) {
    case WKT_TIMESTAMP:
    case WKT_DURATION: {
        const ProtobufCFieldDescriptor *sf = field_named(d, "seconds");
        const ProtobufCFieldDescriptor *nf = field_named(d, "nanos");
        if (!sf || !nf)
            return jfail(c, "malformed %s descriptor", d->name);
        int64_t s = *(const int64_t *)fmember(m, sf);
        int32_t n = *(const int32_t *)fmember(m, nf);
        bool ok = k == WKT_TIMESTAMP ? pbjson_format_timestamp(s, n, buf, sizeof buf)
                                     : pbjson_format_duration(s, n, buf, sizeof buf);
        if (!ok)
            return jfail(c, "%s out of range (seconds %" PRId64 ", nanos %" PRId32 ")", d->name, s,
                         n);
        *out = json_object_new_string(buf);
        return ST_OK;
    }
    case WKT_FIELD_MASK: {
        const ProtobufCFieldDescriptor *pf = field_named(d, "paths");
        size_t n = *(const size_t *)fquant(m, pf);
        char *const *paths = *(char **const *)fmember(m, pf);
        strbuf sb = { 0 };
        strbuf_puts(&sb, "");
        for (size_t i = 0; i < n; i++) {
            if (!utf8_valid(paths[i], strlen(paths[i]))) {
                strbuf_fini(&sb);
                return jfail(c, "FieldMask path %zu is not valid UTF-8", i);
            }
            if (i > 0)
                strbuf_putc(&sb, ',');
            for (const char *p = paths[i]; *p; p++) {
                if (*p >= 'A' && *p <= 'Z') {
                    strbuf_fini(&sb);
                    return jfail(c, "FieldMask path \"%s\" is not snake_case", paths[i]);
                }
                if (*p == '_' && p[1] >= 'a' && p[1] <= 'z') {
                    strbuf_putc(&sb, (char)(p[1] - 'a' + 'A'));
                    p++;
                } else {
                    strbuf_putc(&sb, *p);
                }
            }
        }
        *out = json_object_new_string(sb.data);
        strbuf_fini(&sb);
        return ST_OK;
    }
    case WKT_WRAPPER: {
        const ProtobufCFieldDescriptor *vf = field_named(d, "value");
        return enc_value(c, vf, fmember(m, vf), out);
    }
    case WKT_STRUCT: {
        const ProtobufCFieldDescriptor *ff = field_named(d, "fields");
        return enc_field(c, m, ff, out);
    }
    case WKT_LIST_VALUE: {
        const ProtobufCFieldDescriptor *vf = field_named(d, "values");
        return enc_field(c, m, vf, out);
    }
    case WKT_VALUE: {
        for (unsigned i = 0; i < d->n_fields; i++) {
            const ProtobufCFieldDescriptor *f = &d->fields[i];
            if (!field_is_set(m, f))
                continue;
            if (f->type == PROTOBUF_C_TYPE_DOUBLE && !isfinite(*(const double *)fmember(m, f)))
                return jfail(c, "google.protobuf.Value cannot hold NaN or Infinity");
            return enc_value(c, f, fmember(m, f), out);
        }
        return ST_OK; /* no kind set: null */
    }
    case WKT_ANY:
        return enc_any(c, m, out);
    case WKT_EMPTY:
        *out = json_object_new_object();
        return ST_OK;
    case WKT_NONE:
        break;
    }
    return jfail(c, "not a well-known type");
}

static status enc_message(jctx *c, const ProtobufCMessage *m, json_object **out)
{
    status st = ST_OK;
    json_object *obj = NULL;
    json_object *v = NULL;
    const ProtobufCMessageDescriptor *d = m->descriptor;

    *out = NULL;
    if (++c->depth > PBJSON_MAX_DEPTH) {
        st = jfail(c, "message nesting deeper than %d", PBJSON_MAX_DEPTH);
        goto out;
    }
    wkt_kind k = wkt_of(d);
    if (k != WKT_NONE) {
        st = enc_wkt(c, k, m, out);
        goto out;
    }
    obj = json_object_new_object();
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (*(const size_t *)fquant(m, f) == 0 && !c->o->emit_defaults)
                continue;
        } else if (!field_is_set(m, f)) {
            bool plain = f->label == PROTOBUF_C_LABEL_NONE &&
                         !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                         f->type != PROTOBUF_C_TYPE_MESSAGE;
            if (!(c->o->emit_defaults && plain))
                continue;
        }
        char *jname = c->o->original_names ? xstrdup(f->name) : pbjson_json_name(f->name);
        size_t mark = path_push_field(c, jname);
        st = enc_field(c, m, f, &v);
        path_pop(c, mark);
        if (st != ST_OK) {
            free(jname);
            goto out;
        }
        json_object_object_add(obj, jname, v);
        v = NULL;
        free(jname);
    }
    *out = obj;
    obj = NULL;
out:
    c->depth--;
    json_object_put(v);
    json_object_put(obj);
    return st;
}

status pbjson_encode(const ProtobufCMessage *msg, const pbjson_options *o, json_object **out,
                     char **err)
{
    jctx c = { .o = o ? o : &default_options };
    *err = NULL;
    status st = enc_message(&c, msg, out);
    if (st != ST_OK) {
        *err = c.err ? c.err : xstrdup("cannot encode message");
        c.err = NULL;
    }
    free(c.err);
    strbuf_fini(&c.path);
    return st;
}

char *pbjson_encode_string(const ProtobufCMessage *msg, const pbjson_options *o, int json_c_flags,
                           char **err)
{
    json_object *j = NULL;
    if (pbjson_encode(msg, o, &j, err) != ST_OK)
        return NULL;
    char *s =
        xstrdup(json_object_to_json_string_ext(j, json_c_flags | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(j);
    return s;
}

/* ======================= decoding ======================= */

static status dec_message_into(jctx *c, json_object *j, ProtobufCMessage *m);

static const char *jtype_name(json_object *j)
{
    switch (json_object_get_type(j)) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "a boolean";
    case json_type_double:
    case json_type_int:
        return "a number";
    case json_type_object:
        return "an object";
    case json_type_array:
        return "an array";
    case json_type_string:
        return "a string";
    }
    return "a value";
}

/* Parses a decimal integer string exactly ("-12"; no '+', no spaces). */
static bool parse_i64_text(const char *s, int64_t *out)
{
    if (*s == '\0' || (s[0] == '-' && s[1] == '\0'))
        return false;
    for (const char *p = (*s == '-') ? s + 1 : s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
    }
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

static bool parse_u64_text(const char *s, uint64_t *out)
{
    if (*s == '\0')
        return false;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* A double that holds an exact integer within [lo, hi]. */
static bool double_to_i64(double d, double lo, double hi, int64_t *out)
{
    if (!isfinite(d) || d != trunc(d) || d < lo || d > hi)
        return false;
    *out = (int64_t)d;
    return true;
}

static status dec_signed(jctx *c, json_object *j, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t v = 0;
    switch (json_object_get_type(j)) {
    case json_type_int:
        v = json_object_get_int64(j);
        if (v == INT64_MAX && json_object_get_uint64(j) > (uint64_t)INT64_MAX)
            return jfail(c, "integer out of range");
        break;
    case json_type_double:
        if (!double_to_i64(json_object_get_double(j), -9223372036854775808.0, 9223372036854774784.0,
                           &v))
            return jfail(c, "expected an integer, got %s", json_object_get_string(j));
        break;
    case json_type_string:
        if (!parse_i64_text(json_object_get_string(j), &v)) {
            /* "1e3" and "5.0" are integers in the proto3 mapping too. */
            char *end = NULL;
            const char *s = json_object_get_string(j);
            double d = strtod(s, &end);
            if (*s == '\0' || *end != '\0' || strpbrk(s, "xXnNiI") != NULL ||
                !double_to_i64(d, -9223372036854775808.0, 9223372036854774784.0, &v))
                return jfail(c, "expected an integer, got \"%s\"", s);
        }
        break;
    default:
        return jfail(c, "expected an integer, got %s", jtype_name(j));
    }
    if (v < lo || v > hi)
        return jfail(c, "integer %" PRId64 " out of range [%" PRId64 ", %" PRId64 "]", v, lo, hi);
    *out = v;
    return ST_OK;
}

static status dec_unsigned(jctx *c, json_object *j, uint64_t hi, uint64_t *out)
{
    uint64_t v = 0;
    int64_t sv = 0;
    switch (json_object_get_type(j)) {
    case json_type_int:
        if (json_object_get_int64(j) < 0)
            return jfail(c, "expected a non-negative integer, got %" PRId64,
                         json_object_get_int64(j));
        v = json_object_get_uint64(j);
        break;
    case json_type_double:
        if (!double_to_i64(json_object_get_double(j), 0, 9223372036854774784.0, &sv))
            return jfail(c, "expected a non-negative integer, got %s", json_object_get_string(j));
        v = (uint64_t)sv;
        break;
    case json_type_string:
        if (!parse_u64_text(json_object_get_string(j), &v)) {
            char *end = NULL;
            const char *s = json_object_get_string(j);
            double d = strtod(s, &end);
            if (*s == '\0' || *end != '\0' || strpbrk(s, "xXnNiI") != NULL ||
                !double_to_i64(d, 0, 9223372036854774784.0, &sv))
                return jfail(c, "expected a non-negative integer, got \"%s\"", s);
            v = (uint64_t)sv;
        }
        break;
    default:
        return jfail(c, "expected an integer, got %s", jtype_name(j));
    }
    if (v > hi)
        return jfail(c, "integer %" PRIu64 " out of range [0, %" PRIu64 "]", v, hi);
    *out = v;
    return ST_OK;
}

static status dec_double(jctx *c, json_object *j, bool is_float, double *out)
{
    double d;
    switch (json_object_get_type(j)) {
    case json_type_int:
    case json_type_double:
        d = json_object_get_double(j);
        if (!isfinite(d))
            return jfail(c, "NaN and Infinity must be quoted strings");
        break;
    case json_type_string: {
        const char *s = json_object_get_string(j);
        if (strcmp(s, "NaN") == 0) {
            d = NAN;
        } else if (strcmp(s, "Infinity") == 0) {
            d = INFINITY;
        } else if (strcmp(s, "-Infinity") == 0) {
            d = -INFINITY;
        } else {
            char *end = NULL;
            errno = 0;
            d = strtod(s, &end);
            if (*s == '\0' || *end != '\0' || strpbrk(s, "xXnNiI") != NULL || !isfinite(d))
                return jfail(c, "expected a number, got \"%s\"", s);
        }
        break;
    }
    default:
        return jfail(c, "expected a number, got %s", jtype_name(j));
    }
    if (is_float && isfinite(d) && (d > FLT_MAX || d < -FLT_MAX))
        return jfail(c, "number %g out of float range", d);
    *out = d;
    return ST_OK;
}

static status dec_string(jctx *c, json_object *j, char **out)
{
    if (!json_object_is_type(j, json_type_string))
        return jfail(c, "expected a string, got %s", jtype_name(j));
    const char *s = json_object_get_string(j);
    size_t n = (size_t)json_object_get_string_len(j);
    if (memchr(s, '\0', n) != NULL)
        return jfail(c, "string contains a NUL character");
    if (!utf8_valid(s, n))
        return jfail(c, "string is not valid UTF-8");
    *out = xstrndup(s, n);
    return ST_OK;
}

/* Decodes one value of f's type from j into dst (a field or array slot).
 * dst must hold a zero/default value; on failure it holds either that or
 * memory that free_unpacked releases. */
static status dec_value(jctx *c, const ProtobufCFieldDescriptor *f, json_object *j, void *dst)
{
    status st;
    int64_t sv = 0;
    uint64_t uv = 0;
    double d = 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        st = dec_signed(c, j, INT32_MIN, INT32_MAX, &sv);
        if (st == ST_OK)
            *(int32_t *)dst = (int32_t)sv;
        return st;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        st = dec_signed(c, j, INT64_MIN, INT64_MAX, &sv);
        if (st == ST_OK)
            *(int64_t *)dst = sv;
        return st;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        st = dec_unsigned(c, j, UINT32_MAX, &uv);
        if (st == ST_OK)
            *(uint32_t *)dst = (uint32_t)uv;
        return st;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        st = dec_unsigned(c, j, UINT64_MAX, &uv);
        if (st == ST_OK)
            *(uint64_t *)dst = uv;
        return st;
    case PROTOBUF_C_TYPE_FLOAT:
        st = dec_double(c, j, true, &d);
        if (st == ST_OK)
            *(float *)dst = (float)d;
        return st;
    case PROTOBUF_C_TYPE_DOUBLE:
        st = dec_double(c, j, false, &d);
        if (st == ST_OK)
            *(double *)dst = d;
        return st;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_object_is_type(j, json_type_boolean))
            return jfail(c, "expected true or false, got %s", jtype_name(j));
        *(protobuf_c_boolean *)dst = json_object_get_boolean(j) ? 1 : 0;
        return ST_OK;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        if (json_object_is_type(j, json_type_null)) {
            *(int *)dst = 0; /* NullValue, or the default */
            return ST_OK;
        }
        if (json_object_is_type(j, json_type_string)) {
            const ProtobufCEnumValue *ev =
                protobuf_c_enum_descriptor_get_value_by_name(ed, json_object_get_string(j));
            if (!ev)
                return jfail(c, "unknown value \"%s\" for enum %s", json_object_get_string(j),
                             ed->name);
            *(int *)dst = ev->value;
            return ST_OK;
        }
        if (json_object_is_type(j, json_type_int) || json_object_is_type(j, json_type_double)) {
            st = dec_signed(c, j, INT32_MIN, INT32_MAX, &sv);
            if (st == ST_OK)
                *(int *)dst = (int)sv;
            return st;
        }
        return jfail(c, "expected an enum name or number for %s, got %s", ed->name, jtype_name(j));
    }
    case PROTOBUF_C_TYPE_STRING: {
        char *s = NULL;
        st = dec_string(c, j, &s);
        if (st == ST_OK)
            *(char **)dst = s;
        return st;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        if (!json_object_is_type(j, json_type_string))
            return jfail(c, "expected a base64 string, got %s", jtype_name(j));
        uint8_t *data = NULL;
        size_t len = 0;
        if (!pbjson_base64_decode(json_object_get_string(j), (size_t)json_object_get_string_len(j),
                                  &data, &len))
            return jfail(c, "invalid base64");
        ProtobufCBinaryData *b = dst;
        if (len == 0) {
            free(data);
            data = NULL;
        }
        b->data = data;
        b->len = len;
        return ST_OK;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *sub = msg_new(f->descriptor);
        *(ProtobufCMessage **)dst = sub; /* attached first: freed with the parent */
        return dec_message_into(c, j, sub);
    }
    }
    return jfail(c, "unsupported field type %d", (int)f->type);
}

static status dec_map_key(jctx *c, const ProtobufCFieldDescriptor *kf, const char *key, void *dst)
{
    status st;
    json_object *kj = NULL;
    if (kf->type == PROTOBUF_C_TYPE_BOOL) {
        if (strcmp(key, "true") == 0)
            *(protobuf_c_boolean *)dst = 1;
        else if (strcmp(key, "false") == 0)
            *(protobuf_c_boolean *)dst = 0;
        else
            return jfail(c, "map key \"%s\" is not true or false", key);
        return ST_OK;
    }
    if (kf->type != PROTOBUF_C_TYPE_STRING) {
        /* Integer keys are plain decimal text; dec_value checks the range. */
        int64_t sv;
        uint64_t uv;
        if (!parse_i64_text(key, &sv) && !parse_u64_text(key, &uv))
            return jfail(c, "map key \"%s\" is not an integer", key);
    }
    kj = json_object_new_string(key);
    st = dec_value(c, kf, kj, dst);
    json_object_put(kj);
    return st;
}

static status dec_repeated(jctx *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                           json_object *j)
{
    status st = ST_OK;
    size_t *count = fquant(m, f);
    void **arrp = fmember(m, f);
    size_t sz = elem_size(f->type);

    if (pbjson_field_is_map(m->descriptor, f)) {
        if (!json_object_is_type(j, json_type_object))
            return jfail(c, "expected an object (map), got %s", jtype_name(j));
        size_t n = (size_t)json_object_object_length(j);
        ProtobufCMessage **entries =
            xcalloc(n ? n : 1, sizeof *entries); /* NOLINT(bugprone-sizeof-expression) */
        *arrp = entries;
        *count = 0;
        const ProtobufCMessageDescriptor *ed = f->descriptor;
        const ProtobufCFieldDescriptor *kf = &ed->fields[0];
        const ProtobufCFieldDescriptor *vf = &ed->fields[1];
        json_object_object_foreach(j, key, val)
        {
            ProtobufCMessage *e = msg_new(ed);
            entries[(*count)++] = e;
            size_t mark = path_push_key(c, key);
            st = dec_map_key(c, kf, key, fmember(e, kf));
            if (st == ST_OK) {
                if (json_object_is_type(val, json_type_null) &&
                    !(vf->type == PROTOBUF_C_TYPE_MESSAGE && wkt_of(vf->descriptor) == WKT_VALUE) &&
                    !(vf->type == PROTOBUF_C_TYPE_ENUM &&
                      strcmp(((const ProtobufCEnumDescriptor *)vf->descriptor)->name,
                             "google.protobuf.NullValue") == 0))
                    st = jfail(c, "map values cannot be null");
                else
                    st = dec_value(c, vf, val, fmember(e, vf));
            }
            path_pop(c, mark);
            if (st != ST_OK)
                return st;
        }
        return ST_OK;
    }

    if (!json_object_is_type(j, json_type_array))
        return jfail(c, "expected an array, got %s", jtype_name(j));
    size_t n = json_object_array_length(j);
    char *arr = xcalloc(n ? n : 1, sz);
    *arrp = arr;
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *ej = json_object_array_get_idx(j, i);
        size_t mark = path_push_index(c, i);
        bool null_ok = (f->type == PROTOBUF_C_TYPE_MESSAGE && wkt_of(f->descriptor) == WKT_VALUE);
        if (json_object_is_type(ej, json_type_null) && !null_ok) {
            st = jfail(c, "array elements cannot be null");
        } else {
            /* Count the slot before decoding so that a partly built string or
             * message in it is released with the parent on failure. */
            (*count)++;
            st = dec_value(c, f, ej, arr + i * sz);
        }
        path_pop(c, mark);
        if (st != ST_OK)
            return st;
    }
    return ST_OK;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d,
                                                  const char *key)
{
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (json_name_equals(d->fields[i].name, key))
            return &d->fields[i];
    }
    return field_named(d, key);
}

/* Sets singular field f of m from j (not null). */
static status dec_singular(jctx *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                           json_object *j)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t cur = *(const uint32_t *)fquant(m, f);
        if (cur != 0 && cur != f->id) {
            const ProtobufCFieldDescriptor *other =
                protobuf_c_message_descriptor_get_field(m->descriptor, cur);
            return jfail(c, "fields \"%s\" and \"%s\" belong to the same oneof",
                         other ? other->name : "?", f->name);
        }
        /* The oneof storage is a union: clear it before marking the case so
         * that free_unpacked never sees another member's bits. */
        memset(fmember(m, f), 0, elem_size(f->type));
    }
    field_mark_set(m, f);
    return dec_value(c, f, j, fmember(m, f));
}

static status dec_fields(jctx *c, json_object *j, ProtobufCMessage *m)
{
    status st = ST_OK;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    bool *seen = NULL;

    if (!json_object_is_type(j, json_type_object))
        return jfail(c, "expected an object for %s, got %s", d->name, jtype_name(j));
    seen = xcalloc(d->n_fields ? d->n_fields : 1, sizeof *seen);
    json_object_object_foreach(j, key, val)
    {
        const ProtobufCFieldDescriptor *f = find_field(d, key);
        if (!f) {
            if (c->o->ignore_unknown)
                continue;
            st = jfail(c, "unknown field \"%s\" in %s", key, d->name);
            goto out;
        }
        size_t idx = (size_t)(f - d->fields);
        size_t mark = path_push_field(c, key);
        if (seen[idx]) {
            st = jfail(c, "field \"%s\" given twice", f->name);
        } else if (json_object_is_type(val, json_type_null) &&
                   !(f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED &&
                     wkt_of(f->descriptor) == WKT_VALUE)) {
            /* null: leave the field unset */
        } else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            st = dec_repeated(c, m, f, val);
        } else {
            st = dec_singular(c, m, f, val);
        }
        seen[idx] = true;
        path_pop(c, mark);
        if (st != ST_OK)
            goto out;
    }
out:
    free(seen);
    return st;
}

static status dec_any(jctx *c, json_object *j, ProtobufCMessage *m)
{
    status st = ST_OK;
    ProtobufCMessage *inner = NULL;
    json_object *rest = NULL;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const ProtobufCFieldDescriptor *tf = field_named(d, "type_url");
    const ProtobufCFieldDescriptor *vf = field_named(d, "value");

    if (!tf || !vf)
        return jfail(c, "malformed google.protobuf.Any descriptor");
    if (!json_object_is_type(j, json_type_object))
        return jfail(c, "expected an object for google.protobuf.Any, got %s", jtype_name(j));
    if (json_object_object_length(j) == 0)
        return ST_OK;
    json_object *tj = NULL;
    if (!json_object_object_get_ex(j, "@type", &tj) || !json_object_is_type(tj, json_type_string))
        return jfail(c, "google.protobuf.Any needs a string \"@type\"");
    const char *url = json_object_get_string(tj);
    const char *slash = strrchr(url, '/');
    const char *tname = slash ? slash + 1 : url;
    const ProtobufCMessageDescriptor *td =
        c->o->resolve ? c->o->resolve(tname, c->o->resolve_user) : NULL;
    if (!td)
        return jfail(c, "cannot resolve Any type \"%s\"", url);

    inner = msg_new(td);
    if (wkt_of(td) != WKT_NONE) {
        json_object *vj = NULL;
        json_object_object_get_ex(j, "value", &vj);
        json_object_object_foreach(j, k, v)
        {
            (void)v;
            if (strcmp(k, "@type") != 0 && strcmp(k, "value") != 0) {
                st = jfail(c, "unknown field \"%s\" in google.protobuf.Any", k);
                goto out;
            }
        }
        st = dec_message_into(c, vj, inner);
    } else {
        rest = json_object_new_object();
        json_object_object_foreach(j, k, v)
        {
            if (strcmp(k, "@type") != 0)
                json_object_object_add(rest, k, json_object_get(v));
        }
        st = dec_message_into(c, rest, inner);
    }
    if (st != ST_OK)
        goto out;
    size_t len = protobuf_c_message_get_packed_size(inner);
    ProtobufCBinaryData *b = fmember(m, vf);
    b->data = len ? xmalloc(len) : NULL;
    b->len = len;
    if (len)
        protobuf_c_message_pack(inner, b->data);
    *(char **)fmember(m, tf) = xstrdup(url);
out:
    json_object_put(rest);
    if (inner)
        protobuf_c_message_free_unpacked(inner, NULL);
    return st;
}

static status dec_wkt(jctx *c, wkt_kind k, json_object *j, ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    switch (k) {
    case WKT_TIMESTAMP:
    case WKT_DURATION: {
        if (!json_object_is_type(j, json_type_string))
            return jfail(c, "expected %s for %s, got %s",
                         k == WKT_TIMESTAMP ? "an RFC 3339 string" : "a string like \"1.5s\"",
                         d->name, jtype_name(j));
        int64_t s;
        int32_t n;
        const char *txt = json_object_get_string(j);
        bool ok = k == WKT_TIMESTAMP ? pbjson_parse_timestamp(txt, &s, &n)
                                     : pbjson_parse_duration(txt, &s, &n);
        if (!ok)
            return jfail(c, "invalid %s \"%s\"", d->name, txt);
        *(int64_t *)fmember(m, field_named(d, "seconds")) = s;
        *(int32_t *)fmember(m, field_named(d, "nanos")) = n;
        return ST_OK;
    }
    case WKT_FIELD_MASK: {
        if (!json_object_is_type(j, json_type_string))
            return jfail(c, "expected a comma-separated string for %s, got %s", d->name,
                         jtype_name(j));
        const char *txt = json_object_get_string(j);
        const ProtobufCFieldDescriptor *pf = field_named(d, "paths");
        size_t n = 0;
        if (txt[0] != '\0') {
            n = 1;
            for (const char *p = txt; *p; p++)
                n += *p == ',';
        }
        char **paths = xcalloc(n ? n : 1, sizeof *paths);
        *(char ***)fmember(m, pf) = paths;
        *(size_t *)fquant(m, pf) = n;
        const char *start = txt;
        for (size_t i = 0; i < n; i++) {
            const char *end = strchr(start, ',');
            if (!end)
                end = start + strlen(start);
            strbuf sb = { 0 };
            strbuf_puts(&sb, "");
            for (const char *p = start; p < end; p++) {
                if (*p >= 'A' && *p <= 'Z') {
                    strbuf_putc(&sb, '_');
                    strbuf_putc(&sb, (char)(*p - 'A' + 'a'));
                } else {
                    strbuf_putc(&sb, *p);
                }
            }
            paths[i] = strbuf_take(&sb);
            start = *end ? end + 1 : end;
        }
        return ST_OK;
    }
    case WKT_WRAPPER: {
        const ProtobufCFieldDescriptor *vf = field_named(d, "value");
        return dec_value(c, vf, j, fmember(m, vf));
    }
    case WKT_STRUCT: {
        if (!json_object_is_type(j, json_type_object))
            return jfail(c, "expected an object for %s, got %s", d->name, jtype_name(j));
        return dec_repeated(c, m, field_named(d, "fields"), j);
    }
    case WKT_LIST_VALUE:
        return dec_repeated(c, m, field_named(d, "values"), j);
    case WKT_VALUE: {
        const char *which = NULL;
        switch (json_object_get_type(j)) {
        case json_type_null:
            which = "null_value";
            break;
        case json_type_boolean:
            which = "bool_value";
            break;
        case json_type_int:
        case json_type_double:
            which = "number_value";
            break;
        case json_type_string:
            which = "string_value";
            break;
        case json_type_object:
            which = "struct_value";
            break;
        case json_type_array:
            which = "list_value";
            break;
        }
        const ProtobufCFieldDescriptor *f = field_named(d, which);
        if (!f)
            return jfail(c, "malformed google.protobuf.Value descriptor");
        return dec_singular(c, m, f, j);
    }
    case WKT_ANY:
        return dec_any(c, j, m);
    case WKT_EMPTY:
        if (!json_object_is_type(j, json_type_object) || json_object_object_length(j) != 0)
            return jfail(c, "expected {} for google.protobuf.Empty");
        return ST_OK;
    case WKT_NONE:
        break;
    }
    return jfail(c, "not a well-known type");
}

static status dec_message_into(jctx *c, json_object *j, ProtobufCMessage *m)
{
    status st;
    if (++c->depth > PBJSON_MAX_DEPTH) {
        st = jfail(c, "message nesting deeper than %d", PBJSON_MAX_DEPTH);
    } else {
        wkt_kind k = wkt_of(m->descriptor);
        st = k != WKT_NONE ? dec_wkt(c, k, j, m) : dec_fields(c, j, m);
    }
    c->depth--;
    return st;
}

status pbjson_decode(json_object *j, const ProtobufCMessageDescriptor *d, const pbjson_options *o,
                     ProtobufCMessage **out, char **err)
{
    jctx c = { .o = o ? o : &default_options };
    ProtobufCMessage *m = msg_new(d);
    *out = NULL;
    *err = NULL;
    status st = dec_message_into(&c, j, m);
    if (st == ST_OK) {
        *out = m;
        m = NULL;
    } else {
        *err = c.err ? c.err : xstrdup("cannot decode message");
        c.err = NULL;
    }
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    free(c.err);
    strbuf_fini(&c.path);
    return st;
}

status pbjson_decode_string(const char *text, size_t len, const ProtobufCMessageDescriptor *d,
                            const pbjson_options *o, ProtobufCMessage **out, char **err)
{
    json_object *j = NULL;
    *out = NULL;
    status st = pbjson_parse(text, len, &j, err);
    if (st != ST_OK)
        return st;
    st = pbjson_decode(j, d, o, out, err);
    json_object_put(j);
    return st;
}
