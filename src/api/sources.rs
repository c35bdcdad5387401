//! `GET /v1/sources`: each configured source's settings and live state (permits, circuit,
//! recent traffic, last error), never a credential.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use url::Url;

use crate::app::AppState;
use crate::config::SourceConfig;
use crate::sources::driver::GateStats;

/// The `/v1/sources` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SourcesAnswer {
    /// Every configured source, enabled or not, in configuration order.
    pub sources: Vec<SourceView>,
}

/// One source as clients may see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SourceView {
    pub id: String,
    /// The API family: `danbooru`, `gelbooru`, `gelbooru_v02` or `moebooru`.
    pub family: &'static str,
    /// The API root without any user name, password or query it may carry.
    pub base_url: String,
    pub enabled: bool,
    /// Requests started per second, at most.
    pub rate_per_sec: f64,
    /// Requests the limiter lets through back to back.
    pub burst: u32,
    /// Requests in flight at once, at most.
    pub concurrency: u32,
    /// Posts asked for per upstream page.
    pub page_size: u32,
    /// Whether an account is configured; its values never leave the process.
    pub credentials: bool,
    /// The live state, beside the settings.
    #[serde(flatten)]
    pub stats: GateStats,
}

/// Lists the configured sources with their settings and live state.
#[utoipa::path(
    get,
    path = "/v1/sources",
    tag = "operations",
    responses((status = 200, description = "Every configured source, in configuration order", body = SourcesAnswer))
)]
pub async fn list(State(state): State<AppState>) -> Json<SourcesAnswer> {
    let sources = state
        .config
        .sources_in_order()
        .into_iter()
        // The driver keeps a gate for every configured source, so none is left out.
        .filter_map(|(id, source)| view(&state, id, source))
        .collect();
    Json(SourcesAnswer { sources })
}

/// Source `id`'s settings and its live state, if the driver knows it.
fn view(state: &AppState, id: &str, source: &SourceConfig) -> Option<SourceView> {
    let site = state.driver.site(id)?;
    Some(SourceView {
        id: id.to_string(),
        family: source.family.as_str(),
        base_url: shown_base_url(&source.base_url),
        enabled: source.enabled,
        rate_per_sec: source.rate_per_sec,
        burst: source.burst,
        concurrency: source.concurrency,
        page_size: source.page_size,
        credentials: site.credentials.is_some(),
        stats: state.driver.stats(id)?,
    })
}

/// `url` fit to show: a user name or password written into it, or a query (which requests
/// drop anyway), might be a credential.
pub fn shown_base_url(url: &Url) -> String {
    let mut shown = url.clone();
    // Both fail only for URLs that cannot have them, which need no cleaning.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    let text = shown.to_string();
    // The URL type always writes a root path; show `https://host` as it was configured.
    match shown.path() {
        "/" => text.trim_end_matches('/').to_string(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_base_url_drops_userinfo_and_query() {
        let url = Url::parse("https://me:hunter2@example.org/prefix/?api_key=abc#x").unwrap();

        assert_eq!(shown_base_url(&url), "https://example.org/prefix/");
    }

    #[test]
    fn shown_base_url_of_a_bare_host_has_no_slash() {
        let url = Url::parse("https://danbooru.donmai.us").unwrap();

        assert_eq!(shown_base_url(&url), "https://danbooru.donmai.us");
    }

    #[test]
    fn shown_base_url_keeps_a_plain_url() {
        let url = Url::parse("http://127.0.0.1:9000/danbooru").unwrap();

        assert_eq!(shown_base_url(&url), "http://127.0.0.1:9000/danbooru");
    }
}
