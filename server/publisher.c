/* publisher.c - heraldd's built-in publisher (see publisher.h). */
#include "publisher.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "handler.h"
#include "log.h"
#include "policy.h"
#include "sched_store.h"
#include "util.h"

enum {
    DUE_PROFILES_MAX = 32,      /* profiles looked at per round */
    RESPONSE_MAX = 64 * 1024,   /* bytes of a target's reply we read */
    STOP_CANCEL_WAIT_MS = 5000, /* after cancelling, for the callbacks */
};

/* ---------------------------------------------------------------- pure helpers */

void publisher_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                           uint8_t out[32])
{
    uint8_t k[64], inner[32];
    uint8_t *buf = xmalloc(64 + (msg_len > 32 ? msg_len : 32));

    memset(k, 0, sizeof k);
    if (key_len > 64)
        db_sha256(key, key_len, k);
    else if (key_len > 0)
        memcpy(k, key, key_len);
    for (int i = 0; i < 64; i++)
        buf[i] = k[i] ^ 0x36;
    if (msg_len > 0)
        memcpy(buf + 64, msg, msg_len);
    db_sha256(buf, 64 + msg_len, inner);
    for (int i = 0; i < 64; i++)
        buf[i] = k[i] ^ 0x5c;
    memcpy(buf + 64, inner, 32);
    db_sha256(buf, 64 + 32, out);
    memset(k, 0, sizeof k);
    memset(buf, 0, 64);
    free(buf);
}

/* A JSON string at s (s[0] == '"') unescaped into out (cap, may be NULL
 * to skip); returns the position after it, or NULL when malformed or when
 * it does not fit. \u escapes outside ASCII are kept as "?". */
static const char *json_string(const char *s, const char *end, char *out, size_t cap)
{
    size_t o = 0;
    bool fits = true;
    for (s++; s < end; s++) {
        char c = *s;
        if (c == '"') {
            if (out != NULL)
                out[o < cap ? o : cap - 1] = '\0';
            return fits ? s + 1 : NULL;
        }
        if (c == '\\') {
            if (++s >= end)
                return NULL;
            switch (*s) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'u': {
                unsigned v = 0;
                if (end - s < 5)
                    return NULL;
                for (int i = 1; i <= 4; i++) {
                    char h = s[i];
                    v = v * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0'
                                            : (h | 0x20) >= 'a' && (h | 0x20) <= 'f'
                                                ? (h | 0x20) - 'a' + 10
                                                : 0);
                }
                c = (char)(v < 0x80 && v >= 0x20 ? v : '?');
                s += 4;
                break;
            }
            default:
                c = *s; /* \" \\ \/ */
                break;
            }
        }
        if (out != NULL) {
            if (o + 1 < cap)
                out[o++] = c;
            else
                fits = false;
        }
    }
    return NULL;
}

static const char *skip_ws(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
        s++;
    return s;
}

bool publisher_json_find(const char *body, size_t len, const char *key, int max_depth, char *out,
                         size_t cap)
{
    const char *s = body, *end = body + len;
    int depth = 0;
    char name[64];

    if (cap == 0)
        return false;
    while (s < end) {
        char c = *s;
        if (c == '{' || c == '[') {
            depth++;
            s++;
        } else if (c == '}' || c == ']') {
            depth--;
            s++;
        } else if (c == '"') {
            const char *after = json_string(s, end, name, sizeof name);
            bool is_key = false;
            if (after == NULL) {
                /* too long for a key we look for: skip it */
                after = json_string(s, end, NULL, 0);
                if (after == NULL)
                    return false;
                s = skip_ws(after, end);
                if (s < end && *s == ':')
                    s++;
                continue;
            }
            s = skip_ws(after, end);
            is_key = s < end && *s == ':';
            if (!is_key)
                continue;
            s = skip_ws(s + 1, end);
            if (depth < 1 || depth > max_depth || strcmp(name, key) != 0)
                continue;
            if (s < end && *s == '"')
                return json_string(s, end, out, cap) != NULL && out[0] != '\0';
            size_t o = 0;
            while (s < end && (isdigit((unsigned char)*s) || *s == '-') && o + 1 < cap)
                out[o++] = *s++;
            out[o] = '\0';
            return o > 0;
        } else {
            s++;
        }
    }
    return false;
}

