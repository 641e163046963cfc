/* rpc.c - the gRPC runtime (see rpc.h): the only server file that includes
 * <grpc/grpc.h>. Facts about the C core it relies on are in
 * notes/grpc-c-core.md; P<n> below names a pitfall from there.
 *
 * Threads. Each pool thread owns one NEXT completion queue and arms, on it,
 * exactly one request per method of its pool, re-armed after the handler
 * returns (P10), plus generic requests that answer unknown methods at once
 * (P1). Every event of a call arrives on the queue its request was armed on,
 * so a call's handler and completions run on one thread; only detached calls
 * are touched from other threads, under the call's mutex.
 *
 * Call lifetime. An rpc_call is allocated when its request is armed and freed
 * when its reference count drops to zero. References: the armed request /
 * the dispatch on the pool thread (one, handed over), one per batch in
 * flight, and one held by the application while the call is detached,
 * dropped by its completion (done / rpc_call_finish).
 *
 * Two ways to answer. An inline unary call (the handler replied before
 * returning) ends with one batch: initial metadata, message, status and
 * RECV_CLOSE. Everything else ("stream mode": server streaming, detached
 * unary, client streaming, bidi) has its own RECV_CLOSE batch (P12), which is
 * the only cancellation signal, and a send queue with one batch in flight
 * (P3); the status leaves through the same queue.
 *
 * Shutdown. Before a queue is shut down its "gate" closes: a batch start or
 * an arm that does not get through the gate fails instead of touching a shut
 * down queue (which core asserts against). */
#include "rpc.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "log.h"
#include "util.h"

/* clang-format off */
const double rpc_latency_bounds[RPC_LATENCY_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};
/* clang-format on */

enum {
    GENERIC_PER_WORKER = 2,      /* armed catch-all requests per worker queue (P1) */
    GENERIC_PER_PRIORITY = 1,    /* and on the priority queue */
    REQUEST_ID_MAX = 128,        /* longest x-request-id we echo */
    ARENA_KEEP_BYTES = 64 << 10, /* reuse a call arena up to this size */
    DRAIN_PER_QUEUE = 16,        /* extra requests per method and queue at shutdown */
    TRAILERS_INLINE = 4,
};

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)
#define FREE_WAIT_MS 5000 /* rpc_server_free waits this long for detached calls */

/* Event tags: a pointer to c->tag[kind], which holds kind. */
enum { TAG_NEW = 0, TAG_SEND, TAG_RECV, TAG_CLOSE, TAG_COUNT };

typedef struct rpc_method {
    struct rpc_method *next;
    char *path;       /* "/pkg.Svc/Method" */
    char *service;    /* "pkg.Svc" */
    const char *name; /* "Method", inside path */
    rpc_kind kind;
    rpc_pool pool;
    ProtobufCService *svc; /* unary and server streaming; NULL otherwise */
    unsigned index;        /* method index in svc */
    bool has_stream;       /* sh is set (client streaming, bidi) */
    rpc_stream_handler sh;
    bool quiet;   /* OK calls logged at debug */
    void *handle; /* grpc_server_register_method */
    _Atomic uint64_t started;
    _Atomic uint64_t received;
    _Atomic uint64_t sent;
    _Atomic uint64_t handled[GRPC_CODE_COUNT];
    _Atomic uint64_t bucket[RPC_LATENCY_BUCKETS + 1];
    _Atomic uint64_t latency_ns;
} rpc_method;

/* One pool thread and its queue. Only spare is thread-private. */
typedef struct rpc_worker {
    rpc_server *srv;
    int index; /* 0..N-1; -1 for the priority thread */
    rpc_pool pool;
    grpc_completion_queue *cq;
    pthread_t thread;
    bool running;
    void *data;   /* worker_init's result */
    arena *spare; /* a reset arena for the next call; this thread only */
    /* The gate (see the top of the file): users inside, and closed. */
    atomic_int gate_users;
    atomic_bool gate_closed;
} rpc_worker;

typedef struct rpc_sendq {
    struct rpc_sendq *next;
    grpc_byte_buffer *bb;
} rpc_sendq;

typedef struct rpc_trailer {
    struct rpc_trailer *next;
    char *key;
    char *val;
    size_t len;
} rpc_trailer;

struct rpc_server {
    rpc_options opt; /* strings below are our copies */
    char *listen_addr;
    char *tls_cert;
    char *tls_key;
    char *tls_ca;
    /* tls_mu protects tls_cert, tls_key, tls_ca and the generations: a
     * reload (rpc_server_reload_tls) replaces the PEMs while core fetches
     * them at each handshake (tls_fetch). */
    pthread_mutex_t tls_mu;
    uint64_t tls_gen;     /* bumped by each reload */
    uint64_t tls_fetched; /* the generation core last took */
    grpc_server *server;
    grpc_completion_queue *shutdown_cq;
    rpc_method *methods; /* registration order, reversed */
    size_t n_methods;
    rpc_worker *workers; /* opt.workers of them */
    rpc_worker prio;
    bool has_prio;
    int port;
    bool started;
    /* lock protects the lifecycle flags below (not the hot path). */
    pthread_mutex_t lock;
    bool notify_sent; /* grpc_server_shutdown_and_notify called */
    bool stopped;     /* rpc_server_shutdown finished */
    atomic_bool shutting_down;
    atomic_bool cancelling;
    _Atomic int64_t inflight; /* dispatched calls not yet freed */
    atomic_int busy;
};

struct rpc_call {
    rpc_server *srv;
    rpc_method *m; /* NULL: an unknown method (generic request) */
    rpc_worker *w;
    grpc_call *call;
    uint8_t tag[TAG_COUNT];
    atomic_int refs;
    /* mu guards batch starts on call (not thread-safe per call) and every
     * field below that a detached call may touch from another thread. */
    pthread_mutex_t mu;

    /* Filled by core when the request completes. */
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    grpc_call_details details; /* generic requests only */
    char *generic_path;        /* gpr_malloc'd */

    int64_t start_ns;    /* gRPC monotonic */
    int64_t status_ns;   /* when the status batch was built */
    int64_t end_ns;      /* when RECV_CLOSE (or the final batch) completed */
    int64_t deadline_ns; /* effective (client or default) */
    bool client_deadline;
    bool dispatched;
    arena *arena;
    void *user;
    size_t request_bytes;
    grpc_slice request; /* the received bytes once decoded (request_kept) */
    bool request_kept;
    char *peer; /* lazily, gpr_malloc'd */
    char request_id[REQUEST_ID_MAX + 1];
    const char *principal; /* rpc_call_set_principal; borrowed, NULL = none */

    /* Status. */
    status st;
    int code;
    char *msg;
    bool status_set;
    rpc_trailer *trailers;
    rpc_field_violation *violations; /* strings owned */
    size_t n_violations;
    char *reason;
    char *domain;
    bool has_retry;
    int64_t retry_ms;

    /* State. */
    bool detached;
    bool completed;   /* the application's answer is in */
    bool stream_mode; /* own RECV_CLOSE batch and the send queue */
    bool close_started;
    bool transport_done; /* RECV_CLOSE (or the final batch) completed */
    bool send_inflight;
    bool send_failed;
    bool initial_md_sent;
    bool status_sent;
    bool done_called; /* on_done ran (or is running) */
    atomic_bool cancelled;
    int recv_cancelled; /* RECV_CLOSE_ON_SERVER out-parameter */
    rpc_done_fn on_done;
    void *on_done_user;

    rpc_sendq *q_head;
    rpc_sendq *q_tail;
    grpc_byte_buffer *send_bb;  /* in flight */
    grpc_byte_buffer *reply_bb; /* unary reply */
    grpc_byte_buffer *recv_bb;  /* RECV_MESSAGE target */

    /* Trailing metadata of the status batch, alive until the call is freed. */
    grpc_metadata *tmd;
    size_t n_tmd;
    grpc_metadata tmd_inline[TRAILERS_INLINE];
};

static _Thread_local rpc_worker *tl_worker;

/* ------------------------------------------------------------------ */
/* Pure helpers                                                        */

int rpc_code_log_level(int code)
{
    switch (code) {
    case GRPC_CODE_OK:
    case GRPC_CODE_CANCELLED:
    case GRPC_CODE_INVALID_ARGUMENT:
    case GRPC_CODE_NOT_FOUND:
    case GRPC_CODE_ALREADY_EXISTS:
    case GRPC_CODE_UNAUTHENTICATED:
        return LOG_INFO;
    case GRPC_CODE_DEADLINE_EXCEEDED:
    case GRPC_CODE_PERMISSION_DENIED:
    case GRPC_CODE_RESOURCE_EXHAUSTED:
    case GRPC_CODE_FAILED_PRECONDITION:
    case GRPC_CODE_ABORTED:
    case GRPC_CODE_OUT_OF_RANGE:
    case GRPC_CODE_UNAVAILABLE:
        return LOG_WARN;
    default: /* UNKNOWN, UNIMPLEMENTED, INTERNAL, DATA_LOSS and nonsense */
        return LOG_ERROR;
    }
}

int rpc_latency_bucket(double seconds)
{
    for (int i = 0; i < RPC_LATENCY_BUCKETS; i++)
        if (seconds <= rpc_latency_bounds[i])
            return i;
    return RPC_LATENCY_BUCKETS;
}

int64_t rpc_deadline_resolve_ns(int64_t client_deadline_ns, int64_t now_ns, int64_t default_ms)
{
    if (client_deadline_ns != INT64_MAX)
        return client_deadline_ns;
    if (default_ms <= 0 || default_ms > (INT64_MAX - now_ns) / NS_PER_MS)
        return INT64_MAX;
    return now_ns + default_ms * NS_PER_MS;
}

int64_t rpc_deadline_remaining_ms(int64_t deadline_ns, int64_t now_ns)
{
    if (deadline_ns == INT64_MAX)
        return INT64_MAX;
    int64_t d = deadline_ns - now_ns;
    /* Round toward minus infinity: 0.5 ms left is 0, not 1. */
    int64_t ms = d / NS_PER_MS;
    if (d < 0 && d % NS_PER_MS != 0)
        ms--;
    return ms;
}

static const char any_prefix[] = "type.googleapis.com/";

