//! The audit trail.

use serde::Deserialize;
use serde_json::Value as Json;

use super::exec::{int, opt_text, Executor, Statement, Value};
use super::{insert_audit_statement, SqlStore};
use crate::audit::AuditEvent;
use crate::store::{AuditStore, StoreError};

/// An `audit_events` row as read, with its position in the trail.
#[derive(Deserialize)]
pub(crate) struct AuditRow {
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

impl<E: Executor> SqlStore<E> {
    /// Writes entries that may already be there (the key authority's, retried until written):
    /// an entry whose id is in the trail is left as it is.
    pub(crate) async fn append_audit_once(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let absent = || super::Guard { sql: "NOT EXISTS (SELECT 1 FROM audit_events WHERE id = :id)", binds: Vec::new() };
        let statements = events.iter().map(|event| insert_audit_statement(event, Some(absent()))).collect::<Result<Vec<_>, _>>()?;
        self.batch(statements).await?;
        Ok(())
    }
}

impl<E: Executor> AuditStore for SqlStore<E> {
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let statements = events.iter().map(|event| insert_audit_statement(event, None)).collect::<Result<Vec<_>, _>>()?;
        self.batch(statements).await?;
        Ok(())
    }

    async fn audit_before(
        &self,
        workspace_id: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, AuditEvent)>, StoreError> {
        // `IS` matches NULL to NULL: no workspace reads the operator-level entries.
        let outcome = self
            .query(Statement::new(
                "SELECT seq, id, workspace_id, at, action, actor_key_id, target, ip, detail FROM audit_events \
                 WHERE workspace_id IS :workspace_id AND (:before IS NULL OR seq < :before) ORDER BY seq DESC LIMIT :limit",
                &[("workspace_id", opt_text(workspace_id)), ("before", before.map_or(Value::Null, int)), ("limit", int(limit as i64))],
            )?)
            .await?;
        Ok(outcome.rows::<AuditRow>()?.into_iter().map(AuditRow::into_entry).collect())
    }
}

impl AuditRow {
    pub(crate) fn into_entry(self) -> (i64, AuditEvent) {
        let event = AuditEvent {
            id: self.id,
            workspace_id: self.workspace_id,
            at: self.at,
            action: self.action,
            actor_key_id: self.actor_key_id,
            target: self.target,
            ip: self.ip,
            detail: serde_json::from_str(&self.detail).unwrap_or(Json::Null),
        };
        (self.seq, event)
    }
}
