//! The merge: the union of every source's posts, one image per MD5, ranked.
//!
//! An image seen on several sources appears once, with one entry per source. Its score is
//! the highest, its tags the union, its URLs those of the first source (in configuration
//! order) that has them, and its rating the strictest any source gives, so a rating filter
//! never lets through an image that some board rates higher. A post without an MD5 is keyed
//! by its file URL.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::model::{Post, Rating, SourceId};

/// One image of the merged result, as the HTTP contract shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Image {
    pub md5: Option<String>,
    pub file_url: Option<String>,
    pub sample_url: Option<String>,
    pub preview_url: Option<String>,
    pub width: u32,
    pub height: u32,
    pub rating: Rating,
    pub score: i64,
    pub tags: Vec<String>,
    pub sources: Vec<ImageSource>,
}

/// Where one image was found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageSource {
    pub source: SourceId,
    pub id: u64,
    pub post_url: String,
    pub score: i64,
}

/// Merges the posts of each source, given in configuration order, and ranks the images:
/// found on more sources first, then higher score, then MD5 (or file URL) ascending.
pub fn merge(sources: Vec<Vec<Post>>) -> Vec<Image> {
    let mut images: Vec<Image> = Vec::new();
    let mut tag_sets: Vec<HashSet<String>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for post in sources.into_iter().flatten() {
        let Some(key) = image_key(&post) else {
            continue;
        };
        match index.get(&key) {
            Some(&at) => absorb(&mut images[at], &mut tag_sets[at], post),
            None => {
                index.insert(key, images.len());
                tag_sets.push(post.tags.iter().cloned().collect());
                images.push(first_sighting(post));
            }
        }
    }
    images.sort_by(rank);
    images
}

fn image_key(post: &Post) -> Option<String> {
    match (&post.md5, &post.file_url) {
        (Some(md5), _) => Some(md5.clone()),
        (None, Some(url)) => Some(format!("url:{url}")),
        (None, None) => None,
    }
}

fn first_sighting(post: Post) -> Image {
    let source = ImageSource {
        source: post.source,
        id: post.id,
        post_url: post.post_url,
        score: post.score,
    };
    Image {
        md5: post.md5,
        file_url: post.file_url,
        sample_url: post.sample_url,
        preview_url: post.preview_url,
        width: post.width,
        height: post.height,
        rating: post.rating,
        score: post.score,
        tags: post.tags,
        sources: vec![source],
    }
}

/// Folds a later sighting of the same image into it.
fn absorb(image: &mut Image, tags: &mut HashSet<String>, post: Post) {
    let seen = image
        .sources
        .iter()
        .any(|known| known.source == post.source && known.id == post.id);
    if seen {
        return;
    }
    if image.file_url.is_none() && post.file_url.is_some() {
        image.file_url = post.file_url;
        image.width = post.width;
        image.height = post.height;
    }
    image.sample_url = image.sample_url.take().or(post.sample_url);
    image.preview_url = image.preview_url.take().or(post.preview_url);
    image.rating = image.rating.max(post.rating);
    image.score = image.score.max(post.score);
    for tag in post.tags {
        if tags.insert(tag.clone()) {
            image.tags.push(tag);
        }
    }
    image.sources.push(ImageSource {
        source: post.source,
        id: post.id,
        post_url: post.post_url,
        score: post.score,
    });
}

fn rank(a: &Image, b: &Image) -> Ordering {
    b.sources
        .len()
        .cmp(&a.sources.len())
        .then(b.score.cmp(&a.score))
        .then_with(|| sort_key(a).cmp(sort_key(b)))
}

fn sort_key(image: &Image) -> &str {
    image
        .md5
        .as_deref()
        .or(image.file_url.as_deref())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(source: &str, id: u64, md5: Option<&str>, score: i64, rating: Rating) -> Post {
        Post {
            source: source.into(),
            id,
            md5: md5.map(str::to_string),
            file_url: Some(format!("https://{source}.test/{id}.jpg")),
            sample_url: None,
            preview_url: Some(format!("https://{source}.test/p/{id}.jpg")),
            width: 100,
            height: 200,
            rating,
            score,
            tags: vec![format!("{source}_tag"), "common".into()],
            post_url: format!("https://{source}.test/posts/{id}"),
        }
    }

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccc";

    #[test]
    fn an_image_on_two_sources_appears_once_with_both() {
        let first = vec![post("safebooru", 1, Some(A), 5, Rating::General)];
        let second = vec![post("danbooru", 9, Some(A), 50, Rating::Sensitive)];

        let images = merge(vec![first, second]);

        assert_eq!(images.len(), 1);
        let image = &images[0];
        assert_eq!(image.sources.len(), 2);
        assert_eq!(image.score, 50, "the highest score wins");
        assert_eq!(image.rating, Rating::Sensitive, "the strictest rating wins");
        assert_eq!(
            image.file_url.as_deref(),
            Some("https://safebooru.test/1.jpg")
        );
        assert_eq!(image.tags, vec!["safebooru_tag", "common", "danbooru_tag"]);
    }

    #[test]
    fn urls_come_from_the_first_source_that_has_them() {
        let mut without_file = post("safebooru", 1, Some(A), 5, Rating::General);
        without_file.file_url = None;
        without_file.preview_url = None;
        let with_file = post("danbooru", 2, Some(A), 5, Rating::General);

        let images = merge(vec![vec![without_file], vec![with_file]]);

        assert_eq!(
            images[0].file_url.as_deref(),
            Some("https://danbooru.test/2.jpg")
        );
        assert_eq!(
            images[0].preview_url.as_deref(),
            Some("https://danbooru.test/p/2.jpg")
        );
    }

    #[test]
    fn posts_without_md5_are_keyed_by_file_url_and_without_either_dropped() {
        let by_url = post("danbooru", 1, None, 1, Rating::General);
        let same_url = post("danbooru", 1, None, 1, Rating::General);
        let mut nothing = post("danbooru", 2, None, 1, Rating::General);
        nothing.file_url = None;

        let images = merge(vec![vec![by_url, same_url, nothing]]);

        assert_eq!(images.len(), 1);
        assert_eq!(images[0].md5, None);
    }

    #[test]
    fn ranking_is_sources_then_score_then_md5() {
        let first = vec![
            post("safebooru", 1, Some(C), 10, Rating::General),
            post("safebooru", 2, Some(B), 10, Rating::General),
            post("safebooru", 3, Some(A), 99, Rating::General),
        ];
        let second = vec![post("danbooru", 4, Some(C), 1, Rating::General)];

        let images = merge(vec![first, second]);

        let order: Vec<_> = images.iter().map(|i| i.md5.clone().unwrap()).collect();
        assert_eq!(order, vec![C, A, B]);
    }
}
