/* Unit tests for client/pbjson: the proto3 JSON mapping.
 *
 * 1. Round trip of every message type the CLI knows (the whole Herald API,
 *    health, reflection, google.rpc details) and of the test messages in
 *    tests/cli/proto (maps of every key type, proto2 optionals, every
 *    well-known type): a populated instance (every field set; one variant per
 *    oneof member) is encoded to JSON text, parsed, decoded, and the
 *    serialized bytes must be identical. Also with original field names and
 *    with defaults emitted.
 * 2. Edge cases: bad UTF-8, NUL, unknown fields, wrong types, ranges, 64-bit
 *    strings, base64 alphabets, enums, Timestamp/Duration/FieldMask text,
 *    oneof conflicts, null handling. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "herald/clitest/v1/json2.pb-c.h"
#include "herald/clitest/v1/json3.pb-c.h"
#include "herald/v1/content.pb-c.h"
#include "pbjson.h"
#include "registry.h"
#include "util.h"

/* ---- a resolver that knows the registry and the test messages ---- */

static const ProtobufCMessageDescriptor *const test_msgs[] = {
    &herald__clitest__v1__scalars__descriptor,    &herald__clitest__v1__maps__descriptor,
    &herald__clitest__v1__well_known__descriptor, &herald__clitest__v1__legacy__descriptor,
    &herald__clitest__v1__inner__descriptor,
};

static const ProtobufCMessageDescriptor *test_resolve(const char *name, void *user)
{
    (void)user;
    for (size_t i = 0; i < sizeof test_msgs / sizeof test_msgs[0]; i++) {
        if (strcmp(test_msgs[i]->name, name) == 0)
            return test_msgs[i];
    }
    return registry_resolve(name, NULL);
}

/* ---- building populated messages from descriptors ---- */

static ProtobufCMessage *fill_message(const ProtobufCMessageDescriptor *d, unsigned variant,
                                      int depth);

static void *member(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (char *)m + f->offset;
}

/* Index of f among the members of its oneof, and the member count. */
static void oneof_position(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                           unsigned *index, unsigned *count)
{
    *index = 0;
    *count = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *g = &d->fields[i];
        if ((g->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            g->quantifier_offset == f->quantifier_offset) {
            if (g == f)
                *index = *count;
            (*count)++;
        }
    }
}

static size_t type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    default:
        return 4;
    }
}

/* A non-default value of f's type; k varies it between elements. Returns
 * false when a message value cannot be built (depth limit). */
static bool fill_value(const ProtobufCFieldDescriptor *f, void *dst, unsigned k, unsigned variant,
                       int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)dst = -(int32_t)(f->id * 1000 + k + 7);
        return true;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)dst = 4000000000u - f->id - k;
        return true;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        /* Beyond 2^53: only exact as a JSON string. */
        *(int64_t *)dst =
            (k % 2) ? -INT64_C(9007199254740993) - f->id : INT64_C(9007199254740993) + f->id + k;
        return true;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)dst = UINT64_MAX - f->id - k;
        return true;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)dst = 1.1f * (float)(f->id + k + 1);
        return true;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)dst = 0.1 + f->id + k * 1e-300;
        return true;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)dst = 1;
        return true;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        *(int *)dst = ed->values[ed->n_values - 1 - (k % ed->n_values)].value;
        if (*(int *)dst == 0 && ed->n_values > 1)
            *(int *)dst = ed->values[ed->n_values - 1].value;
        return true;
    }
    case PROTOBUF_C_TYPE_STRING:
        *(char **)dst = xasprintf("h\xc3\xa9llo \xe2\x9c\x93 \"q\" \\ \n/%u-%u", f->id, k);
        return true;
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = dst;
        b->len = 5 + k;
        b->data = xmalloc(b->len);
        for (size_t i = 0; i < b->len; i++)
            b->data[i] = (uint8_t)(0xfb + i * 37 + f->id);
        return true;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *sub = fill_message(f->descriptor, variant + k, depth + 1);
        *(ProtobufCMessage **)dst = sub;
        return sub != NULL;
    }
    }
    return false;
}

static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = xmalloc(d->sizeof_message);
    protobuf_c_message_init(d, m);
    return m;
}

