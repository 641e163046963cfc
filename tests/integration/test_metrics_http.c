/* test_metrics_http.c - the admin listener over real HTTP (T18).
 *
 * A real rpc_server (the test service and health on 127.0.0.1, 2 workers)
 * and the admin listener on a free port. A known mix of calls is made with
 * the C client (OK, NOT_FOUND, INVALID_ARGUMENT, UNAVAILABLE, UNIMPLEMENTED,
 * DEADLINE_EXCEEDED, ABORTED mid-stream, health NOT_FOUND, client streaming)
 * and every code the client saw is tallied; the deltas of
 * grpc_server_handled_total between two scrapes must equal that tally for
 * every method x code (zero where the client saw nothing), _count must equal
 * handled, and with calls held open started - handled must equal
 * grpc_server_inflight. Every series exists from the first scrape on.
 * `promtool check metrics` (Debian package `prometheus`) must be clean.
 * /healthz, /readyz, HEAD, 404, 405, the idle timeout and the connection
 * limit are checked over raw sockets.
 *
 * With DATABASE_URL and REDIS_URL (the `services` fixture) the db_* and
 * cache_* families are checked against statements and lookups this test
 * makes; without them that part says so and is skipped. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "cache.h"
#include "db.h"
#include "grpc/health/v1/health.pb-c.h"
#include "health.h"
#include "herald/test/v1/test.pb-c.h"
#include "herald_client.h"
#include "log.h"
#include "memwatch.h"
#include "metrics.h"
#include "rpc.h"
#include "rpc_testd.h"
#include "status.h"
#include "util.h"

enum { WAIT_MS = 10000 };

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ */
/* A minimal HTTP/1.1 client over a socket (one request per connection) */

typedef struct http_reply {
    int status;
    char *head; /* status line and headers */
    char *body;
    size_t body_len;
} http_reply;

static void http_reply_fini(http_reply *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Sends method path and reads the whole reply (the server closes). */
static void http_do(int port, const char *method, const char *path, http_reply *out)
{
    memset(out, 0, sizeof *out);
    int fd = connect_port(port);
    char *req = xasprintf("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                          "Content-Length: 0\r\n\r\n",
                          method, path);
    size_t len = strlen(req);
    assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
    free(req);
    strbuf b = { 0 };
    char chunk[16384];
    int64_t until = now_mono_ms() + WAIT_MS;
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        strbuf_append(&b, chunk, (size_t)n);
        assert_true(b.len < (64u << 20) && now_mono_ms() < until);
    }
    close(fd);
    assert_non_null(b.data);
    char *sep = strstr(b.data, "\r\n\r\n");
    assert_non_null(sep);
    out->head = xstrndup(b.data, (size_t)(sep - b.data));
    size_t hl = (size_t)(sep - b.data) + 4;
    out->body_len = b.len - hl;
    out->body = xstrndup(b.data + hl, out->body_len);
    assert_int_equal(sscanf(out->head, "HTTP/1.%*d %d", &out->status), 1);
    strbuf_fini(&b);
}

/* Value of header name (case-insensitive) in r, or NULL (static buffer). */
static const char *header(const http_reply *r, const char *name)
{
    static char val[256];
    size_t nl = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            const char *end = strstr(v, "\r\n");
            size_t vl = end != NULL ? (size_t)(end - v) : strlen(v);
            snprintf(val, sizeof val, "%.*s", (int)vl, v);
            return val;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Scrapes                                                             */

static char *scrape(int port)
{
    http_reply r;
    http_do(port, "GET", "/metrics", &r);
    assert_int_equal(r.status, 200);
    char *body = r.body;
    r.body = NULL;
    http_reply_fini(&r);
    return body;
}

/* The value of the series written exactly as key ("name{labels}"); -1 if
 * absent. */
static double series(const char *text, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
            return strtod(p + kl + 1, NULL);
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return -1;
}

/* Sum of every series of family name (plain samples, no suffix). */
static double family_sum(const char *text, const char *name)
{
    double sum = 0;
    size_t nl = strlen(name);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, name, nl) == 0 && (p[nl] == '{' || p[nl] == ' ')) {
            const char *sp = strchr(p, ' ');
            const char *brace = strchr(p, '}');
            if (brace != NULL && brace < strchr(p, '\n'))
                sp = brace + 1;
            sum += strtod(sp, NULL);
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return sum;
}

