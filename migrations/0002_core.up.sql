-- 0002_core: the durable domain (DESIGN.md §4): profiles and their posting
-- policy, posts and their whole lifecycle, publish attempts (leases), gate
-- results, engagement observations, follower snapshots, replies and their
-- sentiment, outcomes under a reward version, arm statistics, decisions,
-- reply opportunities, topic observations (trends), idempotency keys, cache
-- versions and background job leases.
--
-- Conventions:
--  - Enums are stored as lower snake case text of the proto enum's suffix
--    (POST_STATE_UNCONFIRMED -> 'unconfirmed'); every such column has a CHECK
--    listing the allowed values. *_UNSPECIFIED is never stored.
--  - Server-assigned ids are uuid (gen_random_uuid()); profile ids and catalog
--    keys are text with the format the API documents.
--  - Instants are timestamptz. uint64 seeds are stored as bigint holding the
--    same 64 bits (C casts between int64_t and uint64_t).
--  - A metric that was not observed is NULL, never 0.
--  - revision columns start at 1 and are bumped by every change in the same
--    transaction; readers of the Redis cache build their keys from them, so
--    an acknowledged write can never be followed by a stale cached read.

-- ---------------------------------------------------------------- profiles

CREATE TABLE profiles (
    profile_id           text PRIMARY KEY CHECK (profile_id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    display_name         text NOT NULL DEFAULT '' CHECK (char_length(display_name) <= 100),
    platform             text NOT NULL
                         CHECK (platform IN ('x', 'threads', 'bluesky', 'linkedin')),
    handle               text NOT NULL DEFAULT '' CHECK (char_length(handle) <= 100),
    time_zone            text NOT NULL DEFAULT 'UTC'
                         CHECK (char_length(time_zone) BETWEEN 1 AND 64),
    language             text NOT NULL DEFAULT 'en'
                         CHECK (char_length(language) BETWEEN 1 AND 35),
    state                text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused')),
    pause_reason         text NOT NULL DEFAULT '' CHECK (char_length(pause_reason) <= 500),
    pause_time           timestamptz,
    auto_approve         boolean NOT NULL DEFAULT false,
    default_provider     text NOT NULL DEFAULT 'auto'
                         CHECK (default_provider IN ('auto', 'builtin', 'llm')),
    topic_cooldown_hours integer NOT NULL DEFAULT 24
                         CHECK (topic_cooldown_hours BETWEEN 0 AND 720),
    draft_buffer_size    integer NOT NULL DEFAULT 0 CHECK (draft_buffer_size BETWEEN 0 AND 100),
    publish_kind         text NOT NULL DEFAULT 'executor'
                         CHECK (publish_kind IN ('executor', 'webhook', 'x_api_v2')),
    publish_url          text NOT NULL DEFAULT '' CHECK (char_length(publish_url) <= 2048),
    -- the webhook HMAC key or bearer token; never returned or logged
    publish_secret       bytea CHECK (octet_length(publish_secret) BETWEEN 1 AND 4096),
    publish_timeout_ms   integer NOT NULL DEFAULT 10000
                         CHECK (publish_timeout_ms BETWEEN 100 AND 60000),
    revision             bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'paused') = (pause_time IS NOT NULL)),
    CHECK (publish_kind = 'executor' OR publish_url ~ '^https?://')
);
CREATE INDEX profiles_state_platform_idx ON profiles (state, platform, profile_id);

-- The topics a profile writes about, in the order given; none = all enabled.
CREATE TABLE profile_topics (
    profile_id text NOT NULL REFERENCES profiles (profile_id) ON DELETE CASCADE,
    topic_key  text NOT NULL REFERENCES topics (key) ON UPDATE CASCADE,
    position   integer NOT NULL CHECK (position BETWEEN 0 AND 99),
    PRIMARY KEY (profile_id, topic_key),
    UNIQUE (profile_id, position)
);

