/* rpc.h - the gRPC runtime: serves protoc-c services from their descriptors.
 *
 * rpc.c is the only server file that includes <grpc/grpc.h>. Handlers are the
 * function pointers of a protoc-c generated service struct; they see
 * protobuf-c messages and an rpc_call, never gRPC types.
 *
 * Threads. N worker threads each own one completion queue; a separate
 * "priority" thread with its own queue serves health and reflection so that
 * a saturated pool never fails a probe. A call runs on the thread of the pool
 * its method was added to. Handlers may block (on their worker's own
 * database connection, say) without starving other workers.
 *
 * Handler contract (unary and server streaming), with `done` the typed
 * closure protoc-c passes and `call` its closure_data:
 *   - reply:  done(&reply, call)        the runtime packs it before returning,
 *                                       so reply may live on the stack.
 *   - fail:   rpc_call_fail(call, ST_NOT_FOUND, "post %s not found", id)
 *   - stream: done(&msg, call) once per message, then return (status OK
 *             unless rpc_call_set_status set another).
 *   - later:  rpc_call_detach(call, ...), return, and finish from any thread
 *             with done(&reply, call) (unary) or rpc_call_finish (streams).
 * A unary handler that returns without replying, failing or detaching gets
 * INTERNAL "handler sent no reply". A method whose slot in the service struct
 * is NULL answers UNIMPLEMENTED.
 *
 * Memory. The runtime owns the unpacked request (decoded into the call's
 * bounded arena) and packs replies inside the closure: handlers only borrow.
 * rpc_call_arena() gives handlers call-lifetime scratch memory. */
#ifndef HERALD_RPC_H
#define HERALD_RPC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "arena.h"
#include "descset.h"
#include "status.h"

typedef struct rpc_server rpc_server;
typedef struct rpc_call rpc_call;

typedef enum {
    RPC_POOL_WORKERS = 0, /* the N worker threads */
    RPC_POOL_PRIORITY,    /* the health/reflection thread; handlers must not block */
} rpc_pool;

typedef enum {
    RPC_UNARY = 0,
    RPC_CLIENT_STREAM,
    RPC_SERVER_STREAM,
    RPC_BIDI_STREAM,
} rpc_kind;

/* Called on each worker thread before it serves its first call / after its
 * last. The pointer returned by init is what rpc_call_worker() gives that
 * thread's handlers. Either may be NULL. */
typedef void *(*rpc_worker_init_fn)(int worker_index, void *user);
typedef void (*rpc_worker_fini_fn)(void *worker_data, void *user);

/* Runs before every handler on the handler's thread (for stream handlers,
 * before on_open). Returning non-OK fails the call without running the
 * handler: auth, load shedding. The status and message are those of
 * rpc_call_set_status when the interceptor set one, else the returned status
 * with a generic message. May be NULL. */
typedef status (*rpc_interceptor_fn)(rpc_call *call, void *user);

typedef struct rpc_options {
    const char *listen_addr;         /* "0.0.0.0:50051"; port 0 picks a free port */
    int workers;                     /* >= 1 */
    size_t max_recv_bytes;           /* receive limit per message (default 1 MiB) */
    size_t call_arena_bytes;         /* decode budget per call (default 16 MiB) */
    int max_concurrent_streams;      /* per connection (default 100) */
    int64_t default_deadline_ms;     /* applied when the client sent none (default 30000) */
    int handshake_timeout_ms;        /* default 10000 */
    int max_connection_idle_ms;      /* default 15 min */
    int max_connection_age_ms;       /* GOAWAY after this long (default 30 min; 0 = never) */
    int max_connection_age_grace_ms; /* then calls get this long (default 5 min) */
    int max_metadata_bytes;          /* request header list limit (default 16 KiB) */
    /* TLS: all NULL = plaintext. PEM contents, not paths. */
    const char *tls_cert_pem;
    const char *tls_key_pem;
    const char *tls_client_ca_pem; /* non-NULL: verify client certificates */
    bool tls_require_client_cert;
    /* Method kinds come from the embedded descriptor set; a service whose
     * methods are missing from it (or differ) fails rpc_server_add_service. */
    const descset *descriptors;
    rpc_worker_init_fn worker_init;
    rpc_worker_fini_fn worker_fini;
    rpc_interceptor_fn interceptor;
    void *user;      /* passed to the three hooks above */
    bool access_log; /* one log line per call (default on) */
} rpc_options;