static ProtobufCMessage *fill_wkt(const ProtobufCMessageDescriptor *d, unsigned variant, int depth)
{
    ProtobufCMessage *m = new_message(d);
    const char *n = d->name;
    if (strcmp(n, "google.protobuf.Timestamp") == 0) {
        Google__Protobuf__Timestamp *t = (Google__Protobuf__Timestamp *)m;
        t->seconds = INT64_C(1700000000) + variant * 86400 * 400;
        t->nanos = variant % 2 ? 123456789 : 120000000;
    } else if (strcmp(n, "google.protobuf.Duration") == 0) {
        *(int64_t *)member(m, protobuf_c_message_descriptor_get_field_by_name(d, "seconds")) =
            variant % 2 ? -90 : 90;
        *(int32_t *)member(m, protobuf_c_message_descriptor_get_field_by_name(d, "nanos")) =
            variant % 2 ? -500000 : 500000000;
    } else if (strcmp(n, "google.protobuf.FieldMask") == 0) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(d, "paths");
        char **paths = xcalloc(2, sizeof *paths);
        paths[0] = xstrdup("display_name");
        paths[1] = xstrdup("posting_policy.min_gap_minutes");
        *(char ***)member(m, f) = paths;
        *(size_t *)((char *)m + f->quantifier_offset) = 2;
    } else if (strcmp(n, "google.protobuf.Any") == 0) {
        /* An Any holding a Timestamp (special form) or a plain message. */
        Google__Protobuf__Any *a = (Google__Protobuf__Any *)m;
        const ProtobufCMessageDescriptor *inner_d = variant % 2
                                                        ? &herald__clitest__v1__inner__descriptor
                                                        : &google__protobuf__timestamp__descriptor;
        ProtobufCMessage *inner = depth < 3 ? fill_message(inner_d, variant, depth + 1) : NULL;
        if (!inner)
            inner = new_message(&google__protobuf__timestamp__descriptor);
        a->type_url = xasprintf("type.googleapis.com/%s", inner->descriptor->name);
        a->value.len = protobuf_c_message_get_packed_size(inner);
        a->value.data = xmalloc(a->value.len ? a->value.len : 1);
        protobuf_c_message_pack(inner, a->value.data);
        protobuf_c_message_free_unpacked(inner, NULL);
    } else if (strcmp(n, "google.protobuf.Value") == 0) {
        /* Every kind but struct/list (those recurse through their own types). */
        static const char *const kinds[] = { "string_value", "number_value", "bool_value",
                                             "null_value",   "list_value",   "struct_value" };
        const char *kind = kinds[variant % 6];
        if (depth >= 4)
            kind = "string_value";
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(d, kind);
        *(uint32_t *)((char *)m + f->quantifier_offset) = f->id;
        if (strcmp(kind, "null_value") == 0)
            *(int *)member(m, f) = 0;
        else if (!fill_value(f, member(m, f), 0, variant + 1, depth)) {
            protobuf_c_message_free_unpacked(m, NULL);
            return NULL;
        }
    } else {
        /* Struct, ListValue, wrappers, Empty: their fields, generically. */
        protobuf_c_message_free_unpacked(m, NULL);
        return NULL;
    }
    return m;
}

static ProtobufCMessage *fill_message(const ProtobufCMessageDescriptor *d, unsigned variant,
                                      int depth)
{
    if (depth > 4)
        return NULL;
    if (strncmp(d->name, "google.protobuf.", 16) == 0) {
        ProtobufCMessage *w = fill_wkt(d, variant, depth);
        if (w || strcmp(d->name, "google.protobuf.Value") == 0)
            return w;
    }
    ProtobufCMessage *m = new_message(d);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            unsigned idx, count;
            oneof_position(d, f, &idx, &count);
            if (idx != variant % count)
                continue;
            if (fill_value(f, member(m, f), 0, variant, depth))
                *(uint32_t *)((char *)m + f->quantifier_offset) = f->id;
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            bool is_map = pbjson_field_is_map(d, f);
            size_t n = 2, sz = type_size(f->type);
            char *arr = xcalloc(n, sz);
            size_t got = 0;
            for (size_t k = 0; k < n; k++) {
                if (is_map) {
                    /* Entries with distinct keys (bool maps: true and false). */
                    const ProtobufCMessageDescriptor *ed = f->descriptor;
                    ProtobufCMessage *e = new_message(ed);
                    fill_value(&ed->fields[0], member(e, &ed->fields[0]), (unsigned)k, variant,
                               depth);
                    if (ed->fields[0].type == PROTOBUF_C_TYPE_BOOL)
                        *(protobuf_c_boolean *)member(e, &ed->fields[0]) = k == 0;
                    fill_value(&ed->fields[1], member(e, &ed->fields[1]), (unsigned)k, variant,
                               depth + 1);
                    if (ed->fields[1].type == PROTOBUF_C_TYPE_MESSAGE &&
                        *(ProtobufCMessage **)member(e, &ed->fields[1]) == NULL)
                        *(ProtobufCMessage **)member(e, &ed->fields[1]) =
                            new_message(ed->fields[1].descriptor);
                    ((ProtobufCMessage **)(void *)arr)[got++] = e;
                } else if (fill_value(f, arr + got * sz, (unsigned)k, variant, depth)) {
                    got++;
                }
            }
            *(void **)member(m, f) = arr;
            *(size_t *)((char *)m + f->quantifier_offset) = got;
            continue;
        }
        if (fill_value(f, member(m, f), 0, variant, depth) &&
            f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
            f->type != PROTOBUF_C_TYPE_MESSAGE)
            *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
    }
    return m;
}

