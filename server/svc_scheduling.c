/* svc_scheduling.c - herald.v1.SchedulingService handlers (proto/herald/v1/scheduling.proto).
 *
 * Slots, leases, publish results, policy, reply opportunities: issue 7.
 * Every slot below is NULL until the issue that builds the method fills it;
 * the runtime answers UNIMPLEMENTED for a NULL slot. Handlers follow the
 * contract in rpc.h and run on worker threads. */
#include <stddef.h>

#include "herald/v1/scheduling.pb-c.h"
#include "svc.h"

/* clang-format off */
static Herald__V1__SchedulingService_Service svc = {
    .base = HERALD__V1__SCHEDULING_SERVICE__BASE_INIT,
    .get_next_slots = NULL,
    .schedule_post = NULL,
    .claim_due_work = NULL,
    .renew_lease = NULL,
    .report_publish_result = NULL,
    .reconcile_published = NULL,
    .report_platform_signal = NULL,
    .get_posting_policy = NULL,
    .set_posting_policy = NULL,
    .get_quota_status = NULL,
    .upsert_reply_opportunities = NULL,
    .list_reply_opportunities = NULL,
};
/* clang-format on */

ProtobufCService *svc_scheduling_service(void)
{
    return &svc.base;
}
