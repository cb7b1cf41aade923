//! Reading a provider's answer, and the model list in it, within a stated memory bound.
//!
//! A provider's `/models` can be long: OpenRouter's public list holds some 400 models, each with
//! a description, pricing and limits; Gemini's and Azure's entries carry descriptions and
//! capabilities too. Parsed into a generic JSON tree, a list costs several times its size (an
//! 8 MiB list took workerd from 340 to 693 MB), and a production isolate has 128 MB for every
//! request it serves. So:
//!
//! - the answer is read into one buffer of at most [`MAX_ANSWER_BYTES`], allocated once when the
//!   provider declares its length, and never grown past the cap otherwise; an answer declaring
//!   or sending more is refused before it is read further (the caller answers 502
//!   `provider_unavailable`);
//! - the list is read in one pass that builds no tree: each id is compared with the wanted models
//!   as it goes by ([`listing`]), and only the first [`MAX_KEPT_IDS`] ids are copied out, for the
//!   console's model picker. Ids are borrowed from the buffer while they are compared.
//!
//! Memory per validation: the answer (at most 4 MiB; while an undeclared answer grows, the
//! allocator may briefly hold the previous half-size buffer beside the new one, so at most
//! 6 MiB), plus the kept ids (at most 1,000 of at most 200 characters: 200 KB).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The most of a provider's answer that is read: 4 MiB. The longest real lists are far below it
/// (OpenRouter's full public list, the longest we know of, is around 1-1.5 MB; OpenAI's,
/// Anthropic's, Gemini's and Bedrock's are tens of KB), so a list can grow several times over
/// before it reaches the cap, while the memory a validation holds stays a small part of an
/// isolate's 128 MB.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// An answer past the cap: it is not read further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverCap;

/// The bytes of an answer as they arrive, never more than the cap.
#[derive(Debug)]
pub struct AnswerBuffer {
    bytes: Vec<u8>,
    cap: usize,
}

impl AnswerBuffer {
    /// A buffer for an answer whose `Content-Length` is `declared`, when it says one; an answer
    /// declaring more than `cap` is refused before a byte of it is read.
    pub fn new(cap: usize, declared: Option<usize>) -> Result<Self, OverCap> {
        match declared {
            Some(length) if length > cap => Err(OverCap),
            Some(length) => Ok(AnswerBuffer { bytes: Vec::with_capacity(length), cap }),
            None => Ok(AnswerBuffer { bytes: Vec::new(), cap }),
        }
    }

    /// Appends a chunk, or refuses it if the answer would pass the cap (whatever it declared).
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), OverCap> {
        let needed = self.bytes.len() + chunk.len();
        if needed > self.cap {
            return Err(OverCap);
        }
        if needed > self.bytes.capacity() {
            // Doubling, as Vec does, but never past the cap: a 2.1 MiB answer must not hold 4 MiB
            // of spare capacity beyond it.
            let target = (self.bytes.capacity() * 2).max(needed).min(self.cap);
            self.bytes.reserve_exact(target - self.bytes.len());
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// The answer as text; valid UTF-8 (every JSON answer) is not copied.
    pub fn into_text(self) -> String {
        String::from_utf8(self.bytes).unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned())
    }
}

/// Whether `model` is offered by a listed `id`: listed exactly, listed as `models/<model>`
/// (Gemini), or listed as a dated version of which it is the alias (`claude-sonnet-4-5` for
/// `claude-sonnet-4-5-20250929`, `gpt-4o` for `gpt-4o-2024-08-06`).
pub fn id_offers(id: &str, model: &str) -> bool {
    let bare = model.strip_prefix("models/").unwrap_or(model);
    let id = id.strip_prefix("models/").unwrap_or(id);
    id == bare || id.strip_prefix(bare).and_then(|rest| rest.strip_prefix('-')).is_some_and(is_date_suffix)
}

fn is_date_suffix(suffix: &str) -> bool {
    let digits = suffix.bytes().filter(u8::is_ascii_digit).count();
    let compact = suffix.len() == 8 && digits == 8;
    let dashed = suffix.len() == 10 && digits == 8 && suffix.as_bytes()[4] == b'-' && suffix.as_bytes()[7] == b'-';
    compact || dashed
}

/// The list shapes providers answer with, in the order they are trusted when a body has several:
/// `data[].id` (OpenAI, Anthropic, Azure, Gemini's OpenAI endpoint, OpenRouter),
/// `models[].name` (Gemini native), `modelSummaries[].modelId` (Bedrock).
const SHAPES: [(&str, &str); 3] = [("data", "id"), ("models", "name"), ("modelSummaries", "modelId")];

