//! The platform-key use cases behind `/v1/keys`: create, list, read, revoke, reroll.

use serde_json::{json, Value};

use super::allowlist::Allowlist;
use super::auth::Caller;
use super::authority::CreditChange;
use super::bounds::{check_holds, check_may_manage, Terms};
use super::credits::{Calendar, Credits, Refill};
use super::record::KeySpec;
use super::store::{KeyStore, Revocation};
use super::usage::{buckets, Bucket, Counts, Granularity, DAY_MS, HOUR_MS};
use super::{Capabilities, KeyRecord, PlatformKey, RateLimit};
use crate::deps::Deps;
use crate::error::ApiError;
use crate::name::Name;
use crate::outbox::OutboxEvent;
use crate::page::{Cursor, Page, PageRequest};
use crate::storage::Precondition;

pub const MAX_SUBJECT_BYTES: usize = 2048;
pub const MAX_GRACE_SECONDS: u64 = 604_800;

/// A reroll with grace from first use keeps the old key at most this long in all.
pub const FIRST_USE_GRACE_CAP_MS: i64 = 30 * 24 * 3_600_000;

/// When a reroll's grace starts: at once, or at the successor's first use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraceStarts {
    #[default]
    Now,
    FirstUse,
}
/// Ten years: far enough for any real expiry, near enough to keep the arithmetic exact.
pub const MAX_EXPIRES_IN_SECONDS: u64 = 315_360_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    InSeconds(u64),
    AtMs(i64),
}

#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: Name,
    /// `None`: the workspace's default capabilities.
    pub capabilities: Option<Capabilities>,
    pub subject: Option<Value>,
    pub expiry: Expiry,
    pub rate_limit: Option<RateLimit>,
    pub allowed_ips: Option<Allowlist>,
    /// The balance to start with, and its refill.
    pub credits: Option<(u64, Option<Refill>)>,
}

fn expires_at(expiry: Expiry, now_ms: i64) -> Result<Option<i64>, ApiError> {
    match expiry {
        Expiry::Never => Ok(None),
        Expiry::InSeconds(seconds) => Ok(Some(now_ms + seconds as i64 * 1000)),
        Expiry::AtMs(at) if at > now_ms => Ok(Some(at)),
        Expiry::AtMs(_) => Err(ApiError::invalid_request("expires_at", "`expires_at` must be in the future.")),
    }
}

/// 422 `lifetime_exceeds_policy` (naming `field`) unless a key issued at `now_ms` with
/// `expires_at` fits the workspace's lifetime policy: with a policy, it must expire, and no
/// later than the policy allows.
fn check_lifetime(workspace: &super::Workspace, expires_at: Option<i64>, now_ms: i64, field: &str) -> Result<(), ApiError> {
    let Some(max_seconds) = workspace.max_key_lifetime_seconds else { return Ok(()) };
    let latest = now_ms + max_seconds as i64 * 1000;
    if expires_at.is_some_and(|at| at <= latest) {
        Ok(())
    } else {
        Err(ApiError::LifetimeExceedsPolicy { field: field.to_string(), max_seconds })
    }
}

pub async fn create<S: KeyStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    caller: &Caller,
    new: NewKey,
) -> Result<(KeyRecord, PlatformKey), ApiError> {
    let (store, prefix, now_ms) = (deps.store, deps.key_prefix(), deps.now_ms);
    caller.require("keys:write")?;
    caller.require_writable()?;
    let capabilities = new.capabilities.unwrap_or_else(|| caller.workspace.default_capabilities.clone());
    check_holds(&caller.key, &capabilities)?;
    let expiry_field = match new.expiry {
        Expiry::InSeconds(_) => "expires_in",
        Expiry::Never | Expiry::AtMs(_) => "expires_at",
    };
    let requested = Terms { expires_at: expires_at(new.expiry, now_ms)?, rate_limit: new.rate_limit, subject: new.subject };
    let terms = Terms::inherit(&caller.key, requested)?;
    check_lifetime(&caller.workspace, terms.expires_at, now_ms, expiry_field)?;
    let spec = KeySpec {
        workspace_id: caller.workspace.id.clone(),
        name: new.name,
        capabilities,
        subject: terms.subject,
        rate_limit: terms.rate_limit,
        expires_at: terms.expires_at,
        rerolled_from: None,
        allowed_ips: new.allowed_ips,
        credits: new.credits.map(|(remaining, refill)| Credits::new(remaining, refill, crate::keys::credits::Calendar::of(deps), now_ms)),
    };
    let (record, key) = KeyRecord::issue(spec, prefix, now_ms);
    let audit = caller
        .audit("key.created", now_ms)
        .target(record.id.clone())
        .detail(json!({"name": record.name, "capabilities": record.capabilities.to_strings()}));
    store.insert_key(&record, &audit, &caller.write_precondition()).await?;
    Ok((record, key))
}

