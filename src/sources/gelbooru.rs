//! The Gelbooru family, both flavours: Gelbooru 0.2.5 (gelbooru.com, JSON inside an
//! `@attributes` envelope) and Gelbooru 0.2 (safebooru.org, tbib.org, bare JSON arrays).
//!
//! One parser reads both: it accepts the envelope, the bare array and the XML post list
//! whichever flavour is configured. The flavours differ only where the servers do: an empty
//! body is "no results" on 0.2 but a broken answer on 0.2.5, and 0.2 posts may lack file URLs,
//! which are then built from `directory` + `image`. The XML count reader here also serves the
//! Moebooru family, whose `/post.xml` has the same `<posts count=..>` root.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use url::Url;

use super::fields::{self, Number, RawTag, Shape};
use super::{Family, Site, UpstreamError};
use crate::model::{Post, PostPage, Rating, TagCandidate};

/// Most tags one tag search may return.
const MAX_TAG_LIMIT: u32 = 1000;

const EXPECTED_POSTS: &str = "Gelbooru post list (JSON envelope, JSON array or XML)";
const EXPECTED_TAGS: &str = "Gelbooru tag list (JSON or XML)";
const EXPECTED_COUNT: &str = "XML post count (<posts count=\"N\">)";

/// The tags whose names contain `word` (an SQL `LIKE` pattern around it), most used first.
pub fn tags_url(site: &Site, word: &str, limit: u32) -> Url {
    let pattern = format!("%{word}%");
    let limit = limit.clamp(1, MAX_TAG_LIMIT).to_string();
    site.api_url(
        "index.php",
        &[
            ("page", "dapi"),
            ("s", "tag"),
            ("q", "index"),
            ("json", "1"),
            ("name_pattern", &pattern),
            ("orderby", "count"),
            ("order", "DESC"),
            ("limit", &limit),
        ],
    )
}

/// Parses a tag-search body in any form the family sends: the envelope
/// `{"@attributes":..,"tag":[..]}`, `{"tag":[..]}`, a bare array, XML `<tags><tag/></tags>`,
/// or an empty body, which means no tags.
pub fn parse_tags(body: &[u8]) -> Result<Vec<TagCandidate>, UpstreamError> {
    match fields::shape(body) {
        Shape::Empty => Ok(Vec::new()),
        Shape::Array => fields::tag_array(body, EXPECTED_TAGS),
        Shape::Object => json_tags(body),
        Shape::Xml => xml_tags(body),
        other => Err(fields::wrong_shape(other, EXPECTED_TAGS)),
    }
}

fn json_tags(body: &[u8]) -> Result<Vec<TagCandidate>, UpstreamError> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(rename = "@attributes", default)]
        attributes: Option<IgnoredAny>,
        #[serde(default, borrow)]
        tag: Option<OneOrMany<RawTag<'a>>>,
    }

    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|error| fields::json_error(EXPECTED_TAGS, &error))?;
    // An object with neither key is an error object, not an empty result.
    if envelope.attributes.is_none() && envelope.tag.is_none() {
        return Err(UpstreamError::malformed(
            EXPECTED_TAGS,
            "the object has neither @attributes nor tag",
        ));
    }
    let tags = envelope.tag.unwrap_or_default().0;
    Ok(tags
        .into_iter()
        .filter_map(RawTag::into_candidate)
        .collect())
}

fn xml_tags(body: &[u8]) -> Result<Vec<TagCandidate>, UpstreamError> {
    let mut reader = Reader::from_reader(body);
    let (root, empty) = fields::xml_root(&mut reader)?;
    match root.local_name().as_ref() {
        b"tags" => {}
        b"response" | b"error" => return Err(xml_refusal(None, body)),
        _ => {
            return Err(UpstreamError::malformed(
                EXPECTED_TAGS,
                "the root is not <tags>",
            ));
        }
    }
    let mut tags = Vec::new();
    if !empty {
        xml_children(&mut reader, b"tag", |element| {
            let raw = RawTag {
                name: fields::xml_attribute(element, b"name")?,
                count: xml_number(element, b"count")?.as_u64().unwrap_or(0),
                r#type: xml_number(element, b"type")?.as_code(),
            };
            tags.extend(raw.into_candidate());
            Ok(())
        })?;
    }
    Ok(tags)
}

/// Page `page` (1-based) of posts tagged `tag`; the site counts pages from 0 (`pid`).
///
/// `limit` is kept within 1 and the flavour's largest page (100 on 0.2.5, 1000 on 0.2).
pub fn posts_url(site: &Site, tag: &str, page: u32, limit: u32) -> Url {
    let pid = page.saturating_sub(1).to_string();
    let limit = limit.clamp(1, site.family.max_page_size()).to_string();
    site.api_url(
        "index.php",
        &[
            ("page", "dapi"),
            ("s", "post"),
            ("q", "index"),
            ("json", "1"),
            ("tags", tag),
            ("limit", &limit),
            ("pid", &pid),
        ],
    )
}

