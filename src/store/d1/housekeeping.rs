//! Bounded clean-up statements for the scheduled handler.

use serde::Deserialize;

use super::providers::{ProviderRow, PROVIDER_COLUMNS};
use super::webhooks::{SecretRow, SECRET_COLUMNS};
use super::{int, opt_text, store_error, text, D1Store};
use crate::keys::limits::FAILED_ATTEMPT_WINDOW_MS;
use crate::providers::ProviderRecord;
use crate::store::{HousekeepingStore, SealedSecret, SecretKind, StoreError};

#[derive(Deserialize)]
struct NameRow {
    blob_name: String,
}

fn changes(result: &worker::D1Result) -> usize {
    result.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0)
}

impl HousekeepingStore for D1Store {
    async fn prune_counters(&self, now_ms: i64, limit: usize) -> Result<usize, StoreError> {
        let failures = self.statement(
            "DELETE FROM auth_failures WHERE ip IN (SELECT ip FROM auth_failures WHERE window_start + ?2 <= ?1 LIMIT ?3)",
            &[int(now_ms), int(FAILED_ATTEMPT_WINDOW_MS), int(limit as i64)],
        )?;
        // A window is over once its start plus the key's window length has passed; keys whose
        // revocation took effect never count again.
        let windows = self.statement(
            "DELETE FROM rate_windows WHERE key_id IN (SELECT r.key_id FROM rate_windows r LEFT JOIN api_keys k ON k.id = r.key_id \
             WHERE k.id IS NULL OR (k.revoked_at IS NOT NULL AND k.revoked_at <= ?1) \
             OR r.window_start + COALESCE(k.rate_window_seconds, 0) * 1000 <= ?1 LIMIT ?2)",
            &[int(now_ms), int(limit as i64)],
        )?;
        let results = self.db.batch(vec![failures, windows]).await.map_err(store_error)?;
        Ok(results.iter().map(changes).sum())
    }

    async fn prune_history(&self, before: i64, limit: usize) -> Result<usize, StoreError> {
        let receipts = self.statement(
            "DELETE FROM webhook_receipts WHERE rowid IN (SELECT rowid FROM webhook_receipts WHERE received_at < ?1 LIMIT ?2)",
            &[int(before), int(limit as i64)],
        )?;
        let outbox = self.statement(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE COALESCE(delivered_at, gave_up_at) < ?1 LIMIT ?2)",
            &[int(before), int(limit as i64)],
        )?;
        let results = self.db.batch(vec![receipts, outbox]).await.map_err(store_error)?;
        Ok(results.iter().map(changes).sum())
    }

    async fn retired_blobs_due(&self, retired_before: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        let result = self
            .statement(
                "SELECT blob_name FROM retired_blobs WHERE retired_at < ?1 ORDER BY retired_at LIMIT ?2",
                &[int(retired_before), int(limit as i64)],
            )?
            .all()
            .await
            .map_err(store_error)?;
        Ok(result.results::<NameRow>().map_err(store_error)?.into_iter().map(|r| r.blob_name).collect())
    }

    async fn forget_retired_blobs(&self, names: &[String]) -> Result<(), StoreError> {
        let statements = names
            .iter()
            .map(|name| self.statement("DELETE FROM retired_blobs WHERE blob_name = ?1", &[text(name)]))
            .collect::<Result<Vec<_>, _>>()?;
        if !statements.is_empty() {
            self.db.batch(statements).await.map_err(store_error)?;
        }
        Ok(())
    }

    async fn providers_due_for_validation(&self, validated_before: i64, limit: usize) -> Result<Vec<ProviderRecord>, StoreError> {
        let sql = format!(
            "SELECT {PROVIDER_COLUMNS} FROM provider_configs WHERE MAX(COALESCE(checked_at, 0), COALESCE(validated_at, 0)) < ?1 \
             ORDER BY MAX(COALESCE(checked_at, 0), COALESCE(validated_at, 0)) LIMIT ?2"
        );
        let result = self.statement(&sql, &[int(validated_before), int(limit as i64)])?.all().await.map_err(store_error)?;
        result.results::<ProviderRow>().map_err(store_error)?.into_iter().map(ProviderRow::into_record).collect()
    }

    async fn claim_revalidation(&self, record: &ProviderRecord, due_before: i64, now_ms: i64) -> Result<bool, StoreError> {
        let result = self
            .statement(
                "UPDATE provider_configs SET checked_at = ?4 WHERE workspace_id = ?1 AND provider = ?2 AND version = ?3 \
                 AND MAX(COALESCE(checked_at, 0), COALESCE(validated_at, 0)) < ?5",
                &[text(&record.workspace_id), text(record.provider.as_str()), int(record.version), int(now_ms), int(due_before)],
            )?
            .run()
            .await
            .map_err(store_error)?;
        Ok(changes(&result) > 0)
    }

    async fn secrets_not_under(&self, current_kek: &str, limit: usize) -> Result<Vec<(SecretKind, SealedSecret)>, StoreError> {
        let webhook = self.statement(
            &format!("SELECT {SECRET_COLUMNS} FROM webhook_secrets WHERE kek_id != ?1 OR sealed_name IS NULL LIMIT ?2"),
            &[text(current_kek), int(limit as i64)],
        )?;
        let endpoint = self.statement(
            &format!("SELECT {SECRET_COLUMNS} FROM notification_endpoints WHERE kek_id != ?1 OR sealed_name IS NULL LIMIT ?2"),
            &[text(current_kek), int(limit as i64)],
        )?;
        let results = self.db.batch(vec![webhook, endpoint]).await.map_err(store_error)?;
        let mut found = Vec::new();
        for (kind, result) in [SecretKind::Webhook, SecretKind::Endpoint].into_iter().zip(results.iter()) {
            for row in result.results::<SecretRow>().map_err(store_error)? {
                found.push((kind, row.into_secret()));
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    async fn replace_sealed(&self, kind: SecretKind, secret: &SealedSecret, old_sealed: &str) -> Result<bool, StoreError> {
        let sql = match kind {
            SecretKind::Webhook => {
                "UPDATE webhook_secrets SET sealed = ?3, kek_id = ?4, sealed_name = ?6 WHERE workspace_id = ?1 AND version = ?2 AND sealed = ?5"
            }
            SecretKind::Endpoint => {
                "UPDATE notification_endpoints SET sealed = ?3, kek_id = ?4, sealed_name = ?6 \
                 WHERE workspace_id = ?1 AND version = ?2 AND sealed = ?5"
            }
        };
        let result = self
            .statement(
                sql,
                &[
                    text(&secret.workspace_id),
                    int(secret.version),
                    text(&secret.sealed),
                    text(&secret.kek_id),
                    text(old_sealed),
                    opt_text(secret.name.as_deref()),
                ],
            )?
            .run()
            .await
            .map_err(store_error)?;
        Ok(changes(&result) > 0)
    }
}
