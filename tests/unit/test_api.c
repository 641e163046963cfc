/* test_api.c - checks over the herald.v1 API contract.
 *
 * Reads the descriptor set the build embeds (herald_api_descset: our protos,
 * with source comments) and the descriptors protoc-c generated, and fails on
 * the contract mistakes a reviewer would otherwise have to spot by eye:
 * services in the wrong place, mutations without request_id, lists without
 * paging, enums without an _UNSPECIFIED zero, undocumented symbols, rpcs
 * without a "Scope:" line, instants that are not Timestamps, and docs/api.md
 * drifting from the protos. The rules are written up in docs/api.md.
 *
 * "Mutating" is derived from the method's verb: Get, List, Validate and
 * Recommend are reads (Recommend logs its decision but changes no learned
 * state); every other verb mutates. */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "herald/v1/common.pb-c.h"
#include "herald/v1/content.pb-c.h"
#include "herald/v1/learning.pb-c.h"
#include "herald/v1/ops.pb-c.h"
#include "herald/v1/scheduling.pb-c.h"
#include "svc.h"

extern const unsigned char herald_api_descset[];
extern const size_t herald_api_descset_len;

typedef Google__Protobuf__FileDescriptorProto file_proto;
typedef Google__Protobuf__DescriptorProto msg_proto;
typedef Google__Protobuf__FieldDescriptorProto field_proto;
typedef Google__Protobuf__EnumDescriptorProto enum_proto;
typedef Google__Protobuf__ServiceDescriptorProto svc_proto;
typedef Google__Protobuf__MethodDescriptorProto method_proto;

#define FIELD_TYPE(t) GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_##t
#define LABEL_REPEATED GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED

/* Source-info path components (FileDescriptorProto / DescriptorProto /
 * EnumDescriptorProto / ServiceDescriptorProto field numbers). */
enum {
    P_FILE_MESSAGE = 4,
    P_FILE_ENUM = 5,
    P_FILE_SERVICE = 6,
    P_MSG_FIELD = 2,
    P_MSG_NESTED = 3,
    P_MSG_ENUM = 4,
    P_ENUM_VALUE = 2,
    P_SVC_METHOD = 2,
};

enum { MAX_PATH = 16 };

static const char *const expected_services[][2] = {
    { "ContentService", "herald/v1/content.proto" },
    { "SchedulingService", "herald/v1/scheduling.proto" },
    { "LearningService", "herald/v1/learning.proto" },
    { "OpsService", "herald/v1/ops.proto" },
};
enum { N_SERVICES = 4 };

static const char *const read_verbs[] = { "Get", "List", "Validate", "Recommend" };
static const char *const write_verbs[] = {
    "Adapt",  "Approve",  "Cancel",    "Claim",     "Create", "Delete", "Generate",
    "Pause",  "Record",   "Recompute", "Reconcile", "Reject", "Renew",  "Report",
    "Resume", "Schedule", "Set",       "Update",    "Upsert",
};
/* Methods that are a bare verb, by decision (docs/api.md says why). */
static const char *const bare_verb_methods[] = { "Recommend" };

static Google__Protobuf__FileDescriptorSet *set;

/* ---- helpers over the descriptor set ---- */

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool is_herald_file(const file_proto *f)
{
    return f->package != NULL && strcmp(f->package, "herald.v1") == 0;
}

static const file_proto *file_by_name(const char *name)
{
    for (size_t i = 0; i < set->n_file; i++)
        if (strcmp(set->file[i]->name, name) == 0)
            return set->file[i];
    return NULL;
}

/* The leading comment at path in f, or NULL. */
static const char *comment_at(const file_proto *f, const int32_t *path, size_t n)
{
    if (f->source_code_info == NULL)
        return NULL;
    for (size_t i = 0; i < f->source_code_info->n_location; i++) {
        const Google__Protobuf__SourceCodeInfo__Location *l = f->source_code_info->location[i];
        if (l->n_path == n && memcmp(l->path, path, n * sizeof(*path)) == 0)
            return l->leading_comments;
    }
    return NULL;
}

static bool has_text(const char *comment)
{
    if (comment == NULL)
        return false;
    for (const char *p = comment; *p != '\0'; p++)
        if (!isspace((unsigned char)*p))
            return true;
    return false;
}

/* A top-level herald.v1 message by full name (".herald.v1.Post"). */
static const msg_proto *message_by_type(const char *type_name, const file_proto **file_out)
{
    static const char prefix[] = ".herald.v1.";
    if (!starts_with(type_name, prefix))
        return NULL;
    const char *name = type_name + strlen(prefix);
    for (size_t i = 0; i < set->n_file; i++) {
        const file_proto *f = set->file[i];
        if (!is_herald_file(f))
            continue;
        for (size_t j = 0; j < f->n_message_type; j++) {
            if (strcmp(f->message_type[j]->name, name) == 0) {
                if (file_out != NULL)
                    *file_out = f;
                return f->message_type[j];
            }
        }
    }
    return NULL;
}

