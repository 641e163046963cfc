/* Unit tests for server/reflection: the pure core (reflection_answer) over
 * the embedded API set, the fixed test set and a hand-made set with an
 * extension; and the stream glue against a fake runtime defined here (the
 * few rpc_* functions reflection.c calls). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "descset.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "reflection.h"
#include "util.h"

extern const unsigned char descset_test_pb[];
extern const size_t descset_test_pb_len;

typedef Grpc__Reflection__V1__ServerReflectionRequest req_t;
typedef Grpc__Reflection__V1__ServerReflectionResponse resp_t;

/* ---- a fake runtime ---- */

struct rpc_server {
    size_t n;
    char *paths[4];
    const rpc_stream_handler *handlers[4];
    rpc_pool pools[4];
};

struct rpc_call {
    void *user;
    size_t sends;
    uint8_t *last; /* last message sent */
    size_t last_len;
    int finishes;
    status finished_with;
    bool over; /* sends fail after finish */
};

void *rpc_call_user(const rpc_call *c)
{
    return c->user;
}

void rpc_call_set_user(rpc_call *c, void *p)
{
    c->user = p;
}

bool rpc_call_send_raw(rpc_call *c, const void *data, size_t len)
{
    if (c->over)
        return false;
    free(c->last);
    c->last = xmalloc(len);
    memcpy(c->last, data, len);
    c->last_len = len;
    c->sends++;
    return true;
}

void rpc_call_finish(rpc_call *c, status st, const char *fmt, ...)
{
    (void)fmt;
    c->finishes++;
    c->finished_with = st;
    c->over = true;
}

status rpc_server_add_stream(rpc_server *s, const char *path, const rpc_stream_handler *h,
                             rpc_pool pool, char **err)
{
    *err = NULL;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->paths[i], path) == 0) {
            *err = xasprintf("%s registered twice", path);
            return ST_INVALID;
        }
    assert_true(s->n < 4);
    s->paths[s->n] = xstrdup(path);
    s->handlers[s->n] = h;
    s->pools[s->n] = pool;
    s->n++;
    return ST_OK;
}

/* ---- helpers ---- */

static descset *test_set(void)
{
    char *err = NULL;
    descset *ds = descset_new(descset_test_pb, descset_test_pb_len, &err);
    if (!ds)
        fail_msg("test set: %s", err);
    return ds;
}

static uint8_t *pack_req(const req_t *rq, size_t *len)
{
    *len = grpc__reflection__v1__server_reflection_request__get_packed_size(rq);
    uint8_t *b = xmalloc(*len);
    grpc__reflection__v1__server_reflection_request__pack(rq, b);
    return b;
}

/* Answers rq on the stream `sent`; returns the decoded response. */
static resp_t *ask(const reflection *r, reflection_sent *sent, const req_t *rq)
{
    size_t len, out_len = 0;
    uint8_t *in = pack_req(rq, &len), *out = NULL;
    assert_int_equal(reflection_answer(r, sent, in, len, &out, &out_len), ST_OK);
    assert_non_null(out);
    resp_t *resp = grpc__reflection__v1__server_reflection_response__unpack(NULL, out_len, out);
    assert_non_null(resp);
    free(out);
    free(in);
    return resp;
}

static resp_t *ask_symbol(const reflection *r, reflection_sent *sent, const char *symbol)
{
    req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    rq.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
    rq.file_containing_symbol = (char *)symbol;
    return ask(r, sent, &rq);
}

static resp_t *ask_file(const reflection *r, reflection_sent *sent, const char *name)
{
    req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    rq.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
    rq.file_by_filename = (char *)name;
    return ask(r, sent, &rq);
}