/// A post as either flavour describes it, in JSON or as XML attributes.
#[derive(Default, Deserialize)]
struct RawPost<'a> {
    #[serde(deserialize_with = "fields::id")]
    id: u64,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    md5: Option<Cow<'a, str>>,
    /// Gelbooru 0.2's JSON name for the MD5.
    #[serde(default, borrow, deserialize_with = "fields::text")]
    hash: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    file_url: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    sample_url: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    preview_url: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    directory: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    image: Option<Cow<'a, str>>,
    /// Whether a sample exists; 0.2 builds sample URLs only when it does.
    #[serde(default, deserialize_with = "fields::flag")]
    sample: bool,
    #[serde(default, deserialize_with = "fields::size")]
    width: u32,
    #[serde(default, deserialize_with = "fields::size")]
    height: u32,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    rating: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "fields::score")]
    score: i64,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    tags: Option<Cow<'a, str>>,
}

impl RawPost<'_> {
    fn into_post(self, site: &Site) -> Post {
        let (file_url, sample_url, preview_url) = self.urls(site);
        let md5 = fields::md5(self.md5.as_deref()).or_else(|| fields::md5(self.hash.as_deref()));
        Post {
            source: site.id.clone(),
            id: self.id,
            md5,
            file_url,
            sample_url,
            preview_url,
            width: self.width,
            height: self.height,
            // Gelbooru 0.2 and the 2017 XML say `safe`/`s` for the all-ages level.
            rating: fields::rating(self.rating.as_deref(), Rating::General),
            score: self.score,
            tags: fields::tags(self.tags.as_deref()),
            post_url: site.join(&format!("index.php?page=post&s=view&id={}", self.id)),
        }
    }

    /// The file, sample and preview URLs: as given, else built from `directory` + `image`
    /// the way Gelbooru 0.2 stores files (samples and thumbnails are always JPEG).
    fn urls(&self, site: &Site) -> (Option<String>, Option<String>, Option<String>) {
        let given = |raw: &Option<Cow<str>>| raw.as_deref().and_then(|raw| site.absolute_url(raw));
        let stored = self.stored();
        let build = |path: String| Some(site.join(&path));
        let file = given(&self.file_url)
            .or_else(|| stored.and_then(|(dir, image, _)| build(format!("images/{dir}/{image}"))));
        let sample = given(&self.sample_url).or_else(|| {
            let (dir, _, stem) = stored.filter(|_| self.sample)?;
            build(format!("samples/{dir}/sample_{stem}.jpg"))
        });
        let preview = given(&self.preview_url).or_else(|| {
            let (dir, _, stem) = stored?;
            build(format!("thumbnails/{dir}/thumbnail_{stem}.jpg"))
        });
        (file, sample, preview)
    }

    /// `directory`, `image` and the image's name without its extension, when both are given.
    fn stored(&self) -> Option<(&str, &str, &str)> {
        let directory = self
            .directory
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())?;
        let image = self
            .image
            .as_deref()
            .map(str::trim)
            .filter(|i| !i.is_empty())?;
        let stem = image.rsplit_once('.').map_or(image, |(stem, _)| stem);
        Some((directory, image, stem))
    }
}

/// Parses a page of posts: the 0.2.5 envelope (whose `count` becomes [`PostPage::total`];
/// without a `post` key it holds no posts; `post` may be a single object), a bare 0.2 array,
/// or an XML post list with attributes (the 2017 form, `count` on the root).
///
/// An empty body means no results on Gelbooru 0.2, which answers an empty search that way;
/// from gelbooru.com it is an overloaded server's broken answer, so an error worth retrying.
/// Gelbooru 0.2 overloads the same way, which only the paging can tell from "no results":
/// it knows the count, and fails an empty page the count says holds posts.
/// XML posts written as child elements (the current XML form) are not read: the service
/// always asks for JSON.
pub fn parse_posts(site: &Site, body: &[u8]) -> Result<PostPage, UpstreamError> {
    match fields::shape(body) {
        Shape::Empty if site.family == Family::GelbooruV02 => Ok(PostPage::default()),
        Shape::Object => json_envelope(site, body),
        Shape::Array => json_array(site, body),
        Shape::Xml => xml_posts(site, body),
        other => Err(fields::wrong_shape(other, EXPECTED_POSTS)),
    }
}

fn json_envelope(site: &Site, body: &[u8]) -> Result<PostPage, UpstreamError> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        /// Required: an object without it is an error object, not an empty result.
        #[serde(rename = "@attributes")]
        attributes: Attributes,
        #[serde(default, borrow)]
        post: OneOrMany<RawPost<'a>>,
    }
    #[derive(Deserialize)]
    struct Attributes {
        #[serde(default)]
        count: Option<Number>,
    }

    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|error| fields::json_error(EXPECTED_POSTS, &error))?;
    let total = envelope.attributes.count.and_then(Number::as_u64);
    let posts = envelope.post.0.into_iter().map(|post| post.into_post(site));
    Ok(fields::page(posts, total))
}

fn json_array(site: &Site, body: &[u8]) -> Result<PostPage, UpstreamError> {
    let posts: Vec<RawPost> =
        serde_json::from_slice(body).map_err(|error| fields::json_error(EXPECTED_POSTS, &error))?;
    Ok(fields::page(
        posts.into_iter().map(|post| post.into_post(site)),
        None,
    ))
}

