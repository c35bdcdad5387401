//! `GET /v1/sources`: each configured source's settings and live counters, never a
//! credential.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use url::Url;

use crate::app::AppState;
use crate::sources::driver::GateStats;

/// The `/v1/sources` answer.
#[derive(Debug, Serialize)]
pub struct SourcesAnswer {
    /// Every configured source, enabled or not, in configuration order.
    pub sources: Vec<SourceView>,
}

/// One source as clients may see it.
#[derive(Debug, Serialize)]
pub struct SourceView {
    pub id: String,
    pub family: &'static str,
    /// The API root without any user name, password or query it may carry.
    pub base_url: String,
    pub enabled: bool,
    pub rate_per_sec: f64,
    pub burst: u32,
    pub concurrency: u32,
    pub page_size: u32,
    /// Whether an account is configured; its values never leave the process.
    pub credentials: bool,
    /// Live counters: `in_flight`, `permits_free`, `requests`, `errors`.
    #[serde(flatten)]
    pub stats: Option<GateStats>,
}

/// Lists the configured sources.
pub async fn list(State(state): State<AppState>) -> Json<SourcesAnswer> {
    let sources = state
        .config
        .sources_in_order()
        .into_iter()
        .map(|(id, source)| SourceView {
            id: id.to_string(),
            family: source.family.as_str(),
            base_url: shown_base_url(&source.base_url),
            enabled: source.enabled,
            rate_per_sec: source.rate_per_sec,
            burst: source.burst,
            concurrency: source.concurrency,
            page_size: source.page_size,
            credentials: state
                .driver
                .site(id)
                .is_some_and(|site| site.credentials.is_some()),
            stats: state.driver.stats(id),
        })
        .collect();
    Json(SourcesAnswer { sources })
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
