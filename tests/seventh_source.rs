//! A source beyond the built-in six, added in configuration alone: `konachan_com`, a second
//! Konachan (the `.com` site) of the Moebooru family, beside the built-in Yande.re. It is
//! listed with its own settings, searched alone it returns exactly its own posts with URLs
//! on its own base, and a search of all sources includes it.

mod common;

use std::collections::BTreeSet;

use anya_sim::{SimFamily, World, image_md5};
use common::sim::{self, Stack};
use serde_json::Value;

const ANYA: &str = "anya_forger";

const ADDED: &str = "konachan_com";

/// Images the added source holds: 120 posts, three pages of [`PAGE_SIZE`].
const ADDED_IMAGES: std::ops::Range<u64> = 500..620;

/// Images Yande.re holds, none of them on the added source.
const YANDERE_IMAGES: std::ops::Range<u64> = 0..40;

const PAGE_SIZE: u64 = 50;

fn world() -> World {
    let mut world = World::new();
    world
        .source("yandere", SimFamily::Moebooru)
        .tag(ANYA, 4)
        .posts(YANDERE_IMAGES, &[ANYA]);
    world
        .source(ADDED, SimFamily::Moebooru)
        .tag(ANYA, 4)
        .posts(ADDED_IMAGES, &[ANYA]);
    world
}

/// The service with the six built-in sources as the simulator serves them and the added
/// one configured with settings no built-in source has.
async fn stack() -> Stack {
    sim::start_with(world(), |sim| {
        vec![format!(
            "[sources.{ADDED}]\nfamily = \"moebooru\"\nbase_url = \"{}\"\nconcurrency = 4\n\
             rate_per_sec = 500.0\nburst = 3\npage_size = {PAGE_SIZE}\n",
            sim.base_url(ADDED)
        )]
    })
    .await
}

#[tokio::test]
async fn the_added_source_is_listed_last_with_its_settings() {
    let stack = stack().await;

    let (status, body) = stack.get("/v1/sources").await;

    assert_eq!(status, 200, "{body}");
    let sources = body["sources"].as_array().unwrap();
    let ids: Vec<&str> = sources.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "safebooru",
            "danbooru",
            "gelbooru",
            "yandere",
            "konachan",
            "tbib",
            ADDED
        ]
    );
    let added = &sources[6];
    assert_eq!(added["family"], "moebooru");
    assert_eq!(added["base_url"], stack.sim.base_url(ADDED));
    assert_eq!(added["enabled"], true);
    assert_eq!(added["concurrency"], 4);
    assert_eq!(added["rate_per_sec"], 500.0);
    assert_eq!(added["burst"], 3);
    assert_eq!(added["page_size"], PAGE_SIZE);
    assert_eq!(added["credentials"], false);
}

fn md5s(answer: &Value) -> BTreeSet<String> {
    sim::md5s(answer).into_iter().collect()
}

#[tokio::test]
async fn the_added_source_alone_returns_exactly_its_posts_on_its_own_base() {
    let stack = stack().await;

    let answer = stack
        .search(&format!(
            "character=Anya%20Forger&sources={ADDED}&per_page=1000"
        ))
        .await;

    let report = &answer["sources"][ADDED];
    assert_eq!(report["status"], "ok", "{report}");
    assert_eq!(report["tags"], serde_json::json!([ANYA]));
    assert_eq!(report["pages"], 3, "{report}");
    assert_eq!(answer["sources"]["yandere"]["status"], "skipped");
    let expected: BTreeSet<String> = ADDED_IMAGES.map(image_md5).collect();
    assert_eq!(md5s(&answer), expected);

    let base = stack.sim.base_url(ADDED);
    for image in answer["images"].as_array().unwrap() {
        let file_url = image["file_url"].as_str().unwrap();
        assert!(file_url.starts_with(&format!("{base}/")), "{file_url}");
        let seen = image["sources"].as_array().unwrap();
        assert_eq!(seen.len(), 1, "{image}");
        assert_eq!(seen[0]["source"], ADDED);
        let post_id = seen[0]["id"].as_u64().unwrap();
        assert_eq!(seen[0]["post_url"], format!("{base}/post/show/{post_id}"));
    }
}

#[tokio::test]
async fn the_upstream_of_the_added_source_sees_its_page_size() {
    let stack = stack().await;

    stack
        .search(&format!("character=Anya%20Forger&sources={ADDED}"))
        .await;

    let pages: Vec<_> = stack
        .sim
        .requests_for(ADDED)
        .into_iter()
        .filter(|r| r.path == "/post.json")
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    for page in &pages {
        assert_eq!(page.param("limit"), Some("50"), "{page:?}");
    }
    assert!(
        stack.sim.requests_for("yandere").is_empty(),
        "a search of the added source alone asks no other source"
    );
}

#[tokio::test]
async fn a_search_of_every_source_includes_the_added_one() {
    let stack = stack().await;

    let answer = stack.search("character=Anya%20Forger&per_page=1000").await;

    assert_eq!(answer["sources"][ADDED]["status"], "ok");
    assert_eq!(answer["sources"]["yandere"]["status"], "ok");
    let expected: BTreeSet<String> = ADDED_IMAGES.chain(YANDERE_IMAGES).map(image_md5).collect();
    assert_eq!(md5s(&answer), expected);
    assert_eq!(answer["total"], expected.len());
}
