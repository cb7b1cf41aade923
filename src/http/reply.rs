//! A handler's answer as plain data, turned into a `worker::Response` in one place.

use serde_json::Value;
use worker::{Headers, Response};

use crate::error::ApiError;

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Reply { status: 200, body, headers: Vec::new() }
    }

    pub fn created(body: Value) -> Self {
        Reply { status: 201, body, headers: Vec::new() }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// For responses that carry a secret: no cache may keep them.
    pub fn no_store(self) -> Self {
        self.header("cache-control", "no-store")
    }

    pub fn from_error(error: &ApiError) -> Self {
        Reply { status: error.status(), body: error.envelope(), headers: error.headers() }
    }

    pub fn into_response(mut self, request_id: &str) -> worker::Result<Response> {
        // An error body names its request too, so a pasted error is enough to find the log line.
        if let Some(error) = self.body.get_mut("error").and_then(Value::as_object_mut) {
            error.entry("request_id").or_insert_with(|| Value::String(request_id.to_string()));
        }
        let headers = Headers::new();
        headers.set("content-type", "application/json; charset=utf-8")?;
        headers.set("x-request-id", request_id)?;
        for (name, value) in &self.headers {
            headers.set(name, value)?;
        }
        Ok(Response::from_bytes(self.body.to_string().into_bytes())?.with_status(self.status).with_headers(headers))
    }
}