/* Packs m into a new Any (type URL and bytes malloc'd; free with any_fini). */
static void any_pack(Google__Protobuf__Any *any, const ProtobufCMessage *m)
{
    google__protobuf__any__init(any);
    any->type_url = xasprintf("%s%s", any_prefix, m->descriptor->name);
    size_t n = protobuf_c_message_get_packed_size(m);
    any->value.data = xmalloc(n);
    any->value.len = protobuf_c_message_pack(m, any->value.data);
}

static void any_fini(Google__Protobuf__Any *any)
{
    free(any->type_url);
    free(any->value.data);
}

uint8_t *rpc_status_details_encode(int grpc_code, const char *message, const rpc_error_details *d,
                                   size_t *len)
{
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    Google__Protobuf__Any anys[3];
    Google__Protobuf__Any *any_ptrs[3];
    size_t n_any = 0;

    st.code = grpc_code;
    st.message = (char *)(message ? message : "");

    if (d && d->n_violations > 0) {
        Google__Rpc__BadRequest br = GOOGLE__RPC__BAD_REQUEST__INIT;
        Google__Rpc__BadRequest__FieldViolation *fv = xcalloc(d->n_violations, sizeof *fv);
        Google__Rpc__BadRequest__FieldViolation **fvp = xcalloc(d->n_violations, sizeof *fvp);
        for (size_t i = 0; i < d->n_violations; i++) {
            google__rpc__bad_request__field_violation__init(&fv[i]);
            fv[i].field = (char *)(d->violations[i].field ? d->violations[i].field : "");
            fv[i].description =
                (char *)(d->violations[i].description ? d->violations[i].description : "");
            fvp[i] = &fv[i];
        }
        br.n_field_violations = d->n_violations;
        br.field_violations = fvp;
        any_pack(&anys[n_any], &br.base);
        any_ptrs[n_any] = &anys[n_any];
        n_any++;
        free(fvp);
        free(fv);
    }
    if (d && d->reason) {
        Google__Rpc__ErrorInfo ei = GOOGLE__RPC__ERROR_INFO__INIT;
        ei.reason = (char *)d->reason;
        ei.domain = (char *)(d->domain ? d->domain : "");
        any_pack(&anys[n_any], &ei.base);
        any_ptrs[n_any] = &anys[n_any];
        n_any++;
    }
    if (d && d->has_retry && d->retry_delay_ms >= 0) {
        Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
        Google__Protobuf__Duration dur = GOOGLE__PROTOBUF__DURATION__INIT;
        dur.seconds = d->retry_delay_ms / 1000;
        dur.nanos = (int32_t)(d->retry_delay_ms % 1000) * 1000000;
        ri.retry_delay = &dur;
        any_pack(&anys[n_any], &ri.base);
        any_ptrs[n_any] = &anys[n_any];
        n_any++;
    }
    st.n_details = n_any;
    st.details = n_any ? any_ptrs : NULL;

    size_t n = google__rpc__status__get_packed_size(&st);
    uint8_t *out = xmalloc(n);
    *len = google__rpc__status__pack(&st, out);
    for (size_t i = 0; i < n_any; i++)
        any_fini(&anys[i]);
    return out;
}

const char *rpc_kind_name(rpc_kind k)
{
    switch (k) {
    case RPC_UNARY:
        return "unary";
    case RPC_CLIENT_STREAM:
        return "client_stream";
    case RPC_SERVER_STREAM:
        return "server_stream";
    case RPC_BIDI_STREAM:
        return "bidi_stream";
    }
    return "unknown";
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static int64_t ts_to_ns(gpr_timespec ts)
{
    if (ts.tv_sec >= INT64_MAX / NS_PER_S - 1)
        return INT64_MAX;
    return ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int64_t grpc_now_ns(void)
{
    return ts_to_ns(gpr_now(GPR_CLOCK_MONOTONIC));
}

static status code_to_status(int code)
{
    switch (code) {
    case GRPC_CODE_OK:
        return ST_OK;
    case GRPC_CODE_CANCELLED:
        return ST_CANCELLED;
    case GRPC_CODE_INVALID_ARGUMENT:
    case GRPC_CODE_OUT_OF_RANGE:
        return ST_INVALID;
    case GRPC_CODE_DEADLINE_EXCEEDED:
        return ST_TIMEOUT;
    case GRPC_CODE_NOT_FOUND:
        return ST_NOT_FOUND;
    case GRPC_CODE_ALREADY_EXISTS:
        return ST_ALREADY_EXISTS;
    case GRPC_CODE_PERMISSION_DENIED:
        return ST_PERMISSION_DENIED;
    case GRPC_CODE_RESOURCE_EXHAUSTED:
        return ST_EXHAUSTED;
    case GRPC_CODE_FAILED_PRECONDITION:
        return ST_FAILED_PRECONDITION;
    case GRPC_CODE_ABORTED:
        return ST_CONFLICT;
    case GRPC_CODE_UNIMPLEMENTED:
        return ST_UNIMPLEMENTED;
    case GRPC_CODE_UNAVAILABLE:
        return ST_UNAVAILABLE;
    case GRPC_CODE_UNAUTHENTICATED:
        return ST_UNAUTHENTICATED;
    default:
        return ST_INTERNAL;
    }
}

static bool slice_eq(grpc_slice s, const char *str, size_t len)
{
    return GRPC_SLICE_LENGTH(s) == len && memcmp(GRPC_SLICE_START_PTR(s), str, len) == 0;
}

static const grpc_metadata *md_find(const grpc_metadata_array *md, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < md->count; i++)
        if (slice_eq(md->metadata[i].key, key, klen))
            return &md->metadata[i];
    return NULL;
}

/* A per-thread xorshift generator for request ids: no syscall per call. */
static uint64_t rand_next(void)
{
    static _Thread_local uint64_t s[2];
    if (s[0] == 0 && s[1] == 0) {
        if (getrandom(s, sizeof s, 0) != (ssize_t)sizeof s || (s[0] == 0 && s[1] == 0)) {
            s[0] = (uint64_t)now_mono_us() ^ (uint64_t)(uintptr_t)&s;
            s[1] = (uint64_t)now_real_ms() * 0x9E3779B97F4A7C15u + 1;
        }
    }
    uint64_t x = s[0];
    uint64_t const y = s[1];
    s[0] = y;
    x ^= x << 23;
    s[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
    return s[1] + y;
}

/* A random UUIDv4 string into out (>= 37 bytes). */
static void uuid_v4(char *out)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t a = rand_next();
    uint64_t b = rand_next();
    unsigned char bytes[16];
    memcpy(bytes, &a, 8);
    memcpy(bytes + 8, &b, 8);
    bytes[6] = (unsigned char)((bytes[6] & 0x0f) | 0x40);
    bytes[8] = (unsigned char)((bytes[8] & 0x3f) | 0x80);
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[bytes[i] >> 4];
        out[o++] = hex[bytes[i] & 15];
    }
    out[o] = '\0';
}

/* The client's x-request-id when it is 1..128 printable ASCII bytes. */
static void call_set_request_id(rpc_call *c)
{
    const grpc_metadata *md = md_find(&c->md, "x-request-id");
    if (md) {
        size_t n = GRPC_SLICE_LENGTH(md->value);
        const unsigned char *p = GRPC_SLICE_START_PTR(md->value);
        bool ok = n > 0 && n <= REQUEST_ID_MAX;
        for (size_t i = 0; ok && i < n; i++)
            ok = p[i] >= 0x20 && p[i] < 0x7f;
        if (ok) {
            memcpy(c->request_id, p, n);
            c->request_id[n] = '\0';
            return;
        }
    }
    uuid_v4(c->request_id);
}

/* ------------------------------------------------------------------ */
/* The gate, arenas, references                                        */

static bool gate_enter(rpc_worker *w)
{
    atomic_fetch_add(&w->gate_users, 1);
    if (atomic_load(&w->gate_closed)) {
        atomic_fetch_sub(&w->gate_users, 1);
        return false;
    }
    return true;
}

static void gate_exit(rpc_worker *w)
{
    atomic_fetch_sub(&w->gate_users, 1);
}

static void gate_close(rpc_worker *w)
{
    atomic_store(&w->gate_closed, true);
    /* Users are inside grpc_call_start_batch or a request call: short. */
    while (atomic_load(&w->gate_users) > 0)
        sched_yield();
}

/* Starts a batch through the gate; the caller holds c->mu and has counted
 * the batch's reference. False when it could not start (nothing happened). */
static bool call_start_batch(rpc_call *c, const grpc_op *ops, size_t n, int tag)
{
    if (!gate_enter(c->w))
        return false;
    grpc_call_error rc = grpc_call_start_batch(c->call, ops, n, &c->tag[tag], NULL);
    gate_exit(c->w);
    if (rc != GRPC_CALL_OK) {
        log_error("grpc_call_start_batch failed (%d) on %s", (int)rc,
                  c->m ? c->m->path : "generic call");
        return false;
    }
    return true;
}

static arena *worker_take_arena(rpc_worker *w)
{
    arena *a = w->spare;
    if (a && tl_worker == w) {
        w->spare = NULL;
        return a;
    }
    return arena_new(w->srv->opt.call_arena_bytes);
}

static void worker_return_arena(rpc_worker *w, arena *a)
{
    if (!a)
        return;
    if (tl_worker == w && !w->spare && arena_used(a) <= ARENA_KEEP_BYTES) {
        arena_reset(a);
        w->spare = a;
        return;
    }
    arena_free(a);
}

static void call_record(rpc_call *c);

