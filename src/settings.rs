//! The Worker's variables, parsed once per request from what the bindings hold.

/// The key prefix is a setting (a deployment chooses it); `keys::token` owns the format it starts.
pub const DEFAULT_PREFIX: &str = "kw_live_";

/// The configured key prefix (`KEY_PREFIX`): 1–32 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    pub fn parse(text: &str) -> Result<Self, String> {
        let valid_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if text.is_empty() || text.len() > 32 || !text.chars().all(valid_char) {
            return Err(format!("KEY_PREFIX must be 1 to 32 characters of [A-Za-z0-9_-], got {} characters", text.len()));
        }
        Ok(KeyPrefix(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for KeyPrefix {
    fn default() -> Self {
        KeyPrefix(DEFAULT_PREFIX.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub key_prefix: KeyPrefix,
    /// `ALLOW_INSECURE_PROVIDER_HOSTS=true` admits `http` and loopback provider hosts (local only).
    pub allow_insecure_provider_hosts: bool,
    /// How long a day of credit refills lasts: `CREDIT_DAY_MS` (tests only) shortens it.
    pub credit_day_ms: i64,
}

impl Settings {
    /// Unset variables take their defaults; a set but invalid `KEY_PREFIX` is a deployment
    /// error, reported rather than silently replaced.
    pub fn from_vars(key_prefix: Option<&str>, allow_insecure_provider_hosts: Option<&str>) -> Result<Self, String> {
        let key_prefix = match key_prefix {
            None | Some("") => KeyPrefix::default(),
            Some(text) => KeyPrefix::parse(text)?,
        };
        let allow_insecure_provider_hosts = matches!(allow_insecure_provider_hosts.map(str::trim), Some("true" | "1"));
        Ok(Settings { key_prefix, allow_insecure_provider_hosts, credit_day_ms: DAY_MS })
    }

    /// `CREDIT_DAY_MS`: a day of 1,000 ms to one real day, for tests of refills; unset, a day.
    pub fn with_credit_day(mut self, day_ms: Option<&str>) -> Result<Self, String> {
        self.credit_day_ms = credit_day_ms(day_ms)?;
        Ok(self)
    }
}

const DAY_MS: i64 = 86_400_000;

/// The day `CREDIT_DAY_MS` asks for; the Worker and the key authority read it alike.
pub fn credit_day_ms(day_ms: Option<&str>) -> Result<i64, String> {
    match day_ms.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(DAY_MS),
        Some(text) => match text.parse::<i64>() {
            Ok(ms) if (1_000..=DAY_MS).contains(&ms) => Ok(ms),
            _ => Err(format!("CREDIT_DAY_MS must be 1000 to {DAY_MS}, not {text:?}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_unset() {
        let settings = Settings::from_vars(None, None).unwrap();
        assert_eq!(settings.key_prefix.as_str(), "kw_live_");
        assert!(!settings.allow_insecure_provider_hosts);
    }

    #[test]
    fn reads_the_variables() {
        let settings = Settings::from_vars(Some("lb_k_"), Some("true")).unwrap();
        assert_eq!(settings.key_prefix.as_str(), "lb_k_");
        assert!(settings.allow_insecure_provider_hosts);
        assert!(!Settings::from_vars(None, Some("yes please")).unwrap().allow_insecure_provider_hosts);
    }

    #[test]
    fn an_invalid_prefix_is_a_configuration_error() {
        assert!(Settings::from_vars(Some("bad prefix"), None).is_err());
    }
}
