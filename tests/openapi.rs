//! The OpenAPI document at `/openapi.json` against the service it describes: it lists every
//! route the router serves with exactly the methods it serves, and every answer the real
//! server gives (after real searches against the simulator) fits the schema the document
//! states for that route and status.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use anya_sim::{Fault, FaultRule, SimFamily, World};
use common::sim::{self, Stack};
use reqwest::Method;
use serde_json::{Value, json};

/// Every route of the HTTP contract (DESIGN.md) and `/openapi.json` itself.
const ROUTES: [(&str, &str); 8] = [
    ("/", "get"),
    ("/healthz", "get"),
    ("/v1/search", "get"),
    ("/v1/search", "post"),
    ("/v1/tags", "get"),
    ("/v1/sources", "get"),
    ("/metrics", "get"),
    ("/openapi.json", "get"),
];

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

const ANYA: &str = "anya_forger";
const QUERY: &str = "character=Anya%20Forger&series=Spy%20x%20Family";

/// Two Moebooru sources with the same Anya images; `konachan` fails every post page, so
/// answers carry the error fields and `/v1/sources` a last error.
async fn stack() -> Stack {
    let mut world = World::new();
    for id in ["konachan", "yandere"] {
        world
            .source(id, SimFamily::Moebooru)
            .tag(ANYA, 4)
            .posts(0..30, &[ANYA]);
    }
    let stack = sim::start(world, "[sources.konachan]\nmax_retries = 0\n").await;
    let fault = FaultRule::always(Fault::Status(500)).on_path("/post.json");
    stack.sim.add_fault("konachan", fault);
    stack
}

async fn document(stack: &Stack) -> Value {
    let (status, document) = stack.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    document
}

/// The (path, method) pairs the document lists.
fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths is an object");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("a path item is an object").keys();
            methods
                .filter(|method| METHODS.contains(&method.as_str()))
                .map(move |method| (path.clone(), method.clone()))
        })
        .collect()
}

/// The error code the server answers `method path` with, if it answers with an error.
async fn error_code(stack: &Stack, method: &str, path: &str) -> Option<String> {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let response = stack
        .http
        .request(method, stack.server.url(path))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    body["error"]["code"].as_str().map(str::to_string)
}

#[tokio::test]
async fn the_document_lists_every_route_with_the_methods_it_serves() {
    let stack = stack().await;
    let document = document(&stack).await;

    let listed = documented(&document);

    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(path, method)| (path.to_string(), method.to_string()))
        .collect();
    assert_eq!(listed, expected);
    let paths: BTreeSet<&String> = listed.iter().map(|(path, _)| path).collect();
    for path in paths {
        for method in METHODS {
            let code = error_code(&stack, method, path).await;
            let is_listed = listed.contains(&(path.clone(), method.to_string()));
            let served = !matches!(code.as_deref(), Some("not_found" | "method_not_allowed"));
            assert_eq!(served, is_listed, "{method} {path} answered {code:?}");
        }
    }
}

/// Sends `method path` (with a JSON `body` when given) and checks the answer against the
/// document's schema for that route and status; returns the status.
async fn check_answer(
    stack: &Stack,
    document: &Value,
    (method, path): (&str, &str),
    body: Option<&Value>,
) -> u16 {
    let route = path.split('?').next().unwrap();
    let mut request = stack.http.request(
        Method::from_bytes(method.as_bytes()).unwrap(),
        stack.server.url(path),
    );
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let declared =
        &document["paths"][route][method.to_lowercase()]["responses"][status.to_string()];
    assert!(
        declared.is_object(),
        "{method} {path}: status {status} is not documented"
    );
    assert!(
        response.headers().contains_key("x-request-id")
            && declared["headers"]["x-request-id"].is_object(),
        "{method} {path}: the request id header"
    );
    let text = response.text().await.unwrap();
    let answer: Value = serde_json::from_str(&text).unwrap();
    let schema = &declared["content"]["application/json"]["schema"];
    let problems = Checker::new(document).problems(schema, &answer);
    assert!(
        problems.is_empty(),
        "{method} {path} ({status}): {problems:#?}\n{answer}"
    );
    status
}