static void call_free(rpc_call *c)
{
    rpc_server *s = c->srv;
    if (c->dispatched)
        call_record(c);
    if (c->call)
        grpc_call_unref(c->call);
    grpc_metadata_array_destroy(&c->md);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->request_kept)
        grpc_slice_unref(c->request);
    if (!c->m)
        grpc_call_details_destroy(&c->details);
    gpr_free(c->generic_path);
    gpr_free(c->peer);
    while (c->q_head) {
        rpc_sendq *q = c->q_head;
        c->q_head = q->next;
        grpc_byte_buffer_destroy(q->bb);
        free(q);
    }
    if (c->send_bb)
        grpc_byte_buffer_destroy(c->send_bb);
    if (c->reply_bb)
        grpc_byte_buffer_destroy(c->reply_bb);
    if (c->recv_bb)
        grpc_byte_buffer_destroy(c->recv_bb);
    for (size_t i = 0; i < c->n_tmd; i++) {
        grpc_slice_unref(c->tmd[i].key);
        grpc_slice_unref(c->tmd[i].value);
    }
    if (c->tmd != c->tmd_inline)
        free(c->tmd);
    while (c->trailers) {
        rpc_trailer *t = c->trailers;
        c->trailers = t->next;
        free(t->key);
        free(t->val);
        free(t);
    }
    for (size_t i = 0; i < c->n_violations; i++) {
        free((char *)c->violations[i].field);
        free((char *)c->violations[i].description);
    }
    free(c->violations);
    free(c->reason);
    free(c->domain);
    free(c->msg);
    worker_return_arena(c->w, c->arena);
    pthread_mutex_destroy(&c->mu);
    bool dispatched = c->dispatched;
    free(c);
    if (dispatched)
        atomic_fetch_sub(&s->inflight, 1);
}

static void call_ref(rpc_call *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

static void call_unref(rpc_call *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        call_free(c);
}

/* ------------------------------------------------------------------ */
/* Arming requests                                                     */

/* Arms one request for m (NULL: a generic one) on w's queue; during_drain
 * arms even though the server is shutting down (server_drain_pending). */
static void call_arm_on(rpc_worker *w, rpc_method *m, bool during_drain)
{
    rpc_server *s = w->srv;
    rpc_call *c = xcalloc(1, sizeof *c);
    c->srv = s;
    c->m = m;
    c->w = w;
    for (int i = 0; i < TAG_COUNT; i++)
        c->tag[i] = (uint8_t)i;
    atomic_init(&c->refs, 1);
    atomic_init(&c->cancelled, false);
    pthread_mutex_init(&c->mu, NULL);
    c->tmd = c->tmd_inline;
    grpc_metadata_array_init(&c->md);
    if (!m)
        grpc_call_details_init(&c->details);

    grpc_call_error rc = GRPC_CALL_ERROR;
    if ((!during_drain && atomic_load(&s->shutting_down)) || !gate_enter(w))
        goto out;
    if (m) {
        bool with_payload = m->kind == RPC_UNARY || m->kind == RPC_SERVER_STREAM;
        rc = grpc_server_request_registered_call(s->server, m->handle, &c->call, &c->deadline,
                                                 &c->md, with_payload ? &c->payload : NULL, w->cq,
                                                 w->cq, &c->tag[TAG_NEW]);
    } else {
        rc = grpc_server_request_call(s->server, &c->call, &c->details, &c->md, w->cq, w->cq,
                                      &c->tag[TAG_NEW]);
    }
    gate_exit(w);
    if (rc != GRPC_CALL_OK) /* P2: a silent mismatch would never deliver a call */
        log_error("cannot arm a request for %s: grpc_call_error %d", m ? m->path : "generic",
                  (int)rc);
out:
    if (rc != GRPC_CALL_OK)
        call_free(c);
}

static void call_arm(rpc_worker *w, rpc_method *m)
{
    call_arm_on(w, m, false);
}

/* ------------------------------------------------------------------ */
/* Building and sending the status                                     */

static void tmd_add(rpc_call *c, grpc_slice key, grpc_slice val)
{
    if (c->n_tmd == TRAILERS_INLINE && c->tmd == c->tmd_inline) {
        grpc_metadata *t = xcalloc(TRAILERS_INLINE * 2, sizeof *t);
        memcpy(t, c->tmd_inline, sizeof c->tmd_inline);
        c->tmd = t;
    } else if (c->n_tmd >= TRAILERS_INLINE && (c->n_tmd & (c->n_tmd - 1)) == 0) {
        c->tmd = xrealloc(c->tmd, c->n_tmd * 2 * sizeof *c->tmd);
    }
    memset(&c->tmd[c->n_tmd], 0, sizeof c->tmd[0]);
    c->tmd[c->n_tmd].key = key;
    c->tmd[c->n_tmd].value = val;
    c->n_tmd++;
}

/* Fills op with SEND_STATUS_FROM_SERVER; *details is a slice the caller
 * unrefs right after starting the batch (core copies it). Holds c->mu. */
static void status_op_build(rpc_call *c, grpc_op *op, grpc_slice *details)
{
    /* Keys are static literals or copied; values always copied: HPACK may
     * keep what it is given beyond the call. */
    tmd_add(c, grpc_slice_from_static_string("x-request-id"),
            grpc_slice_from_copied_string(c->request_id));
    for (rpc_trailer *t = c->trailers; t; t = t->next)
        tmd_add(c, grpc_slice_from_copied_string(t->key),
                grpc_slice_from_copied_buffer(t->val, t->len));
    if (c->code != GRPC_CODE_OK) {
        rpc_error_details d = {
            .violations = c->violations,
            .n_violations = c->n_violations,
            .reason = c->reason,
            .domain = c->domain,
            .has_retry = c->has_retry,
            .retry_delay_ms = c->retry_ms,
        };
        size_t n = 0;
        uint8_t *bin = rpc_status_details_encode(c->code, c->msg, &d, &n);
        tmd_add(c, grpc_slice_from_static_string("grpc-status-details-bin"),
                grpc_slice_from_copied_buffer((const char *)bin, n));
        free(bin);
        if (c->has_retry) {
            char v[24];
            snprintf(v, sizeof v, "%" PRId64, c->retry_ms);
            tmd_add(c, grpc_slice_from_static_string("grpc-retry-pushback-ms"),
                    grpc_slice_from_copied_string(v));
        }
    }
    *details = c->msg && c->msg[0] ? grpc_slice_from_copied_string(c->msg) : grpc_empty_slice();
    memset(op, 0, sizeof *op);
    op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op->data.send_status_from_server.status = (grpc_status_code)c->code;
    op->data.send_status_from_server.status_details = details;
    op->data.send_status_from_server.trailing_metadata_count = c->n_tmd;
    op->data.send_status_from_server.trailing_metadata = c->tmd;
    c->status_sent = true;
    c->status_ns = grpc_now_ns();
}

/* The status of a completed call before it is sent: an OK unary call must
 * carry a reply. Holds c->mu. */
static void status_finalise(rpc_call *c)
{
    if (c->code == GRPC_CODE_OK && c->m && c->m->kind != RPC_SERVER_STREAM &&
        c->m->kind != RPC_BIDI_STREAM && !c->reply_bb && !c->m->has_stream) {
        c->st = ST_INTERNAL;
        c->code = GRPC_CODE_INTERNAL;
        free(c->msg);
        c->msg = xstrdup("handler sent no reply");
    }
    if (c->code != GRPC_CODE_OK && c->reply_bb) {
        grpc_byte_buffer_destroy(c->reply_bb); /* a non-OK status drops the reply */
        c->reply_bb = NULL;
    }
}

/* The one final batch of an inline unary or a runtime answer (errors before
 * any handler ran, unknown methods): initial metadata, the reply (OK only),
 * the status and RECV_CLOSE. Holds c->mu. */
static void call_send_final(rpc_call *c)
{
    grpc_op ops[4];
    grpc_slice details;
    size_t n = 0;

    status_finalise(c);
    memset(ops, 0, sizeof ops);
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    c->initial_md_sent = true;
    if (c->reply_bb) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = c->reply_bb;
        n++;
    }
    status_op_build(c, &ops[n++], &details);
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &c->recv_cancelled;
    n++;
    c->close_started = true;
    call_ref(c);
    if (!call_start_batch(c, ops, n, TAG_CLOSE)) {
        c->transport_done = true;
        atomic_store(&c->cancelled, true);
        atomic_fetch_sub(&c->refs, 1); /* the dispatch reference is still held */
    }
    grpc_slice_unref(details);
}

/* Stream mode: starts the next send batch if none is in flight. Holds c->mu. */
static void call_pump(rpc_call *c)
{
    if (c->send_inflight || !c->stream_mode || c->status_sent)
        return;
    if (c->transport_done || c->send_failed)
        return;
    grpc_op ops[3];
    grpc_slice details = grpc_empty_slice();
    bool with_status = false;
    size_t n = 0;

    memset(ops, 0, sizeof ops);
    rpc_sendq *q = c->q_head;
    if (!q && !c->completed)
        return;
    if (!c->initial_md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->initial_md_sent = true;
    }
    if (q) {
        c->q_head = q->next;
        if (!c->q_head)
            c->q_tail = NULL;
        c->send_bb = q->bb;
        free(q);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = c->send_bb;
        n++;
    }
    if (c->completed && !c->q_head) {
        status_op_build(c, &ops[n++], &details);
        with_status = true;
    }
    c->send_inflight = true;
    call_ref(c);
    if (!call_start_batch(c, ops, n, TAG_SEND)) {
        c->send_inflight = false;
        c->send_failed = true;
        atomic_store(&c->cancelled, true);
        atomic_fetch_sub(&c->refs, 1); /* never the last: the caller holds one */
    }
    if (with_status)
        grpc_slice_unref(details);
}

static void call_start_close_locked(rpc_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->recv_cancelled;
    c->stream_mode = true;
    call_ref(c);
    if (call_start_batch(c, &op, 1, TAG_CLOSE)) {
        c->close_started = true;
    } else {
        c->transport_done = true;
        atomic_store(&c->cancelled, true);
        atomic_fetch_sub(&c->refs, 1);
    }
}

static void call_start_recv_locked(rpc_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv_bb;
    call_ref(c);
    if (!call_start_batch(c, &op, 1, TAG_RECV))
        atomic_fetch_sub(&c->refs, 1);
}

/* The application's reference of a detached call: on_done first if the
 * RECV_CLOSE batch never started (so it is called exactly once). */
static void call_app_release(rpc_call *c)
{
    pthread_mutex_lock(&c->mu);
    rpc_done_fn fn = NULL;
    if (!c->close_started && !c->done_called) {
        c->done_called = true;
        fn = c->on_done;
    }
    pthread_mutex_unlock(&c->mu);
    if (fn)
        fn(c, true, c->on_done_user);
    call_unref(c);
}

/* Completes the call with its current status. Holds c->mu; returns true
 * when the caller must release the application's reference afterwards. */
