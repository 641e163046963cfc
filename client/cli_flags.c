/* cli_flags.c - names, and request flags generated from descriptors.
 *
 * Each field of a request message becomes a flag named after it in kebab
 * case; fields of nested messages get dotted flags (--policy.min-gap-minutes)
 * as well as a flag taking the whole message as JSON. Values are turned into
 * the proto3 JSON form and set into a JSON object that -d may have filled
 * first; pbjson then decodes the whole object, so the flags and -d follow the
 * same rules and errors. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cli.h"
#include "pbjson.h"
#include "util.h"

enum { FLAG_MAX_DEPTH = 4 };

/* ---- names ---- */

char *cli_kebab_from_camel(const char *s)
{
    strbuf b = { 0 };
    size_t n = strlen(s);
    strbuf_puts(&b, "");
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') {
            bool after_lower =
                i > 0 && (islower((unsigned char)s[i - 1]) || isdigit((unsigned char)s[i - 1]));
            bool acronym_end = i > 0 && isupper((unsigned char)s[i - 1]) && i + 1 < n &&
                               islower((unsigned char)s[i + 1]);
            if (after_lower || acronym_end)
                strbuf_putc(&b, '-');
            strbuf_putc(&b, (char)(c - 'A' + 'a'));
        } else {
            strbuf_putc(&b, (char)(c == '_' ? '-' : c));
        }
    }
    return strbuf_take(&b);
}

char *cli_kebab_from_snake(const char *s)
{
    char *out = xstrdup(s);
    for (char *p = out; *p; p++) {
        if (*p == '_')
            *p = '-';
    }
    return out;
}

char *cli_service_verb(const ProtobufCServiceDescriptor *d)
{
    const char *name = d->short_name;
    size_t n = strlen(name);
    char *base =
        (n > 7 && strcmp(name + n - 7, "Service") == 0) ? xstrndup(name, n - 7) : xstrdup(name);
    char *verb = cli_kebab_from_camel(base);
    free(base);
    return verb;
}

const registry_service *cli_find_verb(const char *verb)
{
    for (size_t i = 0; i < registry_n_services; i++) {
        if (!registry_services[i].api)
            continue;
        char *v = cli_service_verb(registry_services[i].desc);
        bool eq = strcmp(v, verb) == 0;
        free(v);
        if (eq)
            return &registry_services[i];
    }
    return NULL;
}

const ProtobufCMethodDescriptor *cli_find_verb_method(const registry_service *s, const char *method)
{
    for (unsigned i = 0; i < s->desc->n_methods; i++) {
        char *k = cli_kebab_from_camel(s->desc->methods[i].name);
        bool eq = strcmp(k, method) == 0;
        free(k);
        if (eq || strcmp(s->desc->methods[i].name, method) == 0)
            return &s->desc->methods[i];
    }
    return NULL;
}

/* ---- values ---- */

bool cli_parse_duration_ms(const char *text, int64_t *ms)
{
    char *end = NULL;
    if (!text || !*text || *text == '-' || *text == '+' || isspace((unsigned char)*text))
        return false;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || !isfinite(v) || v < 0)
        return false;
    double scale;
    if (*end == '\0' || strcmp(end, "s") == 0)
        scale = 1000;
    else if (strcmp(end, "ms") == 0)
        scale = 1;
    else if (strcmp(end, "m") == 0)
        scale = 60e3;
    else if (strcmp(end, "h") == 0)
        scale = 3600e3;
    else if (strcmp(end, "d") == 0)
        scale = 86400e3;
    else
        return false;
    double r = v * scale;
    if (r > 9.0e15)
        return false;
    *ms = (int64_t)llround(r);
    return true;
}

void cli_uuid4(char *buf)
{
    uint8_t b[16];
    size_t got = 0;
    /* getrandom on a 16-byte request does not return short except on
     * signals; bounded retries, then the clock as a last resort. */
    for (int tries = 0; tries < 8 && got < sizeof b; tries++) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
    if (got < sizeof b) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
        for (size_t i = got; i < sizeof b; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            b[i] = (uint8_t)(x >> 56);
        }
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    static const char hex[] = "0123456789abcdef";
    size_t j = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            buf[j++] = '-';
        buf[j++] = hex[b[i] >> 4];
        buf[j++] = hex[b[i] & 15];
    }
    buf[j] = '\0';
}

/* The prefix shared by an enum's value names: its name in UPPER_SNAKE plus
 * '_' when every value starts with that, else the longest common prefix
 * ending in '_'. */
