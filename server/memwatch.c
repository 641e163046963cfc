/* memwatch.c - the memory manager (see memwatch.h). */
#include "memwatch.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "procstat.h"
#include "util.h"

enum { MEMWATCH_MAX_SHED = 16 };

/* clang-format off */
static const char *const builtin_expensive[] = {
    /* generation */
    "/herald.v1.ContentService/GenerateDraft",
    "/herald.v1.ContentService/GenerateBatch",
    "/herald.v1.ContentService/GenerateReply",
    "/herald.v1.ContentService/AdaptForPlatform",
    /* batch ingest (1 to 1,000 items each) */
    "/herald.v1.LearningService/RecordEngagement",
    "/herald.v1.LearningService/RecordFollowerSnapshots",
    "/herald.v1.LearningService/RecordReplies",
    /* recomputation over the whole history */
    "/herald.v1.LearningService/RecomputeOutcomes",
    NULL,
};
/* clang-format on */

struct memwatch {
    memwatch_options opt; /* immutable after new */
    int64_t soft_bytes;   /* immutable */
    int64_t hyst_bytes;   /* immutable */
    const char *const *expensive;

    _Atomic int state; /* memwatch_level */
    _Atomic int64_t rss;
    _Atomic int64_t peak;
    _Atomic uint64_t samples;
    _Atomic uint64_t sheds;
    _Atomic uint64_t rejected;
    _Atomic uint64_t transitions;

    /* tick_mu serialises memwatch_tick and guards shed[]/n_shed. */
    pthread_mutex_t tick_mu;
    struct {
        memwatch_shed_fn fn;
        void *user;
    } shed[MEMWATCH_MAX_SHED];
    int n_shed;

    /* mu and cond guard running/stopping and wake the thread to stop. */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool running;
    bool stopping;
    pthread_t thread;
};

const char *memwatch_level_name(memwatch_level l)
{
    switch (l) {
    case MEMWATCH_OK:
        return "ok";
    case MEMWATCH_SOFT:
        return "soft";
    case MEMWATCH_HARD:
        return "hard";
    }
    return "unknown";
}

void memwatch_options_init(memwatch_options *o)
{
    memset(o, 0, sizeof *o);
    o->limit_bytes = (int64_t)256 << 20;
    o->soft_pct = 75;
    o->hysteresis_pct = 5;
    o->sample_ms = 2000;
    o->retry_ms = 5000;
}

static int64_t default_rss(void *user)
{
    (void)user;
    return procstat_rss_bytes();
}

memwatch *memwatch_new(const memwatch_options *o)
{
    memwatch *m = xcalloc(1, sizeof *m);
    m->opt = *o;
    if (m->opt.soft_pct < 1 || m->opt.soft_pct > 99)
        m->opt.soft_pct = 75;
    if (m->opt.hysteresis_pct < 0 || m->opt.hysteresis_pct > 50)
        m->opt.hysteresis_pct = 5;
    if (m->opt.sample_ms <= 0)
        m->opt.sample_ms = 2000;
    if (m->opt.retry_ms < 0)
        m->opt.retry_ms = 5000;
    if (m->opt.rss == NULL)
        m->opt.rss = default_rss;
    if (m->opt.limit_bytes < 0)
        m->opt.limit_bytes = 0;
    m->soft_bytes = m->opt.limit_bytes / 100 * m->opt.soft_pct +
                    m->opt.limit_bytes % 100 * m->opt.soft_pct / 100;
    m->hyst_bytes = m->opt.limit_bytes / 100 * m->opt.hysteresis_pct;
    m->expensive = o->expensive != NULL ? o->expensive : builtin_expensive;
    atomic_init(&m->state, MEMWATCH_OK);
    atomic_init(&m->rss, -1);
    atomic_init(&m->peak, -1);
    pthread_mutex_init(&m->tick_mu, NULL);
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    return m;
}

void memwatch_free(memwatch *m)
{
    if (m == NULL)
        return;
    memwatch_stop(m);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->tick_mu);
    free(m);
}

void memwatch_add_shed(memwatch *m, memwatch_shed_fn fn, void *user)
{
    pthread_mutex_lock(&m->tick_mu);
    if (m->n_shed < MEMWATCH_MAX_SHED) {
        m->shed[m->n_shed].fn = fn;
        m->shed[m->n_shed].user = user;
        m->n_shed++;
    }
    pthread_mutex_unlock(&m->tick_mu);
}

/* The state after a sample of rss bytes in state cur: up on the first sample
 * over a threshold, down only hyst below it. */
static memwatch_level next_level(memwatch_level cur, int64_t rss, int64_t soft, int64_t hard,
                                 int64_t hyst)
{
    if (rss >= hard)
        return MEMWATCH_HARD;
    if (cur == MEMWATCH_HARD && rss >= hard - hyst)
        return MEMWATCH_HARD;
    if (rss >= soft)
        return MEMWATCH_SOFT;
    if (cur != MEMWATCH_OK && rss >= soft - hyst)
        return MEMWATCH_SOFT;
    return MEMWATCH_OK;
}

static void log_transition(const memwatch *m, memwatch_level from, memwatch_level to, int64_t rss)
{
    char rss_s[32], limit_s[32], soft_s[32];
    (void)snprintf(rss_s, sizeof rss_s, "%lld", (long long)rss);
    (void)snprintf(limit_s, sizeof limit_s, "%lld", (long long)m->opt.limit_bytes);
    (void)snprintf(soft_s, sizeof soft_s, "%lld", (long long)m->soft_bytes);
    log_field f[] = { LOG_S("from", memwatch_level_name(from)),
                      LOG_S("to", memwatch_level_name(to)), LOG_RAW("rss_bytes", rss_s),
                      LOG_RAW("soft_limit_bytes", soft_s), LOG_RAW("limit_bytes", limit_s) };
    const char *msg = to == MEMWATCH_HARD   ? "memory over the limit: refusing expensive calls"
                      : to == MEMWATCH_SOFT ? "memory over the soft limit: shedding caches"
                                            : "memory back under the soft limit";
    log_event(to > from ? LOG_WARN : LOG_INFO, msg, f, 5);
}

