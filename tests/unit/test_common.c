/* Unit tests for common/: status mapping, UTF-8 validation, strbuf, arena. */
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "arena.h"
#include "status.h"
#include "util.h"

static void status_maps_to_grpc(void **state)
{
    (void)state;
    assert_int_equal(status_to_grpc(ST_OK), GRPC_CODE_OK);
    assert_int_equal(status_to_grpc(ST_INVALID), GRPC_CODE_INVALID_ARGUMENT);
    assert_int_equal(status_to_grpc(ST_CONFLICT), GRPC_CODE_ABORTED);
    assert_int_equal(status_to_grpc(ST_TIMEOUT), GRPC_CODE_DEADLINE_EXCEEDED);
    assert_int_equal(status_to_grpc(ST_EXHAUSTED), GRPC_CODE_RESOURCE_EXHAUSTED);
    assert_int_equal(status_to_grpc(ST_UNAVAILABLE), GRPC_CODE_UNAVAILABLE);
    assert_string_equal(status_grpc_code_go_name(GRPC_CODE_CANCELLED), "Canceled");
    assert_string_equal(status_grpc_code_name(GRPC_CODE_UNAUTHENTICATED), "UNAUTHENTICATED");
    assert_string_equal(status_grpc_code_name(99), "UNKNOWN");
}

static void utf8_table(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len;
        bool ok;
    } cases[] = {
        { "hello", 5, true },
        { "caf\xc3\xa9", 5, true },
        { "\xe2\x82\xac", 3, true },         /* euro sign */
        { "\xf0\x9f\x98\x80", 4, true },     /* emoji */
        { "\xff\xfe" "A", 3, false },        /* not UTF-8 at all */
        { "ab\0cd", 5, false },              /* embedded NUL */
        { "\xc0\xaf", 2, false },            /* overlong '/' */
        { "\xe0\x80\xaf", 3, false },        /* overlong, 3 bytes */
        { "\xed\xa0\x80", 3, false },        /* surrogate */
        { "\xf4\x90\x80\x80", 4, false },    /* above U+10FFFF */
        { "\xe2\x82", 2, false },            /* truncated */
        { "\x80", 1, false },                /* lone continuation */
        { "", 0, true },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(utf8_valid(cases[i].s, cases[i].len), cases[i].ok);
    assert_int_equal(utf8_count("caf\xc3\xa9", 5), 4);
}

static void strbuf_escapes_json(void **state)
{
    (void)state;
    strbuf b = { 0 };
    strbuf_json_escape(&b, "a\"b\\c\n\x01", 7);
    assert_string_equal(b.data, "a\\\"b\\\\c\\n\\u0001");
    strbuf_printf(&b, "-%d", 42);
    assert_string_equal(b.data, "a\\\"b\\\\c\\n\\u0001-42");
    char *s = strbuf_take(&b);
    assert_null(b.data);
    free(s);
}

static void arena_enforces_budget(void **state)
{
    (void)state;
    arena *a = arena_new(4096);
    void *p = arena_alloc(a, 1000);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    assert_non_null(arena_alloc(a, 3000));
    assert_false(arena_exhausted(a));
    assert_null(arena_alloc(a, 200)); /* 1008 + 3008 + 208 > 4096 */
    assert_true(arena_exhausted(a));
    arena_reset(a);
    assert_false(arena_exhausted(a));
    char *s = arena_printf(a, "%s-%d", "x", 7);
    assert_string_equal(s, "x-7");
    ProtobufCAllocator *pa = arena_allocator(a);
    assert_non_null(pa->alloc(pa->allocator_data, 64));
    arena_free(a);
}

static void rfc3339_formats_ms(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(fmt_rfc3339_ms(1795886498412LL, buf, sizeof buf),
                        "2026-11-28T17:21:38.412Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_maps_to_grpc),   cmocka_unit_test(utf8_table),
        cmocka_unit_test(strbuf_escapes_json),   cmocka_unit_test(arena_enforces_budget),
        cmocka_unit_test(rfc3339_formats_ms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
