/* db.h - the PostgreSQL store: the only user of libpq.
 *
 * Threads. One db_conn per worker thread; a db_conn is not thread-safe and
 * must only be used by the thread that owns it. The statement statistics and
 * the slow-query log are process-wide and may be read from any thread.
 *
 * Connections. db_open never touches the network: the connection is made on
 * first use (bounded by connect_timeout_ms and by the call's deadline) and is
 * dropped after any connection error; the next call reconnects, with a
 * bounded exponential backoff between failed attempts (calls made while
 * backing off fail at once with ST_UNAVAILABLE, without waiting).
 *
 * Deadlines. Every statement runs inside a transaction that carries the
 * caller's remaining budget (from rpc_call_remaining_ms): db_begin turns it
 * into SET LOCAL statement_timeout and lock_timeout, later statements shrink
 * them as the budget runs down, and the client gives up (dropping the
 * connection) shortly after the server should have. A budget <= 0 returns
 * ST_TIMEOUT without touching the database.
 *
 * SQL. Parameters only ($1, $2, ... with db_params). Every statement has a
 * short stable name ("profile_get") under which it is timed into a latency
 * histogram and, when slower than the threshold, into the slow-query log.
 * Names are what operators see: never put data in them.
 *
 * Prepared statements (db_options.prepared_statements, default on; config
 * db.prepared_statements). Each connection prepares a statement the first
 * time it runs its text (with that parameter count) and then only binds and
 * executes it: PostgreSQL neither parses nor, once it settles on a generic
 * plan, plans it again. The cache is per connection (at most
 * DB_PREPARED_MAX statements; later texts run unnamed), dies with the
 * connection, and a new connection starts with DEALLOCATE ALL. A prepared
 * statement whose result type a migration changed (SQLSTATE 0A000 "cached
 * plan must not change result type") fails its call with ST_UNAVAILABLE
 * (retry is safe) and drops the connection, so the retry re-prepares.
 * Turn it OFF behind PgBouncer < 1.21 in transaction pooling mode (and
 * behind any pooler that moves a client between server connections without
 * tracking prepared statements): the statements live on server
 * connections. Off, every statement is unnamed (PQexecParams-style), safe
 * behind any pooler. (A connection that meets a missing or duplicate
 * prepared statement turns the cache off for itself.)
 *
 * Round trips. Statements travel in libpq pipeline mode: db_begin sends
 * nothing; BEGIN and the timeouts (set_config ... is_local) go out with the
 * first statement, a lowered timeout with the statement it is for, and
 * db_run's COMMIT with its statement. So db_run is one round trip, and
 * db_begin + N x db_query + db_commit is N + 1. All of it is per
 * transaction (SET LOCAL semantics), so it is safe behind poolers.
 *
 * Errors. Calls return a status; db_errmsg() explains the last failure
 * without SQL text or secrets; db_sqlstate() and db_constraint() say which
 * SQLSTATE and constraint. The mapping (notes/conventions.md §3) is
 * db_status_of_sqlstate(); a lost connection is ST_UNAVAILABLE, the client
 * giving up at the deadline is ST_TIMEOUT.
 *
 * Typical handler:
 *
 *     db_params p;
 *     db_res *res = NULL;
 *     db_params_init(&p);
 *     db_param_text(&p, req->profile_id);
 *     st = db_run(db, rpc_call_remaining_ms(call), "profile_get",
 *                 "SELECT name, version FROM profiles WHERE id = $1", &p, &res);
 *     if (st == ST_OK && db_res_rows(res) == 0)
 *         st = ST_NOT_FOUND;
 *     ...
 *     db_res_free(res);
 *
 * A mutation: db_begin(db, budget) -> db_query()... -> db_commit(db), with
 * db_rollback(db) on any failure path (safe to call always). See also the
 * idempotency helpers (db_idem_*) below. */
#ifndef HERALD_DB_H
#define HERALD_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct db_conn db_conn; /* opaque; one per worker thread */
typedef struct db_res db_res;   /* opaque query result */

typedef struct db_options {
    const char *conninfo;         /* libpq URI or key=value string; copied; secret */
    const char *application_name; /* default "heraldd" */
    int connect_timeout_ms;       /* default 2000 */
    int backoff_min_ms;           /* first wait after a failed connect, default 50 */
    int backoff_max_ms;           /* cap of the doubling wait, default 1000 */
    int deadline_slack_ms;        /* kept back from each budget for the reply, default 20 */
    int client_grace_ms;          /* wait past statement_timeout before dropping, default 50 */
    bool prepared_statements;     /* per-connection prepared statements, default true */
} db_options;

