//! Parsing and validation of search and tag parameters, the same rules for GET and POST.
//!
//! Both front ends first turn the request into [`RawParams`] (names to loosely typed
//! values); [`Rules::search_query`] and [`Rules::tags_query`] then apply the rules of the
//! HTTP contract once and produce the normalised [`SearchQuery`] or [`TagsQuery`].
//!
//! Parameters the contract does not name are ignored, in the query string and in the body
//! alike: browsers and scripts add cache busters and context fields, and a misspelt
//! required field is still caught because the field it meant is then missing.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use serde_json::{Map, Number, Value};

use super::error::ApiError;
use super::extract::json_kind;
use crate::config::Config;
use crate::model::{Rating, SourceId};
use crate::search::{SearchQuery, TagsQuery};

/// Longest `character` and `series`, in characters after trimming.
const MAX_NAME_CHARS: usize = 100;

/// Largest `per_page`.
const MAX_PER_PAGE: u32 = 1000;

/// `per_page` when the client gives none.
const DEFAULT_PER_PAGE: u32 = 100;

/// Parameters that may hold several values: comma-separated, repeated, or a JSON array.
const LIST_NAMES: [&str; 2] = ["sources", "rating"];

/// One parameter's value before validation, as either front end delivers it.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Text(String),
    List(Vec<String>),
    Number(Number),
    Bool(bool),
    /// A JSON value no parameter takes (an object, an array of non-strings), described for
    /// the message that rejects it if a known parameter holds it.
    Other(String),
}

impl RawValue {
    /// The value as a message shows it: text quoted, anything else by its kind or value.
    fn shown(&self) -> String {
        match self {
            RawValue::Text(text) => format!("{text:?}"),
            RawValue::List(_) => "an array".to_string(),
            RawValue::Number(number) => number.to_string(),
            RawValue::Bool(flag) => flag.to_string(),
            RawValue::Other(kind) => kind.clone(),
        }
    }
}

/// Request parameters by name, before validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawParams(BTreeMap<String, RawValue>);

impl RawParams {
    /// Collects decoded query pairs. A list parameter may repeat (`sources=a&sources=b`);
    /// any other repeated parameter is an error, since which one was meant is unclear.
    pub fn from_query(pairs: Vec<(String, String)>) -> Result<RawParams, ApiError> {
        let mut params = BTreeMap::new();
        for (name, value) in pairs {
            let is_list = LIST_NAMES.contains(&name.as_str());
            match params.entry(name) {
                Entry::Vacant(slot) if is_list => {
                    slot.insert(RawValue::List(vec![value]));
                }
                Entry::Vacant(slot) => {
                    slot.insert(RawValue::Text(value));
                }
                Entry::Occupied(mut slot) => match slot.get_mut() {
                    RawValue::List(items) => items.push(value),
                    _ => {
                        return Err(ApiError::InvalidQuery(format!(
                            "{} is given more than once",
                            slot.key()
                        )));
                    }
                },
            }
        }
        Ok(RawParams(params))
    }

    /// Collects the fields of a JSON body; `null` counts as absent.
    pub fn from_json(object: Map<String, Value>) -> RawParams {
        let params = object
            .into_iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(name, value)| (name, raw_json(value)))
            .collect();
        RawParams(params)
    }

    fn get(&self, name: &str) -> Option<&RawValue> {
        self.0.get(name)
    }
}

fn raw_json(value: Value) -> RawValue {
    match value {
        Value::String(text) => RawValue::Text(text),
        Value::Number(number) => RawValue::Number(number),
        Value::Bool(flag) => RawValue::Bool(flag),
        Value::Array(items) => strings(items),
        other => RawValue::Other(json_kind(&other).to_string()),
    }
}

/// An array of strings as a list; any other array cannot be a parameter.
fn strings(items: Vec<Value>) -> RawValue {
    let mut texts = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(text) => texts.push(text),
            other => {
                return RawValue::Other(format!("an array holding {}", json_kind(&other)));
            }
        }
    }
    RawValue::List(texts)
}