static const field_proto *field_by_name(const msg_proto *m, const char *name)
{
    for (size_t i = 0; i < m->n_field; i++)
        if (strcmp(m->field[i]->name, name) == 0)
            return m->field[i];
    return NULL;
}

static bool is_read_verb(const char *method)
{
    for (size_t i = 0; i < sizeof(read_verbs) / sizeof(read_verbs[0]); i++)
        if (starts_with(method, read_verbs[i]))
            return true;
    return false;
}

/* The verb a method starts with, or NULL. The verb must be followed by an
 * upper-case letter (the noun) unless the method is a listed bare verb. */
static const char *method_verb(const char *method)
{
    for (size_t i = 0; i < sizeof(bare_verb_methods) / sizeof(bare_verb_methods[0]); i++)
        if (strcmp(method, bare_verb_methods[i]) == 0)
            return bare_verb_methods[i];
    const char *const *lists[] = { read_verbs, write_verbs };
    const size_t lens[] = { sizeof(read_verbs) / sizeof(read_verbs[0]),
                            sizeof(write_verbs) / sizeof(write_verbs[0]) };
    for (size_t l = 0; l < 2; l++) {
        for (size_t i = 0; i < lens[l]; i++) {
            size_t n = strlen(lists[l][i]);
            if (strncmp(method, lists[l][i], n) == 0 && isupper((unsigned char)method[n]))
                return lists[l][i];
        }
    }
    return NULL;
}

/* The last non-empty line of a comment, trimmed, into buf. */
static void last_line(const char *comment, char *buf, size_t cap)
{
    size_t end = strlen(comment);
    while (end > 0 && isspace((unsigned char)comment[end - 1]))
        end--;
    size_t start = end;
    while (start > 0 && comment[start - 1] != '\n')
        start--;
    while (start < end && isspace((unsigned char)comment[start]))
        start++;
    size_t n = end - start < cap - 1 ? end - start : cap - 1;
    memcpy(buf, comment + start, n);
    buf[n] = '\0';
}

/* "read", "write", "executor" or "admin" from a method comment's last
 * line "Scope: X"; NULL when absent or not one of the four. */
static const char *method_scope(const char *comment)
{
    static const char *const scopes[] = { "read", "write", "executor", "admin" };
    char line[128];

    if (comment == NULL)
        return NULL;
    last_line(comment, line, sizeof(line));
    if (!starts_with(line, "Scope: "))
        return NULL;
    for (size_t i = 0; i < 4; i++)
        if (strcmp(line + strlen("Scope: "), scopes[i]) == 0)
            return scopes[i];
    return NULL;
}

typedef void (*method_fn)(const file_proto *f, const svc_proto *s, size_t si, const method_proto *m,
                          size_t mi, void *user);

static void for_each_method(method_fn fn, void *user)
{
    for (size_t i = 0; i < set->n_file; i++) {
        const file_proto *f = set->file[i];
        if (!is_herald_file(f))
            continue;
        for (size_t s = 0; s < f->n_service; s++)
            for (size_t m = 0; m < f->service[s]->n_method; m++)
                fn(f, f->service[s], s, f->service[s]->method[m], m, user);
    }
}

static const char *method_comment(const file_proto *f, size_t si, size_t mi)
{
    const int32_t path[] = { P_FILE_SERVICE, (int32_t)si, P_SVC_METHOD, (int32_t)mi };
    return comment_at(f, path, 4);
}

/* Visits every message (nested too) of every herald.v1 file with its
 * source path. */
typedef void (*message_fn)(const file_proto *f, const msg_proto *m, const int32_t *path, size_t n,
                           void *user);

static void walk_message(const file_proto *f, const msg_proto *m, int32_t *path, size_t n,
                         message_fn fn, void *user)
{
    fn(f, m, path, n, user);
    assert_true(n + 2 <= MAX_PATH);
    for (size_t i = 0; i < m->n_nested_type; i++) {
        path[n] = P_MSG_NESTED;
        path[n + 1] = (int32_t)i;
        walk_message(f, m->nested_type[i], path, n + 2, fn, user);
    }
}

static void for_each_message(message_fn fn, void *user)
{
    int32_t path[MAX_PATH];
    for (size_t i = 0; i < set->n_file; i++) {
        const file_proto *f = set->file[i];
        if (!is_herald_file(f))
            continue;
        for (size_t j = 0; j < f->n_message_type; j++) {
            path[0] = P_FILE_MESSAGE;
            path[1] = (int32_t)j;
            walk_message(f, f->message_type[j], path, 2, fn, user);
        }
    }
}