static bool call_complete_locked(rpc_call *c)
{
    if (c->completed)
        return false;
    c->completed = true;
    if (c->stream_mode) {
        status_finalise(c);
        if (c->reply_bb) { /* detached unary: the reply goes first */
            rpc_sendq *q = xmalloc(sizeof *q);
            q->next = NULL;
            q->bb = c->reply_bb;
            c->reply_bb = NULL;
            if (c->q_tail)
                c->q_tail->next = q;
            else
                c->q_head = q;
            c->q_tail = q;
        }
        call_pump(c);
    }
    return c->detached;
}

static void call_set_code_locked(rpc_call *c, status st, int code, char *msg)
{
    if (c->status_sent) {
        free(msg);
        return;
    }
    c->st = st;
    c->code = code;
    free(c->msg);
    c->msg = msg;
    c->status_set = true;
}

/* rpc_call_finish / rpc_call_fail / finish_code: msg is handed over. */
static void call_finish(rpc_call *c, status st, int code, char *msg)
{
    pthread_mutex_lock(&c->mu);
    if (c->completed) {
        pthread_mutex_unlock(&c->mu);
        free(msg);
        return;
    }
    call_set_code_locked(c, st, code, msg);
    bool release = call_complete_locked(c);
    pthread_mutex_unlock(&c->mu);
    if (release)
        call_app_release(c);
}

/* ------------------------------------------------------------------ */
/* Serialising messages                                                */

static grpc_byte_buffer *bb_from_bytes(const void *data, size_t len)
{
    /* an empty message is valid (all fields default); data may then be NULL */
    grpc_slice sl = len > 0 ? grpc_slice_from_copied_buffer(data, len) : grpc_empty_slice();
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl); /* P5: the buffer took its own reference */
    return bb;
}

static grpc_byte_buffer *bb_from_message(const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    grpc_slice sl = grpc_slice_malloc(n);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(sl));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    return bb;
}

/* The bytes of bb (decompressed) as one slice the caller unrefs: a new
 * reference to the only slice when there is one (P15: no copy), else all of
 * them merged. False when bb cannot be read. */