pub async fn list<S: KeyStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    caller: &Caller,
    include_revoked: bool,
    page: &PageRequest,
) -> Result<Page<KeyRecord>, ApiError> {
    caller.require("keys:read")?;
    let (store, now_ms) = (deps.store, deps.now_ms);
    let calendar = Calendar::of(deps);
    let rows = store.keys_after(&caller.workspace.id, include_revoked, now_ms, page.after.as_ref(), page.limit + 1).await?;
    let mut listed = Page::from_rows(rows, page.limit, |k| Cursor { position: k.created_at, id: k.id.clone() });
    // Live balances: the key authority is asked only when the page has a metered key, and
    // `settle` answers every metered key's balance.
    let metered: Vec<KeyRecord> = listed.items.iter().filter(|key| key.credits.is_some()).cloned().collect();
    if !metered.is_empty() {
        let balances = store.settle(&metered, calendar, now_ms).await?;
        for key in &mut listed.items {
            key.credits = balances.iter().find(|(id, _)| *id == key.id).map(|(_, credits)| *credits);
        }
    }
    Ok(listed)
}

/// A key with its live balance.
pub async fn get<S: KeyStore, B, C>(deps: &Deps<'_, S, B, C>, caller: &Caller, id: &str) -> Result<KeyRecord, ApiError> {
    caller.require("keys:read")?;
    let mut key = deps.store.key(&caller.workspace.id, id).await?.ok_or(ApiError::NotFound)?;
    key.credits = deps.store.live_credits(&key, Calendar::of(deps), deps.now_ms).await?;
    Ok(key)
}

/// Adds to or sets a key's credits (an unmetered key becomes metered); exact with uses running.
/// Managing a key's credits needs what revoking it needs.
pub async fn change_credits<S: KeyStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    caller: &Caller,
    id: &str,
    change: CreditChange,
) -> Result<KeyRecord, ApiError> {
    caller.require("keys:write")?;
    caller.require_writable()?;
    let now_ms = deps.now_ms;
    let mut key = deps.store.key(&caller.workspace.id, id).await?.ok_or(ApiError::NotFound)?;
    check_may_manage(&caller.key, &key)?;
    if !key.is_live(now_ms) {
        return Err(if key.revoked_at.is_some() { ApiError::KeyRevoked } else { ApiError::KeyExpired });
    }
    // The store fills in `remaining`, the balance after, as it records the change.
    let detail = match change {
        CreditChange::Add(amount) => json!({"add": amount}),
        CreditChange::Set(remaining) => json!({"set": remaining}),
        CreditChange::Take | CreditChange::Return(_) => return Err(ApiError::internal("a reroll's move is not a credits change")),
    };
    let audit = caller.audit("key.credits_changed", now_ms).target(key.id.clone()).detail(detail);
    let credits = deps.store.change_credits(&key, change, Calendar::of(deps), now_ms, &caller.write_precondition(), Some(&audit)).await?;
    key.credits = Some(credits);
    Ok(key)
}

/// One key's usage, in buckets of `granularity`, from the catalogue (which the key authority
/// brings up to date before each read).
#[derive(Debug, Clone)]
pub struct KeyUsage {
    pub key: KeyRecord,
    pub buckets: Vec<Bucket>,
}

/// The usage of a page of the workspace's keys (newest first, as `list` pages them) in
/// `[from, to)`, in one read.
pub async fn usage<S: KeyStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    caller: &Caller,
    only: Option<&str>,
    window: UsageWindow,
    page: &PageRequest,
) -> Result<Page<KeyUsage>, ApiError> {
    caller.require("keys:read")?;
    let keys = match only {
        Some(id) => {
            let key = deps.store.key(&caller.workspace.id, id).await?.ok_or(ApiError::NotFound)?;
            Page { items: vec![key], next_cursor: None }
        }
        None => {
            let rows = deps.store.keys_after(&caller.workspace.id, true, deps.now_ms, page.after.as_ref(), page.limit + 1).await?;
            Page::from_rows(rows, page.limit, |k| Cursor { position: k.created_at, id: k.id.clone() })
        }
    };
    let ids: Vec<String> = keys.items.iter().map(|k| k.id.clone()).collect();
    // Every use answered before this read is in it.
    deps.store.settle(&keys.items, Calendar::of(deps), deps.now_ms).await?;
    let hours = deps.store.usage(&caller.workspace.id, &ids, window.from_ms, window.to_ms, window.granularity.bucket_ms()).await?;
    let items = keys
        .items
        .into_iter()
        .map(|key| {
            let own: Vec<(i64, Counts)> =
                hours.iter().filter(|(id, _, _)| *id == key.id).map(|(_, hour, counts)| (*hour, *counts)).collect();
            KeyUsage { buckets: buckets(&own, window.granularity), key }
        })
        .collect();
    Ok(Page { items, next_cursor: keys.next_cursor })
}

