//! Gelbooru's `index.php?page=dapi&q=index` API in both flavours: 0.2.5 (gelbooru.com:
//! `@attributes` envelope, `md5`, 401 `[]` without an account) and 0.2 (Safebooru, TBIB:
//! bare arrays, `hash`, an empty body when nothing matches, XML with the total).
//!
//! Pages are 0-based (`pid`). Like the real sites, a page reaching deeper than the source's
//! depth ceiling (20 000 results by default) is answered with an empty body: unparsable for
//! Gelbooru 0.2.5, "nothing" for Gelbooru 0.2; searching below an `id:<N` bound reaches
//! the rest. Gelbooru 0.2.5's XML (child elements) is printed for completeness only.

use serde::Serialize;
use serde_json::json;

use super::{
    Media, Reply, SourceRequest, XML_DECLARATION, json_array, post_json, scalar_fields, to_json,
    xml_empty_element, xml_escape,
};
use crate::catalog::{TagEntry, TagOrder, like_match};
use crate::dates;
use crate::post::{Post, PostSpec, image_file_stem, image_md5, mix};
use crate::query::Query;
use crate::world::SimFamily;

/// Largest `limit` of the tag API.
const TAG_MAX_LIMIT: u32 = 1000;

/// Answers one Gelbooru or Gelbooru 0.2 request.
pub(crate) fn answer(request: &SourceRequest) -> Reply {
    let dapi = request.param("page") == Some("dapi") && request.param("q") == Some("index");
    if request.path != "/index.php" || !dapi {
        return not_found();
    }
    if let Some(denied) = check_account(request) {
        return denied;
    }
    match request.param("s") {
        Some("post") => posts(request),
        Some("tag") => tags(request),
        _ => not_found(),
    }
}

/// The PHP sites answer unknown pages with a bare HTML 404.
fn not_found() -> Reply {
    Reply::html(404, "<html><body><h1>404 Not Found</h1></body></html>")
}

fn is_v02(request: &SourceRequest) -> bool {
    request.source.family == SimFamily::GelbooruV02
}

fn wants_json(request: &SourceRequest) -> bool {
    request.param("json") == Some("1")
}

/// Gelbooru answers 401 with `[]`; the 0.2 engine answers 200 with an XML `<error>`.
fn check_account(request: &SourceRequest) -> Option<Reply> {
    let (user, key) = request.source.credentials.as_ref()?;
    let given = (request.param("user_id"), request.param("api_key"));
    if given == (Some(user.as_str()), Some(key.as_str())) {
        return None;
    }
    if is_v02(request) {
        let body = format!("{XML_DECLARATION}<error>Missing authentication.</error>");
        return Some(Reply::xml(200, body));
    }
    Some(Reply::json(401, "[]".to_owned()))
}

fn posts(request: &SourceRequest) -> Reply {
    let limit = request.page_size(None);
    let (total, offset, page) = match request.param("id") {
        Some(id) => {
            let id: u64 = id.trim().parse().unwrap_or(0);
            let found: Vec<&Post> = request.source.posts.iter().filter(|p| p.id == id).collect();
            (found.len(), 0, found)
        }
        None => {
            let query = Query::parse(request.param("tags").unwrap_or(""), request.source.family);
            let found = query.select(&request.source.posts);
            let pid: usize = request
                .param("pid")
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or(0);
            let offset = pid.saturating_mul(limit);
            let depth = request.source.max_depth;
            if depth.is_some_and(|depth| offset.saturating_add(limit) > depth) {
                return Reply::json(200, String::new());
            }
            (
                found.len(),
                offset,
                found.into_iter().skip(offset).take(limit).collect(),
            )
        }
    };
    let body = PageBody {
        total,
        offset,
        limit,
        posts: page,
    };
    match (is_v02(request), wants_json(request)) {
        (false, true) => Reply::json(200, envelope(request, &body)),
        (false, false) => Reply::xml(200, child_xml(request, &body)),
        (true, true) => Reply::json(200, bare_array(request, &body)),
        (true, false) => Reply::xml(200, attribute_xml(request, &body)),
    }
}

/// One page of a post search.
struct PageBody<'a> {
    total: usize,
    offset: usize,
    limit: usize,
    posts: Vec<&'a Post>,
}

