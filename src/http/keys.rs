//! Platform-key routes: `/v1/keys`, `/v1/keys/{id}`, reroll and verify, and Le Bureau's
//! `/api/auth/api-keys` routes, which behave exactly as their `/v1/keys` counterparts.
//!
//! The route table admits the caller (capability, and for writes the read-only flag) before a
//! handler reads the body, so a caller without the right learns that first; the use cases
//! check again.

use serde_json::{json, Value};

use super::call::Call;
use super::idempotent::{self, Begun};
use super::input::{invalid, nested_field, Fields};
use super::reply::Reply;
use crate::error::ApiError;
use crate::keys::allowlist::Allowlist;
use crate::keys::auth::Caller;
use crate::keys::authority::CreditChange;
use crate::keys::credits::{Interval, Refill, MAX_COST, MAX_CREDITS};
use crate::keys::service::{
    self, Expiry, GraceStarts, KeyUsage, NewKey, UsageWindow, MAX_EXPIRES_IN_SECONDS, MAX_GRACE_SECONDS, MAX_SUBJECT_BYTES,
};
use crate::keys::usage::Granularity;
use crate::keys::{verify as verification, Capabilities, RateLimit};
use crate::name::Name;
use crate::page::PageRequest;
use crate::time::{parse_instant, parse_rfc3339, rfc3339};

fn read_capabilities(fields: &mut Fields, field: &str) -> Result<Option<Capabilities>, ApiError> {
    let Some(items) = fields.optional_string_list(field)? else { return Ok(None) };
    Capabilities::parse(&items).map(Some).map_err(|reason| ApiError::invalid_request(field, reason))
}

fn read_subject(fields: &mut Fields) -> Result<Option<Value>, ApiError> {
    let Some(subject) = fields.optional_object("subject")? else { return Ok(None) };
    let subject = Value::Object(subject);
    if subject.to_string().len() > MAX_SUBJECT_BYTES {
        return Err(ApiError::invalid_request("subject", format!("`subject` must be at most {MAX_SUBJECT_BYTES} bytes of JSON.")));
    }
    Ok(Some(subject))
}

fn read_expiry(fields: &mut Fields) -> Result<Expiry, ApiError> {
    let expires_in = fields.optional_u64("expires_in")?;
    let expires_at = fields.optional_str("expires_at")?;
    match (expires_in, expires_at) {
        (Some(_), Some(_)) => Err(ApiError::invalid_request("expires_at", "Give `expires_in` or `expires_at`, not both.")),
        (Some(seconds), None) if (1..=MAX_EXPIRES_IN_SECONDS).contains(&seconds) => Ok(Expiry::InSeconds(seconds)),
        (Some(_), None) => {
            Err(ApiError::invalid_request("expires_in", format!("`expires_in` must be 1 to {MAX_EXPIRES_IN_SECONDS} seconds.")))
        }
        (None, Some(text)) => parse_rfc3339(&text).map(Expiry::AtMs).ok_or_else(|| {
            ApiError::invalid_request("expires_at", "`expires_at` must be an RFC 3339 timestamp no later than 9999-12-31T23:59:59Z.")
        }),
        (None, None) => Ok(Expiry::Never),
    }
}

fn read_rate_limit(fields: &mut Fields) -> Result<Option<RateLimit>, ApiError> {
    let Some(object) = fields.optional_object("rate_limit")? else { return Ok(None) };
    let mut inner = Fields::new(Value::Object(object), &["limit", "window_seconds"]).map_err(|error| nested_field(error, "rate_limit"))?;
    let bounded = |inner: &mut Fields, name: &str, max: u64| -> Result<u32, ApiError> {
        let field = format!("rate_limit.{name}");
        match inner.optional_u64(name).map_err(|e| nested_field(e, "rate_limit"))? {
            Some(value) if (1..=max).contains(&value) => Ok(value as u32),
            Some(_) => Err(ApiError::invalid_request(&field, format!("`{field}` must be 1 to {max}."))),
            None => Err(ApiError::invalid_request(&field, format!("`{field}` is required."))),
        }
    };
    let limit = bounded(&mut inner, "limit", 100_000)?;
    let window_seconds = bounded(&mut inner, "window_seconds", 3_600)?;
    Ok(Some(RateLimit { limit, window_seconds }))
}

