/* test_profiles_toolkit.c - the pure parts of the handler toolkit
 * (server/handler.h) that the profile handlers stand on: page tokens,
 * catalog keys, id syntax, enum <-> database spellings, Timestamps. A unit
 * test (no network); it lives beside test_profiles.c, which covers the
 * call-bound parts (validators, idempotent mutations, cache-aside) through
 * a real heraldd. */
#include <stdint.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "handler.h"
#include "herald/v1/common.pb-c.h"
#include "herald/v1/ops.pb-c.h"

static void page_tokens_round_trip_and_refuse_edits(void **state)
{
    (void)state;
    arena *a = arena_new(0);
    const char *scope = "ListProfiles|state=0|platform=1";
    const uint8_t *cur = NULL;
    size_t len = 0;

    for (size_t n = 1; n <= 40; n++) {
        char cursor[64];
        memset(cursor, 'a' + (int)(n % 26), n);
        char *tok = handler_page_token_encode(a, scope, cursor, n);
        assert_non_null(tok);
        assert_true(strlen(tok) <= HANDLER_PAGE_TOKEN_MAX);
        for (const char *c = tok; *c; c++) /* URL-safe, no padding */
            assert_non_null(
                strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *c));
        assert_int_equal(handler_page_token_decode(a, scope, tok, &cur, &len), ST_OK);
        assert_int_equal(len, n);
        assert_memory_equal(cur, cursor, n);

        /* another scope (other filters): refused */
        assert_int_equal(
            handler_page_token_decode(a, "ListProfiles|state=1|platform=1", tok, &cur, &len),
            ST_INVALID);
        /* every single-character edit and every truncation: refused */
        size_t tl = strlen(tok);
        for (size_t i = 0; i < tl; i++) {
            char *bad = arena_strdup(a, tok);
            bad[i] = bad[i] == 'A' ? 'B' : 'A';
            assert_int_equal(handler_page_token_decode(a, scope, bad, &cur, &len), ST_INVALID);
            bad = arena_strndup(a, tok, i);
            assert_int_equal(handler_page_token_decode(a, scope, bad, &cur, &len), ST_INVALID);
        }
    }
    assert_int_equal(handler_page_token_decode(a, scope, "not a token!", &cur, &len), ST_INVALID);
    assert_null(handler_page_token_encode(a, scope, "", 0));
    char big[HANDLER_PAGE_CURSOR_MAX + 1];
    memset(big, 'x', sizeof big);
    assert_null(handler_page_token_encode(a, scope, big, sizeof big));
    char *tok = handler_page_token_encode(a, scope, big, HANDLER_PAGE_CURSOR_MAX);
    assert_non_null(tok);
    assert_true(strlen(tok) <= HANDLER_PAGE_TOKEN_MAX);
    arena_free(a);
}

static void catalog_keys_and_ids(void **state)
{
    (void)state;
    char out[72];
    assert_true(handler_catalog_key_normalize("Myth-Busting", out, sizeof out));
    assert_string_equal(out, "myth_busting");
    assert_true(handler_catalog_key_normalize("sleep", out, sizeof out));
    assert_string_equal(out, "sleep");
    assert_false(handler_catalog_key_normalize("", out, sizeof out));
    assert_false(handler_catalog_key_normalize("two words", out, sizeof out));
    assert_false(handler_catalog_key_normalize("caf\xc3\xa9", out, sizeof out));
    char k64[65], k65[66];
    memset(k64, 'k', 64);
    k64[64] = '\0';
    memset(k65, 'k', 65);
    k65[65] = '\0';
    assert_true(handler_catalog_key_normalize(k64, out, sizeof out));
    assert_false(handler_catalog_key_normalize(k65, out, sizeof out));

    assert_true(handler_profile_id_valid("a"));
    assert_true(handler_profile_id_valid("0-brand_x"));
    assert_false(handler_profile_id_valid(""));
    assert_false(handler_profile_id_valid("-lead"));
    assert_false(handler_profile_id_valid("Upper"));
    assert_false(handler_profile_id_valid("a b"));
    char id63[64], id64[65];
    memset(id63, 'p', 63);
    id63[63] = '\0';
    memset(id64, 'p', 64);
    id64[64] = '\0';
    assert_true(handler_profile_id_valid(id63));
    assert_false(handler_profile_id_valid(id64));

    assert_true(handler_uuid_valid("123e4567-e89b-42d3-a456-426614174000"));
    assert_true(handler_uuid_valid("123E4567-E89B-42D3-A456-426614174000"));
    assert_false(handler_uuid_valid("123e4567e89b42d3a456426614174000"));
    assert_false(handler_uuid_valid("123e4567-e89b-42d3-a456-42661417400g"));

    assert_true(handler_request_id_valid(""));
    assert_true(handler_request_id_valid("123e4567-e89b-42d3-a456-426614174000"));
    assert_false(handler_request_id_valid("short"));
    assert_false(handler_request_id_valid("123e4567-e89b-42d3-a456-42661417400 "));
    char r255[256], r256[257];
    memset(r255, 'r', 255);
    r255[255] = '\0';
    memset(r256, 'r', 256);
    r256[256] = '\0';
    assert_true(handler_request_id_valid(r255));
    assert_false(handler_request_id_valid(r256));
}

