/* sched_store.c - SchedulingService's SQL (see sched_store.h). */
#include "sched_store.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "handler.h"
#include "textsim.h"
#include "util.h"

#define US(x) "(extract(epoch FROM " x ") * 1000000)::bigint"
#define NOW_MS "(extract(epoch FROM now()) * 1000)::bigint"

/* ---------------------------------------------------------------- helpers */

static char *adup(arena *a, const char *s)
{
    char *d = arena_strdup(a, s != NULL ? s : "");
    return d != NULL ? d : (char *)"";
}

/* NULL for an SQL NULL, else an arena copy. */
static char *adup_null(arena *a, const db_res *r, int row, int col)
{
    return db_res_null(r, row, col) ? NULL : adup(a, db_res_text(r, row, col));
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t us_to_ms(int64_t us)
{
    return floor_div(us, 1000);
}

static int enum_of(const ProtobufCEnumDescriptor *d, const char *text)
{
    int v = 0;
    return handler_enum_from_db(d, text, &v) ? v : 0;
}

/* The database spelling of an enum value; NULL when unset or unknown. */
static const char *enum_text(const ProtobufCEnumDescriptor *d, int value, char *buf, size_t cap)
{
    return handler_enum_db_name(d, value, buf, cap);
}

static void param_time_or_null(db_params *p, int64_t ms)
{
    if (ms != 0)
        db_param_time_ms(p, ms);
    else
        db_param_null(p);
}

static void param_text_or_null(db_params *p, const char *s)
{
    if (s != NULL && s[0] != '\0')
        db_param_text(p, s);
    else
        db_param_null(p);
}

/* A JSON array of strings (for jsonb_array_elements_text($n::jsonb)). */
static void json_str(strbuf *b, const char *s)
{
    strbuf_putc(b, '"');
    strbuf_json_escape(b, s, strlen(s));
    strbuf_putc(b, '"');
}

static const char *const attempt_state_names[] = {
    [LEASE_ATTEMPT_NONE] = "none",           [LEASE_ATTEMPT_LEASED] = "leased",
    [LEASE_ATTEMPT_SUCCEEDED] = "succeeded", [LEASE_ATTEMPT_FAILED] = "failed",
    [LEASE_ATTEMPT_UNKNOWN] = "unknown",     [LEASE_ATTEMPT_EXPIRED] = "expired",
    [LEASE_ATTEMPT_RELEASED] = "released",
};

static lease_attempt_state attempt_state_of(const char *s)
{
    for (int i = LEASE_ATTEMPT_LEASED; i <= LEASE_ATTEMPT_RELEASED; i++)
        if (strcmp(attempt_state_names[i], s) == 0)
            return (lease_attempt_state)i;
    return LEASE_ATTEMPT_NONE;
}

/* The database spelling of a post state (lease.h names are the same). */
static const char *post_state_text(lease_post_state s)
{
    return lease_post_state_name(s);
}

static const char *outcome_text(lease_outcome o)
{
    return o == LEASE_OUTCOME_NONE ? NULL : lease_outcome_name(o);
}

/* ---------------------------------------------------------------- profiles */

/* The policy columns of posting_policies alias pp, in struct policy order;
 * then the quiet hours as "start,end,mask;..." and the revision. */
#define POLICY_COLS                                                                              \
    "pp.max_posts_per_hour, pp.max_posts_per_day, pp.min_gap_minutes, "                          \
    "pp.min_replies_per_hour, pp.max_replies_per_hour, pp.max_replies_per_day, "                 \
    "pp.reply_root_cooldown_hours, pp.reply_author_cooldown_hours, pp.reply_freshness_minutes, " \
    "pp.rate_limit_cooldown_minutes, pp.auth_wall_cooldown_minutes, "                            \
    "pp.challenge_cooldown_minutes, pp.cooldown_target_factor, pp.max_publish_attempts, "        \
    "pp.retry_initial_backoff_seconds, pp.retry_max_backoff_seconds, "                           \
    "pp.reconcile_window_minutes, "                                                              \
    "COALESCE((SELECT string_agg(concat_ws(',', q->>'start_minute_of_day', "                     \
    "q->>'end_minute_of_day', COALESCE((SELECT sum(1 << ((d::int) - 1)) FROM "                   \
    "jsonb_array_elements_text(COALESCE(q->'days', '[]'::jsonb)) d), 0)), ';' ORDER BY o) "      \
    "FROM jsonb_array_elements(pp.quiet_hours) WITH ORDINALITY AS e(q, o)), ''), "               \
    "pp.revision, " US("pp.updated_at")

enum { POLICY_NCOLS = 20 };

static void row_to_policy(const db_res *r, int row, int c, policy *p)
{
    int *ints[] = {
        &p->max_posts_per_hour,
        &p->max_posts_per_day,
        &p->min_gap_minutes,
        &p->min_replies_per_hour,
        &p->max_replies_per_hour,
        &p->max_replies_per_day,
        &p->reply_root_cooldown_hours,
        &p->reply_author_cooldown_hours,
        &p->reply_freshness_minutes,
        &p->rate_limit_cooldown_minutes,
        &p->auth_wall_cooldown_minutes,
        &p->challenge_cooldown_minutes,
    };
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        *ints[i] = (int)db_res_int64(r, row, c + (int)i);
    p->cooldown_target_factor = db_res_double(r, row, c + 12);
    p->max_publish_attempts = (int)db_res_int64(r, row, c + 13);
    p->retry_initial_backoff_seconds = (int)db_res_int64(r, row, c + 14);
    p->retry_max_backoff_seconds = (int)db_res_int64(r, row, c + 15);
    p->reconcile_window_minutes = (int)db_res_int64(r, row, c + 16);
    const char *q = db_res_text(r, row, c + 17);
    while (*q != '\0' && p->n_quiet_hours < POLICY_MAX_QUIET) {
        /* "start,end,mask" (numbers the query made) */
        char *e1 = NULL, *e2 = NULL, *e3 = NULL;
        long s = strtol(q, &e1, 10);
        long e = *e1 == ',' ? strtol(e1 + 1, &e2, 10) : 0;
        long m = e2 != NULL && *e2 == ',' ? strtol(e2 + 1, &e3, 10) : 0;
        if (e3 != NULL && (*e3 == ';' || *e3 == '\0')) {
            policy_quiet *w = &p->quiet_hours[p->n_quiet_hours++];
            w->start_minute_of_day = (int)s;
            w->end_minute_of_day = (int)e;
            w->days_mask = (unsigned)m;
        }
        const char *semi = strchr(q, ';');
        if (semi == NULL)
            break;
        q = semi + 1;
    }
}

status sched_profile_load_tx(db_conn *db, arena *a, const char *profile_id, bool lock,
                             sched_profile *out)
{
    db_params p;
    db_res *res = NULL;
    memset(out, 0, sizeof *out);
    db_params_init(&p);
    db_param_text(&p, profile_id);
    const char *sql_plain =
        "SELECT pr.profile_id, pr.time_zone, pr.platform, pr.handle, pr.state = 'paused', "
        "pr.publish_kind, " NOW_MS ", pp.profile_id IS NOT NULL, c.profile_id IS NOT NULL, " US(
            "c.start_time") ", " US("c.end_time") ", c.kind, " POLICY_COLS
                                                  " FROM profiles pr LEFT JOIN posting_policies pp "
                                                  "ON pp.profile_id = pr.profile_id "
                                                  "LEFT JOIN profile_cooldowns c ON c.profile_id = "
                                                  "pr.profile_id WHERE pr.profile_id = $1";
    const char *sql_lock =
        "SELECT pr.profile_id, pr.time_zone, pr.platform, pr.handle, pr.state = 'paused', "
        "pr.publish_kind, " NOW_MS ", pp.profile_id IS NOT NULL, c.profile_id IS NOT NULL, " US(
            "c.start_time") ", " US("c.end_time") ", c.kind, " POLICY_COLS
                                                  " FROM profiles pr LEFT JOIN posting_policies pp "
                                                  "ON pp.profile_id = pr.profile_id "
                                                  "LEFT JOIN profile_cooldowns c ON c.profile_id = "
                                                  "pr.profile_id WHERE pr.profile_id = $1 "
                                                  "FOR NO KEY UPDATE OF pr";
    status st = db_query(db, lock ? "sched_profile_lock" : "sched_profile_get",
                         lock ? sql_lock : sql_plain, &p, &res);
    if (st == ST_OK && db_res_rows(res) == 0)
        st = ST_NOT_FOUND;
    if (st != ST_OK)
        goto out;
    out->profile_id = adup(a, db_res_text(res, 0, 0));
    out->time_zone = adup(a, db_res_text(res, 0, 1));
    if (tz_get(out->time_zone, &out->zone, NULL, 0) != ST_OK)
        out->zone = tz_utc();
    out->platform = adup(a, db_res_text(res, 0, 2));
    out->handle = adup(a, db_res_text(res, 0, 3));
    out->paused = db_res_bool(res, 0, 4);
    out->publish_kind = adup(a, db_res_text(res, 0, 5));
    out->now_ms = db_res_int64(res, 0, 6);
    out->policy_stored = db_res_bool(res, 0, 7);
    out->has_cooldown = db_res_bool(res, 0, 8);
    if (out->has_cooldown) {
        out->cooldown.start_s = floor_div(db_res_int64(res, 0, 9), 1000000);
        out->cooldown.end_s = floor_div(db_res_int64(res, 0, 10), 1000000);
        out->cooldown.kind = (policy_signal)enum_of(&herald__v1__platform_signal_kind__descriptor,
                                                    db_res_text(res, 0, 11));
    }
    if (out->policy_stored) {
        row_to_policy(res, 0, 12, &out->policy);
        out->policy_revision = db_res_int64(res, 0, 12 + 18);
        out->policy_update_us = db_res_int64(res, 0, 12 + 19);
    } else {
        policy_defaults(&out->policy);
    }
out:
    db_res_free(res);
    return st;
}

/* The quiet hours as 0002's JSON: [{"start_minute_of_day":..,"end_minute_of_day":..,
 * "days":[1,..]}]. Numbers only. */
static char *quiet_json(const policy *p)
{
    strbuf b = { 0 };
    strbuf_putc(&b, '[');
    for (size_t i = 0; i < p->n_quiet_hours; i++) {
        const policy_quiet *q = &p->quiet_hours[i];
        strbuf_printf(&b, "%s{\"start_minute_of_day\":%d,\"end_minute_of_day\":%d,\"days\":[",
                      i > 0 ? "," : "", q->start_minute_of_day, q->end_minute_of_day);
        bool first = true;
        for (int d = 1; d <= 7; d++) {
            if (q->days_mask & (1u << (d - 1))) {
                strbuf_printf(&b, "%s%d", first ? "" : ",", d);
                first = false;
            }
        }
        strbuf_puts(&b, "]}");
    }
    strbuf_putc(&b, ']');
    return strbuf_take(&b);
}

status sched_policy_put_tx(db_conn *db, const char *profile_id, const policy *pol,
                           int64_t *revision, int64_t *update_us)
{
    db_params p;
    db_res *res = NULL;
    char *quiet = quiet_json(pol);
    db_params_init(&p);
    db_param_text(&p, profile_id);
    db_param_int64(&p, pol->max_posts_per_hour);
    db_param_int64(&p, pol->max_posts_per_day);
    db_param_int64(&p, pol->min_gap_minutes);
    db_param_text(&p, quiet);
    db_param_int64(&p, pol->min_replies_per_hour);
    db_param_int64(&p, pol->max_replies_per_hour);
    db_param_int64(&p, pol->max_replies_per_day);
    db_param_int64(&p, pol->reply_root_cooldown_hours);
    db_param_int64(&p, pol->reply_author_cooldown_hours);
    db_param_int64(&p, pol->reply_freshness_minutes);
    db_param_int64(&p, pol->rate_limit_cooldown_minutes);
    db_param_int64(&p, pol->auth_wall_cooldown_minutes);
    db_param_int64(&p, pol->challenge_cooldown_minutes);
    db_param_double(&p, pol->cooldown_target_factor);
    db_param_int64(&p, pol->max_publish_attempts);
    db_param_int64(&p, pol->retry_initial_backoff_seconds);
    db_param_int64(&p, pol->retry_max_backoff_seconds);
    db_param_int64(&p, pol->reconcile_window_minutes);
    status st = db_query(
        db, "sched_policy_put",
        "INSERT INTO posting_policies AS pp (profile_id, max_posts_per_hour, max_posts_per_day, "
        "min_gap_minutes, quiet_hours, min_replies_per_hour, max_replies_per_hour, "
        "max_replies_per_day, reply_root_cooldown_hours, reply_author_cooldown_hours, "
        "reply_freshness_minutes, rate_limit_cooldown_minutes, auth_wall_cooldown_minutes, "
        "challenge_cooldown_minutes, cooldown_target_factor, max_publish_attempts, "
        "retry_initial_backoff_seconds, retry_max_backoff_seconds, reconcile_window_minutes) "
        "VALUES ($1, $2::int, $3::int, $4::int, $5::jsonb, $6::int, $7::int, $8::int, $9::int, "
        "$10::int, $11::int, $12::int, $13::int, $14::int, $15::float8, $16::int, $17::int, "
        "$18::int, $19::int) ON CONFLICT (profile_id) DO UPDATE SET "
        "max_posts_per_hour = EXCLUDED.max_posts_per_hour, "
        "max_posts_per_day = EXCLUDED.max_posts_per_day, "
        "min_gap_minutes = EXCLUDED.min_gap_minutes, quiet_hours = EXCLUDED.quiet_hours, "
        "min_replies_per_hour = EXCLUDED.min_replies_per_hour, "
        "max_replies_per_hour = EXCLUDED.max_replies_per_hour, "
        "max_replies_per_day = EXCLUDED.max_replies_per_day, "
        "reply_root_cooldown_hours = EXCLUDED.reply_root_cooldown_hours, "
        "reply_author_cooldown_hours = EXCLUDED.reply_author_cooldown_hours, "
        "reply_freshness_minutes = EXCLUDED.reply_freshness_minutes, "
        "rate_limit_cooldown_minutes = EXCLUDED.rate_limit_cooldown_minutes, "
        "auth_wall_cooldown_minutes = EXCLUDED.auth_wall_cooldown_minutes, "
        "challenge_cooldown_minutes = EXCLUDED.challenge_cooldown_minutes, "
        "cooldown_target_factor = EXCLUDED.cooldown_target_factor, "
        "max_publish_attempts = EXCLUDED.max_publish_attempts, "
        "retry_initial_backoff_seconds = EXCLUDED.retry_initial_backoff_seconds, "
        "retry_max_backoff_seconds = EXCLUDED.retry_max_backoff_seconds, "
        "reconcile_window_minutes = EXCLUDED.reconcile_window_minutes, "
        "revision = pp.revision + 1, updated_at = now() "
        "RETURNING pp.revision, " US("pp.updated_at"),
        &p, &res);
    if (st == ST_OK) {
        *revision = db_res_int64(res, 0, 0);
        *update_us = db_res_int64(res, 0, 1);
    }
    db_res_free(res);
    free(quiet);
    return st;
}

status sched_cooldown_put_tx(db_conn *db, const char *profile_id, const char *executor_id,
                             const char *kind, int64_t reset_ms, const char *detail,
                             const policy_cooldown *c)
{
    db_params p;
    char ckind[32];
    const char *ck =
        enum_text(&herald__v1__platform_signal_kind__descriptor, (int)c->kind, ckind, sizeof ckind);
    db_params_init(&p);
    db_param_text(&p, profile_id);
    db_param_text(&p, executor_id != NULL ? executor_id : "");
    db_param_text(&p, kind);
    param_time_or_null(&p, reset_ms);
    db_param_text(&p, detail != NULL ? detail : "");
    db_param_time_ms(&p, c->start_s * 1000);
    db_param_time_ms(&p, c->end_s * 1000);
    db_param_text(&p, ck != NULL ? ck : kind);
    return db_query(
        db, "sched_cooldown_put",
        "WITH s AS (INSERT INTO platform_signals (profile_id, executor_id, kind, reset_time, "
        "cooldown_end, detail) VALUES ($1, $2, $3, $4::timestamptz, CASE WHEN $3 = 'cleared' "
        "THEN NULL ELSE $7::timestamptz END, $5) RETURNING signal_id) "
        "INSERT INTO profile_cooldowns AS c (profile_id, start_time, end_time, kind, signal_id) "
        "SELECT $1, $6::timestamptz, $7::timestamptz, $8, s.signal_id FROM s "
        "ON CONFLICT (profile_id) DO UPDATE SET start_time = EXCLUDED.start_time, "
        "end_time = EXCLUDED.end_time, kind = EXCLUDED.kind, signal_id = EXCLUDED.signal_id, "
        "revision = c.revision + 1, updated_at = now()",
        &p, NULL);
}

status sched_instants_tx(db_conn *db, arena *a, const char *profile_id, const char *exclude_post_id,
                         int64_t from_s, sched_instants *out)
{
    db_params p;
    db_res *res = NULL;
    memset(out, 0, sizeof *out);
    db_params_init(&p);
    db_param_text(&p, profile_id);
    param_text_or_null(&p, exclude_post_id);
    db_param_time_ms(&p, from_s * 1000);
    /* One branch per state so each can use its index; the last row carries
     * the count of SCHEDULED posts (kind NULL). */
    status st = db_query(
        db, "sched_instants",
        "SELECT p.kind = 'reply', floor(extract(epoch FROM p.publish_time))::bigint FROM posts p "
        "WHERE p.profile_id = $1 AND p.publish_time >= $3::timestamptz AND p.state = 'published' "
        "AND ($2::uuid IS NULL OR p.post_id <> $2::uuid) "
        "UNION ALL SELECT p.kind = 'reply', floor(extract(epoch FROM p.schedule_time))::bigint "
        "FROM posts p WHERE p.profile_id = $1 AND p.state = 'scheduled' "
        "AND p.schedule_time >= $3::timestamptz AND ($2::uuid IS NULL OR p.post_id <> $2::uuid) "
        "UNION ALL SELECT p.kind = 'reply', floor(extract(epoch FROM a.claim_time))::bigint "
        "FROM posts p JOIN publish_attempts a ON a.post_id = p.post_id "
        "AND a.attempt_number = p.attempt_count WHERE p.profile_id = $1 "
        "AND p.state IN ('publishing', 'unconfirmed') AND ($2::uuid IS NULL OR p.post_id <> "
        "$2::uuid) "
        "UNION ALL SELECT NULL, count(*) FROM posts p WHERE p.profile_id = $1 "
        "AND p.state = 'scheduled'",
        &p, &res);
    if (st != ST_OK)
        goto out;
    int rows = db_res_rows(res);
    out->posts_s = arena_alloc(a, (size_t)(rows + 1) * sizeof *out->posts_s);
    out->replies_s = arena_alloc(a, (size_t)(rows + 1) * sizeof *out->replies_s);
    if (out->posts_s == NULL || out->replies_s == NULL) {
        st = ST_EXHAUSTED;
        goto out;
    }
    for (int i = 0; i < rows; i++) {
        if (db_res_null(res, i, 0))
            out->scheduled = (int)db_res_int64(res, i, 1);
        else if (db_res_bool(res, i, 0))
            out->replies_s[out->n_replies++] = db_res_int64(res, i, 1);
        else
            out->posts_s[out->n_posts++] = db_res_int64(res, i, 1);
    }
out:
    db_res_free(res);
    return st;
}

/* ---------------------------------------------------------------- slot inputs */

status sched_hour_stats_tx(db_conn *db, const char *profile_id, bandit_stats stats[168], bool *any)
{
    db_params p;
    db_res *res = NULL;
    memset(stats, 0, 168 * sizeof *stats);
    *any = false;
    db_params_init(&p);
    db_param_text(&p, profile_id);
    status st = db_query(db, "sched_hour_stats",
                         "SELECT s.arm_key::int, s.n, s.sum_reward, s.sum_sq, s.pulls, "
                         "(extract(epoch FROM s.updated_at) * 1000)::bigint FROM arm_stats s "
                         "JOIN reward_versions v ON v.reward_version = s.reward_version "
                         "AND v.is_current WHERE s.profile_id = $1 AND s.scope = 'hour_of_week'",
                         &p, &res);
    for (int i = 0; st == ST_OK && i < db_res_rows(res); i++) {
        int64_t h = db_res_int64(res, i, 0);
        if (h < 0 || h > 167)
            continue;
        bandit_stats *s = &stats[h];
        s->n = db_res_double(res, i, 1);
        s->sum = db_res_double(res, i, 2);
        s->sum_sq = db_res_double(res, i, 3);
        s->count = db_res_int64(res, i, 4);
        s->updated_ms = s->n > 0 ? db_res_int64(res, i, 5) : 0;
        if (!bandit_stats_valid(s)) {
            memset(s, 0, sizeof *s); /* unusable: as if the cell had no data */
            continue;
        }
        if (s->n > 0)
            *any = true;
    }
    db_res_free(res);
    return st;
}

status sched_audience_tx(db_conn *db, arena *a, const char *profile_id, size_t max,
                         sched_zone_share **out, size_t *n)
{
    db_params p;
    db_res *res = NULL;
    *out = NULL;
    *n = 0;
    db_params_init(&p);
    db_param_text(&p, profile_id);
    db_param_int64(&p, (int64_t)max);
    status st = db_query(db, "sched_audience",
                         "SELECT e.z->>'time_zone', (e.z->>'share')::float8 FROM audiences au, "
                         "jsonb_array_elements(au.time_zones) WITH ORDINALITY AS e(z, o) "
                         "WHERE au.profile_id = $1 AND jsonb_typeof(e.z) = 'object' "
                         "ORDER BY e.o LIMIT $2::int",
                         &p, &res);
    if (st == ST_OK && db_res_rows(res) > 0) {
        size_t rows = (size_t)db_res_rows(res);
        *out = arena_alloc(a, rows * sizeof **out);
        if (*out == NULL) {
            st = ST_EXHAUSTED;
        } else {
            for (size_t i = 0; i < rows; i++) {
                (*out)[*n].time_zone = adup(a, db_res_text(res, (int)i, 0));
                (*out)[*n].share = db_res_double(res, (int)i, 1);
                (*n)++;
            }
        }
    }
    db_res_free(res);
    return st;
}

status sched_decision_insert_tx(db_conn *db, arena *a, const char *profile_id, int hour_of_week,
                                int64_t target_ms, uint64_t seed, double propensity,
                                const char *candidates_json, const char *reason,
                                const char **decision_id)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, profile_id);
    db_param_int64(&p, hour_of_week);
    db_param_time_ms(&p, target_ms);
    db_param_int64(&p, (int64_t)seed);
    db_param_double(&p, propensity);
    db_param_text(&p, candidates_json != NULL ? candidates_json : "[]");
    db_param_text(&p, reason != NULL ? reason : "");
    status st = db_query(
        db, "sched_decision_insert",
        "INSERT INTO decisions (profile_id, kind, reward_version, hour_of_week, target_time, seed, "
        "propensity, candidates, reason) VALUES ($1, 'timing', (SELECT reward_version FROM "
        "reward_versions WHERE is_current), $2::int, $3::timestamptz, $4::bigint, $5::float8, "
        "$6::jsonb, left($7, 2000)) RETURNING decision_id",
        &p, &res);
    if (st == ST_OK)
        *decision_id = adup(a, db_res_text(res, 0, 0));
    db_res_free(res);
    return st;
}

