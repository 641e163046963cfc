// ref_main.cc - start-up and shutdown of the reference servers.
//
//   bench_health_{sync,cb} [--listen HOST:PORT] [--port-file FILE]
//
// Listens in plaintext (default 127.0.0.1:0, a free port), writes the bound
// port to FILE once serving, and on SIGTERM or SIGINT shuts down (in-flight
// calls get 2 s) and exits 0. Signals are blocked before gRPC starts its
// threads and taken by one thread with sigwait.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "ref.h"

static int usage()
{
    std::fprintf(stderr, "usage: bench_health_%s [--listen HOST:PORT] [--port-file FILE]\n",
                 ref_api_name());
    return 2;
}

int main(int argc, char **argv)
{
    std::string listen = "127.0.0.1:0";
    std::string port_file;
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen = argv[++i];
        else if (std::strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
            port_file = argv[++i];
        else
            return usage();
    }

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    std::unique_ptr<grpc::Service> svc = ref_service();
    int port = 0;
    grpc::ServerBuilder b;
    b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    b.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
    b.RegisterService(svc.get());
    std::unique_ptr<grpc::Server> server = b.BuildAndStart();
    if (server == nullptr || port == 0) {
        std::fprintf(stderr, "bench_health_%s: cannot listen on %s\n", ref_api_name(),
                     listen.c_str());
        return 1;
    }
    if (!port_file.empty()) {
        std::string tmp = port_file + ".tmp";
        {
            std::ofstream f(tmp);
            f << port << "\n";
        }
        std::rename(tmp.c_str(), port_file.c_str());
    }
    std::fprintf(stderr, "bench_health_%s: serving on port %d\n", ref_api_name(), port);

    std::thread waiter([&server, &sigs]() {
        int sig = 0;
        sigwait(&sigs, &sig);
        server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    });
    server->Wait();
    waiter.join();
    return 0;
}