pub async fn create(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let body = call.json().await?;
    let claimed = match idempotent::begin(call, format!("{} POST /v1/keys", caller.key.id), &body).await? {
        Begun::Replay(reply) => return Ok(reply),
        Begun::Run(claimed) => claimed,
    };
    let result = create_key(call, &caller, body).await;
    idempotent::finish(call, claimed, result).await
}

/// `allowed_ips`: up to 32 addresses or CIDR ranges; an empty list is no allowlist.
fn read_allowed_ips(fields: &mut Fields) -> Result<Option<Allowlist>, ApiError> {
    let Some(entries) = fields.optional_string_list("allowed_ips")? else { return Ok(None) };
    let list = Allowlist::parse(&entries).map_err(|reason| ApiError::invalid_request("allowed_ips", reason))?;
    Ok((!list.is_empty()).then_some(list))
}

/// A whole number of credits from `least` to `MAX_CREDITS` in `name`, an object `within`
/// another field (its path then names it) or the body itself.
fn credit_amount(fields: &mut Fields, name: &str, within: Option<&str>, least: u64) -> Result<Option<u64>, ApiError> {
    let field = within.map_or_else(|| name.to_string(), |within| format!("{within}.{name}"));
    let read = match within {
        Some(within) => fields.optional_u64(name).map_err(|error| nested_field(error, within)),
        None => fields.optional_u64(name),
    };
    match read? {
        Some(amount) if (least..=MAX_CREDITS).contains(&amount) => Ok(Some(amount)),
        Some(_) => Err(ApiError::invalid_request(&field, format!("`{field}` must be {least} to {MAX_CREDITS}."))),
        None => Ok(None),
    }
}

/// `credits: {remaining, refill?: {amount, interval: "day" | "month"}}`.
fn read_credits(fields: &mut Fields) -> Result<Option<(u64, Option<Refill>)>, ApiError> {
    let Some(object) = fields.optional_object("credits")? else { return Ok(None) };
    let mut inner = Fields::new(Value::Object(object), &["remaining", "refill"]).map_err(|error| nested_field(error, "credits"))?;
    let within = |error| nested_field(error, "credits");
    let remaining = credit_amount(&mut inner, "remaining", Some("credits"), 0)?
        .ok_or_else(|| ApiError::invalid_request("credits.remaining", "`credits.remaining` is required."))?;
    let refill = match inner.optional_object("refill").map_err(within)? {
        None => None,
        Some(object) => {
            let in_refill = |error| nested_field(error, "credits.refill");
            let mut refill = Fields::new(Value::Object(object), &["amount", "interval"]).map_err(in_refill)?;
            let amount = credit_amount(&mut refill, "amount", Some("credits.refill"), 1)?
                .ok_or_else(|| ApiError::invalid_request("credits.refill.amount", "`credits.refill.amount` is required."))?;
            let interval = refill.optional_str("interval").map_err(in_refill)?;
            let interval = interval.as_deref().and_then(Interval::parse).ok_or_else(|| {
                ApiError::invalid_request("credits.refill.interval", "`credits.refill.interval` must be `day` or `month`.")
            })?;
            Some(Refill { amount, interval })
        }
    };
    Ok(Some((remaining, refill)))
}

async fn create_key(call: &mut Call, caller: &Caller, body: Value) -> Result<Reply, ApiError> {
    let names = ["name", "capabilities", "subject", "expires_in", "expires_at", "rate_limit", "allowed_ips", "credits"];
    let mut fields = Fields::new(body, &names)?;
    let new = NewKey {
        name: Name::parse(&fields.required_str("name")?).map_err(invalid("name"))?,
        capabilities: read_capabilities(&mut fields, "capabilities")?,
        subject: read_subject(&mut fields)?,
        expiry: read_expiry(&mut fields)?,
        rate_limit: read_rate_limit(&mut fields)?,
        allowed_ips: read_allowed_ips(&mut fields)?,
        credits: read_credits(&mut fields)?,
    };
    let (record, key) = service::create(&call.deps(), caller, new).await?;
    Ok(Reply::created(record.to_json_with_secret(&key)).no_store())
}

