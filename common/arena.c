/* arena.c - bounded bump allocator (see arena.h). */
#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Each chunk holds a header then its bytes. The first chunk is small so an
 * ordinary call costs one malloc; later chunks double. */
typedef struct chunk {
    struct chunk *next;
    size_t cap;
    size_t used;
    _Alignas(16) unsigned char data[];
} chunk;

struct arena {
    chunk *head;
    size_t budget;
    size_t total; /* bytes handed out */
    bool exhausted;
    ProtobufCAllocator pb;
};

enum { ARENA_FIRST_CHUNK = 2048, ARENA_ALIGN = 16 };

static void *pb_alloc(void *data, size_t size)
{
    return arena_alloc(data, size);
}

static void pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr; /* released with the arena */
}

arena *arena_new(size_t budget)
{
    arena *a = xcalloc(1, sizeof *a);
    a->budget = budget;
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
    return a;
}

void arena_reset(arena *a)
{
    /* Keep the newest (largest) chunk for reuse; free the rest. */
    chunk *c = a->head;
    if (c) {
        chunk *rest = c->next;
        c->next = NULL;
        c->used = 0;
        while (rest) {
            chunk *n = rest->next;
            free(rest);
            rest = n;
        }
    }
    a->total = 0;
    a->exhausted = false;
}

void arena_free(arena *a)
{
    if (!a)
        return;
    chunk *c = a->head;
    while (c) {
        chunk *n = c->next;
        free(c);
        c = n;
    }
    free(a);
}

void *arena_alloc(arena *a, size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need == 0)
        need = ARENA_ALIGN;
    if (need < n || (a->budget && (a->total + need > a->budget || a->total + need < a->total))) {
        a->exhausted = true;
        return NULL;
    }
    chunk *c = a->head;
    if (!c || c->cap - c->used < need) {
        size_t cap = c ? c->cap * 2 : ARENA_FIRST_CHUNK;
        while (cap < need)
            cap *= 2;
        chunk *nc = xmalloc(sizeof *nc + cap);
        nc->cap = cap;
        nc->used = 0;
        nc->next = c;
        a->head = nc;
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->total += need;
    return p;
}

void *arena_calloc(arena *a, size_t n)
{
    void *p = arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *arena_strndup(arena *a, const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = arena_alloc(a, len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

char *arena_strdup(arena *a, const char *s)
{
    return arena_strndup(a, s, SIZE_MAX);
}

char *arena_printf(arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *p = n >= 0 ? arena_alloc(a, (size_t)n + 1) : NULL;
    if (p)
        vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

bool arena_exhausted(const arena *a)
{
    return a->exhausted;
}

size_t arena_used(const arena *a)
{
    return a->total;
}

ProtobufCAllocator *arena_allocator(arena *a)
{
    return &a->pb;
}
