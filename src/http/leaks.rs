//! `POST /v1/leaks` (operator): a secret scanner's report of tokens found in public; and
//! `POST /v1/leaks/github`, the same report signed by GitHub's secret scanning, with no token.

use std::cell::RefCell;

use serde_json::Value;

use super::call::Call;
use super::reply::Reply;
use crate::error::ApiError;
use crate::keys::leaks::{self, LeakReport, Reporter};
use crate::providers::host::ApiHost;
use crate::webhooks::scanning::{self, KeyCache, ScanningKey, Signed, GITHUB_KEYS_URL};

/// A report of 1,000 tokens with GitHub's urls runs to a few hundred KiB.
const MAX_GITHUB_REPORT_BYTES: usize = 1024 * 1024;

thread_local! {
    /// GitHub's keys as last fetched, by key list URL, for this isolate's lifetime.
    static GITHUB_KEYS: RefCell<Option<(String, Vec<ScanningKey>)>> = const { RefCell::new(None) };
}

struct IsolateKeyCache;

impl KeyCache for IsolateKeyCache {
    fn get(&self, url: &str) -> Option<Vec<ScanningKey>> {
        GITHUB_KEYS.with(|cache| cache.borrow().as_ref().filter(|(cached, _)| cached == url).map(|(_, keys)| keys.clone()))
    }

    fn put(&self, url: &str, keys: Vec<ScanningKey>) {
        GITHUB_KEYS.with(|cache| *cache.borrow_mut() = Some((url.to_string(), keys)));
    }
}

pub async fn github(call: &mut Call) -> Result<Reply, ApiError> {
    let url = call.env_string("SECRET_SCANNING_KEYS_URL").filter(|u| !u.trim().is_empty()).unwrap_or_else(|| GITHUB_KEYS_URL.to_string());
    // Held to the provider host policy: https only, loopback and http only in local development.
    let keys_url = ApiHost::parse(&url, call.deps().allow_insecure_hosts())
        .map_err(|reason| ApiError::internal(format!("SECRET_SCANNING_KEYS_URL {reason}")))?;
    let body = call.body_bytes_up_to(MAX_GITHUB_REPORT_BYTES).await?;
    let (identifier, signature) = (call.header("github-public-key-identifier"), call.header("github-public-key-signature"));
    let signed = Signed { identifier: identifier.as_deref(), signature: signature.as_deref(), body: &body };
    let (labels, revoked) = scanning::receive(&call.deps(), &IsolateKeyCache, &keys_url, signed).await?;
    call.deliver_queued_after_response(revoked.len());
    Ok(Reply::ok(Value::Array(labels.iter().map(|l| l.to_json()).collect())))
}

pub async fn report(call: &mut Call) -> Result<Reply, ApiError> {
    let reports = LeakReport::read_all(call.json().await?)?;
    let (labels, revoked) = leaks::report(&call.deps(), &reports, None, Reporter::Operator).await?;
    // The revocations' notifications were queued with them.
    call.deliver_queued_after_response(revoked.len());
    Ok(Reply::ok(Value::Array(labels.iter().map(|l| l.to_json()).collect())))
}
