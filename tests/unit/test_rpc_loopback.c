/* In-process loopback tests of the rpc runtime and health: the runtime
 * serves the test service (tests/rpc_testd.c) and health on 127.0.0.1 with a
 * free port, and a small C gRPC client (grpc_channel_create_call, one pluck
 * queue per call) drives every behaviour of rpc.h over real HTTP/2. Each
 * wait is bounded. */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "google/protobuf/any.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "health.h"
#include "herald/test/v1/test.pb-c.h"
#include "log.h"
#include "rpc.h"
#include "rpc_testd.h"
#include "util.h"

enum { WAIT_MS = 10000 }; /* upper bound of any single wait */

/* Upper time bounds are multiplied by HERALD_TEST_TIME_SCALE (default 1;
 * the valgrind run sets 20). Lower bounds never are. */
static int64_t scaled(int64_t ms)
{
    static int64_t scale;
    if (scale == 0) {
        const char *e = getenv("HERALD_TEST_TIME_SCALE");
        scale = e && atoi(e) > 0 ? atoi(e) : 1;
    }
    return ms * scale;
}

/* ------------------------------------------------------------------ */
/* A test server                                                       */

typedef struct tserver {
    health *h;
    testd *t;
    rpc_server *s;
    grpc_channel *ch;
    int port;
} tserver;

static tserver g; /* the shared server of most tests */

static status deny_interceptor(rpc_call *call, void *user)
{
    (void)user;
    const char *v = rpc_call_metadata(call, "x-deny", NULL);
    if (v && strcmp(v, "1") == 0) {
        rpc_call_set_status(call, ST_PERMISSION_DENIED, "denied by the test interceptor");
        return ST_PERMISSION_DENIED;
    }
    return ST_OK;
}

typedef struct tls_files {
    char *ca; /* PEM contents */
    char *srv_cert;
    char *srv_key;
    char *cli_cert;
    char *cli_key;
} tls_files;

/* tls: NULL for plaintext; else serve TLS, and require client certificates
 * signed by tls->ca when mtls. The shared channel is plaintext/TLS to match
 * (with a client certificate under mTLS). */
static void tserver_start_tls(tserver *ts, int workers, size_t arena_bytes, const tls_files *tls,
                              bool mtls)
{
    char *err = NULL;
    memset(ts, 0, sizeof *ts);
    ts->h = health_new();
    ts->t = testd_new(ts->h);
    rpc_options o;
    rpc_options_init(&o);
    o.listen_addr = "127.0.0.1:0";
    o.workers = workers;
    o.descriptors = testd_descriptors(ts->t);
    o.call_arena_bytes = arena_bytes;
    o.interceptor = deny_interceptor;
    o.access_log = true;
    if (tls) {
        o.tls_cert_pem = tls->srv_cert;
        o.tls_key_pem = tls->srv_key;
        if (mtls) {
            o.tls_client_ca_pem = tls->ca;
            o.tls_require_client_cert = true;
        }
    }
    ts->s = rpc_server_new(&o, &err);
    assert_non_null(ts->s);
    assert_int_equal(rpc_server_add_service(ts->s, health_service(ts->h), RPC_POOL_PRIORITY, &err),
                     ST_OK);
    assert_int_equal(testd_register(ts->t, ts->s, &err), ST_OK);
    assert_int_equal(rpc_server_start(ts->s, &err), ST_OK);
    ts->port = rpc_server_port(ts->s);
    assert_true(ts->port > 0);
    health_set(ts->h, "", HEALTH_SERVING);
    health_set(ts->h, "readiness", HEALTH_SERVING);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", ts->port);
    grpc_channel_credentials *creds = NULL;
    if (tls) {
        grpc_ssl_pem_key_cert_pair pair = { tls->cli_key, tls->cli_cert };
        creds = grpc_ssl_credentials_create(tls->ca, mtls ? &pair : NULL, NULL, NULL);
    } else {
        creds = grpc_insecure_credentials_create();
    }
    ts->ch = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
}

static void tserver_start(tserver *ts, int workers, size_t arena_bytes)
{
    tserver_start_tls(ts, workers, arena_bytes, NULL, false);
}

static void tserver_stop(tserver *ts, int64_t grace_ms)
{
    health_begin_shutdown(ts->h);
    health_finish_watchers(ts->h);
    rpc_server_shutdown(ts->s, grace_ms);
    assert_true(testd_wait_idle(ts->t, WAIT_MS));
    rpc_server_free(ts->s);
    testd_free(ts->t);
    health_free(ts->h);
    if (ts->ch)
        grpc_channel_destroy(ts->ch);
    memset(ts, 0, sizeof *ts);
}

/* ------------------------------------------------------------------ */
/* A small client: one pluck queue per call                            */

enum { T_START = 1, T_SEND, T_CLOSE, T_RECV, T_STATUS };

typedef struct tcall {
    grpc_call *call;
    grpc_completion_queue *cq;
    grpc_metadata_array init_md;
    grpc_metadata_array trailers;
    grpc_status_code code;
    grpc_slice details;
    bool got_init_md;
    bool recv_pending;
    bool status_done;
    grpc_byte_buffer *recv_bb;
    int64_t t0_ms;
} tcall;

static gpr_timespec after_ms(int64_t ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static void pluck_ok(tcall *tc, intptr_t tag)
{
    grpc_event ev = grpc_completion_queue_pluck(tc->cq, (void *)tag, after_ms(WAIT_MS), NULL);
    assert_int_equal(ev.type, GRPC_OP_COMPLETE);
}

static void start(tcall *tc, const grpc_op *ops, size_t n, intptr_t tag)
{
    assert_int_equal(grpc_call_start_batch(tc->call, ops, n, (void *)tag, NULL), GRPC_CALL_OK);
}

/* md: key, value pairs, NULL-terminated. timeout_ms <= 0: no deadline. */
static void tcall_open(tcall *tc, grpc_channel *ch, const char *path, int timeout_ms,
                       const char *const *md)
{
    memset(tc, 0, sizeof *tc);
    tc->t0_ms = now_mono_ms();
    tc->cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec dl = timeout_ms > 0 ? after_ms(timeout_ms) : gpr_inf_future(GPR_CLOCK_REALTIME);
    grpc_slice method = grpc_slice_from_static_string(path);
    tc->call =
        grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, tc->cq, method, NULL, dl, NULL);
    assert_non_null(tc->call);
    grpc_metadata_array_init(&tc->init_md);
    grpc_metadata_array_init(&tc->trailers);
    tc->details = grpc_empty_slice();

    grpc_metadata sent[8];
    size_t n_md = 0;
    for (size_t i = 0; md && md[i] && n_md < 8; i += 2, n_md++) {
        memset(&sent[n_md], 0, sizeof sent[n_md]);
        sent[n_md].key = grpc_slice_from_copied_string(md[i]);
        sent[n_md].value = grpc_slice_from_copied_string(md[i + 1]);
    }
    grpc_op ops[1];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = n_md;
    ops[0].data.send_initial_metadata.metadata = n_md ? sent : NULL;
    start(tc, ops, 1, T_START);
    pluck_ok(tc, T_START);
    for (size_t i = 0; i < n_md; i++) {
        grpc_slice_unref(sent[i].key);
        grpc_slice_unref(sent[i].value);
    }
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &tc->trailers;
    ops[0].data.recv_status_on_client.status = &tc->code;
    ops[0].data.recv_status_on_client.status_details = &tc->details;
    start(tc, ops, 1, T_STATUS);
}

