/* loadgen.c - herald-loadgen: a gRPC load generator on the gRPC C core.
 *
 * Any unary method, by path, with a request given as proto3 JSON (encoded
 * with pbjson against the registry's descriptors; a template with {{uuid}},
 * {{seq}} and {{run}} placeholders, see lg_req.h), as a binary file, or as a
 * list of JSON requests rotated through. Plus one built-in two-step scenario,
 * the executors' lease cycle: ClaimDueWork, then ReportPublishResult SUCCESS
 * for each claimed post, or with --report-batch one ReportPublishResults for
 * all of them. There the unit is a post reported, whatever the calls.
 *
 * Two ways to drive it:
 *   - closed loop (default): C connections x S outstanding calls each; a call
 *     is re-issued on its slot the moment the previous one completes.
 *   - open loop (--rate R): R calls/s in total on a fixed schedule; latency is
 *     measured from each call's scheduled send time, so a stalled server is
 *     charged for the calls it delayed (no coordinated omission). In-flight
 *     calls are capped by --max-outstanding; a call that finds every slot
 *     busy is sent late and counted in late_sends.
 *
 * Threads: T threads (default 2: the benchmark machine has 2 cores and the
 * server under test needs them too; open loop 1, see parse_args), each with
 * one completion queue that
 * carries every call of its share of the connections; each call is one batch
 * (all six unary ops), so a call costs one CQ event. Connections are separate
 * TCP connections (local subchannel pools), connected before the clock starts.
 *
 * Bounds: --duration seconds of measurement after --warmup seconds (calls
 * started during the warm-up are not counted) and/or -n calls; whichever
 * comes first. Every call has a deadline (--timeout).
 *
 * Output: a summary on stderr, and one JSON object on stdout (calls/s, items/s
 * with --items, p50/p90/p99/p99.9/max latency from an HDR-style histogram,
 * errors by gRPC code with the first message of each; "unit" says whether
 * calls/ok count calls or, in the lease cycle, posts). Exit status: 0 when the
 * run took place (whatever the calls returned), 1 when it could not (no
 * connection, a request that does not encode), 2 on bad usage. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "herald/v1/scheduling.pb-c.h"
#include "lg_hist.h"
#include "lg_req.h"
#include "registry.h"
#include "util.h"

#define LG_CODES 17
#define LG_MAX_MD 16
#define LG_TICK_NS 50000000LL /* longest CQ wait: how soon a stop is noticed */
#define LG_LATE_NS 1000000LL  /* an open-loop send this late is a late send */
#define NS_PER_S 1000000000LL
#define LG_MAX_LEASE_BATCH 100 /* ReportPublishResults takes up to 500 */

static const char *const code_names[LG_CODES] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

typedef enum { SCEN_UNARY = 0, SCEN_LEASE } lg_scenario;

typedef struct lg_opts {
    const char *target;
    const char *method;
    const char *data;      /* -d: JSON text, @file or @- */
    const char *data_file; /* binary request */
    const char *data_list; /* JSON requests, one per line */
    lg_scenario scenario;
    const char *lease_profile;
    int lease_seconds;
    int lease_batch;   /* posts per claim */
    bool report_batch; /* one ReportPublishResults per claim */
    int connections;
    int streams;
    int threads;
    double rate; /* 0: closed loop */
    int max_outstanding;
    double duration_s;
    double warmup_s;
    uint64_t count; /* 0: no count bound */
    int timeout_ms;
    int connect_timeout_ms;
    int items;
    const char *label;
    bool quiet;
    grpc_metadata md[LG_MAX_MD];
    size_t n_md;
} lg_opts;

typedef struct lg_run {
    const lg_opts *o;
    lg_tmpl **reqs;
    size_t n_reqs;
    grpc_slice path;                   /* unary: the method; lease: ClaimDueWork */
    grpc_slice path2;                  /* lease: ReportPublishResult, or ReportPublishResults */
    int64_t t_start, t_measure, t_end; /* CLOCK_MONOTONIC ns */
    atomic_bool stop;
    atomic_bool exhausted; /* lease: a claim found nothing due */
    atomic_uint_fast64_t seq;
    atomic_uint_fast64_t measured_issued;
} lg_run;

struct lg_thread;

typedef struct lg_lease {
    char lease_id[64];
    char post_id[64];
    char external_id[48]; /* --report-batch: this post's receipt */
} lg_lease;

typedef struct lg_slot {
    struct lg_thread *th;
    grpc_channel *ch;
    grpc_call *call;
    grpc_byte_buffer *send_bb;
    grpc_byte_buffer *recv_bb;
    grpc_metadata_array md_in;
    grpc_metadata_array trailers;
    grpc_status_code code;
    grpc_slice details;
    int64_t start_ns; /* the call's (cycle's) start; open loop: its scheduled time */
    bool measured;
    int step; /* lease: 0 claim, 1 report */
    char executor[64];
    lg_lease *leases; /* lease: the posts of the last claim (lease_batch) */
    size_t n_leases;
    size_t next_lease; /* the one being reported */
} lg_slot;

typedef struct lg_thread {
    int id;
    pthread_t tid;
    lg_run *run;
    grpc_completion_queue *cq;
    grpc_channel **ch;
    size_t n_ch;
    lg_slot *slots;
    size_t n_slots;
    lg_slot **free_slots;
    size_t n_free;
    size_t outstanding;
    size_t rr; /* open loop: next connection */
    size_t next_req;
    lg_rng rng;
    grpc_slice static_req;
    bool have_static;
    int64_t interval_ns; /* open loop */
    int64_t next_send_ns;
    lg_hist hist;
    uint64_t codes[LG_CODES];
    char *first_err[LG_CODES];
    uint64_t late_sends;
    uint64_t empty_claims;
    uint64_t render_errors;
    uint64_t resp_bytes; /* measured calls' reply messages */
    uint64_t resp_msgs;
    /* --report-batch, measured only: ReportPublishResults calls, results
     * whose code is not OK (also counted under that code) and OK results
     * marked duplicate_report (a fresh lease should have none) */
    uint64_t report_calls;
    uint64_t report_refused;
    uint64_t report_duplicates;
    int64_t last_done_ns;
    char *fatal; /* a call could not be started: the run stops */
} lg_thread;

static lg_run *sig_run; /* for the SIGINT/SIGTERM handler */

#ifdef LG_HAVE_ABSL
void lg_absl_fast_mutex(void); /* lg_absl.cc */
#endif

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static gpr_timespec gpr_in_ns(int64_t ns)
{
    if (ns < 0)
        ns = 0;
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(ns, GPR_TIMESPAN));
}

static void on_signal(int sig)
{
    (void)sig;
    if (sig_run != NULL)
        atomic_store(&sig_run->stop, true);
}

/* ---------------------------------------------------------------- usage */