static unsigned max_oneof_members(const ProtobufCMessageDescriptor *d)
{
    unsigned best = 1;
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            unsigned idx, count;
            oneof_position(d, &d->fields[i], &idx, &count);
            if (count > best)
                best = count;
        }
    }
    return best;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = xmalloc(*len ? *len : 1);
    protobuf_c_message_pack(m, buf);
    return buf;
}

/* Encode -> text -> parse -> decode; the serialized bytes must match. */
static void round_trip(const ProtobufCMessage *m, const pbjson_options *o, int flags)
{
    char *err = NULL;
    char *text = pbjson_encode_string(m, o, flags, &err);
    if (!text)
        fail_msg("%s: encode failed: %s", m->descriptor->name, err);
    ProtobufCMessage *back = NULL;
    status st = pbjson_decode_string(text, strlen(text), m->descriptor, o, &back, &err);
    if (st != ST_OK)
        fail_msg("%s: decode failed: %s\n%s", m->descriptor->name, err, text);
    size_t la, lb;
    uint8_t *a = pack(m, &la);
    uint8_t *b = pack(back, &lb);
    if (la != lb || memcmp(a, b, la) != 0)
        fail_msg("%s: bytes differ after the JSON round trip (%zu vs %zu)\n%s", m->descriptor->name,
                 la, lb, text);
    /* And the decoded message encodes to the same text. */
    char *text2 = pbjson_encode_string(back, o, flags, &err);
    assert_non_null(text2);
    assert_string_equal(text, text2);
    free(text2);
    free(a);
    free(b);
    protobuf_c_message_free_unpacked(back, NULL);
    free(text);
}

static void round_trip_all_variants(const ProtobufCMessageDescriptor *d, size_t *count)
{
    pbjson_options plain = { .resolve = test_resolve };
    pbjson_options orig = { .resolve = test_resolve, .original_names = true };
    pbjson_options defaults = { .resolve = test_resolve, .emit_defaults = true };
    unsigned variants = max_oneof_members(d);
    if (variants < 2)
        variants = 2; /* Any and Value vary with the variant too */
    for (unsigned v = 0; v < variants; v++) {
        ProtobufCMessage *m = fill_message(d, v, 0);
        if (!m)
            continue;
        round_trip(m, &plain, JSON_C_TO_STRING_PRETTY);
        round_trip(m, &orig, JSON_C_TO_STRING_PLAIN);
        round_trip(m, &defaults, JSON_C_TO_STRING_PLAIN);
        protobuf_c_message_free_unpacked(m, NULL);
        (*count)++;
    }
    /* The empty message: {} without defaults, and back. */
    ProtobufCMessage *e = new_message(d);
    round_trip(e, &plain, JSON_C_TO_STRING_PLAIN);
    round_trip(e, &defaults, JSON_C_TO_STRING_PLAIN);
    protobuf_c_message_free_unpacked(e, NULL);
}

static void every_api_message_round_trips(void **state)
{
    (void)state;
    size_t n = registry_message_count(), herald = 0, done = 0;
    assert_true(n > 50);
    for (size_t i = 0; i < n; i++) {
        const ProtobufCMessageDescriptor *d = registry_message_at(i);
        if (strncmp(d->name, "herald.v1.", 10) == 0)
            herald++;
        round_trip_all_variants(d, &done);
    }
    /* Every request and response of every API method is among them. */
    for (size_t s = 0; s < registry_n_services; s++) {
        const ProtobufCServiceDescriptor *sd = registry_services[s].desc;
        for (unsigned mi = 0; mi < sd->n_methods; mi++) {
            assert_non_null(registry_message_find(sd->methods[mi].input->name));
            assert_non_null(registry_message_find(sd->methods[mi].output->name));
        }
    }
    assert_true(herald > 40);
    print_message("round-tripped %zu populated instances of %zu message types (%zu herald.v1)\n",
                  done, n, herald);
}

