//! The one error type of the HTTP edge and the one mapping of errors to responses.
//!
//! Every failure a client can see, whether a validation rule, a rejected body, an unknown
//! route or a panic, becomes an [`ApiError`] and leaves as
//! `{"error": {"code": "...", "message": "..."}}` with a 4xx or 5xx status.

use axum::Json;
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::{debug, error};

use crate::search::SearchError;

/// A request the service answers with an error.
///
/// The `Display` text is the `message` the client sees, so it names the field or part of
/// the request at fault and never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A search or tag parameter broke a rule (400 `invalid_query`), whether it came from the
    /// query string or the JSON body.
    #[error("{0}")]
    InvalidQuery(String),
    /// The body is not JSON, or not UTF-8 (400 `invalid_body`).
    #[error("{0}")]
    InvalidBody(String),
    /// The body is JSON but not the object the route takes (422 `invalid_body`).
    #[error("{0}")]
    UnprocessableBody(String),
    /// The body is larger than `server.body_limit_bytes` (413 `payload_too_large`).
    #[error("request body is larger than the limit of {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    /// The body is not declared as JSON (415 `unsupported_media_type`).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// No route has this path (404 `not_found`).
    #[error("no route for {path}")]
    NotFound { path: String },
    /// The route exists but not for this method (405 `method_not_allowed`).
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    /// The service failed; the detail goes to the log, not to the client (500 `internal`).
    #[error("internal error")]
    Internal { detail: String },
    /// The service cannot answer now; the message says why (503 `unavailable`).
    #[error("{0}")]
    Unavailable(String),
    /// API keys are configured and the request has none, or a wrong one (401
    /// `unauthorized`, with `WWW-Authenticate: Bearer`). The message never repeats a key.
    #[error("{}", unauthorized_message(*.key_given))]
    Unauthorized { key_given: bool },
    /// The client used up its share of `server.client_rate_per_sec` (429 `rate_limited`,
    /// with `Retry-After`).
    #[error("too many requests from this client; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidQuery(_) | ApiError::InvalidBody(_) => StatusCode::BAD_REQUEST,
            ApiError::UnprocessableBody(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The stable, machine-readable `code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidQuery(_) => "invalid_query",
            ApiError::InvalidBody(_) | ApiError::UnprocessableBody(_) => "invalid_body",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::NotFound { .. } => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Internal { .. } => "internal",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::RateLimited { .. } => "rate_limited",
        }
    }

    /// The header that tells the client how to recover, where HTTP defines one.
    fn recovery_header(&self) -> Option<(HeaderName, HeaderValue)> {
        match self {
            ApiError::Unauthorized { key_given } => {
                let challenge = if *key_given {
                    r#"Bearer realm="anya-image-api", error="invalid_token""#
                } else {
                    r#"Bearer realm="anya-image-api""#
                };
                Some((WWW_AUTHENTICATE, HeaderValue::from_static(challenge)))
            }
            ApiError::RateLimited { retry_after_secs } => {
                Some((RETRY_AFTER, HeaderValue::from(*retry_after_secs)))
            }
            _ => None,
        }
    }
}

fn unauthorized_message(key_given: bool) -> &'static str {
    if key_given {
        "the API key is not valid"
    } else {
        "an API key is required: send it as Authorization: Bearer <key>"
    }
}

impl From<SearchError> for ApiError {
    fn from(error: SearchError) -> ApiError {
        match error {
            SearchError::Internal => ApiError::Internal {
                detail: error.to_string(),
            },
        }
    }
}

/// The one error shape every failure leaves as.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

/// What went wrong: a stable code for programs and a sentence for people.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorFields<'a> {
    /// `invalid_query`, `invalid_body`, `payload_too_large`, `unsupported_media_type`,
    /// `not_found`, `method_not_allowed`, `unauthorized`, `rate_limited`, `internal` or
    /// `unavailable`.
    #[schema(example = "invalid_query")]
    code: &'a str,
    /// Names the field or part of the request at fault; never a secret.
    #[schema(example = "character must be 1 to 100 characters after trimming, got 0")]
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();

        // Client mistakes are the client's business; only the service's own failures are
        // worth an operator's attention.
        match &self {
            ApiError::Internal { detail } => error!(code, detail = %detail, "request failed"),
            other if status.is_server_error() => error!(code, error = %other, "request failed"),
            other => debug!(code, error = %other, "request rejected"),
        }

        let body = ErrorBody {
            error: ErrorFields {
                code,
                message: self.to_string(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some((name, value)) = self.recovery_header() {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(error: ApiError) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn renders_the_one_error_shape() {
        let (status, body) = body_of(ApiError::InvalidQuery("character is required".into())).await;

        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "invalid_query", "message": "character is required"}})
        );
    }

    #[tokio::test]
    async fn internal_errors_hide_their_detail() {
        let error = ApiError::Internal {
            detail: "connection pool poisoned at 0xdeadbeef".into(),
        };

        let (status, body) = body_of(error).await;

        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal");
        assert_eq!(body["error"]["message"], "internal error");
    }

    #[tokio::test]
    async fn refusals_say_how_to_recover_in_a_header() {
        let missing = ApiError::Unauthorized { key_given: false }.into_response();
        let wrong = ApiError::Unauthorized { key_given: true }.into_response();
        let limited = ApiError::RateLimited {
            retry_after_secs: 7,
        }
        .into_response();

        assert_eq!(
            missing.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="anya-image-api""#
        );
        assert!(
            wrong.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains(r#"error="invalid_token""#)
        );
        assert_eq!(limited.headers()[RETRY_AFTER], "7");
    }

    #[test]
    fn every_variant_has_its_status_and_code() {
        let cases = [
            (ApiError::InvalidBody(String::new()), 400, "invalid_body"),
            (
                ApiError::UnprocessableBody(String::new()),
                422,
                "invalid_body",
            ),
            (
                ApiError::PayloadTooLarge { limit_bytes: 1 },
                413,
                "payload_too_large",
            ),
            (
                ApiError::UnsupportedMediaType(String::new()),
                415,
                "unsupported_media_type",
            ),
            (ApiError::NotFound { path: "/x".into() }, 404, "not_found"),
            (
                ApiError::MethodNotAllowed {
                    method: "PUT".into(),
                    path: "/".into(),
                },
                405,
                "method_not_allowed",
            ),
            (ApiError::Unavailable(String::new()), 503, "unavailable"),
            (
                ApiError::Unauthorized { key_given: false },
                401,
                "unauthorized",
            ),
            (
                ApiError::RateLimited {
                    retry_after_secs: 1,
                },
                429,
                "rate_limited",
            ),
        ];

        for (error, status, code) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.code(), code, "{error:?}");
        }
    }
}
