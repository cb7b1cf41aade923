-- Issue 14: api_key.expiring (7 days before expires_at) and api_key.expired are each queued
-- once per key; these mark that they were. The index serves the scheduled handler's scan.
ALTER TABLE api_keys ADD COLUMN expiring_noticed_at INTEGER;
ALTER TABLE api_keys ADD COLUMN expired_noticed_at INTEGER;
CREATE INDEX api_keys_by_expiry ON api_keys (expires_at) WHERE expires_at IS NOT NULL;
