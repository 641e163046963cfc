/* soak.c - heraldd under a fixed mixed load for minutes (issue 8, "Done
 * when"; conventions T12): does its memory level off, and do its file
 * descriptors and threads stay put?
 *
 *   build/bin/soak [--duration S] [--rate N] [--threads T] [--sample S] [--no-generation]
 *
 * Starts a private PostgreSQL and Redis (tests/services.sh in a temp dir)
 * and heraldd (2 workers, 127.0.0.1, a free port), creates 20 profiles with
 * 300 posts of history each (see setup_data), then sends N calls/s (default 100) for S seconds
 * (default 300) from T client threads (default 8), open loop: each thread
 * has its own schedule, one call in flight at a time; a thread that falls
 * more than a slot behind drops the missed slots ("late") rather than
 * bursting. Every 10 calls of a thread:
 *   7 reads   GetProfile x3, ListProfiles, ListPosts, GetStatus, GetProfile
 *   2 writes  UpdateProfile (display_name, a new request_id each time),
 *             RecordEngagement (10 new observations)
 *   1 generation  GenerateDraft (built-in provider); --no-generation makes
 *                 it a GetProfile (to tell what generation costs)
 * heraldd's VmRSS, open fds and threads are read from /proc every --sample
 * seconds (default 10); the figures compared are those after the first
 * minute (the warm-up: caches, pools, arenas) and at the end.
 *
 * Pass: RSS at the end <= 1.10 x RSS after minute 1 and < 64 MiB; fds and
 * threads at the end within 5 of minute 1's; heraldd alive throughout and
 * exiting 0 after SIGTERM. Exit 0 on pass, 1 on a failed target, 2 when
 * the run itself could not happen (services, start-up). The last line of
 * stdout is one JSON object (for `| tail -n 1 >> results.jsonl`).
 *
 * Everything started here is stopped here, by PID (heraldd) or through
 * services.sh down (which stops by the PIDs it recorded), also on failure. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dirent.h>

#include "google/protobuf/field_mask.pb-c.h"
#include "herald/v1/content.pb-c.h"
#include "herald/v1/learning.pb-c.h"
#include "test_db_support.h"
#include "test_profiles_support.h"

enum {
    N_PROFILES = 20,
    POSTS_PER_PROFILE = 5,
    HISTORY_PER_PROFILE = 300, /* an account's history, so generation starts in steady state */
    OBS_PER_CALL = 10,
    LAT_BUCKETS = 10000, /* 1 ms each; the last one is ">= 10 s" */
    MAX_THREADS = 32,
    N_KINDS = 8,
};

typedef enum {
    K_GET_PROFILE = 0,
    K_LIST_PROFILES,
    K_LIST_POSTS,
    K_GET_STATUS,
    K_UPDATE_PROFILE,
    K_RECORD_ENGAGEMENT,
    K_GENERATE_DRAFT,
    K_HEALTH,
} kind;

static const char *const kind_names[N_KINDS] = {
    "GetProfile",    "ListProfiles",     "ListPosts",     "GetStatus",
    "UpdateProfile", "RecordEngagement", "GenerateDraft", "Check",
};

/* The 10-call cycle of each thread: 7 reads, 2 writes, 1 generation. */
static const kind cycle[10] = {
    K_GET_PROFILE, K_LIST_PROFILES, K_GET_PROFILE,    K_LIST_POSTS,        K_GET_PROFILE,
    K_GET_STATUS,  K_GET_PROFILE,   K_UPDATE_PROFILE, K_RECORD_ENGAGEMENT, K_GENERATE_DRAFT,
};

typedef struct stats {
    atomic_uint_fast64_t calls[N_KINDS][17]; /* by kind and gRPC code */
    atomic_uint_fast64_t lat[LAT_BUCKETS];
    atomic_uint_fast64_t late; /* times a thread fell a slot behind and dropped the missed slots */
} stats;

