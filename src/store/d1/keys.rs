//! Platform keys, their counters and the audit trail in D1.

use serde::Deserialize;
use worker::wasm_bindgen::JsValue;

use super::{
    insert_audit_statement, insert_key_statement, int, opt_text, store_error, text, D1Store, Guard, KeyRow, WorkspaceRow, DB_NOW_MS,
    KEY_COLUMNS, WORKSPACE_COLUMNS,
};
use crate::audit::AuditEvent;
use crate::keys::limits::FAILED_ATTEMPT_LIMIT;
use crate::keys::KeyRecord;
use crate::page::Cursor;
use crate::store::{AuthFinding, AuthProbe, KeyStore, Precondition, RateHits, Revocation, StoreError};

/// D1 binds at most 100 parameters per statement.
const HASHES_PER_STATEMENT: usize = 90;

#[derive(Deserialize)]
struct FailuresRow {
    failures: Option<i64>,
}

#[derive(Deserialize)]
struct RevokedAtRow {
    revoked_at: Option<i64>,
}

#[derive(Deserialize)]
struct HitsRow {
    hits: i64,
    window_start: i64,
}

/// The live-key condition on `api_keys k` at time `?{now}`.
fn live(now: &str) -> String {
    format!("(k.revoked_at IS NULL OR k.revoked_at > {now}) AND (k.expires_at IS NULL OR k.expires_at > {now})")
}

