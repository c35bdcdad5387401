//! Moebooru as the simulator serves it: `/post.json` pages and the six-tag limit, the
//! XML total, `/tag.json` matching, and the yande.re and Konachan field sets.

mod support;

use anya_sim::{PostSpec, Rating, SimFamily, SimHandle, Simulator, World};
use serde_json::Value;
use support::{fixture_keys, get, ids};

const YANDERE: &str = include_str!("../../tests/fixtures/yandere/post.json");
const KONACHAN: &str = include_str!("../../tests/fixtures/konachan/posts.json");

async fn start() -> SimHandle {
    let mut world = World::new();
    for id in ["yandere", "konachan"] {
        world
            .source(id, SimFamily::Moebooru)
            .tag("anya_forger", 4)
            .tag("spy_x_family", 3)
            .tag("anya_forger_(cosplay)", 4)
            .posts(0..130, &["anya_forger", "spy_x_family"])
            .posts(200..205, &["forger_anya"])
            .posts_with(300..302, &["anya_forger_(cosplay)"], |i| PostSpec {
                rating: Rating::Explicit,
                ..PostSpec::for_image(i)
            })
            .tag_count("anya_hoshino", 4, 800);
    }
    world
        .source("yandere", SimFamily::Moebooru)
        .fixture_posts(YANDERE);
    world
        .source("konachan", SimFamily::Moebooru)
        .fixture_posts(KONACHAN);
    Simulator::start(world).await.expect("simulator starts")
}

