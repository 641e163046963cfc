/* test_sched_svc.c - SchedulingService end to end (issue 7): a real heraldd
 * (started here, migrating its own fresh database) driven over gRPC with
 * the C client.
 *
 * Covers: Get/SetPostingPolicy (defaults, masks, validation naming each
 * field, revisions, idempotent replay); ReportPlatformSignal and
 * GetQuotaStatus (cooldown with halved targets, no claims in a cooldown or
 * while paused, CLEARED); SchedulePost (time, slot, next best with its
 * decision; FAILED_PRECONDITION naming the rule: gap, hourly and daily
 * quotas, quiet hours; replies held to the reply quotas; state checks);
 * GetNextSlots (deterministic for a seed, the prior without history, a
 * synthetic hour_of_week history concentrating slots in its hidden best
 * hour, and a property test over random policies, zones and existing posts
 * checked by an independent checker); the lease machine (claims, renew,
 * every outcome, duplicate / conflicting / foreign reports, backoff and
 * Retry-After, attempts exhausted, UNKNOWN and reconciliation both ways, a
 * lapsed lease making its post UNCONFIRMED and a late report refused);
 * reply opportunities (every filter, tiers, ranking, paging, cooldowns).
 *
 * Needs the services fixture (DATABASE_URL); skips (77) without. Its
 * database is herald_test_sched_<pid>. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <math.h>

#include "herald/v1/scheduling.pb-c.h"
#include "test_db_support.h"
#include "test_profiles_support.h"
#include "textsim.h"
#include "tz.h"

#define SCHED "/herald.v1.SchedulingService/"
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

static hd g_hd;
static char *g_admin, *g_url, *g_dbname;
static char g_dir[128];
static db_conn *g_db;
static unsigned g_rid;
static herald_status g_st;

/* ---------------------------------------------------------------- helpers */

static const char *rid(void)
{
    static char ring[16][40];
    static unsigned k;
    char *r = ring[k++ % 16];
    rid_make(r, 7, ++g_rid);
    return r;
}

/* One SchedulingService call; the status stays in g_st. */
static int sc(const char *method, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *d,
              void *resp)
{
    char path[128];
    herald_call_options o = { .timeout_ms = 20000 };
    ProtobufCMessage *r = NULL;
    snprintf(path, sizeof path, SCHED "%s", method);
    herald_status_fini(&g_st);
    int code = herald_call_unary(g_hd.ch, path, req, d, &o, &r, &g_st);
    if (resp != NULL)
        *(ProtobufCMessage **)resp = r;
    else if (r != NULL)
        protobuf_c_message_free_unpacked(r, NULL);
    if (code != 0 && getenv("TEST_VERBOSE") != NULL)
        fprintf(stderr, "  %s -> %s: %s\n", method, herald_code_name(code), g_st.message);
    return code;
}

static void msg_free(void *m)
{
    if (m != NULL)
        protobuf_c_message_free_unpacked(m, NULL);
}

static Google__Protobuf__Timestamp *ts(int64_t ms)
{
    static Google__Protobuf__Timestamp ring[32];
    static unsigned k;
    Google__Protobuf__Timestamp *t = &ring[k++ % 32];
    google__protobuf__timestamp__init(t);
    t->seconds = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    t->nanos = (int32_t)((ms - t->seconds * 1000) * 1000000);
    return t;
}

static int64_t ts_ms(const Google__Protobuf__Timestamp *t)
{
    return t == NULL ? 0 : t->seconds * 1000 + t->nanos / 1000000;
}

static int64_t db_now_ms(void)
{
    return tdb_int(g_db, "SELECT (extract(epoch FROM now()) * 1000)::bigint");
}

static void sqlf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sqlf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvasprintf(fmt, ap);
    va_end(ap);
    tdb_must(g_db, s);
    free(s);
}

static int64_t sql_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t sql_int(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvasprintf(fmt, ap);
    va_end(ap);
    int64_t v = tdb_int(g_db, s);
    free(s);
    return v;
}

/* First column of the first row as text into out. */
static char *sql_text(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static char *sql_text(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvasprintf(fmt, ap);
    va_end(ap);
    db_res *res = NULL;
    status st = db_run(g_db, 30000, "test_text", s, NULL, &res);
    assert_int_equal(st, ST_OK);
    snprintf(out, cap, "%s", db_res_rows(res) > 0 ? db_res_text(res, 0, 0) : "");
    db_res_free(res);
    free(s);
    return out;
}

static bool has_violation(const char *field)
{
    return st_violation(&g_st, field);
}

static const char *reason(void)
{
    static char buf[128];
    return st_reason(&g_st, buf, sizeof buf);
}

/* A profile through OpsService. kind: 1 executor, 2 webhook. */
static void make_profile(const char *id, const char *tz, const char *handle, const char *topic)
{
    Herald__V1__CreateProfileRequest req = HERALD__V1__CREATE_PROFILE_REQUEST__INIT;
    Herald__V1__Profile p = HERALD__V1__PROFILE__INIT;
    char *topics[1] = { (char *)topic };
    req.request_id = (char *)rid();
    req.profile = &p;
    p.profile_id = (char *)id;
    p.platform = HERALD__V1__PLATFORM__PLATFORM_X;
    p.time_zone = (char *)(tz != NULL ? tz : "UTC");
    p.handle = (char *)(handle != NULL ? handle : "");
    if (topic != NULL) {
        p.topics = topics;
        p.n_topics = 1;
    }
    int code = ops_call(&g_hd, "CreateProfile", &req.base, &herald__v1__profile__descriptor, 10000,
                        NULL, NULL);
    assert_int_equal(code, 0);
}

/* The content hash heraldd uses (textsim normalisation, SHA-256 hex). */
static void hash_hex(const char *text, char out[65])
{
    strbuf n = { 0 };
    uint8_t sum[32];
    assert_int_equal(textsim_normalize(text, strlen(text), &n), ST_OK);
    db_sha256(n.data != NULL ? n.data : "", n.len, sum);
    strbuf_fini(&n);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", sum[i]);
}

/* Inserts a post; schedule_off_ms relative to now() when state is
 * 'scheduled'. Returns its id into out (37 bytes). */
static char *insert_post(char out[40], const char *profile, const char *state, const char *kind,
                         const char *text, int64_t schedule_off_ms)
{
    char h[65];
    hash_hex(text, h);
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, profile);
    db_param_text(&p, state);
    db_param_text(&p, kind);
    db_param_text(&p, text);
    db_param_text(&p, h);
    db_param_int64(&p, schedule_off_ms);
    status st =
        db_run(g_db, 30000, "test_insert_post",
               "INSERT INTO posts (profile_id, state, platform, kind, text, content_hash, "
               "provider, reply_to_external_id, schedule_time) VALUES ($1, $2, 'x', $3, $4, "
               "$5, 'builtin', CASE WHEN $3 = 'reply' THEN 'root-1' ELSE '' END, "
               "CASE WHEN $2 = 'scheduled' THEN now() + $6::bigint * interval '1 ms' END) "
               "RETURNING post_id",
               &p, &res);
    if (st != ST_OK)
        fprintf(stderr, "insert post: %s\n", db_errmsg(g_db));
    assert_int_equal(st, ST_OK);
    snprintf(out, 40, "%s", db_res_text(res, 0, 0));
    db_res_free(res);
    return out;
}

static char *post_state(char out[32], const char *post_id)
{
    return sql_text(out, 32, "SELECT state FROM posts WHERE post_id = '%s'", post_id);
}

/* SetPostingPolicy with the fields named in paths (comma-separated). */
static int set_policy(const char *profile, const Herald__V1__PostingPolicy *pol, const char *paths,
                      Herald__V1__PostingPolicy **out)
{
    Herald__V1__SetPostingPolicyRequest req = HERALD__V1__SET_POSTING_POLICY_REQUEST__INIT;
    Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    char buf[512], *parts[32];
    size_t n = 0;
    req.request_id = (char *)rid();
    req.profile_id = (char *)profile;
    req.policy = (Herald__V1__PostingPolicy *)pol;
    if (paths != NULL) {
        snprintf(buf, sizeof buf, "%s", paths);
        for (char *s = strtok(buf, ","); s != NULL && n < 32; s = strtok(NULL, ","))
            parts[n++] = s;
        mask.paths = parts;
        mask.n_paths = n;
        req.update_mask = &mask;
    }
    return sc("SetPostingPolicy", &req.base, &herald__v1__posting_policy__descriptor, out);
}

static int claim(const char *executor, const char *profile, int limit, int lease_s,
                 Herald__V1__ClaimDueWorkResponse **out)
{
    Herald__V1__ClaimDueWorkRequest req = HERALD__V1__CLAIM_DUE_WORK_REQUEST__INIT;
    req.request_id = (char *)rid();
    req.executor_id = (char *)executor;
    req.profile_id = (char *)(profile != NULL ? profile : "");
    req.limit = limit;
    req.lease_seconds = lease_s;
    return sc("ClaimDueWork", &req.base, &herald__v1__claim_due_work_response__descriptor, out);
}

static int report(const char *lease, const char *executor, const char *post, int outcome,
                  const char *ext, int error_class, const char *msg, int retry_after,
                  Herald__V1__ReportPublishResultResponse **out)
{
    Herald__V1__ReportPublishResultRequest req = HERALD__V1__REPORT_PUBLISH_RESULT_REQUEST__INIT;
    req.request_id = (char *)rid();
    req.lease_id = (char *)lease;
    req.executor_id = (char *)executor;
    req.post_id = (char *)post;
    req.outcome = (Herald__V1__PublishOutcome)outcome;
    req.external_id = (char *)(ext != NULL ? ext : "");
    req.error_class = (Herald__V1__PublishErrorClass)error_class;
    req.error_message = (char *)(msg != NULL ? msg : "");
    if (retry_after >= 0) {
        req.retry_after_seconds = retry_after;
        req.retry_after_seconds_opt_case =
            HERALD__V1__REPORT_PUBLISH_RESULT_REQUEST__RETRY_AFTER_SECONDS_OPT_RETRY_AFTER_SECONDS;
    }
    return sc("ReportPublishResult", &req.base,
              &herald__v1__report_publish_result_response__descriptor, out);
}

