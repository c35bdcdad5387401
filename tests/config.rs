//! Configuration layering and its errors: the built-in default, a `--config` file, then
//! `ANYA_*` variables, then `PORT`; every error names the key at fault.
//!
//! `figment::Jail` gives each test its own environment and working directory; these tests
//! live in their own binary because a jail changes both for the whole process.

#![allow(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment's own Result, whose error is large"
)]

use std::path::Path;

use anya_image_api::config::Config;
use figment::Jail;

/// Loads the layered configuration, its error as a jail error so `?` works in a jail.
fn load(file: Option<&str>) -> figment::error::Result<Config> {
    Config::load(file.map(Path::new)).map_err(|err| err.to_string().into())
}

fn load_error(file: Option<&str>) -> String {
    Config::load(file.map(Path::new))
        .expect_err("the configuration is invalid")
        .to_string()
}

#[test]
fn the_built_in_configuration_loads() {
    Jail::expect_with(|_| {
        let config = load(None)?;

        assert_eq!(config.server.port, 8080);
        assert_eq!(config.search.max_pages, 100);
        assert_eq!(config.sources.len(), 6);
        Ok(())
    });
}

#[test]
fn an_environment_value_of_the_wrong_type_names_its_key() {
    Jail::expect_with(|jail| {
        jail.set_env("ANYA_SOURCES__DANBOORU__RATE_PER_SEC", "abc");

        let message = load_error(None);

        assert!(
            message.contains("sources.danbooru.rate_per_sec"),
            "{message}"
        );
        Ok(())
    });
}

#[test]
fn an_environment_value_out_of_range_names_its_key() {
    Jail::expect_with(|jail| {
        jail.set_env("ANYA_SOURCES__KONACHAN__PAGE_SIZE", "5000");

        let message = load_error(None);

        assert!(message.contains("sources.konachan.page_size"), "{message}");
        Ok(())
    });
}

#[test]
fn environment_variables_override_the_default() {
    Jail::expect_with(|jail| {
        jail.set_env(
            "ANYA_SOURCES__DANBOORU__BASE_URL",
            "http://127.0.0.1:9000/danbooru",
        );
        jail.set_env("ANYA_SEARCH__DEADLINE_SECS", "5");

        let config = load(None)?;

        assert_eq!(
            config.sources["danbooru"].base_url.as_str(),
            "http://127.0.0.1:9000/danbooru"
        );
        assert_eq!(config.search.deadline_secs, 5);
        Ok(())
    });
}

#[test]
fn port_sets_the_listening_port_over_everything() {
    Jail::expect_with(|jail| {
        jail.set_env("ANYA_SERVER__PORT", "7000");
        jail.set_env("PORT", "9999");

        assert_eq!(load(None)?.server.port, 9999);
        Ok(())
    });
}

#[test]
fn a_bad_port_is_named() {
    Jail::expect_with(|jail| {
        jail.set_env("PORT", "eighty");

        let message = load_error(None);

        assert!(message.contains("PORT"), "{message}");
        Ok(())
    });
}

#[test]
fn anya_config_is_not_a_configuration_key() {
    Jail::expect_with(|jail| {
        jail.set_env("ANYA_CONFIG", "/etc/anya.toml");

        assert!(Config::load(None).is_ok());
        Ok(())
    });
}

#[test]
fn an_unknown_environment_key_is_named() {
    Jail::expect_with(|jail| {
        jail.set_env("ANYA_SEARCH__DEADLINE", "5");

        let message = load_error(None);

        assert!(message.contains("search"), "{message}");
        assert!(message.contains("deadline"), "{message}");
        Ok(())
    });
}

#[test]
fn a_file_layers_over_the_default_and_under_the_environment() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "anya.toml",
            "[search]\ndeadline_secs = 5\nmax_pages = 20\n[sources.tbib]\nenabled = false\n",
        )?;
        jail.set_env("ANYA_SEARCH__MAX_PAGES", "30");

        let config = load(Some("anya.toml"))?;

        assert_eq!(config.search.deadline_secs, 5);
        assert_eq!(config.search.max_pages, 30);
        assert!(!config.sources["tbib"].enabled);
        assert_eq!(config.server.port, 8080);
        Ok(())
    });
}

