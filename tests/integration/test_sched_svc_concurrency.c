/* test_sched_svc_concurrency.c - issue 7's concurrency test through a real
 * heraldd: 8 executor threads (the C client) claim from 1,000 due posts of 5
 * profiles and publish them to a simulated platform, while
 *   - executors crash at random (they stop reporting and come back under a
 *     new executor id): before publishing, or after publishing but before
 *     reporting; their leases lapse (10 s leases);
 *   - some executors are slow: they publish, sit on the lease until it
 *     lapsed, then report (a late report, which must be refused);
 *   - some reports are sent twice (duplicates), some attempts fail
 *     RETRYABLE (nothing published) or end UNKNOWN (published, outcome
 *     unknown);
 *   - a reconciler thread calls ReconcilePublished every few seconds with
 *     what the platform shows for each profile;
 *   - the odd-numbered executors report through ReportPublishResults: a
 *     claim's reports (duplicates included, right after their original)
 *     go in one call at the end of the claim, late ones in one call too; a
 *     crash loses the whole unsent batch.
 * Passes when every post is published on the platform exactly once (the
 * executors' publish actions counted per post id), every post ends
 * PUBLISHED with that receipt (none lost), no late report was applied, and
 * no attempt in the database has an outcome recorded at or after its
 * lease's expiry. Prints the counts.
 *
 * Needs the services fixture (DATABASE_URL); skips (77) without. Bounded:
 * 300 s for the whole run (HERALD_TEST_TIME_SCALE multiplies it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include "herald/v1/scheduling.pb-c.h"
#include "test_db_support.h"
#include "test_profiles_support.h"
#include "textsim.h"

#define SCHED "/herald.v1.SchedulingService/"
#define N_PROFILES 5
#define PER_PROFILE 200
#define N_POSTS (N_PROFILES * PER_PROFILE)
#define N_EXECUTORS 8
#define LEASE_S 10

typedef struct plat_post {
    char id[40];
    char text[96];
    int profile;
    atomic_int publishes; /* publish actions of the executors */
    int64_t publish_ms;   /* first publish */
} plat_post;

static hd g_hd;
static char *g_admin, *g_url, *g_dbname;
static char g_dir[128];
static plat_post g_posts[N_POSTS];
static plat_post *g_sorted[N_POSTS];
static pthread_mutex_t g_plat_mu = PTHREAD_MUTEX_INITIALIZER; /* publish_ms of g_posts */
static atomic_bool g_done;
static atomic_uint g_rid;
static int64_t g_start_ms;

/* counts */
static atomic_long n_batches, n_claims, n_claimed, n_published, n_success, n_retryable, n_unknown,
    n_crash_before, n_crash_after, n_late, n_late_rejected, n_late_applied, n_dup, n_dup_ok,
    n_refused, n_errors, n_rec_calls, n_matched, n_requeued, n_pending;

static int cmp_post(const void *a, const void *b)
{
    return strcmp((*(plat_post *const *)a)->id, (*(plat_post *const *)b)->id);
}

static plat_post *find_post(const char *id)
{
    plat_post key, *kp = &key;
    snprintf(key.id, sizeof key.id, "%s", id);
    plat_post **r = bsearch(&kp, g_sorted, N_POSTS, sizeof *g_sorted, cmp_post);
    return r != NULL ? *r : NULL;
}

static void rid(char out[40])
{
    rid_make(out, 9, atomic_fetch_add(&g_rid, 1) + 1);
}

static int call(const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *d, ProtobufCMessage **resp, char *msg, size_t cap)
{
    char path[128];
    herald_status st;
    herald_call_options o = { .timeout_ms = 20000 };
    herald_status_init(&st);
    snprintf(path, sizeof path, SCHED "%s", method);
    ProtobufCMessage *r = NULL;
    int code = herald_call_unary(g_hd.ch, path, req, d, &o, &r, &st);
    if (resp != NULL)
        *resp = r;
    else if (r != NULL)
        protobuf_c_message_free_unpacked(r, NULL);
    if (msg != NULL)
        snprintf(msg, cap, "%s", st.message);
    herald_status_fini(&st);
    return code;
}

