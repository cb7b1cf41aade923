//! ECDSA P-256 with SHA-256 over a raw body, as GitHub signs secret scanning reports: the
//! signature base64 of its DER encoding, the public key a PEM `PUBLIC KEY` (SPKI).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;

/// A parsed P-256 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P256Key(VerifyingKey);

impl P256Key {
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        VerifyingKey::from_public_key_pem(pem.trim()).map(P256Key).map_err(|e| format!("not a P-256 public key: {e}"))
    }

    /// Whether `signature` (base64 of a DER ECDSA signature) signs `body` under this key.
    pub fn verifies(&self, signature: &str, body: &[u8]) -> bool {
        let Ok(der) = STANDARD.decode(signature.trim()) else { return false };
        let Ok(signature) = Signature::from_der(&der) else { return false };
        self.0.verify(body, &signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's published example (secret scanning partner program documentation).
    const GITHUB_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUq\nkCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==\n-----END PUBLIC KEY-----";
    const GITHUB_PAYLOAD: &str = r#"[{"token":"some_token","type":"some_type","url":"some_url"}]"#;
    const GITHUB_SIGNATURE: &str = "MEUCIQDKZokqnCjrRtw0tni+2Ltvl/uiMJ1EGumEsp1BsNr32AIgQY1YXD2nlj+XNfGK4rBfkMJ1JDOQcYXxa2sY8FNkrKc=";

    #[test]
    fn githubs_published_example_verifies() {
        let key = P256Key::from_pem(GITHUB_PEM).expect("GitHub's example key parses");
        assert!(key.verifies(GITHUB_SIGNATURE, GITHUB_PAYLOAD.as_bytes()));
    }

    #[test]
    fn a_flipped_byte_of_the_body_fails() {
        let key = P256Key::from_pem(GITHUB_PEM).unwrap();
        let mut body = GITHUB_PAYLOAD.as_bytes().to_vec();
        body[10] ^= 0x01;
        assert!(!key.verifies(GITHUB_SIGNATURE, &body));
    }

    #[test]
    fn a_flipped_byte_of_the_signature_fails() {
        let key = P256Key::from_pem(GITHUB_PEM).unwrap();
        let mut der = STANDARD.decode(GITHUB_SIGNATURE).unwrap();
        der[20] ^= 0x01;
        assert!(!key.verifies(&STANDARD.encode(der), GITHUB_PAYLOAD.as_bytes()));
    }

    #[test]
    fn a_signature_that_is_not_base64_der_fails() {
        let key = P256Key::from_pem(GITHUB_PEM).unwrap();
        assert!(!key.verifies("not base64!", GITHUB_PAYLOAD.as_bytes()));
        assert!(!key.verifies(&STANDARD.encode(b"not der"), GITHUB_PAYLOAD.as_bytes()));
    }

    #[test]
    fn a_pem_that_is_not_a_p256_public_key_is_refused() {
        assert!(P256Key::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err());
        assert!(P256Key::from_pem("hello").is_err());
    }
}
