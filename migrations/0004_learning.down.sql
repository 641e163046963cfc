-- 0004_learning down: drops what 0004_learning.up.sql added.
CREATE INDEX IF NOT EXISTS engagement_observations_post_idx
    ON engagement_observations (post_id, observed_at DESC);
DROP INDEX IF EXISTS outcomes_version_checkpoint_idx;
DROP INDEX IF EXISTS posts_profile_topic_time_idx;
DROP INDEX IF EXISTS posts_profile_publish_idx;
DROP INDEX IF EXISTS posts_published_idx;
DROP TABLE IF EXISTS topic_trends;
DELETE FROM reward_versions r WHERE r.reward_version IN ('v1', 'v2')
    AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.reward_version = r.reward_version)
    AND NOT EXISTS (SELECT 1 FROM arm_stats a WHERE a.reward_version = r.reward_version)
    AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.reward_version = r.reward_version);
ALTER TABLE arm_stats DROP COLUMN IF EXISTS outcome_count;