enum { DB_PREPARED_MAX = 256 }; /* prepared statements per connection */

/* Fills o with the defaults above (conninfo NULL: libpq's environment). */
void db_options_init(db_options *o);

/* A lazily connecting handle; never fails, never blocks. Close with db_close. */
db_conn *db_open(const db_options *o);
void db_close(db_conn *db); /* NULL is a no-op; rolls back an open transaction */

/* The reason for the last failure ("" after success). Borrowed until the next
 * call on db. Never contains SQL text or the conninfo. */
const char *db_errmsg(const db_conn *db);
/* SQLSTATE of the last failure ("" when it was not a server error). */
const char *db_sqlstate(const db_conn *db);
/* Constraint named by the last failure (23505 and friends), else "". */
const char *db_constraint(const db_conn *db);
bool db_connected(const db_conn *db);
/* Names the RPC this connection now serves ("/herald.v1.OpsService/
 * GetProfile"; copied), for the slow-query log. The rpc interceptor (or the
 * handler) sets it per call; NULL clears it. */
void db_set_method(db_conn *db, const char *method);

/* ---- parameters ---- */

enum { DB_MAX_PARAMS = 32 };

/* Up to DB_MAX_PARAMS values; strings and byte buffers are borrowed and must
 * stay valid until the statement returns. Exceeding the limit is a bug
 * (assert). Zero-initialised or db_params_init. */
typedef struct db_params {
    int n;
    const char *values[DB_MAX_PARAMS];
    int lengths[DB_MAX_PARAMS];
    int formats[DB_MAX_PARAMS];
    char num[DB_MAX_PARAMS][32]; /* storage for numbers formatted as text */
} db_params;

void db_params_init(db_params *p);
void db_param_text(db_params *p, const char *s); /* NULL -> SQL NULL */
void db_param_int64(db_params *p, int64_t v);
void db_param_double(db_params *p, double v);
void db_param_bool(db_params *p, bool v);
/* bytea, sent in binary; data may be NULL only when len is 0 (empty bytea). */
void db_param_bytes(db_params *p, const void *data, size_t len);
void db_param_null(db_params *p);
/* An instant as epoch milliseconds; use `$n::timestamptz` in SQL. */
void db_param_time_ms(db_params *p, int64_t epoch_ms);

/* ---- statements ---- */

/* Opens a transaction whose statements must finish within budget_ms.
 * ST_TIMEOUT when budget_ms (minus the slack) is <= 0, without I/O;
 * ST_UNAVAILABLE when the database cannot be reached. A transaction must not
 * already be open (bug). Connects if needed but sends nothing: BEGIN goes
 * out with the first statement (a transaction without statements costs no
 * round trip). */
status db_begin(db_conn *db, int64_t budget_ms);

/* Runs one statement inside the open transaction. On ST_OK, *out (when out is
 * not NULL) is a result the caller frees with db_res_free; on failure *out is
 * NULL and the transaction is failed: only db_rollback (or db_commit, which
 * then rolls back and returns the original status) may follow. */
status db_query(db_conn *db, const char *name, const char *sql, const db_params *p, db_res **out);

/* Commits. On failure the transaction is gone either way. ST_UNAVAILABLE from
 * a lost connection during COMMIT is ambiguous (it may have committed): that
 * is why mutations carry idempotency keys. */
status db_commit(db_conn *db);
/* Rolls back an open transaction; a no-op when none is open. Never fails
 * (a broken connection is simply dropped). */
void db_rollback(db_conn *db);
bool db_in_tx(const db_conn *db);

/* One statement in its own transaction: db_begin + db_query + db_commit,
 * sent as one round trip. */
status db_run(db_conn *db, int64_t budget_ms, const char *name, const char *sql, const db_params *p,
              db_res **out);

/* Runs a parameterless multi-statement script (migrations) inside the open
 * transaction, or in autocommit mode when none is open (then with no
 * statement_timeout: only migrate.c does that). */
status db_script(db_conn *db, const char *name, const char *sql);

/* SELECT 1 within budget_ms: the readiness probe. */
status db_ping(db_conn *db, int64_t budget_ms);