#[test]
fn an_unknown_key_in_a_file_is_named() {
    Jail::expect_with(|jail| {
        jail.create_file("anya.toml", "[sources.danbooru]\nrate_per_secs = 2.0\n")?;

        let message = load_error(Some("anya.toml"));

        assert!(message.contains("sources.danbooru"), "{message}");
        assert!(message.contains("rate_per_secs"), "{message}");
        Ok(())
    });
}

#[test]
fn a_bad_value_in_a_file_is_named() {
    Jail::expect_with(|jail| {
        jail.create_file("anya.toml", "[sources.danbooru]\nrate_per_sec = 0\n")?;

        let message = load_error(Some("anya.toml"));

        assert!(
            message.contains("sources.danbooru.rate_per_sec"),
            "{message}"
        );
        Ok(())
    });
}

#[test]
fn a_missing_file_is_named() {
    Jail::expect_with(|_| {
        let message = load_error(Some("nowhere.toml"));

        assert!(message.contains("nowhere.toml"), "{message}");
        Ok(())
    });
}

#[test]
fn credentials_come_from_the_environment_and_never_print() {
    Jail::expect_with(|jail| {
        jail.set_env("ANYA_SOURCES__GELBOORU__USER_ID", "12345");
        jail.set_env("ANYA_SOURCES__GELBOORU__API_KEY", "a1b2c3-secret");

        let config = load(None)?;

        let gelbooru = &config.sources["gelbooru"];
        assert_eq!(gelbooru.user_id.as_ref().unwrap().expose(), "12345");
        assert_eq!(gelbooru.api_key.as_ref().unwrap().expose(), "a1b2c3-secret");
        let printed = format!("{config:?}");
        assert!(!printed.contains("a1b2c3-secret"), "{printed}");
        assert!(!printed.contains("12345"), "{printed}");
        Ok(())
    });
}

#[test]
fn from_toml_names_keys_too() {
    let unknown = Config::from_toml("[sources.danbooru]\nrate_per_secs = 2.0\n").unwrap_err();
    assert!(unknown.to_string().contains("rate_per_secs"), "{unknown}");

    let wrong_type =
        Config::from_toml("[sources.danbooru]\nrate_per_sec = \"fast\"\n").unwrap_err();
    assert!(
        wrong_type
            .to_string()
            .contains("sources.danbooru.rate_per_sec"),
        "{wrong_type}"
    );
}

#[test]
fn credentials_from_the_environment_are_kept_as_text() {
    Jail::expect_with(|jail| {
        jail.set_env("ANYA_SOURCES__DANBOORU__LOGIN", "true");
        jail.set_env("ANYA_SOURCES__DANBOORU__API_KEY", "007");
        jail.set_env("ANYA_SOURCES__GELBOORU__USER_ID", "0123");
        jail.set_env("ANYA_SOURCES__GELBOORU__API_KEY", "12.50");

        let config = load(None)?;

        let text = |field: &Option<anya_image_api::config::Secret>| {
            field.as_ref().unwrap().expose().to_string()
        };
        let (danbooru, gelbooru) = (&config.sources["danbooru"], &config.sources["gelbooru"]);
        assert_eq!(text(&danbooru.login), "true");
        assert_eq!(text(&danbooru.api_key), "007");
        assert_eq!(text(&gelbooru.user_id), "0123");
        assert_eq!(text(&gelbooru.api_key), "12.50");
        Ok(())
    });
}

#[test]
fn access_control_is_off_by_default() {
    Jail::expect_with(|_| {
        let server = load(None)?.server;

        assert!(server.api_keys.is_empty());
        assert_eq!(server.client_rate_per_sec, 0.0);
        assert!(!server.trust_forwarded_for);
        assert_eq!(server.trusted_proxy_hops, 0);
        Ok(())
    });
}

