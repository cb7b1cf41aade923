//! The vocabulary every storage port shares: why a write did not happen, and what must still
//! hold when it commits.

use crate::error::ApiError;

/// Why storage did not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A storage failure. Its text goes to the log under the request id, never to the client.
    #[error("storage: {0}")]
    Failed(String),
    /// A key authority object is overloaded: the request may be retried after a moment.
    #[error("a key authority object is overloaded")]
    Unavailable,
    /// The write's precondition no longer held when it would have committed; nothing was written.
    #[error("precondition: {0:?}")]
    Refused(Refusal),
}

/// Which part of a [`Precondition`] failed at commit time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The calling key was revoked or expired while its request was in flight.
    CallerNotLive,
    /// The workspace became read-only while the request was in flight.
    WorkspaceReadOnly,
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Failed(_) => ApiError::internal(error),
            StoreError::Unavailable => ApiError::Unavailable,
            StoreError::Refused(Refusal::CallerNotLive) => ApiError::Unauthorized,
            StoreError::Refused(Refusal::WorkspaceReadOnly) => ApiError::WorkspaceReadOnly,
        }
    }
}

/// What must still hold when a write commits, checked in the same batch as the write: the
/// key it is made for (if a key makes it) is still live, and the workspace is still writable
/// (for the writes a read-only workspace refuses). Authentication happens when a request
/// arrives; this is what keeps "revoked takes effect on the next request" true for a request
/// whose body arrives after the revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precondition {
    pub workspace_id: String,
    pub key_id: Option<String>,
    pub writable: bool,
}

impl Precondition {
    /// A write made by a signed webhook or the operator: only the workspace's state counts.
    pub fn workspace_writable(workspace_id: &str) -> Self {
        Precondition { workspace_id: workspace_id.to_string(), key_id: None, writable: true }
    }

    /// No condition at all: the scheduled handler's own writes.
    pub fn unconditional(workspace_id: &str) -> Self {
        Precondition { workspace_id: workspace_id.to_string(), key_id: None, writable: false }
    }

    /// The same precondition without the read-only check (re-validation, resolve).
    pub fn even_read_only(&self) -> Self {
        Precondition { writable: false, ..self.clone() }
    }

    pub fn is_unconditional(&self) -> bool {
        self.key_id.is_none() && !self.writable
    }
}
