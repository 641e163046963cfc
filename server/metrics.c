/* metrics.c - the admin HTTP listener and the Prometheus exposition (see
 * metrics.h). The only user of libmicrohttpd. */
#include "metrics.h"

#include <arpa/inet.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "lcache.h"
#include "log.h"
#include "util.h"
#include "vercache.h"

#ifndef HERALD_VERSION
#define HERALD_VERSION "0.0.0"
#endif
#ifndef HERALD_COMMIT
#define HERALD_COMMIT "unknown"
#endif

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define PLAIN_CONTENT_TYPE "text/plain; charset=utf-8"

/* ------------------------------------------------------------------ */
/* The writer                                                          */

struct metrics_writer {
    strbuf out;
    char **families; /* names written so far (owned) */
    size_t n_families, cap_families;
    const char *cur; /* the current family's name (in families), NULL: dropping */
    metrics_type cur_type;
    uint64_t errors;
};

metrics_writer *metrics_writer_new(void)
{
    metrics_writer *w = xcalloc(1, sizeof *w);
    strbuf_init(&w->out);
    return w;
}

void metrics_writer_free(metrics_writer *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->n_families; i++)
        free(w->families[i]);
    free(w->families);
    strbuf_fini(&w->out);
    free(w);
}

const char *metrics_writer_text(const metrics_writer *w, size_t *len)
{
    if (len != NULL)
        *len = w->out.len;
    return w->out.data != NULL ? w->out.data : "";
}

uint64_t metrics_writer_errors(const metrics_writer *w)
{
    return w->errors;
}

static bool is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool metric_name_ok(const char *s)
{
    if (s == NULL || !(is_alpha_(s[0]) || s[0] == ':'))
        return false;
    for (const char *p = s + 1; *p != '\0'; p++)
        if (!is_alpha_(*p) && !is_digit(*p) && *p != ':')
            return false;
    return true;
}

static bool label_name_ok(const char *s)
{
    if (s == NULL || !is_alpha_(s[0]) || strncmp(s, "__", 2) == 0)
        return false;
    for (const char *p = s + 1; *p != '\0'; p++)
        if (!is_alpha_(*p) && !is_digit(*p))
            return false;
    return true;
}

static const char *type_name(metrics_type t)
{
    switch (t) {
    case METRICS_COUNTER:
        return "counter";
    case METRICS_GAUGE:
        return "gauge";
    case METRICS_HISTOGRAM:
        return "histogram";
    case METRICS_SUMMARY:
        return "summary";
    case METRICS_UNTYPED:
        return "untyped";
    }
    return "untyped";
}

bool metrics_family(metrics_writer *w, const char *name, metrics_type type, const char *help)
{
    w->cur = NULL;
    if (!metric_name_ok(name)) {
        w->errors++;
        return false;
    }
    for (size_t i = 0; i < w->n_families; i++) {
        if (strcmp(w->families[i], name) == 0) {
            w->errors++;
            return false;
        }
    }
    if (w->n_families == w->cap_families) {
        w->cap_families = w->cap_families ? w->cap_families * 2 : 32;
        w->families = xrealloc(w->families, w->cap_families * sizeof *w->families);
    }
    w->families[w->n_families] = xstrdup(name);
    w->cur = w->families[w->n_families++];
    w->cur_type = type;

    /* HELP text escapes only backslash and newline. */
    strbuf_printf(&w->out, "# HELP %s ", name);
    for (const char *p = help != NULL ? help : ""; *p != '\0'; p++) {
        if (*p == '\\')
            strbuf_puts(&w->out, "\\\\");
        else if (*p == '\n')
            strbuf_puts(&w->out, "\\n");
        else
            strbuf_putc(&w->out, *p);
    }
    strbuf_printf(&w->out, "\n# TYPE %s %s\n", name, type_name(type));
    return true;
}

/* Go's strconv.FormatFloat(v, 'g', -1, 64) in spirit: the shortest %g that
 * reads back as the same double. */
static void put_double(strbuf *b, double v)
{
    if (isnan(v)) {
        strbuf_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        strbuf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        (void)snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    strbuf_puts(b, buf);
}

/* Runs of plain bytes go in with one append: a scrape writes thousands of
 * label values. */
static void put_label_value(strbuf *b, const char *v)
{
    size_t n = strlen(v);
    bool valid = utf8_valid(v, n);
    size_t run = 0; /* start of the pending run of bytes written as they are */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c != '\\' && c != '"' && c != '\n' && (valid || c < 0x80))
            continue;
        strbuf_append(b, v + run, i - run);
        run = i + 1;
        strbuf_puts(b, c == '\\' ? "\\\\" : c == '"' ? "\\\"" : c == '\n' ? "\\n" : "?");
    }
    strbuf_append(b, v + run, n - run);
}

