/* backoff.h - retry delays for publish attempts that failed RETRYABLE.
 *
 * Exponential with "equal jitter": the n-th failure (n >= 1) waits
 *   base  = min(max_s, initial_s * 2^(n-1))
 *   delay = base / 2 + jitter * base / 2        (jitter in [0, 1))
 * so a retry never comes sooner than half the exponential step, and
 * executors that failed together spread out. A platform's Retry-After is
 * honoured on top: delay = max(delay, retry_after_s), capped at
 * BACKOFF_RETRY_AFTER_CAP_S.
 *
 * The jitter is not random at report time: backoff_jitter() derives it from
 * a key (the lease id), so a duplicate report of the same attempt computes
 * the same next attempt time (ReportPublishResult is idempotent per attempt).
 *
 * Threads: pure functions; any thread. */
#ifndef HERALD_BACKOFF_H
#define HERALD_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

#define BACKOFF_RETRY_AFTER_CAP_S 86400

/* Delay in milliseconds after failure number attempt (>= 1; smaller values
 * count as 1). initial_s and max_s >= 1 (smaller values count as 1);
 * retry_after_s < 0 means none. */
int64_t backoff_delay_ms(int attempt, int initial_s, int max_s, int retry_after_s, double jitter);

/* A value in [0, 1) that depends only on key[0..len) (FNV-1a then a
 * splitmix64 finaliser). */
double backoff_jitter(const char *key, size_t len);

#endif
