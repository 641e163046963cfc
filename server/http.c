/* http.c - outbound HTTP on one curl-multi thread (see http.h).
 *
 * The only user of libcurl. Submitters hand a copied request to the http
 * thread through a mutex-protected queue and wake it with
 * curl_multi_wakeup; the thread owns every easy handle and the lists of
 * running and delayed transfers, so nothing it walks is shared. */
#include "http.h"

#include <assert.h>
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "util.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_CONNECT_TIMEOUT_MS 2000
#define DEFAULT_MAX_RESPONSE_BYTES ((size_t)1 << 20)
#define MAX_UPSTREAMS 16
#define UPSTREAM_NAME_MAX 32
#define MAX_HEADERS 64
#define MAX_HEADER_BYTES ((size_t)16 * 1024)
#define IDLE_POLL_MS 1000
#define ONE_DAY_MS ((int64_t)24 * 3600 * 1000)

/* clang-format off */
const double http_latency_bounds[HTTP_LATENCY_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};
/* clang-format on */

typedef struct upstream {
    char name[UPSTREAM_NAME_MAX]; /* written once, before n_ups publishes it */
    _Atomic uint64_t results[HTTP_RES_COUNT];
    _Atomic uint64_t status[6];
    _Atomic uint64_t status_429;
    _Atomic int64_t inflight;
    _Atomic uint64_t bucket[HTTP_LATENCY_BUCKETS + 1];
    _Atomic uint64_t latency_sum_us;
} upstream;

typedef struct hdr_off {
    size_t name, value; /* offsets into xfer.hstore */
} hdr_off;

typedef struct xfer {
    struct xfer *next, *prev; /* in exactly one list: queue, delayed or active */
    uint64_t id;
    upstream *up;
    http_done_fn done;
    void *user;

    /* the request (owned copies) */
    char *method;
    char *url;
    struct curl_slist *headers;
    char *body;
    size_t body_len;
    int64_t deadline_ms, timeout_ms, connect_timeout_ms, start_at_ms;
    size_t max_bytes;
    bool no_reuse;

    /* the transfer (http thread only) */
    CURL *easy;
    int64_t started_ms; /* 0 until started */
    bool deadline_hit;  /* a timeout fired at (or after) the deadline */
    bool got_response;  /* a status line arrived */
    int cur_status;     /* of the latest status line (1xx included) */
    bool too_large;
    strbuf resp;
    strbuf hstore; /* "name\0value\0" pairs of the latest response */
    hdr_off hoff[MAX_HEADERS];
    size_t n_hdr;
    char errbuf[CURL_ERROR_SIZE];
} xfer;

typedef struct xlist {
    xfer *head, *tail;
} xlist;

struct http_client {
    pthread_t thread;
    bool thread_started;
    bool joined; /* shutdown finished (caller side only) */
    CURLM *multi;

    pthread_mutex_t mu; /* protects stopping, queue, cancels, next_id and adding upstreams */
    bool stopping;
    xlist queue; /* submitted, not yet taken by the http thread */
    uint64_t *cancels;
    size_t n_cancels, cap_cancels;
    uint64_t next_id;

    upstream ups[MAX_UPSTREAMS];
    _Atomic size_t n_ups; /* entries [0, n_ups) are published */

    /* http thread only */
    xlist delayed; /* waiting for start_at_ms */
    xlist active;  /* added to the multi handle */
};

/* ---- small helpers ---- */

const char *http_result_name(http_result_kind k)
{
    switch (k) {
    case HTTP_RES_OK:
        return "ok";
    case HTTP_RES_CONNECT:
        return "connect";
    case HTTP_RES_TIMEOUT_UNSENT:
        return "timeout_unsent";
    case HTTP_RES_TIMEOUT_SENT:
        return "timeout_sent";
    case HTTP_RES_RESET:
        return "reset";
    case HTTP_RES_TOO_LARGE:
        return "too_large";
    case HTTP_RES_CANCELLED:
        return "cancelled";
    case HTTP_RES_SHUTDOWN:
        return "shutdown";
    case HTTP_RES_ERROR:
        return "error";
    }
    return "unknown";
}

int http_latency_bucket(double seconds)
{
    for (int i = 0; i < HTTP_LATENCY_BUCKETS; i++)
        if (seconds <= http_latency_bounds[i])
            return i;
    return HTTP_LATENCY_BUCKETS;
}

