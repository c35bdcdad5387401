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
    /// HTTP 5xx other than a challenge page; `html_page` when the body was an HTML error
    /// page (a proxy's `502 Bad Gateway`, say) rather than the family's own error body,
    /// `reason` the message of that error body when it had one (Danbooru's "The database
    /// timed out running your query.").
    #[error("{}", unavailable_sentence(*.status, *.html_page, reason.as_deref()))]
    Unavailable {
        status: u16,
        html_page: bool,
        retry_after: Option<Duration>,
        reason: Option<String>,
    },
    /// A Cloudflare-style challenge or block page where data was expected: any HTML 403, a
    /// 503 marked as a challenge, or an HTML page sent with 200.
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
    /// A page the known total says holds posts came back without any: an overloaded
    /// Gelbooru 0.2 server answers an empty body, which is otherwise its "no results".
    #[error("the site answered an empty page where {expected} posts were expected")]
    EmptyPage { expected: u64 },
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
            // An overloaded Gelbooru-family server answers 200 with a broken or empty body.
            UpstreamError::Malformed { .. } | UpstreamError::EmptyPage { .. } => true,
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
            UpstreamError::EmptyPage { .. } => "empty_page",
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

    /// The errors every family reports the same way: challenge pages, rate limits and server
    /// failures.
    ///
    /// Only an HTML 403, or an HTML 503 that reads like a challenge (see
    /// [`looks_like_challenge`]), is a challenge: an HTML 502 or 500 is a proxy's or server's
    /// error page, worth retrying, and an HTML 429 still asks us to slow down. Returns `None`
    /// for answers only the family can read (its own error bodies). A `cf-mitigated:
    /// challenge` header, which a body cannot show, is checked by the driver.
    pub fn from_common(status: u16, body: &[u8]) -> Option<UpstreamError> {
        let html = looks_like_html(body);
        match status {
            403 if html => Some(UpstreamError::Challenge { status }),
            503 if html && looks_like_challenge(body) => Some(UpstreamError::Challenge { status }),
            429 => Some(UpstreamError::RateLimited { retry_after: None }),
            500..=599 => Some(UpstreamError::Unavailable {
                status,
                html_page: html,
                retry_after: None,
                reason: None,
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
            UpstreamError::Unavailable {
                status,
                html_page,
                retry_after,
                reason,
            } => UpstreamError::Unavailable {
                status,
                html_page,
                retry_after,
                reason: reason.map(edit),
            },
            other => other,
        }
    }

    /// The same error with the wait the upstream asked for, where the kind carries one.
    pub fn with_retry_after(mut self, wait: Option<Duration>) -> UpstreamError {
        if let UpstreamError::RateLimited { retry_after }
        | UpstreamError::Unavailable { retry_after, .. } = &mut self
        {
            *retry_after = wait;
        }
        self
    }

    /// The same error with the reason the site's own error body gave, where the kind is a
    /// server failure that carries one.
    pub fn with_reason(mut self, given: Option<String>) -> UpstreamError {
        if let (UpstreamError::Unavailable { reason, .. }, Some(given)) = (&mut self, given) {
            *reason = Some(given);
        }
        self
    }
}

/// The sentence of [`UpstreamError::Unavailable`].
fn unavailable_sentence(status: u16, html_page: bool, reason: Option<&str>) -> String {
    match (html_page, reason) {
        (true, _) => format!(
            "the site answered an HTML error page with status {status} instead of data; it is failing or unavailable"
        ),
        (false, Some(reason)) => {
            format!("the site is failing or unavailable (HTTP {status}): {reason}")
        }
        (false, None) => format!("the site is failing or unavailable (HTTP {status})"),
    }
}

/// Words only a bot challenge page carries: Cloudflare's interstitial title, its challenge
/// script paths and option names, and the older "checking your browser" text.
const CHALLENGE_MARKERS: [&[u8]; 5] = [
    b"just a moment",
    b"challenge-platform",
    b"cf-chl",
    b"cf_chl",
    b"checking your browser",
];

/// Whether an HTML body is a bot challenge rather than a plain error page.
pub fn looks_like_challenge(body: &[u8]) -> bool {
    CHALLENGE_MARKERS.iter().any(|marker| {
        (body.windows(marker.len())).any(|window| window.eq_ignore_ascii_case(marker))
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    const NGINX_502: &[u8] = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
    const CLOUDFLARE: &[u8] = b"<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title></head><body><script src=\"/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1\"></script></body></html>";

    #[test]
    fn an_html_error_page_from_a_proxy_is_unavailable_and_retryable() {
        for status in [500, 502, 503, 504] {
            let error = UpstreamError::from_common(status, NGINX_502).expect("a common error");
            assert_eq!(
                error,
                UpstreamError::Unavailable {
                    status,
                    html_page: true,
                    retry_after: None,
                    reason: None,
                }
            );
            assert!(error.is_retryable());
            let expected = format!("the site answered an HTML error page with status {status}");
            assert!(error.to_string().starts_with(&expected), "{error}");
        }
    }

    #[test]
    fn a_403_page_or_a_503_that_reads_like_a_challenge_is_a_challenge() {
        assert_eq!(
            UpstreamError::from_common(403, NGINX_502),
            Some(UpstreamError::Challenge { status: 403 })
        );
        assert_eq!(
            UpstreamError::from_common(503, CLOUDFLARE),
            Some(UpstreamError::Challenge { status: 503 })
        );
        assert!(!UpstreamError::Challenge { status: 503 }.is_retryable());
        let old_style = b"<html><body>Checking your browser before accessing</body></html>";
        assert!(looks_like_challenge(old_style));
        assert!(!looks_like_challenge(NGINX_502));
        assert_eq!(
            UpstreamError::from_common(502, CLOUDFLARE).map(|e| e.kind()),
            Some("unavailable"),
            "only a 503 is read for challenge markers"
        );
    }

    #[test]
    fn an_html_429_still_asks_to_slow_down() {
        let error = UpstreamError::from_common(429, NGINX_502).expect("a common error");
        let wait = Some(Duration::from_secs(7));
        let error = error.with_retry_after(wait);
        assert_eq!(error, UpstreamError::RateLimited { retry_after: wait });
        assert_eq!(error.retry_after(), wait);
    }

    #[test]
    fn plain_server_errors_say_the_status_and_family_bodies_are_left_alone() {
        let error = UpstreamError::from_common(500, b"oops").expect("a 5xx");
        assert_eq!(
            error.to_string(),
            "the site is failing or unavailable (HTTP 500)"
        );
        assert_eq!(UpstreamError::from_common(404, NGINX_502), None);
        assert_eq!(UpstreamError::from_common(422, b"{}"), None);
    }
}
