//! The audit trail in D1.

use serde::Deserialize;
use serde_json::Value;
use worker::wasm_bindgen::JsValue;

use super::{insert_audit_statement, int, opt_text, store_error, D1Store};
use crate::audit::AuditEvent;
use crate::store::{AuditStore, StoreError};

#[derive(Deserialize)]
struct AuditRow {
    seq: i64,
    id: String,
    workspace_id: Option<String>,
    at: i64,
    action: String,
    actor_key_id: Option<String>,
    target: Option<String>,
    ip: Option<String>,
    detail: String,
}

impl AuditStore for D1Store {
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let statements = events.iter().map(|event| insert_audit_statement(self, event, None)).collect::<Result<Vec<_>, _>>()?;
        self.db.batch(statements).await.map_err(store_error)?;
        Ok(())
    }

    async fn audit_before(
        &self,
        workspace_id: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, AuditEvent)>, StoreError> {
        // `IS` matches NULL to NULL: no workspace reads the operator-level entries.
        let result = self
            .statement(
                "SELECT seq, id, workspace_id, at, action, actor_key_id, target, ip, detail FROM audit_events \
                 WHERE workspace_id IS ?1 AND (?2 IS NULL OR seq < ?2) ORDER BY seq DESC LIMIT ?3",
                &[opt_text(workspace_id), before.map_or(JsValue::NULL, int), int(limit as i64)],
            )?
            .all()
            .await
            .map_err(store_error)?;
        let rows: Vec<AuditRow> = result.results().map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let event = AuditEvent {
                    id: row.id,
                    workspace_id: row.workspace_id,
                    at: row.at,
                    action: row.action,
                    actor_key_id: row.actor_key_id,
                    target: row.target,
                    ip: row.ip,
                    detail: serde_json::from_str(&row.detail).unwrap_or(Value::Null),
                };
                (row.seq, event)
            })
            .collect())
    }
}
