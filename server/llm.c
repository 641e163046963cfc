/* llm.c - the chat-completions provider (see llm.h).
 *
 * A job is one llm_generate: its request body and headers are built once,
 * then each attempt is one http_submit whose callback (on the http thread)
 * either finishes the job or submits the next attempt with start_at_ms set
 * to the backoff, so waiting between attempts holds no thread either. */
#include "llm.h"

#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config.h"
#include "llm_parse.h"
#include "util.h"

#define DEFAULT_TIMEOUT_MS 20000
#define DEFAULT_CONNECT_TIMEOUT_MS 2000
#define DEFAULT_MAX_RESPONSE_BYTES ((size_t)1 << 20)
#define DEFAULT_MAX_ATTEMPTS 3
#define DEFAULT_BACKOFF_BASE_MS 250
#define DEFAULT_BACKOFF_MAX_MS 4000
#define DEFAULT_TEMPERATURE 0.8
/* A retry is only worth starting with at least this long left. */
#define MIN_ATTEMPT_MS 100
#define REASON_MAX 512
#define UPSTREAM_MSG_MAX 200
#define MAX_PROMPT_FACTS 6
#define MAX_PROMPT_PHRASES 60
#define MAX_PROMPT_PHRASE_BYTES 1500
#define MAX_FORWARDED_HEADER 128

typedef struct llm_job {
    struct llm_job *next, *prev; /* in llm_client.jobs */
    uint64_t id;
    llm_client *c;
    llm_done_fn done;
    void *user;
    char *body;
    size_t body_len;
    char *hdr[5]; /* owned "Name: value" lines */
    size_t n_hdr;
    int64_t deadline_ms;
    int64_t start_ms;
    int attempts;
    /* under c->mu */
    uint64_t http_id; /* the transfer in flight; 0 between attempts */
    bool cancelled;
} llm_job;

struct llm_client {
    char *url, *model, *api_key;
    llm_config cfg; /* its strings point at the copies above */
    http_client *http;
    _Atomic uint64_t rng;

    pthread_mutex_t mu; /* protects jobs, n_jobs, next_id, closing and each job's
                         * http_id and cancelled */
    pthread_cond_t cv;  /* signalled when a job leaves the list */
    llm_job *jobs;
    int n_jobs;
    uint64_t next_id;
    bool closing;
};

/* ---- configuration ---- */

void llm_config_default(llm_config *c)
{
    memset(c, 0, sizeof *c);
    c->url = "";
    c->model = "";
    c->api_key = "";
    c->timeout_ms = DEFAULT_TIMEOUT_MS;
    c->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    c->max_response_bytes = DEFAULT_MAX_RESPONSE_BYTES;
    c->max_attempts = DEFAULT_MAX_ATTEMPTS;
    c->backoff_base_ms = DEFAULT_BACKOFF_BASE_MS;
    c->backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
    c->temperature = DEFAULT_TEMPERATURE;
}

void llm_config_from(llm_config *out, const struct config *cfg)
{
    llm_config_default(out);
    out->url = cfg->llm_url;
    out->model = cfg->llm_model;
    out->api_key = cfg->llm_api_key;
    out->timeout_ms = cfg->llm_timeout_ms;
    out->connect_timeout_ms = cfg->llm_connect_timeout_ms;
    out->max_response_bytes = (size_t)cfg->llm_max_response_bytes;
    out->max_attempts = cfg->llm_max_attempts;
}

