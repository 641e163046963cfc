/* test_ops_svc.c - OpsService's operator view end to end (issue 8 items 1-6):
 * a real heraldd (started here, migrating its own fresh database) driven
 * over gRPC with the C client, its /metrics scraped over HTTP.
 *
 * Covers:
 *   - GetStatus: build, uptime, memory, workers, database (up, latency,
 *     schema version), cache, LLM/publisher, queue depth and a stuck lease
 *     (rows written here; the stuck lease is row-locked so the publisher's
 *     sweep cannot take it), per-profile last publish / last metric,
 *     truncation and validation; a heraldd whose database is unreachable
 *     still answers GetStatus (database down, no queue).
 *   - ListSlowQueries: a statement made slow by a held ACCESS EXCLUSIVE
 *     lock on profiles (threshold 200 ms from the config file) is listed
 *     with its name, normalised SQL (no parameter value), count, worst and
 *     mean time and the RPC that ran it; min_duration_ms and paging.
 *   - /metrics: for a known mix of calls the deltas of
 *     grpc_server_handled_total per method and code equal what the client
 *     observed, started and _count match, and promtool is clean.
 *   - GetSloReport: posting success, follower growth and engagement rate
 *     per profile from rows written here; the error rate equals the
 *     server-caused codes of the herald.v1 calls on /metrics; generation p95
 *     from GenerateDraft calls; a window before the process started has no
 *     process-local data; validation.
 *   - The kill switch: a paused profile gets no generation
 *     (FAILED_PRECONDITION PROFILE_PAUSED) and no claims; resumed, both work.
 *   - GetConfig: sources, sorting, prefix, secrets masked (never in the
 *     bytes of the reply); a SIGHUP reload of the config file is reflected.
 *   - Memory pressure: a heraldd whose limit is below its RSS refuses the
 *     expensive calls of a RecordEngagement/GenerateDraft load with
 *     RESOURCE_EXHAUSTED and a retry delay, while Health/Check, GetStatus
 *     and ListProfiles keep answering; the refusals it counts equal what
 *     the clients saw; it exits 0.
 *
 * Needs the services fixture (DATABASE_URL, REDIS_URL) and promtool; skips
 * (77) without the former. Database herald_test_ops_svc_<pid>; Redis DB 6. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "herald/v1/content.pb-c.h"
#include "herald/v1/learning.pb-c.h"
#include "herald/v1/scheduling.pb-c.h"
#include "migrate.h"
#include "test_db_support.h"
#include "test_profiles_support.h"

#define SLOW_MS 200
#define LLM_SECRET "sk-test-SECRET-123"
#define PG_SECRET "pw-SECRET-456"
#define CONTENT "/herald.v1.ContentService/"
#define SCHED "/herald.v1.SchedulingService/"
#define LEARN "/herald.v1.LearningService/"

static hd g_hd;
static char *g_admin_url, *g_url, *g_dbname, *g_redis;
static char g_dir[128], g_conf[200];
static int g_admin_port;
static unsigned g_rid;

/* ---------------------------------------------------------------- helpers */

static const char *rid(void)
{
    static char buf[8][40];
    static unsigned k;
    char *b = buf[k++ % 8];
    rid_make(b, 9, ++g_rid);
    return b;
}

static void write_conf(int slow_ms)
{
    char tmp[240];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_conf);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fprintf(f, "# test_ops_svc\ndb.slow_query_ms = %d\n", slow_ms);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, g_conf), 0);
}

/* The port in heraldd's "admin listener up" log line; 0 when absent. */
static int admin_port_from_log(const hd *h)
{
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
    return port;
}

/* GET path on 127.0.0.1:port (HTTP/1.0, 5 s timeouts). Returns the status
 * and *body (caller frees), or -1. */
static int http_get(int port, const char *path, char **body)
{
    *body = NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char *req = xasprintf("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    ssize_t w = write(fd, req, strlen(req));
    free(req);
    strbuf b = { 0 };
    char chunk[16384];
    ssize_t n;
    while (w > 0 && (n = read(fd, chunk, sizeof chunk)) > 0 && b.len < (64u << 20))
        strbuf_append(&b, chunk, (size_t)n);
    close(fd);
    char *all = strbuf_take(&b);
    int code = -1;
    if (all != NULL && sscanf(all, "HTTP/%*s %d", &code) == 1) {
        const char *sep = strstr(all, "\r\n\r\n");
        *body = xstrdup(sep != NULL ? sep + 4 : "");
    }
    free(all);
    return code;
}

static double metric_sum(const char *text, const char *metric, const char *const *want);

/* /metrics once no call is in flight: the runtime counts a call when it is
 * freed, a moment after the client has its answer. */
static char *scrape(void)
{
    char *body = NULL;
    for (int i = 0; i < 100; i++) {
        free(body);
        assert_int_equal(http_get(g_admin_port, "/metrics", &body), 200);
        if (metric_sum(body, "grpc_server_inflight", NULL) == 0)
            break;
        hd_sleep_ms(50);
    }
    return body;
}

/* The value of label name in a sample's label set ("" when absent). */
static void label_of(const char *labels, const char *name, char *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof key, "%s=\"", name);
    const char *p = strstr(labels, key);
    out[0] = '\0';
    if (p == NULL)
        return;
    p += strlen(key);
    size_t i = 0;
    while (*p != '\0' && *p != '"' && i + 1 < cap)
        out[i++] = *p++;
    out[i] = '\0';
}

/* Sum of the samples of family (exact metric name) whose labels include
 * each of the given name=value pairs (NULL-terminated list, may be empty). */
static double metric_sum(const char *text, const char *metric, const char *const *want)
{
    double sum = 0;
    size_t mlen = strlen(metric);
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n');
        size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
        if (len > mlen && strncmp(line, metric, mlen) == 0 &&
            (line[mlen] == '{' || line[mlen] == ' ')) {
            char *l = xstrndup(line, len);
            const char *close = strrchr(l, '}');
            bool ok = true;
            for (size_t i = 0; want != NULL && want[i] != NULL; i += 2) {
                char v[256];
                label_of(l, want[i], v, sizeof v);
                ok = ok && strcmp(v, want[i + 1]) == 0;
            }
            const char *val = close != NULL ? close + 1 : l + mlen;
            if (ok)
                sum += strtod(val, NULL);
            free(l);
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    return sum;
}

static void assert_promtool_clean(const char *text)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0)
        fail_msg("promtool not found: install Debian's 'prometheus' package (scripts/deps)");
    char in[160], out[160];
    snprintf(in, sizeof in, "%s/metrics.txt", g_dir);
    snprintf(out, sizeof out, "%s/promtool.out", g_dir);
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    int rc = tsh("promtool check metrics < %s > %s 2>&1", in, out);
    char buf[4096] = "";
    f = fopen(out, "r");
    size_t n = f != NULL ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f != NULL)
        fclose(f);
    buf[n] = '\0';
    if (rc != 0 || n > 0)
        fail_msg("promtool check metrics: exit %d: %s", rc, buf);
}

/* A unary call to any service; returns the code, *resp on OK (caller frees). */
static int call(hd *h, const char *path, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *d, int64_t timeout_ms, ProtobufCMessage **resp,
                herald_status *st)
{
    herald_status local;
    herald_call_options o = { .timeout_ms = timeout_ms };
    ProtobufCMessage *r = NULL;
    if (st == NULL)
        herald_status_init(&local);
    int code = herald_call_unary(h->ch, path, req, d, &o, &r, st != NULL ? st : &local);
    if (st == NULL)
        herald_status_fini(&local);
    if (resp != NULL)
        *resp = r;
    else if (r != NULL)
        protobuf_c_message_free_unpacked(r, NULL);
    return code;
}

static Herald__V1__GetStatusResponse *get_status(hd *h, int max_profiles)
{
    Herald__V1__GetStatusRequest req = HERALD__V1__GET_STATUS_REQUEST__INIT;
    req.max_profiles = max_profiles;
    ProtobufCMessage *r = NULL;
    int code = call(h, OPS "GetStatus", &req.base, &herald__v1__get_status_response__descriptor,
                    5000, &r, NULL);
    assert_int_equal(code, 0);
    return (Herald__V1__GetStatusResponse *)r;
}

