//! Usage counts and credit balances in D1: what the key authority writes in batches, and what
//! authentication does per request when there is no authority (`KEY_AUTHORITY=catalogue`).
//!
//! Without the authority a use costs one more round trip after the read: the usage count, and
//! for a key with credits the spend, in one batch. That mode is kept for comparison; with the
//! authority, uses are counted in the key's object and written here once a second at most.

use serde::Deserialize;

use super::exec::{int, opt_int, text, Executor, Statement, Value};
use super::SqlStore;
use crate::keys::authority::UsageRow;
use crate::keys::credits::{Calendar, Credits};
use crate::keys::usage::{hour_start, judge, Counts, Outcome};
use crate::keys::KeyRecord;
use crate::storage::StoreError;

/// The counter of the uses counted here, without the key authority.
const COUNTED_IN_CATALOGUE: &str = "catalogue";

/// The usage columns, in `Outcome::ALL`'s order.
const COLUMNS: [&str; 5] = ["valid", "rate_limited", "credits_exhausted", "insufficient_capabilities", "ip_not_allowed"];

fn column(outcome: Outcome) -> &'static str {
    COLUMNS[Outcome::ALL.iter().position(|o| *o == outcome).expect("every outcome has a column")]
}

#[derive(Deserialize)]
pub(crate) struct UsageRowSql {
    key_id: String,
    hour_start: i64,
    valid: i64,
    rate_limited: i64,
    credits_exhausted: i64,
    insufficient_capabilities: i64,
    ip_not_allowed: i64,
}

impl UsageRowSql {
    pub(crate) fn into_counts(self) -> (String, i64, Counts) {
        let counts = [self.valid, self.rate_limited, self.credits_exhausted, self.insufficient_capabilities, self.ip_not_allowed];
        (self.key_id, self.hour_start, Counts(counts.map(|n| n.max(0) as u64)))
    }
}

#[derive(Deserialize)]
struct BalanceRow {
    credits_remaining: Option<i64>,
    credits_refilled_at: Option<i64>,
}

/// The statements that bring a key's balance to `now_ms`'s interval: a refill due since the
/// last one sets it to the amount, once (a second run in the same interval changes nothing).
fn refill_statement(key: &KeyRecord, credits: &Credits, calendar: Calendar, now_ms: i64) -> Result<Option<Statement>, StoreError> {
    let Some(refill) = credits.refill else { return Ok(None) };
    let start = calendar.interval_start(refill.interval, now_ms);
    Statement::new(
        "UPDATE api_keys SET credits_remaining = credits_refill_amount, credits_refilled_at = :interval_start \
         WHERE id = :id AND credits_refill_amount IS NOT NULL AND credits_refilled_at < :interval_start",
        &[("id", text(&key.id)), ("interval_start", int(start))],
    )
    .map(Some)
}

fn balance_statement(key_id: &str) -> Result<Statement, StoreError> {
    Statement::new("SELECT credits_remaining, credits_refilled_at FROM api_keys WHERE id = :id", &[("id", text(key_id))])
}

fn read_balance(credits: Credits, outcome: &super::exec::Outcome) -> Result<Credits, StoreError> {
    Ok(match outcome.first::<BalanceRow>()? {
        Some(BalanceRow { credits_remaining: Some(remaining), credits_refilled_at }) => {
            Credits { remaining: remaining.max(0) as u64, refilled_at: credits_refilled_at.unwrap_or(credits.refilled_at), ..credits }
        }
        _ => credits,
    })
}

/// The audit entry of a balance change, in the change's batch: inserted as every entry is,
/// then its detail's `remaining` read from the row the change just wrote.
fn audit_with_balance_statements(audit: &crate::audit::AuditEvent, key_id: &str) -> Result<[Statement; 2], StoreError> {
    let balance = Statement::new(
        "UPDATE audit_events SET detail = json_set(detail, '$.remaining', \
         (SELECT credits_remaining FROM api_keys WHERE id = :key_id)) WHERE id = :audit_id",
        &[("key_id", text(key_id)), ("audit_id", text(&audit.id))],
    )?;
    Ok([super::insert_audit_statement(audit, None)?, balance])
}

