//! What every upstream request says about its client: the configured User-Agent (or a
//! source's own), and an Accept-Encoding that offers gzip and Brotli, on tag look-ups,
//! counts and post pages alike, as the simulator recorded them.

mod common;

use anya_sim::{RecordedRequest, SimFamily, World};
use common::sim::{self, Stack};

/// One source of each family (both Gelbooru flavours), each holding Anya.
fn world() -> World {
    let mut world = World::new();
    for (id, family, tag) in [
        ("safebooru", SimFamily::GelbooruV02, "anya_(spy_x_family)"),
        ("danbooru", SimFamily::Danbooru, "anya_(spy_x_family)"),
        ("gelbooru", SimFamily::Gelbooru, "anya_(spy_x_family)"),
        ("yandere", SimFamily::Moebooru, "anya_forger"),
    ] {
        world
            .source(id, family)
            .tag(tag, 4)
            .tag("spy_x_family", 3)
            .posts(0..150, &[tag, "spy_x_family"]);
    }
    world
}

/// Searches every source for Anya and returns what the upstreams received, checking first
/// that each of them was asked for tags and posts, so the checks that follow cover both.
async fn requests_of_a_search(stack: &Stack) -> Vec<RecordedRequest> {
    let answer = stack
        .search("character=Anya%20Forger&series=Spy%20x%20Family")
        .await;
    for source in stack.sim.sources() {
        assert_eq!(answer["sources"][&source]["status"], "ok", "{source}");
        assert!(
            stack.sim.requests_for(&source).len() >= 2,
            "{source} was asked for tags and posts"
        );
    }
    stack.sim.requests()
}

fn agent(request: &RecordedRequest) -> &str {
    request.user_agent.as_deref().unwrap_or("<none>")
}

#[tokio::test]
async fn every_request_carries_the_built_in_user_agent_by_default() {
    let stack = sim::start(world(), "").await;

    let requests = requests_of_a_search(&stack).await;

    let expected = format!("anya-image-api/{}", env!("CARGO_PKG_VERSION"));
    for request in &requests {
        assert_eq!(agent(request), expected, "{request:?}");
    }
}

#[tokio::test]
async fn every_request_carries_the_configured_user_agent() {
    let overrides = "[upstream]\nuser_agent = \"anya-test/7.1 (upstream header test)\"\n";
    let stack = sim::start(world(), overrides).await;

    let requests = requests_of_a_search(&stack).await;

    for request in &requests {
        assert_eq!(
            agent(request),
            "anya-test/7.1 (upstream header test)",
            "{request:?}"
        );
    }
}

#[tokio::test]
async fn a_source_s_own_user_agent_reaches_only_that_source() {
    let overrides = "[upstream]\nuser_agent = \"anya-test/7.1\"\n\
                     [sources.yandere]\nuser_agent = \"anya-test-for-yandere/1\"\n";
    let stack = sim::start(world(), overrides).await;

    let requests = requests_of_a_search(&stack).await;

    for request in &requests {
        let expected = match request.source.as_str() {
            "yandere" => "anya-test-for-yandere/1",
            _ => "anya-test/7.1",
        };
        assert_eq!(agent(request), expected, "{request:?}");
    }
}

#[tokio::test]
async fn every_request_offers_gzip_and_brotli() {
    let stack = sim::start(world(), "").await;

    let requests = requests_of_a_search(&stack).await;

    for request in &requests {
        let offered: Vec<&str> = request
            .accept_encoding
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(|coding| coding.split(';').next().unwrap_or_default().trim())
            .collect();
        assert!(
            offered.contains(&"gzip") && offered.contains(&"br"),
            "{offered:?} in {request:?}"
        );
    }
}