/* Visits every enum (top-level and nested) with its source path. */
typedef void (*enum_fn)(const file_proto *f, const enum_proto *e, const int32_t *path, size_t n,
                        void *user);

struct enum_walk {
    enum_fn fn;
    void *user;
};

static void enums_of_message(const file_proto *f, const msg_proto *m, const int32_t *path, size_t n,
                             void *user)
{
    const struct enum_walk *w = user;
    int32_t p[MAX_PATH];

    assert_true(n + 2 <= MAX_PATH);
    memcpy(p, path, n * sizeof(*p));
    for (size_t i = 0; i < m->n_enum_type; i++) {
        p[n] = P_MSG_ENUM;
        p[n + 1] = (int32_t)i;
        w->fn(f, m->enum_type[i], p, n + 2, w->user);
    }
}

static void for_each_enum(enum_fn fn, void *user)
{
    struct enum_walk w = { fn, user };
    for (size_t i = 0; i < set->n_file; i++) {
        const file_proto *f = set->file[i];
        if (!is_herald_file(f))
            continue;
        for (size_t j = 0; j < f->n_enum_type; j++) {
            const int32_t path[] = { P_FILE_ENUM, (int32_t)j };
            fn(f, f->enum_type[j], path, 2, user);
        }
    }
    for_each_message(enums_of_message, &w);
}

/* Counts a failure and says what it was; tests assert the count is 0 at the
 * end, so one run lists every mistake instead of the first. */
static int failures;

static void contract_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void contract_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("  contract: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    (void)state;
    set = google__protobuf__file_descriptor_set__unpack(NULL, herald_api_descset_len,
                                                        herald_api_descset);
    return set == NULL ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
    set = NULL;
    return 0;
}

static int test_setup(void **state)
{
    (void)state;
    failures = 0;
    return 0;
}

/* ---- the checks ---- */

/* Exactly the five herald.v1 files, proto3, and exactly four services, one
 * per file, each where it belongs; common.proto has none. */
static void api_files_and_services(void **state)
{
    (void)state;
    static const char *const files[] = {
        "herald/v1/common.proto",   "herald/v1/content.proto", "herald/v1/scheduling.proto",
        "herald/v1/learning.proto", "herald/v1/ops.proto",
    };
    size_t n_herald = 0, n_services = 0;

    for (size_t i = 0; i < set->n_file; i++) {
        const file_proto *f = set->file[i];
        if (!is_herald_file(f))
            continue;
        n_herald++;
        n_services += f->n_service;
        if (f->syntax == NULL || strcmp(f->syntax, "proto3") != 0)
            contract_fail("%s is not proto3", f->name);
        if (f->n_service > 1)
            contract_fail("%s defines %zu services; one per file", f->name, f->n_service);
    }
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        if (file_by_name(files[i]) == NULL || !is_herald_file(file_by_name(files[i])))
            contract_fail("%s is missing from the descriptor set", files[i]);
    for (size_t i = 0; i < N_SERVICES; i++) {
        const file_proto *f = file_by_name(expected_services[i][1]);
        if (f == NULL || f->n_service != 1 ||
            strcmp(f->service[0]->name, expected_services[i][0]) != 0)
            contract_fail("%s must be the one service of %s", expected_services[i][0],
                          expected_services[i][1]);
    }
    if (file_by_name("herald/v1/common.proto") != NULL &&
        file_by_name("herald/v1/common.proto")->n_service != 0)
        contract_fail("common.proto must hold shared types only");
    if (n_herald != 5)
        contract_fail("%zu herald.v1 files; expected 5", n_herald);
    if (n_services != N_SERVICES)
        contract_fail("%zu herald.v1 services; expected %d", n_services, N_SERVICES);
    /* The google.rpc protos are compiled for the runtime but not served. */
    if (file_by_name("google/rpc/status.proto") != NULL)
        contract_fail("google/rpc/status.proto must not be in the served set");
    assert_int_equal(failures, 0);
}

