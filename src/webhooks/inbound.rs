//! Receiving a signed event from an operator's secret manager, CI or secret scanner (Standard
//! Webhooks): rotate a provider key, revoke a platform key, report leaked tokens. Each
//! `webhook-id` is processed once; a replay gets the first answer again.

use std::time::Duration;

use serde_json::{json, Value};

use super::secrets;
use super::signature::{self, Rejection};
use super::store::{ReceiptClaim, WebhookStore};
use crate::audit::AuditEvent;
use crate::deps::Deps;
use crate::error::ApiError;
use crate::input::{parse_json, Fields};
use crate::keys::leaks::{self, LeakReport};
use crate::keys::service as keys;
use crate::keys::store::KeyStore;
use crate::providers::service::{self as providers, Configure, RotationNotice};
use crate::providers::store::{BlobStore, ProviderStore};
use crate::providers::validation::ProviderClient;
use crate::providers::ProviderId;
use crate::storage::Precondition;
use crate::time::rfc3339;
use crate::workspaces::store::WorkspaceStore;
use crate::workspaces::Workspace;

/// How long a second delivery of an id waits for the first one's answer: longer than the
/// slowest processing (a rotation validating against OpenRouter twice, 2 × 10 s).
const PENDING_WAIT: Duration = Duration::from_millis(250);
const PENDING_TRIES: usize = 100;

/// Everything an event may touch: its workspace, the receipts, keys and providers.
pub trait InboundStore: WorkspaceStore + WebhookStore + KeyStore + ProviderStore {}
impl<T: WorkspaceStore + WebhookStore + KeyStore + ProviderStore> InboundStore for T {}

fn invalid_webhook(message: &str) -> ApiError {
    ApiError::InvalidWebhook { message: message.to_string() }
}

/// The three Standard Webhooks headers, present and well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub id: String,
    pub timestamp: String,
    pub signatures: String,
}

impl SignedHeaders {
    /// Blank headers count as missing; the id must be 1 to 256 printable characters.
    pub fn check(id: Option<String>, timestamp: Option<String>, signatures: Option<String>) -> Result<Self, ApiError> {
        let present = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        let (Some(id), Some(timestamp), Some(signatures)) = (present(id), present(timestamp), present(signatures)) else {
            return Err(invalid_webhook("webhook-id, webhook-timestamp and webhook-signature are required."));
        };
        if id.len() > 256 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid_webhook("webhook-id must be 1 to 256 printable characters."));
        }
        Ok(SignedHeaders { id, timestamp, signatures })
    }
}

/// What a delivery is answered, and what follows the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// The first delivery's answer, given again.
    pub replayed: bool,
    /// Notifications queued by the event's own batch (a revocation's, a rotation's, a leak
    /// report's), for the first delivery attempts after the answer.
    pub queued: usize,
}

impl Answer {
    fn new(status: u16, body: Value) -> Self {
        Answer { status, body, replayed: false, queued: 0 }
    }
}

/// Verifies the signature (an unknown workspace looks exactly like a wrong one), claims the
/// id, processes the event and records the answer. A failure of keywarden's own (5xx) releases
/// the claim, so the sender's retry is processed afresh; the sender's mistakes (4xx) are the
/// answer, replayed like any other.
pub async fn receive<S, B, C>(
    deps: &Deps<'_, S, B, C>,
    workspace_id: &str,
    headers: &SignedHeaders,
    body: &[u8],
) -> Result<Answer, ApiError>
where
    S: InboundStore,
    B: BlobStore,
    C: ProviderClient,
{
    let store = deps.store;
    let workspace = store.workspace(workspace_id).await?;
    let honoured = match &workspace {
        Some(_) => secrets::honoured(deps, workspace_id).await?,
        None => Vec::new(),
    };
    match signature::verify(&honoured, &headers.id, &headers.timestamp, &headers.signatures, body, deps.now_ms / 1000) {
        Err(Rejection::Stale) => return Err(ApiError::StaleWebhook),
        Err(Rejection::NoValidSignature) => return Err(ApiError::InvalidSignature),
        Ok(()) => {}
    }
    let Some(workspace) = workspace else { return Err(ApiError::InvalidSignature) };

    if let Some(first) = claim(deps, workspace_id, &headers.id).await? {
        return Ok(first);
    }
    let answer = match process(deps, &workspace, &headers.id, body).await {
        Ok(answer) => answer,
        Err(error) if error.status() >= 500 => {
            store.release_receipt(workspace_id, &headers.id).await?;
            return Err(error);
        }
        Err(error) => Answer::new(error.status(), error.envelope()),
    };
    store.finish_receipt(workspace_id, &headers.id, answer.status, &answer.body.to_string()).await?;
    Ok(answer)
}

