-- Issue 16: IP allowlists, credits with refill, and exact usage counts per key and hour.

-- A JSON array of normalised addresses and CIDR ranges; NULL: any address.
ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT;
-- NULL credits_remaining: the key is unmetered. With the key authority, the object that serves
-- the key holds the live balance and writes it here in batches; without it, D1 is the balance.
ALTER TABLE api_keys ADD COLUMN credits_remaining INTEGER;
ALTER TABLE api_keys ADD COLUMN credits_refill_amount INTEGER;
ALTER TABLE api_keys ADD COLUMN credits_refill_interval TEXT CHECK (credits_refill_interval IN ('day', 'month'));
-- The start of the interval the balance was last refilled for.
ALTER TABLE api_keys ADD COLUMN credits_refilled_at INTEGER;

-- Authentications and verifies of each key per UTC hour, by outcome, one row per counter: the
-- key authority's object that counted them (absolute counts, written in batches), or
-- 'catalogue' without the authority (per request). A key's usage is the sum over its counters,
-- so a key that moves to another object mid-hour (a new layout or epoch, a change of
-- KEY_AUTHORITY) keeps every use counted before the move.
CREATE TABLE key_usage (
  key_id TEXT NOT NULL,
  workspace_id TEXT NOT NULL,
  hour_start INTEGER NOT NULL,
  counted_by TEXT NOT NULL,
  valid INTEGER NOT NULL DEFAULT 0,
  rate_limited INTEGER NOT NULL DEFAULT 0,
  credits_exhausted INTEGER NOT NULL DEFAULT 0,
  insufficient_capabilities INTEGER NOT NULL DEFAULT 0,
  ip_not_allowed INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (key_id, hour_start, counted_by)
);
CREATE INDEX key_usage_by_workspace ON key_usage (workspace_id, hour_start);
