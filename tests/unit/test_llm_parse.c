/* test_llm_parse.c - the LLM provider's pure parts: chat-completions response
 * parsing (table plus a bounded mutation run), upstream error messages with
 * the key masked, text clean-up, the prompt body built from catalog
 * entries, and the backoff schedule. No network. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "catalog.h"
#include "llm.h"
#include "llm_parse.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

/* ---- response parsing ---- */

static status parse(const char *body, llm_parsed *p, char *err, size_t cap)
{
    return llm_parse_response(body, strlen(body), p, err, cap);
}

static void parses_good_responses(void **state)
{
    (void)state;
    struct {
        const char *body;
        const char *text;
    } ok[] = {
        { "{\"choices\":[{\"message\":{\"content\":\"Adults who slept 7 hours...\"}}]}",
          "Adults who slept 7 hours..." },
        { "  {\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"  padded \\n\"}}]}\n",
          "padded" },
        { "{\"choices\":[{\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"part one, \"},"
          "{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"part two\"}]}}]}",
          "part one, part two" },
        { "{\"choices\":[{\"message\":{\"content\":\"\\\"Wrapped in quotes.\\\"\"}}]}",
          "Wrapped in quotes." },
        { "{\"choices\":[{\"message\":{\"content\":\"\\\"Sleep\\\" is not \\\"rest\\\"\"}}]}",
          "\"Sleep\" is not \"rest\"" },
        { "{\"choices\":[{\"message\":{\"content\":\"\xe2\x80\x9cSmart quotes.\xe2\x80\x9d\"}}]}",
          "Smart quotes." },
        { "{\"choices\":[{\"message\":{\"content\":\"Post: \\\"Labelled and quoted.\\\"\"}}]}",
          "Labelled and quoted." },
        { "{\"choices\":[{\"message\":{\"content\":\"Caf\\u00e9 \xf0\x9f\x98\x80 ok\"}}]}",
          "Caf\xc3\xa9 \xf0\x9f\x98\x80 ok" },
        /* json-c turns a lone surrogate escape into U+FFFD: still valid UTF-8. */
        { "{\"choices\":[{\"message\":{\"content\":\"lone \\ud800 surrogate\"}}]}",
          "lone \xef\xbf\xbd surrogate" },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        llm_parsed p;
        char err[160];
        if (parse(ok[i].body, &p, err, sizeof err) != ST_OK)
            fail_msg("case %zu: %s", i, err);
        assert_string_equal(p.text, ok[i].text);
        assert_int_equal(p.len, strlen(ok[i].text));
        llm_parsed_fini(&p);
    }

    llm_parsed p;
    char err[160];
    assert_int_equal(parse("{\"model\":\"m-1\",\"choices\":[{\"finish_reason\":\"stop\","
                           "\"message\":{\"content\":\"x y\"}}]}",
                           &p, err, sizeof err),
                     ST_OK);
    assert_string_equal(p.model, "m-1");
    assert_string_equal(p.finish_reason, "stop");
    llm_parsed_fini(&p);
    llm_parsed_fini(NULL);
}

