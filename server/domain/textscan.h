/* textscan.h - UTF-8 decoding and word tokens for the content gates and the
 * similarity index.
 *
 * Pure functions over caller-owned buffers; no global state; any thread.
 *
 * Words are runs of letters and digits: ASCII, Latin-1 and Latin Extended
 * letters, Greek, Cyrillic and other alphabetic scripts, CJK and Hangul. An
 * apostrophe (' or U+2019) between two letters stays inside a word ("i'm").
 * Letters and digits split ("500mg" -> "500" "mg"), except that a number
 * keeps inner ',' and '.' followed by a digit ("1,000", "2.5"). Everything
 * else (spaces, hyphens, punctuation, emoji, symbols) separates words. Each
 * token keeps its byte span in the source and a folded form: lower case
 * (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic basics) with U+2019
 * mapped to '\''. */
#ifndef HERALD_TEXTSCAN_H
#define HERALD_TEXTSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "util.h"

/* Decodes the code point at s[*i] (s valid UTF-8 of len bytes), advances *i
 * past it and returns it; returns 0xFFFD and advances one byte on malformed
 * input so callers always make progress. */
uint32_t textscan_next_cp(const char *s, size_t len, size_t *i);

/* Encodes cp as UTF-8 into b. */
void textscan_put_cp(strbuf *b, uint32_t cp);

/* Simple case folding of one code point (see above). */
uint32_t textscan_fold_cp(uint32_t cp);

/* True for code points that can be part of a word (letters and digits). */
bool textscan_is_word_cp(uint32_t cp);

typedef struct textscan_token {
    size_t off;      /* byte offset of the word in the source text */
    size_t len;      /* byte length in the source text */
    size_t norm_off; /* offset of the folded form in textscan_tokens.norm */
    size_t norm_len; /* its byte length (it is NUL-terminated there too) */
    bool number;     /* digits only (with inner ',' or '.') */
} textscan_token;

/* A tokenised text. Zero-initialise or textscan_tokens_init; release with
 * textscan_tokens_fini. Reusable: textscan_tokenize resets it first. */
typedef struct textscan_tokens {
    textscan_token *v;
    size_t n;
    size_t cap;
    strbuf norm; /* the folded words, each NUL-terminated */
} textscan_tokens;

void textscan_tokens_init(textscan_tokens *t);
void textscan_tokens_fini(textscan_tokens *t); /* NULL-safe */

/* Splits text[0..len) into words. ST_INVALID when the text is not valid
 * UTF-8 (or holds a NUL); t is then empty. */
status textscan_tokenize(const char *text, size_t len, textscan_tokens *t);

/* The folded form of token i (NUL-terminated, borrowed from t). */
const char *textscan_word(const textscan_tokens *t, size_t i);

/* True when token i's folded form equals word (already folded). */
bool textscan_word_is(const textscan_tokens *t, size_t i, const char *word);

/* True when every word of `phrase` (already tokenised) equals the
 * consecutive words of t starting at index `at`. Word boundaries come from tokenisation:
 * "leverage" never matches inside "leveraged", and "game-changer" matches
 * "Game changer". */
bool textscan_phrase_at(const textscan_tokens *t, size_t at, const textscan_tokens *phrase);

/* Copies the source bytes of tokens [first, last] into buf (cap bytes, NUL
 * terminated), cut at a UTF-8 boundary with "..." when longer. Returns buf. */
char *textscan_span_excerpt(const char *text, const textscan_tokens *t, size_t first, size_t last,
                            char *buf, size_t cap);

/* Copies at most max_bytes of text into buf (cap bytes), never splitting a
 * UTF-8 sequence. Returns buf. */
char *textscan_excerpt(const char *text, size_t len, size_t max_bytes, char *buf, size_t cap);

#endif
