//! Remembered responses for `Idempotency-Key`.

use serde::Deserialize;

use super::exec::{int, text, Executor, Statement};
use super::{outcome, SqlStore};
use crate::idempotency::{IdempotencyStore, IdempotentRequest, Remembered, REMEMBERED_MS};
use crate::storage::StoreError;

#[derive(Deserialize)]
struct RememberedRow {
    fingerprint: String,
    status: Option<i64>,
    sealed: Option<String>,
}

fn key_binds(request: &IdempotentRequest) -> Vec<(&'static str, super::exec::Value)> {
    vec![("scope", text(&request.scope)), ("idem_key", text(request.key.as_str()))]
}

impl<E: Executor> IdempotencyStore for SqlStore<E> {
    async fn claim_idempotency(&self, request: &IdempotentRequest, now_ms: i64) -> Result<Option<Remembered>, StoreError> {
        let mut binds = key_binds(request);
        binds.extend([("fingerprint", text(&request.fingerprint)), ("now", int(now_ms)), ("kept_ms", int(REMEMBERED_MS))]);
        // One batch: forget an expired claim, claim if free, read what holds the key now. Of two
        // requests at once, D1 runs one batch after the other, so exactly one claims.
        let expired = Statement::new(
            "DELETE FROM idempotency_keys WHERE scope = :scope AND idem_key = :idem_key AND created_at <= :now - :kept_ms",
            &binds,
        )?;
        let claim = Statement::new(
            "INSERT INTO idempotency_keys (scope, idem_key, fingerprint, created_at) VALUES (:scope, :idem_key, :fingerprint, :now) \
             ON CONFLICT (scope, idem_key) DO NOTHING",
            &binds,
        )?;
        let read = Statement::new(
            "SELECT fingerprint, status, sealed FROM idempotency_keys WHERE scope = :scope AND idem_key = :idem_key",
            &binds,
        )?;
        let outcomes = self.batch(vec![expired, claim, read]).await?;
        if outcome(&outcomes, 1)?.changes > 0 {
            return Ok(None);
        }
        let row =
            outcome(&outcomes, 2)?.first::<RememberedRow>()?.ok_or_else(|| StoreError::Failed("an idempotency claim vanished".into()))?;
        let response = match (row.status, row.sealed) {
            (Some(status), Some(sealed)) => Some((status as u16, sealed)),
            _ => None,
        };
        Ok(Some(Remembered { fingerprint: row.fingerprint, response }))
    }

    async fn remember_response(&self, request: &IdempotentRequest, status: u16, sealed: &str) -> Result<(), StoreError> {
        let mut binds = key_binds(request);
        binds.extend([("status", int(status as i64)), ("sealed", text(sealed)), ("fingerprint", text(&request.fingerprint))]);
        let sql = "UPDATE idempotency_keys SET status = :status, sealed = :sealed \
                   WHERE scope = :scope AND idem_key = :idem_key AND fingerprint = :fingerprint AND status IS NULL";
        self.query(Statement::new(sql, &binds)?).await?;
        Ok(())
    }

    async fn forget_claim(&self, request: &IdempotentRequest) -> Result<(), StoreError> {
        let mut binds = key_binds(request);
        binds.push(("fingerprint", text(&request.fingerprint)));
        let sql =
            "DELETE FROM idempotency_keys WHERE scope = :scope AND idem_key = :idem_key AND fingerprint = :fingerprint AND status IS NULL";
        self.query(Statement::new(sql, &binds)?).await?;
        Ok(())
    }
}
