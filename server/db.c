/* db.c - the PostgreSQL store (see db.h). The only file that includes libpq.
 *
 * Every statement is sent with libpq's asynchronous calls and waited for
 * with poll(), so that no call can block past its deadline even when the
 * server stops answering (SIGSTOP, a dead network): statement_timeout covers
 * a slow server, the client-side wait covers a silent one.
 *
 * A "flight" (flight()) is what one round trip carries: in pipeline mode,
 * the transaction plumbing a statement needs (DEALLOCATE ALL on a new
 * connection, the deferred BEGIN, the timeouts), the Parse of a statement
 * this connection has not prepared yet, the statements, maybe COMMIT, then
 * one Sync. The server runs them in order and skips the rest after an
 * error, so the flight fails as a unit, like the separate round trips it
 * replaces. The server answers a pipeline in one piece at the Sync, so the
 * parts cannot be timed apart: the statements share the flight's time
 * (COMMIT and fsync included), the plumbing is counted with none, and
 * COMMIT alone (db_commit) has its own. */
#include "db.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libpq-fe.h>

#include "util.h"

#define NO_DEADLINE INT64_MAX
/* Re-send statement_timeout when the one in force exceeds what is left by
 * more than this; bounds how far past the deadline a statement may run. */
#define RESYNC_SLACK_MS 20
/* Key space (first int4 of the two-key advisory lock form) of idempotency
 * keys: 'HRLD'. The one-bigint form used by migrations does not overlap. */
#define IDEM_LOCK_CLASS 1213353028

typedef enum { TX_NONE = 0, TX_OPEN, TX_FAILED } tx_state;

/* A statement this connection has prepared (PQsendPrepare). */
typedef struct prep_entry {
    uint64_t hash; /* of the text and the parameter count; 0 = free slot */
    char *sql;     /* copy of the text */
    int nparams;
    char stmt[16]; /* its server-side name, "h<n>" */
} prep_entry;

enum { PREP_SLOTS = 512 }; /* open addressing; > DB_PREPARED_MAX keeps probes short */

struct db_conn {
    db_options opt;
    char *conninfo;
    char *appname;
    PGconn *pg;
    int64_t next_connect_ms; /* monotonic; no attempt before this */
    int backoff_ms;          /* next wait after a failure (0: none yet) */
    tx_state tx;
    status tx_status;       /* why the transaction failed */
    int64_t deadline_us;    /* monotonic deadline of the transaction */
    int64_t timeout_set_ms; /* statement_timeout in force in the transaction */
    bool begin_pending;     /* db_begin ran; BEGIN goes out with the first statement */
    bool prep_on;           /* prepare statements on this connection */
    bool prep_reset;        /* send DEALLOCATE ALL first (a new server session) */
    prep_entry *prep;       /* PREP_SLOTS entries, allocated on first use */
    int n_prep;
    unsigned prep_seq; /* names the next one */
    char errmsg[256];
    char sqlstate[6];
    char constraint[64];
    char method[DB_METHOD_MAX]; /* the RPC this connection is serving (stats) */
    uint64_t session;           /* connections made by this handle (db_session) */
};

/* ---------------------------------------------------------------- stats */

const double db_latency_bounds_s[DB_LATENCY_BUCKETS] = { 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                         0.025,  0.05,  0.1,    0.25,  0.5,
                                                         1,      2.5,   5,      10 };

typedef struct stmt_slot {
    _Atomic(char *) name; /* NULL = free; set once (CAS) to a copy never freed */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t errors;
    atomic_uint_fast64_t bucket[DB_LATENCY_BUCKETS + 1];
    atomic_uint_fast64_t sum_us;
    atomic_uint_fast64_t slow;
    atomic_uint_fast64_t worst_us;
    atomic_int_fast64_t worst_at_ms;
    atomic_uint_fast64_t slow_sum_us;
    atomic_int_fast64_t last_slow_ms;
    _Atomic(char *) sql;             /* normalised statement text, set once, never freed */
    char last_method[DB_METHOD_MAX]; /* protected by g_slow_mu */
} stmt_slot;

static stmt_slot g_slots[DB_STMT_SLOTS];
static stmt_slot g_other; /* names past DB_STMT_SLOTS */
static char g_other_name[] = "other";
static atomic_int_fast64_t g_slow_ms = 1000;

static atomic_int_fast64_t g_open;
static atomic_int_fast64_t g_busy;
static atomic_uint_fast64_t g_connects;
static atomic_uint_fast64_t g_connect_fails;
static atomic_uint_fast64_t g_drops;
static atomic_uint_fast64_t g_roundtrips;
static atomic_uint_fast64_t g_prepares;

/* The slow log: rare writes, so one mutex; it protects g_slow_log,
 * g_slow_next and g_slow_len. */
static pthread_mutex_t g_slow_mu = PTHREAD_MUTEX_INITIALIZER;
static db_slow_entry g_slow_log[DB_SLOW_LOG_CAP];
static size_t g_slow_next;
static size_t g_slow_len;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static stmt_slot *slot_find(const char *name)
{
    size_t start = (size_t)(fnv1a(name) % DB_STMT_SLOTS);
    char *mine = NULL;

    for (size_t i = 0; i < DB_STMT_SLOTS; i++) {
        stmt_slot *s = &g_slots[(start + i) % DB_STMT_SLOTS];
        char *cur = atomic_load(&s->name);
        if (cur == NULL) {
            if (mine == NULL)
                mine = xstrndup(name, DB_STMT_NAME_MAX - 1);
            if (atomic_compare_exchange_strong(&s->name, &cur, mine))
                return s;
            /* lost the race: cur now holds the winner's name */
        }
        if (strncmp(cur, name, DB_STMT_NAME_MAX - 1) == 0) {
            free(mine);
            return s;
        }
    }
    free(mine);
    atomic_store(&g_other.name, g_other_name);
    return &g_other;
}

/* Statement text for operators: whitespace collapsed, numbers outside $n
 * placeholders replaced by '?' (only our own integers get spliced, but the
 * log should not depend on that), capped. NULL for long scripts. */
static char *normalise_sql(const char *sql)
{
    size_t n = strlen(sql);
    if (n > 4000)
        return NULL;
    char *out = xmalloc(n + 1);
    size_t o = 0;
    bool space = false;
    for (size_t i = 0; i < n && o < 1000; i++) {
        unsigned char ch = (unsigned char)sql[i];
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            space = o > 0;
            continue;
        }
        if (space) {
            out[o++] = ' ';
            space = false;
        }
        if (ch >= '0' && ch <= '9') {
            unsigned char prev = i ? (unsigned char)sql[i - 1] : ' ';
            bool ident = prev == '$' || prev == '_' || (prev >= 'a' && prev <= 'z') ||
                         (prev >= 'A' && prev <= 'Z') || (prev >= '0' && prev <= '9');
            if (!ident) {
                while (i + 1 < n && ((sql[i + 1] >= '0' && sql[i + 1] <= '9') || sql[i + 1] == '.'))
                    i++;
                out[o++] = '?';
                continue;
            }
        }
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return out;
}

static void slot_note_sql(stmt_slot *s, const char *sql)
{
    if (sql == NULL || atomic_load(&s->sql) != NULL)
        return;
    char *norm = normalise_sql(sql);
    char *none = NULL;
    if (norm == NULL || !atomic_compare_exchange_strong(&s->sql, &none, norm))
        free(norm);
}

static void slow_log_add(stmt_slot *slot, const char *name, const char *method, double ms,
                         status st, const char *sqlstate)
{
    pthread_mutex_lock(&g_slow_mu);
    snprintf(slot->last_method, sizeof slot->last_method, "%s", method);
    db_slow_entry *e = &g_slow_log[g_slow_next];
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->method, sizeof e->method, "%s", method);
    e->ms = ms;
    e->at_ms = now_real_ms();
    e->st = st;
    snprintf(e->sqlstate, sizeof e->sqlstate, "%s", sqlstate);
    g_slow_next = (g_slow_next + 1) % DB_SLOW_LOG_CAP;
    if (g_slow_len < DB_SLOW_LOG_CAP)
        g_slow_len++;
    pthread_mutex_unlock(&g_slow_mu);
}

