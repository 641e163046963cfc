/* test_content_svc.c - ContentService end to end (issue 5): a real heraldd
 * (started here on the services fixture's PostgreSQL and Redis, migrating
 * its own fresh database) driven over gRPC by the C client (typed stubs for
 * GenerateDraft, herald_call_unary elsewhere), with the LLM provider
 * pointed at tests/fakes/fake_llm.c, a chat-completions server running in
 * this process.
 *
 * Covers every ContentService RPC's happy path and errors; idempotent
 * replay; illegal transitions; the catalog's version (an UpdateCatalogEntry
 * is seen by the next call); the topic cooldown; the ValidateText table of
 * tests/data/gates_cases.tsv through the RPC; the pre-generation job; the
 * LLM path (success, 429 with Retry-After, 500 then success, a delay past
 * the deadline, a 20 MiB body, malformed JSON, a text failing a gate with
 * the built-in fallback, explicit PROVIDER_LLM without fallback); Health
 * and GetProfile latency while 20 LLM calls are in flight; and 500 drafts
 * through GenerateDraft across every type x style (all gates pass, no two
 * within the duplicate threshold).
 *
 * Needs DATABASE_URL and REDIS_URL (the services fixture); skips (77)
 * without. Database herald_test_content_<pid>; Redis DB 8. Every wait is
 * bounded; heraldd is stopped by its PID. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <pthread.h>

#include "fake_llm.h"
#include "google/protobuf/duration.pb-c.h"
#include "herald/v1/content.pb-c.h"
#include "herald/v1/scheduling.pb-c.h"
#include "replyopp.h"
#include "test_db_support.h"
#include "test_profiles_support.h"
#include "textsim.h"

#define CONTENT "/herald.v1.ContentService/"
#define DUP_THRESHOLD 0.6 /* the server's default (docs/api.md) */

static hd g_hd;
static herald_stub *g_stub;
static fake_llm *g_llm;
static db_conn *g_db;
static char *g_admin, *g_url, *g_dbname, *g_redis;
static char g_dir[128];
static unsigned g_rid;
static int g_stop_rc = -2; /* heraldd's exit code when a test stopped it itself */

/* ---------------------------------------------------------------- helpers */

static const char *rid(void)
{
    static char buf[16][40];
    static unsigned k;
    char *b = buf[k++ % 16];
    rid_make(b, 5, ++g_rid);
    return b;
}

static ProtobufCMessage *msg_copy(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = xmalloc(n + 1);
    protobuf_c_message_pack(m, buf);
    ProtobufCMessage *c = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
    free(buf);
    return c;
}

/* One ContentService call; thread-safe. Returns the gRPC code; *resp on OK
 * (caller frees with protobuf_c_message_free_unpacked). st may be NULL. */
static int cs_call(const char *method, const void *req, const ProtobufCMessageDescriptor *d,
                   int64_t timeout_ms, void *resp, herald_status *st)
{
    char path[128];
    herald_status local;
    herald_call_options o = { .timeout_ms = timeout_ms };
    ProtobufCMessage *r = NULL;
    snprintf(path, sizeof path, CONTENT "%s", method);
    if (st == NULL)
        herald_status_init(&local);
    int code = herald_call_unary(g_hd.ch, path, req, d, &o, &r, st != NULL ? st : &local);
    if (st == NULL)
        herald_status_fini(&local);
    if (resp != NULL)
        *(ProtobufCMessage **)resp = r;
    else if (r != NULL)
        protobuf_c_message_free_unpacked(r, NULL);
    return code;
}

static void msg_free(void *m)
{
    if (m != NULL)
        protobuf_c_message_free_unpacked(m, NULL);
}

/* GenerateDraft through the typed stub. */
typedef struct got_draft {
    Herald__V1__GenerateDraftResponse *r;
    int calls;
} got_draft;

static void on_draft(const Herald__V1__GenerateDraftResponse *m, void *d)
{
    got_draft *g = d;
    g->calls++;
    if (m != NULL)
        g->r = (Herald__V1__GenerateDraftResponse *)msg_copy(&m->base);
}

static int gen_draft(Herald__V1__GenerateDraftRequest *req, Herald__V1__GenerateDraftResponse **out)
{
    got_draft g = { 0 };
    herald__v1__content_service__generate_draft(herald_stub_service(g_stub), req, on_draft, &g);
    assert_int_equal(g.calls, 1);
    if (out != NULL)
        *out = g.r;
    else
        msg_free(g.r);
    return herald_stub_status(g_stub)->code;
}

static int64_t ts_us(const Google__Protobuf__Timestamp *t)
{
    return t == NULL ? 0 : t->seconds * 1000000 + t->nanos / 1000;
}

/* A canonical UUID. */
static bool uuid_ok(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (s[i] == '-'))
            return false;
        if (!dash && !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

static const char *stub_msg(void)
{
    return herald_stub_status(g_stub)->message;
}

static void draft_req(Herald__V1__GenerateDraftRequest *r, const char *profile, const char *ct,
                      const char *vs, const char *topic)
{
    herald__v1__generate_draft_request__init(r);
    r->request_id = (char *)rid();
    r->profile_id = (char *)profile;
    r->content_type = (char *)(ct != NULL ? ct : "");
    r->voice_style = (char *)(vs != NULL ? vs : "");
    r->topic = (char *)(topic != NULL ? topic : "");
}

/* Creates a profile (OpsService) with the given knobs. */
static void make_profile(const char *id, Herald__V1__Platform platform, Herald__V1__Provider prov,
                         bool auto_approve, int cooldown_h, int buffer, char **topics,
                         size_t n_topics)
{
    Herald__V1__CreateProfileRequest req = HERALD__V1__CREATE_PROFILE_REQUEST__INIT;
    Herald__V1__Profile p = HERALD__V1__PROFILE__INIT;
    req.request_id = (char *)rid();
    req.profile = &p;
    p.profile_id = (char *)id;
    p.platform = platform;
    p.default_provider = prov;
    p.auto_approve = auto_approve;
    p.topic_cooldown_hours = cooldown_h;
    p.draft_buffer_size = buffer;
    p.topics = topics;
    p.n_topics = n_topics;
    herald_status st;
    herald_status_init(&st);
    int code = ops_call(&g_hd, "CreateProfile", &req.base, &herald__v1__profile__descriptor, 10000,
                        NULL, &st);
    if (code != 0)
        fail_msg("CreateProfile %s: %d %s", id, code, st.message);
    herald_status_fini(&st);
    if (cooldown_h == 0) {
        /* CreateProfile reads 0 as "unset" (24 h): set 0 explicitly */
        Herald__V1__UpdateProfileRequest u = HERALD__V1__UPDATE_PROFILE_REQUEST__INIT;
        Herald__V1__Profile up = HERALD__V1__PROFILE__INIT;
        Google__Protobuf__FieldMask m = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
        char *paths[] = { (char *)"topic_cooldown_hours" };
        u.request_id = (char *)rid();
        u.profile = &up;
        up.profile_id = (char *)id;
        m.paths = paths;
        m.n_paths = 1;
        u.update_mask = &m;
        assert_int_equal(ops_call(&g_hd, "UpdateProfile", &u.base, &herald__v1__profile__descriptor,
                                  10000, NULL, NULL),
                         0);
    }
}

static int64_t sql_int(const char *sql, const char *arg)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    if (arg != NULL)
        db_param_text(&p, arg);
    status st = db_run(g_db, 10000, "test_read", sql, arg != NULL ? &p : NULL, &res);
    if (st != ST_OK || db_res_rows(res) < 1)
        fail_msg("sql failed: %s", db_errmsg(g_db));
    int64_t v = db_res_int64(res, 0, 0);
    db_res_free(res);
    return v;
}

static char *sql_text(const char *sql, const char *arg)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    if (arg != NULL)
        db_param_text(&p, arg);
    status st = db_run(g_db, 10000, "test_read", sql, arg != NULL ? &p : NULL, &res);
    if (st != ST_OK || db_res_rows(res) < 1)
        fail_msg("sql failed: %s", db_errmsg(g_db));
    char *v = xstrdup(db_res_text(res, 0, 0));
    db_res_free(res);
    return v;
}

static void sql_exec(const char *sql, const char *arg)
{
    db_params p;
    db_params_init(&p);
    if (arg != NULL)
        db_param_text(&p, arg);
    if (db_run(g_db, 10000, "test_write", sql, arg != NULL ? &p : NULL, NULL) != ST_OK)
        fail_msg("sql failed: %s", db_errmsg(g_db));
}

static const char *reason_of(const herald_status *st)
{
    static char buf[96];
    return st_reason(st, buf, sizeof buf);
}

static bool all_gates_pass(const Herald__V1__Post *p)
{
    if (p->n_gate_results != 7)
        return false;
    for (size_t i = 0; i < p->n_gate_results; i++)
        if (p->gate_results[i]->verdict != HERALD__V1__GATE_VERDICT__GATE_VERDICT_PASS)
            return false;
    return true;
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double q)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)ceil(q * (double)n) - 1;
    return v[i < n ? i : n - 1];
}

/* ---------------------------------------------------------------- fixture */

