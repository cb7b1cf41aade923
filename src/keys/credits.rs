//! A key's credits: a balance each use spends from, refilled to a fixed amount at the start of
//! every UTC day or month. Pure arithmetic; the key authority applies it to one key at a time,
//! which is what makes it exact under concurrency.
//!
//! Refills are applied when the balance is next read or spent: a balance read in a later
//! interval than the one it was last refilled for is the refill amount, whatever it was before.

use chrono::{Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The most credits a key may hold, add or be refilled with: well inside what a JSON number
/// carries exactly.
pub const MAX_CREDITS: u64 = 1_000_000_000_000;
/// The most one verify may spend.
pub const MAX_COST: u64 = 1_000;
pub const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Day,
    Month,
}

impl Interval {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "day" => Some(Interval::Day),
            "month" => Some(Interval::Month),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Month => "month",
        }
    }
}

/// How long a day is: a real day, or a shorter one in tests (`CREDIT_DAY_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calendar {
    pub day_ms: i64,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar { day_ms: DAY_MS }
    }
}

impl Calendar {
    /// The deployment's calendar (`CREDIT_DAY_MS` shortens its day in tests).
    pub fn of<S, B, C>(deps: &crate::deps::Deps<'_, S, B, C>) -> Calendar {
        Calendar { day_ms: deps.credit_day_ms() }
    }

