/* claims.h - claim safety: the patterns a health post must never contain.
 *
 *   CLAIM_CREDENTIAL    invented credentials: "as a doctor", "I'm a certified
 *                       nutritionist", "my patients", "in my clinical practice"
 *   CLAIM_FIRST_PERSON  first-person health experience: "I cured my ...",
 *                       "my doctor told me", "I was diagnosed", "my anxiety",
 *                       "I lost 20 pounds", "I stopped taking my meds"
 *   CLAIM_DIAGNOSIS     diagnosing the reader: "you have ADHD if", "you
 *                       probably have sleep apnea", "signs you're deficient",
 *                       "this means you have"
 *   CLAIM_DOSING        dosing and medication instructions: "take 500 mg",
 *                       "5 mg of melatonin", "the optimal dose", "stop taking
 *                       your medication"
 *   CLAIM_CURE          cure promises: "cures anxiety", "guaranteed to heal"
 *
 * Matching is over word tokens (textscan.h), case-insensitive, on word
 * boundaries, and never across a sentence end. Reporting a study ("adults
 * who drank 500 ml of water", "400 mg of caffeine consumed 6 hours before
 * bedtime") is not an instruction and passes. The rules are a fixed table in
 * claims.c; each is a short token pattern so that the table reads like the
 * list above.
 *
 * Pure function; any thread. */
#ifndef HERALD_CLAIMS_H
#define HERALD_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>

#include "textscan.h"

typedef enum {
    CLAIM_NONE = 0,
    CLAIM_CREDENTIAL,
    CLAIM_FIRST_PERSON,
    CLAIM_DIAGNOSIS,
    CLAIM_DOSING,
    CLAIM_CURE,
} claim_kind;

typedef struct claims_hit {
    claim_kind kind;
    char excerpt[96]; /* the matched words as written in the text */
} claims_hit;

/* "invented credential", "first-person health experience", "diagnosis",
 * "dosing or medication instruction", "cure claim"; static storage. */
const char *claims_kind_name(claim_kind k);

/* Checks tokens t of text. Returns true when no rule matches; otherwise
 * false with the first match (in text order) in *hit. */
bool claims_check(const char *text, const textscan_tokens *t, claims_hit *hit);

#endif
