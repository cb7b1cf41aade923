//! Envelope encryption of stored secrets (provider keys, webhook secrets).
//!
//! Each secret gets a fresh 256-bit data key and nonce (AES-256-GCM). The data key is wrapped by
//! the current key-encryption key (KEK) from `VAULT_KEKS`. Both layers authenticate the secret's
//! context (workspace, kind, version), so a blob copied anywhere else fails to open; re-wrapping
//! under a new KEK touches only the wrapped data key.
//!
//! Versions restart at 1 when a provider or endpoint is removed and configured again, so the
//! context alone would let a retired blob open under the new record. The envelope therefore
//! says which associated data it uses:
//!
//! - `v: 2` (every blob sealed now): the data key's wrap also binds the name the secret is
//!   stored under (its KV blob name, or the `sealed_name` of its D1 row), a name never reused.
//!   The ciphertext opens only with its own random data key and that key only under that name,
//!   so the whole blob is bound to it.
//! - `v: 1` (blobs sealed before names were bound; no marker for the name): the wrap binds only
//!   the context. Such a blob still opens, but only for a record stored before then (one whose
//!   name is of the old form, see [`SecretContext::accepts_unbound`]), so an old blob cannot be
//!   slipped under a newer record. The cron's re-wrap upgrades it to `v: 2`: it unwraps the data
//!   key the old way and wraps it again binding the name, leaving the ciphertext as it is.

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
    #[error("a secret is sealed only under the name it is stored under")]
    Unnamed,
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
    /// The name the secret is stored under, never reused (empty for a record stored before
    /// names were bound, which has none).
    pub name: &'a str,
    /// Whether the record was stored before names were bound, so its blob may still be a
    /// `v: 1` envelope, which binds no name. False for every record stored since.
    pub accepts_unbound: bool,
}

impl SecretContext<'_> {
    /// Bound by the ciphertext in both envelope versions, so an upgrade leaves it untouched.
    fn associated_data(&self) -> Vec<u8> {
        format!("keywarden/v1|{}|{}|{}", self.workspace_id, self.kind, self.version).into_bytes()
    }
}

/// Envelope versions: `UNBOUND` blobs predate the name binding.
const UNBOUND: u8 = 1;
const NAME_BOUND: u8 = 2;

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

/// The associated data of the data key's wrap. `v: 2` adds the storage name, in an encoding
/// (a JSON array) where no choice of names or ids can make two contexts look alike.
fn wrap_aad(version: u8, context: &SecretContext, name: &str, kek_id: &str) -> Vec<u8> {
    if version == UNBOUND {
        let mut aad = context.associated_data();
        aad.extend_from_slice(b"|kek=");
        aad.extend_from_slice(kek_id.as_bytes());
        return aad;
    }
    serde_json::json!(["keywarden/v2", context.workspace_id, context.kind, context.version, name, kek_id]).to_string().into_bytes()
}

fn parse(blob: &str) -> Result<Envelope, VaultError> {
    let envelope: Envelope = serde_json::from_str(blob).map_err(|_| VaultError::Corrupt)?;
    if envelope.v != UNBOUND && envelope.v != NAME_BOUND {
        return Err(VaultError::Corrupt);
    }
    Ok(envelope)
}

/// The data key of `envelope`, unwrapped with the associated data its version uses.
fn data_key(keks: &Keks, envelope: &Envelope, context: &SecretContext) -> Result<[u8; 32], VaultError> {
    // An unbound blob under a record stored since names are bound is a substitution.
    if envelope.v == UNBOUND && !context.accepts_unbound {
        return Err(VaultError::DecryptionFailed);
    }
    let aad = wrap_aad(envelope.v, context, context.name, &envelope.kek);
    unwrap_data_key(keks.find(&envelope.kek)?, &envelope.dek, &aad)
}

/// Seals `plaintext` under a fresh data key wrapped by the current KEK.
pub fn seal(keks: &Keks, plaintext: &[u8], context: &SecretContext) -> Result<String, VaultError> {
    if context.name.is_empty() {
        return Err(VaultError::Unnamed);
    }
    let data_key = random_bytes::<32>();
    let nonce = random_bytes::<12>();
    let cipher = Aes256Gcm::new_from_slice(&data_key).map_err(|_| VaultError::Corrupt)?;
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &context.associated_data() })
        .map_err(|_| VaultError::DecryptionFailed)?;
    let kek = keks.current();
    let envelope = Envelope {
        v: NAME_BOUND,
        kek: kek.id.clone(),
        dek: wrap_data_key(kek, &data_key, &wrap_aad(NAME_BOUND, context, context.name, &kek.id))?,
        nonce: STANDARD.encode(nonce),
        ct: STANDARD.encode(ct),
    };
    serde_json::to_string(&envelope).map_err(|_| VaultError::Corrupt)
}

