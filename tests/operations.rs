//! What an operator reads after real searches against the simulator: every metric the
//! service promises in `/metrics`, with its labels, and each source's live state in
//! `/v1/sources`.
//!
//! One scenario drives both: a complete search, the same search again (a cache hit), then
//! a search on which `konachan` fails every post page (retries, an error kind, its circuit
//! opening) and whose result is too large for the tiny cache (an eviction).

mod common;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use anya_sim::{Fault, FaultRule, SimFamily, World};
use common::sim::{self, Stack};
use serde_json::Value;

const ANYA: &str = "anya_forger";
const LOID: &str = "loid_forger";

/// Cache room for the small Loid result but not the 250-image Anya one.
const CACHE_MAX_BYTES: u64 = 50_000;

fn world() -> World {
    let mut world = World::new();
    world
        .source("yandere", SimFamily::Moebooru)
        .tag(ANYA, 4)
        .tag(LOID, 4)
        .posts(0..250, &[ANYA])
        .posts(1000..1010, &[LOID]);
    world
        .source("konachan", SimFamily::Moebooru)
        .tag(ANYA, 4)
        .posts(0..250, &[ANYA]);
    world
}

/// `konachan` opens its circuit after two failures in a row and stays open for the test.
/// One request at a time makes the order of its failures, and so the counts, exact: the
/// first page fails, then the count fails and opens the circuit, then both retries are
/// refused.
const OVERRIDES: &str = "
[cache]
max_bytes = 50000
[sources.konachan]
concurrency = 1
circuit_failures = 2
circuit_cooldown_secs = 600
";

/// Runs the scenario and returns the stack, with the time just before it started.
async fn scenario() -> (Stack, u64) {
    let started = unix_secs();
    let stack = sim::start(world(), OVERRIDES).await;
    for path in ["/post.json", "/post.xml"] {
        let fault = FaultRule::always(Fault::Status(503)).on_path(path);
        stack.sim.add_fault("konachan", fault);
    }

    let loid = stack
        .search("character=Loid%20Forger&sources=yandere")
        .await;
    let again = stack
        .search("character=Loid%20Forger&sources=yandere")
        .await;
    let anya = stack.search("character=Anya%20Forger").await;

    assert_eq!(
        (loid["cached"].as_bool(), again["cached"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(
        anya["sources"]["konachan"]["status"], "error",
        "{}",
        anya["sources"]
    );
    assert_eq!(anya["partial"], true);
    (stack, started)
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One sample of the exposition: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples and the declared `# TYPE` of each family in an OpenMetrics text.
fn parse(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let (name, kind) = declared.split_once(' ').expect("TYPE names a kind");
            types.insert(name.to_string(), kind.to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            samples.push(sample(line));
        }
    }
    (samples, types)
}

fn sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
    let (name, labels) = match series.split_once('{') {
        Some((name, labels)) => (name, labels.trim_end_matches('}')),
        None => (series, ""),
    };
    let labels = labels
        .split(',')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').expect("a label is key=value");
            (key.to_string(), value.trim_matches('"').to_string())
        })
        .collect();
    Sample {
        name: name.to_string(),
        labels,
        value: value.parse().expect("a sample's value is a number"),
    }
}

/// The value of the sample `name` whose labels are exactly `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted: BTreeMap<String, String> = labels
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    samples
        .iter()
        .find(|sample| sample.name == name && sample.labels == wanted)
        .unwrap_or_else(|| panic!("no sample {name}{labels:?} in {samples:#?}"))
        .value
}