static void ext_id(const plat_post *p, char out[48])
{
    snprintf(out, 48, "ext-%.39s", p->id);
}

/* The platform: publishing a post is counted, once or (a bug) more. */
static void platform_publish(plat_post *p)
{
    atomic_fetch_add(&n_published, 1);
    if (atomic_fetch_add(&p->publishes, 1) == 0) {
        pthread_mutex_lock(&g_plat_mu);
        p->publish_ms = now_real_ms();
        pthread_mutex_unlock(&g_plat_mu);
    }
}

static int report(const char *exec, const Herald__V1__WorkItem *w, int outcome, bool *dup)
{
    Herald__V1__ReportPublishResultRequest req = HERALD__V1__REPORT_PUBLISH_RESULT_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char r[40], ext[48];
    plat_post *p = find_post(w->post->post_id);
    rid(r);
    ext_id(p, ext);
    req.request_id = r;
    req.lease_id = w->lease->lease_id;
    req.executor_id = (char *)exec;
    req.post_id = w->post->post_id;
    req.outcome = (Herald__V1__PublishOutcome)outcome;
    if (outcome == HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_SUCCESS)
        req.external_id = ext;
    if (outcome == HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_RETRYABLE)
        req.error_class = HERALD__V1__PUBLISH_ERROR_CLASS__PUBLISH_ERROR_CLASS_SERVER_ERROR;
    if (outcome == HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_UNKNOWN)
        req.error_class = HERALD__V1__PUBLISH_ERROR_CLASS__PUBLISH_ERROR_CLASS_TIMEOUT;
    int code = call("ReportPublishResult", &req.base,
                    &herald__v1__report_publish_result_response__descriptor, &resp, NULL, 0);
    if (dup != NULL)
        *dup = code == 0 && ((Herald__V1__ReportPublishResultResponse *)resp)->duplicate_report;
    if (resp != NULL)
        protobuf_c_message_free_unpacked(resp, NULL);
    return code;
}

/* A report a batching executor holds until the end of its claim, with the
 * counters its code goes to (as report()'s callers count a single one). */
typedef struct pending {
    const Herald__V1__WorkItem *w; /* borrowed until the flush */
    int outcome;
    atomic_long *ok, *refused;
    bool dup; /* the same report again: counts n_dup / n_dup_ok */
} pending;

enum { PENDING_MAX = 2 * 64 };

