//! Example keys in the published documents must not be keys: a secret scanner that knows the
//! format would report the OpenAPI document or the README as a leak.

use keywarden::keys::{KeyPrefix, PlatformKey};

const DOCUMENTS: [(&str, &str); 3] = [
    ("src/http/openapi.json", include_str!("../src/http/openapi.json")),
    ("README.md", include_str!("../README.md")),
    ("docs/API.md", include_str!("../docs/API.md")),
];

/// Every run of the prefix followed by 38 base62 characters: the shape of a key.
fn key_shaped(text: &str) -> Vec<&str> {
    let prefix = "kw_live_";
    let mut found = Vec::new();
    for (at, _) in text.match_indices(prefix) {
        let rest = &text[at + prefix.len()..];
        let run = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
        if run == 38 {
            found.push(&text[at..at + prefix.len() + 38]);
        }
    }
    found
}

#[test]
fn no_example_key_in_the_documents_passes_the_checksum() {
    let prefix = KeyPrefix::default();
    for (name, text) in DOCUMENTS {
        for example in key_shaped(text) {
            assert!(PlatformKey::parse(&prefix, example).is_err(), "{name} publishes {example}, which passes the checksum");
        }
    }
}

#[test]
fn the_check_finds_a_real_key() {
    let key = PlatformKey::generate(&KeyPrefix::default());
    let text = format!("curl -H 'Authorization: Bearer {}'", key.expose());
    assert_eq!(key_shaped(&text), vec![key.expose()]);
    assert!(PlatformKey::parse(&KeyPrefix::default(), key.expose()).is_ok());
}