static void stats_record(const char *name, const char *sql, const char *method, int64_t us,
                         status st, const char *sqlstate)
{
    stmt_slot *s = slot_find(name);
    slot_note_sql(s, sql);
    double sec = (double)us / 1e6;
    size_t b = 0;

    while (b < DB_LATENCY_BUCKETS && sec > db_latency_bounds_s[b])
        b++;
    atomic_fetch_add(&s->count, 1);
    if (st != ST_OK)
        atomic_fetch_add(&s->errors, 1);
    atomic_fetch_add(&s->bucket[b], 1);
    atomic_fetch_add(&s->sum_us, (uint64_t)(us > 0 ? us : 0));

    uint_fast64_t worst = atomic_load(&s->worst_us);
    while ((uint64_t)us > worst) {
        if (atomic_compare_exchange_weak(&s->worst_us, &worst, (uint_fast64_t)us)) {
            atomic_store(&s->worst_at_ms, now_real_ms());
            break;
        }
    }
    int64_t thr = atomic_load(&g_slow_ms);
    if (thr > 0 && us >= thr * 1000) {
        atomic_fetch_add(&s->slow, 1);
        atomic_fetch_add(&s->slow_sum_us, (uint64_t)us);
        atomic_store(&s->last_slow_ms, now_real_ms());
        slow_log_add(s, name, method, (double)us / 1000.0, st, sqlstate);
    }
}

static void slot_snapshot(stmt_slot *s, const char *name, db_stmt_stats *out)
{
    memset(out, 0, sizeof *out);
    out->name = name;
    out->count = atomic_load(&s->count);
    out->errors = atomic_load(&s->errors);
    for (size_t b = 0; b <= DB_LATENCY_BUCKETS; b++)
        out->bucket[b] = atomic_load(&s->bucket[b]);
    out->sum_s = (double)atomic_load(&s->sum_us) / 1e6;
    out->slow = atomic_load(&s->slow);
    out->worst_ms = (double)atomic_load(&s->worst_us) / 1000.0;
    out->worst_at_ms = atomic_load(&s->worst_at_ms);
    out->slow_sum_ms = (double)atomic_load(&s->slow_sum_us) / 1000.0;
    out->last_slow_at_ms = atomic_load(&s->last_slow_ms);
    out->sql = atomic_load(&s->sql);
    pthread_mutex_lock(&g_slow_mu);
    snprintf(out->last_method, sizeof out->last_method, "%s", s->last_method);
    pthread_mutex_unlock(&g_slow_mu);
}

void db_stats_foreach(void (*fn)(const db_stmt_stats *s, void *user), void *user)
{
    db_stmt_stats snap;
    for (size_t i = 0; i < DB_STMT_SLOTS; i++) {
        char *name = atomic_load(&g_slots[i].name);
        if (name == NULL)
            continue;
        slot_snapshot(&g_slots[i], name, &snap);
        fn(&snap, user);
    }
    char *other = atomic_load(&g_other.name);
    if (other != NULL) {
        slot_snapshot(&g_other, other, &snap);
        fn(&snap, user);
    }
}

static bool internal_name(const char *name)
{
    return strncmp(name, "tx_", 3) == 0 || strcmp(name, "ping") == 0;
}

void db_stats_total(db_stmt_stats *out, bool include_internal)
{
    db_stmt_stats snap;
    memset(out, 0, sizeof *out);
    out->name = "all";
    for (size_t i = 0; i <= DB_STMT_SLOTS; i++) {
        stmt_slot *s = i < DB_STMT_SLOTS ? &g_slots[i] : &g_other;
        char *name = atomic_load(&s->name);
        if (name == NULL || (!include_internal && internal_name(name)))
            continue;
        slot_snapshot(s, name, &snap);
        out->count += snap.count;
        out->errors += snap.errors;
        for (size_t b = 0; b <= DB_LATENCY_BUCKETS; b++)
            out->bucket[b] += snap.bucket[b];
        out->sum_s += snap.sum_s;
        out->slow += snap.slow;
        out->slow_sum_ms += snap.slow_sum_ms;
        if (snap.worst_ms > out->worst_ms) {
            out->worst_ms = snap.worst_ms;
            out->worst_at_ms = snap.worst_at_ms;
        }
        if (snap.last_slow_at_ms > out->last_slow_at_ms)
            out->last_slow_at_ms = snap.last_slow_at_ms;
    }
}

double db_stats_quantile_ms(const uint64_t bucket[DB_LATENCY_BUCKETS + 1], double q)
{
    uint64_t total = 0;
    for (size_t b = 0; b <= DB_LATENCY_BUCKETS; b++)
        total += bucket[b];
    if (total == 0 || q <= 0 || q >= 1)
        return -1;
    double rank = q * (double)total;
    double seen = 0;
    for (size_t b = 0; b <= DB_LATENCY_BUCKETS; b++) {
        if (bucket[b] == 0)
            continue;
        double lo = b == 0 ? 0 : db_latency_bounds_s[b - 1];
        if (b == DB_LATENCY_BUCKETS)
            return lo * 1000.0;
        if (seen + (double)bucket[b] >= rank) {
            double frac = (rank - seen) / (double)bucket[b];
            return (lo + frac * (db_latency_bounds_s[b] - lo)) * 1000.0;
        }
        seen += (double)bucket[b];
    }
    return db_latency_bounds_s[DB_LATENCY_BUCKETS - 1] * 1000.0;
}

static void slot_clear(stmt_slot *s)
{
    atomic_store(&s->count, 0);
    atomic_store(&s->errors, 0);
    for (size_t b = 0; b <= DB_LATENCY_BUCKETS; b++)
        atomic_store(&s->bucket[b], 0);
    atomic_store(&s->sum_us, 0);
    atomic_store(&s->slow, 0);
    atomic_store(&s->worst_us, 0);
    atomic_store(&s->worst_at_ms, 0);
    atomic_store(&s->slow_sum_us, 0);
    atomic_store(&s->last_slow_ms, 0);
    pthread_mutex_lock(&g_slow_mu);
    s->last_method[0] = '\0';
    pthread_mutex_unlock(&g_slow_mu);
}

void db_stats_reset(void)
{
    for (size_t i = 0; i < DB_STMT_SLOTS; i++)
        slot_clear(&g_slots[i]);
    slot_clear(&g_other);
    pthread_mutex_lock(&g_slow_mu);
    g_slow_next = 0;
    g_slow_len = 0;
    pthread_mutex_unlock(&g_slow_mu);
    atomic_store(&g_connects, 0);
    atomic_store(&g_connect_fails, 0);
    atomic_store(&g_drops, 0);
    atomic_store(&g_roundtrips, 0);
    atomic_store(&g_prepares, 0);
}

void db_slow_threshold_set_ms(int64_t ms)
{
    atomic_store(&g_slow_ms, ms);
}

int64_t db_slow_threshold_ms(void)
{
    return atomic_load(&g_slow_ms);
}

size_t db_slow_recent(db_slow_entry *out, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&g_slow_mu);
    for (size_t i = 0; i < g_slow_len && n < cap; i++) {
        size_t idx = (g_slow_next + DB_SLOW_LOG_CAP - 1 - i) % DB_SLOW_LOG_CAP;
        out[n++] = g_slow_log[idx];
    }
    pthread_mutex_unlock(&g_slow_mu);
    return n;
}

void db_pool_stats_get(db_pool_stats *out)
{
    out->open = atomic_load(&g_open);
    out->busy = atomic_load(&g_busy);
    out->connects = atomic_load(&g_connects);
    out->connect_fails = atomic_load(&g_connect_fails);
    out->drops = atomic_load(&g_drops);
    out->roundtrips = atomic_load(&g_roundtrips);
    out->prepares = atomic_load(&g_prepares);
}

/* ---------------------------------------------------------------- errors */

status db_status_of_sqlstate(const char *ss)
{
    if (ss == NULL || strlen(ss) != 5)
        return ST_INTERNAL;
    if (strncmp(ss, "08", 2) == 0 || strncmp(ss, "53", 2) == 0 || strncmp(ss, "58", 2) == 0)
        return ST_UNAVAILABLE;
    if (strcmp(ss, "57P01") == 0 || strcmp(ss, "57P02") == 0 || strcmp(ss, "57P03") == 0 ||
        strcmp(ss, "57P04") == 0)
        return ST_UNAVAILABLE;
    if (strcmp(ss, "57014") == 0 || strcmp(ss, "55P03") == 0)
        return ST_TIMEOUT;
    if (strcmp(ss, "23505") == 0 || strcmp(ss, "23P01") == 0)
        return ST_ALREADY_EXISTS;
    if (strcmp(ss, "40001") == 0 || strcmp(ss, "40P01") == 0)
        return ST_CONFLICT;
    if (strncmp(ss, "22", 2) == 0 || strcmp(ss, "23502") == 0 || strcmp(ss, "23503") == 0 ||
        strcmp(ss, "23514") == 0)
        return ST_INVALID;
    return ST_INTERNAL;
}

static void clear_error(db_conn *db)
{
    db->errmsg[0] = '\0';
    db->sqlstate[0] = '\0';
    db->constraint[0] = '\0';
}