/* Sends bytes; false when the call is already over. */
static bool tcall_send_raw(tcall *tc, const void *data, size_t len)
{
    grpc_slice sl = grpc_slice_from_copied_buffer(data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    start(tc, &op, 1, T_SEND);
    grpc_event ev = grpc_completion_queue_pluck(tc->cq, (void *)T_SEND, after_ms(WAIT_MS), NULL);
    assert_int_equal(ev.type, GRPC_OP_COMPLETE);
    grpc_byte_buffer_destroy(bb);
    return ev.success != 0;
}

static bool tcall_send(tcall *tc, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = xmalloc(n ? n : 1);
    protobuf_c_message_pack(m, buf);
    bool ok = tcall_send_raw(tc, buf, n);
    free(buf);
    return ok;
}

static void tcall_close(tcall *tc)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    start(tc, &op, 1, T_CLOSE);
    pluck_ok(tc, T_CLOSE);
}

/* 1: a message in *out (malloc'd, *len bytes); 0: end of stream; -1: none
 * within timeout_ms (the receive stays pending for the next call). */
static int tcall_recv(tcall *tc, int timeout_ms, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!tc->recv_pending) {
        grpc_op ops[2];
        size_t n = 0;
        memset(ops, 0, sizeof ops);
        if (!tc->got_init_md) {
            ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
            ops[n].data.recv_initial_metadata.recv_initial_metadata = &tc->init_md;
            n++;
            tc->got_init_md = true;
        }
        ops[n].op = GRPC_OP_RECV_MESSAGE;
        ops[n].data.recv_message.recv_message = &tc->recv_bb;
        n++;
        start(tc, ops, n, T_RECV);
        tc->recv_pending = true;
    }
    grpc_event ev = grpc_completion_queue_pluck(tc->cq, (void *)T_RECV, after_ms(timeout_ms), NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT)
        return -1;
    assert_int_equal(ev.type, GRPC_OP_COMPLETE);
    tc->recv_pending = false;
    if (!tc->recv_bb)
        return 0;
    grpc_byte_buffer_reader rd;
    assert_true(grpc_byte_buffer_reader_init(&rd, tc->recv_bb));
    grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
    *len = GRPC_SLICE_LENGTH(all);
    *out = xmalloc(*len ? *len : 1);
    memcpy(*out, GRPC_SLICE_START_PTR(all), *len);
    grpc_slice_unref(all);
    grpc_byte_buffer_reader_destroy(&rd);
    grpc_byte_buffer_destroy(tc->recv_bb);
    tc->recv_bb = NULL;
    return 1;
}

static Herald__Test__V1__EchoReply *tcall_recv_echo(tcall *tc, int timeout_ms)
{
    uint8_t *b = NULL;
    size_t n = 0;
    if (tcall_recv(tc, timeout_ms, &b, &n) != 1)
        return NULL;
    Herald__Test__V1__EchoReply *r = herald__test__v1__echo_reply__unpack(NULL, n, b);
    free(b);
    assert_non_null(r);
    return r;
}

static int tcall_status(tcall *tc)
{
    if (!tc->status_done) {
        pluck_ok(tc, T_STATUS);
        tc->status_done = true;
    }
    return (int)tc->code;
}

static char *tcall_details(tcall *tc)
{
    return xstrndup((const char *)GRPC_SLICE_START_PTR(tc->details),
                    GRPC_SLICE_LENGTH(tc->details));
}

/* A trailer's value (not NUL-terminated; *len bytes) or NULL. */
static const uint8_t *tcall_trailer(tcall *tc, const char *key, size_t *len)
{
    for (size_t i = 0; i < tc->trailers.count; i++) {
        grpc_slice k = tc->trailers.metadata[i].key;
        if (GRPC_SLICE_LENGTH(k) == strlen(key) &&
            memcmp(GRPC_SLICE_START_PTR(k), key, strlen(key)) == 0) {
            *len = GRPC_SLICE_LENGTH(tc->trailers.metadata[i].value);
            return GRPC_SLICE_START_PTR(tc->trailers.metadata[i].value);
        }
    }
    return NULL;
}

static bool trailer_is(tcall *tc, const char *key, const char *want)
{
    size_t n = 0;
    const uint8_t *v = tcall_trailer(tc, key, &n);
    return v && n == strlen(want) && memcmp(v, want, n) == 0;
}

static void tcall_free(tcall *tc)
{
    if (!tc->status_done || tc->recv_pending)
        grpc_call_cancel(tc->call, NULL);
    if (tc->recv_pending)
        pluck_ok(tc, T_RECV);
    if (tc->recv_bb)
        grpc_byte_buffer_destroy(tc->recv_bb);
    if (!tc->status_done)
        pluck_ok(tc, T_STATUS);
    grpc_metadata_array_destroy(&tc->init_md);
    grpc_metadata_array_destroy(&tc->trailers);
    grpc_slice_unref(tc->details);
    grpc_call_unref(tc->call);
    grpc_completion_queue_shutdown(tc->cq);
    grpc_event ev;
    do {
        ev = grpc_completion_queue_pluck(tc->cq, NULL, after_ms(WAIT_MS), NULL);
    } while (ev.type != GRPC_QUEUE_SHUTDOWN && ev.type != GRPC_QUEUE_TIMEOUT);
    assert_int_equal(ev.type, GRPC_QUEUE_SHUTDOWN);
    grpc_completion_queue_destroy(tc->cq);
}

/* A unary Echo on ch: returns the code; *reply (when non-NULL) gets the
 * reply on OK. tc stays open for trailers; the caller frees it. */
static int echo_call(tcall *tc, grpc_channel *ch, const Herald__Test__V1__EchoRequest *req,
                     int timeout_ms, const char *const *md, Herald__Test__V1__EchoReply **reply)
{
    tcall_open(tc, ch, "/herald.test.v1.TestService/Echo", timeout_ms, md);
    tcall_send(tc, &req->base);
    tcall_close(tc);
    Herald__Test__V1__EchoReply *r = tcall_recv_echo(tc, WAIT_MS);
    int code = tcall_status(tc);
    if (reply)
        *reply = r;
    else if (r)
        herald__test__v1__echo_reply__free_unpacked(r, NULL);
    return code;
}

static int health_check(grpc_channel *ch, const char *name, int *state)
{
    tcall tc;
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)name;
    tcall_open(&tc, ch, "/grpc.health.v1.Health/Check", 5000, NULL);
    tcall_send(&tc, &req.base);
    tcall_close(&tc);
    uint8_t *b = NULL;
    size_t n = 0;
    *state = -1;
    if (tcall_recv(&tc, WAIT_MS, &b, &n) == 1) {
        Grpc__Health__V1__HealthCheckResponse *r =
            grpc__health__v1__health_check_response__unpack(NULL, n, b);
        assert_non_null(r);
        *state = (int)r->status;
        grpc__health__v1__health_check_response__free_unpacked(r, NULL);
    }
    free(b);
    int code = tcall_status(&tc);
    tcall_free(&tc);
    return code;
}

