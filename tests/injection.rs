//! Hostile names never steer an upstream: whatever a client types as the character or the
//! series, every request the simulator records has exactly the parameters its endpoint
//! takes, tag look-ups carry the text only inside their one name parameter (lowercased,
//! wildcards removed), and every post search and count asks for a tag the world defines,
//! plus the family's own fixed addition. Metatags, extra parameters, fragments and
//! wildcards typed by a client go nowhere.

mod common;

use std::collections::BTreeSet;

use anya_sim::{RecordedRequest, SimFamily, World};
use common::sim::{self, Stack};
use serde_json::json;

const ANYA: &str = "anya_(spy_x_family)";
const ANYA_MOE: &str = "anya_forger";
const SERIES: &str = "spy_x_family";
const LOID: &str = "loid_forger";

/// Character and series texts a client might send to break out of a tag look-up.
const HOSTILE: [(&str, Option<&str>); 16] = [
    ("Anya&limit=1000000", None),
    ("Anya Forger&limit=1000000", Some("Spy x Family&json=0")),
    ("order:random Anya", Some("order:random")),
    ("Anya Forger rating:explicit", Some("rating:explicit")),
    ("-anya_forger", Some("-spy_x_family")),
    ("Anya a#b?c=d", Some("a#b?c=d")),
    ("anya*", Some("spy*")),
    ("*", None),
    ("%_%", Some("%")),
    ("Anya Forger\\", Some("\\")),
    ("~anya ~loid", None),
    ("{anya ~ loid}", Some("( spy or family )")),
    ("Anya+Forger%26limit%3D5", None),
    ("anya\u{3000}forger", Some("spy\u{3000}x\u{3000}family")),
    ("Anya Forger", Some("Spy x Family) or (rating:explicit")),
    ("user:admin status:any", Some("pool:1 limit:1000")),
];

/// Anya and Loid on a Danbooru, a Gelbooru, a Gelbooru 0.2 and a Moebooru source.
fn world() -> World {
    let mut world = World::new();
    world
        .source("danbooru", SimFamily::Danbooru)
        .tag(ANYA, 4)
        .tag(LOID, 4)
        .tag(SERIES, 3)
        .alias(ANYA_MOE, ANYA)
        .posts(0..30, &[ANYA, SERIES])
        .posts(100..110, &[LOID, SERIES]);
    for (id, family) in [
        ("gelbooru", SimFamily::Gelbooru),
        ("safebooru", SimFamily::GelbooruV02),
    ] {
        world
            .source(id, family)
            .tag(ANYA, 4)
            .tag(LOID, 4)
            .tag(SERIES, 3)
            .posts(10..40, &[ANYA, SERIES])
            .posts(100..110, &[LOID, SERIES]);
    }
    world
        .source("yandere", SimFamily::Moebooru)
        .tag(ANYA_MOE, 4)
        .tag(LOID, 4)
        .tag(SERIES, 3)
        .posts(20..50, &[ANYA_MOE, SERIES])
        .posts(100..110, &[LOID, SERIES]);
    world
}

/// The tags a post search on `source` may ask for: those the world defines there.
fn world_tags(source: &str) -> &'static [&'static str] {
    match source {
        "yandere" => &[ANYA_MOE, LOID, SERIES],
        _ => &[ANYA, LOID, SERIES],
    }
}

