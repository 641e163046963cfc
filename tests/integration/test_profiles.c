/* test_profiles.c - OpsService profiles end to end (issue 4 items 6-7): a
 * real heraldd (started here, migrating its own fresh database on start)
 * driven over gRPC through the C client's typed stubs
 * (herald__v1__ops_service__* over herald_stub).
 *
 * Covers: create/get/list/update/pause/resume; validation errors with
 * BadRequest field violations (bad UTF-8, an embedded NUL sent as raw
 * bytes, lengths, ids, enums, topics); a non-canonical request (explicit
 * default values, as protobuf.js sends) still accepted; NOT_FOUND,
 * ALREADY_EXISTS, ABORTED on a stale revision; paging (complete, ordered,
 * tamper-evident tokens bound to the filters); UpdateProfile followed at
 * once by GetProfile (never stale, the cache being warm); idempotent replay
 * (same request_id: one row, byte-identical reply; other request:
 * INVALID_ARGUMENT IDEMPOTENCY_KEY_REUSED); SQL-shaped strings round-trip
 * byte for byte; secrets never returned or logged; pause/resume system
 * events (one row and one log line per change). Then heraldd's schema gate:
 * a tampered database keeps it NOT_SERVING (liveness SERVING, calls
 * UNAVAILABLE) until repaired; no DATABASE_URL: NOT_SERVING.
 *
 * Needs the services fixture (DATABASE_URL, REDIS_URL); skips (77)
 * without. Its database is herald_test_profiles_<pid>; Redis DB 7. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "migrate.h"
#include "test_db_support.h"
#include "test_profiles_support.h"

#define SECRET "hmac-key-Z3kq9-never-logged"

static hd g_hd;
static herald_stub *g_stub;
static char *g_admin, *g_url, *g_dbname, *g_redis;
static char g_dir[128];
static unsigned g_rid;

/* ---- typed calls through the stub ---- */

typedef struct got {
    Herald__V1__Profile *p;
    Herald__V1__ListProfilesResponse *l;
    int calls;
} got;

static void on_profile(const Herald__V1__Profile *m, void *d)
{
    got *g = d;
    g->calls++;
    if (m == NULL)
        return;
    size_t n = protobuf_c_message_get_packed_size(&m->base);
    uint8_t *buf = xmalloc(n + 1);
    protobuf_c_message_pack(&m->base, buf);
    g->p = herald__v1__profile__unpack(NULL, n, buf);
    free(buf);
}

static void on_list(const Herald__V1__ListProfilesResponse *m, void *d)
{
    got *g = d;
    g->calls++;
    if (m == NULL)
        return;
    size_t n = protobuf_c_message_get_packed_size(&m->base);
    uint8_t *buf = xmalloc(n + 1);
    protobuf_c_message_pack(&m->base, buf);
    g->l = herald__v1__list_profiles_response__unpack(NULL, n, buf);
    free(buf);
}

static const herald_status *last(void)
{
    return herald_stub_status(g_stub);
}

static int st_code(void)
{
    return last()->code;
}

static ProtobufCService *svc(void)
{
    return herald_stub_service(g_stub);
}

static int do_create(Herald__V1__CreateProfileRequest *req, Herald__V1__Profile **out)
{
    got g = { 0 };
    herald__v1__ops_service__create_profile(svc(), req, on_profile, &g);
    assert_int_equal(g.calls, 1);
    if (out != NULL)
        *out = g.p;
    else if (g.p != NULL)
        herald__v1__profile__free_unpacked(g.p, NULL);
    return st_code();
}

static int do_get(const char *id, Herald__V1__Profile **out)
{
    got g = { 0 };
    Herald__V1__GetProfileRequest req = HERALD__V1__GET_PROFILE_REQUEST__INIT;
    req.profile_id = (char *)id;
    herald__v1__ops_service__get_profile(svc(), &req, on_profile, &g);
    if (out != NULL)
        *out = g.p;
    else if (g.p != NULL)
        herald__v1__profile__free_unpacked(g.p, NULL);
    return st_code();
}

static int do_update(Herald__V1__UpdateProfileRequest *req, Herald__V1__Profile **out)
{
    got g = { 0 };
    herald__v1__ops_service__update_profile(svc(), req, on_profile, &g);
    if (out != NULL)
        *out = g.p;
    else if (g.p != NULL)
        herald__v1__profile__free_unpacked(g.p, NULL);
    return st_code();
}

static int do_list(Herald__V1__ListProfilesRequest *req, Herald__V1__ListProfilesResponse **out)
{
    got g = { 0 };
    herald__v1__ops_service__list_profiles(svc(), req, on_list, &g);
    *out = g.l;
    return st_code();
}

