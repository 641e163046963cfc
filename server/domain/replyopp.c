/* replyopp.c - reply opportunity filters, keyword relevance over textsim's
 * trigrams, and ranking. */
#include "replyopp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "textsim.h"
#include "util.h"

#define HOUR_MS ((int64_t)3600000)
#define MIN_AGE_MS ((int64_t)900000)
#define KEYWORD_MATCH 0.75
#define NAME_WEIGHT 1.0
#define DESC_WEIGHT 0.5

typedef struct keyword {
    textsim_fp fp;
    double weight;
    size_t topic;
} keyword;

struct replyopp_topics {
    keyword *kw;
    size_t n_kw;
    size_t cap_kw;
    size_t n_topics;
};

replyopp_tier replyopp_tier_of(int64_t followers)
{
    if (followers < 1000)
        return REPLYOPP_TIER_NANO;
    if (followers < 10000)
        return REPLYOPP_TIER_MICRO;
    if (followers < 100000)
        return REPLYOPP_TIER_MID;
    if (followers < 1000000)
        return REPLYOPP_TIER_MACRO;
    return REPLYOPP_TIER_MEGA;
}

const char *replyopp_tier_name(replyopp_tier t)
{
    switch (t) {
    case REPLYOPP_TIER_NANO:
        return "nano";
    case REPLYOPP_TIER_MICRO:
        return "micro";
    case REPLYOPP_TIER_MID:
        return "mid";
    case REPLYOPP_TIER_MACRO:
        return "macro";
    case REPLYOPP_TIER_MEGA:
        return "mega";
    }
    return NULL;
}

/* Words of 4+ letters too common to say what a topic is about. */
static const char *const stopwords[] = {
    "about", "after", "also",  "and",   "been", "does", "each", "from",  "have",  "into",  "more",
    "most",  "much",  "only",  "other", "over", "some", "such", "than",  "that",  "their", "them",
    "then",  "there", "these", "they",  "this", "what", "when", "which", "while", "with",  "your",
};

static bool is_stopword(const char *w, size_t n)
{
    for (size_t i = 0; i < sizeof stopwords / sizeof stopwords[0]; i++)
        if (strlen(stopwords[i]) == n && memcmp(stopwords[i], w, n) == 0)
            return true;
    return false;
}

/* Code points in w[0..n) (valid UTF-8). */
static size_t cp_count(const char *w, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)w[i] & 0xc0) != 0x80;
    return c;
}

/* Adds the keywords of one text (normalised words) with weight w. */
static status add_keywords(replyopp_topics *t, size_t topic, const char *text, size_t min_cp,
                           double weight, bool stop)
{
    status st;
    strbuf norm = { 0 };

    st = textsim_normalize(text, strlen(text), &norm);
    if (st != ST_OK)
        goto out;
    const char *p = norm.data ? norm.data : "";
    while (*p) {
        const char *e = strchr(p, ' ');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (cp_count(p, n) >= min_cp && !(stop && is_stopword(p, n))) {
            bool dup = false;
            textsim_fp fp = { 0 };
            st = textsim_fp_compute(p, n, &fp);
            if (st != ST_OK)
                goto out;
            for (size_t k = 0; k < t->n_kw && !dup; k++)
                dup = t->kw[k].topic == topic && t->kw[k].fp.hash == fp.hash;
            if (dup) {
                textsim_fp_fini(&fp);
            } else {
                if (t->cap_kw == t->n_kw) {
                    t->cap_kw = t->cap_kw ? 2 * t->cap_kw : 16;
                    t->kw = xrealloc(t->kw, t->cap_kw * sizeof *t->kw);
                }
                t->kw[t->n_kw++] = (keyword){ fp, weight, topic };
            }
        }
        p += n;
        if (*p == ' ')
            p++;
    }
    st = ST_OK;
out:
    strbuf_fini(&norm);
    return st;
}

void replyopp_topics_free(replyopp_topics *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_kw; i++)
        textsim_fp_fini(&t->kw[i].fp);
    free(t->kw);
    free(t);
}

status replyopp_topics_new(const replyopp_topic *topics, size_t n, replyopp_topics **out)
{
    status st = ST_OK;
    replyopp_topics *t = NULL;

    *out = NULL;
    if (n > REPLYOPP_MAX_TOPICS || (n > 0 && topics == NULL))
        return ST_INVALID;
    t = xcalloc(1, sizeof *t);
    t->n_topics = n;
    for (size_t i = 0; i < n; i++) {
        if (topics[i].name == NULL) {
            st = ST_INVALID;
            goto out;
        }
        st = add_keywords(t, i, topics[i].name, 3, NAME_WEIGHT, false);
        if (st == ST_OK && topics[i].description)
            st = add_keywords(t, i, topics[i].description, 4, DESC_WEIGHT, true);
        if (st != ST_OK)
            goto out;
    }
    *out = t;
    t = NULL;
out:
    replyopp_topics_free(t);
    return st;
}

/* Share of a's grams that are in b (both sorted, unique). */
static double containment(const textsim_fp *a, const textsim_fp *b)
{
    size_t i = 0, j = 0, hit = 0;
    if (a->n == 0)
        return 0.0;
    while (i < a->n && j < b->n) {
        if (a->grams[i] == b->grams[j]) {
            hit++;
            i++;
            j++;
        } else if (a->grams[i] < b->grams[j]) {
            i++;
        } else {
            j++;
        }
    }
    return (double)hit / (double)a->n;
}

