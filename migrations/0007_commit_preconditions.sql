-- A write made for a platform key commits only if that key is still live, and (for writes a
-- read-only workspace refuses) the workspace still writable, at the moment it commits.
--
-- A batch starts with `INSERT INTO commit_preconditions ...`; the trigger aborts the statement
-- (and D1 then rolls back the whole batch) when the precondition no longer holds, and
-- otherwise stores nothing. Authentication happens when a request arrives, so without this a
-- request whose body is still in flight would outlive the revocation of its key.
--
-- Liveness is judged by the database's own clock, the one order every commit shares: a key
-- revoked by a commit is dead for every commit after it, whatever clock the Worker had.
--
-- The live-key rule is written once in Rust (`KeyRecord::is_live`) and once in SQL
-- (`store::sql::live_key`, used by every statement); this trigger necessarily restates it,
-- since a migration cannot call either. Change all three together.

CREATE VIEW commit_preconditions AS
  SELECT NULL AS workspace_id, NULL AS key_id, NULL AS writable WHERE 0;

CREATE TRIGGER commit_preconditions_hold INSTEAD OF INSERT ON commit_preconditions
BEGIN
  SELECT RAISE(ABORT, 'keywarden_precondition:caller_not_live')
  WHERE NEW.key_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM api_keys k
    WHERE k.id = NEW.key_id AND k.workspace_id = NEW.workspace_id
      AND (k.revoked_at IS NULL OR k.revoked_at > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
      AND (k.expires_at IS NULL OR k.expires_at > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
  );
  SELECT RAISE(ABORT, 'keywarden_precondition:workspace_read_only')
  WHERE NEW.writable = 1 AND NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = NEW.workspace_id AND w.read_only = 0);
END;
