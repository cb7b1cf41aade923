//! The key authority, as the rest of the API sees it: where authentication asks, and how a
//! write that changes what authentication reads tells it.
//!
//! With no authority configured (`KEY_AUTHORITY=catalogue`), authentication reads D1 directly
//! as it always did. With one, each workspace's keys are answered by its own object
//! ([`object::Authority`] is its logic), and every write that could make a live key dead, or a
//! writable workspace read-only, holds what it changes in the object first, commits in D1, and
//! then releases it with D1's fresh record. A held key is read through to D1, so no
//! authentication can see the old record once the write has committed, whether or not the
//! release arrives.

pub mod object;

use std::future::Future;

use futures_util::future::LocalBoxFuture;

pub use object::*;

use super::credits::Credits;
use super::store::{AuthFinding, AuthProbe};
use super::KeyRecord;
use crate::audit::AuditEvent;
use crate::crypto::random::random_base62;
use crate::storage::StoreError;

/// What a write is about to change in one workspace: some of its keys, or the workspace record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub workspace_id: String,
    /// The ids of the keys (an id also chooses the object of a sharded workspace).
    pub key_ids: Vec<String>,
    pub whole_workspace: bool,
}

impl Change {
    /// The keys `(workspace_id, key_id)` pairs name, one change per workspace.
    pub fn keys<'a>(keys: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<Change> {
        let mut changes: Vec<Change> = Vec::new();
        for (workspace_id, key_id) in keys {
            match changes.iter_mut().find(|change| change.workspace_id == workspace_id) {
                Some(change) => change.key_ids.push(key_id.to_string()),
                None => changes.push(Change {
                    workspace_id: workspace_id.to_string(),
                    key_ids: vec![key_id.to_string()],
                    whole_workspace: false,
                }),
            }
        }
        changes
    }

    pub fn workspace(workspace_id: &str) -> Vec<Change> {
        vec![Change { workspace_id: workspace_id.to_string(), key_ids: Vec::new(), whole_workspace: true }]
    }
}

/// The objects that own the workspaces' keys, reached from the Worker.
pub trait KeyAuthority {
    /// What authentication reads (as `KeyStore::authenticate`), from the key's own object:
    /// the key and its workspace, and its counter after this use. The object records the use,
    /// so the finding says `use_recorded`.
    fn authenticate<'a>(&'a self, probe: &'a AuthProbe<'a>) -> LocalBoxFuture<'a, Result<AuthFinding, StoreError>>;
    /// The key's live balance, after `change` if one is given, from the object that serves it
    /// (which then has it); `None` for an unmetered key. The object records `audit` with the
    /// change (see `Authority::change_credits_audited`).
    fn credits<'a>(
        &'a self,
        key: &'a KeyRecord,
        change: Option<CreditChange>,
        now_ms: i64,
        audit: Option<&'a AuditEvent>,
    ) -> LocalBoxFuture<'a, Result<Option<Credits>, StoreError>>;
    /// Brings the catalogue's usage and balances of these keys of the workspace up to date
    /// with every use their objects answered before this call; answers the live balances of
    /// those the objects serve (a metered key not among them has a current copy in D1).
    fn settle<'a>(
        &'a self,
        workspace_id: &'a str,
        key_ids: &'a [String],
        now_ms: i64,
    ) -> LocalBoxFuture<'a, Result<Vec<(String, Credits)>, StoreError>>;
    /// Tells the IP guard that `ip` is blocked until `until_ms` (its 10th failure).
    fn block_ip<'a>(&'a self, ip: &'a str, until_ms: i64) -> LocalBoxFuture<'a, ()>;
    /// Holds the change's targets for the writer `hold_id` (one per write).
    fn hold<'a>(&'a self, change: &'a Change, hold_id: &'a str) -> LocalBoxFuture<'a, Result<(), StoreError>>;
    /// Releases `hold_id`'s holds, the objects reading the targets' records afresh.
    fn release<'a>(&'a self, change: &'a Change, hold_id: &'a str) -> LocalBoxFuture<'a, Result<(), StoreError>>;
}

/// Runs `write` with `changes` held in their objects: nothing is written unless every hold was
/// acknowledged (a failed hold is the write's error), and the releases follow the write
/// whatever its outcome. A release that fails leaves its hold: the object keeps reading that
/// key through until the alarm releases it from D1, so the write's answer stands.
pub async fn changing<T, E: From<StoreError>>(
    authority: Option<&dyn KeyAuthority>,
    changes: &[Change],
    write: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let Some(authority) = authority else { return write.await };
    // Each write holds under its own id, so one writer's release never ends another's hold.
    let hold_id = format!("hold_{}", random_base62(20));
    for (tried, change) in changes.iter().enumerate() {
        if let Err(error) = authority.hold(change, &hold_id).await {
            // Nothing is written; what was held (a change may have reached some of its objects)
            // is released now rather than by the alarm.
            for change in &changes[..=tried] {
                let _ = authority.release(change, &hold_id).await;
            }
            return Err(error.into());
        }
    }
    let outcome = write.await;
    for change in changes {
        let _ = authority.release(change, &hold_id).await;
    }
    outcome
}