/* Sends p[0..n) in one ReportPublishResults call and counts each result. */
static void flush_reports(const char *exec, const pending *p, int n)
{
    if (n == 0)
        return;
    Herald__V1__ReportPublishResultsRequest req = HERALD__V1__REPORT_PUBLISH_RESULTS_REQUEST__INIT;
    Herald__V1__PublishReport items[PENDING_MAX], *ptrs[PENDING_MAX];
    char ext[PENDING_MAX][48], r[40];
    ProtobufCMessage *resp = NULL;
    rid(r);
    req.request_id = r;
    req.executor_id = (char *)exec;
    for (int i = 0; i < n; i++) {
        herald__v1__publish_report__init(&items[i]);
        items[i].lease_id = p[i].w->lease->lease_id;
        items[i].post_id = p[i].w->post->post_id;
        items[i].outcome = (Herald__V1__PublishOutcome)p[i].outcome;
        if (p[i].outcome == HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_SUCCESS) {
            ext_id(find_post(p[i].w->post->post_id), ext[i]);
            items[i].external_id = ext[i];
        }
        if (p[i].outcome == HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_RETRYABLE)
            items[i].error_class =
                HERALD__V1__PUBLISH_ERROR_CLASS__PUBLISH_ERROR_CLASS_SERVER_ERROR;
        if (p[i].outcome == HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_UNKNOWN)
            items[i].error_class = HERALD__V1__PUBLISH_ERROR_CLASS__PUBLISH_ERROR_CLASS_TIMEOUT;
        ptrs[i] = &items[i];
    }
    req.reports = ptrs;
    req.n_reports = (size_t)n;
    int code = call("ReportPublishResults", &req.base,
                    &herald__v1__report_publish_results_response__descriptor, &resp, NULL, 0);
    const Herald__V1__ReportPublishResultsResponse *out =
        (const Herald__V1__ReportPublishResultsResponse *)resp;
    if (code != 0 || out == NULL || out->n_results != (size_t)n) {
        atomic_fetch_add(&n_errors, n);
    } else {
        atomic_fetch_add(&n_batches, 1);
        for (int i = 0; i < n; i++) {
            int c = out->results[i]->code;
            if (p[i].dup) {
                atomic_fetch_add(&n_dup, 1);
                if (c == 0 && out->results[i]->duplicate_report)
                    atomic_fetch_add(&n_dup_ok, 1);
            } else {
                atomic_fetch_add(c == 0 ? p[i].ok : c == 9 ? p[i].refused : &n_errors, 1);
            }
        }
    }
    if (resp != NULL)
        protobuf_c_message_free_unpacked(resp, NULL);
}

static int64_t ts_expire(const Herald__V1__WorkItem *w)
{
    const Google__Protobuf__Timestamp *t = w->lease->expire_time;
    return t->seconds * 1000 + t->nanos / 1000000;
}

typedef struct late_item {
    Herald__V1__WorkItem *w; /* owned (unpacked copy) */
    char exec[48];
    int64_t due_ms; /* report once the lease lapsed */
} late_item;

static Herald__V1__WorkItem *item_copy(const Herald__V1__WorkItem *w)
{
    size_t n = protobuf_c_message_get_packed_size(&w->base);
    uint8_t *buf = xmalloc(n + 1);
    protobuf_c_message_pack(&w->base, buf);
    Herald__V1__WorkItem *c = herald__v1__work_item__unpack(NULL, n, buf);
    free(buf);
    return c;
}