async fn json(sim: &SimHandle, source: &str, path_and_query: &str) -> Value {
    let answer = get(&format!("{}{path_and_query}", sim.base_url(source))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

#[tokio::test]
async fn pages_are_one_based_and_newest_first() {
    let sim = start().await;
    let first = ids(&json(
        &sim,
        "yandere",
        "/post.json?tags=anya_forger+holds:false&limit=100&page=1",
    )
    .await);
    let second = ids(&json(
        &sim,
        "yandere",
        "/post.json?tags=anya_forger+holds:false&limit=100&page=2",
    )
    .await);
    assert_eq!((first.len(), second.len()), (100, 30));
    assert!(
        first
            .iter()
            .chain(&second)
            .collect::<Vec<_>>()
            .windows(2)
            .all(|w| w[0] > w[1])
    );
    let default = ids(&json(&sim, "yandere", "/post.json?tags=anya_forger").await);
    assert_eq!(default.len(), 40, "default limit");
    let none = json(&sim, "yandere", "/post.json?tags=nobody").await;
    assert_eq!(none, Value::Array(vec![]));
    let unsafe_posts = json(
        &sim,
        "yandere",
        "/post.json?tags=anya_forger_(cosplay)+-rating:s",
    )
    .await;
    assert_eq!(unsafe_posts[0]["rating"], "e");
}

#[tokio::test]
async fn more_than_six_tags_get_500() {
    let sim = start().await;
    let tags = "a+b+c+d+e+f+g";
    let answer = get(&format!(
        "{}/post.json?tags={tags}",
        sim.base_url("konachan")
    ))
    .await;
    assert_eq!(answer.status, 500);
    let reason = "Error: You cannot search for more than 6 tags at a time";
    assert_eq!(
        answer.json(),
        serde_json::json!({ "success": false, "reason": reason })
    );
    let six = get(&format!(
        "{}/post.json?tags=a+b+c+d+e+f+holds:false",
        sim.base_url("konachan")
    ))
    .await;
    assert_eq!(six.status, 200);
}

#[tokio::test]
async fn xml_carries_the_total() {
    let sim = start().await;
    let xml = get(&format!(
        "{}/post.xml?tags=anya_forger&limit=1",
        sim.base_url("yandere")
    ))
    .await;
    assert!(
        xml.body.contains(r#"<posts count="130" offset="0"><post "#),
        "{}",
        xml.body
    );
    let page = get(&format!(
        "{}/post.xml?tags=anya_forger&limit=10&page=3",
        sim.base_url("yandere")
    ))
    .await;
    assert!(page.body.contains(r#"<posts count="130" offset="20">"#));
}

#[tokio::test]
async fn tag_search_matches_substrings_and_orders_by_count() {
    let sim = start().await;
    let tags = json(&sim, "yandere", "/tag.json?name=anya&order=count&limit=10").await;
    let names: Vec<&str> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "anya_hoshino",
            "anya_forger",
            "forger_anya",
            "anya_forger_(cosplay)"
        ]
    );
    assert_eq!(tags[1]["count"], 130);
    assert_eq!(tags[1]["ambiguous"], false);
    let prefix = json(&sim, "yandere", "/tag.json?name=anya*&order=count").await;
    assert_eq!(prefix.as_array().unwrap().len(), 3);
    let characters = json(&sim, "yandere", "/tag.json?name=forger&type=4&order=name").await;
    let names: Vec<&str> = characters
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["anya_forger", "anya_forger_(cosplay)"]);
    let all = json(&sim, "yandere", "/tag.json?limit=0").await;
    let many = json(&sim, "yandere", "/tag.json?limit=1000").await;
    assert_eq!(all, many, "limit=0 lists every tag");
    let few = json(&sim, "yandere", "/tag.json?limit=5").await;
    assert!(all.as_array().unwrap().len() > few.as_array().unwrap().len());
    let one = json(&sim, "yandere", "/tag.json?limit=1&order=count&page=2").await;
    assert_eq!(one[0]["name"], "anya_forger");
}

#[tokio::test]
async fn field_sets_follow_each_site() {
    let sim = start().await;
    let yandere = json(&sim, "yandere", "/post.json?tags=anya_forger&limit=1").await;
    assert_eq!(support::keys(&yandere[0]), fixture_keys(YANDERE));
    let konachan = json(&sim, "konachan", "/post.json?tags=anya_forger&limit=1").await;
    assert_eq!(support::keys(&konachan[0]), fixture_keys(KONACHAN));
    assert!(["s", "q", "e"].contains(&konachan[0]["rating"].as_str().unwrap()));
    let file_url = konachan[0]["file_url"].as_str().unwrap();
    assert!(file_url.starts_with(&format!("{}/image/", sim.base_url("konachan"))));
    assert!(file_url.contains("Konachan.com%20-%20"));
}

#[tokio::test]
async fn recorded_posts_are_found_by_tag() {
    let sim = start().await;
    let found = json(&sim, "konachan", "/post.json?tags=hatsune_miku").await;
    assert!(!found.as_array().unwrap().is_empty());
    let recorded: Value = serde_json::from_str(YANDERE).unwrap();
    assert_eq!(
        json(&sim, "yandere", "/post.json?tags=ousaka_asuha").await,
        recorded
    );
}

#[tokio::test]
async fn relative_urls_are_optional() {
    let mut world = World::new();
    world
        .source("konachan", SimFamily::Moebooru)
        .relative_urls(true)
        .posts(0..3, &["a"]);
    let sim = Simulator::start(world).await.unwrap();
    let posts = json(&sim, "konachan", "/post.json?tags=a").await;
    let urls: Vec<&str> = posts
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["file_url"].as_str().unwrap())
        .collect();
    assert!(urls.iter().any(|u| u.starts_with("/image/")), "{urls:?}");
    assert!(
        urls.iter().any(|u| u.starts_with("//127.0.0.1:")),
        "{urls:?}"
    );
    assert!(urls.iter().any(|u| u.starts_with("http://")), "{urls:?}");
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let sim = start().await;
    assert_eq!(
        get(&format!("{}/posts.json", sim.base_url("yandere")))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn wrong_logins_are_refused_but_anonymous_reads_work() {
    let mut world = World::new();
    world
        .source("yandere", SimFamily::Moebooru)
        .require_credentials("anya", "hash")
        .posts(0..2, &["a"]);
    let sim = Simulator::start(world).await.unwrap();
    let base = sim.base_url("yandere");
    assert_eq!(get(&format!("{base}/post.json?tags=a")).await.status, 200);
    assert_eq!(
        get(&format!("{base}/post.json?login=anya&password_hash=hash"))
            .await
            .status,
        200
    );
    assert_eq!(
        get(&format!("{base}/post.json?login=anya&password_hash=nope"))
            .await
            .status,
        403
    );
}
