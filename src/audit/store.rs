//! The audit trail's storage port.

use super::AuditEvent;
use crate::storage::StoreError;

#[allow(async_fn_in_trait)]
pub trait AuditStore {
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError>;
    /// Newest first: a workspace's entries, or the operator-level ones for `None`; strictly
    /// older than the entry at position `before` when given. Each comes with its position.
    async fn audit_before(
        &self,
        workspace_id: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, AuditEvent)>, StoreError>;
}