/* ---------------------------------------------------------------- posts */

#define POST_COLS                                                                                             \
    "p.post_id, p.profile_id, p.state, p.platform, p.kind, p.text, p.content_type, "                          \
    "p.voice_style, p.topic, p.provider, p.llm_model, p.seed, p.human_edited, p.decision_id, "                \
    "p.source_post_id, p.reply_opportunity_id, p.reply_to_external_id, p.content_hash, " US(                  \
        "p."                                                                                                  \
        "sche"                                                                                                \
        "dule"                                                                                                \
        "_tim"                                                                                                \
        "e") ", p.hour_of_week, " US("p.publish_time") ", p.external_id, "                                    \
                                                       "p.external_url, p.attempt_count, "                    \
                                                       "p.last_outcome, p.last_error_class, "                 \
                                                       "p.last_error, " US(                                   \
                                                           "p.next_attempt_time") ", "                        \
                                                                                  "p.state_"                  \
                                                                                  "reason, "                  \
                                                                                  "p.revision,"               \
                                                                                  " " US(                     \
                                                                                      "p."                    \
                                                                                      "created"               \
                                                                                      "_at") ","              \
                                                                                             " " US(          \
                                                                                                 "p.updated_" \
                                                                                                 "at") ", "   \
                                                                                                       "p."   \
                                                                                                       "slot" \
                                                                                                       "_dec" \
                                                                                                       "isio" \
                                                                                                       "n_id"

