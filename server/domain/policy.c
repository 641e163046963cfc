/* policy.c - posting policy defaults, validation and the publish-time rules. */
#include "policy.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define HOUR_S ((int64_t)3600)
#define DAY_S ((int64_t)86400)
#define COOLDOWN_CAP_S (7 * DAY_S)
#define QUOTA_SEARCH_S (8 * DAY_S)

void policy_defaults(policy *p)
{
    memset(p, 0, sizeof *p);
    p->max_posts_per_hour = 2;
    p->max_posts_per_day = 24;
    p->min_gap_minutes = 20;
    p->min_replies_per_hour = 4;
    p->max_replies_per_hour = 6;
    p->max_replies_per_day = 60;
    p->reply_root_cooldown_hours = 24;
    p->reply_author_cooldown_hours = 12;
    p->reply_freshness_minutes = 180;
    p->rate_limit_cooldown_minutes = 60;
    p->auth_wall_cooldown_minutes = 720;
    p->challenge_cooldown_minutes = 360;
    p->cooldown_target_factor = 0.5;
    p->max_publish_attempts = 5;
    p->retry_initial_backoff_seconds = 60;
    p->retry_max_backoff_seconds = 3600;
    p->reconcile_window_minutes = 30;
}

/* ---------------------------------------------------------------- validation */

typedef struct vlist {
    policy_violation *v;
    size_t cap;
    size_t n;
} vlist;