static char *method_key(const char *family, const char *type, const char *svc, const char *method,
                        const char *code)
{
    if (code != NULL)
        return xasprintf("%s{grpc_type=\"%s\",grpc_service=\"%s\",grpc_method=\"%s\","
                         "grpc_code=\"%s\"}",
                         family, type, svc, method, code);
    return xasprintf("%s{grpc_type=\"%s\",grpc_service=\"%s\",grpc_method=\"%s\"}", family, type,
                     svc, method);
}

static double method_value(const char *text, const char *family, const rpc_method_stats *m,
                           const char *code)
{
    char *key = method_key(family, rpc_kind_name(m->kind), m->service, m->method, code);
    double v = series(text, key);
    free(key);
    return v;
}

static void assert_promtool_clean(const char *text)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0)
        fail_msg("promtool not found: install Debian's 'prometheus' package (apt-get install "
                 "prometheus); scripts/deps lists it");
    char in_path[] = "/tmp/test_metrics_http_XXXXXX";
    int fd = mkstemp(in_path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    char *cmd = xasprintf("promtool check metrics < %s 2>&1", in_path);
    FILE *p = popen(cmd, "r");
    free(cmd);
    assert_non_null(p);
    strbuf out = { 0 };
    char chunk[1024];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        strbuf_append(&out, chunk, n);
    int rc = pclose(p);
    unlink(in_path);
    if (rc != 0 || out.len > 0) {
        fprintf(stderr, "promtool (status %d): %s\n", rc, out.data != NULL ? out.data : "");
        strbuf_fini(&out);
        fail_msg("promtool check metrics is not clean");
    }
    strbuf_fini(&out);
}

/* ------------------------------------------------------------------ */
/* The server under test                                               */

typedef struct fixture {
    health *h;
    testd *t;
    rpc_server *s;
    memwatch *mw;
    metrics *m;
    herald_channel *ch;
    int admin_port;
} fixture;

static fixture fx;

static int setup(void **state)
{
    (void)state;
    char *err = NULL;
    atomic_store(&log_level, LOG_ERROR);
    rpc_global_init();
    herald_client_init();
    fx.h = health_new();
    fx.t = testd_new(fx.h);
    rpc_options o;
    rpc_options_init(&o);
    o.listen_addr = "127.0.0.1:0";
    o.workers = 2;
    o.descriptors = testd_descriptors(fx.t);
    o.access_log = false;
    fx.s = rpc_server_new(&o, &err);
    assert_non_null(fx.s);
    assert_int_equal(rpc_server_add_service(fx.s, health_service(fx.h), RPC_POOL_PRIORITY, &err),
                     ST_OK);
    assert_int_equal(testd_register(fx.t, fx.s, &err), ST_OK);
    assert_int_equal(rpc_server_start(fx.s, &err), ST_OK);
    health_set(fx.h, "", HEALTH_SERVING);
    health_set(fx.h, "liveness", HEALTH_SERVING);
    health_set(fx.h, "readiness", HEALTH_NOT_SERVING);

    memwatch_options mo;
    memwatch_options_init(&mo);
    fx.mw = memwatch_new(&mo);
    memwatch_tick(fx.mw);

    metrics_options mopt;
    metrics_options_init(&mopt);
    mopt.listen_addr = "127.0.0.1:0";
    mopt.rpc = fx.s;
    mopt.health = fx.h;
    mopt.mem = fx.mw;
    mopt.db = getenv("DATABASE_URL") != NULL;
    fx.m = metrics_new(&mopt);
    assert_int_equal(metrics_start(fx.m, &err), ST_OK);
    fx.admin_port = metrics_port(fx.m);
    assert_true(fx.admin_port > 0);

    herald_channel_options co;
    herald_channel_options_init(&co);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", rpc_server_port(fx.s));
    co.target = target;
    assert_true(herald_channel_open(&co, &fx.ch, &err));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    herald_channel_close(fx.ch);
    metrics_free(fx.m);
    health_begin_shutdown(fx.h);
    health_finish_watchers(fx.h);
    rpc_server_shutdown(fx.s, 2000);
    testd_wait_idle(fx.t, WAIT_MS);
    rpc_server_free(fx.s);
    testd_free(fx.t);
    health_free(fx.h);
    memwatch_free(fx.mw);
    herald_client_shutdown();
    rpc_global_fini();
    return 0;
}

