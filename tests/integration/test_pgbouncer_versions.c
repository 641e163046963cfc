/* test_pgbouncer_versions.c - the cache-version map (server/vercache.h)
 * behind PgBouncer in transaction pooling mode, where notifications go to
 * whichever client holds the server connection:
 *   - heraldd A reaches PostgreSQL through a private pgbouncer
 *     (pool_mode = transaction, db.prepared_statements off, the version
 *     listener on): its map must never be trusted (/metrics:
 *     herald_version_map_trusted 0, herald_version_map_heartbeats_unechoed_total
 *     rising, no lookup served from the map);
 *   - writes made directly on PostgreSQL (SetArmEnabled on heraldd C, a
 *     notified UPDATE of cache_versions) show in A's very next GetInsights
 *     and GetBestTimes: A reads every version from PostgreSQL;
 *   - control: heraldd C, connected directly, trusts its map.
 * A reply "reflects" a write when its compute_time differs from the one
 * computed before (every version makes a new cache key).
 *
 * pgbouncer runs in the foreground under the test's temp dir (its own
 * config, a unix socket only, auth trust to the services fixture's
 * PostgreSQL), as user postgres when the test runs as root (it refuses
 * root), with PR_SET_PDEATHSIG so it never outlives the test; it is
 * stopped by its PID. Exits 77 when pgbouncer or the services fixture is
 * absent. Every wait is bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <grp.h>
#include <pwd.h>

#include "test_learning_svc_support.h"

#define PGB_PORT 6432 /* a file name in our own socket dir, not a TCP port */

static ls_env C; /* direct to PostgreSQL; owns the database */
static ls_env A; /* through pgbouncer: only hd and learn are set */
static int C_admin, A_admin;
static pid_t pgb_pid;
static char pgb_dir[160], A_dir[128];
static int64_t A_started_ms;

/* pgbouncer: $PGBOUNCER, then Debian's /usr/sbin, then PATH; NULL when none. */
static char *pgb_bin(void)
{
    const char *env = getenv("PGBOUNCER");
    if (env != NULL && access(env, X_OK) == 0)
        return xstrdup(env);
    if (access("/usr/sbin/pgbouncer", X_OK) == 0)
        return xstrdup("/usr/sbin/pgbouncer");
    const char *path = getenv("PATH");
    char *copy = xstrdup(path != NULL ? path : "");
    char *save = NULL, *found = NULL;
    for (char *d = strtok_r(copy, ":", &save); d != NULL && found == NULL;
         d = strtok_r(NULL, ":", &save)) {
        char *p = xasprintf("%s/pgbouncer", d);
        if (access(p, X_OK) == 0)
            found = p;
        else
            free(p);
    }
    free(copy);
    return found;
}

/* The value of key=... in the query string of a libpq URI, into out. */
static bool uri_param(const char *uri, const char *key, char *out, size_t cap)
{
    const char *q = strchr(uri, '?');
    size_t n = strlen(key);
    while (q != NULL) {
        q++;
        if (strncmp(q, key, n) == 0 && q[n] == '=') {
            size_t len = strcspn(q + n + 1, "&");
            if (len + 1 > cap)
                return false;
            memcpy(out, q + n + 1, len);
            out[len] = '\0';
            return true;
        }
        q = strchr(q, '&');
    }
    return false;
}

/* Writes the config and starts pgbouncer in the foreground; true once its
 * socket exists. */
