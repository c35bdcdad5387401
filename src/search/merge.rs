//! The merge: the union of every source's posts, one image per MD5, ranked.
//!
//! An image seen on several sources appears once, with one entry per source, even when one
//! board has it twice (that board's entry is its higher-scored post). Its score is the
//! highest, its tags the union, each of its URLs that of the first source (in configuration
//! order) that has it, and its rating the strictest any source gives, so a rating filter
//! never lets through an image that some board rates higher. A post without an MD5 is keyed
//! by its file URL.
//!
//! Pages are merged as they arrive, in whatever order the sources answer, so a search
//! never holds a second copy of an image seen twice; the rules above depend only on each
//! source's rank and each post's score and id, never on arrival order.
//!
//! A merge holds at most a set number of distinct images (`search.max_images`), since every
//! image held costs memory for the whole search and again in the cache. Once it holds that
//! many, a post of an image not yet held is dropped and counted, while posts of images
//! already held still fold in. Which images are kept then depends on arrival order; the
//! paging stops asking for pages once posts are dropped (see [`super::pages`]).

use std::cmp::{Ordering, Reverse};
use std::collections::HashMap;

use serde::Serialize;

use crate::model::{Post, Rating, SourceId, Tags};

/// One image of the merged result, as the HTTP contract shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Image {
    /// 32 lowercase hex digits; `null` when no source shows it (then keyed by file URL).
    pub md5: Option<String>,
    pub file_url: Option<String>,
    pub sample_url: Option<String>,
    pub preview_url: Option<String>,
    pub width: u32,
    pub height: u32,
    pub rating: Rating,
    /// The highest score any source gives.
    pub score: i64,
    /// The union of every source's tags.
    #[schema(value_type = Vec<String>)]
    pub tags: Tags,
    /// One entry per source the image was found on, in configuration order.
    pub sources: Vec<ImageSource>,
}

/// Where one image was found.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImageSource {
    #[schema(value_type = String)]
    pub source: SourceId,
    pub id: u64,
    pub post_url: String,
    pub score: i64,
}

/// What identifies an image: its MD5, or its file URL when the source hides the MD5.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Key {
    Md5([u8; 16]),
    Url(String),
}

/// An image being merged, with the post each URL came from.
#[derive(Debug)]
struct Entry {
    image: Image,
    /// The post each image field came from: file (with size), sample, preview.
    origins: [Preference; 3],
    /// Rank of each entry of `image.sources`, in the same order.
    source_ranks: Vec<usize>,
    /// Whether more than one post was folded in, so the tags are a union to sort.
    folded: bool,
}

/// How much a post's values are preferred, best first: its source's rank, then (between
/// two posts of one source) the higher score, then the lower id. Only the rank and the
/// post decide, never the order of arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Preference {
    rank: usize,
    score: Reverse<i64>,
    id: u64,
}

impl Preference {
    fn new(rank: usize, score: i64, id: u64) -> Preference {
        Preference {
            rank,
            score: Reverse(score),
            id,
        }
    }
}

/// Accumulates posts from any source in any order and yields the ranked images.
#[derive(Debug)]
pub struct Merger {
    entries: Vec<Entry>,
    index: HashMap<Key, usize>,
    /// Most distinct images held.
    max_images: usize,
    /// Posts dropped because they would have been an image past `max_images`.
    dropped: u64,
}

impl Merger {
    /// An empty merge that holds at most `max_images` distinct images.
    pub fn new(max_images: usize) -> Merger {
        Merger {
            entries: Vec::new(),
            index: HashMap::new(),
            max_images,
            dropped: 0,
        }
    }

    /// Adds a post from the source ranked `rank` (its position in configuration order).
    ///
    /// A post of an image not yet held is dropped, and counted, when the merge already
    /// holds `max_images` images.
    pub fn add(&mut self, post: Post, rank: usize) {
        let Some(key) = key_of(&post) else {
            return;
        };
        match self.index.get(&key) {
            Some(&at) => self.entries[at].absorb(post, rank),
            None if self.entries.len() >= self.max_images => self.dropped += 1,
            None => {
                self.index.insert(key, self.entries.len());
                self.entries.push(Entry::first_sighting(post, rank));
            }
        }
    }

    /// Posts dropped so far because the merge held `max_images` images: more than 0 means
    /// the result lacks images the sources have.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Number of distinct images so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no image has been added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The images, ranked: found on more distinct sources first, then higher score, then MD5
    /// (or file URL) ascending. Each image lists its sources in configuration order.
    pub fn finish(self) -> Vec<Image> {
        let mut images: Vec<Image> = self.entries.into_iter().map(Entry::finish).collect();
        images.sort_by(rank);
        images
    }
}

/// Merges the posts of each source, given in configuration order, without a bound.
pub fn merge(sources: Vec<Vec<Post>>) -> Vec<Image> {
    let mut merger = Merger::new(usize::MAX);
    for (rank, posts) in sources.into_iter().enumerate() {
        for post in posts {
            merger.add(post, rank);
        }
    }
    merger.finish()
}