static void test_messages_round_trip(void **state)
{
    (void)state;
    size_t done = 0;
    for (size_t i = 0; i < sizeof test_msgs / sizeof test_msgs[0]; i++)
        round_trip_all_variants(test_msgs[i], &done);
    assert_true(done >= 10);
}

/* ---- edge cases ---- */

static ProtobufCMessage *decode_ok(const char *json, const ProtobufCMessageDescriptor *d);

static char *decode_err(const char *json, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = NULL;
    char *err = NULL;
    pbjson_options o = { .resolve = test_resolve };
    status st = pbjson_decode_string(json, strlen(json), d, &o, &m, &err);
    if (st == ST_OK) {
        protobuf_c_message_free_unpacked(m, NULL);
        return NULL;
    }
    assert_null(m);
    assert_non_null(err);
    return err;
}

#define EXPECT_ERR(json, d, needle)                                                       \
    do {                                                                                  \
        char *e_ = decode_err((json), (d));                                               \
        if (!e_)                                                                          \
            fail_msg("expected an error for %s", (json));                                 \
        if (!strstr(e_, (needle)))                                                        \
            fail_msg("error for %s is \"%s\", expected it to mention \"%s\"", (json), e_, \
                     (needle));                                                           \
        free(e_);                                                                         \
    } while (0)

static ProtobufCMessage *decode_ok(const char *json, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = NULL;
    char *err = NULL;
    pbjson_options o = { .resolve = test_resolve };
    if (pbjson_decode_string(json, strlen(json), d, &o, &m, &err) != ST_OK)
        fail_msg("decoding %s failed: %s", json, err);
    return m;
}

static char *encode(const ProtobufCMessage *m)
{
    char *err = NULL;
    pbjson_options o = { .resolve = test_resolve };
    char *s = pbjson_encode_string(m, &o, JSON_C_TO_STRING_PLAIN, &err);
    if (!s)
        fail_msg("encode failed: %s", err);
    return s;
}

static void bad_utf8_and_nul(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *d = &herald__clitest__v1__scalars__descriptor;
    EXPECT_ERR("{\"text\":\"\xff\xfe"
               "A\"}",
               d, "not valid UTF-8");
    EXPECT_ERR("{\"text\":\"\xc0\xaf\"}", d, "not valid UTF-8"); /* overlong '/' */
    EXPECT_ERR("{\"text\":\"a\\u0000b\"}", d, "text: string contains a NUL");
    /* json-c (like Go's encoding/json) turns a lone surrogate escape into
     * U+FFFD, which is valid UTF-8; the escape never yields invalid bytes. */
    Herald__Clitest__V1__Scalars *r =
        (Herald__Clitest__V1__Scalars *)decode_ok("{\"text\":\"\\ud800\"}", d);
    assert_string_equal(r->text, "\xef\xbf\xbd");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* Encoding refuses strings that are not UTF-8 (a server could send them). */
    Herald__Clitest__V1__Scalars s = HERALD__CLITEST__V1__SCALARS__INIT;
    s.text = "bad \xff";
    char *err = NULL;
    assert_null(pbjson_encode_string(&s.base, NULL, 0, &err));
    assert_non_null(strstr(err, "text"));
    free(err);
}

static void unknown_fields_are_named(void **state)
{
    (void)state;
    EXPECT_ERR("{\"topik\":\"sleep\"}", &herald__v1__generate_draft_request__descriptor,
               "unknown field \"topik\" in herald.v1.GenerateDraftRequest");
    EXPECT_ERR("{\"inner\":{\"nmae\":\"x\"}}", &herald__clitest__v1__scalars__descriptor,
               "inner: unknown field \"nmae\"");
    EXPECT_ERR("{\"rInner\":[{},{\"bad\":1}]}", &herald__clitest__v1__scalars__descriptor,
               "rInner[1]: unknown field \"bad\"");
    /* ignore_unknown skips them. */
    ProtobufCMessage *m = NULL;
    char *err = NULL;
    pbjson_options o = { .ignore_unknown = true };
    const char *j = "{\"bad\":1,\"text\":\"x\"}";
    assert_int_equal(
        pbjson_decode_string(j, strlen(j), &herald__clitest__v1__scalars__descriptor, &o, &m, &err),
        ST_OK);
    assert_string_equal(((Herald__Clitest__V1__Scalars *)m)->text, "x");
    protobuf_c_message_free_unpacked(m, NULL);
}

