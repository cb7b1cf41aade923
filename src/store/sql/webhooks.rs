//! Webhook secrets, receipts, the notification endpoint and the outbox.

use serde::Deserialize;
use serde_json::Value as Json;

use super::exec::{int, opt_int, opt_text, text, Executor, Outcome, Statement, Value};
use super::{insert_audit_statement, outcome, Guard, SqlStore};
use crate::audit::AuditEvent;
use crate::crypto::random::random_base62;
use crate::outbox::{Attempt, OutboxEvent, EVENT_TYPES, LEASE_MS};
use crate::store::{Endpoint, Precondition, ReceiptClaim, SealedSecret, StoreError, WebhookStore, STALE_CLAIM_MS};

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

/// An outbox row still to be delivered and due at `:now`, unless another run holds its lease.
pub(crate) const DUE_OUTBOX_ROW: &str = "delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= :now \
    AND (lease_until IS NULL OR lease_until <= :now)";

fn secrets(outcome: &Outcome) -> Result<Vec<SealedSecret>, StoreError> {
    Ok(outcome.rows::<SecretRow>()?.into_iter().map(SecretRow::into_secret).collect())
}

impl<E: Executor> WebhookStore for SqlStore<E> {
    async fn webhook_secrets(&self, workspace_id: &str, now_ms: i64) -> Result<Vec<SealedSecret>, StoreError> {
        let sql = format!(
            "SELECT {SECRET_COLUMNS} FROM webhook_secrets \
             WHERE workspace_id = :workspace_id AND (expires_at IS NULL OR expires_at > :now) ORDER BY version DESC"
        );
        secrets(&self.query(Statement::new(&sql, &[("workspace_id", text(workspace_id)), ("now", int(now_ms))])?).await?)
    }

    async fn latest_webhook_secret_version(&self, workspace_id: &str) -> Result<i64, StoreError> {
        let outcome = self
            .query(Statement::new(
                "SELECT MAX(version) AS latest FROM webhook_secrets WHERE workspace_id = :workspace_id",
                &[("workspace_id", text(workspace_id))],
            )?)
            .await?;
        Ok(outcome.first::<Latest>()?.and_then(|r| r.latest).unwrap_or(0))
    }

    async fn rotate_webhook_secret(
        &self,
        secret: &SealedSecret,
        grace_end: i64,
        audit: &AuditEvent,
        precondition: &Precondition,
    ) -> Result<bool, StoreError> {
        let binds = [
            ("workspace_id", text(&secret.workspace_id)),
            ("version", int(secret.version)),
            ("sealed", text(&secret.sealed)),
            ("kek_id", text(&secret.kek_id)),
            ("created_at", int(secret.created_at)),
            ("sealed_name", opt_text(secret.name.as_deref())),
            ("grace_end", int(grace_end)),
        ];
        let insert = Statement::new(
            "INSERT OR IGNORE INTO webhook_secrets (workspace_id, version, sealed, kek_id, created_at, expires_at, sealed_name) \
             VALUES (:workspace_id, :version, :sealed, :kek_id, :created_at, NULL, :sealed_name)",
            &binds,
        )?;
        let won = "EXISTS (SELECT 1 FROM webhook_secrets WHERE workspace_id = :secret_workspace_id AND version = :secret_version \
                   AND sealed = :secret_sealed)";
        let won_binds = vec![
            ("secret_workspace_id", text(&secret.workspace_id)),
            ("secret_version", int(secret.version)),
            ("secret_sealed", text(&secret.sealed)),
        ];
        let mut expire_binds = won_binds.clone();
        expire_binds.push(("grace_end", int(grace_end)));
        let expire_previous = Statement::new(
            &format!(
                "UPDATE webhook_secrets SET expires_at = MIN(COALESCE(expires_at, :grace_end), :grace_end) \
                 WHERE workspace_id = :secret_workspace_id AND version < :secret_version AND {won}"
            ),
            &expire_binds,
        )?;
        let audit = insert_audit_statement(audit, Some(Guard { sql: won, binds: won_binds }))?;
        let outcomes = self.batch_under(precondition, vec![insert, expire_previous, audit]).await?;
        Ok(outcome(&outcomes, 0)?.changes > 0)
    }

