//! The HTTP shell: request id, routing, dispatch, the error envelope and one log line per
//! request. Handlers live in one module per resource and return `Result<Reply, ApiError>`.

mod audit;
mod auth;
mod body;
mod call;
mod dependencies;
mod health;
mod idempotent;
mod inbound_webhooks;
use crate::input;
mod keys;
mod leaks;
mod me;
pub mod outbound;
mod providers;
mod reply;
pub mod routes;
mod waypath;
mod webhook_settings;
mod workspaces;

use std::rc::Rc;

use serde_json::json;
use worker::{console_error, console_log, Context, Date, Env, Request, Response};

use crate::crypto::random::random_base62;
use crate::error::ApiError;
use crate::keys::auth::Caller;
use call::Call;
pub use dependencies::Bindings;
use reply::Reply;
use routes::{match_path, Access, Operation};

/// Keeps a caller's `x-request-id` when it is a plain token, so traces join up across services.
fn request_id(incoming: Option<String>) -> String {
    incoming
        .filter(|id| (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        .unwrap_or_else(|| format!("req_{}", random_base62(20)))
}

/// The method as sent. Methods are case-sensitive (RFC 9110); only the six that Fetch itself
/// normalises are matched without regard to case, so `patch` is not PATCH.
fn request_method(sent: String) -> String {
    let upper = sent.to_ascii_uppercase();
    if ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"].contains(&upper.as_str()) {
        upper
    } else {
        sent
    }
}

pub async fn handle(req: Request, env: Env, ctx: Context) -> Response {
    let started = Date::now().as_millis() as i64;
    let request_id = request_id(req.headers().get("x-request-id").ok().flatten());
    // worker 0.8.7 reads a method it does not know as GET; the request's own method decides.
    let method = request_method(req.inner().method());
    let path = req.path();
    let matched = match_path(&path);
    let route_name = matched.as_ref().map_or("unmatched", |m| m.route.template);
    let mut response_headers = Vec::new();
    let mut d1_statements = 0;

    let result = match matched {
        None => Err(ApiError::NotFound),
        Some(matched) => match matched.route.operation(&method) {
            None => Err(ApiError::MethodNotAllowed { allow: matched.route.methods() }),
            Some(operation) => match Bindings::from_env(&env, Some(&request_id)) {
                Err(problem) => Err(ApiError::internal(problem)),
                Ok(bindings) => {
                    let mut call = Call {
                        req,
                        env,
                        ctx,
                        request_id: request_id.clone(),
                        now_ms: started,
                        params: matched.params,
                        bindings: Rc::new(bindings),
                        response_headers: Vec::new(),
                        caller: None,
                    };
                    let result = run(operation, &mut call).await;
                    response_headers = call.response_headers;
                    d1_statements = call.bindings.d1_statements();
                    result
                }
            },
        },
    };

    let (mut reply, error) = match result {
        Ok(reply) => (reply, None),
        Err(error) => (Reply::from_error(&error), Some(error)),
    };
    reply.headers.extend(response_headers);
    let status = reply.status;
    let line = RequestLine { request_id: &request_id, method: &method, route: route_name, status, d1_statements };
    log_request(&line, Date::now().as_millis() as i64 - started, error.as_ref());
    reply.into_response(&request_id).unwrap_or_else(|problem| {
        console_error!(
            "{}",
            json!({"level": "error", "request_id": request_id, "msg": "response build failed", "detail": problem.to_string()})
        );
        Response::error("internal", 500).expect("a plain response can always be built")
    })
}

/// Admits the caller the operation's access names, then runs its handler.
async fn run(operation: &Operation, call: &mut Call) -> Result<Reply, ApiError> {
    match operation.access {
        Access::Public | Access::Signed => {}
        Access::Operator => auth::require_admin(call)?,
        Access::Key { capability, writes } => call.caller = Some(admit_key(call, capability, writes).await?),
        // The operator is recognised by its token; anything else must be a platform key.
        Access::OperatorOrKey(capability) => {
            if auth::require_admin(call).is_err() {
                call.caller = Some(admit_key(call, Some(capability), false).await?);
            }
        }
    }
    (operation.handler)(call).await
}

async fn admit_key(call: &mut Call, capability: Option<&str>, writes: bool) -> Result<Caller, ApiError> {
    let caller = auth::require_key(call, capability).await?;
    if let Some(capability) = capability {
        caller.require(capability)?;
    }
    if writes {
        caller.require_writable()?;
    }
    Ok(caller)
}

/// What a request's log line says about it.
struct RequestLine<'a> {
    request_id: &'a str,
    method: &'a str,
    route: &'a str,
    status: u16,
    /// D1 statements it sent before its response (what `npm run bench` counts).
    d1_statements: usize,
}

/// One structured line per request. It names the route template, never the raw path or any
/// header or body, so no secret a client sends can reach the log.
fn log_request(request: &RequestLine, duration_ms: i64, error: Option<&ApiError>) {
    let status = request.status;
    let mut line = json!({
        "level": if status >= 500 { "error" } else { "info" },
        "request_id": request.request_id,
        "method": request.method,
        "route": request.route,
        "status": status,
        "duration_ms": duration_ms,
        "d1_statements": request.d1_statements,
    });
    if let Some(error) = error {
        line["error_code"] = json!(error.code());
        if let Some(detail) = error.log_detail() {
            line["detail"] = json!(detail);
        }
    }
    if status >= 500 {
        console_error!("{line}");
    } else {
        console_log!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_case_sensitive_except_the_six_fetch_normalises() {
        assert_eq!(request_method("get".into()), "GET");
        assert_eq!(request_method("Delete".into()), "DELETE");
        assert_eq!(request_method("patch".into()), "patch", "not PATCH");
        assert_eq!(request_method("QUERY".into()), "QUERY");
    }

    #[test]
    fn keeps_a_plain_incoming_request_id() {
        assert_eq!(request_id(Some("abc-123_x.y".into())), "abc-123_x.y");
    }

    #[test]
    fn replaces_a_missing_or_unsafe_request_id() {
        for incoming in [None, Some(String::new()), Some("has space".into()), Some("x".repeat(129))] {
            let id = request_id(incoming.clone());
            assert!(id.starts_with("req_") && id.len() == 24, "{incoming:?} gave {id}");
        }
    }
}
