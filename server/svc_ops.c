/* svc_ops.c - herald.v1.OpsService handlers (proto/herald/v1/ops.proto).
 *
 * Profiles: issue 4; status, SLOs, slow queries, pause/resume: issue 8.
 * Every slot below is NULL until the issue that builds the method fills it;
 * the runtime answers UNIMPLEMENTED for a NULL slot. Handlers follow the
 * contract in rpc.h and run on worker threads. */
#include <stddef.h>

#include "herald/v1/ops.pb-c.h"
#include "svc.h"

/* clang-format off */
static Herald__V1__OpsService_Service svc = {
    .base = HERALD__V1__OPS_SERVICE__BASE_INIT,
    .create_profile = NULL,
    .get_profile = NULL,
    .list_profiles = NULL,
    .update_profile = NULL,
    .pause_profile = NULL,
    .resume_profile = NULL,
    .get_status = NULL,
    .get_slo_report = NULL,
    .list_slow_queries = NULL,
    .get_config = NULL,
};
/* clang-format on */

ProtobufCService *svc_ops_service(void)
{
    return &svc.base;
}
