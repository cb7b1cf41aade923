//! Embeds the OpenAPI document minified: the pretty-printed source is for people and diffs,
//! and its whitespace would be about a third of the bytes the wasm carries for it.

use std::{env, fs, path::Path};

fn main() {
    let source = "src/http/openapi.json";
    println!("cargo::rerun-if-changed={source}");
    let text = fs::read_to_string(source).expect("src/http/openapi.json is readable");
    let document: serde_json::Value = serde_json::from_str(&text).expect("src/http/openapi.json is JSON");
    let minified = serde_json::to_string(&document).expect("a JSON value serialises");
    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("openapi.min.json");
    fs::write(out, minified).expect("OUT_DIR is writable");
}