/* The registered methods, as the runtime reports them. */
typedef struct methods {
    rpc_method_stats m[32];
    size_t n;
} methods;

static void collect(const rpc_method_stats *st, void *user)
{
    methods *ms = user;
    if (ms->n < 32)
        ms->m[ms->n++] = *st;
}

static const rpc_method_stats *find_method(const methods *ms, const char *name)
{
    for (size_t i = 0; i < ms->n; i++)
        if (strcmp(ms->m[i].method, name) == 0)
            return &ms->m[i];
    fail_msg("method %s not registered", name);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Client calls; tally[method][code] is what the client observed        */

enum { M_ECHO = 0, M_STREAM, M_COLLECT, M_UNBUILT, M_CHECK, M_COUNT };
static const char *const method_names[M_COUNT] = { "Echo", "ServerStream", "Collect", "Unbuilt",
                                                   "Check" };
static int tally[M_COUNT][GRPC_CODE_COUNT];

static int echo_ex(int fail_code, int sleep_ms_, int64_t timeout_ms, const char *path, bool detach)
{
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = "hi";
    req.detach = detach;
    req.fail_code = fail_code;
    req.fail_message = fail_code != 0 ? "scripted failure" : NULL;
    req.sleep_ms = sleep_ms_;
    herald_call_options o = { .timeout_ms = timeout_ms };
    ProtobufCMessage *resp = NULL;
    herald_status st;
    herald_status_init(&st);
    int code = herald_call_unary(fx.ch, path, &req.base, &herald__test__v1__echo_reply__descriptor,
                                 &o, &resp, &st);
    if (resp != NULL)
        protobuf_c_message_free_unpacked(resp, NULL);
    herald_status_fini(&st);
    return code;
}

static int echo(int fail_code, int sleep_ms_, int64_t timeout_ms, const char *path)
{
    return echo_ex(fail_code, sleep_ms_, timeout_ms, path, false);
}

static bool count_msg(const ProtobufCMessage *msg, void *user)
{
    (void)msg;
    (*(int *)user)++;
    return true;
}

static int stream(int count, int fail_after, int fail_code, int *got)
{
    Herald__Test__V1__StreamRequest req = HERALD__TEST__V1__STREAM_REQUEST__INIT;
    req.count = count;
    req.fail_after = fail_after;
    req.fail_code = fail_code;
    herald_call_options o = { .timeout_ms = 5000 };
    herald_status st;
    herald_status_init(&st);
    *got = 0;
    int code = herald_call_server_stream(fx.ch, "/herald.test.v1.TestService/ServerStream",
                                         &req.base, &herald__test__v1__echo_reply__descriptor, &o,
                                         count_msg, got, &st);
    herald_status_fini(&st);
    return code;
}

static int collect_call(int n_msgs)
{
    herald_call_options o = { .timeout_ms = 5000 };
    char *err = NULL;
    herald_call *c = herald_call_start(fx.ch, "/herald.test.v1.TestService/Collect", &o, &err);
    assert_non_null(c);
    for (int i = 0; i < n_msgs; i++) {
        Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
        req.message = "part";
        assert_true(herald_call_send(c, &req.base));
    }
    assert_true(herald_call_close_send(c));
    ProtobufCMessage *msg = NULL;
    while (herald_call_recv(c, &herald__test__v1__echo_reply__descriptor, &msg) == 1)
        protobuf_c_message_free_unpacked(msg, NULL);
    herald_status st;
    herald_status_init(&st);
    int code = herald_call_finish(c, &st);
    herald_status_fini(&st);
    herald_call_free(c);
    return code;
}

static int check(const char *service)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    herald_call_options o = { .timeout_ms = 5000 };
    ProtobufCMessage *resp = NULL;
    herald_status st;
    herald_status_init(&st);
    int code =
        herald_call_unary(fx.ch, "/grpc.health.v1.Health/Check", &req.base,
                          &grpc__health__v1__health_check_response__descriptor, &o, &resp, &st);
    if (resp != NULL)
        protobuf_c_message_free_unpacked(resp, NULL);
    herald_status_fini(&st);
    return code;
}

