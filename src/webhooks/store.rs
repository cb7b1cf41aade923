//! The webhooks' storage port: inbound secrets and receipts, the endpoint and the outbox.

use crate::audit::AuditEvent;
use crate::outbox::{Attempt, OutboxEvent};
use crate::storage::{Precondition, StoreError};

/// A sealed secret as stored (a webhook secret or a notification endpoint's secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub workspace_id: String,
    pub version: i64,
    pub sealed: String,
    pub kek_id: String,
    pub created_at: i64,
    /// The never reused name its encryption binds (`sealed_name` in D1): an endpoint's version
    /// restarts at 1 after a removal, so the row's key alone could be reused. `None` for a
    /// secret stored before names were bound, until the cron's re-wrap gives it one.
    pub name: Option<String>,
}

/// A workspace's notification endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub secret: SealedSecret,
}

/// Who processes a webhook-id: this delivery, or one that came first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptClaim {
    Won,
    /// The first delivery's answer.
    Answered {
        status: u16,
        body: String,
    },
    /// The first delivery is still being processed.
    Pending,
}

/// A receipt still pending after this long was claimed by a delivery that died.
pub const STALE_CLAIM_MS: i64 = 60_000;

#[allow(async_fn_in_trait)]
pub trait WebhookStore {
    /// The inbound secrets still honoured at `now_ms`: the current one and any in grace.
    async fn webhook_secrets(&self, workspace_id: &str, now_ms: i64) -> Result<Vec<SealedSecret>, StoreError>;
    async fn latest_webhook_secret_version(&self, workspace_id: &str) -> Result<i64, StoreError>;
    /// Stores `secret` as current and lets the previous ones expire by `grace_end` (or sooner,
    /// if they already did); `false` when another rotation took that version first.
    async fn rotate_webhook_secret(
        &self,
        secret: &SealedSecret,
        grace_end: i64,
        audit: &AuditEvent,
        precondition: &Precondition,
    ) -> Result<bool, StoreError>;
    /// Claims `webhook_id` for this delivery in one conditional insert; the insert decides.
    async fn claim_receipt(&self, workspace_id: &str, webhook_id: &str, now_ms: i64) -> Result<ReceiptClaim, StoreError>;
    async fn finish_receipt(&self, workspace_id: &str, webhook_id: &str, status: u16, body: &str) -> Result<(), StoreError>;
    /// Forgets a claim whose processing failed inside keywarden, so a retry is processed.
    async fn release_receipt(&self, workspace_id: &str, webhook_id: &str) -> Result<(), StoreError>;
    async fn endpoint(&self, workspace_id: &str) -> Result<Option<Endpoint>, StoreError>;
    /// Stores the endpoint if the stored one is still at `expected_version` (`None`: there is
    /// none); `false` when a concurrent change won.
    async fn save_endpoint(
        &self,
        endpoint: &Endpoint,
        expected_version: Option<i64>,
        audit: &AuditEvent,
        precondition: &Precondition,
    ) -> Result<bool, StoreError>;
    async fn remove_endpoint(&self, precondition: &Precondition, audit: &AuditEvent) -> Result<bool, StoreError>;
    /// Queues `event` if the workspace has an endpoint; `false` when it has none.
    async fn enqueue(&self, event: &OutboxEvent, now_ms: i64) -> Result<bool, StoreError>;
    /// Reserves the next due delivery (or the one `only`) for `LEASE_MS` under a fresh lease; a
    /// delivery another run holds is not returned, so concurrent runs never send one twice.
    async fn claim_delivery(&self, only: Option<&str>, now_ms: i64) -> Result<Option<OutboxEvent>, StoreError>;
    /// Records an attempt of a claimed event (delivered, retry at `next_attempt_at`, or given up
    /// with `None`), only while its lease is still the one the claim got.
    async fn record_attempt(
        &self,
        event: &OutboxEvent,
        attempt: Attempt,
        next_attempt_at: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    Webhook,
    Endpoint,
}

impl SecretKind {
    /// The kind bound into the secret's encryption context.
    pub fn context_kind(self) -> &'static str {
        match self {
            SecretKind::Webhook => "webhook",
            SecretKind::Endpoint => "notify",
        }
    }
}
