//! Platform keys, their counters and the audit trail in D1.

use serde::Deserialize;
use serde_json::{json, Value};
use worker::wasm_bindgen::JsValue;

use super::{
    insert_audit_statement, insert_key_statement, int, opt_text, store_error, text, D1Store, Guard, KeyRow, WorkspaceRow, DB_NOW_MS,
    KEY_COLUMNS, WORKSPACE_COLUMNS,
};
use crate::audit::AuditEvent;
use crate::keys::limits::FAILED_ATTEMPT_LIMIT;
use crate::keys::KeyRecord;
use crate::page::Cursor;
use crate::store::{
    AuthFinding, AuthProbe, KeyStore, LeakPlan, LeakRevocation, Precondition, RateHits, Revocation, StoreError, REVOKED_AS_LEAKED,
};

/// Rows carried by one multi-row statement's JSON parameter. A leak report's rows are bounded by
/// its 64 KiB body plus a few hundred bytes each, so a chunk stays far below D1's 2 MB value
/// limit, and a report of 1,000 keys costs about 20 queries of the invocation's 1,000.
const ROWS_PER_STATEMENT: usize = 200;

#[derive(Deserialize)]
struct HashRow {
    key_hash: String,
}

/// A list bound as one JSON text parameter, read back in SQL with `json_each`.
fn json_param(items: &[impl serde::Serialize]) -> Result<JsValue, StoreError> {
    serde_json::to_string(items).map(|json| text(&json)).map_err(|e| StoreError::Failed(format!("json parameter: {e}")))
}

/// An audit event as a JSON row for a multi-row insert, with the key it depends on.
fn audit_row(event: &AuditEvent, key_id: Option<&str>) -> Value {
    json!({"key_id": key_id, "id": event.id, "workspace_id": event.workspace_id, "at": event.at, "action": event.action,
           "actor_key_id": event.actor_key_id, "target": event.target, "ip": event.ip, "detail": event.detail})
}

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

/// The live-key condition on `api_keys k` at time `now` (a parameter or `DB_NOW_MS`).
fn live(now: &str) -> String {
    live_of("k", now)
}

/// The same condition for a statement on `api_keys` without an alias (an UPDATE's target).
fn live_unaliased(now: &str) -> String {
    live_of("api_keys", now)
}

