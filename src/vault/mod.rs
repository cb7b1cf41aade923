//! Envelope encryption of stored secrets (provider keys, webhook secrets).
//!
//! Each secret gets a fresh 256-bit data key and nonce (AES-256-GCM). The data key is wrapped by
//! the current key-encryption key (KEK) from `VAULT_KEKS`. Both layers authenticate the secret's
//! context (workspace, kind, version), so a blob copied anywhere else fails to open; re-wrapping
//! under a new KEK touches only the wrapped data key.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::crypto::random::random_bytes;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("VAULT_KEKS is invalid: {0}")]
    InvalidKeks(String),
    #[error("the blob was sealed under KEK `{0}`, which VAULT_KEKS no longer lists")]
    UnknownKek(String),
    #[error("the blob is not a sealed secret")]
    Corrupt,
    #[error("the blob does not open in this context (tampered, copied or wrong key)")]
    DecryptionFailed,
}

struct Kek {
    id: String,
    cipher: Aes256Gcm,
}

/// The key-encryption keys, `id:base64(32 bytes)` comma-separated; the first one is current.
pub struct Keks {
    keks: Vec<Kek>,
}

impl std::fmt::Debug for Keks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keks.iter().map(|k| k.id.as_str()).collect();
        write!(f, "Keks({ids:?})")
    }
}

impl Keks {
    pub fn parse(text: &str) -> Result<Self, VaultError> {
        let mut keks: Vec<Kek> = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, encoded) = entry.split_once(':').ok_or_else(|| VaultError::InvalidKeks("each entry is id:base64".into()))?;
            let id_ok = (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !id_ok {
                return Err(VaultError::InvalidKeks("ids are 1-32 characters of [A-Za-z0-9_-]".into()));
            }
            if keks.iter().any(|k| k.id == id) {
                return Err(VaultError::InvalidKeks(format!("id `{id}` appears twice")));
            }
            let key = STANDARD.decode(encoded.trim()).map_err(|_| VaultError::InvalidKeks(format!("`{id}` is not base64")))?;
            let cipher =
                Aes256Gcm::new_from_slice(&key).map_err(|_| VaultError::InvalidKeks(format!("`{id}` must decode to exactly 32 bytes")))?;
            keks.push(Kek { id: id.to_string(), cipher });
        }
        if keks.is_empty() {
            return Err(VaultError::InvalidKeks("no key is configured".into()));
        }
        Ok(Keks { keks })
    }

    pub fn current_id(&self) -> &str {
        &self.keks[0].id
    }

    fn current(&self) -> &Kek {
        &self.keks[0]
    }

    fn find(&self, id: &str) -> Result<&Kek, VaultError> {
        self.keks.iter().find(|k| k.id == id).ok_or_else(|| VaultError::UnknownKek(id.to_string()))
    }
}

/// What a secret is bound to: opening it anywhere else fails.
#[derive(Debug, Clone, Copy)]
pub struct SecretContext<'a> {
    pub workspace_id: &'a str,
    /// The provider id, or another kind of secret (`webhook`, `notify`).
    pub kind: &'a str,
    pub version: i64,
}

impl SecretContext<'_> {
    fn associated_data(&self) -> Vec<u8> {
        format!("keywarden/v1|{}|{}|{}", self.workspace_id, self.kind, self.version).into_bytes()
    }
}

/// The stored form: JSON with base64 fields. `dek` is nonce ‖ AES-GCM(KEK, data key).
#[derive(Serialize, Deserialize)]
struct Envelope {
    v: u8,
    kek: String,
    dek: String,
    nonce: String,
    ct: String,
}

fn wrap_data_key(kek: &Kek, data_key: &[u8; 32], aad: &[u8]) -> Result<String, VaultError> {
    let nonce = random_bytes::<12>();
    let wrapped =
        kek.cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: data_key, aad }).map_err(|_| VaultError::DecryptionFailed)?;
    Ok(STANDARD.encode([nonce.as_slice(), &wrapped].concat()))
}

