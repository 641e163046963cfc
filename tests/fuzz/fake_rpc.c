/* fake_rpc.c - the per-call half of server/rpc.h without gRPC, for
 * fuzz_request: a call whose request bytes come from the fuzzer, whose
 * worker is a real worker without a database (heraldd started with no
 * DATABASE_URL), and whose status and replies are kept for the harness to
 * check. Single-threaded: one call at a time. */
#include "fake_rpc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void fake_call_init(rpc_call *c, arena *a, const uint8_t *req, size_t len, void *worker,
                    const char *path)
{
    memset(c, 0, sizeof *c);
    c->arena = a;
    c->req = req;
    c->req_len = len;
    c->worker = worker;
    c->path = path;
}

void fake_call_fini(rpc_call *c)
{
    free(c->msg);
    c->msg = NULL;
}

const char *rpc_call_path(const rpc_call *c)
{
    return c->path;
}

const char *rpc_call_service(const rpc_call *c)
{
    (void)c;
    return "herald.v1.Fuzz";
}

const char *rpc_call_method(const rpc_call *c)
{
    const char *slash = strrchr(c->path, '/');
    return slash != NULL ? slash + 1 : c->path;
}

rpc_kind rpc_call_kind(const rpc_call *c)
{
    return c->kind;
}

const char *rpc_call_peer(const rpc_call *c)
{
    (void)c;
    return "ipv4:127.0.0.1:40000";
}

const char *rpc_call_request_id(const rpc_call *c)
{
    (void)c;
    return "fuzz-request";
}

int64_t rpc_call_remaining_ms(const rpc_call *c)
{
    (void)c;
    return 30000;
}

bool rpc_call_client_deadline(const rpc_call *c)
{
    (void)c;
    return false;
}

const char *rpc_call_metadata(const rpc_call *c, const char *key, size_t *len)
{
    (void)c;
    (void)key;
    if (len != NULL)
        *len = 0;
    return NULL;
}

void *rpc_call_worker(const rpc_call *c)
{
    return c->worker;
}

int rpc_call_worker_index(const rpc_call *c)
{
    return c->worker != NULL ? 0 : -1;
}

arena *rpc_call_arena(rpc_call *c)
{
    return c->arena;
}

size_t rpc_call_request_bytes(const rpc_call *c)
{
    return c->req_len;
}

const uint8_t *rpc_call_request_data(const rpc_call *c, size_t *len)
{
    if (len != NULL)
        *len = c->req != NULL ? c->req_len : 0;
    return c->req;
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
    (void)c;
    (void)name;
}

void rpc_call_set_statusv(rpc_call *c, status st, const char *fmt, va_list ap)
{
    free(c->msg);
    c->msg = xvasprintf(fmt, ap);
    c->st = st;
    c->status_set = true;
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
    rpc_call_set_statusv(c, st, fmt, ap);
    va_end(ap);
    c->completions++;
}

void rpc_call_add_trailer(rpc_call *c, const char *key, const char *val, size_t len)
{
    (void)c;
    (void)key;
    (void)val;
    (void)len;
}

void rpc_call_add_violation(rpc_call *c, const char *field, const char *description)
{
    FUZZ_FAKE_CHECK(field != NULL && description != NULL);
    FUZZ_FAKE_CHECK(utf8_valid(field, strlen(field)));
    FUZZ_FAKE_CHECK(utf8_valid(description, strlen(description)));
    c->violations++;
}

void rpc_call_set_error_info(rpc_call *c, const char *reason, const char *domain)
{
    (void)c;
    FUZZ_FAKE_CHECK(reason != NULL && domain != NULL);
}

void rpc_call_set_retry_delay_ms(rpc_call *c, int64_t ms)
{
    (void)c;
    (void)ms;
}

void rpc_call_detach(rpc_call *c, rpc_done_fn on_done, void *user)
{
    (void)on_done;
    (void)user;
    c->detached = true;
}

bool rpc_call_send(rpc_call *c, const ProtobufCMessage *msg)
{
    fake_call_reply(c, msg);
    return true;
}

bool rpc_call_send_raw(rpc_call *c, const void *data, size_t len)
{
    (void)c;
    (void)data;
    (void)len;
    c->replies++;
    return true;
}

void rpc_call_finish(rpc_call *c, status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rpc_call_set_statusv(c, st, fmt, ap);
    va_end(ap);
    c->completions++;
}

void rpc_call_finish_code(rpc_call *c, int grpc_code, const char *msg)
{
    free(c->msg);
    c->msg = xstrdup(msg != NULL ? msg : "");
    c->raw_code = grpc_code;
    c->status_set = true;
    c->completions++;
}

bool rpc_call_cancelled(const rpc_call *c)
{
    (void)c;
    return false;
}

/* What the runtime does with a reply: pack it (into a throwaway buffer). */
void fake_call_reply(rpc_call *c, const ProtobufCMessage *msg)
{
    if (msg == NULL) {
        c->null_done = true;
        c->completions++;
        return;
    }
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(n ? n : 1);
    FUZZ_FAKE_CHECK(buf != NULL);
    FUZZ_FAKE_CHECK(protobuf_c_message_pack(msg, buf) == n);
    free(buf);
    c->replies++;
    if (c->kind == RPC_UNARY)
        c->completions++;
}

/* Server-wide figures some background code reads (pregen.c): an idle
 * server. */
int rpc_server_busy_workers(const rpc_server *s)
{
    (void)s;
    return 0;
}

int64_t rpc_server_inflight(const rpc_server *s)
{
    (void)s;
    return 0;
}
