/* ops_status.h - heraldd's in-process figures for OpsService's GetStatus and
 * GetSloReport (issue 8 items 3-4).
 *
 * What the process knows without asking PostgreSQL: uptime and build, the
 * memory manager, the worker pool, the database pinger's last ping and the
 * statement statistics, the cache's counters and breaker, the LLM and the
 * publisher (http_client_stats per upstream). The handlers (svc_ops.c) add
 * what only the database knows (queue depth, stuck leases, per-profile
 * figures, posting success, growth).
 *
 * Windows. GetSloReport's process-local figures (the server error rate, the
 * generation p95, the database p95) are cumulative counters since start; a
 * sampler thread copies them into a ring every slot_ms (default 5 min, 2,016
 * slots = 7 days), so the figures of a window [start, end) are the counters
 * at end (the live ones when end is within one slot of now) minus those of
 * the latest sample taken at or before start (zero when start is before the
 * process started, or older than the ring). ops_window says which span the
 * figures really cover. Resolution is one slot.
 *
 * Handlers reach all this through an ops_view (function pointers on
 * worker_shared.ops) so that svc_ops.c links without this file (the API and
 * fuzz targets compile svc_*.c alone); the pure helpers below are inline for
 * the same reason.
 *
 * Threads. ops_status_new/start/free from main's thread. ops_status_note_ping
 * from the readiness pinger's thread. The snapshot and window functions (and
 * the view's) from any thread: they read atomics, the runtime's and store's
 * statistics (lock-free snapshots) and the ring under its mutex. No I/O. */
#ifndef HERALD_OPS_STATUS_H
#define HERALD_OPS_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "db.h"
#include "memwatch.h"
#include "rpc.h"
#include "status.h"

struct http_client;
struct llm_client;
struct worker_shared;

/* An outbound dependency (the LLM, the publisher). There is no circuit
 * breaker on outbound HTTP (http.h): a configured upstream's breaker reads
 * CLOSED (calls always flow), an unconfigured one's UNSPECIFIED. */
typedef struct ops_upstream {
    bool configured;
    int64_t in_flight; /* LLM: jobs started and not called back; publisher: transfers */
    int64_t requests;  /* transfers completed since start */
    int64_t errors;    /* of which did not end with a 2xx response */
} ops_upstream;

typedef struct ops_snapshot {
    const char *version; /* static strings */
    const char *commit;
    const char *build; /* "GNU 12.2.0 RelWithDebInfo" */
    int64_t start_ms;  /* epoch ms the process started */
    int64_t now_ms;    /* epoch ms of the snapshot */

    bool have_mem; /* false: no memory manager */
    memwatch_stats mem;

    int workers;
    int busy_workers;
    int64_t inflight_calls;

    bool db_configured;
    bool db_pinged;         /* a ping has run */
    bool db_up;             /* the last ping succeeded */
    double ping_ms;         /* round trip of the last successful ping */
    int64_t last_ping_ms;   /* epoch ms of the last ping (0: none) */
    int64_t schema_version; /* verified schema version; -1 when not verified */
    char db_error[256];     /* the last failed ping's reason, "" while up */
    db_stmt_stats db_total; /* every statement since start (tx plumbing and pings left out) */
    db_pool_stats pool;

    bool cache_configured;
    cache_stats cache;

    ops_upstream llm;
    ops_upstream publisher;
} ops_snapshot;

/* Process-local SLO figures over a window. */
typedef struct ops_window {
    int64_t start_ms; /* the span the figures cover (epoch ms) */
    int64_t end_ms;
    uint64_t calls;         /* herald.v1 calls that ended */
    uint64_t server_errors; /* of which with a server-caused code (ops_code_server_caused) */
    uint64_t gen[RPC_LATENCY_BUCKETS + 1]; /* GenerateDraft latency (every call) */
    uint64_t gen_count;
    const double *gen_bounds; /* rpc_latency_bounds (seconds), for ops_quantile */
    size_t n_gen_bounds;
    uint64_t db[DB_LATENCY_BUCKETS + 1]; /* statement latency, db_latency_bounds_s */
    uint64_t db_count;
} ops_window;