/* The status for a SQLSTATE (5 characters): class 08, 57P01..57P04, class
 * 53, class 58 -> ST_UNAVAILABLE; 57014 (statement_timeout) and 55P03
 * (lock_timeout) -> ST_TIMEOUT; 23505, 23P01 -> ST_ALREADY_EXISTS; 40001,
 * 40P01 -> ST_CONFLICT; class 22, 23502, 23503, 23514 -> ST_INVALID;
 * anything else (42xxx: our SQL is wrong) -> ST_INTERNAL. Pure; any thread. */
status db_status_of_sqlstate(const char *sqlstate);

/* ---- results (borrowed views are valid until db_res_free) ---- */

int db_res_rows(const db_res *r);
int db_res_cols(const db_res *r);
int db_res_col(const db_res *r, const char *name); /* column index or -1 */
bool db_res_null(const db_res *r, int row, int col);
const char *db_res_text(const db_res *r, int row, int col); /* "" for NULL */
size_t db_res_len(const db_res *r, int row, int col);
int64_t db_res_int64(const db_res *r, int row, int col); /* 0 for NULL */
double db_res_double(const db_res *r, int row, int col); /* 0 for NULL */
bool db_res_bool(const db_res *r, int row, int col);     /* false for NULL */
/* A bytea column decoded into a new buffer the caller frees (NULL for SQL
 * NULL; a 1-byte allocation for an empty value), length in *len. */
uint8_t *db_res_bytes(const db_res *r, int row, int col, size_t *len);
/* Rows touched by INSERT/UPDATE/DELETE (0 otherwise). */
int64_t db_res_affected(const db_res *r);
void db_res_free(db_res *r); /* NULL is a no-op */

/* ---- idempotency keys (notes/conventions.md §5) ----
 *
 *     db_idem idem;
 *     st = db_idem_begin(db, budget, req->request_id, "/herald.v1.OpsService/CreateProfile",
 *                        req_bytes, req_len, &idem);
 *     if (st != ST_OK) fail (ST_INVALID with db_errmsg = IDEMPOTENCY_KEY_REUSED...)
 *     if (idem.replay) { unpack idem.response, reply with it; db_idem_fini; return }
 *     ... db_query() the mutation inside the open transaction ...
 *     pack the reply; st = db_idem_store(db, &idem, bytes, len);
 *     if (st == ST_OK) st = db_commit(db); else db_rollback(db);
 *     db_idem_fini(&idem);
 *
 * The key is reserved for the transaction with a transaction-level advisory
 * lock, so a concurrent duplicate gets ST_CONFLICT (ABORTED) at once instead
 * of waiting; the row is inserted together with the mutation, so a rolled
 * back mutation leaves no key behind. */

#define DB_IDEM_REUSED "IDEMPOTENCY_KEY_REUSED" /* ErrorInfo reason */
#define DB_IDEM_IN_FLIGHT "IDEMPOTENCY_KEY_IN_FLIGHT"
enum { DB_IDEM_KEY_MAX = 255, DB_IDEM_RETENTION_MIN_S = 86400 };

typedef struct db_idem {
    bool replay;       /* true: send response back; no transaction is open */
    uint8_t *response; /* replay: the stored reply bytes (owned; db_idem_fini) */
    size_t response_len;
    int code;                 /* replay: the stored gRPC code (0 = OK) */
    const char *reason;       /* failure: DB_IDEM_REUSED / DB_IDEM_IN_FLIGHT, else NULL */
    uint8_t request_hash[32]; /* SHA-256 of the request bytes */
    const char *key;          /* borrowed from db_idem_begin's arguments */
    const char *method;
} db_idem;

/* Validates key (1..255 printable ASCII characters, else ST_INVALID; the
 * API's 36-character minimum is the handler's to enforce), opens the mutation's transaction (as
 * db_begin), reserves the key and looks it up:
 *   - ST_OK, replay false: new key; the transaction is open.
 *   - ST_OK, replay true: same key, same method and request bytes: replay;
 *     no transaction is open.
 *   - ST_INVALID: same key, different request (idem->reason ==
 *     DB_IDEM_REUSED, for the ErrorInfo detail), or a malformed key
 *     (reason NULL); no transaction open.
 *   - ST_CONFLICT: the key is held by a call still in flight (reason
 *     DB_IDEM_IN_FLIGHT); no transaction open.
 *   - other failures as db_begin / db_query; no transaction open.
 * req/req_len: the serialized request (hashed; not stored). key and method
 * are borrowed until db_idem_fini. idem is always initialised. */