static void tally_code(int method, int code)
{
    assert_true(code >= 0 && code < GRPC_CODE_COUNT);
    tally[method][code]++;
}

/* Waits until every started call is handled and nothing is in flight. */
static char *scrape_quiet(void)
{
    int64_t until = now_mono_ms() + WAIT_MS;
    for (;;) {
        char *t = scrape(fx.admin_port);
        double started = family_sum(t, "grpc_server_started_total");
        double handled = family_sum(t, "grpc_server_handled_total");
        double inflight = series(t, "grpc_server_inflight");
        if ((started == handled && inflight == 0) || now_mono_ms() > until)
            return t;
        free(t);
        sleep_ms(20);
    }
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */

static void series_exist_from_the_start(void **state)
{
    (void)state;
    methods ms = { .n = 0 };
    rpc_server_stats(fx.s, collect, &ms);
    assert_true(ms.n >= 7); /* Check, Watch, Echo, ServerStream, Collect, Chat, Unbuilt */
    char *t = scrape(fx.admin_port);
    for (size_t i = 0; i < ms.n; i++) {
        const rpc_method_stats *m = &ms.m[i];
        assert_true(method_value(t, "grpc_server_started_total", m, NULL) >= 0);
        assert_true(method_value(t, "grpc_server_msg_received_total", m, NULL) >= 0);
        assert_true(method_value(t, "grpc_server_msg_sent_total", m, NULL) >= 0);
        for (int code = 0; code < GRPC_CODE_COUNT; code++) {
            double v =
                method_value(t, "grpc_server_handled_total", m, status_grpc_code_go_name(code));
            if (v < 0)
                fail_msg("%s/%s code %s missing", m->service, m->method,
                         status_grpc_code_go_name(code));
        }
        char *key = xasprintf("grpc_server_handling_seconds_bucket{grpc_type=\"%s\","
                              "grpc_service=\"%s\",grpc_method=\"%s\",le=\"+Inf\"}",
                              rpc_kind_name(m->kind), m->service, m->method);
        assert_true(series(t, key) >= 0);
        free(key);
    }
    assert_true(series(t, "grpc_server_inflight") >= 0);
    assert_true(series(t, "process_resident_memory_bytes") > 0);
    assert_true(series(t, "process_open_fds") > 0);
    assert_true(series(t, "herald_memory_limit_bytes") == 256.0 * 1024 * 1024);
    assert_true(series(t, "cache_requests_total{result=\"error\"}") >= 0);
    assert_true(series(t, "upstream_requests_total{upstream=\"webhook\",code=\"5xx\"}") == 0);
    assert_promtool_clean(t);
    free(t);
}

static void deltas_equal_what_the_client_saw(void **state)
{
    (void)state;
    memset(tally, 0, sizeof tally);
    methods ms = { .n = 0 };
    rpc_server_stats(fx.s, collect, &ms);
    char *before = scrape_quiet();

    const char *echo_path = "/herald.test.v1.TestService/Echo";
    for (int i = 0; i < 7; i++)
        tally_code(M_ECHO, echo(0, 0, 5000, echo_path));
    for (int i = 0; i < 3; i++)
        tally_code(M_ECHO, echo(GRPC_CODE_NOT_FOUND, 0, 5000, echo_path));
    for (int i = 0; i < 2; i++)
        tally_code(M_ECHO, echo(GRPC_CODE_INVALID_ARGUMENT, 0, 5000, echo_path));
    tally_code(M_ECHO, echo(GRPC_CODE_UNAVAILABLE, 0, 5000, echo_path));
    tally_code(M_ECHO, echo(GRPC_CODE_ALREADY_EXISTS, 0, 5000, echo_path));
    tally_code(M_ECHO, echo(0, 600, 150, echo_path)); /* deadline */
    for (int i = 0; i < 2; i++)
        tally_code(M_UNBUILT, echo(0, 0, 5000, "/herald.test.v1.TestService/Unbuilt"));
    int got = 0, sent_stream = 0;
    for (int i = 0; i < 2; i++) {
        tally_code(M_STREAM, stream(3, 0, 0, &got));
        sent_stream += got;
    }
    tally_code(M_STREAM, stream(3, 1, GRPC_CODE_ABORTED, &got));
    sent_stream += got;
    tally_code(M_COLLECT, collect_call(3));
    for (int i = 0; i < 4; i++)
        tally_code(M_CHECK, check(""));
    tally_code(M_CHECK, check("no.such.Service"));

    /* What the client saw is what the mix was meant to produce. */
    assert_int_equal(tally[M_ECHO][GRPC_CODE_OK], 7);
    assert_int_equal(tally[M_ECHO][GRPC_CODE_NOT_FOUND], 3);
    assert_int_equal(tally[M_ECHO][GRPC_CODE_DEADLINE_EXCEEDED], 1);
    assert_int_equal(tally[M_UNBUILT][GRPC_CODE_UNIMPLEMENTED], 2);
    assert_int_equal(tally[M_STREAM][GRPC_CODE_ABORTED], 1);
    assert_int_equal(tally[M_CHECK][GRPC_CODE_NOT_FOUND], 1);
    assert_int_equal(sent_stream, 7);

    char *after = scrape_quiet();
    int mismatches = 0;
    for (int mi = 0; mi < M_COUNT; mi++) {
        const rpc_method_stats *m = find_method(&ms, method_names[mi]);
        int total = 0;
        for (int code = 0; code < GRPC_CODE_COUNT; code++) {
            const char *go = status_grpc_code_go_name(code);
            double d = method_value(after, "grpc_server_handled_total", m, go) -
                       method_value(before, "grpc_server_handled_total", m, go);
            if (d != tally[mi][code]) {
                fprintf(stderr, "%s %s: metrics delta %.0f, client saw %d\n", m->method, go, d,
                        tally[mi][code]);
                mismatches++;
            }
            total += tally[mi][code];
        }
        double started = method_value(after, "grpc_server_started_total", m, NULL) -
                         method_value(before, "grpc_server_started_total", m, NULL);
        assert_int_equal((int)started, total);
        char *ck = xasprintf("grpc_server_handling_seconds_count{grpc_type=\"%s\",grpc_service="
                             "\"%s\",grpc_method=\"%s\"}",
                             rpc_kind_name(m->kind), m->service, m->method);
        assert_int_equal((int)(series(after, ck) - series(before, ck)), total);
        free(ck);
    }
    assert_int_equal(mismatches, 0);

    /* Messages: each unary call received one; the streams sent what the
     * client counted; Collect received its 3. */
    const rpc_method_stats *st = find_method(&ms, "ServerStream");
    assert_int_equal((int)(method_value(after, "grpc_server_msg_sent_total", st, NULL) -
                           method_value(before, "grpc_server_msg_sent_total", st, NULL)),
                     sent_stream);
    const rpc_method_stats *co = find_method(&ms, "Collect");
    assert_int_equal((int)(method_value(after, "grpc_server_msg_received_total", co, NULL) -
                           method_value(before, "grpc_server_msg_received_total", co, NULL)),
                     3);
    const rpc_method_stats *ec = find_method(&ms, "Echo");
    assert_int_equal((int)(method_value(after, "grpc_server_msg_received_total", ec, NULL) -
                           method_value(before, "grpc_server_msg_received_total", ec, NULL)),
                     15);
    assert_int_equal((int)(method_value(after, "grpc_server_msg_sent_total", ec, NULL) -
                           method_value(before, "grpc_server_msg_sent_total", ec, NULL)),
                     7);
    assert_promtool_clean(after);
    free(before);
    free(after);
}

typedef struct slow_call {
    pthread_t thread;
    int code;
} slow_call;

static void *slow_echo(void *arg)
{
    slow_call *sc = arg;
    /* Detached: the reply comes from a helper thread, so three calls are in
     * flight at once even with two workers. */
    sc->code = echo_ex(0, 1500, 8000, "/herald.test.v1.TestService/Echo", true);
    return NULL;
}

static void started_minus_handled_is_inflight(void **state)
{
    (void)state;
    slow_call calls[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&calls[i].thread, NULL, slow_echo, &calls[i]), 0);
    /* Poll until the three are seen in flight (bounded). */
    int64_t until = now_mono_ms() + 5000;
    double started = 0, handled = 0, inflight = -1;
    while (now_mono_ms() < until) {
        char *t = scrape(fx.admin_port);
        started = family_sum(t, "grpc_server_started_total");
        handled = family_sum(t, "grpc_server_handled_total");
        inflight = series(t, "grpc_server_inflight");
        free(t);
        if (inflight == 3 && started - handled == 3)
            break;
        sleep_ms(20);
    }
    fprintf(stderr, "with 3 calls held: started - handled = %.0f, inflight = %.0f\n",
            started - handled, inflight);
    assert_true(inflight == 3);
    assert_true(started - handled == inflight);
    for (int i = 0; i < 3; i++) {
        pthread_join(calls[i].thread, NULL);
        assert_int_equal(calls[i].code, 0);
    }
    char *t = scrape_quiet();
    assert_true(family_sum(t, "grpc_server_started_total") ==
                family_sum(t, "grpc_server_handled_total"));
    assert_true(series(t, "grpc_server_inflight") == 0);
    free(t);
}

