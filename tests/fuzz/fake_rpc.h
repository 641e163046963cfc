/* fake_rpc.h - a stand-in for the rpc runtime's per-call API (rpc.h), so
 * that handlers run in a fuzz target without gRPC. See fake_rpc.c. */
#ifndef HERALD_FAKE_RPC_H
#define HERALD_FAKE_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "rpc.h"

#define FUZZ_FAKE_CHECK(cond)                                                            \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

struct rpc_call {
    const char *path;
    rpc_kind kind;
    arena *arena;
    const uint8_t *req;
    size_t req_len;
    void *worker;
    void *user;
    /* outcome */
    status st;
    int raw_code; /* rpc_call_finish_code; 0 otherwise */
    char *msg;
    bool status_set;
    bool detached;
    int completions; /* done(NULL), rpc_call_fail, rpc_call_finish, unary replies */
    int replies;
    int violations;
    bool null_done; /* done(NULL, call) was used */
};

void fake_call_init(rpc_call *c, arena *a, const uint8_t *req, size_t len, void *worker,
                    const char *path);
void fake_call_fini(rpc_call *c);
/* The closure protoc-c hands handlers: done(msg, call). */
void fake_call_reply(rpc_call *c, const ProtobufCMessage *msg);

#endif
