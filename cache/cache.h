/* cache.h - the Redis cache: the only user of hiredis (0.14). Never logs.
 *
 * Redis holds only copies that can be rebuilt from PostgreSQL. Any Redis
 * failure (down, paused, slow, garbage) is a cache miss for the caller, never
 * an error: callers treat every result other than CACHE_OK as a miss, and the
 * other codes exist for counters and tests.
 *
 * Threads. One `cache` per process (created by main, shared by all workers;
 * its breaker and counters are atomics) and one cache_conn per worker thread
 * (not thread-safe; only its owner may use it). Connections are made lazily
 * and dropped after any I/O error; connect and command timeouts are
 * timeout_ms (about 50 ms), never the call's deadline.
 *
 * Circuit breaker (process-wide): after `breaker_failures` consecutive
 * failures (timeouts, refused connections, protocol errors), every call is
 * bypassed (CACHE_BYPASS, no I/O) for `breaker_open_ms`; then exactly one
 * call probes Redis: success closes the breaker, failure reopens it. A
 * SIGSTOPped Redis still accepts TCP connections, so only the breaker stops
 * every call from paying the timeout.
 *
 * Versioned keys and freshness. Cached values are never invalidated in
 * place. A key embeds the version of what it caches (cache_key(c, "profile",
 * id, revision)); the version lives in PostgreSQL (a revision column, or
 * db_version_bump/db_version_get on table cache_versions) and is bumped in the
 * writer's own transaction. Readers read the version from PostgreSQL (a
 * cheap primary-key lookup), then GET the key; on a miss they load the value
 * and its version in one snapshot and SET it under that version's key. After
 * an acknowledged write every reader asks for the new key, so a stale value
 * can never be served, even if Redis was paused or unreachable when the write
 * happened (old keys simply age out by TTL). A version counter kept only in
 * Redis could not promise this: a bump lost while Redis was paused would
 * leave the old key reachable when it came back.
 *
 * Values are stored in a small envelope (magic + length + FNV-1a checksum) so
 * that foreign or corrupted bytes under our key read as a miss. */
#ifndef HERALD_CACHE_H
#define HERALD_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cache cache;           /* process-wide: settings, breaker, counters */
typedef struct cache_conn cache_conn; /* one per worker thread */

typedef enum {
    CACHE_OK = 0, /* hit (get) or stored (set/del) */
    CACHE_MISS,   /* key absent, expired or not ours (garbage): a normal outcome */
    CACHE_ERROR,  /* Redis failed (timeout, connection, error reply): a miss */
    CACHE_BYPASS, /* breaker open or cache not configured: a miss, no I/O */
    CACHE_EINVAL, /* caller bug (empty key, ttl <= 0) */
} cache_rc;

typedef struct cache_options {
    const char *url;      /* REDIS_URL; NULL or "" = not configured (every call bypasses) */
    int timeout_ms;       /* connect and command timeout, default 50 */
    int breaker_failures; /* K consecutive failures that open the breaker, default 3 */
    int breaker_open_ms;  /* T, how long it stays open before one probe, default 5000 */
    const char *prefix;   /* prepended to every key, default "herald:" */
    size_t local_bytes;   /* bound of the in-process tier (lcache.h); 0 = none, the default */
} cache_options;

void cache_options_init(cache_options *o);

/* A parsed REDIS_URL. Accepted forms:
 *   redis://[[user]:password@]host[:port][/db]   (port 6379, db 0 by default)
 *   unix://[[user]:password@]/path/to/redis.sock[?db=N]
 *   redis+unix:///path?db=N (alias), a bare /path (unix socket)
 * No TLS (rediss://) with hiredis 0.14. */
typedef struct cache_url {
    char host[256]; /* "" for a unix socket */
    int port;
    char path[256];     /* the socket path, "" for TCP */
    int db;             /* SELECT index, 0..15 typically */
    char password[256]; /* "" for none; secret */
} cache_url;

/* false with a message in err[0..cap) (never containing the password). */
bool cache_url_parse(const char *url, cache_url *out, char *err, size_t cap);

/* The shared cache. NULL with a message (caller frees) when the URL does not
 * parse. Never touches the network. Free after every cache_conn is closed. */
cache *cache_new(const cache_options *o, char **err);
void cache_free(cache *c); /* NULL ok */
bool cache_configured(const cache *c);

/* The in-process tier (lcache.h; thread-safe), or NULL when
 * options.local_bytes was 0 or Redis is not configured: without Redis
 * heraldd runs uncached. */
struct lcache *cache_local(const cache *c);

/* A worker's connection (lazy). Close with cache_close. Never fails. */
cache_conn *cache_open(cache *c);
void cache_close(cache_conn *cc); /* NULL ok */

/* On CACHE_OK *val is a new buffer of *len bytes (NUL-terminated for
 * convenience, not counted) the caller frees; otherwise *val is NULL. */
cache_rc cache_get(cache_conn *cc, const char *key, uint8_t **val, size_t *len);
/* cache_get and PTTL in one round trip: on CACHE_OK *ttl_ms (when not
 * NULL) gets the entry's remaining time to live (0 when it has none or it
 * could not be read): how long an in-process copy may live. */
cache_rc cache_get_ttl(cache_conn *cc, const char *key, uint8_t **val, size_t *len,
                       int64_t *ttl_ms);
/* Stores val under key for ttl_s seconds (> 0). */
cache_rc cache_set(cache_conn *cc, const char *key, const void *val, size_t len, int ttl_s);
/* Deletes key (absent is CACHE_OK). Only an optimisation: correctness comes
 * from versioned keys. */
cache_rc cache_del(cache_conn *cc, const char *key);

/* "<prefix><ns>:<id>:v<version>" in a new string the caller frees. ns and
 * id are used as given (keys are binary-safe). */
char *cache_key(const cache *c, const char *ns, const char *id, int64_t version);

/* The last failure on this connection ("" if none). Borrowed. */
const char *cache_errmsg(const cache_conn *cc);

typedef enum {
    CACHE_BREAKER_CLOSED = 0,
    CACHE_BREAKER_OPEN,
    CACHE_BREAKER_HALF_OPEN, /* open time over: the next call probes */
} cache_breaker_state;

typedef struct cache_stats {
    uint64_t hits;
    uint64_t misses;   /* absent or garbage */
    uint64_t errors;   /* Redis failures (each also a miss for the caller) */
    uint64_t bypasses; /* calls skipped by the breaker or when unconfigured */
    uint64_t sets;
    uint64_t breaker_opens;
    cache_breaker_state breaker;
} cache_stats;

/* A snapshot of the process-wide counters. Any thread. */
void cache_stats_get(const cache *c, cache_stats *out);

#endif
