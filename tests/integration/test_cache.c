/* test_cache.c - cache.[ch] against real Redis: REDIS_URL parsing (pure),
 * get/set/del, TTL, binary values, garbage under our key reads as a miss,
 * counters; then, on a private Redis this test starts and stops by PID, the
 * breaker when Redis is paused (SIGSTOP) or killed, and no stale read after
 * a write made while Redis was paused (versions in PostgreSQL). Needs
 * REDIS_URL (and DATABASE_URL for the last test); skips without them. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "cache.h"
#include "db.h"
#include "migrate.h"
#include "test_db_support.h"
#include "util.h"

static const char *g_redis_url;
static char g_prefix[64];

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------- pure */

static void url_parsing(void **state)
{
    (void)state;
    cache_url u;
    char err[200];

    assert_true(cache_url_parse("redis://localhost:6380/3", &u, err, sizeof err));
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    assert_string_equal(u.path, "");
    assert_string_equal(u.password, "");

    assert_true(cache_url_parse("redis://:s%40cret@10.0.0.1", &u, err, sizeof err));
    assert_string_equal(u.host, "10.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "s@cret");

    assert_true(cache_url_parse("redis://user:pw@[::1]:7000/2", &u, err, sizeof err));
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 2);
    assert_string_equal(u.password, "pw");

    assert_true(cache_url_parse("unix:///run/redis/redis.sock?db=5", &u, err, sizeof err));
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_int_equal(u.db, 5);
    assert_true(cache_url_parse("/tmp/r.sock", &u, err, sizeof err));
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_true(cache_url_parse("unix://:pw@/tmp/r.sock", &u, err, sizeof err));
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_string_equal(u.password, "pw");

    static const char *bad[] = { "",
                                 "http://x",
                                 "rediss://host:6379",
                                 "redis://host:0",
                                 "redis://host:99999",
                                 "redis://host:12ab",
                                 "redis://host/notanumber",
                                 "unix://relative/path",
                                 "redis://:bad%zzpw@host",
                                 "unix:///tmp/s?db=x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (cache_url_parse(bad[i], &u, err, sizeof err))
            fail_msg("accepted bad URL '%s'", bad[i]);
        assert_non_null(strstr(err, "REDIS_URL"));
    }
    /* the password never appears in the error */
    assert_false(cache_url_parse("redis://:topsecret@host:bad", &u, err, sizeof err));
    assert_null(strstr(err, "topsecret"));
}

static void unconfigured_bypasses(void **state)
{
    (void)state;
    char *err = NULL;
    cache *c = cache_new(NULL, &err);
    assert_non_null(c);
    assert_false(cache_configured(c));
    cache_conn *cc = cache_open(c);
    uint8_t *v = NULL;
    size_t n = 0;
    assert_int_equal(cache_get(cc, "k", &v, &n), CACHE_BYPASS);
    assert_null(v);
    assert_int_equal(cache_set(cc, "k", "x", 1, 10), CACHE_BYPASS);
    assert_int_equal(cache_set(cc, "k", "x", 1, 0), CACHE_EINVAL);
    cache_stats s;
    cache_stats_get(c, &s);
    assert_int_equal(s.bypasses, 2);
    cache_close(cc);
    cache_free(c);
    cache_options o;
    cache_options_init(&o);
    o.url = "ftp://nope";
    assert_null(cache_new(&o, &err));
    assert_non_null(err);
    free(err);
}

/* ---------------------------------------------------------------- shared Redis */

static cache *open_shared(void)
{
    /* our own DB number on the shared instance */
    char *url = xasprintf("%s%s", g_redis_url, strchr(g_redis_url, '?') ? "&db=9" : "?db=9");
    cache_options o;
    cache_options_init(&o);
    o.url = url;
    o.prefix = g_prefix;
    char *err = NULL;
    cache *c = cache_new(&o, &err);
    if (c == NULL)
        fail_msg("cache_new: %s", err);
    free(url);
    return c;
}

