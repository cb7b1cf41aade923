-- Inbound webhook secrets (sealed like provider keys, kept in D1 so a new secret verifies at
-- once), receipts that make each webhook-id process once, the workspace's notification
-- endpoint, and the outbox its notifications are delivered from.

CREATE TABLE webhook_secrets (
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  version INTEGER NOT NULL,
  sealed TEXT NOT NULL,
  kek_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  -- NULL: the current secret; otherwise honoured until then (the rotation grace period).
  expires_at INTEGER,
  PRIMARY KEY (workspace_id, version)
);

-- status NULL: the first delivery is still being processed; claim tells the racers apart.
CREATE TABLE webhook_receipts (
  workspace_id TEXT NOT NULL,
  webhook_id TEXT NOT NULL,
  claim TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  status INTEGER,
  response TEXT,
  PRIMARY KEY (workspace_id, webhook_id)
);
CREATE INDEX webhook_receipts_oldest_first ON webhook_receipts (received_at);

CREATE TABLE notification_endpoints (
  workspace_id TEXT PRIMARY KEY REFERENCES workspaces (id),
  url TEXT NOT NULL,
  sealed TEXT NOT NULL,
  kek_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE outbox (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  lease_until INTEGER,
  -- Set by each claim; an attempt is recorded only by the claimant still holding the lease.
  lease_token TEXT,
  delivered_at INTEGER,
  gave_up_at INTEGER,
  last_status INTEGER
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND gave_up_at IS NULL;
