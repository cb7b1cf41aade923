//! Webhook secrets, receipts, the endpoint, the outbox and housekeeping in memory.

use super::{MemoryStore, OutboxRow};
use crate::audit::AuditEvent;
use crate::providers::ProviderRecord;
use crate::store::{Endpoint, HousekeepingStore, Precondition, ReceiptClaim, SealedSecret, SecretKind, StoreError, WebhookStore};
use crate::webhooks::outbox::{Attempt, OutboxEvent, LEASE_MS};

impl WebhookStore for MemoryStore {
    async fn webhook_secrets(&self, workspace_id: &str, now_ms: i64) -> Result<Vec<SealedSecret>, StoreError> {
        let secrets = self.webhook_secrets.borrow();
        let mut live: Vec<SealedSecret> = secrets
            .iter()
            .filter(|(s, expires)| s.workspace_id == workspace_id && expires.is_none_or(|at| at > now_ms))
            .map(|(s, _)| s.clone())
            .collect();
        live.sort_by_key(|s| -s.version);
        Ok(live)
    }

    async fn latest_webhook_secret_version(&self, workspace_id: &str) -> Result<i64, StoreError> {
        Ok(self.webhook_secrets.borrow().iter().filter(|(s, _)| s.workspace_id == workspace_id).map(|(s, _)| s.version).max().unwrap_or(0))
    }

    async fn rotate_webhook_secret(
        &self,
        secret: &SealedSecret,
        grace_end: i64,
        audit: &AuditEvent,
        precondition: &Precondition,
    ) -> Result<bool, StoreError> {
        self.advance_clock(secret.created_at);
        self.hold(precondition)?;
        let mut secrets = self.webhook_secrets.borrow_mut();
        if secrets.iter().any(|(s, _)| s.workspace_id == secret.workspace_id && s.version == secret.version) {
            return Ok(false);
        }
        for (stored, expires) in secrets.iter_mut().filter(|(s, _)| s.workspace_id == secret.workspace_id) {
            *expires = Some(expires.map_or(grace_end, |at| at.min(grace_end)));
            let _ = stored;
        }
        secrets.push((secret.clone(), None));
        self.audit.borrow_mut().push(audit.clone());
        Ok(true)
    }

    async fn claim_receipt(&self, workspace_id: &str, webhook_id: &str, now_ms: i64) -> Result<ReceiptClaim, StoreError> {
        let mut receipts = self.receipts.borrow_mut();
        let key = (workspace_id.to_string(), webhook_id.to_string());
        Ok(match receipts.get(&key) {
            None => {
                receipts.insert(key, (now_ms, None));
                ReceiptClaim::Won
            }
            Some((at, None)) if *at < now_ms - crate::store::STALE_CLAIM_MS => {
                receipts.insert(key, (now_ms, None));
                ReceiptClaim::Won
            }
            Some((_, None)) => ReceiptClaim::Pending,
            Some((_, Some((status, body)))) => ReceiptClaim::Answered { status: *status, body: body.clone() },
        })
    }

    async fn finish_receipt(&self, workspace_id: &str, webhook_id: &str, status: u16, body: &str) -> Result<(), StoreError> {
        if let Some(receipt) = self.receipts.borrow_mut().get_mut(&(workspace_id.to_string(), webhook_id.to_string())) {
            receipt.1 = Some((status, body.to_string()));
        }
        Ok(())
    }

    async fn release_receipt(&self, workspace_id: &str, webhook_id: &str) -> Result<(), StoreError> {
        self.receipts.borrow_mut().remove(&(workspace_id.to_string(), webhook_id.to_string()));
        Ok(())
    }

    async fn endpoint(&self, workspace_id: &str) -> Result<Option<Endpoint>, StoreError> {
        Ok(self.endpoints.borrow().get(workspace_id).cloned())
    }

    async fn save_endpoint(
        &self,
        endpoint: &Endpoint,
        expected_version: Option<i64>,
        audit: &AuditEvent,
        precondition: &Precondition,
    ) -> Result<bool, StoreError> {
        self.advance_clock(endpoint.secret.created_at);
        self.hold(precondition)?;
        let mut endpoints = self.endpoints.borrow_mut();
        if endpoints.get(&endpoint.secret.workspace_id).map(|e| e.secret.version) != expected_version {
            return Ok(false);
        }
        endpoints.insert(endpoint.secret.workspace_id.clone(), endpoint.clone());
        self.audit.borrow_mut().push(audit.clone());
        Ok(true)
    }

    async fn remove_endpoint(&self, precondition: &Precondition, audit: &AuditEvent) -> Result<bool, StoreError> {
        self.advance_clock(audit.at);
        self.hold(precondition)?;
        let removed = self.endpoints.borrow_mut().remove(&precondition.workspace_id).is_some();
        if removed {
            self.audit.borrow_mut().push(audit.clone());
        }
        Ok(removed)
    }

    async fn enqueue(&self, event: &OutboxEvent, now_ms: i64) -> Result<bool, StoreError> {
        if !self.endpoints.borrow().contains_key(&event.workspace_id) {
            return Ok(false);
        }
        self.outbox.borrow_mut().push(OutboxRow {
            event: event.clone(),
            next_attempt_at: now_ms,
            lease_until: None,
            delivered_at: None,
            gave_up_at: None,
            last_status: None,
        });
        Ok(true)
    }

