/* End-to-end tests of libherald_client against rpc_testd (label e2e).
 *
 * The test starts its own rpc_testd on 127.0.0.1 with a free port (plaintext,
 * and a second one with TLS from a certificate made here with openssl), and
 * stops both by PID. Covered: unary calls and their status (code, message,
 * trailers, google.rpc.Status details), deadlines, metadata, typed stubs over
 * protoc-c's generated wrappers (unary, errors, server streaming), server
 * streaming with cancellation from the callback and from another thread,
 * client streaming and bidi, Health/Watch, many threads on one channel,
 * connection failures, TLS with a CA, with verification skipped, and
 * mismatches. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "google/rpc/error_details.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "herald/test/v1/test.pb-c.h"
#include "herald_client.h"
#include "util.h"

#ifndef RPC_TESTD_BIN
#error "RPC_TESTD_BIN must name the rpc_testd binary"
#endif

typedef struct server {
    pid_t pid;
    int port;
    char dir[64];
} server;

static server plain_srv = { .pid = -1 };
static server tls_srv = { .pid = -1 };
static char tls_dir[64];

static int64_t ms_now(void)
{
    return now_mono_ms();
}

/* Starts rpc_testd with extra args; waits (bounded) for its port file. */
static bool server_start(server *s, const char *const *extra)
{
    snprintf(s->dir, sizeof s->dir, "/tmp/herald-client-test-XXXXXX");
    if (!mkdtemp(s->dir))
        return false;
    char portfile[128];
    snprintf(portfile, sizeof portfile, "%s/port", s->dir);
    const char *argv[24] = { RPC_TESTD_BIN, "--listen", "127.0.0.1:0", "--workers", "2",
                             "--port-file", portfile,   "--log-level", "error" };
    size_t n = 9;
    for (size_t i = 0; extra && extra[i] && n < 22; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        /* Dies with the test, even when the test crashes. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, STDOUT_FILENO);
            close(devnull);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < 200; i++) { /* up to 10 s */
        FILE *fp = fopen(portfile, "r");
        if (fp) {
            int port = 0;
            bool ok = fscanf(fp, "%d", &port) == 1 && port > 0;
            fclose(fp);
            if (ok) {
                s->port = port;
                return true;
            }
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s->pid = -1;
            return false;
        }
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
    }
    return false;
}

static void server_stop(server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        int status;
        bool gone = false;
        for (int i = 0; i < 200 && !gone; i++) { /* up to 10 s, then SIGKILL */
            gone = waitpid(s->pid, &status, WNOHANG) == s->pid;
            if (!gone) {
                struct timespec ts = { 0, 50 * 1000000L };
                nanosleep(&ts, NULL);
            }
        }
        if (!gone) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
        }
        s->pid = -1;
    }
    if (s->dir[0]) {
        char cmd[160];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", s->dir);
        s->dir[0] = '\0';
    }
}

/* A port nothing listens on: bound, then closed. */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static herald_channel *open_plain(int port)
{
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    herald_channel_options o;
    herald_channel_options_init(&o);
    o.target = target;
    herald_channel *ch = NULL;
    char *err = NULL;
    if (!herald_channel_open(&o, &ch, &err))
        fail_msg("open: %s", err);
    return ch;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    strbuf b = { 0 };
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        strbuf_append(&b, buf, n);
    fclose(fp);
    return strbuf_take(&b);
}

