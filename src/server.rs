//! Serving: the router on a listener until a shutdown signal, then a graceful stop that lets
//! requests in flight finish within `server.shutdown_grace_secs`.
//!
//! [`spawn`] runs the same server on `127.0.0.1:0` in the background, for tests and
//! benchmarks that need a real socket.

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::api;
use crate::app::AppState;

/// Serves `state`'s router on `listener` until `shutdown` completes, then stops accepting
/// connections and waits for the requests in flight.
///
/// The wait is bounded by `server.shutdown_grace_secs`; requests still running then are
/// dropped, since the platform kills the process soon after anyway.
pub async fn serve<F>(listener: TcpListener, state: AppState, shutdown: F) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let grace = Duration::from_secs(state.config.server.shutdown_grace_secs);
    let (started_tx, started_rx) = oneshot::channel();
    let signal = async move {
        shutdown.await;
        info!("shutdown started; finishing requests in flight");
        // The receiver lives as long as `serve`; a send can only fail once it returned.
        let _ = started_tx.send(());
    };

    // The peer address is what the per-client rate limit counts by.
    let app = api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    // Answers go out as soon as they are written: without TCP_NODELAY the tail of a large
    // answer can wait for the client's acknowledgement of the part before it.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY could not be set");
        }
    });
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .into_future();
    tokio::select! {
        result = server => result,
        () = grace_expired(started_rx, grace) => {
            warn!(shutdown_grace_secs = grace.as_secs(), "requests still in flight after the grace period; stopping anyway");
            Ok(())
        }
    }
}

/// Completes `grace` after the shutdown started; never, if it does not.
async fn grace_expired(started: oneshot::Receiver<()>, grace: Duration) {
    if started.await.is_err() {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(grace).await;
}

/// Completes on SIGTERM (what Render sends on deploy) or Ctrl-C (SIGINT), after logging
/// which one arrived.
///
/// The handlers are installed when this is called, not when the future is first polled, so
/// a signal that arrives while the server is still starting stops it gracefully instead of
/// killing the process. It must be called inside the Tokio runtime.
#[cfg(unix)]
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::SignalKind;
    let interrupt = listen(SignalKind::interrupt(), "SIGINT");
    let terminate = listen(SignalKind::terminate(), "SIGTERM");
    async move {
        let name = tokio::select! {
            name = interrupt => name,
            name = terminate => name,
        };
        info!(signal = name, "signal received");
    }
}

/// Installs the handler of `kind` now; the future completes with `name` when the signal
/// arrives, and never when the handler could not be installed.
#[cfg(unix)]
fn listen(
    kind: tokio::signal::unix::SignalKind,
    name: &'static str,
) -> impl Future<Output = &'static str> + Send + 'static {
    let stream = match tokio::signal::unix::signal(kind) {
        Ok(stream) => Some(stream),
        Err(err) => {
            error!(error = %err, signal = name, "cannot listen for the signal");
            None
        }
    };
    async move {
        match stream {
            Some(mut stream) => {
                stream.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
        name
    }
}

/// Completes on Ctrl-C, after logging it; other platforms have no SIGTERM.
#[cfg(not(unix))]
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            error!(error = %err, signal = "SIGINT", "cannot listen for the signal");
            std::future::pending::<()>().await;
        }
        info!(signal = "SIGINT", "signal received");
    }
}

/// A server running in the background on a loopback port.
#[derive(Debug)]
pub struct ServerHandle {
    /// Where the server listens (`127.0.0.1` and a port the system chose).
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

/// Starts [`serve`] for `state` on `127.0.0.1:0` in a background task; it runs until
/// [`ServerHandle::stop`] or [`ServerHandle::begin_shutdown`].
pub async fn spawn(state: AppState) -> io::Result<ServerHandle> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let shutdown = async move {
        // A dropped handle stops the server too.
        let _ = shutdown_rx.await;
    };
    let task = tokio::spawn(serve(listener, state, shutdown));
    Ok(ServerHandle {
        addr,
        shutdown: Some(shutdown_tx),
        task,
    })
}

impl ServerHandle {
    /// The absolute URL of `path` (which starts with `/`) on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends the shutdown signal without waiting: the listener closes, requests in flight
    /// go on.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Waits until the server has stopped (after [`ServerHandle::begin_shutdown`]).
    pub async fn stopped(self) -> io::Result<()> {
        self.task.await.map_err(io::Error::other)?
    }

    /// Signals shutdown and waits until the requests in flight are done.
    pub async fn stop(mut self) -> io::Result<()> {
        self.begin_shutdown();
        self.stopped().await
    }
}