/// What validation needs to know about the deployment: its sources and its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Enabled sources in configuration order: the valid ids and the default of `sources`.
    pub enabled: Vec<SourceId>,
    /// Configured but disabled sources, so that asking for one gets a precise error.
    pub disabled: Vec<String>,
    /// Largest and default `max_pages` (`search.max_pages`).
    pub max_pages: u32,
}

impl Rules {
    /// The rules of a deployment: `enabled` are its enabled sources in configuration order.
    pub fn for_config(config: &Config, enabled: Vec<SourceId>) -> Rules {
        let disabled = (config.sources_in_order().into_iter())
            .filter(|(_, source)| !source.enabled)
            .map(|(id, _)| id.to_string())
            .collect();
        Rules {
            enabled,
            disabled,
            max_pages: config.search.max_pages,
        }
    }

    /// Validates a search request and normalises it.
    pub fn search_query(&self, params: &RawParams) -> Result<SearchQuery, ApiError> {
        Ok(SearchQuery {
            character: character(params)?,
            series: series(params)?,
            sources: self.sources(params)?,
            ratings: ratings(params)?,
            max_pages: integer(params, "max_pages", 1, self.max_pages)?.unwrap_or(self.max_pages),
            page: integer(params, "page", 1, u32::MAX)?.unwrap_or(1),
            per_page: integer(params, "per_page", 1, MAX_PER_PAGE)?.unwrap_or(DEFAULT_PER_PAGE),
            fresh: boolean(params, "fresh")?.unwrap_or(false),
        })
    }

    /// Validates a tag-discovery request and normalises it.
    pub fn tags_query(&self, params: &RawParams) -> Result<TagsQuery, ApiError> {
        Ok(TagsQuery {
            character: character(params)?,
            series: series(params)?,
            sources: self.sources(params)?,
        })
    }

    /// The asked sources in configuration order without repeats; all enabled when none.
    fn sources(&self, params: &RawParams) -> Result<Vec<SourceId>, ApiError> {
        let asked: Vec<String> = list(params, "sources")?
            .into_iter()
            .map(|id| id.to_ascii_lowercase())
            .collect();
        for id in &asked {
            self.check_source(id)?;
        }
        if asked.is_empty() {
            return Ok(self.enabled.clone());
        }
        Ok(self
            .enabled
            .iter()
            .filter(|id| asked.iter().any(|asked| asked == &***id))
            .cloned()
            .collect())
    }

    fn check_source(&self, id: &str) -> Result<(), ApiError> {
        if self.enabled.iter().any(|enabled| &**enabled == id) {
            return Ok(());
        }
        if self.disabled.iter().any(|disabled| disabled == id) {
            return Err(ApiError::InvalidQuery(format!(
                "source {id:?} is disabled in this deployment"
            )));
        }
        let known: Vec<&str> = self.enabled.iter().map(|id| &**id).collect();
        Err(ApiError::InvalidQuery(format!(
            "unknown source {id:?}; sources are {}",
            known.join(", ")
        )))
    }
}

/// `character` or its alias `character_name`: required, 1 to 100 characters after trimming.
fn character(params: &RawParams) -> Result<String, ApiError> {
    let Some(name) = aliased_text(params, "character", "character_name")? else {
        return Err(ApiError::InvalidQuery("character is required".into()));
    };
    let length = name.chars().count();
    if !(1..=MAX_NAME_CHARS).contains(&length) {
        return Err(ApiError::InvalidQuery(format!(
            "character must be 1 to {MAX_NAME_CHARS} characters after trimming, got {length}"
        )));
    }
    Ok(name)
}

