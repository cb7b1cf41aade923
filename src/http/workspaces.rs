//! Operator routes: `/v1/workspaces` and `/v1/workspaces/{id}`.

use serde_json::{json, Value};

use super::call::Call;
use super::idempotent::{self, Begun};
use super::input::{invalid, nested_field, Fields};
use super::reply::Reply;
use crate::error::ApiError;
use crate::keys::workspace::MAX_LEAK_GRACE_SECONDS;
use crate::keys::{Capabilities, LeakAction, LeakPolicy, MeteredFallback};
use crate::name::Name;
use crate::page::PageRequest;
use crate::workspaces::{self, NewWorkspace, WorkspacePatch};

/// `leak_policy: {action, grace_seconds?}`: `expire` needs a grace of 1 to 86,400 seconds; the
/// other actions take none.
fn read_leak_policy(fields: &mut Fields) -> Result<Option<LeakPolicy>, ApiError> {
    let Some(object) = fields.optional_object("leak_policy")? else { return Ok(None) };
    let within = |error| nested_field(error, "leak_policy");
    let mut inner = Fields::new(Value::Object(object), &["action", "grace_seconds"]).map_err(within)?;
    let action_field = "leak_policy.action";
    let action = match inner.optional_str("action").map_err(within)? {
        Some(text) => LeakAction::parse(&text)
            .ok_or_else(|| ApiError::invalid_request(action_field, "`leak_policy.action` must be `revoke`, `expire` or `notify`."))?,
        None => return Err(ApiError::invalid_request(action_field, "`leak_policy.action` is required.")),
    };
    let grace_field = "leak_policy.grace_seconds";
    let grace = inner.optional_u64("grace_seconds").map_err(within)?;
    let grace_seconds = match (action, grace) {
        (LeakAction::Expire, Some(seconds)) if (1..=MAX_LEAK_GRACE_SECONDS as u64).contains(&seconds) => seconds as u32,
        (LeakAction::Expire, _) => {
            return Err(ApiError::invalid_request(
                grace_field,
                format!("`expire` needs `leak_policy.grace_seconds` of 1 to {MAX_LEAK_GRACE_SECONDS}."),
            ))
        }
        (_, None | Some(0)) => 0,
        (_, Some(_)) => return Err(ApiError::invalid_request(grace_field, "Only `expire` takes `leak_policy.grace_seconds`.")),
    };
    Ok(Some(LeakPolicy { action, grace_seconds }))
}

fn read_metered_fallback(fields: &mut Fields) -> Result<Option<MeteredFallback>, ApiError> {
    let Some(text) = fields.optional_str("metered_fallback")? else { return Ok(None) };
    MeteredFallback::parse(&text)
        .map(Some)
        .ok_or_else(|| ApiError::invalid_request("metered_fallback", "`metered_fallback` must be `allow` or `deny`."))
}

fn read_name(fields: &mut Fields, required: bool) -> Result<Option<Name>, ApiError> {
    let text = if required { Some(fields.required_str("name")?) } else { fields.optional_str("name")? };
    text.map(|t| Name::parse(&t).map_err(invalid("name"))).transpose()
}

fn read_capabilities(fields: &mut Fields, field: &str) -> Result<Option<Capabilities>, ApiError> {
    let Some(items) = fields.optional_string_list(field)? else { return Ok(None) };
    Capabilities::parse(&items).map(Some).map_err(|reason| ApiError::invalid_request(field, reason))
}

pub async fn create(call: &mut Call) -> Result<Reply, ApiError> {
    let body = call.json().await?;
    let claimed = match idempotent::begin(call, "operator POST /v1/workspaces".to_string(), &body).await? {
        Begun::Replay(reply) => return Ok(reply),
        Begun::Run(claimed) => claimed,
    };
    let result = create_workspace(call, body).await;
    idempotent::finish(call, claimed, result).await
}

async fn create_workspace(call: &mut Call, body: Value) -> Result<Reply, ApiError> {
    let mut fields = Fields::new(body, &["name", "default_capabilities", "metered_fallback"])?;
    let new = NewWorkspace {
        name: read_name(&mut fields, true)?.ok_or(ApiError::internal("required name missing"))?,
        default_capabilities: read_capabilities(&mut fields, "default_capabilities")?.unwrap_or_default(),
        metered_fallback: read_metered_fallback(&mut fields)?.unwrap_or_default(),
    };
    let created = workspaces::create(&call.deps(), new).await?;
    let body = json!({
        "workspace": created.workspace.to_json(),
        "key": created.owner_key.to_json_with_secret(&created.plaintext),
    });
    Ok(Reply::created(body).no_store())
}

pub async fn list(call: &mut Call) -> Result<Reply, ApiError> {
    let query = call.query();
    let page = PageRequest::from_query(&query)?;
    let page = workspaces::list(&call.deps(), &page).await?;
    let items: Vec<_> = page.items.iter().map(|w| w.to_json()).collect();
    Ok(Reply::ok(json!({"items": items, "next_cursor": page.next_cursor})))
}

pub async fn get(call: &mut Call) -> Result<Reply, ApiError> {
    let workspace = workspaces::get(&call.deps(), call.param(0)).await?;
    Ok(Reply::ok(workspace.to_json()))
}

pub async fn update(call: &mut Call) -> Result<Reply, ApiError> {
    let mut fields =
        call.fields(&["name", "read_only", "default_capabilities", "max_key_lifetime_seconds", "leak_policy", "metered_fallback"]).await?;
    let leak_policy = read_leak_policy(&mut fields)?;
    let max_key_lifetime_seconds = fields.nullable_u64("max_key_lifetime_seconds")?;
    if let Some(Some(seconds)) = max_key_lifetime_seconds {
        workspaces::check_max_key_lifetime(seconds)?;
    }
    let patch = WorkspacePatch {
        name: read_name(&mut fields, false)?,
        read_only: fields.optional_bool("read_only")?,
        default_capabilities: read_capabilities(&mut fields, "default_capabilities")?,
        max_key_lifetime_seconds,
        leak_policy,
        metered_fallback: read_metered_fallback(&mut fields)?,
    };
    let workspace = workspaces::update(&call.deps(), call.param(0), &patch).await?;
    Ok(Reply::ok(workspace.to_json()))
}
