/* Unit tests for textsim: the normalisation policy, fingerprints and their
 * cache encoding, the index, and the calibration of the default threshold
 * on drafts from the real catalog (light edits must score above it, distinct
 * drafts below). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "catalog.h"
#include "generator.h"
#include "test_catalog_seed.h"
#include "textsim.h"

static void check_norm(const char *in, const char *want)
{
    strbuf b = { 0 };
    assert_int_equal(textsim_normalize(in, strlen(in), &b), ST_OK);
    if (strcmp(b.data, want) != 0)
        fail_msg("normalize(\"%s\") = \"%s\", want \"%s\"", in, b.data, want);
    strbuf_fini(&b);
}

static void textsim_normalisation_policy(void **state)
{
    (void)state;
    check_norm("Sleep, Matters!", "sleep matters");
    check_norm("  12% of adults -- 7.5 h\n\n", "12 of adults 7 5 h");
    check_norm("Don\xe2\x80\x99t DON'T dont", "dont dont dont");
    check_norm("See https://example.org/a?b=1 and www.x.com now", "see and now");
    check_norm("#sleep @herald \xf0\x9f\x98\xb4 rest", "sleep herald rest");
    check_norm("\xc3\x89T\xc3\x89 \xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9 \xc3\xa9t\xc3\xa9");
    check_norm("", "");
    check_norm("!!!", "");
    strbuf b = { 0 };
    assert_int_equal(textsim_normalize("\xff", 1, &b), ST_INVALID);
    strbuf_fini(&b);

    /* digits are kept: a different number is a different text */
    assert_true(textsim_compare("lost 5 kg", 9, "lost 50 kg", 10) < 1.0);
    assert_true(textsim_compare("Sleep matters.", 14, "sleep   MATTERS", 15) == 1.0);
    assert_true(textsim_compare("a", 1, "\xff", 1) < 0);
}

static void textsim_fingerprint_roundtrip(void **state)
{
    (void)state;
    const char *t = "Short sleepers had a 12% higher risk of dying during follow-up.";
    textsim_fp fp = { 0 }, back = { 0 };
    strbuf enc = { 0 };

    assert_int_equal(textsim_fp_compute(t, strlen(t), &fp), ST_OK);
    assert_true(fp.n > 40);
    for (size_t k = 1; k < fp.n; k++)
        assert_true(fp.grams[k - 1] < fp.grams[k]); /* a sorted set */
    textsim_fp_encode(&fp, &enc);
    assert_int_equal(enc.len, 17 + 8 * fp.n);
    assert_int_equal(textsim_fp_decode(enc.data, enc.len, &back), ST_OK);
    assert_true(back.hash == fp.hash && back.n == fp.n);
    assert_memory_equal(back.grams, fp.grams, fp.n * sizeof(*fp.grams));
    assert_true(textsim_similarity(&fp, &back) == 1.0);

    /* malformed encodings are refused */
    assert_int_equal(textsim_fp_decode(enc.data, enc.len - 1, &back), ST_INVALID);
    assert_int_equal(back.n, 0);
    assert_int_equal(textsim_fp_decode(enc.data, 5, &back), ST_INVALID);
    enc.data[0] = 9;
    assert_int_equal(textsim_fp_decode(enc.data, enc.len, &back), ST_INVALID);
    enc.data[0] = 1;
    memcpy(enc.data + 17, enc.data + 25, 8); /* duplicate gram: not a set */
    assert_int_equal(textsim_fp_decode(enc.data, enc.len, &back), ST_INVALID);

    textsim_index *ix = textsim_index_new();
    assert_int_equal(textsim_index_add_fp(ix, "cached", &fp, NULL, 5), ST_OK);
    textsim_match m;
    assert_true(textsim_index_nearest(ix, &fp, INT64_MIN, NULL, &m));
    assert_true(m.exact);
    assert_string_equal(m.excerpt, "");
    assert_false(textsim_index_nearest(ix, &fp, 6, NULL, &m)); /* too old */
    assert_false(textsim_index_nearest(ix, &fp, INT64_MIN, "cached", &m));
    assert_null(m.id);
    textsim_index_free(ix);
    textsim_index_free(NULL);

    strbuf_fini(&enc);
    textsim_fp_fini(&fp);
    textsim_fp_fini(&back);
}

/* ---- calibration of TEXTSIM_DEFAULT_THRESHOLD --------------------------- */

typedef void (*edit_fn)(const char *in, strbuf *out);

static void edit_swap_word(const char *in, strbuf *out)
{
    /* replace the fifth word */
    const char *p = in;
    for (int w = 0; w < 4 && (p = strchr(p, ' ')) != NULL; w++)
        p++;
    const char *e = p ? strchr(p, ' ') : NULL;
    if (p == NULL || e == NULL) {
        strbuf_puts(out, in);
        strbuf_puts(out, " indeed");
        return;
    }
    strbuf_append(out, in, (size_t)(p - in));
    strbuf_puts(out, "notably");
    strbuf_puts(out, e);
}