/* Decimal digits of v (no printf: counters are most of a scrape). */
static void put_u64(strbuf *b, uint64_t v)
{
    char buf[24];
    size_t i = sizeof buf;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    strbuf_append(b, buf + i, sizeof buf - i);
}

/* Writes "name[suffix]{labels[,le="..."]} " ; false (with the line rolled
 * back by the caller) when a label is malformed. */
static bool put_series(metrics_writer *w, const char *suffix, const metrics_label *labels, size_t n,
                       const char *le)
{
    strbuf *b = &w->out;
    strbuf_puts(b, w->cur);
    if (suffix != NULL)
        strbuf_puts(b, suffix);
    if (n > 0 || le != NULL) {
        strbuf_putc(b, '{');
        for (size_t i = 0; i < n; i++) {
            if (!label_name_ok(labels[i].name) || strcmp(labels[i].name, "le") == 0 ||
                labels[i].value == NULL)
                return false;
            for (size_t j = 0; j < i; j++)
                if (strcmp(labels[j].name, labels[i].name) == 0)
                    return false;
            if (i > 0)
                strbuf_putc(b, ',');
            strbuf_puts(b, labels[i].name);
            strbuf_append(b, "=\"", 2);
            put_label_value(b, labels[i].value);
            strbuf_putc(b, '"');
        }
        if (le != NULL) {
            strbuf_puts(b, n > 0 ? ",le=\"" : "le=\"");
            strbuf_puts(b, le);
            strbuf_putc(b, '"');
        }
        strbuf_putc(b, '}');
    }
    strbuf_putc(b, ' ');
    return true;
}

static void rollback(metrics_writer *w, size_t mark)
{
    w->out.len = mark;
    if (w->out.data != NULL)
        w->out.data[mark] = '\0';
    w->errors++;
}

static bool suffix_ok(const char *suffix)
{
    if (suffix == NULL)
        return true;
    for (const char *p = suffix; *p != '\0'; p++)
        if (!is_alpha_(*p) && !is_digit(*p) && *p != ':')
            return false;
    return true;
}

void metrics_sample_suffix(metrics_writer *w, const char *suffix, const metrics_label *labels,
                           size_t n_labels, double value)
{
    if (w->cur == NULL || !suffix_ok(suffix)) {
        w->errors++;
        return;
    }
    size_t mark = w->out.len;
    if (!put_series(w, suffix, labels, n_labels, NULL)) {
        rollback(w, mark);
        return;
    }
    put_double(&w->out, value);
    strbuf_putc(&w->out, '\n');
}

void metrics_sample(metrics_writer *w, const metrics_label *labels, size_t n_labels, double value)
{
    metrics_sample_suffix(w, NULL, labels, n_labels, value);
}

void metrics_sample_u64(metrics_writer *w, const metrics_label *labels, size_t n_labels,
                        uint64_t value)
{
    if (w->cur == NULL) {
        w->errors++;
        return;
    }
    size_t mark = w->out.len;
    if (!put_series(w, NULL, labels, n_labels, NULL)) {
        rollback(w, mark);
        return;
    }
    put_u64(&w->out, value);
    strbuf_putc(&w->out, '\n');
}

void metrics_histogram(metrics_writer *w, const metrics_label *labels, size_t n_labels,
                       const double *bounds, size_t n_bounds, const uint64_t *buckets, double sum)
{
    if (w->cur == NULL || w->cur_type != METRICS_HISTOGRAM) {
        w->errors++;
        return;
    }
    for (size_t i = 1; i < n_bounds; i++) {
        if (!(bounds[i] > bounds[i - 1])) {
            w->errors++;
            return;
        }
    }
    size_t mark = w->out.len;
    uint64_t cum = 0;
    for (size_t i = 0; i <= n_bounds; i++) {
        char le[40];
        if (i < n_bounds) {
            strbuf tmp = { 0 };
            put_double(&tmp, bounds[i]);
            (void)snprintf(le, sizeof le, "%s", tmp.data);
            strbuf_fini(&tmp);
        } else {
            (void)snprintf(le, sizeof le, "+Inf");
        }
        cum += buckets[i];
        if (!put_series(w, "_bucket", labels, n_labels, le)) {
            rollback(w, mark);
            return;
        }
        put_u64(&w->out, cum);
        strbuf_putc(&w->out, '\n');
    }
    if (!put_series(w, "_sum", labels, n_labels, NULL)) {
        rollback(w, mark);
        return;
    }
    put_double(&w->out, sum);
    strbuf_putc(&w->out, '\n');
    if (!put_series(w, "_count", labels, n_labels, NULL)) {
        rollback(w, mark);
        return;
    }
    put_u64(&w->out, cum);
    strbuf_putc(&w->out, '\n');
}