#[test]
fn api_keys_come_from_the_environment_comma_separated_as_text() {
    Jail::expect_with(|jail| {
        jail.set_env(
            "ANYA_SERVER__API_KEYS",
            "0000000000000000123, [bracketed-key-text], true-true-true-true",
        );

        let config = load(None)?;

        let keys: Vec<&str> = config.server.api_keys.iter().map(|k| k.expose()).collect();
        assert_eq!(
            keys,
            [
                "0000000000000000123",
                "[bracketed-key-text]",
                "true-true-true-true"
            ]
        );
        let printed = format!("{config:?}");
        assert!(!printed.contains("bracketed-key-text"), "{printed}");
        Ok(())
    });
}

#[test]
fn a_bad_api_key_is_named_by_position_never_shown() {
    Jail::expect_with(|jail| {
        jail.set_env(
            "ANYA_SERVER__API_KEYS",
            "long-enough-key-number-one,short-key",
        );

        let message = load_error(None);

        assert!(message.contains("server.api_keys[1]"), "{message}");
        assert!(message.contains("16 to 256 characters"), "{message}");
        assert!(!message.contains("short-key"), "{message}");
        Ok(())
    });
}

#[test]
fn an_empty_api_key_fails_closed() {
    for keys in [
        "",
        "long-enough-key-number-one,",
        "long-enough-key-number-one,,x",
    ] {
        Jail::expect_with(|jail| {
            jail.set_env("ANYA_SERVER__API_KEYS", keys);

            let message = load_error(None);

            assert!(message.contains("server.api_keys["), "{keys:?}: {message}");
            Ok(())
        });
    }
}

#[test]
fn api_keys_in_a_file_are_a_toml_array() {
    let config =
        Config::from_toml("[server]\napi_keys = [\"key-from-a-file-0001\", 12345678901234567]\n")
            .unwrap();
    let keys: Vec<&str> = config.server.api_keys.iter().map(|k| k.expose()).collect();
    assert_eq!(keys, ["key-from-a-file-0001", "12345678901234567"]);

    let spaced = Config::from_toml("[server]\napi_keys = [\"has a space in the middle\"]\n");
    assert!(
        spaced
            .unwrap_err()
            .to_string()
            .contains("server.api_keys[0]")
    );
}

#[test]
fn the_client_rate_limit_is_checked_and_named() {
    for (toml, key) in [
        ("client_rate_per_sec = -1.0", "server.client_rate_per_sec"),
        (
            "client_rate_per_sec = 0.0000001",
            "server.client_rate_per_sec",
        ),
        (
            "client_rate_per_sec = 1.0\nclient_burst = 0",
            "server.client_burst",
        ),
        (
            "trust_forwarded_for = \"yes\"",
            "server.trust_forwarded_for",
        ),
    ] {
        let error = Config::from_toml(&format!("[server]\n{toml}\n")).unwrap_err();
        assert!(error.to_string().contains(key), "{toml}: {error}");
    }
    let off = Config::from_toml("[server]\nclient_burst = 0\n").unwrap();
    assert_eq!(
        off.server.client_burst, 0,
        "a burst matters only with a rate"
    );
}

#[test]
fn credentials_are_checked_per_family() {
    let v02 = "[sources.safebooru]\nuser_id = \"1\"\napi_key = \"k\"\n";
    assert!(
        Config::from_toml(v02).is_ok(),
        "the Gelbooru 0.2 engine takes Gelbooru's pair"
    );

    let half = Config::from_toml("[sources.safebooru]\nuser_id = \"1\"\n").unwrap_err();
    assert!(
        half.to_string().contains("sources.safebooru.api_key"),
        "{half}"
    );

    let moebooru = Config::from_toml("[sources.yandere]\napi_key = \"k\"\n").unwrap_err();
    assert!(
        moebooru.to_string().contains("sources.yandere.api_key"),
        "{moebooru}"
    );
}

