//! The scheduled handler's work, bounded per run and safe to run twice at once: every task
//! claims or conditionally changes what it touches, so a second run finds nothing to redo.
//! One failing task or item is reported and skipped; it never stops the others.

use crate::audit::AuditEvent;
use crate::deps::Deps;
use crate::error::ApiError;
use crate::keys::store::KeyStore;
use crate::outbox::Notifier;
use crate::providers::service;
use crate::providers::store::{BlobStore, ProviderStore};
use crate::providers::validation::ProviderClient;
use crate::providers::ProviderRecord;
use crate::storage::{Precondition, StoreError};
use crate::vault::{self, Keks};
use crate::webhooks::store::{SealedSecret, SecretKind, WebhookStore};
use crate::webhooks::{delivery, secrets};

/// How much each task may do in one run; the cron comes back in five minutes.
pub const PER_TASK: usize = 25;
pub const REVALIDATE_AFTER_MS: i64 = 24 * 3_600_000;
/// A replaced blob stays readable this long for resolves that read the old pointer.
pub const BLOB_GRACE_MS: i64 = 15 * 60_000;
pub const HISTORY_KEPT_MS: i64 = 7 * 24 * 3_600_000;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub counters_pruned: usize,
    pub history_pruned: usize,
    pub blobs_deleted: usize,
    pub revalidated: usize,
    pub invalidated: usize,
    pub rewrapped: usize,
    pub delivered: usize,
    /// Keys whose `api_key.expiring` or `api_key.expired` notice this run queued.
    pub expiry_notices: usize,
    /// What failed, for the log; never a secret.
    pub errors: Vec<String>,
}

impl Report {
    fn record<T: Default>(&mut self, task: &str, outcome: Result<T, ApiError>) -> T {
        outcome.unwrap_or_else(|error| {
            self.errors.push(format!("{task}: {}", error.log_detail().unwrap_or(&error.to_string())));
            T::default()
        })
    }
}

