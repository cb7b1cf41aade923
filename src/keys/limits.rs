//! Fixed-window arithmetic for the failed-attempt limit and per-key rate limits.

/// 10 failed key authentications from one IP inside one window blocks that IP until it ends.
pub const FAILED_ATTEMPT_LIMIT: u32 = 10;
pub const FAILED_ATTEMPT_WINDOW_MS: i64 = 60_000;

/// The start of the fixed window of `window_ms` that contains `now_ms`.
pub fn window_start(now_ms: i64, window_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(window_ms)
}

/// Whole seconds from `now_ms` until the window that started at `start_ms` ends, at least 1.
pub fn seconds_until_window_ends(now_ms: i64, start_ms: i64, window_ms: i64) -> u64 {
    let remaining_ms = (start_ms + window_ms - now_ms).max(0);
    ((remaining_ms + 999) / 1000).max(1) as u64
}

/// What a per-key counter says about one request, and the `RateLimit-*` headers it implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub limit: u32,
    pub window_seconds: u32,
    pub remaining: u32,
    pub reset_seconds: u64,
    pub allowed: bool,
}

impl RateDecision {
    /// `hits` counts this request too.
    pub fn new(limit: u32, window_seconds: u32, hits: u32, window_start_ms: i64, now_ms: i64) -> Self {
        RateDecision {
            limit,
            window_seconds,
            remaining: limit.saturating_sub(hits),
            reset_seconds: seconds_until_window_ends(now_ms, window_start_ms, window_seconds as i64 * 1000),
            allowed: hits <= limit,
        }
    }

    /// The three fields clients already read, and the IETF draft's pair
    /// (draft-ietf-httpapi-ratelimit-headers-11): the policy `"key"` with its quota `q` per
    /// window `w`, and what remains of it `r` until it resets in `t` seconds.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ratelimit-limit", self.limit.to_string()),
            ("ratelimit-remaining", self.remaining.to_string()),
            ("ratelimit-reset", self.reset_seconds.to_string()),
            ("ratelimit-policy", format!("\"key\";q={};w={}", self.limit, self.window_seconds)),
            ("ratelimit", format!("\"key\";r={};t={}", self.remaining, self.reset_seconds)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_start_on_multiples_of_their_length() {
        assert_eq!(window_start(125_000, 60_000), 120_000);
        assert_eq!(window_start(120_000, 60_000), 120_000);
        assert_eq!(window_start(119_999, 60_000), 60_000);
    }

    #[test]
    fn seconds_until_the_end_round_up_and_never_reach_zero() {
        assert_eq!(seconds_until_window_ends(125_000, 120_000, 60_000), 55);
        assert_eq!(seconds_until_window_ends(125_001, 120_000, 60_000), 55);
        assert_eq!(seconds_until_window_ends(179_999, 120_000, 60_000), 1);
        assert_eq!(seconds_until_window_ends(200_000, 120_000, 60_000), 1);
    }

    #[test]
    fn the_limit_th_hit_is_allowed_and_the_next_is_not() {
        let at_limit = RateDecision::new(3, 60, 3, 0, 10_000);
        assert!(at_limit.allowed);
        assert_eq!(at_limit.remaining, 0);
        let over = RateDecision::new(3, 60, 4, 0, 10_000);
        assert!(!over.allowed);
        assert_eq!(over.remaining, 0);
        assert_eq!(over.reset_seconds, 50);
    }

    #[test]
    fn headers_name_limit_remaining_and_reset() {
        let decision = RateDecision::new(10, 1, 4, 5_000, 5_200);
        assert_eq!(
            decision.headers(),
            vec![
                ("ratelimit-limit", "10".to_string()),
                ("ratelimit-remaining", "6".to_string()),
                ("ratelimit-reset", "1".to_string()),
                ("ratelimit-policy", "\"key\";q=10;w=1".to_string()),
                ("ratelimit", "\"key\";r=6;t=1".to_string()),
            ]
        );
    }
}