static int group_setup(void **state)
{
    (void)state;
    g_admin = getenv("DATABASE_URL");
    const char *redis = getenv("REDIS_URL");
    if (g_admin == NULL || redis == NULL) {
        fprintf(stderr, "DATABASE_URL / REDIS_URL not set: skipping\n");
        exit(TEST_SKIP);
    }
    g_url = tdb_create(g_admin, "herald_test_content", &g_dbname);
    g_redis = xasprintf("%s%sdb=8", redis, strchr(redis, '?') ? "&" : "?");
    snprintf(g_dir, sizeof g_dir, "/tmp/herald-test-content-%d", (int)getpid());
    g_llm = fake_llm_start();
    if (g_llm == NULL)
        return -1;
    fake_llm_reply dflt = { .status = 503 }; /* a request nobody scripted fails loudly */
    fake_llm_set_default(g_llm, &dflt);
    char url[128];
    char *llm_url = xasprintf("HERALD_LLM_URL=%s", fake_llm_url(g_llm, url, sizeof url));
    const char *extra[] = {
        llm_url,
        "HERALD_LLM_MODEL=fake-model",
        "HERALD_LLM_MAX_ATTEMPTS=3",
#if defined(__SANITIZE_ADDRESS__)
        /* ASan's shadow and quarantine would trip the 256 MB limit */
        "HERALD_MEMORY_LIMIT_MB=0",
#endif
        NULL
    };
    herald_client_init();
    bool ok = hd_start(&g_hd, g_dir, g_url, g_redis, extra);
    free(llm_url);
    if (!ok) {
        fprintf(stderr, "heraldd did not start (log: %s)\n", g_hd.log);
        return -1;
    }
    if (!hd_wait_health(&g_hd, "readiness", 1, 30000) ||
        !hd_wait_health(&g_hd, "herald.v1.ContentService", 1, 5000)) {
        fprintf(stderr, "heraldd never became ready (log: %s)\n", g_hd.log);
        return -1;
    }
    g_stub = herald_stub_new(g_hd.ch, &herald__v1__content_service__descriptor);
    herald_call_options o = { .timeout_ms = 15000 };
    herald_stub_set_options(g_stub, &o);
    g_db = tdb_open(g_url);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    herald_stub_free(g_stub);
    int rc = g_hd.pid > 0 ? hd_stop(&g_hd) : g_stop_rc;
    if (rc != 0)
        fprintf(stderr, "heraldd exited %d (log: %s)\n", rc, g_hd.log);
    herald_client_shutdown();
    fake_llm_stop(g_llm);
    db_close(g_db);
    if (g_url != NULL)
        tdb_drop(g_admin, g_dbname);
    if (rc == 0)
        (void)tsh("rm -rf %s", g_dir);
    free(g_url);
    free(g_dbname);
    free(g_redis);
    return rc == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- catalog */

static Herald__V1__ListCatalogResponse *list_catalog(int kind, bool disabled, int size,
                                                     const char *token, int *code)
{
    Herald__V1__ListCatalogRequest req = HERALD__V1__LIST_CATALOG_REQUEST__INIT;
    Herald__V1__ListCatalogResponse *r = NULL;
    req.kind = kind;
    req.include_disabled = disabled;
    req.page_size = size;
    req.page_token = (char *)(token != NULL ? token : "");
    *code = cs_call("ListCatalog", &req, &herald__v1__list_catalog_response__descriptor, 10000, &r,
                    NULL);
    return r;
}

static int update_entry(const char *request_id, int kind, const char *key,
                        void (*fill)(Herald__V1__CatalogEntry *e), char **paths, size_t n_paths,
                        Herald__V1__CatalogEntry **out, herald_status *st)
{
    Herald__V1__UpdateCatalogEntryRequest req = HERALD__V1__UPDATE_CATALOG_ENTRY_REQUEST__INIT;
    Herald__V1__CatalogEntry e = HERALD__V1__CATALOG_ENTRY__INIT;
    Google__Protobuf__FieldMask m = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    req.request_id = (char *)request_id;
    e.kind = kind;
    e.key = (char *)key;
    if (fill != NULL)
        fill(&e);
    req.entry = &e;
    m.paths = paths;
    m.n_paths = n_paths;
    req.update_mask = n_paths > 0 ? &m : NULL;
    return cs_call("UpdateCatalogEntry", &req, &herald__v1__catalog_entry__descriptor, 10000, out,
                   st);
}

static void fill_disable(Herald__V1__CatalogEntry *e)
{
    e->enabled = false;
}
static void fill_enable(Herald__V1__CatalogEntry *e)
{
    e->enabled = true;
}
static void fill_weight(Herald__V1__CatalogEntry *e)
{
    e->prior_weight = 2.5;
    e->max_length = 0;
}
static void fill_cross(Herald__V1__CatalogEntry *e)
{
    e->min_length = 2000;
}

static void catalog_list_and_update(void **state)
{
    (void)state;
    int code = 0;
    size_t per_kind[4] = { 0 };
    Herald__V1__ListCatalogResponse *all = list_catalog(0, false, 0, NULL, &code);
    assert_int_equal(code, 0);
    assert_int_equal(all->n_entries, 23);
    assert_string_equal(all->next_page_token, "");
    for (size_t i = 0; i < all->n_entries; i++) {
        const Herald__V1__CatalogEntry *e = all->entries[i];
        per_kind[e->kind]++;
        assert_true(e->enabled);
        assert_true(e->prior_weight > 0);
        assert_non_null(e->update_time);
        if (e->kind == HERALD__V1__CATALOG_KIND__CATALOG_KIND_TOPIC) {
            assert_true(e->n_facts >= 3);
            assert_true(e->facts[0]->year >= 1900 && e->facts[0]->source[0] != '\0');
        } else {
            assert_int_equal(e->n_facts, 0);
        }
        if (i > 0 && all->entries[i - 1]->kind == e->kind)
            assert_true(strcmp(all->entries[i - 1]->key, e->key) < 0);
    }
    assert_int_equal(per_kind[1], 6);
    assert_int_equal(per_kind[2], 6);
    assert_int_equal(per_kind[3], 11);

    /* paging: 5 at a time gives the same 23 in the same order */
    char *token = NULL;
    size_t seen = 0;
    for (int page = 0; page < 10; page++) {
        Herald__V1__ListCatalogResponse *r = list_catalog(0, false, 5, token, &code);
        assert_int_equal(code, 0);
        for (size_t i = 0; i < r->n_entries; i++, seen++)
            assert_string_equal(r->entries[i]->key, all->entries[seen]->key);
        free(token);
        token = r->next_page_token[0] ? xstrdup(r->next_page_token) : NULL;
        if (page == 0) {
            /* a token is bound to its filters */
            herald_status st;
            herald_status_init(&st);
            Herald__V1__ListCatalogRequest req = HERALD__V1__LIST_CATALOG_REQUEST__INIT;
            req.kind = HERALD__V1__CATALOG_KIND__CATALOG_KIND_TOPIC;
            req.page_token = token;
            assert_int_equal(cs_call("ListCatalog", &req,
                                     &herald__v1__list_catalog_response__descriptor, 10000, NULL,
                                     &st),
                             3);
            assert_true(st_violation(&st, "page_token"));
            herald_status_fini(&st);
        }
        msg_free(r);
        if (token == NULL)
            break;
    }
    assert_int_equal(seen, 23);
    msg_free(all);
    Herald__V1__ListCatalogResponse *vs = list_catalog(2, false, 0, NULL, &code);
    assert_int_equal(vs->n_entries, 6);
    msg_free(vs);

    /* disable a topic: the next calls see it at once */
    char *mask_enabled[] = { (char *)"enabled" };
    char r1[40];
    snprintf(r1, sizeof r1, "%s", rid());
    Herald__V1__CatalogEntry *e1 = NULL, *e2 = NULL;
    assert_int_equal(update_entry(r1, 3, "habits", fill_disable, mask_enabled, 1, &e1, NULL), 0);
    assert_false(e1->enabled);
    assert_string_equal(e1->key, "habits");
    assert_true(e1->n_facts >= 3);
    /* replay: the same reply */
    assert_int_equal(update_entry(r1, 3, "habits", fill_disable, mask_enabled, 1, &e2, NULL), 0);
    assert_int_equal(ts_us(e1->update_time), ts_us(e2->update_time));
    msg_free(e1);
    msg_free(e2);
    Herald__V1__ListCatalogResponse *tp = list_catalog(3, false, 0, NULL, &code);
    assert_int_equal(tp->n_entries, 10);
    msg_free(tp);
    tp = list_catalog(3, true, 0, NULL, &code);
    assert_int_equal(tp->n_entries, 11);
    msg_free(tp);

    make_profile("cat-p", HERALD__V1__PLATFORM__PLATFORM_THREADS,
                 HERALD__V1__PROVIDER__PROVIDER_BUILTIN, false, 0, 0, NULL, 0);
    Herald__V1__GenerateDraftRequest dr;
    draft_req(&dr, "cat-p", "practical_tip", "storyteller", "habits");
    assert_int_equal(gen_draft(&dr, NULL), 3);
    assert_non_null(strstr(stub_msg(), "disabled"));
    for (int i = 0; i < 8; i++) {
        Herald__V1__GenerateDraftResponse *r = NULL;
        draft_req(&dr, "cat-p", NULL, NULL, NULL);
        assert_int_equal(gen_draft(&dr, &r), 0);
        assert_string_not_equal(r->post->arms->topic, "habits");
        msg_free(r);
    }
    assert_int_equal(update_entry(rid(), 3, "habits", fill_enable, mask_enabled, 1, NULL, NULL), 0);
    tp = list_catalog(3, false, 0, NULL, &code);
    assert_int_equal(tp->n_entries, 11);
    msg_free(tp);

    /* implicit mask: prior weight and max_length 0 (= no bound past the platform's) */
    Herald__V1__CatalogEntry *w = NULL;
    char *mask_w[] = { (char *)"priorWeight", (char *)"max_length" };
    assert_int_equal(update_entry(rid(), 2, "storyteller", fill_weight, mask_w, 2, &w, NULL), 0);
    assert_true(fabs(w->prior_weight - 2.5) < 1e-9);
    assert_int_equal(w->max_length, 10000);
    msg_free(w);

    herald_status st;
    herald_status_init(&st);
    assert_int_equal(
        update_entry(rid(), 3, "no_such_topic", fill_enable, mask_enabled, 1, NULL, &st), 5);
    assert_int_equal(update_entry(rid(), 0, "sleep", fill_enable, mask_enabled, 1, NULL, &st), 3);
    assert_true(st_violation(&st, "entry.kind"));
    char *mask_key[] = { (char *)"key" };
    assert_int_equal(update_entry(rid(), 3, "sleep", fill_enable, mask_key, 1, NULL, &st), 3);
    assert_true(st_violation(&st, "update_mask.paths[0]"));
    char *mask_min[] = { (char *)"min_length" };
    assert_int_equal(update_entry(rid(), 1, "myth_busting", fill_cross, mask_min, 1, NULL, &st), 3);
    assert_non_null(strstr(st.message, "max_length"));
    herald_status_fini(&st);
}

/* ---------------------------------------------------------------- GenerateDraft */

static void generate_draft_builtin(void **state)
{
    (void)state;
    make_profile("gd-p", HERALD__V1__PLATFORM__PLATFORM_X, HERALD__V1__PROVIDER__PROVIDER_BUILTIN,
                 false, 0, 0, NULL, 0);
    make_profile("gd-auto", HERALD__V1__PLATFORM__PLATFORM_THREADS,
                 HERALD__V1__PROVIDER__PROVIDER_BUILTIN, true, 0, 0, NULL, 0);

    /* fixed arms: no decision */
    Herald__V1__GenerateDraftRequest req;
    Herald__V1__GenerateDraftResponse *r = NULL;
    draft_req(&req, "gd-p", "myth-busting", "Truth-Seeker", "sleep");
    assert_int_equal(gen_draft(&req, &r), 0);
    const Herald__V1__Post *p = r->post;
    assert_int_equal(p->state, HERALD__V1__POST_STATE__POST_STATE_DRAFT);
    assert_int_equal(p->platform, HERALD__V1__PLATFORM__PLATFORM_X);
    assert_int_equal(p->kind, HERALD__V1__POST_KIND__POST_KIND_ORIGINAL);
    assert_int_equal(p->provider, HERALD__V1__PROVIDER__PROVIDER_BUILTIN);
    assert_string_equal(p->arms->content_type, "myth_busting");
    assert_string_equal(p->arms->voice_style, "truth_seeker");
    assert_string_equal(p->arms->topic, "sleep");
    assert_true(all_gates_pass(p));
    assert_true(utf8_count(p->text, strlen(p->text)) <= 280);
    assert_string_equal(p->decision_id, "");
    assert_int_equal(strlen(p->content_hash), 64);
    assert_int_equal(r->n_attempts, 1);
    assert_int_equal(r->attempts[0]->provider, HERALD__V1__PROVIDER__PROVIDER_BUILTIN);
    assert_true(r->attempts[0]->accepted);
    assert_false(r->fallback);
    assert_int_equal(
        sql_int("SELECT count(*) FROM gate_results WHERE post_id = $1::uuid", p->post_id), 7);

    /* idempotent: the same request replays the same post, one row */
    int64_t before = sql_int("SELECT count(*) FROM posts WHERE profile_id = $1", "gd-p");
    Herald__V1__GenerateDraftResponse *again = NULL;
    assert_int_equal(gen_draft(&req, &again), 0);
    assert_string_equal(again->post->post_id, p->post_id);
    assert_string_equal(again->post->text, p->text);
    assert_int_equal(sql_int("SELECT count(*) FROM posts WHERE profile_id = $1", "gd-p"), before);
    msg_free(again);
    /* the same request_id with another request */
    req.topic = (char *)"stress";
    assert_int_equal(gen_draft(&req, NULL), 3);
    assert_string_equal(reason_of(herald_stub_status(g_stub)), "IDEMPOTENCY_KEY_REUSED");
    msg_free(r);

    /* automatic: a decision with candidates and a propensity */
    draft_req(&req, "gd-p", NULL, NULL, NULL);
    assert_int_equal(gen_draft(&req, &r), 0);
    p = r->post;
    assert_true(uuid_ok(p->decision_id));
    assert_true(all_gates_pass(p));
    assert_true(p->arms->content_type[0] && p->arms->voice_style[0] && p->arms->topic[0]);
    assert_int_equal(sql_int("SELECT count(*) FROM decisions WHERE decision_id = $1::uuid AND "
                             "kind = 'content' AND propensity > 0 AND propensity <= 1 AND NOT "
                             "forced AND jsonb_array_length(candidates) = 6 + 6 + 11",
                             p->decision_id),
                     1);
    char *dec_ct =
        sql_text("SELECT content_type FROM decisions WHERE decision_id = $1::uuid", p->decision_id);
    assert_string_equal(dec_ct, p->arms->content_type);
    free(dec_ct);
    /* the chosen arms count a pull under the current reward version */
    assert_true(sql_int("SELECT COALESCE(sum(pulls), 0) FROM arm_stats WHERE profile_id = $1",
                        "gd-p") >= 3);
    char decision[40];
    snprintf(decision, sizeof decision, "%s", p->decision_id);
    char topic[65];
    snprintf(topic, sizeof topic, "%s", p->arms->topic);
    msg_free(r);

    /* partly fixed: only the open scopes are drawn */
    draft_req(&req, "gd-p", "practical_tip", NULL, NULL);
    assert_int_equal(gen_draft(&req, &r), 0);
    assert_string_equal(r->post->arms->content_type, "practical_tip");
    assert_int_equal(sql_int("SELECT jsonb_array_length(candidates) FROM decisions WHERE "
                             "decision_id = $1::uuid",
                             r->post->decision_id),
                     6 + 11);
    msg_free(r);

    /* an earlier decision's arms */
    draft_req(&req, "gd-p", NULL, NULL, NULL);
    req.decision_id = decision;
    assert_int_equal(gen_draft(&req, &r), 0);
    assert_string_equal(r->post->decision_id, decision);
    assert_string_equal(r->post->arms->topic, topic);
    msg_free(r);
    draft_req(&req, "gd-p", NULL, NULL, "sleep");
    req.decision_id = decision;
    assert_int_equal(gen_draft(&req, NULL), 3);
    draft_req(&req, "gd-p", NULL, NULL, NULL);
    req.decision_id = (char *)"00000000-0000-4000-8000-000000000000";
    assert_int_equal(gen_draft(&req, NULL), 5);

    /* auto-approve; the request's platform */
    draft_req(&req, "gd-auto", "research_breakdown", "storyteller", "gut_health");
    req.platform = HERALD__V1__PLATFORM__PLATFORM_LINKEDIN;
    assert_int_equal(gen_draft(&req, &r), 0);
    assert_int_equal(r->post->state, HERALD__V1__POST_STATE__POST_STATE_APPROVED);
    assert_int_equal(r->post->platform, HERALD__V1__PLATFORM__PLATFORM_LINKEDIN);
    msg_free(r);

    /* errors */
    draft_req(&req, "no-such-profile", NULL, NULL, NULL);
    assert_int_equal(gen_draft(&req, NULL), 5);
    draft_req(&req, "gd-p", "Bad Key!", NULL, NULL);
    assert_int_equal(gen_draft(&req, NULL), 3);
    assert_true(st_violation(herald_stub_status(g_stub), "content_type"));
    draft_req(&req, "gd-p", "no_such_type", NULL, NULL);
    assert_int_equal(gen_draft(&req, NULL), 3);
    draft_req(&req, "", NULL, NULL, NULL); /* several profiles exist */
    assert_int_equal(gen_draft(&req, NULL), 3);
    assert_true(st_violation(herald_stub_status(g_stub), "profile_id"));
    draft_req(&req, "gd-p", NULL, NULL, NULL);
    req.provider = 9;
    assert_int_equal(gen_draft(&req, NULL), 3);
    req.request_id = (char *)"short";
    req.provider = 0;
    assert_int_equal(gen_draft(&req, NULL), 3);
    assert_true(st_violation(herald_stub_status(g_stub), "request_id"));

    /* a paused profile gets no generation */
    Herald__V1__PauseProfileRequest pr = HERALD__V1__PAUSE_PROFILE_REQUEST__INIT;
    pr.request_id = (char *)rid();
    pr.profile_id = (char *)"gd-auto";
    pr.reason = (char *)"test";
    assert_int_equal(ops_call(&g_hd, "PauseProfile", &pr.base, &herald__v1__profile__descriptor,
                              10000, NULL, NULL),
                     0);
    draft_req(&req, "gd-auto", NULL, NULL, NULL);
    assert_int_equal(gen_draft(&req, NULL), 9);
    assert_string_equal(reason_of(herald_stub_status(g_stub)), "PROFILE_PAUSED");
}

/* Two topics, a 24 h cooldown: the second draft takes the other topic; the
 * third finds both used and takes the least recently used one. */
static void topic_cooldown(void **state)
{
    (void)state;
    char *topics[] = { (char *)"sleep", (char *)"stress" };
    make_profile("cool-p", HERALD__V1__PLATFORM__PLATFORM_THREADS,
                 HERALD__V1__PROVIDER__PROVIDER_BUILTIN, false, 24, 0, topics, 2);
    char t[3][65];
    char dec[3][40];
    for (int i = 0; i < 3; i++) {
        Herald__V1__GenerateDraftRequest req;
        Herald__V1__GenerateDraftResponse *r = NULL;
        draft_req(&req, "cool-p", NULL, NULL, NULL);
        assert_int_equal(gen_draft(&req, &r), 0);
        snprintf(t[i], sizeof t[i], "%s", r->post->arms->topic);
        snprintf(dec[i], sizeof dec[i], "%s", r->post->decision_id);
        msg_free(r);
    }
    assert_true(strcmp(t[0], "sleep") == 0 || strcmp(t[0], "stress") == 0);
    assert_string_not_equal(t[0], t[1]);
    assert_string_equal(t[2], t[0]);
    assert_int_equal(sql_int("SELECT count(*) FROM decisions d, jsonb_array_elements(d.candidates) "
                             "c WHERE d.decision_id = $1::uuid AND c->>'excluded_reason' = "
                             "'topic used in the last 24 h'",
                             dec[1]),
                     1);
    char *why = sql_text("SELECT reason FROM decisions WHERE decision_id = $1::uuid", dec[2]);
    assert_non_null(strstr(why, "cooldown relaxed"));
    free(why);
}

/* ---------------------------------------------------------------- ValidateText */

static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r != '\0'; r++) {
        if (*r == '\\' && r[1] != '\0') {
            r++;
            *w++ = *r == 'n' ? '\n' : *r == 't' ? '\t' : *r;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static int split_tabs(char *line, char **f, int max)
{
    int n = 0;
    f[n++] = line;
    for (char *c = line; *c != '\0' && n < max; c++)
        if (*c == '\t') {
            *c = '\0';
            f[n++] = c + 1;
        }
    return n;
}

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *h = hay; *h != '\0'; h++) {
        size_t i = 0;
        while (i < n && h[i] != '\0' &&
               tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return n == 0;
}

static Herald__V1__Platform platform_of(const char *s)
{
    return strcmp(s, "x") == 0         ? HERALD__V1__PLATFORM__PLATFORM_X
           : strcmp(s, "threads") == 0 ? HERALD__V1__PLATFORM__PLATFORM_THREADS
           : strcmp(s, "bluesky") == 0 ? HERALD__V1__PLATFORM__PLATFORM_BLUESKY
                                       : HERALD__V1__PLATFORM__PLATFORM_LINKEDIN;
}

static int validate(const char *text, Herald__V1__Platform pf, const char *profile, double thr,
                    const char *ct, Herald__V1__ValidateTextResponse **out, herald_status *st)
{
    Herald__V1__ValidateTextRequest req = HERALD__V1__VALIDATE_TEXT_REQUEST__INIT;
    req.text = (char *)text;
    req.platform = pf;
    req.profile_id = (char *)(profile != NULL ? profile : "");
    req.content_type = (char *)(ct != NULL ? ct : "");
    if (thr > 0) {
        req.duplicate_threshold = thr;
        req.duplicate_threshold_opt_case =
            HERALD__V1__VALIDATE_TEXT_REQUEST__DUPLICATE_THRESHOLD_OPT_DUPLICATE_THRESHOLD;
    }
    return cs_call("ValidateText", &req, &herald__v1__validate_text_response__descriptor, 10000,
                   out, st);
}

/* tests/data/gates_cases.tsv through the RPC: its recent posts become posts
 * of a profile (created age_days ago), its threshold (0.70) is passed as
 * duplicate_threshold; every case's seven verdicts must match. */
static void validate_text_table(void **state)
{
    (void)state;
    make_profile("vt-p", HERALD__V1__PLATFORM__PLATFORM_X, HERALD__V1__PROVIDER__PROVIDER_BUILTIN,
                 false, 0, 0, NULL, 0);
    FILE *f = fopen(HERALD_SOURCE_DIR "/tests/data/gates_cases.tsv", "r");
    assert_non_null(f);
    char line[16384];
    char ids[8][40] = { { 0 } };
    char names[8][8] = { { 0 } };
    int n_recent = 0, n_cases = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *fl[6];
        int nf = split_tabs(line, fl, 6);
        if (strcmp(fl[0], "recent") == 0 && nf >= 4 && n_recent < 8) {
            unescape(fl[3]);
            db_params p;
            db_res *res = NULL;
            db_params_init(&p);
            db_param_text(&p, fl[3]);
            db_param_int64(&p, strtoll(fl[2], NULL, 10));
            assert_int_equal(
                db_run(g_db, 10000, "test_recent",
                       "INSERT INTO posts (profile_id, state, platform, text, content_hash, "
                       "provider, created_at) VALUES ('vt-p', 'draft', 'x', $1, "
                       "encode(sha256(convert_to($1, 'UTF8')), 'hex'), 'builtin', "
                       "now() - $2::int * interval '1 day') RETURNING post_id::text",
                       &p, &res),
                ST_OK);
            snprintf(ids[n_recent], sizeof ids[n_recent], "%s", db_res_text(res, 0, 0));
            snprintf(names[n_recent], sizeof names[n_recent], "%s", fl[1]);
            db_res_free(res);
            n_recent++;
            continue;
        }
        if (strcmp(fl[0], "case") != 0 || nf < 4)
            continue;
        unescape(fl[3]);
        Herald__V1__ValidateTextResponse *r = NULL;
        herald_status st;
        herald_status_init(&st);
        int code = validate(fl[3], platform_of(fl[1]), "vt-p", 0.70, NULL, &r, &st);
        if (code != 0)
            fail_msg("case %d: code %d %s", n_cases, code, st.message);
        herald_status_fini(&st);
        assert_int_equal(r->n_gate_results, 7);
        bool first_fail_seen = false;
        for (int g = 0; g < 7; g++) {
            const Herald__V1__GateResult *gr = r->gate_results[g];
            assert_int_equal(gr->gate, g + 1);
            bool pass = gr->verdict == HERALD__V1__GATE_VERDICT__GATE_VERDICT_PASS;
            if (pass != (fl[2][g] == 'P'))
                fail_msg("case %d (%.60s): gate %d is %s, expected %c (%s)", n_cases, fl[3], g + 1,
                         pass ? "PASS" : "FAIL", fl[2][g], gr->reason);
            if (!pass && !first_fail_seen && nf >= 5 && fl[4][0] != '\0') {
                first_fail_seen = true;
                char want[256];
                snprintf(want, sizeof want, "%s", fl[4]);
                for (int k = 0; k < n_recent; k++) {
                    char *at = strstr(want, names[k]);
                    if (at != NULL && strncmp(want, "near-duplicate of post ", 23) == 0 &&
                        at == want + 23) {
                        snprintf(at, sizeof want - 23, "%s", ids[k]);
                        break;
                    }
                }
                if (!contains_ci(gr->reason, want))
                    fail_msg("case %d: reason \"%s\" lacks \"%s\"", n_cases, gr->reason, want);
            }
        }
        assert_int_equal(r->passed, strchr(fl[2], 'F') == NULL);
        msg_free(r);
        n_cases++;
    }
    fclose(f);
    assert_true(n_cases >= 40);
    printf("ValidateText over RPC: %d texts x 7 gates as expected\n", n_cases);

    /* the nearest duplicate, exact */
    char *r1 = sql_text("SELECT text FROM posts WHERE post_id = $1::uuid", ids[0]);
    Herald__V1__ValidateTextResponse *r = NULL;
    assert_int_equal(validate(r1, HERALD__V1__PLATFORM__PLATFORM_X, "vt-p", 0, NULL, &r, NULL), 0);
    assert_false(r->passed);
    assert_non_null(r->nearest_duplicate);
    assert_string_equal(r->nearest_duplicate->post_id, ids[0]);
    assert_true(r->nearest_duplicate->exact);
    assert_true(r->nearest_duplicate->similarity >= 0.999);
    assert_int_equal(r->max_length, 280);
    msg_free(r);
    /* no profile: the duplicate gate is not checked and says so */
    assert_int_equal(validate(r1, HERALD__V1__PLATFORM__PLATFORM_X, NULL, 0, NULL, &r, NULL), 0);
    assert_true(r->passed);
    assert_non_null(strstr(r->gate_results[6]->reason, "not checked"));
    assert_null(r->nearest_duplicate);
    msg_free(r);
    free(r1);
    /* the content type's bounds */
    assert_int_equal(validate("Sleep matters: 7 to 8 hours.", HERALD__V1__PLATFORM__PLATFORM_X,
                              NULL, 0, "myth-busting", &r, NULL),
                     0);
    assert_int_equal(r->gate_results[0]->verdict, HERALD__V1__GATE_VERDICT__GATE_VERDICT_FAIL);
    msg_free(r);
    herald_status st;
    herald_status_init(&st);
    assert_int_equal(validate("text", 0, NULL, 0, NULL, NULL, &st), 3);
    assert_true(st_violation(&st, "platform"));
    assert_int_equal(validate("", HERALD__V1__PLATFORM__PLATFORM_X, NULL, 0, NULL, NULL, &st), 3);
    assert_int_equal(validate("text", HERALD__V1__PLATFORM__PLATFORM_X, NULL, 1.5, NULL, NULL, &st),
                     3);
    assert_int_equal(
        validate("text", HERALD__V1__PLATFORM__PLATFORM_X, NULL, 0, "no_such_type", NULL, &st), 3);
    assert_int_equal(
        validate("text", HERALD__V1__PLATFORM__PLATFORM_X, "nobody", 0, NULL, NULL, &st), 5);
    herald_status_fini(&st);
}

/* ---------------------------------------------------------------- transitions */

static int transition(const char *method, const char *request_id, const char *post_id,
                      const char *reason, int64_t expected, Herald__V1__Post **out,
                      herald_status *st)
{
    if (strcmp(method, "ApprovePost") == 0) {
        Herald__V1__ApprovePostRequest r = HERALD__V1__APPROVE_POST_REQUEST__INIT;
        r.request_id = (char *)request_id;
        r.post_id = (char *)post_id;
        r.expected_revision = expected;
        return cs_call(method, &r, &herald__v1__post__descriptor, 10000, out, st);
    }
    if (strcmp(method, "RejectPost") == 0) {
        Herald__V1__RejectPostRequest r = HERALD__V1__REJECT_POST_REQUEST__INIT;
        r.request_id = (char *)request_id;
        r.post_id = (char *)post_id;
        r.reason = (char *)reason;
        return cs_call(method, &r, &herald__v1__post__descriptor, 10000, out, st);
    }
    Herald__V1__CancelPostRequest r = HERALD__V1__CANCEL_POST_REQUEST__INIT;
    r.request_id = (char *)request_id;
    r.post_id = (char *)post_id;
    r.reason = (char *)reason;
    return cs_call(method, &r, &herald__v1__post__descriptor, 10000, out, st);
}

/* A fresh draft of profile; its id into id. */
static void new_draft(const char *profile, const char *ct, const char *vs, const char *topic,
                      char id[40])
{
    Herald__V1__GenerateDraftRequest req;
    Herald__V1__GenerateDraftResponse *r = NULL;
    draft_req(&req, profile, ct, vs, topic);
    if (gen_draft(&req, &r) != 0)
        fail_msg("GenerateDraft %s: %s", profile, stub_msg());
    snprintf(id, 40, "%s", r->post->post_id);
    msg_free(r);
}

static void transitions(void **state)
{
    (void)state;
    make_profile("tr-p", HERALD__V1__PLATFORM__PLATFORM_THREADS,
                 HERALD__V1__PROVIDER__PROVIDER_BUILTIN, false, 0, 0, NULL, 0);
    char a[40], b[40], c[40], d[40];
    new_draft("tr-p", "myth_busting", "truth_seeker", "sleep", a);
    new_draft("tr-p", "practical_tip", "storyteller", "exercise", b);
    new_draft("tr-p", "research_breakdown", "curious_investigator", "nutrition", c);
    new_draft("tr-p", "story_insight", "research_enthusiast", "longevity", d);
    herald_status st;
    herald_status_init(&st);
    Herald__V1__Post *p = NULL, *q = NULL;

    char r1[40];
    snprintf(r1, sizeof r1, "%s", rid());
    assert_int_equal(transition("ApprovePost", r1, a, "", 1, &p, NULL), 0);
    assert_int_equal(p->state, HERALD__V1__POST_STATE__POST_STATE_APPROVED);
    assert_int_equal(p->revision, 2);
    /* approving again is a no-op; a replay gives the first reply */
    assert_int_equal(transition("ApprovePost", rid(), a, "", 0, &q, NULL), 0);
    assert_int_equal(q->revision, 2);
    msg_free(q);
    assert_int_equal(transition("ApprovePost", r1, a, "", 1, &q, NULL), 0);
    assert_int_equal(q->revision, 2);
    msg_free(q);
    msg_free(p);
    assert_int_equal(transition("RejectPost", rid(), a, "off-brand", 0, &p, NULL), 0);
    assert_int_equal(p->state, HERALD__V1__POST_STATE__POST_STATE_REJECTED);
    assert_string_equal(p->state_reason, "off-brand");
    msg_free(p);
    assert_int_equal(transition("ApprovePost", rid(), a, "", 0, NULL, &st), 9);
    assert_non_null(strstr(st.message, "REJECTED"));
    assert_string_equal(reason_of(&st), "INVALID_POST_STATE");
    assert_int_equal(transition("CancelPost", rid(), a, "", 0, NULL, &st), 9);
    assert_int_equal(transition("RejectPost", rid(), a, "again", 0, NULL, &st), 9);

    assert_int_equal(transition("CancelPost", rid(), b, "not needed", 0, &p, NULL), 0);
    assert_int_equal(p->state, HERALD__V1__POST_STATE__POST_STATE_CANCELLED);
    msg_free(p);
    assert_int_equal(transition("RejectPost", rid(), b, "late", 0, NULL, &st), 9);
    assert_non_null(strstr(st.message, "CANCELLED"));

    assert_int_equal(transition("ApprovePost", rid(), c, "", 99, NULL, &st), 10);
    sql_exec("UPDATE posts SET state = 'scheduled', schedule_time = now() + interval '1 hour' "
             "WHERE post_id = $1::uuid",
             c);
    assert_int_equal(transition("ApprovePost", rid(), c, "", 0, NULL, &st), 9);
    assert_non_null(strstr(st.message, "SCHEDULED"));
    assert_int_equal(transition("CancelPost", rid(), c, "", 0, &p, NULL), 0);
    assert_int_equal(p->state, HERALD__V1__POST_STATE__POST_STATE_CANCELLED);
    msg_free(p);

    sql_exec("UPDATE posts SET state = 'published', external_id = 'ext-' || post_id::text, "
             "publish_time = now() WHERE post_id = $1::uuid",
             d);
    assert_int_equal(transition("CancelPost", rid(), d, "", 0, NULL, &st), 9);
    assert_non_null(strstr(st.message, "PUBLISHED"));
    assert_int_equal(transition("RejectPost", rid(), d, "x", 0, NULL, &st), 9);
    assert_int_equal(transition("ApprovePost", rid(), d, "", 0, NULL, &st), 9);

    assert_int_equal(transition("RejectPost", rid(), b, "", 0, NULL, &st), 3);
    assert_true(st_violation(&st, "reason"));
    assert_int_equal(transition("ApprovePost", rid(), "not-a-uuid", "", 0, NULL, &st), 3);
    assert_int_equal(
        transition("ApprovePost", rid(), "00000000-0000-4000-8000-000000000000", "", 0, NULL, &st),
        5);
    herald_status_fini(&st);
}

/* ---------------------------------------------------------------- UpdateDraft */

static int update_draft(const char *post_id, const char *text, int64_t expected,
                        Herald__V1__Post **out, herald_status *st)
{
    Herald__V1__UpdateDraftRequest r = HERALD__V1__UPDATE_DRAFT_REQUEST__INIT;
    r.request_id = (char *)rid();
    r.post_id = (char *)post_id;
    r.text = (char *)text;
    r.expected_revision = expected;
    return cs_call("UpdateDraft", &r, &herald__v1__post__descriptor, 10000, out, st);
}

static void update_draft_regates(void **state)
{
    (void)state;
    static const char *good = "Myth: cutting sleep is harmless. Short sleepers had a 12% higher "
                              "risk of dying during follow-up than people sleeping 7 to 8 hours a "
                              "night (Cappuccio et al., Sleep, 2010).";
    make_profile("ud-p", HERALD__V1__PLATFORM__PLATFORM_X, HERALD__V1__PROVIDER__PROVIDER_BUILTIN,
                 false, 0, 0, NULL, 0);
    make_profile("ud-auto", HERALD__V1__PLATFORM__PLATFORM_X,
                 HERALD__V1__PROVIDER__PROVIDER_BUILTIN, true, 0, 0, NULL, 0);
    char a[40], b[40], c[40];
    new_draft("ud-p", "myth_busting", "truth_seeker", "stress", a);
    new_draft("ud-p", "practical_tip", "practical_optimizer", "hydration", b);
    Herald__V1__Post *p = NULL;
    herald_status st;
    herald_status_init(&st);
    assert_int_equal(transition("ApprovePost", rid(), a, "", 0, NULL, NULL), 0);

    assert_int_equal(update_draft(a, good, 2, &p, NULL), 0);
    assert_string_equal(p->text, good);
    assert_true(p->human_edited);
    assert_int_equal(p->revision, 3);
    assert_int_equal(p->state, HERALD__V1__POST_STATE__POST_STATE_DRAFT); /* no auto-approve */
    assert_true(all_gates_pass(p));
    msg_free(p);
    assert_int_equal(sql_int("SELECT count(*) FROM gate_results WHERE post_id = $1::uuid", a), 14);

    /* a failing gate changes nothing */
    assert_int_equal(update_draft(a,
                                  "Sleep is underrated, and the numbers show it: 7 to 8 hours "
                                  "a night beats 6 in every cohort. #sleep",
                                  0, NULL, &st),
                     9);
    assert_non_null(strstr(st.message, "GATE_HASHTAGS"));
    char *now = sql_text("SELECT text FROM posts WHERE post_id = $1::uuid", a);
    assert_string_equal(now, good);
    free(now);
    /* another live post's text */
    char *bt = sql_text("SELECT text FROM posts WHERE post_id = $1::uuid", b);
    assert_int_equal(update_draft(a, bt, 0, NULL, &st), 9);
    assert_true(strstr(st.message, "GATE_DUPLICATE") != NULL ||
                strstr(st.message, "already live") != NULL);
    free(bt);
    assert_int_equal(update_draft(a, good, 1, NULL, &st), 10); /* stale revision */
    assert_int_equal(transition("RejectPost", rid(), b, "no", 0, NULL, NULL), 0);
    assert_int_equal(update_draft(b, good, 0, NULL, &st), 9);
    assert_int_equal(update_draft(a, "", 0, NULL, &st), 3);

    /* auto-approve keeps an approved post approved */
    new_draft("ud-auto", "counterintuitive_insight", "evidence_based_advocate", "heart_health", c);
    char *ct = sql_text("SELECT text FROM posts WHERE post_id = $1::uuid", c);
    strbuf edited = { 0 };
    strbuf_printf(&edited, "%s", ct);
    edited.data[0] = (char)(edited.data[0] == 'A' ? 'B' : 'A'); /* a light edit */
    assert_int_equal(update_draft(c, edited.data, 0, &p, &st), 0);
    assert_int_equal(p->state, HERALD__V1__POST_STATE__POST_STATE_APPROVED);
    msg_free(p);
    strbuf_fini(&edited);
    free(ct);
    herald_status_fini(&st);
}

/* ---------------------------------------------------------------- GetPost / ListPosts */

static int list_posts(Herald__V1__ListPostsRequest *req, Herald__V1__ListPostsResponse **out,
                      herald_status *st)
{
    return cs_call("ListPosts", req, &herald__v1__list_posts_response__descriptor, 10000, out, st);
}

static void get_and_list_posts(void **state)
{
    (void)state;
    static const char *topics[] = { "sleep",      "nutrition", "exercise",          "stress",
                                    "longevity",  "hydration", "brain_health",      "heart_health",
                                    "gut_health", "habits",    "social_connection", "sleep" };
    make_profile("ls-p", HERALD__V1__PLATFORM__PLATFORM_LINKEDIN,
                 HERALD__V1__PROVIDER__PROVIDER_BUILTIN, false, 0, 0, NULL, 0);
    char ids[12][40];
    for (int i = 0; i < 12; i++)
        new_draft("ls-p", "research_breakdown", i % 2 ? "storyteller" : "truth_seeker", topics[i],
                  ids[i]);
    for (int i = 0; i < 3; i++)
        assert_int_equal(transition("ApprovePost", rid(), ids[i], "", 0, NULL, NULL), 0);
    for (int i = 3; i < 5; i++)
        assert_int_equal(transition("RejectPost", rid(), ids[i], "no", 0, NULL, NULL), 0);

    Herald__V1__GetPostRequest g = HERALD__V1__GET_POST_REQUEST__INIT;
    Herald__V1__Post *p = NULL;
    g.post_id = ids[0];
    assert_int_equal(cs_call("GetPost", &g, &herald__v1__post__descriptor, 10000, &p, NULL), 0);
    assert_string_equal(p->post_id, ids[0]);
    assert_int_equal(p->state, HERALD__V1__POST_STATE__POST_STATE_APPROVED);
    assert_true(all_gates_pass(p));
    msg_free(p);
    g.post_id = (char *)"00000000-0000-4000-8000-000000000000";
    assert_int_equal(cs_call("GetPost", &g, &herald__v1__post__descriptor, 10000, NULL, NULL), 5);
    g.post_id = (char *)"nope";
    assert_int_equal(cs_call("GetPost", &g, &herald__v1__post__descriptor, 10000, NULL, NULL), 3);

    /* every post, 5 a page, newest first, each once */
    Herald__V1__ListPostsRequest req = HERALD__V1__LIST_POSTS_REQUEST__INIT;
    req.profile_id = (char *)"ls-p";
    req.page_size = 5;
    char *token = NULL;
    int seen = 0, pages = 0;
    int64_t prev_us = INT64_MAX;
    char seen_ids[12][40];
    do {
        Herald__V1__ListPostsResponse *r = NULL;
        req.page_token = token != NULL ? token : (char *)"";
        assert_int_equal(list_posts(&req, &r, NULL), 0);
        pages++;
        for (size_t i = 0; i < r->n_posts; i++) {
            const Herald__V1__Post *q = r->posts[i];
            int64_t us = ts_us(q->create_time);
            assert_true(us <= prev_us);
            prev_us = us;
            assert_int_equal(q->n_gate_results, 7);
            for (int k = 0; k < seen; k++)
                assert_string_not_equal(seen_ids[k], q->post_id);
            assert_true(seen < 12);
            snprintf(seen_ids[seen++], 40, "%s", q->post_id);
        }
        free(token);
        token = r->next_page_token[0] ? xstrdup(r->next_page_token) : NULL;
        if (pages == 1) {
            /* the token belongs to these filters */
            Herald__V1__ListPostsRequest other = req;
            other.topic = (char *)"sleep";
            other.page_token = token;
            herald_status st;
            herald_status_init(&st);
            assert_int_equal(list_posts(&other, NULL, &st), 3);
            assert_true(st_violation(&st, "page_token"));
            herald_status_fini(&st);
        }
        msg_free(r);
    } while (token != NULL && pages < 10);
    assert_int_equal(seen, 12);
    assert_int_equal(pages, 3);
    assert_string_equal(seen_ids[0], ids[11]);

    Herald__V1__ListPostsResponse *r = NULL;
    Herald__V1__PostState approved[] = { HERALD__V1__POST_STATE__POST_STATE_APPROVED };
    Herald__V1__ListPostsRequest f = HERALD__V1__LIST_POSTS_REQUEST__INIT;
    f.profile_id = (char *)"ls-p";
    f.states = approved;
    f.n_states = 1;
    assert_int_equal(list_posts(&f, &r, NULL), 0);
    assert_int_equal(r->n_posts, 3);
    msg_free(r);
    Herald__V1__PostState two[] = { HERALD__V1__POST_STATE__POST_STATE_DRAFT,
                                    HERALD__V1__POST_STATE__POST_STATE_REJECTED };
    f.states = two;
    f.n_states = 2;
    assert_int_equal(list_posts(&f, &r, NULL), 0);
    assert_int_equal(r->n_posts, 9);
    msg_free(r);
    f.n_states = 0;
    f.topic = (char *)"sleep";
    assert_int_equal(list_posts(&f, &r, NULL), 0);
    assert_int_equal(r->n_posts, 2);
    msg_free(r);
    f.topic = (char *)"";
    f.voice_style = (char *)"storyteller";
    assert_int_equal(list_posts(&f, &r, NULL), 0);
    assert_int_equal(r->n_posts, 6);
    msg_free(r);
    f.voice_style = (char *)"";
    f.kind = HERALD__V1__POST_KIND__POST_KIND_REPLY;
    assert_int_equal(list_posts(&f, &r, NULL), 0);
    assert_int_equal(r->n_posts, 0);
    msg_free(r);
    f.kind = 0;
    Google__Protobuf__Timestamp future = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    future.seconds = (int64_t)(now_real_ms() / 1000) + 3600;
    f.min_create_time = &future;
    assert_int_equal(list_posts(&f, &r, NULL), 0);
    assert_int_equal(r->n_posts, 0);
    msg_free(r);
    f.min_create_time = NULL;
    f.max_create_time = &future;
    assert_int_equal(list_posts(&f, &r, NULL), 0);
    assert_int_equal(r->n_posts, 12);
    msg_free(r);
    herald_status st;
    herald_status_init(&st);
    f.page_size = -1;
    assert_int_equal(list_posts(&f, NULL, &st), 3);
    assert_true(st_violation(&st, "page_size"));
    herald_status_fini(&st);
}

/* ---------------------------------------------------------------- AdaptForPlatform */

static int adapt(const char *request_id, const char *post_id, Herald__V1__Platform pf, int provider,
                 Herald__V1__AdaptForPlatformResponse **out, herald_status *st)
{
    Herald__V1__AdaptForPlatformRequest r = HERALD__V1__ADAPT_FOR_PLATFORM_REQUEST__INIT;
    r.request_id = (char *)request_id;
    r.post_id = (char *)post_id;
    r.platform = pf;
    r.provider = provider;
    return cs_call("AdaptForPlatform", &r, &herald__v1__adapt_for_platform_response__descriptor,
                   15000, out, st);
}

static void adapt_for_platform(void **state)
{
    (void)state;
    make_profile("ad-p", HERALD__V1__PLATFORM__PLATFORM_X, HERALD__V1__PROVIDER__PROVIDER_BUILTIN,
                 false, 0, 0, NULL, 0);
    char src[40], other[40];
    new_draft("ad-p", "counterintuitive_insight", "curious_investigator", "brain_health", src);
    new_draft("ad-p", "practical_tip", "storyteller", "habits", other);
    char r1[40];
    snprintf(r1, sizeof r1, "%s", rid());
    Herald__V1__AdaptForPlatformResponse *a = NULL, *b = NULL;
    assert_int_equal(adapt(r1, src, HERALD__V1__PLATFORM__PLATFORM_LINKEDIN, 0, &a, NULL), 0);
    const Herald__V1__Post *p = a->post;
    assert_int_equal(p->kind, HERALD__V1__POST_KIND__POST_KIND_ADAPTATION);
    assert_int_equal(p->platform, HERALD__V1__PLATFORM__PLATFORM_LINKEDIN);
    assert_string_equal(p->source_post_id, src);
    assert_string_equal(p->arms->content_type, "counterintuitive_insight");
    assert_string_equal(p->arms->topic, "brain_health");
    assert_true(all_gates_pass(p));
    assert_true(a->n_attempts == 1 && a->attempts[0]->accepted);
    char *src_text = sql_text("SELECT text FROM posts WHERE post_id = $1::uuid", src);
    assert_string_not_equal(p->text, src_text);
    free(src_text);
    assert_int_equal(adapt(r1, src, HERALD__V1__PLATFORM__PLATFORM_LINKEDIN, 0, &b, NULL), 0);
    assert_string_equal(b->post->post_id, p->post_id); /* replay */
    msg_free(a);
    msg_free(b);
    herald_status st;
    herald_status_init(&st);
    assert_int_equal(adapt(rid(), src, HERALD__V1__PLATFORM__PLATFORM_X, 0, NULL, &st), 3);
    assert_true(st_violation(&st, "platform"));
    assert_int_equal(adapt(rid(), src, 0, 0, NULL, &st), 3);
    assert_int_equal(adapt(rid(), "00000000-0000-4000-8000-000000000000",
                           HERALD__V1__PLATFORM__PLATFORM_THREADS, 0, NULL, &st),
                     5);
    assert_int_equal(transition("RejectPost", rid(), other, "no", 0, NULL, NULL), 0);
    assert_int_equal(adapt(rid(), other, HERALD__V1__PLATFORM__PLATFORM_THREADS, 0, NULL, &st), 9);
    herald_status_fini(&st);
}

/* ---------------------------------------------------------------- GenerateReply */

static char *insert_opportunity(const char *profile, const char *ext, const char *text,
                                const char *expire)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, profile);
    db_param_text(&p, ext);
    db_param_text(&p, text);
    db_param_text(&p, expire);
    if (db_run(g_db, 10000, "test_opportunity",
               "INSERT INTO reply_opportunities (profile_id, platform, external_post_id, "
               "author_id, text, tier, expire_time) VALUES ($1, 'x', $2, 'author-1', $3, "
               "'micro', now() + $4::interval) RETURNING opportunity_id::text",
               &p, &res) != ST_OK)
        fail_msg("insert opportunity: %s", db_errmsg(g_db));
    char *id = xstrdup(db_res_text(res, 0, 0));
    db_res_free(res);
    return id;
}

