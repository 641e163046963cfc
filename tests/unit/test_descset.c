/* Unit tests for common/descset: the embedded API set, a fixed test set
 * (api.proto, descriptor.proto, the runtime's test service), and hand-made
 * hostile sets. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "descset.h"
#include "util.h"

extern const unsigned char descset_test_pb[];
extern const size_t descset_test_pb_len;

/* ---- helpers ---- */

static descset *test_set(void)
{
    char *err = NULL;
    descset *ds = descset_new(descset_test_pb, descset_test_pb_len, &err);
    if (!ds)
        fail_msg("test set: %s", err);
    assert_null(err);
    return ds;
}

static void put_varint(strbuf *b, uint64_t v)
{
    while (v >= 0x80) {
        strbuf_putc(b, (char)(0x80 | (v & 0x7f)));
        v >>= 7;
    }
    strbuf_putc(b, (char)v);
}

/* Appends f as one FileDescriptorSet entry (field 1). */
static void put_file(strbuf *b, const Google__Protobuf__FileDescriptorProto *f)
{
    size_t n = google__protobuf__file_descriptor_proto__get_packed_size(f);
    uint8_t *tmp = xmalloc(n);
    google__protobuf__file_descriptor_proto__pack(f, tmp);
    strbuf_putc(b, 0x0a);
    put_varint(b, n);
    strbuf_append(b, (const char *)tmp, n);
    free(tmp);
}

/* A file named name in package pkg (may be NULL) importing deps, defining
 * one message msg (NULL: none). */
static void put_simple_file(strbuf *b, const char *name, const char *pkg, char **deps,
                            size_t n_deps, const char *msg)
{
    Google__Protobuf__FileDescriptorProto f = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__DescriptorProto m = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__DescriptorProto *mp = &m;
    f.name = (char *)name;
    f.package = (char *)pkg;
    f.dependency = deps;
    f.n_dependency = n_deps;
    if (msg) {
        m.name = (char *)msg;
        f.message_type = &mp;
        f.n_message_type = 1;
    }
    put_file(b, &f);
}

static descset *parse_buf(const strbuf *b, char **err)
{
    return descset_new((const uint8_t *)(b->data ? b->data : ""), b->len, err);
}

typedef struct visit {
    const descset_file *seen[64];
    size_t n;
    size_t stop_after; /* 0 = never */
} visit;

static bool visit_file(const descset_file *f, void *user)
{
    visit *v = user;
    assert_true(v->n < 64);
    v->seen[v->n++] = f;
    return v->stop_after == 0 || v->n < v->stop_after;
}

static size_t visit_pos(const visit *v, const char *name)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->seen[i]->name, name) == 0)
            return i;
    return SIZE_MAX;
}

static bool visit_count(const descset_file *f, void *user)
{
    (void)f;
    (*(size_t *)user)++;
    return true;
}

/* Is `name` defined in f or one of its transitive dependencies? */
static bool reachable(const descset *ds, const descset_file *f, const char *type_name)
{
    const descset_symbol *s = descset_symbol_find(ds, type_name);
    if (!s)
        return false;
    visit v = { 0 };
    descset_walk_deps(ds, f, visit_file, &v);
    return visit_pos(&v, s->file->name) != SIZE_MAX;
}

/* ---- the embedded API set ---- */

static void api_set_parses(void **state)
{
    (void)state;
    const descset *ds = descset_api();
    assert_non_null(ds);
    assert_ptr_equal(ds, descset_api()); /* parsed once */
    assert_true(descset_file_count(ds) >= 3);
    for (size_t i = 0; i < descset_file_count(ds); i++) {
        const descset_file *f = descset_file_at(ds, i);
        assert_int_equal(descset_file_index(ds, f), i);
        assert_ptr_equal(descset_file_by_name(ds, f->name), f);
        Google__Protobuf__FileDescriptorProto *p =
            google__protobuf__file_descriptor_proto__unpack(NULL, f->len, f->bytes);
        assert_non_null(p);
        assert_string_equal(p->name, f->name);
        assert_int_equal(p->n_dependency, f->n_deps);
        for (size_t j = 0; j < f->n_deps; j++)
            assert_non_null(descset_file_by_name(ds, f->deps[j]));
        google__protobuf__file_descriptor_proto__free_unpacked(p, NULL);
    }
    assert_null(descset_file_at(ds, descset_file_count(ds)));
    assert_null(descset_file_by_name(ds, "no/such.proto"));
    for (const char *const *n =
             (const char *const[]){ "grpc/health/v1/health.proto",
                                    "grpc/reflection/v1/reflection.proto",
                                    "grpc/reflection/v1alpha/reflection.proto", NULL };
         *n; n++)
        assert_non_null(descset_file_by_name(ds, *n));
}

