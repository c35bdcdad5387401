//! Injected failures: what a [`Fault`] puts on the wire, and which requests a
//! [`FaultRule`] applies to.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use bytes::Bytes;
use futures::{StreamExt, stream};
use serde::{Deserialize, Serialize};

use crate::families::{HTML, JSON};
use crate::world::SimFamily;

/// A way for an upstream to fail.
///
/// In JSON (the control API), unit variants are strings (`"hang"`) and the others
/// one-key objects (`{"status":500}`, `{"too_many_requests":{"retry_after":"2"}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// That HTTP status with the family's error body: Danbooru's and Moebooru's JSON
    /// error objects, plain text for the Gelbooru flavours.
    Status(u16),
    /// That HTTP status with an HTML error page, as a proxy in front of the site (nginx,
    /// a CDN) sends it when the site behind it is down: no challenge markers.
    HtmlStatus(u16),
    /// HTTP 429, with `Retry-After` set to the value given (seconds or an HTTP date).
    TooManyRequests {
        /// The `Retry-After` header value, if any.
        retry_after: Option<String>,
    },
    /// HTTP 503, with `Retry-After` set to the value given.
    Unavailable {
        /// The `Retry-After` header value, if any.
        retry_after: Option<String>,
    },
    /// Never answers: the request stays open (and in flight) until the client closes the
    /// connection or the simulator shuts down. Latency does not apply.
    Hang,
    /// Closes the TCP connection with a reset (SO_LINGER 0) before any response byte.
    Reset,
    /// HTTP 200 with a JSON body that stops in the middle of a post.
    Malformed,
    /// HTTP 200 whose `Content-Length` promises more than is sent, then the connection
    /// closes.
    Truncated,
    /// HTTP 403 `text/html` Cloudflare challenge page ("Just a moment...") with
    /// `cf-mitigated: challenge`.
    Challenge,
    /// HTTP 200 with an empty body.
    Empty,
    /// HTTP 200 with a body of exactly that many bytes: a JSON empty array padded with
    /// spaces, streamed with a `Content-Length`.
    Oversized(usize),
}

/// When a fault applies: to the next `times` requests of a source (all, if `None`) that
/// pass both filters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// What happens to a matching request.
    pub fault: Fault,
    /// How many matching requests it applies to; `None` until cleared.
    #[serde(default)]
    pub times: Option<u32>,
    /// Applies only when the request target after the source prefix, query string
    /// included as received, contains this text (e.g. `/posts.json` or `s=post`).
    #[serde(default)]
    pub path_contains: Option<String>,
    /// Applies only when this decoded query parameter has this value, e.g. `("pid", "1")`.
    #[serde(default)]
    pub param: Option<(String, String)>,
}

impl FaultRule {
    /// A rule applying `fault` to every request until cleared.
    pub fn always(fault: Fault) -> FaultRule {
        FaultRule {
            fault,
            times: None,
            path_contains: None,
            param: None,
        }
    }

    /// A rule applying `fault` to the next `n` requests.
    pub fn times(fault: Fault, n: u32) -> FaultRule {
        FaultRule {
            times: Some(n),
            ..FaultRule::always(fault)
        }
    }

    /// Restricts the rule to request targets containing `text`.
    pub fn on_path(mut self, text: &str) -> FaultRule {
        self.path_contains = Some(text.to_owned());
        self
    }

    /// Restricts the rule to requests whose query parameter `name` equals `value`.
    pub fn on_param(mut self, name: &str, value: &str) -> FaultRule {
        self.param = Some((name.to_owned(), value.to_owned()));
        self
    }

    /// Whether the rule's filters accept a request.
    pub(crate) fn matches(&self, target: &str, params: &[(String, String)]) -> bool {
        let path_ok = self
            .path_contains
            .as_deref()
            .is_none_or(|text| target.contains(text));
        let param_ok = self
            .param
            .as_ref()
            .is_none_or(|(name, value)| params.iter().any(|(k, v)| k == name && v == value));
        path_ok && param_ok
    }
}

/// What the server does for a faulted request.
#[derive(Debug)]
pub(crate) enum Action {
    Respond(Response<Body>),
    Hang,
    Reset,
}

/// The action a fault takes for a source of `family`.
pub(crate) fn action(fault: &Fault, family: Option<SimFamily>) -> Action {
    match fault {
        Fault::Hang => Action::Hang,
        Fault::Reset => Action::Reset,
        Fault::Status(code) => Action::Respond(status(*code, family)),
        Fault::HtmlStatus(code) => Action::Respond(html_status(*code)),
        Fault::TooManyRequests { retry_after } => {
            Action::Respond(retry(429, family, retry_after.as_deref()))
        }
        Fault::Unavailable { retry_after } => {
            Action::Respond(retry(503, family, retry_after.as_deref()))
        }
        Fault::Malformed => Action::Respond(plain(200, JSON, MALFORMED)),
        Fault::Truncated => Action::Respond(truncated()),
        Fault::Challenge => Action::Respond(challenge()),
        Fault::Empty => Action::Respond(plain(200, JSON, "")),
        Fault::Oversized(size) => Action::Respond(oversized(*size)),
    }
}