static void *executor_main(void *arg)
{
    int t = (int)(intptr_t)arg;
    unsigned seed = 7919u * (unsigned)(t + 1);
    int incarnation = 0;
    late_item late[64];
    int n_late_items = 0;
    bool batched = t % 2 == 1; /* reports through ReportPublishResults */
    pending pend[PENDING_MAX];

    while (!atomic_load(&g_done)) {
        char exec[48], r[40];
        snprintf(exec, sizeof exec, "exec-%d-%d", t, incarnation);
        /* late reports whose lease has lapsed by now (a batching executor
         * sends them together: they all name one old executor id per
         * incarnation, so one call per incarnation) */
        for (int i = 0; i < n_late_items;) {
            if (now_real_ms() < late[i].due_ms) {
                i++;
                continue;
            }
            if (batched) {
                pending lp[64];
                Herald__V1__WorkItem *sent[64];
                int nl = 0;
                char lexec[48];
                int64_t now = now_real_ms();
                snprintf(lexec, sizeof lexec, "%s", late[i].exec);
                for (int k = i; k < n_late_items;) {
                    if (now >= late[k].due_ms && strcmp(late[k].exec, lexec) == 0) {
                        sent[nl] = late[k].w;
                        lp[nl++] =
                            (pending){ .w = late[k].w,
                                       .outcome =
                                           HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_SUCCESS,
                                       .ok = &n_late_applied,
                                       .refused = &n_late_rejected };
                        late[k] = late[--n_late_items];
                        continue;
                    }
                    k++;
                }
                flush_reports(lexec, lp, nl);
                for (int k = 0; k < nl; k++)
                    herald__v1__work_item__free_unpacked(sent[k], NULL);
                continue;
            }
            int code = report(late[i].exec, late[i].w,
                              HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_SUCCESS, NULL);
            if (code == 9)
                atomic_fetch_add(&n_late_rejected, 1);
            else if (code == 0)
                atomic_fetch_add(&n_late_applied, 1);
            else
                atomic_fetch_add(&n_errors, 1);
            herald__v1__work_item__free_unpacked(late[i].w, NULL);
            late[i] = late[--n_late_items];
        }

        Herald__V1__ClaimDueWorkRequest req = HERALD__V1__CLAIM_DUE_WORK_REQUEST__INIT;
        Herald__V1__ClaimDueWorkResponse *resp = NULL;
        rid(r);
        req.request_id = r;
        req.executor_id = exec;
        req.limit = 1 + (int)(rand_r(&seed) % 8);
        req.lease_seconds = LEASE_S;
        int code = call("ClaimDueWork", &req.base, &herald__v1__claim_due_work_response__descriptor,
                        (ProtobufCMessage **)&resp, NULL, 0);
        if (code != 0) {
            atomic_fetch_add(&n_errors, 1);
            hd_sleep_ms(200);
            continue;
        }
        atomic_fetch_add(&n_claims, 1);
        atomic_fetch_add(&n_claimed, (long)resp->n_items);
        if (resp->n_items == 0) {
            herald__v1__claim_due_work_response__free_unpacked(resp, NULL);
            hd_sleep_ms(150);
            continue;
        }
        bool crashed = false;
        int n_pend = 0;
        for (size_t i = 0; i < resp->n_items && !crashed; i++) {
            const Herald__V1__WorkItem *w = resp->items[i];
            plat_post *p = find_post(w->post->post_id);
            assert_non_null(p);
            unsigned dice = rand_r(&seed) % 1000;
            if (dice < 25) { /* crash before publishing */
                atomic_fetch_add(&n_crash_before, 1);
                crashed = true;
            } else if (dice < 50) { /* crash after publishing, before reporting */
                platform_publish(p);
                atomic_fetch_add(&n_crash_after, 1);
                crashed = true;
            } else if (dice < 80 && n_late_items < 64) { /* slow: publish, report late */
                platform_publish(p);
                late[n_late_items].w = item_copy(w);
                snprintf(late[n_late_items].exec, sizeof late[n_late_items].exec, "%s", exec);
                late[n_late_items].due_ms = ts_expire(w) + 1500;
                n_late_items++;
                atomic_fetch_add(&n_late, 1);
            } else if (batched) { /* as below, reported at the end of the claim */
                int outcome = dice < 130   ? HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_RETRYABLE
                              : dice < 150 ? HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_UNKNOWN
                                           : HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_SUCCESS;
                if (dice >= 130)
                    platform_publish(p);
                pend[n_pend++] = (pending){ .w = w,
                                            .outcome = outcome,
                                            .ok = dice < 130   ? &n_retryable
                                                  : dice < 150 ? &n_unknown
                                                               : &n_success,
                                            .refused = &n_refused };
                if (dice >= 850) /* the same report again, in the same call */
                    pend[n_pend++] = (pending){ .w = w, .outcome = outcome, .dup = true };
            } else if (dice < 130) { /* the platform failed: nothing published */
                code =
                    report(exec, w, HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_RETRYABLE, NULL);
                atomic_fetch_add(code == 0 ? &n_retryable : code == 9 ? &n_refused : &n_errors, 1);
            } else if (dice < 150) { /* published, but the outcome is unknown */
                platform_publish(p);
                code = report(exec, w, HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_UNKNOWN, NULL);
                atomic_fetch_add(code == 0 ? &n_unknown : code == 9 ? &n_refused : &n_errors, 1);
            } else {
                platform_publish(p);
                code = report(exec, w, HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_SUCCESS, NULL);
                atomic_fetch_add(code == 0 ? &n_success : code == 9 ? &n_refused : &n_errors, 1);
                if (code == 0 && dice >= 850) { /* the same report again */
                    bool dup = false;
                    code =
                        report(exec, w, HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_SUCCESS, &dup);
                    atomic_fetch_add(&n_dup, 1);
                    if (code == 0 && dup)
                        atomic_fetch_add(&n_dup_ok, 1);
                }
            }
        }
        if (!crashed) /* a crash loses the unsent batch */
            flush_reports(exec, pend, n_pend);
        herald__v1__claim_due_work_response__free_unpacked(resp, NULL);
        if (crashed) {
            incarnation++; /* the rest of the batch is abandoned */
            hd_sleep_ms(100);
        }
    }
    for (int i = 0; i < n_late_items; i++)
        herald__v1__work_item__free_unpacked(late[i].w, NULL);
    return NULL;
}