CREATE TABLE posting_policies (
    profile_id                    text PRIMARY KEY
                                  REFERENCES profiles (profile_id) ON DELETE CASCADE,
    max_posts_per_hour            integer NOT NULL DEFAULT 2
                                  CHECK (max_posts_per_hour BETWEEN 0 AND 100),
    max_posts_per_day             integer NOT NULL DEFAULT 8
                                  CHECK (max_posts_per_day BETWEEN 0 AND 1000),
    min_gap_minutes               integer NOT NULL DEFAULT 60
                                  CHECK (min_gap_minutes BETWEEN 0 AND 1440),
    -- [{"start_minute_of_day": 1380, "end_minute_of_day": 420, "days": [1,2]}]
    quiet_hours                   jsonb NOT NULL DEFAULT '[]'
                                  CHECK (jsonb_typeof(quiet_hours) = 'array'),
    min_replies_per_hour          integer NOT NULL DEFAULT 0
                                  CHECK (min_replies_per_hour >= 0),
    max_replies_per_hour          integer NOT NULL DEFAULT 6
                                  CHECK (max_replies_per_hour BETWEEN 0 AND 1000),
    max_replies_per_day           integer NOT NULL DEFAULT 40
                                  CHECK (max_replies_per_day BETWEEN 0 AND 10000),
    reply_root_cooldown_hours     integer NOT NULL DEFAULT 24
                                  CHECK (reply_root_cooldown_hours BETWEEN 0 AND 720),
    reply_author_cooldown_hours   integer NOT NULL DEFAULT 24
                                  CHECK (reply_author_cooldown_hours BETWEEN 0 AND 720),
    reply_freshness_minutes       integer NOT NULL DEFAULT 120
                                  CHECK (reply_freshness_minutes BETWEEN 1 AND 10080),
    rate_limit_cooldown_minutes   integer NOT NULL DEFAULT 60
                                  CHECK (rate_limit_cooldown_minutes BETWEEN 0 AND 10080),
    auth_wall_cooldown_minutes    integer NOT NULL DEFAULT 360
                                  CHECK (auth_wall_cooldown_minutes BETWEEN 0 AND 10080),
    challenge_cooldown_minutes    integer NOT NULL DEFAULT 720
                                  CHECK (challenge_cooldown_minutes BETWEEN 0 AND 10080),
    cooldown_target_factor        double precision NOT NULL DEFAULT 0.5
                                  CHECK (cooldown_target_factor > 0 AND cooldown_target_factor <= 1),
    max_publish_attempts          integer NOT NULL DEFAULT 3
                                  CHECK (max_publish_attempts BETWEEN 1 AND 20),
    retry_initial_backoff_seconds integer NOT NULL DEFAULT 60
                                  CHECK (retry_initial_backoff_seconds BETWEEN 1 AND 86400),
    retry_max_backoff_seconds     integer NOT NULL DEFAULT 3600
                                  CHECK (retry_max_backoff_seconds BETWEEN 1 AND 604800),
    reconcile_window_minutes      integer NOT NULL DEFAULT 60
                                  CHECK (reconcile_window_minutes BETWEEN 1 AND 10080),
    revision                      bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    updated_at                    timestamptz NOT NULL DEFAULT now(),
    CHECK (max_posts_per_hour <= max_posts_per_day),
    CHECK (min_replies_per_hour <= max_replies_per_hour),
    CHECK (max_replies_per_hour <= max_replies_per_day),
    CHECK (retry_initial_backoff_seconds <= retry_max_backoff_seconds)
);

-- Platform signals reported by executors (429, auth wall...): an append-only
-- log; the profile's current cooldown is its latest row unless that row is
-- 'cleared' or has ended.
CREATE TABLE platform_signals (
    signal_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    profile_id   text NOT NULL REFERENCES profiles (profile_id) ON DELETE CASCADE,
    executor_id  text NOT NULL DEFAULT '' CHECK (char_length(executor_id) <= 128),
    kind         text NOT NULL
                 CHECK (kind IN ('rate_limited', 'auth_wall', 'challenge', 'restricted', 'cleared')),
    reset_time   timestamptz,
    cooldown_end timestamptz,
    detail       text NOT NULL DEFAULT '' CHECK (char_length(detail) <= 1000),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'cleared') = (cooldown_end IS NULL))
);
CREATE INDEX platform_signals_profile_idx ON platform_signals (profile_id, created_at DESC);