llm_client *llm_new(const llm_config *cfg, http_client *http)
{
    llm_client *c = xcalloc(1, sizeof *c);
    llm_config d;

    llm_config_default(&d);
    c->url = xstrdup(cfg->url != NULL ? cfg->url : "");
    c->model = xstrdup(cfg->model != NULL ? cfg->model : "");
    c->api_key = xstrdup(cfg->api_key != NULL ? cfg->api_key : "");
    c->cfg = *cfg;
    c->cfg.url = c->url;
    c->cfg.model = c->model;
    c->cfg.api_key = c->api_key;
    if (c->cfg.timeout_ms <= 0)
        c->cfg.timeout_ms = d.timeout_ms;
    if (c->cfg.connect_timeout_ms <= 0)
        c->cfg.connect_timeout_ms = d.connect_timeout_ms;
    if (c->cfg.max_response_bytes == 0)
        c->cfg.max_response_bytes = d.max_response_bytes;
    if (c->cfg.max_attempts <= 0)
        c->cfg.max_attempts = d.max_attempts;
    if (c->cfg.backoff_base_ms <= 0)
        c->cfg.backoff_base_ms = d.backoff_base_ms;
    if (c->cfg.backoff_max_ms < c->cfg.backoff_base_ms)
        c->cfg.backoff_max_ms = c->cfg.backoff_base_ms;
    c->http = http;
    c->next_id = 1;
    atomic_store(&c->rng, (uint64_t)now_real_ms() ^ ((uint64_t)(uintptr_t)c << 16));
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    return c;
}

void llm_free(llm_client *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->closing = true;
    for (llm_job *j = c->jobs; j != NULL; j = j->next) {
        j->cancelled = true;
        if (j->http_id != 0)
            http_cancel(c->http, j->http_id);
    }
    while (c->n_jobs > 0)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c->url);
    free(c->model);
    /* The key is wiped, not just freed: freed heap can end up in a core file. */
    explicit_bzero(c->api_key, strlen(c->api_key));
    free(c->api_key);
    free(c);
}

bool llm_configured(const llm_client *c)
{
    return c != NULL && c->url[0] != '\0';
}

const char *llm_model(const llm_client *c)
{
    return c->model;
}

