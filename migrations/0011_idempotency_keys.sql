-- Issue 14: responses remembered for an Idempotency-Key, per caller and route, for 24 hours.
-- `status` and `sealed` (the response body sealed by the vault: it may hold a new key's
-- plaintext) are NULL while the first request is in flight.
CREATE TABLE idempotency_keys (
  scope TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  status INTEGER,
  sealed TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (scope, idem_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