static void resp_free(resp_t *r)
{
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

/* Names of the files in a file_descriptor_response, each parsed; the names
 * live in static storage until the next call. */
static size_t resp_files(const resp_t *resp, const char **names, size_t cap)
{
    static char keep[64][256];
    assert_int_equal(
        resp->message_response_case,
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
    const Grpc__Reflection__V1__FileDescriptorResponse *f = resp->file_descriptor_response;
    assert_true(f->n_file_descriptor_proto <= cap && cap <= 64);
    for (size_t i = 0; i < f->n_file_descriptor_proto; i++) {
        Google__Protobuf__FileDescriptorProto *p = google__protobuf__file_descriptor_proto__unpack(
            NULL, f->file_descriptor_proto[i].len, f->file_descriptor_proto[i].data);
        assert_non_null(p);
        assert_true(strlen(p->name) < sizeof keep[0]);
        strcpy(keep[i], p->name);
        names[i] = keep[i];
        google__protobuf__file_descriptor_proto__free_unpacked(p, NULL);
    }
    return f->n_file_descriptor_proto;
}

static bool has_name(const char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

static void assert_error(const resp_t *resp, int code)
{
    assert_int_equal(
        resp->message_response_case,
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
    assert_int_equal(resp->error_response->error_code, code);
    assert_true(strlen(resp->error_response->error_message) > 0);
}

/* ---- the pure core ---- */

static void list_services(void **state)
{
    (void)state;
    const descset *ds = descset_api();
    reflection *r = reflection_new(ds);
    req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    rq.host = "localhost:50051";
    rq.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
    rq.list_services = "*";
    resp_t *resp = ask(r, NULL, &rq);

    assert_string_equal(resp->valid_host, "localhost:50051");
    assert_non_null(resp->original_request);
    assert_string_equal(resp->original_request->host, "localhost:50051");
    assert_string_equal(resp->original_request->list_services, "*");
    assert_int_equal(
        resp->message_response_case,
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE);
    const Grpc__Reflection__V1__ListServiceResponse *l = resp->list_services_response;
    assert_int_equal(l->n_service, descset_service_count(ds));
    bool health = false, v1 = false, v1alpha = false;
    for (size_t i = 0; i < l->n_service; i++) {
        assert_string_equal(l->service[i]->name, descset_service_at(ds, i)->name);
        health = health || strcmp(l->service[i]->name, "grpc.health.v1.Health") == 0;
        v1 = v1 || strcmp(l->service[i]->name, "grpc.reflection.v1.ServerReflection") == 0;
        v1alpha =
            v1alpha || strcmp(l->service[i]->name, "grpc.reflection.v1alpha.ServerReflection") == 0;
    }
    assert_true(health && v1 && v1alpha);
    resp_free(resp);
    reflection_free(r);
}

/* Every service and method of the API set, and every method's input and
 * output type, comes back as parseable files that include its own. */
static void every_api_symbol_answers(void **state)
{
    (void)state;
    const descset *ds = descset_api();
    reflection *r = reflection_new(ds);
    const char *names[64];

    for (size_t i = 0; i < descset_service_count(ds); i++) {
        const descset_symbol *svc = descset_service_at(ds, i);
        const Google__Protobuf__ServiceDescriptorProto *sp = svc->proto;
        resp_t *resp = ask_symbol(r, NULL, svc->name);
        size_t n = resp_files(resp, names, 64);
        assert_true(n >= 1);
        assert_string_equal(names[0], svc->file->name);
        resp_free(resp);
        for (size_t j = 0; j < sp->n_method; j++) {
            char *m = xasprintf("%s.%s", svc->name, sp->method[j]->name);
            const char *sym[] = { m, sp->method[j]->input_type, sp->method[j]->output_type };
            for (size_t k = 0; k < 3; k++) {
                resp = ask_symbol(r, NULL, sym[k]);
                n = resp_files(resp, names, 64);
                const descset_symbol *s = descset_symbol_find(ds, sym[k]);
                assert_non_null(s);
                assert_string_equal(names[0], s->file->name);
                resp_free(resp);
            }
            free(m);
        }
    }
    reflection_free(r);
}

static void file_with_transitive_deps_and_dedupe(void **state)
{
    (void)state;
    descset *ds = test_set();
    reflection *r = reflection_new(ds);
    reflection_sent *sent = reflection_sent_new();
    const char *names[16];

    /* api.proto: itself first, then type, any, source_context, once each. */
    resp_t *resp = ask_file(r, sent, "google/protobuf/api.proto");
    size_t n = resp_files(resp, names, 16);
    assert_int_equal(n, 4);
    assert_string_equal(names[0], "google/protobuf/api.proto");
    assert_true(has_name(names, n, "google/protobuf/type.proto"));
    assert_true(has_name(names, n, "google/protobuf/any.proto"));
    assert_true(has_name(names, n, "google/protobuf/source_context.proto"));
    /* Exact bytes of the set. */
    const descset_file *f = descset_file_by_name(ds, "google/protobuf/api.proto");
    assert_int_equal(resp->file_descriptor_response->file_descriptor_proto[0].len, f->len);
    assert_memory_equal(resp->file_descriptor_response->file_descriptor_proto[0].data, f->bytes,
                        f->len);
    resp_free(resp);

    /* Same stream: the requested file again, but no dependency twice. */
    resp = ask_symbol(r, sent, "google.protobuf.Field.Kind");
    n = resp_files(resp, names, 16);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "google/protobuf/type.proto");
    resp_free(resp);

    /* A file not sent yet on this stream. */
    resp = ask_symbol(r, sent, "herald.test.v1.TestService.Chat");
    n = resp_files(resp, names, 16);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "herald/test/v1/test.proto");
    resp_free(resp);

    /* A fresh stream gets the dependencies again. */
    reflection_sent *fresh = reflection_sent_new();
    resp = ask_symbol(r, fresh, ".google.protobuf.Type");
    n = resp_files(resp, names, 16);
    assert_int_equal(n, 3);
    assert_string_equal(names[0], "google/protobuf/type.proto");
    resp_free(resp);
    /* No stream state: every answer is complete. */
    for (int i = 0; i < 2; i++) {
        resp = ask_symbol(r, NULL, "google.protobuf.Api");
        assert_int_equal(resp_files(resp, names, 16), 4);
        resp_free(resp);
    }
    /* grpcurl-style enum value spelling. */
    resp = ask_symbol(r, NULL, "google.protobuf.Field.Kind.TYPE_BOOL");
    n = resp_files(resp, names, 16);
    assert_string_equal(names[0], "google/protobuf/type.proto");
    resp_free(resp);

    reflection_sent_free(fresh);
    reflection_sent_free(sent);
    reflection_free(r);
    descset_free(ds);
}

static void errors_keep_the_stream(void **state)
{
    (void)state;
    descset *ds = test_set();
    reflection *r = reflection_new(ds);
    reflection_sent *sent = reflection_sent_new();
    const char *names[16];

    resp_t *resp = ask_symbol(r, sent, "herald.v1.Nope");
    assert_error(resp, 5);
    assert_string_equal(resp->original_request->file_containing_symbol, "herald.v1.Nope");
    resp_free(resp);
    resp = ask_symbol(r, sent, "");
    assert_error(resp, 5);
    resp_free(resp);
    resp = ask_file(r, sent, "nope.proto");
    assert_error(resp, 5);
    resp_free(resp);

    /* Extensions: none in this set. */
    req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    Grpc__Reflection__V1__ExtensionRequest er = GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;
    rq.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION;
    rq.file_containing_extension = &er;
    er.containing_type = "google.protobuf.FieldOptions";
    er.extension_number = 1000;
    resp = ask(r, sent, &rq);
    assert_error(resp, 5);
    assert_int_equal(resp->original_request->file_containing_extension->extension_number, 1000);
    resp_free(resp);
    er.containing_type = "no.Such";
    resp = ask(r, sent, &rq);
    assert_error(resp, 5);
    resp_free(resp);

    rq.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
    rq.all_extension_numbers_of_type = "google.protobuf.FieldOptions";
    resp = ask(r, sent, &rq);
    assert_int_equal(
        resp->message_response_case,
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE);
    assert_string_equal(resp->all_extension_numbers_response->base_type_name,
                        "google.protobuf.FieldOptions");
    assert_int_equal(resp->all_extension_numbers_response->n_extension_number, 0);
    resp_free(resp);
    /* Unknown, or not a message. */
    const char *not_types[] = { "no.Such", "google.protobuf.Field.Kind", "google.protobuf", "" };
    for (size_t i = 0; i < 4; i++) {
        rq.all_extension_numbers_of_type = (char *)not_types[i];
        resp = ask(r, sent, &rq);
        assert_error(resp, 5);
        resp_free(resp);
    }

    /* Nothing set: an error answer too (UNIMPLEMENTED, as C++ grpc). */
    req_t empty = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    resp = ask(r, sent, &empty);
    assert_error(resp, 12);
    resp_free(resp);

    /* The stream still answers, with full dependencies (none were sent). */
    resp = ask_symbol(r, sent, "google.protobuf.Api");
    assert_int_equal(resp_files(resp, names, 16), 4);
    resp_free(resp);

    reflection_sent_free(sent);
    reflection_free(r);
    descset_free(ds);
}

/* A set with a real extension: t.M extended by field 100 from ext.proto. */
static void extensions_answered(void **state)
{
    (void)state;
    Google__Protobuf__FileDescriptorProto base = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__FileDescriptorProto ext = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__DescriptorProto m = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__FieldDescriptorProto e = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__DescriptorProto *mp = &m;
    Google__Protobuf__FieldDescriptorProto *ep = &e;
    char *deps[] = { "base.proto" };
    base.name = "base.proto";
    base.package = "t";
    m.name = "M";
    base.message_type = &mp;
    base.n_message_type = 1;
    ext.name = "ext.proto";
    ext.package = "t";
    ext.dependency = deps;
    ext.n_dependency = 1;
    e.name = "e";
    e.extendee = ".t.M";
    e.has_number = 1;
    e.number = 100;
    ext.extension = &ep;
    ext.n_extension = 1;

    strbuf set = { 0 };
    const Google__Protobuf__FileDescriptorProto *files[] = { &base, &ext };
    for (size_t i = 0; i < 2; i++) {
        size_t n = google__protobuf__file_descriptor_proto__get_packed_size(files[i]);
        uint8_t *tmp = xmalloc(n);
        google__protobuf__file_descriptor_proto__pack(files[i], tmp);
        strbuf_putc(&set, 0x0a);
        strbuf_putc(&set, (char)n); /* < 128 */
        strbuf_append(&set, (const char *)tmp, n);
        free(tmp);
    }
    char *err = NULL;
    descset *ds = descset_new((const uint8_t *)set.data, set.len, &err);
    assert_non_null(ds);
    reflection *r = reflection_new(ds);
    const char *names[4];

    req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    Grpc__Reflection__V1__ExtensionRequest er = GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;
    rq.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION;
    rq.file_containing_extension = &er;
    er.containing_type = "t.M";
    er.extension_number = 100;
    resp_t *resp = ask(r, NULL, &rq);
    assert_int_equal(resp_files(resp, names, 4), 2);
    assert_string_equal(names[0], "ext.proto");
    assert_string_equal(names[1], "base.proto");
    resp_free(resp);
    er.extension_number = 101;
    resp = ask(r, NULL, &rq);
    assert_error(resp, 5);
    resp_free(resp);

    rq.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
    rq.all_extension_numbers_of_type = ".t.M";
    resp = ask(r, NULL, &rq);
    assert_string_equal(resp->all_extension_numbers_response->base_type_name, "t.M");
    assert_int_equal(resp->all_extension_numbers_response->n_extension_number, 1);
    assert_int_equal(resp->all_extension_numbers_response->extension_number[0], 100);
    resp_free(resp);

    reflection_free(r);
    descset_free(ds);
    strbuf_fini(&set);
}

static void malformed_requests(void **state)
{
    (void)state;
    reflection *r = reflection_new(descset_api());
    uint8_t *out = (uint8_t *)"x";
    size_t out_len = 99;
    /* clang-format off */
    static const struct { const char *what; const char *bytes; size_t len; } bad[] = {
        { "truncated tag",        "\x22",                 1 },
        { "truncated string",     "\x22\x05" "ab",        4 },
        { "bad wire type",        "\x27\x00",             2 },
        { "field number 0",       "\x02\x00",             2 },
        { "invalid UTF-8",        "\x22\x03\xff\xfe" "A", 5 },
        { "invalid UTF-8 host",   "\x0a\x01\xc0",         3 },
        { "extension truncated",  "\x2a\x04\x0a\x05xy",   6 },
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        status st =
            reflection_answer(r, NULL, (const uint8_t *)bad[i].bytes, bad[i].len, &out, &out_len);
        if (st != ST_INVALID)
            fail_msg("%s: status %d", bad[i].what, (int)st);
        assert_null(out);
        assert_int_equal(out_len, 0);
    }
    /* Zero bytes is a valid, empty request. */
    assert_int_equal(reflection_answer(r, NULL, (const uint8_t *)"", 0, &out, &out_len), ST_OK);
    resp_t *resp = grpc__reflection__v1__server_reflection_response__unpack(NULL, out_len, out);
    assert_error(resp, 12);
    resp_free(resp);
    free(out);
    reflection_free(r);
}

/* v1alpha bytes decode as v1 and answer identically; the answer decodes as
 * a v1alpha response. */
static void v1alpha_is_wire_identical(void **state)
{
    (void)state;
    reflection *r = reflection_new(descset_api());
    Grpc__Reflection__V1alpha__ServerReflectionRequest a =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
    a.host = "h";
    a.message_request_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
    a.file_containing_symbol = "grpc.health.v1.Health";
    size_t alen = grpc__reflection__v1alpha__server_reflection_request__get_packed_size(&a);
    uint8_t *abytes = xmalloc(alen);
    grpc__reflection__v1alpha__server_reflection_request__pack(&a, abytes);

    req_t v = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    v.host = "h";
    v.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
    v.file_containing_symbol = "grpc.health.v1.Health";
    size_t vlen;
    uint8_t *vbytes = pack_req(&v, &vlen);
    assert_int_equal(alen, vlen);
    assert_memory_equal(abytes, vbytes, vlen);

    uint8_t *out_a = NULL, *out_v = NULL;
    size_t out_a_len = 0, out_v_len = 0;
    assert_int_equal(reflection_answer(r, NULL, abytes, alen, &out_a, &out_a_len), ST_OK);
    assert_int_equal(reflection_answer(r, NULL, vbytes, vlen, &out_v, &out_v_len), ST_OK);
    assert_int_equal(out_a_len, out_v_len);
    assert_memory_equal(out_a, out_v, out_a_len);

    Grpc__Reflection__V1alpha__ServerReflectionResponse *ra =
        grpc__reflection__v1alpha__server_reflection_response__unpack(NULL, out_a_len, out_a);
    assert_non_null(ra);
    assert_string_equal(ra->valid_host, "h");
    assert_string_equal(ra->original_request->file_containing_symbol, "grpc.health.v1.Health");
    assert_int_equal(
        ra->message_response_case,
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
    const descset_file *f = descset_file_by_name(descset_api(), "grpc/health/v1/health.proto");
    assert_int_equal(ra->file_descriptor_response->file_descriptor_proto[0].len, f->len);
    assert_memory_equal(ra->file_descriptor_response->file_descriptor_proto[0].data, f->bytes,
                        f->len);
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(ra, NULL);
    free(out_a);
    free(out_v);
    free(abytes);
    free(vbytes);
    reflection_free(r);
}

/* Random and mutated requests on one stream: ST_OK with a decodable answer
 * or ST_INVALID, never a crash or a leak (ASan/LSan judge). */
static void hostile_requests(void **state)
{
    (void)state;
    reflection *r = reflection_new(descset_api());
    reflection_sent *sent = reflection_sent_new();
    uint64_t rng = 0x2545f4914f6cdd1du;
    size_t ok = 0, invalid = 0;
    uint8_t buf[96];

    req_t seed = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    seed.host = "localhost";
    seed.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
    seed.file_containing_symbol = "grpc.reflection.v1.ServerReflectionRequest";
    size_t seed_len;
    uint8_t *seed_bytes = pack_req(&seed, &seed_len);
    assert_true(seed_len <= sizeof buf);

    for (int iter = 0; iter < 5000; iter++) {
        size_t len;
        if (iter % 2 == 0) { /* mutate the seed */
            memcpy(buf, seed_bytes, seed_len);
            len = seed_len;
            for (int k = 0; k < 1 + iter % 4; k++) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                buf[rng % len] = (uint8_t)(rng >> 24);
            }
        } else { /* random bytes */
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            len = rng % sizeof buf;
            for (size_t k = 0; k < len; k++) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                buf[k] = (uint8_t)(rng >> 32);
            }
        }
        uint8_t *out = NULL;
        size_t out_len = 0;
        status st = reflection_answer(r, sent, buf, len, &out, &out_len);
        if (st == ST_OK) {
            resp_t *resp =
                grpc__reflection__v1__server_reflection_response__unpack(NULL, out_len, out);
            assert_non_null(resp);
            resp_free(resp);
            free(out);
            ok++;
        } else {
            assert_int_equal(st, ST_INVALID);
            assert_null(out);
            invalid++;
        }
    }
    assert_true(ok > 100);
    assert_true(invalid > 100);
    free(seed_bytes);
    reflection_sent_free(sent);
    reflection_free(r);
}

/* ---- the stream glue, on the fake runtime ---- */

static void stream_glue(void **state)
{
    (void)state;
    reflection *r = reflection_new(descset_api());
    rpc_server srv = { 0 };
    char *err = NULL;
    assert_int_equal(reflection_register(r, &srv, &err), ST_OK);
    assert_int_equal(srv.n, 2);
    assert_string_equal(srv.paths[0], "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
    assert_string_equal(srv.paths[1],
                        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
    assert_int_equal(srv.pools[0], RPC_POOL_PRIORITY);
    assert_int_equal(srv.pools[1], RPC_POOL_PRIORITY);
    const rpc_stream_handler *h = srv.handlers[1];

    /* A normal stream: two answers, dedupe across them, OK on half-close. */
    rpc_call c = { 0 };
    req_t rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    rq.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
    rq.file_containing_symbol = "grpc.health.v1.Health";
    size_t len;
    uint8_t *bytes = pack_req(&rq, &len);
    if (h->on_open)
        h->on_open(&c, h->user);
    h->on_message(&c, bytes, len, h->user);
    assert_int_equal(c.sends, 1);
    resp_t *resp =
        grpc__reflection__v1__server_reflection_response__unpack(NULL, c.last_len, c.last);
    assert_non_null(resp);
    assert_int_equal(resp->file_descriptor_response->n_file_descriptor_proto, 1);
    resp_free(resp);
    rq.file_containing_symbol = "nope";
    uint8_t *bad_sym = pack_req(&rq, &len);
    h->on_message(&c, bad_sym, len, h->user);
    assert_int_equal(c.sends, 2);
    resp = grpc__reflection__v1__server_reflection_response__unpack(NULL, c.last_len, c.last);
    assert_error(resp, 5);
    resp_free(resp);
    assert_int_equal(c.finishes, 0); /* errors keep the stream open */
    h->on_half_close(&c, h->user);
    assert_int_equal(c.finishes, 1);
    assert_int_equal(c.finished_with, ST_OK);
    if (h->on_done)
        h->on_done(&c, false, h->user);
    assert_int_equal(c.finishes, 1);
    assert_null(c.user);
    free(c.last);
    free(bad_sym);

    /* Garbage ends the stream with INTERNAL, once; later events are ignored. */
    rpc_call g = { 0 };
    if (h->on_open)
        h->on_open(&g, h->user);
    h->on_message(&g, (const uint8_t *)"\xff\xff", 2, h->user);
    assert_int_equal(g.finishes, 1);
    assert_int_equal(g.finished_with, ST_INTERNAL);
    assert_int_equal(g.sends, 0);
    h->on_message(&g, bytes, len, h->user);
    h->on_half_close(&g, h->user);
    assert_int_equal(g.finishes, 1);
    assert_int_equal(g.sends, 0);
    if (h->on_done)
        h->on_done(&g, false, h->user);
    assert_int_equal(g.finishes, 1);

    /* Client cancels mid-stream: the glue still finishes exactly once. */
    rpc_call k = { 0 };
    if (h->on_open)
        h->on_open(&k, h->user);
    h->on_message(&k, bytes, len, h->user);
    assert_non_null(h->on_done);
    h->on_done(&k, true, h->user);
    assert_int_equal(k.finishes, 1);
    free(k.last);

    /* Registering twice is refused by the runtime and reported. */
    assert_int_equal(reflection_register(r, &srv, &err), ST_INVALID);
    assert_non_null(err);
    free(err);

    free(bytes);
    for (size_t i = 0; i < srv.n; i++)
        free(srv.paths[i]);
    reflection_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(list_services),
        cmocka_unit_test(every_api_symbol_answers),
        cmocka_unit_test(file_with_transitive_deps_and_dedupe),
        cmocka_unit_test(errors_keep_the_stream),
        cmocka_unit_test(extensions_answered),
        cmocka_unit_test(malformed_requests),
        cmocka_unit_test(v1alpha_is_wire_identical),
        cmocka_unit_test(hostile_requests),
        cmocka_unit_test(stream_glue),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    descset_api_release();
    return rc;
}