impl KeyStore for D1Store {
    async fn authenticate(&self, probe: &AuthProbe<'_>) -> Result<AuthFinding, StoreError> {
        let ip = opt_text(probe.ip);
        let failures = self.statement(
            "SELECT (SELECT failures FROM auth_failures WHERE ip = ?1 AND window_start = ?2) AS failures",
            &[ip.clone(), int(probe.ip_window_start)],
        )?;
        // The key and its workspace ride in the same batch: one round trip, one row type each.
        let key = self.statement(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1"), &[text(probe.key_hash)])?;
        let workspace = self.statement(
            &format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE id = (SELECT workspace_id FROM api_keys WHERE key_hash = ?1)"),
            &[text(probe.key_hash)],
        )?;
        // Counts this use for a live key with a limit, keyed by the key, in the key's own fixed
        // window; an unknown key creates no row and a blocked IP spends nothing.
        let count_use = self.statement(
            &format!(
                "INSERT INTO rate_windows (key_id, window_start, hits) \
                 SELECT k.id, (CAST(?2 AS INTEGER) / (k.rate_window_seconds * 1000)) * (k.rate_window_seconds * 1000), 1 \
                 FROM api_keys k WHERE k.key_hash = ?1 AND k.rate_limit IS NOT NULL AND {} \
                 AND (?3 IS NULL OR k.workspace_id = ?3) \
                 AND NOT EXISTS (SELECT 1 FROM auth_failures f WHERE f.ip = ?4 AND f.window_start = ?5 AND f.failures >= ?6) \
                 ON CONFLICT (key_id) DO UPDATE SET \
                 hits = CASE WHEN rate_windows.window_start = excluded.window_start THEN rate_windows.hits + 1 ELSE 1 END, \
                 window_start = excluded.window_start \
                 RETURNING hits, window_start",
                live("?2")
            ),
            &[
                text(probe.key_hash),
                int(probe.now_ms),
                opt_text(probe.count_use_in),
                ip,
                int(probe.ip_window_start),
                int(FAILED_ATTEMPT_LIMIT as i64),
            ],
        )?;
        let results = self.db.batch(vec![failures, key, workspace, count_use]).await.map_err(store_error)?;
        let [failures, key, workspace, hits] = results.as_slice() else {
            return Err(StoreError::Failed(format!("authenticate batch returned {} results", results.len())));
        };
        let ip_failures = failures.results::<FailuresRow>().map_err(store_error)?.first().and_then(|r| r.failures).unwrap_or(0);
        let key = key.results::<KeyRow>().map_err(store_error)?.into_iter().next();
        let workspace = workspace.results::<WorkspaceRow>().map_err(store_error)?.into_iter().next();
        let found = match (key, workspace) {
            (Some(key), Some(workspace)) => Some((key.into_record()?, workspace.into_workspace()?)),
            _ => None,
        };
        let rate_hits = hits
            .results::<HitsRow>()
            .map_err(store_error)?
            .first()
            .map(|row| RateHits { hits: row.hits as u32, window_start: row.window_start });
        Ok(AuthFinding { found, ip_failures: ip_failures as u32, rate_hits })
    }

    async fn record_auth_failure(&self, ip: &str, window_start: i64) -> Result<u32, StoreError> {
        let row: Option<FailuresRow> = self
            .statement(
                "INSERT INTO auth_failures (ip, window_start, failures) VALUES (?1, ?2, 1) \
                 ON CONFLICT (ip) DO UPDATE SET \
                 failures = CASE WHEN auth_failures.window_start = excluded.window_start THEN auth_failures.failures + 1 ELSE 1 END, \
                 window_start = excluded.window_start \
                 RETURNING failures",
                &[text(ip), int(window_start)],
            )?
            .first(None)
            .await
            .map_err(store_error)?;
        Ok(row.and_then(|r| r.failures).unwrap_or(1) as u32)
    }

    async fn insert_key(&self, key: &KeyRecord, audit: &AuditEvent, precondition: &Precondition) -> Result<(), StoreError> {
        let statements = vec![insert_key_statement(self, key, None)?, insert_audit_statement(self, audit, None)?];
        self.batch_under(precondition, statements).await?;
        Ok(())
    }

    async fn key(&self, workspace_id: &str, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1 AND workspace_id = ?2");
        let row: Option<KeyRow> = self.statement(&sql, &[text(id), text(workspace_id)])?.first(None).await.map_err(store_error)?;
        row.map(KeyRow::into_record).transpose()
    }

    async fn keys_after(
        &self,
        workspace_id: &str,
        include_revoked: bool,
        now_ms: i64,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE workspace_id = ?1 \
             AND (?2 = 1 OR revoked_at IS NULL OR revoked_at > ?3) \
             AND (?4 IS NULL OR (created_at, id) < (?4, ?5)) \
             ORDER BY created_at DESC, id DESC LIMIT ?6"
        );
        let args = [
            text(workspace_id),
            int(include_revoked as i64),
            int(now_ms),
            after.map_or(JsValue::NULL, |c| int(c.created_at)),
            after.map_or(JsValue::NULL, |c| text(&c.id)),
            int(limit as i64),
        ];
        let result = self.statement(&sql, &args)?.all().await.map_err(store_error)?;
        let rows: Vec<KeyRow> = result.results().map_err(store_error)?;
        rows.into_iter().map(KeyRow::into_record).collect()
    }

    async fn revoke_key(
        &self,
        precondition: &Precondition,
        id: &str,
        _now_ms: i64,
        audit: &AuditEvent,
    ) -> Result<Option<Revocation>, StoreError> {
        let workspace_id = precondition.workspace_id.as_str();
        // Stamped with the commit's own time, so that no later commit can see the key live.
        let revoke = self.statement(
            &format!(
                "UPDATE api_keys SET revoked_at = {DB_NOW_MS} WHERE id = ?1 AND workspace_id = ?2                  AND (revoked_at IS NULL OR revoked_at > {DB_NOW_MS}) RETURNING id"
            ),
            &[text(id), text(workspace_id)],
        )?;
        // Audited only by the call that revoked it: changes() is the UPDATE's row count.
        let audit = insert_audit_statement(self, audit, Some(Guard { sql: "changes() > 0", args: vec![] }))?;
        let read = self.statement(
            &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1 AND workspace_id = ?2"),
            &[text(id), text(workspace_id)],
        )?;
        let results = self.batch_under(precondition, vec![revoke, audit, read]).await?;
        let revoked_now = results
            .first()
            .map(|r| r.results::<serde_json::Value>())
            .transpose()
            .map_err(store_error)?
            .is_some_and(|rows| !rows.is_empty());
        let row = results.get(2).map(|r| r.results::<KeyRow>()).transpose().map_err(store_error)?;
        let key = row.and_then(|rows| rows.into_iter().next()).map(KeyRow::into_record).transpose()?;
        Ok(key.map(|key| Revocation { key, revoked_now }))
    }

