//! The HTTP edge: the route table, the handlers, validation, and the one error type.
//!
//! - [`params`]: the rules of the search and tag parameters, shared by GET and POST.
//! - [`extract`]: extractors whose rejections are [`ApiError`]s.
//! - [`error`]: [`ApiError`], the only type that turns into a response.
//! - [`layers`]: what wraps every request: request id, span, panic catching, body limit.
//! - `search` and [`sources`]: the handlers of `/v1/search`, `/v1/tags` and `/v1/sources`;
//!   the small routes (`/`, `/healthz`, `/metrics`, the fallbacks) are here.

pub mod error;
pub mod extract;
pub mod layers;
pub mod params;
mod search;
pub mod sources;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, Uri};
use axum::routing::get;
use serde_json::{Value, json};

use crate::app::AppState;

pub use error::ApiError;

/// The service's router with every route and layer; it needs no socket, so tests can
/// drive it directly.
pub fn router(state: AppState) -> Router {
    let body_limit_bytes = state.config.server.body_limit_bytes;
    let routes = Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/v1/sources", get(sources::list))
        .route(
            "/v1/search",
            get(search::search_get).post(search::search_post),
        )
        .route("/v1/tags", get(search::tags))
        .route("/metrics", get(metrics))
        // Set after the routes: axum gives each existing route this fallback.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state);
    layers::apply(routes, body_limit_bytes)
}

async fn index() -> Json<Value> {
    Json(json!({
        "name": "ANYA IMAGE API",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The OpenMetrics content type, which Prometheus asks for and parses.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn metrics(
    State(state): State<AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    ([(CONTENT_TYPE, OPENMETRICS)], state.render_metrics())
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound {
        path: uri.path().to_string(),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}
