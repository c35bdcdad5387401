//! The HTTP control API under `/_sim/`, for steering a simulator that runs as its own
//! process:
//!
//! | route | effect |
//! | --- | --- |
//! | `GET /_sim/healthz` | `{"status":"ok"}` |
//! | `GET /_sim/sources` | `[{"source","family","base_url","posts","tags","max_in_flight"}]` |
//! | `GET /_sim/requests` | `[{"source","path","query":[[k,v]],"user_agent","accept_encoding","at_ms","status"}]` |
//! | `DELETE /_sim/requests` | forgets requests, restarts in-flight maxima |
//! | `POST /_sim/faults` | `{"source":"danbooru","rule":{"fault":{"status":503},"times":2}}` |
//! | `DELETE /_sim/faults/<source>` | removes that source's rules |
//! | `POST /_sim/latency` | `{"source":"danbooru","min_ms":50,"max_ms":200}`; no `source` = all |
//!
//! `user_agent` and `accept_encoding` are the request's headers, `null` when absent;
//! `at_ms` counts milliseconds from the simulator's start. Bad input gets 400 with
//! `{"error": "..."}`; changes answer 204.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::families::Reply;
use crate::fault::FaultRule;
use crate::service::{State, into_response};

/// Largest control request body, in bytes.
const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// Answers one `/_sim/` request.
pub(crate) async fn handle(state: &State, request: Request<Body>) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let body = match axum::body::to_bytes(request.into_body(), BODY_LIMIT_BYTES).await {
        Ok(body) => body,
        Err(error) => return into_response(error_reply(400, &error.to_string())),
    };
    into_response(route(state, &method, &path, &body))
}

fn route(state: &State, method: &Method, path: &str, body: &[u8]) -> Reply {
    match (method.as_str(), path) {
        ("GET", "/_sim/healthz") => Reply::json(200, json!({ "status": "ok" }).to_string()),
        ("GET", "/_sim/sources") => sources(state),
        ("GET", "/_sim/requests") => requests(state),
        ("DELETE", "/_sim/requests") => {
            state.clear_requests();
            no_content()
        }
        ("POST", "/_sim/faults") => with_json(body, |change: FaultChange| {
            state.runtime(&change.source).add_fault(change.rule);
        }),
        ("DELETE", _) if path.starts_with("/_sim/faults/") => {
            state.runtime(&path["/_sim/faults/".len()..]).clear_faults();
            no_content()
        }
        ("POST", "/_sim/latency") => with_json(body, |change: LatencyChange| {
            let (min, max) = (
                Duration::from_millis(change.min_ms),
                Duration::from_millis(change.max_ms),
            );
            let targets = change
                .source
                .map_or_else(|| state.order.clone(), |s| vec![s]);
            targets
                .iter()
                .for_each(|s| state.runtime(s).set_latency(min, max));
        }),
        _ => error_reply(404, &format!("no control route {method} {path}")),
    }
}

#[derive(Deserialize)]
struct FaultChange {
    source: String,
    rule: FaultRule,
}

#[derive(Deserialize)]
struct LatencyChange {
    source: Option<String>,
    min_ms: u64,
    max_ms: u64,
}

fn with_json<T: DeserializeOwned>(body: &[u8], apply: impl FnOnce(T)) -> Reply {
    match serde_json::from_slice(body) {
        Ok(change) => {
            apply(change);
            no_content()
        }
        Err(error) => error_reply(400, &error.to_string()),
    }
}

fn no_content() -> Reply {
    Reply::json(204, String::new())
}

fn error_reply(status: u16, message: &str) -> Reply {
    Reply::json(status, json!({ "error": message }).to_string())
}

fn sources(state: &State) -> Reply {
    let rows: Vec<_> = (state.order.iter())
        .filter_map(|id| state.sources.get(id))
        .map(|s| {
            json!({
                "source": s.id, "family": s.family.as_str(), "base_url": state.base_url(&s.id),
                "posts": s.posts.len(), "tags": s.tags.len(),
                "max_in_flight": state.runtime(&s.id).max_in_flight(),
            })
        })
        .collect();
    Reply::json(200, serde_json::Value::from(rows).to_string())
}

fn requests(state: &State) -> Reply {
    let rows: Vec<_> = (state.requests().into_iter())
        .map(|r| {
            json!({
                "source": r.source, "path": r.path, "query": r.query,
                "user_agent": r.user_agent, "accept_encoding": r.accept_encoding,
                "at_ms": r.at.saturating_duration_since(state.started).as_millis() as u64,
                "status": r.status,
            })
        })
        .collect();
    Reply::json(200, serde_json::Value::from(rows).to_string())
}