static void edit_case_punct(const char *in, strbuf *out)
{
    for (const char *p = in; *p; p++) {
        char ch = *p;
        if (ch >= 'a' && ch <= 'z' && (p - in) % 3 == 0)
            ch = (char)(ch - 32);
        if (ch == '.' || ch == ',' || ch == ':')
            ch = ';';
        strbuf_putc(out, ch);
    }
}

static void edit_add_emoji_tag(const char *in, strbuf *out)
{
    strbuf_puts(out, in);
    strbuf_puts(out, " \xf0\x9f\x92\xa4 #sleep");
}

static void edit_reorder(const char *in, strbuf *out)
{
    /* move the first sentence to the end */
    const char *dot = strstr(in, ". ");
    if (dot == NULL) {
        strbuf_puts(out, in);
        return;
    }
    strbuf_puts(out, dot + 2);
    strbuf_putc(out, ' ');
    strbuf_append(out, in, (size_t)(dot - in) + 1);
}

static void edit_append_sentence(const char *in, strbuf *out)
{
    strbuf_puts(out, in);
    strbuf_puts(out, " Worth a second look.");
}

static void edit_drop_last_word(const char *in, strbuf *out)
{
    const char *sp = strrchr(in, ' ');
    strbuf_append(out, in, sp ? (size_t)(sp - in) : strlen(in));
    strbuf_putc(out, '.');
}

static void textsim_threshold_calibration(void **state)
{
    (void)state;
    static const edit_fn edits[] = { edit_swap_word, edit_case_punct,      edit_add_emoji_tag,
                                     edit_reorder,   edit_append_sentence, edit_drop_last_word };
    static const char *const types[] = { "myth_busting", "practical_tip", "story_insight",
                                         "research_breakdown" };
    static const char *const styles[] = { "truth_seeker", "storyteller", "practical_optimizer",
                                          "curious_investigator" };
    static const platform_id plats[] = { PLATFORM_X, PLATFORM_BLUESKY, PLATFORM_THREADS,
                                         PLATFORM_LINKEDIN };
    enum { N = 64 };
    catalog *cat = seed_catalog_load();
    char *texts[N];
    const catalog_fact *facts[N];
    double edit_min = 1.0, other_max = 0.0;
    double same_fact_sum = 0;
    int same_fact_n = 0;

    assert_non_null(cat);
    for (int i = 0; i < N; i++) {
        generator_request rq = { types[i % 4],
                                 styles[(i / 4) % 4],
                                 catalog_entry_at(cat, CATALOG_TOPIC, (size_t)i % 3)->key,
                                 plats[(i / 16) % 4],
                                 300 + (uint64_t)i,
                                 NULL,
                                 NULL,
                                 0,
                                 NULL,
                                 0 };
        generator_draft d;
        char err[200];
        assert_int_equal(generator_compose(cat, &rq, &d, err, sizeof(err)), ST_OK);
        texts[i] = d.text;
        facts[i] = d.fact;
        d.text = NULL;
        generator_draft_fini(&d);
    }
    /* every light edit of a post stays above the threshold */
    for (int i = 0; i < N; i++) {
        for (size_t e = 0; e < sizeof(edits) / sizeof(edits[0]); e++) {
            strbuf b = { 0 };
            edits[e](texts[i], &b);
            double s = textsim_compare(texts[i], strlen(texts[i]), b.data, b.len);
            if (s < edit_min)
                edit_min = s;
            if (s < TEXTSIM_DEFAULT_THRESHOLD)
                fail_msg("edit %zu of draft %d scores %.3f:\n%s\n---\n%s", e, i, s, texts[i],
                         b.data);
            strbuf_fini(&b);
        }
    }
    /* drafts on different facts are far below it; drafts sharing a fact
     * are below it on average */
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) {
            double s = textsim_compare(texts[i], strlen(texts[i]), texts[j], strlen(texts[j]));
            if (facts[i] == facts[j]) {
                same_fact_sum += s;
                same_fact_n++;
            } else if (s > other_max) {
                other_max = s;
            }
        }
    printf("threshold %.2f: light edits score >= %.3f; drafts on different facts <= %.3f; "
           "drafts sharing a fact average %.3f (%d pairs)\n",
           TEXTSIM_DEFAULT_THRESHOLD, edit_min, other_max,
           same_fact_n ? same_fact_sum / same_fact_n : 0.0, same_fact_n);
    assert_true(edit_min >= 0.80);
    assert_true(other_max < 0.40);
    assert_true(same_fact_n > 0 && same_fact_sum / same_fact_n < 0.6);
    for (int i = 0; i < N; i++)
        free(texts[i]);
    catalog_free(cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(textsim_normalisation_policy),
        cmocka_unit_test(textsim_fingerprint_roundtrip),
        cmocka_unit_test(textsim_threshold_calibration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