static int signal_(const char *profile, int kind, int64_t reset_ms,
                   Herald__V1__ReportPlatformSignalResponse **out)
{
    Herald__V1__ReportPlatformSignalRequest req = HERALD__V1__REPORT_PLATFORM_SIGNAL_REQUEST__INIT;
    req.request_id = (char *)rid();
    req.profile_id = (char *)profile;
    req.executor_id = (char *)"exec-test";
    req.kind = (Herald__V1__PlatformSignalKind)kind;
    if (reset_ms != 0)
        req.reset_time = ts(reset_ms);
    req.detail = (char *)"HTTP 429";
    return sc("ReportPlatformSignal", &req.base,
              &herald__v1__report_platform_signal_response__descriptor, out);
}

static Herald__V1__QuotaStatus *quota(const char *profile)
{
    Herald__V1__GetQuotaStatusRequest req = HERALD__V1__GET_QUOTA_STATUS_REQUEST__INIT;
    Herald__V1__QuotaStatus *q = NULL;
    req.profile_id = (char *)profile;
    assert_int_equal(sc("GetQuotaStatus", &req.base, &herald__v1__quota_status__descriptor, &q), 0);
    return q;
}

static int schedule_at(const char *post, int64_t t_ms, Herald__V1__SchedulePostResponse **out)
{
    Herald__V1__SchedulePostRequest req = HERALD__V1__SCHEDULE_POST_REQUEST__INIT;
    req.request_id = (char *)rid();
    req.post_id = (char *)post;
    req.when_case = HERALD__V1__SCHEDULE_POST_REQUEST__WHEN_PUBLISH_TIME;
    req.publish_time = ts(t_ms);
    return sc("SchedulePost", &req.base, &herald__v1__schedule_post_response__descriptor, out);
}

static int next_slots(const char *profile, int64_t after_ms, int count, uint64_t seed,
                      Herald__V1__GetNextSlotsResponse **out)
{
    Herald__V1__GetNextSlotsRequest req = HERALD__V1__GET_NEXT_SLOTS_REQUEST__INIT;
    req.profile_id = (char *)profile;
    if (after_ms != 0)
        req.after_time = ts(after_ms);
    req.count = count;
    req.seed = seed;
    req.seed_opt_case = HERALD__V1__GET_NEXT_SLOTS_REQUEST__SEED_OPT_SEED;
    return sc("GetNextSlots", &req.base, &herald__v1__get_next_slots_response__descriptor, out);
}

static size_t packed(const ProtobufCMessage *m, uint8_t *buf, size_t cap)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    assert_true(n <= cap);
    protobuf_c_message_pack(m, buf);
    return n;
}

/* Next UTC midnight after now + days. */
static int64_t midnight_after(int64_t now_ms, int days)
{
    return (now_ms / DAY_MS + 1 + days) * DAY_MS;
}

/* ---------------------------------------------------------------- fixture */

