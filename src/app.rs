//! The application state shared by every request: configuration, driver, search service,
//! metrics.

use std::sync::Arc;
use std::time::Duration;

use crate::api::encoding::CompressedPages;
use crate::api::params::Rules;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::search::SearchService;
use crate::sources::driver::Driver;

/// Everything a request handler needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub driver: Arc<Driver>,
    pub search: Arc<SearchService>,
    pub metrics: Arc<Metrics>,
    /// The validation rules of this deployment, built once: they follow from the
    /// configuration alone, so no request should pay for assembling them.
    pub rules: Arc<Rules>,
    /// Deflated pages of cached results, for gzip answers: at most a sixteenth of
    /// `cache.max_bytes` besides the results themselves.
    pub pages: Arc<CompressedPages>,
}

impl AppState {
    /// Builds the driver and the search service from a validated configuration.
    pub fn new(config: Config) -> Result<AppState, reqwest::Error> {
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::new());
        let driver = Arc::new(Driver::new(&config, metrics.clone())?);
        let search = Arc::new(SearchService::new(
            config.clone(),
            driver.clone(),
            metrics.clone(),
        ));
        let rules = Arc::new(Rules::for_config(&config, search.enabled_sources()));
        let pages = Arc::new(CompressedPages::new(
            config.cache.max_bytes / 16 + 1,
            Duration::from_secs(config.cache.ttl_secs),
        ));
        Ok(AppState {
            config,
            driver,
            search,
            metrics,
            rules,
            pages,
        })
    }

    /// The metrics in the Prometheus text format, with the gauges that mirror live state
    /// (cache size, circuit states) brought up to date first.
    pub fn render_metrics(&self) -> String {
        self.driver.export_circuit_states();
        let results = self.search.results();
        results.run_pending_tasks();
        self.metrics.cache_entries.set(results.entry_count() as i64);
        self.metrics
            .cache_weighted_bytes
            .set(results.weighted_size_bytes() as i64);
        self.metrics.render()
    }
}