const char *http_result_header(const http_result *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static void xlist_push(xlist *l, xfer *x)
{
    x->next = NULL;
    x->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = x;
    else
        l->head = x;
    l->tail = x;
}

static void xlist_remove(xlist *l, xfer *x)
{
    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        l->head = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    else
        l->tail = x->prev;
    x->next = x->prev = NULL;
}

static xfer *xlist_pop(xlist *l)
{
    xfer *x = l->head;
    if (x == NULL)
        return NULL;
    l->head = x->next;
    if (l->head != NULL)
        l->head->prev = NULL;
    else
        l->tail = NULL;
    x->next = x->prev = NULL;
    return x;
}

static xfer *xlist_find(const xlist *l, uint64_t id)
{
    for (xfer *x = l->head; x != NULL; x = x->next)
        if (x->id == id)
            return x;
    return NULL;
}

static void xfer_free(xfer *x)
{
    if (x == NULL)
        return;
    curl_slist_free_all(x->headers);
    free(x->method);
    free(x->url);
    free(x->body);
    strbuf_fini(&x->resp);
    strbuf_fini(&x->hstore);
    free(x);
}

/* Finds or adds the counters of an upstream. Caller holds c->mu. When the
 * table is full, the last slot ("other") takes everything else. */
static upstream *upstream_get(http_client *c, const char *name)
{
    size_t n = atomic_load(&c->n_ups);
    for (size_t i = 0; i < n; i++)
        if (strcmp(c->ups[i].name, name) == 0)
            return &c->ups[i];
    if (n == MAX_UPSTREAMS - 1) {
        (void)snprintf(c->ups[n].name, sizeof c->ups[n].name, "other");
        atomic_store(&c->n_ups, n + 1);
        return &c->ups[n];
    }
    if (n == MAX_UPSTREAMS)
        return &c->ups[n - 1];
    (void)snprintf(c->ups[n].name, sizeof c->ups[n].name, "%s", name);
    atomic_store(&c->n_ups, n + 1);
    return &c->ups[n];
}

/* ---- completion ---- */

static void count_result(const xfer *x, http_result_kind kind, int status_code, int64_t elapsed_ms)
{
    upstream *u = x->up;
    atomic_fetch_add(&u->results[kind], 1);
    if (kind == HTTP_RES_OK) {
        int cls = status_code / 100;
        atomic_fetch_add(&u->status[cls >= 1 && cls <= 5 ? cls : 0], 1);
        if (status_code == 429)
            atomic_fetch_add(&u->status_429, 1);
    }
    if (x->started_ms != 0) {
        double s = (double)elapsed_ms / 1000.0;
        atomic_fetch_add(&u->bucket[http_latency_bucket(s)], 1);
        atomic_fetch_add(&u->latency_sum_us, (uint64_t)(elapsed_ms > 0 ? elapsed_ms : 0) * 1000);
    }
    atomic_fetch_sub(&u->inflight, 1);
}

/* Runs the callback and frees x. x is in no list and not in the multi. */
static void xfer_complete(xfer *x, http_result_kind kind, int status_code, bool sent,
                          const char *error)
{
    http_header hdrs[MAX_HEADERS];
    http_result r;
    int64_t elapsed = x->started_ms != 0 ? now_mono_ms() - x->started_ms : 0;

    memset(&r, 0, sizeof r);
    r.id = x->id;
    r.kind = kind;
    r.status = kind == HTTP_RES_OK ? status_code : 0;
    r.request_sent = sent;
    r.deadline_hit =
        (kind == HTTP_RES_TIMEOUT_SENT || kind == HTTP_RES_TIMEOUT_UNSENT) && x->deadline_hit;
    r.body = x->resp.data != NULL ? x->resp.data : "";
    r.body_len = x->resp.len;
    if (kind == HTTP_RES_OK) {
        for (size_t i = 0; i < x->n_hdr; i++) {
            hdrs[i].name = x->hstore.data + x->hoff[i].name;
            hdrs[i].value = x->hstore.data + x->hoff[i].value;
        }
        r.headers = hdrs;
        r.n_headers = x->n_hdr;
    }
    r.error = kind == HTTP_RES_OK ? NULL : error;
    r.elapsed_ms = elapsed;

    count_result(x, kind, status_code, elapsed);
    x->done(&r, x->user);
    xfer_free(x);
}

/* Takes a transfer out of the multi handle, which aborts it if it is still
 * running (libcurl closes a connection whose response is incomplete). */
static void easy_release(http_client *c, xfer *x)
{
    curl_multi_remove_handle(c->multi, x->easy);
    curl_easy_cleanup(x->easy);
    x->easy = NULL;
}

/* Aborts a running transfer and completes it. */
static void active_abort(http_client *c, xfer *x, http_result_kind kind, const char *error)
{
    xlist_remove(&c->active, x);
    easy_release(c, x);
    xfer_complete(x, kind, 0, false, error);
}

/* ---- curl callbacks (http thread) ---- */

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;

    /* Invariant: resp.len <= max_bytes, so the subtraction cannot wrap. */
    if (n > x->max_bytes - x->resp.len) {
        x->too_large = true;
        return 0; /* != n: libcurl aborts with CURLE_WRITE_ERROR */
    }
    strbuf_append(&x->resp, ptr, n);
    return n;
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && isspace((unsigned char)(*s)[0])) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    xfer *x = ud;
    size_t n = size * nitems;

    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        /* A new response (after a 1xx, say): only the last one's headers count. */
        const char *sp = memchr(buf, ' ', n);
        x->cur_status = 0;
        if (sp != NULL && (size_t)(sp - buf) + 4 <= n && isdigit((unsigned char)sp[1]) &&
            isdigit((unsigned char)sp[2]) && isdigit((unsigned char)sp[3]))
            x->cur_status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
        x->got_response = true;
        x->n_hdr = 0;
        strbuf_reset(&x->hstore);
        return n;
    }
    const char *colon = memchr(buf, ':', n);
    if (colon == NULL)
        return n; /* the blank line ending the headers, or an obsolete folded line */
    const char *name = buf;
    size_t name_len = (size_t)(colon - buf);
    const char *val = colon + 1;
    size_t val_len = n - name_len - 1;
    trim(&name, &name_len);
    trim(&val, &val_len);

    if (x->cur_status >= 200 && name_len == 14 && strncasecmp(name, "content-length", 14) == 0) {
        /* Refuse a declared oversize body before any of it arrives. */
        uint64_t declared = 0;
        size_t i = 0;
        for (; i < val_len && i < 19 && isdigit((unsigned char)val[i]); i++)
            declared = declared * 10 + (uint64_t)(val[i] - '0');
        bool all_digits = i == val_len || (i == 19 && isdigit((unsigned char)val[i]));
        if (val_len > 0 && all_digits && (val_len > 18 || declared > x->max_bytes)) {
            x->too_large = true;
            return 0;
        }
    }
    if (x->n_hdr < MAX_HEADERS && x->hstore.len + name_len + val_len + 2 <= MAX_HEADER_BYTES) {
        size_t off = x->hstore.len;
        for (size_t i = 0; i < name_len; i++)
            strbuf_putc(&x->hstore, (char)tolower((unsigned char)name[i]));
        strbuf_putc(&x->hstore, '\0');
        x->hoff[x->n_hdr].name = off;
        x->hoff[x->n_hdr].value = x->hstore.len;
        strbuf_append(&x->hstore, val, val_len);
        strbuf_putc(&x->hstore, '\0');
        x->n_hdr++;
    }
    return n;
}