enum {
    PC_ID = 0,
    PC_PROFILE,
    PC_STATE,
    PC_PLATFORM,
    PC_KIND,
    PC_TEXT,
    PC_CTYPE,
    PC_VSTYLE,
    PC_TOPIC,
    PC_PROVIDER,
    PC_MODEL,
    PC_SEED,
    PC_EDITED,
    PC_DECISION,
    PC_SOURCE,
    PC_REPLY_OPP,
    PC_REPLY_TO,
    PC_HASH,
    PC_SCHEDULE_US,
    PC_HOW,
    PC_PUBLISH_US,
    PC_EXT_ID,
    PC_EXT_URL,
    PC_ATTEMPTS,
    PC_LAST_OUTCOME,
    PC_LAST_CLASS,
    PC_LAST_ERROR,
    PC_NEXT_US,
    PC_REASON,
    PC_REVISION,
    PC_CREATED_US,
    PC_UPDATED_US,
    PC_SLOT_DECISION,
    POST_NCOLS,
};

static Google__Protobuf__Timestamp *ts_col(arena *a, const db_res *r, int row, int col)
{
    return db_res_null(r, row, col) ? NULL : handler_ts_from_us(a, db_res_int64(r, row, col));
}

/* The post in row r starting at column off; NULL when the arena is full. */
static Herald__V1__Post *row_to_post(const db_res *r, int row, int off, arena *a)
{
    Herald__V1__Post *p = arena_alloc(a, sizeof *p);
    if (p == NULL)
        return NULL;
    herald__v1__post__init(p);
#define TXT(c) adup(a, db_res_text(r, row, off + (c)))
#define COL(c) (off + (c))
    p->post_id = TXT(PC_ID);
    p->profile_id = TXT(PC_PROFILE);
    p->state = enum_of(&herald__v1__post_state__descriptor, db_res_text(r, row, COL(PC_STATE)));
    p->platform = enum_of(&herald__v1__platform__descriptor, db_res_text(r, row, COL(PC_PLATFORM)));
    p->kind = enum_of(&herald__v1__post_kind__descriptor, db_res_text(r, row, COL(PC_KIND)));
    p->text = TXT(PC_TEXT);
    if (!db_res_null(r, row, COL(PC_CTYPE)) || !db_res_null(r, row, COL(PC_VSTYLE)) ||
        !db_res_null(r, row, COL(PC_TOPIC))) {
        Herald__V1__ArmChoice *arms = arena_alloc(a, sizeof *arms);
        if (arms == NULL)
            return NULL;
        herald__v1__arm_choice__init(arms);
        arms->content_type = TXT(PC_CTYPE);
        arms->voice_style = TXT(PC_VSTYLE);
        arms->topic = TXT(PC_TOPIC);
        p->arms = arms;
    }
    p->provider = enum_of(&herald__v1__provider__descriptor, db_res_text(r, row, COL(PC_PROVIDER)));
    p->llm_model = TXT(PC_MODEL);
    p->seed = (uint64_t)db_res_int64(r, row, COL(PC_SEED));
    p->human_edited = db_res_bool(r, row, COL(PC_EDITED));
    p->decision_id = TXT(PC_DECISION);
    p->source_post_id = TXT(PC_SOURCE);
    p->reply_opportunity_id = TXT(PC_REPLY_OPP);
    p->reply_to_external_id = TXT(PC_REPLY_TO);
    p->content_hash = TXT(PC_HASH);
    p->schedule_time = ts_col(a, r, row, COL(PC_SCHEDULE_US));
    if (!db_res_null(r, row, COL(PC_HOW))) {
        p->hour_of_week = (int32_t)db_res_int64(r, row, COL(PC_HOW));
        p->hour_of_week_opt_case = HERALD__V1__POST__HOUR_OF_WEEK_OPT_HOUR_OF_WEEK;
    }
    p->publish_time = ts_col(a, r, row, COL(PC_PUBLISH_US));
    p->external_id = TXT(PC_EXT_ID);
    p->external_url = TXT(PC_EXT_URL);
    p->attempt_count = (int32_t)db_res_int64(r, row, COL(PC_ATTEMPTS));
    p->last_outcome = enum_of(&herald__v1__publish_outcome__descriptor,
                              db_res_text(r, row, COL(PC_LAST_OUTCOME)));
    p->last_error_class = enum_of(&herald__v1__publish_error_class__descriptor,
                                  db_res_text(r, row, COL(PC_LAST_CLASS)));
    p->last_error = TXT(PC_LAST_ERROR);
    p->next_attempt_time = ts_col(a, r, row, COL(PC_NEXT_US));
    p->state_reason = TXT(PC_REASON);
    p->revision = db_res_int64(r, row, COL(PC_REVISION));
    p->create_time = ts_col(a, r, row, COL(PC_CREATED_US));
    p->update_time = ts_col(a, r, row, COL(PC_UPDATED_US));
    p->timing_decision_id = TXT(PC_SLOT_DECISION);
#undef TXT
#undef COL
    if (arena_exhausted(a))
        return NULL;
    return p;
}

status sched_post_get_tx(db_conn *db, arena *a, const char *post_id, bool lock,
                         Herald__V1__Post **out, sched_post_meta *meta)
{
    db_params p;
    db_res *res = NULL;
    *out = NULL;
    db_params_init(&p);
    db_param_text(&p, post_id);
    status st =
        lock ? db_query(db, "sched_post_lock",
                        "SELECT " POST_COLS ", (SELECT a.state = 'leased' FROM publish_attempts a "
                        "WHERE a.post_id = p.post_id AND a.attempt_number = p.attempt_count) "
                        "FROM posts p WHERE p.post_id = $1::uuid FOR UPDATE OF p",
                        &p, &res)
             : db_query(db, "sched_post_get",
                        "SELECT " POST_COLS ", (SELECT a.state = 'leased' FROM publish_attempts a "
                        "WHERE a.post_id = p.post_id AND a.attempt_number = p.attempt_count) "
                        "FROM posts p WHERE p.post_id = $1::uuid",
                        &p, &res);
    if (st == ST_OK && db_res_rows(res) == 0)
        st = ST_NOT_FOUND;
    if (st == ST_OK) {
        *out = row_to_post(res, 0, 0, a);
        if (*out == NULL)
            st = ST_EXHAUSTED;
    }
    if (st == ST_OK && meta != NULL) {
        meta->state = (lease_post_state)(*out)->state;
        meta->reply = (*out)->kind == HERALD__V1__POST_KIND__POST_KIND_REPLY;
        meta->attempt_count = (*out)->attempt_count;
        meta->live_lease = db_res_bool(res, 0, POST_NCOLS);
        meta->profile_id = (*out)->profile_id;
    }
    db_res_free(res);
    return st;
}

status sched_post_schedule_tx(db_conn *db, const char *post_id, int64_t schedule_ms,
                              int hour_of_week, const char *decision_id)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, post_id);
    db_param_time_ms(&p, schedule_ms);
    if (hour_of_week >= 0)
        db_param_int64(&p, hour_of_week);
    else
        db_param_null(&p);
    param_text_or_null(&p, decision_id);
    status st = db_query(db, "sched_post_schedule",
                         "UPDATE posts SET state = 'scheduled', schedule_time = $2::timestamptz, "
                         "hour_of_week = $3::smallint, slot_decision_id = $4::uuid, "
                         "state_reason = '', revision = revision + 1, updated_at = now() "
                         "WHERE post_id = $1::uuid",
                         &p, &res);
    if (st == ST_OK && db_res_affected(res) == 0)
        st = ST_NOT_FOUND;
    db_res_free(res);
    return st;
}

/* ---------------------------------------------------------------- lease records */

/* The columns of an attempt (alias a) and its post (alias p) as lease.h
 * sees them, the lease limits of the post's policy and the clock. */
#define REC_COLS                                                                                                                                                                    \
    "a.lease_id, a.post_id, a.attempt_number, a.executor_id, a.state, " US(                                                                                                         \
        "a.claim_time") ", " US("a.expire_time") ", " US("a.finish_time") ", a.outcome, "                                                                                           \
                                                                          "a.error_class, "                                                                                         \
                                                                          "a.external_id, "                                                                                         \
                                                                          "p.state, "                                                                                               \
                                                                          "p.attempt_count, " US("p.schedule_time") ", " US(                                                        \
                                                                              "p.next_attempt_"                                                                                     \
                                                                              "time") ", " US("p."                                                                                  \
                                                                                              "pu"                                                                                  \
                                                                                              "bl"                                                                                  \
                                                                                              "is"                                                                                  \
                                                                                              "h_"                                                                                  \
                                                                                              "ti"                                                                                  \
                                                                                              "m"                                                                                   \
                                                                                              "e") ", p.external_id, p.last_outcome, "                                              \
                                                                                                   "p.last_error_class, p.state_reason, p.profile_id, p.platform, p.content_hash, " \
                                                                                                   "pp.max_publish_attempts, pp.retry_initial_backoff_seconds, "                    \
                                                                                                   "pp.retry_max_backoff_seconds, pp.reconcile_window_minutes, " NOW_MS