static status fail(db_conn *db, status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static status fail(db_conn *db, status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof db->errmsg, fmt, ap);
    va_end(ap);
    return st;
}

/* First line of a libpq message, without the trailing newline. */
static void first_line(const char *msg, char *out, size_t cap)
{
    size_t n = 0;
    if (msg == NULL)
        msg = "";
    while (msg[n] != '\0' && msg[n] != '\n' && n + 1 < cap)
        n++;
    memcpy(out, msg, n);
    out[n] = '\0';
}

/* A server-side error result: SQLSTATE -> status; the message keeps the
 * statement name, the server's primary message (never our SQL text) and
 * the SQLSTATE. */
static status fail_result(db_conn *db, const char *name, const PGresult *res)
{
    const char *ss = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
    char line[160];

    if (ss == NULL) {
        /* a client-side failure reported as a result: treat as lost connection */
        first_line(PQresultErrorMessage(res), line, sizeof line);
        return fail(db, ST_UNAVAILABLE, "%s: database connection lost: %s", name, line);
    }
    first_line(primary, line, sizeof line);
    snprintf(db->sqlstate, sizeof db->sqlstate, "%s", ss);
    snprintf(db->constraint, sizeof db->constraint, "%s", cons ? cons : "");
    return fail(db, db_status_of_sqlstate(ss), "%s: %s (SQLSTATE %s)", name, line, ss);
}

const char *db_errmsg(const db_conn *db)
{
    return db->errmsg;
}

const char *db_sqlstate(const db_conn *db)
{
    return db->sqlstate;
}

const char *db_constraint(const db_conn *db)
{
    return db->constraint;
}

void db_set_method(db_conn *db, const char *method)
{
    snprintf(db->method, sizeof db->method, "%s", method ? method : "");
}

bool db_connected(const db_conn *db)
{
    return db->pg != NULL;
}

bool db_in_tx(const db_conn *db)
{
    return db->tx != TX_NONE;
}

/* ---------------------------------------------------------------- connection */

void db_options_init(db_options *o)
{
    memset(o, 0, sizeof *o);
    o->application_name = "heraldd";
    o->connect_timeout_ms = 2000;
    o->backoff_min_ms = 50;
    o->backoff_max_ms = 1000;
    o->deadline_slack_ms = 20;
    o->client_grace_ms = 50;
    o->prepared_statements = true;
}

db_conn *db_open(const db_options *o)
{
    db_conn *db = xcalloc(1, sizeof *db);
    db_options def;

    db_options_init(&def);
    db->opt = o ? *o : def;
    db->conninfo = xstrdup(db->opt.conninfo ? db->opt.conninfo : "");
    db->appname = xstrdup(db->opt.application_name ? db->opt.application_name : "heraldd");
    db->opt.conninfo = NULL; /* only the copy is used */
    db->opt.application_name = NULL;
    if (db->opt.connect_timeout_ms <= 0)
        db->opt.connect_timeout_ms = def.connect_timeout_ms;
    if (db->opt.backoff_min_ms <= 0)
        db->opt.backoff_min_ms = def.backoff_min_ms;
    if (db->opt.backoff_max_ms < db->opt.backoff_min_ms)
        db->opt.backoff_max_ms = db->opt.backoff_min_ms;
    if (db->opt.deadline_slack_ms < 0)
        db->opt.deadline_slack_ms = 0;
    if (db->opt.client_grace_ms < 0)
        db->opt.client_grace_ms = 0;
    db->prep_on = db->opt.prepared_statements;
    return db;
}

/* ---------------------------------------------------------------- prepared statements */

static uint64_t prep_hash(const char *sql, int nparams)
{
    uint64_t h = fnv1a(sql) ^ ((uint64_t)(unsigned)nparams * 0x9e3779b97f4a7c15ULL);
    return h != 0 ? h : 1;
}

static prep_entry *prep_find(const db_conn *db, uint64_t h, const char *sql, int nparams)
{
    if (db->prep == NULL)
        return NULL;
    /* ends: the table is never full (DB_PREPARED_MAX < PREP_SLOTS) */
    for (size_t i = h & (PREP_SLOTS - 1);; i = (i + 1) & (PREP_SLOTS - 1)) {
        prep_entry *e = &db->prep[i];
        if (e->hash == 0)
            return NULL;
        if (e->hash == h && e->nparams == nparams && strcmp(e->sql, sql) == 0)
            return e;
    }
}

static void prep_add(db_conn *db, uint64_t h, const char *sql, int nparams, const char *stmt)
{
    if (db->n_prep >= DB_PREPARED_MAX)
        return;
    if (db->prep == NULL)
        db->prep = xcalloc(PREP_SLOTS, sizeof *db->prep);
    size_t i = h & (PREP_SLOTS - 1);
    while (db->prep[i].hash != 0)
        i = (i + 1) & (PREP_SLOTS - 1);
    prep_entry *e = &db->prep[i];
    e->hash = h;
    e->sql = xstrdup(sql);
    e->nparams = nparams;
    snprintf(e->stmt, sizeof e->stmt, "%s", stmt);
    db->n_prep++;
    atomic_fetch_add(&g_prepares, 1);
}

/* Forgets every prepared statement (they die with the server session). */
static void prep_clear(db_conn *db)
{
    if (db->prep != NULL) {
        for (size_t i = 0; i < PREP_SLOTS; i++)
            free(db->prep[i].sql);
        memset(db->prep, 0, PREP_SLOTS * sizeof *db->prep);
    }
    db->n_prep = 0;
}

/* Worth preparing: a query (DML or SELECT), not DDL, utility or plumbing,
 * which are rare or one-off and would only fill the cache. */
static bool preparable(const char *sql)
{
    static const char *const kw[] = { "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "VALUES" };
    while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r' || *sql == '(')
        sql++;
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++) {
        size_t n = strlen(kw[i]);
        if (strncasecmp(sql, kw[i], n) == 0 && (sql[n] == ' ' || sql[n] == '\n' || sql[n] == '\t' ||
                                                sql[n] == '\r' || sql[n] == '(' || sql[n] == '\0'))
            return true;
    }
    return false;
}

static void drop_conn(db_conn *db)
{
    if (db->pg == NULL)
        return;
    PQfinish(db->pg);
    db->pg = NULL;
    db->tx = TX_NONE;
    db->begin_pending = false;
    prep_clear(db);
    atomic_fetch_sub(&g_open, 1);
    atomic_fetch_add(&g_drops, 1);
}

void db_close(db_conn *db)
{
    if (db == NULL)
        return;
    if (db->pg != NULL) {
        if (db->tx != TX_NONE)
            db_rollback(db);
        if (db->pg != NULL) {
            PQfinish(db->pg);
            db->pg = NULL;
            atomic_fetch_sub(&g_open, 1);
        }
    }
    prep_clear(db);
    free(db->prep);
    free(db->conninfo);
    free(db->appname);
    free(db);
}

/* Waits until fd is ready for events or deadline_us (monotonic) passes.
 * Returns 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline_us)
{
    for (;;) {
        int timeout = -1;
        if (deadline_us != NO_DEADLINE) {
            int64_t left_us = deadline_us - now_mono_us();
            if (left_us <= 0)
                return 0;
            int64_t ms = (left_us + 999) / 1000;
            timeout = ms > 60000 ? 60000 : (int)ms;
        }
        struct pollfd pfd = { .fd = fd, .events = events };
        int rc = poll(&pfd, 1, timeout);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -1;
        /* rc == 0 with a 60 s slice, or EINTR: recheck the deadline */
    }
}

static void note_connect_failure(db_conn *db)
{
    atomic_fetch_add(&g_connect_fails, 1);
    int b = db->backoff_ms ? db->backoff_ms : db->opt.backoff_min_ms;
    /* +-25% jitter so that N workers do not reconnect in lock step */
    int jitter = b / 4 > 0 ? (int)(random() % (b / 2 + 1)) - b / 4 : 0;
    db->next_connect_ms = now_mono_ms() + b + jitter;
    db->backoff_ms = b * 2 > db->opt.backoff_max_ms ? db->opt.backoff_max_ms : b * 2;
}

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Connects if needed, without waiting past deadline_us or the connect
 * timeout. Backing off: ST_UNAVAILABLE at once. */
