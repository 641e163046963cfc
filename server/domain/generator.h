/* generator.h - the built-in post generator: offline and deterministic.
 *
 * generator_compose() writes one post for a (content type, voice style,
 * topic, platform) from one of the topic's enabled facts in the catalog. The
 * same catalog, request and seed always give the same text (own PRNG:
 * splitmix64-seeded xoshiro256**; no rand(), no clock, no global state).
 *
 * What a draft is: third person, specific (the fact's numbers and units, its
 * source and year), no hashtags, no thread markers, no emoji, within the
 * platform limit and the catalog entries' length bounds. Each content type
 * has its own structures (myth then evidence; expectation against result;
 * finding, implication and caveat; a setting, a turn and a lesson...) and
 * each voice style its own openers, closers and ways to introduce a fact, so
 * every (type, style) pair reads differently; within a pair, many variants
 * per slot, optional sentences and two renderings of the fact keep drafts on
 * one topic apart (tests/unit/test_generator.c measures both).
 *
 * The built-in templates cover the six seeded content types and six voice
 * styles; other catalog keys get ST_UNIMPLEMENTED (the LLM provider may
 * still serve them).
 *
 * Threads: pure function of its inputs; any thread, concurrently, over a
 * finished (immutable) catalog. */
#ifndef HERALD_GENERATOR_H
#define HERALD_GENERATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "platform.h"
#include "status.h"
#include "textsim.h"

/* Candidates tried per draft when the request carries recent posts. */
#define GENERATOR_MAX_ATTEMPTS 24
/* From this candidate on, candidates are lean: less catalog text, more
 * framing (generator.c, compose_once). The first ones are the plain drafts. */
#define GENERATOR_LEAN_FROM 4

typedef struct generator_request {
    const char *content_type; /* catalog keys, normalised (catalog_key_normalize) */
    const char *voice_style;
    const char *topic;
    platform_id platform;
    uint64_t seed;
    const char *fact_key; /* optional: use this fact (enabled, of the topic) */
    /* Optional history. With recent posts (the same index the duplicate
     * gate gets), up to GENERATOR_MAX_ATTEMPTS candidates are composed from
     * seeds derived from `seed`, and the first whose similarity to every
     * post created at or after since_ms (except exclude_id) is below
     * max_similarity (0 = TEXTSIM_DEFAULT_THRESHOLD) is returned; if none
     * is, the least similar one is (the duplicate gate then rejects it).
     * Candidates from GENERATOR_LEAN_FROM on carry less catalog text and
     * more framing (tests/unit/test_generator_variety.c measures how long a
     * busy profile lasts).
     * Still deterministic: the same seed and the same index give the same
     * text. Without history exactly one candidate is composed. */
    const textsim_index *recent;
    int64_t since_ms;
    const char *exclude_id;
    double max_similarity;
} generator_request;

typedef struct generator_draft {
    char *text;               /* owned; NUL-terminated UTF-8 */
    size_t len;               /* bytes */
    size_t chars;             /* code points */
    const catalog_fact *fact; /* the fact used; borrowed from the catalog */
    int min_chars;            /* the effective bounds it was written to */
    int max_chars;
    unsigned shape;            /* which structure of the content type */
    int attempts;              /* candidates composed (1 without history) */
    double nearest_similarity; /* to the closest recent post; 0 without history */
} generator_draft;

/* Writes a draft into *out (zeroed first; release with
 * generator_draft_fini, also after a failure). err (errcap bytes, may be
 * NULL) receives the reason for a failure:
 *   ST_INVALID             NULL key, unknown platform, catalog not finished
 *   ST_NOT_FOUND           no such content type, voice style, topic or fact
 *   ST_FAILED_PRECONDITION an entry or the fact is disabled, the topic has
 *                          no enabled facts, or the fact cannot fit the bounds
 *   ST_UNIMPLEMENTED       no built-in templates for that type or style */
status generator_compose(const catalog *cat, const generator_request *req, generator_draft *out,
                         char *err, size_t errcap);

void generator_draft_fini(generator_draft *d); /* NULL-safe */

/* True when the built-in templates cover this content type and voice style. */
bool generator_supports(const char *content_type, const char *voice_style);

/* The effective length bounds of a post: max = the smallest of the platform
 * limit and the three entries' max_chars; min = the largest of their
 * min_chars, lowered to max if needed. ST_NOT_FOUND for an unknown key,
 * ST_INVALID for an unknown platform. The gates take the same bounds. */
status generator_length_bounds(const catalog *cat, const char *content_type,
                               const char *voice_style, const char *topic, platform_id platform,
                               int *min_chars, int *max_chars);

#endif