/// The clock is read afresh by each task (`Deps::clock_ms`).
pub async fn run<S, B, C>(deps: &Deps<'_, S, B, C>) -> Report
where
    S: KeyStore + ProviderStore + WebhookStore + HousekeepingStore,
    B: BlobStore,
    C: ProviderClient + Notifier,
{
    let mut report = Report::default();
    let store = deps.store;
    report.counters_pruned = report.record("counters", store.prune_counters(deps.clock_ms(), PER_TASK * 20).await.map_err(ApiError::from));
    report.history_pruned =
        report.record("history", store.prune_history(deps.clock_ms() - HISTORY_KEPT_MS, PER_TASK * 20).await.map_err(ApiError::from));
    let usage_before = deps.clock_ms() - crate::keys::usage::KEPT_DAYS * crate::keys::usage::DAY_MS;
    report.history_pruned += report.record("usage", store.prune_usage(usage_before, PER_TASK * 20).await.map_err(ApiError::from));
    report.blobs_deleted = report.record("blobs", delete_retired_blobs(store, deps.blobs, deps.clock_ms()).await);
    let (revalidated, invalidated) = revalidate_stale(deps, &mut report.errors).await;
    report.revalidated = revalidated;
    report.invalidated = invalidated;
    let provider_keys = report.record("rewrap", service::rewrap_stale(deps, PER_TASK).await);
    let secrets = match deps.keks() {
        Ok(keks) => rewrap_secrets(store, keks, &mut report.errors).await,
        Err(error) => report.record("rewrap secrets", Err(error)),
    };
    report.rewrapped = provider_keys + secrets;
    report.expiry_notices =
        report.record("expiry notices", store.queue_expiry_notices(deps.clock_ms(), PER_TASK * 20).await.map_err(ApiError::from));
    let pass = delivery::deliver_due(deps, None, PER_TASK).await;
    report.delivered = pass.delivered;
    report.errors.extend(pass.errors);
    report
}

async fn delete_retired_blobs(store: &impl HousekeepingStore, blobs: &impl BlobStore, now_ms: i64) -> Result<usize, ApiError> {
    let due = store.retired_blobs_due(now_ms - BLOB_GRACE_MS, PER_TASK).await?;
    for name in &due {
        blobs.delete_blob(name).await?;
    }
    store.forget_retired_blobs(&due).await?;
    Ok(due.len())
}

/// Re-validates keys not checked for 24 h. A key that went bad is recorded, audited as
/// `provider.invalidated` and notified, so resolve falls back to metered from then on.
async fn revalidate_stale<S, B, C>(deps: &Deps<'_, S, B, C>, errors: &mut Vec<String>) -> (usize, usize)
where
    S: KeyStore + ProviderStore + WebhookStore + HousekeepingStore,
    B: BlobStore,
    C: ProviderClient,
{
    let store = deps.store;
    let (mut revalidated, mut invalidated) = (0, 0);
    let due_before = deps.clock_ms() - REVALIDATE_AFTER_MS;
    let due = match store.providers_due_for_validation(due_before, PER_TASK).await {
        Ok(due) => due,
        Err(error) => {
            errors.push(format!("revalidate: {error}"));
            return (0, 0);
        }
    };
    for record in due {
        let now_ms = deps.clock_ms();
        let outcome: Result<bool, ApiError> = async {
            if !store.claim_revalidation(&record, due_before, now_ms).await? {
                return Ok(false);
            }
            let precondition = Precondition::unconditional(&record.workspace_id);
            let invalidated_by_cron = AuditEvent::new(Some(&record.workspace_id), "provider.invalidated", now_ms);
            let result = service::revalidate(&deps.at(now_ms), &precondition, record.provider, invalidated_by_cron).await?;
            // Queued with the status; the cron's deliveries come later in this run.
            if result.notice.is_some() {
                invalidated += 1;
            }
            Ok(true)
        }
        .await;
        match outcome {
            Ok(true) => revalidated += 1,
            Ok(false) => {}
            Err(error) => errors.push(format!(
                "revalidate {}/{}: {}",
                record.workspace_id,
                record.provider.as_str(),
                error.log_detail().unwrap_or(&error.to_string())
            )),
        }
    }
    (revalidated, invalidated)
}

/// Re-wraps webhook and endpoint secrets still sealed under an older KEK, and gives those sealed
/// before names were bound a name, binding it.
async fn rewrap_secrets(store: &impl HousekeepingStore, keks: &Keks, errors: &mut Vec<String>) -> usize {
    let stale = match store.secrets_not_under(keks.current_id(), PER_TASK).await {
        Ok(stale) => stale,
        Err(error) => {
            errors.push(format!("rewrap secrets: {error}"));
            return 0;
        }
    };
    let mut moved = 0;
    for (kind, secret) in stale {
        let name = secret.name.clone().unwrap_or_else(|| secrets::new_sealed_name(kind, &secret.workspace_id, secret.version));
        let rewrapped = match vault::rewrap(keks, &secret.sealed, &secrets::context(kind, &secret), &name) {
            Ok(Some(rewrapped)) => rewrapped,
            Ok(None) => continue,
            Err(error) => {
                errors.push(format!("rewrap {} secret of {}: {error}", kind.context_kind(), secret.workspace_id));
                continue;
            }
        };
        let updated = SealedSecret { sealed: rewrapped, kek_id: keks.current_id().to_string(), name: Some(name), ..secret.clone() };
        match store.replace_sealed(kind, &updated, &secret.sealed).await {
            Ok(true) => moved += 1,
            Ok(false) => {}
            Err(error) => errors.push(format!("rewrap {}: {error}", secret.workspace_id)),
        }
    }
    moved
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
    /// Queues `api_key.expiring` and `api_key.expired` for the keys due them at `now_ms` (at
    /// most `limit` of each, for workspaces with an endpoint) and marks those keys, in one
    /// atomic batch: however many runs, each key gets each notice once. Returns how many keys
    /// were marked.
    async fn queue_expiry_notices(&self, now_ms: i64, limit: usize) -> Result<usize, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::webhooks::signature::WebhookSecret;
    use crate::webhooks::store::Endpoint;
    use futures_executor::block_on;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    /// A secret as stored before names were bound: no name, an unbound envelope.
    fn sealed_of_before(keks: &Keks, kind: SecretKind, secret: &WebhookSecret) -> SealedSecret {
        let mut stored = SealedSecret {
            workspace_id: "ws_old".into(),
            version: 1,
            sealed: String::new(),
            kek_id: "k1".into(),
            created_at: 0,
            name: None,
        };
        stored.sealed = vault::seal_unbound(keks, secret.expose().as_bytes(), &secrets::context(kind, &stored));
        stored
    }

    #[test]
    fn secrets_sealed_before_names_were_bound_open_and_the_rewrap_names_and_binds_them_once() {
        let (store, keks) = (SqliteStore::default(), Keks::parse(K1).unwrap());
        let (inbound, outbound) = (WebhookSecret::generate(), WebhookSecret::generate());
        store.put_webhook_secret_row(&sealed_of_before(&keks, SecretKind::Webhook, &inbound), None);
        let endpoint =
            Endpoint { url: "https://hooks.example.com/k".into(), secret: sealed_of_before(&keks, SecretKind::Endpoint, &outbound) };
        store.put_endpoint_row(&endpoint);
        let read = |kind, stored: &SealedSecret| secrets::open(&keks, kind, stored).map(|s| s.expose().to_string());
        assert_eq!(read(SecretKind::Webhook, &store.webhook_secret_rows()[0]), Ok(inbound.expose().to_string()));

        let mut errors = Vec::new();
        assert_eq!(block_on(rewrap_secrets(&store, &keks, &mut errors)), 2, "{errors:?}");
        let upgraded = [
            (SecretKind::Webhook, store.webhook_secret_rows()[0].clone()),
            (SecretKind::Endpoint, block_on(store.endpoint("ws_old")).unwrap().unwrap().secret),
        ];
        for ((kind, stored), plain) in upgraded.iter().zip([&inbound, &outbound]) {
            assert!(stored.name.as_deref().is_some_and(|n| n.starts_with(&format!("{}/ws_old/1-", kind.context_kind()))), "{stored:?}");
            assert!(vault::binds_name(&stored.sealed).unwrap());
            assert_eq!(read(*kind, stored), Ok(plain.expose().to_string()));
            let unnamed = SealedSecret { name: None, ..stored.clone() };
            assert!(read(*kind, &unnamed).is_err(), "a bound secret does not open without its name");
        }
        assert_eq!(block_on(rewrap_secrets(&store, &keks, &mut errors)), 0, "nothing left to upgrade");
    }
}
