//! The driver's promise to upstreams, checked at the upstream: requests released all at once
//! arrive no faster than the configured rate and never more at once than the semaphore,
//! whether they come straight from the driver or from a search through the real server
//! (tag look-ups, counts and pages alike).

mod common;

use std::sync::Arc;
use std::time::Duration;

use anya_image_api::config::Config;
use anya_image_api::metrics::Metrics;
use anya_image_api::sources::driver::{Driver, RequestKind};
use anya_sim::{SimFamily, Simulator, World};

fn world() -> World {
    let mut world = World::new();
    world
        .source("konachan", SimFamily::Moebooru)
        .tag("anya_forger", 4)
        .posts(0..50, &["anya_forger"]);
    world
}

async fn driver_for(base_url: &str, rate_per_sec: f64, concurrency: u32) -> Arc<Driver> {
    let overrides = format!(
        "[sources.konachan]\nbase_url = \"{base_url}\"\nrate_per_sec = {rate_per_sec:?}\nconcurrency = {concurrency}\n"
    );
    let config = Config::from_toml(&overrides).expect("valid configuration");
    Arc::new(Driver::new(&config, Arc::new(Metrics::new())).expect("client builds"))
}

/// Sends `count` page requests at once and waits for all of them.
async fn burst(driver: &Arc<Driver>, count: u32) {
    let site = driver.site("konachan").expect("configured").clone();
    let requests = (1..=count).map(|page| {
        let (driver, url) = (driver.clone(), site.posts_url("anya_forger", page, 1));
        async move {
            driver
                .get("konachan", url, RequestKind::Page(page), None)
                .await
        }
    });
    for result in futures::future::join_all(requests).await {
        result.expect("the simulator answers");
    }
}

#[tokio::test]
async fn requests_released_at_once_arrive_no_faster_than_the_rate() {
    let sim = Simulator::start(world()).await.unwrap();
    let rate = 20.0;
    let driver = driver_for(&sim.base_url("konachan"), rate, 50).await;

    burst(&driver, 21).await;

    let arrivals: Vec<_> = sim.requests_for("konachan").iter().map(|r| r.at).collect();
    assert_eq!(arrivals.len(), 21);
    let period = Duration::from_secs_f64(1.0 / rate);
    let span = *arrivals.last().unwrap() - arrivals[0];
    assert!(
        span >= period * 20 - period / 2,
        "21 requests took only {span:?}"
    );
    // Loopback delivery may bunch two arrivals a little; it never bunches a whole window.
    for window in arrivals.windows(5) {
        let taken = window[4] - window[0];
        assert!(
            taken >= period * 4 - period / 2,
            "5 arrivals within {taken:?}"
        );
    }
}

#[tokio::test]
async fn never_more_requests_in_flight_than_the_semaphore_allows() {
    let sim = Simulator::start(world()).await.unwrap();
    sim.set_latency(
        "konachan",
        Duration::from_millis(60),
        Duration::from_millis(60),
    );
    let driver = driver_for(&sim.base_url("konachan"), 1000.0, 3).await;

    burst(&driver, 12).await;

    assert_eq!(sim.requests_for("konachan").len(), 12);
    assert_eq!(
        sim.max_in_flight("konachan"),
        3,
        "the semaphore's three permits were all used, and no more"
    );
    let stats = driver.stats("konachan").unwrap();
    assert_eq!(
        (stats.in_flight, stats.permits_free, stats.requests),
        (0, 3, 12)
    );
}

#[tokio::test]
async fn a_search_through_the_server_keeps_the_rate_and_the_semaphore_on_every_request() {
    let mut world = World::new();
    for id in ["konachan", "yandere"] {
        (world.source(id, SimFamily::Moebooru))
            .tag("anya_forger", 4)
            .posts(0..60, &["anya_forger"]);
    }
    // Konachan's rate binds (many permits); Yande.re's two permits bind (a high rate, and
    // answers slower than its period).
    let rate = 20.0;
    let overrides = format!(
        "[sources.konachan]\nrate_per_sec = {rate:?}\nconcurrency = 16\npage_size = 5\n\
         [sources.yandere]\nrate_per_sec = 1000.0\nconcurrency = 2\npage_size = 5\n"
    );
    let stack = common::sim::start(world, &overrides).await;
    for id in ["konachan", "yandere"] {
        let latency = Duration::from_millis(150);
        stack.sim.set_latency(id, latency, latency);
    }

    let answer = stack
        .search("character=Anya+Forger&sources=konachan,yandere&fresh=true")
        .await;

    assert_eq!(answer["sources"]["konachan"]["pages"], 12, "{answer}");
    assert_eq!(answer["sources"]["yandere"]["pages"], 12, "{answer}");
    let arrivals: Vec<_> = (stack.sim.requests_for("konachan").iter())
        .map(|r| r.at)
        .collect();
    assert!(
        arrivals.len() >= 13,
        "look-ups, count and 12 pages: {}",
        arrivals.len()
    );
    let period = Duration::from_secs_f64(1.0 / rate);
    for window in arrivals.windows(5) {
        let taken = window[4] - window[0];
        assert!(
            taken >= period * 4 - period / 2,
            "5 arrivals within {taken:?}"
        );
    }
    assert_eq!(
        stack.sim.max_in_flight("yandere"),
        2,
        "Yande.re's requests went out two at a time, never more"
    );
}
