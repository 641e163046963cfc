/* herald_client.h - the Herald C client: gRPC channels and calls carrying
 * protobuf-c messages, with explicit status.
 *
 * Layers, from the bottom:
 *   - herald_channel: one connection target with its credentials (plaintext
 *     or TLS/mTLS) and an optional bearer token. Open one per server and
 *     share it: every function taking a channel is thread-safe.
 *   - herald_call_unary / herald_call_server_stream: one call over any
 *     protobuf-c message types, by path ("/herald.v1.OpsService/GetProfile"),
 *     with a per-call deadline, metadata and cancellation, returning the gRPC
 *     code and filling a herald_status (message, trailers, google.rpc.Status
 *     details).
 *   - herald_call_*: the general streaming call (send, half-close, receive,
 *     finish) for client-streaming and bidi methods.
 *   - herald_stub: a ProtobufCService whose invoke performs the call, so
 *     protoc-c's generated client wrappers work unchanged:
 *
 *         herald_stub *stub = herald_stub_new(ch, &herald__v1__ops_service__descriptor);
 *         herald__v1__ops_service__get_profile(herald_stub_service(stub), &req, on_reply, &out);
 *         const herald_status *st = herald_stub_status(stub); // code, message, details
 *
 *     The closure runs once per received message (the message is borrowed for
 *     the duration of the closure), then once more with NULL if and only if
 *     the call failed. A unary call therefore sees exactly one closure call on
 *     success and exactly one NULL on failure; a server-streaming method sees
 *     each message in turn. A stub holds the status of its last call, so a stub
 *     belongs to one thread at a time: create one per thread (they are cheap)
 *     over the shared channel.
 *
 * Memory: whatever a function hands out through an `out` parameter belongs to
 * the caller (messages: protobuf_c_message_free_unpacked(msg, NULL)); inputs
 * are borrowed for the duration of the call. Strings returned as const char *
 * are borrowed from the object they came from.
 *
 * Process set-up: herald_client_init() before the first channel and
 * herald_client_shutdown() after the last one is closed (it waits for gRPC's
 * own threads to finish, so leak checkers stay quiet). Both are reference
 * counted and thread-safe. */
#ifndef HERALD_CLIENT_H
#define HERALD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HERALD_CLIENT_VERSION "0.1.0"
#define HERALD_DEFAULT_TARGET "127.0.0.1:50051"

void herald_client_init(void);
void herald_client_shutdown(void);

/* Upper-case gRPC code name ("NOT_FOUND"); "UNKNOWN" when out of range. */
const char *herald_code_name(int code);

/* ---- channels ---- */

typedef struct herald_channel herald_channel;

typedef struct herald_channel_options {
    const char *target;   /* "host:port", "unix:/path", "dns:///name:port"; NULL: 127.0.0.1:50051 */
    bool tls;             /* TLS instead of plaintext (h2c) */
    const char *ca_pem;   /* trusted roots, PEM text; NULL: gRPC's default roots */
    const char *cert_pem; /* client certificate chain for mTLS, PEM text (with key_pem) */
    const char *key_pem;
    const char *server_name;         /* name checked against the server certificate */
    bool insecure_skip_verify;       /* TLS without verifying the server at all: testing only */
    const char *token;               /* sent as "authorization: Bearer <token>" on every call */
    const char *user_agent;          /* prepended to gRPC's user agent; NULL: "herald-client/<v>" */
    int max_recv_bytes;              /* largest reply accepted; 0: 4 MiB (gRPC's default) */
    const char *service_config_json; /* default service config (retry policy); may be NULL */
} herald_channel_options;

/* Zeroes o (plaintext to 127.0.0.1:50051). */
void herald_channel_options_init(herald_channel_options *o);

/* Creates the channel (it connects lazily). Returns false with *err (caller
 * frees) on bad options; the options are copied. Close with
 * herald_channel_close. */
bool herald_channel_open(const herald_channel_options *o, herald_channel **out, char **err);
void herald_channel_close(herald_channel *ch); /* NULL is a no-op; no call may be running */

typedef enum {
    HERALD_CONNECT_READY = 0,
    HERALD_CONNECT_FAILED,  /* a connection attempt failed (refused, TLS handshake...) */
    HERALD_CONNECT_TIMEOUT, /* still not connected when timeout_ms ran out */
} herald_connect_result;

/* Connects now and waits until the channel is ready. fail_fast: return
 * HERALD_CONNECT_FAILED on the first failed attempt instead of retrying
 * until the timeout. */
herald_connect_result herald_channel_connect(herald_channel *ch, int64_t timeout_ms,
                                             bool fail_fast);

/* ---- per-call options, cancellation and status ---- */

typedef struct herald_metadata {
    const char *key; /* lower case; keys ending in "-bin" carry binary values */
    const char *value;
    size_t value_len; /* request metadata: 0 means strlen(value) */
} herald_metadata;

/* A cancellation token: herald_cancel_trigger (any thread, also from a
 * signal-handling thread) cancels every call running with it and makes later
 * calls with it fail with CANCELLED at once. */
