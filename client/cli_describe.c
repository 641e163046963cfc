/* cli_describe.c - `herald list` and `herald describe`, and documentation
 * lookups for help texts, all from the embedded descriptor set (descset):
 * the same bytes the server's reflection serves, with source comments. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

const descset *cli_descset(void)
{
    return descset_api();
}

/* ---- comments ---- */

/* The comment of the oneof holding field_sym (a field of `message`). */
static char *oneof_comment(const descset_symbol *field_sym, const char *message)
{
    const Google__Protobuf__FieldDescriptorProto *fp = field_sym->proto;
    if (!fp->has_oneof_index)
        return NULL;
    const descset_symbol *ms = descset_symbol_find(cli_descset(), message);
    if (!ms || ms->kind != DESCSET_MESSAGE)
        return NULL;
    const Google__Protobuf__DescriptorProto *mp = ms->proto;
    if (fp->oneof_index < 0 || (size_t)fp->oneof_index >= mp->n_oneof_decl)
        return NULL;
    char *name = xasprintf("%s.%s", message, mp->oneof_decl[fp->oneof_index]->name);
    const char *c = descset_comment(cli_descset(), name);
    free(name);
    return c ? xstrdup(c) : NULL;
}

char *cli_symbol_comment(const char *symbol)
{
    const descset *ds = cli_descset();
    const char *c = descset_comment(ds, symbol);
    if (c && strncmp(c, "See ", 4) != 0)
        return xstrdup(c);
    const descset_symbol *s = descset_symbol_find(ds, symbol);
    if (s && s->kind == DESCSET_FIELD) {
        const char *dot = strrchr(symbol, '.');
        char *msg = xstrndup(symbol, (size_t)(dot - symbol));
        char *oc = oneof_comment(s, msg);
        free(msg);
        if (oc)
            return oc;
    }
    return c ? xstrdup(c) : NULL;
}

char *cli_first_sentence(const char *comment)
{
    strbuf b = { 0 };
    strbuf_puts(&b, "");
    for (const char *p = comment; *p; p++) {
        if (*p == '\n') {
            if (p[1] == '\n')
                break; /* paragraph end */
            strbuf_putc(&b, ' ');
            continue;
        }
        strbuf_putc(&b, *p);
        /* A period ending the sentence, not the one of "e.g." or "i.e.". */
        bool abbrev = p >= comment + 3 && p[-2] == '.' &&
                      ((p[-3] == 'e' && p[-1] == 'g') || (p[-3] == 'i' && p[-1] == 'e'));
        if (*p == '.' && (p[1] == ' ' || p[1] == '\n' || p[1] == '\0') && !abbrev)
            break;
    }
    return strbuf_take(&b);
}

void cli_method_kind(const ProtobufCServiceDescriptor *s, const ProtobufCMethodDescriptor *m,
                     bool *client_streaming, bool *server_streaming)
{
    *client_streaming = false;
    *server_streaming = false;
    descset_method_streaming(cli_descset(), s->name, m->name, client_streaming, server_streaming);
}

/* ---- list ---- */

int cli_cmd_list(int argc, char **argv)
{
    const descset *ds = cli_descset();
    if (argc == 0) {
        for (size_t i = 0; i < descset_service_count(ds); i++)
            (void)printf("%s\n", descset_service_at(ds, i)->name);
        return CLI_EXIT_OK;
    }
    const char *name = argv[0][0] == '.' ? argv[0] + 1 : argv[0];
    const descset_symbol *s = descset_symbol_find(ds, name);
    if (!s || s->kind != DESCSET_SERVICE) {
        /* A friendly verb works too: herald list ops */
        const registry_service *rs = cli_find_verb(name);
        s = rs ? descset_symbol_find(ds, rs->desc->name) : NULL;
    }
    if (!s || s->kind != DESCSET_SERVICE) {
        (void)fprintf(stderr, "herald: no service named \"%s\" (see 'herald list')\n", argv[0]);
        return CLI_EXIT_OPERATIONAL;
    }
    const Google__Protobuf__ServiceDescriptorProto *sp = s->proto;
    for (size_t i = 0; i < sp->n_method; i++)
        (void)printf("%s.%s\n", s->name, sp->method[i]->name);
    return CLI_EXIT_OK;
}

