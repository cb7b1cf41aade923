//! The platform key format: `<KEY_PREFIX><32 base62 random><6 base62 CRC32 checksum>`.
//!
//! The checksum lets a secret scanner recognise a leaked key offline and lets the Worker reject
//! typos and guesses before any storage lookup.

use crate::crypto::{base62, digest, random};
pub use crate::settings::{KeyPrefix, DEFAULT_PREFIX};

pub const RANDOM_LEN: usize = 32;
pub const CHECKSUM_LEN: usize = 6;
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("the key does not start with the expected prefix")]
    WrongPrefix,
    #[error("the key has the wrong length")]
    WrongLength,
    #[error("the key holds characters outside base62")]
    NotBase62,
    #[error("the key's checksum does not match")]
    BadChecksum,
}

/// A platform key whose format and checksum have been checked. Its `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct PlatformKey(String);

impl std::fmt::Debug for PlatformKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PlatformKey(...{})", self.last4())
    }
}

impl PlatformKey {
    pub fn generate(prefix: &KeyPrefix) -> Self {
        let body = random::random_base62(RANDOM_LEN);
        let checksum = checksum(&body);
        PlatformKey(format!("{}{body}{checksum}", prefix.as_str()))
    }

    pub fn parse(prefix: &KeyPrefix, text: &str) -> Result<Self, KeyFormatError> {
        let rest = text.strip_prefix(prefix.as_str()).ok_or(KeyFormatError::WrongPrefix)?;
        if rest.len() != RANDOM_LEN + CHECKSUM_LEN {
            return Err(KeyFormatError::WrongLength);
        }
        if !base62::is_base62(rest) {
            return Err(KeyFormatError::NotBase62);
        }
        let (body, given) = rest.split_at(RANDOM_LEN);
        if checksum(body) != given {
            return Err(KeyFormatError::BadChecksum);
        }
        Ok(PlatformKey(text.to_string()))
    }

    /// The plaintext, for the one response that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored and looked up: lowercase hex SHA-256 of the whole key.
    pub fn hash(&self) -> String {
        digest::sha256_hex(self.0.as_bytes())
    }

    pub fn last4(&self) -> String {
        self.0[self.0.len() - 4..].to_string()
    }
}

/// CRC32 (IEEE) of the random part, in base62, left-padded to six characters.
pub fn checksum(random_part: &str) -> String {
    base62::encode_padded(crc32fast::hash(random_part.as_bytes()) as u64, CHECKSUM_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix() -> KeyPrefix {
        KeyPrefix::default()
    }

    #[test]
    fn generated_keys_have_prefix_random_part_and_checksum() {
        let key = PlatformKey::generate(&prefix());
        let text = key.expose();
        assert!(text.starts_with("kw_live_"), "{text}");
        assert_eq!(text.len(), "kw_live_".len() + 38);
        let (body, sum) = text["kw_live_".len()..].split_at(32);
        assert_eq!(checksum(body), sum);
    }

    #[test]
    fn generated_keys_parse_back() {
        let key = PlatformKey::generate(&prefix());
        assert_eq!(PlatformKey::parse(&prefix(), key.expose()), Ok(key));
    }

    #[test]
    fn checksum_is_crc32_ieee_in_padded_base62() {
        // CRC32("123456789") is the check value 0xCBF43926 = 3421780262.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(checksum("123456789"), base62::encode_padded(3_421_780_262, 6));
        assert_eq!(checksum("123456789"), "3jZRME");
    }

    #[test]
    fn a_changed_character_fails_the_checksum() {
        let key = PlatformKey::generate(&prefix());
        let mut text = key.expose().to_string();
        let index = "kw_live_".len() + 5;
        let replacement = if &text[index..=index] == "a" { "b" } else { "a" };
        text.replace_range(index..=index, replacement);
        assert_eq!(PlatformKey::parse(&prefix(), &text), Err(KeyFormatError::BadChecksum));
    }

    #[test]
    fn a_wrong_prefix_is_rejected() {
        let key = PlatformKey::generate(&prefix());
        let other = key.expose().replacen("kw_live_", "kw_test_", 1);
        assert_eq!(PlatformKey::parse(&prefix(), &other), Err(KeyFormatError::WrongPrefix));
        assert_eq!(PlatformKey::parse(&prefix(), ""), Err(KeyFormatError::WrongPrefix));
    }

    #[test]
    fn a_wrong_length_is_rejected() {
        let key = PlatformKey::generate(&prefix());
        let text = key.expose();
        assert_eq!(PlatformKey::parse(&prefix(), &text[..text.len() - 1]), Err(KeyFormatError::WrongLength));
        assert_eq!(PlatformKey::parse(&prefix(), &format!("{text}0")), Err(KeyFormatError::WrongLength));
    }

    #[test]
    fn non_base62_characters_are_rejected() {
        let text = format!("kw_live_{}", "-".repeat(38));
        assert_eq!(PlatformKey::parse(&prefix(), &text), Err(KeyFormatError::NotBase62));
        let multibyte = format!("kw_live_{}é", "a".repeat(36));
        assert_eq!(PlatformKey::parse(&prefix(), &multibyte), Err(KeyFormatError::NotBase62));
    }

    #[test]
    fn a_custom_prefix_is_honoured() {
        let custom = KeyPrefix::parse("lb_k_").unwrap();
        let key = PlatformKey::generate(&custom);
        assert!(key.expose().starts_with("lb_k_"));
        assert!(PlatformKey::parse(&custom, key.expose()).is_ok());
        assert_eq!(PlatformKey::parse(&prefix(), key.expose()), Err(KeyFormatError::WrongPrefix));
    }

    #[test]
    fn invalid_prefixes_are_refused() {
        assert!(KeyPrefix::parse("").is_err());
        assert!(KeyPrefix::parse("has space").is_err());
        assert!(KeyPrefix::parse(&"x".repeat(33)).is_err());
    }

    #[test]
    fn hash_is_sha256_hex_of_the_whole_key_and_debug_hides_the_key() {
        let key = PlatformKey::generate(&prefix());
        assert_eq!(key.hash(), digest::sha256_hex(key.expose().as_bytes()));
        assert_eq!(key.hash().len(), 64);
        let shown = format!("{key:?}");
        assert!(!shown.contains(&key.expose()[8..20]), "{shown}");
        assert!(shown.ends_with(&format!("{})", key.last4())));
    }
}
