/* learning_store.h - the SQL of LearningService (svc_learning.c): ingest
 * (engagement observations, follower snapshots, replies, topic mentions),
 * arms and their settings, decisions, audiences, trends and the reads behind
 * GetInsights. Outcomes and arm updates are in outcomes.h.
 *
 * Functions ending in _tx run inside the caller's open transaction
 * (handler_mutate's, or one the handler opened with db_begin); the others
 * run one statement in their own transaction with a budget. Batches are
 * written with one statement each: the rows travel as array parameters
 * (unnest($n::type[])), never one statement per row. Results are allocated
 * in the arena a (the call's); strings are copies.
 *
 * Threads: no state; a db_conn belongs to one worker. */
#ifndef HERALD_LEARNING_STORE_H
#define HERALD_LEARNING_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "bandit.h"
#include "db.h"
#include "reward.h"
#include "status.h"
#include "trends.h"
#include "util.h"

/* ---- array literals for unnest($n::type[]) parameters ---- */

/* "{a,b,NULL}" built element by element; text elements are quoted and
 * escaped. Zero-initialise or lstore_arr_init; lstore_arr_fini frees. */
typedef struct lstore_arr {
    strbuf b;
    size_t n;
    bool closed;
} lstore_arr;

void lstore_arr_init(lstore_arr *a);
void lstore_arr_fini(lstore_arr *a);
void lstore_arr_text(lstore_arr *a, const char *s); /* NULL -> NULL element */
void lstore_arr_int(lstore_arr *a, int64_t v);
void lstore_arr_double(lstore_arr *a, double v); /* non-finite -> NULL element */
void lstore_arr_bool(lstore_arr *a, bool v);
void lstore_arr_null(lstore_arr *a);
/* The literal (closed with '}'; nothing may be added after); borrowed from
 * a until lstore_arr_fini. */
const char *lstore_arr_end(lstore_arr *a);

/* ---- versions ---- */

/* The active reward version into buf ("" when none is active). */
status lstore_current_version_tx(db_conn *db, char *buf, size_t cap);

/* The cache version of a profile's learning scope (outcomes.h
 * LEARNING_VERSION_PREFIX) and its update instant (0, 0 when never bumped),
 * one statement. ST_NOT_FOUND when the profile does not exist. */
status lstore_learning_version(db_conn *db, int64_t budget_ms, const char *profile_id,
                               int64_t *version, int64_t *vtime_us);
/* Bumps it inside the writer's transaction. After the commit, the writer
 * calls vercache_forget on the scope (svc_learning.c) so that this process
 * reads its own write whatever the notification's delay. */
status lstore_learning_bump_tx(db_conn *db, const char *profile_id);

/* ST_NOT_FOUND when the profile does not exist; *time_zone (may be NULL)
 * gets its IANA zone (arena). */
status lstore_profile_check_tx(db_conn *db, arena *a, const char *profile_id,
                               const char **time_zone);

/* ---- RecordEngagement ---- */

/* What ingest needs to know about a post. */
typedef struct lstore_post {
    char post_id[37]; /* canonical lower-case */
    char state[16];
    int64_t publish_us;     /* 0 when not published */
    bool scored;            /* has an outcome under the active reward version */
    const char *profile_id; /* arena */
} lstore_post;

/* The posts among ids[0..n) (canonical lower-case UUIDs, duplicates
 * allowed) that exist, in no particular order. */
status lstore_posts_get_tx(db_conn *db, arena *a, char *const *ids, size_t n, lstore_post **out,
                           size_t *n_out);

typedef struct lstore_obs {
    const char *post_id; /* canonical lower-case */
    int64_t observe_us;
    const char *source; /* never empty ("default") */
    reward_counts counts;
} lstore_obs;

/* Inserts obs[0..n) (one statement), skipping those already stored
 * (post_id, observed_at, source). *inserted (arena) gets the index of each
 * row stored, *n_inserted their count. */
status lstore_engagement_insert_tx(db_conn *db, arena *a, const lstore_obs *obs, size_t n,
                                   size_t **inserted, size_t *n_inserted);

/* ---- RecordFollowerSnapshots ---- */