fn live_of(table: &str, now: &str) -> String {
    format!("({table}.revoked_at IS NULL OR {table}.revoked_at > {now}) AND ({table}.expires_at IS NULL OR {table}.expires_at > {now})")
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
        now_ms: i64,
        audit: &AuditEvent,
    ) -> Result<Option<Revocation>, StoreError> {
        let workspace_id = precondition.workspace_id.as_str();
        // Stamped with the earlier of the Worker's clock and the commit's own: no later commit
        // (judged by the database clock) and no later request (judged by the Worker's) can see
        // the key live, whichever of the two clocks runs ahead.
        let revoke = self.statement(
            &format!(
                "UPDATE api_keys SET revoked_at = MIN(?3, {DB_NOW_MS}) WHERE id = ?1 AND workspace_id = ?2 \
                 AND (revoked_at IS NULL OR revoked_at > {DB_NOW_MS}) RETURNING id"
            ),
            &[text(id), text(workspace_id), int(now_ms)],
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
        now_ms: i64,
        audit: &AuditEvent,
        precondition: &Precondition,
    ) -> Result<Option<i64>, StoreError> {
        // Judged by the commit's own clock: a revoke that committed first always wins.
        let old_is_live_sql =
            format!("EXISTS (SELECT 1 FROM api_keys k WHERE k.id = ?16 AND k.workspace_id = ?17 AND {})", live(DB_NOW_MS));
        let old_is_live = Guard { sql: &old_is_live_sql, args: vec![text(old_id), text(&successor.workspace_id)] };
        let insert = insert_key_statement(self, successor, Some(old_is_live))?;
        let end_old = self.statement(
            &format!(
                "UPDATE api_keys SET revoked_at = MIN(COALESCE(revoked_at, MIN(?4, {DB_NOW_MS}) + ?2), MIN(?4, {DB_NOW_MS}) + ?2) \
                 WHERE id = ?1 AND EXISTS (SELECT 1 FROM api_keys WHERE id = ?3) RETURNING revoked_at"
            ),
            &[text(old_id), int(grace_ms), text(&successor.id), int(now_ms)],
        )?;
        let successor_exists = Guard { sql: "EXISTS (SELECT 1 FROM api_keys WHERE id = ?9)", args: vec![text(&successor.id)] };
        let audit = insert_audit_statement(self, audit, Some(successor_exists))?;
        let results = self.batch_under(precondition, vec![insert, end_old, audit]).await?;
        let ended = results.get(1).map(|r| r.results::<RevokedAtRow>()).transpose().map_err(store_error)?;
        Ok(ended.and_then(|rows| rows.into_iter().next()).and_then(|row| row.revoked_at))
    }

    async fn live_keys_by_hashes(
        &self,
        key_hashes: &[String],
        workspace_id: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        // One JSON parameter carries any number of hashes: D1 binds at most 100 per statement.
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.key_hash IN (SELECT value FROM json_each(?1)) AND {} \
             AND (?3 IS NULL OR k.workspace_id = ?3)",
            live("?2")
        );
        let args = [json_param(key_hashes)?, int(now_ms), opt_text(workspace_id)];
        let result = self.statement(&sql, &args)?.all().await.map_err(store_error)?;
        result.results::<KeyRow>().map_err(store_error)?.into_iter().map(KeyRow::into_record).collect()
    }

    async fn revoke_leaked(&self, plan: &LeakPlan<'_>) -> Result<LeakRevocation, StoreError> {
        let (now, scope) = (int(plan.now_ms), opt_text(plan.workspace_id));
        // Every write that depends on a revocation comes before the UPDATE in the batch and is
        // guarded by its key being live and in scope: inside the atomic batch that is exactly
        // "revoked by this batch", so a key revoked in between by anything else gets nothing.
        let still_live = format!(
            "EXISTS (SELECT 1 FROM api_keys k WHERE k.id = json_extract(r.value, '$.key_id') AND {} \
             AND (?3 IS NULL OR k.workspace_id = ?3))",
            live("?2")
        );
        let mut statements = Vec::new();
        let audit_rows: Vec<Value> =
            plan.revocations.iter().flat_map(|planned| planned.audit.iter().map(|event| audit_row(event, Some(&planned.key_id)))).collect();
        for rows in audit_rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO audit_events (id, workspace_id, at, action, actor_key_id, target, ip, detail) \
                 SELECT json_extract(r.value, '$.id'), json_extract(r.value, '$.workspace_id'), json_extract(r.value, '$.at'), \
                 json_extract(r.value, '$.action'), json_extract(r.value, '$.actor_key_id'), json_extract(r.value, '$.target'), \
                 json_extract(r.value, '$.ip'), json_extract(r.value, '$.detail') \
                 FROM json_each(?1) r WHERE {still_live} ORDER BY r.key"
            );
            statements.push(self.statement(&sql, &[json_param(rows)?, now.clone(), scope.clone()])?);
        }
        let outbox_rows: Vec<Value> = plan
            .revocations
            .iter()
            .map(|planned| {
                let event = &planned.notification;
                json!({"key_id": planned.key_id, "id": event.id, "workspace_id": event.workspace_id, "event_type": event.event_type,
                       "payload": event.body(), "created_at": event.created_at})
            })
            .collect();
        for rows in outbox_rows.chunks(ROWS_PER_STATEMENT) {
            // Queued like `enqueue`: only for a workspace with an endpoint.
            let sql = format!(
                "INSERT INTO outbox (id, workspace_id, event_type, payload, created_at, next_attempt_at) \
                 SELECT json_extract(r.value, '$.id'), json_extract(r.value, '$.workspace_id'), json_extract(r.value, '$.event_type'), \
                 json_extract(r.value, '$.payload'), json_extract(r.value, '$.created_at'), ?2 \
                 FROM json_each(?1) r WHERE {still_live} \
                 AND EXISTS (SELECT 1 FROM notification_endpoints n WHERE n.workspace_id = json_extract(r.value, '$.workspace_id')) \
                 ORDER BY r.key"
            );
            statements.push(self.statement(&sql, &[json_param(rows)?, now.clone(), scope.clone()])?);
        }
        let key_ids: Vec<&str> = plan.revocations.iter().map(|planned| planned.key_id.as_str()).collect();
        if let Some(summary) = &plan.summary {
            let sql = format!(
                "INSERT INTO audit_events (id, workspace_id, at, action, actor_key_id, target, ip, detail) \
                 SELECT ?4, ?5, ?6, ?7, ?8, ?9, ?10, json_set(?11, '$.revoked', json((SELECT json_group_array(k.id) FROM api_keys k \
                 WHERE k.id IN (SELECT value FROM json_each(?1)) AND {} AND (?3 IS NULL OR k.workspace_id = ?3))))",
                live("?2")
            );
            let args = [
                json_param(&key_ids)?,
                now.clone(),
                scope.clone(),
                text(&summary.id),
                opt_text(summary.workspace_id.as_deref()),
                int(summary.at),
                text(&summary.action),
                opt_text(summary.actor_key_id.as_deref()),
                opt_text(summary.target.as_deref()),
                opt_text(summary.ip.as_deref()),
                text(&summary.detail.to_string()),
            ];
            statements.push(self.statement(&sql, &args)?);
        }
        let revoke_at = statements.len();
        statements.push(self.statement(
            &format!(
                "UPDATE api_keys SET revoked_at = MIN(?2, {DB_NOW_MS}), revoked_reason = ?4 WHERE id IN (SELECT value FROM json_each(?1)) \
                 AND {} AND (?3 IS NULL OR workspace_id = ?3) RETURNING {KEY_COLUMNS}",
                live_unaliased("?2")
            ),
            &[json_param(&key_ids)?, now.clone(), scope.clone(), text(REVOKED_AS_LEAKED)],
        )?);
        statements.push(self.statement(
            "SELECT key_hash FROM api_keys WHERE key_hash IN (SELECT value FROM json_each(?1)) AND revoked_reason = ?2 \
             AND (?3 IS NULL OR workspace_id = ?3)",
            &[json_param(plan.key_hashes)?, text(REVOKED_AS_LEAKED), scope],
        )?);
        let results = self.db.batch(statements).await.map_err(store_error)?;
        let (Some(revoked), Some(leaked)) = (results.get(revoke_at), results.get(revoke_at + 1)) else {
            return Err(StoreError::Failed(format!("leak batch returned {} results", results.len())));
        };
        let revoked = revoked.results::<KeyRow>().map_err(store_error)?.into_iter().map(KeyRow::into_record).collect::<Result<_, _>>()?;
        let leaked_hashes = leaked.results::<HashRow>().map_err(store_error)?.into_iter().map(|row| row.key_hash).collect();
        Ok(LeakRevocation { revoked, leaked_hashes })
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
