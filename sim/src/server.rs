//! The listener: its own accept loop so every connection can be killed from a request
//! handler (for [`Fault::Reset`](crate::Fault::Reset)), and the [`SimHandle`] tests and
//! the binary steer a running simulator with.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Response;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::catalog::SourceData;
use crate::fault::FaultRule;
use crate::record::RecordedRequest;
use crate::service::{self, State};
use crate::world::World;

/// Starts simulators.
#[derive(Debug, Clone, Copy)]
pub struct Simulator;

impl Simulator {
    /// Serves `world` on `127.0.0.1` at a free port.
    pub async fn start(world: World) -> std::io::Result<SimHandle> {
        Simulator::start_on(world, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Serves `world` on `addr`; port 0 picks a free port.
    pub async fn start_on(world: World, addr: SocketAddr) -> std::io::Result<SimHandle> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let sources = world.sources.into_iter().map(SourceData::build).collect();
        let state = Arc::new(State::new(sources, addr));
        let server = tokio::spawn(accept_loop(listener, Arc::clone(&state), stopped));
        Ok(SimHandle {
            state,
            stop,
            server: Some(server),
        })
    }
}

/// A running simulator. Dropping it stops the server as [`SimHandle::shutdown`] does,
/// without waiting.
#[derive(Debug)]
pub struct SimHandle {
    state: Arc<State>,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// The address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.state.addr
    }

    /// `http://127.0.0.1:PORT/<source>`, the base URL a client of that source uses.
    pub fn base_url(&self, source: &str) -> String {
        self.state.base_url(source)
    }

    /// The source ids the world serves, in the order it created them.
    pub fn sources(&self) -> Vec<String> {
        self.state.order.clone()
    }

    /// Delays every later answer of `source` by a uniform random time in `[min, max]`;
    /// a zero `max` turns latency off.
    pub fn set_latency(&self, source: &str, min: Duration, max: Duration) {
        self.state.runtime(source).set_latency(min, max);
    }

    /// Adds a fault rule to `source`; rules are tried in the order they were added and the
    /// first that accepts a request applies.
    pub fn add_fault(&self, source: &str, rule: FaultRule) {
        self.state.runtime(source).add_fault(rule);
    }

    /// Removes every fault rule of `source`.
    pub fn clear_faults(&self, source: &str) {
        self.state.runtime(source).clear_faults();
    }

    /// Every request to any source, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// The requests to one source, in arrival order.
    pub fn requests_for(&self, source: &str) -> Vec<RecordedRequest> {
        let mut all = self.requests();
        all.retain(|r| r.source == source);
        all
    }

    /// Forgets the recorded requests and restarts the in-flight maxima from the requests
    /// open now.
    pub fn clear_requests(&self) {
        self.state.clear_requests();
    }

    /// The most requests to `source` open at once since start or the last
    /// [`clear_requests`](SimHandle::clear_requests), latency included.
    pub fn max_in_flight(&self, source: &str) -> usize {
        self.state.runtime(source).max_in_flight()
    }

    /// Stops accepting, drops every open connection (hung requests included) and waits
    /// for the server task to end.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(server) = self.server.take() {
            // A panicked accept loop has nothing left to clean up.
            let _ = server.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut stopped: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    let for_connections = stopped.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve(stream, Arc::clone(&state), for_connections.clone()));
                }
                Err(error) => {
                    // Usually out of file descriptors; pausing lets connections close.
                    tracing::warn!(%error, "simulator failed to accept a connection");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            () = stop_requested(&mut stopped) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// Resolves once shutdown is asked for, or the handle is gone.
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across another await, so it ends here.
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Serves one connection until the client leaves, a handler kills it, or shutdown.
async fn serve(stream: TcpStream, state: Arc<State>, mut stopped: watch::Receiver<bool>) {
    let (stream, control) = match ConnControl::split(stream) {
        Ok(parts) => parts,
        Err(error) => {
            tracing::warn!(%error, "simulator could not prepare a connection");
            return;
        }
    };
    let control = Arc::new(control);
    let handler_control = Arc::clone(&control);
    let service = service_fn(move |request| {
        service::handle(Arc::clone(&state), Arc::clone(&handler_control), request)
    });
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        _ = control.kill.notified() => {}
        () = stop_requested(&mut stopped) => {}
    }
}

/// Lets a request handler end its own connection, and watch it.
///
/// It holds a second handle to the connection's socket, made with `try_clone`: through it
/// a handler sets `SO_LINGER` to zero on the socket hyper owns, so closing sends RST, and
/// notices a client that hung up while its request hangs.
#[derive(Debug)]
pub(crate) struct ConnControl {
    socket: TcpStream,
    kill: Notify,
}

impl ConnControl {
    /// Splits an accepted stream into the one hyper serves and its control.
    fn split(stream: TcpStream) -> std::io::Result<(TcpStream, ConnControl)> {
        let std_stream = stream.into_std()?;
        let clone = std_stream.try_clone()?;
        let control = ConnControl {
            socket: TcpStream::from_std(clone)?,
            kill: Notify::new(),
        };
        Ok((TcpStream::from_std(std_stream)?, control))
    }

    /// Resets the connection: zero linger, then the socket is closed. Never resolves.
    pub async fn reset(&self) -> Response<Body> {
        if let Err(error) = self.socket.set_zero_linger() {
            tracing::warn!(%error, "simulator could not set SO_LINGER; closing without RST");
        }
        self.close().await
    }

    /// Has the connection task drop the connection, and with it the handler calling
    /// this, which is why it never resolves.
    pub async fn close(&self) -> Response<Body> {
        self.kill.notify_one();
        std::future::pending().await
    }

    /// Resolves when the client closes or resets the connection. Bytes already sent
    /// (a pipelined request) make that unknowable, so then it never resolves.
    pub async fn client_gone(&self) {
        let mut probe = [0u8; 1];
        if let Ok(1..) = self.socket.peek(&mut probe).await {
            std::future::pending::<()>().await;
        }
    }
}
