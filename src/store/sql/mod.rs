//! The SQL of the storage ports, written once: D1 runs it in the Worker and SQLite in native
//! tests, through the same [`Executor`].

use std::rc::Rc;

use serde::Deserialize;

pub(crate) mod audit;
pub mod exec;
mod expiry;
mod housekeeping;
mod idempotency;
mod keys;
pub(crate) mod providers;
mod usage;
pub(crate) mod webhooks;
mod workspaces;

use exec::{int, json_text, opt_int, opt_text, text};
pub use exec::{Executor, Outcome, Statement, Value};

use crate::audit::AuditEvent;
use crate::keys::authority::KeyAuthority;
use crate::keys::credits::{Credits, Interval, Refill};
use crate::keys::{Capabilities, KeyRecord, LeakAction, LeakPolicy, MeteredFallback, RateLimit};
use crate::storage::{Precondition, Refusal, StoreError};
use crate::workspaces::Workspace;

/// Every storage port over one SQL executor, and the key authority that answers
/// authentication when there is one (keeping it consistent is this store's job: every write
/// that changes what authentication reads holds it first).
pub struct SqlStore<E> {
    exec: E,
    authority: Option<Rc<dyn KeyAuthority>>,
    /// Whether the authority also answers authentication, or only is kept consistent (so that
    /// switching `KEY_AUTHORITY` back to `object` finds every object up to date).
    authenticates: bool,
}

impl<E: Executor> SqlStore<E> {
    pub fn over(exec: E) -> Self {
        SqlStore { exec, authority: None, authenticates: false }
    }

    /// The same store keeping `authority` consistent with every write, and asking it to
    /// authenticate when `authenticates`.
    pub fn with_authority(self, authority: Rc<dyn KeyAuthority>, authenticates: bool) -> Self {
        SqlStore { authority: Some(authority), authenticates, ..self }
    }

    /// The authority every write that changes what authentication reads must hold.
    pub(crate) fn authority(&self) -> Option<&dyn KeyAuthority> {
        self.authority.as_deref()
    }

    /// The authority that answers authentication, if it is not D1.
    pub(crate) fn authenticating_authority(&self) -> Option<&dyn KeyAuthority> {
        self.authority().filter(|_| self.authenticates)
    }

    pub fn executor(&self) -> &E {
        &self.exec
    }

    pub(crate) async fn batch(&self, statements: Vec<Statement>) -> Result<Vec<Outcome>, StoreError> {
        self.exec.batch(statements).await
    }

    pub(crate) async fn query(&self, statement: Statement) -> Result<Outcome, StoreError> {
        self.exec.query(statement).await
    }

    /// Runs `statements` as one batch that commits only if `precondition` still holds when it
    /// does: the batch opens with an insert into `commit_preconditions`, whose trigger aborts
    /// it otherwise (migration 0007), and the whole batch rolls back. The outcomes are those
    /// of `statements`, in order.
    pub(crate) async fn batch_under(
        &self,
        precondition: &Precondition,
        mut statements: Vec<Statement>,
    ) -> Result<Vec<Outcome>, StoreError> {
        if precondition.is_unconditional() {
            return self.batch(statements).await;
        }
        let check = Statement::new(
            "INSERT INTO commit_preconditions (workspace_id, key_id, writable) VALUES (:workspace_id, :key_id, :writable)",
            &[
                ("workspace_id", text(&precondition.workspace_id)),
                ("key_id", opt_text(precondition.key_id.as_deref())),
                ("writable", int(precondition.writable as i64)),
            ],
        )?;
        statements.insert(0, check);
        let mut outcomes = self.batch(statements).await.map_err(refused_or_failed)?;
        outcomes.remove(0);
        Ok(outcomes)
    }
}

/// The database's clock in Unix ms, for conditions that must be judged at commit time: every
/// commit is ordered by it, so a revoke that committed first is seen by every later commit.
pub(crate) const DB_NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

/// The live-key rule of [`KeyRecord::is_live`] in SQL, on the `api_keys` row named `table` at
/// time `now` (a bind such as `:now`, or [`DB_NOW_MS`]): not revoked (a future `revoked_at` is
/// a grace period still running) and not expired. Migration 0007's trigger restates it.
pub(crate) fn live_key(table: &str, now: &str) -> String {
    format!("({table}.revoked_at IS NULL OR {table}.revoked_at > {now}) AND ({table}.expires_at IS NULL OR {table}.expires_at > {now})")
}

