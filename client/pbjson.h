/* pbjson.h - the proto3 JSON mapping for protobuf-c messages, over json-c.
 *
 * Generic over ProtobufCMessageDescriptor: no generated code is needed beyond
 * the descriptors. Output uses lowerCamelCase names (or the proto names when
 * asked), enums by name, 64-bit integers as strings, bytes as standard
 * base64, google.protobuf.Timestamp as RFC 3339 and Duration as "1.5s"; the
 * other well-known types (FieldMask, the wrappers, Struct/Value/ListValue,
 * Empty, Any) follow the spec as well. Maps are protoc-c's repeated *Entry
 * messages (key = 1, value = 2) and become JSON objects. Fields holding their
 * default value are omitted unless emit_defaults is set.
 *
 * Input accepts lowerCamelCase and original field names, enum names or
 * numbers, 64-bit integers as strings or numbers, standard and URL-safe
 * base64 with or without padding, and null for "not set". It is strict: an
 * unknown field, a wrong type, an out-of-range number, two members of one
 * oneof, a string that is not valid UTF-8 (or holds a NUL byte, which
 * protobuf-c's char * cannot carry) are errors whose message names the field
 * path ("draft.platform: unknown value \"X\" for enum herald.v1.Platform").
 *
 * Pure functions with no global state: any thread. */
#ifndef HERALD_PBJSON_H
#define HERALD_PBJSON_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>
#include <protobuf-c/protobuf-c.h>

#include "status.h"

/* Finds the descriptor of a fully-qualified message name ("herald.v1.Post"),
 * for google.protobuf.Any. NULL when unknown. */
typedef const ProtobufCMessageDescriptor *(*pbjson_resolver)(const char *full_name, void *user);

typedef struct pbjson_options {
    bool emit_defaults;      /* output: include fields at their default value */
    bool original_names;     /* output: proto field names instead of lowerCamelCase */
    bool enums_as_ints;      /* output: enum numbers instead of names */
    bool enums_short;        /* output, for people only (not proto3 JSON): enum names without
                                the enum's prefix, lower kebab case ("PLATFORM_X" -> "x");
                                names without that prefix are kept ("SERVING") */
    bool ignore_unknown;     /* input: skip unknown fields instead of failing */
    pbjson_resolver resolve; /* for Any, both ways; NULL: Any is an error */
    void *resolve_user;
} pbjson_options;

/* Encodes msg (o may be NULL for the defaults). On ST_OK *out is a new
 * json_object the caller releases with json_object_put. On failure (an Any
 * that cannot be resolved, a Timestamp out of range, invalid UTF-8 in a
 * string field) *out is NULL and *err a message the caller frees. */
status pbjson_encode(const ProtobufCMessage *msg, const pbjson_options *o, json_object **out,
                     char **err);

/* The same, as text: json-c flags (JSON_C_TO_STRING_PRETTY, ...) shape it;
 * JSON_C_TO_STRING_NOSLASHESCAPE is always added. NULL on error (*err set);
 * otherwise a new string the caller frees. */
char *pbjson_encode_string(const ProtobufCMessage *msg, const pbjson_options *o, int json_c_flags,
                           char **err);

/* Decodes j into a new message of type d. On ST_OK *out is allocated with
 * the system allocator: free it with protobuf_c_message_free_unpacked(*out,
 * NULL). ST_INVALID with *err (caller frees) otherwise. */
status pbjson_decode(json_object *j, const ProtobufCMessageDescriptor *d, const pbjson_options *o,
                     ProtobufCMessage **out, char **err);

/* Parses text[0..len) as exactly one JSON value (strict syntax, UTF-8
 * checked; whitespace around it allowed) and decodes it as above. */
status pbjson_decode_string(const char *text, size_t len, const ProtobufCMessageDescriptor *d,
                            const pbjson_options *o, ProtobufCMessage **out, char **err);

/* Parses text[0..len) into a json_object (strict, UTF-8 checked). ST_OK
 * with *out (json_object_put it) or ST_INVALID with *err. */
status pbjson_parse(const char *text, size_t len, json_object **out, char **err);

/* The lowerCamelCase JSON name of a proto field name ("content_type" ->
 * "contentType"), as protoc computes json_name. New string; caller frees. */
char *pbjson_json_name(const char *proto_name);

/* Map entry detection: true when f is protoc-c's representation of a map
 * field (a repeated message named <Parent>.<FieldCamel>Entry with fields
 * key = 1 and value = 2). */
bool pbjson_field_is_map(const ProtobufCMessageDescriptor *parent,
                         const ProtobufCFieldDescriptor *f);

/* True for google.protobuf well-known types with a special JSON form
 * (Timestamp, Duration, FieldMask, wrappers, Struct, Value, ListValue, Any,
 * Empty): their JSON is not an object of their fields. */
bool pbjson_is_wkt(const ProtobufCMessageDescriptor *d);

/* Standard base64 with padding; new string, caller frees. */
char *pbjson_base64_encode(const uint8_t *data, size_t len);
/* Accepts standard or URL-safe alphabets, padding optional. false on bad
 * input; on true *out (caller frees; may be non-NULL for len 0) and *out_len. */
bool pbjson_base64_decode(const char *s, size_t len, uint8_t **out, size_t *out_len);

/* RFC 3339 conversions used for Timestamp ("1970-01-01T00:00:00Z", 0, 3, 6
 * or 9 fraction digits on output). Output into buf (>= 40 bytes); false when
 * out of the range 0001-01-01 .. 9999-12-31 or nanos is invalid. */
bool pbjson_format_timestamp(int64_t seconds, int32_t nanos, char *buf, size_t cap);
bool pbjson_parse_timestamp(const char *s, int64_t *seconds, int32_t *nanos);
/* Duration as "1.5s", "-0.000001s", "3s". */
bool pbjson_format_duration(int64_t seconds, int32_t nanos, char *buf, size_t cap);
bool pbjson_parse_duration(const char *s, int64_t *seconds, int32_t *nanos);

#endif
