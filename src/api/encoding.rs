//! The content coding of search answers: gzip for a client that accepts it, else identity.
//!
//! An answer of 100 images is about 130 kB of JSON and compresses to a fraction of that;
//! the chat bot's HTTP library asks for gzip by default, curl only with `--compressed`.
//! A page's images are deflated once, on the first gzip request for that page, and kept
//! in [`CompressedPages`]; every later answer with that page reuses them, so a cached
//! gzip answer costs a look-up and a few hundred bytes of new text (see [`crate::gzip`]).
//! The deflate itself (about 1 ms for 100 images, ten for 1000) runs on the blocking
//! pool, so that it never holds up the other requests of a runtime worker.

use std::sync::Arc;
use std::time::Duration;

use axum::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, VARY};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::body::JsonChunks;
use crate::cache::{Cacheable, ResultCache};
use crate::gzip::Deflated;
use crate::search::{PageImages, PageKey, SearchPage};

/// Deflated pages of cached results, bounded by memory.
///
/// Keys name their result by its process-unique id, so a page of a replaced or evicted
/// result is never served for its successor; it ages out of the bound unused.
#[derive(Debug)]
pub struct CompressedPages {
    pages: Arc<ResultCache<PageKey, Deflated>>,
}

impl Cacheable for Deflated {
    fn weight_bytes(&self) -> usize {
        self.len() + size_of::<PageKey>() + size_of::<Deflated>()
    }

    fn is_partial(&self) -> bool {
        false
    }
}

impl CompressedPages {
    /// A store of at most `max_bytes` of compressed pages, each kept at most `ttl`.
    pub fn new(max_bytes: u64, ttl: Duration) -> CompressedPages {
        CompressedPages {
            pages: Arc::new(ResultCache::new(max_bytes, ttl, ttl)),
        }
    }

    /// `images` deflated: from the store, or deflated now and stored. Concurrent first
    /// requests for one page wait for one deflate rather than each running their own.
    /// `None` only if the deflate died (a panic), and the answer should then go plain.
    pub async fn get(&self, images: &PageImages) -> Option<Arc<Deflated>> {
        let key = images.key();
        if let Some(page) = self.pages.get(&key) {
            return Some(page);
        }
        let pieces = images.joined();
        let deflate = || async move {
            let deflate = move || Deflated::new(pieces.iter().map(|piece| &piece[..]));
            match tokio::task::spawn_blocking(deflate).await {
                Ok(page) => page,
                Err(failure) => std::panic::resume_unwind(failure.into_panic()),
            }
        };
        let (page, _) = self.pages.get_or_run(key, false, deflate).await?;
        Some(page)
    }

    /// Number of pages held (after pending evictions), for tests.
    pub fn len(&self) -> u64 {
        self.pages.run_pending_tasks();
        self.pages.entry_count()
    }