/// `None`: this delivery processes the id. `Some`: the first delivery's answer.
async fn claim<S: InboundStore, B, C>(deps: &Deps<'_, S, B, C>, workspace_id: &str, id: &str) -> Result<Option<Answer>, ApiError> {
    for _ in 0..PENDING_TRIES {
        match deps.store.claim_receipt(workspace_id, id, deps.clock_ms()).await? {
            ReceiptClaim::Won => return Ok(None),
            ReceiptClaim::Answered { status, body } => {
                let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                return Ok(Some(Answer { replayed: true, ..Answer::new(status, body) }));
            }
            ReceiptClaim::Pending => deps.pause(PENDING_WAIT).await,
        }
    }
    Err(ApiError::Conflict)
}

async fn process<S, B, C>(deps: &Deps<'_, S, B, C>, workspace: &Workspace, id: &str, body: &[u8]) -> Result<Answer, ApiError>
where
    S: InboundStore,
    B: BlobStore,
    C: ProviderClient,
{
    let mut fields = Fields::new(parse_json(body)?, &["type", "data", "timestamp"])?;
    let kind = fields.required_str("type")?;
    let data = Value::Object(fields.optional_object("data")?.unwrap_or_default());
    let now_ms = deps.now_ms;
    let event = |action: &str| AuditEvent::new(Some(&workspace.id), action, now_ms);
    let received = event("webhook.received").target(id).detail(json!({"type": kind, "webhook_id": id}));
    deps.store.append_audit(&[received]).await?;

    match kind.as_str() {
        "provider_key.rotated" => rotate_provider_key(deps, workspace, data, event("provider.rotated")).await,
        "api_key.revoke" => {
            let mut fields = Fields::new(data, &["key_id"]).map_err(in_data)?;
            let key_id = fields.required_str("key_id").map_err(in_data)?;
            let precondition = Precondition::workspace_writable(&workspace.id);
            let target = deps.store.key(&workspace.id, &key_id).await?.ok_or(ApiError::NotFound)?;
            let revocation = keys::revoke_in(deps, &precondition, &target, "webhook", event("key.revoked")).await?;
            let key = revocation.key;
            let body = json!({"status": "revoked", "key_id": key.id, "revoked_at": key.revoked_at.map(rfc3339)});
            let mut answer = Answer::new(200, body);
            // Only the delivery that revoked the key told the endpoint, in the revoke's batch.
            answer.queued = usize::from(revocation.queued.is_some());
            Ok(answer)
        }
        "api_key.leaked" => {
            let mut fields = Fields::new(data, &["tokens"]).map_err(in_data)?;
            let tokens = fields
                .optional_list("tokens")
                .map_err(in_data)?
                .ok_or_else(|| in_data(ApiError::invalid_request("tokens", "`tokens` is required.")))?;
            let reports = LeakReport::read_all(Value::Array(tokens)).map_err(|e| prefix(e, "data.tokens"))?;
            let (labels, revoked) = leaks::report(deps, &reports, Some(&workspace.id), leaks::Reporter::Webhook).await?;
            let mut answer = Answer::new(200, Value::Array(labels.iter().map(|l| l.to_json()).collect()));
            answer.queued = revoked.len();
            Ok(answer)
        }
        other => Err(ApiError::UnsupportedEvent { event: other.chars().take(64).collect() }),
    }
}

/// Rotation validates exactly like configure; on any failure the old key keeps serving. The
/// host, models and settings already configured are kept unless the event names new ones.
async fn rotate_provider_key<S, B, C>(
    deps: &Deps<'_, S, B, C>,
    workspace: &Workspace,
    data: Value,
    audit: AuditEvent,
) -> Result<Answer, ApiError>
where
    S: InboundStore,
    B: BlobStore,
    C: ProviderClient,
{
    if workspace.read_only {
        return Err(ApiError::WorkspaceReadOnly);
    }
    let mut fields = Fields::new(data, &["provider", "api_key", "api_host", "model", "fallback_model"]).map_err(in_data)?;
    let name = fields.required_str("provider").map_err(in_data)?;
    let provider = ProviderId::parse(&name)
        .ok_or_else(|| ApiError::invalid_request("data.provider", "`data.provider` is not a provider id of the catalog."))?;
    let request = Configure {
        allow_unverified: false,
        provider,
        api_key: fields.required_str("api_key").map_err(in_data)?,
        api_host: fields.optional_str("api_host").map_err(in_data)?,
        model: fields.optional_str("model").map_err(in_data)?,
        fallback_model: fields.optional_str("fallback_model").map_err(in_data)?,
        config: None,
        make_default: false,
    };
    let precondition = Precondition::workspace_writable(&workspace.id);
    let (record, queued) =
        providers::replace_key(deps, &precondition, request, audit, RotationNotice::Always).await.map_err(|e| match e {
            ApiError::InvalidRequest { field, message } if !field.starts_with("data.") => {
                prefix(ApiError::InvalidRequest { field, message }, "data")
            }
            ApiError::InvalidHost { field, reason } => ApiError::InvalidHost { field: format!("data.{field}"), reason },
            ApiError::InvalidModel { field } => ApiError::InvalidModel { field: format!("data.{field}") },
            other => other,
        })?;
    let mut answer = Answer::new(200, json!({"status": "rotated", "provider": provider.as_str(), "version": record.version}));
    // Told in the save's own batch.
    answer.queued = usize::from(queued.is_some());
    Ok(answer)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_headers_are_required_and_blank_counts_as_missing() {
        let some = |s: &str| Some(s.to_string());
        assert!(SignedHeaders::check(some("msg_1"), some("1700000000"), some("v1,abc")).is_ok());
        for (id, timestamp, signatures) in
            [(None, some("1"), some("v1,x")), (some("msg"), some("  "), some("v1,x")), (some("m"), some("1"), None)]
        {
            assert!(matches!(SignedHeaders::check(id, timestamp, signatures), Err(ApiError::InvalidWebhook { .. })));
        }
    }

    #[test]
    fn a_webhook_id_is_at_most_256_printable_characters() {
        let check = |id: String| SignedHeaders::check(Some(id), Some("1".into()), Some("v1,x".into()));
        assert!(check("a".repeat(256)).is_ok());
        assert!(check("a".repeat(257)).is_err(), "too long");
        assert!(check("has space".into()).is_err(), "not printable");
    }

    #[test]
    fn a_field_of_the_event_data_is_named_by_its_path() {
        let named = prefix(ApiError::invalid_request("key_id", "`key_id` is required."), "data");
        assert_eq!(named, ApiError::invalid_request("data.key_id", "`data.key_id` is required."));
        let indexed = prefix(ApiError::invalid_request("[2].token", "`[2].token` is required."), "data.tokens");
        assert!(matches!(indexed, ApiError::InvalidRequest { ref field, .. } if field == "data.tokens[2].token"), "{indexed:?}");
    }
}
