//! Provider routes: the catalog, configure/read/remove/validate, agent routing and resolve.

use serde_json::{json, Value};

use super::call::Call;
use super::reply::Reply;
use crate::error::ApiError;
use crate::keys::MeteredFallback;
use crate::page::PageRequest;
use crate::providers::service::{self, check_agent_id, check_model, Configure};
use crate::providers::{AgentRoute, ProviderId};
use crate::time::rfc3339;

/// The provider named in the path; `claude` is Anthropic.
pub fn path_provider(call: &Call) -> Result<ProviderId, ApiError> {
    ProviderId::parse(call.param(0)).ok_or(ApiError::NotFound)
}

pub async fn catalog(_call: &mut Call) -> Result<Reply, ApiError> {
    let providers: Vec<Value> = ProviderId::ALL.iter().map(|p| p.catalog_entry()).collect();
    Ok(Reply::ok(json!({"providers": providers})))
}

pub async fn put(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let provider = path_provider(call)?;
    let mut fields = call.fields(&["api_key", "api_host", "model", "fallback_model", "config", "default", "allow_unverified"]).await?;
    let request = Configure {
        provider,
        api_key: fields.required_str("api_key")?,
        api_host: fields.optional_str("api_host")?,
        model: fields.optional_str("model")?,
        fallback_model: fields.optional_str("fallback_model")?,
        config: fields.optional_object("config")?,
        make_default: fields.optional_bool("default")?.unwrap_or(false),
        allow_unverified: fields.optional_bool("allow_unverified")?.unwrap_or(false),
    };
    let audit = caller.audit("provider.configured", call.now_ms);
    let notice = service::RotationNotice::IfReplaced;
    let (record, queued) = service::configure_notifying(&call.deps(), &caller.write_precondition(), request, audit, notice).await?;
    call.deliver_after_response(queued);
    Ok(Reply::ok(record.to_json()))
}

pub async fn get(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let record = service::get(&call.deps(), &caller.workspace.id, path_provider(call)?).await?;
    Ok(Reply::ok(record.to_json()))
}

pub async fn list(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let items: Vec<Value> = service::list(&call.deps(), &caller.workspace.id).await?.iter().map(|r| r.to_json()).collect();
    Ok(Reply::ok(json!({"items": items})))
}

pub async fn remove(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let provider = path_provider(call)?;
    service::remove(&call.deps(), &caller, provider).await?;
    Ok(Reply::ok(json!({"status": "removed", "provider": provider.as_str()})))
}

/// Re-validation is allowed in a read-only workspace: it changes no key, only what is known.
pub async fn validate(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let provider = path_provider(call)?;
    let invalidated = caller.audit("provider.invalidated", call.now_ms);
    let result = service::revalidate(&call.deps(), &caller.live_precondition(), provider, invalidated).await?;
    call.deliver_after_response(result.notice.filter(|_| result.queued).map(|notice| notice.id));
    let mut body = result.record.to_json();
    if let Some(error) = result.error {
        body["error"] = error.envelope()["error"].clone();
    }
    Ok(Reply::ok(body))
}

/// The model ids the stored key was offered when it was last validated; the provider is not
/// asked again.
pub async fn models(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let (record, offered) = service::offered_models(&call.deps(), &caller.workspace.id, path_provider(call)?).await?;
    let body = match offered {
        Some(offered) => json!({
            "provider": record.provider.as_str(),
            "models": offered.ids,
            "truncated": offered.truncated,
            "listed_at": rfc3339(offered.listed_at),
        }),
        None => json!({"provider": record.provider.as_str(), "models": [], "truncated": false, "listed_at": null}),
    };
    Ok(Reply::ok(body))
}

fn agent_id(call: &Call) -> Result<String, ApiError> {
    let agent_id = call.param(0).to_string();
    check_agent_id(&agent_id)?;
    Ok(agent_id)
}

