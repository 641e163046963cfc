/* cli_out.c - what the CLI prints: JSON (pretty like jq, or one line per
 * streamed message), readable tables for a terminal, and RPC errors with
 * their google.rpc.Status details. Data goes to stdout, everything else to
 * stderr. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pbjson.h"
#include "util.h"

enum { CELL_MAX_CHARS = 60 };

/* ---- JSON text ---- */

static void json_put(strbuf *b, json_object *j, int indent, bool pretty)
{
    switch (json_object_get_type(j)) {
    case json_type_null:
        strbuf_puts(b, "null");
        return;
    case json_type_string:
        strbuf_putc(b, '"');
        strbuf_json_escape(b, json_object_get_string(j), (size_t)json_object_get_string_len(j));
        strbuf_putc(b, '"');
        return;
    case json_type_boolean:
    case json_type_int:
    case json_type_double:
        strbuf_puts(b, json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
        return;
    case json_type_array: {
        size_t n = json_object_array_length(j);
        if (n == 0) {
            strbuf_puts(b, "[]");
            return;
        }
        strbuf_putc(b, '[');
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                strbuf_putc(b, ',');
            if (pretty)
                strbuf_printf(b, "\n%*s", indent + 2, "");
            json_put(b, json_object_array_get_idx(j, i), indent + 2, pretty);
        }
        if (pretty)
            strbuf_printf(b, "\n%*s", indent, "");
        strbuf_putc(b, ']');
        return;
    }
    case json_type_object: {
        if (json_object_object_length(j) == 0) {
            strbuf_puts(b, "{}");
            return;
        }
        strbuf_putc(b, '{');
        bool first = true;
        json_object_object_foreach(j, key, val)
        {
            if (!first)
                strbuf_putc(b, ',');
            first = false;
            if (pretty)
                strbuf_printf(b, "\n%*s", indent + 2, "");
            strbuf_putc(b, '"');
            strbuf_json_escape(b, key, strlen(key));
            strbuf_puts(b, pretty ? "\": " : "\":");
            json_put(b, val, indent + 2, pretty);
        }
        if (pretty)
            strbuf_printf(b, "\n%*s", indent, "");
        strbuf_putc(b, '}');
        return;
    }
    }
}

/* ---- tables ---- */

static bool is_scalar(json_object *j)
{
    json_type t = json_object_get_type(j);
    return t != json_type_object && t != json_type_array;
}

/* Cell text: control characters become spaces; long values are cut. */
static char *cell_text(json_object *j, bool truncate)
{
    strbuf b = { 0 };
    strbuf_puts(&b, "");
    switch (json_object_get_type(j)) {
    case json_type_null:
        strbuf_puts(&b, "-");
        break;
    case json_type_string: {
        const char *s = json_object_get_string(j);
        for (; *s; s++)
            strbuf_putc(&b, (unsigned char)*s < 0x20
                                ? ' '
                                : *s); /* NOLINT(bugprone-narrowing-conversions) */
        break;
    }
    case json_type_array: {
        size_t n = json_object_array_length(j);
        bool scalars = true;
        for (size_t i = 0; i < n; i++)
            scalars = scalars && is_scalar(json_object_array_get_idx(j, i));
        if (!scalars) {
            strbuf_printf(&b, "[%zu items]", n);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            char *c = cell_text(json_object_array_get_idx(j, i), false);
            strbuf_printf(&b, "%s%s", i ? ", " : "", c);
            free(c);
        }
        break;
    }
    case json_type_object:
        strbuf_puts(&b, "{...}");
        break;
    default:
        strbuf_puts(&b, json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
        break;
    }
    if (truncate && utf8_count(b.data, b.len) > CELL_MAX_CHARS) {
        /* Cut at a code point boundary. */
        size_t bytes = 0, cps = 0;
        while (bytes < b.len && cps < CELL_MAX_CHARS - 1) {
            bytes++;
            while (bytes < b.len && ((unsigned char)b.data[bytes] & 0xc0) == 0x80)
                bytes++;
            cps++;
        }
        b.len = bytes;
        b.data[bytes] = '\0';
        strbuf_puts(&b, "\xe2\x80\xa6"); /* ellipsis */
    }
    return strbuf_take(&b);
}

/* "nextPageToken" -> "NEXT_PAGE_TOKEN", "policy.minGap" -> "POLICY.MIN_GAP" */
static char *header_text(const char *key)
{
    strbuf b = { 0 };
    for (const char *p = key; *p; p++) {
        if (*p >= 'A' && *p <= 'Z' && p != key && p[-1] != '.')
            strbuf_putc(&b, '_');
        strbuf_putc(&b, (char)((*p >= 'a' && *p <= 'z') ? *p - 'a' + 'A' : *p));
    }
    return strbuf_take(&b);
}

typedef struct columns {
    char **keys; /* "name" or "parent.child" */
    size_t n;
} columns;

/* Adds key after position *after (the row's previous column), so that
 * columns keep the message's field order even when the first rows leave
 * some fields out. *after becomes key's position. */
static void columns_add(columns *c, const char *key, size_t *after)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->keys[i], key) == 0) {
            *after = i + 1;
            return;
        }
    }
    size_t at = *after <= c->n ? *after : c->n;
    c->keys = xrealloc(c->keys, (c->n + 1) * sizeof *c->keys);
    memmove(c->keys + at + 1, c->keys + at, (c->n - at) * sizeof *c->keys);
    c->keys[at] = xstrdup(key);
    c->n++;
    *after = at + 1;
}

