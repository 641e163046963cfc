/* bench_recommend.c - time of bandit_recommend over all arms (issue 6:
 * "Recommend's computation < 200 us").
 *
 * Two catalogs: the seed catalog's size (6 content types x 6 voice styles x
 * 11 topics = 23 arms, the production case) and a large one (16 x 16 x 64 =
 * 96 arms). Arms carry a realistic history: 180 days of outcomes with
 * per-arm effects, discounted with the default half-life, three topics
 * excluded as recently used and one voice style disabled. Each call draws
 * all three scopes with a new seed and the default number of propensity
 * rounds.
 *
 * Two clocks: the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), which is
 * the computation's cost, and wall time (CLOCK_MONOTONIC), which on a
 * shared machine also counts the time other processes held the core.
 * Prints percentiles per catalog and, as the last line, one JSON object:
 *   {"bench":"recommend","arms":23,"calls":N,"cpu_p50_us":..,"cpu_p99_us":..,
 *    "wall_p50_us":..,"wall_p99_us":..,"large_arms":96,"large_cpu_p50_us":..,
 *    "large_cpu_p99_us":..,"propensity_draws":200,"target_us":200,"pass":true}
 * pass is cpu_p99 < target for the seed catalog; exit status 0 when pass,
 * 1 when not (or on an error), unless --report-only (then 0 unless an
 * error): ctest runs it that way under the label "bench", since a loaded
 * machine says nothing about the code.
 *
 * Usage: bench_recommend [calls] [--report-only]
 *        (calls: default 5000, 100 to 1,000,000) */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bandit.h"
#include "sampling.h"
#include "status.h"

#define DAY_MS 86400000LL
#define TARGET_US 200.0

typedef struct catalog_size {
    size_t n[3];
} catalog_size;

typedef struct fixture {
    bandit_arm *arms[3];
    char *keys;
    bandit_dim dims[3];
    size_t total;
} fixture;

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

typedef struct pcts {
    double p50, p99, max;
} pcts;

static void fixture_build(fixture *f, const catalog_size *cs, int64_t now_ms,
                          const bandit_config *cfg)
{
    static const bandit_scope scopes[3] = { BANDIT_SCOPE_CONTENT_TYPE, BANDIT_SCOPE_VOICE_STYLE,
                                            BANDIT_SCOPE_TOPIC };
    static const char *const recent = "used in the last 24 h";
    sampling_rng r;
    sampling_rng_seed(&r, 42);
    f->total = cs->n[0] + cs->n[1] + cs->n[2];
    f->keys = calloc(f->total, 32);
    size_t k = 0;
    for (int d = 0; d < 3; d++) {
        f->arms[d] = calloc(cs->n[d], sizeof(bandit_arm));
        for (size_t i = 0; i < cs->n[d]; i++, k++) {
            bandit_arm *a = &f->arms[d][i];
            char *key = f->keys + 32 * k;
            snprintf(key, 32, "%s_%zu", bandit_scope_name(scopes[d]), i);
            a->key = key;
            a->enabled = !(d == 1 && i == 1);
            a->exclude_reason = (d == 2 && i < 3) ? recent : NULL;
            double effect = 0.6 * sampling_normal(&r);
            int posts = 5 + (int)sampling_below(&r, 60);
            for (int p = 0; p < posts; p++) {
                int64_t at = now_ms - (int64_t)(sampling_uniform(&r) * 180.0 * DAY_MS);
                bandit_stats_add(&a->stats, effect + sampling_normal(&r), at, cfg);
            }
        }
        f->dims[d].scope = scopes[d];
        f->dims[d].arms = f->arms[d];
        f->dims[d].n_arms = cs->n[d];
        f->dims[d].fixed_key = NULL;
    }
}

