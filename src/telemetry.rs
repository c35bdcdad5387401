//! Logging: the subscriber (human text or JSON lines, level from `RUST_LOG`) and what the
//! process says about itself at start-up (banner and configuration summary).
//!
//! [`subscriber`] takes any `MakeWriter`, so a test can capture the output and check it;
//! [`init`] installs the process-wide one on standard error.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::util::TryInitError;

use crate::api::sources::shown_base_url;
use crate::config::Config;
use crate::sources::Site;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Text for people; `color` adds ANSI colours, for terminals only.
    Human { color: bool },
    /// One JSON object per line, with the fields of the event and of its spans.
    Json,
}

impl LogFormat {
    /// `Json` when `LOG_FORMAT` is `json`; otherwise text, coloured when standard error is
    /// a terminal.
    pub fn from_env() -> LogFormat {
        let color = std::io::stderr().is_terminal();
        LogFormat::parse(std::env::var("LOG_FORMAT").ok().as_deref(), color)
    }

    /// The format a `LOG_FORMAT` value names; anything but `json` (any case) means text.
    pub fn parse(value: Option<&str>, color: bool) -> LogFormat {
        match value.map(str::trim) {
            Some(name) if name.eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Human { color },
        }
    }
}

/// The filter `RUST_LOG` asks for, or `info` when it is unset; invalid directives are
/// skipped rather than stopping the service.
pub fn env_filter() -> EnvFilter {
    EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env_lossy()
}

/// A subscriber that writes events passing `filter` to `writer` in `format`.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Human { color } => Box::new(builder.with_ansi(color).finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(true)
                .finish(),
        ),
    }
}

/// Installs the process-wide subscriber from `LOG_FORMAT` and `RUST_LOG`, writing to
/// standard error, and routes panic reports through it so JSON logs stay JSON.
pub fn init() -> Result<(), TryInitError> {
    subscriber(LogFormat::from_env(), env_filter(), std::io::stderr).try_init()?;
    std::panic::set_hook(Box::new(|panic| {
        tracing::error!(panic = %panic, "panicked");
    }));
    Ok(())
}

/// The start-up banner, `ANYA IMAGE API v<version>`.
pub fn banner() -> String {
    format!("ANYA IMAGE API v{}", env!("CARGO_PKG_VERSION"))
}

/// The effective configuration, one line per section and per source, never a credential's
/// value: whether a source has credentials shows as `credentials=true`, and the service's
/// own API keys only by their number.
pub fn config_summary(config: &Config) -> Vec<String> {
    let server = &config.server;
    let mut lines = vec![
        format!(
            "server: listen={}:{} body_limit_bytes={} shutdown_grace_secs={} api_keys={} \
             client_rate_per_sec={} client_burst={} trust_forwarded_for={} \
             trusted_proxy_hops={}",
            server.host,
            server.port,
            server.body_limit_bytes,
            server.shutdown_grace_secs,
            server.api_keys.len(),
            server.client_rate_per_sec,
            server.client_burst,
            server.trust_forwarded_for,
            server.trusted_proxy_hops,
        ),
        format!(
            "search: deadline_secs={} max_pages={} tag_candidates={} max_images={}",
            config.search.deadline_secs,
            config.search.max_pages,
            config.search.tag_candidates,
            config.search.max_images
        ),
        format!(
            "cache: ttl_secs={} partial_ttl_secs={} max_bytes={}",
            config.cache.ttl_secs, config.cache.partial_ttl_secs, config.cache.max_bytes
        ),
        format!(
            "upstream: connect_timeout_secs={} max_body_bytes={}",
            config.upstream.connect_timeout_secs, config.upstream.max_body_bytes
        ),
    ];
    lines.extend(config.sources_in_order().into_iter().map(|(id, source)| {
        format!(
            "source {id}: family={} base_url={} enabled={} rate_per_sec={} burst={} \
             concurrency={} page_size={} credentials={}",
            source.family.as_str(),
            shown_base_url(&source.base_url),
            source.enabled,
            source.rate_per_sec,
            source.burst,
            source.concurrency,
            source.page_size,
            Site::new(id, source).credentials.is_some(),
        )
    }));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_is_json_only_when_asked() {
        assert_eq!(LogFormat::parse(Some("json"), false), LogFormat::Json);
        assert_eq!(LogFormat::parse(Some(" JSON "), true), LogFormat::Json);
        assert_eq!(
            LogFormat::parse(Some("text"), true),
            LogFormat::Human { color: true }
        );
        assert_eq!(
            LogFormat::parse(None, false),
            LogFormat::Human { color: false }
        );
    }

    #[test]
    fn banner_names_the_version() {
        assert_eq!(
            banner(),
            format!("ANYA IMAGE API v{}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn summary_shows_sources_in_order_without_credential_values() {
        let config = Config::from_toml(
            r#"
            [server]
            api_keys = ["service-key-value-0001"]
            [sources.danbooru]
            login = "anya-login-value"
            api_key = "danbooru-key-value"
            [sources.gelbooru]
            user_id = 424242
            api_key = "gelbooru-key-value"
            "#,
        )
        .unwrap();

        let summary = config_summary(&config).join("\n");

        for secret in [
            "anya-login-value",
            "danbooru-key-value",
            "424242",
            "gelbooru-key-value",
            "service-key-value-0001",
        ] {
            assert!(!summary.contains(secret), "{secret} leaked:\n{summary}");
        }
        assert!(summary.contains(
            "source danbooru: family=danbooru base_url=https://danbooru.donmai.us enabled=true \
             rate_per_sec=2 burst=1 concurrency=6 page_size=200 credentials=true"
        ));
        assert!(summary.contains("api_keys=1 client_rate_per_sec=0"));
        assert!(summary.contains("source yandere: family=moebooru"));
        assert!(summary.contains("credentials=false"));
        let safebooru = summary.find("source safebooru").unwrap();
        let tbib = summary.find("source tbib").unwrap();
        assert!(safebooru < tbib);
    }
}
