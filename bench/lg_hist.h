/* lg_hist.h - latency histogram of herald-loadgen: log-linear buckets in the
 * manner of HdrHistogram (64 linear sub-buckets per power of two), so a value
 * is kept with a relative error below 1/128 (reported at the bucket's middle)
 * at a fixed 19 KB per histogram, whatever the number of calls.
 *
 * Values are nanoseconds, exact below 128 ns, capped at 2^42 ns (~73 min).
 * Not thread-safe: one histogram per thread, merged at the end. */
#ifndef LG_HIST_H
#define LG_HIST_H

#include <stdint.h>

#define LG_HIST_SUB 64
#define LG_HIST_MAX_SHIFT 36 /* 2^(36 + 6) ns */
#define LG_HIST_BUCKETS (2 * LG_HIST_SUB + LG_HIST_MAX_SHIFT * LG_HIST_SUB)

typedef struct lg_hist {
    uint64_t count;
    uint64_t min_ns;
    uint64_t max_ns;
    double sum_ns;
    uint64_t b[LG_HIST_BUCKETS];
} lg_hist;

void lg_hist_init(lg_hist *h);
void lg_hist_add(lg_hist *h, uint64_t ns);
/* dst += src */
void lg_hist_merge(lg_hist *dst, const lg_hist *src);
/* The value at percentile p (0 < p <= 100): the middle of the bucket holding
 * the ceil(p% x count)-th smallest value, clamped to [min, max]. 0 when
 * empty. */
uint64_t lg_hist_percentile(const lg_hist *h, double p);
/* Mean in ns; 0 when empty. */
double lg_hist_mean(const lg_hist *h);

#endif
