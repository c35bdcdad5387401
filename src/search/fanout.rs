//! The fan-out of one search: a task per source (discovery, then paging), a deadline over
//! all of them, then the merge and the per-source report.
//!
//! The merge is bounded by `search.max_images`: once full, every source stops paging (see
//! [`super::pages`]) and the result says it was truncated. The bound is not a fault: a
//! source whose fetched pages all succeeded stays `ok`, and the result is cached as long
//! as a complete one.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tokio::time::Instant as Deadline;

use tracing::{Instrument, info, warn};

use super::discovery::{self, Discovery, NameQuery};
use super::pages::{Progress, SharedMerge, Sink, fetch_tag};
use super::{SearchQuery, SearchResult, SourceReport, SourceStatus, TagsReport};
use crate::cache::{Cacheable, ResultCache};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::model::SourceId;
use crate::sources::driver::{Driver, Upstream};
use crate::sources::{Site, UpstreamError};

/// Discoveries are cached per source and name, like search results.
pub type DiscoveryCache = ResultCache<(SourceId, NameQuery), DiscoveryEntry>;

/// A cached discovery. A failed look-up is not stored: the next search asks again, and the
/// circuit breaker keeps a failing site from being hammered.
#[derive(Debug)]
pub struct DiscoveryEntry(Result<Discovery, UpstreamError>);

impl Cacheable for DiscoveryEntry {
    fn weight_bytes(&self) -> usize {
        match &self.0 {
            Ok(found) => {
                found
                    .candidates
                    .iter()
                    .map(|tag| tag.name.len() + 48)
                    .sum::<usize>()
                    + 64
            }
            Err(_) => 256,
        }
    }

    fn is_partial(&self) -> bool {
        false
    }

    fn is_storable(&self) -> bool {
        self.0.is_ok()
    }
}

/// Everything a search's tasks share; cheap to clone into each task.
#[derive(Debug, Clone)]
pub struct Fanout {
    config: Arc<Config>,
    driver: Arc<Driver>,
    discoveries: Arc<DiscoveryCache>,
    metrics: Arc<Metrics>,
}

/// What one source task is asked to do.
struct SourceJob {
    id: SourceId,
    names: NameQuery,
    max_pages: u32,
    deadline: Option<Deadline>,
    fresh: bool,
    sink: Sink,
}

impl Fanout {
    pub fn new(
        config: Arc<Config>,
        driver: Arc<Driver>,
        discoveries: Arc<DiscoveryCache>,
        metrics: Arc<Metrics>,
    ) -> Fanout {
        Fanout {
            config,
            driver,
            discoveries,
            metrics,
        }
    }

    /// Runs `query` on every asked source at once and merges the result; `enabled` sources
    /// that were not asked are reported `skipped`.
    pub async fn run(self, query: SearchQuery, enabled: Vec<SourceId>) -> SearchResult {
        let started = Instant::now();
        let deadline = self.config.deadline().map(|limit| Deadline::now() + limit);
        let names = NameQuery::new(&query.character, query.series.as_deref());
        let merge = Arc::new(SharedMerge::new(self.config.search.max_images as usize));
        let tasks: Vec<_> = query
            .sources
            .iter()
            .enumerate()
            .map(|(rank, id)| {
                let job = SourceJob {
                    id: id.clone(),
                    names: names.clone(),
                    max_pages: query.max_pages,
                    deadline,
                    fresh: query.fresh,
                    sink: Sink::new(merge.clone(), rank),
                };
                tokio::spawn(self.clone().run_source(job).in_current_span())
            })
            .collect();
        let mut reports = BTreeMap::new();
        for (id, task) in query.sources.iter().zip(tasks) {
            let report = task
                .await
                .unwrap_or_else(|_| SourceReport::failed("the source's task stopped unexpectedly"));
            reports.insert(id.clone(), report);
        }
        for id in enabled.into_iter().filter(|id| !query.sources.contains(id)) {
            reports.insert(id, SourceReport::new(SourceStatus::Skipped));
        }
        let merged = merge.take();
        let truncated = merged.dropped() > 0;
        let result = SearchResult::new(merged.finish(), reports, truncated, started.elapsed());
        log_outcome(&query, &result);
        let outcome = if result.partial {
            "partial"
        } else {
            "complete"
        };
        self.metrics
            .search_finished(outcome, started.elapsed().as_secs_f64());
        self.metrics
            .search_images
            .observe(result.images.len() as f64);
        result
    }

