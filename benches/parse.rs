//! How fast each adapter family parses a 200-post page, built from the recorded fixtures
//! by repeating their posts with distinct ids and MD5s (so nothing could be shared or cached).
//!
//! Run with `cargo bench --bench parse`; add `-- --quick` for a short run.

use std::hint::black_box;

use anya_image_api::config::Config;
use anya_image_api::sources::Site;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

/// Posts on every benchmarked page.
const POSTS: usize = 200;

const DANBOORU: &str = include_str!("../tests/fixtures/danbooru/posts.json");
const GELBOORU: &str = include_str!("../tests/fixtures/gelbooru/posts.json");
const GELBOORU_XML: &str = include_str!("../tests/fixtures/gelbooru/posts_legacy_2017.xml");
const SAFEBOORU: &str = include_str!("../tests/fixtures/safebooru/post_by_id.json");
const KONACHAN: &str = include_str!("../tests/fixtures/konachan/posts.json");

/// The built-in source `id` from the default configuration.
fn site(id: &str) -> Site {
    let config = Config::from_toml("").expect("the default configuration is valid");
    Site::new(id, &config.sources[id])
}

/// The MD5-like hex name of the `index`th benchmark post.
fn md5(index: usize) -> String {
    format!("{index:032x}")
}

/// `POSTS` posts cycling through `posts`, each with its own id and `md5_key`.
fn distinct(posts: &[Value], md5_key: &str) -> Vec<Value> {
    (0..POSTS)
        .map(|index| {
            let mut post = posts[index % posts.len()].clone();
            post["id"] = json!(1_000_000 + index);
            post[md5_key] = json!(md5(index));
            post
        })
        .collect()
}

fn array_of(fixture: &str) -> Vec<Value> {
    serde_json::from_str(fixture).expect("the fixture is a JSON array")
}

fn danbooru_page() -> String {
    Value::from(distinct(&array_of(DANBOORU), "md5")).to_string()
}

fn gelbooru_page() -> String {
    let envelope: Value = serde_json::from_str(GELBOORU).expect("the fixture is JSON");
    let posts = envelope["post"]
        .as_array()
        .expect("the envelope holds posts");
    let attributes = json!({"limit": POSTS, "offset": 0, "count": 6877});
    json!({"@attributes": attributes, "post": distinct(posts, "md5")}).to_string()
}

fn safebooru_page() -> String {
    Value::from(distinct(&array_of(SAFEBOORU), "hash")).to_string()
}

fn moebooru_page() -> String {
    Value::from(distinct(&array_of(KONACHAN), "md5")).to_string()
}

/// The 2017 XML post list with `POSTS` `<post/>` elements, ids and MD5s rewritten.
fn gelbooru_xml_page() -> String {
    let elements: Vec<&str> = GELBOORU_XML
        .split("<post ")
        .skip(1)
        .map(|element| element.split("/>").next().expect("a closed element"))
        .collect();
    let mut page =
        format!(r#"<?xml version="1.0" encoding="UTF-8"?><posts count="{POSTS}" offset="0">"#);
    for index in 0..POSTS {
        let element = elements[index % elements.len()];
        let element = replace_attribute(element, "md5", &md5(index));
        let element = replace_attribute(&element, " id", &(1_000_000 + index).to_string());
        page.push_str(&format!("<post {element}/>\n"));
    }
    page.push_str("</posts>");
    page
}

/// `element` (attribute text) with the value of attribute `name` replaced by `value`.
fn replace_attribute(element: &str, name: &str, value: &str) -> String {
    let marker = format!("{name}=\"");
    let start = element.find(&marker).expect("the attribute exists") + marker.len();
    let end = start + element[start..].find('"').expect("a closed value");
    format!("{}{value}{}", &element[..start], &element[end..])
}

fn parse_200_posts(c: &mut Criterion) {
    let cases = [
        ("danbooru", site("danbooru"), danbooru_page()),
        ("gelbooru_envelope", site("gelbooru"), gelbooru_page()),
        ("gelbooru_xml_2017", site("gelbooru"), gelbooru_xml_page()),
        (
            "gelbooru_v02_safebooru",
            site("safebooru"),
            safebooru_page(),
        ),
        ("moebooru_konachan", site("konachan"), moebooru_page()),
    ];
    let mut group = c.benchmark_group("parse_200_posts");
    group.throughput(Throughput::Elements(POSTS as u64));
    for (name, site, body) in &cases {
        let page = site.parse_posts(body.as_bytes()).expect("the page parses");
        assert_eq!(page.posts.len(), POSTS, "{name}: every post is kept");
        group.bench_function(*name, |b| {
            b.iter(|| site.parse_posts(black_box(body.as_bytes())));
        });
    }
    group.finish();
}

criterion_group!(benches, parse_200_posts);
criterion_main!(benches);
