/* pregen.h - ContentService's background side: the built-in drafting step,
 * the completion threads that finish LLM-backed calls, and the
 * pre-generation job that keeps each profile's buffer of drafts full.
 *
 * Drafting (pregen_compose_builtin, pregen_draft_tx) is the one pipeline
 * every built-in draft goes through, whoever asks: GenerateDraft,
 * GenerateBatch, the LLM fallback and the job. It composes with the
 * generator (asked for a text under the duplicate threshold against the
 * history), runs every gate, refuses a text already live for the profile
 * (another seed is tried) and stores the post with its arms, gate results
 * and decision in the caller's transaction.
 *
 * Completion threads. An LLM reply arrives on the http thread, which must
 * not block and must never touch a worker's db_conn. The handler therefore
 * detaches its call, and the llm callback only hands the result to
 * pregen_submit: a small pool of threads (PREGEN_THREADS), each with its
 * own lazily connecting db_conn, runs the gates, the built-in fallback and
 * the idempotent store (handler_mutate_on) and completes the call. No
 * worker thread ever waits on the LLM.
 *
 * The pre-generation job ("content_pregen", every PREGEN_INTERVAL_MS on the
 * jobs runner's own thread and connection) runs only while the service is
 * idle: the busy probe main gives (worker threads inside a handler, LLM
 * calls in flight, completions queued) is sampled before each profile and
 * each draft, and a run stops as soon as it reports busy. Work is claimed
 * per profile with FOR NO KEY UPDATE SKIP LOCKED (content_store.h), so
 * replicas share profiles without a coordinator and GenerateDraft for the
 * profile is never blocked by it. A profile's buffer is its unscheduled
 * original posts in DRAFT or APPROVED (APPROVED when it auto-approves);
 * the job tops it up to draft_buffer_size, at most PREGEN_MAX_PER_RUN
 * drafts per profile per run, with the built-in generator (the job never
 * waits on an LLM).
 *
 * Threads. pregen_start/pregen_stop from main's thread; pregen_submit and
 * the accessors from any thread. The drafting functions run on the caller's
 * thread with the caller's connection. */
#ifndef HERALD_PREGEN_H
#define HERALD_PREGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "content_store.h"
#include "db.h"
#include "gates.h"
#include "jobs.h"
#include "llm.h"
#include "status.h"
#include "textsim.h"

#define PREGEN_JOB_NAME "content_pregen"
enum {
    PREGEN_THREADS = 2,           /* completion threads */
    PREGEN_INTERVAL_MS = 5000,    /* how often the job looks for profiles to fill */
    PREGEN_LOCK_MS = 60000,       /* its lock; a run keeps to PREGEN_RUN_BUDGET_MS */
    PREGEN_RUN_BUDGET_MS = 20000, /* time one run may take */
    PREGEN_MAX_PER_RUN = 10,      /* drafts per profile per run */
    PREGEN_SEED_TRIES = 8,        /* seeds tried when a text fails a gate or is already live */
};

struct config;
typedef struct rpc_server rpc_server;

typedef struct pregen_options {
    const struct config *cfg; /* the llm.* settings; borrowed, outlives pregen_stop */
    const db_options *dbo;    /* connection settings (copied); conninfo "" = no database:
                               * no completion threads' store, no job */
    rpc_server *srv;          /* the busy probe reads its busy workers; may be NULL */
    /* heraldd's process-wide ones, borrowed (the caller frees them: llm_free
     * before pregen_stop, whose completion threads take the cancelled
     * calls; jobs_free before llm_free; http_client_free after llm_free).
     * NULL: pregen makes (and frees) its own, as described below. */
    http_client *http; /* unused when llm is given */
    llm_client *llm;   /* given: used as is (configured or not) */
    jobs *jobs;        /* given: the job is added to it (before the caller's jobs_start) */
} pregen_options;

/* Everything ContentService runs besides its handlers, started by main
 * once the server runs (after rpc_server_start):
 *   - the http client and the LLM client when llm.url is set;
 *   - the completion threads;
 *   - a jobs runner (its own thread and connection) with the
 *     pre-generation job, when there is a database.
 * The busy probe is: a worker thread inside a handler
 * (rpc_server_busy_workers), an LLM call in flight, or a completion queued.
 * Job runs that did something, or failed, are logged (one line each).
 * ST_INTERNAL (with *err, caller frees) when a thread cannot start; a
 * client that cannot start is logged and that part stays off. main calls
 * http_global_init before any thread starts and http_global_fini at exit. */
status pregen_start(const pregen_options *o, char **err);
/* Stops the job, frees the LLM client (its cancelled callbacks still
 * complete their calls through the completion threads), runs every queued
 * completion, joins the threads, frees the http client. Call after
 * rpc_server_shutdown and before rpc_server_free (which waits for
 * detached calls). Idempotent; safe when pregen_start was never called. */
void pregen_stop(void);

/* The LLM client when one is configured (llm_configured), else NULL. */
llm_client *pregen_llm(void);
/* The busy probe (false when none was given or pregen is stopped). */
bool pregen_busy(void);

/* Runs fn(db, arg) on a completion thread with its own connection.
 * ST_UNAVAILABLE when pregen is not running (fn is not called). */
typedef void (*pregen_fn)(db_conn *db, void *arg);
status pregen_submit(pregen_fn fn, void *arg);
/* Completions queued or running now. */
int pregen_pending(void);

/* Registers the pre-generation job with j (before jobs_start). */
void pregen_add_job(jobs *j);
/* One run of the job on db (its body; tests call it directly). */
status pregen_run(db_conn *db, int64_t budget_ms, char *note, size_t cap, void *user);

/* A fresh 64-bit seed (clock, counter and a mixer; not for secrets). Any
 * thread. */
uint64_t pregen_seed(void);

/* ---- the built-in drafting step ---- */

typedef struct pregen_draft_in {
    const catalog *cat;
    const Herald__V1__Profile *profile;
    const content_plan *plan; /* the arms (and the decision to log) */
    platform_id platform;
    uint64_t seed;
    textsim_index *history; /* the profile's recent posts; the new post is added */
    const char *exclude_id; /* left out of the duplicate check (an adaptation's source) */
    const char *fact_key;   /* optional: write from this fact */
    const char *kind;       /* "original" (NULL) or "adaptation" */
    const char *source_post_id;
} pregen_draft_in;

typedef struct pregen_text {
    char *text; /* owned; pregen_text_fini */
    size_t len;
    uint64_t seed; /* the seed that wrote it */
    gates_report gates;
    int64_t duration_ms;
} pregen_text;

void pregen_text_fini(pregen_text *t); /* NULL-safe */

/* Composes a built-in text for in and gates it (db checks that the text is
 * not live already; reads as content_store's read helpers). ST_OK: every
 * gate passed. ST_FAILED_PRECONDITION: the best text failed a gate (out
 * still holds it and its report; err names the gates) or the generator
 * cannot write for these arms (err says why). */
status pregen_compose_builtin(db_conn *db, int64_t budget_ms, const pregen_draft_in *in,
                              pregen_text *out, char *err, size_t errcap);

/* The state a new post of profile starts in: "approved" or "draft". */
const char *pregen_initial_state(const Herald__V1__Profile *profile);

/* Composes (as above) and stores the post in the open transaction on db,
 * with the plan's decision. id_out gets its post_id, *t the text (may be
 * NULL). Statuses as pregen_compose_builtin, plus store failures. */
status pregen_draft_tx(db_conn *db, const pregen_draft_in *in, char id_out[CONTENT_ID_MAX],
                       pregen_text *t, char *err, size_t errcap);

#endif
