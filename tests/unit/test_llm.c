/* test_llm.c - the LLM provider (server/llm.c) end to end over the real
 * http thread, against the fake chat-completions server on 127.0.0.1:
 * success, 429 with Retry-After then success, 429 past the deadline, 500
 * then success, 5xx exhausted, a delay longer than the deadline (the fake
 * sees the connection closed), a 20 MiB body at the byte cap, malformed
 * JSON, 401 and 400, cancellation (in flight and during backoff), shutdown,
 * and 20 concurrent calls on the single http thread. Every wait is bounded. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "catalog.h"
#include "fake_llm.h"
#include "http.h"
#include "llm.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define API_KEY "sk-test-SECRET-7f3a"

/* ---- collecting results ---- */

typedef struct res {
    pthread_mutex_t mu;
    int calls;
    status st;
    char *text, *reason, *code, *model;
    int64_t retry_delay_ms, duration_ms, at_ms;
    int attempts, http_status;
    uint64_t job;
    pthread_t thread;
} res;

static void res_init(res *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
}

static void res_fini(res *r)
{
    free(r->text);
    free(r->reason);
    free(r->code);
    free(r->model);
    pthread_mutex_destroy(&r->mu);
}

static void on_llm(const llm_result *lr, void *user)
{
    res *r = user;
    pthread_mutex_lock(&r->mu);
    r->calls++;
    r->st = lr->st;
    r->text = lr->text != NULL ? xstrndup(lr->text, lr->len) : NULL;
    r->reason = xstrdup(lr->reason);
    r->code = lr->error_code != NULL ? xstrdup(lr->error_code) : NULL;
    r->model = lr->model != NULL ? xstrdup(lr->model) : NULL;
    r->retry_delay_ms = lr->retry_delay_ms;
    r->duration_ms = lr->duration_ms;
    r->attempts = lr->attempts;
    r->http_status = lr->http_status;
    r->job = lr->job;
    r->at_ms = now_mono_ms();
    r->thread = pthread_self();
    pthread_mutex_unlock(&r->mu);
}

static int res_calls(res *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->calls;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static bool res_wait(res *r, int timeout_ms)
{
    int64_t end = now_mono_ms() + timeout_ms;
    while (res_calls(r) == 0 && now_mono_ms() < end)
        usleep(2000);
    return res_calls(r) > 0;
}

/* ---- fixture ---- */

typedef struct fx {
    fake_llm *fake;
    http_client *http;
    llm_client *llm;
    catalog *cat;
    llm_request req;
    char url[128];
} fx;

static catalog *test_catalog(void)
{
    catalog *c = catalog_new();
    catalog_entry ct = {
        "myth_busting", "Myth busting", "Corrects a popular belief", true, 0, 3000, 1.0
    };
    catalog_entry vs = {
        "truth_seeker", "Truth seeker", "Skeptical and precise", true, 0, 3000, 1.0
    };
    catalog_entry tp = { "sleep", "Sleep", "Sleep duration and timing", true, 0, 3000, 1.0 };
    catalog_fact f = { "sleep_duration",
                       "sleep",
                       "Adults sleeping under 6 hours were 4.2 times as likely to catch a cold",
                       "Sleep only affects tiredness",
                       "Immunity depends on sleep",
                       "Prather et al., Sleep",
                       2015,
                       true };
    if (catalog_add_entry(c, CATALOG_CONTENT_TYPE, &ct) != ST_OK ||
        catalog_add_entry(c, CATALOG_VOICE_STYLE, &vs) != ST_OK ||
        catalog_add_entry(c, CATALOG_TOPIC, &tp) != ST_OK || catalog_add_fact(c, &f) != ST_OK ||
        catalog_finish(c) != ST_OK) {
        (void)fprintf(stderr, "catalog: %s\n", catalog_errmsg(c));
        catalog_free(c);
        return NULL;
    }
    return c;
}

/* A client on the fixture's http thread; url NULL = the fake. */
static llm_client *make_llm(fx *f, const char *url, int max_attempts)
{
    llm_config cfg;
    llm_config_default(&cfg);
    cfg.url = url != NULL ? url : f->url;
    cfg.model = "test-model";
    cfg.api_key = API_KEY;
    cfg.timeout_ms = 5000;
    cfg.max_attempts = max_attempts;
    cfg.backoff_base_ms = 50;
    cfg.backoff_max_ms = 200;
    return llm_new(&cfg, f->http);
}

static int setup(void **state)
{
    fx *f = xcalloc(1, sizeof *f);
    char *err = NULL;
    f->fake = fake_llm_start();
    f->http = http_client_new(&err);
    f->cat = test_catalog();
    if (f->fake == NULL || f->http == NULL || f->cat == NULL) {
        (void)fprintf(stderr, "setup failed: %s\n", err != NULL ? err : "");
        free(err);
        return -1;
    }
    fake_llm_url(f->fake, f->url, sizeof f->url);
    f->llm = make_llm(f, NULL, 3);
    size_t n = 0;
    f->req.cat = f->cat;
    f->req.content_type = catalog_find(f->cat, CATALOG_CONTENT_TYPE, "myth_busting");
    f->req.voice_style = catalog_find(f->cat, CATALOG_VOICE_STYLE, "truth_seeker");
    f->req.topic = catalog_find(f->cat, CATALOG_TOPIC, "sleep");
    f->req.facts = catalog_topic_facts(f->cat, "sleep", &n);
    f->req.n_facts = n;
    f->req.platform = PLATFORM_X;
    f->req.request_id = "req-1234";
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    llm_free(f->llm);
    http_client_free(f->http);
    fake_llm_stop(f->fake);
    catalog_free(f->cat);
    free(f);
    return 0;
}

static status start(fx *f, int64_t deadline_in_ms, res *r, uint64_t *job)
{
    char err[200];
    return llm_generate(f->llm, &f->req, now_mono_ms() + deadline_in_ms, on_llm, r, job, err,
                        sizeof err);
}

static long rss_kb(void)
{
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof line, fp) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    (void)fclose(fp);
    return kb;
}

