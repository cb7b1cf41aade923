//! Workspaces.

use super::exec::{int, opt_int, opt_text, text, Executor, Statement, Value};
use super::{capabilities_text, insert_audit_statement, insert_key_statement, SqlStore, WorkspaceRow, WORKSPACE_COLUMNS};
use crate::audit::AuditEvent;
use crate::keys::authority::{changing, Change};
use crate::keys::KeyRecord;
use crate::page::Cursor;
use crate::store::{StoreError, WorkspaceStore};
use crate::workspaces::{Workspace, WorkspacePatch};

fn workspaces(outcome: &super::Outcome) -> Result<Vec<Workspace>, StoreError> {
    outcome.rows::<WorkspaceRow>()?.into_iter().map(WorkspaceRow::into_workspace).collect()
}

impl<E: Executor> WorkspaceStore for SqlStore<E> {
    async fn insert_workspace(&self, workspace: &Workspace, owner_key: &KeyRecord, audit: &AuditEvent) -> Result<(), StoreError> {
        let insert_workspace = Statement::new(
            "INSERT INTO workspaces (id, name, read_only, default_capabilities, created_at, max_key_lifetime_seconds, metered_fallback) \
             VALUES (:id, :name, :read_only, :default_capabilities, :created_at, :max_key_lifetime_seconds, :metered_fallback)",
            &[
                ("id", text(&workspace.id)),
                ("name", text(&workspace.name)),
                ("read_only", int(workspace.read_only as i64)),
                ("default_capabilities", capabilities_text(&workspace.default_capabilities)),
                ("created_at", int(workspace.created_at)),
                ("max_key_lifetime_seconds", opt_int(workspace.max_key_lifetime_seconds.map(|s| s as i64))),
                ("metered_fallback", text(workspace.metered_fallback.as_str())),
            ],
        )?;
        let statements = vec![insert_workspace, insert_key_statement(owner_key, None)?, insert_audit_statement(audit, None)?];
        self.batch(statements).await?;
        Ok(())
    }

    async fn workspace(&self, id: &str) -> Result<Option<Workspace>, StoreError> {
        let sql = format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE id = :id");
        Ok(workspaces(&self.query(Statement::new(&sql, &[("id", text(id))])?).await?)?.into_iter().next())
    }

    async fn workspaces_after(&self, after: Option<&Cursor>, limit: usize) -> Result<Vec<Workspace>, StoreError> {
        // One statement for every page: the first page binds no cursor.
        let statement = Statement::new(
            &format!(
                "SELECT {WORKSPACE_COLUMNS} FROM workspaces \
                 WHERE (:after_created_at IS NULL OR (created_at, id) < (:after_created_at, :after_id)) \
                 ORDER BY created_at DESC, id DESC LIMIT :limit"
            ),
            &[
                ("after_created_at", after.map_or(Value::Null, |c| int(c.position))),
                ("after_id", after.map_or(Value::Null, |c| text(&c.id))),
                ("limit", int(limit as i64)),
            ],
        )?;
        workspaces(&self.query(statement).await?)
    }

    async fn update_workspace(&self, id: &str, patch: &WorkspacePatch) -> Result<Option<Workspace>, StoreError> {
        // COALESCE keeps a column whose field the patch did not set, all in one statement.
        let sql = format!(
            "UPDATE workspaces SET name = COALESCE(:name, name), read_only = COALESCE(:read_only, read_only), \
             default_capabilities = COALESCE(:default_capabilities, default_capabilities), \
             max_key_lifetime_seconds = CASE WHEN :set_lifetime = 1 THEN :max_key_lifetime_seconds ELSE max_key_lifetime_seconds END, \
             leak_action = COALESCE(:leak_action, leak_action), leak_grace_seconds = COALESCE(:leak_grace_seconds, leak_grace_seconds), \
             metered_fallback = COALESCE(:metered_fallback, metered_fallback) \
             WHERE id = :id RETURNING {WORKSPACE_COLUMNS}"
        );
        let binds = [
            ("id", text(id)),
            ("name", opt_text(patch.name.as_ref().map(|n| n.as_str()))),
            ("read_only", opt_int(patch.read_only.map(i64::from))),
            ("default_capabilities", patch.default_capabilities.as_ref().map_or(Value::Null, capabilities_text)),
            ("set_lifetime", int(patch.max_key_lifetime_seconds.is_some() as i64)),
            ("max_key_lifetime_seconds", opt_int(patch.max_key_lifetime_seconds.flatten().map(|s| s as i64))),
            ("leak_action", opt_text(patch.leak_policy.map(|p| p.action.as_str()))),
            ("leak_grace_seconds", opt_int(patch.leak_policy.map(|p| p.grace_seconds as i64))),
            ("metered_fallback", opt_text(patch.metered_fallback.map(|m| m.as_str()))),
        ];
        let statement = Statement::new(&sql, &binds)?;
        // The workspace's objects mirror it (read-only, name): held while it changes.
        let outcome = changing::<_, StoreError>(self.authority(), &Change::workspace(id), self.query(statement)).await?;
        Ok(workspaces(&outcome)?.into_iter().next())
    }
}
