//! `POST /v1/keys/verify`: one 200 answer with a `code` for every outcome.

use serde_json::{json, Value};

use super::auth::{needs_touch, Caller};
use super::credits::Calendar;
use super::limits::RateDecision;
use super::store::{AuthProbe, KeyStore};
use super::usage::{Ask, Outcome};
use super::{Capabilities, KeyRecord, PlatformKey};
use crate::deps::Deps;
use crate::error::ApiError;
use crate::time::rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyCode {
    Valid,
    Malformed,
    NotFound,
    Revoked,
    Expired,
    InsufficientCapabilities,
    RateLimited,
    UsageExceeded,
    IpNotAllowed,
}

impl VerifyCode {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyCode::Valid => "VALID",
            VerifyCode::Malformed => "MALFORMED",
            VerifyCode::NotFound => "NOT_FOUND",
            VerifyCode::Revoked => "REVOKED",
            VerifyCode::Expired => "EXPIRED",
            VerifyCode::InsufficientCapabilities => "INSUFFICIENT_CAPABILITIES",
            VerifyCode::RateLimited => "RATE_LIMITED",
            VerifyCode::UsageExceeded => "USAGE_EXCEEDED",
            VerifyCode::IpNotAllowed => "IP_NOT_ALLOWED",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Verdict {
    pub code: VerifyCode,
    pub key: Option<KeyRecord>,
    pub rate: Option<RateDecision>,
    /// Whether the verified key's `last_used_at` should be written after the response.
    pub needs_touch: bool,
}

impl Verdict {
    fn without_key(code: VerifyCode) -> Self {
        Verdict { code, key: None, rate: None, needs_touch: false }
    }

    /// `key_id` for any key of the workspace; its capabilities, subject and expiry only while
    /// it is live, so a revoked key's details do not outlive it.
    pub fn to_json(&self) -> Value {
        let mut body = json!({"valid": self.code == VerifyCode::Valid, "code": self.code.as_str()});
        if let Some(key) = &self.key {
            body["key_id"] = json!(key.id);
            if !matches!(self.code, VerifyCode::Revoked | VerifyCode::Expired) {
                body["capabilities"] = json!(key.capabilities.to_strings());
                body["subject"] = json!(key.subject);
                body["expires_at"] = json!(key.expires_at.map(rfc3339));
                if let Some(credits) = key.credits {
                    body["credits"] = credits.to_json();
                }
            }
        }
        if let Some(rate) = &self.rate {
            body["rate_limit"] = json!({"limit": rate.limit, "remaining": rate.remaining, "reset": rate.reset_seconds});
        }
        body
    }
}

/// What a verify asks besides the key: the capabilities, the client address to check against
/// the key's allowlist (if any), and the credits it spends.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    pub required: Capabilities,
    pub ip: Option<String>,
    pub cost: u64,
}

pub async fn verify<S: KeyStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    caller: &Caller,
    presented: &str,
    asked: &Verification,
) -> Result<Verdict, ApiError> {
    let required = &asked.required;
    caller.require("keys:verify")?;
    let (store, prefix, now_ms) = (deps.store, deps.key_prefix(), deps.now_ms);
    let Ok(key) = PlatformKey::parse(prefix, presented) else {
        return Ok(Verdict::without_key(VerifyCode::Malformed));
    };
    let hash = key.hash();
    let ask = Ask { ip: asked.ip.clone(), check_ip: asked.ip.is_some(), capabilities: required.to_strings(), cost: asked.cost };
    let probe = AuthProbe {
        key_hash: &hash,
        ip: None,
        ip_window_start: 0,
        now_ms,
        count_use_in: Some(&caller.workspace.id),
        ask: &ask,
        calendar: Calendar::of(deps),
    };
    let finding = store.authenticate(&probe).await?;
    let Some((key, _)) = finding.found.filter(|(key, _)| key.workspace_id == caller.workspace.id) else {
        return Ok(Verdict::without_key(VerifyCode::NotFound));
    };
    let rate = match (key.rate_limit, finding.rate_hits) {
        (Some(limit), Some(hits)) => Some(RateDecision::new(limit.limit, limit.window_seconds, hits.hits, hits.window_start, now_ms)),
        _ => None,
    };
    let code = if key.revoked_at.is_some_and(|at| at <= now_ms) {
        VerifyCode::Revoked
    } else if key.expires_at.is_some_and(|at| at <= now_ms) {
        VerifyCode::Expired
    } else {
        match finding.outcome {
            Some(Outcome::IpNotAllowed) => VerifyCode::IpNotAllowed,
            Some(Outcome::RateLimited) => VerifyCode::RateLimited,
            Some(Outcome::InsufficientCapabilities) => VerifyCode::InsufficientCapabilities,
            Some(Outcome::CreditsExhausted) => VerifyCode::UsageExceeded,
            Some(Outcome::Valid) => VerifyCode::Valid,
            // Not counted: judged here alike, without spending.
            None if key.capabilities.first_not_covered(required).is_some() => VerifyCode::InsufficientCapabilities,
            None if rate.is_some_and(|r| !r.allowed) => VerifyCode::RateLimited,
            None => VerifyCode::Valid,
        }
    };
    let live = !matches!(code, VerifyCode::Revoked | VerifyCode::Expired);
    if code == VerifyCode::Valid && key.old_key_grace_ms.is_some() {
        store.start_old_key_grace(&key, now_ms).await?;
    }
    let needs_touch = live && !finding.use_recorded && needs_touch(&key, now_ms);
    // A refused verify spent nothing: its balance is shown as of now, a refill due included.
    let key = key.as_of(Calendar::of(deps), now_ms);
    Ok(Verdict { code, key: Some(key), rate, needs_touch })
}