static const char *POST_TEXT = "Adults who slept under 6 hours were 4.2 times as likely to catch "
                               "a cold (Prather et al., Sleep, 2015).";

/* ---- tests ---- */

static void success(void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    fake_llm_push(f->fake, &(fake_llm_reply){ .content = POST_TEXT });
    uint64_t job = 0;
    assert_int_equal(start(f, 5000, &r, &job), ST_OK);
    assert_true(job != 0);
    assert_true(res_wait(&r, 5000));
    assert_int_equal(r.st, ST_OK);
    assert_string_equal(r.text, POST_TEXT);
    assert_string_equal(r.reason, "");
    assert_null(r.code);
    assert_string_equal(r.model, "fake-model"); /* as the endpoint reported it */
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.http_status, 200);
    assert_int_equal(r.job, job);
    assert_int_equal(r.retry_delay_ms, -1);
    assert_false(pthread_equal(r.thread, pthread_self()));

    /* What went over the wire. */
    char *auth = fake_llm_request_header(f->fake, 1, "authorization");
    assert_string_equal(auth, "Bearer " API_KEY);
    free(auth);
    char *ct = fake_llm_request_header(f->fake, 1, "content-type");
    assert_string_equal(ct, "application/json");
    free(ct);
    char *rid = fake_llm_request_header(f->fake, 1, "x-request-id");
    assert_string_equal(rid, "req-1234");
    free(rid);
    char *line = fake_llm_request_line(f->fake, 1);
    assert_string_equal(line, "POST /v1/chat/completions");
    free(line);
    char *body = fake_llm_request_body(f->fake, 1);
    json_object *root = json_tokener_parse(body);
    assert_non_null(root);
    json_object *model = NULL, *msgs = NULL;
    assert_true(json_object_object_get_ex(root, "model", &model));
    assert_string_equal(json_object_get_string(model), "test-model");
    assert_true(json_object_object_get_ex(root, "messages", &msgs));
    assert_int_equal(json_object_array_length(msgs), 2);
    assert_non_null(strstr(body, "4.2 times as likely"));
    assert_null(strstr(body, API_KEY)); /* the key only travels in the header */
    json_object_put(root);
    free(body);
    assert_int_equal(llm_jobs_in_flight(f->llm), 0);
    res_fini(&r);
}

