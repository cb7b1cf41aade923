//! Base62 (`0-9A-Za-z`), the alphabet of platform keys: URL-safe, no ambiguous punctuation, and
//! a whole key selects with one double click.

pub const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub fn is_base62(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `value` in base62, left-padded with `0` to at least `width` characters.
pub fn encode_padded(mut value: u64, width: usize) -> String {
    let mut digits = Vec::with_capacity(width.max(11));
    while value > 0 {
        digits.push(ALPHABET[(value % 62) as usize]);
        value /= 62;
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).expect("base62 digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_with_left_padding() {
        assert_eq!(encode_padded(0, 6), "000000");
        assert_eq!(encode_padded(61, 6), "00000z");
        assert_eq!(encode_padded(62, 6), "000010");
    }

    #[test]
    fn the_largest_crc32_fits_in_six_characters() {
        assert_eq!(encode_padded(u32::MAX as u64, 6), "4gfFC3");
    }

    #[test]
    fn recognises_the_alphabet_only() {
        assert!(is_base62("09AZaz"));
        assert!(!is_base62("ab-c"));
        assert!(!is_base62("é"));
    }
}
