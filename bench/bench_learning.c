/* bench_learning.c - LearningService under load through a real heraldd
 * (issue 6 benchmarks), with the C client library.
 *
 * Starts heraldd (8 workers, one per concurrent client) on its own database
 * of the services fixture (DATABASE_URL, REDIS_URL; Redis DB 8), seeds one
 * profile with 40 published posts and a month of scored history, then
 * measures, one phase after the other:
 *   1. RecordEngagement, 1 observation per call, 8 client threads (each its
 *      own stub on one shared channel, a request_id per call): calls/s and
 *      latency percentiles;
 *   2. RecordEngagement, 500 observations per call (4 client threads):
 *      observations/s;
 *   3. GetInsights on a cache hit, then grpc.health.v1.Health/Check, each
 *      with 8 client threads for the same time in the same run: calls/s
 *      and p99 of both, and their ratio (target: GetInsights >= 50 % of
 *      Health/Check);
 *   4. Recommend over all arms (23 arms of the seed catalog), one call at a
 *      time: p50/p99 of the whole RPC (the computation alone is
 *      bench_recommend's).
 * When h2load is on PATH, phase 3 is repeated with h2load and pre-framed
 * bodies (-c 4 -m 16), which measures the server rather than the client.
 * The machine is shared: quote the load average (printed) with any figure.
 *
 * Last line: one JSON object {"bench":"learning", ...}. Exit 0, or 1 when a
 * target is missed (ingest >= 20,000 observations/s, GetInsights hits >= 50 %
 * of Health/Check) unless --report-only; 77 without the services fixture.
 *
 * Usage: bench_learning [--seconds N] [--report-only]   (N: per phase, default 5) */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "test_learning_svc_support.h"

#define PROFILE "bench"
#define N_POSTS 40

static ls_env E;
static char posts[N_POSTS][37];
static double phase_s = 5.0;

/* ---- latency samples ---- */

typedef struct lat {
    double *ms;
    size_t n, cap;
} lat;

static void lat_add(lat *l, double ms)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 4096;
        l->ms = xrealloc(l->ms, l->cap * sizeof *l->ms);
    }
    l->ms[l->n++] = ms;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double lat_q(lat *l, double q)
{
    if (l->n == 0)
        return NAN;
    qsort(l->ms, l->n, sizeof *l->ms, dbl_cmp);
    size_t i = (size_t)ceil(q * (double)l->n) - 1;
    return l->ms[i < l->n ? i : l->n - 1];
}

/* ---- CPU time of everything taking part ----
 * The machine is shared, so wall-clock throughput says as much about the
 * neighbours as about the code. The CPU time the bench process, heraldd,
 * PostgreSQL (postmaster and its backends) and Redis spend per call does
 * not: 2 cores / (CPU per call) is the throughput of a quiet 2-core box. */

static long pg_pid, redis_pid;

static void service_pids(void)
{
    const char *dir = getenv("HERALD_TEST_SERVICES_DIR");
    char *path = xasprintf("%s/env", dir != NULL ? dir : "/nonexistent");
    FILE *f = fopen(path, "r");
    free(path);
    char line[512];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        long v;
        if (sscanf(line, "PG_PID='%ld'", &v) == 1 || sscanf(line, "PG_PID=%ld", &v) == 1)
            pg_pid = v;
        if (sscanf(line, "REDIS_PID='%ld'", &v) == 1 || sscanf(line, "REDIS_PID=%ld", &v) == 1)
            redis_pid = v;
    }
    if (f != NULL)
        fclose(f);
}

/* utime + stime of pid in clock ticks, and its parent; false if gone. */
static bool proc_cpu(long pid, long *ticks, long *ppid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command may hold spaces */
    long pp = 0;
    unsigned long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &pp, &ut, &st) != 3)
        return false;
    *ticks = (long)(ut + st);
    *ppid = pp;
    return true;
}

