//! The D1 adapter: SQL for the storage ports, over the Worker's `DB` binding.

use serde::Deserialize;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result};

mod audit;
mod housekeeping;
mod keys;
mod providers;
mod webhooks;
mod workspaces;

use super::{Precondition, Refusal, StoreError};
use crate::audit::AuditEvent;
use crate::keys::{Capabilities, KeyRecord, RateLimit};
use crate::workspaces::Workspace;

pub struct D1Store {
    db: D1Database,
}

impl D1Store {
    pub fn new(db: D1Database) -> Self {
        D1Store { db }
    }

    pub(crate) fn statement(&self, sql: &str, args: &[JsValue]) -> Result<D1PreparedStatement, StoreError> {
        self.db.prepare(sql).bind(args).map_err(store_error)
    }

    /// Runs `statements` as one batch that commits only if `precondition` still holds when it
    /// does: the batch opens with an insert into `commit_preconditions`, whose trigger aborts
    /// it otherwise (migration 0007), and D1 rolls the whole batch back. The results are those
    /// of `statements`, in order.
    pub(crate) async fn batch_under(
        &self,
        precondition: &Precondition,
        mut statements: Vec<D1PreparedStatement>,
    ) -> Result<Vec<D1Result>, StoreError> {
        if precondition.is_unconditional() {
            return self.db.batch(statements).await.map_err(store_error);
        }
        let check = self.statement(
            "INSERT INTO commit_preconditions (workspace_id, key_id, writable) VALUES (?1, ?2, ?3)",
            &[text(&precondition.workspace_id), opt_text(precondition.key_id.as_deref()), int(precondition.writable as i64)],
        )?;
        statements.insert(0, check);
        let mut results = self.db.batch(statements).await.map_err(refused_or_failed)?;
        results.remove(0);
        Ok(results)
    }
}

/// The database's clock in Unix ms, for conditions that must be judged at commit time: every
/// commit is ordered by it, so a revoke that committed first is seen by every later commit.
pub(crate) const DB_NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

/// Tells a precondition the trigger refused from any other failure, by its message.
fn refused_or_failed(error: worker::Error) -> StoreError {
    let text = error.to_string();
    if text.contains("keywarden_precondition:caller_not_live") {
        StoreError::Refused(Refusal::CallerNotLive)
    } else if text.contains("keywarden_precondition:workspace_read_only") {
        StoreError::Refused(Refusal::WorkspaceReadOnly)
    } else {
        StoreError::Failed(text)
    }
}

pub(crate) fn store_error(error: worker::Error) -> StoreError {
    StoreError::Failed(error.to_string())
}

pub(crate) fn text(value: &str) -> JsValue {
    JsValue::from_str(value)
}

/// D1 has no BigInt: integers travel as JS numbers, exact below 2^53 (Unix ms fits).
pub(crate) fn int(value: i64) -> JsValue {
    JsValue::from_f64(value as f64)
}

pub(crate) fn opt_text(value: Option<&str>) -> JsValue {
    value.map_or(JsValue::NULL, text)
}

pub(crate) fn opt_int(value: Option<i64>) -> JsValue {
    value.map_or(JsValue::NULL, int)
}

pub(crate) fn json_text(value: &serde_json::Value) -> JsValue {
    text(&value.to_string())
}

pub(crate) fn capabilities_from(column: &str) -> Result<Capabilities, StoreError> {
    let items: Vec<String> = serde_json::from_str(column).map_err(|e| StoreError::Failed(format!("capabilities column: {e}")))?;
    Capabilities::parse(&items).map_err(StoreError::Failed)
}

pub(crate) fn capabilities_text(capabilities: &Capabilities) -> JsValue {
    json_text(&serde_json::json!(capabilities.to_strings()))
}

#[derive(Deserialize)]
pub(crate) struct WorkspaceRow {
    id: String,
    name: String,
    read_only: i64,
    default_capabilities: String,
    created_at: i64,
}

impl WorkspaceRow {
    pub(crate) fn into_workspace(self) -> Result<Workspace, StoreError> {
        Ok(Workspace {
            id: self.id,
            name: self.name,
            read_only: self.read_only != 0,
            default_capabilities: capabilities_from(&self.default_capabilities)?,
            created_at: self.created_at,
        })
    }
}