    /// One source's part of a search: discovery, then every page of the chosen tags into
    /// the shared merge, all cut short at the deadline.
    async fn run_source(self, job: SourceJob) -> SourceReport {
        let started = Instant::now();
        let (Some(site), Some(config)) =
            (self.driver.site(&job.id), self.config.sources.get(&*job.id))
        else {
            return SourceReport::failed("the source is not configured");
        };
        let span = tracing::debug_span!("source", source = %job.id);
        // One progress per chosen tag, kept outside the work so that what arrived before a
        // deadline is still counted.
        let mut per_tag: Vec<Progress> = Vec::new();
        let mut tags = Vec::new();
        let upstream = Upstream {
            driver: &self.driver,
            site,
            deadline: job.deadline,
        };
        let work = async {
            let discovery = self
                .discover(site, &job.names, job.fresh, job.deadline)
                .await?;
            tags = discovery
                .chosen
                .iter()
                .map(|tag| tag.name.clone())
                .collect();
            // A source's several tags are paged together: their pages queue on the same
            // limiter, which sets the pace, and no tag waits for another's round trips.
            per_tag = (discovery.chosen.iter())
                .map(|_| Progress::new(job.sink.clone()))
                .collect();
            let fetches =
                (discovery.chosen.iter().zip(per_tag.iter_mut())).map(|(tag, progress)| {
                    fetch_tag(upstream, tag, config.page_size, job.max_pages, progress)
                });
            futures::future::join_all(fetches).await;
            Ok::<bool, UpstreamError>(!discovery.chosen.is_empty())
        }
        .instrument(span);
        let finished = match job.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, work).await.ok(),
            None => Some(work.await),
        };
        let mut progress = Progress::new(job.sink);
        for part in per_tag {
            progress.absorb(part);
        }
        let mut report = report_for(finished, &progress, self.config.search.deadline_secs);
        report.tags = tags;
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        report
    }

    /// The discovery of `names` on `site`, from the cache when possible.
    async fn discover(
        &self,
        site: &Site,
        names: &NameQuery,
        fresh: bool,
        deadline: Option<Deadline>,
    ) -> Result<Discovery, UpstreamError> {
        if !names.is_searchable() {
            return Ok(Discovery {
                chosen: Vec::new(),
                candidates: Vec::new(),
            });
        }
        let key = (site.id.clone(), names.clone());
        let lookup = || self.lookup(site, names, deadline);
        shared_discovery(&self.discoveries, key, fresh, deadline, lookup).await
    }

    /// The look-up of `names` on `site` as a detached future, for the discovery cache to run.
    ///
    /// Concurrent searches share it, so it carries `deadline` itself: a hung upstream must
    /// not hold a permit or the flight forever.
    fn lookup(
        &self,
        site: &Site,
        names: &NameQuery,
        deadline: Option<Deadline>,
    ) -> impl Future<Output = DiscoveryEntry> + Send + 'static {
        let (driver, site, names) = (self.driver.clone(), site.clone(), names.clone());
        let limit = self.config.search.tag_candidates;
        async move {
            let upstream = Upstream {
                driver: &driver,
                site: &site,
                deadline,
            };
            let work = discovery::discover(upstream, &names, limit);
            let found = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, work)
                    .await
                    .unwrap_or(Err(UpstreamError::DeadlineExceeded)),
                None => work.await,
            };
            DiscoveryEntry(found)
        }
    }

    /// Discovery alone, for `/v1/tags`, bounded by the search deadline.
    pub async fn tags_report(&self, id: &SourceId, names: &NameQuery) -> TagsReport {
        let Some(site) = self.driver.site(id) else {
            return TagsReport::failed(SourceStatus::Error, "the source is not configured".into());
        };
        let deadline = self.config.deadline().map(|limit| Deadline::now() + limit);
        let work = self.discover(site, names, false, deadline);
        let found = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, work).await.ok(),
            None => Some(work.await),
        };
        match found {
            None | Some(Err(UpstreamError::DeadlineExceeded)) => TagsReport::failed(
                SourceStatus::Timeout,
                "tag discovery did not finish within the search deadline".into(),
            ),
            Some(Err(error)) => TagsReport::failed(SourceStatus::Error, error.to_string()),
            Some(Ok(found)) => TagsReport {
                status: if found.chosen.is_empty() {
                    SourceStatus::NoTags
                } else {
                    SourceStatus::Ok
                },
                chosen: found.chosen.into_iter().map(|tag| tag.name).collect(),
                candidates: found.candidates,
                error: None,
            },
        }
    }
}

