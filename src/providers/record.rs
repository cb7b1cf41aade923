//! What is stored for a configured provider, and the provider config the API shows for it.

use serde_json::{json, Map, Value};

use super::catalog::ProviderId;
use super::funds::Funds;
use crate::keys::MeteredFallback;
use crate::time::rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Valid,
    Invalid,
    QuotaExceeded,
    Unverified,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Valid => "valid",
            KeyStatus::Invalid => "invalid",
            KeyStatus::QuotaExceeded => "quota_exceeded",
            KeyStatus::Unverified => "unverified",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [KeyStatus::Valid, KeyStatus::Invalid, KeyStatus::QuotaExceeded, KeyStatus::Unverified].into_iter().find(|s| s.as_str() == text)
    }

    /// Whether resolve may hand the key out.
    pub fn usable(self) -> bool {
        matches!(self, KeyStatus::Valid | KeyStatus::Unverified)
    }
}

/// How the names of provider-key blobs begin since their encryption binds the name (see
/// `vault`): `pk/v2/<workspace>/<provider>/<version>-<random>`. A config whose blob name has the
/// older form, `pk/<workspace>/...`, was stored before, so its blob may still be unbound; the
/// cron's re-wrap moves it to a name of this form.
pub const BOUND_BLOB_PREFIX: &str = "pk/v2/";

/// A configured provider. The key lives encrypted in KV under `blob_name`; this holds a hint.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderRecord {
    pub workspace_id: String,
    pub provider: ProviderId,
    pub api_host: String,
    pub model: Option<String>,
    pub fallback_model: Option<String>,
    pub config: Map<String, Value>,
    pub key_hint: String,
    pub status: KeyStatus,
    pub validated_at: Option<i64>,
    /// The provider's own reason when the key is not plainly valid (`SERVICE_DISABLED`, ...).
    pub provider_reason: Option<String>,
    /// What is left to spend, where the provider tells it.
    pub funds: Option<Funds>,
    pub version: i64,
    pub blob_name: String,
    pub kek_id: String,
    pub is_default: bool,
    pub updated_at: i64,
}

impl ProviderRecord {
    pub fn to_json(&self) -> Value {
        json!({
            "provider": self.provider.as_str(),
            "status": self.status.as_str(),
            "api_host": self.api_host,
            "model": self.model,
            "fallback_model": self.fallback_model,
            "config": self.config,
            "key_hint": self.key_hint,
            "validated_at": self.validated_at.map(rfc3339),
            "provider_reason": self.provider_reason,
            "funds": self.funds.as_ref().map(Funds::to_json),
            "version": self.version,
            "default": self.is_default,
        })
    }
}

/// A key shorter than this shows no characters: its last four would be a quarter of it or more.
pub const HINT_MIN_KEY_CHARS: usize = 16;

/// `...` and the last four characters: enough to recognise a key, never enough to use it. A
/// short key gets `...` alone.
pub fn key_hint(key: &str) -> String {
    let length = key.chars().count();
    if length < HINT_MIN_KEY_CHARS {
        return "...".to_string();
    }
    let tail: String = key.chars().skip(length - 4).collect();
    format!("...{tail}")
}

/// How an agent's requests are routed: to metered billing or to one configured provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRoute {
    pub workspace_id: String,
    pub agent_id: String,
    /// `None`: metered.
    pub provider: Option<ProviderId>,
    pub model: Option<String>,
    /// The agent's own consent to metered fallback; `None`: its workspace's.
    pub metered_fallback: Option<MeteredFallback>,
    pub updated_at: i64,
}

impl AgentRoute {
    pub fn to_json(&self) -> Value {
        json!({
            "agent_id": self.agent_id,
            "mode": if self.provider.is_some() { "byok" } else { "metered" },
            "provider": self.provider.map(ProviderId::as_str),
            "model": self.model,
            "metered_fallback": self.metered_fallback.map(MeteredFallback::as_str),
            "updated_at": rfc3339(self.updated_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_shows_only_the_last_four_characters() {
        assert_eq!(key_hint("sk-proj-abcdef123456"), "...3456");
        assert_eq!(key_hint("0123456789abcdef"), "...cdef", "16 characters: the shortest key that shows four");
        assert_eq!(key_hint("ééééééééééééwxyz"), "...wxyz", "characters, not bytes");
    }

    #[test]
    fn a_key_under_sixteen_characters_shows_none_of_them() {
        for key in ["", "abc", "abcd", "sk-x", "0123456789abcde"] {
            assert_eq!(key_hint(key), "...", "{key:?}");
        }
    }

    #[test]
    fn only_valid_and_unverified_keys_are_handed_out() {
        assert!(KeyStatus::Valid.usable() && KeyStatus::Unverified.usable());
        assert!(!KeyStatus::Invalid.usable() && !KeyStatus::QuotaExceeded.usable());
        assert_eq!(KeyStatus::parse("quota_exceeded"), Some(KeyStatus::QuotaExceeded));
    }
}