static void check_method_shape(const file_proto *f, const svc_proto *s, size_t si,
                               const method_proto *m, size_t mi, void *user)
{
    (void)si;
    (void)mi;
    (void)user;
    const file_proto *in_file = NULL;
    const msg_proto *in = message_by_type(m->input_type, &in_file);
    const msg_proto *out = message_by_type(m->output_type, NULL);
    char want[256];

    if (method_verb(m->name) == NULL)
        contract_fail("%s.%s: not Verb+Noun with a known verb", s->name, m->name);
    if (m->client_streaming || m->server_streaming)
        contract_fail("%s.%s: streaming is not part of v1", s->name, m->name);
    snprintf(want, sizeof(want), ".herald.v1.%sRequest", m->name);
    if (strcmp(m->input_type, want) != 0)
        contract_fail("%s.%s: request must be %s, is %s", s->name, m->name, want + 1,
                      m->input_type);
    else if (in == NULL || in_file != f)
        contract_fail("%s.%s: request must be defined beside its service", s->name, m->name);
    if (out == NULL) {
        contract_fail("%s.%s: response %s is not a herald.v1 message", s->name, m->name,
                      m->output_type);
    } else if (ends_with(out->name, "Request")) {
        contract_fail("%s.%s: returns a request message", s->name, m->name);
    } else if (ends_with(out->name, "Response")) {
        snprintf(want, sizeof(want), "%sResponse", m->name);
        if (strcmp(out->name, want) != 0)
            contract_fail("%s.%s: returns %s, which belongs to another method", s->name, m->name,
                          out->name);
    }
}

/* Verb+Noun names; <Method>Request beside the service; the response is
 * <Method>Response or a resource message; unary only. */
static void api_method_shapes(void **state)
{
    (void)state;
    for_each_method(check_method_shape, NULL);
    assert_int_equal(failures, 0);
}

static void check_request_id(const file_proto *f, const svc_proto *s, size_t si,
                             const method_proto *m, size_t mi, void *user)
{
    (void)f;
    (void)si;
    (void)mi;
    int *n_mutating = user;
    const msg_proto *in = message_by_type(m->input_type, NULL);
    const field_proto *rid = in != NULL ? field_by_name(in, "request_id") : NULL;

    if (in == NULL)
        return; /* reported by api_method_shapes */
    if (is_read_verb(m->name)) {
        if (rid != NULL)
            contract_fail("%s.%s: a read method must not take request_id", s->name, m->name);
        return;
    }
    (*n_mutating)++;
    if (rid == NULL) {
        contract_fail("%s.%s: mutating, but %s has no request_id", s->name, m->name, in->name);
        return;
    }
    if (rid->type != FIELD_TYPE(STRING) || rid->label == LABEL_REPEATED || rid->number != 1 ||
        rid->has_oneof_index)
        contract_fail("%s.%s: request_id must be field 1, a plain singular string", s->name,
                      m->name);
}

/* Every mutating method's request has `string request_id = 1`; reads have
 * none (so the classification cannot drift). */
static void api_mutations_take_request_id(void **state)
{
    (void)state;
    int n_mutating = 0;
    for_each_method(check_request_id, &n_mutating);
    /* Guards the rule itself: most of the API mutates. */
    assert_true(n_mutating >= 25);
    assert_int_equal(failures, 0);
}

static bool is_field(const field_proto *fd, Google__Protobuf__FieldDescriptorProto__Type type)
{
    return fd != NULL && fd->type == type && fd->label != LABEL_REPEATED && !fd->has_oneof_index;
}

static void check_paging(const file_proto *f, const svc_proto *s, size_t si, const method_proto *m,
                         size_t mi, void *user)
{
    (void)f;
    (void)si;
    (void)mi;
    int *n_lists = user;
    const msg_proto *in = message_by_type(m->input_type, NULL);
    const msg_proto *out = message_by_type(m->output_type, NULL);
    bool list = starts_with(m->name, "List");

    if (in == NULL || out == NULL)
        return;
    if (!list) {
        if (field_by_name(out, "next_page_token") != NULL || field_by_name(in, "page_token"))
            contract_fail("%s.%s: pages but is not a List method", s->name, m->name);
        return;
    }
    (*n_lists)++;
    if (!is_field(field_by_name(in, "page_size"), FIELD_TYPE(INT32)))
        contract_fail("%s.%s: request needs int32 page_size", s->name, m->name);
    if (!is_field(field_by_name(in, "page_token"), FIELD_TYPE(STRING)))
        contract_fail("%s.%s: request needs string page_token", s->name, m->name);
    if (!is_field(field_by_name(out, "next_page_token"), FIELD_TYPE(STRING)))
        contract_fail("%s.%s: response needs string next_page_token", s->name, m->name);
    size_t repeated = 0;
    for (size_t i = 0; i < out->n_field; i++)
        if (out->field[i]->label == LABEL_REPEATED && out->field[i]->number == 1)
            repeated++;
    if (repeated != 1)
        contract_fail("%s.%s: response's field 1 must be the repeated items", s->name, m->name);
}

/* Every List* request has page_size and page_token, and its response the
 * items (field 1) and next_page_token; nothing else pages. */
