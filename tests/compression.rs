//! gzip answers of `/v1/search`, read raw off the socket: the header a client sends decides
//! the coding, a gzip answer inflates to exactly the plain one, and a page is deflated once
//! however often it is asked for.

mod common;

use std::io::Read;

use anya_sim::World;
use common::sim::{self, Stack};
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, VARY};
use serde_json::{Value, json};

const ANYA: &str = "/v1/search?character=Anya+Forger&series=Spy+x+Family";

/// A client that leaves bodies as sent: it neither asks for nor inflates any coding.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .build()
        .expect("the test client builds")
}

/// What the service sent to `GET path` with `accept` as `Accept-Encoding` (none if `None`).
struct Sent {
    coding: Option<String>,
    vary: Option<String>,
    length: Option<usize>,
    body: Vec<u8>,
}

async fn get(stack: &Stack, path: &str, accept: Option<&str>) -> Sent {
    let mut request = raw_client().get(stack.server.url(path));
    if let Some(accept) = accept {
        request = request.header(ACCEPT_ENCODING, accept);
    }
    let response = request.send().await.expect("the service answers");
    assert_eq!(response.status(), 200);
    let header =
        |name| (response.headers().get(name)).map(|value| value.to_str().unwrap().to_string());
    let (coding, vary) = (header(CONTENT_ENCODING), header(VARY));
    let length = header(CONTENT_LENGTH).map(|value| value.parse().unwrap());
    let body = response.bytes().await.unwrap().to_vec();
    Sent {
        coding,
        vary,
        length,
        body,
    }
}

/// The JSON of a gzip body, after checking that it is exactly one gzip member.
fn gunzip(body: &[u8]) -> Value {
    let mut decoder = flate2::read::GzDecoder::new(body);
    let mut text = Vec::new();
    decoder.read_to_end(&mut text).expect("a valid gzip member");
    let mut rest = Vec::new();
    decoder.into_inner().read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{} bytes after the member", rest.len());
    serde_json::from_slice(&text).expect("the inflated answer is JSON")
}

/// An answer without the field that differs from request to request.
fn timeless(mut answer: Value) -> Value {
    answer.as_object_mut().unwrap().remove("elapsed_ms");
    answer
}

#[tokio::test]
async fn a_client_that_accepts_gzip_gets_the_plain_answer_compressed() {
    let stack = sim::start(World::standard(), "").await;

    let cold = get(&stack, ANYA, Some("gzip, deflate, br")).await;
    let plain = get(&stack, ANYA, None).await;
    let warm = get(&stack, ANYA, Some("gzip")).await;

    assert_eq!(cold.coding.as_deref(), Some("gzip"));
    assert_eq!(
        cold.length,
        Some(cold.body.len()),
        "an exact Content-Length"
    );
    assert_eq!(gunzip(&cold.body)["cached"], false);
    assert_eq!(plain.coding, None);
    assert_eq!(plain.vary.as_deref(), Some("accept-encoding"));
    assert_eq!(warm.vary.as_deref(), Some("accept-encoding"));
    let plain_len = plain.body.len();
    let plain: Value = serde_json::from_slice(&plain.body).unwrap();
    assert_eq!(plain["images"].as_array().unwrap().len(), 100);
    assert_eq!(timeless(gunzip(&warm.body)), timeless(plain));
    assert!(
        warm.body.len() * 5 < plain_len,
        "gzip ({} bytes) is much smaller than the JSON ({plain_len} bytes)",
        warm.body.len()
    );
}

#[tokio::test]
async fn a_page_is_deflated_once_for_every_answer_that_holds_it() {
    let stack = sim::start(World::standard(), "").await;
    get(&stack, ANYA, None).await;
    assert!(
        stack.state.pages.is_empty(),
        "plain answers deflate nothing"
    );

    let first_page = format!("{ANYA}&page=1");
    let answers =
        futures::future::join_all((0..8).map(|_| get(&stack, &first_page, Some("gzip")))).await;
    assert_eq!(
        stack.state.pages.len(),
        1,
        "eight answers, one page deflated"
    );
    let second = get(&stack, &format!("{ANYA}&page=2"), Some("gzip")).await;
    assert_eq!(stack.state.pages.len(), 2);

    let first = timeless(gunzip(&answers[0].body));
    for answer in &answers {
        assert_eq!(timeless(gunzip(&answer.body)), first);
    }
    let second = gunzip(&second.body);
    assert_eq!(second["page"], 2);
    assert_ne!(second["images"], first["images"]);
}

#[tokio::test]
async fn a_refused_or_unknown_coding_gets_plain_json() {
    let stack = sim::start(World::standard(), "").await;

    for accept in ["gzip;q=0", "br", "identity", "gzip;q=oops"] {
        let sent = get(&stack, &format!("{ANYA}&per_page=5"), Some(accept)).await;
        assert_eq!(sent.coding, None, "Accept-Encoding: {accept}");
        let answer: Value = serde_json::from_slice(&sent.body).unwrap();
        assert_eq!(answer["per_page"], 5, "Accept-Encoding: {accept}");
    }
}

#[tokio::test]
async fn filtered_pages_and_posted_questions_compress_too() {
    let stack = sim::start(World::standard(), "").await;
    let filtered = format!("{ANYA}&rating=general,sensitive&per_page=30&page=2");
    get(&stack, ANYA, None).await;

    let plain = get(&stack, &filtered, None).await;
    let gzip = get(&stack, &filtered, Some("gzip")).await;
    let plain: Value = serde_json::from_slice(&plain.body).unwrap();
    assert_eq!(plain["cached"], true);
    assert!(
        timeless(gunzip(&gzip.body)) == timeless(plain.clone()),
        "the same answer"
    );
    assert!(
        (plain["images"].as_array().unwrap().iter())
            .all(|image| image["rating"] == "general" || image["rating"] == "sensitive")
    );

    let posted = raw_client()
        .post(stack.server.url("/v1/search"))
        .header(ACCEPT_ENCODING, "gzip")
        .json(&json!({"character_name": "Anya Forger", "series_name": "Spy x Family"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.headers()[CONTENT_ENCODING], "gzip");
    let posted = gunzip(&posted.bytes().await.unwrap());
    let whole: Value = serde_json::from_slice(&get(&stack, ANYA, None).await.body).unwrap();
    assert_eq!(posted["cached"], true);
    assert!(
        timeless(posted) == timeless(whole),
        "POST and GET answer alike"
    );
}
