//! Platform keys, their counters and the leak report's batch.

use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::exec::{int, opt_text, text, Executor, Outcome, Statement, Value};
use super::expiry::expiry_notice_statements;
use super::webhooks::queue_statement;
use super::{insert_audit_statement, insert_key_statement, key_records, live_key, outcome, Guard, KeyRow, SqlStore, WorkspaceRow};
use super::{DB_NOW_MS, KEY_COLUMNS, WORKSPACE_COLUMNS};
use crate::audit::AuditEvent;
use crate::keys::authority::KeyUse;
use crate::keys::authority::{changing, Change};
use crate::keys::authority::{CreditChange, UsageRow};
use crate::keys::credits::{Calendar, Credits};
use crate::keys::expiry::ExpiryNotice;
use crate::keys::limits::{FAILED_ATTEMPT_LIMIT, FAILED_ATTEMPT_WINDOW_MS};
use crate::keys::usage::Counts;
use crate::keys::{KeyRecord, LeakAction, LeakPolicy, Workspace};
use crate::outbox::OutboxEvent;
use crate::page::Cursor;
use crate::store::{
    AuthFinding, AuthProbe, KeyStore, LeakPlan, LeakRevocation, PlannedRevocation, Precondition, RateHits, Reroll, Revocation, StoreError,
    REVOKED_AS_LEAKED,
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
fn json_param(items: &[impl serde::Serialize]) -> Result<Value, StoreError> {
    serde_json::to_string(items).map(Value::Text).map_err(|e| StoreError::Failed(format!("json parameter: {e}")))
}

/// An audit event as a JSON row for a multi-row insert, with the key it depends on.
fn audit_row(event: &AuditEvent, key_id: Option<&str>) -> Json {
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

/// The key with `:key_hash` and its workspace, as two statements of one batch: one round trip,
/// one row type each.
fn key_and_workspace_statements(binds: &[(&'static str, Value)]) -> Result<[Statement; 2], StoreError> {
    let key = Statement::new(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = :key_hash"), binds)?;
    let workspace = Statement::new(
        &format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE id = (SELECT workspace_id FROM api_keys WHERE key_hash = :key_hash)"),
        binds,
    )?;
    Ok([key, workspace])
}

fn key_and_workspace(key: &Outcome, workspace: &Outcome) -> Result<Option<(KeyRecord, Workspace)>, StoreError> {
    match (key.first::<KeyRow>()?, workspace.first::<WorkspaceRow>()?) {
        (Some(key), Some(workspace)) => Ok(Some((key.into_record()?, workspace.into_workspace()?))),
        _ => Ok(None),
    }
}

impl<E: Executor> SqlStore<E> {
    async fn count_auth_failure(&self, ip: &str, window_start: i64) -> Result<u32, StoreError> {
        let outcome = self
            .query(Statement::new(
                "INSERT INTO auth_failures (ip, window_start, failures) VALUES (:ip, :window_start, 1) \
                 ON CONFLICT (ip) DO UPDATE SET \
                 failures = CASE WHEN auth_failures.window_start = excluded.window_start THEN auth_failures.failures + 1 ELSE 1 END, \
                 window_start = excluded.window_start \
                 RETURNING failures",
                &[("ip", text(ip)), ("window_start", int(window_start))],
            )?)
            .await?;
        Ok(outcome.first::<FailuresRow>()?.and_then(|r| r.failures).unwrap_or(1) as u32)
    }
}

impl<E: Executor> KeyStore for SqlStore<E> {
    async fn authenticate(&self, probe: &AuthProbe<'_>) -> Result<AuthFinding, StoreError> {
        if let Some(authority) = self.authenticating_authority() {
            return authority.authenticate(probe).await;
        }
        let binds = [
            ("key_hash", text(probe.key_hash)),
            ("ip", opt_text(probe.ip)),
            ("ip_window_start", int(probe.ip_window_start)),
            ("now", int(probe.now_ms)),
            ("count_use_in", opt_text(probe.count_use_in)),
            ("failure_limit", int(FAILED_ATTEMPT_LIMIT as i64)),
        ];
        let failures = Statement::new(
            "SELECT (SELECT failures FROM auth_failures WHERE ip = :ip AND window_start = :ip_window_start) AS failures",
            &binds,
        )?;
        let [key, workspace] = key_and_workspace_statements(&binds)?;
        // Counts this use for a live key with a limit, keyed by the key, in the key's own fixed
        // window; an unknown key creates no row and a blocked IP spends nothing.
        let count_use = Statement::new(
            &format!(
                "INSERT INTO rate_windows (key_id, window_start, hits) \
                 SELECT k.id, (CAST(:now AS INTEGER) / (k.rate_window_seconds * 1000)) * (k.rate_window_seconds * 1000), 1 \
                 FROM api_keys k WHERE k.key_hash = :key_hash AND k.rate_limit IS NOT NULL AND {} \
                 AND (:count_use_in IS NULL OR k.workspace_id = :count_use_in) \
                 AND NOT EXISTS (SELECT 1 FROM auth_failures f WHERE f.ip = :ip AND f.window_start = :ip_window_start \
                 AND f.failures >= :failure_limit) \
                 ON CONFLICT (key_id) DO UPDATE SET \
                 hits = CASE WHEN rate_windows.window_start = excluded.window_start THEN rate_windows.hits + 1 ELSE 1 END, \
                 window_start = excluded.window_start \
                 RETURNING hits, window_start",
                live_key("k", ":now")
            ),
            &binds,
        )?;
        let outcomes = self.batch(vec![failures, key, workspace, count_use]).await?;
        let [failures, key, workspace, hits] = outcomes.as_slice() else {
            return Err(StoreError::Failed(format!("authenticate batch returned {} results", outcomes.len())));
        };
        let ip_failures = failures.first::<FailuresRow>()?.and_then(|r| r.failures).unwrap_or(0) as u32;
        let mut found = key_and_workspace(key, workspace)?;
        let rate_hits = hits.first::<HitsRow>()?.map(|row| RateHits { hits: row.hits as u32, window_start: row.window_start });
        let mut outcome = None;
        if let Some((key, _)) = found.as_mut() {
            // Counted as the rate limit counts: a live key, of the verifier's workspace, from an
            // address that is not blocked.
            let counted = key.is_live(probe.now_ms)
                && probe.count_use_in.is_none_or(|workspace_id| workspace_id == key.workspace_id)
                && ip_failures < FAILED_ATTEMPT_LIMIT;
            if counted {
                let rate_allowed = crate::keys::usage::rate_allowed(key.rate_limit, rate_hits);
                outcome = Some(self.settle_in_catalogue(key, probe.ask, rate_allowed, probe.calendar, probe.now_ms).await?);
            }
        }
        Ok(AuthFinding { found, ip_failures, rate_hits, use_recorded: false, outcome })
    }

    async fn record_auth_failure(&self, ip: &str, window_start: i64) -> Result<u32, StoreError> {
        let failures = self.count_auth_failure(ip, window_start).await?;
        if let (true, Some(authority)) = (failures == FAILED_ATTEMPT_LIMIT, self.authenticating_authority()) {
            authority.block_ip(ip, window_start + FAILED_ATTEMPT_WINDOW_MS).await;
        }
        Ok(failures)
    }
    async fn insert_key(&self, key: &KeyRecord, audit: &AuditEvent, precondition: &Precondition) -> Result<(), StoreError> {
        let mut statements = vec![insert_key_statement(key, None)?, insert_audit_statement(audit, None)?];
        // A key that expires within the warning period is warned as it is made.
        statements.extend(expiry_notice_statements(ExpiryNotice::Expiring, key.created_at, 1, Some(&key.id))?);
        self.batch_under(precondition, statements).await?;
        Ok(())
    }

    async fn key(&self, workspace_id: &str, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = :id AND workspace_id = :workspace_id");
        let outcome = self.query(Statement::new(&sql, &[("id", text(id)), ("workspace_id", text(workspace_id))])?).await?;
        outcome.first::<KeyRow>()?.map(KeyRow::into_record).transpose()
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
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE workspace_id = :workspace_id \
             AND (:include_revoked = 1 OR revoked_at IS NULL OR revoked_at > :now) \
             AND (:after_created_at IS NULL OR (created_at, id) < (:after_created_at, :after_id)) \
             ORDER BY created_at DESC, id DESC LIMIT :limit"
        );
        let binds = [
            ("workspace_id", text(workspace_id)),
            ("include_revoked", int(include_revoked as i64)),
            ("now", int(now_ms)),
            ("after_created_at", after.map_or(Value::Null, |c| int(c.position))),
            ("after_id", after.map_or(Value::Null, |c| text(&c.id))),
            ("limit", int(limit as i64)),
        ];
        key_records(&self.query(Statement::new(&sql, &binds)?).await?)
    }

    async fn revoke_key(
        &self,
        precondition: &Precondition,
        id: &str,
        now_ms: i64,
        audit: &AuditEvent,
        notification: &OutboxEvent,
    ) -> Result<Option<Revocation>, StoreError> {
        let write = async {
            let binds = [("id", text(id)), ("workspace_id", text(&precondition.workspace_id)), ("now", int(now_ms))];
            // Stamped with the earlier of the Worker's clock and the commit's own: no later commit
            // (judged by the database clock) and no later request (judged by the Worker's) can see
            // the key live, whichever of the two clocks runs ahead.
            let revoke = Statement::new(
                &format!(
                    "UPDATE api_keys SET revoked_at = MIN(:now, {DB_NOW_MS}) WHERE id = :id AND workspace_id = :workspace_id \
                 AND (revoked_at IS NULL OR revoked_at > {DB_NOW_MS}) RETURNING id"
                ),
                &binds,
            )?;
            // Audited only by the call that revoked it: changes() is the UPDATE's row count.
            let audit_id = audit.id.clone();
            let audit = insert_audit_statement(audit, Some(Guard::after_a_change()))?;
            // Told only by the call that revoked it (its audit entry exists), stamped as revoked.
            let notify = queue_statement(
                notification,
                now_ms,
                Some("EXISTS (SELECT 1 FROM audit_events WHERE id = :audit_id)"),
                Some(("revoked_at", "SELECT revoked_at FROM api_keys WHERE id = :key_id")),
                &[("audit_id", text(&audit_id)), ("key_id", text(id))],
            )?;
            let read =
                Statement::new(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = :id AND workspace_id = :workspace_id"), &binds)?;
            let outcomes = self.batch_under(precondition, vec![revoke, audit, notify, read]).await?;
            let revoked_now = !outcome(&outcomes, 0)?.rows.is_empty();
            let queued = (outcome(&outcomes, 2)?.changes > 0).then(|| notification.id.clone());
            let key = outcome(&outcomes, 3)?.first::<KeyRow>()?.map(KeyRow::into_record).transpose()?;
            Ok(key.map(|key| Revocation { key, revoked_now, queued }))
        };
        changing::<_, StoreError>(self.authority(), &Change::keys([(precondition.workspace_id.as_str(), id)]), write).await
    }

    async fn reroll_key(
        &self,
        old_id: &str,
        successor: &KeyRecord,
        grace_ms: i64,
        now_ms: i64,
        audit: &AuditEvent,
        notification: &OutboxEvent,
        precondition: &Precondition,
    ) -> Result<Option<Reroll>, StoreError> {
        let write = async {
            // Judged by the commit's own clock: a revoke that committed first always wins.
            // A key is rerolled once: a second reroll (racing, or later) finds the successor.
            let old_is_live_sql = format!(
                "EXISTS (SELECT 1 FROM api_keys k WHERE k.id = :old_id AND k.workspace_id = :old_workspace_id AND {}) \
                 AND NOT EXISTS (SELECT 1 FROM api_keys s WHERE s.rerolled_from = :old_id)",
                live_key("k", DB_NOW_MS)
            );
            let old_is_live =
                Guard { sql: &old_is_live_sql, binds: vec![("old_id", text(old_id)), ("old_workspace_id", text(&successor.workspace_id))] };
            let insert = insert_key_statement(successor, Some(old_is_live))?;
            let end_old = Statement::new(
            &format!(
                "UPDATE api_keys SET revoked_at = MIN(COALESCE(revoked_at, MIN(:now, {DB_NOW_MS}) + :grace), MIN(:now, {DB_NOW_MS}) + :grace) \
                 WHERE id = :old_id AND EXISTS (SELECT 1 FROM api_keys WHERE id = :successor_id) RETURNING revoked_at"
            ),
            &[("old_id", text(old_id)), ("grace", int(grace_ms)), ("successor_id", text(&successor.id)), ("now", int(now_ms))],
        )?;
            let successor_exists = Guard {
                sql: "EXISTS (SELECT 1 FROM api_keys WHERE id = :successor_id)",
                binds: vec![("successor_id", text(&successor.id))],
            };
            let audit = insert_audit_statement(audit, Some(successor_exists))?;
            let notify = queue_statement(
                notification,
                now_ms,
                Some("EXISTS (SELECT 1 FROM api_keys WHERE id = :successor_id)"),
                Some(("old_key_stops_at", "SELECT revoked_at FROM api_keys WHERE id = :old_id")),
                &[("successor_id", text(&successor.id)), ("old_id", text(old_id))],
            )?;
            let outcomes = self.batch_under(precondition, vec![insert, end_old, audit, notify]).await?;
            let queued = (outcome(&outcomes, 3)?.changes > 0).then(|| notification.id.clone());
            let ended = outcome(&outcomes, 1)?.first::<RevokedAtRow>()?.and_then(|row| row.revoked_at);
            Ok(ended.map(|old_key_stops_at| Reroll { old_key_stops_at, queued }))
        };
        changing::<_, StoreError>(self.authority(), &Change::keys([(successor.workspace_id.as_str(), old_id)]), write).await
    }

    async fn live_keys_by_hashes(
        &self,
        key_hashes: &[String],
        workspace_id: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<(KeyRecord, LeakPolicy)>, StoreError> {
        // One JSON parameter carries any number of hashes: D1 binds at most 100 per statement.
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.key_hash IN (SELECT value FROM json_each(:hashes)) AND {} \
             AND (:scope IS NULL OR k.workspace_id = :scope)",
            live_key("k", ":now")
        );
        let binds = [("hashes", json_param(key_hashes)?), ("now", int(now_ms)), ("scope", opt_text(workspace_id))];
        let policies = Statement::new(
            "SELECT id, leak_action, leak_grace_seconds FROM workspaces \
             WHERE id IN (SELECT workspace_id FROM api_keys WHERE key_hash IN (SELECT value FROM json_each(:hashes)))",
            &binds,
        )?;
        let outcomes = self.batch(vec![Statement::new(&sql, &binds)?, policies]).await?;
        #[derive(Deserialize)]
        struct PolicyRow {
            id: String,
            leak_action: String,
            leak_grace_seconds: i64,
        }
        let policies: Vec<PolicyRow> = outcome(&outcomes, 1)?.rows()?;
        key_records(outcome(&outcomes, 0)?)?
            .into_iter()
            .map(|key| {
                let row = policies.iter().find(|row| row.id == key.workspace_id);
                let action = row.and_then(|row| LeakAction::parse(&row.leak_action)).unwrap_or_default();
                let grace_seconds = row.map_or(0, |row| row.leak_grace_seconds.clamp(0, u32::MAX as i64) as u32);
                Ok((key, LeakPolicy { action, grace_seconds }))
            })
            .collect()
    }

    async fn revoke_leaked(&self, plan: &LeakPlan<'_>) -> Result<LeakRevocation, StoreError> {
        let (now, scope) = (("now", int(plan.now_ms)), ("scope", opt_text(plan.workspace_id)));
        // Every write that depends on a revocation comes before the UPDATE in the batch and is
        // guarded by its key being live and in scope: inside the atomic batch that is exactly
        // "revoked by this batch", so a key revoked in between by anything else gets nothing.
        let still_live = format!(
            "EXISTS (SELECT 1 FROM api_keys k WHERE k.id = json_extract(r.value, '$.key_id') AND {} \
             AND (:scope IS NULL OR k.workspace_id = :scope))",
            live_key("k", ":now")
        );
        let mut statements = Vec::new();
        let audit_rows: Vec<Json> =
            plan.revocations.iter().flat_map(|planned| planned.audit.iter().map(|event| audit_row(event, Some(&planned.key_id)))).collect();
        for rows in audit_rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO audit_events (id, workspace_id, at, action, actor_key_id, target, ip, detail) \
                 SELECT json_extract(r.value, '$.id'), json_extract(r.value, '$.workspace_id'), json_extract(r.value, '$.at'), \
                 json_extract(r.value, '$.action'), json_extract(r.value, '$.actor_key_id'), json_extract(r.value, '$.target'), \
                 json_extract(r.value, '$.ip'), json_extract(r.value, '$.detail') \
                 FROM json_each(:rows) r WHERE {still_live} ORDER BY r.key"
            );
            statements.push(Statement::new(&sql, &[("rows", json_param(rows)?), now.clone(), scope.clone()])?);
        }
        let outbox_rows: Vec<Json> = plan
            .revocations
            .iter()
            .flat_map(|planned| {
                planned.notifications.iter().map(|event| {
                    json!({"key_id": planned.key_id, "id": event.id, "workspace_id": event.workspace_id, "event_type": event.event_type,
                           "payload": event.body(), "created_at": event.created_at})
                })
            })
            .collect();
        for rows in outbox_rows.chunks(ROWS_PER_STATEMENT) {
            // Queued like every notification: only for a workspace with an endpoint.
            let sql = format!(
                "INSERT INTO outbox (id, workspace_id, event_type, payload, created_at, next_attempt_at) \
                 SELECT json_extract(r.value, '$.id'), json_extract(r.value, '$.workspace_id'), json_extract(r.value, '$.event_type'), \
                 json_extract(r.value, '$.payload'), json_extract(r.value, '$.created_at'), :now \
                 FROM json_each(:rows) r WHERE {still_live} \
                 AND EXISTS (SELECT 1 FROM notification_endpoints n WHERE n.workspace_id = json_extract(r.value, '$.workspace_id')) \
                 ORDER BY r.key"
            );
            statements.push(Statement::new(&sql, &[("rows", json_param(rows)?), now.clone(), scope.clone()])?);
        }
        // The keys whose policy ends them (at once, or after a grace), with that grace.
        let ending: Vec<&PlannedRevocation> = plan.revocations.iter().filter(|planned| planned.grace_ms.is_some()).collect();
        let key_ids: Vec<&str> = ending.iter().map(|planned| planned.key_id.as_str()).collect();
        let stops: Vec<Json> = ending.iter().map(|planned| json!({"key_id": planned.key_id, "grace_ms": planned.grace_ms})).collect();
        if let Some(summary) = &plan.summary {
            let sql = format!(
                "INSERT INTO audit_events (id, workspace_id, at, action, actor_key_id, target, ip, detail) \
                 SELECT :id, :workspace_id, :at, :action, :actor_key_id, :target, :ip, \
                 json_set(:detail, '$.revoked', json((SELECT json_group_array(k.id) FROM api_keys k \
                 WHERE k.id IN (SELECT value FROM json_each(:key_ids)) AND {} AND (:scope IS NULL OR k.workspace_id = :scope))))",
                live_key("k", ":now")
            );
            let binds = [
                ("key_ids", json_param(&key_ids)?),
                now.clone(),
                scope.clone(),
                ("id", text(&summary.id)),
                ("workspace_id", opt_text(summary.workspace_id.as_deref())),
                ("at", int(summary.at)),
                ("action", text(&summary.action)),
                ("actor_key_id", opt_text(summary.actor_key_id.as_deref())),
                ("target", opt_text(summary.target.as_deref())),
                ("ip", opt_text(summary.ip.as_deref())),
                ("detail", text(&summary.detail.to_string())),
            ];
            statements.push(Statement::new(&sql, &binds)?);
        }
        let revoke_at = statements.len();
        statements.push(Statement::new(
            &format!(
                "UPDATE api_keys SET revoked_at = MIN(COALESCE(revoked_at, MIN(:now, {DB_NOW_MS}) + s.grace_ms), MIN(:now, {DB_NOW_MS}) + s.grace_ms), \
                 revoked_reason = :reason \
                 FROM (SELECT json_extract(value, '$.key_id') AS stop_key_id, json_extract(value, '$.grace_ms') AS grace_ms \
                 FROM json_each(:stops)) AS s \
                 WHERE api_keys.id = s.stop_key_id AND {} AND (:scope IS NULL OR api_keys.workspace_id = :scope) RETURNING {KEY_COLUMNS}",
                live_key("api_keys", ":now")
            ),
            &[("stops", json_param(&stops)?), now.clone(), scope.clone(), ("reason", text(REVOKED_AS_LEAKED))],
        )?);
        statements.push(Statement::new(
            "SELECT key_hash FROM api_keys WHERE key_hash IN (SELECT value FROM json_each(:hashes)) AND revoked_reason = :reason \
             AND (:scope IS NULL OR workspace_id = :scope)",
            &[("hashes", json_param(plan.key_hashes)?), ("reason", text(REVOKED_AS_LEAKED)), scope],
        )?);
        let changes = Change::keys(plan.revocations.iter().map(|planned| (planned.workspace_id.as_str(), planned.key_id.as_str())));
        let outcomes = changing::<_, StoreError>(self.authority(), &changes, self.batch(statements)).await?;
        let revoked = key_records(outcome(&outcomes, revoke_at)?)?;
        let leaked_hashes = outcome(&outcomes, revoke_at + 1)?.rows::<HashRow>()?.into_iter().map(|row| row.key_hash).collect();
        Ok(LeakRevocation { revoked, leaked_hashes })
    }

    async fn key_with_workspace(&self, key_hash: &str) -> Result<Option<(KeyRecord, Workspace)>, StoreError> {
        let outcomes = self.batch(key_and_workspace_statements(&[("key_hash", text(key_hash))])?.into()).await?;
        let [key, workspace] = outcomes.as_slice() else {
            return Err(StoreError::Failed(format!("key read returned {} results", outcomes.len())));
        };
        key_and_workspace(key, workspace)
    }

    async fn location_of_key(&self, key_hash: &str) -> Result<Option<(String, String)>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            workspace_id: String,
            id: String,
        }
        let sql = "SELECT workspace_id, id FROM api_keys WHERE key_hash = :key_hash";
        let outcome = self.query(Statement::new(sql, &[("key_hash", text(key_hash))])?).await?;
        Ok(outcome.first::<Row>()?.map(|row| (row.workspace_id, row.id)))
    }

    async fn start_old_key_grace(&self, successor: &KeyRecord, now_ms: i64) -> Result<(), StoreError> {
        let Some(old_id) = successor.rerolled_from.as_deref() else { return Ok(()) };
        let binds = [("successor_id", text(&successor.id)), ("old_id", text(old_id)), ("now", int(now_ms))];
        let end_old = Statement::new(
            "UPDATE api_keys SET revoked_at = MIN(COALESCE(revoked_at, :now + g.grace), :now + g.grace) \
             FROM (SELECT old_key_grace_ms AS grace FROM api_keys WHERE id = :successor_id AND old_key_grace_ms IS NOT NULL) AS g \
             WHERE api_keys.id = :old_id",
            &binds,
        )?;
        let started = Statement::new("UPDATE api_keys SET old_key_grace_ms = NULL WHERE id = :successor_id", &binds)?;
        // Both keys change what authentication reads: the old key's end, the successor's mark.
        let changes = Change::keys([(successor.workspace_id.as_str(), old_id), (successor.workspace_id.as_str(), successor.id.as_str())]);
        changing::<_, StoreError>(self.authority(), &changes, self.batch(vec![end_old, started])).await?;
        Ok(())
    }

    async fn successor_of(&self, key_id: &str) -> Result<Option<String>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
        }
        let sql = "SELECT id FROM api_keys WHERE rerolled_from = :key_id ORDER BY created_at, id LIMIT 1";
        Ok(self.query(Statement::new(sql, &[("key_id", text(key_id))])?).await?.first::<Row>()?.map(|row| row.id))
    }

    async fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = :id");
        let outcome = self.query(Statement::new(&sql, &[("id", text(id))])?).await?;
        outcome.first::<KeyRow>()?.map(KeyRow::into_record).transpose()
    }

    async fn record_uses(&self, uses: &[KeyUse]) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        // One statement for all of them; a use never moves `last_used_at` back.
        let sql = "UPDATE api_keys SET last_used_at = u.at FROM \
                   (SELECT json_extract(value, '$.key_id') AS key_id, json_extract(value, '$.at') AS at FROM json_each(:uses)) AS u \
                   WHERE api_keys.id = u.key_id AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < u.at)";
        self.query(Statement::new(sql, &[("uses", json_param(uses)?)])?).await?;
        Ok(())
    }

    async fn record_usage(&self, counted_by: &str, rows: &[UsageRow]) -> Result<(), StoreError> {
        self.write_usage(counted_by, rows).await
    }

    async fn record_credits(&self, balances: &[(String, Credits)]) -> Result<(), StoreError> {
        self.write_credits(balances).await
    }

    async fn change_credits(
        &self,
        key: &KeyRecord,
        change: CreditChange,
        calendar: Calendar,
        now_ms: i64,
        precondition: &Precondition,
        audit: Option<&AuditEvent>,
    ) -> Result<Credits, StoreError> {
        match self.authenticating_authority() {
            Some(authority) => {
                // The object cannot join D1's batch: the caller is checked at the last moment
                // before the change instead (a request whose body came after a revoke changes
                // nothing).
                if !precondition.is_unconditional() {
                    self.batch_under(precondition, Vec::new()).await?;
                }
                authority
                    .credits(key, Some(change), now_ms, audit)
                    .await?
                    .ok_or_else(|| StoreError::Failed("the authority changed no credits".into()))
            }
            None => self.change_credits_in_catalogue(key, change, calendar, now_ms, precondition, audit).await,
        }
    }

    async fn live_credits(&self, key: &KeyRecord, calendar: Calendar, now_ms: i64) -> Result<Option<Credits>, StoreError> {
        match (self.authenticating_authority(), key.credits) {
            (_, None) => Ok(None),
            (Some(authority), Some(_)) => authority.credits(key, None, now_ms, None).await,
            (None, Some(credits)) => Ok(Some(credits.current(calendar, now_ms))),
        }
    }

    async fn settle(&self, keys: &[KeyRecord], calendar: Calendar, now_ms: i64) -> Result<Vec<(String, Credits)>, StoreError> {
        let copies = keys.iter().filter_map(|key| Some((key.id.clone(), key.credits?.current(calendar, now_ms))));
        let Some(authority) = self.authenticating_authority() else { return Ok(copies.collect()) };
        let Some(workspace_id) = keys.first().map(|key| key.workspace_id.as_str()) else { return Ok(Vec::new()) };
        let ids: Vec<String> = keys.iter().map(|key| key.id.clone()).collect();
        let live = authority.settle(workspace_id, &ids, now_ms).await?;
        // A metered key its object does not serve has a current copy in D1.
        Ok(copies.map(|(id, copy)| live.iter().find(|(live_id, _)| *live_id == id).cloned().unwrap_or((id, copy))).collect())
    }

    async fn usage(
        &self,
        workspace_id: &str,
        key_ids: &[String],
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<(String, i64, Counts)>, StoreError> {
        self.read_usage(workspace_id, key_ids, from_ms, to_ms, bucket_ms).await
    }

    async fn prune_usage(&self, before_ms: i64, limit: usize) -> Result<usize, StoreError> {
        self.delete_usage_before(before_ms, limit).await
    }

    async fn touch_last_used(&self, key_id: &str, now_ms: i64) -> Result<(), StoreError> {
        self.query(Statement::new(
            "UPDATE api_keys SET last_used_at = :now WHERE id = :id AND (last_used_at IS NULL OR last_used_at <= :now - 60000)",
            &[("id", text(key_id)), ("now", int(now_ms))],
        )?)
        .await?;
        Ok(())
    }
}