static json_object *column_value(json_object *row, const char *key)
{
    json_object *v = NULL;
    const char *dot = strchr(key, '.');
    if (!dot) {
        json_object_object_get_ex(row, key, &v);
        return v;
    }
    char *head = xstrndup(key, (size_t)(dot - key));
    json_object *parent = NULL;
    json_object_object_get_ex(row, head, &parent);
    free(head);
    if (parent && json_object_is_type(parent, json_type_object))
        json_object_object_get_ex(parent, dot + 1, &v);
    return v;
}

static void print_table(FILE *fp, json_object *arr, int indent)
{
    columns cols = { 0 };
    size_t rows = json_object_array_length(arr);
    for (size_t r = 0; r < rows; r++) {
        json_object *row = json_object_array_get_idx(arr, r);
        size_t after = 0;
        json_object_object_foreach(row, key, val)
        {
            if (json_object_is_type(val, json_type_object) && json_object_object_length(val) > 0) {
                json_object_object_foreach(val, k2, v2)
                {
                    if (is_scalar(v2)) {
                        char *ck = xasprintf("%s.%s", key, k2);
                        columns_add(&cols, ck, &after);
                        free(ck);
                    }
                }
            } else {
                columns_add(&cols, key, &after);
            }
        }
    }
    char ***cells = xcalloc(rows + 1, sizeof *cells);
    size_t *width = xcalloc(cols.n ? cols.n : 1, sizeof *width);
    cells[0] = xcalloc(cols.n ? cols.n : 1, sizeof **cells);
    for (size_t c = 0; c < cols.n; c++) {
        cells[0][c] = header_text(cols.keys[c]);
        width[c] = utf8_count(cells[0][c], strlen(cells[0][c]));
    }
    for (size_t r = 0; r < rows; r++) {
        json_object *row = json_object_array_get_idx(arr, r);
        cells[r + 1] = xcalloc(cols.n ? cols.n : 1, sizeof **cells);
        for (size_t c = 0; c < cols.n; c++) {
            json_object *v = column_value(row, cols.keys[c]);
            cells[r + 1][c] = v ? cell_text(v, true) : xstrdup("");
            size_t w = utf8_count(cells[r + 1][c], strlen(cells[r + 1][c]));
            if (w > width[c])
                width[c] = w;
        }
    }
    strbuf line = { 0 };
    for (size_t r = 0; r <= rows; r++) {
        strbuf_reset(&line);
        strbuf_printf(&line, "%*s", indent, "");
        for (size_t c = 0; c < cols.n; c++) {
            const char *s = cells[r][c];
            bool last = c + 1 == cols.n;
            size_t pad = width[c] - utf8_count(s, strlen(s));
            strbuf_printf(&line, "%s%*s%s", s, last ? 0 : (int)pad, "", last ? "" : "  ");
            free(cells[r][c]);
        }
        while (line.len > 0 && line.data[line.len - 1] == ' ')
            line.data[--line.len] = '\0';
        (void)fprintf(fp, "%s\n", line.len ? line.data : "");
        free(cells[r]);
    }
    strbuf_fini(&line);
    free(cells);
    free(width);
    for (size_t c = 0; c < cols.n; c++)
        free(cols.keys[c]);
    free(cols.keys);
}

static bool is_object_array(json_object *v)
{
    if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0)
        return false;
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_object))
            return false;
    }
    return true;
}

