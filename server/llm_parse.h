/* llm_parse.h - parsing OpenAI-compatible chat-completions responses.
 *
 * Pure functions over a byte buffer (json-c; no I/O, no global state), so
 * they can be fuzzed on their own. Any thread.
 *
 * A usable response is a JSON object whose choices[0].message.content is a
 * non-empty string, or an array of parts whose "text" members are joined
 * ({"type":"text","text":"..."}, the newer content-parts form). Everything
 * else is malformed, which the LLM provider reports as INTERNAL
 * (conventions §3: "malformed upstream JSON"). */
#ifndef HERALD_LLM_PARSE_H
#define HERALD_LLM_PARSE_H

#include <stddef.h>

#include "status.h"

/* Nesting deeper than this is malformed (a response is 5 levels deep). */
#define LLM_PARSE_MAX_DEPTH 32

typedef struct llm_parsed {
    char *text;          /* owned; cleaned (llm_clean_text), valid UTF-8, no NUL */
    size_t len;          /* bytes */
    char *model;         /* owned; the "model" member, or NULL */
    char *finish_reason; /* owned; choices[0].finish_reason, or NULL */
} llm_parsed;

/* Parses body[0..len). ST_OK fills *out (release with llm_parsed_fini);
 * ST_INTERNAL otherwise, with the reason in err (errcap bytes; a short
 * phrase such as "malformed JSON at byte 17: unexpected end of data" or
 * "no choices[0].message.content"). *out is zeroed first either way. */
status llm_parse_response(const char *body, size_t len, llm_parsed *out, char *err, size_t errcap);
void llm_parsed_fini(llm_parsed *p); /* NULL-safe */

/* The message of an error body ({"error":{"message":"..."}},
 * {"error":"..."} or {"message":"..."}), made safe to show: control
 * characters become spaces, invalid UTF-8 is dropped, every occurrence of
 * secret (when non-empty) becomes "***", and it is cut to at most max bytes
 * (on a character boundary, "..." appended). A new string, or NULL when the
 * body holds no such message. */
char *llm_parse_error_message(const char *body, size_t len, const char *secret, size_t max);

/* Tidies model output in place: trims white space, removes one pair of
 * quotes wrapping the whole text ("...", '...', “...”) and a leading label
 * such as "Post:". Returns the new length; s stays NUL-terminated. */
size_t llm_clean_text(char *s, size_t len);

#endif
