-- keywarden schema v1: workspaces, platform keys and the audit trail.
-- Times are Unix milliseconds (INTEGER); JSON columns hold TEXT.

CREATE TABLE workspaces (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  read_only INTEGER NOT NULL DEFAULT 0,
  default_capabilities TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL
);
CREATE INDEX workspaces_newest_first ON workspaces (created_at DESC, id DESC);

-- Only the SHA-256 of a key is stored; key_hash is what every authentication looks up.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  name TEXT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  last4 TEXT NOT NULL,
  capabilities TEXT NOT NULL,
  subject TEXT,
  rate_limit INTEGER,
  rate_window_seconds INTEGER,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER,
  last_used_at INTEGER,
  rerolled_from TEXT
);
CREATE INDEX api_keys_newest_first ON api_keys (workspace_id, created_at DESC, id DESC);

-- workspace_id NULL marks operator-level entries (auth.ip_blocked, leak reports).
-- seq orders entries exactly, even within one millisecond.
CREATE TABLE audit_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  workspace_id TEXT,
  at INTEGER NOT NULL,
  action TEXT NOT NULL,
  actor_key_id TEXT,
  target TEXT,
  ip TEXT,
  detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_by_workspace ON audit_events (workspace_id, seq DESC);
