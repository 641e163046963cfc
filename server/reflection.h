/* reflection.h - grpc.reflection v1 and v1alpha (ServerReflectionInfo).
 *
 * Both versions share one wire format and one handler. Answers come from a
 * descset (the embedded descriptor set): list_services lists every service in
 * it; file_by_filename and file_containing_symbol send the file plus its
 * transitive dependencies not yet sent on this stream; errors are an
 * error_response in a stream that stays open. Immutable after creation: any
 * thread. */
#ifndef HERALD_REFLECTION_H
#define HERALD_REFLECTION_H

#include <stddef.h>
#include <stdint.h>

#include "descset.h"
#include "rpc.h"
#include "status.h"

typedef struct reflection reflection;

/* ds is borrowed and must outlive r. */
reflection *reflection_new(const descset *ds);
void reflection_free(reflection *r); /* NULL is a no-op */

/* Registers /grpc.reflection.v1.ServerReflection/ServerReflectionInfo and the
 * v1alpha path on the priority pool. */
status reflection_register(reflection *r, rpc_server *s, char **err);

/* The pure core, for tests and fuzzing: decodes one serialized
 * ServerReflectionRequest and sets *out (malloc'd, caller frees) to the
 * serialized ServerReflectionResponse. sent (may be NULL) is the per-stream
 * set of file names already sent; pass the same one for every request of a
 * stream and free it with reflection_sent_free. ST_INVALID when req does not
 * decode. */
typedef struct reflection_sent reflection_sent;
reflection_sent *reflection_sent_new(void);
void reflection_sent_free(reflection_sent *s);
status reflection_answer(const reflection *r, reflection_sent *sent, const uint8_t *req,
                         size_t len, uint8_t **out, size_t *out_len);

#endif
