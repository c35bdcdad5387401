//! Decoding the three family adapters share: lenient numbers and flags, borrowed text, MD5
//! checks, tag lists, ratings, error reasons, and the first look at a body that decides how to
//! read it.
//!
//! Upstreams disagree about types (`"123"` or `123`, `0`/`1` or `false`/`true`, `null`
//! scores), so numeric fields go through the deserializers here, which accept every form and
//! read a value they cannot use as zero or `false`: one odd field must not cost a page of
//! posts. Ids are the exception ([`id`]): a post without one is not a post.

use std::borrow::Cow;
use std::fmt;

use quick_xml::events::Event;
use quick_xml::reader::Reader;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::UpstreamError;
use super::error::{looks_like_html, truncate};
use crate::model::{Post, PostPage, Rating, TagCandidate, TagCategory, Tags};

/// Longest upstream reason carried into an error message, in characters.
const REASON_CHARS: usize = 200;

/// What a body looks like from its first significant byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Nothing but whitespace (or nothing at all).
    Empty,
    /// A JSON array.
    Array,
    /// A JSON object.
    Object,
    /// An HTML page, such as a challenge or an error page.
    Html,
    /// Some other markup, read as XML.
    Xml,
    /// Anything else: not a body any family sends.
    Other,
}

impl Shape {
    /// A few words naming the shape, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Shape::Empty => "an empty body",
            Shape::Array => "a JSON array",
            Shape::Object => "a JSON object",
            Shape::Html => "an HTML page",
            Shape::Xml => "an XML document",
            Shape::Other => "neither JSON nor XML",
        }
    }
}

/// The shape of `body`, ignoring a UTF-8 byte order mark and leading whitespace.
pub fn shape(body: &[u8]) -> Shape {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Shape::Empty,
        Some(b'[') => Shape::Array,
        Some(b'{') => Shape::Object,
        Some(b'<') if looks_like_html(body) => Shape::Html,
        Some(b'<') => Shape::Xml,
        Some(_) => Shape::Other,
    }
}

/// The error for a body of the wrong shape: a challenge for an HTML page, else malformed.
///
/// Adapters parse only successful answers, so an HTML page here arrived with HTTP 200.
pub fn wrong_shape(found: Shape, expected: &'static str) -> UpstreamError {
    match found {
        Shape::Html => UpstreamError::Challenge { status: 200 },
        other => UpstreamError::malformed(expected, format!("got {}", other.describe())),
    }
}

/// The error for JSON that did not decode as `expected`.
///
/// Quoted values are cut out of the decoder's message: they are upstream text, and an
/// error message must not carry a body's URLs or other content to a client.
pub fn json_error(expected: &'static str, error: &serde_json::Error) -> UpstreamError {
    let detail = match error.classify() {
        serde_json::error::Category::Eof => format!(
            "the body ends early (truncated) at line {} column {}",
            error.line(),
            error.column()
        ),
        serde_json::error::Category::Syntax | serde_json::error::Category::Io => format!(
            "invalid JSON at line {} column {}",
            error.line(),
            error.column()
        ),
        serde_json::error::Category::Data => without_quoted(&error.to_string()),
    };
    UpstreamError::malformed(expected, detail)
}

/// `text` with every `"..."` part replaced by `"…"`.
fn without_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (index, part) in text.split('"').enumerate() {
        if index % 2 == 0 {
            out.push_str(part);
        } else {
            out.push_str("\"…\"");
        }
    }
    out
}

/// Builds the page of `posts`, dropping (and counting) those with neither an MD5 nor a file
/// URL: restricted posts that no merge could key or show.
pub fn page(posts: impl IntoIterator<Item = Post>, total: Option<u64>) -> PostPage {
    let mut page = PostPage {
        total,
        ..PostPage::default()
    };
    for post in posts {
        if post.md5.is_none() && post.file_url.is_none() {
            page.skipped += 1;
        } else {
            page.posts.push(post);
        }
    }
    page
}

