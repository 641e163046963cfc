-- 0006_scheduling: what SchedulingService (issue 7) needs beyond 0002_core.
--
--  - posting_policies: the defaults of the issue and of herald.v1.PostingPolicy
--    (2 posts/h, 24/day, 20 min apart, 4-6 replies/h and 60/day, reply
--    cooldowns 24 h per root and 12 h per author, freshness 180 min; cooldowns
--    60/720/360 min; 5 attempts; reconcile window 30 min), which 0002 had
--    otherwise; max_posts_per_day may go up to the proto's 1,440. heraldd
--    writes every column explicitly (server/domain/policy.c is the source of
--    the defaults); these only keep hand-written rows in line.
--  - profile_cooldowns: the platform cooldown in force per profile, as
--    server/domain/policy.h computes it from the signals (start, end, the
--    signal that set the end; CLEARED ends it early and is kept, because the
--    halved targets still apply to the local days it touched).
--    platform_signals stays the append-only log of what executors reported.

ALTER TABLE posting_policies
    ALTER COLUMN max_posts_per_day SET DEFAULT 24,
    ALTER COLUMN min_gap_minutes SET DEFAULT 20,
    ALTER COLUMN min_replies_per_hour SET DEFAULT 4,
    ALTER COLUMN max_replies_per_day SET DEFAULT 60,
    ALTER COLUMN reply_author_cooldown_hours SET DEFAULT 12,
    ALTER COLUMN reply_freshness_minutes SET DEFAULT 180,
    ALTER COLUMN auth_wall_cooldown_minutes SET DEFAULT 720,
    ALTER COLUMN challenge_cooldown_minutes SET DEFAULT 360,
    ALTER COLUMN max_publish_attempts SET DEFAULT 5,
    ALTER COLUMN reconcile_window_minutes SET DEFAULT 30;

ALTER TABLE posting_policies DROP CONSTRAINT posting_policies_max_posts_per_day_check;
ALTER TABLE posting_policies ADD CONSTRAINT posting_policies_max_posts_per_day_check
    CHECK (max_posts_per_day BETWEEN 0 AND 1440);

CREATE TABLE profile_cooldowns (
    profile_id  text PRIMARY KEY REFERENCES profiles (profile_id) ON DELETE CASCADE,
    start_time  timestamptz NOT NULL,
    end_time    timestamptz NOT NULL,
    kind        text NOT NULL
                CHECK (kind IN ('rate_limited', 'auth_wall', 'challenge', 'restricted', 'cleared')),
    -- the platform_signals row that last changed it
    signal_id   bigint REFERENCES platform_signals (signal_id) ON DELETE SET NULL,
    revision    bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (end_time >= start_time)
);
