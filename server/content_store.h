/* content_store.h - ContentService's store side: the catalog as a cached,
 * versioned snapshot; posts, their gate results and decisions; the recent
 * history the duplicate gate reads; the arm choice (Thompson sampling over
 * the arm statistics in PostgreSQL); reply opportunities; catalog edits.
 *
 * SQL lives here so that svc_content.c and pregen.c stay free of it (as
 * profiles.[ch] does for OpsService). Validation does not: callers validate
 * their requests first.
 *
 * Transactions. Functions whose name ends in _tx run inside the caller's
 * open transaction. The read helpers that take a budget_ms run inside the
 * caller's transaction when one is open on db (db_in_tx), else in their own
 * with that budget: the same function serves a handler before it opens its
 * mutation and a mutation body (or the pre-generation job) inside one.
 *
 * The catalog snapshot. content_catalog_acquire reads the catalog's version
 * (cache_versions scope "catalog", bumped by content_catalog_update_tx in the
 * writer's transaction) and returns the process-wide snapshot when it was
 * built at that version, else loads a new one from the catalog tables and
 * swaps it in. One primary-key read per call keeps every replica exact: an
 * acknowledged UpdateCatalogEntry is used by the very next call anywhere.
 * Snapshots are reference counted: a call (or an LLM completion) keeps the
 * one it started with until it releases it. The version is read before the
 * rows, so a snapshot is never labelled newer than its contents.
 *
 * Memory. Messages are built in the arena given (the call's); strings are
 * copies. Other out-parameters say who frees them.
 *
 * Threads. A db_conn belongs to one thread. The catalog cache is shared by
 * every thread (a mutex guards the current pointer, reference counts are
 * atomic); a snapshot's catalog is immutable and may be read by any number
 * of threads. Everything else is stateless. */
#ifndef HERALD_CONTENT_STORE_H
#define HERALD_CONTENT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "catalog.h"
#include "db.h"
#include "gates.h"
#include "herald/v1/common.pb-c.h"
#include "herald/v1/content.pb-c.h"
#include "herald/v1/ops.pb-c.h"
#include "platform.h"
#include "status.h"
#include "textsim.h"

#define CONTENT_CATALOG_SCOPE "catalog" /* cache_versions scope of the catalog */

/* Server defaults of the duplicate gate (docs/api.md "Defaults worth
 * knowing"): similarity >= 0.6 to any post of the profile from the last 30
 * days. The domain's own default (gates.h, 0.70) is looser; the API promises
 * 0.6, and the built-in generator is asked for drafts under it. */
#define CONTENT_DUP_THRESHOLD 0.6
#define CONTENT_DUP_WINDOW_DAYS 30
/* Most recent posts loaded into the history index (per call). */
#define CONTENT_HISTORY_MAX 2000

enum { CONTENT_KEY_MAX = 65, CONTENT_ID_MAX = 37, CONTENT_HASH_HEX = 65 };

/* ---------------------------------------------------------------- catalog */

typedef struct content_catalog content_catalog; /* a reference-counted snapshot */

/* The snapshot at the database's current catalog version (see above). On
 * ST_OK *out holds one reference: release it with content_catalog_release.
 * ST_INVALID when the rows do not form a valid catalog; err (may be NULL)
 * says why. Store failures as db_*. */
status content_catalog_acquire(db_conn *db, int64_t budget_ms, content_catalog **out, char *err,
                               size_t errcap);
void content_catalog_release(content_catalog *c); /* NULL-safe; any thread */
/* Another reference to c (for a completion that outlives the handler). */
content_catalog *content_catalog_ref(content_catalog *c);
/* Drops the process-wide snapshot (shutdown, tests); held references stay
 * valid until released. */
void content_catalog_reset(void);
/* content_catalog_reset, and drops the fingerprint cache of
 * content_history_load (shutdown). */
void content_store_reset(void);

const catalog *content_catalog_get(const content_catalog *c);
int64_t content_catalog_version(const content_catalog *c);

/* Entry i of kind (catalog_entry_at order: by key) as a CatalogEntry in a;
 * topics carry their facts (disabled facts only with include_disabled).
 * NULL when the arena is full. */
