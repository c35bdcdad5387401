//! Danbooru 2: `/posts.json` (1-based pages, `b<id>`/`a<id>` cursors, page limit 1000,
//! two-tag limit), `/counts/posts.json`, `/tags.json`, `/tag_aliases.json` and
//! `/posts/<id>.json`, with Danbooru's JSON error bodies.
//!
//! The tag limit is the anonymous/Member one (2) whatever credentials are sent, and
//! credentials are read from `login`/`api_key` query parameters only, not HTTP Basic.

use serde::Serialize;
use serde_json::json;

use super::{Media, Reply, SourceRequest, json_array, post_json, to_json};
use crate::catalog::{TagEntry, TagOrder, glob_match};
use crate::dates;
use crate::post::{Post, PostSpec, image_md5, mix};
use crate::query::Query;
use crate::world::SimFamily;

/// Terms an anonymous or Member account may search for at once.
const TAG_LIMIT: usize = 2;
/// The deepest numbered page an anonymous or Member account may ask for.
const PAGE_LIMIT: u64 = 1000;
/// Largest `limit` of the tag and alias listings.
const LISTING_MAX_LIMIT: u32 = 1000;

/// Answers one Danbooru request.
pub(crate) fn answer(request: &SourceRequest) -> Reply {
    if let Some(denied) = check_login(request) {
        return denied;
    }
    match request.path {
        "/posts.json" => posts(request),
        "/counts/posts.json" => counts(request),
        "/tags.json" => tags(request),
        "/tag_aliases.json" => aliases(request),
        path => match single_post_id(path) {
            Some(id) => one_post(request, id),
            None => error(
                404,
                "ActionController::RoutingError",
                "That page does not exist.",
            ),
        },
    }
}

/// Danbooru's error body.
fn error(status: u16, class: &str, message: &str) -> Reply {
    let body = json!({ "success": false, "error": class, "message": message });
    Reply::json(status, body.to_string())
}

/// Anonymous use is allowed; one half of a login, or a wrong key, is not.
fn check_login(request: &SourceRequest) -> Option<Reply> {
    let expected = request.source.credentials.as_ref()?;
    let failure = "SessionLoader::AuthenticationFailure";
    match (request.param("login"), request.param("api_key")) {
        (None, None) => None,
        (Some(login), Some(key)) if (login, key) == (&expected.0[..], &expected.1[..]) => None,
        (Some(_), Some(_)) => Some(error(401, failure, "Invalid API key")),
        _ => Some(error(401, failure, "Missing `login` or `api_key`")),
    }
}

/// The `tags` parameter with aliases resolved, or the 422 of the tag limit.
fn parse_tags(request: &SourceRequest) -> Result<Query, Reply> {
    let mut query = Query::parse(request.param("tags").unwrap_or(""), SimFamily::Danbooru);
    query.resolve_aliases(|name| request.source.alias_of(name));
    if query.danbooru_cost() > TAG_LIMIT {
        let message = format!("You cannot search for more than {TAG_LIMIT} tags at a time.");
        return Err(error(422, "PostQuery::TagLimitError", &message));
    }
    Ok(query)
}

/// Which slice of the results a `page` parameter asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Numbered(u64),
    Before(u64),
    After(u64),
}

impl Page {
    /// Reads `page`; zero, negative or unreadable numbers mean the first page.
    fn parse(value: Option<&str>) -> Page {
        let value = value.unwrap_or("1").trim();
        let cursor = |rest: &str| rest.parse::<u64>().ok();
        if let Some(id) = value.strip_prefix('b').and_then(cursor) {
            Page::Before(id)
        } else if let Some(id) = value.strip_prefix('a').and_then(cursor) {
            Page::After(id)
        } else {
            Page::Numbered(value.parse::<i64>().map_or(1, |n| n.max(1) as u64))
        }
    }
}