static status ensure_conn(db_conn *db, int64_t deadline_us)
{
    status st;
    char line[160];
    PGconn *pg = NULL;

    if (db->pg != NULL)
        return ST_OK;
    int64_t now_ms = now_mono_ms();
    if (now_ms < db->next_connect_ms)
        return fail(db, ST_UNAVAILABLE,
                    "database unavailable; next connection attempt in %" PRId64 " ms",
                    db->next_connect_ms - now_ms);

    int64_t conn_deadline = now_mono_us() + (int64_t)db->opt.connect_timeout_ms * 1000;
    bool cut_by_call = false;
    if (deadline_us < conn_deadline) {
        conn_deadline = deadline_us;
        cut_by_call = true;
    }

    const char *keys[] = { "dbname", "application_name", NULL };
    const char *vals[] = { db->conninfo, db->appname, NULL };
    pg = PQconnectStartParams(keys, vals, 1);
    if (pg == NULL || PQstatus(pg) == CONNECTION_BAD) {
        first_line(pg ? PQerrorMessage(pg) : "out of memory", line, sizeof line);
        st = fail(db, ST_UNAVAILABLE, "database connection failed: %s", line);
        note_connect_failure(db);
        goto out;
    }
    for (;;) {
        PostgresPollingStatusType ps = PQconnectPoll(pg);
        if (ps == PGRES_POLLING_OK)
            break;
        if (ps == PGRES_POLLING_FAILED) {
            first_line(PQerrorMessage(pg), line, sizeof line);
            st = fail(db, ST_UNAVAILABLE, "database connection failed: %s", line);
            note_connect_failure(db);
            goto out;
        }
        short ev = ps == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        int w = wait_fd(PQsocket(pg), ev, conn_deadline);
        if (w <= 0) {
            if (w == 0 && cut_by_call) {
                /* our deadline, not the database: no backoff penalty */
                st = fail(db, ST_TIMEOUT, "deadline passed while connecting to the database");
            } else {
                st = fail(db, ST_UNAVAILABLE, "database connection timed out after %d ms",
                          db->opt.connect_timeout_ms);
                note_connect_failure(db);
            }
            goto out;
        }
    }
    /* NOTICEs (DROP ... IF EXISTS) would go to stderr: modules never log */
    PQsetNoticeProcessor(pg, quiet_notice, NULL);
    if (PQsetnonblocking(pg, 1) != 0) {
        st = fail(db, ST_UNAVAILABLE, "database connection: cannot set non-blocking mode");
        note_connect_failure(db);
        goto out;
    }
    db->pg = pg;
    pg = NULL;
    prep_clear(db);
    /* A pooler in session mode may hand us a server session that still has
     * someone's statements: start clean (it travels with the first flight). */
    db->prep_reset = db->prep_on;
    db->backoff_ms = 0;
    db->next_connect_ms = 0;
    atomic_fetch_add(&g_open, 1);
    atomic_fetch_add(&g_connects, 1);
    db->session++;
    st = ST_OK;
out:
    PQfinish(pg); /* NULL-safe */
    return st;
}

/* Writes what libpq holds for the server, reading meanwhile so that neither
 * side blocks. False on a connection error, or (*timed_out) at the deadline. */
static bool flush_out(db_conn *db, int64_t wait_deadline_us, bool *timed_out)
{
    for (;;) {
        int f = PQflush(db->pg);
        if (f == 0)
            return true;
        if (f < 0)
            return false;
        int w = wait_fd(PQsocket(db->pg), POLLOUT | POLLIN, wait_deadline_us);
        if (w == 0) {
            *timed_out = true;
            return false;
        }
        if (w < 0 || !PQconsumeInput(db->pg))
            return false;
    }
}

/* Sends one statement (or a script when multi) and collects its results.
 * On ST_OK *out is the last result (NULL when out is NULL). Connection
 * failures and client-side timeouts drop the connection. */
static status roundtrip(db_conn *db, const char *name, const char *sql, const db_params *p,
                        bool multi, int64_t wait_deadline_us, PGresult **out)
{
    status st = ST_OK;
    PGresult *last = NULL;
    PGresult *err = NULL;
    int64_t t0 = now_mono_us();
    bool timed_out = false;
    char line[160];

    if (out)
        *out = NULL;
    atomic_fetch_add(&g_busy, 1);
    atomic_fetch_add(&g_roundtrips, 1);
    int sent;
    if (multi)
        sent = PQsendQuery(db->pg, sql);
    else
        sent = PQsendQueryParams(db->pg, sql, p ? p->n : 0, NULL, p ? p->values : NULL,
                                 p ? p->lengths : NULL, p ? p->formats : NULL, 0);
    if (!sent)
        goto conn_error;
    if (!flush_out(db, wait_deadline_us, &timed_out))
        goto conn_error;
    for (;;) {
        while (PQisBusy(db->pg)) {
            int w = wait_fd(PQsocket(db->pg), POLLIN, wait_deadline_us);
            if (w == 0) {
                timed_out = true;
                goto conn_error;
            }
            if (w < 0 || !PQconsumeInput(db->pg))
                goto conn_error;
        }
        PGresult *r = PQgetResult(db->pg);
        if (r == NULL)
            break;
        ExecStatusType es = PQresultStatus(r);
        if (es == PGRES_FATAL_ERROR || es == PGRES_BAD_RESPONSE || es == PGRES_NONFATAL_ERROR) {
            if (err == NULL)
                err = r;
            else
                PQclear(r);
        } else if (es == PGRES_COPY_IN || es == PGRES_COPY_OUT || es == PGRES_COPY_BOTH) {
            /* COPY is never used through this API: a bug in the caller's SQL */
            PQclear(r);
            st = fail(db, ST_INTERNAL, "%s: COPY is not supported", name);
            drop_conn(db);
            goto out;
        } else {
            PQclear(last);
            last = r;
        }
    }
    if (err != NULL) {
        st = fail_result(db, name, err);
        if (st == ST_UNAVAILABLE || PQstatus(db->pg) == CONNECTION_BAD)
            drop_conn(db); /* server going away, or the socket is gone */
        if (st == ST_OK)
            st = ST_INTERNAL;
        goto out;
    }
    if (PQstatus(db->pg) == CONNECTION_BAD) {
        st = fail(db, ST_UNAVAILABLE, "%s: database connection lost", name);
        drop_conn(db);
        goto out;
    }
    if (out) {
        *out = last;
        last = NULL;
    }
    goto out;

conn_error:
    if (timed_out) {
        st = fail(db, ST_TIMEOUT, "%s: database did not answer before the deadline", name);
    } else {
        first_line(PQerrorMessage(db->pg), line, sizeof line);
        st = fail(db, ST_UNAVAILABLE, "%s: database connection lost: %s", name, line);
    }
    drop_conn(db);
out:
    atomic_fetch_sub(&g_busy, 1);
    stats_record(name, sql, db->method, now_mono_us() - t0, st, db->sqlstate);
    PQclear(err);
    PQclear(last);
    return st;
}

/* ---------------------------------------------------------------- flights */

/* A caller's statement in a flight. */
typedef struct fl_stmt {
    const char *name;
    const char *sql;
    const db_params *p;
    PGresult *res; /* its last result when the flight succeeded; the caller frees it */
} fl_stmt;

typedef enum { OP_RESET, OP_BEGIN, OP_TIMEOUT, OP_STMT, OP_COMMIT } op_kind;

typedef struct fl_op {
    op_kind kind;
    const char *name; /* for the statistics and errors */
    const char *sql;
    const db_params *p;
    fl_stmt *st;   /* OP_STMT: the caller's statement */
    bool named;    /* executes the prepared statement stmt */
    bool prepare;  /* ... after preparing it (then caches it) */
    bool prepared; /* the Parse succeeded */
    bool ran;      /* the server executed it (not skipped after an error) */
    bool recorded; /* its statistics are in */
    uint64_t hash; /* prepare: the cache key */
    char stmt[16]; /* server-side name when named */
} fl_op;

enum { FL_MAX_STMTS = 4, FL_MAX_OPS = FL_MAX_STMTS + 4 };

#define TIMEOUT_SQL                                                                     \
    "SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $1, " \
    "true)"

/* Chooses how op runs: a statement this connection prepared (by name), one
 * to prepare now, or unnamed. new_prepares counts this flight's Parses. */
static void op_plan(db_conn *db, fl_op *ops, int i, int *new_prepares)
{
    fl_op *o = &ops[i];
    if (!db->prep_on || !preparable(o->sql))
        return;
    int n = o->p ? o->p->n : 0;
    o->hash = prep_hash(o->sql, n);
    const prep_entry *e = prep_find(db, o->hash, o->sql, n);
    if (e != NULL) {
        o->named = true;
        memcpy(o->stmt, e->stmt, sizeof o->stmt);
        return;
    }
    for (int k = 0; k < i; k++) {
        if (ops[k].prepare && ops[k].hash == o->hash && strcmp(ops[k].sql, o->sql) == 0 &&
            (ops[k].p ? ops[k].p->n : 0) == n) {
            o->named = true; /* the same text earlier in this flight */
            memcpy(o->stmt, ops[k].stmt, sizeof o->stmt);
            return;
        }
    }
    if (db->n_prep + *new_prepares >= DB_PREPARED_MAX)
        return;
    o->named = o->prepare = true;
    snprintf(o->stmt, sizeof o->stmt, "h%u", ++db->prep_seq);
    (*new_prepares)++;
}

