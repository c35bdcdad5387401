//! The search end to end: the real server against the simulator, with worlds whose overlaps
//! and colliding names are known, checking both the answers and what the upstreams saw.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use anya_sim::{Fault, FaultRule, PostSpec, Rating, SimFamily, World};
use common::sim::{self, Stack, md5s};
use serde_json::{Value, json};

const ANYA: &str = "anya_(spy_x_family)";
const ANYA_MOE: &str = "anya_forger";
const SERIES: &str = "spy_x_family";

/// Anya on all six sources, named as each site names her, beside a more popular Anya from
/// another work, a name-sharing character, cosplay variants and the series tag. Her images
/// are 0..1100 in all: danbooru 0..450, gelbooru 300..800, safebooru 700..1000,
/// tbib 0..50, yandere 100..350, konachan 900..1100.
fn spy_world() -> World {
    let mut world = World::new();
    world
        .source("danbooru", SimFamily::Danbooru)
        .tag(ANYA, 4)
        .tag(SERIES, 3)
        .tag("anya_(other_work)", 4)
        .tag("anya_melfissa", 4)
        .tag("anya_(spy_x_family)_(cosplay)", 4)
        .alias(ANYA_MOE, ANYA)
        .posts(0..450, &[ANYA, SERIES, "1girl"])
        .posts(5000..5600, &["anya_(other_work)", "other_work"])
        .posts(6000..6100, &["anya_melfissa"])
        .posts(7000..7020, &["anya_(spy_x_family)_(cosplay)", "cosplay"]);
    gelbooru_like(world.source("gelbooru", SimFamily::Gelbooru), 300..800);
    gelbooru_like(world.source("safebooru", SimFamily::GelbooruV02), 700..1000);
    gelbooru_like(
        world
            .source("tbib", SimFamily::GelbooruV02)
            .tag_format_xml(true),
        0..50,
    );
    world
        .source("yandere", SimFamily::Moebooru)
        .tag(ANYA_MOE, 4)
        .tag(SERIES, 3)
        .tag("anya_forger_(cosplay)", 4)
        .tag("loid_forger", 4)
        .max_limit(100)
        .posts(100..350, &[ANYA_MOE, SERIES])
        .posts(8000..8400, &["loid_forger", SERIES])
        .posts(8500..8510, &["anya_forger_(cosplay)"]);
    world
        .source("konachan", SimFamily::Moebooru)
        .tag(ANYA_MOE, 4)
        .tag(SERIES, 3)
        .posts(900..1100, &[ANYA_MOE, SERIES]);
    world
}

fn gelbooru_like(source: &mut anya_sim::SimSource, images: std::ops::Range<u64>) {
    source
        .tag(ANYA, 4)
        .tag(SERIES, 3)
        .tag("anya_(other_work)", 4)
        .tag("anya_(spy_x_family)_(cosplay)", 4)
        .posts(images, &[ANYA, SERIES])
        .posts(5000..5900, &["anya_(other_work)"])
        .posts(7000..7005, &["anya_(spy_x_family)_(cosplay)"]);
}

const ANYA_QUERY: &str = "character=Anya%20Forger&series=Spy%20x%20Family";

#[tokio::test]
async fn the_merged_total_is_the_exact_union_of_all_six_sources() {
    let stack = sim::start(spy_world(), "").await;

    let answer = stack
        .search(&format!("{ANYA_QUERY}&per_page=1000&page=2"))
        .await;

    assert_eq!(answer["total"], 1100, "{}", answer["sources"]);
    assert_eq!(answer["partial"], false);
    assert_eq!(answer["cached"], false);
    assert_eq!(answer["max_pages"], 2);
    assert_eq!(answer["images"].as_array().unwrap().len(), 100);
    let expected_posts = [
        ("danbooru", 450),
        ("gelbooru", 500),
        ("safebooru", 300),
        ("tbib", 50),
        ("yandere", 250),
        ("konachan", 200),
    ];
    for (source, posts) in expected_posts {
        let report = &answer["sources"][source];
        assert_eq!(report["status"], "ok", "{source}: {report}");
        assert_eq!(report["posts"], posts, "{source}: {report}");
        assert!(report["error"].is_null());
    }
}