-- The audience's time zones (UpdateAudience); shares sum to about 1.
CREATE TABLE audiences (
    profile_id text PRIMARY KEY REFERENCES profiles (profile_id) ON DELETE CASCADE,
    -- [{"time_zone": "Europe/Paris", "share": 0.4}, ...]
    time_zones jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(time_zones) = 'array'),
    source     text NOT NULL DEFAULT '' CHECK (char_length(source) <= 64),
    revision   bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- learning: decisions

-- The reward definitions; outcomes and arm statistics are computed under one.
-- At most one is current.
CREATE TABLE reward_versions (
    reward_version text PRIMARY KEY
                   CHECK (reward_version ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    description    text NOT NULL DEFAULT '' CHECK (char_length(description) <= 1000),
    is_current     boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX reward_versions_one_current ON reward_versions ((true)) WHERE is_current;

-- Every automatic choice (content arms, a time slot, a reply tier), with the
-- candidates it chose from and the probability of the chosen one.
CREATE TABLE decisions (
    decision_id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    profile_id     text NOT NULL REFERENCES profiles (profile_id),
    kind           text NOT NULL CHECK (kind IN ('content', 'timing', 'reply')),
    reward_version text REFERENCES reward_versions (reward_version),
    content_type   text REFERENCES content_types (key) ON UPDATE CASCADE,
    voice_style    text REFERENCES voice_styles (key) ON UPDATE CASCADE,
    topic          text REFERENCES topics (key) ON UPDATE CASCADE,
    hour_of_week   smallint CHECK (hour_of_week BETWEEN 0 AND 167),
    target_time    timestamptz,
    seed           bigint NOT NULL,
    -- probability the policy had of making this choice; 1 when forced
    propensity     double precision NOT NULL CHECK (propensity > 0 AND propensity <= 1),
    forced         boolean NOT NULL DEFAULT false,
    -- simulated/placeholder decisions never feed learning
    simulated      boolean NOT NULL DEFAULT false,
    candidates     jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(candidates) = 'array'),
    reason         text NOT NULL DEFAULT '' CHECK (char_length(reason) <= 2000),
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT forced OR propensity = 1),
    CHECK (kind <> 'content' OR (content_type IS NOT NULL AND voice_style IS NOT NULL
                                 AND topic IS NOT NULL)),
    CHECK (kind <> 'timing' OR hour_of_week IS NOT NULL)
);
CREATE INDEX decisions_profile_idx ON decisions (profile_id, created_at DESC);

-- ---------------------------------------------------------------- reply opportunities

CREATE TABLE reply_opportunities (
    opportunity_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    profile_id         text NOT NULL REFERENCES profiles (profile_id),
    platform           text NOT NULL
                       CHECK (platform IN ('x', 'threads', 'bluesky', 'linkedin')),
    external_post_id   text NOT NULL CHECK (char_length(external_post_id) BETWEEN 1 AND 128),
    root_external_id   text NOT NULL DEFAULT '' CHECK (char_length(root_external_id) <= 128),
    author_id          text NOT NULL DEFAULT '' CHECK (char_length(author_id) <= 128),
    author_handle      text NOT NULL DEFAULT '' CHECK (char_length(author_handle) <= 100),
    author_followers   bigint CHECK (author_followers >= 0),
    text               text NOT NULL DEFAULT '' CHECK (char_length(text) <= 10000),
    url                text NOT NULL DEFAULT '' CHECK (char_length(url) <= 2048),
    target_create_time timestamptz,
    observe_time       timestamptz NOT NULL DEFAULT now(),
    likes              bigint CHECK (likes >= 0),
    replies            bigint CHECK (replies >= 0),
    reposts            bigint CHECK (reposts >= 0),
    tier               text NOT NULL CHECK (tier IN ('nano', 'micro', 'mid', 'macro', 'mega')),
    velocity_per_hour  double precision NOT NULL DEFAULT 0 CHECK (velocity_per_hour >= 0),
    relevance          double precision NOT NULL DEFAULT 0 CHECK (relevance BETWEEN 0 AND 1),
    score              double precision NOT NULL DEFAULT 0,
    state              text NOT NULL DEFAULT 'open'
                       CHECK (state IN ('open', 'drafted', 'replied', 'expired')),
    reply_post_id      uuid, -- REFERENCES posts, added below (the two refer to each other)
    expire_time        timestamptz NOT NULL,
    revision           bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (profile_id, platform, external_post_id),
    CHECK (state NOT IN ('drafted', 'replied') OR reply_post_id IS NOT NULL)
);
CREATE INDEX reply_opportunities_open_idx ON reply_opportunities (profile_id, score DESC)
    WHERE state = 'open';