/// A lowercase MD5 from an upstream field, or `None` unless it is exactly 32 hex digits.
pub fn md5(raw: Option<&str>) -> Option<String> {
    let raw = raw?.trim();
    let valid = raw.len() == 32 && raw.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| raw.to_ascii_lowercase())
}

/// The tags of a space-separated tag string.
pub fn tags(raw: Option<&str>) -> Tags {
    Tags::from_text(raw.unwrap_or_default())
}

/// A rating from a family's code or word, where `safe` is what the family's `s`/`safe` means.
///
/// A missing or unknown rating reads as explicit: a rating filter must never let an image
/// through on a guess, and explicit is the one guess a filter cannot be fooled by.
pub fn rating(raw: Option<&str>, safe: Rating) -> Rating {
    let raw = raw.unwrap_or_default().trim();
    let is = |word: &str| raw.eq_ignore_ascii_case(word);
    if is("g") || is("general") {
        Rating::General
    } else if is("sensitive") {
        Rating::Sensitive
    } else if is("s") || is("safe") {
        safe
    } else if is("q") || is("questionable") {
        Rating::Questionable
    } else {
        Rating::Explicit
    }
}

/// A tag as the three families' tag APIs describe it; each family spells the count and the
/// category its own way, and each spelling is accepted.
#[derive(Debug, Deserialize)]
pub struct RawTag<'a> {
    #[serde(borrow, deserialize_with = "text")]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, alias = "post_count", deserialize_with = "count")]
    pub count: u64,
    #[serde(default = "no_code", alias = "category", deserialize_with = "code")]
    pub r#type: i64,
}

impl RawTag<'_> {
    /// The candidate this tag is, or `None` for a tag without a name.
    pub fn into_candidate(self) -> Option<TagCandidate> {
        let name = self.name.filter(|name| !name.trim().is_empty())?;
        Some(TagCandidate {
            name: name.trim().to_owned(),
            post_count: self.count,
            category: TagCategory::from_code(self.r#type),
        })
    }
}

/// Parses a bare JSON array of tags.
pub fn tag_array(body: &[u8], expected: &'static str) -> Result<Vec<TagCandidate>, UpstreamError> {
    match shape(body) {
        Shape::Array => {}
        other => return Err(wrong_shape(other, expected)),
    }
    let tags: Vec<RawTag> =
        serde_json::from_slice(body).map_err(|error| json_error(expected, &error))?;
    Ok(tags
        .into_iter()
        .filter_map(RawTag::into_candidate)
        .collect())
}

fn no_code() -> i64 {
    -1
}

/// The human reason in an error body: JSON `message`/`reason`/`error`, or XML
/// `<response reason="..."/>` / `<error>...</error>`; cut to a readable length.
pub fn error_reason(body: &[u8]) -> Option<String> {
    let reason = match shape(body) {
        Shape::Object => json_reason(body),
        Shape::Xml => xml_reason(body),
        _ => None,
    }?;
    let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    (!reason.is_empty()).then(|| truncate(&reason, REASON_CHARS))
}

fn json_reason(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorBody<'a> {
        #[serde(default, borrow, deserialize_with = "text")]
        message: Option<Cow<'a, str>>,
        #[serde(default, borrow, deserialize_with = "text")]
        reason: Option<Cow<'a, str>>,
        #[serde(default, borrow, deserialize_with = "text")]
        error: Option<Cow<'a, str>>,
    }
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    let reason = parsed.message.or(parsed.reason).or(parsed.error)?;
    Some(reason.into_owned())
}

/// The reason of an XML error document, read from its root element.
pub fn xml_reason(body: &[u8]) -> Option<String> {
    let mut reader = Reader::from_reader(body);
    let (root, empty) = xml_root(&mut reader).ok()?;
    match root.local_name().as_ref() {
        b"response" => xml_attribute(&root, b"reason")
            .ok()
            .flatten()
            .map(Cow::into_owned),
        b"error" if !empty => xml_text(&mut reader),
        _ => None,
    }
}

