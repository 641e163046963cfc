/* descset.h - an index over a serialized FileDescriptorSet.
 *
 * The build embeds api.pb (our protos, health, both reflection protos, their
 * imports, with source comments) as herald_api_descset. This module parses it
 * once with protoc-c's own descriptor.pb-c and answers: which files exist and
 * their exact serialized bytes (reflection sends them untouched), which file
 * defines a fully-qualified symbol, each file's direct dependencies, the
 * services and the streaming kind of each method, and the leading comment of
 * a symbol (for `herald describe`).
 *
 * A descset is immutable after descset_new: any thread may read it. */
#ifndef HERALD_DESCSET_H
#define HERALD_DESCSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "google/protobuf/descriptor.pb-c.h"

typedef struct descset descset;

typedef struct descset_file {
    const char *name;     /* "herald/v1/content.proto" */
    const uint8_t *bytes; /* the serialized FileDescriptorProto, as built */
    size_t len;
    const char *const *deps; /* direct dependency names */
    size_t n_deps;
    const Google__Protobuf__FileDescriptorProto *proto; /* parsed */
} descset_file;

typedef enum {
    DESCSET_PACKAGE = 0,
    DESCSET_MESSAGE,
    DESCSET_ENUM,
    DESCSET_ENUM_VALUE,
    DESCSET_SERVICE,
    DESCSET_METHOD,
    DESCSET_FIELD,
    DESCSET_ONEOF, /* a oneof's name, a symbol in protobuf's pool as well */
} descset_kind;

typedef struct descset_symbol {
    const char *name; /* fully qualified, no leading dot: "herald.v1.Post.state" */
    descset_kind kind;
    const descset_file *file;
    const void *proto; /* the *DescriptorProto of that kind (NULL for packages) */
} descset_symbol;

/* Parses data[0..len) (copied). On failure NULL and *err (caller frees).
 * Fails on malformed bytes, a file without a name or listed twice, an import
 * the set does not hold, or messages nested deeper than 100: every file's
 * dependencies are in the set once descset_new succeeds. Safe on hostile
 * bytes. */
descset *descset_new(const uint8_t *data, size_t len, char **err);
void descset_free(descset *ds); /* NULL is a no-op */

/* The embedded API set, parsed on first use (thread-safe); aborts if the
 * embedded bytes do not parse, which is a build bug. Never freed before
 * exit except by descset_api_release (for leak checkers). */
const descset *descset_api(void);
void descset_api_release(void);

size_t descset_file_count(const descset *ds);
const descset_file *descset_file_at(const descset *ds, size_t i);
const descset_file *descset_file_by_name(const descset *ds, const char *name);
/* Position of f in file order (0 .. count-1), SIZE_MAX when f is not one of
 * ds's files: a stable small key for per-stream "already sent" sets. */
size_t descset_file_index(const descset *ds, const descset_file *f);

/* Exact lookup of a fully-qualified symbol (a leading '.' is ignored).
 * Symbols: every package and parent package ("herald", "herald.v1"),
 * message (nested too), enum, enum value, service, method, field,
 * extension (kind DESCSET_FIELD) and oneof. Enum values follow protobuf scoping: the
 * value is a sibling of its enum ("herald.v1.POST_STATE_DRAFT"); the
 * enum-qualified spelling some tools use ("herald.v1.PostState.
 * POST_STATE_DRAFT") also finds it, returning the canonical symbol. When a
 * hostile set defines a name twice, the first definition wins. */
const descset_symbol *descset_symbol_find(const descset *ds, const char *name);
size_t descset_symbol_count(const descset *ds);
/* Canonical names only (no enum-qualified aliases). */
const descset_symbol *descset_symbol_at(const descset *ds, size_t i); /* sorted by name */

/* Services in file order; full names ("grpc.health.v1.Health"). */
size_t descset_service_count(const descset *ds);
const descset_symbol *descset_service_at(const descset *ds, size_t i);

/* Streaming flags of pkg.Svc/Method. False when no such method. */
bool descset_method_streaming(const descset *ds, const char *service, const char *method,
                              bool *client_streaming, bool *server_streaming);

/* Leading comment of a symbol from source info (else its trailing comment), trimmed (the space
 * after each "//" and surrounding blank lines removed); NULL if none. Borrowed from ds. */
const char *descset_comment(const descset *ds, const char *symbol);

/* Calls fn for f and each transitive dependency exactly once, deps before
 * dependents (so f comes last). Stops early when fn returns false. Import
 * cycles in a hostile set terminate. */
void descset_walk_deps(const descset *ds, const descset_file *f,
                       bool (*fn)(const descset_file *f, void *user), void *user);

extern const unsigned char herald_api_descset[];
extern const size_t herald_api_descset_len;

#endif
