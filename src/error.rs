//! The one error type of the API and its JSON envelope.
//!
//! Expected failures are values: a handler returns `Err(ApiError)` and the HTTP layer turns it
//! into `{"error": {"code", "message", ...}}` with the status and headers named here, so every
//! error the contract names is spelled in exactly one place.

use serde_json::{json, Map, Value};

/// At most this many characters of a name the client made up (an unknown field) are echoed.
pub const MAX_ECHOED_CHARS: usize = 64;

/// A name the client sent, as an error may repeat it: whole when short, else its first 64
/// characters and `…`, so that an error never hands a client's payload back to it.
pub fn echoed(name: &str) -> String {
    let mut chars = name.chars();
    let head: String = chars.by_ref().take(MAX_ECHOED_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("The request body is not valid JSON.")]
    InvalidJson,
    #[error("{message}")]
    InvalidRequest { field: String, message: String },
    #[error("The request body must be JSON (Content-Type: application/json).")]
    UnsupportedMediaType,
    #[error("The request body is larger than 64 KiB.")]
    PayloadTooLarge,
    #[error("A valid API key or admin token is required.")]
    Unauthorized,
    #[error("This key lacks the capability `{required}`.")]
    MissingCapability { required: String },
    #[error("This key may not create or manage a key with `{capability}`, which it does not hold itself.")]
    CapabilityEscalation { capability: String },
    #[error("This key may not give a key a wider `{field}` than its own.")]
    BoundEscalation { field: String },
    #[error("This workspace is read-only.")]
    WorkspaceReadOnly,
    #[error("No such resource.")]
    NotFound,
    #[error("This key is revoked: it can no longer be rerolled or given credits.")]
    KeyRevoked,
    #[error("This key has expired: it can no longer be rerolled or given credits.")]
    KeyExpired,
    #[error("Too many failed key authentications from this address; retry after the window ends.")]
    TooManyFailedAttempts { retry_after: u64 },
    #[error("This key's rate limit is exhausted; retry after the window ends.")]
    RateLimited { retry_after: u64 },
    #[error("This key has no credits left for this request.")]
    CreditsExhausted,
    #[error("This key may not be used from this address.")]
    IpNotAllowed,
    #[error("This route does not accept that method.")]
    MethodNotAllowed { allow: Vec<&'static str> },
    #[error("This key looks like a key of another provider ({detected}).")]
    WrongProvider { detected: String },
    #[error("`{field}` {reason}.")]
    InvalidHost { field: String, reason: String },
    #[error("The workspace lets a key live at most {max_seconds} seconds: give it an expiry within that.")]
    LifetimeExceedsPolicy { field: String, max_seconds: u64 },
    #[error("Invalid key. Validation failed.")]
    InvalidKey { provider_status: u16 },
    #[error("Invalid model name. Validation failed.")]
    InvalidModel { field: String },
    #[error("Key is valid but not allowed to do this. Check its permissions.")]
    KeyRestricted { provider_status: u16, provider_reason: String },
    #[error("The provider does not serve requests from this region with this key.")]
    RegionUnsupported { provider_status: u16, provider_reason: String },
    #[error("You exceeded your current quota")]
    QuotaExceeded { provider_status: u16 },
    #[error("The bring-your-own key cannot be used ({reason}) and metered fallback is denied: nothing was resolved.")]
    /// `provider` (the configured provider whose key cannot be used) is for the audit entry;
    /// the answer names only the reason.
    ByokUnavailable { reason: String, provider: String },
    #[error("The provider is rate limiting requests; retry later.")]
    ProviderRateLimited { retry_after: u64 },
    #[error("The provider could not be reached or failed to answer; retry later.")]
    ProviderUnavailable { provider_status: Option<u16> },
    #[error("Nothing is configured here for this workspace.")]
    NotConfigured,
    #[error("The provider `{provider}` is not configured for the workspace.")]
    ProviderNotConfigured { provider: String },
    #[error("The resource was changed by another request at the same time; retry.")]
    Conflict,
    #[error("The secret is being replicated; retry in a second.")]
    SecretUnavailable,
    #[error("This Idempotency-Key was used with another request body; use a new key for a new request.")]
    IdempotencyConflict,
    #[error("This key was already rerolled; its successor is {successor_id}.")]
    AlreadyRerolled { successor_id: String },
    #[error("The service is briefly overloaded. Retry after the number of seconds in Retry-After.")]
    Unavailable,
    #[error("{message}")]
    InvalidWebhook { message: String },
    #[error("The webhook timestamp is more than 300 seconds away from now.")]
    StaleWebhook,
    #[error("No valid signature for this workspace.")]
    InvalidSignature,
    #[error("The event type `{event}` is not supported.")]
    UnsupportedEvent { event: String },
    /// A stored secret that does not open: tampering or a missing KEK. Shown as `internal`.
    #[error("Something went wrong on our side. Quote the request id if you report it.")]
    DecryptionFailed { detail: String },
    #[error("Something went wrong on our side. Quote the request id if you report it.")]
    Internal { detail: String },
}

impl ApiError {
    pub fn invalid_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::InvalidRequest { field: field.into(), message: message.into() }
    }

    /// Wraps an internal cause; the cause is logged under the request id, never shown.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        ApiError::Internal { detail: detail.to_string() }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson => "invalid_json",
            ApiError::InvalidRequest { .. } => "invalid_request",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::Unauthorized => "unauthorized",
            ApiError::MissingCapability { .. } => "missing_capability",
            ApiError::CapabilityEscalation { .. } | ApiError::BoundEscalation { .. } => "capability_escalation",
            ApiError::WorkspaceReadOnly => "workspace_read_only",
            ApiError::NotFound => "not_found",
            ApiError::KeyRevoked => "key_revoked",
            ApiError::KeyExpired => "key_expired",
            ApiError::TooManyFailedAttempts { .. } => "too_many_failed_attempts",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::CreditsExhausted => "credits_exhausted",
            ApiError::IpNotAllowed => "ip_not_allowed",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::WrongProvider { .. } => "wrong_provider",
            ApiError::InvalidHost { .. } => "invalid_host",
            ApiError::InvalidKey { .. } => "invalid_key",
            ApiError::InvalidModel { .. } => "invalid_model",
            ApiError::LifetimeExceedsPolicy { .. } => "lifetime_exceeds_policy",
            ApiError::KeyRestricted { .. } => "key_restricted",
            ApiError::RegionUnsupported { .. } => "region_unsupported",
            ApiError::QuotaExceeded { .. } => "quota_exceeded",
            ApiError::ByokUnavailable { .. } => "byok_unavailable",
            ApiError::ProviderRateLimited { .. } => "provider_rate_limited",
            ApiError::ProviderUnavailable { .. } => "provider_unavailable",
            ApiError::NotConfigured => "not_configured",
            ApiError::ProviderNotConfigured { .. } => "provider_not_configured",
            ApiError::Conflict => "conflict",
            ApiError::SecretUnavailable => "secret_unavailable",
            ApiError::Unavailable => "unavailable",
            ApiError::IdempotencyConflict => "idempotency_conflict",
            ApiError::AlreadyRerolled { .. } => "already_rerolled",
            ApiError::InvalidWebhook { .. } => "invalid_webhook",
            ApiError::StaleWebhook => "stale_webhook",
            ApiError::InvalidSignature => "invalid_signature",
            ApiError::UnsupportedEvent { .. } => "unsupported_event",
            ApiError::Internal { .. } | ApiError::DecryptionFailed { .. } => "internal",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidJson
            | ApiError::InvalidRequest { .. }
            | ApiError::InvalidHost { .. }
            | ApiError::InvalidWebhook { .. }
            | ApiError::StaleWebhook
            | ApiError::UnsupportedEvent { .. } => 400,
            ApiError::InvalidSignature => 401,
            ApiError::WrongProvider { .. }
            | ApiError::InvalidKey { .. }
            | ApiError::InvalidModel { .. }
            | ApiError::LifetimeExceedsPolicy { .. }
            | ApiError::KeyRestricted { .. }
            | ApiError::RegionUnsupported { .. }
            | ApiError::QuotaExceeded { .. } => 422,
            ApiError::ProviderUnavailable { .. } => 502,
            ApiError::ProviderRateLimited { .. } | ApiError::SecretUnavailable | ApiError::Unavailable => 503,
            ApiError::NotConfigured => 404,
            ApiError::ProviderNotConfigured { .. }
            | ApiError::ByokUnavailable { .. }
            | ApiError::Conflict
            | ApiError::IdempotencyConflict
            | ApiError::AlreadyRerolled { .. } => 409,
            ApiError::Unauthorized => 401,
            ApiError::MissingCapability { .. }
            | ApiError::CapabilityEscalation { .. }
            | ApiError::BoundEscalation { .. }
            | ApiError::WorkspaceReadOnly
            | ApiError::IpNotAllowed => 403,
            ApiError::NotFound => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::KeyRevoked | ApiError::KeyExpired => 409,
            ApiError::TooManyFailedAttempts { .. } | ApiError::RateLimited { .. } | ApiError::CreditsExhausted => 429,
            ApiError::PayloadTooLarge => 413,
            ApiError::UnsupportedMediaType => 415,
            ApiError::Internal { .. } | ApiError::DecryptionFailed { .. } => 500,
        }
    }

    /// Headers the contract ties to this error.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            ApiError::MethodNotAllowed { allow } => vec![("allow", allow.join(", "))],
            ApiError::TooManyFailedAttempts { retry_after }
            | ApiError::RateLimited { retry_after }
            | ApiError::ProviderRateLimited { retry_after } => vec![("retry-after", retry_after.to_string())],
            ApiError::SecretUnavailable | ApiError::Unavailable => vec![("retry-after", "1".to_string())],
            _ => Vec::new(),
        }
    }

    /// The detail to log for this error, if it carries one the client must not see.
    pub fn log_detail(&self) -> Option<&str> {
        match self {
            ApiError::Internal { detail } | ApiError::DecryptionFailed { detail } => Some(detail),
            _ => None,
        }
    }

    pub fn envelope(&self) -> Value {
        let mut body = Map::new();
        body.insert("code".into(), json!(self.code()));
        body.insert("message".into(), json!(self.to_string()));
        match self {
            ApiError::InvalidRequest { field, .. } => {
                body.insert("field".into(), json!(field));
            }
            ApiError::MissingCapability { required } => {
                body.insert("required".into(), json!(required));
            }
            ApiError::CapabilityEscalation { capability } => {
                body.insert("capability".into(), json!(capability));
            }
            ApiError::BoundEscalation { field } => {
                body.insert("field".into(), json!(field));
            }
            ApiError::WrongProvider { detected } => {
                body.insert("detected".into(), json!(detected));
            }
            ApiError::AlreadyRerolled { successor_id } => {
                body.insert("successor_id".into(), json!(successor_id));
            }
            ApiError::InvalidHost { field, .. } | ApiError::InvalidModel { field } | ApiError::LifetimeExceedsPolicy { field, .. } => {
                body.insert("field".into(), json!(field));
            }
            ApiError::InvalidKey { provider_status } | ApiError::QuotaExceeded { provider_status } => {
                body.insert("provider_status".into(), json!(provider_status));
            }
            ApiError::KeyRestricted { provider_status, provider_reason }
            | ApiError::RegionUnsupported { provider_status, provider_reason } => {
                body.insert("provider_status".into(), json!(provider_status));
                body.insert("provider_reason".into(), json!(provider_reason));
            }
            ApiError::ByokUnavailable { reason, .. } => {
                body.insert("reason".into(), json!(reason));
            }
            ApiError::ProviderUnavailable { provider_status: Some(status) } => {
                body.insert("provider_status".into(), json!(status));
            }
            _ => {}
        }
        json!({ "error": body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echoed_name_is_cut_at_64_characters_with_a_marker() {
        assert_eq!(echoed("colour"), "colour");
        assert_eq!(echoed(&"x".repeat(64)), "x".repeat(64), "64 characters are echoed whole");
        assert_eq!(echoed(&"x".repeat(20_000)), format!("{}…", "x".repeat(64)));
        assert_eq!(echoed(&"é".repeat(65)), format!("{}…", "é".repeat(64)), "cut on a character boundary");
    }

    #[test]
    fn invalid_request_names_the_field_in_the_envelope() {
        let error = ApiError::invalid_request("name", "`name` must be 1 to 100 characters.");
        assert_eq!(error.status(), 400);
        assert_eq!(
            error.envelope(),
            json!({"error": {"code": "invalid_request", "message": "`name` must be 1 to 100 characters.", "field": "name"}})
        );
    }

    #[test]
    fn internal_errors_hide_their_detail_from_the_client() {
        let error = ApiError::internal("D1_ERROR: no such table: workspaces");
        assert_eq!(error.status(), 500);
        let shown = error.envelope().to_string();
        assert!(!shown.contains("no such table"), "internal detail leaked: {shown}");
        assert_eq!(error.log_detail(), Some("D1_ERROR: no such table: workspaces"));
    }

    #[test]
    fn method_not_allowed_carries_an_allow_header() {
        let error = ApiError::MethodNotAllowed { allow: vec!["GET", "PATCH"] };
        assert_eq!(error.status(), 405);
        assert_eq!(error.headers(), vec![("allow", "GET, PATCH".to_string())]);
        assert_eq!(error.envelope()["error"]["code"], "method_not_allowed");
    }

    #[test]
    fn limits_answer_429_with_retry_after() {
        for error in [ApiError::TooManyFailedAttempts { retry_after: 42 }, ApiError::RateLimited { retry_after: 42 }] {
            assert_eq!(error.status(), 429);
            assert_eq!(error.headers(), vec![("retry-after", "42".to_string())]);
        }
        assert_eq!(ApiError::TooManyFailedAttempts { retry_after: 1 }.code(), "too_many_failed_attempts");
        assert_eq!(ApiError::RateLimited { retry_after: 1 }.code(), "rate_limited");
    }

    #[test]
    fn provider_validation_errors_use_the_contracts_messages_and_fields() {
        let invalid = ApiError::InvalidKey { provider_status: 401 }.envelope();
        assert_eq!(invalid["error"]["message"], "Invalid key. Validation failed.");
        assert_eq!(invalid["error"]["provider_status"], 401);
        assert_eq!(
            ApiError::InvalidModel { field: "model".into() }.envelope()["error"]["message"],
            "Invalid model name. Validation failed."
        );
        assert_eq!(ApiError::QuotaExceeded { provider_status: 429 }.envelope()["error"]["message"], "You exceeded your current quota");
        let restricted = ApiError::KeyRestricted { provider_status: 403, provider_reason: "SERVICE_DISABLED".into() }.envelope();
        assert_eq!(restricted["error"]["message"], "Key is valid but not allowed to do this. Check its permissions.");
        assert_eq!(
            (&restricted["error"]["provider_status"], &restricted["error"]["provider_reason"]),
            (&json!(403), &json!("SERVICE_DISABLED"))
        );
        assert_eq!(ApiError::ByokUnavailable { reason: "byok_invalid".into(), provider: "openai".into() }.status(), 409);
        assert_eq!(ApiError::WrongProvider { detected: "anthropic".into() }.envelope()["error"]["detected"], "anthropic");
        assert_eq!(ApiError::ProviderRateLimited { retry_after: 7 }.headers(), vec![("retry-after", "7".to_string())]);
        assert_eq!(ApiError::ProviderUnavailable { provider_status: Some(529) }.status(), 502);
        assert_eq!(ApiError::SecretUnavailable.headers(), vec![("retry-after", "1".to_string())]);
    }

    #[test]
    fn missing_capability_names_the_one_required_capability() {
        let error = ApiError::MissingCapability { required: "keys:write".into() };
        assert_eq!(error.status(), 403);
        assert_eq!(error.envelope()["error"]["required"], "keys:write");
    }

    #[test]
    fn every_error_envelope_has_a_snake_case_code_and_a_message() {
        let all = [
            ApiError::InvalidJson,
            ApiError::invalid_request("f", "m"),
            ApiError::UnsupportedMediaType,
            ApiError::PayloadTooLarge,
            ApiError::Unauthorized,
            ApiError::MissingCapability { required: "keys:read".into() },
            ApiError::NotFound,
            ApiError::MethodNotAllowed { allow: vec!["GET"] },
            ApiError::CapabilityEscalation { capability: "*".into() },
            ApiError::BoundEscalation { field: "subject".into() },
            ApiError::WorkspaceReadOnly,
            ApiError::KeyRevoked,
            ApiError::KeyExpired,
            ApiError::TooManyFailedAttempts { retry_after: 3 },
            ApiError::RateLimited { retry_after: 3 },
            ApiError::CreditsExhausted,
            ApiError::IpNotAllowed,
            ApiError::WrongProvider { detected: "anthropic".into() },
            ApiError::InvalidHost { field: "api_host".into(), reason: "must use https".into() },
            ApiError::InvalidKey { provider_status: 401 },
            ApiError::InvalidModel { field: "model".into() },
            ApiError::LifetimeExceedsPolicy { field: "expires_in".into(), max_seconds: 60 },
            ApiError::QuotaExceeded { provider_status: 429 },
            ApiError::KeyRestricted { provider_status: 403, provider_reason: "SERVICE_DISABLED".into() },
            ApiError::RegionUnsupported { provider_status: 403, provider_reason: "unsupported_country_region_territory".into() },
            ApiError::ByokUnavailable { reason: "byok_invalid".into(), provider: "openai".into() },
            ApiError::ProviderRateLimited { retry_after: 7 },
            ApiError::ProviderUnavailable { provider_status: None },
            ApiError::NotConfigured,
            ApiError::ProviderNotConfigured { provider: "openai".into() },
            ApiError::Conflict,
            ApiError::SecretUnavailable,
            ApiError::Unavailable,
            ApiError::IdempotencyConflict,
            ApiError::AlreadyRerolled { successor_id: "key_x".into() },
            ApiError::InvalidWebhook { message: "m".into() },
            ApiError::StaleWebhook,
            ApiError::InvalidSignature,
            ApiError::UnsupportedEvent { event: "x".into() },
            ApiError::internal("x"),
        ];
        for error in all {
            let envelope = error.envelope();
            let code = envelope["error"]["code"].as_str().unwrap();
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "code {code}");
            assert!(!envelope["error"]["message"].as_str().unwrap().is_empty());
        }
    }
}
