//! The OpenAPI 3.1 document served at `GET /openapi.json`.
//!
//! The document is generated, never written by hand: paths come from the route table in
//! [`super::route_table`] (the same table the router is built from), response shapes from
//! the `ToSchema` derives on the answer types themselves. What has no Rust type of its own
//! is described here: the request parameters, which the validation rules read loosely by
//! name (a test checks that the rules know every name documented here), and the echoed
//! question inside an answer.

use std::sync::OnceLock;

use axum::http::header::CONTENT_TYPE;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Components, ContentBuilder, Header, HeaderBuilder, OpenApi, PathItem, Ref, RefOr, Required,
    Response, ResponseBuilder,
};
use utoipa::{IntoParams, Modify, ToSchema};

use super::access::OPEN_PATHS;
use crate::model::Rating;

/// The document's fixed parts; paths and schemas are added by the route table.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    info(
        title = "ANYA IMAGE API",
        description = "Every image of a character from six image boards, merged and \
                       de-duplicated by MD5."
    ),
    tags(
        (name = "search", description = "Finding a character's images and tags"),
        (name = "operations", description = "Health, sources, metrics and this document")
    )
)]
pub struct ApiDoc;

/// The question of a search: the query string of `GET /v1/search`, or the JSON object of
/// `POST /v1/search`.
///
/// Parameters not named here are ignored; a repeated one is an error, except `sources` and
/// `rating` in a query string.
#[derive(Debug, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The character to find, 1 to 100 characters after trimming. Required: give it here
    /// or as `character_name`.
    #[param(min_length = 1, max_length = 100, example = "Anya Forger")]
    #[schema(min_length = 1, max_length = 100, example = "Anya Forger")]
    pub character: Option<String>,
    /// Alias of `character`; when both are given they must agree.
    pub character_name: Option<String>,
    /// The work the character is from, at most 100 characters; empty means none.
    #[param(max_length = 100, example = "Spy x Family")]
    #[schema(max_length = 100, example = "Spy x Family")]
    pub series: Option<String>,
    /// Alias of `series`; when both are given they must agree.
    pub series_name: Option<String>,
    /// Source ids to ask (all enabled sources when absent): comma-separated or repeated
    /// in a query string, an array or a comma-separated string in a body. An unknown or
    /// disabled id is an error.
    #[param(explode = false, example = json!(["danbooru", "yandere"]))]
    #[schema(example = json!(["danbooru", "yandere"]))]
    pub sources: Option<Vec<String>>,
    /// Ratings to keep (all four when absent), in the same forms as `sources`.
    #[param(explode = false)]
    pub rating: Option<Vec<Rating>>,
    /// Upstream pages per source, from 1 to the deployment's `search.max_pages` (100 by
    /// default), which is also the default.
    #[param(minimum = 1, example = 100)]
    #[schema(minimum = 1, example = 100)]
    pub max_pages: Option<u32>,
    /// The page of the merged result to answer, from 1; past the end, `images` is empty.
    #[param(minimum = 1, default = 1)]
    #[schema(minimum = 1, default = 1)]
    pub page: Option<u32>,
    /// Images per answered page.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    #[schema(minimum = 1, maximum = 1000, default = 100)]
    pub per_page: Option<u32>,
    /// Bypass the cache; the new result replaces the cached one. `true`, `false`, `1` or
    /// `0` in a query string.
    #[param(default = false)]
    #[schema(default = false)]
    pub fresh: Option<bool>,
}

/// The question of `GET /v1/tags`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TagsParams {
    /// The character, 1 to 100 characters after trimming. Required: give it here or as
    /// `character_name`.
    #[param(min_length = 1, max_length = 100, example = "Anya Forger")]
    pub character: Option<String>,
    /// Alias of `character`.
    pub character_name: Option<String>,
    /// The work the character is from, at most 100 characters.
    #[param(max_length = 100, example = "Spy x Family")]
    pub series: Option<String>,
    /// Alias of `series`.
    pub series_name: Option<String>,
    /// Source ids to ask, comma-separated or repeated; all enabled sources when absent.
    #[param(explode = false)]
    pub sources: Option<Vec<String>>,
}

/// The question of a search as understood, echoed in the answer.
#[derive(Debug, ToSchema)]
pub struct SearchQueryEcho {
    /// The character as given, trimmed.
    pub character: String,
    /// The series as given, trimmed; `null` when none.
    pub series: Option<String>,
    /// The sources asked, in configuration order.
    pub sources: Vec<String>,
    /// The ratings kept, mildest first.
    pub rating: Vec<Rating>,
    /// Upstream pages per source.
    pub max_pages: u32,
}

/// The question of a tag discovery as understood, echoed in the answer.
#[derive(Debug, ToSchema)]
pub struct TagsQueryEcho {
    pub character: String,
    pub series: Option<String>,
    pub sources: Vec<String>,
}

/// The whole document: the route table's paths and schemas, with what every route shares.
pub fn build() -> OpenApi {
    let mut document = super::route_table().into_openapi();
    Access.modify(&mut document);
    RequestIds.modify(&mut document);
    document
}

/// The document as JSON text, generated once.
pub fn document_json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        build()
            .to_json()
            .expect("an OpenAPI document always serialises")
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of every route", body = Object)),
)]
pub async fn document() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    ([(CONTENT_TYPE, "application/json")], document_json())
}

/// Adds what `server.api_keys` and `server.client_rate_per_sec` mean to every route but the
/// open ones: an optional bearer key, and the 401 and 429 answers, which only a deployment
/// that turns them on gives.
#[derive(Debug)]
struct Access;

/// The name of the bearer key's security scheme.
const BEARER: &str = "api_key";

