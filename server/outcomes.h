/* outcomes.h - post outcomes under the active reward version, and the arm
 * statistics they feed (issue 6, items 2-3).
 *
 * A published post is scored once per reward version, at its checkpoint
 * (publish_time + learning_config.checkpoint_ms, 24 h by default): the
 * observation used is the latest one at or before the checkpoint, else the
 * earliest one after it; reward.h scores it against the profile's trailing
 * baseline (the engagement rates of its earlier outcomes under the same
 * version). The outcome row is written learnable or not, and in the same
 * transaction every learnable outcome is folded into the post's arms
 * (content_type, voice_style, topic, hour_of_week of publish_time in the
 * profile's zone, reply_tier for replies) with bandit_stats_add, and the
 * profile's cache version LEARNING_VERSION_SCOPE(<profile>) is bumped so that
 * cached insights and best times are never served stale.
 *
 * Who scores:
 *   - the checkpoint job (outcomes_job, registered by outcomes_jobs_add):
 *     claims published posts past their checkpoint that have no outcome
 *     under the active version, FOR NO KEY UPDATE SKIP LOCKED (so replicas
 *     and RecordEngagement never score a post twice and never block the
 *     foreign-key checks of concurrent ingest), oldest first, in batches;
 *   - RecordEngagement, when an observation at or after a post's checkpoint
 *     arrives (outcomes_score_posts_tx in its own transaction);
 *   - RecomputeOutcomes (outcomes_recompute_tx): the whole history again.
 * The job and RecordEngagement hold a shared transaction-level advisory
 * lock, RecomputeOutcomes the exclusive one, so a switch of the active
 * version never interleaves with online scoring.
 *
 * Never learnt from: posts chosen by a decision marked simulated, posts
 * without publish_time (placeholders), outcomes reward.h marks not
 * learnable. A post with no observation at all is given up on
 * no_data_wait_ms after its checkpoint (recorded, not learnable).
 *
 * Locks are taken in one global order (posts by publish time, then arm
 * rows by profile, scope, key, then cache versions by scope) so that
 * concurrent scorers and Recommend's pull counters cannot deadlock.
 *
 * Threads: no state; a db_conn belongs to its thread. The registered job
 * keeps a copy of its configuration. */
#ifndef HERALD_OUTCOMES_H
#define HERALD_OUTCOMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bandit.h"
#include "db.h"
#include "reward.h"
#include "status.h"

struct config;
struct jobs;

/* cache_versions scope of everything learnt about a profile (arms,
 * outcomes, audience): "learning:<profile_id>". */
#define LEARNING_VERSION_PREFIX "learning:"

/* The advisory lock key shared by every scorer (see above). */
#define LEARNING_LOCK_KEY 0x6865726c6c726e31LL

typedef struct learning_config {
    int64_t checkpoint_ms;   /* after publish_time; default 24 h; 0 = at publishing */
    int64_t no_data_wait_ms; /* give up on a post without observations; default 24 h */
    int64_t lookback_ms;     /* the job looks at checkpoints this far back; default 30 d */
    int64_t job_interval_ms; /* how often the job runs; default 60 s */
    int batch;               /* posts per job transaction; default 200 */
    reward_options reward;
    bandit_config bandit;
} learning_config;

/* The defaults above (reward_options_default, bandit_config_default). */
void learning_config_default(learning_config *c);
/* The defaults, overridden by heraldd's learning.* settings. */
void learning_config_from(const struct config *cfg, learning_config *c);

typedef struct outcomes_result {
    int64_t scored;    /* outcome rows written */
    int64_t learnable; /* of which fed the arms */
    int64_t arms;      /* arm rows updated (recompute: rebuilt) */
    int64_t skipped;   /* claimed but left for later (no observation yet) */
} outcomes_result;

/* Inside the caller's transaction: scores those of posts[0..n) (post ids,
 * canonical lower-case UUID text) that are published, past their
 * checkpoint at now_ms, unscored under the active version and not locked
 * by another scorer. Adds to *r. */
status outcomes_score_posts_tx(db_conn *db, const learning_config *lc, char *const *posts, size_t n,
                               int64_t now_ms, outcomes_result *r);

/* Inside the caller's transaction: scores up to lc->batch due posts
 * (checkpoint <= now_ms, within lookback_ms). *more is true when the batch
 * was full. */
status outcomes_score_due_tx(db_conn *db, const learning_config *lc, int64_t now_ms,
                             outcomes_result *r, bool *more);

/* The checkpoint job (a jobs.h job_fn; user is a learning_config): scores
 * due posts batch by batch, one transaction each, within budget_ms. */
status outcomes_job(db_conn *db, int64_t budget_ms, char *note, size_t cap, void *user);

/* Registers outcomes_job as "learning_outcomes" on j with the learning.*
 * settings of cfg (copied). Before jobs_start. */
void outcomes_jobs_add(struct jobs *j, const struct config *cfg);

/* RecomputeOutcomes inside the caller's transaction: re-scores every
 * published post past its checkpoint (of profile_id, or of every profile
 * when NULL or "") under version, replaces those posts' outcomes of that
 * version, rebuilds their arms under it (pull counters carried over), makes
 * it the active version and bumps the cache versions. previous (prev_cap
 * bytes) gets the version active before ("" when none).
 * ST_FAILED_PRECONDITION (message in err) when profile_id is given and
 * version is not the active one: switching versions re-scores everyone. */
status outcomes_recompute_tx(db_conn *db, const learning_config *lc, const reward_version *version,
                             const char *profile_id, int64_t now_ms, char *previous,
                             size_t prev_cap, outcomes_result *r, char *err, size_t errcap);

#endif
