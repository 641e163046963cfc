// ref.h - reference gRPC servers for bench/run: grpc.health.v1.Health/Check
// answering SERVING for any service name, written the way the grpc++ 1.51
// examples write a server, so Herald's Health/Check is compared with what a
// C++ user gets out of the box. ref_main.cc holds the shared start-up and
// shutdown; each server file supplies the service.
#ifndef BENCH_REF_H
#define BENCH_REF_H

#include <memory>

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/service_type.h>

// The Health service implementation (sync or callback API).
std::unique_ptr<grpc::Service> ref_service();
// "sync" or "callback", for the start-up line.
const char *ref_api_name();

#endif
