/* fake_llm.h - a scripted HTTP/1.1 server on 127.0.0.1 for the http and llm
 * tests: speaks enough of OpenAI's chat-completions format, and records what
 * it saw (requests, and clients that closed a connection while a reply was
 * pending: the "upstream sees the connection closed" checks).
 *
 * It runs in its own thread inside the test process, polls non-blocking
 * sockets and streams large bodies from a small buffer, so a 20 MiB reply
 * costs the server no memory (RSS checks measure the client).
 *
 * Replies: each request takes the next queued fake_llm_reply (FIFO), or the
 * default one when the queue is empty; a request header "X-Fake-Delay-Ms: N"
 * overrides that reply's delay (a fast call among slow ones). A connection serves requests one
 * after another (keep-alive) until the client closes it.
 *
 * Threads: every function may be called from any thread. */
#ifndef HERALD_FAKE_LLM_H
#define HERALD_FAKE_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fake_llm fake_llm;

typedef struct fake_llm_reply {
    int status;          /* 0 = 200 */
    const char *headers; /* extra header lines, each ending in "\r\n"; may be NULL */
    const char *body;    /* the body as is; NULL = a chat completion of `content` */
    const char *content; /* NULL = "Fake reply <n>" with n the request's number (from 1) */
    size_t filler_bytes; /* > 0: a body of this many filler bytes instead */
    bool chunked;        /* Transfer-Encoding: chunked instead of Content-Length */
    int delay_ms;        /* wait this long before the status line */
    bool close_no_reply; /* read the request, then close without a reply */
} fake_llm_reply;

/* Listens on 127.0.0.1 at a free port. NULL on failure (reason on stderr). */
fake_llm *fake_llm_start(void);
/* Stops the thread and closes every socket. NULL is a no-op. */
void fake_llm_stop(fake_llm *f);

int fake_llm_port(const fake_llm *f);
/* "http://127.0.0.1:PORT/v1/chat/completions" into buf. */
const char *fake_llm_url(const fake_llm *f, char *buf, size_t cap);

void fake_llm_push(fake_llm *f, const fake_llm_reply *r); /* copied */
void fake_llm_set_default(fake_llm *f, const fake_llm_reply *r);

/* Complete requests received so far (numbered from 1 in arrival order). */
int fake_llm_requests(fake_llm *f);
/* Copies of request n's method, path, body, or the value of its header
 * (name case-insensitive); NULL when absent. The caller frees. */
char *fake_llm_request_body(fake_llm *f, int n);
char *fake_llm_request_header(fake_llm *f, int n, const char *name);
char *fake_llm_request_line(fake_llm *f, int n); /* "POST /v1/chat/completions" */
/* now_mono_ms() when request n was complete; -1 if none. */
int64_t fake_llm_request_time(fake_llm *f, int n);

/* The most requests that were awaiting (or receiving) their reply at once. */
int fake_llm_max_pending(fake_llm *f);
/* Connections a client closed while their reply was pending or being sent,
 * and the now_mono_ms() of the latest such close. */
int fake_llm_aborts(fake_llm *f);
/* Waits up to timeout_ms for the abort count to reach n; returns the time
 * of the n-th abort (now_mono_ms clock) or -1 on timeout. */
int64_t fake_llm_wait_aborts(fake_llm *f, int n, int timeout_ms);
/* Connections currently open. */
int fake_llm_open_connections(fake_llm *f);

#endif