static void api_lists_page(void **state)
{
    (void)state;
    int n_lists = 0;
    for_each_method(check_paging, &n_lists);
    assert_true(n_lists >= 7);
    assert_int_equal(failures, 0);
}

static void upper_snake(const char *camel, char *buf, size_t cap)
{
    size_t n = 0;
    for (const char *p = camel; *p != '\0' && n + 2 < cap; p++) {
        if (isupper((unsigned char)*p) && p != camel)
            buf[n++] = '_';
        buf[n++] = (char)toupper((unsigned char)*p);
    }
    buf[n] = '\0';
}

static void check_enum(const file_proto *f, const enum_proto *e, const int32_t *path, size_t n,
                       void *user)
{
    int *n_enums = user;
    char prefix[128], want[160];
    int32_t p[MAX_PATH];

    (*n_enums)++;
    upper_snake(e->name, prefix, sizeof(prefix));
    snprintf(want, sizeof(want), "%s_UNSPECIFIED", prefix);
    if (e->n_value == 0 || e->value[0]->number != 0 || strcmp(e->value[0]->name, want) != 0)
        contract_fail("%s: first value must be %s = 0", e->name, want);
    memcpy(p, path, n * sizeof(*p));
    for (size_t i = 0; i < e->n_value; i++) {
        const Google__Protobuf__EnumValueDescriptorProto *v = e->value[i];
        if (!starts_with(v->name, prefix) || v->name[strlen(prefix)] != '_')
            contract_fail("%s.%s: values must be prefixed %s_", e->name, v->name, prefix);
        if (i > 0 && v->number == 0)
            contract_fail("%s.%s: only the _UNSPECIFIED value may be 0", e->name, v->name);
        p[n] = P_ENUM_VALUE;
        p[n + 1] = (int32_t)i;
        if (!has_text(comment_at(f, p, n + 2)))
            contract_fail("%s.%s: undocumented enum value", e->name, v->name);
    }
    if (!has_text(comment_at(f, path, n)))
        contract_fail("%s: undocumented enum", e->name);
}

/* Every enum's zero is <ENUM>_UNSPECIFIED and every value carries the
 * prefix; enums and values are documented. */
static void api_enums_unspecified(void **state)
{
    (void)state;
    int n_enums = 0;
    for_each_enum(check_enum, &n_enums);
    assert_true(n_enums >= 20);
    assert_int_equal(failures, 0);
}

static bool snake_case(const char *s)
{
    if (!islower((unsigned char)s[0]) || ends_with(s, "_") || strstr(s, "__") != NULL)
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
            return false;
    return true;
}

/* Field names that mean a length of time and so must carry a unit. */
static bool names_a_duration(const char *name)
{
    static const char *const words[] = { "timeout", "lease",  "delay",    "backoff", "gap",
                                         "period",  "uptime", "duration", "latency", "age" };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        const char *w = strstr(name, words[i]);
        size_t n = strlen(words[i]);
        /* Whole words only ("age" is not "page_size"). */
        if (w != NULL && (w == name || w[-1] == '_') && (w[n] == '\0' || w[n] == '_'))
            return true;
    }
    return false;
}

static bool has_unit(const char *name)
{
    static const char *const units[] = { "_ms", "_seconds", "_minutes", "_hours", "_days" };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (ends_with(name, units[i]))
            return true;
    return false;
}

static bool is_numeric(const field_proto *fd)
{
    switch (fd->type) {
    case FIELD_TYPE(DOUBLE):
    case FIELD_TYPE(FLOAT):
    case FIELD_TYPE(INT64):
    case FIELD_TYPE(UINT64):
    case FIELD_TYPE(INT32):
    case FIELD_TYPE(UINT32):
    case FIELD_TYPE(SINT32):
    case FIELD_TYPE(SINT64):
        return true;
    default:
        return false;
    }
}

