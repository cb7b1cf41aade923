//! One request in flight: the request, its bindings, its id and arrival time, helpers to read
//! it, and the work that runs after its response.

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::Value;
use worker::{Context, Env, Request};

use super::dependencies::{env_string, Bindings, LiveDeps};
use super::input::{self, Fields, MAX_BODY_BYTES};
use crate::error::ApiError;
use crate::keys::auth::Caller;
use crate::store::{AuditStore, KeyStore};

pub struct Call {
    pub req: Request,
    pub env: Env,
    pub ctx: Context,
    pub request_id: String,
    pub now_ms: i64,
    pub params: Vec<String>,
    /// D1, KV, `fetch`, the KEKs and the settings, read from `env` once for this request.
    pub bindings: Rc<Bindings>,
    /// Headers every response to this request carries, whatever its status (`RateLimit-*`).
    pub response_headers: Vec<(&'static str, String)>,
    /// The platform key the route table admitted, for routes a key calls.
    pub caller: Option<Caller>,
}

/// The first delivery attempts made after a response, at most: each costs about three queries
/// and a subrequest of the invocation's budget, and the scheduled handler delivers the rest.
const FIRST_ATTEMPTS: usize = 25;

impl Call {
    /// The key the route table admitted. Every key route has one; a route declared otherwise
    /// that asks for it is a mistake of the table, answered 500.
    pub fn take_caller(&mut self) -> Result<Caller, ApiError> {
        self.caller.take().ok_or_else(|| ApiError::internal("a handler asked for a caller its route does not admit"))
    }

    /// What the use cases work with, as of this request's arrival.
    pub fn deps(&self) -> LiveDeps<'_> {
        self.bindings.deps(self.now_ms)
    }

    pub fn param(&self, index: usize) -> &str {
        self.params.get(index).map_or("", String::as_str)
    }

    /// Runs `work` after the response is sent, so the caller never waits for it; a failure is
    /// logged under the request id as `what` failed, never lost silently.
    fn after_response<F>(&self, what: &'static str, work: impl FnOnce(Rc<Bindings>) -> F + 'static)
    where
        F: std::future::Future<Output = Result<(), String>> + 'static,
    {
        let (bindings, request_id) = (self.bindings.clone(), self.request_id.clone());
        self.ctx.wait_until(async move {
            if let Err(detail) = work(bindings).await {
                worker::console_error!(
                    "{}",
                    serde_json::json!({"level": "error", "request_id": request_id, "msg": format!("{what} failed"), "detail": detail})
                );
            }
        });
    }

    /// Records a use of `key_id` after the response is sent.
    pub fn touch_after_response(&self, key_id: &str) {
        let (key_id, now_ms) = (key_id.to_string(), self.now_ms);
        self.after_response("last_used_at write", move |bindings| async move {
            bindings.store.touch_last_used(&key_id, now_ms).await.map_err(|e| e.to_string())
        });
    }

    /// Appends audit entries after the response is sent.
    pub fn audit_after_response(&self, events: Vec<crate::audit::AuditEvent>) {
        self.after_response(
            "audit write",
            move |bindings| async move { bindings.store.append_audit(&events).await.map_err(|e| e.to_string()) },
        );
    }

    /// Audits a resolve's fallback to metered and queues its notification (at most one an hour
    /// per agent and provider), then makes its first delivery attempt, after the response.
    pub fn fallback_after_response(
        &self,
        audit: crate::audit::AuditEvent,
        agent_id: Option<String>,
        from: crate::providers::ProviderId,
        unusable: crate::providers::fallback::Unusable,
    ) {
        let (now_ms, can_sign) = (self.now_ms, self.bindings.has_keks());
        self.after_response("fallback record", move |bindings| async move {
            let deps = bindings.deps(now_ms);
            let queued = crate::providers::service::record_fallback(&deps, audit, agent_id.as_deref(), from, unusable)
                .await
                .map_err(|e| e.log_detail().map_or_else(|| e.to_string(), str::to_string))?;
            if let (Some(id), true) = (queued, can_sign) {
                let pass = crate::webhooks::delivery::deliver_due(&deps, Some(&id), 1).await;
                if !pass.errors.is_empty() {
                    return Err(pass.errors.join("; "));
                }
            }
            Ok(())
        });
    }