static int gen_reply(const char *opp, int provider, Herald__V1__GenerateReplyResponse **out,
                     herald_status *st)
{
    Herald__V1__GenerateReplyRequest r = HERALD__V1__GENERATE_REPLY_REQUEST__INIT;
    r.request_id = (char *)rid();
    r.opportunity_id = (char *)opp;
    r.provider = provider;
    return cs_call("GenerateReply", &r, &herald__v1__generate_reply_response__descriptor, 10000,
                   out, st);
}

/* relevance of text to one topic, as replyopp measures it */
static double relevance(const char *name, const char *desc, const char *text)
{
    replyopp_topic t = { .name = name, .description = desc };
    replyopp_topics *ts = NULL;
    assert_int_equal(replyopp_topics_new(&t, 1, &ts), ST_OK);
    double r = replyopp_relevance(ts, text, strlen(text));
    replyopp_topics_free(ts);
    return r;
}

static void generate_reply(void **state)
{
    (void)state;
    make_profile("rp-p", HERALD__V1__PLATFORM__PLATFORM_X, HERALD__V1__PROVIDER__PROVIDER_BUILTIN,
                 false, 0, 0, NULL, 0);
    char *opp = insert_opportunity("rp-p", "ext-1",
                                   "Honestly I keep cutting my sleep to 5 hours to get more done "
                                   "and I feel fine. Is that really a problem long term?",
                                   "2 hours");
    Herald__V1__GenerateReplyResponse *r = NULL;
    herald_status st;
    herald_status_init(&st);
    assert_int_equal(gen_reply(opp, 0, &r, &st), 0);
    const Herald__V1__Post *p = r->post;
    assert_int_equal(p->kind, HERALD__V1__POST_KIND__POST_KIND_REPLY);
    assert_string_equal(p->reply_opportunity_id, opp);
    assert_string_equal(p->reply_to_external_id, "ext-1");
    assert_string_equal(p->arms->topic, "sleep");
    assert_string_equal(p->arms->content_type, "");
    assert_true(p->arms->voice_style[0] != '\0');
    assert_true(all_gates_pass(p));
    assert_true(utf8_count(p->text, strlen(p->text)) <= 280);
    double rel = relevance("Sleep", "Sleep duration, timing, light and alertness.", p->text);
    printf("reply (relevance %.2f to the target's topic): %s\n", rel, p->text);
    assert_true(rel >= 0.3);
    assert_true(uuid_ok(p->decision_id)); /* the voice style was drawn */
    assert_int_equal(sql_int("SELECT count(*) FROM decisions WHERE decision_id = $1::uuid AND "
                             "kind = 'reply' AND topic = 'sleep'",
                             p->decision_id),
                     1);
    char *ost =
        sql_text("SELECT state FROM reply_opportunities WHERE opportunity_id = $1::uuid", opp);
    assert_string_equal(ost, "drafted");
    free(ost);
    char reply_id[40];
    snprintf(reply_id, sizeof reply_id, "%s", p->post_id);
    msg_free(r);

    /* one live reply per opportunity; rejecting it reopens the opportunity */
    assert_int_equal(gen_reply(opp, 0, NULL, &st), 9);
    assert_non_null(strstr(st.message, "drafted"));
    assert_int_equal(transition("RejectPost", rid(), reply_id, "tone", 0, NULL, NULL), 0);
    ost = sql_text("SELECT state FROM reply_opportunities WHERE opportunity_id = $1::uuid", opp);
    assert_string_equal(ost, "open");
    free(ost);
    assert_int_equal(gen_reply(opp, 0, &r, &st), 0);
    assert_string_not_equal(r->post->post_id, reply_id);
    msg_free(r);

    /* another topic */
    char *opp2 = insert_opportunity("rp-p", "ext-2",
                                    "Is breakfast really the most important meal if you are "
                                    "trying to stay slim? Everyone at work swears by it.",
                                    "2 hours");
    assert_int_equal(gen_reply(opp2, 0, &r, &st), 0);
    assert_string_equal(r->post->arms->topic, "nutrition");
    printf("reply: %s\n", r->post->text);
    msg_free(r);

    char *gone = insert_opportunity("rp-p", "ext-3", "Sleep is overrated.", "-1 hour");
    assert_int_equal(gen_reply(gone, 0, NULL, &st), 9);
    char *opp3 =
        insert_opportunity("rp-p", "ext-4", "Stress at work is getting to everyone.", "2 hours");
    assert_int_equal(gen_reply(opp3, HERALD__V1__PROVIDER__PROVIDER_LLM, NULL, &st), 9);
    assert_int_equal(gen_reply("00000000-0000-4000-8000-000000000000", 0, NULL, &st), 5);
    assert_int_equal(gen_reply("bad", 0, NULL, &st), 3);
    herald_status_fini(&st);
    free(opp);
    free(opp2);
    free(opp3);
    free(gone);
}

