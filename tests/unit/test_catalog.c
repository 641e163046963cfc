/* Unit tests for the catalog model, its builder's validation, the seed
 * loader's strictness, and the content of the seed itself (what ListCatalog
 * and the LLM prompts will show). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "catalog.h"
#include "gates.h"
#include "test_catalog_seed.h"
#include "textscan.h"

static void catalog_seed_has_the_required_entries(void **state)
{
    (void)state;
    static const char *const types[] = { "myth_busting",        "counterintuitive_insight",
                                         "practical_tip",       "research_breakdown",
                                         "curious_observation", "story_insight" };
    static const char *const styles[] = { "research_enthusiast",     "truth_seeker",
                                          "practical_optimizer",     "curious_investigator",
                                          "evidence_based_advocate", "storyteller" };
    static const char *const topics[] = { "sleep", "nutrition", "exercise", "stress", "longevity" };
    catalog *c = seed_catalog_load();

    assert_non_null(c);
    assert_int_equal(catalog_count(c, CATALOG_CONTENT_TYPE), 6);
    assert_int_equal(catalog_count(c, CATALOG_VOICE_STYLE), 6);
    assert_true(catalog_count(c, CATALOG_TOPIC) >= 10);
    for (int k = 0; k < 6; k++) {
        const catalog_entry *t = catalog_find(c, CATALOG_CONTENT_TYPE, types[k]);
        const catalog_entry *s = catalog_find(c, CATALOG_VOICE_STYLE, styles[k]);
        assert_non_null(t);
        assert_non_null(s);
        assert_true(t->enabled && s->enabled);
        assert_true(t->min_chars < t->max_chars && t->prior_weight > 0);
    }
    for (int k = 0; k < 5; k++)
        assert_non_null(catalog_find(c, CATALOG_TOPIC, topics[k]));

    /* every topic has >= 6 facts, grouped contiguously */
    size_t total = 0;
    for (size_t t = 0; t < catalog_count(c, CATALOG_TOPIC); t++) {
        const catalog_entry *topic = catalog_entry_at(c, CATALOG_TOPIC, t);
        size_t n;
        const catalog_fact *f = catalog_topic_facts(c, topic->key, &n);
        if (n < 6)
            fail_msg("topic %s has %zu facts", topic->key, n);
        for (size_t k = 0; k < n; k++)
            assert_string_equal(f[k].topic_key, topic->key);
        total += n;
    }
    assert_int_equal(total, catalog_fact_count(c));
    assert_true(catalog_phrase_count(c) >= 50);
    size_t n;
    assert_null(catalog_topic_facts(c, "astrology", &n));
    assert_int_equal(n, 0);
    catalog_free(c);
}

/* Facts are shown to people and put into LLM prompts: each is specific
 * (numbers), sourced ("Authors, Journal" and a year), and clean under the
 * gates that apply to any text (no hashtags, banned phrases, thread markers,
 * emoji or unsafe claims). */
static void catalog_seed_facts_are_specific_and_clean(void **state)
{
    (void)state;
    catalog *c = seed_catalog_load();
    assert_non_null(c);
    for (size_t k = 0; k < catalog_fact_count(c); k++) {
        const catalog_fact *f = catalog_fact_at(c, k);
        bool digit = false;
        for (const char *p = f->fact; *p; p++)
            digit = digit || isdigit((unsigned char)*p);
        if (!digit)
            fail_msg("fact %s has no number", f->key);
        assert_true(f->year >= 1950 && f->year <= 2025);
        const char *comma = strstr(f->source, ", ");
        if (comma == NULL || comma == f->source || strchr(f->source, ',') != comma)
            fail_msg("fact %s: source \"%s\" is not \"Authors, Journal\"", f->key, f->source);
        assert_int_equal(f->fact[strlen(f->fact) - 1], '.');
        assert_true(f->enabled);

        const char *parts[] = { f->fact, f->myth, f->takeaway };
        for (int p = 0; p < 3; p++) {
            gate_verdict v;
            size_t len = strlen(parts[p]);
            gates_check_hashtags(parts[p], len, &v);
            assert_true(v.pass);
            gates_check_banned(parts[p], len, c, &v);
            if (!v.pass)
                fail_msg("fact %s: %s", f->key, v.reason);
            gates_check_thread_markers(parts[p], len, &v);
            if (!v.pass)
                fail_msg("fact %s: %s", f->key, v.reason);
            gates_check_emoji(parts[p], len, 0, &v);
            assert_true(v.pass);
            gates_check_claims(parts[p], len, &v);
            if (!v.pass)
                fail_msg("fact %s: %s", f->key, v.reason);
        }
    }
    catalog_free(c);
}