/* Watch: the next pushed status within timeout_ms, or -1. */
static int watch_next(tcall *tc, int timeout_ms)
{
    uint8_t *b = NULL;
    size_t n = 0;
    if (tcall_recv(tc, timeout_ms, &b, &n) != 1)
        return -1;
    Grpc__Health__V1__HealthCheckResponse *r =
        grpc__health__v1__health_check_response__unpack(NULL, n, b);
    free(b);
    assert_non_null(r);
    int st = (int)r->status;
    grpc__health__v1__health_check_response__free_unpacked(r, NULL);
    return st;
}

static void watch_open(tcall *tc, grpc_channel *ch, const char *name)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)name;
    tcall_open(tc, ch, "/grpc.health.v1.Health/Watch", 0, NULL);
    tcall_send(tc, &req.base);
    tcall_close(tc);
}

/* Polls until the server holds no call (bounded). */
static void wait_inflight_zero(rpc_server *s)
{
    int64_t until = now_mono_ms() + WAIT_MS;
    while (rpc_server_inflight(s) != 0 && now_mono_ms() < until) {
        struct timespec ts = { 0, 2 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    assert_int_equal(rpc_server_inflight(s), 0);
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */

static void unary_ok(void **state)
{
    (void)state;
    tcall tc;
    Herald__Test__V1__EchoReply *r = NULL;
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = "hello";
    const char *md[] = { "x-test", "meta-1", "x-request-id", "req-abc-123", NULL };
    assert_int_equal(echo_call(&tc, g.ch, &req, 5000, md, &r), GRPC_CODE_OK);
    assert_non_null(r);
    assert_string_equal(r->message, "hello");
    assert_string_equal(r->metadata_echo, "meta-1");
    assert_string_equal(r->request_id, "req-abc-123");
    assert_true(r->remaining_ms > 5000 - scaled(2000) && r->remaining_ms <= 5000);
    assert_true(r->worker == 0 || r->worker == 1);
    assert_true(trailer_is(&tc, "x-request-id", "req-abc-123"));
    herald__test__v1__echo_reply__free_unpacked(r, NULL);
    tcall_free(&tc);
}

static void request_id_generated_and_no_deadline(void **state)
{
    (void)state;
    tcall tc;
    Herald__Test__V1__EchoReply *r = NULL;
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = "x";
    /* An x-request-id over 128 bytes is replaced. */
    char long_id[201];
    memset(long_id, 'a', 200);
    long_id[200] = '\0';
    const char *md[] = { "x-request-id", long_id, NULL };
    assert_int_equal(echo_call(&tc, g.ch, &req, 0, md, &r), GRPC_CODE_OK);
    assert_int_equal(r->remaining_ms, -1); /* the client sent no deadline */
    assert_int_equal(strlen(r->request_id), 36);
    assert_int_equal(r->request_id[14], '4'); /* UUIDv4 */
    assert_true(trailer_is(&tc, "x-request-id", r->request_id));
    herald__test__v1__echo_reply__free_unpacked(r, NULL);
    tcall_free(&tc);
}

static const Google__Protobuf__Any *any_of(const Google__Rpc__Status *st, const char *url)
{
    for (size_t i = 0; i < st->n_details; i++)
        if (strcmp(st->details[i]->type_url, url) == 0)
            return st->details[i];
    return NULL;
}

static void error_with_details_and_trailer(void **state)
{
    (void)state;
    tcall tc;
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.fail_code = GRPC_CODE_INVALID_ARGUMENT;
    req.fail_message = "text has a hashtag";
    req.trailer_key = "x-herald-test";
    req.trailer_value = "trailer-value-1";
    assert_int_equal(echo_call(&tc, g.ch, &req, 5000, NULL, NULL), GRPC_CODE_INVALID_ARGUMENT);
    char *details = tcall_details(&tc);
    assert_string_equal(details, "text has a hashtag");
    free(details);
    assert_true(trailer_is(&tc, "x-herald-test", "trailer-value-1"));

    size_t n = 0;
    const uint8_t *bin = tcall_trailer(&tc, "grpc-status-details-bin", &n);
    assert_non_null(bin);
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, n, bin);
    assert_non_null(st);
    assert_int_equal(st->code, GRPC_CODE_INVALID_ARGUMENT);
    assert_string_equal(st->message, "text has a hashtag");
    const Google__Protobuf__Any *a = any_of(st, "type.googleapis.com/google.rpc.BadRequest");
    assert_non_null(a);
    Google__Rpc__BadRequest *br =
        google__rpc__bad_request__unpack(NULL, a->value.len, a->value.data);
    assert_non_null(br);
    assert_int_equal(br->n_field_violations, 1);
    assert_string_equal(br->field_violations[0]->field, "fail_code");
    google__rpc__bad_request__free_unpacked(br, NULL);
    a = any_of(st, "type.googleapis.com/google.rpc.ErrorInfo");
    assert_non_null(a);
    Google__Rpc__ErrorInfo *ei = google__rpc__error_info__unpack(NULL, a->value.len, a->value.data);
    assert_non_null(ei);
    assert_string_equal(ei->reason, "TEST_FAILURE");
    google__rpc__error_info__free_unpacked(ei, NULL);
    assert_null(any_of(st, "type.googleapis.com/google.rpc.RetryInfo"));
    assert_null(tcall_trailer(&tc, "grpc-retry-pushback-ms", &n));
    google__rpc__status__free_unpacked(st, NULL);
    tcall_free(&tc);

    /* UNAVAILABLE carries RetryInfo and the pushback trailer. */
    req.fail_code = GRPC_CODE_UNAVAILABLE;
    req.fail_message = "try later";
    req.trailer_key = "";
    assert_int_equal(echo_call(&tc, g.ch, &req, 5000, NULL, NULL), GRPC_CODE_UNAVAILABLE);
    assert_true(trailer_is(&tc, "grpc-retry-pushback-ms", "250"));
    bin = tcall_trailer(&tc, "grpc-status-details-bin", &n);
    assert_non_null(bin);
    st = google__rpc__status__unpack(NULL, n, bin);
    assert_non_null(st);
    assert_non_null(any_of(st, "type.googleapis.com/google.rpc.RetryInfo"));
    google__rpc__status__free_unpacked(st, NULL);
    tcall_free(&tc);

    /* A code with no status of ours (OUT_OF_RANGE) goes through as is. */
    req.fail_code = GRPC_CODE_OUT_OF_RANGE;
    req.fail_message = "page out of range";
    assert_int_equal(echo_call(&tc, g.ch, &req, 5000, NULL, NULL), GRPC_CODE_OUT_OF_RANGE);
    tcall_free(&tc);
}

static void deadline_shorter_than_handler(void **state)
{
    (void)state;
    for (int detach = 0; detach <= 1; detach++) {
        tcall tc;
        Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
        req.message = "slow";
        req.sleep_ms = (int32_t)scaled(3000);
        req.detach = detach;
        int64_t t0 = now_mono_ms();
        assert_int_equal(echo_call(&tc, g.ch, &req, (int)scaled(200), NULL, NULL),
                         GRPC_CODE_DEADLINE_EXCEEDED);
        int64_t took = now_mono_ms() - t0;
        assert_true(took >= 150 && took < scaled(1500));
        tcall_free(&tc);
    }
    /* The workers are free again (the handler stopped sleeping). */
    tcall tc;
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = "after";
    assert_int_equal(echo_call(&tc, g.ch, &req, 2000, NULL, NULL), GRPC_CODE_OK);
    tcall_free(&tc);
}

static int raw_unary(const char *path, const void *data, size_t len, char **details,
                     int64_t *took_ms)
{
    tcall tc;
    int64_t t0 = now_mono_ms();
    tcall_open(&tc, g.ch, path, 5000, NULL);
    tcall_send_raw(&tc, data, len);
    tcall_close(&tc);
    uint8_t *b = NULL;
    size_t n = 0;
    (void)tcall_recv(&tc, WAIT_MS, &b, &n);
    free(b);
    int code = tcall_status(&tc);
    if (took_ms)
        *took_ms = now_mono_ms() - t0;
    if (details)
        *details = tcall_details(&tc);
    tcall_free(&tc);
    return code;
}

static void unknown_method_is_fast(void **state)
{
    (void)state;
    char *d = NULL;
    int64_t took = 0;
    assert_int_equal(raw_unary("/no.such.Service/Nothing", "", 0, &d, &took),
                     GRPC_CODE_UNIMPLEMENTED);
    assert_true(took < scaled(100));
    assert_non_null(strstr(d, "no.such.Service"));
    free(d);
    assert_int_equal(raw_unary("/herald.test.v1.TestService/Nope", "", 0, &d, &took),
                     GRPC_CODE_UNIMPLEMENTED);
    assert_true(took < scaled(100));
    assert_non_null(strstr(d, "Nope"));
    free(d);
}

static void null_slot_is_unimplemented(void **state)
{
    (void)state;
    char *d = NULL;
    assert_int_equal(raw_unary("/herald.test.v1.TestService/Unbuilt", "", 0, &d, NULL),
                     GRPC_CODE_UNIMPLEMENTED);
    assert_string_equal(d, "herald.test.v1.TestService.Unbuilt is not implemented yet");
    free(d);
}

static void garbage_is_internal(void **state)
{
    (void)state;
    char *d = NULL;
    /* Field 1 (string) claiming 100 bytes with 1 present. */
    static const uint8_t garbage[] = { 0x0a, 0x64, 0x41, 0xff, 0xff };
    assert_int_equal(
        raw_unary("/herald.test.v1.TestService/Echo", garbage, sizeof garbage, &d, NULL),
        GRPC_CODE_INTERNAL);
    assert_string_equal(d, "cannot parse request");
    free(d);
}

static void limits(void **state)
{
    (void)state;
    /* 200 KB decodes past the 64 KiB call arena: RESOURCE_EXHAUSTED. */
    size_t n = 200000;
    char *big = xmalloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    tcall tc;
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = big;
    assert_int_equal(echo_call(&tc, g.ch, &req, 5000, NULL, NULL), GRPC_CODE_RESOURCE_EXHAUSTED);
    char *d = tcall_details(&tc);
    assert_string_equal(d, "request too large to decode");
    free(d);
    tcall_free(&tc);
    /* Past the 1 MiB receive limit core refuses it before we see it. */
    n = (1 << 20) + 10;
    big = xrealloc(big, n + 1);
    memset(big, 'b', n);
    big[n] = '\0';
    req.message = big;
    assert_int_equal(echo_call(&tc, g.ch, &req, 5000, NULL, NULL), GRPC_CODE_RESOURCE_EXHAUSTED);
    tcall_free(&tc);
    free(big);
    /* A large reply is fine (no send limit). */
    Herald__Test__V1__EchoReply *r = NULL;
    req.message = "pad";
    req.reply_bytes = 300000;
    assert_int_equal(echo_call(&tc, g.ch, &req, 5000, NULL, &r), GRPC_CODE_OK);
    assert_int_equal(r->padding.len, 300000);
    herald__test__v1__echo_reply__free_unpacked(r, NULL);
    tcall_free(&tc);
}

static void interceptor_rejects(void **state)
{
    (void)state;
    tcall tc;
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = "health:intercepted=SERVING"; /* would set health if it ran */
    const char *md[] = { "x-deny", "1", NULL };
    assert_int_equal(echo_call(&tc, g.ch, &req, 5000, md, NULL), GRPC_CODE_PERMISSION_DENIED);
    char *d = tcall_details(&tc);
    assert_string_equal(d, "denied by the test interceptor");
    free(d);
    tcall_free(&tc);
    assert_int_equal(health_get(g.h, "intercepted"), HEALTH_SERVICE_UNKNOWN);
}

static void server_stream(void **state)
{
    (void)state;
    Herald__Test__V1__StreamRequest req = HERALD__TEST__V1__STREAM_REQUEST__INIT;
    tcall tc;

    req.count = 5;
    tcall_open(&tc, g.ch, "/herald.test.v1.TestService/ServerStream", 5000, NULL);
    tcall_send(&tc, &req.base);
    tcall_close(&tc);
    for (int i = 0; i < 5; i++) {
        Herald__Test__V1__EchoReply *r = tcall_recv_echo(&tc, WAIT_MS);
        assert_non_null(r);
        char want[8];
        snprintf(want, sizeof want, "%d", i);
        assert_string_equal(r->message, want);
        herald__test__v1__echo_reply__free_unpacked(r, NULL);
    }
    assert_null(tcall_recv_echo(&tc, WAIT_MS));
    assert_int_equal(tcall_status(&tc), GRPC_CODE_OK);
    tcall_free(&tc);

    /* Failing after two messages: both arrive, then ABORTED. */
    req.count = 5;
    req.fail_after = 2;
    req.fail_code = GRPC_CODE_ABORTED;
    tcall_open(&tc, g.ch, "/herald.test.v1.TestService/ServerStream", 5000, NULL);
    tcall_send(&tc, &req.base);
    tcall_close(&tc);
    int got = 0;
    Herald__Test__V1__EchoReply *r;
    while ((r = tcall_recv_echo(&tc, WAIT_MS)) != NULL) {
        got++;
        herald__test__v1__echo_reply__free_unpacked(r, NULL);
    }
    assert_int_equal(got, 2);
    assert_int_equal(tcall_status(&tc), GRPC_CODE_ABORTED);
    tcall_free(&tc);

    /* Paced: messages arrive one by one, not all at the end. */
    req.count = 3;
    req.fail_after = 0;
    req.fail_code = 0;
    req.interval_ms = 150;
    tcall_open(&tc, g.ch, "/herald.test.v1.TestService/ServerStream", 5000, NULL);
    tcall_send(&tc, &req.base);
    tcall_close(&tc);
    int64_t t0 = now_mono_ms();
    r = tcall_recv_echo(&tc, WAIT_MS);
    assert_non_null(r);
    herald__test__v1__echo_reply__free_unpacked(r, NULL);
    int64_t first = now_mono_ms() - t0;
    for (int i = 0; i < 2; i++) {
        r = tcall_recv_echo(&tc, WAIT_MS);
        assert_non_null(r);
        herald__test__v1__echo_reply__free_unpacked(r, NULL);
    }
    int64_t last = now_mono_ms() - t0;
    assert_true(first < scaled(150)); /* not held back by the 150 ms interval */
    assert_true(last - first >= 250);
    assert_null(tcall_recv_echo(&tc, WAIT_MS));
    assert_int_equal(tcall_status(&tc), GRPC_CODE_OK);
    tcall_free(&tc);
}

static void server_stream_client_cancel(void **state)
{
    (void)state;
    Herald__Test__V1__StreamRequest req = HERALD__TEST__V1__STREAM_REQUEST__INIT;
    req.count = 1000;
    req.interval_ms = 20;
    tcall tc;
    tcall_open(&tc, g.ch, "/herald.test.v1.TestService/ServerStream", 0, NULL);
    tcall_send(&tc, &req.base);
    tcall_close(&tc);
    Herald__Test__V1__EchoReply *r = tcall_recv_echo(&tc, WAIT_MS);
    assert_non_null(r);
    herald__test__v1__echo_reply__free_unpacked(r, NULL);
    grpc_call_cancel(tc.call, NULL);
    assert_int_equal(tcall_status(&tc), GRPC_CODE_CANCELLED);
    tcall_free(&tc);
    /* The helper thread notices (send fails) and the call is released. */
    assert_true(testd_wait_idle(g.t, WAIT_MS));
    wait_inflight_zero(g.s);
}

static void client_stream(void **state)
{
    (void)state;
    tcall tc;
    tcall_open(&tc, g.ch, "/herald.test.v1.TestService/Collect", 5000, NULL);
    const char *parts[] = { "ab", "cd", "", "ef" };
    for (size_t i = 0; i < 4; i++) {
        Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
        req.message = (char *)parts[i];
        assert_true(tcall_send(&tc, &req.base));
    }
    tcall_close(&tc);
    Herald__Test__V1__EchoReply *r = tcall_recv_echo(&tc, WAIT_MS);
    assert_non_null(r);
    assert_string_equal(r->message, "abcdef");
    herald__test__v1__echo_reply__free_unpacked(r, NULL);
    assert_null(tcall_recv_echo(&tc, WAIT_MS));
    assert_int_equal(tcall_status(&tc), GRPC_CODE_OK);
    tcall_free(&tc);

    /* A client stream cancelled half way is cleaned up. */
    tcall_open(&tc, g.ch, "/herald.test.v1.TestService/Collect", 5000, NULL);
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = "x";
    assert_true(tcall_send(&tc, &req.base));
    grpc_call_cancel(tc.call, NULL);
    assert_int_equal(tcall_status(&tc), GRPC_CODE_CANCELLED);
    tcall_free(&tc);
    wait_inflight_zero(g.s);
}

static void bidi(void **state)
{
    (void)state;
    tcall tc;
    tcall_open(&tc, g.ch, "/herald.test.v1.TestService/Chat", 5000, NULL);
    /* Strictly interleaved: each reply arrives before the next send. */
    const char *words[] = { "one", "two", "three" };
    for (size_t i = 0; i < 3; i++) {
        Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
        req.message = (char *)words[i];
        assert_true(tcall_send(&tc, &req.base));
        Herald__Test__V1__EchoReply *r = tcall_recv_echo(&tc, WAIT_MS);
        assert_non_null(r);
        assert_string_equal(r->message, words[i]);
        herald__test__v1__echo_reply__free_unpacked(r, NULL);
    }
    tcall_close(&tc);
    assert_null(tcall_recv_echo(&tc, WAIT_MS));
    assert_int_equal(tcall_status(&tc), GRPC_CODE_OK);
    tcall_free(&tc);

    /* A failure from the handler ends the stream with its code. */
    tcall_open(&tc, g.ch, "/herald.test.v1.TestService/Chat", 5000, NULL);
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.fail_code = GRPC_CODE_FAILED_PRECONDITION;
    req.fail_message = "no";
    tcall_send(&tc, &req.base);
    assert_null(tcall_recv_echo(&tc, WAIT_MS));
    assert_int_equal(tcall_status(&tc), GRPC_CODE_FAILED_PRECONDITION);
    tcall_free(&tc);
}

static void detached_reply(void **state)
{
    (void)state;
    tcall tc;
    Herald__Test__V1__EchoReply *r = NULL;
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = "later";
    req.sleep_ms = 100;
    req.detach = true;
    req.trailer_key = "x-detached";
    req.trailer_value = "yes";
    int64_t t0 = now_mono_ms();
    assert_int_equal(echo_call(&tc, g.ch, &req, 5000, NULL, &r), GRPC_CODE_OK);
    assert_true(now_mono_ms() - t0 >= 90);
    assert_string_equal(r->message, "later");
    assert_true(trailer_is(&tc, "x-detached", "yes"));
    herald__test__v1__echo_reply__free_unpacked(r, NULL);
    tcall_free(&tc);

    /* A detached failure. */
    req.fail_code = GRPC_CODE_NOT_FOUND;
    req.fail_message = "gone";
    assert_int_equal(echo_call(&tc, g.ch, &req, 5000, NULL, NULL), GRPC_CODE_NOT_FOUND);
    tcall_free(&tc);
}

/* rpc_call_reply_raw: the bytes go out as the reply, inline and detached,
 * with the trailers of a normal reply (stats_add_up counts them too). */
static void raw_reply(void **state)
{
    (void)state;
    for (int detach = 0; detach < 2; detach++) {
        tcall tc;
        Herald__Test__V1__EchoReply *r = NULL;
        Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
        req.message = "raw:bytes";
        req.detach = detach != 0;
        req.reply_bytes = 3000;
        const char *md[] = { "x-request-id", "req-raw-1", NULL };
        assert_int_equal(echo_call(&tc, g.ch, &req, 5000, md, &r), GRPC_CODE_OK);
        assert_non_null(r);
        assert_string_equal(r->message, "raw:bytes");
        assert_string_equal(r->request_id, "req-raw-1");
        assert_int_equal(r->padding.len, 3000);
        assert_true(trailer_is(&tc, "x-request-id", "req-raw-1"));
        herald__test__v1__echo_reply__free_unpacked(r, NULL);
        tcall_free(&tc);
    }
}

static void health_check_names(void **state)
{
    (void)state;
    int st = 0;
    assert_int_equal(health_check(g.ch, "", &st), GRPC_CODE_OK);
    assert_int_equal(st, HEALTH_SERVING);
    assert_int_equal(health_check(g.ch, "readiness", &st), GRPC_CODE_OK);
    assert_int_equal(st, HEALTH_SERVING);
    health_set(g.h, "readiness", HEALTH_NOT_SERVING);
    assert_int_equal(health_check(g.ch, "readiness", &st), GRPC_CODE_OK);
    assert_int_equal(st, HEALTH_NOT_SERVING);
    health_set(g.h, "readiness", HEALTH_SERVING);
    assert_int_equal(health_check(g.ch, "no-such-service", &st), GRPC_CODE_NOT_FOUND);
    assert_int_equal(st, -1);
}

static void health_watch_pushes(void **state)
{
    (void)state;
    tcall tc;
    watch_open(&tc, g.ch, "svc-watch");
    /* Unknown: SERVICE_UNKNOWN, and the stream stays open. */
    assert_int_equal(watch_next(&tc, WAIT_MS), HEALTH_SERVICE_UNKNOWN);
    assert_int_equal(watch_next(&tc, 300), -1);
    /* The name appears (through a handler, as rpc_testd's tests do it). */
    tcall ec;
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = "health:svc-watch=SERVING";
    assert_int_equal(echo_call(&ec, g.ch, &req, 5000, NULL, NULL), GRPC_CODE_OK);
    tcall_free(&ec);
    assert_int_equal(watch_next(&tc, WAIT_MS), HEALTH_SERVING);
    /* A repeat is dropped; the change after it arrives. */
    health_set(g.h, "svc-watch", HEALTH_SERVING);
    health_set(g.h, "svc-watch", HEALTH_NOT_SERVING);
    assert_int_equal(watch_next(&tc, WAIT_MS), HEALTH_NOT_SERVING);
    health_set(g.h, "svc-watch", HEALTH_SERVING);
    assert_int_equal(watch_next(&tc, WAIT_MS), HEALTH_SERVING);
    assert_int_equal(watch_next(&tc, 100), -1);

    /* A second watcher of a known name gets its state at once. */
    tcall tc2;
    watch_open(&tc2, g.ch, "");
    assert_int_equal(watch_next(&tc2, WAIT_MS), HEALTH_SERVING);

    /* Client cancel: the watcher goes away on the server. */
    grpc_call_cancel(tc.call, NULL);
    assert_int_equal(tcall_status(&tc), GRPC_CODE_CANCELLED);
    tcall_free(&tc);
    grpc_call_cancel(tc2.call, NULL);
    assert_int_equal(tcall_status(&tc2), GRPC_CODE_CANCELLED);
    tcall_free(&tc2);
    wait_inflight_zero(g.s);
    health_set(g.h, "svc-watch", HEALTH_NOT_SERVING); /* nobody to push to: no crash */
}

/* 1,000+ mixed calls on one channel (the valgrind run's bulk). */
static void mixed_calls(void **state)
{
    (void)state;
    int codes[GRPC_CODE_COUNT] = { 0 };
    for (int i = 0; i < 200; i++) {
        tcall tc;
        Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
        char msg[32];
        snprintf(msg, sizeof msg, "m%d", i);
        req.message = msg;
        const char *md[] = { "x-test", "v", NULL };
        Herald__Test__V1__EchoReply *r = NULL;
        codes[echo_call(&tc, g.ch, &req, 5000, md, &r)]++;
        assert_non_null(r);
        assert_string_equal(r->message, msg);
        herald__test__v1__echo_reply__free_unpacked(r, NULL);
        tcall_free(&tc);

        req.fail_code = i % 2 ? GRPC_CODE_NOT_FOUND : GRPC_CODE_INVALID_ARGUMENT;
        req.fail_message = "no";
        codes[echo_call(&tc, g.ch, &req, 5000, NULL, NULL)]++;
        tcall_free(&tc);

        int st = 0;
        codes[health_check(g.ch, i % 3 ? "readiness" : "unknown-name", &st)]++;

        Herald__Test__V1__StreamRequest sreq = HERALD__TEST__V1__STREAM_REQUEST__INIT;
        sreq.count = 2;
        tcall_open(&tc, g.ch, "/herald.test.v1.TestService/ServerStream", 5000, NULL);
        tcall_send(&tc, &sreq.base);
        tcall_close(&tc);
        while ((r = tcall_recv_echo(&tc, WAIT_MS)) != NULL)
            herald__test__v1__echo_reply__free_unpacked(r, NULL);
        codes[tcall_status(&tc)]++;
        tcall_free(&tc);

        tcall_open(&tc, g.ch, "/herald.test.v1.TestService/Chat", 5000, NULL);
        Herald__Test__V1__EchoRequest creq = HERALD__TEST__V1__ECHO_REQUEST__INIT;
        creq.message = "c";
        tcall_send(&tc, &creq.base);
        tcall_close(&tc);
        while ((r = tcall_recv_echo(&tc, WAIT_MS)) != NULL)
            herald__test__v1__echo_reply__free_unpacked(r, NULL);
        codes[tcall_status(&tc)]++;
        tcall_free(&tc);

        if (i % 20 == 0) {
            static const uint8_t garbage[] = { 0x0a, 0x64, 0x41 };
            codes[raw_unary("/herald.test.v1.TestService/Echo", garbage, sizeof garbage, NULL,
                            NULL)]++;
            codes[raw_unary("/no.Such/Method", "", 0, NULL, NULL)]++;
            req.fail_code = 0;
            req.detach = true;
            codes[echo_call(&tc, g.ch, &req, 5000, NULL, NULL)]++;
            tcall_free(&tc);
        }
    }
    /* Echo, stream and chat each round, 133 known-name checks, 10 detached. */
    assert_int_equal(codes[GRPC_CODE_OK], 200 * 3 + 133 + 10);
    assert_int_equal(codes[GRPC_CODE_INVALID_ARGUMENT], 100);
    assert_int_equal(codes[GRPC_CODE_NOT_FOUND], 100 + 67);
    assert_int_equal(codes[GRPC_CODE_INTERNAL], 10);
    assert_int_equal(codes[GRPC_CODE_UNIMPLEMENTED], 10);
    wait_inflight_zero(g.s);
}

static uint64_t sum_handled(const rpc_method_stats *st)
{
    uint64_t n = 0;
    for (int i = 0; i < GRPC_CODE_COUNT; i++)
        n += st->handled[i];
    return n;
}

typedef struct stats_seen {
    int methods;
    bool echo;
    bool unbuilt;
    bool chat;
    bool check;
} stats_seen;

static void stats_cb(const rpc_method_stats *st, void *user)
{
    stats_seen *s = user;
    s->methods++;
    uint64_t buckets = 0;
    for (int i = 0; i <= RPC_LATENCY_BUCKETS; i++)
        buckets += st->bucket[i];
    assert_true(buckets == sum_handled(st));     /* one observation per handled call */
    assert_true(st->started == sum_handled(st)); /* nothing in flight now */
    if (strcmp(st->service, "herald.test.v1.TestService") == 0 && strcmp(st->method, "Echo") == 0) {
        s->echo = true;
        assert_int_equal(st->kind, RPC_UNARY);
        assert_true(st->handled[GRPC_CODE_OK] >= 5);
        assert_true(st->handled[GRPC_CODE_INVALID_ARGUMENT] >= 1);
        /* The two calls past their deadline: the server reads the deadline
         * from grpc-timeout when the call arrives, so on a slow host (valgrind)
         * the client's cancel can come well before the server's own deadline
         * and is then counted as CANCELLED. */
        assert_true(st->handled[GRPC_CODE_DEADLINE_EXCEEDED] + st->handled[GRPC_CODE_CANCELLED] >= 2);
        assert_true(st->handled[GRPC_CODE_RESOURCE_EXHAUSTED] >= 1);
        assert_true(st->msg_sent >= st->handled[GRPC_CODE_OK]);
        assert_true(st->latency_sum_s > 0.1); /* the detached 100 ms reply at least */
    }
    if (strcmp(st->method, "Unbuilt") == 0) {
        s->unbuilt = true;
        assert_true(st->handled[GRPC_CODE_UNIMPLEMENTED] >= 1);
    }
    if (strcmp(st->method, "Chat") == 0) {
        s->chat = true;
        assert_int_equal(st->kind, RPC_BIDI_STREAM);
        assert_true(st->msg_received >= 3);
        assert_true(st->msg_sent >= 3);
    }
    if (strcmp(st->service, "grpc.health.v1.Health") == 0 && strcmp(st->method, "Check") == 0) {
        s->check = true;
        assert_true(st->handled[GRPC_CODE_NOT_FOUND] >= 1);
    }
}

static void stats_add_up(void **state)
{
    (void)state;
    wait_inflight_zero(g.s);
    stats_seen seen = { 0 };
    rpc_server_stats(g.s, stats_cb, &seen);
    assert_int_equal(seen.methods, 7); /* 5 of TestService, Check, Watch */
    assert_true(seen.echo && seen.unbuilt && seen.chat && seen.check);
    assert_int_equal(rpc_server_busy_workers(g.s), 0);
}

/* Graceful shutdown: a separate server with 1 worker and calls queued. */
typedef struct inflight_call {
    tcall tc;
    int code;
    char *message;
} inflight_call;

typedef struct shutdown_arg {
    rpc_server *s;
    int64_t grace_ms;
    int64_t took_ms;
} shutdown_arg;

static void *shutdown_thread(void *p)
{
    shutdown_arg *a = p;
    int64_t t0 = now_mono_ms();
    rpc_server_shutdown(a->s, a->grace_ms);
    a->took_ms = now_mono_ms() - t0;
    return NULL;
}

static void start_echo_async(tcall *tc, grpc_channel *ch, const char *msg, int sleep_ms)
{
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = (char *)msg;
    req.sleep_ms = sleep_ms;
    tcall_open(tc, ch, "/herald.test.v1.TestService/Echo", WAIT_MS, NULL);
    tcall_send(tc, &req.base);
    tcall_close(tc);
}

static void graceful_shutdown(void **state)
{
    (void)state;
    tserver b;
    tserver_start(&b, 1, 1 << 20);
    tcall w;
    watch_open(&w, b.ch, "readiness");
    assert_int_equal(watch_next(&w, WAIT_MS), HEALTH_SERVING);

    /* Three 300 ms calls on one worker: one runs, two wait in core. */
    enum { N = 3 };
    tcall calls[N];
    char name[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(name[i], sizeof name[i], "c%d", i);
        start_echo_async(&calls[i], b.ch, name[i], 300);
    }
    struct timespec pause = { 0, 100 * 1000 * 1000 };
    nanosleep(&pause, NULL);

    /* SIGTERM's sequence: NOT_SERVING pushed, watchers ended, shutdown. */
    health_begin_shutdown(b.h);
    assert_int_equal(watch_next(&w, WAIT_MS), HEALTH_NOT_SERVING);
    health_finish_watchers(b.h);
    assert_null(tcall_recv_echo(&w, WAIT_MS));
    assert_int_equal(tcall_status(&w), GRPC_CODE_UNAVAILABLE);
    tcall_free(&w);

    shutdown_arg a = { b.s, scaled(5000), 0 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, shutdown_thread, &a), 0);
    /* Once the channel has seen the server's GOAWAY it leaves READY. */
    int64_t until = now_mono_ms() + scaled(5000);
    while (grpc_channel_check_connectivity_state(b.ch, 0) == GRPC_CHANNEL_READY &&
           now_mono_ms() < until)
        nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
    assert_int_not_equal(grpc_channel_check_connectivity_state(b.ch, 0), GRPC_CHANNEL_READY);

    /* New calls are refused... */
    tcall late;
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = "late";
    assert_int_equal(echo_call(&late, b.ch, &req, 2000, NULL, NULL), GRPC_CODE_UNAVAILABLE);
    tcall_free(&late);

    /* ...and every in-flight one, queued ones too, finishes OK. */
    for (int i = 0; i < N; i++) {
        Herald__Test__V1__EchoReply *r = tcall_recv_echo(&calls[i], WAIT_MS);
        assert_int_equal(tcall_status(&calls[i]), GRPC_CODE_OK);
        assert_non_null(r);
        assert_string_equal(r->message, name[i]);
        herald__test__v1__echo_reply__free_unpacked(r, NULL);
        tcall_free(&calls[i]);
    }
    pthread_join(th, NULL);
    assert_true(a.took_ms < scaled(3000));
    assert_int_equal(rpc_server_inflight(b.s), 0);
    tserver_stop(&b, 0);
}

static void shutdown_grace_expires(void **state)
{
    (void)state;
    tserver b;
    tserver_start(&b, 1, 1 << 20);
    tcall slow;
    start_echo_async(&slow, b.ch, "slow", 8000);
    struct timespec pause = { 0, 100 * 1000 * 1000 };
    nanosleep(&pause, NULL);
    int64_t t0 = now_mono_ms();
    rpc_server_shutdown(b.s, 300);
    int64_t took = now_mono_ms() - t0;
    assert_true(took >= 250 && took < scaled(3000));
    /* The grace is over: the call was cancelled with UNAVAILABLE. */
    (void)tcall_recv_echo(&slow, WAIT_MS);
    assert_int_equal(tcall_status(&slow), GRPC_CODE_UNAVAILABLE);
    tcall_free(&slow);
    tserver_stop(&b, 0);
}

static void second_server_cannot_share_port(void **state)
{
    (void)state;
    char *err = NULL;
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", g.port);
    testd *t = testd_new(NULL);
    rpc_options o;
    rpc_options_init(&o);
    o.listen_addr = addr;
    o.descriptors = testd_descriptors(t);
    rpc_server *s = rpc_server_new(&o, &err);
    assert_non_null(s);
    assert_int_equal(testd_register(t, s, &err), ST_OK);
    /* SO_REUSEPORT is off: binding the shared server's port fails (P9). */
    assert_int_equal(rpc_server_start(s, &err), ST_INVALID);
    assert_non_null(err);
    assert_non_null(strstr(err, "cannot listen"));
    free(err);
    rpc_server_free(s);
    testd_free(t);
}

static void ignore_message(rpc_call *call, const uint8_t *data, size_t len, void *user)
{
    (void)call;
    (void)data;
    (void)len;
    (void)user;
}

static void registration_errors(void **state)
{
    (void)state;
    char *err = NULL;
    testd *t = testd_new(NULL);
    health *h = health_new();
    rpc_options o;
    rpc_options_init(&o);
    o.listen_addr = "127.0.0.1:0";
    /* No descriptor set: kinds unknown, refused. */
    rpc_server *s = rpc_server_new(&o, &err);
    assert_non_null(s);
    assert_int_equal(rpc_server_add_service(s, health_service(h), RPC_POOL_PRIORITY, &err),
                     ST_INVALID);
    free(err);
    rpc_server_free(s);
    /* Twice the same service; a stream handler on a unary method. */
    o.descriptors = testd_descriptors(t);
    s = rpc_server_new(&o, &err);
    assert_int_equal(rpc_server_add_service(s, health_service(h), RPC_POOL_PRIORITY, &err), ST_OK);
    assert_int_equal(rpc_server_add_service(s, health_service(h), RPC_POOL_PRIORITY, &err),
                     ST_INVALID);
    assert_non_null(strstr(err, "already registered"));
    free(err);
    rpc_stream_handler sh = { .on_message = ignore_message };
    assert_int_equal(
        rpc_server_add_stream(s, "/herald.test.v1.TestService/Echo", &sh, RPC_POOL_WORKERS, &err),
        ST_INVALID);
    free(err);
    /* A method the descriptor set does not have. */
    assert_int_equal(rpc_server_add_stream(s, "/nope.Svc/M", &sh, RPC_POOL_WORKERS, &err),
                     ST_INVALID);
    free(err);
    rpc_server_free(s);
    /* Bad options. */
    o.workers = 0;
    assert_null(rpc_server_new(&o, &err));
    assert_non_null(strstr(err, "workers"));
    free(err);
    health_free(h);
    testd_free(t);
}

static char *slurp(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    strbuf b = { 0 };
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        strbuf_append(&b, buf, n);
    fclose(f);
    return strbuf_take(&b);
}

/* A throwaway CA, a server certificate for 127.0.0.1/localhost and a client
 * certificate, made with the openssl tool in a temporary directory. */
static bool tls_files_make(tls_files *t)
{
    char dir[] = "/tmp/herald-rpc-tls-XXXXXX";
    memset(t, 0, sizeof *t);
    if (!mkdtemp(dir))
        return false;
    char *cmd =
        xasprintf("cd %s && ( "
                  "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > srv.ext && "
                  "printf 'extendedKeyUsage=clientAuth\n' > cli.ext && "
                  "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                  "-keyout ca.key -out ca.pem -days 2 -subj /CN=herald-test-ca && "
                  "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                  "-keyout srv.key -out srv.csr -subj /CN=localhost && "
                  "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                  "-out srv.pem -days 2 -extfile srv.ext && "
                  "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                  "-keyout cli.key -out cli.csr -subj /CN=herald-test-client && "
                  "openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                  "-out cli.pem -days 2 -extfile cli.ext ) >/dev/null 2>&1",
                  dir);
    bool ok = system(cmd) == 0;
    free(cmd);
    if (ok) {
        t->ca = slurp(dir, "ca.pem");
        t->srv_cert = slurp(dir, "srv.pem");
        t->srv_key = slurp(dir, "srv.key");
        t->cli_cert = slurp(dir, "cli.pem");
        t->cli_key = slurp(dir, "cli.key");
    }
    const char *files[] = { "ca.key",  "ca.pem",  "ca.srl",  "srv.ext", "cli.ext", "srv.key",
                            "srv.csr", "srv.pem", "cli.key", "cli.csr", "cli.pem" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    return ok;
}

static void tls_files_free(tls_files *t)
{
    free(t->ca);
    free(t->srv_cert);
    free(t->srv_key);
    free(t->cli_cert);
    free(t->cli_key);
}

/* An Echo over a fresh channel with the given credentials. */
static int echo_with_creds(int port, grpc_channel_credentials *creds)
{
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    grpc_channel *ch = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
    tcall tc;
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = "tls";
    int code = echo_call(&tc, ch, &req, (int)scaled(3000), NULL, NULL);
    tcall_free(&tc);
    grpc_channel_destroy(ch);
    return code;
}

static void tls_and_mtls(void **state)
{
    (void)state;
    tls_files t;
    if (!tls_files_make(&t)) {
        tls_files_free(&t);
        fail_msg("could not make test certificates with openssl");
    }
    /* TLS: a client trusting the CA gets through; plaintext does not. */
    tserver b;
    tserver_start_tls(&b, 1, 1 << 20, &t, false);
    tcall tc;
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = "over tls";
    Herald__Test__V1__EchoReply *r = NULL;
    assert_int_equal(echo_call(&tc, b.ch, &req, (int)scaled(5000), NULL, &r), GRPC_CODE_OK);
    assert_string_equal(r->message, "over tls");
    herald__test__v1__echo_reply__free_unpacked(r, NULL);
    tcall_free(&tc);
    assert_int_equal(echo_with_creds(b.port, grpc_insecure_credentials_create()),
                     GRPC_CODE_UNAVAILABLE);
    tserver_stop(&b, 0);

    /* mTLS: the client certificate is required. */
    tserver_start_tls(&b, 1, 1 << 20, &t, true);
    assert_int_equal(echo_call(&tc, b.ch, &req, (int)scaled(5000), NULL, NULL), GRPC_CODE_OK);
    tcall_free(&tc);
    assert_int_equal(echo_with_creds(b.port, grpc_ssl_credentials_create(t.ca, NULL, NULL, NULL)),
                     GRPC_CODE_UNAVAILABLE);
    tserver_stop(&b, 0);
    tls_files_free(&t);
}

static int group_setup(void **state)
{
    (void)state;
    atomic_store(&log_level, LOG_OFF); /* keep the test output readable */
    rpc_global_init();
    tserver_start(&g, 2, 64 << 10);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tserver_stop(&g, 1000);
    rpc_global_fini();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unary_ok),
        cmocka_unit_test(request_id_generated_and_no_deadline),
        cmocka_unit_test(error_with_details_and_trailer),
        cmocka_unit_test(deadline_shorter_than_handler),
        cmocka_unit_test(unknown_method_is_fast),
        cmocka_unit_test(null_slot_is_unimplemented),
        cmocka_unit_test(garbage_is_internal),
        cmocka_unit_test(limits),
        cmocka_unit_test(interceptor_rejects),
        cmocka_unit_test(server_stream),
        cmocka_unit_test(server_stream_client_cancel),
        cmocka_unit_test(client_stream),
        cmocka_unit_test(bidi),
        cmocka_unit_test(detached_reply),
        cmocka_unit_test(raw_reply),
        cmocka_unit_test(health_check_names),
        cmocka_unit_test(health_watch_pushes),
        cmocka_unit_test(stats_add_up),
        cmocka_unit_test(mixed_calls),
        cmocka_unit_test(graceful_shutdown),
        cmocka_unit_test(shutdown_grace_expires),
        cmocka_unit_test(second_server_cannot_share_port),
        cmocka_unit_test(tls_and_mtls),
        cmocka_unit_test(registration_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