static void http_routes(void **state)
{
    (void)state;
    http_reply r;
    http_do(fx.admin_port, "GET", "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    assert_true(r.body_len > 0 && r.body[r.body_len - 1] == '\n');
    assert_null(strchr(r.body, '\r'));
    size_t full = r.body_len;
    http_reply_fini(&r);

    /* A figure: a whole scrape over HTTP (new connection each time). */
    int64_t t0 = now_mono_us();
    for (int i = 0; i < 20; i++) {
        http_do(fx.admin_port, "GET", "/metrics", &r);
        assert_int_equal(r.status, 200);
        http_reply_fini(&r);
    }
    fprintf(stderr, "GET /metrics: %zu bytes, %.2f ms per scrape (mean of 20)\n", full,
            (double)(now_mono_us() - t0) / 20 / 1000.0);

    http_do(fx.admin_port, "HEAD", "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    assert_true(strtoul(header(&r, "Content-Length"), NULL, 10) > full / 2);
    http_reply_fini(&r);

    http_do(fx.admin_port, "GET", "/metrics?name[]=x", &r); /* a query is ignored */
    assert_int_equal(r.status, 200);
    http_reply_fini(&r);

    http_do(fx.admin_port, "GET", "/healthz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    http_reply_fini(&r);

    http_do(fx.admin_port, "GET", "/readyz", &r); /* readiness NOT_SERVING */
    assert_int_equal(r.status, 503);
    http_reply_fini(&r);
    health_set(fx.h, "readiness", HEALTH_SERVING);
    http_do(fx.admin_port, "GET", "/readyz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    http_reply_fini(&r);

    health_set(fx.h, "liveness", HEALTH_NOT_SERVING);
    http_do(fx.admin_port, "GET", "/healthz", &r);
    assert_int_equal(r.status, 503);
    http_reply_fini(&r);
    health_set(fx.h, "liveness", HEALTH_SERVING);

    const char *missing[] = { "/", "/metrics/", "/health", "/readyz/x", "/debug/pprof" };
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        http_do(fx.admin_port, "GET", missing[i], &r);
        assert_int_equal(r.status, 404);
        http_reply_fini(&r);
    }
    const char *verbs[] = { "POST", "PUT", "DELETE", "PATCH" };
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        http_do(fx.admin_port, verbs[i], "/metrics", &r);
        assert_int_equal(r.status, 405);
        assert_string_equal(header(&r, "Allow"), "GET, HEAD");
        http_reply_fini(&r);
    }
}

/* A second listener with a 1 s idle timeout and room for 3 connections. */
static void idle_timeout_and_connection_limit(void **state)
{
    (void)state;
    metrics_options o;
    metrics_options_init(&o);
    o.listen_addr = "127.0.0.1:0";
    o.connection_timeout_s = 1;
    o.max_connections = 3;
    o.health = fx.h;
    metrics *m = metrics_new(&o);
    char *err = NULL;
    assert_int_equal(metrics_start(m, &err), ST_OK);
    int port = metrics_port(m);

    /* Three idle connections fill the listener. A fourth waits in the
     * backlog, unserved, until the idle timeout (1 s) frees a slot. */
    int64_t t0 = now_mono_ms();
    int idle[3];
    for (int i = 0; i < 3; i++)
        idle[i] = connect_port(port);
    sleep_ms(100);
    int extra = connect_port(port);
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_int_equal(send(extra, req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)(sizeof req - 1));
    struct timeval short_tv = { 0, 500 * 1000 };
    setsockopt(extra, SOL_SOCKET, SO_RCVTIMEO, &short_tv, sizeof short_tv);
    char buf[512];
    ssize_t n = recv(extra, buf, sizeof buf - 1, 0);
    assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)); /* not served yet */
    assert_true(now_mono_ms() - t0 < 1000);

    /* The idle ones are closed by the timeout (1 s; allow 4 in all). */
    char c;
    for (int i = 0; i < 3; i++) {
        n = recv(idle[i], &c, 1, 0);
        assert_true(n <= 0);
        close(idle[i]);
    }
    int64_t closed_ms = now_mono_ms() - t0;
    fprintf(stderr, "idle connections closed after %lld ms\n", (long long)closed_ms);
    assert_true(closed_ms >= 900 && closed_ms < 4000);

    /* Then the waiting one is served. */
    struct timeval long_tv = { 5, 0 };
    setsockopt(extra, SOL_SOCKET, SO_RCVTIMEO, &long_tv, sizeof long_tv);
    n = recv(extra, buf, sizeof buf - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    close(extra);

    /* And the listener serves again. */
    http_reply r;
    http_do(port, "GET", "/healthz", &r);
    assert_int_equal(r.status, 200);
    http_reply_fini(&r);
    metrics_free(m);

    /* The port is free again once stopped; a second listener on it works. */
    metrics_options_init(&o);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    o.listen_addr = addr;
    m = metrics_new(&o);
    assert_int_equal(metrics_start(m, &err), ST_OK);
    assert_int_equal(metrics_port(m), port);
    /* ...and a third on the same port fails to bind, with a message. */
    metrics *m2 = metrics_new(&o);
    assert_int_equal(metrics_start(m2, &err), ST_UNAVAILABLE);
    assert_non_null(err);
    free(err);
    metrics_free(m2);
    metrics_free(m);
}

/* ---- db_* and cache_* against the services fixture ---- */

static void db_and_cache_families(void **state)
{
    (void)state;
    const char *db_url = getenv("DATABASE_URL");
    const char *redis_url = getenv("REDIS_URL");
    if (db_url == NULL || redis_url == NULL || db_url[0] == '\0' || redis_url[0] == '\0') {
        fprintf(stderr, "db/cache metrics skipped: DATABASE_URL or REDIS_URL unset (run through "
                        "ctest for the services fixture)\n");
        skip();
    }
    char *err = NULL;
    db_options dbo;
    db_options_init(&dbo);
    dbo.conninfo = db_url;
    db_pinger_options po;
    db_pinger_options_init(&po);
    po.interval_ms = 200;
    db_pinger *pinger = db_pinger_start(&dbo, &po, &err);
    assert_non_null(pinger);

    cache_options cop;
    cache_options_init(&cop);
    cop.url = redis_url;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "herald-test-metrics:%ld:", (long)getpid());
    cop.prefix = prefix;
    cache *cc = cache_new(&cop, &err);
    assert_non_null(cc);

    metrics_options o;
    metrics_options_init(&o);
    o.listen_addr = "127.0.0.1:0";
    o.db = true;
    o.cache = cc;
    metrics *m = metrics_new(&o);
    assert_int_equal(metrics_start(m, &err), ST_OK);
    int port = metrics_port(m);
    char *t0 = scrape(port);
    assert_true(series(t0, "db_up") == 0); /* no pinger yet */
    free(t0);
    metrics_set_pinger(m, pinger); /* as main does once the pinger runs */

    /* db_up follows the pinger (bounded wait). */
    int64_t until = now_mono_ms() + WAIT_MS;
    char *t = NULL;
    for (;;) {
        t = scrape(port);
        if (series(t, "db_up") == 1 || now_mono_ms() > until)
            break;
        free(t);
        sleep_ms(50);
    }
    assert_true(series(t, "db_up") == 1);
    const char *ok_key = "db_query_duration_seconds_count{query=\"metrics_probe\"}";
    const char *err_key = "db_query_errors_total{query=\"metrics_probe_err\"}";
    double ok0 = series(t, ok_key) < 0 ? 0 : series(t, ok_key);
    double err0 = series(t, err_key) < 0 ? 0 : series(t, err_key);
    double hit0 = series(t, "cache_requests_total{result=\"hit\"}");
    double miss0 = series(t, "cache_requests_total{result=\"miss\"}");
    double rt0 = series(t, "db_roundtrips_total");
    free(t);

    db_conn *db = db_open(&dbo);
    for (int i = 0; i < 5; i++) {
        db_res *res = NULL;
        assert_int_equal(db_run(db, 2000, "metrics_probe", "SELECT 1", NULL, &res), ST_OK);
        db_res_free(res);
    }
    for (int i = 0; i < 2; i++)
        assert_int_not_equal(db_run(db, 2000, "metrics_probe_err", "SELECT 1/0", NULL, NULL),
                             ST_OK);

    cache_conn *conn = cache_open(cc);
    assert_int_equal(cache_set(conn, "k", "v", 1, 30), CACHE_OK);
    for (int i = 0; i < 3; i++) {
        uint8_t *val = NULL;
        size_t len = 0;
        assert_int_equal(cache_get(conn, "k", &val, &len), CACHE_OK);
        free(val);
    }
    for (int i = 0; i < 2; i++) {
        uint8_t *val = NULL;
        size_t len = 0;
        assert_int_equal(cache_get(conn, "absent", &val, &len), CACHE_MISS);
    }
    cache_del(conn, "k");

    t = scrape(port);
    assert_true(series(t, ok_key) - ok0 == 5);
    assert_true(series(t, err_key) - err0 == 2);
    assert_true(
        series(t, "db_query_duration_seconds_bucket{query=\"metrics_probe\",le=\"+Inf\"}") ==
        series(t, ok_key));
    assert_true(series(t, "db_pool_open_connections") >= 1);
    assert_true(series(t, "db_connects_total") >= 1);
    /* each db_run above is one round trip (the pinger adds its own) */
    assert_true(series(t, "db_roundtrips_total") - rt0 >= 7);
    assert_true(series(t, "db_statements_prepared_total") >= 1);
    assert_true(series(t, "cache_requests_total{result=\"hit\"}") - hit0 == 3);
    assert_true(series(t, "cache_requests_total{result=\"miss\"}") - miss0 == 2);
    assert_true(series(t, "cache_breaker_state") == 0);
    assert_promtool_clean(t);
    free(t);

    metrics_set_pinger(m, NULL); /* before the pinger stops */
    t = scrape(port);
    assert_true(series(t, "db_up") == 0);
    free(t);

    cache_close(conn);
    db_close(db);
    metrics_free(m);
    cache_free(cc);
    db_pinger_stop(pinger);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(series_exist_from_the_start),
        cmocka_unit_test(deltas_equal_what_the_client_saw),
        cmocka_unit_test(started_minus_handled_is_inflight),
        cmocka_unit_test(http_routes),
        cmocka_unit_test(idle_timeout_and_connection_limit),
        cmocka_unit_test(db_and_cache_families),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
