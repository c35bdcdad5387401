//! Both Gelbooru flavours as the simulator serves them: the 0.2.5 envelope and its 401,
//! Gelbooru 0.2's bare arrays, empty bodies and XML totals, and the tag API's LIKE
//! patterns, orders and formats.

mod support;

use anya_sim::{SimFamily, SimHandle, Simulator, World, image_md5};
use serde_json::Value;
use support::{fixture_keys, get, ids, keys};

const GELBOORU: &str = include_str!("../../tests/fixtures/gelbooru/posts.json");
const SAFEBOORU: &str = include_str!("../../tests/fixtures/safebooru/post_by_id.json");
const ANYA: &str = "anya_(spy_x_family)";
const DAPI: &str = "index.php?page=dapi&q=index";

async fn start() -> SimHandle {
    let mut world = World::new();
    world
        .source("gelbooru", SimFamily::Gelbooru)
        .tag(ANYA, 4)
        .tag("spy_x_family", 3)
        .posts(0..250, &[ANYA, "spy_x_family"])
        .posts(500..510, &["anya_melfissa", "hololive"])
        .tag_count("anya_(hoshikuzu_academy)", 4, 900)
        .fixture_posts(GELBOORU);
    for (id, xml) in [("safebooru", false), ("tbib", true)] {
        world
            .source(id, SimFamily::GelbooruV02)
            .tag(ANYA, 4)
            .tag("forger_anya", 4)
            .tag_format_xml(xml)
            .posts(0..1500, &[ANYA, "spy_x_family"])
            .posts(2000..2003, &["forger_anya"])
            .fixture_posts(SAFEBOORU);
    }
    Simulator::start(world).await.expect("simulator starts")
}

async fn dapi(sim: &SimHandle, source: &str, query: &str) -> support::Answer {
    get(&format!("{}/{DAPI}&{query}", sim.base_url(source))).await
}

#[tokio::test]
async fn gelbooru_pages_come_in_the_envelope() {
    let sim = start().await;
    let page = dapi(
        &sim,
        "gelbooru",
        "s=post&json=1&tags=anya_(spy_x_family)&limit=500&pid=2",
    )
    .await;
    let body = page.json();
    assert_eq!(
        body["@attributes"],
        serde_json::json!({ "limit": 100, "offset": 200, "count": 250 })
    );
    assert_eq!(body["post"].as_array().unwrap().len(), 50);
    let first = dapi(
        &sim,
        "gelbooru",
        "s=post&json=1&tags=anya_(spy_x_family)&pid=0",
    )
    .await
    .json();
    assert!(
        ids(&first["post"]).windows(2).all(|w| w[0] > w[1]),
        "newest first"
    );
    assert_eq!(keys(&first["post"][0]), fixture_keys(GELBOORU));
    assert!(
        ["general", "sensitive", "questionable", "explicit"]
            .contains(&first["post"][0]["rating"].as_str().unwrap())
    );
}

#[tokio::test]
async fn gelbooru_empty_results_have_no_post_key() {
    let sim = start().await;
    let none = dapi(&sim, "gelbooru", "s=post&json=1&tags=nobody")
        .await
        .json();
    assert_eq!(
        none,
        serde_json::json!({ "@attributes": { "limit": 100, "offset": 0, "count": 0 } })
    );
    let past = dapi(
        &sim,
        "gelbooru",
        "s=post&json=1&tags=anya_(spy_x_family)&pid=9",
    )
    .await
    .json();
    assert_eq!(past["@attributes"]["count"], 250);
    assert!(past.get("post").is_none());
}

#[tokio::test]
async fn gelbooru_finds_recorded_posts_and_single_ids() {
    let sim = start().await;
    let found = dapi(
        &sim,
        "gelbooru",
        "s=post&json=1&tags=kafuu_chino+rating:sensitive",
    )
    .await
    .json();
    let recorded: Value = serde_json::from_str(GELBOORU).unwrap();
    assert_eq!(found["post"][0], recorded["post"][0]);
    let one = dapi(&sim, "gelbooru", "s=post&json=1&id=8333903")
        .await
        .json();
    assert_eq!(one["@attributes"]["count"], 1);
}

#[tokio::test]
async fn gelbooru_without_an_account_gets_401_empty_array() {
    let mut world = World::new();
    world
        .source("gelbooru", SimFamily::Gelbooru)
        .require_credentials("12345", "key")
        .posts(0..5, &["a"]);
    let sim = Simulator::start(world).await.unwrap();
    for query in [
        "s=post&json=1",
        "s=post&json=1&user_id=12345&api_key=nope",
        "s=tag&json=1",
    ] {
        let denied = dapi(&sim, "gelbooru", query).await;
        assert_eq!(
            (denied.status, denied.body.as_str()),
            (401, "[]"),
            "{query}"
        );
    }
    let ok = dapi(&sim, "gelbooru", "s=post&json=1&user_id=12345&api_key=key").await;
    assert_eq!(ok.json()["@attributes"]["count"], 5);
}

