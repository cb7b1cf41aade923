//! The workspace a key belongs to: the tenant boundary, read with the key when it authenticates.
//! Its use cases (the operator's routes) are in `crate::workspaces`.

use serde_json::{json, Value};

use super::Capabilities;
use crate::page::Cursor;
use crate::time::rfc3339;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub read_only: bool,
    pub default_capabilities: Capabilities,
    pub created_at: i64,
    /// The longest a key of this workspace may live, from its creation or reroll; `None`: no
    /// limit. A key without an expiry is refused when there is one.
    #[serde(default)]
    pub max_key_lifetime_seconds: Option<u64>,
    /// What a leak report of one of its keys does.
    #[serde(default)]
    pub leak_policy: LeakPolicy,
    /// Whether a resolve whose bring-your-own key cannot be used bills metered instead.
    #[serde(default)]
    pub metered_fallback: MeteredFallback,
}

/// Consent to metered billing when a configured bring-your-own key cannot be used: `allow`
/// (seed 004's behaviour) or `deny`, which makes such a resolve a 409 for the product to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeteredFallback {
    #[default]
    Allow,
    Deny,
}

impl MeteredFallback {
    pub fn as_str(self) -> &'static str {
        match self {
            MeteredFallback::Allow => "allow",
            MeteredFallback::Deny => "deny",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "allow" => Some(MeteredFallback::Allow),
            "deny" => Some(MeteredFallback::Deny),
            _ => None,
        }
    }
}

/// What happens to a key reported leaked: `revoke` at once, `expire` after `grace_seconds`
/// (at most [`MAX_LEAK_GRACE_SECONDS`]), or `notify` only. Every true positive is audited and
/// notified whatever the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct LeakPolicy {
    pub action: LeakAction,
    pub grace_seconds: u32,
}

pub const MAX_LEAK_GRACE_SECONDS: u32 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeakAction {
    #[default]
    Revoke,
    Expire,
    Notify,
}

impl LeakAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LeakAction::Revoke => "revoke",
            LeakAction::Expire => "expire",
            LeakAction::Notify => "notify",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "revoke" => Some(LeakAction::Revoke),
            "expire" => Some(LeakAction::Expire),
            "notify" => Some(LeakAction::Notify),
            _ => None,
        }
    }
}

impl LeakPolicy {
    /// How long after the report the key stops working; `None`: it does not (notify only).
    pub fn grace_ms(self) -> Option<i64> {
        match self.action {
            LeakAction::Revoke => Some(0),
            LeakAction::Expire => Some(self.grace_seconds as i64 * 1000),
            LeakAction::Notify => None,
        }
    }

    pub fn to_json(self) -> Value {
        json!({"action": self.action.as_str(), "grace_seconds": self.grace_seconds})
    }
}

impl Workspace {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "read_only": self.read_only,
            "default_capabilities": self.default_capabilities.to_strings(),
            "created_at": rfc3339(self.created_at),
            "max_key_lifetime_seconds": self.max_key_lifetime_seconds,
            "leak_policy": self.leak_policy.to_json(),
            "metered_fallback": self.metered_fallback.as_str(),
        })
    }

    pub fn cursor(&self) -> Cursor {
        Cursor { position: self.created_at, id: self.id.clone() }
    }
}