fn xml_posts(site: &Site, body: &[u8]) -> Result<PostPage, UpstreamError> {
    let mut reader = Reader::from_reader(body);
    let (root, empty) = fields::xml_root(&mut reader)?;
    match root.local_name().as_ref() {
        b"posts" => {}
        b"response" | b"error" => return Err(xml_refusal(Some(site), body)),
        _ => {
            return Err(UpstreamError::malformed(
                EXPECTED_POSTS,
                "the root is not <posts>",
            ));
        }
    }
    let total = xml_count(&root)?;
    let mut posts = Vec::new();
    if !empty {
        xml_children(&mut reader, b"post", |element| {
            posts.push(xml_post(element)?.into_post(site));
            Ok(())
        })?;
    }
    Ok(fields::page(posts, total))
}

/// A post written as the attributes of one `<post/>` element.
fn xml_post<'e>(element: &'e BytesStart<'_>) -> Result<RawPost<'e>, UpstreamError> {
    let mut raw = RawPost::default();
    let mut id = None;
    for attribute in element.attributes() {
        let attribute = attribute.map_err(|error| UpstreamError::malformed("XML post", error))?;
        let value = attribute
            .unescape_value()
            .map_err(|error| UpstreamError::malformed("XML post", error))?;
        match attribute.key.local_name().as_ref() {
            b"id" => id = Number::parse(&value).as_u64(),
            b"md5" => raw.md5 = Some(value),
            b"hash" => raw.hash = Some(value),
            b"file_url" => raw.file_url = Some(value),
            b"sample_url" => raw.sample_url = Some(value),
            b"preview_url" => raw.preview_url = Some(value),
            b"directory" => raw.directory = Some(value),
            b"image" => raw.image = Some(value),
            b"sample" => raw.sample = Number::parse(&value).as_flag(),
            b"width" => raw.width = Number::parse(&value).as_size(),
            b"height" => raw.height = Number::parse(&value).as_size(),
            b"rating" => raw.rating = Some(value),
            b"score" => raw.score = Number::parse(&value).as_i64(),
            b"tags" => raw.tags = Some(value),
            _ => {}
        }
    }
    raw.id = id.ok_or_else(|| UpstreamError::malformed("XML post", "a post has no usable id"))?;
    Ok(raw)
}

/// Calls `each` for every child element of the current element named `name`, up to the
/// current element's end; other children and their contents are skipped.
fn xml_children<'a>(
    reader: &mut Reader<&'a [u8]>,
    name: &[u8],
    mut each: impl FnMut(&BytesStart<'a>) -> Result<(), UpstreamError>,
) -> Result<(), UpstreamError> {
    loop {
        let event = reader
            .read_event()
            .map_err(|error| UpstreamError::malformed("XML document", error))?;
        match event {
            Event::Empty(element) if element.local_name().as_ref() == name => each(&element)?,
            Event::Start(element) => {
                if element.local_name().as_ref() == name {
                    each(&element)?;
                }
                reader
                    .read_to_end(element.name())
                    .map_err(|error| UpstreamError::malformed("XML document", error))?;
            }
            Event::End(_) => return Ok(()),
            Event::Eof => {
                return Err(UpstreamError::malformed(
                    "XML document",
                    "the body ends before the root element closes (truncated)",
                ));
            }
            _ => {}
        }
    }
}

/// The number in attribute `key` of `element`; [`Number::Nothing`] when it is absent.
fn xml_number(element: &BytesStart<'_>, key: &[u8]) -> Result<Number, UpstreamError> {
    let value = fields::xml_attribute(element, key)?;
    Ok(value.map_or(Number::Nothing, |value| Number::parse(&value)))
}

/// The `count` attribute of a `<posts>` root: absent is `None`, not a number is an error.
fn xml_count(root: &BytesStart<'_>) -> Result<Option<u64>, UpstreamError> {
    match fields::xml_attribute(root, b"count")? {
        None => Ok(None),
        Some(text) => Number::parse(&text).as_u64().map(Some).ok_or_else(|| {
            UpstreamError::malformed(EXPECTED_COUNT, "the count is not a whole number")
        }),
    }
}

/// The URL whose XML answer counts the posts tagged `tag` (the JSON list has no count on
/// Gelbooru 0.2); one post is asked for because the count is all that is read.
pub fn count_url(site: &Site, tag: &str) -> Url {
    site.api_url(
        "index.php",
        &[
            ("page", "dapi"),
            ("s", "post"),
            ("q", "index"),
            ("tags", tag),
            ("limit", "1"),
        ],
    )
}

/// Reads the total from an XML post list, `<posts count="N" ...>`, with or without children;
/// Gelbooru 0.2 and Moebooru both answer this way. An error document
/// (`<response success="false" reason=..>` or `<error>..</error>`) is an error.
pub fn parse_xml_count(body: &[u8]) -> Result<u64, UpstreamError> {
    let found = fields::shape(body);
    if found != Shape::Xml {
        return Err(fields::wrong_shape(found, EXPECTED_COUNT));
    }
    let mut reader = Reader::from_reader(body);
    let (root, _) = fields::xml_root(&mut reader)?;
    match root.local_name().as_ref() {
        b"posts" => xml_count(&root)?.ok_or_else(|| {
            UpstreamError::malformed(EXPECTED_COUNT, "the posts element has no count")
        }),
        b"response" | b"error" => Err(xml_refusal(None, body)),
        _ => Err(UpstreamError::malformed(
            EXPECTED_COUNT,
            "the root is not <posts>",
        )),
    }
}

