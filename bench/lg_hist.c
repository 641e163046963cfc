/* lg_hist.c - see lg_hist.h. Bucket k < 128 holds the value k exactly; above,
 * a value v with its highest bit at position m (m >= 7) falls in the block of
 * shift s = m - 6, at sub-bucket (v >> s) - 64. */
#include "lg_hist.h"

#include <string.h>

static unsigned bucket_of(uint64_t v)
{
    if (v < (uint64_t)2 * LG_HIST_SUB)
        return (unsigned)v;
    unsigned m = 63u - (unsigned)__builtin_clzll(v);
    unsigned s = m - 6;
    if (s > LG_HIST_MAX_SHIFT)
        return LG_HIST_BUCKETS - 1;
    return 2 * LG_HIST_SUB + (s - 1) * LG_HIST_SUB + (unsigned)((v >> s) - LG_HIST_SUB);
}

/* Middle of bucket k. */
static uint64_t bucket_mid(unsigned k)
{
    if (k < 2 * LG_HIST_SUB)
        return k;
    unsigned j = k - 2 * LG_HIST_SUB;
    unsigned s = j / LG_HIST_SUB + 1;
    uint64_t top = j % LG_HIST_SUB + LG_HIST_SUB;
    return (top << s) + ((uint64_t)1 << (s - 1));
}

void lg_hist_init(lg_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min_ns = UINT64_MAX;
}

void lg_hist_add(lg_hist *h, uint64_t ns)
{
    h->b[bucket_of(ns)]++;
    h->count++;
    h->sum_ns += (double)ns;
    if (ns < h->min_ns)
        h->min_ns = ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

void lg_hist_merge(lg_hist *dst, const lg_hist *src)
{
    for (unsigned k = 0; k < LG_HIST_BUCKETS; k++)
        dst->b[k] += src->b[k];
    dst->count += src->count;
    dst->sum_ns += src->sum_ns;
    if (src->min_ns < dst->min_ns)
        dst->min_ns = src->min_ns;
    if (src->max_ns > dst->max_ns)
        dst->max_ns = src->max_ns;
}

uint64_t lg_hist_percentile(const lg_hist *h, double p)
{
    if (h->count == 0)
        return 0;
    double want = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned k = 0; k < LG_HIST_BUCKETS; k++) {
        seen += h->b[k];
        if (seen >= rank) {
            uint64_t v = bucket_mid(k);
            if (v < h->min_ns)
                v = h->min_ns;
            if (v > h->max_ns)
                v = h->max_ns;
            return v;
        }
    }
    return h->max_ns;
}

double lg_hist_mean(const lg_hist *h)
{
    return h->count ? h->sum_ns / (double)h->count : 0.0;
}
