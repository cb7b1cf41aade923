//! The workspace use cases over SQLite: what the operator routes rely on.

mod support;

use futures_executor::block_on;
use keywarden::keys::{Capabilities, KeyPrefix, PlatformKey};
use keywarden::name::Name;
use keywarden::page::PageRequest;
use keywarden::store::sqlite::SqliteStore;
use keywarden::store::WorkspaceStore;
use keywarden::workspaces::{self, NewWorkspace, WorkspacePatch};
use support::*;

fn new_workspace(name: &str) -> NewWorkspace {
    NewWorkspace {
        name: Name::parse(name).unwrap(),
        default_capabilities: Capabilities::parse(&["desktop:read"]).unwrap(),
        metered_fallback: Default::default(),
    }
}

#[test]
fn creating_a_workspace_issues_an_owner_key_with_every_capability() {
    let store = SqliteStore::default();
    let created = block_on(workspaces::create(&at(&store, 1_000), new_workspace("Acme"))).unwrap();
    assert!(created.owner_key.capabilities.grants("keys:write"));
    assert!(created.owner_key.capabilities.grants("desktop:chat"));
    assert_eq!(created.owner_key.workspace_id, created.workspace.id);
    let keys = store.keys();
    let found = keys.iter().find(|k| k.key_hash == created.plaintext.hash()).expect("key stored by hash");
    assert_eq!(found.id, created.owner_key.id);
    assert_eq!(block_on(store.workspace(&found.workspace_id)).unwrap().as_ref(), Some(&created.workspace));
}

#[test]
fn the_owner_key_parses_back_and_is_stored_only_as_a_hash() {
    let store = SqliteStore::default();
    let created = block_on(workspaces::create(&at(&store, 1_000), new_workspace("Acme"))).unwrap();
    assert!(PlatformKey::parse(&KeyPrefix::default(), created.plaintext.expose()).is_ok());
    let stored = format!("{:?}", store.keys());
    assert!(!stored.contains(created.plaintext.expose()), "plaintext stored");
}

#[test]
fn creation_is_audited_as_key_created_without_the_key() {
    let store = SqliteStore::default();
    let created = block_on(workspaces::create(&at(&store, 1_000), new_workspace("Acme"))).unwrap();
    let audit = store.audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "key.created");
    assert_eq!(audit[0].target.as_deref(), Some(created.owner_key.id.as_str()));
    assert!(!format!("{:?}", audit[0]).contains(created.plaintext.expose()));
}

#[test]
fn listing_pages_newest_first_without_gaps_or_repeats() {
    let store = SqliteStore::default();
    let mut ids = Vec::new();
    for (i, ms) in [1_000, 2_000, 2_000, 3_000, 4_000].into_iter().enumerate() {
        let created = block_on(workspaces::create(&at(&store, ms), new_workspace(&format!("w{i}")))).unwrap();
        ids.push((ms, created.workspace.id));
    }
    ids.sort_by(|a, b| b.cmp(a));
    let expected: Vec<String> = ids.into_iter().map(|(_, id)| id).collect();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = PageRequest::parse(Some("2"), cursor.as_deref()).unwrap();
        let result = block_on(workspaces::list(&at(&store, 0), &page)).unwrap();
        seen.extend(result.items.iter().map(|w| w.id.clone()));
        match result.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, expected);
}

#[test]
fn a_patch_changes_only_what_it_sets() {
    let store = SqliteStore::default();
    let created = block_on(workspaces::create(&at(&store, 1_000), new_workspace("Acme"))).unwrap();
    let patch = WorkspacePatch { read_only: Some(true), ..Default::default() };
    let updated = block_on(workspaces::update(&at(&store, 0), &created.workspace.id, &patch)).unwrap();
    assert!(updated.read_only);
    assert_eq!(updated.name, "Acme");
    assert_eq!(updated.default_capabilities, created.workspace.default_capabilities);
}

#[test]
fn unknown_workspaces_are_not_found() {
    let store = SqliteStore::default();
    let error = block_on(workspaces::get(&at(&store, 0), "ws_missing")).unwrap_err();
    assert_eq!(error.code(), "not_found");
    let error = block_on(workspaces::update(&at(&store, 0), "ws_missing", &WorkspacePatch::default())).unwrap_err();
    assert_eq!(error.status(), 404);
}