    async fn claim_delivery(&self, only: Option<&str>, now_ms: i64) -> Result<Option<OutboxEvent>, StoreError> {
        let mut outbox = self.outbox.borrow_mut();
        let row = outbox.iter_mut().find(|row| {
            let due = row.delivered_at.is_none() && row.gave_up_at.is_none() && row.next_attempt_at <= now_ms;
            let free = row.lease_until.is_none_or(|until| until <= now_ms);
            due && free && only.is_none_or(|id| id == row.event.id)
        });
        Ok(row.map(|row| {
            row.lease_until = Some(now_ms + LEASE_MS);
            row.event.attempts += 1;
            row.event.lease = Some(crate::crypto::random::random_base62(16));
            row.event.clone()
        }))
    }

    async fn record_attempt(
        &self,
        event: &OutboxEvent,
        attempt: Attempt,
        next_attempt_at: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut outbox = self.outbox.borrow_mut();
        if let Some(row) = outbox.iter_mut().find(|r| r.event.id == event.id && r.event.lease == event.lease) {
            row.lease_until = None;
            match attempt {
                Attempt::Delivered { status } => {
                    row.delivered_at = Some(now_ms);
                    row.last_status = Some(status);
                }
                Attempt::Failed { status } => {
                    row.last_status = status;
                    match next_attempt_at {
                        Some(at) => row.next_attempt_at = at,
                        None => row.gave_up_at = Some(now_ms),
                    }
                }
            }
        }
        Ok(())
    }
}

impl HousekeepingStore for MemoryStore {
    async fn prune_counters(&self, now_ms: i64, _limit: usize) -> Result<usize, StoreError> {
        let mut failures = self.auth_failures.borrow_mut();
        let before = failures.len();
        failures.retain(|_, (start, _)| *start + crate::keys::limits::FAILED_ATTEMPT_WINDOW_MS > now_ms);
        Ok(before - failures.len())
    }

    async fn prune_history(&self, before: i64, _limit: usize) -> Result<usize, StoreError> {
        let mut receipts = self.receipts.borrow_mut();
        let count = receipts.len();
        receipts.retain(|_, (at, _)| *at >= before);
        let mut outbox = self.outbox.borrow_mut();
        let rows = outbox.len();
        outbox.retain(|row| row.delivered_at.or(row.gave_up_at).is_none_or(|at| at >= before));
        Ok(count - receipts.len() + rows - outbox.len())
    }

    async fn retired_blobs_due(&self, retired_before: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        Ok(self.retired_blobs.borrow().iter().filter(|(_, at)| *at < retired_before).take(limit).map(|(n, _)| n.clone()).collect())
    }

    async fn forget_retired_blobs(&self, names: &[String]) -> Result<(), StoreError> {
        self.retired_blobs.borrow_mut().retain(|(n, _)| !names.contains(n));
        Ok(())
    }

    async fn providers_due_for_validation(&self, due_before: i64, limit: usize) -> Result<Vec<ProviderRecord>, StoreError> {
        let checked = self.checked.borrow();
        let last =
            |p: &ProviderRecord| p.validated_at.unwrap_or(0).max(checked.get(&(p.workspace_id.clone(), p.provider)).copied().unwrap_or(0));
        let mut due: Vec<ProviderRecord> = self.providers.borrow().values().filter(|p| last(p) < due_before).cloned().collect();
        due.sort_by_key(|p| last(p));
        due.truncate(limit);
        Ok(due)
    }

    async fn claim_revalidation(&self, record: &ProviderRecord, due_before: i64, now_ms: i64) -> Result<bool, StoreError> {
        let providers = self.providers.borrow();
        let key = (record.workspace_id.clone(), record.provider);
        let Some(stored) = providers.get(&key).filter(|p| p.version == record.version) else { return Ok(false) };
        let mut checked = self.checked.borrow_mut();
        let last = stored.validated_at.unwrap_or(0).max(checked.get(&key).copied().unwrap_or(0));
        if last >= due_before {
            return Ok(false);
        }
        checked.insert(key, now_ms);
        Ok(true)
    }

    async fn secrets_not_under(&self, current_kek: &str, limit: usize) -> Result<Vec<(SecretKind, SealedSecret)>, StoreError> {
        let webhook = self.webhook_secrets.borrow().iter().map(|(s, _)| (SecretKind::Webhook, s.clone())).collect::<Vec<_>>();
        let endpoint = self.endpoints.borrow().values().map(|e| (SecretKind::Endpoint, e.secret.clone())).collect::<Vec<_>>();
        Ok(webhook.into_iter().chain(endpoint).filter(|(_, s)| s.kek_id != current_kek || s.name.is_none()).take(limit).collect())
    }

    async fn replace_sealed(&self, kind: SecretKind, secret: &SealedSecret, old_sealed: &str) -> Result<bool, StoreError> {
        match kind {
            SecretKind::Webhook => {
                let mut secrets = self.webhook_secrets.borrow_mut();
                let found = secrets
                    .iter_mut()
                    .find(|(s, _)| s.workspace_id == secret.workspace_id && s.version == secret.version && s.sealed == old_sealed);
                Ok(found.map(|(s, _)| *s = secret.clone()).is_some())
            }
            SecretKind::Endpoint => {
                let mut endpoints = self.endpoints.borrow_mut();
                let found = endpoints.get_mut(&secret.workspace_id).filter(|e| e.secret.sealed == old_sealed);
                Ok(found.map(|e| e.secret = secret.clone()).is_some())
            }
        }
    }
}