/// What a parameter's value must be.
#[derive(Debug, Clone, Copy)]
enum Value {
    /// Exactly this text.
    Fixed(&'static str),
    /// A whole number no larger than 1000 (no client can raise a limit).
    Number,
    /// A 1-based page or Danbooru's `b<id>` cursor.
    Page,
    /// The user's text, lowercased and without wildcards, between `wrap` on both sides.
    Name { wrap: &'static str },
    /// A tag of the world followed by `suffix`.
    Tags { suffix: &'static str },
}

type Spec = &'static [(&'static str, Value)];

const DANBOORU: &[(&str, Spec)] = &[
    (
        "/tags.json",
        &[
            ("search[name_matches]", Value::Name { wrap: "*" }),
            ("search[category]", Value::Fixed("4")),
            ("search[order]", Value::Fixed("count")),
            ("search[hide_empty]", Value::Fixed("true")),
            ("limit", Value::Number),
        ],
    ),
    (
        "/tag_aliases.json",
        &[
            ("search[antecedent_name]", Value::Name { wrap: "" }),
            ("search[status]", Value::Fixed("active")),
        ],
    ),
    (
        "/posts.json",
        &[
            (
                "tags",
                Value::Tags {
                    suffix: " -status:deleted",
                },
            ),
            ("limit", Value::Number),
            ("page", Value::Page),
        ],
    ),
    (
        "/counts/posts.json",
        &[(
            "tags",
            Value::Tags {
                suffix: " -status:deleted",
            },
        )],
    ),
];

const GELBOORU: &[(&str, Spec)] = &[
    (
        "/index.php",
        &[
            ("page", Value::Fixed("dapi")),
            ("s", Value::Fixed("tag")),
            ("q", Value::Fixed("index")),
            ("json", Value::Fixed("1")),
            ("name_pattern", Value::Name { wrap: "%" }),
            ("orderby", Value::Fixed("count")),
            ("order", Value::Fixed("DESC")),
            ("limit", Value::Number),
        ],
    ),
    (
        "/index.php",
        &[
            ("page", Value::Fixed("dapi")),
            ("s", Value::Fixed("post")),
            ("q", Value::Fixed("index")),
            ("json", Value::Fixed("1")),
            ("tags", Value::Tags { suffix: "" }),
            ("limit", Value::Number),
            ("pid", Value::Number),
        ],
    ),
    (
        "/index.php",
        &[
            ("page", Value::Fixed("dapi")),
            ("s", Value::Fixed("post")),
            ("q", Value::Fixed("index")),
            ("tags", Value::Tags { suffix: "" }),
            ("limit", Value::Fixed("1")),
        ],
    ),
];

const MOEBOORU: &[(&str, Spec)] = &[
    (
        "/tag.json",
        &[
            ("name", Value::Name { wrap: "" }),
            ("order", Value::Fixed("count")),
            ("limit", Value::Number),
        ],
    ),
    (
        "/post.json",
        &[
            (
                "tags",
                Value::Tags {
                    suffix: " holds:false",
                },
            ),
            ("limit", Value::Number),
            ("page", Value::Page),
        ],
    ),
    (
        "/post.xml",
        &[
            (
                "tags",
                Value::Tags {
                    suffix: " holds:false",
                },
            ),
            ("limit", Value::Number),
        ],
    ),
];

fn endpoints(source: &str) -> &'static [(&'static str, Spec)] {
    match source {
        "danbooru" => DANBOORU,
        "gelbooru" | "safebooru" => GELBOORU,
        "yandere" => MOEBOORU,
        other => panic!("the world has no source {other}"),
    }
}

/// The endpoint spec `request` claims by its path and parameter names, or why none fits.
fn spec_of(request: &RecordedRequest) -> Result<Spec, String> {
    let names: Vec<&str> = request
        .query
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    if unique.len() != names.len() {
        return Err(format!("a parameter is repeated: {names:?}"));
    }
    endpoints(&request.source)
        .iter()
        .filter(|(path, _)| *path == request.path)
        .map(|(_, spec)| *spec)
        .find(|spec| spec.iter().map(|(name, _)| *name).collect::<BTreeSet<_>>() == unique)
        .ok_or_else(|| format!("no endpoint takes exactly the parameters {names:?}"))
}

/// Checks one value against its rule; `typed` is the character the client sent.
fn check_value(source: &str, rule: Value, value: &str, typed: &str) -> Result<(), String> {
    let ok = match rule {
        Value::Fixed(expected) => value == expected,
        Value::Number => is_small_number(value),
        Value::Page => is_small_number(value.strip_prefix('b').unwrap_or(value)),
        Value::Name { wrap } => value
            .strip_prefix(wrap)
            .and_then(|inner| inner.strip_suffix(wrap))
            .is_some_and(|inner| is_part_of_typed_name(inner, typed)),
        Value::Tags { suffix } => value
            .strip_suffix(suffix)
            .is_some_and(|tag| world_tags(source).contains(&tag)),
    };
    match ok {
        true => Ok(()),
        false => Err(format!("{value:?} breaks the rule {rule:?}")),
    }
}

fn is_small_number(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && text.parse::<u64>().is_ok_and(|n| n <= 1000)
}

/// Whether a look-up name is built only from the typed text: non-empty, no wildcard, and
/// every character one the client typed (lowercased), or `_` joining words.
fn is_part_of_typed_name(name: &str, typed: &str) -> bool {
    let typed: String = typed.chars().flat_map(char::to_lowercase).collect();
    !name.is_empty()
        && !name.contains(['*', '%', '?', '\\'])
        && name.chars().all(|c| c == '_' || typed.contains(c))
}