static int group_setup(void **state)
{
    (void)state;
    g_admin = getenv("DATABASE_URL");
    if (g_admin == NULL) {
        fprintf(stderr, "DATABASE_URL not set: skipping\n");
        exit(TEST_SKIP);
    }
    g_url = tdb_create(g_admin, "herald_test_sched", &g_dbname);
    snprintf(g_dir, sizeof g_dir, "/tmp/herald-test-sched-%d", (int)getpid());
    herald_client_init();
    herald_status_init(&g_st);
    const char *extra[] = { "HERALD_WORKERS=2", NULL };
    if (!hd_start(&g_hd, g_dir, g_url, "", extra)) {
        fprintf(stderr, "heraldd did not start (log: %s)\n", g_hd.log);
        return -1;
    }
    if (!hd_wait_health(&g_hd, "readiness", 1, 30000) ||
        !hd_wait_health(&g_hd, "herald.v1.SchedulingService", 1, 5000)) {
        fprintf(stderr, "heraldd never became ready (log: %s)\n", g_hd.log);
        return -1;
    }
    g_db = tdb_open(g_url);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    db_close(g_db);
    herald_status_fini(&g_st);
    int rc = hd_stop(&g_hd);
    if (rc != 0)
        fprintf(stderr, "heraldd exited %d (log: %s)\n", rc, g_hd.log);
    herald_client_shutdown();
    if (g_url != NULL)
        tdb_drop(g_admin, g_dbname);
    if (rc == 0)
        (void)tsh("rm -rf %s", g_dir);
    free(g_url);
    free(g_dbname);
    return rc == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- policy */

static void policy_get_set(void **state)
{
    (void)state;
    make_profile("pol", NULL, NULL, NULL);
    Herald__V1__GetPostingPolicyRequest g = HERALD__V1__GET_POSTING_POLICY_REQUEST__INIT;
    Herald__V1__PostingPolicy *p = NULL;
    g.profile_id = (char *)"pol";
    assert_int_equal(sc("GetPostingPolicy", &g.base, &herald__v1__posting_policy__descriptor, &p),
                     0);
    /* the defaults */
    assert_int_equal(p->max_posts_per_hour, 2);
    assert_int_equal(p->max_posts_per_day, 24);
    assert_int_equal(p->min_gap_minutes, 20);
    assert_int_equal(p->min_replies_per_hour, 4);
    assert_int_equal(p->max_replies_per_hour, 6);
    assert_int_equal(p->reply_root_cooldown_hours, 24);
    assert_int_equal(p->reply_author_cooldown_hours, 12);
    assert_true(fabs(p->cooldown_target_factor - 0.5) < 1e-12);
    assert_int_equal(p->revision, 0);
    assert_null(p->update_time);
    msg_free(p);

    /* empty mask: the non-zero fields */
    Herald__V1__PostingPolicy in = HERALD__V1__POSTING_POLICY__INIT;
    Herald__V1__QuietHours q = HERALD__V1__QUIET_HOURS__INIT;
    Herald__V1__QuietHours *qs[1] = { &q };
    Herald__V1__DayOfWeek days[2] = { HERALD__V1__DAY_OF_WEEK__DAY_OF_WEEK_SATURDAY,
                                      HERALD__V1__DAY_OF_WEEK__DAY_OF_WEEK_SUNDAY };
    in.max_posts_per_hour = 3;
    q.start_minute_of_day = 23 * 60;
    q.end_minute_of_day = 7 * 60;
    q.days = days;
    q.n_days = 2;
    in.quiet_hours = qs;
    in.n_quiet_hours = 1;
    Herald__V1__SetPostingPolicyRequest req = HERALD__V1__SET_POSTING_POLICY_REQUEST__INIT;
    req.request_id = (char *)rid();
    req.profile_id = (char *)"pol";
    req.policy = &in;
    assert_int_equal(sc("SetPostingPolicy", &req.base, &herald__v1__posting_policy__descriptor, &p),
                     0);
    assert_int_equal(p->max_posts_per_hour, 3);
    assert_int_equal(p->max_posts_per_day, 24); /* untouched */
    assert_int_equal(p->n_quiet_hours, 1);
    assert_int_equal(p->quiet_hours[0]->n_days, 2);
    assert_int_equal(p->quiet_hours[0]->days[0], HERALD__V1__DAY_OF_WEEK__DAY_OF_WEEK_SATURDAY);
    assert_int_equal(p->revision, 1);
    assert_non_null(p->update_time);
    uint8_t a[4096], b[4096];
    size_t na = packed(&p->base, a, sizeof a);
    msg_free(p);
    /* the same request_id replays the first reply, byte for byte */
    assert_int_equal(sc("SetPostingPolicy", &req.base, &herald__v1__posting_policy__descriptor, &p),
                     0);
    assert_int_equal(packed(&p->base, b, sizeof b), na);
    assert_memory_equal(a, b, na);
    msg_free(p);
    /* ... and with another request is refused */
    in.max_posts_per_hour = 4;
    assert_int_equal(
        sc("SetPostingPolicy", &req.base, &herald__v1__posting_policy__descriptor, NULL), 3);
    assert_string_equal(reason(), "IDEMPOTENCY_KEY_REUSED");

    /* a named field takes 0 */
    Herald__V1__PostingPolicy zero = HERALD__V1__POSTING_POLICY__INIT;
    assert_int_equal(set_policy("pol", &zero, "maxPostsPerHour,quiet_hours", &p), 0);
    assert_int_equal(p->max_posts_per_hour, 0);
    assert_int_equal(p->n_quiet_hours, 0);
    assert_int_equal(p->revision, 2);
    msg_free(p);

    /* validation names each field */
    Herald__V1__PostingPolicy bad = HERALD__V1__POSTING_POLICY__INIT;
    bad.max_posts_per_hour = 61;
    bad.min_replies_per_hour = 10; /* > max 6 */
    bad.reconcile_window_minutes = 0;
    assert_int_equal(set_policy("pol", &bad,
                                "max_posts_per_hour,min_replies_per_hour,reconcile_window_minutes",
                                NULL),
                     3);
    assert_true(has_violation("policy.max_posts_per_hour"));
    assert_true(has_violation("policy.min_replies_per_hour"));
    assert_true(has_violation("policy.reconcile_window_minutes"));
    assert_int_equal(set_policy("pol", &zero, "no_such_field", NULL), 3);
    assert_true(has_violation("update_mask.paths[0]"));
    assert_int_equal(set_policy("pol", &zero, "revision", NULL), 3);
    Herald__V1__DayOfWeek bad_day[1] = { (Herald__V1__DayOfWeek)9 };
    q.days = bad_day;
    q.n_days = 1;
    in.max_posts_per_hour = 2;
    assert_int_equal(set_policy("pol", &in, NULL, NULL), 3);
    assert_true(has_violation("policy.quiet_hours[0].days[0]"));
    /* still at revision 2: nothing was stored */
    g.profile_id = (char *)"pol";
    assert_int_equal(sc("GetPostingPolicy", &g.base, &herald__v1__posting_policy__descriptor, &p),
                     0);
    assert_int_equal(p->revision, 2);
    msg_free(p);

    /* conditional update */
    req.request_id = (char *)rid();
    req.expected_revision = 99;
    q.days = days;
    q.n_days = 2;
    assert_int_equal(
        sc("SetPostingPolicy", &req.base, &herald__v1__posting_policy__descriptor, NULL), 10);
    req.request_id = (char *)rid();
    req.expected_revision = 2;
    assert_int_equal(sc("SetPostingPolicy", &req.base, &herald__v1__posting_policy__descriptor, &p),
                     0);
    assert_int_equal(p->revision, 3);
    msg_free(p);

    g.profile_id = (char *)"nobody";
    assert_int_equal(sc("GetPostingPolicy", &g.base, &herald__v1__posting_policy__descriptor, NULL),
                     5);
    g.profile_id = (char *)"Bad Id";
    assert_int_equal(sc("GetPostingPolicy", &g.base, &herald__v1__posting_policy__descriptor, NULL),
                     3);
    assert_true(has_violation("profile_id"));
}

/* ---------------------------------------------------------------- signals and quotas */

static void signals_and_quota(void **state)
{
    (void)state;
    char id[40];
    make_profile("sig", NULL, NULL, NULL);
    for (int i = 0; i < 3; i++) {
        char text[64];
        snprintf(text, sizeof text, "signal test post number %d", i);
        insert_post(id, "sig", "scheduled", "original", text, -60000);
    }
    Herald__V1__QuotaStatus *q = quota("sig");
    assert_false(q->in_cooldown);
    assert_false(q->paused);
    assert_int_equal(q->max_posts_per_hour, 2);
    assert_int_equal(q->max_posts_per_day, 24);
    assert_int_equal(q->scheduled_count, 3);
    assert_int_equal(q->max_replies_per_hour, 6);
    assert_non_null(q->server_time);
    msg_free(q);

    /* a 429 with a reset time: cooldown until then, targets halved */
    int64_t now = db_now_ms();
    Herald__V1__ReportPlatformSignalResponse *r = NULL;
    assert_int_equal(signal_("sig",
                             HERALD__V1__PLATFORM_SIGNAL_KIND__PLATFORM_SIGNAL_KIND_RATE_LIMITED,
                             now + 600000, &r),
                     0);
    assert_non_null(r->cooldown_end_time);
    assert_true(llabs(ts_ms(r->cooldown_end_time) - (now + 600000)) <= 2000);
    assert_true(r->quota->in_cooldown);
    assert_int_equal(r->quota->cooldown_reason,
                     HERALD__V1__PLATFORM_SIGNAL_KIND__PLATFORM_SIGNAL_KIND_RATE_LIMITED);
    assert_int_equal(r->quota->max_posts_per_hour, 1);
    assert_int_equal(r->quota->max_posts_per_day, 12);
    msg_free(r);
    Herald__V1__ClaimDueWorkResponse *c = NULL;
    assert_int_equal(claim("exec-sig", "sig", 10, 60, &c), 0);
    assert_int_equal(c->n_items, 0); /* cooling down: no claims */
    msg_free(c);

    /* an auth wall without a reset time: the policy's 720 minutes, never shorter */
    assert_int_equal(
        signal_("sig", HERALD__V1__PLATFORM_SIGNAL_KIND__PLATFORM_SIGNAL_KIND_AUTH_WALL, 0, &r), 0);
    assert_true(llabs(ts_ms(r->cooldown_end_time) - (now + 720 * 60000LL)) <= 5000);
    assert_int_equal(r->quota->cooldown_reason,
                     HERALD__V1__PLATFORM_SIGNAL_KIND__PLATFORM_SIGNAL_KIND_AUTH_WALL);
    msg_free(r);
    assert_int_equal(sql_int("SELECT count(*) FROM platform_signals WHERE profile_id = 'sig'"), 2);

    /* paused: no claims either */
    assert_int_equal(
        signal_("sig", HERALD__V1__PLATFORM_SIGNAL_KIND__PLATFORM_SIGNAL_KIND_CLEARED, 0, &r), 0);
    assert_null(r->cooldown_end_time);
    assert_false(r->quota->in_cooldown);
    msg_free(r);
    Herald__V1__PauseProfileRequest pr = HERALD__V1__PAUSE_PROFILE_REQUEST__INIT;
    pr.request_id = (char *)rid();
    pr.profile_id = (char *)"sig";
    pr.reason = (char *)"test";
    assert_int_equal(ops_call(&g_hd, "PauseProfile", &pr.base, &herald__v1__profile__descriptor,
                              10000, NULL, NULL),
                     0);
    q = quota("sig");
    assert_true(q->paused);
    msg_free(q);
    assert_int_equal(claim("exec-sig", "sig", 10, 60, &c), 0);
    assert_int_equal(c->n_items, 0);
    msg_free(c);
    Herald__V1__ResumeProfileRequest rr = HERALD__V1__RESUME_PROFILE_REQUEST__INIT;
    rr.request_id = (char *)rid();
    rr.profile_id = (char *)"sig";
    assert_int_equal(ops_call(&g_hd, "ResumeProfile", &rr.base, &herald__v1__profile__descriptor,
                              10000, NULL, NULL),
                     0);
    assert_int_equal(claim("exec-sig", "sig", 10, 60, &c), 0);
    assert_int_equal(c->n_items, 3);
    msg_free(c);

    /* errors */
    assert_int_equal(signal_("sig", 0, 0, NULL), 3);
    assert_true(has_violation("kind"));
    assert_int_equal(signal_("nobody", 1, 0, NULL), 5);
}

/* ---------------------------------------------------------------- SchedulePost */

static void schedule_post(void **state)
{
    (void)state;
    char a[40], b[40], c[40], d[40], draft[40], st[32];
    make_profile("sch", NULL, NULL, NULL);
    Herald__V1__PostingPolicy pol = HERALD__V1__POSTING_POLICY__INIT;
    Herald__V1__QuietHours q = HERALD__V1__QUIET_HOURS__INIT;
    Herald__V1__QuietHours *qs[1] = { &q };
    q.start_minute_of_day = 2 * 60;
    q.end_minute_of_day = 4 * 60;
    pol.quiet_hours = qs;
    pol.n_quiet_hours = 1;
    assert_int_equal(set_policy("sch", &pol, "quiet_hours", NULL), 0);
    insert_post(a, "sch", "approved", "original", "first scheduled post about sleep", 0);
    insert_post(b, "sch", "approved", "original", "second scheduled post about water", 0);
    insert_post(c, "sch", "approved", "original", "third scheduled post about walking", 0);
    insert_post(d, "sch", "approved", "original", "fourth scheduled post about habits", 0);
    insert_post(draft, "sch", "draft", "original", "a draft that was never approved", 0);

    int64_t base = midnight_after(db_now_ms(), 1);
    int64_t t0 = base + 10 * HOUR_MS;
    Herald__V1__SchedulePostResponse *r = NULL;
    assert_int_equal(schedule_at(a, t0, &r), 0);
    assert_int_equal(r->post->state, HERALD__V1__POST_STATE__POST_STATE_SCHEDULED);
    assert_int_equal(ts_ms(r->post->schedule_time), t0);
    assert_true(r->post->hour_of_week_opt_case != 0);
    tz_local lt;
    assert_int_equal(tz_localtime(tz_utc(), t0 / 1000, &lt), ST_OK);
    assert_int_equal(r->post->hour_of_week, (lt.iso_weekday - 1) * 24 + lt.hour);
    assert_int_equal(ts_ms(r->slot->start_time), t0);
    assert_string_equal(r->decision_id, "");
    msg_free(r);

    /* the gap */
    assert_int_equal(schedule_at(b, t0 + 5 * 60000, NULL), 9);
    assert_non_null(strstr(g_st.message, "min_gap_minutes"));
    assert_string_equal(reason(), "POLICY_MIN_GAP_MINUTES");
    assert_string_equal(post_state(st, b), "approved"); /* unchanged */
    assert_int_equal(schedule_at(b, t0 + 25 * 60000, NULL), 0);
    /* the hourly quota: a third post within a rolling hour */
    assert_int_equal(schedule_at(c, t0 + 50 * 60000, NULL), 9);
    assert_non_null(strstr(g_st.message, "max_posts_per_hour"));
    assert_string_equal(reason(), "POLICY_MAX_POSTS_PER_HOUR");
    /* quiet hours */
    assert_int_equal(schedule_at(c, base + 3 * HOUR_MS, NULL), 9);
    assert_string_equal(reason(), "POLICY_QUIET_HOURS");
    /* not approved */
    assert_int_equal(schedule_at(draft, t0 + 5 * HOUR_MS, NULL), 9);
    assert_string_equal(reason(), "POST_STATE");
    /* in the past */
    assert_int_equal(schedule_at(c, db_now_ms() - 10 * 60000, NULL), 3);
    assert_true(has_violation("publish_time"));

    /* next best after a time: a logged timing decision, the rules kept */
    Herald__V1__SchedulePostRequest nb = HERALD__V1__SCHEDULE_POST_REQUEST__INIT;
    Herald__V1__NextBestSlot next = HERALD__V1__NEXT_BEST_SLOT__INIT;
    next.after_time = ts(base + 12 * HOUR_MS);
    nb.request_id = (char *)rid();
    nb.post_id = c;
    nb.when_case = HERALD__V1__SCHEDULE_POST_REQUEST__WHEN_NEXT_BEST;
    nb.next_best = &next;
    assert_int_equal(
        sc("SchedulePost", &nb.base, &herald__v1__schedule_post_response__descriptor, &r), 0);
    int64_t tc = ts_ms(r->post->schedule_time);
    assert_true(tc >= base + 12 * HOUR_MS);
    assert_true(strlen(r->decision_id) == 36);
    assert_string_equal(r->post->timing_decision_id, r->decision_id);
    assert_int_equal(sql_int("SELECT count(*) FROM decisions WHERE decision_id = '%s' AND kind = "
                             "'timing' AND propensity > 0 AND propensity <= 1",
                             r->decision_id),
                     1);
    uint8_t x1[8192], x2[8192];
    size_t n1 = packed(&r->base, x1, sizeof x1);
    msg_free(r);
    /* idempotent: the same request replays the same reply */
    assert_int_equal(
        sc("SchedulePost", &nb.base, &herald__v1__schedule_post_response__descriptor, &r), 0);
    assert_int_equal(packed(&r->base, x2, sizeof x2), n1);
    assert_memory_equal(x1, x2, n1);
    msg_free(r);

    /* a slot from GetNextSlots */
    Herald__V1__GetNextSlotsResponse *ns = NULL;
    assert_int_equal(next_slots("sch", base + 30 * HOUR_MS, 3, 11, &ns), 0);
    assert_int_equal(ns->n_slots, 3);
    Herald__V1__SchedulePostRequest sl = HERALD__V1__SCHEDULE_POST_REQUEST__INIT;
    sl.request_id = (char *)rid();
    sl.post_id = d;
    sl.when_case = HERALD__V1__SCHEDULE_POST_REQUEST__WHEN_SLOT_ID;
    sl.slot_id = ns->slots[1]->slot_id;
    assert_int_equal(
        sc("SchedulePost", &sl.base, &herald__v1__schedule_post_response__descriptor, &r), 0);
    assert_int_equal(ts_ms(r->post->schedule_time), ts_ms(ns->slots[1]->start_time));
    msg_free(r);
    msg_free(ns);
    sl.request_id = (char *)rid();
    sl.slot_id = (char *)"slot-banana";
    assert_int_equal(
        sc("SchedulePost", &sl.base, &herald__v1__schedule_post_response__descriptor, NULL), 3);
    assert_true(has_violation("slot_id"));

    /* rescheduling a SCHEDULED post without a lease moves it */
    assert_int_equal(schedule_at(a, t0 + 3 * HOUR_MS, &r), 0);
    assert_int_equal(ts_ms(r->post->schedule_time), t0 + 3 * HOUR_MS);
    msg_free(r);

    /* errors */
    Herald__V1__SchedulePostRequest none = HERALD__V1__SCHEDULE_POST_REQUEST__INIT;
    none.post_id = a;
    assert_int_equal(
        sc("SchedulePost", &none.base, &herald__v1__schedule_post_response__descriptor, NULL), 3);
    assert_true(has_violation("when"));
    assert_int_equal(schedule_at("6f1c1f1e-1111-4111-8111-111111111111", t0, NULL), 5);
    assert_int_equal(schedule_at("not-a-uuid", t0, NULL), 3);
    assert_true(has_violation("post_id"));

    /* the daily quota, and replies held to the reply quotas instead */
    char x[40], y[40], z[40], rep[40];
    make_profile("day", NULL, NULL, NULL);
    Herald__V1__PostingPolicy dp = HERALD__V1__POSTING_POLICY__INIT;
    dp.max_posts_per_day = 2;
    dp.max_posts_per_hour = 2;
    assert_int_equal(
        set_policy("day", &dp, "max_posts_per_day,max_posts_per_hour,min_gap_minutes", NULL), 0);
    insert_post(x, "day", "approved", "original", "daily quota post one", 0);
    insert_post(y, "day", "approved", "original", "daily quota post two", 0);
    insert_post(z, "day", "approved", "original", "daily quota post three", 0);
    insert_post(rep, "day", "approved", "reply", "a reply that is not a post", 0);
    assert_int_equal(schedule_at(x, base + 1 * HOUR_MS, NULL), 0);
    assert_int_equal(schedule_at(y, base + 5 * HOUR_MS, NULL), 0);
    assert_int_equal(schedule_at(z, base + 9 * HOUR_MS, NULL), 9);
    assert_string_equal(reason(), "POLICY_MAX_POSTS_PER_DAY");
    assert_int_equal(schedule_at(z, base + DAY_MS + HOUR_MS, NULL), 0); /* the next day */
    assert_int_equal(schedule_at(rep, base + 1 * HOUR_MS, NULL), 0);    /* a reply */
}

/* ---------------------------------------------------------------- GetNextSlots */

static void slots_basics(void **state)
{
    (void)state;
    make_profile("slt", NULL, NULL, NULL);
    int64_t now = db_now_ms();
    Herald__V1__GetNextSlotsResponse *r1 = NULL, *r2 = NULL;
    assert_int_equal(next_slots("slt", 0, 10, 42, &r1), 0);
    assert_int_equal(next_slots("slt", 0, 10, 42, &r2), 0);
    uint8_t a[16384], b[16384];
    size_t na = packed(&r1->base, a, sizeof a), nb = packed(&r2->base, b, sizeof b);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na); /* deterministic for a seed */
    assert_int_equal(r1->n_slots, 10);
    assert_string_equal(r1->time_zone, "UTC");
    assert_int_equal(r1->seed, 42);
    for (size_t i = 0; i < r1->n_slots; i++) {
        const Herald__V1__Slot *s = r1->slots[i];
        int64_t t = ts_ms(s->start_time);
        assert_true(t >= now);
        assert_int_equal(t % (15 * 60000), 0);
        assert_int_equal(s->basis, HERALD__V1__SLOT_BASIS__SLOT_BASIS_PRIOR);
        assert_true(s->interval->lower <= s->expected_reward);
        assert_true(s->expected_reward <= s->interval->upper);
        assert_true(strlen(s->reason) > 0);
        char want[32];
        snprintf(want, sizeof want, "slot-%lld", (long long)(t / 1000));
        assert_string_equal(s->slot_id, want);
        if (i > 0) {
            int64_t prev = ts_ms(r1->slots[i - 1]->start_time);
            assert_true(t - prev >= 20 * 60000); /* time order and the gap */
        }
        if (i > 1)
            assert_true(t - ts_ms(r1->slots[i - 2]->start_time) >= HOUR_MS); /* 2 per hour */
    }
    msg_free(r1);
    msg_free(r2);
    Herald__V1__GetNextSlotsRequest req = HERALD__V1__GET_NEXT_SLOTS_REQUEST__INIT;
    req.profile_id = (char *)"slt";
    assert_int_equal(
        sc("GetNextSlots", &req.base, &herald__v1__get_next_slots_response__descriptor, &r1), 0);
    assert_int_equal(r1->n_slots, 5); /* 0 means 5; a seed was picked */
    msg_free(r1);
    req.count = 51;
    assert_int_equal(
        sc("GetNextSlots", &req.base, &herald__v1__get_next_slots_response__descriptor, NULL), 3);
    assert_true(has_violation("count"));
    req.count = 1;
    req.profile_id = (char *)"nobody";
    assert_int_equal(
        sc("GetNextSlots", &req.base, &herald__v1__get_next_slots_response__descriptor, NULL), 5);
}