static stats g_st;
static hd g_hd;
static char *g_posts[N_PROFILES * POSTS_PER_PROFILE];
static int64_t g_until_ms;
static double g_rate_per_thread;
static atomic_uint g_rid;
static bool g_no_generation;
static volatile sig_atomic_t g_signalled; /* SIGTERM/SIGINT: end the load early, clean up */

static void on_signal(int sig)
{
    g_signalled = sig;
}

typedef struct sample {
    double t_s;
    int64_t rss_kb;
    int64_t fds;
    int64_t threads;
} sample;

static const char *profile_id(unsigned i)
{
    static char ids[N_PROFILES][16];
    i %= N_PROFILES;
    if (ids[i][0] == '\0')
        snprintf(ids[i], sizeof ids[i], "soak-%02u", i);
    return ids[i];
}

static char *new_rid(char buf[40])
{
    rid_make(buf, 0x50a, atomic_fetch_add(&g_rid, 1) + 1);
    return buf;
}

/* ---- heraldd's figures from /proc ---- */

static bool proc_sample(pid_t pid, sample *s)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    s->rss_kb = s->threads = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        long long v;
        if (sscanf(line, "VmRSS: %lld kB", &v) == 1)
            s->rss_kb = v;
        else if (sscanf(line, "Threads: %lld", &v) == 1)
            s->threads = v;
    }
    fclose(f);
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    s->fds = 0;
    if (d != NULL) {
        const struct dirent *e;
        while ((e = readdir(d)) != NULL)
            s->fds += e->d_name[0] != '.';
        closedir(d);
    }
    return s->rss_kb > 0;
}

/* ---- the calls ---- */

static int unary(const char *path, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *d)
{
    herald_status st;
    herald_call_options o = { .timeout_ms = 10000 };
    ProtobufCMessage *r = NULL;
    herald_status_init(&st);
    int code = herald_call_unary(g_hd.ch, path, req, d, &o, &r, &st);
    herald_status_fini(&st);
    if (r != NULL)
        protobuf_c_message_free_unpacked(r, NULL);
    return code;
}

