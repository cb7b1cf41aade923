//! What one use of a key comes to, and how uses are counted: per key, per UTC hour, by outcome.
//!
//! `judge` is the one decision both stores apply (the key authority in its object, D1 without
//! it): where the request came from, the rate limit, the capabilities asked for, then the
//! credits. Only a use that passes everything else spends credits.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::allowlist::Allowlist;
use super::credits::{Calendar, Credits};
use super::store::RateHits;
use super::{Capabilities, RateLimit};
use crate::time::rfc3339;

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;
/// Usage is kept at least this long (the cron prunes older hours).
pub const KEPT_DAYS: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Valid,
    RateLimited,
    CreditsExhausted,
    InsufficientCapabilities,
    IpNotAllowed,
}

impl Outcome {
    pub const ALL: [Outcome; 5] =
        [Outcome::Valid, Outcome::RateLimited, Outcome::CreditsExhausted, Outcome::InsufficientCapabilities, Outcome::IpNotAllowed];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::RateLimited => "rate_limited",
            Outcome::CreditsExhausted => "credits_exhausted",
            Outcome::InsufficientCapabilities => "insufficient_capabilities",
            Outcome::IpNotAllowed => "ip_not_allowed",
        }
    }

    fn index(self) -> usize {
        Outcome::ALL.iter().position(|o| *o == self).expect("every outcome is listed")
    }
}

/// What a use asks of a key, besides being live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ask {
    /// The address to check against the key's allowlist; `None` with `check_ip` is a request
    /// without a client address.
    pub ip: Option<String>,
    /// A request is always checked; a verify only when it names an `ip`.
    pub check_ip: bool,
    /// The capabilities the use needs (a route's one, or what a verify asks for).
    pub capabilities: Vec<String>,
    /// The credits it spends.
    pub cost: u64,
}

/// Whether a counted use is within the key's rate limit: its counter after this use (`hits`,
/// present for a key with a limit) at most the limit.
pub fn rate_allowed(limit: Option<RateLimit>, hits: Option<RateHits>) -> bool {
    match (limit, hits) {
        (Some(limit), Some(hits)) => hits.hits <= limit.limit,
        _ => true,
    }
}

/// What is judged before credits: `None` when the use may spend them.
pub fn judge(key_allowlist: Option<&Allowlist>, key_capabilities: &Capabilities, ask: &Ask, rate_allowed: bool) -> Option<Outcome> {
    if ask.check_ip && key_allowlist.is_some_and(|list| !list.admits(ask.ip.as_deref())) {
        return Some(Outcome::IpNotAllowed);
    }
    if !rate_allowed {
        return Some(Outcome::RateLimited);
    }
    if !ask.capabilities.iter().all(|needed| key_capabilities.grants(needed)) {
        return Some(Outcome::InsufficientCapabilities);
    }
    None
}

/// The whole decision: [`judge`], then the spend; `credits` is the key's balance, changed only
/// by a use that spends.
pub fn settle(
    key_allowlist: Option<&Allowlist>,
    key_capabilities: &Capabilities,
    credits: &mut Option<Credits>,
    ask: &Ask,
    rate_allowed: bool,
    calendar: Calendar,
    now_ms: i64,
) -> Outcome {
    if let Some(refused) = judge(key_allowlist, key_capabilities, ask, rate_allowed) {
        return refused;
    }
    match credits {
        Some(balance) => match balance.spend(ask.cost, calendar, now_ms) {
            Ok(_) => Outcome::Valid,
            Err(_) => Outcome::CreditsExhausted,
        },
        None => Outcome::Valid,
    }
}

/// The start of the UTC hour that holds `now_ms`.
pub fn hour_start(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(HOUR_MS)
}

/// The start of the UTC day that holds `now_ms`.
pub fn day_start(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(DAY_MS)
}

/// One bucket's counts, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts(pub [u64; 5]);

impl Counts {
    pub fn one(outcome: Outcome) -> Counts {
        let mut counts = Counts::default();
        counts.add(outcome);
        counts
    }

    pub fn add(&mut self, outcome: Outcome) {
        self.0[outcome.index()] += 1;
    }

    pub fn get(&self, outcome: Outcome) -> u64 {
        self.0[outcome.index()]
    }

    pub fn merge(&mut self, other: &Counts) {
        self.0.iter_mut().zip(other.0).for_each(|(mine, theirs)| *mine += theirs);
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|n| *n == 0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "hour" => Some(Granularity::Hour),
            "day" => Some(Granularity::Day),
            _ => None,
        }
    }

    pub fn start(self, at_ms: i64) -> i64 {
        match self {
            Granularity::Hour => hour_start(at_ms),
            Granularity::Day => day_start(at_ms),
        }
    }

    pub fn bucket_ms(self) -> i64 {
        match self {
            Granularity::Hour => HOUR_MS,
            Granularity::Day => DAY_MS,
        }
    }

    /// The longest range one query may span: a week of hours, or the kept days.
    pub fn max_span_ms(self) -> i64 {
        match self {
            Granularity::Hour => 7 * DAY_MS,
            Granularity::Day => KEPT_DAYS * DAY_MS,
        }
    }
}

/// A bucket of one key's usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub start: i64,
    pub counts: Counts,
}

impl Bucket {
    pub fn to_json(&self) -> Value {
        let mut body = json!({"start": rfc3339(self.start)});
        for outcome in Outcome::ALL {
            body[outcome.as_str()] = json!(self.counts.get(outcome));
        }
        body
    }
}

