/* jobs.h - periodic background jobs, coordinated through PostgreSQL.
 *
 * A jobs runner owns one thread and one db_conn. Each registered job has a
 * row in background_jobs (0002_core); a replica runs a due job only when its
 * conditional UPDATE wins (next_run_at moves forward and a time-bound lock
 * is taken in the same statement), so any number of heraldd replicas share
 * the work without a coordinator and a replica that dies mid-run only
 * delays the job until its lock expires. Work queues inside a job (posts to
 * pre-generate, leases to expire) use FOR UPDATE SKIP LOCKED themselves.
 *
 * Threads. jobs_add before jobs_start, from the thread that created the
 * runner; job functions run on the runner thread, one at a time, with the
 * runner's own connection (never a worker's). jobs_stop may be called from
 * any thread but the runner's; it waits for a running job to return (job
 * functions keep to their budget). Modules do not log: the runner reports
 * every run through on_result, and main logs it. */
#ifndef HERALD_JOBS_H
#define HERALD_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "status.h"

typedef struct jobs jobs;

/* One run of a job. budget_ms is the time it may take (its lock length
 * minus a margin); note (cap bytes, NUL-terminated, may stay empty) is a
 * short human summary ("pruned 120 keys") stored with the run. Returns
 * ST_OK, or a failure whose reason goes in note. */
typedef status (*job_fn)(db_conn *db, int64_t budget_ms, char *note, size_t cap, void *user);

/* Called after every run on the runner thread: ran is false when another
 * replica held the job (then st is ST_OK and ms 0; reported only at debug
 * interest, main may ignore it). */
typedef void (*jobs_result_fn)(const char *name, bool ran, status st, const char *note, double ms,
                               void *user);

typedef struct jobs_options {
    const db_options *db; /* the runner's own connection; copied */
    const char *owner;    /* who holds locks, e.g. "host:pid"; copied */
    int tick_ms;          /* how often due jobs are checked (default 250) */
    jobs_result_fn on_result;
    void *user;
} jobs_options;

/* A stopped runner with no jobs. Never fails (connections are lazy). */
jobs *jobs_new(const jobs_options *o);
/* Registers name ([a-z][a-z0-9_]*, <= 64) to run every interval_ms (1,000 ..
 * 604,800,000; the table keeps whole seconds) with at most lock_ms per run (> 0; a run longer than
 * that may overlap another replica's). Before jobs_start only. */
void jobs_add(jobs *j, const char *name, int64_t interval_ms, int64_t lock_ms, job_fn fn,
              void *user);
/* Starts the thread. ST_INTERNAL (with *err, caller frees) if it cannot. */
status jobs_start(jobs *j, char **err);
/* Asks the thread to run name at its next tick regardless of its local
 * schedule (the database row still decides). Any thread. */
void jobs_kick(jobs *j, const char *name);
/* Stops and joins the thread (idempotent), then frees. NULL is a no-op. */
void jobs_free(jobs *j);

/* Runs one claim-and-run cycle of every due job on the caller's thread with
 * db (tests; the runner thread uses it too). Returns how many jobs ran. */
int jobs_run_due(jobs *j, db_conn *db, int64_t now_ms);

#endif
