//! Workspaces in D1.

use worker::wasm_bindgen::JsValue;

use super::{
    capabilities_text, insert_audit_statement, insert_key_statement, int, opt_int, opt_text, store_error, text, D1Store, WorkspaceRow,
    WORKSPACE_COLUMNS,
};
use crate::audit::AuditEvent;
use crate::keys::KeyRecord;
use crate::page::Cursor;
use crate::store::{StoreError, WorkspaceStore};
use crate::workspaces::{Workspace, WorkspacePatch};

impl WorkspaceStore for D1Store {
    async fn insert_workspace(&self, workspace: &Workspace, owner_key: &KeyRecord, audit: &AuditEvent) -> Result<(), StoreError> {
        let insert_workspace = self.statement(
            "INSERT INTO workspaces (id, name, read_only, default_capabilities, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            &[
                text(&workspace.id),
                text(&workspace.name),
                int(workspace.read_only as i64),
                capabilities_text(&workspace.default_capabilities),
                int(workspace.created_at),
            ],
        )?;
        let statements = vec![insert_workspace, insert_key_statement(self, owner_key, None)?, insert_audit_statement(self, audit, None)?];
        self.db.batch(statements).await.map_err(store_error)?;
        Ok(())
    }

    async fn workspace(&self, id: &str) -> Result<Option<Workspace>, StoreError> {
        let sql = format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE id = ?1");
        let row: Option<WorkspaceRow> = self.statement(&sql, &[text(id)])?.first(None).await.map_err(store_error)?;
        row.map(WorkspaceRow::into_workspace).transpose()
    }

    async fn workspaces_after(&self, after: Option<&Cursor>, limit: usize) -> Result<Vec<Workspace>, StoreError> {
        let statement = match after {
            None => self.statement(
                &format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces ORDER BY created_at DESC, id DESC LIMIT ?1"),
                &[int(limit as i64)],
            )?,
            Some(cursor) => self.statement(
                &format!(
                    "SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE (created_at, id) < (?1, ?2) \
                     ORDER BY created_at DESC, id DESC LIMIT ?3"
                ),
                &[int(cursor.created_at), text(&cursor.id), int(limit as i64)],
            )?,
        };
        let result = statement.all().await.map_err(store_error)?;
        let rows: Vec<WorkspaceRow> = result.results().map_err(store_error)?;
        rows.into_iter().map(WorkspaceRow::into_workspace).collect()
    }

    async fn update_workspace(&self, id: &str, patch: &WorkspacePatch) -> Result<Option<Workspace>, StoreError> {
        // COALESCE keeps a column whose field the patch did not set, all in one statement.
        let sql = format!(
            "UPDATE workspaces SET name = COALESCE(?2, name), read_only = COALESCE(?3, read_only), \
             default_capabilities = COALESCE(?4, default_capabilities) WHERE id = ?1 RETURNING {WORKSPACE_COLUMNS}"
        );
        let args = [
            text(id),
            opt_text(patch.name.as_ref().map(|n| n.as_str())),
            opt_int(patch.read_only.map(i64::from)),
            patch.default_capabilities.as_ref().map_or(JsValue::NULL, capabilities_text),
        ];
        let row: Option<WorkspaceRow> = self.statement(&sql, &args)?.first(None).await.map_err(store_error)?;
        row.map(WorkspaceRow::into_workspace).transpose()
    }
}
