//! Storage ports. The domain speaks to these traits; `d1` implements them over the Worker's
//! bindings and `memory` over plain maps for native tests.

use crate::audit::AuditEvent;
use crate::error::ApiError;
use crate::keys::KeyRecord;
use crate::page::Cursor;
use crate::providers::catalog::ProviderId;
use crate::providers::record::{AgentRoute, KeyStatus, ProviderRecord};
use crate::workspaces::{Workspace, WorkspacePatch};

pub mod d1;
pub mod kv;
pub mod memory;

/// A storage failure. Its text goes to the log under the request id, never to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage: {0}")]
pub struct StoreError(pub String);

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::internal(error)
    }
}

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
pub trait KeyStore {
    /// Reads the key with the workspace and the IP's failures, and counts a use of a live,
    /// rate-limited key (unless the IP is blocked), as one atomic round trip.
    async fn authenticate(&self, probe: &AuthProbe<'_>) -> Result<AuthFinding, StoreError>;
    /// Counts one failed authentication from `ip` in the window starting at `window_start`;
    /// returns the failures of that window including this one.
    async fn record_auth_failure(&self, ip: &str, window_start: i64) -> Result<u32, StoreError>;
    async fn insert_key(&self, key: &KeyRecord, audit: &AuditEvent) -> Result<(), StoreError>;
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
    /// Revokes a live key now and records `audit` if this call revoked it; returns the key as
    /// stored afterwards, or `None` when the workspace has no such key.
    async fn revoke_key(&self, workspace_id: &str, id: &str, now_ms: i64, audit: &AuditEvent) -> Result<Option<KeyRecord>, StoreError>;
    /// Stores `successor` and ends `old_id` at `old_ends_at` (or earlier if it already ends
    /// sooner), only if `old_id` is still live (unrevoked, unexpired); `false` when it was not.
    async fn reroll_key(&self, old_id: &str, successor: &KeyRecord, old_ends_at: i64, now_ms: i64, audit: &AuditEvent) -> Result<bool, StoreError>;
    /// Revokes now every live (unrevoked, unexpired) key whose hash is listed (in `workspace_id` only, when given);
    /// returns the keys it revoked.
    async fn revoke_by_hashes(&self, key_hashes: &[String], workspace_id: Option<&str>, now_ms: i64) -> Result<Vec<KeyRecord>, StoreError>;
    /// Records a use; skipped by the store when one was recorded within the last minute.
    async fn touch_last_used(&self, key_id: &str, now_ms: i64) -> Result<(), StoreError>;
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError>;
}

/// Newest-first order shared by every list: (created_at, id) descending.
pub fn is_after(created_at: i64, id: &str, cursor: &Cursor) -> bool {
    (created_at, id) < (cursor.created_at, cursor.id.as_str())
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
    /// `expected_version` (`None`: not configured yet), retiring `retired_blob`; the record
    /// becomes the default when `make_default` or when the workspace has none. `false` when
    /// another change won the race.
    async fn save_provider(
        &self,
        record: &ProviderRecord,
        expected_version: Option<i64>,
        make_default: bool,
        retired_blob: Option<&str>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError>;
    /// Removes the config (retiring its blob) and returns it; `None` if not configured.
    async fn remove_provider(&self, workspace_id: &str, provider: ProviderId, now_ms: i64, audit: &AuditEvent) -> Result<Option<ProviderRecord>, StoreError>;
    /// Records a validation result for the config at `version` (a replaced config is left alone).
    async fn set_provider_status(&self, workspace_id: &str, provider: ProviderId, version: i64, status: KeyStatus, validated_at: i64) -> Result<(), StoreError>;
    async fn route(&self, workspace_id: &str, agent_id: &str) -> Result<Option<AgentRoute>, StoreError>;
    async fn save_route(&self, route: &AgentRoute) -> Result<(), StoreError>;
    async fn remove_route(&self, workspace_id: &str, agent_id: &str) -> Result<bool, StoreError>;
    async fn resolution(&self, workspace_id: &str, agent_id: Option<&str>, provider: Option<ProviderId>) -> Result<Resolution, StoreError>;
    /// Configs whose blob is sealed under another KEK than `current_kek`, at most `limit`.
    async fn configs_not_under(&self, current_kek: &str, limit: usize) -> Result<Vec<ProviderRecord>, StoreError>;
    /// Points a config at a re-wrapped copy of its blob, only if it still points at
    /// `old_blob` (a replacement in between wins); retires the old blob. `false` if it did not.
    async fn repoint_blob(&self, record: &ProviderRecord, old_blob: &str, new_blob: &str, new_kek: &str, now_ms: i64) -> Result<bool, StoreError>;
}

/// Encrypted blobs by name (KV). Names are never reused, so a blob is written once.
#[allow(async_fn_in_trait)]
pub trait BlobStore {
    async fn put_blob(&self, name: &str, blob: &str) -> Result<(), StoreError>;
    async fn get_blob(&self, name: &str) -> Result<Option<String>, StoreError>;
    async fn delete_blob(&self, name: &str) -> Result<(), StoreError>;
}
