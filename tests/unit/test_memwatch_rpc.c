/* test_memwatch_rpc.c - the memory manager end to end through the rpc
 * interceptor, on loopback: the test service and health on 127.0.0.1, an
 * interceptor that calls memwatch_intercept, and the limit set below this
 * process's real RSS. An expensive method (Echo, marked so in the manager's
 * table) gets RESOURCE_EXHAUSTED with RetryInfo and grpc-retry-pushback-ms,
 * while a cheap one (ServerStream) and Health/Check still answer; the
 * refusals appear in the access counters and in /metrics' text. Once the
 * RSS (scripted) falls back under the limit, Echo works again. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "google/rpc/error_details.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "health.h"
#include "herald/test/v1/test.pb-c.h"
#include "herald_client.h"
#include "log.h"
#include "memwatch.h"
#include "metrics.h"
#include "procstat.h"
#include "rpc.h"
#include "rpc_testd.h"
#include "util.h"

#define ECHO_PATH "/herald.test.v1.TestService/Echo"
#define STREAM_PATH "/herald.test.v1.TestService/ServerStream"
#define CHECK_PATH "/grpc.health.v1.Health/Check"

/* < 0: the real RSS; else this many bytes. */
static _Atomic int64_t scripted_rss = -1;

static int64_t read_rss(void *user)
{
    (void)user;
    int64_t v = atomic_load(&scripted_rss);
    return v >= 0 ? v : procstat_rss_bytes();
}

static status mem_interceptor(rpc_call *call, void *user)
{
    return memwatch_intercept(user, call);
}

static bool count_msgs(const ProtobufCMessage *msg, void *user)
{
    (void)msg;
    (*(int *)user)++;
    return true;
}

static int call_echo(herald_channel *ch, herald_status *st)
{
    Herald__Test__V1__EchoRequest req = HERALD__TEST__V1__ECHO_REQUEST__INIT;
    req.message = "expensive";
    ProtobufCMessage *resp = NULL;
    herald_call_options o = { .timeout_ms = 5000 };
    int code = herald_call_unary(ch, ECHO_PATH, &req.base,
                                 &herald__test__v1__echo_reply__descriptor, &o, &resp, st);
    if (resp != NULL)
        protobuf_c_message_free_unpacked(resp, NULL);
    return code;
}