/* CPU seconds used so far by this process, heraldd, PostgreSQL and Redis.
 * Backends that exited in between are missed (connections here are long
 * lived). */
typedef struct cpu_parts {
    double self, heraldd, pg, redis;
} cpu_parts;

static cpu_parts cpu_last; /* the parts of the last cpu_s() */

static double cpu_s(void)
{
    long hz = sysconf(_SC_CLK_TCK), t, pp, pg = 0;
    struct timespec ts;
    cpu_parts c = { 0 };
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    c.self = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    if (E.hd.pid > 0 && proc_cpu(E.hd.pid, &t, &pp))
        c.heraldd = (double)t / (double)hz;
    if (redis_pid > 0 && proc_cpu(redis_pid, &t, &pp))
        c.redis = (double)t / (double)hz;
    if (pg_pid > 0) {
        if (proc_cpu(pg_pid, &t, &pp))
            pg += t;
        FILE *ls = popen("ls /proc", "r");
        char name[64];
        while (ls != NULL && fgets(name, sizeof name, ls) != NULL) {
            long pid = atol(name);
            if (pid > 0 && proc_cpu(pid, &t, &pp) && pp == pg_pid)
                pg += t;
        }
        if (ls != NULL)
            pclose(ls);
    }
    c.pg = (double)pg / (double)hz;
    cpu_last = c;
    return c.self + c.heraldd + c.pg + c.redis;
}

/* ---- a phase: T threads calling fn until the time is up ---- */

typedef struct worker_arg {
    int id;
    int threads;
    herald_stub *learn;
    int64_t until_us;
    long calls, errors;
    long items; /* observations written */
    lat l;
    int mode;
} worker_arg;

enum { MODE_ENGAGE_1, MODE_ENGAGE_500, MODE_INSIGHTS, MODE_HEALTH, MODE_RECOMMEND };

static atomic_long obs_seq;
static atomic_uint rid_seq;

