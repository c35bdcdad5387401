//! The simulator as a server: every fault on the wire, fault rule filters, latency,
//! request recording, in-flight counting, the `/_sim/` control API and shutdown.

mod support;

use std::time::{Duration, Instant};

use anya_sim::{Fault, FaultRule, SimFamily, SimHandle, Simulator, World};
use support::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start() -> SimHandle {
    let mut world = World::new();
    world
        .source("danbooru", SimFamily::Danbooru)
        .posts(0..30, &["anya_(spy_x_family)"]);
    world
        .source("gelbooru", SimFamily::Gelbooru)
        .posts(0..300, &["anya_(spy_x_family)"]);
    world
        .source("yandere", SimFamily::Moebooru)
        .posts(0..30, &["anya_forger"]);
    Simulator::start(world).await.expect("simulator starts")
}

fn posts_url(sim: &SimHandle) -> String {
    format!(
        "{}/posts.json?tags=anya_(spy_x_family)",
        sim.base_url("danbooru")
    )
}

/// Sends a bare HTTP/1.1 GET and reads until the server closes or resets.
async fn raw_get(sim: &SimHandle, path: &str) -> (Vec<u8>, std::io::Result<usize>) {
    let mut stream = TcpStream::connect(sim.addr()).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let outcome = stream.read_to_end(&mut received).await;
    (received, outcome)
}