/* ---- starting and finishing transfers (http thread) ---- */

static void xfer_start(http_client *c, xfer *x)
{
    int64_t now = now_mono_ms();
    int64_t total = x->timeout_ms;

    if (x->deadline_ms != 0) {
        int64_t rem = x->deadline_ms - now;
        if (rem <= 0) {
            x->deadline_hit = true;
            xfer_complete(x, HTTP_RES_TIMEOUT_UNSENT, 0, false,
                          "deadline passed before the request started");
            return;
        }
        if (rem < total)
            total = rem;
    }
    int64_t connect = x->connect_timeout_ms < total ? x->connect_timeout_ms : total;

    CURL *e = curl_easy_init();
    if (e == NULL) {
        xfer_complete(x, HTTP_RES_ERROR, 0, false, "cannot create a transfer");
        return;
    }
    x->easy = e;
    x->started_ms = now;
    x->errbuf[0] = '\0';

    /* Return codes of curl_easy_setopt are collected rather than checked one
     * by one: any failure here is a libcurl build without a feature we rely
     * on, reported as HTTP_RES_ERROR. */
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                \
    do {                                             \
        CURLcode r_ = curl_easy_setopt(e, opt, val); \
        if (r_ != CURLE_OK && rc == CURLE_OK)        \
            rc = r_;                                 \
    } while (0)
    SET(CURLOPT_URL, x->url);
    SET(CURLOPT_PRIVATE, (void *)x);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_TIMEOUT_MS, (long)total);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)connect);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, (void *)x);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, (void *)x);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_bytes);
    SET(CURLOPT_ACCEPT_ENCODING, ""); /* the byte cap applies to the decoded body */
    SET(CURLOPT_USERAGENT, "herald/1");
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_FRESH_CONNECT, x->no_reuse ? 1L : 0L);
    SET(CURLOPT_FORBID_REUSE, x->no_reuse ? 1L : 0L);
    SET(CURLOPT_HTTPHEADER, x->headers);
    if (strcmp(x->method, "GET") == 0) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(x->method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else {
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDS, x->body != NULL ? x->body : "");
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
        if (strcmp(x->method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, x->method);
    }
#undef SET
    if (rc != CURLE_OK) {
        x->easy = NULL;
        curl_easy_cleanup(e);
        xfer_complete(x, HTTP_RES_ERROR, 0, false, curl_easy_strerror(rc));
        return;
    }
    CURLMcode mrc = curl_multi_add_handle(c->multi, e);
    if (mrc != CURLM_OK) {
        x->easy = NULL;
        curl_easy_cleanup(e);
        xfer_complete(x, HTTP_RES_ERROR, 0, false, curl_multi_strerror(mrc));
        return;
    }
    xlist_push(&c->active, x);
}

