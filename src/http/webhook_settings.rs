//! `POST /v1/webhooks/secret` (the inbound signing secret) and `/v1/webhooks/endpoint` (where
//! notifications go). Both secrets are shown once, in the response that creates them.

use serde_json::json;

use super::call::Call;
use super::reply::Reply;
use crate::error::ApiError;
use crate::time::rfc3339;
use crate::webhooks::secrets::{self, DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS};

pub async fn rotate_secret(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let mut fields = call.fields(&["grace_seconds"]).await?;
    let grace_seconds = match fields.optional_u64("grace_seconds")? {
        None => DEFAULT_GRACE_SECONDS,
        Some(seconds) if seconds <= MAX_GRACE_SECONDS => seconds,
        Some(_) => return Err(ApiError::invalid_request("grace_seconds", format!("`grace_seconds` must be 0 to {MAX_GRACE_SECONDS}."))),
    };
    let audit = caller.audit("webhook.secret_rotated", call.now_ms);
    let (secret, created_at) = secrets::rotate_inbound(&call.deps(), &caller.write_precondition(), grace_seconds, audit).await?;
    Ok(Reply::created(json!({"secret": secret.expose(), "created_at": rfc3339(created_at)})).no_store())
}

pub async fn put_endpoint(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let mut fields = call.fields(&["url"]).await?;
    let url = fields.required_str("url")?;
    let audit = caller.audit("notifications.endpoint_set", call.now_ms);
    let (endpoint, secret) = secrets::set_endpoint(&call.deps(), &caller.write_precondition(), &url, audit).await?;
    let body = json!({"url": endpoint.url, "secret": secret.expose(), "created_at": rfc3339(endpoint.secret.created_at)});
    Ok(Reply::ok(body).no_store())
}

pub async fn get_endpoint(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let endpoint = secrets::endpoint(&call.deps(), &caller.workspace.id).await?;
    Ok(Reply::ok(json!({"url": endpoint.url, "created_at": rfc3339(endpoint.secret.created_at)})))
}

/// Idempotent: removing an endpoint that is not there answers the same.
pub async fn delete_endpoint(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let audit = caller.audit("notifications.endpoint_removed", call.now_ms);
    secrets::remove_endpoint(&call.deps(), &caller.write_precondition(), audit).await?;
    Ok(Reply::ok(json!({"status": "removed"})))
}
