/* Unit tests for the built-in generator over the real seed catalog:
 * determinism, errors, 500 drafts through every gate, 200 drafts on one topic
 * against each other, and how recognisable each (type, style) pair is. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "catalog.h"
#include "gates.h"
#include "generator.h"
#include "test_catalog_seed.h"
#include "textscan.h"
#include "textsim.h"

static const char *const TYPES[] = {
    "myth_busting",       "counterintuitive_insight", "practical_tip",
    "research_breakdown", "curious_observation",      "story_insight",
};
static const char *const STYLES[] = {
    "research_enthusiast",     "truth_seeker", "practical_optimizer", "curious_investigator",
    "evidence_based_advocate", "storyteller",
};
static const platform_id PLATFORMS[] = { PLATFORM_X, PLATFORM_THREADS, PLATFORM_BLUESKY,
                                         PLATFORM_LINKEDIN };
#define NT 6
#define NS 6
#define NPAIR (NT * NS)

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

static const char *topic_key(size_t i)
{
    return catalog_entry_at(cat, CATALOG_TOPIC, i % catalog_count(cat, CATALOG_TOPIC))->key;
}

/* One draft, with the recent posts as history when ix is not NULL (as
 * GenerateDraft does); fails the test on any error. */
static void gen_with(const char *type, const char *style, const char *topic, platform_id p,
                     uint64_t seed, const textsim_index *ix, generator_draft *d)
{
    generator_request rq = { type, style, topic, p, seed, NULL, ix, INT64_MIN, NULL, 0 };
    char err[256];
    status st = generator_compose(cat, &rq, d, err, sizeof(err));
    if (st != ST_OK)
        fail_msg("generate %s/%s/%s/%s seed %llu: %s", type, style, topic, platform_key(p),
                 (unsigned long long)seed, err);
}

static void gen(const char *type, const char *style, const char *topic, platform_id p,
                uint64_t seed, generator_draft *d)
{
    gen_with(type, style, topic, p, seed, NULL, d);
}

static void generator_is_deterministic(void **state)
{
    (void)state;
    generator_draft a, b, c;
    gen("myth_busting", "truth_seeker", "sleep", PLATFORM_X, 42, &a);
    gen("myth_busting", "truth_seeker", "sleep", PLATFORM_X, 42, &b);
    assert_string_equal(a.text, b.text);
    assert_int_equal(a.chars, utf8_count(a.text, a.len));
    assert_int_equal(a.len, strlen(a.text));

    /* different seeds give different texts (not one of 20 repeats the first) */
    for (uint64_t s = 43; s < 63; s++) {
        gen("myth_busting", "truth_seeker", "sleep", PLATFORM_X, s, &c);
        assert_string_not_equal(a.text, c.text);
        generator_draft_fini(&c);
    }
    generator_draft_fini(&a);
    generator_draft_fini(&b);
}

static void generator_rejects_bad_requests(void **state)
{
    (void)state;
    generator_draft d;
    char err[256];
    generator_request rq = { "myth_busting", "truth_seeker", "sleep", PLATFORM_X, 1,
                             NULL,           NULL,           0,       NULL,       0 };

    rq.content_type = "listicle";
    assert_int_equal(generator_compose(cat, &rq, &d, err, sizeof(err)), ST_NOT_FOUND);
    assert_non_null(strstr(err, "listicle"));
    rq.content_type = "myth_busting";
    rq.topic = "astrology";
    assert_int_equal(generator_compose(cat, &rq, &d, err, sizeof(err)), ST_NOT_FOUND);
    rq.topic = "sleep";
    rq.platform = PLATFORM_UNSPECIFIED;
    assert_int_equal(generator_compose(cat, &rq, &d, err, sizeof(err)), ST_INVALID);
    rq.platform = PLATFORM_X;
    rq.voice_style = NULL;
    assert_int_equal(generator_compose(cat, &rq, &d, err, sizeof(err)), ST_INVALID);
    rq.voice_style = "truth_seeker";
    rq.fact_key = "nutrition_nuts"; /* exists, but not a sleep fact */
    assert_int_equal(generator_compose(cat, &rq, &d, err, sizeof(err)), ST_NOT_FOUND);
    rq.fact_key = "sleep_colds";
    assert_int_equal(generator_compose(cat, &rq, &d, err, sizeof(err)), ST_OK);
    assert_string_equal(d.fact->key, "sleep_colds");
    assert_non_null(strstr(d.text, "4.2 times"));
    generator_draft_fini(&d);
    assert_null(d.text);
    generator_draft_fini(NULL);

    assert_true(generator_supports("story_insight", "storyteller"));
    assert_false(generator_supports("listicle", "storyteller"));
}