/* ---- describe ---- */

static void put_comment(strbuf *b, const char *comment, int indent)
{
    if (!comment)
        return;
    const char *p = comment;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        strbuf_printf(b, "%*s//%s%.*s\n", indent, "", n ? " " : "", (int)n, p);
        p += n + (nl ? 1 : 0);
    }
}

static const char *scalar_type_name(Google__Protobuf__FieldDescriptorProto__Type t)
{
    static const char *const names[] = {
        "?",       "double",   "float",    "int64",  "uint64",  "int32", "fixed64",
        "fixed32", "bool",     "string",   "group",  "message", "bytes", "uint32",
        "enum",    "sfixed32", "sfixed64", "sint32", "sint64",
    };
    if ((int)t < 0 || (size_t)t >= sizeof names / sizeof names[0])
        return "?";
    return names[t];
}

static const Google__Protobuf__DescriptorProto *find_map_entry(const char *type_name)
{
    const descset_symbol *s = descset_symbol_find(cli_descset(), type_name);
    if (!s || s->kind != DESCSET_MESSAGE)
        return NULL;
    const Google__Protobuf__DescriptorProto *m = s->proto;
    return (m->options && m->options->map_entry) ? m : NULL;
}

static char *field_type_text(const Google__Protobuf__FieldDescriptorProto *f)
{
    const char *tn =
        f->type_name ? (f->type_name[0] == '.' ? f->type_name + 1 : f->type_name) : NULL;
    if (tn && f->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED) {
        const Google__Protobuf__DescriptorProto *e = find_map_entry(tn);
        if (e && e->n_field == 2) {
            char *k = field_type_text(e->field[0]);
            char *v = field_type_text(e->field[1]);
            char *r = xasprintf("map<%s, %s>", k, v);
            free(k);
            free(v);
            return r;
        }
    }
    const char *base = tn ? tn : scalar_type_name(f->type);
    const char *label = "";
    if (f->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED)
        label = "repeated ";
    else if (f->proto3_optional)
        label = "optional ";
    return xasprintf("%s%s", label, base);
}

static void describe_enum(strbuf *b, const char *full,
                          const Google__Protobuf__EnumDescriptorProto *e, int indent)
{
    strbuf_printf(b, "%*senum %s {\n", indent, "", e->name);
    const char *dot = strrchr(full, '.');
    size_t scope = dot ? (size_t)(dot - full) : 0;
    for (size_t i = 0; i < e->n_value; i++) {
        /* Enum values live in the enum's parent scope. */
        char *vname = scope ? xasprintf("%.*s.%s", (int)scope, full, e->value[i]->name)
                            : xstrdup(e->value[i]->name);
        put_comment(b, descset_comment(cli_descset(), vname), indent + 2);
        free(vname);
        strbuf_printf(b, "%*s%s = %d;\n", indent + 2, "", e->value[i]->name, e->value[i]->number);
    }
    strbuf_printf(b, "%*s}\n", indent, "");
}

