//! Who may call: the optional API keys (`server.api_keys`) and the optional per-client rate
//! limit (`server.client_rate_per_sec`), checked before any handler runs. Both are off by
//! default.
//!
//! `/` and `/healthz` stay open and unlimited, since the platform's health check carries no
//! key and must never be refused. Every other route needs the key, `/metrics` included:
//! request counts and source states are the operator's business, and Prometheus can send a
//! bearer token. Unknown paths need it too, so that a caller without a key learns nothing
//! about which routes exist.
//!
//! The limit is checked before the key, so that guessing keys is throttled like any other
//! request.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::error::ApiError;
use crate::config::{Secret, ServerConfig};

/// Paths anyone may call, without a key and without a limit.
pub const OPEN_PATHS: [&str; 2] = ["/", "/healthz"];

/// The header a proxy names the original client in.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Checks between two prunings of the per-client limiter's table.
const PRUNE_EVERY_CHECKS: u64 = 1024;

/// The access rules of one deployment.
#[derive(Debug)]
pub struct Access {
    keys: Vec<Secret>,
    limiter: Option<ClientLimiter>,
    /// `None` when `X-Forwarded-For` is not trusted, else the trusted proxies in front.
    forwarded_hops: Option<usize>,
}

impl Access {
    /// The rules `server` configures.
    pub fn new(server: &ServerConfig) -> Access {
        Access {
            keys: server.api_keys.clone(),
            limiter: ClientLimiter::new(server.client_rate_per_sec, server.client_burst),
            forwarded_hops: (server.trust_forwarded_for)
                .then_some(server.trusted_proxy_hops as usize),
        }
    }

    /// Wraps every route of `routes`, fallbacks included, in these rules; with neither keys
    /// nor a limit, `routes` is returned as it is.
    pub fn apply(self, routes: Router) -> Router {
        if self.keys.is_empty() && self.limiter.is_none() {
            return routes;
        }
        routes.layer(middleware::from_fn_with_state(Arc::new(self), guard))
    }

    /// Lets `request` through or says why not.
    fn admit(&self, request: &Request) -> Result<(), ApiError> {
        if let Some(limiter) = &self.limiter {
            limiter.check(self.client_of(request))?;
        }
        self.authorize(request.headers())
    }

    /// Who sent `request`, as the limiter counts clients.
    ///
    /// Without a peer address (a router driven in memory rather than served) and without a
    /// trusted forwarded address, all such requests share one budget.
    fn client_of(&self, request: &Request) -> IpAddr {
        let forwarded =
            (self.forwarded_hops).and_then(|hops| forwarded_client(request.headers(), hops));
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        forwarded
            .or(peer)
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), client_key)
    }

    /// Accepts a request when no keys are configured or its bearer token is one of them.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.keys.is_empty() {
            return Ok(());
        }
        let Some(token) = bearer_token(headers) else {
            return Err(ApiError::Unauthorized { key_given: false });
        };
        // Every key is compared, so the time taken does not tell which one nearly matched.
        let matched = self.keys.iter().fold(false, |matched, key| {
            matched | constant_time_eq(key.expose().as_bytes(), token)
        });
        match matched {
            true => Ok(()),
            false => Err(ApiError::Unauthorized { key_given: true }),
        }
    }
}

/// The middleware: open paths pass, others must be admitted.
async fn guard(
    State(access): State<Arc<Access>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !OPEN_PATHS.contains(&request.uri().path()) {
        access.admit(&request)?;
    }
    Ok(next.run(request).await)
}

/// A governor limiter with one budget per client address, on clock `C` (the real one
/// outside tests).
#[derive(Debug)]
struct ClientLimiter<C: Clock = DefaultClock> {
    limiter: RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<C::Instant>>,
    checks: AtomicU64,
}

impl ClientLimiter {
    /// A limiter of `rate_per_sec` with `burst`, or `None` when the rate is 0 (off).
    fn new(rate_per_sec: f64, burst: u32) -> Option<ClientLimiter> {
        ClientLimiter::with_clock(rate_per_sec, burst, DefaultClock::default())
    }
}