/* Fills o with defaults (NULL hooks, 1 worker, plaintext, access log on).
 * Keepalive is fixed: clients may ping every 10 s, even without calls. */
void rpc_options_init(rpc_options *o);

/* Process-wide gRPC set-up and teardown; call once each from main, before
 * any thread starts / after every server is freed. */
void rpc_global_init(void);
void rpc_global_fini(void);

/* On failure returns NULL and sets *err to a message the caller frees. */
rpc_server *rpc_server_new(const rpc_options *opt, char **err);

/* Serves every method of svc on the given pool. svc must outlive the server.
 * Registration must precede rpc_server_start. ST_INVALID (with *err) when
 * the descriptor set disagrees or a path is already registered.
 * Client-streaming and bidi methods of svc cannot be served through its
 * function pointers: they answer UNIMPLEMENTED until rpc_server_add_stream
 * (before or after this call) gives them a handler.
 * The access log writes OK calls of methods on RPC_POOL_PRIORITY at debug
 * level (probes would flood it), every other call per conventions §7. */
status rpc_server_add_service(rpc_server *s, ProtobufCService *svc, rpc_pool pool, char **err);

/* Message-driven handlers for client-streaming and bidi methods (protoc-c
 * cannot express them). Callbacks run on the pool's thread, one at a time
 * per call; the call is detached from the start and ends with
 * rpc_call_finish. on_done is the last callback: no on_message or
 * on_half_close follows it. The path must be a client-streaming or bidi
 * method of the descriptor set. */
typedef struct rpc_stream_handler {
    void (*on_open)(rpc_call *call, void *user); /* may be NULL */
    /* One received message, raw serialized bytes, borrowed for the callback. */
    void (*on_message)(rpc_call *call, const uint8_t *data, size_t len, void *user);
    void (*on_half_close)(rpc_call *call, void *user);           /* client done sending */
    void (*on_done)(rpc_call *call, bool cancelled, void *user); /* may be NULL */
    void *user;
} rpc_stream_handler;

status rpc_server_add_stream(rpc_server *s, const char *path, const rpc_stream_handler *h,
                             rpc_pool pool, char **err);

/* Binds and starts the threads. *err as above. */
status rpc_server_start(rpc_server *s, char **err);
int rpc_server_port(const rpc_server *s); /* the bound port after start */

/* New TLS material (PEM contents, copied) for the connections accepted from
 * now on; open connections keep theirs (SIGHUP certificate rotation). Core
 * loads it at the next handshake and, when it does not load (a key that
 * does not match, bad PEM), logs that and keeps the previous certificates.
 * ST_INVALID with *err (caller frees) for a server started without TLS, a
 * missing certificate or key, or client_ca_pem set when the server was
 * started without one (or the reverse): restart for those. Any thread, at
 * any time between rpc_server_new and rpc_server_free. */
status rpc_server_reload_tls(rpc_server *s, const char *cert_pem, const char *key_pem,
                             const char *client_ca_pem, char **err);

/* Graceful stop, from any thread but a pool thread: stop accepting (new calls
 * get UNAVAILABLE), let in-flight calls run for up to grace_ms, cancel the
 * rest (clients see UNAVAILABLE), join the threads. Calls that had arrived
 * but were still queued in gRPC core (every worker busy) count as in flight:
 * up to 16 per method and worker are handed to the workers first (core would
 * cancel them). Idempotent; returns once the pool threads are joined.
 * Detached calls not finished yet are waited for by rpc_server_free. */
void rpc_server_shutdown(rpc_server *s, int64_t grace_ms);
/* Immediate stop: cancel everything now. Safe after rpc_server_shutdown. */
void rpc_server_cancel_all(rpc_server *s);
void rpc_server_free(rpc_server *s); /* shuts down first if needed; NULL ok */

/* ---- per-call context (valid until the call ends) ---- */

/* "/pkg.Svc/Method", the full service name and the bare method name. */
const char *rpc_call_path(const rpc_call *c);
const char *rpc_call_service(const rpc_call *c);
const char *rpc_call_method(const rpc_call *c);
rpc_kind rpc_call_kind(const rpc_call *c);
const char *rpc_call_peer(const rpc_call *c);
/* x-request-id from the client (validated, <= 128 printable bytes) or a
 * generated one; echoed as a trailer. */
