//! The scheduled handler's work, bounded per run and safe to run twice at once: every task
//! claims or conditionally changes what it touches, so a second run finds nothing to redo.

use serde_json::json;

use crate::audit::AuditEvent;
use crate::error::ApiError;
use crate::providers::service::{self, Vault};
use crate::providers::validation::ProviderClient;
use crate::store::{BlobStore, HousekeepingStore, KeyStore, ProviderStore, WebhookStore};
use crate::vault::{self, Keks, SecretContext};
use crate::webhooks::delivery;
use crate::webhooks::outbox::{Notifier, OutboxEvent};

/// How much each task may do in one run; the cron comes back in five minutes.
pub const PER_TASK: usize = 25;
pub const REVALIDATE_AFTER_MS: i64 = 24 * 3_600_000;
/// A replaced blob stays readable this long for resolves that read the old pointer.
pub const BLOB_GRACE_MS: i64 = 15 * 60_000;
pub const RECEIPTS_KEPT_MS: i64 = 7 * 24 * 3_600_000;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub counters_pruned: usize,
    pub receipts_pruned: usize,
    pub blobs_deleted: usize,
    pub revalidated: usize,
    pub invalidated: usize,
    pub rewrapped: usize,
    pub delivered: usize,
}

pub async fn run<S>(store: &S, blobs: &impl BlobStore, client: &impl ProviderClient, notifier: &impl Notifier, keks: &Keks, now_ms: i64) -> Result<Report, ApiError>
where
    S: KeyStore + ProviderStore + WebhookStore + HousekeepingStore,
{
    let mut report = Report {
        counters_pruned: store.prune_counters(now_ms, PER_TASK * 20).await?,
        receipts_pruned: store.prune_receipts(now_ms - RECEIPTS_KEPT_MS, PER_TASK * 20).await?,
        ..Report::default()
    };
    report.blobs_deleted = delete_retired_blobs(store, blobs, now_ms).await?;
    let (revalidated, invalidated) = revalidate_stale(store, blobs, client, keks, now_ms).await?;
    report.revalidated = revalidated;
    report.invalidated = invalidated;
    report.rewrapped = service::rewrap_stale(store, blobs, keks, PER_TASK, now_ms).await? + rewrap_secrets(store, keks).await?;
    report.delivered = delivery::deliver_due(store, notifier, keks, None, PER_TASK, now_ms).await?;
    Ok(report)
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
async fn revalidate_stale<S>(store: &S, blobs: &impl BlobStore, client: &impl ProviderClient, keks: &Keks, now_ms: i64) -> Result<(usize, usize), ApiError>
where
    S: KeyStore + ProviderStore + WebhookStore + HousekeepingStore,
{
    let vault = Vault { keks, allow_insecure_hosts: true };
    let (mut revalidated, mut invalidated) = (0, 0);
    for record in store.providers_due_for_validation(now_ms - REVALIDATE_AFTER_MS, PER_TASK).await? {
        if !store.claim_revalidation(&record, now_ms).await? {
            continue;
        }
        let (fresh, _) = service::revalidate(store, blobs, client, &vault, &record.workspace_id, record.provider, now_ms).await?;
        revalidated += 1;
        if record.status.usable() && !fresh.status.usable() {
            invalidated += 1;
            let detail = json!({"provider": record.provider.as_str(), "status": fresh.status.as_str(), "version": fresh.version});
            let audit = AuditEvent::new(Some(&record.workspace_id), "provider.invalidated", now_ms).target(record.provider.as_str()).detail(detail.clone());
            store.append_audit(&[audit]).await?;
            store.enqueue(&OutboxEvent::new(&record.workspace_id, "provider_key.invalidated", detail, now_ms), now_ms).await?;
        }
    }
    Ok((revalidated, invalidated))
}

/// Re-wraps webhook and endpoint secrets still sealed under an older KEK.
async fn rewrap_secrets(store: &impl HousekeepingStore, keks: &Keks) -> Result<usize, ApiError> {
    let mut moved = 0;
    for (kind, secret) in store.secrets_not_under(keks.current_id(), PER_TASK).await? {
        let context = SecretContext { workspace_id: &secret.workspace_id, kind: kind.context_kind(), version: secret.version };
        let Some(rewrapped) = vault::rewrap(keks, &secret.sealed, &context).map_err(|e| ApiError::DecryptionFailed { detail: e.to_string() })? else {
            continue;
        };
        let updated = crate::store::SealedSecret { sealed: rewrapped, kek_id: keks.current_id().to_string(), ..secret.clone() };
        if store.replace_sealed(kind, &updated, &secret.sealed).await? {
            moved += 1;
        }
    }
    Ok(moved)
}
