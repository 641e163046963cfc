/* http.h - outbound HTTP on one curl-multi thread (DESIGN.md §1).
 *
 * http.c is the only user of libcurl. One http_client per process runs one
 * thread that drives every transfer with curl_multi, so a slow upstream (the
 * LLM, a webhook) costs a connection and a little memory, never a worker
 * thread: handlers submit a request, detach their gRPC call and finish it
 * from the completion callback.
 *
 * Threads.
 *   - http_submit, http_cancel and http_client_stats may be called from any
 *     thread, including from inside a completion callback. They never block
 *     on the network (a mutex held for a few instructions, one wakeup write).
 *   - Completion callbacks run on the http thread, one at a time, with no
 *     lock of this module held. They must be quick and must not block (no
 *     database call, no sleeping): every other transfer of the process waits
 *     while one runs. Hand longer work to another thread.
 *   - http_client_shutdown / http_client_free must not be called from a
 *     completion callback (they join the http thread).
 *
 * Every successful http_submit is followed by exactly one callback: with the
 * response, an error, HTTP_RES_CANCELLED after http_cancel, or
 * HTTP_RES_SHUTDOWN when the client shuts down first. A failed http_submit
 * (ST_UNAVAILABLE once shutdown has begun) calls nothing.
 *
 * Limits. Every transfer has a total time limit (the earlier of its deadline
 * and its timeout cap), a connect time limit and a response byte cap enforced
 * while receiving (libcurl 7.88's MAXFILESIZE does not stop a chunked body;
 * notes/conventions.md §11). CURLOPT_NOSIGNAL is set; redirects are not
 * followed; only http and https are allowed.
 *
 * Times are milliseconds on now_mono_ms()'s clock (util.h). A gRPC handler
 * turns its deadline into one with now_mono_ms() + rpc_call_remaining_ms(). */
#ifndef HERALD_HTTP_H
#define HERALD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct http_client http_client; /* opaque */

/* What became of a transfer. Only HTTP_RES_OK carries an HTTP status. */
typedef enum {
    HTTP_RES_OK = 0,         /* a whole response arrived (any HTTP status, 500 too) */
    HTTP_RES_CONNECT,        /* no connection: refused, DNS, TLS handshake; nothing sent */
    HTTP_RES_TIMEOUT_UNSENT, /* time limit hit before the request was sent (connect timeout,
                              * or the deadline had passed at start): the upstream never saw it */
    HTTP_RES_TIMEOUT_SENT,   /* time limit hit after the whole request was sent: the upstream
                              * may have acted on it (a publish outcome is UNKNOWN) */
    HTTP_RES_RESET,          /* connection closed or reset before the response was complete;
                              * see request_sent */
    HTTP_RES_TOO_LARGE,      /* response body over the byte cap; transfer aborted */
    HTTP_RES_CANCELLED,      /* http_cancel; transfer aborted */
    HTTP_RES_SHUTDOWN,       /* the client shut down before the transfer completed */
    HTTP_RES_ERROR,          /* anything else: bad URL, certificate, protocol error */
} http_result_kind;

#define HTTP_RES_COUNT 9

/* "ok", "connect", "timeout_unsent", "timeout_sent", "reset", "too_large",
 * "cancelled", "shutdown", "error"; "unknown" otherwise. Static storage. */
const char *http_result_name(http_result_kind k);

typedef struct http_header {
    const char *name;  /* lower case */
    const char *value; /* surrounding white space removed */
} http_header;

/* Passed to the completion callback; everything is borrowed for the
 * duration of the callback only. */
typedef struct http_result {
    uint64_t id; /* http_submit's id */
    http_result_kind kind;
    int status;        /* HTTP status of the response; 0 when none arrived */
    bool request_sent; /* the whole request was written to the connection (or a
                        * response arrived): the upstream may have acted on it */
    bool deadline_hit; /* a timeout came from the caller's deadline, not the cap */
    const char *body;  /* NUL-terminated ("" when empty); may hold NULs */
    size_t body_len;
    const http_header *headers; /* of the final response, in order (capped at 64) */
    size_t n_headers;
    const char *error;  /* for kind != OK: a human reason (no URL query, no secrets) */
    int64_t elapsed_ms; /* from the transfer's start (after start_at_ms) */
} http_result;

/* Value of the first response header called name (case-insensitive), or
 * NULL. */
