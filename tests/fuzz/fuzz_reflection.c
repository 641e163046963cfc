/* fuzz_reflection.c - reflection_answer over hostile request streams.
 *
 * Input: a stream of ServerReflectionRequests, each prefixed by a 2-byte
 * big-endian length (the last one takes whatever is left), answered in
 * order with one shared "already sent" set, as one stream would be. Every
 * ST_OK answer must be a ServerReflectionResponse that decodes; anything
 * else must be ST_INVALID with no output. */
#include <stdlib.h>

#include "descset.h"
#include "fuzz.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "reflection.h"

static reflection *refl;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    refl = reflection_new(descset_api());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reflection_sent *sent = reflection_sent_new();
    size_t pos = 0;
    for (int n = 0; pos < size && n < 32; n++) {
        size_t len = size - pos;
        if (len >= 2) {
            size_t want = (size_t)data[pos] << 8 | data[pos + 1];
            pos += 2;
            len = want < size - pos ? want : size - pos;
        }
        uint8_t *out = NULL;
        size_t out_len = 0;
        status st = reflection_answer(refl, sent, data + pos, len, &out, &out_len);
        FUZZ_CHECK(st == ST_OK || st == ST_INVALID);
        if (st == ST_OK) {
            Grpc__Reflection__V1__ServerReflectionResponse *resp =
                grpc__reflection__v1__server_reflection_response__unpack(NULL, out_len, out);
            FUZZ_CHECK(resp != NULL);
            grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
        } else {
            FUZZ_CHECK(out == NULL);
        }
        free(out);
        pos += len;
    }
    reflection_sent_free(sent);
    return 0;
}
