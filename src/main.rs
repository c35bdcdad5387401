//! The `anya-image-api` binary: parses the command line, starts logging, loads the
//! configuration and hands over to the library.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anya_image_api::app::AppState;
use anya_image_api::config::Config;
use anya_image_api::{server, telemetry};
use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing::{error, info};

/// Finds every image of a character on six image boards, merged and de-duplicated by MD5.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file layered over the built-in configuration.
    #[arg(long, global = true, env = "ANYA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API until SIGTERM or Ctrl-C (the default).
    Serve,
    /// Validate the configuration and print its effective summary.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = telemetry::init() {
        // Logging is what failed, so standard error is the only place left to say so.
        let _ = writeln!(std::io::stderr(), "cannot start logging: {err}");
        return ExitCode::FAILURE;
    }

    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => run_serve(cli.config.as_deref()),
        Command::CheckConfig => check_config(cli.config.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

fn check_config(path: Option<&Path>) -> anyhow::Result<()> {
    let config = load(path)?;
    let mut stdout = std::io::stdout().lock();
    for line in telemetry::config_summary(&config) {
        writeln!(stdout, "{line}")?;
    }
    writeln!(stdout, "configuration is valid")?;
    Ok(())
}

fn run_serve(path: Option<&Path>) -> anyhow::Result<()> {
    info!("{}", telemetry::banner());
    let config = load(path)?;
    info!(
        "configuration: {}",
        telemetry::config_summary(&config).join("; ")
    );

    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Installed before the socket opens, so no signal can find the process without them.
    let shutdown = server::shutdown_signal();
    let addr = SocketAddr::new(config.server.host, config.server.port);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let state = AppState::new(config).context("cannot build the HTTP client")?;
    info!(address = %listener.local_addr()?, "listening");

    server::serve(listener, state, shutdown).await?;
    info!("stopped");
    Ok(())
}