typedef struct lstore_snapshot {
    const char *profile_id;
    int64_t observe_us;
    const char *source;
    int64_t followers;
    bool has_following;
    int64_t following;
} lstore_snapshot;

/* Which of ids[0..n) are not profiles: indexes into ids (arena). */
status lstore_profiles_missing_tx(db_conn *db, arena *a, char *const *ids, size_t n,
                                  size_t **missing, size_t *n_missing);
/* Inserts, skipping stored ones; *accepted gets the count stored. */
status lstore_snapshots_insert_tx(db_conn *db, const lstore_snapshot *s, size_t n,
                                  int64_t *accepted);

/* ---- RecordReplies ---- */

typedef struct lstore_reply {
    const char *post_id; /* canonical lower-case */
    const char *external_id;
    const char *author_id;
    const char *author_handle;
    const char *text;
    int64_t create_us;
    const char *label; /* sentiment_label_name */
    double score;
} lstore_reply;

status lstore_replies_insert_tx(db_conn *db, const lstore_reply *r, size_t n, int64_t *accepted);

/* Reply counts and score sums per (post, label) of the given posts. */
typedef struct lstore_label_count {
    const char *post_id; /* arena */
    const char *label;
    int64_t count;
    double score_sum;
} lstore_label_count;

status lstore_reply_summaries_tx(db_conn *db, arena *a, char *const *post_ids, size_t n,
                                 lstore_label_count **out, size_t *n_out);

/* ---- UpsertTopics / ListTrends ---- */

typedef struct lstore_topic_obs {
    const char *topic;
    const char *display_name;
    int64_t count;
    int64_t observe_us;
    int period_minutes;
    const char *source;
} lstore_topic_obs;

/* Inserts (profile_id NULL or "" = global), skipping stored ones;
 * *inserted (arena) gets the indexes stored. */
status lstore_topic_obs_insert_tx(db_conn *db, arena *a, const char *profile_id,
                                  const lstore_topic_obs *o, size_t n, size_t **inserted,
                                  size_t *n_inserted);

/* A topic's stored trend. */
typedef struct lstore_trend {
    const char *topic; /* arena */
    const char *display_name;
    bool in_catalog;
    trends_state state;
    int64_t mentions_24h; /* filled by lstore_mentions_24h */
} lstore_trend;

/* Creates missing rows for topics[0..n) (sorted, unique) and locks them
 * (in that order); out[i] is topics[i]'s state. */
status lstore_trends_lock_tx(db_conn *db, arena *a, const char *profile_id, char *const *topics,
                             size_t n, lstore_trend **out);
/* Writes back the states (and display names) of t[0..n). */
status lstore_trends_save_tx(db_conn *db, const char *profile_id, const lstore_trend *t, size_t n);
/* Every trend of the scope (profile_id NULL or "": global), optionally only
 * catalog topics. One statement. */
status lstore_trends_list(db_conn *db, int64_t budget_ms, arena *a, const char *profile_id,
                          bool catalog_only, lstore_trend **out, size_t *n_out);
/* mentions_24h of t[0..n) as of now_ms (periods ending in (now - 24 h,
 * now]). With tx: inside the open transaction, else its own. */
status lstore_mentions_24h(db_conn *db, int64_t budget_ms, bool tx, const char *profile_id,
                           int64_t now_ms, lstore_trend *t, size_t n);

/* ---- audience ---- */

typedef struct lstore_zone {
    const char *time_zone; /* arena */
    double share;
} lstore_zone;

/* Replaces the audience (shares already normalised), bumps its revision;
 * *update_us gets the new update instant. The caller checked the profile. */
status lstore_audience_put_tx(db_conn *db, const char *profile_id, const lstore_zone *z, size_t n,
                              const char *source, int64_t *update_us);

/* ---- arms ---- */

/* One arm as stored: statistics under the active version and settings. */
typedef struct lstore_arm {
    bandit_scope scope;
    const char *key; /* arena */
    bandit_stats stats;
    int64_t pulls;
    int64_t update_ms; /* 0 when no outcome was ever folded in */
    bool enabled;
    const char *disabled_reason;
    bool in_profile; /* topics: one of the profile's topics (or it has none) */
} lstore_arm;

