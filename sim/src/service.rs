//! The per-request pipeline (record, count in flight, fault, latency, answer) and the
//! live per-source settings it reads: faults, latency and in-flight counters.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, header};
use hyper::body::Incoming;

use crate::catalog::SourceData;
use crate::control;
use crate::families::{self, Reply, SourceRequest};
use crate::fault::{self, Action, Fault, FaultRule};
use crate::record::{RecordedRequest, RequestLog};
use crate::server::ConnControl;

/// Locks a mutex, carrying on after a panic elsewhere: every guarded value here stays
/// consistent between statements, so a poisoned lock holds nothing half-written.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Live settings and counters of one source id.
#[derive(Debug, Default)]
pub(crate) struct Runtime {
    faults: Mutex<Vec<FaultRule>>,
    latency: Mutex<(Duration, Duration)>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// Counts a request as in flight for as long as it lives.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Runtime>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Runtime {
    fn enter(self: &Arc<Self>) -> InFlight {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(Arc::clone(self))
    }

    /// The fault of the first rule that accepts the request, using up one of its times.
    fn take_fault(&self, target: &str, params: &[(String, String)]) -> Option<Fault> {
        let mut rules = lock(&self.faults);
        rules.retain(|rule| rule.times != Some(0));
        let at = rules.iter().position(|rule| rule.matches(target, params))?;
        let fault = rules[at].fault.clone();
        if let Some(times) = &mut rules[at].times {
            *times -= 1;
            if *times == 0 {
                rules.remove(at);
            }
        }
        Some(fault)
    }

    pub fn add_fault(&self, rule: FaultRule) {
        lock(&self.faults).push(rule);
    }

    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    pub fn set_latency(&self, min: Duration, max: Duration) {
        *lock(&self.latency) = (min, max.max(min));
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// Starts a new maximum from the requests open now.
    fn reset_max(&self) {
        let now = self.in_flight.load(Ordering::SeqCst);
        self.max_in_flight.store(now, Ordering::SeqCst);
    }
}

/// Everything a running simulator shares between connections.
#[derive(Debug)]
pub(crate) struct State {
    pub sources: HashMap<String, SourceData>,
    /// Source ids in the order the world created them.
    pub order: Vec<String>,
    runtimes: Mutex<HashMap<String, Arc<Runtime>>>,
    log: Mutex<RequestLog>,
    pub started: Instant,
    pub addr: SocketAddr,
    rng: AtomicU64,
}

impl State {
    pub fn new(sources: Vec<SourceData>, addr: SocketAddr) -> State {
        let order = sources.iter().map(|s| s.id.clone()).collect();
        State {
            sources: sources.into_iter().map(|s| (s.id.clone(), s)).collect(),
            order,
            runtimes: Mutex::default(),
            log: Mutex::default(),
            started: Instant::now(),
            addr,
            rng: AtomicU64::new(0x2545_f491_4f6c_dd1d ^ u64::from(addr.port())),
        }
    }

    /// `http://127.0.0.1:PORT/<source>`.
    pub fn base_url(&self, source: &str) -> String {
        format!("http://{}/{source}", self.addr)
    }

    /// The live settings of a source id, created on first use so faults and latency can
    /// be set for ids the world does not serve.
    pub fn runtime(&self, source: &str) -> Arc<Runtime> {
        let mut runtimes = lock(&self.runtimes);
        Arc::clone(runtimes.entry(source.to_owned()).or_default())
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.log).all()
    }

    /// Forgets the logged requests and restarts every in-flight maximum.
    pub fn clear_requests(&self) {
        lock(&self.log).clear();
        lock(&self.runtimes).values().for_each(|r| r.reset_max());
    }

    /// A uniform draw from `[min, max]` with xorshift64*; no cryptographic quality needed.
    fn jitter(&self, min: Duration, max: Duration) -> Duration {
        let step = |x: u64| {
            let x = x ^ (x >> 12);
            let x = x ^ (x << 25);
            x ^ (x >> 27)
        };
        let previous = self
            .rng
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(step(x)));
        let draw = step(previous.unwrap_or_default()).wrapping_mul(0x2545_f491_4f6c_dd1d);
        let span = (max - min).as_micros() as u64;
        min + Duration::from_micros(if span == 0 { 0 } else { draw % (span + 1) })
    }

    async fn delay(&self, runtime: &Runtime) {
        let (min, max) = *lock(&runtime.latency);
        if !max.is_zero() {
            tokio::time::sleep(self.jitter(min, max)).await;
        }
    }
}

