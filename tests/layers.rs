//! The layering rule, checked: only the entry point, the HTTP shell and the storage adapters
//! may use the `worker` crate; everything else is plain Rust that runs natively.

use std::fs;
use std::path::{Path, PathBuf};

const MAY_USE_WORKER: &[&str] = &[
    "src/lib.rs",
    "src/http/",
    "src/store/d1.rs",
    "src/store/kv.rs",
    // The key authority: the Worker's side (stubs, KV) and the Durable Object itself.
    "src/store/authority.rs",
    "src/store/authority_object.rs",
];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

fn uses_worker(source: &str) -> bool {
    source
        .lines()
        .map(str::trim_start)
        .filter(|line| !line.starts_with("//"))
        .any(|line| line.starts_with("use worker") || line.contains("worker::") || line.contains("extern crate worker"))
}

/// The files under `src/` outside the `allowed` prefixes whose text `breaks` the rule.
fn offenders(allowed: &[&str], breaks: fn(&str) -> bool) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files
        .iter()
        .map(|path| path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"))
        .filter(|relative| !allowed.iter().any(|prefix| relative.starts_with(prefix)))
        .filter(|relative| breaks(&fs::read_to_string(root.join(relative)).unwrap()))
        .collect()
}

#[test]
fn only_the_entry_point_the_http_shell_and_the_adapters_use_worker() {
    let offenders = offenders(MAY_USE_WORKER, uses_worker);
    assert!(offenders.is_empty(), "these files use the worker crate outside the shell and adapters: {offenders:?}");
}

#[test]
fn the_check_recognises_a_use_of_worker() {
    assert!(uses_worker("use worker::Env;"));
    assert!(uses_worker("    let now = worker::Date::now();"));
    assert!(!uses_worker("// worker::Date is only for the shell"));
    assert!(!uses_worker("let workers = 3;"));
}

/// Only the entry point, the shell and the adapters may import the storage module: the ports sit
/// beside their domain, and `store` imports the domain, so a domain module importing `store`
/// would close a cycle. A module's own tests (after `#[cfg(test)]`) may use the SQLite store.
const MAY_IMPORT_STORE: &[&str] = &["src/lib.rs", "src/http/", "src/store/"];

fn imports_store(source: &str) -> bool {
    source
        .lines()
        .take_while(|line| !line.trim_start().starts_with("#[cfg(test)]"))
        .map(str::trim_start)
        .filter(|line| !line.starts_with("//"))
        .any(|line| line.contains("crate::store::") || line.contains("crate::store;") || line.contains("crate::store::{"))
}

#[test]
fn no_domain_module_imports_the_storage_adapters() {
    let offenders = offenders(MAY_IMPORT_STORE, imports_store);
    assert!(offenders.is_empty(), "these domain files import crate::store (use the port beside the domain): {offenders:?}");
}

#[test]
fn the_check_recognises_an_import_of_the_store() {
    assert!(imports_store("use crate::store::{KeyStore, Precondition};"));
    assert!(imports_store("    if crate::store::is_live(&key, now) {}"));
    assert!(!imports_store("use crate::storage::StoreError;"));
    assert!(!imports_store("#[cfg(test)]\nmod tests {\n    use crate::store::sqlite::SqliteStore;\n}"));
}

/// The top-level modules a file of `src/<module>` imports through `crate::`, outside its tests.
fn imported_modules(source: &str) -> Vec<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found: Vec<String> = code
        .lines()
        .map(str::trim_start)
        .filter(|line| !line.starts_with("//"))
        .flat_map(|line| line.match_indices("crate::").map(move |(at, _)| &line[at + "crate::".len()..]))
        .map(|rest| rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>())
        .filter(|name| !name.is_empty())
        .collect();
    found.sort();
    found.dedup();
    found
}

#[test]
fn no_top_level_module_imports_a_module_that_imports_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut edges = std::collections::BTreeSet::new();
    for path in &files {
        let relative = path.strip_prefix(root.join("src")).unwrap();
        let module = relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        for imported in imported_modules(&fs::read_to_string(path).unwrap()) {
            if imported != module {
                edges.insert((module.clone(), imported));
            }
        }
    }
    let cycles: Vec<_> = edges.iter().filter(|(a, b)| a < b && edges.contains(&(b.clone(), a.clone()))).collect();
    assert!(cycles.is_empty(), "these modules import each other: {cycles:?}");
}

#[test]
fn the_cycle_check_reads_imports_outside_tests_only() {
    let source = "use crate::keys::KeyRecord;\nuse crate::outbox::{self, OutboxEvent};\n// crate::store is only named here\n#[cfg(test)]\nmod tests { use crate::store::sqlite; }";
    assert_eq!(imported_modules(source), ["keys", "outbox"]);
}
