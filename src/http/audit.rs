//! `GET /v1/audit`: a workspace's trail with `audit:read`, or with the admin token any
//! workspace's (`?workspace_id=`) or the operator-level entries.

use serde_json::{json, Value};

use super::call::Call;
use super::reply::Reply;
use crate::audit::AuditEvent;
use crate::error::ApiError;
use crate::page::{Cursor, Page, PageRequest};
use crate::store::AuditStore;
use crate::time::rfc3339;

fn to_json(event: &AuditEvent) -> Value {
    json!({
        "id": event.id,
        "at": rfc3339(event.at),
        "action": event.action,
        "actor_key_id": event.actor_key_id,
        "target": event.target,
        "ip": event.ip,
        "detail": event.detail,
    })
}

pub async fn list(call: &mut Call) -> Result<Reply, ApiError> {
    let query = call.query();
    // The route table admitted the operator (no caller) or a key holding `audit:read`.
    let workspace_id = match call.caller.take() {
        None => query.get("workspace_id").filter(|w| !w.is_empty()).cloned(),
        Some(caller) => {
            if query.get("workspace_id").is_some_and(|w| *w != caller.workspace.id) {
                return Err(ApiError::invalid_request(
                    "workspace_id",
                    "`workspace_id` is for the operator; a key reads its own workspace.",
                ));
            }
            Some(caller.workspace.id)
        }
    };
    let page = PageRequest::parse(query.get("limit").map(String::as_str), query.get("cursor").map(String::as_str))?;
    // Audit cursors carry the entry's position in `created_at`: the trail is ordered by it.
    let before = page.after.as_ref().map(|c| c.created_at);
    let rows = call.store()?.audit_before(workspace_id.as_deref(), before, page.limit + 1).await?;
    let page = Page::from_rows(rows, page.limit, |(seq, event)| Cursor { created_at: *seq, id: event.id.clone() });
    let items: Vec<Value> = page.items.iter().map(|(_, event)| to_json(event)).collect();
    Ok(Reply::ok(json!({"items": items, "next_cursor": page.next_cursor})))
}