static http_result_kind classify(CURLcode rc, bool too_large, bool sent)
{
    if (rc == CURLE_OK)
        return HTTP_RES_OK;
    if (too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return HTTP_RES_TOO_LARGE;
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return sent ? HTTP_RES_TIMEOUT_SENT : HTTP_RES_TIMEOUT_UNSENT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
        return HTTP_RES_CONNECT;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        return HTTP_RES_RESET;
    default:
        return HTTP_RES_ERROR;
    }
}

static void xfer_finish(http_client *c, xfer *x, CURLcode rc)
{
    long code = 0, reqsize = 0;
    curl_off_t uploaded = 0;
    char msg[CURL_ERROR_SIZE + 64];

    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &reqsize);
    curl_easy_getinfo(x->easy, CURLINFO_SIZE_UPLOAD_T, &uploaded);
    /* The whole request left us when the header bytes went out and the body
     * counter reached its length; a response proves it too. */
    bool sent = x->got_response || (reqsize > 0 && uploaded >= (curl_off_t)x->body_len);

    xlist_remove(&c->active, x);
    easy_release(c, x);

    http_result_kind kind = classify(rc, x->too_large, sent);
    /* A connect timeout well before the deadline is the cap's doing; libcurl's
     * timers are exact to a millisecond or two. */
    if (x->deadline_ms != 0 && now_mono_ms() >= x->deadline_ms - 5)
        x->deadline_hit = true;
    if (kind == HTTP_RES_TOO_LARGE) {
        (void)snprintf(msg, sizeof msg, "response body larger than %zu bytes", x->max_bytes);
    } else if (kind == HTTP_RES_TIMEOUT_SENT || kind == HTTP_RES_TIMEOUT_UNSENT) {
        (void)snprintf(msg, sizeof msg, "%s after %lld ms (%s)",
                       kind == HTTP_RES_TIMEOUT_SENT ? "no complete response" : "not sent",
                       (long long)(now_mono_ms() - x->started_ms),
                       x->deadline_hit ? "deadline" : "timeout cap");
    } else {
        (void)snprintf(msg, sizeof msg, "%s",
                       x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(rc));
        size_t l = strlen(msg);
        while (l > 0 && (msg[l - 1] == '\n' || msg[l - 1] == '\r'))
            msg[--l] = '\0';
    }
    xfer_complete(x, kind, (int)code, sent, msg);
}

/* ---- the thread ---- */

static void start_due(http_client *c)
{
    int64_t now = now_mono_ms();
    xfer *x = c->delayed.head;
    while (x != NULL) {
        xfer *next = x->next;
        if (x->start_at_ms <= now) {
            xlist_remove(&c->delayed, x);
            xfer_start(c, x);
        }
        x = next;
    }
}