const char *rpc_call_request_id(const rpc_call *c);

/* Milliseconds left until the deadline, on gRPC's monotonic clock (never the
 * wall clock); the server default applies when the client sent none. May be
 * <= 0: then do not start work (fail with ST_TIMEOUT). */
int64_t rpc_call_remaining_ms(const rpc_call *c);
bool rpc_call_client_deadline(const rpc_call *c); /* did the client set one */

/* First value of request metadata key (lower case), or NULL. A NUL-terminated
 * copy in the call's arena, borrowed until the call ends; *len (may be NULL)
 * gets its length (-bin values may hold NULs). Uses the arena: call it from
 * one thread at a time (the handler's, or the detached owner's). */
const char *rpc_call_metadata(const rpc_call *c, const char *key, size_t *len);

void *rpc_call_worker(const rpc_call *c);         /* worker_init's result; NULL on priority */
int rpc_call_worker_index(const rpc_call *c);     /* -1 on the priority thread */
arena *rpc_call_arena(rpc_call *c);               /* call-lifetime scratch */
size_t rpc_call_request_bytes(const rpc_call *c); /* serialized size received */
/* The received request bytes (unary and server streaming), held by the call
 * (no copy) until it ends; NULL (and *len 0) for stream handler calls or
 * when nothing readable arrived. *len may be NULL. */
const uint8_t *rpc_call_request_data(const rpc_call *c, size_t *len);
void *rpc_call_user(const rpc_call *c); /* per-call slot for the app */
void rpc_call_set_user(rpc_call *c, void *p);
/* Who the caller is (a token's name, never a secret), written to the call's
 * access log line as "auth.principal". Borrowed: name must outlive the
 * server. Call it from the interceptor or the handler's thread. */
void rpc_call_set_principal(rpc_call *c, const char *name);

/* Status. The last rpc_call_set_status before the call ends wins. The
 * message is for humans: no SQL, secrets or stack traces. */
