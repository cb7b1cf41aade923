//! Display names of workspaces and keys.

/// 1 to 100 characters after trimming, no control characters, nothing invisible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

pub const MAX_CHARS: usize = 100;

impl Name {
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let length = trimmed.chars().count();
        if length == 0 || length > MAX_CHARS {
            return Err(format!("must be 1 to {MAX_CHARS} characters"));
        }
        // Line and paragraph separators are not `is_control`, but break a name over lines.
        if trimmed.chars().any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')) {
            return Err("must not contain control characters or line breaks".into());
        }
        if trimmed.chars().any(is_invisible) {
            return Err("must not contain invisible or bidirectional formatting characters".into());
        }
        Ok(Name(trimmed.to_string()))
    }

    /// A name read back from storage, which may predate a rule: a reroll keeps its key's name
    /// as it is rather than fail on it.
    pub fn from_stored(text: &str) -> Self {
        Name(text.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Characters that change how a name looks without being seen: the bidirectional controls,
/// which reorder what follows them (U+202E), and the rest of Unicode's default-ignorable code
/// points, which render as nothing (`"Owner\u{200B}key"` looks like the owner key's name).
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' // soft hyphen
            | '\u{034F}' // combining grapheme joiner
            | '\u{061C}' // Arabic letter mark
            | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers
            | '\u{17B4}' | '\u{17B5}' // Khmer inherent vowels
            | '\u{180B}'..='\u{180F}' // Mongolian variation selectors and vowel separator
            | '\u{200B}'..='\u{200F}' // zero-width space, non-joiner and joiner; left-to-right and right-to-left marks
            | '\u{202A}'..='\u{202E}' // bidirectional embeddings and overrides
            | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, bidirectional isolates, deprecated controls
            | '\u{FE00}'..='\u{FE0F}' // variation selectors
            | '\u{FEFF}' // zero-width no-break space
            | '\u{FFF0}'..='\u{FFF8}' // reserved, default-ignorable
            | '\u{1BCA0}'..='\u{1BCA3}' // shorthand format controls
            | '\u{1D173}'..='\u{1D17A}' // musical symbol formatting
            | '\u{E0000}'..='\u{E0FFF}' // tags and variation selectors supplement
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_one_to_one_hundred_characters_trimmed() {
        assert_eq!(Name::parse("  Production CI ").unwrap().as_str(), "Production CI");
        assert!(Name::parse("x").is_ok());
        assert!(Name::parse(&"é".repeat(100)).is_ok(), "characters, not bytes");
    }

    #[test]
    fn rejects_empty_blank_too_long_and_control_characters() {
        assert!(Name::parse("").is_err());
        assert!(Name::parse("   ").is_err());
        assert!(Name::parse(&"x".repeat(101)).is_err());
        assert!(Name::parse("line\nbreak").is_err());
        assert!(Name::parse("Owner\u{2028}key").is_err(), "a line separator");
        assert!(Name::parse("Owner\u{2029}key").is_err(), "a paragraph separator");
    }

    #[test]
    fn rejects_bidirectional_controls() {
        for c in [
            '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}',
        ] {
            let name = format!("invoice{c}fdp.exe");
            assert!(Name::parse(&name).is_err(), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn rejects_zero_width_and_other_invisible_characters() {
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{2061}',
            '\u{2062}',
            '\u{2063}',
            '\u{2064}',
            '\u{FEFF}',
            '\u{180E}',
            '\u{00AD}',
            '\u{034F}',
            '\u{3164}',
            '\u{FE0F}',
            '\u{E0041}',
        ] {
            let name = format!("Owner{c}key");
            assert_eq!(
                Name::parse(&name),
                Err("must not contain invisible or bidirectional formatting characters".to_string()),
                "U+{:04X}",
                c as u32
            );
        }
        assert!(Name::parse("\u{FEFF}Owner key").is_err(), "not trimmed away as whitespace");
    }

    #[test]
    fn accepts_visible_scripts_and_symbols() {
        for name in ["Équipe données", "مفتاح الإنتاج", "本番キー", "Прод", "CI 🚀", "a-b_c.d (2)"] {
            assert!(Name::parse(name).is_ok(), "{name}");
        }
    }
}