static void get_set_del_ttl(void **state)
{
    (void)state;
    cache *c = open_shared();
    cache_conn *cc = cache_open(c);
    char *key = cache_key(c, "profile", "p1", 7);
    uint8_t *v = NULL;
    size_t n = 0;
    cache_stats s0, s1;

    assert_true(strncmp(key, g_prefix, strlen(g_prefix)) == 0);
    assert_non_null(strstr(key, "profile:p1:v7"));
    cache_stats_get(c, &s0);
    assert_int_equal(cache_get(cc, key, &v, &n), CACHE_MISS);
    uint8_t bin[300];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (uint8_t)(i * 7);
    bin[5] = 0; /* NULs survive */
    assert_int_equal(cache_set(cc, key, bin, sizeof bin, 60), CACHE_OK);
    assert_int_equal(cache_get(cc, key, &v, &n), CACHE_OK);
    assert_int_equal(n, sizeof bin);
    assert_memory_equal(v, bin, sizeof bin);
    free(v);
    /* an empty value is a hit too */
    char *k2 = cache_key(c, "empty", "x", 1);
    assert_int_equal(cache_set(cc, k2, NULL, 0, 60), CACHE_OK);
    assert_int_equal(cache_get(cc, k2, &v, &n), CACHE_OK);
    assert_int_equal(n, 0);
    free(v);
    assert_int_equal(cache_del(cc, k2), CACHE_OK);
    assert_int_equal(cache_get(cc, k2, &v, &n), CACHE_MISS);
    cache_stats_get(c, &s1);
    assert_int_equal(s1.hits - s0.hits, 2);
    assert_int_equal(s1.misses - s0.misses, 2);
    assert_int_equal(s1.errors - s0.errors, 0);
    assert_int_equal(s1.breaker, CACHE_BREAKER_CLOSED);

    /* TTL: gone after it expires */
    char *k3 = cache_key(c, "ttl", "x", 1);
    assert_int_equal(cache_set(cc, k3, "v", 1, 1), CACHE_OK);
    assert_int_equal(cache_get(cc, k3, &v, &n), CACHE_OK);
    free(v);
    int64_t t0 = now_mono_ms();
    cache_rc rc = CACHE_OK;
    while (now_mono_ms() - t0 < 3000) {
        rc = cache_get(cc, k3, &v, &n);
        free(v);
        if (rc == CACHE_MISS)
            break;
        sleep_ms(100);
    }
    assert_int_equal(rc, CACHE_MISS);
    assert_true(now_mono_ms() - t0 >= 500);
    cache_del(cc, key);
    free(key);
    free(k2);
    free(k3);
    cache_close(cc);
    cache_free(c);
}

static void garbage_is_a_miss(void **state)
{
    (void)state;
    cache *c = open_shared();
    cache_conn *cc = cache_open(c);
    char *k1 = cache_key(c, "garbage", "raw", 1);
    char *k2 = cache_key(c, "garbage", "list", 1);
    char *k3 = cache_key(c, "garbage", "trunc", 1);
    uint8_t *v = NULL;
    size_t n;
    cache_url u;
    char err[200];
    assert_true(cache_url_parse(g_redis_url, &u, err, sizeof err));
    assert_true(u.path[0] != '\0'); /* the fixture's REDIS_URL is a unix socket */
    assert_int_equal(tsh("redis-cli -s %s -n 9 SET '%s' 'not ours' >/dev/null", u.path, k1), 0);
    assert_int_equal(tsh("redis-cli -s %s -n 9 RPUSH '%s' a b >/dev/null", u.path, k2), 0);
    /* a real entry with its tail cut off */
    assert_int_equal(cache_set(cc, k3, "0123456789", 10, 60), CACHE_OK);
    assert_int_equal(tsh("redis-cli -s %s -n 9 SETRANGE '%s' 20 X >/dev/null", u.path, k3), 0);
    cache_stats s0, s1;
    cache_stats_get(c, &s0);
    assert_int_equal(cache_get(cc, k1, &v, &n), CACHE_MISS);
    assert_null(v);
    assert_int_equal(cache_get(cc, k2, &v, &n), CACHE_ERROR); /* WRONGTYPE: still a miss */
    assert_null(v);
    assert_int_equal(cache_get(cc, k3, &v, &n), CACHE_MISS);
    assert_null(v);
    /* three bad values in a row are not an outage: the breaker stays closed */
    assert_int_equal(cache_get(cc, k2, &v, &n), CACHE_ERROR);
    assert_int_equal(cache_get(cc, k2, &v, &n), CACHE_ERROR);
    cache_stats_get(c, &s1);
    assert_int_equal(s1.breaker, CACHE_BREAKER_CLOSED);
    assert_int_equal(s1.errors - s0.errors, 3);
    assert_int_equal(cache_set(cc, k1, "mine", 4, 60), CACHE_OK);
    assert_int_equal(cache_get(cc, k1, &v, &n), CACHE_OK);
    free(v);
    cache_del(cc, k1);
    cache_del(cc, k2);
    cache_del(cc, k3);
    free(k1);
    free(k2);
    free(k3);
    cache_close(cc);
    cache_free(c);
}

