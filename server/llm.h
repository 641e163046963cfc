/* llm.h - the LLM provider: an OpenAI-compatible chat-completions client.
 *
 * llm_generate() builds a prompt from catalog entries (content type, voice
 * style, topic and the topic's facts), the platform's length limit and the
 * rules the gates enforce, sends it over http.h (the process's curl-multi
 * thread) and calls back with the post text or a status. Nothing blocks: a
 * GenerateDraft handler detaches its gRPC call, calls llm_generate, returns,
 * and finishes the call from the callback (or hands the result to a worker).
 * The fallback to the built-in generator, and the gates, belong to the
 * handler: llm_result says what happened and why.
 *
 * Retries: HTTP 429, 408 and 5xx, connection failures and resets, and an
 * attempt that hit the per-attempt cap are retried up to max_attempts, with
 * jittered exponential backoff, or after Retry-After (seconds or an HTTP
 * date) when the upstream sends one, but only when the next attempt can
 * start comfortably before the deadline: no attempt runs past it.
 *
 * Results (llm_result.st; error_code is for ErrorInfo.reason):
 *   ST_OK                  text holds the post (trimmed, valid UTF-8)
 *   ST_TIMEOUT             the deadline cut the call; its transfer was
 *                          aborted (the upstream sees the connection close)
 *                          LLM_TIMEOUT
 *   ST_UNAVAILABLE         429 that cannot be retried in time (LLM_RATE_LIMITED;
 *                          retry_delay_ms from Retry-After: send RetryInfo, never
 *                          RESOURCE_EXHAUSTED, conventions §3), 5xx, connection
 *                          failure or per-attempt timeout after the last try
 *                          (LLM_UNAVAILABLE), the http client shutting down
 *                          (LLM_SHUTDOWN)
 *   ST_INTERNAL            malformed response JSON, no text, text cut at the
 *                          token limit (LLM_BAD_RESPONSE); body over the byte
 *                          cap (LLM_RESPONSE_TOO_LARGE); another 4xx, which
 *                          means we sent something wrong (LLM_REJECTED)
 *   ST_FAILED_PRECONDITION 401/403 (LLM_AUTH: the configured key is wrong),
 *                          404 (LLM_NOT_FOUND: URL or model), a redirect
 *                          (LLM_REDIRECT): Herald's configuration must change
 *   ST_CANCELLED           llm_cancel (LLM_CANCELLED)
 * Reasons are for humans and never hold the API key, the prompt or the
 * response text; an upstream error message is quoted only after the key is
 * masked out of it and control characters are removed.
 *
 * Threads. llm_new/llm_free from one thread (main). llm_generate and
 * llm_cancel from any thread. The callback runs on the http thread (see
 * http.h: keep it short, no blocking) exactly once per llm_generate that
 * returned ST_OK. Secrets: the API key is only ever put in the
 * Authorization header; this module never logs.
 *
 * Start-up and shutdown (main): http_global_init before any thread, then
 * http_client_new, llm_config_from + llm_new. At exit: rpc_server_shutdown
 * first (detached calls still finish from callbacks while the http thread
 * runs), then llm_free, http_client_free, http_global_fini. */
#ifndef HERALD_LLM_H
#define HERALD_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "http.h"
#include "platform.h"
#include "status.h"

struct config;

typedef struct llm_config {
    const char *url;            /* "http(s)://host/v1/chat/completions"; "" = not configured */
    const char *model;          /* "" = omitted from the request (servers with one model) */
    const char *api_key;        /* secret; "" = no Authorization header */
    int64_t timeout_ms;         /* cap per attempt (the deadline caps it too) */
    int64_t connect_timeout_ms; /* per attempt */
    size_t max_response_bytes;  /* response body cap */
    int max_attempts;           /* >= 1 */
    int64_t backoff_base_ms;    /* first retry waits up to this (jittered) */
    int64_t backoff_max_ms;     /* ... doubling up to this */
    double temperature;         /* < 0 = omitted */
} llm_config;

/* Defaults: not configured, timeout 20 s, connect 2 s, 1 MiB, 3 attempts,
 * backoff 250 ms .. 4 s, temperature 0.8. */
void llm_config_default(llm_config *c);
/* The llm.* settings of a loaded config (strings borrowed from cfg). */
void llm_config_from(llm_config *out, const struct config *cfg);

