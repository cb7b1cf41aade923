//! `GET /v1/audit`: a workspace's trail with `audit:read`, or with the admin token any
//! workspace's (`?workspace_id=`) or the operator-level entries.

use serde_json::{json, Value};

use super::call::Call;
use super::reply::Reply;
use crate::audit::{self, AuditEvent};
use crate::error::ApiError;
use crate::page::PageRequest;

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
    let page = PageRequest::from_query(&query)?;
    let page = audit::list(&call.deps(), workspace_id.as_deref(), &page).await?;
    let items: Vec<Value> = page.items.iter().map(AuditEvent::to_json).collect();
    Ok(Reply::ok(json!({"items": items, "next_cursor": page.next_cursor})))
}