static void rate_limited_then_success(void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    fake_llm_push(f->fake, &(fake_llm_reply){ .status = 429,
                                              .headers = "Retry-After: 1\r\n",
                                              .body = "{\"error\":{\"message\":\"slow down\"}}" });
    fake_llm_push(f->fake, &(fake_llm_reply){ .content = POST_TEXT });
    assert_int_equal(start(f, 5000, &r, NULL), ST_OK);
    assert_true(res_wait(&r, 5000));
    assert_int_equal(r.st, ST_OK);
    assert_string_equal(r.text, POST_TEXT);
    assert_int_equal(r.attempts, 2);
    assert_int_equal(fake_llm_requests(f->fake), 2);
    /* Retry-After honoured: the second request came >= 1 s after the first. */
    int64_t gap = fake_llm_request_time(f->fake, 2) - fake_llm_request_time(f->fake, 1);
    print_message("429 Retry-After: 1 -> retried after %lld ms\n", (long long)gap);
    assert_true(gap >= 1000 && gap < 1500);
    res_fini(&r);
}

static void rate_limited_past_deadline(void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    fake_llm_push(f->fake, &(fake_llm_reply){ .status = 429, .headers = "Retry-After: 5\r\n" });
    int64_t t0 = now_mono_ms();
    assert_int_equal(start(f, 1000, &r, NULL), ST_OK);
    assert_true(res_wait(&r, 3000));
    /* Not waited for: a retry cannot fit, so the caller hears at once. */
    assert_true(r.at_ms - t0 < 500);
    assert_int_equal(r.st, ST_UNAVAILABLE);
    assert_string_equal(r.code, "LLM_RATE_LIMITED");
    assert_int_equal(r.retry_delay_ms, 5000);
    assert_int_equal(r.http_status, 429);
    assert_int_equal(r.attempts, 1);
    assert_non_null(strstr(r.reason, "429"));
    assert_non_null(strstr(r.reason, "retry after 5000 ms"));
    res_fini(&r);
}

static void rate_limited_with_http_date(void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    char hdr[96], date[64];
    time_t when = time(NULL) + 3;
    struct tm tm;
    gmtime_r(&when, &tm);
    (void)strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    (void)snprintf(hdr, sizeof hdr, "Retry-After: %s\r\n", date);
    fake_llm_push(f->fake, &(fake_llm_reply){ .status = 429, .headers = hdr });
    assert_int_equal(start(f, 1000, &r, NULL), ST_OK);
    assert_true(res_wait(&r, 3000));
    assert_int_equal(r.st, ST_UNAVAILABLE);
    /* Whole seconds on the wire: 2-3 s from now. */
    assert_true(r.retry_delay_ms >= 1900 && r.retry_delay_ms <= 3100);
    res_fini(&r);
}

static void server_error_then_success(void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    fake_llm_push(f->fake, &(fake_llm_reply){ .status = 500, .body = "{\"error\":\"oops\"}" });
    fake_llm_push(f->fake, &(fake_llm_reply){ .content = POST_TEXT });
    assert_int_equal(start(f, 5000, &r, NULL), ST_OK);
    assert_true(res_wait(&r, 5000));
    assert_int_equal(r.st, ST_OK);
    assert_string_equal(r.text, POST_TEXT);
    assert_int_equal(r.attempts, 2);
    res_fini(&r);
}

static void server_errors_exhaust_attempts(void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    fake_llm_set_default(f->fake, &(fake_llm_reply){ .status = 503 });
    assert_int_equal(start(f, 5000, &r, NULL), ST_OK);
    assert_true(res_wait(&r, 5000));
    assert_int_equal(r.st, ST_UNAVAILABLE);
    assert_string_equal(r.code, "LLM_UNAVAILABLE");
    assert_int_equal(r.attempts, 3);
    assert_int_equal(r.http_status, 503);
    assert_true(r.retry_delay_ms >= 0);
    assert_int_equal(fake_llm_requests(f->fake), 3);
    assert_non_null(strstr(r.reason, "HTTP 503"));
    res_fini(&r);
}

