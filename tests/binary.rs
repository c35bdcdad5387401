//! The real binary as an operator runs it: SIGTERM (what Render sends on deploy) and Ctrl-C
//! stop it gracefully, answering the request in flight and exiting with status 0; and
//! `check-config` reads the file `ANYA_CONFIG` or `--config` names, printing its effective
//! values or, for a bad file, failing with a message naming the key.
//!
//! The binary runs as a child process with JSON logs, pointed at an in-process simulator by
//! a configuration file. The tests synchronise on its log lines and on the server's
//! `100 Continue`, never on sleeps: a request is held in flight by sending its head with
//! `Expect: 100-continue` and keeping the body back until the signal has been received.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use anya_sim::{SimFamily, SimHandle, Simulator, World};
use common::files::TempFile;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;

const BINARY: &str = env!("CARGO_BIN_EXE_anya-image-api");

/// How long any one awaited event may take before the test gives up on it; a bound against
/// hanging forever, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(20);

const ANYA: &str = "anya_forger";

/// Yande.re holds 40 posts of Anya.
fn world() -> World {
    let mut world = World::new();
    world
        .source("yandere", SimFamily::Moebooru)
        .tag(ANYA, 4)
        .posts(0..40, &[ANYA]);
    world
}

/// The binary running as a child, with its log lines arriving on a channel as JSON.
struct Running {
    child: Option<Child>,
    lines: mpsc::UnboundedReceiver<Value>,
    /// Every line received so far, in order.
    seen: Vec<Value>,
    addr: SocketAddr,
    _config: TempFile,
}

impl Running {
    /// Starts the binary serving `config` (TOML) on a loopback port the system picks, and
    /// returns once it answers `/healthz`.
    async fn start(config: &str) -> Running {
        let config = TempFile::new("anya.toml", config);
        let mut child = Command::new(BINARY)
            .env_clear()
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("PORT", "0")
            .env("ANYA_SERVER__HOST", "127.0.0.1")
            .arg("--config")
            .arg(config.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let lines = forward_lines(child.stderr.take().expect("standard error is piped"));
        let mut running = Running {
            child: Some(child),
            lines,
            seen: Vec::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            _config: config,
        };
        let listening = running.wait_for("listening").await;
        let address = listening["address"]
            .as_str()
            .expect("the address is logged");
        running.addr = address.parse().expect("the address is a socket address");
        running.until_healthy().await;
        running
    }

    /// Waits for the next log line whose message is `message` and returns it.
    async fn wait_for(&mut self, message: &str) -> Value {
        loop {
            let line = timeout(PATIENCE, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("no {message:?} line; log so far: {:#?}", self.seen))
                .unwrap_or_else(|| panic!("log ended before {message:?}: {:#?}", self.seen));
            self.seen.push(line.clone());
            if line["message"] == message {
                return line;
            }
        }
    }

    async fn until_healthy(&self) {
        let url = format!("http://{}/healthz", self.addr);
        let response = common::client().get(url).send().await.expect("it answers");
        assert_eq!(response.status(), 200);
    }

    /// Sends `signal` (a name `kill` knows, e.g. `TERM`) to the process.
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the child runs").id();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// Reads the rest of the log until the process closes it, then its exit status.
    async fn exit(mut self) -> (ExitStatus, Vec<Value>) {
        while let Some(line) = timeout(PATIENCE, self.lines.recv())
            .await
            .expect("the process closes its log")
        {
            self.seen.push(line);
        }
        let mut child = self.child.take().expect("the child runs");
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .expect("the exit status is known");
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed test must not leave the server running.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads `stderr` line by line on a thread, forwarding each line as JSON (or as a JSON
/// string when it is not JSON, so a stray line shows up in a failure).
fn forward_lines(stderr: std::process::ChildStderr) -> mpsc::UnboundedReceiver<Value> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
            if tx.send(value).is_err() {
                break;
            }
        }
    });
    rx
}

/// Opens a connection and sends the head of `POST /v1/search` for `body`, whose body the
/// server must ask for; returns once it has asked, that is, once the handler runs.
async fn hold_search(addr: SocketAddr, body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/search HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();

    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let read = stream.read(&mut byte).await.unwrap();
        assert_eq!(read, 1, "connection closed early: {interim:?}");
        interim.push(byte[0]);
    }
    let interim = String::from_utf8(interim).unwrap();
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim:?}");
    stream
}