static void describe_message(strbuf *b, const char *full,
                             const Google__Protobuf__DescriptorProto *m, int indent)
{
    strbuf_printf(b, "%*smessage %s {\n", indent, "", m->name);
    for (size_t i = 0; i < m->n_nested_type; i++) {
        const Google__Protobuf__DescriptorProto *n = m->nested_type[i];
        if (n->options && n->options->map_entry)
            continue;
        char *nf = xasprintf("%s.%s", full, n->name);
        put_comment(b, descset_comment(cli_descset(), nf), indent + 2);
        describe_message(b, nf, n, indent + 2);
        free(nf);
    }
    for (size_t i = 0; i < m->n_enum_type; i++) {
        char *nf = xasprintf("%s.%s", full, m->enum_type[i]->name);
        put_comment(b, descset_comment(cli_descset(), nf), indent + 2);
        describe_enum(b, nf, m->enum_type[i], indent + 2);
        free(nf);
    }
    int open_oneof = -1;
    for (size_t i = 0; i < m->n_field; i++) {
        const Google__Protobuf__FieldDescriptorProto *f = m->field[i];
        int oneof = (f->has_oneof_index && !f->proto3_optional) ? f->oneof_index : -1;
        if (oneof != open_oneof && open_oneof >= 0) {
            strbuf_printf(b, "%*s}\n", indent + 2, "");
            open_oneof = -1;
        }
        int fi = indent + 2;
        if (oneof >= 0) {
            if (oneof != open_oneof) {
                const descset_symbol *fs = NULL;
                char *fname = xasprintf("%s.%s", full, f->name);
                fs = descset_symbol_find(cli_descset(), fname);
                char *oc = fs ? oneof_comment(fs, full) : NULL;
                put_comment(b, oc, indent + 2);
                free(oc);
                free(fname);
                strbuf_printf(b, "%*soneof %s {\n", indent + 2, "",
                              (size_t)oneof < m->n_oneof_decl ? m->oneof_decl[oneof]->name : "?");
                open_oneof = oneof;
            }
            fi += 2;
        }
        char *fname = xasprintf("%s.%s", full, f->name);
        const char *c = descset_comment(cli_descset(), fname);
        if (!(oneof >= 0 && c && strncmp(c, "See ", 4) == 0))
            put_comment(b, c, fi);
        free(fname);
        char *t = field_type_text(f);
        strbuf_printf(b, "%*s%s %s = %d;\n", fi, "", t, f->name, f->number);
        free(t);
    }
    if (open_oneof >= 0)
        strbuf_printf(b, "%*s}\n", indent + 2, "");
    strbuf_printf(b, "%*s}\n", indent, "");
}

static void method_line(strbuf *b, const Google__Protobuf__MethodDescriptorProto *m, int indent)
{
    strbuf_printf(b, "%*srpc %s(%s%s) returns (%s%s);\n", indent, "", m->name,
                  m->client_streaming ? "stream " : "",
                  m->input_type[0] == '.' ? m->input_type + 1 : m->input_type,
                  m->server_streaming ? "stream " : "",
                  m->output_type[0] == '.' ? m->output_type + 1 : m->output_type);
}

static void cli_hint(strbuf *b, const char *service, const char *method)
{
    const registry_service *rs = registry_service_find(service);
    if (!rs || !rs->api)
        return;
    char *verb = cli_service_verb(rs->desc);
    if (method) {
        char *k = cli_kebab_from_camel(method);
        strbuf_printf(b, "\nCLI: herald %s %s --help\n", verb, k);
        free(k);
    } else {
        strbuf_printf(b, "\nCLI: herald %s --help\n", verb);
    }
    free(verb);
}

static void describe_service(strbuf *b, const descset_symbol *s)
{
    const Google__Protobuf__ServiceDescriptorProto *sp = s->proto;
    strbuf_printf(b, "%s is a service:\n", s->name);
    put_comment(b, descset_comment(cli_descset(), s->name), 0);
    strbuf_printf(b, "service %s {\n", sp->name);
    for (size_t i = 0; i < sp->n_method; i++) {
        char *mn = xasprintf("%s.%s", s->name, sp->method[i]->name);
        put_comment(b, descset_comment(cli_descset(), mn), 2);
        free(mn);
        method_line(b, sp->method[i], 2);
    }
    strbuf_puts(b, "}\n");
    cli_hint(b, s->name, NULL);
}

