//! The HTTP edge: the route table, the handlers, validation, and the one error type.
//!
//! - [`params`]: the rules of the search and tag parameters, shared by GET and POST.
//! - [`extract`]: extractors whose rejections are [`ApiError`]s.
//! - [`error`]: [`ApiError`], the only type that turns into a response.
//! - [`layers`]: what wraps every request: request id, span, panic catching, body limit.
//! - [`body`]: [`body::JsonChunks`], an answer sent as ready pieces of JSON.
//! - [`encoding`]: gzip or identity for search answers, and the deflated pages kept.
//! - [`access`]: who may call: the optional API keys and per-client rate limit.
//! - [`openapi`]: the OpenAPI document, generated from [`route_table`] and the answer types.
//! - `search` and [`sources`]: the handlers of `/v1/search`, `/v1/tags` and `/v1/sources`;
//!   the small routes (`/`, `/healthz`, `/metrics`, the fallbacks) are here.

pub mod access;
pub mod body;
pub mod encoding;
pub mod error;
pub mod extract;
pub mod layers;
pub mod openapi;
pub mod params;
mod search;
pub mod sources;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, Uri};
use serde::Serialize;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;

pub use error::ApiError;

/// The service's router with every route and layer; it needs no socket, so tests can
/// drive it directly.
pub fn router(state: AppState) -> Router {
    let body_limit_bytes = state.config.server.body_limit_bytes;
    let access = access::Access::new(&state.config.server);
    let (routes, _) = route_table().split_for_parts();
    let routes = routes
        // Set after the routes: axum gives each existing route this fallback.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state);
    layers::apply(access.apply(routes), body_limit_bytes)
}

/// Every route with its handlers, each registered together with its OpenAPI operation: the
/// one table both the router and the OpenAPI document are built from, so neither can list
/// a route the other lacks.
pub fn route_table() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(index))
        .routes(routes!(healthz))
        .routes(routes!(search::search_get, search::search_post))
        .routes(routes!(search::tags))
        .routes(routes!(sources::list))
        .routes(routes!(metrics))
        .routes(routes!(openapi::document))
}

/// The answer of `GET /`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct About {
    /// Always `ANYA IMAGE API`.
    #[schema(example = "ANYA IMAGE API")]
    pub name: &'static str,
    /// The running version.
    pub version: &'static str,
}

/// Names the service and its version.
#[utoipa::path(
    get,
    path = "/",
    tag = "operations",
    responses((status = 200, description = "The service's name and version", body = About))
)]
async fn index() -> Json<About> {
    Json(About {
        name: "ANYA IMAGE API",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// The answer of `GET /healthz`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`: any answer at all means the process serves.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Answers while the process serves; the platform's health check.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process serves", body = Health))
)]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The OpenMetrics content type, which Prometheus asks for and parses.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The service's Prometheus metrics.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((
        status = 200,
        description = "Metrics in the OpenMetrics text format",
        body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    ))
)]
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
