/* publisher_faults.c - heraldd's built-in publisher against a local HTTP
 * receiver (tests/fakes/fake_receiver.c) that fails on purpose (issue 7,
 * "publisher fault test").
 *
 * Profile "pub" (WEBHOOK, timeout 1.5 s, HMAC secret) has 35 posts, the
 * receiver's answer chosen per post:
 *   ok       200 with a receipt                      -> PUBLISHED, 1 request
 *   429      429 Retry-After: 2, then 200            -> RETRYABLE, the profile
 *            cools down until the reset, then PUBLISHED; the retry >= 2 s later
 *   500      500, then 200                           -> RETRYABLE, PUBLISHED
 *   reset    request read, connection reset          -> UNKNOWN: UNCONFIRMED,
 *            never sent again
 *   slow     accepted, 200 after 4 s (past the 1.5 s timeout)
 *                                                    -> UNKNOWN: UNCONFIRMED,
 *            never sent again (it is on the platform)
 *   400      400                                     -> PERMANENT: FAILED
 * Profile "refused" points at a closed port: RETRYABLE (nothing sent) until
 * max_publish_attempts (2), then FAILED with a reason.
 * Profile "killme" (timeout 3 s) has 20 posts the receiver accepts and
 * answers after 2.5 s; heraldd is killed with -9 while some are in flight
 * and started again: the in-flight ones end UNCONFIRMED once their leases
 * lapse (never re-sent), the others are published by the new process;
 * ReconcilePublished with what the receiver accepted then settles them.
 *
 * Passes when the receiver accepted every post id at most once, saw no bad
 * signature, every post ends PUBLISHED, or UNCONFIRMED / FAILED with a
 * reason (none silently left SCHEDULED or PUBLISHING), and each group ended
 * as listed. Prints the counts.
 *
 * Needs the services fixture (DATABASE_URL); skips (77) without. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include "fake_receiver.h"
#include "herald/v1/scheduling.pb-c.h"
#include "test_db_support.h"
#include "test_profiles_support.h"
#include "textsim.h"

#define SECRET "whsec-publisher-test-7d1"
#define N_PUB 35
#define N_KILL 20

enum { G_OK = 0, G_429, G_500, G_RESET, G_SLOW, G_400, G_KILL, G_COUNT };
static const char *const group_names[G_COUNT] = { "ok",   "429", "500",   "reset",
                                                  "slow", "400", "killme" };

typedef struct tpost {
    char id[40];
    char text[96];
    int group;
} tpost;

static hd g_hd;
static char *g_admin, *g_url, *g_dbname;
static char g_dir[128];
static db_conn *g_db;
static fake_receiver *g_rcv;
static tpost g_posts[N_PUB + N_KILL + 8];
static size_t g_n;
static atomic_bool g_rules_ready;
static unsigned g_rid;

static const tpost *post_of(const char *id)
{
    for (size_t i = 0; i < g_n; i++)
        if (strcmp(g_posts[i].id, id) == 0)
            return &g_posts[i];
    return NULL;
}

/* The receiver's script. Runs on its threads: reads g_posts only. */
static fr_action rule(const char *post_id, int n, void *user)
{
    (void)user;
    fr_action a = { .kind = FR_OK };
    if (!atomic_load(&g_rules_ready))
        return a;
    const tpost *p = post_of(post_id);
    if (p == NULL)
        return a;
    switch (p->group) {
    case G_429:
        if (n == 1)
            a = (fr_action){ .kind = FR_STATUS, .status = 429, .retry_after_s = 2 };
        break;
    case G_500:
        if (n == 1)
            a = (fr_action){ .kind = FR_STATUS, .status = 500 };
        break;
    case G_RESET:
        a.kind = FR_RESET;
        break;
    case G_SLOW:
        a = (fr_action){ .kind = FR_DELAYED_OK, .delay_ms = 4000 };
        break;
    case G_400:
        a = (fr_action){ .kind = FR_STATUS, .status = 400 };
        break;
    case G_KILL:
        a = (fr_action){ .kind = FR_DELAYED_OK, .delay_ms = 2500 };
        break;
    default:
        break;
    }
    return a;
}

static const char *rid(void)
{
    static char r[40];
    rid_make(r, 13, ++g_rid);
    return r;
}

