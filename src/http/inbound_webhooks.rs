//! `POST /v1/hooks/{workspace_id}`: events from an operator's secret manager, CI or secret
//! scanner, signed with Standard Webhooks. Each `webhook-id` is processed once; a replay gets
//! the first answer again with `webhook-replayed: true`.

use std::time::Duration;

use serde_json::{json, Value};
use worker::Delay;

use super::call::Call;
use super::input::Fields;
use super::leaks::{deliver_after_response, read_reports};
use super::providers::{configure_for, keks};
use super::reply::Reply;
use crate::audit::AuditEvent;
use crate::error::ApiError;
use crate::keys::{leaks, service as keys};
use crate::providers::service::Configure;
use crate::providers::ProviderId;
use crate::store::{AuditStore, Precondition, ProviderStore, ReceiptClaim, WebhookStore, WorkspaceStore};
use crate::time::rfc3339;
use crate::webhooks::outbox::{key_revoked_data, OutboxEvent};
use crate::webhooks::secrets;
use crate::webhooks::signature::{self, Rejection};
use crate::workspaces::Workspace;

/// How long a second delivery of an id waits for the first one's answer: longer than the
/// slowest processing (a rotation validating against OpenRouter twice, 2 × 10 s).
const PENDING_WAIT: Duration = Duration::from_millis(250);
const PENDING_TRIES: usize = 100;

fn invalid_webhook(message: &str) -> ApiError {
    ApiError::InvalidWebhook { message: message.to_string() }
}

