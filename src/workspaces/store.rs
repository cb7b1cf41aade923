//! The workspaces' storage port.

use super::{Workspace, WorkspacePatch};
use crate::audit::AuditEvent;
use crate::keys::KeyRecord;
use crate::page::Cursor;
use crate::storage::StoreError;

#[allow(async_fn_in_trait)]
pub trait WorkspaceStore {
    /// Stores the workspace, its owner key and the audit entry together, or none of them.
    async fn insert_workspace(&self, workspace: &Workspace, owner_key: &KeyRecord, audit: &AuditEvent) -> Result<(), StoreError>;
    async fn workspace(&self, id: &str) -> Result<Option<Workspace>, StoreError>;
    /// Newest first, strictly after `after` when given, at most `limit`.
    async fn workspaces_after(&self, after: Option<&Cursor>, limit: usize) -> Result<Vec<Workspace>, StoreError>;
    /// Applies the set fields in one statement; `None` when there is no such workspace.
    async fn update_workspace(&self, id: &str, patch: &WorkspacePatch) -> Result<Option<Workspace>, StoreError>;
}
