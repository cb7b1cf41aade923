//! The platform keys' storage port, and what it reads and writes in one round trip.

use super::authority::CreditChange;
use super::credits::{Calendar, Credits};
use super::usage::{Ask, Outcome};
use super::KeyRecord;
use super::Workspace;
use crate::audit::store::AuditStore;
use crate::audit::AuditEvent;
use crate::outbox::OutboxEvent;
use crate::page::Cursor;
use crate::storage::{Precondition, StoreError};

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
    /// What the use asks of a live key: judged, counted in its usage, and its credits spent,
    /// where the use is counted.
    pub ask: &'a Ask,
    /// When credits refill, for a store that spends them itself.
    pub calendar: Calendar,
}

/// What the probe found: the key and its workspace, the IP's failures in the current window,
/// and, for a live key with a rate limit, its counter after counting this use.
#[derive(Debug, Clone, Default)]
pub struct AuthFinding {
    pub found: Option<(KeyRecord, Workspace)>,
    pub ip_failures: u32,
    pub rate_hits: Option<RateHits>,
    /// The key authority recorded the use itself: nothing is written after the response.
    pub use_recorded: bool,
    /// How the use of a live key came out (counted in its usage); `None` when it was not counted.
    /// The found key's credits are its balance after this use.
    pub outcome: Option<Outcome>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RateHits {
    pub hits: u32,
    pub window_start: i64,
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
    /// The key with this hash and its workspace, counting nothing: what the key authority
    /// reads through.
    async fn key_with_workspace(&self, key_hash: &str) -> Result<Option<(KeyRecord, Workspace)>, StoreError>;
    /// The workspace and id of the key with this hash; they never change once the key exists.
    async fn location_of_key(&self, key_hash: &str) -> Result<Option<(String, String)>, StoreError>;
    /// The first use of `successor` (rerolled with grace from first use) starts the grace of
    /// the key it replaced: that key now stops `old_key_grace_ms` after `now_ms`, or sooner if
    /// it already did. Once only: the successor's mark is cleared in the same batch.
    async fn start_old_key_grace(&self, successor: &KeyRecord, now_ms: i64) -> Result<(), StoreError>;
    /// The key made by rerolling `key_id`, if it was rerolled.
    async fn successor_of(&self, key_id: &str) -> Result<Option<String>, StoreError>;
    /// Any workspace's key by id (ids are unique across workspaces).
    async fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>, StoreError>;
    /// Writes the usage rows one object of the key authority counted (`counted_by`: absolute
    /// counts per key and hour): a count is never lowered, so a row written twice, or late, is
    /// harmless, and a key's usage is the sum over the objects that counted it.
    async fn record_usage(&self, counted_by: &str, rows: &[crate::keys::authority::UsageRow]) -> Result<(), StoreError>;
    /// Writes the key authority's balances to the keys' copies.
    async fn record_credits(&self, balances: &[(String, Credits)]) -> Result<(), StoreError>;
    /// Changes a key's balance where it lives (the key authority's object, else D1), only if
    /// `precondition` holds: in the same batch in D1, and just before the object's change with
    /// the authority. `audit` (its detail's `remaining` set to the balance after) is recorded
    /// with the change, never without it. An unmetered key becomes metered. The balance after.
    async fn change_credits(
        &self,
        key: &KeyRecord,
        change: CreditChange,
        calendar: Calendar,
        now_ms: i64,
        precondition: &Precondition,
        audit: Option<&AuditEvent>,
    ) -> Result<Credits, StoreError>;
    /// A key's live balance as of `now_ms`, where it lives; `None` for an unmetered key.
    async fn live_credits(&self, key: &KeyRecord, calendar: Calendar, now_ms: i64) -> Result<Option<Credits>, StoreError>;
    /// Brings the catalogue's usage and balances of these keys (of one workspace) up to date
    /// with every use answered before this call, so a read that follows is exact; answers the
    /// live balances of the metered ones.
    async fn settle(&self, keys: &[KeyRecord], calendar: Calendar, now_ms: i64) -> Result<Vec<(String, Credits)>, StoreError>;
    /// The usage of these keys of the workspace in `[from, to)`, summed per bucket of `bucket_ms`
    /// (an hour or a day, on UTC boundaries): (key id, bucket start, counts).
    async fn usage(
        &self,
        workspace_id: &str,
        key_ids: &[String],
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<(String, i64, crate::keys::usage::Counts)>, StoreError>;
    /// Forgets usage of the hours before `before_ms`, at most `limit` rows; how many went.
    async fn prune_usage(&self, before_ms: i64, limit: usize) -> Result<usize, StoreError>;
    /// Writes the key authority's uses to `last_used_at`, in one statement.
    async fn record_uses(&self, uses: &[crate::keys::authority::KeyUse]) -> Result<(), StoreError>;
    /// Records a use; skipped by the store when one was recorded within the last minute.
    async fn touch_last_used(&self, key_id: &str, now_ms: i64) -> Result<(), StoreError>;
    /// The keys whose hash is listed (in `workspace_id` only, when given) that are live at
    /// `now_ms`: what a leak report will revoke, read before its writes are planned.
    async fn live_keys_by_hashes(
        &self,
        key_hashes: &[String],
        workspace_id: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<(KeyRecord, super::LeakPolicy)>, StoreError>;
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

/// A live key reported leaked, with what its workspace's policy does: written only while the
/// key is still live when the report commits.
#[derive(Debug, Clone)]
pub struct PlannedRevocation {
    pub key_id: String,
    pub workspace_id: String,
    /// The key stops working this long after the report (0: at once); `None`: it keeps working
    /// (the policy only notifies).
    pub grace_ms: Option<i64>,
    pub audit: Vec<AuditEvent>,
    /// Queued only when the key's workspace has a notification endpoint.
    pub notifications: Vec<OutboxEvent>,
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