static int do_pause(const char *rid, const char *id, const char *reason, bool pause,
                    Herald__V1__Profile **out)
{
    got g = { 0 };
    if (pause) {
        Herald__V1__PauseProfileRequest r = HERALD__V1__PAUSE_PROFILE_REQUEST__INIT;
        r.request_id = (char *)rid;
        r.profile_id = (char *)id;
        r.reason = (char *)reason;
        herald__v1__ops_service__pause_profile(svc(), &r, on_profile, &g);
    } else {
        Herald__V1__ResumeProfileRequest r = HERALD__V1__RESUME_PROFILE_REQUEST__INIT;
        r.request_id = (char *)rid;
        r.profile_id = (char *)id;
        r.reason = (char *)reason;
        herald__v1__ops_service__resume_profile(svc(), &r, on_profile, &g);
    }
    if (out != NULL)
        *out = g.p;
    else if (g.p != NULL)
        herald__v1__profile__free_unpacked(g.p, NULL);
    return st_code();
}

/* A CreateProfileRequest with its own request_id (rid storage provided). */
static void create_req(Herald__V1__CreateProfileRequest *req, Herald__V1__Profile *p, char rid[40],
                       const char *id, Herald__V1__Platform platform)
{
    herald__v1__create_profile_request__init(req);
    herald__v1__profile__init(p);
    rid_make(rid, 1, ++g_rid);
    req->request_id = rid;
    req->profile = p;
    p->profile_id = (char *)id;
    p->platform = platform;
}

static char *packed_hex(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = xmalloc(n + 1);
    protobuf_c_message_pack(m, buf);
    char *hex = xmalloc(2 * n + 1);
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", buf[i]);
    hex[2 * n] = '\0';
    free(buf);
    return hex;
}

static int64_t db_count(const char *sql_fmt, const char *arg)
{
    db_conn *db = tdb_open(g_url);
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, arg);
    status st = db_run(db, 10000, "test_count", sql_fmt, &p, &res);
    assert_int_equal(st, ST_OK);
    int64_t n = db_res_int64(res, 0, 0);
    db_res_free(res);
    db_close(db);
    return n;
}

/* ---- raw requests (what the typed API cannot send) ---- */

typedef struct wire {
    uint8_t b[4096];
    size_t n;
} wire;

static void w_varint(wire *w, uint64_t v)
{
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        w->b[w->n++] = (uint8_t)(byte | (v ? 0x80 : 0));
    } while (v);
}

static void w_bytes(wire *w, unsigned field, const void *data, size_t len)
{
    w_varint(w, (uint64_t)field << 3 | 2);
    w_varint(w, len);
    memcpy(w->b + w->n, data, len);
    w->n += len;
}

static void w_int(wire *w, unsigned field, uint64_t v)
{
    w_varint(w, (uint64_t)field << 3);
    w_varint(w, v);
}

static int raw_call(const char *method, const wire *w, herald_status *st, ProtobufCMessage **resp,
                    const ProtobufCMessageDescriptor *d)
{
    char path[128], *err = NULL;
    herald_call_options o = { .timeout_ms = 10000 };
    snprintf(path, sizeof path, OPS "%s", method);
    herald_call *c = herald_call_start(g_hd.ch, path, &o, &err);
    assert_non_null(c);
    assert_true(herald_call_send_raw(c, w->b, w->n));
    herald_call_close_send(c);
    ProtobufCMessage *m = NULL;
    if (herald_call_recv(c, d, &m) == 1 && resp != NULL)
        *resp = m;
    else if (m != NULL)
        protobuf_c_message_free_unpacked(m, NULL);
    int code = herald_call_finish(c, st);
    herald_call_free(c);
    return code;
}

/* ---- fixture ---- */

static int group_setup(void **state)
{
    (void)state;
    g_admin = getenv("DATABASE_URL");
    const char *redis = getenv("REDIS_URL");
    if (g_admin == NULL || redis == NULL) {
        fprintf(stderr, "DATABASE_URL / REDIS_URL not set: skipping\n");
        exit(TEST_SKIP);
    }
    g_url = tdb_create(g_admin, "herald_test_profiles", &g_dbname);
    g_redis = xasprintf("%s%sdb=7", redis, strchr(redis, '?') ? "&" : "?");
    snprintf(g_dir, sizeof g_dir, "/tmp/herald-test-profiles-%d", (int)getpid());
    herald_client_init();
    if (!hd_start(&g_hd, g_dir, g_url, g_redis, NULL)) {
        fprintf(stderr, "heraldd did not start (log: %s)\n", g_hd.log);
        return -1;
    }
    /* migrations run at start; readiness follows within a second or two */
    if (!hd_wait_health(&g_hd, "readiness", 1, 30000) ||
        !hd_wait_health(&g_hd, "herald.v1.OpsService", 1, 5000)) {
        fprintf(stderr, "heraldd never became ready (log: %s)\n", g_hd.log);
        return -1;
    }
    g_stub = herald_stub_new(g_hd.ch, &herald__v1__ops_service__descriptor);
    herald_call_options o = { .timeout_ms = 10000 };
    herald_stub_set_options(g_stub, &o);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    herald_stub_free(g_stub);
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
    free(g_redis);
    return rc == 0 ? 0 : -1;
}

/* ---- tests ---- */

/* Create with every field; the reply has the defaults filled, the topics
 * normalised and no secret; Get and List return the same bytes. */
