/* gates.h - the quality gates every text passes before it can be a draft.
 *
 * Each gate gives a verdict (pass/fail) and a human reason, and fails
 * closed: a text that is not valid UTF-8, is absurdly long, or a missing
 * input the gate needs (no banned-phrase list, no recent-post index, no
 * platform) is a FAIL with the reason saying so, never a pass.
 *
 *   GATE_LENGTH          code points <= the platform limit (X 280, Threads
 *                        500, Bluesky 300, LinkedIn 3000) and the caller's
 *                        catalog bounds (max_chars, min_chars); not empty.
 *   GATE_HASHTAGS        no "#word" ("#1" and "C#" are not hashtags).
 *   GATE_BANNED_PHRASES  no enabled catalog phrase, case-insensitive, on word
 *                        boundaries; a space or hyphen in a phrase matches
 *                        either ("game-changer" = "Game changer").
 *   GATE_THREAD_MARKERS  no "1/5", "(1/3)", "1/", "1/n", "[2/4]", "(1 of 3)",
 *                        U+1F9F5 (thread emoji), "thread:", "(thread)", "a
 *                        thread", "thread below", "part 2 of 3", "/end", or a
 *                        trailing pointing-down emoji. Fractions inside a
 *                        sentence ("1/3 of adults") and "24/7" are not markers.
 *   GATE_EMOJI           at most cfg.max_emoji emoji, counting what a reader
 *                        sees as one: ZWJ sequences, skin tones, flags (two
 *                        regional indicators), keycaps and FE0F-presented
 *                        symbols are one emoji each.
 *   GATE_CLAIM_SAFETY    claims.h: no invented credentials, first-person
 *                        health experience, diagnosis, dosing or cure claims.
 *   GATE_DUPLICATE       textsim.h: not a near-duplicate (similarity >=
 *                        cfg.dup_threshold, or the same normalised text) of
 *                        any indexed post created in the last
 *                        cfg.dup_window_days days.
 *
 * Pure functions over caller data; no I/O, no locks. Any thread, provided
 * the catalog is finished and the index is not being added to. */
#ifndef HERALD_GATES_H
#define HERALD_GATES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "platform.h"
#include "textsim.h"

/* Values match herald.v1.Gate. */
typedef enum {
    GATE_LENGTH = 1,
    GATE_HASHTAGS = 2,
    GATE_BANNED_PHRASES = 3,
    GATE_THREAD_MARKERS = 4,
    GATE_EMOJI = 5,
    GATE_CLAIM_SAFETY = 6,
    GATE_DUPLICATE = 7,
} gate_id;

#define GATE_COUNT 7 /* gates_report.verdicts[k] is gate k + 1 */
#define GATE_REASON_MAX 240
#define GATES_MAX_TEXT_BYTES 100000 /* longer texts fail every gate unexamined */

typedef struct gate_verdict {
    gate_id gate;
    bool pass;
    bool has_score; /* length, emoji count, highest similarity */
    double score;
    bool has_threshold; /* the limit the score was compared with */
    double threshold;
    char reason[GATE_REASON_MAX]; /* empty for a plain pass */
} gate_verdict;

typedef struct gates_config {
    double dup_threshold; /* in (0, 1]; default TEXTSIM_DEFAULT_THRESHOLD (0.70) */
    int dup_window_days;  /* default 30; <= 0 means every post in the index */
    int max_emoji;        /* default 1 */
} gates_config;

/* The defaults above. */
void gates_config_default(gates_config *cfg);

typedef struct gates_input {
    const char *text; /* borrowed */
    size_t len;       /* bytes */
    platform_id platform;
    int min_chars;               /* from the catalog entries; 0 = none */
    int max_chars;               /* 0 = the platform limit only */
    const catalog *cat;          /* banned phrases; NULL fails that gate */
    const textsim_index *recent; /* NULL fails GATE_DUPLICATE; empty = no posts */
    const char *exclude_id;      /* the post being re-checked, or NULL */
    int64_t now_ms;              /* epoch ms for the window; 0 = now */
} gates_input;

typedef struct gates_report {
    gate_verdict verdicts[GATE_COUNT];
    bool pass;             /* every gate passed */
    bool has_nearest;      /* a recent post was compared */
    textsim_match nearest; /* the most similar one; borrowed from in->recent */
} gates_report;

/* "length", "hashtags", "banned_phrases", "thread_markers", "emoji",
 * "claim_safety", "duplicate"; "unknown" otherwise. Static storage. */
const char *gate_name(gate_id g);

/* Runs every gate (ValidateText and every generated draft). cfg may be NULL
 * for the defaults. Always fills every verdict. */
void gates_validate_all(const gates_input *in, const gates_config *cfg, gates_report *out);

/* The individual gates, for callers that need one. Each fills *v. */
void gates_check_length(const char *text, size_t len, platform_id platform, int min_chars,
                        int max_chars, gate_verdict *v);
void gates_check_hashtags(const char *text, size_t len, gate_verdict *v);
void gates_check_banned(const char *text, size_t len, const catalog *cat, gate_verdict *v);
void gates_check_thread_markers(const char *text, size_t len, gate_verdict *v);
void gates_check_emoji(const char *text, size_t len, int max_emoji, gate_verdict *v);
void gates_check_claims(const char *text, size_t len, gate_verdict *v);
/* nearest may be NULL; when non-NULL it is filled (and *has_nearest set)
 * with the most similar post in the window. */
void gates_check_duplicate(const char *text, size_t len, const textsim_index *recent,
                           const gates_config *cfg, int64_t now_ms, const char *exclude_id,
                           gate_verdict *v, textsim_match *nearest, bool *has_nearest);

/* Emoji as a reader counts them (see GATE_EMOJI); -1 for invalid UTF-8. */
int gates_count_emoji(const char *text, size_t len);

#endif