/* Every service, method, method type and message resolves to a file whose
 * bytes parse and that defines it; method types are reachable from the
 * service's file through its imports. */
static void api_every_symbol_resolves(void **state)
{
    (void)state;
    const descset *ds = descset_api();
    size_t n_services = 0, n_methods = 0, n_messages = 0, n_values = 0;

    for (size_t i = 0; i < descset_service_count(ds); i++) {
        const descset_symbol *svc = descset_service_at(ds, i);
        assert_int_equal(svc->kind, DESCSET_SERVICE);
        assert_ptr_equal(descset_symbol_find(ds, svc->name), svc);
        const Google__Protobuf__ServiceDescriptorProto *sp = svc->proto;
        for (size_t j = 0; j < sp->n_method; j++) {
            const Google__Protobuf__MethodDescriptorProto *mp = sp->method[j];
            char *full = xasprintf("%s.%s", svc->name, mp->name);
            const descset_symbol *m = descset_symbol_find(ds, full);
            assert_non_null(m);
            assert_int_equal(m->kind, DESCSET_METHOD);
            assert_ptr_equal(m->proto, mp);
            assert_ptr_equal(m->file, svc->file);
            assert_true(descset_method_streaming(ds, svc->name, mp->name, NULL, NULL));
            const descset_symbol *in = descset_symbol_find(ds, mp->input_type);
            const descset_symbol *out = descset_symbol_find(ds, mp->output_type);
            assert_non_null(in);
            assert_non_null(out);
            assert_int_equal(in->kind, DESCSET_MESSAGE);
            assert_int_equal(out->kind, DESCSET_MESSAGE);
            assert_true(reachable(ds, svc->file, mp->input_type));
            assert_true(reachable(ds, svc->file, mp->output_type));
            free(full);
            n_methods++;
        }
        n_services++;
    }
    for (size_t i = 0; i < descset_symbol_count(ds); i++) {
        const descset_symbol *s = descset_symbol_at(ds, i);
        assert_ptr_equal(descset_file_by_name(ds, s->file->name), s->file);
        if (s->kind == DESCSET_ENUM) {
            /* Each value resolves by its protobuf name (a sibling of the enum)
             * and by the enum-qualified spelling, to the same symbol. */
            const Google__Protobuf__EnumDescriptorProto *ep = s->proto;
            const char *dot = strrchr(s->name, '.');
            int scope = dot ? (int)(dot - s->name) : 0;
            for (size_t j = 0; j < ep->n_value; j++) {
                char *canon = dot ? xasprintf("%.*s.%s", scope, s->name, ep->value[j]->name)
                                  : xstrdup(ep->value[j]->name);
                char *qualified = xasprintf("%s.%s", s->name, ep->value[j]->name);
                const descset_symbol *v = descset_symbol_find(ds, canon);
                assert_non_null(v);
                assert_int_equal(v->kind, DESCSET_ENUM_VALUE);
                assert_ptr_equal(v->proto, ep->value[j]);
                assert_ptr_equal(descset_symbol_find(ds, qualified), v);
                free(qualified);
                free(canon);
                n_values++;
            }
        }
        if (s->kind != DESCSET_MESSAGE)
            continue;
        Google__Protobuf__FileDescriptorProto *p =
            google__protobuf__file_descriptor_proto__unpack(NULL, s->file->len, s->file->bytes);
        assert_non_null(p);
        google__protobuf__file_descriptor_proto__free_unpacked(p, NULL);
        /* Every field's message or enum type resolves too. */
        const Google__Protobuf__DescriptorProto *mp = s->proto;
        for (size_t j = 0; j < mp->n_field; j++)
            if (mp->field[j]->type_name)
                assert_non_null(descset_symbol_find(ds, mp->field[j]->type_name));
        n_messages++;
    }
    assert_true(n_services >= 3);
    assert_true(n_methods >= 4);
    assert_true(n_messages >= 10);
    assert_true(n_values >= 4); /* health's ServingStatus at least */
}