/// Every tag the standard world gives Anya on some source.
const STANDARD_ANYA_TAGS: [&str; 3] = [ANYA, ANYA_MOE, "forger_anya"];

#[tokio::test]
async fn the_standard_world_total_is_the_union_of_every_anya_tag_it_serves() {
    let stack = sim::start(World::standard(), "").await;
    let mut union = BTreeSet::new();
    for (source, family) in served_families(&stack).await {
        for tag in STANDARD_ANYA_TAGS {
            union.extend(served_md5s(&stack, &source, &family, tag).await);
        }
    }
    stack.sim.clear_requests();

    let answer = stack.search(&format!("{ANYA_QUERY}&per_page=1")).await;

    assert_eq!(answer["total"], union.len(), "{}", answer["sources"]);

    assert_eq!(
        answer["sources"]["tbib"]["tags"],
        json!([ANYA, "forger_anya"]),
        "TBIB spells her two ways"
    );
}

/// Each source the simulator serves, with its family, from its control API.
async fn served_families(stack: &Stack) -> Vec<(String, String)> {
    let url = format!("http://{}/_sim/sources", stack.sim.addr());
    let rows: Vec<Value> = stack
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            let field = |name: &str| row[name].as_str().unwrap().to_string();
            (field("source"), field("family"))
        })
        .collect()
}

/// The MD5s `source` serves for `tag`, read page by page from the simulator's own API
/// rather than through the service, so the expected union does not depend on the code
/// under test.
async fn served_md5s(stack: &Stack, source: &str, family: &str, tag: &str) -> Vec<String> {
    let mut md5s = Vec::new();
    let mut page = 0u32;
    loop {
        let (path, paging) = match family {
            "danbooru" => ("/posts.json", ("page", page + 1)),
            "moebooru" => ("/post.json", ("page", page + 1)),
            _ => ("/index.php", ("pid", page)),
        };
        let mut query = vec![("tags", tag.to_string()), ("limit", "100".into())];
        query.push((paging.0, paging.1.to_string()));
        if path == "/index.php" {
            query.extend(["page=dapi", "s=post", "q=index", "json=1"].map(|pair| {
                let (key, value) = pair.split_once('=').unwrap();
                (key, value.to_string())
            }));
        }
        let url = format!("{}{path}", stack.sim.base_url(source));
        let response = stack.http.get(url).query(&query).send().await.unwrap();
        let body = response.text().await.unwrap();
        let posts = posts_in(&body);
        if posts.is_empty() {
            return md5s;
        }
        let hashes = posts
            .iter()
            .filter_map(|post| post.get("md5").or(post.get("hash")));
        md5s.extend(hashes.filter_map(Value::as_str).map(str::to_string));
        page += 1;
    }
}

/// The post objects of a page body of any family: a bare array, Gelbooru's envelope, or
/// nothing at all when no post matches.
fn posts_in(body: &str) -> Vec<Value> {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Array(posts)) => posts,
        Ok(envelope) => envelope["post"].as_array().cloned().unwrap_or_default(),
        Err(_) if body.trim().is_empty() => Vec::new(),
        Err(error) => panic!("not a page of posts ({error}): {body:.200}"),
    }
}

#[tokio::test]
async fn each_source_searches_its_own_tag_for_the_character() {
    let stack = sim::start(spy_world(), "").await;

    let answer = stack.search(ANYA_QUERY).await;

    for source in ["danbooru", "gelbooru", "safebooru", "tbib"] {
        assert_eq!(answer["sources"][source]["tags"], json!([ANYA]), "{source}");
    }
    for source in ["yandere", "konachan"] {
        assert_eq!(
            answer["sources"][source]["tags"],
            json!([ANYA_MOE]),
            "{source}"
        );
    }
    for request in stack.sim.requests() {
        let tags = request.param("tags").unwrap_or_default();
        assert!(
            !tags.contains("cosplay") && !tags.contains("other_work"),
            "{request:?}"
        );
    }
}