fn unwrap_data_key(kek: &Kek, wrapped: &str, aad: &[u8]) -> Result<[u8; 32], VaultError> {
    let bytes = STANDARD.decode(wrapped).map_err(|_| VaultError::Corrupt)?;
    if bytes.len() < 12 {
        return Err(VaultError::Corrupt);
    }
    let (nonce, sealed) = bytes.split_at(12);
    let key = kek.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad }).map_err(|_| VaultError::DecryptionFailed)?;
    key.try_into().map_err(|_| VaultError::Corrupt)
}

fn wrap_aad(context: &SecretContext, kek_id: &str) -> Vec<u8> {
    let mut aad = context.associated_data();
    aad.extend_from_slice(b"|kek=");
    aad.extend_from_slice(kek_id.as_bytes());
    aad
}

fn parse(blob: &str) -> Result<Envelope, VaultError> {
    let envelope: Envelope = serde_json::from_str(blob).map_err(|_| VaultError::Corrupt)?;
    if envelope.v != 1 {
        return Err(VaultError::Corrupt);
    }
    Ok(envelope)
}

/// Seals `plaintext` under a fresh data key wrapped by the current KEK.
pub fn seal(keks: &Keks, plaintext: &[u8], context: &SecretContext) -> Result<String, VaultError> {
    let data_key = random_bytes::<32>();
    let nonce = random_bytes::<12>();
    let cipher = Aes256Gcm::new_from_slice(&data_key).map_err(|_| VaultError::Corrupt)?;
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &context.associated_data() })
        .map_err(|_| VaultError::DecryptionFailed)?;
    let kek = keks.current();
    let envelope = Envelope {
        v: 1,
        kek: kek.id.clone(),
        dek: wrap_data_key(kek, &data_key, &wrap_aad(context, &kek.id))?,
        nonce: STANDARD.encode(nonce),
        ct: STANDARD.encode(ct),
    };
    serde_json::to_string(&envelope).map_err(|_| VaultError::Corrupt)
}

pub fn open(keks: &Keks, blob: &str, context: &SecretContext) -> Result<Vec<u8>, VaultError> {
    let envelope = parse(blob)?;
    let kek = keks.find(&envelope.kek)?;
    let data_key = unwrap_data_key(kek, &envelope.dek, &wrap_aad(context, &envelope.kek))?;
    let nonce = STANDARD.decode(&envelope.nonce).map_err(|_| VaultError::Corrupt)?;
    let ct = STANDARD.decode(&envelope.ct).map_err(|_| VaultError::Corrupt)?;
    if nonce.len() != 12 {
        return Err(VaultError::Corrupt);
    }
    let cipher = Aes256Gcm::new_from_slice(&data_key).map_err(|_| VaultError::Corrupt)?;
    cipher
        .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad: &context.associated_data() })
        .map_err(|_| VaultError::DecryptionFailed)
}

/// The id of the KEK a blob is sealed under.
pub fn kek_of(blob: &str) -> Result<String, VaultError> {
    Ok(parse(blob)?.kek)
}