static char *enum_prefix(const ProtobufCEnumDescriptor *ed)
{
    char *k = cli_kebab_from_camel(ed->short_name);
    strbuf b = { 0 };
    for (char *p = k; *p; p++)
        strbuf_putc(&b, (char)(*p == '-' ? '_' : toupper((unsigned char)*p)));
    strbuf_putc(&b, '_');
    free(k);
    bool all = true;
    for (unsigned i = 0; i < ed->n_values; i++) {
        if (strncmp(ed->values[i].name, b.data, b.len) != 0)
            all = false;
    }
    if (all || ed->n_values == 0)
        return strbuf_take(&b);
    strbuf_fini(&b);
    size_t len = strlen(ed->values[0].name);
    for (unsigned i = 1; i < ed->n_values; i++) {
        size_t j = 0;
        while (j < len && ed->values[i].name[j] == ed->values[0].name[j])
            j++;
        len = j;
    }
    while (len > 0 && ed->values[0].name[len - 1] != '_')
        len--;
    return xstrndup(ed->values[0].name, len);
}

const char *cli_enum_value(const ProtobufCEnumDescriptor *ed, const char *text)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(ed, text);
    if (v)
        return v->name;
    char *end = NULL;
    errno = 0;
    long num = strtol(text, &end, 10);
    if (*text && *end == '\0' && errno == 0) {
        v = protobuf_c_enum_descriptor_get_value(ed, (int)num);
        return v ? v->name : NULL;
    }
    char *norm = xstrdup(text);
    for (char *p = norm; *p; p++)
        *p = (char)(*p == '-' ? '_' : toupper((unsigned char)*p));
    char *prefix = enum_prefix(ed);
    size_t plen = strlen(prefix);
    const char *found = NULL;
    for (unsigned i = 0; i < ed->n_values && !found; i++) {
        const char *name = ed->values[i].name;
        if (strcmp(name, norm) == 0 ||
            (strncmp(name, prefix, plen) == 0 && strcmp(name + plen, norm) == 0))
            found = name;
    }
    free(prefix);
    free(norm);
    return found;
}

char *field_flag_enum_choices(const field_flag *ff)
{
    const ProtobufCFieldDescriptor *f = ff->field;
    if (ff->kind == FF_MAP)
        f = &((const ProtobufCMessageDescriptor *)f->descriptor)->fields[1];
    if (f->type != PROTOBUF_C_TYPE_ENUM)
        return xstrdup("");
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    char *prefix = enum_prefix(ed);
    size_t plen = strlen(prefix);
    strbuf b = { 0 };
    strbuf_puts(&b, "");
    for (unsigned i = 0; i < ed->n_values; i++) {
        const char *name = ed->values[i].name;
        size_t nlen = strlen(name);
        if (ed->values[i].value == 0 && nlen > 12 && strcmp(name + nlen - 12, "_UNSPECIFIED") == 0)
            continue;
        if (b.len > 0)
            strbuf_putc(&b, '|');
        const char *suffix = strncmp(name, prefix, plen) == 0 ? name + plen : name;
        for (const char *p = suffix; *p; p++)
            strbuf_putc(&b, (char)(*p == '_' ? '-' : tolower((unsigned char)*p)));
    }
    free(prefix);
    return strbuf_take(&b);
}

/* ---- building the flag set ---- */

static field_flag_kind kind_of(const ProtobufCMessageDescriptor *owner,
                               const ProtobufCFieldDescriptor *f)
{
    if (pbjson_field_is_map(owner, f))
        return FF_MAP;
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        return FF_BOOL;
    case PROTOBUF_C_TYPE_ENUM:
        return FF_ENUM;
    case PROTOBUF_C_TYPE_BYTES:
        return FF_BYTES;
    case PROTOBUF_C_TYPE_MESSAGE:
        return pbjson_is_wkt(f->descriptor) ? FF_WKT : FF_MESSAGE;
    default:
        return FF_SCALAR;
    }
}

static void add_flag(flag_set *fs, char *name, const ProtobufCMessageDescriptor *owner,
                     const ProtobufCFieldDescriptor *const *path, size_t depth)
{
    fs->flags = xrealloc(fs->flags, (fs->n + 1) * sizeof *fs->flags);
    field_flag *ff = &fs->flags[fs->n++];
    memset(ff, 0, sizeof *ff);
    ff->name = name;
    ff->field = path[depth - 1];
    ff->owner = owner;
    ff->kind = kind_of(owner, ff->field);
    ff->repeated = ff->field->label == PROTOBUF_C_LABEL_REPEATED;
    memcpy(ff->path, path, depth * sizeof *path); /* NOLINT(bugprone-sizeof-expression) */
    ff->depth = depth;
}

