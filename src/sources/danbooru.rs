//! The Danbooru family: request URLs and body parsing for Danbooru 2 sites
//! (`/posts.json`, `/tags.json`, `/tag_aliases.json`, `/counts/posts.json`).
//!
//! Anonymous and Member accounts may search at most two tags at once, `order:` included, and
//! may not page past page 1000; every query built here stays inside both limits (one tag plus
//! the free `-status:deleted` metatag, no ordering).

use std::borrow::Cow;

use serde::Deserialize;
use url::Url;

use super::fields::{self, Shape};
use super::{Site, UpstreamError};
use crate::model::{Post, PostPage, Rating, TagCandidate};

/// The deepest numbered page Danbooru serves to anonymous and Member accounts; beyond it the
/// `b<id>` cursor of [`posts_before_url`] continues.
pub const MAX_PAGE: u32 = 1000;

/// Drops deleted posts, which the JSON API includes although the site hides them. `status`
/// is one of the metatags that do not count against the tag limit.
const NOT_DELETED: &str = "-status:deleted";

/// Most tags one tag search may return.
const MAX_TAG_LIMIT: u32 = 1000;

/// Danbooru's tag category of characters.
const CHARACTER_CATEGORY: &str = "4";

const EXPECTED_POSTS: &str = "Danbooru post list (a JSON array)";
const EXPECTED_TAGS: &str = "Danbooru tag list (a JSON array)";
const EXPECTED_ALIASES: &str = "Danbooru alias list (a JSON array)";
const EXPECTED_COUNT: &str = "Danbooru post count ({\"counts\":{\"posts\":N}})";

/// The character tags whose names contain `word`, most used first, without empty tags.
///
/// Danbooru files every character under category 4, so asking for it alone keeps the
/// site's many general and copyright tags sharing a word with the name (`forger`,
/// `spy_x_family`) from crowding the candidates out of the limit.
pub fn tags_url(site: &Site, word: &str, limit: u32) -> Url {
    let pattern = format!("*{word}*");
    let limit = limit.clamp(1, MAX_TAG_LIMIT).to_string();
    site.api_url(
        "tags.json",
        &[
            ("search[name_matches]", &pattern),
            ("search[category]", CHARACTER_CATEGORY),
            ("search[order]", "count"),
            ("search[hide_empty]", "true"),
            ("limit", &limit),
        ],
    )
}

/// Parses a `/tags.json` body.
pub fn parse_tags(body: &[u8]) -> Result<Vec<TagCandidate>, UpstreamError> {
    fields::tag_array(body, EXPECTED_TAGS)
}

/// The active aliases whose antecedent is `name`: what the site turns `name` into.
pub fn aliases_url(site: &Site, name: &str) -> Url {
    site.api_url(
        "tag_aliases.json",
        &[
            ("search[antecedent_name]", name),
            ("search[status]", "active"),
        ],
    )
}

/// Parses a `/tag_aliases.json` body into the consequent names of its active aliases, in
/// the site's order and without repeats.
pub fn parse_aliases(body: &[u8]) -> Result<Vec<String>, UpstreamError> {
    #[derive(Deserialize)]
    struct RawAlias<'a> {
        #[serde(default, borrow, deserialize_with = "fields::text")]
        consequent_name: Option<Cow<'a, str>>,
        #[serde(default, borrow, deserialize_with = "fields::text")]
        status: Option<Cow<'a, str>>,
    }

    let found = fields::shape(body);
    if found != Shape::Array {
        return Err(fields::wrong_shape(found, EXPECTED_ALIASES));
    }
    let aliases: Vec<RawAlias> = serde_json::from_slice(body)
        .map_err(|error| fields::json_error(EXPECTED_ALIASES, &error))?;
    let mut names: Vec<String> = Vec::new();
    for alias in aliases {
        let active = alias.status.as_deref().is_none_or(|s| s == "active");
        let name = alias.consequent_name.as_deref().map(str::trim);
        if let Some(name) = name.filter(|name| active && !name.is_empty()) {
            if !names.iter().any(|known| known == name) {
                names.push(name.to_owned());
            }
        }
    }
    Ok(names)
}

