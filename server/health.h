/* health.h - grpc.health.v1.Health: Check and Watch over a status table.
 *
 * The table maps service names ("", "liveness", "readiness", each service's
 * full name) to a state. Check reads it (no I/O); Watch sends the current
 * state, then one message per change (repeats dropped); an unknown name gets
 * SERVICE_UNKNOWN on Watch with the stream left open (and NOT_FOUND on
 * Check). Background checkers call health_set from any thread; the table is
 * guarded by one mutex. Serve it on RPC_POOL_PRIORITY. */
#ifndef HERALD_HEALTH_H
#define HERALD_HEALTH_H

#include <protobuf-c/protobuf-c.h>

typedef struct health health;

typedef enum {
    HEALTH_UNKNOWN = 0,
    HEALTH_SERVING = 1,
    HEALTH_NOT_SERVING = 2,
    HEALTH_SERVICE_UNKNOWN = 3, /* Watch only: name not registered */
} health_state;

health *health_new(void);
/* Frees the table. Every Watch must already be finished (health_shutdown,
 * then rpc_server_shutdown). NULL is a no-op. */
void health_free(health *h);

/* Sets (registering it if new) the state of name and pushes the change to
 * its watchers. Ignored after health_shutdown. Any thread. */
void health_set(health *h, const char *name, health_state st);
/* Sets every registered name. */
void health_set_all(health *h, health_state st);
/* HEALTH_SERVICE_UNKNOWN when name is not registered. */
health_state health_get(health *h, const char *name);

/* Shutdown, step 1: every name NOT_SERVING for good, pushed to watchers. */
void health_begin_shutdown(health *h);
/* Shutdown, step 2: end every open Watch stream (UNAVAILABLE "server
 * shutting down") so draining need not wait for them. Any thread. */
void health_finish_watchers(health *h);

/* The protoc-c service bound to h (valid while h lives), for
 * rpc_server_add_service(..., RPC_POOL_PRIORITY). */
ProtobufCService *health_service(health *h);

#endif