int llm_jobs_in_flight(llm_client *c)
{
    pthread_mutex_lock(&c->mu);
    int n = c->n_jobs;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* ---- the prompt ---- */

static void set_err(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errcap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (err != NULL && errcap > 0)
        (void)vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
}

static const char *platform_display(platform_id p)
{
    switch (p) {
    case PLATFORM_X:
        return "X";
    case PLATFORM_THREADS:
        return "Threads";
    case PLATFORM_BLUESKY:
        return "Bluesky";
    case PLATFORM_LINKEDIN:
        return "LinkedIn";
    case PLATFORM_UNSPECIFIED:
        break;
    }
    return NULL;
}

static const char *entry_name(const catalog_entry *e)
{
    return e->display_name != NULL && e->display_name[0] != '\0' ? e->display_name : e->key;
}

static bool fact_offered(const llm_request *req, const catalog_fact *f)
{
    if (!f->enabled || f->fact == NULL || f->fact[0] == '\0')
        return false;
    return req->fact_key == NULL || (f->key != NULL && strcmp(f->key, req->fact_key) == 0);
}

/* The rules, one per gate (gates.h), and the output format. */
static void build_system(strbuf *b, const llm_request *req, int min_chars, int max_chars)
{
    const char *plat = platform_display(req->platform);

    strbuf_puts(b, "You write single social-media posts for a health and wellness account "
                   "that shares research findings. Follow every rule:\n");
    if (min_chars > 0)
        strbuf_printf(b, "1. Length: between %d and %d characters in total", min_chars, max_chars);
    else
        strbuf_printf(b, "1. Length: at most %d characters in total", max_chars);
    strbuf_printf(b, " (%s allows %d); count every character.\n", plat,
                  platform_max_chars(req->platform));
    strbuf_puts(b, "2. Third person only: write about studies and people in general. Never use "
                   "\"I\", \"me\", \"my\", \"we\" or \"our\", never describe a personal health "
                   "experience, and never claim or invent credentials (doctor, nutritionist, "
                   "\"my patients\").\n");
    strbuf_puts(b, "3. No medical advice: do not diagnose the reader, give doses or medication "
                   "instructions, or promise cures. Report what studies found, at population "
                   "level.\n");
    strbuf_puts(b, "4. Be specific: keep the fact's numbers and units exactly as given and name "
                   "its source and year. Do not invent numbers, studies or quotes.\n");
    strbuf_puts(b, "5. No hashtags (no '#' at all), no thread markers such as \"1/5\", \"(1/3)\" "
                   "or a thread emoji, no links, and at most one emoji (none is best).\n");
    strbuf_puts(b, "6. No corporate or AI boilerplate");
    if (req->cat != NULL && catalog_finished(req->cat)) {
        size_t n = catalog_phrase_count(req->cat), used = 0, bytes = 0;
        for (size_t i = 0; i < n && used < MAX_PROMPT_PHRASES; i++) {
            const catalog_phrase *p = catalog_phrase_at(req->cat, i);
            if (!p->enabled || p->phrase == NULL || p->phrase[0] == '\0')
                continue;
            size_t pl = strlen(p->phrase);
            if (bytes + pl > MAX_PROMPT_PHRASE_BYTES)
                break;
            strbuf_puts(b, used == 0 ? "; never use these phrases: \"" : "\", \"");
            strbuf_puts(b, p->phrase);
            used++;
            bytes += pl;
        }
        if (used > 0)
            strbuf_putc(b, '"');
    }
    strbuf_puts(b, ".\n");
    strbuf_puts(b, "7. Reply with the post text only: no title, no label, no quotes around it, "
                   "no explanation.");
}

static void put_entry(strbuf *b, const char *label, const catalog_entry *e)
{
    strbuf_printf(b, "%s: %s", label, entry_name(e));
    if (e->description != NULL && e->description[0] != '\0')
        strbuf_printf(b, " - %s", e->description);
    strbuf_putc(b, '\n');
}

static void build_user(strbuf *b, const llm_request *req, int max_chars)
{
    put_entry(b, "Content type", req->content_type);
    put_entry(b, "Voice", req->voice_style);
    put_entry(b, "Topic", req->topic);
    strbuf_printf(b, "Platform: %s (at most %d characters)\n", platform_display(req->platform),
                  max_chars);
    strbuf_puts(b, "Facts (build the post on one of them; keep its numbers, units, source and "
                   "year):\n");
    size_t used = 0;
    for (size_t i = 0; i < req->n_facts && used < MAX_PROMPT_FACTS; i++) {
        const catalog_fact *f = &req->facts[i];
        if (!fact_offered(req, f))
            continue;
        strbuf_printf(b, "- %s", f->fact);
        if (f->source != NULL && f->source[0] != '\0') {
            strbuf_printf(b, " Source: %s", f->source);
            if (f->year > 0)
                strbuf_printf(b, ", %d", f->year);
            strbuf_putc(b, '.');
        }
        if (f->myth != NULL && f->myth[0] != '\0')
            strbuf_printf(b, " Common belief: %s", f->myth);
        if (f->takeaway != NULL && f->takeaway[0] != '\0')
            strbuf_printf(b, " Why it matters: %s", f->takeaway);
        strbuf_putc(b, '\n');
        used++;
    }
    if (req->avoid_text != NULL && req->avoid_text[0] != '\0')
        strbuf_printf(b, "Do not repeat or closely paraphrase this recent post: \"%s\"\n",
                      req->avoid_text);
    strbuf_puts(b, "Write the post now.");
}

static json_object *message(const char *role, const char *content, size_t len)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string(role));
    json_object_object_add(m, "content", json_object_new_string_len(content, (int)len));
    return m;
}

