//! Storage ports. The domain speaks to these traits; `d1` implements them over the Worker's
//! bindings and `memory` over plain maps for native tests.

use crate::audit::AuditEvent;
use crate::error::ApiError;
use crate::keys::KeyRecord;
use crate::page::Cursor;
use crate::workspaces::{Workspace, WorkspacePatch};

pub mod d1;
pub mod memory;

/// A storage failure. Its text goes to the log under the request id, never to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage: {0}")]
pub struct StoreError(pub String);

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::internal(error)
    }
}

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

#[allow(async_fn_in_trait)]
pub trait KeyStore {
    /// The key with this hash and its workspace, in one read.
    async fn key_by_hash(&self, key_hash: &str) -> Result<Option<(KeyRecord, Workspace)>, StoreError>;
}

/// Newest-first order shared by every list: (created_at, id) descending.
pub fn is_after(created_at: i64, id: &str, cursor: &Cursor) -> bool {
    (created_at, id) < (cursor.created_at, cursor.id.as_str())
}