static void usage(FILE *f)
{
    (void)fputs(
        "Usage: herald-loadgen [OPTIONS]\n"
        "\n"
        "Request:\n"
        "  --method PATH          unary method, /pkg.Svc/Method (or pkg.Svc/Method)\n"
        "  -d, --data JSON        request as proto3 JSON; @FILE reads a file, @- stdin;\n"
        "                         {{uuid}} {{seq}} {{run}} placeholders change per call\n"
        "  --data-file FILE       request as serialized protobuf bytes (any method)\n"
        "  --data-list FILE       JSON requests, one per line, rotated through\n"
        "  --scenario lease-cycle ClaimDueWork, then ReportPublishResult SUCCESS per\n"
        "                         post; the unit is a post reported (calls/s, ok/s are\n"
        "                         posts); stops when nothing is due\n"
        "  --lease-profile ID     lease cycle: claim only this profile's posts\n"
        "  --lease-seconds N      lease cycle: lease length (default 60)\n"
        "  --lease-batch N        lease cycle: posts per claim (default 1, at most 100)\n"
        "  --report-batch         lease cycle: report a claim's posts in one\n"
        "                         ReportPublishResults call (SUCCESS each) instead of one\n"
        "                         ReportPublishResult per post; a result whose code is not\n"
        "                         OK counts as an error under that code\n"
        "  -H 'key: value'        request metadata (repeatable, at most 16)\n"
        "  --timeout MS           per-call deadline (default 10000)\n"
        "\n"
        "Load:\n"
        "  --target ADDR          server (default 127.0.0.1:50051)\n"
        "  -c, --connections N    TCP connections (default 8)\n"
        "  -s, --streams N        closed loop: outstanding calls per connection (default 16)\n"
        "  --rate R               open loop: R calls/s in total; latency from the scheduled\n"
        "                         send time\n"
        "  --max-outstanding N    open loop: calls in flight at most (default 4096)\n"
        "  -t, --threads N        client threads, one completion queue each (default 2;\n"
        "                         open loop: 1)\n"
        "  --duration S           measured seconds (default 10; 600 at most)\n"
        "  --warmup S             seconds run first and not counted (default 1)\n"
        "  -n, --count N          stop after N measured calls\n"
        "  --connect-timeout MS   time to get every connection ready (default 10000)\n"
        "\n"
        "Report:\n"
        "  --items N              items per call (e.g. observations), reported as items/s\n"
        "  --label NAME           name put in the JSON line\n"
        "  -q, --quiet            no summary on stderr (the JSON line only)\n"
        "  -h, --help\n",
        f);
}