/* What the account shows for profile k. */
static void *reconciler_main(void *arg)
{
    (void)arg;
    Herald__V1__ObservedPost *obs = xcalloc(PER_PROFILE, sizeof *obs);
    Herald__V1__ObservedPost **op = xcalloc(PER_PROFILE, sizeof *op);
    Google__Protobuf__Timestamp *pts = xcalloc(PER_PROFILE, sizeof *pts);
    char(*exts)[48] = xcalloc(PER_PROFILE, sizeof *exts);
    while (!atomic_load(&g_done)) {
        for (int k = 0; k < N_PROFILES && !atomic_load(&g_done); k++) {
            size_t n = 0;
            pthread_mutex_lock(&g_plat_mu);
            for (int i = 0; i < N_POSTS; i++) {
                plat_post *p = &g_posts[i];
                if (p->profile != k || atomic_load(&p->publishes) == 0 || p->publish_ms == 0)
                    continue;
                herald__v1__observed_post__init(&obs[n]);
                google__protobuf__timestamp__init(&pts[n]);
                pts[n].seconds = p->publish_ms / 1000;
                pts[n].nanos = (int32_t)(p->publish_ms % 1000) * 1000000;
                ext_id(p, exts[n]);
                obs[n].external_id = exts[n];
                obs[n].text = p->text;
                obs[n].publish_time = &pts[n];
                op[n] = &obs[n];
                n++;
            }
            pthread_mutex_unlock(&g_plat_mu);
            Herald__V1__ReconcilePublishedRequest req =
                HERALD__V1__RECONCILE_PUBLISHED_REQUEST__INIT;
            Google__Protobuf__Timestamp start = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
            char r[40], prof[16];
            rid(r);
            snprintf(prof, sizeof prof, "cc%d", k);
            start.seconds = g_start_ms / 1000 - 60;
            req.request_id = r;
            req.profile_id = prof;
            req.executor_id = (char *)"reconciler";
            req.observed = op;
            req.n_observed = n;
            req.observe_start_time = &start;
            Herald__V1__ReconcilePublishedResponse *resp = NULL;
            int code = call("ReconcilePublished", &req.base,
                            &herald__v1__reconcile_published_response__descriptor,
                            (ProtobufCMessage **)&resp, NULL, 0);
            if (code != 0) {
                atomic_fetch_add(&n_errors, 1);
                continue;
            }
            atomic_fetch_add(&n_rec_calls, 1);
            for (size_t i = 0; i < resp->n_results; i++) {
                switch (resp->results[i]->action) {
                case HERALD__V1__RECONCILE_ACTION__RECONCILE_ACTION_MATCHED:
                    atomic_fetch_add(&n_matched, 1);
                    break;
                case HERALD__V1__RECONCILE_ACTION__RECONCILE_ACTION_REQUEUED:
                    atomic_fetch_add(&n_requeued, 1);
                    break;
                default:
                    atomic_fetch_add(&n_pending, 1);
                    break;
                }
            }
            herald__v1__reconcile_published_response__free_unpacked(resp, NULL);
        }
        for (int i = 0; i < 30 && !atomic_load(&g_done); i++)
            hd_sleep_ms(100);
    }
    free(exts);
    free(pts);
    free(op);
    free(obs);
    return NULL;
}