static void check_message(const file_proto *f, const msg_proto *m, const int32_t *path, size_t n,
                          void *user)
{
    int *n_fields = user;
    int32_t p[MAX_PATH];

    if (!has_text(comment_at(f, path, n)))
        contract_fail("%s: undocumented message", m->name);
    if (!isupper((unsigned char)m->name[0]) || strchr(m->name, '_') != NULL)
        contract_fail("%s: message names are UpperCamelCase", m->name);
    memcpy(p, path, n * sizeof(*p));
    for (size_t i = 0; i < m->n_field; i++) {
        const field_proto *fd = m->field[i];
        bool ts = fd->type == FIELD_TYPE(MESSAGE) &&
                  strcmp(fd->type_name, ".google.protobuf.Timestamp") == 0;

        (*n_fields)++;
        p[n] = P_MSG_FIELD;
        p[n + 1] = (int32_t)i;
        if (!has_text(comment_at(f, p, n + 2)))
            contract_fail("%s.%s: undocumented field", m->name, fd->name);
        if (!snake_case(fd->name))
            contract_fail("%s.%s: field names are lower_snake_case", m->name, fd->name);
        if (ts != ends_with(fd->name, "_time"))
            contract_fail("%s.%s: instants are Timestamps named *_time, and only they", m->name,
                          fd->name);
        if (ends_with(fd->name, "_at"))
            contract_fail("%s.%s: use *_time for instants", m->name, fd->name);
        if (is_numeric(fd) && names_a_duration(fd->name) && !has_unit(fd->name))
            contract_fail("%s.%s: a duration needs its unit in the name", m->name, fd->name);
        if (fd->type == FIELD_TYPE(MESSAGE) &&
            strcmp(fd->type_name, ".google.protobuf.Duration") == 0)
            contract_fail("%s.%s: use an integer with a unit suffix, not Duration", m->name,
                          fd->name);
    }
    /* Optional values: a oneof named <f>_opt holds exactly <f>. Any other
     * oneof is a real choice and has at least two members. */
    for (size_t o = 0; o < m->n_oneof_decl; o++) {
        const char *name = m->oneof_decl[o]->name;
        const field_proto *only = NULL;
        size_t members = 0;

        for (size_t i = 0; i < m->n_field; i++) {
            if (m->field[i]->has_oneof_index && m->field[i]->oneof_index == (int32_t)o) {
                members++;
                only = m->field[i];
            }
        }
        if (ends_with(name, "_opt")) {
            size_t len = strlen(name) - strlen("_opt");
            if (members != 1 || strlen(only->name) != len || strncmp(only->name, name, len) != 0)
                contract_fail("%s.%s: an _opt oneof holds exactly the field it names", m->name,
                              name);
        } else if (members < 2) {
            contract_fail("%s.%s: a one-member oneof must be named <field>_opt", m->name, name);
        }
    }
}

/* Every message and field is documented and named by the rules; instants
 * are Timestamps named *_time; durations carry units; optional values
 * follow the _opt convention. */
static void api_messages_documented(void **state)
{
    (void)state;
    int n_fields = 0;
    for_each_message(check_message, &n_fields);
    assert_true(n_fields >= 300);
    assert_int_equal(failures, 0);
}

static void check_method_doc(const file_proto *f, const svc_proto *s, size_t si,
                             const method_proto *m, size_t mi, void *user)
{
    (void)user;
    const char *c = method_comment(f, si, mi);
    const char *scope = method_scope(c);

    if (!has_text(c)) {
        contract_fail("%s.%s: undocumented rpc", s->name, m->name);
        return;
    }
    if (scope == NULL) {
        contract_fail("%s.%s: comment must end with \"Scope: read|write|executor|admin\"", s->name,
                      m->name);
        return;
    }
    if (is_read_verb(m->name) != (strcmp(scope, "read") == 0))
        contract_fail("%s.%s: reads have scope read and mutations another scope (has %s)", s->name,
                      m->name, scope);
    if (strstr(c, "dempotent") == NULL)
        contract_fail("%s.%s: comment must say whether it is idempotent", s->name, m->name);
    if (!is_read_verb(m->name) && strstr(c, "Not idempotent") != NULL)
        contract_fail("%s.%s: a mutation must be idempotent", s->name, m->name);
}

/* Every service and rpc is documented; each rpc comment says whether it is
 * idempotent and ends with its scope, which agrees with its verb. */
static void api_rpcs_documented(void **state)
{
    (void)state;
    for (size_t i = 0; i < set->n_file; i++) {
        const file_proto *f = set->file[i];
        if (!is_herald_file(f))
            continue;
        for (size_t s = 0; s < f->n_service; s++) {
            const int32_t path[] = { P_FILE_SERVICE, (int32_t)s };
            if (!has_text(comment_at(f, path, 2)))
                contract_fail("%s: undocumented service", f->service[s]->name);
        }
    }
    for_each_method(check_method_doc, NULL);
    assert_int_equal(failures, 0);
}

/* protoc-c's service descriptors list the same methods, in the same order,
 * with the same types as the descriptor set (the runtime refuses a service
 * where they differ). */
