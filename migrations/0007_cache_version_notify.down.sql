DROP TRIGGER IF EXISTS profiles_gone_notify ON profiles;
DROP FUNCTION IF EXISTS herald_profile_gone_notify();
DROP TRIGGER IF EXISTS cache_versions_notify ON cache_versions;
DROP FUNCTION IF EXISTS herald_cache_version_notify();