/// Tells a precondition the trigger refused from any other failure, by its message.
fn refused_or_failed(error: StoreError) -> StoreError {
    let StoreError::Failed(text) = &error else { return error };
    if text.contains("keywarden_precondition:caller_not_live") {
        StoreError::Refused(Refusal::CallerNotLive)
    } else if text.contains("keywarden_precondition:workspace_read_only") {
        StoreError::Refused(Refusal::WorkspaceReadOnly)
    } else {
        error
    }
}

fn outcome(outcomes: &[Outcome], index: usize) -> Result<&Outcome, StoreError> {
    outcomes.get(index).ok_or_else(|| StoreError::Failed(format!("batch returned {} outcomes, wanted #{index}", outcomes.len())))
}

pub(crate) fn capabilities_from(column: &str) -> Result<Capabilities, StoreError> {
    let items: Vec<String> = serde_json::from_str(column).map_err(|e| StoreError::Failed(format!("capabilities column: {e}")))?;
    Capabilities::parse(&items).map_err(StoreError::Failed)
}

pub(crate) fn capabilities_text(capabilities: &Capabilities) -> Value {
    json_text(&serde_json::json!(capabilities.to_strings()))
}

#[derive(Deserialize)]
pub(crate) struct WorkspaceRow {
    id: String,
    name: String,
    read_only: i64,
    default_capabilities: String,
    created_at: i64,
    max_key_lifetime_seconds: Option<i64>,
    leak_action: String,
    leak_grace_seconds: i64,
    metered_fallback: String,
}

impl WorkspaceRow {
    pub(crate) fn into_workspace(self) -> Result<Workspace, StoreError> {
        Ok(Workspace {
            id: self.id,
            name: self.name,
            read_only: self.read_only != 0,
            default_capabilities: capabilities_from(&self.default_capabilities)?,
            created_at: self.created_at,
            max_key_lifetime_seconds: self.max_key_lifetime_seconds.map(|seconds| seconds.max(0) as u64),
            leak_policy: LeakPolicy {
                action: LeakAction::parse(&self.leak_action)
                    .ok_or_else(|| StoreError::Failed(format!("leak_action {:?}", self.leak_action)))?,
                grace_seconds: self.leak_grace_seconds.clamp(0, u32::MAX as i64) as u32,
            },
            metered_fallback: MeteredFallback::parse(&self.metered_fallback)
                .ok_or_else(|| StoreError::Failed(format!("metered_fallback {:?}", self.metered_fallback)))?,
        })
    }
}

pub(crate) const WORKSPACE_COLUMNS: &str =
    "id, name, read_only, default_capabilities, created_at, max_key_lifetime_seconds, leak_action, leak_grace_seconds, metered_fallback";

#[derive(Deserialize)]
pub(crate) struct KeyRow {
    id: String,
    workspace_id: String,
    name: String,
    key_hash: String,
    prefix: String,
    last4: String,
    capabilities: String,
    subject: Option<String>,
    rate_limit: Option<i64>,
    rate_window_seconds: Option<i64>,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
    rerolled_from: Option<String>,
    old_key_grace_ms: Option<i64>,
    allowed_ips: Option<String>,
    credits_remaining: Option<i64>,
    credits_refill_amount: Option<i64>,
    credits_refill_interval: Option<String>,
    credits_refilled_at: Option<i64>,
}

impl KeyRow {
    pub(crate) fn into_record(self) -> Result<KeyRecord, StoreError> {
        let subject = match self.subject {
            Some(text) => Some(serde_json::from_str(&text).map_err(|e| StoreError::Failed(format!("subject column: {e}")))?),
            None => None,
        };
        let rate_limit = match (self.rate_limit, self.rate_window_seconds) {
            (Some(limit), Some(window)) => Some(RateLimit { limit: limit as u32, window_seconds: window as u32 }),
            _ => None,
        };
        Ok(KeyRecord {
            id: self.id,
            workspace_id: self.workspace_id,
            name: self.name,
            key_hash: self.key_hash,
            prefix: self.prefix,
            last4: self.last4,
            capabilities: capabilities_from(&self.capabilities)?,
            subject,
            rate_limit,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
            rerolled_from: self.rerolled_from,
            old_key_grace_ms: self.old_key_grace_ms,
            allowed_ips: match self.allowed_ips.as_deref() {
                Some(text) => Some(serde_json::from_str(text).map_err(|e| StoreError::Failed(format!("allowed_ips column: {e}")))?),
                None => None,
            },
            credits: self.credits_remaining.map(|remaining| Credits {
                remaining: remaining.max(0) as u64,
                refill: match (self.credits_refill_amount, self.credits_refill_interval.as_deref().and_then(Interval::parse)) {
                    (Some(amount), Some(interval)) => Some(Refill { amount: amount.max(0) as u64, interval }),
                    _ => None,
                },
                refilled_at: self.credits_refilled_at.unwrap_or(0),
            }),
        })
    }
}