/* ---------------------------------------------------------------- the test */

static int64_t time_scale(void)
{
    const char *s = getenv("HERALD_TEST_TIME_SCALE");
    int64_t v = s != NULL ? strtoll(s, NULL, 10) : 1;
    return v >= 1 ? v : 1;
}

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

static void setup_data(db_conn *db)
{
    for (int k = 0; k < N_PROFILES; k++) {
        char id[16], r[40];
        snprintf(id, sizeof id, "cc%d", k);
        Herald__V1__CreateProfileRequest cr = HERALD__V1__CREATE_PROFILE_REQUEST__INIT;
        Herald__V1__Profile p = HERALD__V1__PROFILE__INIT;
        rid(r);
        cr.request_id = r;
        cr.profile = &p;
        p.profile_id = id;
        p.platform = HERALD__V1__PLATFORM__PLATFORM_X;
        assert_int_equal(ops_call(&g_hd, "CreateProfile", &cr.base,
                                  &herald__v1__profile__descriptor, 10000, NULL, NULL),
                         0);
        Herald__V1__SetPostingPolicyRequest sp = HERALD__V1__SET_POSTING_POLICY_REQUEST__INIT;
        Herald__V1__PostingPolicy pol = HERALD__V1__POSTING_POLICY__INIT;
        rid(r);
        sp.request_id = r;
        sp.profile_id = id;
        sp.policy = &pol;
        pol.max_publish_attempts = 20;
        pol.retry_initial_backoff_seconds = 1;
        pol.retry_max_backoff_seconds = 2;
        pol.reconcile_window_minutes = 1;
        assert_int_equal(call("SetPostingPolicy", &sp.base, &herald__v1__posting_policy__descriptor,
                              NULL, NULL, 0),
                         0);
        /* the posts, due a minute ago, in one statement */
        strbuf texts = { 0 }, hashes = { 0 };
        strbuf_putc(&texts, '{');
        strbuf_putc(&hashes, '{');
        for (int i = 0; i < PER_PROFILE; i++) {
            plat_post *pp = &g_posts[k * PER_PROFILE + i];
            char h[65];
            snprintf(pp->text, sizeof pp->text, "concurrency test post %d of profile cc%d", i, k);
            pp->profile = k;
            hash_hex(pp->text, h);
            strbuf_printf(&texts, "%s\"%s\"", i > 0 ? "," : "", pp->text);
            strbuf_printf(&hashes, "%s%s", i > 0 ? "," : "", h);
        }
        strbuf_putc(&texts, '}');
        strbuf_putc(&hashes, '}');
        db_params q;
        db_res *res = NULL;
        db_params_init(&q);
        db_param_text(&q, id);
        db_param_text(&q, texts.data);
        db_param_text(&q, hashes.data);
        status st = db_run(db, 60000, "test_insert_posts",
                           "INSERT INTO posts (profile_id, state, platform, text, content_hash, "
                           "provider, schedule_time) SELECT $1, 'scheduled', 'x', u.t, u.h, "
                           "'builtin', now() - interval '1 minute' FROM unnest($2::text[], "
                           "$3::text[]) WITH ORDINALITY AS u(t, h, o) ORDER BY u.o "
                           "RETURNING post_id, text",
                           &q, &res);
        assert_int_equal(st, ST_OK);
        assert_int_equal(db_res_rows(res), PER_PROFILE);
        for (int i = 0; i < PER_PROFILE; i++) {
            const char *text = db_res_text(res, i, 1);
            for (int j = 0; j < PER_PROFILE; j++) {
                plat_post *pp = &g_posts[k * PER_PROFILE + j];
                if (strcmp(pp->text, text) == 0)
                    snprintf(pp->id, sizeof pp->id, "%s", db_res_text(res, i, 0));
            }
        }
        db_res_free(res);
        strbuf_fini(&texts);
        strbuf_fini(&hashes);
    }
    for (int i = 0; i < N_POSTS; i++) {
        assert_int_equal(strlen(g_posts[i].id), 36);
        g_sorted[i] = &g_posts[i];
    }
    qsort(g_sorted, N_POSTS, sizeof *g_sorted, cmp_post);
}

