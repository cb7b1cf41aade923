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
        })
    }

    pub fn cursor(&self) -> Cursor {
        Cursor { position: self.created_at, id: self.id.clone() }
    }
}
