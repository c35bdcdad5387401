//! Credentials stay secret: with Danbooru and Gelbooru accounts and a service API key
//! configured, and every log line captured as JSON at debug level (trace for the service),
//! searches that succeed, that meet a refused account and that meet each upstream fault
//! leave no credential in any log line, response body or response header, and no upstream
//! URL (which carries the credentials as query parameters) in either.
//!
//! The test runs on the current-thread runtime, so the server's and the simulator's tasks
//! run on the test's thread and the subscriber set for that thread sees all they log.

mod common;

use anya_image_api::telemetry::{self, LogFormat};
use anya_sim::{Fault, FaultRule, SimFamily, World};
use common::logs::Captured;
use common::sim::{self, Stack};
use reqwest::Method;
use serde_json::{Value, json};
use tracing_subscriber::EnvFilter;

const DANBOORU_LOGIN: &str = "anya-login-Qv7xZ2";
/// Holds characters that change under URL encoding, so both spellings are looked for.
const DANBOORU_KEY: &str = "dnb-key&Zq81 x/y=z";
const GELBOORU_USER: &str = "8675309421";
const GELBOORU_KEY: &str = "gel-key%Hk3 Wm9+";
const SERVICE_KEY: &str = "service-key-Wm4pR8tL2vN6xC0q";

const ANYA: &str = "anya_(spy_x_family)";
const QUERY: &str = "character=Anya%20Forger&series=Spy%20x%20Family";

/// Danbooru accepts our account; Gelbooru expects another one, so it answers 401; Yande.re
/// needs none and stays healthy.
fn world() -> World {
    let mut world = World::new();
    world
        .source("danbooru", SimFamily::Danbooru)
        .tag(ANYA, 4)
        .require_credentials(DANBOORU_LOGIN, DANBOORU_KEY)
        .posts(0..300, &[ANYA]);
    world
        .source("gelbooru", SimFamily::Gelbooru)
        .tag(ANYA, 4)
        .require_credentials("someone-else", "not-our-key")
        .posts(0..50, &[ANYA]);
    world
        .source("yandere", SimFamily::Moebooru)
        .tag("anya_forger", 4)
        .posts(100..150, &["anya_forger"]);
    world
}

fn overrides() -> String {
    format!(
        r#"
[server]
api_keys = ["{SERVICE_KEY}"]

[sources.danbooru]
login = "{DANBOORU_LOGIN}"
api_key = "{DANBOORU_KEY}"
page_size = 100

[sources.gelbooru]
user_id = "{GELBOORU_USER}"
api_key = "{GELBOORU_KEY}"
"#
    )
}

/// Every response the test received, as status, headers and body text.
struct Session<'a> {
    stack: &'a Stack,
    transcript: Vec<String>,
}

impl Session<'_> {
    /// Sends a request with `key` as bearer token (if any) and keeps the whole answer.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut request = self.stack.http.request(method, self.stack.server.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the service answers");
        let status = response.status().as_u16();
        let headers = format!("{:?}", response.headers());
        let text = response.text().await.expect("the body arrives");
        self.transcript
            .push(format!("{status} {path}\n{headers}\n{text}"));
        (status, text)
    }

    async fn get(&mut self, path: &str) -> Value {
        let (status, text) = self.send(Method::GET, path, Some(SERVICE_KEY), None).await;
        assert_eq!(status, 200, "{path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

/// The texts that must appear nowhere: each secret as written and as a URL would encode it,
/// and the pieces of an upstream URL.
fn forbidden() -> Vec<String> {
    let mut texts = Vec::new();
    for secret in [
        DANBOORU_LOGIN,
        DANBOORU_KEY,
        GELBOORU_USER,
        GELBOORU_KEY,
        SERVICE_KEY,
    ] {
        texts.push(secret.to_string());
        texts.push(url::form_urlencoded::byte_serialize(secret.as_bytes()).collect());
        texts.push(secret.replace(' ', "%20"));
    }
    for piece in [
        "api_key=",
        "login=",
        "user_id=",
        "index.php?",
        ".json?",
        ".xml?",
    ] {
        texts.push(piece.to_string());
    }
    texts
}

/// Searches that succeed, that meet Gelbooru's 401 and that meet each fault on Danbooru's
/// pages, plus tags, sources, metrics, health and refused requests; returns the transcript.
async fn exercise(stack: &Stack) -> Vec<String> {
    let mut session = Session {
        stack,
        transcript: Vec::new(),
    };

    let answer = session.get(&format!("/v1/search?{QUERY}")).await;
    assert_eq!(answer["sources"]["danbooru"]["status"], "ok", "{answer}");
    assert_eq!(answer["sources"]["gelbooru"]["status"], "error", "{answer}");
    session.get(&format!("/v1/tags?{QUERY}")).await;

    let faults = [
        Fault::Status(500),
        Fault::Status(401),
        Fault::Status(403),
        Fault::Reset,
        Fault::Malformed,
        Fault::Truncated,
        Fault::Challenge,
        Fault::Empty,
    ];
    for fault in faults {
        stack.sim.clear_faults("danbooru");
        stack.sim.add_fault(
            "danbooru",
            FaultRule::always(fault.clone()).on_path("/posts.json"),
        );
        let answer = session.get(&format!("/v1/search?{QUERY}&fresh=true")).await;
        let report = &answer["sources"]["danbooru"];
        assert_ne!(
            report["status"], "ok",
            "{fault:?} should fail danbooru: {report}"
        );
    }

    for path in ["/", "/healthz", "/v1/sources", "/metrics", "/openapi.json"] {
        session
            .send(Method::GET, path, Some(SERVICE_KEY), None)
            .await;
    }
    session.send(Method::GET, "/v1/sources", None, None).await;
    session
        .send(
            Method::GET,
            "/v1/sources",
            Some("not-the-service-key-000"),
            None,
        )
        .await;
    session
        .send(Method::GET, "/v1/search?page=0", Some(SERVICE_KEY), None)
        .await;
    session
        .send(Method::GET, "/nowhere", Some(SERVICE_KEY), None)
        .await;
    let bad_body = json!({"character": "Anya", "per_page": 0});
    session
        .send(
            Method::POST,
            "/v1/search",
            Some(SERVICE_KEY),
            Some(bad_body),
        )
        .await;
    session.transcript
}

#[tokio::test]
async fn no_credential_reaches_a_log_line_or_a_response() {
    let captured = Captured::default();
    let filter = EnvFilter::new("debug,anya_image_api=trace,tower_http=trace");
    let subscriber = telemetry::subscriber(LogFormat::Json, filter, captured.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let stack = sim::start(world(), &overrides()).await;

    let transcript = exercise(&stack).await;

    let sent = stack.sim.requests_for("danbooru");
    assert!(
        sent.iter()
            .any(|r| r.param("api_key") == Some(DANBOORU_KEY)),
        "the account was in play"
    );
    let logs = captured.text();
    assert!(
        logs.contains("upstream request failed"),
        "failures were logged at all"
    );
    for text in forbidden() {
        let line = logs.lines().find(|line| line.contains(&text));
        assert!(line.is_none(), "{text:?} is in a log line: {line:?}");
        let answer = transcript.iter().find(|answer| answer.contains(&text));
        assert!(answer.is_none(), "{text:?} is in a response: {answer:?}");
    }
}
