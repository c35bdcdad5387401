//! `load`: a bounded HTTP load client for the load test (`scripts/load-test.sh`).
//!
//! Usage: `load --base URL --concurrency N --timeout-secs S < PATHS`. Reads one request
//! target per line from standard input (`/v1/search?character=...`), sends each once as a
//! GET to `URL` + target with `N` requests at a time, and prints one JSON summary line:
//! answers by status, transport errors, timeouts and latency percentiles. Every request is
//! waited for (up to its timeout), so "answered" means answered, unlike a load tool that
//! stops at a fixed duration and drops what is still in flight.
//!
//! Exits 0 when every request got an answer below 500, 1 otherwise, 2 on bad usage.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;

const USAGE: &str = "usage: load --base URL --concurrency N --timeout-secs S < PATHS";

/// The command line.
#[derive(Debug)]
struct Options {
    base: String,
    concurrency: usize,
    timeout: Duration,
}

/// How one request ended.
#[derive(Debug)]
enum Outcome {
    Status(u16),
    Timeout,
    Error(String),
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "{message}; {USAGE}");
            return ExitCode::from(2);
        }
    };
    let paths: Vec<String> = std::io::stdin()
        .lock()
        .lines()
        .map_while(Result::ok)
        .filter(|line| !line.trim().is_empty())
        .collect();
    let started = Instant::now();
    let results = run(&options, paths).await;
    let summary = summarise(&results, started.elapsed());
    let _ = writeln!(std::io::stdout(), "{summary}");
    if summary["ok"] == json!(true) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Sends every path, `concurrency` at a time, and returns how each ended and how long it
/// took.
async fn run(options: &Options, paths: Vec<String>) -> Vec<(Outcome, Duration)> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency)
        .build()
        .expect("a plain HTTP client builds");
    let base = Arc::new(options.base.trim_end_matches('/').to_owned());
    let timeout = options.timeout;
    futures::stream::iter(paths)
        .map(|path| {
            let (client, base) = (client.clone(), Arc::clone(&base));
            async move {
                let started = Instant::now();
                let outcome = send(&client, &format!("{base}{path}"), timeout).await;
                (outcome, started.elapsed())
            }
        })
        .buffer_unordered(options.concurrency)
        .collect()
        .await
}

/// One GET, its body read to the end.
async fn send(client: &reqwest::Client, url: &str, timeout: Duration) -> Outcome {
    let request = async {
        let response = client.get(url).send().await?;
        let status = response.status().as_u16();
        response.bytes().await?;
        Ok::<u16, reqwest::Error>(status)
    };
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(status)) => Outcome::Status(status),
        Ok(Err(error)) => Outcome::Error(error.to_string()),
        Err(_) => Outcome::Timeout,
    }
}

fn summarise(results: &[(Outcome, Duration)], elapsed: Duration) -> serde_json::Value {
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let (mut timeouts, mut errors, mut first_error) = (0u64, 0u64, None);
    for (outcome, _) in results {
        match outcome {
            Outcome::Status(status) => *statuses.entry(status.to_string()).or_default() += 1,
            Outcome::Timeout => timeouts += 1,
            Outcome::Error(error) => {
                errors += 1;
                first_error.get_or_insert_with(|| error.clone());
            }
        }
    }
    let server_errors: u64 = (statuses.iter())
        .filter(|(status, _)| status.starts_with('5'))
        .map(|(_, n)| n)
        .sum();
    let mut latencies: Vec<Duration> = results.iter().map(|(_, took)| *took).collect();
    latencies.sort();
    let ms = |q: f64| percentile(&latencies, q).as_millis() as u64;
    json!({
        "requests": results.len(),
        "statuses": statuses,
        "server_errors": server_errors,
        "timeouts": timeouts,
        "transport_errors": errors,
        "first_transport_error": first_error,
        "elapsed_ms": elapsed.as_millis() as u64,
        "requests_per_sec": (results.len() as f64 / elapsed.as_secs_f64().max(1e-9)).round(),
        "latency_ms": { "p50": ms(0.50), "p95": ms(0.95), "p99": ms(0.99), "max": ms(1.0) },
        "ok": server_errors == 0 && timeouts == 0 && errors == 0,
    })
}

/// The `q` quantile of sorted `values` (nearest rank); zero when there are none.
fn percentile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

fn parse(args: &[String]) -> Result<Options, String> {
    let (mut base, mut concurrency, mut timeout) = (None, 64, Duration::from_secs(60));
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().ok().filter(|n| *n > 0);
        match flag.as_str() {
            "--base" => base = Some(value.clone()),
            "--concurrency" => {
                concurrency = number().ok_or(format!("bad --concurrency {value:?}"))? as usize;
            }
            "--timeout-secs" => {
                timeout =
                    Duration::from_secs(number().ok_or(format!("bad --timeout-secs {value:?}"))?);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Options {
        base: base.ok_or("--base is required")?,
        concurrency,
        timeout,
    })
}