static void cancel_one(http_client *c, uint64_t id)
{
    xfer *x = xlist_find(&c->active, id);
    if (x != NULL) {
        active_abort(c, x, HTTP_RES_CANCELLED, "cancelled");
        return;
    }
    x = xlist_find(&c->delayed, id);
    if (x != NULL) {
        xlist_remove(&c->delayed, x);
        xfer_complete(x, HTTP_RES_CANCELLED, 0, false, "cancelled");
    }
}

static void *http_thread(void *arg)
{
    http_client *c = arg;
    uint64_t *cancels = NULL;
    size_t n_cancels = 0, cap_cancels = 0;

    for (;;) {
        pthread_mutex_lock(&c->mu);
        bool stop = c->stopping;
        xlist q = c->queue;
        c->queue.head = c->queue.tail = NULL;
        /* Swap the cancel arrays so the submitters never wait on our work. */
        uint64_t *tmp = cancels;
        size_t tmp_cap = cap_cancels;
        cancels = c->cancels;
        n_cancels = c->n_cancels;
        cap_cancels = c->cap_cancels;
        c->cancels = tmp;
        c->cap_cancels = tmp_cap;
        c->n_cancels = 0;
        pthread_mutex_unlock(&c->mu);

        /* Taken transfers go to delayed/active first so that a cancel, or
         * the shutdown below, finds them. */
        int64_t now = now_mono_ms();
        while (q.head != NULL) {
            xfer *x = q.head;
            xlist_remove(&q, x);
            if (stop || x->start_at_ms > now)
                xlist_push(&c->delayed, x); /* at shutdown: completed below */
            else
                xfer_start(c, x);
        }
        if (stop)
            break;
        for (size_t i = 0; i < n_cancels; i++)
            cancel_one(c, cancels[i]);
        start_due(c);

        int running = 0;
        curl_multi_perform(c->multi, &running);
        CURLMsg *m;
        int left = 0;
        while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            char *priv = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
            xfer *x = (xfer *)(void *)priv;
            /* m is invalid once the handle is removed: take the code first. */
            CURLcode rc = m->data.result;
            xfer_finish(c, x, rc);
        }

        int wait_ms = IDLE_POLL_MS;
        now = now_mono_ms();
        for (xfer *x = c->delayed.head; x != NULL; x = x->next) {
            int64_t d = x->start_at_ms - now;
            if (d < wait_ms)
                wait_ms = d < 0 ? 0 : (int)d;
        }
        curl_multi_poll(c->multi, NULL, 0, wait_ms, NULL);
    }

    /* Shutdown: everything still pending ends with HTTP_RES_SHUTDOWN. */
    xfer *x;
    while ((x = xlist_pop(&c->active)) != NULL) {
        easy_release(c, x);
        xfer_complete(x, HTTP_RES_SHUTDOWN, 0, false, "shutting down");
    }
    while ((x = xlist_pop(&c->delayed)) != NULL)
        xfer_complete(x, HTTP_RES_SHUTDOWN, 0, false, "shutting down");
    free(cancels);
    return NULL;
}

/* ---- public API ---- */

status http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? ST_OK : ST_INTERNAL;
}

void http_global_fini(void)
{
    curl_global_cleanup();
}

http_client *http_client_new(char **err)
{
    http_client *c = xcalloc(1, sizeof *c);

    *err = NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->next_id = 1;
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        *err = xstrdup("curl_multi_init failed");
        goto fail;
    }
    int rc = pthread_create(&c->thread, NULL, http_thread, c);
    if (rc != 0) {
        *err = xasprintf("cannot start the http thread: %s", strerror(rc));
        goto fail;
    }
    c->thread_started = true;
    return c;
fail:
    if (c->multi != NULL)
        curl_multi_cleanup(c->multi);
    pthread_mutex_destroy(&c->mu);
    free(c);
    return NULL;
}

void http_client_shutdown(http_client *c)
{
    if (c == NULL || c->joined)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    curl_multi_wakeup(c->multi);
    pthread_mutex_unlock(&c->mu);
    if (c->thread_started)
        pthread_join(c->thread, NULL);
    c->joined = true;
}

