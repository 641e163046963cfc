/* worker.h - what one rpc worker thread owns, and what all of them share.
 *
 * heraldd gives rpc_server_new worker_rpc_init / worker_rpc_fini as its
 * thread hooks (user = the worker_shared): the runtime calls init on each
 * worker thread before that thread serves its first call, and fini after its
 * last, on the same thread. Handlers reach their thread's worker with
 * rpc_call_worker(call), or better through handler.h (handler_db,
 * handler_cache), which also enforce the schema gate below. On the priority
 * thread (health, reflection) there is no worker: rpc_call_worker is NULL.
 *
 * A worker belongs to exactly one thread and nothing in it is locked: its
 * PostgreSQL connection and its Redis connection are used by that thread
 * only (DESIGN.md §1). Both connect lazily, so creating a worker never
 * blocks and never fails.
 *
 * worker_shared is created by main before the server starts and outlives
 * every worker: cfg, cache, dbo and the service pointers (mem, http, llm,
 * ops) are immutable after start; `schema` is an atomic that main and the
 * readiness pinger move forward (see worker_schema). */
#ifndef HERALD_WORKER_H
#define HERALD_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "cache.h"
#include "db.h"

struct config;
struct http_client; /* http.h */
struct llm_client;  /* llm.h */
struct memwatch;    /* memwatch.h */
struct ops_view;    /* ops_status.h */

/* Whether handlers may use the database (the schema gate). Handlers that
 * touch the store fail with UNAVAILABLE until it is WORKER_SCHEMA_OK. */
typedef enum {
    WORKER_SCHEMA_PENDING = 0, /* not applied/verified yet (or PostgreSQL away at start) */
    WORKER_SCHEMA_OK,          /* at the version this binary expects, checksums unchanged */
    WORKER_SCHEMA_REFUSED,     /* tampered, dirty or newer database: refuse to serve */
    WORKER_SCHEMA_NO_DB,       /* database_url is empty: no store at all */
} worker_schema;

typedef struct worker_shared {
    const struct config *cfg; /* borrowed, immutable */
    cache *cache;             /* process-wide cache (breaker, counters); never NULL */
    db_options dbo;           /* per-worker connection settings; conninfo borrowed from cfg */
    bool have_db;             /* database_url is set */
    atomic_int schema;        /* worker_schema */
    /* Process-wide services main starts before the server and frees after
     * it (each thread-safe where handlers use it; see its header). NULL in
     * programs that do not start them (tools, tests, fuzzers). */
    struct memwatch *mem;       /* the memory manager: the interceptor's admission */
    struct http_client *http;   /* the curl-multi client (LLM, publisher) */
    struct llm_client *llm;     /* the LLM provider (llm_configured() may be false) */
    const struct ops_view *ops; /* in-process figures of GetStatus / GetSloReport */
    /* The settings in force (GetConfig): cfg until a SIGHUP reload, then the
     * reloaded copy. Read only while holding live_mu: the signal thread
     * swaps it, and frees the one it replaced, under it. NULL means cfg. */
    pthread_mutex_t live_mu;
    const struct config *live;
} worker_shared;

typedef struct worker {
    int index;                /* 0..workers-1, as the runtime numbers its threads */
    const struct config *cfg; /* borrowed, immutable */
    worker_shared *shared;    /* borrowed; outlives the worker */
    db_conn *db;              /* this thread's PostgreSQL connection; NULL without a database */
    cache_conn *cache;        /* this thread's Redis connection; bypasses when unconfigured */
} worker;

/* A new worker with its (lazy) connections; the caller frees it with
 * worker_free on the same thread. Never NULL. */
worker *worker_new(int index, worker_shared *shared);
void worker_free(worker *w); /* NULL is a no-op; closes the connections */

/* rpc_worker_init_fn / rpc_worker_fini_fn adapters: user is the
 * worker_shared *. */
void *worker_rpc_init(int worker_index, void *user);
void worker_rpc_fini(void *worker_data, void *user);

/* The current schema state (any thread). Inline so that code linking only
 * the handler library (tests, fakes) needs no worker.c. */
static inline worker_schema worker_schema_get(const worker_shared *s)
{
    return (worker_schema)atomic_load(&s->schema);
}

#endif