static bool op_send(db_conn *db, const fl_op *o)
{
    int n = o->p ? o->p->n : 0;
    const char *const *v = o->p ? o->p->values : NULL;
    const int *l = o->p ? o->p->lengths : NULL;
    const int *f = o->p ? o->p->formats : NULL;
    if (o->prepare && !PQsendPrepare(db->pg, o->stmt, o->sql, n, NULL))
        return false;
    if (o->named)
        return PQsendQueryPrepared(db->pg, o->stmt, n, v, l, f, 0) != 0;
    return PQsendQueryParams(db->pg, o->sql, n, NULL, v, l, f, 0) != 0;
}

/* Statistics of ops[i]: a statement gets its share of the flight's time so
 * far, plumbing that travelled with it nothing. */
static void stats_record_op(db_conn *db, const fl_op *ops, int nops, int i, int64_t t0, int n_timed,
                            status st)
{
    const fl_op *o = &ops[i];
    int64_t us = 0;
    if ((o->kind == OP_STMT || nops == 1) && n_timed > 0)
        us = (now_mono_us() - t0) / n_timed;
    stats_record(o->name, o->sql, db->method, us, st, db->sqlstate);
}

/* Until libpq has a result ready: 1, 0 the deadline passed, -1 connection error. */
static int await_result(db_conn *db, int64_t deadline_us)
{
    while (PQisBusy(db->pg)) {
        int w = wait_fd(PQsocket(db->pg), POLLIN, deadline_us);
        if (w <= 0)
            return w;
        if (!PQconsumeInput(db->pg))
            return -1;
    }
    return 1;
}

/* The statements s[0..n) with the plumbing they need, and COMMIT when
 * commit, as one round trip (see the top of the file). On ST_OK each
 * s[i].res holds the statement's result. On failure they are NULL, the
 * reason is on db and, when the server is gone, the connection dropped.
 * Updates begin_pending, the timeout in force and, when COMMIT ran, tx. */
static status flight(db_conn *db, fl_stmt *s, int n, bool commit, int64_t wait_deadline_us)
{
    fl_op ops[FL_MAX_OPS];
    int nops = 0, new_prepares = 0, failed = -1;
    db_params tp;
    int64_t left_ms = 0;
    status st = ST_OK;
    bool timed_out = false, drop = false;
    char line[160];

    assert(n >= 0 && n <= FL_MAX_STMTS);
    memset(ops, 0, sizeof ops);
    for (int i = 0; i < n; i++)
        s[i].res = NULL;
    if (db->prep_reset)
        ops[nops++] = (fl_op){ .kind = OP_RESET, .name = "tx_reset", .sql = "DEALLOCATE ALL" };
    if (db->begin_pending)
        ops[nops++] = (fl_op){ .kind = OP_BEGIN, .name = "tx_begin", .sql = "BEGIN" };
    if (n > 0 && db->deadline_us != NO_DEADLINE) {
        /* the timeouts in force must not outlast the budget by more than the
         * slack: sent with the first statement, lowered as the budget runs
         * down (integers we computed, as text parameters) */
        left_ms = (db->deadline_us - now_mono_us()) / 1000;
        if (left_ms < 1)
            left_ms = 1;
        if (db->begin_pending || db->timeout_set_ms - left_ms > RESYNC_SLACK_MS) {
            db_params_init(&tp);
            db_param_int64(&tp, left_ms);
            ops[nops] =
                (fl_op){ .kind = OP_TIMEOUT, .name = "tx_timeout", .sql = TIMEOUT_SQL, .p = &tp };
            op_plan(db, ops, nops, &new_prepares);
            nops++;
        }
    }
    for (int i = 0; i < n; i++) {
        ops[nops] = (fl_op){
            .kind = OP_STMT, .name = s[i].name, .sql = s[i].sql, .p = s[i].p, .st = &s[i]
        };
        op_plan(db, ops, nops, &new_prepares);
        nops++;
    }
    if (commit)
        ops[nops++] = (fl_op){ .kind = OP_COMMIT, .name = "tx_commit", .sql = "COMMIT" };
    if (nops == 0)
        return ST_OK;

    int64_t t0 = now_mono_us();
    int n_timed = 0; /* ops the flight's time is shared among */
    for (int i = 0; i < nops; i++)
        if (ops[i].kind == OP_STMT || nops == 1)
            n_timed++;
    atomic_fetch_add(&g_busy, 1);
    atomic_fetch_add(&g_roundtrips, 1);
    if (!PQenterPipelineMode(db->pg))
        goto conn_error;
    for (int i = 0; i < nops; i++)
        if (!op_send(db, &ops[i]))
            goto conn_error;
    if (!PQpipelineSync(db->pg))
        goto conn_error;
    if (!flush_out(db, wait_deadline_us, &timed_out))
        goto conn_error;

    /* Every op answers with its results and then NULL (a Parse first has
     * its own); ops after an error answer PIPELINE_ABORTED; then the Sync. */
    for (int i = 0; i < nops; i++) {
        fl_op *o = &ops[i];
        status ost = ST_OK;
        for (int part = o->prepare ? 0 : 1; part < 2; part++) {
            for (;;) {
                int w = await_result(db, wait_deadline_us);
                if (w <= 0) {
                    timed_out = w == 0;
                    goto conn_error;
                }
                PGresult *r = PQgetResult(db->pg);
                if (r == NULL)
                    break;
                ExecStatusType es = PQresultStatus(r);
                if (es == PGRES_PIPELINE_ABORTED) {
                    PQclear(r);
                } else if (es == PGRES_FATAL_ERROR || es == PGRES_BAD_RESPONSE ||
                           es == PGRES_NONFATAL_ERROR) {
                    if (failed < 0) {
                        failed = i;
                        ost = st = fail_result(db, o->name, r);
                    }
                    o->ran = true;
                    PQclear(r);
                } else if (es == PGRES_COPY_IN || es == PGRES_COPY_OUT || es == PGRES_COPY_BOTH) {
                    /* COPY is never used through this API: a bug in the caller's SQL */
                    PQclear(r);
                    st = fail(db, ST_INTERNAL, "%s: COPY is not supported", o->name);
                    drop_conn(db);
                    goto out;
                } else if (part == 0) {
                    o->prepared = true;
                    PQclear(r);
                } else {
                    o->ran = true;
                    if (o->kind == OP_STMT) {
                        PQclear(o->st->res);
                        o->st->res = r;
                    } else {
                        PQclear(r);
                    }
                }
            }
        }
        if (o->ran) {
            stats_record_op(db, ops, nops, i, t0, n_timed, ost);
            o->recorded = true;
        }
        if (o->prepared)
            prep_add(db, o->hash, o->sql, o->p ? o->p->n : 0, o->stmt);
    }
    for (;;) {
        int w = await_result(db, wait_deadline_us);
        if (w <= 0) {
            timed_out = w == 0;
            goto conn_error;
        }
        PGresult *r = PQgetResult(db->pg);
        if (r == NULL)
            continue; /* not yet the Sync */
        ExecStatusType es = PQresultStatus(r);
        PQclear(r);
        if (es == PGRES_PIPELINE_SYNC)
            break;
    }
    if (!PQexitPipelineMode(db->pg))
        goto conn_error;

    for (int i = 0; i < nops; i++) {
        const fl_op *o = &ops[i];
        bool ok = o->ran && failed != i;
        if (o->kind == OP_RESET && ok)
            db->prep_reset = false;
        else if (o->kind == OP_BEGIN && o->ran)
            db->begin_pending = false;
        else if (o->kind == OP_TIMEOUT && ok)
            db->timeout_set_ms = left_ms;
        else if (o->kind == OP_COMMIT && o->ran)
            db->tx = TX_NONE; /* committed, or rolled back by the failure */
    }
    if (failed >= 0) {
        const fl_op *o = &ops[failed];
        if (o->named && strcmp(db->sqlstate, "0A000") == 0) {
            /* "cached plan must not change result type": a migration changed
             * what the statement returns; a new connection prepares afresh */
            st = fail(db, ST_UNAVAILABLE,
                      "%s: a schema change invalidated the prepared statement; retry", o->name);
            drop = true;
        } else if (o->named &&
                   (strcmp(db->sqlstate, "26000") == 0 || strcmp(db->sqlstate, "42P05") == 0)) {
            /* our statements vanish or clash: a pooler shares server
             * sessions; this handle stops preparing */
            db->prep_on = false;
            st = fail(db, ST_UNAVAILABLE,
                      "%s: prepared statements are not kept by this connection (a pooler in "
                      "transaction mode?); turned off, retry",
                      o->name);
            drop = true;
        } else if (st == ST_UNAVAILABLE) {
            drop = true; /* the server is going away */
        } else if (st == ST_OK) {
            st = ST_INTERNAL;
        }
    }
    if (!drop && PQstatus(db->pg) == CONNECTION_BAD) {
        if (st == ST_OK)
            st = fail(db, ST_UNAVAILABLE, "%s: database connection lost", ops[nops - 1].name);
        drop = true;
    }
    if (drop)
        drop_conn(db);
    goto out;

conn_error:
    if (timed_out) {
        st = fail(db, ST_TIMEOUT, "%s: database did not answer before the deadline",
                  ops[nops - 1].name);
    } else {
        first_line(PQerrorMessage(db->pg), line, sizeof line);
        st = fail(db, ST_UNAVAILABLE, "%s: database connection lost: %s", ops[nops - 1].name, line);
    }
    for (int i = 0; i < nops; i++) /* the statements that did not answer */
        if (!ops[i].recorded && (ops[i].kind == OP_STMT || nops == 1))
            stats_record_op(db, ops, nops, i, t0, n_timed, st);
    drop_conn(db);
out:
    atomic_fetch_sub(&g_busy, 1);
    if (st != ST_OK) {
        for (int i = 0; i < n; i++) {
            PQclear(s[i].res);
            s[i].res = NULL;
        }
    }
    return st;
}