static bool pgb_start(const char *bin, const char *pg_host, const char *pg_port)
{
    struct passwd *pw = NULL;
    if (geteuid() == 0 && (pw = getpwnam("postgres")) == NULL) {
        fprintf(stderr, "running as root and no user postgres to run pgbouncer as\n");
        return false;
    }
    mkdir(pgb_dir, 0755);
    char *ini = xasprintf("%s/pgbouncer.ini", pgb_dir);
    char *users = xasprintf("%s/users.txt", pgb_dir);
    char *sock = xasprintf("%s/.s.PGSQL.%d", pgb_dir, PGB_PORT);
    char *out = xasprintf("%s/pgbouncer.out", pgb_dir); /* no malloc after fork */
    FILE *f = fopen(users, "w");
    bool ok = f != NULL;
    if (f != NULL) {
        fputs("\"herald\" \"\"\n", f);
        fclose(f);
    }
    f = ok ? fopen(ini, "w") : NULL;
    if (f != NULL) {
        fprintf(f,
                "[databases]\n"
                "* = host=%s port=%s\n"
                "[pgbouncer]\n"
                "listen_addr =\n"
                "listen_port = %d\n"
                "unix_socket_dir = %s\n"
                "auth_type = trust\n"
                "auth_file = %s\n"
                "pool_mode = transaction\n"
                "default_pool_size = 10\n"
                "max_client_conn = 100\n"
                "logfile = %s/pgbouncer.log\n"
                "ignore_startup_parameters = extra_float_digits\n",
                pg_host, pg_port, PGB_PORT, pgb_dir, users, pgb_dir);
        fclose(f);
    }
    ok = f != NULL;
    if (ok && pw != NULL)
        ok = tsh("chown -R postgres: %s", pgb_dir) == 0;
    pid_t parent = getpid();
    pid_t pid = ok ? fork() : -1;
    if (pid == 0) {
        /* drop root first: a change of credentials clears the death signal */
        if (pw != NULL &&
            (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0))
            _exit(126);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        char *const argv[] = { (char *)bin, ini, NULL };
        execv(bin, argv);
        _exit(127);
    }
    ok = pid > 0;
    if (ok)
        pgb_pid = pid;
    bool up = false;
    for (int64_t until = now_mono_ms() + 10000; ok && !up && now_mono_ms() < until;) {
        int wst;
        if (waitpid(pid, &wst, WNOHANG) == pid) {
            pgb_pid = 0;
            break;
        }
        up = access(sock, F_OK) == 0;
        if (!up)
            hd_sleep_ms(20);
    }
    if (!up)
        fprintf(stderr, "pgbouncer did not start (see %s/pgbouncer.log and .out)\n", pgb_dir);
    free(out);
    free(sock);
    free(users);
    free(ini);
    return up;
}

/* SIGTERM by PID (SIGKILL after 10 s); 0 when it stopped on SIGTERM. */
static int pgb_stop(void)
{
    if (pgb_pid <= 0)
        return 0;
    kill(pgb_pid, SIGTERM);
    int wst = 0, rc = 0;
    for (int64_t until = now_mono_ms() + 10000;;) {
        if (waitpid(pgb_pid, &wst, WNOHANG) == pgb_pid)
            break;
        if (now_mono_ms() > until) {
            fprintf(stderr, "pgbouncer %d ignored SIGTERM for 10 s: killing it\n", (int)pgb_pid);
            kill(pgb_pid, SIGKILL);
            waitpid(pgb_pid, &wst, 0);
            rc = -1;
            break;
        }
        hd_sleep_ms(20);
    }
    pgb_pid = 0;
    return rc;
}

static void pgb_stop_at_exit(void)
{
    (void)pgb_stop(); /* a failed set-up exits without the group teardown */
}

/* The "port" of heraldd's "admin listener up" log line, waiting up to 10 s. */
static int admin_port(const hd *h)
{
    for (int64_t until = now_mono_ms() + 10000; now_mono_ms() < until; hd_sleep_ms(50)) {
        FILE *f = fopen(h->log, "r");
        char line[8192];
        int port = 0;
        while (f != NULL && fgets(line, sizeof line, f) != NULL) {
            const char *p = strstr(line, "\"admin listener up\"");
            if (p != NULL && (p = strstr(p, "\"port\":")) != NULL)
                port = atoi(p + 7);
        }
        if (f != NULL)
            fclose(f);
        if (port > 0)
            return port;
    }
    return 0;
}

/* The value of the sample `name value` (no labels, or exactly the label set
 * given in name) on /metrics of 127.0.0.1:port; -1 when absent. */
static double metric(int port, const char *name)
{
    char cmd[160], line[4096];
    snprintf(cmd, sizeof cmd, "curl -sS --max-time 5 http://127.0.0.1:%d/metrics", port);
    FILE *p = popen(cmd, "r");
    double v = -1;
    size_t n = strlen(name);
    while (p != NULL && fgets(line, sizeof line, p) != NULL)
        if (strncmp(line, name, n) == 0 && line[n] == ' ')
            v = strtod(line + n + 1, NULL);
    if (p != NULL)
        pclose(p);
    return v;
}

