//! Reading what a client sent: the JSON body's fields, each failure with the field it concerns.

use serde_json::{Map, Value};

use crate::error::{echoed, ApiError};

pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Whether a `Content-Type` names JSON (`application/json`, or any `+json` type).
pub fn is_json_media_type(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    media_type == "application/json" || (media_type.starts_with("application/") && media_type.ends_with("+json"))
}

/// Parses a body already known to be JSON by media type. An empty body reads as `{}` so that
/// routes whose fields are all optional can be called without one.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(bytes).map_err(|_| ApiError::InvalidJson)
}

/// The fields of a JSON object body, read one by one; unknown fields are refused up front.
pub struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    pub fn new(body: Value, allowed: &[&str]) -> Result<Self, ApiError> {
        let Value::Object(map) = body else {
            return Err(ApiError::invalid_request("body", "The request body must be a JSON object."));
        };
        if let Some(unknown) = map.keys().find(|key| !allowed.contains(&key.as_str())) {
            let name = echoed(unknown);
            return Err(ApiError::invalid_request(&name, format!("`{name}` is not a field of this request.")));
        }
        Ok(Fields { map })
    }

    /// The field's value; an explicit `null` counts as absent.
    fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|value| !value.is_null())
    }

    pub fn required_str(&mut self, name: &str) -> Result<String, ApiError> {
        self.optional_str(name)?.ok_or_else(|| ApiError::invalid_request(name, format!("`{name}` is required.")))
    }

    pub fn optional_str(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(wrong_type(name, "a string")),
        }
    }

    pub fn optional_bool(&mut self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(flag)),
            Some(_) => Err(wrong_type(name, "true or false")),
        }
    }

    pub fn optional_u64(&mut self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(value) => whole_number(&value).map(Some).ok_or_else(|| wrong_type(name, "a non-negative integer")),
        }
    }

    /// A field that may be set to `null` on purpose: `None` when absent, `Some(None)` for an
    /// explicit `null`, `Some(Some(n))` for a whole number.
    pub fn nullable_u64(&mut self, name: &str) -> Result<Option<Option<u64>>, ApiError> {
        match self.map.remove(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(value) => whole_number(&value).map(|n| Some(Some(n))).ok_or_else(|| wrong_type(name, "a non-negative integer or null")),
        }
    }

    pub fn optional_string_list(&mut self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text),
                    _ => Err(wrong_type(name, "an array of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(wrong_type(name, "an array of strings")),
        }
    }

    pub fn optional_list(&mut self, name: &str) -> Result<Option<Vec<Value>>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(wrong_type(name, "an array")),
        }
    }

    pub fn optional_object(&mut self, name: &str) -> Result<Option<Map<String, Value>>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(wrong_type(name, "a JSON object")),
        }
    }
}

/// Names a nested field by its path, e.g. `rate_limit.limit`.
pub fn nested_field(error: ApiError, parent: &str) -> ApiError {
    match error {
        ApiError::InvalidRequest { field, message } if field == "body" => {
            ApiError::InvalidRequest { field: parent.to_string(), message: message.replace("The request body", &format!("`{parent}`")) }
        }
        ApiError::InvalidRequest { field, message } => {
            let path = format!("{parent}.{field}");
            ApiError::InvalidRequest { message: message.replace(&format!("`{field}`"), &format!("`{path}`")), field: path }
        }
        other => other,
    }
}

/// A JSON number that is a non-negative integer, as JSON Schema's `integer` counts them: `203`,
/// but also `203.0` and `1e2`, up to 2^53 (beyond it a float no longer names one integer).
fn whole_number(value: &Value) -> Option<u64> {
    const MAX_EXACT: f64 = 9_007_199_254_740_992.0;
    value.as_u64().or_else(|| value.as_f64().filter(|f| f.fract() == 0.0 && (0.0..=MAX_EXACT).contains(f)).map(|f| f as u64))
}

fn wrong_type(name: &str, expected: &str) -> ApiError {
    ApiError::invalid_request(name, format!("`{name}` must be {expected}."))
}

/// Turns a domain parser's complaint into the contract's error for that field.
pub fn invalid(field: &str) -> impl Fn(String) -> ApiError + '_ {
    move |reason| ApiError::invalid_request(field, format!("`{field}` {reason}."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(error: ApiError) -> String {
        match error {
            ApiError::InvalidRequest { field, .. } => field,
            other => panic!("expected invalid_request, got {other:?}"),
        }
    }

    #[test]
    fn json_media_types_are_recognised() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/JSON; charset=utf-8"));
        assert!(is_json_media_type("application/merge-patch+json"));
        assert!(!is_json_media_type("text/plain"));
        assert!(!is_json_media_type("application/x-www-form-urlencoded"));
        assert!(!is_json_media_type(""));
    }

    #[test]
    fn malformed_json_is_invalid_json_and_empty_is_an_empty_object() {
        assert_eq!(parse_json(b"{\"name\":"), Err(ApiError::InvalidJson));
        assert_eq!(parse_json(b"\xff"), Err(ApiError::InvalidJson));
        assert_eq!(parse_json(b"  "), Ok(json!({})));
    }

    #[test]
    fn bodies_over_64_kib_are_too_large() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse_json(&big), Err(ApiError::PayloadTooLarge));
    }

    #[test]
    fn a_non_object_body_is_refused() {
        assert_eq!(field_of(Fields::new(json!([1]), &["name"]).err().unwrap()), "body");
    }

    #[test]
    fn unknown_fields_are_named() {
        let error = Fields::new(json!({"name": "x", "colour": "red"}), &["name"]).err().unwrap();
        assert_eq!(field_of(error), "colour");
    }

    #[test]
    fn a_long_unknown_field_is_named_by_its_first_64_characters_only() {
        let name = "x".repeat(20_000);
        let Err(ApiError::InvalidRequest { field, message }) = Fields::new(json!({ name.clone(): 1 }), &["name"]) else {
            panic!("expected invalid_request")
        };
        assert_eq!(field, format!("{}…", "x".repeat(64)));
        assert_eq!(message, format!("`{field}` is not a field of this request."));
    }

    #[test]
    fn missing_and_wrongly_typed_fields_are_named() {
        let mut fields = Fields::new(json!({"read_only": "yes"}), &["name", "read_only"]).ok().unwrap();
        assert_eq!(field_of(fields.required_str("name").unwrap_err()), "name");
        assert_eq!(field_of(fields.optional_bool("read_only").unwrap_err()), "read_only");
    }

    #[test]
    fn null_reads_as_absent() {
        let mut fields = Fields::new(json!({"name": null}), &["name"]).ok().unwrap();
        assert_eq!(fields.optional_str("name"), Ok(None));
    }

    #[test]
    fn string_lists_must_hold_only_strings() {
        let mut fields = Fields::new(json!({"caps": ["a:b", 3]}), &["caps"]).ok().unwrap();
        assert_eq!(field_of(fields.optional_string_list("caps").unwrap_err()), "caps");
        let mut fields = Fields::new(json!({"caps": ["a:b"]}), &["caps"]).ok().unwrap();
        assert_eq!(fields.optional_string_list("caps"), Ok(Some(vec!["a:b".to_string()])));
    }

    #[test]
    fn integers_must_be_non_negative_whole_numbers() {
        for bad in [json!(-1), json!(1.5), json!("10")] {
            let mut fields = Fields::new(json!({ "n": bad }), &["n"]).ok().unwrap();
            assert_eq!(field_of(fields.optional_u64("n").unwrap_err()), "n");
        }
    }
}
