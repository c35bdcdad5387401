//! The Moebooru family: request URLs and body parsing for yande.re, konachan and other
//! Moebooru sites (`/post.json`, `/tag.json`, and `/post.xml` for the count).
//!
//! The API, unlike the site, lists held posts unless asked not to, so every post query adds
//! `holds:false`; with the one searched tag that is two of the six tags a query may hold.

use std::borrow::Cow;

use serde::Deserialize;
use url::Url;

use super::fields::{self, Shape};
use super::{Site, UpstreamError};
use crate::model::{Post, PostPage, Rating, TagCandidate};

/// Hides held posts, which the site's own gallery does not show either.
const NOT_HELD: &str = "holds:false";

/// Most tags one tag search may return; `limit=0` would ask for every matching tag at once.
const MAX_TAG_LIMIT: u32 = 1000;

const EXPECTED_POSTS: &str = "Moebooru post list (a JSON array or {\"posts\":[..]})";
const EXPECTED_TAGS: &str = "Moebooru tag list (a JSON array)";

/// The tags whose names contain `word` (the site matches substrings), most used first.
pub fn tags_url(site: &Site, word: &str, limit: u32) -> Url {
    let limit = limit.clamp(1, MAX_TAG_LIMIT).to_string();
    site.api_url(
        "tag.json",
        &[("name", word), ("order", "count"), ("limit", &limit)],
    )
}

/// Parses a `/tag.json` body; the site's error object sent with 200 is its refusal.
pub fn parse_tags(body: &[u8]) -> Result<Vec<TagCandidate>, UpstreamError> {
    fields::tag_array(body, EXPECTED_TAGS).map_err(|error| refusal(200, body).unwrap_or(error))
}

/// The search Moebooru runs for `tag`.
fn query(tag: &str) -> String {
    format!("{tag} {NOT_HELD}")
}

/// Page `page` (1-based) of posts tagged `tag`, newest first.
///
/// `limit` is kept within 1..=1000, the most the server code returns.
pub fn posts_url(site: &Site, tag: &str, page: u32, limit: u32) -> Url {
    let page = page.max(1).to_string();
    let limit = limit.clamp(1, site.family.max_page_size()).to_string();
    site.api_url(
        "post.json",
        &[("tags", &query(tag)), ("limit", &limit), ("page", &page)],
    )
}

/// A post as `/post.json` describes it; deleted posts lose their file URLs but keep the MD5.
#[derive(Deserialize)]
struct RawPost<'a> {
    #[serde(deserialize_with = "fields::id")]
    id: u64,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    md5: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    file_url: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    sample_url: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    preview_url: Option<Cow<'a, str>>,
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
        let url = |raw: Option<Cow<str>>| raw.and_then(|raw| site.absolute_url(&raw));
        Post {
            source: site.id.clone(),
            id: self.id,
            md5: fields::md5(self.md5.as_deref()),
            file_url: url(self.file_url),
            sample_url: url(self.sample_url),
            preview_url: url(self.preview_url),
            width: self.width,
            height: self.height,
            // Moebooru has three levels; its `s` ("safe") is the all-ages one.
            rating: fields::rating(self.rating.as_deref(), Rating::General),
            score: self.score,
            tags: fields::tags(self.tags.as_deref()),
            post_url: site.join(&format!("post/show/{}", self.id)),
        }
    }
}

