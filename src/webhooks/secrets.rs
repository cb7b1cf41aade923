//! The secrets of both directions: the inbound `whsec_` secret a workspace's senders sign
//! with, and its notification endpoint's secret keywarden signs deliveries with. Both are
//! sealed like provider keys and shown once.

use serde_json::json;

use super::signature::WebhookSecret;
use super::store::{Endpoint, SealedSecret, SecretKind, WebhookStore};
use crate::audit::AuditEvent;
use crate::crypto::random::random_base62;
use crate::deps::Deps;
use crate::error::ApiError;
use crate::providers::host::ApiHost;
use crate::storage::Precondition;
use crate::vault::{self, Keks, SecretContext};

pub const DEFAULT_GRACE_SECONDS: u64 = 3_600;
pub const MAX_GRACE_SECONDS: u64 = 604_800;

/// A secret stored without a name was sealed before names were bound, and opens the old way.
pub fn context<'a>(kind: SecretKind, secret: &'a SealedSecret) -> SecretContext<'a> {
    SecretContext {
        workspace_id: &secret.workspace_id,
        kind: kind.context_kind(),
        version: secret.version,
        name: secret.name.as_deref().unwrap_or_default(),
        accepts_unbound: secret.name.is_none(),
    }
}

/// A fresh, never reused name for a sealed secret of this kind and version.
pub fn new_sealed_name(kind: SecretKind, workspace_id: &str, version: i64) -> String {
    format!("{}/{workspace_id}/{version}-{}", kind.context_kind(), random_base62(12))
}

pub fn seal(
    keks: &Keks,
    kind: SecretKind,
    workspace_id: &str,
    version: i64,
    secret: &WebhookSecret,
    now_ms: i64,
) -> Result<SealedSecret, ApiError> {
    let mut stored = SealedSecret {
        workspace_id: workspace_id.to_string(),
        version,
        sealed: String::new(),
        kek_id: keks.current_id().to_string(),
        created_at: now_ms,
        name: Some(new_sealed_name(kind, workspace_id, version)),
    };
    stored.sealed = vault::seal(keks, secret.expose().as_bytes(), &context(kind, &stored)).map_err(ApiError::internal)?;
    Ok(stored)
}

pub fn open(keks: &Keks, kind: SecretKind, secret: &SealedSecret) -> Result<WebhookSecret, ApiError> {
    let plaintext =
        vault::open(keks, &secret.sealed, &context(kind, secret)).map_err(|e| ApiError::DecryptionFailed { detail: e.to_string() })?;
    let text = String::from_utf8(plaintext).map_err(ApiError::internal)?;
    WebhookSecret::parse(&text).ok_or_else(|| ApiError::internal("a sealed webhook secret is not a whsec_ secret"))
}

/// Issues a new inbound secret; the previous one keeps verifying for `grace_seconds`.
pub async fn rotate_inbound<S: WebhookStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    precondition: &Precondition,
    grace_seconds: u64,
    audit: AuditEvent,
) -> Result<(WebhookSecret, i64), ApiError> {
    let (store, keks, now_ms) = (deps.store, deps.keks()?, deps.now_ms);
    let workspace_id = precondition.workspace_id.as_str();
    let secret = WebhookSecret::generate();
    let version = store.latest_webhook_secret_version(workspace_id).await? + 1;
    let sealed = seal(keks, SecretKind::Webhook, workspace_id, version, &secret, now_ms)?;
    let audit = audit.detail(json!({"version": version, "grace_seconds": grace_seconds}));
    if !store.rotate_webhook_secret(&sealed, now_ms + grace_seconds as i64 * 1000, &audit, precondition).await? {
        return Err(ApiError::Conflict);
    }
    Ok((secret, now_ms))
}

/// The inbound secrets still honoured: the current one and any within its grace period.
pub async fn honoured<S: WebhookStore, B, C>(deps: &Deps<'_, S, B, C>, workspace_id: &str) -> Result<Vec<WebhookSecret>, ApiError> {
    let keks = deps.keks()?;
    deps.store.webhook_secrets(workspace_id, deps.now_ms).await?.iter().map(|s| open(keks, SecretKind::Webhook, s)).collect()
}

/// Registers (or replaces) the workspace's notification endpoint with a fresh secret.
pub async fn set_endpoint<S: WebhookStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    precondition: &Precondition,
    url: &str,
    audit: AuditEvent,
) -> Result<(Endpoint, WebhookSecret), ApiError> {
    let (store, keks, now_ms) = (deps.store, deps.keks()?, deps.now_ms);
    let workspace_id = precondition.workspace_id.as_str();
    let url = ApiHost::parse(url, deps.allow_insecure_hosts()).map_err(|reason| ApiError::InvalidHost { field: "url".into(), reason })?;
    let current = store.endpoint(workspace_id).await?.map(|e| e.secret.version);
    let version = current.map_or(1, |v| v + 1);
    let secret = WebhookSecret::generate();
    let endpoint =
        Endpoint { url: url.as_str().to_string(), secret: seal(keks, SecretKind::Endpoint, workspace_id, version, &secret, now_ms)? };
    // Two registrations at once: only one secret may be the one that signs, so the other loses.
    if !store.save_endpoint(&endpoint, current, &audit.detail(json!({"url": endpoint.url})), precondition).await? {
        return Err(ApiError::Conflict);
    }
    Ok((endpoint, secret))
}

/// The workspace's notification endpoint.
pub async fn endpoint<S: WebhookStore, B, C>(deps: &Deps<'_, S, B, C>, workspace_id: &str) -> Result<Endpoint, ApiError> {
    deps.store.endpoint(workspace_id).await?.ok_or(ApiError::NotConfigured)
}

/// Removes the notification endpoint; idempotent, and audited only when there was one.
pub async fn remove_endpoint<S: WebhookStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    precondition: &Precondition,
    audit: AuditEvent,
) -> Result<(), ApiError> {
    deps.store.remove_endpoint(precondition, &audit).await?;
    Ok(())
}