pub(crate) fn key_records(outcome: &Outcome) -> Result<Vec<KeyRecord>, StoreError> {
    outcome.rows::<KeyRow>()?.into_iter().map(KeyRow::into_record).collect()
}

pub(crate) const KEY_COLUMNS: &str = "id, workspace_id, name, key_hash, prefix, last4, capabilities, subject, \
    rate_limit, rate_window_seconds, created_at, expires_at, revoked_at, last_used_at, rerolled_from, old_key_grace_ms, \
    allowed_ips, credits_remaining, credits_refill_amount, credits_refill_interval, credits_refilled_at";

/// A condition under which an insert happens, in the same statement: SQL over its own named
/// binds (which must not reuse the inserted columns' names).
pub(crate) struct Guard<'a> {
    pub sql: &'a str,
    pub binds: Vec<(&'static str, Value)>,
}

impl Guard<'_> {
    /// Only if the statement just before in the batch changed a row.
    pub(crate) fn after_a_change() -> Guard<'static> {
        Guard { sql: "changes() > 0", binds: vec![] }
    }
}

/// `INSERT INTO table (columns) SELECT :column, ... [WHERE guard]`, one named bind per column.
fn guarded_insert(table: &str, mut binds: Vec<(&'static str, Value)>, guard: Option<Guard>) -> Result<Statement, StoreError> {
    let columns: Vec<&str> = binds.iter().map(|(name, _)| *name).collect();
    let values: Vec<String> = columns.iter().map(|name| format!(":{name}")).collect();
    let mut sql = format!("INSERT INTO {table} ({}) SELECT {}", columns.join(", "), values.join(", "));
    if let Some(guard) = guard {
        sql.push_str(" WHERE ");
        sql.push_str(guard.sql);
        binds.extend(guard.binds);
    }
    Statement::new(&sql, &binds)
}

pub(crate) fn insert_key_statement(key: &KeyRecord, guard: Option<Guard>) -> Result<Statement, StoreError> {
    let binds = vec![
        ("id", text(&key.id)),
        ("workspace_id", text(&key.workspace_id)),
        ("name", text(&key.name)),
        ("key_hash", text(&key.key_hash)),
        ("prefix", text(&key.prefix)),
        ("last4", text(&key.last4)),
        ("capabilities", capabilities_text(&key.capabilities)),
        ("subject", key.subject.as_ref().map_or(Value::Null, json_text)),
        ("rate_limit", opt_int(key.rate_limit.map(|r| r.limit as i64))),
        ("rate_window_seconds", opt_int(key.rate_limit.map(|r| r.window_seconds as i64))),
        ("created_at", int(key.created_at)),
        ("expires_at", opt_int(key.expires_at)),
        ("revoked_at", opt_int(key.revoked_at)),
        ("last_used_at", opt_int(key.last_used_at)),
        ("rerolled_from", opt_text(key.rerolled_from.as_deref())),
        ("old_key_grace_ms", opt_int(key.old_key_grace_ms)),
        ("allowed_ips", key.allowed_ips.as_ref().map_or(Value::Null, |list| json_text(&serde_json::json!(list.to_strings())))),
        ("credits_remaining", opt_int(key.credits.map(|c| c.remaining as i64))),
        ("credits_refill_amount", opt_int(key.credits.and_then(|c| c.refill).map(|r| r.amount as i64))),
        ("credits_refill_interval", opt_text(key.credits.and_then(|c| c.refill).map(|r| r.interval.as_str()))),
        ("credits_refilled_at", opt_int(key.credits.map(|c| c.refilled_at))),
    ];
    guarded_insert("api_keys", binds, guard)
}

pub(crate) fn insert_audit_statement(event: &AuditEvent, guard: Option<Guard>) -> Result<Statement, StoreError> {
    let binds = vec![
        ("id", text(&event.id)),
        ("workspace_id", opt_text(event.workspace_id.as_deref())),
        ("at", int(event.at)),
        ("action", text(&event.action)),
        ("actor_key_id", opt_text(event.actor_key_id.as_deref())),
        ("target", opt_text(event.target.as_deref())),
        ("ip", opt_text(event.ip.as_deref())),
        ("detail", json_text(&event.detail)),
    ];
    guarded_insert("audit_events", binds, guard)
}