static void delay_past_deadline(void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    fake_llm_push(f->fake, &(fake_llm_reply){ .delay_ms = 5000 });
    int64_t deadline = now_mono_ms() + 400;
    char err[200];
    assert_int_equal(llm_generate(f->llm, &f->req, deadline, on_llm, &r, NULL, err, sizeof err),
                     ST_OK);
    assert_true(res_wait(&r, 3000));
    assert_int_equal(r.st, ST_TIMEOUT);
    assert_string_equal(r.code, "LLM_TIMEOUT");
    print_message("deadline %lld: callback at +%lld ms\n", (long long)deadline,
                  (long long)(r.at_ms - deadline));
    assert_true(r.at_ms >= deadline - 5 && r.at_ms <= deadline + 100);
    /* The fake sees the client close the connection within deadline + 100 ms. */
    int64_t closed = fake_llm_wait_aborts(f->fake, 1, 1000);
    assert_true(closed > 0);
    assert_true(closed <= deadline + 100);
    assert_int_equal(fake_llm_requests(f->fake), 1);
    res_fini(&r);
}

static void body_over_the_cap(bool chunked, void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    long before = rss_kb();
    fake_llm_push(f->fake, &(fake_llm_reply){ .filler_bytes = 20u << 20, .chunked = chunked });
    assert_int_equal(start(f, 5000, &r, NULL), ST_OK);
    assert_true(res_wait(&r, 5000));
    long after = rss_kb();
    assert_int_equal(r.st, ST_INTERNAL);
    assert_string_equal(r.code, "LLM_RESPONSE_TOO_LARGE");
    assert_int_equal(r.attempts, 1); /* not retried */
    print_message("20 MiB %s LLM body: RSS %ld -> %ld kB\n", chunked ? "chunked" : "sized", before,
                  after);
    assert_true(before > 0 && after - before < 20L * 1024);
    assert_true(fake_llm_wait_aborts(f->fake, 1, 2000) > 0);
    res_fini(&r);
}

static void body_over_the_cap_chunked(void **state)
{
    body_over_the_cap(true, state);
}

static void body_over_the_cap_sized(void **state)
{
    body_over_the_cap(false, state);
}

static void malformed_json(void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    fake_llm_push(f->fake,
                  &(fake_llm_reply){ .body = "{\"choices\":[{\"message\":{\"content\":\"cut" });
    assert_int_equal(start(f, 5000, &r, NULL), ST_OK);
    assert_true(res_wait(&r, 5000));
    assert_int_equal(r.st, ST_INTERNAL);
    assert_string_equal(r.code, "LLM_BAD_RESPONSE");
    assert_non_null(strstr(r.reason, "malformed JSON"));
    assert_int_equal(r.attempts, 1);
    res_fini(&r);
}

static void truncated_by_token_limit(void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    fake_llm_push(f->fake, &(fake_llm_reply){ .body = "{\"choices\":[{\"message\":{\"content\":"
                                                      "\"Adults who slept\"},\"finish_reason\":"
                                                      "\"length\"}]}" });
    assert_int_equal(start(f, 5000, &r, NULL), ST_OK);
    assert_true(res_wait(&r, 5000));
    assert_int_equal(r.st, ST_INTERNAL);
    assert_non_null(strstr(r.reason, "incomplete"));
    res_fini(&r);
}

static void unauthorized_masks_the_key(void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    fake_llm_push(f->fake,
                  &(fake_llm_reply){ .status = 401,
                                     .body = "{\"error\":{\"message\":\"Incorrect API key "
                                             "provided: " API_KEY "\",\"type\":\"invalid\"}}" });
    assert_int_equal(start(f, 5000, &r, NULL), ST_OK);
    assert_true(res_wait(&r, 5000));
    assert_int_equal(r.st, ST_FAILED_PRECONDITION);
    assert_string_equal(r.code, "LLM_AUTH");
    assert_int_equal(r.attempts, 1); /* permanent: not retried */
    assert_non_null(strstr(r.reason, "401"));
    assert_non_null(strstr(r.reason, "Incorrect API key provided: ***"));
    assert_null(strstr(r.reason, API_KEY));
    assert_null(strstr(r.reason, "SECRET"));
    res_fini(&r);
}

static void bad_request_is_ours(void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    fake_llm_push(f->fake, &(fake_llm_reply){ .status = 400,
                                              .body = "{\"error\":{\"message\":\"bad field\"}}" });
    assert_int_equal(start(f, 5000, &r, NULL), ST_OK);
    assert_true(res_wait(&r, 5000));
    assert_int_equal(r.st, ST_INTERNAL);
    assert_string_equal(r.code, "LLM_REJECTED");
    assert_non_null(strstr(r.reason, "bad field"));
    assert_int_equal(r.attempts, 1);
    res_fini(&r);
}

