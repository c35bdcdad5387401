//! Moebooru (Yande.re, Konachan): `/post.json` and `/post.xml` (1-based pages, six-tag
//! limit answered with HTTP 500) and `/tag.json`, with the yande.re field set or
//! Konachan's reduced one.
//!
//! API v2 (`api_version=2`) is not simulated: such requests get the plain v1 array.

use serde::Serialize;
use serde_json::json;

use super::{
    Media, Reply, SourceRequest, XML_DECLARATION, encode_name, json_array, post_json,
    scalar_fields, to_json, xml_empty_element,
};
use crate::catalog::{TagEntry, TagOrder, glob_match};
use crate::post::{Post, PostSpec, image_md5, mix};
use crate::query::Query;
use crate::world::SimFamily;

/// Tags a query may name (Moebooru's `tag_query_limit`).
const TAG_LIMIT: usize = 6;

/// Answers one Moebooru request.
pub(crate) fn answer(request: &SourceRequest) -> Reply {
    if let Some(denied) = check_login(request) {
        return denied;
    }
    match request.path {
        "/post.json" => posts(request, false),
        "/post.xml" => posts(request, true),
        "/tag.json" => tags(request),
        _ => Reply::html(
            404,
            "<html><body><h1>The page you were looking for doesn't exist.</h1></body></html>",
        ),
    }
}

/// Reads are open; a `login` with a wrong `password_hash` is refused.
fn check_login(request: &SourceRequest) -> Option<Reply> {
    let (user, key) = request.source.credentials.as_ref()?;
    let given = (request.param("login"), request.param("password_hash"));
    match given {
        (None, None) => None,
        (Some(login), Some(hash)) if login == user && hash == key => None,
        _ => Some(Reply::json(
            403,
            r#"{"success":false,"reason":"access denied"}"#.to_owned(),
        )),
    }
}

fn posts(request: &SourceRequest, xml: bool) -> Reply {
    let query = Query::parse(request.param("tags").unwrap_or(""), SimFamily::Moebooru);
    if query.moebooru_cost() > TAG_LIMIT {
        let reason = format!("Error: You cannot search for more than {TAG_LIMIT} tags at a time");
        return match xml {
            false => Reply::json(
                500,
                json!({ "success": false, "reason": reason }).to_string(),
            ),
            true => Reply::xml(500, error_xml(&reason)),
        };
    }
    let limit = request.page_size(None);
    let page = request
        .param("page")
        .and_then(|p| p.trim().parse::<i64>().ok())
        .unwrap_or(1);
    let offset = (page.clamp(1, 1_000_000) as usize - 1) * limit;
    let found = query.select(&request.source.posts);
    let total = found.len();
    let chosen = found
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|p| render(request, p));
    match xml {
        false => Reply::json(200, json_array(chosen)),
        true => Reply::xml(200, posts_xml(total, offset, chosen)),
    }
}

fn error_xml(reason: &str) -> String {
    let attributes =
        [("success", "false"), ("reason", reason)].map(|(k, v)| (k.to_owned(), v.to_owned()));
    format!(
        "{XML_DECLARATION}{}",
        xml_empty_element("response", &attributes)
    )
}

/// `<posts count="N" offset="O"><post id="…" …/></posts>`.
fn posts_xml(total: usize, offset: usize, posts: impl Iterator<Item = String>) -> String {
    let mut out = format!("{XML_DECLARATION}<posts count=\"{total}\" offset=\"{offset}\">");
    for json in posts {
        out.push_str(&xml_empty_element("post", &scalar_fields(&json)));
    }
    out.push_str("</posts>");
    out
}

/// `/tag.json`: `name` is a substring unless it holds `*`; `order` is `count`, `date` or
/// `name` (default); `type`, `id`, `after_id`; `limit` defaults to 50 and 0 lists all.
fn tags(request: &SourceRequest) -> Reply {
    let number = |key: &str| {
        request
            .param(key)
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let found = find_tags(request);
    let rows: Vec<&TagEntry> = match number("limit").unwrap_or(50) as usize {
        0 => found,
        limit => {
            let page = number("page").unwrap_or(1).max(1) as usize;
            let offset = (page - 1).saturating_mul(limit);
            found.into_iter().skip(offset).take(limit).collect()
        }
    };
    let json = rows.into_iter().map(|t| {
        let row = json!({
            "id": t.id, "name": t.name, "count": t.count, "type": t.category, "ambiguous": false,
        });
        row.to_string()
    });
    Reply::json(200, json_array(json))
}

fn find_tags<'a>(request: &'a SourceRequest) -> Vec<&'a TagEntry> {
    let number = |key: &str| {
        request
            .param(key)
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let name = request.param("name").filter(|n| !n.is_empty());
    let pattern = name.map(|name| match name.contains('*') {
        true => name.to_owned(),
        false => format!("*{name}*"),
    });
    let (kind, id, after_id) = (number("type"), number("id"), number("after_id"));
    let keep = |tag: &TagEntry| {
        pattern.as_deref().is_none_or(|p| glob_match(p, &tag.name))
            && kind.is_none_or(|k| u64::from(tag.category) == k)
            && id.is_none_or(|id| tag.id == id)
            && after_id.is_none_or(|after| tag.id > after)
    };
    let order = match request.param("order") {
        Some("count") => TagOrder::CountDesc,
        Some("date") => TagOrder::IdDesc,
        _ => TagOrder::NameAsc,
    };
    request.source.select_tags(keep, order)
}