/* ---------------------------------------------------------------- GenerateBatch */

static int gen_batch(const char *request_id, const char *profile, int count, bool schedule,
                     int provider, Herald__V1__GenerateBatchResponse **out, herald_status *st)
{
    Herald__V1__GenerateBatchRequest r = HERALD__V1__GENERATE_BATCH_REQUEST__INIT;
    r.request_id = (char *)request_id;
    r.profile_id = (char *)profile;
    r.count = count;
    r.schedule = schedule;
    r.provider = provider;
    return cs_call("GenerateBatch", &r, &herald__v1__generate_batch_response__descriptor, 30000,
                   out, st);
}

static void generate_batch(void **state)
{
    (void)state;
    make_profile("bt-p", HERALD__V1__PLATFORM__PLATFORM_BLUESKY,
                 HERALD__V1__PROVIDER__PROVIDER_AUTO, true, 0, 0, NULL, 0);
    char r1[40];
    snprintf(r1, sizeof r1, "%s", rid());
    Herald__V1__GenerateBatchResponse *a = NULL, *b = NULL;
    assert_int_equal(gen_batch(r1, "bt-p", 5, false, 0, &a, NULL), 0);
    assert_int_equal(a->n_posts, 5);
    assert_int_equal(a->n_failures, 0);
    for (size_t i = 0; i < a->n_posts; i++) {
        assert_int_equal(a->posts[i]->state, HERALD__V1__POST_STATE__POST_STATE_APPROVED);
        assert_int_equal(a->posts[i]->platform, HERALD__V1__PLATFORM__PLATFORM_BLUESKY);
        assert_int_equal(a->posts[i]->provider, HERALD__V1__PROVIDER__PROVIDER_BUILTIN);
        assert_true(all_gates_pass(a->posts[i]));
        assert_true(uuid_ok(a->posts[i]->decision_id));
    }
    assert_int_equal(gen_batch(r1, "bt-p", 5, false, 0, &b, NULL), 0);
    assert_int_equal(b->n_posts, 5);
    assert_string_equal(b->posts[4]->post_id, a->posts[4]->post_id);
    msg_free(a);
    msg_free(b);
    assert_int_equal(sql_int("SELECT count(*) FROM posts WHERE profile_id = $1", "bt-p"), 5);
    herald_status st;
    herald_status_init(&st);
    assert_int_equal(gen_batch(rid(), "bt-p", 0, false, 0, NULL, &st), 3);
    assert_true(st_violation(&st, "count"));
    assert_int_equal(gen_batch(rid(), "bt-p", 51, false, 0, NULL, &st), 3);
    assert_int_equal(
        gen_batch(rid(), "bt-p", 2, false, HERALD__V1__PROVIDER__PROVIDER_LLM, NULL, &st), 9);
    assert_int_equal(gen_batch(rid(), "nobody", 2, false, 0, NULL, &st), 5);
    herald_status_fini(&st);
}

