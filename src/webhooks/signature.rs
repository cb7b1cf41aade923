//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256>` over `{id}.{timestamp}.{body}`,
//! keyed with the base64-decoded part of a `whsec_` secret.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::crypto::random::random_bytes;

/// A delivery older or newer than this many seconds is refused (replay window).
pub const TOLERANCE_SECONDS: i64 = 300;
pub const SECRET_PREFIX: &str = "whsec_";

/// The key bytes of a `whsec_` secret. Its `Debug` never prints them.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecret({} bytes)", self.0.len())
    }
}

impl WebhookSecret {
    /// 32 random bytes, as the contract's `whsec_<base64 of 32 bytes>` promises.
    pub fn generate() -> Self {
        WebhookSecret(random_bytes::<32>().to_vec())
    }

    /// Reads `whsec_<base64>`; a secret without the prefix is read as bare base64.
    pub fn parse(text: &str) -> Option<Self> {
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let bytes = STANDARD.decode(encoded).ok()?;
        (!bytes.is_empty()).then_some(WebhookSecret(bytes))
    }

    /// The secret as shown to its owner, once.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `timestamp` is signed as the text sent in the header, as Standard Webhooks specifies.
    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` header value for one delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, &timestamp.to_string(), body).finalize().into_bytes()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The timestamp is not an integer, or is more than the tolerance away from now.
    Stale,
    /// No `v1` signature in the header matches any of the secrets.
    NoValidSignature,
}

/// Checks a delivery against every secret still honoured. The header may hold several
/// space-separated signatures (a sender rotating its secret); any one valid `v1` suffices.
/// Comparisons are constant time.
pub fn verify(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now_seconds: i64,
) -> Result<(), Rejection> {
    let timestamp = timestamp.trim();
    // Digits only: no sign, no spaces, nothing a parser would quietly normalise.
    if timestamp.is_empty() || timestamp.len() > 12 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::Stale);
    }
    let seconds: i64 = timestamp.parse().map_err(|_| Rejection::Stale)?;
    if now_seconds.abs_diff(seconds) > TOLERANCE_SECONDS as u64 {
        return Err(Rejection::Stale);
    }
    let candidates: Vec<Vec<u8>> = signature_header
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .collect();
    let mut matched = false;
    for secret in secrets {
        let expected = secret.mac(id, timestamp, body).finalize().into_bytes();
        for candidate in &candidates {
            // Every pair is compared, so timing does not tell which secret or entry matched.
            matched |= bool::from(expected.as_slice().ct_eq(candidate.as_slice()));
        }
    }
    if matched {
        Ok(())
    } else {
        Err(Rejection::NoValidSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks specification's published test vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret() -> WebhookSecret {
        WebhookSecret::parse(SECRET).unwrap()
    }

    #[test]
    fn signs_like_the_published_test_vector() {
        assert_eq!(secret().sign(ID, TIMESTAMP, BODY), SIGNATURE);
    }

    #[test]
    fn verifies_the_published_test_vector() {
        assert_eq!(verify(&[secret()], ID, "1614265330", SIGNATURE, BODY, TIMESTAMP), Ok(()));
    }

    #[test]
    fn any_valid_entry_among_several_suffices() {
        let header = format!("v1,bm90IGl0 v2,whatever {SIGNATURE}");
        assert_eq!(verify(&[secret()], ID, "1614265330", &header, BODY, TIMESTAMP), Ok(()));
    }

    #[test]
    fn any_honoured_secret_suffices() {
        let other = WebhookSecret::generate();
        assert_eq!(verify(&[other, secret()], ID, "1614265330", SIGNATURE, BODY, TIMESTAMP), Ok(()));
    }

    #[test]
    fn a_tampered_body_id_or_timestamp_fails() {
        let (s, ts) = (secret(), TIMESTAMP);
        assert_eq!(
            verify(std::slice::from_ref(&s), ID, "1614265330", SIGNATURE, br#"{"test": 2432232315}"#, ts),
            Err(Rejection::NoValidSignature)
        );
        assert_eq!(verify(std::slice::from_ref(&s), "msg_other", "1614265330", SIGNATURE, BODY, ts), Err(Rejection::NoValidSignature));
        assert_eq!(verify(&[s], ID, "1614265331", SIGNATURE, BODY, ts), Err(Rejection::NoValidSignature));
    }

    #[test]
    fn a_wrong_secret_or_malformed_header_fails() {
        assert_eq!(verify(&[WebhookSecret::generate()], ID, "1614265330", SIGNATURE, BODY, TIMESTAMP), Err(Rejection::NoValidSignature));
        for header in ["", "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "v1,%%%"] {
            assert_eq!(verify(&[secret()], ID, "1614265330", header, BODY, TIMESTAMP), Err(Rejection::NoValidSignature), "{header:?}");
        }
        assert_eq!(verify(&[], ID, "1614265330", SIGNATURE, BODY, TIMESTAMP), Err(Rejection::NoValidSignature));
    }

    #[test]
    fn the_tolerance_is_300_seconds_both_ways() {
        let s = [secret()];
        assert_eq!(verify(&s, ID, "1614265330", SIGNATURE, BODY, TIMESTAMP + 300), Ok(()));
        assert_eq!(verify(&s, ID, "1614265330", SIGNATURE, BODY, TIMESTAMP - 300), Ok(()));
        assert_eq!(verify(&s, ID, "1614265330", SIGNATURE, BODY, TIMESTAMP + 301), Err(Rejection::Stale));
        assert_eq!(verify(&s, ID, "1614265330", SIGNATURE, BODY, TIMESTAMP - 301), Err(Rejection::Stale));
        assert_eq!(verify(&s, ID, "soon", SIGNATURE, BODY, TIMESTAMP), Err(Rejection::Stale));
        for odd in ["+1614265330", "-9223372036854775808", "01614265330 1", "99999999999999999999"] {
            assert_eq!(verify(&s, ID, odd, SIGNATURE, BODY, TIMESTAMP), Err(Rejection::Stale), "{odd}");
        }
    }

    #[test]
    fn secrets_round_trip_through_their_whsec_form() {
        let generated = WebhookSecret::generate();
        let shown = generated.expose();
        assert!(shown.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&shown[6..]).unwrap().len(), 32);
        assert_eq!(WebhookSecret::parse(&shown), Some(generated.clone()));
        assert!(!format!("{generated:?}").contains(&shown[6..]));
        assert_eq!(WebhookSecret::parse("whsec_***"), None);
    }
}
