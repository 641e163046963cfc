/* bench_generator - how long the built-in generator takes per draft.
 *
 *   bench_generator [drafts]        (default 20000 per mode)
 *
 * Loads the real catalog from the seed migration, then times each
 * generator_compose() call with CLOCK_MONOTONIC, cycling through every
 * (content type, voice style) pair, every topic and every platform:
 *   - "plain":   no history (one candidate per draft);
 *   - "history": with an index of the 200 most recent drafts, as GenerateDraft
 *                passes it (candidates are retried until one is not a near
 *                duplicate, so this includes fingerprinting and the search);
 *   - "gates":   gates_validate_all() on each plain draft against the same
 *                200-post index (the cost of ValidateText's domain part).
 * Prints median, p99 and mean per call and calls per second for each mode,
 * and as its last line one JSON object for scripts. Exit status 1 if any
 * draft failed to generate. Single-threaded; run it on an idle machine. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "gates.h"
#include "generator.h"
#include "test_catalog_seed.h"
#include "textsim.h"

#define HISTORY 200

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

typedef struct stats {
    double median_us;
    double p99_us;
    double mean_us;
    double per_s;
} stats;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static stats summarise(int64_t *ns, size_t n)
{
    stats s;
    double sum = 0;
    for (size_t k = 0; k < n; k++)
        sum += (double)ns[k];
    qsort(ns, n, sizeof(*ns), cmp_i64);
    s.median_us = (double)ns[n / 2] / 1000.0;
    s.p99_us = (double)ns[(n * 99) / 100] / 1000.0;
    s.mean_us = sum / (double)n / 1000.0;
    s.per_s = sum > 0 ? (double)n * 1e9 / sum : 0;
    return s;
}

static void request_for(const catalog *cat, size_t i, generator_request *rq)
{
    size_t ntopics = catalog_count(cat, CATALOG_TOPIC);
    memset(rq, 0, sizeof(*rq));
    rq->content_type = TYPES[i % 6];
    rq->voice_style = STYLES[(i / 6) % 6];
    rq->topic = catalog_entry_at(cat, CATALOG_TOPIC, (i / 36) % ntopics)->key;
    rq->platform = PLATFORMS[(i / 7) % 4];
    rq->seed = 0x5eed0000 + i;
}

/* A ring of the last HISTORY drafts, rebuilt into an index when asked. */
typedef struct ring {
    char *text[HISTORY];
    size_t next;
    size_t count;
} ring;

static textsim_index *ring_index(const ring *r)
{
    textsim_index *ix = textsim_index_new();
    for (size_t k = 0; k < r->count; k++) {
        char id[32];
        snprintf(id, sizeof(id), "h%zu", k);
        textsim_index_add(ix, id, r->text[k], strlen(r->text[k]), 0);
    }
    return ix;
}

static void ring_push(ring *r, char *text)
{
    free(r->text[r->next]);
    r->text[r->next] = text;
    r->next = (r->next + 1) % HISTORY;
    if (r->count < HISTORY)
        r->count++;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
    catalog *cat = seed_catalog_load();
    int64_t *plain = NULL, *hist = NULL, *gates_ns = NULL;
    ring r = { { 0 }, 0, 0 };
    textsim_index *ix = NULL;
    int failures = 0;
    double attempts = 0;

    if (cat == NULL)
        return 1;
    if (n < 100)
        n = 100;
    plain = calloc(n, sizeof(*plain));
    hist = calloc(n, sizeof(*hist));
    gates_ns = calloc(n, sizeof(*gates_ns));

    /* warm-up: page in the tables and the allocator */
    for (size_t i = 0; i < 1000; i++) {
        generator_request rq;
        generator_draft d;
        request_for(cat, i, &rq);
        if (generator_compose(cat, &rq, &d, NULL, 0) != ST_OK)
            failures++;
        ring_push(&r, d.text);
        d.text = NULL;
        generator_draft_fini(&d);
    }
    ix = ring_index(&r);

    for (size_t i = 0; i < n; i++) {
        generator_request rq;
        generator_draft d;
        request_for(cat, i + 1000, &rq);
        int64_t t0 = now_ns();
        status st = generator_compose(cat, &rq, &d, NULL, 0);
        plain[i] = now_ns() - t0;
        if (st != ST_OK) {
            failures++;
            continue;
        }
        gates_input in = { .text = d.text,
                           .len = d.len,
                           .platform = rq.platform,
                           .min_chars = d.min_chars,
                           .max_chars = d.max_chars,
                           .cat = cat,
                           .recent = ix,
                           .now_ms = 1 };
        gates_report rep;
        t0 = now_ns();
        gates_validate_all(&in, NULL, &rep);
        gates_ns[i] = now_ns() - t0;
        generator_draft_fini(&d);
    }

    /* with history: the index holds the last 200 drafts; it is rebuilt every
     * 50 drafts (outside the timed call), as a worker would refresh it */
    for (size_t i = 0; i < n; i++) {
        generator_request rq;
        generator_draft d;
        if (i % 50 == 0) {
            textsim_index_free(ix);
            ix = ring_index(&r);
        }
        request_for(cat, i + 5000, &rq);
        rq.recent = ix;
        rq.since_ms = INT64_MIN;
        int64_t t0 = now_ns();
        status st = generator_compose(cat, &rq, &d, NULL, 0);
        hist[i] = now_ns() - t0;
        if (st != ST_OK) {
            failures++;
            continue;
        }
        attempts += d.attempts;
        ring_push(&r, d.text);
        d.text = NULL;
        generator_draft_fini(&d);
    }

    stats p = summarise(plain, n), h = summarise(hist, n), g = summarise(gates_ns, n);
    printf("catalog: %zu topics, %zu facts; %zu drafts per mode over 36 type x style pairs "
           "and 4 platforms\n",
           catalog_count(cat, CATALOG_TOPIC), catalog_fact_count(cat), n);
    printf("plain    median %8.1f us  p99 %8.1f us  mean %8.1f us  %10.0f drafts/s\n", p.median_us,
           p.p99_us, p.mean_us, p.per_s);
    printf("history  median %8.1f us  p99 %8.1f us  mean %8.1f us  %10.0f drafts/s  "
           "(%d recent posts, %.2f candidates per draft)\n",
           h.median_us, h.p99_us, h.mean_us, h.per_s, HISTORY, attempts / (double)n);
    printf("gates    median %8.1f us  p99 %8.1f us  mean %8.1f us  %10.0f checks/s\n", g.median_us,
           g.p99_us, g.mean_us, g.per_s);
    printf("{\"bench\":\"generator\",\"drafts\":%zu,\"median_us\":%.1f,\"p99_us\":%.1f,"
           "\"drafts_per_s\":%.0f,\"history_median_us\":%.1f,\"history_p99_us\":%.1f,"
           "\"history_drafts_per_s\":%.0f,\"gates_median_us\":%.1f,\"gates_p99_us\":%.1f,"
           "\"failures\":%d}\n",
           n, p.median_us, p.p99_us, p.per_s, h.median_us, h.p99_us, h.per_s, g.median_us, g.p99_us,
           failures);

    for (size_t k = 0; k < HISTORY; k++)
        free(r.text[k]);
    textsim_index_free(ix);
    free(plain);
    free(hist);
    free(gates_ns);
    catalog_free(cat);
    return failures ? 1 : 0;
}
