//! Secret-scanning reports: every reported token that is a live key is revoked at once.

use serde_json::{json, Value};

use super::{KeyPrefix, KeyRecord, PlatformKey};
use crate::audit::AuditEvent;
use crate::crypto::digest::sha256_hex;
use crate::error::ApiError;
use crate::store::KeyStore;

/// One reported token, as secret scanners send them (`type`, `url`, `source` are optional).
#[derive(Debug, Clone)]
pub struct LeakReport {
    pub token: String,
    pub kind: Option<String>,
    pub url: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakLabel {
    pub token_hash: String,
    pub true_positive: bool,
}

impl LeakLabel {
    pub fn to_json(&self) -> Value {
        json!({"token_hash": self.token_hash, "label": if self.true_positive { "true_positive" } else { "false_positive" }})
    }
}

/// Revokes the live keys among `reports` (of `workspace_id` only, when given), labels each
/// token, and returns the labels with the keys it revoked. Audited per revoked key in its workspace, and at operator level for operator reports.
pub async fn report(
    store: &impl KeyStore,
    reports: &[LeakReport],
    workspace_id: Option<&str>,
    prefix: &KeyPrefix,
    now_ms: i64,
) -> Result<(Vec<LeakLabel>, Vec<KeyRecord>), ApiError> {
    // Only well-formed keys can be ours; the others are labelled without a lookup.
    let candidate_hashes: Vec<String> =
        reports.iter().filter_map(|r| PlatformKey::parse(prefix, &r.token).ok()).map(|key| key.hash()).collect();
    let revoked =
        if candidate_hashes.is_empty() { Vec::new() } else { store.revoke_by_hashes(&candidate_hashes, workspace_id, now_ms).await? };

    // A scanner's url or source may quote the token itself; no reported token reaches the trail.
    let redact = |text: &Option<String>| {
        text.as_ref()
            .map(|t| reports.iter().fold(t.clone(), |acc, r| if r.token.is_empty() { acc } else { acc.replace(&r.token, "[redacted]") }))
    };
    let mut events = Vec::new();
    for key in &revoked {
        let report = reports.iter().find(|r| sha256_hex(r.token.as_bytes()) == key.key_hash);
        let detail = json!({
            "type": report.and_then(|r| redact(&r.kind)),
            "url": report.and_then(|r| redact(&r.url)),
            "source": report.and_then(|r| redact(&r.source)),
            "reported_by": if workspace_id.is_some() { "webhook" } else { "operator" },
        });
        events.push(AuditEvent::new(Some(&key.workspace_id), "key.leaked", now_ms).target(key.id.clone()).detail(detail.clone()));
        if workspace_id.is_none() {
            let mut operator_detail = detail;
            operator_detail["workspace_id"] = json!(key.workspace_id);
            events.push(AuditEvent::new(None, "key.leaked", now_ms).target(key.id.clone()).detail(operator_detail));
        }
    }
    if workspace_id.is_none() {
        // Every operator report is on the operator trail, even one that revoked nothing.
        let summary = json!({"tokens": reports.len(), "revoked": revoked.iter().map(|k| k.id.clone()).collect::<Vec<_>>()});
        events.push(AuditEvent::new(None, "leaks.reported", now_ms).detail(summary));
    }
    if !events.is_empty() {
        store.append_audit(&events).await?;
    }

    let labels = reports
        .iter()
        .map(|r| {
            let token_hash = sha256_hex(r.token.as_bytes());
            let true_positive = revoked.iter().any(|k| k.key_hash == token_hash);
            LeakLabel { token_hash, true_positive }
        })
        .collect();
    Ok((labels, revoked))
}
