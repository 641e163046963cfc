/* reflection.c - grpc.reflection v1 and v1alpha (see reflection.h).
 *
 * The two versions are the same messages under two package names, so one
 * generated type (v1) decodes and encodes both. Every answer is computed by
 * reflection_answer, a pure function of the descset, the stream's sent-file
 * set and the request bytes; the stream glue below only moves bytes. As in
 * grpc-go, a file answer always starts with the requested file (even when
 * it was sent before) followed by its transitive dependencies not yet sent
 * on this stream. Errors are error_response messages, and the stream stays
 * open; only undecodable bytes end it (INTERNAL, as grpc-go's codec does). */
#include "reflection.h"

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "util.h"

/* Decode budget per request: far above any real request (a symbol name),
 * far below what 1 MiB of unknown fields would otherwise expand into. */
enum { REFLECTION_DECODE_BUDGET = 1 << 20 };

static const char *const reflection_paths[] = {
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
};

struct reflection {
    const descset *ds;
    rpc_stream_handler handler; /* the runtime borrows it: lives as long as r */
};

struct reflection_sent {
    bool *sent; /* by descset_file_index */
    size_t cap;
};

reflection_sent *reflection_sent_new(void)
{
    return xcalloc(1, sizeof(reflection_sent));
}

void reflection_sent_free(reflection_sent *s)
{
    if (!s)
        return;
    free(s->sent);
    free(s);
}

static bool sent_has(const reflection_sent *s, size_t i)
{
    return s && i < s->cap && s->sent[i];
}

static void sent_mark(reflection_sent *s, size_t i)
{
    if (!s)
        return;
    if (i >= s->cap) {
        size_t cap = s->cap ? s->cap : 16;
        while (cap <= i)
            cap *= 2;
        s->sent = xrealloc(s->sent, cap * sizeof *s->sent);
        memset(s->sent + s->cap, 0, (cap - s->cap) * sizeof *s->sent);
        s->cap = cap;
    }
    s->sent[i] = true;
}

/* ---- answers ---- */

typedef Grpc__Reflection__V1__ServerReflectionRequest refl_request;
typedef Grpc__Reflection__V1__ServerReflectionResponse refl_response;

/* Everything an answer points at, released after packing. */
typedef struct answer {
    const descset *ds;
    reflection_sent *sent;
    const descset_file *root;
    Grpc__Reflection__V1__FileDescriptorResponse files;
    Grpc__Reflection__V1__ListServiceResponse list;
    Grpc__Reflection__V1__ServiceResponse *services;
    Grpc__Reflection__V1__ExtensionNumberResponse numbers;
    Grpc__Reflection__V1__ErrorResponse error;
} answer;

static void answer_error(refl_response *resp, answer *a, int code, const char *msg)
{
    grpc__reflection__v1__error_response__init(&a->error);
    a->error.error_code = code;
    a->error.error_message = (char *)msg;
    resp->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    resp->error_response = &a->error;
}

static void answer_add_file(answer *a, const descset_file *f)
{
    a->files.file_descriptor_proto[a->files.n_file_descriptor_proto++] =
        (ProtobufCBinaryData){ f->len, (uint8_t *)f->bytes };
    sent_mark(a->sent, descset_file_index(a->ds, f));
}

static bool answer_add_dep(const descset_file *f, void *user)
{
    answer *a = user;
    if (f != a->root && !sent_has(a->sent, descset_file_index(a->ds, f)))
        answer_add_file(a, f);
    return true;
}

/* The requested file first, then its dependencies this stream lacks. */
static void answer_files(refl_response *resp, answer *a, const descset_file *f)
{
    grpc__reflection__v1__file_descriptor_response__init(&a->files);
    a->files.file_descriptor_proto =
        xcalloc(descset_file_count(a->ds) + 1, sizeof *a->files.file_descriptor_proto);
    a->root = f;
    answer_add_file(a, f);
    descset_walk_deps(a->ds, f, answer_add_dep, a);
    resp->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
    resp->file_descriptor_response = &a->files;
}

static void answer_list_services(refl_response *resp, answer *a)
{
    size_t n = descset_service_count(a->ds);
    grpc__reflection__v1__list_service_response__init(&a->list);
    a->services = xcalloc(n ? n : 1, sizeof *a->services);
    /* protobuf-c wants an array of pointers here. */
    a->list.service =
        xcalloc(n ? n : 1, sizeof *a->list.service); // NOLINT(bugprone-sizeof-expression)
    for (size_t i = 0; i < n; i++) {
        grpc__reflection__v1__service_response__init(&a->services[i]);
        a->services[i].name = (char *)descset_service_at(a->ds, i)->name;
        a->list.service[i] = &a->services[i];
    }
    a->list.n_service = n;
    resp->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
    resp->list_services_response = &a->list;
}

