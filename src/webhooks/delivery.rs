//! Delivering queued notifications: sign with the endpoint's secret, POST, record the attempt.

use super::outbox::{next_attempt_at, Attempt, Notifier, OutboxEvent};
use super::secrets;
use crate::error::ApiError;
use crate::store::{SecretKind, WebhookStore};
use crate::vault::Keks;

/// Attempts one claimed event now. An endpoint removed since the event was queued ends it.
pub async fn attempt(store: &impl WebhookStore, notifier: &impl Notifier, keks: &Keks, event: &OutboxEvent, now_ms: i64) -> Result<Attempt, ApiError> {
    let Some(endpoint) = store.endpoint(&event.workspace_id).await? else {
        let gave_up = Attempt::Failed { status: None };
        store.record_attempt(&event.id, gave_up, None, now_ms).await?;
        return Ok(gave_up);
    };
    let secret = secrets::open(keks, SecretKind::Endpoint, &endpoint.secret)?;
    let body = event.body();
    let timestamp = now_ms / 1000;
    let headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("webhook-id".to_string(), event.id.clone()),
        ("webhook-timestamp".to_string(), timestamp.to_string()),
        ("webhook-signature".to_string(), secret.sign(&event.id, timestamp, body.as_bytes())),
    ];
    let outcome = notifier.post(&endpoint.url, &headers, &body).await;
    let next = match outcome {
        Attempt::Delivered { .. } => None,
        Attempt::Failed { .. } => next_attempt_at(event.created_at, event.attempts, now_ms),
    };
    store.record_attempt(&event.id, outcome, next, now_ms).await?;
    Ok(outcome)
}

/// Claims and attempts what is due (or only `only`), at most `limit`; returns how many were
/// delivered.
pub async fn deliver_due(store: &impl WebhookStore, notifier: &impl Notifier, keks: &Keks, only: Option<&str>, limit: usize, now_ms: i64) -> Result<usize, ApiError> {
    let mut delivered = 0;
    for event in store.claim_deliveries(only, now_ms, limit).await? {
        if matches!(attempt(store, notifier, keks, &event, now_ms).await?, Attempt::Delivered { .. }) {
            delivered += 1;
        }
    }
    Ok(delivered)
}