/// The status and JSON body of a raw HTTP/1.1 response, chunked or not.
fn parse_response(raw: &[u8]) -> (u16, Value) {
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head: {}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let mut body = &raw[split + 4..];
    let status = head[9..12].parse().expect("a status code");
    let decoded;
    if head.contains("transfer-encoding: chunked") {
        decoded = dechunk(body);
        body = &decoded;
    }
    let value = serde_json::from_slice(body)
        .unwrap_or_else(|err| panic!("body is not JSON ({err}): {head}"));
    (status, value)
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").expect("a size");
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.trim(), 16).expect("a hex chunk size");
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
}

/// Holds a search in flight, sends `signal`, and only once the binary logged the signal
/// lets the search go on; returns the search's answer, the exit status and the whole log.
async fn search_across(signal: &str, sim: &SimHandle) -> ((u16, Value), ExitStatus, Vec<Value>) {
    let mut running = Running::start(&common::sim::sources_toml(sim)).await;
    let body = json!({"character": "Anya Forger", "sources": ["yandere"], "per_page": 1000});
    let body = body.to_string();
    let mut held = hold_search(running.addr, &body).await;

    running.signal(signal);
    running.wait_for("signal received").await;
    running
        .wait_for("shutdown started; finishing requests in flight")
        .await;
    held.write_all(body.as_bytes()).await.unwrap();

    let mut raw = Vec::new();
    timeout(PATIENCE, held.read_to_end(&mut raw))
        .await
        .expect("the answer arrives and the connection closes")
        .unwrap();
    let (status, log) = running.exit().await;
    (parse_response(&raw), status, log)
}

fn messages(log: &[Value]) -> Vec<&str> {
    log.iter()
        .filter_map(|line| line["message"].as_str())
        .collect()
}

/// Checks what a graceful stop on `signal` (as the log names it) must show.
fn assert_graceful_stop(answer: &(u16, Value), status: ExitStatus, log: &[Value], name: &str) {
    let (code, body) = answer;
    assert_eq!(*code, 200, "{body}");
    assert_eq!(body["total"], 40, "{body}");
    assert_eq!(body["sources"]["yandere"]["status"], "ok", "{body}");
    assert!(status.success(), "exit status {status:?}; log {log:#?}");

    let received = log
        .iter()
        .find(|line| line["message"] == "signal received")
        .expect("the signal is logged");
    assert_eq!(received["signal"], name, "{received}");
    assert_eq!(received["level"], "INFO", "{received}");
    let order = messages(log);
    let at = |message: &str| {
        order
            .iter()
            .position(|m| *m == message)
            .unwrap_or_else(|| panic!("no {message:?} in {order:?}"))
    };
    assert!(at("signal received") < at("search finished"), "{order:?}");
    assert_eq!(order.last(), Some(&"stopped"), "{order:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_search_in_flight_and_exits_cleanly() {
    let sim = Simulator::start(world()).await.unwrap();

    let (answer, status, log) = search_across("TERM", &sim).await;

    assert_graceful_stop(&answer, status, &log, "SIGTERM");
    let asked = sim.requests_for("yandere");
    assert!(
        asked.iter().any(|r| r.path == "/post.json"),
        "the search reached the upstream after the signal: {asked:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_finishes_the_search_in_flight_and_exits_cleanly() {
    let sim = Simulator::start(world()).await.unwrap();

    let (answer, status, log) = search_across("INT", &sim).await;

    assert_graceful_stop(&answer, status, &log, "SIGINT");
}

/// Runs `check-config` with only `env` in its environment and `args` after the command.
fn check_config(env: &[(&str, &Path)], args: &[&Path]) -> Output {
    let mut command = Command::new(BINARY);
    command.env_clear().env("RUST_LOG", "info");
    for (name, value) in env {
        command.env(name, value);
    }
    command
        .arg("check-config")
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("the output is text")
}

/// The printed summary line that starts with `prefix`.
fn summary_line(stdout: &str, prefix: &str) -> String {
    stdout
        .lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {stdout}"))
        .to_string()
}

/// A configuration file with values no default has.
const CUSTOM: &str = "[search]\nmax_pages = 42\n\
    [sources.danbooru]\nbase_url = \"http://127.0.0.1:9000/danbooru\"\nrate_per_sec = 1.5\n\
    [sources.tbib]\nenabled = false\n";

/// Checks that `output` is a successful `check-config` of [`CUSTOM`].
fn assert_custom_summary(output: &Output) {
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));

    assert!(
        summary_line(&stdout, "search:").contains(" max_pages=42 "),
        "{stdout}"
    );
    let danbooru = summary_line(&stdout, "source danbooru:");
    assert!(
        danbooru.contains(" base_url=http://127.0.0.1:9000/danbooru "),
        "{danbooru}"
    );
    assert!(danbooru.contains(" rate_per_sec=1.5 "), "{danbooru}");
    assert!(
        summary_line(&stdout, "source tbib:").contains(" enabled=false "),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("configuration is valid"));
}