/// Parses a `/post.json` body: a bare array, or the API-v2 object whose `posts` holds them.
/// The site's error object sent with 200 is its refusal, with its reason; it is looked for
/// only in a body that is not posts, so a page of posts is read once.
pub fn parse_posts(site: &Site, body: &[u8]) -> Result<PostPage, UpstreamError> {
    #[derive(Deserialize)]
    struct Version2<'a> {
        #[serde(borrow)]
        posts: Vec<RawPost<'a>>,
    }

    let json_error = |error| fields::json_error(EXPECTED_POSTS, &error);
    let posts: Result<Vec<RawPost>, UpstreamError> = match fields::shape(body) {
        Shape::Array => serde_json::from_slice(body).map_err(json_error),
        Shape::Object => {
            (serde_json::from_slice(body).map(|v2: Version2| v2.posts)).map_err(json_error)
        }
        other => Err(fields::wrong_shape(other, EXPECTED_POSTS)),
    };
    let posts = posts.map_err(|error| refusal(200, body).unwrap_or(error))?;
    Ok(fields::page(
        posts.into_iter().map(|post| post.into_post(site)),
        None,
    ))
}

/// The URL whose XML answer counts the posts [`posts_url`] pages through (same query).
pub fn count_url(site: &Site, tag: &str) -> Url {
    site.api_url("post.xml", &[("tags", &query(tag)), ("limit", "1")])
}

/// The site's own refusal, when `body` is Moebooru's error document: the JSON
/// `{"success":false,"reason":..}` or the XML `<response success="false" reason=".."/>`.
///
/// Moebooru sends these with HTTP 500, its default error status, when it declines a query
/// (more than six tags, say), and its API may send them with 200; either way the site ran
/// and said no, so asking again gets the same answer. Its real server failures arrive as
/// HTML pages or gateway statuses, which [`UpstreamError::from_common`] reads. Other
/// statuses are left to [`error_for`].
pub fn refusal(status: u16, body: &[u8]) -> Option<UpstreamError> {
    #[derive(Deserialize)]
    struct Outcome {
        success: bool,
    }

    if !matches!(status, 200 | 500) {
        return None;
    }
    let declined = match fields::shape(body) {
        Shape::Object => serde_json::from_slice::<Outcome>(body).is_ok_and(|o| !o.success),
        Shape::Xml => fields::xml_reason(body).is_some(),
        _ => false,
    };
    let reason = fields::error_reason(body).filter(|_| declined)?;
    Some(UpstreamError::Rejected { status, reason })
}