const char *http_result_header(const http_result *r, const char *name);

typedef void (*http_done_fn)(const http_result *r, void *user);

typedef struct http_request {
    const char *upstream;       /* counter label: "llm", "webhook" (copied; <= 31 bytes) */
    const char *method;         /* "GET", "POST", "PUT", ...; NULL: POST with a body, else GET */
    const char *url;            /* http:// or https:// */
    const char *const *headers; /* "Name: value" lines (copied); may hold secrets */
    size_t n_headers;
    const void *body; /* copied; NULL with body_len 0 for none */
    size_t body_len;
    int64_t deadline_ms;        /* absolute; 0 = none */
    int64_t timeout_ms;         /* cap on the whole transfer; 0 = 30 s */
    int64_t connect_timeout_ms; /* 0 = 2 s; never more than the total limit */
    size_t max_response_bytes;  /* 0 = 1 MiB */
    int64_t start_at_ms;        /* absolute: do not start before (retry backoff); 0 = now */
    /* A new connection, closed afterwards. libcurl re-sends a request by
     * itself when a reused keep-alive connection dies before any reply,
     * which would publish a POST twice; on a fresh connection it never does. */
    bool no_reuse;
} http_request;

/* Process-wide libcurl set-up and teardown: call from main before any thread
 * starts and after the last client is freed. ST_INTERNAL if libcurl fails. */
status http_global_init(void);
void http_global_fini(void);

/* Starts the http thread. NULL (with *err, caller frees) when libcurl or
 * the thread cannot start. */
http_client *http_client_new(char **err);

/* Stops accepting requests, aborts every transfer, completes each pending
 * request (running, waiting for start_at, or just submitted) with
 * HTTP_RES_SHUTDOWN on the http thread, and joins it. Idempotent. Callbacks
 * that run during shutdown may call http_submit; it returns ST_UNAVAILABLE. */
void http_client_shutdown(http_client *c);
void http_client_free(http_client *c); /* shuts down first; NULL is a no-op */

/* Queues a request; done(result, user) runs later on the http thread. On
 * ST_OK *id_out (may be NULL) gets the transfer's id (never 0) for
 * http_cancel. ST_UNAVAILABLE once shutdown has begun: done is not called.
 * Everything in req is copied. */
status http_submit(http_client *c, const http_request *req, http_done_fn done, void *user,
                   uint64_t *id_out);

/* Aborts a transfer (its connection is closed); its callback runs soon with
 * HTTP_RES_CANCELLED, unless it already ran or is running. An unknown or
 * finished id is a no-op. Any thread. */
void http_cancel(http_client *c, uint64_t id);

/* ---- counters per upstream, for /metrics and GetStatus ---- */

enum { HTTP_LATENCY_BUCKETS = 13 };
/* Upper bounds in seconds (.005 ... 10, 30, 60; +Inf implied). */
extern const double http_latency_bounds[HTTP_LATENCY_BUCKETS];

typedef struct http_upstream_stats {
    const char *upstream;
    uint64_t results[HTTP_RES_COUNT];          /* completed transfers by kind */
    uint64_t status[6];                        /* HTTP_RES_OK by status class: [1] 1xx ... [5] 5xx,
                                                * [0] anything else */
    uint64_t status_429;                       /* included in status[4] */
    int64_t inflight;                          /* submitted, not yet completed */
    uint64_t bucket[HTTP_LATENCY_BUCKETS + 1]; /* non-cumulative; last = +Inf */
    double latency_sum_s;
} http_upstream_stats;

/* Calls fn once per upstream seen so far, with a snapshot read counter by
 * counter without a lock. Any thread. */
void http_client_stats(http_client *c, void (*fn)(const http_upstream_stats *st, void *user),
                       void *user);

/* ---- pure helpers ---- */

/* Parses a Retry-After value: delay-seconds ("120") or an HTTP date
 * ("Sun, 06 Nov 1994 08:49:37 GMT", and the obsolete RFC 850 and asctime
 * forms), the latter against now_real_ms (epoch ms). Returns the delay in
 * ms (0 for a date in the past), or -1 when the value is malformed. Delays
 * are capped at one day. */
int64_t http_retry_after_ms(const char *value, int64_t now_real_ms);

/* Index into http_upstream_stats.bucket for a transfer of seconds. */
int http_latency_bucket(double seconds);

#endif
