//! Time as the contract writes it: Unix milliseconds inside, RFC 3339 UTC seconds outside.

use chrono::{DateTime, Datelike, Timelike};

/// `0000-01-01T00:00:00Z`: RFC 3339 writes four-digit years, so nothing earlier can be shown.
pub const EARLIEST_MS: i64 = -62_167_219_200_000;
/// `9999-12-31T23:59:59Z`, the latest time RFC 3339 can write in UTC.
pub const LATEST_MS: i64 = 253_402_300_799_000;

/// `2026-11-22T17:40:14Z` for a Unix time in milliseconds, exact from `EARLIEST_MS` to
/// `LATEST_MS`. Nothing outside can be stored (`parse_rfc3339` bounds every client-given time,
/// and the Worker's own are now-ish); were it asked, it answers the nearer bound, never a
/// made-up time.
pub fn rfc3339(unix_ms: i64) -> String {
    // chrono represents years -262143 to 262142, so every clamped time is there; the bound
    // stands in only to keep this function total.
    let Some(moment) = DateTime::from_timestamp_millis(unix_ms.clamp(EARLIEST_MS, LATEST_MS)) else {
        return "9999-12-31T23:59:59Z".to_string();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        moment.year(),
        moment.month(),
        moment.day(),
        moment.hour(),
        moment.minute(),
        moment.second()
    )
}

/// Unix milliseconds of an RFC 3339 timestamp with any offset, or `None` if it is not one or
/// lies, in UTC, outside what `rfc3339` can write back (`9999-12-31T23:59:59-23:00` is year
/// 10000 in UTC).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let moment = DateTime::parse_from_rfc3339(text).ok()?;
    let nanos = i128::from(moment.timestamp()) * 1_000_000_000 + i128::from(moment.timestamp_subsec_nanos());
    let admitted = i128::from(EARLIEST_MS) * 1_000_000..=i128::from(LATEST_MS) * 1_000_000;
    admitted.contains(&nanos).then(|| i64::try_from(nanos.div_euclid(1_000_000)).ok()).flatten()
}

/// Below this a Unix time given as a number is read as seconds, from it as milliseconds: as
/// seconds it would lie after the year 5138, as milliseconds it is March 1973.
const FIRST_MILLIS: i64 = 100_000_000_000;

/// Unix milliseconds of a query's instant: an RFC 3339 timestamp, or a Unix time as digits, in
/// seconds (Stripe's habit) or milliseconds (JavaScript's and Unkey's), told apart by size.
/// `None` for anything else or a time `rfc3339` cannot write back.
pub fn parse_instant(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return parse_rfc3339(text);
    }
    let number: i64 = text.parse().ok()?;
    let ms = if number < FIRST_MILLIS { number * 1000 } else { number };
    (ms <= LATEST_MS).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_is_a_timestamp_or_unix_seconds_or_milliseconds() {
        assert_eq!(parse_instant("2026-11-22T17:40:14Z"), Some(1_795_369_214_000));
        assert_eq!(parse_instant("1795369214"), Some(1_795_369_214_000), "seconds");
        assert_eq!(parse_instant("1795369214500"), Some(1_795_369_214_500), "milliseconds");
        assert_eq!(parse_instant("99999999999"), Some(99_999_999_999_000), "the largest read as seconds");
        assert_eq!(parse_instant("100000000000"), Some(100_000_000_000), "the smallest read as milliseconds");
        assert_eq!(parse_instant("0"), Some(0));
    }

    #[test]
    fn an_instant_refuses_signs_fractions_and_times_past_9999() {
        for text in ["-1", "+1795369214", "1795369214.5", "1e12", "253402300800000", "9999999999999999", " 1", ""] {
            assert_eq!(parse_instant(text), None, "{text:?}");
        }
    }

    #[test]
    fn formats_utc_seconds_with_z() {
        assert_eq!(rfc3339(1_795_369_214_000), "2026-11-22T17:40:14Z");
        assert_eq!(rfc3339(1_795_369_214_999), "2026-11-22T17:40:14Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z", "seconds are floored, not rounded toward 1970");
    }

    #[test]
    fn parses_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("2026-11-22T17:40:14Z"), Some(1_795_369_214_000));
        assert_eq!(parse_rfc3339("2026-11-22T18:40:14.5+01:00"), Some(1_795_369_214_500));
        assert_eq!(parse_rfc3339("2026-11-22"), None);
        assert_eq!(parse_rfc3339("tomorrow"), None);
    }

    #[test]
    fn the_bounds_are_the_first_and_last_second_rfc3339_writes_in_utc() {
        assert_eq!(rfc3339(LATEST_MS), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(EARLIEST_MS), "0000-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59Z"), Some(LATEST_MS));
        assert_eq!(parse_rfc3339("0000-01-01T00:00:00Z"), Some(EARLIEST_MS));
    }

    #[test]
    fn times_past_the_year_9999_in_utc_are_refused() {
        for text in ["9999-12-31T23:59:59-23:00", "9999-12-31T23:59:59-00:01", "9999-12-31T23:59:59.001Z", "9999-12-31T23:59:59.000000001Z"]
        {
            assert_eq!(parse_rfc3339(text), None, "{text}");
        }
    }

    #[test]
    fn times_before_the_year_0_in_utc_are_refused() {
        assert_eq!(parse_rfc3339("0000-01-01T00:00:00+00:01"), None);
        assert_eq!(parse_rfc3339("0000-01-01T00:00:00.999+00:01"), None);
    }

    #[test]
    fn every_admitted_time_is_shown_as_itself() {
        for text in
            ["9999-12-31T23:59:59Z", "9999-12-31T00:59:59-23:00", "0000-01-01T00:00:00Z", "1969-07-20T20:17:40Z", "2000-02-29T12:00:00Z"]
        {
            let unix_ms = parse_rfc3339(text).unwrap();
            assert_eq!(parse_rfc3339(&rfc3339(unix_ms)), Some(unix_ms), "{text} came back as {}", rfc3339(unix_ms));
        }
        assert_eq!(rfc3339(parse_rfc3339("9999-12-31T00:59:59-23:00").unwrap()), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn a_time_outside_the_bounds_is_shown_as_the_nearer_bound_never_as_1970() {
        assert_eq!(rfc3339(LATEST_MS + 86_400_000), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MIN), "0000-01-01T00:00:00Z");
    }
}
