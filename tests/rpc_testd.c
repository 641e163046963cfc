/* rpc_testd.c - a test server over the rpc runtime (see rpc_testd.h).
 *
 *   rpc_testd --listen HOST:PORT [--workers N] [--port-file PATH]
 *             [--grace-ms N] [--log-level L] [--no-access-log]
 *             [--arena-bytes N] [--max-recv-bytes N] [--default-deadline-ms N]
 *             [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM
 *             [--tls-require-client-cert]]] [--health-on-workers]
 *
 * Serves herald.test.v1.TestService, grpc.health.v1.Health ("", liveness,
 * readiness and herald.test.v1.TestService SERVING) and, when built with
 * server/reflection.c, server reflection. Port 0 picks a free port; the
 * bound port is written to --port-file once serving. SIGTERM/SIGINT: health
 * NOT_SERVING, Watch streams ended, rpc_server_shutdown(grace), exit 0; a
 * second signal exits at once with 128 + signal. --health-on-workers serves
 * health on the worker pool instead of the priority thread (benchmark
 * comparisons only).
 *
 * Built twice: as the binary, and with RPC_TESTD_LIBRARY (no main) for the
 * in-process loopback test. */
#include "rpc_testd.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "herald/test/v1/test.pb-c.h"
#include "log.h"
#include "util.h"
#ifdef HAVE_REFLECTION
#include "reflection.h"
#endif

extern const unsigned char rpc_test_descset[];
extern const size_t rpc_test_descset_len;

enum {
    MAX_SLEEP_MS = 600000,
    MAX_REPLY_BYTES = 16 << 20,
    MAX_STREAM_COUNT = 100000,
    MAX_INTERVAL_MS = 60000,
};

typedef Herald__Test__V1__EchoRequest echo_req;
typedef Herald__Test__V1__EchoReply echo_reply;
typedef Herald__Test__V1__StreamRequest stream_req;

struct testd {
    Herald__Test__V1__TestService_Service svc; /* first: handlers cast back */
    health *h;
    descset *ds;
    rpc_stream_handler collect;
    rpc_stream_handler chat;
    /* mu protects threads (running helper threads). */
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int threads;
};

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static void sleep_ms_raw(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Sleeps ms, in small steps, ending early once the call is cancelled. */
static void sleep_call(rpc_call *call, int ms)
{
    if (ms > MAX_SLEEP_MS)
        ms = MAX_SLEEP_MS;
    int64_t until = now_mono_ms() + ms;
    for (int64_t now = now_mono_ms(); now < until; now = now_mono_ms()) {
        if (rpc_call_cancelled(call))
            return;
        int64_t step = until - now;
        sleep_ms_raw(step > 5 ? 5 : (int)step);
    }
}

/* "health:NAME=SERVING" / "health:NAME=NOT_SERVING". */
static void maybe_set_health(testd *t, const char *msg)
{
    static const char prefix[] = "health:";
    if (!t->h || strncmp(msg, prefix, sizeof prefix - 1) != 0)
        return;
    const char *body = msg + sizeof prefix - 1;
    const char *eq = strrchr(body, '=');
    if (!eq)
        return;
    health_state st;
    if (strcmp(eq + 1, "SERVING") == 0)
        st = HEALTH_SERVING;
    else if (strcmp(eq + 1, "NOT_SERVING") == 0)
        st = HEALTH_NOT_SERVING;
    else
        return;
    char *name = xstrndup(body, (size_t)(eq - body));
    health_set(t->h, name, st);
    free(name);
}

static bool thread_spawn(testd *t, void *(*fn)(void *), void *arg)
{
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&t->mu);
    t->threads++;
    pthread_mutex_unlock(&t->mu);
    int rc = pthread_create(&th, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_lock(&t->mu);
        t->threads--;
        pthread_cond_broadcast(&t->idle);
        pthread_mutex_unlock(&t->mu);
        return false;
    }
    return true;
}

static void thread_done(testd *t)
{
    pthread_mutex_lock(&t->mu);
    if (--t->threads == 0)
        pthread_cond_broadcast(&t->idle);
    pthread_mutex_unlock(&t->mu);
}

