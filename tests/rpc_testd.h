/* rpc_testd.h - herald.test.v1.TestService over the rpc runtime, for the
 * runtime's own tests: the rpc_testd binary (driven by the interop tests)
 * and the in-process loopback test share it.
 *
 * Echo semantics are those of tests/proto/herald/test/v1/test.proto, plus:
 *   - message "health:NAME=SERVING" / "health:NAME=NOT_SERVING" sets that
 *     health entry before replying (Watch push tests);
 *   - a failing Echo (fail_code) carries ErrorInfo{reason "TEST_FAILURE",
 *     domain "herald.test.v1"}, a BadRequest violation on field "fail_code"
 *     when the code is INVALID_ARGUMENT, and a 250 ms RetryInfo (and
 *     grpc-retry-pushback-ms) when it is UNAVAILABLE or RESOURCE_EXHAUSTED;
 *   - sleeps end early once the call is cancelled or past its deadline; an
 *     Echo whose sleep the deadline cut fails with DEADLINE_EXCEEDED.
 * Detached replies and paced server streams run on helper threads that
 * testd_wait_idle waits for. Thread-safe as the runtime requires. */
#ifndef HERALD_RPC_TESTD_H
#define HERALD_RPC_TESTD_H

#include "descset.h"
#include "health.h"
#include "rpc.h"
#include "status.h"

typedef struct testd testd;

/* h is borrowed (may be NULL: "health:" messages are then plain echoes). */
testd *testd_new(health *h);
/* Waits up to timeout_ms for helper threads, then frees. NULL is a no-op. */
void testd_free(testd *t);

/* The embedded descriptor set: test.proto, health.proto and both
 * reflection.protos with their imports. Borrowed from t. */
const descset *testd_descriptors(const testd *t);

/* Adds TestService (workers pool) and its Collect and Chat stream handlers. */
status testd_register(testd *t, rpc_server *s, char **err);

/* Waits until no helper thread runs; false on timeout. */
bool testd_wait_idle(testd *t, int timeout_ms);

#endif