char *llm_build_body(const llm_request *req, const char *model, double temperature, size_t *len,
                     char *err, size_t errcap)
{
    strbuf sys = { 0 }, user = { 0 };
    json_object *root = NULL;
    char *out = NULL;

    *len = 0;
    if (req->content_type == NULL || req->voice_style == NULL || req->topic == NULL) {
        set_err(err, errcap, "content type, voice style and topic are required");
        return NULL;
    }
    int limit = platform_max_chars(req->platform);
    if (limit <= 0) {
        set_err(err, errcap, "unknown platform %d", (int)req->platform);
        return NULL;
    }
    size_t offered = 0;
    for (size_t i = 0; i < req->n_facts; i++)
        offered += fact_offered(req, &req->facts[i]);
    if (offered == 0) {
        set_err(err, errcap, "topic %s has no enabled fact to offer%s%s", req->topic->key,
                req->fact_key != NULL ? " named " : "", req->fact_key != NULL ? req->fact_key : "");
        return NULL;
    }
    int max_chars = req->max_chars > 0 && req->max_chars < limit ? req->max_chars : limit;
    int min_chars = req->min_chars > 0 && req->min_chars < max_chars ? req->min_chars : 0;
    const char *strings[] = { req->content_type->key, req->voice_style->key, req->topic->key,
                              req->avoid_text };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        if (strings[i] != NULL && !utf8_valid(strings[i], strlen(strings[i]))) {
            set_err(err, errcap, "request holds invalid UTF-8");
            return NULL;
        }
    }

    build_system(&sys, req, min_chars, max_chars);
    build_user(&user, req, max_chars);
    root = json_object_new_object();
    if (model != NULL && model[0] != '\0')
        json_object_object_add(root, "model", json_object_new_string(model));
    json_object *msgs = json_object_new_array();
    json_object_array_add(msgs, message("system", sys.data, sys.len));
    json_object_array_add(msgs, message("user", user.data, user.len));
    json_object_object_add(root, "messages", msgs);
    if (temperature >= 0)
        json_object_object_add(root, "temperature", json_object_new_double(temperature));
    /* Tokens are >= 1 character, usually ~4: room for the post, not a novel. */
    json_object_object_add(root, "max_tokens", json_object_new_int(max_chars / 2 + 64));
    json_object_object_add(root, "n", json_object_new_int(1));
    json_object_object_add(root, "stream", json_object_new_boolean(0));

    size_t n = 0;
    const char *s = json_object_to_json_string_length(
        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    out = xstrndup(s, n);
    *len = n;
    json_object_put(root);
    strbuf_fini(&sys);
    strbuf_fini(&user);
    return out;
}

/* ---- retries ---- */

int64_t llm_backoff_ms(int retry, int64_t base_ms, int64_t max_ms, int64_t retry_after_ms,
                       double r01)
{
    if (r01 < 0 || r01 >= 1)
        r01 = 0;
    if (retry_after_ms >= 0) {
        int64_t j = retry_after_ms / 10 < 250 ? retry_after_ms / 10 : 250;
        return retry_after_ms + (int64_t)(r01 * (double)j);
    }
    int64_t full = base_ms;
    for (int i = 1; i < retry && full < max_ms; i++)
        full *= 2;
    if (full > max_ms)
        full = max_ms;
    int64_t half = full / 2;
    return half + (int64_t)(r01 * (double)(full - half));
}