void http_client_free(http_client *c)
{
    if (c == NULL)
        return;
    http_client_shutdown(c);
    curl_multi_cleanup(c->multi);
    free(c->cancels);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static bool header_line_ok(const char *h)
{
    const char *colon = strchr(h, ':');
    if (colon == NULL || colon == h)
        return false;
    for (const char *p = h; *p != '\0'; p++)
        if (*p == '\r' || *p == '\n')
            return false; /* header injection */
    return true;
}

static bool method_ok(const char *m)
{
    if (m[0] == '\0' || strlen(m) > 16)
        return false;
    for (const char *p = m; *p != '\0'; p++)
        if (!isupper((unsigned char)*p))
            return false;
    return true;
}

status http_submit(http_client *c, const http_request *req, http_done_fn done, void *user,
                   uint64_t *id_out)
{
    xfer *x = NULL;

    if (id_out != NULL)
        *id_out = 0;
    assert(c != NULL && req != NULL && done != NULL);
    if (req->url == NULL ||
        (strncmp(req->url, "http://", 7) != 0 && strncmp(req->url, "https://", 8) != 0))
        return ST_INVALID;
    if (req->method != NULL && !method_ok(req->method))
        return ST_INVALID;
    for (size_t i = 0; i < req->n_headers; i++)
        if (!header_line_ok(req->headers[i]))
            return ST_INVALID;

    x = xcalloc(1, sizeof *x);
    x->done = done;
    x->user = user;
    x->url = xstrdup(req->url);
    x->method = xstrdup(req->method != NULL ? req->method : req->body_len > 0 ? "POST" : "GET");
    for (size_t i = 0; i < req->n_headers; i++) {
        struct curl_slist *l = curl_slist_append(x->headers, req->headers[i]);
        if (l == NULL)
            abort(); /* out of memory, as xmalloc */
        x->headers = l;
    }
    if (x->method[0] == 'P') {
        /* No "Expect: 100-continue" round trip (a second of delay with servers
         * that ignore it). */
        struct curl_slist *l = curl_slist_append(x->headers, "Expect:");
        if (l == NULL)
            abort();
        x->headers = l;
    }
    if (req->body_len > 0) {
        x->body = xmalloc(req->body_len + 1);
        memcpy(x->body, req->body, req->body_len);
        x->body[req->body_len] = '\0';
        x->body_len = req->body_len;
    }
    x->deadline_ms = req->deadline_ms;
    x->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
    x->connect_timeout_ms =
        req->connect_timeout_ms > 0 ? req->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    x->max_bytes =
        req->max_response_bytes > 0 ? req->max_response_bytes : DEFAULT_MAX_RESPONSE_BYTES;
    x->start_at_ms = req->start_at_ms;
    x->no_reuse = req->no_reuse;

    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        xfer_free(x);
        return ST_UNAVAILABLE;
    }
    x->id = c->next_id++;
    x->up = upstream_get(c, req->upstream != NULL && req->upstream[0] != '\0' ? req->upstream
                                                                              : "default");
    atomic_fetch_add(&x->up->inflight, 1);
    xlist_push(&c->queue, x);
    if (id_out != NULL)
        *id_out = x->id;
    /* Under the lock: shutdown sets stopping under it before the multi
     * handle can go away. */
    curl_multi_wakeup(c->multi);
    pthread_mutex_unlock(&c->mu);
    return ST_OK;
}

void http_cancel(http_client *c, uint64_t id)
{
    if (c == NULL || id == 0)
        return;
    pthread_mutex_lock(&c->mu);
    if (!c->stopping) {
        if (c->n_cancels == c->cap_cancels) {
            c->cap_cancels = c->cap_cancels != 0 ? 2 * c->cap_cancels : 16;
            c->cancels = xrealloc(c->cancels, c->cap_cancels * sizeof *c->cancels);
        }
        c->cancels[c->n_cancels++] = id;
        curl_multi_wakeup(c->multi);
    }
    pthread_mutex_unlock(&c->mu);
}

void http_client_stats(http_client *c, void (*fn)(const http_upstream_stats *st, void *user),
                       void *user)
{
    size_t n = atomic_load(&c->n_ups);
    for (size_t i = 0; i < n; i++) {
        upstream *u = &c->ups[i];
        http_upstream_stats st;
        memset(&st, 0, sizeof st);
        st.upstream = u->name;
        for (int k = 0; k < HTTP_RES_COUNT; k++)
            st.results[k] = atomic_load(&u->results[k]);
        for (int k = 0; k < 6; k++)
            st.status[k] = atomic_load(&u->status[k]);
        st.status_429 = atomic_load(&u->status_429);
        st.inflight = atomic_load(&u->inflight);
        for (int k = 0; k <= HTTP_LATENCY_BUCKETS; k++)
            st.bucket[k] = atomic_load(&u->bucket[k]);
        st.latency_sum_s = (double)atomic_load(&u->latency_sum_us) / 1e6;
        fn(&st, user);
    }
}