static void enums_and_database_spellings(void **state)
{
    (void)state;
    char buf[32];
    int v = 0;
    assert_string_equal(handler_enum_db_name(&herald__v1__profile_state__descriptor,
                                             HERALD__V1__PROFILE_STATE__PROFILE_STATE_PAUSED, buf,
                                             sizeof buf),
                        "paused");
    assert_string_equal(
        handler_enum_db_name(&herald__v1__publish_target_kind__descriptor,
                             HERALD__V1__PUBLISH_TARGET_KIND__PUBLISH_TARGET_KIND_X_API_V2, buf,
                             sizeof buf),
        "x_api_v2");
    assert_string_equal(handler_enum_db_name(&herald__v1__post_state__descriptor,
                                             HERALD__V1__POST_STATE__POST_STATE_UNCONFIRMED, buf,
                                             sizeof buf),
                        "unconfirmed");
    assert_null(handler_enum_db_name(&herald__v1__platform__descriptor, 0, buf, sizeof buf));
    assert_null(handler_enum_db_name(&herald__v1__platform__descriptor, 99, buf, sizeof buf));
    assert_true(handler_enum_from_db(&herald__v1__platform__descriptor, "linkedin", &v));
    assert_int_equal(v, HERALD__V1__PLATFORM__PLATFORM_LINKEDIN);
    assert_true(handler_enum_from_db(&herald__v1__provider__descriptor, "builtin", &v));
    assert_int_equal(v, HERALD__V1__PROVIDER__PROVIDER_BUILTIN);
    assert_false(handler_enum_from_db(&herald__v1__platform__descriptor, "unspecified", &v));
    assert_false(handler_enum_from_db(&herald__v1__platform__descriptor, "myspace", &v));
    assert_false(handler_enum_from_db(&herald__v1__platform__descriptor, "", &v));
    /* every value of every enum the profiles use round-trips */
    const ProtobufCEnumDescriptor *ds[] = { &herald__v1__platform__descriptor,
                                            &herald__v1__profile_state__descriptor,
                                            &herald__v1__provider__descriptor,
                                            &herald__v1__publish_target_kind__descriptor };
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
        for (unsigned k = 0; k < ds[i]->n_values; k++) {
            int val = ds[i]->values[k].value;
            if (val == 0)
                continue;
            assert_non_null(handler_enum_db_name(ds[i], val, buf, sizeof buf));
            assert_true(handler_enum_from_db(ds[i], buf, &v));
            assert_int_equal(v, val);
        }
    }
}

static void timestamps(void **state)
{
    (void)state;
    arena *a = arena_new(0);
    const int64_t cases_us[] = { 0, 1, 999999, 1000000, 1764351698412345LL, -1, -1000001 };
    for (size_t i = 0; i < sizeof cases_us / sizeof cases_us[0]; i++) {
        Google__Protobuf__Timestamp *ts = handler_ts_from_us(a, cases_us[i]);
        assert_true(ts->nanos >= 0 && ts->nanos <= 999999999);
        assert_int_equal(handler_ts_us(ts), cases_us[i]);
    }
    Google__Protobuf__Timestamp *ts = handler_ts_from_ms(a, -1);
    assert_int_equal(ts->seconds, -1);
    assert_int_equal(ts->nanos, 999000000);
    assert_int_equal(handler_ts_ms(ts), -1);
    assert_int_equal(handler_ts_ms(NULL), 0);
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(page_tokens_round_trip_and_refuse_edits),
        cmocka_unit_test(catalog_keys_and_ids),
        cmocka_unit_test(enums_and_database_spellings),
        cmocka_unit_test(timestamps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
