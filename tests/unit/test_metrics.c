/* test_metrics.c - the Prometheus exposition writer and the metric families
 * of metrics.c, fed with hand-made statistics (no server, no network):
 * escaping, value formatting, refused names and duplicate families,
 * histogram cumulation, every method x code pre-initialised, the upstream
 * code labels, collectors, and `promtool check metrics` clean over every
 * family (promtool comes from Debian's `prometheus` package; the test fails
 * without it). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "metrics.h"
#include "util.h"

/* ---- helpers ---- */

static size_t count_substr(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Lines of text starting with prefix. */
static size_t count_lines_with_prefix(const char *text, const char *prefix)
{
    size_t n = 0;
    size_t pl = strlen(prefix);
    for (const char *p = text; *p != '\0';) {
        if (strncmp(p, prefix, pl) == 0)
            n++;
        const char *nl = strchr(p, '\n');
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return n;
}

/* Runs `promtool check metrics` over text; returns its exit status and puts
 * what it printed in out (caller frees). Fails the test when promtool is not
 * installed. */
static int promtool_check(const char *text, char **out)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0)
        fail_msg("promtool not found: install Debian's 'prometheus' package (apt-get install "
                 "prometheus); scripts/deps lists it");
    char in_path[] = "/tmp/test_metrics_in_XXXXXX";
    char out_path[] = "/tmp/test_metrics_out_XXXXXX";
    int in_fd = mkstemp(in_path);
    int out_fd = mkstemp(out_path);
    assert_true(in_fd >= 0 && out_fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(in_fd, text, len), (ssize_t)len);
    close(in_fd);
    close(out_fd);
    char *cmd = xasprintf("promtool check metrics < %s > %s 2>&1", in_path, out_path);
    int rc = system(cmd);
    free(cmd);
    FILE *f = fopen(out_path, "r");
    strbuf b = { 0 };
    char chunk[1024];
    size_t n;
    while (f != NULL && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        strbuf_append(&b, chunk, n);
    if (f != NULL)
        fclose(f);
    unlink(in_path);
    unlink(out_path);
    *out = strbuf_take(&b);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void assert_promtool_clean(const char *text)
{
    char *out = NULL;
    int rc = promtool_check(text, &out);
    if (rc != 0 || out[0] != '\0') {
        fprintf(stderr, "promtool (exit %d):\n%s\n--- text ---\n%s\n", rc, out, text);
        free(out);
        fail_msg("promtool check metrics is not clean");
    }
    free(out);
}

/* ---- the writer ---- */

static void label_values_are_escaped(void **state)
{
    (void)state;
    metrics_writer *w = metrics_writer_new();
    assert_true(metrics_family(w, "t_total", METRICS_COUNTER, "help"));
    metrics_label l1[] = { { "a", "q\"b\\s\nn" } };
    metrics_sample_u64(w, l1, 1, 1);
    metrics_label l2[] = { { "a", "caf\xc3\xa9" } }; /* valid UTF-8 stays */
    metrics_sample_u64(w, l2, 1, 2);
    metrics_label l3[] = { { "a", "bad\xff\xfe" } }; /* invalid bytes become '?' */
    metrics_sample_u64(w, l3, 1, 3);
    metrics_label l4[] = { { "a", "" }, { "b", "x" } };
    metrics_sample_u64(w, l4, 2, 4);
    const char *t = metrics_writer_text(w, NULL);
    assert_non_null(strstr(t, "t_total{a=\"q\\\"b\\\\s\\nn\"} 1\n"));
    assert_non_null(strstr(t, "t_total{a=\"caf\xc3\xa9\"} 2\n"));
    assert_non_null(strstr(t, "t_total{a=\"bad??\"} 3\n"));
    assert_non_null(strstr(t, "t_total{a=\"\",b=\"x\"} 4\n"));
    assert_int_equal(metrics_writer_errors(w), 0);
    assert_promtool_clean(t);
    metrics_writer_free(w);
}

static void help_is_escaped(void **state)
{
    (void)state;
    metrics_writer *w = metrics_writer_new();
    assert_true(metrics_family(w, "g", METRICS_GAUGE, "back\\slash and\nnewline \"quoted\""));
    metrics_sample(w, NULL, 0, 1);
    const char *t = metrics_writer_text(w, NULL);
    assert_string_equal(t, "# HELP g back\\\\slash and\\nnewline \"quoted\"\n"
                           "# TYPE g gauge\n"
                           "g 1\n");
    assert_promtool_clean(t);
    metrics_writer_free(w);
}

static void bad_names_and_duplicates_are_dropped(void **state)
{
    (void)state;
    metrics_writer *w = metrics_writer_new();
    assert_false(metrics_family(w, "1abc", METRICS_GAUGE, "x"));
    metrics_sample(w, NULL, 0, 1); /* no family: dropped */
    assert_false(metrics_family(w, "a-b", METRICS_GAUGE, "x"));
    assert_false(metrics_family(w, "", METRICS_GAUGE, "x"));
    assert_true(metrics_family(w, "ns:ok_total", METRICS_COUNTER, "x"));
    metrics_sample_u64(w, NULL, 0, 7);
    metrics_label bad_name[] = { { "a-b", "v" } };
    metrics_sample_u64(w, bad_name, 1, 1);
    metrics_label reserved[] = { { "__name__", "v" } };
    metrics_sample_u64(w, reserved, 1, 1);
    metrics_label le[] = { { "le", "1" } };
    metrics_sample_u64(w, le, 1, 1);
    metrics_label twice[] = { { "a", "1" }, { "a", "2" } };
    metrics_sample_u64(w, twice, 2, 1);
    metrics_label null_value[] = { { "a", NULL } };
    metrics_sample(w, null_value, 1, 1);
    metrics_sample_suffix(w, "-x", NULL, 0, 1);
    /* A family written twice: refused, and its samples with it. */
    assert_false(metrics_family(w, "ns:ok_total", METRICS_COUNTER, "again"));
    metrics_sample_u64(w, NULL, 0, 99);
    metrics_histogram(w, NULL, 0, NULL, 0, (const uint64_t[]){ 1 }, 0);

    const char *t = metrics_writer_text(w, NULL);
    assert_string_equal(t, "# HELP ns:ok_total x\n# TYPE ns:ok_total counter\nns:ok_total 7\n");
    assert_int_equal(metrics_writer_errors(w), 13);
    metrics_writer_free(w);
}

static void values_print_exactly(void **state)
{
    (void)state;
    metrics_writer *w = metrics_writer_new();
    metrics_family(w, "v", METRICS_GAUGE, "values");
    const double vals[] = {
        0.1, 3, -2.5, 1e-9, 123456789012.5, 1.0 / 3.0, NAN, INFINITY, -INFINITY
    };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char id[8];
        snprintf(id, sizeof id, "%zu", i);
        metrics_label l[] = { { "i", id } };
        metrics_sample(w, l, 1, vals[i]);
    }
    metrics_family(w, "u_total", METRICS_COUNTER, "exact integers");
    metrics_sample_u64(w, NULL, 0, UINT64_MAX);
    const char *t = metrics_writer_text(w, NULL);
    assert_non_null(strstr(t, "v{i=\"0\"} 0.1\n"));
    assert_non_null(strstr(t, "v{i=\"1\"} 3\n"));
    assert_non_null(strstr(t, "v{i=\"2\"} -2.5\n"));
    assert_non_null(strstr(t, "v{i=\"3\"} 1e-09\n"));
    assert_non_null(strstr(t, "v{i=\"4\"} 123456789012.5\n"));
    assert_non_null(strstr(t, "v{i=\"6\"} NaN\n"));
    assert_non_null(strstr(t, "v{i=\"7\"} +Inf\n"));
    assert_non_null(strstr(t, "v{i=\"8\"} -Inf\n"));
    assert_non_null(strstr(t, "u_total 18446744073709551615\n"));
    /* 1/3 reads back as the same double. */
    const char *third = strstr(t, "v{i=\"5\"} ");
    assert_non_null(third);
    assert_true(strtod(third + strlen("v{i=\"5\"} "), NULL) == 1.0 / 3.0);
    assert_promtool_clean(t);
    metrics_writer_free(w);
}

static void histogram_buckets_cumulate(void **state)
{
    (void)state;
    metrics_writer *w = metrics_writer_new();
    const double bounds[] = { 0.1, 1, 10 };
    const uint64_t buckets[] = { 1, 2, 3, 4 }; /* non-cumulative; last above 10 */
    metrics_family(w, "h_seconds", METRICS_HISTOGRAM, "a histogram");
    metrics_label l[] = { { "m", "x" } };
    metrics_histogram(w, l, 1, bounds, 3, buckets, 12.5);
    metrics_histogram(w, NULL, 0, bounds, 3, (const uint64_t[]){ 0, 0, 0, 0 }, 0);
    const char *t = metrics_writer_text(w, NULL);
    assert_string_equal(t, "# HELP h_seconds a histogram\n"
                           "# TYPE h_seconds histogram\n"
                           "h_seconds_bucket{m=\"x\",le=\"0.1\"} 1\n"
                           "h_seconds_bucket{m=\"x\",le=\"1\"} 3\n"
                           "h_seconds_bucket{m=\"x\",le=\"10\"} 6\n"
                           "h_seconds_bucket{m=\"x\",le=\"+Inf\"} 10\n"
                           "h_seconds_sum{m=\"x\"} 12.5\n"
                           "h_seconds_count{m=\"x\"} 10\n"
                           "h_seconds_bucket{le=\"0.1\"} 0\n"
                           "h_seconds_bucket{le=\"1\"} 0\n"
                           "h_seconds_bucket{le=\"10\"} 0\n"
                           "h_seconds_bucket{le=\"+Inf\"} 0\n"
                           "h_seconds_sum 0\n"
                           "h_seconds_count 0\n");
    assert_promtool_clean(t);
    size_t before = strlen(t);
    /* Bounds that do not increase, and a histogram in a gauge family: refused. */
    metrics_histogram(w, NULL, 0, (const double[]){ 1, 1 }, 2, (const uint64_t[]){ 0, 0, 0 }, 0);
    metrics_family(w, "g", METRICS_GAUGE, "gauge");
    metrics_histogram(w, NULL, 0, bounds, 3, buckets, 1);
    assert_int_equal(metrics_writer_errors(w), 2);
    assert_int_equal(strlen(metrics_writer_text(w, NULL)),
                     before + strlen("# HELP g gauge\n# TYPE g gauge\n"));
    metrics_writer_free(w);
}

/* ---- families ---- */

static void grpc_every_method_and_code_is_written(void **state)
{
    (void)state;
    rpc_method_stats m[3];
    memset(m, 0, sizeof m);
    m[0].service = "herald.v1.OpsService";
    m[0].method = "GetProfile";
    m[0].kind = RPC_UNARY;
    m[1].service = "grpc.health.v1.Health";
    m[1].method = "Watch";
    m[1].kind = RPC_SERVER_STREAM;
    m[2].service = "grpc.reflection.v1.ServerReflection";
    m[2].method = "ServerReflectionInfo";
    m[2].kind = RPC_BIDI_STREAM;
    /* Some traffic on the first method: 5 OK, 3 NotFound, 1 Canceled. */
    m[0].started = 10;
    m[0].handled[GRPC_CODE_OK] = 5;
    m[0].handled[GRPC_CODE_NOT_FOUND] = 3;
    m[0].handled[GRPC_CODE_CANCELLED] = 1;
    m[0].msg_received = 10;
    m[0].msg_sent = 5;
    m[0].bucket[0] = 4;                   /* <= 5 ms */
    m[0].bucket[3] = 4;                   /* <= 50 ms */
    m[0].bucket[RPC_LATENCY_BUCKETS] = 1; /* over 60 s */
    m[0].latency_sum_s = 61.25;

    metrics_writer *w = metrics_writer_new();
    metrics_write_grpc(w, m, 3, 1, 2);
    const char *t = metrics_writer_text(w, NULL);

    /* Pre-initialised: 3 methods x 17 codes, each code in Go spelling. */
    assert_int_equal(count_lines_with_prefix(t, "grpc_server_handled_total{"), 3 * GRPC_CODE_COUNT);
    static const char *const go[] = {
        "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
        "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
        "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
        "DataLoss", "Unauthenticated"
    };
    for (size_t c = 0; c < sizeof go / sizeof go[0]; c++) {
        char needle[64];
        snprintf(needle, sizeof needle, "grpc_code=\"%s\"}", go[c]);
        assert_int_equal(count_substr(t, needle), 3);
    }
    assert_non_null(strstr(t, "grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\""
                              "herald.v1.OpsService\",grpc_method=\"GetProfile\",grpc_code=\""
                              "NotFound\"} 3\n"));
    assert_non_null(strstr(t, "grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\""
                              "herald.v1.OpsService\",grpc_method=\"GetProfile\",grpc_code=\""
                              "Canceled\"} 1\n"));
    assert_non_null(
        strstr(t, "grpc_server_handled_total{grpc_type=\"server_stream\",grpc_service="
                  "\"grpc.health.v1.Health\",grpc_method=\"Watch\",grpc_code=\"OK\"} 0\n"));
    assert_non_null(strstr(t, "grpc_server_started_total{grpc_type=\"bidi_stream\","));
    assert_non_null(strstr(t, "grpc_server_started_total{grpc_type=\"unary\",grpc_service=\""
                              "herald.v1.OpsService\",grpc_method=\"GetProfile\"} 10\n"));
    assert_non_null(strstr(t, "grpc_server_msg_received_total{grpc_type=\"unary\",grpc_service=\""
                              "herald.v1.OpsService\",grpc_method=\"GetProfile\"} 10\n"));
    assert_non_null(strstr(t, "grpc_server_msg_sent_total{grpc_type=\"unary\",grpc_service=\""
                              "herald.v1.OpsService\",grpc_method=\"GetProfile\"} 5\n"));
    /* Histogram: 13 bounds + +Inf per method, cumulative, _count = total. */
    assert_int_equal(count_lines_with_prefix(t, "grpc_server_handling_seconds_bucket{"),
                     3 * (RPC_LATENCY_BUCKETS + 1));
    const char *lbl = "grpc_type=\"unary\",grpc_service=\"herald.v1.OpsService\","
                      "grpc_method=\"GetProfile\"";
    char line[256];
    snprintf(line, sizeof line, "grpc_server_handling_seconds_bucket{%s,le=\"0.005\"} 4\n", lbl);
    assert_non_null(strstr(t, line));
    snprintf(line, sizeof line, "grpc_server_handling_seconds_bucket{%s,le=\"0.025\"} 4\n", lbl);
    assert_non_null(strstr(t, line));
    snprintf(line, sizeof line, "grpc_server_handling_seconds_bucket{%s,le=\"0.05\"} 8\n", lbl);
    assert_non_null(strstr(t, line));
    snprintf(line, sizeof line, "grpc_server_handling_seconds_bucket{%s,le=\"60\"} 8\n", lbl);
    assert_non_null(strstr(t, line));
    snprintf(line, sizeof line, "grpc_server_handling_seconds_bucket{%s,le=\"+Inf\"} 9\n", lbl);
    assert_non_null(strstr(t, line));
    snprintf(line, sizeof line, "grpc_server_handling_seconds_count{%s} 9\n", lbl);
    assert_non_null(strstr(t, line));
    snprintf(line, sizeof line, "grpc_server_handling_seconds_sum{%s} 61.25\n", lbl);
    assert_non_null(strstr(t, line));
    assert_non_null(strstr(t, "\ngrpc_server_inflight 1\n"));
    assert_non_null(strstr(t, "\nherald_workers_busy 2\n"));
    assert_int_equal(metrics_writer_errors(w), 0);
    assert_promtool_clean(t);
    metrics_writer_free(w);
}

static void upstream_codes(void **state)
{
    (void)state;
    assert_string_equal(metrics_upstream_code(HTTP_RES_OK, 200), "2xx");
    assert_string_equal(metrics_upstream_code(HTTP_RES_OK, 204), "2xx");
    assert_string_equal(metrics_upstream_code(HTTP_RES_OK, 301), "3xx");
    assert_string_equal(metrics_upstream_code(HTTP_RES_OK, 404), "4xx");
    assert_string_equal(metrics_upstream_code(HTTP_RES_OK, 429), "429");
    assert_string_equal(metrics_upstream_code(HTTP_RES_OK, 503), "5xx");
    assert_string_equal(metrics_upstream_code(HTTP_RES_OK, 0), "other");
    assert_string_equal(metrics_upstream_code(HTTP_RES_TIMEOUT_SENT, 0), "timeout_sent");
    assert_string_equal(metrics_upstream_code(HTTP_RES_CONNECT, 0), "connect");

    /* One upstream seen (llm) and one unknown to the list (crm): llm and
     * webhook always, every code pre-initialised, 429 apart from 4xx. */
    http_upstream_stats u[2];
    memset(u, 0, sizeof u);
    u[0].upstream = "crm";
    u[1].upstream = "llm";
    u[1].results[HTTP_RES_OK] = 10;
    u[1].status[2] = 6;
    u[1].status[4] = 4;
    u[1].status_429 = 3;
    u[1].results[HTTP_RES_TIMEOUT_SENT] = 2;
    u[1].inflight = 1;
    u[1].bucket[0] = 12;
    metrics_writer *w = metrics_writer_new();
    metrics_write_upstreams(w, u, 2);
    const char *t = metrics_writer_text(w, NULL);
    size_t per = 7 + (HTTP_RES_COUNT - 1); /* 6 classes + 429 + non-OK kinds */
    assert_int_equal(count_lines_with_prefix(t, "upstream_requests_total{"), 3 * per);
    assert_non_null(strstr(t, "upstream_requests_total{upstream=\"llm\",code=\"2xx\"} 6\n"));
    assert_non_null(strstr(t, "upstream_requests_total{upstream=\"llm\",code=\"4xx\"} 1\n"));
    assert_non_null(strstr(t, "upstream_requests_total{upstream=\"llm\",code=\"429\"} 3\n"));
    assert_non_null(
        strstr(t, "upstream_requests_total{upstream=\"llm\",code=\"timeout_sent\"} 2\n"));
    assert_non_null(strstr(t, "upstream_requests_total{upstream=\"webhook\",code=\"5xx\"} 0\n"));
    assert_non_null(strstr(t, "upstream_requests_total{upstream=\"crm\",code=\"connect\"} 0\n"));
    assert_non_null(strstr(t, "upstream_request_duration_seconds_count{upstream=\"llm\"} 12\n"));
    assert_non_null(strstr(t, "upstream_inflight{upstream=\"llm\"} 1\n"));
    assert_non_null(strstr(t, "upstream_inflight{upstream=\"webhook\"} 0\n"));
    assert_promtool_clean(t);
    metrics_writer_free(w);
}

static void every_family_passes_promtool(void **state)
{
    (void)state;
    metrics_writer *w = metrics_writer_new();
    rpc_method_stats m;
    memset(&m, 0, sizeof m);
    m.service = "herald.v1.ContentService";
    m.method = "GenerateDraft";
    metrics_write_grpc(w, &m, 1, 0, 0);
    procstat ps;
    assert_int_equal(procstat_read(&ps), ST_OK);
    metrics_write_process(w, &ps);
    metrics_write_build(w, "0.1.0", "abc123\"def");
    memwatch_stats ms = { .state = MEMWATCH_SOFT,
                          .limit_bytes = 256 << 20,
                          .soft_limit_bytes = 192 << 20,
                          .shed_count = 2,
                          .rejected_calls = 5 };
    metrics_write_memory(w, &ms);
    db_stmt_stats st[2];
    memset(st, 0, sizeof st);
    st[0].name = "profile_get";
    st[0].count = 3;
    st[0].bucket[1] = 3;
    st[0].sum_s = 0.004;
    st[1].name = "odd \"name\"\\x";
    st[1].errors = 1;
    db_pool_stats pool = { .open = 4, .busy = 1, .connects = 5, .connect_fails = 1, .drops = 1 };
    metrics_write_db(w, true, st, 2, &pool);
    cache_stats cs = {
        .hits = 8, .misses = 2, .errors = 1, .bypasses = 4, .breaker = CACHE_BREAKER_OPEN
    };
    metrics_write_cache(w, &cs);
    metrics_write_upstreams(w, NULL, 0);
    const char *t = metrics_writer_text(w, NULL);
    assert_int_equal(metrics_writer_errors(w), 0);
    assert_non_null(strstr(t, "herald_build_info{version=\"0.1.0\",commit=\"abc123\\\"def\"} 1\n"));
    assert_non_null(strstr(t, "\nherald_memory_state 1\n"));
    assert_non_null(strstr(t, "\nherald_memory_limit_bytes 268435456\n"));
    assert_non_null(strstr(t, "\nherald_memory_rejected_calls_total 5\n"));
    assert_non_null(strstr(t, "\ndb_up 1\n"));
    assert_non_null(strstr(t, "db_query_duration_seconds_count{query=\"profile_get\"} 3\n"));
    assert_non_null(strstr(t, "db_query_errors_total{query=\"odd \\\"name\\\"\\\\x\"} 1\n"));
    assert_non_null(strstr(t, "\ndb_pool_in_use_connections 1\n"));
    assert_non_null(strstr(t, "cache_requests_total{result=\"hit\"} 8\n"));
    assert_non_null(strstr(t, "cache_requests_total{result=\"bypass\"} 4\n"));
    assert_non_null(strstr(t, "\ncache_breaker_state 1\n"));
    assert_non_null(strstr(t, "\nprocess_resident_memory_bytes "));
    assert_non_null(strstr(t, "\nprocess_open_fds "));
    assert_non_null(strstr(t, "\nprocess_start_time_seconds "));
    assert_promtool_clean(t);
    metrics_writer_free(w);
}

/* ---- the registry (no listener) ---- */

static void custom_family(metrics_writer *w, void *user)
{
    int *calls = user;
    (*calls)++;
    metrics_family(w, "webhook_outbox_pending", METRICS_GAUGE, "Webhook deliveries waiting.");
    metrics_sample(w, NULL, 0, 3);
}

static void clashing_family(metrics_writer *w, void *user)
{
    (void)user;
    /* Already written by the built-ins: refused, and counted. */
    metrics_family(w, "db_up", METRICS_GAUGE, "again");
    metrics_sample(w, NULL, 0, 1);
}

static void render_runs_collectors(void **state)
{
    (void)state;
    memwatch_options mo;
    memwatch_options_init(&mo);
    memwatch *mw = memwatch_new(&mo);
    metrics_options o;
    metrics_options_init(&o);
    o.mem = mw;
    o.version = "9.9.9";
    o.commit = "deadbeef";
    metrics *m = metrics_new(&o);
    int calls = 0;
    metrics_add_collector(m, custom_family, &calls);
    size_t len = 0;
    char *t = metrics_render(m, &len);
    assert_int_equal(len, strlen(t));
    assert_true(len > 0 && t[len - 1] == '\n');
    assert_int_equal(calls, 1);
    assert_null(strstr(t, "grpc_server_")); /* no rpc server given */
    assert_non_null(strstr(t, "\nwebhook_outbox_pending 3\n"));
    assert_non_null(strstr(t, "herald_build_info{version=\"9.9.9\",commit=\"deadbeef\"} 1\n"));
    assert_non_null(strstr(t, "\ndb_up 0\n"));
    assert_non_null(strstr(t, "cache_requests_total{result=\"miss\"} 0\n"));
    assert_non_null(strstr(t, "\nherald_memory_state 0\n"));
    assert_non_null(strstr(t, "\nherald_metrics_write_errors 0\n"));
    assert_promtool_clean(t);
    free(t);

    metrics_add_collector(m, clashing_family, NULL);
    t = metrics_render(m, NULL);
    assert_int_equal(calls, 2);
    assert_int_equal(count_substr(t, "# TYPE db_up "), 1);
    assert_non_null(strstr(t, "\nherald_metrics_write_errors 2\n")); /* family + its sample */
    assert_promtool_clean(t);
    free(t);
    metrics_free(m);
    memwatch_free(mw);
}

static void bad_listen_addresses(void **state)
{
    (void)state;
    const char *bad[] = { "unix:/tmp/x.sock", "nohostport", "127.0.0.1:", "", "127.0.0.1:http" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        metrics_options o;
        metrics_options_init(&o);
        o.listen_addr = bad[i];
        metrics *m = metrics_new(&o);
        char *err = NULL;
        assert_int_equal(metrics_start(m, &err), ST_INVALID);
        assert_non_null(err);
        free(err);
        assert_int_equal(metrics_port(m), 0);
        metrics_free(m);
    }
}

/* What a scrape of a heraldd-sized server costs: 64 methods (Herald's API
 * has about 60) through every built-in family. Printed; bounded loosely. */
static void render_cost(void **state)
{
    (void)state;
    enum { N = 64, ROUNDS = 200 };
    rpc_method_stats *m = xcalloc(N, sizeof *m);
    char names[N][24];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "Method%02d", i);
        m[i].service = "herald.v1.ContentService";
        m[i].method = names[i];
        m[i].started = (uint64_t)i * 1000;
        m[i].handled[0] = (uint64_t)i * 990;
        m[i].bucket[2] = (uint64_t)i * 990;
        m[i].latency_sum_s = i * 12.5;
    }
    size_t bytes = 0;
    int64_t t0 = now_mono_us();
    for (int r = 0; r < ROUNDS; r++) {
        metrics_writer *w = metrics_writer_new();
        metrics_write_grpc(w, m, N, 3, 1);
        procstat ps;
        (void)procstat_read(&ps);
        metrics_write_process(w, &ps);
        metrics_write_cache(w, NULL);
        metrics_write_upstreams(w, NULL, 0);
        bytes = strlen(metrics_writer_text(w, NULL));
        metrics_writer_free(w);
    }
    double us = (double)(now_mono_us() - t0) / ROUNDS;
    fprintf(stderr, "render of %d methods: %zu bytes, %.0f us per scrape (mean of %d)\n", N, bytes,
            us, ROUNDS);
    assert_true(us < 50000);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(label_values_are_escaped),
        cmocka_unit_test(help_is_escaped),
        cmocka_unit_test(bad_names_and_duplicates_are_dropped),
        cmocka_unit_test(values_print_exactly),
        cmocka_unit_test(histogram_buckets_cumulate),
        cmocka_unit_test(grpc_every_method_and_code_is_written),
        cmocka_unit_test(upstream_codes),
        cmocka_unit_test(every_family_passes_promtool),
        cmocka_unit_test(render_runs_collectors),
        cmocka_unit_test(bad_listen_addresses),
        cmocka_unit_test(render_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
