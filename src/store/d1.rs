//! The D1 adapter: SQL for the storage ports, over the Worker's `DB` binding.

use serde::Deserialize;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

use super::{KeyStore, StoreError, WorkspaceStore};
use crate::audit::AuditEvent;
use crate::keys::{Capabilities, KeyRecord, RateLimit};
use crate::page::Cursor;
use crate::workspaces::{Workspace, WorkspacePatch};

pub struct D1Store {
    db: D1Database,
}

impl D1Store {
    pub fn new(db: D1Database) -> Self {
        D1Store { db }
    }

    fn statement(&self, sql: &str, args: &[JsValue]) -> Result<D1PreparedStatement, StoreError> {
        self.db.prepare(sql).bind(args).map_err(store_error)
    }
}

fn store_error(error: worker::Error) -> StoreError {
    StoreError(error.to_string())
}

fn text(value: &str) -> JsValue {
    JsValue::from_str(value)
}

/// D1 has no BigInt: integers travel as JS numbers, exact below 2^53 (Unix ms fits).
fn int(value: i64) -> JsValue {
    JsValue::from_f64(value as f64)
}

fn opt_text(value: Option<&str>) -> JsValue {
    value.map_or(JsValue::NULL, text)
}

fn opt_int(value: Option<i64>) -> JsValue {
    value.map_or(JsValue::NULL, int)
}

fn json_text(value: &serde_json::Value) -> JsValue {
    text(&value.to_string())
}

fn capabilities_from(column: &str) -> Result<Capabilities, StoreError> {
    let items: Vec<String> = serde_json::from_str(column).map_err(|e| StoreError(format!("capabilities column: {e}")))?;
    Capabilities::parse(&items).map_err(StoreError)
}

fn capabilities_text(capabilities: &Capabilities) -> JsValue {
    json_text(&serde_json::json!(capabilities.to_strings()))
}

#[derive(Deserialize)]
struct WorkspaceRow {
    id: String,
    name: String,
    read_only: i64,
    default_capabilities: String,
    created_at: i64,
}

impl WorkspaceRow {
    fn into_workspace(self) -> Result<Workspace, StoreError> {
        Ok(Workspace {
            id: self.id,
            name: self.name,
            read_only: self.read_only != 0,
            default_capabilities: capabilities_from(&self.default_capabilities)?,
            created_at: self.created_at,
        })
    }
}

const WORKSPACE_COLUMNS: &str = "id, name, read_only, default_capabilities, created_at";

#[derive(Deserialize)]
struct KeyRow {
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
    fn into_record(self) -> Result<KeyRecord, StoreError> {
        let subject = match self.subject {
            Some(text) => Some(serde_json::from_str(&text).map_err(|e| StoreError(format!("subject column: {e}")))?),
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

/// A key row joined with its workspace (`ws_` columns), read in one round trip.
#[derive(Deserialize)]
struct KeyWithWorkspaceRow {
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
    ws_name: String,
    ws_read_only: i64,
    ws_default_capabilities: String,
    ws_created_at: i64,
}

impl KeyWithWorkspaceRow {
    fn split(self) -> (KeyRow, WorkspaceRow) {
        let workspace = WorkspaceRow {
            id: self.workspace_id.clone(),
            name: self.ws_name,
            read_only: self.ws_read_only,
            default_capabilities: self.ws_default_capabilities,
            created_at: self.ws_created_at,
        };
        let key = KeyRow {
            id: self.id,
            workspace_id: self.workspace_id,
            name: self.name,
            key_hash: self.key_hash,
            prefix: self.prefix,
            last4: self.last4,
            capabilities: self.capabilities,
            subject: self.subject,
            rate_limit: self.rate_limit,
            rate_window_seconds: self.rate_window_seconds,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
            rerolled_from: self.rerolled_from,
        };
        (key, workspace)
    }
}

pub(crate) fn insert_key_statement(store: &D1Store, key: &KeyRecord) -> Result<D1PreparedStatement, StoreError> {
    store.statement(
        "INSERT INTO api_keys (id, workspace_id, name, key_hash, prefix, last4, capabilities, subject, \
         rate_limit, rate_window_seconds, created_at, expires_at, revoked_at, last_used_at, rerolled_from) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        &[
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
        ],
    )
}

pub(crate) fn insert_audit_statement(store: &D1Store, event: &AuditEvent) -> Result<D1PreparedStatement, StoreError> {
    store.statement(
        "INSERT INTO audit_events (id, workspace_id, at, action, actor_key_id, target, ip, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &[
            text(&event.id),
            opt_text(event.workspace_id.as_deref()),
            int(event.at),
            text(event.action),
            opt_text(event.actor_key_id.as_deref()),
            opt_text(event.target.as_deref()),
            opt_text(event.ip.as_deref()),
            json_text(&event.detail),
        ],
    )
}

impl WorkspaceStore for D1Store {
    async fn insert_workspace(&self, workspace: &Workspace, owner_key: &KeyRecord, audit: &AuditEvent) -> Result<(), StoreError> {
        let insert_workspace = self.statement(
            "INSERT INTO workspaces (id, name, read_only, default_capabilities, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            &[
                text(&workspace.id),
                text(&workspace.name),
                int(workspace.read_only as i64),
                capabilities_text(&workspace.default_capabilities),
                int(workspace.created_at),
            ],
        )?;
        let statements = vec![insert_workspace, insert_key_statement(self, owner_key)?, insert_audit_statement(self, audit)?];
        self.db.batch(statements).await.map_err(store_error)?;
        Ok(())
    }