static int group_setup(void **state)
{
    (void)state;
    herald_client_init();
    if (!server_start(&plain_srv, NULL)) {
        fprintf(stderr, "cannot start %s\n", RPC_TESTD_BIN);
        return -1;
    }
    /* A self-signed certificate for 127.0.0.1 / localhost. */
    snprintf(tls_dir, sizeof tls_dir, "/tmp/herald-client-tls-XXXXXX");
    if (!mkdtemp(tls_dir))
        return -1;
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
             "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s/key.pem "
             "-out %s/cert.pem >/dev/null 2>&1",
             tls_dir, tls_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "openssl failed\n");
        return -1;
    }
    char cert[128], key[128];
    snprintf(cert, sizeof cert, "%s/cert.pem", tls_dir);
    snprintf(key, sizeof key, "%s/key.pem", tls_dir);
    const char *extra[] = { "--tls-cert", cert, "--tls-key", key, NULL };
    if (!server_start(&tls_srv, extra)) {
        fprintf(stderr, "cannot start the TLS rpc_testd\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    server_stop(&plain_srv);
    server_stop(&tls_srv);
    if (tls_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tls_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", tls_dir);
    }
    herald_client_shutdown();
    return 0;
}

#define ECHO_PATH "/herald.test.v1.TestService/Echo"

/* ---- unary ---- */

static void unary_ok_with_metadata_and_deadline(void **state)
{
    (void)state;
    herald_channel *ch = open_plain(plain_srv.port);
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = "h\xc3\xa9llo";
    req.trailer_key = "x-extra";
    req.trailer_value = "42";
    herald_metadata md[] = { { "x-test", "from-the-client", 0 } };
    herald_call_options o = { .timeout_ms = 5000, .metadata = md, .n_metadata = 1 };
    herald_status st;
    herald_status_init(&st);
    ProtobufCMessage *resp = NULL;
    int code = herald_call_unary(ch, ECHO_PATH, &req.base,
                                 &herald__test__v1__echo_reply__descriptor, &o, &resp, &st);
    assert_int_equal(code, 0);
    assert_int_equal(st.code, 0);
    Herald__Test__V1__EchoReply *r = (Herald__Test__V1__EchoReply *)resp;
    assert_string_equal(r->message, "h\xc3\xa9llo");
    assert_string_equal(r->metadata_echo, "from-the-client");
    /* The server saw our deadline: positive and at most 5 s. */
    assert_true(r->remaining_ms > 0 && r->remaining_ms <= 5000);
    size_t len = 0;
    const char *v = herald_status_metadata(&st, "x-extra", &len);
    assert_non_null(v);
    assert_int_equal(len, 2);
    assert_memory_equal(v, "42", 2);
    protobuf_c_message_free_unpacked(resp, NULL);

    /* No deadline: the handler sees none (-1). */
    herald_status_fini(&st);
    herald_call_unary(ch, ECHO_PATH, &req.base, &herald__test__v1__echo_reply__descriptor, NULL,
                      &resp, &st);
    assert_int_equal(st.code, 0);
    assert_int_equal(((Herald__Test__V1__EchoReply *)resp)->remaining_ms, -1);
    protobuf_c_message_free_unpacked(resp, NULL);
    herald_status_fini(&st);
    herald_channel_close(ch);
}

static const ProtobufCMessage *
find_detail(const herald_status *st, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out)
{
    for (size_t i = 0; i < st->n_details; i++) {
        const char *slash = strrchr(st->details[i].type_url, '/');
        if (slash && strcmp(slash + 1, d->name) == 0) {
            *out =
                protobuf_c_message_unpack(d, NULL, st->details[i].value_len, st->details[i].value);
            return *out;
        }
    }
    *out = NULL;
    return NULL;
}

static void errors_carry_details(void **state)
{
    (void)state;
    herald_channel *ch = open_plain(plain_srv.port);
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.fail_code = 3;
    req.fail_message = "bad input here";
    herald_status st;
    herald_status_init(&st);
    ProtobufCMessage *resp = NULL;
    int code = herald_call_unary(ch, ECHO_PATH, &req.base,
                                 &herald__test__v1__echo_reply__descriptor, NULL, &resp, &st);
    assert_int_equal(code, 3);
    assert_null(resp);
    assert_string_equal(st.message, "bad input here");
    ProtobufCMessage *m = NULL;
    assert_non_null(find_detail(&st, &google__rpc__error_info__descriptor, &m));
    assert_string_equal(((Google__Rpc__ErrorInfo *)m)->reason, "TEST_FAILURE");
    protobuf_c_message_free_unpacked(m, NULL);
    assert_non_null(find_detail(&st, &google__rpc__bad_request__descriptor, &m));
    Google__Rpc__BadRequest *br = (Google__Rpc__BadRequest *)m;
    assert_int_equal(br->n_field_violations, 1);
    assert_string_equal(br->field_violations[0]->field, "fail_code");
    protobuf_c_message_free_unpacked(m, NULL);
    herald_status_fini(&st);

    /* UNAVAILABLE carries RetryInfo. */
    req.fail_code = 14;
    req.fail_message = "try later";
    herald_call_unary(ch, ECHO_PATH, &req.base, &herald__test__v1__echo_reply__descriptor, NULL,
                      &resp, &st);
    assert_int_equal(st.code, 14);
    assert_non_null(find_detail(&st, &google__rpc__retry_info__descriptor, &m));
    protobuf_c_message_free_unpacked(m, NULL);
    herald_status_fini(&st);

    /* Unimplemented and unknown methods. */
    herald_call_unary(ch, "/herald.test.v1.TestService/Unbuilt", &req.base,
                      &herald__test__v1__echo_reply__descriptor, NULL, &resp, &st);
    assert_int_equal(st.code, 12);
    herald_status_fini(&st);
    herald_call_unary(ch, "/no.Such/Method", &req.base, &herald__test__v1__echo_reply__descriptor,
                      NULL, &resp, &st);
    assert_int_equal(st.code, 12);
    assert_string_equal(herald_code_name(st.code), "UNIMPLEMENTED");
    herald_status_fini(&st);
    herald_channel_close(ch);
}

/* A service config retry policy: rpc_testd answers UNAVAILABLE with
 * grpc-retry-pushback-ms 250, so three attempts take at least 500 ms, one
 * attempt (no policy) far less. */
static void retry_policy_from_service_config(void **state)
{
    (void)state;
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", plain_srv.port);
    int64_t took[2];
    for (int with = 0; with < 2; with++) {
        herald_channel_options o;
        herald_channel_options_init(&o);
        o.target = target;
        if (with)
            o.service_config_json =
                "{\"methodConfig\":[{\"name\":[{\"service\":\"herald.test.v1.TestService\"}],"
                "\"retryPolicy\":{\"maxAttempts\":3,\"initialBackoff\":\"0.01s\","
                "\"maxBackoff\":\"0.05s\",\"backoffMultiplier\":2,"
                "\"retryableStatusCodes\":[\"UNAVAILABLE\"]}}]}";
        herald_channel *ch = NULL;
        char *err = NULL;
        assert_true(herald_channel_open(&o, &ch, &err));
        assert_int_equal(herald_channel_connect(ch, 5000, true), HERALD_CONNECT_READY);
        Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
        req.fail_code = 14;
        req.fail_message = "busy";
        herald_status st;
        herald_status_init(&st);
        ProtobufCMessage *resp = NULL;
        herald_call_options co = { .timeout_ms = 10000 };
        int64_t t0 = ms_now();
        herald_call_unary(ch, ECHO_PATH, &req.base, &herald__test__v1__echo_reply__descriptor, &co,
                          &resp, &st);
        took[with] = ms_now() - t0;
        assert_int_equal(st.code, 14);
        herald_status_fini(&st);
        herald_channel_close(ch);
    }
    assert_true(took[0] < 200);
    assert_true(took[1] >= 450 && took[1] < 5000);
}

static void deadlines_are_enforced(void **state)
{
    (void)state;
    herald_channel *ch = open_plain(plain_srv.port);
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.sleep_ms = 3000;
    herald_call_options o = { .timeout_ms = 200 };
    herald_status st;
    herald_status_init(&st);
    ProtobufCMessage *resp = NULL;
    int64_t t0 = ms_now();
    herald_call_unary(ch, ECHO_PATH, &req.base, &herald__test__v1__echo_reply__descriptor, &o,
                      &resp, &st);
    int64_t took = ms_now() - t0;
    assert_int_equal(st.code, 4);
    assert_true(took >= 150 && took < 1500);
    herald_status_fini(&st);
    herald_channel_close(ch);
}

/* ---- typed stubs ---- */

typedef struct echo_out {
    int calls;
    int nulls;
    char message[64];
} echo_out;

static void on_echo(const Herald__Test__V1__EchoReply *r, void *data)
{
    echo_out *o = data;
    o->calls++;
    if (!r) {
        o->nulls++;
        return;
    }
    snprintf(o->message, sizeof o->message, "%s", r->message);
}

static void typed_stub_unary(void **state)
{
    (void)state;
    herald_channel *ch = open_plain(plain_srv.port);
    herald_stub *stub = herald_stub_new(ch, &herald__test__v1__test_service__descriptor);
    ProtobufCService *svc = herald_stub_service(stub);
    herald_call_options o = { .timeout_ms = 5000 };
    herald_stub_set_options(stub, &o);

    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = "typed";
    echo_out out = { 0 };
    herald__test__v1__test_service__echo(svc, &req, on_echo, &out);
    assert_int_equal(out.calls, 1);
    assert_int_equal(out.nulls, 0);
    assert_string_equal(out.message, "typed");
    assert_int_equal(herald_stub_status(stub)->code, 0);

    /* Failure: exactly one NULL, the status explains. */
    req.fail_code = 5;
    req.fail_message = "no such thing";
    memset(&out, 0, sizeof out);
    herald__test__v1__test_service__echo(svc, &req, on_echo, &out);
    assert_int_equal(out.calls, 1);
    assert_int_equal(out.nulls, 1);
    assert_int_equal(herald_stub_status(stub)->code, 5);
    assert_string_equal(herald_stub_status(stub)->message, "no such thing");

    /* Unimplemented method through its generated wrapper. */
    memset(&out, 0, sizeof out);
    herald__test__v1__test_service__unbuilt(svc, &req, on_echo, &out);
    assert_int_equal(out.nulls, 1);
    assert_int_equal(herald_stub_status(stub)->code, 12);
    protobuf_c_service_destroy(svc); /* frees the stub */
    herald_channel_close(ch);
}

typedef struct stream_out {
    int messages;
    int nulls;
    int stop_after; /* 0: never */
} stream_out;

static void on_stream_reply(const Herald__Test__V1__EchoReply *r, void *data)
{
    stream_out *o = data;
    if (r)
        o->messages++;
    else
        o->nulls++;
}

static void typed_stub_server_stream(void **state)
{
    (void)state;
    herald_channel *ch = open_plain(plain_srv.port);
    herald_stub *stub = herald_stub_new(ch, &herald__test__v1__test_service__descriptor);
    Herald__Test__V1__StreamRequest req = HERALD__TEST__V1__STREAM_REQUEST__INIT;
    req.count = 5;
    stream_out out = { 0 };
    herald__test__v1__test_service__server_stream(herald_stub_service(stub), &req, on_stream_reply,
                                                  &out);
    assert_int_equal(out.messages, 5);
    assert_int_equal(out.nulls, 0);
    assert_int_equal(herald_stub_status(stub)->code, 0);

    /* Fails after 3 messages: 3 messages, then one NULL and ABORTED. */
    req.fail_after = 3;
    req.fail_code = 10;
    memset(&out, 0, sizeof out);
    herald__test__v1__test_service__server_stream(herald_stub_service(stub), &req, on_stream_reply,
                                                  &out);
    assert_int_equal(out.messages, 3);
    assert_int_equal(out.nulls, 1);
    assert_int_equal(herald_stub_status(stub)->code, 10);
    herald_stub_free(stub);
    herald_channel_close(ch);
}

/* ---- streaming ---- */

static bool count_then_stop(const ProtobufCMessage *m, void *user)
{
    stream_out *o = user;
    (void)m;
    o->messages++;
    return !(o->stop_after && o->messages >= o->stop_after);
}

static void server_stream_cancel_from_callback(void **state)
{
    (void)state;
    herald_channel *ch = open_plain(plain_srv.port);
    Herald__Test__V1__StreamRequest req = HERALD__TEST__V1__STREAM_REQUEST__INIT;
    req.count = 1000;
    req.interval_ms = 20;
    stream_out out = { .stop_after = 2 };
    herald_status st;
    herald_status_init(&st);
    int64_t t0 = ms_now();
    herald_call_options o = { .timeout_ms = 30000 };
    int code = herald_call_server_stream(ch, "/herald.test.v1.TestService/ServerStream", &req.base,
                                         &herald__test__v1__echo_reply__descriptor, &o,
                                         count_then_stop, &out, &st);
    assert_int_equal(code, 1); /* CANCELLED */
    assert_int_equal(out.messages, 2);
    assert_true(ms_now() - t0 < 5000);
    herald_status_fini(&st);
    herald_channel_close(ch);
}

typedef struct trigger_arg {
    herald_cancel *cancel;
    int delay_ms;
} trigger_arg;

static void *trigger_later(void *p)
{
    trigger_arg *a = p;
    struct timespec ts = { 0, (long)a->delay_ms * 1000000L };
    nanosleep(&ts, NULL);
    herald_cancel_trigger(a->cancel);
    return NULL;
}

static void cancel_token_from_another_thread(void **state)
{
    (void)state;
    herald_channel *ch = open_plain(plain_srv.port);
    herald_cancel *cancel = herald_cancel_new();
    trigger_arg a = { cancel, 150 };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, trigger_later, &a), 0);
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.sleep_ms = 10000;
    herald_call_options o = { .timeout_ms = 20000, .cancel = cancel };
    herald_status st;
    herald_status_init(&st);
    ProtobufCMessage *resp = NULL;
    int64_t t0 = ms_now();
    herald_call_unary(ch, ECHO_PATH, &req.base, &herald__test__v1__echo_reply__descriptor, &o,
                      &resp, &st);
    int64_t took = ms_now() - t0;
    pthread_join(t, NULL);
    assert_int_equal(st.code, 1);
    assert_true(took >= 100 && took < 3000);
    assert_true(herald_cancel_triggered(cancel));
    /* A triggered token refuses new calls at once. */
    herald_status_fini(&st);
    t0 = ms_now();
    herald_call_unary(ch, ECHO_PATH, &req.base, &herald__test__v1__echo_reply__descriptor, &o,
                      &resp, &st);
    assert_int_equal(st.code, 1);
    assert_true(ms_now() - t0 < 500);
    herald_status_fini(&st);
    herald_cancel_free(cancel);
    herald_channel_close(ch);
}

