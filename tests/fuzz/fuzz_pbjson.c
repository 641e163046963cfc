/* fuzz_pbjson.c - the CLI's proto3 JSON mapping (client/pbjson.h), both ways.
 *
 * Input: byte 0 picks a message type among every message the CLI knows
 * (registry_message_at); bit 7 of byte 1 picks the direction, the rest is
 * the payload.
 *   JSON -> proto (what `herald call -d` does): when pbjson_decode_string
 *     accepts the text, encoding the message and decoding that JSON again
 *     must give the same message (compared as packed bytes).
 *   proto -> JSON (what the CLI does with a server's reply, so hostile
 *     bytes): unpack, then pbjson_encode_string must either fail cleanly or
 *     give JSON that decodes back to the same message. */
#include <string.h>

#include "fuzz.h"
#include "pbjson.h"
#include "registry.h"

/* Packed bytes of m (caller frees), *len set. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len ? *len : 1);
    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(protobuf_c_message_pack(m, buf) == *len);
    return buf;
}

/* JSON of m, or NULL when it does not encode (err set, then freed). */
static char *encode(const ProtobufCMessage *m, const pbjson_options *o)
{
    char *err = NULL;
    char *json = pbjson_encode_string(m, o, 0, &err);
    FUZZ_CHECK((json == NULL) == (err != NULL));
    free(err);
    return json;
}

/* decode(json) as a new message; must succeed. */
static ProtobufCMessage *decode(const char *json, const ProtobufCMessageDescriptor *d,
                                const pbjson_options *o)
{
    ProtobufCMessage *back = NULL;
    char *err = NULL;
    status st = pbjson_decode_string(json, strlen(json), d, o, &back, &err);
    if (st != ST_OK)
        fprintf(stderr, "re-decoding %s as %s failed: %s\n", json, d->name, err);
    FUZZ_CHECK(st == ST_OK);
    return back;
}

/* JSON -> proto accepted m: encode(m) must work and decode to the same
 * bytes (m has no unknown fields). */
static void check_from_json(const ProtobufCMessage *m, const pbjson_options *o)
{
    char *json = encode(m, o);
    if (json == NULL)
        fprintf(stderr, "a decoded %s does not encode\n", m->descriptor->name);
    FUZZ_CHECK(json != NULL);
    ProtobufCMessage *back = decode(json, m->descriptor, o);
    size_t la = 0, lb = 0;
    uint8_t *a = pack(m, &la);
    uint8_t *b = pack(back, &lb);
    if (la != lb || memcmp(a, b, la) != 0)
        fprintf(stderr, "round trip differs for %s: %s\n", m->descriptor->name, json);
    FUZZ_CHECK(la == lb && memcmp(a, b, la) == 0);
    free(a);
    free(b);
    protobuf_c_message_free_unpacked(back, NULL);
    free(json);
}

/* Wire -> JSON: a decoded reply may hold unknown fields (JSON drops them),
 * so the check is that the JSON is a fixed point: encode(decode(j)) == j. */
static void check_from_wire(const ProtobufCMessage *m, const pbjson_options *o)
{
    char *json = encode(m, o);
    if (json == NULL)
        return;
    ProtobufCMessage *back = decode(json, m->descriptor, o);
    char *again = encode(back, o);
    FUZZ_CHECK(again != NULL);
    if (strcmp(json, again) != 0)
        fprintf(stderr, "JSON not stable for %s:\n  %s\n  %s\n", m->descriptor->name, json, again);
    FUZZ_CHECK(strcmp(json, again) == 0);
    free(again);
    protobuf_c_message_free_unpacked(back, NULL);
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t n = registry_message_count();
    const ProtobufCMessageDescriptor *d = registry_message_at(data[0] % n);
    bool from_json = (data[1] & 0x80) == 0;
    pbjson_options o = { 0 };
    o.resolve = registry_resolve;
    o.emit_defaults = (data[1] & 1) != 0;
    o.original_names = (data[1] & 2) != 0;
    o.enums_as_ints = (data[1] & 4) != 0;
    const uint8_t *p = data + 2;
    size_t len = size - 2;

    if (from_json) {
        ProtobufCMessage *m = NULL;
        char *err = NULL;
        status st = pbjson_decode_string((const char *)p, len, d, &o, &m, &err);
        FUZZ_CHECK(st == ST_OK || st == ST_INVALID);
        if (st != ST_OK) {
            FUZZ_CHECK(m == NULL && err != NULL);
            free(err);
            return 0;
        }
        /* What the JSON decoder accepts always encodes: it checked UTF-8
         * and ranges on the way in. */
        check_from_json(m, &o);
        protobuf_c_message_free_unpacked(m, NULL);
    } else {
        ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, p);
        if (m == NULL)
            return 0;
        check_from_wire(m, &o);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    return 0;
}
