/* backoff.c - exponential backoff with deterministic equal jitter. */
#include "backoff.h"

int64_t backoff_delay_ms(int attempt, int initial_s, int max_s, int retry_after_s, double jitter)
{
    if (attempt < 1)
        attempt = 1;
    if (initial_s < 1)
        initial_s = 1;
    if (max_s < 1)
        max_s = 1;
    if (!(jitter >= 0.0)) /* also NaN */
        jitter = 0.0;
    if (jitter >= 1.0)
        jitter = 0.999999;

    /* Doubling stops at max_s, so no overflow whatever the attempt number. */
    int64_t base_ms = (int64_t)initial_s * 1000;
    int64_t cap_ms = (int64_t)max_s * 1000;
    for (int i = 1; i < attempt && base_ms < cap_ms; i++)
        base_ms *= 2;
    if (base_ms > cap_ms)
        base_ms = cap_ms;
    int64_t half_ms = base_ms / 2; /* the guaranteed part */
    int64_t spread_ms = base_ms - half_ms;
    int64_t delay = half_ms + (int64_t)(jitter * (double)spread_ms);
    if (retry_after_s >= 0) {
        int64_t ra =
            retry_after_s > BACKOFF_RETRY_AFTER_CAP_S ? BACKOFF_RETRY_AFTER_CAP_S : retry_after_s;
        if (ra * 1000 > delay)
            delay = ra * 1000;
    }
    return delay;
}

double backoff_jitter(const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return (double)(h >> 11) / 9007199254740992.0; /* 2^53 */
}
