// health_cb.cc - Health/Check on grpc++'s callback API: the reply is finished
// inline from the reactor, on core's own (EventEngine) threads.
#include "grpc/health/v1/health.grpc.pb.h"
#include "ref.h"

namespace
{

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

class HealthCallback final : public Health::CallbackService
{
  public:
    grpc::ServerUnaryReactor *Check(grpc::CallbackServerContext *ctx, const HealthCheckRequest *,
                                    HealthCheckResponse *resp) override
    {
        resp->set_status(HealthCheckResponse::SERVING);
        grpc::ServerUnaryReactor *r = ctx->DefaultReactor();
        r->Finish(grpc::Status::OK);
        return r;
    }
};

} // namespace

std::unique_ptr<grpc::Service> ref_service()
{
    return std::make_unique<HealthCallback>();
}

const char *ref_api_name()
{
    return "callback";
}