-- ---------------------------------------------------------------- posts

CREATE TABLE posts (
    post_id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    profile_id           text NOT NULL REFERENCES profiles (profile_id),
    state                text NOT NULL
                         CHECK (state IN ('draft', 'approved', 'scheduled', 'publishing',
                                          'unconfirmed', 'published', 'failed', 'rejected',
                                          'cancelled')),
    platform             text NOT NULL
                         CHECK (platform IN ('x', 'threads', 'bluesky', 'linkedin')),
    kind                 text NOT NULL DEFAULT 'original'
                         CHECK (kind IN ('original', 'reply', 'adaptation')),
    text                 text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 10000),
    -- lower-case hex SHA-256 of the normalised text (the exact-duplicate key)
    content_hash         text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    content_type         text REFERENCES content_types (key) ON UPDATE CASCADE,
    voice_style          text REFERENCES voice_styles (key) ON UPDATE CASCADE,
    topic                text REFERENCES topics (key) ON UPDATE CASCADE,
    provider             text NOT NULL CHECK (provider IN ('builtin', 'llm')),
    llm_model            text NOT NULL DEFAULT '' CHECK (char_length(llm_model) <= 200),
    seed                 bigint NOT NULL DEFAULT 0,
    human_edited         boolean NOT NULL DEFAULT false,
    decision_id          uuid REFERENCES decisions (decision_id),
    source_post_id       uuid REFERENCES posts (post_id),
    reply_opportunity_id uuid REFERENCES reply_opportunities (opportunity_id),
    reply_to_external_id text NOT NULL DEFAULT '' CHECK (char_length(reply_to_external_id) <= 128),
    nearest_duplicate_id uuid REFERENCES posts (post_id),
    nearest_similarity   double precision CHECK (nearest_similarity BETWEEN 0 AND 1),
    schedule_time        timestamptz,
    hour_of_week         smallint CHECK (hour_of_week BETWEEN 0 AND 167),
    slot_decision_id     uuid REFERENCES decisions (decision_id),
    publish_time         timestamptz,
    external_id          text CHECK (char_length(external_id) BETWEEN 1 AND 128),
    external_url         text CHECK (char_length(external_url) <= 2048),
    attempt_count        integer NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    last_outcome         text CHECK (last_outcome IN ('success', 'retryable', 'permanent',
                                                      'unknown')),
    last_error_class     text CHECK (last_error_class IN ('rate_limited', 'auth', 'challenge',
                                                          'network', 'timeout', 'server_error',
                                                          'content_rejected', 'duplicate_content',
                                                          'invalid_request', 'other')),
    last_error           text NOT NULL DEFAULT '' CHECK (char_length(last_error) <= 2000),
    next_attempt_time    timestamptz,
    state_reason         text NOT NULL DEFAULT '' CHECK (char_length(state_reason) <= 1000),
    revision             bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (state <> 'scheduled' OR schedule_time IS NOT NULL),
    CHECK (state <> 'published' OR (external_id IS NOT NULL AND publish_time IS NOT NULL)),
    CHECK (kind <> 'reply' OR reply_to_external_id <> ''),
    CHECK (kind <> 'adaptation' OR source_post_id IS NOT NULL),
    CHECK (source_post_id IS NULL OR source_post_id <> post_id)
);
-- No two live posts of a profile with the same text.
CREATE UNIQUE INDEX posts_live_content_uq ON posts (profile_id, content_hash)
    WHERE state NOT IN ('rejected', 'cancelled', 'failed');