/* A synthetic history whose hidden best hour of day is 19h local (every
 * weekday), others below baseline: slots concentrate there. */
static void slots_history(void **state)
{
    (void)state;
    const char *zone_name = "America/New_York";
    make_profile("hist", zone_name, NULL, NULL);
    Herald__V1__PostingPolicy pol = HERALD__V1__POSTING_POLICY__INIT;
    pol.max_posts_per_day = 2;
    pol.max_posts_per_hour = 2;
    pol.min_gap_minutes = 20;
    assert_int_equal(
        set_policy("hist", &pol, "max_posts_per_day,max_posts_per_hour,min_gap_minutes", NULL), 0);
    for (int h = 0; h < 168; h++) {
        bool best = h % 24 == 19;
        double n = best ? 30 : 10, mean = best ? 1.2 : -0.3;
        sqlf("INSERT INTO arm_stats (profile_id, scope, arm_key, reward_version, n, sum_reward, "
             "sum_sq, pulls, updated_at) VALUES ('hist', 'hour_of_week', '%d', 'v1', %g, %g, %g, "
             "%d, now())",
             h, n, n * mean, n * (mean * mean + 0.25), (int)n);
    }
    const tz_zone *z = NULL;
    assert_int_equal(tz_get(zone_name, &z, NULL, 0), ST_OK);
    Herald__V1__GetNextSlotsResponse *r = NULL;
    int in_best = 0, total = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        assert_int_equal(next_slots("hist", 0, 20, seed, &r), 0);
        assert_string_equal(r->time_zone, zone_name);
        assert_int_equal(r->n_slots, 20);
        for (size_t i = 0; i < r->n_slots; i++) {
            tz_local lt;
            const Herald__V1__Slot *s = r->slots[i];
            assert_int_equal(tz_localtime(z, ts_ms(s->start_time) / 1000, &lt), ST_OK);
            assert_int_equal(s->hour_of_week, (lt.iso_weekday - 1) * 24 + lt.hour);
            assert_int_not_equal(s->basis, HERALD__V1__SLOT_BASIS__SLOT_BASIS_PRIOR);
            assert_true(s->history_weight > 0);
            in_best += lt.hour == 19;
            total++;
        }
        msg_free(r);
    }
    printf("slots in the hidden best hour (19h local): %d of %d\n", in_best, total);
    assert_true(in_best * 10 >= total * 8);
}

