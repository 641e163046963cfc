/* test_http.c - the curl-multi client (server/http.c) against the fake
 * server on 127.0.0.1: results and error classes, byte caps, deadlines,
 * cancellation, delayed starts, shutdown, concurrency on the single thread,
 * counters, and the Retry-After parser. Every wait is bounded. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fake_llm.h"
#include "http.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

/* ---- collecting results ---- */

typedef struct got {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    http_result_kind kind;
    int status;
    bool sent, deadline_hit;
    char *body;
    size_t body_len;
    char *retry_after, *x_thing;
    char *error;
    int64_t elapsed_ms;
    int64_t at_ms; /* now_mono_ms() in the callback */
    pthread_t thread;
    /* chaining: submit another request from inside the callback */
    http_client *chain_client;
    const http_request *chain_req;
    struct got *chain_got;
    status chain_st;
} got;

static void got_init(got *g)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
}

static void got_fini(got *g)
{
    free(g->body);
    free(g->retry_after);
    free(g->x_thing);
    free(g->error);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

static void on_done(const http_result *r, void *user)
{
    got *g = user;
    const char *ra = http_result_header(r, "Retry-After");
    const char *xt = http_result_header(r, "x-thing");
    status chain_st = ST_OK;

    if (g->chain_client != NULL)
        chain_st = http_submit(g->chain_client, g->chain_req, on_done, g->chain_got, NULL);
    pthread_mutex_lock(&g->mu);
    g->calls++;
    g->kind = r->kind;
    g->status = r->status;
    g->sent = r->request_sent;
    g->deadline_hit = r->deadline_hit;
    g->body = xstrndup(r->body, r->body_len);
    g->body_len = r->body_len;
    g->retry_after = ra != NULL ? xstrdup(ra) : NULL;
    g->x_thing = xt != NULL ? xstrdup(xt) : NULL;
    g->error = r->error != NULL ? xstrdup(r->error) : NULL;
    g->elapsed_ms = r->elapsed_ms;
    g->at_ms = now_mono_ms();
    g->thread = pthread_self();
    g->chain_st = chain_st;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Waits up to timeout_ms for the callback; true when it ran. */
static bool got_wait(got *g, int timeout_ms)
{
    int64_t end = now_mono_ms() + timeout_ms;
    pthread_mutex_lock(&g->mu);
    while (g->calls == 0 && now_mono_ms() < end) {
        pthread_mutex_unlock(&g->mu);
        usleep(2000);
        pthread_mutex_lock(&g->mu);
    }
    bool ok = g->calls > 0;
    pthread_mutex_unlock(&g->mu);
    return ok;
}

static int got_calls(got *g)
{
    pthread_mutex_lock(&g->mu);
    int n = g->calls;
    pthread_mutex_unlock(&g->mu);
    return n;
}

/* ---- fixture ---- */

typedef struct fx {
    fake_llm *fake;
    http_client *http;
    char url[128];
} fx;

static int setup(void **state)
{
    fx *f = xcalloc(1, sizeof *f);
    char *err = NULL;
    f->fake = fake_llm_start();
    f->http = http_client_new(&err);
    if (f->fake == NULL || f->http == NULL) {
        (void)fprintf(stderr, "setup: %s\n", err != NULL ? err : "fake server");
        free(err);
        return -1;
    }
    fake_llm_url(f->fake, f->url, sizeof f->url);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    http_client_free(f->http);
    fake_llm_stop(f->fake);
    free(f);
    return 0;
}

static http_request base_req(const fx *f)
{
    http_request r;
    memset(&r, 0, sizeof r);
    r.upstream = "test";
    r.url = f->url;
    r.timeout_ms = 5000;
    return r;
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

/* ---- tests ---- */

static void ok_get_with_headers(void **state)
{
    fx *f = *state;
    got g;
    got_init(&g);
    fake_llm_push(f->fake, &(fake_llm_reply){ .status = 200,
                                              .headers = "Retry-After: 7\r\nX-Thing:  a b \r\n",
                                              .body = "hello" });
    http_request r = base_req(f);
    uint64_t id = 0;
    assert_int_equal(http_submit(f->http, &r, on_done, &g, &id), ST_OK);
    assert_true(id != 0);
    assert_true(got_wait(&g, 3000));
    assert_int_equal(g.kind, HTTP_RES_OK);
    assert_int_equal(g.status, 200);
    assert_true(g.sent);
    assert_string_equal(g.body, "hello");
    assert_non_null(g.retry_after);
    assert_string_equal(g.retry_after, "7");
    assert_non_null(g.x_thing);
    assert_string_equal(g.x_thing, "a b");
    assert_null(g.error);
    /* The callback ran on the http thread, not here. */
    assert_false(pthread_equal(g.thread, pthread_self()));
    char *line = fake_llm_request_line(f->fake, 1);
    assert_string_equal(line, "GET /v1/chat/completions");
    free(line);
    got_fini(&g);
}

static void post_body_and_headers_arrive(void **state)
{
    fx *f = *state;
    got g;
    got_init(&g);
    size_t n = (size_t)100 * 1024; /* more than libcurl sends along with the headers */
    char *body = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + (i * 7) % 26);
    const char *hdrs[] = { "Authorization: Bearer s3cret", "Content-Type: application/json" };
    http_request r = base_req(f);
    r.body = body;
    r.body_len = n;
    r.headers = hdrs;
    r.n_headers = 2;
    assert_int_equal(http_submit(f->http, &r, on_done, &g, NULL), ST_OK);
    free(body); /* copied by submit */
    assert_true(got_wait(&g, 3000));
    assert_int_equal(g.kind, HTTP_RES_OK);
    char *seen = fake_llm_request_body(f->fake, 1);
    assert_non_null(seen);
    assert_int_equal(strlen(seen), n);
    for (size_t i = 0; i < n; i++)
        if (seen[i] != (char)('a' + (i * 7) % 26))
            fail_msg("body differs at %zu", i);
    free(seen);
    char *auth = fake_llm_request_header(f->fake, 1, "authorization");
    assert_string_equal(auth, "Bearer s3cret");
    free(auth);
    char *expect = fake_llm_request_header(f->fake, 1, "expect");
    assert_null(expect); /* no 100-continue round trip */
    char *line = fake_llm_request_line(f->fake, 1);
    assert_string_equal(line, "POST /v1/chat/completions");
    free(line);
    got_fini(&g);
}

static void error_status_is_a_response(void **state)
{
    fx *f = *state;
    got g;
    got_init(&g);
    fake_llm_push(f->fake, &(fake_llm_reply){ .status = 500, .body = "{\"error\":\"boom\"}" });
    http_request r = base_req(f);
    assert_int_equal(http_submit(f->http, &r, on_done, &g, NULL), ST_OK);
    assert_true(got_wait(&g, 3000));
    assert_int_equal(g.kind, HTTP_RES_OK);
    assert_int_equal(g.status, 500);
    assert_string_equal(g.body, "{\"error\":\"boom\"}");
    got_fini(&g);
}

static void deadline_after_send_closes_connection(void **state)
{
    fx *f = *state;
    got g;
    got_init(&g);
    fake_llm_push(f->fake, &(fake_llm_reply){ .delay_ms = 3000 });
    http_request r = base_req(f);
    r.timeout_ms = 10000;
    int64_t t0 = now_mono_ms();
    r.deadline_ms = t0 + 300;
    r.body = "{}";
    r.body_len = 2;
    assert_int_equal(http_submit(f->http, &r, on_done, &g, NULL), ST_OK);
    assert_true(got_wait(&g, 3000));
    assert_int_equal(g.kind, HTTP_RES_TIMEOUT_SENT);
    assert_true(g.sent);
    assert_true(g.deadline_hit);
    assert_non_null(g.error);
    assert_true(g.at_ms >= r.deadline_ms - 5);
    assert_true(g.at_ms <= r.deadline_ms + 100);
    /* The upstream sees the connection closed, within deadline + 100 ms. */
    int64_t closed = fake_llm_wait_aborts(f->fake, 1, 1000);
    assert_true(closed > 0);
    assert_true(closed <= r.deadline_ms + 100);
    got_fini(&g);
}

static void timeout_cap_is_not_the_deadline(void **state)
{
    fx *f = *state;
    got g;
    got_init(&g);
    fake_llm_push(f->fake, &(fake_llm_reply){ .delay_ms = 3000 });
    http_request r = base_req(f);
    r.timeout_ms = 200;
    r.deadline_ms = now_mono_ms() + 5000;
    assert_int_equal(http_submit(f->http, &r, on_done, &g, NULL), ST_OK);
    assert_true(got_wait(&g, 3000));
    assert_int_equal(g.kind, HTTP_RES_TIMEOUT_SENT);
    assert_false(g.deadline_hit);
    assert_true(g.elapsed_ms >= 190 && g.elapsed_ms < 1000);
    got_fini(&g);
}

static void connect_refused(void **state)
{
    fx *f = *state;
    got g;
    got_init(&g);
    /* A port that was just free and is closed again. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
    close(s);
    char url[64];
    (void)snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(sa.sin_port));
    http_request r = base_req(f);
    r.url = url;
    assert_int_equal(http_submit(f->http, &r, on_done, &g, NULL), ST_OK);
    assert_true(got_wait(&g, 3000));
    assert_int_equal(g.kind, HTTP_RES_CONNECT);
    assert_false(g.sent);
    assert_int_equal(g.status, 0);
    got_fini(&g);
}

static void connect_timeout_is_unsent(void **state)
{
    fx *f = *state;
    got g;
    got_init(&g);
    /* A listener whose accept queue is full drops further SYNs: a connect
     * that times out, on loopback. */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(l, 0), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(fill[i], (struct sockaddr *)&sa, sizeof sa);
    }
    usleep(100 * 1000);
    char url[64];
    (void)snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(sa.sin_port));
    http_request r = base_req(f);
    r.url = url;
    r.connect_timeout_ms = 250;
    r.body = "{}";
    r.body_len = 2;
    assert_int_equal(http_submit(f->http, &r, on_done, &g, NULL), ST_OK);
    assert_true(got_wait(&g, 3000));
    assert_int_equal(g.kind, HTTP_RES_TIMEOUT_UNSENT);
    assert_false(g.sent);
    assert_false(g.deadline_hit);
    assert_true(g.elapsed_ms >= 240 && g.elapsed_ms < 1000);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(l);
    got_fini(&g);
}