static void walk(flag_set *fs, const ProtobufCMessageDescriptor *d, const char *prefix,
                 const ProtobufCFieldDescriptor **path, size_t depth,
                 const ProtobufCMessageDescriptor **stack)
{
    stack[depth] = d;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *kebab = cli_kebab_from_snake(f->name);
        char *name = prefix ? xasprintf("%s.%s", prefix, kebab) : xstrdup(kebab);
        free(kebab);
        path[depth] = f;
        add_flag(fs, name, d, path, depth + 1);
        if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED ||
            pbjson_is_wkt(f->descriptor) || depth + 1 >= FLAG_MAX_DEPTH)
            continue;
        bool cycle = false;
        for (size_t k = 0; k <= depth; k++)
            cycle = cycle || stack[k] == f->descriptor;
        if (!cycle)
            walk(fs, f->descriptor, name, path, depth + 1, stack);
    }
}

void flag_set_build(flag_set *fs, const ProtobufCMessageDescriptor *request)
{
    const ProtobufCFieldDescriptor *path[FLAG_MAX_DEPTH + 1];
    const ProtobufCMessageDescriptor *stack[FLAG_MAX_DEPTH + 1];
    memset(fs, 0, sizeof *fs);
    fs->request = request;
    walk(fs, request, NULL, path, 0, stack);
}

void flag_set_fini(flag_set *fs)
{
    for (size_t i = 0; i < fs->n; i++)
        free(fs->flags[i].name);
    free(fs->flags);
    memset(fs, 0, sizeof *fs);
}

const field_flag *flag_set_find(const flag_set *fs, const char *name)
{
    for (size_t i = 0; i < fs->n; i++) {
        if (strcmp(fs->flags[i].name, name) == 0)
            return &fs->flags[i];
    }
    /* The proto spelling works too: --content_type. */
    char *kebab = cli_kebab_from_snake(name);
    const field_flag *found = NULL;
    for (size_t i = 0; i < fs->n && !found; i++) {
        if (strcmp(fs->flags[i].name, kebab) == 0)
            found = &fs->flags[i];
    }
    free(kebab);
    return found;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t sub = prev + (a[i - 1] != b[j - 1]);
            size_t del = row[j] + 1;
            size_t ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            prev = cur;
        }
    }
    return row[lb];
}

const char *flag_set_suggest(const flag_set *fs, const char *name)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < fs->n; i++) {
        size_t d = edit_distance(name, fs->flags[i].name);
        if (d < best_d) {
            best_d = d;
            best = fs->flags[i].name;
        }
    }
    return best;
}

const char *field_flag_type(const field_flag *ff)
{
    const ProtobufCFieldDescriptor *f = ff->field;
    switch (ff->kind) {
    case FF_MAP:
        return "key=value";
    case FF_MESSAGE:
        return "json";
    case FF_ENUM:
        return "enum";
    case FF_BOOL:
        return "bool";
    case FF_BYTES:
        return "bytes";
    case FF_WKT: {
        const char *n = ((const ProtobufCMessageDescriptor *)f->descriptor)->name;
        if (strcmp(n, "google.protobuf.Timestamp") == 0)
            return "time";
        if (strcmp(n, "google.protobuf.Duration") == 0)
            return "duration";
        if (strcmp(n, "google.protobuf.FieldMask") == 0)
            return "paths";
        return "json";
    }
    case FF_SCALAR:
        break;
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return "int32";
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return "uint32";
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return "int64";
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return "uint64";
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        return "number";
    default:
        return "string";
    }
}

/* ---- applying values ---- */

static bool parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = { "", "true", "1", "yes", "on" };
    static const char *const no[] = { "false", "0", "no", "off" };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool is_integer_text(const char *v, bool allow_sign)
{
    const char *p = v;
    if (allow_sign && *p == '-')
        p++;
    if (!*p)
        return false;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
    }
    return true;
}