typedef struct llm_client llm_client; /* opaque */

/* A client over http (borrowed; must outlive it). cfg's strings are copied.
 * Never NULL; with an empty url llm_configured() is false and llm_generate
 * answers ST_FAILED_PRECONDITION. */
llm_client *llm_new(const llm_config *cfg, http_client *http);
/* Cancels every job still running, waits until each callback has run, then
 * frees. Not from a callback. NULL is a no-op. */
void llm_free(llm_client *c);

bool llm_configured(const llm_client *c);
const char *llm_model(const llm_client *c); /* configured model; "" when unset */

typedef struct llm_request {
    const catalog *cat;                /* banned phrases for the prompt; may be NULL */
    const catalog_entry *content_type; /* required */
    const catalog_entry *voice_style;  /* required */
    const catalog_entry *topic;        /* required */
    const catalog_fact *facts;         /* the topic's facts; disabled ones are skipped */
    size_t n_facts;
    const char *fact_key;    /* optional: offer only this fact */
    platform_id platform;    /* required */
    int min_chars;           /* bounds (generator_length_bounds); 0 = none */
    int max_chars;           /* 0 = the platform's limit */
    const char *avoid_text;  /* optional: a recent post the text must not resemble */
    const char *request_id;  /* optional: forwarded as X-Request-Id */
    const char *traceparent; /* optional: forwarded (W3C trace context) */
} llm_request;

typedef struct llm_result {
    uint64_t job;
    status st;
    const char *text; /* ST_OK: the post; else NULL */
    size_t len;
    const char *model;      /* as the endpoint reported it, else the configured one */
    const char *reason;     /* non-OK: for humans (see above); "" on OK */
    const char *error_code; /* non-OK: "LLM_TIMEOUT", ...; NULL on OK */
    int64_t retry_delay_ms; /* ST_UNAVAILABLE: a suggested retry delay; -1 none */
    int attempts;           /* HTTP requests made */
    int http_status;        /* of the last response; 0 when none */
    int64_t duration_ms;    /* from llm_generate to this callback */
} llm_result;

/* r and everything it points to are borrowed for the callback only. */
typedef void (*llm_done_fn)(const llm_result *r, void *user);

/* Starts a job that ends at deadline_ms (now_mono_ms() clock; 0 = none: each
 * attempt still has its cap). Leave the handler's own margin out of it (a
 * handler that falls back to the built-in generator on failure should pass
 * an earlier deadline than its call's). On ST_OK, done runs later on the
 * http thread and *job_out (may be NULL) holds an id for llm_cancel. Else
 * done is never called and err (errcap bytes, may be NULL) says why:
 *   ST_FAILED_PRECONDITION  no LLM configured
 *   ST_INVALID              a required request field is missing, no enabled
 *                           fact, unknown platform
 *   ST_TIMEOUT              the deadline has already passed
 *   ST_UNAVAILABLE          shutting down
 * req is borrowed for the call only (the prompt is built before returning). */
status llm_generate(llm_client *c, const llm_request *req, int64_t deadline_ms, llm_done_fn done,
                    void *user, uint64_t *job_out, char *err, size_t errcap);

/* Cancels a job (the gRPC call was cancelled): its transfer is aborted and
 * its callback runs soon with ST_CANCELLED, unless it already ran or is
 * running. Unknown ids are a no-op. Any thread, but not while holding a lock
 * the callback takes. */
void llm_cancel(llm_client *c, uint64_t job);

/* Jobs started and not yet called back. */
int llm_jobs_in_flight(llm_client *c);

/* ---- exposed for tests and tools ---- */

/* The request body llm_generate sends: a chat-completions JSON object with a
 * system message (the rules) and a user message (the entries, facts and
 * limits). NULL with ST_INVALID's reason in err when req is incomplete.
 * *len gets the length; the caller frees. */
char *llm_build_body(const llm_request *req, const char *model, double temperature, size_t *len,
                     char *err, size_t errcap);

/* Delay before retry number `retry` (1 = the first retry): exponential from
 * base to max, jittered uniformly over [half, full] by r01 in [0, 1); or,
 * when retry_after_ms >= 0, that plus up to 10% (at most 250 ms) of jitter. */
int64_t llm_backoff_ms(int retry, int64_t base_ms, int64_t max_ms, int64_t retry_after_ms,
                       double r01);

#endif
