-- Issue 14: a reroll with grace_starts "first_use" keeps the old key working until its
-- successor is first used, then for this long (ms). Set on the successor; NULL once that use
-- has started the old key's grace, and for every other key.
ALTER TABLE api_keys ADD COLUMN old_key_grace_ms INTEGER;
