//! Cursor pagination: newest first, ordered by (position, id), with an opaque cursor.

use crate::error::ApiError;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;

/// The position after which the next page starts: the last item's sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The list's first sort column: a time in ms (`created_at`, a route's `updated_at`) or
    /// the audit trail's sequence number.
    pub position: i64,
    pub id: String,
}

impl Cursor {
    /// `<position>.<id>`: a shape the OpenAPI document can state as a pattern
    /// (`^[0-9]{1,16}\.[0-9A-Za-z_.:-]{1,128}$`), so every string of that shape is a cursor to
    /// seek after and anything else is refused; a client still treats it as opaque. The id part
    /// takes every character of an agent id, whose `.` the first `.` does not confuse: the
    /// milliseconds have none.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.position, self.id)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (position, id) = text.split_once('.')?;
        let position_ok = (1..=16).contains(&position.len()) && position.bytes().all(|b| b.is_ascii_digit());
        let id_ok = (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
        if !position_ok || !id_ok {
            return None;
        }
        Some(Cursor { position: position.parse().ok()?, id: id.to_string() })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub after: Option<Cursor>,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest { limit: DEFAULT_LIMIT, after: None }
    }
}

impl PageRequest {
    /// From the `limit` and `cursor` query parameters: a limit above 100 means 100. An empty
    /// `limit` is malformed (the contract types it an integer); an empty `cursor` is the first
    /// page, as a client looping from `""` sends it.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, ApiError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(text) if text.bytes().all(|b| b.is_ascii_digit()) && text.bytes().any(|b| b != b'0') => {
                // All digits and not zero: anything too large to parse is simply above 100.
                text.parse::<usize>().map_or(MAX_LIMIT, |n| n.min(MAX_LIMIT))
            }
            Some(_) => return Err(ApiError::invalid_request("limit", "`limit` must be a positive integer.")),
        };
        let after = match cursor {
            None | Some("") => None,
            Some(text) => Some(
                Cursor::decode(text).ok_or_else(|| ApiError::invalid_request("cursor", "`cursor` is not a cursor this API returned."))?,
            ),
        };
        Ok(PageRequest { limit, after })
    }

    /// From a request's query parameters.
    pub fn from_query(query: &std::collections::HashMap<String, String>) -> Result<Self, ApiError> {
        Self::parse(query.get("limit").map(String::as_str), query.get("cursor").map(String::as_str))
    }
}

/// One page of items; stores fetch `limit + 1` rows so the page knows whether more follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn from_rows(mut rows: Vec<T>, limit: usize, cursor_of: impl Fn(&T) -> Cursor) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more { rows.last().map(|last| cursor_of(last).encode()) } else { None };
        Page { items: rows, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let cursor = Cursor { position: 1_795_369_214_000, id: "ws_abc123".into() };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
    }

    #[test]
    fn cursors_carry_agent_ids_with_dots_and_colons() {
        let cursor = Cursor { position: 7, id: "support.bot:v2-eu".into() };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode(&format!("1.{}", "a".repeat(129))), None, "ids are at most 128 characters");
    }

    #[test]
    fn garbage_cursors_are_rejected() {
        // The base64 cursors of earlier versions are refused too.
        for text in [
            "!!",
            "bm9jb2xvbg",
            "x.ws_1",
            "1.a'b",
            "1.a b",
            "1.a/b",
            "1.",
            ".ws_1",
            "-1.ws_1",
            "12345678901234567.ws_1",
            "MTc5NTM2OTIxNDAwMDp3c18x",
        ] {
            assert_eq!(Cursor::decode(text), None, "{text}");
        }
        let error = PageRequest::parse(None, Some("!!")).unwrap_err();
        assert_eq!(error, ApiError::invalid_request("cursor", "`cursor` is not a cursor this API returned."));
    }

    #[test]
    fn limit_defaults_to_50_and_caps_at_100() {
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, 50);
        assert_eq!(PageRequest::parse(Some("7"), None).unwrap().limit, 7);
        assert_eq!(PageRequest::parse(Some("1000"), None).unwrap().limit, 100);
        assert_eq!(PageRequest::parse(Some("99999999999999999999999"), None).unwrap().limit, 100);
    }

    #[test]
    fn zero_negative_or_non_numeric_limits_are_invalid() {
        for text in ["0", "-1", "ten", "1.5"] {
            let error = PageRequest::parse(Some(text), None).unwrap_err();
            assert!(matches!(error, ApiError::InvalidRequest { ref field, .. } if field == "limit"), "{text}");
        }
    }

    #[test]
    fn a_page_has_a_next_cursor_only_when_more_rows_follow() {
        let cursor_of = |n: &i64| Cursor { position: *n, id: format!("id{n}") };
        let full = Page::from_rows(vec![5, 4, 3], 2, cursor_of);
        assert_eq!(full.items, vec![5, 4]);
        assert_eq!(full.next_cursor, Some(cursor_of(&4).encode()));
        let last = Page::from_rows(vec![5, 4], 2, cursor_of);
        assert_eq!(last.next_cursor, None);
    }
}