static const Herald__V1__ProfileStatus *status_profile(const Herald__V1__GetStatusResponse *s,
                                                       const char *id)
{
    for (size_t i = 0; i < s->n_profiles; i++)
        if (strcmp(s->profiles[i]->profile_id, id) == 0)
            return s->profiles[i];
    return NULL;
}

static void create_profile(const char *id)
{
    Herald__V1__CreateProfileRequest req = HERALD__V1__CREATE_PROFILE_REQUEST__INIT;
    Herald__V1__Profile p = HERALD__V1__PROFILE__INIT;
    req.request_id = (char *)rid();
    req.profile = &p;
    p.profile_id = (char *)id;
    p.platform = HERALD__V1__PLATFORM__PLATFORM_X;
    int code = call(&g_hd, OPS "CreateProfile", &req.base, &herald__v1__profile__descriptor, 10000,
                    NULL, NULL);
    assert_true(code == 0 || code == 6 /* ALREADY_EXISTS: a rerun */);
}

static int pause_profile(const char *id, bool pause)
{
    if (pause) {
        Herald__V1__PauseProfileRequest r = HERALD__V1__PAUSE_PROFILE_REQUEST__INIT;
        r.request_id = (char *)rid();
        r.profile_id = (char *)id;
        r.reason = (char *)"test_ops_svc kill switch";
        return call(&g_hd, OPS "PauseProfile", &r.base, &herald__v1__profile__descriptor, 10000,
                    NULL, NULL);
    }
    Herald__V1__ResumeProfileRequest r = HERALD__V1__RESUME_PROFILE_REQUEST__INIT;
    r.request_id = (char *)rid();
    r.profile_id = (char *)id;
    return call(&g_hd, OPS "ResumeProfile", &r.base, &herald__v1__profile__descriptor, 10000, NULL,
                NULL);
}

/* The end of sql()'s parameter list (a NULL of the right type for varargs). */
#define SQL_END ((const char *)NULL)

/* Runs sql (parameters: text values ended by SQL_END; a NULL value is not
 * supported here) on db in its own transaction; returns the first column
 * of the first row (malloc'd) when want_value, else NULL. Aborts on failure. */
static char *sql(db_conn *db, bool want_value, const char *statement, ...)
{
    db_params p;
    db_res *res = NULL;
    va_list ap;
    db_params_init(&p);
    va_start(ap, statement);
    for (const char *v = va_arg(ap, const char *); v != NULL; v = va_arg(ap, const char *))
        db_param_text(&p, v);
    va_end(ap);
    status st = db_run(db, 20000, "test_ops_sql", statement, &p, want_value ? &res : NULL);
    if (st != ST_OK)
        fail_msg("SQL failed (%s): %s", db_errmsg(db), statement);
    char *out = NULL;
    if (want_value && db_res_rows(res) > 0)
        out = xstrdup(db_res_text(res, 0, 0));
    db_res_free(res);
    return out;
}

/* A post row of profile in state, texts unique per call. ago_s: how long
 * ago it was scheduled / published / last changed. Returns its id. */
static char *insert_post(db_conn *db, const char *profile, const char *state, int ago_s)
{
    static unsigned n;
    char text[96], ago[32], ext[64];
    snprintf(text, sizeof text, "test_ops_svc post %u of %s (%d)", ++n, profile, (int)getpid());
    snprintf(ago, sizeof ago, "%d seconds", ago_s);
    snprintf(ext, sizeof ext, "ext-%d-%u", (int)getpid(), n);
    return sql(db, true,
               "INSERT INTO posts (profile_id, state, platform, text, content_hash, provider, "
               "schedule_time, publish_time, external_id, updated_at) VALUES ($1, $2, 'x', $3, "
               "encode(sha256(convert_to($3, 'UTF8')), 'hex'), 'builtin', "
               "CASE WHEN $2 IN ('scheduled', 'publishing', 'published', 'unconfirmed') "
               "THEN now() - $4::interval END, "
               "CASE WHEN $2 = 'published' THEN now() - $4::interval END, "
               "CASE WHEN $2 = 'published' THEN $5 END, now() - $4::interval) RETURNING post_id",
               profile, state, text, ago, ext, SQL_END);
}

/* ---------------------------------------------------------------- fixture */

static bool start_main(void)
{
    char conf_env[240], url[600];
    snprintf(conf_env, sizeof conf_env, "HERALD_CONFIG=%s", g_conf);
    /* trust auth ignores the password: it is only there to be masked */
    snprintf(url, sizeof url, "%s%spassword=%s", g_url, strchr(g_url, '?') ? "&" : "?", PG_SECRET);
    const char *extra[] = { conf_env, "HERALD_ADMIN_LISTEN=127.0.0.1:0",
                            "HERALD_LLM_API_KEY=" LLM_SECRET, NULL };
    if (!hd_start(&g_hd, g_dir, url, g_redis, extra))
        return false;
    g_admin_port = admin_port_from_log(&g_hd);
    return g_admin_port > 0 && hd_wait_health(&g_hd, "readiness", 1, 30000) &&
           hd_wait_health(&g_hd, "herald.v1.OpsService", 1, 5000);
}

