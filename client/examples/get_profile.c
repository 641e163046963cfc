/* get_profile.c - libherald_client through protoc-c's generated stubs.
 *
 *   cc get_profile.c $(pkg-config --cflags --libs herald_client) -o get_profile
 *   ./get_profile 127.0.0.1:50051 sleep-coach
 *
 * Checks the server's health, then calls OpsService.GetProfile through the
 * generated wrapper herald__v1__ops_service__get_profile() and prints the
 * profile or the status (code, message, error details). Exit status: 0 when
 * the profile was found, 1 otherwise. */
#include <stdio.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "herald/v1/ops.pb-c.h"
#include "herald_client.h"

static void on_profile(const Herald__V1__Profile *p, void *data)
{
    int *found = data;
    if (!p)
        return; /* the call failed: herald_stub_status() says why */
    *found = 1;
    printf("%s (%s) on platform %d, revision %lld\n", p->profile_id, p->display_name,
           (int)p->platform, (long long)p->revision);
}

int main(int argc, char **argv)
{
    const char *target = argc > 1 ? argv[1] : HERALD_DEFAULT_TARGET;
    const char *id = argc > 2 ? argv[2] : "sleep-coach";
    herald_channel *ch = NULL;
    char *err = NULL;
    int found = 0;

    herald_client_init();
    herald_channel_options o;
    herald_channel_options_init(&o);
    o.target = target;
    if (!herald_channel_open(&o, &ch, &err)) {
        fprintf(stderr, "open: %s\n", err);
        herald_client_shutdown();
        return 1;
    }

    /* Health/Check with the untyped call API. */
    Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    ProtobufCMessage *hresp = NULL;
    herald_status st;
    herald_status_init(&st);
    herald_call_options co = { .timeout_ms = 2000 };
    herald_call_unary(ch, "/grpc.health.v1.Health/Check", &hreq.base,
                      &grpc__health__v1__health_check_response__descriptor, &co, &hresp, &st);
    printf("health: %s\n", st.code == 0 ? "ok" : herald_code_name(st.code));
    if (hresp)
        protobuf_c_message_free_unpacked(hresp, NULL);
    herald_status_fini(&st);

    /* GetProfile through the generated stub. */
    herald_stub *stub = herald_stub_new(ch, &herald__v1__ops_service__descriptor);
    herald_stub_set_options(stub, &co);
    Herald__V1__GetProfileRequest req = HERALD__V1__GET_PROFILE_REQUEST__INIT;
    req.profile_id = (char *)id;
    herald__v1__ops_service__get_profile(herald_stub_service(stub), &req, on_profile, &found);
    const herald_status *s = herald_stub_status(stub);
    if (s->code != 0) {
        printf("GetProfile: %s: %s\n", herald_code_name(s->code), s->message);
        for (size_t i = 0; i < s->n_details; i++)
            printf("  detail %s (%zu bytes)\n", s->details[i].type_url, s->details[i].value_len);
    }
    herald_stub_free(stub);
    herald_channel_close(ch);
    herald_client_shutdown();
    return found ? 0 : 1;
}