static double relevance_fp(const replyopp_topics *t, const textsim_fp *post)
{
    double best = 0.0;
    double *sum = NULL;

    if (t == NULL || t->n_topics == 0)
        return 0.0;
    sum = xcalloc(t->n_topics, sizeof *sum);
    for (size_t k = 0; k < t->n_kw; k++) {
        double c = containment(&t->kw[k].fp, post);
        if (c >= KEYWORD_MATCH)
            sum[t->kw[k].topic] += t->kw[k].weight * c;
    }
    for (size_t i = 0; i < t->n_topics; i++)
        if (sum[i] > best)
            best = sum[i];
    free(sum);
    return best > 1.0 ? 1.0 : best;
}

double replyopp_relevance(const replyopp_topics *t, const char *text, size_t len)
{
    textsim_fp fp = { 0 };
    double r = 0.0;
    if (t != NULL && textsim_fp_compute(text, len, &fp) == ST_OK)
        r = relevance_fp(t, &fp);
    textsim_fp_fini(&fp);
    return r;
}

static bool own_author(const replyopp_ctx *ctx, const char *author)
{
    for (size_t i = 0; i < ctx->n_own; i++)
        if (ctx->own_author_ids[i] && strcmp(ctx->own_author_ids[i], author) == 0)
            return true;
    return false;
}

/* Did the profile reply matching this root (by_root) or author within
 * window_ms before now? */
static bool replied_within(const replyopp_ctx *ctx, const char *key, bool by_root, int64_t now,
                           int64_t window_ms)
{
    for (size_t i = 0; i < ctx->n_replies; i++) {
        const replyopp_reply *r = &ctx->replies[i];
        const char *v = by_root ? r->root_external_id : r->author_id;
        if (v != NULL && strcmp(v, key) == 0 && r->reply_ms > now - window_ms)
            return true;
    }
    return false;
}

static int64_t nonneg(int64_t v)
{
    return v < 0 ? 0 : v;
}

status replyopp_evaluate(const replyopp_ctx *ctx, const replyopp_target *t, int64_t now_ms,
                         replyopp_eval *out)
{
    memset(out, 0, sizeof *out);
    if (ctx == NULL || ctx->policy == NULL || t == NULL)
        return ST_INVALID;
    if (t->external_post_id == NULL || t->external_post_id[0] == '\0' || t->author_id == NULL ||
        t->author_id[0] == '\0' || t->text == NULL || t->text_len == 0 ||
        !utf8_valid(t->text, t->text_len))
        return ST_INVALID;
    if (t->create_ms <= 0 || t->create_ms > now_ms + REPLYOPP_MAX_SKEW_MS)
        return ST_INVALID;
    if (ctx->n_own > 0 && ctx->own_author_ids == NULL)
        return ST_INVALID;
    if (ctx->n_replies > 0 && ctx->replies == NULL)
        return ST_INVALID;

    const policy *p = ctx->policy;
    int64_t observe = t->observe_ms ? t->observe_ms : now_ms;
    int64_t age = observe - t->create_ms;
    if (age < MIN_AGE_MS)
        age = MIN_AGE_MS;
    double engagements = (double)(nonneg(t->likes) + nonneg(t->replies) + nonneg(t->reposts));
    out->velocity_per_hour = engagements / ((double)age / (double)HOUR_MS);
    out->tier = replyopp_tier_of(t->author_followers);
    out->expire_ms = t->create_ms + (int64_t)p->reply_freshness_minutes * 60000;
    out->relevance = ctx->topics ? replyopp_relevance(ctx->topics, t->text, t->text_len) : 0.0;
    out->score =
        (0.25 + 0.75 * out->relevance) * log1p(out->velocity_per_hour) + 0.1 * out->relevance;

    double min_rel = ctx->min_relevance > 0 ? ctx->min_relevance : REPLYOPP_MIN_RELEVANCE;
    bool root = t->root_external_id == NULL || t->root_external_id[0] == '\0' ||
                strcmp(t->root_external_id, t->external_post_id) == 0;
    if (own_author(ctx, t->author_id))
        out->filter = REPLYOPP_OWN_POST;
    else if (!root)
        out->filter = REPLYOPP_NOT_ROOT;
    else if (now_ms >= out->expire_ms)
        out->filter = REPLYOPP_STALE;
    else if (replied_within(ctx, t->external_post_id, true, now_ms,
                            (int64_t)p->reply_root_cooldown_hours * HOUR_MS))
        out->filter = REPLYOPP_ROOT_COOLDOWN;
    else if (replied_within(ctx, t->author_id, false, now_ms,
                            (int64_t)p->reply_author_cooldown_hours * HOUR_MS))
        out->filter = REPLYOPP_AUTHOR_COOLDOWN;
    else if (ctx->topics && ctx->topics->n_topics > 0 && out->relevance < min_rel)
        out->filter = REPLYOPP_IRRELEVANT;
    else
        out->filter = REPLYOPP_KEEP;
    return ST_OK;
}

static int ranked_cmp(const void *a, const void *b)
{
    const replyopp_ranked *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->create_ms != y->create_ms)
        return x->create_ms > y->create_ms ? -1 : 1;
    const char *ix = x->external_post_id ? x->external_post_id : "";
    const char *iy = y->external_post_id ? y->external_post_id : "";
    return strcmp(ix, iy);
}

size_t replyopp_rank(replyopp_ranked *items, size_t n, unsigned tier_mask)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned bit = items[i].tier >= 1 && items[i].tier <= 5 ? 1u << items[i].tier : 0;
        if (tier_mask != 0 && (tier_mask & bit) == 0)
            continue;
        items[kept++] = items[i];
    }
    qsort(items, kept, sizeof *items, ranked_cmp);
    return kept;
}