static void client_streaming_and_bidi(void **state)
{
    (void)state;
    herald_channel *ch = open_plain(plain_srv.port);
    herald_call_options o = { .timeout_ms = 10000 };
    const char *parts[] = { "a", "b", "c" };
    char *err = NULL;
    herald_status st;
    herald_status_init(&st);

    herald_call *c = herald_call_start(ch, "/herald.test.v1.TestService/Collect", &o, &err);
    assert_non_null(c);
    for (size_t i = 0; i < 3; i++) {
        Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
        req.message = (char *)parts[i];
        assert_true(herald_call_send(c, &req.base));
    }
    assert_true(herald_call_close_send(c));
    ProtobufCMessage *m = NULL;
    assert_int_equal(herald_call_recv(c, &herald__test__v1__echo_reply__descriptor, &m), 1);
    assert_string_equal(((Herald__Test__V1__EchoReply *)m)->message, "abc");
    protobuf_c_message_free_unpacked(m, NULL);
    assert_int_equal(herald_call_recv(c, &herald__test__v1__echo_reply__descriptor, &m), 0);
    assert_int_equal(herald_call_finish(c, &st), 0);
    herald_call_free(c);
    herald_status_fini(&st);

    c = herald_call_start(ch, "/herald.test.v1.TestService/Chat", &o, &err);
    assert_non_null(c);
    int got = 0;
    for (size_t i = 0; i < 3; i++) {
        Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
        req.message = (char *)parts[i];
        assert_true(herald_call_send(c, &req.base));
        /* Bidi: each message comes back before the next is sent. */
        assert_int_equal(herald_call_recv(c, &herald__test__v1__echo_reply__descriptor, &m), 1);
        assert_string_equal(((Herald__Test__V1__EchoReply *)m)->message, parts[i]);
        protobuf_c_message_free_unpacked(m, NULL);
        got++;
    }
    herald_call_close_send(c);
    assert_int_equal(herald_call_recv(c, &herald__test__v1__echo_reply__descriptor, &m), 0);
    assert_int_equal(herald_call_finish(c, &st), 0);
    assert_int_equal(got, 3);
    herald_call_free(c);
    herald_status_fini(&st);

    /* Freeing a call that is still streaming cancels it cleanly. */
    c = herald_call_start(ch, "/herald.test.v1.TestService/Chat", &o, &err);
    assert_non_null(c);
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = "x";
    assert_true(herald_call_send(c, &req.base));
    herald_call_free(c);
    herald_channel_close(ch);
}