enum {
    RC_LEASE = 0,
    RC_POST,
    RC_NUMBER,
    RC_EXECUTOR,
    RC_ASTATE,
    RC_CLAIM_US,
    RC_EXPIRE_US,
    RC_FINISH_US,
    RC_OUTCOME,
    RC_CLASS,
    RC_AEXT,
    RC_PSTATE,
    RC_ATTEMPTS,
    RC_SCHEDULE_US,
    RC_NEXT_US,
    RC_PUBLISH_US,
    RC_PEXT,
    RC_LAST_OUTCOME,
    RC_LAST_CLASS,
    RC_REASON,
    RC_PROFILE,
    RC_PLATFORM,
    RC_HASH,
    RC_MAX_ATTEMPTS,
    RC_BACKOFF_INIT,
    RC_BACKOFF_MAX,
    RC_WINDOW,
    RC_NOW,
    REC_NCOLS,
};

typedef struct sched_rec {
    lease_record rec;
    lease_limits lim;
    const char *lease_id; /* arena */
    const char *post_id;
    const char *profile_id;
    const char *platform;
    const char *content_hash;
    int64_t now_ms;
} sched_rec;

static int64_t ms_col(const db_res *r, int row, int col)
{
    return db_res_null(r, row, col) ? 0 : us_to_ms(db_res_int64(r, row, col));
}

static void row_to_rec(const db_res *r, int row, arena *a, sched_rec *out)
{
    memset(out, 0, sizeof *out);
    lease_attempt *at = &out->rec.attempt;
    lease_post *po = &out->rec.post;
    out->lease_id = adup(a, db_res_text(r, row, RC_LEASE));
    out->post_id = adup(a, db_res_text(r, row, RC_POST));
    at->number = (int)db_res_int64(r, row, RC_NUMBER);
    at->executor_id = adup(a, db_res_text(r, row, RC_EXECUTOR));
    at->state = attempt_state_of(db_res_text(r, row, RC_ASTATE));
    at->claim_ms = ms_col(r, row, RC_CLAIM_US);
    at->expire_ms = ms_col(r, row, RC_EXPIRE_US);
    at->finish_ms = ms_col(r, row, RC_FINISH_US);
    at->outcome = (lease_outcome)enum_of(&herald__v1__publish_outcome__descriptor,
                                         db_res_text(r, row, RC_OUTCOME));
    at->error_class =
        enum_of(&herald__v1__publish_error_class__descriptor, db_res_text(r, row, RC_CLASS));
    at->external_id = adup_null(a, r, row, RC_AEXT);
    po->state = (lease_post_state)enum_of(&herald__v1__post_state__descriptor,
                                          db_res_text(r, row, RC_PSTATE));
    po->attempt_count = (int)db_res_int64(r, row, RC_ATTEMPTS);
    po->schedule_ms = ms_col(r, row, RC_SCHEDULE_US);
    po->next_attempt_ms = ms_col(r, row, RC_NEXT_US);
    po->publish_ms = ms_col(r, row, RC_PUBLISH_US);
    po->external_id = adup_null(a, r, row, RC_PEXT);
    po->last_outcome = (lease_outcome)enum_of(&herald__v1__publish_outcome__descriptor,
                                              db_res_text(r, row, RC_LAST_OUTCOME));
    po->last_error_class =
        enum_of(&herald__v1__publish_error_class__descriptor, db_res_text(r, row, RC_LAST_CLASS));
    po->state_reason = adup(a, db_res_text(r, row, RC_REASON));
    out->profile_id = adup(a, db_res_text(r, row, RC_PROFILE));
    out->platform = adup(a, db_res_text(r, row, RC_PLATFORM));
    out->content_hash = adup(a, db_res_text(r, row, RC_HASH));
    policy d;
    policy_defaults(&d);
    if (!db_res_null(r, row, RC_MAX_ATTEMPTS)) {
        d.max_publish_attempts = (int)db_res_int64(r, row, RC_MAX_ATTEMPTS);
        d.retry_initial_backoff_seconds = (int)db_res_int64(r, row, RC_BACKOFF_INIT);
        d.retry_max_backoff_seconds = (int)db_res_int64(r, row, RC_BACKOFF_MAX);
        d.reconcile_window_minutes = (int)db_res_int64(r, row, RC_WINDOW);
    }
    lease_limits_from_policy(&d, &out->lim);
    out->now_ms = db_res_int64(r, row, RC_NOW);
}

/* The attempt lease_id names with its post, locked (post first, as every
 * writer of both does). ST_NOT_FOUND when there is no such lease. */
static status rec_load_tx(db_conn *db, arena *a, const char *lease_id, sched_rec *out)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, lease_id);
    status st = db_query(db, "sched_lease_load",
                         "SELECT " REC_COLS " FROM posts p JOIN publish_attempts a "
                         "ON a.post_id = p.post_id LEFT JOIN posting_policies pp "
                         "ON pp.profile_id = p.profile_id WHERE a.lease_id = $1::uuid "
                         "FOR UPDATE OF p, a",
                         &p, &res);
    if (st == ST_OK && db_res_rows(res) == 0)
        st = ST_NOT_FOUND;
    if (st == ST_OK)
        row_to_rec(res, 0, a, out);
    db_res_free(res);
    return st;
}

/* rec_load_tx plus the post as a message (for REPORT's reply), one statement. */
static status rec_load_post_tx(db_conn *db, arena *a, const char *lease_id, sched_rec *out,
                               Herald__V1__Post **post)
{
    db_params p;
    db_res *res = NULL;
    db_params_init(&p);
    db_param_text(&p, lease_id);
    status st = db_query(db, "sched_lease_load_post",
                         "SELECT " REC_COLS ", " POST_COLS " FROM posts p JOIN publish_attempts a "
                         "ON a.post_id = p.post_id LEFT JOIN posting_policies pp "
                         "ON pp.profile_id = p.profile_id WHERE a.lease_id = $1::uuid "
                         "FOR UPDATE OF p, a",
                         &p, &res);
    if (st == ST_OK && db_res_rows(res) == 0)
        st = ST_NOT_FOUND;
    if (st == ST_OK) {
        row_to_rec(res, 0, a, out);
        *post = row_to_post(res, 0, REC_NCOLS, a);
        if (*post == NULL)
            st = ST_EXHAUSTED;
    }
    db_res_free(res);
    return st;
}

static Herald__V1__Lease *lease_msg(arena *a, const char *lease_id, const char *post_id,
                                    const lease_attempt *at)
{
    Herald__V1__Lease *l = arena_alloc(a, sizeof *l);
    if (l == NULL)
        return NULL;
    herald__v1__lease__init(l);
    l->lease_id = adup(a, lease_id);
    l->post_id = adup(a, post_id);
    l->executor_id = adup(a, at->executor_id);
    l->attempt_number = at->number;
    l->claim_time = handler_ts_from_ms(a, at->claim_ms);
    l->expire_time = handler_ts_from_ms(a, at->expire_ms);
    return arena_exhausted(a) ? NULL : l;
}

/* ---------------------------------------------------------------- expiry */

status sched_expire_lapsed_tx(db_conn *db, const char *profile_id, int limit, int *expired)
{
    db_params p;
    db_res *res = NULL;
    strbuf ids = { 0 };
    arena *a = NULL;
    *expired = 0;
    db_params_init(&p);
    param_text_or_null(&p, profile_id);
    db_param_int64(&p, limit);
    status st = db_query(db, "sched_expire_find",
                         "SELECT " REC_COLS " FROM publish_attempts a JOIN posts p "
                         "ON p.post_id = a.post_id LEFT JOIN posting_policies pp "
                         "ON pp.profile_id = p.profile_id WHERE a.state = 'leased' "
                         "AND a.expire_time <= now() AND ($1::text IS NULL OR p.profile_id = $1) "
                         "ORDER BY a.expire_time LIMIT $2::int FOR UPDATE OF p, a SKIP LOCKED",
                         &p, &res);
    if (st != ST_OK || db_res_rows(res) == 0)
        goto out;
    a = arena_new(0);
    int64_t now_ms = 0;
    strbuf_putc(&ids, '{');
    for (int i = 0; i < db_res_rows(res); i++) {
        sched_rec r;
        lease_result lr;
        row_to_rec(res, i, a, &r);
        now_ms = r.now_ms;
        lease_event ev = { .kind = LEASE_EV_EXPIRE, .now_ms = r.now_ms };
        /* EXPIRE validates the lapse (and the record); the post then goes to
         * UNCONFIRMED instead of back to the queue (sched_store.h). */
        if (lease_apply(&r.lim, &r.rec, &ev, &lr) != ST_OK)
            continue;
        strbuf_printf(&ids, "%s%s", *expired > 0 ? "," : "", r.lease_id);
        (*expired)++;
    }
    strbuf_putc(&ids, '}');
    if (*expired == 0)
        goto out;
    db_res_free(res);
    res = NULL;
    db_params_init(&p);
    db_param_text(&p, ids.data);
    db_param_time_ms(&p, now_ms);
    db_param_text(&p, SCHED_EXPIRED_REASON);
    st = db_query(db, "sched_expire_write",
                  "WITH a AS (UPDATE publish_attempts SET state = 'expired', "
                  "finish_time = $2::timestamptz WHERE lease_id = ANY($1::uuid[]) "
                  "AND state = 'leased' RETURNING post_id) "
                  "UPDATE posts p SET state = 'unconfirmed', next_attempt_time = NULL, "
                  "last_outcome = 'unknown', last_error_class = 'timeout', "
                  "last_error = 'lease lapsed without a report', state_reason = $3, "
                  "revision = p.revision + 1, updated_at = now() FROM a "
                  "WHERE p.post_id = a.post_id",
                  &p, NULL);
out:
    arena_free(a);
    strbuf_fini(&ids);
    db_res_free(res);
    return st;
}

/* ---------------------------------------------------------------- claims */