/// The blob with its data key re-wrapped under the current KEK, or `None` if it already is.
/// The ciphertext of the secret itself is untouched.
pub fn rewrap(keks: &Keks, blob: &str, context: &SecretContext) -> Result<Option<String>, VaultError> {
    let mut envelope = parse(blob)?;
    let current = keks.current();
    if envelope.kek == current.id {
        return Ok(None);
    }
    let data_key = unwrap_data_key(keks.find(&envelope.kek)?, &envelope.dek, &wrap_aad(context, &envelope.kek))?;
    envelope.dek = wrap_data_key(current, &data_key, &wrap_aad(context, &current.id))?;
    envelope.kek = current.id.clone();
    serde_json::to_string(&envelope).map(Some).map_err(|_| VaultError::Corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    fn context(workspace_id: &str) -> SecretContext<'_> {
        SecretContext { workspace_id, kind: "openai", version: 1 }
    }

    #[test]
    fn a_sealed_secret_opens_in_its_context() {
        let keks = Keks::parse(K1).unwrap();
        let blob = seal(&keks, b"sk-proj-secret", &context("ws_1")).unwrap();
        assert_eq!(open(&keks, &blob, &context("ws_1")).unwrap(), b"sk-proj-secret");
    }

    #[test]
    fn the_blob_holds_neither_the_secret_nor_its_base64() {
        let keks = Keks::parse(K1).unwrap();
        let secret = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789";
        let blob = seal(&keks, secret.as_bytes(), &context("ws_1")).unwrap();
        assert!(!blob.contains(secret));
        assert!(!blob.contains(&STANDARD.encode(secret)[..20]));
    }

    #[test]
    fn sealing_twice_gives_different_blobs() {
        let keks = Keks::parse(K1).unwrap();
        assert_ne!(seal(&keks, b"x", &context("ws_1")).unwrap(), seal(&keks, b"x", &context("ws_1")).unwrap());
    }

    #[test]
    fn a_blob_copied_to_another_workspace_kind_or_version_fails_to_open() {
        let keks = Keks::parse(K1).unwrap();
        let blob = seal(&keks, b"secret", &context("ws_1")).unwrap();
        for elsewhere in [
            SecretContext { workspace_id: "ws_2", kind: "openai", version: 1 },
            SecretContext { workspace_id: "ws_1", kind: "anthropic", version: 1 },
            SecretContext { workspace_id: "ws_1", kind: "openai", version: 2 },
        ] {
            assert_eq!(open(&keks, &blob, &elsewhere), Err(VaultError::DecryptionFailed), "{elsewhere:?}");
        }
    }

    #[test]
    fn a_tampered_blob_fails_to_open() {
        let keks = Keks::parse(K1).unwrap();
        let blob = seal(&keks, b"secret", &context("ws_1")).unwrap();
        let mut envelope: serde_json::Value = serde_json::from_str(&blob).unwrap();
        let mut ct = STANDARD.decode(envelope["ct"].as_str().unwrap()).unwrap();
        ct[0] ^= 1;
        envelope["ct"] = STANDARD.encode(ct).into();
        assert_eq!(open(&keks, &envelope.to_string(), &context("ws_1")), Err(VaultError::DecryptionFailed));
        assert_eq!(open(&keks, "not json", &context("ws_1")), Err(VaultError::Corrupt));
    }

    #[test]
    fn a_new_first_kek_keeps_old_blobs_readable_and_rewrap_moves_them() {
        let old = Keks::parse(K1).unwrap();
        let blob = seal(&old, b"secret", &context("ws_1")).unwrap();
        let rotated = Keks::parse(&format!("{K2},{K1}")).unwrap();
        assert_eq!(open(&rotated, &blob, &context("ws_1")).unwrap(), b"secret");

        let rewrapped = rewrap(&rotated, &blob, &context("ws_1")).unwrap().expect("needs rewrap");
        assert_eq!(kek_of(&rewrapped).unwrap(), "k2");
        let only_new = Keks::parse(K2).unwrap();
        assert_eq!(open(&only_new, &rewrapped, &context("ws_1")).unwrap(), b"secret");
        assert_eq!(rewrap(&rotated, &rewrapped, &context("ws_1")).unwrap(), None, "already current");
        let before: serde_json::Value = serde_json::from_str(&blob).unwrap();
        let after: serde_json::Value = serde_json::from_str(&rewrapped).unwrap();
        assert_eq!(before["ct"], after["ct"], "re-wrapping leaves the ciphertext alone");
    }

    #[test]
    fn a_blob_under_a_dropped_kek_names_it() {
        let blob = seal(&Keks::parse(K1).unwrap(), b"secret", &context("ws_1")).unwrap();
        let without = Keks::parse(K2).unwrap();
        assert_eq!(open(&without, &blob, &context("ws_1")), Err(VaultError::UnknownKek("k1".into())));
    }

    #[test]
    fn invalid_kek_lists_are_refused() {
        for text in ["", "k1", "k1:not-base64!", "k1:AAEC", "bad id:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &format!("{K1},{K1}")] {
            assert!(Keks::parse(text).is_err(), "{text:?}");
        }
        assert_eq!(Keks::parse(&format!(" {K2} , {K1} ")).unwrap().current_id(), "k2");
    }

    #[test]
    fn debug_never_prints_key_material() {
        let keks = Keks::parse(K1).unwrap();
        assert_eq!(format!("{keks:?}"), "Keks([\"k1\"])");
    }
}
