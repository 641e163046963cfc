/* arena.h - a bounded bump allocator, one per call.
 * Requests are decoded into an arena so that a hostile message cannot make
 * the process allocate more than the byte budget (protobuf-c amplification:
 * 1 MiB of empty repeated strings decodes into ~40 MB of pointers and
 * structs). Handlers may also allocate reply data from the call's arena; all
 * of it is released at once when the call ends. Not thread-safe: an arena
 * belongs to one call, used by one thread at a time. */
#ifndef HERALD_ARENA_H
#define HERALD_ARENA_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

typedef struct arena arena;

/* A new arena that refuses to hand out more than budget bytes in total
 * (0 = unbounded). Free with arena_free. */
arena *arena_new(size_t budget);
void arena_free(arena *a); /* NULL is a no-op */
/* Releases everything allocated so far; the arena can be reused. */
void arena_reset(arena *a);

/* 16-byte aligned memory, or NULL when the budget would be exceeded (and
 * arena_exhausted() turns true). Never fails otherwise. */
void *arena_alloc(arena *a, size_t n);
void *arena_calloc(arena *a, size_t n);
/* A copy of s (NUL-terminated); NULL only on exhaustion. */
char *arena_strdup(arena *a, const char *s);
char *arena_strndup(arena *a, const char *s, size_t n);
char *arena_printf(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

bool arena_exhausted(const arena *a);
size_t arena_used(const arena *a); /* bytes handed out so far */

/* A protobuf-c allocator drawing from a (free is a no-op). The struct is
 * owned by the arena and valid until arena_free. */
ProtobufCAllocator *arena_allocator(arena *a);

#endif
