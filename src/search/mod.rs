//! One search: tag discovery on every asked source, parallel paging, and the MD5 merge.
//!
//! [`SearchService`] is the entry point the HTTP edge calls. It answers from the cache when
//! it can; otherwise it starts one fan-out per distinct question (concurrent identical
//! searches share it), detached from the caller so that the result lands in the cache even
//! if the client hangs up.

pub mod discovery;
mod fanout;
pub mod merge;
pub mod pages;
mod result;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::Instrument;

use crate::cache::{Origin, ResultCache};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::model::{Rating, SourceId, TagCandidate};
use crate::sources::driver::Driver;

pub use result::{AnswerText, PageImages, PageKey, SearchPage, SearchResult, TagsAnswer};

use discovery::NameQuery;
use fanout::{DiscoveryCache, Fanout};

/// A validated, normalised search request.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The character as the user typed it, trimmed (1 to 100 characters).
    pub character: String,
    /// The series, trimmed; `None` when not given or empty.
    pub series: Option<String>,
    /// Sources to ask, de-duplicated, in configuration order.
    pub sources: Vec<SourceId>,
    /// Ratings to keep; all four when the client gave none.
    pub ratings: Vec<Rating>,
    /// Upstream pages per source, 1 to `search.max_pages`.
    pub max_pages: u32,
    /// Page of the merged result to return, from 1.
    pub page: u32,
    /// Images per returned page, 1 to 1000.
    pub per_page: u32,
    /// Bypass the cache; the new result replaces the cached one.
    pub fresh: bool,
}

/// A validated tag-discovery request (`/v1/tags`).
#[derive(Debug, Clone, PartialEq)]
pub struct TagsQuery {
    pub character: String,
    pub series: Option<String>,
    pub sources: Vec<SourceId>,
}

/// How one source fared in a search or a discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    Ok,
    Partial,
    Error,
    Timeout,
    NoTags,
    Skipped,
}

/// The per-source report of a search.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SourceReport {
    pub status: SourceStatus,
    /// The tags searched on this source.
    pub tags: Vec<String>,
    /// Pages fetched successfully.
    pub pages: u32,
    /// Posts received (before merging).
    pub posts: u64,
    /// Posts dropped because they carry neither an MD5 nor a file URL.
    pub skipped_posts: u64,
    /// Pages not fetched because the search had already merged `search.max_images` images;
    /// 0 unless the answer is `truncated`. Not a failure: the status stays `ok`.
    pub pages_skipped: u32,
    /// Time this source took, in milliseconds.
    pub elapsed_ms: u64,
    /// What went wrong, in a short sentence; never a secret.
    pub error: Option<String>,
}

/// The discovery report of one source (`/v1/tags`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TagsReport {
    pub status: SourceStatus,
    /// The tags the search would use.
    pub chosen: Vec<String>,
    /// Every candidate considered, best first.
    pub candidates: Vec<TagCandidate>,
    pub error: Option<String>,
}

/// Failures of a search as a whole; a failing source is never one of them.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The detached search task ended without a result (it panicked).
    #[error("the search stopped unexpectedly")]
    Internal,
}

/// The cache key of a search: the normalised question, without paging or rating filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchKey {
    character: String,
    series: String,
    sources: Vec<SourceId>,
    max_pages: u32,
}

impl SearchKey {
    /// The key of `query`: case, surrounding and repeated white space, underscores versus
    /// spaces, and the order or repetition of sources make no difference.
    pub fn new(query: &SearchQuery) -> SearchKey {
        let mut sources = query.sources.clone();
        sources.sort();
        sources.dedup();
        SearchKey {
            character: normalise(&query.character),
            series: query.series.as_deref().map(normalise).unwrap_or_default(),
            sources,
            max_pages: query.max_pages,
        }
    }
}