/* ---------------------------------------------------------------- private Redis */

typedef struct priv_redis {
    char dir[128];
    char sock[192];
    pid_t pid;
} priv_redis;

static bool redis_start(priv_redis *r)
{
    snprintf(r->dir, sizeof r->dir, "/tmp/herald-cache-%d", (int)getpid());
    snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);
    mkdir(r->dir, 0755);
    unlink(r->sock);
    if (tsh("redis-server --port 0 --unixsocket %s --save '' --appendonly no --daemonize yes"
            " --pidfile %s/redis.pid --logfile %s/redis.log >/dev/null",
            r->sock, r->dir, r->dir) != 0)
        return false;
    for (int i = 0; i < 100; i++) {
        char *p = xasprintf("%s/redis.pid", r->dir);
        FILE *f = fopen(p, "r");
        free(p);
        int pid = 0;
        if (f) {
            if (fscanf(f, "%d", &pid) != 1)
                pid = 0;
            fclose(f);
        }
        if (pid > 0 && tsh("redis-cli -s %s ping >/dev/null 2>&1", r->sock) == 0) {
            r->pid = (pid_t)pid;
            return true;
        }
        sleep_ms(50);
    }
    return false;
}

static void redis_stop(priv_redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGCONT);
        kill(r->pid, SIGTERM);
        for (int i = 0; i < 100 && kill(r->pid, 0) == 0; i++)
            sleep_ms(20);
        r->pid = 0;
    }
}

static cache *open_private(const priv_redis *r, int open_ms)
{
    char *url = xasprintf("unix://%s", r->sock);
    cache_options o;
    cache_options_init(&o);
    o.url = url;
    o.breaker_failures = 3;
    o.breaker_open_ms = open_ms;
    char *err = NULL;
    cache *c = cache_new(&o, &err);
    free(url);
    assert_non_null(c);
    return c;
}

/* Redis paused: at most K calls (plus one probe per open period) pay the
 * 50 ms timeout; everything else bypasses at once; it recovers by itself. */