static int group_setup(void **state)
{
    (void)state;
    static const char *const c_extra[] = { "HERALD_ADMIN_LISTEN=127.0.0.1:0", NULL };
    char pg_host[256], pg_port[16] = "5432";
    const char *admin = getenv("DATABASE_URL");
    char *bin = pgb_bin();
    if (bin == NULL || admin == NULL) {
        fprintf(stderr, "%s: skipping\n",
                bin == NULL ? "no pgbouncer (scripts/deps installs it)" : "DATABASE_URL not set");
        free(bin);
        exit(TEST_SKIP);
    }
    if (!uri_param(admin, "host", pg_host, sizeof pg_host) || pg_host[0] != '/') {
        fprintf(stderr, "DATABASE_URL has no unix socket host: %s\n", admin);
        free(bin);
        return -1;
    }
    (void)uri_param(admin, "port", pg_port, sizeof pg_port);

    /* C migrates the database (behind transaction pooling a session
     * advisory lock would not hold) */
    if (!ls_setup(&C, "pgbver", c_extra, NULL) || (C_admin = admin_port(&C.hd)) <= 0 ||
        ls_profile(&C, "vc", "UTC", 24) != 0) {
        free(bin);
        return -1;
    }
    snprintf(pgb_dir, sizeof pgb_dir, "%s/pgbouncer", C.dir);
    atexit(pgb_stop_at_exit);
    bool up = pgb_start(bin, pg_host, pg_port);
    free(bin);
    if (!up)
        return -1;

    char *url =
        xasprintf("postgresql:///%s?host=%s&port=%d&user=herald", C.dbname, pgb_dir, PGB_PORT);
    static const char *const a_extra[] = { "HERALD_ADMIN_LISTEN=127.0.0.1:0",
                                           "HERALD_DB_PREPARED_STATEMENTS=false",
                                           "HERALD_MIGRATE_ON_START=false",
                                           "HERALD_CACHE_VERSION_LISTEN=true",
                                           "HERALD_CACHE_VERSION_STALE_MS=2s",
                                           "HERALD_LEARNING_JOB_INTERVAL=24h",
                                           NULL };
    snprintf(A_dir, sizeof A_dir, "/tmp/herald-test-pgbver-a-%d", (int)getpid());
    A_started_ms = now_mono_ms();
    bool ok = hd_start(&A.hd, A_dir, url, C.redis, a_extra) &&
              hd_wait_health(&A.hd, "readiness", 1, 30000) &&
              hd_wait_health(&A.hd, "herald.v1.LearningService", 1, 5000) &&
              (A_admin = admin_port(&A.hd)) > 0;
    free(url);
    if (!ok) {
        fprintf(stderr, "heraldd behind pgbouncer did not start (log: %s)\n", A.hd.log);
        return -1;
    }
    A.learn = herald_stub_new(A.hd.ch, &herald__v1__learning_service__descriptor);
    herald_call_options o = { .timeout_ms = 30000 };
    herald_stub_set_options(A.learn, &o);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    herald_stub_free(A.learn);
    int ra = hd_stop(&A.hd);
    if (ra != 0)
        fprintf(stderr, "heraldd behind pgbouncer exited %d (log: %s)\n", ra, A.hd.log);
    else if (getenv("HERALD_TEST_KEEP") == NULL)
        (void)tsh("rm -rf %s", A_dir);
    int rp = pgb_stop(); /* before ls_teardown removes its directory */
    return ls_teardown(&C) == 0 && ra == 0 && rp == 0 ? 0 : -1;
}

/* GetInsights (or GetBestTimes) of profile "vc" on e: the reply's
 * compute_time in ms and whether it was a cache hit. */
static int64_t read_at(ls_env *e, bool best_times, bool *cached)
{
    Herald__V1__GetInsightsRequest ireq = HERALD__V1__GET_INSIGHTS_REQUEST__INIT;
    Herald__V1__GetBestTimesRequest breq = HERALD__V1__GET_BEST_TIMES_REQUEST__INIT;
    Herald__V1__GetInsightsResponse *ir = NULL;
    Herald__V1__GetBestTimesResponse *br = NULL;
    ireq.profile_id = breq.profile_id = (char *)"vc";
    int code = best_times ? ls_get_best_times(e, &breq, &br) : ls_get_insights(e, &ireq, &ir);
    assert_int_equal(code, 0);
    const Google__Protobuf__Timestamp *t = best_times ? br->compute_time : ir->compute_time;
    assert_non_null(t);
    int64_t ms = t->seconds * 1000 + t->nanos / 1000000;
    if (cached != NULL)
        *cached = best_times ? br->cached : ir->cached;
    herald__v1__get_insights_response__free_unpacked(ir, NULL);
    herald__v1__get_best_times_response__free_unpacked(br, NULL);
    return ms;
}