#[tokio::test]
async fn tags_route_reports_candidates_and_the_choice_without_fetching_posts() {
    let stack = sim::start(spy_world(), "").await;

    let (status, answer) = stack.get(&format!("/v1/tags?{ANYA_QUERY}")).await;

    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["sources"]["gelbooru"]["chosen"], json!([ANYA]));
    assert_eq!(answer["sources"]["yandere"]["chosen"], json!([ANYA_MOE]));
    let candidates = answer["sources"]["gelbooru"]["candidates"]
        .as_array()
        .unwrap();
    let other = candidates
        .iter()
        .find(|c| c["name"] == "anya_(other_work)")
        .unwrap();
    assert_eq!(other["post_count"], 900);
    assert_eq!(other["category"], "character");
    let post_requests = stack
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.param("s") == Some("post"));
    assert_eq!(post_requests.count(), 0);
    assert!(
        stack
            .sim
            .requests()
            .iter()
            .all(|r| !r.path.contains("post"))
    );
}

#[tokio::test]
async fn without_a_series_the_most_used_namesake_is_chosen() {
    let stack = sim::start(spy_world(), "").await;

    let answer = stack.search("character=anya&sources=gelbooru").await;

    assert_eq!(
        answer["sources"]["gelbooru"]["tags"],
        json!(["anya_(other_work)"])
    );
    assert_eq!(answer["total"], 900);
}

#[tokio::test]
async fn a_repeat_is_cached_and_asks_no_upstream() {
    let stack = sim::start(spy_world(), "").await;
    stack.search(ANYA_QUERY).await;
    stack.sim.clear_requests();

    let again = stack
        .search("character=anya_FORGER&series=spy%20X%20family&page=3")
        .await;

    assert_eq!(again["cached"], true);
    assert_eq!(again["total"], 1100);
    assert!(
        stack.sim.requests().is_empty(),
        "{:?}",
        stack.sim.requests()
    );
}

#[tokio::test]
async fn fresh_bypasses_and_replaces_the_cached_result() {
    let stack = sim::start(spy_world(), "").await;
    stack.search(ANYA_QUERY).await;
    stack.sim.clear_requests();

    let fresh = stack.search(&format!("{ANYA_QUERY}&fresh=true")).await;
    let after = stack.search(ANYA_QUERY).await;

    assert_eq!(fresh["cached"], false);
    assert!(!stack.sim.requests().is_empty());
    assert_eq!(after["cached"], true);
}

#[tokio::test]
async fn twenty_identical_cold_searches_ask_each_upstream_page_once() {
    let stack = sim::start(spy_world(), "").await;
    for source in stack.sim.sources() {
        stack.sim.set_latency(
            &source,
            Duration::from_millis(20),
            Duration::from_millis(40),
        );
    }

    let searches = (0..20).map(|_| stack.search(ANYA_QUERY));
    let answers = futures::future::join_all(searches).await;

    assert!(answers.iter().all(|answer| answer["total"] == 1100));
    assert_each_request_sent_once(&stack);
}

/// Fails if the simulator received any request (source, path and query) more than once.
fn assert_each_request_sent_once(stack: &Stack) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for request in stack.sim.requests() {
        let mut query = request.query.clone();
        query.sort();
        *seen
            .entry(format!("{} {} {query:?}", request.source, request.path))
            .or_default() += 1;
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        repeated.is_empty(),
        "requested more than once: {repeated:?}"
    );
}

#[tokio::test]
async fn a_client_that_hangs_up_still_fills_the_cache() {
    let stack = sim::start(spy_world(), "").await;
    // Danbooru's look-ups, first page and other pages take 100 ms each, so the search
    // outlasts the client, which gives up after 150 ms, when the other sources have paged.
    let slow = Duration::from_millis(100);
    stack.sim.set_latency("danbooru", slow, slow);
    let impatient = stack
        .http
        .get(stack.server.url(&format!("/v1/search?{ANYA_QUERY}")))
        .timeout(Duration::from_millis(150))
        .send()
        .await;
    assert!(impatient.is_err(), "the client gave up before the answer");

    // An identical search joins the run the client left, so its answer arrives once that
    // run has stored its result; had the run stopped, this one would ask every page again.
    let joined = stack.search(ANYA_QUERY).await;
    assert_eq!(joined["total"], 1100);
    assert_each_request_sent_once(&stack);
    stack.sim.clear_requests();
    let answer = stack.search(ANYA_QUERY).await;

    assert_eq!(answer["cached"], true);
    assert_eq!(answer["total"], 1100);
    assert!(stack.sim.requests().is_empty());
}