-- A platform post id belongs to one of our posts.
CREATE UNIQUE INDEX posts_external_uq ON posts (platform, external_id)
    WHERE external_id IS NOT NULL;
-- One reply per opportunity among live posts.
CREATE UNIQUE INDEX posts_reply_opportunity_uq ON posts (reply_opportunity_id)
    WHERE reply_opportunity_id IS NOT NULL AND state NOT IN ('rejected', 'cancelled', 'failed');
CREATE INDEX posts_due_idx ON posts (schedule_time) WHERE state = 'scheduled';
CREATE INDEX posts_retry_idx ON posts (next_attempt_time) WHERE next_attempt_time IS NOT NULL;
CREATE INDEX posts_profile_created_idx ON posts (profile_id, created_at DESC, post_id);
CREATE INDEX posts_profile_state_idx ON posts (profile_id, state);

ALTER TABLE reply_opportunities
    ADD CONSTRAINT reply_opportunities_reply_post_fk
    FOREIGN KEY (reply_post_id) REFERENCES posts (post_id);

-- Gate verdicts of each text revision of a post.
CREATE TABLE gate_results (
    post_id    uuid NOT NULL REFERENCES posts (post_id),
    revision   bigint NOT NULL CHECK (revision >= 1),
    gate       text NOT NULL
               CHECK (gate IN ('length', 'hashtags', 'banned_phrases', 'thread_markers', 'emoji',
                               'claim_safety', 'duplicate')),
    verdict    text NOT NULL CHECK (verdict IN ('pass', 'fail')),
    reason     text NOT NULL DEFAULT '' CHECK (char_length(reason) <= 1000),
    score      double precision,
    threshold  double precision,
    checked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, revision, gate)
);

-- ---------------------------------------------------------------- publishing

-- One row per leased publish attempt. The lease is live while state is
-- 'leased'; at most one live lease per post.
CREATE TABLE publish_attempts (
    lease_id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    post_id             uuid NOT NULL REFERENCES posts (post_id),
    attempt_number      integer NOT NULL CHECK (attempt_number >= 1),
    executor_id         text NOT NULL CHECK (char_length(executor_id) BETWEEN 1 AND 128),
    state               text NOT NULL DEFAULT 'leased'
                        CHECK (state IN ('leased', 'succeeded', 'failed', 'unknown', 'expired',
                                         'released')),
    claim_time          timestamptz NOT NULL DEFAULT now(),
    expire_time         timestamptz NOT NULL,
    finish_time         timestamptz,
    outcome             text CHECK (outcome IN ('success', 'retryable', 'permanent', 'unknown')),
    error_class         text CHECK (error_class IN ('rate_limited', 'auth', 'challenge', 'network',
                                                    'timeout', 'server_error', 'content_rejected',
                                                    'duplicate_content', 'invalid_request',
                                                    'other')),
    error_message       text NOT NULL DEFAULT '' CHECK (char_length(error_message) <= 2000),
    external_id         text CHECK (char_length(external_id) BETWEEN 1 AND 128),
    external_url        text CHECK (char_length(external_url) <= 2048),
    publish_time        timestamptz,
    retry_after_seconds integer CHECK (retry_after_seconds >= 0),
    UNIQUE (post_id, attempt_number),
    CHECK (expire_time > claim_time),
    CHECK ((state = 'leased') = (finish_time IS NULL)),
    CHECK (state <> 'succeeded' OR (outcome = 'success' AND external_id IS NOT NULL)),
    CHECK (outcome IS NULL OR state <> 'leased')
);
CREATE UNIQUE INDEX publish_attempts_one_live_uq ON publish_attempts (post_id)
    WHERE state = 'leased';
CREATE INDEX publish_attempts_expiry_idx ON publish_attempts (expire_time)
    WHERE state = 'leased';

-- ---------------------------------------------------------------- observations (append-only)

