//! What a search stores and what it answers: the cached, ranked result and the page of it a
//! client receives.
//!
//! Images are stored already serialised, one after another in shared blocks with their
//! ratings beside them, and so are the per-source reports, so a cached answer is a filter
//! and a slice, not a re-merge or a re-serialisation: [`AnswerText::into_chunks`] hands out
//! a page of consecutive images as slices of those blocks, without copying them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::ser::SerializeSeq;
use serde_json::value::RawValue;

use super::merge::Image;
use super::{SearchQuery, SourceReport, SourceStatus, TagsReport};
use crate::cache::Cacheable;
use crate::gzip::{self, Deflated};
use crate::model::{Rating, SourceId};

/// The complete outcome of one fan-out, as cached.
#[derive(Debug)]
pub struct SearchResult {
    /// Tells this result from every other one made by the process, so that what is derived
    /// from it (a compressed page) is never taken for another's.
    id: u64,
    /// Every image, ranked, serialised.
    pub images: StoredImages,
    /// The report of every enabled source, asked or not.
    pub sources: BTreeMap<SourceId, SourceReport>,
    /// `sources` serialised once: every answer carries it unchanged.
    sources_json: Bytes,
    /// `sources_json` deflated once, for the gzip answers.
    sources_deflated: Deflated,
    /// Whether any asked source is neither `ok` nor `no_tags`.
    pub partial: bool,
    /// Whether `search.max_images` dropped images the sources have.
    pub truncated: bool,
    /// How long the fan-out took, in milliseconds.
    pub elapsed_ms: u64,
}

impl SearchResult {
    /// Stores ranked images and their reports; `truncated` when the bound dropped images.
    pub fn new(
        images: Vec<Image>,
        sources: BTreeMap<SourceId, SourceReport>,
        truncated: bool,
        elapsed: Duration,
    ) -> SearchResult {
        let partial = sources.values().any(|report| {
            !matches!(
                report.status,
                SourceStatus::Ok | SourceStatus::NoTags | SourceStatus::Skipped
            )
        });
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let sources_json = serde_json::to_vec(&sources).expect("reports always serialise");
        SearchResult {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            images: StoredImages::new(images),
            sources,
            sources_deflated: Deflated::new([&sources_json[..]]),
            sources_json: Bytes::from(sources_json),
            partial,
            truncated,
            elapsed_ms: elapsed.as_millis() as u64,
        }
    }
}

impl Cacheable for SearchResult {
    fn weight_bytes(&self) -> usize {
        let reports: usize = (self.sources.iter())
            .map(|(id, report)| id.len() + 256 + report.tags.iter().map(String::len).sum::<usize>())
            .sum();
        self.images.weight_bytes()
            + reports
            + self.sources_json.len()
            + self.sources_deflated.len()
            + size_of::<SearchResult>()
    }

    fn is_partial(&self) -> bool {
        self.partial
    }
}

/// Ranked images as JSON texts, stored in blocks of about [`BLOCK_BYTES`] each holding
/// consecutive images joined by commas (`{..},{..},{..}`), with each image's place and
/// rating in `slots`.
///
/// Blocks rather than one buffer: one buffer would grow by doubling while a large result
/// is stored, briefly holding the result one and a half times over beside the merge it is
/// made from, and a 600-page search has no memory to spare for that. A page of images is
/// then one slice per block it touches, commas included, ready to go between `[` and `]`.
#[derive(Debug)]
pub struct StoredImages {
    blocks: Vec<Bytes>,
    slots: Vec<Slot>,
}

/// The size a block of stored images is sealed at: large enough that a page of images
/// rarely spans two, small enough that the last block's spare room is negligible.
const BLOCK_BYTES: usize = 1 << 20;

/// Where one stored image's text is (block, and byte range within it), and its rating.
#[derive(Debug, Clone, Copy)]
struct Slot {
    block: u32,
    start: u32,
    end: u32,
    rating: Rating,
}

