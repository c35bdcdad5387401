//! What wraps every request, outermost first: a usable request id, a span per request,
//! the id echoed in the response, `charset=utf-8` on JSON, panics turned into JSON 500s,
//! and the request-body limit.

use std::any::Any;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::{Span, debug, field, info_span};

use super::error::ApiError;

/// The header that carries a request's id in and out.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-given request id kept; a longer one is replaced.
const MAX_REQUEST_ID_BYTES: usize = 128;

/// Wraps `routes` (routes and fallbacks already set) in the layers every request passes.
pub fn apply(routes: Router, body_limit_bytes: usize) -> Router {
    let layers = ServiceBuilder::new()
        .layer(middleware::map_request(drop_unusable_request_id))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(finish_span)
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(middleware::map_response(json_charset))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(DefaultBodyLimit::max(body_limit_bytes));
    routes.layer(layers)
}

/// Removes a client-given request id that would garble logs or headers, so that a fresh
/// one is generated instead.
async fn drop_unusable_request_id(mut request: Request) -> Request {
    let usable = request
        .headers()
        .get(&REQUEST_ID)
        .is_none_or(|value| is_usable_request_id(value.as_bytes()));
    if !usable {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// A request id is usable when it is 1 to 128 letters, digits, `-`, `_`, `.` or `:`.
pub fn is_usable_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_BYTES).contains(&id.len())
        && id
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_.:".contains(byte))
}

/// The span of one request. It is an info span, below which the search's own span and its
/// one info line hang, so that line carries the request id.
fn request_span(request: &Request) -> Span {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    info_span!(
        "request",
        method = %request.method(),
        path,
        request_id,
        status = field::Empty,
        elapsed_ms = field::Empty,
    )
}

/// Records the outcome on the request's span and logs the completion line.
fn finish_span(response: &Response, latency: Duration, span: &Span) {
    let status = response.status().as_u16();
    let elapsed_ms = latency.as_millis() as u64;
    span.record("status", status);
    span.record("elapsed_ms", elapsed_ms);
    debug!(status, elapsed_ms, "request finished");
}

/// Marks JSON bodies as UTF-8, as the HTTP contract states.
async fn json_charset<B>(mut response: Response<B>) -> Response<B> {
    let is_bare_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes() == b"application/json");
    if is_bare_json {
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    response
}

/// The JSON 500 that replaces a panicking handler's missing answer.
#[expect(
    clippy::needless_pass_by_value,
    reason = "CatchPanicLayer hands the payload over by value"
)]
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_string());
    ApiError::Internal {
        detail: format!("request handler panicked: {message}"),
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn panicking_router() -> Router {
        let routes = Router::new().route(
            "/boom",
            get(|| async {
                if true {
                    panic!("kaboom");
                }
                "unreachable"
            }),
        );
        apply(routes, 1024)
    }

    #[tokio::test]
    async fn a_panic_becomes_a_json_500_with_a_request_id() {
        let request = Request::get("/boom").body(Body::empty()).unwrap();

        let response = panicking_router().oneshot(request).await.unwrap();

        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
        assert!(response.headers().contains_key(&REQUEST_ID));
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal");
        assert_eq!(body["error"]["message"], "internal error");
    }

    #[tokio::test]
    async fn an_unusable_request_id_is_replaced() {
        let request = Request::get("/boom")
            .header(&REQUEST_ID, "two words")
            .body(Body::empty())
            .unwrap();

        let response = panicking_router().oneshot(request).await.unwrap();

        let id = response.headers()[&REQUEST_ID].to_str().unwrap();
        assert_ne!(id, "two words");
        assert!(is_usable_request_id(id.as_bytes()), "{id}");
    }

    #[test]
    fn usable_request_ids() {
        for good in ["a", "3f2b9c1e-7d4a-4c1b-9e0f-123456789abc", "req_1.2:3"] {
            assert!(is_usable_request_id(good.as_bytes()), "{good}");
        }
        let too_long = "x".repeat(MAX_REQUEST_ID_BYTES + 1);
        for bad in ["", "a b", "a\nb", "ü", too_long.as_str(), "<script>"] {
            assert!(!is_usable_request_id(bad.as_bytes()), "{bad}");
        }
    }
}