static void *worker_main(void *p)
{
    worker_arg *w = p;
    ls_env local = E;
    local.learn = w->learn;
    int64_t base = now_real_ms() - 2 * HOUR_MS;
    while (now_mono_us() < w->until_us) {
        int64_t t0 = now_mono_us();
        int code = 0;
        if (w->mode == MODE_ENGAGE_1 || w->mode == MODE_ENGAGE_500) {
            size_t n = w->mode == MODE_ENGAGE_1 ? 1 : 500;
            Herald__V1__EngagementObservation o[500];
            Herald__V1__EngagementObservation *op[500];
            Google__Protobuf__Timestamp ts[500];
            char src[32], rid[40];
            snprintf(src, sizeof src, "bench-%d", w->id);
            for (size_t i = 0; i < n; i++) {
                long k = atomic_fetch_add(&obs_seq, 1);
                /* each thread observes its own posts, as an executor reports
                 * on the posts it published */
                int per = N_POSTS / w->threads;
                const char *post = posts[w->id * per + (int)(k % per)];
                ls_obs(&o[i], post, base, 1000 + k % 500, 30, 4, 3, 1, 1);
                /* unique (post, time, source): a microsecond of its own per item */
                int64_t t_us = base * 1000 - k;
                google__protobuf__timestamp__init(&ts[i]);
                ts[i].seconds = t_us / 1000000;
                ts[i].nanos = (int32_t)(t_us % 1000000) * 1000;
                o[i].observe_time = &ts[i];
                o[i].source = src;
                op[i] = &o[i];
            }
            rid_make(rid, (unsigned)(7 + w->id), atomic_fetch_add(&rid_seq, 1) + 1);
            Herald__V1__RecordEngagementRequest req = HERALD__V1__RECORD_ENGAGEMENT_REQUEST__INIT;
            Herald__V1__RecordEngagementResponse *r = NULL;
            req.request_id = rid;
            req.observations = op;
            req.n_observations = n;
            code = ls_record_engagement(&local, &req, &r);
            if (code == 0)
                w->items += r->accepted;
            if (r != NULL)
                herald__v1__record_engagement_response__free_unpacked(r, NULL);
        } else if (w->mode == MODE_INSIGHTS) {
            /* decoded once, like Health/Check below (the stub's closure
             * would copy the reply) */
            Herald__V1__GetInsightsRequest req = HERALD__V1__GET_INSIGHTS_REQUEST__INIT;
            ProtobufCMessage *resp = NULL;
            herald_status st;
            herald_call_options o = { .timeout_ms = 5000 };
            req.profile_id = (char *)PROFILE;
            herald_status_init(&st);
            code =
                herald_call_unary(E.hd.ch, LS "GetInsights", &req.base,
                                  &herald__v1__get_insights_response__descriptor, &o, &resp, &st);
            if (code == 0 && !((Herald__V1__GetInsightsResponse *)resp)->cached)
                code = -1; /* not a hit: does not count */
            if (resp != NULL)
                protobuf_c_message_free_unpacked(resp, NULL);
            herald_status_fini(&st);
        } else if (w->mode == MODE_RECOMMEND) {
            Herald__V1__RecommendRequest req = HERALD__V1__RECOMMEND_REQUEST__INIT;
            ProtobufCMessage *resp = NULL;
            Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
            herald_status st;
            herald_call_options o = { .timeout_ms = 5000 };
            ts.seconds = now_real_ms() / 1000 + 86400; /* tomorrow: no recent topic */
            req.profile_id = (char *)PROFILE;
            req.target_time = &ts;
            herald_status_init(&st);
            code = herald_call_unary(E.hd.ch, LS "Recommend", &req.base,
                                     &herald__v1__recommend_response__descriptor, &o, &resp, &st);
            if (resp != NULL)
                protobuf_c_message_free_unpacked(resp, NULL);
            herald_status_fini(&st);
        } else {
            Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
            ProtobufCMessage *resp = NULL;
            herald_status st;
            herald_call_options o = { .timeout_ms = 5000 };
            req.service = (char *)"readiness";
            herald_status_init(&st);
            code = herald_call_unary(E.hd.ch, "/grpc.health.v1.Health/Check", &req.base,
                                     &grpc__health__v1__health_check_response__descriptor, &o,
                                     &resp, &st);
            if (resp != NULL)
                protobuf_c_message_free_unpacked(resp, NULL);
            herald_status_fini(&st);
        }
        double ms = (double)(now_mono_us() - t0) / 1000.0;
        if (code == 0) {
            w->calls++;
            lat_add(&w->l, ms);
        } else {
            if (w->errors++ == 0 && code > 0)
                fprintf(stderr, "thread %d: first failure %s: %s\n", w->id, herald_code_name(code),
                        herald_stub_status(w->learn)->message);
        }
    }
    return NULL;
}

typedef struct phase_result {
    double calls_s, items_s, p50_ms, p99_ms;
    double cpu_us_per_call, cpu_us_per_item;
    long calls, errors;
} phase_result;