static void cancel_in_flight(void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    fake_llm_push(f->fake, &(fake_llm_reply){ .delay_ms = 5000 });
    uint64_t job = 0;
    assert_int_equal(start(f, 8000, &r, &job), ST_OK);
    for (int i = 0; i < 200 && fake_llm_requests(f->fake) < 1; i++)
        usleep(5000);
    assert_int_equal(fake_llm_requests(f->fake), 1);
    int64_t t = now_mono_ms();
    llm_cancel(f->llm, job);
    assert_true(res_wait(&r, 2000));
    assert_int_equal(r.st, ST_CANCELLED);
    assert_string_equal(r.code, "LLM_CANCELLED");
    assert_true(r.at_ms - t < 100);
    int64_t closed = fake_llm_wait_aborts(f->fake, 1, 1000);
    assert_true(closed > 0 && closed - t < 100);
    llm_cancel(f->llm, job); /* finished: no-op */
    llm_cancel(f->llm, 424242);
    usleep(20 * 1000);
    assert_int_equal(res_calls(&r), 1);
    res_fini(&r);
}

static void cancel_during_backoff(void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    /* 503 with Retry-After: the retry waits 3 s on the http thread's timer. */
    fake_llm_push(f->fake, &(fake_llm_reply){ .status = 503, .headers = "Retry-After: 3\r\n" });
    uint64_t job = 0;
    assert_int_equal(start(f, 8000, &r, &job), ST_OK);
    for (int i = 0; i < 200 && fake_llm_requests(f->fake) < 1; i++)
        usleep(5000);
    usleep(100 * 1000);
    assert_int_equal(res_calls(&r), 0);
    int64_t t = now_mono_ms();
    llm_cancel(f->llm, job);
    assert_true(res_wait(&r, 2000));
    assert_int_equal(r.st, ST_CANCELLED);
    assert_true(r.at_ms - t < 100);
    assert_int_equal(fake_llm_requests(f->fake), 1);
    res_fini(&r);
}

static void connect_failure_is_unavailable(void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
    close(s);
    char url[96];
    (void)snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", ntohs(sa.sin_port));
    llm_free(f->llm);
    f->llm = make_llm(f, url, 3);
    assert_int_equal(start(f, 5000, &r, NULL), ST_OK);
    assert_true(res_wait(&r, 5000));
    assert_int_equal(r.st, ST_UNAVAILABLE);
    assert_string_equal(r.code, "LLM_UNAVAILABLE");
    assert_int_equal(r.attempts, 3);
    assert_int_equal(r.http_status, 0);
    assert_non_null(strstr(r.reason, "unreachable"));
    res_fini(&r);
}

static void refusals_without_callback(void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    char err[200];

    llm_config cfg;
    llm_config_default(&cfg);
    llm_client *off = llm_new(&cfg, f->http);
    assert_false(llm_configured(off));
    assert_int_equal(
        llm_generate(off, &f->req, now_mono_ms() + 1000, on_llm, &r, NULL, err, sizeof err),
        ST_FAILED_PRECONDITION);
    assert_non_null(strstr(err, "llm.url"));
    llm_free(off);

    assert_true(llm_configured(f->llm));
    assert_string_equal(llm_model(f->llm), "test-model");
    assert_int_equal(
        llm_generate(f->llm, &f->req, now_mono_ms() - 1, on_llm, &r, NULL, err, sizeof err),
        ST_TIMEOUT);
    llm_request bad = f->req;
    bad.n_facts = 0;
    assert_int_equal(
        llm_generate(f->llm, &bad, now_mono_ms() + 1000, on_llm, &r, NULL, err, sizeof err),
        ST_INVALID);
    usleep(20 * 1000);
    assert_int_equal(res_calls(&r), 0);
    assert_int_equal(fake_llm_requests(f->fake), 0);
    res_fini(&r);
}

static void shutdown_ends_jobs(void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    fake_llm_push(f->fake, &(fake_llm_reply){ .delay_ms = 5000 });
    assert_int_equal(start(f, 8000, &r, NULL), ST_OK);
    for (int i = 0; i < 200 && fake_llm_requests(f->fake) < 1; i++)
        usleep(5000);
    http_client_shutdown(f->http);
    assert_int_equal(res_calls(&r), 1);
    assert_int_equal(r.st, ST_UNAVAILABLE);
    assert_string_equal(r.code, "LLM_SHUTDOWN");
    {
        res r2;
        res_init(&r2);
        char err[200];
        assert_int_equal(
            llm_generate(f->llm, &f->req, now_mono_ms() + 1000, on_llm, &r2, NULL, err, sizeof err),
            ST_UNAVAILABLE);
        res_fini(&r2);
    }
    res_fini(&r);
}

