/* descset.c - an index over a serialized FileDescriptorSet (see descset.h).
 *
 * The set's own wire format is walked here rather than unpacked as a
 * FileDescriptorSet, so that every file keeps the exact bytes protoc wrote
 * (reflection sends them untouched; re-packing a parsed message may reorder
 * or drop unknown fields). Each file is then parsed on its own with
 * descriptor.pb-c. The input may be hostile (a --protoset from disk, a fuzzer):
 * every length is checked against the bytes left, nesting is bounded before
 * protobuf-c recurses, and symbol names come from a budgeted arena so that a
 * small input cannot grow quadratically large names. */
#include "descset.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "util.h"

/* protobuf's own parsers refuse messages nested deeper than 100. */
enum { DESCSET_MAX_DEPTH = 100 };

typedef struct sym {
    descset_symbol pub; /* first: descset_symbol pointers are sym pointers */
    const char *comment;
    size_t seq; /* insertion order: the first definition of a name wins */
} sym;

/* "pkg.Enum.VALUE" -> the canonical "pkg.VALUE" (tools that scope enum values
 * inside their enum, as jhump/protoreflect and so grpcurl do). */
typedef struct alias {
    const char *name;
    const sym *target;
} alias;

typedef struct file_key {
    const char *name;
    size_t idx; /* into files */
} file_key;

struct descset {
    uint8_t *data; /* owned copy of the input; files[i].bytes point into it */
    size_t len;
    descset_file *files;
    size_t n_files;
    size_t *dep_idx;   /* flattened resolved dependencies */
    size_t *dep_off;   /* file i's deps are dep_idx[dep_off[i] .. dep_off[i+1]) */
    file_key *by_name; /* sorted by name */
    sym *syms;         /* sorted by name, unique */
    size_t n_syms;
    alias *aliases; /* sorted by name, unique */
    size_t n_aliases;
    size_t *services; /* indices into syms, in file order */
    size_t n_services;
    arena *names; /* symbol names and comments */
};

/* ---- wire format ---- */

typedef struct wire {
    const uint8_t *p;
    const uint8_t *end;
} wire;

static bool wire_varint(wire *w, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (w->p >= w->end)
            return false;
        uint8_t b = *w->p++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false; /* more than 10 bytes */
}

/* Reads a tag; false on a malformed or zero field number. */
static bool wire_tag(wire *w, uint32_t *field, unsigned *type)
{
    uint64_t t;
    if (!wire_varint(w, &t) || t > UINT32_MAX || (t >> 3) == 0)
        return false;
    *field = (uint32_t)(t >> 3);
    *type = (unsigned)(t & 7);
    return true;
}

/* Skips one value of wire type `type`, or returns its payload for type 2.
 * Groups (3, 4) are refused: descriptor.proto has none. */
static bool wire_skip(wire *w, unsigned type, const uint8_t **payload, size_t *plen)
{
    uint64_t v;
    size_t left = (size_t)(w->end - w->p);
    switch (type) {
    case 0:
        return wire_varint(w, &v);
    case 1:
        if (left < 8)
            return false;
        w->p += 8;
        return true;
    case 2:
        if (!wire_varint(w, &v) || v > (uint64_t)(w->end - w->p))
            return false;
        if (payload) {
            *payload = w->p;
            *plen = (size_t)v;
        }
        w->p += v;
        return true;
    case 5:
        if (left < 4)
            return false;
        w->p += 4;
        return true;
    default:
        return false;
    }
}

/* True when data is well-formed wire format for d and no submessage is
 * nested deeper than DESCSET_MAX_DEPTH. protobuf-c recurses once per level
 * without a limit, so this runs before unpack. */
static bool wire_depth_ok(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len,
                          int depth)
{
    if (depth > DESCSET_MAX_DEPTH)
        return false;
    wire w = { data, data + len };
    while (w.p < w.end) {
        uint32_t field;
        unsigned type;
        const uint8_t *sub = NULL;
        size_t sub_len = 0;
        if (!wire_tag(&w, &field, &type) || !wire_skip(&w, type, &sub, &sub_len))
            return false;
        if (type != 2)
            continue;
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, field);
        if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
            !wire_depth_ok(f->descriptor, sub, sub_len, depth + 1))
            return false;
    }
    return true;
}

/* ---- building ---- */

typedef struct build {
    descset *ds;
    size_t cap_syms;
    strbuf tmp;
    char *err;
} build;

