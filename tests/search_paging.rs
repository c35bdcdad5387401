//! Paging through the real server: after the first page, a source's other pages are asked
//! for together, and the sources of one search are paged side by side. The simulator's request
//! log and in-flight maxima show it; only the order of arrivals is asserted, never a
//! duration.

mod common;

use std::time::Duration;

use anya_sim::{Fault, FaultRule, SimFamily, World};
use common::sim::{self, Stack};

const ANYA: &str = "anya_(spy_x_family)";
const ANYA_MOE: &str = "anya_forger";
const QUERY: &str = "character=Anya%20Forger&series=Spy%20x%20Family";

/// Anya on three sources of three families, several pages each: Gelbooru 8 pages of 100
/// (its pages carry the total, so no count request goes beside the first), Danbooru 3 of
/// 200 and Yande.re 5 of 100.
fn paged_world() -> World {
    let mut world = World::new();
    world
        .source("gelbooru", SimFamily::Gelbooru)
        .tag(ANYA, 4)
        .posts(0..800, &[ANYA]);
    world
        .source("danbooru", SimFamily::Danbooru)
        .tag(ANYA, 4)
        .posts(0..600, &[ANYA]);
    world
        .source("yandere", SimFamily::Moebooru)
        .tag(ANYA_MOE, 4)
        .posts(0..500, &[ANYA_MOE]);
    world
}

/// The stack with every source's discovery already cached and the request log cleared,
/// so that what the simulator records next is paging alone; answers are then slowed
/// so requests sent together overlap.
async fn stack_ready_to_page() -> Stack {
    let stack = sim::start(paged_world(), "[sources.yandere]\npage_size = 100\n").await;
    let (status, tags) = stack.get(&format!("/v1/tags?{QUERY}")).await;
    assert_eq!(status, 200, "{tags}");
    stack.sim.clear_requests();
    for source in stack.sim.sources() {
        let latency = (Duration::from_millis(30), Duration::from_millis(60));
        stack.sim.set_latency(&source, latency.0, latency.1);
    }
    stack
}

#[tokio::test]
async fn pages_after_the_first_are_asked_for_together() {
    let stack = stack_ready_to_page().await;

    let answer = stack.search(&format!("{QUERY}&sources=gelbooru")).await;

    assert_eq!(answer["sources"]["gelbooru"]["pages"], 8, "{answer}");
    let requests = stack.sim.requests_for("gelbooru");
    assert!(
        requests.iter().all(|r| r.param("s") == Some("post")),
        "only pages were asked for: {requests:?}"
    );
    assert!(
        stack.sim.max_in_flight("gelbooru") > 1,
        "pages were fetched one by one"
    );
}

#[tokio::test]
async fn the_sources_of_one_search_are_paged_side_by_side() {
    let stack = stack_ready_to_page().await;

    let answer = stack.search(QUERY).await;

    assert_eq!(answer["total"], 800, "{}", answer["sources"]);
    let sources = stack.sim.sources();
    let arrivals: Vec<_> = sources
        .iter()
        .map(|source| {
            let requests = stack.sim.requests_for(source);
            assert!(requests.len() > 1, "{source} paged: {requests:?}");
            (requests[0].at, requests[requests.len() - 1].at)
        })
        .collect();
    let last_first = arrivals.iter().map(|(first, _)| *first).max().unwrap();
    let first_last = arrivals.iter().map(|(_, last)| *last).min().unwrap();
    let start = arrivals.iter().map(|(first, _)| *first).min().unwrap();
    let since_start: Vec<_> = (arrivals.iter())
        .map(|(first, last)| (*first - start, *last - start))
        .collect();
    assert!(
        last_first < first_last,
        "a source began only after another had sent its last request: {sources:?} \
         (first, last) arrivals {since_start:?}"
    );
}

#[tokio::test]
async fn a_sources_several_tags_are_paged_together() {
    // TBIB files Anya under two tags; every request for the first one hangs.
    let mut world = World::new();
    world
        .source("tbib", SimFamily::GelbooruV02)
        .tag(ANYA, 4)
        .tag("forger_anya", 4)
        .posts(0..300, &[ANYA])
        .posts(300..500, &["forger_anya"]);
    let stack = sim::start(world, "[search]\ndeadline_secs = 1\n").await;
    let hang = FaultRule::always(Fault::Hang).on_param("tags", ANYA);
    stack.sim.add_fault("tbib", hang);

    let answer = stack.search(QUERY).await;

    let report = &answer["sources"]["tbib"];
    assert_eq!(report["tags"], serde_json::json!([ANYA, "forger_anya"]));
    assert_eq!(report["status"], "timeout", "{report}");
    let second: Vec<_> = (stack.sim.requests_for("tbib").into_iter())
        .filter(|r| r.param("tags") == Some("forger_anya"))
        .collect();
    assert!(
        !second.is_empty(),
        "the second tag waited for the first: {report}"
    );
    assert_eq!(
        answer["total"], 200,
        "the second tag's images arrived: {report}"
    );
}

#[tokio::test]
async fn past_the_depth_ceiling_pages_continue_below_the_lowest_id_seen() {
    // Safebooru serves no page reaching past 20 000 results; Anya has 21 500 posts there.
    let mut world = World::new();
    world
        .source("safebooru", SimFamily::GelbooruV02)
        .tag(ANYA, 4)
        .posts(0..21_500, &[ANYA]);
    let stack = sim::start(world, "[sources.safebooru]\npage_size = 1000\n").await;

    let answer = stack.search(QUERY).await;

    let report = &answer["sources"]["safebooru"];
    assert_eq!(report["status"], "ok", "{report}");
    assert_eq!(answer["total"], 21_500, "{report}");
    assert_eq!(report["pages"], 22, "{report}");
    let pages: Vec<_> = (stack.sim.requests_for("safebooru").into_iter())
        .filter(|r| r.param("s") == Some("post"))
        .collect();
    assert!(
        pages.iter().all(|r| r.status == Some(200)),
        "no page failed"
    );
    let direct = |r: &&anya_sim::RecordedRequest| r.param("tags") == Some(ANYA);
    let deepest = (pages.iter().filter(direct))
        .filter_map(|r| r.param("pid")?.parse::<u32>().ok())
        .max();
    assert_eq!(deepest, Some(19), "no page past the ceiling was asked for");
    let below: Vec<_> = (pages.iter())
        .filter_map(|r| r.param("tags").filter(|tags| tags.contains(" id:<")))
        .collect();
    assert_eq!(below.len(), 2, "the rest came from below an id: {below:?}");
}