status sched_claim_tx(db_conn *db, arena *a, const sched_claim *c, sched_work **out, size_t *n,
                      int64_t *now_ms)
{
    db_params p;
    db_res *res = NULL, *wres = NULL;
    strbuf ids = { 0 }, nums = { 0 };
    int expired = 0;
    *out = NULL;
    *n = 0;
    *now_ms = 0;
    const char *profile = c->profile_id != NULL && c->profile_id[0] != '\0' ? c->profile_id : NULL;

    status st = sched_expire_lapsed_tx(db, profile, SCHED_EXPIRE_BATCH, &expired);
    if (st != ST_OK)
        return st;

    db_params_init(&p);
    param_text_or_null(&p, profile);
    if (c->platforms != NULL)
        db_param_text(&p, c->platforms);
    else
        db_param_null(&p);
    db_param_bool(&p, c->builtin);
    db_param_int64(&p, c->limit);
    /* The profile and cooldown checks are per-row subqueries, not joins:
     * as an anti-join the cooldown test was estimated at one row, and the
     * planner then fetched every scheduled post of the profile and sorted
     * them (47-60 ms a claim at 12,000 due posts) instead of walking
     * posts_due_idx in schedule order and stopping at the limit (0.5-1 ms;
     * bench/run after a churned queue: 50 per claim 403 -> 888 posts/s,
     * with ReportPublishResults 681 -> 3,517). */
    st = db_query(
        db, "sched_claim_find",
        "SELECT " POST_COLS ", (SELECT a.state FROM publish_attempts a WHERE a.post_id = p.post_id "
        "AND a.attempt_number = p.attempt_count), " NOW_MS
        " FROM posts p "
        "WHERE p.state = 'scheduled' AND p.schedule_time <= now() "
        "AND (p.next_attempt_time IS NULL OR p.next_attempt_time <= now()) "
        "AND ($1::text IS NULL OR p.profile_id = $1) "
        "AND ($2::text[] IS NULL OR p.platform = ANY($2::text[])) "
        "AND COALESCE((SELECT pr.state = 'active' AND (pr.publish_kind <> 'executor') = $3::bool "
        "FROM profiles pr WHERE pr.profile_id = p.profile_id), false) "
        "AND NOT COALESCE((SELECT cd.start_time <= now() AND cd.end_time > now() "
        "FROM profile_cooldowns cd WHERE cd.profile_id = p.profile_id), false) "
        "ORDER BY p.schedule_time LIMIT $4::int FOR UPDATE OF p SKIP LOCKED",
        &p, &res);
    if (st != ST_OK || db_res_rows(res) == 0)
        goto out;
    int rows = db_res_rows(res);
    sched_work *w = arena_calloc(a, (size_t)rows * sizeof *w);
    lease_attempt *ats = arena_alloc(a, (size_t)rows * sizeof *ats);
    if (w == NULL || ats == NULL) {
        st = ST_EXHAUSTED;
        goto out;
    }
    size_t m = 0;
    policy defaults;
    lease_limits lim;
    policy_defaults(&defaults);
    lease_limits_from_policy(&defaults, &lim); /* CLAIM does not use them */
    strbuf_putc(&ids, '{');
    strbuf_putc(&nums, '{');
    for (int i = 0; i < rows; i++) {
        Herald__V1__Post *post = row_to_post(res, i, 0, a);
        if (post == NULL) {
            st = ST_EXHAUSTED;
            goto out;
        }
        *now_ms = db_res_int64(res, i, POST_NCOLS + 1);
        lease_record rec;
        memset(&rec, 0, sizeof rec);
        rec.post.state = (lease_post_state)post->state;
        rec.post.attempt_count = post->attempt_count;
        rec.post.schedule_ms = us_to_ms(db_res_int64(res, i, PC_SCHEDULE_US));
        rec.post.next_attempt_ms = ms_col(res, i, PC_NEXT_US);
        rec.post.state_reason = "";
        rec.attempt.number = post->attempt_count;
        rec.attempt.state = db_res_null(res, i, POST_NCOLS)
                                ? LEASE_ATTEMPT_NONE
                                : attempt_state_of(db_res_text(res, i, POST_NCOLS));
        if (rec.attempt.number > 0 && rec.attempt.state == LEASE_ATTEMPT_NONE)
            rec.attempt.number = 0; /* counted attempts without a row: treat as none */
        lease_event ev = { .kind = LEASE_EV_CLAIM,
                           .now_ms = *now_ms,
                           .executor_id = c->executor_id,
                           .lease_ms = c->lease_ms };
        lease_result lr;
        if (lease_apply(&lim, &rec, &ev, &lr) != ST_OK)
            continue; /* not claimable after all (a broken row): leave it */
        post->state = HERALD__V1__POST_STATE__POST_STATE_PUBLISHING;
        post->attempt_count = rec.post.attempt_count;
        post->next_attempt_time = NULL;
        post->state_reason = (char *)"";
        w[m].post = post;
        ats[m] = rec.attempt;
        strbuf_printf(&ids, "%s%s", m > 0 ? "," : "", post->post_id);
        strbuf_printf(&nums, "%s%d", m > 0 ? "," : "", rec.post.attempt_count);
        m++;
    }
    strbuf_putc(&ids, '}');
    strbuf_putc(&nums, '}');
    if (m == 0)
        goto out;
    db_params_init(&p);
    db_param_text(&p, ids.data);
    db_param_text(&p, nums.data);
    db_param_text(&p, c->executor_id);
    db_param_time_ms(&p, ats[0].claim_ms);
    db_param_time_ms(&p, ats[0].expire_ms);
    st = db_query(
        db, "sched_claim_write",
        "WITH u AS (SELECT * FROM unnest($1::uuid[], $2::int[]) AS u(post_id, n)), "
        "ins AS (INSERT INTO publish_attempts (post_id, attempt_number, executor_id, "
        "claim_time, expire_time) SELECT u.post_id, u.n, $3, $4::timestamptz, "
        "$5::timestamptz FROM u RETURNING lease_id, post_id), "
        "upd AS (UPDATE posts p SET state = 'publishing', attempt_count = u.n, "
        "next_attempt_time = NULL, state_reason = '', revision = p.revision + 1, "
        "updated_at = now() FROM u WHERE p.post_id = u.post_id "
        "RETURNING p.post_id, p.revision, " US(
            "p.updated_at") " AS upd_us) "
                            "SELECT ins.lease_id, ins.post_id::text, upd.revision, upd.upd_us "
                            "FROM ins JOIN upd ON upd.post_id = ins.post_id",
        &p, &wres);
    if (st != ST_OK)
        goto out;
    if ((size_t)db_res_rows(wres) != m) {
        st = ST_INTERNAL;
        goto out;
    }
    for (int i = 0; i < db_res_rows(wres); i++) {
        const char *pid = db_res_text(wres, i, 1);
        for (size_t k = 0; k < m; k++) {
            if (w[k].lease != NULL || strcmp(w[k].post->post_id, pid) != 0)
                continue;
            w[k].post->revision = db_res_int64(wres, i, 2);
            w[k].post->update_time = handler_ts_from_us(a, db_res_int64(wres, i, 3));
            w[k].lease = lease_msg(a, db_res_text(wres, i, 0), pid, &ats[k]);
            if (w[k].lease == NULL) {
                st = ST_EXHAUSTED;
                goto out;
            }
            break;
        }
    }
    *out = w;
    *n = m;
out:
    strbuf_fini(&ids);
    strbuf_fini(&nums);
    db_res_free(res);
    db_res_free(wres);
    return st;
}

/* ---------------------------------------------------------------- renew */

status sched_renew_tx(db_conn *db, arena *a, const char *lease_id, const char *executor_id,
                      int64_t lease_ms, Herald__V1__Lease **out, sched_refusal *why)
{
    sched_rec r;
    lease_result lr;
    *out = NULL;
    why->st = ST_OK;
    why->reason = "";
    status st = rec_load_tx(db, a, lease_id, &r);
    if (st != ST_OK)
        return st;
    lease_event ev = {
        .kind = LEASE_EV_RENEW, .now_ms = r.now_ms, .executor_id = executor_id, .lease_ms = lease_ms
    };
    st = lease_apply(&r.lim, &r.rec, &ev, &lr);
    if (st != ST_OK) {
        why->st = st;
        why->reason = lr.reason;
        return st;
    }
    db_params p;
    db_params_init(&p);
    db_param_text(&p, lease_id);
    db_param_time_ms(&p, r.rec.attempt.expire_ms);
    st = db_query(db, "sched_renew",
                  "UPDATE publish_attempts SET expire_time = $2::timestamptz "
                  "WHERE lease_id = $1::uuid AND state = 'leased'",
                  &p, NULL);
    if (st == ST_OK) {
        *out = lease_msg(a, r.lease_id, r.post_id, &r.rec.attempt);
        if (*out == NULL)
            st = ST_EXHAUSTED;
    }
    return st;
}

/* ---------------------------------------------------------------- report */

/* The REPORT event of rq on the attempt r loaded. */
static lease_event report_event(const sched_rec *r, const sched_report *rq)
{
    lease_event ev = { .kind = LEASE_EV_REPORT,
                       .now_ms = r->now_ms,
                       .executor_id = rq->executor_id,
                       .outcome = rq->outcome,
                       .error_class = rq->error_class,
                       .external_id = rq->external_id,
                       .publish_ms = rq->publish_ms,
                       .retry_after_s = rq->retry_after_s,
                       .jitter = backoff_jitter(r->lease_id, strlen(r->lease_id)) };
    return ev;
}

static void json_ms_or_null(strbuf *b, const char *key, int64_t ms)
{
    if (ms != 0)
        strbuf_printf(b, ",\"%s\":%lld", key, (long long)ms);
    else
        strbuf_printf(b, ",\"%s\":null", key);
}

static void json_text_or_null(strbuf *b, const char *key, const char *s)
{
    strbuf_printf(b, ",\"%s\":", key);
    if (s != NULL)
        json_str(b, s);
    else
        strbuf_puts(b, "null");
}

/* Appends to b (a JSON array being built) what REPORT rq changed in r
 * (after lease_apply): one row of sched_report_write's recordset. */
static void report_row_json(strbuf *b, const sched_rec *r, const sched_report *rq)
{
    char cls[40];
    const lease_attempt *at = &r->rec.attempt;
    const lease_post *po = &r->rec.post;
    bool success = rq->outcome == LEASE_OUTCOME_SUCCESS;
    strbuf_putc(b, b->len > 1 ? ',' : '[');
    strbuf_puts(b, "{\"lease_id\":");
    json_str(b, r->lease_id);
    strbuf_printf(b, ",\"astate\":\"%s\"", attempt_state_names[at->state]);
    json_ms_or_null(b, "finish_ms", at->finish_ms);
    strbuf_printf(b, ",\"outcome\":\"%s\"", outcome_text(at->outcome));
    json_text_or_null(
        b, "error_class",
        enum_text(&herald__v1__publish_error_class__descriptor, at->error_class, cls, sizeof cls));
    json_text_or_null(b, "error_message",
                      success ? "" : (rq->error_message != NULL ? rq->error_message : ""));
    json_text_or_null(b, "external_id", success ? at->external_id : NULL);
    json_text_or_null(b, "external_url", success ? rq->external_url : NULL);
    json_ms_or_null(b, "publish_ms", success ? po->publish_ms : 0);
    if (rq->retry_after_s >= 0)
        strbuf_printf(b, ",\"retry_after\":%d", rq->retry_after_s);
    strbuf_printf(b, ",\"pstate\":\"%s\"", post_state_text(po->state));
    json_ms_or_null(b, "next_ms", po->next_attempt_ms);
    json_text_or_null(b, "reason", po->state_reason != NULL ? po->state_reason : "");
    strbuf_printf(b, ",\"success\":%s}", success ? "true" : "false");
}

/* Writes the reported attempts in rows (report_row_json's array, closed
 * here) and their posts: one statement for any number. *res gets
 * (post_id, revision) per post written. */
static status report_write(db_conn *db, strbuf *rows, db_res **res)
{
    db_params p;
    strbuf_putc(rows, ']');
    db_params_init(&p);
    db_param_text(&p, rows->data);
    return db_query(
        db, "sched_report_write",
        "WITH x AS (SELECT * FROM json_to_recordset($1::json) AS x(lease_id uuid, astate text, "
        "finish_ms bigint, outcome text, error_class text, error_message text, external_id text, "
        "external_url text, publish_ms bigint, retry_after int, pstate text, next_ms bigint, "
        "reason text, success bool)), "
        "a AS (UPDATE publish_attempts t SET state = x.astate, "
        "finish_time = timestamptz 'epoch' + x.finish_ms * interval '1 ms', outcome = x.outcome, "
        "error_class = x.error_class, error_message = left(x.error_message, 2000), "
        "external_id = x.external_id, external_url = x.external_url, "
        "publish_time = timestamptz 'epoch' + x.publish_ms * interval '1 ms', "
        "retry_after_seconds = x.retry_after FROM x WHERE t.lease_id = x.lease_id "
        /* the ANY lets the generic plan probe the primary key rather than
         * hash the whole table against the recordset's 100-row guess */
        "AND t.lease_id = ANY(ARRAY(SELECT lease_id FROM x)) "
        "RETURNING t.post_id, t.lease_id) "
        "UPDATE posts p SET state = x.pstate, "
        "next_attempt_time = timestamptz 'epoch' + x.next_ms * interval '1 ms', "
        "state_reason = left(x.reason, 1000), last_outcome = x.outcome, "
        "last_error_class = x.error_class, "
        "last_error = CASE WHEN x.success THEN p.last_error ELSE left(x.error_message, 2000) END, "
        "publish_time = CASE WHEN x.success THEN timestamptz 'epoch' + x.publish_ms * "
        "interval '1 ms' ELSE p.publish_time END, "
        "external_id = CASE WHEN x.success THEN x.external_id ELSE p.external_id END, "
        "external_url = CASE WHEN x.success THEN x.external_url ELSE p.external_url END, "
        "revision = p.revision + 1, updated_at = now() FROM a JOIN x ON x.lease_id = a.lease_id "
        "WHERE p.post_id = a.post_id RETURNING p.post_id::text, p.revision",
        &p, res);
}