/* A small catalog: a disabled type, a disabled fact, tight bounds and a
 * type the built-in templates do not know. */
static catalog *small_catalog(void)
{
    catalog *c = catalog_new();
    catalog_entry e = { "myth_busting", "Myth busting", "d", true, 0, 200, 1.0 };
    assert_int_equal(catalog_add_entry(c, CATALOG_CONTENT_TYPE, &e), ST_OK);
    e.key = "listicle";
    assert_int_equal(catalog_add_entry(c, CATALOG_CONTENT_TYPE, &e), ST_OK);
    e.key = "practical_tip";
    e.enabled = false;
    assert_int_equal(catalog_add_entry(c, CATALOG_CONTENT_TYPE, &e), ST_OK);
    e.key = "truth_seeker";
    e.enabled = true;
    e.max_chars = 3000;
    assert_int_equal(catalog_add_entry(c, CATALOG_VOICE_STYLE, &e), ST_OK);
    e.key = "sleep";
    assert_int_equal(catalog_add_entry(c, CATALOG_TOPIC, &e), ST_OK);
    e.key = "empty";
    assert_int_equal(catalog_add_entry(c, CATALOG_TOPIC, &e), ST_OK);
    catalog_fact f = { "a_fact",
                       "sleep",
                       "Sleepers in a study of 100 adults slept 7.5 hours.",
                       "Nobody sleeps 7.5 hours.",
                       "Sleep varies.",
                       "Someone et al., Sleep",
                       2020,
                       false };
    assert_int_equal(catalog_add_fact(c, &f), ST_OK);
    f.key = "b_fact";
    f.fact = "Adults in a trial of 80 people fell asleep 12 minutes faster in a dark room.";
    f.enabled = true;
    assert_int_equal(catalog_add_fact(c, &f), ST_OK);
    assert_int_equal(catalog_finish(c), ST_OK);
    return c;
}

static void generator_respects_catalog_state(void **state)
{
    (void)state;
    catalog *c = small_catalog();
    generator_draft d;
    char err[256];
    generator_request rq = { "myth_busting", "truth_seeker", "sleep", PLATFORM_LINKEDIN, 0, NULL };

    /* only the enabled fact is ever used, and the type's 200-char bound
     * wins over LinkedIn's 3000 */
    for (uint64_t s = 0; s < 50; s++) {
        rq.seed = s;
        assert_int_equal(generator_compose(c, &rq, &d, err, sizeof(err)), ST_OK);
        assert_string_equal(d.fact->key, "b_fact");
        assert_int_equal(d.max_chars, 200);
        assert_true(d.chars <= 200);
        generator_draft_fini(&d);
    }
    rq.content_type = "practical_tip";
    assert_int_equal(generator_compose(c, &rq, &d, err, sizeof(err)), ST_FAILED_PRECONDITION);
    assert_non_null(strstr(err, "disabled"));
    rq.content_type = "listicle";
    assert_int_equal(generator_compose(c, &rq, &d, err, sizeof(err)), ST_UNIMPLEMENTED);
    rq.content_type = "myth_busting";
    rq.topic = "empty";
    assert_int_equal(generator_compose(c, &rq, &d, err, sizeof(err)), ST_FAILED_PRECONDITION);
    rq.topic = "sleep";
    rq.fact_key = "a_fact";
    assert_int_equal(generator_compose(c, &rq, &d, err, sizeof(err)), ST_FAILED_PRECONDITION);

    int mn, mx;
    assert_int_equal(
        generator_length_bounds(c, "myth_busting", "truth_seeker", "sleep", PLATFORM_X, &mn, &mx),
        ST_OK);
    assert_int_equal(mx, 200);
    assert_int_equal(
        generator_length_bounds(c, "myth_busting", "truth_seeker", "nope", PLATFORM_X, &mn, &mx),
        ST_NOT_FOUND);
    catalog_free(c);
}