/// The text inside the element the reader has just entered.
fn xml_text(reader: &mut Reader<&[u8]>) -> Option<String> {
    let mut text = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Text(part) => text.push_str(&part.unescape().ok()?),
            Event::CData(part) => text.push_str(std::str::from_utf8(&part).ok()?),
            Event::End(_) | Event::Eof => return Some(text),
            _ => {}
        }
    }
}

/// Reads up to the root element of an XML document: the element, and whether it is empty
/// (`<posts/>`). Declarations, comments and whitespace before it are skipped.
pub fn xml_root<'a>(
    reader: &mut Reader<&'a [u8]>,
) -> Result<(quick_xml::events::BytesStart<'a>, bool), UpstreamError> {
    loop {
        let event = reader
            .read_event()
            .map_err(|error| UpstreamError::malformed("XML document", error))?;
        match event {
            Event::Start(root) => return Ok((root, false)),
            Event::Empty(root) => return Ok((root, true)),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Text(text) if text.iter().all(u8::is_ascii_whitespace) => {}
            Event::Eof => {
                return Err(UpstreamError::malformed(
                    "XML document",
                    "it has no element",
                ));
            }
            _ => {
                return Err(UpstreamError::malformed(
                    "XML document",
                    "text or a closing tag comes before the first element",
                ));
            }
        }
    }
}

