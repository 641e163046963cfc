/* test_lcache.c - the in-process cache tier (cache/lcache.h): the byte
 * bound, expiry, least-recently-used eviction, replacement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lcache.h"

enum { NOW = 1000000, LATER = 2000000 };

static bool has(lcache *lc, const char *key, int64_t now)
{
    uint8_t *v = NULL;
    size_t n = 0;
    bool hit = lcache_get(lc, key, now, &v, &n);
    free(v);
    return hit;
}

static void off_when_zero(void **state)
{
    (void)state;
    assert_null(lcache_new(0));
    lcache_put(NULL, "k", "v", 1, LATER); /* NULL-safe */
    assert_false(has(NULL, "k", NOW));
    lcache_free(NULL);
}

static void stores_copies_until_expiry(void **state)
{
    (void)state;
    lcache *lc = lcache_new(64 * 1024);
    char buf[] = "hello";
    lcache_put(lc, "k", buf, 5, LATER);
    buf[0] = 'X'; /* the cache kept its own copy */
    uint8_t *v = NULL;
    size_t n = 0;
    assert_true(lcache_get(lc, "k", NOW, &v, &n));
    assert_int_equal(n, 5);
    assert_memory_equal(v, "hello", 5);
    free(v);
    lcache_put(lc, "k", "bye", 3, LATER); /* replaces */
    assert_true(lcache_get(lc, "k", NOW, &v, &n));
    assert_int_equal(n, 3);
    free(v);
    assert_false(has(lc, "k", LATER)); /* expired: dropped */
    lcache_stats st;
    lcache_stats_get(lc, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 1);
    lcache_put(lc, "empty", NULL, 0, LATER);
    assert_true(lcache_get(lc, "empty", NOW, &v, &n));
    assert_int_equal(n, 0);
    free(v);
    lcache_free(lc);
}

static void bounded_in_bytes_lru_first(void **state)
{
    (void)state;
    /* each entry: 64 overhead + 2-byte key + 430 value = 496 bytes; 8 fit in 4000 */
    lcache *lc = lcache_new(4000);
    char val[430];
    memset(val, 'v', sizeof val);
    char key[8];
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof key, "k%d", i);
        lcache_put(lc, key, val, sizeof val, LATER);
    }
    lcache_stats st;
    lcache_stats_get(lc, &st);
    assert_int_equal(st.entries, 8);
    assert_true(st.bytes <= 4000);
    assert_true(has(lc, "k0", NOW)); /* k0 is now the most recent; k1 the least */
    lcache_put(lc, "k8", val, sizeof val, LATER);
    assert_false(has(lc, "k1", NOW));
    assert_true(has(lc, "k0", NOW));
    assert_true(has(lc, "k8", NOW));
    lcache_stats_get(lc, &st);
    assert_int_equal(st.evictions, 1);
    assert_true(st.bytes <= st.max_bytes);
    /* a value over an eighth of the bound is not kept */
    char *big = calloc(1, 600);
    lcache_put(lc, "big", big, 600, LATER);
    free(big);
    assert_false(has(lc, "big", NOW));
    lcache_clear(lc);
    lcache_stats_get(lc, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_false(has(lc, "k0", NOW));
    lcache_free(lc);
}

static void many_keys_stay_bounded(void **state)
{
    (void)state;
    lcache *lc = lcache_new(100000);
    char key[32], val[200];
    memset(val, 'x', sizeof val);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "herald:insights:p%d:v1", i);
        lcache_put(lc, key, val, (size_t)(i % 200), i % 3 ? LATER : NOW);
    }
    lcache_stats st;
    lcache_stats_get(lc, &st);
    assert_true(st.bytes <= 100000);
    assert_true(st.entries > 100);
    assert_true(has(lc, "herald:insights:p4999:v1", NOW)); /* the latest is there */
    lcache_free(lc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(off_when_zero),
        cmocka_unit_test(stores_copies_until_expiry),
        cmocka_unit_test(bounded_in_bytes_lru_first),
        cmocka_unit_test(many_keys_stay_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
