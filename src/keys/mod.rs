//! Platform API keys: their format, capabilities and stored record, and the use cases of the
//! key routes (authenticate, create, list, revoke, reroll, verify, leak reports).

pub mod allowlist;
pub mod auth;
pub mod authority;
pub mod bounds;
pub mod capability;
pub mod credits;
pub mod expiry;
pub mod leaks;
pub mod limits;
pub mod record;
pub mod service;
pub mod store;
pub mod token;
pub mod usage;
pub mod verify;
pub mod workspace;

pub use capability::{Capabilities, Capability};
pub use record::{KeyRecord, RateLimit};
pub use token::{KeyFormatError, KeyPrefix, PlatformKey};
pub use workspace::{LeakAction, LeakPolicy, MeteredFallback, Workspace};