/* Every gate, with an index of every earlier draft (window covering all):
 * so the duplicate gate compares each draft with all the ones before it. */
static void check_all_gates(generator_draft *d, platform_id p, textsim_index *ix, const char *what)
{
    gates_report rep;
    gates_input in = {
        d->text, d->len, p, d->min_chars, d->max_chars, cat, ix, NULL, 1700000000000
    };
    gates_config cfg;
    gates_config_default(&cfg);
    cfg.dup_window_days = 0; /* everything indexed counts */
    gates_validate_all(&in, &cfg, &rep);
    if (!rep.pass) {
        for (int k = 0; k < GATE_COUNT; k++)
            if (!rep.verdicts[k].pass)
                fprintf(stderr, "%s: gate %s failed: %s\n", what, gate_name(k + 1),
                        rep.verdicts[k].reason);
        if (rep.has_nearest)
            fprintf(stderr, "nearest: %s\n", rep.nearest.excerpt);
        fail_msg("%s failed a gate:\n%s", what, d->text);
    }
}

static void check_no_banned_style(const char *text)
{
    /* the generator's own rules beyond the gates: third person, no links */
    textscan_tokens t;
    textscan_tokens_init(&t);
    assert_int_equal(textscan_tokenize(text, strlen(text), &t), ST_OK);
    for (size_t k = 0; k < t.n; k++) {
        const char *w = textscan_word(&t, k);
        if (strncmp(text + t.v[k].off, "US", 2) == 0)
            continue; /* the country */
        static const char *const first_person[] = { "i",  "i'm", "i've", "me",   "my",
                                                    "we", "our", "us",   "mine", NULL };
        for (int j = 0; first_person[j] != NULL; j++)
            if (strcmp(w, first_person[j]) == 0)
                fail_msg("first person \"%s\" in: %s", w, text);
    }
    textscan_tokens_fini(&t);
    assert_null(strstr(text, "http"));
    assert_null(strchr(text, '#'));
}

/* All pairs of n fingerprints: the highest similarity, its indices, and
 * how many pairs reach the threshold. */
static double max_pair_similarity(textsim_fp *fps, size_t n, size_t *ia, size_t *ib, size_t *over)
{
    double best = 0.0;
    *over = 0;
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n; b++) {
            double s = textsim_similarity(&fps[a], &fps[b]);
            *over += s >= TEXTSIM_DEFAULT_THRESHOLD;
            if (s > best) {
                best = s;
                *ia = a;
                *ib = b;
            }
        }
    return best;
}

/* Request i of the 500: every (type, style) pair in each block of 36; the
 * block shifts the topic (all 11) and the platform (all 4). */
static void request_500(size_t i, const char **type, const char **style, const char **topic,
                        platform_id *p)
{
    size_t pair = i % NPAIR, block = i / NPAIR;
    *type = TYPES[pair % NT];
    *style = STYLES[pair / NT];
    *p = PLATFORMS[(block + pair) % 4];
    *topic = topic_key(block + pair / 12);
}

/* The 500 drafts generated as GenerateDraft does it (the earlier drafts are
 * the history the generator and the duplicate gate see): every one passes
 * every gate, and no two of them are within the duplicate threshold. */
