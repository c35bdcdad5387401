//! The real service pointed at an in-process simulator: the harness of every test that
//! searches.

use anya_image_api::app::AppState;
use anya_image_api::config::{Config, SOURCE_ORDER};
use anya_image_api::server::{self, ServerHandle};
use anya_sim::{SimHandle, Simulator, World};
use serde_json::Value;

/// A simulator serving a world and the service configured to reach it.
pub struct Stack {
    pub sim: SimHandle,
    pub state: AppState,
    pub server: ServerHandle,
    pub http: reqwest::Client,
}

/// Starts the simulator with `world`, then the service with every built-in source that the
/// world holds pointed at it (the others disabled), fast limits so tests do not wait on
/// pacing, and `overrides` (TOML) on top.
pub async fn start(world: World, overrides: &str) -> Stack {
    start_layered(world, &[overrides]).await
}

/// Like [`start`] with several override layers, later ones winning.
pub async fn start_layered(world: World, overrides: &[&str]) -> Stack {
    start_with(world, |_| {
        overrides.iter().map(|layer| layer.to_string()).collect()
    })
    .await
}

/// Like [`start_layered`], with override layers built once the simulator runs and its
/// address is known: for sources beyond the six built-in ones, which [`sources_toml`] does
/// not configure.
pub async fn start_with(world: World, layers: impl FnOnce(&SimHandle) -> Vec<String>) -> Stack {
    let sim = Simulator::start(world).await.expect("the simulator starts");
    let mut all = vec![sources_toml(&sim)];
    all.extend(layers(&sim));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let config = Config::from_toml_layers(&all).expect("test configuration is valid");
    let state = AppState::new(config).expect("the HTTP client builds");
    let server = server::spawn(state.clone())
        .await
        .expect("a loopback port is free");
    Stack {
        sim,
        state,
        server,
        http: super::client(),
    }
}

/// Configuration pointing the six built-in sources at `sim`, or disabling those it lacks,
/// with fast limits and a 30 s search deadline.
pub fn sources_toml(sim: &SimHandle) -> String {
    let served = sim.sources();
    let mut toml = String::from("[search]\ndeadline_secs = 30\n");
    for id in SOURCE_ORDER {
        toml.push_str(&format!("[sources.{id}]\n"));
        if served.iter().any(|source| source == id) {
            toml.push_str(&format!(
                "base_url = \"{}\"\nrate_per_sec = 1000.0\nconcurrency = 16\nbackoff_base_secs = 0.01\n",
                sim.base_url(id)
            ));
        } else {
            toml.push_str("enabled = false\n");
        }
    }
    toml
}

impl Stack {
    /// `GET path` (with its query) and the JSON answer.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.server.url(path))
            .send()
            .await
            .expect("the service answers");
        super::json_of(response).await
    }

    /// `POST path` with a JSON body and the JSON answer.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.server.url(path))
            .json(body)
            .send()
            .await
            .expect("the service answers");
        super::json_of(response).await
    }

    /// A successful search's JSON answer for the query string `query`.
    pub async fn search(&self, query: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/search?{query}")).await;
        assert_eq!(status, 200, "search {query} failed: {body}");
        body
    }
}

/// The md5s of a search answer's images, in order.
pub fn md5s(answer: &Value) -> Vec<String> {
    answer["images"]
        .as_array()
        .expect("images is an array")
        .iter()
        .map(|image| image["md5"].as_str().unwrap_or_default().to_string())
        .collect()
}