/* Printable, single-line, at most cap - 1 bytes of s[0..n). */
static void clean_copy(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++)
        out[o++] = (char)((s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : ' ');
    out[o] = '\0';
}

static int retry_after_s(const http_result *r, int64_t now_real_ms)
{
    const char *v = http_result_header(r, "retry-after");
    if (v == NULL)
        return -1;
    int64_t ms = http_retry_after_ms(v, now_real_ms);
    if (ms < 0)
        return -1;
    return (int)((ms + 999) / 1000);
}

void publisher_classify(const http_result *r, bool x_api, const char *post_id, int64_t now_real_ms,
                        publisher_verdict *v)
{
    memset(v, 0, sizeof *v);
    v->retry_after_s = -1;
    if (r->kind == HTTP_RES_OK) {
        int s = r->status;
        char body[160];
        clean_copy(body, sizeof body, r->body, r->body_len);
        if (s >= 200 && s < 300) {
            bool have = x_api ? publisher_json_find(r->body, r->body_len, "id", 2, v->external_id,
                                                    sizeof v->external_id)
                              : publisher_json_find(r->body, r->body_len, "id", 1, v->external_id,
                                                    sizeof v->external_id);
            if (!have && !x_api) {
                (void)snprintf(v->external_id, sizeof v->external_id, "%s", post_id);
                have = true;
            }
            if (!have) {
                v->outcome = LEASE_OUTCOME_UNKNOWN;
                v->error_class = 10; /* OTHER */
                (void)snprintf(v->error, sizeof v->error, "HTTP %d without a post id: %s", s, body);
                return;
            }
            (void)publisher_json_find(r->body, r->body_len, "url", x_api ? 2 : 1, v->external_url,
                                      sizeof v->external_url);
            v->outcome = LEASE_OUTCOME_SUCCESS;
            return;
        }
        (void)snprintf(v->error, sizeof v->error, "HTTP %d: %s", s, body);
        if (s == 429) {
            v->outcome = LEASE_OUTCOME_RETRYABLE;
            v->error_class = 1; /* RATE_LIMITED */
            v->retry_after_s = retry_after_s(r, now_real_ms);
            v->rate_limited = true;
        } else if (s == 408 || s >= 500) {
            v->outcome = LEASE_OUTCOME_RETRYABLE;
            v->error_class = s == 408 ? 5 /* TIMEOUT */ : 6 /* SERVER_ERROR */;
            if (s == 503)
                v->retry_after_s = retry_after_s(r, now_real_ms);
        } else {
            v->outcome = LEASE_OUTCOME_PERMANENT;
            bool dup = s == 409 || (s == 403 && (strstr(body, "duplicate") != NULL ||
                                                 strstr(body, "Duplicate") != NULL));
            v->error_class = dup                      ? 8  /* DUPLICATE_CONTENT */
                             : (s == 401 || s == 403) ? 2  /* AUTH */
                             : (s == 413 || s == 422) ? 7  /* CONTENT_REJECTED */
                                                      : 9; /* INVALID_REQUEST */
        }
        return;
    }
    const char *why = r->error != NULL ? r->error : http_result_name(r->kind);
    (void)snprintf(v->error, sizeof v->error, "%s: %s", http_result_name(r->kind), why);
    switch (r->kind) {
    case HTTP_RES_CONNECT:
        v->outcome = LEASE_OUTCOME_RETRYABLE;
        v->error_class = 4; /* NETWORK */
        return;
    case HTTP_RES_TIMEOUT_UNSENT:
        v->outcome = LEASE_OUTCOME_RETRYABLE;
        v->error_class = 5; /* TIMEOUT */
        return;
    case HTTP_RES_TIMEOUT_SENT:
        v->outcome = LEASE_OUTCOME_UNKNOWN;
        v->error_class = 5;
        return;
    case HTTP_RES_RESET:
        v->outcome = r->request_sent ? LEASE_OUTCOME_UNKNOWN : LEASE_OUTCOME_RETRYABLE;
        v->error_class = 4;
        return;
    case HTTP_RES_TOO_LARGE:
        v->outcome = LEASE_OUTCOME_UNKNOWN; /* a reply was coming: it was received */
        v->error_class = 10;
        return;
    case HTTP_RES_CANCELLED:
    case HTTP_RES_SHUTDOWN:
    case HTTP_RES_ERROR:
    case HTTP_RES_OK:
        break;
    }
    v->outcome = r->request_sent ? LEASE_OUTCOME_UNKNOWN : LEASE_OUTCOME_RETRYABLE;
    v->error_class = 10; /* OTHER */
}

