-- Failed-attempt and per-key rate-limit counters: one row per IP / key, a fixed window each.
-- Both are written by single conditional upserts, so concurrent requests count exactly.

CREATE TABLE auth_failures (
  ip TEXT PRIMARY KEY,
  window_start INTEGER NOT NULL,
  failures INTEGER NOT NULL
);

CREATE TABLE rate_windows (
  key_id TEXT PRIMARY KEY,
  window_start INTEGER NOT NULL,
  hits INTEGER NOT NULL
);
