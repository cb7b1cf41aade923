//! Webhook secrets, receipts, the notification endpoint and the outbox in D1.

use serde::Deserialize;
use serde_json::Value;
use worker::wasm_bindgen::JsValue;

use super::{insert_audit_statement, int, opt_text, store_error, text, D1Store, Guard};
use crate::audit::AuditEvent;
use crate::crypto::random::random_base62;
use crate::store::{Endpoint, Precondition, ReceiptClaim, SealedSecret, StoreError, WebhookStore, STALE_CLAIM_MS};
use crate::webhooks::outbox::{Attempt, OutboxEvent, EVENT_TYPES, LEASE_MS};

#[derive(Deserialize)]
pub(crate) struct SecretRow {
    pub workspace_id: String,
    pub version: i64,
    pub sealed: String,
    pub kek_id: String,
    pub created_at: i64,
    pub sealed_name: Option<String>,
}

pub(crate) const SECRET_COLUMNS: &str = "workspace_id, version, sealed, kek_id, created_at, sealed_name";

impl SecretRow {
    pub(crate) fn into_secret(self) -> SealedSecret {
        SealedSecret {
            workspace_id: self.workspace_id,
            version: self.version,
            sealed: self.sealed,
            kek_id: self.kek_id,
            created_at: self.created_at,
            name: self.sealed_name,
        }
    }
}

#[derive(Deserialize)]
struct EndpointRow {
    url: String,
    workspace_id: String,
    version: i64,
    sealed: String,
    kek_id: String,
    created_at: i64,
    sealed_name: Option<String>,
}

#[derive(Deserialize)]
struct ReceiptRow {
    claim: String,
    status: Option<i64>,
    response: Option<String>,
}

#[derive(Deserialize)]
struct OutboxRow {
    id: String,
    workspace_id: String,
    event_type: String,
    payload: String,
    created_at: i64,
    attempts: i64,
}

#[derive(Deserialize)]
struct Latest {
    latest: Option<i64>,
}

impl WebhookStore for D1Store {
    async fn webhook_secrets(&self, workspace_id: &str, now_ms: i64) -> Result<Vec<SealedSecret>, StoreError> {
        let result = self
            .statement(
                &format!(
                    "SELECT {SECRET_COLUMNS} FROM webhook_secrets \
                     WHERE workspace_id = ?1 AND (expires_at IS NULL OR expires_at > ?2) ORDER BY version DESC"
                ),
                &[text(workspace_id), int(now_ms)],
            )?
            .all()
            .await
            .map_err(store_error)?;
        Ok(result.results::<SecretRow>().map_err(store_error)?.into_iter().map(SecretRow::into_secret).collect())
    }

    async fn latest_webhook_secret_version(&self, workspace_id: &str) -> Result<i64, StoreError> {
        let row: Option<Latest> = self
            .statement("SELECT MAX(version) AS latest FROM webhook_secrets WHERE workspace_id = ?1", &[text(workspace_id)])?
            .first(None)
            .await
            .map_err(store_error)?;
        Ok(row.and_then(|r| r.latest).unwrap_or(0))
    }

    async fn rotate_webhook_secret(
        &self,
        secret: &SealedSecret,
        grace_end: i64,
        audit: &AuditEvent,
        precondition: &Precondition,
    ) -> Result<bool, StoreError> {
        let insert = self.statement(
            "INSERT OR IGNORE INTO webhook_secrets (workspace_id, version, sealed, kek_id, created_at, expires_at, sealed_name) \
             VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)",
            &[
                text(&secret.workspace_id),
                int(secret.version),
                text(&secret.sealed),
                text(&secret.kek_id),
                int(secret.created_at),
                opt_text(secret.name.as_deref()),
            ],
        )?;
        let won = "EXISTS (SELECT 1 FROM webhook_secrets WHERE workspace_id = ?1 AND version = ?2 AND sealed = ?3)";
        let expire_previous = self.statement(
            &format!(
                "UPDATE webhook_secrets SET expires_at = MIN(COALESCE(expires_at, ?4), ?4) \
                 WHERE workspace_id = ?1 AND version < ?2 AND {won}"
            ),
            &[text(&secret.workspace_id), int(secret.version), text(&secret.sealed), int(grace_end)],
        )?;
        let audit = insert_audit_statement(
            self,
            audit,
            Some(Guard {
                sql: "EXISTS (SELECT 1 FROM webhook_secrets WHERE workspace_id = ?9 AND version = ?10 AND sealed = ?11)",
                args: vec![text(&secret.workspace_id), int(secret.version), text(&secret.sealed)],
            }),
        )?;
        let results = self.batch_under(precondition, vec![insert, expire_previous, audit]).await?;
        let inserted = results.first().and_then(|r| r.meta().ok().flatten()).and_then(|m| m.changes).unwrap_or(0);
        Ok(inserted > 0)
    }

