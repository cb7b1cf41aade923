//! Bounded clean-up statements for the scheduled handler.

use serde::Deserialize;

use super::exec::{int, opt_text, text, Executor, Statement};
use super::expiry::expiry_notice_statements;
use super::providers::{provider_records, PROVIDER_COLUMNS};
use super::webhooks::{SecretRow, SECRET_COLUMNS};
use super::{outcome, SqlStore};
use crate::keys::expiry::ExpiryNotice;
use crate::keys::limits::FAILED_ATTEMPT_WINDOW_MS;
use crate::providers::ProviderRecord;
use crate::store::{HousekeepingStore, SealedSecret, SecretKind, StoreError};

#[derive(Deserialize)]
struct NameRow {
    blob_name: String,
}

impl<E: Executor> HousekeepingStore for SqlStore<E> {
    async fn queue_expiry_notices(&self, now_ms: i64, limit: usize) -> Result<usize, StoreError> {
        let mut statements = expiry_notice_statements(ExpiryNotice::Expiring, now_ms, limit, None)?;
        statements.extend(expiry_notice_statements(ExpiryNotice::Expired, now_ms, limit, None)?);
        let outcomes = self.batch(statements).await?;
        Ok(outcome(&outcomes, 1)?.changes + outcome(&outcomes, 3)?.changes)
    }

    async fn prune_counters(&self, now_ms: i64, limit: usize) -> Result<usize, StoreError> {
        let failures = Statement::new(
            "DELETE FROM auth_failures WHERE ip IN (SELECT ip FROM auth_failures WHERE window_start + :window <= :now LIMIT :limit)",
            &[("now", int(now_ms)), ("window", int(FAILED_ATTEMPT_WINDOW_MS)), ("limit", int(limit as i64))],
        )?;
        // A window is over once its start plus the key's window length has passed; keys whose
        // revocation took effect never count again.
        let windows = Statement::new(
            "DELETE FROM rate_windows WHERE key_id IN (SELECT r.key_id FROM rate_windows r LEFT JOIN api_keys k ON k.id = r.key_id \
             WHERE k.id IS NULL OR (k.revoked_at IS NOT NULL AND k.revoked_at <= :now) \
             OR r.window_start + COALESCE(k.rate_window_seconds, 0) * 1000 <= :now LIMIT :limit)",
            &[("now", int(now_ms)), ("limit", int(limit as i64))],
        )?;
        let idempotency = Statement::new(
            "DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE created_at <= :now - :kept_ms LIMIT :limit)",
            &[("now", int(now_ms)), ("kept_ms", int(crate::idempotency::REMEMBERED_MS)), ("limit", int(limit as i64))],
        )?;
        let outcomes = self.batch(vec![failures, windows, idempotency]).await?;
        Ok(outcomes.iter().map(|o| o.changes).sum())
    }