/* "now", "now+2h", "now-30m", RFC 3339, or a date (midnight UTC). */
static char *time_value(const char *v)
{
    int64_t s;
    int32_t n;
    char buf[64];
    if (strncmp(v, "now", 3) == 0) {
        int64_t off_ms = 0;
        if (v[3] == '+' || v[3] == '-') {
            if (!cli_parse_duration_ms(v + 4, &off_ms))
                return NULL;
            if (v[3] == '-')
                off_ms = -off_ms;
        } else if (v[3] != '\0') {
            return NULL;
        }
        int64_t t = now_real_ms() + off_ms;
        int64_t sec = t >= 0 ? t / 1000 : -((-t + 999) / 1000);
        if (!pbjson_format_timestamp(sec, (int32_t)(t - sec * 1000) * 1000000, buf, sizeof buf))
            return NULL;
        return xstrdup(buf);
    }
    if (pbjson_parse_timestamp(v, &s, &n))
        return xstrdup(v);
    if (strlen(v) == 10) {
        char *full = xasprintf("%sT00:00:00Z", v);
        if (pbjson_parse_timestamp(full, &s, &n))
            return full;
        free(full);
    }
    return NULL;
}

static char *duration_value(const char *v)
{
    int64_t s;
    int32_t n;
    if (pbjson_parse_duration(v, &s, &n))
        return xstrdup(v);
    int64_t ms;
    if (!cli_parse_duration_ms(v, &ms))
        return NULL;
    char buf[64];
    if (!pbjson_format_duration(ms / 1000, (int32_t)(ms % 1000) * 1000000, buf, sizeof buf))
        return NULL;
    return xstrdup(buf);
}

/* "display-name,publish_target.url" -> "displayName,publishTarget.url" */
static char *mask_value(const char *v)
{
    strbuf b = { 0 };
    strbuf_puts(&b, "");
    bool upper = false;
    for (const char *p = v; *p; p++) {
        if (*p == '-' || *p == '_') {
            upper = true;
        } else if (*p == ' ') {
            continue;
        } else {
            char c = *p;
            if (upper && c >= 'a' && c <= 'z')
                c = (char)(c - 'a' + 'A');
            upper = false;
            strbuf_putc(&b, c);
        }
    }
    return strbuf_take(&b);
}

/* The JSON value for one flag value of field f (kind k). */
static bool flag_json_value(const char *flag, field_flag_kind k, const ProtobufCFieldDescriptor *f,
                            const char *v, json_object **out, char **err)
{
    *out = NULL;
    switch (k) {
    case FF_BOOL: {
        bool b;
        if (!parse_bool(v, &b)) {
            *err = xasprintf("--%s: expected true or false, got \"%s\"", flag, v);
            return false;
        }
        *out = json_object_new_boolean(b);
        return true;
    }
    case FF_ENUM: {
        const char *name = cli_enum_value(f->descriptor, v);
        if (!name) {
            field_flag tmp = { .field = f, .kind = FF_ENUM };
            char *choices = field_flag_enum_choices(&tmp);
            *err = xasprintf("--%s: unknown value \"%s\" (one of %s)", flag, v, choices);
            free(choices);
            return false;
        }
        *out = json_object_new_string(name);
        return true;
    }
    case FF_BYTES: {
        char *b64 = pbjson_base64_encode((const uint8_t *)v, strlen(v));
        *out = json_object_new_string(b64);
        free(b64);
        return true;
    }
    case FF_MESSAGE: {
        json_object *j = NULL;
        char *perr = NULL;
        if (pbjson_parse(v, strlen(v), &j, &perr) != ST_OK ||
            !json_object_is_type(j, json_type_object)) {
            *err = xasprintf("--%s: expected a JSON object%s%s", flag, perr ? ": " : "",
                             perr ? perr : "");
            free(perr);
            json_object_put(j);
            return false;
        }
        *out = j;
        return true;
    }
    case FF_WKT: {
        const char *n = ((const ProtobufCMessageDescriptor *)f->descriptor)->name;
        char *txt = NULL;
        if (strcmp(n, "google.protobuf.Timestamp") == 0) {
            txt = time_value(v);
            if (!txt) {
                *err = xasprintf("--%s: expected an RFC 3339 time (2026-01-31T09:00:00Z), a "
                                 "date, or now[+-]DURATION; got \"%s\"",
                                 flag, v);
                return false;
            }
        } else if (strcmp(n, "google.protobuf.Duration") == 0) {
            txt = duration_value(v);
            if (!txt) {
                *err = xasprintf("--%s: expected a duration (90s, 1.5m, 2h), got \"%s\"", flag, v);
                return false;
            }
        } else if (strcmp(n, "google.protobuf.FieldMask") == 0) {
            txt = mask_value(v);
        } else if (strstr(n, "Value") != NULL && strcmp(n, "google.protobuf.Value") != 0 &&
                   strcmp(n, "google.protobuf.ListValue") != 0) {
            /* Wrappers: the wrapped field's own flag form. */
            const ProtobufCMessageDescriptor *wd = f->descriptor;
            const ProtobufCFieldDescriptor *vf = &wd->fields[0];
            return flag_json_value(flag,
                                   vf->type == PROTOBUF_C_TYPE_BOOL    ? FF_BOOL
                                   : vf->type == PROTOBUF_C_TYPE_BYTES ? FF_BYTES
                                                                       : FF_SCALAR,
                                   vf, v, out, err);
        } else {
            json_object *j = NULL;
            char *perr = NULL;
            if (pbjson_parse(v, strlen(v), &j, &perr) != ST_OK) {
                *err = xasprintf("--%s: expected JSON: %s", flag, perr);
                free(perr);
                return false;
            }
            *out = j;
            return true;
        }
        *out = json_object_new_string(txt);
        free(txt);
        return true;
    }
    case FF_SCALAR:
    case FF_MAP:
        break;
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (!is_integer_text(v, true)) {
            *err = xasprintf("--%s: expected an integer, got \"%s\"", flag, v);
            return false;
        }
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (!is_integer_text(v, false)) {
            *err = xasprintf("--%s: expected a non-negative integer, got \"%s\"", flag, v);
            return false;
        }
        break;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        char *end = NULL;
        (void)strtod(v, &end);
        if (!*v || *end != '\0') {
            *err = xasprintf("--%s: expected a number, got \"%s\"", flag, v);
            return false;
        }
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        if (!utf8_valid(v, strlen(v))) {
            *err = xasprintf("--%s: the value is not valid UTF-8", flag);
            return false;
        }
        break;
    default:
        break;
    }
    /* Numbers travel as JSON strings: the proto3 mapping accepts them for
     * every numeric type, and the decoder checks the range. */
    *out = json_object_new_string(v);
    return true;
}

