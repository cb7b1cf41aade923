//! One request in flight: the request, its bindings, its id and clock, and helpers to read it.

use std::collections::HashMap;

use serde_json::Value;
use worker::{Context, Env, Request};

use super::input::{self, Fields, MAX_BODY_BYTES};
use crate::error::ApiError;
use crate::keys::auth::Caller;
use crate::settings::Settings;
use crate::store::d1::D1Store;
use crate::store::{AuditStore, KeyStore, WebhookStore};

pub struct Call {
    pub req: Request,
    pub env: Env,
    pub ctx: Context,
    pub request_id: String,
    pub now_ms: i64,
    pub params: Vec<String>,
    pub settings: Settings,
    /// Headers every response to this request carries, whatever its status (`RateLimit-*`).
    pub response_headers: Vec<(&'static str, String)>,
    /// The platform key the route table admitted, for routes a key calls.
    pub caller: Option<Caller>,
}

impl Call {
    /// The key the route table admitted. Every key route has one; a route declared otherwise
    /// that asks for it is a mistake of the table, answered 500.
    pub fn take_caller(&mut self) -> Result<Caller, ApiError> {
        self.caller.take().ok_or_else(|| ApiError::internal("a handler asked for a caller its route does not admit"))
    }

    /// The time now, not when the request arrived: a body may have taken a while to come.
    pub fn clock_ms(&self) -> i64 {
        self.now_ms.max(worker::Date::now().as_millis() as i64)
    }

    pub fn param(&self, index: usize) -> &str {
        self.params.get(index).map_or("", String::as_str)
    }

    pub fn store(&self) -> Result<D1Store, ApiError> {
        Ok(D1Store::new(self.env.d1("DB").map_err(ApiError::internal)?))
    }

    /// Records a use of `key_id` after the response is sent, so the caller never waits for it.
    pub fn touch_after_response(&self, key_id: &str) {
        let (db, key_id, now_ms, request_id) = (self.env.d1("DB"), key_id.to_string(), self.now_ms, self.request_id.clone());
        self.ctx.wait_until(async move {
            let outcome = match db {
                Ok(db) => D1Store::new(db).touch_last_used(&key_id, now_ms).await.map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            };
            if let Err(detail) = outcome {
                worker::console_error!(
                    "{}",
                    serde_json::json!({"level": "error", "request_id": request_id, "msg": "last_used_at write failed", "detail": detail})
                );
            }
        });
    }

    /// Appends audit entries after the response is sent; a failure is logged, never lost silently.
    pub fn audit_after_response(&self, events: Vec<crate::audit::AuditEvent>) {
        let (db, request_id) = (self.env.d1("DB"), self.request_id.clone());
        self.ctx.wait_until(async move {
            let outcome = match db {
                Ok(db) => D1Store::new(db).append_audit(&events).await.map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            };
            if let Err(detail) = outcome {
                worker::console_error!(
                    "{}",
                    serde_json::json!({"level": "error", "request_id": request_id, "msg": "audit write failed", "detail": detail})
                );
            }
        });
    }

    /// Queues a notification for the workspace's endpoint, if it has one, and makes the first
    /// delivery attempt after the response; the scheduled handler retries what fails. A queueing
    /// failure is logged, never turned into an error for the request that caused it.
    pub async fn notify(&self, event: crate::webhooks::outbox::OutboxEvent) {
        let queued = match self.store() {
            Ok(store) => store.enqueue(&event, self.now_ms).await.map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match queued {
            Ok(true) => {}
            Ok(false) => return,
            Err(detail) => {
                worker::console_error!(
                    "{}",
                    serde_json::json!({"level": "error", "request_id": self.request_id, "msg": "notification not queued", "detail": detail})
                );
                return;
            }
        }
        self.deliver_after_response(Some(event.id), 1);
    }

    /// Makes up to `limit` delivery attempts of due notifications (or only of `only`) after the
    /// response is sent; what fails is retried by the scheduled handler, and is logged here.
    pub fn deliver_after_response(&self, only: Option<String>, limit: usize) {
        let Some(keks) = self.env_string("VAULT_KEKS").and_then(|text| crate::vault::Keks::parse(&text).ok()) else { return };
        let (db, now_ms, request_id) = (self.env.d1("DB"), self.now_ms, self.request_id.clone());
        let allow_insecure_hosts = self.settings.allow_insecure_provider_hosts;
        self.ctx.wait_until(async move {
            let outcome = match db {
                Ok(db) => {
                    let store = D1Store::new(db);
                    let notifier = super::outbound::FetchClient::default();
                    let clock = move || now_ms.max(worker::Date::now().as_millis() as i64);
                    let deployment = crate::providers::service::Deployment { keks: &keks, allow_insecure_hosts };
                    let pass = crate::webhooks::delivery::deliver_due(&store, &notifier, &deployment, only.as_deref(), limit, &clock).await;
                    if pass.errors.is_empty() {
                        Ok(())
                    } else {
                        Err(pass.errors.join("; "))
                    }
                }
                Err(error) => Err(error.to_string()),
            };
            if let Err(detail) = outcome {
                worker::console_error!(
                    "{}",
                    serde_json::json!({"level": "error", "request_id": request_id, "msg": "notification attempt failed", "detail": detail})
                );
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
        self.env.secret(name).map(|s| s.to_string()).or_else(|_| self.env.var(name).map(|v| v.to_string())).ok()
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
        let declared = self.header("content-length").and_then(|n| n.trim().parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
            return Err(ApiError::PayloadTooLarge);
        }
        let Ok(stream) = self.req.stream() else { return Ok(Vec::new()) };
        match super::body::read_capped(stream, MAX_BODY_BYTES).await {
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