static void make_profile(const char *id, const char *url, int timeout_ms, int attempts)
{
    Herald__V1__CreateProfileRequest req = HERALD__V1__CREATE_PROFILE_REQUEST__INIT;
    Herald__V1__Profile p = HERALD__V1__PROFILE__INIT;
    Herald__V1__PublishTarget pt = HERALD__V1__PUBLISH_TARGET__INIT;
    req.request_id = (char *)rid();
    req.profile = &p;
    p.profile_id = (char *)id;
    p.platform = HERALD__V1__PLATFORM__PLATFORM_X;
    p.publish_target = &pt;
    pt.kind = HERALD__V1__PUBLISH_TARGET_KIND__PUBLISH_TARGET_KIND_WEBHOOK;
    pt.url = (char *)url;
    pt.secret = (char *)SECRET;
    pt.timeout_ms = timeout_ms;
    assert_int_equal(ops_call(&g_hd, "CreateProfile", &req.base, &herald__v1__profile__descriptor,
                              10000, NULL, NULL),
                     0);
    Herald__V1__SetPostingPolicyRequest sp = HERALD__V1__SET_POSTING_POLICY_REQUEST__INIT;
    Herald__V1__PostingPolicy pol = HERALD__V1__POSTING_POLICY__INIT;
    sp.request_id = (char *)rid();
    sp.profile_id = (char *)id;
    sp.policy = &pol;
    pol.max_publish_attempts = attempts;
    pol.retry_initial_backoff_seconds = 1;
    pol.retry_max_backoff_seconds = 2;
    herald_status st;
    herald_status_init(&st);
    ProtobufCMessage *resp = NULL;
    herald_call_options o = { .timeout_ms = 10000 };
    assert_int_equal(herald_call_unary(g_hd.ch, "/herald.v1.SchedulingService/SetPostingPolicy",
                                       &sp.base, &herald__v1__posting_policy__descriptor, &o, &resp,
                                       &st),
                     0);
    protobuf_c_message_free_unpacked(resp, NULL);
    herald_status_fini(&st);
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

/* n posts of a profile due in delay_ms, recorded with their group. */
static void add_posts(const char *profile, int n, int group_of_i(int i), int64_t delay_ms)
{
    for (int i = 0; i < n; i++) {
        tpost *p = &g_posts[g_n];
        snprintf(p->text, sizeof p->text, "publisher fault test post %d of %s", i, profile);
        p->group = group_of_i(i);
        char h[65];
        hash_hex(p->text, h);
        db_params q;
        db_res *res = NULL;
        db_params_init(&q);
        db_param_text(&q, profile);
        db_param_text(&q, p->text);
        db_param_int64(&q, delay_ms);
        db_param_text(&q, h);
        status st = db_run(g_db, 30000, "test_insert_post",
                           "INSERT INTO posts (profile_id, state, platform, text, content_hash, "
                           "provider, schedule_time) VALUES ($1, 'scheduled', 'x', $2, $4, "
                           "'builtin', now() + $3::bigint * interval '1 ms') RETURNING post_id",
                           &q, &res);
        assert_int_equal(st, ST_OK);
        snprintf(p->id, sizeof p->id, "%s", db_res_text(res, 0, 0));
        db_res_free(res);
        g_n++;
    }
}

static int pub_group(int i)
{
    return i < 10 ? G_OK : 1 + (i - 10) / 5; /* 5 each of 429, 500, reset, slow, 400 */
}

static int kill_group(int i)
{
    (void)i;
    return G_KILL;
}

static int refused_group(int i)
{
    (void)i;
    return G_COUNT; /* not at the receiver */
}

typedef struct pstate {
    char state[16];
    char reason[200];
    char ext[64];
} pstate;

static void state_of(const char *post_id, pstate *out)
{
    db_params q;
    db_res *res = NULL;
    db_params_init(&q);
    db_param_text(&q, post_id);
    status st = db_run(g_db, 30000, "test_state",
                       "SELECT state, state_reason, COALESCE(external_id, '') FROM posts "
                       "WHERE post_id = $1::uuid",
                       &q, &res);
    assert_int_equal(st, ST_OK);
    snprintf(out->state, sizeof out->state, "%s", db_res_text(res, 0, 0));
    snprintf(out->reason, sizeof out->reason, "%s", db_res_text(res, 0, 1));
    snprintf(out->ext, sizeof out->ext, "%s", db_res_text(res, 0, 2));
    db_res_free(res);
}

/* Posts still on their way (not in a final state for this test). */
static int64_t in_progress(void)
{
    return tdb_int(g_db, "SELECT count(*) FROM posts WHERE state IN ('scheduled', 'publishing')");
}

static bool wait_until(bool (*cond)(void), int timeout_ms)
{
    int64_t until = now_mono_ms() + timeout_ms;
    while (now_mono_ms() < until) {
        if (cond())
            return true;
        hd_sleep_ms(250);
    }
    return cond();
}

static bool settled(void)
{
    return in_progress() == 0;
}

static bool kill_inflight(void)
{
    int inflight = 0;
    for (size_t i = 0; i < g_n; i++)
        if (g_posts[i].group == G_KILL && fake_receiver_post(g_rcv, g_posts[i].id).requests > 0)
            inflight++;
    return inflight >= 4;
}

static void start_heraldd(void)
{
    const char *extra[] = { "HERALD_WORKERS=2", NULL };
    assert_true(hd_start(&g_hd, g_dir, g_url, "", extra));
    assert_true(hd_wait_health(&g_hd, "herald.v1.SchedulingService", 1, 30000));
}

static void publisher_faults(void **state)
{
    (void)state;
    char url[128];
    fake_receiver_url(g_rcv, url, sizeof url);
    make_profile("pub", url, 1500, 5);
    /* a port nothing listens on */
    fake_receiver *closed = fake_receiver_start();
    char dead_url[128];
    fake_receiver_url(closed, dead_url, sizeof dead_url);
    fake_receiver_stop(closed);
    make_profile("refused", dead_url, 1500, 2);
    make_profile("killme", url, 3000, 5);

    add_posts("pub", N_PUB, pub_group, 4000);
    add_posts("refused", 3, refused_group, 4000);
    atomic_store(&g_rules_ready, true);

    /* phase 1: the faults, until nothing is in progress */
    assert_true(wait_until(settled, 90000));

    /* phase 2: kill -9 while posts are in flight, restart */
    size_t kill_first = g_n;
    add_posts("killme", N_KILL, kill_group, 1000);
    assert_true(wait_until(kill_inflight, 30000));
    kill(g_hd.pid, SIGKILL);
    int wst;
    waitpid(g_hd.pid, &wst, 0);
    assert_true(WIFSIGNALED(wst));
    g_hd.pid = 0;
    herald_channel_close(g_hd.ch);
    g_hd.ch = NULL;
    int sent_before = 0;
    for (size_t i = kill_first; i < g_n; i++)
        sent_before += fake_receiver_post(g_rcv, g_posts[i].id).requests > 0;
    printf("killed heraldd with %d of %d killme posts sent\n", sent_before, N_KILL);
    hd_sleep_ms(500);
    start_heraldd();
    /* the dead process's leases lapse (timeout 3 s + 15 s margin) */
    assert_true(wait_until(settled, 120000));

    /* what the receiver saw */
    fr_totals tot = fake_receiver_totals(g_rcv);
    int by_group[G_COUNT + 1][4] = { { 0 } }; /* published, unconfirmed, failed, other */
    int kill_unconfirmed = 0, kill_unsent = 0;
    for (size_t i = 0; i < g_n; i++) {
        const tpost *p = &g_posts[i];
        pstate s;
        state_of(p->id, &s);
        fr_post_stats rs = fake_receiver_post(g_rcv, p->id);
        int col = strcmp(s.state, "published") == 0     ? 0
                  : strcmp(s.state, "unconfirmed") == 0 ? 1
                  : strcmp(s.state, "failed") == 0      ? 2
                                                        : 3;
        by_group[p->group][col]++;
        assert_true(rs.accepted <= 1);
        if (col == 1 || col == 2)
            assert_true(strlen(s.reason) > 0); /* never silently */
        assert_int_not_equal(col, 3);
        switch (p->group) {
        case G_OK:
            assert_string_equal(s.state, "published");
            assert_int_equal(rs.requests, 1);
            break;
        case G_429:
            assert_string_equal(s.state, "published");
            assert_int_equal(rs.requests, 2);
            assert_true(rs.last_ms - rs.first_ms >= 1900); /* Retry-After: 2 */
            break;
        case G_500:
            assert_string_equal(s.state, "published");
            assert_int_equal(rs.requests, 2);
            break;
        case G_RESET:
            assert_string_equal(s.state, "unconfirmed");
            assert_int_equal(rs.requests, 1); /* never re-sent */
            assert_int_equal(rs.accepted, 0);
            break;
        case G_SLOW:
            assert_string_equal(s.state, "unconfirmed");
            assert_int_equal(rs.requests, 1);
            assert_int_equal(rs.accepted, 1);
            break;
        case G_400:
            assert_string_equal(s.state, "failed");
            assert_int_equal(rs.requests, 1);
            break;
        case G_KILL:
            assert_true(rs.requests <= 1);
            if (col == 1 && rs.accepted == 1)
                kill_unconfirmed++;
            else if (col == 1)
                kill_unsent++; /* claimed by the killed process, never sent */
            else
                assert_string_equal(s.state, "published");
            break;
        default: /* refused: never reached the receiver */
            assert_string_equal(s.state, "failed");
            assert_int_equal(rs.requests, 0);
            assert_non_null(strstr(s.reason, "exhausted"));
            break;
        }
    }
    assert_true(kill_unconfirmed >= 1); /* some were in flight at the kill */
    assert_int_equal(tot.max_accepted, 1);
    assert_int_equal(tot.bad_signatures, 0);
    assert_int_equal(tot.no_post_id, 0);
    assert_int_equal(tdb_int(g_db, "SELECT count(*) FROM profile_cooldowns WHERE profile_id = "
                                   "'pub' AND kind = 'rate_limited'"),
                     1);

    /* reconciling with what the receiver accepted settles the killed ones */
    Herald__V1__ReconcilePublishedRequest rq = HERALD__V1__RECONCILE_PUBLISHED_REQUEST__INIT;
    Herald__V1__ObservedPost obs[N_KILL];
    Herald__V1__ObservedPost *op[N_KILL];
    char exts[N_KILL][64];
    size_t n_obs = 0;
    for (size_t i = kill_first; i < g_n; i++) {
        if (fake_receiver_post(g_rcv, g_posts[i].id).accepted == 0)
            continue;
        herald__v1__observed_post__init(&obs[n_obs]);
        snprintf(exts[n_obs], sizeof exts[n_obs], "rcv-%s", g_posts[i].id);
        obs[n_obs].external_id = exts[n_obs];
        obs[n_obs].text = g_posts[i].text;
        op[n_obs] = &obs[n_obs];
        n_obs++;
    }
    Google__Protobuf__Timestamp start = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    start.seconds = now_real_ms() / 1000 - 3600;
    rq.request_id = (char *)rid();
    rq.profile_id = (char *)"killme";
    rq.executor_id = (char *)"operator";
    rq.observed = op;
    rq.n_observed = n_obs;
    rq.observe_start_time = &start;
    herald_status st;
    herald_status_init(&st);
    ProtobufCMessage *resp = NULL;
    herald_call_options o = { .timeout_ms = 10000 };
    assert_int_equal(
        herald_call_unary(g_hd.ch, "/herald.v1.SchedulingService/ReconcilePublished", &rq.base,
                          &herald__v1__reconcile_published_response__descriptor, &o, &resp, &st),
        0);
    int matched = 0;
    const Herald__V1__ReconcilePublishedResponse *rr = (void *)resp;
    for (size_t i = 0; i < rr->n_results; i++)
        matched += rr->results[i]->action == HERALD__V1__RECONCILE_ACTION__RECONCILE_ACTION_MATCHED;
    protobuf_c_message_free_unpacked(resp, NULL);
    herald_status_fini(&st);
    assert_int_equal(matched, kill_unconfirmed);
    assert_int_equal(tdb_int(g_db, "SELECT count(*) FROM posts WHERE profile_id = 'killme' AND "
                                   "state = 'published'"),
                     N_KILL - kill_unsent);

    printf("RESULT publisher_faults posts=%zu receiver_requests=%d receiver_accepted=%d "
           "max_accepted_per_post=%d bad_signatures=%d",
           g_n, tot.requests, tot.accepted, tot.max_accepted, tot.bad_signatures);
    for (int g = 0; g <= G_COUNT; g++)
        printf(" %s=%d/%d/%d", g < G_COUNT ? group_names[g] : "refused", by_group[g][0],
               by_group[g][1], by_group[g][2]);
    printf(" (published/unconfirmed/failed) killme_sent_before_kill=%d reconciled=%d "
           "claimed_never_sent=%d\n",
           sent_before, matched, kill_unsent);
    fflush(stdout);
}

static int group_setup(void **state)
{
    (void)state;
    g_admin = getenv("DATABASE_URL");
    if (g_admin == NULL) {
        fprintf(stderr, "DATABASE_URL not set: skipping\n");
        exit(TEST_SKIP);
    }
    g_rcv = fake_receiver_start();
    if (g_rcv == NULL)
        return -1;
    fake_receiver_set_secret(g_rcv, SECRET);
    fake_receiver_set_rule(g_rcv, rule, NULL);
    g_url = tdb_create(g_admin, "herald_test_publisher", &g_dbname);
    g_db = tdb_open(g_url);
    snprintf(g_dir, sizeof g_dir, "/tmp/herald-test-publisher-%d", (int)getpid());
    herald_client_init();
    start_heraldd();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = hd_stop(&g_hd);
    if (rc != 0)
        fprintf(stderr, "heraldd exited %d (log: %s)\n", rc, g_hd.log);
    herald_client_shutdown();
    fake_receiver_stop(g_rcv);
    db_close(g_db);
    tdb_drop(g_admin, g_dbname);
    if (rc == 0)
        (void)tsh("rm -rf %s", g_dir);
    free(g_url);
    free(g_dbname);
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(publisher_faults) };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
