/* test_sched_svc_publisher.c - the built-in publisher's pure parts
 * (publisher.h): the webhook signature against OpenSSL's HMAC, the receipt
 * found in a target's JSON reply, and the outcome of every kind of transfer
 * result (a timeout or reset after sending is UNKNOWN, never RETRYABLE).
 * A unit test: no network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "publisher.h"

static void hmac_matches_openssl(void **state)
{
    (void)state;
    const char *keys[] = { "", "k", "whsec-0123456789",
                           "0123456789012345678901234567890123456789"
                           "012345678901234567890123", /* 64 */
                           "a key longer than one SHA-256 block of sixty-four bytes, which is "
                           "hashed first" };
    const char *msgs[] = { "", "{}", "{\"post_id\":\"x\",\"text\":\"hello\"}" };
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        for (size_t m = 0; m < sizeof msgs / sizeof msgs[0]; m++) {
            uint8_t ours[32], ref[EVP_MAX_MD_SIZE];
            unsigned int n = 0;
            publisher_hmac_sha256(keys[k], strlen(keys[k]), msgs[m], strlen(msgs[m]), ours);
            assert_non_null(HMAC(EVP_sha256(), keys[k], (int)strlen(keys[k]),
                                 (const unsigned char *)msgs[m], strlen(msgs[m]), ref, &n));
            assert_int_equal(n, 32);
            assert_memory_equal(ours, ref, 32);
        }
    }
}

static void json_receipts(void **state)
{
    (void)state;
    char out[64];
    const char *x = "{\"data\":{\"edit_history_tweet_ids\":[\"1445880548472328192\"],"
                    "\"id\":\"1445880548472328192\",\"text\":\"Hello world\"}}";
    assert_true(publisher_json_find(x, strlen(x), "id", 2, out, sizeof out));
    assert_string_equal(out, "1445880548472328192");
    assert_false(publisher_json_find(x, strlen(x), "id", 1, out, sizeof out)); /* not top level */
    const char *w = "{\"text\":\"say \\\"id\\\":\\\"fake\\\"\",\"id\":\"rcv-1\"}";
    assert_true(publisher_json_find(w, strlen(w), "id", 1, out, sizeof out));
    assert_string_equal(out, "rcv-1");
    const char *num = "{ \"id\" : 12345 }";
    assert_true(publisher_json_find(num, strlen(num), "id", 1, out, sizeof out));
    assert_string_equal(out, "12345");
    const char *esc = "{\"id\":\"a\\/b\\u0041\"}";
    assert_true(publisher_json_find(esc, strlen(esc), "id", 1, out, sizeof out));
    assert_string_equal(out, "a/bA");
    const char *none = "{\"ok\":true}";
    assert_false(publisher_json_find(none, strlen(none), "id", 2, out, sizeof out));
    const char *broken = "{\"id\":\"unterminated";
    assert_false(publisher_json_find(broken, strlen(broken), "id", 1, out, sizeof out));
    char small[4];
    const char *longid = "{\"id\":\"toolong\"}";
    assert_false(publisher_json_find(longid, strlen(longid), "id", 1, small, sizeof small));
}

static http_result result(http_result_kind kind, int code, bool sent, const char *body,
                          const http_header *h, size_t nh)
{
    http_result r;
    memset(&r, 0, sizeof r);
    r.kind = kind;
    r.status = code;
    r.request_sent = sent;
    r.body = body != NULL ? body : "";
    r.body_len = strlen(r.body);
    r.headers = h;
    r.n_headers = nh;
    r.error = kind == HTTP_RES_OK ? NULL : "scripted";
    return r;
}

#define CLASS(v) ((v).error_class)