typedef struct lstore_arms {
    lstore_arm *arms; /* arena; by scope (enum order) then key (hours numerically) */
    size_t n;
    const char *reward_version; /* "" when none is active */
    const char *time_zone;      /* the profile's */
    int topic_cooldown_hours;
} lstore_arms;

/* A profile's arms: every key with statistics or settings under the active
 * version, plus, with catalog, every enabled catalog key of the three
 * content scopes. scope 0 = every scope, LSTORE_CONTENT_SCOPES the three
 * content scopes, else one bandit_scope. One statement; ST_NOT_FOUND when
 * the profile does not exist. tx: inside the open transaction. */
status lstore_arms_get(db_conn *db, int64_t budget_ms, bool tx, arena *a, const char *profile_id,
                       int scope, bool catalog, lstore_arms *out);
#define LSTORE_CONTENT_SCOPES (-1) /* scope: content_type, voice_style and topic */

/* Recommend's one read: the profile's content arms with every enabled
 * catalog key (as lstore_arms_get with LSTORE_CONTENT_SCOPES and catalog),
 * plus the topics of its live posts due (published, scheduled or created)
 * within its topic_cooldown_hours of at_ms (*recent, arena). Also
 * makes the open transaction's commit asynchronous (synchronous_commit
 * off): a decision lost to a crash in the next few hundred ms is one
 * Recommend to repeat, never learnt state. */
status lstore_recommend_load_tx(db_conn *db, arena *a, const char *profile_id, int64_t at_ms,
                                lstore_arms *out, char ***recent, size_t *n_recent);

/* Upserts an arm_settings row; ST_OK. */
status lstore_arm_setting_put_tx(db_conn *db, const char *profile_id, bandit_scope scope,
                                 const char *key, bool enabled, const char *reason);

/* ST_OK when key is an existing catalog key of scope (content scopes), else
 * ST_NOT_FOUND. */
status lstore_catalog_has_tx(db_conn *db, bandit_scope scope, const char *key);

/* ---- decisions ---- */

typedef struct lstore_decision {
    const char *profile_id;
    const char *reward_version; /* "" = none */
    const char *content_type, *voice_style, *topic;
    int hour_of_week;
    int64_t target_ms;
    uint64_t seed;
    double propensity;
    bool forced;
    const char *candidates_json;
    const char *reason;
    /* arms whose pull counter goes up (the chosen keys), sorted by scope
     * name then key; n_pulls 0 to 3 */
    const char *pull_scope[3];
    const char *pull_key[3];
    size_t n_pulls;
} lstore_decision;

/* Inserts the decision and counts the pulls (one statement). *id (arena)
 * and *create_us get the row's id and time. */
status lstore_decision_insert_tx(db_conn *db, arena *a, const lstore_decision *d, const char **id,
                                 int64_t *create_us);

/* ---- insights ---- */

/* One local day of a profile's posts. */
typedef struct lstore_day {
    int64_t local_day; /* days since 1970-01-01 in the profile's zone */
    int posts;
    int64_t impressions;      /* known impressions of that day's posts */
    int64_t rate_impressions; /* of posts whose engagement is fully known */
    int64_t engagements;
} lstore_day;

/* Follows and impressions of one content type's posts. */
typedef struct lstore_conversion {
    const char *content_type; /* arena */
    int64_t posts;
    int64_t impressions;        /* known impressions */
    int64_t follow_impressions; /* impressions of posts whose follows are known */
    int64_t follows;
} lstore_conversion;

/* Posts published in the last window_days (latest observation of each),
 * by local day and by content type; inside the open transaction. */
status lstore_insights_tx(db_conn *db, arena *a, const char *profile_id, const char *time_zone,
                          int64_t now_ms, int window_days, lstore_day **days, size_t *n_days,
                          lstore_conversion **conv, size_t *n_conv);

/* The audience's zones (shares as stored) and source; n 0 when none. */
status lstore_audience_get_tx(db_conn *db, arena *a, const char *profile_id, lstore_zone **out,
                              size_t *n, const char **source, int64_t *update_us);

#endif
