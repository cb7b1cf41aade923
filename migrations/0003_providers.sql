-- Bring-your-own provider keys: configs point at encrypted blobs in KV (never the key itself),
-- agent routes, and blobs retired by a replacement or removal, deleted by the cron later.

CREATE TABLE provider_configs (
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  provider TEXT NOT NULL,
  api_host TEXT NOT NULL,
  model TEXT,
  fallback_model TEXT,
  config TEXT NOT NULL DEFAULT '{}',
  key_hint TEXT NOT NULL,
  status TEXT NOT NULL,
  validated_at INTEGER,
  -- When the scheduled handler last took the key for re-validation, conclusive or not.
  checked_at INTEGER,
  version INTEGER NOT NULL,
  blob_name TEXT NOT NULL UNIQUE,
  kek_id TEXT NOT NULL,
  is_default INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, provider)
);

-- provider NULL: the agent is routed to metered billing.
CREATE TABLE agent_routes (
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  agent_id TEXT NOT NULL,
  provider TEXT,
  model TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, agent_id)
);

CREATE TABLE retired_blobs (
  blob_name TEXT PRIMARY KEY,
  retired_at INTEGER NOT NULL
);
CREATE INDEX retired_blobs_oldest_first ON retired_blobs (retired_at);
