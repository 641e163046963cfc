/* Unit test: how many drafts one busy profile gets from the built-in
 * generator before the duplicate gate refuses one.
 *
 * Drafts are generated as GenerateDraft does it (server/pregen.c): each
 * request passes the profile's earlier drafts as the history, with the
 * content service's threshold (0.60), and a draft is refused when even the
 * least similar candidate reaches it. Every earlier draft counts, as if all
 * of them were inside the 30-day window. The arms rotate through every
 * (type, style) pair and every topic, as an exploring bandit would. Only the
 * short platforms are run: with the least room for framing, they run out
 * first (Threads and LinkedIn pass 2,000 drafts).
 *
 * Each accepted draft also passes every gate, lengths included.
 *
 * A profile posting 24 a day keeps 720 drafts in the window; the test asks
 * for 1,000 and stops at 1,500 drafts or after its time budget. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "catalog.h"
#include "gates.h"
#include "generator.h"
#include "test_catalog_seed.h"
#include "textsim.h"

#define DUP_THRESHOLD 0.60 /* CONTENT_DUP_THRESHOLD in server/content_store.h */
#define WANT_DRAFTS 1000
#define MAX_DRAFTS 1500
#define BUDGET_S 50.0 /* per platform; a sanitizer build is several times slower */

static const char *const TYPES[] = {
    "myth_busting",       "counterintuitive_insight", "practical_tip",
    "research_breakdown", "curious_observation",      "story_insight",
};
static const char *const STYLES[] = {
    "research_enthusiast",     "truth_seeker", "practical_optimizer", "curious_investigator",
    "evidence_based_advocate", "storyteller",
};

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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Drafts until the first refusal (or MAX_DRAFTS, or the budget); returns
 * how many were accepted. */
static int drafts_before_refusal(platform_id p, uint64_t seed0, int *candidates, bool *timed_out)
{
    size_t ntopics = catalog_count(cat, CATALOG_TOPIC);
    textsim_index *ix = textsim_index_new();
    double t0 = now_s();
    int n = 0;

    *candidates = 0;
    *timed_out = false;
    while (n < MAX_DRAFTS) {
        if (now_s() - t0 > BUDGET_S) {
            *timed_out = true;
            break;
        }
        generator_request rq = {
            .content_type = TYPES[n % 6],
            .voice_style = STYLES[(n / 6) % 6],
            .topic = catalog_entry_at(cat, CATALOG_TOPIC, (size_t)n % ntopics)->key,
            .platform = p,
            .seed = seed0 + (uint64_t)n,
            .recent = ix,
            .since_ms = INT64_MIN,
            .max_similarity = DUP_THRESHOLD,
        };
        generator_draft d;
        char err[256];
        if (generator_compose(cat, &rq, &d, err, sizeof(err)) != ST_OK)
            fail_msg("draft %d: %s", n, err);
        *candidates += d.attempts;
        if (d.nearest_similarity >= DUP_THRESHOLD) {
            generator_draft_fini(&d);
            break;
        }
        /* the later, lean candidates too pass every gate (the 0.70 default
         * duplicate threshold is above the one they were written to) */
        gates_report rep;
        gates_input in = { d.text, d.len, p, d.min_chars, d.max_chars, cat, ix, NULL, 0 };
        gates_config cfg;
        gates_config_default(&cfg);
        cfg.dup_window_days = 0;
        gates_validate_all(&in, &cfg, &rep);
        if (!rep.pass)
            fail_msg("draft %d (%d candidates) failed a gate:\n%s", n, d.attempts, d.text);
        char id[32];
        snprintf(id, sizeof(id), "v%d", n);
        assert_int_equal(textsim_index_add(ix, id, d.text, d.len, 0), ST_OK);
        generator_draft_fini(&d);
        n++;
    }
    textsim_index_free(ix);
    return n;
}

static void generator_busy_profile_outlasts_the_window(void **state)
{
    (void)state;
    static const platform_id platforms[] = { PLATFORM_X, PLATFORM_BLUESKY };

    for (size_t k = 0; k < sizeof(platforms) / sizeof(platforms[0]); k++) {
        int candidates = 0;
        bool timed_out = false;
        int n = drafts_before_refusal(platforms[k], 1000, &candidates, &timed_out);
        printf("%s: %d drafts before the first refusal%s (stop at %d), %.2f candidates per "
               "draft\n",
               platform_key(platforms[k]), n, timed_out ? " when the time budget ran out" : "",
               MAX_DRAFTS, n > 0 ? (double)candidates / n : 0.0);
        if (n < WANT_DRAFTS)
            fail_msg("%s: refused after %d drafts%s; a busy profile needs more than 720",
                     platform_key(platforms[k]), n,
                     timed_out ? " (time budget ran out first)" : "");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(generator_busy_profile_outlasts_the_window),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
