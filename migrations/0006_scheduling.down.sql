-- Reverts 0006_scheduling.
DROP TABLE IF EXISTS profile_cooldowns;

ALTER TABLE posting_policies DROP CONSTRAINT posting_policies_max_posts_per_day_check;
ALTER TABLE posting_policies ADD CONSTRAINT posting_policies_max_posts_per_day_check
    CHECK (max_posts_per_day BETWEEN 0 AND 1000);

ALTER TABLE posting_policies
    ALTER COLUMN max_posts_per_day SET DEFAULT 8,
    ALTER COLUMN min_gap_minutes SET DEFAULT 60,
    ALTER COLUMN min_replies_per_hour SET DEFAULT 0,
    ALTER COLUMN max_replies_per_day SET DEFAULT 40,
    ALTER COLUMN reply_author_cooldown_hours SET DEFAULT 24,
    ALTER COLUMN reply_freshness_minutes SET DEFAULT 120,
    ALTER COLUMN auth_wall_cooldown_minutes SET DEFAULT 360,
    ALTER COLUMN challenge_cooldown_minutes SET DEFAULT 720,
    ALTER COLUMN max_publish_attempts SET DEFAULT 3,
    ALTER COLUMN reconcile_window_minutes SET DEFAULT 60;
