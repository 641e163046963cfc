/* fuzz_llm_parse.c - the LLM response parser (server/llm_parse.h).
 *
 * Invariants: a parsed text is valid UTF-8 without NUL bytes and its
 * length is what it says; an error message never holds the secret, is
 * valid UTF-8 without control characters, and respects its size bound;
 * llm_clean_text never grows its input. */
#include <string.h>

#include "fuzz.h"
#include "llm_parse.h"
#include "util.h"

#define SECRET "sk-fuzz-SECRET-9f8e7d"
#define MSG_MAX 120

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    llm_parsed p;
    char err[160];
    status st = llm_parse_response(body, size, &p, err, sizeof err);
    FUZZ_CHECK(st == ST_OK || st == ST_INTERNAL);
    if (st == ST_OK) {
        FUZZ_CHECK(p.text != NULL);
        FUZZ_CHECK(strlen(p.text) == p.len);
        FUZZ_CHECK(utf8_valid(p.text, p.len));
        FUZZ_CHECK(p.len > 0);
    } else {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
    }
    llm_parsed_fini(&p);

    char *msg = llm_parse_error_message(body, size, SECRET, MSG_MAX);
    if (msg != NULL) {
        size_t n = strlen(msg);
        FUZZ_CHECK(n <= MSG_MAX + 3);
        FUZZ_CHECK(strstr(msg, SECRET) == NULL);
        FUZZ_CHECK(utf8_valid(msg, n));
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK((unsigned char)msg[i] >= 0x20 && msg[i] != 0x7f);
        free(msg);
    }

    char *copy = malloc(size + 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    size_t len = strlen(copy);
    size_t out = llm_clean_text(copy, len);
    FUZZ_CHECK(out <= len);
    FUZZ_CHECK(strlen(copy) == out);
    free(copy);
    return 0;
}
