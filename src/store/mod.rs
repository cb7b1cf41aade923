//! Storage ports. The domain speaks to these traits; `sql` implements them once in SQL, which
//! `d1` runs over the Worker's binding and `sqlite` over real SQLite in native tests.

use crate::audit::AuditEvent;
use crate::keys::KeyRecord;
use crate::page::Cursor;
use crate::providers::catalog::ProviderId;
use crate::providers::record::{AgentRoute, KeyStatus, ProviderRecord};
use crate::webhooks::outbox::{Attempt, OutboxEvent};
use crate::workspaces::{Workspace, WorkspacePatch};

pub mod d1;
pub mod kv;
pub mod sql;
#[cfg(not(target_arch = "wasm32"))]
pub mod sqlite;

pub use crate::storage::{Precondition, Refusal, StoreError};

#[allow(async_fn_in_trait)]
pub trait WorkspaceStore {
    /// Stores the workspace, its owner key and the audit entry together, or none of them.
    async fn insert_workspace(&self, workspace: &Workspace, owner_key: &KeyRecord, audit: &AuditEvent) -> Result<(), StoreError>;
    async fn workspace(&self, id: &str) -> Result<Option<Workspace>, StoreError>;
    /// Newest first, strictly after `after` when given, at most `limit`.
    async fn workspaces_after(&self, after: Option<&Cursor>, limit: usize) -> Result<Vec<Workspace>, StoreError>;
    /// Applies the set fields in one statement; `None` when there is no such workspace.
    async fn update_workspace(&self, id: &str, patch: &WorkspacePatch) -> Result<Option<Workspace>, StoreError>;
}

/// What authenticating one presented key reads, in one round trip.
#[derive(Debug, Clone)]
pub struct AuthProbe<'a> {
    pub key_hash: &'a str,
    /// The client address whose failed-attempt window is read; `None` skips that read.
    pub ip: Option<&'a str>,
    pub ip_window_start: i64,
    pub now_ms: i64,
    /// Counts the use against the key's rate limit only if the key is in this workspace
    /// (verify must not spend another workspace's budget); `None`: any workspace.
    pub count_use_in: Option<&'a str>,
}