/// Answers one HTTP request on a connection.
pub(crate) async fn handle(
    state: Arc<State>,
    conn: Arc<ConnControl>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path();
    if path == "/_sim" || path.starts_with("/_sim/") {
        return Ok(control::handle(&state, request.map(Body::new)).await);
    }
    Ok(serve_source(&state, &conn, request.uri(), request.headers()).await)
}

/// The text of header `name`, if present and visible ASCII.
fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?;
    Some(value.to_owned())
}

/// The source pipeline: recorded at arrival, counted in flight throughout, then a fault
/// or the family's answer, each after the configured latency (a hang skips it).
async fn serve_source(
    state: &State,
    conn: &ConnControl,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response<Body> {
    let (source, path) = split_source(uri.path());
    let params = decode_query(uri.query());
    let target = uri
        .query()
        .map_or(path.to_owned(), |q| format!("{path}?{q}"));
    let ticket = lock(&state.log).push(RecordedRequest {
        source: source.to_owned(),
        path: path.to_owned(),
        query: params.clone(),
        user_agent: header_text(headers, header::USER_AGENT),
        accept_encoding: header_text(headers, header::ACCEPT_ENCODING),
        at: Instant::now(),
        status: None,
    });
    let runtime = state.runtime(source);
    let _in_flight = runtime.enter();
    let family = state.sources.get(source).map(|s| s.family);
    let fault = runtime
        .take_fault(&target, &params)
        .map(|f| fault::action(&f, family));
    if let Some(Action::Hang) = fault {
        // A hung request ends only when its client gives up (so it stops counting in
        // flight) or at shutdown, when the connection task drops it; it never answers.
        conn.client_gone().await;
        return conn.close().await;
    }
    state.delay(&runtime).await;
    let response = match fault {
        Some(Action::Reset) => conn.reset().await,
        Some(Action::Respond(response)) => response,
        _ => into_response(answer(state, source, path, &params)),
    };
    lock(&state.log).set_status(ticket, response.status().as_u16());
    response
}

/// `/danbooru/posts.json` → (`danbooru`, `/posts.json`).
fn split_source(path: &str) -> (&str, &str) {
    let rest = path.strip_prefix('/').unwrap_or(path);
    match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    }
}

fn decode_query(query: Option<&str>) -> Vec<(String, String)> {
    let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes());
    pairs.into_owned().collect()
}

fn answer(state: &State, source: &str, path: &str, params: &[(String, String)]) -> Reply {
    let Some(data) = state.sources.get(source) else {
        return Reply {
            status: 404,
            content_type: "text/plain; charset=utf-8",
            body: format!("no simulated source named {source:?}"),
        };
    };
    let base_url = state.base_url(source);
    families::answer(&SourceRequest {
        source: data,
        path,
        params,
        base_url: &base_url,
    })
}

/// Turns a family's reply into an HTTP response.
pub(crate) fn into_response(reply: Reply) -> Response<Body> {
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let content_type = HeaderValue::from_static(reply.content_type);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_source_prefix() {
        assert_eq!(
            split_source("/danbooru/posts.json"),
            ("danbooru", "/posts.json")
        );
        assert_eq!(
            split_source("/danbooru/counts/posts.json"),
            ("danbooru", "/counts/posts.json")
        );
        assert_eq!(split_source("/tbib"), ("tbib", "/"));
    }

    #[test]
    fn faults_are_used_up_in_order() {
        let runtime = Runtime::default();
        runtime.add_fault(FaultRule::times(Fault::Empty, 1).on_param("pid", "1"));
        runtime.add_fault(FaultRule::times(Fault::Malformed, 2));
        let pid1 = vec![("pid".to_owned(), "1".to_owned())];
        assert_eq!(
            runtime.take_fault("/index.php", &[]),
            Some(Fault::Malformed)
        );
        assert_eq!(runtime.take_fault("/index.php", &pid1), Some(Fault::Empty));
        assert_eq!(
            runtime.take_fault("/index.php", &pid1),
            Some(Fault::Malformed)
        );
        assert_eq!(runtime.take_fault("/index.php", &pid1), None);
    }
}