static bool describe_symbol(strbuf *b, const char *name)
{
    const descset *ds = cli_descset();
    const descset_symbol *s = descset_symbol_find(ds, name);
    if (!s)
        return false;
    switch (s->kind) {
    case DESCSET_SERVICE:
        describe_service(b, s);
        break;
    case DESCSET_METHOD: {
        strbuf_printf(b, "%s is a method:\n", s->name);
        put_comment(b, descset_comment(ds, s->name), 0);
        method_line(b, s->proto, 0);
        const char *dot = strrchr(s->name, '.');
        char *svc = xstrndup(s->name, (size_t)(dot - s->name));
        cli_hint(b, svc, dot + 1);
        free(svc);
        break;
    }
    case DESCSET_MESSAGE:
        strbuf_printf(b, "%s is a message:\n", s->name);
        put_comment(b, descset_comment(ds, s->name), 0);
        describe_message(b, s->name, s->proto, 0);
        break;
    case DESCSET_ENUM:
        strbuf_printf(b, "%s is an enum:\n", s->name);
        put_comment(b, descset_comment(ds, s->name), 0);
        describe_enum(b, s->name, s->proto, 0);
        break;
    case DESCSET_FIELD: {
        const Google__Protobuf__FieldDescriptorProto *f = s->proto;
        strbuf_printf(b, "%s is a field:\n", s->name);
        char *c = cli_symbol_comment(s->name);
        put_comment(b, c, 0);
        free(c);
        char *t = field_type_text(f);
        strbuf_printf(b, "%s %s = %d;\n", t, f->name, f->number);
        free(t);
        break;
    }
    case DESCSET_ONEOF:
        strbuf_printf(b, "%s is a oneof:\n", s->name);
        put_comment(b, descset_comment(ds, s->name), 0);
        break;
    case DESCSET_ENUM_VALUE: {
        const Google__Protobuf__EnumValueDescriptorProto *v = s->proto;
        strbuf_printf(b, "%s is an enum value:\n", s->name);
        put_comment(b, descset_comment(ds, s->name), 0);
        strbuf_printf(b, "%s = %d;\n", v->name, v->number);
        break;
    }
    case DESCSET_PACKAGE: {
        strbuf_printf(b, "%s is a package:\n", s->name);
        size_t plen = strlen(s->name);
        for (size_t i = 0; i < descset_symbol_count(ds); i++) {
            const descset_symbol *x = descset_symbol_at(ds, i);
            if (strncmp(x->name, s->name, plen) != 0 || x->name[plen] != '.' ||
                strchr(x->name + plen + 1, '.') != NULL)
                continue;
            const char *kind = x->kind == DESCSET_SERVICE   ? "service"
                               : x->kind == DESCSET_MESSAGE ? "message"
                               : x->kind == DESCSET_ENUM    ? "enum"
                                                            : NULL;
            if (kind)
                strbuf_printf(b, "  %-8s %s\n", kind, x->name);
        }
        break;
    }
    }
    return true;
}

int cli_cmd_describe(int argc, char **argv)
{
    const descset *ds = cli_descset();
    strbuf b = { 0 };
    strbuf_puts(&b, "");
    int rc = CLI_EXIT_OK;
    if (argc == 0) {
        for (size_t i = 0; i < descset_service_count(ds); i++) {
            if (i > 0)
                strbuf_putc(&b, '\n');
            describe_service(&b, descset_service_at(ds, i));
        }
    }
    for (int i = 0; i < argc; i++) {
        char *name = xstrdup(argv[i][0] == '.' ? argv[i] + 1 : argv[i]);
        char *slash = strchr(name, '/');
        if (slash)
            *slash = '.';
        if (i > 0)
            strbuf_putc(&b, '\n');
        bool found = describe_symbol(&b, name);
        if (!found) {
            /* Friendly names: "ops" or "ops get-profile" given as one arg. */
            const registry_service *rs = cli_find_verb(name);
            if (rs)
                found = describe_symbol(&b, rs->desc->name);
        }
        if (!found) {
            (void)fprintf(stderr, "herald: no symbol named \"%s\" (try 'herald list')\n", argv[i]);
            rc = CLI_EXIT_OPERATIONAL;
        }
        free(name);
    }
    (void)fwrite(b.data, 1, b.len, stdout);
    strbuf_fini(&b);
    return rc;
}