static void closed_without_reply_is_reset(void **state)
{
    fx *f = *state;
    got g;
    got_init(&g);
    fake_llm_push(f->fake, &(fake_llm_reply){ .close_no_reply = true });
    http_request r = base_req(f);
    r.body = "{}";
    r.body_len = 2;
    assert_int_equal(http_submit(f->http, &r, on_done, &g, NULL), ST_OK);
    assert_true(got_wait(&g, 3000));
    assert_int_equal(g.kind, HTTP_RES_RESET);
    assert_true(g.sent); /* the upstream had the whole request */
    got_fini(&g);
}

static void too_large(fx *f, bool chunked)
{
    got g;
    got_init(&g);
    long before = rss_kb();
    fake_llm_push(f->fake, &(fake_llm_reply){ .filler_bytes = 20u << 20, .chunked = chunked });
    http_request r = base_req(f);
    r.max_response_bytes = 1u << 20;
    int64_t t0 = now_mono_ms();
    assert_int_equal(http_submit(f->http, &r, on_done, &g, NULL), ST_OK);
    assert_true(got_wait(&g, 5000));
    assert_int_equal(g.kind, HTTP_RES_TOO_LARGE);
    assert_true(g.at_ms - t0 < 2000);
    assert_true(g.body_len <= (1u << 20));
    long after = rss_kb();
    print_message("20 MiB %s body: RSS %ld -> %ld kB, rejected in %lld ms\n",
                  chunked ? "chunked" : "sized", before, after, (long long)(g.at_ms - t0));
    assert_true(before > 0 && after > 0);
    assert_true(after - before < 20L * 1024);
    /* The transfer was aborted: the fake sees the client close mid-reply. */
    assert_true(fake_llm_wait_aborts(f->fake, 1, 2000) > 0);
    got_fini(&g);
}