fn render(request: &SourceRequest, post: &Post) -> String {
    post_json(post, |image, spec| {
        to_json(&generated(request, post, image, spec))
    })
}

/// A generated post with Konachan's field set, plus yande.re's extra fields unless the
/// source prints the reduced set.
#[derive(Serialize)]
struct MoebooruPost {
    id: u64,
    tags: String,
    created_at: i64,
    creator_id: u64,
    author: String,
    change: u64,
    source: String,
    score: i64,
    md5: String,
    file_size: u64,
    file_url: String,
    is_shown_in_index: bool,
    preview_url: String,
    sample_url: String,
    jpeg_url: String,
    #[serde(flatten)]
    sizes: Sizes,
    rating: &'static str,
    has_children: bool,
    parent_id: Option<u64>,
    status: &'static str,
    width: u32,
    height: u32,
    is_held: bool,
    frames_pending_string: &'static str,
    frames_pending: [u8; 0],
    frames_string: &'static str,
    frames: [u8; 0],
    #[serde(flatten)]
    full: Option<YandereFields>,
}

/// The sizes of the preview, sample and JPEG versions.
#[derive(Serialize)]
struct Sizes {
    preview_width: u32,
    preview_height: u32,
    actual_preview_width: u32,
    actual_preview_height: u32,
    sample_width: u32,
    sample_height: u32,
    sample_file_size: u64,
    jpeg_width: u32,
    jpeg_height: u32,
    jpeg_file_size: u64,
}

impl Sizes {
    /// Previews fit 150 px (300 px actual), samples 1500 px; a PNG has a separate JPEG.
    fn of(media: &Media) -> Sizes {
        let (preview_width, preview_height) = media.fit(150);
        let (actual_preview_width, actual_preview_height) = media.fit(300);
        let (sample_width, sample_height) = media.fit(1500);
        Sizes {
            preview_width,
            preview_height,
            actual_preview_width,
            actual_preview_height,
            sample_width,
            sample_height,
            sample_file_size: u64::from(sample_width) * u64::from(sample_height) / 5,
            jpeg_width: media.width,
            jpeg_height: media.height,
            jpeg_file_size: if media.ext == "png" {
                media.file_size / 3
            } else {
                0
            },
        }
    }
}

/// The fields yande.re prints and Konachan's older fork does not.
#[derive(Serialize)]
struct YandereFields {
    updated_at: i64,
    approver_id: Option<u64>,
    file_ext: &'static str,
    is_rating_locked: bool,
    is_pending: bool,
    is_note_locked: bool,
    last_noted_at: i64,
    last_commented_at: i64,
}

fn generated(request: &SourceRequest, post: &Post, image: u64, spec: &PostSpec) -> MoebooruPost {
    let media = Media::of(post.id, image, spec);
    let urls = urls(request, post, image, &media);
    let h = mix(post.id);
    MoebooruPost {
        id: post.id,
        tags: post.tags.join(" "),
        created_at: media.created,
        creator_id: 10_000 + h % 90_000,
        author: format!("uploader{}", h % 1000),
        change: 2_000_000 + post.id % 1_000_000,
        source: format!("https://www.pixiv.net/artworks/{}", 98_000_000 + image),
        score: spec.score,
        md5: image_md5(image),
        file_size: media.file_size,
        is_shown_in_index: true,
        sizes: Sizes::of(&media),
        rating: spec.rating.safe_letter(),
        has_children: false,
        parent_id: None,
        status: "active",
        width: spec.width,
        height: spec.height,
        is_held: false,
        frames_pending_string: "",
        frames_pending: [],
        frames_string: "",
        frames: [],
        full: (!request.source.reduced_fields).then(|| YandereFields::of(&media, h)),
        file_url: urls.file,
        preview_url: urls.preview,
        sample_url: urls.sample,
        jpeg_url: urls.jpeg,
    }
}

impl YandereFields {
    fn of(media: &Media, h: u64) -> YandereFields {
        YandereFields {
            updated_at: media.created + (h % 86_400) as i64,
            approver_id: None,
            file_ext: media.ext,
            is_rating_locked: false,
            is_pending: false,
            is_note_locked: false,
            last_noted_at: 0,
            last_commented_at: 0,
        }
    }
}

struct Urls {
    file: String,
    preview: String,
    sample: String,
    jpeg: String,
}

/// The sites' file layout (`/image/<md5>/<site> <id> <tags>.<ext>`, `/sample/…`,
/// `/jpeg/…`, `/data/preview/<aa>/<bb>/<md5>.jpg`) under the simulator's address.
fn urls(request: &SourceRequest, post: &Post, image: u64, media: &Media) -> Urls {
    let md5 = image_md5(image);
    let prefix = match request.source.reduced_fields {
        true => format!("Konachan.com - {}", post.id),
        false => format!("yande.re {}", post.id),
    };
    let name = encode_name(&format!("{prefix} {}", post.tags.join(" ")));
    let file = request.link(post.id, &format!("/image/{md5}/{name}.{}", media.ext));
    let sample_name = encode_name(&format!("{prefix} sample"));
    Urls {
        preview: request.link(
            post.id,
            &format!("/data/preview/{}/{}/{md5}.jpg", &md5[0..2], &md5[2..4]),
        ),
        sample: match media.width.max(media.height) > 1500 {
            true => request.link(post.id, &format!("/sample/{md5}/{sample_name}.jpg")),
            false => file.clone(),
        },
        jpeg: match media.ext {
            "png" => request.link(post.id, &format!("/jpeg/{md5}/{name}.jpg")),
            _ => file.clone(),
        },
        file,
    }
}