/* Adds the documented error details, then fails the call with code. */
static void fail_with(rpc_call *call, int code, const char *message)
{
    rpc_call_set_error_info(call, "TEST_FAILURE", "herald.test.v1");
    if (code == GRPC_CODE_INVALID_ARGUMENT)
        rpc_call_add_violation(call, "fail_code", message);
    if (code == GRPC_CODE_UNAVAILABLE || code == GRPC_CODE_RESOURCE_EXHAUSTED)
        rpc_call_set_retry_delay_ms(call, 250);
    rpc_call_finish_code(call, code, message);
}

/* ------------------------------------------------------------------ */
/* Echo                                                                */

/* What a reply needs, copied out of the request (a detached reply is built
 * on another thread). */
typedef struct echo_job {
    testd *t;
    rpc_call *call;
    Herald__Test__V1__EchoReply_Closure done;
    char *message;
    char *metadata_echo;
    int sleep_ms;
    int fail_code;
    char *fail_message;
    int reply_bytes;
} echo_job;

static void echo_job_free(echo_job *j)
{
    free(j->message);
    free(j->metadata_echo);
    free(j->fail_message);
    free(j);
}

static void echo_answer(echo_job *j)
{
    rpc_call *call = j->call;
    uint8_t *pad = NULL;

    if (j->sleep_ms > 0) {
        sleep_call(call, j->sleep_ms);
        /* Cut short by the deadline: say so (conventions §4) rather than
         * send an OK the client may still accept if its timer runs late. */
        if (rpc_call_client_deadline(call) && rpc_call_remaining_ms(call) <= 0) {
            rpc_call_fail(call, ST_TIMEOUT, "deadline exceeded");
            return;
        }
    }
    if (j->fail_code != 0) {
        fail_with(call, j->fail_code, j->fail_message);
        return;
    }
    echo_reply r = HERALD__TEST__V1__ECHO_REPLY__INIT;
    r.message = j->message;
    r.request_id = (char *)rpc_call_request_id(call);
    r.remaining_ms = rpc_call_client_deadline(call) ? rpc_call_remaining_ms(call) : -1;
    r.metadata_echo = j->metadata_echo;
    r.worker = rpc_call_worker_index(call);
    if (j->reply_bytes > 0) {
        size_t n = (size_t)(j->reply_bytes > MAX_REPLY_BYTES ? MAX_REPLY_BYTES : j->reply_bytes);
        pad = xmalloc(n);
        for (size_t i = 0; i < n; i++)
            pad[i] = (uint8_t)('a' + i % 26);
        r.padding.data = pad;
        r.padding.len = n;
    }
    if (strncmp(j->message, "raw:", 4) == 0) {
        /* already serialized, as a cache hit answers (rpc_call_reply_raw) */
        size_t n = protobuf_c_message_get_packed_size(&r.base);
        uint8_t *buf = xmalloc(n + 1);
        protobuf_c_message_pack(&r.base, buf);
        rpc_call_reply_raw(call, buf, n);
        free(buf);
    } else {
        j->done(&r, call);
    }
    free(pad);
}

static void *echo_thread(void *arg)
{
    echo_job *j = arg;
    testd *t = j->t;
    echo_answer(j);
    echo_job_free(j);
    thread_done(t);
    return NULL;
}

static void testd_echo(Herald__Test__V1__TestService_Service *svc, const echo_req *req,
                       Herald__Test__V1__EchoReply_Closure done, void *closure_data)
{
    testd *t = (testd *)svc;
    rpc_call *call = closure_data;

    maybe_set_health(t, req->message);
    if (req->trailer_key && req->trailer_key[0])
        rpc_call_add_trailer(call, req->trailer_key, req->trailer_value,
                             strlen(req->trailer_value));
    const char *meta = rpc_call_metadata(call, "x-test", NULL);

    echo_job *j = xcalloc(1, sizeof *j);
    j->t = t;
    j->call = call;
    j->done = done;
    j->message = xstrdup(req->message);
    j->metadata_echo = xstrdup(meta ? meta : "");
    j->sleep_ms = req->sleep_ms;
    j->fail_code = req->fail_code;
    j->fail_message = xstrdup(req->fail_message);
    j->reply_bytes = req->reply_bytes;

    if (req->detach) {
        rpc_call_detach(call, NULL, NULL);
        if (thread_spawn(t, echo_thread, j))
            return;
        rpc_call_fail(call, ST_UNAVAILABLE, "cannot start a thread");
        echo_job_free(j);
        return;
    }
    echo_answer(j);
    echo_job_free(j);
}