/// `{"@attributes":{…},"post":[…]}`, without `post` when the page is empty.
fn envelope(request: &SourceRequest, page: &PageBody) -> String {
    let attributes = json!({ "limit": page.limit, "offset": page.offset, "count": page.total });
    if page.posts.is_empty() {
        return format!("{{\"@attributes\":{attributes}}}");
    }
    let posts = json_array(page.posts.iter().map(|p| render(request, p)));
    format!("{{\"@attributes\":{attributes},\"post\":{posts}}}")
}

/// Gelbooru 0.2's JSON: a bare array, or nothing at all when the page is empty.
fn bare_array(request: &SourceRequest, page: &PageBody) -> String {
    if page.posts.is_empty() {
        return String::new();
    }
    json_array(page.posts.iter().map(|p| render(request, p)))
}

/// Current Gelbooru XML: `<posts limit offset count><post><id>…</id>…</post></posts>`.
fn child_xml(request: &SourceRequest, page: &PageBody) -> String {
    let mut out = format!(
        "{XML_DECLARATION}<posts limit=\"{}\" offset=\"{}\" count=\"{}\">",
        page.limit, page.offset, page.total
    );
    for post in &page.posts {
        out.push_str("<post>");
        for (name, value) in scalar_fields(&render(request, post)) {
            out.push_str(&format!("<{name}>{}</{name}>", xml_escape(&value)));
        }
        out.push_str("</post>");
    }
    out.push_str("</posts>");
    out
}

/// Gelbooru 0.2 XML: attributes, `md5` instead of `hash`, letter ratings.
fn attribute_xml(request: &SourceRequest, page: &PageBody) -> String {
    let head = format!(
        "{XML_DECLARATION}<posts count=\"{}\" offset=\"{}\"",
        page.total, page.offset
    );
    if page.posts.is_empty() {
        return format!("{head}/>");
    }
    let mut out = format!("{head}>");
    for post in &page.posts {
        let attributes: Vec<(String, String)> = scalar_fields(&render(request, post))
            .into_iter()
            .map(|(name, value)| xml_attribute(name, value))
            .collect();
        out.push_str(&xml_empty_element("post", &attributes));
    }
    out.push_str("</posts>");
    out
}

fn xml_attribute(name: String, value: String) -> (String, String) {
    match name.as_str() {
        "hash" => ("md5".to_owned(), value),
        "rating" => {
            let rating = crate::post::Rating::from_wire(&value);
            (name, rating.map_or(value, |r| r.safe_letter().to_owned()))
        }
        "parent_id" if value == "0" => (name, String::new()),
        _ => (name, value),
    }
}

/// The tag API: `id`, `after_id`, `name`, `names`, `name_pattern`, `orderby`
/// (`count`, `name`, `date`) and `order` (default DESC), `limit`, `pid`. Without
/// `orderby`, a `names` lookup keeps the order of the names given (as recorded) and any
/// other lookup lists by id.
fn tags(request: &SourceRequest) -> Reply {
    let limit = request
        .param("limit")
        .and_then(|l| l.trim().parse::<u32>().ok())
        .unwrap_or(100);
    let limit = limit.clamp(1, TAG_MAX_LIMIT) as usize;
    let pid: usize = request
        .param("pid")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0);
    let found = find_tags(request);
    let total = found.len();
    let offset = pid.saturating_mul(limit);
    let page: Vec<&TagEntry> = found.into_iter().skip(offset).take(limit).collect();
    let xml = !wants_json(request) || (is_v02(request) && request.source.tag_format_xml);
    match (xml, is_v02(request)) {
        (true, _) => Reply::xml(200, tags_xml(&page)),
        (false, true) => Reply::json(200, json_array(page.iter().map(|t| tag_json(t, true)))),
        (false, false) => Reply::json(200, tags_envelope(&page, limit, offset, total)),
    }
}

fn find_tags<'a>(request: &'a SourceRequest) -> Vec<&'a TagEntry> {
    let number = |key: &str| {
        request
            .param(key)
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let (id, after_id) = (number("id"), number("after_id"));
    let name = request.param("name");
    let names: Option<Vec<&str>> = request
        .param("names")
        .map(|n| n.split_whitespace().collect());
    let pattern = request.param("name_pattern");
    let keep = |tag: &TagEntry| {
        id.is_none_or(|id| tag.id == id)
            && after_id.is_none_or(|after| tag.id > after)
            && name.is_none_or(|n| n.eq_ignore_ascii_case(&tag.name))
            && names
                .as_ref()
                .is_none_or(|n| n.contains(&tag.name.as_str()))
            && pattern.is_none_or(|p| like_match(p, &tag.name))
    };
    let mut found = request.source.select_tags(keep, tag_order(request));
    if let (Some(names), None) = (&names, request.param("orderby")) {
        found.sort_by_key(|t| names.iter().position(|n| *n == t.name));
    }
    found
}

