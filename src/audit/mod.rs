//! The audit trail: who did what to which key or provider, never holding a secret.

use serde_json::Value;

use crate::crypto::random::random_base62;

#[derive(Debug, Clone, PartialEq)]
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
