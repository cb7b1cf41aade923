//! Storage adapters. The ports sit beside the domain that uses them (`keys::store`,
//! `providers::store`, ...); `sql` implements them once in SQL, which `d1` runs over the
//! Worker's binding and `sqlite` over real SQLite in native tests. The ports are re-exported
//! here for the shell and the adapters; the domain never imports this module.

pub mod authority;
pub mod authority_ledger;
pub mod authority_object;
pub mod d1;
pub mod kv;
pub mod sql;
#[cfg(not(target_arch = "wasm32"))]
pub mod sqlite;

pub use crate::audit::store::AuditStore;
pub use crate::housekeeping::HousekeepingStore;
pub use crate::keys::store::*;
pub use crate::providers::store::*;
pub use crate::storage::{Precondition, Refusal, StoreError};
pub use crate::webhooks::store::*;
pub use crate::workspaces::store::WorkspaceStore;