/* An extension field extending `type` (fully qualified, no leading dot)?
 * number < 0 matches any number. */
static bool is_extension_of(const descset_symbol *s, const char *type, int64_t number)
{
    if (s->kind != DESCSET_FIELD)
        return false;
    const Google__Protobuf__FieldDescriptorProto *fp = s->proto;
    if (!fp->extendee || (number >= 0 && (!fp->has_number || fp->number != number)))
        return false;
    const char *ext = fp->extendee[0] == '.' ? fp->extendee + 1 : fp->extendee;
    return strcmp(ext, type) == 0;
}

static const descset_symbol *find_message(const descset *ds, const char *name)
{
    const descset_symbol *s = descset_symbol_find(ds, name);
    return s && s->kind == DESCSET_MESSAGE ? s : NULL;
}

static void answer_extension(refl_response *resp, answer *a,
                             const Grpc__Reflection__V1__ExtensionRequest *er)
{
    const descset_symbol *type = er ? find_message(a->ds, er->containing_type) : NULL;
    if (!type) {
        answer_error(resp, a, GRPC_CODE_NOT_FOUND, "type not found");
        return;
    }
    for (size_t i = 0; i < descset_symbol_count(a->ds); i++) {
        const descset_symbol *s = descset_symbol_at(a->ds, i);
        if (er->extension_number >= 0 && is_extension_of(s, type->name, er->extension_number)) {
            answer_files(resp, a, s->file);
            return;
        }
    }
    answer_error(resp, a, GRPC_CODE_NOT_FOUND, "extension not found");
}

static void answer_extension_numbers(refl_response *resp, answer *a, const char *name)
{
    const descset_symbol *type = find_message(a->ds, name);
    if (!type) {
        answer_error(resp, a, GRPC_CODE_NOT_FOUND, "type not found");
        return;
    }
    grpc__reflection__v1__extension_number_response__init(&a->numbers);
    a->numbers.base_type_name = (char *)type->name;
    for (size_t i = 0; i < descset_symbol_count(a->ds); i++) {
        const descset_symbol *s = descset_symbol_at(a->ds, i);
        if (!is_extension_of(s, type->name, -1))
            continue;
        const Google__Protobuf__FieldDescriptorProto *fp = s->proto;
        a->numbers.extension_number = xrealloc(
            a->numbers.extension_number, (a->numbers.n_extension_number + 1) * sizeof(int32_t));
        a->numbers.extension_number[a->numbers.n_extension_number++] = fp->number;
    }
    resp->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
    resp->all_extension_numbers_response = &a->numbers;
}

static bool text_ok(const char *s)
{
    return s == NULL || utf8_valid(s, strlen(s));
}

/* proto3 strings must be UTF-8 (protobuf-c does not check; C++ and Go do). */
static bool request_valid(const refl_request *rq)
{
    if (!text_ok(rq->host))
        return false;
    switch (rq->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        return text_ok(rq->file_by_filename);
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        return text_ok(rq->file_containing_symbol);
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
        return !rq->file_containing_extension ||
               text_ok(rq->file_containing_extension->containing_type);
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        return text_ok(rq->all_extension_numbers_of_type);
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        return text_ok(rq->list_services);
    default:
        return true;
    }
}

