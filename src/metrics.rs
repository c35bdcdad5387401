//! The service's Prometheus metrics: one registry per running instance, rendered at
//! `GET /metrics`.
//!
//! Counters and histograms are updated where things happen (the driver, the search); gauges
//! that mirror a state held elsewhere (cache size, circuit state) are read when rendered.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels naming a source.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

/// Labels of an upstream request's outcome: `ok`, an error kind, or `retried`.
///
/// Every attempt counts once under `ok` or its error kind, and once more under `retried`
/// when it is tried again. `circuit_open` counts attempts refused without being sent while
/// the source is paused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub source: String,
    pub outcome: String,
}

/// Labels of a wait before sending: `stage` is `semaphore` or `limiter`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WaitLabels {
    pub source: String,
    pub stage: String,
}

/// Labels of a finished search: `outcome` is `complete`, `partial` or `cached`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SearchLabels {
    pub outcome: String,
}

fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
}

/// Every metric the service exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    pub upstream_requests: Family<OutcomeLabels, Counter>,
    pub upstream_duration: Family<SourceLabels, Histogram, fn() -> Histogram>,
    pub upstream_wait: Family<WaitLabels, Histogram, fn() -> Histogram>,
    pub upstream_in_flight: Family<SourceLabels, Gauge>,
    pub circuit_state: Family<SourceLabels, Gauge>,
    pub searches: Family<SearchLabels, Counter>,
    pub search_duration: Histogram,
    pub search_images: Histogram,
    pub cache_entries: Gauge,
    pub cache_weighted_bytes: Gauge,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub cache_evictions: Counter,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Metrics {
        let metrics = Metrics {
            registry: Mutex::new(Registry::with_prefix("anya")),
            upstream_requests: Family::default(),
            upstream_duration: Family::new_with_constructor(seconds_histogram),
            upstream_wait: Family::new_with_constructor(seconds_histogram),
            upstream_in_flight: Family::default(),
            circuit_state: Family::default(),
            searches: Family::default(),
            search_duration: seconds_histogram(),
            search_images: Histogram::new(exponential_buckets(1.0, 4.0, 10)),
            cache_entries: Gauge::default(),
            cache_weighted_bytes: Gauge::default(),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            cache_evictions: Counter::default(),
        };
        metrics.register();
        metrics
    }

    fn register(&self) {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let r = &mut *registry;
        r.register(
            "upstream_requests",
            "Upstream request attempts by source and outcome (ok, an error kind, retried)",
            self.upstream_requests.clone(),
        );
        r.register(
            "upstream_request_duration_seconds",
            "Time from sending an upstream request to its whole body",
            self.upstream_duration.clone(),
        );
        r.register(
            "upstream_wait_seconds",
            "Time an upstream request waited for the semaphore or the limiter",
            self.upstream_wait.clone(),
        );
        r.register(
            "upstream_in_flight",
            "Upstream requests holding a permit",
            self.upstream_in_flight.clone(),
        );
        r.register(
            "circuit_state",
            "Circuit breaker state by source: 0 closed, 1 half open, 2 open",
            self.circuit_state.clone(),
        );
        r.register(
            "searches",
            "Searches answered, by outcome (complete, partial, cached)",
            self.searches.clone(),
        );
        r.register(
            "search_duration_seconds",
            "Time to answer a search",
            self.search_duration.clone(),
        );
        r.register(
            "search_images",
            "Images in a search's merged result",
            self.search_images.clone(),
        );
        r.register(
            "cache_entries",
            "Search results in the cache",
            self.cache_entries.clone(),
        );
        r.register(
            "cache_weighted_bytes",
            "Memory the cached search results take, as weighed",
            self.cache_weighted_bytes.clone(),
        );
        r.register(
            "cache_hits",
            "Searches answered from the cache",
            self.cache_hits.clone(),
        );
        r.register(
            "cache_misses",
            "Searches that needed a fan-out",
            self.cache_misses.clone(),
        );
        r.register(
            "cache_evictions",
            "Cached results evicted to stay under cache.max_bytes",
            self.cache_evictions.clone(),
        );
    }

    /// The metrics in the Prometheus text format (OpenMetrics flavour).
    pub fn render(&self) -> String {
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = String::new();
        encode(&mut text, &registry).expect("writing to a String cannot fail");
        text
    }

    /// Counts an upstream request's outcome.
    pub fn upstream_outcome(&self, source: &str, outcome: &str) {
        let labels = OutcomeLabels {
            source: source.to_string(),
            outcome: outcome.to_string(),
        };
        self.upstream_requests.get_or_create(&labels).inc();
    }

    /// Records a wait before sending, in seconds.
    pub fn upstream_waited(&self, source: &str, stage: &str, seconds: f64) {
        let labels = WaitLabels {
            source: source.to_string(),
            stage: stage.to_string(),
        };
        self.upstream_wait.get_or_create(&labels).observe(seconds);
    }

    /// The gauge of requests in flight to `source`.
    pub fn in_flight(&self, source: &str) -> Gauge {
        self.upstream_in_flight
            .get_or_create(&SourceLabels {
                source: source.to_string(),
            })
            .clone()
    }

    /// Counts a finished search.
    pub fn search_finished(&self, outcome: &str, seconds: f64) {
        self.searches
            .get_or_create(&SearchLabels {
                outcome: outcome.to_string(),
            })
            .inc();
        self.search_duration.observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_its_labels() {
        let metrics = Metrics::new();
        metrics.upstream_outcome("danbooru", "ok");
        metrics.upstream_waited("danbooru", "limiter", 0.25);
        metrics.search_finished("complete", 1.5);

        let text = metrics.render();

        assert!(
            text.contains(r#"anya_upstream_requests_total{source="danbooru",outcome="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"anya_upstream_wait_seconds_count{source="danbooru",stage="limiter"} 1"#
            )
        );
        assert!(text.contains(r#"anya_searches_total{outcome="complete"} 1"#));
        assert!(text.contains("anya_cache_evictions_total 0"));
    }
}