/* ------------------------------------------------------------------ */
/* Families                                                            */

void metrics_write_grpc(metrics_writer *w, const rpc_method_stats *methods, size_t n,
                        int64_t inflight, int busy_workers)
{
    /* Labels of method i; grpc_code is filled in where used. */
#define METHOD_LABELS(i)                                                                     \
    { "grpc_type", rpc_kind_name(methods[i].kind) }, { "grpc_service", methods[i].service }, \
        { "grpc_method", methods[i].method }

    metrics_family(w, "grpc_server_started_total", METRICS_COUNTER,
                   "Total number of RPCs started on the server.");
    for (size_t i = 0; i < n; i++) {
        metrics_label l[] = { METHOD_LABELS(i) };
        metrics_sample_u64(w, l, 3, methods[i].started);
    }
    metrics_family(w, "grpc_server_handled_total", METRICS_COUNTER,
                   "Total number of RPCs completed on the server, regardless of success or "
                   "failure.");
    for (size_t i = 0; i < n; i++) {
        for (int code = 0; code < GRPC_CODE_COUNT; code++) {
            metrics_label l[] = { METHOD_LABELS(i),
                                  { "grpc_code", status_grpc_code_go_name(code) } };
            metrics_sample_u64(w, l, 4, methods[i].handled[code]);
        }
    }
    metrics_family(w, "grpc_server_msg_received_total", METRICS_COUNTER,
                   "Total number of RPC stream messages received on the server.");
    for (size_t i = 0; i < n; i++) {
        metrics_label l[] = { METHOD_LABELS(i) };
        metrics_sample_u64(w, l, 3, methods[i].msg_received);
    }
    metrics_family(w, "grpc_server_msg_sent_total", METRICS_COUNTER,
                   "Total number of gRPC stream messages sent by the server.");
    for (size_t i = 0; i < n; i++) {
        metrics_label l[] = { METHOD_LABELS(i) };
        metrics_sample_u64(w, l, 3, methods[i].msg_sent);
    }
    metrics_family(
        w, "grpc_server_handling_seconds", METRICS_HISTOGRAM,
        "Histogram of response latency (seconds) of gRPC that had been application-level "
        "handled by the server.");
    for (size_t i = 0; i < n; i++) {
        metrics_label l[] = { METHOD_LABELS(i) };
        metrics_histogram(w, l, 3, rpc_latency_bounds, RPC_LATENCY_BUCKETS, methods[i].bucket,
                          methods[i].latency_sum_s);
    }
#undef METHOD_LABELS
    metrics_family(w, "grpc_server_inflight", METRICS_GAUGE,
                   "RPCs in progress on the server now (started, not yet finished).");
    metrics_sample(w, NULL, 0, (double)inflight);
    metrics_family(w, "herald_workers_busy", METRICS_GAUGE, "Worker threads inside a handler now.");
    metrics_sample(w, NULL, 0, (double)busy_workers);
}

void metrics_write_process(metrics_writer *w, const procstat *ps)
{
    if (ps->rss_bytes >= 0) {
        metrics_family(w, "process_resident_memory_bytes", METRICS_GAUGE,
                       "Resident memory size in bytes.");
        metrics_sample(w, NULL, 0, (double)ps->rss_bytes);
    }
    if (ps->vsize_bytes >= 0) {
        metrics_family(w, "process_virtual_memory_bytes", METRICS_GAUGE,
                       "Virtual memory size in bytes.");
        metrics_sample(w, NULL, 0, (double)ps->vsize_bytes);
    }
    if (ps->open_fds >= 0) {
        metrics_family(w, "process_open_fds", METRICS_GAUGE, "Number of open file descriptors.");
        metrics_sample(w, NULL, 0, (double)ps->open_fds);
    }
    if (ps->max_fds >= 0) {
        metrics_family(w, "process_max_fds", METRICS_GAUGE,
                       "Maximum number of open file descriptors.");
        metrics_sample(w, NULL, 0, (double)ps->max_fds);
    }
    if (ps->threads >= 0) {
        metrics_family(w, "process_threads", METRICS_GAUGE, "Number of OS threads in the process.");
        metrics_sample(w, NULL, 0, (double)ps->threads);
    }
    metrics_family(w, "process_cpu_seconds_total", METRICS_COUNTER,
                   "Total user and system CPU time spent in seconds.");
    metrics_sample(w, NULL, 0, ps->cpu_seconds);
    if (ps->start_time_s > 0) {
        metrics_family(w, "process_start_time_seconds", METRICS_GAUGE,
                       "Start time of the process since unix epoch in seconds.");
        metrics_sample(w, NULL, 0, ps->start_time_s);
    }
}

