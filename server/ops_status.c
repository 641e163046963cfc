/* ops_status.c - heraldd's in-process figures for GetStatus and GetSloReport
 * (ops_status.h). */
#include "ops_status.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "llm.h"
#include "migrate.h"
#include "util.h"
#include "worker.h"

#ifndef HERALD_VERSION
#define HERALD_VERSION "0.0.0"
#endif
#ifndef HERALD_COMMIT
#define HERALD_COMMIT "unknown"
#endif
#ifndef HERALD_BUILD
#define HERALD_BUILD "unknown"
#endif

enum {
    DEFAULT_SLOT_MS = 300000, /* 5 min */
    DEFAULT_SLOTS = 2016,     /* 7 days of 5-minute samples (~550 KB, touched as filled) */
    MIN_SLOT_MS = 50,
};

#define GEN_SERVICE "herald.v1.ContentService"
#define GEN_METHOD "GenerateDraft"
#define API_PREFIX "herald.v1."

/* The cumulative counters behind a window, at one instant. */
typedef struct ops_counts {
    int64_t at_ms; /* epoch ms */
    uint64_t calls;
    uint64_t server_errors;
    uint64_t gen[RPC_LATENCY_BUCKETS + 1];
    uint64_t db[DB_LATENCY_BUCKETS + 1];
} ops_counts;

struct ops_status {
    ops_status_options o;
    ops_view view;
    int64_t start_ms;
    char build[96];

    /* the last ping (written by the pinger thread) */
    pthread_mutex_t ping_mu; /* protects the four fields below */
    bool pinged;
    bool ping_ok;
    double ping_ms;     /* of the last successful ping */
    int64_t ping_at_ms; /* epoch ms of the last ping */
    char ping_err[256];

    /* the window ring */
    pthread_mutex_t ring_mu; /* protects ring, n, head */
    ops_counts *ring;
    int n;    /* samples held (<= o.slots) */
    int head; /* where the next sample goes */

    /* the sampler thread */
    pthread_mutex_t run_mu; /* protects stop; cv wakes the sampler */
    pthread_cond_t cv;
    bool stop;
    bool started;
    pthread_t thread;
};

void ops_status_options_init(ops_status_options *o)
{
    memset(o, 0, sizeof *o);
    o->workers = 1;
    o->version = HERALD_VERSION;
    o->commit = HERALD_COMMIT;
    o->slot_ms = DEFAULT_SLOT_MS;
    o->slots = DEFAULT_SLOTS;
}

/* ---- counters now ---- */

static void add_method(const rpc_method_stats *m, void *user)
{
    ops_counts *c = user;
    if (strncmp(m->service, API_PREFIX, strlen(API_PREFIX)) != 0)
        return; /* health and reflection: probes would drown the rate */
    for (int code = 0; code < GRPC_CODE_COUNT; code++) {
        c->calls += m->handled[code];
        if (ops_code_server_caused(code))
            c->server_errors += m->handled[code];
    }
    if (strcmp(m->service, GEN_SERVICE) == 0 && strcmp(m->method, GEN_METHOD) == 0)
        for (size_t b = 0; b <= RPC_LATENCY_BUCKETS; b++)
            c->gen[b] += m->bucket[b];
}

static void counts_now(const ops_status *s, ops_counts *c)
{
    memset(c, 0, sizeof *c);
    c->at_ms = now_real_ms();
    if (s->o.rpc != NULL)
        rpc_server_stats(s->o.rpc, add_method, c);
    db_stmt_stats t;
    db_stats_total(&t, false);
    memcpy(c->db, t.bucket, sizeof c->db);
}

/* ---- the ring ---- */

static void ring_push_locked(ops_status *s, const ops_counts *c)
{
    s->ring[s->head] = *c;
    s->head = (s->head + 1) % s->o.slots;
    if (s->n < s->o.slots)
        s->n++;
}

/* The i-th oldest sample (0 <= i < n). */
static const ops_counts *ring_at_locked(const ops_status *s, int i)
{
    int oldest = (s->head - s->n + s->o.slots) % s->o.slots;
    return &s->ring[(oldest + i) % s->o.slots];
}

/* The latest sample taken at or before t, else the oldest one. */
static const ops_counts *ring_find_locked(const ops_status *s, int64_t t)
{
    const ops_counts *best = ring_at_locked(s, 0);
    for (int i = 0; i < s->n; i++) {
        const ops_counts *c = ring_at_locked(s, i);
        if (c->at_ms > t)
            break;
        best = c;
    }
    return best;
}

