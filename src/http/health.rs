//! `GET /healthz` and `GET /openapi.json`.

use serde_json::{json, Value};

use super::reply::Reply;
use crate::error::ApiError;

pub const OPENAPI: &str = include_str!("openapi.json");

pub fn healthz() -> Result<Reply, ApiError> {
    Ok(Reply::ok(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})))
}

pub fn openapi() -> Result<Reply, ApiError> {
    let document: Value = serde_json::from_str(OPENAPI).map_err(ApiError::internal)?;
    Ok(Reply::ok(document))
}
