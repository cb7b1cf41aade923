//! Platform API keys: their format, their capabilities and the record stored for each.

pub mod capability;
pub mod record;
pub mod token;

pub use capability::{Capabilities, Capability};
pub use record::{KeyRecord, RateLimit};
pub use token::{KeyFormatError, KeyPrefix, PlatformKey};