static void rejects_malformed_responses(void **state)
{
    (void)state;
    struct {
        const char *body;
        const char *why; /* a substring of the reason */
    } bad[] = {
        { "", "empty" },
        { "{\"choices\":[{\"message\":{\"content\":\"abc\"", "malformed JSON" },
        { "{\"choices\":[{\"message\":{\"content\":\"abc\"}}]} trailing", "malformed JSON" },
        { "{\"choices\":[{\"message\":{\"content\":\"abc\"}}]}{}", "malformed JSON" },
        { "not json at all", "malformed JSON" },
        { "{\"choices\":[{\"message\":{\"content\":'single'}}]}", "malformed JSON" },
        { "[1,2,3]", "not a JSON object" },
        { "{\"id\":\"x\"}", "no choices" },
        { "{\"choices\":{}}", "no choices" },
        { "{\"choices\":[]}", "empty choices" },
        { "{\"choices\":[7]}", "choices[0].message" },
        { "{\"choices\":[{\"text\":\"legacy\"}]}", "choices[0].message" },
        { "{\"choices\":[{\"message\":{\"content\":null}}]}", "no choices[0].message.content" },
        { "{\"choices\":[{\"message\":{\"content\":null,\"refusal\":\"no\"}}]}", "refused" },
        { "{\"choices\":[{\"message\":{\"content\":42}}]}", "not a string" },
        { "{\"choices\":[{\"message\":{\"content\":\"\"}}]}", "empty" },
        { "{\"choices\":[{\"message\":{\"content\":\"  \\n \"}}]}", "blank" },
        { "{\"choices\":[{\"message\":{\"content\":\"\\\"\\\"\"}}]}", "blank" },
        { "{\"choices\":[{\"message\":{\"content\":\"a\\u0000b\"}}]}", "NUL" },
        { "{\"choices\":[{\"message\":{\"content\":\"bad \xff\xfe bytes\"}}]}", "" },
        { "{\"choices\":[{\"message\":{\"content\":[{\"type\":\"image\"}]}}]}", "no text parts" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        llm_parsed p;
        char err[160] = "";
        if (parse(bad[i].body, &p, err, sizeof err) != ST_INTERNAL)
            fail_msg("case %zu accepted: %s", i, bad[i].body);
        assert_null(p.text);
        if (strstr(err, bad[i].why) == NULL || err[0] == '\0')
            fail_msg("case %zu: reason \"%s\" lacks \"%s\"", i, err, bad[i].why);
    }
    /* Nesting beyond the depth limit. */
    strbuf deep = { 0 };
    for (int i = 0; i < 200; i++)
        strbuf_putc(&deep, '[');
    for (int i = 0; i < 200; i++)
        strbuf_putc(&deep, ']');
    llm_parsed p;
    char err[160];
    assert_int_equal(llm_parse_response(deep.data, deep.len, &p, err, sizeof err), ST_INTERNAL);
    strbuf_fini(&deep);
}

static void large_content_parses(void **state)
{
    (void)state;
    strbuf b = { 0 };
    strbuf_puts(&b, "{\"choices\":[{\"message\":{\"content\":\"");
    for (int i = 0; i < 100000; i++)
        strbuf_puts(&b, "abcdefghij");
    strbuf_puts(&b, "\"}}]}");
    llm_parsed p;
    char err[160];
    assert_int_equal(llm_parse_response(b.data, b.len, &p, err, sizeof err), ST_OK);
    assert_int_equal(p.len, 1000000);
    llm_parsed_fini(&p);
    strbuf_fini(&b);
}

/* Deterministic mutations of a valid response: the parser must return OK
 * with a clean text, or INTERNAL, and never crash (run under ASan/UBSan). */
static void survives_mutations(void **state)
{
    (void)state;
    static const char seed[] =
        "{\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":"
        "{\"role\":\"assistant\",\"content\":\"A \\\"quoted\\\" \\u00e9 "
        "post\"},\"finish_reason\":\"stop\"}]}";
    uint64_t x = 0x2545f4914f6cdd1dULL;
    int ok = 0, bad = 0;
    for (int iter = 0; iter < 20000; iter++) {
        char buf[sizeof seed + 8];
        size_t n = sizeof seed - 1;
        memcpy(buf, seed, n);
        int edits = 1 + (int)(iter % 4);
        for (int e = 0; e < edits; e++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t pos = (size_t)(x % n);
            switch ((x >> 32) % 4) {
            case 0:
                buf[pos] = (char)(x >> 40);
                break;
            case 1:
                n = pos; /* truncate */
                break;
            case 2:
                memmove(buf + pos, buf + pos + 1, n - pos - 1);
                n--;
                break;
            default:
                buf[pos] = "{}[]\":,\\u0"[(x >> 48) % 10];
                break;
            }
            if (n == 0)
                break;
        }
        llm_parsed p;
        char err[160];
        status st = llm_parse_response(buf, n, &p, err, sizeof err);
        if (st == ST_OK) {
            assert_true(p.len > 0);
            assert_int_equal(strlen(p.text), p.len);
            assert_true(utf8_valid(p.text, p.len));
            ok++;
        } else {
            assert_int_equal(st, ST_INTERNAL);
            assert_true(err[0] != '\0');
            bad++;
        }
        llm_parsed_fini(&p);
    }
    assert_true(ok > 0 && bad > 0);
}

static void error_messages_are_safe(void **state)
{
    (void)state;
    const char *key = "sk-test-SECRET";
    const char *b1 = "{\"error\":{\"message\":\"Incorrect API key provided: sk-test-SECRET. "
                     "See docs\",\"type\":\"invalid_request_error\"}}";
    char *m = llm_parse_error_message(b1, strlen(b1), key, 200);
    assert_string_equal(m, "Incorrect API key provided: ***. See docs");
    free(m);

    const char *b2 = "{\"error\":\"line one\\nline\\ttwo\"}";
    m = llm_parse_error_message(b2, strlen(b2), NULL, 200);
    assert_string_equal(m, "line one line two");
    free(m);

    const char *b3 = "{\"message\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}";
    m = llm_parse_error_message(b3, strlen(b3), "", 8);
    /* 5 bytes fit before "...", cut back to a character boundary. */
    assert_string_equal(m, "\xc3\xa9\xc3\xa9...");
    assert_true(utf8_valid(m, strlen(m)));
    free(m);

    /* A key split by broken bytes is joined by sanitising, then masked. */
    const char *b4 = "{\"error\":\"key sk-test-\xd7\xd7SECRET here\"}";
    m = llm_parse_error_message(b4, strlen(b4), key, 200);
    assert_string_equal(m, "key *** here");
    free(m);

    /* Cut in the middle of the key: the key's first characters go too. */
    const char *b5 = "{\"error\":\"abcdef sk-test-SEC\"}";
    m = llm_parse_error_message(b5, strlen(b5), key, 14);
    assert_string_equal(m, "abcdef ...");
    free(m);

    const char *none[] = { "", "not json", "{\"choices\":[]}", "{\"error\":{\"code\":5}}",
                           "{\"error\":\"\"}" };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        assert_null(llm_parse_error_message(none[i], strlen(none[i]), key, 200));
}

static void clean_text_cases(void **state)
{
    (void)state;
    struct {
        const char *in, *out;
    } cases[] = {
        { "  plain  ", "plain" },
        { "'single quoted'", "single quoted" },
        { "\"unbalanced", "\"unbalanced" },
        { "Tweet:\n  text", "text" },
        { "\"\"", "" }, /* wrapped nothing */
        { "\"", "\"" },
        { "", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = xstrdup(cases[i].in);
        size_t n = llm_clean_text(s, strlen(s));
        assert_int_equal(n, strlen(cases[i].out));
        assert_string_equal(s, cases[i].out);
        free(s);
    }
}

/* ---- the prompt ---- */

static catalog *test_catalog(void)
{
    catalog *c = catalog_new();
    catalog_entry ct = { "myth_busting",
                         "Myth busting",
                         "Corrects a popular belief with evidence",
                         true,
                         80,
                         3000,
                         1.0 };
    catalog_entry vs = { "truth_seeker",
                         "Truth seeker",
                         "Skeptical, precise, unimpressed by hype",
                         true,
                         0,
                         3000,
                         1.0 };
    catalog_entry tp = {
        "sleep", "Sleep", "Sleep duration, timing and quality", true, 0, 3000, 1.0
    };
    assert_int_equal(catalog_add_entry(c, CATALOG_CONTENT_TYPE, &ct), ST_OK);
    assert_int_equal(catalog_add_entry(c, CATALOG_VOICE_STYLE, &vs), ST_OK);
    assert_int_equal(catalog_add_entry(c, CATALOG_TOPIC, &tp), ST_OK);
    catalog_fact f1 = { "sleep_duration",
                        "sleep",
                        "Adults sleeping under 6 hours had a 4.2x higher \"cold\" rate\nafter "
                        "rhinovirus exposure",
                        "Sleep only matters for tiredness",
                        "Immunity depends on sleep",
                        "Prather et al., Sleep",
                        2015,
                        true };
    catalog_fact f2 = { "sleep_caffeine",
                        "sleep",
                        "400 mg of caffeine 6 hours before bed cut total sleep by 41 minutes",
                        "Afternoon coffee is harmless",
                        "Timing matters",
                        "Drake et al., J Clin Sleep Med",
                        2013,
                        true };
    catalog_fact f3 = { "sleep_disabled",
                        "sleep",
                        "DISABLED FACT TEXT",
                        "A myth",
                        "A takeaway",
                        "Nobody",
                        2000,
                        false };
    assert_int_equal(catalog_add_fact(c, &f1), ST_OK);
    assert_int_equal(catalog_add_fact(c, &f2), ST_OK);
    assert_int_equal(catalog_add_fact(c, &f3), ST_OK);
    catalog_phrase p1 = { "game-changer", "corporate", true };
    catalog_phrase p2 = { "delve into", "ai", true };
    catalog_phrase p3 = { "retired phrase", "ai", false };
    assert_int_equal(catalog_add_phrase(c, &p1), ST_OK);
    assert_int_equal(catalog_add_phrase(c, &p2), ST_OK);
    assert_int_equal(catalog_add_phrase(c, &p3), ST_OK);
    assert_int_equal(catalog_finish(c), ST_OK);
    return c;
}

static llm_request test_request(const catalog *c)
{
    llm_request r;
    size_t n = 0;
    memset(&r, 0, sizeof r);
    r.cat = c;
    r.content_type = catalog_find(c, CATALOG_CONTENT_TYPE, "myth_busting");
    r.voice_style = catalog_find(c, CATALOG_VOICE_STYLE, "truth_seeker");
    r.topic = catalog_find(c, CATALOG_TOPIC, "sleep");
    r.facts = catalog_topic_facts(c, "sleep", &n);
    r.n_facts = n;
    r.platform = PLATFORM_X;
    r.min_chars = 80;
    r.max_chars = 280;
    return r;
}

static const char *msg_content(json_object *root, size_t i)
{
    json_object *msgs = NULL, *m, *v = NULL;
    assert_true(json_object_object_get_ex(root, "messages", &msgs));
    m = json_object_array_get_idx(msgs, i);
    assert_non_null(m);
    assert_true(json_object_object_get_ex(m, "content", &v));
    return json_object_get_string(v);
}

static void prompt_carries_entries_facts_and_rules(void **state)
{
    (void)state;
    catalog *c = test_catalog();
    llm_request r = test_request(c);
    r.avoid_text = "An earlier post about sleep";
    size_t len = 0;
    char err[160];
    char *body = llm_build_body(&r, "test-model", 0.8, &len, err, sizeof err);
    assert_non_null(body);
    assert_int_equal(strlen(body), len);
    json_object *root = json_tokener_parse(body);
    assert_non_null(root);

    json_object *v = NULL;
    assert_true(json_object_object_get_ex(root, "model", &v));
    assert_string_equal(json_object_get_string(v), "test-model");
    assert_true(json_object_object_get_ex(root, "max_tokens", &v));
    assert_int_equal(json_object_get_int(v), 280 / 2 + 64);
    assert_true(json_object_object_get_ex(root, "temperature", &v));
    assert_true(json_object_get_double(v) > 0.79 && json_object_get_double(v) < 0.81);
    assert_true(json_object_object_get_ex(root, "stream", &v));
    assert_false(json_object_get_boolean(v));

    json_object *msgs = NULL, *role = NULL;
    assert_true(json_object_object_get_ex(root, "messages", &msgs));
    assert_int_equal(json_object_array_length(msgs), 2);
    assert_true(json_object_object_get_ex(json_object_array_get_idx(msgs, 0), "role", &role));
    assert_string_equal(json_object_get_string(role), "system");
    assert_true(json_object_object_get_ex(json_object_array_get_idx(msgs, 1), "role", &role));
    assert_string_equal(json_object_get_string(role), "user");

    /* The system message states every gate's rule. */
    const char *sys = msg_content(root, 0);
    const char *rules[] = { "between 80 and 280 characters",
                            "X allows 280",
                            "Third person",
                            "\"I\"",
                            "credentials",
                            "diagnose",
                            "doses",
                            "cures",
                            "No hashtags",
                            "thread markers",
                            "one emoji",
                            "\"game-changer\"",
                            "\"delve into\"",
                            "post text only" };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (strstr(sys, rules[i]) == NULL)
            fail_msg("system message lacks \"%s\":\n%s", rules[i], sys);
    assert_null(strstr(sys, "retired phrase")); /* disabled phrases are not listed */

    /* The user message carries the entries and the enabled facts verbatim. */
    const char *user = msg_content(root, 1);
    const char *parts[] = { "Myth busting",
                            "Corrects a popular belief",
                            "Truth seeker",
                            "Skeptical, precise",
                            "Topic: Sleep",
                            "X (at most 280 characters)",
                            "4.2x higher \"cold\" rate\nafter rhinovirus exposure",
                            "Prather et al., Sleep, 2015",
                            "400 mg of caffeine",
                            "Drake et al., J Clin Sleep Med, 2013",
                            "Common belief: Afternoon coffee is harmless",
                            "An earlier post about sleep" };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (strstr(user, parts[i]) == NULL)
            fail_msg("user message lacks \"%s\":\n%s", parts[i], user);
    assert_null(strstr(user, "DISABLED FACT TEXT"));
    json_object_put(root);
    free(body);

    /* fact_key narrows the offer to one fact; no model means no "model". */
    r.fact_key = "sleep_caffeine";
    body = llm_build_body(&r, "", -1, &len, err, sizeof err);
    assert_non_null(body);
    root = json_tokener_parse(body);
    assert_false(json_object_object_get_ex(root, "model", &v));
    assert_false(json_object_object_get_ex(root, "temperature", &v));
    user = msg_content(root, 1);
    assert_non_null(strstr(user, "400 mg of caffeine"));
    assert_null(strstr(user, "rhinovirus"));
    json_object_put(root);
    free(body);

    /* LinkedIn: its own limit; caller bounds above the platform are capped. */
    r.fact_key = NULL;
    r.platform = PLATFORM_LINKEDIN;
    r.min_chars = 0;
    r.max_chars = 0;
    body = llm_build_body(&r, "m", 0.8, &len, err, sizeof err);
    root = json_tokener_parse(body);
    assert_non_null(strstr(msg_content(root, 0), "at most 3000 characters"));
    json_object_object_get_ex(root, "max_tokens", &v);
    assert_int_equal(json_object_get_int(v), 3000 / 2 + 64);
    json_object_put(root);
    free(body);
    catalog_free(c);
}

static void prompt_refuses_incomplete_requests(void **state)
{
    (void)state;
    catalog *c = test_catalog();
    size_t len = 0;
    char err[160];

    llm_request r = test_request(c);
    r.topic = NULL;
    assert_null(llm_build_body(&r, "m", 0.8, &len, err, sizeof err));
    assert_non_null(strstr(err, "required"));

    r = test_request(c);
    r.platform = PLATFORM_UNSPECIFIED;
    assert_null(llm_build_body(&r, "m", 0.8, &len, err, sizeof err));
    assert_non_null(strstr(err, "platform"));

    r = test_request(c);
    r.fact_key = "sleep_disabled";
    assert_null(llm_build_body(&r, "m", 0.8, &len, err, sizeof err));
    assert_non_null(strstr(err, "no enabled fact"));

    r = test_request(c);
    r.n_facts = 0;
    assert_null(llm_build_body(&r, "m", 0.8, &len, err, sizeof err));

    r = test_request(c);
    r.avoid_text = "bad \xff utf-8";
    assert_null(llm_build_body(&r, "m", 0.8, &len, err, sizeof err));
    catalog_free(c);
}

static void backoff_schedule(void **state)
{
    (void)state;
    /* Exponential with jitter over [half, full]. */
    assert_int_equal(llm_backoff_ms(1, 250, 4000, -1, 0.0), 125);
    assert_int_equal(llm_backoff_ms(1, 250, 4000, -1, 0.999999), 249);
    assert_int_equal(llm_backoff_ms(3, 250, 4000, -1, 0.0), 500);
    assert_int_equal(llm_backoff_ms(10, 250, 4000, -1, 0.0), 2000);
    assert_true(llm_backoff_ms(10, 250, 4000, -1, 0.99) <= 4000);
    /* Retry-After is a floor, with a little jitter (10%, at most 250 ms). */
    assert_int_equal(llm_backoff_ms(1, 250, 4000, 2000, 0.0), 2000);
    assert_int_equal(llm_backoff_ms(1, 250, 4000, 2000, 0.5), 2100);
    assert_int_equal(llm_backoff_ms(1, 250, 4000, 10000, 0.5), 10125);
    assert_int_equal(llm_backoff_ms(1, 250, 4000, 0, 0.5), 0);
    /* Out-of-range randomness is clamped, not trusted. */
    assert_int_equal(llm_backoff_ms(1, 250, 4000, -1, 7.0), 125);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_good_responses),
        cmocka_unit_test(rejects_malformed_responses),
        cmocka_unit_test(large_content_parses),
        cmocka_unit_test(survives_mutations),
        cmocka_unit_test(error_messages_are_safe),
        cmocka_unit_test(clean_text_cases),
        cmocka_unit_test(prompt_carries_entries_facts_and_rules),
        cmocka_unit_test(prompt_refuses_incomplete_requests),
        cmocka_unit_test(backoff_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