/// Hourly rows (`(hour_start, counts)`, any order) as buckets of `granularity`, oldest first,
/// only the buckets with a use.
pub fn buckets(hours: &[(i64, Counts)], granularity: Granularity) -> Vec<Bucket> {
    let mut buckets: Vec<Bucket> = Vec::new();
    let mut sorted: Vec<&(i64, Counts)> = hours.iter().collect();
    sorted.sort_by_key(|(start, _)| *start);
    for (hour, counts) in sorted {
        let start = granularity.start(*hour);
        match buckets.last_mut() {
            Some(bucket) if bucket.start == start => bucket.counts.merge(counts),
            _ => buckets.push(Bucket { start, counts: *counts }),
        }
    }
    buckets.retain(|bucket| !bucket.counts.is_empty());
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::credits::{Interval, Refill};

    fn at(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
    }

    fn caps(items: &[&str]) -> Capabilities {
        Capabilities::parse(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn ask(ip: Option<&str>, capabilities: &[&str], cost: u64) -> Ask {
        Ask { ip: ip.map(str::to_string), check_ip: true, capabilities: capabilities.iter().map(|s| s.to_string()).collect(), cost }
    }

    #[test]
    fn hours_and_days_start_on_their_utc_boundaries() {
        assert_eq!(hour_start(at("2026-12-03T15:59:59.999Z")), at("2026-12-03T15:00:00Z"));
        assert_eq!(hour_start(at("2026-12-03T16:00:00Z")), at("2026-12-03T16:00:00Z"));
        assert_eq!(day_start(at("2026-12-03T23:59:59Z")), at("2026-12-03T00:00:00Z"));
        assert_eq!(day_start(at("2026-12-04T00:00:00Z")), at("2026-12-04T00:00:00Z"));
    }

    #[test]
    fn hourly_rows_roll_up_into_days_oldest_first_skipping_empty_ones() {
        let rows = vec![
            (at("2026-12-04T00:00:00Z"), Counts([1, 0, 0, 0, 0])),
            (at("2026-12-03T23:00:00Z"), Counts([2, 1, 0, 0, 0])),
            (at("2026-12-03T00:00:00Z"), Counts([3, 0, 0, 1, 0])),
            (at("2026-12-02T05:00:00Z"), Counts::default()),
        ];
        let days = buckets(&rows, Granularity::Day);
        assert_eq!(
            days,
            vec![
                Bucket { start: at("2026-12-03T00:00:00Z"), counts: Counts([5, 1, 0, 1, 0]) },
                Bucket { start: at("2026-12-04T00:00:00Z"), counts: Counts([1, 0, 0, 0, 0]) },
            ]
        );
        let hours = buckets(&rows, Granularity::Hour);
        assert_eq!(hours.len(), 3, "the empty hour is left out");
        assert_eq!(
            hours[0].to_json(),
            json!({"start": "2026-12-03T00:00:00Z", "valid": 3, "rate_limited": 0, "credits_exhausted": 0, "insufficient_capabilities": 1, "ip_not_allowed": 0})
        );
    }

    #[test]
    fn an_address_outside_the_allowlist_is_refused_before_anything_else() {
        let list = Allowlist::parse(&["192.0.2.0/24".to_string()]).unwrap();
        let mut credits = Some(Credits::new(5, None, Calendar::default(), 0));
        let outcome = settle(Some(&list), &caps(&["*"]), &mut credits, &ask(Some("198.51.100.1"), &[], 1), false, Calendar::default(), 1);
        assert_eq!(outcome, Outcome::IpNotAllowed);
        assert_eq!(credits.unwrap().remaining, 5, "nothing spent");
        let unchecked = Ask { check_ip: false, ..ask(None, &[], 1) };
        assert_eq!(judge(Some(&list), &caps(&["*"]), &unchecked, true), None, "a verify without an ip does not check it");
    }

    #[test]
    fn rate_then_capabilities_then_credits_decide_and_only_a_valid_use_spends() {
        let calendar = Calendar::default();
        let mut credits = Some(Credits::new(3, None, calendar, 0));
        let key_caps = caps(&["desktop:read"]);
        assert_eq!(settle(None, &key_caps, &mut credits, &ask(None, &["desktop:read"], 1), false, calendar, 1), Outcome::RateLimited);
        assert_eq!(
            settle(None, &key_caps, &mut credits, &ask(None, &["desktop:chat"], 1), true, calendar, 1),
            Outcome::InsufficientCapabilities
        );
        assert_eq!(credits.unwrap().remaining, 3);
        assert_eq!(settle(None, &key_caps, &mut credits, &ask(None, &["desktop:read"], 3), true, calendar, 1), Outcome::Valid);
        assert_eq!(settle(None, &key_caps, &mut credits, &ask(None, &[], 1), true, calendar, 1), Outcome::CreditsExhausted);
        assert_eq!(settle(None, &key_caps, &mut credits, &ask(None, &[], 0), true, calendar, 1), Outcome::Valid, "a zero cost fits");
    }

    #[test]
    fn three_hundred_credits_cover_exactly_a_hundred_uses_of_three() {
        let calendar = Calendar::default();
        let mut credits = Some(Credits::new(300, Some(Refill { amount: 300, interval: Interval::Month }), calendar, 0));
        let outcomes: Vec<Outcome> =
            (0..200).map(|_| settle(None, &caps(&["*"]), &mut credits, &ask(None, &[], 3), true, calendar, 1)).collect();
        assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Valid).count(), 100);
        assert_eq!(outcomes.iter().filter(|o| **o == Outcome::CreditsExhausted).count(), 100);
        assert_eq!(credits.unwrap().remaining, 0);
    }

    #[test]
    fn a_key_without_credits_or_allowlist_is_valid_when_it_holds_the_capability() {
        let mut none = None;
        assert_eq!(
            settle(None, &caps(&["keys:*"]), &mut none, &ask(None, &["keys:read"], 1), true, Calendar::default(), 0),
            Outcome::Valid
        );
    }
}
