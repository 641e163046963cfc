// health_sync.cc - Health/Check on grpc++'s synchronous API: core polls on
// grpc++'s own thread pool and runs the handler on one of its threads.
#include "grpc/health/v1/health.grpc.pb.h"
#include "ref.h"

namespace
{

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

class HealthSync final : public Health::Service
{
  public:
    grpc::Status Check(grpc::ServerContext *, const HealthCheckRequest *,
                       HealthCheckResponse *resp) override
    {
        resp->set_status(HealthCheckResponse::SERVING);
        return grpc::Status::OK;
    }
};

} // namespace

std::unique_ptr<grpc::Service> ref_service()
{
    return std::make_unique<HealthSync>();
}

const char *ref_api_name()
{
    return "sync";
}