static void outcomes(void **state)
{
    (void)state;
    publisher_verdict v;
    http_result r;
    const char *pid = "0b4c2a1e-1111-4111-8111-111111111111";

    r = result(HTTP_RES_OK, 201, true, "{\"data\":{\"id\":\"99\",\"text\":\"t\"}}", NULL, 0);
    publisher_classify(&r, true, pid, 0, &v);
    assert_int_equal(v.outcome, LEASE_OUTCOME_SUCCESS);
    assert_string_equal(v.external_id, "99");
    r = result(HTTP_RES_OK, 200, true, "", NULL, 0);
    publisher_classify(&r, false, pid, 0, &v); /* a webhook without a receipt: the post id */
    assert_int_equal(v.outcome, LEASE_OUTCOME_SUCCESS);
    assert_string_equal(v.external_id, pid);
    publisher_classify(&r, true, pid, 0, &v); /* X without data.id: published, no receipt */
    assert_int_equal(v.outcome, LEASE_OUTCOME_UNKNOWN);

    http_header ra[1] = { { "retry-after", "7" } };
    r = result(HTTP_RES_OK, 429, true, "{}", ra, 1);
    publisher_classify(&r, false, pid, 0, &v);
    assert_int_equal(v.outcome, LEASE_OUTCOME_RETRYABLE);
    assert_int_equal(CLASS(v), 1); /* RATE_LIMITED */
    assert_int_equal(v.retry_after_s, 7);
    assert_true(v.rate_limited);
    r = result(HTTP_RES_OK, 503, true, "", ra, 1);
    publisher_classify(&r, false, pid, 0, &v);
    assert_int_equal(v.outcome, LEASE_OUTCOME_RETRYABLE);
    assert_int_equal(v.retry_after_s, 7);
    assert_false(v.rate_limited);
    r = result(HTTP_RES_OK, 500, true, "", NULL, 0);
    publisher_classify(&r, false, pid, 0, &v);
    assert_int_equal(v.outcome, LEASE_OUTCOME_RETRYABLE);
    assert_int_equal(CLASS(v), 6); /* SERVER_ERROR */
    assert_int_equal(v.retry_after_s, -1);

    struct {
        int status;
        const char *body;
        int cls;
    } perm[] = { { 401, "", 2 },
                 { 403,
                   "{\"detail\":\"You are not allowed to create a Tweet with duplicate "
                   "content.\"}",
                   8 },
                 { 403, "forbidden", 2 },
                 { 409, "", 8 },
                 { 422, "", 7 },
                 { 404, "", 9 },
                 { 302, "", 9 } };
    for (size_t i = 0; i < sizeof perm / sizeof perm[0]; i++) {
        r = result(HTTP_RES_OK, perm[i].status, true, perm[i].body, NULL, 0);
        publisher_classify(&r, true, pid, 0, &v);
        assert_int_equal(v.outcome, LEASE_OUTCOME_PERMANENT);
        assert_int_equal(CLASS(v), perm[i].cls);
        assert_non_null(strstr(v.error, "HTTP"));
    }

    struct {
        http_result_kind kind;
        bool sent;
        lease_outcome want;
    } t[] = {
        { HTTP_RES_CONNECT, false, LEASE_OUTCOME_RETRYABLE },
        { HTTP_RES_TIMEOUT_UNSENT, false, LEASE_OUTCOME_RETRYABLE },
        { HTTP_RES_TIMEOUT_SENT, true, LEASE_OUTCOME_UNKNOWN },
        { HTTP_RES_RESET, true, LEASE_OUTCOME_UNKNOWN },
        { HTTP_RES_RESET, false, LEASE_OUTCOME_RETRYABLE },
        { HTTP_RES_TOO_LARGE, true, LEASE_OUTCOME_UNKNOWN },
        { HTTP_RES_CANCELLED, true, LEASE_OUTCOME_UNKNOWN },
        { HTTP_RES_CANCELLED, false, LEASE_OUTCOME_RETRYABLE },
        { HTTP_RES_SHUTDOWN, false, LEASE_OUTCOME_RETRYABLE },
        { HTTP_RES_ERROR, true, LEASE_OUTCOME_UNKNOWN },
        { HTTP_RES_ERROR, false, LEASE_OUTCOME_RETRYABLE },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        r = result(t[i].kind, 0, t[i].sent, NULL, NULL, 0);
        publisher_classify(&r, false, pid, 0, &v);
        assert_int_equal(v.outcome, t[i].want);
        assert_true(strlen(v.error) > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hmac_matches_openssl),
        cmocka_unit_test(json_receipts),
        cmocka_unit_test(outcomes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
