//! The three API families: each turns one request to one source into a reply, from the
//! source's data alone, with no I/O.
//!
//! Shared here: the request and reply types, `limit` clamping, XML and JSON assembly, and
//! what every generated post derives from its image (file extension, sizes, timestamps,
//! URLs under the simulator's own address).

pub(crate) mod danbooru;
pub(crate) mod gelbooru;
pub(crate) mod moebooru;

use serde_json::{Map, Value};

use crate::catalog::SourceData;
use crate::post::{Post, PostBody, PostSpec, mix};
use crate::world::SimFamily;

/// One request to a source, as the families see it.
#[derive(Debug)]
pub(crate) struct SourceRequest<'a> {
    pub source: &'a SourceData,
    /// The path after the source prefix, e.g. `/posts.json`.
    pub path: &'a str,
    /// The decoded query parameters, in order.
    pub params: &'a [(String, String)],
    /// `http://127.0.0.1:PORT/<source>`, the root of generated URLs.
    pub base_url: &'a str,
}

impl SourceRequest<'_> {
    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        let found = self.params.iter().find(|(key, _)| key == name);
        found.map(|(_, value)| value.as_str())
    }

    /// The page size: the requested `limit` (else the family default), clamped to
    /// `1..=max_limit` like the real servers do silently.
    pub fn page_size(&self, requested: Option<u32>) -> usize {
        let asked = requested.or_else(|| self.param("limit")?.trim().parse().ok());
        let limit = asked.unwrap_or(self.source.family.default_limit());
        limit.clamp(1, self.source.max_limit) as usize
    }

    /// A URL for a generated post's file; with [`relative_urls`] on, a third of the posts
    /// get a path relative to the base URL and a third a protocol-relative URL.
    ///
    /// [`relative_urls`]: crate::SimSource::relative_urls
    pub fn link(&self, post_id: u64, path: &str) -> String {
        match (self.source.relative_urls, post_id % 3) {
            (true, 0) => path.to_owned(),
            (true, 1) => format!("{}{path}", self.base_url.trim_start_matches("http:")),
            _ => format!("{}{path}", self.base_url),
        }
    }
}

/// A complete answer: status, media type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

/// The media type of JSON answers.
pub(crate) const JSON: &str = "application/json; charset=utf-8";
/// The media type of XML answers.
pub(crate) const XML: &str = "application/xml; charset=utf-8";
/// The media type of HTML error pages.
pub(crate) const HTML: &str = "text/html; charset=utf-8";

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: JSON,
            body,
        }
    }

    /// An XML answer.
    pub fn xml(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: XML,
            body,
        }
    }

    /// An HTML answer.
    pub fn html(status: u16, body: &str) -> Reply {
        Reply {
            status,
            content_type: HTML,
            body: body.to_owned(),
        }
    }
}

/// Answers a request in its source's family.
pub(crate) fn answer(request: &SourceRequest) -> Reply {
    match request.source.family {
        SimFamily::Danbooru => danbooru::answer(request),
        SimFamily::Gelbooru | SimFamily::GelbooruV02 => gelbooru::answer(request),
        SimFamily::Moebooru => moebooru::answer(request),
    }
}

/// A JSON array of already-serialised items.
pub(crate) fn json_array(items: impl Iterator<Item = String>) -> String {
    let mut out = String::from("[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out.push(']');
    out
}

/// Serialises a value the simulator built itself; that cannot fail.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("simulator values serialise")
}

/// A post's JSON: the recorded text, or `generated` applied to the image and spec.
pub(crate) fn post_json(post: &Post, generated: impl Fn(u64, &PostSpec) -> String) -> String {
    match &post.body {
        PostBody::Recorded(raw) => raw.get().to_owned(),
        PostBody::Generated { image, spec } => generated(*image, spec),
    }
}

/// Escapes text for an XML attribute or element.
pub(crate) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The scalar fields of a post's JSON object as `(name, text)` pairs for XML; arrays and
/// objects are left out, `null` becomes an empty string.
pub(crate) fn scalar_fields(json: &str) -> Vec<(String, String)> {
    let fields: Map<String, Value> = serde_json::from_str(json).unwrap_or_default();
    let text = |value: &Value| match value {
        Value::String(s) => Some(s.clone()),
        Value::Null => Some(String::new()),
        Value::Bool(_) | Value::Number(_) => Some(value.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    };
    (fields.iter())
        .filter_map(|(name, value)| Some((name.clone(), text(value)?)))
        .collect()
}

/// `<name a="1" b="2"/>` from attribute pairs.
pub(crate) fn xml_empty_element(name: &str, attributes: &[(String, String)]) -> String {
    let mut out = format!("<{name}");
    for (key, value) in attributes {
        out.push_str(&format!(" {key}=\"{}\"", xml_escape(value)));
    }
    out.push_str("/>");
    out
}

/// The XML declaration every XML answer starts with.
pub(crate) const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// What a generated post's files look like, derived from its image and spec.
#[derive(Debug, Clone)]
pub(crate) struct Media {
    pub ext: &'static str,
    pub file_size: u64,
    /// Unix seconds; grows with the post id so newer posts are younger.
    pub created: i64,
    pub width: u32,
    pub height: u32,
}

/// Spy x Family's anime premiere, where generated timelines start.
const EPOCH: i64 = 1_648_771_200;

impl Media {
    /// The media of generated post `post_id` showing `image`.
    pub fn of(post_id: u64, image: u64, spec: &PostSpec) -> Media {
        let h = mix(image ^ 0x6d65_6469);
        let pixels = u64::from(spec.width) * u64::from(spec.height);
        Media {
            ext: if h % 5 == 0 { "png" } else { "jpg" },
            file_size: pixels / 4 + h % 100_000,
            created: EPOCH + (post_id % 1_000_000) as i64 * 1800,
            width: spec.width,
            height: spec.height,
        }
    }

    /// The size scaled to fit `bound` pixels on its longer side; never enlarged.
    pub fn fit(&self, bound: u32) -> (u32, u32) {
        let longer = self.width.max(self.height).max(1);
        if longer <= bound {
            return (self.width, self.height);
        }
        let scale = |side: u32| (u64::from(side) * u64::from(bound) / u64::from(longer)) as u32;
        (scale(self.width).max(1), scale(self.height).max(1))
    }

    /// The size of an 850-px-wide sample, when the original is wider than that.
    pub fn sample_850(&self) -> Option<(u32, u32)> {
        (self.width > 850).then(|| {
            let height = u64::from(self.height) * 850 / u64::from(self.width);
            (850, height as u32)
        })
    }
}

/// Percent-encodes a file-name part, keeping only unreserved characters.
pub(crate) fn encode_name(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_and_samples_keep_aspect() {
        let spec = PostSpec {
            width: 1000,
            height: 2000,
            ..PostSpec::default()
        };
        let media = Media::of(1, 1, &spec);
        assert_eq!(media.fit(150), (75, 150));
        assert_eq!(media.sample_850(), Some((850, 1700)));
        assert_eq!(encode_name("a b(c)"), "a%20b%28c%29");
        assert_eq!(xml_escape(r#"<a&"b">"#), "&lt;a&amp;&quot;b&quot;&gt;");
    }
}