fn posts(request: &SourceRequest) -> Reply {
    let query = match parse_tags(request) {
        Ok(query) => query,
        Err(rejected) => return rejected,
    };
    let limit = request.page_size(query.limit.filter(|_| request.param("limit").is_none()));
    let found = query.select(&request.source.posts);
    let chosen: Vec<&Post> = match Page::parse(request.param("page")) {
        Page::Numbered(page) if page > PAGE_LIMIT => {
            let message = format!("You cannot go beyond page {PAGE_LIMIT}.");
            return error(410, "PaginationExtension::PaginationError", &message);
        }
        Page::Numbered(page) => found
            .into_iter()
            .skip((page as usize - 1) * limit)
            .take(limit)
            .collect(),
        Page::Before(id) => by_id(found)
            .into_iter()
            .filter(|p| p.id < id)
            .take(limit)
            .collect(),
        Page::After(id) => after(by_id(found), id, limit),
    };
    Reply::json(
        200,
        json_array(chosen.into_iter().map(|p| render(request, p))),
    )
}

/// Cursor pages always walk by id, newest first, whatever `order:` says.
fn by_id(mut posts: Vec<&Post>) -> Vec<&Post> {
    posts.sort_by_key(|p| std::cmp::Reverse(p.id));
    posts
}

/// The `limit` posts just above `id`, newest first.
fn after(newest_first: Vec<&Post>, id: u64, limit: usize) -> Vec<&Post> {
    let above: Vec<&Post> = newest_first.into_iter().filter(|p| p.id > id).collect();
    let skip = above.len().saturating_sub(limit);
    above.into_iter().skip(skip).collect()
}

fn counts(request: &SourceRequest) -> Reply {
    match parse_tags(request) {
        Ok(query) => {
            let n = request
                .source
                .posts
                .iter()
                .filter(|p| query.matches(p))
                .count();
            Reply::json(200, json!({ "counts": { "posts": n } }).to_string())
        }
        Err(rejected) => rejected,
    }
}