pub async fn list(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let query = call.query();
    let page = PageRequest::from_query(&query)?;
    let include_revoked = call.query_flag(&query, "include_revoked")?;
    let page = service::list(&call.deps(), &caller, include_revoked, &page).await?;
    let items: Vec<Value> = page.items.iter().map(|k| k.to_json()).collect();
    Ok(Reply::ok(json!({"items": items, "next_cursor": page.next_cursor})))
}

pub async fn get(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let key = service::get(&call.deps(), &caller, call.param(0)).await?;
    Ok(Reply::ok(key.to_json()))
}

pub async fn revoke(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let revocation = service::revoke(&call.deps(), &caller, call.param(0)).await?;
    let key = revocation.key;
    call.deliver_after_response(revocation.queued);
    Ok(Reply::ok(json!({"id": key.id, "revoked_at": key.revoked_at.map(rfc3339)})))
}

pub async fn reroll(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let body = call.json().await?;
    let scope = format!("{} POST /v1/keys/{}/reroll", caller.key.id, call.param(0));
    let claimed = match idempotent::begin(call, scope, &body).await? {
        Begun::Replay(reply) => return Ok(reply),
        Begun::Run(claimed) => claimed,
    };
    let result = reroll_key(call, &caller, body).await;
    idempotent::finish(call, claimed, result).await
}

async fn reroll_key(call: &mut Call, caller: &Caller, body: Value) -> Result<Reply, ApiError> {
    let mut fields = Fields::new(body, &["grace_seconds", "grace_starts"])?;
    let grace_starts = match fields.optional_str("grace_starts")?.as_deref() {
        None | Some("now") => GraceStarts::Now,
        Some("first_use") => GraceStarts::FirstUse,
        Some(_) => return Err(ApiError::invalid_request("grace_starts", "`grace_starts` must be `now` or `first_use`.")),
    };
    let grace_seconds = match fields.optional_u64("grace_seconds")? {
        None => 0,
        Some(seconds) if seconds <= MAX_GRACE_SECONDS => seconds,
        Some(_) => return Err(ApiError::invalid_request("grace_seconds", format!("`grace_seconds` must be 0 to {MAX_GRACE_SECONDS}."))),
    };
    let id = call.param(0).to_string();
    let rerolled = service::reroll(&call.deps(), caller, &id, grace_seconds, grace_starts).await?;
    call.deliver_after_response(rerolled.queued);
    Ok(Reply::created(rerolled.successor.to_json_with_secret(&rerolled.key)).no_store())
}

/// `{add}` or `{set}`: exactly one. Accepts `Idempotency-Key`, so a retried `add` adds once.
pub async fn credits(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let body = call.json().await?;
    let scope = format!("{} POST /v1/keys/{}/credits", caller.key.id, call.param(0));
    let claimed = match idempotent::begin(call, scope, &body).await? {
        Begun::Replay(reply) => return Ok(reply),
        Begun::Run(claimed) => claimed,
    };
    let result = change_credits(call, &caller, body).await;
    idempotent::finish(call, claimed, result).await
}

async fn change_credits(call: &mut Call, caller: &Caller, body: Value) -> Result<Reply, ApiError> {
    let mut fields = Fields::new(body, &["add", "set"])?;
    let change = match (credit_amount(&mut fields, "add", None, 1)?, credit_amount(&mut fields, "set", None, 0)?) {
        (Some(add), None) => CreditChange::Add(add),
        (None, Some(set)) => CreditChange::Set(set),
        (Some(_), Some(_)) => return Err(ApiError::invalid_request("set", "Give `add` or `set`, not both.")),
        (None, None) => return Err(ApiError::invalid_request("add", "Give `add` (credits to add) or `set` (the new balance).")),
    };
    let key = service::change_credits(&call.deps(), caller, call.param(0), change).await?;
    Ok(Reply::ok(key.to_json()))
}