static void fixture_free(fixture *f)
{
    for (int d = 0; d < 3; d++)
        free(f->arms[d]);
    free(f->keys);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void percentiles(int64_t *ns, long n, pcts *out)
{
    qsort(ns, (size_t)n, sizeof(*ns), cmp_i64);
    out->p50 = (double)ns[n / 2] / 1000.0;
    out->p99 = (double)ns[(size_t)((double)n * 0.99)] / 1000.0;
    out->max = (double)ns[n - 1] / 1000.0;
}

/* Runs calls Recommends; fills CPU and wall percentiles in microseconds. */
static int run(const catalog_size *cs, long calls, const bandit_config *cfg, pcts *cpu, pcts *wall)
{
    int rc = 1;
    int64_t now_ms = 1790000000000LL;
    fixture f = { 0 };
    fixture_build(&f, cs, now_ms, cfg);
    bandit_candidate *cands = calloc(f.total, sizeof(*cands));
    int64_t *ns = calloc((size_t)calls, sizeof(*ns));
    int64_t *wns = calloc((size_t)calls, sizeof(*wns));
    double sink = 0.0;
    bandit_choice ch;

    for (long i = 0; i < calls / 10 + 10; i++) { /* warm-up */
        if (bandit_recommend(f.dims, 3, now_ms, (uint64_t)i, cfg, cands, f.total, &ch) != ST_OK)
            goto out;
        sink += ch.propensity;
    }
    for (long i = 0; i < calls; i++) {
        int64_t w0 = clock_ns(CLOCK_MONOTONIC);
        int64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        status st =
            bandit_recommend(f.dims, 3, now_ms, 1000003ULL * (uint64_t)i, cfg, cands, f.total, &ch);
        ns[i] = clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
        wns[i] = clock_ns(CLOCK_MONOTONIC) - w0;
        if (st != ST_OK) {
            fprintf(stderr, "bandit_recommend: %s\n", ch.errmsg);
            goto out;
        }
        sink += ch.propensity;
    }
    percentiles(ns, calls, cpu);
    percentiles(wns, calls, wall);
    printf("arms %zu (%zu x %zu x %zu), %ld calls: cpu p50 %.1f us p99 %.1f us max %.1f us; "
           "wall p50 %.1f us p99 %.1f us max %.1f us (checksum %.3f)\n",
           f.total, cs->n[0], cs->n[1], cs->n[2], calls, cpu->p50, cpu->p99, cpu->max, wall->p50,
           wall->p99, wall->max, sink);
    rc = 0;
out:
    free(wns);
    free(ns);
    free(cands);
    fixture_free(&f);
    return rc;
}

int main(int argc, char **argv)
{
    long calls = 5000;
    bool report_only = false;
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--report-only") == 0) {
            report_only = true;
            continue;
        }
        char *end = NULL;
        errno = 0;
        calls = strtol(argv[a], &end, 10);
        if (errno != 0 || *end != '\0' || calls < 100 || calls > 1000000) {
            fprintf(stderr, "usage: %s [calls: 100 to 1000000] [--report-only]\n", argv[0]);
            return 2;
        }
    }
    bandit_config cfg;
    bandit_config_default(&cfg);
    const catalog_size seed = { { 6, 6, 11 } };
    const catalog_size large = { { 16, 16, 64 } };
    pcts cpu, wall, lcpu, lwall;
    if (run(&seed, calls, &cfg, &cpu, &wall) != 0)
        return 1;
    if (run(&large, calls / 4 + 1, &cfg, &lcpu, &lwall) != 0)
        return 1;
    bool pass = cpu.p99 < TARGET_US;
    printf("{\"bench\":\"recommend\",\"arms\":23,\"calls\":%ld,\"cpu_p50_us\":%.1f,"
           "\"cpu_p99_us\":%.1f,\"wall_p50_us\":%.1f,\"wall_p99_us\":%.1f,\"large_arms\":96,"
           "\"large_cpu_p50_us\":%.1f,\"large_cpu_p99_us\":%.1f,\"propensity_draws\":%d,"
           "\"target_us\":%.0f,\"pass\":%s}\n",
           calls, cpu.p50, cpu.p99, wall.p50, wall.p99, lcpu.p50, lcpu.p99, cfg.propensity_draws,
           TARGET_US, pass ? "true" : "false");
    return pass || report_only ? 0 : 1;
}
