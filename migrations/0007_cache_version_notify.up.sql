-- 0007_cache_version_notify: every change of a cache version is announced on
-- channel herald_cache_versions, so that heraldd can keep the versions in
-- memory instead of reading one from PostgreSQL before every cache hit
-- (server/vercache.h).
--
-- NOTIFY is transactional: listeners hear it only when the writing
-- transaction commits, in commit order, and never for a rollback.
--
-- Payloads (scope last: it is the only part that could hold a space):
--   "<version> <updated_at as epoch microseconds> <scope>"
--       a scope's new version; the microseconds are computed exactly as the
--       readers compute them (server/learning_store.c), because cache keys
--       embed both;
--   "gone <scope>"
--       the scope no longer names anything: a deleted profile's learning
--       scope. No RPC deletes profiles; this covers an operator's DELETE.

CREATE FUNCTION herald_cache_version_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('herald_cache_versions',
                      NEW.version::text || ' ' ||
                      ((extract(epoch FROM NEW.updated_at) * 1000000)::int8)::text || ' ' ||
                      NEW.scope);
    RETURN NULL;
END
$$;

CREATE TRIGGER cache_versions_notify
    AFTER INSERT OR UPDATE ON cache_versions
    FOR EACH ROW EXECUTE FUNCTION herald_cache_version_notify();
-- also where triggers are off by default (session_replication_role = replica:
-- a logical replication apply, a restore): a bump nobody hears would leave
-- every replica's map stale until its next reconnect
ALTER TABLE cache_versions ENABLE ALWAYS TRIGGER cache_versions_notify;

CREATE FUNCTION herald_profile_gone_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('herald_cache_versions', 'gone learning:' || OLD.profile_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER profiles_gone_notify
    AFTER DELETE ON profiles
    FOR EACH ROW EXECUTE FUNCTION herald_profile_gone_notify();
