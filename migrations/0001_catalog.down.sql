-- Reverts 0001_catalog. Later migrations reference these tables, so they must
-- be rolled back first (golang-migrate does that by applying downs in order).
DROP TABLE IF EXISTS banned_phrases;
DROP TABLE IF EXISTS topic_facts;
DROP TABLE IF EXISTS topics;
DROP TABLE IF EXISTS voice_styles;
DROP TABLE IF EXISTS content_types;