Herald__V1__CatalogEntry *content_catalog_entry_msg(arena *a, const content_catalog *c,
                                                    catalog_kind kind, size_t i,
                                                    bool include_disabled);

/* The new values of an UpdateCatalogEntry; has_* says which to write. */
typedef struct content_catalog_patch {
    bool has_display_name, has_description, has_enabled, has_min, has_max, has_weight;
    const char *display_name;
    const char *description;
    bool enabled;
    int min_chars;
    int max_chars;
    double prior_weight;
} content_catalog_patch;

/* Applies p to the entry (kind, key), checks min <= max against the stored
 * values, bumps the catalog version. ST_NOT_FOUND when absent; ST_INVALID
 * with a reason in err when the bounds would cross. */
status content_catalog_update_tx(db_conn *db, catalog_kind kind, const char *key,
                                 const content_catalog_patch *p, char *err, size_t errcap);
/* The stored entry (kind, key) with its facts, as in the database now. */
status content_catalog_entry_get_tx(db_conn *db, arena *a, catalog_kind kind, const char *key,
                                    Herald__V1__CatalogEntry **out);

/* ---------------------------------------------------------------- profiles */

/* The profile to write for: id as given, or with id "" the only profile
 * (ST_INVALID with a reason in err when there are none or several).
 * ST_NOT_FOUND when absent. Reads as the read helpers above. */
status content_profile_resolve(db_conn *db, int64_t budget_ms, arena *a, const char *id,
                               Herald__V1__Profile **out, char *err, size_t errcap);

/* ---------------------------------------------------------------- posts */

/* Lower-case hex SHA-256 of the text's normalised form (textsim.h), the
 * posts.content_hash key. false for invalid UTF-8. */
bool content_hash_hex(const char *text, size_t len, char out[CONTENT_HASH_HEX]);

/* A live post of the profile (not rejected, cancelled or failed) with this
 * content hash, other than exclude_id (may be NULL): its id in out_id, or
 * "" when none. */
status content_live_hash_owner(db_conn *db, int64_t budget_ms, const char *profile_id,
                               const char *hash, const char *exclude_id,
                               char out_id[CONTENT_ID_MAX]);

/* One post with its current gate results, nearest duplicate, latest
 * engagement, outcome (current reward version) and reply sentiment.
 * ST_NOT_FOUND when absent. for_update locks the row (inside a transaction
 * only). Reads as the read helpers above. */
status content_post_get(db_conn *db, int64_t budget_ms, arena *a, const char *post_id,
                        bool for_update, Herald__V1__Post **out);

typedef struct content_post_filter {
    const char *profile_id;    /* NULL: every profile */
    const char *const *states; /* database spellings; n_states 0: every state */
    size_t n_states;
    const char *platform; /* database spellings; NULL: any */
    const char *kind;
    const char *content_type;
    const char *voice_style;
    const char *topic;
    int64_t min_create_us; /* 0: none */
    int64_t max_create_us; /* 0: none (exclusive) */
    bool has_after;        /* keyset cursor: strictly after (after_us, after_id) */
    int64_t after_us;      /* in created_at DESC, post_id DESC order */
    const char *after_id;
    int limit;
} content_post_filter;

typedef struct content_post_page {
    Herald__V1__Post **posts; /* arena */
    size_t n;
    bool more;
    int64_t last_create_us; /* of posts[n - 1] */
} content_post_page;

/* A page of posts, newest first, with their gate results. */
status content_post_list(db_conn *db, int64_t budget_ms, arena *a, const content_post_filter *f,
                         content_post_page *out);

/* The decision logged with a post whose arms were chosen automatically. */
typedef struct content_decision {
    const char *kind;           /* "content" or "reply" */
    const char *reward_version; /* "" when none is current */
    const char *content_type;   /* NULL when not part of the choice */
    const char *voice_style;
    const char *topic;
    int hour_of_week; /* -1: none */
    int64_t target_ms;
    uint64_t seed;
    double propensity;
    bool forced;
    const char *candidates_json; /* a JSON array */
    const char *reason;
    /* the drawn scopes' chosen keys, whose arm_stats.pulls go up under the
     * current reward version (as Recommend counts them) */
    const char *pull_scope[3];
    const char *pull_key[3];
    size_t n_pulls;
} content_decision;