impl StoredImages {
    /// Serialises `images` in their order, dropping each once it is written.
    fn new(images: Vec<Image>) -> StoredImages {
        let mut slots = Vec::with_capacity(images.len());
        let mut blocks = Vec::new();
        let mut block = Vec::with_capacity(BLOCK_BYTES);
        let mut text = Vec::new();
        for image in images {
            text.clear();
            serde_json::to_writer(&mut text, &image).expect("images always serialise");
            if !block.is_empty() && block.len() + 1 + text.len() > BLOCK_BYTES {
                blocks.push(seal(std::mem::replace(
                    &mut block,
                    Vec::with_capacity(BLOCK_BYTES),
                )));
            }
            if !block.is_empty() {
                block.push(b',');
            }
            let start = block.len();
            block.extend_from_slice(&text);
            slots.push(Slot {
                block: offset(blocks.len()),
                start: offset(start),
                end: offset(block.len()),
                rating: image.rating,
            });
        }
        if !block.is_empty() {
            blocks.push(seal(block));
        }
        StoredImages { blocks, slots }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Rating of image `index`.
    fn rating(&self, index: usize) -> Rating {
        self.slots[index].rating
    }

    /// The JSON text of image `index`.
    fn text(&self, index: usize) -> &[u8] {
        let slot = self.slots[index];
        &self.blocks[slot.block as usize][slot.start as usize..slot.end as usize]
    }

    /// Images `first..=last` with their commas, as slices of the blocks they are in.
    fn run(&self, first: usize, last: usize) -> Vec<Bytes> {
        let mut pieces = Vec::new();
        let mut index = first;
        while index <= last {
            let block = self.slots[index].block;
            let mut end = index;
            while end < last && self.slots[end + 1].block == block {
                end += 1;
            }
            if !pieces.is_empty() {
                pieces.push(Bytes::from_static(b","));
            }
            let (from, to) = (self.slots[index].start, self.slots[end].end);
            pieces.push(self.blocks[block as usize].slice(from as usize..to as usize));
            index = end + 1;
        }
        pieces
    }

    fn weight_bytes(&self) -> usize {
        let blocks: usize = self.blocks.iter().map(Bytes::len).sum();
        blocks + self.slots.len() * size_of::<Slot>() + self.blocks.len() * size_of::<Bytes>()
    }
}

/// A finished block, without spare capacity: `Bytes` keeps the whole allocation alive, and
/// the weigher counts only the length.
fn seal(mut block: Vec<u8>) -> Bytes {
    block.shrink_to_fit();
    Bytes::from(block)
}

/// A block number or a position in a block, which are far below 4 GiB.
fn offset(value: usize) -> u32 {
    u32::try_from(value).expect("blocks and their number stay far below 4 GiB")
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
    /// Whether the search stopped at `search.max_images` images, leaving some out.
    pub truncated: bool,
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
        raw(&self.0.sources_json).serialize(serializer)
    }
}

/// The images of one page: indices into the shared cached result.
#[derive(Debug)]
pub struct PageImages {
    result: Arc<SearchResult>,
    /// The ratings kept (bits of [`Rating::bit`]).
    mask: u8,
    indices: Vec<u32>,
}

/// Which images of which result a page holds: the first one and how many, of the images
/// whose rating is in the mask. Equal keys mean equal page texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageKey {
    result: u64,
    mask: u8,
    first: u32,
    len: u32,
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

    /// What tells this page's text from every other page's.
    pub fn key(&self) -> PageKey {
        PageKey {
            result: self.result.id,
            mask: self.mask,
            first: self.indices.first().copied().unwrap_or(0),
            len: offset(self.indices.len()),
        }
    }

    /// The page's images as they go between `[` and `]`: slices of the cached blocks when
    /// they are consecutive there (always, unless a rating filter skips some), else a copy.
    pub fn joined(&self) -> Vec<Bytes> {
        let images = &self.result.images;
        let (Some(&first), Some(&last)) = (self.indices.first(), self.indices.last()) else {
            return Vec::new();
        };
        if (last - first) as usize + 1 == self.indices.len() {
            return images.run(first as usize, last as usize);
        }
        let size: usize = (self.indices.iter())
            .map(|&index| images.text(index as usize).len() + 1)
            .sum();
        let mut joined = BytesMut::with_capacity(size);
        for (n, &index) in self.indices.iter().enumerate() {
            if n > 0 {
                joined.put_u8(b',');
            }
            joined.put_slice(images.text(index as usize));
        }
        vec![joined.freeze()]
    }
}

impl Serialize for PageImages {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.indices.len()))?;
        for &index in &self.indices {
            seq.serialize_element(&raw(self.result.images.text(index as usize)))?;
        }
        seq.end()
    }
}