CREATE FUNCTION herald_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TABLE engagement_observations (
    observation_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id        uuid NOT NULL REFERENCES posts (post_id),
    observed_at    timestamptz NOT NULL,
    source         text NOT NULL CHECK (char_length(source) BETWEEN 1 AND 64),
    impressions    bigint CHECK (impressions >= 0),
    likes          bigint CHECK (likes >= 0),
    replies        bigint CHECK (replies >= 0),
    reposts        bigint CHECK (reposts >= 0),
    quotes         bigint CHECK (quotes >= 0),
    bookmarks      bigint CHECK (bookmarks >= 0),
    profile_visits bigint CHECK (profile_visits >= 0),
    link_clicks    bigint CHECK (link_clicks >= 0),
    follows        bigint CHECK (follows >= 0),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (post_id, observed_at, source),
    CHECK (num_nonnulls(impressions, likes, replies, reposts, quotes, bookmarks, profile_visits,
                        link_clicks, follows) >= 1)
);
CREATE INDEX engagement_observations_post_idx ON engagement_observations (post_id, observed_at DESC);
CREATE TRIGGER engagement_observations_append_only
    BEFORE UPDATE OR DELETE ON engagement_observations
    FOR EACH ROW EXECUTE FUNCTION herald_append_only();
CREATE TRIGGER engagement_observations_no_truncate
    BEFORE TRUNCATE ON engagement_observations
    FOR EACH STATEMENT EXECUTE FUNCTION herald_append_only();

CREATE TABLE follower_snapshots (
    profile_id      text NOT NULL REFERENCES profiles (profile_id),
    observed_at     timestamptz NOT NULL,
    source          text NOT NULL CHECK (char_length(source) BETWEEN 1 AND 64),
    follower_count  bigint NOT NULL CHECK (follower_count >= 0),
    following_count bigint CHECK (following_count >= 0),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (profile_id, observed_at, source)
);
CREATE TRIGGER follower_snapshots_append_only
    BEFORE UPDATE OR DELETE ON follower_snapshots
    FOR EACH ROW EXECUTE FUNCTION herald_append_only();

-- Replies other accounts left under our posts, with their sentiment.
CREATE TABLE post_replies (
    post_id           uuid NOT NULL REFERENCES posts (post_id),
    external_reply_id text NOT NULL CHECK (char_length(external_reply_id) BETWEEN 1 AND 128),
    author_id         text NOT NULL DEFAULT '' CHECK (char_length(author_id) <= 128),
    author_handle     text NOT NULL DEFAULT '' CHECK (char_length(author_handle) <= 100),
    text              text NOT NULL DEFAULT '' CHECK (char_length(text) <= 10000),
    reply_time        timestamptz,
    label             text NOT NULL
                      CHECK (label IN ('positive', 'neutral', 'question', 'negative', 'hostile',
                                       'spam')),
    score             double precision NOT NULL CHECK (score BETWEEN -1 AND 1),
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, external_reply_id)
);

-- Topic mentions seen by scouts (UpsertTopics); trends are computed from
-- them. The topic need not be in the catalog.
CREATE TABLE topic_observations (
    observation_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    profile_id     text REFERENCES profiles (profile_id) ON DELETE CASCADE,
    topic          text NOT NULL CHECK (topic ~ '^[a-z0-9][a-z0-9_]{0,63}$'),
    display_name   text NOT NULL DEFAULT '' CHECK (char_length(display_name) <= 100),
    mention_count  bigint NOT NULL CHECK (mention_count >= 0),
    observed_at    timestamptz NOT NULL,
    period_minutes integer NOT NULL CHECK (period_minutes BETWEEN 1 AND 10080),
    source         text NOT NULL DEFAULT '' CHECK (char_length(source) <= 64),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (profile_id, topic, observed_at, source)
);
CREATE INDEX topic_observations_topic_idx ON topic_observations (topic, observed_at DESC);

-- ---------------------------------------------------------------- learning: outcomes and arms