/// Adds one use to the key's hour: to `outcome`'s column, or, after a spend, to `valid` if the
/// statement just before changed a row and to `credits_exhausted` if not.
fn count_statement(key: &KeyRecord, now_ms: i64, outcome: Option<Outcome>) -> Result<Statement, StoreError> {
    let increments: Vec<String> = COLUMNS
        .iter()
        .map(|name| match outcome {
            Some(outcome) => format!("{}", (*name == column(outcome)) as i64),
            None if *name == "valid" => "CASE WHEN changes() > 0 THEN 1 ELSE 0 END".to_string(),
            None if *name == "credits_exhausted" => "CASE WHEN changes() > 0 THEN 0 ELSE 1 END".to_string(),
            None => "0".to_string(),
        })
        .collect();
    let updates: Vec<String> = COLUMNS.iter().map(|name| format!("{name} = key_usage.{name} + excluded.{name}")).collect();
    Statement::new(
        &format!(
            "INSERT INTO key_usage (key_id, workspace_id, hour_start, counted_by, {}) \
             VALUES (:key_id, :workspace_id, :hour_start, :counted_by, {}) \
             ON CONFLICT (key_id, hour_start, counted_by) DO UPDATE SET {}",
            COLUMNS.join(", "),
            increments.join(", "),
            updates.join(", ")
        ),
        &[
            ("key_id", text(&key.id)),
            ("workspace_id", text(&key.workspace_id)),
            ("hour_start", int(hour_start(now_ms))),
            ("counted_by", text(COUNTED_IN_CATALOGUE)),
        ],
    )
}

impl<E: Executor> SqlStore<E> {
    /// Settles a counted use of a live key without the authority: judged as the object would,
    /// the spend conditional in SQL (so concurrent uses never overdraw), counted in the hour.
    /// The key's credits become its balance after.
    pub(crate) async fn settle_in_catalogue(
        &self,
        key: &mut KeyRecord,
        ask: &crate::keys::usage::Ask,
        rate_allowed: bool,
        calendar: Calendar,
        now_ms: i64,
    ) -> Result<Outcome, StoreError> {
        let refused = judge(key.allowed_ips.as_ref(), &key.capabilities, ask, rate_allowed);
        let Some(credits) = key.credits.filter(|_| refused.is_none()) else {
            let outcome = refused.unwrap_or(Outcome::Valid);
            self.query(count_statement(key, now_ms, Some(outcome))?).await?;
            return Ok(outcome);
        };
        let mut statements: Vec<Statement> = refill_statement(key, &credits, calendar, now_ms)?.into_iter().collect();
        statements.push(Statement::new(
            "UPDATE api_keys SET credits_remaining = credits_remaining - :cost WHERE id = :id AND credits_remaining >= :cost",
            &[("id", text(&key.id)), ("cost", int(ask.cost as i64))],
        )?);
        let spent_at = statements.len() - 1;
        statements.push(count_statement(key, now_ms, None)?);
        statements.push(balance_statement(&key.id)?);
        let outcomes = self.batch(statements).await?;
        let spent = outcomes.get(spent_at).is_some_and(|o| o.changes > 0);
        if let Some(balance) = outcomes.last() {
            key.credits = Some(read_balance(credits.current(calendar, now_ms), balance)?);
        }
        Ok(if spent { Outcome::Valid } else { Outcome::CreditsExhausted })
    }

