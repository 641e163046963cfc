/* worker.c - per-thread worker state (see worker.h). */
#include "worker.h"

#include <stdlib.h>

#include "util.h"

worker *worker_new(int index, const struct config *cfg)
{
    worker *w = xcalloc(1, sizeof *w);
    w->index = index;
    w->cfg = cfg;
    return w;
}

void worker_free(worker *w)
{
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