/// `from`, `to` (RFC 3339 or Unix seconds or milliseconds) and `granularity` (`hour`, the default, or `day`).
fn usage_window(call: &Call) -> Result<UsageWindow, ApiError> {
    let query = call.query();
    let instant = |name: &str| -> Result<Option<i64>, ApiError> {
        match query.get(name).filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(text) => parse_instant(text).map(Some).ok_or_else(|| {
                ApiError::invalid_request(
                    name,
                    format!("`{name}` must be an RFC 3339 timestamp or a Unix time in seconds or milliseconds."),
                )
            }),
        }
    };
    let granularity = match query.get("granularity").map(String::as_str) {
        None | Some("") => Granularity::Hour,
        Some(text) => {
            Granularity::parse(text).ok_or_else(|| ApiError::invalid_request("granularity", "`granularity` must be `hour` or `day`."))?
        }
    };
    UsageWindow::new(instant("from")?, instant("to")?, granularity, call.now_ms)
}

fn usage_json(usage: &KeyUsage) -> Value {
    json!({
        "key_id": usage.key.id,
        "name": usage.key.name,
        "buckets": usage.buckets.iter().map(|b| b.to_json()).collect::<Vec<_>>(),
    })
}

fn window_json(window: &UsageWindow) -> Value {
    let granularity = if window.granularity == Granularity::Hour { "hour" } else { "day" };
    json!({"from": rfc3339(window.from_ms), "to": rfc3339(window.to_ms), "granularity": granularity})
}

/// Every key's usage (a page of keys, newest first, revoked ones too), in one call.
pub async fn usage(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let window = usage_window(call)?;
    let page = PageRequest::from_query(&call.query())?;
    let found = service::usage(&call.deps(), &caller, None, window, &page).await?;
    let mut body = window_json(&window);
    body["items"] = json!(found.items.iter().map(usage_json).collect::<Vec<_>>());
    body["next_cursor"] = json!(found.next_cursor);
    Ok(Reply::ok(body))
}

pub async fn key_usage(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let window = usage_window(call)?;
    let id = call.param(0).to_string();
    let found = service::usage(&call.deps(), &caller, Some(&id), window, &PageRequest::default()).await?;
    let item = found.items.first().ok_or(ApiError::NotFound)?;
    let one = usage_json(item);
    let mut body = window_json(&window);
    for (name, value) in one.as_object().expect("an object").clone() {
        body[name] = value;
    }
    // Also as the list answers it, a page of one, so a client of either route reads both.
    body["items"] = json!([one]);
    body["next_cursor"] = json!(null);
    Ok(Reply::ok(body))
}

pub async fn verify(call: &mut Call) -> Result<Reply, ApiError> {
    let caller = call.take_caller()?;
    let mut fields = call.fields(&["key", "capabilities", "ip", "cost"]).await?;
    let presented = fields.required_str("key")?;
    let required = read_capabilities(&mut fields, "capabilities")?.unwrap_or_default();
    let ip = fields.optional_str("ip")?;
    if ip.as_deref().is_some_and(|text| crate::keys::allowlist::client_address(text).is_none()) {
        return Err(ApiError::invalid_request("ip", "`ip` must be an IPv4 or IPv6 address."));
    }
    let cost = match fields.optional_u64("cost")? {
        None => 1,
        Some(cost) if cost <= MAX_COST => cost,
        Some(_) => return Err(ApiError::invalid_request("cost", format!("`cost` must be 0 to {MAX_COST}."))),
    };
    let asked = verification::Verification { required, ip, cost };
    let verdict = verification::verify(&call.deps(), &caller, &presented, &asked).await?;
    if let (true, Some(key)) = (verdict.needs_touch, &verdict.key) {
        call.touch_after_response(&key.id);
    }
    Ok(Reply::ok(verdict.to_json()))
}