    async fn claim_receipt(&self, workspace_id: &str, webhook_id: &str, now_ms: i64) -> Result<ReceiptClaim, StoreError> {
        let claim = random_base62(16);
        let binds = [
            ("workspace_id", text(workspace_id)),
            ("webhook_id", text(webhook_id)),
            ("claim", text(&claim)),
            ("now", int(now_ms)),
            ("stale_after", int(STALE_CLAIM_MS)),
        ];
        let insert = Statement::new(
            "INSERT OR IGNORE INTO webhook_receipts (workspace_id, webhook_id, claim, received_at) \
             VALUES (:workspace_id, :webhook_id, :claim, :now)",
            &binds,
        )?;
        // A claim left pending for a minute belongs to a delivery that died: take it over.
        let take_over = Statement::new(
            "UPDATE webhook_receipts SET claim = :claim, received_at = :now \
             WHERE workspace_id = :workspace_id AND webhook_id = :webhook_id AND status IS NULL AND received_at < :now - :stale_after",
            &binds,
        )?;
        let read = Statement::new(
            "SELECT claim, status, response FROM webhook_receipts WHERE workspace_id = :workspace_id AND webhook_id = :webhook_id",
            &binds,
        )?;
        let outcomes = self.batch(vec![insert, take_over, read]).await?;
        let Some(row) = outcome(&outcomes, 2)?.first::<ReceiptRow>()? else {
            return Err(StoreError::Failed("receipt vanished after its insert".into()));
        };
        Ok(match (row.claim == claim, row.status, row.response) {
            (true, _, _) => ReceiptClaim::Won,
            (false, Some(status), Some(body)) => ReceiptClaim::Answered { status: status as u16, body },
            _ => ReceiptClaim::Pending,
        })
    }

    async fn finish_receipt(&self, workspace_id: &str, webhook_id: &str, status: u16, body: &str) -> Result<(), StoreError> {
        self.query(Statement::new(
            "UPDATE webhook_receipts SET status = :status, response = :body WHERE workspace_id = :workspace_id AND webhook_id = :webhook_id",
            &[("workspace_id", text(workspace_id)), ("webhook_id", text(webhook_id)), ("status", int(status as i64)), ("body", text(body))],
        )?)
        .await?;
        Ok(())
    }

    async fn release_receipt(&self, workspace_id: &str, webhook_id: &str) -> Result<(), StoreError> {
        self.query(Statement::new(
            "DELETE FROM webhook_receipts WHERE workspace_id = :workspace_id AND webhook_id = :webhook_id AND status IS NULL",
            &[("workspace_id", text(workspace_id)), ("webhook_id", text(webhook_id))],
        )?)
        .await?;
        Ok(())
    }