/// `series` or its alias `series_name`: optional, at most 100 characters; empty is none.
fn series(params: &RawParams) -> Result<Option<String>, ApiError> {
    let Some(name) = aliased_text(params, "series", "series_name")? else {
        return Ok(None);
    };
    let length = name.chars().count();
    if length > MAX_NAME_CHARS {
        return Err(ApiError::InvalidQuery(format!(
            "series must be at most {MAX_NAME_CHARS} characters after trimming, got {length}"
        )));
    }
    Ok((length > 0).then_some(name))
}

/// A trimmed text field given under its name or its alias; both given must agree.
fn aliased_text(params: &RawParams, name: &str, alias: &str) -> Result<Option<String>, ApiError> {
    let main = name_text(params, name)?;
    let aliased = name_text(params, alias)?;
    match (main, aliased) {
        (Some(main), Some(aliased)) if main != aliased => Err(ApiError::InvalidQuery(format!(
            "{name} and {alias} disagree ({main:?} and {aliased:?}); give one of them"
        ))),
        (main, aliased) => Ok(main.or(aliased)),
    }
}

/// A name field, trimmed; a control character left after trimming is an error, since no
/// tag on any board holds one and it would only garble upstream URLs and logs.
fn name_text(params: &RawParams, name: &str) -> Result<Option<String>, ApiError> {
    let Some(raw) = params.get(name) else {
        return Ok(None);
    };
    let RawValue::Text(text) = raw else {
        return Err(ApiError::InvalidQuery(format!(
            "{name} must be a string, got {}",
            raw.shown()
        )));
    };
    let trimmed = text.trim();
    if trimmed.chars().any(char::is_control) {
        return Err(ApiError::InvalidQuery(format!(
            "{name} must not contain control characters"
        )));
    }
    Ok(Some(trimmed.to_string()))
}