#[tokio::test]
async fn status_faults_use_the_family_error_body() {
    let sim = start().await;
    sim.add_fault("danbooru", FaultRule::times(Fault::Status(500), 1));
    let failed = get(&posts_url(&sim)).await;
    assert_eq!(failed.status, 500);
    assert_eq!(failed.json()["success"], false);
    assert_eq!(
        get(&posts_url(&sim)).await.status,
        200,
        "used up after one request"
    );

    sim.add_fault("gelbooru", FaultRule::times(Fault::Status(502), 1));
    let plain = get(&format!("{}/index.php", sim.base_url("gelbooru"))).await;
    assert_eq!(plain.status, 502);
    assert!(
        plain
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
}

#[tokio::test]
async fn throttling_faults_send_retry_after() {
    let sim = start().await;
    let date = "Wed, 21 Oct 2026 07:28:00 GMT";
    sim.add_fault(
        "danbooru",
        FaultRule::times(
            Fault::TooManyRequests {
                retry_after: Some("2".into()),
            },
            1,
        ),
    );
    sim.add_fault(
        "danbooru",
        FaultRule::times(
            Fault::Unavailable {
                retry_after: Some(date.into()),
            },
            1,
        ),
    );
    sim.add_fault(
        "danbooru",
        FaultRule::times(Fault::TooManyRequests { retry_after: None }, 1),
    );
    let first = get(&posts_url(&sim)).await;
    assert_eq!(
        (first.status, first.header("retry-after")),
        (429, Some("2"))
    );
    let second = get(&posts_url(&sim)).await;
    assert_eq!(
        (second.status, second.header("retry-after")),
        (503, Some(date))
    );
    let third = get(&posts_url(&sim)).await;
    assert_eq!((third.status, third.header("retry-after")), (429, None));
}

#[tokio::test]
async fn body_faults_break_the_body() {
    let sim = start().await;
    sim.add_fault("danbooru", FaultRule::times(Fault::Malformed, 1));
    sim.add_fault("danbooru", FaultRule::times(Fault::Empty, 1));
    sim.add_fault("danbooru", FaultRule::times(Fault::Challenge, 1));
    let malformed = get(&posts_url(&sim)).await;
    assert_eq!(malformed.status, 200);
    assert!(serde_json::from_str::<serde_json::Value>(&malformed.body).is_err());
    let empty = get(&posts_url(&sim)).await;
    assert_eq!((empty.status, empty.body.as_str()), (200, ""));
    let challenge = get(&posts_url(&sim)).await;
    assert_eq!(challenge.status, 403);
    assert!(
        challenge
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(challenge.header("cf-mitigated"), Some("challenge"));
    assert!(challenge.body.contains("<title>Just a moment...</title>"));
}

#[tokio::test]
async fn oversized_bodies_have_the_exact_size() {
    let sim = start().await;
    let size = 3 * 1024 * 1024 + 7;
    sim.add_fault("danbooru", FaultRule::times(Fault::Oversized(size), 1));
    let big = get(&posts_url(&sim)).await;
    assert_eq!(big.status, 200);
    assert_eq!(
        big.header("content-length"),
        Some(size.to_string().as_str())
    );
    assert_eq!(big.body.len(), size);
    assert_eq!(big.json(), serde_json::json!([]));
}

#[tokio::test]
async fn truncated_bodies_end_early() {
    let sim = start().await;
    sim.add_fault("danbooru", FaultRule::times(Fault::Truncated, 2));
    let response = reqwest::get(posts_url(&sim)).await.expect("headers arrive");
    assert_eq!(response.status(), 200);
    assert!(
        response.bytes().await.is_err(),
        "the body cannot be read whole"
    );

    let (received, _) = raw_get(&sim, "/danbooru/posts.json").await;
    let text = String::from_utf8_lossy(&received);
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let announced: usize = (head.lines())
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .and_then(|v| v.trim().parse().ok())
        .expect("a Content-Length");
    assert!(
        !body.is_empty() && body.len() < announced,
        "{} of {announced}",
        body.len()
    );
}

#[tokio::test]
async fn reset_closes_the_connection_with_rst() {
    let sim = start().await;
    sim.add_fault("danbooru", FaultRule::times(Fault::Reset, 2));
    let (received, outcome) = raw_get(&sim, "/danbooru/posts.json").await;
    assert!(received.is_empty(), "no response byte before the reset");
    let error = outcome.expect_err("the read fails");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(reqwest::get(posts_url(&sim)).await.is_err());
    assert_eq!(
        get(&posts_url(&sim)).await.status,
        200,
        "later connections work"
    );
    let statuses: Vec<Option<u16>> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [None, None, Some(200)]);
}

#[tokio::test]
async fn hang_holds_until_shutdown() {
    let sim = start().await;
    sim.add_fault("danbooru", FaultRule::always(Fault::Hang));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let timed_out = client
        .get(posts_url(&sim))
        .send()
        .await
        .expect_err("no answer");
    assert!(timed_out.is_timeout());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        sim.clear_requests();
        if sim.max_in_flight("danbooru") == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a request its client gave up on stays in flight"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let waiting = tokio::spawn(reqwest::get(posts_url(&sim)));
    while sim.requests_for("danbooru").is_empty() {
        tokio::task::yield_now().await;
    }
    assert_eq!(sim.requests()[0].status, None);
    tokio::time::timeout(Duration::from_secs(5), sim.shutdown())
        .await
        .expect("shutdown is prompt");
    assert!(
        waiting.await.unwrap().is_err(),
        "the hung request ends with the server"
    );
}

#[tokio::test]
async fn rules_select_by_path_and_param_and_can_be_cleared() {
    let sim = start().await;
    let rule = FaultRule::always(Fault::Status(503))
        .on_path("s=post")
        .on_param("pid", "1");
    sim.add_fault("gelbooru", rule);
    let base = format!(
        "{}/index.php?page=dapi&q=index&json=1",
        sim.base_url("gelbooru")
    );
    assert_eq!(get(&format!("{base}&s=post&pid=0")).await.status, 200);
    assert_eq!(get(&format!("{base}&s=post&pid=1")).await.status, 503);
    assert_eq!(
        get(&format!("{base}&s=post&pid=1")).await.status,
        503,
        "until cleared"
    );
    assert_eq!(get(&format!("{base}&s=tag&pid=1")).await.status, 200);
    sim.clear_faults("gelbooru");
    assert_eq!(get(&format!("{base}&s=post&pid=1")).await.status, 200);
}

#[tokio::test]
async fn latency_delays_answers_and_faults() {
    let sim = start().await;
    sim.set_latency(
        "yandere",
        Duration::from_millis(30),
        Duration::from_millis(40),
    );
    let started = Instant::now();
    assert_eq!(
        get(&format!("{}/post.json", sim.base_url("yandere")))
            .await
            .status,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(30));
    sim.add_fault("yandere", FaultRule::times(Fault::Status(500), 1));
    let started = Instant::now();
    assert_eq!(
        get(&format!("{}/post.json", sim.base_url("yandere")))
            .await
            .status,
        500
    );
    assert!(started.elapsed() >= Duration::from_millis(30));
    let arrivals: Vec<Instant> = sim.requests().iter().map(|r| r.at).collect();
    assert!(
        arrivals[1] - arrivals[0] >= Duration::from_millis(30),
        "recorded on arrival"
    );
}

#[tokio::test]
async fn requests_are_recorded_in_order_with_decoded_queries() {
    let sim = start().await;
    get(&posts_url(&sim)).await;
    get(&format!(
        "{}/tags.json?search[name_matches]=*anya*&limit=5",
        sim.base_url("danbooru")
    ))
    .await;
    get(&format!(
        "{}/post.json?tags=anya_forger+holds%3Afalse&page=2",
        sim.base_url("yandere")
    ))
    .await;
    get(&format!("{}/posts.json", sim.base_url("nowhere"))).await;
    let all = sim.requests();
    let paths: Vec<(&str, &str)> = all
        .iter()
        .map(|r| (r.source.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            ("danbooru", "/posts.json"),
            ("danbooru", "/tags.json"),
            ("yandere", "/post.json"),
            ("nowhere", "/posts.json")
        ]
    );
    assert_eq!(all[1].param("search[name_matches]"), Some("*anya*"));
    assert_eq!(all[2].param("tags"), Some("anya_forger holds:false"));
    assert_eq!(all[2].param("page"), Some("2"));
    assert_eq!(all[3].status, Some(404));
    assert!(all.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(sim.requests_for("yandere").len(), 1);
    sim.clear_requests();
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn max_in_flight_counts_concurrent_requests_through_latency() {
    let sim = start().await;
    sim.set_latency(
        "danbooru",
        Duration::from_millis(60),
        Duration::from_millis(60),
    );
    let client = reqwest::Client::new();
    let url = posts_url(&sim);
    let requests = (0..5).map(|_| client.get(&url).send());
    for response in futures::future::join_all(requests).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    assert_eq!(sim.max_in_flight("danbooru"), 5);
    assert_eq!(sim.max_in_flight("yandere"), 0);
    sim.clear_requests();
    assert_eq!(sim.max_in_flight("danbooru"), 0);
}

async fn send(method: reqwest::Method, url: String, body: &str) -> u16 {
    let request = reqwest::Client::new().request(method, url);
    let request = request
        .header("content-type", "application/json")
        .body(body.to_owned());
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn the_control_api_steers_the_same_state() {
    let sim = start().await;
    let control = format!("http://{}/_sim", sim.addr());
    assert_eq!(
        get(&format!("{control}/healthz")).await.json()["status"],
        "ok"
    );
    let rule = r#"{"source":"danbooru","rule":{"fault":{"status":503},"times":1}}"#;
    assert_eq!(
        send(reqwest::Method::POST, format!("{control}/faults"), rule).await,
        204
    );
    assert_eq!(get(&posts_url(&sim)).await.status, 503);
    let forever = r#"{"source":"danbooru","rule":{"fault":"empty"}}"#;
    send(reqwest::Method::POST, format!("{control}/faults"), forever).await;
    assert_eq!(get(&posts_url(&sim)).await.body, "");
    assert_eq!(
        send(
            reqwest::Method::DELETE,
            format!("{control}/faults/danbooru"),
            ""
        )
        .await,
        204
    );
    assert_eq!(get(&posts_url(&sim)).await.status, 200);
    let latency = r#"{"source":"danbooru","min_ms":20,"max_ms":25}"#;
    assert_eq!(
        send(reqwest::Method::POST, format!("{control}/latency"), latency).await,
        204
    );
    let started = Instant::now();
    get(&posts_url(&sim)).await;
    assert!(started.elapsed() >= Duration::from_millis(20));
    assert_eq!(
        send(reqwest::Method::POST, format!("{control}/faults"), "{").await,
        400
    );

    let logged = get(&format!("{control}/requests")).await.json();
    assert_eq!(
        logged.as_array().unwrap().len(),
        4,
        "control calls are not logged"
    );
    assert_eq!(
        logged[0]["query"][0],
        serde_json::json!(["tags", "anya_(spy_x_family)"])
    );
    assert_eq!(logged[0]["status"], 503);
    let sources = get(&format!("{control}/sources")).await.json();
    assert_eq!(sources[0]["base_url"], sim.base_url("danbooru"));
    assert_eq!(
        send(reqwest::Method::DELETE, format!("{control}/requests"), "").await,
        204
    );
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn the_standard_world_serves_all_six_sources() {
    let sim = Simulator::start(World::standard()).await.unwrap();
    assert_eq!(
        sim.sources(),
        [
            "safebooru",
            "danbooru",
            "gelbooru",
            "yandere",
            "konachan",
            "tbib"
        ]
    );
    let count = get(&format!(
        "{}/counts/posts.json?tags=anya_(spy_x_family)",
        sim.base_url("danbooru")
    ))
    .await;
    assert_eq!(count.json()["counts"]["posts"], 1500);
    let aliased = get(&format!(
        "{}/counts/posts.json?tags=anya_forger",
        sim.base_url("danbooru")
    ))
    .await;
    assert_eq!(aliased.json()["counts"]["posts"], 1500);
    let xml = get(&format!(
        "{}/post.xml?tags=anya_forger&limit=1",
        sim.base_url("konachan")
    ))
    .await;
    assert!(xml.body.contains(r#"<posts count="400" offset="0">"#));
    sim.shutdown().await;
}

#[tokio::test]
async fn requests_record_the_client_headers() {
    let sim = start().await;
    let client = reqwest::Client::builder()
        .user_agent("probe/1.0 (header test)")
        .build()
        .unwrap();
    client.get(posts_url(&sim)).send().await.unwrap();
    let bare = "GET /danbooru/posts.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut stream = TcpStream::connect(sim.addr()).await.unwrap();
    stream.write_all(bare.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();

    let all = sim.requests();
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[0].user_agent.as_deref(),
        Some("probe/1.0 (header test)")
    );
    let encodings = all[0].accept_encoding.as_deref().unwrap_or_default();
    assert!(
        encodings.contains("gzip") && encodings.contains("br"),
        "{encodings}"
    );
    assert_eq!(
        (all[1].user_agent.as_ref(), all[1].accept_encoding.as_ref()),
        (None, None)
    );

    let logged = get(&format!("http://{}/_sim/requests", sim.addr()))
        .await
        .json();
    assert_eq!(logged[0]["user_agent"], "probe/1.0 (header test)");
    assert_eq!(logged[0]["accept_encoding"], encodings);
    assert!(logged[1]["user_agent"].is_null() && logged[1]["accept_encoding"].is_null());
}
