//! Warnings before a key expires, and word when it has: what the scheduled handler (and key
//! creation, for a key that expires sooner than the warning period) queues.

/// `api_key.expiring` is queued this long before `expires_at`, or at creation when sooner.
pub const EXPIRING_NOTICE_MS: i64 = 7 * 24 * 3_600_000;

/// `api_key.expired` is queued for keys that expired within this long: a database from before
/// the notices does not announce every key that ever expired.
pub const EXPIRED_NOTICE_WINDOW_MS: i64 = 7 * 24 * 3_600_000;

/// The two notices, each queued once per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryNotice {
    Expiring,
    Expired,
}

impl ExpiryNotice {
    pub fn event_type(self) -> &'static str {
        match self {
            ExpiryNotice::Expiring => "api_key.expiring",
            ExpiryNotice::Expired => "api_key.expired",
        }
    }

    /// The `api_keys` column that records the notice was queued.
    pub fn marked_column(self) -> &'static str {
        match self {
            ExpiryNotice::Expiring => "expiring_noticed_at",
            ExpiryNotice::Expired => "expired_noticed_at",
        }
    }
}