static uint64_t sub(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

void ops_status_window(const ops_status *s, int64_t start_ms, int64_t end_ms, ops_window *out)
{
    ops_counts live, hi, lo;
    memset(out, 0, sizeof *out);
    counts_now(s, &live);
    if (end_ms > live.at_ms)
        end_ms = live.at_ms;

    ops_status *m = (ops_status *)s; /* the mutex only */
    pthread_mutex_lock(&m->ring_mu);
    const ops_counts *first = ring_at_locked(s, 0);
    if (end_ms >= live.at_ms - s->o.slot_ms / 2)
        hi = live; /* the window reaches now: the live counters */
    else
        hi = *ring_find_locked(s, end_ms);
    lo = *ring_find_locked(s, start_ms);
    if (end_ms < first->at_ms)
        hi = *first; /* all before what is recorded: nothing */
    pthread_mutex_unlock(&m->ring_mu);

    if (lo.at_ms > hi.at_ms)
        lo = hi;
    out->start_ms = lo.at_ms;
    out->end_ms = hi.at_ms;
    out->gen_bounds = rpc_latency_bounds;
    out->n_gen_bounds = RPC_LATENCY_BUCKETS;
    out->calls = sub(hi.calls, lo.calls);
    out->server_errors = sub(hi.server_errors, lo.server_errors);
    for (size_t b = 0; b <= RPC_LATENCY_BUCKETS; b++) {
        out->gen[b] = sub(hi.gen[b], lo.gen[b]);
        out->gen_count += out->gen[b];
    }
    for (size_t b = 0; b <= DB_LATENCY_BUCKETS; b++) {
        out->db[b] = sub(hi.db[b], lo.db[b]);
        out->db_count += out->db[b];
    }
}

static void *sampler_main(void *arg)
{
    ops_status *s = arg;
    pthread_mutex_lock(&s->run_mu);
    while (!s->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        int64_t ns = until.tv_nsec + (s->o.slot_ms % 1000) * 1000000;
        until.tv_sec += (time_t)(s->o.slot_ms / 1000 + ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
        int rc = 0;
        while (!s->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->cv, &s->run_mu, &until);
        if (s->stop)
            break;
        pthread_mutex_unlock(&s->run_mu);
        ops_counts c;
        counts_now(s, &c);
        pthread_mutex_lock(&s->ring_mu);
        ring_push_locked(s, &c);
        pthread_mutex_unlock(&s->ring_mu);
        pthread_mutex_lock(&s->run_mu);
    }
    pthread_mutex_unlock(&s->run_mu);
    return NULL;
}

/* ---- the snapshot ---- */

/* The http upstream labels of each dependency (http_request.upstream). */
static const char *const llm_upstreams[] = { "llm", NULL };
static const char *const publisher_upstreams[] = { "webhook", "x_api", NULL };

typedef struct upstream_sum {
    const char *const *names;
    ops_upstream *out;
} upstream_sum;

static void add_upstream(const http_upstream_stats *st, void *user)
{
    upstream_sum *u = user;
    size_t i = 0;
    while (u->names[i] != NULL && strcmp(st->upstream, u->names[i]) != 0)
        i++;
    if (u->names[i] == NULL)
        return;
    int64_t done = 0;
    for (size_t k = 0; k < HTTP_RES_COUNT; k++)
        done += (int64_t)st->results[k];
    u->out->requests += done;
    u->out->errors += done - (int64_t)st->status[2];
    u->out->in_flight += st->inflight;
}

void ops_status_snapshot(const ops_status *s, ops_snapshot *out)
{
    memset(out, 0, sizeof *out);
    out->version = s->o.version;
    out->commit = s->o.commit;
    out->build = s->build;
    out->start_ms = s->start_ms;
    out->now_ms = now_real_ms();

    if (s->o.mem != NULL) {
        out->have_mem = true;
        memwatch_stats_get(s->o.mem, &out->mem);
    }
    out->workers = s->o.workers;
    if (s->o.rpc != NULL) {
        out->busy_workers = rpc_server_busy_workers(s->o.rpc);
        out->inflight_calls = rpc_server_inflight(s->o.rpc);
    }

    out->db_configured = s->o.shared != NULL && s->o.shared->have_db;
    out->schema_version = -1;
    if (s->o.shared != NULL && worker_schema_get(s->o.shared) == WORKER_SCHEMA_OK)
        out->schema_version = migrate_expected_version();
    ops_status *m = (ops_status *)s; /* the mutex only */
    pthread_mutex_lock(&m->ping_mu);
    out->db_pinged = s->pinged;
    out->db_up = s->pinged && s->ping_ok;
    out->ping_ms = s->ping_ms;
    out->last_ping_ms = s->ping_at_ms;
    if (s->pinged && !s->ping_ok)
        (void)snprintf(out->db_error, sizeof out->db_error, "%s", s->ping_err);
    pthread_mutex_unlock(&m->ping_mu);
    db_stats_total(&out->db_total, false);
    db_pool_stats_get(&out->pool);

    if (s->o.cache != NULL) {
        out->cache_configured = cache_configured(s->o.cache);
        cache_stats_get(s->o.cache, &out->cache);
    }

    out->llm.configured = s->o.llm != NULL && llm_configured(s->o.llm);
    out->publisher.configured = s->o.publisher;
    if (s->o.http != NULL) {
        upstream_sum u = { llm_upstreams, &out->llm };
        http_client_stats(s->o.http, add_upstream, &u);
        u = (upstream_sum){ publisher_upstreams, &out->publisher };
        http_client_stats(s->o.http, add_upstream, &u);
    }
    if (s->o.llm != NULL)
        out->llm.in_flight = llm_jobs_in_flight(s->o.llm);
    /* a publisher that has sent something is configured, whoever started it */
    out->publisher.configured =
        out->publisher.configured || out->publisher.requests > 0 || out->publisher.in_flight > 0;
}

void ops_status_note_ping(ops_status *s, bool ok, double ms, const char *why)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->ping_mu);
    s->pinged = true;
    s->ping_ok = ok;
    s->ping_at_ms = now_real_ms();
    if (ok) {
        s->ping_ms = ms;
        s->ping_err[0] = '\0';
    } else {
        (void)snprintf(s->ping_err, sizeof s->ping_err, "%s", why != NULL ? why : "ping failed");
    }
    pthread_mutex_unlock(&s->ping_mu);
}