/// The error an XML error document sent with HTTP 200 means.
fn xml_refusal(site: Option<&Site>, body: &[u8]) -> UpstreamError {
    let reason = fields::error_reason(body).unwrap_or_else(|| "the site gave no reason".into());
    match site {
        Some(site) if mentions_credentials(&reason) => credentials_error(site),
        None if mentions_credentials(&reason) => {
            UpstreamError::Auth(format!("the site wants a user_id and api_key: {reason}"))
        }
        _ => UpstreamError::Rejected {
            status: 200,
            reason,
        },
    }
}

fn mentions_credentials(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    ["authentication", "api_key", "api key", "user_id"]
        .iter()
        .any(|word| reason.contains(word))
}

/// The error for a refused or missing account, naming the source and the keys to set.
fn credentials_error(site: &Site) -> UpstreamError {
    let id = &site.id;
    UpstreamError::Auth(match site.credentials {
        None => format!(
            "{id} needs a user_id and api_key (set sources.{id}.user_id and sources.{id}.api_key)"
        ),
        Some(_) => format!("{id} refused the configured user_id and api_key"),
    })
}

/// Reads a non-success answer: any 401 is a credentials problem (gelbooru.com answers a
/// missing or wrong key with 401 and the body `[]`); otherwise the site's reason, if it gave
/// one in JSON or XML.
pub fn error_for(site: &Site, status: u16, body: &[u8]) -> UpstreamError {
    if status == 401 {
        return credentials_error(site);
    }
    let reason = fields::error_reason(body);
    if reason.as_deref().is_some_and(mentions_credentials) {
        return credentials_error(site);
    }
    UpstreamError::Rejected {
        status,
        reason: reason.unwrap_or_else(|| match status {
            403 => "access denied".to_owned(),
            404 => "no such page; check the source's base_url".to_owned(),
            _ => "the site gave no reason".to_owned(),
        }),
    }
}

/// A list the site may send as an array, as a single object, or as `null`.
struct OneOrMany<T>(Vec<T>);

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OneOrManyVisitor(PhantomData))
    }
}

struct OneOrManyVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrManyVisitor<T> {
    type Value = OneOrMany<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array, an object or null")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // The hint comes from the upstream; it sizes the first allocation, not a promise.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(OneOrMany(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let item = T::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(OneOrMany(vec![item]))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(OneOrMany(Vec::new()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(OneOrMany(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TagCategory;
    use crate::sources::fields::testing::{AWKWARD_TAGS, param, site, site_at};

    const POSTS: &str = include_str!("../../tests/fixtures/gelbooru/posts.json");
    const POST_BY_ID: &str = include_str!("../../tests/fixtures/gelbooru/post_by_id.json");
    const LEGACY_XML: &str = include_str!("../../tests/fixtures/gelbooru/posts_legacy_2017.xml");
    const TAG_NAMES: &str = include_str!("../../tests/fixtures/gelbooru/tags_names.json");
    const SAFEBOORU_POST: &str = include_str!("../../tests/fixtures/safebooru/post_by_id.json");

    const MD5: &str = "9e3bfd305e74bc084b488fde96c4fcf1";

    fn gelbooru() -> Site {
        site("gelbooru", "")
    }

    fn safebooru() -> Site {
        site("safebooru", "")
    }

    fn parse(site: &Site, body: &str) -> PostPage {
        parse_posts(site, body.as_bytes()).expect("parses")
    }

    /// The one post of `post_by_id.json` as a JSON object on its own.
    fn single_post_object() -> String {
        let start = POST_BY_ID.find("[").expect("an array") + 1;
        let end = POST_BY_ID.rfind("]").expect("an array");
        POST_BY_ID[start..end].trim().to_owned()
    }

    #[test]
    fn tag_search_url_uses_a_like_pattern_and_count_order() {
        let site = site_at("gelbooru", "http://127.0.0.1:9000/gelbooru");
        let url = tags_url(&site, "anya", 50);
        assert_eq!(url.path(), "/gelbooru/index.php");
        let expected = [
            ("page", "dapi"),
            ("s", "tag"),
            ("q", "index"),
            ("json", "1"),
            ("name_pattern", "%anya%"),
            ("orderby", "count"),
            ("order", "DESC"),
            ("limit", "50"),
        ];
        for (name, value) in expected {
            assert_eq!(param(&url, name).as_deref(), Some(value), "{name}");
        }
        assert_eq!(
            param(&tags_url(&site, "anya", 0), "limit").as_deref(),
            Some("1")
        );
    }