/// The search Danbooru runs for `tag`: the tag and the free `-status:deleted` metatag.
fn query(tag: &str) -> String {
    format!("{tag} {NOT_DELETED}")
}

/// Page `page` (1-based) of posts tagged `tag`, newest first.
///
/// `page` is kept within 1..=[`MAX_PAGE`], because the site answers a deeper page with HTTP
/// 410 for accounts below Gold; a caller that needs to go deeper uses [`posts_before_url`].
/// `limit` is kept within 1..=200, the most the site returns.
pub fn posts_url(site: &Site, tag: &str, page: u32, limit: u32) -> Url {
    let page = page.clamp(1, MAX_PAGE).to_string();
    posts_with_cursor(site, tag, &page, limit)
}

/// Posts tagged `tag` with ids below `before_id`, newest first: the `b<id>` cursor, which has
/// no depth limit.
pub fn posts_before_url(site: &Site, tag: &str, before_id: u64, limit: u32) -> Url {
    posts_with_cursor(site, tag, &format!("b{before_id}"), limit)
}

fn posts_with_cursor(site: &Site, tag: &str, page: &str, limit: u32) -> Url {
    let limit = limit.clamp(1, site.family.max_page_size()).to_string();
    site.api_url(
        "posts.json",
        &[("tags", &query(tag)), ("limit", &limit), ("page", page)],
    )
}

/// A post as `/posts.json` describes it; restricted posts lack the MD5 and every file URL.
#[derive(Deserialize)]
struct RawPost<'a> {
    #[serde(deserialize_with = "fields::id")]
    id: u64,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    md5: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    file_url: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    large_file_url: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    preview_file_url: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "fields::size")]
    image_width: u32,
    #[serde(default, deserialize_with = "fields::size")]
    image_height: u32,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    rating: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "fields::score")]
    score: i64,
    #[serde(default, borrow, deserialize_with = "fields::text")]
    tag_string: Option<Cow<'a, str>>,
}

impl RawPost<'_> {
    fn into_post(self, site: &Site) -> Post {
        let url = |raw: Option<Cow<str>>| raw.and_then(|raw| site.absolute_url(&raw));
        Post {
            source: site.id.clone(),
            id: self.id,
            md5: fields::md5(self.md5.as_deref()),
            file_url: url(self.file_url),
            sample_url: url(self.large_file_url),
            preview_url: url(self.preview_file_url),
            width: self.image_width,
            height: self.image_height,
            // Before the 2022 split `s` meant "safe"; read as sensitive it can only make a
            // filter stricter, never let a sensitive image pass as general.
            rating: fields::rating(self.rating.as_deref(), Rating::Sensitive),
            score: self.score,
            tags: fields::tags(self.tag_string.as_deref()),
            post_url: site.join(&format!("posts/{}", self.id)),
        }
    }
}

/// Parses a `/posts.json` body: a JSON array of posts.
///
/// A single post object (what `/posts/<id>.json` returns) is rejected as malformed: a list
/// endpoint that answers with an object is answering something else, usually an error.
pub fn parse_posts(site: &Site, body: &[u8]) -> Result<PostPage, UpstreamError> {
    let found = fields::shape(body);
    if found != Shape::Array {
        return Err(fields::wrong_shape(found, EXPECTED_POSTS));
    }
    let posts: Vec<RawPost> =
        serde_json::from_slice(body).map_err(|error| fields::json_error(EXPECTED_POSTS, &error))?;
    Ok(fields::page(
        posts.into_iter().map(|post| post.into_post(site)),
        None,
    ))
}

/// The URL that counts the posts [`posts_url`] pages through (same query, so same total).
pub fn count_url(site: &Site, tag: &str) -> Url {
    site.api_url("counts/posts.json", &[("tags", &query(tag))])
}

