//! Metered fallback by consent: when a configured bring-your-own key cannot be used, a resolve
//! bills metered only if the agent, else its workspace, allows it. Every fallback is audited
//! and notified, at most once an hour per agent and provider.

use super::catalog::ProviderId;
use super::record::AgentRoute;
use crate::error::ApiError;
pub use crate::keys::MeteredFallback;

/// At most one `provider_key.fallback_used` per agent and provider in this long.
pub const NOTICE_QUIET_MS: i64 = 3_600_000;

/// Why a resolve cannot hand out the configured key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// The provider's stored key is `invalid` or `quota_exceeded`.
    ByokInvalid,
    /// The agent is routed to a provider that is no longer configured.
    ProviderRemoved,
}

impl Unusable {
    pub fn reason(self) -> &'static str {
        match self {
            Unusable::ByokInvalid => "byok_invalid",
            Unusable::ProviderRemoved => "provider_removed",
        }
    }
}

/// The consent that applies: the routed agent's own, else the workspace's.
pub fn consent(workspace: MeteredFallback, route: Option<&AgentRoute>) -> MeteredFallback {
    route.and_then(|r| r.metered_fallback).unwrap_or(workspace)
}

/// Falls back (`Ok`, with the reason metered answers carry) or refuses with 409
/// `byok_unavailable` and the reason it would have given.
pub fn decide(consent: MeteredFallback, from: ProviderId, unusable: Unusable) -> Result<&'static str, ApiError> {
    match consent {
        MeteredFallback::Allow => Ok(unusable.reason()),
        MeteredFallback::Deny => {
            Err(ApiError::ByokUnavailable { reason: unusable.reason().to_string(), provider: from.as_str().to_string() })
        }
    }
}

/// What a fallback notifies: never the key.
pub fn notice_data(agent_id: Option<&str>, provider: ProviderId, unusable: Unusable) -> serde_json::Value {
    serde_json::json!({"agent_id": agent_id, "provider": provider.as_str(), "reason": unusable.reason()})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(metered_fallback: Option<MeteredFallback>) -> AgentRoute {
        AgentRoute {
            workspace_id: "ws".into(),
            agent_id: "a".into(),
            provider: Some(ProviderId::OpenAi),
            model: None,
            metered_fallback,
            updated_at: 0,
        }
    }

    #[test]
    fn the_workspace_decides_for_an_agent_without_its_own_choice() {
        assert_eq!(consent(MeteredFallback::Deny, None), MeteredFallback::Deny);
        assert_eq!(consent(MeteredFallback::Deny, Some(&route(None))), MeteredFallback::Deny);
        assert_eq!(consent(MeteredFallback::Allow, Some(&route(None))), MeteredFallback::Allow);
    }

    #[test]
    fn an_agents_own_choice_overrides_its_workspace_both_ways() {
        assert_eq!(consent(MeteredFallback::Deny, Some(&route(Some(MeteredFallback::Allow)))), MeteredFallback::Allow);
        assert_eq!(consent(MeteredFallback::Allow, Some(&route(Some(MeteredFallback::Deny)))), MeteredFallback::Deny);
    }

    #[test]
    fn allow_falls_back_with_the_reason_and_deny_refuses_with_it() {
        assert_eq!(decide(MeteredFallback::Allow, ProviderId::OpenAi, Unusable::ByokInvalid), Ok("byok_invalid"));
        assert_eq!(decide(MeteredFallback::Allow, ProviderId::OpenAi, Unusable::ProviderRemoved), Ok("provider_removed"));
        let refused = decide(MeteredFallback::Deny, ProviderId::Anthropic, Unusable::ProviderRemoved).unwrap_err();
        assert_eq!(refused.status(), 409);
        assert_eq!(refused.envelope()["error"]["code"], "byok_unavailable");
        assert_eq!(refused.envelope()["error"]["reason"], "provider_removed");
        assert_eq!(refused.envelope()["error"].get("provider"), None, "the provider is the audit's, not the answer's");
        assert!(matches!(refused, ApiError::ByokUnavailable { provider, .. } if provider == "anthropic"));
    }

    #[test]
    fn the_notice_names_agent_provider_and_reason() {
        let data = notice_data(Some("buddy"), ProviderId::Anthropic, Unusable::ByokInvalid);
        assert_eq!(data, serde_json::json!({"agent_id": "buddy", "provider": "anthropic", "reason": "byok_invalid"}));
    }
}