static void print_kv(FILE *fp, json_object *obj, int indent)
{
    size_t kw = 0;
    json_object_object_foreach(obj, k0, v0)
    {
        (void)v0;
        size_t l = strlen(k0);
        if (l > kw)
            kw = l;
    }
    json_object_object_foreach(obj, key, val)
    {
        if (json_object_is_type(val, json_type_object) && json_object_object_length(val) > 0) {
            (void)fprintf(fp, "%*s%s:\n", indent, "", key);
            print_kv(fp, val, indent + 2);
        } else if (is_object_array(val)) {
            (void)fprintf(fp, "%*s%s:\n", indent, "", key);
            print_table(fp, val, indent + 2);
        } else {
            char *text = cell_text(val, false);
            if (json_object_is_type(val, json_type_string) &&
                strchr(json_object_get_string(val), '\n')) {
                /* Multi-line text (a post body) keeps its lines. */
                (void)fprintf(fp, "%*s%s:\n", indent, "", key);
                const char *s = json_object_get_string(val);
                while (*s) {
                    const char *nl = strchr(s, '\n');
                    size_t n = nl ? (size_t)(nl - s) : strlen(s);
                    (void)fprintf(fp, "%*s%.*s\n", indent + 2, "", (int)n, s);
                    s += n + (nl ? 1 : 0);
                }
            } else {
                (void)fprintf(fp, "%*s%s:%*s %s\n", indent, "", key, (int)(kw - strlen(key)), "",
                              text);
            }
            free(text);
        }
    }
}

void out_table(FILE *fp, json_object *j)
{
    if (!json_object_is_type(j, json_type_object)) {
        char *t = cell_text(j, false);
        (void)fprintf(fp, "%s\n", t);
        free(t);
        return;
    }
    if (json_object_object_length(j) == 0) {
        (void)fputs("(empty)\n", fp);
        return;
    }
    /* A list response: one array of objects, the rest scalars (the page
     * token): the array as a table, then the scalars. */
    json_object *list = NULL;
    size_t lists = 0, others = 0;
    json_object_object_foreach(j, key, val)
    {
        (void)key;
        if (is_object_array(val)) {
            list = val;
            lists++;
        } else if (!is_scalar(val)) {
            others++;
        }
    }
    if (lists == 1 && others == 0) {
        print_table(fp, list, 0);
        json_object *rest = json_object_new_object();
        json_object_object_foreach(j, k2, v2)
        {
            if (v2 != list)
                json_object_object_add(rest, k2, json_object_get(v2));
        }
        if (json_object_object_length(rest) > 0) {
            (void)fputc('\n', fp);
            print_kv(fp, rest, 0);
        }
        json_object_put(rest);
        return;
    }
    print_kv(fp, j, 0);
}

bool out_message(const ProtobufCMessage *m, out_format f, bool compact, bool emit_defaults,
                 char **err)
{
    /* Tables are for people: short enum names ("x", "active"). */
    pbjson_options o = { .emit_defaults = emit_defaults,
                         .resolve = registry_resolve,
                         .enums_short = f == OUT_TABLE };
    json_object *j = NULL;
    if (pbjson_encode(m, &o, &j, err) != ST_OK)
        return false;
    if (f == OUT_TABLE) {
        out_table(stdout, j);
    } else {
        strbuf b = { 0 };
        json_put(&b, j, 0, !compact);
        strbuf_putc(&b, '\n');
        (void)fwrite(b.data, 1, b.len, stdout);
        strbuf_fini(&b);
    }
    (void)fflush(stdout);
    json_object_put(j);
    return true;
}

/* ---- errors and metadata ---- */

void out_rpc_error(const herald_status *st)
{
    (void)fprintf(stderr, "herald: %s: %s\n", herald_code_name(st->code),
                  st->message && st->message[0] ? st->message : "(no message)");
    for (size_t i = 0; i < st->n_details; i++) {
        const herald_status_detail *d = &st->details[i];
        const char *slash = strrchr(d->type_url, '/');
        const char *tname = slash ? slash + 1 : d->type_url;
        const ProtobufCMessageDescriptor *desc = registry_message_find(tname);
        ProtobufCMessage *m =
            desc ? protobuf_c_message_unpack(desc, NULL, d->value_len, d->value) : NULL;
        char *json = NULL;
        char *err = NULL;
        if (m) {
            pbjson_options o = { .resolve = registry_resolve };
            json = pbjson_encode_string(m, &o, JSON_C_TO_STRING_PLAIN, &err);
            protobuf_c_message_free_unpacked(m, NULL);
        }
        if (json)
            (void)fprintf(stderr, "  %s: %s\n", tname, json);
        else
            (void)fprintf(stderr, "  %s (%zu bytes)\n", d->type_url, d->value_len);
        free(json);
        free(err);
    }
}

static void print_md(const char *dir, const herald_metadata *md, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(md[i].key);
        if (kl > 4 && strcmp(md[i].key + kl - 4, "-bin") == 0) {
            char *b64 = pbjson_base64_encode((const uint8_t *)md[i].value, md[i].value_len);
            (void)fprintf(stderr, "%s %s: %s\n", dir, md[i].key, b64);
            free(b64);
        } else {
            (void)fprintf(stderr, "%s %s: %.*s\n", dir, md[i].key, (int)md[i].value_len,
                          md[i].value);
        }
    }
}

void out_metadata(const herald_status *st)
{
    print_md("< header", st->headers, st->n_headers);
    print_md("< trailer", st->trailers, st->n_trailers);
}