CREATE TABLE outcomes (
    post_id            uuid NOT NULL REFERENCES posts (post_id),
    reward_version     text NOT NULL REFERENCES reward_versions (reward_version),
    reward             double precision,
    engagement_rate    double precision CHECK (engagement_rate >= 0),
    follows_per_1k     double precision CHECK (follows_per_1k >= 0),
    baseline           double precision,
    learnable          boolean NOT NULL,
    learnable_reason   text NOT NULL DEFAULT '' CHECK (char_length(learnable_reason) <= 500),
    checkpoint_time    timestamptz NOT NULL,
    computed_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, reward_version),
    CHECK (NOT learnable OR reward IS NOT NULL)
);

-- Sufficient statistics of each arm per profile, scope and reward version
-- (discounted: n and the sums decay with age).
CREATE TABLE arm_stats (
    profile_id     text NOT NULL REFERENCES profiles (profile_id),
    scope          text NOT NULL
                   CHECK (scope IN ('content_type', 'voice_style', 'topic', 'hour_of_week',
                                    'reply_tier')),
    arm_key        text NOT NULL CHECK (char_length(arm_key) BETWEEN 1 AND 64),
    reward_version text NOT NULL REFERENCES reward_versions (reward_version),
    n              double precision NOT NULL DEFAULT 0 CHECK (n >= 0),
    sum_reward     double precision NOT NULL DEFAULT 0,
    sum_sq         double precision NOT NULL DEFAULT 0 CHECK (sum_sq >= 0),
    pulls          bigint NOT NULL DEFAULT 0 CHECK (pulls >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (profile_id, scope, arm_key, reward_version),
    CHECK (scope <> 'hour_of_week' OR arm_key ~ '^(1[0-6][0-9]|[1-9]?[0-9])$')
);

-- Operator switches on arms (SetArmEnabled); absent = enabled.
CREATE TABLE arm_settings (
    profile_id      text NOT NULL REFERENCES profiles (profile_id) ON DELETE CASCADE,
    scope           text NOT NULL
                    CHECK (scope IN ('content_type', 'voice_style', 'topic', 'hour_of_week',
                                     'reply_tier')),
    arm_key         text NOT NULL CHECK (char_length(arm_key) BETWEEN 1 AND 64),
    enabled         boolean NOT NULL,
    disabled_reason text NOT NULL DEFAULT '' CHECK (char_length(disabled_reason) <= 500),
    revision        bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (profile_id, scope, arm_key)
);

-- ---------------------------------------------------------------- infrastructure

-- Idempotency keys of mutations (notes/conventions.md §5); pruned after >= 24 h.
CREATE TABLE idempotency_keys (
    key          text PRIMARY KEY CHECK (char_length(key) BETWEEN 1 AND 255),
    method       text NOT NULL CHECK (char_length(method) BETWEEN 1 AND 200),
    request_hash bytea NOT NULL CHECK (octet_length(request_hash) = 32),
    response     bytea NOT NULL,
    status       integer NOT NULL DEFAULT 0 CHECK (status BETWEEN 0 AND 16),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- Versions of cached scopes that have no revision column of their own
-- ("profiles:list", "insights:<profile>"): bumped in the writer's transaction.
CREATE TABLE cache_versions (
    scope      text PRIMARY KEY CHECK (char_length(scope) BETWEEN 1 AND 200),
    version    bigint NOT NULL CHECK (version >= 1),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Background jobs, claimed with FOR UPDATE SKIP LOCKED by any replica.
CREATE TABLE background_jobs (
    name             text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,63}$'),
    interval_seconds integer NOT NULL CHECK (interval_seconds BETWEEN 1 AND 604800),
    next_run_at      timestamptz NOT NULL DEFAULT now(),
    lease_owner      text CHECK (char_length(lease_owner) BETWEEN 1 AND 200),
    lease_until      timestamptz,
    last_started_at  timestamptz,
    last_finished_at timestamptz,
    last_status      text CHECK (last_status IN ('ok', 'error')),
    last_error       text NOT NULL DEFAULT '' CHECK (char_length(last_error) <= 2000),
    CHECK ((lease_owner IS NULL) = (lease_until IS NULL))
);