/* ---------------------------------------------------------------- GenerateBatch, scheduled */

/* SchedulingService call; *resp on OK (caller frees). */
static int ss_call(const char *method, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *d, void *resp, herald_status *st)
{
    char path[128];
    herald_status local;
    herald_call_options o = { .timeout_ms = 15000 };
    ProtobufCMessage *r = NULL;
    snprintf(path, sizeof path, "/herald.v1.SchedulingService/%s", method);
    if (st == NULL)
        herald_status_init(&local);
    int code = herald_call_unary(g_hd.ch, path, req, d, &o, &r, st != NULL ? st : &local);
    if (st == NULL)
        herald_status_fini(&local);
    if (resp != NULL)
        *(ProtobufCMessage **)resp = r;
    else if (r != NULL)
        protobuf_c_message_free_unpacked(r, NULL);
    return code;
}

/* The batch test's policy: at most 2 posts an hour and 5 a local day, 50
 * minutes apart, nothing between 21:00 and 08:00 local. */
#define BS_PER_HOUR 2
#define BS_PER_DAY 5
#define BS_GAP_S (50 * 60)
#define BS_QUIET_FROM (21 * 60)
#define BS_QUIET_TO (8 * 60)
#define BS_TZ "Asia/Tokyo" /* UTC+9 all year: local time is t + 9 h */
#define BS_OFFSET_S (9 * 3600)