static void generator_500_drafts_pass_every_gate(void **state)
{
    (void)state;
    enum { N = 500 };
    char **texts = calloc(N, sizeof(*texts));
    textsim_fp *fps = calloc(N, sizeof(*fps));
    textsim_index *ix = textsim_index_new();
    size_t per_platform[PLATFORM_COUNT] = { 0 };
    size_t per_pair[NPAIR] = { 0 };
    int attempts = 0, max_attempts = 0;

    for (size_t i = 0; i < N; i++) {
        const char *type, *style, *topic;
        platform_id p;
        generator_draft d;
        char what[160];
        request_500(i, &type, &style, &topic, &p);
        gen_with(type, style, topic, p, 1000 + i, ix, &d);
        snprintf(what, sizeof(what), "draft %zu (%s/%s/%s/%s)", i, type, style, topic,
                 platform_key(p));
        check_all_gates(&d, p, ix, what);
        check_no_banned_style(d.text);
        char id[32];
        snprintf(id, sizeof(id), "d%zu", i);
        assert_int_equal(textsim_index_add(ix, id, d.text, d.len, 1700000000000), ST_OK);
        assert_int_equal(textsim_fp_compute(d.text, d.len, &fps[i]), ST_OK);
        per_platform[p]++;
        per_pair[i % NPAIR]++;
        attempts += d.attempts;
        if (d.attempts > max_attempts)
            max_attempts = d.attempts;
        texts[i] = d.text;
        d.text = NULL;
        generator_draft_fini(&d);
    }
    for (int k = 0; k < NPAIR; k++)
        assert_true(per_pair[k] >= 13);
    for (int k = 1; k < PLATFORM_COUNT; k++)
        assert_true(per_platform[k] >= 100);

    size_t a = 0, b = 0, over = 0;
    double worst = max_pair_similarity(fps, N, &a, &b, &over);
    printf("500 drafts with history: all 7 gates pass; max pairwise similarity %.3f "
           "(threshold %.2f); candidates per draft: mean %.2f, max %d\n",
           worst, TEXTSIM_DEFAULT_THRESHOLD, (double)attempts / N, max_attempts);
    if (worst >= TEXTSIM_DEFAULT_THRESHOLD)
        fail_msg("drafts %zu and %zu are near-duplicates (%.3f):\n%s\n---\n%s", a, b, worst,
                 texts[a], texts[b]);

    /* The same 500 requests without history: how often does the raw
     * generator repeat itself? Reported, and bounded: rare collisions are
     * what the history (and the gate) are for. */
    textsim_fp *raw = calloc(N, sizeof(*raw));
    for (size_t i = 0; i < N; i++) {
        const char *type, *style, *topic;
        platform_id p;
        generator_draft d;
        request_500(i, &type, &style, &topic, &p);
        gen(type, style, topic, p, 1000 + i, &d);
        assert_int_equal(textsim_fp_compute(d.text, d.len, &raw[i]), ST_OK);
        generator_draft_fini(&d);
    }
    double raw_worst = max_pair_similarity(raw, N, &a, &b, &over);
    printf("500 drafts without history: max pairwise similarity %.3f, %zu of %d pairs at or "
           "over the threshold\n",
           raw_worst, over, N * (N - 1) / 2);
    assert_true(over <= 10);

    for (size_t i = 0; i < N; i++) {
        free(texts[i]);
        textsim_fp_fini(&fps[i]);
        textsim_fp_fini(&raw[i]);
    }
    free(raw);
    free(texts);
    free(fps);
    textsim_index_free(ix);
}

/* 200 consecutive drafts (seeds s..s+199) on one topic, the arms rotating
 * through every (type, style) pair as a scheduler would, each generated with
 * the earlier ones as history: all 19,900 pairs stay under the threshold, on
 * every platform, for the topic with the fewest facts too. */
static void generator_200_drafts_one_topic(void **state)
{
    (void)state;
    enum { N = 200 };
    static const char *const topics[] = { "sleep", "hydration" };

    for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++) {
        for (size_t pi = 0; pi < 4; pi++) {
            platform_id p = PLATFORMS[pi];
            textsim_fp *fps = calloc(N, sizeof(*fps));
            textsim_fp *raw = calloc(N, sizeof(*raw));
            char **texts = calloc(N, sizeof(*texts));
            textsim_index *ix = textsim_index_new();
            for (size_t i = 0; i < N; i++) {
                generator_draft d;
                const char *type = TYPES[i % NT], *style = STYLES[(i / NT) % NS];
                gen_with(type, style, topics[t], p, 7000 + i, ix, &d);
                char id[32];
                snprintf(id, sizeof(id), "p%zu", i);
                assert_int_equal(textsim_index_add(ix, id, d.text, d.len, 0), ST_OK);
                assert_int_equal(textsim_fp_compute(d.text, d.len, &fps[i]), ST_OK);
                texts[i] = d.text;
                d.text = NULL;
                generator_draft_fini(&d);
                gen(type, style, topics[t], p, 7000 + i, &d);
                assert_int_equal(textsim_fp_compute(d.text, d.len, &raw[i]), ST_OK);
                generator_draft_fini(&d);
            }
            size_t a = 0, b = 0, over = 0, raw_over = 0;
            double raw_worst = max_pair_similarity(raw, N, &a, &b, &raw_over);
            double worst = max_pair_similarity(fps, N, &a, &b, &over);
            printf("200 drafts on %s, %s: max pairwise similarity %.3f with history; "
                   "without: %.3f, %zu of %d pairs over\n",
                   topics[t], platform_key(p), worst, raw_worst, raw_over, N * (N - 1) / 2);
            if (worst >= TEXTSIM_DEFAULT_THRESHOLD)
                fail_msg("%s/%s drafts %zu and %zu are near-duplicates (%.3f):\n%s\n---\n%s",
                         topics[t], platform_key(p), a, b, worst, texts[a], texts[b]);
            for (size_t i = 0; i < N; i++) {
                free(texts[i]);
                textsim_fp_fini(&fps[i]);
                textsim_fp_fini(&raw[i]);
            }
            textsim_index_free(ix);
            free(fps);
            free(raw);
            free(texts);
        }
    }
}