static int do_call(kind k, unsigned n)
{
    char rid[40];
    switch (k) {
    case K_GET_PROFILE: {
        Herald__V1__GetProfileRequest r = HERALD__V1__GET_PROFILE_REQUEST__INIT;
        r.profile_id = (char *)profile_id(n);
        return unary(OPS "GetProfile", &r.base, &herald__v1__profile__descriptor);
    }
    case K_LIST_PROFILES: {
        Herald__V1__ListProfilesRequest r = HERALD__V1__LIST_PROFILES_REQUEST__INIT;
        r.page_size = 50;
        return unary(OPS "ListProfiles", &r.base, &herald__v1__list_profiles_response__descriptor);
    }
    case K_LIST_POSTS: {
        Herald__V1__ListPostsRequest r = HERALD__V1__LIST_POSTS_REQUEST__INIT;
        r.profile_id = (char *)profile_id(n);
        r.page_size = 20;
        return unary("/herald.v1.ContentService/ListPosts", &r.base,
                     &herald__v1__list_posts_response__descriptor);
    }
    case K_GET_STATUS: {
        Herald__V1__GetStatusRequest r = HERALD__V1__GET_STATUS_REQUEST__INIT;
        return unary(OPS "GetStatus", &r.base, &herald__v1__get_status_response__descriptor);
    }
    case K_UPDATE_PROFILE: {
        Herald__V1__UpdateProfileRequest r = HERALD__V1__UPDATE_PROFILE_REQUEST__INIT;
        Herald__V1__Profile p = HERALD__V1__PROFILE__INIT;
        Google__Protobuf__FieldMask m = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
        char name[64];
        char *paths[] = { (char *)"display_name" };
        snprintf(name, sizeof name, "Soak profile, update %u", n);
        p.profile_id = (char *)profile_id(n);
        p.display_name = name;
        m.paths = paths;
        m.n_paths = 1;
        r.request_id = new_rid(rid);
        r.profile = &p;
        r.update_mask = &m;
        return unary(OPS "UpdateProfile", &r.base, &herald__v1__profile__descriptor);
    }
    case K_RECORD_ENGAGEMENT: {
        Herald__V1__EngagementObservation obs[OBS_PER_CALL], *ptrs[OBS_PER_CALL];
        Google__Protobuf__Timestamp ts[OBS_PER_CALL];
        Herald__V1__RecordEngagementRequest r = HERALD__V1__RECORD_ENGAGEMENT_REQUEST__INIT;
        int64_t base_s = (int64_t)time(NULL) - 3600;
        for (int i = 0; i < OBS_PER_CALL; i++) {
            herald__v1__engagement_observation__init(&obs[i]);
            google__protobuf__timestamp__init(&ts[i]);
            ts[i].seconds = base_s;
            ts[i].nanos = (int32_t)((n * OBS_PER_CALL + (unsigned)i) % 1000000) * 1000;
            obs[i].post_id = g_posts[(n + (unsigned)i) % (N_PROFILES * POSTS_PER_PROFILE)];
            obs[i].observe_time = &ts[i];
            obs[i].source = (char *)"soak";
            obs[i].impressions = 1000 + n % 1000;
            obs[i].impressions_opt_case =
                HERALD__V1__ENGAGEMENT_OBSERVATION__IMPRESSIONS_OPT_IMPRESSIONS;
            obs[i].likes = n % 50;
            obs[i].likes_opt_case = HERALD__V1__ENGAGEMENT_OBSERVATION__LIKES_OPT_LIKES;
            ptrs[i] = &obs[i];
        }
        r.request_id = new_rid(rid);
        r.observations = ptrs;
        r.n_observations = OBS_PER_CALL;
        return unary("/herald.v1.LearningService/RecordEngagement", &r.base,
                     &herald__v1__record_engagement_response__descriptor);
    }
    case K_GENERATE_DRAFT: {
        Herald__V1__GenerateDraftRequest r = HERALD__V1__GENERATE_DRAFT_REQUEST__INIT;
        r.request_id = new_rid(rid);
        r.profile_id = (char *)profile_id(n);
        r.provider = HERALD__V1__PROVIDER__PROVIDER_BUILTIN;
        return unary("/herald.v1.ContentService/GenerateDraft", &r.base,
                     &herald__v1__generate_draft_response__descriptor);
    }
    case K_HEALTH:
        return hd_health(&g_hd, "readiness") == 1 ? 0 : 14;
    }
    return 2;
}

static void *client_main(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    double period_ms = 1000.0 / g_rate_per_thread;
    /* threads start spread over one period */
    double next = (double)now_mono_ms() + period_ms * id / MAX_THREADS;
    unsigned n = id * 7919u;
    for (unsigned i = 0;
         (int64_t)next < g_until_ms && now_mono_ms() < g_until_ms && g_signalled == 0;
         i++, n += 13) {
        int64_t now = now_mono_ms();
        if ((double)now < next) {
            hd_sleep_ms((int)(next - (double)now));
        } else if ((double)now - next > period_ms) {
            /* behind by more than a slot: the missed slots are dropped (no
             * burst to catch up), so the rate never exceeds the target */
            atomic_fetch_add(&g_st.late, 1);
            next = (double)now;
        }
        next += period_ms;
        kind k = cycle[i % 10];
        if (k == K_GENERATE_DRAFT && g_no_generation)
            k = K_GET_PROFILE;
        int64_t t0 = now_mono_us();
        int code = do_call(k, n);
        int64_t ms = (now_mono_us() - t0) / 1000;
        atomic_fetch_add(&g_st.lat[ms < LAT_BUCKETS - 1 ? ms : LAT_BUCKETS - 1], 1);
        atomic_fetch_add(&g_st.calls[k][code >= 0 && code <= 16 ? code : 2], 1);
    }
    return NULL;
}

static double lat_quantile(double q)
{
    uint64_t total = 0, seen = 0;
    for (size_t i = 0; i < LAT_BUCKETS; i++)
        total += atomic_load(&g_st.lat[i]);
    if (total == 0)
        return 0;
    for (size_t i = 0; i < LAT_BUCKETS; i++) {
        seen += atomic_load(&g_st.lat[i]);
        if ((double)seen >= q * (double)total)
            return (double)i + 0.5;
    }
    return LAT_BUCKETS;
}

