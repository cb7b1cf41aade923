//! Bring-your-own provider keys: the catalog, host policy, live validation, and the use cases
//! of configure, validate, routing and resolve.

pub mod catalog;
pub mod classify;
pub mod fallback;
pub mod funds;
pub mod host;
pub mod model_list;
pub mod record;
pub mod service;
pub mod store;
pub mod validation;

pub use catalog::ProviderId;
pub use record::{AgentRoute, KeyStatus, ProviderRecord};
