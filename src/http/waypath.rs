//! Waypath's documented integration routes (seed 004), answering as Waypath documents them:
//! `{"status": "configured", "provider": "claude"}`, and `401 {"error": "Invalid claude key:
//! <reason>"}` for a key without the documented prefix or one the provider refuses.

use serde_json::json;

use super::call::Call;
use super::reply::Reply;
use crate::error::ApiError;
use crate::providers::service::{self, Configure};
use crate::providers::ProviderId;

/// Waypath's integration name, its provider and the key prefix it documents.
fn integration(call: &Call) -> Result<(&'static str, ProviderId, &'static str), ApiError> {
    match call.param(0) {
        "claude" => Ok(("claude", ProviderId::Anthropic, "sk-ant-")),
        "openai" => Ok(("openai", ProviderId::OpenAi, "sk-")),
        _ => Err(ApiError::NotFound),
    }
}

fn invalid(name: &str, reason: &str) -> Reply {
    Reply { status: 401, body: json!({"error": format!("Invalid {name} key: {reason}")}), headers: Vec::new() }
}

pub async fn configure(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let (name, provider, prefix) = integration(call)?;
    let mut fields = call.fields(&["apiKey"]).await?;
    let api_key = fields.required_str("apiKey")?;
    if !api_key.starts_with(prefix) {
        return Ok(invalid(name, &format!("the key must start with {prefix}")));
    }
    let request = Configure {
        provider,
        api_key,
        api_host: None,
        model: None,
        fallback_model: None,
        config: None,
        allow_unverified: false,
        make_default: false,
    };
    let audit = caller.audit("provider.configured", call.now_ms);
    match service::replace_key(&call.deps(), &caller.write_precondition(), request, audit, service::RotationNotice::Never).await {
        Ok(_) => Ok(Reply::ok(json!({"status": "configured", "provider": name}))),
        Err(
            error @ (ApiError::InvalidKey { .. }
            | ApiError::QuotaExceeded { .. }
            | ApiError::KeyRestricted { .. }
            | ApiError::RegionUnsupported { .. }
            | ApiError::InvalidModel { .. }
            | ApiError::WrongProvider { .. }
            | ApiError::InvalidRequest { .. }),
        ) => Ok(invalid(name, &error.to_string())),
        Err(other) => Err(other),
    }
}

/// Removing an integration that is not configured is not an error: the outcome is the same.
pub async fn remove(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let (name, provider, _) = integration(call)?;
    match service::remove(&call.deps(), &caller, provider).await {
        Ok(_) | Err(ApiError::NotConfigured) => Ok(Reply::ok(json!({"status": "removed", "provider": name}))),
        Err(other) => Err(other),
    }
}