    async fn workspace(&self, id: &str) -> Result<Option<Workspace>, StoreError> {
        let sql = format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE id = ?1");
        let row: Option<WorkspaceRow> = self.statement(&sql, &[text(id)])?.first(None).await.map_err(store_error)?;
        row.map(WorkspaceRow::into_workspace).transpose()
    }

    async fn workspaces_after(&self, after: Option<&Cursor>, limit: usize) -> Result<Vec<Workspace>, StoreError> {
        let statement = match after {
            None => self.statement(
                &format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces ORDER BY created_at DESC, id DESC LIMIT ?1"),
                &[int(limit as i64)],
            )?,
            Some(cursor) => self.statement(
                &format!(
                    "SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE (created_at, id) < (?1, ?2) \
                     ORDER BY created_at DESC, id DESC LIMIT ?3"
                ),
                &[int(cursor.created_at), text(&cursor.id), int(limit as i64)],
            )?,
        };
        let result = statement.all().await.map_err(store_error)?;
        let rows: Vec<WorkspaceRow> = result.results().map_err(store_error)?;
        rows.into_iter().map(WorkspaceRow::into_workspace).collect()
    }

    async fn update_workspace(&self, id: &str, patch: &WorkspacePatch) -> Result<Option<Workspace>, StoreError> {
        // COALESCE keeps a column whose field the patch did not set, all in one statement.
        let sql = format!(
            "UPDATE workspaces SET name = COALESCE(?2, name), read_only = COALESCE(?3, read_only), \
             default_capabilities = COALESCE(?4, default_capabilities) WHERE id = ?1 RETURNING {WORKSPACE_COLUMNS}"
        );
        let args = [
            text(id),
            opt_text(patch.name.as_ref().map(|n| n.as_str())),
            opt_int(patch.read_only.map(i64::from)),
            patch.default_capabilities.as_ref().map_or(JsValue::NULL, capabilities_text),
        ];
        let row: Option<WorkspaceRow> = self.statement(&sql, &args)?.first(None).await.map_err(store_error)?;
        row.map(WorkspaceRow::into_workspace).transpose()
    }
}

impl KeyStore for D1Store {
    async fn key_by_hash(&self, key_hash: &str) -> Result<Option<(KeyRecord, Workspace)>, StoreError> {
        let sql = "SELECT k.*, w.name AS ws_name, w.read_only AS ws_read_only, \
                   w.default_capabilities AS ws_default_capabilities, w.created_at AS ws_created_at \
                   FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id WHERE k.key_hash = ?1";
        let row: Option<KeyWithWorkspaceRow> = self.statement(sql, &[text(key_hash)])?.first(None).await.map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        let (key, workspace) = row.split();
        Ok(Some((key.into_record()?, workspace.into_workspace()?)))
    }
}