    /// Adds or sets a balance in D1, after any refill due; the balance after.
    pub(crate) async fn change_credits_in_catalogue(
        &self,
        key: &KeyRecord,
        change: crate::keys::authority::CreditChange,
        calendar: Calendar,
        now_ms: i64,
        precondition: &crate::storage::Precondition,
        audit: Option<&crate::audit::AuditEvent>,
    ) -> Result<Credits, StoreError> {
        use crate::keys::authority::CreditChange;
        use crate::keys::credits::MAX_CREDITS;
        let credits = key.credits.unwrap_or_else(|| Credits::new(0, None, calendar, now_ms));
        let mut statements: Vec<Statement> = refill_statement(key, &credits, calendar, now_ms)?.into_iter().collect();
        if change == CreditChange::Take {
            // Read and emptied in one atomic batch: no spend falls between them.
            statements.push(balance_statement(&key.id)?);
            let read_at = statements.len() - 1;
            statements.push(Statement::new(
                "UPDATE api_keys SET credits_remaining = 0, credits_refill_amount = NULL, credits_refill_interval = NULL, \
                 credits_refilled_at = :now WHERE id = :id",
                &[("id", text(&key.id)), ("now", int(now_ms))],
            )?);
            let outcomes = self.batch_under(precondition, statements).await?;
            let balance = outcomes.get(read_at).ok_or_else(|| StoreError::Failed("credits batch returned nothing".into()))?;
            return read_balance(credits.current(calendar, now_ms), balance);
        }
        let added = "MIN(COALESCE(credits_remaining, 0) + :amount, :max)";
        let (sql, amount) = match change {
            CreditChange::Add(amount) => {
                (format!("credits_remaining = {added}, credits_refilled_at = COALESCE(credits_refilled_at, :now)"), amount)
            }
            CreditChange::Set(remaining) => {
                ("credits_remaining = :amount, credits_refilled_at = COALESCE(credits_refilled_at, :now)".into(), remaining)
            }
            // Every right-hand side reads the row as it was: the refill comes back only to a
            // key without one, with the interval it was refilled for.
            CreditChange::Return(returned) => (
                format!(
                    "credits_remaining = {added}, \
                     credits_refilled_at = CASE WHEN credits_refill_amount IS NULL THEN :refilled_at ELSE credits_refilled_at END, \
                     credits_refill_interval = CASE WHEN credits_refill_amount IS NULL THEN :interval ELSE credits_refill_interval END, \
                     credits_refill_amount = COALESCE(credits_refill_amount, :refill_amount)"
                ),
                returned.current(calendar, now_ms).remaining,
            ),
            CreditChange::Take => unreachable!("taken above"),
        };
        let returned = match change {
            CreditChange::Return(returned) => Some(returned.current(calendar, now_ms)),
            _ => None,
        };
        let refill = returned.and_then(|r| r.refill);
        statements.push(Statement::new(
            &format!("UPDATE api_keys SET {sql} WHERE id = :id"),
            &[
                ("id", text(&key.id)),
                ("amount", int(amount as i64)),
                ("max", int(MAX_CREDITS as i64)),
                ("now", int(now_ms)),
                ("refilled_at", int(returned.map_or(now_ms, |r| r.refilled_at))),
                ("interval", refill.map_or(Value::Null, |r| text(r.interval.as_str()))),
                ("refill_amount", opt_int(refill.map(|r| r.amount as i64))),
            ],
        )?);
        statements.push(balance_statement(&key.id)?);
        let read_at = statements.len() - 1;
        if let Some(audit) = audit {
            statements.extend(audit_with_balance_statements(audit, &key.id)?);
        }
        let outcomes = self.batch_under(precondition, statements).await?;
        let balance = outcomes.get(read_at).ok_or_else(|| StoreError::Failed("credits batch returned nothing".into()))?;
        read_balance(credits.current(calendar, now_ms), balance)
    }

    /// Writes `counted_by`'s absolute counts in chunks of 200 rows, each one statement whose
    /// JSON stays far below D1's 2 MB value limit, so a backlog after an outage drains rather
    /// than failing whole.
    pub(crate) async fn write_usage(&self, counted_by: &str, rows: &[UsageRow]) -> Result<(), StoreError> {
        for chunk in rows.chunks(200) {
            self.write_usage_chunk(counted_by, chunk).await?;
        }
        Ok(())
    }