    async fn reroll_key(
        &self,
        old_id: &str,
        successor: &KeyRecord,
        grace_ms: i64,
        _now_ms: i64,
        audit: &AuditEvent,
        precondition: &Precondition,
    ) -> Result<Option<i64>, StoreError> {
        // Judged by the commit's own clock: a revoke that committed first always wins.
        let old_is_live_sql = format!(
            "EXISTS (SELECT 1 FROM api_keys WHERE id = ?16 AND workspace_id = ?17 \
             AND (revoked_at IS NULL OR revoked_at > {DB_NOW_MS}) AND (expires_at IS NULL OR expires_at > {DB_NOW_MS}))"
        );
        let old_is_live = Guard { sql: &old_is_live_sql, args: vec![text(old_id), text(&successor.workspace_id)] };
        let insert = insert_key_statement(self, successor, Some(old_is_live))?;
        let end_old = self.statement(
            &format!(
                "UPDATE api_keys SET revoked_at = MIN(COALESCE(revoked_at, {DB_NOW_MS} + ?2), {DB_NOW_MS} + ?2) \
                 WHERE id = ?1 AND EXISTS (SELECT 1 FROM api_keys WHERE id = ?3) RETURNING revoked_at"
            ),
            &[text(old_id), int(grace_ms), text(&successor.id)],
        )?;
        let successor_exists = Guard { sql: "EXISTS (SELECT 1 FROM api_keys WHERE id = ?9)", args: vec![text(&successor.id)] };
        let audit = insert_audit_statement(self, audit, Some(successor_exists))?;
        let results = self.batch_under(precondition, vec![insert, end_old, audit]).await?;
        let ended = results.get(1).map(|r| r.results::<RevokedAtRow>()).transpose().map_err(store_error)?;
        Ok(ended.and_then(|rows| rows.into_iter().next()).and_then(|row| row.revoked_at))
    }

    async fn revoke_by_hashes(&self, key_hashes: &[String], workspace_id: Option<&str>, now_ms: i64) -> Result<Vec<KeyRecord>, StoreError> {
        let mut statements = Vec::new();
        for chunk in key_hashes.chunks(HASHES_PER_STATEMENT) {
            let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", i + 3)).collect();
            let sql = format!(
                "UPDATE api_keys SET revoked_at = ?1 WHERE key_hash IN ({}) \
                 AND (revoked_at IS NULL OR revoked_at > ?1) AND (expires_at IS NULL OR expires_at > ?1) \
                 AND (?2 IS NULL OR workspace_id = ?2) RETURNING {KEY_COLUMNS}",
                placeholders.join(", ")
            );
            let mut args = vec![int(now_ms), opt_text(workspace_id)];
            args.extend(chunk.iter().map(|hash| text(hash)));
            statements.push(self.statement(&sql, &args)?);
        }
        let mut revoked = Vec::new();
        for result in self.db.batch(statements).await.map_err(store_error)? {
            for row in result.results::<KeyRow>().map_err(store_error)? {
                revoked.push(row.into_record()?);
            }
        }
        Ok(revoked)
    }

    async fn touch_last_used(&self, key_id: &str, now_ms: i64) -> Result<(), StoreError> {
        self.statement(
            "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?2 - 60000)",
            &[text(key_id), int(now_ms)],
        )?
        .run()
        .await
        .map_err(store_error)?;
        Ok(())
    }
}
