//! The handlers of `/v1/search` (GET and POST) and `/v1/tags`: validate, then ask the
//! search service.

use axum::Json;
use axum::extract::State;

use super::error::ApiError;
use super::extract::{JsonObject, QueryPairs};
use super::params::{RawParams, Rules};
use crate::app::AppState;
use crate::search::{SearchPage, TagsAnswer};

/// `GET /v1/search`: the question in the query string.
pub async fn search_get(
    State(state): State<AppState>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<SearchPage>, ApiError> {
    let query = rules(&state).search_query(&RawParams::from_query(pairs)?)?;
    Ok(Json(state.search.search(query).await?))
}

/// `POST /v1/search`: the question as a JSON object.
pub async fn search_post(
    State(state): State<AppState>,
    JsonObject(object): JsonObject,
) -> Result<Json<SearchPage>, ApiError> {
    let query = rules(&state).search_query(&RawParams::from_json(object))?;
    Ok(Json(state.search.search(query).await?))
}

/// `GET /v1/tags`: tag discovery alone.
pub async fn tags(
    State(state): State<AppState>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<TagsAnswer>, ApiError> {
    let query = rules(&state).tags_query(&RawParams::from_query(pairs)?)?;
    Ok(Json(state.search.tags(query).await))
}

/// The validation rules of this deployment.
fn rules(state: &AppState) -> Rules {
    let disabled = state
        .config
        .sources_in_order()
        .into_iter()
        .filter(|(_, source)| !source.enabled)
        .map(|(id, _)| id.to_string())
        .collect();
    Rules {
        enabled: state.search.enabled_sources(),
        disabled,
        max_pages: state.config.search.max_pages,
    }
}