static void api_generated_matches_set(void **state)
{
    (void)state;
    const ProtobufCServiceDescriptor *gen[N_SERVICES] = {
        &herald__v1__content_service__descriptor,
        &herald__v1__scheduling_service__descriptor,
        &herald__v1__learning_service__descriptor,
        &herald__v1__ops_service__descriptor,
    };

    for (size_t i = 0; i < N_SERVICES; i++) {
        const file_proto *f = file_by_name(expected_services[i][1]);
        assert_non_null(f);
        assert_int_equal(f->n_service, 1);
        const svc_proto *s = f->service[0];
        char full[128];
        snprintf(full, sizeof(full), "herald.v1.%s", s->name);
        assert_string_equal(gen[i]->name, full);
        assert_int_equal(gen[i]->n_methods, s->n_method);
        for (size_t m = 0; m < s->n_method; m++) {
            const ProtobufCMethodDescriptor *gm = &gen[i]->methods[m];
            assert_string_equal(gm->name, s->method[m]->name);
            /* type_name is ".herald.v1.X"; the generated name has no dot. */
            assert_string_equal(gm->input->name, s->method[m]->input_type + 1);
            assert_string_equal(gm->output->name, s->method[m]->output_type + 1);
        }
    }
}

/* A metric that was not observed stays unknown through the wire; an
 * observed 0 stays 0. This is what the _opt convention is for. */
static void api_optional_presence_roundtrip(void **state)
{
    (void)state;
    Herald__V1__EngagementObservation obs = HERALD__V1__ENGAGEMENT_OBSERVATION__INIT;
    Herald__V1__RecordEngagementRequest req = HERALD__V1__RECORD_ENGAGEMENT_REQUEST__INIT;
    Herald__V1__EngagementObservation *list[1] = { &obs };
    uint8_t buf[256];

    obs.post_id = "0b8f6a36-4a4b-4d5e-9a0e-2f1c3d4e5f60";
    obs.likes = 0;
    obs.likes_opt_case = HERALD__V1__ENGAGEMENT_OBSERVATION__LIKES_OPT_LIKES;
    obs.impressions = 0; /* not marked present: must stay unknown */
    obs.follows = 7;
    obs.follows_opt_case = HERALD__V1__ENGAGEMENT_OBSERVATION__FOLLOWS_OPT_FOLLOWS;
    req.request_id = "5f0e2d1c-3b4a-4968-8776-a5b4c3d2e1f0";
    req.n_observations = 1;
    req.observations = list;

    size_t len = herald__v1__record_engagement_request__get_packed_size(&req);
    assert_true(len <= sizeof(buf));
    assert_int_equal(herald__v1__record_engagement_request__pack(&req, buf), len);

    Herald__V1__RecordEngagementRequest *back =
        herald__v1__record_engagement_request__unpack(NULL, len, buf);
    assert_non_null(back);
    assert_int_equal(back->n_observations, 1);
    const Herald__V1__EngagementObservation *o = back->observations[0];
    assert_true(SVC_HAS(o, likes));
    assert_int_equal(o->likes, 0);
    assert_true(SVC_HAS(o, follows));
    assert_int_equal(o->follows, 7);
    assert_false(SVC_HAS(o, impressions));
    assert_false(SVC_HAS(o, replies));
    assert_false(SVC_HAS(o, link_clicks));
    herald__v1__record_engagement_request__free_unpacked(back, NULL);
}

/* ---- docs/api.md agrees with the protos ---- */

static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *data = NULL;
    long n;

    if (fp == NULL)
        return NULL;
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0) {
        data = malloc((size_t)n + 1);
        if (data != NULL) {
            size_t got = fread(data, 1, (size_t)n, fp);
            data[got] = '\0';
        }
    }
    fclose(fp);
    return data;
}

enum { MAX_CELLS = 8, CELL_LEN = 256 };

/* Splits a markdown table row into trimmed cells without backticks.
 * Returns the number of cells (0 if line is not a row). */
static size_t split_row(const char *line, size_t len, char cells[MAX_CELLS][CELL_LEN])
{
    size_t n = 0, i = 0;

    if (len == 0 || line[0] != '|')
        return 0;
    i = 1;
    while (i < len && n < MAX_CELLS) {
        size_t k = 0;
        while (i < len && line[i] != '|') {
            if (line[i] != '`' && k + 1 < CELL_LEN)
                cells[n][k++] = line[i];
            i++;
        }
        if (i >= len)
            break; /* text after the last '|' is not a cell */
        while (k > 0 && isspace((unsigned char)cells[n][k - 1]))
            k--;
        cells[n][k] = '\0';
        size_t lead = 0;
        while (isspace((unsigned char)cells[n][lead]))
            lead++;
        memmove(cells[n], cells[n] + lead, k - lead + 1);
        n++;
        i++;
    }
    return n;
}

struct doc_check {
    const char *doc;
    int rows_seen;
};

