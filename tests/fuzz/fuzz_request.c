/* fuzz_request.c - decode and validate every herald.v1 request, and run
 * every implemented handler on it.
 *
 * Input: byte 0 picks a method of the four herald.v1 services (in
 * descriptor order); the rest is its serialized request. As the runtime
 * does, the request is decoded into a bounded arena (call_arena_bytes'
 * default, 16 MiB). Then:
 *   1. the handler toolkit's checks alone: hv_init (UTF-8 and NUL in every
 *      string) and hv_failed, which must end the call with INVALID_ARGUMENT
 *      and at least one field violation when anything was wrong;
 *   2. the method's handler, through protoc-c's invoke, on a worker that
 *      has no database (heraldd without DATABASE_URL) and no Redis, as the
 *      runtime would call it (client-streaming and bidi methods excluded:
 *      the runtime never calls their slots). A unary handler must complete
 *      the call exactly once, never end with INTERNAL or UNKNOWN for what a
 *      client sent, and done(NULL) only after setting a status.
 * Replies are packed as the runtime packs them. */
#include <string.h>

#include "config.h"
#include "descset.h"
#include "fake_rpc.h"
#include "fuzz.h"
#include "handler.h"
#include "log.h"
#include "svc.h"
#include "worker.h"

enum { ARENA_BYTES = 16 << 20, MAX_METHODS = 256 };

typedef struct method {
    ProtobufCService *svc;
    unsigned index;
    rpc_kind kind;
    char path[160];
} method;

static method methods[MAX_METHODS];
static size_t n_methods;
static config cfg;
static worker_shared shared;
static worker *w;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    atomic_store(&log_level, LOG_OFF);
    config_cli cli;
    char *err = NULL;
    char *none[] = { NULL };
    if (config_load(&cfg, &cli, 0, none, none, &err) != 0) {
        fprintf(stderr, "config_load: %s\n", err);
        abort();
    }
    cache_options co;
    cache_options_init(&co);
    co.url = "";
    shared.cfg = &cfg;
    shared.cache = cache_new(&co, &err);
    FUZZ_CHECK(shared.cache != NULL);
    shared.have_db = false;
    atomic_init(&shared.schema, WORKER_SCHEMA_NO_DB);
    w = worker_new(0, &shared);

    ProtobufCService *svcs[] = { svc_content_service(), svc_scheduling_service(),
                                 svc_learning_service(), svc_ops_service() };
    for (size_t i = 0; i < sizeof svcs / sizeof svcs[0]; i++) {
        const ProtobufCServiceDescriptor *d = svcs[i]->descriptor;
        for (unsigned j = 0; j < d->n_methods && n_methods < MAX_METHODS; j++) {
            method *m = &methods[n_methods++];
            bool cs = false, ss = false;
            FUZZ_CHECK(
                descset_method_streaming(descset_api(), d->name, d->methods[j].name, &cs, &ss));
            m->svc = svcs[i];
            m->index = j;
            m->kind = cs ? (ss ? RPC_BIDI_STREAM : RPC_CLIENT_STREAM)
                         : (ss ? RPC_SERVER_STREAM : RPC_UNARY);
            snprintf(m->path, sizeof m->path, "/%s/%s", d->name, d->methods[j].name);
        }
    }
    return 0;
}

static void closure(const ProtobufCMessage *msg, void *data)
{
    fake_call_reply(data, msg);
}

static bool slot_set(const ProtobufCService *svc, unsigned index)
{
    typedef void (*slot_fn)(void);
    const slot_fn *slots = (const slot_fn *)(svc + 1);
    return slots[index] != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || n_methods == 0)
        return 0;
    const method *m = &methods[data[0] % n_methods];
    const ProtobufCMessageDescriptor *in = m->svc->descriptor->methods[m->index].input;
    const uint8_t *req = data + 1;
    size_t len = size - 1;
    arena *a = arena_new(ARENA_BYTES);
    ProtobufCMessage *msg = protobuf_c_message_unpack(in, arena_allocator(a), len, req);
    if (msg == NULL) {
        arena_free(a);
        return 0;
    }

    rpc_call call;
    fake_call_init(&call, a, req, len, w, m->path);
    call.kind = m->kind;
    hv v;
    hv_init(&v, &call, msg);
    if (hv_failed(&v)) {
        FUZZ_CHECK(call.st == ST_INVALID && call.completions == 1 && call.violations > 0);
    } else {
        FUZZ_CHECK(call.completions == 0 && !call.status_set);
    }
    fake_call_fini(&call);

    if ((m->kind == RPC_UNARY || m->kind == RPC_SERVER_STREAM) && slot_set(m->svc, m->index)) {
        fake_call_init(&call, a, req, len, w, m->path);
        call.kind = m->kind;
        m->svc->invoke(m->svc, m->index, msg, closure, &call);
        if (!call.detached) {
            if (m->kind == RPC_UNARY && call.completions != 1)
                fprintf(stderr, "%s completed %d times\n", m->path, call.completions);
            FUZZ_CHECK(m->kind != RPC_UNARY || call.completions == 1);
            FUZZ_CHECK(call.completions <= 1);
            if (call.null_done)
                FUZZ_CHECK(call.status_set && call.st != ST_OK);
            bool internal = call.status_set && (call.raw_code == GRPC_CODE_UNKNOWN ||
                                                (call.raw_code == 0 && call.st == ST_INTERNAL));
            if (internal)
                fprintf(stderr, "%s ended INTERNAL/UNKNOWN: %s\n", m->path, call.msg);
            FUZZ_CHECK(!internal);
        }
        fake_call_fini(&call);
    }
    arena_free(a);
    return 0;
}