static void too_large_sized(void **state)
{
    too_large(*state, false);
}

static void too_large_chunked(void **state)
{
    too_large(*state, true);
}

static void cap_boundary(void **state)
{
    fx *f = *state;
    const size_t cap = 100000;
    for (int chunked = 0; chunked <= 1; chunked++) {
        for (size_t extra = 0; extra <= 1; extra++) {
            got g;
            got_init(&g);
            fake_llm_push(f->fake,
                          &(fake_llm_reply){ .filler_bytes = cap + extra, .chunked = chunked });
            http_request r = base_req(f);
            r.max_response_bytes = cap;
            assert_int_equal(http_submit(f->http, &r, on_done, &g, NULL), ST_OK);
            assert_true(got_wait(&g, 3000));
            if (extra == 0) {
                assert_int_equal(g.kind, HTTP_RES_OK);
                assert_int_equal(g.body_len, cap);
            } else {
                assert_int_equal(g.kind, HTTP_RES_TOO_LARGE);
            }
            got_fini(&g);
        }
    }
}

static void cancel_in_flight(void **state)
{
    fx *f = *state;
    got g;
    got_init(&g);
    fake_llm_push(f->fake, &(fake_llm_reply){ .delay_ms = 5000 });
    http_request r = base_req(f);
    uint64_t id = 0;
    assert_int_equal(http_submit(f->http, &r, on_done, &g, &id), ST_OK);
    /* Wait until the fake has the request, then cancel. */
    for (int i = 0; i < 200 && fake_llm_requests(f->fake) < 1; i++)
        usleep(5000);
    assert_int_equal(fake_llm_requests(f->fake), 1);
    int64_t t_cancel = now_mono_ms();
    http_cancel(f->http, id);
    assert_true(got_wait(&g, 2000));
    assert_int_equal(g.kind, HTTP_RES_CANCELLED);
    assert_true(g.at_ms - t_cancel < 100);
    int64_t closed = fake_llm_wait_aborts(f->fake, 1, 1000);
    assert_true(closed > 0 && closed - t_cancel < 100);
    /* Cancelling again, or an id never issued, does nothing. */
    http_cancel(f->http, id);
    http_cancel(f->http, 987654321);
    usleep(50 * 1000);
    assert_int_equal(got_calls(&g), 1);
    got_fini(&g);
}

