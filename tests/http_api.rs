//! The HTTP edge over a real socket: the fixed routes, the one error shape for every kind of
//! bad request, validation through GET and POST alike, and request ids.
//!
//! Every request here fails validation or needs no upstream, so no test leaves the machine.

mod common;

use common::{client, error_of, json_of, start};
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

#[tokio::test]
async fn index_names_the_service_and_version() {
    let server = start("").await;

    let response = client().get(server.url("/")).send().await.unwrap();

    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "application/json; charset=utf-8"
    );
    let (status, body) = json_of(response).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"name": "ANYA IMAGE API", "version": env!("CARGO_PKG_VERSION")})
    );
}

#[tokio::test]
async fn healthz_answers_ok() {
    let server = start("").await;

    let response = client().get(server.url("/healthz")).send().await.unwrap();

    assert_eq!(json_of(response).await, (200, json!({"status": "ok"})));
}

const CREDENTIALS: &str = r#"
[sources.danbooru]
login = "anya-login-value"
api_key = "danbooru-key-value"

[sources.gelbooru]
user_id = 987654321
api_key = "gelbooru-key-value"

[sources.tbib]
enabled = false
"#;

#[tokio::test]
async fn sources_show_configuration_and_counters_in_order() {
    let server = start(CREDENTIALS).await;

    let response = client()
        .get(server.url("/v1/sources"))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;

    assert_eq!(status, 200);
    let sources = body["sources"].as_array().unwrap();
    let ids: Vec<&str> = sources.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "safebooru",
            "danbooru",
            "gelbooru",
            "yandere",
            "konachan",
            "tbib"
        ]
    );

    let danbooru = &sources[1];
    for (field, expected) in [
        ("family", json!("danbooru")),
        ("base_url", json!("https://danbooru.donmai.us")),
        ("enabled", json!(true)),
        ("rate_per_sec", json!(2.0)),
        ("burst", json!(1)),
        ("concurrency", json!(6)),
        ("page_size", json!(200)),
        ("credentials", json!(true)),
        ("in_flight", json!(0)),
        ("permits_free", json!(6)),
        ("requests", json!(0)),
        ("errors", json!(0)),
        (
            "recent",
            json!({"window_secs": 300, "requests": 0, "errors": 0}),
        ),
        ("circuit", json!("closed")),
        ("last_error", json!(null)),
    ] {
        assert_eq!(danbooru[field], expected, "danbooru.{field} in {danbooru}");
    }
    assert_eq!(sources[2]["credentials"], true);
    assert_eq!(sources[3]["credentials"], false);
    assert_eq!(sources[5]["enabled"], false);
}