/* ------------------------------------------------------------------ */
/* ServerStream                                                        */

typedef struct stream_job {
    testd *t;
    rpc_call *call;
    int count;
    int interval_ms;
    int fail_after;
    int fail_code;
} stream_job;

/* Sends the stream and ends the call (from the handler or a thread). */
static void stream_run(stream_job *j)
{
    rpc_call *call = j->call;
    for (int i = 0; i < j->count; i++) {
        if (j->fail_after > 0 && i == j->fail_after) {
            if (j->fail_code != 0) {
                char msg[64];
                snprintf(msg, sizeof msg, "failed after %d messages", i);
                rpc_call_finish_code(call, j->fail_code, msg);
            } else {
                rpc_call_finish(call, ST_OK, "%s", "");
            }
            return;
        }
        if (i > 0 && j->interval_ms > 0)
            sleep_call(call, j->interval_ms);
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        echo_reply r = HERALD__TEST__V1__ECHO_REPLY__INIT;
        r.message = num;
        r.request_id = (char *)rpc_call_request_id(call);
        r.remaining_ms = rpc_call_client_deadline(call) ? rpc_call_remaining_ms(call) : -1;
        r.worker = rpc_call_worker_index(call);
        if (!rpc_call_send(call, &r.base)) {
            rpc_call_finish(call, ST_CANCELLED, "stream ended by the client");
            return;
        }
    }
    rpc_call_finish(call, ST_OK, "%s", "");
}

static void *stream_thread(void *arg)
{
    stream_job *j = arg;
    testd *t = j->t;
    stream_run(j);
    free(j);
    thread_done(t);
    return NULL;
}

static void testd_server_stream(Herald__Test__V1__TestService_Service *svc, const stream_req *req,
                                Herald__Test__V1__EchoReply_Closure done, void *closure_data)
{
    testd *t = (testd *)svc;
    rpc_call *call = closure_data;
    (void)done;

    stream_job *j = xcalloc(1, sizeof *j);
    j->t = t;
    j->call = call;
    j->count = req->count < 0 ? 0 : req->count > MAX_STREAM_COUNT ? MAX_STREAM_COUNT : req->count;
    j->interval_ms = req->interval_ms < 0                 ? 0
                     : req->interval_ms > MAX_INTERVAL_MS ? MAX_INTERVAL_MS
                                                          : req->interval_ms;
    j->fail_after = req->fail_after;
    j->fail_code = req->fail_code;
    /* Paced messages must leave one by one: send them from a thread (rpc.h). */
    rpc_call_detach(call, NULL, NULL);
    if (j->interval_ms > 0 && thread_spawn(t, stream_thread, j))
        return;
    stream_run(j);
    free(j);
}

/* ------------------------------------------------------------------ */
/* Collect (client streaming) and Chat (bidi)                          */

static echo_req *decode_echo(rpc_call *call, const uint8_t *data, size_t len)
{
    echo_req *req = herald__test__v1__echo_request__unpack(NULL, len, data);
    if (!req)
        rpc_call_finish(call, ST_INTERNAL, "cannot parse request");
    return req;
}

static void collect_open(rpc_call *call, void *user)
{
    (void)user;
    strbuf *b = xcalloc(1, sizeof *b);
    rpc_call_set_user(call, b);
}

static void collect_message(rpc_call *call, const uint8_t *data, size_t len, void *user)
{
    (void)user;
    echo_req *req = decode_echo(call, data, len);
    if (!req)
        return;
    if (req->fail_code != 0)
        fail_with(call, req->fail_code, req->fail_message);
    else
        strbuf_puts(rpc_call_user(call), req->message);
    herald__test__v1__echo_request__free_unpacked(req, NULL);
}

static void collect_half_close(rpc_call *call, void *user)
{
    (void)user;
    strbuf *b = rpc_call_user(call);
    echo_reply r = HERALD__TEST__V1__ECHO_REPLY__INIT;
    r.message = b->data ? b->data : "";
    r.request_id = (char *)rpc_call_request_id(call);
    r.remaining_ms = rpc_call_client_deadline(call) ? rpc_call_remaining_ms(call) : -1;
    r.worker = rpc_call_worker_index(call);
    rpc_call_send(call, &r.base);
    rpc_call_finish(call, ST_OK, "%s", "");
}

