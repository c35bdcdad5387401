//! The handlers of `/v1/search` (GET and POST) and `/v1/tags`: validate, then ask the
//! search service.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::encoding::search_answer;
use super::error::{ApiError, ErrorBody};
use super::extract::{JsonObject, QueryPairs};
use super::openapi::{SearchParams, TagsParams};
use super::params::RawParams;
use crate::app::AppState;
use crate::search::{SearchPage, TagsAnswer};

/// Every image of a character, merged from the sources; the question in the query string.
#[utoipa::path(
    get,
    path = "/v1/search",
    tag = "search",
    params(SearchParams),
    responses(
        (status = 200, description = "One page of the merged images and a report per source; gzip-compressed when `Accept-Encoding` accepts gzip", body = SearchPage),
        (status = 400, description = "A parameter broke a rule (`invalid_query`)", body = ErrorBody),
        (status = 500, description = "The search failed unexpectedly (`internal`)", body = ErrorBody),
    )
)]
pub async fn search_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let query = state.rules.search_query(&RawParams::from_query(pairs)?)?;
    let page = state.search.search(query).await?;
    Ok(search_answer(&headers, &state.pages, page).await)
}

/// Every image of a character, merged from the sources; the question as a JSON object.
#[utoipa::path(
    post,
    path = "/v1/search",
    tag = "search",
    request_body = SearchParams,
    responses(
        (status = 200, description = "One page of the merged images and a report per source; gzip-compressed when `Accept-Encoding` accepts gzip", body = SearchPage),
        (status = 400, description = "A field broke a rule (`invalid_query`), or the body is not JSON (`invalid_body`)", body = ErrorBody),
        (status = 413, description = "The body is larger than `server.body_limit_bytes` (`payload_too_large`)", body = ErrorBody),
        (status = 415, description = "The body is not declared as JSON (`unsupported_media_type`)", body = ErrorBody),
        (status = 422, description = "The body is JSON but not an object (`invalid_body`)", body = ErrorBody),
        (status = 500, description = "The search failed unexpectedly (`internal`)", body = ErrorBody),
    )
)]
pub async fn search_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonObject(object): JsonObject,
) -> Result<Response, ApiError> {
    let query = state.rules.search_query(&RawParams::from_json(object))?;
    let page = state.search.search(query).await?;
    Ok(search_answer(&headers, &state.pages, page).await)
}

/// The tags each source would search for a character: discovery alone, no posts fetched.
#[utoipa::path(
    get,
    path = "/v1/tags",
    tag = "search",
    params(TagsParams),
    responses(
        (status = 200, description = "Each source's candidate tags and its choice", body = TagsAnswer),
        (status = 400, description = "A parameter broke a rule (`invalid_query`)", body = ErrorBody),
    )
)]
pub async fn tags(
    State(state): State<AppState>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<TagsAnswer>, ApiError> {
    let query = state.rules.tags_query(&RawParams::from_query(pairs)?)?;
    Ok(Json(state.search.tags(query).await))
}
