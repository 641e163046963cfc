/* Unit tests for the rpc runtime's pure rules: deadline math, the access log
 * level of each code, latency buckets, and grpc-status-details-bin encoding
 * (decoded back with protoc-c's google.rpc types). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "log.h"
#include "rpc.h"
#include "status.h"

#define MS INT64_C(1000000)

static void deadline_resolve(void **state)
{
    (void)state;
    int64_t now = INT64_C(1040) * 1000 * MS; /* gRPC's epoch starts near 1040 s */
    /* A client deadline is kept as is, even one already past. */
    assert_true(rpc_deadline_resolve_ns(now + 250 * MS, now, 30000) == now + 250 * MS);
    assert_true(rpc_deadline_resolve_ns(now - 1, now, 30000) == now - 1);
    /* None: the server default from now. */
    assert_true(rpc_deadline_resolve_ns(INT64_MAX, now, 30000) == now + 30000 * MS);
    /* No default (0) or one that would overflow: no deadline. */
    assert_true(rpc_deadline_resolve_ns(INT64_MAX, now, 0) == INT64_MAX);
    assert_true(rpc_deadline_resolve_ns(INT64_MAX, now, INT64_MAX / 2) == INT64_MAX);
}

static void deadline_remaining(void **state)
{
    (void)state;
    /* clang-format off */
    static const struct { int64_t deadline, now, want; } cases[] = {
        { 1000 * MS, 0, 1000 },
        { 1000 * MS, 1, 999 },             /* 999.999999 ms: rounds down */
        { 1000 * MS + MS / 2, 0, 1000 },
        { MS / 2, 0, 0 },                  /* half a ms left: do not start work */
        { 0, 0, 0 },
        { 0, 1, -1 },                      /* 1 ns past: already negative */
        { 0, MS, -1 },
        { 0, MS + 1, -2 },
        { 5 * MS, 3005 * MS, -3000 },
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = rpc_deadline_remaining_ms(cases[i].deadline, cases[i].now);
        if (got != cases[i].want)
            fail_msg("case %zu: got %lld want %lld", i, (long long)got, (long long)cases[i].want);
    }
    assert_true(rpc_deadline_remaining_ms(INT64_MAX, 12345) == INT64_MAX);
}

static void log_level_by_code(void **state)
{
    (void)state;
    /* conventions §7: info / warn / error by code. */
    static const int info[] = {
        GRPC_CODE_OK,        GRPC_CODE_CANCELLED,      GRPC_CODE_INVALID_ARGUMENT,
        GRPC_CODE_NOT_FOUND, GRPC_CODE_ALREADY_EXISTS, GRPC_CODE_UNAUTHENTICATED
    };
    static const int warn[] = {
        GRPC_CODE_DEADLINE_EXCEEDED,   GRPC_CODE_PERMISSION_DENIED, GRPC_CODE_RESOURCE_EXHAUSTED,
        GRPC_CODE_FAILED_PRECONDITION, GRPC_CODE_ABORTED,           GRPC_CODE_OUT_OF_RANGE,
        GRPC_CODE_UNAVAILABLE
    };
    static const int error[] = { GRPC_CODE_UNKNOWN, GRPC_CODE_UNIMPLEMENTED, GRPC_CODE_INTERNAL,
                                 GRPC_CODE_DATA_LOSS };
    int seen[GRPC_CODE_COUNT] = { 0 };
    for (size_t i = 0; i < sizeof info / sizeof info[0]; i++) {
        assert_int_equal(rpc_code_log_level(info[i]), LOG_INFO);
        seen[info[i]]++;
    }
    for (size_t i = 0; i < sizeof warn / sizeof warn[0]; i++) {
        assert_int_equal(rpc_code_log_level(warn[i]), LOG_WARN);
        seen[warn[i]]++;
    }
    for (size_t i = 0; i < sizeof error / sizeof error[0]; i++) {
        assert_int_equal(rpc_code_log_level(error[i]), LOG_ERROR);
        seen[error[i]]++;
    }
    for (int c = 0; c < GRPC_CODE_COUNT; c++) /* every code classified exactly once */
        assert_int_equal(seen[c], 1);
    assert_int_equal(rpc_code_log_level(99), LOG_ERROR);
    assert_int_equal(rpc_code_log_level(-1), LOG_ERROR);
}

static void latency_buckets(void **state)
{
    (void)state;
    assert_int_equal(rpc_latency_bucket(0), 0);
    assert_int_equal(rpc_latency_bucket(0.005), 0); /* upper bounds are inclusive */
    assert_int_equal(rpc_latency_bucket(0.0051), 1);
    assert_int_equal(rpc_latency_bucket(0.3), 6);
    assert_int_equal(rpc_latency_bucket(60), RPC_LATENCY_BUCKETS - 1);
    assert_int_equal(rpc_latency_bucket(61), RPC_LATENCY_BUCKETS); /* +Inf */
    for (int i = 1; i < RPC_LATENCY_BUCKETS; i++)                  /* strictly increasing */
        assert_true(rpc_latency_bounds[i] > rpc_latency_bounds[i - 1]);
    assert_true(rpc_latency_bounds[RPC_LATENCY_BUCKETS - 1] == 60);
}

