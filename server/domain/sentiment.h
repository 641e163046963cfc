/* sentiment.h - lexicon-based sentiment of replies (RecordReplies).
 *
 * A reply gets one label and a polarity score in [-1, 1]:
 *   spam      promotion signals add up to >= 2: links and shop domains,
 *             promo phrases ("link in bio", "dm me", "% off", "follow
 *             back"), money bait, runs of the same emoji, stretched words
 *   hostile   an insult or abuse phrase ("idiot", "shut up", a clown emoji)
 *   question  a sentence ending in '?' that opens like a question (an
 *             interrogative or auxiliary first word: "does", "how",
 *             "any"...); a declarative sentence with '?' is rhetorical and
 *             only scored for polarity
 *   positive  polarity >= 1, negative polarity <= -1, neutral otherwise
 * in that order of precedence. Polarity sums the valences of lexicon words,
 * phrases and emoji; a negator ("not", "isn't", "never", "without"...)
 * within the three words before a word flips and damps it (x -0.75), an
 * intensifier just before it scales it ("very", "so", "extremely" x1.5;
 * "kinda", "slightly" x0.6); punctuation ends a negation's scope. The score
 * is s / sqrt(s^2 + 15); spam scores 0 (its polarity means nothing) and
 * hostile at most -0.5.
 *
 * Accuracy (tests/unit/test_sentiment.c): replies.tsv (180 replies written
 * for Herald, split dev/held) 100 %, asserted >= 80 %; but the lexicon was
 * written with all its rows in view, so that overstates it. On replies
 * written after the lexicon was frozen it scored 48.6 % (first revision,
 * replies_round2.tsv, since used for tuning) and 66.7 % (this revision,
 * replies_unseen.tsv, never tuned on): positive and negative replies in
 * vocabulary the lexicon lacks fall back to neutral.
 *
 * Threads: pure functions (the lexicon is static const); any thread. */
#ifndef HERALD_SENTIMENT_H
#define HERALD_SENTIMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Values match herald.v1.SentimentLabel. */
typedef enum {
    SENTIMENT_POSITIVE = 1,
    SENTIMENT_NEUTRAL = 2,
    SENTIMENT_QUESTION = 3,
    SENTIMENT_NEGATIVE = 4,
    SENTIMENT_HOSTILE = 5,
    SENTIMENT_SPAM = 6,
} sentiment_label;

#define SENTIMENT_LABEL_MAX 6

/* "positive", ... as stored in post_replies.label; NULL out of range. */
const char *sentiment_label_name(sentiment_label l);
bool sentiment_label_parse(const char *name, sentiment_label *out);

typedef struct sentiment_result {
    sentiment_label label;
    double score;   /* polarity in [-1, 1] (see above) */
    double valence; /* the raw sum of valences */
    double spam;    /* spam evidence; >= 2 is spam */
    double hostile; /* hostile evidence; >= 1 is hostile */
    bool question;  /* holds a genuine question */
} sentiment_result;

/* Scores text[0..len) (UTF-8). ST_INVALID for invalid UTF-8 or a NUL
 * byte; *out is then neutral with score 0. */
status sentiment_score(const char *text, size_t len, sentiment_result *out);

/* Per-post aggregate (herald.v1.SentimentSummary). Zero-initialise. */
typedef struct sentiment_summary {
    int64_t reply_count;
    int64_t counts[SENTIMENT_LABEL_MAX + 1]; /* by label; [0] unused */
    double score_sum;
} sentiment_summary;

void sentiment_summary_add(sentiment_summary *s, const sentiment_result *r);
/* Mean score over the replies; false (and 0) when there are none. */
bool sentiment_summary_mean(const sentiment_summary *s, double *mean);

#endif
