//! Every fault the simulator can inject, end to end: the search still answers 200 by its
//! deadline, the faulty source says what happened, every other source is complete, and the
//! service stays healthy.

mod common;

use std::time::Duration;

use anya_sim::{Fault, FaultRule, SimFamily, World};
use common::sim::{self, Stack};
use serde_json::Value;

const ANYA: &str = "anya_forger";
const QUERY: &str = "character=Anya%20Forger&series=Spy%20x%20Family";

/// Two Moebooru sources with the same 250 Anya images: `konachan` is the one that fails,
/// `yandere` the healthy witness. Pages are 100 posts, so a search takes 3 pages each.
fn world() -> World {
    let mut world = World::new();
    for id in ["konachan", "yandere"] {
        world
            .source(id, SimFamily::Moebooru)
            .tag(ANYA, 4)
            .max_limit(100)
            .posts(0..250, &[ANYA]);
    }
    world
}

const FAST: &str = "[sources.konachan]\npage_size = 100\n[sources.yandere]\npage_size = 100\n";

async fn stack_with(fault: FaultRule, overrides: &str) -> Stack {
    let stack = sim::start_layered(world(), &[FAST, overrides]).await;
    stack.sim.add_fault("konachan", fault);
    stack
}

/// Searches, then checks the witness is complete and the service healthy; returns the
/// faulty source's report.
async fn search_and_check(stack: &Stack) -> Value {
    let answer = stack.search(QUERY).await;
    let witness = &answer["sources"]["yandere"];
    assert_eq!(witness["status"], "ok", "{witness}");
    assert_eq!(witness["posts"], 250);
    assert_eq!(answer["total"], 250, "the witness alone has every image");
    let (status, health) = stack.get("/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    answer["sources"]["konachan"].clone()
}

fn on_pages(fault: Fault) -> FaultRule {
    FaultRule::always(fault).on_path("/post.json")
}

/// The value of the `/metrics` sample `name` whose labels are exactly `labels`; 0 when the
/// service has not exported it (a counter never incremented).
async fn metric(stack: &Stack, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = stack
        .http
        .get(stack.server.url("/metrics"))
        .send()
        .await
        .expect("the service answers")
        .text()
        .await
        .expect("the metrics arrive");
    let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    wanted.sort();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(series, _)| {
            let (found, rest) = series.split_once('{').unwrap_or((series, "}"));
            let mut pairs: Vec<String> = rest
                .trim_end_matches('}')
                .split(',')
                .filter(|pair| !pair.is_empty())
                .map(str::to_string)
                .collect();
            pairs.sort();
            found == name && pairs == wanted
        })
        .map_or(0.0, |(_, value)| value.parse().expect("a number"))
}

/// Source `id` as `/v1/sources` shows it.
async fn live_state(stack: &Stack, id: &str) -> Value {
    let (_, sources) = stack.get("/v1/sources").await;
    sources["sources"]
        .as_array()
        .expect("sources is an array")
        .iter()
        .find(|source| source["id"] == id)
        .expect("the source is listed")
        .clone()
}

/// The post-page requests the simulator saw from `konachan` for page `page`.
fn page_requests(stack: &Stack, page: &str) -> usize {
    stack
        .sim
        .requests_for("konachan")
        .iter()
        .filter(|r| r.path == "/post.json" && r.param("page") == Some(page))
        .count()
}

fn error_of(report: &Value) -> String {
    report["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error sentence: {report}"))
        .to_string()
}

#[tokio::test]
async fn http_502_is_retried_then_reported() {
    let stack = stack_with(on_pages(Fault::Status(502)), "").await;

    let report = search_and_check(&stack).await;

    assert_eq!(report["status"], "error", "{report}");
    assert!(error_of(&report).contains("HTTP 502"), "{report}");
    assert_eq!(
        page_requests(&stack, "1"),
        3,
        "the first try and two retries"
    );
}