static void over_the_limit_refuses_only_expensive_calls(void **state)
{
    (void)state;
    char *err = NULL;
    static const char *const expensive[] = { ECHO_PATH, NULL };
    int64_t rss_now = procstat_rss_bytes();
    assert_true(rss_now > 0);

    memwatch_options mo;
    memwatch_options_init(&mo);
    mo.limit_bytes = rss_now / 2; /* under what this process uses now */
    mo.retry_ms = 1500;
    mo.rss = read_rss;
    mo.expensive = expensive;
    memwatch *mw = memwatch_new(&mo);

    health *h = health_new();
    testd *t = testd_new(h);
    rpc_options o;
    rpc_options_init(&o);
    o.listen_addr = "127.0.0.1:0";
    o.workers = 2;
    o.descriptors = testd_descriptors(t);
    o.interceptor = mem_interceptor;
    o.user = mw;
    o.access_log = false;
    rpc_server *s = rpc_server_new(&o, &err);
    assert_non_null(s);
    assert_int_equal(rpc_server_add_service(s, health_service(h), RPC_POOL_PRIORITY, &err), ST_OK);
    assert_int_equal(testd_register(t, s, &err), ST_OK);
    assert_int_equal(rpc_server_start(s, &err), ST_OK);
    health_set(h, "", HEALTH_SERVING);

    herald_client_init();
    herald_channel_options co;
    herald_channel_options_init(&co);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", rpc_server_port(s));
    co.target = target;
    herald_channel *ch = NULL;
    assert_true(herald_channel_open(&co, &ch, &err));
    herald_status st;
    herald_status_init(&st);

    /* Under no pressure yet (no sample taken): Echo works. */
    assert_int_equal(call_echo(ch, &st), 0);

    /* One sample of the real RSS: over the limit. */
    assert_int_equal(memwatch_tick(mw), MEMWATCH_HARD);

    /* The expensive method: RESOURCE_EXHAUSTED, pushback and RetryInfo. */
    assert_int_equal(call_echo(ch, &st), 8);
    assert_non_null(strstr(st.message, "memory"));
    const char *pushback = herald_status_metadata(&st, "grpc-retry-pushback-ms", NULL);
    assert_non_null(pushback);
    assert_string_equal(pushback, "1500");
    bool has_retry_info = false;
    for (size_t i = 0; i < st.n_details; i++) {
        const char *slash = strrchr(st.details[i].type_url, '/');
        if (slash == NULL || strcmp(slash + 1, "google.rpc.RetryInfo") != 0)
            continue;
        Google__Rpc__RetryInfo *ri =
            google__rpc__retry_info__unpack(NULL, st.details[i].value_len, st.details[i].value);
        assert_non_null(ri);
        assert_non_null(ri->retry_delay);
        assert_int_equal(ri->retry_delay->seconds, 1);
        assert_int_equal(ri->retry_delay->nanos, 500000000);
        google__rpc__retry_info__free_unpacked(ri, NULL);
        has_retry_info = true;
    }
    assert_true(has_retry_info);

    /* A cheap method keeps working: a 3-message stream. */
    Herald__Test__V1__StreamRequest sreq = HERALD__TEST__V1__STREAM_REQUEST__INIT;
    sreq.count = 3;
    int got = 0;
    herald_call_options so = { .timeout_ms = 5000 };
    assert_int_equal(herald_call_server_stream(ch, STREAM_PATH, &sreq.base,
                                               &herald__test__v1__echo_reply__descriptor, &so,
                                               count_msgs, &got, &st),
                     0);
    assert_int_equal(got, 3);

    /* Health keeps answering SERVING. */
    Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    hreq.service = "";
    ProtobufCMessage *hresp = NULL;
    assert_int_equal(herald_call_unary(ch, CHECK_PATH, &hreq.base,
                                       &grpc__health__v1__health_check_response__descriptor, &so,
                                       &hresp, &st),
                     0);
    assert_int_equal(((Grpc__Health__V1__HealthCheckResponse *)hresp)->status,
                     GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    protobuf_c_message_free_unpacked(hresp, NULL);

    /* Several more refusals, all counted, none handled by the handler. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(call_echo(ch, &st), 8);
    memwatch_stats ms;
    memwatch_stats_get(mw, &ms);
    assert_int_equal(ms.rejected_calls, 5);
    assert_int_equal(ms.state, MEMWATCH_HARD);

    /* The exposition shows the state and the refusals per code. A call is
     * counted when the server frees it, which can be a moment after the
     * client has its status: wait (bounded) until none is in flight. */
    for (int64_t until = now_mono_ms() + 5000;
         rpc_server_inflight(s) > 0 && now_mono_ms() < until;)
        (void)usleep(5000);
    assert_int_equal(rpc_server_inflight(s), 0);
    metrics_options mopt;
    metrics_options_init(&mopt);
    mopt.rpc = s;
    mopt.health = h;
    mopt.mem = mw;
    metrics *m = metrics_new(&mopt);
    char *text = metrics_render(m, NULL);
    assert_non_null(strstr(text, "\nherald_memory_state 2\n"));
    assert_non_null(strstr(text, "\nherald_memory_rejected_calls_total 5\n"));
    assert_non_null(strstr(text, "grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\""
                                 "herald.test.v1.TestService\",grpc_method=\"Echo\",grpc_code=\""
                                 "ResourceExhausted\"} 5\n"));
    assert_non_null(strstr(text, "grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\""
                                 "herald.test.v1.TestService\",grpc_method=\"Echo\",grpc_code=\""
                                 "OK\"} 1\n"));
    free(text);
    metrics_free(m);

    /* Memory falls back (scripted) under the soft band: Echo works again. */
    atomic_store(&scripted_rss, mo.limit_bytes / 4);
    assert_int_equal(memwatch_tick(mw), MEMWATCH_OK);
    assert_int_equal(call_echo(ch, &st), 0);

    herald_status_fini(&st);
    herald_channel_close(ch);
    health_begin_shutdown(h);
    health_finish_watchers(h);
    rpc_server_shutdown(s, 1000);
    assert_true(testd_wait_idle(t, 10000));
    rpc_server_free(s);
    testd_free(t);
    health_free(h);
    memwatch_free(mw);
    herald_client_shutdown();
}

int main(void)
{
    atomic_store(&log_level, LOG_ERROR);
    rpc_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(over_the_limit_refuses_only_expensive_calls),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rpc_global_fini();
    return rc;
}
