//! Helpers shared by the integration tests: a real server on a loopback port, a client, and
//! readers of the JSON error shape.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use anya_image_api::app::AppState;
use anya_image_api::config::Config;
use anya_image_api::server::{self, ServerHandle};
use serde_json::Value;

/// Starts the real server on `127.0.0.1:0` with the built-in configuration and `overrides`
/// (TOML) on top; the process environment plays no part.
pub async fn start(overrides: &str) -> ServerHandle {
    let config = Config::from_toml(overrides).expect("test configuration is valid");
    let state = AppState::new(config).expect("the HTTP client builds");
    server::spawn(state).await.expect("a loopback port is free")
}

/// A client that neither retries nor follows redirects, so tests see what the server sent.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the test client builds")
}

/// A response's status and JSON body; panics when the body is not JSON.
pub async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("the body arrives");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("body is not JSON ({err}): {text:?}"));
    (status, body)
}

/// The status, `error.code` and `error.message` of an error response, after checking that
/// the body has exactly the one error shape.
pub async fn error_of(response: reqwest::Response) -> (u16, String, String) {
    let (status, body) = json_of(response).await;
    let error = body
        .get("error")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("not the error shape: {body}"));
    assert_eq!(error.len(), 2, "error has exactly code and message: {body}");
    let text = |field: &str| {
        error[field]
            .as_str()
            .unwrap_or_else(|| panic!("error.{field} is a string: {body}"))
            .to_string()
    };
    (status, text("code"), text("message"))
}
pub mod files;
pub mod logs;
pub mod sim;