/* ---------------------------------------------------------------- params */

void db_params_init(db_params *p)
{
    p->n = 0;
}

static int param_slot(db_params *p)
{
    assert(p->n < DB_MAX_PARAMS && "too many statement parameters");
    int i = p->n++;
    p->lengths[i] = 0;
    p->formats[i] = 0;
    return i;
}

void db_param_text(db_params *p, const char *s)
{
    int i = param_slot(p);
    p->values[i] = s;
}

void db_param_null(db_params *p)
{
    int i = param_slot(p);
    p->values[i] = NULL;
}

void db_param_int64(db_params *p, int64_t v)
{
    int i = param_slot(p);
    snprintf(p->num[i], sizeof p->num[i], "%" PRId64, v);
    p->values[i] = p->num[i];
}

void db_param_double(db_params *p, double v)
{
    int i = param_slot(p);
    snprintf(p->num[i], sizeof p->num[i], "%.17g", v);
    p->values[i] = p->num[i];
}

void db_param_bool(db_params *p, bool v)
{
    int i = param_slot(p);
    p->values[i] = v ? "true" : "false";
}

void db_param_bytes(db_params *p, const void *data, size_t len)
{
    int i = param_slot(p);
    assert(len <= INT32_MAX);
    p->values[i] = data ? (const char *)data : "";
    p->lengths[i] = (int)len;
    p->formats[i] = 1;
}

void db_param_time_ms(db_params *p, int64_t epoch_ms)
{
    int i = param_slot(p);
    fmt_rfc3339_ms(epoch_ms, p->num[i], sizeof p->num[i]);
    p->values[i] = p->num[i];
}

/* ---------------------------------------------------------------- results */

static const PGresult *R(const db_res *r)
{
    return (const PGresult *)(const void *)r;
}

int db_res_rows(const db_res *r)
{
    return r ? PQntuples(R(r)) : 0;
}

int db_res_cols(const db_res *r)
{
    return r ? PQnfields(R(r)) : 0;
}

int db_res_col(const db_res *r, const char *name)
{
    return r ? PQfnumber(R(r), name) : -1;
}

bool db_res_null(const db_res *r, int row, int col)
{
    return PQgetisnull(R(r), row, col) != 0;
}

const char *db_res_text(const db_res *r, int row, int col)
{
    return PQgetvalue(R(r), row, col);
}

size_t db_res_len(const db_res *r, int row, int col)
{
    return (size_t)PQgetlength(R(r), row, col);
}

int64_t db_res_int64(const db_res *r, int row, int col)
{
    if (db_res_null(r, row, col))
        return 0;
    return strtoll(PQgetvalue(R(r), row, col), NULL, 10);
}

double db_res_double(const db_res *r, int row, int col)
{
    if (db_res_null(r, row, col))
        return 0;
    return strtod(PQgetvalue(R(r), row, col), NULL);
}

bool db_res_bool(const db_res *r, int row, int col)
{
    const char *v = PQgetvalue(R(r), row, col);
    return !db_res_null(r, row, col) && v[0] == 't';
}

uint8_t *db_res_bytes(const db_res *r, int row, int col, size_t *len)
{
    *len = 0;
    if (db_res_null(r, row, col))
        return NULL;
    size_t n = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(R(r), row, col), &n);
    if (raw == NULL)
        abort(); /* only fails on out-of-memory, like xmalloc */
    uint8_t *copy = xmalloc(n ? n : 1);
    memcpy(copy, raw, n);
    PQfreemem(raw);
    *len = n;
    return copy;
}

int64_t db_res_affected(const db_res *r)
{
    if (r == NULL)
        return 0;
    const char *s = PQcmdTuples((PGresult *)(void *)r);
    return s[0] ? strtoll(s, NULL, 10) : 0;
}

void db_res_free(db_res *r)
{
    PQclear((PGresult *)(void *)r);
}

/* ---------------------------------------------------------------- transactions */

static int64_t wait_deadline(const db_conn *db)
{
    if (db->deadline_us == NO_DEADLINE)
        return NO_DEADLINE;
    return db->deadline_us + (int64_t)db->opt.client_grace_ms * 1000;
}

status db_begin(db_conn *db, int64_t budget_ms)
{
    status st;

    assert(db->tx == TX_NONE && "db_begin inside a transaction");
    clear_error(db);
    int64_t ms = budget_ms - db->opt.deadline_slack_ms;
    if (ms <= 0)
        return fail(db, ST_TIMEOUT, "no time left for the database (budget %" PRId64 " ms)",
                    budget_ms);
    db->deadline_us = now_mono_us() + ms * 1000;
    st = ensure_conn(db, db->deadline_us);
    if (st != ST_OK)
        return st;
    /* BEGIN and the timeouts go out with the first statement (flight) */
    db->tx = TX_OPEN;
    db->tx_status = ST_OK;
    db->begin_pending = true;
    db->timeout_set_ms = ms;
    return ST_OK;
}

static status tx_fail(db_conn *db, status st)
{
    if (db->pg == NULL)
        db->tx = TX_NONE; /* the connection (and with it the transaction) is gone */
    else if (db->tx != TX_NONE)
        db->tx = TX_FAILED;
    db->tx_status = st;
    return st;
}

/* Runs s[0..n) in the open transaction (then commits when commit), one
 * round trip. On failure the results are NULL and the transaction failed
 * (or, when COMMIT ran or the connection dropped, ended). */
static status query_n(db_conn *db, fl_stmt *s, int n, bool commit)
{
    for (int i = 0; i < n; i++)
        s[i].res = NULL;
    assert(db->tx != TX_NONE && "db_query outside a transaction: use db_run");
    if (db->tx == TX_FAILED)
        return db->tx_status;
    clear_error(db);
    if (db->pg == NULL)
        return tx_fail(db, fail(db, ST_UNAVAILABLE, "%s: database connection lost", s[0].name));
    if (db->deadline_us != NO_DEADLINE && db->deadline_us - now_mono_us() < 1000)
        return tx_fail(db, fail(db, ST_TIMEOUT, "%s: deadline passed", s[0].name));
    status st = flight(db, s, n, commit, wait_deadline(db));
    if (st != ST_OK)
        return tx_fail(db, st);
    return ST_OK;
}

status db_query(db_conn *db, const char *name, const char *sql, const db_params *p, db_res **out)
{
    fl_stmt s = { .name = name, .sql = sql, .p = p };

    if (out)
        *out = NULL;
    status st = query_n(db, &s, 1, false);
    if (st != ST_OK)
        return st;
    if (out)
        *out = (db_res *)(void *)s.res;
    else
        PQclear(s.res);
    return ST_OK;
}