/// Parses a `/counts/posts.json` body, `{"counts":{"posts":N}}`.
///
/// The site answers `null` when it could not count in time; that is an error, not zero.
pub fn parse_count(body: &[u8]) -> Result<u64, UpstreamError> {
    #[derive(Deserialize)]
    struct Body {
        counts: Counts,
    }
    #[derive(Deserialize)]
    struct Counts {
        posts: fields::Number,
    }

    let found = fields::shape(body);
    if found != Shape::Object {
        return Err(fields::wrong_shape(found, EXPECTED_COUNT));
    }
    let parsed: Body =
        serde_json::from_slice(body).map_err(|error| fields::json_error(EXPECTED_COUNT, &error))?;
    parsed.counts.posts.as_u64().ok_or_else(|| {
        UpstreamError::malformed(
            EXPECTED_COUNT,
            "the site gave no count (it may have timed out)",
        )
    })
}

/// Reads a Danbooru error body (`{"success":false,"error":..,"message":..}`) into the error
/// it means, with the site's own message where it sent one.
pub fn error_for(status: u16, body: &[u8]) -> UpstreamError {
    let reason = fields::error_reason(body);
    match status {
        401 => UpstreamError::Auth(format!(
            "the site refused the configured login and api_key: {}",
            reason.as_deref().unwrap_or("no reason given")
        )),
        _ => UpstreamError::Rejected {
            status,
            reason: reason.unwrap_or_else(|| default_reason(status).to_owned()),
        },
    }
}

