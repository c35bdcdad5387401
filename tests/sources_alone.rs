//! Each of the six sources searched alone through the real server returns exactly the posts
//! the simulator holds for the character's tag, with absolute URLs on the source's own base
//! and ratings normalised as the family means them.

mod common;

use std::collections::BTreeMap;

use anya_sim::{PostSpec, Rating, SimFamily, World, image_md5};
use common::sim;
use serde_json::Value;

const SOURCES: [(&str, SimFamily, &str); 6] = [
    ("safebooru", SimFamily::GelbooruV02, "anya_(spy_x_family)"),
    ("danbooru", SimFamily::Danbooru, "anya_(spy_x_family)"),
    ("gelbooru", SimFamily::Gelbooru, "anya_(spy_x_family)"),
    ("yandere", SimFamily::Moebooru, "anya_forger"),
    ("konachan", SimFamily::Moebooru, "anya_forger"),
    ("tbib", SimFamily::GelbooruV02, "anya_(spy_x_family)"),
];

/// Images 0..230 on every source, each with a rating cycling through all four; the
/// Moebooru sources give a third of their URLs relative or protocol-relative.
fn world() -> World {
    let mut world = World::new();
    let spec = |image: u64| {
        let rating = [
            Rating::General,
            Rating::Sensitive,
            Rating::Questionable,
            Rating::Explicit,
        ];
        PostSpec {
            rating: rating[(image % 4) as usize],
            ..PostSpec::for_image(image)
        }
    };
    for (id, family, tag) in SOURCES {
        let source = world.source(id, family);
        source
            .tag(tag, 4)
            .tag("spy_x_family", 3)
            .posts_with(0..230, &[tag, "spy_x_family"], spec);
        if family == SimFamily::Moebooru {
            source.relative_urls(true);
        }
    }
    world
}

/// The rating the service should report for a simulated rating on `family`: Gelbooru 0.2
/// JSON and Moebooru print Danbooru's "sensitive" as the old "safe", which covers general.
fn expected_rating(family: SimFamily, rating: Rating) -> &'static str {
    match (family, rating) {
        (SimFamily::GelbooruV02 | SimFamily::Moebooru, Rating::Sensitive) => "general",
        (_, rating) => rating.word(),
    }
}

#[tokio::test]
async fn each_source_alone_returns_exactly_its_posts() {
    let stack = sim::start(world(), "").await;

    for (id, family, tag) in SOURCES {
        let answer = stack
            .search(&format!(
                "character=Anya%20Forger&series=Spy%20x%20Family&sources={id}&per_page=1000"
            ))
            .await;

        let report = &answer["sources"][id];
        assert_eq!(report["status"], "ok", "{id}: {report}");
        assert_eq!(report["tags"], serde_json::json!([tag]), "{id}");
        let images = answer["images"].as_array().unwrap();
        let found: BTreeMap<&str, &Value> = images
            .iter()
            .map(|image| (image["md5"].as_str().unwrap(), image))
            .collect();
        let expected: BTreeMap<String, u64> =
            (0..230).map(|image| (image_md5(image), image)).collect();
        assert_eq!(found.len(), 230, "{id}");
        for (md5, image) in &expected {
            let got = found
                .get(md5.as_str())
                .unwrap_or_else(|| panic!("{id} lacks image {image}"));
            let rating = [
                Rating::General,
                Rating::Sensitive,
                Rating::Questionable,
                Rating::Explicit,
            ];
            let want = expected_rating(family, rating[(image % 4) as usize]);
            assert_eq!(got["rating"], want, "{id} image {image}");
            check_urls(id, &stack.sim.base_url(id), got);
        }
    }
}

fn check_urls(id: &str, base: &str, image: &Value) {
    let file = image["file_url"]
        .as_str()
        .unwrap_or_else(|| panic!("{id}: no file_url in {image}"));
    assert!(
        file.starts_with(&format!("{base}/")),
        "{id}: {file} is not under {base}"
    );
    if let Some(preview) = image["preview_url"].as_str() {
        assert!(preview.starts_with(&format!("{base}/")), "{id}: {preview}");
    }
    let post = image["sources"][0]["post_url"].as_str().unwrap();
    let post_id = image["sources"][0]["id"].as_u64().unwrap();
    let page = match id {
        "danbooru" => format!("{base}/posts/{post_id}"),
        "yandere" | "konachan" => format!("{base}/post/show/{post_id}"),
        _ => format!("{base}/index.php?page=post&s=view&id={post_id}"),
    };
    assert_eq!(post, page, "{id}");
}