/* ---- Retry-After ---- */

static int month_index(const char *s)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int i = 0; i < 12; i++)
        if (strncmp(s, months + (size_t)3 * (size_t)i, 3) == 0)
            return i;
    return -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Reads exactly n digits at *p. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool lit(const char **p, const char *s)
{
    size_t n = strlen(s);
    if (strncmp(*p, s, n) != 0)
        return false;
    *p += n;
    return true;
}

static bool hms(const char **p, int *h, int *mi, int *s)
{
    return digits(p, 2, h) && lit(p, ":") && digits(p, 2, mi) && lit(p, ":") && digits(p, 2, s) &&
           *h <= 23 && *mi <= 59 && *s <= 60;
}

/* An HTTP date (RFC 9110 §5.6.7) as epoch seconds, or false. */
static bool parse_http_date(const char *v, int64_t *epoch_s)
{
    const char *p = v;
    int day = 0, mon = -1, year = 0, h = 0, mi = 0, s = 0;
    const char *comma = strchr(v, ',');

    if (comma != NULL && comma - v == 3) {
        /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
        p = comma + 1;
        if (!lit(&p, " ") || !digits(&p, 2, &day) || !lit(&p, " "))
            return false;
        mon = month_index(p);
        p += mon >= 0 ? 3 : 0;
        if (mon < 0 || !lit(&p, " ") || !digits(&p, 4, &year) || !lit(&p, " ") ||
            !hms(&p, &h, &mi, &s) || !lit(&p, " GMT"))
            return false;
    } else if (comma != NULL) {
        /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
        int yy = 0;
        p = comma + 1;
        if (!lit(&p, " ") || !digits(&p, 2, &day) || !lit(&p, "-"))
            return false;
        mon = month_index(p);
        p += mon >= 0 ? 3 : 0;
        if (mon < 0 || !lit(&p, "-") || !digits(&p, 2, &yy) || !lit(&p, " ") ||
            !hms(&p, &h, &mi, &s) || !lit(&p, " GMT"))
            return false;
        year = yy < 70 ? 2000 + yy : 1900 + yy; /* RFC 9110: 50 years ahead rule, simplified */
    } else {
        /* asctime: "Sun Nov  6 08:49:37 1994" */
        if (strlen(v) < 4 || v[3] != ' ')
            return false;
        p = v + 4;
        mon = month_index(p);
        p += mon >= 0 ? 3 : 0;
        if (mon < 0 || !lit(&p, " "))
            return false;
        if (*p == ' ') {
            p++;
            if (!digits(&p, 1, &day))
                return false;
        } else if (!digits(&p, 2, &day)) {
            return false;
        }
        if (!lit(&p, " ") || !hms(&p, &h, &mi, &s) || !lit(&p, " ") || !digits(&p, 4, &year))
            return false;
    }
    if (*p != '\0' || day < 1 || day > 31)
        return false;
    *epoch_s =
        days_from_civil(year, mon + 1, day) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + s;
    return true;
}

int64_t http_retry_after_ms(const char *value, int64_t now_real_ms)
{
    if (value == NULL)
        return -1;
    const char *v = value;
    size_t n = strlen(v);
    trim(&v, &n);
    if (n == 0 || n > 64)
        return -1;
    char buf[65];
    memcpy(buf, v, n);
    buf[n] = '\0';

    if (isdigit((unsigned char)buf[0])) {
        int64_t secs = 0;
        for (size_t i = 0; i < n; i++) {
            if (!isdigit((unsigned char)buf[i]))
                return -1;
            if (secs < ONE_DAY_MS) /* saturate: the cap below applies */
                secs = secs * 10 + (buf[i] - '0');
        }
        int64_t ms = secs * 1000;
        return ms > ONE_DAY_MS ? ONE_DAY_MS : ms;
    }
    int64_t epoch_s;
    if (!parse_http_date(buf, &epoch_s))
        return -1;
    int64_t ms = epoch_s * 1000 - now_real_ms;
    if (ms < 0)
        return 0;
    return ms > ONE_DAY_MS ? ONE_DAY_MS : ms;
}
