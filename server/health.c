/* health.c - grpc.health.v1.Health over a status table (see health.h).
 *
 * One mutex guards the table, the watcher list and the shutdown flags. Sends
 * to watchers happen under it, so each watcher sees changes in the order
 * they were made; rpc_call_send only queues, it never calls back into here.
 * A watcher leaves the list in its on_done (the runtime's last word on the
 * call), never earlier, so its call pointer stays valid while listed. */
#include "health.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "rpc.h"
#include "util.h"

typedef struct health_entry {
    struct health_entry *next;
    char *name;
    health_state state;
} health_entry;

typedef struct health_watcher {
    struct health_watcher *next;
    struct health_watcher **prev_next; /* for unlinking in O(1) */
    health *h;
    rpc_call *call;
    char *name;
    health_state last_sent;
    bool finished; /* rpc_call_finish called */
} health_watcher;

struct health {
    Grpc__Health__V1__Health_Service svc; /* first: handlers cast back */
    /* mu protects everything below. */
    pthread_mutex_t mu;
    health_entry *entries;
    health_watcher *watchers;
    bool shutdown;      /* health_begin_shutdown: states frozen NOT_SERVING */
    bool watchers_done; /* health_finish_watchers: new Watch calls end at once */
};

static health_entry *entry_find(health *h, const char *name)
{
    for (health_entry *e = h->entries; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

static Grpc__Health__V1__HealthCheckResponse__ServingStatus wire_state(health_state st)
{
    switch (st) {
    case HEALTH_UNKNOWN:
        return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__UNKNOWN;
    case HEALTH_SERVING:
        return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    case HEALTH_NOT_SERVING:
        return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    case HEALTH_SERVICE_UNKNOWN:
        return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
    }
    return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__UNKNOWN;
}

/* Sends st to w unless it is what w saw last. Holds h->mu. */
static void watcher_push(health_watcher *w, health_state st)
{
    if (w->finished || w->last_sent == st)
        return;
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = wire_state(st);
    w->last_sent = st;
    (void)rpc_call_send(w->call, &resp.base); /* false: the call is over; on_done follows */
}

static void push_name(health *h, const char *name, health_state st)
{
    for (health_watcher *w = h->watchers; w; w = w->next)
        if (strcmp(w->name, name) == 0)
            watcher_push(w, st);
}

static void health_check(Grpc__Health__V1__Health_Service *svc,
                         const Grpc__Health__V1__HealthCheckRequest *req,
                         Grpc__Health__V1__HealthCheckResponse_Closure done, void *closure_data)
{
    health *h = (health *)svc;
    rpc_call *call = closure_data;
    const char *name = req->service ? req->service : "";

    pthread_mutex_lock(&h->mu);
    health_entry *e = entry_find(h, name);
    health_state st = e ? e->state : HEALTH_SERVICE_UNKNOWN;
    pthread_mutex_unlock(&h->mu);

    if (!e) {
        rpc_call_fail(call, ST_NOT_FOUND, "unknown service");
        return;
    }
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = wire_state(st);
    done(&resp, closure_data);
}

/* The runtime's last word on a Watch call (priority thread). */
static void watch_done(rpc_call *call, bool cancelled, void *user)
{
    health_watcher *w = user;
    health *h = w->h;
    (void)cancelled;

    pthread_mutex_lock(&h->mu);
    *w->prev_next = w->next;
    if (w->next)
        w->next->prev_next = w->prev_next;
    bool finish = !w->finished;
    w->finished = true;
    pthread_mutex_unlock(&h->mu);

    if (finish) /* the client went away: release the call */
        rpc_call_finish(call, ST_CANCELLED, "watch ended");
    free(w->name);
    free(w);
}

static void health_watch(Grpc__Health__V1__Health_Service *svc,
                         const Grpc__Health__V1__HealthCheckRequest *req,
                         Grpc__Health__V1__HealthCheckResponse_Closure done, void *closure_data)
{
    health *h = (health *)svc;
    rpc_call *call = closure_data;
    (void)done;

    health_watcher *w = xcalloc(1, sizeof *w);
    w->h = h;
    w->call = call;
    w->name = xstrdup(req->service ? req->service : "");
    w->last_sent = (health_state)-1;

    pthread_mutex_lock(&h->mu);
    /* Detach and list under the lock: a concurrent health_set either runs
     * before (and we send its result below) or sees the watcher. */
    rpc_call_detach(call, watch_done, w);
    w->next = h->watchers;
    w->prev_next = &h->watchers;
    if (h->watchers)
        h->watchers->prev_next = &w->next;
    h->watchers = w;
    bool late = h->watchers_done;
    if (late) {
        w->finished = true;
    } else {
        health_entry *e = entry_find(h, w->name);
        watcher_push(w, e ? e->state : HEALTH_SERVICE_UNKNOWN);
    }
    pthread_mutex_unlock(&h->mu);
    /* Outside the lock: finishing may run watch_done at once. */
    if (late)
        rpc_call_finish(call, ST_UNAVAILABLE, "server shutting down");
}

health *health_new(void)
{
    health *h = xcalloc(1, sizeof *h);
    grpc__health__v1__health__init(&h->svc, NULL);
    h->svc.check = health_check;
    h->svc.watch = health_watch;
    pthread_mutex_init(&h->mu, NULL);
    return h;
}

void health_free(health *h)
{
    if (!h)
        return;
    while (h->entries) {
        health_entry *e = h->entries;
        h->entries = e->next;
        free(e->name);
        free(e);
    }
    /* Watchers left here belong to calls the runtime has already torn down
     * (health.h: finish watchers and shut the server down first). */
    while (h->watchers) {
        health_watcher *w = h->watchers;
        h->watchers = w->next;
        free(w->name);
        free(w);
    }
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void health_set(health *h, const char *name, health_state st)
{
    if (st == HEALTH_SERVICE_UNKNOWN) /* not a state a name can be set to */
        return;
    pthread_mutex_lock(&h->mu);
    if (!h->shutdown) {
        health_entry *e = entry_find(h, name);
        if (!e) {
            e = xcalloc(1, sizeof *e);
            e->name = xstrdup(name);
            e->state = st;
            e->next = h->entries;
            h->entries = e;
        }
        e->state = st;
        push_name(h, name, st);
    }
    pthread_mutex_unlock(&h->mu);
}

void health_set_all(health *h, health_state st)
{
    if (st == HEALTH_SERVICE_UNKNOWN)
        return;
    pthread_mutex_lock(&h->mu);
    if (!h->shutdown) {
        for (health_entry *e = h->entries; e; e = e->next) {
            e->state = st;
            push_name(h, e->name, st);
        }
    }
    pthread_mutex_unlock(&h->mu);
}

health_state health_get(health *h, const char *name)
{
    pthread_mutex_lock(&h->mu);
    health_entry *e = entry_find(h, name);
    health_state st = e ? e->state : HEALTH_SERVICE_UNKNOWN;
    pthread_mutex_unlock(&h->mu);
    return st;
}

void health_begin_shutdown(health *h)
{
    pthread_mutex_lock(&h->mu);
    for (health_entry *e = h->entries; e; e = e->next) {
        e->state = HEALTH_NOT_SERVING;
        push_name(h, e->name, HEALTH_NOT_SERVING);
    }
    h->shutdown = true;
    pthread_mutex_unlock(&h->mu);
}

void health_finish_watchers(health *h)
{
    rpc_call **calls = NULL;
    size_t n = 0;

    pthread_mutex_lock(&h->mu);
    h->watchers_done = true;
    for (health_watcher *w = h->watchers; w; w = w->next) {
        if (w->finished)
            continue;
        w->finished = true;
        calls = xrealloc(calls, (n + 1) * sizeof *calls);
        calls[n++] = w->call;
    }
    pthread_mutex_unlock(&h->mu);
    /* Outside the lock (finishing may run watch_done at once). Each call
     * stays valid until finished, even if its watcher goes meanwhile. */
    for (size_t i = 0; i < n; i++)
        rpc_call_finish(calls[i], ST_UNAVAILABLE, "server shutting down");
    free(calls);
}

ProtobufCService *health_service(health *h)
{
    return &h->svc.base;
}
