//! The upstream driver: the one place every request to an upstream passes through.
//!
//! It owns the shared HTTP client and, per source, a semaphore (requests in flight) and a
//! governor limiter (requests started per second). A request first takes a permit, then
//! waits for the limiter, then goes out; nothing reaches an upstream any other way. The body
//! is read up to `upstream.max_body_bytes`, and every failure becomes an [`UpstreamError`].

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, RETRY_AFTER, USER_AGENT};
use tokio::sync::Semaphore;
use tracing::{Instrument, debug, debug_span};
use url::Url;

use super::{Site, UpstreamError};
use crate::config::{Config, SourceConfig};

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

/// The per-source gate: permits, pace and counters.
#[derive(Debug)]
struct Gate {
    site: Site,
    user_agent: reqwest::header::HeaderValue,
    semaphore: Semaphore,
    concurrency: u32,
    limiter: DefaultDirectRateLimiter,
    requests: AtomicU64,
    errors: AtomicU64,
}

/// Live counters of one source, for `/v1/sources`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct GateStats {
    /// Requests holding a permit now (waiting for the limiter or on the wire).
    pub in_flight: u32,
    /// Permits free now.
    pub permits_free: u32,
    /// Requests sent since start.
    pub requests: u64,
    /// Requests that failed since start.
    pub errors: u64,
}

/// Sends requests to upstreams under each source's limits.
#[derive(Debug)]
pub struct Driver {
    client: reqwest::Client,
    gates: HashMap<String, Gate>,
    max_body_bytes: usize,
}

impl Driver {
    /// Builds the client and one gate per configured source.
    pub fn new(config: &Config) -> Result<Driver, reqwest::Error> {
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

    /// Sends a GET to `url` on behalf of source `id` and returns the body of a 2xx answer.
    ///
    /// Waits for a permit of the source's semaphore, then for its limiter, and only then
    /// sends. Non-2xx answers become the error the family's error body means.
    pub async fn get(&self, id: &str, url: Url, kind: RequestKind) -> Result<Bytes, UpstreamError> {
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
            elapsed_ms = tracing::field::Empty
        );
        async move {
            let _permit = gate
                .semaphore
                .acquire()
                .await
                .expect("the semaphore is never closed");
            gate.limiter.until_ready().await;
            gate.requests.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let result = self.send(gate, url).await;
            let span = tracing::Span::current();
            span.record("elapsed_ms", started.elapsed().as_millis() as u64);
            if let Err(error) = &result {
                gate.errors.fetch_add(1, Ordering::Relaxed);
                debug!(error = %error, "upstream request failed");
            }
            result
        }
        .instrument(span)
        .await
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
        let body = self.read_body(response).await?;
        if (200..300).contains(&status) {
            return Ok(body);
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
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    fn stats(&self) -> GateStats {
        let permits_free = self.semaphore.available_permits() as u32;
        GateStats {
            in_flight: self.concurrency.saturating_sub(permits_free),
            permits_free,
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
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