/* What handlers call (worker_shared.ops). impl is the ops_status. */
typedef struct ops_view {
    void (*snapshot)(const void *impl, ops_snapshot *out);
    void (*window)(const void *impl, int64_t start_ms, int64_t end_ms, ops_window *out);
    const void *impl;
} ops_view;

typedef struct ops_status ops_status;

typedef struct ops_status_options {
    rpc_server *rpc;                    /* the main server (workers, call counters) */
    memwatch *mem;                      /* NULL: no memory figures */
    const cache *cache;                 /* the shared cache (never NULL in heraldd) */
    struct http_client *http;           /* NULL: no upstream figures */
    struct llm_client *llm;             /* NULL: LLM not configured */
    bool publisher;                     /* the built-in publisher runs */
    const struct worker_shared *shared; /* database configured, schema state */
    int workers;
    const char *version; /* borrowed, static */
    const char *commit;
    int64_t slot_ms; /* window ring period (default 300000) */
    int slots;       /* ring length (default 2016) */
} ops_status_options;

void ops_status_options_init(ops_status_options *o);

/* Never fails; the sources are borrowed and must outlive it. Takes the
 * first ring sample (all zero: the process start). */
ops_status *ops_status_new(const ops_status_options *o);
/* Starts the ring's sampler thread. ST_INTERNAL (with *err, caller frees)
 * when it cannot. */
status ops_status_start(ops_status *s, char **err);
void ops_status_free(ops_status *s); /* stops the thread; NULL ok */

const ops_view *ops_status_view(const ops_status *s);

/* The readiness pinger's probe reports each ping: ok, its round trip and,
 * on failure, why (no secrets; copied). */
void ops_status_note_ping(ops_status *s, bool ok, double ms, const char *why);

void ops_status_snapshot(const ops_status *s, ops_snapshot *out);
void ops_status_window(const ops_status *s, int64_t start_ms, int64_t end_ms, ops_window *out);

/* ---- pure helpers (inline: any thread, no link dependency) ---- */

/* The codes GetSloReport's error rate counts as the server's fault:
 * UNKNOWN, INTERNAL, DATA_LOSS, UNAVAILABLE (a dependency down, or calls
 * cancelled by our own shutdown) and DEADLINE_EXCEEDED (our deadline-derived
 * statement_timeout, an upstream cut at the deadline, or a call still in
 * our hands when the client's deadline passed: the runtime's counters
 * cannot tell a client's too-short deadline from our slowness, so every
 * deadline the server did not meet counts). Client mistakes
 * (INVALID_ARGUMENT, NOT_FOUND, ...), CANCELLED, UNAUTHENTICATED,
 * PERMISSION_DENIED, RESOURCE_EXHAUSTED (deliberate load shedding) and
 * UNIMPLEMENTED do not. */
static inline bool ops_code_server_caused(int grpc_code)
{
    return grpc_code == GRPC_CODE_UNKNOWN || grpc_code == GRPC_CODE_INTERNAL ||
           grpc_code == GRPC_CODE_DATA_LOSS || grpc_code == GRPC_CODE_UNAVAILABLE ||
           grpc_code == GRPC_CODE_DEADLINE_EXCEEDED;
}

/* The q-quantile (0 < q < 1) of a histogram of n_bounds + 1 non-cumulative
 * buckets with upper bounds bounds[] (any unit; the result is in it),
 * interpolated linearly inside the bucket from its lower bound (0 for the
 * first); the +Inf bucket reports its lower bound. -1 when empty. */
static inline double ops_quantile(const uint64_t *bucket, const double *bounds, size_t n_bounds,
                                  double q)
{
    uint64_t total = 0;
    for (size_t i = 0; i <= n_bounds; i++)
        total += bucket[i];
    if (total == 0)
        return -1;
    double rank = q * (double)total, seen = 0;
    for (size_t i = 0; i <= n_bounds; i++) {
        double lo = i == 0 ? 0 : bounds[i - 1];
        if (bucket[i] == 0 || seen + (double)bucket[i] < rank) {
            seen += (double)bucket[i];
            continue;
        }
        if (i == n_bounds)
            return lo;
        return lo + (bounds[i] - lo) * ((rank - seen) / (double)bucket[i]);
    }
    return n_bounds > 0 ? bounds[n_bounds - 1] : -1;
}

#endif