/// Konachan and Yande.re with the same Anya images, Konachan's tag look-ups hanging.
async fn hung_konachan_look_ups() -> Stack {
    let mut world = World::new();
    for id in ["konachan", "yandere"] {
        world
            .source(id, SimFamily::Moebooru)
            .tag(ANYA_MOE, 4)
            .posts(0..30, &[ANYA_MOE]);
    }
    let stack = sim::start(world, "[search]\ndeadline_secs = 1\n").await;
    let hang = FaultRule::always(Fault::Hang).on_path("/tag.json");
    stack.sim.add_fault("konachan", hang);
    stack
}

#[tokio::test]
async fn a_discovery_cut_by_the_deadline_is_a_timeout_for_every_search_sharing_it() {
    let stack = hung_konachan_look_ups().await;

    let (alone, both, tags) = (
        format!("{ANYA_QUERY}&sources=konachan"),
        format!("{ANYA_QUERY}&sources=konachan,yandere"),
        format!("/v1/tags?{ANYA_QUERY}&sources=konachan"),
    );
    let (alone, both, (status, tags)) =
        futures::join!(stack.search(&alone), stack.search(&both), stack.get(&tags));

    assert_eq!(status, 200, "{tags}");
    for report in [
        &alone["sources"]["konachan"],
        &both["sources"]["konachan"],
        &tags["sources"]["konachan"],
    ] {
        assert_eq!(report["status"], "timeout", "{report}");
        assert!(
            report["error"].as_str().unwrap().contains("deadline"),
            "{report}"
        );
    }
    assert_eq!(both["sources"]["yandere"]["status"], "ok");
    assert_eq!(both["total"], 30);
}

#[tokio::test]
async fn pages_are_cut_from_the_merged_result_in_rank_order() {
    let stack = sim::start(spy_world(), "").await;

    let whole = stack.search(&format!("{ANYA_QUERY}&per_page=1000")).await;
    let second = stack
        .search(&format!("{ANYA_QUERY}&per_page=7&page=2"))
        .await;
    let past_end = stack
        .search(&format!("{ANYA_QUERY}&per_page=1000&page=5"))
        .await;

    assert_eq!(md5s(&second), md5s(&whole)[7..14].to_vec());
    assert_eq!(second["max_pages"], 158);
    assert_eq!(past_end["images"], json!([]));
    let images = whole["images"].as_array().unwrap();
    let rank = |image: &Value| {
        let sources = image["sources"].as_array().unwrap().len();
        (
            std::cmp::Reverse(sources),
            std::cmp::Reverse(image["score"].as_i64().unwrap()),
        )
    };
    assert!(
        images
            .windows(2)
            .all(|pair| rank(&pair[0]) <= rank(&pair[1]))
    );
    let top = &images[0];
    assert!(
        top["sources"].as_array().unwrap().len() >= 3,
        "overlaps rank first: {top}"
    );
}

