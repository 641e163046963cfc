/* bench_lease.c - ClaimDueWork + ReportPublishResult cycles per second with
 * 8 executors (issue 7: target >= 2,000 posts/s).
 *
 * Starts its own heraldd (fork/exec on 127.0.0.1, a free port, stopped by
 * PID) on a fresh database of the PostgreSQL in DATABASE_URL, inserts N due
 * posts over 10 executor-target profiles, then runs E executor threads over
 * one channel, each looping: ClaimDueWork(limit = batch, lease 120 s), then
 * one ReportPublishResult(SUCCESS) per item, every call with its own
 * request_id (as a real executor sends); with --report-batch, one
 * ReportPublishResults call per claim carrying all its items (the
 * high-throughput path). --compare runs the other mode first, on its own
 * database and heraldd, and prints its figures for comparison; the last
 * line is always the selected mode's. The clock runs from the first
 * claim until every post is PUBLISHED (or the time limit), after a warm-up
 * of one batch per executor that is not counted.
 *
 * heraldd, PostgreSQL and the executors share the machine: quote the load
 * average with any figure. Prints percentiles and, as the last line, one
 * JSON object:
 *   {"bench":"lease_cycles","executors":8,"batch":50,"posts":20000,
 *    "published":..,"seconds":..,"posts_per_s":..,"claims":..,
 *    "claim_p50_ms":..,"claim_p99_ms":..,"report_p50_ms":..,"report_p99_ms":..,
 *    "heraldd_workers":4,"nproc":2,"load1":..,"target_posts_per_s":2000,"pass":..}
 * Exit 0 when the selected mode's posts_per_s >= 2000 (or with
 * --report-only), 1 otherwise or on an error in either run, 77 without
 * DATABASE_URL.
 *
 * Usage: bench_lease [--posts N] [--batch B] [--executors E] [--workers W]
 *                    [--seconds S] [--no-request-id] [--report-batch]
 *                    [--compare] [--report-only] */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herald/v1/scheduling.pb-c.h"
#include "test_db_support.h"
#include "test_profiles_support.h"

#define SCHED "/herald.v1.SchedulingService/"
#define TARGET 2000.0
#define N_PROFILES 10
#define MAX_SAMPLES 200000

static hd g_hd;
static int g_batch = 50, g_executors = 8, g_workers = 4, g_posts = 20000, g_seconds = 60;
static bool g_rid = true;
static bool g_report_batch; /* --report-batch: one ReportPublishResults per claim */
static atomic_uint g_rid_n;
static atomic_bool g_stop;
static atomic_long g_reported, g_claims, g_errors, g_empty;

typedef struct samples {
    double *v;
    size_t n;
    pthread_mutex_t mu; /* protects v and n */
} samples;

static samples s_claim, s_report;