void metrics_write_build(metrics_writer *w, const char *version, const char *commit)
{
    metrics_family(w, "herald_build_info", METRICS_GAUGE,
                   "Always 1; the labels say which build of Herald is running.");
    metrics_label l[] = { { "version", version }, { "commit", commit } };
    metrics_sample(w, l, 2, 1);
}

void metrics_write_memory(metrics_writer *w, const memwatch_stats *ms)
{
    metrics_family(w, "herald_memory_limit_bytes", METRICS_GAUGE,
                   "Memory limit (HERALD_MEMORY_LIMIT_MB) in bytes; 0 = no limit.");
    metrics_sample(w, NULL, 0, (double)ms->limit_bytes);
    metrics_family(w, "herald_memory_soft_limit_bytes", METRICS_GAUGE,
                   "Soft memory limit in bytes: above it caches are shed.");
    metrics_sample(w, NULL, 0, (double)ms->soft_limit_bytes);
    metrics_family(w, "herald_memory_state", METRICS_GAUGE,
                   "Memory pressure: 0 ok, 1 soft (caches shed), 2 hard (expensive RPCs refused).");
    metrics_sample(w, NULL, 0, (double)ms->state);
    metrics_family(w, "herald_memory_shed_total", METRICS_COUNTER,
                   "Times the memory manager shed caches.");
    metrics_sample_u64(w, NULL, 0, ms->shed_count);
    metrics_family(w, "herald_memory_rejected_calls_total", METRICS_COUNTER,
                   "Calls refused with RESOURCE_EXHAUSTED for memory.");
    metrics_sample_u64(w, NULL, 0, ms->rejected_calls);
}

void metrics_write_db(metrics_writer *w, bool up, const db_stmt_stats *stmts, size_t n,
                      const db_pool_stats *pool)
{
    metrics_family(
        w, "db_up", METRICS_GAUGE,
        "1 when the readiness pinger last reached PostgreSQL (schema verified), else 0.");
    metrics_sample(w, NULL, 0, up ? 1 : 0);
    metrics_family(w, "db_query_duration_seconds", METRICS_HISTOGRAM,
                   "Latency of database statements by statement name.");
    for (size_t i = 0; i < n; i++) {
        metrics_label l[] = { { "query", stmts[i].name } };
        metrics_histogram(w, l, 1, db_latency_bounds_s, DB_LATENCY_BUCKETS, stmts[i].bucket,
                          stmts[i].sum_s);
    }
    metrics_family(w, "db_query_errors_total", METRICS_COUNTER,
                   "Database statements that failed, by statement name.");
    for (size_t i = 0; i < n; i++) {
        metrics_label l[] = { { "query", stmts[i].name } };
        metrics_sample_u64(w, l, 1, stmts[i].errors);
    }
    metrics_family(w, "db_slow_queries_total", METRICS_COUNTER,
                   "Database statements slower than the slow-query threshold, by statement name.");
    for (size_t i = 0; i < n; i++) {
        metrics_label l[] = { { "query", stmts[i].name } };
        metrics_sample_u64(w, l, 1, stmts[i].slow);
    }
    metrics_family(w, "db_pool_open_connections", METRICS_GAUGE,
                   "PostgreSQL connections established now (one per worker plus the pinger).");
    metrics_sample(w, NULL, 0, (double)pool->open);
    metrics_family(w, "db_pool_in_use_connections", METRICS_GAUGE,
                   "PostgreSQL connections inside a statement now.");
    metrics_sample(w, NULL, 0, (double)pool->busy);
    metrics_family(w, "db_connects_total", METRICS_COUNTER, "Successful PostgreSQL connects.");
    metrics_sample_u64(w, NULL, 0, pool->connects);
    metrics_family(w, "db_connect_failures_total", METRICS_COUNTER,
                   "Failed PostgreSQL connection attempts.");
    metrics_sample_u64(w, NULL, 0, pool->connect_fails);
    metrics_family(w, "db_connection_drops_total", METRICS_COUNTER,
                   "PostgreSQL connections dropped after an error.");
    metrics_sample_u64(w, NULL, 0, pool->drops);
    metrics_family(w, "db_roundtrips_total", METRICS_COUNTER,
                   "Exchanges with PostgreSQL that waited for its answers (a pipelined flight "
                   "counts once).");
    metrics_sample_u64(w, NULL, 0, pool->roundtrips);
    metrics_family(w, "db_statements_prepared_total", METRICS_COUNTER,
                   "Statements prepared on a connection (once per text per connection).");
    metrics_sample_u64(w, NULL, 0, pool->prepares);
}

