-- Issue 15: what validation learned beyond the status, and metered fallback by consent.

-- The provider's own reason for a key stored `unverified` (or refused on re-validation), and
-- the funds it reported ({remaining, currency, checked_at} as JSON), both NULL when unknown.
ALTER TABLE provider_configs ADD COLUMN provider_reason TEXT;
ALTER TABLE provider_configs ADD COLUMN funds TEXT;

-- The model ids a config's key was offered at its last validation that read a list, for the
-- console's picker. Apart from provider_configs so that resolve never reads them.
CREATE TABLE provider_models (
  workspace_id TEXT NOT NULL,
  provider TEXT NOT NULL,
  version INTEGER NOT NULL,
  models TEXT NOT NULL,
  truncated INTEGER NOT NULL DEFAULT 0,
  listed_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, provider)
);

ALTER TABLE workspaces ADD COLUMN metered_fallback TEXT NOT NULL DEFAULT 'allow' CHECK (metered_fallback IN ('allow', 'deny'));
-- NULL: the agent follows its workspace.
ALTER TABLE agent_routes ADD COLUMN metered_fallback TEXT CHECK (metered_fallback IN ('allow', 'deny'));

-- When each agent (or '' for a resolve without one) last had `provider_key.fallback_used`
-- queued for a provider: at most one an hour. notice_id tells a batch whether it was its own.
CREATE TABLE fallback_notices (
  workspace_id TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  provider TEXT NOT NULL,
  notified_at INTEGER NOT NULL,
  notice_id TEXT NOT NULL,
  PRIMARY KEY (workspace_id, agent_id, provider)
);