static int group_setup(void **state)
{
    (void)state;
    g_admin_url = getenv("DATABASE_URL");
    const char *redis = getenv("REDIS_URL");
    if (g_admin_url == NULL || redis == NULL) {
        fprintf(stderr, "DATABASE_URL / REDIS_URL not set: skipping\n");
        exit(TEST_SKIP);
    }
    g_url = tdb_create(g_admin_url, "herald_test_ops_svc", &g_dbname);
    g_redis = xasprintf("%s%sdb=6", redis, strchr(redis, '?') ? "&" : "?");
    snprintf(g_dir, sizeof g_dir, "/tmp/herald-test-ops-svc-%d", (int)getpid());
    mkdir(g_dir, 0755);
    snprintf(g_conf, sizeof g_conf, "%s/heraldd.conf", g_dir);
    write_conf(SLOW_MS);
    herald_client_init();
    if (!start_main()) {
        fprintf(stderr, "heraldd did not start or become ready (log: %s)\n", g_hd.log);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = hd_stop(&g_hd);
    if (rc != 0)
        fprintf(stderr, "heraldd exited %d (log: %s)\n", rc, g_hd.log);
    herald_client_shutdown();
    if (g_url != NULL)
        tdb_drop(g_admin_url, g_dbname);
    if (rc == 0)
        (void)tsh("rm -rf %s", g_dir);
    free(g_url);
    free(g_dbname);
    free(g_redis);
    return rc == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- GetStatus */

static void status_reports_the_process(void **state)
{
    (void)state;
    create_profile("st-a");
    create_profile("st-b");
    Herald__V1__GetStatusResponse *s = get_status(&g_hd, 0);

    assert_true(strlen(s->version) > 0);
    assert_true(strlen(s->commit) > 0);
    assert_true(strlen(s->build) > 0);
    assert_non_null(s->start_time);
    assert_non_null(s->server_time);
    assert_true(s->start_time->seconds <= s->server_time->seconds);
    assert_true(s->uptime_seconds >= 0 && s->uptime_seconds < 3600);

    assert_non_null(s->memory);
    assert_true(s->memory->rss_bytes > 1000000);
    assert_int_equal(s->memory->limit_bytes, 256LL << 20);
    assert_int_equal(s->memory->soft_limit_bytes, (256LL << 20) * 75 / 100);
    assert_int_equal(s->memory->state, HERALD__V1__MEMORY_STATE__MEMORY_STATE_NORMAL);

    assert_non_null(s->workers);
    assert_int_equal(s->workers->workers, 2);
    assert_true(s->workers->busy_workers >= 1); /* this very call */
    assert_true(s->workers->inflight_calls >= 1);

    assert_non_null(s->database);
    assert_true(s->database->up);
    assert_int_equal(s->database->schema_version, migrate_expected_version());
    assert_int_equal(s->database->pool_size, 2);
    assert_non_null(s->database->last_ping_time);
    assert_string_equal(s->database->last_error, "");
    assert_non_null(s->database->latency);
    assert_true(s->database->latency->count > 0);
    assert_int_equal(s->database->latency->p95_ms_opt_case,
                     HERALD__V1__LATENCY_SUMMARY__P95_MS_OPT_P95_MS);
    assert_true(s->database->latency->p50_ms <= s->database->latency->p95_ms);
    assert_true(s->database->latency->p95_ms <= s->database->latency->p99_ms);

    assert_non_null(s->cache);
    assert_true(s->cache->configured);
    assert_int_equal(s->cache->breaker, HERALD__V1__BREAKER_STATE__BREAKER_STATE_CLOSED);
    assert_non_null(s->llm);
    assert_false(s->llm->configured); /* no llm.url */
    assert_non_null(s->publisher);
    assert_true(s->publisher->configured); /* the built-in publisher runs with a database */
    assert_non_null(s->queue);

    assert_non_null(status_profile(s, "st-a"));
    assert_non_null(status_profile(s, "st-b"));
    assert_false(s->profiles_truncated);
    for (size_t i = 1; i < s->n_profiles; i++)
        assert_true(strcmp(s->profiles[i - 1]->profile_id, s->profiles[i]->profile_id) < 0);
    herald__v1__get_status_response__free_unpacked(s, NULL);

    s = get_status(&g_hd, 1);
    assert_int_equal(s->n_profiles, 1);
    assert_true(s->profiles_truncated);
    herald__v1__get_status_response__free_unpacked(s, NULL);

    Herald__V1__GetStatusRequest bad = HERALD__V1__GET_STATUS_REQUEST__INIT;
    bad.max_profiles = 1001;
    herald_status st;
    herald_status_init(&st);
    assert_int_equal(call(&g_hd, OPS "GetStatus", &bad.base,
                          &herald__v1__get_status_response__descriptor, 5000, NULL, &st),
                     3);
    assert_true(st_violation(&st, "max_profiles"));
    herald_status_fini(&st);
}

/* Queue depth, a stuck lease and a profile's last publish/metric, from rows
 * written here; figures compared as deltas. */
static void status_reports_queue_and_profiles(void **state)
{
    (void)state;
    create_profile("st-q");
    Herald__V1__GetStatusResponse *s0 = get_status(&g_hd, 0);
    const Herald__V1__ProfileStatus *p0 = status_profile(s0, "st-q");
    assert_non_null(p0);
    assert_null(p0->last_publish_time);
    assert_null(p0->last_metric_time);
    assert_false(p0->in_cooldown);

    db_conn *db = tdb_open(g_url);
    free(insert_post(db, "st-q", "scheduled", 120)); /* due for two minutes */
    char *fut = insert_post(db, "st-q", "scheduled", 0);
    free(sql(db, false,
             "UPDATE posts SET schedule_time = now() + interval '1 hour' WHERE post_id = $1::uuid",
             fut, SQL_END));
    free(fut);
    free(insert_post(db, "st-q", "unconfirmed", 30));
    free(insert_post(db, "st-q", "approved", 0));
    char *pub = insert_post(db, "st-q", "published", 3600);
    free(sql(db, false,
             "INSERT INTO engagement_observations (post_id, observed_at, source, impressions, "
             "likes) VALUES ($1::uuid, now() - interval '10 minutes', 'test', 100, 3)",
             pub, SQL_END));
    /* a live lease, and one that lapses while this test holds its row */
    char *live = insert_post(db, "st-q", "publishing", 10);
    free(sql(db, false,
             "INSERT INTO publish_attempts (post_id, attempt_number, executor_id, claim_time, "
             "expire_time) VALUES ($1::uuid, 1, 'test', now(), now() + interval '10 minutes')",
             live, SQL_END));
    char *stuck = insert_post(db, "st-q", "publishing", 10);
    char *lease = sql(db, true,
                      "INSERT INTO publish_attempts (post_id, attempt_number, executor_id, "
                      "claim_time, expire_time) VALUES ($1::uuid, 1, 'test', now(), "
                      "now() + interval '1500 milliseconds') RETURNING lease_id",
                      stuck, SQL_END);
    db_conn *holder = tdb_open(g_url);
    db_params p;
    db_params_init(&p);
    db_param_text(&p, lease);
    assert_int_equal(db_begin(holder, 30000), ST_OK);
    assert_int_equal(db_query(holder, "test_hold_lease",
                              "SELECT 1 FROM publish_attempts WHERE lease_id = $1::uuid "
                              "FOR UPDATE",
                              &p, NULL),
                     ST_OK);
    hd_sleep_ms(1800); /* past its expiry; the publisher's sweep skips locked rows */

    Herald__V1__GetStatusResponse *s1 = get_status(&g_hd, 0);
    db_rollback(holder);
    db_close(holder);
    assert_non_null(s0->queue);
    assert_non_null(s1->queue);
    assert_int_equal(s1->queue->due_posts - s0->queue->due_posts, 1);
    assert_int_equal(s1->queue->scheduled_posts - s0->queue->scheduled_posts, 1);
    assert_int_equal(s1->queue->unconfirmed_posts - s0->queue->unconfirmed_posts, 1);
    assert_int_equal(s1->queue->leased_posts - s0->queue->leased_posts, 1);
    assert_int_equal(s1->queue->stuck_leases - s0->queue->stuck_leases, 1);
    assert_true(s1->queue->oldest_due_age_seconds >= 119);
    const Herald__V1__ProfileStatus *p1 = status_profile(s1, "st-q");
    assert_non_null(p1);
    assert_int_equal(p1->state, HERALD__V1__PROFILE_STATE__PROFILE_STATE_ACTIVE);
    assert_int_equal(p1->scheduled_posts, 2);
    assert_int_equal(p1->approved_drafts, 1);
    assert_non_null(p1->last_publish_time);
    assert_true(s1->server_time->seconds - p1->last_publish_time->seconds >= 3590);
    assert_true(s1->server_time->seconds - p1->last_publish_time->seconds <= 3700);
    assert_non_null(p1->last_metric_time); /* recorded_at: just now */
    assert_true(s1->server_time->seconds - p1->last_metric_time->seconds < 120);

    /* tidy: nothing of this profile stays due for the other tests */
    free(sql(db, false,
             "UPDATE posts SET state = 'cancelled', updated_at = now() WHERE profile_id = 'st-q' "
             "AND state IN ('scheduled', 'approved')",
             SQL_END));
    db_close(db);
    free(pub);
    free(live);
    free(stuck);
    free(lease);
    herald__v1__get_status_response__free_unpacked(s0, NULL);
    herald__v1__get_status_response__free_unpacked(s1, NULL);
}

/* ---------------------------------------------------------------- ListSlowQueries */

typedef struct slow_call {
    const char *id;
    int code;
} slow_call;

static void *get_profile_thread(void *arg)
{
    slow_call *c = arg;
    Herald__V1__GetProfileRequest req = HERALD__V1__GET_PROFILE_REQUEST__INIT;
    req.profile_id = (char *)c->id;
    c->code = call(&g_hd, OPS "GetProfile", &req.base, &herald__v1__profile__descriptor, 10000,
                   NULL, NULL);
    return NULL;
}

static Herald__V1__ListSlowQueriesResponse *list_slow(int min_ms, int size, const char *token,
                                                      int *code)
{
    Herald__V1__ListSlowQueriesRequest req = HERALD__V1__LIST_SLOW_QUERIES_REQUEST__INIT;
    req.min_duration_ms = min_ms;
    req.page_size = size;
    req.page_token = (char *)(token != NULL ? token : "");
    ProtobufCMessage *r = NULL;
    *code = call(&g_hd, OPS "ListSlowQueries", &req.base,
                 &herald__v1__list_slow_queries_response__descriptor, 5000, &r, NULL);
    return (Herald__V1__ListSlowQueriesResponse *)r;
}

static void slow_query_from_a_held_lock(void **state)
{
    (void)state;
    const char *secret_id = "slow-lock-zq7";
    create_profile(secret_id);

    /* Another connection holds profiles exclusively for ~900 ms, well past
     * the 200 ms threshold; GetProfile's first statement waits for it. */
    db_conn *holder = tdb_open(g_url);
    assert_int_equal(db_begin(holder, 30000), ST_OK);
    assert_int_equal(db_query(holder, "test_lock_profiles",
                              "LOCK TABLE profiles IN ACCESS EXCLUSIVE MODE", NULL, NULL),
                     ST_OK);
    slow_call c = { secret_id, -1 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, get_profile_thread, &c), 0);
    hd_sleep_ms(900);
    assert_int_equal(db_commit(holder), ST_OK);
    pthread_join(th, NULL);
    db_close(holder);
    assert_int_equal(c.code, 0);

    int code = -1;
    Herald__V1__ListSlowQueriesResponse *l = list_slow(0, 0, NULL, &code);
    assert_int_equal(code, 0);
    assert_int_equal(l->threshold_ms, SLOW_MS);
    const Herald__V1__SlowQuery *hit = NULL;
    for (size_t i = 0; i < l->n_queries; i++) {
        const Herald__V1__SlowQuery *q = l->queries[i];
        assert_true(q->count >= 1 && q->max_ms >= SLOW_MS && q->mean_ms >= SLOW_MS);
        assert_true(q->mean_ms <= q->max_ms + 1e-9);
        if (i > 0)
            assert_true(l->queries[i - 1]->max_ms >= q->max_ms); /* slowest first */
        assert_null(strstr(q->normalized_statement, secret_id)); /* never a parameter value */
        if (strcmp(q->last_method, OPS "GetProfile") == 0 && hit == NULL)
            hit = q;
    }
    if (hit == NULL)
        fail_msg("no slow statement of GetProfile among %zu (log: %s)", l->n_queries, g_hd.log);
    assert_true(hit->max_ms >= 600);
    assert_true(strlen(hit->statement_name) > 0);
    assert_non_null(strstr(hit->normalized_statement, "profiles"));
    assert_non_null(strstr(hit->normalized_statement, "$1"));
    assert_non_null(hit->last_time);
    size_t all = l->n_queries;
    double worst = l->queries[0]->max_ms;

    /* min_duration_ms filters by the worst time */
    int min_ms = (int)worst + 1;
    Herald__V1__ListSlowQueriesResponse *none = list_slow(min_ms, 0, NULL, &code);
    assert_int_equal(code, 0);
    assert_int_equal(none->n_queries, 0);
    herald__v1__list_slow_queries_response__free_unpacked(none, NULL);

    /* one per page: every row once (a statement turning slow meanwhile may
     * add one) */
    char *token = NULL, *names[300];
    size_t seen = 0;
    for (int guard = 0; guard < 300; guard++) {
        Herald__V1__ListSlowQueriesResponse *pg = list_slow(0, 1, token, &code);
        assert_int_equal(code, 0);
        free(token);
        token = NULL;
        assert_true(pg->n_queries <= 1);
        if (pg->n_queries == 1) {
            for (size_t k = 0; k < seen; k++)
                assert_string_not_equal(names[k], pg->queries[0]->statement_name);
            names[seen++] = xstrdup(pg->queries[0]->statement_name);
        }
        if (pg->next_page_token[0] != '\0')
            token = xstrdup(pg->next_page_token);
        herald__v1__list_slow_queries_response__free_unpacked(pg, NULL);
        if (token == NULL)
            break;
    }
    assert_true(seen >= all);
    for (size_t i = 0; i < all; i++) {
        bool found = false;
        for (size_t k = 0; k < seen; k++)
            found |= strcmp(names[k], l->queries[i]->statement_name) == 0;
        assert_true(found);
    }
    for (size_t k = 0; k < seen; k++)
        free(names[k]);
    free(token);

    Herald__V1__ListSlowQueriesResponse *bad = list_slow(0, 1, "not-a-token", &code);
    assert_int_equal(code, 3);
    assert_null(bad);
    herald__v1__list_slow_queries_response__free_unpacked(l, NULL);
}

/* ---------------------------------------------------------------- /metrics */

typedef struct tally {
    char method[48];
    int code;
    int n;
} tally;

static void tally_add(tally *t, size_t *n, const char *method, int code)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(t[i].method, method) == 0 && t[i].code == code) {
            t[i].n++;
            return;
        }
    snprintf(t[*n].method, sizeof t[*n].method, "%s", method);
    t[*n].code = code;
    t[*n].n = 1;
    (*n)++;
}