fn key_of(post: &Post) -> Option<Key> {
    if let Some(md5) = post.md5.as_deref().and_then(md5_bytes) {
        return Some(Key::Md5(md5));
    }
    post.file_url.as_ref().map(|url| Key::Url(url.clone()))
}

/// The 16 bytes of a 32-digit hex MD5.
fn md5_bytes(hex: &str) -> Option<[u8; 16]> {
    let digits = hex.as_bytes();
    if digits.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(text, 16).ok()?;
    }
    Some(bytes)
}

impl Entry {
    fn first_sighting(post: Post, rank: usize) -> Entry {
        let origin = Preference::new(rank, post.score, post.id);
        let image = Image {
            md5: post.md5,
            file_url: post.file_url,
            sample_url: post.sample_url,
            preview_url: post.preview_url,
            width: post.width,
            height: post.height,
            rating: post.rating,
            score: post.score,
            tags: post.tags,
            sources: vec![ImageSource {
                source: post.source,
                id: post.id,
                post_url: post.post_url,
                score: post.score,
            }],
        };
        Entry {
            image,
            origins: [origin; 3],
            source_ranks: vec![rank],
            folded: false,
        }
    }

    /// Folds a later sighting of the same image into it.
    ///
    /// A second post of a source already listed (an upload repeated on one board) does not
    /// add a source: the source's entry keeps the preferred of the two posts, so an image
    /// ranks by the boards that have it, not by how often one board has it.
    fn absorb(&mut self, mut post: Post, rank: usize) {
        let known = self
            .image
            .sources
            .iter()
            .position(|known| known.source == post.source);
        if known.is_some_and(|at| self.image.sources[at].id == post.id) {
            // The same post again, found under another of the source's tags.
            return;
        }
        self.folded = true;
        let offered = Preference::new(rank, post.score, post.id);
        self.take_urls(&mut post, offered);
        let image = &mut self.image;
        image.rating = image.rating.max(post.rating);
        image.score = image.score.max(post.score);
        for tag in post.tags.iter() {
            if !image.tags.contains(tag) {
                image.tags.push(tag);
            }
        }
        let sighting = ImageSource {
            source: post.source,
            id: post.id,
            post_url: post.post_url,
            score: post.score,
        };
        self.list_source(known, sighting, offered);
    }

    /// Lists `sighting` as a new source, or in place of the source's entry at `known` when
    /// it is the preferred post of that source.
    fn list_source(&mut self, known: Option<usize>, sighting: ImageSource, offered: Preference) {
        let Some(at) = known else {
            self.image.sources.push(sighting);
            self.source_ranks.push(offered.rank);
            return;
        };
        let kept = &mut self.image.sources[at];
        if offered < Preference::new(offered.rank, kept.score, kept.id) {
            *kept = sighting;
        }
    }

    /// Takes each of `post`'s URLs that the image lacks or has from a less preferred post.
    fn take_urls(&mut self, post: &mut Post, offered: Preference) {
        let image = &mut self.image;
        if post.file_url.is_some() && (image.file_url.is_none() || offered < self.origins[0]) {
            image.file_url = post.file_url.take();
            image.width = post.width;
            image.height = post.height;
            self.origins[0] = offered;
        }
        let [_, sample, preview] = &mut self.origins;
        take_if_better(&mut image.sample_url, &mut post.sample_url, sample, offered);
        take_if_better(
            &mut image.preview_url,
            &mut post.preview_url,
            preview,
            offered,
        );
    }

    fn finish(self) -> Image {
        let mut image = self.image;
        if self.folded {
            // Tags were appended in arrival order; sorting makes the union deterministic.
            image.tags = image.tags.sorted();
        }
        if image.sources.len() > 1 {
            let mut sources: Vec<(usize, ImageSource)> =
                self.source_ranks.into_iter().zip(image.sources).collect();
            sources.sort_by_key(|(rank, _)| *rank);
            image.sources = sources.into_iter().map(|(_, source)| source).collect();
        }
        image
    }
}

