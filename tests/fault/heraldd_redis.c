/* heraldd_redis.c - Redis stopped, then paused, under a GetProfile read load
 * through heraldd (issue 4 "Done when"; conventions §16 T7).
 *
 * Starts a private PostgreSQL and Redis (tests/services.sh in a temp dir)
 * and a heraldd on them, creates PROFILES profiles and warms the cache.
 * READERS client threads then call GetProfile on them in a loop (deadline
 * 2 s) through five phases:
 *   baseline  Redis up                                   (BASE_MS)
 *   stopped   Redis killed by PID (SIGTERM)              (STOP_MS)
 *   back      Redis restarted                            (BACK_MS)
 *   paused    Redis SIGSTOPped: still accepts connections but never
 *             answers, so each lookup would pay the 50 ms timeout until the
 *             breaker opens; meanwhile an UpdateProfile is made and read
 *             back at once, again and again                (PAUSE_MS)
 *   resumed   SIGCONT, and the updated profile read again (RESUME_MS)
 * Checks: 100 % of reads succeed in every phase; the lookups that paid the
 * Redis timeout while it was paused are at most PAID_MAX (heraldd runs at
 * log level debug and logs each Redis failure a caller saw as "cache
 * unavailable"; the test counts those lines per phase by log offsets); no
 * read of the profile updated during the pause ever shows the old value,
 * during the pause or after Redis comes back with the old copy still in it.
 * Prints one "RESULT" line with the counts and latencies per phase (slow =
 * calls >= 45 ms seen by the client, which on a loaded machine includes
 * calls that merely queued behind one paying the timeout).
 *
 * Exit 0 when every check passed, 1 otherwise, 77 to skip (no DATABASE_URL:
 * not in the integration environment). */
#include <pthread.h>
#include <stdatomic.h>

#include "test_db_support.h"
#include "test_profiles_support.h"

enum {
    READERS = 2,
    PROFILES = 20,
    DEADLINE_MS = 2000,
    SLOW_MS = 45,  /* a call that waited about the Redis timeout (50 ms) */
    PAID_MAX = 10, /* breaker: K = 3 failures, then one probe per 5 s open period */
    BASE_MS = 3000,
    STOP_MS = 5000,
    BACK_MS = 7000, /* past the breaker's open time, so it closes again */
    PAUSE_MS = 12000,
    RESUME_MS = 7000,
    MAX_SAMPLES = 400000,
};

enum { PH_BASE = 0, PH_STOPPED, PH_BACK, PH_PAUSED, PH_RESUMED, N_PHASES };
static const char *const phase_names[N_PHASES] = { "baseline", "stopped", "back", "paused",
                                                   "resumed" };

typedef struct phase_stats {
    int calls, ok, failed, slow;
    int paid_get, paid_set; /* Redis failures heraldd logged in the phase */
    int32_t *lat_us;        /* per ok call */
    int n_lat;
} phase_stats;

static hd g_hd;
static tpriv g_pg;
static atomic_int g_phase;
static atomic_bool g_stop;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER; /* protects g_stats */
static phase_stats g_stats[N_PHASES];

