//! Logs as operators read them: with `LOG_FORMAT=json` every line is one JSON object; the
//! binary starts with its banner and a configuration summary without credentials; each
//! request has a span with its method, matched path, id, status and elapsed_ms, which every
//! line logged for the request carries, the detached fan-out's included; each fan-out
//! logs one info line and a warning per degraded source; client mistakes stay at debug.
//!
//! The tests run on the current-thread runtime, so the server's and the simulator's tasks
//! run on the test's thread and the subscriber set for that thread sees everything they
//! log.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anya_image_api::telemetry::{self, LogFormat};
use anya_sim::{Fault, FaultRule, SimFamily, World};
use common::logs::Captured;
use common::sim;
use common::{client, start};
use serde_json::Value;
use tracing_subscriber::EnvFilter;

/// Serves three requests (a good one, an unknown route, an invalid search) with JSON logs
/// captured at debug level, and returns the parsed lines.
async fn json_lines_of_three_requests() -> Vec<Value> {
    let captured = Captured::default();
    let filter = EnvFilter::new("anya_image_api=debug,tower_http=debug");
    let subscriber = telemetry::subscriber(LogFormat::Json, filter, captured.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = start("").await;
    for (path, id) in [
        ("/healthz", "log-ok"),
        ("/nowhere", "log-404"),
        ("/v1/search?character=a&page=0", "log-400"),
    ] {
        let response = client()
            .get(server.url(path))
            .header("x-request-id", id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-request-id"], id);
    }
    server.stop().await.unwrap();

    parse_lines(&captured.text())
}

/// Each line of `text` as a JSON object; panics on any line that is not one.
fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
            assert!(value.is_object(), "not an object: {line}");
            value
        })
        .collect()
}

fn finished_line<'a>(lines: &'a [Value], request_id: &str) -> &'a Value {
    lines
        .iter()
        .find(|line| {
            line["message"] == "request finished" && line["span"]["request_id"] == request_id
        })
        .unwrap_or_else(|| panic!("no completion line for {request_id} in {lines:#?}"))
}

#[tokio::test]
async fn json_logs_carry_the_request_span() {
    let lines = json_lines_of_three_requests().await;

    let ok = finished_line(&lines, "log-ok");
    assert_eq!(ok["level"], "DEBUG");
    assert_eq!(ok["status"], 200);
    assert!(ok["elapsed_ms"].is_u64(), "{ok}");
    let span = &ok["span"];
    assert_eq!(span["name"], "request");
    assert_eq!(span["method"], "GET");
    assert_eq!(span["path"], "/healthz");
    assert_eq!(span["status"], 200);

    assert_eq!(
        finished_line(&lines, "log-404")["span"]["path"],
        "unmatched"
    );
    let search = finished_line(&lines, "log-400");
    assert_eq!(search["span"]["path"], "/v1/search");
    assert_eq!(search["status"], 400);
}

#[tokio::test]
async fn client_mistakes_are_logged_at_debug_only() {
    let lines = json_lines_of_three_requests().await;

    let rejections: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == "request rejected")
        .collect();
    let codes: Vec<&Value> = rejections.iter().map(|line| &line["code"]).collect();
    assert_eq!(codes, ["not_found", "invalid_query"]);
    for line in rejections {
        assert_eq!(line["level"], "DEBUG", "{line}");
    }
    for line in &lines {
        assert!(
            matches!(line["level"].as_str(), Some("DEBUG" | "INFO" | "TRACE")),
            "nothing in these requests deserves a warning: {line}"
        );
    }
}

const ANYA: &str = "anya_forger";
const LOID: &str = "loid_forger";

/// Yande.re holds Anya and Loid; Konachan holds Anya but fails every post page.
fn world() -> World {
    let mut world = World::new();
    world
        .source("yandere", SimFamily::Moebooru)
        .tag(ANYA, 4)
        .tag(LOID, 4)
        .posts(0..30, &[ANYA])
        .posts(100..110, &[LOID]);
    world
        .source("konachan", SimFamily::Moebooru)
        .tag(ANYA, 4)
        .posts(0..30, &[ANYA]);
    world
}

