//! One request in flight: the request, its bindings, its id and clock, and helpers to read it.

use std::collections::HashMap;

use serde_json::Value;
use worker::{Context, Env, Request};

use super::input::{self, Fields, MAX_BODY_BYTES};
use crate::error::ApiError;
use crate::settings::Settings;
use crate::store::d1::D1Store;

pub struct Call {
    pub req: Request,
    pub env: Env,
    pub ctx: Context,
    pub request_id: String,
    pub now_ms: i64,
    pub params: Vec<String>,
    pub settings: Settings,
}

impl Call {
    pub fn param(&self, index: usize) -> &str {
        self.params.get(index).map_or("", String::as_str)
    }

    pub fn store(&self) -> Result<D1Store, ApiError> {
        Ok(D1Store::new(self.env.d1("DB").map_err(ApiError::internal)?))
    }

    /// A Worker secret or variable; both arrive as strings on `env`.
    pub fn env_string(&self, name: &str) -> Option<String> {
        self.env
            .secret(name)
            .map(|s| s.to_string())
            .or_else(|_| self.env.var(name).map(|v| v.to_string()))
            .ok()
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
        let declared = self.header("content-length").and_then(|n| n.trim().parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
            return Err(ApiError::PayloadTooLarge);
        }
        let bytes = self.req.bytes().await.map_err(|_| ApiError::InvalidJson)?;
        input::parse_json(&bytes)
    }

    /// The body as a JSON object with only the `allowed` fields.
    pub async fn fields(&mut self, allowed: &[&str]) -> Result<Fields, ApiError> {
        Fields::new(self.json().await?, allowed)
    }
}