    /// Makes the first delivery attempt of the notification an action queued, if it queued one.
    pub fn deliver_after_response(&self, queued: Option<String>) {
        if let Some(id) = queued {
            self.deliver_due_after_response(Some(id), 1);
        }
    }

    /// Makes the first delivery attempts of `queued` notifications after the response.
    pub fn deliver_queued_after_response(&self, queued: usize) {
        if queued > 0 {
            self.deliver_due_after_response(None, queued.min(FIRST_ATTEMPTS));
        }
    }

    /// Makes up to `limit` delivery attempts of due notifications (or only of `only`) after the
    /// response is sent; what fails is retried by the scheduled handler, and is logged here.
    fn deliver_due_after_response(&self, only: Option<String>, limit: usize) {
        // Without KEKs nothing can be signed: the events wait in the outbox, untouched.
        if !self.bindings.has_keks() {
            return;
        }
        let now_ms = self.now_ms;
        self.after_response("notification attempt", move |bindings| async move {
            let pass = crate::webhooks::delivery::deliver_due(&bindings.deps(now_ms), only.as_deref(), limit).await;
            if pass.errors.is_empty() {
                Ok(())
            } else {
                Err(pass.errors.join("; "))
            }
        });
    }

    /// A query parameter read as a boolean: `true`/`false`/`1`/`0`, absent is `false`.
    pub fn query_flag(&self, query: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
        match query.get(name).map(String::as_str) {
            None | Some("") | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(_) => Err(ApiError::invalid_request(name, format!("`{name}` must be true or false."))),
        }
    }

    /// A Worker secret or variable; both arrive as strings on `env`.
    pub fn env_string(&self, name: &str) -> Option<String> {
        env_string(&self.env, name)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.req.headers().get(name).ok().flatten()
    }

    pub fn client_ip(&self) -> Option<String> {
        self.header("cf-connecting-ip")
    }

    pub fn query(&self) -> HashMap<String, String> {
        match self.req.url() {
            Ok(url) => url.query_pairs().into_owned().collect(),
            Err(_) => HashMap::new(),
        }
    }

    /// The body as JSON: 415 for another media type, 413 over 64 KiB, 400 when malformed.
    pub async fn json(&mut self) -> Result<Value, ApiError> {
        if let Some(content_type) = self.header("content-type") {
            if !input::is_json_media_type(&content_type) {
                return Err(ApiError::UnsupportedMediaType);
            }
        }
        input::parse_json(&self.body_bytes().await?)
    }

    /// The raw body, at most 64 KiB (413 beyond, whatever `Content-Length` claims); no body is
    /// an empty one.
    pub async fn body_bytes(&mut self) -> Result<Vec<u8>, ApiError> {
        self.body_bytes_up_to(MAX_BODY_BYTES).await
    }

    /// The raw body, at most `cap` bytes (413 beyond): for the one route whose bodies are
    /// larger by contract (a secret scanning report of up to 1,000 tokens).
    pub async fn body_bytes_up_to(&mut self, cap: usize) -> Result<Vec<u8>, ApiError> {
        let declared = self.header("content-length").and_then(|n| n.trim().parse::<usize>().ok());
        if declared.is_some_and(|n| n > cap) {
            return Err(ApiError::PayloadTooLarge);
        }
        let Ok(stream) = self.req.stream() else { return Ok(Vec::new()) };
        match super::body::read_capped(stream, cap).await {
            Ok(super::body::Capped::Whole(bytes)) => Ok(bytes),
            Ok(super::body::Capped::TooLarge) => Err(ApiError::PayloadTooLarge),
            Err(_) => Err(ApiError::InvalidJson),
        }
    }

    /// The body as a JSON object with only the `allowed` fields.
    pub async fn fields(&mut self, allowed: &[&str]) -> Result<Fields, ApiError> {
        Fields::new(self.json().await?, allowed)
    }
}