pub(crate) const WORKSPACE_COLUMNS: &str = "id, name, read_only, default_capabilities, created_at";

#[derive(Deserialize)]
pub(crate) struct KeyRow {
    id: String,
    workspace_id: String,
    name: String,
    key_hash: String,
    prefix: String,
    last4: String,
    capabilities: String,
    subject: Option<String>,
    rate_limit: Option<i64>,
    rate_window_seconds: Option<i64>,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
    rerolled_from: Option<String>,
}

impl KeyRow {
    pub(crate) fn into_record(self) -> Result<KeyRecord, StoreError> {
        let subject = match self.subject {
            Some(text) => Some(serde_json::from_str(&text).map_err(|e| StoreError::Failed(format!("subject column: {e}")))?),
            None => None,
        };
        let rate_limit = match (self.rate_limit, self.rate_window_seconds) {
            (Some(limit), Some(window)) => Some(RateLimit { limit: limit as u32, window_seconds: window as u32 }),
            _ => None,
        };
        Ok(KeyRecord {
            id: self.id,
            workspace_id: self.workspace_id,
            name: self.name,
            key_hash: self.key_hash,
            prefix: self.prefix,
            last4: self.last4,
            capabilities: capabilities_from(&self.capabilities)?,
            subject,
            rate_limit,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
            rerolled_from: self.rerolled_from,
        })
    }
}

pub(crate) const KEY_COLUMNS: &str = "id, workspace_id, name, key_hash, prefix, last4, capabilities, subject, \
    rate_limit, rate_window_seconds, created_at, expires_at, revoked_at, last_used_at, rerolled_from";

/// A condition under which an insert happens, in the same statement: `sql` may use `?16` and
/// up for keys (`?9` and up for audit entries), bound to `args`.
pub(crate) struct Guard<'a> {
    pub sql: &'a str,
    pub args: Vec<JsValue>,
}

fn guarded_insert(
    store: &D1Store,
    table: &str,
    columns: &str,
    mut args: Vec<JsValue>,
    guard: Option<Guard>,
) -> Result<D1PreparedStatement, StoreError> {
    let placeholders: Vec<String> = (1..=args.len()).map(|i| format!("?{i}")).collect();
    let mut sql = format!("INSERT INTO {table} ({columns}) SELECT {}", placeholders.join(", "));
    if let Some(guard) = guard {
        sql.push_str(" WHERE ");
        sql.push_str(guard.sql);
        args.extend(guard.args);
    }
    store.statement(&sql, &args)
}

pub(crate) fn insert_key_statement(store: &D1Store, key: &KeyRecord, guard: Option<Guard>) -> Result<D1PreparedStatement, StoreError> {
    let args = vec![
        text(&key.id),
        text(&key.workspace_id),
        text(&key.name),
        text(&key.key_hash),
        text(&key.prefix),
        text(&key.last4),
        capabilities_text(&key.capabilities),
        key.subject.as_ref().map_or(JsValue::NULL, json_text),
        opt_int(key.rate_limit.map(|r| r.limit as i64)),
        opt_int(key.rate_limit.map(|r| r.window_seconds as i64)),
        int(key.created_at),
        opt_int(key.expires_at),
        opt_int(key.revoked_at),
        opt_int(key.last_used_at),
        opt_text(key.rerolled_from.as_deref()),
    ];
    guarded_insert(store, "api_keys", KEY_COLUMNS, args, guard)
}

pub(crate) fn insert_audit_statement(store: &D1Store, event: &AuditEvent, guard: Option<Guard>) -> Result<D1PreparedStatement, StoreError> {
    let args = vec![
        text(&event.id),
        opt_text(event.workspace_id.as_deref()),
        int(event.at),
        text(&event.action),
        opt_text(event.actor_key_id.as_deref()),
        opt_text(event.target.as_deref()),
        opt_text(event.ip.as_deref()),
        json_text(&event.detail),
    ];
    guarded_insert(store, "audit_events", "id, workspace_id, at, action, actor_key_id, target, ip, detail", args, guard)
}
