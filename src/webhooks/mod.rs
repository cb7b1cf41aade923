//! Webhooks both ways: inbound rotation and revocation events signed with Standard Webhooks,
//! GitHub's signed secret scanning reports, and outbound notifications delivered from an outbox.

pub mod delivery;
pub mod inbound;
pub mod scanning;
pub mod secrets;
pub mod signature;
pub mod store;
