//! The upstream driver: the one place every request to an upstream passes through.
//!
//! It owns the shared HTTP client and, per source, a semaphore (requests in flight) and a
//! governor limiter (requests started per second). A request first takes a permit, then
//! waits for the limiter, then goes out; nothing reaches an upstream any other way. The body
//! is read up to `upstream.max_body_bytes` and parsed by the caller's adapter within the
//! same attempt, so a 200 whose body is unusable fails like any other answer; every failure
//! becomes an [`UpstreamError`].
//!
//! Failures that may pass (429, 5xx, a broken connection) are retried after the upstream's
//! `Retry-After` or a jittered exponential back-off; each retry takes a permit and waits for
//! the limiter like any request, and none is attempted past the search's deadline. A circuit
//! breaker per source pauses a source that keeps failing.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, RETRY_AFTER, USER_AGENT};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant as Deadline;
use tracing::{Instrument, debug, debug_span};
use url::Url;

use super::circuit::{Circuit, CircuitState};
use super::recent::{RecentCounts, RecentTotals};
use super::{Site, UpstreamError};
use crate::config::{Config, SourceConfig};
use crate::metrics::Metrics;

/// What a request is for; it names the request in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// A tag look-up during discovery.
    Tags,
    /// A Danbooru alias look-up during discovery.
    Aliases,
    /// A post count.
    Count,
    /// A page of posts (1-based).
    Page(u32),
}

impl RequestKind {
    fn name(self) -> &'static str {
        match self {
            RequestKind::Tags => "tags",
            RequestKind::Aliases => "aliases",
            RequestKind::Count => "count",
            RequestKind::Page(_) => "page",
        }
    }
}

/// Counts a request in the in-flight gauge while it holds a permit.
struct InFlight(prometheus_client::metrics::gauge::Gauge);

impl InFlight {
    fn enter(gauge: prometheus_client::metrics::gauge::Gauge) -> InFlight {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The per-source gate: permits, pace and counters.
#[derive(Debug)]
struct Gate {
    site: Site,
    user_agent: reqwest::header::HeaderValue,
    semaphore: Semaphore,
    concurrency: u32,
    limiter: DefaultDirectRateLimiter,
    circuit: Circuit,
    retry: RetryPolicy,
    requests: AtomicU64,
    errors: AtomicU64,
    recent: RecentCounts,
    last_error: std::sync::Mutex<Option<LastError>>,
}

/// The most recent failure of a source, for `/v1/sources`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct LastError {
    /// What went wrong, in a sentence safe to show.
    pub message: String,
    /// When, in seconds since the Unix epoch.
    pub at_unix_secs: u64,
}

/// Live counters of one source, for `/v1/sources`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct GateStats {
    /// Requests holding a permit now (waiting for the limiter or on the wire).
    pub in_flight: u32,
    /// Permits free now.
    pub permits_free: u32,
    /// Requests sent since start.
    pub requests: u64,
    /// Requests that failed since start.
    pub errors: u64,
    /// Requests sent and failed in the last minutes, to tell a source failing now from one
    /// that failed once, hours ago.
    pub recent: RecentTotals,
    /// The circuit breaker: `closed` while requests flow, `open` while the source is
    /// paused, `half_open` while one probe decides.
    pub circuit: CircuitState,
    /// The most recent failure and when it happened; `null` if none since start.
    pub last_error: Option<LastError>,
}

/// When and how often a failed request is tried again.
#[derive(Debug, Clone, Copy)]
struct RetryPolicy {
    max_retries: u32,
    backoff_base: Duration,
    backoff_max: Duration,
    retry_after_max: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based): the upstream's `Retry-After` when it
    /// gave one, else full-jitter exponential back-off, a random wait up to
    /// `backoff_base * 2^retry` but never above `backoff_max`.
    ///
    /// `None` when the upstream asks for a longer wait than `retry_after_max`: the request
    /// then fails at once with the upstream's error, rather than wait longer than we honour
    /// or retry sooner than the upstream asked.
    fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if let Some(asked) = retry_after {
            return (asked <= self.retry_after_max).then_some(asked);
        }
        let ceiling = self
            .backoff_base
            .saturating_mul(1 << retry.min(16))
            .min(self.backoff_max);
        Some(ceiling.mul_f64(fastrand::f64()))
    }
}