static void bs_profile(const char *id, bool auto_approve, int per_hour)
{
    make_profile(id, HERALD__V1__PLATFORM__PLATFORM_X, HERALD__V1__PROVIDER__PROVIDER_BUILTIN,
                 auto_approve, 0, 0, NULL, 0);
    Herald__V1__UpdateProfileRequest u = HERALD__V1__UPDATE_PROFILE_REQUEST__INIT;
    Herald__V1__Profile up = HERALD__V1__PROFILE__INIT;
    Google__Protobuf__FieldMask m = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    char *paths[] = { (char *)"time_zone" };
    u.request_id = (char *)rid();
    u.profile = &up;
    up.profile_id = (char *)id;
    up.time_zone = (char *)BS_TZ;
    m.paths = paths;
    m.n_paths = 1;
    u.update_mask = &m;
    assert_int_equal(ops_call(&g_hd, "UpdateProfile", &u.base, &herald__v1__profile__descriptor,
                              10000, NULL, NULL),
                     0);

    Herald__V1__SetPostingPolicyRequest sp = HERALD__V1__SET_POSTING_POLICY_REQUEST__INIT;
    Herald__V1__PostingPolicy pol = HERALD__V1__POSTING_POLICY__INIT;
    Herald__V1__QuietHours q = HERALD__V1__QUIET_HOURS__INIT;
    Herald__V1__QuietHours *qs[] = { &q };
    Google__Protobuf__FieldMask pm = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    char *ppaths[] = { (char *)"max_posts_per_hour", (char *)"max_posts_per_day",
                       (char *)"min_gap_minutes", (char *)"quiet_hours" };
    q.start_minute_of_day = BS_QUIET_FROM;
    q.end_minute_of_day = BS_QUIET_TO;
    pol.max_posts_per_hour = per_hour;
    pol.max_posts_per_day = BS_PER_DAY;
    pol.min_gap_minutes = BS_GAP_S / 60;
    pol.quiet_hours = qs;
    pol.n_quiet_hours = 1;
    pm.paths = ppaths;
    pm.n_paths = 4;
    sp.request_id = (char *)rid();
    sp.profile_id = (char *)id;
    sp.policy = &pol;
    sp.update_mask = &pm;
    herald_status st;
    herald_status_init(&st);
    int code =
        ss_call("SetPostingPolicy", &sp.base, &herald__v1__posting_policy__descriptor, NULL, &st);
    if (code != 0)
        fail_msg("SetPostingPolicy %s: %d %s", id, code, st.message);
    herald_status_fini(&st);
}