/// What a usage query spans: `[from, to)` aligned to its granularity.
#[derive(Debug, Clone, Copy)]
pub struct UsageWindow {
    pub from_ms: i64,
    pub to_ms: i64,
    pub granularity: Granularity,
}

impl UsageWindow {
    /// `from` and `to` (Unix ms) aligned down to the granularity; `to` defaults to now and
    /// `from` to a day (hours) or 30 days (days) before it. 400 for a reversed range or one
    /// longer than the granularity allows.
    pub fn new(from_ms: Option<i64>, to_ms: Option<i64>, granularity: Granularity, now_ms: i64) -> Result<Self, ApiError> {
        let to = to_ms.unwrap_or(now_ms);
        let default_span = match granularity {
            Granularity::Hour => 24 * HOUR_MS,
            Granularity::Day => 30 * DAY_MS,
        };
        let from = from_ms.unwrap_or(to - default_span);
        // The span asked for is what the limit judges; aligning it may add a bucket at each end.
        if to - from > granularity.max_span_ms() {
            let most = match granularity {
                Granularity::Hour => "7 days of hours",
                Granularity::Day => "100 days",
            };
            return Err(ApiError::invalid_request("from", format!("One query spans at most {most}.")));
        }
        let from = granularity.start(from);
        // The bucket `to` falls in is included when `to` is not on its boundary.
        let to_aligned = granularity.start(to);
        let to = if to_aligned == to { to } else { to_aligned + granularity.bucket_ms() };
        if from >= to {
            return Err(ApiError::invalid_request("from", "`from` must be before `to`."));
        }
        Ok(UsageWindow { from_ms: from, to_ms: to, granularity })
    }
}

/// Revokes with effect on the next request; a repeat answers the first revocation's time. A
/// key may only revoke keys it could have made: ones whose capabilities it holds.
pub async fn revoke<S: KeyStore, B, C>(deps: &Deps<'_, S, B, C>, caller: &Caller, id: &str) -> Result<Revocation, ApiError> {
    caller.require("keys:write")?;
    caller.require_writable()?;
    let target = deps.store.key(&caller.workspace.id, id).await?.ok_or(ApiError::NotFound)?;
    check_may_manage(&caller.key, &target)?;
    let audit = caller.audit("key.revoked", deps.clock_ms());
    revoke_in(deps, &caller.write_precondition(), &target, "api", audit).await
}

/// Revokes a key of the precondition's workspace on behalf of whoever `audit` names (a key,
/// or a signed webhook, `reason` says which). The request that revokes it queues
/// `api_key.revoked` in the same batch; a repeat answers quietly.
pub async fn revoke_in<S: KeyStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    precondition: &Precondition,
    target: &KeyRecord,
    reason: &str,
    audit: crate::audit::AuditEvent,
) -> Result<Revocation, ApiError> {
    let audit = audit.target(target.id.clone());
    let data = target.revoked_notice_data(reason);
    let notification = OutboxEvent::new(&precondition.workspace_id, "api_key.revoked", data, deps.now_ms);
    deps.store.revoke_key(precondition, &target.id, deps.clock_ms(), &audit, &notification).await?.ok_or(ApiError::NotFound)
}

/// A reroll's outcome: the successor (its plaintext shown once) and when the old key stops.
#[derive(Debug)]
pub struct Rerolled {
    pub successor: KeyRecord,
    pub key: PlatformKey,
    pub old_key_stops_at: i64,
    /// The id of the `api_key.rerolled` notification queued with it.
    pub queued: Option<String>,
}