/* ---- health watch ---- */

typedef struct watch_ctx {
    herald_channel *ch;
    int seen[4];
    int messages;
    int first;
} watch_ctx;

static void *flip_health(void *p)
{
    watch_ctx *w = p;
    struct timespec ts = { 0, 200 * 1000000L };
    nanosleep(&ts, NULL);
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = "health:cli-watch=SERVING";
    herald_status st;
    herald_status_init(&st);
    ProtobufCMessage *resp = NULL;
    herald_call_options o = { .timeout_ms = 5000 };
    herald_call_unary(w->ch, ECHO_PATH, &req.base, &herald__test__v1__echo_reply__descriptor, &o,
                      &resp, &st);
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    herald_status_fini(&st);
    return NULL;
}

static bool on_health(const ProtobufCMessage *m, void *user)
{
    watch_ctx *w = user;
    const Grpc__Health__V1__HealthCheckResponse *r =
        (const Grpc__Health__V1__HealthCheckResponse *)m;
    if (w->messages == 0)
        w->first = r->status;
    w->messages++;
    if (r->status >= 0 && r->status < 4)
        w->seen[r->status]++;
    return r->status != GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
}

static void health_watch_sees_a_change(void **state)
{
    (void)state;
    watch_ctx w = { .ch = open_plain(plain_srv.port) };
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = "cli-watch";
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, flip_health, &w), 0);
    herald_status st;
    herald_status_init(&st);
    herald_call_options o = { .timeout_ms = 10000 };
    herald_call_server_stream(w.ch, "/grpc.health.v1.Health/Watch", &req.base,
                              &grpc__health__v1__health_check_response__descriptor, &o, on_health,
                              &w, &st);
    pthread_join(t, NULL);
    /* Unknown first (the stream stays open), then SERVING once it appears. */
    assert_int_equal(w.first,
                     GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN);
    assert_int_equal(w.seen[GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING], 1);
    assert_int_equal(st.code, 1); /* we cancelled after SERVING */
    herald_status_fini(&st);
    herald_channel_close(w.ch);
}