void metrics_write_cache(metrics_writer *w, const cache_stats *cs)
{
    cache_stats zero;
    memset(&zero, 0, sizeof zero);
    if (cs == NULL)
        cs = &zero;
    metrics_family(w, "cache_requests_total", METRICS_COUNTER,
                   "Cache lookups by result (error and bypass are misses for the caller).");
    const struct {
        const char *name;
        uint64_t v;
    } res[] = { { "hit", cs->hits },
                { "miss", cs->misses },
                { "error", cs->errors },
                { "bypass", cs->bypasses } };
    for (size_t i = 0; i < sizeof res / sizeof res[0]; i++) {
        metrics_label l[] = { { "result", res[i].name } };
        metrics_sample_u64(w, l, 1, res[i].v);
    }
    metrics_family(w, "cache_sets_total", METRICS_COUNTER, "Values stored in the cache.");
    metrics_sample_u64(w, NULL, 0, cs->sets);
    metrics_family(w, "cache_breaker_state", METRICS_GAUGE,
                   "Redis circuit breaker: 0 closed, 1 open (bypassing), 2 half-open (probing).");
    metrics_sample(w, NULL, 0, (double)cs->breaker);
    metrics_family(w, "cache_breaker_opens_total", METRICS_COUNTER,
                   "Times the Redis circuit breaker opened.");
    metrics_sample_u64(w, NULL, 0, cs->breaker_opens);
}

/* The in-process cache tier and the version map (both NULL-safe: zeros). */
static void write_cache_tiers(metrics_writer *w, const cache *c)
{
    lcache_stats ls;
    vercache_stats vs;
    lcache_stats_get(cache_local(c), &ls);
    vercache_stats_get(vercache_process(), &vs);
    metrics_label hit[] = { { "result", "hit" } }, miss[] = { { "result", "miss" } };

    metrics_family(w, "herald_cache_local_requests_total", METRICS_COUNTER,
                   "Lookups in the in-process copy of cache hits (a miss goes to Redis).");
    metrics_sample_u64(w, hit, 1, ls.hits);
    metrics_sample_u64(w, miss, 1, ls.misses);
    metrics_family(w, "herald_cache_local_bytes", METRICS_GAUGE,
                   "Bytes held by the in-process cache tier (cache.local_bytes bounds it).");
    metrics_sample_u64(w, NULL, 0, ls.bytes);
    metrics_family(w, "herald_cache_local_evictions_total", METRICS_COUNTER,
                   "In-process cache entries evicted for room.");
    metrics_sample_u64(w, NULL, 0, ls.evictions);

    metrics_family(w, "herald_version_map_lookups_total", METRICS_COUNTER,
                   "Cache-version lookups in memory; a miss reads the version from PostgreSQL.");
    metrics_sample_u64(w, hit, 1, vs.hits);
    metrics_sample_u64(w, miss, 1, vs.misses);
    metrics_family(w, "herald_version_map_notifications_total", METRICS_COUNTER,
                   "Cache-version notifications (LISTEN herald_cache_versions) applied.");
    metrics_sample_u64(w, NULL, 0, vs.notified);
    metrics_family(w, "herald_version_map_resets_total", METRICS_COUNTER,
                   "Times the version listener lost its subscription (the map was cleared).");
    metrics_sample_u64(w, NULL, 0, vs.resets);
    metrics_family(w, "herald_version_map_heartbeats_unechoed_total", METRICS_COUNTER,
                   "Version heartbeats (a NOTIFY to itself) whose echo did not come back in "
                   "time: the map is untrusted; always rising behind a transaction pooler.");
    metrics_sample_u64(w, NULL, 0, vs.unechoed);
    metrics_family(w, "herald_version_map_entries", METRICS_GAUGE,
                   "Scopes held by the version map.");
    metrics_sample_u64(w, NULL, 0, vs.entries);
    metrics_family(w, "herald_version_map_trusted", METRICS_GAUGE,
                   "1 while the version map is subscribed and its heartbeat echoed recently.");
    metrics_sample(w, NULL, 0, vs.trusted ? 1.0 : 0.0);
}