static void sample(samples *s, double ms)
{
    pthread_mutex_lock(&s->mu);
    if (s->n < MAX_SAMPLES)
        s->v[s->n++] = ms;
    pthread_mutex_unlock(&s->mu);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(samples *s, double q)
{
    if (s->n == 0)
        return -1;
    qsort(s->v, s->n, sizeof *s->v, cmp_d);
    size_t i = (size_t)(q * (double)(s->n - 1));
    return s->v[i];
}

static void rid(char out[40])
{
    if (!g_rid) {
        out[0] = '\0';
        return;
    }
    rid_make(out, 11, atomic_fetch_add(&g_rid_n, 1) + 1);
}

static int call(const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *d, ProtobufCMessage **resp)
{
    char path[128];
    herald_status st;
    herald_call_options o = { .timeout_ms = 30000 };
    ProtobufCMessage *r = NULL;
    herald_status_init(&st);
    snprintf(path, sizeof path, SCHED "%s", method);
    int code = herald_call_unary(g_hd.ch, path, req, d, &o, &r, &st);
    if (code != 0 && atomic_load(&g_errors) < 5)
        fprintf(stderr, "%s: %s %s\n", method, herald_code_name(code), st.message);
    herald_status_fini(&st);
    if (resp != NULL)
        *resp = r;
    else if (r != NULL)
        protobuf_c_message_free_unpacked(r, NULL);
    return code;
}

/* Reports every item of a claim with one ReportPublishResults call. */
static void report_batch(const char *exec, const Herald__V1__ClaimDueWorkResponse *resp, bool warm)
{
    Herald__V1__ReportPublishResultsRequest rq = HERALD__V1__REPORT_PUBLISH_RESULTS_REQUEST__INIT;
    Herald__V1__PublishReport *items = xcalloc(resp->n_items, sizeof *items);
    Herald__V1__PublishReport **ptrs = xcalloc(resp->n_items, sizeof *ptrs);
    char(*ext)[48] = xcalloc(resp->n_items, sizeof *ext);
    Herald__V1__ReportPublishResultsResponse *out = NULL;
    char r[40];
    rid(r);
    rq.request_id = r;
    rq.executor_id = (char *)exec;
    for (size_t i = 0; i < resp->n_items; i++) {
        const Herald__V1__WorkItem *w = resp->items[i];
        herald__v1__publish_report__init(&items[i]);
        snprintf(ext[i], sizeof ext[i], "b-%.40s", w->post->post_id);
        items[i].lease_id = w->lease->lease_id;
        items[i].post_id = w->post->post_id;
        items[i].outcome = HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_SUCCESS;
        items[i].external_id = ext[i];
        ptrs[i] = &items[i];
    }
    rq.reports = ptrs;
    rq.n_reports = resp->n_items;
    int64_t t1 = now_mono_us();
    if (call("ReportPublishResults", &rq.base,
             &herald__v1__report_publish_results_response__descriptor,
             (ProtobufCMessage **)&out) != 0) {
        atomic_fetch_add(&g_errors, 1);
    } else {
        long ok = 0;
        for (size_t i = 0; i < out->n_results; i++)
            ok += out->results[i]->code == 0 ? 1 : 0;
        if (ok != (long)resp->n_items)
            atomic_fetch_add(&g_errors, (long)resp->n_items - ok);
        if (!warm) {
            sample(&s_report, (double)(now_mono_us() - t1) / 1000.0);
            atomic_fetch_add(&g_reported, ok);
        }
        herald__v1__report_publish_results_response__free_unpacked(out, NULL);
    }
    free(items);
    free(ptrs);
    free(ext);
}

/* One executor: claim a batch, report each item, until stopped or drained.
 * warm: only one cycle (not counted). */
static void run_executor(int t, bool warm)
{
    char exec[32];
    snprintf(exec, sizeof exec, "bench-exec-%d", t);
    int empty_in_row = 0;
    while (!atomic_load(&g_stop)) {
        Herald__V1__ClaimDueWorkRequest req = HERALD__V1__CLAIM_DUE_WORK_REQUEST__INIT;
        Herald__V1__ClaimDueWorkResponse *resp = NULL;
        char r[40];
        rid(r);
        req.request_id = r;
        req.executor_id = exec;
        req.limit = g_batch;
        req.lease_seconds = 120;
        int64_t t0 = now_mono_us();
        if (call("ClaimDueWork", &req.base, &herald__v1__claim_due_work_response__descriptor,
                 (ProtobufCMessage **)&resp) != 0) {
            atomic_fetch_add(&g_errors, 1);
            continue;
        }
        if (!warm)
            sample(&s_claim, (double)(now_mono_us() - t0) / 1000.0);
        atomic_fetch_add(&g_claims, 1);
        if (resp->n_items == 0) {
            herald__v1__claim_due_work_response__free_unpacked(resp, NULL);
            atomic_fetch_add(&g_empty, 1);
            if (++empty_in_row >= 3 || warm)
                return; /* drained */
            continue;
        }
        empty_in_row = 0;
        if (g_report_batch) {
            report_batch(exec, resp, warm);
            herald__v1__claim_due_work_response__free_unpacked(resp, NULL);
            if (warm)
                return;
            continue;
        }
        for (size_t i = 0; i < resp->n_items; i++) {
            const Herald__V1__WorkItem *w = resp->items[i];
            Herald__V1__ReportPublishResultRequest rq =
                HERALD__V1__REPORT_PUBLISH_RESULT_REQUEST__INIT;
            char r2[40], ext[48];
            rid(r2);
            snprintf(ext, sizeof ext, "b-%.40s", w->post->post_id);
            rq.request_id = r2;
            rq.lease_id = w->lease->lease_id;
            rq.executor_id = exec;
            rq.post_id = w->post->post_id;
            rq.outcome = HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_SUCCESS;
            rq.external_id = ext;
            int64_t t1 = now_mono_us();
            if (call("ReportPublishResult", &rq.base,
                     &herald__v1__report_publish_result_response__descriptor, NULL) != 0) {
                atomic_fetch_add(&g_errors, 1);
                continue;
            }
            if (!warm) {
                sample(&s_report, (double)(now_mono_us() - t1) / 1000.0);
                atomic_fetch_add(&g_reported, 1);
            }
        }
        herald__v1__claim_due_work_response__free_unpacked(resp, NULL);
        if (warm)
            return;
    }
}

static void *executor_main(void *arg)
{
    run_executor((int)(intptr_t)arg, false);
    return NULL;
}

static void *warm_main(void *arg)
{
    run_executor((int)(intptr_t)arg, true);
    return NULL;
}

static bool insert_posts(db_conn *db)
{
    char r[40];
    for (int k = 0; k < N_PROFILES; k++) {
        char id[16];
        snprintf(id, sizeof id, "bench%d", k);
        Herald__V1__CreateProfileRequest cr = HERALD__V1__CREATE_PROFILE_REQUEST__INIT;
        Herald__V1__Profile p = HERALD__V1__PROFILE__INIT;
        rid_make(r, 12, (unsigned)k + 1);
        cr.request_id = r;
        cr.profile = &p;
        p.profile_id = id;
        p.platform = HERALD__V1__PLATFORM__PLATFORM_X;
        if (ops_call(&g_hd, "CreateProfile", &cr.base, &herald__v1__profile__descriptor, 10000,
                     NULL, NULL) != 0)
            return false;
    }
    db_params q;
    db_params_init(&q);
    db_param_int64(&q, g_posts);
    db_param_int64(&q, N_PROFILES);
    status st =
        db_run(db, 300000, "bench_insert",
               "INSERT INTO posts (profile_id, state, platform, text, content_hash, "
               "provider, schedule_time) SELECT 'bench' || (g % $2::int), 'scheduled', "
               "'x', 'benchmark post ' || g, encode(sha256(('benchmark post ' || g)::bytea),"
               " 'hex'), 'builtin', now() - interval '1 minute' "
               "FROM generate_series(1, $1::int) g",
               &q, NULL);
    if (st == ST_OK)
        st = db_run(db, 300000, "bench_analyze", "ANALYZE posts", NULL, NULL);
    if (st != ST_OK)
        fprintf(stderr, "insert: %s\n", db_errmsg(db));
    return st == ST_OK;
}

/* CPU seconds (user + system) of pid from /proc/<pid>/stat; -1 if unreadable. */
static double proc_cpu_s(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    unsigned long long ut = 0, st = 0;
    /* fields after ")": state(3) ppid ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The postmaster's pid: $PG_PID, else PG_PID= in $HERALD_TEST_SERVICES_DIR/env
 * (the services fixture); 0 if neither. */
static long pg_postmaster(void)
{
    const char *s = getenv("PG_PID");
    if (s != NULL)
        return strtol(s, NULL, 10);
    const char *dir = getenv("HERALD_TEST_SERVICES_DIR");
    if (dir == NULL)
        return 0;
    char path[4096], line[512];
    (void)snprintf(path, sizeof path, "%s/env", dir);
    FILE *f = fopen(path, "r");
    long pid = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "PG_PID='%ld'", &pid) == 1 || sscanf(line, "PG_PID=%ld", &pid) == 1)
            break;
    if (f != NULL)
        (void)fclose(f);
    return pid;
}