memwatch_level memwatch_tick(memwatch *m)
{
    pthread_mutex_lock(&m->tick_mu);
    memwatch_level cur = (memwatch_level)atomic_load(&m->state);
    int64_t rss = m->opt.rss(m->opt.rss_user);
    if (rss < 0) { /* cannot measure: keep the state */
        pthread_mutex_unlock(&m->tick_mu);
        return cur;
    }
    atomic_store(&m->rss, rss);
    if (rss > atomic_load(&m->peak))
        atomic_store(&m->peak, rss);
    atomic_fetch_add(&m->samples, 1);
    if (m->opt.limit_bytes <= 0) { /* disabled: figures only */
        pthread_mutex_unlock(&m->tick_mu);
        return cur;
    }
    memwatch_level next = next_level(cur, rss, m->soft_bytes, m->opt.limit_bytes, m->hyst_bytes);
    if (next != cur) {
        atomic_store(&m->state, next);
        atomic_fetch_add(&m->transitions, 1);
        log_transition(m, cur, next, rss);
        if (next > cur) {
            for (int i = 0; i < m->n_shed; i++)
                m->shed[i].fn(next, m->shed[i].user);
            /* Hand the heap the caches just freed back to the kernel: without
             * it glibc keeps the pages and RSS does not move. */
            malloc_trim(0);
            atomic_fetch_add(&m->sheds, 1);
        }
    }
    pthread_mutex_unlock(&m->tick_mu);
    return next;
}

static void *sampler_main(void *arg)
{
    memwatch *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stopping) {
        pthread_mutex_unlock(&m->mu);
        memwatch_tick(m);
        pthread_mutex_lock(&m->mu);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        int64_t ns = until.tv_nsec + (m->opt.sample_ms % 1000) * 1000000;
        until.tv_sec += (time_t)(m->opt.sample_ms / 1000 + ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
        int rc = 0;
        while (!m->stopping && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&m->cond, &m->mu, &until);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

status memwatch_start(memwatch *m, char **err)
{
    pthread_mutex_lock(&m->mu);
    if (m->running) {
        pthread_mutex_unlock(&m->mu);
        return ST_OK;
    }
    m->stopping = false;
    int rc = pthread_create(&m->thread, NULL, sampler_main, m);
    if (rc != 0) {
        pthread_mutex_unlock(&m->mu);
        *err = xasprintf("cannot start the memory sampler thread: %s", strerror(rc));
        return ST_INTERNAL;
    }
    m->running = true;
    pthread_mutex_unlock(&m->mu);
    return ST_OK;
}

void memwatch_stop(memwatch *m)
{
    pthread_mutex_lock(&m->mu);
    if (!m->running) {
        pthread_mutex_unlock(&m->mu);
        return;
    }
    m->stopping = true;
    pthread_cond_broadcast(&m->cond);
    pthread_t t = m->thread;
    m->running = false;
    pthread_mutex_unlock(&m->mu);
    pthread_join(t, NULL);
}

memwatch_level memwatch_state(const memwatch *m)
{
    return (memwatch_level)atomic_load(&((memwatch *)m)->state);
}

static bool in_table(const char *const *table, const char *path)
{
    if (path == NULL)
        return false;
    for (size_t i = 0; table[i] != NULL; i++)
        if (strcmp(table[i], path) == 0)
            return true;
    return false;
}

bool memwatch_method_expensive(const char *path)
{
    return in_table(builtin_expensive, path);
}

status memwatch_admit(memwatch *m, const char *path, int64_t *retry_ms)
{
    if (retry_ms != NULL)
        *retry_ms = -1;
    if (m == NULL || atomic_load(&m->state) != MEMWATCH_HARD || !in_table(m->expensive, path))
        return ST_OK;
    atomic_fetch_add(&m->rejected, 1);
    if (retry_ms != NULL)
        *retry_ms = m->opt.retry_ms;
    return ST_EXHAUSTED;
}

status memwatch_intercept(memwatch *m, rpc_call *call)
{
    int64_t retry_ms = -1;
    status st = memwatch_admit(m, rpc_call_path(call), &retry_ms);
    if (st != ST_OK) {
        rpc_call_set_status(call, st, "server is over its memory limit; retry later");
        rpc_call_set_retry_delay_ms(call, retry_ms);
    }
    return st;
}

void memwatch_stats_get(const memwatch *m, memwatch_stats *out)
{
    memwatch *mm = (memwatch *)m; /* atomics are read only */
    memset(out, 0, sizeof *out);
    out->state = (memwatch_level)atomic_load(&mm->state);
    out->rss_bytes = atomic_load(&mm->rss);
    out->peak_rss_bytes = atomic_load(&mm->peak);
    out->limit_bytes = m->opt.limit_bytes;
    out->soft_limit_bytes = m->opt.limit_bytes > 0 ? m->soft_bytes : 0;
    out->samples = atomic_load(&mm->samples);
    out->shed_count = atomic_load(&mm->sheds);
    out->rejected_calls = atomic_load(&mm->rejected);
    out->transitions = atomic_load(&mm->transitions);
}
