//! `anya-sim`: serves [`World::standard`] (or [`World::big`]) on a loopback port until
//! Ctrl-C or SIGTERM.
//!
//! Usage: `anya-sim [--port N] [--latency-ms MIN-MAX] [--world standard|big]
//! [--posts-per-source N]` (port 9000 by default; latency off unless given, a single number
//! meaning a fixed delay; `--posts-per-source` sizes the big world, 10000 by default). Logs
//! the base URL of each source and the environment lines that point anya-image-api at them.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anya_sim::{SimHandle, Simulator, World};
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: anya-sim [--port N] [--latency-ms MIN-MAX] [--world standard|big] \
                     [--posts-per-source N]";

/// Anya posts per source of the big world when `--posts-per-source` is not given: 100 pages
/// of 100 posts.
const BIG_POSTS_PER_SOURCE: u64 = 10_000;

/// The command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    port: u16,
    latency: Option<(Duration, Duration)>,
    /// `None` for the standard world, else the big world's posts per source.
    big: Option<u64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        // Help text is this command's product, so it goes to stdout.
        let _ = writeln!(std::io::stdout(), "{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match parse(&args) {
        Ok(options) => options,
        Err(message) => {
            tracing::error!("{message}; {USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "anya-sim stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> std::io::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], options.port));
    let world = options.big.map_or_else(World::standard, World::big);
    let sim = Simulator::start_on(world, addr).await?;
    if let Some((min, max)) = options.latency {
        sim.sources()
            .iter()
            .for_each(|s| sim.set_latency(s, min, max));
    }
    announce(&sim);
    stop_signal().await;
    tracing::info!("anya-sim shutting down");
    sim.shutdown().await;
    Ok(())
}

fn announce(sim: &SimHandle) {
    tracing::info!(addr = %sim.addr(), "anya-sim listening; control API under /_sim/");
    for source in sim.sources() {
        tracing::info!(source, base_url = %sim.base_url(&source), "simulated source");
    }
    for source in sim.sources() {
        let key = source.to_uppercase();
        tracing::info!(
            "export ANYA_SOURCES__{key}__BASE_URL={}",
            sim.base_url(&source)
        );
    }
}

/// Ctrl-C, or SIGTERM where there is one.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    // Without a handler there is no other way to stop, so an error just ends the wait.
    let _ = tokio::signal::ctrl_c().await;
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        port: 9000,
        latency: None,
        big: None,
    };
    let mut posts = None;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let mut value = || rest.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => {
                let text = value()?;
                options.port = text.parse().map_err(|_| format!("bad --port {text:?}"))?;
            }
            "--latency-ms" => options.latency = Some(parse_latency(value()?)?),
            "--world" => match value()?.as_str() {
                "standard" => options.big = None,
                "big" => options.big = Some(BIG_POSTS_PER_SOURCE),
                other => return Err(format!("bad --world {other:?}, expected standard or big")),
            },
            "--posts-per-source" => {
                let text = value()?;
                let n = text.parse::<u64>().ok().filter(|n| *n > 0);
                posts = Some(n.ok_or_else(|| format!("bad --posts-per-source {text:?}"))?);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    match (options.big, posts) {
        (Some(_), Some(n)) => options.big = Some(n),
        (None, Some(_)) => return Err("--posts-per-source needs --world big".into()),
        _ => {}
    }
    Ok(options)
}

/// `MIN-MAX` or `N` milliseconds.
fn parse_latency(text: &str) -> Result<(Duration, Duration), String> {
    let (min, max) = text.split_once('-').unwrap_or((text, text));
    let ms = |s: &str| s.trim().parse::<u64>().map(Duration::from_millis);
    match (ms(min), ms(max)) {
        (Ok(min), Ok(max)) if min <= max => Ok((min, max)),
        _ => Err(format!(
            "bad --latency-ms {text:?}, expected MIN-MAX in milliseconds"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_port_and_latency() {
        let options = parse(&args(&["--port", "9100", "--latency-ms", "20-80"])).unwrap();
        assert_eq!(options.port, 9100);
        let ms = Duration::from_millis;
        assert_eq!(options.latency, Some((ms(20), ms(80))));
        assert_eq!(parse_latency("5"), Ok((ms(5), ms(5))));
        assert!(parse(&args(&["--latency-ms", "80-20"])).is_err());
        assert!(parse(&args(&["--port"])).is_err());
        assert!(parse(&args(&["--verbose"])).is_err());
    }

    #[test]
    fn reads_the_world() {
        assert_eq!(parse(&args(&[])).unwrap().big, None);
        let big = parse(&args(&["--world", "big"])).unwrap();
        assert_eq!(big.big, Some(BIG_POSTS_PER_SOURCE));
        let sized = parse(&args(&["--posts-per-source", "500", "--world", "big"])).unwrap();
        assert_eq!(sized.big, Some(500));
        assert!(parse(&args(&["--posts-per-source", "500"])).is_err());
        assert!(parse(&args(&["--world", "huge"])).is_err());
        assert!(parse(&args(&["--world", "big", "--posts-per-source", "0"])).is_err());
    }
}
