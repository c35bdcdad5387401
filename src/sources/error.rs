//! What can go wrong talking to an upstream, as a typed error that knows whether trying again
//! could help and whose message is safe to show a client (never a URL, credential or body).

use std::time::Duration;

/// A failed upstream request or an answer that could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be opened (refused, DNS, connect timeout).
    #[error("could not connect to the site: {0}")]
    Connect(String),
    /// The connection broke before the answer was complete.
    #[error("the connection broke before the answer was complete: {0}")]
    Transport(String),
    /// HTTP 429.
    #[error("the site is rate limiting requests (HTTP 429)")]
    RateLimited { retry_after: Option<Duration> },
    /// HTTP 5xx other than a challenge page.
    #[error("the site is failing or unavailable (HTTP {status})")]
    Unavailable {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// An HTML page (a Cloudflare-style challenge or block) where JSON was expected.
    #[error("the site answered with a browser challenge page (HTTP {status}) instead of data")]
    Challenge { status: u16 },
    /// The site wants credentials it was not given or refused the ones it got.
    #[error("{0}")]
    Auth(String),
    /// The site refused the request as asked (a 4xx other than 429), with its reason.
    #[error("the site refused the request (HTTP {status}): {reason}")]
    Rejected { status: u16, reason: String },
    /// The body was not what the family's API returns.
    #[error("the site sent a body that is not the expected {expected}: {detail}")]
    Malformed {
        expected: &'static str,
        detail: String,
    },
    /// The source failed repeatedly and is paused; no request was sent.
    #[error(
        "the source is paused after {failures} failures in a row; it will be tried again in {retry_in_secs} s"
    )]
    CircuitOpen { failures: u32, retry_in_secs: u64 },
    /// The search's deadline passed before the site answered.
    #[error("the site did not answer before the search deadline")]
    DeadlineExceeded,
    /// The body was larger than `upstream.max_body_bytes`.
    #[error("the site sent more than {limit_bytes} bytes")]
    TooLarge { limit_bytes: usize },
}

impl UpstreamError {
    /// Whether sending the same request again could succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            UpstreamError::Connect(_)
            | UpstreamError::Transport(_)
            | UpstreamError::RateLimited { .. }
            | UpstreamError::Unavailable { .. } => true,
            // An overloaded Gelbooru-family server answers 200 with a broken body.
            UpstreamError::Malformed { .. } => true,
            // A challenge page means the site is blocking us: asking again at once makes it
            // worse, so the circuit breaker backs off instead.
            UpstreamError::Challenge { .. }
            | UpstreamError::CircuitOpen { .. }
            | UpstreamError::DeadlineExceeded
            | UpstreamError::Auth(_)
            | UpstreamError::Rejected { .. }
            | UpstreamError::TooLarge { .. } => false,
        }
    }

    /// How long the upstream asked us to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            UpstreamError::RateLimited { retry_after }
            | UpstreamError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the failure says something about the upstream's health (and so counts
    /// toward pausing the source), rather than about the request.
    pub fn is_upstream_failure(&self) -> bool {
        self.is_retryable()
            || matches!(
                self,
                UpstreamError::Challenge { .. } | UpstreamError::TooLarge { .. }
            )
    }

    /// A short stable name for the kind of failure, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Connect(_) => "connect",
            UpstreamError::Transport(_) => "transport",
            UpstreamError::RateLimited { .. } => "rate_limited",
            UpstreamError::Unavailable { .. } => "unavailable",
            UpstreamError::Challenge { .. } => "challenge",
            UpstreamError::Auth(_) => "auth",
            UpstreamError::Rejected { .. } => "rejected",
            UpstreamError::Malformed { .. } => "malformed",
            UpstreamError::TooLarge { .. } => "too_large",
            UpstreamError::CircuitOpen { .. } => "circuit_open",
            UpstreamError::DeadlineExceeded => "deadline_exceeded",
        }
    }

    /// A body that could not be parsed as `expected`.
    pub fn malformed(expected: &'static str, detail: impl std::fmt::Display) -> UpstreamError {
        UpstreamError::Malformed {
            expected,
            detail: truncate(&detail.to_string(), 160),
        }
    }

    /// The errors every family reports the same way: challenge pages and server failures.
    ///
    /// Returns `None` for answers only the family can read (its own error bodies).
    pub fn from_common(status: u16, body: &[u8]) -> Option<UpstreamError> {
        if looks_like_html(body)
            && (status == 403 || status == 503 || status == 429 || status >= 500)
        {
            return Some(UpstreamError::Challenge { status });
        }
        match status {
            429 => Some(UpstreamError::RateLimited { retry_after: None }),
            500..=599 => Some(UpstreamError::Unavailable {
                status,
                retry_after: None,
            }),
            _ => None,
        }
    }

    /// The same error with `edit` applied to each of its texts that may quote an upstream
    /// (a reason, a parse detail, a transport message).
    pub fn map_texts(self, edit: impl Fn(String) -> String) -> UpstreamError {
        match self {
            UpstreamError::Connect(text) => UpstreamError::Connect(edit(text)),
            UpstreamError::Transport(text) => UpstreamError::Transport(edit(text)),
            UpstreamError::Auth(text) => UpstreamError::Auth(edit(text)),
            UpstreamError::Rejected { status, reason } => UpstreamError::Rejected {
                status,
                reason: edit(reason),
            },
            UpstreamError::Malformed { expected, detail } => UpstreamError::Malformed {
                expected,
                detail: edit(detail),
            },
            other => other,
        }
    }

    /// The same error with the wait the upstream asked for, where the kind carries one.
    pub fn with_retry_after(self, wait: Option<Duration>) -> UpstreamError {
        match self {
            UpstreamError::RateLimited { .. } => UpstreamError::RateLimited { retry_after: wait },
            UpstreamError::Unavailable { status, .. } => UpstreamError::Unavailable {
                status,
                retry_after: wait,
            },
            other => other,
        }
    }
}

/// Whether a body is an HTML page rather than API data.
pub fn looks_like_html(body: &[u8]) -> bool {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let head: Vec<u8> = body[start..]
        .iter()
        .take(15)
        .map(u8::to_ascii_lowercase)
        .collect();
    head.starts_with(b"<!doctype html") || head.starts_with(b"<html")
}

/// At most `max` characters of `text`, cut on a character boundary.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}