/// DESIGN's table of the six built-in sources, in configuration order: family, default
/// base URL, concurrency (3x the base), rate_per_sec (2x the base) and page size (each
/// family's maximum).
const BUILT_IN_SOURCES: [(&str, &str, &str, u32, f64, u32); 6] = [
    (
        "safebooru",
        "gelbooru_v02",
        "https://safebooru.org/",
        15,
        4.0,
        1000,
    ),
    (
        "danbooru",
        "danbooru",
        "https://danbooru.donmai.us/",
        6,
        2.0,
        200,
    ),
    (
        "gelbooru",
        "gelbooru",
        "https://gelbooru.com/",
        15,
        4.0,
        100,
    ),
    ("yandere", "moebooru", "https://yande.re/", 9, 6.0, 1000),
    (
        "konachan",
        "moebooru",
        "https://konachan.net/",
        9,
        6.0,
        1000,
    ),
    ("tbib", "gelbooru_v02", "https://tbib.org/", 9, 4.0, 1000),
];

#[test]
fn the_built_in_sources_match_the_design_table() {
    let config = Config::from_toml("").unwrap();

    let sources = config.sources_in_order();
    let ids: Vec<&str> = sources.iter().map(|(id, _)| *id).collect();
    let expected_ids: Vec<&str> = BUILT_IN_SOURCES.iter().map(|row| row.0).collect();
    assert_eq!(ids, expected_ids);
    for ((id, source), row) in sources.into_iter().zip(BUILT_IN_SOURCES) {
        let (_, family, base_url, concurrency, rate_per_sec, page_size) = row;
        assert_eq!(source.family.as_str(), family, "{id}");
        assert_eq!(source.base_url.as_str(), base_url, "{id}");
        assert_eq!(source.concurrency, concurrency, "{id}");
        assert_eq!(source.rate_per_sec, rate_per_sec, "{id}");
        assert_eq!(source.burst, 1, "{id}");
        assert_eq!(source.page_size, page_size, "{id}");
        assert!(source.enabled, "{id}");
        assert!(source.user_agent.is_none(), "{id}");
        assert!(
            source.login.is_none() && source.api_key.is_none() && source.user_id.is_none(),
            "{id} ships without credentials"
        );
    }
}

#[test]
fn the_built_in_limits_match_the_design() {
    let config = Config::from_toml("").unwrap();

    assert_eq!(config.server.host.to_string(), "0.0.0.0");
    assert_eq!(config.server.port, 8080);
    assert_eq!(config.search.max_pages, 100);
    assert_eq!(config.search.deadline_secs, 60);
    assert_eq!(config.search.tag_candidates, 50);
    assert_eq!(config.search.max_images, 50_000);
    assert_eq!(config.cache.ttl_secs, 7200);
    assert_eq!(config.cache.partial_ttl_secs, 300);
}

