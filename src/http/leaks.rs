//! `POST /v1/leaks` (operator): a secret scanner's report of tokens found in public.

use serde_json::Value;

use super::auth::require_admin;
use super::call::Call;
use super::input::Fields;
use super::reply::Reply;
use crate::error::ApiError;
use crate::keys::leaks::{self, LeakReport};
use crate::keys::KeyRecord;
use crate::time::rfc3339;
use crate::webhooks::outbox::OutboxEvent;

/// The `api_key.revoked` notification's data: ids and times, never the key.
pub fn revoked_event(key: &KeyRecord, reason: &str) -> Value {
    serde_json::json!({"key_id": key.id, "name": key.name, "revoked_at": key.revoked_at.map(rfc3339), "reason": reason})
}

/// Reads `[{token, type?, url?, source?}]`, naming a bad field by its index, e.g. `[2].token`.
pub fn read_reports(body: Value) -> Result<Vec<LeakReport>, ApiError> {
    let Value::Array(items) = body else {
        return Err(ApiError::invalid_request("body", "The request body must be a JSON array of reported tokens."));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let at = |error: ApiError| match error {
                ApiError::InvalidRequest { field, message } => ApiError::InvalidRequest {
                    field: if field == "body" { format!("[{index}]") } else { format!("[{index}].{field}") },
                    message,
                },
                other => other,
            };
            let mut fields = Fields::new(item, &["token", "type", "url", "source"]).map_err(at)?;
            let token = fields.required_str("token").map_err(at)?;
            Ok(LeakReport {
                token,
                kind: fields.optional_str("type").map_err(at)?,
                url: fields.optional_str("url").map_err(at)?,
                source: fields.optional_str("source").map_err(at)?,
            })
        })
        .collect()
}

pub async fn report(call: &mut Call) -> Result<Reply, ApiError> {
    require_admin(call)?;
    let reports = read_reports(call.json().await?)?;
    let (labels, revoked) = leaks::report(&call.store()?, &reports, None, &call.settings.key_prefix, call.now_ms).await?;
    for key in &revoked {
        call.notify(OutboxEvent::new(&key.workspace_id, "api_key.revoked", revoked_event(key, "leaked"), call.now_ms)).await;
    }
    Ok(Reply::ok(Value::Array(labels.iter().map(|l| l.to_json()).collect())))
}