static void create_get_list_roundtrip(void **state)
{
    (void)state;
    Herald__V1__CreateProfileRequest req;
    Herald__V1__Profile p;
    Herald__V1__PublishTarget pt = HERALD__V1__PUBLISH_TARGET__INIT;
    char rid[40];
    char *topics[] = { (char *)"Sleep", (char *)"gut-health" };
    create_req(&req, &p, rid, "roundtrip-1", HERALD__V1__PLATFORM__PLATFORM_THREADS);
    p.display_name = (char *)"Round Trip";
    p.handle = (char *)"@round";
    p.time_zone = (char *)"Europe/Berlin";
    p.language = (char *)"de-AT";
    p.auto_approve = true;
    p.default_provider = HERALD__V1__PROVIDER__PROVIDER_BUILTIN;
    p.topics = topics;
    p.n_topics = 2;
    p.draft_buffer_size = 5;
    pt.kind = HERALD__V1__PUBLISH_TARGET_KIND__PUBLISH_TARGET_KIND_WEBHOOK;
    pt.url = (char *)"https://hooks.example.com/herald";
    pt.secret = (char *)SECRET;
    pt.timeout_ms = 2500;
    p.publish_target = &pt;

    Herald__V1__Profile *c = NULL;
    assert_int_equal(do_create(&req, &c), 0);
    assert_string_equal(c->profile_id, "roundtrip-1");
    assert_string_equal(c->time_zone, "Europe/Berlin");
    assert_int_equal(c->state, HERALD__V1__PROFILE_STATE__PROFILE_STATE_ACTIVE);
    assert_int_equal(c->n_topics, 2);
    assert_string_equal(c->topics[0], "sleep");
    assert_string_equal(c->topics[1], "gut_health");
    assert_int_equal(c->topic_cooldown_hours, 24); /* 0 at creation: the default */
    assert_int_equal(c->revision, 1);
    assert_non_null(c->create_time);
    assert_null(c->pause_time);
    assert_non_null(c->publish_target);
    assert_true(c->publish_target->secret_set);
    assert_string_equal(c->publish_target->secret, "");
    assert_int_equal(c->publish_target->timeout_ms, 2500);

    Herald__V1__Profile *g1 = NULL, *g2 = NULL;
    assert_int_equal(do_get("roundtrip-1", &g1), 0); /* database, then cached */
    assert_int_equal(do_get("roundtrip-1", &g2), 0); /* from the cache */
    char *hc = packed_hex(&c->base), *h1 = packed_hex(&g1->base), *h2 = packed_hex(&g2->base);
    assert_string_equal(hc, h1);
    assert_string_equal(hc, h2);

    Herald__V1__ListProfilesRequest lr = HERALD__V1__LIST_PROFILES_REQUEST__INIT;
    lr.platform = HERALD__V1__PLATFORM__PLATFORM_THREADS;
    Herald__V1__ListProfilesResponse *l = NULL;
    assert_int_equal(do_list(&lr, &l), 0);
    bool seen = false;
    for (size_t i = 0; i < l->n_profiles; i++) {
        if (strcmp(l->profiles[i]->profile_id, "roundtrip-1") == 0) {
            char *hl = packed_hex(&l->profiles[i]->base);
            assert_string_equal(hc, hl);
            free(hl);
            seen = true;
        }
        assert_int_equal(l->profiles[i]->platform, HERALD__V1__PLATFORM__PLATFORM_THREADS);
    }
    assert_true(seen);
    free(hc);
    free(h1);
    free(h2);
    herald__v1__list_profiles_response__free_unpacked(l, NULL);
    herald__v1__profile__free_unpacked(g1, NULL);
    herald__v1__profile__free_unpacked(g2, NULL);
    herald__v1__profile__free_unpacked(c, NULL);
}

/* Strings shaped like SQL, quotes, dollars, backslashes and emoji come back
 * byte for byte, through the database and through the cache. */
static void sql_shaped_strings_roundtrip(void **state)
{
    (void)state;
    static const char *const names[] = {
        "'; DROP TABLE posts;--",
        "Robert'); DROP TABLE profiles; --",
        "$$ SELECT 1 $$ $1 $tag$x$tag$",
        "quote \" back\\slash \\' %s %n",
        "\xf0\x9f\x92\xaa\xf0\x9f\x8f\xbd Strong \xe2\x80\x94 \xe4\xbd\xa0\xe5\xa5\xbd",
        "NULL",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        Herald__V1__CreateProfileRequest req;
        Herald__V1__Profile p;
        char rid[40], id[32];
        snprintf(id, sizeof id, "sql-%zu", i);
        create_req(&req, &p, rid, id, HERALD__V1__PLATFORM__PLATFORM_X);
        p.display_name = (char *)names[i];
        p.handle = (char *)names[(i + 1) % 6];
        Herald__V1__Profile *c = NULL, *g = NULL;
        assert_int_equal(do_create(&req, &c), 0);
        assert_string_equal(c->display_name, names[i]);
        assert_int_equal(do_get(id, NULL), 0);
        assert_int_equal(do_get(id, &g), 0); /* cached copy */
        assert_string_equal(g->display_name, names[i]);
        assert_string_equal(g->handle, names[(i + 1) % 6]);
        assert_int_equal(
            db_count("SELECT count(*) FROM profiles WHERE display_name = $1", names[i]), 1);
        herald__v1__profile__free_unpacked(c, NULL);
        herald__v1__profile__free_unpacked(g, NULL);
    }
    /* nothing was executed */
    assert_int_equal(db_count("SELECT count(*) FROM pg_tables WHERE tablename = $1", "posts"), 1);
}