static void collect_done(rpc_call *call, bool cancelled, void *user)
{
    (void)user;
    strbuf *b = rpc_call_user(call);
    rpc_call_set_user(call, NULL);
    if (b) {
        strbuf_fini(b);
        free(b);
    }
    if (cancelled) /* finishing twice is a no-op; this releases a cancelled call */
        rpc_call_finish(call, ST_CANCELLED, "cancelled");
}

static void chat_message(rpc_call *call, const uint8_t *data, size_t len, void *user)
{
    (void)user;
    echo_req *req = decode_echo(call, data, len);
    if (!req)
        return;
    if (req->fail_code != 0) {
        fail_with(call, req->fail_code, req->fail_message);
    } else {
        echo_reply r = HERALD__TEST__V1__ECHO_REPLY__INIT;
        r.message = req->message;
        r.request_id = (char *)rpc_call_request_id(call);
        r.remaining_ms = rpc_call_client_deadline(call) ? rpc_call_remaining_ms(call) : -1;
        r.worker = rpc_call_worker_index(call);
        rpc_call_send(call, &r.base);
    }
    herald__test__v1__echo_request__free_unpacked(req, NULL);
}

static void chat_half_close(rpc_call *call, void *user)
{
    (void)user;
    rpc_call_finish(call, ST_OK, "%s", "");
}

static void chat_done(rpc_call *call, bool cancelled, void *user)
{
    (void)user;
    if (cancelled)
        rpc_call_finish(call, ST_CANCELLED, "cancelled");
}

/* ------------------------------------------------------------------ */
/* The test service                                                    */

testd *testd_new(health *h)
{
    char *err = NULL;
    testd *t = xcalloc(1, sizeof *t);
    herald__test__v1__test_service__init(&t->svc, NULL);
    t->svc.echo = testd_echo;
    t->svc.server_stream = testd_server_stream;
    t->svc.unbuilt = NULL; /* answers UNIMPLEMENTED */
    t->h = h;
    t->ds = descset_new(rpc_test_descset, rpc_test_descset_len, &err);
    if (!t->ds) {
        fprintf(stderr, "rpc_testd: embedded descriptor set: %s\n", err ? err : "?");
        abort(); /* a build bug */
    }
    t->collect = (rpc_stream_handler){ .on_open = collect_open,
                                       .on_message = collect_message,
                                       .on_half_close = collect_half_close,
                                       .on_done = collect_done };
    t->chat = (rpc_stream_handler){ .on_message = chat_message,
                                    .on_half_close = chat_half_close,
                                    .on_done = chat_done };
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->idle, NULL);
    return t;
}

const descset *testd_descriptors(const testd *t)
{
    return t->ds;
}

status testd_register(testd *t, rpc_server *s, char **err)
{
    status st = rpc_server_add_service(s, &t->svc.base, RPC_POOL_WORKERS, err);
    if (st == ST_OK)
        st = rpc_server_add_stream(s, "/herald.test.v1.TestService/Collect", &t->collect,
                                   RPC_POOL_WORKERS, err);
    if (st == ST_OK)
        st = rpc_server_add_stream(s, "/herald.test.v1.TestService/Chat", &t->chat,
                                   RPC_POOL_WORKERS, err);
    return st;
}

bool testd_wait_idle(testd *t, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&t->mu);
    int rc = 0;
    while (t->threads > 0 && rc == 0)
        rc = pthread_cond_timedwait(&t->idle, &t->mu, &until);
    bool idle = t->threads == 0;
    pthread_mutex_unlock(&t->mu);
    return idle;
}

void testd_free(testd *t)
{
    if (!t)
        return;
    if (!testd_wait_idle(t, 10000)) {
        fprintf(stderr, "rpc_testd: helper threads still running; leaking the service\n");
        return;
    }
    descset_free(t->ds);
    pthread_cond_destroy(&t->idle);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* ------------------------------------------------------------------ */
/* The binary                                                          */

#ifndef RPC_TESTD_LIBRARY

static void usage(void)
{
    fprintf(stderr, "usage: rpc_testd --listen HOST:PORT [--workers N] [--port-file PATH]\n"
                    "                 [--grace-ms N] [--log-level debug|info|warn|error|off]\n"
                    "                 [--no-access-log] [--arena-bytes N] [--max-recv-bytes N]\n"
                    "                 [--default-deadline-ms N] [--tls-cert PEM --tls-key PEM\n"
                    "                 [--tls-client-ca PEM [--tls-require-client-cert]]]\n"
                    "                 [--health-on-workers]\n");
}

static bool parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || !end || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    strbuf b = { 0 };
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        strbuf_append(&b, buf, n);
    fclose(f);
    return strbuf_take(&b);
}

