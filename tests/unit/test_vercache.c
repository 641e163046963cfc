/* test_vercache.c - the version map (server/vercache.h) without a
 * database: trust, max-merge, tokens racing forgets, notifications and
 * clears, the entry cap, payload parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "util.h"
#include "vercache.h"

static vercache *trusted_map(size_t cap)
{
    vercache *vc = vercache_new(cap);
    vercache_trust_until(vc, now_mono_us() + 60 * 1000000LL);
    return vc;
}

static void untrusted_answers_nothing(void **state)
{
    (void)state;
    vercache *vc = vercache_new(16);
    int64_t v = -1, t = -1;
    assert_int_equal(vercache_token(vc), 0);
    vercache_notified(vc, "learning:a", 3, 30);
    assert_false(vercache_get(vc, "learning:a", &v, &t));
    vercache_merge(vc, "learning:b", 1, 10, vercache_token(vc)); /* token 0: refused */
    vercache_trust_until(vc, now_mono_us() + 1000000);
    assert_true(vercache_get(vc, "learning:a", &v, &t));
    assert_int_equal(v, 3);
    assert_false(vercache_get(vc, "learning:b", &v, &t));
    /* trust runs out by itself: the heartbeat stopped */
    vercache_trust_until(vc, now_mono_us() - 1);
    assert_false(vercache_get(vc, "learning:a", &v, &t));
    assert_false(vercache_get(NULL, "learning:a", &v, &t));
    vercache_free(vc);
}

static void merges_by_maximum(void **state)
{
    (void)state;
    vercache *vc = trusted_map(16);
    int64_t v, t;
    vercache_merge(vc, "s", 5, 50, vercache_token(vc));
    vercache_merge(vc, "s", 4, 99, vercache_token(vc)); /* older version: ignored */
    assert_true(vercache_get(vc, "s", &v, &t));
    assert_int_equal(v, 5);
    assert_int_equal(t, 50);
    vercache_notified(vc, "s", 5, 60); /* same version, later instant */
    assert_true(vercache_get(vc, "s", &v, &t));
    assert_int_equal(t, 60);
    vercache_notified(vc, "s", 7, 70);
    vercache_merge(vc, "s", 6, 65, vercache_token(vc));
    assert_true(vercache_get(vc, "s", &v, &t));
    assert_int_equal(v, 7);
    /* version 0: a profile that exists but was never bumped */
    vercache_merge(vc, "zero", 0, 0, vercache_token(vc));
    assert_true(vercache_get(vc, "zero", &v, &t));
    assert_int_equal(v, 0);
    vercache_stats st;
    vercache_stats_get(vc, &st);
    assert_int_equal(st.entries, 2);
    assert_true(st.trusted);
    vercache_free(vc);
}

static void a_read_older_than_a_forget_stays_out(void **state)
{
    (void)state;
    vercache *vc = trusted_map(16);
    int64_t v, t;
    vercache_notified(vc, "s", 1, 10);
    uint64_t before = vercache_token(vc); /* a reader starts, reads version 1 */
    vercache_forget(vc, "s");             /* a writer committed 2 here */
    assert_false(vercache_get(vc, "s", &v, &t));
    vercache_merge(vc, "s", 1, 10, before); /* refused: it may predate the write */
    assert_false(vercache_get(vc, "s", &v, &t));
    uint64_t after = vercache_token(vc);
    vercache_merge(vc, "s", 2, 20, after);
    assert_true(vercache_get(vc, "s", &v, &t));
    assert_int_equal(v, 2);

    /* forgetting a scope the map does not hold still fences older reads */
    uint64_t old = vercache_token(vc);
    vercache_forget(vc, "absent");
    vercache_merge(vc, "absent", 1, 1, old);
    assert_false(vercache_get(vc, "absent", &v, &t));

    /* a notification about a forgotten scope keeps it forgotten and
     * fences reads that started before it */
    vercache_forget(vc, "s");
    uint64_t mid = vercache_token(vc);
    vercache_notified(vc, "s", 3, 30);
    assert_false(vercache_get(vc, "s", &v, &t));
    vercache_merge(vc, "s", 2, 20, mid); /* read before 3 committed: refused */
    assert_false(vercache_get(vc, "s", &v, &t));
    vercache_merge(vc, "s", 3, 30, vercache_token(vc));
    assert_true(vercache_get(vc, "s", &v, &t));
    assert_int_equal(v, 3);
    vercache_stats st;
    vercache_stats_get(vc, &st);
    assert_int_equal(st.refused, 3);
    vercache_free(vc);
}