fn single_post_id(path: &str) -> Option<u64> {
    path.strip_prefix("/posts/")?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

fn one_post(request: &SourceRequest, id: u64) -> Reply {
    match request.source.posts.iter().find(|p| p.id == id) {
        Some(post) => Reply::json(200, render(request, post)),
        None => error(
            404,
            "ActiveRecord::RecordNotFound",
            "That record was not found.",
        ),
    }
}

/// A page of a listing: `limit` (default 20, at most 1000) and 1-based `page`.
fn listing_page<T>(request: &SourceRequest, rows: Vec<T>) -> Vec<T> {
    let limit = request
        .param("limit")
        .and_then(|l| l.parse::<u32>().ok())
        .unwrap_or(20);
    let limit = limit.clamp(1, LISTING_MAX_LIMIT) as usize;
    let page = request
        .param("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1);
    rows.into_iter()
        .skip(page.saturating_sub(1).saturating_mul(limit))
        .take(limit)
        .collect()
}

/// `/tags.json` with `search[name_matches]`, `search[name]`, `search[category]`,
/// `search[hide_empty]` and `search[order]` (`count`, `name`, `date`; default newest).
fn tags(request: &SourceRequest) -> Reply {
    let search = |key: &str| request.param(&format!("search[{key}]"));
    let pattern = search("name_matches");
    let names: Option<Vec<&str>> = search("name").map(|n| n.split(',').map(str::trim).collect());
    let categories: Option<Vec<u8>> =
        search("category").map(|c| c.split(',').filter_map(|c| c.trim().parse().ok()).collect());
    let hide_empty = search("hide_empty").is_some_and(|v| matches!(v, "true" | "yes" | "1"));
    let keep = |tag: &TagEntry| {
        pattern.is_none_or(|p| glob_match(p, &tag.name))
            && names
                .as_ref()
                .is_none_or(|n| n.contains(&tag.name.as_str()))
            && categories
                .as_ref()
                .is_none_or(|c| c.contains(&tag.category))
            && !(hide_empty && tag.count == 0)
    };
    let order = match search("order") {
        Some("count") => TagOrder::CountDesc,
        Some("name") => TagOrder::NameAsc,
        _ => TagOrder::IdDesc,
    };
    let rows = listing_page(request, request.source.select_tags(keep, order));
    Reply::json(200, json_array(rows.into_iter().map(tag_json)))
}

fn tag_json(tag: &TagEntry) -> String {
    let stamp = dates::danbooru(1_300_000_000 + (tag.id % 100_000) as i64 * 3600);
    let row = json!({
        "id": tag.id,
        "name": tag.name,
        "post_count": tag.count,
        "category": tag.category,
        "created_at": stamp,
        "updated_at": stamp,
        "is_deprecated": false,
    });
    row.to_string()
}

/// `/tag_aliases.json` with `search[antecedent_name]`, `search[consequent_name]`,
/// `search[name_matches]` and `search[status]`; every alias here is active.
fn aliases(request: &SourceRequest) -> Reply {
    let search = |key: &str| request.param(&format!("search[{key}]"));
    let listed = |value: Option<&str>, name: &str| {
        value.is_none_or(|v| v.split(',').any(|item| item.trim() == name))
    };
    let rows: Vec<_> = (request.source.aliases.iter())
        .filter(|a| listed(search("antecedent_name"), &a.antecedent))
        .filter(|a| listed(search("consequent_name"), &a.consequent))
        .filter(|a| {
            search("name_matches")
                .is_none_or(|p| glob_match(p, &a.antecedent) || glob_match(p, &a.consequent))
        })
        .filter(|_| search("status").is_none_or(|s| s.eq_ignore_ascii_case("active")))
        .collect();
    let rows = listing_page(request, rows);
    let json = rows.into_iter().map(|alias| {
        let stamp = dates::danbooru(1_655_000_000 + alias.id as i64 * 7200);
        let row = json!({
            "id": alias.id, "antecedent_name": alias.antecedent,
            "consequent_name": alias.consequent, "creator_id": 1, "forum_topic_id": null,
            "status": "active", "created_at": stamp, "updated_at": stamp,
            "approver_id": 1, "forum_post_id": null, "reason": "",
        });
        row.to_string()
    });
    Reply::json(200, json_array(json))
}

fn render(request: &SourceRequest, post: &Post) -> String {
    post_json(post, |image, spec| {
        to_json(&generated(request, post, image, spec))
    })
}

/// A generated post with the field set of the recorded 2023 posts; a restricted post
/// lacks `md5` and the three file URLs, as Danbooru's policy leaves them out.
#[derive(Serialize)]
struct DanbooruPost {
    id: u64,
    created_at: String,
    uploader_id: u64,
    score: i64,
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    md5: Option<String>,
    last_comment_bumped_at: Option<String>,
    rating: &'static str,
    image_width: u32,
    image_height: u32,
    fav_count: i64,
    file_ext: &'static str,
    last_noted_at: Option<String>,
    parent_id: Option<u64>,
    has_children: bool,
    approver_id: Option<u64>,
    file_size: u64,
    up_score: i64,
    down_score: i64,
    is_pending: bool,
    is_flagged: bool,
    is_deleted: bool,
    updated_at: String,
    is_banned: bool,
    pixiv_id: Option<u64>,
    last_commented_at: Option<String>,
    has_active_children: bool,
    bit_flags: u32,
    has_large: bool,
    has_visible_children: bool,
    #[serde(flatten)]
    tags: TagFields,
    #[serde(flatten)]
    files: Option<FileUrls>,
}

/// `tag_string`, the per-category strings and their counts.
#[derive(Serialize)]
struct TagFields {
    tag_string: String,
    tag_count: usize,
    tag_count_general: usize,
    tag_count_artist: usize,
    tag_count_character: usize,
    tag_count_copyright: usize,
    tag_count_meta: usize,
    tag_string_general: String,
    tag_string_character: String,
    tag_string_copyright: String,
    tag_string_artist: String,
    tag_string_meta: String,
}

#[derive(Serialize)]
struct FileUrls {
    file_url: String,
    large_file_url: String,
    preview_file_url: String,
}

fn generated(request: &SourceRequest, post: &Post, image: u64, spec: &PostSpec) -> DanbooruPost {
    let media = Media::of(post.id, image, spec);
    let h = mix(post.id);
    let created = dates::danbooru(media.created);
    let has_large = media.sample_850().is_some();
    DanbooruPost {
        id: post.id,
        updated_at: dates::danbooru(media.created + (h % 86_400) as i64),
        created_at: created,
        uploader_id: 100_000 + h % 900_000,
        score: spec.score,
        source: format!("https://www.pixiv.net/artworks/{}", 98_000_000 + image),
        md5: (!spec.restricted).then(|| image_md5(image)),
        last_comment_bumped_at: None,
        rating: spec.rating.letter(),
        image_width: spec.width,
        image_height: spec.height,
        fav_count: spec.score + (h % 7) as i64,
        file_ext: media.ext,
        last_noted_at: None,
        parent_id: None,
        has_children: false,
        approver_id: None,
        file_size: media.file_size,
        up_score: spec.score.max(0),
        down_score: -spec.score.min(0),
        is_pending: false,
        is_flagged: false,
        is_deleted: false,
        is_banned: false,
        pixiv_id: Some(98_000_000 + image),
        last_commented_at: None,
        has_active_children: false,
        bit_flags: 0,
        has_large,
        has_visible_children: false,
        tags: tag_fields(request, post),
        files: (!spec.restricted).then(|| file_urls(request, post.id, image, media.ext, has_large)),
    }
}

fn tag_fields(request: &SourceRequest, post: &Post) -> TagFields {
    let of = |category: u8| -> Vec<&str> {
        let tags = post
            .tags
            .iter()
            .filter(|t| request.source.category(t) == category);
        tags.map(String::as_str).collect()
    };
    let [general, artist, copyright, character, meta] = [0, 1, 3, 4, 5].map(of);
    TagFields {
        tag_string: post.tags.join(" "),
        tag_count: post.tags.len(),
        tag_count_general: general.len(),
        tag_count_artist: artist.len(),
        tag_count_character: character.len(),
        tag_count_copyright: copyright.len(),
        tag_count_meta: meta.len(),
        tag_string_general: general.join(" "),
        tag_string_character: character.join(" "),
        tag_string_copyright: copyright.join(" "),
        tag_string_artist: artist.join(" "),
        tag_string_meta: meta.join(" "),
    }
}

/// Files laid out like `cdn.donmai.us`, under the simulator's address.
fn file_urls(request: &SourceRequest, id: u64, image: u64, ext: &str, large: bool) -> FileUrls {
    let md5 = image_md5(image);
    let dirs = format!("{}/{}", &md5[0..2], &md5[2..4]);
    let file_url = request.link(id, &format!("/data/original/{dirs}/{md5}.{ext}"));
    FileUrls {
        large_file_url: match large {
            true => request.link(id, &format!("/data/sample/{dirs}/sample-{md5}.jpg")),
            false => file_url.clone(),
        },
        preview_file_url: request.link(id, &format!("/data/preview/{dirs}/{md5}.jpg")),
        file_url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_cursors_parse_like_danbooru() {
        assert_eq!(Page::parse(None), Page::Numbered(1));
        assert_eq!(Page::parse(Some("0")), Page::Numbered(1));
        assert_eq!(Page::parse(Some("-3")), Page::Numbered(1));
        assert_eq!(Page::parse(Some("b123")), Page::Before(123));
        assert_eq!(Page::parse(Some("a5")), Page::After(5));
        assert_eq!(Page::parse(Some("1001")), Page::Numbered(1001));
    }
}