status sched_report_tx(db_conn *db, arena *a, const sched_report *rq, sched_report_result *out,
                       sched_refusal *why)
{
    sched_rec r;
    lease_result lr;
    db_res *res = NULL;
    strbuf rows = { 0 };
    memset(out, 0, sizeof *out);
    why->st = ST_OK;
    why->reason = "";

    Herald__V1__Post *post = NULL;
    status st = rec_load_post_tx(db, a, rq->lease_id, &r, &post);
    if (st != ST_OK)
        return st;
    if (strcmp(r.post_id, rq->post_id) != 0) {
        why->st = ST_FAILED_PRECONDITION;
        why->reason = "the lease is for another post";
        return why->st;
    }
    lease_event ev = report_event(&r, rq);
    st = lease_apply(&r.lim, &r.rec, &ev, &lr);
    if (st != ST_OK) {
        why->st = st;
        why->reason = lr.reason;
        return st;
    }
    if (lr.duplicate || !lr.changed) {
        out->duplicate = lr.duplicate;
        out->post = post;
        if (lr.duplicate && rq->outcome == LEASE_OUTCOME_RETRYABLE &&
            r.rec.post.state == LEASE_POST_SCHEDULED &&
            r.rec.post.attempt_count == r.rec.attempt.number)
            out->next_attempt_ms = r.rec.post.next_attempt_ms;
        return ST_OK;
    }
    out->next_attempt_ms = lr.next_attempt_ms;
    const lease_attempt *at = &r.rec.attempt;
    const lease_post *po = &r.rec.post;
    bool success = rq->outcome == LEASE_OUTCOME_SUCCESS;
    report_row_json(&rows, &r, rq);
    status wst = report_write(db, &rows, &res);
    if (wst == ST_OK && db_res_rows(res) != 1)
        wst = ST_INTERNAL;
    if (wst == ST_OK) {
        /* the reply: the post as loaded, with what the write changed */
        post->state = (Herald__V1__PostState)po->state;
        post->next_attempt_time =
            po->next_attempt_ms != 0 ? handler_ts_from_ms(a, po->next_attempt_ms) : NULL;
        post->state_reason = adup(a, po->state_reason);
        post->last_outcome = (Herald__V1__PublishOutcome)at->outcome;
        post->last_error_class = (Herald__V1__PublishErrorClass)at->error_class;
        if (success) {
            post->publish_time = handler_ts_from_ms(a, po->publish_ms);
            post->external_id = adup(a, at->external_id);
            post->external_url = adup(a, rq->external_url);
        } else {
            post->last_error = adup(a, rq->error_message);
        }
        post->revision = db_res_int64(res, 0, 1);
        post->update_time = handler_ts_from_ms(a, r.now_ms);
        out->post = arena_exhausted(a) ? NULL : post;
        if (out->post == NULL)
            wst = ST_EXHAUSTED;
    }
    strbuf_fini(&rows);
    db_res_free(res);
    return wst;
}

/* The index of the loaded record of lease_id (lower case), or -1. */
static int batch_rec(const sched_rec *recs, int n, const char *lease_id)
{
    for (int i = 0; i < n; i++)
        if (strcmp(recs[i].lease_id, lease_id) == 0)
            return i;
    return -1;
}

static char *lower_dup(arena *a, const char *s)
{
    char *d = adup(a, s);
    for (char *c = d; c != NULL && *c != '\0'; c++)
        *c = (char)tolower((unsigned char)*c);
    return d;
}

/* Marks taken[i] for each SUCCESS report whose receipt (its post's
 * platform, external_id) already belongs to another post. */
static status batch_receipts_taken(db_conn *db, const sched_rec *recs, const int *rec_of,
                                   const sched_report *rq, size_t n, bool *taken)
{
    strbuf b = { 0 };
    db_params p;
    db_res *res = NULL;
    strbuf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        if (rec_of[i] < 0 || rq[i].outcome != LEASE_OUTCOME_SUCCESS || rq[i].external_id == NULL)
            continue;
        const sched_rec *r = &recs[rec_of[i]];
        strbuf_printf(&b, "%s{\"i\":%zu,\"platform\":", b.len > 1 ? "," : "", i);
        json_str(&b, r->platform);
        strbuf_puts(&b, ",\"external_id\":");
        json_str(&b, rq[i].external_id);
        strbuf_puts(&b, ",\"post_id\":");
        json_str(&b, r->post_id);
        strbuf_putc(&b, '}');
    }
    strbuf_putc(&b, ']');
    status st = ST_OK;
    if (b.len > 2) {
        db_params_init(&p);
        db_param_text(&p, b.data);
        st = db_query(db, "sched_report_receipts",
                      /* LATERAL: one probe of posts_external_uq per report (as a
                       * semi join the plan may merge over the whole index) */
                      "SELECT x.i FROM json_to_recordset($1::json) AS x(i int, platform text, "
                      "external_id text, post_id uuid) CROSS JOIN LATERAL (SELECT 1 FROM posts p "
                      "WHERE p.platform = x.platform AND p.external_id = x.external_id "
                      "AND p.post_id <> x.post_id LIMIT 1) t",
                      &p, &res);
        for (int k = 0; st == ST_OK && k < db_res_rows(res); k++) {
            int64_t i = db_res_int64(res, k, 0);
            if (i >= 0 && (size_t)i < n)
                taken[i] = true;
        }
    }
    db_res_free(res);
    strbuf_fini(&b);
    return st;
}

/* Decides report i of a batch against recs (updating it when applied). */
static void batch_decide(sched_rec *r, const sched_report *rq, bool taken, const char **receipts,
                         size_t n_receipts, sched_batch_item *it, bool *write)
{
    lease_result lr;
    *write = false;
    if (strcmp(r->post_id, rq->post_id) != 0) {
        it->st = ST_FAILED_PRECONDITION;
        it->message = "the lease is for another post";
        return;
    }
    sched_rec next = *r; /* decided on a copy: a refusal leaves r as it was */
    lease_event ev = report_event(&next, rq);
    status st = lease_apply(&next.lim, &next.rec, &ev, &lr);
    if (st != ST_OK) {
        it->st = st;
        it->message = lr.reason;
        return;
    }
    if (lr.changed && !lr.duplicate && rq->outcome == LEASE_OUTCOME_SUCCESS) {
        bool dup_receipt = taken;
        for (size_t k = 0; !dup_receipt && k + 1 < n_receipts; k += 2)
            dup_receipt = strcmp(receipts[k], r->platform) == 0 &&
                          strcmp(receipts[k + 1], rq->external_id) == 0;
        if (dup_receipt) {
            it->st = ST_ALREADY_EXISTS;
            it->message = "the external_id is already the receipt of another post";
            return;
        }
    }
    it->st = ST_OK;
    it->duplicate = lr.duplicate;
    if (lr.duplicate || !lr.changed) {
        it->state = r->rec.post.state;
        if (lr.duplicate && rq->outcome == LEASE_OUTCOME_RETRYABLE &&
            r->rec.post.state == LEASE_POST_SCHEDULED &&
            r->rec.post.attempt_count == r->rec.attempt.number)
            it->next_attempt_ms = r->rec.post.next_attempt_ms;
        return;
    }
    *r = next;
    it->state = r->rec.post.state;
    it->next_attempt_ms = lr.next_attempt_ms;
    *write = true;
}

status sched_report_batch_tx(db_conn *db, arena *a, const sched_report *rq, size_t n,
                             sched_batch_item *out)
{
    db_params p;
    db_res *res = NULL, *wres = NULL;
    strbuf ids = { 0 }, rows = { 0 };
    status st = ST_OK;
    int nrec = 0;
    sched_rec *recs = NULL;
    int *rec_of = arena_alloc(a, (n + 1) * sizeof *rec_of);
    bool *taken = arena_calloc(a, (n + 1) * sizeof *taken);
    /* the row of each changed record's report (last wins) */
    const sched_report **wrote = NULL;
    const char **receipts = arena_alloc(a, (2 * n + 1) * sizeof *receipts);
    size_t n_receipts = 0;
    if (rec_of == NULL || taken == NULL || receipts == NULL)
        return ST_EXHAUSTED;

    strbuf_putc(&ids, '{');
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].message = "";
        strbuf_printf(&ids, "%s%s", i > 0 ? "," : "", rq[i].lease_id);
    }
    strbuf_putc(&ids, '}');
    db_params_init(&p);
    db_param_text(&p, ids.data);
    st = db_query(db, "sched_lease_load_batch",
                  "SELECT " REC_COLS " FROM posts p JOIN publish_attempts a "
                  "ON a.post_id = p.post_id LEFT JOIN posting_policies pp "
                  "ON pp.profile_id = p.profile_id WHERE a.lease_id = ANY($1::uuid[]) "
                  "ORDER BY p.post_id, a.lease_id FOR UPDATE OF p, a",
                  &p, &res);
    if (st != ST_OK)
        goto out;
    nrec = db_res_rows(res);
    recs = arena_alloc(a, ((size_t)nrec + 1) * sizeof *recs);
    wrote = arena_calloc(a, ((size_t)nrec + 1) * sizeof *wrote);
    if (recs == NULL || wrote == NULL) {
        st = ST_EXHAUSTED;
        goto out;
    }
    for (int k = 0; k < nrec; k++)
        row_to_rec(res, k, a, &recs[k]);
    for (size_t i = 0; i < n; i++)
        rec_of[i] = batch_rec(recs, nrec, lower_dup(a, rq[i].lease_id));
    if (arena_exhausted(a)) {
        st = ST_EXHAUSTED;
        goto out;
    }
    st = batch_receipts_taken(db, recs, rec_of, rq, n, taken);
    if (st != ST_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        bool write = false;
        if (rec_of[i] < 0) {
            out[i].st = ST_NOT_FOUND;
            out[i].message = "lease not found";
            continue;
        }
        sched_rec *r = &recs[rec_of[i]];
        batch_decide(r, &rq[i], taken[i], receipts, n_receipts, &out[i], &write);
        if (!write)
            continue;
        wrote[rec_of[i]] = &rq[i];
        if (rq[i].outcome == LEASE_OUTCOME_SUCCESS) {
            receipts[n_receipts++] = r->platform;
            receipts[n_receipts++] = r->rec.attempt.external_id;
        }
    }
    int n_writes = 0;
    for (int k = 0; k < nrec; k++) {
        if (wrote[k] == NULL)
            continue;
        report_row_json(&rows, &recs[k], wrote[k]);
        n_writes++;
    }
    if (n_writes == 0)
        goto out;
    st = report_write(db, &rows, &wres);
    if (st == ST_ALREADY_EXISTS) /* a receipt taken since the check */
        st = ST_CONFLICT;
    else if (st == ST_OK && db_res_rows(wres) != n_writes)
        st = ST_INTERNAL;