    #[test]
    fn posts_url_counts_pages_from_zero() {
        let site = site_at("safebooru", "http://127.0.0.1:9000/safebooru/");
        let url = posts_url(&site, "anya_(spy_x_family)", 1, 1000);
        assert_eq!(url.path(), "/safebooru/index.php");
        for (name, value) in [
            ("page", "dapi"),
            ("s", "post"),
            ("q", "index"),
            ("json", "1"),
        ] {
            assert_eq!(param(&url, name).as_deref(), Some(value), "{name}");
        }
        assert_eq!(param(&url, "tags").as_deref(), Some("anya_(spy_x_family)"));
        assert_eq!(param(&url, "pid").as_deref(), Some("0"));
        assert_eq!(param(&url, "limit").as_deref(), Some("1000"));
        assert_eq!(
            param(&posts_url(&site, "a", 7, 10), "pid").as_deref(),
            Some("6")
        );
        assert_eq!(
            param(&posts_url(&site, "a", 0, 10), "pid").as_deref(),
            Some("0")
        );
        let capped = posts_url(&gelbooru(), "a", 1, 1000);
        assert_eq!(
            param(&capped, "limit").as_deref(),
            Some("100"),
            "gelbooru.com serves 100"
        );
    }

    #[test]
    fn count_url_asks_for_xml_and_one_post() {
        let site = site_at("tbib", "http://127.0.0.1:9000/tbib");
        let url = count_url(&site, "spy_x_family");
        assert_eq!(url.path(), "/tbib/index.php");
        assert_eq!(param(&url, "json"), None);
        assert_eq!(param(&url, "limit").as_deref(), Some("1"));
        assert_eq!(param(&url, "tags").as_deref(), Some("spy_x_family"));
        assert_eq!(param(&url, "s").as_deref(), Some("post"));
    }

    #[test]
    fn awkward_tags_are_percent_encoded() {
        let site = gelbooru();
        for (tag, encoded) in AWKWARD_TAGS {
            let url = posts_url(&site, tag, 1, 100);
            assert!(
                url.as_str().contains(&format!("tags={encoded}&")),
                "{tag:?}: {url}"
            );
            assert_eq!(url.fragment(), None);
            assert_eq!(param(&url, "tags").as_deref(), Some(tag));
            assert_eq!(param(&count_url(&site, tag), "tags").as_deref(), Some(tag));
            let pattern = param(&tags_url(&site, tag, 5), "name_pattern");
            assert_eq!(pattern, Some(format!("%{tag}%")));
        }
    }

    #[test]
    fn credentials_go_on_every_request() {
        let site = site("gelbooru", "user_id = 12345\napi_key = \"peanuts\"");
        for url in [
            tags_url(&site, "anya", 10),
            posts_url(&site, "anya", 2, 100),
            count_url(&site, "anya"),
        ] {
            assert_eq!(param(&url, "user_id").as_deref(), Some("12345"), "{url}");
            assert_eq!(param(&url, "api_key").as_deref(), Some("peanuts"), "{url}");
        }
        assert_eq!(param(&posts_url(&gelbooru(), "a", 1, 1), "api_key"), None);
        assert_eq!(param(&posts_url(&safebooru(), "a", 1, 1), "api_key"), None);
    }

    #[test]
    fn recorded_envelope_parses_with_its_total() {
        let page = parse(&gelbooru(), POSTS);
        assert_eq!(
            (page.posts.len(), page.skipped, page.total),
            (10, 0, Some(6877))
        );
        let first = &page.posts[0];
        assert_eq!((&*first.source, first.id), ("gelbooru", 8333903));
        assert_eq!(
            first.md5.as_deref(),
            Some("9de2b8efd300f1aaf8ba84ce5d8205e1")
        );
        let host = "https://img3.gelbooru.com";
        let file = format!("{host}/images/9d/e2/9de2b8efd300f1aaf8ba84ce5d8205e1.jpg");
        assert_eq!(first.file_url.as_deref(), Some(&file[..]));
        let sample = format!("{host}/samples/9d/e2/sample_9de2b8efd300f1aaf8ba84ce5d8205e1.jpg");
        assert_eq!(first.sample_url.as_deref(), Some(&sample[..]));
        let preview =
            format!("{host}/thumbnails/9d/e2/thumbnail_9de2b8efd300f1aaf8ba84ce5d8205e1.jpg");
        assert_eq!(first.preview_url.as_deref(), Some(&preview[..]));
        assert_eq!((first.width, first.height, first.score), (3600, 5100, 8));
        assert_eq!(first.tags.len(), 34);
        assert!(first.tags.iter().any(|tag| tag == "kafuu_chino"));
        let link = "https://gelbooru.com/index.php?page=post&s=view&id=8333903";
        assert_eq!(first.post_url, link);
    }

    #[test]
    fn rating_words_map_to_the_four_levels() {
        use Rating::{Explicit as E, General as G, Questionable as Q, Sensitive as S};
        let page = parse(&gelbooru(), POSTS);
        let ratings: Vec<Rating> = page.posts.iter().map(|post| post.rating).collect();
        assert_eq!(ratings, [S, Q, G, S, E, S, G, E, G, Q]);
        let scores: Vec<i64> = page.posts.iter().map(|post| post.score).collect();
        assert_eq!(scores, [8, 14, 2, 88, 85, 5, 1, 97, 1, 4]);
    }

    #[test]
    fn an_empty_sample_url_means_no_sample() {
        let page = parse(&gelbooru(), POSTS);
        let without: Vec<u64> = page
            .posts
            .iter()
            .filter(|post| post.sample_url.is_none())
            .map(|post| post.id)
            .collect();
        assert_eq!(without, [8318307, 8311716, 8299561, 8297763]);
    }