/* Random policies, zones and existing posts; every slot is checked with an
 * independent implementation of the rules (not policy.c). */
typedef struct prop_policy {
    int per_hour, per_day, gap_min;
    int qs, qe; /* quiet window, minutes (qs == qe: none) */
} prop_policy;

static bool in_quiet(const prop_policy *p, const tz_zone *z, int64_t t_s)
{
    if (p->qs == p->qe)
        return false;
    tz_local lt;
    tz_localtime(z, t_s, &lt);
    int m = lt.hour * 60 + lt.minute;
    return p->qs < p->qe ? (m >= p->qs && m < p->qe) : (m >= p->qs || m < p->qe);
}

static int64_t local_day(const tz_zone *z, int64_t t_s)
{
    tz_local lt;
    tz_localtime(z, t_s, &lt);
    return tz_days_from_civil(lt.year, lt.month, lt.day);
}

static void slots_property(void **state)
{
    (void)state;
    const char *zones[] = { "UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata",
                            "Australia/Adelaide" };
    unsigned seed = 12345;
    int checked = 0;
    for (int it = 0; it < 25; it++) {
        char profile[32];
        snprintf(profile, sizeof profile, "prop%d", it);
        const char *zn = zones[rand_r(&seed) % 5];
        make_profile(profile, zn, NULL, NULL);
        const tz_zone *z = NULL;
        assert_int_equal(tz_get(zn, &z, NULL, 0), ST_OK);
        prop_policy pp;
        pp.per_hour = 1 + (int)(rand_r(&seed) % 4);
        pp.per_day = pp.per_hour + (int)(rand_r(&seed) % 8);
        pp.gap_min = (int)(rand_r(&seed) % 5) * 30;
        pp.qs = (int)(rand_r(&seed) % 24) * 60;
        pp.qe = rand_r(&seed) % 3 == 0 ? pp.qs : (int)(rand_r(&seed) % 24) * 60;
        Herald__V1__PostingPolicy pol = HERALD__V1__POSTING_POLICY__INIT;
        Herald__V1__QuietHours q = HERALD__V1__QUIET_HOURS__INIT;
        Herald__V1__QuietHours *qs[1] = { &q };
        pol.max_posts_per_hour = pp.per_hour;
        pol.max_posts_per_day = pp.per_day;
        pol.min_gap_minutes = pp.gap_min;
        if (pp.qs != pp.qe) {
            q.start_minute_of_day = pp.qs;
            q.end_minute_of_day = pp.qe;
            pol.quiet_hours = qs;
            pol.n_quiet_hours = 1;
        }
        assert_int_equal(set_policy(profile, &pol,
                                    "max_posts_per_hour,max_posts_per_day,min_gap_minutes,"
                                    "quiet_hours",
                                    NULL),
                         0);
        /* existing scheduled posts at random future quarter hours */
        int64_t now = db_now_ms();
        int n_exist = (int)(rand_r(&seed) % 6);
        int64_t inst[128];
        size_t n_inst = 0;
        for (int k = 0; k < n_exist; k++) {
            char id[40], text[80];
            int64_t off = (int64_t)(rand_r(&seed) % (3 * 24 * 4)) * 15 * 60000 + 60000;
            snprintf(text, sizeof text, "existing post %d of profile %s", k, profile);
            insert_post(id, profile, "scheduled", "original", text, off);
            inst[n_inst++] =
                sql_int("SELECT floor(extract(epoch FROM schedule_time))::bigint FROM posts "
                        "WHERE post_id = '%s'",
                        id);
        }
        int count = 1 + (int)(rand_r(&seed) % 20);
        int64_t after = now + (int64_t)(rand_r(&seed) % 3) * DAY_MS;
        Herald__V1__GetNextSlotsResponse *r = NULL;
        assert_int_equal(next_slots(profile, after, count, rand_r(&seed), &r), 0);
        size_t first_slot = n_inst;
        for (size_t i = 0; i < r->n_slots && n_inst < 128; i++)
            inst[n_inst++] = ts_ms(r->slots[i]->start_time) / 1000;
        for (size_t i = first_slot; i < n_inst; i++) {
            int64_t t = inst[i];
            assert_true(t * 1000 >= after - 1000);
            if (i > first_slot)
                assert_true(t > inst[i - 1]); /* time order */
            assert_false(in_quiet(&pp, z, t));
            int day = 0;
            for (size_t k = 0; k < n_inst; k++) {
                if (k == i)
                    continue;
                assert_true(llabs(inst[k] - t) >= (int64_t)pp.gap_min * 60);
                day += local_day(z, inst[k]) == local_day(z, t);
            }
            assert_true(day + 1 <= pp.per_day);
            /* every rolling hour [w, w + 3600) that holds t */
            for (size_t w = 0; w < n_inst; w++) {
                int64_t ws = inst[w];
                if (ws > t || ws + 3600 <= t)
                    continue;
                int inside = 0;
                for (size_t k = 0; k < n_inst; k++)
                    inside += inst[k] >= ws && inst[k] < ws + 3600;
                assert_true(inside <= pp.per_hour);
            }
            checked++;
        }
        msg_free(r);
    }
    printf("property: %d slots over 25 random policies kept every rule\n", checked);
    assert_true(checked > 50);
}

/* ---------------------------------------------------------------- leases */