/// Issues a successor with the same name, capabilities, subject, rate limit and expiry; the
/// old key keeps working for `grace_seconds`. The caller must hold everything the successor
/// will: its capabilities and, when the caller is bounded, its expiry, rate limit and subject.
pub async fn reroll<S: KeyStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    caller: &Caller,
    id: &str,
    grace_seconds: u64,
    grace_starts: GraceStarts,
) -> Result<Rerolled, ApiError> {
    caller.require("keys:write")?;
    caller.require_writable()?;
    let (store, prefix, now_ms) = (deps.store, deps.key_prefix(), deps.clock_ms());
    let old = store.key(&caller.workspace.id, id).await?.ok_or(ApiError::NotFound)?;
    // A key rerolling itself after its revocation is a request of a dead key: 401, as any.
    if old.id == caller.key.id && !old.is_live(now_ms) {
        return Err(ApiError::Unauthorized);
    }
    check_may_manage(&caller.key, &old)?;
    Terms::of(&old).check_within(&caller.key)?;
    if old.revoked_at.is_some_and(|at| at <= now_ms) {
        return Err(ApiError::KeyRevoked);
    }
    if old.expires_at.is_some_and(|at| at <= now_ms) {
        return Err(ApiError::KeyExpired);
    }
    if let Some(successor_id) = store.successor_of(&old.id).await? {
        return Err(ApiError::AlreadyRerolled { successor_id });
    }
    // The successor keeps the old key's expiry, so that is what the policy judges.
    check_lifetime(&caller.workspace, old.expires_at, now_ms, "expires_at")?;
    let spec = KeySpec {
        workspace_id: old.workspace_id.clone(),
        name: Name::from_stored(&old.name),
        capabilities: old.capabilities.clone(),
        subject: old.subject.clone(),
        rate_limit: old.rate_limit,
        expires_at: old.expires_at,
        rerolled_from: Some(old.id.clone()),
        allowed_ips: old.allowed_ips.clone(),
        // The balance moves, refill and all: two keys spending one balance would double it.
        credits: match old.credits {
            Some(_) => {
                Some(store.change_credits(&old, CreditChange::Take, Calendar::of(deps), now_ms, &caller.write_precondition(), None).await?)
            }
            None => None,
        },
    };
    let (mut successor, key) = KeyRecord::issue(spec, prefix, now_ms);
    let grace_ms = grace_seconds as i64 * 1000;
    // From first use: the old key works until the successor's first use, then `grace_ms` more,
    // and never past the cap; the first use moves its end (see `auth::authenticate`).
    let ends_in_ms = match grace_starts {
        GraceStarts::Now => grace_ms,
        GraceStarts::FirstUse => {
            successor.old_key_grace_ms = Some(grace_ms);
            FIRST_USE_GRACE_CAP_MS
        }
    };
    let audit = caller.audit("key.rerolled", now_ms).target(old.id.clone()).detail(json!({
        "successor": successor.id,
        "grace_seconds": grace_seconds,
        "grace_starts": if grace_starts == GraceStarts::FirstUse { "first_use" } else { "now" },
    }));
    // `old_key_stops_at` is the batch's to say; it is set there.
    let data = json!({"key_id": old.id, "successor_id": successor.id, "old_key_stops_at": null});
    let notification = OutboxEvent::new(&caller.workspace.id, "api_key.rerolled", data, deps.now_ms);
    // Live is judged again when the batch commits: a revoke that committed first wins.
    let committed = store.reroll_key(&old.id, &successor, ends_in_ms, now_ms, &audit, &notification, &caller.write_precondition()).await;
    let refused = match committed {
        Ok(Some(ended)) => return Ok(Rerolled { successor, key, old_key_stops_at: ended.old_key_stops_at, queued: ended.queued }),
        // Refused as it committed: a racing reroll made its successor first, or a revoke won.
        Ok(None) => match store.successor_of(&old.id).await? {
            Some(successor_id) => ApiError::AlreadyRerolled { successor_id },
            None => ApiError::KeyRevoked,
        },
        Err(error) => ApiError::from(error),
    };
    // The balance this reroll took goes back: to the racing reroll's successor, which may have
    // taken nothing, or else to the old key.
    if let Some(taken) = successor.credits.filter(|taken| taken.remaining > 0 || taken.refill.is_some()) {
        let owner = match &refused {
            ApiError::AlreadyRerolled { successor_id } => store.key(&caller.workspace.id, successor_id).await.ok().flatten(),
            _ => None,
        };
        // A failure here is the answer (a 500, its cause logged): it is worse than the refusal.
        // Given back whatever became of the caller: the balance was never the caller's to lose.
        let anyway = Precondition::unconditional(&caller.workspace.id);
        store.change_credits(&owner.unwrap_or(old), CreditChange::Return(taken), Calendar::of(deps), now_ms, &anyway, None).await?;
    }
    Err(refused)
}