static void api_services_and_streaming(void **state)
{
    (void)state;
    const descset *ds = descset_api();
    const char *want[] = { "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                           "grpc.reflection.v1alpha.ServerReflection" };
    for (size_t w = 0; w < 3; w++) {
        bool found = false;
        for (size_t i = 0; i < descset_service_count(ds); i++)
            found = found || strcmp(descset_service_at(ds, i)->name, want[w]) == 0;
        assert_true(found);
    }
    /* The list is exactly the services of all files, each once. */
    size_t total = 0;
    for (size_t i = 0; i < descset_file_count(ds); i++)
        total += descset_file_at(ds, i)->proto->n_service;
    assert_int_equal(descset_service_count(ds), total);
    assert_null(descset_service_at(ds, total));

    bool cs = true, ss = true;
    assert_true(descset_method_streaming(ds, "grpc.health.v1.Health", "Check", &cs, &ss));
    assert_false(cs);
    assert_false(ss);
    assert_true(descset_method_streaming(ds, "grpc.health.v1.Health", "Watch", &cs, &ss));
    assert_false(cs);
    assert_true(ss);
    assert_true(descset_method_streaming(ds, "grpc.reflection.v1alpha.ServerReflection",
                                         "ServerReflectionInfo", &cs, &ss));
    assert_true(cs);
    assert_true(ss);
    cs = ss = true;
    assert_false(descset_method_streaming(ds, "grpc.health.v1.Health", "Nope", &cs, &ss));
    assert_false(cs);
    assert_false(ss);
    /* A message is not a method. */
    assert_false(descset_method_streaming(ds, "grpc.health.v1", "HealthCheckRequest", &cs, &ss));
}

static void api_comments_and_scoping(void **state)
{
    (void)state;
    const descset *ds = descset_api();
    const char *c = descset_comment(ds, "grpc.health.v1.Health.Check");
    assert_non_null(c);
    assert_string_equal(c, "If the requested service is unknown, the call will fail with status\n"
                           "NOT_FOUND.");
    c = descset_comment(ds, "grpc.reflection.v1.ServerReflection.ServerReflectionInfo");
    assert_non_null(c);
    assert_non_null(strstr(c, "bidirectional stream"));
    assert_null(descset_comment(ds, "grpc.health.v1.HealthCheckRequest")); /* has none */
    /* A trailing comment stands in for a missing leading one. */
    c = descset_comment(ds, "grpc.health.v1.HealthCheckResponse.SERVICE_UNKNOWN");
    assert_non_null(c);
    assert_string_equal(c, "Used only by the Watch method.");
    assert_null(descset_comment(ds, "no.such.Symbol"));

    /* Nested enum values are siblings of the enum, inside the message. */
    const descset_symbol *s = descset_symbol_find(ds, "grpc.health.v1.HealthCheckResponse.SERVING");
    assert_non_null(s);
    assert_int_equal(s->kind, DESCSET_ENUM_VALUE);
    assert_ptr_equal(
        descset_symbol_find(ds, "grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING"), s);
    assert_int_equal(
        descset_symbol_find(ds, "grpc.health.v1.HealthCheckResponse.ServingStatus")->kind,
        DESCSET_ENUM);
    /* Oneofs are symbols, with their comments. */
    s = descset_symbol_find(ds, "grpc.reflection.v1.ServerReflectionRequest.message_request");
    assert_non_null(s);
    assert_int_equal(s->kind, DESCSET_ONEOF);
    c = descset_comment(ds, "grpc.reflection.v1alpha.ServerReflectionRequest.message_request");
    assert_non_null(c);
    const char *want = "To use reflection service, the client should set one of the";
    assert_true(strncmp(c, want, strlen(want)) == 0);
    assert_int_equal(descset_symbol_find(ds, "grpc.health.v1")->kind, DESCSET_PACKAGE);
    assert_int_equal(descset_symbol_find(ds, "grpc")->kind, DESCSET_PACKAGE);
    assert_int_equal(descset_symbol_find(ds, ".grpc.health.v1.HealthCheckRequest.service")->kind,
                     DESCSET_FIELD);
}

/* ---- the fixed test set ---- */

/* Reassembling field 1 + length + bytes of every file gives back the input:
 * the files are the exact bytes protoc wrote, in order. */
static void test_set_keeps_exact_bytes(void **state)
{
    (void)state;
    descset *ds = test_set();
    strbuf b = { 0 };
    for (size_t i = 0; i < descset_file_count(ds); i++) {
        const descset_file *f = descset_file_at(ds, i);
        strbuf_putc(&b, 0x0a);
        put_varint(&b, f->len);
        strbuf_append(&b, (const char *)f->bytes, f->len);
    }
    assert_int_equal(b.len, descset_test_pb_len);
    assert_memory_equal(b.data, descset_test_pb, b.len);
    /* The set owns a copy. */
    assert_true(descset_file_at(ds, 0)->bytes < descset_test_pb ||
                descset_file_at(ds, 0)->bytes >= descset_test_pb + descset_test_pb_len);
    strbuf_fini(&b);
    descset_free(ds);
}

static void test_set_symbols(void **state)
{
    (void)state;
    descset *ds = test_set();
    /* clang-format off */
    static const struct { const char *name; descset_kind kind; const char *file; } table[] = {
        { "google",                                     DESCSET_PACKAGE,    NULL },
        { "google.protobuf",                            DESCSET_PACKAGE,    NULL },
        { "google.protobuf.Api",                        DESCSET_MESSAGE,    "google/protobuf/api.proto" },
        { "google.protobuf.Api.methods",                DESCSET_FIELD,      "google/protobuf/api.proto" },
        { "google.protobuf.Field.Kind",                 DESCSET_ENUM,       "google/protobuf/type.proto" },
        { "google.protobuf.Field.TYPE_DOUBLE",          DESCSET_ENUM_VALUE, "google/protobuf/type.proto" },
        { "google.protobuf.Field.Kind.TYPE_DOUBLE",     DESCSET_ENUM_VALUE, "google/protobuf/type.proto" },
        { "google.protobuf.Syntax",                     DESCSET_ENUM,       "google/protobuf/type.proto" },
        { "google.protobuf.SYNTAX_PROTO3",              DESCSET_ENUM_VALUE, "google/protobuf/type.proto" },
        { "google.protobuf.Syntax.SYNTAX_PROTO3",       DESCSET_ENUM_VALUE, "google/protobuf/type.proto" },
        { "google.protobuf.DescriptorProto.ExtensionRange",       DESCSET_MESSAGE, "google/protobuf/descriptor.proto" },
        { "google.protobuf.DescriptorProto.ExtensionRange.start", DESCSET_FIELD,   "google/protobuf/descriptor.proto" },
        { "google.protobuf.FieldDescriptorProto.TYPE_INT32",      DESCSET_ENUM_VALUE, "google/protobuf/descriptor.proto" },
        { "google.protobuf.FieldOptions.JS_NUMBER",               DESCSET_ENUM_VALUE, "google/protobuf/descriptor.proto" },
        { "google.protobuf.SourceCodeInfo.Location.leading_comments", DESCSET_FIELD, "google/protobuf/descriptor.proto" },
        { "herald.test",                                DESCSET_PACKAGE,    NULL },
        { "herald.test.v1",                             DESCSET_PACKAGE,    NULL },
        { "herald.test.v1.TestService",                 DESCSET_SERVICE,    "herald/test/v1/test.proto" },
        { "herald.test.v1.TestService.Chat",            DESCSET_METHOD,     "herald/test/v1/test.proto" },
        { ".herald.test.v1.EchoRequest.sleep_ms",       DESCSET_FIELD,      "herald/test/v1/test.proto" },
        { "google.protobuf.FieldDescriptorProto.Type",  DESCSET_ENUM,       "google/protobuf/descriptor.proto" },
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const descset_symbol *s = descset_symbol_find(ds, table[i].name);
        if (!s)
            fail_msg("symbol %s not found", table[i].name);
        assert_int_equal(s->kind, table[i].kind);
        if (table[i].file)
            assert_string_equal(s->file->name, table[i].file);
        else /* a package: the first file declaring it or a sub-package */
            assert_true(strncmp(s->file->proto->package, s->name, strlen(s->name)) == 0);
        assert_true(s->kind == DESCSET_PACKAGE ? s->proto == NULL : s->proto != NULL);
    }
    /* The enum-qualified spelling is an alias of the canonical symbol. */
    const descset_symbol *v = descset_symbol_find(ds, "google.protobuf.Field.Kind.TYPE_DOUBLE");
    assert_string_equal(v->name, "google.protobuf.Field.TYPE_DOUBLE");
    assert_int_equal(((const Google__Protobuf__EnumValueDescriptorProto *)v->proto)->number, 1);

    /* clang-format off */
    static const char *const missing[] = {
        "", ".", "google.", "google.protobuf.Nope", "google.protobuf.Api.nope",
        "google.protobuf.Kind.TYPE_DOUBLE", "google.protobuf.TYPE_DOUBLE", "Api",
        "herald.tes", "herald.test.v1.TestService.", "herald.test.v1.TestService.Chat.x",
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++)
        if (descset_symbol_find(ds, missing[i]))
            fail_msg("symbol '%s' should not exist", missing[i]);
    assert_null(descset_symbol_find(ds, NULL));
    assert_non_null(descset_symbol_find(ds, "herald")); /* parent package */

    /* Sorted, unique, aliases not listed. */
    for (size_t i = 1; i < descset_symbol_count(ds); i++)
        assert_true(strcmp(descset_symbol_at(ds, i - 1)->name, descset_symbol_at(ds, i)->name) < 0);
    for (size_t i = 0; i < descset_symbol_count(ds); i++)
        assert_null(strstr(descset_symbol_at(ds, i)->name, "Kind.TYPE_"));
    assert_null(descset_symbol_at(ds, descset_symbol_count(ds)));
    descset_free(ds);
}

static void test_set_comments(void **state)
{
    (void)state;
    descset *ds = test_set();
    /* clang-format off */
    static const struct { const char *symbol; const char *comment; } table[] = {
        { "google.protobuf.Type",                    "A protocol buffer message type." },
        { "google.protobuf.Type.name",               "The fully qualified message name." },
        { "google.protobuf.Field.Kind",              "Basic field types." },
        { "google.protobuf.Field.TYPE_UNKNOWN",      "Field type unknown." },
        { "google.protobuf.Field.Kind.TYPE_UNKNOWN", "Field type unknown." },
        { "herald.test.v1.TestService.Collect",
          "Client streaming: replies with the concatenation of received messages." },
        { "herald.test.v1.EchoRequest.sleep_ms",
          "Sleep this long before replying (on the worker, or detached with\n"
          "`detach`), to test deadlines, cancellation and graceful shutdown." },
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const char *c = descset_comment(ds, table[i].symbol);
        if (!c)
            fail_msg("no comment for %s", table[i].symbol);
        assert_string_equal(c, table[i].comment);
    }
    const char *api = descset_comment(ds, "google.protobuf.Api");
    assert_non_null(api);
    assert_true(strncmp(api, "Api is a light-weight descriptor for an API Interface.\n\n", 56) ==
                0);
    assert_null(descset_comment(ds, "herald.test.v1.TestService.Echo"));
    descset_free(ds);
}

static void test_set_walk_deps(void **state)
{
    (void)state;
    descset *ds = test_set();
    const descset_file *api = descset_file_by_name(ds, "google/protobuf/api.proto");
    assert_non_null(api);
    visit v = { 0 };
    descset_walk_deps(ds, api, visit_file, &v);
    /* api -> {source_context, type -> {any, source_context}}: 4 files, each once. */
    assert_int_equal(v.n, 4);
    assert_ptr_equal(v.seen[3], api);
    size_t any = visit_pos(&v, "google/protobuf/any.proto");
    size_t sc = visit_pos(&v, "google/protobuf/source_context.proto");
    size_t type = visit_pos(&v, "google/protobuf/type.proto");
    assert_true(any < type);
    assert_true(sc < type);
    for (size_t i = 0; i < v.n; i++)
        for (size_t j = i + 1; j < v.n; j++)
            assert_ptr_not_equal(v.seen[i], v.seen[j]);

    /* Early stop. */
    visit one = { .stop_after = 1 };
    descset_walk_deps(ds, api, visit_file, &one);
    assert_int_equal(one.n, 1);

    /* A file without imports visits itself only. */
    visit leaf = { 0 };
    descset_walk_deps(ds, descset_file_by_name(ds, "google/protobuf/any.proto"), visit_file, &leaf);
    assert_int_equal(leaf.n, 1);

    /* A file of another set is ignored. */
    visit other = { 0 };
    descset_walk_deps(ds, descset_file_at(descset_api(), 0), visit_file, &other);
    assert_int_equal(other.n, 0);
    assert_int_equal(descset_file_index(ds, descset_file_at(descset_api(), 0)), SIZE_MAX);
    descset_free(ds);
}

/* ---- hand-made and hostile sets ---- */

static void crafted_sets(void **state)
{
    (void)state;
    char *err = NULL;
    strbuf b = { 0 };
    descset *ds;

    /* Empty: valid, nothing in it. */
    ds = descset_new((const uint8_t *)"", 0, &err);
    assert_non_null(ds);
    assert_int_equal(descset_file_count(ds), 0);
    assert_int_equal(descset_symbol_count(ds), 0);
    assert_int_equal(descset_service_count(ds), 0);
    assert_null(descset_symbol_find(ds, "x"));
    assert_null(descset_file_by_name(ds, "x"));
    descset_free(ds);

    /* An import cycle terminates, each file once. */
    char *dep_b[] = { "b.proto" }, *dep_a[] = { "a.proto" };
    put_simple_file(&b, "a.proto", "p", dep_b, 1, "A");
    put_simple_file(&b, "b.proto", "p", dep_a, 1, "B");
    ds = parse_buf(&b, &err);
    assert_non_null(ds);
    visit v = { 0 };
    descset_walk_deps(ds, descset_file_by_name(ds, "a.proto"), visit_file, &v);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.seen[1]->name, "a.proto");
    descset_free(ds);

    /* A name defined twice: the first definition wins. */
    strbuf_reset(&b);
    put_simple_file(&b, "one.proto", "p", NULL, 0, "Dup");
    put_simple_file(&b, "two.proto", "p", NULL, 0, "Dup");
    ds = parse_buf(&b, &err);
    assert_non_null(ds);
    assert_string_equal(descset_symbol_find(ds, "p.Dup")->file->name, "one.proto");
    assert_int_equal(descset_symbol_count(ds), 2); /* "p", "p.Dup" */
    descset_free(ds);

    /* Unknown top-level fields are skipped. */
    strbuf_reset(&b);
    strbuf_append(&b, "\x10\x01\x1a\x02hi", 6); /* field 2 varint, field 3 bytes */
    put_simple_file(&b, "x.proto", NULL, NULL, 0, "X");
    ds = parse_buf(&b, &err);
    assert_non_null(ds);
    assert_int_equal(descset_file_count(ds), 1);
    assert_non_null(descset_symbol_find(ds, "X")); /* no package */
    descset_free(ds);

    /* clang-format off */
    static const struct { const char *what; const char *bytes; size_t len; const char *err; } bad[] = {
        { "truncated length",  "\x0a\x05\x0a\x01",    4, "malformed" },
        { "varint too long",   "\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12, "malformed" },
        { "field 1 varint",    "\x08\x01",            2, "length-delimited" },
        { "field number 0",    "\x02\x00",            2, "malformed" },
        { "group",             "\x0b\x0c",            2, "malformed" },
        { "file not parsing",  "\x0a\x02\x0a\x05",    4, "file 1" },
        { "file without name", "\x0a\x02\x12\x00",    4, "no name" },
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = NULL;
        ds = descset_new((const uint8_t *)bad[i].bytes, bad[i].len, &err);
        if (ds)
            fail_msg("%s: accepted", bad[i].what);
        assert_non_null(err);
        if (!strstr(err, bad[i].err))
            fail_msg("%s: error '%s' lacks '%s'", bad[i].what, err, bad[i].err);
        free(err);
    }

    /* A missing import, a duplicate file, an unnamed message. */
    strbuf_reset(&b);
    char *dep_gone[] = { "gone.proto" };
    put_simple_file(&b, "a.proto", "p", dep_gone, 1, "A");
    assert_null(parse_buf(&b, &err));
    assert_non_null(strstr(err, "a.proto imports gone.proto"));
    free(err);

    strbuf_reset(&b);
    put_simple_file(&b, "a.proto", "p", NULL, 0, "A");
    put_simple_file(&b, "a.proto", "q", NULL, 0, "B");
    assert_null(parse_buf(&b, &err));
    assert_non_null(strstr(err, "a.proto appears twice"));
    free(err);

    strbuf_reset(&b);
    put_simple_file(&b, "a.proto", "p", NULL, 0, "");
    assert_null(parse_buf(&b, &err));
    assert_non_null(strstr(err, "no name"));
    free(err);
    strbuf_fini(&b);
}

/* Messages nested 300 deep: refused before protobuf-c recurses on them. */
static void deep_nesting_refused(void **state)
{
    (void)state;
    enum { DEPTH = 300 };
    /* Build inside-out: DescriptorProto{name:"m", nested_type: <inner>}. */
    strbuf msg = { 0 };
    strbuf_append(&msg, "\x0a\x01m", 3);
    for (int i = 0; i < DEPTH; i++) {
        strbuf next = { 0 };
        strbuf_append(&next, "\x0a\x01m", 3);
        strbuf_putc(&next, 0x1a); /* nested_type = 3 */
        put_varint(&next, msg.len);
        strbuf_append(&next, msg.data, msg.len);
        strbuf_fini(&msg);
        msg = next;
    }
    strbuf file = { 0 };
    strbuf_append(&file, "\x0a\006d.prot", 8); /* name = "d.prot" */
    strbuf_putc(&file, 0x22);                  /* message_type = 4 */
    put_varint(&file, msg.len);
    strbuf_append(&file, msg.data, msg.len);
    strbuf set = { 0 };
    strbuf_putc(&set, 0x0a);
    put_varint(&set, file.len);
    strbuf_append(&set, file.data, file.len);

    char *err = NULL;
    assert_null(parse_buf(&set, &err));
    assert_non_null(strstr(err, "nested too deeply"));
    free(err);
    strbuf_fini(&set);
    strbuf_fini(&file);
    strbuf_fini(&msg);
}

/* Random damage to a real set never crashes or leaks (ASan/LSan judge). */
static void mutated_sets(void **state)
{
    (void)state;
    uint64_t rng = 0x9e3779b97f4a7c15u;
    uint8_t *buf = xmalloc(descset_test_pb_len);
    size_t accepted = 0, refused = 0;

    for (int iter = 0; iter < 400; iter++) {
        memcpy(buf, descset_test_pb, descset_test_pb_len);
        size_t len = descset_test_pb_len;
        for (int k = 0; k < 1 + iter % 8; k++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            buf[rng % len] = (uint8_t)(rng >> 32);
        }
        if (iter % 5 == 0)
            len = (size_t)(rng >> 40) % len; /* also truncate */
        char *err = NULL;
        descset *ds = descset_new(buf, len, &err);
        if (ds) {
            assert_null(err);
            accepted++;
            for (size_t i = 0; i < descset_symbol_count(ds); i++) {
                const descset_symbol *s = descset_symbol_at(ds, i);
                assert_ptr_equal(descset_symbol_find(ds, s->name), s);
                (void)descset_comment(ds, s->name);
            }
            for (size_t i = 0; i < descset_file_count(ds); i++) {
                size_t n = 0;
                descset_walk_deps(ds, descset_file_at(ds, i), visit_count, &n);
                assert_true(n >= 1 && n <= descset_file_count(ds));
            }
            descset_free(ds);
        } else {
            assert_non_null(err);
            free(err);
            refused++;
        }
    }
    assert_true(refused > 0);
    assert_true(accepted > 0);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(api_set_parses),
        cmocka_unit_test(api_every_symbol_resolves),
        cmocka_unit_test(api_services_and_streaming),
        cmocka_unit_test(api_comments_and_scoping),
        cmocka_unit_test(test_set_keeps_exact_bytes),
        cmocka_unit_test(test_set_symbols),
        cmocka_unit_test(test_set_comments),
        cmocka_unit_test(test_set_walk_deps),
        cmocka_unit_test(crafted_sets),
        cmocka_unit_test(deep_nesting_refused),
        cmocka_unit_test(mutated_sets),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    descset_api_release();
    return rc;
}