static void run_phase(const char *name, int mode, int threads, phase_result *out)
{
    worker_arg *w = xcalloc((size_t)threads, sizeof *w);
    pthread_t *th = xcalloc((size_t)threads, sizeof *th);
    double c0 = cpu_s();
    cpu_parts p0 = cpu_last;
    int64_t t0 = now_mono_us();
    int64_t until = t0 + (int64_t)(phase_s * 1e6);
    herald_call_options o = { .timeout_ms = 30000 };
    for (int i = 0; i < threads; i++) {
        w[i].id = i;
        w[i].threads = threads;
        w[i].mode = mode;
        w[i].until_us = until;
        w[i].learn = herald_stub_new(E.hd.ch, &herald__v1__learning_service__descriptor);
        herald_stub_set_options(w[i].learn, &o);
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    lat all = { 0 };
    long items = 0;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        out->calls += w[i].calls;
        out->errors += w[i].errors;
        items += w[i].items;
        for (size_t k = 0; k < w[i].l.n; k++)
            lat_add(&all, w[i].l.ms[k]);
        free(w[i].l.ms);
        herald_stub_free(w[i].learn);
    }
    double secs = (double)(now_mono_us() - t0) / 1e6;
    double cpu = cpu_s() - c0;
    double per = out->calls > 0 ? 1e6 / (double)out->calls : 0;
    out->cpu_us_per_call = out->calls > 0 ? 1e6 * cpu / (double)out->calls : NAN;
    out->cpu_us_per_item = items > 0 ? 1e6 * cpu / (double)items : out->cpu_us_per_call;
    out->calls_s = (double)out->calls / secs;
    out->items_s = (double)items / secs;
    out->p50_ms = lat_q(&all, 0.5);
    out->p99_ms = lat_q(&all, 0.99);
    printf("%-24s %d threads %4.1f s: %7ld calls (%ld failed) %7.0f calls/s %7.0f items/s "
           "p50 %.2f ms p99 %.2f ms; CPU %.0f us/call %.1f us/item\n",
           name, threads, secs, out->calls, out->errors, out->calls_s, out->items_s, out->p50_ms,
           out->p99_ms, out->cpu_us_per_call, out->cpu_us_per_item);
    printf("%-24s CPU per call: client %.0f us, heraldd %.0f us, PostgreSQL %.0f us, Redis %.0f "
           "us\n",
           "", (cpu_last.self - p0.self) * per, (cpu_last.heraldd - p0.heraldd) * per,
           (cpu_last.pg - p0.pg) * per, (cpu_last.redis - p0.redis) * per);
    fflush(stdout);
    free(all.ms);
    free(th);
    free(w);
}

/* ---- h2load (optional) ---- */

/* Writes the 5-byte gRPC prefix and msg to path. */
static bool write_framed(const char *path, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = xmalloc(n + 5);
    buf[0] = 0;
    buf[1] = (uint8_t)(n >> 24);
    buf[2] = (uint8_t)(n >> 16);
    buf[3] = (uint8_t)(n >> 8);
    buf[4] = (uint8_t)n;
    protobuf_c_message_pack(msg, buf + 5);
    FILE *f = fopen(path, "wb");
    bool ok = f != NULL && fwrite(buf, 1, n + 5, f) == n + 5;
    if (f != NULL)
        ok = fclose(f) == 0 && ok;
    free(buf);
    return ok;
}

/* h2load's req/s for path with body file, -1 when it did not run. */
static double h2load_rps(const char *path, const char *body, long n)
{
    char *cmd = xasprintf("h2load -n %ld -c 4 -m 16 -H 'content-type: application/grpc' "
                          "-H 'te: trailers' -d %s http://127.0.0.1:%d%s 2>&1",
                          n, body, E.hd.port, path);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (p == NULL)
        return -1;
    char line[512];
    double rps = -1;
    long ok = -1;
    while (fgets(line, sizeof line, p) != NULL) {
        double v;
        long s;
        if (sscanf(line, "finished in %*s %lf req/s", &v) == 1)
            rps = v;
        if (sscanf(line, "requests: %*d total, %*d started, %*d done, %ld succeeded", &s) == 1)
            ok = s;
    }
    pclose(p);
    return ok == n ? rps : -1;
}

/* ---- set-up ---- */