status reflection_answer(const reflection *r, reflection_sent *sent, const uint8_t *req, size_t len,
                         uint8_t **out, size_t *out_len)
{
    status st;
    arena *decode = arena_new(REFLECTION_DECODE_BUDGET);
    refl_request *rq = NULL;
    uint8_t *buf = NULL;
    answer a = { .ds = r->ds, .sent = sent };
    refl_response resp = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;

    *out = NULL;
    *out_len = 0;
    rq = grpc__reflection__v1__server_reflection_request__unpack(arena_allocator(decode), len, req);
    if (!rq || !request_valid(rq)) {
        st = ST_INVALID;
        goto out;
    }
    resp.valid_host = rq->host ? rq->host : (char *)"";
    /* Echo only what the request means: protobuf-c keeps unknown fields
     * (even field number 0, which it accepts when padded as 0x80 0x00) and
     * would re-pack them into a response no parser can read. */
    rq->base.n_unknown_fields = 0;
    rq->base.unknown_fields = NULL;
    resp.original_request = rq;

    switch (rq->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        answer_list_services(&resp, &a);
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME: {
        const descset_file *f = descset_file_by_name(r->ds, rq->file_by_filename);
        if (f)
            answer_files(&resp, &a, f);
        else
            answer_error(&resp, &a, GRPC_CODE_NOT_FOUND, "file not found");
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL: {
        const descset_symbol *s = descset_symbol_find(r->ds, rq->file_containing_symbol);
        if (s)
            answer_files(&resp, &a, s->file);
        else
            answer_error(&resp, &a, GRPC_CODE_NOT_FOUND, "symbol not found");
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
        answer_extension(&resp, &a, rq->file_containing_extension);
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        answer_extension_numbers(&resp, &a, rq->all_extension_numbers_of_type);
        break;
    default: /* nothing set, or a kind newer than this server (as C++ grpc) */
        answer_error(&resp, &a, GRPC_CODE_UNIMPLEMENTED, "unknown message_request");
        break;
    }

    size_t n = grpc__reflection__v1__server_reflection_response__get_packed_size(&resp);
    buf = xmalloc(n);
    size_t packed = grpc__reflection__v1__server_reflection_response__pack(&resp, buf);
    if (packed != n) {
        st = ST_INTERNAL;
        goto out;
    }
    *out = buf;
    *out_len = n;
    buf = NULL;
    st = ST_OK;
out:
    free(buf);
    free(a.numbers.extension_number);
    free(a.list.service);
    free(a.services);
    free(a.files.file_descriptor_proto);
    arena_free(decode); /* holds rq */
    return st;
}

/* ---- the stream ---- */

typedef struct stream_state {
    reflection_sent *sent;
    bool finished; /* rpc_call_finish already called */
} stream_state;

static stream_state *stream_get(rpc_call *call)
{
    stream_state *s = rpc_call_user(call);
    if (!s) {
        s = xcalloc(1, sizeof *s);
        s->sent = reflection_sent_new();
        rpc_call_set_user(call, s);
    }
    return s;
}

static void stream_open(rpc_call *call, void *user)
{
    (void)user;
    stream_get(call);
}

static void stream_message(rpc_call *call, const uint8_t *data, size_t len, void *user)
{
    const reflection *r = user;
    stream_state *s = stream_get(call);
    uint8_t *out = NULL;
    size_t out_len = 0;

    if (s->finished)
        return;
    if (reflection_answer(r, s->sent, data, len, &out, &out_len) != ST_OK) {
        s->finished = true;
        rpc_call_finish(call, ST_INTERNAL, "cannot parse ServerReflectionRequest");
        return;
    }
    rpc_call_send_raw(call, out, out_len); /* false: the call is over; nothing to do */
    free(out);
}

static void stream_half_close(rpc_call *call, void *user)
{
    (void)user;
    stream_state *s = stream_get(call);
    if (s->finished)
        return;
    s->finished = true;
    rpc_call_finish(call, ST_OK, "%s", "");
}

static void stream_done(rpc_call *call, bool cancelled, void *user)
{
    (void)cancelled;
    (void)user;
    stream_state *s = rpc_call_user(call);
    rpc_call_set_user(call, NULL);
    /* The transport ended first (client cancel, deadline, server shutdown):
     * the runtime still needs its one finish to release the call. */
    if (!s || !s->finished)
        rpc_call_finish(call, ST_CANCELLED, "reflection stream ended");
    if (s) {
        reflection_sent_free(s->sent);
        free(s);
    }
}

reflection *reflection_new(const descset *ds)
{
    reflection *r = xcalloc(1, sizeof *r);
    r->ds = ds;
    r->handler = (rpc_stream_handler){
        .on_open = stream_open,
        .on_message = stream_message,
        .on_half_close = stream_half_close,
        .on_done = stream_done,
        .user = r,
    };
    return r;
}

void reflection_free(reflection *r)
{
    free(r);
}

status reflection_register(reflection *r, rpc_server *s, char **err)
{
    *err = NULL;
    for (size_t i = 0; i < sizeof reflection_paths / sizeof reflection_paths[0]; i++) {
        status st =
            rpc_server_add_stream(s, reflection_paths[i], &r->handler, RPC_POOL_PRIORITY, err);
        if (st != ST_OK)
            return st;
    }
    return ST_OK;
}
