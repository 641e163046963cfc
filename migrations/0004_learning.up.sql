-- 0004_learning: what LearningService (issue 6) needs beyond 0002_core.
--
--  - arm_stats.outcome_count: the raw number of learnable outcomes folded
--    into an arm (Posterior.n), beside the discounted n. updated_at is the
--    instant the discounted sums refer to (bandit.h: the checkpoint of the
--    latest outcome folded in).
--  - reward_versions: the versions server/domain/reward.c knows, "v1"
--    current.
--  - topic_trends: the running trend state of each topic (trends.h), per
--    profile or global (profile_id NULL), folded by UpsertTopics.
--  - engagement_observations_post_idx (post_id, observed_at DESC) is dropped:
--    the unique (post_id, observed_at, source) index answers the same
--    lookups (a backward scan for the latest observation), and one index
--    fewer to maintain per row is the cheapest ingest speed-up there is.
--  - indexes for the outcome checkpoint job (published posts by publish
--    time), the topic cooldown of Recommend (a profile's posts by the time
--    they are or were due), baselines (outcomes by version and checkpoint)
--    and GetInsights (a profile's posts by publish time).

ALTER TABLE arm_stats
    ADD COLUMN outcome_count bigint NOT NULL DEFAULT 0 CHECK (outcome_count >= 0);

INSERT INTO reward_versions (reward_version, description, is_current) VALUES
    ('v1', '0.7 z(engagement rate) + 0.3 z(follows per 1k impressions); engagement = likes + '
           'replies + reposts + quotes; robust z against the trailing 30-day median and MAD; '
           'clipped to +-5', true),
    ('v2', 'conversation-weighted: 0.6 z(engagement rate) + 0.4 z(follows per 1k); engagement = '
           'likes + 2 replies + 2 reposts + 2 quotes + bookmarks; robust z against the trailing '
           '30-day median and MAD; clipped to +-5', false)
ON CONFLICT DO NOTHING;

CREATE TABLE topic_trends (
    profile_id        text REFERENCES profiles (profile_id) ON DELETE CASCADE,
    topic             text NOT NULL CHECK (topic ~ '^[a-z0-9][a-z0-9_]{0,63}$'),
    display_name      text NOT NULL DEFAULT '' CHECK (char_length(display_name) <= 100),
    -- trends_state (server/domain/trends.h); instants in epoch ms
    velocity          double precision NOT NULL DEFAULT 0,
    acceleration      double precision NOT NULL DEFAULT 0,
    first_ms          bigint NOT NULL DEFAULT 0,
    last_ms           bigint NOT NULL DEFAULT 0,
    observations      bigint NOT NULL DEFAULT 0 CHECK (observations >= 0),
    prev_velocity     double precision NOT NULL DEFAULT 0,
    prev_acceleration double precision NOT NULL DEFAULT 0,
    step_alpha        double precision NOT NULL DEFAULT 0,
    step_beta         double precision NOT NULL DEFAULT 0,
    step_hours        double precision NOT NULL DEFAULT 0,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (profile_id, topic)
);

CREATE INDEX posts_published_idx ON posts (publish_time) WHERE state = 'published';
CREATE INDEX posts_profile_publish_idx ON posts (profile_id, publish_time)
    WHERE publish_time IS NOT NULL;
CREATE INDEX posts_profile_topic_time_idx
    ON posts (profile_id, (COALESCE(publish_time, schedule_time, created_at)))
    WHERE topic IS NOT NULL;
CREATE INDEX outcomes_version_checkpoint_idx ON outcomes (reward_version, checkpoint_time);

DROP INDEX engagement_observations_post_idx;
