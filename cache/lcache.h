/* lcache.h - the in-process tier of the cache: a small LRU of values by key,
 * bounded in bytes, each value with an expiry instant. heraldd keeps in it
 * copies of Redis entries under versioned keys (cache.h): a key changes with
 * every version, so nothing is invalidated; an entry ends when it expires
 * (never later than its Redis copy), or is evicted, least recently used
 * first, when the bytes would exceed the bound. No I/O; never logs.
 *
 * Threads: every call is thread-safe (one mutex, held for a hash lookup and
 * a copy); one lcache per process, shared by the workers. */
#ifndef HERALD_LCACHE_H
#define HERALD_LCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lcache lcache;

/* What an entry costs besides its key and value bytes (the accounting
 * unit of max_bytes). */
enum { LCACHE_ENTRY_OVERHEAD = 64 };

/* An empty cache holding at most max_bytes (keys + values + overhead);
 * NULL when max_bytes is 0 (disabled: every call below accepts NULL). */
lcache *lcache_new(size_t max_bytes);
void lcache_free(lcache *lc); /* NULL ok */

/* A hit: key present and now_us (monotonic) before its expiry. Then *val
 * is a new buffer of *len bytes the caller frees, and the entry becomes
 * the most recently used. An expired entry is dropped and misses. */
bool lcache_get(lcache *lc, const char *key, int64_t now_us, uint8_t **val, size_t *len);

/* Stores a copy of val[0..len) under key (replacing one there) until
 * expires_us (monotonic), evicting the least recently used entries to stay
 * within the bound. A value larger than an eighth of the bound is not
 * stored: one large reply must not flush everything else. */
void lcache_put(lcache *lc, const char *key, const void *val, size_t len, int64_t expires_us);

/* Drops everything (the memory manager's soft limit). */
void lcache_clear(lcache *lc);

typedef struct lcache_stats {
    uint64_t hits;
    uint64_t misses;
    uint64_t evictions; /* for room, not expiry */
    uint64_t entries;   /* now */
    uint64_t bytes;     /* now, as accounted */
    uint64_t max_bytes;
} lcache_stats;

void lcache_stats_get(lcache *lc, lcache_stats *out); /* NULL: zeros */

#endif
