/* worker.h - what one rpc worker thread owns.
 *
 * heraldd gives rpc_server_new worker_rpc_init / worker_rpc_fini as its
 * thread hooks: the runtime calls init on each worker thread before that
 * thread serves its first call, and fini after its last, on the same thread.
 * Handlers reach their thread's worker with rpc_call_worker(call) (NULL on
 * the priority thread that serves health and reflection).
 *
 * A worker belongs to exactly one thread and nothing in it is locked: every
 * connection it will hold (PostgreSQL, Redis, curl; added by the store and
 * cache modules) is used by that thread only. cfg is borrowed: the immutable
 * start-up config, which outlives every worker. */
#ifndef HERALD_WORKER_H
#define HERALD_WORKER_H

struct config;

typedef struct worker {
    int index;                /* 0..workers-1, as the runtime numbers its threads */
    const struct config *cfg; /* borrowed, immutable */
} worker;

/* A new worker (caller frees with worker_free). Never NULL. */
worker *worker_new(int index, const struct config *cfg);
void worker_free(worker *w); /* NULL is a no-op */

/* rpc_worker_init_fn / rpc_worker_fini_fn adapters: user is the
 * const struct config *. */
void *worker_rpc_init(int worker_index, void *user);
void worker_rpc_fini(void *worker_data, void *user);

#endif