    async fn endpoint(&self, workspace_id: &str) -> Result<Option<Endpoint>, StoreError> {
        let outcome = self
            .query(Statement::new(
                "SELECT url, workspace_id, version, sealed, kek_id, created_at, sealed_name FROM notification_endpoints \
                 WHERE workspace_id = :workspace_id",
                &[("workspace_id", text(workspace_id))],
            )?)
            .await?;
        Ok(outcome.first::<EndpointRow>()?.map(|r| Endpoint {
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
        let upsert = Statement::new(
            "INSERT INTO notification_endpoints (workspace_id, url, sealed, kek_id, version, created_at, sealed_name) \
             VALUES (:workspace_id, :url, :sealed, :kek_id, :version, :created_at, :sealed_name) \
             ON CONFLICT (workspace_id) DO UPDATE SET url = excluded.url, sealed = excluded.sealed, kek_id = excluded.kek_id, \
             version = excluded.version, created_at = excluded.created_at, sealed_name = excluded.sealed_name \
             WHERE notification_endpoints.version = :expected_version",
            &[
                ("workspace_id", text(&secret.workspace_id)),
                ("url", text(&endpoint.url)),
                ("sealed", text(&secret.sealed)),
                ("kek_id", text(&secret.kek_id)),
                ("version", int(secret.version)),
                ("created_at", int(secret.created_at)),
                ("expected_version", opt_int(expected_version)),
                ("sealed_name", opt_text(secret.name.as_deref())),
            ],
        )?;
        let audit = insert_audit_statement(audit, Some(Guard::after_a_change()))?;
        let outcomes = self.batch_under(precondition, vec![upsert, audit]).await?;
        Ok(outcome(&outcomes, 0)?.changes > 0)
    }

    async fn remove_endpoint(&self, precondition: &Precondition, audit: &AuditEvent) -> Result<bool, StoreError> {
        let delete = Statement::new(
            "DELETE FROM notification_endpoints WHERE workspace_id = :workspace_id",
            &[("workspace_id", text(&precondition.workspace_id))],
        )?;
        let audit = insert_audit_statement(audit, Some(Guard::after_a_change()))?;
        let outcomes = self.batch_under(precondition, vec![delete, audit]).await?;
        Ok(outcome(&outcomes, 0)?.changes > 0)
    }

    async fn enqueue(&self, event: &OutboxEvent, now_ms: i64) -> Result<bool, StoreError> {
        let outcome = self.query(enqueue_statement(event, now_ms)?).await?;
        Ok(outcome.changes > 0)
    }

    async fn claim_delivery(&self, only: Option<&str>, now_ms: i64) -> Result<Option<OutboxEvent>, StoreError> {
        // One conditional UPDATE reserves the row under a fresh lease: two runs at once never
        // both get it.
        let lease = random_base62(16);
        let outcome = self
            .query(Statement::new(
                &format!(
                    "UPDATE outbox SET lease_until = :now + :lease_ms, lease_token = :lease, attempts = attempts + 1 WHERE id IN ( \
                       SELECT id FROM outbox WHERE {DUE_OUTBOX_ROW} AND (:only IS NULL OR id = :only) \
                       ORDER BY next_attempt_at LIMIT :limit) \
                     AND (lease_until IS NULL OR lease_until <= :now) \
                     RETURNING id, workspace_id, event_type, payload, created_at, attempts"
                ),
                &[("now", int(now_ms)), ("lease_ms", int(LEASE_MS)), ("only", opt_text(only)), ("limit", int(1)), ("lease", text(&lease))],
            )?)
            .await?;
        Ok(outcome.rows::<OutboxRow>()?.into_iter().next().map(|row| OutboxEvent {
            id: row.id,
            workspace_id: row.workspace_id,
            // An event type this build does not know is still delivered, under a generic name.
            event_type: EVENT_TYPES.into_iter().find(|t| *t == row.event_type).unwrap_or("unknown"),
            payload: serde_json::from_str(&row.payload).unwrap_or(Json::Null),
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
        self.query(Statement::new(
            "UPDATE outbox SET lease_until = NULL, last_status = :status, \
             delivered_at = CASE WHEN :delivered = 1 THEN :now ELSE delivered_at END, \
             next_attempt_at = COALESCE(:next_attempt_at, next_attempt_at), \
             gave_up_at = CASE WHEN :delivered = 0 AND :next_attempt_at IS NULL THEN :now ELSE gave_up_at END, lease_token = NULL \
             WHERE id = :id AND lease_token IS :lease",
            &[
                ("id", text(&event.id)),
                ("status", opt_int(status.map(i64::from))),
                ("delivered", int(delivered as i64)),
                ("now", int(now_ms)),
                ("next_attempt_at", opt_int(next_attempt_at)),
                ("lease", opt_text(event.lease.as_deref())),
            ],
        )?)
        .await?;
        Ok(())
    }
}

/// Queues `event`, due at once, only for a workspace with a notification endpoint: the one
/// rule of every notification, in the action's own batch when it has one.
pub(crate) fn enqueue_statement(event: &OutboxEvent, now_ms: i64) -> Result<Statement, StoreError> {
    queue_statement(event, now_ms, None, None, &[])
}

/// [`enqueue_statement`] for an action's batch: queued only if `condition` (SQL over `extra`)
/// holds too, with `stamp`'s `data` field set to a Unix ms time the batch computes (`stamp`'s
/// SQL, over `extra`), as RFC 3339 in whole seconds as `time::rfc3339` writes it.
pub(crate) fn queue_statement(
    event: &OutboxEvent,
    now_ms: i64,
    condition: Option<&str>,
    stamp: Option<(&str, &str)>,
    extra: &[(&'static str, Value)],
) -> Result<Statement, StoreError> {
    let mut binds = vec![
        ("outbox_id", text(&event.id)),
        ("outbox_workspace_id", text(&event.workspace_id)),
        ("outbox_event_type", text(event.event_type)),
        ("outbox_payload", text(&event.body())),
        ("outbox_created_at", int(event.created_at)),
        ("now", int(now_ms)),
    ];
    binds.extend(extra.iter().cloned());
    let payload = match stamp {
        None => ":outbox_payload".to_string(),
        Some((field, unix_ms)) => {
            format!("json_set(:outbox_payload, '$.data.{field}', strftime('%Y-%m-%dT%H:%M:%SZ', ({unix_ms}) / 1000, 'unixepoch'))")
        }
    };
    let condition = condition.map_or(String::new(), |sql| format!(" AND {sql}"));
    Statement::new(
        &format!(
            "INSERT INTO outbox (id, workspace_id, event_type, payload, created_at, next_attempt_at) \
             SELECT :outbox_id, :outbox_workspace_id, :outbox_event_type, {payload}, :outbox_created_at, :now \
             WHERE EXISTS (SELECT 1 FROM notification_endpoints WHERE workspace_id = :outbox_workspace_id){condition}"
        ),
        &binds,
    )
}