static void delayed_start_and_cancel_delayed(void **state)
{
    fx *f = *state;
    got a, b;
    got_init(&a);
    got_init(&b);
    http_request r = base_req(f);
    int64_t t0 = now_mono_ms();
    r.start_at_ms = t0 + 300;
    assert_int_equal(http_submit(f->http, &r, on_done, &a, NULL), ST_OK);
    http_request r2 = base_req(f);
    r2.start_at_ms = t0 + 5000;
    uint64_t id2 = 0;
    assert_int_equal(http_submit(f->http, &r2, on_done, &b, &id2), ST_OK);
    usleep(100 * 1000);
    assert_int_equal(fake_llm_requests(f->fake), 0);
    http_cancel(f->http, id2);
    assert_true(got_wait(&b, 1000));
    assert_int_equal(b.kind, HTTP_RES_CANCELLED);
    assert_true(got_wait(&a, 3000));
    assert_int_equal(a.kind, HTTP_RES_OK);
    int64_t seen = fake_llm_request_time(f->fake, 1);
    assert_true(seen >= t0 + 300);
    assert_int_equal(fake_llm_requests(f->fake), 1); /* the cancelled one never went out */
    got_fini(&a);
    got_fini(&b);
}

static void deadline_already_passed(void **state)
{
    fx *f = *state;
    got g;
    got_init(&g);
    http_request r = base_req(f);
    r.deadline_ms = now_mono_ms() - 1;
    assert_int_equal(http_submit(f->http, &r, on_done, &g, NULL), ST_OK);
    assert_true(got_wait(&g, 1000));
    assert_int_equal(g.kind, HTTP_RES_TIMEOUT_UNSENT);
    assert_true(g.deadline_hit);
    assert_false(g.sent);
    usleep(50 * 1000);
    assert_int_equal(fake_llm_requests(f->fake), 0);
    got_fini(&g);
}