/// What the probe found: the key and its workspace, the IP's failures in the current window,
/// and, for a live key with a rate limit, its counter after counting this use.
#[derive(Debug, Clone, Default)]
pub struct AuthFinding {
    pub found: Option<(KeyRecord, Workspace)>,
    pub ip_failures: u32,
    pub rate_hits: Option<RateHits>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateHits {
    pub hits: u32,
    pub window_start: i64,
}

/// Whether a key is usable at `now_ms`: not revoked (a future `revoked_at` is a grace period
/// still running) and not expired.
pub fn is_live(key: &KeyRecord, now_ms: i64) -> bool {
    key.revoked_at.is_none_or(|at| at > now_ms) && key.expires_at.is_none_or(|at| at > now_ms)
}

#[allow(async_fn_in_trait)]
pub trait AuditStore {
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError>;
    /// Newest first: a workspace's entries, or the operator-level ones for `None`; strictly
    /// older than the entry at position `before` when given. Each comes with its position.
    async fn audit_before(
        &self,
        workspace_id: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, AuditEvent)>, StoreError>;
}

#[allow(async_fn_in_trait)]
pub trait KeyStore: AuditStore {
    /// Reads the key with the workspace and the IP's failures, and counts a use of a live,
    /// rate-limited key (unless the IP is blocked), as one atomic round trip.
    async fn authenticate(&self, probe: &AuthProbe<'_>) -> Result<AuthFinding, StoreError>;
    /// Counts one failed authentication from `ip` in the window starting at `window_start`;
    /// returns the failures of that window including this one.
    async fn record_auth_failure(&self, ip: &str, window_start: i64) -> Result<u32, StoreError>;
    async fn insert_key(&self, key: &KeyRecord, audit: &AuditEvent, precondition: &Precondition) -> Result<(), StoreError>;
    async fn key(&self, workspace_id: &str, id: &str) -> Result<Option<KeyRecord>, StoreError>;
    /// Newest first after `after`; revoked keys (grace ended) only when `include_revoked`.
    async fn keys_after(
        &self,
        workspace_id: &str,
        include_revoked: bool,
        now_ms: i64,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, StoreError>;
    /// Revokes a live key of the precondition's workspace as of the commit, and records `audit`
    /// if this call revoked it; `None` when the workspace has no such key.
    /// In the same batch, queues `notification` (its data's `revoked_at` set to the revocation's
    /// time) for the workspace's endpoint if it has one and this call revoked the key.
    async fn revoke_key(
        &self,
        precondition: &Precondition,
        id: &str,
        now_ms: i64,
        audit: &AuditEvent,
        notification: &OutboxEvent,
    ) -> Result<Option<Revocation>, StoreError>;
    /// Stores `successor` and ends `old_id` `grace_ms` after the commit (or earlier if it
    /// already ends sooner), only if `old_id` is still live when it commits; returns when the
    /// old key stops working, or `None` when it was no longer live. A successful reroll queues
    /// `notification` (its data's `old_key_stops_at` set) in the same batch, for a workspace
    /// with an endpoint.
    #[allow(clippy::too_many_arguments)]
    async fn reroll_key(
        &self,
        old_id: &str,
        successor: &KeyRecord,
        grace_ms: i64,
        now_ms: i64,
        audit: &AuditEvent,
        notification: &OutboxEvent,
        precondition: &Precondition,
    ) -> Result<Option<Reroll>, StoreError>;
    /// Records a use; skipped by the store when one was recorded within the last minute.
    async fn touch_last_used(&self, key_id: &str, now_ms: i64) -> Result<(), StoreError>;
    /// The keys whose hash is listed (in `workspace_id` only, when given) that are live at
    /// `now_ms`: what a leak report will revoke, read before its writes are planned.
    async fn live_keys_by_hashes(
        &self,
        key_hashes: &[String],
        workspace_id: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<KeyRecord>, StoreError>;
    /// Commits a leak report in one atomic batch of multi-row statements, whatever its size:
    /// revokes (as leaked) those of the planned keys still live, with exactly their audit entries
    /// and queued notifications (those of a key something else revoked in between are dropped),
    /// and the report's summary entry with the ids it revoked. Returns the keys revoked and the
    /// listed hashes whose keys are now revoked because of a leak report, this one or an earlier.
    async fn revoke_leaked(&self, plan: &LeakPlan<'_>) -> Result<LeakRevocation, StoreError>;
}

/// `api_keys.revoked_reason` of a key revoked by a leak report.
pub const REVOKED_AS_LEAKED: &str = "leaked";

/// The writes of one leak report, planned from the live keys it names.
#[derive(Debug, Clone)]
pub struct LeakPlan<'a> {
    /// The hashes of every well-formed reported token, for the labels.
    pub key_hashes: &'a [String],
    pub workspace_id: Option<&'a str>,
    pub now_ms: i64,
    pub revocations: Vec<PlannedRevocation>,
    /// The report's own entry; the store sets its detail's `revoked` to the ids it revoked.
    pub summary: Option<AuditEvent>,
}

/// A live key to revoke, with what its revocation brings: written only if it is revoked.
#[derive(Debug, Clone)]
pub struct PlannedRevocation {
    pub key_id: String,
    pub audit: Vec<AuditEvent>,
    /// Queued only when the key's workspace has a notification endpoint.
    pub notification: OutboxEvent,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeakRevocation {
    pub revoked: Vec<KeyRecord>,
    pub leaked_hashes: Vec<String>,
}

/// A revoke's outcome: the key as stored afterwards, and whether this call revoked it (a
/// repeat finds it revoked already and answers the first revocation's time).
#[derive(Debug, Clone, PartialEq)]
pub struct Revocation {
    pub key: KeyRecord,
    pub revoked_now: bool,
    /// The id of the notification queued with it, for the first delivery attempt.
    pub queued: Option<String>,
}

/// A reroll's outcome: when the old key stops, and the notification queued with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reroll {
    pub old_key_stops_at: i64,
    pub queued: Option<String>,
}

/// What resolving needs, read in one round trip: the agent's route, and the provider config
/// the resolution order picks (the requested provider, else the routed one, else the default).
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    pub route: Option<AgentRoute>,
    pub config: Option<ProviderRecord>,
}

#[allow(async_fn_in_trait)]
pub trait ProviderStore {
    async fn provider(&self, workspace_id: &str, provider: ProviderId) -> Result<Option<ProviderRecord>, StoreError>;
    async fn providers(&self, workspace_id: &str) -> Result<Vec<ProviderRecord>, StoreError>;
    /// Stores `record` as the provider's current config if its stored version is still
    /// `expected_version` (`None`: not configured yet) and it still points at `retired_blob`
    /// (a re-wrap in between moves the pointer), retiring that blob; the record
    /// becomes the default when `make_default` or when the workspace has none. `false` when
    /// another change won the race.
    async fn save_provider(
        &self,
        record: &ProviderRecord,
        expected_version: Option<i64>,
        make_default: bool,
        retired_blob: Option<&str>,
        audit: &AuditEvent,
        precondition: &Precondition,
    ) -> Result<bool, StoreError>;
    /// Removes the config of the precondition's workspace (retiring its blob) and returns it;
    /// `None` if not configured.
    async fn remove_provider(
        &self,
        precondition: &Precondition,
        provider: ProviderId,
        now_ms: i64,
        audit: &AuditEvent,
    ) -> Result<Option<ProviderRecord>, StoreError>;
    /// Records a validation result for the config at `version` (a replaced config is left alone).
    async fn set_provider_status(
        &self,
        precondition: &Precondition,
        provider: ProviderId,
        version: i64,
        status: KeyStatus,
        validated_at: i64,
    ) -> Result<(), StoreError>;
    async fn route(&self, workspace_id: &str, agent_id: &str) -> Result<Option<AgentRoute>, StoreError>;
    /// Stores the route and its audit entry together.
    async fn save_route(&self, route: &AgentRoute, audit: &AuditEvent, precondition: &Precondition) -> Result<(), StoreError>;
    /// Removes the route, recording `audit` only if there was one to remove.
    async fn remove_route(&self, precondition: &Precondition, agent_id: &str, audit: &AuditEvent) -> Result<bool, StoreError>;
    /// Reads what resolving needs for the precondition's workspace, only if the precondition
    /// still holds: a key revoked while its resolve was in flight gets no secret.
    async fn resolution(
        &self,
        precondition: &Precondition,
        agent_id: Option<&str>,
        provider: Option<ProviderId>,
    ) -> Result<Resolution, StoreError>;
    /// Configs whose blob is sealed under another KEK than `current_kek`, or whose blob name is
    /// of before names were bound (outside `BOUND_BLOB_PREFIX`), at most `limit`.
    async fn configs_not_under(&self, current_kek: &str, limit: usize) -> Result<Vec<ProviderRecord>, StoreError>;
    /// Points a config at a re-wrapped copy of its blob, only if it still points at
    /// `old_blob` (a replacement in between wins); retires the old blob. `false` if it did not.
    async fn repoint_blob(
        &self,
        record: &ProviderRecord,
        old_blob: &str,
        new_blob: &str,
        new_kek: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
}

/// Encrypted blobs by name (KV). Names are never reused, so a blob is written once.
#[allow(async_fn_in_trait)]
pub trait BlobStore {
    async fn put_blob(&self, name: &str, blob: &str) -> Result<(), StoreError>;
    async fn get_blob(&self, name: &str) -> Result<Option<String>, StoreError>;
    async fn delete_blob(&self, name: &str) -> Result<(), StoreError>;
}

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

/// Bounded clean-up work for the scheduled handler; each call is idempotent.
#[allow(async_fn_in_trait)]
pub trait HousekeepingStore {
    /// Deletes failed-attempt and rate-limit counters of windows that ended before `now_ms`
    /// (and those of keys whose revocation took effect), at most `limit` of each.
    async fn prune_counters(&self, now_ms: i64, limit: usize) -> Result<usize, StoreError>;
    /// Deletes webhook receipts and finished (delivered or given up) notifications older than
    /// `before`, at most `limit` of each.
    async fn prune_history(&self, before: i64, limit: usize) -> Result<usize, StoreError>;
    /// Retired blob names whose grace ended before `retired_before`, at most `limit`.
    async fn retired_blobs_due(&self, retired_before: i64, limit: usize) -> Result<Vec<String>, StoreError>;
    async fn forget_retired_blobs(&self, names: &[String]) -> Result<(), StoreError>;
    /// Configs neither validated nor checked since `due_before`, oldest first, at most `limit`.
    async fn providers_due_for_validation(&self, due_before: i64, limit: usize) -> Result<Vec<ProviderRecord>, StoreError>;
    /// Takes a config for re-validation if it is still due, marking it checked at `now_ms`
    /// (its `validated_at` moves only with a conclusive answer); of concurrent runs, one wins.
    async fn claim_revalidation(&self, record: &ProviderRecord, due_before: i64, now_ms: i64) -> Result<bool, StoreError>;
    /// Sealed webhook and endpoint secrets under another KEK than `current_kek`, or without a
    /// `name` (sealed before names were bound).
    async fn secrets_not_under(&self, current_kek: &str, limit: usize) -> Result<Vec<(SecretKind, SealedSecret)>, StoreError>;
    /// Replaces a sealed secret (and its name) by its re-wrapped form, only if it is still `old_sealed`.
    async fn replace_sealed(&self, kind: SecretKind, secret: &SealedSecret, old_sealed: &str) -> Result<bool, StoreError>;
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