    #[test]
    fn recorded_single_post_envelope_parses() {
        let page = parse(&gelbooru(), POST_BY_ID);
        assert_eq!((page.posts.len(), page.total), (1, Some(1)));
        let post = &page.posts[0];
        assert_eq!((post.id, post.md5.as_deref()), (8297763, Some(MD5)));
        assert_eq!(
            (post.rating, post.sample_url.as_deref()),
            (Rating::Questionable, None)
        );
        assert_eq!((post.width, post.height, post.score), (752, 1062, 4));
    }

    #[test]
    fn post_may_be_a_single_object() {
        let body = format!(
            r#"{{"@attributes":{{"limit":1,"offset":0,"count":1}},"post":{}}}"#,
            single_post_object()
        );
        let page = parse(&gelbooru(), &body);
        assert_eq!(page.posts.len(), 1);
        assert_eq!(page.posts[0], parse(&gelbooru(), POST_BY_ID).posts[0]);
    }

    #[test]
    fn an_envelope_without_post_is_an_empty_page() {
        let body = r#"{"@attributes":{"limit":100,"offset":0,"count":0}}"#;
        let page = parse(&gelbooru(), body);
        assert_eq!((page.posts.len(), page.total), (0, Some(0)));
        let null_post = r#"{"@attributes":{"count":"0"},"post":null}"#;
        assert_eq!(parse(&gelbooru(), null_post).total, Some(0));
    }

    #[test]
    fn an_object_without_attributes_is_not_an_empty_page() {
        for body in ["{}", r#"{"success":false,"message":"search down"}"#] {
            let error = parse_posts(&gelbooru(), body.as_bytes()).expect_err(body);
            assert!(
                matches!(error, UpstreamError::Malformed { .. }),
                "{body}: {error}"
            );
        }
    }

    #[test]
    fn an_empty_body_is_no_results_on_gelbooru_02_only() {
        assert_eq!(parse(&safebooru(), ""), PostPage::default());
        assert_eq!(parse(&site("tbib", ""), " \n"), PostPage::default());
        let error = parse_posts(&gelbooru(), b"").expect_err("empty from gelbooru.com");
        assert!(error.is_retryable(), "{error}");
    }

    #[test]
    fn recorded_safebooru_post_builds_urls_from_directory_and_image() {
        let page = parse(&safebooru(), SAFEBOORU_POST);
        assert_eq!((page.posts.len(), page.skipped, page.total), (1, 0, None));
        let post = &page.posts[0];
        assert_eq!((&*post.source, post.id), ("safebooru", 4296456));
        assert_eq!(
            post.md5.as_deref(),
            Some("e0b8bce4a6136ca31be2fdcbc6bad8a7")
        );
        let image = "938018eca5ada85ae0e5a6c1d3711b6d8851ef1a";
        let file = format!("https://safebooru.org/images/4111/{image}.jpg");
        assert_eq!(post.file_url.as_deref(), Some(&file[..]));
        assert_eq!(post.sample_url, None, "sample is false");
        let thumbnail = format!("https://safebooru.org/thumbnails/4111/thumbnail_{image}.jpg");
        assert_eq!(post.preview_url.as_deref(), Some(&thumbnail[..]));
        assert_eq!((post.width, post.height, post.score), (1000, 1400, 0));
        assert_eq!((post.rating, post.tags.len()), (Rating::General, 22));
        let link = "https://safebooru.org/index.php?page=post&s=view&id=4296456";
        assert_eq!(post.post_url, link);
    }