static void seed_history(void)
{
    /* posts published today (observed by phases 1-2, not yet at their
     * checkpoint) and a month of scored history for insights and arms */
    static const char *const ct[] = { "myth_busting", "practical_tip", "research_breakdown" };
    static const char *const vs[] = { "storyteller", "truth_seeker" };
    static const char *const tp[] = { "sleep", "nutrition", "exercise", "stress" };
    int64_t now = now_real_ms();
    for (int i = 0; i < N_POSTS; i++)
        ls_post(&E, PROFILE, ct[i % 3], vs[i % 2], tp[i % 4], now - 3 * HOUR_MS - i * 60000, NULL,
                posts[i]);
    enum { H = 90 };
    Herald__V1__EngagementObservation o[H];
    Herald__V1__EngagementObservation *op[H];
    char ids[H][37], rid[40];
    for (int i = 0; i < H; i++) {
        int64_t pub = now - 31 * DAY_MS + (int64_t)i * 8 * HOUR_MS;
        ls_post(&E, PROFILE, ct[i % 3], vs[i % 2], tp[i % 4], pub, NULL, ids[i]);
        int64_t eng = 20 + 15 * (i % 3) + (i * 7) % 11;
        ls_obs(&o[i], ids[i], pub + 20 * HOUR_MS, 1000 + i, eng - 6, 2, 2, 2, i % 3);
        op[i] = &o[i];
    }
    assert_int_equal(ls_engage(&E, ls_rid(&E, rid), op, H, NULL), 0);
    outcomes_result r = ls_job(&E, now);
    printf("seeded: %d fresh posts, %d scored posts (%lld outcomes, %lld learnable)\n", N_POSTS, H,
           (long long)r.scored, (long long)r.learnable);
}

static bool report_only;

