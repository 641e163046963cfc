/* fuzz_auth.c - the token list grammar and the bearer check (server/auth.h).
 *
 * Input: a token list, then a NUL byte, then an authorization value, then
 * optionally a NUL byte and a method path. Invariants: a list that parses
 * keeps one hash per entry; auth off lets everything pass; a failure is
 * UNAUTHENTICATED or PERMISSION_DENIED with a reason, PERMISSION_DENIED
 * names the token, and OK on a guarded method names it too; an error
 * message from a bad list never echoes the list's last token field. */
#include <string.h>

#include "auth.h"
#include "fuzz.h"

static const char *const paths[] = {
    "/herald.v1.OpsService/GetProfile",
    "/herald.v1.OpsService/CreateProfile",
    "/herald.v1.ContentService/GenerateDraft",
    "/herald.v1.SchedulingService/ClaimDueWork",
    "/grpc.health.v1.Health/Check",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *list = buf;
    const char *hdr = NULL;
    size_t hdr_len = 0;
    const char *path = paths[data[0] % (sizeof paths / sizeof paths[0])];
    size_t list_len = strlen(buf);
    if (list_len < size) {
        hdr = buf + list_len + 1;
        hdr_len = size - list_len - 1;
        const char *nul = memchr(hdr, '\0', hdr_len);
        if (nul != NULL) {
            path = nul + 1;
            hdr_len = (size_t)(nul - hdr);
        }
    }

    char *err = NULL;
    auth_reflection mode = (data[0] & 0x80) ? AUTH_REFLECTION_TOKEN : AUTH_REFLECTION_OPEN;
    auth *a = auth_new(descset_api(), list, mode, &err);
    if (a == NULL) {
        FUZZ_CHECK(err != NULL);
        /* A failure names entries by position and name, never the secret:
         * the text after the last ':' of the list (when 16+ chars long) must
         * not appear in the message. */
        const char *colon = strrchr(list, ':');
        if (colon != NULL && strlen(colon + 1) >= 16) {
            char tail[24];
            memcpy(tail, colon + 1, 16);
            tail[16] = '\0';
            /* (unless the same text is also a name or scope before it) */
            char *head = strndup(list, (size_t)(colon - list));
            if (head != NULL && strpbrk(tail, " \t\r\n,#") == NULL && strstr(head, tail) == NULL)
                FUZZ_CHECK(strstr(err, tail) == NULL);
            free(head);
        }
        free(err);
        free(buf);
        return 0;
    }
    FUZZ_CHECK(err == NULL);
    const char *who = NULL, *reason = NULL;
    status st = auth_decide(a, path, hdr, hdr_len, &who, &reason);
    unsigned need = auth_required_scope(a, path);
    if (!auth_enabled(a) || need == AUTH_SCOPE_OPEN) {
        FUZZ_CHECK(st == ST_OK && who == NULL && reason == NULL);
    } else if (st == ST_OK) {
        FUZZ_CHECK(who != NULL && reason == NULL);
    } else if (st == ST_PERMISSION_DENIED) {
        FUZZ_CHECK(who != NULL && reason != NULL);
    } else {
        FUZZ_CHECK(st == ST_UNAUTHENTICATED && who == NULL && reason != NULL);
    }
    auth_free(a);
    free(buf);
    return 0;
}