#[tokio::test]
async fn every_answer_fits_its_documented_schema() {
    let stack = stack().await;
    let document = document(&stack).await;
    let search = format!("/v1/search?{QUERY}&per_page=5");
    let tags = format!("/v1/tags?{QUERY}");
    let bot = json!({"character_name": "Anya Forger", "sources": ["yandere"], "per_page": 2});

    let cases: [((&str, &str), Option<&Value>, u16); 10] = [
        (("GET", "/"), None, 200),
        (("GET", "/healthz"), None, 200),
        (("GET", &search), None, 200),
        (("GET", &search), None, 200),
        (("POST", "/v1/search"), Some(&bot), 200),
        (("GET", &tags), None, 200),
        (("GET", "/v1/sources"), None, 200),
        (("GET", "/v1/search?character="), None, 400),
        (
            ("POST", "/v1/search"),
            Some(&json!(["not", "an", "object"])),
            422,
        ),
        (("GET", "/v1/tags?character=Anya&sources=pixiv"), None, 400),
    ];
    for (route, body, expected) in cases {
        assert_eq!(
            check_answer(&stack, &document, route, body).await,
            expected,
            "{route:?}"
        );
    }

    let (_, sources) = stack.get("/v1/sources").await;
    let konachan = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "konachan");
    assert!(
        konachan.unwrap()["last_error"].is_object(),
        "the failing source's error was checked too"
    );
    let request_schema = &document["paths"]["/v1/search"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    assert_eq!(
        Checker::new(&document).problems(request_schema, &bot),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn refusals_of_a_guarded_deployment_fit_the_document() {
    let world = World::new();
    let guarded = "[server]\napi_keys = [\"openapi-test-key-0123456789\"]\n";
    let stack = sim::start(world, guarded).await;
    let (status, about) = stack.get("/").await;
    assert_eq!(status, 200, "{about}");
    let response = stack.http.get(stack.server.url("/openapi.json"));
    let response = response.bearer_auth("openapi-test-key-0123456789");
    let document: Value = response.send().await.unwrap().json().await.unwrap();

    for route in [
        ("GET", "/v1/sources"),
        ("GET", "/metrics"),
        ("POST", "/v1/search"),
    ] {
        assert_eq!(
            check_answer(&stack, &document, route, None).await,
            401,
            "{route:?}"
        );
    }
    assert_eq!(
        check_answer(&stack, &document, ("GET", "/healthz"), None).await,
        200
    );
    let open = &document["paths"]["/healthz"]["get"];
    assert!(open["responses"]["401"].is_null() && open["security"].is_null());
    let scheme = &document["components"]["securitySchemes"]["api_key"];
    assert_eq!(scheme["scheme"], "bearer");
}

#[tokio::test]
async fn metrics_are_documented_as_openmetrics_text() {
    let stack = stack().await;
    let document = document(&stack).await;

    let response = stack
        .http
        .get(stack.server.url("/metrics"))
        .send()
        .await
        .unwrap();

    let content_type = response.headers()["content-type"].to_str().unwrap();
    let declared = &document["paths"]["/metrics"]["get"]["responses"]["200"]["content"];
    assert!(
        declared.get(content_type).is_some(),
        "{content_type} in {declared}"
    );
}

#[test]
fn the_checker_catches_missing_undeclared_and_mistyped_fields() {
    let document = json!({"components": {"schemas": {"Page": {
        "type": "object",
        "required": ["total"],
        "properties": {
            "total": {"type": "integer"},
            "error": {"type": ["string", "null"]},
            "status": {"type": "string", "enum": ["ok", "error"]}
        }
    }}}});
    let schema = json!({"$ref": "#/components/schemas/Page"});
    let problems = |value: Value| Checker::new(&document).problems(&schema, &value);

    assert!(problems(json!({"total": 3, "error": null, "status": "ok"})).is_empty());
    assert_eq!(problems(json!({})), ["$: required total is missing"]);
    assert_eq!(
        problems(json!({"total": 1, "extra": 1})),
        ["$.extra is not in the schema"]
    );
    assert_eq!(problems(json!({"total": "3"})).len(), 1);
    assert_eq!(problems(json!({"total": 3, "status": "maybe"})).len(), 1);
}

/// Checks JSON values against the schemas of an OpenAPI 3.1 document: `$ref`, `allOf`,
/// `oneOf`/`anyOf`, `type`, `enum`, `properties`, `required`, `additionalProperties` and
/// `items`. Objects are closed: a property the schema does not declare is a problem, so
/// a field added to an answer without its schema is caught.
struct Checker<'a> {
    document: &'a Value,
    problems: Vec<String>,
}

impl<'a> Checker<'a> {
    fn new(document: &'a Value) -> Checker<'a> {
        Checker {
            document,
            problems: Vec::new(),
        }
    }

    /// Every way `value` does not fit `schema`.
    fn problems(mut self, schema: &'a Value, value: &Value) -> Vec<String> {
        self.check(schema, value, "$");
        self.problems
    }

    fn fits(&self, schema: &'a Value, value: &Value) -> bool {
        Checker::new(self.document)
            .problems(schema, value)
            .is_empty()
    }

    fn resolve(&self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(reference) => {
                let name = reference.trim_start_matches("#/components/schemas/");
                let target = &self.document["components"]["schemas"][name];
                assert!(target.is_object(), "dangling reference {reference}");
                self.resolve(target)
            }
            None => schema,
        }
    }

    fn check(&mut self, schema: &'a Value, value: &Value, at: &str) {
        let schema = self.resolve(schema);
        let choices = schema.get("oneOf").or_else(|| schema.get("anyOf"));
        if let Some(choices) = choices.and_then(Value::as_array) {
            if !choices.iter().any(|choice| self.fits(choice, value)) {
                self.problems
                    .push(format!("{at}: {value} fits none of {choices:?}"));
            }
            return;
        }
        if !type_fits(&schema["type"], value) {
            self.problems
                .push(format!("{at}: {value} is not of type {}", schema["type"]));
            return;
        }
        if let Some(allowed) = schema["enum"].as_array().filter(|a| !a.contains(value)) {
            self.problems
                .push(format!("{at}: {value} is not one of {allowed:?}"));
        }
        if let Some(array) = value.as_array().filter(|_| schema.get("items").is_some()) {
            for (index, item) in array.iter().enumerate() {
                self.check(&schema["items"], item, &format!("{at}[{index}]"));
            }
        }
        if let Some(object) = value.as_object() {
            self.check_object(schema, object, at);
        }
    }

    fn check_object(
        &mut self,
        schema: &'a Value,
        object: &serde_json::Map<String, Value>,
        at: &str,
    ) {
        let (properties, required) = self.members(schema);
        let extra = schema
            .get("additionalProperties")
            .filter(|extra| extra.is_object());
        if properties.is_empty() && extra.is_none() {
            return;
        }
        for name in required.iter().filter(|name| !object.contains_key(*name)) {
            self.problems
                .push(format!("{at}: required {name} is missing"));
        }
        for (key, item) in object {
            match properties.get(key).copied().or(extra) {
                Some(property) => self.check(property, item, &format!("{at}.{key}")),
                None => self
                    .problems
                    .push(format!("{at}.{key} is not in the schema")),
            }
        }
    }

    /// The declared properties and required names of an object schema and its `allOf` parts.
    fn members(&self, schema: &'a Value) -> (BTreeMap<String, &'a Value>, BTreeSet<String>) {
        let schema = self.resolve(schema);
        let mut properties = BTreeMap::new();
        let mut required = BTreeSet::new();
        if let Some(own) = schema["properties"].as_object() {
            properties.extend(own.iter().map(|(name, property)| (name.clone(), property)));
        }
        let names = schema["required"].as_array().into_iter().flatten();
        required.extend(names.filter_map(Value::as_str).map(str::to_string));
        for part in schema["allOf"].as_array().into_iter().flatten() {
            let (more, needed) = self.members(part);
            properties.extend(more);
            required.extend(needed);
        }
        (properties, required)
    }
}

/// Whether `value` has one of the JSON Schema types `types` names (any, when none).
fn type_fits(types: &Value, value: &Value) -> bool {
    let names: Vec<&str> = match types {
        Value::String(name) => vec![name.as_str()],
        Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
        _ => return true,
    };
    names.iter().any(|name| match *name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    })
}