pub async fn put_route(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let agent_id = agent_id(call)?;
    let mut fields = call.fields(&["mode", "provider", "model", "metered_fallback"]).await?;
    let mode = fields.required_str("mode")?;
    let metered_fallback = match fields.optional_str("metered_fallback")? {
        None => None,
        Some(text) => Some(MeteredFallback::parse(&text).ok_or_else(|| {
            ApiError::invalid_request(
                "metered_fallback",
                "`metered_fallback` must be `allow` or `deny`, or absent to follow the workspace.",
            )
        })?),
    };
    let (provider, model) = match mode.as_str() {
        "metered" => {
            if fields.optional_str("provider")?.is_some() || fields.optional_str("model")?.is_some() {
                return Err(ApiError::invalid_request("provider", "A metered route takes no `provider` or `model`."));
            }
            if metered_fallback.is_some() {
                return Err(ApiError::invalid_request(
                    "metered_fallback",
                    "A metered route takes no `metered_fallback`: it bills metered.",
                ));
            }
            (None, None)
        }
        "byok" => {
            let name = fields.required_str("provider")?;
            let provider = ProviderId::parse(&name)
                .ok_or_else(|| ApiError::invalid_request("provider", "`provider` is not a provider id of the catalog."))?;
            (Some(provider), check_model("model", fields.optional_str("model")?)?)
        }
        _ => return Err(ApiError::invalid_request("mode", "`mode` must be `metered` or `byok`.")),
    };
    let route =
        AgentRoute { workspace_id: caller.workspace.id.clone(), agent_id, provider, model, metered_fallback, updated_at: call.now_ms };
    let route = service::set_route(&call.deps(), &caller, route).await?;
    Ok(Reply::ok(route.to_json()))
}

pub async fn list_routes(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let query = call.query();
    let page = PageRequest::from_query(&query)?;
    let page = service::routes(&call.deps(), &caller.workspace.id, &page).await?;
    let items: Vec<Value> = page.items.iter().map(AgentRoute::to_json).collect();
    Ok(Reply::ok(json!({"items": items, "next_cursor": page.next_cursor})))
}

pub async fn get_route(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let agent_id = agent_id(call)?;
    let route = service::route(&call.deps(), &caller.workspace.id, &agent_id).await?;
    Ok(Reply::ok(route.to_json()))
}

pub async fn delete_route(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let agent_id = agent_id(call)?;
    service::remove_route(&call.deps(), &caller, &agent_id).await?;
    Ok(Reply::ok(json!({"status": "removed", "agent_id": agent_id})))
}

/// Hands the runtime the key to use, or tells it to bill metered and why. The audit entry is
/// written after the response so the hot path is one D1 read, one KV read, one decryption.
pub async fn resolve(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let mut fields = call.fields(&["agent_id", "provider"]).await?;
    let agent_id = fields.optional_str("agent_id")?;
    if let Some(agent_id) = &agent_id {
        check_agent_id(agent_id)?;
    }
    let provider = match fields.optional_str("provider")? {
        None => None,
        Some(name) => Some(
            ProviderId::parse(&name)
                .ok_or_else(|| ApiError::invalid_request("provider", "`provider` is not a provider id of the catalog."))?,
        ),
    };
    // The caller is checked again now that the body is in: a key revoked while the request
    // was in flight gets no secret.
    let consent = caller.workspace.metered_fallback;
    let outcome = service::resolve(&call.deps(), &caller.live_precondition(), agent_id.as_deref(), provider, consent).await;
    let audit = caller.audit("secret.resolved", call.now_ms);
    let resolved = match outcome {
        Ok(resolved) => resolved,
        Err(ApiError::ByokUnavailable { reason, provider: unusable }) => {
            let refused = caller
                .audit("resolve.fallback_denied", call.now_ms)
                .target(unusable.as_str())
                .detail(json!({"provider": unusable, "agent_id": agent_id, "reason": reason}));
            call.audit_after_response(vec![refused]);
            return Err(ApiError::ByokUnavailable { reason, provider: unusable });
        }
        Err(error @ ApiError::DecryptionFailed { .. }) => {
            // A key that fails to decrypt is never silently replaced by metered billing.
            let failed = caller
                .audit("secret.decrypt_failed", call.now_ms)
                .detail(json!({"provider": provider.map(ProviderId::as_str), "agent_id": agent_id}));
            call.audit_after_response(vec![failed]);
            return Err(error);
        }
        Err(error) => return Err(error),
    };
    let target = match &resolved {
        service::Resolved::Byok { record, .. } => record.provider.as_str(),
        service::Resolved::Metered { .. } => "metered",
    };
    call.audit_after_response(vec![audit.target(target).detail(resolved.audit_detail(agent_id.as_deref()))]);
    if let service::Resolved::Metered { fell_back_from: Some((from, unusable)), .. } = resolved {
        call.fallback_after_response(caller.audit("resolve.fell_back", call.now_ms), agent_id.clone(), from, unusable);
    }
    Ok(Reply::ok(resolved.to_json()).no_store())
}