static void *reader_main(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
    while (!atomic_load(&g_stop)) {
        char id[32];
        seed = seed * 1103515245u + 12345u;
        snprintf(id, sizeof id, "reader-%02u", (seed >> 8) % PROFILES);
        Herald__V1__GetProfileRequest req = HERALD__V1__GET_PROFILE_REQUEST__INIT;
        req.profile_id = id;
        int ph = atomic_load(&g_phase);
        int64_t t0 = now_mono_us();
        int code = ops_call(&g_hd, "GetProfile", &req.base, &herald__v1__profile__descriptor,
                            DEADLINE_MS, NULL, NULL);
        int64_t us = now_mono_us() - t0;
        pthread_mutex_lock(&g_mu);
        phase_stats *s = &g_stats[ph];
        s->calls++;
        if (code == 0) {
            s->ok++;
            if (s->n_lat < MAX_SAMPLES)
                s->lat_us[s->n_lat++] = (int32_t)(us > INT32_MAX ? INT32_MAX : us);
        } else {
            s->failed++;
            fprintf(stderr, "GetProfile %s in phase %s: %s\n", id, phase_names[ph],
                    herald_code_name(code));
        }
        if (us >= SLOW_MS * 1000)
            s->slow++;
        pthread_mutex_unlock(&g_mu);
    }
    return NULL;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static double pct_ms(phase_stats *s, double q)
{
    if (s->n_lat == 0)
        return -1;
    qsort(s->lat_us, (size_t)s->n_lat, sizeof *s->lat_us, cmp_i32);
    size_t i = (size_t)(q * (s->n_lat - 1));
    return s->lat_us[i] / 1000.0;
}

static pid_t redis_pid(void)
{
    tpriv_read_env(&g_pg);
    return (pid_t)atoi(g_pg.redis_pid);
}

static int update_name(const char *id, const char *name, unsigned n)
{
    char rid[40];
    rid_make(rid, 0x300, n);
    Herald__V1__UpdateProfileRequest ur = HERALD__V1__UPDATE_PROFILE_REQUEST__INIT;
    Herald__V1__Profile p = HERALD__V1__PROFILE__INIT;
    p.profile_id = (char *)id;
    p.display_name = (char *)name;
    ur.request_id = rid;
    ur.profile = &p;
    return ops_call(&g_hd, "UpdateProfile", &ur.base, &herald__v1__profile__descriptor, 5000, NULL,
                    NULL);
}

/* GetProfile id: 1 when display_name == want, 0 when it differs (stale), -1
 * on an error. */
static int read_is(const char *id, const char *want)
{
    Herald__V1__GetProfileRequest req = HERALD__V1__GET_PROFILE_REQUEST__INIT;
    ProtobufCMessage *m = NULL;
    req.profile_id = (char *)id;
    int code = ops_call(&g_hd, "GetProfile", &req.base, &herald__v1__profile__descriptor,
                        DEADLINE_MS, &m, NULL);
    if (code != 0)
        return -1;
    int same = strcmp(((Herald__V1__Profile *)m)->display_name, want) == 0;
    protobuf_c_message_free_unpacked(m, NULL);
    return same;
}

/* Runs phase ph for ms while the readers read; for the paused phase the
 * main thread also updates and re-reads the watched profile. */
static void run_phase(int ph, int ms, int *stale, int *stale_checks, int *errors, unsigned *n)
{
    long from = hd_log_mark(&g_hd);
    atomic_store(&g_phase, ph);
    int64_t until = now_mono_ms() + ms;
    while (now_mono_ms() < until) {
        if (ph == PH_PAUSED) {
            char name[32];
            snprintf(name, sizeof name, "paused-%u", ++*n);
            if (update_name("watched", name, *n) != 0) {
                (*errors)++;
            } else {
                for (int k = 0; k < 3; k++) {
                    int r = read_is("watched", name);
                    (*stale_checks)++;
                    *stale += r == 0;
                    *errors += r < 0;
                }
            }
            hd_sleep_ms(200);
        } else {
            hd_sleep_ms(50);
        }
    }
    long to = hd_log_mark(&g_hd);
    g_stats[ph].paid_get = hd_log_count_between(&g_hd, from, to, "cache unavailable", "\"get\"");
    g_stats[ph].paid_set = hd_log_count_between(&g_hd, from, to, "cache unavailable", "\"set\"");
}

int main(void)
{
    int rc = 1;
    int stale = 0, stale_checks = 0, errors = 0;
    unsigned n_upd = 0;
    bool paused = false;

    if (getenv("DATABASE_URL") == NULL) {
        fprintf(stderr, "DATABASE_URL not set (integration environment): skipping\n");
        return TEST_SKIP;
    }
    for (int i = 0; i < N_PHASES; i++)
        g_stats[i].lat_us = xcalloc(MAX_SAMPLES, sizeof(int32_t));
    if (!tpriv_up(&g_pg, "hdredis")) {
        fprintf(stderr, "cannot start a private PostgreSQL and Redis\n");
        tpriv_down(&g_pg);
        return 1;
    }
    herald_client_init();
    char dir[300];
    snprintf(dir, sizeof dir, "%s/heraldd", g_pg.dir);
    static const char *const env[] = { "HERALD_LOG_LEVEL=debug", NULL };
    if (!hd_start(&g_hd, dir, g_pg.database_url, g_pg.redis_url, env) ||
        !hd_wait_health(&g_hd, "readiness", 1, 30000)) {
        fprintf(stderr, "heraldd did not become ready (log: %s)\n", g_hd.log);
        goto out;
    }
    for (int i = 0; i <= PROFILES; i++) {
        char id[32], rid[40];
        if (i < PROFILES)
            snprintf(id, sizeof id, "reader-%02d", i);
        else
            snprintf(id, sizeof id, "watched");
        rid_make(rid, 0x200, (unsigned)i);
        Herald__V1__CreateProfileRequest cr = HERALD__V1__CREATE_PROFILE_REQUEST__INIT;
        Herald__V1__Profile p = HERALD__V1__PROFILE__INIT;
        p.profile_id = id;
        p.display_name = (char *)"before";
        p.platform = HERALD__V1__PLATFORM__PLATFORM_X;
        cr.request_id = rid;
        cr.profile = &p;
        if (ops_call(&g_hd, "CreateProfile", &cr.base, &herald__v1__profile__descriptor, 5000, NULL,
                     NULL) != 0) {
            fprintf(stderr, "create %s failed\n", id);
            goto out;
        }
        for (int k = 0; k < 2; k++)
            (void)read_is(id, "before"); /* warm: the second read is a hit */
    }

    pthread_t t[READERS];
    for (int i = 0; i < READERS; i++)
        pthread_create(&t[i], NULL, reader_main, (void *)(uintptr_t)(i + 1));

    run_phase(PH_BASE, BASE_MS, &stale, &stale_checks, &errors, &n_upd);

    pid_t rp = redis_pid();
    if (rp <= 0 || kill(rp, SIGTERM) != 0) {
        fprintf(stderr, "cannot stop Redis (pid %d)\n", (int)rp);
    } else {
        for (int i = 0; i < 100 && kill(rp, 0) == 0; i++)
            hd_sleep_ms(20);
    }
    run_phase(PH_STOPPED, STOP_MS, &stale, &stale_checks, &errors, &n_upd);

    if (!tpriv_restart(&g_pg))
        fprintf(stderr, "cannot restart Redis\n");
    run_phase(PH_BACK, BACK_MS, &stale, &stale_checks, &errors, &n_upd);

    rp = redis_pid();
    if (rp > 0 && kill(rp, SIGSTOP) == 0)
        paused = true;
    else
        fprintf(stderr, "cannot pause Redis (pid %d)\n", (int)rp);
    run_phase(PH_PAUSED, PAUSE_MS, &stale, &stale_checks, &errors, &n_upd);
    if (paused && kill(rp, SIGCONT) == 0)
        paused = false;

    /* back: the pre-pause copy of "watched" is still in Redis, unreachable */
    char last[32];
    snprintf(last, sizeof last, "paused-%u", n_upd);
    run_phase(PH_RESUMED, RESUME_MS, &stale, &stale_checks, &errors, &n_upd);
    for (int k = 0; k < 20; k++) {
        int r = read_is("watched", last);
        stale_checks++;
        stale += r == 0;
        errors += r < 0;
    }
    atomic_store(&g_stop, true);
    for (int i = 0; i < READERS; i++)
        pthread_join(t[i], NULL);

    int total = 0, ok = 0;
    printf("RESULT heraldd_redis");
    for (int i = 0; i < N_PHASES; i++) {
        phase_stats *s = &g_stats[i];
        total += s->calls;
        ok += s->ok;
        printf(" %s=calls:%d,ok:%d,redis_failed_get:%d,redis_failed_set:%d,slow:%d,p50_ms:%.2f,"
               "p99_ms:%.2f,max_ms:%.2f",
               phase_names[i], s->calls, s->ok, s->paid_get, s->paid_set, s->slow, pct_ms(s, 0.5),
               pct_ms(s, 0.99), pct_ms(s, 1.0));
    }
    printf(" total=%d ok=%d success_pct=%.2f paused_updates=%u stale_checks=%d stale=%d "
           "errors=%d\n",
           total, ok, total > 0 ? 100.0 * ok / total : 0.0, n_upd, stale_checks, stale, errors);
    fflush(stdout);
    bool each_phase_ran = true;
    for (int i = 0; i < N_PHASES; i++)
        each_phase_ran = each_phase_ran && g_stats[i].calls > 0;
    rc = (ok == total && each_phase_ran && stale == 0 && errors == 0 && n_upd > 0 &&
          g_stats[PH_PAUSED].paid_get >= 1 && g_stats[PH_PAUSED].paid_get <= PAID_MAX)
             ? 0
             : 1;
out:
    if (paused)
        kill(redis_pid(), SIGCONT);
    if (g_hd.pid > 0 && hd_stop(&g_hd) != 0) {
        fprintf(stderr, "heraldd did not exit 0 after SIGTERM\n");
        rc = 1;
    }
    herald_client_shutdown();
    if (rc != 0)
        (void)tsh("tail -n 30 %s >&2", g_hd.log);
    tpriv_down(&g_pg);
    for (int i = 0; i < N_PHASES; i++)
        free(g_stats[i].lat_us);
    return rc;
}