#[tokio::test]
async fn gelbooru_tag_api_uses_like_patterns_and_orders() {
    let sim = start().await;
    let q = "s=tag&json=1&name_pattern=%25anya%25&orderby=count&order=DESC&limit=10";
    let tags = dapi(&sim, "gelbooru", q).await.json();
    let names: Vec<&str> = tags["tag"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["anya_(hoshikuzu_academy)", ANYA, "anya_melfissa"]);
    assert_eq!(tags["@attributes"]["count"], 3);
    assert_eq!(tags["tag"][1]["type"], 4);
    assert_eq!(tags["tag"][1]["count"], 250);
    assert_eq!(tags["tag"][1]["ambiguous"], 0);
    let one_char = dapi(&sim, "gelbooru", "s=tag&json=1&name_pattern=anya_melfiss_")
        .await
        .json();
    assert_eq!(one_char["tag"].as_array().unwrap().len(), 1);
    let names = dapi(
        &sim,
        "gelbooru",
        "s=tag&json=1&names=spy_x_family+anya_(spy_x_family)",
    )
    .await
    .json();
    assert_eq!(
        names["tag"][0]["name"], "spy_x_family",
        "names keep the order asked"
    );
    let exact = dapi(&sim, "gelbooru", "s=tag&json=1&name=hololive")
        .await
        .json();
    assert_eq!(exact["tag"][0]["count"], 10);
    let none = dapi(&sim, "gelbooru", "s=tag&json=1&name=nobody")
        .await
        .json();
    assert!(none.get("tag").is_none());
}

#[tokio::test]
async fn v02_posts_are_bare_arrays_with_hash() {
    let sim = start().await;
    let page = dapi(
        &sim,
        "safebooru",
        "s=post&json=1&tags=anya_(spy_x_family)&limit=1000&pid=1",
    )
    .await
    .json();
    let posts = page.as_array().unwrap();
    assert_eq!(posts.len(), 500);
    let recorded = fixture_keys(SAFEBOORU);
    let newer: std::collections::BTreeSet<String> = [
        "preview_url",
        "sample_url",
        "file_url",
        "source",
        "status",
        "has_notes",
        "comment_count",
    ]
    .map(String::from)
    .into();
    let mut forms = (0, 0);
    for post in posts {
        let k = keys(post);
        if k == recorded {
            forms.0 += 1;
        } else {
            assert_eq!(k, recorded.union(&newer).cloned().collect());
            forms.1 += 1;
        }
        assert!(
            ["general", "safe", "questionable", "explicit"]
                .contains(&post["rating"].as_str().unwrap())
        );
        assert!(post["score"].is_i64() || post["score"].is_null());
    }
    assert!(
        forms.0 > 100 && forms.1 > 100,
        "both forms appear: {forms:?}"
    );
    let last = posts.last().unwrap();
    assert_eq!(last["hash"], image_md5(0));
    assert_ne!(
        last["image"].as_str().unwrap()[..32],
        image_md5(0),
        "image is not the md5"
    );
}

#[tokio::test]
async fn v02_empty_results_are_an_empty_body() {
    let sim = start().await;
    let none = dapi(&sim, "tbib", "s=post&json=1&tags=nobody").await;
    assert_eq!((none.status, none.body.as_str()), (200, ""));
}

#[tokio::test]
async fn v02_xml_carries_the_total() {
    let sim = start().await;
    let xml = dapi(&sim, "safebooru", "s=post&tags=anya_(spy_x_family)&limit=1").await;
    assert!(xml.body.starts_with(
        r#"<?xml version="1.0" encoding="UTF-8"?><posts count="1500" offset="0"><post "#
    ));
    assert!(xml.body.contains(&format!("md5=\"{}\"", image_md5(1499))));
    assert!(!xml.body.contains("hash="));
    assert!(
        xml.body.contains(" rating=\"s\"")
            || xml.body.contains(" rating=\"q\"")
            || xml.body.contains(" rating=\"e\"")
    );
    let none = dapi(&sim, "safebooru", "s=post&tags=nobody&limit=1").await;
    assert_eq!(
        none.body,
        r#"<?xml version="1.0" encoding="UTF-8"?><posts count="0" offset="0"/>"#
    );
}

#[tokio::test]
async fn v02_tag_api_answers_json_or_xml_per_source() {
    let sim = start().await;
    let q = "s=tag&json=1&name_pattern=%25anya%25&orderby=count&limit=10";
    let json = dapi(&sim, "safebooru", q).await.json();
    let rows = json.as_array().unwrap();
    assert_eq!(rows[0]["name"], ANYA);
    assert_eq!(rows[1]["name"], "forger_anya");
    assert_eq!(
        keys(&rows[0]),
        ["ambiguous", "count", "id", "name", "type"]
            .map(String::from)
            .into()
    );
    let xml = dapi(&sim, "tbib", q).await;
    assert!(xml.header("content-type").unwrap().contains("xml"));
    let first_tag = format!(
        r#"<tags type="array"><tag type="4" count="1500" name="{ANYA}" ambiguous="false" id="#
    );
    assert!(xml.body.contains(&first_tag), "{}", xml.body);
    assert!(xml.body.contains(r#"name="forger_anya""#));
}

#[tokio::test]
async fn unknown_pages_are_404() {
    let sim = start().await;
    assert_eq!(
        get(&format!("{}/posts.json", sim.base_url("gelbooru")))
            .await
            .status,
        404
    );
    assert_eq!(dapi(&sim, "tbib", "s=comment&json=1").await.status, 404);
}

#[tokio::test]
async fn v02_without_an_account_gets_an_xml_error_with_200() {
    let mut world = World::new();
    world
        .source("tbib", SimFamily::GelbooruV02)
        .require_credentials("7", "key")
        .posts(0..2, &["a"]);
    let sim = Simulator::start(world).await.unwrap();
    let denied = dapi(&sim, "tbib", "s=post&json=1&tags=a").await;
    assert_eq!(denied.status, 200);
    assert!(
        denied
            .body
            .ends_with("<error>Missing authentication.</error>"),
        "{}",
        denied.body
    );
    let ok = dapi(&sim, "tbib", "s=post&json=1&tags=a&user_id=7&api_key=key").await;
    assert_eq!(ok.json().as_array().unwrap().len(), 2);
}