static void lease_lifecycle(void **state)
{
    (void)state;
    char ids[8][40], st[32];
    make_profile("lease", NULL, NULL, NULL);
    Herald__V1__PostingPolicy pol = HERALD__V1__POSTING_POLICY__INIT;
    pol.max_publish_attempts = 2;
    pol.retry_initial_backoff_seconds = 1;
    pol.retry_max_backoff_seconds = 2;
    pol.reconcile_window_minutes = 1;
    assert_int_equal(set_policy("lease", &pol, NULL, NULL), 0);
    for (int i = 0; i < 6; i++) {
        char text[64];
        snprintf(text, sizeof text, "lease lifecycle post number %d", i);
        insert_post(ids[i], "lease", "scheduled", "original", text, -120000 + i * 1000);
    }
    /* claims: oldest due first, no post twice, idempotent by request_id */
    Herald__V1__ClaimDueWorkRequest creq = HERALD__V1__CLAIM_DUE_WORK_REQUEST__INIT;
    Herald__V1__ClaimDueWorkResponse *c1 = NULL, *c1b = NULL, *c2 = NULL, *c3 = NULL;
    creq.request_id = (char *)rid();
    creq.executor_id = (char *)"e1";
    creq.profile_id = (char *)"lease";
    creq.limit = 2;
    creq.lease_seconds = 30;
    assert_int_equal(
        sc("ClaimDueWork", &creq.base, &herald__v1__claim_due_work_response__descriptor, &c1), 0);
    assert_int_equal(c1->n_items, 2);
    assert_non_null(c1->server_time);
    assert_string_equal(c1->items[0]->post->post_id, ids[0]);
    assert_string_equal(c1->items[1]->post->post_id, ids[1]);
    for (size_t i = 0; i < 2; i++) {
        const Herald__V1__WorkItem *w = c1->items[i];
        assert_int_equal(w->post->state, HERALD__V1__POST_STATE__POST_STATE_PUBLISHING);
        assert_int_equal(w->lease->attempt_number, 1);
        assert_string_equal(w->lease->executor_id, "e1");
        assert_int_equal(ts_ms(w->lease->expire_time) - ts_ms(w->lease->claim_time), 30000);
    }
    assert_int_equal(
        sc("ClaimDueWork", &creq.base, &herald__v1__claim_due_work_response__descriptor, &c1b), 0);
    assert_int_equal(c1b->n_items, 2);
    assert_string_equal(c1b->items[0]->lease->lease_id, c1->items[0]->lease->lease_id);
    msg_free(c1b);
    assert_int_equal(claim("e2", "lease", 10, 30, &c2), 0);
    assert_int_equal(c2->n_items, 4);
    assert_int_equal(claim("e3", "lease", 10, 30, &c3), 0);
    assert_int_equal(c3->n_items, 0);
    msg_free(c3);
    assert_int_equal(sql_int("SELECT count(*) FROM publish_attempts WHERE state = 'leased' AND "
                             "post_id IN (SELECT post_id FROM posts WHERE profile_id = 'lease')"),
                     6);

    const char *L0 = c1->items[0]->lease->lease_id, *P0 = ids[0];
    const char *L1 = c1->items[1]->lease->lease_id, *P1 = ids[1];
    /* renew */
    Herald__V1__RenewLeaseRequest rn = HERALD__V1__RENEW_LEASE_REQUEST__INIT;
    Herald__V1__Lease *l = NULL;
    rn.request_id = (char *)rid();
    rn.lease_id = (char *)L0;
    rn.executor_id = (char *)"e1";
    rn.lease_seconds = 60;
    int64_t before = db_now_ms();
    assert_int_equal(sc("RenewLease", &rn.base, &herald__v1__lease__descriptor, &l), 0);
    assert_true(ts_ms(l->expire_time) >= before + 59000);
    msg_free(l);
    rn.request_id = (char *)rid();
    rn.executor_id = (char *)"e2";
    assert_int_equal(sc("RenewLease", &rn.base, &herald__v1__lease__descriptor, NULL), 9);
    rn.request_id = (char *)rid();
    rn.lease_id = (char *)"0f1c1f1e-1111-4111-8111-111111111111";
    assert_int_equal(sc("RenewLease", &rn.base, &herald__v1__lease__descriptor, NULL), 5);
    rn.lease_id = (char *)"nope";
    assert_int_equal(sc("RenewLease", &rn.base, &herald__v1__lease__descriptor, NULL), 3);

    /* SUCCESS, then the same report again, then a conflicting one */
    Herald__V1__ReportPublishResultResponse *rr = NULL;
    assert_int_equal(report(L0, "e1", P0, 1, "x-100", 0, NULL, -1, &rr), 0);
    assert_int_equal(rr->post->state, HERALD__V1__POST_STATE__POST_STATE_PUBLISHED);
    assert_string_equal(rr->post->external_id, "x-100");
    assert_non_null(rr->post->publish_time);
    assert_false(rr->duplicate_report);
    msg_free(rr);
    assert_int_equal(report(L0, "e1", P0, 1, "x-100", 0, NULL, -1, &rr), 0);
    assert_true(rr->duplicate_report);
    msg_free(rr);
    assert_int_equal(report(L0, "e1", P0, 1, "x-999", 0, NULL, -1, NULL), 9);
    assert_int_equal(report(L0, "e1", P0, 3, NULL, 0, NULL, -1, NULL), 9);
    assert_int_equal(report(L0, "e2", P0, 1, "x-100", 0, NULL, -1, NULL), 9);
    assert_int_equal(report(L1, "e1", P0, 1, "x-101", 0, NULL, -1, NULL), 9); /* other post */
    assert_int_equal(report(L1, "e1", P1, 1, "", 0, NULL, -1, NULL), 3);      /* no receipt */
    assert_true(has_violation("external_id"));
    assert_int_equal(report(L1, "e1", P1, 0, "", 0, NULL, -1, NULL), 3);
    assert_true(has_violation("outcome"));
    assert_int_equal(
        report("1f1c1f1e-1111-4111-8111-111111111111", "e1", P1, 1, "x", 0, NULL, -1, NULL), 5);
    /* another post's receipt */
    assert_int_equal(report(L1, "e1", P1, 1, "x-100", 0, NULL, -1, NULL), 9);
    assert_string_equal(reason(), "RECEIPT_TAKEN");

    /* RETRYABLE with Retry-After: back in the queue no sooner than that */
    before = db_now_ms();
    assert_int_equal(report(L1, "e1", P1, 2, NULL, 1, "429", 3, &rr), 0);
    assert_int_equal(rr->post->state, HERALD__V1__POST_STATE__POST_STATE_SCHEDULED);
    assert_non_null(rr->next_attempt_time);
    assert_true(ts_ms(rr->next_attempt_time) >= before + 3000);
    assert_int_equal(rr->post->last_outcome,
                     HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_RETRYABLE);
    assert_int_equal(rr->post->last_error_class,
                     HERALD__V1__PUBLISH_ERROR_CLASS__PUBLISH_ERROR_CLASS_RATE_LIMITED);
    int64_t next_at = ts_ms(rr->next_attempt_time);
    msg_free(rr);
    assert_int_equal(claim("e3", "lease", 10, 30, &c3), 0);
    assert_int_equal(c3->n_items, 0); /* not due yet */
    msg_free(c3);
    while (db_now_ms() < next_at + 100)
        hd_sleep_ms(100);
    assert_int_equal(claim("e3", "lease", 10, 30, &c3), 0);
    assert_int_equal(c3->n_items, 1);
    assert_int_equal(c3->items[0]->lease->attempt_number, 2);
    /* the second RETRYABLE uses up max_publish_attempts (2): FAILED */
    assert_int_equal(
        report(c3->items[0]->lease->lease_id, "e3", P1, 2, NULL, 6, "HTTP 503", -1, &rr), 0);
    assert_int_equal(rr->post->state, HERALD__V1__POST_STATE__POST_STATE_FAILED);
    assert_null(rr->next_attempt_time);
    assert_true(strlen(rr->post->state_reason) > 0);
    msg_free(rr);
    msg_free(c3);

    /* PERMANENT */
    const Herald__V1__WorkItem *w2 = c2->items[0], *w3 = c2->items[1], *w4 = c2->items[2],
                               *w5 = c2->items[3];
    assert_int_equal(
        report(w2->lease->lease_id, "e2", w2->post->post_id, 3, NULL, 7, "too long", -1, &rr), 0);
    assert_int_equal(rr->post->state, HERALD__V1__POST_STATE__POST_STATE_FAILED);
    assert_string_equal(rr->post->last_error, "too long");
    assert_string_equal(rr->post->state_reason, "permanent publish failure");
    msg_free(rr);

    /* UNKNOWN, then reconciled: found on the account */
    assert_int_equal(
        report(w3->lease->lease_id, "e2", w3->post->post_id, 4, NULL, 5, "timeout", -1, &rr), 0);
    assert_int_equal(rr->post->state, HERALD__V1__POST_STATE__POST_STATE_UNCONFIRMED);
    msg_free(rr);
    assert_int_equal(
        report(w4->lease->lease_id, "e2", w4->post->post_id, 4, NULL, 5, "timeout", -1, NULL), 0);
    assert_int_equal(claim("e3", "lease", 10, 30, &c3), 0);
    assert_int_equal(c3->n_items, 0); /* UNCONFIRMED is never claimed */
    msg_free(c3);
    Herald__V1__ReconcilePublishedRequest rc = HERALD__V1__RECONCILE_PUBLISHED_REQUEST__INIT;
    Herald__V1__ObservedPost o1 = HERALD__V1__OBSERVED_POST__INIT;
    Herald__V1__ObservedPost *obs[1] = { &o1 };
    Herald__V1__ReconcilePublishedResponse *rcr = NULL;
    o1.external_id = (char *)"x-300";
    o1.text = (char *)"  Lease lifecycle post NUMBER 3 "; /* as the platform shows it */
    o1.external_url = (char *)"https://x.example/x-300";
    rc.request_id = (char *)rid();
    rc.profile_id = (char *)"lease";
    rc.executor_id = (char *)"e2";
    rc.observed = obs;
    rc.n_observed = 1;
    rc.observe_start_time = ts(db_now_ms() - HOUR_MS);
    assert_int_equal(sc("ReconcilePublished", &rc.base,
                        &herald__v1__reconcile_published_response__descriptor, &rcr),
                     0);
    assert_int_equal(rcr->n_results, 2);
    int matched = 0, pending = 0;
    for (size_t i = 0; i < rcr->n_results; i++) {
        if (rcr->results[i]->action == HERALD__V1__RECONCILE_ACTION__RECONCILE_ACTION_MATCHED) {
            matched++;
            assert_string_equal(rcr->results[i]->post_id, w3->post->post_id);
            assert_string_equal(rcr->results[i]->external_id, "x-300");
        } else {
            pending +=
                rcr->results[i]->action == HERALD__V1__RECONCILE_ACTION__RECONCILE_ACTION_PENDING;
        }
    }
    assert_int_equal(matched, 1);
    assert_int_equal(pending, 1); /* w4: not found, the window not over */
    msg_free(rcr);
    assert_string_equal(post_state(st, w3->post->post_id), "published");
    char ext[64];
    assert_string_equal(sql_text(ext, sizeof ext,
                                 "SELECT external_id FROM posts WHERE post_id = "
                                 "'%s'",
                                 w3->post->post_id),
                        "x-300");
    /* absent after the window: re-queued (the attempt moved 10 minutes back) */
    sqlf("UPDATE publish_attempts SET claim_time = claim_time - interval '10 minutes', "
         "expire_time = expire_time - interval '10 minutes', finish_time = finish_time - interval "
         "'10 minutes' WHERE lease_id = '%s'",
         w4->lease->lease_id);
    rc.request_id = (char *)rid();
    rc.n_observed = 0;
    rc.observe_start_time = ts(db_now_ms() - HOUR_MS);
    assert_int_equal(sc("ReconcilePublished", &rc.base,
                        &herald__v1__reconcile_published_response__descriptor, &rcr),
                     0);
    assert_int_equal(rcr->n_results, 1);
    assert_int_equal(rcr->results[0]->action,
                     HERALD__V1__RECONCILE_ACTION__RECONCILE_ACTION_REQUEUED);
    msg_free(rcr);
    assert_string_equal(post_state(st, w4->post->post_id), "scheduled");
    assert_int_equal(claim("e3", "lease", 10, 30, &c3), 0);
    assert_int_equal(c3->n_items, 1);
    assert_string_equal(c3->items[0]->post->post_id, w4->post->post_id);
    assert_int_equal(c3->items[0]->lease->attempt_number, 2);
    assert_int_equal(report(c3->items[0]->lease->lease_id, "e3", w4->post->post_id, 1, "x-400", 0,
                            NULL, -1, NULL),
                     0);
    msg_free(c3);

    /* a lease that lapses: its post goes UNCONFIRMED, never claimable, and
     * the late report is refused and changes nothing */
    char lapsed[40];
    insert_post(lapsed, "lease", "scheduled", "original", "a post whose executor disappears",
                -1000);
    assert_int_equal(claim("e4", "lease", 1, 10, &c3), 0);
    assert_int_equal(c3->n_items, 1);
    char late_lease[40];
    snprintf(late_lease, sizeof late_lease, "%s", c3->items[0]->lease->lease_id);
    msg_free(c3);
    hd_sleep_ms(11000);
    assert_int_equal(claim("e5", "lease", 10, 30, &c3), 0);
    assert_int_equal(c3->n_items, 0); /* the sweep ran; nothing handed out */
    msg_free(c3);
    assert_string_equal(post_state(st, lapsed), "unconfirmed");
    assert_string_equal(sql_text(st, sizeof st,
                                 "SELECT state FROM publish_attempts WHERE "
                                 "lease_id = '%s'",
                                 late_lease),
                        "expired");
    assert_int_equal(report(late_lease, "e4", lapsed, 1, "x-late", 0, NULL, -1, NULL), 9);
    assert_string_equal(reason(), "LEASE_NOT_HELD");
    rn.request_id = (char *)rid();
    rn.lease_id = late_lease;
    rn.executor_id = (char *)"e4";
    assert_int_equal(sc("RenewLease", &rn.base, &herald__v1__lease__descriptor, NULL), 9);
    assert_string_equal(post_state(st, lapsed), "unconfirmed");
    /* ... until the account shows it */
    o1.external_id = (char *)"x-late";
    o1.text = (char *)"a post whose executor disappears";
    rc.request_id = (char *)rid();
    rc.n_observed = 1;
    assert_int_equal(sc("ReconcilePublished", &rc.base,
                        &herald__v1__reconcile_published_response__descriptor, &rcr),
                     0);
    assert_int_equal(rcr->n_results, 1);
    assert_int_equal(rcr->results[0]->action,
                     HERALD__V1__RECONCILE_ACTION__RECONCILE_ACTION_MATCHED);
    msg_free(rcr);
    assert_string_equal(post_state(st, lapsed), "published");

    /* w5 is still leased by e2; report it */
    assert_int_equal(
        report(w5->lease->lease_id, "e2", w5->post->post_id, 1, "x-500", 0, NULL, -1, NULL), 0);
    msg_free(c1);
    msg_free(c2);

    /* validation */
    assert_int_equal(claim("", "lease", 1, 30, NULL), 3);
    assert_true(has_violation("executor_id"));
    assert_int_equal(claim("e1", "lease", 101, 30, NULL), 3);
    assert_true(has_violation("limit"));
    assert_int_equal(claim("e1", "lease", 1, 5, NULL), 3);
    assert_true(has_violation("lease_seconds"));
    rc.request_id = (char *)rid();
    rc.observe_start_time = NULL;
    assert_int_equal(sc("ReconcilePublished", &rc.base,
                        &herald__v1__reconcile_published_response__descriptor, NULL),
                     3);
    assert_true(has_violation("observe_start_time"));
}