static void catalog_builder_validates(void **state)
{
    (void)state;
    catalog *c = catalog_new();
    catalog_entry e = { "sleep", "Sleep", "About sleep.", true, 0, 3000, 1.0 };
    catalog_fact f = { "sleep_one",
                       "sleep",
                       "Adults slept 7 hours.",
                       "Nobody sleeps.",
                       "Sleep matters.",
                       "Smith et al., Sleep",
                       2020,
                       true };
    catalog_phrase p = { "synergy", "corporate", true };

    assert_int_equal(catalog_add_entry(c, CATALOG_TOPIC, &e), ST_OK);
    assert_int_equal(catalog_add_entry(c, CATALOG_TOPIC, &e), ST_ALREADY_EXISTS);
    /* the same key is fine under another kind */
    assert_int_equal(catalog_add_entry(c, CATALOG_CONTENT_TYPE, &e), ST_OK);

    catalog_entry bad = e;
    bad.key = "Sleep";
    assert_int_equal(catalog_add_entry(c, CATALOG_TOPIC, &bad), ST_INVALID);
    assert_non_null(strstr(catalog_errmsg(c), "snake"));
    bad.key = "deep__sleep";
    assert_int_equal(catalog_add_entry(c, CATALOG_TOPIC, &bad), ST_INVALID);
    bad.key = "deep_sleep";
    bad.min_chars = 500;
    bad.max_chars = 100;
    assert_int_equal(catalog_add_entry(c, CATALOG_TOPIC, &bad), ST_INVALID);
    bad.min_chars = 0;
    bad.prior_weight = 0;
    assert_int_equal(catalog_add_entry(c, CATALOG_TOPIC, &bad), ST_INVALID);
    bad.prior_weight = 1;
    bad.display_name = "";
    assert_int_equal(catalog_add_entry(c, CATALOG_TOPIC, &bad), ST_INVALID);
    bad.display_name = "Bad \xff";
    assert_int_equal(catalog_add_entry(c, CATALOG_TOPIC, &bad), ST_INVALID);
    assert_int_equal(catalog_add_entry(c, (catalog_kind)9, &e), ST_INVALID);

    assert_int_equal(catalog_add_fact(c, &f), ST_OK);
    assert_int_equal(catalog_add_fact(c, &f), ST_ALREADY_EXISTS);
    catalog_fact bf = f;
    bf.key = "sleep_two";
    bf.year = 1800;
    assert_int_equal(catalog_add_fact(c, &bf), ST_INVALID);
    bf.year = 2020;
    bf.source = NULL;
    assert_int_equal(catalog_add_fact(c, &bf), ST_INVALID);
    assert_int_equal(catalog_add_phrase(c, &p), ST_OK);
    assert_int_equal(catalog_add_phrase(c, &p), ST_ALREADY_EXISTS);

    /* a fact pointing at a topic that does not exist fails finish */
    bf = f;
    bf.key = "orphan";
    bf.topic_key = "astrology";
    assert_int_equal(catalog_add_fact(c, &bf), ST_OK);
    assert_false(catalog_finished(c));
    assert_int_equal(catalog_finish(c), ST_NOT_FOUND);
    assert_non_null(strstr(catalog_errmsg(c), "astrology"));
    catalog_free(c);

    c = catalog_new();
    assert_int_equal(catalog_add_entry(c, CATALOG_TOPIC, &e), ST_OK);
    assert_int_equal(catalog_add_fact(c, &f), ST_OK);
    assert_int_equal(catalog_add_phrase(c, &p), ST_OK);
    assert_int_equal(catalog_finish(c), ST_OK);
    assert_true(catalog_finished(c));
    assert_int_equal(catalog_finish(c), ST_FAILED_PRECONDITION);
    assert_int_equal(catalog_add_entry(c, CATALOG_VOICE_STYLE, &e), ST_FAILED_PRECONDITION);
    assert_non_null(catalog_phrase_tokens(c, 0));
    assert_int_equal(catalog_phrase_tokens(c, 0)->n, 1);
    assert_null(catalog_phrase_tokens(c, 1));
    /* strings are copies */
    assert_true(catalog_find(c, CATALOG_TOPIC, "sleep")->key != e.key);
    assert_string_equal(catalog_find_fact(c, "sleep_one")->source, "Smith et al., Sleep");
    catalog_free(c);
    catalog_free(NULL);
}

