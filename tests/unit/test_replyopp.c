/* test_replyopp.c - reply opportunities: tiers, each filter and their order,
 * cooldown and freshness boundaries, keyword relevance against the seeded
 * catalog's topics, and ranking by velocity and relevance. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "policy.h"
#include "replyopp.h"

#define NOW 1717236000000LL
#define MIN_MS 60000LL
#define HOUR_MS 3600000LL

/* Two topics as seeded in migrations/0001_catalog.up.sql. */
static const replyopp_topic seed_topics[] = {
    { "Sleep", "Sleep duration, timing, light and alertness." },
    { "Nutrition", "Food quality, fibre, processing and dietary patterns." },
};

static replyopp_target target(const char *id, const char *author, const char *text)
{
    replyopp_target t = { .external_post_id = id,
                          .author_id = author,
                          .text = text,
                          .text_len = strlen(text),
                          .create_ms = NOW - 30 * MIN_MS,
                          .author_followers = 5000,
                          .likes = 10,
                          .replies = 2,
                          .reposts = 3 };
    return t;
}

static void replyopp_tiers(void **state)
{
    (void)state;
    /* clang-format off */
    static const struct { int64_t f; replyopp_tier t; } cases[] = {
        { -1, REPLYOPP_TIER_NANO }, { 0, REPLYOPP_TIER_NANO }, { 999, REPLYOPP_TIER_NANO },
        { 1000, REPLYOPP_TIER_MICRO }, { 9999, REPLYOPP_TIER_MICRO },
        { 10000, REPLYOPP_TIER_MID }, { 99999, REPLYOPP_TIER_MID },
        { 100000, REPLYOPP_TIER_MACRO }, { 999999, REPLYOPP_TIER_MACRO },
        { 1000000, REPLYOPP_TIER_MEGA }, { INT64_MAX, REPLYOPP_TIER_MEGA },
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(replyopp_tier_of(cases[i].f), cases[i].t);
    assert_string_equal(replyopp_tier_name(REPLYOPP_TIER_MID), "mid");
    assert_null(replyopp_tier_name((replyopp_tier)0));
}

static void replyopp_relevance_by_keywords(void **state)
{
    (void)state;
    replyopp_topics *t = NULL;
    assert_int_equal(replyopp_topics_new(seed_topics, 2, &t), ST_OK);
    /* clang-format off */
    static const struct { const char *text; double lo, hi; } cases[] = {
        { "Poor sleep is linked to worse mood the next day.", 1.0, 1.0 },
        { "SLEEPING less than six hours? Here is what the data say.", 0.79, 0.81 },
        { "Morning light exposure shifts your timing earlier.", 1.0, 1.0 },
        { "Bright light at night keeps you wired.", 0.5, 0.5 },
        { "Ultra-processed food and fibre intake in 2024", 1.0, 1.0 },
        { "A steep hill climb today", 0.0, 0.0 },
        { "Stock market rally continues", 0.0, 0.0 },
        { "https://sleep.example.com check this out", 0.0, 0.0 }, /* URLs are dropped */
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double r = replyopp_relevance(t, cases[i].text, strlen(cases[i].text));
        if (r < cases[i].lo - 1e-9 || r > cases[i].hi + 1e-9)
            fail_msg("'%s': relevance %.3f, want [%.2f, %.2f]", cases[i].text, r, cases[i].lo,
                     cases[i].hi);
    }
    assert_true(replyopp_relevance(t, "\xff\xfe", 2) == 0.0);
    assert_true(replyopp_relevance(NULL, "sleep", 5) == 0.0);
    replyopp_topics_free(t);
    replyopp_topics_free(NULL);
    replyopp_topic bad = { NULL, "x" };
    assert_int_equal(replyopp_topics_new(&bad, 1, &t), ST_INVALID);
    assert_null(t);
    replyopp_topic bad_utf8 = { "Sle\xffp", NULL };
    assert_int_equal(replyopp_topics_new(&bad_utf8, 1, &t), ST_INVALID);
    assert_null(t);
}

static void replyopp_each_filter_and_its_order(void **state)
{
    (void)state;
    policy p;
    policy_defaults(&p); /* freshness 180 min, root 24 h, author 12 h */
    replyopp_topics *topics = NULL;
    assert_int_equal(replyopp_topics_new(seed_topics, 2, &topics), ST_OK);
    const char *own[] = { "me" };
    replyopp_reply replies[] = {
        { "root-recent", "alice", NOW - 23 * HOUR_MS },
        { "root-old", "bob", NOW - 25 * HOUR_MS },
        { "other-root", "carol", NOW - 11 * HOUR_MS },
        { "other-root2", "dave", NOW - 13 * HOUR_MS },
    };
    replyopp_ctx ctx = { .policy = &p,
                         .own_author_ids = own,
                         .n_own = 1,
                         .replies = replies,
                         .n_replies = 4,
                         .topics = topics };
    const char *on = "Sleep debt adds up over a week.";
    const char *off = "Our new phone case is out today.";
    replyopp_eval ev;

    /* clang-format off */
    struct { replyopp_target t; replyopp_filter want; } cases[] = {
        { target("p1", "zoe", on), REPLYOPP_KEEP },
        { target("p2", "me", on), REPLYOPP_OWN_POST },
        { target("p3", "zoe", on), REPLYOPP_NOT_ROOT },
        { target("p4", "me", on), REPLYOPP_OWN_POST },             /* own beats not-root */
        { target("p5", "zoe", on), REPLYOPP_STALE },
        { target("p6", "zoe", on), REPLYOPP_KEEP },                /* 1 ms before stale */
        { target("root-recent", "zoe", on), REPLYOPP_ROOT_COOLDOWN },
        { target("root-old", "zoe", on), REPLYOPP_KEEP },
        { target("p7", "carol", on), REPLYOPP_AUTHOR_COOLDOWN },
        { target("p8", "dave", on), REPLYOPP_KEEP },
        { target("root-recent", "carol", on), REPLYOPP_ROOT_COOLDOWN }, /* root first */
        { target("p9", "zoe", off), REPLYOPP_IRRELEVANT },
        { target("p10", "carol", off), REPLYOPP_AUTHOR_COOLDOWN },
        { target("p11", "zoe", on), REPLYOPP_KEEP },               /* root id equals own id */
    };
    /* clang-format on */
    cases[2].t.root_external_id = "some-root";
    cases[3].t.root_external_id = "some-root";
    cases[4].t.create_ms = NOW - 180 * MIN_MS;
    cases[5].t.create_ms = NOW - 180 * MIN_MS + 1;
    cases[13].t.root_external_id = "p11";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(replyopp_evaluate(&ctx, &cases[i].t, NOW, &ev), ST_OK);
        if (ev.filter != cases[i].want)
            fail_msg("case %zu (%s): filter %d, want %d", i, cases[i].t.external_post_id, ev.filter,
                     cases[i].want);
        assert_int_equal(ev.expire_ms, cases[i].t.create_ms + 180 * MIN_MS);
    }
    /* Policy cooldowns are honoured: a 0 h author cooldown lets carol back in. */
    p.reply_author_cooldown_hours = 0;
    assert_int_equal(replyopp_evaluate(&ctx, &cases[8].t, NOW, &ev), ST_OK);
    assert_int_equal(ev.filter, REPLYOPP_KEEP);
    /* Without topics nothing is irrelevant and relevance is 0. */
    ctx.topics = NULL;
    assert_int_equal(replyopp_evaluate(&ctx, &cases[11].t, NOW, &ev), ST_OK);
    assert_int_equal(ev.filter, REPLYOPP_KEEP);
    assert_true(ev.relevance == 0.0);
    /* A higher bar filters a one-description-word post. */
    ctx.topics = topics;
    replyopp_target half = target("p12", "zoe", "Bright light at night keeps you wired.");
    assert_int_equal(replyopp_evaluate(&ctx, &half, NOW, &ev), ST_OK);
    assert_int_equal(ev.filter, REPLYOPP_KEEP);
    ctx.min_relevance = 0.6;
    assert_int_equal(replyopp_evaluate(&ctx, &half, NOW, &ev), ST_OK);
    assert_int_equal(ev.filter, REPLYOPP_IRRELEVANT);

    /* Invalid input. */
    replyopp_target bad = target("", "zoe", on);
    assert_int_equal(replyopp_evaluate(&ctx, &bad, NOW, &ev), ST_INVALID);
    bad = target("x", NULL, on);
    assert_int_equal(replyopp_evaluate(&ctx, &bad, NOW, &ev), ST_INVALID);
    bad = target("x", "zoe", "ok\xc0");
    assert_int_equal(replyopp_evaluate(&ctx, &bad, NOW, &ev), ST_INVALID);
    bad = target("x", "zoe", on);
    bad.create_ms = 0;
    assert_int_equal(replyopp_evaluate(&ctx, &bad, NOW, &ev), ST_INVALID);
    bad.create_ms = NOW + REPLYOPP_MAX_SKEW_MS + 1;
    assert_int_equal(replyopp_evaluate(&ctx, &bad, NOW, &ev), ST_INVALID);
    bad.create_ms = NOW + REPLYOPP_MAX_SKEW_MS; /* small clock skew is fine */
    assert_int_equal(replyopp_evaluate(&ctx, &bad, NOW, &ev), ST_OK);
    ctx.policy = NULL;
    assert_int_equal(replyopp_evaluate(&ctx, &cases[0].t, NOW, &ev), ST_INVALID);
    replyopp_topics_free(topics);
}

