//! Graceful stop: after the signal the listener closes, a request already in flight still
//! gets its answer, and the serve future completes, within the grace period at the latest.
//!
//! A request is held in flight by sending its head with `Expect: 100-continue` and keeping
//! the body back: the server's `100 Continue` proves the handler is reading the body, so the
//! test knows the request is in flight without sleeping.

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use anya_image_api::server::ServerHandle;
use common::{client, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// The body the held request sends last; it fails validation, so no upstream is asked.
const BODY: &str = r#"{"character": "Anya", "sources": ["pixiv"]}"#;

/// Opens a connection and sends a POST head whose body the server must ask for; returns
/// once the server has asked, that is, once the handler is running.
async fn hold_request(server: &ServerHandle) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /v1/search HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        server.addr,
        BODY.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();

    let interim = read_until_blank_line(&mut stream).await;
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim:?}");
    stream
}

async fn read_until_blank_line(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    while !received.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let read = stream.read(&mut byte).await.unwrap();
        assert_eq!(read, 1, "connection closed early: {received:?}");
        received.push(byte[0]);
    }
    String::from_utf8(received).unwrap()
}

/// Waits until connecting to `addr` is refused, which the server's closing of its listener
/// causes; connections the kernel still accepted meanwhile are dropped and retried.
async fn until_listener_closed(addr: SocketAddr) {
    loop {
        match TcpStream::connect(addr).await {
            Err(err) if err.kind() == ErrorKind::ConnectionRefused => return,
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

#[tokio::test]
async fn stop_completes_once_idle() {
    let server = start("").await;
    let response = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);

    timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("the server stops promptly")
        .unwrap();
}

#[tokio::test]
async fn a_request_in_flight_is_answered_after_the_signal() {
    let mut server = start("").await;
    let mut held = hold_request(&server).await;

    server.begin_shutdown();
    timeout(Duration::from_secs(10), until_listener_closed(server.addr))
        .await
        .expect("the listener closes after the signal");
    held.write_all(BODY.as_bytes()).await.unwrap();

    let mut answer = String::new();
    timeout(Duration::from_secs(10), held.read_to_string(&mut answer))
        .await
        .expect("the answer arrives and the connection closes")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains(r#""code":"invalid_query""#), "{answer}");
    assert!(answer.contains("unknown source"), "{answer}");

    timeout(Duration::from_secs(10), server.stopped())
        .await
        .expect("serve completes after the last request")
        .unwrap();
}

#[tokio::test]
async fn the_grace_period_bounds_the_wait() {
    let mut server = start("[server]\nshutdown_grace_secs = 1\n").await;
    let _held = hold_request(&server).await;

    server.begin_shutdown();

    timeout(Duration::from_secs(10), server.stopped())
        .await
        .expect("serve gives up on the stuck request after the grace period")
        .unwrap();
}