status db_idem_begin(db_conn *db, int64_t budget_ms, const char *key, const char *method,
                     const void *req, size_t req_len, db_idem *idem);

/* Inside the transaction db_idem_begin opened: records the reply bytes (and
 * gRPC code, normally 0) under the key. Commit afterwards. ST_CONFLICT
 * (reason DB_IDEM_IN_FLIGHT) in the rare race where a twin committed first:
 * roll back; the client's retry replays. */
status db_idem_store(db_conn *db, db_idem *idem, int code, const void *resp, size_t resp_len);

/* db_idem_store followed by db_commit, in one round trip. On failure the
 * transaction is gone (rolled back); ST_CONFLICT (reason DB_IDEM_IN_FLIGHT)
 * as db_idem_store; a failed COMMIT as db_commit. */
status db_idem_commit(db_conn *db, db_idem *idem, int code, const void *resp, size_t resp_len);

void db_idem_fini(db_idem *idem); /* frees the replayed response; NULL ok */

/* Deletes up to limit keys older than retention_s (ST_INVALID below
 * DB_IDEM_RETENTION_MIN_S), oldest first, skipping rows locked by others.
 * *deleted gets the count. Its own transaction; call it again while
 * *deleted == limit. For the background job. */
status db_idem_prune(db_conn *db, int64_t budget_ms, int64_t retention_s, int limit,
                     int64_t *deleted);

/* SHA-256 of data[0..len) into out. Pure; any thread. */
void db_sha256(const void *data, size_t len, uint8_t out[32]);

/* ---- cache versions (see cache/cache.h, "versioned keys") ----
 * The authoritative version of a cached scope ("profile:<id>") lives in
 * PostgreSQL (table cache_versions). A write bumps it inside its own
 * transaction, so once the write is acknowledged every reader builds the
 * new key, whether or not Redis heard about the write. */

/* Inside a transaction: increments the version of scope (creating it at 1)
 * and returns the new value in *version. */
status db_version_bump(db_conn *db, const char *scope, int64_t *version);
/* Inside a transaction: the current version of scope (0 when never bumped). */
status db_version_get(db_conn *db, const char *scope, int64_t *version);

/* ---- notifications (LISTEN / NOTIFY) ----
 * For a thread that owns a db_conn only to listen (vercache.c). The
 * subscription belongs to the server session: a dropped connection loses
 * it, and the reconnect that the next call makes does not restore it;
 * db_session() tells the two apart. */

/* LISTEN channel ([a-z_][a-z0-9_]*, at most 63 bytes; else ST_INVALID) in
 * its own transaction within budget_ms, connecting if needed. On ST_OK
 * every transaction that commits afterwards with NOTIFY channel reaches
 * this connection. */
status db_listen(db_conn *db, int64_t budget_ms, const char *channel);

/* How many connections this handle has made so far (0: none yet). A value
 * other than the one read after db_listen means that subscription is gone. */
uint64_t db_session(const db_conn *db);

/* Called once per notification; channel and payload are borrowed for the
 * call only. */
typedef void (*db_notify_fn)(const char *channel, const char *payload, void *user);

/* Outside a transaction: hands every notification received so far to fn,
 * waits up to wait_ms (0: not at all) for the connection to have more
 * input and hands those over too. ST_OK also when nothing came;
 * ST_UNAVAILABLE when there is no connection or it broke (then dropped).
 * Notifications that arrive during other statements on db (db_ping) are
 * kept by libpq and handed over by the next call. */
status db_notify_wait(db_conn *db, int wait_ms, db_notify_fn fn, void *user);

/* ---- statistics (process-wide; any thread) ---- */

enum { DB_LATENCY_BUCKETS = 14, DB_STMT_NAME_MAX = 64, DB_STMT_SLOTS = 256, DB_METHOD_MAX = 96 };
/* Upper bounds (seconds) of the latency buckets; +Inf implied after them. */
extern const double db_latency_bounds_s[DB_LATENCY_BUCKETS];

