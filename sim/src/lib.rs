//! anya-sim simulates the six image boards anya-image-api reads (Danbooru, Gelbooru,
//! Safebooru, TBIB, Yande.re, Konachan) on one loopback port, under per-source path
//! prefixes: `http://127.0.0.1:PORT/<source>/...`.
//!
//! Integration tests build a [`World`], start it with [`Simulator::start`], point the
//! service at [`SimHandle::base_url`], inject latency and [`Fault`]s, and assert on the
//! [`RecordedRequest`]s. The `anya-sim` binary serves [`World::standard`] for development
//! and load tests, steered over HTTP under `/_sim/`.
//!
//! Modules, from data to wire:
//!
//! - `world`: the builder of sources, tags, aliases and posts.
//! - `post`: ratings, post specs, the per-image MD5, recorded post facts.
//! - `recorded`: finding post objects in recorded response bodies.
//! - `standard`: the Spy x Family scenario of [`World::standard`].
//! - `catalog`: a source frozen for serving, and the tag searches.
//! - `query`: the `tags` query language of each family.
//! - `families`: one file per API family, turning a request into a reply.
//! - `fault`: injected failures and the rules selecting requests for them.
//! - `service`: the per-request pipeline and live per-source settings.
//! - `server`: the accept loop, connection resets and [`SimHandle`].
//! - `control`: the `/_sim/` HTTP API.
//! - `record`: the request log.
//! - `dates`: the upstreams' timestamp formats.

mod catalog;
mod control;
mod dates;
mod families;
mod fault;
mod post;
mod query;
mod record;
mod recorded;
mod server;
mod service;
mod standard;
mod world;

pub use fault::{Fault, FaultRule};
pub use post::{PostSpec, Rating, image_md5};
pub use record::RecordedRequest;
pub use server::{SimHandle, Simulator};
pub use world::{SimFamily, SimSource, World};
