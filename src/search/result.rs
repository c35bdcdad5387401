//! What a search stores and what it answers: the cached, ranked result and the page of it a
//! client receives.
//!
//! Images are stored already serialised (one JSON text each) with their rating beside them,
//! so a cached answer is a filter and a slice, not a re-merge or a re-serialisation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::ser::SerializeSeq;
use serde_json::value::RawValue;

use super::merge::Image;
use super::{SearchQuery, SourceReport, SourceStatus, TagsReport};
use crate::cache::Cacheable;
use crate::model::{Rating, SourceId};

/// One merged image, serialised once.
#[derive(Debug)]
pub struct StoredImage {
    pub rating: Rating,
    pub json: Box<RawValue>,
}

/// The complete outcome of one fan-out, as cached.
#[derive(Debug)]
pub struct SearchResult {
    /// Every image, ranked.
    pub images: Vec<StoredImage>,
    /// The report of every enabled source, asked or not.
    pub sources: BTreeMap<SourceId, SourceReport>,
    /// Whether any asked source is neither `ok` nor `no_tags`.
    pub partial: bool,
    /// How long the fan-out took, in milliseconds.
    pub elapsed_ms: u64,
}

impl SearchResult {
    /// Stores ranked images and their reports.
    pub fn new(
        images: Vec<Image>,
        sources: BTreeMap<SourceId, SourceReport>,
        elapsed: Duration,
    ) -> SearchResult {
        let images = images.into_iter().map(|image| store(&image)).collect();
        let partial = sources.values().any(|report| {
            !matches!(
                report.status,
                SourceStatus::Ok | SourceStatus::NoTags | SourceStatus::Skipped
            )
        });
        SearchResult {
            images,
            sources,
            partial,
            elapsed_ms: elapsed.as_millis() as u64,
        }
    }
}

fn store(image: &Image) -> StoredImage {
    let text = serde_json::to_string(image).expect("images always serialise");
    StoredImage {
        rating: image.rating,
        json: RawValue::from_string(text).expect("serde_json output is valid JSON"),
    }
}

impl Cacheable for SearchResult {
    fn weight_bytes(&self) -> usize {
        let images: usize = self
            .images
            .iter()
            .map(|image| image.json.get().len() + size_of::<StoredImage>())
            .sum();
        let reports: usize = self
            .sources
            .iter()
            .map(|(id, report)| id.len() + 256 + report.tags.iter().map(String::len).sum::<usize>())
            .sum();
        images + reports + size_of::<SearchResult>()
    }

    fn is_partial(&self) -> bool {
        self.partial
    }
}

/// The `/v1/search` answer: one page of the merged images and the per-source report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchPage {
    /// The question as understood: normalised, with defaults filled in.
    #[schema(value_type = crate::api::openapi::SearchQueryEcho)]
    pub query: QueryEcho,
    /// The images of the asked page, ranked.
    #[schema(value_type = Vec<Image>)]
    pub images: PageImages,
    /// Images after de-duplication and the rating filter.
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
    /// Pages of `per_page` images the whole result fills.
    pub max_pages: u64,
    /// The report of every enabled source by id, asked or not.
    #[schema(value_type = BTreeMap<String, SourceReport>)]
    pub sources: Reports,
    pub partial: bool,
    pub cached: bool,
    /// Time this request took, in milliseconds.
    pub elapsed_ms: u64,
}

/// The question a search answered, echoed in its answer.
#[derive(Debug, Serialize)]
pub struct QueryEcho {
    pub character: String,
    pub series: Option<String>,
    pub sources: Vec<SourceId>,
    pub rating: Vec<Rating>,
    pub max_pages: u32,
}

/// The per-source reports of the shared cached result, serialised in place.
#[derive(Debug)]
pub struct Reports(Arc<SearchResult>);

impl Serialize for Reports {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.sources.serialize(serializer)
    }
}

/// The images of one page: indices into the shared cached result.
#[derive(Debug)]
pub struct PageImages {
    result: Arc<SearchResult>,
    indices: Vec<u32>,
}

impl PageImages {
    /// Number of images on the page.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the page is empty.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

impl Serialize for PageImages {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.indices.len()))?;
        for &index in &self.indices {
            seq.serialize_element(&self.result.images[index as usize].json)?;
        }
        seq.end()
    }
}