/// Runs or joins the discovery under `key` in `cache`; `lookup` makes this asker's own run,
/// bounded by its `deadline`.
///
/// A run already in flight for another search carries that search's deadline. When it ran
/// out of time while this asker still has some, this asker runs discovery itself rather
/// than report a deadline it did not reach.
async fn shared_discovery<R, F>(
    cache: &Arc<DiscoveryCache>,
    key: (SourceId, NameQuery),
    fresh: bool,
    deadline: Option<Deadline>,
    lookup: R,
) -> Result<Discovery, UpstreamError>
where
    R: Fn() -> F,
    F: Future<Output = DiscoveryEntry> + Send + 'static,
{
    loop {
        let mut ran = false;
        let run = || {
            ran = true;
            lookup()
        };
        let found = match cache.get_or_run(key.clone(), fresh, run).await {
            Some((entry, _)) => entry.0.clone(),
            None => {
                return Err(UpstreamError::Transport(
                    "tag discovery stopped unexpectedly".into(),
                ));
            }
        };
        let time_left = deadline.is_none_or(|deadline| Deadline::now() < deadline);
        match found {
            Err(UpstreamError::DeadlineExceeded) if !ran && time_left => continue,
            found => return found,
        }
    }
}

/// The report of a source from how its work ended: `None` when the deadline cut it short.
fn report_for(
    finished: Option<Result<bool, UpstreamError>>,
    progress: &Progress,
    deadline_secs: u64,
) -> SourceReport {
    let mut report = SourceReport::new(SourceStatus::Ok);
    report.pages = progress.pages;
    report.posts = progress.posts;
    report.skipped_posts = progress.skipped;
    report.pages_skipped = progress.pages_skipped;
    let failed = progress.first_error.as_ref().map(|error| {
        let requests = progress.failures;
        format!(
            "{error} ({requests} request{} failed)",
            if requests == 1 { "" } else { "s" }
        )
    });
    match finished {
        // The detached discovery and this source's task share the deadline; whichever
        // notices it first, the source ran out of time.
        None | Some(Err(UpstreamError::DeadlineExceeded)) => {
            report.status = SourceStatus::Timeout;
            report.error = Some(format!(
                "the source did not finish within the {deadline_secs} s search deadline; {} pages arrived in time",
                progress.pages
            ));
        }
        Some(Err(error)) => {
            report.status = SourceStatus::Error;
            report.error = Some(format!("tag discovery failed: {error}"));
        }
        Some(Ok(false)) => report.status = SourceStatus::NoTags,
        Some(Ok(true)) if failed.is_none() => {}
        Some(Ok(true)) => {
            report.status = if progress.pages > 0 {
                SourceStatus::Partial
            } else {
                SourceStatus::Error
            };
            report.error = failed;
        }
    }
    report
}