static bool write_port_file(const char *path, int port)
{
    char *tmp = xasprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    bool ok = f && fprintf(f, "%d\n", port) > 0;
    if (f && fclose(f) != 0)
        ok = false;
    ok = ok && rename(tmp, path) == 0;
    free(tmp);
    return ok;
}

typedef struct second_signal {
    sigset_t set;
} second_signal;

static void *second_signal_main(void *arg)
{
    second_signal *ss = arg;
    int sig = 0;
    while (sigwait(&ss->set, &sig) == 0) {
        if (sig == SIGTERM || sig == SIGINT) {
            static const char msg[] = "rpc_testd: second signal, exiting now\n";
            ssize_t w = write(2, msg, sizeof msg - 1);
            (void)w;
            _exit(128 + sig);
        }
    }
    return NULL;
}

typedef struct cli {
    const char *listen;
    const char *port_file;
    int64_t workers;
    int64_t grace_ms;
    int64_t arena_bytes;
    int64_t max_recv_bytes;
    int64_t default_deadline_ms;
    bool access_log;
    const char *tls_cert;
    const char *tls_key;
    const char *tls_ca;
    bool tls_require;
    bool health_on_workers;
} cli;

static bool parse_cli(int argc, char **argv, cli *c)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "--no-access-log") == 0) {
            c->access_log = false;
            continue;
        }
        if (strcmp(a, "--tls-require-client-cert") == 0) {
            c->tls_require = true;
            continue;
        }
        if (strcmp(a, "--health-on-workers") == 0) {
            c->health_on_workers = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return false;
        if (!v) {
            fprintf(stderr, "rpc_testd: %s needs a value\n", a);
            return false;
        }
        i++;
        if (strcmp(a, "--listen") == 0) {
            c->listen = v;
        } else if (strcmp(a, "--port-file") == 0) {
            c->port_file = v;
        } else if (strcmp(a, "--workers") == 0) {
            ok = parse_i64(v, 1, 256, &c->workers);
        } else if (strcmp(a, "--grace-ms") == 0) {
            ok = parse_i64(v, 0, 3600000, &c->grace_ms);
        } else if (strcmp(a, "--arena-bytes") == 0) {
            ok = parse_i64(v, 1024, INT64_C(1) << 32, &c->arena_bytes);
        } else if (strcmp(a, "--max-recv-bytes") == 0) {
            ok = parse_i64(v, 1, INT32_MAX, &c->max_recv_bytes);
        } else if (strcmp(a, "--default-deadline-ms") == 0) {
            ok = parse_i64(v, 1, INT64_C(86400000), &c->default_deadline_ms);
        } else if (strcmp(a, "--log-level") == 0) {
            int lvl = log_level_parse(v);
            ok = lvl >= 0;
            if (ok)
                atomic_store(&log_level, lvl);
        } else if (strcmp(a, "--tls-cert") == 0) {
            c->tls_cert = v;
        } else if (strcmp(a, "--tls-key") == 0) {
            c->tls_key = v;
        } else if (strcmp(a, "--tls-client-ca") == 0) {
            c->tls_ca = v;
        } else {
            fprintf(stderr, "rpc_testd: unknown option %s\n", a);
            return false;
        }
        if (!ok) {
            fprintf(stderr, "rpc_testd: bad value for %s: %s\n", a, v);
            return false;
        }
    }
    if (!c->listen) {
        fprintf(stderr, "rpc_testd: --listen is required\n");
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    cli c = { .workers = 2, .grace_ms = 5000, .access_log = true };
    int rc = 1;
    health *h = NULL;
    testd *t = NULL;
    rpc_server *s = NULL;
    char *err = NULL;
    char *cert = NULL;
    char *key = NULL;
    char *ca = NULL;
    bool sig_thread = false;
    pthread_t sig_th;
    second_signal ss;
#ifdef HAVE_REFLECTION
    reflection *refl = NULL;
#endif

    if (!parse_cli(argc, argv, &c)) {
        usage();
        return 2;
    }
    /* Signals are taken with sigwait: block them before any thread starts. */
    sigemptyset(&ss.set);
    sigaddset(&ss.set, SIGTERM);
    sigaddset(&ss.set, SIGINT);
    sigaddset(&ss.set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &ss.set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (c.tls_cert && !(cert = read_file(c.tls_cert))) {
        fprintf(stderr, "rpc_testd: cannot read %s\n", c.tls_cert);
        return 1;
    }
    if (c.tls_key && !(key = read_file(c.tls_key))) {
        fprintf(stderr, "rpc_testd: cannot read %s\n", c.tls_key);
        free(cert);
        return 1;
    }
    if (c.tls_ca && !(ca = read_file(c.tls_ca))) {
        fprintf(stderr, "rpc_testd: cannot read %s\n", c.tls_ca);
        free(cert);
        free(key);
        return 1;
    }

    rpc_global_init();
    h = health_new();
    t = testd_new(h);

    rpc_options o;
    rpc_options_init(&o);
    o.listen_addr = c.listen;
    o.workers = (int)c.workers;
    o.descriptors = testd_descriptors(t);
    o.access_log = c.access_log;
    if (c.arena_bytes)
        o.call_arena_bytes = (size_t)c.arena_bytes;
    if (c.max_recv_bytes)
        o.max_recv_bytes = (size_t)c.max_recv_bytes;
    if (c.default_deadline_ms)
        o.default_deadline_ms = c.default_deadline_ms;
    o.tls_cert_pem = cert;
    o.tls_key_pem = key;
    o.tls_client_ca_pem = ca;
    o.tls_require_client_cert = c.tls_require;

    s = rpc_server_new(&o, &err);
    if (!s)
        goto out;
    if (rpc_server_add_service(s, health_service(h),
                               c.health_on_workers ? RPC_POOL_WORKERS : RPC_POOL_PRIORITY,
                               &err) != ST_OK)
        goto out;
    if (testd_register(t, s, &err) != ST_OK)
        goto out;
#ifdef HAVE_REFLECTION
    refl = reflection_new(testd_descriptors(t));
    if (reflection_register(refl, s, &err) != ST_OK)
        goto out;
#endif
    if (rpc_server_start(s, &err) != ST_OK)
        goto out;

    const char *names[] = { "", "liveness", "readiness", "herald.test.v1.TestService" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        health_set(h, names[i], HEALTH_SERVING);
    int port = rpc_server_port(s);
    if (c.port_file && !write_port_file(c.port_file, port)) {
        err = xasprintf("cannot write port file %s", c.port_file);
        goto out;
    }
    char port_s[16];
    char workers_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    snprintf(workers_s, sizeof workers_s, "%d", o.workers);
    log_field f[] = { LOG_RAW("port", port_s), LOG_RAW("workers", workers_s),
                      LOG_S("tls", cert ? "on" : "off") };
    log_event(LOG_INFO, "rpc_testd serving", f, sizeof f / sizeof f[0]);

    int sig = 0;
    do {
        if (sigwait(&ss.set, &sig) != 0)
            sig = SIGTERM;
    } while (sig == SIGHUP);
    log_info("signal %d: shutting down (grace %" PRId64 " ms)", sig, c.grace_ms);
    sig_thread = pthread_create(&sig_th, NULL, second_signal_main, &ss) == 0;

    health_begin_shutdown(h);
    health_finish_watchers(h);
    rpc_server_shutdown(s, c.grace_ms);
    rc = 0;
out:
    if (err) {
        log_error("rpc_testd: %s", err);
        fprintf(stderr, "rpc_testd: %s\n", err);
        free(err);
    }
    if (s)
        rpc_server_shutdown(s, 0); /* no-op after a graceful shutdown */
    if (t && !testd_wait_idle(t, 5000))
        log_error("helper threads still running");
    rpc_server_free(s);
#ifdef HAVE_REFLECTION
    reflection_free(refl);
#endif
    testd_free(t);
    health_free(h);
    rpc_global_fini();
    if (sig_thread) {
        pthread_cancel(sig_th);
        pthread_join(sig_th, NULL);
    }
    free(cert);
    free(key);
    free(ca);
    if (rc == 0)
        log_info("rpc_testd stopped");
    return rc;
}

#endif