static void catalog_keys_normalise(void **state)
{
    (void)state;
    char out[65];
    assert_int_equal(catalog_key_normalize("Myth-Busting", out, sizeof(out)), ST_OK);
    assert_string_equal(out, "myth_busting");
    assert_int_equal(catalog_key_normalize("truth_seeker", out, sizeof(out)), ST_OK);
    assert_string_equal(out, "truth_seeker");
    assert_int_equal(catalog_key_normalize("", out, sizeof(out)), ST_INVALID);
    assert_int_equal(catalog_key_normalize("-sleep", out, sizeof(out)), ST_INVALID);
    assert_int_equal(catalog_key_normalize("sleep-", out, sizeof(out)), ST_INVALID);
    assert_int_equal(catalog_key_normalize("9lives", out, sizeof(out)), ST_INVALID);
    assert_int_equal(catalog_key_normalize("sl eep", out, sizeof(out)), ST_INVALID);
    char long_key[80];
    memset(long_key, 'a', 65);
    long_key[65] = '\0';
    assert_int_equal(catalog_key_normalize(long_key, out, sizeof(out)), ST_INVALID);
    long_key[64] = '\0';
    assert_int_equal(catalog_key_normalize(long_key, out, sizeof(out)), ST_OK);
    assert_int_equal(catalog_key_normalize("sleep", out, 3), ST_INVALID);
    assert_true(catalog_key_valid("a1_b2"));
    assert_false(catalog_key_valid("a1_B2"));
    assert_false(catalog_key_valid(NULL));
}

/* The loader reads exactly the documented format and says where it stops. */
static void catalog_seed_loader_is_strict(void **state)
{
    (void)state;
    static const struct {
        const char *sql;
        const char *err; /* substring of catalog_errmsg */
    } bad[] = {
        { "INSERT INTO topics (key, display_name, description) VALUES\n"
          "    ('sleep', 'Sleep',\n"
          "     'About sleep.');\n",
          "line 2" },
        { "INSERT INTO horoscopes (key) VALUES\n    ('aries');\n", "unknown table" },
        { "INSERT INTO topics (key, colour) VALUES\n    ('sleep', 'blue');\n", "unknown column" },
        { "INSERT INTO topics (key, display_name, description) VALUES\n"
          "    ('sleep', 'Sleep');\n",
          "2 values for 3 columns" },
        { "INSERT INTO topics (key, display_name, description) VALUES\n"
          "    ('sleep', 'Sleep', 'About sleep.'),\n",
          "not terminated" },
        { "INSERT INTO topics (key, display_name, description) VALUES\n"
          "    ('sleep', 'Sleep', 'About sleep.') ;\n",
          "malformed row" },
        { "INSERT INTO topics (key, display_name, description, min_chars) VALUES\n"
          "    ('sleep', 'Sleep', 'About sleep.', 'ten');\n",
          "wrong value type" },
        { "INSERT INTO topics (key, display_name, description) VALUES\n"
          "    ('Sleep', 'Sleep', 'About sleep.');\n",
          "snake" },
        { "INSERT INTO topics key, display_name VALUES\n    ('sleep', 'Sleep');\n",
          "malformed INSERT" },
        { "INSERT INTO topics (key, display_name, description) VALUES\n"
          "    ('sleep', 'It''s sleep, 'About');\n",
          "line 2" },
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        catalog *c = catalog_new();
        status st = catalog_load_seed_sql(c, bad[k].sql, strlen(bad[k].sql));
        if (st == ST_OK || strstr(catalog_errmsg(c), bad[k].err) == NULL)
            fail_msg("case %zu: status %d, message \"%s\", want \"%s\"", k, st, catalog_errmsg(c),
                     bad[k].err);
        catalog_free(c);
    }

    /* DDL and comments are skipped; quotes are unescaped; defaults apply */
    const char *good = "-- a comment\nCREATE TABLE x (y int);\n"
                       "INSERT INTO topics (key, display_name, description, enabled) VALUES\n"
                       "    ('sleep', 'Sleep', 'It''s (about) sleep, really.', false);\n"
                       "INSERT INTO banned_phrases (phrase, category) VALUES\n"
                       "    ('it''s worth noting', 'ai_boilerplate');\n";
    catalog *c = catalog_new();
    assert_int_equal(catalog_load_seed_sql(c, good, strlen(good)), ST_OK);
    assert_int_equal(catalog_finish(c), ST_OK);
    const catalog_entry *t = catalog_find(c, CATALOG_TOPIC, "sleep");
    assert_non_null(t);
    assert_string_equal(t->description, "It's (about) sleep, really.");
    assert_false(t->enabled);
    assert_int_equal(t->min_chars, 0);
    assert_int_equal(t->max_chars, 3000);
    assert_true(t->prior_weight == 1.0);
    assert_string_equal(catalog_phrase_at(c, 0)->phrase, "it's worth noting");
    assert_true(catalog_phrase_at(c, 0)->enabled);
    catalog_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(catalog_seed_has_the_required_entries),
        cmocka_unit_test(catalog_seed_facts_are_specific_and_clean),
        cmocka_unit_test(catalog_builder_validates),
        cmocka_unit_test(catalog_keys_normalise),
        cmocka_unit_test(catalog_seed_loader_is_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
