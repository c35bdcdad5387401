//! Loading recorded response bodies: finds the post objects in any family's shape and
//! keeps each one's original text next to the facts searching needs.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use crate::post::{Post, RecordedFacts};

/// A recorded post with the tag categories its own fields declare (Danbooru only).
pub(crate) type Loaded = (Post, Vec<(String, u8)>);

/// Reads every post object out of a recorded body.
pub(crate) fn parse(body: &str) -> Result<Vec<Loaded>, String> {
    post_objects(body)?.into_iter().map(load_one).collect()
}

fn post_objects(body: &str) -> Result<Vec<Box<RawValue>>, String> {
    match body.trim_start().as_bytes().first() {
        Some(b'[') => serde_json::from_str(body).map_err(|e| e.to_string()),
        Some(b'{') => from_object(body),
        _ => Err("recorded body is neither a JSON array nor an object".to_owned()),
    }
}

/// An envelope (`post` for Gelbooru, `posts` for Moebooru API v2) or a single post.
fn from_object(body: &str) -> Result<Vec<Box<RawValue>>, String> {
    let fields: BTreeMap<String, Box<RawValue>> =
        serde_json::from_str(body).map_err(|e| e.to_string())?;
    let list = fields.get("post").or_else(|| fields.get("posts"));
    match list {
        Some(list) if list.get().trim_start().starts_with('[') => {
            serde_json::from_str(list.get()).map_err(|e| e.to_string())
        }
        Some(one) => Ok(vec![one.clone()]),
        None if fields.contains_key("@attributes") => Ok(Vec::new()),
        None => RawValue::from_string(body.to_owned())
            .map(|raw| vec![raw])
            .map_err(|e| e.to_string()),
    }
}

fn load_one(raw: Box<RawValue>) -> Result<Loaded, String> {
    let facts: RecordedFacts = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    let categories = facts
        .categorised_tags()
        .map(|(name, category)| (name.to_owned(), category))
        .collect();
    Ok((facts.into_post(raw), categories))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_recorded_shape() {
        let danbooru = include_str!("../../tests/fixtures/danbooru/posts.json");
        let gelbooru = include_str!("../../tests/fixtures/gelbooru/posts.json");
        let single = include_str!("../../tests/fixtures/danbooru/post_by_id.json");
        let v2 = include_str!("../../tests/fixtures/yandere/post_api_v2_1194966.json");
        assert_eq!(parse(danbooru).unwrap().len(), 10);
        assert_eq!(parse(gelbooru).unwrap().len(), 10);
        assert_eq!(parse(single).unwrap().len(), 1);
        assert_eq!(parse(v2).unwrap().len(), 1);
        assert!(parse(r#"{"@attributes":{"count":0}}"#).unwrap().is_empty());
    }

    #[test]
    fn keeps_text_and_reads_facts() {
        let body = include_str!("../../tests/fixtures/safebooru/post_by_id.json");
        let (post, categories) = parse(body).unwrap().remove(0);
        assert_eq!(post.id, 4296456);
        assert_eq!(
            post.md5.as_deref(),
            Some("e0b8bce4a6136ca31be2fdcbc6bad8a7")
        );
        assert!(post.has_tag("fujiwara_no_mokou"));
        assert!(categories.is_empty());
        let danbooru = include_str!("../../tests/fixtures/danbooru/post_by_id.json");
        let (_, categories) = parse(danbooru).unwrap().remove(0);
        assert!(categories.contains(&("lady_zuri".to_owned(), 4)));
    }
}
