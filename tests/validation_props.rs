//! Request validation under arbitrary input: whatever query string or body a client sends,
//! decoding and validation never panic, and they end either in a query that keeps every
//! rule of the HTTP contract or in an error with a 4xx status.
//!
//! The inputs mix random bytes with pieces of real requests (parameter names, percent
//! escapes, JSON tokens), so that many cases get past the first check and exercise the
//! rules behind it.

mod common;

use anya_image_api::api::ApiError;
use anya_image_api::api::extract::{parse_object, parse_query};
use anya_image_api::api::params::{RawParams, Rules};
use anya_image_api::model::SourceId;
use anya_image_api::search::SearchQuery;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Parameter names, values and escapes a query string is made of.
const QUERY_TOKENS: [&str; 40] = [
    "character=",
    "character_name=",
    "series=",
    "series_name=",
    "sources=",
    "rating=",
    "max_pages=",
    "page=",
    "per_page=",
    "fresh=",
    "&",
    "=",
    "+",
    ",",
    "%",
    "%2",
    "%FF",
    "%C3",
    "%C3%A9",
    "%00",
    "%07",
    "%0A",
    "%26",
    "%3D",
    "Anya",
    "danbooru",
    "DANBOORU",
    "pixiv",
    "tbib",
    "general",
    "explicit",
    "0",
    "1",
    "-1",
    "101",
    "4294967296",
    "2.5",
    "true",
    "\u{202e}",
    "ア",
];

/// Pieces of JSON bodies, valid and broken.
const BODY_TOKENS: [&str; 36] = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\"character\"",
    "\"character_name\"",
    "\"series\"",
    "\"sources\"",
    "\"rating\"",
    "\"max_pages\"",
    "\"page\"",
    "\"per_page\"",
    "\"fresh\"",
    "\"Anya\"",
    "\"danbooru\"",
    "\"general\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\u202e\"",
    "null",
    "true",
    "false",
    "0",
    "1",
    "-1",
    "1e999",
    "18446744073709551616",
    "2.5",
    " ",
    "\n",
    "\u{feff}",
    "\\",
    "\u{0}",
];

/// The names a body may carry, and some it may not.
const FIELD_NAMES: [&str; 11] = [
    "character",
    "character_name",
    "series",
    "series_name",
    "sources",
    "rating",
    "max_pages",
    "page",
    "per_page",
    "fresh",
    "other",
];

fn rules() -> Rules {
    Rules {
        enabled: ["safebooru", "danbooru", "yandere"]
            .into_iter()
            .map(SourceId::from)
            .collect(),
        disabled: vec!["tbib".to_string()],
        max_pages: 40,
    }
}

/// Validates `params` as both routes do and checks either outcome.
fn check(params: Result<RawParams, ApiError>) -> Result<(), TestCaseError> {
    let params = match params {
        Ok(params) => params,
        Err(error) => return check_error(&error),
    };
    match rules().search_query(&params) {
        Ok(query) => check_query(&query)?,
        Err(error) => check_error(&error)?,
    }
    match rules().tags_query(&params) {
        Ok(query) => check_name(&query.character, query.series.as_deref()),
        Err(error) => check_error(&error),
    }
}

fn check_error(error: &ApiError) -> Result<(), TestCaseError> {
    prop_assert!(error.status().is_client_error(), "{error:?}");
    prop_assert!(!error.to_string().is_empty());
    Ok(())
}

/// An accepted query keeps every rule of the contract.
fn check_query(query: &SearchQuery) -> Result<(), TestCaseError> {
    check_name(&query.character, query.series.as_deref())?;
    let enabled = rules().enabled;
    prop_assert!(!query.sources.is_empty());
    prop_assert!(query.sources.iter().all(|id| enabled.contains(id)));
    prop_assert!(!query.ratings.is_empty() && query.ratings.is_sorted());
    prop_assert!((1..=40).contains(&query.max_pages));
    prop_assert!(query.page >= 1);
    prop_assert!((1..=1000).contains(&query.per_page));
    Ok(())
}

fn check_name(character: &str, series: Option<&str>) -> Result<(), TestCaseError> {
    let length = character.chars().count();
    prop_assert!((1..=100).contains(&length), "{character:?}");
    prop_assert_eq!(character, character.trim());
    prop_assert!(!character.chars().any(char::is_control));
    if let Some(series) = series {
        prop_assert!((1..=100).contains(&series.chars().count()));
        prop_assert!(!series.chars().any(char::is_control));
    }
    Ok(())
}

fn from_query(query: &str) -> Result<RawParams, ApiError> {
    RawParams::from_query(parse_query(query)?)
}

fn from_body(body: &[u8]) -> Result<RawParams, ApiError> {
    parse_object(body).map(RawParams::from_json)
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,120}".prop_map(Value::String),
        proptest::sample::select(&QUERY_TOKENS[..]).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((".{0,12}", inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_query_string_is_accepted_by_the_rules_or_a_4xx(query in ".{0,300}") {
        check(from_query(&query))?;
    }

    #[test]
    fn any_query_built_from_real_pieces_is_accepted_by_the_rules_or_a_4xx(
        tokens in proptest::collection::vec(proptest::sample::select(&QUERY_TOKENS[..]), 0..24),
    ) {
        check(from_query(&tokens.concat()))?;
    }

    #[test]
    fn any_query_pairs_are_accepted_by_the_rules_or_a_4xx(
        pairs in proptest::collection::vec(
            (proptest::sample::select(&FIELD_NAMES[..]), ".{0,120}"),
            0..8,
        ),
    ) {
        let pairs = pairs.into_iter().map(|(name, value)| (name.to_string(), value)).collect();
        check(RawParams::from_query(pairs))?;
    }

    #[test]
    fn any_body_bytes_are_accepted_by_the_rules_or_a_4xx(
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        check(from_body(&body))?;
    }

    #[test]
    fn any_json_ish_body_is_accepted_by_the_rules_or_a_4xx(
        tokens in proptest::collection::vec(proptest::sample::select(&BODY_TOKENS[..]), 0..40),
    ) {
        check(from_body(tokens.concat().as_bytes()))?;
    }

    #[test]
    fn any_json_object_is_accepted_by_the_rules_or_a_4xx(
        fields in proptest::collection::vec(
            (proptest::sample::select(&FIELD_NAMES[..]), json_value()),
            0..8,
        ),
    ) {
        let object: Map<String, Value> = fields
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        let body = serde_json::to_vec(&Value::Object(object)).unwrap();
        check(from_body(&body))?;
    }
}

#[test]
fn deeply_nested_json_is_a_400_not_a_stack_overflow() {
    let mut body = "{\"character\": ".to_string();
    body.push_str(&"[".repeat(100_000));

    let error = from_body(body.as_bytes()).unwrap_err();

    assert_eq!(error.status().as_u16(), 400, "{error}");
}

#[tokio::test]
async fn deeply_nested_json_over_http_is_a_400() {
    let server = common::start("").await;
    let body = format!("{{\"character\": {}", "[".repeat(10_000));

    let response = common::client()
        .post(server.url("/v1/search"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .unwrap();

    let (status, code, message) = common::error_of(response).await;
    assert_eq!((status, code.as_str()), (400, "invalid_body"), "{message}");
    let health = common::client()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the service is still up");
}