out:
    strbuf_fini(&ids);
    strbuf_fini(&rows);
    db_res_free(res);
    db_res_free(wres);
    return st;
}

/* ---------------------------------------------------------------- reconcile */

/* Lower-case hex SHA-256 of the normalised text: posts.content_hash. */
static bool text_hash(const char *text, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    strbuf norm = { 0 };
    uint8_t sum[32];
    out[0] = '\0';
    if (textsim_normalize(text, strlen(text), &norm) != ST_OK) {
        strbuf_fini(&norm);
        return false;
    }
    db_sha256(norm.data != NULL ? norm.data : "", norm.len, sum);
    strbuf_fini(&norm);
    for (int i = 0; i < 32; i++) {
        out[(size_t)2 * (size_t)i] = hex[sum[i] >> 4];
        out[(size_t)2 * (size_t)i + 1] = hex[sum[i] & 15];
    }
    out[64] = '\0';
    return true;
}

enum { RECONCILE_SKEW_MS = 300000 };

status sched_reconcile_tx(db_conn *db, arena *a, const char *profile_id, const sched_observed *obs,
                          size_t n_obs, int64_t observe_start_ms, int64_t observe_end_ms,
                          sched_reconciled **out, size_t *n)
{
    db_params p;
    db_res *res = NULL, *taken = NULL;
    strbuf ext = { 0 };
    int expired = 0;
    *out = NULL;
    *n = 0;

    status st = sched_expire_lapsed_tx(db, profile_id, SCHED_EXPIRE_BATCH, &expired);
    if (st != ST_OK)
        return st;
    db_params_init(&p);
    db_param_text(&p, profile_id);
    db_param_int64(&p, SCHED_UNCONFIRMED_MAX);
    st = db_query(db, "sched_unconfirmed",
                  "SELECT " REC_COLS " FROM posts p JOIN publish_attempts a "
                  "ON a.post_id = p.post_id AND a.attempt_number = p.attempt_count "
                  "LEFT JOIN posting_policies pp ON pp.profile_id = p.profile_id "
                  "WHERE p.profile_id = $1 AND p.state = 'unconfirmed' "
                  "ORDER BY p.post_id LIMIT $2::int FOR UPDATE OF p, a",
                  &p, &res);
    if (st != ST_OK || db_res_rows(res) == 0)
        goto out;
    int rows = db_res_rows(res);

    /* Observed external ids that already are a receipt of some post. */
    char(*hashes)[65] = arena_alloc(a, (n_obs + 1) * sizeof *hashes);
    bool *used = arena_calloc(a, n_obs + 1);
    sched_reconciled *res_out = arena_alloc(a, (size_t)rows * sizeof *res_out);
    if (hashes == NULL || used == NULL || res_out == NULL) {
        st = ST_EXHAUSTED;
        goto out;
    }
    strbuf_putc(&ext, '[');
    for (size_t i = 0; i < n_obs; i++) {
        if (!text_hash(obs[i].text, hashes[i]))
            used[i] = true; /* unusable text: matches nothing */
        if (i > 0)
            strbuf_putc(&ext, ',');
        json_str(&ext, obs[i].external_id);
    }
    strbuf_putc(&ext, ']');
    const char *platform = db_res_text(res, 0, RC_PLATFORM);
    if (n_obs > 0) {
        db_params_init(&p);
        db_param_text(&p, platform);
        db_param_text(&p, ext.data);
        st = db_query(db, "sched_receipts_taken",
                      "SELECT external_id FROM posts WHERE platform = $1 AND external_id IN "
                      "(SELECT jsonb_array_elements_text($2::jsonb))",
                      &p, &taken);
        if (st != ST_OK)
            goto out;
        for (int t = 0; t < db_res_rows(taken); t++)
            for (size_t i = 0; i < n_obs; i++)
                if (strcmp(obs[i].external_id, db_res_text(taken, t, 0)) == 0)
                    used[i] = true;
    }

    for (int i = 0; i < rows; i++) {
        sched_rec r;
        lease_result lr;
        row_to_rec(res, i, a, &r);
        if (r.rec.attempt.state == LEASE_ATTEMPT_EXPIRED) {
            /* a lapsed lease: an unknown outcome as of the expiry */
            r.rec.attempt.state = LEASE_ATTEMPT_UNKNOWN;
            r.rec.attempt.outcome = LEASE_OUTCOME_UNKNOWN;
        }
        size_t match = n_obs;
        for (size_t k = 0; k < n_obs && match == n_obs; k++) {
            if (used[k] || strcmp(hashes[k], r.content_hash) != 0)
                continue;
            if (obs[k].publish_ms != 0 &&
                obs[k].publish_ms < r.rec.attempt.claim_ms - RECONCILE_SKEW_MS)
                continue;
            match = k;
        }
        int64_t end_ms = observe_end_ms != 0 ? observe_end_ms : r.now_ms;
        lease_event ev = { .kind = LEASE_EV_RECONCILE,
                           .now_ms = r.now_ms,
                           .found = match < n_obs,
                           .external_id = match < n_obs ? obs[match].external_id : NULL,
                           .publish_ms = match < n_obs ? obs[match].publish_ms : 0,
                           .observe_start_ms = observe_start_ms,
                           .observe_end_ms = end_ms };
        if (lease_apply(&r.lim, &r.rec, &ev, &lr) != ST_OK) {
            /* a row the state machine refuses (a broken invariant): left as
             * it is, reported as still pending */
            memset(&lr, 0, sizeof lr);
            lr.action = LEASE_RECONCILE_PENDING;
        }
        sched_reconciled *o = &res_out[*n];
        o->post_id = r.post_id;
        o->action = lr.action;
        o->external_id = "";
        if (lr.action == LEASE_RECONCILE_MATCHED) {
            used[match] = true;
            o->external_id = adup(a, obs[match].external_id);
        }
        (*n)++;
        if (!lr.changed)
            continue;
        const lease_post *po = &r.rec.post;
        db_params_init(&p);
        db_param_text(&p, r.lease_id);
        db_param_text(&p, post_state_text(po->state));
        param_text_or_null(&p, lr.action == LEASE_RECONCILE_MATCHED ? o->external_id : NULL);
        param_text_or_null(&p,
                           lr.action == LEASE_RECONCILE_MATCHED ? obs[match].external_url : NULL);
        param_time_or_null(&p, lr.action == LEASE_RECONCILE_MATCHED ? po->publish_ms : 0);
        db_param_text(&p, po->state_reason != NULL ? po->state_reason : "");
        st = db_query(db, "sched_reconcile_write",
                      "WITH a AS (UPDATE publish_attempts SET external_id = COALESCE($3, "
                      "external_id), external_url = COALESCE($4, external_url), publish_time = "
                      "COALESCE($5::timestamptz, publish_time) WHERE lease_id = $1::uuid "
                      "RETURNING post_id) "
                      "UPDATE posts p SET state = $2, external_id = COALESCE($3, p.external_id), "
                      "external_url = COALESCE($4, p.external_url), publish_time = "
                      "COALESCE($5::timestamptz, p.publish_time), next_attempt_time = NULL, "
                      "state_reason = left($6, 1000), last_outcome = CASE WHEN $3 IS NULL "
                      "THEN p.last_outcome ELSE 'success' END, "
                      "revision = p.revision + 1, updated_at = now() FROM a "
                      "WHERE p.post_id = a.post_id",
                      &p, NULL);
        if (st != ST_OK)
            goto out;
    }
    *out = res_out;
out:
    strbuf_fini(&ext);
    db_res_free(taken);
    db_res_free(res);
    return st;
}

/* ---------------------------------------------------------------- built-in publisher */

status sched_builtin_due_tx(db_conn *db, arena *a, int limit, sched_target **out, size_t *n)
{
    db_params p;
    db_res *res = NULL;
    *out = NULL;
    *n = 0;
    db_params_init(&p);
    db_param_int64(&p, limit);
    status st = db_query(
        db, "sched_builtin_due",
        "SELECT pr.profile_id, pr.publish_kind, pr.publish_url, pr.publish_secret, "
        "pr.publish_timeout_ms FROM profiles pr WHERE pr.publish_kind IN ('webhook', 'x_api_v2') "
        "AND pr.state = 'active' AND pr.publish_secret IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM profile_cooldowns cd WHERE cd.profile_id = pr.profile_id "
        "AND cd.start_time <= now() AND cd.end_time > now()) "
        "AND EXISTS (SELECT 1 FROM posts p WHERE p.profile_id = pr.profile_id "
        "AND p.state = 'scheduled' AND p.schedule_time <= now() "
        "AND (p.next_attempt_time IS NULL OR p.next_attempt_time <= now())) "
        "ORDER BY pr.profile_id LIMIT $1::int",
        &p, &res);
    if (st != ST_OK || db_res_rows(res) == 0)
        goto out;
    size_t rows = (size_t)db_res_rows(res);
    sched_target *t = arena_alloc(a, rows * sizeof *t);
    if (t == NULL) {
        st = ST_EXHAUSTED;
        goto out;
    }
    for (size_t i = 0; i < rows; i++) {
        int r = (int)i;
        t[i].profile_id = adup(a, db_res_text(res, r, 0));
        t[i].kind = adup(a, db_res_text(res, r, 1));
        t[i].url = adup(a, db_res_text(res, r, 2));
        size_t len = 0;
        uint8_t *sec = db_res_bytes(res, r, 3, &len);
        t[i].secret = arena_alloc(a, len + 1);
        if (t[i].secret == NULL || sec == NULL) {
            if (sec != NULL) {
                memset(sec, 0, len);
                free(sec);
            }
            st = ST_EXHAUSTED;
            goto out;
        }
        memcpy(t[i].secret, sec, len);
        t[i].secret[len] = 0;
        t[i].secret_len = len;
        memset(sec, 0, len);
        free(sec);
        t[i].timeout_ms = (int)db_res_int64(res, r, 4);
    }
    *out = t;
    *n = rows;
out:
    db_res_free(res);
    return st;
}

/* ---------------------------------------------------------------- reply opportunities */

status sched_own_replies_tx(db_conn *db, arena *a, const char *profile_id, int64_t since_ms,
                            replyopp_reply **out, size_t *n)
{
    db_params p;
    db_res *res = NULL;
    *out = NULL;
    *n = 0;
    db_params_init(&p);
    db_param_text(&p, profile_id);
    db_param_time_ms(&p, since_ms);
    status st = db_query(
        db, "sched_own_replies",
        "SELECT COALESCE(NULLIF(o.root_external_id, ''), o.external_post_id, "
        "p.reply_to_external_id), COALESCE(o.author_id, ''), (extract(epoch FROM "
        "COALESCE(p.publish_time, p.schedule_time, p.created_at)) * 1000)::bigint "
        "FROM posts p LEFT JOIN reply_opportunities o ON o.opportunity_id = p.reply_opportunity_id "
        "WHERE p.profile_id = $1 AND p.kind = 'reply' "
        "AND p.state NOT IN ('rejected', 'cancelled', 'failed') "
        "AND COALESCE(p.publish_time, p.schedule_time, p.created_at) >= $2::timestamptz",
        &p, &res);
    if (st == ST_OK && db_res_rows(res) > 0) {
        size_t rows = (size_t)db_res_rows(res);
        *out = arena_alloc(a, rows * sizeof **out);
        if (*out == NULL) {
            st = ST_EXHAUSTED;
        } else {
            for (size_t i = 0; i < rows; i++) {
                (*out)[i].root_external_id = adup(a, db_res_text(res, (int)i, 0));
                (*out)[i].author_id = adup(a, db_res_text(res, (int)i, 1));
                (*out)[i].reply_ms = db_res_int64(res, (int)i, 2);
            }
            *n = rows;
        }
    }
    db_res_free(res);
    return st;
}