impl Modify for Access {
    fn modify(&self, openapi: &mut OpenApi) {
        let scheme = Http::builder()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "One of the deployment's `server.api_keys`, as `Authorization: Bearer <key>`; \
                 needed only where the deployment sets any.",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Components::new)
            .add_security_scheme(BEARER, SecurityScheme::Http(scheme));
        let guarded = openapi.paths.paths.iter_mut();
        for (_, item) in guarded.filter(|(path, _)| !OPEN_PATHS.contains(&path.as_str())) {
            for operation in operations(item) {
                let anonymous = SecurityRequirement::default();
                let keyed = SecurityRequirement::new(BEARER, Vec::<String>::new());
                operation.security = Some(vec![anonymous, keyed]);
                add_refusals(operation);
            }
        }
    }
}

fn add_refusals(operation: &mut Operation) {
    let unauthorized = refusal(
        "The deployment requires an API key and the request has none or a wrong one \
         (`unauthorized`)",
        ("WWW-Authenticate", Type::String, "The bearer challenge"),
    );
    let rate_limited = refusal(
        "The client used up its share of `server.client_rate_per_sec` (`rate_limited`)",
        (
            "Retry-After",
            Type::Integer,
            "Seconds to wait before trying again",
        ),
    );
    let responses = &mut operation.responses.responses;
    responses.insert("401".into(), RefOr::T(unauthorized));
    responses.insert("429".into(), RefOr::T(rate_limited));
}

/// An error answer described by `description`, with the one header that says how to
/// recover.
fn refusal(description: &str, (header, kind, meaning): (&str, Type, &str)) -> Response {
    let header_schema = ObjectBuilder::new().schema_type(kind);
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    ResponseBuilder::new()
        .description(description)
        .header(header, header_of(header_schema, meaning))
        .content("application/json", content)
        .build()
}

fn header_of(schema: ObjectBuilder, description: &str) -> Header {
    HeaderBuilder::new()
        .schema(schema)
        .description(Some(description))
        .build()
}

/// Adds the `X-Request-Id` header, which every route takes and every answer carries, to
/// every operation, so that no path has to repeat it.
#[derive(Debug)]
struct RequestIds;

/// What the request id header means, in and out.
const REQUEST_ID_IN: &str = "An id for this request, 1-128 letters, digits, `-`, `_`, `.` \
    or `:`; it is echoed in the answer and put on the request's log lines. Without a usable \
    one, the service makes one up.";
const REQUEST_ID_OUT: &str =
    "The request's id: the client's own when it sent a usable one, otherwise a new UUID.";

impl Modify for RequestIds {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            item.parameters
                .get_or_insert_with(Vec::new)
                .push(request_id_parameter());
            for operation in operations(item) {
                add_request_id_header(operation);
            }
        }
    }
}

fn request_id_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[A-Za-z0-9._:-]{1,128}$"))
}

fn request_id_parameter() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(super::layers::REQUEST_ID.as_str())
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(REQUEST_ID_IN))
        .schema(Some(request_id_schema()))
        .build()
}

fn add_request_id_header(operation: &mut Operation) {
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            let header = header_of(request_id_schema(), REQUEST_ID_OUT);
            response
                .headers
                .insert(super::layers::REQUEST_ID.to_string(), header);
        }
    }
}

/// Every operation a path item holds.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};
    use utoipa::PartialSchema;
    use utoipa::openapi::schema::Schema;

    use super::*;
    use crate::api::params::{RawParams, Rules};

    fn rules() -> Rules {
        Rules {
            enabled: vec!["danbooru".into()],
            disabled: Vec::new(),
            max_pages: 100,
        }
    }

    /// The message the rules give when `name` holds a JSON object, a value no parameter
    /// takes; a parameter the rules do not know would be ignored instead.
    fn refusal(name: &str, tags: bool) -> String {
        let mut object = Map::new();
        if !name.starts_with("character") {
            object.insert("character".into(), json!("Anya"));
        }
        object.insert(name.into(), json!({"an": "object"}));
        let params = RawParams::from_json(object);
        let error = match tags {
            true => rules().tags_query(&params).err(),
            false => rules().search_query(&params).err(),
        };
        error.map(|error| error.to_string()).unwrap_or_default()
    }

    #[test]
    fn the_rules_know_every_documented_search_parameter() {
        let RefOr::T(Schema::Object(body)) = SearchParams::schema() else {
            panic!("the search parameters are an object schema");
        };
        let names: Vec<String> = body.properties.keys().cloned().collect();
        let mut query: Vec<String> = SearchParams::into_params(|| None)
            .into_iter()
            .map(|param| param.name)
            .collect();
        query.sort();

        assert_eq!(names, query, "GET and POST document the same names");
        assert_eq!(names.len(), 10);
        for name in names {
            let message = refusal(&name, false);
            assert!(
                message.starts_with(&format!("{name} must")),
                "{name}: {message:?}"
            );
        }
    }

    #[test]
    fn the_rules_know_every_documented_tags_parameter() {
        for param in TagsParams::into_params(|| None) {
            let message = refusal(&param.name, true);
            assert!(
                message.starts_with(&format!("{} must", param.name)),
                "{}: {message:?}",
                param.name
            );
        }
    }

    #[test]
    fn every_operation_takes_and_returns_a_request_id() {
        let document: Value = serde_json::from_str(document_json()).unwrap();

        for (path, item) in document["paths"].as_object().unwrap() {
            assert_eq!(item["parameters"][0]["name"], "x-request-id", "{path}");
            let operations = item.as_object().unwrap().iter();
            for (method, operation) in operations.filter(|(key, _)| *key != "parameters") {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    assert!(
                        response["headers"]["x-request-id"].is_object(),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}