enum { N_CONCURRENT = 20 };

static void twenty_in_flight_on_one_thread(void **state)
{
    fx *f = *state;
    got g[N_CONCURRENT], fast;
    fake_llm_set_default(f->fake, &(fake_llm_reply){ .delay_ms = 400 });
    int64_t t0 = now_mono_ms();
    for (int i = 0; i < N_CONCURRENT; i++) {
        got_init(&g[i]);
        http_request r = base_req(f);
        r.deadline_ms = t0 + 5000;
        assert_int_equal(http_submit(f->http, &r, on_done, &g[i], NULL), ST_OK);
    }
    int64_t submitted = now_mono_ms();
    /* Submitting never waits on the network. */
    assert_true(submitted - t0 < 100);
    /* With all twenty waiting on the slow upstream, a fast request still
     * completes at once: the single thread is not blocked by them. */
    for (int i = 0; i < 200 && fake_llm_requests(f->fake) < N_CONCURRENT; i++)
        usleep(5000);
    assert_int_equal(fake_llm_requests(f->fake), N_CONCURRENT);
    got_init(&fast);
    const char *hdr[] = { "X-Fake-Delay-Ms: 0" };
    http_request rf = base_req(f);
    rf.headers = hdr;
    rf.n_headers = 1;
    int64_t tf = now_mono_ms();
    assert_int_equal(http_submit(f->http, &rf, on_done, &fast, NULL), ST_OK);
    assert_true(got_wait(&fast, 2000));
    assert_int_equal(fast.kind, HTTP_RES_OK);
    assert_true(fast.at_ms - tf < 100);
    for (int i = 0; i < N_CONCURRENT; i++)
        assert_int_equal(got_calls(&g[i]), 0); /* still in flight */
    int64_t last = 0;
    for (int i = 0; i < N_CONCURRENT; i++) {
        assert_true(got_wait(&g[i], 3000));
        assert_int_equal(g[i].kind, HTTP_RES_OK);
        assert_int_equal(g[i].status, 200);
        if (g[i].at_ms > last)
            last = g[i].at_ms;
    }
    print_message("20 x 400 ms upstream calls: all done after %lld ms; fast call %lld ms\n",
                  (long long)(last - t0), (long long)(fast.at_ms - tf));
    assert_true(last - t0 < 1500); /* serially it would take 8 s */
    assert_true(fake_llm_max_pending(f->fake) >= N_CONCURRENT);
    /* Each got its own reply: "Fake reply <n>" bodies are all different. */
    for (int i = 0; i < N_CONCURRENT; i++)
        for (int j = i + 1; j < N_CONCURRENT; j++)
            assert_string_not_equal(g[i].body, g[j].body);
    for (int i = 0; i < N_CONCURRENT; i++)
        got_fini(&g[i]);
    got_fini(&fast);
}

static void submit_from_callback(void **state)
{
    fx *f = *state;
    got a, b;
    got_init(&a);
    got_init(&b);
    http_request r = base_req(f);
    a.chain_client = f->http;
    a.chain_req = &r;
    a.chain_got = &b;
    assert_int_equal(http_submit(f->http, &r, on_done, &a, NULL), ST_OK);
    assert_true(got_wait(&a, 3000));
    assert_int_equal(a.chain_st, ST_OK);
    assert_true(got_wait(&b, 3000));
    assert_int_equal(b.kind, HTTP_RES_OK);
    assert_int_equal(fake_llm_requests(f->fake), 2);
    got_fini(&a);
    got_fini(&b);
}

