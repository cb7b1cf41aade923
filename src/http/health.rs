//! `GET /healthz` and `GET /openapi.json`.

use serde_json::{json, Value};

use super::call::Call;
use super::reply::Reply;
use crate::error::ApiError;

pub async fn healthz(_call: &mut Call) -> Result<Reply, ApiError> {
    Ok(Reply::ok(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})))
}

/// The document is a static asset (`scripts/build.sh` minifies `src/http/openapi.json` into
/// `build/public/`), read through the `ASSETS` binding: embedded, it was a sixth of the wasm.
pub async fn openapi(call: &mut Call) -> Result<Reply, ApiError> {
    let assets = call.env.assets("ASSETS").map_err(ApiError::internal)?;
    let mut response = assets.fetch("https://assets.invalid/openapi.json", None).await.map_err(ApiError::internal)?;
    if response.status_code() != 200 {
        return Err(ApiError::internal(format!("the ASSETS binding answered {} for openapi.json", response.status_code())));
    }
    let document: Value = response.json().await.map_err(ApiError::internal)?;
    Ok(Reply::ok(document))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::routes::ROUTES;
    use std::collections::BTreeSet;

    const OPENAPI: &str = include_str!("openapi.json");

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
