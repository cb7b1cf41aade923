-- Issue 14: what a workspace does with a key reported leaked: revoke it at once (the default),
-- let it expire after leak_grace_seconds (at most 86,400), or only notify.
ALTER TABLE workspaces ADD COLUMN leak_action TEXT NOT NULL DEFAULT 'revoke' CHECK (leak_action IN ('revoke', 'expire', 'notify'));
ALTER TABLE workspaces ADD COLUMN leak_grace_seconds INTEGER NOT NULL DEFAULT 0;