/* Everything a new post row needs; texts are borrowed. */
typedef struct content_new_post {
    const char *profile_id;
    const char *state; /* "draft" or "approved" */
    platform_id platform;
    const char *kind; /* "original", "reply", "adaptation" */
    const char *text;
    size_t len;
    const char *content_type; /* NULL allowed (replies) */
    const char *voice_style;
    const char *topic;
    const char *provider; /* "builtin" or "llm" */
    const char *llm_model;
    uint64_t seed;
    const content_decision *decision; /* non-NULL: inserted and linked */
    const char *decision_id;          /* else an existing decision to link, or NULL */
    const char *source_post_id;       /* adaptations */
    const char *reply_opportunity_id; /* replies */
    const char *reply_to_external_id;
    const gates_report *gates; /* required: stored as revision 1's results */
    double dup_threshold;      /* what the duplicate gate compared with */
} content_new_post;

/* Inserts the decision (if any), the post and its gate results. *id_out
 * gets the new post_id. ST_CONFLICT when another live post of the profile
 * has the same text (a concurrent writer won the unique index): nothing
 * is left behind once the caller rolls back. */
status content_post_insert_tx(db_conn *db, const content_new_post *np, char id_out[CONTENT_ID_MAX]);

/* Moves a post to state (database spelling) with reason, bumping its
 * revision; for a reply leaving the live states its opportunity is
 * reopened. The caller checked the transition. */
status content_post_set_state_tx(db_conn *db, const char *post_id, const char *state,
                                 const char *reason);

/* Replaces the text of a post (human_edited, new hash, nearest duplicate,
 * revision + 1, state) and stores the new revision's gate results. */
status content_post_update_text_tx(db_conn *db, const char *post_id, const char *text, size_t len,
                                   const char *state, const gates_report *gates,
                                   double dup_threshold);

/* Gate results as messages, in gate order; *n gets the count. NULL when the
 * arena is full. */
Herald__V1__GateResult **content_gate_results_msg(arena *a, const gates_report *r, size_t *n);
/* The nearest duplicate of a report as a message; NULL when none. */
Herald__V1__DuplicateMatch *content_dup_match_msg(arena *a, const gates_report *r);

/* ---------------------------------------------------------------- history */

/* Adds the profile's posts created in the last window_days (any state, most
 * recent CONTENT_HISTORY_MAX) to ix. Fingerprints come from a process-wide
 * cache keyed by post and content hash (any thread; a mutex guards it). */
status content_history_load(db_conn *db, int64_t budget_ms, const char *profile_id, int window_days,
                            textsim_index *ix);

/* Runs every gate with the server's configuration and the catalog's bounds
 * for the arms (keys may be NULL: only the platform limit applies). */
void content_gates_run(const catalog *cat, const char *text, size_t len, platform_id platform,
                       const char *content_type, const char *voice_style, const char *topic,
                       const textsim_index *recent, const char *exclude_id, double threshold,
                       int window_days, gates_report *out);

/* "failed GATE_HASHTAGS (hashtag #sleep), GATE_LENGTH (...)" into b; the
 * gates that failed, for FAILED_PRECONDITION messages and attempt reasons. */
void content_gates_failed_names(const gates_report *r, char *buf, size_t cap);

/* ---------------------------------------------------------------- arm choice */

typedef struct content_plan_req {
    const catalog *cat;
    const Herald__V1__Profile *profile;
    /* Fixed keys (normalised) or NULL to choose. */
    const char *content_type;
    const char *voice_style;
    const char *topic;
    bool builtin_only; /* only keys the built-in generator has templates for */
    bool reply;        /* choose a voice style only (content_type ignored) */
    /* Topics already used by drafts not yet committed (a batch), counted
     * as used now for the cooldown. */
    const char *const *pending_topics;
    size_t n_pending;
    int64_t now_ms;
    int64_t target_ms; /* the slot the draft is for (hour of week), 0 = now */
    uint64_t seed;
} content_plan_req;