typedef struct db_stmt_stats {
    const char *name;                        /* valid for the life of the process */
    uint64_t count;                          /* statements finished (success or not) */
    uint64_t errors;                         /* of which failed */
    uint64_t bucket[DB_LATENCY_BUCKETS + 1]; /* non-cumulative; last = +Inf */
    double sum_s;
    uint64_t slow;                   /* over the slow threshold */
    double worst_ms;                 /* slowest ever */
    int64_t worst_at_ms;             /* epoch ms of the slowest */
    double slow_sum_ms;              /* total of the slow ones (mean = slow_sum_ms / slow) */
    int64_t last_slow_at_ms;         /* epoch ms of the last slow one (0: none) */
    const char *sql;                 /* normalised statement text ($n placeholders, numbers as ?),
                                      * NULL for long scripts; valid for the life of the process */
    char last_method[DB_METHOD_MAX]; /* RPC of the last slow one ("" if unknown) */
} db_stmt_stats;

/* Calls fn once per statement name seen so far (a snapshot read counter by
 * counter, without a lock). Statement names beyond DB_STMT_SLOTS are pooled
 * under "other". */
void db_stats_foreach(void (*fn)(const db_stmt_stats *s, void *user), void *user);

/* Sums every statement's counters into *out (name "all"), leaving out the
 * transaction plumbing (tx_*) and pings unless include_internal. */
void db_stats_total(db_stmt_stats *out, bool include_internal);

/* The q-quantile (0 < q < 1) in ms of a histogram in db_latency_bounds_s
 * buckets, interpolated linearly inside the bucket; -1 when it is empty.
 * The +Inf bucket reports its lower bound. Pure. For GetStatus (p50/p95/p99)
 * and GetSloReport (database_p95). */
double db_stats_quantile_ms(const uint64_t bucket[DB_LATENCY_BUCKETS + 1], double q);

/* Slow-query threshold in ms (default 1000; <= 0 disables the log). */
void db_slow_threshold_set_ms(int64_t ms);
int64_t db_slow_threshold_ms(void);

enum { DB_SLOW_LOG_CAP = 128 };
typedef struct db_slow_entry {
    char name[DB_STMT_NAME_MAX];
    char method[DB_METHOD_MAX]; /* the RPC (db_set_method), "" if unknown */
    double ms;
    int64_t at_ms; /* epoch ms when it finished */
    status st;     /* how it ended */
    char sqlstate[6];
} db_slow_entry;

/* Copies up to cap of the most recent slow statements (newest first) into
 * out; returns how many. The log keeps the last DB_SLOW_LOG_CAP. */
size_t db_slow_recent(db_slow_entry *out, size_t cap);

typedef struct db_pool_stats {
    int64_t open;           /* connections currently established */
    int64_t busy;           /* of which inside a statement now */
    uint64_t connects;      /* successful connects so far */
    uint64_t connect_fails; /* failed attempts */
    uint64_t drops;         /* connections dropped after errors */
    uint64_t roundtrips;    /* exchanges with the server (each waits for its answers) */
    uint64_t prepares;      /* statements prepared on a connection */
} db_pool_stats;
void db_pool_stats_get(db_pool_stats *out);

/* Clears statistics and the slow log (tests). */
void db_stats_reset(void);

/* ---- readiness pinger ----
 * A thread with its own connection that runs probe (default db_ping with a
 * 1 s budget) every interval_ms. The state turns not-ready after
 * fail_threshold consecutive failures and ready after one success; it starts
 * not-ready, and on_change fires once after the first probe and then on every
 * transition, on the pinger thread. main() passes a probe that also checks
 * the schema version (migrate_check_conn) and an on_change that calls
 * health_set("readiness", ...) for readiness and each service name. */
typedef struct db_pinger db_pinger;
/* A probe returns ST_OK when ready, else a status with a reason in why. */
typedef status (*db_probe_fn)(db_conn *db, char *why, size_t cap, void *user);
typedef void (*db_ready_fn)(bool ready, const char *why, void *user);

typedef struct db_pinger_options {
    int interval_ms;     /* default 1000 */
    int fail_threshold;  /* default 3 */
    int probe_budget_ms; /* default 1000 */
    db_probe_fn probe;   /* NULL: db_ping */
    db_ready_fn on_change;
    void *user;
} db_pinger_options;

void db_pinger_options_init(db_pinger_options *o);
/* NULL (with *err, caller frees) if the thread cannot start. */
db_pinger *db_pinger_start(const db_options *dbo, const db_pinger_options *po, char **err);
bool db_pinger_ready(const db_pinger *p); /* the current state; any thread */
/* Stops and joins the thread (waits at most one probe). NULL ok. */
void db_pinger_stop(db_pinger *p);

#endif