static int gen_batch_sched(const char *request_id, const char *profile, int count,
                           Herald__V1__GenerateBatchResponse **out, herald_status *st)
{
    Herald__V1__GenerateBatchRequest r = HERALD__V1__GENERATE_BATCH_REQUEST__INIT;
    r.request_id = (char *)request_id;
    r.profile_id = (char *)profile;
    r.count = count;
    r.schedule = true;
    return cs_call("GenerateBatch", &r, &herald__v1__generate_batch_response__descriptor, 60000,
                   out, st);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Checks times t[0..n) (Unix seconds, any order) against the batch
 * policy, computed here from the rules' definitions (not with policy.c). */
static void bs_check_policy(int64_t *t, size_t n)
{
    qsort(t, n, sizeof *t, cmp_i64);
    for (size_t i = 0; i < n; i++) {
        int64_t local = t[i] + BS_OFFSET_S;
        int minute = (int)((local % 86400) / 60);
        if (minute >= BS_QUIET_FROM || minute < BS_QUIET_TO)
            fail_msg("post at %lld is inside quiet hours (local %02d:%02d)", (long long)t[i],
                     minute / 60, minute % 60);
        if (i > 0 && t[i] - t[i - 1] < BS_GAP_S)
            fail_msg("posts at %lld and %lld are %lld s apart (gap %d s)", (long long)t[i - 1],
                     (long long)t[i], (long long)(t[i] - t[i - 1]), BS_GAP_S);
        int in_hour = 0, in_day = 0;
        for (size_t k = 0; k < n; k++) {
            /* the rolling hours [p, p + 3600) that contain t[i] */
            if (t[k] <= t[i] && t[i] < t[k] + 3600) {
                int w = 0;
                for (size_t j = 0; j < n; j++)
                    w += t[j] >= t[k] && t[j] < t[k] + 3600;
                if (w > in_hour)
                    in_hour = w;
            }
            in_day += (t[k] + BS_OFFSET_S) / 86400 == local / 86400;
        }
        if (in_hour > BS_PER_HOUR || in_day > BS_PER_DAY)
            fail_msg("post at %lld: %d in a rolling hour (max %d), %d in its local day (max %d)",
                     (long long)t[i], in_hour, BS_PER_HOUR, in_day, BS_PER_DAY);
    }
}

static void generate_batch_scheduled(void **state)
{
    (void)state;
    herald_status st;
    herald_status_init(&st);
    bs_profile("bs-p", true, BS_PER_HOUR);

    /* a post already scheduled tomorrow 19:30 local, the prior's peak: the
     * batch must keep clear of it */
    Herald__V1__GenerateDraftRequest dr;
    Herald__V1__GenerateDraftResponse *d = NULL;
    draft_req(&dr, "bs-p", NULL, NULL, NULL);
    assert_int_equal(gen_draft(&dr, &d), 0);
    assert_int_equal(d->post->state, HERALD__V1__POST_STATE__POST_STATE_APPROVED);
    int64_t now_s = (int64_t)time(NULL);
    int64_t local_day = (now_s + BS_OFFSET_S) / 86400 + 1;
    int64_t fixed_s = local_day * 86400 + 19 * 3600 + 30 * 60 - BS_OFFSET_S;
    Herald__V1__SchedulePostRequest spr = HERALD__V1__SCHEDULE_POST_REQUEST__INIT;
    Google__Protobuf__Timestamp when = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    when.seconds = fixed_s;
    spr.request_id = (char *)rid();
    spr.post_id = d->post->post_id;
    spr.when_case = HERALD__V1__SCHEDULE_POST_REQUEST__WHEN_PUBLISH_TIME;
    spr.publish_time = &when;
    assert_int_equal(ss_call("SchedulePost", &spr.base,
                             &herald__v1__schedule_post_response__descriptor, NULL, &st),
                     0);
    char fixed_id[40];
    snprintf(fixed_id, sizeof fixed_id, "%s", d->post->post_id);
    msg_free(d);

    enum { N = 8 };
    char r1[40];
    snprintf(r1, sizeof r1, "%s", rid());
    Herald__V1__GenerateBatchResponse *a = NULL, *b = NULL;
    int64_t t0 = now_mono_ms();
    assert_int_equal(gen_batch_sched(r1, "bs-p", N, &a, &st), 0);
    int64_t batch_ms = now_mono_ms() - t0;
    assert_int_equal(a->n_failures, 0);
    assert_int_equal(a->n_posts, N);
    int64_t times[N + 1];
    for (size_t i = 0; i < a->n_posts; i++) {
        const Herald__V1__Post *p = a->posts[i];
        assert_int_equal(p->state, HERALD__V1__POST_STATE__POST_STATE_SCHEDULED);
        assert_non_null(p->schedule_time);
        assert_true(all_gates_pass(p));
        assert_true(uuid_ok(p->timing_decision_id));
        times[i] = p->schedule_time->seconds;
        assert_true(times[i] >= now_s - 5);      /* upcoming */
        assert_int_equal(times[i] % 900, 0);     /* a quarter-hour slot */
        assert_int_not_equal(times[i], fixed_s); /* no collision */
        if (i > 0)                               /* in slot order */
            assert_true(times[i] > times[i - 1]);
        /* its hour of week, in the profile's zone */
        assert_int_equal(p->hour_of_week_opt_case, HERALD__V1__POST__HOUR_OF_WEEK_OPT_HOUR_OF_WEEK);
        int64_t local = times[i] + BS_OFFSET_S;
        int how = (int)((((local / 86400) + 3) % 7) * 24 + (local % 86400) / 3600);
        assert_int_equal(p->hour_of_week, how);
    }
    times[N] = fixed_s;
    bs_check_policy(times, N + 1);
    printf("GenerateBatch schedule=true: %d drafts scheduled in %lld ms, %lld..%lld (local %s), "
           "clear of the post at %lld\n",
           N, (long long)batch_ms, (long long)a->posts[0]->schedule_time->seconds,
           (long long)a->posts[N - 1]->schedule_time->seconds, BS_TZ, (long long)fixed_s);
    /* one timing decision per scheduled post, linked to it */
    assert_int_equal(sql_int("SELECT count(*) FROM posts p JOIN decisions d ON d.decision_id = "
                             "p.slot_decision_id WHERE p.profile_id = $1 AND d.kind = 'timing'",
                             "bs-p"),
                     N);

    /* each draft was written for its slot (the content decision's target
     * time, which sets its hour-of-week arm) */
    assert_int_equal(sql_int("SELECT count(*) FROM posts p JOIN decisions d ON d.decision_id = "
                             "p.decision_id WHERE p.profile_id = $1 AND p.state = 'scheduled' "
                             "AND d.target_time = p.schedule_time",
                             "bs-p"),
                     N);

    /* the same request replays: same posts and times, nothing new stored */
    int64_t stored = sql_int("SELECT count(*) FROM posts WHERE profile_id = $1", "bs-p");
    assert_int_equal(gen_batch_sched(r1, "bs-p", N, &b, &st), 0);
    assert_int_equal(b->n_posts, N);
    for (size_t i = 0; i < N; i++) {
        assert_string_equal(b->posts[i]->post_id, a->posts[i]->post_id);
        assert_int_equal(b->posts[i]->schedule_time->seconds, a->posts[i]->schedule_time->seconds);
    }
    assert_int_equal(sql_int("SELECT count(*) FROM posts WHERE profile_id = $1", "bs-p"), stored);
    msg_free(b);
    b = NULL;

    /* a second batch keeps clear of the first and of the fixed post */
    assert_int_equal(gen_batch_sched(rid(), "bs-p", 3, &b, &st), 0);
    assert_int_equal(b->n_posts, 3);
    int64_t all[N + 4];
    size_t n_all = 0;
    for (size_t i = 0; i < N; i++)
        all[n_all++] = a->posts[i]->schedule_time->seconds;
    for (size_t i = 0; i < b->n_posts; i++)
        all[n_all++] = b->posts[i]->schedule_time->seconds;
    all[n_all++] = fixed_s;
    bs_check_policy(all, n_all);
    msg_free(b);

    /* due posts are claimable: move the first batch back (same spacing)
     * until its last post was due a minute ago, then an executor claims
     * exactly those, oldest first (the second batch and the fixed post are
     * still ahead) */
    char shift[64];
    snprintf(shift, sizeof shift, "%lld",
             (long long)(a->posts[N - 1]->schedule_time->seconds - (int64_t)time(NULL) + 60));
    for (size_t i = 0; i < N; i++) {
        db_params q;
        db_params_init(&q);
        db_param_text(&q, a->posts[i]->post_id);
        db_param_text(&q, shift);
        assert_int_equal(db_run(g_db, 10000, "test_shift",
                                "UPDATE posts SET schedule_time = schedule_time - $2::bigint * "
                                "interval '1 second' WHERE post_id = $1::uuid",
                                &q, NULL),
                         ST_OK);
    }
    Herald__V1__ClaimDueWorkRequest cr = HERALD__V1__CLAIM_DUE_WORK_REQUEST__INIT;
    Herald__V1__ClaimDueWorkResponse *cw = NULL;
    cr.request_id = (char *)rid();
    cr.executor_id = (char *)"batch-test-executor";
    cr.profile_id = (char *)"bs-p";
    cr.limit = 50;
    cr.lease_seconds = 60;
    assert_int_equal(ss_call("ClaimDueWork", &cr.base,
                             &herald__v1__claim_due_work_response__descriptor, &cw, &st),
                     0);
    assert_int_equal(cw->n_items, N);
    for (size_t i = 0; i < cw->n_items; i++) {
        assert_string_equal(cw->items[i]->post->post_id, a->posts[i]->post_id);
        assert_string_equal(cw->items[i]->lease->post_id, a->posts[i]->post_id);
        assert_int_equal(cw->items[i]->post->state, HERALD__V1__POST_STATE__POST_STATE_PUBLISHING);
    }
    msg_free(cw);
    msg_free(a);

    /* refusals: paused, not auto-approving; a policy that allows nothing
     * gives failures and stores nothing */
    bs_profile("bs-review", false, BS_PER_HOUR);
    assert_int_equal(gen_batch_sched(rid(), "bs-review", 2, NULL, &st), 9);
    assert_string_equal(reason_of(&st), "PROFILE_NOT_AUTO_APPROVE");
    bs_profile("bs-paused", true, BS_PER_HOUR);
    Herald__V1__PauseProfileRequest pr = HERALD__V1__PAUSE_PROFILE_REQUEST__INIT;
    pr.request_id = (char *)rid();
    pr.profile_id = (char *)"bs-paused";
    pr.reason = (char *)"holiday";
    assert_int_equal(ops_call(&g_hd, "PauseProfile", &pr.base, &herald__v1__profile__descriptor,
                              10000, NULL, NULL),
                     0);
    assert_int_equal(gen_batch_sched(rid(), "bs-paused", 2, NULL, &st), 9);
    assert_string_equal(reason_of(&st), "PROFILE_PAUSED");
    bs_profile("bs-none", true, 0); /* 0 posts an hour stops posting */
    Herald__V1__GenerateBatchResponse *c = NULL;
    assert_int_equal(gen_batch_sched(rid(), "bs-none", 3, &c, &st), 0);
    assert_int_equal(c->n_posts, 0);
    assert_int_equal(c->n_failures, 3);
    assert_non_null(strstr(c->failures[2]->reason, "no slot"));
    msg_free(c);
    assert_int_equal(sql_int("SELECT count(*) FROM posts WHERE profile_id = $1 OR profile_id = "
                             "'bs-paused' OR profile_id = 'bs-review'",
                             "bs-none"),
                     0);
    herald_status_fini(&st);
}

/* ---------------------------------------------------------------- pre-generation */

static void pregen_fills_buffer(void **state)
{
    (void)state;
    make_profile("pg-p", HERALD__V1__PLATFORM__PLATFORM_THREADS,
                 HERALD__V1__PROVIDER__PROVIDER_AUTO, true, 24, 3, NULL, 0);
    /* a paused profile with a buffer gets nothing */
    make_profile("pg-paused", HERALD__V1__PLATFORM__PLATFORM_X,
                 HERALD__V1__PROVIDER__PROVIDER_BUILTIN, true, 24, 0, NULL, 0);
    Herald__V1__PauseProfileRequest pr = HERALD__V1__PAUSE_PROFILE_REQUEST__INIT;
    pr.request_id = (char *)rid();
    pr.profile_id = (char *)"pg-paused";
    pr.reason = (char *)"holiday";
    assert_int_equal(ops_call(&g_hd, "PauseProfile", &pr.base, &herald__v1__profile__descriptor,
                              10000, NULL, NULL),
                     0);
    sql_exec("UPDATE profiles SET draft_buffer_size = 2 WHERE profile_id = $1", "pg-paused");

    const char *count_sql = "SELECT count(*) FROM posts WHERE profile_id = $1 AND kind = "
                            "'original' AND state = 'approved'";
    int64_t t0 = now_mono_ms(), n = 0;
    while (now_mono_ms() - t0 < 40000 && (n = sql_int(count_sql, "pg-p")) < 3)
        hd_sleep_ms(200);
    printf("pre-generation filled pg-p's buffer (3 approved drafts) in %lld ms\n",
           (long long)(now_mono_ms() - t0));
    assert_int_equal(n, 3);
    hd_sleep_ms(6000); /* at least one more run: no overfill */
    assert_int_equal(sql_int(count_sql, "pg-p"), 3);
    assert_int_equal(sql_int("SELECT count(*) FROM posts WHERE profile_id = $1", "pg-paused"), 0);
    /* the job's drafts log their decisions and pass every gate */
    assert_int_equal(sql_int("SELECT count(*) FROM posts p JOIN decisions d USING (decision_id) "
                             "WHERE p.profile_id = $1",
                             "pg-p"),
                     3);
    assert_int_equal(sql_int("SELECT count(*) FROM gate_results g JOIN posts p USING (post_id) "
                             "WHERE p.profile_id = $1 AND g.verdict = 'pass'",
                             "pg-p"),
                     21);
    /* three distinct topics: the 24 h cooldown */
    assert_int_equal(
        sql_int("SELECT count(DISTINCT topic) FROM posts WHERE profile_id = $1", "pg-p"), 3);
}

/* ---------------------------------------------------------------- the LLM path */

#define L_OK1                                                                                   \
    "A popular claim says the body adapts to six hours of sleep. In a lab study, 14 days of 6 " \
    "hours in bed left attention lapses matching up to 2 nights without sleep (Van Dongen et "  \
    "al., Sleep, 2003)."
#define L_OK2                                                                                   \
    "Screens at night are often called harmless. Reading an e-reader before bed delayed sleep " \
    "onset by about 10 minutes and cut evening melatonin by roughly 55% versus a printed book " \
    "(Chang et al., PNAS, 2015)."
#define L_BAD                                                                                   \
    "Sleep is the ultimate game-changer for recovery: short sleepers had a 12% higher risk of " \
    "dying during follow-up than people sleeping 7 to 8 hours. #sleep"

/* GenerateDraft myth_busting/truth_seeker/sleep for profile with provider;
 * *ms gets the call's duration. */
static int llm_draft(const char *profile, int provider, int64_t timeout_ms,
                     Herald__V1__GenerateDraftResponse **out, herald_status *st, int64_t *ms)
{
    Herald__V1__GenerateDraftRequest req;
    draft_req(&req, profile, "myth_busting", "truth_seeker", "sleep");
    req.provider = provider;
    int64_t t0 = now_mono_ms();
    int code = cs_call("GenerateDraft", &req, &herald__v1__generate_draft_response__descriptor,
                       timeout_ms, out, st);
    if (ms != NULL)
        *ms = now_mono_ms() - t0;
    return code;
}

static int64_t retry_delay_ms(const herald_status *st)
{
    for (size_t i = 0; i < st->n_details; i++) {
        if (strstr(st->details[i].type_url, "google.rpc.RetryInfo") == NULL)
            continue;
        Google__Rpc__RetryInfo *ri =
            google__rpc__retry_info__unpack(NULL, st->details[i].value_len, st->details[i].value);
        int64_t ms = -1;
        if (ri != NULL && ri->retry_delay != NULL)
            ms = ri->retry_delay->seconds * 1000 + ri->retry_delay->nanos / 1000000;
        if (ri != NULL)
            google__rpc__retry_info__free_unpacked(ri, NULL);
        return ms;
    }
    return -1;
}

static void llm_success(void **state)
{
    (void)state;
    make_profile("llm-ok", HERALD__V1__PLATFORM__PLATFORM_X, HERALD__V1__PROVIDER__PROVIDER_AUTO,
                 false, 0, 0, NULL, 0);
    int n0 = fake_llm_requests(g_llm);
    fake_llm_reply ok = { .content = L_OK1 };
    fake_llm_push(g_llm, &ok);
    Herald__V1__GenerateDraftResponse *r = NULL;
    assert_int_equal(llm_draft("llm-ok", 0, 10000, &r, NULL, NULL), 0);
    assert_int_equal(r->post->provider, HERALD__V1__PROVIDER__PROVIDER_LLM);
    assert_string_equal(r->post->llm_model, "fake-model");
    assert_string_equal(r->post->text, L_OK1);
    assert_true(all_gates_pass(r->post));
    assert_int_equal(r->n_attempts, 1);
    assert_int_equal(r->attempts[0]->provider, HERALD__V1__PROVIDER__PROVIDER_LLM);
    assert_true(r->attempts[0]->accepted);
    assert_false(r->fallback);
    assert_int_equal(fake_llm_requests(g_llm), n0 + 1);
    /* the prompt came from the catalog entries and the topic's facts */
    char *body = fake_llm_request_body(g_llm, n0 + 1);
    assert_non_null(body);
    assert_non_null(strstr(body, "Truth seeker"));
    assert_non_null(strstr(body, "Cappuccio"));
    free(body);
    /* replay: no second LLM call */
    msg_free(r);
}

static void llm_rate_limited(void **state)
{
    (void)state;
    make_profile("llm-429", HERALD__V1__PLATFORM__PLATFORM_X, HERALD__V1__PROVIDER__PROVIDER_LLM,
                 false, 0, 0, NULL, 0);
    fake_llm_reply busy = { .status = 429, .headers = "Retry-After: 3\r\n" };
    fake_llm_set_default(g_llm, &busy);
    herald_status st;
    herald_status_init(&st);
    int64_t ms = 0;
    assert_int_equal(llm_draft("llm-429", 0, 2000, NULL, &st, &ms), 14);
    int64_t delay = retry_delay_ms(&st);
    printf("429 with Retry-After: 3 -> UNAVAILABLE in %lld ms, RetryInfo %lld ms, reason %s\n",
           (long long)ms, (long long)delay, reason_of(&st));
    assert_true(delay >= 2000);
    assert_string_equal(reason_of(&st), "LLM_RATE_LIMITED");
    assert_true(ms < 2100);
    /* AUTO falls back instead */
    Herald__V1__GenerateDraftResponse *r = NULL;
    assert_int_equal(llm_draft("llm-429", HERALD__V1__PROVIDER__PROVIDER_AUTO, 3000, &r, &st, NULL),
                     0);
    assert_true(r->fallback);
    assert_int_equal(r->n_attempts, 2);
    assert_false(r->attempts[0]->accepted);
    assert_int_equal(r->attempts[1]->provider, HERALD__V1__PROVIDER__PROVIDER_BUILTIN);
    assert_int_equal(r->post->provider, HERALD__V1__PROVIDER__PROVIDER_BUILTIN);
    msg_free(r);
    fake_llm_reply dflt = { .status = 503 };
    fake_llm_set_default(g_llm, &dflt);
    herald_status_fini(&st);
}

static void llm_500_then_ok(void **state)
{
    (void)state;
    make_profile("llm-500", HERALD__V1__PLATFORM__PLATFORM_X, HERALD__V1__PROVIDER__PROVIDER_LLM,
                 false, 0, 0, NULL, 0);
    int n0 = fake_llm_requests(g_llm);
    fake_llm_reply e500 = { .status = 500 };
    fake_llm_reply ok = { .content = L_OK2 };
    fake_llm_push(g_llm, &e500);
    fake_llm_push(g_llm, &ok);
    Herald__V1__GenerateDraftResponse *r = NULL;
    herald_status st;
    herald_status_init(&st);
    int code = llm_draft("llm-500", 0, 10000, &r, &st, NULL);
    if (code != 0)
        fail_msg("500 then 200: %d %s", code, st.message);
    assert_int_equal(r->post->provider, HERALD__V1__PROVIDER__PROVIDER_LLM);
    assert_string_equal(r->post->text, L_OK2);
    assert_int_equal(fake_llm_requests(g_llm), n0 + 2);
    msg_free(r);
    herald_status_fini(&st);
}

static void llm_deadline(void **state)
{
    (void)state;
    make_profile("llm-slow", HERALD__V1__PLATFORM__PLATFORM_X, HERALD__V1__PROVIDER__PROVIDER_LLM,
                 false, 0, 0, NULL, 0);
    int aborts0 = fake_llm_aborts(g_llm);
    fake_llm_reply slow = { .content = L_OK1, .delay_ms = 5000 };
    fake_llm_push(g_llm, &slow);
    herald_status st;
    herald_status_init(&st);
    int64_t t0 = now_mono_ms(), ms = 0;
    assert_int_equal(llm_draft("llm-slow", 0, 1500, NULL, &st, &ms), 4);
    int64_t closed = fake_llm_wait_aborts(g_llm, aborts0 + 1, 5000);
    assert_true(closed > 0);
    printf("LLM slower than the deadline: DEADLINE_EXCEEDED after %lld ms (deadline 1500); the "
           "fake saw the connection closed at +%lld ms\n",
           (long long)ms, (long long)(closed - t0));
    assert_true(ms <= 1600);
    assert_true(closed - t0 <= 1600);
    /* AUTO keeps room for the built-in fallback inside the deadline */
    fake_llm_push(g_llm, &slow);
    Herald__V1__GenerateDraftResponse *r = NULL;
    assert_int_equal(llm_draft("llm-slow", HERALD__V1__PROVIDER__PROVIDER_AUTO, 2500, &r, &st, &ms),
                     0);
    assert_true(r->fallback);
    assert_int_equal(r->post->provider, HERALD__V1__PROVIDER__PROVIDER_BUILTIN);
    printf("AUTO with a slow LLM: built-in fallback in %lld ms (deadline 2500): %s\n",
           (long long)ms, r->attempts[0]->reason);
    assert_true(ms < 2500);
    msg_free(r);
    assert_true(fake_llm_wait_aborts(g_llm, aborts0 + 2, 5000) > 0);
    herald_status_fini(&st);
}

static void llm_huge_and_malformed(void **state)
{
    (void)state;
    make_profile("llm-bad", HERALD__V1__PLATFORM__PLATFORM_X, HERALD__V1__PROVIDER__PROVIDER_LLM,
                 false, 0, 0, NULL, 0);
    herald_status st;
    herald_status_init(&st);
    long rss0 = rss_kb(g_hd.pid);
    fake_llm_reply huge = { .filler_bytes = (size_t)20 << 20 };
    fake_llm_push(g_llm, &huge);
    assert_int_equal(llm_draft("llm-bad", 0, 10000, NULL, &st, NULL), 13);
    assert_string_equal(reason_of(&st), "LLM_RESPONSE_TOO_LARGE");
    long rss1 = rss_kb(g_hd.pid);
    printf("20 MiB LLM body: INTERNAL (%s); heraldd RSS %ld -> %ld kB\n", reason_of(&st), rss0,
           rss1);
    assert_true(rss1 - rss0 < 20 * 1024);

    fake_llm_reply bad = { .body = "{\"choices\": [ {\"message\": {\"content\": oops" };
    fake_llm_push(g_llm, &bad);
    assert_int_equal(llm_draft("llm-bad", 0, 10000, NULL, &st, NULL), 13);
    assert_string_equal(reason_of(&st), "LLM_BAD_RESPONSE");
    assert_int_equal(sql_int("SELECT count(*) FROM posts WHERE profile_id = $1", "llm-bad"), 0);
    herald_status_fini(&st);
}

static void llm_gate_failure(void **state)
{
    (void)state;
    make_profile("llm-gate", HERALD__V1__PLATFORM__PLATFORM_X, HERALD__V1__PROVIDER__PROVIDER_AUTO,
                 false, 0, 0, NULL, 0);
    fake_llm_reply bad = { .content = L_BAD };
    fake_llm_push(g_llm, &bad);
    Herald__V1__GenerateDraftResponse *r = NULL;
    herald_status st;
    herald_status_init(&st);
    assert_int_equal(llm_draft("llm-gate", 0, 10000, &r, &st, NULL), 0);
    assert_true(r->fallback);
    assert_int_equal(r->n_attempts, 2);
    assert_int_equal(r->attempts[0]->provider, HERALD__V1__PROVIDER__PROVIDER_LLM);
    assert_false(r->attempts[0]->accepted);
    assert_non_null(strstr(r->attempts[0]->reason, "GATE_HASHTAGS"));
    assert_non_null(strstr(r->attempts[0]->reason, "GATE_BANNED_PHRASES"));
    assert_true(r->attempts[1]->accepted);
    assert_int_equal(r->post->provider, HERALD__V1__PROVIDER__PROVIDER_BUILTIN);
    assert_true(all_gates_pass(r->post));
    printf("LLM text failing gates -> built-in fallback; attempt 1: %s\n", r->attempts[0]->reason);
    msg_free(r);
    /* explicit PROVIDER_LLM does not fall back */
    fake_llm_push(g_llm, &bad);
    assert_int_equal(
        llm_draft("llm-gate", HERALD__V1__PROVIDER__PROVIDER_LLM, 10000, NULL, &st, NULL), 9);
    assert_non_null(strstr(st.message, "GATE_HASHTAGS"));
    assert_int_equal(sql_int("SELECT count(*) FROM posts WHERE profile_id = $1", "llm-gate"), 1);
    herald_status_fini(&st);
}

/* ---------------------------------------------------------------- 20 LLM calls in flight */

#include "test_catalog_seed.h"

#include "generator.h"

enum { INFLIGHT = 20 };

typedef struct inflight_call {
    pthread_t th;
    const char *topic;
    int code;
    int provider;
    int64_t ms;
} inflight_call;

static void *inflight_main(void *arg)
{
    inflight_call *c = arg;
    Herald__V1__GenerateDraftRequest req;
    Herald__V1__GenerateDraftResponse *r = NULL;
    char rb[40];
    rid_make(rb, 9, (unsigned)(uintptr_t)arg & 0xffffff);
    herald__v1__generate_draft_request__init(&req);
    req.request_id = rb;
    req.profile_id = (char *)"llm-load";
    req.content_type = (char *)"research_breakdown";
    req.voice_style = (char *)"research_enthusiast";
    req.topic = (char *)c->topic;
    req.provider = HERALD__V1__PROVIDER__PROVIDER_LLM;
    int64_t t0 = now_mono_ms();
    c->code = cs_call("GenerateDraft", &req, &herald__v1__generate_draft_response__descriptor,
                      20000, &r, NULL);
    c->ms = now_mono_ms() - t0;
    c->provider = r != NULL ? (int)r->post->provider : 0;
    msg_free(r);
    return NULL;
}

static void llm_inflight_stays_fast(void **state)
{
    (void)state;
    make_profile("llm-load", HERALD__V1__PLATFORM__PLATFORM_X, HERALD__V1__PROVIDER__PROVIDER_LLM,
                 false, 0, 0, NULL, 0);
    /* 20 distinct texts that pass every gate (the built-in generator, here,
     * as the "LLM"), each delayed 5 s by the fake */
    catalog *cat = seed_catalog_load();
    assert_non_null(cat);
    textsim_index *ix = textsim_index_new();
    inflight_call calls[INFLIGHT];
    char topics[INFLIGHT][65];
    for (int i = 0; i < INFLIGHT; i++) {
        generator_request gr = { .content_type = "research_breakdown",
                                 .voice_style = "research_enthusiast",
                                 .topic = catalog_entry_at(cat, CATALOG_TOPIC, (size_t)i % 11)->key,
                                 .platform = PLATFORM_X,
                                 .seed = 4242 + (uint64_t)i,
                                 .recent = ix,
                                 .since_ms = INT64_MIN,
                                 .max_similarity = 0.5 };
        generator_draft d;
        char err[160];
        assert_int_equal(generator_compose(cat, &gr, &d, err, sizeof err), ST_OK);
        char id[16];
        snprintf(id, sizeof id, "f%d", i);
        assert_int_equal(textsim_index_add(ix, id, d.text, d.len, now_real_ms()), ST_OK);
        fake_llm_reply rep = { .content = d.text, .delay_ms = 5000 };
        fake_llm_push(g_llm, &rep);
        generator_draft_fini(&d);
        snprintf(topics[i], sizeof topics[i], "%s", gr.topic); /* the catalog goes away */
        calls[i] = (inflight_call){ .topic = topics[i] };
    }
    textsim_index_free(ix);
    catalog_free(cat);

    int n0 = fake_llm_requests(g_llm);
    (void)n0;
    int64_t t0 = now_mono_ms();
    for (int i = 0; i < INFLIGHT; i++)
        assert_int_equal(pthread_create(&calls[i].th, NULL, inflight_main, &calls[i]), 0);
    /* wait until the fake holds all 20 */
    while (fake_llm_max_pending(g_llm) < INFLIGHT && now_mono_ms() - t0 < 4000)
        hd_sleep_ms(5);
    int pending = fake_llm_max_pending(g_llm);
    enum { N = 200 };
    double health[N], getp[N];
    Herald__V1__GetProfileRequest gp = HERALD__V1__GET_PROFILE_REQUEST__INIT;
    gp.profile_id = (char *)"llm-load";
    int64_t m0 = now_mono_ms();
    for (int i = 0; i < N; i++) {
        int64_t a = now_mono_us();
        assert_int_equal(hd_health(&g_hd, "herald.v1.ContentService"), 1);
        int64_t b = now_mono_us();
        assert_int_equal(ops_call(&g_hd, "GetProfile", &gp.base, &herald__v1__profile__descriptor,
                                  2000, NULL, NULL),
                         0);
        int64_t c = now_mono_us();
        health[i] = (double)(b - a) / 1000.0;
        getp[i] = (double)(c - b) / 1000.0;
    }
    int64_t m1 = now_mono_ms();
    for (int i = 0; i < INFLIGHT; i++)
        pthread_join(calls[i].th, NULL);
    int64_t all_ms = now_mono_ms() - t0;
    double h50 = pct(health, N, 0.50), h99 = pct(health, N, 0.99), hmax = health[N - 1];
    double g50 = pct(getp, N, 0.50), g99 = pct(getp, N, 0.99), gmax = getp[N - 1];
    printf("with %d LLM calls in flight (fake holds each 5 s; measured during %lld ms of it): "
           "Health/Check p50 %.2f ms p99 %.2f ms max %.2f ms; GetProfile p50 %.2f ms p99 %.2f ms "
           "max %.2f ms (%d samples each); all 20 GenerateDraft done in %lld ms\n",
           pending, (long long)(m1 - m0), h50, h99, hmax, g50, g99, gmax, N, (long long)all_ms);
    assert_true(pending >= INFLIGHT);
    assert_true(m1 - t0 < 5000); /* the samples were taken while the 20 were held */
    assert_true(h99 < 50.0);
    assert_true(g99 < 50.0);
    for (int i = 0; i < INFLIGHT; i++) {
        if (calls[i].code != 0)
            fail_msg("in-flight call %d: code %d", i, calls[i].code);
        assert_int_equal(calls[i].provider, HERALD__V1__PROVIDER__PROVIDER_LLM);
    }
    assert_true(all_ms < 9000); /* concurrent, not 20 x 5 s */
}

/* ---------------------------------------------------------------- 500 drafts */

static const char *const TYPES[] = { "myth_busting",        "counterintuitive_insight",
                                     "practical_tip",       "research_breakdown",
                                     "curious_observation", "story_insight" };
static const char *const STYLES[] = { "research_enthusiast",     "truth_seeker",
                                      "practical_optimizer",     "curious_investigator",
                                      "evidence_based_advocate", "storyteller" };
static const char *const TOPICS[] = {
    "brain_health", "exercise",          "gut_health", "habits",
    "heart_health", "hydration",         "longevity",  "nutrition",
    "sleep",        "social_connection", "stress"
};

static void drafts_500_pass_every_gate(void **state)
{
    (void)state;
    enum { N = 500 };
    make_profile("p500", HERALD__V1__PLATFORM__PLATFORM_X, HERALD__V1__PROVIDER__PROVIDER_BUILTIN,
                 false, 0, 0, NULL, 0);
    char **texts = xcalloc(N, sizeof *texts);
    textsim_fp *fps = xcalloc(N, sizeof *fps);
    double *ms = xcalloc(N, sizeof *ms);
    int per_pair[36] = { 0 };
    int64_t t0 = now_mono_ms();
    for (int i = 0; i < N; i++) {
        int pair = i % 36, block = i / 36;
        Herald__V1__GenerateDraftRequest req;
        Herald__V1__GenerateDraftResponse *r = NULL;
        draft_req(&req, "p500", TYPES[pair % 6], STYLES[pair / 6],
                  TOPICS[(block + pair / 12) % 11]);
        req.platform = 1 + (block + pair) % 4;
        req.seed = 1000 + (uint64_t)i; /* reproducible: the same 500 texts every run */
        req.seed_opt_case = HERALD__V1__GENERATE_DRAFT_REQUEST__SEED_OPT_SEED;
        int64_t a = now_mono_us();
        int code = gen_draft(&req, &r);
        ms[i] = (double)(now_mono_us() - a) / 1000.0;
        if (code != 0)
            fail_msg("draft %d (%s/%s): %d %s", i, req.content_type, req.voice_style, code,
                     stub_msg());
        if (!all_gates_pass(r->post))
            fail_msg("draft %d failed a gate", i);
        texts[i] = xstrdup(r->post->text);
        assert_int_equal(textsim_fp_compute(texts[i], strlen(texts[i]), &fps[i]), ST_OK);
        per_pair[pair]++;
        msg_free(r);
    }
    int64_t total = now_mono_ms() - t0;
    double worst = 0;
    int wa = 0, wb = 0;
    for (int a = 0; a < N; a++)
        for (int b = a + 1; b < N; b++) {
            double s = textsim_similarity(&fps[a], &fps[b]);
            if (s > worst) {
                worst = s;
                wa = a;
                wb = b;
            }
        }
    for (int k = 0; k < 36; k++)
        assert_true(per_pair[k] >= 13);
    double p50 = pct(ms, N, 0.5), p99 = pct(ms, N, 0.99);
    printf("500 drafts through GenerateDraft (every type x style, 11 topics, 4 platforms): all 7 "
           "gates pass; max pairwise similarity %.4f (threshold %.2f); %lld ms in total, per call "
           "p50 %.1f ms p99 %.1f ms\n",
           worst, DUP_THRESHOLD, (long long)total, p50, p99);
    if (worst >= DUP_THRESHOLD)
        fail_msg("drafts %d and %d are near-duplicates (%.3f):\n%s\n---\n%s", wa, wb, worst,
                 texts[wa], texts[wb]);
    assert_int_equal(sql_int("SELECT count(*) FROM posts WHERE profile_id = $1", "p500"), N);
    for (int i = 0; i < N; i++) {
        free(texts[i]);
        textsim_fp_fini(&fps[i]);
    }
    free(texts);
    free(fps);
    free(ms);
}

/* ---------------------------------------------------------------- shutdown */

typedef struct slow_call {
    pthread_t th;
    int code;
    int64_t ms;
} slow_call;

static void *slow_main(void *arg)
{
    slow_call *c = arg;
    c->code = llm_draft("llm-stop", 0, 30000, NULL, NULL, &c->ms);
    return NULL;
}

/* SIGTERM while an LLM call is in flight: the drain waits out its grace
 * (HERALD_SHUTDOWN_GRACE=5s), then cancels; the LLM transfer is aborted,
 * nothing is stored, the client gets an error, heraldd exits 0. Last test:
 * it stops the shared heraldd. */
static void shutdown_with_llm_in_flight(void **state)
{
    (void)state;
    make_profile("llm-stop", HERALD__V1__PLATFORM__PLATFORM_X, HERALD__V1__PROVIDER__PROVIDER_LLM,
                 false, 0, 0, NULL, 0);
    int aborts0 = fake_llm_aborts(g_llm);
    int n0 = fake_llm_requests(g_llm);
    fake_llm_reply slow = { .content = L_OK1, .delay_ms = 60000 };
    fake_llm_push(g_llm, &slow);
    slow_call c = { 0 };
    assert_int_equal(pthread_create(&c.th, NULL, slow_main, &c), 0);
    int64_t t0 = now_mono_ms();
    while (fake_llm_requests(g_llm) < n0 + 1 && now_mono_ms() - t0 < 5000)
        hd_sleep_ms(10);
    assert_int_equal(fake_llm_requests(g_llm), n0 + 1);
    int64_t s0 = now_mono_ms();
    kill(g_hd.pid, SIGTERM);
    pthread_join(c.th, NULL);
    int64_t closed = fake_llm_wait_aborts(g_llm, aborts0 + 1, 10000);
    herald_channel_close(g_hd.ch);
    g_hd.ch = NULL;
    int wst = 0;
    int64_t until = now_mono_ms() + 30000;
    while (waitpid(g_hd.pid, &wst, WNOHANG) == 0 && now_mono_ms() < until)
        hd_sleep_ms(20);
    g_stop_rc = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst);
    g_hd.pid = 0;
    printf("SIGTERM with an LLM call in flight: the call ended with code %d after %lld ms of "
           "drain, the fake saw its connection closed at +%lld ms, heraldd exited %d in %lld ms\n",
           c.code, (long long)(now_mono_ms() - s0), (long long)(closed - s0), g_stop_rc,
           (long long)(now_mono_ms() - s0));
    assert_true(c.code == 14 || c.code == 1); /* UNAVAILABLE (server cancel) or CANCELLED */
    assert_true(closed > 0);
    assert_int_equal(g_stop_rc, 0);
    assert_int_equal(sql_int("SELECT count(*) FROM posts WHERE profile_id = $1", "llm-stop"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(catalog_list_and_update),
        cmocka_unit_test(generate_draft_builtin),
        cmocka_unit_test(topic_cooldown),
        cmocka_unit_test(validate_text_table),
        cmocka_unit_test(transitions),
        cmocka_unit_test(update_draft_regates),
        cmocka_unit_test(get_and_list_posts),
        cmocka_unit_test(adapt_for_platform),
        cmocka_unit_test(generate_reply),
        cmocka_unit_test(generate_batch),
        cmocka_unit_test(generate_batch_scheduled),
        cmocka_unit_test(pregen_fills_buffer),
        cmocka_unit_test(llm_success),
        cmocka_unit_test(llm_rate_limited),
        cmocka_unit_test(llm_500_then_ok),
        cmocka_unit_test(llm_deadline),
        cmocka_unit_test(llm_huge_and_malformed),
        cmocka_unit_test(llm_gate_failure),
        cmocka_unit_test(llm_inflight_stays_fast),
        cmocka_unit_test(drafts_500_pass_every_gate),
        cmocka_unit_test(shutdown_with_llm_in_flight),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