/* Keeps the first failure; msg is a new string this takes over. */
static bool build_fail(build *b, char *msg)
{
    if (b->err)
        free(msg);
    else
        b->err = msg;
    return false;
}

/* scope + "." + name in the names arena (just name when scope is empty);
 * NULL when the arena budget is spent. */
static const char *build_join(build *b, const char *scope, const char *name)
{
    strbuf_reset(&b->tmp);
    if (scope && scope[0]) {
        strbuf_puts(&b->tmp, scope);
        strbuf_putc(&b->tmp, '.');
    }
    strbuf_puts(&b->tmp, name);
    return arena_strndup(b->ds->names, b->tmp.data, b->tmp.len);
}

/* protobuf's identifier: [A-Za-z_][A-Za-z0-9_]*. Anything else (a dot, a
 * byte over 0x7F) would make full names that do not look themselves up. */
static bool is_ident(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

static bool build_add(build *b, const char *scope, const char *name, descset_kind kind,
                      const descset_file *f, const void *proto, const char **full_out)
{
    if (!name || !name[0])
        return build_fail(b, xasprintf("%s: a definition has no name", f->name));
    if (kind != DESCSET_PACKAGE && !is_ident(name, strlen(name)))
        return build_fail(b, xasprintf("%s: a definition's name is not an identifier", f->name));
    const char *full = build_join(b, scope, name);
    if (!full)
        return build_fail(b, xasprintf("%s: symbol names exceed the size budget", f->name));
    descset *ds = b->ds;
    if (ds->n_syms == b->cap_syms) {
        b->cap_syms = b->cap_syms ? 2 * b->cap_syms : 256;
        ds->syms = xrealloc(ds->syms, b->cap_syms * sizeof *ds->syms);
    }
    sym *s = &ds->syms[ds->n_syms];
    s->pub.name = full;
    s->pub.kind = kind;
    s->pub.file = f;
    s->pub.proto = proto;
    s->comment = NULL;
    s->seq = ds->n_syms;
    ds->n_syms++;
    if (full_out)
        *full_out = full;
    return true;
}

static bool build_enum(build *b, const char *scope, const descset_file *f,
                       const Google__Protobuf__EnumDescriptorProto *e)
{
    if (!build_add(b, scope, e->name, DESCSET_ENUM, f, e, NULL))
        return false;
    /* protobuf scoping: values are siblings of their enum, not children. */
    for (size_t i = 0; i < e->n_value; i++)
        if (!build_add(b, scope, e->value[i]->name, DESCSET_ENUM_VALUE, f, e->value[i], NULL))
            return false;
    return true;
}

static bool build_message(build *b, const char *scope, const descset_file *f,
                          const Google__Protobuf__DescriptorProto *m, int depth)
{
    const char *full = NULL;
    if (depth > DESCSET_MAX_DEPTH)
        return build_fail(b, xasprintf("%s: messages nested too deeply", f->name));
    if (!build_add(b, scope, m->name, DESCSET_MESSAGE, f, m, &full))
        return false;
    for (size_t i = 0; i < m->n_field; i++)
        if (!build_add(b, full, m->field[i]->name, DESCSET_FIELD, f, m->field[i], NULL))
            return false;
    for (size_t i = 0; i < m->n_extension; i++)
        if (!build_add(b, full, m->extension[i]->name, DESCSET_FIELD, f, m->extension[i], NULL))
            return false;
    for (size_t i = 0; i < m->n_oneof_decl; i++)
        if (!build_add(b, full, m->oneof_decl[i]->name, DESCSET_ONEOF, f, m->oneof_decl[i], NULL))
            return false;
    for (size_t i = 0; i < m->n_enum_type; i++)
        if (!build_enum(b, full, f, m->enum_type[i]))
            return false;
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (!build_message(b, full, f, m->nested_type[i], depth + 1))
            return false;
    return true;
}

static bool build_file_symbols(build *b, const descset_file *f)
{
    const Google__Protobuf__FileDescriptorProto *p = f->proto;
    const char *pkg = p->package ? p->package : "";

    /* "a.b.c" registers "a", "a.b" and "a.b.c", as protobuf's pool does. */
    if (pkg[0]) {
        size_t n = strlen(pkg);
        for (size_t i = 0, start = 0; i <= n; i++)
            if (i == n || pkg[i] == '.') {
                if (!is_ident(pkg + start, i - start))
                    return build_fail(b, xasprintf("%s: the package name is not dotted identifiers",
                                                   f->name));
                start = i + 1;
            }
        for (size_t i = 0; i <= n; i++) {
            if (i < n && pkg[i] != '.')
                continue;
            char *prefix = xstrndup(pkg, i);
            bool ok = build_add(b, NULL, prefix, DESCSET_PACKAGE, f, NULL, NULL);
            free(prefix);
            if (!ok)
                return false;
        }
    }
    for (size_t i = 0; i < p->n_message_type; i++)
        if (!build_message(b, pkg, f, p->message_type[i], 0))
            return false;
    for (size_t i = 0; i < p->n_enum_type; i++)
        if (!build_enum(b, pkg, f, p->enum_type[i]))
            return false;
    for (size_t i = 0; i < p->n_extension; i++)
        if (!build_add(b, pkg, p->extension[i]->name, DESCSET_FIELD, f, p->extension[i], NULL))
            return false;
    for (size_t i = 0; i < p->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *s = p->service[i];
        const char *full = NULL;
        if (!build_add(b, pkg, s->name, DESCSET_SERVICE, f, s, &full))
            return false;
        for (size_t j = 0; j < s->n_method; j++)
            if (!build_add(b, full, s->method[j]->name, DESCSET_METHOD, f, s->method[j], NULL))
                return false;
    }
    return true;
}

static int sym_cmp(const void *a, const void *b)
{
    const sym *x = a, *y = b;
    int c = strcmp(x->pub.name, y->pub.name);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int alias_cmp(const void *a, const void *b)
{
    const alias *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->target->seq < y->target->seq ? -1 : x->target->seq > y->target->seq;
}

static int file_cmp(const void *a, const void *b)
{
    const file_key *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static const sym *sym_lookup(const descset *ds, const char *name)
{
    size_t lo = 0, hi = ds->n_syms;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, ds->syms[mid].pub.name);
        if (c == 0)
            return &ds->syms[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static const sym *alias_lookup(const descset *ds, const char *name)
{
    size_t lo = 0, hi = ds->n_aliases;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, ds->aliases[mid].name);
        if (c == 0)
            return ds->aliases[mid].target;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Sorts the symbols and keeps the first definition of each name. */
static void build_sort_symbols(descset *ds)
{
    if (ds->n_syms == 0)
        return;
    qsort(ds->syms, ds->n_syms, sizeof *ds->syms, sym_cmp);
    size_t w = 1;
    for (size_t r = 1; r < ds->n_syms; r++)
        if (strcmp(ds->syms[r].pub.name, ds->syms[w - 1].pub.name) != 0)
            ds->syms[w++] = ds->syms[r];
    ds->n_syms = w;
}

static bool build_aliases(build *b)
{
    descset *ds = b->ds;
    size_t cap = 0;
    for (size_t i = 0; i < ds->n_syms; i++) {
        const sym *e = &ds->syms[i];
        if (e->pub.kind != DESCSET_ENUM)
            continue;
        const Google__Protobuf__EnumDescriptorProto *ep = e->pub.proto;
        const char *dot = strrchr(e->pub.name, '.');
        size_t scope_len = dot ? (size_t)(dot - e->pub.name) : 0;
        for (size_t v = 0; v < ep->n_value; v++) {
            const Google__Protobuf__EnumValueDescriptorProto *vp = ep->value[v];
            strbuf_reset(&b->tmp);
            if (scope_len) {
                strbuf_append(&b->tmp, e->pub.name, scope_len);
                strbuf_putc(&b->tmp, '.');
            }
            strbuf_puts(&b->tmp, vp->name);
            const sym *target = sym_lookup(ds, b->tmp.data);
            if (!target || target->pub.proto != vp)
                continue; /* shadowed by an earlier definition */
            const char *name = build_join(b, e->pub.name, vp->name);
            if (!name)
                return build_fail(
                    b, xasprintf("%s: symbol names exceed the size budget", e->pub.file->name));
            if (sym_lookup(ds, name))
                continue; /* a real symbol has that name */
            if (ds->n_aliases == cap) {
                cap = cap ? 2 * cap : 64;
                ds->aliases = xrealloc(ds->aliases, cap * sizeof *ds->aliases);
            }
            ds->aliases[ds->n_aliases++] = (alias){ name, target };
        }
    }
    if (ds->n_aliases == 0)
        return true;
    qsort(ds->aliases, ds->n_aliases, sizeof *ds->aliases, alias_cmp);
    size_t w = 1;
    for (size_t r = 1; r < ds->n_aliases; r++)
        if (strcmp(ds->aliases[r].name, ds->aliases[w - 1].name) != 0)
            ds->aliases[w++] = ds->aliases[r];
    ds->n_aliases = w;
    return true;
}

static void build_services(descset *ds)
{
    size_t n = 0;
    for (size_t i = 0; i < ds->n_files; i++)
        n += ds->files[i].proto->n_service;
    ds->services = xcalloc(n ? n : 1, sizeof(size_t));
    for (size_t i = 0; i < ds->n_files; i++) {
        const Google__Protobuf__FileDescriptorProto *p = ds->files[i].proto;
        for (size_t j = 0; j < p->n_service; j++) {
            strbuf tmp = { 0 };
            if (p->package && p->package[0]) {
                strbuf_puts(&tmp, p->package);
                strbuf_putc(&tmp, '.');
            }
            strbuf_puts(&tmp, p->service[j]->name);
            const sym *s = sym_lookup(ds, tmp.data);
            strbuf_fini(&tmp);
            /* A name defined twice (a hostile set) lists its first definition once. */
            if (s && s->pub.proto == p->service[j])
                ds->services[ds->n_services++] = (size_t)(s - ds->syms);
        }
    }
}

/* Trims a leading comment: one space after each "//" and surrounding blank
 * lines go. NULL when nothing is left or the budget is spent. */
static const char *build_comment(build *b, const char *raw)
{
    strbuf_reset(&b->tmp);
    const char *p = raw;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        const char *line = p;
        if (n > 0 && line[0] == ' ') {
            line++;
            n--;
        }
        strbuf_append(&b->tmp, line, n);
        strbuf_putc(&b->tmp, '\n');
        p = nl ? nl + 1 : p + strlen(p);
    }
    if (!b->tmp.data)
        return NULL;
    size_t start = 0, end = b->tmp.len;
    while (start < end && (b->tmp.data[start] == '\n' || b->tmp.data[start] == ' ' ||
                           b->tmp.data[start] == '\t' || b->tmp.data[start] == '\r'))
        start++;
    while (end > start && (b->tmp.data[end - 1] == '\n' || b->tmp.data[end - 1] == ' ' ||
                           b->tmp.data[end - 1] == '\t' || b->tmp.data[end - 1] == '\r'))
        end--;
    if (end == start)
        return NULL;
    return arena_strndup(b->ds->names, b->tmp.data + start, end - start);
}

static bool path_index(int32_t idx, size_t n)
{
    return idx >= 0 && (size_t)idx < n;
}

/* The full name of the symbol a source location path points at, into
 * b->tmp; false when the path names no symbol (a field's type, an option). */
static bool path_enum(strbuf *out, const char *scope,
                      const Google__Protobuf__EnumDescriptorProto *e, const int32_t *p, size_t n)
{
    const char *name;
    if (n == 0)
        name = e->name;
    else if (n == 2 && p[0] == 2 && path_index(p[1], e->n_value))
        name = e->value[p[1]]->name;
    else
        return false;
    strbuf_reset(out);
    if (scope[0]) {
        strbuf_puts(out, scope);
        strbuf_putc(out, '.');
    }
    strbuf_puts(out, name);
    return true;
}

static bool path_symbol(strbuf *out, const Google__Protobuf__FileDescriptorProto *f,
                        const int32_t *p, size_t n)
{
    const char *pkg = f->package ? f->package : "";
    strbuf scope = { 0 };
    bool ok = false;

    if (n == 1 && p[0] == 2 && pkg[0]) {
        strbuf_reset(out);
        strbuf_puts(out, pkg);
        return true;
    }
    if (n < 2)
        return false;
    strbuf_puts(&scope, pkg);
    switch (p[0]) {
    case 4: { /* message_type, then nested_type / field / extension / enum_type / oneof */
        if (!path_index(p[1], f->n_message_type))
            goto out;
        const Google__Protobuf__DescriptorProto *m = f->message_type[p[1]];
        size_t i = 2;
        for (;;) {
            if (scope.len)
                strbuf_putc(&scope, '.');
            strbuf_puts(&scope, m->name);
            if (i == n)
                break;
            if (n - i < 2)
                goto out;
            int32_t tag = p[i], idx = p[i + 1];
            if (tag == 3 && path_index(idx, m->n_nested_type)) {
                m = m->nested_type[idx];
                i += 2;
                continue;
            }
            if (tag == 4 && path_index(idx, m->n_enum_type)) {
                ok = path_enum(out, scope.data, m->enum_type[idx], p + i + 2, n - i - 2);
                goto out;
            }
            const char *leaf = NULL;
            if (i + 2 == n && tag == 2 && path_index(idx, m->n_field))
                leaf = m->field[idx]->name;
            else if (i + 2 == n && tag == 6 && path_index(idx, m->n_extension))
                leaf = m->extension[idx]->name;
            else if (i + 2 == n && tag == 8 && path_index(idx, m->n_oneof_decl))
                leaf = m->oneof_decl[idx]->name;
            if (!leaf)
                goto out;
            strbuf_putc(&scope, '.');
            strbuf_puts(&scope, leaf);
            break;
        }
        strbuf_reset(out);
        strbuf_append(out, scope.data, scope.len);
        ok = true;
        break;
    }
    case 5: /* enum_type */
        if (path_index(p[1], f->n_enum_type))
            ok = path_enum(out, pkg, f->enum_type[p[1]], p + 2, n - 2);
        break;
    case 6: { /* service, then method */
        if (!path_index(p[1], f->n_service))
            goto out;
        const Google__Protobuf__ServiceDescriptorProto *s = f->service[p[1]];
        strbuf_reset(out);
        if (pkg[0]) {
            strbuf_puts(out, pkg);
            strbuf_putc(out, '.');
        }
        strbuf_puts(out, s->name);
        if (n == 2) {
            ok = true;
        } else if (n == 4 && p[2] == 2 && path_index(p[3], s->n_method)) {
            strbuf_putc(out, '.');
            strbuf_puts(out, s->method[p[3]]->name);
            ok = true;
        }
        break;
    }
    case 7: /* extension */
        if (n == 2 && path_index(p[1], f->n_extension)) {
            strbuf_reset(out);
            if (pkg[0]) {
                strbuf_puts(out, pkg);
                strbuf_putc(out, '.');
            }
            strbuf_puts(out, f->extension[p[1]]->name);
            ok = true;
        }
        break;
    default:
        break;
    }
out:
    strbuf_fini(&scope);
    return ok;
}

static bool build_comments(build *b, const descset_file *f)
{
    const Google__Protobuf__SourceCodeInfo *sci = f->proto->source_code_info;
    strbuf name = { 0 };
    bool ok = true;

    for (size_t i = 0; sci && i < sci->n_location; i++) {
        const Google__Protobuf__SourceCodeInfo__Location *loc = sci->location[i];
        /* The leading comment documents a symbol; a trailing one
         * (`VALUE = 3; // why`) stands in when there is none. */
        const char *raw = loc->leading_comments;
        if (!raw || !raw[0])
            raw = loc->trailing_comments;
        if (!raw || !raw[0])
            continue;
        if (!path_symbol(&name, f->proto, loc->path, loc->n_path))
            continue;
        sym *s = (sym *)sym_lookup(b->ds, name.data);
        if (!s || s->pub.file != f || s->comment)
            continue;
        s->comment = build_comment(b, raw);
        if (!s->comment && arena_exhausted(b->ds->names)) {
            ok = build_fail(b, xasprintf("%s: comments exceed the size budget", f->name));
            break;
        }
    }
    strbuf_fini(&name);
    return ok;
}

/* Splits the set into files, parses each, resolves dependencies. */
static bool build_files(build *b)
{
    descset *ds = b->ds;
    wire w = { ds->data, ds->data + ds->len };
    size_t cap = 0;

    while (w.p < w.end) {
        uint32_t field;
        unsigned type;
        const uint8_t *payload = NULL;
        size_t plen = 0;
        if (!wire_tag(&w, &field, &type) || !wire_skip(&w, type, &payload, &plen))
            return build_fail(
                b, xasprintf("descriptor set: malformed at byte %zu", (size_t)(w.p - ds->data)));
        if (field != 1)
            continue; /* FileDescriptorSet has only field 1; skip unknown ones */
        if (type != 2)
            return build_fail(b, xstrdup("descriptor set: field 1 is not length-delimited"));
        if (!wire_depth_ok(&google__protobuf__file_descriptor_proto__descriptor, payload, plen, 0))
            return build_fail(b, xasprintf("descriptor set: file %zu is malformed or nested "
                                           "too deeply",
                                           ds->n_files + 1));
        Google__Protobuf__FileDescriptorProto *p =
            google__protobuf__file_descriptor_proto__unpack(NULL, plen, payload);
        if (!p)
            return build_fail(
                b, xasprintf("descriptor set: file %zu does not parse", ds->n_files + 1));
        if (ds->n_files == cap) {
            cap = cap ? 2 * cap : 16;
            ds->files = xrealloc(ds->files, cap * sizeof *ds->files);
        }
        descset_file *f = &ds->files[ds->n_files++];
        f->proto = p;
        f->name = p->name;
        f->bytes = payload;
        f->len = plen;
        f->deps = (const char *const *)p->dependency;
        f->n_deps = p->n_dependency;
        if (!f->name || !f->name[0])
            return build_fail(b, xasprintf("descriptor set: file %zu has no name", ds->n_files));
    }

    ds->by_name = xcalloc(ds->n_files ? ds->n_files : 1, sizeof(file_key));
    for (size_t i = 0; i < ds->n_files; i++)
        ds->by_name[i] = (file_key){ ds->files[i].name, i };
    qsort(ds->by_name, ds->n_files, sizeof(file_key), file_cmp);
    for (size_t i = 1; i < ds->n_files; i++)
        if (strcmp(ds->by_name[i].name, ds->by_name[i - 1].name) == 0)
            return build_fail(
                b, xasprintf("descriptor set: file %s appears twice", ds->by_name[i].name));

    size_t total = 0;
    for (size_t i = 0; i < ds->n_files; i++)
        total += ds->files[i].n_deps;
    ds->dep_idx = xcalloc(total ? total : 1, sizeof *ds->dep_idx);
    ds->dep_off = xcalloc(ds->n_files + 1, sizeof *ds->dep_off);
    size_t k = 0;
    for (size_t i = 0; i < ds->n_files; i++) {
        const descset_file *f = &ds->files[i];
        ds->dep_off[i] = k;
        for (size_t j = 0; j < f->n_deps; j++) {
            const descset_file *d = descset_file_by_name(ds, f->deps[j]);
            if (!d)
                return build_fail(b, xasprintf("descriptor set: %s imports %s, which it does "
                                               "not hold",
                                               f->name, f->deps[j]));
            ds->dep_idx[k++] = (size_t)(d - ds->files);
        }
    }
    ds->dep_off[ds->n_files] = k;
    return true;
}

descset *descset_new(const uint8_t *data, size_t len, char **err)
{
    build b = { 0 };
    descset *ds = xcalloc(1, sizeof *ds);

    *err = NULL;
    ds->data = xmalloc(len);
    if (len)
        memcpy(ds->data, data, len);
    ds->len = len;
    /* Names are at most a few times the input in any real set. */
    ds->names = arena_new(((size_t)4 << 20) + 8 * len);
    b.ds = ds;

    if (!build_files(&b))
        goto out;
    for (size_t i = 0; i < ds->n_files; i++)
        if (!build_file_symbols(&b, &ds->files[i]))
            goto out;
    build_sort_symbols(ds);
    if (!build_aliases(&b))
        goto out;
    build_services(ds);
    for (size_t i = 0; i < ds->n_files; i++)
        if (!build_comments(&b, &ds->files[i]))
            goto out;
out:
    strbuf_fini(&b.tmp);
    if (b.err) {
        descset_free(ds);
        *err = b.err;
        return NULL;
    }
    return ds;
}

void descset_free(descset *ds)
{
    if (!ds)
        return;
    for (size_t i = 0; i < ds->n_files; i++)
        google__protobuf__file_descriptor_proto__free_unpacked(
            (Google__Protobuf__FileDescriptorProto *)ds->files[i].proto, NULL);
    free(ds->files);
    free(ds->dep_idx);
    free(ds->dep_off);
    free(ds->by_name);
    free(ds->syms);
    free(ds->aliases);
    free(ds->services);
    arena_free(ds->names);
    free(ds->data);
    free(ds);
}

/* ---- the embedded set ---- */

static pthread_once_t api_once = PTHREAD_ONCE_INIT;
static descset *api_set;
static _Atomic bool api_released;

static void api_parse(void)
{
    char *err = NULL;
    api_set = descset_new(herald_api_descset, herald_api_descset_len, &err);
    if (!api_set) {
        (void)fprintf(stderr, "herald: embedded descriptor set is broken: %s\n", err);
        abort();
    }
}

const descset *descset_api(void)
{
    if (api_released) {
        (void)fprintf(stderr, "herald: descset_api called after descset_api_release\n");
        abort();
    }
    pthread_once(&api_once, api_parse);
    return api_set;
}

void descset_api_release(void)
{
    api_released = true;
    descset_free(api_set);
    api_set = NULL;
}

/* ---- queries ---- */

size_t descset_file_count(const descset *ds)
{
    return ds->n_files;
}

const descset_file *descset_file_at(const descset *ds, size_t i)
{
    return i < ds->n_files ? &ds->files[i] : NULL;
}

size_t descset_file_index(const descset *ds, const descset_file *f)
{
    if (f < ds->files || f >= ds->files + ds->n_files)
        return SIZE_MAX;
    return (size_t)(f - ds->files);
}

const descset_file *descset_file_by_name(const descset *ds, const char *name)
{
    if (!name)
        return NULL;
    size_t lo = 0, hi = ds->n_files;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, ds->by_name[mid].name);
        if (c == 0)
            return &ds->files[ds->by_name[mid].idx];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const descset_symbol *descset_symbol_find(const descset *ds, const char *name)
{
    if (!name)
        return NULL;
    if (name[0] == '.')
        name++;
    const sym *s = sym_lookup(ds, name);
    if (!s)
        s = alias_lookup(ds, name);
    return s ? &s->pub : NULL;
}

size_t descset_symbol_count(const descset *ds)
{
    return ds->n_syms;
}

const descset_symbol *descset_symbol_at(const descset *ds, size_t i)
{
    return i < ds->n_syms ? &ds->syms[i].pub : NULL;
}

size_t descset_service_count(const descset *ds)
{
    return ds->n_services;
}

const descset_symbol *descset_service_at(const descset *ds, size_t i)
{
    return i < ds->n_services ? &ds->syms[ds->services[i]].pub : NULL;
}

bool descset_method_streaming(const descset *ds, const char *service, const char *method,
                              bool *client_streaming, bool *server_streaming)
{
    strbuf full = { 0 };
    bool found = false;

    if (client_streaming)
        *client_streaming = false;
    if (server_streaming)
        *server_streaming = false;
    if (!service || !method)
        return false;
    strbuf_puts(&full, service);
    strbuf_putc(&full, '.');
    strbuf_puts(&full, method);
    const descset_symbol *s = descset_symbol_find(ds, full.data);
    if (s && s->kind == DESCSET_METHOD) {
        const Google__Protobuf__MethodDescriptorProto *m = s->proto;
        if (client_streaming)
            *client_streaming = m->has_client_streaming && m->client_streaming;
        if (server_streaming)
            *server_streaming = m->has_server_streaming && m->server_streaming;
        found = true;
    }
    strbuf_fini(&full);
    return found;
}

const char *descset_comment(const descset *ds, const char *symbol)
{
    const descset_symbol *s = descset_symbol_find(ds, symbol);
    return s ? ((const sym *)s)->comment : NULL;
}

void descset_walk_deps(const descset *ds, const descset_file *f,
                       bool (*fn)(const descset_file *f, void *user), void *user)
{
    size_t root = descset_file_index(ds, f);
    if (root == SIZE_MAX)
        return;
    /* Iterative post-order DFS: a hostile set may chain thousands of files
     * or import in a cycle; each file is pushed at most once. */
    bool *seen = xcalloc(ds->n_files, sizeof *seen);
    size_t *stack = xcalloc(ds->n_files, sizeof *stack);
    size_t *next = xcalloc(ds->n_files, sizeof *next); /* next dep to visit, per depth */
    size_t depth = 0;

    stack[depth] = root;
    next[depth] = ds->dep_off[root];
    seen[root] = true;
    depth++;
    while (depth > 0) {
        size_t cur = stack[depth - 1];
        if (next[depth - 1] < ds->dep_off[cur + 1]) {
            size_t d = ds->dep_idx[next[depth - 1]++];
            if (!seen[d]) {
                seen[d] = true;
                stack[depth] = d;
                next[depth] = ds->dep_off[d];
                depth++;
            }
            continue;
        }
        depth--;
        if (!fn(&ds->files[cur], user))
            break;
    }
    free(next);
    free(stack);
    free(seen);
}