impl SearchPage {
    /// Cuts the page `query` asks for out of `result`, applying its rating filter.
    ///
    /// Nothing of the result is copied: the page refers to the cached images and reports,
    /// which serialise straight from the cache.
    pub fn cut(
        result: &Arc<SearchResult>,
        query: SearchQuery,
        cached: bool,
        elapsed: Duration,
    ) -> SearchPage {
        let mask = query
            .ratings
            .iter()
            .fold(0u8, |mask, rating| mask | rating.bit());
        let per_page = u64::from(query.per_page.max(1));
        let start = u64::from(query.page.max(1) - 1).saturating_mul(per_page);
        let (total, indices) = select(result, mask, start, per_page);
        SearchPage {
            page: query.page,
            per_page: query.per_page,
            query: QueryEcho {
                character: query.character,
                series: query.series,
                sources: query.sources,
                rating: query.ratings,
                max_pages: query.max_pages,
            },
            images: PageImages {
                result: Arc::clone(result),
                indices,
            },
            total,
            max_pages: total.div_ceil(per_page),
            sources: Reports(Arc::clone(result)),
            partial: result.partial,
            cached,
            elapsed_ms: elapsed.as_millis() as u64,
        }
    }
}

/// Counts the images whose rating is in `mask` and picks those in `[start, start + len)`.
fn select(result: &SearchResult, mask: u8, start: u64, len: u64) -> (u64, Vec<u32>) {
    let all = Rating::ALL.iter().fold(0u8, |m, r| m | r.bit());
    if mask & all == all {
        let total = result.images.len() as u64;
        let end = start.saturating_add(len).min(total);
        return (total, (start.min(total)..end).map(|i| i as u32).collect());
    }
    let mut total = 0u64;
    let mut indices = Vec::new();
    for (index, image) in result.images.iter().enumerate() {
        if image.rating.bit() & mask == 0 {
            continue;
        }
        if total >= start && total < start.saturating_add(len) {
            indices.push(index as u32);
        }
        total += 1;
    }
    (total, indices)
}

/// The `/v1/tags` answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TagsAnswer {
    /// The question as understood: normalised, with defaults filled in.
    #[schema(value_type = crate::api::openapi::TagsQueryEcho)]
    pub query: serde_json::Value,
    /// The report of every asked source by id.
    #[schema(value_type = BTreeMap<String, TagsReport>)]
    pub sources: BTreeMap<SourceId, TagsReport>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::merge::ImageSource;

    fn image(n: u32, rating: Rating) -> Image {
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

    fn query(page: u32, per_page: u32, ratings: Vec<Rating>) -> SearchQuery {
        SearchQuery {
            character: "a".into(),
            series: None,
            sources: vec![],
            ratings,
            max_pages: 1,
            page,
            per_page,
            fresh: false,
        }
    }

    fn result() -> Arc<SearchResult> {
        let ratings = [
            Rating::General,
            Rating::Explicit,
            Rating::General,
            Rating::Sensitive,
            Rating::General,
        ];
        let images: Vec<Image> = ratings
            .iter()
            .enumerate()
            .map(|(n, r)| image(n as u32, *r))
            .collect();
        Arc::new(SearchResult::new(images, BTreeMap::new(), Duration::ZERO))
    }

    #[test]
    fn pages_are_cut_from_the_ranked_result() {
        let page = SearchPage::cut(
            &result(),
            query(2, 2, Rating::ALL.to_vec()),
            true,
            Duration::ZERO,
        );
        assert_eq!(
            (page.total, page.max_pages, page.images.indices),
            (5, 3, vec![2, 3])
        );
    }

    #[test]
    fn a_page_past_the_end_is_empty() {
        let page = SearchPage::cut(
            &result(),
            query(9, 2, Rating::ALL.to_vec()),
            true,
            Duration::ZERO,
        );
        assert!(page.images.is_empty());
        assert_eq!(page.total, 5);
    }

    #[test]
    fn the_rating_filter_counts_and_pages_only_kept_images() {
        let page = SearchPage::cut(
            &result(),
            query(1, 2, vec![Rating::General]),
            false,
            Duration::ZERO,
        );
        assert_eq!(
            (page.total, page.max_pages, page.images.indices.as_slice()),
            (3, 2, [0, 2].as_slice())
        );
        let json = serde_json::to_value(&page).unwrap();
        assert_eq!(json["images"][1]["md5"], format!("{:032x}", 2));
    }
}
