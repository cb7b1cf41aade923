//! `POST /v1/leaks` (operator): a secret scanner's report of tokens found in public.

use serde_json::Value;

use super::call::Call;
use super::input::Fields;
use super::reply::Reply;
use crate::error::ApiError;
use crate::keys::leaks::{self, LeakReport};

/// The revocations' notifications are queued with them; the first attempts are made after the
/// response, for at most this many (each costs about three queries and a subrequest of the
/// invocation's budget), and the scheduled handler delivers the rest.
const FIRST_ATTEMPTS: usize = 25;

/// Makes the first delivery attempts of `queued` notifications after the response.
pub fn deliver_after_response(call: &Call, queued: usize) {
    if queued > 0 {
        call.deliver_after_response(None, queued.min(FIRST_ATTEMPTS));
    }
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
    let reports = read_reports(call.json().await?)?;
    let (labels, revoked) = leaks::report(&call.store()?, &reports, None, &call.settings.key_prefix, call.now_ms).await?;
    deliver_after_response(call, revoked.len());
    Ok(Reply::ok(Value::Array(labels.iter().map(|l| l.to_json()).collect())))
}