static bool parse_int(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

/* "key: value" -> metadata with static slices (they live until exit). */
static bool parse_header(lg_opts *o, const char *h)
{
    const char *colon = strchr(h, ':');
    if (colon == NULL || colon == h || o->n_md >= LG_MAX_MD)
        return false;
    char *key = xstrndup(h, (size_t)(colon - h));
    for (char *p = key; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    grpc_metadata *m = &o->md[o->n_md++];
    memset(m, 0, sizeof *m);
    m->key = grpc_slice_from_static_string(key);
    m->value = grpc_slice_from_static_string(xstrdup(v));
    return true;
}

/* Returns 0 when parsed, 2 on a usage error, -1 after --help. */
static int parse_args(int argc, char **argv, lg_opts *o)
{
    enum {
        O_METHOD = 256,
        O_DATA_FILE,
        O_DATA_LIST,
        O_SCENARIO,
        O_LEASE_PROFILE,
        O_LEASE_SECONDS,
        O_LEASE_BATCH,
        O_REPORT_BATCH,
        O_TIMEOUT,
        O_TARGET,
        O_RATE,
        O_MAX_OUT,
        O_DURATION,
        O_WARMUP,
        O_CONNECT_TIMEOUT,
        O_ITEMS,
        O_LABEL,
    };
    static const struct option longs[] = {
        { "method", required_argument, NULL, O_METHOD },
        { "data", required_argument, NULL, 'd' },
        { "data-file", required_argument, NULL, O_DATA_FILE },
        { "data-list", required_argument, NULL, O_DATA_LIST },
        { "scenario", required_argument, NULL, O_SCENARIO },
        { "lease-profile", required_argument, NULL, O_LEASE_PROFILE },
        { "lease-seconds", required_argument, NULL, O_LEASE_SECONDS },
        { "lease-batch", required_argument, NULL, O_LEASE_BATCH },
        { "report-batch", no_argument, NULL, O_REPORT_BATCH },
        { "header", required_argument, NULL, 'H' },
        { "timeout", required_argument, NULL, O_TIMEOUT },
        { "target", required_argument, NULL, O_TARGET },
        { "connections", required_argument, NULL, 'c' },
        { "streams", required_argument, NULL, 's' },
        { "rate", required_argument, NULL, O_RATE },
        { "max-outstanding", required_argument, NULL, O_MAX_OUT },
        { "threads", required_argument, NULL, 't' },
        { "duration", required_argument, NULL, O_DURATION },
        { "warmup", required_argument, NULL, O_WARMUP },
        { "count", required_argument, NULL, 'n' },
        { "connect-timeout", required_argument, NULL, O_CONNECT_TIMEOUT },
        { "items", required_argument, NULL, O_ITEMS },
        { "label", required_argument, NULL, O_LABEL },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool duration_set = false, threads_set = false;
    int c;
    long v = 0;
    while ((c = getopt_long(argc, argv, "d:H:c:s:t:n:qh", longs, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case O_METHOD:
            o->method = optarg;
            break;
        case 'd':
            o->data = optarg;
            break;
        case O_DATA_FILE:
            o->data_file = optarg;
            break;
        case O_DATA_LIST:
            o->data_list = optarg;
            break;
        case O_SCENARIO:
            ok = strcmp(optarg, "lease-cycle") == 0;
            o->scenario = SCEN_LEASE;
            break;
        case O_LEASE_PROFILE:
            o->lease_profile = optarg;
            break;
        case O_LEASE_SECONDS:
            ok = parse_int(optarg, 10, 3600, &v);
            o->lease_seconds = (int)v;
            break;
        case O_LEASE_BATCH:
            ok = parse_int(optarg, 1, LG_MAX_LEASE_BATCH, &v);
            o->lease_batch = (int)v;
            break;
        case O_REPORT_BATCH:
            o->report_batch = true;
            break;
        case 'H':
            ok = parse_header(o, optarg);
            break;
        case O_TIMEOUT:
            ok = parse_int(optarg, 1, 3600000, &v);
            o->timeout_ms = (int)v;
            break;
        case O_TARGET:
            o->target = optarg;
            break;
        case 'c':
            ok = parse_int(optarg, 1, 4096, &v);
            o->connections = (int)v;
            break;
        case 's':
            ok = parse_int(optarg, 1, 1000, &v);
            o->streams = (int)v;
            break;
        case O_RATE:
            ok = parse_double(optarg, 0.001, 10000000.0, &o->rate);
            break;
        case O_MAX_OUT:
            ok = parse_int(optarg, 1, 1000000, &v);
            o->max_outstanding = (int)v;
            break;
        case 't':
            ok = parse_int(optarg, 1, 64, &v);
            o->threads = (int)v;
            threads_set = true;
            break;
        case O_DURATION:
            ok = parse_double(optarg, 0.01, 600.0, &o->duration_s);
            duration_set = true;
            break;
        case O_WARMUP:
            ok = parse_double(optarg, 0.0, 600.0, &o->warmup_s);
            break;
        case 'n':
            ok = parse_int(optarg, 1, 2000000000L, &v);
            o->count = (uint64_t)v;
            break;
        case O_CONNECT_TIMEOUT:
            ok = parse_int(optarg, 1, 600000, &v);
            o->connect_timeout_ms = (int)v;
            break;
        case O_ITEMS:
            ok = parse_int(optarg, 1, 1000000, &v);
            o->items = (int)v;
            break;
        case O_LABEL:
            o->label = optarg;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            ok = false;
            break;
        }
        if (!ok) {
            if (c != '?')
                (void)fprintf(stderr, "herald-loadgen: bad value for option (%s)\n",
                              optarg != NULL ? optarg : "?");
            (void)fputs("Try 'herald-loadgen --help'\n", stderr);
            return 2;
        }
    }
    if (optind < argc) {
        (void)fprintf(stderr, "herald-loadgen: unexpected argument %s\n", argv[optind]);
        return 2;
    }
    int sources = (o->data != NULL) + (o->data_file != NULL) + (o->data_list != NULL);
    if (o->report_batch && o->scenario != SCEN_LEASE) {
        (void)fputs("herald-loadgen: --report-batch goes with --scenario lease-cycle\n", stderr);
        return 2;
    }
    if (o->scenario == SCEN_UNARY && o->method == NULL) {
        (void)fputs("herald-loadgen: --method is required (or --scenario lease-cycle)\n", stderr);
        return 2;
    }
    if (sources > 1 || (o->scenario == SCEN_LEASE && (sources > 0 || o->method != NULL))) {
        (void)fputs("herald-loadgen: give one of -d, --data-file, --data-list (none with "
                    "--scenario)\n",
                    stderr);
        return 2;
    }
    if (o->count > 0 && !duration_set)
        o->duration_s = 600.0; /* the count bounds the run; keep a time bound anyway */
    if (o->rate > 0 && o->max_outstanding < o->threads)
        o->max_outstanding = o->threads;
    /* Open loop: one thread unless asked. Threads in timed waits on separate
     * CQs pass gRPC's single epoll poller around; measured here, 2 threads
     * fell behind a 3,000/s schedule that 1 thread kept (late_sends). */
    if (o->rate > 0 && !threads_set)
        o->threads = 1;
    if (o->threads > o->connections && o->rate <= 0)
        o->threads = o->connections;
    return 0;
}

/* ---------------------------------------------------------------- requests */

static char *read_all(const char *path, size_t *len, char **err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        return NULL;
    }
    strbuf b = { 0 };
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        strbuf_append(&b, buf, n);
    bool bad = ferror(f) != 0;
    if (f != stdin)
        (void)fclose(f);
    if (bad) {
        strbuf_fini(&b);
        *err = xasprintf("%s: read error", path);
        return NULL;
    }
    if (b.data == NULL)
        strbuf_puts(&b, "");
    *len = b.len;
    return strbuf_take(&b);
}

/* Resolves --method to a path and (when known) its input descriptor. */
static char *method_path(const char *spec, const ProtobufCMessageDescriptor **input)
{
    const registry_service *svc = NULL;
    const ProtobufCMethodDescriptor *m = NULL;
    *input = NULL;
    if (registry_method_find(spec, &svc, &m)) {
        *input = m->input;
        return xasprintf("/%s/%s", svc->desc->name, m->name);
    }
    return spec[0] == '/' ? xstrdup(spec) : xasprintf("/%s", spec);
}

static bool add_json_req(lg_run *run, const char *json, size_t len,
                         const ProtobufCMessageDescriptor *input, const char *where)
{
    char *err = NULL;
    lg_tmpl *t = lg_tmpl_from_json(json, len, input, &err);
    if (t == NULL) {
        (void)fprintf(stderr, "herald-loadgen: %s: %s\n", where, err != NULL ? err : "bad request");
        free(err);
        return false;
    }
    run->reqs = xrealloc(run->reqs, (run->n_reqs + 1) * sizeof(lg_tmpl *));
    run->reqs[run->n_reqs++] = t;
    return true;
}

static bool build_requests(lg_run *run, const lg_opts *o, char **path_out)
{
    const ProtobufCMessageDescriptor *input = NULL;
    char *err = NULL;
    size_t len = 0;
    *path_out = method_path(o->method, &input);
    if ((o->data != NULL || o->data_list != NULL) && input == NULL) {
        (void)fprintf(stderr,
                      "herald-loadgen: %s: no descriptor for this method (Herald, health and "
                      "reflection methods have one); use --data-file\n",
                      o->method);
        return false;
    }
    if (o->data_file != NULL) {
        char *bytes = read_all(o->data_file, &len, &err);
        if (bytes == NULL) {
            (void)fprintf(stderr, "herald-loadgen: %s\n", err);
            free(err);
            return false;
        }
        run->reqs = xcalloc(1, sizeof(lg_tmpl *));
        run->reqs[0] = lg_tmpl_from_bytes((const uint8_t *)bytes, len);
        run->n_reqs = 1;
        free(bytes);
        return true;
    }
    if (o->data_list != NULL) {
        char *text = read_all(o->data_list, &len, &err);
        if (text == NULL) {
            (void)fprintf(stderr, "herald-loadgen: %s\n", err);
            free(err);
            return false;
        }
        size_t line = 0;
        bool ok = true;
        for (char *p = text, *end = text + len; ok && p < end;) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            char *stop = nl != NULL ? nl : end;
            line++;
            char *s = p;
            while (s < stop && (*s == ' ' || *s == '\t' || *s == '\r'))
                s++;
            if (s < stop && *s != '#') {
                char where[64];
                (void)snprintf(where, sizeof where, "%s line %zu", o->data_list, line);
                ok = add_json_req(run, s, (size_t)(stop - s), input, where);
            }
            p = stop + 1;
        }
        free(text);
        if (ok && run->n_reqs == 0) {
            (void)fprintf(stderr, "herald-loadgen: %s holds no request\n", o->data_list);
            ok = false;
        }
        return ok;
    }
    if (o->data != NULL) {
        char *text = NULL;
        if (o->data[0] == '@') {
            text = read_all(o->data[1] != '\0' ? o->data + 1 : "-", &len, &err);
            if (text == NULL) {
                (void)fprintf(stderr, "herald-loadgen: %s\n", err);
                free(err);
                return false;
            }
        } else {
            text = xstrdup(o->data);
            len = strlen(text);
        }
        bool ok = add_json_req(run, text, len, input, "-d");
        free(text);
        return ok;
    }
    run->reqs = xcalloc(1, sizeof(lg_tmpl *)); /* no request given: an empty message */
    run->reqs[0] = lg_tmpl_from_bytes((const uint8_t *)"", 0);
    run->n_reqs = 1;
    return true;
}

/* ---------------------------------------------------------------- calls */

/* Whether a new call (or cycle) may start now; reserves a count slot. */
static bool may_issue(lg_thread *th, int64_t now)
{
    lg_run *run = th->run;
    if (atomic_load_explicit(&run->stop, memory_order_relaxed) || th->fatal != NULL)
        return false;
    if (now >= run->t_end) {
        atomic_store(&run->stop, true);
        return false;
    }
    if (run->o->count > 0 && now >= run->t_measure) {
        uint64_t k = atomic_fetch_add_explicit(&run->measured_issued, 1, memory_order_relaxed);
        if (k >= run->o->count) {
            atomic_store(&run->stop, true);
            return false;
        }
    }
    return true;
}

static void slot_release(lg_slot *s)
{
    if (s->send_bb != NULL)
        grpc_byte_buffer_destroy(s->send_bb);
    if (s->recv_bb != NULL)
        grpc_byte_buffer_destroy(s->recv_bb);
    s->send_bb = s->recv_bb = NULL;
    grpc_metadata_array_destroy(&s->md_in);
    grpc_metadata_array_destroy(&s->trailers);
    grpc_slice_unref(s->details);
    s->details = grpc_empty_slice();
    if (s->call != NULL)
        grpc_call_unref(s->call);
    s->call = NULL;
}

/* Starts one unary call on s with body (the slot's byte buffer takes its own
 * reference). false when core refused the batch (a bug: the run stops). */
static bool call_start(lg_thread *th, lg_slot *s, grpc_slice path, grpc_slice body)
{
    const lg_opts *o = th->run->o;
    gpr_timespec deadline = gpr_in_ns((int64_t)o->timeout_ms * 1000000LL);
    s->call = grpc_channel_create_call(s->ch, NULL, GRPC_PROPAGATE_DEFAULTS, th->cq, path, NULL,
                                       deadline, NULL);
    s->send_bb = grpc_raw_byte_buffer_create(&body, 1);
    s->recv_bb = NULL;
    grpc_metadata_array_init(&s->md_in);
    grpc_metadata_array_init(&s->trailers);
    s->details = grpc_empty_slice();
    s->code = GRPC_STATUS_UNKNOWN;

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = o->n_md;
    ops[0].data.send_initial_metadata.metadata = (grpc_metadata *)o->md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->md_in;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &s->recv_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &s->trailers;
    ops[5].data.recv_status_on_client.status = &s->code;
    ops[5].data.recv_status_on_client.status_details = &s->details;
    grpc_call_error e = grpc_call_start_batch(s->call, ops, 6, s, NULL);
    if (e != GRPC_CALL_OK) {
        th->fatal = xasprintf("grpc_call_start_batch failed (%d)", (int)e);
        slot_release(s);
        return false;
    }
    th->outstanding++;
    return true;
}

/* A slice owning buf (freed with free once gRPC is done with it). */
static grpc_slice slice_take(uint8_t *buf, size_t len)
{
    return grpc_slice_new(buf, len, free);
}

static grpc_slice pack_msg(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = xmalloc(n ? n : 1);
    protobuf_c_message_pack(m, buf);
    return slice_take(buf, n);
}

static bool start_claim(lg_thread *th, lg_slot *s)
{
    const lg_opts *o = th->run->o;
    char rid[37];
    lg_uuid(&th->rng, rid);
    Herald__V1__ClaimDueWorkRequest req = HERALD__V1__CLAIM_DUE_WORK_REQUEST__INIT;
    req.request_id = rid;
    req.executor_id = s->executor;
    req.profile_id = (char *)(o->lease_profile != NULL ? o->lease_profile : "");
    req.limit = o->lease_batch;
    req.lease_seconds = o->lease_seconds;
    grpc_slice body = pack_msg(&req.base);
    s->step = 0;
    bool ok = call_start(th, s, th->run->path, body);
    grpc_slice_unref(body);
    return ok;
}

static bool start_report(lg_thread *th, lg_slot *s)
{
    char rid[37], ext[48], u[37];
    lg_uuid(&th->rng, rid);
    lg_uuid(&th->rng, u);
    (void)snprintf(ext, sizeof ext, "lg-%s", u);
    Herald__V1__ReportPublishResultRequest req = HERALD__V1__REPORT_PUBLISH_RESULT_REQUEST__INIT;
    req.request_id = rid;
    const lg_lease *l = &s->leases[s->next_lease];
    req.lease_id = (char *)l->lease_id;
    req.executor_id = s->executor;
    req.post_id = (char *)l->post_id;
    req.outcome = HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_SUCCESS;
    req.external_id = ext;
    grpc_slice body = pack_msg(&req.base);
    s->step = 1;
    bool ok = call_start(th, s, th->run->path2, body);
    grpc_slice_unref(body);
    return ok;
}

/* --report-batch: one ReportPublishResults for every post of the claim,
 * SUCCESS each with its own external_id, under a fresh request_id. */
static bool start_report_batch(lg_thread *th, lg_slot *s)
{
    char rid[37], u[37];
    lg_uuid(&th->rng, rid);
    Herald__V1__PublishReport *reps = xcalloc(s->n_leases, sizeof *reps);
    Herald__V1__PublishReport **ptrs = xcalloc(s->n_leases, sizeof *ptrs);
    for (size_t i = 0; i < s->n_leases; i++) {
        lg_lease *l = &s->leases[i];
        lg_uuid(&th->rng, u);
        (void)snprintf(l->external_id, sizeof l->external_id, "lg-%s", u);
        herald__v1__publish_report__init(&reps[i]);
        reps[i].lease_id = l->lease_id;
        reps[i].post_id = l->post_id;
        reps[i].outcome = HERALD__V1__PUBLISH_OUTCOME__PUBLISH_OUTCOME_SUCCESS;
        reps[i].external_id = l->external_id;
        ptrs[i] = &reps[i];
    }
    Herald__V1__ReportPublishResultsRequest req = HERALD__V1__REPORT_PUBLISH_RESULTS_REQUEST__INIT;
    req.request_id = rid;
    req.executor_id = s->executor;
    req.n_reports = s->n_leases;
    req.reports = ptrs;
    grpc_slice body = pack_msg(&req.base); /* copies: the arrays may go */
    free(ptrs);
    free(reps);
    s->step = 1;
    bool ok = call_start(th, s, th->run->path2, body);
    grpc_slice_unref(body);
    return ok;
}

/* Starts the next call (or cycle) on s; start_ns is its start for latency. */
static bool issue(lg_thread *th, lg_slot *s, int64_t start_ns)
{
    lg_run *run = th->run;
    s->start_ns = start_ns;
    s->measured = start_ns >= run->t_measure;
    if (run->o->scenario == SCEN_LEASE)
        return start_claim(th, s);
    if (th->have_static)
        return call_start(th, s, run->path, th->static_req);

    const lg_tmpl *t = run->reqs[th->next_req];
    th->next_req = (th->next_req + 1) % run->n_reqs;
    uint64_t seq = atomic_fetch_add_explicit(&run->seq, 1, memory_order_relaxed);
    size_t len = 0;
    char *err = NULL;
    uint8_t *buf = lg_tmpl_render(t, &th->rng, seq, &len, &err);
    if (buf == NULL) {
        /* a slow-path template whose values do not encode: a client-side error */
        th->render_errors++;
        free(err);
        return false;
    }
    grpc_slice body = slice_take(buf, len);
    bool ok = call_start(th, s, run->path, body);
    grpc_slice_unref(body);
    return ok;
}

/* One measured unit (a call, or a post in the lease cycle) done with code c
 * (a gRPC code, or google.rpc.Code of a batched report's result: the same
 * numbers); msg (n bytes, borrowed) is kept when it is c's first. */
static void count_unit(lg_thread *th, int c, int64_t latency_ns, int64_t now, const char *msg,
                       size_t n)
{
    if (c < 0 || c >= LG_CODES)
        c = (int)GRPC_STATUS_UNKNOWN;
    lg_hist_add(&th->hist, (uint64_t)latency_ns);
    th->codes[c]++;
    if (c != 0 && th->first_err[c] == NULL)
        th->first_err[c] = xstrndup(msg, n < 300 ? n : 300);
    if (now > th->last_done_ns)
        th->last_done_ns = now;
}

static void count_reply(lg_thread *th, const lg_slot *s)
{
    if (s->recv_bb != NULL) {
        th->resp_bytes += grpc_byte_buffer_length(s->recv_bb);
        th->resp_msgs++;
    }
}

/* A lease cycle counts when its post is done inside the measured time: a
 * claim of many posts started in the warm-up may outlast it. */
static bool is_measured(const lg_thread *th, const lg_slot *s, int64_t now)
{
    return th->run->o->scenario == SCEN_LEASE ? now >= th->run->t_measure : s->measured;
}

static void record(lg_thread *th, lg_slot *s, grpc_status_code code, int64_t now)
{
    if (!is_measured(th, s, now))
        return;
    count_reply(th, s);
    count_unit(th, (int)code, now - s->start_ns, now,
               (const char *)GRPC_SLICE_START_PTR(s->details), GRPC_SLICE_LENGTH(s->details));
}

/* The reply message of the call on s, as one slice the caller unrefs; false
 * (and an empty slice) when there is none. */
static bool reply_bytes(const lg_slot *s, grpc_slice *out)
{
    *out = grpc_empty_slice();
    if (s->recv_bb == NULL)
        return false;
    grpc_byte_buffer_reader rd;
    if (!grpc_byte_buffer_reader_init(&rd, s->recv_bb))
        return false;
    *out = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    return true;
}

/* --report-batch: the ReportPublishResults call on s is over. Each of the
 * claim's posts is a unit, its latency from the claim's start: OK when its
 * result is; else counted under its result's code (and in report_refused),
 * or under the call's code when the call failed as a whole. */
static void record_batch(lg_thread *th, lg_slot *s, grpc_status_code code, int64_t now)
{
    if (!is_measured(th, s, now))
        return;
    th->report_calls++;
    count_reply(th, s);
    Herald__V1__ReportPublishResultsResponse *r = NULL;
    grpc_slice all = grpc_empty_slice();
    if (code == GRPC_STATUS_OK && reply_bytes(s, &all))
        r = herald__v1__report_publish_results_response__unpack(NULL, GRPC_SLICE_LENGTH(all),
                                                                GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);

    int64_t lat = now - s->start_ns;
    for (size_t i = 0; i < s->n_leases; i++) {
        char msg[320];
        int c = (int)code;
        if (code != GRPC_STATUS_OK) {
            (void)snprintf(msg, sizeof msg, "%.*s", (int)GRPC_SLICE_LENGTH(s->details),
                           (const char *)GRPC_SLICE_START_PTR(s->details));
        } else if (r == NULL || i >= r->n_results) {
            c = (int)GRPC_STATUS_INTERNAL;
            (void)snprintf(msg, sizeof msg,
                           "loadgen: ReportPublishResults reply %s for %zu reports",
                           r == NULL ? "does not parse" : "has too few results", s->n_leases);
        } else if (strcmp(r->results[i]->post_id, s->leases[i].post_id) != 0) {
            c = (int)GRPC_STATUS_INTERNAL;
            (void)snprintf(msg, sizeof msg, "loadgen: result %zu names post %s, not %s", i,
                           r->results[i]->post_id, s->leases[i].post_id);
        } else {
            const Herald__V1__PublishReportResult *x = r->results[i];
            c = x->code;
            if (c != 0)
                th->report_refused++;
            else if (x->duplicate_report)
                th->report_duplicates++;
            (void)snprintf(msg, sizeof msg, "result: %s: %s", x->reason, x->message);
        }
        count_unit(th, c, lat, now, msg, strlen(msg));
    }
    if (r != NULL)
        herald__v1__report_publish_results_response__free_unpacked(r, NULL);
}

/* Reads a claim's reply; true with s->leases set when posts were leased. */
static bool claim_take(lg_slot *s)
{
    grpc_slice all;
    if (!reply_bytes(s, &all))
        return false;
    Herald__V1__ClaimDueWorkResponse *r = herald__v1__claim_due_work_response__unpack(
        NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    s->n_leases = s->next_lease = 0;
    for (size_t i = 0; r != NULL && i < r->n_items; i++) {
        const Herald__V1__Lease *l = r->items[i]->lease;
        if (l == NULL || s->n_leases >= (size_t)s->th->run->o->lease_batch)
            continue;
        lg_lease *d = &s->leases[s->n_leases++];
        (void)snprintf(d->lease_id, sizeof d->lease_id, "%s", l->lease_id);
        (void)snprintf(d->post_id, sizeof d->post_id, "%s", l->post_id);
    }
    bool got = s->n_leases > 0;
    if (r != NULL)
        herald__v1__claim_due_work_response__free_unpacked(r, NULL);
    return got;
}

/* One CQ event: the call on s is over. Decides what the slot does next. */
static void on_done(lg_thread *th, lg_slot *s, int success)
{
    int64_t now = mono_ns();
    lg_run *run = th->run;
    th->outstanding--;
    grpc_status_code code = success ? s->code : GRPC_STATUS_UNKNOWN;

    if (run->o->scenario == SCEN_LEASE && s->step == 0 && code == GRPC_STATUS_OK) {
        bool got = claim_take(s);
        slot_release(s);
        if (got) {
            if (run->o->report_batch)
                (void)start_report_batch(th, s);
            else
                (void)start_report(th, s);
            return; /* the cycle goes on; its start time stays */
        }
        if (s->measured)
            th->empty_claims++;
        atomic_store(&run->exhausted, true);
        atomic_store(&run->stop, true);
    } else if (run->o->scenario == SCEN_LEASE && s->step == 1 && run->o->report_batch) {
        record_batch(th, s, code, now); /* the claim's posts are all reported */
        slot_release(s);
    } else {
        record(th, s, code, now);
        slot_release(s);
        /* the next post of the claim, under the same cycle start */
        if (run->o->scenario == SCEN_LEASE && s->step == 1 && ++s->next_lease < s->n_leases) {
            start_report(th, s);
            return;
        }
    }

    if (run->o->rate > 0) {
        th->free_slots[th->n_free++] = s;
        return;
    }
    if (may_issue(th, now) && !issue(th, s, now))
        atomic_store(&run->stop, true);
}

/* Open loop: sends every call whose time has come and that finds a slot. */
static void open_loop_send(lg_thread *th, int64_t now)
{
    while (th->next_send_ns <= now && th->n_free > 0) {
        if (!may_issue(th, th->next_send_ns))
            return;
        lg_slot *s = th->free_slots[--th->n_free];
        s->ch = th->ch[th->rr++ % th->n_ch];
        int64_t sched = th->next_send_ns;
        th->next_send_ns += th->interval_ns;
        if (now - sched > LG_LATE_NS && sched >= th->run->t_measure)
            th->late_sends++;
        if (!issue(th, s, sched)) {
            th->free_slots[th->n_free++] = s;
            if (th->fatal != NULL)
                return;
        }
    }
}

static void *thread_main(void *arg)
{
    lg_thread *th = arg;
    lg_run *run = th->run;
    bool open = run->o->rate > 0;
    int64_t now = mono_ns();

    if (!open) {
        for (size_t i = 0; i < th->n_slots; i++)
            if (may_issue(th, now) && !issue(th, &th->slots[i], now))
                break;
    } else {
        th->next_send_ns = run->t_start + th->interval_ns * th->id / run->o->threads;
    }
    /* A deadline + 2 s after the stop, calls still out are cancelled: the run
     * ends even if an event never comes. */
    int64_t grace = (int64_t)run->o->timeout_ms * 1000000LL + 2 * NS_PER_S;
    int64_t stop_seen = 0;
    bool cancelled = false;
    for (;;) {
        now = mono_ns();
        bool stopping = atomic_load_explicit(&run->stop, memory_order_relaxed) ||
                        now >= run->t_end || th->fatal != NULL;
        if (open && !stopping)
            open_loop_send(th, now);
        if (stopping && th->outstanding == 0)
            break;
        if (stopping && stop_seen == 0)
            stop_seen = now;
        if (stopping && !cancelled && (now - stop_seen >= grace || th->fatal != NULL)) {
            for (size_t i = 0; i < th->n_slots; i++)
                if (th->slots[i].call != NULL)
                    grpc_call_cancel(th->slots[i].call, NULL);
            cancelled = true;
        }
        int64_t wait = LG_TICK_NS;
        if (open && !stopping && th->n_free > 0) {
            int64_t until = th->next_send_ns - mono_ns();
            if (until < wait)
                wait = until;
        }
        grpc_event ev = grpc_completion_queue_next(th->cq, gpr_in_ns(wait), NULL);
        if (ev.type == GRPC_OP_COMPLETE)
            on_done(th, ev.tag, ev.success);
        else if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (now >= run->t_end)
            atomic_store(&run->stop, true);
    }
    return NULL;
}

/* ---------------------------------------------------------------- set-up */

static grpc_channel *channel_open(const char *target, int idx)
{
    grpc_arg args[4];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL; /* one TCP connection each */
    args[0].value.integer = 1;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_ENABLE_RETRIES;
    args[1].value.integer = 0;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[2].value.integer = -1;
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = (char *)"herald.loadgen.channel";
    args[3].value.integer = idx;
    grpc_channel_args ca = { .num_args = 4, .args = args };
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, creds, &ca);
    grpc_channel_credentials_release(creds);
    return ch;
}

static bool channels_ready(grpc_channel **ch, size_t n, int timeout_ms)
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    int64_t deadline = mono_ns() + (int64_t)timeout_ms * 1000000LL;
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        for (;;) {
            grpc_connectivity_state st = grpc_channel_check_connectivity_state(ch[i], 1);
            if (st == GRPC_CHANNEL_READY)
                break;
            int64_t left = deadline - mono_ns();
            if (left <= 0 || st == GRPC_CHANNEL_SHUTDOWN) {
                ok = false;
                break;
            }
            grpc_channel_watch_connectivity_state(ch[i], st, gpr_in_ns(left), cq, NULL);
            grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        }
    }
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    return ok;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---------------------------------------------------------------- report */

static void json_str(strbuf *b, const char *s)
{
    if (s == NULL) {
        strbuf_puts(b, "null");
        return;
    }
    strbuf_putc(b, '"');
    strbuf_json_escape(b, s, strlen(s));
    strbuf_putc(b, '"');
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

typedef struct lg_totals {
    lg_hist hist;
    uint64_t codes[LG_CODES];
    const char *first_err[LG_CODES];
    uint64_t calls, ok, late_sends, empty_claims, render_errors;
    uint64_t resp_bytes, resp_msgs;
    uint64_t report_calls, report_refused, report_duplicates;
    double elapsed_s;
    double cpu_s;
} lg_totals;

static void report(const lg_run *run, const lg_totals *t, const char *path)
{
    const lg_opts *o = run->o;
    bool open = o->rate > 0;
    bool lease = o->scenario == SCEN_LEASE;
    const char *unit = lease ? "post" : "call"; /* what calls and ok count */
    double cps = t->elapsed_s > 0 ? (double)t->calls / t->elapsed_s : 0.0;
    double ops = t->elapsed_s > 0 ? (double)t->ok / t->elapsed_s : 0.0;
    const lg_hist *h = &t->hist;
    uint64_t p50 = lg_hist_percentile(h, 50), p90 = lg_hist_percentile(h, 90);
    uint64_t p99 = lg_hist_percentile(h, 99), p999 = lg_hist_percentile(h, 99.9);
    size_t req_bytes = run->n_reqs > 0 ? lg_tmpl_size(run->reqs[0]) : 0;
    bool fast = true;
    for (size_t i = 0; i < run->n_reqs; i++)
        fast = fast && lg_tmpl_fast(run->reqs[i]);

    if (!o->quiet) {
        (void)fprintf(stderr, "%s %s: %s loop, %d connections x %d streams, %d threads%s\n",
                      o->label != NULL ? o->label : "loadgen", path, open ? "open" : "closed",
                      o->connections, o->streams, o->threads, fast ? "" : " (slow-path template)");
        if (open)
            (void)fprintf(stderr, "  rate %.0f/s, late sends %" PRIu64 "\n", o->rate,
                          t->late_sends);
        (void)fprintf(stderr,
                      "  %" PRIu64 " %ss in %.2f s: %.0f %ss/s, %" PRIu64 " OK (%.0f/s)%s\n"
                      "  latency ms: mean %.3f p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f max %.3f\n"
                      "  client CPU %.2f s (%.0f%% of one core)\n",
                      t->calls, unit, t->elapsed_s, cps, unit, t->ok, ops,
                      lease ? " [posts reported; latency from the claim's start]" : "",
                      lg_hist_mean(h) / 1e6, ms(p50), ms(p90), ms(p99), ms(p999), ms(h->max_ns),
                      t->cpu_s, t->elapsed_s > 0 ? 100.0 * t->cpu_s / t->elapsed_s : 0.0);
        if (lease && o->report_batch)
            (void)fprintf(stderr,
                          "  %" PRIu64 " ReportPublishResults calls (%.1f posts each), %" PRIu64
                          " reports refused, %" PRIu64 " duplicates\n",
                          t->report_calls,
                          t->report_calls ? (double)t->calls / (double)t->report_calls : 0.0,
                          t->report_refused, t->report_duplicates);
        for (int c = 1; c < LG_CODES; c++)
            if (t->codes[c] > 0)
                (void)fprintf(stderr, "  %s: %" PRIu64 " (%s)\n", code_names[c], t->codes[c],
                              t->first_err[c] != NULL ? t->first_err[c] : "");
    }

    strbuf b = { 0 };
    strbuf_puts(&b, "{\"bench\":\"loadgen\",\"label\":");
    json_str(&b, o->label);
    strbuf_puts(&b, ",\"target\":");
    json_str(&b, o->target);
    strbuf_puts(&b, ",\"method\":");
    json_str(&b, path);
    strbuf_printf(&b,
                  ",\"scenario\":\"%s\",\"mode\":\"%s\",\"connections\":%d,\"streams\":%d,"
                  "\"threads\":%d,\"unit\":\"%s\",",
                  lease ? "lease-cycle" : "unary", open ? "open" : "closed", o->connections,
                  open ? 0 : o->streams, o->threads, unit);
    if (lease)
        strbuf_printf(&b, "\"lease_batch\":%d,\"report_batch\":%s,", o->lease_batch,
                      o->report_batch ? "true" : "false");
    if (lease && o->report_batch)
        strbuf_printf(&b,
                      "\"report_calls\":%" PRIu64 ",\"report_refused\":%" PRIu64
                      ",\"report_duplicates\":%" PRIu64 ",",
                      t->report_calls, t->report_refused, t->report_duplicates);
    if (open)
        strbuf_printf(&b, "\"rate\":%.3f,\"max_outstanding\":%d,", o->rate, o->max_outstanding);
    else
        strbuf_puts(&b, "\"rate\":null,");
    strbuf_printf(&b,
                  "\"warmup_s\":%.3f,\"duration_s\":%.3f,\"calls\":%" PRIu64 ",\"ok\":%" PRIu64
                  ",\"calls_per_s\":%.1f,\"ok_per_s\":%.1f,",
                  o->warmup_s, t->elapsed_s, t->calls, t->ok, cps, ops);
    if (o->items > 0)
        strbuf_printf(&b, "\"items_per_call\":%d,\"items_per_s\":%.1f,", o->items,
                      ops * (double)o->items);
    strbuf_printf(&b,
                  "\"latency_ms\":{\"mean\":%.4f,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,"
                  "\"p999\":%.4f,\"max\":%.4f},",
                  lg_hist_mean(h) / 1e6, ms(p50), ms(p90), ms(p99), ms(p999), ms(h->max_ns));
    strbuf_puts(&b, "\"errors\":{");
    bool first = true;
    for (int c = 1; c < LG_CODES; c++) {
        if (t->codes[c] == 0)
            continue;
        strbuf_printf(&b, "%s\"%s\":%" PRIu64, first ? "" : ",", code_names[c], t->codes[c]);
        first = false;
    }
    strbuf_puts(&b, "},\"error_messages\":{");
    first = true;
    for (int c = 1; c < LG_CODES; c++) {
        if (t->first_err[c] == NULL)
            continue;
        strbuf_printf(&b, "%s\"%s\":", first ? "" : ",", code_names[c]);
        json_str(&b, t->first_err[c]);
        first = false;
    }
    strbuf_printf(&b,
                  "},\"request_bytes\":%zu,\"response_bytes\":%.0f,\"requests\":%zu,"
                  "\"fast_template\":%s,\"late_sends\":%" PRIu64 ",\"empty_claims\":%" PRIu64
                  ",\"exhausted\":%s,\"render_errors\":%" PRIu64
                  ",\"client_cpu_s\":%.3f,\"client_cpu_pct\":%.1f}\n",
                  req_bytes, t->resp_msgs ? (double)t->resp_bytes / (double)t->resp_msgs : 0.0,
                  run->n_reqs, fast ? "true" : "false", t->late_sends, t->empty_claims,
                  atomic_load(&run->exhausted) ? "true" : "false", t->render_errors, t->cpu_s,
                  t->elapsed_s > 0 ? 100.0 * t->cpu_s / t->elapsed_s : 0.0);
    (void)fputs(b.data, stdout);
    (void)fflush(stdout);
    strbuf_fini(&b);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    lg_opts o = {
        .target = "127.0.0.1:50051",
        .lease_seconds = 60,
        .lease_batch = 1,
        .connections = 8,
        .streams = 16,
        .threads = 2,
        .max_outstanding = 4096,
        .duration_s = 10.0,
        .warmup_s = 1.0,
        .timeout_ms = 10000,
        .connect_timeout_ms = 10000,
    };
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;

    lg_run run = { .o = &o };
    atomic_init(&run.stop, false);
    atomic_init(&run.exhausted, false);
    atomic_init(&run.seq, 0);
    atomic_init(&run.measured_issued, 0);
    char *path = NULL;
    if (o.scenario == SCEN_LEASE) {
        path = xstrdup("/herald.v1.SchedulingService/ClaimDueWork");
        run.path2 = grpc_slice_from_static_string(
            o.report_batch ? "/herald.v1.SchedulingService/ReportPublishResults"
                           : "/herald.v1.SchedulingService/ReportPublishResult");
    } else if (!build_requests(&run, &o, &path)) {
        rc = 1;
        goto out_nogrpc;
    }

#ifdef LG_HAVE_ABSL
    lg_absl_fast_mutex();
#endif
    grpc_init();
    run.path = grpc_slice_from_static_string(path);
    size_t n_ch = (size_t)o.connections;
    grpc_channel **chans = xcalloc(n_ch, sizeof(grpc_channel *));
    for (size_t i = 0; i < n_ch; i++)
        chans[i] = channel_open(o.target, (int)i);
    lg_thread *ths = xcalloc((size_t)o.threads, sizeof *ths);

    if (!channels_ready(chans, n_ch, o.connect_timeout_ms)) {
        (void)fprintf(stderr, "herald-loadgen: %s: not every connection got ready within %d ms\n",
                      o.target, o.connect_timeout_ms);
        rc = 1;
        goto out;
    }

    bool open = o.rate > 0;
    for (int i = 0; i < o.threads; i++) {
        lg_thread *th = &ths[i];
        th->id = i;
        th->run = &run;
        th->cq = grpc_completion_queue_create_for_next(NULL);
        lg_rng_seed(&th->rng, (uint64_t)i + 1);
        lg_hist_init(&th->hist);
        th->next_req = run.n_reqs > 0 ? (size_t)i % run.n_reqs : 0;
        for (size_t c = (size_t)i; c < n_ch; c += (size_t)o.threads)
            th->n_ch++;
        th->ch = xcalloc(th->n_ch ? th->n_ch : 1, sizeof(grpc_channel *));
        for (size_t c = (size_t)i, k = 0; c < n_ch; c += (size_t)o.threads)
            th->ch[k++] = chans[c];
        if (open) {
            int per = o.max_outstanding / o.threads;
            th->n_slots = (size_t)(per > 0 ? per : 1);
            th->interval_ns = (int64_t)((double)NS_PER_S * o.threads / o.rate);
            if (th->interval_ns < 1)
                th->interval_ns = 1;
        } else {
            th->n_slots = th->n_ch * (size_t)o.streams;
        }
        th->slots = xcalloc(th->n_slots, sizeof *th->slots);
        th->free_slots = xcalloc(th->n_slots, sizeof(lg_slot *));
        for (size_t k = 0; k < th->n_slots; k++) {
            lg_slot *s = &th->slots[k];
            s->th = th;
            s->details = grpc_empty_slice();
            if (th->n_ch > 0)
                s->ch = th->ch[open ? 0 : k / (size_t)o.streams];
            (void)snprintf(s->executor, sizeof s->executor, "loadgen-%s-%d-%zu", lg_run_id(), i, k);
            if (o.scenario == SCEN_LEASE)
                s->leases = xcalloc((size_t)o.lease_batch, sizeof *s->leases);
            th->free_slots[th->n_free++] = s;
        }
        if (o.scenario == SCEN_UNARY && run.n_reqs == 1 && lg_tmpl_static(run.reqs[0])) {
            size_t len = 0;
            const uint8_t *p = lg_tmpl_static_bytes(run.reqs[0], &len);
            th->static_req = grpc_slice_from_copied_buffer((const char *)p, len);
            th->have_static = true;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sig_run = &run;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    run.t_start = mono_ns();
    run.t_measure = run.t_start + (int64_t)(o.warmup_s * 1e9);
    run.t_end = run.t_measure + (int64_t)(o.duration_s * 1e9);
    for (int i = 0; i < o.threads; i++)
        pthread_create(&ths[i].tid, NULL, thread_main, &ths[i]);

    /* client CPU over the measured part */
    double cpu0 = 0;
    for (;;) {
        int64_t left = run.t_measure - mono_ns();
        if (left <= 0 || atomic_load(&run.stop))
            break;
        struct timespec ts = { .tv_sec = left / NS_PER_S, .tv_nsec = left % NS_PER_S };
        nanosleep(&ts, NULL);
    }
    cpu0 = cpu_seconds();
    for (int i = 0; i < o.threads; i++)
        pthread_join(ths[i].tid, NULL);
    double cpu1 = cpu_seconds();

    lg_totals t;
    memset(&t, 0, sizeof t);
    lg_hist_init(&t.hist);
    int64_t last = run.t_measure;
    for (int i = 0; i < o.threads; i++) {
        lg_thread *th = &ths[i];
        lg_hist_merge(&t.hist, &th->hist);
        for (int c = 0; c < LG_CODES; c++) {
            t.codes[c] += th->codes[c];
            if (t.first_err[c] == NULL)
                t.first_err[c] = th->first_err[c];
        }
        t.late_sends += th->late_sends;
        t.empty_claims += th->empty_claims;
        t.render_errors += th->render_errors;
        t.resp_bytes += th->resp_bytes;
        t.resp_msgs += th->resp_msgs;
        t.report_calls += th->report_calls;
        t.report_refused += th->report_refused;
        t.report_duplicates += th->report_duplicates;
        if (th->last_done_ns > last)
            last = th->last_done_ns;
        if (th->fatal != NULL) {
            (void)fprintf(stderr, "herald-loadgen: %s\n", th->fatal);
            rc = 1;
        }
    }
    t.calls = t.hist.count;
    t.ok = t.codes[0];
    t.elapsed_s = (double)(last - run.t_measure) / 1e9;
    t.cpu_s = cpu1 - cpu0;
    if (t.render_errors > 0)
        (void)fprintf(stderr, "herald-loadgen: %" PRIu64 " requests did not encode\n",
                      t.render_errors);
    report(&run, &t, path);

out:
    for (int i = 0; i < o.threads; i++) {
        lg_thread *th = &ths[i];
        if (th->cq != NULL) {
            grpc_completion_queue_shutdown(th->cq);
            while (grpc_completion_queue_next(th->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
                       .type != GRPC_QUEUE_SHUTDOWN) {
            }
            grpc_completion_queue_destroy(th->cq);
        }
        if (th->have_static)
            grpc_slice_unref(th->static_req);
        for (int c = 0; c < LG_CODES; c++)
            free(th->first_err[c]);
        free(th->fatal);
        for (size_t k = 0; th->slots != NULL && k < th->n_slots; k++)
            free(th->slots[k].leases);
        free(th->slots);
        free(th->free_slots);
        free(th->ch);
    }
    free(ths);
    for (size_t i = 0; i < n_ch; i++)
        grpc_channel_destroy(chans[i]);
    free(chans);
    grpc_shutdown_blocking();
out_nogrpc:
    for (size_t i = 0; i < run.n_reqs; i++)
        lg_tmpl_free(run.reqs[i]);
    free(run.reqs);
    free(path);
    return rc;
}
