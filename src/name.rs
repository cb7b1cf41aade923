//! Display names of workspaces and keys.

/// 1 to 100 characters after trimming, no control characters.
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
        if trimmed.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Name(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
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
    }
}
