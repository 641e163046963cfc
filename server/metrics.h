/* metrics.h - the admin HTTP listener: Prometheus /metrics, /healthz, /readyz.
 *
 * metrics.c is the only user of libmicrohttpd. One listener (an internal
 * polling thread, a connection limit and an idle timeout) serves:
 *   GET /metrics   Prometheus text format 0.0.4
 *                  (Content-Type: text/plain; version=0.0.4; charset=utf-8)
 *   GET /healthz   liveness: 200 "ok" unless the health table's "liveness"
 *                  entry is NOT_SERVING (then 503)
 *   GET /readyz    200 "ok" when "readiness" is SERVING, else 503
 * HEAD works like GET without the body; other methods get 405 (Allow: GET,
 * HEAD); other paths 404.
 *
 * What /metrics holds (names as the Go/Java gRPC ecosystems spell them;
 * notes/conventions.md §6); every series a family can have is written from
 * the first scrape on, at 0 until something happens:
 *   grpc_server_started_total, grpc_server_msg_received_total,
 *   grpc_server_msg_sent_total {grpc_type, grpc_service, grpc_method};
 *   grpc_server_handled_total {..., grpc_code} for every method x code;
 *   grpc_server_handling_seconds histogram; grpc_server_inflight;
 *   herald_workers_busy;
 *   process_resident_memory_bytes, process_virtual_memory_bytes,
 *   process_open_fds, process_max_fds, process_cpu_seconds_total,
 *   process_start_time_seconds, process_threads;
 *   herald_build_info{version, commit} 1;
 *   herald_memory_limit_bytes, herald_memory_soft_limit_bytes,
 *   herald_memory_state (0 ok, 1 soft, 2 hard), herald_memory_shed_total,
 *   herald_memory_rejected_calls_total;
 *   db_up, db_query_duration_seconds{query} histogram,
 *   db_query_errors_total{query}, db_slow_queries_total{query},
 *   db_pool_open_connections, db_pool_in_use_connections,
 *   db_connects_total, db_connect_failures_total, db_connection_drops_total;
 *   cache_requests_total{result="hit|miss|error|bypass"},
 *   cache_breaker_state (0 closed, 1 open, 2 half-open), cache_breaker_opens_total;
 *   upstream_requests_total{upstream="llm|webhook",code},
 *   upstream_request_duration_seconds{upstream} histogram, upstream_inflight{upstream};
 *   then whatever registered collectors add; last
 *   herald_metrics_write_errors (samples this scrape dropped as malformed).
 *
 * Extension point: another module adds its own families without touching
 * this file by registering a collector (metrics_add_collector) that writes
 * through the metrics_writer API below, which validates names, escapes label
 * values and HELP text, cumulates histogram buckets and refuses a family name
 * written twice.
 *
 * Threads. metrics_new/start/stop/free from one thread (main). The listener
 * answers on its own thread, one request at a time, so collectors run on that
 * thread, never concurrently with each other; they must be quick and must
 * not block (they read atomics and snapshots). metrics_add_collector and
 * metrics_render may be called from any thread (a mutex guards the
 * collector list and serialises rendering). */
#ifndef HERALD_METRICS_H
#define HERALD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "db.h"
#include "health.h"
#include "http.h"
#include "memwatch.h"
#include "procstat.h"
#include "rpc.h"
#include "status.h"

/* ---- the exposition writer ---- */

typedef struct metrics_writer metrics_writer;

typedef enum {
    METRICS_COUNTER = 0,
    METRICS_GAUGE,
    METRICS_HISTOGRAM,
    METRICS_SUMMARY,
    METRICS_UNTYPED,
} metrics_type;

typedef struct metrics_label {
    const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__"; not "le" */
    const char *value; /* any text: escaped; invalid UTF-8 bytes become '?' */
} metrics_label;

metrics_writer *metrics_writer_new(void);
void metrics_writer_free(metrics_writer *w); /* NULL ok */
/* The text so far (NUL-terminated; "" when empty), borrowed until the next
 * write; *len (may be NULL) gets its length. */
const char *metrics_writer_text(const metrics_writer *w, size_t *len);
/* Samples dropped so far: a bad name or label, or a sample without a family. */
uint64_t metrics_writer_errors(const metrics_writer *w);

/* Starts a family: "# HELP name help" (help escaped) and "# TYPE name type".
 * name: [a-zA-Z_:][a-zA-Z0-9_:]*. Returns false (and drops the samples that
 * follow, until the next family) when the name is invalid or a family of
 * that name was already written: the format forbids repeating one. */
bool metrics_family(metrics_writer *w, const char *name, metrics_type type, const char *help);

/* One sample of the current family: name{labels} value. Values print in the
 * shortest form that reads back exactly; NaN and +/-Inf as Prometheus spells
 * them. The _u64 form prints integers exactly (counters past 2^53). */
