//! The bound on one search's images (`search.max_images`) through the real server: a search
//! of more images than the bound answers exactly the bound, says it was truncated, stops
//! asking the simulator for pages, and is still cached as complete; a search within the
//! bound is untouched.

mod common;

use anya_sim::{RecordedRequest, SimFamily, World};
use common::sim::{self, Stack};
use serde_json::Value;

const ANYA: &str = "anya_(spy_x_family)";
const ANYA_MOE: &str = "anya_forger";
const YOR: &str = "yor_forger";
const SERIES: &str = "spy_x_family";

const ANYA_QUERY: &str = "character=Anya%20Forger&series=Spy%20x%20Family&per_page=1000";
const YOR_QUERY: &str = "character=Yor%20Forger&series=Spy%20x%20Family&per_page=1000";

/// The bound the tests configure.
const MAX_IMAGES: u64 = 300;

/// Posts per upstream page, on every source.
const PAGE_SIZE: u64 = 20;

/// Anya's 1200 images, 400 on each of three sources and none shared (20 pages each), and
/// Yor's 300, exactly the bound: danbooru 2000..2200, gelbooru 2100..2300, yandere
/// 2000..2050.
fn world() -> World {
    let mut world = World::new();
    world
        .source("danbooru", SimFamily::Danbooru)
        .tag(ANYA, 4)
        .tag(YOR, 4)
        .tag(SERIES, 3)
        .posts(0..400, &[ANYA, SERIES])
        .posts(2000..2200, &[YOR, SERIES]);
    world
        .source("gelbooru", SimFamily::Gelbooru)
        .tag(ANYA, 4)
        .tag(YOR, 4)
        .tag(SERIES, 3)
        .posts(400..800, &[ANYA, SERIES])
        .posts(2100..2300, &[YOR, SERIES]);
    world
        .source("yandere", SimFamily::Moebooru)
        .tag(ANYA_MOE, 4)
        .tag(YOR, 4)
        .tag(SERIES, 3)
        .posts(800..1200, &[ANYA_MOE, SERIES])
        .posts(2000..2050, &[YOR, SERIES]);
    world
}

const SOURCES: [&str; 3] = ["danbooru", "gelbooru", "yandere"];

/// Small pages, one request at a time per source so that a source has at most one page
/// on its way when the bound is reached, and `max_images` on top.
fn overrides(max_images: u64) -> String {
    let mut toml = format!("[search]\nmax_images = {max_images}\n");
    for id in SOURCES {
        toml.push_str(&format!(
            "[sources.{id}]\npage_size = {PAGE_SIZE}\nconcurrency = 1\n"
        ));
    }
    toml
}

async fn start(max_images: u64) -> Stack {
    sim::start(world(), &overrides(max_images)).await
}

/// Whether a request asked for a page of posts (not a tag look-up or a count).
fn is_page(request: &RecordedRequest) -> bool {
    match request.path.as_str() {
        "/posts.json" | "/post.json" => true,
        "/index.php" => request.param("s") == Some("post") && request.param("json") == Some("1"),
        _ => false,
    }
}

fn page_requests(stack: &Stack) -> u64 {
    stack.sim.requests().iter().filter(|r| is_page(r)).count() as u64
}

fn report_field(answer: &Value, source: &str, field: &str) -> u64 {
    (answer["sources"][source][field].as_u64())
        .unwrap_or_else(|| panic!("no {field} for {source}: {}", answer["sources"]))
}

#[tokio::test]
async fn a_search_past_the_bound_answers_the_bound_and_asks_for_fewer_pages() {
    let uncapped = start(100_000).await;
    let whole = uncapped.search(ANYA_QUERY).await;
    let pages_needed = page_requests(&uncapped);
    assert_eq!(whole["total"], 1200, "{}", whole["sources"]);
    assert_eq!(pages_needed, 60, "20 pages on each source");

    let stack = start(MAX_IMAGES).await;
    let answer = stack.search(ANYA_QUERY).await;

    assert_eq!(answer["total"], MAX_IMAGES, "{}", answer["sources"]);
    assert_eq!(
        answer["images"].as_array().unwrap().len() as u64,
        MAX_IMAGES
    );
    assert_eq!(answer["truncated"], true);
    assert_eq!(answer["partial"], false, "the bound is not a fault");
    let mut fetched = 0;
    let mut skipped = 0;
    for source in SOURCES {
        let report = &answer["sources"][source];
        assert_eq!(report["status"], "ok", "{source}: {report}");
        assert!(report["error"].is_null(), "{source}: {report}");
        let (pages, pages_skipped) = (
            report_field(&answer, source, "pages"),
            report_field(&answer, source, "pages_skipped"),
        );
        assert_eq!(pages + pages_skipped, 400 / PAGE_SIZE, "{source}: {report}");
        fetched += pages;
        skipped += pages_skipped;
    }
    assert!(skipped > 0, "{}", answer["sources"]);
    let requested = page_requests(&stack);
    assert!(requested < pages_needed, "{requested} page requests");
    assert!(
        requested <= fetched + SOURCES.len() as u64,
        "beyond the pages fetched, at most the one page each source had on its way: \
         {requested} requested, {fetched} fetched"
    );
}

#[tokio::test]
async fn a_truncated_result_is_cached_like_a_complete_one() {
    let stack = start(MAX_IMAGES).await;
    let first = stack.search(ANYA_QUERY).await;
    assert_eq!(first["truncated"], true, "{}", first["sources"]);
    stack.sim.clear_requests();

    let again = stack.search(ANYA_QUERY).await;

    assert_eq!(again["cached"], true);
    assert_eq!(again["truncated"], true);
    assert_eq!(again["total"], MAX_IMAGES);
    assert_eq!(again["images"], first["images"]);
    assert!(
        stack.sim.requests().is_empty(),
        "{:?}",
        stack.sim.requests()
    );
}

#[tokio::test]
async fn a_search_holding_exactly_the_bound_is_not_truncated() {
    let stack = start(MAX_IMAGES).await;

    let answer = stack.search(YOR_QUERY).await;

    assert_eq!(answer["total"], MAX_IMAGES, "{}", answer["sources"]);
    assert_eq!(answer["truncated"], false);
    assert_eq!(answer["partial"], false);
    for source in SOURCES {
        let report = &answer["sources"][source];
        assert_eq!(report["status"], "ok", "{source}: {report}");
        assert_eq!(report["pages_skipped"], 0, "{source}: {report}");
    }
    let pages: u64 = (SOURCES.iter())
        .map(|source| report_field(&answer, source, "pages"))
        .sum();
    assert_eq!(pages, 10 + 10 + 3, "every page of Yor was fetched");
}

#[tokio::test]
async fn a_search_within_the_bound_reports_nothing_skipped() {
    let stack = start(MAX_IMAGES).await;

    let answer = stack.search(&format!("{YOR_QUERY}&sources=yandere")).await;

    assert_eq!(answer["total"], 50, "{}", answer["sources"]);
    assert_eq!(answer["truncated"], false);
    for source in SOURCES {
        assert_eq!(
            answer["sources"][source]["pages_skipped"], 0,
            "{source}: {}",
            answer["sources"]
        );
    }
    assert_eq!(answer["sources"]["danbooru"]["status"], "skipped");
}