static void shutdown_completes_everything(void **state)
{
    fx *f = *state;
    got g[4], chained;
    got_init(&chained);
    fake_llm_set_default(f->fake, &(fake_llm_reply){ .delay_ms = 5000 });
    http_request r = base_req(f);
    for (int i = 0; i < 4; i++) {
        got_init(&g[i]);
        http_request ri = r;
        if (i == 3)
            ri.start_at_ms = now_mono_ms() + 10000; /* still waiting to start */
        assert_int_equal(http_submit(f->http, &ri, on_done, &g[i], NULL), ST_OK);
    }
    g[0].chain_client = f->http; /* submits during shutdown */
    g[0].chain_req = &r;
    g[0].chain_got = &chained;
    for (int i = 0; i < 200 && fake_llm_requests(f->fake) < 3; i++)
        usleep(5000);
    int64_t t0 = now_mono_ms();
    http_client_shutdown(f->http);
    int64_t took = now_mono_ms() - t0;
    assert_true(took < 500);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(got_calls(&g[i]), 1);
        assert_int_equal(g[i].kind, HTTP_RES_SHUTDOWN);
    }
    assert_int_equal(g[0].chain_st, ST_UNAVAILABLE);
    assert_int_equal(got_calls(&chained), 0);
    assert_int_equal(http_submit(f->http, &r, on_done, &chained, NULL), ST_UNAVAILABLE);
    http_client_shutdown(f->http); /* idempotent */
    assert_true(fake_llm_wait_aborts(f->fake, 3, 1000) > 0);
    for (int i = 0; i < 4; i++)
        got_fini(&g[i]);
    got_fini(&chained);
}

static void invalid_requests_refused(void **state)
{
    fx *f = *state;
    got g;
    got_init(&g);
    http_request r = base_req(f);
    r.url = "ftp://127.0.0.1/x";
    assert_int_equal(http_submit(f->http, &r, on_done, &g, NULL), ST_INVALID);
    r = base_req(f);
    const char *bad[] = { "X-A: b\r\nX-Injected: 1" };
    r.headers = bad;
    r.n_headers = 1;
    assert_int_equal(http_submit(f->http, &r, on_done, &g, NULL), ST_INVALID);
    r = base_req(f);
    r.method = "GE T";
    assert_int_equal(http_submit(f->http, &r, on_done, &g, NULL), ST_INVALID);
    usleep(20 * 1000);
    assert_int_equal(got_calls(&g), 0);
    got_fini(&g);
}

typedef struct stats_seen {
    bool found;
    http_upstream_stats st;
} stats_seen;

static void on_stats(const http_upstream_stats *st, void *user)
{
    stats_seen *s = user;
    if (strcmp(st->upstream, "counted") == 0) {
        s->found = true;
        s->st = *st;
    }
}

static void counters_per_upstream(void **state)
{
    fx *f = *state;
    got g[4];
    fake_llm_push(f->fake, &(fake_llm_reply){ .status = 200 });
    fake_llm_push(f->fake, &(fake_llm_reply){ .status = 429 });
    fake_llm_push(f->fake, &(fake_llm_reply){ .status = 503 });
    fake_llm_push(f->fake, &(fake_llm_reply){ .delay_ms = 2000 });
    for (int i = 0; i < 4; i++) {
        got_init(&g[i]);
        http_request r = base_req(f);
        r.upstream = "counted";
        if (i == 3)
            r.timeout_ms = 100;
        assert_int_equal(http_submit(f->http, &r, on_done, &g[i], NULL), ST_OK);
        assert_true(got_wait(&g[i], 3000)); /* one at a time: the queue order holds */
    }
    stats_seen s = { 0 };
    http_client_stats(f->http, on_stats, &s);
    assert_true(s.found);
    assert_int_equal(s.st.results[HTTP_RES_OK], 3);
    assert_int_equal(s.st.results[HTTP_RES_TIMEOUT_SENT], 1);
    assert_int_equal(s.st.status[2], 1);
    assert_int_equal(s.st.status[4], 1);
    assert_int_equal(s.st.status_429, 1);
    assert_int_equal(s.st.status[5], 1);
    assert_int_equal(s.st.inflight, 0);
    uint64_t n = 0;
    for (int k = 0; k <= HTTP_LATENCY_BUCKETS; k++)
        n += s.st.bucket[k];
    assert_int_equal(n, 4);
    assert_true(s.st.latency_sum_s >= 0.09);
    for (int i = 0; i < 4; i++)
        got_fini(&g[i]);
}