/* ---- life cycle ---- */

static void view_snapshot(const void *impl, ops_snapshot *out)
{
    ops_status_snapshot(impl, out);
}

static void view_window(const void *impl, int64_t start_ms, int64_t end_ms, ops_window *out)
{
    ops_status_window(impl, start_ms, end_ms, out);
}

const ops_view *ops_status_view(const ops_status *s)
{
    return &s->view;
}

ops_status *ops_status_new(const ops_status_options *o)
{
    ops_status *s = xcalloc(1, sizeof *s);
    s->o = *o;
    if (s->o.slot_ms < MIN_SLOT_MS)
        s->o.slot_ms = MIN_SLOT_MS;
    if (s->o.slots < 2)
        s->o.slots = 2;
    if (s->o.version == NULL)
        s->o.version = HERALD_VERSION;
    if (s->o.commit == NULL)
        s->o.commit = HERALD_COMMIT;
    /* "GNU 12.2.0 RelWithDebInfo " + sanitizers, if any; drop trailing blanks */
    (void)snprintf(s->build, sizeof s->build, "%s", HERALD_BUILD);
    for (size_t n = strlen(s->build); n > 0 && s->build[n - 1] == ' '; n--)
        s->build[n - 1] = '\0';
    s->view = (ops_view){ view_snapshot, view_window, s };
    s->start_ms = now_real_ms();
    pthread_mutex_init(&s->ping_mu, NULL);
    pthread_mutex_init(&s->ring_mu, NULL);
    pthread_mutex_init(&s->run_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->ring = xcalloc((size_t)s->o.slots, sizeof *s->ring);
    /* the first sample: nothing has happened yet at the process start */
    ops_counts zero;
    memset(&zero, 0, sizeof zero);
    zero.at_ms = s->start_ms;
    ring_push_locked(s, &zero);
    return s;
}

status ops_status_start(ops_status *s, char **err)
{
    *err = NULL;
    if (s->started)
        return ST_OK;
    int rc = pthread_create(&s->thread, NULL, sampler_main, s);
    if (rc != 0) {
        *err = xasprintf("cannot start the status sampler: %s", strerror(rc));
        return ST_INTERNAL;
    }
    s->started = true;
    return ST_OK;
}

void ops_status_free(ops_status *s)
{
    if (s == NULL)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->run_mu);
        s->stop = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->run_mu);
        pthread_join(s->thread, NULL);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->run_mu);
    pthread_mutex_destroy(&s->ring_mu);
    pthread_mutex_destroy(&s->ping_mu);
    free(s->ring);
    free(s);
}