/* ---- threads ---- */

enum { THREADS = 8, CALLS_PER_THREAD = 50 };

typedef struct worker_arg {
    herald_channel *ch;
    int index;
    int ok;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    herald_stub *stub = herald_stub_new(a->ch, &herald__test__v1__test_service__descriptor);
    herald_call_options o = { .timeout_ms = 10000 };
    herald_stub_set_options(stub, &o);
    for (int i = 0; i < CALLS_PER_THREAD; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "t%d-%d", a->index, i);
        Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
        req.message = msg;
        echo_out out = { 0 };
        herald__test__v1__test_service__echo(herald_stub_service(stub), &req, on_echo, &out);
        if (out.calls == 1 && out.nulls == 0 && strcmp(out.message, msg) == 0 &&
            herald_stub_status(stub)->code == 0)
            a->ok++;
    }
    herald_stub_free(stub);
    return NULL;
}

static void many_threads_share_one_channel(void **state)
{
    (void)state;
    herald_channel *ch = open_plain(plain_srv.port);
    pthread_t t[THREADS];
    worker_arg a[THREADS];
    int64_t t0 = now_mono_us();
    for (int i = 0; i < THREADS; i++) {
        a[i] = (worker_arg){ ch, i, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        total += a[i].ok;
    }
    assert_int_equal(total, THREADS * CALLS_PER_THREAD);
    double secs = (double)(now_mono_us() - t0) / 1e6;
    print_message("%d typed Echo calls from %d threads on one channel in %.2f s (%.0f calls/s)\n",
                  total, THREADS, secs, total / secs);
    herald_channel_close(ch);
}

/* ---- connections and TLS ---- */

static void dead_port_fails_fast(void **state)
{
    (void)state;
    herald_channel *ch = open_plain(dead_port());
    int64_t t0 = ms_now();
    assert_int_equal(herald_channel_connect(ch, 5000, true), HERALD_CONNECT_FAILED);
    assert_true(ms_now() - t0 < 3000);
    /* A call fails fast with UNAVAILABLE (no wait_for_ready). */
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    herald_status st;
    herald_status_init(&st);
    ProtobufCMessage *resp = NULL;
    herald_call_options o = { .timeout_ms = 5000 };
    herald_call_unary(ch, ECHO_PATH, &req.base, &herald__test__v1__echo_reply__descriptor, &o,
                      &resp, &st);
    assert_int_equal(st.code, 14);
    herald_status_fini(&st);
    herald_channel_close(ch);

    /* Bad options are refused up front. */
    herald_channel_options bad;
    herald_channel_options_init(&bad);
    bad.tls = true;
    bad.cert_pem = "x";
    char *err = NULL;
    herald_channel *none = NULL;
    assert_false(herald_channel_open(&bad, &none, &err));
    assert_null(none);
    assert_non_null(err);
    free(err);
}

static int tls_echo(const char *ca, const char *server_name, bool skip_verify)
{
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", tls_srv.port);
    herald_channel_options o;
    herald_channel_options_init(&o);
    o.target = target;
    o.tls = true;
    o.ca_pem = ca;
    o.server_name = server_name;
    o.insecure_skip_verify = skip_verify;
    o.token = "secret-token";
    herald_channel *ch = NULL;
    char *err = NULL;
    if (!herald_channel_open(&o, &ch, &err))
        fail_msg("open: %s", err);
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = "over tls";
    herald_status st;
    herald_status_init(&st);
    ProtobufCMessage *resp = NULL;
    herald_call_options co = { .timeout_ms = 30000 }; /* TLS handshakes are slow under valgrind */
    herald_call_unary(ch, ECHO_PATH, &req.base, &herald__test__v1__echo_reply__descriptor, &co,
                      &resp, &st);
    int code = st.code;
    if (code == 0)
        assert_string_equal(((Herald__Test__V1__EchoReply *)resp)->message, "over tls");
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    herald_status_fini(&st);
    herald_channel_close(ch);
    return code;
}

static void tls_channels(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/cert.pem", tls_dir);
    char *ca = slurp(path);
    assert_non_null(ca);
    /* Verified against the CA; the certificate names 127.0.0.1 and localhost. */
    assert_int_equal(tls_echo(ca, NULL, false), 0);
    assert_int_equal(tls_echo(ca, "localhost", false), 0);
    /* A name the certificate does not carry fails the handshake. */
    assert_int_equal(tls_echo(ca, "wrong.example", false), 14);
    /* Without the CA (system roots) the self-signed certificate is refused... */
    assert_int_equal(tls_echo(NULL, NULL, false), 14);
    /* ...unless verification is skipped. */
    assert_int_equal(tls_echo(NULL, NULL, true), 0);
    free(ca);

    /* Plaintext to the TLS port cannot connect. */
    herald_channel *ch = open_plain(tls_srv.port);
    assert_int_not_equal(herald_channel_connect(ch, 2000, true), HERALD_CONNECT_READY);
    herald_channel_close(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unary_ok_with_metadata_and_deadline),
        cmocka_unit_test(errors_carry_details),
        cmocka_unit_test(deadlines_are_enforced),
        cmocka_unit_test(retry_policy_from_service_config),
        cmocka_unit_test(typed_stub_unary),
        cmocka_unit_test(typed_stub_server_stream),
        cmocka_unit_test(server_stream_cancel_from_callback),
        cmocka_unit_test(cancel_token_from_another_thread),
        cmocka_unit_test(client_streaming_and_bidi),
        cmocka_unit_test(health_watch_sees_a_change),
        cmocka_unit_test(many_threads_share_one_channel),
        cmocka_unit_test(dead_port_fails_fast),
        cmocka_unit_test(tls_channels),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
