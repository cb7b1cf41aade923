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

    /// Whether a key that expires at `expires_at` is due this notice at `now_ms`.
    pub fn is_due(self, expires_at: i64, now_ms: i64) -> bool {
        match self {
            ExpiryNotice::Expiring => expires_at > now_ms && expires_at <= now_ms + EXPIRING_NOTICE_MS,
            ExpiryNotice::Expired => expires_at <= now_ms && expires_at > now_ms - EXPIRED_NOTICE_WINDOW_MS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3_600_000;

    #[test]
    fn a_key_is_warned_from_seven_days_before_it_expires() {
        assert!(!ExpiryNotice::Expiring.is_due(8 * DAY, 0), "eight days out: not yet");
        assert!(ExpiryNotice::Expiring.is_due(7 * DAY, 0), "exactly seven days out");
        assert!(ExpiryNotice::Expiring.is_due(1, 0), "a key created expiring sooner is warned at once");
        assert!(!ExpiryNotice::Expiring.is_due(0, 0), "an expired key is not warned");
    }

    #[test]
    fn a_key_is_announced_expired_once_its_time_has_passed_and_only_recently() {
        assert!(!ExpiryNotice::Expired.is_due(1, 0));
        assert!(ExpiryNotice::Expired.is_due(0, 0));
        assert!(!ExpiryNotice::Expired.is_due(0, 7 * DAY), "expired a week ago: not announced");
    }
}
