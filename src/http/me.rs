//! `GET /v1/me` (the calling key, its workspace and its subject) and `GET /v1/workspace`
//! (the calling key's workspace in full).

use serde_json::json;

use super::call::Call;
use super::reply::Reply;
use crate::error::ApiError;
use crate::time::rfc3339;

pub async fn me(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let calendar = crate::keys::credits::Calendar::of(&call.deps());
    let key = &caller.key.clone().as_of(calendar, call.now_ms);
    Ok(Reply::ok(json!({
        "key": {
            "id": key.id,
            "name": key.name,
            "capabilities": key.capabilities.to_strings(),
            "created_at": rfc3339(key.created_at),
            "expires_at": key.expires_at.map(rfc3339),
            "last4": key.last4,
            "credits": key.credits.map(crate::keys::credits::Credits::to_json),
            "allowed_ips": key.allowed_ips.as_ref().map(crate::keys::allowlist::Allowlist::to_strings),
        },
        "workspace": {
            "id": caller.workspace.id,
            "name": caller.workspace.name,
            "read_only": caller.workspace.read_only,
        },
        "subject": key.subject,
    })))
}

/// The caller's workspace as the operator sees it, so a key holder can tell which capabilities a
/// key created without `capabilities` gets, and whether writes are refused.
pub async fn workspace(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    Ok(Reply::ok(caller.workspace.to_json()))
}