/* ---- how recognisable is each (type, style) pair? -------------------------
 * Measure 1: a nearest-centroid classifier (TF-IDF, cosine). Each draft is a
 * vector of hashed character-trigram counts of its normalised text, weighted
 * by inverse document frequency over the training drafts and L2-normalised.
 * Centroids are averaged over training drafts on 6 topics; the test drafts
 * use the other 5 topics and new seeds, so the classifier cannot lean on the
 * topic or the fact text: it must recover the pair from structure and
 * phrasing alone.
 * Measure 2: mean trigram Jaccard (the duplicate gate's measure) of test
 * drafts within a pair vs between pairs. */

#define VDIM 16384

/* Hashed counts of the normalised text's character trigrams plus its word
 * unigrams and bigrams (the trigrams catch phrasing, the words catch the
 * recurring vocabulary of a style or type). */
static void trigram_counts(const char *text, float *v)
{
    strbuf norm = { 0 };
    memset(v, 0, VDIM * sizeof(*v));
    assert_int_equal(textsim_normalize(text, strlen(text), &norm), ST_OK);
    for (size_t k = 0; k + 2 < norm.len; k++) {
        uint32_t h = 2166136261u;
        for (int j = 0; j < 3; j++)
            h = (h ^ (unsigned char)norm.data[k + j]) * 16777619u;
        v[h % VDIM] += 1.0f;
    }
    uint32_t prev = 0;
    size_t k = 0;
    while (k < norm.len) {
        size_t e = k;
        while (e < norm.len && norm.data[e] != ' ')
            e++;
        uint32_t h = 2166136261u ^ 0x5bd1e995u;
        for (size_t j = k; j < e; j++)
            h = (h ^ (unsigned char)norm.data[j]) * 16777619u;
        v[h % VDIM] += 1.0f;
        if (prev != 0)
            v[(prev * 31u + h) % VDIM] += 1.0f;
        prev = h;
        k = e + 1;
    }
    strbuf_fini(&norm);
}

static void weigh_normalise(float *v, const float *idf)
{
    double ss = 0;
    for (int k = 0; k < VDIM; k++) {
        v[k] *= idf[k];
        ss += (double)v[k] * v[k];
    }
    float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
    for (int k = 0; k < VDIM; k++)
        v[k] *= inv;
}