/// Stored JSON text as a value serde writes through unchanged.
fn raw(json: &[u8]) -> &RawValue {
    let text = std::str::from_utf8(json).expect("stored JSON is serde_json output, so UTF-8");
    // Stored text came from serde_json, so it parses; the check costs a scan, never a copy.
    serde_json::from_str(text).expect("stored JSON is serde_json output, so valid")
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
                mask,
                indices,
            },
            total,
            max_pages: total.div_ceil(per_page),
            sources: Reports(Arc::clone(result)),
            partial: result.partial,
            truncated: result.truncated,
            cached,
            elapsed_ms: elapsed.as_millis() as u64,
        }
    }

    /// The answer's text in its parts: what changes per request, and what is the cache's.
    /// Sent as [`AnswerText::into_chunks`] or [`AnswerText::into_gzip`], it is the same text
    /// `Serialize` writes.
    pub fn into_text(self) -> AnswerText {
        let mut head = b"{\"query\":".to_vec();
        serde_json::to_writer(&mut head, &self.query).expect("the query echo always serialises");
        head.extend_from_slice(b",\"images\":[");
        let middle = format!(
            "],\"total\":{},\"page\":{},\"per_page\":{},\"max_pages\":{},\"sources\":",
            self.total, self.page, self.per_page, self.max_pages
        );
        let tail = format!(
            ",\"partial\":{},\"truncated\":{},\"cached\":{},\"elapsed_ms\":{}}}",
            self.partial, self.truncated, self.cached, self.elapsed_ms
        );
        AnswerText {
            head: Bytes::from(head),
            images: self.images,
            middle: Bytes::from(middle),
            sources: self.sources,
            tail: Bytes::from(tail),
        }
    }
}

/// A search answer's JSON text as five parts: the images and the reports are the cached
/// result's, the rest is written for the request.
#[derive(Debug)]
pub struct AnswerText {
    head: Bytes,
    images: PageImages,
    middle: Bytes,
    sources: Reports,
    tail: Bytes,
}

impl AnswerText {
    /// The images of the page.
    pub fn images(&self) -> &PageImages {
        &self.images
    }

    /// The text in pieces, the images and reports as slices of the cached result, so a
    /// cached answer copies neither.
    pub fn into_chunks(self) -> Vec<Bytes> {
        let mut chunks = vec![self.head];
        chunks.extend(self.images.joined());
        chunks.extend([self.middle, self.sources.0.sources_json.clone(), self.tail]);
        chunks
    }

