/* svc.h - Herald's four API services as protoc-c service structs.
 *
 * Each svc_<name>_service() returns the one shared, stateless service struct
 * of proto/herald/v1/<name>.proto, ready for rpc_server_add_service(). Its
 * handler slots are the functions later issues write in server/svc_<name>.c;
 * a slot still NULL answers UNIMPLEMENTED "<method> is not implemented yet"
 * (the runtime does that). The structs are static and never change after
 * start-up: any thread may call these functions, and the returned pointer
 * lives for the whole process (no destroy).
 *
 * The contract itself (messages, limits, scopes, idempotency) is in the
 * .proto comments and docs/api.md. */
#ifndef HERALD_SVC_H
#define HERALD_SVC_H

#include <protobuf-c/protobuf-c.h>

/* herald.v1.ContentService: drafts, gates, review, catalog. */
ProtobufCService *svc_content_service(void);
/* herald.v1.SchedulingService: slots, leases, publish results, policy. */
ProtobufCService *svc_scheduling_service(void);
/* herald.v1.LearningService: engagement, outcomes, arms, Recommend. */
ProtobufCService *svc_learning_service(void);
/* herald.v1.OpsService: profiles, status, SLOs, slow queries, config. */
ProtobufCService *svc_ops_service(void);

/* Presence of an optional field. The API writes a field that may be unknown
 * as a single-member oneof named <field>_opt (protoc-c 1.4.1 cannot generate
 * proto3 `optional`), so protoc-c gives the message a <field>_opt_case
 * member that is 0 (..._NOT_SET) when the field was not sent:
 *     if (SVC_HAS(obs, likes)) use(obs->likes);
 * To set one in a reply, assign the value and the case constant, e.g.
 *     out.reward = r;
 *     out.reward_opt_case = HERALD__V1__POST_OUTCOME__REWARD_OPT_REWARD; */
#define SVC_HAS(msg, field) ((msg)->field##_opt_case != 0)

#endif