static void retry_after_values(void **state)
{
    (void)state;
    /* Sun, 06 Nov 1994 08:49:37 GMT = 784111777 s after the epoch. */
    const int64_t t = 784111777000LL;
    struct {
        const char *v;
        int64_t now;
        int64_t want;
    } cases[] = {
        { "120", 0, 120000 },
        { " 5 ", 0, 5000 },
        { "0", 0, 0 },
        { "", 0, -1 },
        { "abc", 0, -1 },
        { "-1", 0, -1 },
        { "1.5", 0, -1 },
        { "99999999999999999999999", 0, 86400000 },
        { "Sun, 06 Nov 1994 08:49:37 GMT", t - 10000, 10000 },
        { "Sunday, 06-Nov-94 08:49:37 GMT", t - 2500, 2500 },
        { "Sun Nov  6 08:49:37 1994", t - 1000, 1000 },
        { "Sun, 06 Nov 1994 08:49:37 GMT", t + 5000, 0 }, /* in the past */
        { "Sun, 06 Nov 1994 08:49:37 GMT", t - 3 * 86400000LL, 86400000 },
        { "Sun, 32 Nov 1994 08:49:37 GMT", t, -1 },
        { "Sun, 06 Nov 1994 08:49:37 UTC", t, -1 },
        { "Sun, 06 Foo 1994 08:49:37 GMT", t, -1 },
        { "Sun, 06 Nov 1994 25:49:37 GMT", t, -1 },
        { "Sun, 06 Nov 1994 08:49:37 GMT trailing", t, -1 },
        { "Tue, 29 Feb 2000 00:00:00 GMT", 951782400000LL - 60000, 60000 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got_ms = http_retry_after_ms(cases[i].v, cases[i].now);
        if (got_ms != cases[i].want)
            fail_msg("Retry-After \"%s\": got %lld, want %lld", cases[i].v, (long long)got_ms,
                     (long long)cases[i].want);
    }
    assert_int_equal(http_retry_after_ms(NULL, 0), -1);

    /* Random strings over the characters dates are made of: always -1 or a
     * delay within a day (bounded, deterministic). */
    static const char alphabet[] = "0123456789 ,:-SunMoTeWdhFrJaFbMrApyJlAgSOcNvDGT";
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int iter = 0; iter < 20000; iter++) {
        char v[40];
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t n = (size_t)(x % (sizeof v - 1));
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v[i] = alphabet[x % (sizeof alphabet - 1)];
        }
        v[n] = '\0';
        int64_t d = http_retry_after_ms(v, t);
        if (d < -1 || d > 86400000)
            fail_msg("Retry-After \"%s\" gave %lld", v, (long long)d);
    }
}

static void names_and_buckets(void **state)
{
    (void)state;
    assert_string_equal(http_result_name(HTTP_RES_TIMEOUT_SENT), "timeout_sent");
    assert_string_equal(http_result_name(HTTP_RES_ERROR), "error");
    assert_string_equal(http_result_name((http_result_kind)99), "unknown");
    assert_int_equal(http_latency_bucket(0.001), 0);
    assert_int_equal(http_latency_bucket(0.3), 6);
    assert_int_equal(http_latency_bucket(45), 12);
    assert_int_equal(http_latency_bucket(61), HTTP_LATENCY_BUCKETS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(retry_after_values),
        cmocka_unit_test(names_and_buckets),
        cmocka_unit_test_setup_teardown(ok_get_with_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(post_body_and_headers_arrive, setup, teardown),
        cmocka_unit_test_setup_teardown(error_status_is_a_response, setup, teardown),
        cmocka_unit_test_setup_teardown(deadline_after_send_closes_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(timeout_cap_is_not_the_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(connect_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(connect_timeout_is_unsent, setup, teardown),
        cmocka_unit_test_setup_teardown(closed_without_reply_is_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(too_large_sized, setup, teardown),
        cmocka_unit_test_setup_teardown(too_large_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(cap_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(delayed_start_and_cancel_delayed, setup, teardown),
        cmocka_unit_test_setup_teardown(deadline_already_passed, setup, teardown),
        cmocka_unit_test_setup_teardown(twenty_in_flight_on_one_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(submit_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(shutdown_completes_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_requests_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(counters_per_upstream, setup, teardown),
    };
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
