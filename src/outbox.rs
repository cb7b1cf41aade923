//! Outbound notifications: events a workspace's endpoint is told about, queued in the D1 outbox
//! in the batch of the action that causes them, then delivered (`webhooks::delivery`) with
//! Standard Webhooks signatures and retried with exponential backoff. A leaf: every domain that
//! causes a notification depends on it, and it on none of them.

use serde_json::{json, Value};

use crate::crypto::random::random_base62;
use crate::time::rfc3339;

pub const EVENT_TYPES: [&str; 7] = [
    "api_key.revoked",
    "api_key.rerolled",
    "api_key.expiring",
    "api_key.expired",
    "api_key.leaked",
    "provider_key.rotated",
    "provider_key.invalidated",
];
/// A delivery failing for this long is given up; the contract asks for at least 24 h.
pub const RETRY_FOR_MS: i64 = 26 * 3_600_000;
/// How long a claimed delivery is reserved for its claimant: well beyond one attempt's 10 s
/// timeout, so a slow attempt is never sent a second time by a concurrent run.
pub const LEASE_MS: i64 = 120_000;
const FIRST_RETRY_MS: i64 = 30_000;
const MAX_RETRY_MS: i64 = 3 * 3_600_000;

#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub id: String,
    pub workspace_id: String,
    pub event_type: &'static str,
    pub payload: Value,
    pub created_at: i64,
    pub attempts: i64,
    /// The claim this copy holds, when it was claimed for delivery.
    pub lease: Option<String>,
}

impl OutboxEvent {
    /// `data` must never hold a secret: ids, names, statuses and times only.
    pub fn new(workspace_id: &str, event_type: &'static str, data: Value, now_ms: i64) -> Self {
        OutboxEvent {
            id: format!("msg_{}", random_base62(24)),
            workspace_id: workspace_id.to_string(),
            event_type,
            payload: json!({"type": event_type, "timestamp": rfc3339(now_ms), "data": data}),
            created_at: now_ms,
            attempts: 0,
            lease: None,
        }
    }

    /// The body POSTed to the endpoint, byte for byte what is signed.
    pub fn body(&self) -> String {
        self.payload.to_string()
    }
}

/// When the next attempt is due after `attempts` failed ones: 30 s, 1 min, 2 min, ... capped
/// at 3 h; `None` once the event has been failing for longer than `RETRY_FOR_MS`.
pub fn next_attempt_at(created_at: i64, attempts: i64, now_ms: i64) -> Option<i64> {
    if now_ms - created_at >= RETRY_FOR_MS {
        return None;
    }
    let exponent = (attempts - 1).clamp(0, 20) as u32;
    let delay = FIRST_RETRY_MS.saturating_mul(1_i64 << exponent).min(MAX_RETRY_MS);
    Some(now_ms + delay)
}

/// What the outbox needs to know about an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Delivered { status: u16 },
    Failed { status: Option<u16> },
}

/// POSTs a signed notification; the Worker's adapter uses `fetch` with a timeout.
#[allow(async_fn_in_trait)]
pub trait Notifier {
    async fn post(&self, url: &str, headers: &[(String, String)], body: &str) -> Attempt;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_thirty_seconds_and_is_capped() {
        assert_eq!(next_attempt_at(0, 1, 1_000), Some(31_000));
        assert_eq!(next_attempt_at(0, 2, 1_000), Some(61_000));
        assert_eq!(next_attempt_at(0, 3, 1_000), Some(121_000));
        assert_eq!(next_attempt_at(0, 30, 1_000), Some(1_000 + 3 * 3_600_000));
    }

    #[test]
    fn retries_go_on_for_more_than_a_day_then_stop() {
        assert!(next_attempt_at(0, 40, 24 * 3_600_000).is_some());
        assert_eq!(next_attempt_at(0, 40, RETRY_FOR_MS), None);
    }

    #[test]
    fn the_payload_is_type_timestamp_and_data() {
        let event = OutboxEvent::new("ws_1", "api_key.revoked", json!({"key_id": "key_1"}), 1_795_369_214_000);
        assert_eq!(event.payload, json!({"type": "api_key.revoked", "timestamp": "2026-11-22T17:40:14Z", "data": {"key_id": "key_1"}}));
        assert!(event.id.starts_with("msg_"));
    }
}
