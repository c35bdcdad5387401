//! Helpers shared by the simulator's integration tests: plain GETs that return status,
//! headers and body, and the key sets of JSON objects.

#![allow(dead_code)]

use std::collections::BTreeSet;

use serde_json::Value;

/// What a GET answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// GETs `url` and reads the whole body.
pub async fn get(url: &str) -> Answer {
    let response = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body");
    Answer {
        status,
        headers,
        body,
    }
}

/// The keys of a JSON object.
pub fn keys(object: &Value) -> BTreeSet<String> {
    object
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

/// The keys of the first post object of a recorded fixture body (array or envelope).
pub fn fixture_keys(recorded: &str) -> BTreeSet<String> {
    let value: Value = serde_json::from_str(recorded).expect("fixture JSON");
    let first = match &value {
        Value::Array(items) => &items[0],
        Value::Object(map) if map.contains_key("post") => &map["post"][0],
        other => other,
    };
    keys(first)
}

/// The `id`s of a JSON array of posts or tags.
pub fn ids(list: &Value) -> Vec<u64> {
    let items = list.as_array().expect("an array");
    items
        .iter()
        .map(|p| p["id"].as_u64().expect("an id"))
        .collect()
}
