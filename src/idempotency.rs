//! Requests that can be retried safely: `Idempotency-Key` on the routes that mint a secret
//! (`POST /v1/keys`, `POST /v1/keys/{id}/reroll`, `POST /v1/workspaces`). The first response
//! is remembered for 24 hours, sealed by the vault, and answered again to a retry with the
//! same key and body; another body with the same key is a conflict.

use serde_json::Value;

use crate::crypto::digest::sha256_hex;
use crate::error::ApiError;
use crate::storage::StoreError;
use crate::vault::{self, Keks, SecretContext};

/// How long a response is remembered.
pub const REMEMBERED_MS: i64 = 24 * 3_600_000;

/// A checked `Idempotency-Key`: 1 to 255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        if (1..=255).contains(&text.len()) && text.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            Ok(IdempotencyKey(text.to_string()))
        } else {
            Err(ApiError::invalid_request("Idempotency-Key", "`Idempotency-Key` must be 1 to 255 printable ASCII characters."))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One request under an idempotency key: who sent it where (`scope`), and what it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    pub scope: String,
    pub key: IdempotencyKey,
    /// SHA-256 of the body as canonical JSON (object keys sorted), so formatting does not count.
    pub fingerprint: String,
}

impl IdempotentRequest {
    pub fn new(scope: String, key: IdempotencyKey, body: &Value) -> Self {
        IdempotentRequest { scope, key, fingerprint: sha256_hex(body.to_string().as_bytes()) }
    }

    fn context(&self) -> String {
        format!("{}\u{0}{}", self.scope, self.key.as_str())
    }
}

/// What is stored under a key already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    pub fingerprint: String,
    /// `None` while the first request is still in flight.
    pub response: Option<(u16, String)>,
}

/// A response to answer again.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    pub status: u16,
    pub body: Value,
}

#[allow(async_fn_in_trait)]
pub trait IdempotencyStore {
    /// Claims the key for this request unless it is remembered (a claim older than
    /// [`REMEMBERED_MS`] is forgotten first); `None`: claimed now.
    async fn claim_idempotency(&self, request: &IdempotentRequest, now_ms: i64) -> Result<Option<Remembered>, StoreError>;
    /// Remembers the response of the request that claimed the key.
    async fn remember_response(&self, request: &IdempotentRequest, status: u16, sealed: &str) -> Result<(), StoreError>;
    /// Gives the claim up (the request failed): a retry runs afresh.
    async fn forget_claim(&self, request: &IdempotentRequest) -> Result<(), StoreError>;
}

fn sealing_context(name: &str) -> SecretContext<'_> {
    SecretContext { workspace_id: "idempotency", kind: "response", version: 1, name, accepts_unbound: false }
}

/// What to do with a request under an idempotency key: run it (`None`, now claimed), or answer
/// what the first one answered. 409 `idempotency_conflict` for another body; 409 `conflict`
/// while the first is still in flight.
pub async fn begin(
    store: &impl IdempotencyStore,
    keks: &Keks,
    request: &IdempotentRequest,
    now_ms: i64,
) -> Result<Option<Replay>, ApiError> {
    let Some(remembered) = store.claim_idempotency(request, now_ms).await? else { return Ok(None) };
    if remembered.fingerprint != request.fingerprint {
        return Err(ApiError::IdempotencyConflict);
    }
    let Some((status, sealed)) = remembered.response else { return Err(ApiError::Conflict) };
    let context = request.context();
    let plaintext =
        vault::open(keks, &sealed, &sealing_context(&context)).map_err(|e| ApiError::DecryptionFailed { detail: e.to_string() })?;
    let body = serde_json::from_slice(&plaintext).map_err(ApiError::internal)?;
    Ok(Some(Replay { status, body }))
}

/// Remembers a successful response, sealed: it may carry a key's plaintext.
pub async fn remember(
    store: &impl IdempotencyStore,
    keks: &Keks,
    request: &IdempotentRequest,
    status: u16,
    body: &Value,
) -> Result<(), ApiError> {
    let context = request.context();
    let sealed = vault::seal(keks, body.to_string().as_bytes(), &sealing_context(&context)).map_err(ApiError::internal)?;
    Ok(store.remember_response(request, status, &sealed).await?)
}

/// Gives the claim up (the request failed, or its response could not be remembered), so that a
/// retry runs afresh.
pub async fn forget(store: &impl IdempotencyStore, request: &IdempotentRequest) -> Result<(), ApiError> {
    Ok(store.forget_claim(request).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_key_is_one_to_255_printable_characters() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"x".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse("with space and ~").is_ok());
        for bad in ["", &"x".repeat(256), "tab\there", "é"] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_fingerprint_ignores_key_order_but_not_values() {
        let key = IdempotencyKey::parse("k").unwrap();
        let a = IdempotentRequest::new("s".into(), key.clone(), &json!({"name": "a", "expires_in": 60}));
        let b = IdempotentRequest::new("s".into(), key.clone(), &json!({"expires_in": 60, "name": "a"}));
        let c = IdempotentRequest::new("s".into(), key, &json!({"name": "b", "expires_in": 60}));
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
    }
}