/* Go spelling of a gRPC code (conventions §6). */
static const char *go_code(int code)
{
    static const char *const names[] = {
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    };
    return code >= 0 && code <= 16 ? names[code] : "?";
}

static void metric_deltas_match_the_clients(void **state)
{
    (void)state;
    create_profile("mx-a");
    tally t[32];
    size_t nt = 0;
    memset(t, 0, sizeof t);
    char *before = scrape();

    for (int i = 0; i < 3; i++) {
        Herald__V1__GetProfileRequest r = HERALD__V1__GET_PROFILE_REQUEST__INIT;
        r.profile_id = (char *)"mx-a";
        tally_add(t, &nt, "GetProfile",
                  call(&g_hd, OPS "GetProfile", &r.base, &herald__v1__profile__descriptor, 5000,
                       NULL, NULL));
    }
    for (int i = 0; i < 4; i++) {
        Herald__V1__GetProfileRequest r = HERALD__V1__GET_PROFILE_REQUEST__INIT;
        r.profile_id = (char *)"mx-missing";
        tally_add(t, &nt, "GetProfile",
                  call(&g_hd, OPS "GetProfile", &r.base, &herald__v1__profile__descriptor, 5000,
                       NULL, NULL));
    }
    for (int i = 0; i < 2; i++) {
        Herald__V1__GetProfileRequest r = HERALD__V1__GET_PROFILE_REQUEST__INIT;
        r.profile_id = (char *)"Not An Id!";
        tally_add(t, &nt, "GetProfile",
                  call(&g_hd, OPS "GetProfile", &r.base, &herald__v1__profile__descriptor, 5000,
                       NULL, NULL));
    }
    for (int i = 0; i < 2; i++) {
        Herald__V1__ListProfilesRequest r = HERALD__V1__LIST_PROFILES_REQUEST__INIT;
        tally_add(t, &nt, "ListProfiles",
                  call(&g_hd, OPS "ListProfiles", &r.base,
                       &herald__v1__list_profiles_response__descriptor, 5000, NULL, NULL));
    }
    for (int i = 0; i < 3; i++) {
        Herald__V1__GetStatusRequest r = HERALD__V1__GET_STATUS_REQUEST__INIT;
        tally_add(t, &nt, "GetStatus",
                  call(&g_hd, OPS "GetStatus", &r.base,
                       &herald__v1__get_status_response__descriptor, 5000, NULL, NULL));
    }
    {
        Herald__V1__GetConfigRequest r = HERALD__V1__GET_CONFIG_REQUEST__INIT;
        tally_add(t, &nt, "GetConfig",
                  call(&g_hd, OPS "GetConfig", &r.base,
                       &herald__v1__get_config_response__descriptor, 5000, NULL, NULL));
        int code = -1;
        Herald__V1__ListSlowQueriesResponse *bad = list_slow(0, 0, "bad-token", &code);
        assert_null(bad);
        tally_add(t, &nt, "ListSlowQueries", code);
    }
    {
        Herald__V1__CreateProfileRequest r = HERALD__V1__CREATE_PROFILE_REQUEST__INIT;
        Herald__V1__Profile p = HERALD__V1__PROFILE__INIT;
        r.request_id = (char *)rid();
        r.profile = &p;
        p.profile_id = (char *)"mx-a";
        p.platform = HERALD__V1__PLATFORM__PLATFORM_X;
        tally_add(t, &nt, "CreateProfile",
                  call(&g_hd, OPS "CreateProfile", &r.base, &herald__v1__profile__descriptor, 5000,
                       NULL, NULL));
    }
    int checks_ok = 0, checks_nf = 0;
    for (int i = 0; i < 2; i++)
        checks_ok += hd_health(&g_hd, "readiness") == 1;
    checks_nf += hd_health(&g_hd, "no-such-service") == -5;

    char *after = scrape();
    /* what the mix was meant to be */
    int expect[][2] = { { 0, 3 }, { 5, 4 }, { 3, 2 } };
    for (size_t k = 0; k < 3; k++) {
        int got = 0;
        for (size_t i = 0; i < nt; i++)
            if (strcmp(t[i].method, "GetProfile") == 0 && t[i].code == expect[k][0])
                got = t[i].n;
        assert_int_equal(got, expect[k][1]);
    }
    assert_int_equal(checks_ok, 2);
    assert_int_equal(checks_nf, 1);

    /* every (method, code) the clients saw moved by exactly that much */
    int methods_total[8] = { 0 };
    const char *mnames[8];
    size_t nm = 0;
    for (size_t i = 0; i < nt; i++) {
        const char *want[] = { "grpc_service", "herald.v1.OpsService", "grpc_method", t[i].method,
                               "grpc_code",    go_code(t[i].code),     NULL };
        double d = metric_sum(after, "grpc_server_handled_total", want) -
                   metric_sum(before, "grpc_server_handled_total", want);
        if ((int)d != t[i].n)
            fail_msg("%s %s: metric delta %g, client saw %d", t[i].method, go_code(t[i].code), d,
                     t[i].n);
        size_t m = 0;
        while (m < nm && strcmp(mnames[m], t[i].method) != 0)
            m++;
        if (m == nm)
            mnames[nm++] = t[i].method;
        methods_total[m] += t[i].n;
    }
    /* ... and nothing else moved for those methods; started and _count agree */
    for (size_t m = 0; m < nm; m++) {
        const char *want[] = { "grpc_service", "herald.v1.OpsService", "grpc_method", mnames[m],
                               NULL };
        double handled = metric_sum(after, "grpc_server_handled_total", want) -
                         metric_sum(before, "grpc_server_handled_total", want);
        double started = metric_sum(after, "grpc_server_started_total", want) -
                         metric_sum(before, "grpc_server_started_total", want);
        double count = metric_sum(after, "grpc_server_handling_seconds_count", want) -
                       metric_sum(before, "grpc_server_handling_seconds_count", want);
        assert_int_equal((int)handled, methods_total[m]);
        assert_int_equal((int)started, methods_total[m]);
        assert_int_equal((int)count, methods_total[m]);
    }
    const char *ok[] = {
        "grpc_service", "grpc.health.v1.Health", "grpc_method", "Check", "grpc_code", "OK", NULL
    };
    const char *nf[] = { "grpc_service",
                         "grpc.health.v1.Health",
                         "grpc_method",
                         "Check",
                         "grpc_code",
                         "NotFound",
                         NULL };
    assert_int_equal((int)(metric_sum(after, "grpc_server_handled_total", ok) -
                           metric_sum(before, "grpc_server_handled_total", ok)),
                     2);
    assert_int_equal((int)(metric_sum(after, "grpc_server_handled_total", nf) -
                           metric_sum(before, "grpc_server_handled_total", nf)),
                     1);
    /* every method x code pre-initialised: GetSloReport's series exist at 0 */
    const char *pre[] = { "grpc_method", "GetSloReport", "grpc_code", "DataLoss", NULL };
    assert_non_null(strstr(after, "grpc_method=\"GetSloReport\""));
    assert_true(metric_sum(after, "grpc_server_handled_total", pre) == 0);
    assert_non_null(strstr(after, "\nherald_memory_limit_bytes "));
    assert_non_null(strstr(after, "\ndb_up 1"));
    assert_promtool_clean(after);

    char *body = NULL;
    assert_int_equal(http_get(g_admin_port, "/readyz", &body), 200);
    free(body);
    free(before);
    free(after);
}

