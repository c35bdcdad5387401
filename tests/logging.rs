//! Logs as operators read them: with `LOG_FORMAT=json` every line is one JSON object, each
//! request has a span with its method, matched path, id, status and elapsed_ms, and client
//! mistakes stay at debug level.
//!
//! The test runs on the current-thread runtime, so the server's tasks run on the test's
//! thread and the subscriber set for that thread sees everything they log.

mod common;

use anya_image_api::telemetry::{self, LogFormat};
use common::logs::Captured;
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

    let text = captured.text();
    text.lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
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