status sched_topics_tx(db_conn *db, arena *a, const char *profile_id, replyopp_topic **out,
                       size_t *n)
{
    db_params p;
    db_res *res = NULL;
    *out = NULL;
    *n = 0;
    db_params_init(&p);
    db_param_text(&p, profile_id);
    db_param_int64(&p, REPLYOPP_MAX_TOPICS);
    status st = db_query(db, "sched_topics",
                         "SELECT t.display_name, t.description FROM topics t WHERE t.enabled "
                         "AND (NOT EXISTS (SELECT 1 FROM profile_topics pt WHERE pt.profile_id = "
                         "$1) OR t.key IN (SELECT pt.topic_key FROM profile_topics pt "
                         "WHERE pt.profile_id = $1)) ORDER BY t.key LIMIT $2::int",
                         &p, &res);
    if (st == ST_OK && db_res_rows(res) > 0) {
        size_t rows = (size_t)db_res_rows(res);
        *out = arena_alloc(a, rows * sizeof **out);
        if (*out == NULL) {
            st = ST_EXHAUSTED;
        } else {
            for (size_t i = 0; i < rows; i++) {
                (*out)[i].name = adup(a, db_res_text(res, (int)i, 0));
                (*out)[i].description = adup(a, db_res_text(res, (int)i, 1));
            }
            *n = rows;
        }
    }
    db_res_free(res);
    return st;
}

status sched_opp_upsert_tx(db_conn *db, arena *a, const char *profile_id, const sched_opp_row *rows,
                           size_t n, const char ***ids)
{
    db_params p;
    status st = ST_OK;
    *ids = arena_alloc(a, (n + 1) * sizeof **ids);
    if (*ids == NULL)
        return ST_EXHAUSTED;
    for (size_t i = 0; i < n && st == ST_OK; i++) {
        const sched_opp_row *r = &rows[i];
        const Herald__V1__ReplyTarget *t = r->t;
        db_res *res = NULL;
        (*ids)[i] = "";
        db_params_init(&p);
        db_param_text(&p, profile_id);
        db_param_text(&p, r->platform);
        db_param_text(&p, t->external_post_id);
        if (!r->kept) {
            st = db_query(db, "sched_opp_expire",
                          "UPDATE reply_opportunities SET state = 'expired', revision = "
                          "revision + 1, updated_at = now() WHERE profile_id = $1 AND platform = "
                          "$2 AND external_post_id = $3 AND state = 'open'",
                          &p, NULL);
            continue;
        }
        db_param_text(&p, t->root_external_id);
        db_param_text(&p, t->author_id);
        db_param_text(&p, t->author_handle);
        db_param_int64(&p, t->author_followers);
        db_param_text(&p, t->text);
        db_param_text(&p, t->url);
        db_param_time_ms(&p, r->create_ms);
        db_param_time_ms(&p, r->observe_ms);
        db_param_int64(&p, t->likes);
        db_param_int64(&p, t->replies);
        db_param_int64(&p, t->reposts);
        db_param_text(&p, r->tier);
        db_param_double(&p, r->velocity);
        db_param_double(&p, r->relevance);
        db_param_double(&p, r->score);
        db_param_time_ms(&p, r->expire_ms);
        /* A report older than the stored one changes nothing; an EXPIRED
         * opportunity that passes the filters again (a cooldown ended) is
         * open again; DRAFTED and REPLIED stay. */
        st = db_query(
            db, "sched_opp_upsert",
            "WITH up AS (INSERT INTO reply_opportunities AS o (profile_id, platform, "
            "external_post_id, root_external_id, author_id, author_handle, author_followers, "
            "text, url, target_create_time, observe_time, likes, replies, reposts, tier, "
            "velocity_per_hour, relevance, score, expire_time) VALUES ($1, $2, $3, $4, $5, $6, "
            "$7::bigint, $8, $9, $10::timestamptz, $11::timestamptz, $12::bigint, $13::bigint, "
            "$14::bigint, $15, $16::float8, $17::float8, $18::float8, $19::timestamptz) "
            "ON CONFLICT (profile_id, platform, external_post_id) DO UPDATE SET "
            "root_external_id = EXCLUDED.root_external_id, author_id = EXCLUDED.author_id, "
            "author_handle = EXCLUDED.author_handle, author_followers = "
            "EXCLUDED.author_followers, text = EXCLUDED.text, url = EXCLUDED.url, "
            "target_create_time = EXCLUDED.target_create_time, observe_time = "
            "EXCLUDED.observe_time, likes = EXCLUDED.likes, replies = EXCLUDED.replies, "
            "reposts = EXCLUDED.reposts, tier = EXCLUDED.tier, velocity_per_hour = "
            "EXCLUDED.velocity_per_hour, relevance = EXCLUDED.relevance, score = EXCLUDED.score, "
            "expire_time = EXCLUDED.expire_time, state = CASE WHEN o.state = 'expired' THEN "
            "'open' ELSE o.state END, revision = o.revision + 1, updated_at = now() "
            "WHERE o.observe_time <= EXCLUDED.observe_time RETURNING o.opportunity_id) "
            "SELECT opportunity_id FROM up UNION ALL SELECT opportunity_id FROM "
            "reply_opportunities WHERE profile_id = $1 AND platform = $2 AND external_post_id = $3 "
            "AND NOT EXISTS (SELECT 1 FROM up)",
            &p, &res);
        if (st == ST_OK && db_res_rows(res) > 0)
            (*ids)[i] = adup(a, db_res_text(res, 0, 0));
        db_res_free(res);
    }
    return st;
}

#define OPP_COLS                                                                                           \
    "o.opportunity_id, o.profile_id, o.platform, o.external_post_id, o.root_external_id, "                 \
    "o.author_id, o.author_handle, o.author_followers, o.text, o.url, " US(                                \
        "o.target_create_time") ", " US("o.observe_time") ", o.likes, o.replies, o.reposts, "              \
                                                          "o.tier, o.velocity_per_hour, "                  \
                                                          "o.relevance, o.score, CASE WHEN "               \
                                                          "o.state = 'open' AND "                          \
                                                          "o.expire_time <= now() THEN 'expired' "         \
                                                          "ELSE o.state END, "                             \
                                                          "o.reply_post_id, " US("o.expire_time") ", " US( \
                                                              "o.created_at") ", " US("o.updated_"         \
                                                                                      "at")

static Herald__V1__ReplyOpportunity *row_to_opp(const db_res *r, int row, arena *a)
{
    Herald__V1__ReplyOpportunity *o = arena_alloc(a, sizeof *o);
    Herald__V1__ReplyTarget *t = arena_alloc(a, sizeof *t);
    if (o == NULL || t == NULL)
        return NULL;
    herald__v1__reply_opportunity__init(o);
    herald__v1__reply_target__init(t);
    o->opportunity_id = adup(a, db_res_text(r, row, 0));
    o->profile_id = adup(a, db_res_text(r, row, 1));
    t->platform = enum_of(&herald__v1__platform__descriptor, db_res_text(r, row, 2));
    t->external_post_id = adup(a, db_res_text(r, row, 3));
    t->root_external_id = adup(a, db_res_text(r, row, 4));
    t->author_id = adup(a, db_res_text(r, row, 5));
    t->author_handle = adup(a, db_res_text(r, row, 6));
    t->author_followers = db_res_int64(r, row, 7);
    t->text = adup(a, db_res_text(r, row, 8));
    t->url = adup(a, db_res_text(r, row, 9));
    t->create_time = ts_col(a, r, row, 10);
    t->observe_time = ts_col(a, r, row, 11);
    t->likes = db_res_int64(r, row, 12);
    t->replies = db_res_int64(r, row, 13);
    t->reposts = db_res_int64(r, row, 14);
    o->target = t;
    o->tier = enum_of(&herald__v1__reply_tier__descriptor, db_res_text(r, row, 15));
    o->velocity_per_hour = db_res_double(r, row, 16);
    o->relevance = db_res_double(r, row, 17);
    o->score = db_res_double(r, row, 18);
    o->state = enum_of(&herald__v1__reply_opportunity_state__descriptor, db_res_text(r, row, 19));
    o->reply_post_id = adup(a, db_res_text(r, row, 20));
    o->expire_time = ts_col(a, r, row, 21);
    o->create_time = ts_col(a, r, row, 22);
    o->update_time = ts_col(a, r, row, 23);
    return arena_exhausted(a) ? NULL : o;
}

status sched_opp_list_tx(db_conn *db, arena *a, const sched_opp_filter *f, sched_opp_page *out)
{
    db_params p;
    db_res *res = NULL;
    char score[40];
    memset(out, 0, sizeof *out);
    (void)snprintf(score, sizeof score, "%.17g", f->after_score);
    db_params_init(&p);
    db_param_text(&p, f->profile_id);
    db_param_text(&p, f->state);
    if (f->tiers != NULL)
        db_param_text(&p, f->tiers);
    else
        db_param_null(&p);
    param_text_or_null(&p, f->platform);
    db_param_bool(&p, f->has_after);
    db_param_text(&p, score);
    db_param_int64(&p, f->after_create_us);
    db_param_text(&p, f->after_external_id != NULL ? f->after_external_id : "");
    db_param_int64(&p, (int64_t)f->limit + 1);
    status st = db_query(db, "sched_opp_list",
                         "SELECT " OPP_COLS " FROM reply_opportunities o WHERE o.profile_id = $1 "
                         "AND CASE $2 WHEN 'open' THEN o.state = 'open' AND o.expire_time > now() "
                         "WHEN 'expired' THEN o.state = 'expired' OR (o.state = 'open' AND "
                         "o.expire_time <= "
                         "now()) ELSE o.state = $2 END "
                         "AND ($3::text[] IS NULL OR o.tier = ANY($3::text[])) "
                         "AND ($4::text IS NULL OR o.platform = $4) "
                         "AND (NOT $5::bool OR o.score < $6::float8 OR (o.score = $6::float8 AND "
                         "(" US("o.target_create_time") " < $7::bigint OR (" US(
                             "o.target_create_time") " = $7::bigint AND o.external_post_id > "
                                                     "$8)))) "
                                                     "ORDER BY o.score DESC, o.target_create_time "
                                                     "DESC, o.external_post_id "
                                                     "LIMIT $9::int",
                         &p, &res);
    if (st != ST_OK)
        goto out;
    size_t rows = (size_t)db_res_rows(res);
    if (rows > (size_t)f->limit) {
        out->more = true;
        rows = (size_t)f->limit;
    }
    if (rows == 0)
        goto out;
    out->items = arena_alloc(a, rows * sizeof(Herald__V1__ReplyOpportunity *));
    if (out->items == NULL) {
        st = ST_EXHAUSTED;
        goto out;
    }
    for (size_t i = 0; i < rows; i++) {
        out->items[i] = row_to_opp(res, (int)i, a);
        if (out->items[i] == NULL) {
            st = ST_EXHAUSTED;
            goto out;
        }
    }
    out->n = rows;
    out->last_create_us = db_res_int64(res, (int)rows - 1, 10);
out:
    db_res_free(res);
    return st;
}
