/* vercache.h - the cache versions (table cache_versions) kept in memory,
 * pushed by PostgreSQL with LISTEN/NOTIFY (migration 0007), so that a cache
 * hit needs no database round trip to learn which key is current.
 *
 * Threads. One vercache per process, shared by every worker: all calls are
 * thread-safe (one mutex around the map, atomics for trust and counters).
 * The listener (vercache_listen_start) is one thread with two PostgreSQL
 * connections of its own: the listening one (application_name
 * "heraldd-versions") and one that sends the heartbeats
 * ("heraldd-versions-beat").
 *
 * Trust. The map answers only while the listener is subscribed and has
 * proved it recently: every stale_ms / 2 it NOTIFYs a heartbeat on the
 * channel from its second connection and, once that heartbeat has reached
 * the listening connection, trusts the map until stale_ms after it was
 * sent. PostgreSQL delivers notifications to a listener in commit order,
 * so when the heartbeat arrives every version of a transaction that
 * committed before it has been merged:
 *
 *   a version acknowledged to its writer at time t is served by every
 *   replica's map from t + stale_ms at the latest (in practice from when
 *   the notification arrives, about a millisecond);
 *
 * and a silent partition or a stuck listener costs at most stale_ms of
 * staleness before every lookup falls back to PostgreSQL. A lost
 * connection clears the map at once; after the next LISTEN it starts empty.
 * The heartbeat does not come from the listening connection itself: a
 * session's own NOTIFY always comes back to it, even behind a pooler that
 * drops what other sessions notify. Behind a transaction pooler the
 * heartbeat goes to whichever client holds the listening server
 * connection, not here (test_pgbouncer_versions): the map then never
 * becomes trusted (counted in unechoed) and every lookup reads PostgreSQL.
 * When a heartbeat arrives after trust had lapsed, the map is cleared
 * first: what was missed in between is unknown.
 *
 * Consistency of what goes in. Versions only grow, so entries merge by
 * maximum (version, then vtime). A worker that read a version from
 * PostgreSQL inserts it with the token taken before its read: the insert is
 * refused when the map was cleared since, when the scope was invalidated
 * since (vercache_forget, or a notification about a forgotten scope), or,
 * for a scope not in the map, when anything was evicted since; so a
 * version read before a newer one was announced can never replace or hide
 * the newer one. A writer calls vercache_forget after its commit and before
 * replying (read-your-writes in this process, whatever the notification's
 * delay): the scope stays a miss until a read that started after the
 * forget puts the version back.
 *
 * Memory: at most cap entries (scopes and forgotten scopes); when full, an
 * arbitrary entry is evicted (the clock hand of a bucket scan); an evicted
 * scope is simply read from PostgreSQL again. */
#ifndef HERALD_VERCACHE_H
#define HERALD_VERCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

#define VERCACHE_CHANNEL "herald_cache_versions"

typedef struct vercache vercache;

/* The process's map, which main sets once the listener runs (NULL: none;
 * every version is read from PostgreSQL) and clears after the server and
 * the admin listener stopped. For the handlers and /metrics. Any thread. */
void vercache_process_set(vercache *vc);
vercache *vercache_process(void);

/* A map of at most cap (>= 1) entries that trusts nothing until the
 * listener (or vercache_trust_until in tests) says so. Never NULL. */
vercache *vercache_new(size_t cap);
/* Stops the listener if it runs, then frees. NULL ok. */
void vercache_free(vercache *vc);

/* True with the scope's version and its update instant (both 0 for a
 * scope that exists but was never bumped) when the map is trusted now and
 * holds the scope. vc may be NULL (false). */
bool vercache_get(vercache *vc, const char *scope, int64_t *version, int64_t *vtime_us);

/* Take before reading a version from PostgreSQL; pass to vercache_merge.
 * 0 when the map is not trusted now (the merge will be refused). */
uint64_t vercache_token(vercache *vc);

/* A version read from PostgreSQL by a read that started at token. Merged
 * by maximum, or refused as the header says. vc may be NULL. */
void vercache_merge(vercache *vc, const char *scope, int64_t version, int64_t vtime_us,
                    uint64_t token);

/* The scope changed (after the writer's commit, before its reply) or is
 * gone: a miss until a read that started afterwards merges it again. */
void vercache_forget(vercache *vc, const char *scope);

/* Every scope changed (RecomputeOutcomes for all profiles): empties the
 * map; reads in flight may not merge what they read. Trust is kept. */
void vercache_forget_all(vercache *vc);

/* ---- the listener's side (public for tests) ---- */

/* A committed version as announced (authoritative): merged by maximum,
 * inserted when absent; a forgotten scope stays forgotten (and reads in
 * flight for it are refused). */
void vercache_notified(vercache *vc, const char *scope, int64_t version, int64_t vtime_us);
/* Applies one payload of channel VERCACHE_CHANNEL (migration 0007):
 * "<version> <vtime_us> <scope>" or "gone <scope>". false if malformed
 * (ignored). */
bool vercache_apply_payload(vercache *vc, const char *payload);
/* Trusts the map until the monotonic instant until_us (now_mono_us). */
void vercache_trust_until(vercache *vc, int64_t until_us);
/* Distrusts and empties the map (the subscription is lost). */
void vercache_reset(vercache *vc);

/* Starts the listener thread: connects with dbo (copied; application_name
 * becomes "heraldd-versions"), LISTENs, runs the heartbeat every
 * stale_ms / 2 (stale_ms >= 200) and keeps the map trusted as described
 * above; reconnects with backoff after any failure. false with *err
 * (caller frees) when the thread cannot start. Once per vercache. */
bool vercache_listen_start(vercache *vc, const db_options *dbo, int64_t stale_ms, char **err);
/* Stops and joins the listener (within about 100 ms plus one statement).
 * NULL ok; a no-op when it was not started. */
void vercache_listen_stop(vercache *vc);

typedef struct vercache_stats {
    uint64_t hits;      /* vercache_get answered */
    uint64_t misses;    /* vercache_get did not (untrusted, absent, forgotten) */
    uint64_t merged;    /* reads merged */
    uint64_t refused;   /* reads refused (raced with a change) */
    uint64_t notified;  /* notifications applied */
    uint64_t resets;    /* subscriptions lost (map cleared) */
    uint64_t unechoed;  /* heartbeats whose echo did not come back in time */
    uint64_t evictions; /* entries evicted at the cap */
    uint64_t entries;   /* now */
    bool trusted;       /* now */
} vercache_stats;

void vercache_stats_get(vercache *vc, vercache_stats *out); /* vc NULL: zeros */

#endif