/* A reply served from the cache as e has it now (a first call may compute;
 * a later one hits). */
static int64_t settled(ls_env *e, bool best_times)
{
    bool cached = false;
    int64_t t = 0;
    for (int i = 0; i < 5 && !cached; i++)
        t = read_at(e, best_times, &cached);
    assert_true(cached);
    return t;
}

/* SetArmEnabled on C: a write that A hears of only through PostgreSQL. */
static void set_arm_on_c(bool enabled)
{
    Herald__V1__SetArmEnabledRequest req = HERALD__V1__SET_ARM_ENABLED_REQUEST__INIT;
    char rid[40];
    req.request_id = ls_rid(&C, rid);
    req.profile_id = (char *)"vc";
    req.scope = HERALD__V1__ARM_SCOPE__ARM_SCOPE_TOPIC;
    req.key = (char *)"sleep";
    req.enabled = enabled;
    req.reason = (char *)"test";
    assert_int_equal(ls_set_arm_enabled(&C, &req, NULL), 0);
}

static void direct_heraldd_trusts_its_map(void **state)
{
    (void)state;
    double trusted = 0;
    for (int64_t until = now_mono_ms() + 10000; now_mono_ms() < until; hd_sleep_ms(100))
        if ((trusted = metric(C_admin, "herald_version_map_trusted")) == 1)
            break;
    assert_true(trusted == 1);
}

static void pooled_heraldd_never_trusts_its_map(void **state)
{
    (void)state;
    /* sampled for 4 s (two stale_ms), and from > 3 s after A started */
    int samples = 0, trusted = 0;
    int64_t until = now_mono_ms() + 4000;
    if (until < A_started_ms + 3500)
        until = A_started_ms + 3500;
    for (; now_mono_ms() < until; hd_sleep_ms(100)) {
        double t = metric(A_admin, "herald_version_map_trusted");
        assert_true(t == 0 || t == 1);
        samples++;
        trusted += t == 1;
    }
    double u1 = metric(A_admin, "herald_version_map_heartbeats_unechoed_total");
    hd_sleep_ms(2500); /* a beat every stale_ms / 2 = 1 s */
    double u2 = metric(A_admin, "herald_version_map_heartbeats_unechoed_total");
    fprintf(stderr, "behind pgbouncer: trusted in %d of %d samples; unechoed %g, then %g\n",
            trusted, samples, u1, u2);
    assert_int_equal(trusted, 0);
    assert_true(u1 > 0);
    assert_true(u2 > u1);
}

static void direct_writes_show_on_pooled_reads_at_once(void **state)
{
    (void)state;
    for (int round = 0; round < 4; round++) {
        int64_t i0 = settled(&A, false), b0 = settled(&A, true);
        hd_sleep_ms(5); /* a later compute_time for anything computed now */
        if (round % 2 == 0) {
            set_arm_on_c(round % 4 == 2);
        } else { /* a notified bump, made with SQL on PostgreSQL */
            tdb_must(C.db, "UPDATE cache_versions SET version = version + 1, updated_at = now() "
                           "WHERE scope = 'learning:vc'");
        }
        /* no waiting: A asks PostgreSQL for the version of every read */
        int64_t i1 = read_at(&A, false, NULL), b1 = read_at(&A, true, NULL);
        fprintf(stderr, "round %d (%s): insights %s, best times %s\n", round,
                round % 2 == 0 ? "SetArmEnabled on C" : "UPDATE cache_versions",
                i1 != i0 ? "new" : "STALE", b1 != b0 ? "new" : "STALE");
        assert_true(i1 != i0);
        assert_true(b1 != b0);
    }
    /* and not one version came from A's map */
    assert_true(metric(A_admin, "herald_version_map_lookups_total{result=\"hit\"}") == 0);
    assert_true(metric(A_admin, "herald_version_map_lookups_total{result=\"miss\"}") > 0);
    assert_true(metric(C_admin, "herald_version_map_trusted") == 1);
    assert_true(hd_alive(&A.hd));
    assert_true(hd_alive(&C.hd));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(direct_heraldd_trusts_its_map),
        cmocka_unit_test(pooled_heraldd_never_trusts_its_map),
        cmocka_unit_test(direct_writes_show_on_pooled_reads_at_once),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