static void check_doc_row(const file_proto *f, const svc_proto *s, size_t si, const method_proto *m,
                          size_t mi, void *user)
{
    struct doc_check *dc = user;
    const char *c = method_comment(f, si, mi);
    const char *scope = method_scope(c);
    bool not_idempotent = c != NULL && strstr(c, "Not idempotent") != NULL;
    int found = 0;

    for (const char *line = dc->doc; *line != '\0';) {
        const char *eol = strchr(line, '\n');
        size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
        char cells[MAX_CELLS][CELL_LEN];
        size_t n = split_row(line, len, cells);

        if (n >= 5 && strcmp(cells[0], s->name) == 0 && strcmp(cells[1], m->name) == 0) {
            found++;
            if (scope == NULL || strcmp(cells[3], scope) != 0)
                contract_fail("docs/api.md: %s.%s scope is \"%s\", the proto says \"%s\"", s->name,
                              m->name, cells[3], scope != NULL ? scope : "(none)");
            if (starts_with(cells[4], "no") != not_idempotent)
                contract_fail("docs/api.md: %s.%s idempotency \"%s\" disagrees with the proto",
                              s->name, m->name, cells[4]);
            if (cells[2][0] == '\0')
                contract_fail("docs/api.md: %s.%s has no purpose", s->name, m->name);
        }
        line += len;
        if (*line == '\n')
            line++;
    }
    if (found != 1)
        contract_fail("docs/api.md: %s.%s appears in %d overview rows; expected 1", s->name,
                      m->name, found);
    dc->rows_seen += found;
}

/* Counts overview rows naming one of our services. */
static int count_doc_rows(const char *doc)
{
    int rows = 0;
    for (const char *line = doc; *line != '\0';) {
        const char *eol = strchr(line, '\n');
        size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
        char cells[MAX_CELLS][CELL_LEN];
        size_t n = split_row(line, len, cells);
        for (size_t i = 0; n >= 5 && i < N_SERVICES; i++)
            if (strcmp(cells[0], expected_services[i][0]) == 0)
                rows++;
        line += len;
        if (*line == '\n')
            line++;
    }
    return rows;
}

/* The overview table of docs/api.md has exactly one row per rpc, with the
 * scope and idempotency the proto comments state. */
static void api_docs_match(void **state)
{
    (void)state;
    char *doc = read_file(HERALD_API_DOC);
    assert_non_null(doc);
    struct doc_check dc = { doc, 0 };
    for_each_method(check_doc_row, &dc);
    int rows = count_doc_rows(doc);
    if (rows != dc.rows_seen)
        contract_fail("docs/api.md has %d rows for our services, %d match an rpc", rows,
                      dc.rows_seen);
    free(doc);
    assert_int_equal(failures, 0);
}

/* The checker itself: a row split, a scope line and the verb rule. */
static void api_checker_helpers(void **state)
{
    (void)state;
    char cells[MAX_CELLS][CELL_LEN];
    const char row[] = "| ContentService | `GetPost` | One post. | read | yes (read) |";
    char line[64];

    assert_int_equal(split_row(row, strlen(row), cells), 5);
    assert_string_equal(cells[1], "GetPost");
    assert_string_equal(cells[4], "yes (read)");
    assert_int_equal(split_row("no table", 8, cells), 0);

    assert_string_equal(method_scope("Does X.\nScope: executor\n"), "executor");
    assert_null(method_scope("Does X.\nScope: root\n"));
    assert_null(method_scope("Scope: read\nDoes X.\n"));
    last_line("a\n  b c  \n\n", line, sizeof(line));
    assert_string_equal(line, "b c");

    assert_string_equal(method_verb("GetPost"), "Get");
    assert_null(method_verb("Getpost"));
    assert_null(method_verb("FrobnicatePost"));
    assert_string_equal(method_verb("Recommend"), "Recommend");
    assert_true(is_read_verb("ListArms"));
    assert_false(is_read_verb("SetArmEnabled"));

    assert_true(names_a_duration("lease_seconds"));
    assert_true(names_a_duration("min_gap_minutes"));
    assert_false(names_a_duration("page_size"));
    assert_false(has_unit("lease"));
    upper_snake("PostState", line, sizeof(line));
    assert_string_equal(line, "POST_STATE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(api_checker_helpers),
        cmocka_unit_test_setup(api_files_and_services, test_setup),
        cmocka_unit_test_setup(api_method_shapes, test_setup),
        cmocka_unit_test_setup(api_mutations_take_request_id, test_setup),
        cmocka_unit_test_setup(api_lists_page, test_setup),
        cmocka_unit_test_setup(api_enums_unspecified, test_setup),
        cmocka_unit_test_setup(api_messages_documented, test_setup),
        cmocka_unit_test_setup(api_rpcs_documented, test_setup),
        cmocka_unit_test(api_generated_matches_set),
        cmocka_unit_test(api_optional_presence_roundtrip),
        cmocka_unit_test_setup(api_docs_match, test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
