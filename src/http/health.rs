//! `GET /healthz` and `GET /openapi.json`.

use serde_json::{json, Value};

use super::call::Call;
use super::reply::Reply;
use crate::error::ApiError;

/// `openapi.json` as `build.rs` minified it.
pub const OPENAPI: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.min.json"));

pub async fn healthz(_call: &mut Call) -> Result<Reply, ApiError> {
    Ok(Reply::ok(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})))
}

pub async fn openapi(_call: &mut Call) -> Result<Reply, ApiError> {
    let document: Value = serde_json::from_str(OPENAPI).map_err(ApiError::internal)?;
    Ok(Reply::ok(document))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::routes::ROUTES;
    use std::collections::BTreeSet;

    #[test]
    fn the_openapi_document_describes_exactly_the_routes_that_exist() {
        let document: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert_eq!(document["openapi"], "3.1.0");
        let documented: BTreeSet<(String, String)> = document["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, item)| {
                item.as_object().unwrap().keys().filter(|k| *k != "parameters").map(move |m| (path.clone(), m.to_uppercase()))
            })
            .collect();
        let routed: BTreeSet<(String, String)> = ROUTES
            .iter()
            .flat_map(|route| route.operations.iter().map(move |o| (route.template.to_string(), o.method.to_string())))
            .collect();
        assert_eq!(documented, routed, "openapi.json and the route table disagree");
    }

    #[test]
    fn every_documented_operation_has_an_id_and_responses() {
        let document: Value = serde_json::from_str(OPENAPI).unwrap();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap().iter().filter(|(k, _)| *k != "parameters") {
                assert!(operation["operationId"].is_string(), "{method} {path} lacks operationId");
                assert!(operation["responses"].is_object(), "{method} {path} lacks responses");
            }
        }
    }
}