    /// Whether no page is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The answer to a search in the coding the request's headers accept. Either way it says
/// that it varies with `Accept-Encoding`, for any cache between the service and a client.
pub async fn search_answer(
    headers: &HeaderMap,
    pages: &CompressedPages,
    page: SearchPage,
) -> Response {
    let text = page.into_text();
    let images = match accepts_gzip(headers) {
        true => pages.get(text.images()).await,
        false => None,
    };
    let mut response = match images {
        Some(images) => {
            let mut response = JsonChunks::new(text.into_gzip(&images)).into_response();
            (response.headers_mut()).insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
        }
        None => JsonChunks::new(text.into_chunks()).into_response(),
    };
    (response.headers_mut()).insert(VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// Whether `Accept-Encoding` (every such header, RFC 9110 section 12.5.3) accepts gzip: it
/// names `gzip` or `x-gzip` with a non-zero weight, or, naming neither, `*` with one.
/// Without the header a client gets identity, which is what every client can read.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut named = None;
    let mut any = None;
    let offers = (headers.get_all(ACCEPT_ENCODING).iter())
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for offer in offers {
        let mut parts = offer.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let Some(weight) = weight(parts) else {
            continue;
        };
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            named = Some(named.unwrap_or(false) || weight);
        } else if coding == "*" {
            any = Some(any.unwrap_or(false) || weight);
        }
    }
    named.or(any).unwrap_or(false)
}

/// Whether an offer's parameters give it a non-zero weight (`q` absent means 1); `None`
/// for a malformed weight, so the offer is ignored rather than guessed at.
fn weight<'a>(parameters: impl Iterator<Item = &'a str>) -> Option<bool> {
    let mut accepted = true;
    for parameter in parameters {
        let (name, value) = parameter.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("q") {
            let q: f32 = value.trim().parse().ok()?;
            if !(0.0..=1.0).contains(&q) {
                return None;
            }
            accepted = q > 0.0;
        }
    }
    Some(accepted)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::Rating;
    use crate::search::merge::test_image;
    use crate::search::{SearchQuery, SearchResult};

    fn result(images: u32) -> Arc<SearchResult> {
        let images = (0..images)
            .map(|n| test_image(n, Rating::General))
            .collect();
        Arc::new(SearchResult::new(
            images,
            BTreeMap::new(),
            false,
            Duration::ZERO,
        ))
    }

    fn first_page(result: &Arc<SearchResult>) -> crate::search::AnswerText {
        let query = SearchQuery {
            character: "a".into(),
            series: None,
            sources: vec![],
            ratings: Rating::ALL.to_vec(),
            max_pages: 1,
            page: 1,
            per_page: 10,
            fresh: false,
        };
        SearchPage::cut(result, query, true, Duration::ZERO).into_text()
    }

    #[tokio::test]
    async fn concurrent_first_asks_for_a_page_share_one_deflate() {
        let pages = CompressedPages::new(1 << 20, Duration::from_secs(60));
        let (one, other) = (result(30), result(30));
        let texts: Vec<_> = (0..8).map(|_| first_page(&one)).collect();

        let deflated = futures::future::join_all(texts.iter().map(|t| pages.get(t.images()))).await;
        let again = pages.get(first_page(&one).images()).await.unwrap();
        let of_other = pages.get(first_page(&other).images()).await.unwrap();

        let first = deflated[0].clone().unwrap();
        for page in &deflated {
            assert!(
                Arc::ptr_eq(page.as_ref().unwrap(), &first),
                "deflated again"
            );
        }
        assert!(Arc::ptr_eq(&again, &first), "a later ask reuses the page");
        assert!(
            !Arc::ptr_eq(&of_other, &first),
            "another result has its own pages"
        );
        assert_eq!(pages.len(), 2);
    }

    fn accepts(values: &[&str]) -> bool {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        }
        accepts_gzip(&headers)
    }

    #[test]
    fn gzip_is_sent_when_named_with_a_weight_above_zero() {
        assert!(accepts(&["gzip"]));
        assert!(accepts(&["gzip, deflate"]));
        assert!(accepts(&["gzip, deflate, br, zstd"]));
        assert!(accepts(&["br;q=1.0, GZIP;q=0.5"]));
        assert!(accepts(&["x-gzip"]));
        assert!(accepts(&["deflate", "gzip"]), "every header counts");
        assert!(accepts(&["gzip; q=0.001"]));
    }

    #[test]
    fn identity_is_sent_without_the_header_or_when_gzip_is_refused() {
        assert!(!accepts(&[]));
        assert!(!accepts(&[""]));
        assert!(!accepts(&["identity"]));
        assert!(!accepts(&["br, deflate"]));
        assert!(!accepts(&["gzip;q=0"]));
        assert!(
            !accepts(&["gzip;q=0.000, *"]),
            "a named refusal beats the wildcard"
        );
        assert!(!accepts(&["*;q=0"]));
    }

    #[test]
    fn the_wildcard_stands_for_gzip_when_gzip_is_not_named() {
        assert!(accepts(&["*"]));
        assert!(accepts(&["br;q=0, *;q=0.1"]));
    }

    #[test]
    fn a_malformed_weight_ignores_only_its_offer() {
        assert!(!accepts(&["gzip;q=high"]));
        assert!(!accepts(&["gzip;q=2"]));
        assert!(!accepts(&["gzip;level"]));
        assert!(accepts(&["gzip;q=high, *"]));
    }
}