/// What a bare status means on Danbooru, for error bodies without a message.
fn default_reason(status: u16) -> &'static str {
    match status {
        403 => "access denied; the API key may be restricted to other addresses or actions",
        404 => "no such page; check the source's base_url",
        410 => "the site does not page past page 1000 for this account",
        422 => "the site could not run the search (too many tags or bad syntax)",
        _ => "the site gave no reason",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::fields::testing::{AWKWARD_TAGS, param, site, site_at};

    const POSTS: &str = include_str!("../../tests/fixtures/danbooru/posts.json");
    const POSTS_2020: &str = include_str!("../../tests/fixtures/danbooru/posts_2020.json");
    const POST_BY_ID: &str = include_str!("../../tests/fixtures/danbooru/post_by_id.json");
    const TAGS_BY_COUNT: &str = include_str!("../../tests/fixtures/danbooru/tags_order_count.json");
    const TAGS_2017: &str =
        include_str!("../../tests/fixtures/danbooru/tags_default_order_2017.json");

    /// Metatags Danbooru does not count against the two-tag limit (and `order:`, which counts,
    /// is deliberately absent).
    const FREE_METATAGS: [&str; 4] = ["status:", "rating:", "limit:", "id:"];

    fn danbooru() -> Site {
        site("danbooru", "")
    }

    fn parse(body: &str) -> PostPage {
        parse_posts(&danbooru(), body.as_bytes()).expect("parses")
    }

    #[test]
    fn tag_search_url_keeps_the_path_prefix_and_names_every_parameter() {
        let site = site_at("danbooru", "http://127.0.0.1:9000/danbooru");
        let url = tags_url(&site, "anya", 50);
        assert_eq!(url.path(), "/danbooru/tags.json");
        assert_eq!(
            param(&url, "search[name_matches]").as_deref(),
            Some("*anya*")
        );
        assert_eq!(param(&url, "search[category]").as_deref(), Some("4"));
        assert_eq!(param(&url, "search[order]").as_deref(), Some("count"));
        assert_eq!(param(&url, "search[hide_empty]").as_deref(), Some("true"));
        assert_eq!(param(&url, "limit").as_deref(), Some("50"));
        assert_eq!(
            param(&tags_url(&site, "anya", 0), "limit").as_deref(),
            Some("1")
        );
    }

    #[test]
    fn posts_url_pages_from_one_and_never_past_page_1000() {
        let site = site_at("danbooru", "http://127.0.0.1:9000/danbooru/");
        let url = posts_url(&site, "anya_(spy_x_family)", 3, 200);
        assert_eq!(url.path(), "/danbooru/posts.json");
        let tags = param(&url, "tags");
        assert_eq!(tags.as_deref(), Some("anya_(spy_x_family) -status:deleted"));
        assert_eq!(param(&url, "page").as_deref(), Some("3"));
        assert_eq!(param(&url, "limit").as_deref(), Some("200"));
        let page = |page| param(&posts_url(&site, "a", page, 20), "page");
        assert_eq!(page(0).as_deref(), Some("1"));
        assert_eq!(page(1000).as_deref(), Some("1000"));
        assert_eq!(page(1001).as_deref(), Some("1000"));
        assert_eq!(page(u32::MAX).as_deref(), Some("1000"));
        let limit = param(&posts_url(&site, "a", 1, 5000), "limit");
        assert_eq!(limit.as_deref(), Some("200"));
    }

    #[test]
    fn posts_before_url_uses_the_b_cursor() {
        let url = posts_before_url(&danbooru(), "yor_briar", 5012345, 200);
        assert_eq!(param(&url, "page").as_deref(), Some("b5012345"));
        assert_eq!(
            param(&url, "tags").as_deref(),
            Some("yor_briar -status:deleted")
        );
    }

    #[test]
    fn count_and_alias_urls() {
        let site = site_at("danbooru", "http://127.0.0.1:9000/danbooru");
        let count = count_url(&site, "spy_x_family");
        assert_eq!(count.path(), "/danbooru/counts/posts.json");
        assert_eq!(
            param(&count, "tags").as_deref(),
            Some("spy_x_family -status:deleted")
        );
        let aliases = aliases_url(&site, "anya");
        assert_eq!(aliases.path(), "/danbooru/tag_aliases.json");
        assert_eq!(
            param(&aliases, "search[antecedent_name]").as_deref(),
            Some("anya")
        );
        assert_eq!(param(&aliases, "search[status]").as_deref(), Some("active"));
    }

    #[test]
    fn queries_stay_within_the_anonymous_two_tag_limit() {
        let site = danbooru();
        for url in [
            posts_url(&site, "anya_(spy_x_family)", 1, 200),
            posts_before_url(&site, "anya_(spy_x_family)", 10, 200),
            count_url(&site, "anya_(spy_x_family)"),
        ] {
            let query = param(&url, "tags").expect("a tags parameter");
            let counted = query
                .split_whitespace()
                .map(|term| term.trim_start_matches('-'))
                .filter(|term| !FREE_METATAGS.iter().any(|free| term.starts_with(free)))
                .count();
            assert!(counted <= 2, "{query:?} counts {counted} tags");
            assert!(!query.contains("order:"), "{query:?} orders");
        }
    }

    #[test]
    fn awkward_tags_are_percent_encoded() {
        let site = danbooru();
        for (tag, encoded) in AWKWARD_TAGS {
            let url = posts_url(&site, tag, 1, 20);
            let expected = format!("tags={encoded}+-status%3Adeleted&");
            assert!(url.as_str().contains(&expected), "{tag:?}: {url}");
            assert_eq!(url.fragment(), None);
            assert_eq!(param(&url, "tags"), Some(format!("{tag} -status:deleted")));
            assert_eq!(
                param(&tags_url(&site, tag, 5), "search[name_matches]"),
                Some(format!("*{tag}*"))
            );
        }
    }

    #[test]
    fn credentials_go_on_every_request() {
        let site = site("danbooru", "login = \"anya\"\napi_key = \"peanuts\"");
        let urls = [
            tags_url(&site, "anya", 10),
            aliases_url(&site, "anya"),
            posts_url(&site, "anya", 2, 200),
            posts_before_url(&site, "anya", 99, 200),
            count_url(&site, "anya"),
        ];
        for url in urls {
            assert_eq!(param(&url, "login").as_deref(), Some("anya"), "{url}");
            assert_eq!(param(&url, "api_key").as_deref(), Some("peanuts"), "{url}");
        }
        assert_eq!(param(&posts_url(&danbooru(), "anya", 1, 1), "login"), None);
    }

    #[test]
    fn recorded_posts_parse_with_every_field() {
        let page = parse(POSTS);
        assert_eq!((page.posts.len(), page.skipped, page.total), (10, 0, None));
        let first = &page.posts[0];
        assert_eq!(&*first.source, "danbooru");
        assert_eq!(first.id, 6148688);
        assert_eq!(
            first.md5.as_deref(),
            Some("dc123eec97d06c3aa9cd53d65a2c7abf")
        );
        let cdn = "https://cdn.donmai.us";
        let file = format!("{cdn}/original/dc/12/dc123eec97d06c3aa9cd53d65a2c7abf.jpg");
        assert_eq!(first.file_url.as_deref(), Some(&file[..]));
        let sample = format!("{cdn}/sample/dc/12/sample-dc123eec97d06c3aa9cd53d65a2c7abf.jpg");
        assert_eq!(first.sample_url.as_deref(), Some(&sample[..]));
        let preview = format!("{cdn}/preview/dc/12/dc123eec97d06c3aa9cd53d65a2c7abf.jpg");
        assert_eq!(first.preview_url.as_deref(), Some(&preview[..]));
        assert_eq!((first.width, first.height, first.score), (1500, 2500, 0));
        assert_eq!(first.tags.len(), 18);
        assert!(first.tags.iter().any(|tag| tag == "ekz_(robotekz)"));
        assert_eq!(first.post_url, "https://danbooru.donmai.us/posts/6148688");
        let ids: Vec<u64> = page.posts.iter().map(|post| post.id).collect();
        assert_eq!(ids, (6148679..=6148688).rev().collect::<Vec<_>>());
        let scores: Vec<i64> = page.posts.iter().map(|post| post.score).collect();
        assert_eq!(scores, [0, 0, 1, 0, 0, 2, 1, 1, 4, 2]);
    }

    #[test]
    fn the_four_rating_codes_map_to_the_four_levels() {
        use Rating::{Explicit as E, General as G, Questionable as Q, Sensitive as S};
        let ratings: Vec<Rating> = parse(POSTS).posts.iter().map(|post| post.rating).collect();
        assert_eq!(ratings, [G, G, S, E, S, S, Q, Q, S, S]);
    }

    #[test]
    fn posts_from_2020_read_the_old_safe_as_sensitive() {
        let page = parse(POSTS_2020);
        assert_eq!((page.posts.len(), page.skipped), (10, 0));
        assert!(
            page.posts
                .iter()
                .all(|post| post.rating == Rating::Sensitive)
        );
        let first = &page.posts[0];
        assert_eq!(first.id, 4018204);
        assert_eq!((first.width, first.height, first.score), (1037, 988, 1));
        let file = "https://danbooru.donmai.us/data/4f39497ef8fcd059984c3b1fe86cf542.png";
        assert_eq!(first.file_url.as_deref(), Some(file));
        assert_eq!(first.tags.len(), 24);
        assert!(first.tags.iter().any(|tag| tag == "eyjafjalla_(arknights)"));
        let tag_counts: Vec<usize> = page.posts.iter().map(|post| post.tags.len()).collect();
        assert_eq!(tag_counts, [24, 25, 79, 38, 31, 34, 26, 33, 30, 43]);
    }

    #[test]
    fn a_single_post_object_is_not_a_post_list() {
        let error = parse_posts(&danbooru(), POST_BY_ID.as_bytes()).expect_err("an object");
        assert!(matches!(error, UpstreamError::Malformed { .. }), "{error}");
        let page = parse(&format!("[{POST_BY_ID}]"));
        assert_eq!(page.posts.len(), 1);
        assert_eq!(page.posts[0], parse(POSTS).posts[0]);
    }

    #[test]
    fn restricted_posts_without_md5_or_files_are_skipped_and_counted() {
        let body = r#"[
            {"id": 1, "rating": "e", "score": 3, "tag_string": "gold_only", "image_width": 10},
            {"id": 2, "rating": "g", "file_url": "https://cdn.donmai.us/original/x.jpg"},
            {"id": 3, "md5": "DC123EEC97D06C3AA9CD53D65A2C7ABF"}
        ]"#;
        let page = parse(body);
        assert_eq!((page.posts.len(), page.skipped), (2, 1));
        assert_eq!(page.posts[0].md5, None);
        assert_eq!(
            page.posts[1].md5.as_deref(),
            Some("dc123eec97d06c3aa9cd53d65a2c7abf")
        );
        assert_eq!(
            page.posts[1].rating,
            Rating::Explicit,
            "a missing rating is the strictest"
        );
    }

    #[test]
    fn ids_sizes_and_scores_may_be_strings_or_null() {
        let body = r#"[{"id": "7", "md5": "dc123eec97d06c3aa9cd53d65a2c7abf",
            "image_width": "640", "image_height": null, "score": null, "rating": "q"}]"#;
        let post = &parse(body).posts[0];
        assert_eq!(
            (post.id, post.width, post.height, post.score),
            (7, 640, 0, 0)
        );
        assert_eq!(post.tags, Vec::<String>::new());
    }

    #[test]
    fn relative_and_protocol_relative_urls_keep_the_base_path() {
        let site = site_at("danbooru", "http://127.0.0.1:9000/danbooru");
        let body = r#"[{"id": 1, "md5": "dc123eec97d06c3aa9cd53d65a2c7abf",
            "file_url": "/data/original/x.jpg", "large_file_url": "//cdn.donmai.us/sample/x.jpg",
            "preview_file_url": ""}]"#;
        let post = &parse_posts(&site, body.as_bytes()).expect("parses").posts[0];
        let file = "http://127.0.0.1:9000/danbooru/data/original/x.jpg";
        assert_eq!(post.file_url.as_deref(), Some(file));
        assert_eq!(
            post.sample_url.as_deref(),
            Some("http://cdn.donmai.us/sample/x.jpg")
        );
        assert_eq!(post.preview_url, None);
        assert_eq!(post.post_url, "http://127.0.0.1:9000/danbooru/posts/1");
    }

    #[test]
    fn escaped_json_strings_are_decoded() {
        let body = r#"[{"id": 1, "md5": "dc123eec97d06c3aa9cd53d65a2c7abf",
            "tag_string": "luck_\u0026_logic a\/b", "file_url": "https:\/\/cdn.donmai.us\/x.jpg"}]"#;
        let post = &parse(body).posts[0];
        assert_eq!(post.tags, ["luck_&_logic", "a/b"]);
        assert_eq!(
            post.file_url.as_deref(),
            Some("https://cdn.donmai.us/x.jpg")
        );
    }

    #[test]
    fn an_empty_result_is_an_empty_array() {
        assert_eq!(parse("[]"), PostPage::default());
        assert_eq!(parse(" [ ]\n"), PostPage::default());
    }

    #[test]
    fn bodies_that_are_not_a_post_array_are_errors() {
        let site = danbooru();
        for body in ["", "{}", "[1, 2]", "[{\"md5\": \"x\"}]", "null", "<posts/>"] {
            let error = parse_posts(&site, body.as_bytes()).expect_err(body);
            assert!(
                matches!(error, UpstreamError::Malformed { .. }),
                "{body:?}: {error}"
            );
        }
        let truncated = &POSTS.as_bytes()[..POSTS.len() / 2];
        let error = parse_posts(&site, truncated).expect_err("truncated");
        assert!(error.to_string().contains("truncated"), "{error}");
        let html = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>";
        let error = parse_posts(&site, html).expect_err("html");
        assert_eq!(error, UpstreamError::Challenge { status: 200 });
    }

    #[test]
    fn recorded_tag_searches_parse() {
        let tags = parse_tags(TAGS_BY_COUNT.as_bytes()).expect("parses");
        assert_eq!(tags.len(), 10);
        let first = &tags[0];
        assert_eq!(
            (first.name.as_str(), first.post_count),
            ("multiple_girls", 845764)
        );
        assert_eq!(first.category, crate::model::TagCategory::General);
        let categories: Vec<_> = tags.iter().map(|tag| tag.category).collect();
        assert!(categories.contains(&crate::model::TagCategory::Copyright));
        assert!(categories.contains(&crate::model::TagCategory::Meta));
    }

    #[test]
    fn recorded_2017_tag_list_with_old_fields_parses() {
        use crate::model::TagCategory;
        let tags = parse_tags(TAGS_2017.as_bytes()).expect("parses");
        assert_eq!(tags.len(), 100);
        assert_eq!(tags[0].name, "sugihara_azuki");
        assert_eq!(
            (tags[0].post_count, tags[0].category),
            (10, TagCategory::Artist)
        );
        assert_eq!(tags[99].name, "kuriimuk");
        let characters = tags
            .iter()
            .filter(|tag| tag.category == TagCategory::Character);
        assert_eq!(characters.count(), 26);
        assert!(parse_tags(b"[]").expect("empty").is_empty());
        assert!(parse_tags(b"{}").is_err());
    }

    #[test]
    fn aliases_yield_active_consequents_once() {
        let body = br#"[
            {"antecedent_name": "anya", "consequent_name": "anya_(spy_x_family)", "status": "active"},
            {"antecedent_name": "anya", "consequent_name": "anya_forger", "status": "deleted"},
            {"antecedent_name": "anya", "consequent_name": "anya_(spy_x_family)", "status": "active"},
            {"antecedent_name": "anya", "consequent_name": "anya_(old)"}
        ]"#;
        let names = parse_aliases(body).expect("parses");
        assert_eq!(names, ["anya_(spy_x_family)", "anya_(old)"]);
        assert!(parse_aliases(b"[]").expect("empty").is_empty());
        assert!(parse_aliases(b"{\"a\":1}").is_err());
    }

    #[test]
    fn counts_are_read_and_a_missing_count_is_an_error() {
        assert_eq!(parse_count(br#"{"counts":{"posts":4321}}"#), Ok(4321));
        assert_eq!(parse_count(br#"{"counts":{"posts":"12"}}"#), Ok(12));
        for body in [&br#"{"counts":{"posts":null}}"#[..], b"{}", b"[]", b""] {
            assert!(
                parse_count(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn error_bodies_become_sentences() {
        let tag_limit = br#"{"success":false,"error":"PostQuery::TagLimitError",
            "message":"You cannot search for more than 2 tags at a time.","backtrace":[]}"#;
        let error = error_for(422, tag_limit);
        let reason = "You cannot search for more than 2 tags at a time.".to_owned();
        assert_eq!(
            error,
            UpstreamError::Rejected {
                status: 422,
                reason
            }
        );
        assert!(!error.is_retryable());
        let page_limit = br#"{"success":false,"message":"You cannot go beyond page 1000."}"#;
        assert!(
            error_for(410, page_limit)
                .to_string()
                .contains("beyond page 1000")
        );
        assert!(error_for(410, b"").to_string().contains("page 1000"));
        let auth = error_for(401, br#"{"success":false,"message":"Invalid API key"}"#);
        assert!(matches!(&auth, UpstreamError::Auth(text) if text.contains("Invalid API key")));
        let not_found = error_for(404, b"<h1>Not found</h1>");
        assert!(not_found.to_string().contains("base_url"), "{not_found}");
    }

    #[test]
    fn credentials_never_reach_an_error_message() {
        let site = site("danbooru", "login = \"anya\"\napi_key = \"peanuts\"");
        let body = br#"{"success":false,"message":"Invalid API key"}"#;
        for status in [401, 403, 410, 422, 500, 503] {
            let message = site.error_for(status, body).to_string();
            assert!(!message.contains("peanuts"), "{message}");
        }
    }

    #[test]
    fn challenge_pages_and_server_errors_are_caught_before_the_family() {
        let site = danbooru();
        let html = b"<!DOCTYPE html><html><title>Attention Required! | Cloudflare</title></html>";
        assert_eq!(
            site.error_for(403, html),
            UpstreamError::Challenge { status: 403 }
        );
        let timeout =
            br#"{"success":false,"message":"The database timed out running your query."}"#;
        let error = site.error_for(500, timeout);
        assert!(error.is_retryable(), "{error:?}");
        assert_eq!(
            error.to_string(),
            "the site is failing or unavailable (HTTP 500): The database timed out running your query."
        );
    }
}