#[tokio::test]
async fn sources_never_show_a_credential() {
    let server = start(CREDENTIALS).await;

    let text = client()
        .get(server.url("/v1/sources"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    for secret in [
        "anya-login-value",
        "danbooru-key-value",
        "987654321",
        "gelbooru-key-value",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    for field in ["login", "api_key", "user_id"] {
        assert!(!text.contains(&format!("\"{field}\"")), "{field}: {text}");
    }
}

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let server = start("").await;

    let response = client()
        .get(server.url("/v2/nothing"))
        .send()
        .await
        .unwrap();

    let (status, code, message) = error_of(response).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    assert!(message.contains("/v2/nothing"), "{message}");
}

#[tokio::test]
async fn wrong_methods_are_json_405s() {
    let server = start("").await;

    for (method, path) in [
        (reqwest::Method::DELETE, "/v1/search"),
        (reqwest::Method::POST, "/healthz"),
        (reqwest::Method::PUT, "/v1/sources"),
        (reqwest::Method::POST, "/v1/tags"),
    ] {
        let response = client()
            .request(method.clone(), server.url(path))
            .send()
            .await
            .unwrap();

        let (status, code, message) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (405, "method_not_allowed"),
            "{path}"
        );
        assert!(message.contains(method.as_str()), "{message}");
        assert!(message.contains(path), "{message}");
    }
}

async fn post_raw(body: impl Into<reqwest::Body>, content_type: Option<&str>) -> reqwest::Response {
    let server = start("").await;
    let mut request = client().post(server.url("/v1/search")).body(body);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn malformed_json_is_a_400_naming_the_position() {
    let response = post_raw(r#"{"character": "Anya""#, Some("application/json")).await;

    let (status, code, message) = error_of(response).await;
    assert_eq!((status, code.as_str()), (400, "invalid_body"));
    assert!(
        message.starts_with("request body is not valid JSON"),
        "{message}"
    );
    assert!(message.contains("line 1"), "{message}");
}

#[tokio::test]
async fn an_empty_body_is_a_400() {
    let response = post_raw("", Some("application/json")).await;

    let (status, code, message) = error_of(response).await;
    assert_eq!((status, code.as_str()), (400, "invalid_body"));
    assert!(message.contains("empty"), "{message}");
}

#[tokio::test]
async fn json_that_is_not_an_object_is_a_422() {
    let response = post_raw(r#"["Anya"]"#, Some("application/json")).await;

    let (status, code, message) = error_of(response).await;
    assert_eq!((status, code.as_str()), (422, "invalid_body"));
    assert_eq!(message, "request body must be a JSON object, got an array");
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_a_415() {
    let body = r#"{"character": "Anya"}"#;

    let (status, code, message) = error_of(post_raw(body, Some("text/plain")).await).await;
    assert_eq!((status, code.as_str()), (415, "unsupported_media_type"));
    assert!(message.contains("application/json"), "{message}");
    assert!(message.contains("text/plain"), "{message}");

    let (status, _, message) = error_of(post_raw(body, None).await).await;
    assert_eq!(status, 415);
    assert!(message.contains("no Content-Type"), "{message}");
}

#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let body = json!({ "character": "a".repeat(20_000) }).to_string();

    let response = post_raw(body, Some("application/json")).await;

    let (status, code, message) = error_of(response).await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));
    assert_eq!(
        message,
        "request body is larger than the limit of 16384 bytes"
    );
}

#[tokio::test]
async fn invalid_utf8_in_the_body_is_a_400() {
    let body = b"{\"character\": \"Anya \xff\"}".to_vec();

    let response = post_raw(body, Some("application/json")).await;

    let (status, code, message) = error_of(response).await;
    assert_eq!((status, code.as_str()), (400, "invalid_body"));
    assert!(
        message.starts_with("request body is not valid UTF-8"),
        "{message}"
    );
}

#[tokio::test]
async fn invalid_utf8_in_the_query_is_a_400_naming_the_parameter() {
    let server = start("").await;

    for path in ["/v1/search?character=Anya%FF", "/v1/tags?character=Anya%FF"] {
        let response = client().get(server.url(path)).send().await.unwrap();

        let (status, code, message) = error_of(response).await;
        assert_eq!((status, code.as_str()), (400, "invalid_query"), "{path}");
        assert_eq!(message, "query parameter character is not valid UTF-8");
    }
}

/// Asks the same invalid question through GET and POST and expects the same 400, whose
/// message starts with `expected`.
async fn rejects_both_ways(query: &str, body: Value, expected: &str) {
    let server = start("[sources.tbib]\nenabled = false\n").await;

    let by_get = client()
        .get(server.url(&format!("/v1/search?{query}")))
        .send()
        .await
        .unwrap();
    let by_post = client()
        .post(server.url("/v1/search"))
        .json(&body)
        .send()
        .await
        .unwrap();

    for (method, response) in [("GET", by_get), ("POST", by_post)] {
        let (status, code, message) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "invalid_query"),
            "{method} {query}: {message}"
        );
        assert!(
            message.starts_with(expected),
            "{method} {query}: {message:?} does not start with {expected:?}"
        );
    }
}

#[tokio::test]
async fn character_is_required() {
    rejects_both_ways("series=x", json!({"series": "x"}), "character is required").await;
}

#[tokio::test]
async fn character_must_have_1_to_100_characters() {
    let too_long = "ア".repeat(101);
    rejects_both_ways(
        "character=+++",
        json!({"character": "   "}),
        "character must be 1 to 100 characters",
    )
    .await;
    rejects_both_ways(
        &format!("character={too_long}"),
        json!({ "character": too_long }),
        "character must be 1 to 100 characters after trimming, got 101",
    )
    .await;
}

#[tokio::test]
async fn series_must_have_at_most_100_characters() {
    let too_long = "s".repeat(101);
    rejects_both_ways(
        &format!("character=a&series={too_long}"),
        json!({"character": "a", "series": too_long}),
        "series must be at most 100 characters",
    )
    .await;
}