static void wrong_types(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *d = &herald__clitest__v1__scalars__descriptor;
    EXPECT_ERR("{\"i32\":\"abc\"}", d, "i32: expected an integer");
    EXPECT_ERR("{\"i32\":1.5}", d, "i32: expected an integer");
    EXPECT_ERR("{\"i32\":2147483648}", d, "out of range");
    EXPECT_ERR("{\"u32\":-1}", d, "non-negative");
    EXPECT_ERR("{\"text\":5}", d, "text: expected a string, got a number");
    EXPECT_ERR("{\"flag\":\"true\"}", d, "flag: expected true or false");
    EXPECT_ERR("{\"rI32\":5}", d, "rI32: expected an array");
    EXPECT_ERR("{\"rI32\":[1,null]}", d, "rI32[1]: array elements cannot be null");
    EXPECT_ERR("{\"inner\":[]}", d, "inner: expected an object");
    EXPECT_ERR("{\"color\":\"COLOR_GREEN\"}", d, "unknown value \"COLOR_GREEN\"");
    EXPECT_ERR("{\"color\":true}", d, "expected an enum name or number");
    EXPECT_ERR("{\"flt\":1e39}", d, "out of float range");
    EXPECT_ERR("{\"dbl\":\"fast\"}", d, "expected a number");
    EXPECT_ERR("[1]", d, "expected an object for herald.clitest.v1.Scalars");
    EXPECT_ERR("{\"text\":\"a\"} x", d, "invalid JSON");
    EXPECT_ERR("{\"text\":\"a\"", d, "unexpected end of input");
    EXPECT_ERR("{\"choiceText\":\"a\",\"choiceNum\":1}", d, "same oneof");
    EXPECT_ERR("{\"snakeCaseName\":\"a\",\"snake_case_name\":\"b\"}", d, "given twice");
    EXPECT_ERR("{\"blob\":\"!!!!\"}", d, "blob: invalid base64");
    EXPECT_ERR("{\"i32I64\":{\"x\":\"1\"}}", &herald__clitest__v1__maps__descriptor,
               "is not an integer");
    EXPECT_ERR("{\"boolDbl\":{\"yes\":1}}", &herald__clitest__v1__maps__descriptor,
               "not true or false");
}

static void integers_64_bit(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *d = &herald__clitest__v1__scalars__descriptor;
    Herald__Clitest__V1__Scalars *s = (Herald__Clitest__V1__Scalars *)decode_ok(
        "{\"i64\":\"-9223372036854775808\",\"u64\":\"18446744073709551615\",\"s64\":42,"
        "\"f64\":\"1e3\",\"sf64\":9007199254740993,\"i32\":\"-17\",\"u32\":4294967295}",
        d);
    assert_true(s->i64 == INT64_MIN);
    assert_true(s->u64 == UINT64_MAX);
    assert_int_equal(s->s64, 42);
    assert_int_equal(s->f64, 1000);
    assert_true(s->sf64 == INT64_C(9007199254740993));
    assert_int_equal(s->i32, -17);
    assert_int_equal(s->u32, 4294967295u);
    char *out = encode(&s->base);
    /* 64-bit as strings, 32-bit as numbers. */
    assert_non_null(strstr(out, "\"i64\":\"-9223372036854775808\""));
    assert_non_null(strstr(out, "\"u64\":\"18446744073709551615\""));
    assert_non_null(strstr(out, "\"sf64\":\"9007199254740993\""));
    assert_non_null(strstr(out, "\"i32\":-17"));
    free(out);
    protobuf_c_message_free_unpacked(&s->base, NULL);
    EXPECT_ERR("{\"i64\":\"9223372036854775808\"}", d, "i64: expected an integer");
    EXPECT_ERR("{\"u64\":\"-1\"}", d, "u64: expected a non-negative integer");
    EXPECT_ERR("{\"i64\":\"12abc\"}", d, "i64: expected an integer");
    EXPECT_ERR("{\"i64\":\"0x10\"}", d, "i64: expected an integer");
    EXPECT_ERR("{\"i64\":9223372036854775808}", d, "i64: integer out of range");
}

