/* worker.c - per-thread worker state (see worker.h). */
#include "worker.h"

#include <stdlib.h>

#include "util.h"

worker *worker_new(int index, worker_shared *shared)
{
    worker *w = xcalloc(1, sizeof *w);
    w->index = index;
    w->shared = shared;
    w->cfg = shared->cfg;
    if (shared->have_db)
        w->db = db_open(&shared->dbo);
    w->cache = cache_open(shared->cache);
    return w;
}

void worker_free(worker *w)
{
    if (w == NULL)
        return;
    cache_close(w->cache);
    db_close(w->db);
    free(w);
}

void *worker_rpc_init(int worker_index, void *user)
{
    return worker_new(worker_index, user);
}

void worker_rpc_fini(void *worker_data, void *user)
{
    (void)user;
    worker_free(worker_data);
}