const char *metrics_upstream_code(http_result_kind kind, int http_status)
{
    if (kind != HTTP_RES_OK)
        return http_result_name(kind);
    if (http_status == 429)
        return "429";
    switch (http_status / 100) {
    case 1:
        return "1xx";
    case 2:
        return "2xx";
    case 3:
        return "3xx";
    case 4:
        return "4xx";
    case 5:
        return "5xx";
    default:
        return "other";
    }
}

void metrics_write_upstreams(metrics_writer *w, const http_upstream_stats *ups, size_t n)
{
    /* llm and webhook always, plus any other upstream seen. */
    static const char *const known[] = { "llm", "webhook" };
    size_t n_all = 0;
    const http_upstream_stats **all = xcalloc(n + 2, sizeof(const http_upstream_stats *));
    http_upstream_stats zero[2];
    memset(zero, 0, sizeof zero);
    for (size_t k = 0; k < 2; k++) {
        const http_upstream_stats *found = NULL;
        for (size_t i = 0; i < n && found == NULL; i++)
            if (ups[i].upstream != NULL && strcmp(ups[i].upstream, known[k]) == 0)
                found = &ups[i];
        if (found == NULL) {
            zero[k].upstream = known[k];
            found = &zero[k];
        }
        all[n_all++] = found;
    }
    for (size_t i = 0; i < n; i++)
        if (ups[i].upstream != NULL && strcmp(ups[i].upstream, "llm") != 0 &&
            strcmp(ups[i].upstream, "webhook") != 0)
            all[n_all++] = &ups[i];

    metrics_family(w, "upstream_requests_total", METRICS_COUNTER,
                   "Completed outbound HTTP requests by upstream and outcome (HTTP status class, "
                   "or why no response arrived).");
    static const char *const classes[] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };
    for (size_t u = 0; u < n_all; u++) {
        const http_upstream_stats *s = all[u];
        for (int c = 0; c < 6; c++) {
            uint64_t v = s->status[c];
            if (c == 4)
                v = v >= s->status_429 ? v - s->status_429 : 0;
            metrics_label l[] = { { "upstream", s->upstream }, { "code", classes[c] } };
            metrics_sample_u64(w, l, 2, v);
        }
        metrics_label l429[] = { { "upstream", s->upstream }, { "code", "429" } };
        metrics_sample_u64(w, l429, 2, s->status_429);
        for (int k = 0; k < HTTP_RES_COUNT; k++) {
            if (k == HTTP_RES_OK)
                continue;
            metrics_label l[] = { { "upstream", s->upstream },
                                  { "code", metrics_upstream_code((http_result_kind)k, 0) } };
            metrics_sample_u64(w, l, 2, s->results[k]);
        }
    }
    metrics_family(w, "upstream_request_duration_seconds", METRICS_HISTOGRAM,
                   "Duration of outbound HTTP requests by upstream, seconds.");
    for (size_t u = 0; u < n_all; u++) {
        metrics_label l[] = { { "upstream", all[u]->upstream } };
        metrics_histogram(w, l, 1, http_latency_bounds, HTTP_LATENCY_BUCKETS, all[u]->bucket,
                          all[u]->latency_sum_s);
    }
    metrics_family(w, "upstream_inflight", METRICS_GAUGE,
                   "Outbound HTTP requests submitted and not yet completed.");
    for (size_t u = 0; u < n_all; u++) {
        metrics_label l[] = { { "upstream", all[u]->upstream } };
        metrics_sample(w, l, 1, (double)all[u]->inflight);
    }
    free(all);
}

/* ------------------------------------------------------------------ */
/* Registry and rendering                                              */

typedef struct collector {
    metrics_collect_fn fn;
    void *user;
} collector;

struct metrics {
    metrics_options opt; /* sources borrowed */
    /* mu guards colls/n_colls/cap_colls and opt.pinger, and serialises
     * metrics_render. */
    pthread_mutex_t mu;
    collector *colls;
    size_t n_colls, cap_colls;
    struct MHD_Daemon *daemon; /* main's thread only */
    int port;
};