static void generator_pairs_are_recognisable(void **state)
{
    (void)state;
    enum { TRAIN = 80, TEST = 20 };
    size_t ntopics = catalog_count(cat, CATALOG_TOPIC);
    size_t ntrain = (size_t)NPAIR * TRAIN;
    float *train = calloc(ntrain * VDIM, sizeof(float));
    float *idf = calloc(VDIM, sizeof(float));
    float *centroid = calloc((size_t)NPAIR * VDIM, sizeof(float));
    float *v = malloc(VDIM * sizeof(float));
    textsim_fp *test_fp = calloc((size_t)NPAIR * TEST, sizeof(*test_fp));
    int correct = 0, type_ok = 0, style_ok = 0, total = 0;

    assert_true(ntopics >= 10);
    for (int c = 0; c < NPAIR; c++) {
        for (int i = 0; i < TRAIN; i++) {
            generator_draft d;
            gen(TYPES[c % NT], STYLES[c / NT], topic_key((size_t)i % 6), PLATFORMS[(size_t)i % 4],
                50000 + (uint64_t)(c * 100 + i), &d);
            float *row = &train[((size_t)c * TRAIN + i) * VDIM];
            trigram_counts(d.text, row);
            for (int k = 0; k < VDIM; k++)
                idf[k] += row[k] > 0;
            generator_draft_fini(&d);
        }
    }
    for (int k = 0; k < VDIM; k++)
        idf[k] = (float)log((1.0 + (double)ntrain) / (1.0 + idf[k]));
    for (int c = 0; c < NPAIR; c++) {
        float *cen = &centroid[(size_t)c * VDIM];
        for (int i = 0; i < TRAIN; i++) {
            float *row = &train[((size_t)c * TRAIN + i) * VDIM];
            weigh_normalise(row, idf);
            for (int k = 0; k < VDIM; k++)
                cen[k] += row[k];
        }
        double ss = 0;
        for (int k = 0; k < VDIM; k++)
            ss += (double)cen[k] * cen[k];
        for (int k = 0; k < VDIM; k++)
            cen[k] /= (float)sqrt(ss);
    }
    for (int c = 0; c < NPAIR; c++) {
        for (int i = 0; i < TEST; i++) {
            generator_draft d;
            gen(TYPES[c % NT], STYLES[c / NT], topic_key(6 + (size_t)i % (ntopics - 6)),
                PLATFORMS[(size_t)(i + c) % 4], 90000 + (uint64_t)(c * 100 + i), &d);
            trigram_counts(d.text, v);
            weigh_normalise(v, idf);
            int best = -1;
            double best_dot = -1;
            for (int k = 0; k < NPAIR; k++) {
                double dot = 0;
                for (int j = 0; j < VDIM; j++)
                    dot += (double)v[j] * centroid[(size_t)k * VDIM + j];
                if (dot > best_dot) {
                    best_dot = dot;
                    best = k;
                }
            }
            total++;
            if (getenv("GEN_DEBUG") && best != c)
                fprintf(stderr, "want %s/%s got %s/%s [%s]:\n%s\n\n", TYPES[c % NT], STYLES[c / NT],
                        TYPES[best % NT], STYLES[best / NT],
                        platform_key(PLATFORMS[(size_t)(i + c) % 4]), d.text);
            correct += best == c;
            type_ok += best % NT == c % NT;
            style_ok += best / NT == c / NT;
            assert_int_equal(textsim_fp_compute(d.text, d.len, &test_fp[c * TEST + i]), ST_OK);
            generator_draft_fini(&d);
        }
    }
    double within = 0, between = 0;
    long nw = 0, nb = 0;
    for (int a = 0; a < NPAIR * TEST; a++)
        for (int b = a + 1; b < NPAIR * TEST; b++) {
            double s = textsim_similarity(&test_fp[a], &test_fp[b]);
            if (a / TEST == b / TEST) {
                within += s;
                nw++;
            } else {
                between += s;
                nb++;
            }
        }
    within /= (double)nw;
    between /= (double)nb;
    double acc = (double)correct / total;
    printf("(type, style) recognition on held-out topics: pair %.1f%% (chance %.1f%%), "
           "type %.1f%%, style %.1f%% of %d drafts\n",
           100.0 * acc, 100.0 / NPAIR, 100.0 * type_ok / total, 100.0 * style_ok / total, total);
    printf("mean trigram similarity within a pair %.3f, between pairs %.3f (ratio %.2f)\n", within,
           between, within / between);
    assert_true(acc >= 0.90);
    assert_true((double)type_ok / total >= 0.95);
    assert_true((double)style_ok / total >= 0.92);
    assert_true(within > 1.1 * between);

    for (int k = 0; k < NPAIR * TEST; k++)
        textsim_fp_fini(&test_fp[k]);
    free(test_fp);
    free(v);
    free(centroid);
    free(idf);
    free(train);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(generator_is_deterministic),
        cmocka_unit_test(generator_rejects_bad_requests),
        cmocka_unit_test(generator_respects_catalog_state),
        cmocka_unit_test(generator_500_drafts_pass_every_gate),
        cmocka_unit_test(generator_200_drafts_one_topic),
        cmocka_unit_test(generator_pairs_are_recognisable),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
