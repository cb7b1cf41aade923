//! Who is calling: the operator (admin token) or a platform key.

use super::call::Call;
use crate::crypto::digest::secrets_match;
use crate::error::ApiError;
use crate::keys::{KeyRecord, PlatformKey};
use crate::store::KeyStore;
use crate::workspaces::Workspace;

/// The token of `Authorization: Bearer <token>`, if that is the scheme.
pub fn bearer_token(call: &Call) -> Option<String> {
    let value = call.header("authorization")?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string()).filter(|t| !t.is_empty())
}

/// Admits the operator: the bearer token must equal `ADMIN_TOKEN`, compared in constant time.
/// Without a configured token no one is the operator.
pub fn require_admin(call: &Call) -> Result<(), ApiError> {
    let expected = call.env_string("ADMIN_TOKEN").filter(|t| !t.is_empty()).ok_or(ApiError::Unauthorized)?;
    let given = bearer_token(call).ok_or(ApiError::Unauthorized)?;
    if secrets_match(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// The platform key sent with `Authorization: Bearer` or the legacy `x-api-key`.
pub fn presented_key(call: &Call) -> Option<String> {
    bearer_token(call).or_else(|| call.header("x-api-key").map(|k| k.trim().to_string()).filter(|k| !k.is_empty()))
}

/// An authenticated platform key and the workspace it belongs to.
pub struct Caller {
    pub key: KeyRecord,
    pub workspace: Workspace,
}

/// Authenticates a platform key: format and checksum first (no I/O), then one lookup by hash.
pub async fn require_key(call: &Call) -> Result<Caller, ApiError> {
    let presented = presented_key(call).ok_or(ApiError::Unauthorized)?;
    let key = PlatformKey::parse(&call.settings.key_prefix, &presented).map_err(|_| ApiError::Unauthorized)?;
    let (key, workspace) = call.store()?.key_by_hash(&key.hash()).await?.ok_or(ApiError::Unauthorized)?;
    if key.revoked_at.is_some_and(|at| at <= call.now_ms) || key.expires_at.is_some_and(|at| at <= call.now_ms) {
        return Err(ApiError::Unauthorized);
    }
    Ok(Caller { key, workspace })
}
