//! In-memory storage for native tests: the same contract as the D1 adapter, over maps.

use std::cell::RefCell;
use std::collections::HashMap;

use super::{is_after, KeyStore, StoreError, WorkspaceStore};
use crate::audit::AuditEvent;
use crate::keys::KeyRecord;
use crate::page::Cursor;
use crate::workspaces::{Workspace, WorkspacePatch};

#[derive(Default)]
pub struct MemoryStore {
    pub workspaces: RefCell<HashMap<String, Workspace>>,
    pub keys: RefCell<HashMap<String, KeyRecord>>,
    pub audit: RefCell<Vec<AuditEvent>>,
}

impl WorkspaceStore for MemoryStore {
    async fn insert_workspace(&self, workspace: &Workspace, owner_key: &KeyRecord, audit: &AuditEvent) -> Result<(), StoreError> {
        let mut keys = self.keys.borrow_mut();
        if keys.values().any(|k| k.key_hash == owner_key.key_hash) {
            return Err(StoreError("UNIQUE constraint failed: api_keys.key_hash".into()));
        }
        self.workspaces.borrow_mut().insert(workspace.id.clone(), workspace.clone());
        keys.insert(owner_key.id.clone(), owner_key.clone());
        self.audit.borrow_mut().push(audit.clone());
        Ok(())
    }

    async fn workspace(&self, id: &str) -> Result<Option<Workspace>, StoreError> {
        Ok(self.workspaces.borrow().get(id).cloned())
    }

    async fn workspaces_after(&self, after: Option<&Cursor>, limit: usize) -> Result<Vec<Workspace>, StoreError> {
        let mut rows: Vec<Workspace> = self
            .workspaces
            .borrow()
            .values()
            .filter(|w| after.is_none_or(|cursor| is_after(w.created_at, &w.id, cursor)))
            .cloned()
            .collect();
        rows.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        rows.truncate(limit);
        Ok(rows)
    }

    async fn update_workspace(&self, id: &str, patch: &WorkspacePatch) -> Result<Option<Workspace>, StoreError> {
        let mut workspaces = self.workspaces.borrow_mut();
        let Some(workspace) = workspaces.get_mut(id) else { return Ok(None) };
        if let Some(name) = &patch.name {
            workspace.name = name.as_str().to_string();
        }
        if let Some(read_only) = patch.read_only {
            workspace.read_only = read_only;
        }
        if let Some(capabilities) = &patch.default_capabilities {
            workspace.default_capabilities = capabilities.clone();
        }
        Ok(Some(workspace.clone()))
    }
}

impl KeyStore for MemoryStore {
    async fn key_by_hash(&self, key_hash: &str) -> Result<Option<(KeyRecord, Workspace)>, StoreError> {
        let keys = self.keys.borrow();
        let Some(key) = keys.values().find(|k| k.key_hash == key_hash) else { return Ok(None) };
        let workspace = self.workspaces.borrow().get(&key.workspace_id).cloned();
        Ok(workspace.map(|w| (key.clone(), w)))
    }
}