/* ---------------------------------------------------------------- reply opportunities */

/* ReportPublishResults: each report decided on its own in request order
 * (applied, duplicate, refused, unknown), one transaction, idempotent per
 * attempt; malformed input refused as a whole with per-report fields. */
static void report_batch(void **state)
{
    (void)state;
    char ids[6][40], other[40], st[32];
    make_profile("batch", NULL, NULL, NULL);
    make_profile("batch2", NULL, NULL, NULL);
    for (int i = 0; i < 6; i++) {
        char text[64];
        snprintf(text, sizeof text, "batched report post number %d", i);
        insert_post(ids[i], "batch", "scheduled", "original", text, -60000 + i * 1000);
    }
    insert_post(other, "batch2", "scheduled", "original", "a post of another profile", -1000);
    Herald__V1__ClaimDueWorkResponse *c = NULL, *c2 = NULL;
    assert_int_equal(claim("be", "batch", 10, 60, &c), 0);
    assert_int_equal(c->n_items, 6);
    assert_int_equal(claim("bo", "batch2", 10, 60, &c2), 0);
    assert_int_equal(c2->n_items, 1);
    /* the other post publishes first with the receipt ext-taken */
    assert_int_equal(report(c2->items[0]->lease->lease_id, "bo", other,
                            HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_SUCCESS, "ext-taken", 0,
                            NULL, -1, NULL),
                     0);

    Herald__V1__ReportPublishResultsRequest req = HERALD__V1__REPORT_PUBLISH_RESULTS_REQUEST__INIT;
    Herald__V1__PublishReport it[9], *ptrs[9];
    for (int i = 0; i < 9; i++) {
        herald__v1__publish_report__init(&it[i]);
        ptrs[i] = &it[i];
    }
    char ext[6][32];
    for (int i = 0; i < 6; i++) {
        it[i].lease_id = c->items[i]->lease->lease_id;
        it[i].post_id = c->items[i]->post->post_id;
        it[i].outcome = HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_SUCCESS;
        snprintf(ext[i], sizeof ext[i], "ext-batch-%d", i);
        it[i].external_id = ext[i];
    }
    /* 1: RETRYABLE; 2: the lease of another post; 3: a receipt another post
     * holds; 6: item 0 again (duplicate); 7: item 1 with another outcome;
     * 8: an unknown lease */
    it[1].outcome = HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_RETRYABLE;
    it[1].external_id = (char *)"";
    it[1].error_class = HERALD__V1__PUBLISH_ERROR_CLASS__PUBLISH_ERROR_CLASS_SERVER_ERROR;
    it[2].post_id = (char *)other;
    it[3].external_id = (char *)"ext-taken";
    it[6] = it[0];
    it[7] = it[1];
    it[7].outcome = HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_PERMANENT;
    it[8] = it[4];
    it[8].lease_id = (char *)"00000000-0000-4000-8000-000000000000";
    req.request_id = (char *)rid();
    req.executor_id = (char *)"be";
    req.reports = ptrs;
    req.n_reports = 9;
    Herald__V1__ReportPublishResultsResponse *r = NULL;
    assert_int_equal(sc("ReportPublishResults", &req.base,
                        &herald__v1__report_publish_results_response__descriptor, &r),
                     0);
    assert_int_equal(r->n_results, 9);
    const int want[9] = { 0, 0, 9, 9, 0, 0, 0, 9, 5 };
    const char *why[9] = { "", "", "LEASE_POST_MISMATCH", "RECEIPT_TAKEN",  "",
                           "", "", "OUTCOME_CONFLICT",    "LEASE_NOT_FOUND" };
    for (int i = 0; i < 9; i++) {
        assert_int_equal(r->results[i]->code, want[i]);
        assert_string_equal(r->results[i]->reason, why[i]);
        assert_string_equal(r->results[i]->lease_id, it[i].lease_id);
    }
    assert_int_equal(r->applied, 5);
    assert_int_equal(r->duplicates, 1);
    assert_true(r->results[6]->duplicate_report);
    assert_false(r->results[0]->duplicate_report);
    assert_int_equal(r->results[0]->state, HERALD__V1__POST_STATE__POST_STATE_PUBLISHED);
    assert_int_equal(r->results[1]->state, HERALD__V1__POST_STATE__POST_STATE_SCHEDULED);
    assert_non_null(r->results[1]->next_attempt_time);
    msg_free(r);
    assert_string_equal(post_state(st, ids[0]), "published");
    assert_string_equal(post_state(st, ids[1]), "scheduled");
    assert_string_equal(post_state(st, ids[2]), "publishing"); /* refused: unchanged */
    assert_string_equal(post_state(st, ids[3]), "publishing");
    assert_string_equal(post_state(st, ids[4]), "published");
    assert_string_equal(post_state(st, ids[5]), "published");
    assert_int_equal(sql_int("SELECT count(*) FROM posts WHERE post_id = '%s' AND "
                             "external_id = 'ext-batch-0' AND revision = 3",
                             ids[0]),
                     1);
    assert_int_equal(sql_int("SELECT count(*) FROM publish_attempts WHERE post_id = '%s' AND "
                             "state = 'failed' AND outcome = 'retryable' AND error_class = "
                             "'server_error' AND finish_time IS NOT NULL",
                             ids[1]),
                     1);

    /* the whole batch again: every applied one is a duplicate, nothing changes */
    req.request_id = (char *)rid();
    assert_int_equal(sc("ReportPublishResults", &req.base,
                        &herald__v1__report_publish_results_response__descriptor, &r),
                     0);
    assert_int_equal(r->applied, 5);
    assert_int_equal(r->duplicates, 5);
    msg_free(r);
    assert_int_equal(sql_int("SELECT revision FROM posts WHERE post_id = '%s'", ids[0]), 3);

    /* the refused ones still report on their own */
    assert_int_equal(report(it[3].lease_id, "be", ids[3],
                            HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_SUCCESS, "ext-batch-3", 0,
                            NULL, -1, NULL),
                     0);

    /* malformed: refused as a whole, each bad field named */
    it[0].outcome = HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_UNSPECIFIED;
    it[4].lease_id = (char *)"not-a-uuid";
    it[5].external_id = (char *)"";
    assert_int_equal(sc("ReportPublishResults", &req.base,
                        &herald__v1__report_publish_results_response__descriptor, NULL),
                     3);
    assert_true(has_violation("reports[0].outcome"));
    assert_true(has_violation("reports[4].lease_id"));
    assert_true(has_violation("reports[5].external_id"));
    req.n_reports = 0;
    req.executor_id = (char *)"";
    assert_int_equal(sc("ReportPublishResults", &req.base,
                        &herald__v1__report_publish_results_response__descriptor, NULL),
                     3);
    assert_true(has_violation("reports"));
    assert_true(has_violation("executor_id"));
    msg_free(c);
    msg_free(c2);
}

static Herald__V1__ReplyTarget *target(Herald__V1__ReplyTarget *t, const char *id, const char *root,
                                       const char *author, const char *handle, int64_t followers,
                                       const char *text, int64_t create_ms, int64_t likes)
{
    herald__v1__reply_target__init(t);
    t->platform = HERALD__V1__PLATFORM__PLATFORM_X;
    t->external_post_id = (char *)id;
    t->root_external_id = (char *)root;
    t->author_id = (char *)author;
    t->author_handle = (char *)handle;
    t->author_followers = followers;
    t->text = (char *)text;
    t->create_time = ts(create_ms);
    t->likes = likes;
    return t;
}