/* CPU seconds of the postmaster pm with its reaped children (cutime,
 * cstime) and its live children (the backends); -1 if pm is unreadable. A
 * backend that exits between two samples moves from the second term to the
 * first, so differences stay whole. */
static double pg_cpu_s(long pm)
{
    char path[64], buf[1024];
    if (pm <= 0)
        return -1;
    (void)snprintf(path, sizeof path, "/proc/%ld/stat", pm);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    (void)fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    long long cut = 0, cst = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld", &ut, &st,
               &cut, &cst) != 4)
        return -1;
    double total =
        (double)(ut + st + (unsigned long long)(cut + cst)) / (double)sysconf(_SC_CLK_TCK);
    (void)snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", pm, pm);
    f = fopen(path, "r");
    if (f == NULL)
        return total;
    long child;
    while (fscanf(f, "%ld", &child) == 1) {
        double c = proc_cpu_s(child);
        if (c > 0)
            total += c;
    }
    (void)fclose(f);
    return total;
}

static double self_cpu_s(void)
{
    return proc_cpu_s((long)getpid());
}

static double load1(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

/* One run on a fresh database and heraldd, reporting one at a time or
 * (g_report_batch) one ReportPublishResults per claim. Prints its figures
 * and JSON line; *pass_out: the target was met without errors. Returns 0,
 * or 1 on a setup failure or errors. */
static int run_mode(const char *admin, bool *pass_out)
{
    atomic_store(&g_stop, false);
    atomic_store(&g_reported, 0);
    atomic_store(&g_claims, 0);
    atomic_store(&g_errors, 0);
    atomic_store(&g_empty, 0);
    s_claim.n = 0;
    s_report.n = 0;
    memset(&g_hd, 0, sizeof g_hd);
    *pass_out = false;
    char *dbname = NULL, dir[128];
    char *url = tdb_create(admin, "herald_bench_lease", &dbname);
    snprintf(dir, sizeof dir, "/tmp/herald-bench-lease-%d-%d", (int)getpid(),
             g_report_batch ? 1 : 0);
    char workers[32];
    snprintf(workers, sizeof workers, "HERALD_WORKERS=%d", g_workers);
    const char *extra[] = { workers, "HERALD_LOG_LEVEL=warn", NULL };
    int rc = 1;
    db_conn *db = NULL;
    if (!hd_start(&g_hd, dir, url, "", extra) ||
        !hd_wait_health(&g_hd, "herald.v1.SchedulingService", 1, 30000)) {
        fprintf(stderr, "heraldd did not start (log: %s)\n", g_hd.log);
        goto out;
    }
    db = tdb_open(url);
    if (!insert_posts(db))
        goto out;

    pthread_t th[64];
    for (int t = 0; t < g_executors; t++) /* warm-up: one batch each, not counted */
        pthread_create(&th[t], NULL, warm_main, (void *)(intptr_t)t);
    for (int t = 0; t < g_executors; t++)
        pthread_join(th[t], NULL);
    int64_t warm_done = tdb_int(db, "SELECT count(*) FROM posts WHERE state = 'published'");
    atomic_store(&g_claims, 0);
    atomic_store(&g_empty, 0);

    long pm = pg_postmaster();
    double hd_cpu0 = proc_cpu_s((long)g_hd.pid), pg_cpu0 = pg_cpu_s(pm), me_cpu0 = self_cpu_s();
    int64_t t0 = now_mono_us();
    for (int t = 0; t < g_executors; t++)
        pthread_create(&th[t], NULL, executor_main, (void *)(intptr_t)t);
    /* the time limit: stop the executors after g_seconds */
    bool all_done = false;
    while (!all_done && now_mono_us() - t0 < (int64_t)g_seconds * 1000000) {
        hd_sleep_ms(100);
        all_done = atomic_load(&g_reported) + warm_done >= g_posts;
    }
    atomic_store(&g_stop, true);
    for (int t = 0; t < g_executors; t++)
        pthread_join(th[t], NULL);
    double secs = (double)(now_mono_us() - t0) / 1e6;
    double hd_cpu = proc_cpu_s((long)g_hd.pid) - hd_cpu0, pg_cpu = pg_cpu_s(pm) - pg_cpu0,
           me_cpu = self_cpu_s() - me_cpu0;
    int64_t published = tdb_int(db, "SELECT count(*) FROM posts WHERE state = 'published'");
    int64_t attempts = tdb_int(db, "SELECT count(*) FROM publish_attempts");
    long reported = atomic_load(&g_reported);
    double pps = (double)reported / secs;
    double l1 = load1();
    printf("posts %d, published %lld (%lld attempts), %ld reported in %.2f s by %d executors, "
           "batch %d, heraldd workers %d\n",
           g_posts, (long long)published, (long long)attempts, reported, secs, g_executors, g_batch,
           g_workers);
    printf("claims %ld (%ld empty), errors %ld\n", atomic_load(&g_claims), atomic_load(&g_empty),
           atomic_load(&g_errors));
    printf("ClaimDueWork p50 %.2f ms p99 %.2f ms; ReportPublishResult p50 %.2f ms p99 %.2f ms\n",
           pct(&s_claim, 0.5), pct(&s_claim, 0.99), pct(&s_report, 0.5), pct(&s_report, 0.99));
    printf("load average (1 min) %.2f on %ld cores\n", l1, sysconf(_SC_NPROCESSORS_ONLN));
    double per = reported > 0 ? 1000.0 / (double)reported : 0;
    printf("CPU per published post: heraldd %.3f ms, PostgreSQL %.3f ms, executors %.3f ms "
           "(%.0f posts/s if these had the %ld cores to themselves)\n",
           hd_cpu * per, pg_cpu >= 0 ? pg_cpu * per : -1, me_cpu * per,
           hd_cpu + (pg_cpu > 0 ? pg_cpu : 0) + me_cpu > 0
               ? (double)sysconf(_SC_NPROCESSORS_ONLN) * (double)reported /
                     (hd_cpu + (pg_cpu > 0 ? pg_cpu : 0) + me_cpu)
               : 0,
           sysconf(_SC_NPROCESSORS_ONLN));
    bool pass = pps >= TARGET && atomic_load(&g_errors) == 0 && published == g_posts;
    printf("{\"bench\":\"lease_cycles\",\"executors\":%d,\"batch\":%d,\"posts\":%d,"
           "\"published\":%lld,\"seconds\":%.3f,\"posts_per_s\":%.1f,\"claims\":%ld,"
           "\"errors\":%ld,\"claim_p50_ms\":%.3f,\"claim_p99_ms\":%.3f,\"report_p50_ms\":%.3f,"
           "\"report_p99_ms\":%.3f,\"cpu_ms_per_post_heraldd\":%.3f,"
           "\"cpu_ms_per_post_postgres\":%.3f,\"cpu_ms_per_post_executors\":%.3f,"
           "\"request_ids\":%s,\"report_batch\":%s,\"heraldd_workers\":%d,\"nproc\":%ld,"
           "\"load1\":%.2f,\"target_posts_per_s\":%.0f,\"pass\":%s}\n",
           g_executors, g_batch, g_posts, (long long)published, secs, pps, atomic_load(&g_claims),
           atomic_load(&g_errors), pct(&s_claim, 0.5), pct(&s_claim, 0.99), pct(&s_report, 0.5),
           pct(&s_report, 0.99), hd_cpu * per, pg_cpu >= 0 ? pg_cpu * per : -1.0, me_cpu * per,
           g_rid ? "true" : "false", g_report_batch ? "true" : "false", g_workers,
           sysconf(_SC_NPROCESSORS_ONLN), l1, TARGET, pass ? "true" : "false");
    fflush(stdout);
    *pass_out = pass;
    rc = atomic_load(&g_errors) > 0 ? 1 : 0;
out:
    db_close(db);
    if (g_hd.pid > 0 && hd_stop(&g_hd) != 0) {
        fprintf(stderr, "heraldd did not exit cleanly (log: %s)\n", g_hd.log);
        rc = 1;
    }
    tdb_drop(admin, dbname);
    if (rc == 0)
        (void)tsh("rm -rf %s", dir);
    free(url);
    free(dbname);
    return rc;
}

int main(int argc, char **argv)
{
    bool report_only = false, compare = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        if (strcmp(a, "--report-only") == 0) {
            report_only = true;
        } else if (strcmp(a, "--report-batch") == 0) {
            g_report_batch = true;
        } else if (strcmp(a, "--compare") == 0) {
            compare = true;
        } else if (strcmp(a, "--no-request-id") == 0) {
            g_rid = false;
        } else if (strcmp(a, "--posts") == 0) {
            g_posts = atoi(v), i++;
        } else if (strcmp(a, "--batch") == 0) {
            g_batch = atoi(v), i++;
        } else if (strcmp(a, "--executors") == 0) {
            g_executors = atoi(v), i++;
        } else if (strcmp(a, "--workers") == 0) {
            g_workers = atoi(v), i++;
        } else if (strcmp(a, "--seconds") == 0) {
            g_seconds = atoi(v), i++;
        } else {
            fprintf(stderr, "usage: bench_lease [--posts N] [--batch B] [--executors E] "
                            "[--workers W] [--seconds S] [--no-request-id] [--report-batch] "
                            "[--compare] [--report-only]\n");
            return 2;
        }
    }
    if (g_posts < 100 || g_posts > 1000000 || g_batch < 1 || g_batch > 100 || g_executors < 1 ||
        g_executors > 64 || g_workers < 1 || g_workers > 64 || g_seconds < 1) {
        fprintf(stderr, "bench_lease: value out of range\n");
        return 2;
    }
    const char *admin = getenv("DATABASE_URL");
    if (admin == NULL) {
        fprintf(stderr, "DATABASE_URL not set: skipping\n");
        return TEST_SKIP;
    }
    s_claim.v = xcalloc(MAX_SAMPLES, sizeof(double));
    s_report.v = xcalloc(MAX_SAMPLES, sizeof(double));
    pthread_mutex_init(&s_claim.mu, NULL);
    pthread_mutex_init(&s_report.mu, NULL);

    herald_client_init();
    int rc = 0;
    bool pass = false;
    if (compare) { /* the other mode first, for comparison; the last line is the target's */
        g_report_batch = !g_report_batch;
        printf("-- for comparison: reports %s\n", g_report_batch ? "batched" : "one at a time");
        rc |= run_mode(admin, &pass);
        g_report_batch = !g_report_batch;
        printf("-- the target's mode: reports %s\n", g_report_batch ? "batched" : "one at a time");
    }
    rc |= run_mode(admin, &pass);
    if (rc == 0 && !pass && !report_only)
        rc = 1;
    herald_client_shutdown();
    free(s_claim.v);
    free(s_report.v);
    return rc;
}