static void kind_names(void **state)
{
    (void)state;
    assert_string_equal(rpc_kind_name(RPC_UNARY), "unary");
    assert_string_equal(rpc_kind_name(RPC_CLIENT_STREAM), "client_stream");
    assert_string_equal(rpc_kind_name(RPC_SERVER_STREAM), "server_stream");
    assert_string_equal(rpc_kind_name(RPC_BIDI_STREAM), "bidi_stream");
}

static const Google__Protobuf__Any *find_any(const Google__Rpc__Status *st, const char *url)
{
    for (size_t i = 0; i < st->n_details; i++)
        if (strcmp(st->details[i]->type_url, url) == 0)
            return st->details[i];
    return NULL;
}

static void details_plain(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *bin = rpc_status_details_encode(GRPC_CODE_NOT_FOUND, "post p1 not found", NULL, &len);
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, len, bin);
    assert_non_null(st);
    assert_int_equal(st->code, GRPC_CODE_NOT_FOUND);
    assert_string_equal(st->message, "post p1 not found");
    assert_int_equal(st->n_details, 0);
    google__rpc__status__free_unpacked(st, NULL);
    free(bin);
}

static void details_all_kinds(void **state)
{
    (void)state;
    const rpc_field_violation v[] = {
        { "text", "contains a hashtag" },
        { "observations[3].likes", "must not be negative" },
    };
    rpc_error_details d = {
        .violations = v,
        .n_violations = 2,
        .reason = "IDEMPOTENCY_KEY_REUSED",
        .domain = "herald.v1",
        .has_retry = true,
        .retry_delay_ms = 2500,
    };
    size_t len = 0;
    uint8_t *bin = rpc_status_details_encode(GRPC_CODE_INVALID_ARGUMENT, "bad input", &d, &len);
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, len, bin);
    assert_non_null(st);
    assert_int_equal(st->code, GRPC_CODE_INVALID_ARGUMENT);
    assert_string_equal(st->message, "bad input");
    assert_int_equal(st->n_details, 3);
    /* Order: BadRequest, ErrorInfo, RetryInfo. */
    assert_string_equal(st->details[0]->type_url, "type.googleapis.com/google.rpc.BadRequest");
    assert_string_equal(st->details[1]->type_url, "type.googleapis.com/google.rpc.ErrorInfo");
    assert_string_equal(st->details[2]->type_url, "type.googleapis.com/google.rpc.RetryInfo");

    const Google__Protobuf__Any *a = find_any(st, "type.googleapis.com/google.rpc.BadRequest");
    Google__Rpc__BadRequest *br =
        google__rpc__bad_request__unpack(NULL, a->value.len, a->value.data);
    assert_non_null(br);
    assert_int_equal(br->n_field_violations, 2);
    assert_string_equal(br->field_violations[0]->field, "text");
    assert_string_equal(br->field_violations[0]->description, "contains a hashtag");
    assert_string_equal(br->field_violations[1]->field, "observations[3].likes");
    google__rpc__bad_request__free_unpacked(br, NULL);

    a = find_any(st, "type.googleapis.com/google.rpc.ErrorInfo");
    Google__Rpc__ErrorInfo *ei = google__rpc__error_info__unpack(NULL, a->value.len, a->value.data);
    assert_non_null(ei);
    assert_string_equal(ei->reason, "IDEMPOTENCY_KEY_REUSED");
    assert_string_equal(ei->domain, "herald.v1");
    google__rpc__error_info__free_unpacked(ei, NULL);

    a = find_any(st, "type.googleapis.com/google.rpc.RetryInfo");
    Google__Rpc__RetryInfo *ri = google__rpc__retry_info__unpack(NULL, a->value.len, a->value.data);
    assert_non_null(ri);
    assert_non_null(ri->retry_delay);
    assert_int_equal(ri->retry_delay->seconds, 2);
    assert_int_equal(ri->retry_delay->nanos, 500000000);
    google__rpc__retry_info__free_unpacked(ri, NULL);

    google__rpc__status__free_unpacked(st, NULL);
    free(bin);
}

static void details_negative_retry_has_no_retry_info(void **state)
{
    (void)state;
    rpc_error_details d = { .has_retry = true, .retry_delay_ms = -1 };
    size_t len = 0;
    uint8_t *bin = rpc_status_details_encode(GRPC_CODE_RESOURCE_EXHAUSTED, "", &d, &len);
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, len, bin);
    assert_non_null(st);
    assert_int_equal(st->code, GRPC_CODE_RESOURCE_EXHAUSTED);
    assert_int_equal(st->n_details, 0); /* "do not retry" is the pushback trailer alone */
    google__rpc__status__free_unpacked(st, NULL);
    free(bin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deadline_resolve),
        cmocka_unit_test(deadline_remaining),
        cmocka_unit_test(log_level_by_code),
        cmocka_unit_test(latency_buckets),
        cmocka_unit_test(kind_names),
        cmocka_unit_test(details_plain),
        cmocka_unit_test(details_all_kinds),
        cmocka_unit_test(details_negative_retry_has_no_retry_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