typedef struct content_plan {
    char content_type[CONTENT_KEY_MAX]; /* "" for replies */
    char voice_style[CONTENT_KEY_MAX];
    char topic[CONTENT_KEY_MAX];
    bool automatic; /* something was drawn: log `decision` with the post */
    content_decision decision;
    char decision_id[CONTENT_ID_MAX]; /* an earlier decision to link instead; "" none */
    /* owned storage behind decision's strings */
    char reward_version[CONTENT_KEY_MAX];
    char *candidates_json;
    char *reason;
} content_plan;

void content_plan_fini(content_plan *p); /* NULL-safe */

/* Chooses the arms left open with bandit_recommend over the profile's arm
 * statistics (current reward version), arm settings and the catalog's
 * enabled entries (profile topics restrict the topics; topics without an
 * enabled fact never qualify). Topics used in the last topic_cooldown_hours
 * are excluded; when that would leave none, the least recently used ones
 * are allowed again (said in the reason). ST_INVALID (err) for a fixed key
 * that is unknown or disabled; ST_FAILED_PRECONDITION (err) when a scope
 * has no eligible arm. Reads as the read helpers above. */
status content_plan_choose(db_conn *db, int64_t budget_ms, const content_plan_req *rq,
                           content_plan *out, char *err, size_t errcap);

/* The arms of an earlier content decision (Recommend) of this profile.
 * ST_NOT_FOUND when there is none. */
status content_plan_from_decision(db_conn *db, int64_t budget_ms, const char *decision_id,
                                  const char *profile_id, content_plan *out);

/* Hour of week (0-167) of epoch ms t in the zone named tz ("UTC" when it
 * does not load). */
int content_hour_of_week(const char *tz, int64_t t_ms);

/* ---------------------------------------------------------------- replies */

typedef struct content_opportunity {
    char id[CONTENT_ID_MAX];
    char profile_id[64];
    platform_id platform;
    const char *external_post_id; /* arena */
    const char *text;             /* arena */
    const char *state;            /* arena: open, drafted, replied, expired */
    int64_t expire_ms;
} content_opportunity;

/* Loads (and with for_update locks) a reply opportunity. ST_NOT_FOUND. */
status content_opportunity_get(db_conn *db, int64_t budget_ms, arena *a, const char *id,
                               bool for_update, content_opportunity *out);
/* Marks it drafted by post_id. */
status content_opportunity_drafted_tx(db_conn *db, const char *id, const char *post_id);

/* ---------------------------------------------------------------- pre-generation */

/* Claims one active profile whose buffer (unscheduled original posts in
 * DRAFT or APPROVED) is below its draft_buffer_size, locking its row FOR NO
 * KEY UPDATE SKIP LOCKED until the transaction ends (another replica skips
 * it; GenerateDraft for it is not blocked), leaving out the ids in skip
 * (already tried in this run). *found false when none;
 * otherwise id_out and *missing (buffer size minus buffer). */
status content_pregen_claim_tx(db_conn *db, const char *const *skip, size_t n_skip, char id_out[64],
                               int *missing, bool *found);

/* ---------------------------------------------------------------- idempotency */

typedef enum {
    CONTENT_IDEM_NONE = 0, /* no stored reply under the key */
    CONTENT_IDEM_SAME,     /* a reply for this very request: *resp holds it */
    CONTENT_IDEM_OTHER,    /* the key belongs to another request or method */
} content_idem_state;

/* Looks up a committed idempotency key without taking it (the mutation's
 * own handler_mutate stays the authority): lets a handler replay before it
 * starts slow work such as an LLM call. *resp (malloc'd, caller frees) and
 * *code on CONTENT_IDEM_SAME. */
status content_idem_peek(db_conn *db, int64_t budget_ms, const char *key, const char *method,
                         const uint8_t hash[32], content_idem_state *state, uint8_t **resp,
                         size_t *resp_len, int *code);

#endif