/* ---------------------------------------------------------------- the publisher */

typedef struct pub_job {
    struct pub_job *next;
    struct publisher *owner;
    char lease_id[40];
    char post_id[40];
    char profile_id[64];
    bool x_api;
    uint64_t http_id;
    int64_t lease_expire_ms; /* epoch ms */
    publisher_verdict v;
} pub_job;

struct publisher {
    db_options dbo;
    char *conninfo;
    char *executor_id;
    http_client *http;
    int poll_ms, claim_batch, max_inflight, lease_margin_ms, db_budget_ms;
    bool (*ready)(void *user);
    void *user;

    pthread_t thread;
    pthread_mutex_t mu; /* protects stop, grace, inflight, done, n_inflight; cv waits on them */
    pthread_cond_t cv;
    bool stop;
    int64_t grace_ms;
    pub_job *inflight; /* submitted; callback not run yet */
    pub_job *done;     /* callback ran; outcome to report */
    int64_t n_inflight;

    /* statistics */
    atomic_uint_fast64_t rounds, claimed, sent, outcomes[5], report_retries, dropped, expired;
};

void publisher_options_init(publisher_options *o)
{
    memset(o, 0, sizeof *o);
    o->poll_ms = 500;
    o->claim_batch = 16;
    o->max_inflight = 64;
    o->lease_margin_ms = 15000;
    o->db_budget_ms = 5000;
}

static void list_remove(pub_job **head, pub_job *j)
{
    for (pub_job **pp = head; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            j->next = NULL;
            return;
        }
    }
}