/* ---------------------------------------------------------------- GetSloReport */

static Herald__V1__GetSloReportResponse *slo(int64_t start_s, int64_t end_s, const char *profile,
                                             int *code)
{
    Herald__V1__GetSloReportRequest req = HERALD__V1__GET_SLO_REPORT_REQUEST__INIT;
    Google__Protobuf__Timestamp s = GOOGLE__PROTOBUF__TIMESTAMP__INIT,
                                e = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    if (start_s != 0) {
        s.seconds = start_s;
        req.start_time = &s;
    }
    if (end_s != 0) {
        e.seconds = end_s;
        req.end_time = &e;
    }
    req.profile_id = (char *)(profile != NULL ? profile : "");
    ProtobufCMessage *r = NULL;
    *code = call(&g_hd, OPS "GetSloReport", &req.base,
                 &herald__v1__get_slo_report_response__descriptor, 10000, &r, NULL);
    return (Herald__V1__GetSloReportResponse *)r;
}

static const Herald__V1__ProfileSlo *slo_profile(const Herald__V1__GetSloReportResponse *r,
                                                 const char *id)
{
    for (size_t i = 0; i < r->n_profiles; i++)
        if (strcmp(r->profiles[i]->profile_id, id) == 0)
            return r->profiles[i];
    return NULL;
}

static void generate_draft(const char *profile, int *code)
{
    Herald__V1__GenerateDraftRequest r = HERALD__V1__GENERATE_DRAFT_REQUEST__INIT;
    r.request_id = (char *)rid();
    r.profile_id = (char *)profile;
    r.provider = HERALD__V1__PROVIDER__PROVIDER_BUILTIN;
    *code = call(&g_hd, CONTENT "GenerateDraft", &r.base,
                 &herald__v1__generate_draft_response__descriptor, 20000, NULL, NULL);
}