#[test]
fn check_config_reads_the_file_anya_config_names() {
    let file = TempFile::new("anya.toml", CUSTOM);

    let output = check_config(&[("ANYA_CONFIG", file.path())], &[]);

    assert_custom_summary(&output);
}

#[test]
fn check_config_reads_the_file_config_names() {
    let file = TempFile::new("anya.toml", CUSTOM);

    let output = check_config(&[], &[Path::new("--config"), file.path()]);

    assert_custom_summary(&output);
}

#[test]
fn config_wins_over_anya_config() {
    let chosen = TempFile::new("chosen.toml", CUSTOM);
    let ignored = TempFile::new("ignored.toml", "[search]\nmax_pages = 7\n");

    let output = check_config(
        &[("ANYA_CONFIG", ignored.path())],
        &[Path::new("--config"), chosen.path()],
    );

    assert_custom_summary(&output);
}

#[test]
fn check_config_without_a_file_prints_the_defaults() {
    let output = check_config(&[], &[]);

    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        summary_line(&stdout, "search:").contains(" max_pages=100 "),
        "{stdout}"
    );
    let danbooru = summary_line(&stdout, "source danbooru:");
    assert!(
        danbooru.contains(" base_url=https://danbooru.donmai.us "),
        "{danbooru}"
    );
}

/// Bad files, each with the texts its refusal must contain.
const BAD_FILES: [(&str, &[&str]); 3] = [
    (
        "[sources.danbooru]\nrate_per_sec = 0\n",
        &["sources.danbooru.rate_per_sec"],
    ),
    (
        "[sources.danbooru]\nrate_per_secs = 2.0\n",
        &["sources.danbooru", "rate_per_secs"],
    ),
    ("[search]\nmax_pages = 500\n", &["search.max_pages", "500"]),
];

/// Checks that `output` failed, printed no summary, and said each of `named`.
fn assert_refused(output: &Output, named: &[&str]) {
    let stderr = text(&output.stderr);
    assert!(
        !output.status.success(),
        "accepted: {}",
        text(&output.stdout)
    );
    assert!(
        !text(&output.stdout).contains("configuration is valid"),
        "{stderr}"
    );
    for name in named {
        assert!(stderr.contains(name), "{name} not in {stderr}");
    }
}

#[test]
fn a_bad_file_in_anya_config_fails_naming_the_key() {
    for (toml, named) in BAD_FILES {
        let file = TempFile::new("bad.toml", toml);

        let output = check_config(&[("ANYA_CONFIG", file.path())], &[]);

        assert_refused(&output, named);
    }
}

#[test]
fn a_bad_file_in_config_fails_naming_the_key() {
    for (toml, named) in BAD_FILES {
        let file = TempFile::new("bad.toml", toml);

        let output = check_config(&[], &[Path::new("--config"), file.path()]);

        assert_refused(&output, named);
    }
}

#[test]
fn a_missing_file_fails_naming_it() {
    let missing = std::env::temp_dir().join("anya-test-no-such-file.toml");

    let output = check_config(&[("ANYA_CONFIG", missing.as_path())], &[]);

    assert_refused(&output, &["anya-test-no-such-file.toml"]);
}

#[test]
fn a_wrong_type_in_a_file_names_the_key_and_the_file() {
    let file = TempFile::new("typo.toml", "[sources.danbooru]\nrate_per_sec = \"fast\"\n");

    let output = check_config(&[], &[Path::new("--config"), file.path()]);

    let name = file.path().file_name().unwrap().to_str().unwrap();
    assert_refused(&output, &["sources.danbooru.rate_per_sec", name]);
}
