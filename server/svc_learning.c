/* svc_learning.c - herald.v1.LearningService handlers (proto/herald/v1/learning.proto).
 *
 * Ingest, outcomes, arms, Recommend, insights, sentiment, trends: issue 6.
 * Every slot below is NULL until the issue that builds the method fills it;
 * the runtime answers UNIMPLEMENTED for a NULL slot. Handlers follow the
 * contract in rpc.h and run on worker threads. */
#include <stddef.h>

#include "herald/v1/learning.pb-c.h"
#include "svc.h"

/* clang-format off */
static Herald__V1__LearningService_Service svc = {
    .base = HERALD__V1__LEARNING_SERVICE__BASE_INIT,
    .record_engagement = NULL,
    .record_follower_snapshots = NULL,
    .record_replies = NULL,
    .recompute_outcomes = NULL,
    .recommend = NULL,
    .get_insights = NULL,
    .get_best_times = NULL,
    .list_arms = NULL,
    .set_arm_enabled = NULL,
    .list_trends = NULL,
    .upsert_topics = NULL,
    .update_audience = NULL,
};
/* clang-format on */

ProtobufCService *svc_learning_service(void)
{
    return &svc.base;
}