/* One request, many mistakes: every one is a BadRequest violation. */
static void validation_errors(void **state)
{
    (void)state;
    Herald__V1__CreateProfileRequest req;
    Herald__V1__Profile p;
    Herald__V1__PublishTarget pt = HERALD__V1__PUBLISH_TARGET__INIT;
    char rid[40];
    char long_name[1024] = "";
    char *topics[] = { (char *)"sleep", (char *)"Sleep", (char *)"no such!" };
    create_req(&req, &p, rid, "Bad Id", (Herald__V1__Platform)0);
    req.request_id = (char *)"too-short";
    for (int i = 0; i < 101; i++)
        strcat(long_name, "\xf0\x9f\x92\xaa"); /* 101 code points, 404 bytes */
    p.display_name = long_name;
    p.handle = (char *)"bad \xff\xfe utf-8";
    p.time_zone = (char *)"Mars/Olympus_Mons";
    p.language = (char *)"english!";
    p.default_provider = (Herald__V1__Provider)42;
    p.topics = topics;
    p.n_topics = 3;
    p.topic_cooldown_hours = 721;
    pt.kind = HERALD__V1__PUBLISH_TARGET_KIND__PUBLISH_TARGET_KIND_WEBHOOK;
    pt.url = (char *)"ftp://nope";
    pt.timeout_ms = 50;
    p.publish_target = &pt;
    assert_int_equal(do_create(&req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    const herald_status *st = last();
    static const char *const fields[] = {
        "request_id",
        "profile.profile_id",
        "profile.platform",
        "profile.display_name",
        "profile.handle",
        "profile.time_zone",
        "profile.language",
        "profile.default_provider",
        "profile.topic_cooldown_hours",
        "profile.topics[1]",
        "profile.topics[2]",
        "profile.publish_target.url",
        "profile.publish_target.timeout_ms",
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (!st_violation(st, fields[i]))
            fail_msg("no violation for %s (message: %s)", fields[i], st->message);
    }
    assert_non_null(strstr(st->message, "more violations")); /* the first, and a count */

    /* valid shape, unknown topic: found in the catalog check */
    char *unknown[] = { (char *)"sleep", (char *)"astrology" };
    create_req(&req, &p, rid, "topic-check", HERALD__V1__PLATFORM__PLATFORM_X);
    p.topics = unknown;
    p.n_topics = 2;
    assert_int_equal(do_create(&req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(st_violation(last(), "profile.topics[1]"));

    /* a webhook needs a secret */
    Herald__V1__PublishTarget hook = HERALD__V1__PUBLISH_TARGET__INIT;
    hook.kind = HERALD__V1__PUBLISH_TARGET_KIND__PUBLISH_TARGET_KIND_WEBHOOK;
    hook.url = (char *)"https://example.com/h";
    create_req(&req, &p, rid, "hook-no-secret", HERALD__V1__PLATFORM__PLATFORM_X);
    p.publish_target = &hook;
    assert_int_equal(do_create(&req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(st_violation(last(), "profile.publish_target.secret"));

    /* GetProfile / List */
    assert_int_equal(do_get("UPPER", NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(st_violation(last(), "profile_id"));
    Herald__V1__ListProfilesRequest lr = HERALD__V1__LIST_PROFILES_REQUEST__INIT;
    Herald__V1__ListProfilesResponse *l = NULL;
    lr.page_size = -1;
    lr.state = (Herald__V1__ProfileState)9;
    assert_int_equal(do_list(&lr, &l), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(st_violation(last(), "page_size"));
    assert_true(st_violation(last(), "state"));
    assert_int_equal(db_count("SELECT count(*) FROM profiles WHERE profile_id = $1", "topic-check"),
                     0);
}

/* A NUL inside a string (protobuf-c would cut it silently) is refused; the
 * same request re-encoded with explicit default values (non-canonical, as
 * protobuf.js sends) is accepted. */
static void nul_and_non_canonical_requests(void **state)
{
    (void)state;
    char rid[40];
    herald_status st;
    wire prof = { .n = 0 }, w = { .n = 0 };

    rid_make(rid, 2, ++g_rid);
    w_bytes(&prof, 1, "nul-1", 5);
    w_bytes(&prof, 2, "ab\0cd", 5);
    w_int(&prof, 3, 1);
    w_bytes(&w, 1, rid, strlen(rid));
    w_bytes(&w, 2, prof.b, prof.n);
    herald_status_init(&st);
    assert_int_equal(raw_call("CreateProfile", &w, &st, NULL, &herald__v1__profile__descriptor),
                     GRPC_CODE_INVALID_ARGUMENT);
    assert_true(st_violation(&st, "profile.display_name"));
    herald_status_fini(&st);
    assert_int_equal(db_count("SELECT count(*) FROM profiles WHERE profile_id = $1", "nul-1"), 0);

    /* explicit zeros / empty strings: bigger than the canonical form, no NUL */
    prof.n = 0;
    w.n = 0;
    rid_make(rid, 2, ++g_rid);
    w_bytes(&prof, 1, "explicit-defaults", 17);
    w_bytes(&prof, 2, "", 0);
    w_int(&prof, 3, 2);
    w_bytes(&prof, 4, "", 0);
    w_int(&prof, 10, 0);
    w_int(&prof, 13, 0);
    w_int(&prof, 14, 0);
    w_bytes(&w, 1, rid, strlen(rid));
    w_bytes(&w, 2, prof.b, prof.n);
    herald_status_init(&st);
    ProtobufCMessage *resp = NULL;
    assert_int_equal(raw_call("CreateProfile", &w, &st, &resp, &herald__v1__profile__descriptor),
                     0);
    assert_non_null(resp);
    assert_string_equal(((Herald__V1__Profile *)resp)->profile_id, "explicit-defaults");
    protobuf_c_message_free_unpacked(resp, NULL);
    herald_status_fini(&st);
}

static void not_found_and_already_exists(void **state)
{
    (void)state;
    Herald__V1__CreateProfileRequest req;
    Herald__V1__Profile p;
    char rid[40];
    assert_int_equal(do_get("does-not-exist", NULL), GRPC_CODE_NOT_FOUND);
    assert_non_null(strstr(last()->message, "does-not-exist"));

    create_req(&req, &p, rid, "twice", HERALD__V1__PLATFORM__PLATFORM_LINKEDIN);
    assert_int_equal(do_create(&req, NULL), 0);
    create_req(&req, &p, rid, "twice", HERALD__V1__PLATFORM__PLATFORM_LINKEDIN); /* new rid */
    assert_int_equal(do_create(&req, NULL), GRPC_CODE_ALREADY_EXISTS);
    assert_int_equal(db_count("SELECT count(*) FROM profiles WHERE profile_id = $1", "twice"), 1);

    Herald__V1__UpdateProfileRequest ur = HERALD__V1__UPDATE_PROFILE_REQUEST__INIT;
    Herald__V1__Profile up = HERALD__V1__PROFILE__INIT;
    up.profile_id = (char *)"nobody-here";
    up.display_name = (char *)"x";
    ur.profile = &up;
    assert_int_equal(do_update(&ur, NULL), GRPC_CODE_NOT_FOUND);
    assert_int_equal(do_pause("", "nobody-here", "why", true, NULL), GRPC_CODE_NOT_FOUND);
}

/* UpdateProfile, then GetProfile at once: the new value, every time, with
 * the old one still in Redis. Conditional updates, masks. */
static void update_then_get_is_never_stale(void **state)
{
    (void)state;
    Herald__V1__CreateProfileRequest req;
    Herald__V1__Profile p;
    char rid[40];
    create_req(&req, &p, rid, "fresh", HERALD__V1__PLATFORM__PLATFORM_BLUESKY);
    p.display_name = (char *)"v0";
    assert_int_equal(do_create(&req, NULL), 0);

    for (int i = 1; i <= 25; i++) {
        assert_int_equal(do_get("fresh", NULL), 0); /* warm the cache at the old revision */
        char name[32], urid[40];
        snprintf(name, sizeof name, "v%d", i);
        rid_make(urid, 3, ++g_rid);
        Herald__V1__UpdateProfileRequest ur = HERALD__V1__UPDATE_PROFILE_REQUEST__INIT;
        Herald__V1__Profile up = HERALD__V1__PROFILE__INIT;
        up.profile_id = (char *)"fresh";
        up.display_name = name;
        up.revision = i; /* conditional: the revision we last saw */
        ur.request_id = urid;
        ur.profile = &up;
        Herald__V1__Profile *u = NULL, *g = NULL;
        assert_int_equal(do_update(&ur, &u), 0);
        assert_int_equal(u->revision, i + 1);
        assert_int_equal(do_get("fresh", &g), 0);
        assert_string_equal(g->display_name, name);
        assert_int_equal(g->revision, i + 1);
        herald__v1__profile__free_unpacked(u, NULL);
        herald__v1__profile__free_unpacked(g, NULL);
    }

    /* a stale revision: ABORTED, nothing changes */
    Herald__V1__UpdateProfileRequest ur = HERALD__V1__UPDATE_PROFILE_REQUEST__INIT;
    Herald__V1__Profile up = HERALD__V1__PROFILE__INIT;
    char *paths_tz[] = { (char *)"time_zone", (char *)"topicCooldownHours" };
    Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    up.profile_id = (char *)"fresh";
    up.display_name = (char *)"stale";
    up.revision = 3;
    ur.profile = &up;
    assert_int_equal(do_update(&ur, NULL), GRPC_CODE_ABORTED);

    /* a mask naming fields sets them even to their defaults; unnamed stay */
    up.revision = 0;
    up.time_zone = (char *)"";
    up.topic_cooldown_hours = 0;
    mask.paths = paths_tz;
    mask.n_paths = 2;
    ur.update_mask = &mask;
    Herald__V1__Profile *u = NULL;
    assert_int_equal(do_update(&ur, &u), 0);
    assert_string_equal(u->display_name, "v25");
    assert_string_equal(u->time_zone, "UTC");
    assert_int_equal(u->topic_cooldown_hours, 0);
    herald__v1__profile__free_unpacked(u, NULL);

    /* immutable and unknown paths */
    char *paths_bad[] = { (char *)"platform", (char *)"state", (char *)"no_such_field" };
    mask.paths = paths_bad;
    mask.n_paths = 3;
    assert_int_equal(do_update(&ur, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(st_violation(last(), "update_mask.paths[0]"));
    assert_true(st_violation(last(), "update_mask.paths[1]"));
    assert_true(st_violation(last(), "update_mask.paths[2]"));
}

/* The same request_id: one effect, the same bytes back. Another request
 * under it: INVALID_ARGUMENT IDEMPOTENCY_KEY_REUSED. */
static void idempotent_replay(void **state)
{
    (void)state;
    Herald__V1__CreateProfileRequest req;
    Herald__V1__Profile p;
    char rid[40], reason[64];
    create_req(&req, &p, rid, "idem-1", HERALD__V1__PLATFORM__PLATFORM_X);
    p.display_name = (char *)"first";
    Herald__V1__Profile *a = NULL, *b = NULL;
    assert_int_equal(do_create(&req, &a), 0);
    assert_int_equal(do_create(&req, &b), 0); /* replay, not ALREADY_EXISTS */
    char *ha = packed_hex(&a->base), *hb = packed_hex(&b->base);
    assert_string_equal(ha, hb);
    free(ha);
    free(hb);
    herald__v1__profile__free_unpacked(a, NULL);
    herald__v1__profile__free_unpacked(b, NULL);
    assert_int_equal(db_count("SELECT count(*) FROM profiles WHERE profile_id = $1", "idem-1"), 1);
    assert_int_equal(db_count("SELECT count(*) FROM idempotency_keys WHERE key = $1", rid), 1);

    p.display_name = (char *)"second"; /* same key, different request */
    assert_int_equal(do_create(&req, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_string_equal(st_reason(last(), reason, sizeof reason), "IDEMPOTENCY_KEY_REUSED");
    assert_true(st_violation(last(), "request_id"));

    /* an update replayed: the revision moved once */
    char urid[40];
    rid_make(urid, 4, ++g_rid);
    Herald__V1__UpdateProfileRequest ur = HERALD__V1__UPDATE_PROFILE_REQUEST__INIT;
    Herald__V1__Profile up = HERALD__V1__PROFILE__INIT;
    up.profile_id = (char *)"idem-1";
    up.handle = (char *)"@idem";
    ur.request_id = urid;
    ur.profile = &up;
    Herald__V1__Profile *u1 = NULL, *u2 = NULL, *g = NULL;
    assert_int_equal(do_update(&ur, &u1), 0);
    assert_int_equal(do_update(&ur, &u2), 0);
    assert_int_equal(u1->revision, 2);
    assert_int_equal(u2->revision, 2);
    assert_int_equal(do_get("idem-1", &g), 0);
    assert_int_equal(g->revision, 2);
    herald__v1__profile__free_unpacked(u1, NULL);
    herald__v1__profile__free_unpacked(u2, NULL);
    herald__v1__profile__free_unpacked(g, NULL);
}

/* Pages cover every profile exactly once, in id order; tokens are bound to
 * their filters and tamper-evident. */
static void list_paging(void **state)
{
    (void)state;
    for (int i = 0; i < 9; i++) {
        Herald__V1__CreateProfileRequest req;
        Herald__V1__Profile p;
        char rid[40], id[32];
        snprintf(id, sizeof id, "page-%02d", i);
        create_req(&req, &p, rid, id,
                   i % 3 == 0 ? HERALD__V1__PLATFORM__PLATFORM_LINKEDIN
                              : HERALD__V1__PLATFORM__PLATFORM_X);
        assert_int_equal(do_create(&req, NULL), 0);
    }
    int64_t total = db_count("SELECT count(*) FROM profiles WHERE $1 = $1", "x");
    int64_t linkedin = db_count("SELECT count(*) FROM profiles WHERE platform = $1", "linkedin");

    for (int filtered = 0; filtered < 2; filtered++) {
        Herald__V1__ListProfilesRequest lr = HERALD__V1__LIST_PROFILES_REQUEST__INIT;
        lr.page_size = 4;
        if (filtered)
            lr.platform = HERALD__V1__PLATFORM__PLATFORM_LINKEDIN;
        char prev[80] = "";
        char *token = NULL;
        int64_t seen = 0;
        for (int page = 0; page < 100; page++) {
            Herald__V1__ListProfilesResponse *l = NULL;
            lr.page_token = token != NULL ? token : (char *)"";
            assert_int_equal(do_list(&lr, &l), 0);
            assert_true(l->n_profiles <= 4);
            for (size_t i = 0; i < l->n_profiles; i++) {
                assert_true(strcmp(prev, l->profiles[i]->profile_id) < 0);
                snprintf(prev, sizeof prev, "%s", l->profiles[i]->profile_id);
                if (filtered)
                    assert_int_equal(l->profiles[i]->platform,
                                     HERALD__V1__PLATFORM__PLATFORM_LINKEDIN);
                seen++;
            }
            free(token);
            token = l->next_page_token[0] != '\0' ? xstrdup(l->next_page_token) : NULL;
            if (token != NULL && page == 0) {
                /* the same token with other filters, or edited, is refused */
                Herald__V1__ListProfilesRequest other = lr;
                Herald__V1__ListProfilesResponse *x = NULL;
                other.page_token = token;
                other.platform = filtered ? HERALD__V1__PLATFORM__PLATFORM_X
                                          : HERALD__V1__PLATFORM__PLATFORM_THREADS;
                assert_int_equal(do_list(&other, &x), GRPC_CODE_INVALID_ARGUMENT);
                assert_true(st_violation(last(), "page_token"));
                char *bad = xstrdup(token);
                bad[strlen(bad) / 2] = bad[strlen(bad) / 2] == 'A' ? 'B' : 'A';
                other = lr;
                other.page_token = bad;
                assert_int_equal(do_list(&other, &x), GRPC_CODE_INVALID_ARGUMENT);
                free(bad);
            }
            herald__v1__list_profiles_response__free_unpacked(l, NULL);
            if (token == NULL)
                break;
        }
        assert_null(token);
        assert_int_equal(seen, filtered ? linkedin : total);
    }

    /* an oversized page_size is lowered, not refused */
    Herald__V1__ListProfilesRequest big = HERALD__V1__LIST_PROFILES_REQUEST__INIT;
    Herald__V1__ListProfilesResponse *l = NULL;
    big.page_size = 100000;
    assert_int_equal(do_list(&big, &l), 0);
    assert_int_equal((int64_t)l->n_profiles, total);
    herald__v1__list_profiles_response__free_unpacked(l, NULL);
}

/* The kill switch: a row in system_events and a log line per change, none
 * for no-ops or replays; the first pause's reason stands. */
static void pause_resume_events(void **state)
{
    (void)state;
    Herald__V1__CreateProfileRequest req;
    Herald__V1__Profile p;
    char rid[40], r1[40], r2[40], r3[40];
    create_req(&req, &p, rid, "kill-switch", HERALD__V1__PLATFORM__PLATFORM_X);
    assert_int_equal(do_create(&req, NULL), 0);
    int logs_before = hd_log_count(&g_hd, "\"profile paused\"");

    rid_make(r1, 5, ++g_rid);
    rid_make(r2, 5, ++g_rid);
    rid_make(r3, 5, ++g_rid);
    Herald__V1__Profile *a = NULL, *b = NULL, *c = NULL, *d = NULL, *g = NULL;
    assert_int_equal(do_pause(r1, "kill-switch", "spam wave \xf0\x9f\x9a\xa8", true, &a), 0);
    assert_int_equal(a->state, HERALD__V1__PROFILE_STATE__PROFILE_STATE_PAUSED);
    assert_string_equal(a->pause_reason, "spam wave \xf0\x9f\x9a\xa8");
    assert_non_null(a->pause_time);
    assert_int_equal(do_pause(r1, "kill-switch", "spam wave \xf0\x9f\x9a\xa8", true, &b), 0);
    assert_int_equal(b->revision, a->revision); /* replay */
    assert_int_equal(do_pause(r2, "kill-switch", "another reason", true, &c), 0);
    assert_string_equal(c->pause_reason, "spam wave \xf0\x9f\x9a\xa8"); /* first pause stands */
    assert_int_equal(c->revision, a->revision);
    assert_int_equal(do_get("kill-switch", &g), 0);
    assert_int_equal(g->state, HERALD__V1__PROFILE_STATE__PROFILE_STATE_PAUSED);
    assert_int_equal(do_pause(r3, "kill-switch", "", false, &d), 0);
    assert_int_equal(d->state, HERALD__V1__PROFILE_STATE__PROFILE_STATE_ACTIVE);
    assert_null(d->pause_time);
    assert_string_equal(d->pause_reason, "");

    assert_int_equal(
        db_count("SELECT count(*) FROM system_events WHERE profile_id = $1", "kill-switch"), 2);
    assert_int_equal(db_count("SELECT count(*) FROM system_events WHERE request_id = $1", r1), 1);
    assert_int_equal(hd_log_count(&g_hd, "\"profile paused\"") - logs_before, 1);
    assert_true(hd_log_count(&g_hd, "\"profile resumed\"") >= 1);

    /* a reason is required to pause */
    char r4[40];
    rid_make(r4, 5, ++g_rid);
    assert_int_equal(do_pause(r4, "kill-switch", "", true, NULL), GRPC_CODE_INVALID_ARGUMENT);
    assert_true(st_violation(last(), "reason"));
    herald__v1__profile__free_unpacked(a, NULL);
    herald__v1__profile__free_unpacked(b, NULL);
    herald__v1__profile__free_unpacked(c, NULL);
    herald__v1__profile__free_unpacked(d, NULL);
    herald__v1__profile__free_unpacked(g, NULL);
}

/* The secret of create_get_list_roundtrip is stored, never returned (Get,
 * List) and never in heraldd's log. */
static void secrets_never_leak(void **state)
{
    (void)state;
    assert_int_equal(db_count("SELECT count(*) FROM profiles WHERE publish_secret = "
                              "convert_to($1, 'UTF8')",
                              SECRET),
                     1);
    Herald__V1__ListProfilesRequest lr = HERALD__V1__LIST_PROFILES_REQUEST__INIT;
    Herald__V1__ListProfilesResponse *l = NULL;
    lr.page_size = 500;
    assert_int_equal(do_list(&lr, &l), 0);
    for (size_t i = 0; i < l->n_profiles; i++)
        if (l->profiles[i]->publish_target != NULL)
            assert_string_equal(l->profiles[i]->publish_target->secret, "");
    herald__v1__list_profiles_response__free_unpacked(l, NULL);
    assert_int_equal(hd_log_count(&g_hd, SECRET), 0);
    assert_int_equal(hd_log_count(&g_hd, "hmac-key"), 0);
}

/* heraldd on a database whose applied migration was changed: it keeps
 * running but refuses to serve (readiness and OpsService NOT_SERVING,
 * liveness SERVING, calls UNAVAILABLE), and serves once the database is
 * repaired; and with no database at all it starts NOT_SERVING. */
static void schema_gate(void **state)
{
    (void)state;
    char *name = NULL, *err = NULL;
    char *url = tdb_create(g_admin, "herald_test_gate", &name);
    assert_int_equal(migrate_up(url, &err), ST_OK);
    db_conn *db = tdb_open(url);
    tdb_must(db, "UPDATE schema_migration_history SET sha256 = repeat('0', 64) WHERE version = 1");
    char dir[160];
    snprintf(dir, sizeof dir, "%s-gate", g_dir);
    hd h;
    assert_true(hd_start(&h, dir, url, g_redis, NULL));
    assert_true(hd_wait_health(&h, "", 1, 5000));
    hd_sleep_ms(1500); /* the pinger had time to look */
    assert_int_equal(hd_health(&h, "readiness"), 2);
    assert_int_equal(hd_health(&h, "herald.v1.OpsService"), 2);
    assert_int_equal(hd_health(&h, "liveness"), 1);
    assert_true(hd_log_count(&h, "refusing to serve") >= 1);
    assert_true(hd_log_count(&h, "changed after it was applied") >= 1);
    Herald__V1__GetProfileRequest gr = HERALD__V1__GET_PROFILE_REQUEST__INIT;
    gr.profile_id = (char *)"anyone";
    herald_status st;
    herald_status_init(&st);
    assert_int_equal(
        ops_call(&h, "GetProfile", &gr.base, &herald__v1__profile__descriptor, 5000, NULL, &st),
        GRPC_CODE_UNAVAILABLE);
    herald_status_fini(&st);

    /* repaired: the right checksum back; serving without a restart */
    db_params p;
    db_params_init(&p);
    size_t n = 0;
    const migration *m = migrate_embedded(&n);
    db_param_text(&p, m[0].sha256);
    assert_int_equal(db_run(db, 10000, "test_repair",
                            "UPDATE schema_migration_history SET sha256 = $1 WHERE version = 1", &p,
                            NULL),
                     ST_OK);
    assert_true(hd_wait_health(&h, "readiness", 1, 5000));
    herald_status_init(&st);
    assert_int_equal(
        ops_call(&h, "GetProfile", &gr.base, &herald__v1__profile__descriptor, 5000, NULL, &st),
        GRPC_CODE_NOT_FOUND);
    herald_status_fini(&st);
    assert_int_equal(hd_stop(&h), 0);
    db_close(db);
    tdb_drop(g_admin, name);
    (void)tsh("rm -rf %s", dir);

    /* no DATABASE_URL: starts, liveness SERVING, readiness NOT_SERVING */
    snprintf(dir, sizeof dir, "%s-nodb", g_dir);
    assert_true(hd_start(&h, dir, "", "", NULL));
    assert_true(hd_wait_health(&h, "liveness", 1, 5000));
    hd_sleep_ms(500);
    assert_int_equal(hd_health(&h, "readiness"), 2);
    herald_status_init(&st);
    assert_int_equal(
        ops_call(&h, "GetProfile", &gr.base, &herald__v1__profile__descriptor, 5000, NULL, &st),
        GRPC_CODE_UNAVAILABLE);
    assert_non_null(strstr(st.message, "no database"));
    herald_status_fini(&st);
    assert_true(hd_log_count(&h, "database_url is empty") >= 1);
    assert_int_equal(hd_stop(&h), 0);
    (void)tsh("rm -rf %s", dir);
    free(url);
    free(name);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_get_list_roundtrip),
        cmocka_unit_test(sql_shaped_strings_roundtrip),
        cmocka_unit_test(validation_errors),
        cmocka_unit_test(nul_and_non_canonical_requests),
        cmocka_unit_test(not_found_and_already_exists),
        cmocka_unit_test(update_then_get_is_never_stale),
        cmocka_unit_test(idempotent_replay),
        cmocka_unit_test(list_paging),
        cmocka_unit_test(pause_resume_events),
        cmocka_unit_test(secrets_never_leak),
        cmocka_unit_test(schema_gate),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