static void free_cancels_and_waits(void **state)
{
    fx *f = *state;
    res r;
    res_init(&r);
    fake_llm_push(f->fake, &(fake_llm_reply){ .delay_ms = 5000 });
    assert_int_equal(start(f, 8000, &r, NULL), ST_OK);
    for (int i = 0; i < 200 && fake_llm_requests(f->fake) < 1; i++)
        usleep(5000);
    int64_t t = now_mono_ms();
    llm_free(f->llm);
    f->llm = NULL;
    assert_true(now_mono_ms() - t < 500);
    assert_int_equal(res_calls(&r), 1); /* the callback ran before llm_free returned */
    assert_int_equal(r.st, ST_CANCELLED);
    res_fini(&r);
}

enum { N_CONCURRENT = 20 };

static void twenty_concurrent_calls(void **state)
{
    fx *f = *state;
    res r[N_CONCURRENT];
    fake_llm_set_default(f->fake, &(fake_llm_reply){ .delay_ms = 400 });
    int64_t t0 = now_mono_ms();
    int64_t slowest_call = 0;
    for (int i = 0; i < N_CONCURRENT; i++) {
        res_init(&r[i]);
        int64_t a = now_mono_ms();
        assert_int_equal(start(f, 5000, &r[i], NULL), ST_OK);
        if (now_mono_ms() - a > slowest_call)
            slowest_call = now_mono_ms() - a;
    }
    /* The calling thread (a worker, in heraldd) never waits on the LLM. */
    assert_true(slowest_call < 20);
    for (int i = 0; i < 200 && fake_llm_requests(f->fake) < N_CONCURRENT; i++)
        usleep(5000);
    assert_int_equal(fake_llm_requests(f->fake), N_CONCURRENT);
    assert_int_equal(llm_jobs_in_flight(f->llm), N_CONCURRENT);
    int64_t last = 0;
    for (int i = 0; i < N_CONCURRENT; i++) {
        assert_true(res_wait(&r[i], 3000));
        assert_int_equal(r[i].st, ST_OK);
        if (r[i].at_ms > last)
            last = r[i].at_ms;
    }
    print_message("20 concurrent LLM calls (400 ms each): all done in %lld ms, slowest "
                  "llm_generate %lld ms\n",
                  (long long)(last - t0), (long long)slowest_call);
    assert_true(last - t0 < 1500);
    assert_true(fake_llm_max_pending(f->fake) >= N_CONCURRENT);
    /* Each job got its own reply. */
    for (int i = 0; i < N_CONCURRENT; i++)
        for (int j = i + 1; j < N_CONCURRENT; j++)
            assert_string_not_equal(r[i].text, r[j].text);
    assert_int_equal(llm_jobs_in_flight(f->llm), 0);
    for (int i = 0; i < N_CONCURRENT; i++)
        res_fini(&r[i]);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(success),
        T(rate_limited_then_success),
        T(rate_limited_past_deadline),
        T(rate_limited_with_http_date),
        T(server_error_then_success),
        T(server_errors_exhaust_attempts),
        T(delay_past_deadline),
        T(body_over_the_cap_chunked),
        T(body_over_the_cap_sized),
        T(malformed_json),
        T(truncated_by_token_limit),
        T(unauthorized_masks_the_key),
        T(bad_request_is_ours),
        T(cancel_in_flight),
        T(cancel_during_backoff),
        T(connect_failure_is_unavailable),
        T(refusals_without_callback),
        T(shutdown_ends_jobs),
        T(free_cancels_and_waits),
        T(twenty_concurrent_calls),
    };
#undef T
    /* Loopback only: never let a proxy from the environment carry the tests'
     * traffic off the machine. */
    setenv("no_proxy", "*", 1);
    setenv("NO_PROXY", "*", 1);
    if (http_global_init() != ST_OK)
        return 1;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    http_global_fini();
    return rc;
}