async fn metrics(stack: &Stack) -> (Vec<Sample>, BTreeMap<String, String>) {
    let response = stack
        .http
        .get(stack.server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    parse(&response.text().await.unwrap())
}

#[tokio::test]
async fn every_promised_metric_is_exported_with_its_type() {
    let (stack, _) = scenario().await;

    let (_, types) = metrics(&stack).await;

    let promised = [
        ("anya_upstream_requests", "counter"),
        ("anya_upstream_request_duration_seconds", "histogram"),
        ("anya_upstream_wait_seconds", "histogram"),
        ("anya_upstream_in_flight", "gauge"),
        ("anya_circuit_state", "gauge"),
        ("anya_searches", "counter"),
        ("anya_search_duration_seconds", "histogram"),
        ("anya_search_images", "histogram"),
        ("anya_cache_entries", "gauge"),
        ("anya_cache_weighted_bytes", "gauge"),
        ("anya_cache_hits", "counter"),
        ("anya_cache_misses", "counter"),
        ("anya_cache_evictions", "counter"),
    ];
    for (name, kind) in promised {
        assert_eq!(types.get(name).map(String::as_str), Some(kind), "{name}");
    }
}

#[tokio::test]
async fn upstream_metrics_count_each_outcome_by_source() {
    let (stack, _) = scenario().await;

    let (samples, _) = metrics(&stack).await;

    let requests = |source, outcome| {
        value(
            &samples,
            "anya_upstream_requests_total",
            &[("source", source), ("outcome", outcome)],
        )
    };
    assert!(
        requests("yandere", "ok") >= 3.0,
        "tags and two searches' pages"
    );
    assert_eq!(
        requests("konachan", "unavailable"),
        2.0,
        "two HTTP 503s open the circuit"
    );
    assert_eq!(requests("konachan", "retried"), 2.0);
    assert_eq!(
        requests("konachan", "circuit_open"),
        2.0,
        "both retries are refused"
    );
    let yandere = [("source", "yandere")];
    let sent = value(
        &samples,
        "anya_upstream_request_duration_seconds_count",
        &yandere,
    );
    assert_eq!(sent, requests("yandere", "ok"));
    for stage in ["semaphore", "limiter"] {
        let labels = [("source", "yandere"), ("stage", stage)];
        assert!(
            value(&samples, "anya_upstream_wait_seconds_count", &labels) >= sent,
            "{stage}"
        );
    }
    assert_eq!(value(&samples, "anya_upstream_in_flight", &yandere), 0.0);
    assert_eq!(
        value(&samples, "anya_circuit_state", &[("source", "konachan")]),
        2.0,
        "open"
    );
    assert_eq!(
        value(&samples, "anya_circuit_state", &yandere),
        0.0,
        "closed"
    );
}

#[tokio::test]
async fn search_and_cache_metrics_follow_the_searches() {
    let (stack, _) = scenario().await;

    let (samples, _) = metrics(&stack).await;

    let searches = |outcome| value(&samples, "anya_searches_total", &[("outcome", outcome)]);
    assert_eq!(
        (
            searches("complete"),
            searches("partial"),
            searches("cached")
        ),
        (1.0, 1.0, 1.0)
    );
    assert_eq!(
        value(&samples, "anya_search_duration_seconds_count", &[]),
        3.0
    );
    assert_eq!(
        value(&samples, "anya_search_images_count", &[]),
        2.0,
        "one per fan-out"
    );
    assert_eq!(
        value(&samples, "anya_search_images_sum", &[]),
        260.0,
        "10 Loid, 250 Anya"
    );
    assert_eq!(value(&samples, "anya_cache_hits_total", &[]), 1.0);
    assert_eq!(value(&samples, "anya_cache_misses_total", &[]), 2.0);
    assert!(
        value(&samples, "anya_cache_evictions_total", &[]) >= 1.0,
        "Anya does not fit"
    );
    let entries = value(&samples, "anya_cache_entries", &[]);
    let bytes = value(&samples, "anya_cache_weighted_bytes", &[]);
    assert!(entries <= 1.0, "{entries}");
    assert!(bytes <= CACHE_MAX_BYTES as f64, "{bytes}");
}

fn source<'a>(sources: &'a Value, id: &str) -> &'a Value {
    let all = sources["sources"].as_array().expect("sources is an array");
    all.iter()
        .find(|source| source["id"] == id)
        .expect("the source is listed")
}

#[tokio::test]
async fn sources_show_live_state_after_failures() {
    let (stack, started) = scenario().await;

    let (status, sources) = stack.get("/v1/sources").await;

    assert_eq!(status, 200);
    let konachan = source(&sources, "konachan");
    assert_eq!(konachan["circuit"], "open", "{konachan}");
    assert_eq!(konachan["errors"], 2, "{konachan}");
    assert_eq!(konachan["recent"]["errors"], 2);
    assert_eq!(konachan["recent"]["requests"], konachan["requests"]);
    assert_eq!(konachan["recent"]["window_secs"], 300);
    let last = &konachan["last_error"];
    assert!(
        last["message"].as_str().unwrap().contains("HTTP 503"),
        "{last}"
    );
    let at = last["at_unix_secs"].as_u64().unwrap();
    assert!((started..=unix_secs()).contains(&at), "{at}");

    let yandere = source(&sources, "yandere");
    assert_eq!(yandere["circuit"], "closed");
    assert_eq!(yandere["errors"], 0);
    assert_eq!(yandere["last_error"], Value::Null);
    assert_eq!(yandere["recent"]["requests"], yandere["requests"]);
    assert_eq!(
        (
            yandere["in_flight"].as_u64(),
            yandere["permits_free"].as_u64()
        ),
        (Some(0), Some(16))
    );
}
