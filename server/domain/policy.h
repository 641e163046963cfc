/* policy.h - a profile's posting policy (herald.v1.PostingPolicy) and the
 * rules it imposes on publish times.
 *
 * The rules, checked in this order by policy_check (the first broken one is
 * the one SchedulePost names in its FAILED_PRECONDITION):
 *   cooldown            no post inside a platform cooldown [start, end)
 *   quiet_hours         no post inside a quiet window, in the profile's zone
 *   min_gap_minutes     |t - other| >= gap for every other post
 *   max_posts_per_hour  every rolling 60-minute window [p, p + 3600 s) that
 *                       contains t holds at most N posts (t included), N
 *                       the smallest hourly target in force at any of them
 *                       (they differ only around a cooldown)
 *   max_posts_per_day   the local calendar day of t holds at most this many
 * "Other posts" are what the caller loads: the instants of the profile's
 * posts that are PUBLISHED (publish_time), PUBLISHING or UNCONFIRMED (claim
 * time) and SCHEDULED (schedule_time), minus the post being scheduled.
 * Instants are Unix seconds (timestamps floored to the second).
 *
 * Cooldowns (ReportPlatformSignal): a cooldown blocks posting during
 * [start, end) (executors get no claims then) and halves the targets
 * (x cooldown_target_factor, floored) around it: the hourly target for any t
 * whose trailing hour (t - 3600, t] overlaps the cooldown, and the daily
 * target of every local day the cooldown touches. So after a 429 the profile
 * is silent until the reset, then comes back at half rate for the rest of
 * that day.
 *
 * Quiet hours: minutes of the local day; end is exclusive; end < start runs
 * past midnight (23:00-07:00); end == start means a whole 24 hours from
 * start. days lists the ISO weekdays (1 = Monday) on which a window starts;
 * none means every day. A window starting Friday 23:00 and ending 07:00 also
 * covers Saturday 00:00-06:59.
 *
 * Threads: plain values and pure functions; any thread. */
#ifndef HERALD_POLICY_H
#define HERALD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tz.h"

#define POLICY_MAX_QUIET 14

typedef struct policy_quiet {
    int start_minute_of_day; /* 0-1439 */
    int end_minute_of_day;   /* 0-1439, exclusive */
    unsigned days_mask;      /* bit d-1 for ISO weekday d (1-7); 0 = every day */
} policy_quiet;

/* Field names and meanings as in herald.v1.PostingPolicy. */
typedef struct policy {
    int max_posts_per_hour; /* 0-60; 0 stops posting */
    int max_posts_per_day;  /* 0-1000 (posting_policies allows no more) */
    int min_gap_minutes;    /* 0-1440 */
    policy_quiet quiet_hours[POLICY_MAX_QUIET];
    size_t n_quiet_hours;
    int min_replies_per_hour;          /* 0-60 */
    int max_replies_per_hour;          /* 0-60, >= min */
    int max_replies_per_day;           /* 0-1440, >= max per hour */
    int reply_root_cooldown_hours;     /* 0-720 */
    int reply_author_cooldown_hours;   /* 0-720 */
    int reply_freshness_minutes;       /* 1-10080 */
    int rate_limit_cooldown_minutes;   /* 1-10080 */
    int auth_wall_cooldown_minutes;    /* 1-10080 */
    int challenge_cooldown_minutes;    /* 1-10080; also RESTRICTED */
    double cooldown_target_factor;     /* (0, 1] */
    int max_publish_attempts;          /* 1-20 */
    int retry_initial_backoff_seconds; /* 1-86400 */
    int retry_max_backoff_seconds;     /* 1-86400, >= initial */
    int reconcile_window_minutes;      /* 1-1440 */
} policy;

/* The documented defaults: 2 posts/h, 24/day, 20 min apart, no quiet hours,
 * 4-6 replies/h and 60/day, reply cooldowns 24 h per root and 12 h per
 * author, replies only to posts younger than 180 min; cooldowns 60 min (rate
 * limit), 720 min (auth wall), 360 min (challenge, restricted), targets x0.5;
 * 5 publish attempts, backoff 60 s doubling up to 3600 s; reconcile window
 * 30 min. */
void policy_defaults(policy *p);

