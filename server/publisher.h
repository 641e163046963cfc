/* publisher.h - heraldd's built-in publisher (issue 7, item 5): for profiles
 * whose publish_target is WEBHOOK or X_API_V2, heraldd itself claims due
 * posts and publishes them over http.h, under the same leases and outcome
 * rules as external executors (sched_store.h).
 *
 * One thread with its own PostgreSQL connection (never a worker's: the
 * http completion callbacks run on the http thread and only hand results
 * over). Each round it
 *   1. reports the outcomes of finished transfers (sched_report_tx), and a
 *      platform cooldown after a 429 (ReportPlatformSignal's rules, reset
 *      at the Retry-After);
 *   2. expires lapsed leases of every profile (the background half of
 *      sched_store.h's LEASE EXPIRY; replicas skip each other's rows);
 *   3. claims due posts of the builtin-target profiles (one claim per
 *      profile, lease = the target's timeout + lease_margin_ms, committed
 *      before anything is sent) and submits one request per post.
 * A round starts every poll_ms, or at once when a transfer finishes.
 *
 * The requests. WEBHOOK: POST url with a JSON body {post_id, profile_id,
 * platform, kind, text, reply_to_external_id, attempt, lease_id,
 * schedule_time}, "Idempotency-Key: <post_id>", "X-Herald-Post-Id",
 * "X-Herald-Attempt" and "X-Herald-Signature: sha256=<hex HMAC-SHA256 of
 * the body keyed with the secret>". X_API_V2: POST url with X API v2's
 * create-post body ({"text": ..., "reply": {"in_reply_to_tweet_id": ...}})
 * and "Authorization: Bearer <secret>". The secret is read per claim,
 * copied into the request (http.h copies headers) and wiped.
 *
 * Outcomes (publisher_classify):
 *   2xx                          SUCCESS; receipt = the body's "id" (X: data.id;
 *                                a webhook that sends none: the post id)
 *   429                          RETRYABLE RATE_LIMITED, Retry-After honoured
 *                                (the retry waits at least that long) and the
 *                                profile cools down until then
 *   408, 5xx                     RETRYABLE (TIMEOUT, SERVER_ERROR); 503 with
 *                                Retry-After honoured too
 *   other 4xx, 1xx, 3xx          PERMANENT (AUTH for 401/403, DUPLICATE_CONTENT
 *                                for 409 or a 403 saying "duplicate",
 *                                CONTENT_REJECTED for 413/422, else INVALID_REQUEST)
 *   no connection, timeout       RETRYABLE NETWORK / TIMEOUT
 *   before the request was sent
 *   timeout, reset or cut after  UNKNOWN (TIMEOUT / NETWORK / OTHER): the post
 *   the request was sent         goes UNCONFIRMED and is never sent again until
 *                                ReconcilePublished settles it
 * A 2xx from X without data.id is UNKNOWN (published, but no receipt).
 * A report that cannot be written (database away) is retried every round
 * until its lease lapses; then the lease sweep makes the post UNCONFIRMED.
 *
 * Threads. publisher_start / publisher_stop from one thread (main);
 * publisher_stats_get from any. The pure helpers are thread-safe. */
#ifndef HERALD_PUBLISHER_H
#define HERALD_PUBLISHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "http.h"
#include "lease.h"
#include "status.h"

typedef struct publisher publisher;

typedef struct publisher_options {
    const db_options *db;    /* settings of the publisher's own connection; copied */
    http_client *http;       /* borrowed; must outlive the publisher */
    const char *executor_id; /* the lease holder's name ("heraldd:<host>:<pid>"); copied */
    int poll_ms;             /* round interval (default 500) */
    int claim_batch;         /* posts per claim (default 16, at most 100) */
    int max_inflight;        /* transfers at once (default 64) */
    int lease_margin_ms;     /* lease = target timeout + this (default 15000) */
    int db_budget_ms;        /* per transaction (default 5000) */
    /* Called each round; false: do nothing this round (the schema is not
     * verified yet). NULL: always ready. Runs on the publisher thread. */
    bool (*ready)(void *user);
    void *user;
} publisher_options;

void publisher_options_init(publisher_options *o);

/* Starts the thread (it connects lazily). NULL with *err (caller frees)
 * when it cannot. */
publisher *publisher_start(const publisher_options *o, char **err);

/* Stops claiming, lets running transfers finish for up to grace_ms, then
 * cancels the rest (a cancelled transfer whose request went out is
 * UNKNOWN), reports every outcome it can within one more db_budget_ms and
 * joins. Call before http_client_free. NULL is a no-op. */
void publisher_stop(publisher *p, int64_t grace_ms);

typedef struct publisher_stats {
    uint64_t rounds;
    uint64_t claimed;         /* posts claimed */
    uint64_t sent;            /* transfers submitted */
    uint64_t outcomes[5];     /* reported, by lease_outcome (SUCCESS..UNKNOWN) */
    uint64_t report_retries;  /* report writes that failed and were retried */
    uint64_t reports_dropped; /* given up (lease lapsed or refused) */
    uint64_t expired;         /* leases expired by the sweep */
    int64_t inflight;
} publisher_stats;

/* A snapshot, counter by counter. Any thread. */
void publisher_stats_get(const publisher *p, publisher_stats *out);

/* ---- pure helpers (exported for tests) ---- */

/* HMAC-SHA256 (RFC 2104) of msg under key. */
void publisher_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                           uint8_t out[32]);

typedef struct publisher_verdict {
    lease_outcome outcome;
    int error_class;        /* herald.v1.PublishErrorClass */
    int retry_after_s;      /* < 0: none */
    bool rate_limited;      /* 429: start a platform cooldown */
    char external_id[129];  /* SUCCESS */
    char external_url[512]; /* SUCCESS, when the target said */
    char error[300];        /* non-SUCCESS: for people, no secrets */
} publisher_verdict;

/* The outcome of one publish transfer. x_api: the X API v2 target (else a
 * webhook); post_id: the receipt of a webhook that returns no id;
 * now_real_ms for an HTTP-date Retry-After. */
void publisher_classify(const http_result *r, bool x_api, const char *post_id, int64_t now_real_ms,
                        publisher_verdict *out);

/* The string (or number) value of the first key named key at object depth
 * <= max_depth (1 = top level) of the JSON text body[0..len), unescaped,
 * into out (cap bytes). false when there is none or it does not fit. */
bool publisher_json_find(const char *body, size_t len, const char *key, int max_depth, char *out,
                         size_t cap);

#endif