static void slo_report_against_targets(void **state)
{
    (void)state;
    create_profile("slo-a");
    create_profile("slo-b");
    db_conn *db = tdb_open(g_url);
    /* slo-a: 20 published in the window + 1 failed -> 20/21 > 95 % (MET);
     * one published 8 days ago is outside the default 7-day window */
    char *a_posts[20];
    for (int i = 0; i < 20; i++)
        a_posts[i] = insert_post(db, "slo-a", "published", 3600 * (i + 1));
    free(insert_post(db, "slo-a", "published", 8 * 86400));
    free(insert_post(db, "slo-a", "failed", 600));
    /* slo-b: 1 published, 1 unknown -> 50 % (MISSED) */
    char *b_pub = insert_post(db, "slo-b", "published", 7200);
    free(insert_post(db, "slo-b", "unconfirmed", 300));
    /* engagement of slo-a: (10+5+5)/1000 and 5/500 -> 25/1500; an older
     * observation of the first post is superseded; one with no engagement
     * metric at all is not counted */
    free(sql(db, false,
             "INSERT INTO engagement_observations (post_id, observed_at, source, impressions, "
             "likes, replies, quotes) VALUES ($1::uuid, now() - interval '20 minutes', 't', "
             "1000, 10, 5, 5), ($1::uuid, now() - interval '40 minutes', 't', 900, 1, NULL, "
             "NULL), ($2::uuid, now() - interval '20 minutes', 't', 500, 5, NULL, NULL)",
             a_posts[0], a_posts[1], SQL_END));
    free(sql(db, false,
             "INSERT INTO engagement_observations (post_id, observed_at, source, impressions, "
             "follows) VALUES ($1::uuid, now() - interval '20 minutes', 't', 7000, 1)",
             a_posts[2], SQL_END));
    /* followers of slo-a: 1000 two days ago, 1100 one day ago -> +100/day */
    free(sql(db, false,
             "INSERT INTO follower_snapshots (profile_id, observed_at, source, follower_count) "
             "VALUES ('slo-a', now() - interval '2 days', 't', 1000), "
             "('slo-a', now() - interval '1 day', 't', 1100)",
             SQL_END));
    db_close(db);

    /* generation: a few built-in drafts */
    int gen_calls = 0;
    for (int i = 0; i < 3; i++) {
        int code = -1;
        generate_draft("slo-b", &code);
        gen_calls++;
    }
    /* a server-caused code: GetProfile cut by its deadline behind a held lock */
    db_conn *holder = tdb_open(g_url);
    assert_int_equal(db_begin(holder, 30000), ST_OK);
    assert_int_equal(db_query(holder, "test_lock_profiles",
                              "LOCK TABLE profiles IN ACCESS EXCLUSIVE MODE", NULL, NULL),
                     ST_OK);
    Herald__V1__GetProfileRequest gp = HERALD__V1__GET_PROFILE_REQUEST__INIT;
    gp.profile_id = (char *)"slo-a";
    int dl =
        call(&g_hd, OPS "GetProfile", &gp.base, &herald__v1__profile__descriptor, 300, NULL, NULL);
    db_rollback(holder);
    db_close(holder);
    assert_int_equal(dl, 4); /* DEADLINE_EXCEEDED */

    char *m = scrape();
    double calls = 0, server = 0;
    static const char *const services[] = { "herald.v1.OpsService", "herald.v1.ContentService",
                                            "herald.v1.SchedulingService",
                                            "herald.v1.LearningService" };
    static const char *const server_codes[] = { "Unknown", "Internal", "DataLoss", "Unavailable",
                                                "DeadlineExceeded" };
    for (size_t i = 0; i < 4; i++) {
        const char *w[] = { "grpc_service", services[i], NULL };
        calls += metric_sum(m, "grpc_server_handled_total", w);
        for (size_t c = 0; c < 5; c++) {
            const char *wc[] = { "grpc_service", services[i], "grpc_code", server_codes[c], NULL };
            server += metric_sum(m, "grpc_server_handled_total", wc);
        }
    }
    const char *gw[] = { "grpc_service", "herald.v1.ContentService", "grpc_method", "GenerateDraft",
                         NULL };
    double gen_total = metric_sum(m, "grpc_server_handled_total", gw);
    free(m);

    int code = -1;
    Herald__V1__GetSloReportResponse *r = slo(0, 0, NULL, &code);
    assert_int_equal(code, 0);
    assert_non_null(r->start_time);
    assert_non_null(r->end_time);
    assert_int_equal(r->end_time->seconds - r->start_time->seconds, 7 * 86400);
    assert_non_null(r->compute_time);

    /* process-local figures: exactly this process's herald.v1 counters */
    assert_non_null(r->error_rate);
    assert_int_equal(r->error_rate->sample_count, (int64_t)calls);
    assert_true(server >= 1);
    assert_true(fabs(r->error_rate->value - server / calls) < 1e-9);
    assert_string_equal(r->error_rate->unit, "ratio");
    assert_int_equal(r->error_rate->comparison, HERALD__V1__SLO_COMPARISON__SLO_COMPARISON_BELOW);
    assert_int_equal(r->error_rate->state, server / calls < 0.01
                                               ? HERALD__V1__SLO_STATE__SLO_STATE_MET
                                               : HERALD__V1__SLO_STATE__SLO_STATE_MISSED);
    assert_non_null(r->generation_p95);
    assert_int_equal(r->generation_p95->sample_count, (int64_t)gen_total);
    assert_true(gen_total >= gen_calls);
    assert_int_equal(r->generation_p95->value_opt_case, HERALD__V1__SLO_FIGURE__VALUE_OPT_VALUE);
    assert_true(r->generation_p95->value > 0 && r->generation_p95->value < 30);
    assert_int_equal(r->generation_p95->state, HERALD__V1__SLO_STATE__SLO_STATE_MET);
    assert_string_equal(r->generation_p95->unit, "seconds");
    assert_non_null(r->database_p95);
    assert_true(r->database_p95->sample_count > 0);
    assert_string_equal(r->database_p95->unit, "milliseconds");
    assert_true(r->database_p95->target == 500);

    /* posting success over every profile of this database */
    assert_non_null(r->posting_success);
    assert_int_equal(r->posting_success->comparison,
                     HERALD__V1__SLO_COMPARISON__SLO_COMPARISON_ABOVE);
    assert_true(r->posting_success->target == 0.95);
    const Herald__V1__ProfileSlo *a = slo_profile(r, "slo-a");
    const Herald__V1__ProfileSlo *b = slo_profile(r, "slo-b");
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->published, 20);
    assert_int_equal(a->failed, 1);
    assert_int_equal(a->unknown, 0);
    assert_true(fabs(a->posting_success->value - 20.0 / 21.0) < 1e-9);
    assert_int_equal(a->posting_success->state, HERALD__V1__SLO_STATE__SLO_STATE_MET);
    assert_int_equal(a->posting_success->sample_count, 21);
    assert_int_equal(b->published, 1);
    assert_int_equal(b->unknown, 1);
    assert_int_equal(b->posting_success->state, HERALD__V1__SLO_STATE__SLO_STATE_MISSED);
    assert_int_equal(a->follower_growth_per_day_opt_case,
                     HERALD__V1__PROFILE_SLO__FOLLOWER_GROWTH_PER_DAY_OPT_FOLLOWER_GROWTH_PER_DAY);
    assert_true(fabs(a->follower_growth_per_day - 100.0) < 0.01);
    assert_int_equal(b->follower_growth_per_day_opt_case,
                     HERALD__V1__PROFILE_SLO__FOLLOWER_GROWTH_PER_DAY_OPT__NOT_SET);
    assert_int_equal(a->engagement_rate_opt_case,
                     HERALD__V1__PROFILE_SLO__ENGAGEMENT_RATE_OPT_ENGAGEMENT_RATE);
    assert_true(fabs(a->engagement_rate - 25.0 / 1500.0) < 1e-9);
    assert_int_equal(b->engagement_rate_opt_case,
                     HERALD__V1__PROFILE_SLO__ENGAGEMENT_RATE_OPT__NOT_SET);
    /* the overall figure counts every profile: at least slo-a and slo-b's */
    int64_t n_all = r->posting_success->sample_count;
    assert_true(n_all >= 21 + 2);
    herald__v1__get_slo_report_response__free_unpacked(r, NULL);

    /* only one profile in the per-profile part; the overall is unchanged */
    r = slo(0, 0, "slo-b", &code);
    assert_int_equal(code, 0);
    assert_int_equal(r->n_profiles, 1);
    assert_string_equal(r->profiles[0]->profile_id, "slo-b");
    assert_int_equal(r->posting_success->sample_count, n_all);
    herald__v1__get_slo_report_response__free_unpacked(r, NULL);

    /* a window that ended before this heraldd started: no process data */
    time_t now = time(NULL);
    r = slo(now - 3 * 86400, now - 2 * 86400, NULL, &code);
    assert_int_equal(code, 0);
    assert_int_equal(r->error_rate->state, HERALD__V1__SLO_STATE__SLO_STATE_NO_DATA);
    assert_int_equal(r->generation_p95->state, HERALD__V1__SLO_STATE__SLO_STATE_NO_DATA);
    assert_int_equal(r->database_p95->state, HERALD__V1__SLO_STATE__SLO_STATE_NO_DATA);
    assert_int_equal(r->error_rate->sample_count, 0);
    assert_int_equal(r->posting_success->state, HERALD__V1__SLO_STATE__SLO_STATE_NO_DATA);
    a = slo_profile(r, "slo-a");
    assert_non_null(a);
    assert_int_equal(a->published, 0);
    assert_int_equal(a->posting_success->state, HERALD__V1__SLO_STATE__SLO_STATE_NO_DATA);
    herald__v1__get_slo_report_response__free_unpacked(r, NULL);

    /* validation */
    assert_null(slo(now, now - 60, NULL, &code));
    assert_int_equal(code, 3);
    assert_null(slo(now - 400LL * 86400, now, NULL, &code));
    assert_int_equal(code, 3);
    assert_null(slo(0, 0, "Bad Id", &code));
    assert_int_equal(code, 3);
    for (int i = 0; i < 20; i++)
        free(a_posts[i]);
    free(b_pub);
}

/* ---------------------------------------------------------------- the kill switch */

static int claim(const char *profile, int *items)
{
    Herald__V1__ClaimDueWorkRequest r = HERALD__V1__CLAIM_DUE_WORK_REQUEST__INIT;
    r.request_id = (char *)rid();
    r.executor_id = (char *)"test-ops-svc";
    r.profile_id = (char *)profile;
    r.limit = 10;
    ProtobufCMessage *resp = NULL;
    int code = call(&g_hd, SCHED "ClaimDueWork", &r.base,
                    &herald__v1__claim_due_work_response__descriptor, 10000, &resp, NULL);
    *items = resp != NULL ? (int)((Herald__V1__ClaimDueWorkResponse *)resp)->n_items : -1;
    if (resp != NULL)
        protobuf_c_message_free_unpacked(resp, NULL);
    return code;
}