/// At most this many ids of a list are kept for the model picker, each at most
/// [`MAX_KEPT_ID_CHARS`]: some 200 KB at worst, while a list may be far longer.
pub const MAX_KEPT_IDS: usize = 1000;
pub const MAX_KEPT_ID_CHARS: usize = 200;

/// What a model list offers: for each wanted model whether it is listed, and the ids it lists
/// (their first [`MAX_KEPT_IDS`], without Gemini's `models/` prefix, each once) for a picker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub offered: Vec<bool>,
    pub ids: Vec<String>,
    /// The list held more ids than were kept.
    pub truncated: bool,
}

impl Listing {
    fn new(wanted: usize) -> Self {
        Listing { offered: vec![false; wanted], ids: Vec::new(), truncated: false }
    }

    fn see(&mut self, id: &str, wanted: &[&str]) {
        for (offered, model) in self.offered.iter_mut().zip(wanted) {
            *offered |= id_offers(id, model);
        }
        let shown = id.strip_prefix("models/").unwrap_or(id);
        if shown.is_empty() || shown.chars().count() > MAX_KEPT_ID_CHARS || shown.chars().any(char::is_control) {
            return;
        }
        if self.ids.len() >= MAX_KEPT_IDS {
            self.truncated = true;
        } else if !self.ids.iter().any(|kept| kept == shown) {
            self.ids.push(shown.to_string());
        }
    }

    fn merge(&mut self, other: Listing, wanted: &[&str]) {
        self.offered.iter_mut().zip(other.offered).for_each(|(was, now)| *was |= now);
        self.truncated |= other.truncated;
        for id in other.ids {
            self.see(&id, wanted);
        }
    }
}

/// For each of `wanted`, whether the model list in `body` offers it; `None` when the body is not
/// a model list of a known shape (not JSON, not an object, or none of the lists is an array).
pub fn offered(body: &str, wanted: &[&str]) -> Option<Vec<bool>> {
    listing(body, wanted).map(|listing| listing.offered)
}

/// [`offered`], with the ids the list holds.
pub fn listing(body: &str, wanted: &[&str]) -> Option<Listing> {
    let mut deserializer = serde_json::Deserializer::from_str(body);
    let found = ListSeed { wanted }.deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    found.into_iter().flatten().next()
}

/// The top-level object: one result per shape, `None` where that list is absent or no array.
struct ListSeed<'w> {
    wanted: &'w [&'w str],
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_> {
    type Value = [Option<Listing>; 3];

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_> {
    type Value = [Option<Listing>; 3];

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a model list object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found: [Option<Listing>; 3] = Default::default();
        while let Some(Key(shape)) = map.next_key_seed(KeySeed)? {
            let Some(shape) = shape else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let items = ItemsSeed { field: SHAPES[shape].1, wanted: self.wanted };
            if let Some(listed) = map.next_value_seed(items)? {
                // A key given twice: what either copy lists counts.
                match &mut found[shape] {
                    Some(merged) => merged.merge(listed, self.wanted),
                    empty => *empty = Some(listed),
                }
            }
        }
        Ok(found)
    }
}

/// An object key, compared in place: which shape it names, if any.
struct Key(Option<usize>);
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Key, E> {
        Ok(Key(SHAPES.iter().position(|(list, _)| *list == key)))
    }
}

/// A shape's list: `Some` with what its items offer when it is an array, `None` otherwise.
struct ItemsSeed<'w> {
    field: &'static str,
    wanted: &'w [&'w str],
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = Option<Listing>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Skips a value of any type without keeping it, answering `None`.
macro_rules! ignore_scalars {
    ($($method:ident: $type:ty),*) => {
        $(fn $method<E>(self, _: $type) -> Result<Self::Value, E> { Ok(None) })*
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    };
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = Option<Listing>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of models")
    }

    ignore_scalars!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut listing = Listing::new(self.wanted.len());
        while seq.next_element_seed(ItemSeed { field: self.field, wanted: self.wanted, listing: &mut listing })?.is_some() {}
        Ok(Some(listing))
    }
}

/// One item of a list: its id field, when it has one, is compared with the wanted models.
struct ItemSeed<'w, 'o> {
    field: &'static str,
    wanted: &'w [&'w str],
    listing: &'o mut Listing,
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Skips an item that is not an object.
macro_rules! skip_scalars {
    ($($method:ident: $type:ty),*) => {
        $(fn $method<E>(self, _: $type) -> Result<(), E> { Ok(()) })*
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(())
        }
    };
}