status db_script(db_conn *db, const char *name, const char *sql)
{
    status st;

    if (db->tx == TX_FAILED)
        return db->tx_status;
    clear_error(db);
    if (db->tx == TX_NONE) {
        st = ensure_conn(db, now_mono_us() + (int64_t)db->opt.connect_timeout_ms * 1000);
        if (st != ST_OK)
            return st;
        return roundtrip(db, name, sql, NULL, true, NO_DEADLINE, NULL);
    }
    if (db->pg == NULL)
        return tx_fail(db, fail(db, ST_UNAVAILABLE, "%s: database connection lost", name));
    if (!db->begin_pending) {
        st = roundtrip(db, name, sql, NULL, true, wait_deadline(db), NULL);
        return st != ST_OK ? tx_fail(db, st) : ST_OK;
    }
    /* the deferred BEGIN and timeouts lead the script (integers we computed) */
    int64_t left_ms = (db->deadline_us - now_mono_us()) / 1000;
    if (left_ms < 1)
        return tx_fail(db, fail(db, ST_TIMEOUT, "%s: deadline passed", name));
    char *full = xasprintf("BEGIN; SET LOCAL statement_timeout = %" PRId64
                           "; SET LOCAL lock_timeout = %" PRId64 "; %s",
                           left_ms, left_ms, sql);
    st = roundtrip(db, name, full, NULL, true, wait_deadline(db), NULL);
    free(full);
    if (db->pg != NULL && PQtransactionStatus(db->pg) != PQTRANS_IDLE)
        db->begin_pending = false;
    if (st != ST_OK)
        return tx_fail(db, st);
    db->begin_pending = false;
    db->timeout_set_ms = left_ms;
    return ST_OK;
}

void db_rollback(db_conn *db)
{
    if (db->tx == TX_NONE)
        return;
    db->tx = TX_NONE;
    if (db->begin_pending) {
        db->begin_pending = false; /* nothing was sent */
        return;
    }
    if (db->pg == NULL)
        return;
    /* keep the error of the failure that led here */
    char saved[sizeof db->errmsg], ss[sizeof db->sqlstate], cons[sizeof db->constraint];
    memcpy(saved, db->errmsg, sizeof saved);
    memcpy(ss, db->sqlstate, sizeof ss);
    memcpy(cons, db->constraint, sizeof cons);
    status st =
        roundtrip(db, "tx_rollback", "ROLLBACK", NULL, false, now_mono_us() + 1000 * 1000, NULL);
    if (st != ST_OK)
        drop_conn(db); /* unknown state: start over */
    memcpy(db->errmsg, saved, sizeof saved);
    memcpy(db->sqlstate, ss, sizeof ss);
    memcpy(db->constraint, cons, sizeof cons);
}

/* Deadline for a flight that ends with COMMIT alone: commit even when the
 * budget just ran out (the work is done and the wait is short). */
static int64_t commit_deadline(const db_conn *db)
{
    if (db->deadline_us == NO_DEADLINE)
        return NO_DEADLINE;
    int64_t now = now_mono_us();
    int64_t base = db->deadline_us > now ? db->deadline_us : now;
    return base + (int64_t)db->opt.client_grace_ms * 1000 + 200000;
}

status db_commit(db_conn *db)
{
    assert(db->tx != TX_NONE && "db_commit outside a transaction");
    if (db->tx == TX_FAILED) {
        status st = db->tx_status;
        db_rollback(db);
        return st;
    }
    clear_error(db);
    if (db->begin_pending) {
        db->begin_pending = false; /* no statement ran: nothing to commit */
        db->tx = TX_NONE;
        return ST_OK;
    }
    if (db->pg == NULL) {
        db->tx = TX_NONE;
        return fail(db, ST_UNAVAILABLE, "commit: database connection lost");
    }
    status st = flight(db, NULL, 0, true, commit_deadline(db));
    db->tx = TX_NONE;
    if (st != ST_OK && db->pg != NULL && PQtransactionStatus(db->pg) != PQTRANS_IDLE)
        drop_conn(db);
    return st;
}

status db_run(db_conn *db, int64_t budget_ms, const char *name, const char *sql, const db_params *p,
              db_res **out)
{
    fl_stmt s = { .name = name, .sql = sql, .p = p };

    if (out)
        *out = NULL;
    status st = db_begin(db, budget_ms);
    if (st != ST_OK)
        return st;
    st = query_n(db, &s, 1, true);
    if (st != ST_OK) {
        db_rollback(db); /* a no-op when COMMIT ran or the connection went */
        return st;
    }
    if (out)
        *out = (db_res *)(void *)s.res;
    else
        PQclear(s.res);
    return ST_OK;
}

status db_ping(db_conn *db, int64_t budget_ms)
{
    return db_run(db, budget_ms, "ping", "SELECT 1", NULL, NULL);
}

/* ---------------------------------------------------------------- SHA-256 (FIPS 180-4) */

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror32(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void sha_block(uint32_t h[8], const uint8_t *blk)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)blk[4 * i] << 24 | (uint32_t)blk[4 * i + 1] << 16 |
               (uint32_t)blk[4 * i + 2] << 8 | (uint32_t)blk[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t s1 = ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = k + s1 + ch + sha_k[i] + w[i];
        uint32_t s0 = ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = s0 + maj;
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

void db_sha256(const void *data, size_t len, uint8_t out[32])
{
    uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    const uint8_t *p = data;
    size_t left = len;
    uint8_t tail[128];

    while (left >= 64) {
        sha_block(h, p);
        p += 64;
        left -= 64;
    }
    memset(tail, 0, sizeof tail);
    if (left)
        memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tail_len = left + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tail_len - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha_block(h, tail);
    if (tail_len == 128)
        sha_block(h, tail + 64);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

/* ---------------------------------------------------------------- idempotency */

static bool idem_key_ok(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > DB_IDEM_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x20 || c > 0x7e) /* printable ASCII, as the API documents */
            return false;
    }
    return true;
}

status db_idem_begin(db_conn *db, int64_t budget_ms, const char *key, const char *method,
                     const void *req, size_t req_len, db_idem *idem)
{
    status st;
    db_params lp, gp;
    db_res *res = NULL;

    memset(idem, 0, sizeof *idem);
    idem->key = key;
    idem->method = method;
    clear_error(db);
    if (!idem_key_ok(key))
        return fail(db, ST_INVALID, "request_id must be 1..%d printable ASCII characters",
                    DB_IDEM_KEY_MAX);
    db_sha256(req, req_len, idem->request_hash);

    st = db_begin(db, budget_ms);
    if (st != ST_OK)
        return st;

    /* Reserve the key for this transaction without waiting: a duplicate in
     * flight holds the lock and must not make us sleep until it commits.
     * Then the lookup: a later statement (same round trip), so its snapshot
     * sees anything committed before we won the lock; ignored when we lost. */
    db_params_init(&lp);
    db_param_int64(&lp, IDEM_LOCK_CLASS);
    db_param_text(&lp, key);
    db_params_init(&gp);
    db_param_text(&gp, key);
    fl_stmt q[2] = {
        { .name = "idem_lock",
          .sql = "SELECT pg_try_advisory_xact_lock($1::int4, hashtext($2))",
          .p = &lp },
        { .name = "idem_get",
          .sql = "SELECT method, request_hash, status, response FROM idempotency_keys "
                 "WHERE key = $1",
          .p = &gp },
    };
    st = query_n(db, q, 2, false);
    if (st != ST_OK)
        goto out;
    bool locked = db_res_bool((db_res *)(void *)q[0].res, 0, 0);
    PQclear(q[0].res);
    res = (db_res *)(void *)q[1].res;
    if (!locked) {
        idem->reason = DB_IDEM_IN_FLIGHT;
        st = fail(db, ST_CONFLICT, "a call with this request_id is still in progress");
        goto out;
    }
    if (db_res_rows(res) == 0) {
        st = ST_OK; /* new key: the transaction stays open for the mutation */
        goto out;
    }
    size_t hash_len = 0;
    uint8_t *hash = db_res_bytes(res, 0, 1, &hash_len);
    bool same = strcmp(db_res_text(res, 0, 0), method) == 0 && hash_len == 32 &&
                memcmp(hash, idem->request_hash, 32) == 0;
    free(hash);
    if (!same) {
        idem->reason = DB_IDEM_REUSED;
        st = fail(db, ST_INVALID, "request_id was already used for a different request");
        goto out;
    }
    idem->replay = true;
    idem->code = (int)db_res_int64(res, 0, 2);
    idem->response = db_res_bytes(res, 0, 3, &idem->response_len);
    if (idem->response == NULL)
        idem->response = xcalloc(1, 1);
    st = ST_OK;
out:
    db_res_free(res);
    if (st != ST_OK || idem->replay)
        db_rollback(db);
    return st;
}