/* The member of obj holding field f (under its JSON or proto name). */
static json_object *member_get(json_object *obj, const ProtobufCFieldDescriptor *f,
                               const char *json_name)
{
    json_object *v = NULL;
    if (json_object_object_get_ex(obj, json_name, &v))
        return v;
    if (json_object_object_get_ex(obj, f->name, &v))
        return v;
    return NULL;
}

static void member_set(json_object *obj, const ProtobufCFieldDescriptor *f, const char *json_name,
                       json_object *v)
{
    json_object_object_del(obj, f->name);
    json_object_object_del(obj, json_name);
    json_object_object_add(obj, json_name, v);
}

bool field_flag_apply(const field_flag *ff, const char *value, size_t seen, json_object *root,
                      char **err)
{
    json_object *obj = root;
    json_object *jv = NULL;
    *err = NULL;
    /* Walk (creating) the objects of the enclosing messages. */
    for (size_t i = 0; i + 1 < ff->depth; i++) {
        char *jn = pbjson_json_name(ff->path[i]->name);
        json_object *child = member_get(obj, ff->path[i], jn);
        if (!json_object_is_type(child, json_type_object)) {
            child = json_object_new_object();
            member_set(obj, ff->path[i], jn, child);
        }
        free(jn);
        obj = child;
    }
    const ProtobufCFieldDescriptor *f = ff->field;
    char *jn = pbjson_json_name(f->name);
    bool ok = false;

    if (ff->kind == FF_MAP) {
        const ProtobufCMessageDescriptor *ed = f->descriptor;
        const char *eq = strchr(value, '=');
        if (!eq) {
            *err = xasprintf("--%s: expected key=value, got \"%s\"", ff->name, value);
            goto out;
        }
        char *key = xstrndup(value, (size_t)(eq - value));
        const ProtobufCFieldDescriptor *vf = &ed->fields[1];
        ok = flag_json_value(ff->name, kind_of(ed, vf), vf, eq + 1, &jv, err);
        if (ok) {
            json_object *map = seen ? member_get(obj, f, jn) : NULL;
            if (!json_object_is_type(map, json_type_object)) {
                map = json_object_new_object();
                member_set(obj, f, jn, map);
            }
            json_object_object_add(map, key, jv);
            jv = NULL;
        }
        free(key);
        goto out;
    }
    if (!flag_json_value(ff->name, ff->kind, f, value, &jv, err))
        goto out;
    if (ff->repeated) {
        json_object *arr = seen ? member_get(obj, f, jn) : NULL;
        if (!json_object_is_type(arr, json_type_array)) {
            arr = json_object_new_array();
            member_set(obj, f, jn, arr);
        }
        json_object_array_add(arr, jv);
    } else {
        member_set(obj, f, jn, jv);
    }
    jv = NULL;
    ok = true;
out:
    json_object_put(jv);
    free(jn);
    return ok;
}
