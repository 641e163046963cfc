/* textsim.h - near-duplicate detection: normalised-text hash plus
 * character-trigram similarity, and an index of recent posts to search.
 *
 * Normalisation (textsim_normalize), the policy both measures share:
 *   - case folded (textscan_fold_cp: ASCII, Latin-1/Extended-A, Greek,
 *     Cyrillic); U+2019 becomes an apostrophe, which is then dropped;
 *   - URLs (http://, https://, www.) removed whole: links differ per post;
 *   - letters and digits kept, digits included: "lost 5 kg" and "lost 50 kg"
 *     are different claims, and numbers are most of what makes two health
 *     posts different;
 *   - every other run (spaces, punctuation, hashtag and mention signs, emoji,
 *     symbols) becomes one space; leading and trailing spaces removed.
 * The exact hash is 64-bit FNV-1a of that string. The trigram set is every
 * window of three code points of " " + normalised + " ", each packed exactly
 * into 63 bits (3 x 21), so the set has no hash collisions.
 *
 * Similarity is the Jaccard index |A and B| / |A or B| of the two trigram
 * sets, forced to 1.0 when the exact hashes are equal. A text is a near
 * duplicate of another when similarity >= the threshold. The default,
 * TEXTSIM_DEFAULT_THRESHOLD = 0.70, sits between the populations that
 * tests/unit/test_textsim.c measures on generated drafts: light edits of a
 * post (a word swapped, sentences reordered, case and punctuation changed, an
 * emoji or hashtag or a short sentence added, a word dropped) score >= 0.80
 * (0.90 measured); drafts on different facts score < 0.40 (0.34 measured);
 * drafts that share a fact but are framed differently average 0.47. Replacing
 * one 40-character sentence of a 250-character post scores about 0.72, so
 * such a repost is still caught. Callers may pass another threshold
 * (gates_config.dup_threshold).
 *
 * Threads: fingerprints are plain values. An index is not locked: build it on
 * one thread; afterwards any number of threads may query it concurrently as
 * long as nobody adds to it. */
#ifndef HERALD_TEXTSIM_H
#define HERALD_TEXTSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "util.h"

#define TEXTSIM_DEFAULT_THRESHOLD 0.70
#define TEXTSIM_DEFAULT_WINDOW_DAYS 30
#define TEXTSIM_EXCERPT_BYTES 200

/* Appends the normalised form of text[0..len) to out. ST_INVALID (out
 * untouched) when the text is not valid UTF-8. */
status textsim_normalize(const char *text, size_t len, strbuf *out);

/* A text's fingerprint. Zero-initialise; release with textsim_fp_fini. */
typedef struct textsim_fp {
    uint64_t hash;   /* FNV-1a 64 of the normalised text */
    uint64_t *grams; /* sorted, unique packed trigrams; owned */
    size_t n;
} textsim_fp;

/* Fingerprints text[0..len) into *out (which it first resets). ST_INVALID on
 * invalid UTF-8 (*out is then empty). */
status textsim_fp_compute(const char *text, size_t len, textsim_fp *out);
void textsim_fp_fini(textsim_fp *fp); /* NULL-safe */

/* Similarity in [0, 1] as described above. Two empty texts score 1. */
double textsim_similarity(const textsim_fp *a, const textsim_fp *b);

/* Convenience: the similarity of two texts; -1 when either is invalid UTF-8. */
double textsim_compare(const char *a, size_t alen, const char *b, size_t blen);

/* Serialised fingerprint for caches ("recent-text fingerprints"): a version
 * byte, the hash and the grams, little-endian. encode appends to out. decode
 * returns ST_INVALID for anything malformed and leaves *out empty. */
void textsim_fp_encode(const textsim_fp *fp, strbuf *out);
status textsim_fp_decode(const void *data, size_t len, textsim_fp *out);

/* Recent posts of one profile, searched for the nearest duplicate. */
typedef struct textsim_index textsim_index;

textsim_index *textsim_index_new(void);
void textsim_index_free(textsim_index *ix); /* NULL-safe */

/* Adds a post: id (copied), its text (fingerprinted; the first
 * TEXTSIM_EXCERPT_BYTES are kept as an excerpt) and its creation time.
 * ST_INVALID for a NULL/empty id or text that is not valid UTF-8. */
status textsim_index_add(textsim_index *ix, const char *id, const char *text, size_t len,
                         int64_t created_ms);

/* Adds a post from a fingerprint (copied) computed earlier or decoded from a
 * cache; excerpt may be NULL. */
status textsim_index_add_fp(textsim_index *ix, const char *id, const textsim_fp *fp,
                            const char *excerpt, int64_t created_ms);

size_t textsim_index_count(const textsim_index *ix);

/* The nearest post. Pointers are borrowed from the index and valid until it
 * is freed. */
typedef struct textsim_match {
    const char *id;
    const char *excerpt; /* "" when unknown */
    double score;        /* similarity, 1.0 for an exact normalised match */
    bool exact;          /* the normalised-text hashes are equal */
    int64_t created_ms;
} textsim_match;

/* Finds the most similar post created at or after since_ms (use INT64_MIN for
 * all), skipping the post whose id equals exclude_id (may be NULL: re-checking
 * a draft must not match the draft itself). Returns false, with *out zeroed,
 * when no post qualifies. Ties go to the most recent post. */
bool textsim_index_nearest(const textsim_index *ix, const textsim_fp *fp, int64_t since_ms,
                           const char *exclude_id, textsim_match *out);

#endif