static void add_violation(vlist *l, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_violation(vlist *l, const char *field, const char *fmt, ...)
{
    char desc[sizeof l->v->description];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(desc, sizeof desc, fmt, ap);
    va_end(ap);
    if (l->n < l->cap) {
        policy_violation *v = &l->v[l->n];
        (void)snprintf(v->field, sizeof v->field, "%s", field);
        memcpy(v->description, desc, sizeof desc);
    }
    l->n++;
}

static void check_range(vlist *l, const char *field, int val, int lo, int hi)
{
    if (val < lo || val > hi)
        add_violation(l, field, "must be between %d and %d, got %d", lo, hi, val);
}

size_t policy_validate(const policy *p, policy_violation *v, size_t cap)
{
    vlist l = { v, v ? cap : 0, 0 };

    /* Ranges are those of herald.v1.PostingPolicy, narrowed where the
     * posting_policies table allows less (cooldown_target_factor > 0), so a
     * valid policy always stores; 0006_scheduling widened max_posts_per_day
     * to the proto's 1,440. */
    check_range(&l, "max_posts_per_hour", p->max_posts_per_hour, 0, 60);
    check_range(&l, "max_posts_per_day", p->max_posts_per_day, 0, 1440);
    check_range(&l, "min_gap_minutes", p->min_gap_minutes, 0, 1440);
    if (p->n_quiet_hours > POLICY_MAX_QUIET) {
        add_violation(&l, "quiet_hours", "at most %d windows, got %zu", POLICY_MAX_QUIET,
                      p->n_quiet_hours);
    } else {
        for (int i = 0; i < (int)p->n_quiet_hours; i++) {
            char f[48]; /* "quiet_hours[" + up to 11 digits + "].start_minute_of_day" fits */
            const policy_quiet *q = &p->quiet_hours[i];
            (void)snprintf(f, sizeof f, "quiet_hours[%d].start_minute_of_day", i);
            check_range(&l, f, q->start_minute_of_day, 0, 1439);
            (void)snprintf(f, sizeof f, "quiet_hours[%d].end_minute_of_day", i);
            check_range(&l, f, q->end_minute_of_day, 0, 1439);
            if (q->days_mask & ~0x7fu) {
                (void)snprintf(f, sizeof f, "quiet_hours[%d].days", i);
                add_violation(&l, f, "days must be DAY_OF_WEEK_MONDAY to DAY_OF_WEEK_SUNDAY");
            }
        }
    }
    check_range(&l, "min_replies_per_hour", p->min_replies_per_hour, 0, 60);
    check_range(&l, "max_replies_per_hour", p->max_replies_per_hour, 0, 60);
    check_range(&l, "max_replies_per_day", p->max_replies_per_day, 0, 1440);
    check_range(&l, "reply_root_cooldown_hours", p->reply_root_cooldown_hours, 0, 720);
    check_range(&l, "reply_author_cooldown_hours", p->reply_author_cooldown_hours, 0, 720);
    check_range(&l, "reply_freshness_minutes", p->reply_freshness_minutes, 1, 10080);
    check_range(&l, "rate_limit_cooldown_minutes", p->rate_limit_cooldown_minutes, 1, 10080);
    check_range(&l, "auth_wall_cooldown_minutes", p->auth_wall_cooldown_minutes, 1, 10080);
    check_range(&l, "challenge_cooldown_minutes", p->challenge_cooldown_minutes, 1, 10080);
    if (!(p->cooldown_target_factor > 0.0 && p->cooldown_target_factor <= 1.0))
        add_violation(&l, "cooldown_target_factor", "must be in (0, 1], got %g",
                      p->cooldown_target_factor);
    check_range(&l, "max_publish_attempts", p->max_publish_attempts, 1, 20);
    check_range(&l, "retry_initial_backoff_seconds", p->retry_initial_backoff_seconds, 1, 86400);
    check_range(&l, "retry_max_backoff_seconds", p->retry_max_backoff_seconds, 1, 86400);
    check_range(&l, "reconcile_window_minutes", p->reconcile_window_minutes, 1, 1440);

    /* Cross-field rules (also CHECK constraints of posting_policies). */
    if (p->max_posts_per_hour > p->max_posts_per_day)
        add_violation(&l, "max_posts_per_hour", "must not exceed max_posts_per_day (%d > %d)",
                      p->max_posts_per_hour, p->max_posts_per_day);
    if (p->min_replies_per_hour > p->max_replies_per_hour)
        add_violation(&l, "min_replies_per_hour", "must not exceed max_replies_per_hour (%d > %d)",
                      p->min_replies_per_hour, p->max_replies_per_hour);
    if (p->max_replies_per_hour > p->max_replies_per_day)
        add_violation(&l, "max_replies_per_hour", "must not exceed max_replies_per_day (%d > %d)",
                      p->max_replies_per_hour, p->max_replies_per_day);
    if (p->retry_initial_backoff_seconds > p->retry_max_backoff_seconds)
        add_violation(&l, "retry_initial_backoff_seconds",
                      "must not exceed retry_max_backoff_seconds (%d > %d)",
                      p->retry_initial_backoff_seconds, p->retry_max_backoff_seconds);
    return l.n;
}

/* ---------------------------------------------------------------- rules */

const char *policy_rule_name(policy_rule r)
{
    switch (r) {
    case POLICY_RULE_OK:
        return "";
    case POLICY_RULE_INVALID_TIME:
        return "publish_time";
    case POLICY_RULE_COOLDOWN:
        return "cooldown";
    case POLICY_RULE_QUIET_HOURS:
        return "quiet_hours";
    case POLICY_RULE_MIN_GAP:
        return "min_gap_minutes";
    case POLICY_RULE_HOURLY_QUOTA:
        return "max_posts_per_hour";
    case POLICY_RULE_DAILY_QUOTA:
        return "max_posts_per_day";
    }
    return "unknown";
}

const char *policy_rule_describe(policy_rule r)
{
    switch (r) {
    case POLICY_RULE_OK:
        return "allowed";
    case POLICY_RULE_INVALID_TIME:
        return "publish time out of range";
    case POLICY_RULE_COOLDOWN:
        return "the profile is in a platform cooldown then";
    case POLICY_RULE_QUIET_HOURS:
        return "inside the profile's quiet hours";
    case POLICY_RULE_MIN_GAP:
        return "closer to another post than the minimum gap";
    case POLICY_RULE_HOURLY_QUOTA:
        return "the hourly post quota would be exceeded";
    case POLICY_RULE_DAILY_QUOTA:
        return "the daily post quota of that local day would be exceeded";
    }
    return "unknown rule";
}

static const tz_zone *ctx_zone(const policy_ctx *ctx)
{
    return ctx->zone ? ctx->zone : tz_utc();
}

/* Local day number (days since 1970-01-01 of the local date); INT64_MIN
 * when t is out of range. */
static int64_t local_day(const tz_zone *z, int64_t t)
{
    tz_local lt;
    if (tz_localtime(z, t, &lt) != ST_OK)
        return INT64_MIN;
    return tz_days_from_civil(lt.year, lt.month, lt.day);
}

static bool cooldown_active(const policy_cooldown *c)
{
    return c != NULL && c->end_s > c->start_s;
}

static int apply_factor(const policy *p, int target)
{
    double v = floor((double)target * p->cooldown_target_factor + 1e-9);
    return v < 0 ? 0 : (int)v;
}

int policy_hourly_target(const policy_ctx *ctx, int64_t t_s)
{
    const policy_cooldown *c = ctx->cooldown;
    int target = ctx->policy->max_posts_per_hour;
    if (cooldown_active(c) && c->start_s <= t_s && c->end_s > t_s - HOUR_S)
        target = apply_factor(ctx->policy, target);
    return target;
}

int policy_daily_target(const policy_ctx *ctx, int64_t t_s)
{
    const policy_cooldown *c = ctx->cooldown;
    int target = ctx->policy->max_posts_per_day;
    if (cooldown_active(c)) {
        const tz_zone *z = ctx_zone(ctx);
        int64_t d = local_day(z, t_s);
        if (local_day(z, c->start_s) <= d && d <= local_day(z, c->end_s - 1))
            target = apply_factor(ctx->policy, target);
    }
    return target;
}

static bool day_in(unsigned mask, int iso_day)
{
    return mask == 0 || (mask & (1u << (iso_day - 1))) != 0;
}

static bool quiet_at(const policy *p, const tz_local *lt)
{
    int m = lt->hour * 60 + lt->minute;
    int today = lt->iso_weekday;
    int yesterday = today == 1 ? 7 : today - 1;
    for (size_t i = 0; i < p->n_quiet_hours && i < POLICY_MAX_QUIET; i++) {
        const policy_quiet *q = &p->quiet_hours[i];
        int s = q->start_minute_of_day, e = q->end_minute_of_day;
        if (s < e) {
            if (m >= s && m < e && day_in(q->days_mask, today))
                return true;
        } else {
            /* wraps midnight (e < s) or lasts 24 h (e == s) */
            if (m >= s && day_in(q->days_mask, today))
                return true;
            if (m < e && day_in(q->days_mask, yesterday))
                return true;
        }
    }
    return false;
}

bool policy_in_quiet_hours(const policy_ctx *ctx, int64_t t_s)
{
    tz_local lt;
    if (tz_localtime(ctx_zone(ctx), t_s, &lt) != ST_OK)
        return false;
    return quiet_at(ctx->policy, &lt);
}

/* Does some 60-minute window [w, w + 3600) containing t hold more posts,
 * t included, than the smallest hourly target in force at any of them? The
 * fullest windows start at t or at a post in (t - 3600, t), so only those
 * starts are tried, over the posts in (t - 3600, t + 3600). Taking the
 * smallest target of the members keeps the rule symmetric: whatever order
 * posts are added in, every window ends within the target of each member.
 * More than NEAR_MAX near posts means one of the two hours around t holds
 * over NEAR_MAX / 2 > 60 >= any target. */
#define NEAR_MAX 256
static bool hourly_exceeded(const policy_ctx *ctx, int64_t t)
{
    int64_t near[NEAR_MAX];
    int near_target[NEAR_MAX];
    size_t n = 0;
    int t_target = policy_hourly_target(ctx, t);

    if (t_target <= 0)
        return true;
    for (size_t i = 0; i < ctx->n_posts; i++) {
        int64_t p = ctx->posts_s[i];
        if (p > t - HOUR_S && p < t + HOUR_S) {
            if (n == NEAR_MAX)
                return true;
            near_target[n] = policy_hourly_target(ctx, p);
            near[n++] = p;
        }
    }
    for (size_t i = 0; i <= n; i++) {
        int64_t w = i == n ? t : near[i];
        if (w > t)
            continue;
        int count = 1; /* t itself */
        int target = t_target;
        for (size_t j = 0; j < n; j++) {
            if (near[j] >= w && near[j] < w + HOUR_S) {
                count++;
                if (near_target[j] < target)
                    target = near_target[j];
            }
        }
        if (count > target)
            return true;
    }
    return false;
}

policy_rule policy_check(const policy_ctx *ctx, int64_t t_s, unsigned *broken)
{
    const policy *p = ctx->policy;
    const tz_zone *z = ctx_zone(ctx);
    unsigned mask = 0;
    tz_local lt;

    if (tz_localtime(z, t_s, &lt) != ST_OK) {
        mask = 1u << POLICY_RULE_INVALID_TIME;
        goto out;
    }
    const policy_cooldown *c = ctx->cooldown;
    if (cooldown_active(c) && t_s >= c->start_s && t_s < c->end_s)
        mask |= 1u << POLICY_RULE_COOLDOWN;
    if (quiet_at(p, &lt))
        mask |= 1u << POLICY_RULE_QUIET_HOURS;
    int64_t gap = (int64_t)p->min_gap_minutes * 60;
    for (size_t i = 0; i < ctx->n_posts && gap > 0; i++) {
        int64_t d = ctx->posts_s[i] - t_s;
        if (d < gap && d > -gap) {
            mask |= 1u << POLICY_RULE_MIN_GAP;
            break;
        }
    }
    if (hourly_exceeded(ctx, t_s))
        mask |= 1u << POLICY_RULE_HOURLY_QUOTA;
    int daily = policy_daily_target(ctx, t_s);
    int64_t day = tz_days_from_civil(lt.year, lt.month, lt.day);
    int count = 1;
    for (size_t i = 0; i < ctx->n_posts && count <= daily; i++) {
        /* Cheap prefilter: a post more than 2 days away cannot share the day. */
        int64_t d = ctx->posts_s[i] - t_s;
        if (d > 2 * DAY_S || d < -2 * DAY_S)
            continue;
        if (local_day(z, ctx->posts_s[i]) == day)
            count++;
    }
    if (count > daily)
        mask |= 1u << POLICY_RULE_DAILY_QUOTA;
out:
    if (broken)
        *broken = mask;
    for (int r = POLICY_RULE_INVALID_TIME; r <= POLICY_RULE_DAILY_QUOTA; r++)
        if (mask & (1u << r))
            return (policy_rule)r;
    return POLICY_RULE_OK;
}

/* ---------------------------------------------------------------- cooldowns */

status policy_cooldown_from_signal(const policy *p, const policy_cooldown *cur, policy_signal kind,
                                   int64_t now_s, int64_t reset_s, policy_cooldown *out)
{
    int64_t len_s;

    memset(out, 0, sizeof *out);
    switch (kind) {
    case POLICY_SIGNAL_RATE_LIMITED:
        len_s = (int64_t)p->rate_limit_cooldown_minutes * 60;
        if (reset_s > now_s)
            len_s = reset_s - now_s > COOLDOWN_CAP_S ? COOLDOWN_CAP_S : reset_s - now_s;
        break;
    case POLICY_SIGNAL_AUTH_WALL:
        len_s = (int64_t)p->auth_wall_cooldown_minutes * 60;
        break;
    case POLICY_SIGNAL_CHALLENGE:
    case POLICY_SIGNAL_RESTRICTED:
        len_s = (int64_t)p->challenge_cooldown_minutes * 60;
        break;
    case POLICY_SIGNAL_CLEARED:
        out->kind = kind;
        out->start_s = cur && cooldown_active(cur) ? cur->start_s : now_s;
        out->end_s = now_s > out->start_s ? now_s : out->start_s;
        return ST_OK;
    default:
        return ST_INVALID;
    }
    out->kind = kind;
    out->start_s = now_s;
    out->end_s = now_s + len_s;
    if (cur && cooldown_active(cur) && cur->end_s > now_s) {
        /* still in force: keep its start, never shorten it */
        out->start_s = cur->start_s < now_s ? cur->start_s : now_s;
        if (cur->end_s > out->end_s) {
            out->end_s = cur->end_s;
            out->kind = cur->kind;
        }
    }
    return ST_OK;
}

/* ---------------------------------------------------------------- quota status */

void policy_quota_status(const policy_ctx *ctx, int64_t now_s, policy_quota *out)
{
    const tz_zone *z = ctx_zone(ctx);
    int64_t today = local_day(z, now_s);

    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < ctx->n_posts; i++) {
        int64_t t = ctx->posts_s[i];
        if (t > now_s) {
            out->scheduled_count++;
            continue;
        }
        if (t > now_s - HOUR_S)
            out->posts_last_hour++;
        if (t > now_s - 2 * DAY_S && local_day(z, t) == today)
            out->posts_today++;
        if (t > out->last_publish_s || out->last_publish_s == 0)
            out->last_publish_s = t;
    }
    out->max_posts_per_hour = policy_hourly_target(ctx, now_s);
    out->max_posts_per_day = policy_daily_target(ctx, now_s);
    out->in_quiet_hours = policy_in_quiet_hours(ctx, now_s);
    const policy_cooldown *c = ctx->cooldown;
    out->in_cooldown = cooldown_active(c) && now_s >= c->start_s && now_s < c->end_s;

    /* Whole minutes after now: every rule changes state on a minute
     * boundary or at a post instant +/- the gap, which we try directly. */
    if (policy_check(ctx, now_s, NULL) == POLICY_RULE_OK) {
        out->next_allowed_s = now_s;
        return;
    }
    /* Instants where a rule can stop applying: a post + the gap or + 1 h,
     * the cooldown's end; then every whole minute (quiet hours, days). */
    int64_t best = 0;
    for (size_t i = 0; i <= 2 * ctx->n_posts; i++) {
        int64_t cand;
        if (i == 2 * ctx->n_posts)
            cand = c ? c->end_s : 0;
        else if (i % 2 == 0)
            cand = ctx->posts_s[i / 2] + (int64_t)ctx->policy->min_gap_minutes * 60;
        else
            cand = ctx->posts_s[i / 2] + HOUR_S;
        if (cand > now_s && cand <= now_s + QUOTA_SEARCH_S && (best == 0 || cand < best) &&
            policy_check(ctx, cand, NULL) == POLICY_RULE_OK)
            best = cand;
    }
    int64_t m = now_s - (now_s % 60 + 60) % 60 + 60;
    for (; m <= now_s + QUOTA_SEARCH_S && (best == 0 || m < best); m += 60) {
        if (policy_check(ctx, m, NULL) == POLICY_RULE_OK) {
            best = m;
            break;
        }
    }
    out->next_allowed_s = best;
}