/// Settings no deployment can mean, each with the key its refusal must name.
const NONSENSE: [(&str, &str); 26] = [
    ("[search]\nmax_pages = 0", "search.max_pages"),
    ("[search]\nmax_pages = 101", "search.max_pages"),
    ("[search]\ntag_candidates = 0", "search.tag_candidates"),
    ("[search]\ntag_candidates = 1001", "search.tag_candidates"),
    (
        "[server]\ntrusted_proxy_hops = 17",
        "server.trusted_proxy_hops",
    ),
    (
        "[upstream]\nconnect_timeout_secs = 0",
        "upstream.connect_timeout_secs",
    ),
    ("[upstream]\nmax_body_bytes = 0", "upstream.max_body_bytes"),
    ("[upstream]\nuser_agent = \" \"", "upstream.user_agent"),
    ("[server]\nbody_limit_bytes = 0", "server.body_limit_bytes"),
    (
        "[server]\nshutdown_grace_secs = 0",
        "server.shutdown_grace_secs",
    ),
    ("[cache]\nttl_secs = 0", "cache.ttl_secs"),
    ("[cache]\npartial_ttl_secs = 0", "cache.partial_ttl_secs"),
    (
        "[cache]\nttl_secs = 60\npartial_ttl_secs = 61",
        "cache.partial_ttl_secs",
    ),
    ("[cache]\nmax_bytes = 0", "cache.max_bytes"),
    (
        "[sources.danbooru]\nrate_per_sec = 0.0",
        "sources.danbooru.rate_per_sec",
    ),
    (
        "[sources.danbooru]\nrate_per_sec = -2.0",
        "sources.danbooru.rate_per_sec",
    ),
    (
        "[sources.danbooru]\nrate_per_sec = nan",
        "sources.danbooru.rate_per_sec",
    ),
    (
        "[sources.danbooru]\nconcurrency = 0",
        "sources.danbooru.concurrency",
    ),
    (
        "[sources.danbooru]\nconcurrency = -1",
        "sources.danbooru.concurrency",
    ),
    ("[sources.tbib]\nburst = 0", "sources.tbib.burst"),
    (
        "[sources.gelbooru]\npage_size = 0",
        "sources.gelbooru.page_size",
    ),
    (
        "[sources.gelbooru]\npage_size = 101",
        "sources.gelbooru.page_size",
    ),
    (
        "[sources.danbooru]\npage_size = 201",
        "sources.danbooru.page_size",
    ),
    (
        "[sources.yandere]\ncircuit_cooldown_secs = 0",
        "sources.yandere.circuit_cooldown_secs",
    ),
    (
        "[sources.yandere]\nbackoff_base_secs = 9.0\nbackoff_max_secs = 8.0",
        "sources.yandere.backoff_base_secs",
    ),
    (
        "[sources.yandere]\nbackoff_max_secs = -1.0",
        "sources.yandere.backoff_max_secs",
    ),
];

#[test]
fn nonsensical_settings_are_refused_by_name() {
    for (toml, key) in NONSENSE {
        let error = Config::from_toml(toml)
            .err()
            .unwrap_or_else(|| panic!("accepted {toml:?}"));
        assert!(error.to_string().contains(key), "{toml:?}: {error}");
    }
}

#[test]
fn the_edges_of_each_range_are_accepted() {
    for toml in [
        "[search]\nmax_pages = 1",
        "[search]\nmax_pages = 100",
        "[search]\ndeadline_secs = 0",
        "[upstream]\nconnect_timeout_secs = 1",
        "[cache]\nttl_secs = 60\npartial_ttl_secs = 60",
        "[server]\nshutdown_grace_secs = 1",
        "[sources.danbooru]\npage_size = 200\nconcurrency = 1\nrate_per_sec = 0.01",
        "[sources.gelbooru]\npage_size = 1",
        "[sources.yandere]\nbackoff_base_secs = 0.0\nbackoff_max_secs = 0.0\nmax_retries = 0",
    ] {
        if let Err(error) = Config::from_toml(toml) {
            panic!("refused {toml:?}: {error}");
        }
    }
}

#[test]
fn max_images_takes_one_to_a_million_and_a_refusal_names_the_key_and_range() {
    for value in [1, 300, 1_000_000] {
        let config = Config::from_toml(&format!("[search]\nmax_images = {value}\n"));
        assert_eq!(config.unwrap().search.max_images, value);
    }
    for value in [0, 1_000_001] {
        let error = Config::from_toml(&format!("[search]\nmax_images = {value}\n"))
            .err()
            .unwrap_or_else(|| panic!("accepted max_images = {value}"));
        assert!(
            error.to_string().contains(&format!(
                "search.max_images must be from 1 to 1000000, got {value}"
            )),
            "{error}"
        );
    }
}

#[test]
fn the_default_user_agent_names_the_project_and_its_version() {
    let config = Config::from_toml("").unwrap();

    let expected = format!("anya-image-api/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(config.upstream.user_agent, expected);

    let chosen = Config::from_toml("[upstream]\nuser_agent = \"my-bot/2 (ops@example.org)\"\n");
    assert_eq!(
        chosen.unwrap().upstream.user_agent,
        "my-bot/2 (ops@example.org)"
    );
}
