//! Who is calling: the operator (admin token) or a platform key.

use super::call::Call;
use crate::crypto::digest::secrets_match;
use crate::error::ApiError;
use crate::keys::auth::{authenticate, Caller};

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
fn presented_key(call: &Call) -> Option<String> {
    bearer_token(call).or_else(|| call.header("x-api-key").map(|k| k.trim().to_string()).filter(|k| !k.is_empty()))
}

/// Authenticates the request's platform key. The key's `RateLimit-*` headers go on whatever
/// the response turns out to be, and `last_used_at` is written after the response.
/// `required` is the route's capability: a use that lacks it is counted as such and spends no
/// credit.
pub async fn require_key(call: &mut Call, required: Option<&str>) -> Result<Caller, ApiError> {
    let presented = presented_key(call);
    let ip = call.client_ip();
    let outcome = authenticate(&call.deps(), presented.as_deref(), ip.as_deref(), required).await;
    match outcome {
        Ok(authenticated) => {
            if let Some(rate) = authenticated.rate {
                call.response_headers.extend(rate.headers());
            }
            if authenticated.needs_touch {
                call.touch_after_response(&authenticated.caller.key.id);
            }
            Ok(authenticated.caller)
        }
        Err(rejection) => {
            if let Some(ip) = rejection.blocked_ip {
                let line = serde_json::json!({"level": "warn", "event": "auth.ip_blocked", "request_id": call.request_id, "ip": ip});
                worker::console_warn!("{line}");
            }
            if let Some(rate) = rejection.rate {
                call.response_headers.extend(rate.headers());
            }
            Err(rejection.error)
        }
    }
}