static void paused_profile_gets_no_claims_and_no_generation(void **state)
{
    (void)state;
    create_profile("kill-a");
    db_conn *db = tdb_open(g_url);
    free(insert_post(db, "kill-a", "scheduled", 60)); /* due */
    db_close(db);

    assert_int_equal(pause_profile("kill-a", true), 0);
    Herald__V1__GenerateDraftRequest g = HERALD__V1__GENERATE_DRAFT_REQUEST__INIT;
    g.request_id = (char *)rid();
    g.profile_id = (char *)"kill-a";
    g.provider = HERALD__V1__PROVIDER__PROVIDER_BUILTIN;
    herald_status st;
    herald_status_init(&st);
    assert_int_equal(call(&g_hd, CONTENT "GenerateDraft", &g.base,
                          &herald__v1__generate_draft_response__descriptor, 20000, NULL, &st),
                     9); /* FAILED_PRECONDITION */
    char reason[64];
    assert_string_equal(st_reason(&st, reason, sizeof reason), "PROFILE_PAUSED");
    herald_status_fini(&st);
    int items = -1;
    assert_int_equal(claim("kill-a", &items), 0);
    assert_int_equal(items, 0);
    Herald__V1__GetStatusResponse *s = get_status(&g_hd, 0);
    const Herald__V1__ProfileStatus *ps = status_profile(s, "kill-a");
    assert_non_null(ps);
    assert_int_equal(ps->state, HERALD__V1__PROFILE_STATE__PROFILE_STATE_PAUSED);
    herald__v1__get_status_response__free_unpacked(s, NULL);

    assert_int_equal(pause_profile("kill-a", false), 0);
    assert_int_equal(claim("kill-a", &items), 0);
    assert_int_equal(items, 1);
    g.request_id = (char *)rid();
    herald_status_init(&st);
    (void)call(&g_hd, CONTENT "GenerateDraft", &g.base,
               &herald__v1__generate_draft_response__descriptor, 20000, NULL, &st);
    assert_string_not_equal(st_reason(&st, reason, sizeof reason), "PROFILE_PAUSED");
    herald_status_fini(&st);
}

/* ---------------------------------------------------------------- GetConfig */

static Herald__V1__GetConfigResponse *get_config(const char *prefix, uint8_t **bytes, size_t *len)
{
    Herald__V1__GetConfigRequest req = HERALD__V1__GET_CONFIG_REQUEST__INIT;
    req.key_prefix = (char *)prefix;
    ProtobufCMessage *r = NULL;
    assert_int_equal(call(&g_hd, OPS "GetConfig", &req.base,
                          &herald__v1__get_config_response__descriptor, 5000, &r, NULL),
                     0);
    if (bytes != NULL) {
        *len = protobuf_c_message_get_packed_size(r);
        *bytes = xmalloc(*len + 1);
        protobuf_c_message_pack(r, *bytes);
    }
    return (Herald__V1__GetConfigResponse *)r;
}

static const Herald__V1__ConfigSetting *setting(const Herald__V1__GetConfigResponse *c,
                                                const char *key)
{
    for (size_t i = 0; i < c->n_settings; i++)
        if (strcmp(c->settings[i]->key, key) == 0)
            return c->settings[i];
    return NULL;
}

static bool bytes_contain(const uint8_t *b, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(b + i, needle, n) == 0)
            return true;
    return false;
}

static void config_with_sources_and_secrets_masked(void **state)
{
    (void)state;
    uint8_t *bytes = NULL;
    size_t len = 0;
    Herald__V1__GetConfigResponse *c = get_config("", &bytes, &len);
    assert_true(c->n_settings >= 30);
    for (size_t i = 1; i < c->n_settings; i++)
        assert_true(strcmp(c->settings[i - 1]->key, c->settings[i]->key) < 0);
    assert_false(bytes_contain(bytes, len, LLM_SECRET));
    assert_false(bytes_contain(bytes, len, PG_SECRET));
    free(bytes);

    const Herald__V1__ConfigSetting *s = setting(c, "llm.api_key");
    assert_non_null(s);
    assert_string_equal(s->value, "***");
    assert_true(s->secret);
    assert_int_equal(s->source, HERALD__V1__CONFIG_SOURCE__CONFIG_SOURCE_ENV);
    s = setting(c, "database_url");
    assert_non_null(s);
    assert_true(s->secret);
    assert_null(strstr(s->value, PG_SECRET));
    s = setting(c, "workers");
    assert_string_equal(s->value, "2");
    assert_int_equal(s->source, HERALD__V1__CONFIG_SOURCE__CONFIG_SOURCE_ENV);
    assert_false(s->secret);
    s = setting(c, "listen");
    assert_int_equal(s->source, HERALD__V1__CONFIG_SOURCE__CONFIG_SOURCE_FLAG);
    s = setting(c, "log.format");
    assert_string_equal(s->value, "json");
    assert_int_equal(s->source, HERALD__V1__CONFIG_SOURCE__CONFIG_SOURCE_DEFAULT);
    assert_true(s->reloadable);
    s = setting(c, "db.slow_query_ms");
    assert_non_null(s);
    assert_int_equal(atoi(s->value), SLOW_MS);
    assert_int_equal(s->source, HERALD__V1__CONFIG_SOURCE__CONFIG_SOURCE_FILE);
    assert_true(s->reloadable);
    herald__v1__get_config_response__free_unpacked(c, NULL);

    c = get_config("memory.", NULL, NULL);
    assert_int_equal(c->n_settings, 3);
    assert_string_equal(c->settings[0]->key, "memory.limit_mb");
    assert_string_equal(c->settings[1]->key, "memory.sample_ms");
    assert_string_equal(c->settings[2]->key, "memory.soft_pct");
    herald__v1__get_config_response__free_unpacked(c, NULL);

    /* SIGHUP: the file's new threshold applies and GetConfig shows it */
    write_conf(SLOW_MS + 50);
    assert_int_equal(kill(g_hd.pid, SIGHUP), 0);
    bool seen = false;
    for (int i = 0; i < 100 && !seen; i++) {
        c = get_config("db.", NULL, NULL);
        s = setting(c, "db.slow_query_ms");
        seen = s != NULL && atoi(s->value) == SLOW_MS + 50;
        herald__v1__get_config_response__free_unpacked(c, NULL);
        if (!seen)
            hd_sleep_ms(50);
    }
    assert_true(seen);
    int code = -1;
    Herald__V1__ListSlowQueriesResponse *l = list_slow(0, 1, NULL, &code);
    assert_int_equal(code, 0);
    assert_int_equal(l->threshold_ms, SLOW_MS + 50);
    herald__v1__list_slow_queries_response__free_unpacked(l, NULL);
}

/* ---------------------------------------------------------------- memory pressure */

typedef struct load {
    hd *h;
    atomic_bool stop;
    atomic_int exhausted, other, with_retry;
    int64_t until_ms;
    const char *post_id;
} load;

enum { BATCH = 200 };

/* A RecordEngagement batch of BATCH observations of post, each at its own
 * second before now (pointers into the caller's arrays). */
static void engagement_batch(Herald__V1__RecordEngagementRequest *r, const char *post,
                             Herald__V1__EngagementObservation *obs,
                             Herald__V1__EngagementObservation **ptrs,
                             Google__Protobuf__Timestamp *ts)
{
    int64_t now = (int64_t)time(NULL);
    herald__v1__record_engagement_request__init(r);
    for (int i = 0; i < BATCH; i++) {
        herald__v1__engagement_observation__init(&obs[i]);
        google__protobuf__timestamp__init(&ts[i]);
        ts[i].seconds = now - 60 - i;
        obs[i].post_id = (char *)post;
        obs[i].observe_time = &ts[i];
        obs[i].source = (char *)"load";
        obs[i].impressions = 1000 + i;
        obs[i].impressions_opt_case =
            HERALD__V1__ENGAGEMENT_OBSERVATION__IMPRESSIONS_OPT_IMPRESSIONS;
        obs[i].likes = i;
        obs[i].likes_opt_case = HERALD__V1__ENGAGEMENT_OBSERVATION__LIKES_OPT_LIKES;
        ptrs[i] = &obs[i];
    }
    r->observations = ptrs;
    r->n_observations = BATCH;
}

