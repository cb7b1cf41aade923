//! The provider configs' storage port, and the encrypted blobs' (KV).

use super::catalog::ProviderId;
use super::model_list::Listing;
use super::record::{AgentRoute, ProviderRecord};
use crate::audit::AuditEvent;
use crate::outbox::OutboxEvent;
use crate::page::Cursor;
use crate::storage::{Precondition, StoreError};

/// A provider save's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// Another change won the race; nothing was written.
    Lost,
    Won {
        queued: bool,
    },
}

/// What resolving needs, read in one round trip: the agent's route, and the provider config
/// the resolution order picks (the requested provider, else the routed one, else the default).
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    pub route: Option<AgentRoute>,
    pub config: Option<ProviderRecord>,
}

/// The model ids a config's key was offered at its last validation that read a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedModels {
    pub ids: Vec<String>,
    pub truncated: bool,
    pub listed_at: i64,
}

#[allow(async_fn_in_trait)]
pub trait ProviderStore {
    async fn provider(&self, workspace_id: &str, provider: ProviderId) -> Result<Option<ProviderRecord>, StoreError>;
    async fn providers(&self, workspace_id: &str) -> Result<Vec<ProviderRecord>, StoreError>;
    /// Stores `record` as the provider's current config if its stored version is still
    /// `expected_version` (`None`: not configured yet) and it still points at `retired_blob`
    /// (a re-wrap in between moves the pointer), retiring that blob; the record
    /// becomes the default when `make_default` or when the workspace has none. `Lost` when
    /// another change won the race. The `listing` read at validation replaces the kept one (none:
    /// it is forgotten), and a `notification` commits in the same batch, queued only if the save
    /// won and the workspace has an endpoint.
    #[allow(clippy::too_many_arguments)]
    async fn save_provider(
        &self,
        record: &ProviderRecord,
        expected_version: Option<i64>,
        make_default: bool,
        retired_blob: Option<&str>,
        listing: Option<&Listing>,
        audit: &AuditEvent,
        notification: Option<&OutboxEvent>,
        precondition: &Precondition,
    ) -> Result<Saved, StoreError>;
    /// Removes the config of the precondition's workspace (retiring its blob) and returns it;
    /// `None` if not configured.
    async fn remove_provider(
        &self,
        precondition: &Precondition,
        provider: ProviderId,
        now_ms: i64,
        audit: &AuditEvent,
    ) -> Result<Option<ProviderRecord>, StoreError>;
    /// Records a validation result (`validated`'s status, time, reason and funds) on the config
    /// at its version (a replaced config is left alone), with the `listing` read, if one was.
    /// A key that just went bad brings its `invalidation` (the audit entry and the notification)
    /// into the same batch; the notification is queued only for a workspace with an endpoint,
    /// and the answer says whether it was.
    async fn set_provider_status(
        &self,
        precondition: &Precondition,
        validated: &ProviderRecord,
        listing: Option<&Listing>,
        invalidation: Option<(&AuditEvent, &OutboxEvent)>,
    ) -> Result<bool, StoreError>;
    /// The models kept for the config as it is now; `None` when none were listed for it.
    async fn offered_models(&self, workspace_id: &str, provider: ProviderId) -> Result<Option<OfferedModels>, StoreError>;
    /// Audits a resolve that fell back to metered, and queues its `notice` unless one was queued
    /// for the same agent (`agent_key`, '' for none) and provider within `quiet_ms`. Whether it
    /// was queued.
    async fn record_fallback(
        &self,
        audit: &AuditEvent,
        notice: &OutboxEvent,
        agent_key: &str,
        provider: ProviderId,
        quiet_ms: i64,
    ) -> Result<bool, StoreError>;
    async fn route(&self, workspace_id: &str, agent_id: &str) -> Result<Option<AgentRoute>, StoreError>;
    /// The workspace's routes, most recently changed first (by `updated_at`, then agent id),
    /// strictly after `after` when given, at most `limit`.
    async fn routes_after(&self, workspace_id: &str, after: Option<&Cursor>, limit: usize) -> Result<Vec<AgentRoute>, StoreError>;
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
