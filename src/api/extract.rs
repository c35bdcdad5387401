//! Request extractors that fail with [`ApiError`] instead of axum's plain-text rejections.
//!
//! [`QueryPairs`] decodes the query string strictly: axum's `Query` would replace invalid
//! UTF-8 with U+FFFD and search for a mangled name, where a client deserves to hear that its
//! encoding is wrong. [`JsonObject`] checks the content type, the size limit, UTF-8 and JSON
//! syntax in that order, and says which one failed.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::app::AppState;

/// The query string as name/value pairs, percent-decoded, `+` read as a space, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or("")).map(QueryPairs)
    }
}

/// Splits and decodes a raw query string; an empty segment (`a=1&&b=2`) is skipped.
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    query
        .split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
            let name = decode_component(name).map_err(|_| {
                ApiError::InvalidQuery("a query parameter name is not valid UTF-8".into())
            })?;
            let value = decode_component(value).map_err(|_| {
                ApiError::InvalidQuery(format!("query parameter {name} is not valid UTF-8"))
            })?;
            Ok((name, value))
        })
        .collect()
}

/// Percent-decodes one form component. A `%` not followed by two hex digits stays as it is,
/// as browsers do; only the decoded bytes must be UTF-8.
fn decode_component(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = match bytes[index] {
            b'+' => b' ',
            b'%' => match (
                hex_digit(bytes.get(index + 1)),
                hex_digit(bytes.get(index + 2)),
            ) {
                (Some(high), Some(low)) => {
                    index += 2;
                    high << 4 | low
                }
                _ => b'%',
            },
            other => other,
        };
        decoded.push(byte);
        index += 1;
    }
    String::from_utf8(decoded)
}

fn hex_digit(byte: Option<&u8>) -> Option<u8> {
    char::from(*byte?).to_digit(16).map(|digit| digit as u8)
}

/// A request body holding one JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        require_json_content_type(request.headers())?;
        let limit_bytes = state.config.server.body_limit_bytes;
        let body =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit_bytes },
                    _ => ApiError::InvalidBody(format!(
                        "request body could not be read: {}",
                        rejection.body_text()
                    )),
                })?;
        parse_object(&body).map(JsonObject)
    }
}

/// Accepts `application/json` and any `application/<something>+json`, with parameters.
fn require_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let wanted = "expected Content-Type: application/json";
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType(format!(
            "{wanted}, but the request has no Content-Type"
        )));
    };
    let text = value.to_str().unwrap_or("").trim();
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if is_json {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType(format!(
        "{wanted}, got {text:?}"
    )))
}

/// Parses a body that must be one JSON object.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidBody(
            "request body is empty; expected a JSON object".into(),
        ));
    }
    let text = std::str::from_utf8(body).map_err(|err| {
        ApiError::InvalidBody(format!(
            "request body is not valid UTF-8 (at byte {})",
            err.valid_up_to()
        ))
    })?;
    let value: Value = serde_json::from_str(text)
        .map_err(|err| ApiError::InvalidBody(format!("request body is not valid JSON: {err}")))?;
    match value {
        Value::Object(object) => Ok(object),
        other => Err(ApiError::UnprocessableBody(format!(
            "request body must be a JSON object, got {}",
            json_kind(&other)
        ))),
    }
}

/// The JSON type of `value`, with its article, for messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        parse_query(query).unwrap()
    }

    fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn query_decodes_percent_escapes_and_plus() {
        assert_eq!(
            pairs("character=Anya+Forger&series=Spy%20x%20Family&x=%E3%82%A2"),
            owned(&[
                ("character", "Anya Forger"),
                ("series", "Spy x Family"),
                ("x", "ア")
            ])
        );
    }

    #[test]
    fn query_keeps_order_repetition_and_empty_values() {
        assert_eq!(
            pairs("sources=a&&sources=b&fresh"),
            owned(&[("sources", "a"), ("sources", "b"), ("fresh", "")])
        );
        assert_eq!(pairs(""), Vec::new());
    }

    #[test]
    fn query_keeps_a_stray_percent_sign() {
        assert_eq!(pairs("q=100%&r=%2"), owned(&[("q", "100%"), ("r", "%2")]));
    }

    #[test]
    fn query_rejects_invalid_utf8_naming_the_parameter() {
        let error = parse_query("character=%FF%FE").unwrap_err();

        assert!(matches!(error, ApiError::InvalidQuery(_)));
        assert_eq!(
            error.to_string(),
            "query parameter character is not valid UTF-8"
        );
        assert!(parse_query("%C3=1").is_err());
    }

    #[test]
    fn content_type_must_be_json() {
        let mut headers = HeaderMap::new();
        assert!(require_json_content_type(&headers).is_err());

        for accepted in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/merge-patch+json",
        ] {
            headers.insert(CONTENT_TYPE, accepted.parse().unwrap());
            assert!(require_json_content_type(&headers).is_ok(), "{accepted}");
        }

        headers.insert(CONTENT_TYPE, "text/plain".parse().unwrap());
        let error = require_json_content_type(&headers).unwrap_err();
        assert!(matches!(error, ApiError::UnsupportedMediaType(_)));
        assert!(error.to_string().contains("text/plain"), "{error}");
    }

    #[test]
    fn body_must_be_one_utf8_json_object() {
        assert!(parse_object(br#"{"character": "Anya"}"#).is_ok());

        let empty = parse_object(b"  ").unwrap_err();
        assert!(empty.to_string().contains("empty"), "{empty}");

        let not_utf8 = parse_object(b"{\"character\": \"\xff\"}").unwrap_err();
        assert!(matches!(not_utf8, ApiError::InvalidBody(_)));
        assert!(not_utf8.to_string().contains("UTF-8"), "{not_utf8}");

        let syntax = parse_object(b"{\"character\": ").unwrap_err();
        assert!(matches!(syntax, ApiError::InvalidBody(_)));
        assert!(syntax.to_string().contains("not valid JSON"), "{syntax}");

        let array = parse_object(b"[1, 2]").unwrap_err();
        assert!(matches!(array, ApiError::UnprocessableBody(_)));
        assert!(array.to_string().contains("an array"), "{array}");
    }
}