    async fn prune_history(&self, before: i64, limit: usize) -> Result<usize, StoreError> {
        let binds = [("before", int(before)), ("limit", int(limit as i64))];
        let receipts = Statement::new(
            "DELETE FROM webhook_receipts WHERE rowid IN (SELECT rowid FROM webhook_receipts WHERE received_at < :before LIMIT :limit)",
            &binds,
        )?;
        let outbox = Statement::new(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE COALESCE(delivered_at, gave_up_at) < :before LIMIT :limit)",
            &binds,
        )?;
        let outcomes = self.batch(vec![receipts, outbox]).await?;
        Ok(outcomes.iter().map(|o| o.changes).sum())
    }

    async fn retired_blobs_due(&self, retired_before: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        let outcome = self
            .query(Statement::new(
                "SELECT blob_name FROM retired_blobs WHERE retired_at < :before ORDER BY retired_at LIMIT :limit",
                &[("before", int(retired_before)), ("limit", int(limit as i64))],
            )?)
            .await?;
        Ok(outcome.rows::<NameRow>()?.into_iter().map(|r| r.blob_name).collect())
    }

    async fn forget_retired_blobs(&self, names: &[String]) -> Result<(), StoreError> {
        let statements = names
            .iter()
            .map(|name| Statement::new("DELETE FROM retired_blobs WHERE blob_name = :name", &[("name", text(name))]))
            .collect::<Result<Vec<_>, _>>()?;
        if !statements.is_empty() {
            self.batch(statements).await?;
        }
        Ok(())
    }

    async fn providers_due_for_validation(&self, validated_before: i64, limit: usize) -> Result<Vec<ProviderRecord>, StoreError> {
        let sql = format!(
            "SELECT {PROVIDER_COLUMNS} FROM provider_configs WHERE MAX(COALESCE(checked_at, 0), COALESCE(validated_at, 0)) < :before \
             ORDER BY MAX(COALESCE(checked_at, 0), COALESCE(validated_at, 0)) LIMIT :limit"
        );
        provider_records(&self.query(Statement::new(&sql, &[("before", int(validated_before)), ("limit", int(limit as i64))])?).await?)
    }

    async fn claim_revalidation(&self, record: &ProviderRecord, due_before: i64, now_ms: i64) -> Result<bool, StoreError> {
        let outcome = self
            .query(Statement::new(
                "UPDATE provider_configs SET checked_at = :now WHERE workspace_id = :workspace_id AND provider = :provider \
                 AND version = :version AND MAX(COALESCE(checked_at, 0), COALESCE(validated_at, 0)) < :due_before",
                &[
                    ("workspace_id", text(&record.workspace_id)),
                    ("provider", text(record.provider.as_str())),
                    ("version", int(record.version)),
                    ("now", int(now_ms)),
                    ("due_before", int(due_before)),
                ],
            )?)
            .await?;
        Ok(outcome.changes > 0)
    }

    async fn secrets_not_under(&self, current_kek: &str, limit: usize) -> Result<Vec<(SecretKind, SealedSecret)>, StoreError> {
        let binds = [("current_kek", text(current_kek)), ("limit", int(limit as i64))];
        let webhook = Statement::new(
            &format!("SELECT {SECRET_COLUMNS} FROM webhook_secrets WHERE kek_id != :current_kek OR sealed_name IS NULL LIMIT :limit"),
            &binds,
        )?;
        let endpoint = Statement::new(
            &format!(
                "SELECT {SECRET_COLUMNS} FROM notification_endpoints WHERE kek_id != :current_kek OR sealed_name IS NULL LIMIT :limit"
            ),
            &binds,
        )?;
        let outcomes = self.batch(vec![webhook, endpoint]).await?;
        let mut found = Vec::new();
        for (index, kind) in [SecretKind::Webhook, SecretKind::Endpoint].into_iter().enumerate() {
            for row in outcome(&outcomes, index)?.rows::<SecretRow>()? {
                found.push((kind, row.into_secret()));
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    async fn replace_sealed(&self, kind: SecretKind, secret: &SealedSecret, old_sealed: &str) -> Result<bool, StoreError> {
        let table = match kind {
            SecretKind::Webhook => "webhook_secrets",
            SecretKind::Endpoint => "notification_endpoints",
        };
        let outcome = self
            .query(Statement::new(
                &format!(
                    "UPDATE {table} SET sealed = :sealed, kek_id = :kek_id, sealed_name = :sealed_name \
                     WHERE workspace_id = :workspace_id AND version = :version AND sealed = :old_sealed"
                ),
                &[
                    ("workspace_id", text(&secret.workspace_id)),
                    ("version", int(secret.version)),
                    ("sealed", text(&secret.sealed)),
                    ("kek_id", text(&secret.kek_id)),
                    ("old_sealed", text(old_sealed)),
                    ("sealed_name", opt_text(secret.name.as_deref())),
                ],
            )?)
            .await?;
        Ok(outcome.changes > 0)
    }
}