void rpc_call_set_status(rpc_call *c, status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rpc_call_set_statusv(rpc_call *c, status st, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
status rpc_call_status(const rpc_call *c);

/* Sets the status and completes the call with no message (unary: now;
 * streams: ends the stream). Same as set_status + done(NULL, call).
 * done(NULL, call) without a non-OK status gives UNKNOWN. */
void rpc_call_fail(rpc_call *c, status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Extra trailing metadata (key lower case, not "grpc-"). Copied. */
void rpc_call_add_trailer(rpc_call *c, const char *key, const char *val, size_t len);
/* google.rpc error details sent in grpc-status-details-bin on failure. */
void rpc_call_add_violation(rpc_call *c, const char *field, const char *description);
void rpc_call_set_error_info(rpc_call *c, const char *reason, const char *domain);
/* RetryInfo detail plus grpc-retry-pushback-ms (negative: do not retry). */
void rpc_call_set_retry_delay_ms(rpc_call *c, int64_t ms);

/* Detaching: the handler may return and the call stays open. Exactly one
 * completion must follow: done(&reply or NULL, call) for unary, or
 * rpc_call_finish for streams, from any thread. on_done (may be NULL) runs
 * when the call is over for the transport: cancelled = true when the client
 * cancelled or the deadline passed. The call stays valid until both the
 * completion and on_done happened. */
typedef void (*rpc_done_fn)(rpc_call *c, bool cancelled, void *user);
void rpc_call_detach(rpc_call *c, rpc_done_fn on_done, void *user);

/* Streams: queue one message (a protobuf message, or raw bytes). Returns
 * false when the call is already over (cancelled or finished) or is unary.
 * Thread-safe. One message is on the wire at a time; the next goes out when
 * the pool thread sees the previous one sent, so a server-streaming handler
 * that paces its messages (sleeps between them) must detach and send from
 * another thread, or they all leave when it returns. */
bool rpc_call_send(rpc_call *c, const ProtobufCMessage *msg);
bool rpc_call_send_raw(rpc_call *c, const void *data, size_t len);

/* Unary: done(&reply, call) for a reply that is already serialized (a cached
 * copy): data[0..len) goes out as the reply message verbatim (copied before
 * returning; data may be NULL when len is 0), with status OK unless
 * rpc_call_set_status set another, counted and logged as done(&reply) is.
 * The caller vouches that the bytes are a message of the method's output
 * type: the runtime does not decode them. Same rules as done: once per
 * call, from the handler or, detached, from any thread. On a
 * server-streaming call it is rpc_call_send_raw. */
void rpc_call_reply_raw(rpc_call *c, const void *data, size_t len);

/* Ends a detached or message-driven call with st (and message). Thread-safe;
 * a no-op on a call the transport already ended, but must still be called
 * once so the runtime can release it. */
void rpc_call_finish(rpc_call *c, status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ends with a raw gRPC code (GRPC_CODE_*) for the rare codes that have no
 * status (OUT_OF_RANGE, DATA_LOSS, UNKNOWN). Works on every kind of call,
 * detached or not, like rpc_call_fail. */
void rpc_call_finish_code(rpc_call *c, int grpc_code, const char *msg);

/* True once the client cancelled / the deadline passed / the server is
 * cancelling. Handlers doing long work poll it. */
bool rpc_call_cancelled(const rpc_call *c);

/* ---- statistics (Prometheus names as grpc-go's go-grpc-prometheus) ---- */

/* handled[] and the access log count the code the client saw: ours when our
 * status went out before the deadline; else DEADLINE_EXCEEDED when the call
 * ended at (or within 5% / 50 ms of) the client's deadline, UNAVAILABLE when
 * the server cancelled it at shutdown, CANCELLED otherwise. Unknown methods
 * are logged but have no series. */

enum { RPC_LATENCY_BUCKETS = 13 };
/* Upper bounds in seconds of the latency histogram buckets (+Inf implied). */
extern const double rpc_latency_bounds[RPC_LATENCY_BUCKETS];

typedef struct rpc_method_stats {
    const char *service; /* "herald.v1.ContentService" */
    const char *method;  /* "GetPost" */
    rpc_kind kind;
    uint64_t started;
    uint64_t msg_received;
    uint64_t msg_sent;
    uint64_t handled[GRPC_CODE_COUNT];
    uint64_t bucket[RPC_LATENCY_BUCKETS + 1]; /* non-cumulative; last = +Inf */
    double latency_sum_s;
} rpc_method_stats;

/* Calls fn once per registered method with a consistent-enough snapshot
 * (counters are read one by one, without a lock). Any thread. */
void rpc_server_stats(const rpc_server *s, void (*fn)(const rpc_method_stats *st, void *user),
                      void *user);
/* Calls currently in progress, and worker threads inside a handler. */
int64_t rpc_server_inflight(const rpc_server *s);
int rpc_server_busy_workers(const rpc_server *s);

const char *rpc_kind_name(rpc_kind k); /* "unary", "server_stream", ... */

/* ---- pure helpers (the runtime's rules, exported for tests and exporters) ---- */

/* The log level (LOG_INFO, LOG_WARN or LOG_ERROR of log.h) of a call that
 * ended with grpc_code, per conventions §7. */
int rpc_code_log_level(int grpc_code);

/* Index into rpc_method_stats.bucket for a call of seconds duration. */
int rpc_latency_bucket(double seconds);

/* Deadlines are nanoseconds on gRPC's monotonic clock; INT64_MAX = none.
 * resolve: the client's deadline, or now + default_ms when it sent none.
 * remaining: whole milliseconds left, rounded down (negative once past);
 * INT64_MAX for no deadline. */
int64_t rpc_deadline_resolve_ns(int64_t client_deadline_ns, int64_t now_ns, int64_t default_ms);
int64_t rpc_deadline_remaining_ms(int64_t deadline_ns, int64_t now_ns);

/* Error details of a failed call, as sent in grpc-status-details-bin. */
typedef struct rpc_field_violation {
    const char *field;
    const char *description;
} rpc_field_violation;

typedef struct rpc_error_details {
    const rpc_field_violation *violations; /* BadRequest when n_violations > 0 */
    size_t n_violations;
    const char *reason; /* ErrorInfo when non-NULL */
    const char *domain;
    bool has_retry; /* RetryInfo when true and retry_delay_ms >= 0 */
    int64_t retry_delay_ms;
} rpc_error_details;

/* Serialized google.rpc.Status{code, message, details: [Any]} (details in
 * the order BadRequest, ErrorInfo, RetryInfo; d may be NULL). Returns a
 * malloc'd buffer of *len bytes the caller frees. */
uint8_t *rpc_status_details_encode(int grpc_code, const char *message, const rpc_error_details *d,
                                   size_t *len);

#endif
