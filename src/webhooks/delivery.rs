//! Delivering queued notifications: sign with the endpoint's secret, POST, record the attempt.

use super::secrets;
use super::store::{SecretKind, WebhookStore};
use crate::deps::Deps;
use crate::error::ApiError;
use crate::outbox::{next_attempt_at, Attempt, Notifier, OutboxEvent};
use crate::providers::host::ApiHost;

/// Attempts one claimed event now. An endpoint removed since the event was queued, or one
/// whose secret no longer opens, ends the event rather than blocking the outbox.
pub async fn attempt<S: WebhookStore, B, C: Notifier>(deps: &Deps<'_, S, B, C>, event: &OutboxEvent) -> Result<Attempt, ApiError> {
    let (store, now_ms) = (deps.store, deps.now_ms);
    let give_up = Attempt::Failed { status: None };
    let Some(endpoint) = store.endpoint(&event.workspace_id).await? else {
        store.record_attempt(event, give_up, None, now_ms).await?;
        return Ok(give_up);
    };
    // The URL passed the host policy when it was registered, perhaps under an older and weaker
    // one, or under a deployment setting since turned off: checked again under the
    // deployment's policy, so no refused host is ever posted to; such an endpoint ends the event.
    if let Err(reason) = ApiHost::parse(&endpoint.url, deps.allow_insecure_hosts()) {
        store.record_attempt(event, give_up, None, now_ms).await?;
        return Err(ApiError::InvalidHost { field: "url".into(), reason });
    }
    let secret = match deps.keks().and_then(|keks| secrets::open(keks, SecretKind::Endpoint, &endpoint.secret)) {
        Ok(secret) => secret,
        Err(error) => {
            store.record_attempt(event, give_up, None, now_ms).await?;
            return Err(error);
        }
    };
    let body = event.body();
    let timestamp = now_ms / 1000;
    let headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("webhook-id".to_string(), event.id.clone()),
        ("webhook-timestamp".to_string(), timestamp.to_string()),
        ("webhook-signature".to_string(), secret.sign(&event.id, timestamp, body.as_bytes())),
    ];
    let outcome = deps.client.post(&endpoint.url, &headers, &body).await;
    let next = match outcome {
        Attempt::Delivered { .. } => None,
        Attempt::Failed { .. } => next_attempt_at(event.created_at, event.attempts, now_ms),
    };
    store.record_attempt(event, outcome, next, now_ms).await?;
    Ok(outcome)
}

/// What a delivery pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub delivered: usize,
    pub errors: Vec<String>,
}

/// Claims and attempts due events one at a time (or only `only`), at most `limit`, reading the
/// clock afresh for each so a lease never starts in the past. One failing event does not stop
/// the others.
pub async fn deliver_due<S: WebhookStore, B, C: Notifier>(deps: &Deps<'_, S, B, C>, only: Option<&str>, limit: usize) -> Pass {
    let mut pass = Pass::default();
    for _ in 0..limit {
        let now_ms = deps.clock_ms();
        let event = match deps.store.claim_delivery(only, now_ms).await {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(error) => {
                pass.errors.push(format!("outbox claim: {error}"));
                break;
            }
        };
        match attempt(&deps.at(now_ms), &event).await {
            Ok(Attempt::Delivered { .. }) => pass.delivered += 1,
            Ok(Attempt::Failed { .. }) => {}
            Err(error) => pass.errors.push(format!("delivery {}: {}", event.id, error.log_detail().unwrap_or(&error.to_string()))),
        }
        if only.is_some() {
            break;
        }
    }
    pass
}