#[tokio::test]
async fn an_image_on_several_sources_lists_each_with_the_strictest_rating() {
    let mut world = World::new();
    let strict = |image| PostSpec {
        rating: Rating::Explicit,
        score: 500,
        ..PostSpec::for_image(image)
    };
    let mild = |image| PostSpec {
        rating: Rating::General,
        score: 3,
        ..PostSpec::for_image(image)
    };
    world
        .source("safebooru", SimFamily::GelbooruV02)
        .tag(ANYA, 4)
        .posts_with(0..10, &[ANYA, "a"], mild);
    world
        .source("danbooru", SimFamily::Danbooru)
        .tag(ANYA, 4)
        .posts_with(5..10, &[ANYA, "b"], strict);
    let stack = sim::start(world, "").await;

    let all = stack.search("character=Anya&series=Spy%20x%20Family").await;
    let general = stack
        .search("character=Anya&series=Spy%20x%20Family&rating=general")
        .await;

    assert_eq!(all["total"], 10);
    let shared = &all["images"][0];
    assert_eq!(shared["rating"], "explicit");
    assert_eq!(shared["score"], 500);
    let sources: Vec<_> = shared["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].clone())
        .collect();
    assert_eq!(sources, vec![json!("safebooru"), json!("danbooru")]);
    assert!(
        shared["file_url"].as_str().unwrap().contains("/safebooru/"),
        "{shared}"
    );
    let tags: Vec<_> = shared["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tags.contains(&"a") && tags.contains(&"b"), "{tags:?}");
    assert_eq!(
        general["total"], 5,
        "explicit-rated overlaps are filtered out"
    );
    assert!(
        general["images"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["rating"] == "general")
    );
}

#[tokio::test]
async fn restricted_danbooru_posts_are_skipped_and_counted() {
    let mut world = World::new();
    let restricted = |image| PostSpec {
        restricted: image % 2 == 0,
        ..PostSpec::for_image(image)
    };
    world
        .source("danbooru", SimFamily::Danbooru)
        .tag(ANYA, 4)
        .posts_with(0..300, &[ANYA], restricted);
    let stack = sim::start(world, "").await;

    let answer = stack.search("character=Anya&series=spy%20x%20family").await;

    assert_eq!(answer["total"], 150);
    assert_eq!(answer["sources"]["danbooru"]["skipped_posts"], 150);
    assert_eq!(answer["sources"]["danbooru"]["pages"], 2);
}

#[tokio::test]
async fn a_character_that_exists_nowhere_is_an_empty_answer() {
    let stack = sim::start(spy_world(), "").await;

    let answer = stack
        .search("character=Nobody%20Atall&series=Nothing")
        .await;

    assert_eq!(answer["total"], 0);
    assert_eq!(answer["images"], json!([]));
    assert_eq!(answer["partial"], false);
    for source in [
        "danbooru",
        "gelbooru",
        "safebooru",
        "tbib",
        "yandere",
        "konachan",
    ] {
        assert_eq!(answer["sources"][source]["status"], "no_tags", "{source}");
    }
    let post_requests = stack
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("post") || r.param("s") == Some("post"));
    assert_eq!(post_requests.count(), 0, "no tag, no post request");
}

#[tokio::test]
async fn sources_not_asked_are_skipped_and_not_contacted() {
    let stack = sim::start(spy_world(), "").await;

    let answer = stack
        .search(&format!("{ANYA_QUERY}&sources=konachan,yandere,konachan"))
        .await;

    assert_eq!(answer["query"]["sources"], json!(["yandere", "konachan"]));
    assert_eq!(answer["sources"]["danbooru"]["status"], "skipped");
    assert_eq!(answer["total"], 450);
    assert!(
        stack
            .sim
            .requests()
            .iter()
            .all(|r| r.source == "yandere" || r.source == "konachan")
    );
}

#[tokio::test]
async fn a_server_side_page_clamp_loses_no_posts() {
    let stack = sim::start(spy_world(), "").await;

    let answer = stack.search(&format!("{ANYA_QUERY}&sources=yandere")).await;

    assert_eq!(answer["sources"]["yandere"]["posts"], 250);
    assert_eq!(answer["sources"]["yandere"]["pages"], 3);
    let limits: BTreeSet<_> = stack
        .sim
        .requests_for("yandere")
        .iter()
        .filter(|r| r.path == "/post.json")
        .map(|r| r.param("limit").unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        limits,
        BTreeSet::from(["1000".to_string(), "100".to_string()])
    );
}

#[tokio::test]
async fn post_accepts_the_bots_field_names() {
    let stack = sim::start(spy_world(), "").await;

    let (status, answer) = stack
        .post(
            "/v1/search",
            &json!({"character_name": "Anya Forger", "series_name": "Spy x Family", "sources": ["konachan"], "per_page": 5}),
        )
        .await;

    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["total"], 200);
    assert_eq!(answer["images"].as_array().unwrap().len(), 5);
}