/* One broken range or cross-field rule, for INVALID_ARGUMENT's BadRequest. */
typedef struct policy_violation {
    char field[48];        /* proto field path: "quiet_hours[2].end_minute_of_day" */
    char description[128]; /* "must be between 0 and 1439, got 1500" */
} policy_violation;

/* Checks every field of p; writes up to cap violations to v (may be NULL
 * when cap is 0) and returns how many there are in all (0 = valid). */
size_t policy_validate(const policy *p, policy_violation *v, size_t cap);

/* The rules of policy_check. Values are bit positions of its mask. */
typedef enum policy_rule {
    POLICY_RULE_OK = 0,
    POLICY_RULE_INVALID_TIME, /* outside 0001..9999 */
    POLICY_RULE_COOLDOWN,
    POLICY_RULE_QUIET_HOURS,
    POLICY_RULE_MIN_GAP,
    POLICY_RULE_HOURLY_QUOTA,
    POLICY_RULE_DAILY_QUOTA,
} policy_rule;

/* The rule's name as the API shows it (PreconditionFailure.Violation
 * subject): "cooldown", "quiet_hours", "min_gap_minutes",
 * "max_posts_per_hour", "max_posts_per_day", "publish_time"; "" for OK.
 * Static storage. */
const char *policy_rule_name(policy_rule r);

/* A sentence for people ("inside quiet hours"). Static storage. */
const char *policy_rule_describe(policy_rule r);

/* Values match herald.v1.PlatformSignalKind. */
typedef enum policy_signal {
    POLICY_SIGNAL_RATE_LIMITED = 1,
    POLICY_SIGNAL_AUTH_WALL = 2,
    POLICY_SIGNAL_CHALLENGE = 3,
    POLICY_SIGNAL_RESTRICTED = 4,
    POLICY_SIGNAL_CLEARED = 5,
} policy_signal;

/* A platform cooldown: [start_s, end_s); none when end_s <= start_s. */
typedef struct policy_cooldown {
    int64_t start_s;
    int64_t end_s;
    policy_signal kind; /* the signal that set end_s */
} policy_cooldown;

/* The cooldown after a signal at now_s. cur (may be NULL) is the cooldown
 * in force; a new signal never shortens it (end = the later of the two, kind
 * of the later) except CLEARED, which ends it at now_s. RATE_LIMITED uses
 * reset_s when it is after now_s (0 = none given), capped at 7 days ahead;
 * otherwise the policy's minutes for the kind. ST_INVALID for an unknown
 * kind. */
status policy_cooldown_from_signal(const policy *p, const policy_cooldown *cur, policy_signal kind,
                                   int64_t now_s, int64_t reset_s, policy_cooldown *out);

/* Everything a check needs; all pointers borrowed. */
typedef struct policy_ctx {
    const policy *policy;
    const tz_zone *zone;             /* the profile's zone; NULL = UTC */
    const policy_cooldown *cooldown; /* NULL = none */
    const int64_t *posts_s;          /* other posts' instants, any order */
    size_t n_posts;
} policy_ctx;

/* OK or the first broken rule for a post at t_s. *broken (may be NULL)
 * receives the bit mask (1u << rule) of every broken rule. */
policy_rule policy_check(const policy_ctx *ctx, int64_t t_s, unsigned *broken);

/* Targets in force at t_s (after the cooldown factor). */
int policy_hourly_target(const policy_ctx *ctx, int64_t t_s);
int policy_daily_target(const policy_ctx *ctx, int64_t t_s);

/* True when t_s falls in a quiet window (local time of ctx->zone). */
bool policy_in_quiet_hours(const policy_ctx *ctx, int64_t t_s);

/* GetQuotaStatus's numbers at now_s. Posts at or before now_s count as
 * published/leased, later ones as scheduled. */
typedef struct policy_quota {
    int posts_last_hour;    /* in (now - 3600, now] */
    int posts_today;        /* in the local day of now, up to now */
    int scheduled_count;    /* after now */
    int max_posts_per_hour; /* in force now */
    int max_posts_per_day;
    int64_t last_publish_s; /* latest post at or before now; 0 = none */
    int64_t next_allowed_s; /* first second >= now (then whole minutes) that passes
                               policy_check, searched 8 days ahead; 0 = none */
    bool in_quiet_hours;
    bool in_cooldown;
} policy_quota;

void policy_quota_status(const policy_ctx *ctx, int64_t now_s, policy_quota *out);

#endif