    /// The start (Unix ms, UTC) of the interval that holds `now_ms`.
    pub fn interval_start(self, interval: Interval, now_ms: i64) -> i64 {
        match interval {
            Interval::Day => now_ms - now_ms.rem_euclid(self.day_ms),
            Interval::Month => {
                let Some(now) = Utc.timestamp_millis_opt(now_ms).single() else { return now_ms };
                Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0).single().map_or(now_ms, |start| start.timestamp_millis())
            }
        }
    }

    /// The start of the interval after the one that holds `now_ms`.
    pub fn next_start(self, interval: Interval, now_ms: i64) -> i64 {
        match interval {
            Interval::Day => self.interval_start(interval, now_ms) + self.day_ms,
            Interval::Month => {
                let Some(now) = Utc.timestamp_millis_opt(now_ms).single() else { return now_ms };
                let (year, month) = if now.month() == 12 { (now.year() + 1, 1) } else { (now.year(), now.month() + 1) };
                Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0).single().map_or(now_ms, |start| start.timestamp_millis())
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refill {
    pub amount: u64,
    pub interval: Interval,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credits {
    pub remaining: u64,
    pub refill: Option<Refill>,
    /// The start of the interval the balance was last refilled for (or set up in).
    pub refilled_at: i64,
}

/// A spend the balance could not cover; it is left as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted {
    pub remaining: u64,
}

impl Credits {
    /// A balance set up at `now_ms`: its first refill is at the start of the next interval.
    pub fn new(remaining: u64, refill: Option<Refill>, calendar: Calendar, now_ms: i64) -> Self {
        let refilled_at = refill.map_or(now_ms, |r| calendar.interval_start(r.interval, now_ms));
        Credits { remaining, refill, refilled_at }
    }

    /// The balance as of `now_ms`, refilled if an interval started since the last refill.
    pub fn current(self, calendar: Calendar, now_ms: i64) -> Credits {
        match self.refill {
            Some(refill) => {
                let start = calendar.interval_start(refill.interval, now_ms);
                if start > self.refilled_at {
                    Credits { remaining: refill.amount, refilled_at: start, ..self }
                } else {
                    self
                }
            }
            None => self,
        }
    }

    /// Spends `cost` as of `now_ms`: the balance after, or `Exhausted` with the balance left
    /// untouched when it holds less than `cost`. A cost of 0 always succeeds.
    pub fn spend(&mut self, cost: u64, calendar: Calendar, now_ms: i64) -> Result<u64, Exhausted> {
        let current = self.current(calendar, now_ms);
        if current.remaining < cost {
            *self = current;
            return Err(Exhausted { remaining: current.remaining });
        }
        *self = Credits { remaining: current.remaining - cost, ..current };
        Ok(self.remaining)
    }

    /// Adds `amount` (at most up to [`MAX_CREDITS`]) as of `now_ms`.
    pub fn add(&mut self, amount: u64, calendar: Calendar, now_ms: i64) {
        let current = self.current(calendar, now_ms);
        *self = Credits { remaining: current.remaining.saturating_add(amount).min(MAX_CREDITS), ..current };
    }

    /// Takes back a balance moved out of this key: its credits are added, and its refill comes
    /// back unless this key has one of its own.
    pub fn take_back(&mut self, returned: Credits, calendar: Calendar, now_ms: i64) {
        let (current, returned) = (self.current(calendar, now_ms), returned.current(calendar, now_ms));
        let remaining = current.remaining.saturating_add(returned.remaining).min(MAX_CREDITS);
        *self = match current.refill {
            Some(_) => Credits { remaining, ..current },
            None => Credits { remaining, ..returned },
        };
    }

    /// Sets the balance to `remaining` as of `now_ms` (a refill still comes at the next interval).
    pub fn set(&mut self, remaining: u64, calendar: Calendar, now_ms: i64) {
        *self = Credits { remaining, ..self.current(calendar, now_ms) };
    }

    /// The contract's `credits` object (read the balance with [`Credits::current`] first).
    pub fn to_json(self) -> Value {
        json!({
            "remaining": self.remaining,
            "refill": self.refill.map(|r| json!({"amount": r.amount, "interval": r.interval.as_str()})),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALENDAR: Calendar = Calendar { day_ms: DAY_MS };

    fn at(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
    }

    fn daily(amount: u64) -> Option<Refill> {
        Some(Refill { amount, interval: Interval::Day })
    }

    #[test]
    fn a_balance_taken_back_adds_up_and_brings_its_refill_to_a_key_without_one() {
        let now = at("2026-12-03T15:00:00Z");
        let taken = Credits::new(7, daily(10), CALENDAR, now);
        let mut emptied = Credits { remaining: 0, refill: None, refilled_at: now };
        emptied.take_back(taken, CALENDAR, now + 1);
        assert_eq!(emptied, taken, "the key is as it was before the take");
        let mut own = Credits::new(2, daily(50), CALENDAR, now);
        own.take_back(taken, CALENDAR, now);
        assert_eq!((own.remaining, own.refill), (9, daily(50)), "a key's own refill stays");
        let mut full = Credits::new(MAX_CREDITS, None, CALENDAR, now);
        full.take_back(taken, CALENDAR, now);
        assert_eq!(full.remaining, MAX_CREDITS, "never past the most a key may hold");
    }

    #[test]
    fn days_start_at_utc_midnight() {
        assert_eq!(CALENDAR.interval_start(Interval::Day, at("2026-12-03T15:41:17Z")), at("2026-12-03T00:00:00Z"));
        assert_eq!(CALENDAR.interval_start(Interval::Day, at("2026-12-03T00:00:00Z")), at("2026-12-03T00:00:00Z"));
        assert_eq!(CALENDAR.next_start(Interval::Day, at("2026-12-31T23:59:59Z")), at("2027-01-01T00:00:00Z"));
    }

    #[test]
    fn months_start_on_the_first_whatever_their_length() {
        assert_eq!(CALENDAR.interval_start(Interval::Month, at("2028-02-29T12:00:00Z")), at("2028-02-01T00:00:00Z"));
        assert_eq!(CALENDAR.next_start(Interval::Month, at("2028-02-29T12:00:00Z")), at("2028-03-01T00:00:00Z"));
        assert_eq!(CALENDAR.next_start(Interval::Month, at("2026-12-15T00:00:00Z")), at("2027-01-01T00:00:00Z"));
        assert_eq!(CALENDAR.interval_start(Interval::Month, at("2026-01-31T23:59:59Z")), at("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn a_balance_refills_to_the_amount_once_the_interval_turns() {
        let mut credits = Credits::new(10, daily(100), CALENDAR, at("2026-12-03T10:00:00Z"));
        assert_eq!(credits.spend(10, CALENDAR, at("2026-12-03T23:59:59Z")), Ok(0));
        assert_eq!(credits.spend(1, CALENDAR, at("2026-12-03T23:59:59Z")), Err(Exhausted { remaining: 0 }));
        assert_eq!(credits.spend(1, CALENDAR, at("2026-12-04T00:00:00Z")), Ok(99), "refilled at midnight, then spent");
        assert_eq!(credits.current(CALENDAR, at("2026-12-04T18:00:00Z")).remaining, 99, "once per interval");
    }

    #[test]
    fn a_refill_sets_rather_than_adds_and_skipped_intervals_refill_once() {
        let credits = Credits::new(70, daily(100), CALENDAR, at("2026-12-03T10:00:00Z"));
        assert_eq!(credits.current(CALENDAR, at("2026-12-09T01:00:00Z")).remaining, 100, "six days later: the amount, not 700");
        let mut topped = Credits::new(500, daily(100), CALENDAR, at("2026-12-03T10:00:00Z"));
        topped.add(1, CALENDAR, at("2026-12-03T11:00:00Z"));
        assert_eq!(topped.current(CALENDAR, at("2026-12-04T00:00:01Z")).remaining, 100, "a refill replaces even a larger balance");
    }

    #[test]
    fn a_monthly_refill_turns_at_each_month_end_including_february() {
        let monthly = Some(Refill { amount: 30, interval: Interval::Month });
        let mut credits = Credits::new(0, monthly, CALENDAR, at("2028-01-31T23:00:00Z"));
        assert_eq!(credits.spend(1, CALENDAR, at("2028-01-31T23:59:59Z")), Err(Exhausted { remaining: 0 }));
        assert_eq!(credits.spend(1, CALENDAR, at("2028-02-01T00:00:00Z")), Ok(29));
        assert_eq!(credits.spend(29, CALENDAR, at("2028-02-29T23:59:59Z")), Ok(0));
        assert_eq!(credits.current(CALENDAR, at("2028-03-01T00:00:00Z")).remaining, 30);
    }

    #[test]
    fn without_a_refill_spent_credits_stay_spent() {
        let mut credits = Credits::new(3, None, CALENDAR, 0);
        assert_eq!(credits.spend(3, CALENDAR, 1), Ok(0));
        assert_eq!(credits.current(CALENDAR, 10 * DAY_MS).remaining, 0);
    }

    #[test]
    fn a_spend_that_does_not_fit_leaves_the_balance_and_a_zero_cost_always_fits() {
        let mut credits = Credits::new(2, None, CALENDAR, 0);
        assert_eq!(credits.spend(3, CALENDAR, 1), Err(Exhausted { remaining: 2 }));
        assert_eq!(credits.remaining, 2);
        assert_eq!(credits.spend(2, CALENDAR, 1), Ok(0));
        assert_eq!(credits.spend(0, CALENDAR, 1), Ok(0));
    }

    #[test]
    fn adding_is_capped_and_setting_keeps_the_refill_schedule() {
        let mut credits = Credits::new(MAX_CREDITS - 1, daily(5), CALENDAR, at("2026-12-03T10:00:00Z"));
        credits.add(10, CALENDAR, at("2026-12-03T10:00:01Z"));
        assert_eq!(credits.remaining, MAX_CREDITS);
        credits.set(7, CALENDAR, at("2026-12-03T11:00:00Z"));
        assert_eq!(credits.current(CALENDAR, at("2026-12-03T23:00:00Z")).remaining, 7);
        assert_eq!(credits.current(CALENDAR, at("2026-12-04T00:00:00Z")).remaining, 5);
    }

    #[test]
    fn a_short_test_day_turns_as_often_as_it_says() {
        let fast = Calendar { day_ms: 2_000 };
        let mut credits = Credits::new(1, daily(4), fast, 1_000);
        assert_eq!(credits.spend(1, fast, 1_500), Ok(0));
        assert_eq!(credits.spend(4, fast, 2_000), Ok(0));
        assert_eq!(credits.current(fast, 4_000).remaining, 4);
    }

    #[test]
    fn the_json_shows_the_balance_as_of_now_and_when_it_refills() {
        let credits = Credits::new(0, daily(50), CALENDAR, at("2026-12-03T10:00:00Z"));
        assert_eq!(
            credits.current(CALENDAR, at("2026-12-04T09:00:00Z")).to_json(),
            json!({"remaining": 50, "refill": {"amount": 50, "interval": "day"}})
        );
        assert_eq!(Credits::new(9, None, CALENDAR, 0).to_json(), json!({"remaining": 9, "refill": null}));
    }
}