/// Sends requests to upstreams under each source's limits.
#[derive(Debug)]
pub struct Driver {
    client: reqwest::Client,
    gates: HashMap<String, Gate>,
    max_body_bytes: usize,
    metrics: Arc<Metrics>,
}

impl Driver {
    /// Builds the client and one gate per configured source, reporting to `metrics`.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Result<Driver, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.upstream.connect_timeout_secs))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(32)
            .gzip(true)
            .brotli(true)
            .build()?;
        let gates = config
            .sources
            .iter()
            .map(|(id, source)| {
                (
                    id.clone(),
                    Gate::new(id, source, &config.upstream.user_agent),
                )
            })
            .collect();
        Ok(Driver {
            client,
            gates,
            max_body_bytes: config.upstream.max_body_bytes,
            metrics,
        })
    }

    /// The adapter view of source `id`, if it is configured.
    pub fn site(&self, id: &str) -> Option<&Site> {
        self.gates.get(id).map(|gate| &gate.site)
    }

    /// Live counters of source `id`.
    pub fn stats(&self, id: &str) -> Option<GateStats> {
        self.gates.get(id).map(Gate::stats)
    }

    /// Sends a GET to `url` on behalf of source `id` and returns the body of a 2xx answer,
    /// whatever it holds; [`Driver::get_parsed`] is the same request with the body read.
    pub async fn get(
        &self,
        id: &str,
        url: Url,
        kind: RequestKind,
        deadline: Option<Deadline>,
    ) -> Result<Bytes, UpstreamError> {
        self.get_parsed(id, url, kind, deadline, |body| Ok(body.clone()))
            .await
    }

    /// Sends a GET to `url` on behalf of source `id` and returns what `parse` reads from the
    /// body of a 2xx answer.
    ///
    /// Each attempt waits for a permit of the source's semaphore, then for its limiter, then
    /// for the circuit breaker's leave, and only then sends. Non-2xx answers become the error
    /// the family's error body means. `parse` runs inside each attempt, so a body that cannot
    /// be read (malformed JSON, an empty body, an error document sent with 200) counts as
    /// that attempt's failure everywhere a failure counts: the outcome metrics, the source's
    /// errors and last error, the circuit breaker, and the retries. Retries stop before
    /// `deadline`.
    pub async fn get_parsed<T>(
        &self,
        id: &str,
        url: Url,
        kind: RequestKind,
        deadline: Option<Deadline>,
        mut parse: impl FnMut(&Bytes) -> Result<T, UpstreamError>,
    ) -> Result<T, UpstreamError> {
        let gate = self
            .gates
            .get(id)
            .ok_or_else(|| UpstreamError::Connect(format!("source {id} is not configured")))?;
        let page = match kind {
            RequestKind::Page(page) => Some(page),
            _ => None,
        };
        let span = debug_span!(
            "upstream_request",
            source = id,
            request = kind.name(),
            page,
            status = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
            retries = tracing::field::Empty,
        );
        self.get_with_retries(gate, url, deadline, &mut parse)
            .instrument(span)
            .await
    }

    async fn get_with_retries<T>(
        &self,
        gate: &Gate,
        url: Url,
        deadline: Option<Deadline>,
        parse: &mut impl FnMut(&Bytes) -> Result<T, UpstreamError>,
    ) -> Result<T, UpstreamError> {
        let mut retry = 0;
        let mut previous: Option<UpstreamError> = None;
        loop {
            let error = match (
                self.attempt(gate, url.clone(), parse).await,
                previous.take(),
            ) {
                (Ok(parsed), _) => return Ok(parsed),
                // Earlier failures paused the source while this request waited to retry:
                // the failure that led here explains more than the pause does.
                (Err(UpstreamError::CircuitOpen { .. }), Some(cause)) => return Err(cause),
                (Err(error), _) => error,
            };
            tracing::Span::current().record("retries", retry);
            let wait = match error.is_retryable() && retry < gate.retry.max_retries {
                true => gate.retry.wait(retry, error.retry_after()),
                false => None,
            };
            let Some(wait) = wait else {
                return Err(error);
            };
            if deadline.is_some_and(|deadline| Deadline::now() + wait >= deadline) {
                return Err(error);
            }
            debug!(error = %error, wait_ms = wait.as_millis() as u64, "retrying upstream request");
            self.metrics.upstream_outcome(&gate.site.id, "retried");
            tokio::time::sleep(wait).await;
            previous = Some(error);
            retry += 1;
        }
    }

    /// One attempt: permit, limiter, circuit, send; then `parse`, whose verdict is the
    /// attempt's outcome. The permit is given back before parsing: it bounds requests on the
    /// wire, and parsing asks nothing of the upstream.
    async fn attempt<T>(
        &self,
        gate: &Gate,
        url: Url,
        parse: &mut impl FnMut(&Bytes) -> Result<T, UpstreamError>,
    ) -> Result<T, UpstreamError> {
        let (permit, in_flight, started) = self.pace(gate).await?;
        let admission = gate
            .circuit
            .admit()
            .inspect_err(|refusal| self.metrics.upstream_outcome(&gate.site.id, refusal.kind()))?;
        gate.requests.fetch_add(1, Ordering::Relaxed);
        let sent = self.send(gate, url).await;
        let elapsed = started.elapsed();
        drop((in_flight, permit));
        tracing::Span::current().record("elapsed_ms", elapsed.as_millis() as u64);
        let result = sent.and_then(|body| parse(&body));
        gate.circuit.record(admission, result.as_ref().err());
        self.observe(gate, elapsed, result.as_ref().err());
        result
    }

    /// Waits for a permit, then for the limiter; returns the permit, the in-flight count it
    /// holds and when the limiter let the request go.
    ///
    /// While the source is paused and cooling down the request is refused at once, both
    /// before it queues for a permit and again once it has one: requests queued before the
    /// pause then fail without waiting for the limiter only to be refused after it.
    async fn pace<'g>(
        &self,
        gate: &'g Gate,
    ) -> Result<(SemaphorePermit<'g>, InFlight, Instant), UpstreamError> {
        let source = &*gate.site.id;
        let refuse = |refusal: UpstreamError| {
            self.metrics.upstream_outcome(source, refusal.kind());
            refusal
        };
        let queued = Instant::now();
        if let Some(refusal) = gate.circuit.refusing() {
            return Err(refuse(refusal));
        }
        let permit = gate
            .semaphore
            .acquire()
            .await
            .expect("the semaphore is never closed");
        if let Some(refusal) = gate.circuit.refusing() {
            return Err(refuse(refusal));
        }
        let in_flight = InFlight::enter(self.metrics.in_flight(source));
        let permitted = Instant::now();
        gate.limiter.until_ready().await;
        let started = Instant::now();
        self.metrics
            .upstream_waited(source, "semaphore", (permitted - queued).as_secs_f64());
        self.metrics
            .upstream_waited(source, "limiter", (started - permitted).as_secs_f64());
        Ok((permit, in_flight, started))
    }

    fn observe(&self, gate: &Gate, elapsed: Duration, error: Option<&UpstreamError>) {
        let source = &*gate.site.id;
        let labels = crate::metrics::SourceLabels {
            source: source.to_string(),
        };
        self.metrics
            .upstream_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        gate.recent.record(error.is_some());
        match error {
            None => self.metrics.upstream_outcome(source, "ok"),
            Some(error) => {
                gate.errors.fetch_add(1, Ordering::Relaxed);
                gate.note_error(error);
                self.metrics.upstream_outcome(source, error.kind());
                debug!(error = %error, "upstream request failed");
            }
        }
    }

    /// Copies each source's circuit state into its gauge, for rendering.
    pub fn export_circuit_states(&self) {
        for (id, gate) in &self.gates {
            let value = match gate.circuit.state() {
                CircuitState::Closed => 0,
                CircuitState::HalfOpen => 1,
                CircuitState::Open => 2,
            };
            let labels = crate::metrics::SourceLabels { source: id.clone() };
            self.metrics.circuit_state.get_or_create(&labels).set(value);
        }
    }

    async fn send(&self, gate: &Gate, url: Url) -> Result<Bytes, UpstreamError> {
        let response = self
            .client
            .get(url)
            .header(USER_AGENT, gate.user_agent.clone())
            .send()
            .await
            .map_err(describe_send_error)?;
        let status = response.status().as_u16();
        tracing::Span::current().record("status", status);
        let retry_after = retry_after(response.headers());
        let challenged = is_challenge(response.headers());
        let body = self.read_body(response).await?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        if challenged {
            return Err(UpstreamError::Challenge { status });
        }
        Err(gate
            .site
            .error_for(status, &body)
            .with_retry_after(retry_after))
    }

    /// Reads the body up to the cap, failing as soon as it is exceeded.
    async fn read_body(&self, response: reqwest::Response) -> Result<Bytes, UpstreamError> {
        let limit_bytes = self.max_body_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > limit_bytes as u64)
        {
            return Err(UpstreamError::TooLarge { limit_bytes });
        }
        let capacity = response
            .content_length()
            .unwrap_or(0)
            .min(limit_bytes as u64) as usize;
        let mut body = BytesMut::with_capacity(capacity);
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|err| UpstreamError::Transport(describe(err)))?;
            if body.len() + chunk.len() > limit_bytes {
                return Err(UpstreamError::TooLarge { limit_bytes });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

impl Gate {
    fn new(id: &str, source: &SourceConfig, default_agent: &str) -> Gate {
        let agent = source.user_agent.as_deref().unwrap_or(default_agent);
        let period = Duration::from_secs_f64(1.0 / source.rate_per_sec);
        let burst = NonZeroU32::new(source.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .expect("configuration validation keeps the rate finite and positive")
            .allow_burst(burst);
        Gate {
            site: Site::new(id, source),
            user_agent: reqwest::header::HeaderValue::from_str(agent)
                .expect("configuration validation checks user agents"),
            semaphore: Semaphore::new(source.concurrency as usize),
            concurrency: source.concurrency,
            limiter: RateLimiter::direct(quota),
            circuit: Circuit::new(
                source.circuit_failures,
                Duration::from_secs(source.circuit_cooldown_secs),
            ),
            retry: RetryPolicy {
                max_retries: source.max_retries,
                backoff_base: Duration::from_secs_f64(source.backoff_base_secs),
                backoff_max: Duration::from_secs_f64(source.backoff_max_secs),
                retry_after_max: Duration::from_secs(source.retry_after_max_secs),
            },
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            recent: RecentCounts::new(),
            last_error: std::sync::Mutex::new(None),
        }
    }

    fn note_error(&self, error: &UpstreamError) {
        let at_unix_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.as_secs())
            .unwrap_or_default();
        let last = LastError {
            message: error.to_string(),
            at_unix_secs,
        };
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(last);
    }

    fn stats(&self) -> GateStats {
        let permits_free = self.semaphore.available_permits() as u32;
        GateStats {
            in_flight: self.concurrency.saturating_sub(permits_free),
            permits_free,
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            recent: self.recent.totals(),
            circuit: self.circuit.state(),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }
}

/// The upstream's `Retry-After`, in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(text).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Whether Cloudflare says it answered with a challenge instead of the site
/// (`cf-mitigated: challenge`), whatever the status and body.
fn is_challenge(headers: &HeaderMap) -> bool {
    headers
        .get_all("cf-mitigated")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.trim().eq_ignore_ascii_case("challenge"))
}

fn describe_send_error(error: reqwest::Error) -> UpstreamError {
    if error.is_connect() || (error.is_timeout() && !error.is_body()) {
        return UpstreamError::Connect(describe(error));
    }
    UpstreamError::Transport(describe(error))
}

/// The error's message with its chain of causes and without the URL, which may hold
/// credentials.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(err) = cause {
        let part = err.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = err.source();
    }
    super::error::truncate(&text, 200)
}

