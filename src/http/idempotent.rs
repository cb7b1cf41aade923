//! `Idempotency-Key` for a handler: answer a remembered response again, or run the handler
//! and remember what it answered (`crate::idempotency` has the rules).

use serde_json::Value;

use super::call::Call;
use super::reply::Reply;
use crate::error::ApiError;
use crate::idempotency::{self, IdempotencyKey, IdempotentRequest};

/// What a handler does with the request: answer a replay, or run (under the claimed key, if
/// the request carried one).
pub enum Begun {
    Replay(Reply),
    Run(Option<IdempotentRequest>),
}

/// Reads `Idempotency-Key` (400 when malformed) and claims it for this `scope` (who calls
/// which route) and body; without the header the request just runs.
pub async fn begin(call: &Call, scope: String, body: &Value) -> Result<Begun, ApiError> {
    let Some(header) = call.header("idempotency-key") else { return Ok(Begun::Run(None)) };
    let request = IdempotentRequest::new(scope, IdempotencyKey::parse(&header)?, body);
    let deps = call.deps();
    match idempotency::begin(deps.store, deps.keks()?, &request, call.now_ms).await? {
        None => Ok(Begun::Run(Some(request))),
        Some(replay) => {
            let reply = Reply { status: replay.status, body: replay.body, headers: Vec::new() };
            Ok(Begun::Replay(reply.header("idempotent-replayed", "true").no_store()))
        }
    }
}

/// Remembers a successful reply under the claimed key, or gives the claim up after an error so
/// that a retry runs afresh. The reply goes out either way; a failure to remember is logged.
pub async fn finish(call: &Call, request: Option<IdempotentRequest>, result: Result<Reply, ApiError>) -> Result<Reply, ApiError> {
    let Some(request) = request else { return result };
    let deps = call.deps();
    let remembered = match (&result, deps.keks()) {
        (Ok(reply), Ok(keks)) if (200..300).contains(&reply.status) => {
            idempotency::remember(deps.store, keks, &request, reply.status, &reply.body).await
        }
        (Ok(reply), Err(error)) if (200..300).contains(&reply.status) => Err(error),
        _ => idempotency::forget(deps.store, &request).await,
    };
    if let Err(error) = remembered {
        // An unremembered claim would hold retries off for a day: give it up instead.
        let _ = idempotency::forget(deps.store, &request).await;
        worker::console_error!(
            "{}",
            serde_json::json!({"level": "error", "request_id": call.request_id, "msg": "idempotent response not remembered", "detail": error.to_string()})
        );
    }
    result
}
