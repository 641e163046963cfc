/* replyopp.h - reply opportunities: posts by others the profile could
 * answer (UpsertReplyOpportunities filters them, ListReplyOpportunities
 * ranks them).
 *
 * Filters, in order (the first that applies is the reason given):
 *   OWN_POST         the author is one of the profile's own accounts
 *   NOT_ROOT         root_external_id is set and differs from the post's id
 *   STALE            older than the policy's reply_freshness_minutes at now
 *   ROOT_COOLDOWN    the profile replied under this root within
 *                    reply_root_cooldown_hours (default 24) of now
 *   AUTHOR_COOLDOWN  the profile replied to this author within
 *                    reply_author_cooldown_hours (default 12) of now
 *   IRRELEVANT       topics are given and relevance < min_relevance
 *
 * Tier by the author's followers (herald.v1.ReplyTier): < 1,000 nano,
 * < 10,000 micro, < 100,000 mid, < 1,000,000 macro, else mega; unknown
 * (negative) counts as nano.
 *
 * Velocity: (likes + replies + reposts) per hour of age at observe time,
 * the age floored at 15 minutes so a minute-old post with 3 likes is not a
 * rocket; unknown counts (negative) add nothing.
 *
 * Relevance, in [0, 1]: each topic (name and description) gives keywords:
 * the name's words of 3+ letters (weight 1.0) and the description's words
 * of 4+ letters that are not stopwords (weight 0.5), normalised as textsim
 * does (case folded, punctuation and URLs dropped). A keyword is in the post
 * when at least 75% of its character trigrams (textsim's, with the word's
 * boundaries) are among the post's trigrams: "sleep" matches "sleeping"
 * (4 of 5), not "steep" (2 of 5). A topic scores the weighted sum of its
 * matched keywords' trigram shares, capped at 1; the post scores its best
 * topic. So naming the topic, or two of its description's words, is full
 * relevance; one description word is 0.5.
 *
 * Score (higher first): (0.25 + 0.75 relevance) ln(1 + velocity) +
 * 0.1 relevance. Engagement velocity drives it, relevance scales it up to
 * fourfold and breaks ties between cold posts. Ties: fresher first, then
 * by external id.
 *
 * Threads: topic sets are immutable after replyopp_topics_new and may be
 * shared by threads; everything else is pure. */
#ifndef HERALD_REPLYOPP_H
#define HERALD_REPLYOPP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "status.h"

#define REPLYOPP_MIN_RELEVANCE 0.3
#define REPLYOPP_MAX_TOPICS 100
#define REPLYOPP_MAX_SKEW_MS ((int64_t)300000) /* create_time may lead now by this */

/* Values match herald.v1.ReplyTier. */
typedef enum replyopp_tier {
    REPLYOPP_TIER_NANO = 1,
    REPLYOPP_TIER_MICRO = 2,
    REPLYOPP_TIER_MID = 3,
    REPLYOPP_TIER_MACRO = 4,
    REPLYOPP_TIER_MEGA = 5,
} replyopp_tier;

/* Values match herald.v1.ReplyFilterReason. */
typedef enum replyopp_filter {
    REPLYOPP_KEEP = 0,
    REPLYOPP_NOT_ROOT = 1,
    REPLYOPP_STALE = 2,
    REPLYOPP_ROOT_COOLDOWN = 3,
    REPLYOPP_AUTHOR_COOLDOWN = 4,
    REPLYOPP_OWN_POST = 5,
    REPLYOPP_IRRELEVANT = 6,
} replyopp_filter;

replyopp_tier replyopp_tier_of(int64_t followers);
/* "nano", "micro", "mid", "macro", "mega" (reply_opportunities.tier); NULL
 * for other values. */
const char *replyopp_tier_name(replyopp_tier t);

/* The profile's topics as keyword fingerprints. */
typedef struct replyopp_topics replyopp_topics;

typedef struct replyopp_topic {
    const char *name;        /* "Sleep" or "sleep"; required */
    const char *description; /* may be NULL */
} replyopp_topic;

/* Builds the keyword sets (texts are copied from, not kept). ST_INVALID
 * for a NULL name, invalid UTF-8 or more than REPLYOPP_MAX_TOPICS topics;
 * *out is then NULL. Free with replyopp_topics_free. */
status replyopp_topics_new(const replyopp_topic *topics, size_t n, replyopp_topics **out);
void replyopp_topics_free(replyopp_topics *t); /* NULL-safe */

/* Relevance of text[0..len) in [0, 1]; 0 for invalid UTF-8 or no topics. */
double replyopp_relevance(const replyopp_topics *t, const char *text, size_t len);

/* A post by someone else as an executor reported it. */
typedef struct replyopp_target {
    const char *external_post_id; /* required */
    const char *root_external_id; /* NULL or "" or == external_post_id: a root */
    const char *author_id;        /* required */
    int64_t author_followers;     /* < 0 unknown */
    const char *text;             /* required, UTF-8 */
    size_t text_len;
    int64_t create_ms;               /* required (> 0) */
    int64_t observe_ms;              /* 0 = now */
    int64_t likes, replies, reposts; /* < 0 unknown */
} replyopp_target;

/* One of the profile's own replies (for the cooldowns). */
typedef struct replyopp_reply {
    const char *root_external_id; /* the root it was posted under */
    const char *author_id;        /* the author it answered */
    int64_t reply_ms;             /* when (created or published) */
} replyopp_reply;

typedef struct replyopp_ctx {
    const policy *policy;              /* freshness and cooldown hours */
    const char *const *own_author_ids; /* the profile's own platform ids */
    size_t n_own;
    const replyopp_reply *replies;
    size_t n_replies;
    const replyopp_topics *topics; /* NULL: relevance 0 and no IRRELEVANT filter */
    double min_relevance;          /* 0 = REPLYOPP_MIN_RELEVANCE */
} replyopp_ctx;

typedef struct replyopp_eval {
    replyopp_filter filter; /* KEEP or the reason */
    replyopp_tier tier;
    double velocity_per_hour;
    double relevance;
    double score;
    int64_t expire_ms; /* create + freshness: when it goes STALE */
} replyopp_eval;

/* Filters and scores one target at now_ms (every field of *out is set even
 * when filtered). ST_INVALID for a missing id, author or text, text that is
 * not UTF-8, create_ms <= 0 or more than REPLYOPP_MAX_SKEW_MS after now, or a
 * NULL policy. */
status replyopp_evaluate(const replyopp_ctx *ctx, const replyopp_target *t, int64_t now_ms,
                         replyopp_eval *out);

/* A kept opportunity for ranking (the list handler fills these from rows). */
typedef struct replyopp_ranked {
    const char *external_post_id;
    replyopp_tier tier;
    double score;
    int64_t create_ms;
    size_t index; /* the caller's, carried along */
} replyopp_ranked;

/* Drops items whose tier is not in tier_mask (bit 1 << tier; 0 = every
 * tier), sorts the rest best first, and returns how many remain (at the
 * front of items). */
size_t replyopp_rank(replyopp_ranked *items, size_t n, unsigned tier_mask);

#endif
