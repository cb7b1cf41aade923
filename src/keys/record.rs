//! What is stored for a platform key, and the key object the API shows for it.

use serde_json::{json, Value};

use super::allowlist::Allowlist;
use super::credits::Credits;
use super::{Capabilities, KeyPrefix, PlatformKey};
use crate::crypto::random::random_base62;
use crate::name::Name;
use crate::time::rfc3339;

/// A per-key request budget: at most `limit` requests per fixed window of `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RateLimit {
    pub limit: u32,
    pub window_seconds: u32,
}

impl RateLimit {
    pub fn to_json(self) -> Value {
        json!({"limit": self.limit, "window_seconds": self.window_seconds})
    }
}

/// A stored key. It holds the SHA-256 of the key, never the key.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub key_hash: String,
    pub prefix: String,
    pub last4: String,
    pub capabilities: Capabilities,
    pub subject: Option<Value>,
    pub rate_limit: Option<RateLimit>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub rerolled_from: Option<String>,
    /// On a successor rerolled with grace from first use: how long the key it replaced keeps
    /// working after this key's first use. `None` once that use has started the grace.
    #[serde(default)]
    pub old_key_grace_ms: Option<i64>,
    /// Where its requests may come from; `None`: anywhere.
    #[serde(default)]
    pub allowed_ips: Option<Allowlist>,
    /// What its uses spend from; `None`: unmetered.
    #[serde(default)]
    pub credits: Option<Credits>,
}

/// What a new key is made from, before it has a secret.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub workspace_id: String,
    pub name: Name,
    pub capabilities: Capabilities,
    pub subject: Option<Value>,
    pub rate_limit: Option<RateLimit>,
    pub expires_at: Option<i64>,
    pub rerolled_from: Option<String>,
    pub allowed_ips: Option<Allowlist>,
    pub credits: Option<Credits>,
}

pub fn new_key_id() -> String {
    format!("key_{}", random_base62(20))
}

impl KeyRecord {
    /// The `api_key.revoked` notification's data: ids and times, never the key.
    pub fn revoked_notice_data(&self, reason: &str) -> Value {
        json!({"key_id": self.id, "name": self.name, "revoked_at": self.revoked_at.map(rfc3339), "reason": reason})
    }

    /// Whether the key is usable at `now_ms`: not revoked (a future `revoked_at` is a grace
    /// period still running) and not expired. SQL states it once too, as `store::sql::live_key`.
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.revoked_at.is_none_or(|at| at > now_ms) && self.expires_at.is_none_or(|at| at > now_ms)
    }

    /// Issues a fresh key: the plaintext goes back to the caller once, the record to storage.
    pub fn issue(spec: KeySpec, prefix: &KeyPrefix, now_ms: i64) -> (KeyRecord, PlatformKey) {
        let key = PlatformKey::generate(prefix);
        let record = KeyRecord {
            id: new_key_id(),
            workspace_id: spec.workspace_id,
            name: spec.name.into_string(),
            key_hash: key.hash(),
            prefix: prefix.as_str().to_string(),
            last4: key.last4(),
            capabilities: spec.capabilities,
            subject: spec.subject,
            rate_limit: spec.rate_limit,
            created_at: now_ms,
            expires_at: spec.expires_at,
            last_used_at: None,
            revoked_at: None,
            rerolled_from: spec.rerolled_from,
            old_key_grace_ms: None,
            allowed_ips: spec.allowed_ips,
            credits: spec.credits,
        };
        (record, key)
    }

    pub fn masked(&self) -> String {
        format!("{}...{}", self.prefix, self.last4)
    }

    /// The key object of the contract, without plaintext or hash.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "capabilities": self.capabilities.to_strings(),
            "subject": self.subject,
            "masked": self.masked(),
            "last4": self.last4,
            "created_at": rfc3339(self.created_at),
            "expires_at": self.expires_at.map(rfc3339),
            "last_used_at": self.last_used_at.map(rfc3339),
            "revoked_at": self.revoked_at.map(rfc3339),
            "rate_limit": self.rate_limit.map(RateLimit::to_json),
            "rerolled_from": self.rerolled_from,
            "allowed_ips": self.allowed_ips.as_ref().map(Allowlist::to_strings),
            "credits": self.credits.map(Credits::to_json),
        })
    }

    /// The record with its credits as of `now_ms` (a refill due since is applied).
    pub fn as_of(mut self, calendar: super::credits::Calendar, now_ms: i64) -> KeyRecord {
        self.credits = self.credits.map(|credits| credits.current(calendar, now_ms));
        self
    }

    /// The key object with the plaintext, for the one response that creates the key.
    pub fn to_json_with_secret(&self, key: &PlatformKey) -> Value {
        let mut object = self.to_json();
        object["key"] = json!(key.expose());
        object
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> KeySpec {
        KeySpec {
            workspace_id: "ws_1".into(),
            name: Name::parse("CI").unwrap(),
            capabilities: Capabilities::parse(&["desktop:read"]).unwrap(),
            subject: Some(json!({"user_id": "u1"})),
            rate_limit: Some(RateLimit { limit: 10, window_seconds: 60 }),
            expires_at: None,
            rerolled_from: None,
            allowed_ips: None,
            credits: None,
        }
    }

    #[test]
    fn an_issued_record_holds_the_hash_and_last4_but_not_the_key() {
        let (record, key) = KeyRecord::issue(spec(), &KeyPrefix::default(), 1_000);
        assert_eq!(record.key_hash, key.hash());
        assert_eq!(record.last4, key.last4());
        assert!(record.id.starts_with("key_"));
        let shown = record.to_json().to_string();
        assert!(!shown.contains(key.expose()), "plaintext in key object");
        assert!(!shown.contains(&record.key_hash), "hash in key object");
    }

    #[test]
    fn the_key_object_has_every_contract_field() {
        let (record, key) = KeyRecord::issue(spec(), &KeyPrefix::default(), 1_795_369_214_000);
        let object = record.to_json();
        for field in [
            "id",
            "name",
            "capabilities",
            "subject",
            "masked",
            "last4",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "rate_limit",
            "rerolled_from",
        ] {
            assert!(object.get(field).is_some(), "missing {field}");
        }
        assert_eq!(object["masked"], format!("kw_live_...{}", key.last4()));
        assert_eq!(object["created_at"], "2026-11-22T17:40:14Z");
        assert_eq!(object["rate_limit"], json!({"limit": 10, "window_seconds": 60}));
        assert_eq!(record.to_json_with_secret(&key)["key"], key.expose());
    }
}