fn log_outcome(query: &SearchQuery, result: &SearchResult) {
    for (id, report) in &result.sources {
        if matches!(
            report.status,
            SourceStatus::Error | SourceStatus::Timeout | SourceStatus::Partial
        ) {
            warn!(source = %id, status = report.status.as_str(), error = report.error.as_deref().unwrap_or(""), "source degraded");
        }
    }
    let statuses: Vec<String> = result
        .sources
        .iter()
        .filter(|(_, report)| report.status != SourceStatus::Skipped)
        .map(|(id, report)| format!("{id}={}", report.status.as_str()))
        .collect();
    info!(
        character = %query.character,
        series = query.series.as_deref().unwrap_or(""),
        outcome = if result.partial { "partial" } else { "complete" },
        total = result.images.len(),
        truncated = result.truncated,
        sources = %statuses.join(" "),
        elapsed_ms = result.elapsed_ms,
        "search finished"
    );
}

impl SourceReport {
    /// The report of a source that failed before doing anything, for `reason`.
    fn failed(reason: &str) -> SourceReport {
        let mut report = SourceReport::new(SourceStatus::Error);
        report.error = Some(reason.to_string());
        report
    }

    /// An empty report with `status`.
    pub fn new(status: SourceStatus) -> SourceReport {
        SourceReport {
            status,
            tags: Vec::new(),
            pages: 0,
            posts: 0,
            skipped_posts: 0,
            pages_skipped: 0,
            elapsed_ms: 0,
            error: None,
        }
    }
}

impl TagsReport {
    fn failed(status: SourceStatus, error: String) -> TagsReport {
        TagsReport {
            status,
            chosen: Vec::new(),
            candidates: Vec::new(),
            error: Some(error),
        }
    }
}

impl SourceStatus {
    /// The status's name in the HTTP contract.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceStatus::Ok => "ok",
            SourceStatus::Partial => "partial",
            SourceStatus::Error => "error",
            SourceStatus::Timeout => "timeout",
            SourceStatus::NoTags => "no_tags",
            SourceStatus::Skipped => "skipped",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn nothing_found() -> Discovery {
        Discovery {
            chosen: Vec::new(),
            candidates: Vec::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_joiner_with_time_left_runs_discovery_itself_when_the_run_it_joined_times_out() {
        let cache = Arc::new(DiscoveryCache::new(
            1 << 20,
            Duration::from_secs(60),
            Duration::from_secs(1),
        ));
        let key = (
            SourceId::from("konachan"),
            NameQuery::new("Anya Forger", None),
        );
        let runs = Arc::new(AtomicUsize::new(0));
        // The first run hangs like an upstream that never answers; any later one succeeds.
        let lookup = |deadline: Deadline| {
            let runs = runs.clone();
            move || {
                let first = runs.fetch_add(1, Ordering::SeqCst) == 0;
                async move {
                    if !first {
                        return DiscoveryEntry(Ok(nothing_found()));
                    }
                    let hang = std::future::pending::<()>();
                    let _ = tokio::time::timeout_at(deadline, hang).await;
                    DiscoveryEntry(Err(UpstreamError::DeadlineExceeded))
                }
            }
        };
        let early = Deadline::now() + Duration::from_secs(1);
        let first = tokio::spawn({
            let (cache, key, lookup) = (cache.clone(), key.clone(), lookup(early));
            async move { shared_discovery(&cache, key, false, Some(early), lookup).await }
        });
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_millis(500)).await;

        let late = Deadline::now() + Duration::from_secs(1);
        let joined = shared_discovery(&cache, key, false, Some(late), lookup(late)).await;

        let first = first.await.unwrap();
        assert!(
            matches!(first, Err(UpstreamError::DeadlineExceeded)),
            "{first:?}"
        );
        assert_eq!(joined.unwrap(), nothing_found());
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "the joiner ran its own look-up"
        );
    }
}