/// The searches of the log tests, by the request id each is sent with: a fan-out in which
/// Konachan fails, the same search again (answered from the cache), a complete fan-out.
const SEARCHES: [(&str, &str); 3] = [
    ("log-partial", "character=Anya%20Forger"),
    ("log-cached", "character=anya_forger"),
    ("log-complete", "character=Loid%20Forger&sources=yandere"),
];

/// Runs [`SEARCHES`] against the simulator with JSON logs captured at debug level, and
/// returns the parsed lines.
async fn json_lines_of_searches() -> Vec<Value> {
    let captured = Captured::default();
    let filter = EnvFilter::new("debug");
    let subscriber = telemetry::subscriber(LogFormat::Json, filter, captured.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let stack = sim::start(world(), "[sources.konachan]\nmax_retries = 1\n").await;
    let fault = FaultRule::always(Fault::Status(503)).on_path("/post.json");
    stack.sim.add_fault("konachan", fault);
    for (id, query) in SEARCHES {
        let response = stack
            .http
            .get(stack.server.url(&format!("/v1/search?{query}")))
            .header("x-request-id", id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-request-id"], id);
    }
    stack.server.stop().await.unwrap();

    parse_lines(&captured.text())
}

/// The request id of the request span a line was logged in, if any.
fn request_id(line: &Value) -> Option<&str> {
    let spans = line["spans"].as_array()?;
    let request = spans.iter().find(|span| span["name"] == "request")?;
    request["request_id"].as_str()
}

fn with_message<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|line| line["message"] == message)
        .collect()
}

#[tokio::test]
async fn each_fan_out_logs_one_info_line_with_its_outcome() {
    let lines = json_lines_of_searches().await;

    let finished = with_message(&lines, "search finished");

    let ids: Vec<Option<&str>> = finished.iter().map(|line| request_id(line)).collect();
    assert_eq!(
        ids,
        [Some("log-partial"), Some("log-complete")],
        "{finished:#?}"
    );
    for line in &finished {
        assert_eq!(line["level"], "INFO");
        for field in [
            "character",
            "series",
            "outcome",
            "total",
            "truncated",
            "sources",
            "elapsed_ms",
        ] {
            assert!(line.get(field).is_some(), "no {field} in {line}");
        }
        assert!(line["elapsed_ms"].is_u64(), "{line}");
    }
    let (partial, complete) = (finished[0], finished[1]);
    assert_eq!(partial["character"], "Anya Forger");
    assert_eq!(partial["series"], "");
    assert_eq!(partial["outcome"], "partial");
    assert_eq!(partial["total"], 30);
    assert_eq!(partial["sources"], "konachan=error yandere=ok");
    assert_eq!(complete["outcome"], "complete");
    assert_eq!(complete["sources"], "yandere=ok");
}

#[tokio::test]
async fn a_cached_answer_logs_at_debug_only() {
    let lines = json_lines_of_searches().await;

    let cached: Vec<&Value> = lines
        .iter()
        .filter(|line| request_id(line) == Some("log-cached"))
        .collect();

    let messages: Vec<&Value> = cached.iter().map(|line| &line["message"]).collect();
    assert!(
        messages.contains(&&Value::from("search answered from cache")),
        "{messages:?}"
    );
    for line in cached {
        assert_eq!(line["level"], "DEBUG", "{line}");
    }
}

#[tokio::test]
async fn a_degraded_source_logs_one_warning_with_its_reason() {
    let lines = json_lines_of_searches().await;

    let warnings: Vec<&Value> = lines
        .iter()
        .filter(|line| line["level"] == "WARN")
        .collect();

    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let warning = warnings[0];
    assert_eq!(warning["message"], "source degraded");
    assert_eq!(warning["source"], "konachan");
    assert!(warning["status"].is_string(), "{warning}");
    let error = warning["error"].as_str().unwrap_or_default();
    assert!(error.contains("HTTP 503"), "{warning}");
    assert_eq!(request_id(warning), Some("log-partial"));
}