static int upsert(Herald__V1__ReplyTarget **t, size_t n,
                  Herald__V1__UpsertReplyOpportunitiesResponse **out)
{
    Herald__V1__UpsertReplyOpportunitiesRequest req =
        HERALD__V1__UPSERT_REPLY_OPPORTUNITIES_REQUEST__INIT;
    req.request_id = (char *)rid();
    req.profile_id = (char *)"rep";
    req.targets = t;
    req.n_targets = n;
    return sc("UpsertReplyOpportunities", &req.base,
              &herald__v1__upsert_reply_opportunities_response__descriptor, out);
}

static void reply_opportunities(void **state)
{
    (void)state;
    make_profile("rep", NULL, "wellbot", "sleep");
    int64_t now = db_now_ms();
    Herald__V1__ReplyTarget t[6];
    Herald__V1__ReplyTarget *tp[6];
    target(&t[0], "t1", "", "a1", "alice", 500, "Why deep sleep matters for recovery",
           now - 30 * 60000, 30);
    target(&t[1], "t2", "t2", "a2", "bob", 50000, "My sleep routine: a consistent bedtime",
           now - 60 * 60000, 300);
    target(&t[2], "t3", "other-root", "a3", "carol", 10, "Sleep is great", now - 10 * 60000, 5);
    target(&t[3], "t4", "", "a4", "dave", 10, "Sleep tips from last night", now - 5 * HOUR_MS, 50);
    target(&t[4], "t5", "", "own", "@wellbot", 10, "Our own post about sleep", now - 60000, 5);
    target(&t[5], "t6", "", "a6", "erin", 10, "Stock market crashed today", now - 60000, 500);
    for (int i = 0; i < 6; i++)
        tp[i] = &t[i];
    Herald__V1__UpsertReplyOpportunitiesResponse *r = NULL;
    assert_int_equal(upsert(tp, 6, &r), 0);
    assert_int_equal(r->n_results, 6);
    int want[6] = { 0,
                    0,
                    HERALD__V1__REPLY_FILTER_REASON__REPLY_FILTER_REASON_NOT_ROOT,
                    HERALD__V1__REPLY_FILTER_REASON__REPLY_FILTER_REASON_STALE,
                    HERALD__V1__REPLY_FILTER_REASON__REPLY_FILTER_REASON_OWN_POST,
                    HERALD__V1__REPLY_FILTER_REASON__REPLY_FILTER_REASON_IRRELEVANT };
    for (int i = 0; i < 6; i++) {
        assert_string_equal(r->results[i]->external_post_id, t[i].external_post_id);
        assert_int_equal(r->results[i]->filter_reason, want[i]);
        assert_int_equal(r->results[i]->kept, want[i] == 0);
        assert_int_equal(strlen(r->results[i]->opportunity_id), want[i] == 0 ? 36 : 0);
    }
    char t1_id[40];
    snprintf(t1_id, sizeof t1_id, "%s", r->results[0]->opportunity_id);
    msg_free(r);

    /* ranked by velocity and relevance; tiers; pages */
    Herald__V1__ListReplyOpportunitiesRequest lr =
        HERALD__V1__LIST_REPLY_OPPORTUNITIES_REQUEST__INIT;
    Herald__V1__ListReplyOpportunitiesResponse *l = NULL;
    lr.profile_id = (char *)"rep";
    assert_int_equal(sc("ListReplyOpportunities", &lr.base,
                        &herald__v1__list_reply_opportunities_response__descriptor, &l),
                     0);
    assert_int_equal(l->n_opportunities, 2);
    assert_string_equal(l->opportunities[0]->target->external_post_id, "t2");
    assert_true(l->opportunities[0]->score > l->opportunities[1]->score);
    assert_int_equal(l->opportunities[0]->tier, HERALD__V1__REPLY_TIER__REPLY_TIER_MID);
    assert_int_equal(l->opportunities[1]->tier, HERALD__V1__REPLY_TIER__REPLY_TIER_NANO);
    assert_int_equal(l->opportunities[0]->state,
                     HERALD__V1__REPLY_OPPORTUNITY_STATE__REPLY_OPPORTUNITY_STATE_OPEN);
    assert_true(l->opportunities[0]->velocity_per_hour > 100);
    assert_true(l->opportunities[0]->relevance > 0.9);
    assert_non_null(l->opportunities[0]->expire_time);
    assert_string_equal(l->next_page_token, "");
    msg_free(l);
    Herald__V1__ReplyTier nano[1] = { HERALD__V1__REPLY_TIER__REPLY_TIER_NANO };
    lr.tiers = nano;
    lr.n_tiers = 1;
    assert_int_equal(sc("ListReplyOpportunities", &lr.base,
                        &herald__v1__list_reply_opportunities_response__descriptor, &l),
                     0);
    assert_int_equal(l->n_opportunities, 1);
    assert_string_equal(l->opportunities[0]->target->external_post_id, "t1");
    msg_free(l);
    lr.tiers = NULL;
    lr.n_tiers = 0;
    lr.page_size = 1;
    assert_int_equal(sc("ListReplyOpportunities", &lr.base,
                        &herald__v1__list_reply_opportunities_response__descriptor, &l),
                     0);
    assert_int_equal(l->n_opportunities, 1);
    assert_string_equal(l->opportunities[0]->target->external_post_id, "t2");
    char token[1100];
    snprintf(token, sizeof token, "%s", l->next_page_token);
    assert_true(strlen(token) > 0);
    msg_free(l);
    lr.page_token = token;
    assert_int_equal(sc("ListReplyOpportunities", &lr.base,
                        &herald__v1__list_reply_opportunities_response__descriptor, &l),
                     0);
    assert_int_equal(l->n_opportunities, 1);
    assert_string_equal(l->opportunities[0]->target->external_post_id, "t1");
    assert_string_equal(l->next_page_token, "");
    msg_free(l);
    lr.platform = HERALD__V1__PLATFORM__PLATFORM_X; /* other filters: the token is refused */
    assert_int_equal(sc("ListReplyOpportunities", &lr.base,
                        &herald__v1__list_reply_opportunities_response__descriptor, NULL),
                     3);
    assert_true(has_violation("page_token"));

    /* a refresh updates the counts under the same id */
    t[0].likes = 90;
    tp[0] = &t[0];
    assert_int_equal(upsert(tp, 1, &r), 0);
    assert_string_equal(r->results[0]->opportunity_id, t1_id);
    msg_free(r);
    assert_int_equal(
        sql_int("SELECT likes FROM reply_opportunities WHERE opportunity_id = '%s'", t1_id), 90);

    /* cooldowns: a reply under t1's root to author a1 */
    char h[65];
    hash_hex("thanks, deep sleep is underrated", h);
    sqlf("INSERT INTO posts (profile_id, state, platform, kind, text, content_hash, provider, "
         "reply_opportunity_id, reply_to_external_id, publish_time, external_id) VALUES ('rep', "
         "'published', 'x', 'reply', 'thanks, deep sleep is underrated', '%s', 'builtin', '%s', "
         "'t1', now() - interval '1 hour', 'x-reply-1')",
         h, t1_id);
    Herald__V1__ReplyTarget more[2];
    Herald__V1__ReplyTarget *mp[2] = { &more[0], &more[1] };
    target(&more[0], "t1", "", "a1", "alice", 500, "Why deep sleep matters for recovery",
           now - 30 * 60000, 95);
    target(&more[1], "t7", "", "a1", "alice", 500, "More on sleep and naps", now - 10 * 60000, 3);
    assert_int_equal(upsert(mp, 2, &r), 0);
    assert_int_equal(r->results[0]->filter_reason,
                     HERALD__V1__REPLY_FILTER_REASON__REPLY_FILTER_REASON_ROOT_COOLDOWN);
    assert_int_equal(r->results[1]->filter_reason,
                     HERALD__V1__REPLY_FILTER_REASON__REPLY_FILTER_REASON_AUTHOR_COOLDOWN);
    msg_free(r);
    /* t1 is no longer open: it shows up as EXPIRED */
    memset(&lr, 0, sizeof lr);
    herald__v1__list_reply_opportunities_request__init(&lr);
    lr.profile_id = (char *)"rep";
    lr.state = HERALD__V1__REPLY_OPPORTUNITY_STATE__REPLY_OPPORTUNITY_STATE_EXPIRED;
    assert_int_equal(sc("ListReplyOpportunities", &lr.base,
                        &herald__v1__list_reply_opportunities_response__descriptor, &l),
                     0);
    assert_int_equal(l->n_opportunities, 1);
    assert_string_equal(l->opportunities[0]->opportunity_id, t1_id);
    msg_free(l);

    /* errors */
    target(&more[0], "t8", "", "a8", "zed", 10, "sleep", now, 1);
    more[0].platform = HERALD__V1__PLATFORM__PLATFORM_BLUESKY;
    assert_int_equal(upsert(mp, 1, NULL), 3);
    assert_true(has_violation("targets[0].platform"));
    more[0].platform = HERALD__V1__PLATFORM__PLATFORM_X;
    more[0].text = (char *)"";
    assert_int_equal(upsert(mp, 1, NULL), 3);
    assert_true(has_violation("targets[0].text"));
    assert_int_equal(upsert(mp, 0, NULL), 3);
    assert_true(has_violation("targets"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(policy_get_set),      cmocka_unit_test(signals_and_quota),
        cmocka_unit_test(schedule_post),       cmocka_unit_test(slots_basics),
        cmocka_unit_test(slots_history),       cmocka_unit_test(slots_property),
        cmocka_unit_test(lease_lifecycle),     cmocka_unit_test(report_batch),
        cmocka_unit_test(reply_opportunities),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