/// The items of a list parameter: split at commas, trimmed, empty items dropped.
fn list(params: &RawParams, name: &str) -> Result<Vec<String>, ApiError> {
    let texts = match params.get(name) {
        None => return Ok(Vec::new()),
        Some(RawValue::Text(text)) => std::slice::from_ref(text),
        Some(RawValue::List(items)) => items.as_slice(),
        Some(other) => {
            return Err(ApiError::InvalidQuery(format!(
                "{name} must be a comma-separated string or an array of strings, got {}",
                other.shown()
            )));
        }
    };
    Ok(texts
        .iter()
        .flat_map(|text| text.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect())
}

/// The asked ratings, mildest first without repeats; all four when none.
fn ratings(params: &RawParams) -> Result<Vec<Rating>, ApiError> {
    let mut ratings = Vec::new();
    for name in list(params, "rating")? {
        let rating = Rating::from_name(&name).ok_or_else(|| {
            ApiError::InvalidQuery(format!(
                "unknown rating {name:?}; ratings are general, sensitive, questionable and explicit"
            ))
        })?;
        ratings.push(rating);
    }
    if ratings.is_empty() {
        return Ok(Rating::ALL.to_vec());
    }
    ratings.sort();
    ratings.dedup();
    Ok(ratings)
}

/// A whole number in `min..=max`, from text or a JSON number; `None` when absent.
fn integer(params: &RawParams, name: &str, min: u32, max: u32) -> Result<Option<u32>, ApiError> {
    let Some(raw) = params.get(name) else {
        return Ok(None);
    };
    let range = if max == u32::MAX {
        format!("a whole number of at least {min}")
    } else {
        format!("a whole number from {min} to {max}")
    };
    let value = match raw {
        RawValue::Text(text) => text.trim().parse::<i64>().ok(),
        RawValue::Number(number) => number.as_i64(),
        _ => None,
    };
    value
        .filter(|value| (i64::from(min)..=i64::from(max)).contains(value))
        .map(|value| Some(value as u32))
        .ok_or_else(|| {
            ApiError::InvalidQuery(format!("{name} must be {range}, got {}", raw.shown()))
        })
}

/// A flag: `true`/`false`/`1`/`0` as text (any case), a JSON boolean, or JSON 0 or 1.
fn boolean(params: &RawParams, name: &str) -> Result<Option<bool>, ApiError> {
    let Some(raw) = params.get(name) else {
        return Ok(None);
    };
    let value = match raw {
        RawValue::Bool(flag) => Some(*flag),
        RawValue::Text(text) => text_flag(text),
        RawValue::Number(number) => text_flag(&number.to_string()),
        _ => None,
    };
    value.map(Some).ok_or_else(|| {
        ApiError::InvalidQuery(format!(
            "{name} must be true or false (or 1 or 0), got {}",
            raw.shown()
        ))
    })
}

fn text_flag(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules() -> Rules {
        Rules {
            enabled: ["safebooru", "danbooru", "gelbooru", "yandere", "konachan"]
                .into_iter()
                .map(SourceId::from)
                .collect(),
            disabled: vec!["tbib".to_string()],
            max_pages: 100,
        }
    }

    fn from_get(text: &str) -> Result<SearchQuery, ApiError> {
        let pairs = super::super::extract::parse_query(text)?;
        rules().search_query(&RawParams::from_query(pairs)?)
    }

    fn from_post(value: Value) -> Result<SearchQuery, ApiError> {
        let Value::Object(object) = value else {
            panic!("test bodies are objects")
        };
        rules().search_query(&RawParams::from_json(object))
    }

    fn message(result: Result<SearchQuery, ApiError>) -> String {
        match result {
            Ok(query) => panic!("expected an error, got {query:?}"),
            Err(error) => {
                assert_eq!(error.code(), "invalid_query", "{error}");
                error.to_string()
            }
        }
    }

    fn ids(query: &SearchQuery) -> Vec<&str> {
        query.sources.iter().map(|id| &**id).collect()
    }

    #[test]
    fn defaults_fill_everything_but_the_character() {
        let query = from_get("character=Anya").unwrap();

        assert_eq!(
            query,
            SearchQuery {
                character: "Anya".into(),
                series: None,
                sources: rules().enabled,
                ratings: Rating::ALL.to_vec(),
                max_pages: 100,
                page: 1,
                per_page: 100,
                fresh: false,
            }
        );
    }

    #[test]
    fn get_and_post_give_the_same_query() {
        let from_get = from_get(
            "character=Anya+Forger&series=Spy+x+Family&sources=danbooru,yandere\
             &rating=general,sensitive&max_pages=3&page=2&per_page=50&fresh=true",
        )
        .unwrap();
        let from_post = from_post(json!({
            "character": "Anya Forger", "series": "Spy x Family",
            "sources": ["danbooru", "yandere"], "rating": ["general", "sensitive"],
            "max_pages": 3, "page": 2, "per_page": 50, "fresh": true
        }))
        .unwrap();

        assert_eq!(from_get, from_post);
        assert_eq!(from_get.max_pages, 3);
        assert_eq!(from_get.page, 2);
        assert_eq!(from_get.per_page, 50);
        assert!(from_get.fresh);
    }

    #[test]
    fn character_is_required() {
        assert_eq!(message(from_get("")), "character is required");
        assert_eq!(
            message(from_post(json!({"series": "x"}))),
            "character is required"
        );
        assert_eq!(
            message(from_post(json!({"character": null}))),
            "character is required"
        );
    }

    #[test]
    fn character_is_trimmed_and_counted_in_characters() {
        assert_eq!(from_get("character=++Anya++").unwrap().character, "Anya");
        assert!(message(from_get("character=+++")).starts_with("character must be 1 to 100"));

        // 100 two-byte characters are 200 bytes but within the limit.
        let hundred = "é".repeat(100);
        assert_eq!(
            from_post(json!({ "character": hundred }))
                .unwrap()
                .character,
            hundred
        );
        let too_long = "é".repeat(101);
        assert!(message(from_post(json!({ "character": too_long }))).ends_with("got 101"));
    }

    #[test]
    fn character_must_be_a_string() {
        assert_eq!(
            message(from_post(json!({"character": 5}))),
            "character must be a string, got 5"
        );
        assert_eq!(
            message(from_post(json!({"character": ["Anya"]}))),
            "character must be a string, got an array"
        );
        assert_eq!(
            message(from_post(json!({"character": {"a": 1}}))),
            "character must be a string, got an object"
        );
    }

    #[test]
    fn aliases_stand_for_the_fields() {
        let query = from_get("character_name=Anya&series_name=Spy+x+Family").unwrap();

        assert_eq!(query.character, "Anya");
        assert_eq!(query.series.as_deref(), Some("Spy x Family"));
    }

    #[test]
    fn name_and_alias_must_agree() {
        assert!(from_get("character=Anya&character_name=+Anya+").is_ok());
        assert!(message(from_get("character=Anya&character_name=Yor")).contains("disagree"));
        assert!(
            message(from_post(
                json!({"character": "c", "series": "a", "series_name": "b"})
            ))
            .contains("disagree")
        );
    }

    #[test]
    fn series_is_optional_and_limited() {
        assert_eq!(from_get("character=a&series=++").unwrap().series, None);
        let long = "s".repeat(101);
        assert!(
            message(from_get(&format!("character=a&series={long}")))
                .starts_with("series must be at most 100 characters")
        );
        assert!(from_get(&format!("character=a&series={}", "s".repeat(100))).is_ok());
    }

    #[test]
    fn control_characters_are_rejected() {
        assert_eq!(
            message(from_get("character=An%00ya")),
            "character must not contain control characters"
        );
        assert_eq!(
            message(from_post(json!({"character": "a", "series": "Spy\tx"}))),
            "series must not contain control characters"
        );
        // Surrounding white space, a newline included, is trimmed before the check.
        assert_eq!(from_get("character=Anya%0A").unwrap().character, "Anya");
    }

    #[test]
    fn repeated_scalar_parameters_are_ambiguous() {
        assert_eq!(
            message(from_get("character=a&character=b")),
            "character is given more than once"
        );
    }

    #[test]
    fn unknown_parameters_are_ignored() {
        assert!(from_get("character=a&_=1712345678&utm_source=x").is_ok());
        assert!(from_post(json!({"character": "a", "context": {"chat": [1, 2]}})).is_ok());
    }

    #[test]
    fn sources_follow_configuration_order_without_repeats() {
        let query =
            from_get("character=a&sources=yandere,+Danbooru+,yandere&sources=safebooru").unwrap();
        assert_eq!(ids(&query), ["safebooru", "danbooru", "yandere"]);

        let from_string =
            from_post(json!({"character": "a", "sources": "konachan,danbooru"})).unwrap();
        assert_eq!(ids(&from_string), ["danbooru", "konachan"]);
    }

    #[test]
    fn empty_sources_mean_every_enabled_source() {
        for empty in ["character=a&sources=", "character=a&sources=,,"] {
            assert_eq!(from_get(empty).unwrap().sources, rules().enabled);
        }
        let from_array = from_post(json!({"character": "a", "sources": []})).unwrap();
        assert_eq!(from_array.sources, rules().enabled);
    }

    #[test]
    fn unknown_and_disabled_sources_are_errors() {
        let unknown = message(from_get("character=a&sources=danbooru,pixiv"));
        assert!(unknown.starts_with("unknown source \"pixiv\""), "{unknown}");
        assert!(unknown.contains("danbooru"), "{unknown}");

        let disabled = message(from_get("character=a&sources=tbib"));
        assert_eq!(disabled, "source \"tbib\" is disabled in this deployment");

        let not_strings = message(from_post(json!({"character": "a", "sources": [1]})));
        assert!(
            not_strings.ends_with("got an array holding a number"),
            "{not_strings}"
        );
    }

    #[test]
    fn ratings_are_checked_and_deduplicated() {
        let query = from_get("character=a&rating=Explicit,general,explicit").unwrap();
        assert_eq!(query.ratings, [Rating::General, Rating::Explicit]);

        let unknown = message(from_get("character=a&rating=safe"));
        assert!(unknown.starts_with("unknown rating \"safe\""), "{unknown}");

        let from_array = from_post(json!({"character": "a", "rating": ["questionable"]})).unwrap();
        assert_eq!(from_array.ratings, [Rating::Questionable]);
    }

    #[test]
    fn max_pages_is_bounded_by_configuration() {
        assert_eq!(
            from_get("character=a&max_pages=100").unwrap().max_pages,
            100
        );
        assert_eq!(
            message(from_get("character=a&max_pages=101")),
            "max_pages must be a whole number from 1 to 100, got \"101\""
        );
        assert!(message(from_get("character=a&max_pages=0")).starts_with("max_pages must be"));

        let tighter = Rules {
            max_pages: 5,
            ..rules()
        };
        let params = RawParams::from_query(vec![("character".into(), "a".into())]).unwrap();
        assert_eq!(tighter.search_query(&params).unwrap().max_pages, 5);
    }

    #[test]
    fn page_starts_at_one() {
        assert_eq!(
            message(from_get("character=a&page=0")),
            "page must be a whole number of at least 1, got \"0\""
        );
        assert!(message(from_post(json!({"character": "a", "page": -1}))).starts_with("page must"));
        assert_eq!(
            from_get("character=a&page=4000000").unwrap().page,
            4_000_000
        );
    }

    #[test]
    fn per_page_is_one_to_a_thousand() {
        assert_eq!(
            from_get("character=a&per_page=1000").unwrap().per_page,
            1000
        );
        for bad in ["0", "1001", "ten", "", "2.5", "99999999999999999999"] {
            let text = message(from_get(&format!("character=a&per_page={bad}")));
            assert!(
                text.starts_with("per_page must be a whole number from 1 to 1000"),
                "{text}"
            );
        }
        assert!(
            message(from_post(json!({"character": "a", "per_page": 2.5}))).ends_with("got 2.5")
        );
        assert!(message(from_post(json!({"character": "a", "per_page": true}))).ends_with("true"));
        assert_eq!(
            from_post(json!({"character": "a", "per_page": "7"}))
                .unwrap()
                .per_page,
            7
        );
    }

    #[test]
    fn fresh_accepts_words_digits_and_booleans() {
        for (text, expected) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("false", false),
            ("0", false),
        ] {
            assert_eq!(
                from_get(&format!("character=a&fresh={text}"))
                    .unwrap()
                    .fresh,
                expected
            );
        }
        assert!(
            from_post(json!({"character": "a", "fresh": true}))
                .unwrap()
                .fresh
        );
        assert!(
            from_post(json!({"character": "a", "fresh": 1}))
                .unwrap()
                .fresh
        );
        assert_eq!(
            message(from_get("character=a&fresh=yes")),
            "fresh must be true or false (or 1 or 0), got \"yes\""
        );
        assert!(
            message(from_post(json!({"character": "a", "fresh": 2}))).starts_with("fresh must")
        );
    }

    #[test]
    fn tags_query_takes_names_and_sources() {
        let pairs = vec![
            ("character_name".to_string(), " Anya ".to_string()),
            ("sources".to_string(), "danbooru".to_string()),
        ];

        let tags = rules()
            .tags_query(&RawParams::from_query(pairs).unwrap())
            .unwrap();

        assert_eq!(
            tags,
            TagsQuery {
                character: "Anya".into(),
                series: None,
                sources: vec![SourceId::from("danbooru")],
            }
        );
        assert!(rules().tags_query(&RawParams::default()).is_err());
    }
}