/* ---- set-up ---- */

static bool setup_data(const char *database_url)
{
    for (unsigned i = 0; i < N_PROFILES; i++) {
        char rid[40];
        Herald__V1__CreateProfileRequest r = HERALD__V1__CREATE_PROFILE_REQUEST__INIT;
        Herald__V1__Profile p = HERALD__V1__PROFILE__INIT;
        r.request_id = new_rid(rid);
        r.profile = &p;
        p.profile_id = (char *)profile_id(i);
        p.platform = (Herald__V1__Platform)(1 + i % 4);
        int code = unary(OPS "CreateProfile", &r.base, &herald__v1__profile__descriptor);
        if (code != 0 && code != 6) {
            fprintf(stderr, "soak: CreateProfile %s: code %d\n", profile_id(i), code);
            return false;
        }
    }
    /* published posts to record engagement on (an executor would have
     * reported them) */
    db_conn *db = tdb_open(database_url);
    bool ok = true;
    for (unsigned i = 0; ok && i < N_PROFILES * POSTS_PER_PROFILE; i++) {
        db_params p;
        db_res *res = NULL;
        char text[96], ext[48];
        snprintf(text, sizeof text, "Soak post %u: a short note on sleep and daylight.", i);
        snprintf(ext, sizeof ext, "soak-%u", i);
        db_params_init(&p);
        db_param_text(&p, profile_id(i % N_PROFILES));
        db_param_text(&p, text);
        db_param_text(&p, ext);
        status st = db_run(db, 10000, "soak_post",
                           "INSERT INTO posts (profile_id, state, platform, text, content_hash, "
                           "provider, schedule_time, publish_time, external_id) SELECT $1, "
                           "'published', platform, $2, encode(sha256(convert_to($2, 'UTF8')), "
                           "'hex'), 'builtin', now() - interval '2 hours', now() - interval "
                           "'2 hours', $3 FROM profiles WHERE profile_id = $1 RETURNING post_id",
                           &p, &res);
        ok = st == ST_OK && db_res_rows(res) == 1;
        if (ok)
            g_posts[i] = xstrdup(db_res_text(res, 0, 0));
        else
            fprintf(stderr, "soak: post insert: %s\n", db_errmsg(db));
        db_res_free(res);
    }
    /* Each profile's history: GenerateDraft compares a new text with the
     * profile's recent posts, whose fingerprints ContentService keeps in a
     * bounded process-wide cache (4,096 slots, ~8 MB; content_store.c).
     * Seeded (texts as long as the built-in generator's on each platform:
     * X 260, Bluesky 280, Threads 415, LinkedIn 460 characters, measured),
     * that cache is full after the first round of generations, as it is on
     * any server with history; unseeded it fills during the first ~10
     * minutes at this rate and the RSS climbs until then. */
    for (unsigned i = 0; ok && i < N_PROFILES; i++) {
        db_params p;
        char n[16];
        snprintf(n, sizeof n, "%d", HISTORY_PER_PROFILE);
        db_params_init(&p);
        db_param_text(&p, profile_id(i));
        db_param_text(&p, n);
        status st = db_run(
            db, 30000, "soak_history",
            "INSERT INTO posts (profile_id, state, platform, text, content_hash, provider, "
            "schedule_time, publish_time, external_id, created_at) SELECT $1::text, 'published', "
            "pr.platform, t.text, encode(sha256(convert_to(t.text, 'UTF8')), 'hex'), 'builtin', "
            "now() - g * interval '1 hour', now() - g * interval '1 hour', $1::text || '-h' || g, "
            "now() - g * interval '1 hour' FROM profiles pr, generate_series(1, $2::int) g, "
            "LATERAL (SELECT left(format('History %s of %s: ', g, $1::text) || "
            "(SELECT string_agg(md5(g::text || $1::text || k::text), ' ') "
            "FROM generate_series(1, 16) k), CASE pr.platform WHEN 'x' THEN 260 "
            "WHEN 'bluesky' THEN 280 WHEN 'threads' THEN 415 ELSE 460 END) AS text) t "
            "WHERE pr.profile_id = $1",
            &p, NULL);
        if (st != ST_OK) {
            fprintf(stderr, "soak: history insert: %s\n", db_errmsg(db));
            ok = false;
        }
    }
    db_close(db);
    return ok;
}