    async fn write_usage_chunk(&self, counted_by: &str, rows: &[UsageRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|row| {
                let mut item = serde_json::json!({"key_id": row.key_id, "workspace_id": row.workspace_id, "hour_start": row.hour_start});
                for outcome in Outcome::ALL {
                    item[column(outcome)] = serde_json::json!(row.counts.get(outcome));
                }
                item
            })
            .collect();
        let extracts: Vec<String> = COLUMNS.iter().map(|name| format!("json_extract(value, '$.{name}')")).collect();
        let maxes: Vec<String> = COLUMNS.iter().map(|name| format!("{name} = MAX(key_usage.{name}, excluded.{name})")).collect();
        // `WHERE true` tells SQLite's parser the ON CONFLICT belongs to the upsert, not a join.
        let sql = format!(
            "INSERT INTO key_usage (key_id, workspace_id, hour_start, counted_by, {}) \
             SELECT json_extract(value, '$.key_id'), json_extract(value, '$.workspace_id'), json_extract(value, '$.hour_start'), \
             :counted_by, {} FROM json_each(:rows) WHERE true ON CONFLICT (key_id, hour_start, counted_by) DO UPDATE SET {}",
            COLUMNS.join(", "),
            extracts.join(", "),
            maxes.join(", ")
        );
        let rows = serde_json::to_string(&items).map_err(|e| StoreError::Failed(format!("usage rows: {e}")))?;
        self.query(Statement::new(&sql, &[("rows", Value::Text(rows)), ("counted_by", text(counted_by))])?).await?;
        Ok(())
    }

    pub(crate) async fn write_credits(&self, balances: &[(String, Credits)]) -> Result<(), StoreError> {
        for chunk in balances.chunks(50) {
            let statements = chunk
                .iter()
                .map(|(key_id, credits)| {
                    // The refill too: a reroll's move takes it away, and D1 must not bring it back.
                    Statement::new(
                        "UPDATE api_keys SET credits_remaining = :remaining, credits_refilled_at = :refilled_at, \
                         credits_refill_amount = :refill_amount, credits_refill_interval = :interval WHERE id = :id",
                        &[
                            ("id", text(key_id)),
                            ("remaining", int(credits.remaining as i64)),
                            ("refilled_at", opt_int(Some(credits.refilled_at))),
                            ("refill_amount", opt_int(credits.refill.map(|r| r.amount as i64))),
                            ("interval", credits.refill.map_or(Value::Null, |r| text(r.interval.as_str()))),
                        ],
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.batch(statements).await?;
        }
        Ok(())
    }

    /// Summed per bucket of `bucket_ms` in SQL: a day query of 100 keys reads at most 100 rows
    /// a day, not 24.
    pub(crate) async fn read_usage(
        &self,
        workspace_id: &str,
        key_ids: &[String],
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<(String, i64, Counts)>, StoreError> {
        if key_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(key_ids).map_err(|e| StoreError::Failed(format!("key ids: {e}")))?;
        let sums: Vec<String> = COLUMNS.iter().map(|name| format!("SUM({name}) AS {name}")).collect();
        let sql = format!(
            "SELECT key_id, (hour_start / :bucket) * :bucket AS hour_start, {} FROM key_usage WHERE workspace_id = :workspace_id \
             AND key_id IN (SELECT value FROM json_each(:ids)) AND hour_start >= :from AND hour_start < :to \
             GROUP BY key_id, (hour_start / :bucket) ORDER BY key_id, hour_start",
            sums.join(", ")
        );
        let binds = [
            ("workspace_id", text(workspace_id)),
            ("ids", Value::Text(ids)),
            ("from", int(from_ms)),
            ("to", int(to_ms)),
            ("bucket", int(bucket_ms)),
        ];
        let rows = self.query(Statement::new(&sql, &binds)?).await?.rows::<UsageRowSql>()?;
        Ok(rows.into_iter().map(UsageRowSql::into_counts).collect())
    }

    pub(crate) async fn delete_usage_before(&self, before_ms: i64, limit: usize) -> Result<usize, StoreError> {
        let outcome = self
            .query(Statement::new(
                "DELETE FROM key_usage WHERE rowid IN (SELECT rowid FROM key_usage WHERE hour_start < :before LIMIT :limit)",
                &[("before", int(before_ms)), ("limit", int(limit as i64))],
            )?)
            .await?;
        Ok(outcome.changes as usize)
    }
}
