//! GitHub's secret scanning partner protocol (`POST /v1/leaks/github`): a report signed by
//! GitHub, checked against GitHub's published keys, answered with a label per token.
//!
//! The keys come from `SECRET_SCANNING_KEYS_URL` (GitHub's
//! `{"public_keys": [{"key_identifier", "key", "is_current"}]}`), kept by the caller between
//! requests and fetched again, once per report, when a report names an identifier they lack.

use serde::Deserialize;
use serde_json::Value;

use crate::crypto::scanning_signature::P256Key;
use crate::deps::Deps;
use crate::error::ApiError;
use crate::keys::leaks::{self, LeakLabel, LeakReport, Reporter};
use crate::keys::store::KeyStore;
use crate::keys::KeyRecord;
use crate::providers::host::ApiHost;
use crate::providers::validation::{ProbeRequest, ProviderClient};

/// Where GitHub publishes its secret scanning keys.
pub const GITHUB_KEYS_URL: &str = "https://api.github.com/meta/public_keys/secret_scanning";

/// At most this many tokens per report.
pub const MAX_TOKENS: usize = 1_000;

/// One of GitHub's signing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanningKey {
    pub identifier: String,
    pub key: P256Key,
}

#[derive(Deserialize)]
struct KeyList {
    public_keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
struct KeyEntry {
    key_identifier: String,
    key: String,
}

/// GitHub's key list; an entry whose key is not a P-256 PEM is skipped (it can sign nothing
/// here), but a body that is not the list at all is an error.
pub fn parse_key_list(body: &str) -> Result<Vec<ScanningKey>, String> {
    let list: KeyList = serde_json::from_str(body).map_err(|e| format!("the key list is not GitHub's format: {e}"))?;
    Ok(list
        .public_keys
        .into_iter()
        .filter_map(|entry| P256Key::from_pem(&entry.key).ok().map(|key| ScanningKey { identifier: entry.key_identifier, key }))
        .collect())
}

/// The keys the isolate holds between reports, for one key list URL.
pub trait KeyCache {
    fn get(&self, url: &str) -> Option<Vec<ScanningKey>>;
    fn put(&self, url: &str, keys: Vec<ScanningKey>);
}

/// The signature headers as sent: 400 `invalid_webhook` when either is missing.
pub struct Signed<'a> {
    pub identifier: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

async fn fetch_keys<S, B, C: ProviderClient>(deps: &Deps<'_, S, B, C>, url: &ApiHost) -> Result<Vec<ScanningKey>, ApiError> {
    let request = ProbeRequest::get(
        url.as_str().to_string(),
        vec![("accept".into(), "application/json".into()), ("user-agent".into(), "keywarden".into())],
    );
    // GitHub retries a report it could not deliver; a key list out of reach is worth a retry.
    let answer = deps.client.send(&request).await.map_err(|_| ApiError::Unavailable)?;
    if answer.status != 200 {
        return Err(ApiError::Unavailable);
    }
    parse_key_list(&answer.body).map_err(|_| ApiError::Unavailable)
}

/// The key GitHub names, from the cache or, when it lacks it, from one fresh fetch.
async fn key_named<S, B, C: ProviderClient>(
    deps: &Deps<'_, S, B, C>,
    cache: &dyn KeyCache,
    url: &ApiHost,
    identifier: &str,
) -> Result<Option<P256Key>, ApiError> {
    let find = |keys: &[ScanningKey]| keys.iter().find(|k| k.identifier == identifier).map(|k| k.key.clone());
    if let Some(found) = cache.get(url.as_str()).as_deref().and_then(find) {
        return Ok(Some(found));
    }
    let keys = fetch_keys(deps, url).await?;
    let found = find(&keys);
    cache.put(url.as_str(), keys);
    Ok(found)
}

/// Verifies a GitHub report, revokes the live keys it names (of any workspace) and labels each
/// token: `true_positive` for a key of ours that was live (or that a leak report revoked
/// before), else `false_positive`.
pub async fn receive<S: KeyStore, B, C: ProviderClient>(
    deps: &Deps<'_, S, B, C>,
    cache: &dyn KeyCache,
    keys_url: &ApiHost,
    signed: Signed<'_>,
) -> Result<(Vec<LeakLabel>, Vec<KeyRecord>), ApiError> {
    let missing = |header: &str| ApiError::InvalidWebhook { message: format!("The {header} header is missing.") };
    let identifier = signed.identifier.map(str::trim).filter(|v| !v.is_empty()).ok_or_else(|| missing("Github-Public-Key-Identifier"))?;
    let signature = signed.signature.map(str::trim).filter(|v| !v.is_empty()).ok_or_else(|| missing("Github-Public-Key-Signature"))?;
    let key = key_named(deps, cache, keys_url, identifier).await?.ok_or(ApiError::InvalidSignature)?;
    if !key.verifies(signature, signed.body) {
        return Err(ApiError::InvalidSignature);
    }
    let body: Value = serde_json::from_slice(signed.body).map_err(|_| ApiError::InvalidJson)?;
    let reports = LeakReport::read_all(body)?;
    if reports.len() > MAX_TOKENS {
        return Err(ApiError::invalid_request("body", format!("A report carries at most {MAX_TOKENS} tokens.")));
    }
    leaks::report(deps, &reports, None, Reporter::GitHub).await
}
