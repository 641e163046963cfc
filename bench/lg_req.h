/* lg_req.h - request bodies of herald-loadgen: a serialized protobuf message
 * given as proto3 JSON (encoded with pbjson against a message descriptor) or
 * as bytes, optionally a template whose placeholders change on every call:
 *
 *   {{uuid}}  a new random UUIDv4 (each occurrence its own), e.g. request_id
 *   {{seq}}   the call's sequence number, 12 digits zero-padded
 *   {{run}}   8 hex digits fixed for the process (tells runs apart)
 *
 * When every placeholder sits inside a string field, the template is encoded
 * once and each call copies the bytes and overwrites the placeholders in
 * place (the lengths are fixed): the fast path, a memcpy per call. Otherwise
 * (a placeholder in a number, a bytes or a Timestamp field) each call
 * substitutes the JSON text and encodes it again: correct, but it costs the
 * client CPU, and lg_tmpl_fast() says so.
 *
 * A template is immutable once built: any thread may render from it. */
#ifndef LG_REQ_H
#define LG_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

typedef struct lg_tmpl lg_tmpl;

/* Per-thread random state (splitmix64); seed it with lg_rng_seed. */
typedef struct lg_rng {
    uint64_t s;
} lg_rng;

void lg_rng_seed(lg_rng *r, uint64_t salt);
uint64_t lg_rng_next(lg_rng *r);
/* Writes a random UUIDv4 (36 chars, lower-case hex) and a NUL into out[37]. */
void lg_uuid(lg_rng *r, char out[37]);

/* The process's {{run}} value (8 hex digits); fixed at the first call. */
const char *lg_run_id(void);

/* Builds a template from JSON text (copied) for messages of type d. NULL on
 * error with *err (caller frees): bad JSON, a field d does not have... */
lg_tmpl *lg_tmpl_from_json(const char *json, size_t len, const ProtobufCMessageDescriptor *d,
                           char **err);
/* A template of fixed bytes (copied); no placeholders. */
lg_tmpl *lg_tmpl_from_bytes(const uint8_t *data, size_t len);
void lg_tmpl_free(lg_tmpl *t); /* NULL is a no-op */

/* True when renders are a copy and in-place patches (or nothing at all). */
bool lg_tmpl_fast(const lg_tmpl *t);
/* True when the template has no placeholders (every call sends the same bytes). */
bool lg_tmpl_static(const lg_tmpl *t);
/* Size of the encoded template (with placeholders at their final length). */
size_t lg_tmpl_size(const lg_tmpl *t);

/* Renders the request of call seq into a new buffer of *len bytes the caller
 * frees. On the slow path a render can fail (the substituted JSON does not
 * encode): NULL and *err (caller frees). */
uint8_t *lg_tmpl_render(const lg_tmpl *t, lg_rng *r, uint64_t seq, size_t *len, char **err);
/* The bytes of a static template (borrowed); NULL when not static. */
const uint8_t *lg_tmpl_static_bytes(const lg_tmpl *t, size_t *len);

#endif