impl<C: Clock> ClientLimiter<C> {
    fn with_clock(rate_per_sec: f64, burst: u32, clock: C) -> Option<ClientLimiter<C>> {
        if rate_per_sec <= 0.0 {
            return None;
        }
        let period = Duration::from_secs_f64(1.0 / rate_per_sec);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .expect("configuration validation keeps the client rate finite and positive")
            .allow_burst(burst);
        Some(ClientLimiter {
            limiter: RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock),
            checks: AtomicU64::new(0),
        })
    }

    /// Spends one request of `client`'s budget, or says how long until one is back.
    fn check(&self, client: IpAddr) -> Result<(), ApiError> {
        let outcome = self.limiter.check_key(&client);
        self.prune_now_and_then();
        outcome.map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            ApiError::RateLimited {
                retry_after_secs: retry_after_secs(wait),
            }
        })
    }

    /// Forgets clients whose budget is full again, every [`PRUNE_EVERY_CHECKS`] checks: a
    /// forgotten client starts afresh exactly as if it were remembered, and the table stays
    /// bounded by the clients seen within one refill time rather than growing forever.
    fn prune_now_and_then(&self) {
        let checks = self.checks.fetch_add(1, Ordering::Relaxed) + 1;
        if checks % PRUNE_EVERY_CHECKS == 0 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }

    #[cfg(test)]
    fn clients_remembered(&self) -> usize {
        self.limiter.len()
    }
}

/// Whole seconds to wait, rounded up and at least 1, as `Retry-After` gives them.
fn retry_after_secs(wait: Duration) -> u64 {
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    whole.max(1)
}

/// The client named in `X-Forwarded-For` (all its headers, in order), among the items that
/// parse as an address, with or without a port (items such as `unknown` are skipped).
///
/// Each proxy appends the address that connected to it, so behind `hops` trusted proxies
/// the client is the `hops`-th address from the right: what a client sent itself stands to
/// the left of it and cannot move it. With `hops` 0, or a header shorter than that, the
/// left-most address counts.
fn forwarded_client(headers: &HeaderMap, hops: usize) -> Option<IpAddr> {
    let addresses: Vec<IpAddr> = (headers.get_all(X_FORWARDED_FOR).iter())
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|item| parse_address(item.trim()))
        .collect();
    match hops {
        1.. if addresses.len() >= hops => Some(addresses[addresses.len() - hops]),
        _ => addresses.first().copied(),
    }
}

fn parse_address(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
}