static void bench(void **state)
{
    (void)state;
    double load[3] = { 0 };
    FILE *la = fopen("/proc/loadavg", "r");
    if (la != NULL) {
        if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
            load[0] = -1;
        fclose(la);
    }
    printf("load average at start: %.2f %.2f %.2f (nproc %ld)\n", load[0], load[1], load[2],
           sysconf(_SC_NPROCESSORS_ONLN));
    service_pids();
    assert_int_equal(ls_profile(&E, PROFILE, "UTC", 24), 0);
    seed_history();

    phase_result e1, e500, ins, hc, rec;
    /* reads first: the ingest phases leave autovacuum work behind them */
    /* warm the cache, then hits */
    Herald__V1__GetInsightsRequest ireq = HERALD__V1__GET_INSIGHTS_REQUEST__INIT;
    ireq.profile_id = (char *)PROFILE;
    Herald__V1__GetInsightsResponse *warm = NULL;
    assert_int_equal(ls_get_insights(&E, &ireq, &warm), 0);
    printf("GetInsights reply: %zu bytes (%zu scopes, %zu trend points); Health/Check reply: 2 "
           "bytes\n",
           protobuf_c_message_get_packed_size(&warm->base), warm->n_scopes,
           warm->engagement_trend != NULL ? warm->engagement_trend->n_points : 0);
    herald__v1__get_insights_response__free_unpacked(warm, NULL);
    run_phase("GetInsights (cache hit)", MODE_INSIGHTS, 8, &ins);
    run_phase("Health/Check", MODE_HEALTH, 8, &hc);

    /* Recommend: one call at a time, so p99 is the RPC's own latency */
    run_phase("Recommend (23 arms)", MODE_RECOMMEND, 1, &rec);

    /* h2load, when present: the server's side of phase 3 */
    double h_ins = -1, h_hc = -1;
    if (tsh("command -v h2load >/dev/null 2>&1") == 0) {
        char ib[256], hb[256];
        snprintf(ib, sizeof ib, "%s/insights.bin", E.dir);
        snprintf(hb, sizeof hb, "%s/check.bin", E.dir);
        Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        hreq.service = (char *)"readiness";
        if (write_framed(ib, &ireq.base) && write_framed(hb, &hreq.base)) {
            long n = (long)(phase_s * 4000);
            h_ins = h2load_rps(LS "GetInsights", ib, n);
            h_hc = h2load_rps("/grpc.health.v1.Health/Check", hb, n);
            printf("h2load -c 4 -m 16 -n %ld: GetInsights (cache hit) %.0f req/s, Health/Check "
                   "%.0f req/s (%.0f %%)\n",
                   n, h_ins, h_hc, h_hc > 0 ? 100.0 * h_ins / h_hc : -1.0);
        }
    }

    run_phase("RecordEngagement x1", MODE_ENGAGE_1, 8, &e1);
    run_phase("RecordEngagement x500", MODE_ENGAGE_500, 4, &e500);

    double ratio = hc.calls_s > 0 ? ins.calls_s / hc.calls_s : 0;
    double cores = (double)sysconf(_SC_NPROCESSORS_ONLN);
    /* what a quiet machine with these cores would do: cores / CPU per item */
    double q_e500 = cores * 1e6 / e500.cpu_us_per_item, q_e1 = cores * 1e6 / e1.cpu_us_per_call;
    double q_ins = cores * 1e6 / ins.cpu_us_per_call, q_hc = cores * 1e6 / hc.cpu_us_per_call;
    printf("CPU-bound projection on %.0f quiet cores: RecordEngagement x1 %.0f calls/s, x500 %.0f "
           "observations/s, GetInsights hits %.0f calls/s vs Health/Check %.0f (%.0f %%)\n",
           cores, q_e1, q_e500, q_ins, q_hc, 100.0 * q_ins / q_hc);
    bool pass = e500.items_s >= 20000 && ratio >= 0.5;
    printf("{\"bench\":\"learning\",\"engage1_calls_s\":%.0f,\"engage1_p50_ms\":%.2f,"
           "\"engage1_p99_ms\":%.2f,\"engage500_obs_s\":%.0f,\"engage500_p99_ms\":%.2f,"
           "\"insights_hit_calls_s\":%.0f,\"insights_hit_p99_ms\":%.2f,\"health_calls_s\":%.0f,"
           "\"health_p99_ms\":%.2f,\"insights_vs_health\":%.2f,\"h2load_insights_rps\":%.0f,"
           "\"h2load_health_rps\":%.0f,\"recommend_p50_ms\":%.2f,\"recommend_p99_ms\":%.2f,"
           "\"cpu_us_engage1\":%.0f,\"cpu_us_per_obs_engage500\":%.1f,"
           "\"cpu_us_insights_hit\":%.0f,\"cpu_us_health\":%.0f,\"cpu_us_recommend\":%.0f,"
           "\"quiet_engage500_obs_s\":%.0f,\"quiet_insights_vs_health\":%.2f,"
           "\"errors\":%ld,\"load1\":%.2f,\"nproc\":%ld,\"pass\":%s}\n",
           e1.calls_s, e1.p50_ms, e1.p99_ms, e500.items_s, e500.p99_ms, ins.calls_s, ins.p99_ms,
           hc.calls_s, hc.p99_ms, ratio, h_ins, h_hc, rec.p50_ms, rec.p99_ms, e1.cpu_us_per_call,
           e500.cpu_us_per_item, ins.cpu_us_per_call, hc.cpu_us_per_call, rec.cpu_us_per_call,
           q_e500, q_ins / q_hc, e1.errors + e500.errors + ins.errors + hc.errors, load[0],
           sysconf(_SC_NPROCESSORS_ONLN), pass ? "true" : "false");
    fflush(stdout);
    if (!pass && !report_only)
        fail_msg("a target was missed");
}

static int group_setup(void **state)
{
    (void)state;
    /* 8 workers: one per concurrent client, so that 8 ingest transactions
     * can share a WAL flush (the tests run 2) */
    static const char *const extra[] = { "HERALD_LOG_LEVEL=warn", "HERALD_WORKERS=8", NULL };
    return ls_setup(&E, "learning_bench", extra, NULL) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return ls_teardown(&E) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--report-only") == 0) {
            report_only = true;
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            phase_s = atof(argv[++i]);
            if (!(phase_s >= 1 && phase_s <= 600)) {
                fprintf(stderr, "--seconds: 1 to 600\n");
                return 2;
            }
        } else {
            fprintf(stderr, "usage: %s [--seconds N] [--report-only]\n", argv[0]);
            return 2;
        }
    }
    const struct CMUnitTest tests[] = { cmocka_unit_test(bench) };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
