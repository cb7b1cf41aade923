//! Authenticating a platform key: format and checksum without I/O, then one read by hash that
//! also carries the IP's failed attempts and counts the use against the key's rate limit.

use serde_json::json;

use super::limits::{seconds_until_window_ends, window_start, RateDecision, FAILED_ATTEMPT_LIMIT, FAILED_ATTEMPT_WINDOW_MS};
use super::store::{AuthProbe, KeyStore};
use super::usage::{Ask, Outcome};
use super::Workspace;
use super::{KeyRecord, PlatformKey};
use crate::audit::AuditEvent;
use crate::deps::Deps;
use crate::error::ApiError;
use crate::storage::{Precondition, StoreError};

/// The address failures are counted under when the platform names none (never on Cloudflare,
/// whose edge always sets `CF-Connecting-IP`).
pub const UNKNOWN_IP: &str = "unknown";

/// An authenticated key, its workspace and where the request came from.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: KeyRecord,
    pub workspace: Workspace,
    pub ip: Option<String>,
}

impl Caller {
    /// 403 `missing_capability` unless the key holds `required` (wildcards count).
    pub fn require(&self, required: &str) -> Result<(), ApiError> {
        if self.key.capabilities.grants(required) {
            Ok(())
        } else {
            Err(ApiError::MissingCapability { required: required.to_string() })
        }
    }

    /// 403 `workspace_read_only` for a write in a read-only workspace.
    pub fn require_writable(&self) -> Result<(), ApiError> {
        if self.workspace.read_only {
            Err(ApiError::WorkspaceReadOnly)
        } else {
            Ok(())
        }
    }

    /// What a write by this caller needs when it commits: the key still live, the workspace
    /// still writable.
    pub fn write_precondition(&self) -> Precondition {
        Precondition { workspace_id: self.workspace.id.clone(), key_id: Some(self.key.id.clone()), writable: true }
    }

    /// What handing out a secret or recording what is known needs: the key still live.
    pub fn live_precondition(&self) -> Precondition {
        self.write_precondition().even_read_only()
    }

    pub fn audit(&self, action: &str, now_ms: i64) -> AuditEvent {
        AuditEvent::new(Some(&self.workspace.id), action, now_ms).actor(Some(&self.key.id), self.ip.as_deref())
    }
}

#[derive(Debug, Clone)]
pub struct Authenticated {
    pub caller: Caller,
    /// The key's rate-limit state after this request, when it has a limit.
    pub rate: Option<RateDecision>,
    /// Whether `last_used_at` is more than a minute old and should be written after the response.
    pub needs_touch: bool,
}

/// A rejected authentication, with the rate-limit state to report when the key has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub error: ApiError,
    pub rate: Option<RateDecision>,
    /// Set on the failure that blocked its address, so the block can be logged once.
    pub blocked_ip: Option<String>,
}

impl From<ApiError> for Rejection {
    fn from(error: ApiError) -> Self {
        Rejection { error, rate: None, blocked_ip: None }
    }
}

impl From<StoreError> for Rejection {
    fn from(error: StoreError) -> Self {
        ApiError::from(error).into()
    }
}

pub fn needs_touch(key: &KeyRecord, now_ms: i64) -> bool {
    key.last_used_at.is_none_or(|at| at <= now_ms - 60_000)
}

/// Authenticates a request's key for a route that needs `required` (if any): one use, which
/// spends one credit when it passes everything else.
pub async fn authenticate<S: KeyStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    presented: Option<&str>,
    ip: Option<&str>,
    required: Option<&str>,
) -> Result<Authenticated, Rejection> {
    let (store, prefix, now_ms) = (deps.store, deps.key_prefix(), deps.now_ms);
    let presented = presented.ok_or(ApiError::Unauthorized)?;
    // A malformed key or a bad checksum is refused before any storage access.
    let key = PlatformKey::parse(prefix, presented).map_err(|_| ApiError::Unauthorized)?;
    let counted_ip = ip.unwrap_or(UNKNOWN_IP);
    let ip_window = window_start(now_ms, FAILED_ATTEMPT_WINDOW_MS);
    let hash = key.hash();
    let ask = Ask { ip: ip.map(str::to_string), check_ip: true, capabilities: required.into_iter().map(str::to_string).collect(), cost: 1 };
    let probe = AuthProbe {
        key_hash: &hash,
        ip: Some(counted_ip),
        ip_window_start: ip_window,
        now_ms,
        count_use_in: None,
        ask: &ask,
        calendar: crate::keys::credits::Calendar::of(deps),
    };
    let finding = store.authenticate(&probe).await?;

    let blocked = || {
        let retry_after = seconds_until_window_ends(now_ms, ip_window, FAILED_ATTEMPT_WINDOW_MS);
        Rejection::from(ApiError::TooManyFailedAttempts { retry_after })
    };
    if finding.ip_failures >= FAILED_ATTEMPT_LIMIT {
        return Err(blocked());
    }
    let Some((key, workspace)) = finding.found.filter(|(key, _)| key.is_live(now_ms)) else {
        // The count the upsert returns decides, not the one read before it: concurrent
        // failures that all read 9 still get exactly one 10th place.
        let failures = store.record_auth_failure(counted_ip, ip_window).await?;
        if failures > FAILED_ATTEMPT_LIMIT {
            return Err(blocked());
        }
        if failures == FAILED_ATTEMPT_LIMIT {
            let blocked = AuditEvent::new(None, "auth.ip_blocked", now_ms)
                .actor(None, Some(counted_ip))
                .detail(json!({"failures": failures, "window_seconds": FAILED_ATTEMPT_WINDOW_MS / 1000}));
            store.append_audit(&[blocked]).await?;
            return Err(Rejection { blocked_ip: Some(counted_ip.to_string()), ..ApiError::Unauthorized.into() });
        }
        return Err(ApiError::Unauthorized.into());
    };

    let rate = match (key.rate_limit, finding.rate_hits) {
        (Some(limit), Some(hits)) => Some(RateDecision::new(limit.limit, limit.window_seconds, hits.hits, hits.window_start, now_ms)),
        _ => None,
    };
    let refused = |error: ApiError| Err(Rejection { rate, ..error.into() });
    match finding.outcome {
        Some(Outcome::IpNotAllowed) => return refused(ApiError::IpNotAllowed),
        Some(Outcome::InsufficientCapabilities) => {
            return refused(ApiError::MissingCapability { required: required.unwrap_or_default().to_string() })
        }
        Some(Outcome::CreditsExhausted) => return refused(ApiError::CreditsExhausted),
        Some(Outcome::RateLimited) | Some(Outcome::Valid) | None => {}
    }
    if let Some(decision) = rate.filter(|d| !d.allowed) {
        return Err(Rejection { rate, ..ApiError::RateLimited { retry_after: decision.reset_seconds }.into() });
    }
    // A successor's first use starts the grace of the key it replaced (grace from first use).
    if key.old_key_grace_ms.is_some() {
        store.start_old_key_grace(&key, now_ms).await?;
    }
    let needs_touch = !finding.use_recorded && needs_touch(&key, now_ms);
    Ok(Authenticated { caller: Caller { key, workspace, ip: ip.map(str::to_string) }, rate, needs_touch })
}