/// The budget an address draws on: an IPv4 address (also when written IPv4-mapped) is one
/// client, and an IPv6 address counts by its /64 network, the block one subscriber holds,
/// so that walking through a network's addresses does not buy fresh budgets.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let network = v6.to_bits() & !u128::from(u64::MAX);
            IpAddr::V6(Ipv6Addr::from_bits(network))
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive.
fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let space = value.iter().position(|byte| *byte == b' ')?;
    let (scheme, rest) = value.split_at(space);
    let token = rest.trim_ascii();
    (scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty()).then_some(token)
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths only, never on
/// where they first differ.
///
/// Hand-written rather than taken from a crate because it is one loop; `black_box` keeps
/// the optimiser from turning the accumulated difference back into an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for index in 0..a.len().max(b.len()) {
        let x = a.get(index).copied().unwrap_or(0);
        let y = b.get(index).copied().unwrap_or(0);
        difference |= usize::from(black_box(x ^ y));
    }
    black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn equal_bytes_compare_equal_and_any_difference_does_not() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"0123456789abcdef", b"0123456789abcdef"));
        for other in [
            &b"0123456789abcdeF"[..],
            b"1123456789abcdef",
            b"0123456789abcde",
            b"0123456789abcdef0",
            b"",
        ] {
            assert!(!constant_time_eq(b"0123456789abcdef", other), "{other:?}");
            assert!(!constant_time_eq(other, b"0123456789abcdef"), "{other:?}");
        }
    }

    #[test]
    fn a_bearer_token_is_read_whatever_the_scheme_case() {
        let token = |value: &str| {
            let headers = headers(&[("authorization", value)]);
            bearer_token(&headers).map(<[u8]>::to_vec)
        };

        for value in ["Bearer abc", "bearer abc", "BEARER  abc  "] {
            assert_eq!(token(value), Some(b"abc".to_vec()), "{value}");
        }
        for value in ["Basic abc", "Bearer", "Bearer   ", "abc", "Bearerabc"] {
            assert_eq!(token(value), None, "{value}");
        }
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    fn forwarded(values: &[&str], hops: usize) -> Option<IpAddr> {
        let pairs: Vec<(&str, &str)> = values.iter().map(|v| (X_FORWARDED_FOR, *v)).collect();
        forwarded_client(&headers(&pairs), hops)
    }

    #[test]
    fn behind_trusted_proxies_the_client_is_counted_from_the_right() {
        let ip = |text: &str| Some(text.parse::<IpAddr>().unwrap());
        // Render: Cloudflare appends the client, Render's proxy appends Cloudflare.
        let render = ["198.51.100.9, 104.22.17.40"];
        assert_eq!(forwarded(&render, 2), ip("198.51.100.9"));
        let forged = ["203.0.113.66, 198.51.100.9, 104.22.17.40"];
        assert_eq!(
            forwarded(&forged, 2),
            ip("198.51.100.9"),
            "what the client sent is left"
        );
        assert_eq!(forwarded(&forged, 1), ip("104.22.17.40"));
        let split = ["203.0.113.66", "unknown, 198.51.100.9", "104.22.17.40:443"];
        assert_eq!(forwarded(&split, 2), ip("198.51.100.9"), "headers and junk");
        assert_eq!(
            forwarded(&["198.51.100.9"], 2),
            ip("198.51.100.9"),
            "a short chain"
        );
        assert_eq!(forwarded(&[], 2), None);
    }

    #[test]
    fn the_left_most_valid_forwarded_address_names_the_client() {
        let found = |values: &[&str]| forwarded(values, 0);

        assert_eq!(
            found(&["203.0.113.7, 10.0.0.1"]),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            found(&["unknown, 198.51.100.2:4711"]),
            Some("198.51.100.2".parse().unwrap())
        );
        assert_eq!(
            found(&["garbage", "[2001:db8::1]:443"]),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(found(&["", "not an address"]), None);
        assert_eq!(found(&[]), None);
    }

    #[test]
    fn ipv6_clients_count_by_their_64_bit_network() {
        let key = |text: &str| client_key(text.parse().unwrap());

        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.9"), key("192.0.2.9"));
        assert_ne!(key("192.0.2.9"), key("192.0.2.10"));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
        assert_eq!(retry_after_secs(Duration::from_secs(999)), 999);
    }

    #[test]
    fn each_client_has_its_own_budget() {
        let limiter = ClientLimiter::new(0.001, 2).unwrap();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();

        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(a).is_ok());
        let refused = limiter.check(a).unwrap_err();
        assert!(
            matches!(refused, ApiError::RateLimited { retry_after_secs } if retry_after_secs > 900),
            "{refused:?}"
        );
        assert!(limiter.check(b).is_ok());
    }

    #[test]
    fn clients_with_a_full_budget_are_forgotten() {
        let clock = FakeRelativeClock::default();
        let limiter = ClientLimiter::with_clock(1.0, 1, clock.clone()).unwrap();
        for n in 0..PRUNE_EVERY_CHECKS - 1 {
            let _ = limiter.check(IpAddr::V4(Ipv4Addr::from_bits(n as u32)));
        }
        assert_eq!(limiter.clients_remembered() as u64, PRUNE_EVERY_CHECKS - 1);
        clock.advance(Duration::from_secs(2));

        let _ = limiter.check(IpAddr::V4(Ipv4Addr::BROADCAST));

        assert_eq!(limiter.clients_remembered(), 1, "only the client just seen");
    }

    #[test]
    fn no_keys_and_no_rate_means_no_layer() {
        let config = crate::config::Config::from_toml("").unwrap();
        let access = Access::new(&config.server);

        assert!(access.keys.is_empty() && access.limiter.is_none());
    }
}