#[tokio::test]
async fn control_characters_are_rejected() {
    rejects_both_ways(
        "character=An%07ya",
        json!({"character": "An\u{7}ya"}),
        "character must not contain control characters",
    )
    .await;
    rejects_both_ways(
        "character=a&series_name=Spy%00",
        json!({"character": "a", "series_name": "Spy\u{0}"}),
        "series_name must not contain control characters",
    )
    .await;
}

#[tokio::test]
async fn a_name_and_its_alias_must_agree() {
    rejects_both_ways(
        "character=Anya&character_name=Yor",
        json!({"character": "Anya", "character_name": "Yor"}),
        "character and character_name disagree",
    )
    .await;
}

#[tokio::test]
async fn unknown_sources_are_named() {
    rejects_both_ways(
        "character=a&sources=danbooru,pixiv",
        json!({"character": "a", "sources": ["danbooru", "pixiv"]}),
        "unknown source \"pixiv\"",
    )
    .await;
    rejects_both_ways(
        "character=a&sources=pixiv",
        json!({"character": "a", "sources": "pixiv"}),
        "unknown source \"pixiv\"",
    )
    .await;
}

#[tokio::test]
async fn disabled_sources_are_named() {
    rejects_both_ways(
        "character=a&sources=tbib",
        json!({"character": "a", "sources": ["tbib"]}),
        "source \"tbib\" is disabled",
    )
    .await;
}

#[tokio::test]
async fn unknown_ratings_are_named() {
    rejects_both_ways(
        "character=a&rating=general,safe",
        json!({"character": "a", "rating": ["general", "safe"]}),
        "unknown rating \"safe\"",
    )
    .await;
}

#[tokio::test]
async fn max_pages_is_1_to_the_configured_maximum() {
    for bad in [0, 101] {
        rejects_both_ways(
            &format!("character=a&max_pages={bad}"),
            json!({"character": "a", "max_pages": bad}),
            "max_pages must be a whole number from 1 to 100",
        )
        .await;
    }
}

#[tokio::test]
async fn page_is_at_least_1() {
    rejects_both_ways(
        "character=a&page=0",
        json!({"character": "a", "page": 0}),
        "page must be a whole number of at least 1",
    )
    .await;
}

#[tokio::test]
async fn per_page_is_1_to_1000() {
    for bad in [0, 1001] {
        rejects_both_ways(
            &format!("character=a&per_page={bad}"),
            json!({"character": "a", "per_page": bad}),
            "per_page must be a whole number from 1 to 1000",
        )
        .await;
    }
    rejects_both_ways(
        "character=a&per_page=ten",
        json!({"character": "a", "per_page": "ten"}),
        "per_page must be a whole number from 1 to 1000, got \"ten\"",
    )
    .await;
}

#[tokio::test]
async fn fresh_is_a_boolean() {
    rejects_both_ways(
        "character=a&fresh=maybe",
        json!({"character": "a", "fresh": "maybe"}),
        "fresh must be true or false",
    )
    .await;
}

#[tokio::test]
async fn tags_validate_like_search() {
    let server = start("").await;

    for (query, expected) in [
        ("series=x", "character is required"),
        ("character=a&sources=pixiv", "unknown source \"pixiv\""),
    ] {
        let response = client()
            .get(server.url(&format!("/v1/tags?{query}")))
            .send()
            .await
            .unwrap();

        let (status, code, message) = error_of(response).await;
        assert_eq!((status, code.as_str()), (400, "invalid_query"));
        assert!(message.starts_with(expected), "{message}");
    }
}

#[tokio::test]
async fn a_request_id_is_echoed_or_made() {
    let server = start("").await;
    let get = |id: Option<&'static str>| {
        let mut request = client().get(server.url("/healthz"));
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        request.send()
    };

    let echoed = get(Some("chat-bot-42")).await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "chat-bot-42");

    let made = get(None).await.unwrap();
    let made = made.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(made.len(), 36, "a UUID: {made}");

    let replaced = get(Some("<script>")).await.unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "<script>");
}

#[tokio::test]
async fn errors_carry_a_request_id_too() {
    let server = start("").await;

    let response = client()
        .get(server.url("/v1/search"))
        .header("x-request-id", "bad-request-1")
        .send()
        .await
        .unwrap();

    assert_eq!(response.headers()["x-request-id"], "bad-request-1");
    assert_eq!(error_of(response).await.0, 400);
}
