//! Time as the contract writes it: Unix milliseconds inside, RFC 3339 UTC seconds outside.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// `2026-11-22T17:40:14Z` for a Unix time in milliseconds.
pub fn rfc3339(unix_ms: i64) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    OffsetDateTime::from_unix_timestamp_nanos(unix_ms as i128 * 1_000_000)
        .ok()
        .and_then(|moment| moment.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// Unix milliseconds of an RFC 3339 timestamp with any offset, or `None` if it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let moment = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(moment.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_seconds_with_z() {
        assert_eq!(rfc3339(1_795_369_214_000), "2026-11-22T17:40:14Z");
        assert_eq!(rfc3339(1_795_369_214_999), "2026-11-22T17:40:14Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn parses_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("2026-11-22T17:40:14Z"), Some(1_795_369_214_000));
        assert_eq!(parse_rfc3339("2026-11-22T18:40:14.5+01:00"), Some(1_795_369_214_500));
        assert_eq!(parse_rfc3339("2026-11-22"), None);
        assert_eq!(parse_rfc3339("tomorrow"), None);
    }
}