void metrics_options_init(metrics_options *o)
{
    memset(o, 0, sizeof *o);
    o->listen_addr = "0.0.0.0:9464";
    o->max_connections = 32;
    o->connection_timeout_s = 10;
}

metrics *metrics_new(const metrics_options *o)
{
    metrics *m = xcalloc(1, sizeof *m);
    m->opt = *o;
    if (m->opt.max_connections <= 0)
        m->opt.max_connections = 32;
    if (m->opt.connection_timeout_s <= 0)
        m->opt.connection_timeout_s = 10;
    if (m->opt.version == NULL)
        m->opt.version = HERALD_VERSION;
    if (m->opt.commit == NULL)
        m->opt.commit = HERALD_COMMIT;
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void metrics_set_pinger(metrics *m, const db_pinger *pinger)
{
    pthread_mutex_lock(&m->mu);
    m->opt.pinger = pinger;
    pthread_mutex_unlock(&m->mu);
}

void metrics_add_collector(metrics *m, metrics_collect_fn fn, void *user)
{
    pthread_mutex_lock(&m->mu);
    if (m->n_colls == m->cap_colls) {
        m->cap_colls = m->cap_colls ? m->cap_colls * 2 : 8;
        m->colls = xrealloc(m->colls, m->cap_colls * sizeof *m->colls);
    }
    m->colls[m->n_colls].fn = fn;
    m->colls[m->n_colls].user = user;
    m->n_colls++;
    pthread_mutex_unlock(&m->mu);
}

typedef struct vec {
    void *items;
    size_t n, cap, size;
} vec;

static void *vec_push(vec *v)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 16;
        v->items = xrealloc(v->items, v->cap * v->size);
    }
    return (char *)v->items + v->size * v->n++;
}

static void collect_method(const rpc_method_stats *st, void *user)
{
    *(rpc_method_stats *)vec_push(user) = *st;
}

static void collect_stmt(const db_stmt_stats *st, void *user)
{
    *(db_stmt_stats *)vec_push(user) = *st;
}

/* The name is only borrowed for the callback: keep a copy. */
static void collect_upstream(const http_upstream_stats *st, void *user)
{
    http_upstream_stats *copy = vec_push(user);
    *copy = *st;
    copy->upstream = xstrdup(st->upstream != NULL ? st->upstream : "");
}

char *metrics_render(metrics *m, size_t *len)
{
    metrics_writer *w = metrics_writer_new();
    const metrics_options *o = &m->opt;

    pthread_mutex_lock(&m->mu);
    if (o->rpc != NULL) {
        vec v = { .size = sizeof(rpc_method_stats) };
        rpc_server_stats(o->rpc, collect_method, &v);
        metrics_write_grpc(w, v.items, v.n, rpc_server_inflight(o->rpc),
                           rpc_server_busy_workers(o->rpc));
        free(v.items);
    }
    procstat ps;
    (void)procstat_read(&ps); /* what could not be read is left out */
    metrics_write_process(w, &ps);
    metrics_write_build(w, o->version, o->commit);
    if (o->mem != NULL) {
        memwatch_stats ms;
        memwatch_stats_get(o->mem, &ms);
        metrics_write_memory(w, &ms);
    }
    {
        vec v = { .size = sizeof(db_stmt_stats) };
        db_pool_stats pool;
        memset(&pool, 0, sizeof pool);
        if (o->db) {
            db_stats_foreach(collect_stmt, &v);
            db_pool_stats_get(&pool);
        }
        metrics_write_db(w, o->pinger != NULL && db_pinger_ready(o->pinger), v.items, v.n, &pool);
        free(v.items);
    }
    if (o->cache != NULL) {
        cache_stats cs;
        cache_stats_get(o->cache, &cs);
        metrics_write_cache(w, &cs);
    } else {
        metrics_write_cache(w, NULL);
    }
    write_cache_tiers(w, o->cache);
    {
        vec v = { .size = sizeof(http_upstream_stats) };
        if (o->http != NULL)
            http_client_stats(o->http, collect_upstream, &v);
        metrics_write_upstreams(w, v.items, v.n);
        for (size_t i = 0; i < v.n; i++)
            free((char *)((http_upstream_stats *)v.items)[i].upstream);
        free(v.items);
    }
    for (size_t i = 0; i < m->n_colls; i++)
        m->colls[i].fn(w, m->colls[i].user);
    pthread_mutex_unlock(&m->mu);

    uint64_t errors = metrics_writer_errors(w);
    metrics_family(w, "herald_metrics_write_errors", METRICS_GAUGE,
                   "Samples or families this scrape dropped as malformed (a collector bug).");
    metrics_sample_u64(w, NULL, 0, errors);

    char *text = strbuf_take(&w->out);
    if (len != NULL)
        *len = strlen(text);
    metrics_writer_free(w);
    return text;
}

