/* memwatch.h - the memory manager: RSS against a limit, shedding and refusing.
 *
 * A sampler (its own thread, or memwatch_tick from a caller's loop) reads the
 * resident set size every sample_ms and moves between three states:
 *
 *   OK    below the soft limit (soft_pct % of the limit).
 *   SOFT  at or above the soft limit: every registered shed callback runs
 *         (caches drop what they hold), freed heap goes back to the kernel
 *         (malloc_trim), and one warning is logged.
 *   HARD  at or above the limit: as SOFT, and memwatch_admit refuses the
 *         expensive RPCs (generation, batch ingest, recomputation; the table
 *         of memwatch_method_expensive) with ST_EXHAUSTED and a retry delay,
 *         while cheap RPCs and health keep working.
 *
 * Moving up happens on the first sample over a threshold; moving down needs
 * the RSS to fall hysteresis_pct % of the limit below the threshold, so a
 * process hovering at a threshold does not flap. Each change of state logs
 * one line (warn going up, info going down) and each move up sheds once.
 *
 * Threads. memwatch_state, memwatch_admit, memwatch_intercept and
 * memwatch_stats read atomics: any thread, no lock, no I/O. memwatch_tick
 * and the shed callbacks run on the sampler thread (or the caller of tick);
 * tick calls are serialised by a mutex. memwatch_add_shed before start (or
 * from the thread that ticks). */
#ifndef HERALD_MEMWATCH_H
#define HERALD_MEMWATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "rpc.h"
#include "status.h"

typedef struct memwatch memwatch;

typedef enum {
    MEMWATCH_OK = 0,
    MEMWATCH_SOFT = 1,
    MEMWATCH_HARD = 2,
} memwatch_level;

/* "ok", "soft", "hard". */
const char *memwatch_level_name(memwatch_level l);

/* Reads the RSS in bytes (-1: cannot). Tests substitute their own. */
typedef int64_t (*memwatch_rss_fn)(void *user);

typedef struct memwatch_options {
    int64_t
        limit_bytes; /* the hard limit; <= 0 disables the manager (always OK; RSS still sampled) */
    int soft_pct;    /* soft limit as % of the limit, 1..99 (default 75) */
    int hysteresis_pct;  /* % of the limit below a threshold to move down (default 5) */
    int64_t sample_ms;   /* sampling period of the thread (default 2000) */
    int64_t retry_ms;    /* retry delay given to refused calls (default 5000) */
    memwatch_rss_fn rss; /* NULL: procstat_rss_bytes */
    void *rss_user;
    /* Full method paths refused in HARD, NULL-terminated; NULL = the built-in
     * table of memwatch_method_expensive. Borrowed; must outlive m. */
    const char *const *expensive;
} memwatch_options;

/* Fills o with the defaults above (limit 256 MiB). */
void memwatch_options_init(memwatch_options *o);

/* A manager in state OK that has not sampled yet. Never fails. */
memwatch *memwatch_new(const memwatch_options *o);
/* Stops the thread (if started) and frees. NULL is a no-op. */
void memwatch_free(memwatch *m);

/* Called (on the sampler thread) each time the state moves up to SOFT or
 * HARD: drop caches, trim pools. Must not block for long. Up to 16. */
typedef void (*memwatch_shed_fn)(memwatch_level level, void *user);
void memwatch_add_shed(memwatch *m, memwatch_shed_fn fn, void *user);

/* Samples once now and applies the state machine; returns the new state.
 * The thread calls this every sample_ms; main or tests may call it instead. */
memwatch_level memwatch_tick(memwatch *m);

/* Starts the sampling thread (samples once at once). ST_INTERNAL (with
 * *err, caller frees) when the thread cannot start. Idempotent. */
status memwatch_start(memwatch *m, char **err);
/* Stops and joins the thread (waits at most one sample). Idempotent. */
void memwatch_stop(memwatch *m);

/* The current state. Any thread; one atomic load. */
memwatch_level memwatch_state(const memwatch *m);

/* True when path ("/herald.v1.ContentService/GenerateDraft") is in the
 * built-in table of expensive methods: GenerateDraft, GenerateBatch,
 * GenerateReply, AdaptForPlatform (ContentService); RecordEngagement,
 * RecordFollowerSnapshots, RecordReplies, RecomputeOutcomes
 * (LearningService). Pure. */
bool memwatch_method_expensive(const char *path);

/* The admission rule: ST_EXHAUSTED when the state is HARD and path is
 * expensive (per the options' table), with *retry_ms (may be NULL) set to the
 * configured retry delay; ST_OK otherwise (*retry_ms = -1). Counts refusals.
 * m may be NULL (always ST_OK). Any thread. */
status memwatch_admit(memwatch *m, const char *path, int64_t *retry_ms);

/* memwatch_admit for an rpc interceptor: on refusal sets the call's status
 * (RESOURCE_EXHAUSTED "server is over its memory limit; retry later") and
 * retry delay (RetryInfo + grpc-retry-pushback-ms) and returns ST_EXHAUSTED,
 * which the interceptor returns. m may be NULL. */
status memwatch_intercept(memwatch *m, rpc_call *call);

typedef struct memwatch_stats {
    memwatch_level state;
    int64_t rss_bytes;        /* at the last sample; -1 before the first */
    int64_t peak_rss_bytes;   /* highest sample so far */
    int64_t limit_bytes;      /* 0 when disabled */
    int64_t soft_limit_bytes; /* 0 when disabled */
    uint64_t samples;
    uint64_t shed_count;     /* upward moves that ran the shed callbacks */
    uint64_t rejected_calls; /* calls refused by memwatch_admit */
    uint64_t transitions;    /* state changes, both ways */
} memwatch_stats;

/* A snapshot (atomics read one by one). Any thread. */
void memwatch_stats_get(const memwatch *m, memwatch_stats *out);

#endif
