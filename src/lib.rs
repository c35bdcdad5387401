//! anya-image-api finds every image of a character on six image boards, merges them and
//! removes duplicates by MD5.
//!
//! The modules follow the data flow of a search:
//!
//! - [`api`]: the axum router, request validation and the one mapping of errors to HTTP.
//! - [`cache`]: the result cache (two-hour TTL) and single flight of identical searches.
//! - [`search`]: one search: tag discovery, parallel paging per source, merge.
//! - [`sources`]: the upstream driver (limits, permits, retries, circuit breaker, body caps)
//!   and one adapter per API family.
//! - [`config`]: the layered, validated configuration.
//! - [`model`]: the vocabulary the layers share.
//!
//! Around them: [`app`] holds the state every request shares, [`server`] serves the router
//! with a graceful stop, [`telemetry`] sets up logging, [`metrics`] keeps the Prometheus
//! registry, and [`gzip`] assembles compressed answers from pieces deflated once. The
//! binary (`src/main.rs`) only parses its command line and calls these. The upstream
//! simulator the tests run against is the `anya-sim` crate in `sim/`.

pub mod api;
pub mod app;
pub mod cache;
pub mod config;
pub mod gzip;
pub mod metrics;
pub mod model;
pub mod search;
pub mod server;
pub mod sources;
pub mod telemetry;