fn tag_order(request: &SourceRequest) -> TagOrder {
    let ascending = request
        .param("order")
        .is_some_and(|o| o.eq_ignore_ascii_case("asc"));
    match (request.param("orderby"), ascending) {
        (Some("count"), false) => TagOrder::CountDesc,
        (Some("count"), true) => TagOrder::CountAsc,
        (Some("name"), false) => TagOrder::NameDesc,
        (Some("name"), true) => TagOrder::NameAsc,
        (Some("date"), false) => TagOrder::IdDesc,
        _ => TagOrder::IdAsc,
    }
}

/// A tag row; Gelbooru prints `ambiguous` as 0/1, Gelbooru 0.2 JSON as a boolean.
fn tag_json(tag: &TagEntry, boolean: bool) -> String {
    let ambiguous = if boolean { json!(false) } else { json!(0) };
    let row = json!({
        "id": tag.id, "name": tag.name, "count": tag.count,
        "type": tag.category, "ambiguous": ambiguous,
    });
    row.to_string()
}

fn tags_envelope(page: &[&TagEntry], limit: usize, offset: usize, total: usize) -> String {
    let attributes = json!({ "limit": limit, "offset": offset, "count": total });
    if page.is_empty() {
        return format!("{{\"@attributes\":{attributes}}}");
    }
    let rows = json_array(page.iter().map(|t| tag_json(t, false)));
    format!("{{\"@attributes\":{attributes},\"tag\":{rows}}}")
}

/// `<tags type="array"><tag type="4" count="12" name="…" ambiguous="false" id="1"/></tags>`.
fn tags_xml(page: &[&TagEntry]) -> String {
    let mut out = format!("{XML_DECLARATION}<tags type=\"array\">");
    for tag in page {
        let attributes = [
            ("type", tag.category.to_string()),
            ("count", tag.count.to_string()),
            ("name", tag.name.clone()),
            ("ambiguous", "false".to_owned()),
            ("id", tag.id.to_string()),
        ]
        .map(|(k, v)| (k.to_owned(), v));
        out.push_str(&xml_empty_element("tag", &attributes));
    }
    out.push_str("</tags>");
    out
}

fn render(request: &SourceRequest, post: &Post) -> String {
    post_json(post, |image, spec| match is_v02(request) {
        true => to_json(&v02_post(request, post, image, spec)),
        false => to_json(&gelbooru_post(request, post, image, spec)),
    })
}

/// A generated post with the field set of the recorded gelbooru.com posts.
#[derive(Serialize)]
struct GelbooruPost {
    id: u64,
    created_at: String,
    score: i64,
    width: u32,
    height: u32,
    md5: String,
    directory: String,
    image: String,
    rating: &'static str,
    source: String,
    change: i64,
    owner: &'static str,
    creator_id: u64,
    parent_id: u64,
    sample: u8,
    preview_height: u32,
    preview_width: u32,
    tags: String,
    title: &'static str,
    has_notes: &'static str,
    has_comments: &'static str,
    #[serde(flatten)]
    files: GelbooruFiles,
    status: &'static str,
    post_locked: u8,
    has_children: &'static str,
}

/// The file URLs; without a sample, `sample_url` is empty and its size 0, as recorded.
#[derive(Serialize)]
struct GelbooruFiles {
    file_url: String,
    preview_url: String,
    sample_url: String,
    sample_height: u32,
    sample_width: u32,
}

impl GelbooruFiles {
    fn of(request: &SourceRequest, id: u64, md5: &str, media: &Media) -> GelbooruFiles {
        let directory = format!("{}/{}", &md5[0..2], &md5[2..4]);
        let link = |path: String| request.link(id, &path);
        let sample = media.sample_850();
        GelbooruFiles {
            file_url: link(format!("/images/{directory}/{md5}.{}", media.ext)),
            preview_url: link(format!("/thumbnails/{directory}/thumbnail_{md5}.jpg")),
            sample_url: sample.map_or(String::new(), |_| {
                link(format!("/samples/{directory}/sample_{md5}.jpg"))
            }),
            sample_height: sample.map_or(0, |s| s.1),
            sample_width: sample.map_or(0, |s| s.0),
        }
    }
}

