/* profiles.h - the profiles table (migrations/0002_core) as herald.v1.Profile
 * messages, for OpsService (svc_ops.c) and any handler that needs a profile.
 *
 * SQL lives here so handlers stay short; validation does not (the handler
 * validates the request first, see svc_ops.c). Functions ending in _tx run
 * inside the caller's open transaction (handler_mutate's); the others run
 * their own statement with a budget. Profiles built here are allocated in
 * the arena a (the call's); strings are copies.
 *
 * Secrets. publish_secret is stored as bytea and never read back: a loaded
 * profile carries publish_target.secret_set, never the secret.
 *
 * Cache versions (cache.h). Every write to a profile row bumps its revision
 * and the "profiles:list" version (profile_list_bump_tx) in the writer's
 * transaction. A cached GetProfile value lives under
 * cache_key("profile", "<id>@<create_us>", revision) and a ListProfiles page
 * under the list version: the creation instant and the list version's
 * update time keep a recreated database (revisions restarting at 1) from
 * meeting the old keys. Any other module that writes profiles must do the
 * same bumps.
 *
 * Threads: a db_conn belongs to one worker; nothing here has state. */
#ifndef HERALD_PROFILES_H
#define HERALD_PROFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "db.h"
#include "herald/v1/ops.pb-c.h"
#include "status.h"

#define PROFILES_LIST_SCOPE "profiles:list" /* cache_versions scope of ListProfiles */

enum { PROFILE_TOPICS_MAX = 100 };

/* The revision and creation instant of profile id (its cache key parts).
 * ST_NOT_FOUND when absent. Its own statement. */
status profile_version(db_conn *db, int64_t budget_ms, const char *id, int64_t *revision,
                       int64_t *create_us);

/* The whole profile in one statement (one snapshot). ST_NOT_FOUND when
 * absent. */
status profile_get(db_conn *db, int64_t budget_ms, arena *a, const char *id,
                   Herald__V1__Profile **out);
/* The same inside a transaction; for_update locks the row until commit. */
status profile_get_tx(db_conn *db, arena *a, const char *id, bool for_update,
                      Herald__V1__Profile **out);

/* Which of keys (normalised topic keys) are not in the catalog: their
 * indexes, ascending, in *bad (arena) and their count in *n_bad. */
status profile_unknown_topics_tx(db_conn *db, arena *a, char *const *keys, size_t n, size_t **bad,
                                 size_t *n_bad);

/* Inserts p (validated and normalised: enums set, defaults applied, topics
 * normalised and known) with secret (NULL or "" = none). ST_ALREADY_EXISTS
 * when the profile_id is taken. Bumps the list version. */
status profile_insert_tx(db_conn *db, const Herald__V1__Profile *p, const char *secret);

/* What an update does with the stored secret. */
typedef enum {
    PROFILE_SECRET_KEEP = 0,
    PROFILE_SECRET_SET,
    PROFILE_SECRET_CLEAR,
} profile_secret_op;

/* Writes every mutable column of p (the merged new state of p->profile_id),
 * replaces the topics when topics_changed, applies the secret op, bumps the
 * revision and the list version. ST_NOT_FOUND when absent. */
status profile_update_tx(db_conn *db, const Herald__V1__Profile *p, bool topics_changed,
                         profile_secret_op secret_op, const char *secret);

/* Pauses (reason, now) or resumes (reason ignored) the profile, bumping its
 * revision and the list version, and records a system event (kind
 * "profile_paused" / "profile_resumed") with reason, request_id and actor
 * (the peer address). The caller checked the current state. */
status profile_set_paused_tx(db_conn *db, const char *id, bool paused, const char *reason,
                             const char *request_id, const char *actor);

/* Bumps the "profiles:list" version (inside the writer's transaction). */
status profile_list_bump_tx(db_conn *db);

/* The list version and its update instant (0, 0 before any profile write),
 * for the ListProfiles cache key. Its own statement. */
status profile_list_version(db_conn *db, int64_t budget_ms, int64_t *version, int64_t *vtime_us);

typedef struct profile_page {
    Herald__V1__Profile **profiles; /* arena */
    size_t n;
    bool more;       /* another page follows */
    int64_t version; /* the list version seen by the same snapshot */
    int64_t vtime_us;
} profile_page;

/* Up to limit profiles with id > after (NULL: from the start), by id,
 * filtered by state / platform (database spelling; NULL: any), together with
 * the list version, in one statement. */
status profile_list(db_conn *db, int64_t budget_ms, arena *a, const char *state,
                    const char *platform, const char *after, int limit, profile_page *out);

#endif