/// Keeps the value from the most preferred post that has one.
fn take_if_better(
    slot: &mut Option<String>,
    offered: &mut Option<String>,
    origin: &mut Preference,
    preference: Preference,
) {
    if offered.is_some() && (slot.is_none() || preference < *origin) {
        *slot = offered.take();
        *origin = preference;
    }
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

/// A small image numbered `n` (its MD5 and URL derived from it), for tests elsewhere.
#[cfg(test)]
pub(crate) fn test_image(n: u32, rating: Rating) -> Image {
    Image {
        md5: Some(format!("{n:032x}")),
        file_url: Some(format!("https://x.test/{n}.jpg")),
        sample_url: None,
        preview_url: None,
        width: 1,
        height: 1,
        rating,
        score: 0,
        tags: Default::default(),
        sources: vec![ImageSource {
            source: "x".into(),
            id: n.into(),
            post_url: String::new(),
            score: 0,
        }],
    }
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
            tags: Tags::from_text(&format!("{source}_tag common")),
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
        assert_eq!(image.tags, ["common", "danbooru_tag", "safebooru_tag"]);
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
    fn arrival_order_does_not_change_the_result() {
        let early = post("danbooru", 2, Some(A), 7, Rating::Explicit);
        let late = post("safebooru", 1, Some(A), 5, Rating::General);
        let mut merger = Merger::new(usize::MAX);
        merger.add(early.clone(), 1);
        merger.add(late.clone(), 0);

        let arrived_backwards = merger.finish();

        assert_eq!(arrived_backwards, merge(vec![vec![late], vec![early]]));
        let image = &arrived_backwards[0];
        assert_eq!(
            image.file_url.as_deref(),
            Some("https://safebooru.test/1.jpg")
        );
        assert_eq!(image.sources[0].source.as_ref(), "safebooru");
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

    #[test]
    fn a_repeated_upload_on_one_source_is_one_source_entry() {
        let first = post("safebooru", 1, Some(A), 5, Rating::General);
        let mut repeat = post("safebooru", 2, Some(A), 9, Rating::Sensitive);
        repeat.tags = Tags::from_text("repost");

        let images = merge(vec![vec![first, repeat]]);

        assert_eq!(images.len(), 1);
        let image = &images[0];
        let listed: Vec<_> = image.sources.iter().map(|s| (s.id, s.score)).collect();
        assert_eq!(listed, [(2, 9)], "the source keeps its higher-scored post");
        assert_eq!(image.score, 9);
        assert_eq!(image.rating, Rating::Sensitive);
        assert_eq!(image.tags, ["common", "repost", "safebooru_tag"]);
        assert_eq!(
            image.file_url.as_deref(),
            Some("https://safebooru.test/2.jpg")
        );
    }

    #[test]
    fn ranking_counts_distinct_sources_not_repeated_uploads() {
        let first = vec![
            post("safebooru", 1, Some(A), 99, Rating::General),
            post("safebooru", 2, Some(A), 98, Rating::General),
            post("safebooru", 3, Some(B), 1, Rating::General),
        ];
        let second = vec![post("danbooru", 4, Some(B), 1, Rating::General)];

        let images = merge(vec![first, second]);

        let order: Vec<_> = images.iter().map(|i| i.md5.clone().unwrap()).collect();
        assert_eq!(order, vec![B, A], "two boards beat one board twice");
    }

    #[test]
    fn repeated_uploads_fold_the_same_in_any_arrival_order() {
        let low = post("safebooru", 1, Some(A), 5, Rating::General);
        let high = post("safebooru", 2, Some(A), 9, Rating::General);
        let other = post("danbooru", 3, Some(A), 7, Rating::General);
        let mut backwards = Merger::new(usize::MAX);
        backwards.add(other.clone(), 1);
        backwards.add(high.clone(), 0);
        backwards.add(low.clone(), 0);

        assert_eq!(
            backwards.finish(),
            merge(vec![vec![low, high], vec![other]])
        );
    }

    #[test]
    fn a_full_merge_drops_and_counts_posts_of_new_images() {
        let mut merger = Merger::new(2);
        merger.add(post("safebooru", 1, Some(A), 5, Rating::General), 0);
        merger.add(post("safebooru", 2, Some(B), 5, Rating::General), 0);
        assert_eq!(
            merger.dropped(),
            0,
            "holding exactly the bound drops nothing"
        );

        merger.add(post("danbooru", 3, Some(C), 99, Rating::General), 1);
        merger.add(post("danbooru", 4, None, 1, Rating::General), 1);
        let mut keyless = post("danbooru", 5, None, 1, Rating::General);
        keyless.file_url = None;
        merger.add(keyless, 1);

        assert_eq!(merger.len(), 2);
        assert_eq!(
            merger.dropped(),
            2,
            "the new MD5 and the new URL; a post without a key is no image"
        );
        let kept: Vec<_> = (merger.finish().into_iter())
            .map(|image| image.md5.unwrap())
            .collect();
        assert_eq!(kept, [A, B]);
    }

    #[test]
    fn a_full_merge_still_folds_in_posts_of_images_it_holds() {
        let mut merger = Merger::new(1);
        merger.add(post("danbooru", 1, Some(A), 5, Rating::General), 1);
        merger.add(post("safebooru", 2, Some(B), 50, Rating::General), 0);
        merger.add(post("safebooru", 3, Some(A), 9, Rating::Explicit), 0);

        assert_eq!(merger.dropped(), 1);
        let images = merger.finish();
        assert_eq!(images.len(), 1);
        let image = &images[0];
        let sources: Vec<_> = image.sources.iter().map(|s| s.source.as_ref()).collect();
        assert_eq!(sources, ["safebooru", "danbooru"]);
        assert_eq!((image.score, image.rating), (9, Rating::Explicit));
        assert_eq!(image.tags, ["common", "danbooru_tag", "safebooru_tag"]);
        assert_eq!(
            image.file_url.as_deref(),
            Some("https://safebooru.test/3.jpg")
        );
    }

    #[test]
    fn md5_keys_are_case_insensitive_bytes() {
        assert_eq!(md5_bytes(&A.to_uppercase()), md5_bytes(A));
        assert_eq!(md5_bytes("not hex at all, thirty-two chars"), None);
        assert_eq!(md5_bytes("abc"), None);
    }
}