fn gelbooru_post(
    request: &SourceRequest,
    post: &Post,
    image: u64,
    spec: &PostSpec,
) -> GelbooruPost {
    let media = Media::of(post.id, image, spec);
    let md5 = image_md5(image);
    let directory = format!("{}/{}", &md5[0..2], &md5[2..4]);
    let (preview_width, preview_height) = media.fit(250);
    GelbooruPost {
        id: post.id,
        created_at: dates::gelbooru(media.created),
        score: spec.score,
        width: spec.width,
        height: spec.height,
        image: format!("{md5}.{}", media.ext),
        rating: spec.rating.word(),
        source: format!("https://www.pixiv.net/artworks/{}", 98_000_000 + image),
        change: media.created + 120,
        owner: "danbooru",
        creator_id: 6498,
        parent_id: 0,
        sample: u8::from(media.sample_850().is_some()),
        preview_height,
        preview_width,
        tags: post.tags.join(" "),
        title: "",
        has_notes: "false",
        has_comments: "false",
        files: GelbooruFiles::of(request, post.id, &md5, &media),
        status: "active",
        post_locked: 0,
        has_children: "false",
        directory,
        md5,
    }
}

/// A generated Gelbooru 0.2 post: the recorded Safebooru field set, and for every third
/// post the newer form's URLs and extra fields as well.
#[derive(Serialize)]
struct V02Post {
    directory: String,
    hash: String,
    height: u32,
    id: u64,
    image: String,
    change: i64,
    owner: &'static str,
    parent_id: u64,
    rating: &'static str,
    sample: bool,
    sample_height: u32,
    sample_width: u32,
    score: Option<i64>,
    tags: String,
    width: u32,
    #[serde(flatten)]
    newer: Option<V02NewerFields>,
}

#[derive(Serialize)]
struct V02NewerFields {
    preview_url: String,
    sample_url: String,
    file_url: String,
    source: String,
    status: &'static str,
    has_notes: bool,
    comment_count: u32,
}

fn v02_post(request: &SourceRequest, post: &Post, image: u64, spec: &PostSpec) -> V02Post {
    let media = Media::of(post.id, image, spec);
    let directory = (post.id / 1000).to_string();
    let stem = image_file_stem(image);
    let sample = media.sample_850();
    V02Post {
        hash: image_md5(image),
        height: spec.height,
        id: post.id,
        image: format!("{stem}.{}", media.ext),
        change: media.created + 120,
        owner: "danbooru",
        parent_id: 0,
        rating: v02_rating(spec),
        sample: sample.is_some(),
        sample_height: sample.map_or(0, |s| s.1),
        sample_width: sample.map_or(0, |s| s.0),
        score: (spec.score != 0 || post.id % 2 == 0).then_some(spec.score),
        tags: post.tags.join(" "),
        width: spec.width,
        newer: (mix(post.id) % 3 == 0)
            .then(|| v02_newer(request, post.id, &directory, &stem, &media)),
        directory,
    }
}

/// Gelbooru 0.2's words; sensitive is printed as the older `safe`.
fn v02_rating(spec: &PostSpec) -> &'static str {
    match spec.rating {
        crate::post::Rating::Sensitive => "safe",
        other => other.word(),
    }
}

/// The newer form's URLs; without a sample, `sample_url` repeats the original's.
fn v02_newer(
    request: &SourceRequest,
    id: u64,
    directory: &str,
    stem: &str,
    media: &Media,
) -> V02NewerFields {
    let link = |path: String| request.link(id, &path);
    let file_url = link(format!("/images/{directory}/{stem}.{}", media.ext));
    V02NewerFields {
        preview_url: link(format!("/thumbnails/{directory}/thumbnail_{stem}.jpg")),
        sample_url: match media.sample_850() {
            Some(_) => link(format!("/samples/{directory}/sample_{stem}.jpg")),
            None => file_url.clone(),
        },
        file_url,
        source: String::new(),
        status: "active",
        has_notes: false,
        comment_count: 0,
    }
}