pub async fn receive(call: &mut Call) -> Result<Reply, ApiError> {
    let workspace_id = call.param(0).to_string();
    let header = |name: &str| call.header(name).filter(|v| !v.trim().is_empty());
    let (Some(id), Some(timestamp), Some(signatures)) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"))
    else {
        return Err(invalid_webhook("webhook-id, webhook-timestamp and webhook-signature are required."));
    };
    if id.len() > 256 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid_webhook("webhook-id must be 1 to 256 printable characters."));
    }
    if let Some(content_type) = call.header("content-type") {
        if !super::input::is_json_media_type(&content_type) {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    let body = call.body_bytes().await?;

    let store = call.store()?;
    // An unknown workspace looks exactly like a wrong signature: nothing to probe.
    let workspace = store.workspace(&workspace_id).await?;
    let honoured = match &workspace {
        Some(_) => secrets::honoured(&store, &keks(call)?, &workspace_id, call.now_ms).await?,
        None => Vec::new(),
    };
    match signature::verify(&honoured, &id, &timestamp, &signatures, &body, call.now_ms / 1000) {
        Err(Rejection::Stale) => return Err(ApiError::StaleWebhook),
        Err(Rejection::NoValidSignature) => return Err(ApiError::InvalidSignature),
        Ok(()) => {}
    }
    let Some(workspace) = workspace else { return Err(ApiError::InvalidSignature) };

    match claim(call, &workspace_id, &id).await? {
        Some(first) => Ok(first.header("webhook-replayed", "true")),
        None => {
            let reply = match process(call, &workspace, &id, &body).await {
                Ok(reply) => reply,
                Err(error) if error.status() >= 500 => {
                    // Our failure, not the sender's: let a retry be processed afresh.
                    store.release_receipt(&workspace_id, &id).await?;
                    return Err(error);
                }
                Err(error) => Reply::from_error(&error),
            };
            store.finish_receipt(&workspace_id, &id, reply.status, &reply.body.to_string()).await?;
            Ok(reply)
        }
    }
}

/// `None`: this delivery processes the id. `Some`: the first delivery's answer.
async fn claim(call: &Call, workspace_id: &str, id: &str) -> Result<Option<Reply>, ApiError> {
    let store = call.store()?;
    for _ in 0..PENDING_TRIES {
        match store.claim_receipt(workspace_id, id, call.clock_ms()).await? {
            ReceiptClaim::Won => return Ok(None),
            ReceiptClaim::Answered { status, body } => {
                let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                return Ok(Some(Reply { status, body, headers: Vec::new() }));
            }
            ReceiptClaim::Pending => Delay::from(PENDING_WAIT).await,
        }
    }
    Err(ApiError::Conflict)
}

async fn process(call: &Call, workspace: &Workspace, id: &str, body: &[u8]) -> Result<Reply, ApiError> {
    let value = super::input::parse_json(body)?;
    let mut fields = Fields::new(value, &["type", "data", "timestamp"])?;
    let kind = fields.required_str("type")?;
    let data = Value::Object(fields.optional_object("data")?.unwrap_or_default());
    let ip = call.client_ip();
    let event = |action: &str| AuditEvent::new(Some(&workspace.id), action, call.now_ms).actor(None, ip.as_deref());
    let received = event("webhook.received").target(id).detail(json!({"type": kind, "webhook_id": id}));
    call.store()?.append_audit(&[received]).await?;

    match kind.as_str() {
        "provider_key.rotated" => rotate_provider_key(call, workspace, data, event("provider.rotated")).await,
        "api_key.revoke" => {
            let mut fields = Fields::new(data, &["key_id"]).map_err(in_data)?;
            let key_id = fields.required_str("key_id").map_err(in_data)?;
            let precondition = Precondition::workspace_writable(&workspace.id);
            let revocation = keys::revoke_in(&call.store()?, &precondition, &key_id, event("key.revoked"), call.now_ms).await?;
            let key = revocation.key;
            if revocation.revoked_now {
                call.notify(OutboxEvent::new(&workspace.id, "api_key.revoked", key_revoked_data(&key, "webhook"), call.now_ms)).await;
            }
            Ok(Reply::ok(json!({"status": "revoked", "key_id": key.id, "revoked_at": key.revoked_at.map(rfc3339)})))
        }
        "api_key.leaked" => {
            let mut fields = Fields::new(data, &["tokens"]).map_err(in_data)?;
            let tokens = Value::Array(
                fields
                    .optional_list("tokens")
                    .map_err(in_data)?
                    .ok_or_else(|| in_data(ApiError::invalid_request("tokens", "`tokens` is required.")))?,
            );
            let reports = read_reports(tokens).map_err(|e| prefix(e, "data.tokens"))?;
            let (labels, revoked) =
                leaks::report(&call.store()?, &reports, Some(&workspace.id), &call.settings.key_prefix, call.now_ms).await?;
            deliver_after_response(call, revoked.len());
            Ok(Reply::ok(Value::Array(labels.iter().map(|l| l.to_json()).collect())))
        }
        other => Err(ApiError::UnsupportedEvent { event: other.chars().take(64).collect() }),
    }
}

/// Rotation validates exactly like configure; on any failure the old key keeps serving. The
/// host, models and settings already configured are kept unless the event names new ones.
async fn rotate_provider_key(call: &Call, workspace: &Workspace, data: Value, audit: AuditEvent) -> Result<Reply, ApiError> {
    if workspace.read_only {
        return Err(ApiError::WorkspaceReadOnly);
    }
    let mut fields = Fields::new(data, &["provider", "api_key", "api_host", "model", "fallback_model"]).map_err(in_data)?;
    let name = fields.required_str("provider").map_err(in_data)?;
    let provider = ProviderId::parse(&name)
        .ok_or_else(|| ApiError::invalid_request("data.provider", "`data.provider` is not a provider id of the catalog."))?;
    let api_key = fields.required_str("api_key").map_err(in_data)?;
    let current = call.store()?.provider(&workspace.id, provider).await?;
    let request = Configure {
        provider,
        api_key,
        api_host: fields.optional_str("api_host").map_err(in_data)?,
        model: fields.optional_str("model").map_err(in_data)?,
        fallback_model: fields.optional_str("fallback_model").map_err(in_data)?,
        config: None,
        make_default: false,
    }
    .keeping(current.as_ref());
    let record = configure_for(call, &Precondition::workspace_writable(&workspace.id), request, audit).await.map_err(|e| match e {
        ApiError::InvalidRequest { field, message } if !field.starts_with("data.") => {
            prefix(ApiError::InvalidRequest { field, message }, "data")
        }
        ApiError::InvalidHost { field, reason } => ApiError::InvalidHost { field: format!("data.{field}"), reason },
        ApiError::InvalidModel { field } => ApiError::InvalidModel { field: format!("data.{field}") },
        other => other,
    })?;
    let data = json!({"provider": provider.as_str(), "version": record.version, "key_hint": record.key_hint});
    call.notify(OutboxEvent::new(&workspace.id, "provider_key.rotated", data, call.now_ms)).await;
    Ok(Reply::ok(json!({"status": "rotated", "provider": provider.as_str(), "version": record.version})))
}

fn in_data(error: ApiError) -> ApiError {
    prefix(error, "data")
}

/// Names a field of the event's `data` by its path, e.g. `data.key_id`.
fn prefix(error: ApiError, parent: &str) -> ApiError {
    match error {
        ApiError::InvalidRequest { field, message } => {
            let path = match field.as_str() {
                "body" => parent.to_string(),
                indexed if indexed.starts_with('[') => format!("{parent}{indexed}"),
                named => format!("{parent}.{named}"),
            };
            ApiError::InvalidRequest { message: message.replace(&format!("`{field}`"), &format!("`{path}`")), field: path }
        }
        other => other,
    }
}