/// Valid JSON up to the middle of a post's `tags` string.
const MALFORMED: &str = r#"[{"id":1,"md5":"0123456789abcdef0123456789abcdef","tags":"anya_(spy_x"#;

/// A full page body, of which [`truncated`] sends only the first part.
const TRUNCATED_FULL: &str = concat!(
    r#"[{"id":2,"md5":"fedcba9876543210fedcba9876543210","tags":"spy_x_family","rating":"g"},"#,
    r#"{"id":1,"md5":"0123456789abcdef0123456789abcdef","tags":"spy_x_family","rating":"g"}]"#
);

fn plain(code: u16, content_type: &'static str, body: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_owned()));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The status with the message the family's servers give for it.
fn status(code: u16, family: Option<SimFamily>) -> Response<Body> {
    let message = match code {
        429 => "You're doing that too fast. Wait a minute and try again.",
        500 => "The database timed out running your query.",
        502 => "Bad Gateway",
        503 => "The database is unavailable. Try again later.",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    match family {
        Some(SimFamily::Danbooru) => {
            let body =
                serde_json::json!({ "success": false, "error": "Error", "message": message });
            plain(code, JSON, &body.to_string())
        }
        Some(SimFamily::Moebooru) => {
            let body = serde_json::json!({ "success": false, "reason": message });
            plain(code, JSON, &body.to_string())
        }
        _ => plain(code, "text/plain; charset=utf-8", message),
    }
}

/// The status with an nginx-style HTML error page.
fn html_status(code: u16) -> Response<Body> {
    let reason = StatusCode::from_u16(code)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("Error");
    let body = format!(
        "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n\
         <center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n\
         </body>\r\n</html>\r\n"
    );
    plain(code, HTML, &body)
}

fn retry(code: u16, family: Option<SimFamily>, retry_after: Option<&str>) -> Response<Body> {
    let mut response = status(code, family);
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn challenge() -> Response<Body> {
    let mut response = plain(403, HTML, CHALLENGE_PAGE);
    let headers = response.headers_mut();
    headers.insert("cf-mitigated", HeaderValue::from_static("challenge"));
    headers.insert(header::SERVER, HeaderValue::from_static("cloudflare"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0, no-store"),
    );
    response
}

const CHALLENGE_PAGE: &str = concat!(
    "<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title>",
    "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\">",
    "<meta name=\"robots\" content=\"noindex,nofollow\"></head><body>",
    "<div class=\"main-wrapper\" role=\"main\"><div class=\"main-content\">",
    "<noscript>Enable JavaScript and cookies to continue</noscript></div></div>",
    "</body></html>"
);

/// Sends half of a page with the full page's length announced, waits so the part is
/// flushed, then fails the body, which makes the server drop the connection.
fn truncated() -> Response<Body> {
    let sent = Bytes::from_static(&TRUNCATED_FULL.as_bytes()[..TRUNCATED_FULL.len() / 2]);
    let parts = stream::iter([Ok::<_, std::io::Error>(sent)]).chain(stream::once(async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "truncated on purpose",
        ))
    }));
    let mut response = Response::new(Body::from_stream(parts));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(TRUNCATED_FULL.len()),
    );
    response
}

/// Streams `size` bytes in 64 KiB chunks so large sizes cost no memory.
fn oversized(size: usize) -> Response<Body> {
    const CHUNK: usize = 64 * 1024;
    let spaces = Bytes::from(vec![b' '; CHUNK]);
    let chunks = stream::unfold(0usize, move |sent| {
        let spaces = spaces.clone();
        async move {
            (sent < size).then(|| {
                let n = CHUNK.min(size - sent);
                let mut chunk = spaces.slice(..n).to_vec();
                if sent == 0 {
                    chunk[0] = b'[';
                }
                if sent + n == size && size > 1 {
                    chunk[n - 1] = b']';
                }
                (Ok::<_, Infallible>(Bytes::from(chunk)), sent + n)
            })
        }
    });
    let mut response = Response::new(Body::from_stream(chunks));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_filter_by_target_and_param() {
        let rule = FaultRule::always(Fault::Hang)
            .on_path("s=post")
            .on_param("pid", "1");
        let params = vec![("pid".to_owned(), "1".to_owned())];
        assert!(rule.matches("/index.php?page=dapi&s=post&pid=1", &params));
        assert!(!rule.matches("/index.php?page=dapi&s=tag&pid=1", &params));
        assert!(!rule.matches("/index.php?s=post", &[]));
    }

    #[test]
    fn faults_read_from_json() {
        let rule: FaultRule = serde_json::from_str(
            r#"{"fault":{"too_many_requests":{"retry_after":"2"}},"times":1}"#,
        )
        .unwrap();
        assert_eq!(
            rule,
            FaultRule::times(
                Fault::TooManyRequests {
                    retry_after: Some("2".into())
                },
                1
            )
        );
        let hang: Fault = serde_json::from_str(r#""hang""#).unwrap();
        assert_eq!(hang, Fault::Hang);
    }
}
