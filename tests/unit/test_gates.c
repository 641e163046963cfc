/* Unit tests for the content gates: the ValidateText table in
 * tests/data/gates_cases.tsv (every gate's verdict on every text), then the
 * fail-closed paths, the duplicate gate's nearest match, window, exclusion
 * and threshold, the emoji counter and the gates' scores. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "catalog.h"
#include "claims.h"
#include "gates.h"
#include "test_catalog_seed.h"
#include "textsim.h"

#define NOW_MS 1750000000000LL
#define DAY_MS 86400000LL

static catalog *cat;

static int group_setup(void **state)
{
    (void)state;
    cat = seed_catalog_load();
    return cat != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    catalog_free(cat);
    return 0;
}

/* Undoes the \n, \t and \\ escapes in place. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r != '\0'; r++) {
        if (*r == '\\' && r[1] != '\0') {
            r++;
            *w++ = *r == 'n' ? '\n' : *r == 't' ? '\t' : *r;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* Splits line at tabs into at most max fields; returns the count. */
static int split_tabs(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        char *tab = strchr(p, '\t');
        if (tab == NULL)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    return n;
}

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay != '\0'; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return true;
    return n == 0;
}

static void gates_table(void **state)
{
    (void)state;
    size_t len;
    char *data = seed_read_file(HERALD_GATES_CASES, &len);
    textsim_index *recent = textsim_index_new();
    int cases = 0, failures = 0, lineno = 0;
    int fails_per_gate[GATE_COUNT] = { 0 }, passes_per_gate[GATE_COUNT] = { 0 };

    assert_non_null(data);
    for (char *line = strtok(data, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char *f[6] = { 0 };
        lineno++;
        if (line[0] == '#' || line[0] == '\0')
            continue;
        int n = split_tabs(line, f, 6);
        if (strcmp(f[0], "recent") == 0) {
            assert_int_equal(n, 4);
            unescape(f[3]);
            int64_t age_days = strtoll(f[2], NULL, 10);
            assert_int_equal(
                textsim_index_add(recent, f[1], f[3], strlen(f[3]), NOW_MS - age_days * DAY_MS),
                ST_OK);
            continue;
        }
        assert_string_equal(f[0], "case");
        assert_true(n == 4 || n == 5);
        platform_id p = platform_from_key(f[1]);
        assert_int_not_equal(p, PLATFORM_UNSPECIFIED);
        assert_int_equal(strlen(f[2]), GATE_COUNT);
        unescape(f[3]);

        gates_input in = { .text = f[3],
                           .len = strlen(f[3]),
                           .platform = p,
                           .cat = cat,
                           .recent = recent,
                           .now_ms = NOW_MS };
        gates_report rep;
        gates_validate_all(&in, NULL, &rep);
        cases++;

        bool row_ok = true;
        const gate_verdict *first_fail = NULL;
        for (int g = 0; g < GATE_COUNT; g++) {
            const gate_verdict *v = &rep.verdicts[g];
            bool want_pass = f[2][g] == 'P';
            assert_true(f[2][g] == 'P' || f[2][g] == 'F');
            assert_int_equal(v->gate, g + 1);
            if (want_pass)
                passes_per_gate[g]++;
            else
                fails_per_gate[g]++;
            if (v->pass != want_pass) {
                fprintf(stderr, "line %d gate %s: want %s, got %s (%s): %s\n", lineno,
                        gate_name(g + 1), want_pass ? "PASS" : "FAIL", v->pass ? "PASS" : "FAIL",
                        v->reason, f[3]);
                row_ok = false;
            }
            /* a pass has no reason; a fail always says why */
            if (v->pass && v->reason[0] != '\0') {
                fprintf(stderr, "line %d gate %s passed with a reason: %s\n", lineno,
                        gate_name(g + 1), v->reason);
                row_ok = false;
            }
            if (!v->pass && v->reason[0] == '\0')
                row_ok = false;
            if (!v->pass && first_fail == NULL)
                first_fail = v;
        }
        bool all_pass = strcmp(f[2], "PPPPPPP") == 0;
        if (rep.pass != all_pass)
            row_ok = false;
        if (n == 5 && (first_fail == NULL || !contains_ci(first_fail->reason, f[4]))) {
            fprintf(stderr, "line %d: reason \"%s\" lacks \"%s\"\n", lineno,
                    first_fail ? first_fail->reason : "(none)", f[4]);
            row_ok = false;
        }
        failures += !row_ok;
    }
    printf("gates table: %d texts x %d gates checked, %d rows wrong\n", cases, GATE_COUNT,
           failures);
    assert_int_equal(failures, 0);
    assert_true(cases >= 40);
    /* the table exercises both verdicts of every gate */
    for (int g = 0; g < GATE_COUNT; g++) {
        assert_true(fails_per_gate[g] >= 3);
        assert_true(passes_per_gate[g] >= 3);
    }
    textsim_index_free(recent);
    free(data);
}

static void gates_fail_closed(void **state)
{
    (void)state;
    const char *ok = "Short sleepers had a 12% higher risk of dying (Cappuccio et al., 2010).";
    textsim_index *empty = textsim_index_new();
    gates_report rep;

    /* no banned-phrase list, no recent posts, no platform */
    gates_input in = { .text = ok,
                       .len = strlen(ok),
                       .platform = PLATFORM_X,
                       .cat = NULL,
                       .recent = NULL,
                       .now_ms = NOW_MS };
    gates_validate_all(&in, NULL, &rep);
    assert_false(rep.pass);
    assert_false(rep.verdicts[GATE_BANNED_PHRASES - 1].pass);
    assert_non_null(strstr(rep.verdicts[GATE_BANNED_PHRASES - 1].reason, "unavailable"));
    assert_false(rep.verdicts[GATE_DUPLICATE - 1].pass);
    assert_non_null(strstr(rep.verdicts[GATE_DUPLICATE - 1].reason, "unavailable"));
    assert_true(rep.verdicts[GATE_LENGTH - 1].pass);

    in.cat = cat;
    in.recent = empty;
    in.platform = PLATFORM_UNSPECIFIED;
    gates_validate_all(&in, NULL, &rep);
    assert_false(rep.verdicts[GATE_LENGTH - 1].pass);
    assert_true(rep.verdicts[GATE_DUPLICATE - 1].pass);
    assert_false(rep.has_nearest);

    /* invalid UTF-8, an embedded NUL, NULL and an oversized text fail every gate */
    static const char bad[] = "Sleep \xff\xfe matters";
    static const char nul[] = "Sleep\0matters";
    struct {
        const char *text;
        size_t len;
    } broken[] = { { bad, sizeof(bad) - 1 }, { nul, sizeof(nul) - 1 }, { NULL, 0 } };
    for (size_t k = 0; k < sizeof(broken) / sizeof(broken[0]); k++) {
        gates_input b = { .text = broken[k].text,
                          .len = broken[k].len,
                          .platform = PLATFORM_X,
                          .cat = cat,
                          .recent = empty,
                          .now_ms = NOW_MS };
        gates_validate_all(&b, NULL, &rep);
        assert_false(rep.pass);
        for (int g = 0; g < GATE_COUNT; g++) {
            assert_false(rep.verdicts[g].pass);
            assert_true(rep.verdicts[g].reason[0] != '\0');
        }
    }
    char *huge = malloc(GATES_MAX_TEXT_BYTES + 2);
    memset(huge, 'a', GATES_MAX_TEXT_BYTES + 1);
    huge[GATES_MAX_TEXT_BYTES + 1] = '\0';
    gates_input h = { .text = huge,
                      .len = GATES_MAX_TEXT_BYTES + 1,
                      .platform = PLATFORM_LINKEDIN,
                      .cat = cat,
                      .recent = empty,
                      .now_ms = NOW_MS };
    gates_validate_all(&h, NULL, &rep);
    for (int g = 0; g < GATE_COUNT; g++)
        assert_false(rep.verdicts[g].pass);
    free(huge);

    /* a broken config fails the gates that depend on it */
    gates_config cfg;
    gates_config_default(&cfg);
    cfg.dup_threshold = 1.5;
    in.platform = PLATFORM_X;
    gates_validate_all(&in, &cfg, &rep);
    assert_false(rep.verdicts[GATE_DUPLICATE - 1].pass);
    gates_config_default(&cfg);
    cfg.max_emoji = -1;
    gates_validate_all(&in, &cfg, &rep);
    assert_false(rep.verdicts[GATE_EMOJI - 1].pass);
    textsim_index_free(empty);
}

static void gates_duplicate_reports_nearest(void **state)
{
    (void)state;
    const char *a = "Forming a new daily habit took a median of 66 days to become automatic, "
                    "with a range of 18 to 254 days (Lally et al., 2010).";
    const char *b = "Adults sleeping under 6 hours a night were 4.2 times more likely to catch "
                    "a cold after virus exposure (Prather et al., 2015).";
    const char *edit = "Forming a new daily habit took a median of 66 days to become "
                       "automatic, with a range of 18 to 254 days, per Lally et al., 2010.";
    textsim_index *ix = textsim_index_new();
    gates_config cfg;
    gate_verdict v;
    textsim_match m;
    bool has;

    gates_config_default(&cfg);
    assert_int_equal(textsim_index_add(ix, "post-a", a, strlen(a), NOW_MS - 3 * DAY_MS), ST_OK);
    assert_int_equal(textsim_index_add(ix, "post-b", b, strlen(b), NOW_MS - 1 * DAY_MS), ST_OK);
    assert_int_equal(textsim_index_add(ix, "", b, strlen(b), NOW_MS), ST_INVALID);
    assert_int_equal(textsim_index_count(ix), 2);

    gates_check_duplicate(edit, strlen(edit), ix, &cfg, NOW_MS, NULL, &v, &m, &has);
    assert_false(v.pass);
    assert_true(has);
    assert_string_equal(m.id, "post-a");
    assert_false(m.exact);
    assert_true(m.score >= cfg.dup_threshold && m.score < 1.0);
    assert_true(v.has_score && v.has_threshold);
    assert_true(v.score == m.score);
    assert_true(v.threshold == cfg.dup_threshold);
    assert_non_null(strstr(v.reason, "post-a"));
    assert_int_equal(strncmp(m.excerpt, "Forming a new daily habit", 25), 0);
    assert_int_equal(m.created_ms, NOW_MS - 3 * DAY_MS);

    /* the threshold is configurable: just above the score, the edit passes
     * and the nearest post is still reported */
    double score = m.score;
    cfg.dup_threshold = score + 0.01;
    gates_check_duplicate(edit, strlen(edit), ix, &cfg, NOW_MS, NULL, &v, &m, &has);
    assert_true(v.pass);
    assert_true(has);
    assert_string_equal(m.id, "post-a");
    cfg.dup_threshold = score - 0.01;
    gates_check_duplicate(edit, strlen(edit), ix, &cfg, NOW_MS, NULL, &v, &m, &has);
    assert_false(v.pass);

    /* the window: with 2 days, post-a (3 days old) no longer counts */
    gates_config_default(&cfg);
    cfg.dup_window_days = 2;
    gates_check_duplicate(edit, strlen(edit), ix, &cfg, NOW_MS, NULL, &v, &m, &has);
    assert_true(v.pass);
    assert_string_equal(m.id, "post-b");
    assert_true(m.score < 0.3);

    /* re-checking post-a itself (UpdateDraft): it is excluded by id */
    gates_config_default(&cfg);
    gates_check_duplicate(a, strlen(a), ix, &cfg, NOW_MS, "post-a", &v, &m, &has);
    assert_true(v.pass);
    assert_string_equal(m.id, "post-b");
    gates_check_duplicate(a, strlen(a), ix, &cfg, NOW_MS, NULL, &v, &m, &has);
    assert_false(v.pass);
    assert_true(m.exact);
    assert_true(m.score == 1.0);
    assert_non_null(strstr(v.reason, "same normalised text"));

    /* validate_all names the nearest post too */
    gates_input in = { .text = edit,
                       .len = strlen(edit),
                       .platform = PLATFORM_THREADS,
                       .cat = cat,
                       .recent = ix,
                       .now_ms = NOW_MS };
    gates_report rep;
    gates_validate_all(&in, NULL, &rep);
    assert_true(rep.has_nearest);
    assert_string_equal(rep.nearest.id, "post-a");
    assert_false(rep.pass);
    textsim_index_free(ix);
}

static void gates_scores_and_bounds(void **state)
{
    (void)state;
    gate_verdict v;
    char text[400];

    memset(text, 'a', 250);
    text[250] = '\0';
    gates_check_length(text, 250, PLATFORM_X, 0, 0, &v);
    assert_true(v.pass);
    assert_true(v.score == 250 && v.threshold == 280);
    /* the catalog bounds tighten the platform's */
    gates_check_length(text, 250, PLATFORM_LINKEDIN, 0, 200, &v);
    assert_false(v.pass);
    assert_true(v.threshold == 200);
    assert_non_null(strstr(v.reason, "content bounds"));
    gates_check_length(text, 250, PLATFORM_LINKEDIN, 300, 0, &v);
    assert_false(v.pass);
    assert_non_null(strstr(v.reason, "minimum"));
    /* code points, not bytes: 280 two-byte characters fit X */
    char wide[600];
    for (int k = 0; k < 280; k++)
        memcpy(wide + 2 * k, "\xc3\xa9", 2);
    gates_check_length(wide, 560, PLATFORM_X, 0, 0, &v);
    assert_true(v.pass);
    gates_check_length(wide, 560, PLATFORM_BLUESKY, 0, 0, &v);
    assert_true(v.pass);
    memcpy(wide + 560, "\xc3\xa9", 2);
    gates_check_length(wide, 562, PLATFORM_X, 0, 0, &v);
    assert_false(v.pass);

    gates_check_emoji("a \xf0\x9f\x98\xb4 b", 8, 1, &v);
    assert_true(v.pass);
    assert_true(v.score == 1 && v.threshold == 1);
    gates_check_emoji("a \xf0\x9f\x98\xb4 b", 8, 0, &v);
    assert_false(v.pass);
}

static void gates_count_emoji_table(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int want;
    } cases[] = {
        { "no emoji at all", 0 },
        { "\xf0\x9f\x98\x80", 1 },                                         /* U+1F600 */
        { "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", 1 },                         /* thumbs up + tone */
        { "\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb", 1 },             /* woman technologist */
        { "\xf0\x9f\x8f\xb3\xef\xb8\x8f\xe2\x80\x8d\xf0\x9f\x8c\x88", 1 }, /* rainbow flag */
        { "\xf0\x9f\x87\xaf\xf0\x9f\x87\xb5", 1 },                         /* JP flag */
        { "\xf0\x9f\x87\xaf\xf0\x9f\x87\xb5\xf0\x9f\x87\xab\xf0\x9f\x87\xb7", 2 },
        { "#\xef\xb8\x8f\xe2\x83\xa3", 1 }, /* keycap # */
        { "\xe2\x9d\xa4", 0 },              /* heart, text style */
        { "\xe2\x9d\xa4\xef\xb8\x8f", 1 },  /* heart + FE0F */
        { "\xe2\x9c\x85 done", 1 },         /* U+2705 */
        { "\xc2\xa9 \xe2\x84\xa2", 0 },     /* (c) TM */
        { "\xf0\x9f\x8f\xbd", 1 },          /* lone skin tone */
        { "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 3 },
        { "a\xe2\x80\x8d"
          "b",
          0 }, /* stray ZWJ */
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        int got = gates_count_emoji(cases[k].text, strlen(cases[k].text));
        if (got != cases[k].want)
            fail_msg("case %zu: %d emoji, want %d", k, got, cases[k].want);
    }
    assert_int_equal(gates_count_emoji("\xff", 1), -1);
}

static void gates_banned_phrases_follow_catalog(void **state)
{
    (void)state;
    catalog *c = catalog_new();
    catalog_phrase on = { "circle back", "corporate", true };
    catalog_phrase off = { "synergy", "corporate", false };
    gate_verdict v;
    const char *t1 = "Teams should CIRCLE-BACK on sleep policy.";
    const char *t2 = "The synergy between sleep and exercise is measurable.";

    assert_int_equal(catalog_add_phrase(c, &on), ST_OK);
    assert_int_equal(catalog_add_phrase(c, &off), ST_OK);
    /* not finished: the gate cannot trust the list */
    gates_check_banned(t2, strlen(t2), c, &v);
    assert_false(v.pass);
    assert_int_equal(catalog_finish(c), ST_OK);
    gates_check_banned(t1, strlen(t1), c, &v);
    assert_false(v.pass);
    assert_non_null(strstr(v.reason, "circle back"));
    assert_non_null(strstr(v.reason, "CIRCLE-BACK"));
    /* a disabled phrase is not enforced */
    gates_check_banned(t2, strlen(t2), c, &v);
    assert_true(v.pass);
    catalog_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gates_table),
        cmocka_unit_test(gates_fail_closed),
        cmocka_unit_test(gates_duplicate_reports_nearest),
        cmocka_unit_test(gates_scores_and_bounds),
        cmocka_unit_test(gates_count_emoji_table),
        cmocka_unit_test(gates_banned_phrases_follow_catalog),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
