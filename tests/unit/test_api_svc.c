/* test_api_svc.c - the four service structs of server/svc_*.c.
 *
 * Each svc_*_service() must hand the runtime the protoc-c service of its
 * proto, every time the same one, and together they must cover exactly the
 * herald.v1 services of the embedded descriptor set (a service missing here
 * would never be served). */
#include <stdbool.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "herald/v1/content.pb-c.h"
#include "herald/v1/learning.pb-c.h"
#include "herald/v1/ops.pb-c.h"
#include "herald/v1/scheduling.pb-c.h"
#include "svc.h"

extern const unsigned char herald_api_descset[];
extern const size_t herald_api_descset_len;

typedef ProtobufCService *(*svc_getter)(void);

static const struct {
    svc_getter get;
    const ProtobufCServiceDescriptor *desc;
} services[] = {
    { svc_content_service, &herald__v1__content_service__descriptor },
    { svc_scheduling_service, &herald__v1__scheduling_service__descriptor },
    { svc_learning_service, &herald__v1__learning_service__descriptor },
    { svc_ops_service, &herald__v1__ops_service__descriptor },
};
enum { N_SERVICES = sizeof(services) / sizeof(services[0]) };

/* Each getter returns one stable struct bound to its own descriptor, with
 * protoc-c's dispatcher (the runtime calls through it). */
static void svc_structs_are_bound(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_SERVICES; i++) {
        ProtobufCService *s = services[i].get();
        assert_non_null(s);
        assert_ptr_equal(s, services[i].get());
        assert_ptr_equal(s->descriptor, services[i].desc);
        assert_ptr_equal(s->invoke, protobuf_c_service_invoke_internal);
        for (size_t j = 0; j < i; j++)
            assert_ptr_not_equal(s, services[j].get());
    }
}

/* The getters cover every herald.v1 service in the served set, and only
 * those. */
static void svc_covers_the_set(void **state)
{
    (void)state;
    Google__Protobuf__FileDescriptorSet *set = google__protobuf__file_descriptor_set__unpack(
        NULL, herald_api_descset_len, herald_api_descset);
    size_t n_herald = 0;

    assert_non_null(set);
    for (size_t f = 0; f < set->n_file; f++) {
        const Google__Protobuf__FileDescriptorProto *fd = set->file[f];
        if (fd->package == NULL || strcmp(fd->package, "herald.v1") != 0)
            continue;
        for (size_t s = 0; s < fd->n_service; s++) {
            bool found = false;
            n_herald++;
            for (size_t i = 0; i < N_SERVICES; i++)
                if (strcmp(services[i].desc->short_name, fd->service[s]->name) == 0)
                    found = true;
            if (!found)
                fail_msg("herald.v1.%s has no svc_*_service()", fd->service[s]->name);
        }
    }
    google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
    assert_int_equal(n_herald, N_SERVICES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(svc_structs_are_bound),
        cmocka_unit_test(svc_covers_the_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