static void replyopp_velocity(void **state)
{
    (void)state;
    policy p;
    policy_defaults(&p);
    replyopp_ctx ctx = { .policy = &p };
    replyopp_eval ev;
    replyopp_target t = target("v", "zoe", "hello there");
    t.create_ms = NOW - 2 * HOUR_MS;
    t.observe_ms = NOW - HOUR_MS; /* counts read when it was 1 h old */
    t.likes = 50;
    t.replies = 5;
    t.reposts = -1; /* unknown */
    assert_int_equal(replyopp_evaluate(&ctx, &t, NOW, &ev), ST_OK);
    assert_true(fabs(ev.velocity_per_hour - 55.0) < 1e-9);
    /* A 1-minute-old post: age floored at 15 min. */
    t.create_ms = NOW - MIN_MS;
    t.observe_ms = 0;
    t.likes = 3;
    t.replies = -1;
    assert_int_equal(replyopp_evaluate(&ctx, &t, NOW, &ev), ST_OK);
    assert_true(fabs(ev.velocity_per_hour - 12.0) < 1e-9);
}

static void replyopp_ranking(void **state)
{
    (void)state;
    policy p;
    policy_defaults(&p);
    replyopp_topics *topics = NULL;
    assert_int_equal(replyopp_topics_new(seed_topics, 2, &topics), ST_OK);
    replyopp_ctx ctx = { .policy = &p, .topics = topics, .min_relevance = 0.01 };
    /* id, text, likes in the last 30 min, followers */
    struct {
        const char *id;
        const char *text;
        int64_t likes;
        int64_t followers;
    } in[] = {
        { "hot-on", "Sleep and memory: new data", 200, 50000 },
        { "hot-half", "Light at night and you", 300, 500 },
        { "warm-on", "Sleep tips that hold up", 20, 2000000 },
        { "cold-on", "Sleep research roundup", 0, 200 },
        { "cold-half", "Light and mood", 0, 20000 },
        { "cold-on-b", "Sleep myths", 0, 200 },
    };
    size_t n = sizeof in / sizeof in[0];
    replyopp_ranked items[6];
    for (size_t i = 0; i < n; i++) {
        replyopp_target t = target(in[i].id, "zoe", in[i].text);
        t.likes = in[i].likes;
        t.replies = 0;
        t.reposts = 0;
        t.author_followers = in[i].followers;
        replyopp_eval ev;
        assert_int_equal(replyopp_evaluate(&ctx, &t, NOW, &ev), ST_OK);
        assert_int_equal(ev.filter, REPLYOPP_KEEP);
        items[i] = (replyopp_ranked){ in[i].id, ev.tier, ev.score, t.create_ms, i };
    }
    /* Same creation time for the two cold relevant posts: the id decides. */
    size_t kept = replyopp_rank(items, n, 0);
    assert_int_equal(kept, n);
    static const char *const want[] = { "hot-on",  "hot-half",  "warm-on",
                                        "cold-on", "cold-on-b", "cold-half" };
    for (size_t i = 0; i < n; i++)
        if (strcmp(items[i].external_post_id, want[i]) != 0)
            fail_msg("rank %zu: %s (score %.3f), want %s", i, items[i].external_post_id,
                     items[i].score, want[i]);
    /* Fresher first on equal scores. */
    items[3].create_ms = NOW - 10 * MIN_MS;
    items[4].create_ms = NOW - 5 * MIN_MS;
    replyopp_rank(items, n, 0);
    assert_string_equal(items[3].external_post_id, "cold-on-b");
    /* Tier filter: micro and mega only. */
    kept = replyopp_rank(items, n, (1u << REPLYOPP_TIER_MICRO) | (1u << REPLYOPP_TIER_MEGA));
    assert_int_equal(kept, 1);
    assert_string_equal(items[0].external_post_id, "warm-on");
    replyopp_topics_free(topics);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replyopp_tiers),
        cmocka_unit_test(replyopp_relevance_by_keywords),
        cmocka_unit_test(replyopp_each_filter_and_its_order),
        cmocka_unit_test(replyopp_velocity),
        cmocka_unit_test(replyopp_ranking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