static void bytes_base64(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *d = &herald__clitest__v1__scalars__descriptor;
    /* 0xfb 0xff 0xbf: "+/+/" standard, "-_-_" URL-safe. */
    const char *forms[] = { "{\"blob\":\"+/+/\"}", "{\"blob\":\"-_-_\"}" };
    for (size_t i = 0; i < 2; i++) {
        Herald__Clitest__V1__Scalars *s = (Herald__Clitest__V1__Scalars *)decode_ok(forms[i], d);
        assert_int_equal(s->blob.len, 3);
        assert_int_equal(s->blob.data[0], 0xfb);
        assert_int_equal(s->blob.data[1], 0xff);
        assert_int_equal(s->blob.data[2], 0xbf);
        char *out = encode(&s->base);
        assert_non_null(strstr(out, "\"blob\":\"+/+/\""));
        free(out);
        protobuf_c_message_free_unpacked(&s->base, NULL);
    }
    /* Padding optional; "aGk" and "aGk=" are both "hi". */
    const char *pad[] = { "{\"blob\":\"aGk\"}", "{\"blob\":\"aGk=\"}" };
    for (size_t i = 0; i < 2; i++) {
        Herald__Clitest__V1__Scalars *s = (Herald__Clitest__V1__Scalars *)decode_ok(pad[i], d);
        assert_int_equal(s->blob.len, 2);
        assert_memory_equal(s->blob.data, "hi", 2);
        char *out = encode(&s->base);
        assert_string_equal(out, "{\"blob\":\"aGk=\"}");
        free(out);
        protobuf_c_message_free_unpacked(&s->base, NULL);
    }
    EXPECT_ERR("{\"blob\":\"aGk==\"}", d, "invalid base64");
    EXPECT_ERR("{\"blob\":\"a\"}", d, "invalid base64");
    EXPECT_ERR("{\"blob\":\"aG k\"}", d, "invalid base64");
}

static void enums_and_names(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *d = &herald__clitest__v1__scalars__descriptor;
    Herald__Clitest__V1__Scalars *s = (Herald__Clitest__V1__Scalars *)decode_ok(
        "{\"color\":\"COLOR_DEEP_BLUE\",\"r_color\":[1,\"COLOR_RED\",7],\"snake_case_name\":\"x\"}",
        d);
    assert_int_equal(s->color, HERALD__CLITEST__V1__COLOR__COLOR_DEEP_BLUE);
    assert_int_equal(s->n_r_color, 3);
    assert_int_equal(s->r_color[0], 1);
    assert_int_equal(s->r_color[2], 7); /* unknown numbers are kept (open enums) */
    assert_string_equal(s->snake_case_name, "x");
    char *out = encode(&s->base);
    assert_string_equal(out, "{\"color\":\"COLOR_DEEP_BLUE\",\"rColor\":[\"COLOR_RED\","
                             "\"COLOR_RED\",7],\"snakeCaseName\":\"x\"}");
    free(out);
    pbjson_options o = { .original_names = true, .enums_as_ints = true };
    char *err = NULL;
    out = pbjson_encode_string(&s->base, &o, JSON_C_TO_STRING_PLAIN, &err);
    assert_string_equal(out, "{\"color\":2,\"r_color\":[1,1,7],\"snake_case_name\":\"x\"}");
    free(out);
    /* Display names for tables: the enum's prefix goes, kebab case. */
    pbjson_options shortopt = { .enums_short = true };
    out = pbjson_encode_string(&s->base, &shortopt, JSON_C_TO_STRING_PLAIN, &err);
    assert_string_equal(out, "{\"color\":\"deep-blue\",\"rColor\":[\"red\",\"red\",7],"
                             "\"snakeCaseName\":\"x\"}");
    free(out);
    protobuf_c_message_free_unpacked(&s->base, NULL);
    char *jn = pbjson_json_name("follows_per_1k_impressions");
    assert_string_equal(jn, "followsPer1kImpressions");
    free(jn);
}