    async fn claim_receipt(&self, workspace_id: &str, webhook_id: &str, now_ms: i64) -> Result<ReceiptClaim, StoreError> {
        let claim = random_base62(16);
        let insert = self.statement(
            "INSERT OR IGNORE INTO webhook_receipts (workspace_id, webhook_id, claim, received_at) VALUES (?1, ?2, ?3, ?4)",
            &[text(workspace_id), text(webhook_id), text(&claim), int(now_ms)],
        )?;
        // A claim left pending for a minute belongs to a delivery that died: take it over.
        let take_over = self.statement(
            "UPDATE webhook_receipts SET claim = ?3, received_at = ?4 \
             WHERE workspace_id = ?1 AND webhook_id = ?2 AND status IS NULL AND received_at < ?4 - ?5",
            &[text(workspace_id), text(webhook_id), text(&claim), int(now_ms), int(STALE_CLAIM_MS)],
        )?;
        let read = self.statement(
            "SELECT claim, status, response FROM webhook_receipts WHERE workspace_id = ?1 AND webhook_id = ?2",
            &[text(workspace_id), text(webhook_id)],
        )?;
        let results = self.db.batch(vec![insert, take_over, read]).await.map_err(store_error)?;
        let row =
            results.get(2).map(|r| r.results::<ReceiptRow>()).transpose().map_err(store_error)?.and_then(|rows| rows.into_iter().next());
        let Some(row) = row else { return Err(StoreError::Failed("receipt vanished after its insert".into())) };
        Ok(match (row.claim == claim, row.status, row.response) {
            (true, _, _) => ReceiptClaim::Won,
            (false, Some(status), Some(body)) => ReceiptClaim::Answered { status: status as u16, body },
            _ => ReceiptClaim::Pending,
        })
    }