/* A uniform double in [0, 1) from a splitmix64 step on the shared state. */
static double rand01(llm_client *c)
{
    uint64_t z = atomic_fetch_add(&c->rng, 0x9e3779b97f4a7c15ULL) + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- jobs ---- */

static void job_free(llm_job *j)
{
    if (j == NULL)
        return;
    free(j->body);
    for (size_t i = 0; i < j->n_hdr; i++) {
        /* The Authorization line holds the key. */
        explicit_bzero(j->hdr[i], strlen(j->hdr[i]));
        free(j->hdr[i]);
    }
    free(j);
}

typedef struct outcome {
    status st;
    const char *code;
    char reason[REASON_MAX];
    int64_t retry_delay_ms;
    int http_status;
    const char *text;
    size_t len;
    const char *model;
} outcome;

/* Runs the callback, then drops the job. */
static void job_finish(llm_job *j, const outcome *o)
{
    llm_client *c = j->c;
    llm_result r;

    memset(&r, 0, sizeof r);
    r.job = j->id;
    r.st = o->st;
    r.text = o->st == ST_OK ? o->text : NULL;
    r.len = o->st == ST_OK ? o->len : 0;
    r.model = o->model != NULL ? o->model : c->model;
    r.reason = o->st == ST_OK ? "" : o->reason;
    r.error_code = o->st == ST_OK ? NULL : o->code;
    r.retry_delay_ms = o->st == ST_UNAVAILABLE ? o->retry_delay_ms : -1;
    r.attempts = j->attempts;
    r.http_status = o->http_status;
    r.duration_ms = now_mono_ms() - j->start_ms;
    j->done(&r, j->user);

    pthread_mutex_lock(&c->mu);
    if (j->prev != NULL)
        j->prev->next = j->next;
    else
        c->jobs = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    c->n_jobs--;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    job_free(j);
}

static void outcome_set(outcome *o, status st, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void outcome_set(outcome *o, status st, const char *code, const char *fmt, ...)
{
    va_list ap;
    o->st = st;
    o->code = code;
    va_start(ap, fmt);
    (void)vsnprintf(o->reason, sizeof o->reason, fmt, ap);
    va_end(ap);
}

static void on_http(const http_result *r, void *user);

/* Submits the job's next attempt (start_at_ms 0 = now). Caller holds c->mu.
 * false when the http client refuses (shutting down). */
static bool submit_attempt(llm_job *j, int64_t start_at_ms)
{
    llm_client *c = j->c;
    http_request hr;

    memset(&hr, 0, sizeof hr);
    hr.upstream = "llm";
    hr.method = "POST";
    hr.url = c->url;
    hr.headers = (const char *const *)j->hdr;
    hr.n_headers = j->n_hdr;
    hr.body = j->body;
    hr.body_len = j->body_len;
    hr.deadline_ms = j->deadline_ms;
    hr.timeout_ms = c->cfg.timeout_ms;
    hr.connect_timeout_ms = c->cfg.connect_timeout_ms;
    hr.max_response_bytes = c->cfg.max_response_bytes;
    hr.start_at_ms = start_at_ms;
    uint64_t id = 0;
    if (http_submit(c->http, &hr, on_http, j, &id) != ST_OK)
        return false;
    j->attempts++;
    j->http_id = id;
    return true;
}

/* The upstream's error message, key masked, for a reason string. */
static void upstream_msg(const llm_client *c, const http_result *r, char *buf, size_t cap)
{
    char *m = llm_parse_error_message(r->body, r->body_len, c->api_key, UPSTREAM_MSG_MAX);
    if (m != NULL)
        (void)snprintf(buf, cap, ": %s", m);
    else
        buf[0] = '\0';
    free(m);
}

typedef enum { RETRY_NO = 0, RETRY_RATE_LIMIT, RETRY_UPSTREAM } retry_kind;

static void on_http(const http_result *r, void *user)
{
    llm_job *j = user;
    llm_client *c = j->c;
    outcome o;
    llm_parsed parsed;
    char msg[UPSTREAM_MSG_MAX + 8];
    retry_kind retry = RETRY_NO;
    int64_t retry_after = -1;

    memset(&o, 0, sizeof o);
    memset(&parsed, 0, sizeof parsed);
    o.retry_delay_ms = -1;
    o.http_status = r->status;

    pthread_mutex_lock(&c->mu);
    j->http_id = 0;
    bool cancelled = j->cancelled;
    pthread_mutex_unlock(&c->mu);

    if (r->kind == HTTP_RES_CANCELLED || cancelled) {
        outcome_set(&o, ST_CANCELLED, "LLM_CANCELLED", "LLM call cancelled");
        goto finish;
    }
    switch (r->kind) {
    case HTTP_RES_OK:
        break;
    case HTTP_RES_TIMEOUT_SENT:
    case HTTP_RES_TIMEOUT_UNSENT:
        if (r->deadline_hit) {
            outcome_set(&o, ST_TIMEOUT, "LLM_TIMEOUT",
                        "LLM call cut at the deadline after %lld ms (attempt %d)",
                        (long long)(now_mono_ms() - j->start_ms), j->attempts);
            goto finish;
        }
        outcome_set(&o, ST_UNAVAILABLE, "LLM_UNAVAILABLE",
                    "LLM did not answer within %lld ms (attempt %d of %d)",
                    (long long)c->cfg.timeout_ms, j->attempts, c->cfg.max_attempts);
        retry = RETRY_UPSTREAM;
        break;
    case HTTP_RES_CONNECT:
    case HTTP_RES_RESET:
        outcome_set(&o, ST_UNAVAILABLE, "LLM_UNAVAILABLE", "LLM %s (attempt %d of %d): %s",
                    r->kind == HTTP_RES_CONNECT ? "unreachable" : "connection lost", j->attempts,
                    c->cfg.max_attempts, r->error != NULL ? r->error : "");
        retry = RETRY_UPSTREAM;
        break;
    case HTTP_RES_TOO_LARGE:
        outcome_set(&o, ST_INTERNAL, "LLM_RESPONSE_TOO_LARGE",
                    "LLM response larger than %zu bytes (llm.max_response_bytes)",
                    c->cfg.max_response_bytes);
        goto finish;
    case HTTP_RES_SHUTDOWN:
        outcome_set(&o, ST_UNAVAILABLE, "LLM_SHUTDOWN", "server shutting down");
        goto finish;
    case HTTP_RES_ERROR:
    case HTTP_RES_CANCELLED:
        outcome_set(&o, ST_UNAVAILABLE, "LLM_UNAVAILABLE", "LLM request failed: %s",
                    r->error != NULL ? r->error : "unknown error");
        goto finish;
    }

    if (r->kind == HTTP_RES_OK) {
        int s = r->status;
        if (s >= 200 && s <= 299) {
            char perr[160];
            if (llm_parse_response(r->body, r->body_len, &parsed, perr, sizeof perr) != ST_OK) {
                outcome_set(&o, ST_INTERNAL, "LLM_BAD_RESPONSE", "LLM response unusable: %s", perr);
                goto finish;
            }
            if (parsed.finish_reason != NULL &&
                (strcmp(parsed.finish_reason, "length") == 0 ||
                 strcmp(parsed.finish_reason, "content_filter") == 0)) {
                outcome_set(&o, ST_INTERNAL, "LLM_BAD_RESPONSE",
                            "LLM text incomplete (finish_reason %s)", parsed.finish_reason);
                goto finish;
            }
            o.st = ST_OK;
            o.text = parsed.text;
            o.len = parsed.len;
            o.model = parsed.model;
            goto finish;
        }
        const char *ra = http_result_header(r, "retry-after");
        retry_after = ra != NULL ? http_retry_after_ms(ra, now_real_ms()) : -1;
        upstream_msg(c, r, msg, sizeof msg);
        if (s == 429) {
            outcome_set(&o, ST_UNAVAILABLE, "LLM_RATE_LIMITED", "LLM rate limited (HTTP 429)%s",
                        msg);
            retry = RETRY_RATE_LIMIT;
        } else if (s >= 500 || s == 408) {
            outcome_set(&o, ST_UNAVAILABLE, "LLM_UNAVAILABLE",
                        "LLM returned HTTP %d (attempt %d of %d)%s", s, j->attempts,
                        c->cfg.max_attempts, msg);
            retry = RETRY_UPSTREAM;
            if (s != 503)
                retry_after = -1; /* Retry-After means something else on other codes */
        } else if (s == 401 || s == 403) {
            outcome_set(&o, ST_FAILED_PRECONDITION, "LLM_AUTH",
                        "LLM endpoint refused the configured API key (HTTP %d)%s", s, msg);
        } else if (s == 404) {
            outcome_set(&o, ST_FAILED_PRECONDITION, "LLM_NOT_FOUND",
                        "LLM endpoint or model not found (HTTP 404; check llm.url and "
                        "llm.model)%s",
                        msg);
        } else if (s >= 300 && s <= 399) {
            outcome_set(&o, ST_FAILED_PRECONDITION, "LLM_REDIRECT",
                        "LLM endpoint redirects (HTTP %d); set llm.url to the final URL", s);
        } else {
            outcome_set(&o, ST_INTERNAL, "LLM_REJECTED", "LLM rejected the request (HTTP %d)%s", s,
                        msg);
        }
    }

    if (retry != RETRY_NO) {
        int64_t delay = llm_backoff_ms(j->attempts, c->cfg.backoff_base_ms, c->cfg.backoff_max_ms,
                                       retry_after, rand01(c));
        int64_t now = now_mono_ms();
        bool fits = j->deadline_ms == 0 || now + delay + MIN_ATTEMPT_MS <= j->deadline_ms;
        o.retry_delay_ms = retry_after >= 0 ? retry_after : delay;
        if (j->attempts < c->cfg.max_attempts && fits) {
            pthread_mutex_lock(&c->mu);
            bool now_cancelled = j->cancelled;
            bool ok = !now_cancelled && submit_attempt(j, now + delay);
            pthread_mutex_unlock(&c->mu);
            if (ok)
                return;
            if (now_cancelled)
                outcome_set(&o, ST_CANCELLED, "LLM_CANCELLED", "LLM call cancelled");
            else
                outcome_set(&o, ST_UNAVAILABLE, "LLM_SHUTDOWN", "server shutting down");
        } else if (retry == RETRY_RATE_LIMIT) {
            size_t l = strlen(o.reason);
            (void)snprintf(o.reason + l, sizeof o.reason - l, "; retry after %lld ms",
                           (long long)o.retry_delay_ms);
        }
    }
finish:
    job_finish(j, &o);
    llm_parsed_fini(&parsed);
}

/* A header line from a caller-supplied value, or NULL when it is not a
 * short printable ASCII string (those are dropped rather than sent). */
static char *forward_header(const char *name, const char *v)
{
    if (v == NULL || v[0] == '\0' || strlen(v) > MAX_FORWARDED_HEADER)
        return NULL;
    for (const char *p = v; *p != '\0'; p++)
        if (*p < 0x20 || *p > 0x7e)
            return NULL;
    return xasprintf("%s: %s", name, v);
}

status llm_generate(llm_client *c, const llm_request *req, int64_t deadline_ms, llm_done_fn done,
                    void *user, uint64_t *job_out, char *err, size_t errcap)
{
    llm_job *j = NULL;

    assert(c != NULL && req != NULL && done != NULL);
    if (job_out != NULL)
        *job_out = 0;
    if (err != NULL && errcap > 0)
        err[0] = '\0';
    if (!llm_configured(c)) {
        set_err(err, errcap, "no LLM configured (llm.url is empty)");
        return ST_FAILED_PRECONDITION;
    }
    int64_t start = now_mono_ms();
    if (deadline_ms != 0 && deadline_ms <= start) {
        set_err(err, errcap, "deadline passed before the LLM call started");
        return ST_TIMEOUT;
    }
    j = xcalloc(1, sizeof *j);
    j->body = llm_build_body(req, c->model, c->cfg.temperature, &j->body_len, err, errcap);
    if (j->body == NULL) {
        job_free(j);
        return ST_INVALID;
    }
    j->c = c;
    j->done = done;
    j->user = user;
    j->deadline_ms = deadline_ms;
    j->start_ms = start;
    j->hdr[j->n_hdr++] = xstrdup("Content-Type: application/json");
    j->hdr[j->n_hdr++] = xstrdup("Accept: application/json");
    if (c->api_key[0] != '\0')
        j->hdr[j->n_hdr++] = xasprintf("Authorization: Bearer %s", c->api_key);
    char *h = forward_header("X-Request-Id", req->request_id);
    if (h != NULL)
        j->hdr[j->n_hdr++] = h;
    h = forward_header("traceparent", req->traceparent);
    if (h != NULL)
        j->hdr[j->n_hdr++] = h;

    pthread_mutex_lock(&c->mu);
    if (c->closing) {
        pthread_mutex_unlock(&c->mu);
        job_free(j);
        set_err(err, errcap, "shutting down");
        return ST_UNAVAILABLE;
    }
    j->id = c->next_id++;
    /* Listed before the submit: the callback may run (and unlink it) before
     * submit_attempt returns. */
    j->next = c->jobs;
    if (c->jobs != NULL)
        c->jobs->prev = j;
    c->jobs = j;
    c->n_jobs++;
    uint64_t id = j->id;
    if (!submit_attempt(j, 0)) {
        c->jobs = j->next;
        if (c->jobs != NULL)
            c->jobs->prev = NULL;
        c->n_jobs--;
        pthread_mutex_unlock(&c->mu);
        job_free(j);
        set_err(err, errcap, "shutting down");
        return ST_UNAVAILABLE;
    }
    pthread_mutex_unlock(&c->mu);
    if (job_out != NULL)
        *job_out = id;
    return ST_OK;
}

void llm_cancel(llm_client *c, uint64_t job)
{
    if (c == NULL || job == 0)
        return;
    pthread_mutex_lock(&c->mu);
    for (llm_job *j = c->jobs; j != NULL; j = j->next) {
        if (j->id != job)
            continue;
        if (!j->cancelled) {
            j->cancelled = true;
            if (j->http_id != 0)
                http_cancel(c->http, j->http_id);
        }
        break;
    }
    pthread_mutex_unlock(&c->mu);
}