#[tokio::test]
async fn an_html_error_page_from_a_proxy_is_retried_like_any_5xx() {
    for status in [502, 503] {
        let fault = FaultRule::times(Fault::HtmlStatus(status), 2).on_path("/post.json");
        let stack = stack_with(fault, "").await;

        let report = search_and_check(&stack).await;

        assert_eq!(report["status"], "ok", "HTTP {status}: {report}");
        assert_eq!(page_requests(&stack, "1"), 3, "HTTP {status}: two retries");
    }
}

#[tokio::test]
async fn a_moebooru_refusal_sent_with_500_carries_its_reason_and_is_not_retried() {
    let stack = stack_with(on_pages(Fault::Status(500)), "").await;

    let report = search_and_check(&stack).await;

    assert_eq!(report["status"], "error", "{report}");
    let error = error_of(&report);
    assert!(error.contains("refused the request (HTTP 500)"), "{report}");
    assert!(
        error.contains("The database timed out"),
        "the site's reason: {report}"
    );
    assert_eq!(
        page_requests(&stack, "1"),
        1,
        "a refusal is not asked again"
    );
    let konachan = live_state(&stack, "konachan").await;
    assert_eq!(konachan["circuit"], "closed", "a refusal is no outage");
}

#[tokio::test]
async fn http_503_on_one_page_makes_the_source_partial() {
    let fault = FaultRule::always(Fault::Unavailable { retry_after: None }).on_param("page", "2");
    let stack = stack_with(fault, "").await;

    let report = search_and_check(&stack).await;

    assert_eq!(report["status"], "partial", "{report}");
    assert_eq!(report["pages"], 2);
    assert!(error_of(&report).contains("HTTP 503"), "{report}");
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_the_upstream_asked_for() {
    let fault = FaultRule::times(
        Fault::TooManyRequests {
            retry_after: Some("1".into()),
        },
        1,
    )
    .on_path("/post.json");
    let stack = stack_with(fault, "").await;

    let report = search_and_check(&stack).await;

    assert_eq!(report["status"], "ok", "{report}");
    let pages: Vec<_> = stack
        .sim
        .requests_for("konachan")
        .into_iter()
        .filter(|r| r.path == "/post.json")
        .collect();
    let refused = pages
        .iter()
        .find(|r| r.status == Some(429))
        .expect("one 429");
    let retried = pages
        .iter()
        .find(|r| r.at > refused.at && r.param("page") == refused.param("page"))
        .expect("the refused page was asked again");
    assert!(
        retried.at - refused.at >= Duration::from_millis(990),
        "waited {:?}",
        retried.at - refused.at
    );
}

#[tokio::test]
async fn a_hung_upstream_times_out_at_the_deadline_and_frees_its_permits() {
    let stack = stack_with(on_pages(Fault::Hang), "[search]\ndeadline_secs = 1\n").await;

    let report = search_and_check(&stack).await;

    assert_eq!(report["status"], "timeout", "{report}");
    assert!(error_of(&report).contains("deadline"), "{report}");
    let stats = stack.state.driver.stats("konachan").unwrap();
    assert_eq!(
        stats.in_flight, 0,
        "cancelled requests gave their permits back"
    );
}

#[tokio::test]
async fn a_reset_connection_is_retried_then_reported() {
    let stack = stack_with(on_pages(Fault::Reset), "").await;

    let report = search_and_check(&stack).await;

    assert_eq!(report["status"], "error", "{report}");
    assert!(error_of(&report).contains("connection"), "{report}");
    assert_eq!(
        page_requests(&stack, "1"),
        3,
        "the first try and two retries"
    );
}

#[tokio::test]
async fn refusals_of_the_request_itself_are_not_retried() {
    for status in [404, 422] {
        let stack = stack_with(on_pages(Fault::Status(status)), "").await;

        let report = search_and_check(&stack).await;

        assert_eq!(report["status"], "error", "{status}: {report}");
        let said = format!("HTTP {status}");
        assert!(error_of(&report).contains(&said), "{report}");
        assert_eq!(page_requests(&stack, "1"), 1, "{status} is asked once");
    }
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_is_not_waited_for() {
    let fault = on_pages(Fault::Unavailable {
        retry_after: Some("20".into()),
    });
    let stack = stack_with(fault, "[search]\ndeadline_secs = 5\n").await;

    let report = search_and_check(&stack).await;

    assert_eq!(report["status"], "error", "{report}");
    assert!(error_of(&report).contains("HTTP 503"), "{report}");
    assert_eq!(
        page_requests(&stack, "1"),
        1,
        "no retry could finish in time"
    );
}

#[tokio::test]
async fn malformed_json_is_an_error_that_says_so() {
    let stack = stack_with(on_pages(Fault::Malformed), "").await;

    let report = search_and_check(&stack).await;

    assert_eq!(report["status"], "error", "{report}");
    assert!(error_of(&report).contains("not the expected"), "{report}");
}

#[tokio::test]
async fn a_malformed_200_counts_as_a_failed_attempt_and_is_retried() {
    let stack = stack_with(on_pages(Fault::Malformed).on_param("page", "2"), "").await;

    let report = search_and_check(&stack).await;

    assert_eq!(report["status"], "partial", "{report}");
    assert!(error_of(&report).contains("not the expected"), "{report}");
    assert_eq!(
        page_requests(&stack, "2"),
        3,
        "the first try and two retries"
    );
    let malformed = [("source", "konachan"), ("outcome", "malformed")];
    let counted = metric(&stack, "anya_upstream_requests_total", &malformed).await;
    assert_eq!(counted, 3.0, "each malformed answer is counted");
    let retried = [("source", "konachan"), ("outcome", "retried")];
    assert_eq!(
        metric(&stack, "anya_upstream_requests_total", &retried).await,
        2.0
    );
    let konachan = live_state(&stack, "konachan").await;
    assert_eq!(konachan["errors"], 3, "{konachan}");
    let last = konachan["last_error"]["message"].as_str().unwrap_or("");
    assert!(last.contains("not the expected"), "{konachan}");
}

#[tokio::test]
async fn a_truncated_body_is_an_error() {
    let stack = stack_with(on_pages(Fault::Truncated), "").await;

    let report = search_and_check(&stack).await;

    assert_eq!(report["status"], "error", "{report}");
    assert!(error_of(&report).contains("connection broke"), "{report}");
}

#[tokio::test]
async fn a_challenge_page_is_reported_and_not_retried() {
    let stack = stack_with(on_pages(Fault::Challenge), "").await;

    let report = search_and_check(&stack).await;

    assert_eq!(report["status"], "error", "{report}");
    assert!(error_of(&report).contains("challenge page"), "{report}");
    let pages = stack
        .sim
        .requests_for("konachan")
        .into_iter()
        .filter(|r| r.path == "/post.json");
    assert_eq!(pages.count(), 1);
}

#[tokio::test]
async fn an_empty_200_where_json_belongs_is_an_error() {
    let stack = stack_with(on_pages(Fault::Empty), "").await;

    let report = search_and_check(&stack).await;

    assert_eq!(report["status"], "error", "{report}");
    assert!(error_of(&report).contains("not the expected"), "{report}");
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused() {
    let overrides = "[upstream]\nmax_body_bytes = 400000\n";
    let stack = stack_with(on_pages(Fault::Oversized(1_000_000)), overrides).await;

    let report = search_and_check(&stack).await;

    assert_eq!(report["status"], "error", "{report}");
    assert!(
        error_of(&report).contains("more than 400000 bytes"),
        "{report}"
    );
}

#[tokio::test]
async fn a_failing_source_is_paused_and_shown_as_such() {
    let overrides = "[sources.konachan]\ncircuit_failures = 3\nmax_retries = 2\n";
    let stack = stack_with(FaultRule::always(Fault::Status(503)), overrides).await;
    search_and_check(&stack).await;
    stack.sim.clear_requests();

    let again = stack.search(&format!("{QUERY}&fresh=true")).await;

    let report = &again["sources"]["konachan"];
    assert_eq!(report["status"], "error");
    assert!(error_of(report).contains("paused after"), "{report}");
    assert!(
        stack.sim.requests_for("konachan").is_empty(),
        "a paused source is not asked"
    );
    let (_, sources) = stack.get("/v1/sources").await;
    let konachan = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "konachan")
        .unwrap()
        .clone();
    assert_eq!(konachan["circuit"], "open", "{konachan}");
}

#[tokio::test]
async fn pages_queued_when_the_circuit_opens_are_given_up_unsent() {
    let overrides = "[sources.konachan]\npage_size = 10\nconcurrency = 1\nmax_retries = 0\n\
        circuit_failures = 3\ncircuit_cooldown_secs = 600\n";
    let stack = sim::start_layered(world(), &[FAST, overrides]).await;
    for page in 2..=25 {
        let fault = FaultRule::always(Fault::Unavailable { retry_after: None })
            .on_path("/post.json")
            .on_param("page", &page.to_string());
        stack.sim.add_fault("konachan", fault);
    }

    let report = search_and_check(&stack).await;

    assert_eq!(report["status"], "partial", "{report}");
    assert_eq!(report["pages"], 1, "{report}");
    let error = error_of(&report);
    assert!(
        error.contains("HTTP 503"),
        "the cause, not the pause: {report}"
    );
    assert!(
        error.contains("(24 requests failed)"),
        "every page counted: {report}"
    );
    let sent = stack.sim.requests_for("konachan");
    let pages = sent.iter().filter(|r| r.path == "/post.json").count();
    assert_eq!(pages, 4, "page 1, then three failures open the circuit");
    let refused = [("source", "konachan"), ("outcome", "circuit_open")];
    let refusals = metric(&stack, "anya_upstream_requests_total", &refused).await;
    assert_eq!(refusals, 1.0, "the first refusal gives up the rest");
    let limiter = [("source", "konachan"), ("stage", "limiter")];
    let paced = metric(&stack, "anya_upstream_wait_seconds_count", &limiter).await;
    assert_eq!(
        paced,
        sent.len() as f64,
        "only requests sent waited for the limiter"
    );
}

/// Safebooru (Gelbooru 0.2, whose empty body is its "no results") beside the Yande.re
/// witness, both with the 250 Anya images, 100 posts a page.
async fn safebooru_with(fault: FaultRule) -> Stack {
    let mut world = World::new();
    for (id, family) in [
        ("safebooru", SimFamily::GelbooruV02),
        ("yandere", SimFamily::Moebooru),
    ] {
        world.source(id, family).tag(ANYA, 4).posts(0..250, &[ANYA]);
    }
    let pages = "[sources.safebooru]\npage_size = 100\n[sources.yandere]\npage_size = 100\n";
    let stack = sim::start(world, pages).await;
    stack.sim.add_fault("safebooru", fault.on_path("s=post"));
    stack
}

/// The post-page requests the simulator saw from `safebooru` for `pid` (0-based).
fn safebooru_pages(stack: &Stack, pid: &str) -> usize {
    let requests = stack.sim.requests_for("safebooru");
    let pages = requests.iter().filter(|r| r.param("s") == Some("post"));
    pages.filter(|r| r.param("pid") == Some(pid)).count()
}

#[tokio::test]
async fn an_empty_page_where_the_count_says_posts_are_is_a_failed_page() {
    let stack = safebooru_with(FaultRule::always(Fault::Empty).on_param("pid", "1")).await;

    let answer = stack.search(QUERY).await;

    let report = &answer["sources"]["safebooru"];
    assert_eq!(report["status"], "partial", "{report}");
    assert_eq!(
        (report["pages"].as_u64(), report["posts"].as_u64()),
        (Some(2), Some(150))
    );
    let error = error_of(report);
    let expected = "the site answered an empty page where 100 posts were expected";
    assert!(error.contains(expected), "{report}");
    assert_eq!(
        safebooru_pages(&stack, "1"),
        3,
        "the first try and two retries"
    );
    assert_eq!(answer["sources"]["yandere"]["status"], "ok");
}

#[tokio::test]
async fn an_empty_first_page_where_the_count_says_posts_are_is_asked_again() {
    let stack = safebooru_with(FaultRule::times(Fault::Empty, 1).on_param("pid", "0")).await;

    let answer = stack.search(QUERY).await;

    let report = &answer["sources"]["safebooru"];
    assert_eq!(report["status"], "ok", "{report}");
    assert_eq!(report["posts"], 250, "{report}");
    assert_eq!(
        safebooru_pages(&stack, "0"),
        2,
        "the empty answer, then the page"
    );
}

#[tokio::test]
async fn all_six_sources_failing_is_still_an_answer() {
    let mut world = World::new();
    let families = [
        ("safebooru", SimFamily::GelbooruV02),
        ("danbooru", SimFamily::Danbooru),
        ("gelbooru", SimFamily::Gelbooru),
        ("yandere", SimFamily::Moebooru),
        ("konachan", SimFamily::Moebooru),
        ("tbib", SimFamily::GelbooruV02),
    ];
    for (id, family) in families {
        world.source(id, family).tag(ANYA, 4).posts(0..10, &[ANYA]);
    }
    let stack = sim::start(world, "").await;
    for (id, _) in families {
        stack
            .sim
            .add_fault(id, FaultRule::always(Fault::Status(500)));
    }

    let answer = stack.search(QUERY).await;

    assert_eq!(answer["total"], 0);
    assert_eq!(answer["partial"], true);
    for (id, _) in families {
        let report = &answer["sources"][id];
        assert_eq!(report["status"], "error", "{id}: {report}");
        assert!(error_of(report).contains("HTTP 500"), "{id}: {report}");
    }
}

#[tokio::test]
async fn a_hung_tag_look_up_is_cut_at_the_deadline_and_not_remembered() {
    let fault = FaultRule::always(Fault::Hang).on_path("/tag.json");
    let stack = stack_with(fault, "[search]\ndeadline_secs = 1\n").await;

    let report = search_and_check(&stack).await;
    assert_eq!(report["status"], "timeout", "{report}");
    let stats = stack.state.driver.stats("konachan").unwrap();
    assert_eq!(stats.in_flight, 0, "the hung look-up gave its permit back");

    stack.sim.clear_faults("konachan");
    let again = stack.search(&format!("{QUERY}&sources=konachan")).await;
    assert_eq!(
        again["sources"]["konachan"]["status"], "ok",
        "{}",
        again["sources"]
    );
    assert_eq!(
        again["sources"]["konachan"]["tags"],
        serde_json::json!([ANYA])
    );
}

#[tokio::test]
async fn a_danbooru_server_failure_is_retried_and_keeps_the_sites_message() {
    let mut world = World::new();
    world
        .source("danbooru", SimFamily::Danbooru)
        .tag(ANYA, 4)
        .posts(0..10, &[ANYA]);
    let stack = sim::start(world, "").await;
    // Pages only: the count beside the first page stays healthy, so the failures in a row
    // stop short of pausing the source before the last retry.
    let timeout = FaultRule::always(Fault::Status(500)).on_param("page", "1");
    stack.sim.add_fault("danbooru", timeout);

    let answer = stack.search(QUERY).await;

    let report = &answer["sources"]["danbooru"];
    assert_eq!(report["status"], "error", "{report}");
    let error = error_of(report);
    assert!(error.contains("HTTP 500"), "{report}");
    assert!(error.contains("The database timed out"), "{report}");
    let pages = (stack.sim.requests_for("danbooru").into_iter())
        .filter(|r| r.path == "/posts.json")
        .count();
    assert_eq!(pages, 3, "the first try and two retries: {report}");
}