/// Every request the simulator saw while the service searched for `typed`, checked.
fn check_requests(requests: &[RecordedRequest], typed: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for request in requests {
        let checked = spec_of(request).and_then(|spec| {
            spec.iter().try_for_each(|(name, rule)| {
                let value = request.param(name).unwrap_or_default();
                check_value(&request.source, *rule, value, typed)
                    .map_err(|problem| format!("{name}: {problem}"))
            })
        });
        if let Err(problem) = checked {
            problems.push(format!(
                "{} {} {:?}: {problem}",
                request.source, request.path, request.query
            ));
        }
    }
    problems
}

fn is_post_search(request: &RecordedRequest) -> bool {
    request.param("tags").is_some()
}

/// Asks `/v1/search` (GET and POST) and `/v1/tags` with one hostile text; each must answer
/// 200 without being a server error.
async fn ask_every_way(stack: &Stack, character: &str, series: Option<&str>) {
    let mut pairs = vec![("character", character)];
    pairs.extend(series.map(|series| ("series", series)));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();

    let (status, answer) = stack.get(&format!("/v1/search?{query}&fresh=true")).await;
    assert_eq!(status, 200, "GET search {character:?}: {answer}");
    let (status, answer) = stack.get(&format!("/v1/tags?{query}")).await;
    assert_eq!(status, 200, "tags {character:?}: {answer}");
    let body = json!({"character": character, "series": series, "fresh": true});
    let (status, answer) = stack.post("/v1/search", &body).await;
    assert_eq!(status, 200, "POST search {character:?}: {answer}");
}

#[tokio::test]
async fn hostile_names_never_become_parameters_or_metatags() {
    let stack = sim::start(world(), "").await;
    let mut post_searches = BTreeSet::new();

    for (character, series) in HOSTILE {
        stack.sim.clear_requests();

        ask_every_way(&stack, character, series).await;

        let requests = stack.sim.requests();
        if character.chars().any(char::is_alphanumeric) {
            assert!(!requests.is_empty(), "{character:?} was looked up");
        }
        let problems = check_requests(&requests, character);
        assert!(
            problems.is_empty(),
            "searching {character:?} / {series:?}:\n{}",
            problems.join("\n")
        );
        let searched = requests.iter().filter(|r| is_post_search(r));
        post_searches.extend(searched.map(|r| r.source.clone()));
    }

    // Some hostile texts still name Anya or Loid, so every source did search posts: the
    // checks above were not met only by asking nothing.
    let every_source: BTreeSet<String> = ["danbooru", "gelbooru", "safebooru", "yandere"]
        .map(String::from)
        .into();
    assert_eq!(post_searches, every_source);
}

#[test]
fn the_checks_catch_an_injected_parameter_or_metatag() {
    let request = |source: &str, path: &str, query: &[(&str, &str)]| RecordedRequest {
        source: source.to_string(),
        path: path.to_string(),
        query: query
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        user_agent: None,
        accept_encoding: None,
        at: std::time::Instant::now(),
        status: Some(200),
    };
    let typed = "Anya&limit=1000000";
    let injected = [
        request(
            "danbooru",
            "/tags.json",
            &[
                ("search[name_matches]", "*anya*"),
                ("search[category]", "4"),
                ("search[order]", "count"),
                ("search[hide_empty]", "true"),
                ("limit", "50"),
                ("limit", "1000000"),
            ],
        ),
        request(
            "danbooru",
            "/posts.json",
            &[
                (
                    "tags",
                    "anya_(spy_x_family) rating:explicit -status:deleted",
                ),
                ("limit", "200"),
                ("page", "1"),
            ],
        ),
        request(
            "yandere",
            "/tag.json",
            &[("name", "anya*"), ("order", "count"), ("limit", "50")],
        ),
        request(
            "yandere",
            "/tag.json",
            &[
                ("name", "anya"),
                ("order", "count"),
                ("limit", "50"),
                ("c", "d"),
            ],
        ),
        request(
            "gelbooru",
            "/index.php",
            &[
                ("page", "dapi"),
                ("s", "post"),
                ("q", "index"),
                ("tags", "order:random"),
                ("limit", "1"),
            ],
        ),
    ];

    for bad in &injected {
        let problems = check_requests(std::slice::from_ref(bad), typed);
        assert_eq!(problems.len(), 1, "{bad:?} passed the checks");
    }
    let fine = request(
        "danbooru",
        "/tags.json",
        &[
            ("search[name_matches]", "*anya&limit=1000000*"),
            ("search[category]", "4"),
            ("search[order]", "count"),
            ("search[hide_empty]", "true"),
            ("limit", "50"),
        ],
    );
    assert!(check_requests(&[fine], typed).is_empty());
}
