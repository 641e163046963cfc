/* test_db.c - db.[ch] against a real PostgreSQL (the `services` fixture):
 * parameters round-trip byte for byte, SQLSTATE mapping, deadlines (server
 * and client side), transactions, statistics and the slow log. Also the pure
 * parts (SQLSTATE table, SHA-256). Needs DATABASE_URL; skips without it. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "db.h"
#include "test_db_support.h"
#include "util.h"

static const char *g_admin;
static char *g_url;
static char *g_dbname;

/* ---------------------------------------------------------------- pure */

static void sqlstate_mapping(void **state)
{
    (void)state;
    static const struct {
        const char *ss;
        status st;
    } cases[] = {
        { "08006", ST_UNAVAILABLE }, { "08001", ST_UNAVAILABLE }, { "57P01", ST_UNAVAILABLE },
        { "57P03", ST_UNAVAILABLE }, { "53300", ST_UNAVAILABLE }, { "53100", ST_UNAVAILABLE },
        { "57014", ST_TIMEOUT },     { "55P03", ST_TIMEOUT },     { "23505", ST_ALREADY_EXISTS },
        { "40001", ST_CONFLICT },    { "40P01", ST_CONFLICT },    { "22P02", ST_INVALID },
        { "22001", ST_INVALID },     { "23503", ST_INVALID },     { "23514", ST_INVALID },
        { "23502", ST_INVALID },     { "42P01", ST_INTERNAL },    { "42601", ST_INTERNAL },
        { "XX000", ST_INTERNAL },    { "", ST_INTERNAL },         { "0800", ST_INTERNAL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (db_status_of_sqlstate(cases[i].ss) != cases[i].st)
            fail_msg("SQLSTATE '%s' maps to %s", cases[i].ss,
                     status_name(db_status_of_sqlstate(cases[i].ss)));
    }
}

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void sha256_vectors(void **state)
{
    (void)state;
    uint8_t h[32];
    char s[65];
    db_sha256("", 0, h);
    hex(h, 32, s);
    assert_string_equal(s, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    db_sha256("abc", 3, h);
    hex(h, 32, s);
    assert_string_equal(s, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes */
    db_sha256(two, strlen(two), h);
    hex(h, 32, s);
    assert_string_equal(s, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* one million 'a' (many blocks) */
    char *m = xmalloc(1000000);
    memset(m, 'a', 1000000);
    db_sha256(m, 1000000, h);
    free(m);
    hex(h, 32, s);
    assert_string_equal(s, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void latency_quantiles(void **state)
{
    (void)state;
    uint64_t b[DB_LATENCY_BUCKETS + 1] = { 0 };
    assert_true(db_stats_quantile_ms(b, 0.5) < 0);
    b[2] = 100; /* 100 samples in (1 ms, 2.5 ms] */
    assert_true(db_stats_quantile_ms(b, 0.5) > 1.7 && db_stats_quantile_ms(b, 0.5) < 1.8);
    assert_true(db_stats_quantile_ms(b, 0.99) <= 2.5);
    b[DB_LATENCY_BUCKETS] = 100; /* and 100 beyond the last bound */
    assert_true(db_stats_quantile_ms(b, 0.25) < 2.5);
    assert_true(db_stats_quantile_ms(b, 0.95) == 10000.0);
}

/* ---------------------------------------------------------------- no time, no I/O */

static void no_budget_no_io(void **state)
{
    (void)state;
    /* a conninfo that cannot work: had we tried, we would get UNAVAILABLE */
    db_conn *db = tdb_open("host=/nonexistent/socket/dir dbname=x connect_timeout=2");
    db_pool_stats before, after;
    db_pool_stats_get(&before);
    int64_t t0 = now_mono_ms();
    assert_int_equal(db_begin(db, 0), ST_TIMEOUT);
    assert_int_equal(db_run(db, -5, "x", "SELECT 1", NULL, NULL), ST_TIMEOUT);
    assert_int_equal(db_begin(db, 10), ST_TIMEOUT); /* below the 20 ms slack */
    assert_true(now_mono_ms() - t0 < 50);
    db_pool_stats_get(&after);
    assert_int_equal(after.connect_fails, before.connect_fails);
    assert_false(db_connected(db));
    /* with time left it does try, and reports UNAVAILABLE, then backs off */
    assert_int_equal(db_ping(db, 1000), ST_UNAVAILABLE);
    assert_true(strstr(db_errmsg(db), "connection") != NULL);
    t0 = now_mono_ms();
    assert_int_equal(db_ping(db, 1000), ST_UNAVAILABLE);
    assert_true(now_mono_ms() - t0 < 20); /* backing off: fails at once */
    db_close(db);
}

/* ---------------------------------------------------------------- round trip */

static void sql_shaped_strings_round_trip(void **state)
{
    (void)state;
    static const char *strs[] = {
        "'; DROP TABLE posts;--",
        "Robert'); DROP TABLE profiles; --",
        "it's \"quoted\" `back` \\backslash\\ \\x00",
        "$$ dollar $$ $1 $tag$ body $tag$",
        "\xf0\x9f\x92\xaa\xf0\x9f\x8f\xbd emoji \xe2\x9d\xa4\xef\xb8\x8f and "
        "\xe4\xb8\xad\xe6\x96\x87",
        "tab\tnewline\ncr\r end",
        "%s %n %x {{}} ${HOME} $(id) ; -- /* */",
        "",
        "    leading and trailing spaces    ",
    };
    db_conn *db = tdb_open(g_url);
    tdb_must(db, "CREATE TABLE rt (id int PRIMARY KEY, s text NOT NULL, b bytea NOT NULL)");
    uint8_t bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (uint8_t)i;
    int n = (int)(sizeof strs / sizeof strs[0]);
    for (int i = 0; i < n; i++) {
        db_params p;
        db_params_init(&p);
        db_param_int64(&p, i);
        db_param_text(&p, strs[i]);
        db_param_bytes(&p, bin, (size_t)(i * 31 % 257));
        assert_int_equal(
            db_run(db, 5000, "rt_insert", "INSERT INTO rt VALUES ($1, $2, $3)", &p, NULL), ST_OK);
    }
    db_res *res = NULL;
    assert_int_equal(
        db_run(db, 5000, "rt_select", "SELECT id, s, b FROM rt ORDER BY id", NULL, &res), ST_OK);
    assert_int_equal(db_res_rows(res), n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(db_res_int64(res, i, 0), i);
        assert_int_equal(db_res_len(res, i, 1), strlen(strs[i]));
        assert_memory_equal(db_res_text(res, i, 1), strs[i], strlen(strs[i]) + 1);
        size_t len = 0;
        uint8_t *b = db_res_bytes(res, i, 2, &len);
        assert_non_null(b);
        assert_int_equal(len, (size_t)(i * 31 % 257));
        if (len)
            assert_memory_equal(b, bin, len);
        free(b);
    }
    db_res_free(res);
    /* the table whose name was in the payload is untouched */
    assert_int_equal(tdb_int(db, "SELECT count(*) FROM rt"), n);
    /* a NULL parameter is SQL NULL, and types come back */
    db_params p;
    db_params_init(&p);
    db_param_null(&p);
    db_param_double(&p, 0.1);
    db_param_bool(&p, true);
    db_param_time_ms(&p, 1795000000123);
    db_param_int64(&p, INT64_MIN);
    assert_int_equal(db_run(db, 5000, "types",
                            "SELECT $1::text IS NULL, $2::float8, $3::bool,"
                            " (extract(epoch FROM $4::timestamptz) * 1000)::bigint, $5::bigint",
                            &p, &res),
                     ST_OK);
    assert_true(db_res_bool(res, 0, 0));
    assert_true(db_res_double(res, 0, 1) == 0.1);
    assert_true(db_res_bool(res, 0, 2));
    assert_int_equal(db_res_int64(res, 0, 3), 1795000000123);
    assert_true(db_res_int64(res, 0, 4) == INT64_MIN);
    db_res_free(res);
    db_close(db);
}

/* ---------------------------------------------------------------- SQLSTATE */

static void sqlstates_from_the_server(void **state)
{
    (void)state;
    db_conn *db = tdb_open(g_url);
    db_params p;
    tdb_must(db, "CREATE TABLE u (k text PRIMARY KEY CONSTRAINT u_k_short CHECK (length(k) < 10),"
                 " parent text REFERENCES u (k))");
    db_params_init(&p);
    db_param_text(&p, "a");
    assert_int_equal(db_run(db, 5000, "u_insert", "INSERT INTO u (k) VALUES ($1)", &p, NULL),
                     ST_OK);
    /* 23505 */
    assert_int_equal(db_run(db, 5000, "u_insert", "INSERT INTO u (k) VALUES ($1)", &p, NULL),
                     ST_ALREADY_EXISTS);
    assert_string_equal(db_sqlstate(db), "23505");
    assert_string_equal(db_constraint(db), "u_pkey");
    assert_null(strstr(db_errmsg(db), "INSERT")); /* no SQL in the reason */
    assert_non_null(strstr(db_errmsg(db), "u_insert"));
    /* 23514 */
    db_params_init(&p);
    db_param_text(&p, "far too long for it");
    assert_int_equal(db_run(db, 5000, "u_insert", "INSERT INTO u (k) VALUES ($1)", &p, NULL),
                     ST_INVALID);
    assert_string_equal(db_sqlstate(db), "23514");
    assert_string_equal(db_constraint(db), "u_k_short");
    /* 23503 */
    db_params_init(&p);
    db_param_text(&p, "b");
    db_param_text(&p, "nope");
    assert_int_equal(db_run(db, 5000, "u_insert2", "INSERT INTO u VALUES ($1, $2)", &p, NULL),
                     ST_INVALID);
    assert_string_equal(db_sqlstate(db), "23503");
    /* 22P02 (bad input syntax from the caller) */
    db_params_init(&p);
    db_param_text(&p, "abc");
    assert_int_equal(db_run(db, 5000, "cast", "SELECT $1::int", &p, NULL), ST_INVALID);
    assert_string_equal(db_sqlstate(db), "22P02");
    /* 42P01: our bug */
    assert_int_equal(db_run(db, 5000, "bad", "SELECT * FROM no_such_table", NULL, NULL),
                     ST_INTERNAL);
    /* the connection survived all of that */
    assert_true(db_connected(db));
    assert_int_equal(db_ping(db, 1000), ST_OK);
    db_close(db);
}

static void statement_timeout_from_budget(void **state)
{
    (void)state;
    db_conn *db = tdb_open(g_url);
    db_pool_stats before, after;
    assert_int_equal(db_ping(db, 1000), ST_OK);
    db_pool_stats_get(&before);
    int64_t t0 = now_mono_ms();
    assert_int_equal(db_run(db, 300, "sleep", "SELECT pg_sleep(5)", NULL, NULL), ST_TIMEOUT);
    int64_t took = now_mono_ms() - t0;
    assert_string_equal(db_sqlstate(db), "57014"); /* the server cancelled it */
    assert_true(took >= 250 && took < 400);
    db_pool_stats_get(&after);
    assert_int_equal(after.drops, before.drops); /* connection reused */
    assert_true(db_connected(db));

    /* the budget shrinks across statements of one transaction */
    t0 = now_mono_ms();
    assert_int_equal(db_begin(db, 600), ST_OK);
    assert_int_equal(db_query(db, "sleep", "SELECT pg_sleep(0.4)", NULL, NULL), ST_OK);
    assert_int_equal(db_query(db, "sleep", "SELECT pg_sleep(0.4)", NULL, NULL), ST_TIMEOUT);
    took = now_mono_ms() - t0;
    assert_true(took < 700);
    /* a failed transaction: commit reports the failure and rolls back */
    assert_int_equal(db_commit(db), ST_TIMEOUT);
    assert_false(db_in_tx(db));
    assert_int_equal(db_ping(db, 1000), ST_OK);
    db_close(db);
}

static void lock_timeout_from_budget(void **state)
{
    (void)state;
    db_conn *a = tdb_open(g_url);
    db_conn *b = tdb_open(g_url);
    tdb_must(a, "CREATE TABLE lk (id int PRIMARY KEY, v int)");
    tdb_must(a, "INSERT INTO lk VALUES (1, 0)");
    assert_int_equal(db_begin(a, 10000), ST_OK);
    assert_int_equal(db_query(a, "lk_lock", "SELECT v FROM lk WHERE id = 1 FOR UPDATE", NULL, NULL),
                     ST_OK);
    int64_t t0 = now_mono_ms();
    assert_int_equal(db_run(b, 300, "lk_update", "UPDATE lk SET v = 1 WHERE id = 1", NULL, NULL),
                     ST_TIMEOUT);
    assert_true(now_mono_ms() - t0 < 400);
    db_rollback(a);
    assert_int_equal(db_run(b, 1000, "lk_update", "UPDATE lk SET v = 1 WHERE id = 1", NULL, NULL),
                     ST_OK);
    db_close(a);
    db_close(b);
}

struct dl_arg {
    int first, second;
    status st;
};

static void *deadlock_side(void *p)
{
    struct dl_arg *a = p;
    db_conn *db = tdb_open(g_url);
    db_params q;
    a->st = db_begin(db, 10000);
    db_params_init(&q);
    db_param_int64(&q, a->first);
    if (a->st == ST_OK)
        a->st = db_query(db, "dl_update", "UPDATE dl SET v = v + 1 WHERE id = $1", &q, NULL);
    struct timespec ts = { 0, 200 * 1000000L };
    nanosleep(&ts, NULL);
    db_params_init(&q);
    db_param_int64(&q, a->second);
    if (a->st == ST_OK)
        a->st = db_query(db, "dl_update", "UPDATE dl SET v = v + 1 WHERE id = $1", &q, NULL);
    if (a->st == ST_OK)
        a->st = db_commit(db);
    else
        db_rollback(db);
    db_close(db);
    return NULL;
}

static void deadlock_is_conflict(void **state)
{
    (void)state;
    db_conn *db = tdb_open(g_url);
    tdb_must(db, "CREATE TABLE dl (id int PRIMARY KEY, v int)");
    tdb_must(db, "INSERT INTO dl VALUES (1, 0), (2, 0)");
    struct dl_arg x = { 1, 2, ST_OK }, y = { 2, 1, ST_OK };
    pthread_t tx, ty;
    pthread_create(&tx, NULL, deadlock_side, &x);
    pthread_create(&ty, NULL, deadlock_side, &y);
    pthread_join(tx, NULL);
    pthread_join(ty, NULL);
    /* exactly one side was chosen as the deadlock victim */
    assert_true((x.st == ST_OK && y.st == ST_CONFLICT) || (x.st == ST_CONFLICT && y.st == ST_OK));
    assert_int_equal(tdb_int(db, "SELECT sum(v) FROM dl"), 2);
    db_close(db);
}

/* A backend that stops answering (SIGSTOP): statement_timeout cannot fire,
 * the client-side wait must end the call near the deadline. */
static void silent_server_client_deadline(void **state)
{
    (void)state;
    db_conn *db = tdb_open(g_url);
    int64_t pid = tdb_int(db, "SELECT pg_backend_pid()");
    /* tdb_int used its own transaction on the same connection: same backend */
    assert_true(pid > 0);
    assert_int_equal(kill((pid_t)pid, SIGSTOP), 0);
    int64_t t0 = now_mono_ms();
    status st = db_run(db, 500, "hang", "SELECT 1", NULL, NULL);
    int64_t took = now_mono_ms() - t0;
    kill((pid_t)pid, SIGCONT);
    assert_int_equal(st, ST_TIMEOUT);
    assert_true(took >= 400 && took <= 600);
    assert_false(db_connected(db)); /* dropped; the next call reconnects */
    assert_int_equal(db_ping(db, 2000), ST_OK);
    db_close(db);
}

static void transactions(void **state)
{
    (void)state;
    db_conn *db = tdb_open(g_url);
    db_params p;
    db_res *res = NULL;
    tdb_must(db, "CREATE TABLE tx (id int PRIMARY KEY)");
    assert_int_equal(db_begin(db, 5000), ST_OK);
    assert_true(db_in_tx(db));
    assert_int_equal(db_query(db, "tx_insert", "INSERT INTO tx VALUES (1), (2)", NULL, &res),
                     ST_OK);
    assert_int_equal(db_res_affected(res), 2);
    db_res_free(res);
    db_rollback(db);
    assert_false(db_in_tx(db));
    assert_int_equal(tdb_int(db, "SELECT count(*) FROM tx"), 0);

    assert_int_equal(db_begin(db, 5000), ST_OK);
    db_params_init(&p);
    db_param_int64(&p, 7);
    assert_int_equal(db_query(db, "tx_insert", "INSERT INTO tx VALUES ($1)", &p, NULL), ST_OK);
    /* an error fails the transaction; later statements return that error */
    assert_int_equal(db_query(db, "tx_insert", "INSERT INTO tx VALUES ($1)", &p, NULL),
                     ST_ALREADY_EXISTS);
    assert_int_equal(db_query(db, "tx_count", "SELECT 1", NULL, NULL), ST_ALREADY_EXISTS);
    assert_int_equal(db_commit(db), ST_ALREADY_EXISTS);
    assert_int_equal(tdb_int(db, "SELECT count(*) FROM tx"), 0);

    assert_int_equal(db_begin(db, 5000), ST_OK);
    assert_int_equal(db_query(db, "tx_insert", "INSERT INTO tx VALUES ($1)", &p, NULL), ST_OK);
    assert_int_equal(db_commit(db), ST_OK);
    assert_int_equal(tdb_int(db, "SELECT count(*) FROM tx"), 1);
    db_close(db);
}

/* db_run is one round trip; db_begin + N x db_query + db_commit is N + 1.
 * With prepared statements a text is prepared once per connection. */
static void round_trips_and_prepares(void **state)
{
    (void)state;
    db_conn *db = tdb_open(g_url);
    db_params p;
    db_res *res = NULL;
    db_pool_stats a, b;

    assert_int_equal(db_ping(db, 5000), ST_OK); /* connected, warm */
    db_pool_stats_get(&a);
    for (int i = 0; i < 3; i++) {
        db_params_init(&p);
        db_param_int64(&p, 40 + i);
        assert_int_equal(db_run(db, 5000, "rt_add", "SELECT $1::int8 + 2", &p, &res), ST_OK);
        assert_int_equal(db_res_int64(res, 0, 0), 42 + i);
        db_res_free(res);
    }
    db_pool_stats_get(&b);
    assert_int_equal(b.roundtrips - a.roundtrips, 3);
    assert_int_equal(b.prepares - a.prepares, tdb_prepared ? 1 : 0);

    db_pool_stats_get(&a);
    assert_int_equal(db_begin(db, 5000), ST_OK);
    assert_int_equal(db_query(db, "rt_one", "SELECT 1", NULL, NULL), ST_OK);
    assert_int_equal(db_query(db, "rt_two", "SELECT 2", NULL, NULL), ST_OK);
    assert_int_equal(db_commit(db), ST_OK);
    db_pool_stats_get(&b);
    assert_int_equal(b.roundtrips - a.roundtrips, 3);
    db_close(db);
}

struct find_ctx {
    const char *name;
    db_stmt_stats got;
    bool found;
};

static void find_stmt(const db_stmt_stats *s, void *user)
{
    struct find_ctx *f = user;
    if (strcmp(s->name, f->name) == 0) {
        f->got = *s;
        f->found = true;
    }
}

static void stats_and_slow_log(void **state)
{
    (void)state;
    db_conn *db = tdb_open(g_url);
    db_stats_reset();
    for (int i = 0; i < 5; i++)
        assert_int_equal(db_run(db, 1000, "stats_probe", "SELECT 1", NULL, NULL), ST_OK);
    assert_int_equal(db_run(db, 1000, "stats_probe", "SELECT 1/0", NULL, NULL), ST_INVALID);
    struct find_ctx f = { "stats_probe", { 0 }, false };
    db_stats_foreach(find_stmt, &f);
    assert_true(f.found);
    assert_int_equal(f.got.count, 6);
    assert_int_equal(f.got.errors, 1);
    uint64_t total = 0;
    for (int b = 0; b <= DB_LATENCY_BUCKETS; b++)
        total += f.got.bucket[b];
    assert_int_equal(total, 6);
    assert_true(f.got.sum_s > 0 && f.got.sum_s < 1);

    db_slow_threshold_set_ms(100);
    db_set_method(db, "/herald.v1.OpsService/GetProfile");
    assert_int_equal(db_run(db, 2000, "slow_one", "SELECT  pg_sleep(0.15)\n  ", NULL, NULL), ST_OK);
    assert_int_equal(db_run(db, 2000, "fast_one", "SELECT 1", NULL, NULL), ST_OK);
    db_slow_entry e[4];
    size_t n = db_slow_recent(e, 4);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].name, "slow_one");
    assert_string_equal(e[0].method, "/herald.v1.OpsService/GetProfile");
    assert_true(e[0].ms >= 140 && e[0].ms < 1000);
    struct find_ctx g = { "slow_one", { 0 }, false };
    db_stats_foreach(find_stmt, &g);
    assert_true(g.found);
    assert_int_equal(g.got.slow, 1);
    assert_true(g.got.worst_ms >= 140);
    assert_true(g.got.slow_sum_ms >= 140);
    assert_true(g.got.last_slow_at_ms > 0);
    assert_string_equal(g.got.last_method, "/herald.v1.OpsService/GetProfile");
    assert_non_null(g.got.sql);
    assert_string_equal(g.got.sql, "SELECT pg_sleep(?)"); /* normalised, no literal */
    db_stmt_stats all, all_int;
    db_stats_total(&all, false);
    db_stats_total(&all_int, true);
    assert_true(all.count >= 8);            /* 6 probes, the slow one, the fast one */
    assert_true(all_int.count > all.count); /* plus tx_begin/tx_commit... */
    assert_true(db_stats_quantile_ms(all.bucket, 0.99) >= 100);
    db_slow_threshold_set_ms(1000);
    db_close(db);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(sqlstate_mapping),
        cmocka_unit_test(sha256_vectors),
        cmocka_unit_test(latency_quantiles),
        cmocka_unit_test(no_budget_no_io),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test(sql_shaped_strings_round_trip),
        cmocka_unit_test(sqlstates_from_the_server),
        cmocka_unit_test(statement_timeout_from_budget),
        cmocka_unit_test(lock_timeout_from_budget),
        cmocka_unit_test(deadlock_is_conflict),
        cmocka_unit_test(silent_server_client_deadline),
        cmocka_unit_test(transactions),
        cmocka_unit_test(round_trips_and_prepares),
        cmocka_unit_test(stats_and_slow_log),
    };
    int rc = cmocka_run_group_tests_name("db_pure", pure, NULL, NULL);
    g_admin = getenv("DATABASE_URL");
    if (g_admin == NULL || g_admin[0] == '\0') {
        fprintf(stderr, "DATABASE_URL not set: skipping the live tests\n");
        return rc ? rc : TEST_SKIP;
    }
    g_url = tdb_create(g_admin, "herald_test_db", &g_dbname);
    rc |= cmocka_run_group_tests_name("db_live", live, NULL, NULL);
    tdb_drop(g_admin, g_dbname);
    free(g_url);
    free(g_dbname);

    /* Again with db.prepared_statements off: every statement unnamed, as
     * behind a transaction-pooling PgBouncer. */
    tdb_prepared = false;
    g_url = tdb_create(g_admin, "herald_test_db_unprepared", &g_dbname);
    rc |= cmocka_run_group_tests_name("db_live_unprepared", live, NULL, NULL);
    tdb_drop(g_admin, g_dbname);
    free(g_url);
    free(g_dbname);
    return rc;
}
