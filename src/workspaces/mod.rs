//! Workspaces: the tenant boundary. Every key and provider belongs to exactly one.

use serde_json::json;

use crate::audit::AuditEvent;
use crate::crypto::random::random_base62;
use crate::deps::Deps;
use crate::error::ApiError;
use crate::keys::record::KeySpec;
use crate::keys::{Capabilities, KeyRecord, LeakPolicy, MeteredFallback, PlatformKey};
use crate::name::Name;
use crate::page::{Page, PageRequest};

pub mod store;

use store::WorkspaceStore;

/// The record lives beside the keys that belong to it (authentication reads it with the key);
/// this module owns its use cases.
pub use crate::keys::Workspace;

#[derive(Debug, Clone)]
pub struct NewWorkspace {
    pub name: Name,
    pub default_capabilities: Capabilities,
    pub metered_fallback: MeteredFallback,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkspacePatch {
    pub name: Option<Name>,
    pub read_only: Option<bool>,
    pub default_capabilities: Option<Capabilities>,
    /// `Some(None)` removes the limit; `None` leaves it as it is.
    pub max_key_lifetime_seconds: Option<Option<u64>>,
    pub leak_policy: Option<LeakPolicy>,
    pub metered_fallback: Option<MeteredFallback>,
}

/// A new workspace, its owner key (capabilities `*`) and the plaintext of that key.
pub struct CreatedWorkspace {
    pub workspace: Workspace,
    pub owner_key: KeyRecord,
    pub plaintext: PlatformKey,
}

pub const OWNER_KEY_NAME: &str = "Owner key";

/// The longest lifetime policy a workspace may set: ten years.
pub const MAX_KEY_LIFETIME_LIMIT: u64 = 10 * 365 * 86_400;

/// 400 unless `seconds` is a lifetime a policy may name: 1 second to ten years.
pub fn check_max_key_lifetime(seconds: u64) -> Result<(), ApiError> {
    if (1..=MAX_KEY_LIFETIME_LIMIT).contains(&seconds) {
        Ok(())
    } else {
        let message = format!("`max_key_lifetime_seconds` must be 1 to {MAX_KEY_LIFETIME_LIMIT} (ten years), or null for no limit.");
        Err(ApiError::invalid_request("max_key_lifetime_seconds", message))
    }
}

pub async fn create<S: WorkspaceStore, B, C>(deps: &Deps<'_, S, B, C>, new: NewWorkspace) -> Result<CreatedWorkspace, ApiError> {
    let (store, prefix, now_ms) = (deps.store, deps.key_prefix(), deps.now_ms);
    let workspace = Workspace {
        id: format!("ws_{}", random_base62(20)),
        name: new.name.into_string(),
        read_only: false,
        max_key_lifetime_seconds: None,
        leak_policy: LeakPolicy::default(),
        metered_fallback: new.metered_fallback,
        default_capabilities: new.default_capabilities,
        created_at: now_ms,
    };
    let spec = KeySpec {
        workspace_id: workspace.id.clone(),
        name: Name::parse(OWNER_KEY_NAME).map_err(ApiError::internal)?,
        capabilities: Capabilities::all(),
        subject: None,
        rate_limit: None,
        expires_at: None,
        rerolled_from: None,
        allowed_ips: None,
        credits: None,
    };
    let (owner_key, plaintext) = KeyRecord::issue(spec, prefix, now_ms);
    let audit = AuditEvent::new(Some(&workspace.id), "key.created", now_ms)
        .target(owner_key.id.clone())
        .detail(json!({"name": owner_key.name, "capabilities": owner_key.capabilities.to_strings(), "owner": true}));
    store.insert_workspace(&workspace, &owner_key, &audit).await?;
    Ok(CreatedWorkspace { workspace, owner_key, plaintext })
}

pub async fn get<S: WorkspaceStore, B, C>(deps: &Deps<'_, S, B, C>, id: &str) -> Result<Workspace, ApiError> {
    deps.store.workspace(id).await?.ok_or(ApiError::NotFound)
}

pub async fn list<S: WorkspaceStore, B, C>(deps: &Deps<'_, S, B, C>, page: &PageRequest) -> Result<Page<Workspace>, ApiError> {
    let rows = deps.store.workspaces_after(page.after.as_ref(), page.limit + 1).await?;
    Ok(Page::from_rows(rows, page.limit, Workspace::cursor))
}

pub async fn update<S: WorkspaceStore, B, C>(deps: &Deps<'_, S, B, C>, id: &str, patch: &WorkspacePatch) -> Result<Workspace, ApiError> {
    deps.store.update_workspace(id, patch).await?.ok_or(ApiError::NotFound)
}
