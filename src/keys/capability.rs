//! Capabilities: the allowlist a key carries, with `*` and `ns:*` wildcards.

use std::fmt;

pub const MAX_LEN: usize = 64;
pub const MAX_PER_KEY: usize = 32;

/// This API's own capabilities; every other `namespace:action` belongs to the tenant.
pub const RESERVED: [&str; 8] =
    ["keys:read", "keys:write", "keys:verify", "providers:read", "providers:write", "secrets:resolve", "webhooks:manage", "audit:read"];

/// `*`, `ns:*` or `ns:action`, each part lowercase `[a-z0-9_-]`, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Capability(String);

impl Capability {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(Capability(text.into()));
        }
        let part_ok =
            |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        let valid = text.len() <= MAX_LEN
            && match text.split_once(':') {
                Some((namespace, action)) => part_ok(namespace) && (action == "*" || part_ok(action)),
                None => false,
            };
        if valid {
            Ok(Capability(text.into()))
        } else {
            Err(format!(
                "`{}` is not a capability: use `namespace:action` in lowercase [a-z0-9_-], `namespace:*` or `*`, at most {MAX_LEN} characters.",
                truncate_for_message(text)
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether holding this capability allows `required` (a concrete `ns:action`).
    pub fn grants(&self, required: &str) -> bool {
        if self.0 == "*" || self.0 == required {
            return true;
        }
        match self.0.strip_suffix(":*") {
            Some(namespace) => required.split_once(':').is_some_and(|(ns, _)| ns == namespace),
            None => false,
        }
    }

    /// Whether a holder of this capability may hand out `other` (wildcards included).
    fn covers(&self, other: &Capability) -> bool {
        if self.0 == "*" {
            return true;
        }
        if other.0 == "*" || other.0.ends_with(":*") {
            return self.0 == other.0;
        }
        self.grants(&other.0)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn truncate_for_message(text: &str) -> String {
    text.chars().take(MAX_LEN + 1).collect()
}

/// A key's capability list: at most 32, each valid, duplicates dropped, order kept.
/// Serialised as its list of strings (the key authority's records), and parsed back.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(into = "Vec<String>", try_from = "Vec<String>")]
pub struct Capabilities(Vec<Capability>);

impl From<Capabilities> for Vec<String> {
    fn from(capabilities: Capabilities) -> Self {
        capabilities.to_strings()
    }
}

impl TryFrom<Vec<String>> for Capabilities {
    type Error = String;

    fn try_from(items: Vec<String>) -> Result<Self, String> {
        Capabilities::parse(&items)
    }
}

impl Capabilities {
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, String> {
        let too_many = || format!("A key carries at most {MAX_PER_KEY} capabilities.");
        // Duplicates are dropped, but a list far beyond the limit is refused before any work.
        if items.len() > MAX_PER_KEY * 4 {
            return Err(too_many());
        }
        let mut list: Vec<Capability> = Vec::with_capacity(MAX_PER_KEY);
        for item in items {
            let capability = Capability::parse(item.as_ref())?;
            if !list.contains(&capability) {
                list.push(capability);
            }
            if list.len() > MAX_PER_KEY {
                return Err(too_many());
            }
        }
        Ok(Capabilities(list))
    }

    pub fn all() -> Self {
        Capabilities(vec![Capability("*".into())])
    }

    pub fn grants(&self, required: &str) -> bool {
        self.0.iter().any(|held| held.grants(required))
    }

    /// The first capability of `requested` this set may not hand out, if any.
    pub fn first_not_covered<'a>(&self, requested: &'a Capabilities) -> Option<&'a Capability> {
        requested.0.iter().find(|wanted| !self.0.iter().any(|held| held.covers(wanted)))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Capability> {
        self.0.iter()
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|c| c.0.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(items: &[&str]) -> Capabilities {
        Capabilities::parse(items).expect("valid capabilities")
    }

    #[test]
    fn accepts_reserved_tenant_and_wildcard_capabilities() {
        for text in RESERVED.iter().copied().chain(["desktop:chat", "desktop:*", "*", "a-b_c:d-1"]) {
            assert!(Capability::parse(text).is_ok(), "{text} should parse");
        }
    }

    #[test]
    fn rejects_malformed_capabilities() {
        let too_long = format!("ns:{}", "a".repeat(62));
        for text in ["", "desktop", "Desktop:chat", "desktop:", ":chat", "a:b:c", "*:chat", "ns:**", "ns :x", too_long.as_str()] {
            assert!(Capability::parse(text).is_err(), "{text:?} should be rejected");
        }
        let exactly_64 = format!("ns:{}", "a".repeat(61));
        assert!(Capability::parse(&exactly_64).is_ok());
    }

    #[test]
    fn at_most_32_per_key_and_duplicates_are_dropped() {
        let many: Vec<String> = (0..33).map(|i| format!("ns:a{i}")).collect();
        assert!(Capabilities::parse(&many).is_err());
        assert_eq!(caps(&["a:b", "a:b", "c:d"]).to_strings(), vec!["a:b", "c:d"]);
    }

    #[test]
    fn star_grants_everything() {
        assert!(caps(&["*"]).grants("keys:write"));
        assert!(caps(&["*"]).grants("desktop:chat"));
    }

    #[test]
    fn namespace_wildcard_grants_only_its_namespace() {
        let held = caps(&["desktop:*"]);
        assert!(held.grants("desktop:chat"));
        assert!(held.grants("desktop:read"));
        assert!(!held.grants("desktops:read"));
        assert!(!held.grants("keys:read"));
    }

    #[test]
    fn exact_capability_grants_only_itself() {
        let held = caps(&["desktop:read"]);
        assert!(held.grants("desktop:read"));
        assert!(!held.grants("desktop:chat"));
        assert!(!Capabilities::default().grants("desktop:read"));
    }

    #[test]
    fn escalation_rules_allow_only_what_is_held() {
        let held = caps(&["desktop:*", "keys:write"]);
        assert_eq!(held.first_not_covered(&caps(&["desktop:chat", "desktop:*", "keys:write"])), None);
        assert_eq!(held.first_not_covered(&caps(&["keys:read"])).map(|c| c.as_str()), Some("keys:read"));
        assert_eq!(held.first_not_covered(&caps(&["*"])).map(|c| c.as_str()), Some("*"));
        assert_eq!(held.first_not_covered(&caps(&["keys:*"])).map(|c| c.as_str()), Some("keys:*"));
        let exact = caps(&["desktop:read"]);
        assert_eq!(exact.first_not_covered(&caps(&["desktop:*"])).map(|c| c.as_str()), Some("desktop:*"));
        assert_eq!(caps(&["*"]).first_not_covered(&caps(&["*", "keys:*", "x:y"])), None);
        assert_eq!(held.first_not_covered(&Capabilities::default()), None);
    }
}
