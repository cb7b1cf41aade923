//! Hashing and constant-time comparison of secrets.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Lowercase hex SHA-256: how platform keys are stored and how leak reports name tokens.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Compares two secrets in time independent of where they differ. Both sides are hashed first
/// so that neither the content nor the length of the expected secret leaks through timing.
pub fn secrets_match(given: &[u8], expected: &[u8]) -> bool {
    let given = Sha256::digest(given);
    let expected = Sha256::digest(expected);
    given.ct_eq(&expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_matches_the_published_vector() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(secrets_match(b"s3cret-token", b"s3cret-token"));
        assert!(!secrets_match(b"s3cret-token", b"s3cret-tokeN"));
        assert!(!secrets_match(b"s3cret", b"s3cret-token"));
        assert!(!secrets_match(b"", b"s3cret-token"));
    }
}
