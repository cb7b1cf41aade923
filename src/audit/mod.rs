//! The audit trail: who did what to which key or provider, never holding a secret.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::crypto::random::random_base62;
use crate::deps::Deps;
use crate::error::ApiError;
use crate::page::{Cursor, Page, PageRequest};
use crate::time::rfc3339;
use store::AuditStore;

pub mod store;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    /// `None` for operator-level events (`auth.ip_blocked`, leak reports).
    pub workspace_id: Option<String>,
    pub at: i64,
    pub action: String,
    pub actor_key_id: Option<String>,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub detail: Value,
}

impl AuditEvent {
    pub fn new(workspace_id: Option<&str>, action: &str, at: i64) -> Self {
        AuditEvent {
            id: format!("evt_{}", random_base62(20)),
            workspace_id: workspace_id.map(str::to_string),
            at,
            action: action.to_string(),
            actor_key_id: None,
            target: None,
            ip: None,
            detail: Value::Object(Default::default()),
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn actor(mut self, actor_key_id: Option<&str>, ip: Option<&str>) -> Self {
        self.actor_key_id = actor_key_id.map(str::to_string);
        self.ip = ip.map(str::to_string);
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

impl AuditEvent {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "at": rfc3339(self.at),
            "action": self.action,
            "actor_key_id": self.actor_key_id,
            "target": self.target,
            "ip": self.ip,
            "detail": self.detail,
        })
    }
}

/// A page of the trail, newest first: a workspace's entries, or the operator-level ones for
/// `None`. Audit cursors carry the entry's position in `created_at`: the trail is ordered by it.
pub async fn list<S: AuditStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    workspace_id: Option<&str>,
    page: &PageRequest,
) -> Result<Page<AuditEvent>, ApiError> {
    let before = page.after.as_ref().map(|c| c.position);
    let rows = deps.store.audit_before(workspace_id, before, page.limit + 1).await?;
    let page = Page::from_rows(rows, page.limit, |(seq, event)| Cursor { position: *seq, id: event.id.clone() });
    Ok(Page { items: page.items.into_iter().map(|(_, event)| event).collect(), next_cursor: page.next_cursor })
}