    #[test]
    fn built_urls_keep_the_path_prefix_and_samples_need_the_flag() {
        let site = site_at("safebooru", "http://127.0.0.1:9000/safebooru");
        let body = r#"[{"id": 5, "hash": "e0b8bce4a6136ca31be2fdcbc6bad8a7", "directory": 4111,
            "image": "abc.def.png", "sample": 1, "score": null, "rating": "safe"}]"#;
        let post = &parse(&site, body).posts[0];
        let base = "http://127.0.0.1:9000/safebooru";
        let file = format!("{base}/images/4111/abc.def.png");
        assert_eq!(post.file_url.as_deref(), Some(&file[..]));
        let sample = format!("{base}/samples/4111/sample_abc.def.jpg");
        assert_eq!(post.sample_url.as_deref(), Some(&sample[..]));
        let preview = format!("{base}/thumbnails/4111/thumbnail_abc.def.jpg");
        assert_eq!(post.preview_url.as_deref(), Some(&preview[..]));
        assert_eq!((post.score, post.rating), (0, Rating::General));
        assert_eq!(
            post.post_url,
            format!("{base}/index.php?page=post&s=view&id=5")
        );
    }

    #[test]
    fn relative_and_protocol_relative_urls_are_made_absolute() {
        let site = site_at("tbib", "https://127.0.0.1:9000/tbib");
        let body = r#"[{"id": 1, "hash": "e0b8bce4a6136ca31be2fdcbc6bad8a7",
            "file_url": "//tbib.org/images/1/a.jpg", "preview_url": "/thumbnails/1/thumbnail_a.jpg",
            "sample_url": ""}]"#;
        let post = &parse(&site, body).posts[0];
        assert_eq!(
            post.file_url.as_deref(),
            Some("https://tbib.org/images/1/a.jpg")
        );
        let preview = "https://127.0.0.1:9000/tbib/thumbnails/1/thumbnail_a.jpg";
        assert_eq!(post.preview_url.as_deref(), Some(preview));
        assert_eq!(post.sample_url, None);
    }

    #[test]
    fn gelbooru_02_ratings_and_null_scores() {
        let ratings = [
            ("safe", Rating::General),
            ("s", Rating::General),
            ("general", Rating::General),
            ("sensitive", Rating::Sensitive),
            ("q", Rating::Questionable),
            ("questionable", Rating::Questionable),
            ("e", Rating::Explicit),
            ("explicit", Rating::Explicit),
            ("unrated", Rating::Explicit),
        ];
        for (raw, expected) in ratings {
            let body = format!(r#"[{{"id":1,"hash":"{MD5}","rating":"{raw}","score":null}}]"#);
            let post = &parse(&safebooru(), &body).posts[0];
            assert_eq!((post.rating, post.score), (expected, 0), "{raw}");
        }
    }

    #[test]
    fn posts_without_md5_or_file_are_skipped() {
        let body = r#"[{"id":1,"rating":"general"},{"id":2,"hash":"not-an-md5","directory":"1","image":"x.jpg"}]"#;
        let page = parse(&safebooru(), body);
        assert_eq!((page.posts.len(), page.skipped), (1, 1));
        assert_eq!((page.posts[0].id, page.posts[0].md5.as_deref()), (2, None));
    }

    #[test]
    fn recorded_2017_xml_post_list_parses() {
        let page = parse(&gelbooru(), LEGACY_XML);
        assert_eq!(
            (page.posts.len(), page.skipped, page.total),
            (20, 0, Some(2249332))
        );
        let first = &page.posts[0];
        assert_eq!(first.id, 3889506);
        assert_eq!(
            first.md5.as_deref(),
            Some("e70f631ce2bc1ab02b371489d81dceaa")
        );
        let file = "https://simg3.gelbooru.com/images/e7/0f/e70f631ce2bc1ab02b371489d81dceaa.jpg";
        assert_eq!(first.file_url.as_deref(), Some(file));
        assert_eq!((first.width, first.height, first.score), (880, 863, 0));
        assert_eq!(first.tags.iter().next(), Some("2boys"));
        assert!(page.posts.iter().all(|post| post.rating == Rating::General));
        assert!(page.posts[2].tags.iter().any(|tag| tag == "luck_&_logic"));
        assert_eq!(page.posts[19].id, 3889484);
        assert_eq!(parse_xml_count(LEGACY_XML.as_bytes()), Ok(2249332));
    }

    #[test]
    fn xml_post_lists_may_be_empty_and_must_be_complete() {
        let empty = parse(
            &safebooru(),
            r#"<?xml version="1.0"?><posts count="0" offset="0"/>"#,
        );
        assert_eq!((empty.posts.len(), empty.total), (0, Some(0)));
        let truncated = &LEGACY_XML.as_bytes()[..LEGACY_XML.len() - 200];
        assert!(parse_posts(&gelbooru(), truncated).is_err());
        let no_id = r#"<posts count="1"><post md5="e70f631ce2bc1ab02b371489d81dceaa"/></posts>"#;
        assert!(parse_posts(&gelbooru(), no_id.as_bytes()).is_err());
    }

    #[test]
    fn xml_counts_are_read_from_the_root() {
        assert_eq!(parse_xml_count(br#"<posts count="0" offset="0"/>"#), Ok(0));
        let with_posts = br#"<?xml version="1.0" encoding="UTF-8"?>
            <posts count="4321" offset="0"><post id="1" md5="x"/></posts>"#;
        assert_eq!(parse_xml_count(with_posts), Ok(4321));
        for body in [
            &b"<posts offset=\"0\"/>"[..],
            b"<posts count=\"many\"/>",
            b"<tags/>",
            b"",
            b"[]",
        ] {
            let error = parse_xml_count(body).expect_err("not a count");
            assert!(matches!(error, UpstreamError::Malformed { .. }), "{error}");
        }
        let html = parse_xml_count(b"<!DOCTYPE html><html></html>");
        assert_eq!(html, Err(UpstreamError::Challenge { status: 200 }));
    }

    #[test]
    fn xml_error_documents_are_errors() {
        let refused = br#"<?xml version="1.0"?><response success="false" reason="Search error: API disabled due to abuse."/>"#;
        let reason = "Search error: API disabled due to abuse.".to_owned();
        assert_eq!(
            parse_xml_count(refused),
            Err(UpstreamError::Rejected {
                status: 200,
                reason
            })
        );
        let auth =
            b"<error>Missing authentication. Go to api.rule34.xxx for more information</error>";
        assert!(matches!(parse_xml_count(auth), Err(UpstreamError::Auth(_))));
        let in_page = parse_posts(&safebooru(), auth).expect_err("an error document");
        assert!(
            in_page
                .to_string()
                .contains("safebooru needs a user_id and api_key"),
            "{in_page}"
        );
    }

    #[test]
    fn any_401_names_the_source_and_the_missing_keys() {
        let error = error_for(&gelbooru(), 401, b"[]");
        let expected = "gelbooru needs a user_id and api_key (set sources.gelbooru.user_id and sources.gelbooru.api_key)";
        assert_eq!(error, UpstreamError::Auth(expected.into()));
        let configured = site("gelbooru", "user_id = \"1\"\napi_key = \"peanuts\"");
        let refused = configured.error_for(401, b"");
        assert_eq!(
            refused.to_string(),
            "gelbooru refused the configured user_id and api_key"
        );
        assert!(!refused.is_retryable());
    }

    #[test]
    fn other_error_bodies_carry_the_site_reason() {
        let site = gelbooru();
        let json = error_for(
            &site,
            403,
            br#"{"success":false,"message":"Access denied."}"#,
        );
        let reason = "Access denied.".to_owned();
        assert_eq!(
            json,
            UpstreamError::Rejected {
                status: 403,
                reason
            }
        );
        let xml = error_for(
            &site,
            400,
            br#"<response success="false" reason="bad tags"/>"#,
        );
        assert!(xml.to_string().contains("bad tags"), "{xml}");
        assert!(error_for(&site, 404, b"").to_string().contains("base_url"));
    }

    #[test]
    fn only_403_or_a_marked_503_html_page_is_a_challenge() {
        let site = gelbooru();
        let challenge = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>";
        assert_eq!(
            site.error_for(503, challenge),
            UpstreamError::Challenge { status: 503 }
        );
        let blocked = site.error_for(403, b"<html><body>Access denied</body></html>");
        assert_eq!(blocked, UpstreamError::Challenge { status: 403 });
        assert!(!blocked.is_retryable());

        let bad_gateway = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
        let error = site.error_for(502, bad_gateway);
        assert_eq!(error.kind(), "unavailable", "{error}");
        assert!(error.is_retryable());
        assert!(
            error
                .to_string()
                .contains("HTML error page with status 502"),
            "{error}"
        );
        let maintenance = site.error_for(503, b"<!doctype html><html>down for a bit</html>");
        assert_eq!(maintenance.kind(), "unavailable", "{maintenance}");
    }

    #[test]
    fn tag_lists_parse_in_every_form() {
        let envelope = parse_tags(TAG_NAMES.as_bytes()).expect("envelope");
        assert_eq!(envelope.len(), 4);
        assert_eq!(
            (envelope[0].name.as_str(), envelope[0].post_count),
            ("1girl", 6177827)
        );
        assert_eq!(envelope[3].name, "blunt_bangs");
        assert!(
            envelope
                .iter()
                .all(|tag| tag.category == TagCategory::General)
        );
        let tag =
            r#"{"id":1,"name":"anya_(spy_x_family)","count":"2000","type":"4","ambiguous":0}"#;
        let forms = [
            format!("[{tag}]"),
            format!(r#"{{"tag":[{tag}]}}"#),
            format!(r#"{{"@attributes":{{"count":1}},"tag":{tag}}}"#),
            r#"<?xml version="1.0"?><tags type="array"><tag type="4" count="2000" name="anya_(spy_x_family)" ambiguous="false" id="1"/></tags>"#.to_owned(),
        ];
        for body in forms {
            let tags = parse_tags(body.as_bytes()).expect("parses");
            assert_eq!(tags.len(), 1, "{body}");
            assert_eq!(tags[0].name, "anya_(spy_x_family)");
            assert_eq!(
                (tags[0].post_count, tags[0].category),
                (2000, TagCategory::Character)
            );
        }
    }

    #[test]
    fn empty_tag_answers_are_no_tags_but_error_objects_are_errors() {
        for body in ["", "  ", "[]", r#"{"@attributes":{"count":0}}"#, "<tags/>"] {
            assert_eq!(parse_tags(body.as_bytes()), Ok(Vec::new()), "{body:?}");
        }
        for body in ["{}", r#"{"message":"no"}"#, "<html>", "<posts/>", "nope"] {
            assert!(parse_tags(body.as_bytes()).is_err(), "{body:?}");
        }
        let refused = parse_tags(br#"<response success="false" reason="tag search down"/>"#);
        assert!(matches!(refused, Err(UpstreamError::Rejected { .. })));
    }

    #[test]
    fn malformed_and_truncated_bodies_are_errors() {
        let site = gelbooru();
        let truncated = &POSTS.as_bytes()[..POSTS.len() / 3];
        let error = parse_posts(&site, truncated).expect_err("truncated");
        assert!(error.to_string().contains("truncated"), "{error}");
        for body in [
            "[1]",
            r#"{"@attributes":1}"#,
            r#"{"@attributes":{},"post":[{"md5":"x"}]}"#,
            "true",
        ] {
            let error = parse_posts(&site, body.as_bytes()).expect_err(body);
            assert!(
                matches!(error, UpstreamError::Malformed { .. }),
                "{body}: {error}"
            );
        }
        let html = parse_posts(&site, b"<html><body>Just a moment</body></html>");
        assert_eq!(html, Err(UpstreamError::Challenge { status: 200 }));
    }
}
