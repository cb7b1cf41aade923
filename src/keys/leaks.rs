//! Secret-scanning reports: every reported token that is a live key is revoked at once.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use super::store::{KeyStore, LeakPlan, LeakRevocation, PlannedRevocation};
use super::{KeyRecord, LeakAction, LeakPolicy, PlatformKey};
use crate::audit::AuditEvent;
use crate::crypto::digest::sha256_hex;
use crate::deps::Deps;
use crate::error::ApiError;
use crate::input::Fields;
use crate::outbox::OutboxEvent;
use crate::time::rfc3339;

/// One reported token, as secret scanners send them (`type`, `url`, `source` are optional).
#[derive(Debug, Clone)]
pub struct LeakReport {
    pub token: String,
    pub kind: Option<String>,
    pub url: Option<String>,
    pub source: Option<String>,
}

impl LeakReport {
    /// Reads `[{token, type?, url?, source?}]`, naming a bad field by its index, e.g. `[2].token`.
    pub fn read_all(body: Value) -> Result<Vec<LeakReport>, ApiError> {
        let Value::Array(items) = body else {
            return Err(ApiError::invalid_request("body", "The request body must be a JSON array of reported tokens."));
        };
        items
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                let at = |error: ApiError| match error {
                    ApiError::InvalidRequest { field, message } => ApiError::InvalidRequest {
                        field: if field == "body" { format!("[{index}]") } else { format!("[{index}].{field}") },
                        message,
                    },
                    other => other,
                };
                let mut fields = Fields::new(item, &["token", "type", "url", "source"]).map_err(at)?;
                let token = fields.required_str("token").map_err(at)?;
                Ok(LeakReport {
                    token,
                    kind: fields.optional_str("type").map_err(at)?,
                    url: fields.optional_str("url").map_err(at)?,
                    source: fields.optional_str("source").map_err(at)?,
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakLabel {
    pub token_hash: String,
    /// The report's own `type`, echoed (GitHub's feedback format names it `token_type`).
    pub token_type: Option<String>,
    pub true_positive: bool,
}

impl LeakLabel {
    pub fn to_json(&self) -> Value {
        json!({
            "token_hash": self.token_hash,
            "token_type": self.token_type,
            "label": if self.true_positive { "true_positive" } else { "false_positive" },
        })
    }
}

/// Who reported the tokens, as the audit trail names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reporter {
    /// The operator's `POST /v1/leaks`.
    Operator,
    /// GitHub's secret scanning, `POST /v1/leaks/github`.
    GitHub,
    /// A workspace's own signed webhook, which reports its own keys only.
    Webhook,
}

impl Reporter {
    fn as_str(self) -> &'static str {
        match self {
            Reporter::Operator => "operator",
            Reporter::GitHub => "github",
            Reporter::Webhook => "webhook",
        }
    }
}

/// Revokes the live keys among `reports` (of `workspace_id` only, when given), labels each
/// token, and returns the labels with the keys it revoked. Each revoked key is audited as
/// `key.leaked` in its workspace (and at operator level for operator reports) and queued as an
/// `api_key.revoked` notification, all in the batch that revokes it, so a report of any size
/// either commits whole or not at all. A token whose key a leak report revoked before, this
/// one or an earlier (a retried delivery), is a true positive again; a key revoked otherwise
/// is not.
pub async fn report<S: KeyStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    reports: &[LeakReport],
    workspace_id: Option<&str>,
    reporter: Reporter,
) -> Result<(Vec<LeakLabel>, Vec<KeyRecord>), ApiError> {
    let (store, prefix, now_ms) = (deps.store, deps.key_prefix(), deps.now_ms);
    let token_hashes: Vec<String> = reports.iter().map(|r| sha256_hex(r.token.as_bytes())).collect();
    // Only well-formed keys can be ours; the others are labelled without a lookup. The first
    // report of a token is the one its audit entry quotes.
    let mut first_report: HashMap<&str, &LeakReport> = HashMap::new();
    for (report, hash) in reports.iter().zip(&token_hashes) {
        if PlatformKey::parse(prefix, &report.token).is_ok() {
            first_report.entry(hash.as_str()).or_insert(report);
        }
    }
    let candidate_hashes: Vec<String> = first_report.keys().map(|h| h.to_string()).collect();
    let live =
        if candidate_hashes.is_empty() { Vec::new() } else { store.live_keys_by_hashes(&candidate_hashes, workspace_id, now_ms).await? };

    // A key whose workspace only asks to be told stays live, and is a true positive all the same.
    let notified_only: HashSet<String> =
        live.iter().filter(|(_, policy)| policy.grace_ms().is_none()).map(|(key, _)| key.key_hash.clone()).collect();
    let revocations = live
        .iter()
        .map(|(key, policy)| {
            let report = first_report.get(key.key_hash.as_str()).copied();
            planned_revocation(key, *policy, report, reports, workspace_id, reporter, now_ms)
        })
        .collect();
    // Every operator report is on the operator trail, even one that revokes nothing.
    let summary = workspace_id.is_none().then(|| {
        AuditEvent::new(None, "leaks.reported", now_ms).detail(json!({"tokens": reports.len(), "reported_by": reporter.as_str()}))
    });
    let outcome = if candidate_hashes.is_empty() && summary.is_none() {
        LeakRevocation::default()
    } else {
        let plan = LeakPlan { key_hashes: &candidate_hashes, workspace_id, now_ms, revocations, summary };
        store.revoke_leaked(&plan).await?
    };

    let leaked: HashSet<&str> = outcome.leaked_hashes.iter().chain(&notified_only).map(String::as_str).collect();
    let labels = token_hashes
        .into_iter()
        .zip(reports)
        .map(|(token_hash, report)| {
            let true_positive = leaked.contains(token_hash.as_str());
            LeakLabel { token_hash, token_type: report.kind.clone(), true_positive }
        })
        .collect();
    Ok((labels, outcome.revoked))
}

/// What the leak of `key` brings under its workspace's `policy`: the audit entries, the
/// `api_key.leaked` notification, and for a revocation at once `api_key.revoked` too.
fn planned_revocation(
    key: &KeyRecord,
    policy: LeakPolicy,
    report: Option<&LeakReport>,
    reports: &[LeakReport],
    workspace_id: Option<&str>,
    reporter: Reporter,
    now_ms: i64,
) -> PlannedRevocation {
    let (url, source) = (report.and_then(|r| redact(r.url.as_deref(), reports)), report.and_then(|r| redact(r.source.as_deref(), reports)));
    let detail = json!({
        "type": report.and_then(|r| redact(r.kind.as_deref(), reports)),
        "url": url,
        "source": source,
        "reported_by": reporter.as_str(),
        "action": policy.action.as_str(),
    });
    let mut audit = vec![AuditEvent::new(Some(&key.workspace_id), "key.leaked", now_ms).target(key.id.clone()).detail(detail.clone())];
    if workspace_id.is_none() {
        let mut operator_detail = detail;
        operator_detail["workspace_id"] = json!(key.workspace_id);
        audit.push(AuditEvent::new(None, "key.leaked", now_ms).target(key.id.clone()).detail(operator_detail));
    }
    let grace_ms = policy.grace_ms();
    // When the key stops working, as of this report: its policy's end, or its own.
    let stops_at = [grace_ms.map(|grace| now_ms + grace), key.revoked_at, key.expires_at].into_iter().flatten().min();
    let leaked = json!({
        "key_id": key.id, "name": key.name, "url": url, "source": source,
        "action": policy.action.as_str(), "expires_at": stops_at.map(rfc3339),
    });
    let mut notifications = vec![OutboxEvent::new(&key.workspace_id, "api_key.leaked", leaked, now_ms)];
    if policy.action == LeakAction::Revoke {
        let revoked = KeyRecord { revoked_at: Some(now_ms), ..key.clone() };
        notifications.push(OutboxEvent::new(&key.workspace_id, "api_key.revoked", revoked.revoked_notice_data("leaked"), now_ms));
    }
    PlannedRevocation { key_id: key.id.clone(), workspace_id: key.workspace_id.clone(), grace_ms, audit, notifications }
}

/// A scanner's url or source may quote the token itself, or another reported one: no reported
/// token reaches the trail. Only the tokens the text holds are replaced.
fn redact(text: Option<&str>, reports: &[LeakReport]) -> Option<String> {
    let mut text = text?.to_string();
    for token in reports.iter().map(|r| r.token.as_str()).filter(|t| !t.is_empty()) {
        if text.contains(token) {
            text = text.replace(token, "[redacted]");
        }
    }
    Some(text)
}