static void timestamps_durations_masks(void **state)
{
    (void)state;
    int64_t s;
    int32_t n;
    char buf[64];
    assert_true(pbjson_parse_timestamp("1970-01-01T00:00:00Z", &s, &n));
    assert_true(s == 0 && n == 0);
    assert_true(pbjson_parse_timestamp("2024-02-29T12:00:00.5+01:00", &s, &n));
    assert_true(s == INT64_C(1709204400) && n == 500000000);
    assert_true(pbjson_format_timestamp(s, n, buf, sizeof buf));
    assert_string_equal(buf, "2024-02-29T11:00:00.500Z");
    assert_true(pbjson_parse_timestamp("0001-01-01T00:00:00Z", &s, &n));
    assert_true(s == INT64_C(-62135596800));
    assert_true(pbjson_format_timestamp(s, 0, buf, sizeof buf));
    assert_string_equal(buf, "0001-01-01T00:00:00Z");
    assert_true(pbjson_format_timestamp(INT64_C(253402300799), 1, buf, sizeof buf));
    assert_string_equal(buf, "9999-12-31T23:59:59.000000001Z");
    assert_true(pbjson_format_timestamp(-1, 1000, buf, sizeof buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.000001Z");
    assert_false(pbjson_parse_timestamp("2023-02-29T00:00:00Z", &s, &n));
    assert_false(pbjson_parse_timestamp("2023-01-01 00:00:00Z", &s, &n));
    assert_false(pbjson_parse_timestamp("2023-01-01T00:00:00", &s, &n));
    assert_false(pbjson_parse_timestamp("2023-01-01T24:00:00Z", &s, &n));
    assert_false(pbjson_parse_timestamp("2023-01-01T00:00:00.1234567890Z", &s, &n));
    assert_false(pbjson_format_timestamp(INT64_C(253402300800), 0, buf, sizeof buf));

    assert_true(pbjson_parse_duration("1.5s", &s, &n));
    assert_true(s == 1 && n == 500000000);
    assert_true(pbjson_parse_duration("-0.000001s", &s, &n));
    assert_true(s == 0 && n == -1000);
    assert_true(pbjson_format_duration(s, n, buf, sizeof buf));
    assert_string_equal(buf, "-0.000001s");
    assert_true(pbjson_format_duration(3, 0, buf, sizeof buf));
    assert_string_equal(buf, "3s");
    assert_false(pbjson_parse_duration("1.5", &s, &n));
    assert_false(pbjson_parse_duration("s", &s, &n));
    assert_false(pbjson_parse_duration("315576000001s", &s, &n));
    assert_false(pbjson_format_duration(1, -1, buf, sizeof buf));

    const ProtobufCMessageDescriptor *d = &herald__clitest__v1__well_known__descriptor;
    Herald__Clitest__V1__WellKnown *w = (Herald__Clitest__V1__WellKnown *)decode_ok(
        "{\"ts\":\"2026-11-28T17:21:38.412Z\",\"dur\":\"90s\",\"mask\":\"displayName,"
        "postingPolicy.minGapMinutes\",\"wI64\":\"5\",\"wBool\":false,\"val\":null,"
        "\"st\":{\"a\":[1,\"x\",null,{\"b\":true}]},\"any\":{\"@type\":"
        "\"type.googleapis.com/google.protobuf.Duration\",\"value\":\"2s\"},\"empty\":{}}",
        d);
    assert_true(w->ts->seconds == INT64_C(1795886498) && w->ts->nanos == 412000000);
    assert_int_equal(w->dur->seconds, 90);
    assert_int_equal(w->mask->n_paths, 2);
    assert_string_equal(w->mask->paths[1], "posting_policy.min_gap_minutes");
    assert_non_null(w->w_bool); /* present, holding false */
    assert_non_null(w->val);    /* null is a Value (null_value), not "unset" */
    char *out = encode(&w->base);
    assert_string_equal(out,
                        "{\"ts\":\"2026-11-28T17:21:38.412Z\",\"dur\":\"90s\",\"mask\":"
                        "\"displayName,postingPolicy.minGapMinutes\",\"any\":{\"@type\":"
                        "\"type.googleapis.com/google.protobuf.Duration\",\"value\":\"2s\"},"
                        "\"st\":{\"a\":[1,\"x\",null,{\"b\":true}]},\"val\":null,\"wI64\":\"5\","
                        "\"wBool\":false,\"empty\":{}}");
    free(out);
    protobuf_c_message_free_unpacked(&w->base, NULL);
    EXPECT_ERR("{\"ts\":\"yesterday\"}", d, "ts: invalid google.protobuf.Timestamp");
    EXPECT_ERR("{\"ts\":5}", d, "ts: expected an RFC 3339 string");
    EXPECT_ERR("{\"dur\":\"5m\"}", d, "dur: invalid google.protobuf.Duration");
    EXPECT_ERR("{\"any\":{\"@type\":\"type.googleapis.com/no.Such\"}}", d, "cannot resolve");
    EXPECT_ERR("{\"any\":{\"value\":\"2s\"}}", d, "needs a string \"@type\"");
    EXPECT_ERR("{\"empty\":{\"x\":1}}", d, "expected {}");
}

static void nulls_defaults_and_oneofs(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *d = &herald__clitest__v1__scalars__descriptor;
    Herald__Clitest__V1__Scalars *s = (Herald__Clitest__V1__Scalars *)decode_ok(
        "{\"text\":null,\"inner\":null,\"rI32\":null,\"choiceNum\":0}", d);
    assert_string_equal(s->text, "");
    assert_null(s->inner);
    assert_int_equal(s->n_r_i32, 0);
    /* A oneof member holding its default is still "set". */
    assert_int_equal(s->choice_case, HERALD__CLITEST__V1__SCALARS__CHOICE_CHOICE_NUM);
    char *out = encode(&s->base);
    assert_string_equal(out, "{\"choiceNum\":0}");
    free(out);
    pbjson_options o = { .emit_defaults = true };
    char *err = NULL;
    out = pbjson_encode_string(&s->base, &o, JSON_C_TO_STRING_PLAIN, &err);
    assert_non_null(strstr(out, "\"i64\":\"0\""));
    assert_non_null(strstr(out, "\"text\":\"\""));
    assert_non_null(strstr(out, "\"color\":\"COLOR_UNSPECIFIED\""));
    assert_non_null(strstr(out, "\"rI32\":[]"));
    assert_null(strstr(out, "\"inner\"")); /* unset messages stay out */
    free(out);
    protobuf_c_message_free_unpacked(&s->base, NULL);

    /* proto2: has_ flags and defaults. */
    Herald__Clitest__V1__Legacy *l = (Herald__Clitest__V1__Legacy *)decode_ok(
        "{\"num\":0,\"id\":\"7\",\"on\":false}", &herald__clitest__v1__legacy__descriptor);
    assert_true(l->has_num && l->num == 0);
    assert_true(l->has_on && !l->on);
    assert_false(l->has_ratio);
    out = encode(&l->base);
    assert_string_equal(out, "{\"num\":0,\"on\":false,\"id\":\"7\"}");
    free(out);
    protobuf_c_message_free_unpacked(&l->base, NULL);

    /* Floats print the shortest text that reads back exactly. */
    Herald__Clitest__V1__Scalars f = HERALD__CLITEST__V1__SCALARS__INIT;
    f.flt = 0.1f;
    f.dbl = 0.1;
    double r[] = { NAN, -INFINITY };
    f.r_dbl = r;
    f.n_r_dbl = 2;
    out = encode(&f.base);
    assert_string_equal(out, "{\"flt\":0.1,\"dbl\":0.1,\"rDbl\":[\"NaN\",\"-Infinity\"]}");
    free(out);
    s = (Herald__Clitest__V1__Scalars *)decode_ok("{\"rDbl\":[\"NaN\",\"Infinity\",\"2.5\"]}", d);
    assert_true(isnan(s->r_dbl[0]) && isinf(s->r_dbl[1]) && s->r_dbl[2] == 2.5);
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

static void maps_all_key_types(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *d = &herald__clitest__v1__maps__descriptor;
    Herald__Clitest__V1__Maps *m = (Herald__Clitest__V1__Maps *)decode_ok(
        "{\"strStr\":{\"a\":\"b\",\"\":\"empty\"},\"i32I64\":{\"-5\":\"9007199254740993\"},"
        "\"i64Inner\":{\"42\":{\"name\":\"n\"}},\"u32Color\":{\"7\":\"COLOR_RED\"},"
        "\"boolDbl\":{\"true\":1.5,\"false\":-2},\"f64Str\":{\"18446744073709551615\":\"max\"}}",
        d);
    assert_int_equal(m->n_str_str, 2);
    assert_string_equal(m->str_str[1]->key, "");
    assert_int_equal(m->i32_i64[0]->key, -5);
    assert_true(m->i32_i64[0]->value == INT64_C(9007199254740993));
    assert_string_equal(m->i64_inner[0]->value->name, "n");
    assert_true(m->f64_str[0]->key == UINT64_MAX);
    char *out = encode(&m->base);
    assert_string_equal(out, "{\"strStr\":{\"a\":\"b\",\"\":\"empty\"},\"i32I64\":{\"-5\":"
                             "\"9007199254740993\"},\"i64Inner\":{\"42\":{\"name\":\"n\"}},"
                             "\"u32Color\":{\"7\":\"COLOR_RED\"},\"boolDbl\":{\"true\":1.5,"
                             "\"false\":-2},\"f64Str\":{\"18446744073709551615\":\"max\"}}");
    free(out);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    EXPECT_ERR("{\"strStr\":{\"a\":null}}", d, "strStr[\"a\"]: map values cannot be null");
    EXPECT_ERR("{\"u32Color\":{\"-1\":1}}", d, "u32Color[\"-1\"]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_api_message_round_trips),
        cmocka_unit_test(test_messages_round_trip),
        cmocka_unit_test(bad_utf8_and_nul),
        cmocka_unit_test(unknown_fields_are_named),
        cmocka_unit_test(wrong_types),
        cmocka_unit_test(integers_64_bit),
        cmocka_unit_test(bytes_base64),
        cmocka_unit_test(enums_and_names),
        cmocka_unit_test(timestamps_durations_masks),
        cmocka_unit_test(nulls_defaults_and_oneofs),
        cmocka_unit_test(maps_all_key_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
