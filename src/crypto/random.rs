//! Randomness from the platform's CSPRNG (`crypto.getRandomValues` in the Worker).

use super::base62::ALPHABET;

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // getrandom fails only when the platform has no CSPRNG at all; nothing can be issued then.
    getrandom::getrandom(&mut bytes).expect("the platform provides a CSPRNG");
    bytes
}

/// `len` base62 characters, each uniform: bytes at or above 248 (the largest multiple of 62
/// below 256) are discarded rather than folded, so no character is more likely than another.
pub fn random_base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for byte in random_bytes::<64>() {
            if byte < 248 && out.len() < len {
                out.push(ALPHABET[(byte % 62) as usize] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_base62_has_the_requested_length_and_alphabet() {
        let text = random_base62(32);
        assert_eq!(text.len(), 32);
        assert!(crate::crypto::base62::is_base62(&text), "{text}");
    }

    #[test]
    fn random_base62_does_not_repeat() {
        assert_ne!(random_base62(32), random_base62(32));
    }
}