#[tokio::test]
async fn pages_and_upstream_failures_are_debug_lines_of_their_request() {
    let lines = json_lines_of_searches().await;

    let pages = with_message(&lines, "page fetched");
    let failures = with_message(&lines, "upstream request failed");
    let retries = with_message(&lines, "retrying upstream request");

    assert!(!pages.is_empty() && !failures.is_empty() && !retries.is_empty());
    for line in pages.iter().chain(&failures).chain(&retries) {
        assert_eq!(line["level"], "DEBUG", "{line}");
        assert!(request_id(line).is_some(), "{line}");
    }
    let page = pages[0];
    assert!(page["source"].is_string() && page["page"].is_u64() && page["posts"].is_u64());
    let upstream = &failures[0]["span"];
    assert_eq!(upstream["name"], "upstream_request");
    assert_eq!(upstream["source"], "konachan");
    assert_eq!(upstream["status"], 503);
}

#[tokio::test]
async fn every_line_logged_inside_a_request_carries_its_id() {
    let lines = json_lines_of_searches().await;

    let sent: Vec<&str> = SEARCHES.iter().map(|(id, _)| *id).collect();
    for line in &lines {
        let target = line["target"].as_str().unwrap_or_default();
        // Only the server's own start and stop happen outside any request.
        if target.starts_with("anya_image_api") && target != "anya_image_api::server" {
            let id = request_id(line);
            assert!(
                id.is_some_and(|id| sent.contains(&id)),
                "no request id: {line}"
            );
        }
    }
    let fan_out = with_message(&lines, "page fetched");
    assert!(
        fan_out
            .iter()
            .any(|line| request_id(line) == Some("log-complete"))
    );
}

/// Starts the binary with `LOG_FORMAT=json` and credentials in its environment, reads its
/// log until it listens, stops it, and returns the parsed lines.
fn start_up_lines() -> Vec<Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_anya-image-api"))
        .env_clear()
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("PORT", "0")
        .env("ANYA_SERVER__HOST", "127.0.0.1")
        .env("ANYA_SOURCES__DANBOORU__LOGIN", "login-value-Xq3")
        .env("ANYA_SOURCES__DANBOORU__API_KEY", "key-value-Wm7")
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut text = String::new();
    let stderr = BufReader::new(child.stderr.take().expect("standard error is piped"));
    for line in stderr.lines() {
        let line = line.expect("the log is text");
        text.push_str(&line);
        text.push('\n');
        if line.contains("listening") {
            break;
        }
    }
    child.kill().expect("the binary can be stopped");
    child.wait().expect("the binary stops");
    parse_lines(&text)
}

#[test]
fn the_binary_starts_with_its_banner_and_a_summary_without_credentials() {
    let lines = start_up_lines();

    let messages: Vec<&str> = lines
        .iter()
        .filter_map(|line| line["message"].as_str())
        .collect();
    let banner = format!("ANYA IMAGE API v{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(messages.first(), Some(&banner.as_str()), "{messages:?}");
    let summary = messages
        .iter()
        .find(|message| message.starts_with("configuration: "))
        .expect("a configuration summary");
    for expected in [
        "source danbooru:",
        "rate_per_sec=2",
        "concurrency=6",
        "credentials=true",
    ] {
        assert!(summary.contains(expected), "{expected} in {summary}");
    }
    let all = serde_json::to_string(&lines).unwrap();
    assert!(!all.contains("login-value-Xq3") && !all.contains("key-value-Wm7"));
    assert!(
        messages
            .last()
            .is_some_and(|last| last.starts_with("listening"))
    );
    assert!(
        lines.iter().all(|line| line["level"] == "INFO"),
        "{lines:#?}"
    );
}
