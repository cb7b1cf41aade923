//! The platform-key use cases behind `/v1/keys`: create, list, read, revoke, reroll.

use serde_json::{json, Value};

use super::auth::Caller;
use super::record::KeySpec;
use super::{Capabilities, KeyPrefix, KeyRecord, PlatformKey, RateLimit};
use crate::error::ApiError;
use crate::name::Name;
use crate::page::{Cursor, Page, PageRequest};
use crate::store::KeyStore;

pub const MAX_SUBJECT_BYTES: usize = 2048;
pub const MAX_GRACE_SECONDS: u64 = 604_800;
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
}

fn expires_at(expiry: Expiry, now_ms: i64) -> Result<Option<i64>, ApiError> {
    match expiry {
        Expiry::Never => Ok(None),
        Expiry::InSeconds(seconds) => Ok(Some(now_ms + seconds as i64 * 1000)),
        Expiry::AtMs(at) if at > now_ms => Ok(Some(at)),
        Expiry::AtMs(_) => Err(ApiError::invalid_request("expires_at", "`expires_at` must be in the future.")),
    }
}

/// 403 `capability_escalation` if `wanted` grants anything the caller's key does not hold.
fn check_escalation(caller: &Caller, wanted: &Capabilities) -> Result<(), ApiError> {
    match caller.key.capabilities.first_not_covered(wanted) {
        Some(capability) => Err(ApiError::CapabilityEscalation { capability: capability.to_string() }),
        None => Ok(()),
    }
}

pub async fn create(
    store: &impl KeyStore,
    caller: &Caller,
    new: NewKey,
    prefix: &KeyPrefix,
    now_ms: i64,
) -> Result<(KeyRecord, PlatformKey), ApiError> {
    caller.require("keys:write")?;
    caller.require_writable()?;
    let capabilities = new.capabilities.unwrap_or_else(|| caller.workspace.default_capabilities.clone());
    check_escalation(caller, &capabilities)?;
    let spec = KeySpec {
        workspace_id: caller.workspace.id.clone(),
        name: new.name,
        capabilities,
        subject: new.subject,
        rate_limit: new.rate_limit,
        expires_at: expires_at(new.expiry, now_ms)?,
        rerolled_from: None,
    };
    let (record, key) = KeyRecord::issue(spec, prefix, now_ms);
    let audit = caller
        .audit("key.created", now_ms)
        .target(record.id.clone())
        .detail(json!({"name": record.name, "capabilities": record.capabilities.to_strings()}));
    store.insert_key(&record, &audit).await?;
    Ok((record, key))
}

pub async fn list(
    store: &impl KeyStore,
    caller: &Caller,
    include_revoked: bool,
    page: &PageRequest,
    now_ms: i64,
) -> Result<Page<KeyRecord>, ApiError> {
    caller.require("keys:read")?;
    let rows = store.keys_after(&caller.workspace.id, include_revoked, now_ms, page.after.as_ref(), page.limit + 1).await?;
    Ok(Page::from_rows(rows, page.limit, |k| Cursor { created_at: k.created_at, id: k.id.clone() }))
}

pub async fn get(store: &impl KeyStore, caller: &Caller, id: &str) -> Result<KeyRecord, ApiError> {
    caller.require("keys:read")?;
    store.key(&caller.workspace.id, id).await?.ok_or(ApiError::NotFound)
}

/// Revokes with effect on the next request; a repeat answers the first revocation's time.
pub async fn revoke(store: &impl KeyStore, caller: &Caller, id: &str, now_ms: i64) -> Result<KeyRecord, ApiError> {
    caller.require("keys:write")?;
    let audit = caller.audit("key.revoked", now_ms);
    revoke_in(store, &caller.workspace, id, audit, now_ms).await
}

/// Revokes a key of `workspace` on behalf of whoever `audit` names (a key, or a signed webhook).
pub async fn revoke_in(
    store: &impl KeyStore,
    workspace: &crate::workspaces::Workspace,
    id: &str,
    audit: crate::audit::AuditEvent,
    now_ms: i64,
) -> Result<KeyRecord, ApiError> {
    if workspace.read_only {
        return Err(ApiError::WorkspaceReadOnly);
    }
    let audit = audit.target(id.to_string());
    store.revoke_key(&workspace.id, id, now_ms, &audit).await?.ok_or(ApiError::NotFound)
}

/// Issues a successor with the same name, capabilities, subject, rate limit and expiry; the
/// old key keeps working for `grace_seconds`.
pub async fn reroll(
    store: &impl KeyStore,
    caller: &Caller,
    id: &str,
    grace_seconds: u64,
    prefix: &KeyPrefix,
    now_ms: i64,
) -> Result<(KeyRecord, PlatformKey), ApiError> {
    caller.require("keys:write")?;
    caller.require_writable()?;
    let old = store.key(&caller.workspace.id, id).await?.ok_or(ApiError::NotFound)?;
    if old.revoked_at.is_some_and(|at| at <= now_ms) {
        return Err(ApiError::KeyRevoked);
    }
    if old.expires_at.is_some_and(|at| at <= now_ms) {
        return Err(ApiError::KeyExpired);
    }
    let spec = KeySpec {
        workspace_id: old.workspace_id.clone(),
        name: Name::from_stored(&old.name),
        capabilities: old.capabilities.clone(),
        subject: old.subject.clone(),
        rate_limit: old.rate_limit,
        expires_at: old.expires_at,
        rerolled_from: Some(old.id.clone()),
    };
    let (successor, key) = KeyRecord::issue(spec, prefix, now_ms);
    let old_ends_at = now_ms + grace_seconds as i64 * 1000;
    let audit = caller
        .audit("key.rerolled", now_ms)
        .target(old.id.clone())
        .detail(json!({"successor": successor.id, "grace_seconds": grace_seconds}));
    if !store.reroll_key(&old.id, &successor, old_ends_at, now_ms, &audit).await? {
        return Err(ApiError::KeyRevoked);
    }
    Ok((successor, key))
}