/// The unescaped value of attribute `key` of `element`, if it has one.
pub fn xml_attribute<'e>(
    element: &'e quick_xml::events::BytesStart<'_>,
    key: &[u8],
) -> Result<Option<Cow<'e, str>>, UpstreamError> {
    for attribute in element.attributes() {
        let attribute =
            attribute.map_err(|error| UpstreamError::malformed("XML attribute", error))?;
        if attribute.key.local_name().as_ref() == key {
            let value = attribute
                .unescape_value()
                .map_err(|error| UpstreamError::malformed("XML attribute", error))?;
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// A number as an upstream wrote it, or nothing usable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool(bool),
    Nothing,
}

impl Number {
    /// Reads a number, a boolean word or nothing from text (XML attributes, quoted JSON).
    pub fn parse(text: &str) -> Number {
        let text = text.trim();
        if let Ok(value) = text.parse::<u64>() {
            Number::Unsigned(value)
        } else if let Ok(value) = text.parse::<i64>() {
            Number::Signed(value)
        } else if let Ok(value) = text.parse::<f64>() {
            Number::Float(value)
        } else if text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false") {
            Number::Bool(text.eq_ignore_ascii_case("true"))
        } else {
            Number::Nothing
        }
    }

    /// The value as a non-negative whole number, if it is one.
    pub fn as_u64(self) -> Option<u64> {
        match self {
            Number::Unsigned(value) => Some(value),
            Number::Float(value) if value.fract() == 0.0 && (0.0..1.8e19).contains(&value) => {
                Some(value as u64)
            }
            _ => None,
        }
    }

    /// The value as a pixel size; anything else is 0.
    pub fn as_size(self) -> u32 {
        self.as_u64()
            .and_then(|value| u32::try_from(value).ok())
            .unwrap_or(0)
    }

    /// The value as a signed whole number (fractions cut, out of range saturated); else 0.
    pub fn as_i64(self) -> i64 {
        match self {
            Number::Unsigned(value) => i64::try_from(value).unwrap_or(i64::MAX),
            Number::Signed(value) => value,
            Number::Float(value) if value.is_finite() => value as i64,
            _ => 0,
        }
    }

    /// The value as a tag category code; anything unusable is -1, which maps to
    /// [`TagCategory::Other`].
    pub fn as_code(self) -> i64 {
        match self {
            Number::Nothing | Number::Bool(_) => -1,
            other => other.as_i64(),
        }
    }

    /// The value as a flag: `true`, or a non-zero number.
    pub fn as_flag(self) -> bool {
        match self {
            Number::Bool(value) => value,
            Number::Unsigned(value) => value != 0,
            Number::Signed(value) => value != 0,
            Number::Float(value) => value != 0.0,
            Number::Nothing => false,
        }
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Number, D::Error> {
        deserializer.deserialize_any(NumberVisitor)
    }
}

struct NumberVisitor;

impl<'de> Visitor<'de> for NumberVisitor {
    type Value = Number;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, a numeric string, a boolean or null")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Number, E> {
        Ok(Number::Bool(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Number, E> {
        Ok(Number::Unsigned(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Number, E> {
        Ok(u64::try_from(value).map_or(Number::Signed(value), Number::Unsigned))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Number, E> {
        Ok(Number::Float(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Number, E> {
        Ok(Number::parse(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Number, E> {
        Ok(Number::Nothing)
    }

    fn visit_none<E: de::Error>(self) -> Result<Number, E> {
        Ok(Number::Nothing)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Number, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// A post id: a non-negative whole number, written as a number or as text.
pub fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Number::deserialize(deserializer)?
        .as_u64()
        .ok_or_else(|| de::Error::custom("a post id that is not a non-negative whole number"))
}

/// A count (of posts, of tags); anything unusable is 0.
pub fn count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Ok(Number::deserialize(deserializer)?.as_u64().unwrap_or(0))
}

/// A pixel size; anything unusable is 0.
pub fn size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    Ok(Number::deserialize(deserializer)?.as_size())
}

/// A score, which may be negative or `null`; anything unusable is 0.
pub fn score<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    Ok(Number::deserialize(deserializer)?.as_i64())
}

/// A flag written as a boolean, 0/1 or text; anything unusable is `false`.
pub fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(Number::deserialize(deserializer)?.as_flag())
}

/// A tag category code, read as [`Number::as_code`] does.
pub fn code<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    Ok(Number::deserialize(deserializer)?.as_code())
}

/// Optional text, borrowed from the body when it holds no escapes; numbers are accepted as
/// their decimal text (some servers send `"directory": 4111`), `null` is `None`.
pub fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    deserializer.deserialize_any(TextVisitor)
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, a number or null")
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(value)))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(value)))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(value.to_string())))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(value.to_string())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Shared by the family adapters' tests: sites built through the real configuration path.
#[cfg(test)]
pub mod testing {
    use crate::config::Config;
    use crate::sources::Site;

    /// Tags that need percent-encoding, each with its form-encoded spelling.
    pub const AWKWARD_TAGS: [(&str, &str); 7] = [
        ("anya_(spy_x_family)", "anya_%28spy_x_family%29"),
        ("a b", "a+b"),
        ("a&b", "a%26b"),
        ("a#b", "a%23b"),
        ("100%", "100%25"),
        ("a+b", "a%2Bb"),
        ("アーニャ", "%E3%82%A2%E3%83%BC%E3%83%8B%E3%83%A3"),
    ];

    /// The built-in source `id` with `extra` TOML lines added to its table.
    pub fn site(id: &str, extra: &str) -> Site {
        let config = Config::from_toml(&format!("[sources.{id}]\n{extra}"))
            .expect("test configuration is valid");
        Site::new(id, &config.sources[id])
    }

    /// The built-in source `id` with its API under `base_url`.
    pub fn site_at(id: &str, base_url: &str) -> Site {
        site(id, &format!("base_url = \"{base_url}\""))
    }

    /// The value of query parameter `name`, decoded.
    pub fn param(url: &url::Url, name: &str) -> Option<String> {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_skips_whitespace_and_byte_order_mark() {
        assert_eq!(shape(b""), Shape::Empty);
        assert_eq!(shape(b" \r\n\t"), Shape::Empty);
        assert_eq!(shape(b"\xEF\xBB\xBF  [1]"), Shape::Array);
        assert_eq!(shape(b"\n{}"), Shape::Object);
        assert_eq!(shape(b"<?xml version=\"1.0\"?><posts/>"), Shape::Xml);
        assert_eq!(shape(b"  <!DOCTYPE html><html>"), Shape::Html);
        assert_eq!(shape(b"null"), Shape::Other);
    }

    #[test]
    fn html_where_data_was_expected_is_a_challenge() {
        let error = wrong_shape(shape(b"<html><body>Just a moment</body></html>"), "x");
        assert_eq!(error, UpstreamError::Challenge { status: 200 });
    }

    #[test]
    fn json_errors_do_not_repeat_upstream_text() {
        let error = serde_json::from_str::<Vec<u32>>(r#"["https://secret.example/x"]"#)
            .expect_err("a string is not a number");
        let message = json_error("list", &error).to_string();
        assert!(!message.contains("secret.example"), "{message}");
        assert!(message.contains("invalid type"), "{message}");
    }

    #[test]
    fn truncated_json_is_reported_as_truncated() {
        let error = serde_json::from_str::<Vec<u32>>("[1, 2").expect_err("truncated");
        let error = json_error("list", &error);
        assert!(error.to_string().contains("truncated"), "{error}");
        assert!(matches!(error, UpstreamError::Malformed { .. }));
    }

    #[test]
    fn md5_must_be_32_hex_digits_and_comes_out_lowercase() {
        let upper = "DC123EEC97D06C3AA9CD53D65A2C7ABF";
        assert_eq!(md5(Some(upper)), Some(upper.to_ascii_lowercase()));
        assert_eq!(
            md5(Some(" dc123eec97d06c3aa9cd53d65a2c7abf ")).as_deref(),
            Some(&upper.to_ascii_lowercase()[..])
        );
        assert_eq!(md5(Some("dc123eec97d06c3aa9cd53d65a2c7ab")), None);
        assert_eq!(md5(Some("zc123eec97d06c3aa9cd53d65a2c7abf")), None);
        assert_eq!(md5(Some("")), None);
        assert_eq!(md5(None), None);
    }

    #[test]
    fn ratings_map_codes_and_words_and_read_the_unknown_as_explicit() {
        let cases = [
            ("g", Rating::General),
            ("general", Rating::General),
            ("sensitive", Rating::Sensitive),
            ("q", Rating::Questionable),
            ("Questionable", Rating::Questionable),
            ("e", Rating::Explicit),
            ("explicit", Rating::Explicit),
            ("x", Rating::Explicit),
            ("", Rating::Explicit),
        ];
        for (raw, expected) in cases {
            assert_eq!(rating(Some(raw), Rating::General), expected, "{raw:?}");
        }
        assert_eq!(rating(None, Rating::General), Rating::Explicit);
        assert_eq!(rating(Some("s"), Rating::General), Rating::General);
        assert_eq!(rating(Some("safe"), Rating::Sensitive), Rating::Sensitive);
    }

    #[test]
    fn numbers_are_read_leniently() {
        #[derive(Deserialize)]
        struct Sample {
            #[serde(deserialize_with = "id")]
            id: u64,
            #[serde(deserialize_with = "size")]
            width: u32,
            #[serde(deserialize_with = "score")]
            score: i64,
            #[serde(deserialize_with = "flag")]
            sample: bool,
        }
        let parse = |json: &str| {
            serde_json::from_str::<Sample>(json).map(|s| (s.id, s.width, s.score, s.sample))
        };
        let text = r#"{"id":"7","width":"640","score":"-3","sample":"true"}"#;
        assert_eq!(parse(text).expect("strings"), (7, 640, -3, true));
        let odd = r#"{"id":7.0,"width":-1,"score":null,"sample":1}"#;
        assert_eq!(parse(odd).expect("odd values"), (7, 0, 0, true));
        let junk = r#"{"id":7,"width":"wide","score":2.9,"sample":"nope"}"#;
        assert_eq!(parse(junk).expect("junk values"), (7, 0, 2, false));
        assert!(parse(r#"{"id":"seven","width":1,"score":1,"sample":1}"#).is_err());
        assert!(parse(r#"{"id":-7,"width":1,"score":1,"sample":1}"#).is_err());
    }

    #[test]
    fn text_borrows_when_it_can_and_accepts_numbers() {
        #[derive(Deserialize)]
        struct Sample<'a> {
            #[serde(borrow, deserialize_with = "text")]
            plain: Option<Cow<'a, str>>,
            #[serde(borrow, deserialize_with = "text")]
            escaped: Option<Cow<'a, str>>,
            #[serde(borrow, deserialize_with = "text")]
            number: Option<Cow<'a, str>>,
            #[serde(borrow, deserialize_with = "text")]
            null: Option<Cow<'a, str>>,
        }
        let json = r#"{"plain":"a_b","escaped":"a\u0026b","number":4111,"null":null}"#;
        let sample: Sample = serde_json::from_str(json).expect("valid");
        assert!(matches!(sample.plain, Some(Cow::Borrowed("a_b"))));
        assert_eq!(sample.escaped.as_deref(), Some("a&b"));
        assert_eq!(sample.number.as_deref(), Some("4111"));
        assert_eq!(sample.null, None);
    }

    #[test]
    fn error_reasons_come_from_json_and_xml_bodies() {
        let json = br#"{"success":false,"reason":"Error:   too\nmany tags"}"#;
        assert_eq!(error_reason(json).as_deref(), Some("Error: too many tags"));
        let xml = br#"<?xml version="1.0"?><response success="false" reason="search down"/>"#;
        assert_eq!(error_reason(xml).as_deref(), Some("search down"));
        let element = b"<error>Missing authentication. Go away &amp; log in</error>";
        let expected = "Missing authentication. Go away & log in";
        assert_eq!(error_reason(element).as_deref(), Some(expected));
        assert_eq!(error_reason(b"[]"), None);
        assert_eq!(error_reason(b"<!DOCTYPE html><html></html>"), None);
        assert_eq!(error_reason(br#"{"message":""}"#), None);
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(1000));
        let reason = error_reason(long.as_bytes()).expect("a reason");
        assert!(reason.chars().count() <= REASON_CHARS + 3);
    }

    #[test]
    fn upstream_urls_are_made_absolute_against_the_base_and_its_prefix() {
        let site = testing::site_at("konachan", "http://127.0.0.1:9000/konachan");
        let cases = [
            (
                "/data/preview/x.jpg",
                Some("http://127.0.0.1:9000/konachan/data/preview/x.jpg"),
            ),
            (
                "data/preview/x.jpg",
                Some("http://127.0.0.1:9000/konachan/data/preview/x.jpg"),
            ),
            ("//konachan.net/x.jpg", Some("http://konachan.net/x.jpg")),
            (
                "https://konachan.net/a%20b.jpg",
                Some("https://konachan.net/a%20b.jpg"),
            ),
            (
                "HTTP://konachan.net/x.jpg",
                Some("HTTP://konachan.net/x.jpg"),
            ),
            ("  ", None),
            ("", None),
            ("javascript:alert(1)", None),
            ("data:image/png;base64,AAAA", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(site.absolute_url(raw).as_deref(), expected, "{raw:?}");
        }
        let root = testing::site_at("konachan", "https://konachan.net/");
        assert_eq!(root.join("post/show/1"), "https://konachan.net/post/show/1");
        assert_eq!(
            root.absolute_url("/x.jpg").as_deref(),
            Some("https://konachan.net/x.jpg")
        );
    }

    #[test]
    fn restricted_posts_are_counted_not_kept() {
        let post = |md5: Option<&str>, file: Option<&str>| Post {
            source: "danbooru".into(),
            id: 1,
            md5: md5.map(str::to_owned),
            file_url: file.map(str::to_owned),
            sample_url: None,
            preview_url: None,
            width: 0,
            height: 0,
            rating: Rating::General,
            score: 0,
            tags: Tags::default(),
            post_url: String::new(),
        };
        let posts = [
            post(None, None),
            post(Some("0bddcf135c86b95de0fedf008254a1f2"), None),
            post(None, Some("https://x/y.jpg")),
        ];
        let page = page(posts, Some(3));
        assert_eq!(
            (page.posts.len(), page.skipped, page.total),
            (2, 1, Some(3))
        );
    }
}

/// Whatever an upstream sends, no parser may panic: arbitrary bytes, damaged fixtures and
/// token soup go through every family's every parser.
#[cfg(test)]
mod never_panics {
    use std::sync::LazyLock;

    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::testing;
    use crate::sources::Site;

    const FIXTURES: [&str; 14] = [
        include_str!("../../tests/fixtures/danbooru/posts.json"),
        include_str!("../../tests/fixtures/danbooru/posts_2020.json"),
        include_str!("../../tests/fixtures/danbooru/post_by_id.json"),
        include_str!("../../tests/fixtures/danbooru/tags_order_count.json"),
        include_str!("../../tests/fixtures/danbooru/tags_default_order_2017.json"),
        include_str!("../../tests/fixtures/gelbooru/posts.json"),
        include_str!("../../tests/fixtures/gelbooru/post_by_id.json"),
        include_str!("../../tests/fixtures/gelbooru/posts_legacy_2017.xml"),
        include_str!("../../tests/fixtures/gelbooru/tags_names.json"),
        include_str!("../../tests/fixtures/safebooru/post_by_id.json"),
        include_str!("../../tests/fixtures/konachan/posts.json"),
        include_str!("../../tests/fixtures/konachan/post_by_id.json"),
        include_str!("../../tests/fixtures/yandere/post.json"),
        include_str!("../../tests/fixtures/yandere/post_api_v2_650982_with_pool.json"),
    ];

    /// Pieces of the families' JSON and XML, so random bodies often look almost right.
    const TOKENS: [&str; 32] = [
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        "\"",
        "null",
        "true",
        "0",
        "-1",
        "1e999",
        "18446744073709551616",
        "\"id\"",
        "\"md5\"",
        "\"hash\"",
        "\"post\"",
        "\"posts\"",
        "\"@attributes\"",
        "\"count\"",
        "\"file_url\"",
        "\"//x\"",
        "\"\\u0026\"",
        "\"directory\"",
        "\"image\"",
        "\"rating\"",
        "<posts",
        " count=\"",
        "/>",
        "<post id=\"1\"",
        "</posts>",
        "&amp;",
    ];

    static SITES: LazyLock<Vec<Site>> = LazyLock::new(|| {
        ["danbooru", "gelbooru", "safebooru", "yandere"]
            .into_iter()
            .map(|id| testing::site(id, ""))
            .collect()
    });

    fn every_parser(body: &[u8]) {
        for site in SITES.iter() {
            let _ = site.parse_posts(body);
            let _ = site.parse_tags(body);
            let _ = site.parse_count(body);
            let _ = site.parse_aliases(body);
            for status in [400, 401, 403, 404, 410, 421, 422, 424, 429, 500, 503] {
                let _ = site.error_for(status, body);
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            every_parser(&body);
        }

        #[test]
        fn token_soup(tokens in proptest::collection::vec(proptest::sample::select(&TOKENS[..]), 0..48)) {
            every_parser(tokens.concat().as_bytes());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn damaged_fixtures(
            fixture in proptest::sample::select(&FIXTURES[..]),
            edits in proptest::collection::vec((any::<Index>(), any::<u8>()), 0..6),
            cut in any::<Index>(),
        ) {
            let mut body = fixture.as_bytes().to_vec();
            for (at, byte) in edits {
                let at = at.index(body.len());
                body[at] = byte;
            }
            body.truncate(cut.index(body.len() + 1));
            every_parser(&body);
        }
    }
}