/* ------------------------------------------------------------------ */
/* The listener                                                        */

static const char *const routes[] = { "/metrics", "/healthz", "/readyz", NULL };

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int code, const char *ctype,
                             char *body, size_t len, bool allow)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned int code, const char *text,
                                  bool allow)
{
    return reply(conn, code, PLAIN_CONTENT_TYPE, xstrdup(text), strlen(text), allow);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    metrics *m = cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;

    bool known = false;
    for (size_t i = 0; routes[i] != NULL && !known; i++)
        known = strcmp(url, routes[i]) == 0;
    if (!known)
        return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n", false);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", true);

    if (strcmp(url, "/metrics") == 0) {
        size_t len = 0;
        char *text = metrics_render(m, &len);
        return reply(conn, MHD_HTTP_OK, METRICS_CONTENT_TYPE, text, len, false);
    }
    if (strcmp(url, "/healthz") == 0) {
        bool live =
            m->opt.health == NULL || health_get(m->opt.health, "liveness") != HEALTH_NOT_SERVING;
        return live ? reply_text(conn, MHD_HTTP_OK, "ok\n", false)
                    : reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not serving\n", false);
    }
    bool ready = m->opt.health != NULL && health_get(m->opt.health, "readiness") == HEALTH_SERVING;
    return ready ? reply_text(conn, MHD_HTTP_OK, "ok\n", false)
                 : reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready\n", false);
}

/* libmicrohttpd's own complaints (accept failures, connection limit hit). */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (LOG_WARN < atomic_load(&log_level))
        return;
    char msg[512];
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    log_field f[] = { LOG_S("detail", msg) };
    log_event(LOG_WARN, "admin listener", f, 1);
}

/* "host:port", "[v6]:port", ":port" (every interface) into a socket address. */
static status parse_listen(const char *addr, struct sockaddr_storage *ss, socklen_t *sl, char **err)
{
    if (addr == NULL || addr[0] == '\0' || strncmp(addr, "unix:", 5) == 0) {
        *err = xasprintf("admin listen address '%s': expected host:port (unix sockets are not "
                         "supported)",
                         addr != NULL ? addr : "");
        return ST_INVALID;
    }
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon[1] == '\0') {
        *err = xasprintf("admin listen address '%s': expected host:port", addr);
        return ST_INVALID;
    }
    char *host = xstrndup(addr, (size_t)(colon - addr));
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host[0] != '\0' && strcmp(host, "*") != 0 ? host : NULL, colon + 1, &hints,
                         &res);
    free(host);
    if (rc != 0 || res == NULL) {
        *err = xasprintf("admin listen address '%s': %s", addr,
                         rc != 0 ? gai_strerror(rc) : "no address");
        if (res != NULL)
            freeaddrinfo(res);
        return ST_INVALID;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sl = res->ai_addrlen;
    freeaddrinfo(res);
    return ST_OK;
}

status metrics_start(metrics *m, char **err)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;

    if (m->daemon != NULL)
        return ST_OK;
    memset(&ss, 0, sizeof ss);
    status st = parse_listen(m->opt.listen_addr, &ss, &sl, err);
    if (st != ST_OK)
        return st;
    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    m->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, m, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, (void *)NULL,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)m->opt.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)m->opt.connection_timeout_s, MHD_OPTION_END);
    if (m->daemon == NULL) {
        *err = xasprintf("admin listener: cannot listen on %s (in use, or not an address of "
                         "this host)",
                         m->opt.listen_addr);
        return ST_UNAVAILABLE;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT);
    m->port = info != NULL ? info->port : 0;
    return ST_OK;
}

int metrics_port(const metrics *m)
{
    return m->port;
}

void metrics_stop(metrics *m)
{
    if (m->daemon == NULL)
        return;
    MHD_stop_daemon(m->daemon);
    m->daemon = NULL;
}

void metrics_free(metrics *m)
{
    if (m == NULL)
        return;
    metrics_stop(m);
    pthread_mutex_destroy(&m->mu);
    free(m->colls);
    free(m);
}