static bool bb_slice(grpc_byte_buffer *bb, grpc_slice *out)
{
    grpc_byte_buffer_reader rd;
    if (!grpc_byte_buffer_reader_init(&rd, bb))
        return false;
    grpc_slice *first = NULL;
    grpc_slice *second = NULL;
    if (!grpc_byte_buffer_reader_peek(&rd, &first)) {
        *out = grpc_empty_slice(); /* an empty message */
    } else if (!grpc_byte_buffer_reader_peek(&rd, &second)) {
        *out = grpc_slice_ref(*first); /* outlives the reader */
    } else {
        grpc_byte_buffer_reader_destroy(&rd);
        if (!grpc_byte_buffer_reader_init(&rd, bb))
            return false;
        *out = grpc_byte_buffer_reader_readall(&rd);
    }
    grpc_byte_buffer_reader_destroy(&rd);
    return true;
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */

static void call_closure(const ProtobufCMessage *msg, void *closure_data);

/* Interceptor, NULL slot, decoding: false (with the status set) when the
 * call fails before its handler. */
static bool call_prepare(rpc_call *c, ProtobufCMessage **req)
{
    rpc_server *s = c->srv;
    rpc_method *m = c->m;

    if (s->opt.interceptor) {
        status st = s->opt.interceptor(c, s->opt.user);
        if (st != ST_OK) {
            pthread_mutex_lock(&c->mu);
            if (!c->status_set || c->code == GRPC_CODE_OK)
                call_set_code_locked(c, st, status_to_grpc(st), xstrdup("request rejected"));
            pthread_mutex_unlock(&c->mu);
            return false;
        }
    }
    bool missing = m->has_stream ? false : m->svc == NULL;
    if (!missing && m->svc) {
        typedef void (*slot_fn)(void);
        const slot_fn *slots = (const slot_fn *)(m->svc + 1);
        missing = slots[m->index] == NULL;
    }
    if (missing) {
        pthread_mutex_lock(&c->mu);
        call_set_code_locked(c, ST_UNIMPLEMENTED, GRPC_CODE_UNIMPLEMENTED,
                             xasprintf("%s.%s is not implemented yet", m->service, m->name));
        pthread_mutex_unlock(&c->mu);
        return false;
    }
    if (!req)
        return true;

    *req = NULL;
    const char *why = NULL;
    int code = GRPC_CODE_INTERNAL;
    if (!c->payload) {
        why = "missing request message";
    } else {
        grpc_slice sl;
        bool readable = bb_slice(c->payload, &sl);
        grpc_byte_buffer_destroy(c->payload);
        c->payload = NULL;
        if (readable) {
            c->request_bytes = GRPC_SLICE_LENGTH(sl);
            *req = protobuf_c_message_unpack(m->svc->descriptor->methods[m->index].input,
                                             arena_allocator(c->arena), GRPC_SLICE_LENGTH(sl),
                                             GRPC_SLICE_START_PTR(sl));
            /* Kept for rpc_call_request_data: protobuf-c hides what handlers
             * must check (a NUL cuts a string short). */
            c->request = sl;
            c->request_kept = true;
        }
        if (!*req) {
            if (readable && arena_exhausted(c->arena)) {
                why = "request too large to decode";
                code = GRPC_CODE_RESOURCE_EXHAUSTED;
            } else {
                why = "cannot parse request";
            }
        }
    }
    if (why) {
        pthread_mutex_lock(&c->mu);
        call_set_code_locked(c, code_to_status(code), code, xstrdup(why));
        pthread_mutex_unlock(&c->mu);
        return false;
    }
    return true;
}

static void call_run_handler(rpc_call *c, ProtobufCMessage *req)
{
    bool counted = c->w->index >= 0;
    if (counted)
        atomic_fetch_add_explicit(&c->srv->busy, 1, memory_order_relaxed);
    c->m->svc->invoke(c->m->svc, c->m->index, req, call_closure, c);
    if (counted)
        atomic_fetch_sub_explicit(&c->srv->busy, 1, memory_order_relaxed);
}

static void dispatch_unary(rpc_call *c)
{
    ProtobufCMessage *req = NULL;
    if (call_prepare(c, &req))
        call_run_handler(c, req);
    pthread_mutex_lock(&c->mu);
    if (!c->detached && !c->completed) {
        if (!c->status_set) /* returned without replying or failing */
            call_set_code_locked(c, ST_INTERNAL, GRPC_CODE_INTERNAL,
                                 xstrdup("handler sent no reply"));
        c->completed = true;
    }
    if (!c->stream_mode && !c->close_started)
        call_send_final(c);
    pthread_mutex_unlock(&c->mu);
}

static void dispatch_server_stream(rpc_call *c)
{
    ProtobufCMessage *req = NULL;
    if (!call_prepare(c, &req)) {
        pthread_mutex_lock(&c->mu);
        c->completed = true;
        call_send_final(c);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    pthread_mutex_lock(&c->mu);
    call_start_close_locked(c);
    pthread_mutex_unlock(&c->mu);
    call_run_handler(c, req);
    /* Returning ends the stream (OK unless a status was set) unless the
     * handler detached. */
    pthread_mutex_lock(&c->mu);
    bool release = false;
    if (!c->detached)
        release = call_complete_locked(c);
    pthread_mutex_unlock(&c->mu);
    if (release)
        call_app_release(c);
}

static void stream_on_done(rpc_call *c, bool cancelled, void *user)
{
    (void)user;
    if (c->m->sh.on_done)
        c->m->sh.on_done(c, cancelled, c->m->sh.user);
}

static void dispatch_stream_handler(rpc_call *c)
{
    rpc_method *m = c->m;
    if (!call_prepare(c, NULL)) {
        pthread_mutex_lock(&c->mu);
        c->completed = true;
        call_send_final(c);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->detached = true;
    c->on_done = stream_on_done;
    call_ref(c); /* the application's, until rpc_call_finish */
    call_start_close_locked(c);
    pthread_mutex_unlock(&c->mu);
    if (m->sh.on_open)
        m->sh.on_open(c, m->sh.user);
    pthread_mutex_lock(&c->mu);
    if (!c->completed && !c->transport_done)
        call_start_recv_locked(c);
    pthread_mutex_unlock(&c->mu);
}

static void dispatch_generic(rpc_call *c)
{
    rpc_server *s = c->srv;
    c->generic_path = grpc_slice_to_c_string(c->details.method);
    const char *path = c->generic_path;
    /* "unknown service" when no method of that service is registered. */
    const char *slash = path[0] == '/' ? strchr(path + 1, '/') : NULL;
    bool known_service = false;
    if (slash) {
        size_t n = (size_t)(slash - path - 1);
        for (rpc_method *m = s->methods; m && !known_service; m = m->next)
            known_service = strlen(m->service) == n && memcmp(m->service, path + 1, n) == 0;
    }
    char *msg;
    if (known_service)
        msg = xasprintf("unknown method %s for service %.*s", slash + 1, (int)(slash - path - 1),
                        path + 1);
    else if (slash)
        msg = xasprintf("unknown service %.*s", (int)(slash - path - 1), path + 1);
    else
        msg = xasprintf("unknown method %s", path);
    pthread_mutex_lock(&c->mu);
    call_set_code_locked(c, ST_UNIMPLEMENTED, GRPC_CODE_UNIMPLEMENTED, msg);
    c->completed = true;
    call_send_final(c);
    pthread_mutex_unlock(&c->mu);
}

static void on_new(rpc_call *c, bool ok)
{
    rpc_worker *w = c->w;
    rpc_server *s = c->srv;
    rpc_method *m = c->m;

    if (!ok) { /* shutdown: the armed request is cancelled; no re-arm */
        call_unref(c);
        return;
    }
    c->dispatched = true;
    atomic_fetch_add(&s->inflight, 1);
    c->start_ns = grpc_now_ns();
    gpr_timespec dl = m ? c->deadline : c->details.deadline;
    int64_t client_ns = ts_to_ns(gpr_convert_clock_type(dl, GPR_CLOCK_MONOTONIC)); /* P8 */
    c->client_deadline = client_ns != INT64_MAX;
    c->deadline_ns = rpc_deadline_resolve_ns(client_ns, c->start_ns, s->opt.default_deadline_ms);
    call_set_request_id(c);
    /* Core forgets the peer of a cancelled call: take it now when the
     * access log will likely want it (quiet methods fetch it lazily). */
    if (s->opt.access_log && (!m || !m->quiet))
        c->peer = grpc_call_get_peer(c->call);

    if (!m) {
        dispatch_generic(c);
        call_unref(c);
        call_arm(w, NULL);
        return;
    }
    c->arena = worker_take_arena(w);
    atomic_fetch_add_explicit(&m->started, 1, memory_order_relaxed);
    if (c->payload)
        atomic_fetch_add_explicit(&m->received, 1, memory_order_relaxed);
    switch (m->kind) {
    case RPC_UNARY:
        dispatch_unary(c);
        break;
    case RPC_SERVER_STREAM:
        dispatch_server_stream(c);
        break;
    case RPC_CLIENT_STREAM:
    case RPC_BIDI_STREAM:
        dispatch_stream_handler(c);
        break;
    }
    call_unref(c);  /* the dispatch reference */
    call_arm(w, m); /* after the handler returned (P10) */
}

static void on_send(rpc_call *c, bool ok)
{
    pthread_mutex_lock(&c->mu);
    c->send_inflight = false;
    if (c->send_bb) {
        grpc_byte_buffer_destroy(c->send_bb);
        c->send_bb = NULL;
        if (ok)
            atomic_fetch_add_explicit(&c->m->sent, 1, memory_order_relaxed);
    }
    if (!ok) {
        c->send_failed = true;
        atomic_store(&c->cancelled, true);
    }
    call_pump(c);
    pthread_mutex_unlock(&c->mu);
    call_unref(c);
}

static void on_recv(rpc_call *c, bool ok)
{
    pthread_mutex_lock(&c->mu);
    grpc_byte_buffer *bb = c->recv_bb;
    c->recv_bb = NULL;
    bool quiet = c->done_called || c->completed;
    pthread_mutex_unlock(&c->mu);

    if (ok && bb) {
        atomic_fetch_add_explicit(&c->m->received, 1, memory_order_relaxed);
        grpc_slice sl;
        if (!quiet && bb_slice(bb, &sl)) {
            c->m->sh.on_message(c, GRPC_SLICE_START_PTR(sl), GRPC_SLICE_LENGTH(sl), c->m->sh.user);
            grpc_slice_unref(sl);
        }
        grpc_byte_buffer_destroy(bb);
        pthread_mutex_lock(&c->mu);
        if (!c->completed && !c->transport_done && !c->done_called)
            call_start_recv_locked(c);
        pthread_mutex_unlock(&c->mu);
    } else if (ok && !quiet && c->m->sh.on_half_close) {
        c->m->sh.on_half_close(c, c->m->sh.user);
    } else if (bb) {
        grpc_byte_buffer_destroy(bb);
    }
    call_unref(c);
}

static void on_close(rpc_call *c, bool ok)
{
    pthread_mutex_lock(&c->mu);
    c->transport_done = true;
    c->end_ns = grpc_now_ns();
    bool cancelled = !ok || c->recv_cancelled != 0;
    if (cancelled)
        atomic_store(&c->cancelled, true);
    if (!c->stream_mode && c->reply_bb && ok && !cancelled)
        atomic_fetch_add_explicit(&c->m->sent, 1, memory_order_relaxed);
    rpc_done_fn fn = NULL;
    if (c->detached && !c->done_called) {
        c->done_called = true;
        fn = c->on_done;
    }
    pthread_mutex_unlock(&c->mu);
    if (fn)
        fn(c, cancelled, c->on_done_user);
    call_unref(c);
}

/* ------------------------------------------------------------------ */
/* Access log and statistics                                           */

static int call_final_code(const rpc_call *c)
{
    /* What the client saw: our status, or what ended the call before it. A
     * status sent once the client's deadline had passed races core's own
     * deadline timer; the client (whose copy of the deadline is never later
     * than ours) saw DEADLINE_EXCEEDED either way. */
    if (c->status_sent && !atomic_load(&c->cancelled)) {
        if (c->client_deadline && c->status_ns >= c->deadline_ns)
            return GRPC_CODE_DEADLINE_EXCEEDED;
        return c->code;
    }
    if (c->client_deadline) {
        /* The client cancels at its own deadline, which it computed a
         * moment before we did: a cancellation that close to ours is the
         * deadline (slack: 5% of the timeout, 2..50 ms). */
        int64_t slack = (c->deadline_ns - c->start_ns) / 20;
        slack = slack < 2 * NS_PER_MS    ? 2 * NS_PER_MS
                : slack > 50 * NS_PER_MS ? 50 * NS_PER_MS
                                         : slack;
        int64_t end = c->end_ns ? c->end_ns : grpc_now_ns();
        if (end >= c->deadline_ns - slack)
            return GRPC_CODE_DEADLINE_EXCEEDED;
    }
    if (atomic_load(&c->srv->cancelling))
        return GRPC_CODE_UNAVAILABLE;
    return GRPC_CODE_CANCELLED;
}

static const char *peer_strip(const char *p)
{
    if (strncmp(p, "ipv4:", 5) == 0 || strncmp(p, "ipv6:", 5) == 0)
        return p + 5;
    return p;
}

static void call_record(rpc_call *c)
{
    rpc_server *s = c->srv;
    rpc_method *m = c->m;
    int code = call_final_code(c);
    int64_t dur_ns = grpc_now_ns() - c->start_ns;
    if (dur_ns < 0)
        dur_ns = 0;
    if (code < 0 || code >= GRPC_CODE_COUNT)
        code = GRPC_CODE_UNKNOWN;

    if (m) {
        atomic_fetch_add_explicit(&m->handled[code], 1, memory_order_relaxed);
        int b = rpc_latency_bucket((double)dur_ns / 1e9);
        atomic_fetch_add_explicit(&m->bucket[b], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&m->latency_ns, (uint64_t)dur_ns, memory_order_relaxed);
    }
    if (!s->opt.access_log)
        return;
    int level = rpc_code_log_level(code);
    if (code == GRPC_CODE_OK && m && m->quiet)
        level = LOG_DEBUG;
    if (level < atomic_load(&log_level))
        return;

    char time_ms[32];
    char start[32];
    char deadline[32];
    char worker[16];
    char trace_id[33] = "";
    int64_t now_real = now_real_ms();
    snprintf(time_ms, sizeof time_ms, "%.3f", (double)dur_ns / 1e6);
    fmt_rfc3339_ms(now_real - dur_ns / NS_PER_MS, start, sizeof start);
    if (c->client_deadline)
        fmt_rfc3339_ms(now_real + rpc_deadline_remaining_ms(c->deadline_ns, grpc_now_ns()),
                       deadline, sizeof deadline);
    snprintf(worker, sizeof worker, "%d", c->w->index);
    const grpc_metadata *tp = md_find(&c->md, "traceparent");
    if (tp && GRPC_SLICE_LENGTH(tp->value) >= 35 && GRPC_SLICE_START_PTR(tp->value)[2] == '-') {
        const char *p = (const char *)GRPC_SLICE_START_PTR(tp->value) + 3;
        bool hex = true;
        for (int i = 0; i < 32 && hex; i++)
            hex = (p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f');
        if (hex) {
            memcpy(trace_id, p, 32);
            trace_id[32] = '\0';
        }
    }
    const char *peer = rpc_call_peer(c);
    const char *service = m ? m->service : "";
    const char *method = m ? m->name : "";
    char unknown[256] = "";
    if (!m && c->generic_path) { /* "/svc/method" of an unknown method: split it */
        snprintf(unknown, sizeof unknown, "%s",
                 c->generic_path[0] == '/' ? c->generic_path + 1 : c->generic_path);
        char *slash = strchr(unknown, '/');
        service = unknown;
        if (slash) {
            *slash = '\0';
            method = slash + 1;
        }
    }
    const char *err =
        code != GRPC_CODE_OK && c->status_sent && c->code == code && c->msg ? c->msg : NULL;
    log_field f[] = {
        LOG_S("grpc.service", service),
        LOG_S("grpc.method", method),
        LOG_S("grpc.code", status_grpc_code_go_name(code)),
        LOG_RAW("grpc.time_ms", time_ms),
        LOG_S("grpc.start_time", start),
        LOG_S("grpc.request.deadline", c->client_deadline ? deadline : NULL),
        LOG_S("grpc.error", err),
        LOG_S("peer.address", peer),
        LOG_S("request_id", c->request_id),
        LOG_S("auth.principal", c->principal),
        LOG_S("trace_id", trace_id[0] ? trace_id : NULL),
        LOG_S("span.kind", "server"),
        LOG_S("system", "grpc"),
        LOG_RAW("worker", worker),
    };
    log_event(level, m ? "finished call" : "unknown method", f, sizeof f / sizeof f[0]);
}

/* ------------------------------------------------------------------ */
/* The pool threads                                                    */

static void *worker_main(void *arg)
{
    rpc_worker *w = arg;
    rpc_server *s = w->srv;
    tl_worker = w;
    if (w->index >= 0 && s->opt.worker_init)
        w->data = s->opt.worker_init(w->index, s->opt.user);

    for (rpc_method *m = s->methods; m; m = m->next)
        if (m->pool == w->pool)
            call_arm(w, m);
    int generic = w->index >= 0 ? GENERIC_PER_WORKER : GENERIC_PER_PRIORITY;
    for (int i = 0; i < generic; i++)
        call_arm(w, NULL);

    for (;;) {
        grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        uint8_t *tag = ev.tag;
        uint8_t kind = *tag;
        rpc_call *c = (rpc_call *)(void *)(tag - kind - offsetof(rpc_call, tag));
        bool ok = ev.success != 0;
        switch (kind) {
        case TAG_NEW:
            on_new(c, ok);
            break;
        case TAG_SEND:
            on_send(c, ok);
            break;
        case TAG_RECV:
            on_recv(c, ok);
            break;
        case TAG_CLOSE:
            on_close(c, ok);
            break;
        default:
            log_error("unknown completion tag %u", kind);
        }
    }

    arena_free(w->spare);
    w->spare = NULL;
    if (w->index >= 0 && s->opt.worker_fini)
        s->opt.worker_fini(w->data, s->opt.user);
    tl_worker = NULL;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Server                                                              */

static atomic_int global_refs;

/* gRPC core's own messages (a refused TLS handshake, ...) would go to stderr
 * in core's format; through our log every line stays one JSON object. Core's
 * errors are mostly about peers (a client with a bad certificate), not
 * about us, so they are warnings; a failed core assertion (core aborts
 * next) stays an error. */
static void core_log(gpr_log_func_args *a)
{
    int level = LOG_DEBUG;
    if (a->severity == GPR_LOG_SEVERITY_ERROR)
        level = strncmp(a->message, "assertion failed", 16) == 0 ? LOG_ERROR : LOG_WARN;
    else if (a->severity == GPR_LOG_SEVERITY_INFO)
        level = LOG_INFO;
    if (level < atomic_load(&log_level))
        return;
    const char *file = a->file ? strrchr(a->file, '/') : NULL;
    char line[16];
    snprintf(line, sizeof line, "%d", a->line);
    log_field f[] = { LOG_S("component", "grpc-core"), LOG_S("file", file ? file + 1 : a->file),
                      LOG_RAW("line", line) };
    log_event(level, a->message, f, 3);
}

void rpc_global_init(void)
{
    if (atomic_fetch_add(&global_refs, 1) == 0) {
        gpr_set_log_function(core_log);
        grpc_init();
    }
}

void rpc_global_fini(void)
{
    if (atomic_fetch_sub(&global_refs, 1) == 1)
        grpc_shutdown_blocking(); /* P7 */
}

void rpc_options_init(rpc_options *o)
{
    memset(o, 0, sizeof *o);
    o->listen_addr = "0.0.0.0:50051";
    o->workers = 1;
    o->max_recv_bytes = 1 << 20;
    o->call_arena_bytes = 16 << 20;
    o->max_concurrent_streams = 100;
    o->default_deadline_ms = 30000;
    o->handshake_timeout_ms = 10000;
    o->max_connection_idle_ms = 15 * 60 * 1000;
    o->max_connection_age_ms = 30 * 60 * 1000;
    o->max_connection_age_grace_ms = 5 * 60 * 1000;
    o->max_metadata_bytes = 16 << 10;
    o->access_log = true;
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static grpc_arg arg_int(const char *key, int v)
{
    grpc_arg a;
    memset(&a, 0, sizeof a);
    a.type = GRPC_ARG_INTEGER;
    a.key = (char *)key;
    a.value.integer = v;
    return a;
}

static int clamp_int(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : v < 0 ? 0 : (int)v;
}

rpc_server *rpc_server_new(const rpc_options *opt, char **err)
{
    rpc_server *s = NULL;
    *err = NULL;

    if (!opt->listen_addr || !opt->listen_addr[0]) {
        *err = xstrdup("listen address is empty");
        goto out;
    }
    if (opt->workers < 1 || opt->workers > 1024) {
        *err = xasprintf("workers = %d: allowed 1..1024", opt->workers);
        goto out;
    }
    if (opt->max_recv_bytes < 1 || opt->max_recv_bytes > INT32_MAX) {
        *err = xasprintf("max_recv_bytes = %zu: allowed 1..%d", opt->max_recv_bytes, INT32_MAX);
        goto out;
    }
    if (!opt->tls_cert_pem != !opt->tls_key_pem) {
        *err = xstrdup("TLS needs both a certificate and a key");
        goto out;
    }
    if ((opt->tls_client_ca_pem || opt->tls_require_client_cert) && !opt->tls_cert_pem) {
        *err = xstrdup("client certificate checks need a server certificate");
        goto out;
    }
    if (opt->tls_require_client_cert && !opt->tls_client_ca_pem) {
        *err = xstrdup("requiring client certificates needs a client CA");
        goto out;
    }

    s = xcalloc(1, sizeof *s);
    s->opt = *opt;
    s->listen_addr = xstrdup(opt->listen_addr);
    s->tls_cert = dup_or_null(opt->tls_cert_pem);
    s->tls_key = dup_or_null(opt->tls_key_pem);
    s->tls_ca = dup_or_null(opt->tls_client_ca_pem);
    s->opt.listen_addr = s->listen_addr;
    s->opt.tls_cert_pem = s->tls_cert;
    s->opt.tls_key_pem = s->tls_key;
    s->opt.tls_client_ca_pem = s->tls_ca;
    if (s->opt.call_arena_bytes == 0)
        s->opt.call_arena_bytes = 16 << 20;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->tls_mu, NULL);
    s->tls_gen = 1; /* core's first fetch takes it */

    grpc_arg args[] = {
        arg_int(GRPC_ARG_ALLOW_REUSEPORT, 0), /* P9 */
        arg_int(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, clamp_int((int64_t)opt->max_recv_bytes)),
        arg_int(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                opt->max_concurrent_streams > 0 ? opt->max_concurrent_streams : 100),
        arg_int(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                opt->handshake_timeout_ms > 0 ? opt->handshake_timeout_ms : 10000),
        arg_int(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                opt->max_connection_idle_ms > 0 ? opt->max_connection_idle_ms : INT32_MAX),
        arg_int(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                opt->max_connection_age_ms > 0 ? opt->max_connection_age_ms : INT32_MAX),
        arg_int(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, opt->max_connection_age_grace_ms > 0
                                                          ? opt->max_connection_age_grace_ms
                                                          : INT32_MAX),
        arg_int(GRPC_ARG_MAX_METADATA_SIZE,
                opt->max_metadata_bytes > 0 ? opt->max_metadata_bytes : 16 << 10),
        arg_int(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1),
        arg_int(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000),
    };
    grpc_channel_args ca = { sizeof args / sizeof args[0], args };
    s->server = grpc_server_create(&ca, NULL);
    s->workers = xcalloc((size_t)opt->workers, sizeof *s->workers);
out:
    return s;
}

static rpc_method *method_find(rpc_server *s, const char *path)
{
    for (rpc_method *m = s->methods; m; m = m->next)
        if (strcmp(m->path, path) == 0)
            return m;
    return NULL;
}

/* A new method entry for "/service/name" with its kind from the descriptor
 * set; registered with core. NULL and *err on failure. */
static rpc_method *method_new(rpc_server *s, const char *service, const char *name, rpc_pool pool,
                              char **err)
{
    bool cs = false;
    bool ss = false;
    if (!s->opt.descriptors) {
        *err = xstrdup("no descriptor set: cannot tell method kinds");
        return NULL;
    }
    if (!descset_method_streaming(s->opt.descriptors, service, name, &cs, &ss)) {
        *err = xasprintf("method %s.%s is missing from the descriptor set", service, name);
        return NULL;
    }
    rpc_method *m = xcalloc(1, sizeof *m);
    m->path = xasprintf("/%s/%s", service, name);
    m->service = xstrdup(service);
    m->name = m->path + 1 + strlen(service) + 1;
    m->kind =
        cs ? (ss ? RPC_BIDI_STREAM : RPC_CLIENT_STREAM) : (ss ? RPC_SERVER_STREAM : RPC_UNARY);
    m->pool = pool;
    m->quiet = pool == RPC_POOL_PRIORITY;
    bool with_payload = m->kind == RPC_UNARY || m->kind == RPC_SERVER_STREAM;
    m->handle = grpc_server_register_method(
        s->server, m->path, NULL,
        with_payload ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER : GRPC_SRM_PAYLOAD_NONE, 0);
    if (!m->handle) {
        *err = xasprintf("cannot register %s", m->path);
        free(m->service);
        free(m->path);
        free(m);
        return NULL;
    }
    m->next = s->methods;
    s->methods = m;
    s->n_methods++;
    if (pool == RPC_POOL_PRIORITY)
        s->has_prio = true;
    return m;
}

status rpc_server_add_service(rpc_server *s, ProtobufCService *svc, rpc_pool pool, char **err)
{
    const ProtobufCServiceDescriptor *d = svc->descriptor;
    *err = NULL;
    if (s->started) {
        *err = xstrdup("services must be added before rpc_server_start");
        return ST_INVALID;
    }
    for (unsigned i = 0; i < d->n_methods; i++) {
        char *path = xasprintf("/%s/%s", d->name, d->methods[i].name);
        rpc_method *m = method_find(s, path);
        free(path);
        if (m && (m->svc || !m->has_stream)) {
            *err = xasprintf("%s is already registered", m->path);
            return ST_INVALID;
        }
        if (m) { /* a stream handler added first: only the kinds must agree */
            continue;
        }
        m = method_new(s, d->name, d->methods[i].name, pool, err);
        if (!m)
            return ST_INVALID;
        if (m->kind == RPC_UNARY || m->kind == RPC_SERVER_STREAM) {
            m->svc = svc;
            m->index = i;
        }
        /* Client streaming and bidi stay UNIMPLEMENTED until add_stream. */
    }
    return ST_OK;
}

status rpc_server_add_stream(rpc_server *s, const char *path, const rpc_stream_handler *h,
                             rpc_pool pool, char **err)
{
    *err = NULL;
    if (s->started) {
        *err = xstrdup("streams must be added before rpc_server_start");
        return ST_INVALID;
    }
    if (!h || !h->on_message) {
        *err = xasprintf("%s: a stream handler needs on_message", path);
        return ST_INVALID;
    }
    const char *slash = path[0] == '/' ? strchr(path + 1, '/') : NULL;
    if (!slash || !slash[1] || strchr(slash + 1, '/')) {
        *err = xasprintf("%s is not a /package.Service/Method path", path);
        return ST_INVALID;
    }
    rpc_method *m = method_find(s, path);
    if (m && (m->has_stream || m->svc)) {
        *err = xasprintf("%s is already registered", path);
        return ST_INVALID;
    }
    if (!m) {
        char *service = xstrndup(path + 1, (size_t)(slash - path - 1));
        m = method_new(s, service, slash + 1, pool, err);
        free(service);
        if (!m)
            return ST_INVALID;
    }
    if (m->kind != RPC_CLIENT_STREAM && m->kind != RPC_BIDI_STREAM) {
        /* A fresh entry stays registered with core (it cannot be undone) and
         * answers UNIMPLEMENTED. */
        *err = xasprintf("%s is %s in the descriptor set: not a stream handler method", path,
                         rpc_kind_name(m->kind));
        return ST_INVALID;
    }
    m->has_stream = true;
    m->sh = *h;
    return ST_OK;
}

/* Core calls this before each TLS handshake (and once when the port is
 * added): a new config only when a reload happened since the last fetch.
 * Core owns the config it gets (the PEMs are copied into it) and keeps the
 * previous certificates when the new ones do not load (it logs why). */
static grpc_ssl_certificate_config_reload_status tls_fetch(void *user,
                                                           grpc_ssl_server_certificate_config **cfg)
{
    rpc_server *s = user;
    grpc_ssl_certificate_config_reload_status rc = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
    pthread_mutex_lock(&s->tls_mu);
    if (s->tls_fetched != s->tls_gen) {
        grpc_ssl_pem_key_cert_pair pair = { s->tls_key, s->tls_cert };
        /* Core 1.51 asserts that a fetched config has roots even when client
         * certificates are not requested (ssl_security_connector.cc:366);
         * without a client CA none are asked for, so any PEM will do: the
         * server's own chain. */
        const char *roots = s->tls_ca ? s->tls_ca : s->tls_cert;
        *cfg = grpc_ssl_server_certificate_config_create(roots, &pair, 1);
        s->tls_fetched = s->tls_gen;
        rc =
            *cfg ? GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW : GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
    }
    pthread_mutex_unlock(&s->tls_mu);
    return rc;
}

static grpc_server_credentials *server_creds(rpc_server *s)
{
    if (!s->tls_cert)
        return grpc_insecure_server_credentials_create();
    grpc_ssl_client_certificate_request_type req = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
    if (s->tls_ca)
        req = s->opt.tls_require_client_cert
                  ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                  : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
    grpc_ssl_server_credentials_options *o =
        grpc_ssl_server_credentials_create_options_using_config_fetcher(req, tls_fetch, s);
    return o ? grpc_ssl_server_credentials_create_with_options(o) : NULL;
}

status rpc_server_reload_tls(rpc_server *s, const char *cert_pem, const char *key_pem,
                             const char *client_ca_pem, char **err)
{
    *err = NULL;
    if (!cert_pem || !key_pem || !cert_pem[0] || !key_pem[0]) {
        *err = xstrdup("TLS needs both a certificate and a key");
        return ST_INVALID;
    }
    pthread_mutex_lock(&s->tls_mu);
    if (!s->tls_cert || !client_ca_pem != !s->tls_ca) {
        pthread_mutex_unlock(&s->tls_mu);
        *err = xstrdup(!s->tls_cert ? "the server was started without TLS; restart to turn it on"
                                    : "a reload cannot turn client certificate checks on or off; "
                                      "restart to do that");
        return ST_INVALID;
    }
    char *old[3] = { s->tls_cert, s->tls_key, s->tls_ca };
    s->tls_cert = xstrdup(cert_pem);
    s->tls_key = xstrdup(key_pem);
    s->tls_ca = dup_or_null(client_ca_pem);
    s->opt.tls_cert_pem = s->tls_cert;
    s->opt.tls_key_pem = s->tls_key;
    s->opt.tls_client_ca_pem = s->tls_ca;
    s->tls_gen++;
    pthread_mutex_unlock(&s->tls_mu);
    for (int i = 0; i < 3; i++)
        free(old[i]);
    return ST_OK;
}

static void worker_setup(rpc_server *s, rpc_worker *w, int index, rpc_pool pool)
{
    w->srv = s;
    w->index = index;
    w->pool = pool;
    atomic_init(&w->gate_users, 0);
    atomic_init(&w->gate_closed, false);
    w->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(s->server, w->cq, NULL);
}

status rpc_server_start(rpc_server *s, char **err)
{
    status st = ST_INVALID;
    grpc_server_credentials *creds = NULL;
    *err = NULL;

    if (s->started) {
        *err = xstrdup("server already started");
        goto out;
    }
    for (int i = 0; i < s->opt.workers; i++)
        worker_setup(s, &s->workers[i], i, RPC_POOL_WORKERS);
    if (s->has_prio)
        worker_setup(s, &s->prio, -1, RPC_POOL_PRIORITY);
    s->shutdown_cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(s->server, s->shutdown_cq, NULL);

    creds = server_creds(s);
    if (!creds) {
        *err = xstrdup("cannot create TLS credentials (bad certificate or key?)");
        goto out;
    }
    s->port = grpc_server_add_http2_port(s->server, s->listen_addr, creds);
    if (s->port == 0) {
        *err = xasprintf("cannot listen on %s", s->listen_addr);
        goto out;
    }
    grpc_server_start(s->server);
    s->started = true;
    for (int i = 0; i < s->opt.workers; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
            *err = xstrdup("cannot start a worker thread");
            goto out;
        }
        s->workers[i].running = true;
    }
    if (s->has_prio) {
        if (pthread_create(&s->prio.thread, NULL, worker_main, &s->prio) != 0) {
            *err = xstrdup("cannot start the priority thread");
            goto out;
        }
        s->prio.running = true;
    }
    st = ST_OK;
out:
    if (creds)
        grpc_server_credentials_release(creds);
    return st;
}

int rpc_server_port(const rpc_server *s)
{
    return s->port;
}

/* Calls that arrived while every request of their method was taken wait in
 * core, and core cancels them at shutdown (clients see CANCELLED). Arming
 * more requests hands them to us first, spread over the queues in turn, so
 * they are served within the grace period like the calls already running. */
static void server_drain_pending(rpc_server *s)
{
    for (int k = 0; k < DRAIN_PER_QUEUE; k++) {
        for (int i = 0; i < s->opt.workers; i++)
            for (rpc_method *m = s->methods; m; m = m->next)
                if (m->pool == RPC_POOL_WORKERS)
                    call_arm_on(&s->workers[i], m, true);
        if (s->has_prio)
            for (rpc_method *m = s->methods; m; m = m->next)
                if (m->pool == RPC_POOL_PRIORITY)
                    call_arm_on(&s->prio, m, true);
    }
}

static void server_begin_shutdown(rpc_server *s, bool drain)
{
    pthread_mutex_lock(&s->lock);
    if (drain && !s->notify_sent && s->started)
        server_drain_pending(s);
    atomic_store(&s->shutting_down, true);
    if (!s->notify_sent && s->started) {
        s->notify_sent = true;
        grpc_server_shutdown_and_notify(s->server, s->shutdown_cq, s);
    }
    pthread_mutex_unlock(&s->lock);
}

void rpc_server_cancel_all(rpc_server *s)
{
    if (!s || !s->started)
        return;
    server_begin_shutdown(s, false);
    atomic_store(&s->cancelling, true);
    grpc_server_cancel_all_calls(s->server);
}

static void worker_stop(rpc_worker *w)
{
    if (!w->cq)
        return;
    gate_close(w);
    grpc_completion_queue_shutdown(w->cq);
    if (w->running) {
        pthread_join(w->thread, NULL);
        w->running = false;
    }
}

static void cq_drain(grpc_completion_queue *cq)
{
    grpc_completion_queue_shutdown(cq);
    grpc_event ev;
    do {
        ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    } while (ev.type != GRPC_QUEUE_SHUTDOWN);
}

static void server_drain_unstarted(rpc_server *s)
{
    for (int i = 0; i < s->opt.workers; i++)
        if (s->workers[i].cq)
            cq_drain(s->workers[i].cq);
    if (s->prio.cq)
        cq_drain(s->prio.cq);
    if (s->shutdown_cq)
        cq_drain(s->shutdown_cq);
}

void rpc_server_shutdown(rpc_server *s, int64_t grace_ms)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    bool skip = s->stopped || !s->started;
    s->stopped = true;
    pthread_mutex_unlock(&s->lock);
    if (skip) {
        atomic_store(&s->shutting_down, true);
        /* Never started (or a failed start before grpc_server_start): the
         * queues exist but no thread drains them. */
        if (!s->started)
            server_drain_unstarted(s);
        return;
    }
    server_begin_shutdown(s, true);
    if (grace_ms < 0)
        grace_ms = 0;
    gpr_timespec until =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(grace_ms, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_next(s->shutdown_cq, until, NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) {
        log_info("shutdown grace of %" PRId64 " ms over; cancelling %" PRId64 " calls", grace_ms,
                 atomic_load(&s->inflight));
        rpc_server_cancel_all(s);
        ev = grpc_completion_queue_next(s->shutdown_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    }
    for (int i = 0; i < s->opt.workers; i++)
        worker_stop(&s->workers[i]);
    if (s->has_prio)
        worker_stop(&s->prio);
    cq_drain(s->shutdown_cq);
}

static void method_free(rpc_method *m)
{
    free(m->service);
    free(m->path);
    free(m);
}

void rpc_server_free(rpc_server *s)
{
    if (!s)
        return;
    rpc_server_shutdown(s, 0);
    /* Detached calls whose owners have not finished them yet still point
     * here: give them a moment rather than free under them. */
    int64_t until = now_mono_ms() + FREE_WAIT_MS;
    while (atomic_load(&s->inflight) > 0 && now_mono_ms() < until) {
        struct timespec ts = { 0, 5 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    int64_t left = atomic_load(&s->inflight);
    if (left > 0) {
        log_error("%" PRId64 " detached calls were never finished; leaking the server", left);
        return;
    }
    grpc_server_destroy(s->server);
    for (int i = 0; i < s->opt.workers; i++)
        if (s->workers[i].cq)
            grpc_completion_queue_destroy(s->workers[i].cq);
    if (s->prio.cq)
        grpc_completion_queue_destroy(s->prio.cq);
    if (s->shutdown_cq)
        grpc_completion_queue_destroy(s->shutdown_cq);
    while (s->methods) {
        rpc_method *m = s->methods;
        s->methods = m->next;
        method_free(m);
    }
    free(s->workers);
    free(s->listen_addr);
    free(s->tls_cert);
    free(s->tls_key);
    free(s->tls_ca);
    pthread_mutex_destroy(&s->tls_mu);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ------------------------------------------------------------------ */
/* Statistics                                                          */

void rpc_server_stats(const rpc_server *s, void (*fn)(const rpc_method_stats *st, void *user),
                      void *user)
{
    for (const rpc_method *m = s->methods; m; m = m->next) {
        rpc_method_stats st;
        memset(&st, 0, sizeof st);
        st.service = m->service;
        st.method = m->name;
        st.kind = m->kind;
        st.started = atomic_load_explicit(&m->started, memory_order_relaxed);
        st.msg_received = atomic_load_explicit(&m->received, memory_order_relaxed);
        st.msg_sent = atomic_load_explicit(&m->sent, memory_order_relaxed);
        for (int i = 0; i < GRPC_CODE_COUNT; i++)
            st.handled[i] = atomic_load_explicit(&m->handled[i], memory_order_relaxed);
        for (int i = 0; i <= RPC_LATENCY_BUCKETS; i++)
            st.bucket[i] = atomic_load_explicit(&m->bucket[i], memory_order_relaxed);
        st.latency_sum_s = (double)atomic_load_explicit(&m->latency_ns, memory_order_relaxed) / 1e9;
        fn(&st, user);
    }
}

int64_t rpc_server_inflight(const rpc_server *s)
{
    return atomic_load(&((rpc_server *)s)->inflight);
}

int rpc_server_busy_workers(const rpc_server *s)
{
    return atomic_load(&((rpc_server *)s)->busy);
}

/* ------------------------------------------------------------------ */
/* The per-call API                                                    */

const char *rpc_call_path(const rpc_call *c)
{
    return c->m ? c->m->path : c->generic_path;
}

const char *rpc_call_service(const rpc_call *c)
{
    return c->m ? c->m->service : "";
}

const char *rpc_call_method(const rpc_call *c)
{
    return c->m ? c->m->name : "";
}

rpc_kind rpc_call_kind(const rpc_call *c)
{
    return c->m ? c->m->kind : RPC_UNARY;
}

const char *rpc_call_peer(const rpc_call *cc)
{
    rpc_call *c = (rpc_call *)cc; /* a lazily filled cache */
    pthread_mutex_lock(&c->mu);
    if (!c->peer && c->call)
        c->peer = grpc_call_get_peer(c->call);
    pthread_mutex_unlock(&c->mu);
    return c->peer ? peer_strip(c->peer) : "";
}

const char *rpc_call_request_id(const rpc_call *c)
{
    return c->request_id;
}

int64_t rpc_call_remaining_ms(const rpc_call *c)
{
    return rpc_deadline_remaining_ms(c->deadline_ns, grpc_now_ns());
}

bool rpc_call_client_deadline(const rpc_call *c)
{
    return c->client_deadline;
}

const char *rpc_call_metadata(const rpc_call *cc, const char *key, size_t *len)
{
    rpc_call *c = (rpc_call *)cc;
    const grpc_metadata *md = md_find(&c->md, key);
    if (!md)
        return NULL;
    size_t n = GRPC_SLICE_LENGTH(md->value);
    /* P4: slices are not NUL-terminated; hand out a terminated copy. */
    char *copy = c->arena ? arena_alloc(c->arena, n + 1) : NULL;
    if (!copy)
        return NULL;
    memcpy(copy, GRPC_SLICE_START_PTR(md->value), n);
    copy[n] = '\0';
    if (len)
        *len = n;
    return copy;
}

void *rpc_call_worker(const rpc_call *c)
{
    return c->w->index >= 0 ? c->w->data : NULL;
}

int rpc_call_worker_index(const rpc_call *c)
{
    return c->w->index;
}

arena *rpc_call_arena(rpc_call *c)
{
    if (!c->arena)
        c->arena = arena_new(c->srv->opt.call_arena_bytes);
    return c->arena;
}

size_t rpc_call_request_bytes(const rpc_call *c)
{
    return c->request_bytes;
}

const uint8_t *rpc_call_request_data(const rpc_call *c, size_t *len)
{
    /* The slice's own storage: for a small (inlined) slice that is the copy
     * inside c->request, which lives as long as the call. */
    const uint8_t *p = c->request_kept ? GRPC_SLICE_START_PTR(c->request) : NULL;
    if (len != NULL)
        *len = p ? GRPC_SLICE_LENGTH(c->request) : 0;
    return p;
}

void *rpc_call_user(const rpc_call *c)
{
    return c->user;
}

void rpc_call_set_user(rpc_call *c, void *p)
{
    c->user = p;
}

void rpc_call_set_principal(rpc_call *c, const char *name)
{
    c->principal = name;
}

void rpc_call_set_statusv(rpc_call *c, status st, const char *fmt, va_list ap)
{
    char *msg = xvasprintf(fmt, ap);
    pthread_mutex_lock(&c->mu);
    call_set_code_locked(c, st, status_to_grpc(st), msg);
    pthread_mutex_unlock(&c->mu);
}

void rpc_call_set_status(rpc_call *c, status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rpc_call_set_statusv(c, st, fmt, ap);
    va_end(ap);
}

status rpc_call_status(const rpc_call *c)
{
    return c->st;
}

void rpc_call_fail(rpc_call *c, status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    call_finish(c, st, status_to_grpc(st), msg);
}

void rpc_call_finish(rpc_call *c, status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    call_finish(c, st, status_to_grpc(st), msg);
}

void rpc_call_finish_code(rpc_call *c, int grpc_code, const char *msg)
{
    if (grpc_code < 0 || grpc_code >= GRPC_CODE_COUNT)
        grpc_code = GRPC_CODE_UNKNOWN;
    call_finish(c, code_to_status(grpc_code), grpc_code, xstrdup(msg ? msg : ""));
}

void rpc_call_add_trailer(rpc_call *c, const char *key, const char *val, size_t len)
{
    if (!key || !key[0] || strncmp(key, "grpc-", 5) == 0) {
        log_warn("ignoring trailer key \"%s\" on %s", key ? key : "", rpc_call_path(c));
        return;
    }
    rpc_trailer *t = xmalloc(sizeof *t);
    t->key = xstrdup(key);
    for (char *p = t->key; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    t->val = xmalloc(len + 1);
    memcpy(t->val, val, len);
    t->val[len] = '\0';
    t->len = len;
    pthread_mutex_lock(&c->mu);
    t->next = c->trailers;
    c->trailers = t;
    pthread_mutex_unlock(&c->mu);
}

void rpc_call_add_violation(rpc_call *c, const char *field, const char *description)
{
    pthread_mutex_lock(&c->mu);
    c->violations = xrealloc(c->violations, (c->n_violations + 1) * sizeof *c->violations);
    c->violations[c->n_violations].field = xstrdup(field ? field : "");
    c->violations[c->n_violations].description = xstrdup(description ? description : "");
    c->n_violations++;
    pthread_mutex_unlock(&c->mu);
}

void rpc_call_set_error_info(rpc_call *c, const char *reason, const char *domain)
{
    pthread_mutex_lock(&c->mu);
    free(c->reason);
    free(c->domain);
    c->reason = xstrdup(reason ? reason : "");
    c->domain = xstrdup(domain ? domain : "");
    pthread_mutex_unlock(&c->mu);
}

void rpc_call_set_retry_delay_ms(rpc_call *c, int64_t ms)
{
    pthread_mutex_lock(&c->mu);
    c->has_retry = true;
    c->retry_ms = ms;
    pthread_mutex_unlock(&c->mu);
}

void rpc_call_detach(rpc_call *c, rpc_done_fn on_done, void *user)
{
    pthread_mutex_lock(&c->mu);
    if (c->detached || c->completed || !c->m) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    c->detached = true;
    c->on_done = on_done;
    c->on_done_user = user;
    call_ref(c); /* the application's, until its completion */
    if (!c->stream_mode)
        call_start_close_locked(c); /* unary: now cancellation is visible */
    pthread_mutex_unlock(&c->mu);
}

/* Completes a unary call with the serialized reply bb (handed over), or
 * with no reply when bb is NULL (a failure: the status set before, else
 * UNKNOWN). done(&reply) and rpc_call_reply_raw both end here, so both send,
 * count and log a reply the same way. */
static void call_reply(rpc_call *c, grpc_byte_buffer *bb)
{
    pthread_mutex_lock(&c->mu);
    if (c->completed) {
        pthread_mutex_unlock(&c->mu);
        if (bb)
            grpc_byte_buffer_destroy(bb);
        log_warn("%s: reply after the call was completed; ignored", c->m->path);
        return;
    }
    if (bb) {
        c->reply_bb = bb;
    } else if (!c->status_set || c->code == GRPC_CODE_OK) {
        call_set_code_locked(c, ST_INTERNAL, GRPC_CODE_UNKNOWN,
                             xstrdup("handler failed without a status"));
    }
    bool release = call_complete_locked(c);
    pthread_mutex_unlock(&c->mu);
    if (release)
        call_app_release(c);
}

/* The closure protoc-c handlers call: unary reply / stream message / NULL. */
static void call_closure(const ProtobufCMessage *msg, void *closure_data)
{
    rpc_call *c = closure_data;
    if (c->m->kind == RPC_SERVER_STREAM && msg) {
        (void)rpc_call_send(c, msg);
        return;
    }
    call_reply(c, msg ? bb_from_message(msg) : NULL);
}

void rpc_call_reply_raw(rpc_call *c, const void *data, size_t len)
{
    if (c->m->kind == RPC_SERVER_STREAM) {
        (void)rpc_call_send_raw(c, data, len);
        return;
    }
    call_reply(c, bb_from_bytes(data, len));
}

static bool call_enqueue(rpc_call *c, grpc_byte_buffer *bb)
{
    pthread_mutex_lock(&c->mu);
    bool open = c->m && c->m->kind != RPC_UNARY && c->stream_mode && !c->completed &&
                !c->transport_done && !c->send_failed;
    if (open) {
        rpc_sendq *q = xmalloc(sizeof *q);
        q->next = NULL;
        q->bb = bb;
        if (c->q_tail)
            c->q_tail->next = q;
        else
            c->q_head = q;
        c->q_tail = q;
        call_pump(c);
    }
    pthread_mutex_unlock(&c->mu);
    if (!open)
        grpc_byte_buffer_destroy(bb);
    return open;
}

bool rpc_call_send(rpc_call *c, const ProtobufCMessage *msg)
{
    return call_enqueue(c, bb_from_message(msg));
}

bool rpc_call_send_raw(rpc_call *c, const void *data, size_t len)
{
    return call_enqueue(c, bb_from_bytes(data, len));
}

bool rpc_call_cancelled(const rpc_call *c)
{
    if (atomic_load(&((rpc_call *)c)->cancelled) || atomic_load(&c->srv->cancelling))
        return true;
    return c->client_deadline && grpc_now_ns() >= c->deadline_ns;
}