static void breaker_when_paused(void **state)
{
    (void)state;
    priv_redis r;
    if (!redis_start(&r))
        fail_msg("cannot start a private redis-server");
    cache *c = open_private(&r, 400);
    cache_conn *cc = cache_open(c);
    char *key = cache_key(c, "b", "k", 1);
    uint8_t *v = NULL;
    size_t n;
    assert_int_equal(cache_set(cc, key, "v", 1, 60), CACHE_OK);
    assert_int_equal(cache_get(cc, key, &v, &n), CACHE_OK);
    free(v);

    assert_int_equal(kill(r.pid, SIGSTOP), 0);
    int slow = 0, calls = 0;
    int64_t worst = 0;
    int64_t t_end = now_mono_ms() + 1000; /* 1 s of steady load: ~2 open periods */
    while (now_mono_ms() < t_end) {
        int64_t t0 = now_mono_us();
        cache_rc rc = cache_get(cc, key, &v, &n);
        int64_t us = now_mono_us() - t0;
        assert_int_not_equal(rc, CACHE_OK);
        assert_null(v);
        if (us > 30000)
            slow++;
        if (us > worst)
            worst = us;
        calls++;
        sleep_ms(2);
    }
    cache_stats s;
    cache_stats_get(c, &s);
    /* 3 to open, then one probe per 400 ms period: <= 3 + 3 */
    assert_true(slow >= 3);
    assert_true(slow <= 6);
    assert_true(worst < 150000); /* each paid at most ~the 50 ms timeout */
    assert_true(s.bypasses >= (uint64_t)(calls - slow));
    assert_true(s.breaker_opens >= 1);
    assert_int_not_equal(s.breaker, CACHE_BREAKER_CLOSED);
    fprintf(stderr, "# paused: %d calls, %d paid the timeout (worst %.1f ms), %llu bypassed\n",
            calls, slow, (double)worst / 1000.0, (unsigned long long)s.bypasses);

    assert_int_equal(kill(r.pid, SIGCONT), 0);
    /* within one open period plus a probe it serves again */
    int64_t t0 = now_mono_ms();
    cache_rc rc = CACHE_BYPASS;
    while (now_mono_ms() - t0 < 3000) {
        rc = cache_get(cc, key, &v, &n);
        free(v);
        if (rc == CACHE_OK)
            break;
        sleep_ms(20);
    }
    assert_int_equal(rc, CACHE_OK);
    assert_true(now_mono_ms() - t0 < 1500);
    cache_stats_get(c, &s);
    assert_int_equal(s.breaker, CACHE_BREAKER_CLOSED);
    free(key);
    cache_close(cc);
    cache_free(c);
    redis_stop(&r);
    tsh("rm -rf %s", r.dir);
}

/* Redis gone (refused connections): fail fast, open, recover on restart. */
static void breaker_when_killed(void **state)
{
    (void)state;
    priv_redis r;
    if (!redis_start(&r))
        fail_msg("cannot start a private redis-server");
    cache *c = open_private(&r, 300);
    cache_conn *cc = cache_open(c);
    char *key = cache_key(c, "b", "k", 1);
    uint8_t *v = NULL;
    size_t n;
    assert_int_equal(cache_set(cc, key, "v", 1, 60), CACHE_OK);
    redis_stop(&r);
    int64_t t0 = now_mono_ms();
    for (int i = 0; i < 50; i++)
        assert_int_not_equal(cache_get(cc, key, &v, &n), CACHE_OK);
    assert_true(now_mono_ms() - t0 < 500);
    cache_stats s;
    cache_stats_get(c, &s);
    assert_int_equal(s.errors, 3); /* then the breaker bypassed the rest */
    assert_int_equal(s.bypasses, 47);
    assert_int_equal(s.breaker, CACHE_BREAKER_OPEN);
    if (!redis_start(&r))
        fail_msg("cannot restart redis-server");
    sleep_ms(350);
    /* the probe reconnects; the restarted Redis is empty: a plain miss */
    assert_int_equal(cache_get(cc, key, &v, &n), CACHE_MISS);
    assert_int_equal(cache_set(cc, key, "w", 1, 60), CACHE_OK);
    assert_int_equal(cache_get(cc, key, &v, &n), CACHE_OK);
    assert_memory_equal(v, "w", 1);
    free(v);
    free(key);
    cache_close(cc);
    cache_free(c);
    redis_stop(&r);
    tsh("rm -rf %s", r.dir);
}

/* The read path a handler follows: version from PostgreSQL, then Redis. */
static char *read_through(db_conn *db, cache_conn *cc, const cache *c, bool *hit)
{
    int64_t version = 0;
    db_res *res = NULL;
    db_params p;
    uint8_t *v = NULL;
    size_t n = 0;
    char *out = NULL;

    *hit = false;
    assert_int_equal(db_begin(db, 2000), ST_OK);
    assert_int_equal(db_version_get(db, "thing:1", &version), ST_OK);
    char *key = cache_key(c, "thing", "1", version);
    if (cache_get(cc, key, &v, &n) == CACHE_OK) {
        *hit = true;
        out = (char *)v;
        db_rollback(db);
        goto done;
    }
    /* miss: the value, read in the same snapshot as the version */
    db_params_init(&p);
    assert_int_equal(db_query(db, "thing_get", "SELECT val FROM things WHERE id = 1", &p, &res),
                     ST_OK);
    out = xstrdup(db_res_text(res, 0, 0));
    db_res_free(res);
    db_rollback(db);
    cache_set(cc, key, out, strlen(out), 60);
done:
    free(key);
    return out;
}