    /// The text as one gzip member, given the page's images deflated (from
    /// [`PageImages::joined`], perhaps for an earlier request): only the parts written for
    /// this request are new, and they are small.
    pub fn into_gzip(self, images: &Deflated) -> Vec<Bytes> {
        gzip::member([
            gzip::Part::Plain(&self.head),
            gzip::Part::Deflated(images),
            gzip::Part::Plain(&self.middle),
            gzip::Part::Deflated(&self.sources.0.sources_deflated),
            gzip::Part::Plain(&self.tail),
        ])
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
    for index in 0..result.images.len() {
        if result.images.rating(index).bit() & mask == 0 {
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
    use crate::search::merge::test_image as image;

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
        let report = SourceReport {
            status: SourceStatus::Partial,
            tags: vec!["anya_(spy_x_family)".into()],
            pages: 2,
            posts: 5,
            skipped_posts: 1,
            pages_skipped: 3,
            elapsed_ms: 12,
            error: Some("page 3 failed: \"quoted\" reason".into()),
        };
        let sources = BTreeMap::from([(SourceId::from("x"), report)]);
        Arc::new(SearchResult::new(images, sources, true, Duration::ZERO))
    }

    /// The bytes a page goes out as, joined.
    fn sent(page: SearchPage) -> Vec<u8> {
        page.into_text().into_chunks().concat()
    }

    #[test]
    fn the_pieces_sent_are_exactly_what_serialize_writes() {
        let all = Rating::ALL.to_vec();
        let cases = [
            query(1, 2, all.clone()),
            query(2, 2, all.clone()),
            query(1, 100, all.clone()),
            query(9, 2, all),
            query(1, 3, vec![Rating::General, Rating::Sensitive]),
            query(1, 5, vec![Rating::Questionable]),
        ];
        for (n, query) in cases.into_iter().enumerate() {
            let cut = || SearchPage::cut(&result(), query.clone(), n % 2 == 0, Duration::ZERO);
            let written = serde_json::to_vec(&cut()).unwrap();
            assert_eq!(
                String::from_utf8(sent(cut())).unwrap(),
                String::from_utf8(written).unwrap(),
                "case {n}"
            );
        }
    }

    #[test]
    fn the_gzip_answer_inflates_to_exactly_the_plain_one() {
        use std::io::Read;
        let all = Rating::ALL.to_vec();
        let result = result();
        let cases = [
            query(1, 2, all.clone()),
            query(2, 2, all.clone()),
            query(9, 2, all),
            query(1, 3, vec![Rating::General, Rating::Sensitive]),
        ];
        for (n, query) in cases.into_iter().enumerate() {
            let cut = || SearchPage::cut(&result, query.clone(), true, Duration::ZERO);
            let text = cut().into_text();
            let pieces = text.images().joined();
            let images = Deflated::new(pieces.iter().map(|piece| &piece[..]));
            let member: Vec<u8> = text.into_gzip(&images).concat();
            let mut inflated = Vec::new();
            flate2::read::GzDecoder::new(&member[..])
                .read_to_end(&mut inflated)
                .unwrap();
            assert_eq!(inflated, sent(cut()), "case {n}");
        }
    }

    #[test]
    fn pages_with_the_same_images_share_a_key_and_no_others_do() {
        let (first, second) = (result(), result());
        let key = |result: &Arc<SearchResult>, page, per_page, ratings: &[Rating]| {
            let query = query(page, per_page, ratings.to_vec());
            SearchPage::cut(result, query, true, Duration::ZERO)
                .images
                .key()
        };
        let all = Rating::ALL;
        assert_eq!(key(&first, 1, 2, &all), key(&first, 1, 2, &all));
        assert_ne!(
            key(&first, 1, 2, &all),
            key(&second, 1, 2, &all),
            "another result"
        );
        assert_ne!(key(&first, 1, 2, &all), key(&first, 2, 2, &all));
        assert_ne!(key(&first, 1, 2, &all), key(&first, 1, 3, &all));
        let general = [Rating::General];
        assert_ne!(key(&first, 1, 2, &all), key(&first, 1, 2, &general));
    }

    #[test]
    fn a_page_of_consecutive_images_is_a_slice_of_the_cache() {
        let result = result();
        let page = SearchPage::cut(
            &result,
            query(1, 3, Rating::ALL.to_vec()),
            true,
            Duration::ZERO,
        );
        let pieces = page.images.joined();
        assert_eq!(pieces.len(), 1, "five small images share one block");
        let block = result.images.blocks[0].as_ptr_range();
        assert!(block.contains(&pieces[0].as_ptr()), "the page was copied");
        let parsed: serde_json::Value =
            serde_json::from_slice(&[b"[", &pieces[0][..], b"]"].concat()).unwrap();
        assert_eq!(parsed.as_array().unwrap().len(), 3);
    }

    /// A result of `n` images whose texts fill several blocks.
    fn large(n: u32) -> Arc<SearchResult> {
        let images = (0..n)
            .map(|i| {
                let mut image = image(i, Rating::ALL[i as usize % 4]);
                image.tags = crate::model::Tags::from_text(&"long_tag_name ".repeat(40));
                image
            })
            .collect();
        Arc::new(SearchResult::new(
            images,
            BTreeMap::new(),
            false,
            Duration::ZERO,
        ))
    }

    #[test]
    fn images_fill_blocks_of_bounded_size_and_pages_span_them_intact() {
        let result = large(6000);
        let blocks = &result.images.blocks;
        assert!(blocks.len() > 2, "{} blocks", blocks.len());
        assert!(blocks.iter().all(|block| block.len() <= BLOCK_BYTES));
        let stored: usize = blocks.iter().map(Bytes::len).sum();
        assert!(result.weight_bytes() >= stored);

        let boundary = (0..result.images.len())
            .find(|&i| result.images.slots[i + 1].block != result.images.slots[i].block)
            .unwrap();
        let per_page = 10;
        let page = (boundary / per_page + 1) as u32;
        let all = Rating::ALL.to_vec();
        let cut = || {
            SearchPage::cut(
                &result,
                query(page, per_page as u32, all.clone()),
                true,
                Duration::ZERO,
            )
        };
        assert!(
            cut().images.joined().len() > 1,
            "the page should span a block boundary"
        );
        let json: serde_json::Value = serde_json::from_slice(&sent(cut())).unwrap();
        let ids: Vec<u64> = (json["images"].as_array().unwrap().iter())
            .map(|image| image["sources"][0]["id"].as_u64().unwrap())
            .collect();
        let first = (page as u64 - 1) * per_page as u64;
        assert_eq!(ids, (first..first + per_page as u64).collect::<Vec<_>>());
        assert_eq!(sent(cut()), serde_json::to_vec(&cut()).unwrap());
    }

    #[test]
    fn the_reports_are_stored_serialised_and_sent_unchanged() {
        let page = SearchPage::cut(
            &result(),
            query(1, 1, Rating::ALL.to_vec()),
            false,
            Duration::ZERO,
        );
        let json: serde_json::Value = serde_json::from_slice(&sent(page)).unwrap();
        assert_eq!(json["sources"]["x"]["status"], "partial");
        assert_eq!(
            json["sources"]["x"]["error"],
            "page 3 failed: \"quoted\" reason"
        );
        assert_eq!(json["partial"], true);
        assert_eq!(json["cached"], false);
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