static void usage(void)
{
    fprintf(stderr, "usage: soak [--duration S] [--rate N] [--threads T] [--sample S] "
                    "[--no-generation]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int duration_s = 300, rate = 100, threads = 8, sample_s = 10;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-generation") == 0) {
            g_no_generation = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        int v = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--duration") == 0 && v >= 10 && v <= 3600)
            duration_s = v;
        else if (strcmp(argv[i], "--rate") == 0 && v >= 1 && v <= 5000)
            rate = v;
        else if (strcmp(argv[i], "--threads") == 0 && v >= 1 && v <= MAX_THREADS)
            threads = v;
        else if (strcmp(argv[i], "--sample") == 0 && v >= 1 && v <= 60)
            sample_s = v;
        else
            usage();
        i++;
    }
    int warm_s = duration_s >= 120 ? 60 : duration_s / 5; /* "after the first minute" */

    tpriv svc;
    int rc = 2;
    bool services = false, started = false;
    sample s_warm = { 0 }, s_end = { 0 }, s_max = { 0 };
    int heraldd_exit = -1;
    char dir[160];
    snprintf(dir, sizeof dir, "/tmp/herald-soak-run-%d", (int)getpid());

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    herald_client_init();
    if (!tpriv_up(&svc, "soak")) {
        fprintf(stderr, "soak: tests/services.sh up failed\n");
        goto out;
    }
    services = true;
    const char *extra[] = { "HERALD_LOG_LEVEL=warn", NULL };
    if (!hd_start(&g_hd, dir, svc.database_url, svc.redis_url, extra) ||
        !hd_wait_health(&g_hd, "readiness", 1, 60000)) {
        fprintf(stderr, "soak: heraldd did not become ready (log: %s)\n", g_hd.log);
        goto out;
    }
    started = true;
    if (!setup_data(svc.database_url))
        goto out;

    printf("soak: %d calls/s for %d s from %d threads against heraldd pid %d (2 workers)\n", rate,
           duration_s, threads, (int)g_hd.pid);
    fflush(stdout);
    g_rate_per_thread = (double)rate / threads;
    int64_t t0 = now_mono_ms();
    g_until_ms = t0 + (int64_t)duration_s * 1000;
    pthread_t th[MAX_THREADS];
    int n_th = 0;
    for (int i = 0; i < threads; i++)
        if (pthread_create(&th[n_th], NULL, client_main, (void *)(uintptr_t)i) == 0)
            n_th++;
    bool alive = true, warm_taken = false;
    int64_t next_sample = t0 + (int64_t)sample_s * 1000;
    while (now_mono_ms() < g_until_ms && alive && g_signalled == 0) {
        hd_sleep_ms(200);
        if (now_mono_ms() < next_sample && !(!warm_taken && now_mono_ms() >= t0 + warm_s * 1000))
            continue;
        sample s;
        alive = hd_alive(&g_hd) && proc_sample(g_hd.pid, &s);
        if (!alive)
            break;
        s.t_s = (double)(now_mono_ms() - t0) / 1000.0;
        if (!warm_taken && s.t_s >= warm_s) {
            s_warm = s;
            warm_taken = true;
        }
        if (s.rss_kb > s_max.rss_kb)
            s_max = s;
        s_end = s;
        uint64_t total = 0;
        for (int k = 0; k < N_KINDS; k++)
            for (int c = 0; c < 17; c++)
                total += atomic_load(&g_st.calls[k][c]);
        printf("t=%5.0fs rss=%6lld kB fds=%3lld threads=%3lld calls=%llu\n", s.t_s,
               (long long)s.rss_kb, (long long)s.fds, (long long)s.threads,
               (unsigned long long)total);
        fflush(stdout);
        if (now_mono_ms() >= next_sample)
            next_sample += (int64_t)sample_s * 1000;
    }
    for (int i = 0; i < n_th; i++)
        pthread_join(th[i], NULL);
    if (alive && hd_alive(&g_hd) && proc_sample(g_hd.pid, &s_end))
        s_end.t_s = (double)(now_mono_ms() - t0) / 1000.0;
    else
        alive = false;
    heraldd_exit = hd_stop(&g_hd);
    started = false;

    /* the figures */
    uint64_t total = 0, ok = 0, server_errors = 0;
    for (int k = 0; k < N_KINDS; k++)
        for (int c = 0; c < 17; c++) {
            uint64_t v = atomic_load(&g_st.calls[k][c]);
            total += v;
            ok += c == 0 ? v : 0;
            server_errors += (c == 2 || c == 4 || c == 13 || c == 14 || c == 15) ? v : 0;
        }
    printf("calls by method and code:\n");
    for (int k = 0; k < N_KINDS; k++)
        for (int c = 0; c < 17; c++) {
            uint64_t v = atomic_load(&g_st.calls[k][c]);
            if (v > 0)
                printf("  %-17s %-20s %llu\n", kind_names[k], herald_code_name(c),
                       (unsigned long long)v);
        }
    double ratio = s_warm.rss_kb > 0 ? (double)s_end.rss_kb / (double)s_warm.rss_kb : 0;
    bool rss_ok = warm_taken && ratio <= 1.10 && s_end.rss_kb < 64 * 1024;
    bool fds_ok = warm_taken && llabs(s_end.fds - s_warm.fds) <= 5;
    bool thr_ok = warm_taken && llabs(s_end.threads - s_warm.threads) <= 5;
    bool pass = alive && heraldd_exit == 0 && rss_ok && fds_ok && thr_ok && g_signalled == 0;
    rc = pass ? 0 : 1;
    printf("{\"bench\":\"soak\",\"duration_s\":%d,\"rate\":%d,\"threads\":%d,\"generation\":%s,"
           "\"calls\":%llu,"
           "\"ok\":%llu,\"server_errors\":%llu,\"late\":%llu,\"p50_ms\":%.1f,\"p99_ms\":%.1f,"
           "\"warm_s\":%d,\"rss_warm_kb\":%lld,\"rss_end_kb\":%lld,\"rss_ratio\":%.3f,"
           "\"rss_max_kb\":%lld,\"fds_warm\":%lld,\"fds_end\":%lld,\"threads_warm\":%lld,"
           "\"threads_end\":%lld,\"heraldd_exit\":%d,\"pass\":%s,\"nproc\":%ld}\n",
           duration_s, rate, threads, g_no_generation ? "false" : "true", (unsigned long long)total,
           (unsigned long long)ok, (unsigned long long)server_errors,
           (unsigned long long)atomic_load(&g_st.late), lat_quantile(0.50), lat_quantile(0.99),
           warm_s, (long long)s_warm.rss_kb, (long long)s_end.rss_kb, ratio,
           (long long)s_max.rss_kb, (long long)s_warm.fds, (long long)s_end.fds,
           (long long)s_warm.threads, (long long)s_end.threads, heraldd_exit,
           pass ? "true" : "false", sysconf(_SC_NPROCESSORS_ONLN));
    fflush(stdout);
out:
    if (started)
        (void)hd_stop(&g_hd);
    if (services)
        tpriv_down(&svc);
    if (rc == 0)
        (void)tsh("rm -rf %s", dir);
    else if (rc == 2)
        printf("{\"bench\":\"soak\",\"pass\":false,\"error\":\"set-up failed\"}\n");
    for (size_t i = 0; i < N_PROFILES * POSTS_PER_PROFILE; i++)
        free(g_posts[i]);
    herald_client_shutdown();
    return rc;
}