static void write_thing(db_conn *db, const char *val)
{
    int64_t v;
    db_params p;
    assert_int_equal(db_begin(db, 2000), ST_OK);
    db_params_init(&p);
    db_param_text(&p, val);
    assert_int_equal(db_query(db, "thing_set", "UPDATE things SET val = $1 WHERE id = 1", &p, NULL),
                     ST_OK);
    assert_int_equal(db_version_bump(db, "thing:1", &v), ST_OK);
    assert_int_equal(db_commit(db), ST_OK);
}

static void no_stale_read_after_write_during_pause(void **state)
{
    (void)state;
    const char *admin = getenv("DATABASE_URL");
    if (admin == NULL || admin[0] == '\0')
        skip();
    char *name = NULL, *err = NULL;
    char *url = tdb_create(admin, "herald_test_cache", &name);
    assert_int_equal(migrate_up(url, &err), ST_OK);
    db_conn *db = tdb_open(url);
    tdb_must(db, "CREATE TABLE things (id int PRIMARY KEY, val text NOT NULL)");
    tdb_must(db, "INSERT INTO things VALUES (1, 'A')");
    priv_redis r;
    if (!redis_start(&r))
        fail_msg("cannot start a private redis-server");
    cache *c = open_private(&r, 300);
    cache_conn *reader = cache_open(c);
    cache_conn *writer = cache_open(c);
    bool hit;

    write_thing(db, "A");
    char *s = read_through(db, reader, c, &hit);
    assert_false(hit);
    assert_string_equal(s, "A");
    free(s);
    s = read_through(db, reader, c, &hit);
    assert_true(hit); /* served from Redis */
    assert_string_equal(s, "A");
    free(s);

    assert_int_equal(kill(r.pid, SIGSTOP), 0);
    write_thing(db, "B"); /* acknowledged while Redis is paused */
    /* the old-style invalidation would fail here; we do not even need it */
    char *old = cache_key(c, "thing", "1", 1);
    assert_int_not_equal(cache_del(writer, old), CACHE_OK);
    free(old);
    assert_int_equal(kill(r.pid, SIGCONT), 0);
    sleep_ms(350); /* let the breaker half-open */
    int hits = 0;
    for (int i = 0; i < 20; i++) {
        s = read_through(db, reader, c, &hit);
        assert_string_equal(s, "B"); /* never the stale "A" */
        hits += hit;
        free(s);
    }
    assert_true(hits >= 18); /* and the cache is back in use */
    cache_close(reader);
    cache_close(writer);
    cache_free(c);
    redis_stop(&r);
    tsh("rm -rf %s", r.dir);
    db_close(db);
    tdb_drop(admin, name);
    free(name);
    free(url);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(url_parsing),
        cmocka_unit_test(unconfigured_bypasses),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test(get_set_del_ttl),
        cmocka_unit_test(garbage_is_a_miss),
        cmocka_unit_test(breaker_when_paused),
        cmocka_unit_test(breaker_when_killed),
        cmocka_unit_test(no_stale_read_after_write_during_pause),
    };
    int rc = cmocka_run_group_tests_name("cache_pure", pure, NULL, NULL);
    g_redis_url = getenv("REDIS_URL");
    if (g_redis_url == NULL || g_redis_url[0] == '\0') {
        fprintf(stderr, "REDIS_URL not set: skipping the live tests\n");
        return rc ? rc : TEST_SKIP;
    }
    snprintf(g_prefix, sizeof g_prefix, "herald-test-%d:", (int)getpid());
    rc |= cmocka_run_group_tests_name("cache_live", live, NULL, NULL);
    return rc;
}