/* The INSERT of db_idem_store, then COMMIT when commit (one round trip). */
static status idem_store(db_conn *db, db_idem *idem, int code, const void *resp, size_t resp_len,
                         bool commit)
{
    status st;
    db_params p;

    db_params_init(&p);
    db_param_text(&p, idem->key);
    db_param_text(&p, idem->method);
    db_param_bytes(&p, idem->request_hash, sizeof idem->request_hash);
    db_param_int64(&p, code);
    db_param_bytes(&p, resp, resp_len);
    fl_stmt q = { .name = "idem_store",
                  .sql = "INSERT INTO idempotency_keys (key, method, request_hash, status, "
                         "response) VALUES ($1, $2, $3, $4::int, $5)",
                  .p = &p };
    st = query_n(db, &q, 1, commit);
    PQclear(q.res);
    if (st == ST_ALREADY_EXISTS) {
        /* committed by a twin between our lock and our read: retry replays */
        idem->reason = DB_IDEM_IN_FLIGHT;
        st = fail(db, ST_CONFLICT, "a call with this request_id committed concurrently; retry");
        db->tx_status = st;
    }
    return st;
}

status db_idem_store(db_conn *db, db_idem *idem, int code, const void *resp, size_t resp_len)
{
    return idem_store(db, idem, code, resp, resp_len, false);
}

status db_idem_commit(db_conn *db, db_idem *idem, int code, const void *resp, size_t resp_len)
{
    status st = idem_store(db, idem, code, resp, resp_len, true);
    if (st != ST_OK)
        db_rollback(db); /* a no-op when COMMIT ran or the connection went */
    return st;
}

void db_idem_fini(db_idem *idem)
{
    if (idem == NULL)
        return;
    free(idem->response);
    idem->response = NULL;
    idem->response_len = 0;
}

status db_idem_prune(db_conn *db, int64_t budget_ms, int64_t retention_s, int limit,
                     int64_t *deleted)
{
    status st;
    db_params p;
    db_res *res = NULL;

    *deleted = 0;
    clear_error(db);
    if (retention_s < DB_IDEM_RETENTION_MIN_S || limit <= 0)
        return fail(db, ST_INVALID, "idempotency retention must be >= %d s and limit > 0",
                    DB_IDEM_RETENTION_MIN_S);
    db_params_init(&p);
    db_param_int64(&p, retention_s);
    db_param_int64(&p, limit);
    st = db_run(db, budget_ms, "idem_prune",
                "DELETE FROM idempotency_keys WHERE key IN ("
                " SELECT key FROM idempotency_keys"
                " WHERE created_at < now() - make_interval(secs => $1::bigint)"
                " ORDER BY created_at LIMIT $2::int FOR UPDATE SKIP LOCKED)",
                &p, &res);
    if (st == ST_OK)
        *deleted = db_res_affected(res);
    db_res_free(res);
    return st;
}

/* ---------------------------------------------------------------- cache versions */

status db_version_bump(db_conn *db, const char *scope, int64_t *version)
{
    status st;
    db_params p;
    db_res *res = NULL;

    *version = 0;
    db_params_init(&p);
    db_param_text(&p, scope);
    st = db_query(db, "version_bump",
                  "INSERT INTO cache_versions (scope, version) VALUES ($1, 1) "
                  "ON CONFLICT (scope) DO UPDATE SET version = cache_versions.version + 1, "
                  "updated_at = now() RETURNING version",
                  &p, &res);
    if (st == ST_OK)
        *version = db_res_int64(res, 0, 0);
    db_res_free(res);
    return st;
}

status db_version_get(db_conn *db, const char *scope, int64_t *version)
{
    status st;
    db_params p;
    db_res *res = NULL;

    *version = 0;
    db_params_init(&p);
    db_param_text(&p, scope);
    st = db_query(db, "version_get", "SELECT version FROM cache_versions WHERE scope = $1", &p,
                  &res);
    if (st == ST_OK && db_res_rows(res) > 0)
        *version = db_res_int64(res, 0, 0);
    db_res_free(res);
    return st;
}

/* ---------------------------------------------------------------- notifications */

static bool channel_ok(const char *ch)
{
    if (ch == NULL || ch[0] == '\0' || strlen(ch) > 63)
        return false;
    for (const char *c = ch; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || *c == '_' || (c > ch && *c >= '0' && *c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

status db_listen(db_conn *db, int64_t budget_ms, const char *channel)
{
    char sql[96];

    if (!channel_ok(channel))
        return fail(db, ST_INVALID, "not a channel name");
    (void)snprintf(sql, sizeof sql, "LISTEN %s", channel);
    /* In a transaction, LISTEN takes effect at COMMIT: once this returns
     * ST_OK every later commit's NOTIFY reaches this connection. */
    return db_run(db, budget_ms, "listen", sql, NULL, NULL);
}

uint64_t db_session(const db_conn *db)
{
    return db->session;
}

static void notify_drain(db_conn *db, db_notify_fn fn, void *user)
{
    PGnotify *n;
    while ((n = PQnotifies(db->pg)) != NULL) {
        fn(n->relname, n->extra != NULL ? n->extra : "", user);
        PQfreemem(n);
    }
}

status db_notify_wait(db_conn *db, int wait_ms, db_notify_fn fn, void *user)
{
    assert(db->tx == TX_NONE && "db_notify_wait inside a transaction");
    clear_error(db);
    if (db->pg == NULL)
        return fail(db, ST_UNAVAILABLE, "not connected");
    notify_drain(db, fn, user); /* what arrived with earlier results */
    int w = wait_fd(PQsocket(db->pg), POLLIN,
                    now_mono_us() + (int64_t)(wait_ms > 0 ? wait_ms : 0) * 1000);
    if (w != 0 && (w < 0 || !PQconsumeInput(db->pg) || PQstatus(db->pg) == CONNECTION_BAD)) {
        char line[160];
        first_line(PQerrorMessage(db->pg), line, sizeof line);
        drop_conn(db);
        return fail(db, ST_UNAVAILABLE, "listening connection lost: %s", line);
    }
    notify_drain(db, fn, user);
    return ST_OK;
}

/* ---------------------------------------------------------------- readiness pinger */

struct db_pinger {
    db_options dbo;
    char *conninfo;
    db_pinger_options po;
    pthread_t thread;
    pthread_mutex_t mu; /* protects stop and cv waits */
    pthread_cond_t cv;
    bool stop;
    atomic_bool ready;
};

void db_pinger_options_init(db_pinger_options *o)
{
    memset(o, 0, sizeof *o);
    o->interval_ms = 1000;
    o->fail_threshold = 3;
    o->probe_budget_ms = 1000;
}

static void *pinger_main(void *arg)
{
    db_pinger *pg = arg;
    db_conn *db = db_open(&pg->dbo);
    int fails = 0;
    bool first = true;
    bool ready = false;

    for (;;) {
        char why[256] = "";
        status st;
        if (pg->po.probe) {
            st = pg->po.probe(db, why, sizeof why, pg->po.user);
        } else {
            st = db_ping(db, pg->po.probe_budget_ms);
            snprintf(why, sizeof why, "%s", db_errmsg(db));
        }
        bool changed = false;
        if (st == ST_OK) {
            fails = 0;
            if (!ready || first) {
                ready = true;
                changed = true;
            }
        } else {
            fails++;
            if ((ready && fails >= pg->po.fail_threshold) || first) {
                ready = false;
                changed = true;
            }
        }
        atomic_store(&pg->ready, ready);
        if (changed && pg->po.on_change)
            pg->po.on_change(ready, st == ST_OK ? "ok" : why, pg->po.user);
        first = false;

        pthread_mutex_lock(&pg->mu);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += pg->po.interval_ms / 1000;
        until.tv_nsec += (long)(pg->po.interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!pg->stop && pthread_cond_timedwait(&pg->cv, &pg->mu, &until) == 0)
            ;
        bool stop = pg->stop;
        pthread_mutex_unlock(&pg->mu);
        if (stop)
            break;
    }
    db_close(db);
    return NULL;
}

db_pinger *db_pinger_start(const db_options *dbo, const db_pinger_options *po, char **err)
{
    db_pinger *p = xcalloc(1, sizeof *p);
    pthread_condattr_t ca;

    *err = NULL;
    p->dbo = *dbo;
    p->conninfo = xstrdup(dbo->conninfo ? dbo->conninfo : "");
    p->dbo.conninfo = p->conninfo;
    p->po = *po;
    if (p->po.interval_ms <= 0)
        p->po.interval_ms = 1000;
    if (p->po.fail_threshold <= 0)
        p->po.fail_threshold = 3;
    if (p->po.probe_budget_ms <= 0)
        p->po.probe_budget_ms = 1000;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&p->thread, NULL, pinger_main, p);
    if (rc != 0) {
        *err = xasprintf("cannot start the database pinger: %s", strerror(rc));
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p->conninfo);
        free(p);
        return NULL;
    }
    return p;
}

bool db_pinger_ready(const db_pinger *p)
{
    return atomic_load(&((db_pinger *)p)->ready);
}

void db_pinger_stop(db_pinger *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->conninfo);
    free(p);
}