static void *ingest_thread(void *arg)
{
    load *l = arg;
    Herald__V1__EngagementObservation obs[BATCH], *ptrs[BATCH];
    Google__Protobuf__Timestamp ts[BATCH];
    Herald__V1__RecordEngagementRequest batch;
    engagement_batch(&batch, l->post_id, obs, ptrs, ts);
    for (unsigned n = 0; !atomic_load(&l->stop) && now_mono_ms() < l->until_ms; n++) {
        herald_status st;
        herald_status_init(&st);
        int code;
        if (n % 4 == 3) {
            Herald__V1__GenerateDraftRequest g = HERALD__V1__GENERATE_DRAFT_REQUEST__INIT;
            g.profile_id = (char *)"mem-a";
            code = call(l->h, CONTENT "GenerateDraft", &g.base,
                        &herald__v1__generate_draft_response__descriptor, 5000, NULL, &st);
        } else {
            code = call(l->h, LEARN "RecordEngagement", &batch.base,
                        &herald__v1__record_engagement_response__descriptor, 5000, NULL, &st);
        }
        if (code == 8) {
            atomic_fetch_add(&l->exhausted, 1);
            const char *pb = herald_status_metadata(&st, "grpc-retry-pushback-ms", NULL);
            bool retry_info = false;
            for (size_t i = 0; i < st.n_details; i++)
                retry_info |= strstr(st.details[i].type_url, "google.rpc.RetryInfo") != NULL;
            if (pb != NULL && atoi(pb) > 0 && retry_info)
                atomic_fetch_add(&l->with_retry, 1);
        } else {
            atomic_fetch_add(&l->other, 1);
        }
        herald_status_fini(&st);
    }
    return NULL;
}

static void expensive_calls_refused_over_the_memory_limit(void **state)
{
    (void)state;
    create_profile("mem-a");
    db_conn *db = tdb_open(g_url);
    char *post = insert_post(db, "mem-a", "published", 600);
    db_close(db);

    /* under the normal limit the same batch is simply ingested */
    {
        Herald__V1__EngagementObservation obs[BATCH], *ptrs[BATCH];
        Google__Protobuf__Timestamp ts[BATCH];
        Herald__V1__RecordEngagementRequest batch;
        engagement_batch(&batch, post, obs, ptrs, ts);
        assert_int_equal(call(&g_hd, LEARN "RecordEngagement", &batch.base,
                              &herald__v1__record_engagement_response__descriptor, 10000, NULL,
                              NULL),
                         0);
    }

    hd mh;
    char dir[160];
    snprintf(dir, sizeof dir, "%s/mem", g_dir);
    /* a 1 MiB limit is below any RSS: HARD from the first sample on */
    const char *extra[] = { "HERALD_MEMORY_LIMIT_MB=1", "HERALD_MEMORY_SAMPLE_MS=100",
                            "HERALD_WORKERS=2", NULL };
    assert_true(hd_start(&mh, dir, g_url, g_redis, extra));
    assert_true(hd_wait_health(&mh, "readiness", 1, 30000));
    Herald__V1__GetStatusResponse *s = NULL;
    for (int i = 0; i < 100; i++) {
        s = get_status(&mh, 0);
        if (s->memory != NULL && s->memory->state == HERALD__V1__MEMORY_STATE__MEMORY_STATE_HARD)
            break;
        herald__v1__get_status_response__free_unpacked(s, NULL);
        s = NULL;
        hd_sleep_ms(50);
    }
    assert_non_null(s);
    int64_t rejected0 = s->memory->rejected_calls;
    herald__v1__get_status_response__free_unpacked(s, NULL);

    load l = { .h = &mh, .until_ms = now_mono_ms() + 4000, .post_id = post };
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, ingest_thread, &l), 0);
    int checks = 0, statuses = 0, lists = 0, rounds = 0;
    int64_t worst_check_ms = 0;
    while (now_mono_ms() < l.until_ms) {
        int64_t t0 = now_mono_ms();
        checks += hd_health(&mh, "readiness") == 1;
        int64_t dt = now_mono_ms() - t0;
        worst_check_ms = dt > worst_check_ms ? dt : worst_check_ms;
        Herald__V1__GetStatusRequest sr = HERALD__V1__GET_STATUS_REQUEST__INIT;
        ProtobufCMessage *r = NULL;
        if (call(&mh, OPS "GetStatus", &sr.base, &herald__v1__get_status_response__descriptor, 5000,
                 &r, NULL) == 0) {
            Herald__V1__GetStatusResponse *gs = (Herald__V1__GetStatusResponse *)r;
            statuses += gs->memory != NULL &&
                        gs->memory->state == HERALD__V1__MEMORY_STATE__MEMORY_STATE_HARD;
            protobuf_c_message_free_unpacked(r, NULL);
        }
        Herald__V1__ListProfilesRequest lr = HERALD__V1__LIST_PROFILES_REQUEST__INIT;
        lists += call(&mh, OPS "ListProfiles", &lr.base,
                      &herald__v1__list_profiles_response__descriptor, 5000, NULL, NULL) == 0;
        rounds++;
        hd_sleep_ms(20);
    }
    atomic_store(&l.stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);

    int exhausted = atomic_load(&l.exhausted);
    fprintf(stderr,
            "memory pressure: %d expensive calls refused (%d with retry delay), %d other; "
            "cheap calls OK in %d rounds: Check %d, GetStatus %d, ListProfiles %d; worst Check "
            "%lld ms\n",
            exhausted, atomic_load(&l.with_retry), atomic_load(&l.other), rounds, checks, statuses,
            lists, (long long)worst_check_ms);
    assert_true(exhausted >= 20);
    assert_int_equal(atomic_load(&l.other), 0);
    assert_int_equal(atomic_load(&l.with_retry), exhausted);
    assert_true(rounds >= 5);
    assert_int_equal(checks, rounds);
    assert_int_equal(statuses, rounds);
    assert_int_equal(lists, rounds);
    assert_true(hd_alive(&mh));

    s = get_status(&mh, 0);
    assert_int_equal(s->memory->rejected_calls - rejected0, exhausted);
    herald__v1__get_status_response__free_unpacked(s, NULL);
    assert_int_equal(hd_stop(&mh), 0);
    free(post);
}

/* A database that cannot be reached costs GetStatus its queue, not the answer. */
static void status_answers_without_the_database(void **state)
{
    (void)state;
    hd dh;
    char dir[160], url[256];
    snprintf(dir, sizeof dir, "%s/nodb", g_dir);
    snprintf(url, sizeof url, "postgresql:///herald?host=%s/no-such-socket-dir&connect_timeout=1",
             g_dir);
    assert_true(hd_start(&dh, dir, url, g_redis, NULL));
    Herald__V1__GetStatusResponse *s = NULL;
    for (int i = 0; i < 100; i++) {
        s = get_status(&dh, 0);
        if (s->database != NULL && s->database->last_ping_time != NULL)
            break;
        herald__v1__get_status_response__free_unpacked(s, NULL);
        s = NULL;
        hd_sleep_ms(50);
    }
    assert_non_null(s);
    assert_false(s->database->up);
    assert_true(strlen(s->database->last_error) > 0);
    assert_int_equal(s->database->schema_version, -1);
    assert_null(s->queue);
    assert_int_equal(s->n_profiles, 0);
    assert_non_null(s->memory);
    assert_non_null(s->workers);
    herald__v1__get_status_response__free_unpacked(s, NULL);
    assert_int_equal(hd_health(&dh, "liveness"), 1);
    assert_int_equal(hd_stop(&dh), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_reports_the_process),
        cmocka_unit_test(status_reports_queue_and_profiles),
        cmocka_unit_test(slow_query_from_a_held_lock),
        cmocka_unit_test(metric_deltas_match_the_clients),
        cmocka_unit_test(slo_report_against_targets),
        cmocka_unit_test(paused_profile_gets_no_claims_and_no_generation),
        cmocka_unit_test(config_with_sources_and_secrets_masked),
        cmocka_unit_test(expensive_calls_refused_over_the_memory_limit),
        cmocka_unit_test(status_answers_without_the_database),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