impl<'de> Visitor<'de> for ItemSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a model")
    }

    skip_scalars!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(IsField(is_id)) = map.next_key_seed(FieldSeed(self.field))? {
            if is_id {
                map.next_value_seed(IdSeed { wanted: self.wanted, listing: &mut *self.listing })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct IsField(bool);
struct FieldSeed(&'static str);

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = IsField;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<IsField, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldSeed {
    type Value = IsField;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E>(self, key: &str) -> Result<IsField, E> {
        Ok(IsField(key == self.0))
    }
}

/// An id: compared with each wanted model as it is read, and kept while the listing has room.
struct IdSeed<'w, 'o> {
    wanted: &'w [&'w str],
    listing: &'o mut Listing,
}

impl<'de> DeserializeSeed<'de> for IdSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IdSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a model id")
    }

    fn visit_str<E>(self, id: &str) -> Result<(), E> {
        self.listing.see(id, self.wanted);
        Ok(())
    }

    skip_scalars!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WANTED: [&str; 2] = ["gpt-4o", "claude-sonnet-4-5"];

    /// An OpenAI-style list of `count` filler models with the wanted ids at the very end.
    fn long_list(count: usize, last: &[&str]) -> String {
        let mut body = String::from(r#"{"object":"list","data":["#);
        for i in 0..count {
            body.push_str(&format!(r#"{{"id":"filler-model-{i:07}","object":"model","created":1715367049,"owned_by":"system"}},"#));
        }
        let tail: Vec<String> = last.iter().map(|id| format!(r#"{{"id":"{id}","object":"model"}}"#)).collect();
        body.push_str(&tail.join(","));
        body.push_str("]}");
        body
    }

    #[test]
    fn a_listing_keeps_each_id_once_in_order_without_the_models_prefix() {
        let body =
            json!({"data": [{"id": "models/gemini-2.5-flash"}, {"id": "gpt-4o"}, {"id": "gpt-4o"}, {"id": ""}, {"id": 7}]}).to_string();
        let listing = listing(&body, &["gpt-4o"]).unwrap();
        assert_eq!(listing.ids, vec!["gemini-2.5-flash", "gpt-4o"]);
        assert_eq!((listing.offered, listing.truncated), (vec![true], false));
    }

    #[test]
    fn a_listing_keeps_the_first_thousand_ids_and_still_finds_a_model_past_them() {
        let body = long_list(MAX_KEPT_IDS + 50, &["gpt-4o"]);
        let listing = listing(&body, &["gpt-4o"]).unwrap();
        assert_eq!(listing.ids.len(), MAX_KEPT_IDS);
        assert_eq!(listing.ids[0], "filler-model-0000000");
        assert!(listing.truncated, "the list held more than was kept");
        assert_eq!(listing.offered, vec![true], "the wanted model sits past the kept ids");
    }

    #[test]
    fn a_listing_skips_ids_too_long_to_be_a_model() {
        let long = "m".repeat(MAX_KEPT_ID_CHARS + 1);
        let body = json!({"data": [{"id": long}, {"id": "o3"}]}).to_string();
        assert_eq!(listing(&body, &[]).unwrap().ids, vec!["o3"]);
    }

    #[test]
    fn openai_style_data_ids_are_read() {
        let body = json!({"object": "list", "data": [{"id": "gpt-4o-2024-08-06", "object": "model"}, {"id": "o3"}]}).to_string();
        assert_eq!(offered(&body, &WANTED), Some(vec![true, false]));
    }

    #[test]
    fn gemini_native_models_names_are_read_with_their_prefix() {
        let body = json!({
            "models": [{"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash", "description": "Fast and versatile",
                        "inputTokenLimit": 1048576, "supportedGenerationMethods": ["generateContent", "countTokens"]}],
            "nextPageToken": "abc"
        })
        .to_string();
        assert_eq!(offered(&body, &["gemini-2.5-flash", "models/gemini-2.5-flash", "gemini-2.5-pro"]), Some(vec![true, true, false]));
    }

    #[test]
    fn anthropic_lists_offer_dated_ids_under_their_alias() {
        let body = json!({
            "data": [{"type": "model", "id": "claude-sonnet-4-5-20250929", "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"}],
            "has_more": false, "first_id": "claude-sonnet-4-5-20250929", "last_id": "claude-sonnet-4-5-20250929"
        })
        .to_string();
        assert_eq!(offered(&body, &WANTED), Some(vec![false, true]));
    }

    #[test]
    fn bedrock_model_summaries_are_read() {
        let body = json!({"modelSummaries": [{"modelArn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-express-v1",
                                              "modelId": "amazon.titan-text-express-v1", "inputModalities": ["TEXT"]}]})
        .to_string();
        assert_eq!(offered(&body, &["amazon.titan-text-express-v1"]), Some(vec![true]));
    }

    #[test]
    fn escaped_ids_and_nested_fields_are_read_correctly() {
        let body = r#"{"data":[{"meta":{"id":"gpt-4o"},"id":"o3"},{"id":"gpt\u002d4o"},"just a string",7,null,[1,2]]}"#;
        assert_eq!(offered(body, &["gpt-4o", "o3"]), Some(vec![true, true]), "a nested `id` is not the model's own");
        let nested_only = r#"{"data":[{"meta":{"id":"gpt-4o"}}]}"#;
        assert_eq!(offered(nested_only, &["gpt-4o"]), Some(vec![false]));
    }

    #[test]
    fn data_is_trusted_first_and_a_non_array_list_is_skipped() {
        let both = json!({"modelSummaries": [{"modelId": "x"}], "data": [{"id": "y"}]}).to_string();
        assert_eq!(offered(&both, &["x", "y"]), Some(vec![false, true]));
        let key_info = json!({"data": {"label": "sk-or-v1-abc", "limit_remaining": null}, "models": [{"name": "x"}]}).to_string();
        assert_eq!(offered(&key_info, &["x"]), Some(vec![true]));
    }

    #[test]
    fn bodies_that_are_not_model_lists_are_none() {
        for body in
            ["", "not json", "[]", r#"{"data": {"id": "x"}}"#, r#"{"error": {"message": "no"}}"#, r#"{"data": [{"id": "x"}]} trailing"#]
        {
            assert_eq!(offered(body, &["x"]), None, "{body}");
        }
    }

    #[test]
    fn deeply_nested_fields_beside_the_id_are_skipped_without_recursing() {
        let body = format!(r#"{{"data":[{{"id":"x","deep":{}{}}}]}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(offered(&body, &["x"]), Some(vec![true]));
    }

    #[test]
    fn a_huge_list_just_under_the_cap_finds_the_models_at_its_end() {
        let body = long_list(45_000, &["gpt-4o-2024-08-06", "claude-sonnet-4-5-20250929"]);
        assert!(body.len() > 3 * 1024 * 1024 && body.len() < MAX_ANSWER_BYTES, "{} bytes", body.len());
        let mut buffer = AnswerBuffer::new(MAX_ANSWER_BYTES, None).unwrap();
        for chunk in body.as_bytes().chunks(64 * 1024) {
            buffer.push(chunk).expect("under the cap");
        }
        assert!(buffer.capacity() <= MAX_ANSWER_BYTES, "capacity {} past the cap", buffer.capacity());
        assert_eq!(offered(&buffer.into_text(), &WANTED), Some(vec![true, true]));
    }

    #[test]
    fn a_list_past_the_cap_is_refused_at_the_first_chunk_over_it() {
        let body = long_list(60_000, &["gpt-4o"]);
        assert!(body.len() > MAX_ANSWER_BYTES);
        let mut buffer = AnswerBuffer::new(MAX_ANSWER_BYTES, None).unwrap();
        let chunks: Vec<&[u8]> = body.as_bytes().chunks(64 * 1024).collect();
        let refused_at = chunks.iter().position(|chunk| buffer.push(chunk).is_err()).expect("refused somewhere");
        assert_eq!(refused_at, MAX_ANSWER_BYTES / (64 * 1024), "refused as soon as it passes 4 MiB, not later");
        assert!(buffer.capacity() <= MAX_ANSWER_BYTES, "capacity {} past the cap", buffer.capacity());
    }

    #[test]
    fn an_answer_declaring_more_than_the_cap_is_refused_before_reading() {
        assert_eq!(AnswerBuffer::new(MAX_ANSWER_BYTES, Some(MAX_ANSWER_BYTES + 1)).unwrap_err(), OverCap);
        let declared = AnswerBuffer::new(MAX_ANSWER_BYTES, Some(1_000)).unwrap();
        assert_eq!(declared.capacity(), 1_000, "allocated once at the declared length");
        let mut lying = AnswerBuffer::new(16, Some(4)).unwrap();
        assert_eq!(lying.push(&[b'x'; 17]), Err(OverCap), "a length that lies does not lift the cap");
    }

    #[test]
    fn models_are_offered_exactly_with_prefix_or_as_dated_aliases() {
        let listed = ["claude-sonnet-4-5-20250929", "models/gemini-2.5-flash", "gpt-4o-2024-08-06", "o3"];
        let offers = |model: &str| listed.iter().any(|id| id_offers(id, model));
        assert!(offers("claude-sonnet-4-5-20250929"));
        assert!(offers("claude-sonnet-4-5"));
        assert!(offers("gemini-2.5-flash"));
        assert!(offers("models/gemini-2.5-flash"));
        assert!(offers("gpt-4o"));
        assert!(!offers("claude-sonnet-4"), "not a dated alias");
        assert!(!offers("claude-sonnet-4-5-2025"));
        assert!(!offers("o"));
        assert!(!offers("gpt-5"));
    }
}