static void concurrency(void **state)
{
    (void)state;
    db_conn *db = tdb_open(g_url);
    setup_data(db);
    g_start_ms = now_real_ms();
    int64_t t0 = now_mono_ms(), limit_ms = 300000 * time_scale();

    pthread_t ex[N_EXECUTORS], rec;
    for (int t = 0; t < N_EXECUTORS; t++)
        assert_int_equal(pthread_create(&ex[t], NULL, executor_main, (void *)(intptr_t)t), 0);
    assert_int_equal(pthread_create(&rec, NULL, reconciler_main, NULL), 0);
    int64_t published = 0;
    while (now_mono_ms() - t0 < limit_ms) {
        hd_sleep_ms(1000);
        published = tdb_int(db, "SELECT count(*) FROM posts WHERE profile_id LIKE 'cc%' AND "
                                "state = 'published'");
        if (published == N_POSTS)
            break;
    }
    atomic_store(&g_done, true);
    for (int t = 0; t < N_EXECUTORS; t++)
        pthread_join(ex[t], NULL);
    pthread_join(rec, NULL);
    double secs = (double)(now_mono_ms() - t0) / 1000.0;

    /* exactly once on the platform, and stored with that receipt */
    int once = 0, never = 0, twice = 0, receipt_ok = 0;
    for (int i = 0; i < N_POSTS; i++) {
        int n = atomic_load(&g_posts[i].publishes);
        once += n == 1;
        never += n == 0;
        twice += n > 1;
    }
    db_res *res = NULL;
    status st = db_run(db, 60000, "test_final",
                       "SELECT post_id, state, external_id, attempt_count FROM posts "
                       "WHERE profile_id LIKE 'cc%'",
                       NULL, &res);
    assert_int_equal(st, ST_OK);
    int by_state_published = 0, attempts_hist[8] = { 0 };
    for (int i = 0; i < db_res_rows(res); i++) {
        plat_post *p = find_post(db_res_text(res, i, 0));
        assert_non_null(p);
        char ext[48];
        ext_id(p, ext);
        if (strcmp(db_res_text(res, i, 1), "published") == 0) {
            by_state_published++;
            receipt_ok += strcmp(db_res_text(res, i, 2), ext) == 0;
        } else {
            fprintf(stderr, "post %s ended %s\n", p->id, db_res_text(res, i, 1));
        }
        int64_t a = db_res_int64(res, i, 3);
        attempts_hist[a < 7 ? a : 7]++;
    }
    db_res_free(res);
    int64_t late_applied_db =
        tdb_int(db, "SELECT count(*) FROM publish_attempts a JOIN posts p ON p.post_id = a.post_id "
                    "WHERE p.profile_id LIKE 'cc%' AND a.outcome IS NOT NULL AND a.finish_time >= "
                    "a.expire_time");
    int64_t expired =
        tdb_int(db, "SELECT count(*) FROM publish_attempts a JOIN posts p ON p.post_id = a.post_id "
                    "WHERE p.profile_id LIKE 'cc%' AND a.state = 'expired'");
    int64_t attempts = tdb_int(db, "SELECT count(*) FROM publish_attempts a JOIN posts p ON "
                                   "p.post_id = a.post_id WHERE p.profile_id LIKE 'cc%'");
    int64_t live = tdb_int(db, "SELECT count(*) FROM publish_attempts a JOIN posts p ON "
                               "p.post_id = a.post_id WHERE p.profile_id LIKE 'cc%' AND "
                               "a.state = 'leased'");
    db_close(db);

    printf("RESULT sched_concurrency posts=%d executors=%d seconds=%.1f published_once=%d "
           "never=%d more_than_once=%d stored_published=%d receipts_match=%d claims=%ld "
           "claimed=%ld attempts=%lld publish_actions=%ld success_reports=%ld retryable=%ld "
           "unknown=%ld crash_before=%ld crash_after=%ld expired_leases=%lld late_reports=%ld "
           "late_rejected=%ld late_applied=%ld late_applied_db=%lld duplicates=%ld "
           "duplicates_acknowledged=%ld refused=%ld reconcile_calls=%ld matched=%ld "
           "requeued=%ld pending=%ld errors=%ld live_leases=%lld batched_report_calls=%ld\n",
           N_POSTS, N_EXECUTORS, secs, once, never, twice, by_state_published, receipt_ok,
           atomic_load(&n_claims), atomic_load(&n_claimed), (long long)attempts,
           atomic_load(&n_published), atomic_load(&n_success), atomic_load(&n_retryable),
           atomic_load(&n_unknown), atomic_load(&n_crash_before), atomic_load(&n_crash_after),
           (long long)expired, atomic_load(&n_late), atomic_load(&n_late_rejected),
           atomic_load(&n_late_applied), (long long)late_applied_db, atomic_load(&n_dup),
           atomic_load(&n_dup_ok), atomic_load(&n_refused), atomic_load(&n_rec_calls),
           atomic_load(&n_matched), atomic_load(&n_requeued), atomic_load(&n_pending),
           atomic_load(&n_errors), (long long)live, atomic_load(&n_batches));
    printf("attempts per post: 1:%d 2:%d 3:%d 4:%d 5:%d 6:%d 7+:%d\n", attempts_hist[1],
           attempts_hist[2], attempts_hist[3], attempts_hist[4], attempts_hist[5], attempts_hist[6],
           attempts_hist[7]);
    fflush(stdout);

    assert_int_equal(twice, 0);      /* never published twice */
    assert_int_equal(once, N_POSTS); /* none lost */
    assert_int_equal(by_state_published, N_POSTS);
    assert_int_equal(receipt_ok, N_POSTS);
    assert_int_equal(atomic_load(&n_late_applied), 0);
    assert_true(atomic_load(&n_batches) > 0); /* the batch RPC took part */
    assert_int_equal(late_applied_db, 0);
    assert_int_equal(live, 0);
    assert_true(atomic_load(&n_crash_before) + atomic_load(&n_crash_after) > 0);
    assert_true(atomic_load(&n_late_rejected) > 0);
    assert_int_equal(atomic_load(&n_dup_ok), atomic_load(&n_dup));
}

static int group_setup(void **state)
{
    (void)state;
    g_admin = getenv("DATABASE_URL");
    if (g_admin == NULL) {
        fprintf(stderr, "DATABASE_URL not set: skipping\n");
        exit(TEST_SKIP);
    }
    g_url = tdb_create(g_admin, "herald_test_sched_cc", &g_dbname);
    snprintf(g_dir, sizeof g_dir, "/tmp/herald-test-sched-cc-%d", (int)getpid());
    herald_client_init();
    const char *extra[] = { "HERALD_WORKERS=4", "HERALD_LOG_LEVEL=warn", NULL };
    if (!hd_start(&g_hd, g_dir, g_url, "", extra)) {
        fprintf(stderr, "heraldd did not start (log: %s)\n", g_hd.log);
        return -1;
    }
    if (!hd_wait_health(&g_hd, "herald.v1.SchedulingService", 1, 30000)) {
        fprintf(stderr, "heraldd never became ready (log: %s)\n", g_hd.log);
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
        tdb_drop(g_admin, g_dbname);
    if (rc == 0)
        (void)tsh("rm -rf %s", g_dir);
    free(g_url);
    free(g_dbname);
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(concurrency) };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
