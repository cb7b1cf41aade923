-- Issue 14: a workspace's longest key lifetime, in seconds; NULL: no limit.
ALTER TABLE workspaces ADD COLUMN max_key_lifetime_seconds INTEGER;