pub fn open(keks: &Keks, blob: &str, context: &SecretContext) -> Result<Vec<u8>, VaultError> {
    let envelope = parse(blob)?;
    let data_key = data_key(keks, &envelope, context)?;
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

/// Whether the blob binds its storage name (`v: 2`); `false` for a blob of before.
pub fn binds_name(blob: &str) -> Result<bool, VaultError> {
    Ok(parse(blob)?.v == NAME_BOUND)
}

/// The blob (stored under `context.name`) with its data key re-wrapped under the current KEK and
/// bound to `to_name`, the name it will be stored under: a `v: 1` blob comes out `v: 2`. `None`
/// when there is nothing to do (already current, bound, and staying where it is). The
/// ciphertext of the secret itself is untouched.
pub fn rewrap(keks: &Keks, blob: &str, context: &SecretContext, to_name: &str) -> Result<Option<String>, VaultError> {
    if to_name.is_empty() {
        return Err(VaultError::Unnamed);
    }
    let mut envelope = parse(blob)?;
    let current = keks.current();
    if envelope.kek == current.id && envelope.v == NAME_BOUND && context.name == to_name {
        return Ok(None);
    }
    let data_key = data_key(keks, &envelope, context)?;
    envelope.dek = wrap_data_key(current, &data_key, &wrap_aad(NAME_BOUND, context, to_name, &current.id))?;
    envelope.kek = current.id.clone();
    envelope.v = NAME_BOUND;
    serde_json::to_string(&envelope).map(Some).map_err(|_| VaultError::Corrupt)
}

/// Seals exactly as keywarden did before names were bound (a `v: 1` envelope), for the tests
/// that show such blobs still open and are upgraded. The associated data is spelled out here
/// rather than taken from `wrap_aad`, so a change there cannot make the old form drift.
#[cfg(test)]
pub(crate) fn seal_unbound(keks: &Keks, plaintext: &[u8], context: &SecretContext) -> String {
    let (data_key, nonce) = (random_bytes::<32>(), random_bytes::<12>());
    let old_context = format!("keywarden/v1|{}|{}|{}", context.workspace_id, context.kind, context.version);
    let cipher = Aes256Gcm::new_from_slice(&data_key).expect("32-byte key");
    let ct = cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: old_context.as_bytes() }).expect("encrypts");
    let kek = keks.current();
    let envelope = Envelope {
        v: UNBOUND,
        kek: kek.id.clone(),
        dek: wrap_data_key(kek, &data_key, format!("{old_context}|kek={}", kek.id).as_bytes()).expect("wraps"),
        nonce: STANDARD.encode(nonce),
        ct: STANDARD.encode(ct),
    };
    serde_json::to_string(&envelope).expect("serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    fn context(workspace_id: &str) -> SecretContext<'_> {
        SecretContext { workspace_id, kind: "openai", version: 1, name: "pk/v2/ws_1/openai/1-a", accepts_unbound: false }
    }

    fn named<'a>(workspace_id: &'a str, name: &'a str) -> SecretContext<'a> {
        SecretContext { name, ..context(workspace_id) }
    }

    /// A record stored before names were bound: its blob may be unbound.
    fn of_before<'a>(workspace_id: &'a str, name: &'a str) -> SecretContext<'a> {
        SecretContext { name, accepts_unbound: true, ..context(workspace_id) }
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
            SecretContext { workspace_id: "ws_2", ..context("ws_1") },
            SecretContext { kind: "anthropic", ..context("ws_1") },
            SecretContext { version: 2, ..context("ws_1") },
        ] {
            assert_eq!(open(&keks, &blob, &elsewhere), Err(VaultError::DecryptionFailed), "{elsewhere:?}");
        }
    }

    #[test]
    fn a_blob_opens_only_under_the_name_it_was_sealed_for() {
        let keks = Keks::parse(K1).unwrap();
        let blob = seal(&keks, b"secret", &named("ws_1", "pk/v2/ws_1/openai/1-retired")).unwrap();
        assert!(binds_name(&blob).unwrap());
        assert_eq!(open(&keks, &blob, &named("ws_1", "pk/v2/ws_1/openai/1-retired")).unwrap(), b"secret");
        // The same workspace, kind and version (a provider removed and configured again): only the name differs.
        assert_eq!(open(&keks, &blob, &named("ws_1", "pk/v2/ws_1/openai/1-current")), Err(VaultError::DecryptionFailed));
        let as_if_old = SecretContext { accepts_unbound: true, ..named("ws_1", "pk/v2/ws_1/openai/1-current") };
        assert_eq!(open(&keks, &blob, &as_if_old), Err(VaultError::DecryptionFailed), "a bound blob never opens the old way");
    }

    #[test]
    fn a_secret_is_never_sealed_without_a_name() {
        let keks = Keks::parse(K1).unwrap();
        assert_eq!(seal(&keks, b"secret", &named("ws_1", "")), Err(VaultError::Unnamed));
        let blob = seal(&keks, b"secret", &context("ws_1")).unwrap();
        assert_eq!(rewrap(&keks, &blob, &context("ws_1"), ""), Err(VaultError::Unnamed));
    }

    #[test]
    fn a_blob_sealed_before_names_were_bound_still_opens_for_a_record_of_before() {
        let keks = Keks::parse(K1).unwrap();
        let old = seal_unbound(&keks, b"sk-old", &of_before("ws_1", "pk/ws_1/openai/1-legacy"));
        assert!(!binds_name(&old).unwrap());
        assert_eq!(open(&keks, &old, &of_before("ws_1", "pk/ws_1/openai/1-legacy")).unwrap(), b"sk-old");
        assert_eq!(
            open(&keks, &old, &of_before("ws_2", "pk/ws_1/openai/1-legacy")),
            Err(VaultError::DecryptionFailed),
            "context still binds"
        );
    }

    #[test]
    fn a_blob_sealed_before_names_were_bound_does_not_open_under_a_record_stored_since() {
        let keks = Keks::parse(K1).unwrap();
        let old = seal_unbound(&keks, b"sk-retired", &of_before("ws_1", "pk/ws_1/openai/1-legacy"));
        assert_eq!(open(&keks, &old, &named("ws_1", "pk/v2/ws_1/openai/1-new")), Err(VaultError::DecryptionFailed));
    }

    #[test]
    fn rewrap_upgrades_an_unbound_blob_to_bind_its_new_name_and_keeps_the_ciphertext() {
        let keks = Keks::parse(K1).unwrap();
        let legacy = of_before("ws_1", "pk/ws_1/openai/1-legacy");
        let old = seal_unbound(&keks, b"sk-old", &legacy);
        let upgraded = rewrap(&keks, &old, &legacy, "pk/v2/ws_1/openai/1-moved").unwrap().expect("an unbound blob is upgraded");
        assert!(binds_name(&upgraded).unwrap());
        assert_eq!(open(&keks, &upgraded, &named("ws_1", "pk/v2/ws_1/openai/1-moved")).unwrap(), b"sk-old");
        assert_eq!(open(&keks, &upgraded, &of_before("ws_1", "pk/ws_1/openai/1-legacy")), Err(VaultError::DecryptionFailed));
        let (before, after): (serde_json::Value, serde_json::Value) =
            (serde_json::from_str(&old).unwrap(), serde_json::from_str(&upgraded).unwrap());
        assert_eq!(before["ct"], after["ct"], "the upgrade re-wraps only the data key");
        assert_eq!(rewrap(&keks, &upgraded, &named("ws_1", "pk/v2/ws_1/openai/1-moved"), "pk/v2/ws_1/openai/1-moved").unwrap(), None);
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

        let rewrapped = rewrap(&rotated, &blob, &context("ws_1"), context("ws_1").name).unwrap().expect("needs rewrap");
        assert_eq!(kek_of(&rewrapped).unwrap(), "k2");
        let only_new = Keks::parse(K2).unwrap();
        assert_eq!(open(&only_new, &rewrapped, &context("ws_1")).unwrap(), b"secret");
        assert_eq!(rewrap(&rotated, &rewrapped, &context("ws_1"), context("ws_1").name).unwrap(), None, "already current");
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