    async fn finish_receipt(&self, workspace_id: &str, webhook_id: &str, status: u16, body: &str) -> Result<(), StoreError> {
        self.statement(
            "UPDATE webhook_receipts SET status = ?3, response = ?4 WHERE workspace_id = ?1 AND webhook_id = ?2",
            &[text(workspace_id), text(webhook_id), int(status as i64), text(body)],
        )?
        .run()
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn release_receipt(&self, workspace_id: &str, webhook_id: &str) -> Result<(), StoreError> {
        self.statement(
            "DELETE FROM webhook_receipts WHERE workspace_id = ?1 AND webhook_id = ?2 AND status IS NULL",
            &[text(workspace_id), text(webhook_id)],
        )?
        .run()
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn endpoint(&self, workspace_id: &str) -> Result<Option<Endpoint>, StoreError> {
        let row: Option<EndpointRow> = self
            .statement(
                "SELECT url, workspace_id, version, sealed, kek_id, created_at, sealed_name FROM notification_endpoints \
                 WHERE workspace_id = ?1",
                &[text(workspace_id)],
            )?
            .first(None)
            .await
            .map_err(store_error)?;
        Ok(row.map(|r| Endpoint {
            url: r.url,
            secret: SealedSecret {
                workspace_id: r.workspace_id,
                version: r.version,
                sealed: r.sealed,
                kek_id: r.kek_id,
                created_at: r.created_at,
                name: r.sealed_name,
            },
        }))
    }

    async fn save_endpoint(
        &self,
        endpoint: &Endpoint,
        expected_version: Option<i64>,
        audit: &AuditEvent,
        precondition: &Precondition,
    ) -> Result<bool, StoreError> {
        let secret = &endpoint.secret;
        let upsert = self.statement(
            "INSERT INTO notification_endpoints (workspace_id, url, sealed, kek_id, version, created_at, sealed_name) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?8) \
             ON CONFLICT (workspace_id) DO UPDATE SET url = excluded.url, sealed = excluded.sealed, kek_id = excluded.kek_id, \
             version = excluded.version, created_at = excluded.created_at, sealed_name = excluded.sealed_name \
             WHERE notification_endpoints.version = ?7",
            &[
                text(&secret.workspace_id),
                text(&endpoint.url),
                text(&secret.sealed),
                text(&secret.kek_id),
                int(secret.version),
                int(secret.created_at),
                expected_version.map_or(JsValue::NULL, int),
                opt_text(secret.name.as_deref()),
            ],
        )?;
        let audit = insert_audit_statement(self, audit, Some(Guard { sql: "changes() > 0", args: vec![] }))?;
        let results = self.batch_under(precondition, vec![upsert, audit]).await?;
        Ok(results.first().and_then(|r| r.meta().ok().flatten()).and_then(|m| m.changes).unwrap_or(0) > 0)
    }

    async fn remove_endpoint(&self, precondition: &Precondition, audit: &AuditEvent) -> Result<bool, StoreError> {
        let delete = self.statement("DELETE FROM notification_endpoints WHERE workspace_id = ?1", &[text(&precondition.workspace_id)])?;
        let audit = insert_audit_statement(self, audit, Some(Guard { sql: "changes() > 0", args: vec![] }))?;
        let results = self.batch_under(precondition, vec![delete, audit]).await?;
        Ok(results.first().and_then(|r| r.meta().ok().flatten()).and_then(|m| m.changes).unwrap_or(0) > 0)
    }

    async fn enqueue(&self, event: &OutboxEvent, now_ms: i64) -> Result<bool, StoreError> {
        let result = self
            .statement(
                "INSERT INTO outbox (id, workspace_id, event_type, payload, created_at, next_attempt_at) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM notification_endpoints WHERE workspace_id = ?2)",
                &[
                    text(&event.id),
                    text(&event.workspace_id),
                    text(event.event_type),
                    text(&event.body()),
                    int(event.created_at),
                    int(now_ms),
                ],
            )?
            .run()
            .await
            .map_err(store_error)?;
        Ok(result.meta().map_err(store_error)?.and_then(|m| m.changes).unwrap_or(0) > 0)
    }

    async fn claim_delivery(&self, only: Option<&str>, now_ms: i64) -> Result<Option<OutboxEvent>, StoreError> {
        // One conditional UPDATE reserves the row under a fresh lease: two runs at once never
        // both get it.
        let lease = random_base62(16);
        let result = self
            .statement(
                "UPDATE outbox SET lease_until = ?1 + ?2, lease_token = ?5, attempts = attempts + 1 WHERE id IN ( \
                   SELECT id FROM outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= ?1 \
                   AND (lease_until IS NULL OR lease_until <= ?1) AND (?3 IS NULL OR id = ?3) ORDER BY next_attempt_at LIMIT ?4) \
                 AND (lease_until IS NULL OR lease_until <= ?1) \
                 RETURNING id, workspace_id, event_type, payload, created_at, attempts",
                &[int(now_ms), int(LEASE_MS), opt_text(only), int(1), text(&lease)],
            )?
            .all()
            .await
            .map_err(store_error)?;
        let rows: Vec<OutboxRow> = result.results().map_err(store_error)?;
        Ok(rows.into_iter().next().map(|row| OutboxEvent {
            id: row.id,
            workspace_id: row.workspace_id,
            // An event type this build does not know is still delivered, under a generic name.
            event_type: EVENT_TYPES.into_iter().find(|t| *t == row.event_type).unwrap_or("unknown"),
            payload: serde_json::from_str(&row.payload).unwrap_or(Value::Null),
            created_at: row.created_at,
            attempts: row.attempts,
            lease: Some(lease.clone()),
        }))
    }

    async fn record_attempt(
        &self,
        event: &OutboxEvent,
        attempt: Attempt,
        next_attempt_at: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (delivered, status) = match attempt {
            Attempt::Delivered { status } => (true, Some(status)),
            Attempt::Failed { status } => (false, status),
        };
        self.statement(
            "UPDATE outbox SET lease_until = NULL, last_status = ?2, \
             delivered_at = CASE WHEN ?3 = 1 THEN ?4 ELSE delivered_at END, \
             next_attempt_at = COALESCE(?5, next_attempt_at), \
             gave_up_at = CASE WHEN ?3 = 0 AND ?5 IS NULL THEN ?4 ELSE gave_up_at END, lease_token = NULL \
             WHERE id = ?1 AND lease_token IS ?6",
            &[
                text(&event.id),
                status.map_or(JsValue::NULL, |s| int(s as i64)),
                int(delivered as i64),
                int(now_ms),
                next_attempt_at.map_or(JsValue::NULL, int),
                opt_text(event.lease.as_deref()),
            ],
        )?
        .run()
        .await
        .map_err(store_error)?;
        Ok(())
    }
}