/// Reads a Moebooru error body (`{"success":false,"reason":..}` or its XML form) into the
/// error it means.
pub fn error_for(status: u16, body: &[u8]) -> UpstreamError {
    let reason = fields::error_reason(body);
    match status {
        // Moebooru's own status for a throttled client.
        421 => UpstreamError::RateLimited { retry_after: None },
        _ => UpstreamError::Rejected {
            status,
            reason: reason.unwrap_or_else(|| match status {
                403 => "access denied".to_owned(),
                404 => "no such page; check the source's base_url".to_owned(),
                _ => "the site gave no reason".to_owned(),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::TagCategory;
    use crate::sources::fields::testing::{AWKWARD_TAGS, param, site, site_at};

    const KONACHAN_POSTS: &str = include_str!("../../tests/fixtures/konachan/posts.json");
    const KONACHAN_POST: &str = include_str!("../../tests/fixtures/konachan/post_by_id.json");
    const YANDERE_POST: &str = include_str!("../../tests/fixtures/yandere/post.json");
    const YANDERE_V2: &str = include_str!("../../tests/fixtures/yandere/post_api_v2_1194966.json");
    const YANDERE_V2_POOL: &str =
        include_str!("../../tests/fixtures/yandere/post_api_v2_650982_with_pool.json");

    const MD5: &str = "e53d6e7c9046076fdb2ce4ab07e9f0c5";

    /// A seventh source, added in configuration alone.
    fn konachan_com() -> Site {
        let config = Config::from_toml(
            "[sources.konachan_com]\nfamily = \"moebooru\"\nbase_url = \"https://konachan.com\"\nconcurrency = 3\nrate_per_sec = 1.0\npage_size = 100",
        )
        .expect("valid configuration");
        Site::new("konachan_com", &config.sources["konachan_com"])
    }

    fn parse(site: &Site, body: &str) -> PostPage {
        parse_posts(site, body.as_bytes()).expect("parses")
    }

    #[test]
    fn tag_search_url_never_asks_for_every_tag() {
        let site = site_at("yandere", "http://127.0.0.1:9000/yandere");
        let url = tags_url(&site, "anya", 50);
        assert_eq!(url.path(), "/yandere/tag.json");
        assert_eq!(param(&url, "name").as_deref(), Some("anya"));
        assert_eq!(param(&url, "order").as_deref(), Some("count"));
        assert_eq!(param(&url, "limit").as_deref(), Some("50"));
        assert_eq!(
            param(&tags_url(&site, "anya", 0), "limit").as_deref(),
            Some("1")
        );
    }

    #[test]
    fn posts_url_pages_from_one_and_hides_held_posts() {
        let site = site_at("konachan", "http://127.0.0.1:9000/konachan/");
        let url = posts_url(&site, "anya_forger", 2, 100);
        assert_eq!(url.path(), "/konachan/post.json");
        assert_eq!(
            param(&url, "tags").as_deref(),
            Some("anya_forger holds:false")
        );
        assert_eq!(param(&url, "page").as_deref(), Some("2"));
        assert_eq!(param(&url, "limit").as_deref(), Some("100"));
        assert_eq!(
            param(&posts_url(&site, "a", 0, 1), "page").as_deref(),
            Some("1")
        );
        let capped = posts_url(&site, "a", 1, 5000);
        assert_eq!(param(&capped, "limit").as_deref(), Some("1000"));
    }

    #[test]
    fn count_url_asks_post_xml_the_same_query() {
        let site = site_at("yandere", "http://127.0.0.1:9000/yandere");
        let url = count_url(&site, "anya_forger");
        assert_eq!(url.path(), "/yandere/post.xml");
        assert_eq!(
            param(&url, "tags").as_deref(),
            Some("anya_forger holds:false")
        );
        assert_eq!(param(&url, "limit").as_deref(), Some("1"));
        let body = br#"<?xml version="1.0" encoding="UTF-8"?><posts count="1234" offset="0"><post id="1"/></posts>"#;
        assert_eq!(site.parse_count(body), Ok(1234));
    }

    #[test]
    fn awkward_tags_are_percent_encoded() {
        let site = site("yandere", "");
        for (tag, encoded) in AWKWARD_TAGS {
            let url = posts_url(&site, tag, 1, 100);
            let expected = format!("tags={encoded}+holds%3Afalse&");
            assert!(url.as_str().contains(&expected), "{tag:?}: {url}");
            assert_eq!(url.fragment(), None);
            assert_eq!(param(&url, "tags"), Some(format!("{tag} holds:false")));
            assert_eq!(
                param(&tags_url(&site, tag, 5), "name").as_deref(),
                Some(tag)
            );
            assert_eq!(
                param(&count_url(&site, tag), "tags"),
                Some(format!("{tag} holds:false"))
            );
        }
    }

    #[test]
    fn a_seventh_source_needs_only_configuration() {
        let site = konachan_com();
        assert_eq!(
            (&*site.id, site.family),
            ("konachan_com", crate::sources::Family::Moebooru)
        );
        let url = site.posts_url("hatsune_miku", 1, 100);
        assert_eq!(url.host_str(), Some("konachan.com"));
        assert_eq!(url.path(), "/post.json");
        let count = site.count_url("hatsune_miku").expect("moebooru counts");
        assert_eq!(count.path(), "/post.xml");
        let page = site.parse_posts(KONACHAN_POSTS.as_bytes()).expect("parses");
        assert_eq!(page.posts.len(), 10);
        assert!(
            page.posts
                .iter()
                .all(|post| &*post.source == "konachan_com")
        );
        assert_eq!(
            page.posts[0].post_url,
            "https://konachan.com/post/show/354323"
        );
    }

    #[test]
    fn recorded_konachan_posts_parse_with_every_field() {
        let page = parse(&konachan_com(), KONACHAN_POSTS);
        assert_eq!((page.posts.len(), page.skipped, page.total), (10, 0, None));
        let first = &page.posts[0];
        assert_eq!((first.id, first.md5.as_deref()), (354323, Some(MD5)));
        let host = "https://konachan.com";
        let file = format!(
            "{host}/image/{MD5}/Konachan.com%20-%20354323%20building%20hakuurei_amano%20isekai_joucho%20kamitsubaki_studio%20long_hair%20scenic.png"
        );
        assert_eq!(first.file_url.as_deref(), Some(&file[..]));
        let sample = format!("{host}/sample/{MD5}/Konachan.com%20-%20354323%20sample.jpg");
        assert_eq!(first.sample_url.as_deref(), Some(&sample[..]));
        let preview = format!("{host}/data/preview/e5/3d/{MD5}.jpg");
        assert_eq!(first.preview_url.as_deref(), Some(&preview[..]));
        assert_eq!(
            (first.width, first.height, first.rating),
            (4096, 2317, Rating::General)
        );
        assert_eq!(
            first.tags,
            [
                "building",
                "hakuurei_amano",
                "isekai_joucho",
                "kamitsubaki_studio",
                "long_hair",
                "scenic"
            ]
        );
        let scores: Vec<i64> = page.posts.iter().map(|post| post.score).collect();
        assert_eq!(scores, [0, 9, 3, 3, 3, 3, 3, 3, 3, 3]);
        let tag_counts: Vec<usize> = page.posts.iter().map(|post| post.tags.len()).collect();
        assert_eq!(tag_counts, [6, 18, 9, 8, 6, 11, 8, 7, 4, 6]);
        assert_eq!(
            page.posts[4].sample_url, page.posts[4].file_url,
            "no separate sample"
        );
    }

    #[test]
    fn recorded_single_post_arrays_parse() {
        let konachan = parse(&konachan_com(), KONACHAN_POST);
        assert_eq!(konachan.posts.len(), 1);
        assert_eq!(
            konachan.posts[0],
            parse(&konachan_com(), KONACHAN_POSTS).posts[0]
        );
        let yandere = parse(&site("yandere", ""), YANDERE_POST);
        assert_eq!(yandere.posts.len(), 1);
        let post = &yandere.posts[0];
        assert_eq!(
            (&*post.source, post.id, post.rating),
            ("yandere", 246724, Rating::Explicit)
        );
        assert_eq!(
            post.md5.as_deref(),
            Some("0bddcf135c86b95de0fedf008254a1f2")
        );
        assert_eq!(
            (post.width, post.height, post.score, post.tags.len()),
            (3967, 2798, 275, 16)
        );
        let preview =
            "https://assets.yande.re/data/preview/0b/dd/0bddcf135c86b95de0fedf008254a1f2.jpg";
        assert_eq!(post.preview_url.as_deref(), Some(preview));
        assert_eq!(post.post_url, "https://yande.re/post/show/246724");
    }

    #[test]
    fn api_v2_objects_yield_their_posts() {
        let site = site("yandere", "");
        let plain = parse(&site, YANDERE_V2);
        assert_eq!(plain.posts.len(), 1);
        let post = &plain.posts[0];
        assert_eq!(
            (post.id, post.rating, post.score),
            (1194966, Rating::General, 19)
        );
        assert_eq!(
            post.md5.as_deref(),
            Some("3cc60c29f1c04396ef29cc7db1f311a2")
        );
        assert_eq!((post.width, post.height, post.tags.len()), (3049, 5330, 1));
        let pooled = parse(&site, YANDERE_V2_POOL);
        assert_eq!(pooled.posts.len(), 1);
        let post = &pooled.posts[0];
        assert_eq!(
            (post.id, post.rating, post.score),
            (650982, Rating::Questionable, 74)
        );
        assert_eq!((post.width, post.height, post.tags.len()), (2802, 4005, 9));
        assert_eq!(parse(&site, r#"{"posts":[]}"#), PostPage::default());
    }

    #[test]
    fn relative_urls_keep_the_path_prefix_of_the_base() {
        let site = site_at("konachan", "http://127.0.0.1:9000/konachan");
        let body = format!(
            r#"[{{"id":1,"md5":"{MD5}","preview_url":"/data/preview/x.jpg",
            "sample_url":"//konachan.net/sample/x.jpg","file_url":"https://konachan.net/image/x.png"}}]"#
        );
        let post = &parse(&site, &body).posts[0];
        let preview = "http://127.0.0.1:9000/konachan/data/preview/x.jpg";
        assert_eq!(post.preview_url.as_deref(), Some(preview));
        assert_eq!(
            post.sample_url.as_deref(),
            Some("http://konachan.net/sample/x.jpg")
        );
        assert_eq!(
            post.file_url.as_deref(),
            Some("https://konachan.net/image/x.png")
        );
        assert_eq!(post.post_url, "http://127.0.0.1:9000/konachan/post/show/1");
    }

    #[test]
    fn deleted_posts_keep_their_md5_and_posts_with_nothing_are_skipped() {
        let body = format!(
            r#"[{{"id":1,"md5":"{MD5}","status":"deleted","rating":"s"}},
            {{"id":2,"rating":"q","status":"deleted"}}]"#
        );
        let page = parse(&site("konachan", ""), &body);
        assert_eq!((page.posts.len(), page.skipped), (1, 1));
        assert_eq!(
            (
                page.posts[0].file_url.as_deref(),
                page.posts[0].md5.as_deref()
            ),
            (None, Some(MD5))
        );
    }

    #[test]
    fn the_three_moebooru_ratings_map_and_unknown_is_explicit() {
        let site = site("yandere", "");
        let cases = [
            ("s", Rating::General),
            ("q", Rating::Questionable),
            ("e", Rating::Explicit),
            ("?", Rating::Explicit),
        ];
        for (raw, expected) in cases {
            let body = format!(r#"[{{"id":1,"md5":"{MD5}","rating":"{raw}","score":"5"}}]"#);
            let post = &parse(&site, &body).posts[0];
            assert_eq!((post.rating, post.score), (expected, 5), "{raw}");
        }
    }

    #[test]
    fn empty_results_and_bad_bodies() {
        let site = site("yandere", "");
        assert_eq!(parse(&site, "[]"), PostPage::default());
        for body in [
            "",
            "{}",
            r#"{"success":false}"#,
            "[{\"id\":null}]",
            "<posts count=\"1\"/>",
        ] {
            let error = parse_posts(&site, body.as_bytes()).expect_err(body);
            assert!(
                matches!(error, UpstreamError::Malformed { .. }),
                "{body:?}: {error}"
            );
        }
        let truncated = &KONACHAN_POSTS.as_bytes()[..1000];
        assert!(
            parse_posts(&site, truncated)
                .expect_err("truncated")
                .to_string()
                .contains("truncated")
        );
        let html = parse_posts(
            &site,
            b"<!DOCTYPE html><html><title>Just a moment...</title></html>",
        );
        assert_eq!(html, Err(UpstreamError::Challenge { status: 200 }));
    }

    #[test]
    fn tag_lists_parse() {
        let body = br#"[{"id":1,"name":"anya_forger","count":321,"type":4,"ambiguous":false},
            {"id":2,"name":"spy_x_family","count":"900","type":3,"ambiguous":false},
            {"id":3,"name":"nanawind","count":12,"type":5,"ambiguous":false}]"#;
        let tags = parse_tags(body).expect("parses");
        let summary: Vec<_> = tags
            .iter()
            .map(|tag| (tag.name.as_str(), tag.post_count, tag.category))
            .collect();
        assert_eq!(
            summary,
            [
                ("anya_forger", 321, TagCategory::Character),
                ("spy_x_family", 900, TagCategory::Copyright),
                ("nanawind", 12, TagCategory::Meta),
            ]
        );
        assert_eq!(parse_tags(b"[]"), Ok(Vec::new()));
        assert!(parse_tags(b"").is_err());
        assert!(parse_tags(br#"{"success":false}"#).is_err());
    }

    #[test]
    fn error_bodies_carry_the_reason() {
        let body = br#"{"success":false,"reason":"Error: You cannot search for more than 6 tags at a time"}"#;
        let error = error_for(424, body);
        let reason = "Error: You cannot search for more than 6 tags at a time".to_owned();
        assert_eq!(
            error,
            UpstreamError::Rejected {
                status: 424,
                reason
            }
        );
        let xml = error_for(
            403,
            br#"<response success="false" reason="Access denied"/>"#,
        );
        assert!(xml.to_string().contains("Access denied"), "{xml}");
        assert_eq!(
            error_for(421, b""),
            UpstreamError::RateLimited { retry_after: None }
        );
        assert!(error_for(404, b"").to_string().contains("base_url"));
        let challenge = site("konachan", "").error_for(403, b"<!DOCTYPE html><html></html>");
        assert_eq!(challenge, UpstreamError::Challenge { status: 403 });
    }

    const TAG_LIMIT: &str =
        r#"{"success":false,"reason":"Error: You cannot search for more than 6 tags at a time"}"#;
    const TAG_LIMIT_REASON: &str = "Error: You cannot search for more than 6 tags at a time";

    #[test]
    fn a_refusal_sent_with_500_is_rejected_with_the_site_reason() {
        let site = site("yandere", "");
        let error = site.error_for(500, TAG_LIMIT.as_bytes());
        let reason = TAG_LIMIT_REASON.to_owned();
        assert_eq!(
            error,
            UpstreamError::Rejected {
                status: 500,
                reason
            }
        );
        assert!(!error.is_retryable() && !error.is_upstream_failure());
        assert!(error.to_string().contains(TAG_LIMIT_REASON), "{error}");
        let xml = br#"<?xml version="1.0"?><response success="false" reason="Error: bad tags"/>"#;
        assert_eq!(
            site.error_for(500, xml).to_string(),
            "the site refused the request (HTTP 500): Error: bad tags"
        );
    }

    #[test]
    fn a_refusal_sent_with_200_is_rejected_not_malformed() {
        let site = site("konachan", "");
        let reason = TAG_LIMIT_REASON.to_owned();
        let refused = UpstreamError::Rejected {
            status: 200,
            reason,
        };
        assert_eq!(site.parse_posts(TAG_LIMIT.as_bytes()), Err(refused.clone()));
        assert_eq!(site.parse_tags(TAG_LIMIT.as_bytes()), Err(refused));
    }

    #[test]
    fn server_failures_stay_retryable() {
        let site = site("yandere", "");
        let down = br#"{"success":false,"reason":"The database is unavailable."}"#;
        for status in [502, 503, 504] {
            let error = site.error_for(status, down);
            assert_eq!(error.kind(), "unavailable", "{status}: {error}");
            assert!(error.is_retryable());
        }
        let rails = b"<!DOCTYPE html><html><title>We're sorry, but something went wrong (500)</title></html>";
        assert!(site.error_for(500, rails).is_retryable());
        assert!(
            site.error_for(500, b"").is_retryable(),
            "no reason, no refusal"
        );
    }

    #[test]
    fn moebooru_requests_never_carry_credentials() {
        let site = site("yandere", "");
        assert!(site.credentials.is_none());
        let url = posts_url(&site, "a", 1, 1);
        assert!(
            url.query_pairs()
                .all(|(key, _)| key != "api_key" && key != "login")
        );
    }
}