typedef struct herald_cancel herald_cancel;
herald_cancel *herald_cancel_new(void);
void herald_cancel_free(herald_cancel *c); /* NULL is a no-op; no call may be using it */
void herald_cancel_trigger(herald_cancel *c);
bool herald_cancel_triggered(const herald_cancel *c);

typedef struct herald_call_options {
    int64_t timeout_ms;              /* deadline, from the start of the call; <= 0: none */
    const herald_metadata *metadata; /* extra request metadata (borrowed) */
    size_t n_metadata;
    bool wait_for_ready;   /* wait for the channel to connect instead of failing fast */
    herald_cancel *cancel; /* may be NULL */
} herald_call_options;

/* A google.rpc.Status detail: a google.protobuf.Any. Unpack value with the
 * descriptor the type URL names (e.g. google.rpc.BadRequest). */
typedef struct herald_status_detail {
    char *type_url;
    uint8_t *value;
    size_t value_len;
} herald_status_detail;

typedef struct herald_status {
    int code;                 /* gRPC status code; 0 = OK */
    char *message;            /* grpc-message ("" when none) */
    herald_metadata *headers; /* initial metadata from the server (owned) */
    size_t n_headers;
    herald_metadata *trailers; /* trailing metadata (owned; grpc-status-details-bin included) */
    size_t n_trailers;
    herald_status_detail *details; /* decoded grpc-status-details-bin, if sent */
    size_t n_details;
    char *debug_error; /* gRPC core's own explanation when it has one, else NULL */
} herald_status;

void herald_status_init(herald_status *st);
/* Frees the contents and re-initialises; fine on an initialised status. */
void herald_status_fini(herald_status *st);
/* First trailer (or header, when not among the trailers) named key, or NULL;
 * *len (may be NULL) gets its length. Borrowed from st. */
const char *herald_status_metadata(const herald_status *st, const char *key, size_t *len);

/* ---- unary and server-streaming calls ---- */

/* Sends req on path and waits for the reply. Returns st->code. On OK *resp
 * is the decoded reply (free with protobuf_c_message_free_unpacked(*resp,
 * NULL)); otherwise *resp is NULL. A reply that does not decode as
 * resp_desc gives INTERNAL. st must be initialised; it is overwritten. o may
 * be NULL (no deadline, no metadata). */
int herald_call_unary(herald_channel *ch, const char *path, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *resp_desc, const herald_call_options *o,
                      ProtobufCMessage **resp, herald_status *st);

/* Called for each streamed message (borrowed for the call). Return false to
 * cancel the stream (the call then ends with CANCELLED). */
typedef bool (*herald_message_fn)(const ProtobufCMessage *msg, void *user);

/* Sends req and hands each reply message to fn until the server ends the
 * stream. Returns st->code. */
int herald_call_server_stream(herald_channel *ch, const char *path, const ProtobufCMessage *req,
                              const ProtobufCMessageDescriptor *resp_desc,
                              const herald_call_options *o, herald_message_fn fn, void *user,
                              herald_status *st);

/* ---- general streaming calls ---- */

/* One call in progress. Owned by one thread; only herald_call_cancel (and a
 * herald_cancel token) may be used from others. */
typedef struct herald_call herald_call;

/* Starts a call (sends the request headers). Returns NULL only when the
 * call could not be created at all (then *err, caller frees). */
herald_call *herald_call_start(herald_channel *ch, const char *path, const herald_call_options *o,
                               char **err);
/* Sends one message; false when the call is already over (read the status
 * with herald_call_finish). */
bool herald_call_send(herald_call *c, const ProtobufCMessage *msg);
/* The same with an already serialized message. */
bool herald_call_send_raw(herald_call *c, const uint8_t *data, size_t len);
/* Half-closes: the client sends nothing more. */
bool herald_call_close_send(herald_call *c);
/* Waits for the next message. 1: *msg is a new message (caller frees);
 * 0: the stream ended (read the status with herald_call_finish);
 * -1: the message did not decode as d (the call is cancelled). */
int herald_call_recv(herald_call *c, const ProtobufCMessageDescriptor *d, ProtobufCMessage **msg);
/* Receives the final status (cancel first to stop a stream early) and
 * returns st->code. Call once; then herald_call_free. */
int herald_call_finish(herald_call *c, herald_status *st);
void herald_call_cancel(herald_call *c); /* thread-safe */
void herald_call_free(herald_call *c);   /* NULL is a no-op; cancels a call not finished */

/* ---- typed stubs over protoc-c's generated service wrappers ---- */

typedef struct herald_stub herald_stub;

/* A stub for service d over ch (which must outlive it). */
herald_stub *herald_stub_new(herald_channel *ch, const ProtobufCServiceDescriptor *d);
/* Frees the stub; protobuf_c_service_destroy(herald_stub_service(s)) does
 * the same. NULL is a no-op. */
void herald_stub_free(herald_stub *s);
/* The ProtobufCService to pass to the generated wrappers. */
ProtobufCService *herald_stub_service(herald_stub *s);
/* Options for the following calls; copied (metadata included). NULL resets. */
void herald_stub_set_options(herald_stub *s, const herald_call_options *o);
/* The status of the last call made through the stub. */
const herald_status *herald_stub_status(const herald_stub *s);

#ifdef __cplusplus
}
#endif

#endif
