//! Who may call, over a real socket: without configuration the service is open and
//! unlimited; with `server.api_keys` every route but `/` and `/healthz` needs a bearer key;
//! with `server.client_rate_per_sec` each client has its own budget, and `X-Forwarded-For`
//! names the client only when `server.trust_forwarded_for` says so, counted from the right
//! past `server.trusted_proxy_hops` proxies.
//!
//! Limiter tests use a burst of 2 and a rate of one request per 1000 s, so the third
//! request of a client is refused whatever the machine's speed.

mod common;

use common::{client, error_of, json_of, start};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};

const KEY: &str = "test-key-0123456789abcdef";
const OTHER_KEY: &str = "second-key-fedcba9876543210";

fn keys_toml() -> String {
    format!("[server]\napi_keys = [\"{KEY}\", \"{OTHER_KEY}\"]\n")
}

const LIMITED: &str = "[server]\nclient_rate_per_sec = 0.001\nclient_burst = 2\n";

const LIMITED_BEHIND_PROXY: &str =
    "[server]\nclient_rate_per_sec = 0.001\nclient_burst = 2\ntrust_forwarded_for = true\n";

async fn status_of(request: reqwest::RequestBuilder) -> StatusCode {
    request.send().await.expect("the service answers").status()
}

#[tokio::test]
async fn without_configuration_anyone_may_call_as_often_as_they_like() {
    let server = start("").await;

    for _ in 0..30 {
        let response = client()
            .get(server.url("/v1/sources"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let metrics = client().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
}

#[tokio::test]
async fn a_request_without_a_key_is_refused_with_a_bearer_challenge() {
    let server = start(&keys_toml()).await;

    let response = client()
        .get(server.url("/v1/sources"))
        .send()
        .await
        .unwrap();

    assert_eq!(
        response.headers()[WWW_AUTHENTICATE],
        r#"Bearer realm="anya-image-api""#
    );
    let (status, code, message) = error_of(response).await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"));
    assert!(message.contains("Authorization: Bearer"), "{message}");
}

#[tokio::test]
async fn a_wrong_key_is_refused_without_being_repeated() {
    let server = start(&keys_toml()).await;

    for value in [
        "Bearer not-the-key-0123456789",
        "Bearer test-key-0123456789abcdeF",
        "Bearer test-key-0123456789abcde",
        "Basic dGVzdDp0ZXN0",
        "Bearer",
    ] {
        let response = client()
            .get(server.url("/v1/search?character=Anya"))
            .header(AUTHORIZATION, value)
            .send()
            .await
            .unwrap();

        assert!(response.headers().contains_key(WWW_AUTHENTICATE));
        let (status, code, message) = error_of(response).await;
        assert_eq!((status, code.as_str()), (401, "unauthorized"), "{value}");
        assert!(!message.contains("0123456789"), "{message}");
    }
}

#[tokio::test]
async fn each_configured_key_opens_every_route() {
    let server = start(&keys_toml()).await;

    for key in [KEY, OTHER_KEY] {
        for path in ["/v1/sources", "/metrics"] {
            let request = client().get(server.url(path)).bearer_auth(key);
            assert_eq!(status_of(request).await, 200, "{path}");
        }
        let lower_case = client()
            .get(server.url("/v1/sources"))
            .header(AUTHORIZATION, format!("bearer {key}"));
        assert_eq!(status_of(lower_case).await, 200);
        // Past the key, validation answers as usual.
        let invalid = client().get(server.url("/v1/search")).bearer_auth(key);
        assert_eq!(status_of(invalid).await, 400);
    }
}

#[tokio::test]
async fn metrics_and_unknown_routes_need_the_key_too() {
    let server = start(&keys_toml()).await;

    for path in ["/metrics", "/v1/tags?character=Anya", "/v2/nothing"] {
        let response = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(error_of(response).await.0, 401, "{path}");
    }
}

#[tokio::test]
async fn the_index_and_health_check_stay_open() {
    let server = start(&keys_toml()).await;

    for path in ["/", "/healthz"] {
        let response = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(json_of(response).await.0, 200, "{path}");
    }
}

#[tokio::test]
async fn a_client_past_its_burst_is_refused_with_retry_after() {
    let server = start(LIMITED).await;
    let sources = || client().get(server.url("/v1/sources"));

    assert_eq!(status_of(sources()).await, 200);
    assert_eq!(status_of(sources()).await, 200);
    let refused = sources().send().await.unwrap();

    let retry_after: u64 = refused.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((900..=1000).contains(&retry_after), "{retry_after}");
    let (status, code, message) = error_of(refused).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    assert!(message.contains("too many requests"), "{message}");
}

#[tokio::test]
async fn the_health_check_is_never_limited() {
    let server = start(LIMITED).await;

    for _ in 0..5 {
        let health = client().get(server.url("/healthz"));
        assert_eq!(status_of(health).await, 200);
    }
    for expected in [200, 200, 429] {
        let sources = client().get(server.url("/v1/sources"));
        assert_eq!(status_of(sources).await, expected);
    }
    let health = client().get(server.url("/healthz"));
    assert_eq!(status_of(health).await, 200);
}

/// The statuses of `/v1/sources` asked once with each `X-Forwarded-For` value in turn.
async fn statuses_forwarded_for(overrides: &str, forwarded: &[&str]) -> Vec<u16> {
    let server = start(overrides).await;
    let mut statuses = Vec::new();
    for address in forwarded {
        let request = client()
            .get(server.url("/v1/sources"))
            .header("x-forwarded-for", *address);
        statuses.push(status_of(request).await.as_u16());
    }
    statuses
}

#[tokio::test]
async fn an_untrusted_forwarded_for_cannot_buy_a_fresh_budget() {
    let forwarded = ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"];

    let statuses = statuses_forwarded_for(LIMITED, &forwarded).await;

    assert_eq!(statuses, [200, 200, 429, 429], "one peer, one budget");
}

#[tokio::test]
async fn a_trusted_forwarded_for_gives_each_client_its_own_budget() {
    let forwarded = [
        "203.0.113.1",
        "203.0.113.1, 10.0.0.1",
        "203.0.113.2",
        "203.0.113.1",
        "unknown, 203.0.113.2:5555",
        "203.0.113.2",
    ];

    let statuses = statuses_forwarded_for(LIMITED_BEHIND_PROXY, &forwarded).await;

    assert_eq!(statuses, [200, 200, 200, 429, 200, 429]);
}

#[tokio::test]
async fn behind_counted_proxies_a_forged_forwarded_for_buys_nothing() {
    // Render's chain: the client's own header, then what Cloudflare and Render's proxy
    // appended.
    let forwarded = [
        "198.51.100.9, 104.22.17.40",
        "203.0.113.1, 198.51.100.9, 104.22.17.40",
        "203.0.113.2, 198.51.100.9, 104.22.17.40",
        "198.51.100.10, 104.22.17.41",
    ];
    let overrides = format!("{LIMITED_BEHIND_PROXY}trusted_proxy_hops = 2\n");

    let statuses = statuses_forwarded_for(&overrides, &forwarded).await;

    assert_eq!(
        statuses,
        [200, 200, 429, 200],
        "one client, however it names itself"
    );
}

#[tokio::test]
async fn guessing_keys_is_limited_before_the_key_is_checked() {
    let overrides = format!(
        "{}client_rate_per_sec = 0.001\nclient_burst = 2\n",
        keys_toml()
    );
    let server = start(&overrides).await;

    let mut statuses = Vec::new();
    for guess in ["guess-one-000000000", "guess-two-000000000", KEY] {
        let request = client().get(server.url("/v1/sources")).bearer_auth(guess);
        statuses.push(status_of(request).await.as_u16());
    }

    assert_eq!(
        statuses,
        [401, 401, 429],
        "even the right key waits its turn"
    );
}