/* http thread: quick, no I/O. */
static void on_http_done(const http_result *r, void *user)
{
    pub_job *j = user;
    publisher *p = j->owner;
    publisher_classify(r, j->x_api, j->post_id, now_real_ms(), &j->v);
    pthread_mutex_lock(&p->mu);
    list_remove(&p->inflight, j);
    j->next = p->done;
    p->done = j;
    p->n_inflight--;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* ---- reporting ---- */

/* After a 429: the profile cools down until the Retry-After (else the
 * policy's rate-limit cooldown), as ReportPlatformSignal would. Inside the
 * report's transaction. */
static status start_cooldown_tx(publisher *p, db_conn *db, arena *a, const pub_job *j)
{
    sched_profile pr;
    status st = sched_profile_load_tx(db, a, j->profile_id, true, &pr);
    if (st != ST_OK)
        return st;
    int64_t now_s = pr.now_ms / 1000;
    const policy_cooldown *cur = pr.has_cooldown && pr.cooldown.end_s > now_s ? &pr.cooldown : NULL;
    int64_t reset_s = j->v.retry_after_s > 0 ? now_s + j->v.retry_after_s : 0;
    policy_cooldown next;
    st = policy_cooldown_from_signal(&pr.policy, cur, POLICY_SIGNAL_RATE_LIMITED, now_s, reset_s,
                                     &next);
    if (st != ST_OK)
        return st;
    return sched_cooldown_put_tx(db, pr.profile_id, p->executor_id, "rate_limited", reset_s * 1000,
                                 "HTTP 429 from the publish target", &next);
}

typedef enum { REPORT_DONE, REPORT_RETRY, REPORT_DROP } report_fate;

static report_fate report_one(publisher *p, db_conn *db, arena *a, pub_job *j)
{
    sched_report rq;
    sched_report_result res;
    sched_refusal why = { ST_OK, "" };
    memset(&rq, 0, sizeof rq);
    rq.lease_id = j->lease_id;
    rq.executor_id = p->executor_id;
    rq.post_id = j->post_id;
    rq.outcome = j->v.outcome;
    rq.error_class = j->v.error_class;
    rq.external_id = j->v.external_id;
    rq.external_url = j->v.external_url;
    rq.error_message = j->v.error;
    rq.retry_after_s = j->v.retry_after_s;

    status st = db_begin(db, p->db_budget_ms);
    if (st == ST_OK)
        st = sched_report_tx(db, a, &rq, &res, &why);
    if (st == ST_OK && j->v.rate_limited)
        st = start_cooldown_tx(p, db, a, j);
    if (st == ST_OK)
        st = db_commit(db);
    else
        db_rollback(db);
    arena_reset(a);
    if (st == ST_OK) {
        atomic_fetch_add(&p->outcomes[j->v.outcome], 1);
        if (j->v.outcome == LEASE_OUTCOME_SUCCESS)
            log_debug("publisher: post %s published (receipt %s)", j->post_id, j->v.external_id);
        else
            log_at(j->v.outcome == LEASE_OUTCOME_UNKNOWN ? LOG_WARN : LOG_INFO,
                   "publisher: post %s attempt %s: %s (%s)", j->post_id,
                   lease_outcome_name(j->v.outcome),
                   j->v.outcome == LEASE_OUTCOME_UNKNOWN ? "waiting for reconciliation"
                                                         : "reported",
                   j->v.error);
        return REPORT_DONE;
    }
    bool transient = st == ST_UNAVAILABLE || st == ST_TIMEOUT || st == ST_CONFLICT;
    if (transient && now_real_ms() < j->lease_expire_ms) {
        atomic_fetch_add(&p->report_retries, 1);
        return REPORT_RETRY;
    }
    atomic_fetch_add(&p->dropped, 1);
    log_warn("publisher: the %s outcome of post %s was not recorded (%s: %s); the lease sweep "
             "will make it UNCONFIRMED",
             lease_outcome_name(j->v.outcome), j->post_id, status_name(st),
             why.st != ST_OK ? why.reason : db_errmsg(db));
    return REPORT_DROP;
}

/* Reports everything finished, and the retries; retries stay on *retry. */
static void report_all(publisher *p, db_conn *db, arena *a, pub_job **retry)
{
    pthread_mutex_lock(&p->mu);
    pub_job *list = p->done;
    p->done = NULL;
    pthread_mutex_unlock(&p->mu);
    /* older retries first */
    pub_job *tail = *retry;
    *retry = NULL;
    if (tail != NULL) {
        pub_job *t = tail;
        while (t->next != NULL)
            t = t->next;
        t->next = list;
        list = tail;
    }
    while (list != NULL) {
        pub_job *j = list;
        list = j->next;
        j->next = NULL;
        if (report_one(p, db, a, j) == REPORT_RETRY) {
            j->next = *retry;
            *retry = j;
        } else {
            free(j);
        }
    }
}

/* ---- claiming and sending ---- */

static char *webhook_body(const Herald__V1__Post *post, const Herald__V1__Lease *l)
{
    strbuf b = { 0 };
    char plat[32], kind[32], ts[40];
    const char *pf = handler_enum_db_name(&herald__v1__platform__descriptor, (int)post->platform,
                                          plat, sizeof plat);
    const char *kd = handler_enum_db_name(&herald__v1__post_kind__descriptor, (int)post->kind, kind,
                                          sizeof kind);
    fmt_rfc3339_ms(handler_ts_ms(post->schedule_time), ts, sizeof ts);
    strbuf_puts(&b, "{\"post_id\":\"");
    strbuf_json_escape(&b, post->post_id, strlen(post->post_id));
    strbuf_puts(&b, "\",\"profile_id\":\"");
    strbuf_json_escape(&b, post->profile_id, strlen(post->profile_id));
    strbuf_printf(&b, "\",\"platform\":\"%s\",\"kind\":\"%s\",\"text\":\"", pf ? pf : "",
                  kd ? kd : "");
    strbuf_json_escape(&b, post->text, strlen(post->text));
    strbuf_puts(&b, "\",\"reply_to_external_id\":\"");
    strbuf_json_escape(&b, post->reply_to_external_id, strlen(post->reply_to_external_id));
    strbuf_printf(&b, "\",\"attempt\":%d,\"lease_id\":\"%s\",\"schedule_time\":\"%s\"}",
                  l->attempt_number, l->lease_id, ts);
    return strbuf_take(&b);
}

static char *x_body(const Herald__V1__Post *post)
{
    strbuf b = { 0 };
    strbuf_puts(&b, "{\"text\":\"");
    strbuf_json_escape(&b, post->text, strlen(post->text));
    strbuf_putc(&b, '"');
    if (post->reply_to_external_id[0] != '\0') {
        strbuf_puts(&b, ",\"reply\":{\"in_reply_to_tweet_id\":\"");
        strbuf_json_escape(&b, post->reply_to_external_id, strlen(post->reply_to_external_id));
        strbuf_puts(&b, "\"}");
    }
    strbuf_putc(&b, '}');
    return strbuf_take(&b);
}

static void wipe(char *s)
{
    if (s != NULL) {
        volatile char *v = s;
        while (*v)
            *v++ = 0;
    }
}

/* Builds and submits the request of one claimed post. The claim is
 * committed: whatever happens now ends in a report. */
static void send_one(publisher *p, const sched_target *t, const sched_work *w)
{
    pub_job *j = xcalloc(1, sizeof *j);
    j->owner = p;
    (void)snprintf(j->lease_id, sizeof j->lease_id, "%s", w->lease->lease_id);
    (void)snprintf(j->post_id, sizeof j->post_id, "%s", w->post->post_id);
    (void)snprintf(j->profile_id, sizeof j->profile_id, "%s", t->profile_id);
    j->x_api = strcmp(t->kind, "x_api_v2") == 0;
    j->lease_expire_ms = handler_ts_ms(w->lease->expire_time);

    char *body = j->x_api ? x_body(w->post) : webhook_body(w->post, w->lease);
    char *auth = NULL, *sig = NULL, *idem = NULL, *pid = NULL, *att = NULL;
    const char *hdrs[8];
    size_t nh = 0;
    hdrs[nh++] = "Content-Type: application/json";
    hdrs[nh++] = "User-Agent: heraldd-publisher";
    if (j->x_api) {
        auth = xasprintf("Authorization: Bearer %.*s", (int)t->secret_len, (const char *)t->secret);
        hdrs[nh++] = auth;
    } else {
        uint8_t mac[32];
        char hex[65];
        publisher_hmac_sha256(t->secret, t->secret_len, body, strlen(body), mac);
        for (int i = 0; i < 32; i++)
            (void)snprintf(hex + (size_t)2 * (size_t)i, 3, "%02x", mac[i]);
        sig = xasprintf("X-Herald-Signature: sha256=%s", hex);
        idem = xasprintf("Idempotency-Key: %s", j->post_id);
        pid = xasprintf("X-Herald-Post-Id: %s", j->post_id);
        att = xasprintf("X-Herald-Attempt: %d", w->lease->attempt_number);
        hdrs[nh++] = sig;
        hdrs[nh++] = idem;
        hdrs[nh++] = pid;
        hdrs[nh++] = att;
    }
    http_request rq;
    memset(&rq, 0, sizeof rq);
    rq.upstream = j->x_api ? "x_api" : "webhook";
    rq.method = "POST";
    rq.url = t->url;
    rq.headers = hdrs;
    rq.n_headers = nh;
    rq.body = body;
    rq.body_len = strlen(body);
    rq.timeout_ms = t->timeout_ms > 0 ? t->timeout_ms : 10000;
    rq.connect_timeout_ms = rq.timeout_ms < 2000 ? rq.timeout_ms : 2000;
    rq.max_response_bytes = RESPONSE_MAX;
    rq.no_reuse = true; /* libcurl must never re-send a publish by itself */

    /* on the in-flight list before submitting: the callback may run at once */
    pthread_mutex_lock(&p->mu);
    j->next = p->inflight;
    p->inflight = j;
    p->n_inflight++;
    pthread_mutex_unlock(&p->mu);
    uint64_t id = 0;
    status st = http_submit(p->http, &rq, on_http_done, j, &id);
    pthread_mutex_lock(&p->mu);
    if (st == ST_OK) {
        j->http_id = id;
        atomic_fetch_add(&p->sent, 1);
    } else {
        /* never sent: give the attempt back as retryable */
        list_remove(&p->inflight, j);
        p->n_inflight--;
        memset(&j->v, 0, sizeof j->v);
        j->v.outcome = LEASE_OUTCOME_RETRYABLE;
        j->v.error_class = 10;
        j->v.retry_after_s = -1;
        (void)snprintf(j->v.error, sizeof j->v.error, "not sent: heraldd is stopping");
        j->next = p->done;
        p->done = j;
    }
    pthread_mutex_unlock(&p->mu);
    wipe(auth);
    free(auth);
    free(sig);
    free(idem);
    free(pid);
    free(att);
    free(body);
}

static void claim_round(publisher *p, db_conn *db, arena *a)
{
    sched_target *t = NULL;
    size_t nt = 0;

    pthread_mutex_lock(&p->mu);
    int64_t room = p->stop ? 0 : p->max_inflight - p->n_inflight;
    pthread_mutex_unlock(&p->mu);
    if (room <= 0)
        return;
    status st = db_begin(db, p->db_budget_ms);
    if (st == ST_OK)
        st = sched_builtin_due_tx(db, a, DUE_PROFILES_MAX, &t, &nt);
    if (st == ST_OK)
        st = db_commit(db);
    else
        db_rollback(db);
    if (st != ST_OK) {
        log_debug("publisher: cannot look for due posts: %s", db_errmsg(db));
        return;
    }
    for (size_t i = 0; i < nt && room > 0; i++) {
        sched_claim c = { .executor_id = p->executor_id,
                          .profile_id = t[i].profile_id,
                          .builtin = true,
                          .limit = (int)(room < p->claim_batch ? room : p->claim_batch),
                          .lease_ms = (int64_t)t[i].timeout_ms + p->lease_margin_ms };
        sched_work *w = NULL;
        size_t n = 0;
        int64_t now_ms = 0;
        st = db_begin(db, p->db_budget_ms);
        if (st == ST_OK)
            st = sched_claim_tx(db, a, &c, &w, &n, &now_ms);
        if (st == ST_OK)
            st = db_commit(db);
        else
            db_rollback(db);
        if (st != ST_OK) {
            log_debug("publisher: claim for %s failed: %s", t[i].profile_id, db_errmsg(db));
            continue;
        }
        atomic_fetch_add(&p->claimed, n);
        for (size_t k = 0; k < n; k++)
            send_one(p, &t[i], &w[k]);
        room -= (int64_t)n;
    }
    for (size_t i = 0; i < nt; i++)
        if (t[i].secret != NULL)
            memset(t[i].secret, 0, t[i].secret_len);
}

static void sweep(publisher *p, db_conn *db)
{
    int n = 0;
    status st = db_begin(db, p->db_budget_ms);
    if (st == ST_OK)
        st = sched_expire_lapsed_tx(db, NULL, SCHED_EXPIRE_BATCH, &n);
    if (st == ST_OK)
        st = db_commit(db);
    else
        db_rollback(db);
    if (st == ST_OK && n > 0) {
        atomic_fetch_add(&p->expired, (uint64_t)n);
        log_info("lease sweep: %d lapsed lease(s); their posts are UNCONFIRMED until "
                 "ReconcilePublished",
                 n);
    }
}

static void wait_round(publisher *p, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    if (!p->stop && p->done == NULL)
        (void)pthread_cond_timedwait(&p->cv, &p->mu, &until);
    pthread_mutex_unlock(&p->mu);
}

/* Waits (bounded) until no transfer is in flight; true when none is. */
static bool wait_idle(publisher *p, int64_t ms)
{
    int64_t until = now_mono_ms() + ms;
    pthread_mutex_lock(&p->mu);
    while (p->n_inflight > 0) {
        int64_t left = until - now_mono_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t step = left < 100 ? left : 100;
        ts.tv_nsec += (long)step * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    bool idle = p->n_inflight == 0;
    pthread_mutex_unlock(&p->mu);
    return idle;
}

static void *pub_main(void *arg)
{
    publisher *p = arg;
    db_conn *db = db_open(&p->dbo);
    arena *a = arena_new(0);
    pub_job *retry = NULL;

    for (;;) {
        pthread_mutex_lock(&p->mu);
        bool stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            break;
        if (p->ready == NULL || p->ready(p->user)) {
            atomic_fetch_add(&p->rounds, 1);
            report_all(p, db, a, &retry);
            sweep(p, db);
            claim_round(p, db, a);
            arena_reset(a);
        }
        wait_round(p, p->poll_ms);
    }

    /* Stopping: no new claims. Let transfers finish, then cancel. */
    pthread_mutex_lock(&p->mu);
    int64_t grace = p->grace_ms;
    pthread_mutex_unlock(&p->mu);
    if (!wait_idle(p, grace)) {
        uint64_t ids[256];
        size_t n = 0;
        pthread_mutex_lock(&p->mu);
        for (pub_job *j = p->inflight; j != NULL && n < 256; j = j->next)
            if (j->http_id != 0)
                ids[n++] = j->http_id;
        pthread_mutex_unlock(&p->mu);
        for (size_t i = 0; i < n; i++)
            http_cancel(p->http, ids[i]);
        (void)wait_idle(p, STOP_CANCEL_WAIT_MS);
    }
    report_all(p, db, a, &retry);
    while (retry != NULL) { /* one more try each, then leave them to the sweep */
        pub_job *j = retry;
        retry = j->next;
        j->next = NULL;
        j->lease_expire_ms = 0; /* no further retries */
        (void)report_one(p, db, a, j);
        free(j);
    }
    arena_free(a);
    db_close(db);
    return NULL;
}

publisher *publisher_start(const publisher_options *o, char **err)
{
    publisher *p = xcalloc(1, sizeof *p);
    p->dbo = *o->db;
    p->conninfo = o->db->conninfo != NULL ? xstrdup(o->db->conninfo) : NULL;
    p->dbo.conninfo = p->conninfo;
    p->dbo.application_name = "heraldd-publisher";
    p->executor_id = xstrdup(
        o->executor_id != NULL && o->executor_id[0] != '\0' ? o->executor_id : "heraldd-publisher");
    p->http = o->http;
    p->poll_ms = o->poll_ms > 0 ? o->poll_ms : 500;
    p->claim_batch = o->claim_batch > 0 ? (o->claim_batch < 100 ? o->claim_batch : 100) : 16;
    p->max_inflight = o->max_inflight > 0 ? o->max_inflight : 64;
    p->lease_margin_ms = o->lease_margin_ms > 0 ? o->lease_margin_ms : 15000;
    p->db_budget_ms = o->db_budget_ms > 0 ? o->db_budget_ms : 5000;
    p->ready = o->ready;
    p->user = o->user;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (p->http == NULL || pthread_create(&p->thread, NULL, pub_main, p) != 0) {
        *err = xstrdup(p->http == NULL ? "publisher: no http client"
                                       : "publisher: cannot start its thread");
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p->executor_id);
        free(p->conninfo);
        free(p);
        return NULL;
    }
    return p;
}

void publisher_stop(publisher *p, int64_t grace_ms)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    p->grace_ms = grace_ms > 0 ? grace_ms : 0;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    /* anything left in flight now belongs to nobody: the callbacks ran
     * (wait_idle) or the http client will complete them with SHUTDOWN
     * after we are gone, so those jobs must stay allocated until then */
    pthread_mutex_lock(&p->mu);
    bool leftover = p->inflight != NULL;
    pthread_mutex_unlock(&p->mu);
    if (leftover) {
        log_warn("publisher: transfers still running at exit; their leases will lapse and the "
                 "posts become UNCONFIRMED");
        return; /* deliberately leaked: a late callback may still touch them */
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->executor_id);
    free(p->conninfo);
    free(p);
}

void publisher_stats_get(const publisher *p, publisher_stats *out)
{
    memset(out, 0, sizeof *out);
    if (p == NULL)
        return;
    publisher *q = (publisher *)p;
    out->rounds = atomic_load(&q->rounds);
    out->claimed = atomic_load(&q->claimed);
    out->sent = atomic_load(&q->sent);
    for (int i = 0; i < 5; i++)
        out->outcomes[i] = atomic_load(&q->outcomes[i]);
    out->report_retries = atomic_load(&q->report_retries);
    out->reports_dropped = atomic_load(&q->dropped);
    out->expired = atomic_load(&q->expired);
    pthread_mutex_lock(&q->mu);
    out->inflight = q->n_inflight;
    pthread_mutex_unlock(&q->mu);
}