void metrics_sample(metrics_writer *w, const metrics_label *labels, size_t n_labels, double value);
void metrics_sample_u64(metrics_writer *w, const metrics_label *labels, size_t n_labels,
                        uint64_t value);
/* A sample named family name + suffix ("_sum", "_count" of a summary). */
void metrics_sample_suffix(metrics_writer *w, const char *suffix, const metrics_label *labels,
                           size_t n_labels, double value);

/* The series of one histogram of the current (METRICS_HISTOGRAM) family:
 * _bucket{labels, le="b"} for each bound, cumulated, then le="+Inf", _sum and
 * _count (= the +Inf bucket). buckets: n_bounds + 1 NON-cumulative counts,
 * the last one above every bound. bounds must increase. */
void metrics_histogram(metrics_writer *w, const metrics_label *labels, size_t n_labels,
                       const double *bounds, size_t n_bounds, const uint64_t *buckets, double sum);

/* ---- the families of each source (exported for tests; metrics.c calls them) ---- */

/* gRPC server families over n method snapshots; every method x code of
 * handled_total is written (zeros included). */
void metrics_write_grpc(metrics_writer *w, const rpc_method_stats *methods, size_t n,
                        int64_t inflight, int busy_workers);
/* process_* from a procstat (figures < 0 are omitted). */
void metrics_write_process(metrics_writer *w, const procstat *ps);
void metrics_write_build(metrics_writer *w, const char *version, const char *commit);
void metrics_write_memory(metrics_writer *w, const memwatch_stats *ms);
/* db_*: up is the readiness pinger's view; stmts may be empty. */
void metrics_write_db(metrics_writer *w, bool up, const db_stmt_stats *stmts, size_t n,
                      const db_pool_stats *pool);
/* cache_*; cs NULL writes zeros (no cache configured). */
void metrics_write_cache(metrics_writer *w, const cache_stats *cs);
/* upstream_*; "llm" and "webhook" are always written (zeros when absent). */
void metrics_write_upstreams(metrics_writer *w, const http_upstream_stats *ups, size_t n);

/* The value of upstream_requests_total's code label for a result kind (and
 * its HTTP status when kind is HTTP_RES_OK): "2xx", "429", "4xx", "5xx",
 * "connect", "timeout_sent", ... Static storage. */
const char *metrics_upstream_code(http_result_kind kind, int http_status);

/* ---- the listener ---- */

typedef struct metrics metrics;

/* Adds families to every scrape. Runs on the listener thread (see above). */
typedef void (*metrics_collect_fn)(metrics_writer *w, void *user);

typedef struct metrics_options {
    const char *listen_addr;  /* "0.0.0.0:9464", "[::]:9464", ":9464"; port 0 = a free one */
    int max_connections;      /* default 32; more are refused */
    int connection_timeout_s; /* idle connections are closed after this (default 10) */
    rpc_server *rpc;          /* NULL: no grpc_server_* series */
    health *health;           /* NULL: /readyz 503, /healthz 200 */
    memwatch *mem;            /* NULL: no herald_memory_* series */
    bool db;                  /* a database is configured: db_* from db.h's statistics */
    const db_pinger *pinger;  /* db_up; NULL: db_up 0 (see metrics_set_pinger) */
    const cache *cache;       /* NULL: cache_* at 0 */
    http_client *http;        /* NULL: upstream_* at 0 */
    const char *version;      /* herald_build_info; NULL: the build's own */
    const char *commit;
} metrics_options;

/* Fills o with the defaults (listen_addr "0.0.0.0:9464", everything else
 * NULL/false). */
void metrics_options_init(metrics_options *o);

/* A registry over the sources in o (borrowed: they must outlive it). Never
 * fails; listens only after metrics_start. */
metrics *metrics_new(const metrics_options *o);
/* Binds listen_addr and starts the listener thread. ST_INVALID for an
 * address that does not parse (unix: sockets are not supported),
 * ST_UNAVAILABLE when it cannot bind; *err (caller frees) says why. */
status metrics_start(metrics *m, char **err);
int metrics_port(const metrics *m); /* bound port after start; 0 before */
/* Stops the listener (waits for a request in progress). Idempotent. */
void metrics_stop(metrics *m);
void metrics_free(metrics *m); /* stops first; NULL ok */

/* Sets (or, with NULL, clears) the readiness pinger behind db_up after
 * metrics_new: main starts the admin listener before the pinger exists (so
 * /healthz answers during migrations) and clears it before stopping the
 * pinger. Any thread. */
void metrics_set_pinger(metrics *m, const db_pinger *pinger);

/* Registers a collector; it runs on every scrape after the built-in
 * families, in registration order. fn and user must outlive m. */
void metrics_add_collector(metrics *m, metrics_collect_fn fn, void *user);

/* Writes the whole /metrics text into a new NUL-terminated buffer the
 * caller frees (*len may be NULL). What the listener serves; for tests too. */
char *metrics_render(metrics *m, size_t *len);

#endif