static void a_reset_clears_and_fences(void **state)
{
    (void)state;
    vercache *vc = trusted_map(16);
    int64_t v, t;
    vercache_notified(vc, "a", 1, 1);
    uint64_t tok = vercache_token(vc);
    vercache_reset(vc); /* the subscription was lost */
    assert_false(vercache_get(vc, "a", &v, &t));
    assert_int_equal(vercache_token(vc), 0);
    vercache_trust_until(vc, now_mono_us() + 1000000); /* listening again: empty */
    assert_false(vercache_get(vc, "a", &v, &t));
    vercache_merge(vc, "a", 1, 1, tok); /* read under the old subscription */
    assert_false(vercache_get(vc, "a", &v, &t));
    vercache_merge(vc, "a", 2, 2, vercache_token(vc));
    assert_true(vercache_get(vc, "a", &v, &t));

    /* forget_all keeps trust but fences and empties */
    tok = vercache_token(vc);
    vercache_forget_all(vc);
    assert_false(vercache_get(vc, "a", &v, &t));
    vercache_merge(vc, "a", 2, 2, tok);
    assert_false(vercache_get(vc, "a", &v, &t));
    assert_true(vercache_token(vc) != 0);
    vercache_stats st;
    vercache_stats_get(vc, &st);
    assert_int_equal(st.resets, 1);
    vercache_free(vc);
}

static void the_cap_bounds_entries(void **state)
{
    (void)state;
    vercache *vc = trusted_map(8);
    int64_t v, t;
    char s[32];
    for (int i = 0; i < 100; i++) {
        snprintf(s, sizeof s, "learning:p%d", i);
        vercache_notified(vc, s, i, i);
    }
    vercache_stats st;
    vercache_stats_get(vc, &st);
    assert_int_equal(st.entries, 8);
    assert_int_equal(st.evictions, 92);
    int held = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(s, sizeof s, "learning:p%d", i);
        if (vercache_get(vc, s, &v, &t)) {
            assert_int_equal(v, i);
            held++;
        }
    }
    assert_int_equal(held, 8);
    /* a read that started before an eviction may not add a missing scope:
     * the evicted one could have been newer than what it read */
    uint64_t tok = vercache_token(vc);
    vercache_notified(vc, "learning:new", 1, 1); /* evicts one */
    vercache_merge(vc, "learning:other", 1, 1, tok);
    assert_false(vercache_get(vc, "learning:other", &v, &t));
    vercache_free(vc);
}

static void payloads(void **state)
{
    (void)state;
    vercache *vc = trusted_map(16);
    int64_t v, t;
    assert_true(vercache_apply_payload(vc, "12 1700000000123456 learning:p1"));
    assert_true(vercache_get(vc, "learning:p1", &v, &t));
    assert_int_equal(v, 12);
    assert_int_equal(t, 1700000000123456LL);
    assert_true(vercache_apply_payload(vc, "3 5 a scope with spaces"));
    assert_true(vercache_get(vc, "a scope with spaces", &v, &t));
    assert_true(vercache_apply_payload(vc, "gone learning:p1"));
    assert_false(vercache_get(vc, "learning:p1", &v, &t));
    const char *bad[] = { "",
                          "12",
                          "12 34",
                          "x 1 s",
                          "1 y s",
                          "1 2 ",
                          "gone ",
                          "99999999999999999999 1 s",
                          "9999999999999999999 1 s" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(vercache_apply_payload(vc, bad[i]));
    vercache_free(vc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(untrusted_answers_nothing),
        cmocka_unit_test(merges_by_maximum),
        cmocka_unit_test(a_read_older_than_a_forget_stays_out),
        cmocka_unit_test(a_reset_clears_and_fences),
        cmocka_unit_test(the_cap_bounds_entries),
        cmocka_unit_test(payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
