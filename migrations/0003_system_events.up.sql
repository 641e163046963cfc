-- 0003_system_events: an append-only log of operator actions that change
-- what Herald does (PauseProfile / ResumeProfile, the kill switch). Each row
-- is written in the same transaction as the change it records; heraldd also
-- logs one line per event.
CREATE TABLE system_events (
    event_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,63}$'),
    profile_id text REFERENCES profiles (profile_id) ON DELETE CASCADE,
    reason     text NOT NULL DEFAULT '' CHECK (char_length(reason) <= 500),
    -- the mutation's request_id (idempotency key), '' when none was sent
    request_id text NOT NULL DEFAULT '' CHECK (char_length(request_id) <= 255),
    -- who asked: the peer address (the token's subject once tokens exist)
    actor      text NOT NULL DEFAULT '' CHECK (char_length(actor) <= 200),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX system_events_profile_idx ON system_events (profile_id, created_at DESC);
CREATE INDEX system_events_created_idx ON system_events (created_at);
