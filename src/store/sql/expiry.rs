//! The expiry notices: `api_key.expiring` once per key from 7 days before `expires_at`, and
//! `api_key.expired` once when it passes. Each kind is two statements of one atomic batch, the
//! notices queued for the keys due and then those same keys marked, so of two runs at once
//! (D1 runs batches one after the other) the second finds them marked: exactly once.

use super::exec::{int, opt_text, text, Statement};
use crate::keys::expiry::{ExpiryNotice, EXPIRED_NOTICE_WINDOW_MS, EXPIRING_NOTICE_MS};
use crate::storage::StoreError;
use crate::time::rfc3339;

/// The keys due for `notice` at `:now` (at most `:limit`, soonest first; only `:only` if set).
fn due_keys(notice: ExpiryNotice) -> String {
    let due = match notice {
        // Not yet expired, expiring within 7 days, not revoked already.
        ExpiryNotice::Expiring => {
            "expiring_noticed_at IS NULL AND expires_at > :now AND expires_at <= :now + :expiring_ms \
             AND (revoked_at IS NULL OR revoked_at > :now)"
        }
        // Expired (not revoked first), and recently: a database from before these notices does
        // not announce keys that expired long ago.
        ExpiryNotice::Expired => {
            "expired_noticed_at IS NULL AND expires_at <= :now AND expires_at > :now - :expired_window_ms \
             AND (revoked_at IS NULL OR revoked_at > expires_at)"
        }
    };
    format!(
        "SELECT id FROM api_keys WHERE expires_at IS NOT NULL AND {due} AND (:only IS NULL OR id = :only) \
         ORDER BY expires_at, id LIMIT :limit"
    )
}

/// The two statements that queue `notice` for the due keys (of workspaces with an endpoint)
/// and mark all of them.
pub(crate) fn expiry_notice_statements(
    notice: ExpiryNotice,
    now_ms: i64,
    limit: usize,
    only: Option<&str>,
) -> Result<Vec<Statement>, StoreError> {
    let binds = [
        ("now", int(now_ms)),
        ("limit", int(limit as i64)),
        ("only", opt_text(only)),
        ("expiring_ms", int(EXPIRING_NOTICE_MS)),
        ("expired_window_ms", int(EXPIRED_NOTICE_WINDOW_MS)),
        ("event_type", text(notice.event_type())),
        ("timestamp", text(&rfc3339(now_ms))),
    ];
    let due = due_keys(notice);
    let queue = Statement::new(
        &format!(
            "INSERT INTO outbox (id, workspace_id, event_type, payload, created_at, next_attempt_at) \
             SELECT 'msg_' || lower(hex(randomblob(12))), k.workspace_id, :event_type, \
             json_object('type', :event_type, 'timestamp', :timestamp, 'data', json_object('key_id', k.id, 'name', k.name, \
             'expires_at', strftime('%Y-%m-%dT%H:%M:%SZ', k.expires_at / 1000, 'unixepoch'))), :now, :now \
             FROM api_keys k WHERE k.id IN ({due}) \
             AND EXISTS (SELECT 1 FROM notification_endpoints n WHERE n.workspace_id = k.workspace_id) \
             ORDER BY k.expires_at, k.id"
        ),
        &binds,
    )?;
    let column = notice.marked_column();
    let mark = Statement::new(&format!("UPDATE api_keys SET {column} = :now WHERE id IN ({due})"), &binds)?;
    Ok(vec![queue, mark])
}