/// One source as a search sees it: the driver, the site's adapter, and the search's deadline.
#[derive(Debug, Clone, Copy)]
pub struct Upstream<'a> {
    pub driver: &'a Driver,
    pub site: &'a Site,
    /// No retry starts that could not finish before this instant.
    pub deadline: Option<Deadline>,
}

impl Upstream<'_> {
    /// Sends a GET to `url` through the driver on this source's behalf and reads the body
    /// with `parse`, inside each attempt (see [`Driver::get_parsed`]).
    pub async fn get_parsed<T>(
        &self,
        url: Url,
        kind: RequestKind,
        parse: impl FnMut(&Bytes) -> Result<T, UpstreamError>,
    ) -> Result<T, UpstreamError> {
        self.driver
            .get_parsed(&self.site.id, url, kind, self.deadline, parse)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 2,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            retry_after_max: Duration::from_secs(30),
        }
    }

    fn headers_with_retry_after(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_in_seconds_is_read_and_honoured() {
        let asked = retry_after(&headers_with_retry_after(" 7 "));
        assert_eq!(asked, Some(Duration::from_secs(7)));
        assert_eq!(policy().wait(0, asked), Some(Duration::from_secs(7)));
        assert_eq!(policy().wait(1, Some(Duration::ZERO)), Some(Duration::ZERO));
        assert_eq!(retry_after(&HeaderMap::new()), None);
        assert_eq!(retry_after(&headers_with_retry_after("soon")), None);
        assert_eq!(retry_after(&headers_with_retry_after("-3")), None);
    }

    #[test]
    fn retry_after_as_an_http_date_is_the_time_left_until_it() {
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        let asked = retry_after(&headers_with_retry_after(&httpdate::fmt_http_date(later)))
            .expect("a date is a wait");
        // HTTP dates have whole seconds, and some time passes while the test runs.
        assert!(
            (Duration::from_secs(60)..=Duration::from_secs(120)).contains(&asked),
            "{asked:?}"
        );
        let past = httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(
            retry_after(&headers_with_retry_after(&past)),
            Some(Duration::ZERO),
            "a date gone by means now"
        );
    }

    #[test]
    fn a_retry_after_over_the_cap_fails_the_request_at_once() {
        let policy = policy();
        assert_eq!(
            policy.wait(0, Some(Duration::from_secs(30))),
            Some(Duration::from_secs(30))
        );
        assert_eq!(policy.wait(0, Some(Duration::from_secs(31))), None);
        assert_eq!(policy.wait(0, Some(Duration::from_secs(3600))), None);
    }

    #[test]
    fn back_off_doubles_with_jitter_and_stops_at_the_cap() {
        fastrand::seed(7);
        let policy = policy();
        for (retry, ceiling_ms) in [
            (0, 500),
            (1, 1000),
            (2, 2000),
            (3, 4000),
            (4, 8000),
            (40, 8000),
        ] {
            let ceiling = Duration::from_millis(ceiling_ms);
            let waits: Vec<Duration> = (0..200)
                .map(|_| policy.wait(retry, None).expect("back-off always waits"))
                .collect();
            assert!(
                waits.iter().all(|wait| *wait <= ceiling),
                "retry {retry}: {waits:?}"
            );
            let longest = waits.iter().max().unwrap();
            let shortest = waits.iter().min().unwrap();
            assert!(
                *longest > ceiling * 3 / 4,
                "retry {retry}: jitter spans the range"
            );
            assert!(
                *shortest < ceiling / 4,
                "retry {retry}: jitter spans the range"
            );
        }
    }

    #[test]
    fn the_cf_mitigated_header_marks_a_challenge_whatever_the_body() {
        let mut headers = HeaderMap::new();
        assert!(!is_challenge(&headers));
        headers.insert("cf-mitigated", HeaderValue::from_static("Challenge"));
        assert!(is_challenge(&headers));
        headers.insert("cf-mitigated", HeaderValue::from_static("other"));
        assert!(!is_challenge(&headers));
    }
}