/// Lowercase, underscores as spaces, white space collapsed and trimmed.
pub fn normalise(text: &str) -> String {
    let spaced = text.replace('_', " ").to_lowercase();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runs searches and tag discoveries against the configured sources.
#[derive(Debug)]
pub struct SearchService {
    config: Arc<Config>,
    fanout: Fanout,
    results: Arc<ResultCache<SearchKey, SearchResult>>,
    metrics: Arc<Metrics>,
}

impl SearchService {
    /// A service over `driver`'s sources with `config`'s limits and cache.
    pub fn new(config: Arc<Config>, driver: Arc<Driver>, metrics: Arc<Metrics>) -> SearchService {
        let ttl = Duration::from_secs(config.cache.ttl_secs);
        let partial_ttl = Duration::from_secs(config.cache.partial_ttl_secs);
        let evictions = metrics.cache_evictions.clone();
        let results = Arc::new(ResultCache::with_eviction_hook(
            config.cache.max_bytes,
            ttl,
            partial_ttl,
            move || {
                evictions.inc();
            },
        ));
        let discoveries: Arc<DiscoveryCache> = Arc::new(ResultCache::new(
            config.cache.max_bytes / 8 + 1,
            ttl,
            partial_ttl,
        ));
        let fanout = Fanout::new(config.clone(), driver, discoveries, metrics.clone());
        SearchService {
            config,
            fanout,
            results,
            metrics,
        }
    }

    /// The cache of complete search results, for metrics and tests.
    pub fn results(&self) -> &ResultCache<SearchKey, SearchResult> {
        &self.results
    }

    /// Ids of the enabled sources, in configuration order: the default of `sources`.
    pub fn enabled_sources(&self) -> Vec<SourceId> {
        self.config
            .sources_in_order()
            .into_iter()
            .filter(|(_, source)| source.enabled)
            .map(|(id, _)| SourceId::from(id))
            .collect()
    }

    /// Answers a search, from the cache when possible; identical concurrent searches share
    /// one fan-out, which finishes and is cached even if every asker hangs up.
    pub async fn search(&self, query: SearchQuery) -> Result<SearchPage, SearchError> {
        let started = Instant::now();
        let span = tracing::info_span!(
            "search",
            character = %query.character,
            series = query.series.as_deref().unwrap_or(""),
            cache = tracing::field::Empty,
        );
        let key = SearchKey::new(&query);
        let run = || {
            let fanout = self.fanout.clone();
            fanout
                .run(query.clone(), self.enabled_sources())
                .instrument(span.clone())
        };
        let (result, origin) = self
            .results
            .get_or_run(key, query.fresh, run)
            .await
            .ok_or(SearchError::Internal)?;
        let cached = origin == Origin::Cached;
        span.record("cache", if cached { "hit" } else { "miss" });
        if cached {
            self.metrics.cache_hits.inc();
            self.metrics
                .search_finished("cached", started.elapsed().as_secs_f64());
            span.in_scope(|| {
                tracing::debug!(total = result.images.len(), "search answered from cache");
            });
        } else {
            self.metrics.cache_misses.inc();
        }
        Ok(SearchPage::cut(&result, query, cached, started.elapsed()))
    }

    /// Runs tag discovery alone on the asked sources; no post pages are fetched.
    pub async fn tags(&self, query: TagsQuery) -> TagsAnswer {
        let names = NameQuery::new(&query.character, query.series.as_deref());
        let runs = query.sources.iter().map(|id| {
            let fanout = self.fanout.clone();
            let (id, names) = (id.clone(), names.clone());
            async move { (id.clone(), fanout.tags_report(&id, &names).await) }
        });
        let sources: BTreeMap<SourceId, TagsReport> =
            futures::future::join_all(runs).await.into_iter().collect();
        TagsAnswer {
            query: serde_json::json!({
                "character": query.character,
                "series": query.series,
                "sources": query.sources,
            }),
            sources,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(character: &str, series: Option<&str>, sources: &[&str]) -> SearchQuery {
        SearchQuery {
            character: character.into(),
            series: series.map(str::to_string),
            sources: sources.iter().map(|id| SourceId::from(*id)).collect(),
            ratings: Rating::ALL.to_vec(),
            max_pages: 100,
            page: 1,
            per_page: 100,
            fresh: false,
        }
    }

    fn key(query: &SearchQuery) -> SearchKey {
        SearchKey::new(query)
    }

    #[test]
    fn spelling_and_source_order_do_not_change_the_key() {
        let plain = key(&query(
            "Anya Forger",
            Some("Spy x Family"),
            &["danbooru", "yandere"],
        ));
        let respelled = [
            query(
                "ANYA forger",
                Some("spy X FAMILY"),
                &["danbooru", "yandere"],
            ),
            query(
                "  Anya \t  Forger ",
                Some(" Spy  x Family  "),
                &["danbooru", "yandere"],
            ),
            query(
                "anya_forger",
                Some("spy_x_family"),
                &["danbooru", "yandere"],
            ),
            query(
                "Anya Forger",
                Some("Spy x Family"),
                &["yandere", "danbooru"],
            ),
            query(
                "Anya Forger",
                Some("Spy x Family"),
                &["yandere", "danbooru", "yandere"],
            ),
        ];
        for other in &respelled {
            assert_eq!(key(other), plain, "{other:?}");
        }
    }

    #[test]
    fn paging_the_answer_and_filtering_its_ratings_do_not_change_the_key() {
        let first = query("Anya Forger", None, &["danbooru"]);
        // Pages and the rating filter are cut out of the one cached, unfiltered result.
        let other_page = SearchQuery {
            page: 7,
            per_page: 3,
            ratings: vec![Rating::General],
            fresh: true,
            ..first.clone()
        };
        assert_eq!(key(&other_page), key(&first));
    }

    #[test]
    fn another_question_is_another_key() {
        let first = query("Anya Forger", Some("Spy x Family"), &["danbooru"]);
        let others = [
            query("Yor Forger", Some("Spy x Family"), &["danbooru"]),
            query("Anya Forger", Some("Other Work"), &["danbooru"]),
            query("Anya Forger", None, &["danbooru"]),
            query(
                "Anya Forger",
                Some("Spy x Family"),
                &["danbooru", "yandere"],
            ),
            SearchQuery {
                max_pages: 5,
                ..first.clone()
            },
        ];
        for other in &others {
            assert_ne!(key(other), key(&first), "{other:?}");
        }
    }
}
