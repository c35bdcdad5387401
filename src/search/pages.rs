//! Paging one source: learn the total, then ask for every other page at once.
//!
//! The first page (and, where the page does not carry the total, the count endpoint) is
//! requested first; then every remaining page up to `max_pages` is requested together. The
//! driver's limiter and semaphore set the pace, not batching; once the source's circuit
//! breaker refuses a page, the pages not yet sent are given up. Each page's posts go straight
//! into the search's shared merge, and the counts into a [`Progress`] owned by the caller,
//! so what arrived before a deadline is kept and no page is held longer than it takes to
//! parse it.
//!
//! Once the merge is full (it held `search.max_images` images and had to drop a post of a
//! new one), every source stops paging: pages still waiting for a permit or the limiter are
//! given up and counted as skipped, while pages already received are merged, their posts
//! folding into the images held. Each source asks for its pages in page order, newest posts
//! first on every family, so a capped search keeps mostly each source's newest posts; it
//! does not pick the best-scored images, which would take every page.

use std::sync::{Arc, Mutex, PoisonError};

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;

use super::merge::Merger;
use crate::model::{PostPage, TagCandidate};
use crate::sources::UpstreamError;
use crate::sources::driver::{RequestKind, Upstream};

/// The one merge of a search, fed by every source, and the signal that it is full.
#[derive(Debug)]
pub struct SharedMerge {
    merger: Mutex<Merger>,
    /// Turns `true` the first time the merge drops a post for being past its bound.
    full: watch::Sender<bool>,
}

impl SharedMerge {
    /// An empty merge holding at most `max_images` distinct images.
    pub fn new(max_images: usize) -> SharedMerge {
        SharedMerge {
            merger: Mutex::new(Merger::new(max_images)),
            full: watch::Sender::new(false),
        }
    }

    /// The merge as it stands, taken out at the end of the search, leaving an empty one.
    pub fn take(&self) -> Merger {
        let mut merger = self.merger.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *merger, Merger::new(0))
    }
}

/// The search's shared merge, as one source feeds it.
#[derive(Debug, Clone)]
pub struct Sink {
    merge: Arc<SharedMerge>,
    /// The source's position in configuration order.
    rank: usize,
}

impl Sink {
    /// Feeds `merge` on behalf of the source ranked `rank`.
    pub fn new(merge: Arc<SharedMerge>, rank: usize) -> Sink {
        Sink { merge, rank }
    }

    fn take(&self, page: PostPage) {
        let mut merger = (self.merge.merger.lock()).unwrap_or_else(PoisonError::into_inner);
        for post in page.posts {
            merger.add(post, self.rank);
        }
        if merger.dropped() > 0 {
            self.merge
                .full
                .send_if_modified(|full| !std::mem::replace(full, true));
        }
    }

    /// Whether the merge is full, so that no further page is worth asking for.
    fn is_full(&self) -> bool {
        *self.merge.full.borrow()
    }

    /// Ends once the merge is full.
    async fn filled(&self) {
        let mut full = self.merge.full.subscribe();
        // The sender lives in `self.merge`, so the wait ends only when the merge fills.
        let _ = full.wait_for(|full| *full).await;
    }

    /// `work`'s output, or `None` when the merge is full before `work` ends; `work` is then
    /// dropped, so a request of it still waiting for a permit or the limiter gives its
    /// place up unsent. Output ready together with the signal is still taken.
    async fn unless_full<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        if self.is_full() {
            return None;
        }
        tokio::select! {
            biased;
            output = work => Some(output),
            () = self.filled() => None,
        }
    }
}

/// What one source has delivered so far.
#[derive(Debug)]
pub struct Progress {
    sink: Sink,
    /// Posts received (before merging).
    pub posts: u64,
    /// Pages fetched and parsed.
    pub pages: u32,
    /// Pages (or counts) that failed.
    pub failures: u32,
    /// Pages not asked for, or given up unanswered, because the merge was full.
    pub pages_skipped: u32,
    /// Posts dropped for having neither MD5 nor file URL.
    pub skipped: u64,
    /// The first failure, for the report.
    pub first_error: Option<UpstreamError>,
}

impl Progress {
    /// Nothing delivered yet; pages will go to `sink`.
    pub fn new(sink: Sink) -> Progress {
        Progress {
            sink,
            posts: 0,
            pages: 0,
            failures: 0,
            pages_skipped: 0,
            skipped: 0,
            first_error: None,
        }
    }

    fn add(&mut self, page: PostPage) {
        self.pages += 1;
        self.skipped += page.skipped as u64;
        self.posts += page.posts.len() as u64;
        self.sink.take(page);
    }

    fn fail(&mut self, error: UpstreamError) {
        self.failures += 1;
        self.first_error.get_or_insert(error);
    }

    /// Adds what `other` delivered (another tag of the same source) to this progress; the
    /// first error stays this one's, if it has one.
    pub fn absorb(&mut self, other: Progress) {
        self.posts += other.posts;
        self.pages += other.pages;
        self.failures += other.failures;
        self.pages_skipped += other.pages_skipped;
        self.skipped += other.skipped;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// How many posts a source holds for a tag and how they are paged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Pages to request in all, page 1 included.
    pub pages: u32,
    /// Posts per page the server really hands out.
    pub page_size: u32,
}

/// Works out the paging from the first page and the total.
///
/// Servers silently clamp `limit` to their own maximum; a first page that came back shorter
/// than asked while more posts exist reveals the real page size, and later pages use it so
/// that no posts fall between pages.
pub fn plan(asked: u32, first_page_len: usize, total: u64, max_pages: u32) -> Plan {
    let first = first_page_len as u64;
    let page_size = if first < u64::from(asked) && total > first && first > 0 {
        first as u32
    } else {
        asked
    };
    let pages = total
        .div_ceil(u64::from(page_size))
        .clamp(1, u64::from(max_pages));
    Plan {
        pages: pages as u32,
        page_size,
    }
}

impl Plan {
    /// The posts `total` puts on page `page` (1-based): a full page, what is left for the
    /// last one, or none past the end.
    pub fn posts_on(&self, total: u64, page: u32) -> u64 {
        let before = u64::from(page.saturating_sub(1)) * u64::from(self.page_size);
        total.saturating_sub(before).min(u64::from(self.page_size))
    }
}

/// How many posts the source holds for a tag, and whether that number can be relied on to
/// say which pages hold posts.
#[derive(Debug, Clone, Copy)]
struct Total {
    posts: u64,
    /// The site counted exactly (see [`crate::sources::Family::counts_exactly`]), not
    /// discovery's post count standing in for a count that failed.
    known: bool,
}

/// Fetches every page of `tag` on `site`, up to `max_pages`, into `progress`.
///
/// `page_size` is the configured page size. When the total cannot be learned (a failed
/// count), the tag's post count from discovery stands in for it. When the total is known,
/// a page it says holds posts and that comes back empty has failed, since an empty answer
/// is "no results" only on a page past the end.
///
/// Where the family serves pages only so deep
/// ([`Family::max_depth`](crate::sources::Family::max_depth)), the pages past it are those
/// of the same search below the lowest post id seen, asked for from its first page again,
/// as many at a time as the depth allows.
///
/// Once the search's merge is full no further page is asked for (see the module's header);
/// when that happens before the first page arrives, the pages the tag's post count from
/// discovery would fill are the ones skipped.
pub async fn fetch_tag(
    upstream: Upstream<'_>,
    tag: &TagCandidate,
    page_size: u32,
    max_pages: u32,
    progress: &mut Progress,
) {
    let sink = progress.sink.clone();
    let Some(first) = sink
        .unless_full(first_page(upstream, tag, page_size, progress))
        .await
    else {
        let plan = plan(page_size, page_size as usize, tag.post_count, max_pages);
        progress.pages_skipped += plan.pages;
        return;
    };
    let Some((first_page, total)) = first else {
        return;
    };
    let first_len = first_page.posts.len() + first_page.skipped;
    let plan = plan(page_size, first_len, total.posts, max_pages);
    let lowest = lowest_id(&first_page);
    progress.add(first_page);
    let (asked, outcome) = fetch_rounds(upstream, &tag.name, plan, total, lowest, progress).await;
    let unasked = plan.pages - asked;
    match outcome {
        Outcome::Full => progress.pages_skipped += unasked,
        // Refused by the paused source, or nowhere to continue from: lost, not skipped.
        Outcome::Refused | Outcome::Done => progress.failures += unasked,
    }
}

/// Fetches pages 2 to `plan.pages` of `tag` into `progress`, all at once where the family
/// serves them that deep; past its depth, in rounds of as many pages as it serves, each the
/// same search below the lowest post id seen so far (`lowest` holds page 1's), from its
/// first page again. Returns how many pages were asked for, page 1 included, and how the
/// last round ended.
async fn fetch_rounds(
    upstream: Upstream<'_>,
    tag: &str,
    plan: Plan,
    total: Total,
    mut lowest: Option<u64>,
    progress: &mut Progress,
) -> (u32, Outcome) {
    let reach = match upstream.site.family.max_depth() {
        Some(depth) => plan
            .pages
            .min((depth / u64::from(plan.page_size)).max(1) as u32),
        None => plan.pages,
    };
    let mut query = tag.to_owned();
    let (mut first, mut asked) = (2, 0);
    loop {
        let last = reach.min(plan.pages - asked);
        let left = (total.posts).saturating_sub(u64::from(asked) * u64::from(plan.page_size));
        let expected = |page| match total.known {
            true => plan.posts_on(left, page),
            false => 0,
        };
        let round = (first..=last)
            .map(|page| fetch_page(upstream, &query, page, plan.page_size, expected(page)))
            .collect();
        let end = fetch_rest(round, progress).await;
        asked += last;
        lowest = lowest.into_iter().chain(end.lowest).min();
        if asked >= plan.pages || end.outcome != Outcome::Done {
            return (asked, end.outcome);
        }
        let Some(below) = lowest else {
            return (asked, Outcome::Done);
        };
        query = upstream.site.below_id(tag, below);
        first = 1;
    }
}

/// The lowest post id on a page.
fn lowest_id(page: &PostPage) -> Option<u64> {
    page.posts.iter().map(|post| post.id).min()
}

/// How a run of pages ended, and the lowest post id it delivered.
#[derive(Debug)]
struct RunEnd {
    outcome: Outcome,
    lowest: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Every page was answered (or failed on its own).
    Done,
    /// The search's merge filled up; the pages still waiting were given up as skipped.
    Full,
    /// The source's circuit opened; the pages still waiting were given up as failed.
    Refused,
}

/// The first page and the total, from the page itself or the count asked alongside it.
///
/// An empty first page is the sites' "no results"; when the known total says otherwise, the
/// page is asked again, expecting its posts. `None` when the first page failed.
async fn first_page(
    upstream: Upstream<'_>,
    tag: &TagCandidate,
    page_size: u32,
    progress: &mut Progress,
) -> Option<(PostPage, Total)> {
    let first_page = fetch_page(upstream, &tag.name, 1, page_size, 0);
    let count = fetch_count(upstream, &tag.name);
    let (first_page, count) = futures::join!(first_page, count);
    let mut first_page = first_page.map_err(|error| progress.fail(error)).ok()?;
    let total = match (first_page.total, count) {
        (Some(posts), _) => Total { posts, known: true },
        (None, Some(Ok(posts))) => Total {
            posts,
            known: upstream.site.family.counts_exactly(),
        },
        (None, count) => {
            if let Some(Err(error)) = count {
                progress.fail(error);
            }
            Total {
                posts: tag.post_count,
                known: false,
            }
        }
    };
    if is_empty(&first_page) && total.known && total.posts > 0 {
        let expected = total.posts.min(u64::from(page_size));
        let again = fetch_page(upstream, &tag.name, 1, page_size, expected).await;
        first_page = again.map_err(|error| progress.fail(error)).ok()?;
    }
    Some((first_page, total))
}

/// Fetches pages as they come, into `progress`, until the search's merge is full; the
/// pages not yet answered then are dropped and counted as skipped.
async fn fetch_rest(
    mut rest: FuturesUnordered<impl Future<Output = Result<PostPage, UpstreamError>>>,
    progress: &mut Progress,
) -> RunEnd {
    let sink = progress.sink.clone();
    let mut lowest: Option<u64> = None;
    let outcome = loop {
        let result = match sink.unless_full(rest.next()).await {
            Some(Some(result)) => result,
            Some(None) => break Outcome::Done,
            None => {
                progress.pages_skipped += rest.len() as u32;
                break Outcome::Full;
            }
        };
        match result {
            Ok(page) => {
                lowest = lowest.into_iter().chain(lowest_id(&page)).min();
                progress.add(page);
            }
            // The source is paused: every page still waiting would be refused in turn, so
            // they are given up at once and counted as failed, not asked for.
            Err(error @ UpstreamError::CircuitOpen { .. }) => {
                progress.fail(error);
                progress.failures += rest.len() as u32;
                break Outcome::Refused;
            }
            Err(error) => progress.fail(error),
        }
    };
    RunEnd { outcome, lowest }
}

fn is_empty(page: &PostPage) -> bool {
    page.posts.is_empty() && page.skipped == 0
}

/// Page `page` of `tag`; `expected` is how many posts the known total puts on it (0 when
/// none or unknown), and an empty page where posts were expected is a failed attempt.
async fn fetch_page(
    upstream: Upstream<'_>,
    tag: &str,
    page: u32,
    page_size: u32,
    expected: u64,
) -> Result<PostPage, UpstreamError> {
    let url = upstream.site.posts_url(tag, page, page_size);
    let parsed = upstream
        .get_parsed(url, RequestKind::Page(page), |body| {
            let parsed = upstream.site.parse_posts(body)?;
            match expected > 0 && is_empty(&parsed) {
                true => Err(UpstreamError::EmptyPage { expected }),
                false => Ok(parsed),
            }
        })
        .await?;
    tracing::debug!(source = %upstream.site.id, page, posts = parsed.posts.len(), "page fetched");
    Ok(parsed)
}

async fn fetch_count(upstream: Upstream<'_>, tag: &str) -> Option<Result<u64, UpstreamError>> {
    let url = upstream.site.count_url(tag)?;
    let count = upstream.get_parsed(url, RequestKind::Count, |body| {
        upstream.site.parse_count(body)
    });
    Some(count.await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Post, Rating};

    /// A page of posts of the images numbered `images`, each with its own MD5.
    fn page_of(images: std::ops::Range<u64>) -> PostPage {
        let posts = images
            .map(|n| Post {
                source: "safebooru".into(),
                id: n,
                md5: Some(format!("{n:032x}")),
                file_url: Some(format!("https://safebooru.test/{n}.jpg")),
                sample_url: None,
                preview_url: None,
                width: 1,
                height: 1,
                rating: Rating::General,
                score: 0,
                tags: Default::default(),
                post_url: format!("https://safebooru.test/posts/{n}"),
            })
            .collect();
        PostPage {
            posts,
            ..PostPage::default()
        }
    }

    #[tokio::test]
    async fn work_still_waiting_when_the_merge_fills_is_given_up() {
        let merge = Arc::new(SharedMerge::new(2));
        let sink = Sink::new(merge.clone(), 0);
        let waiting = sink.unless_full(std::future::pending::<()>());
        let filling = async {
            tokio::task::yield_now().await;
            sink.take(page_of(0..3));
        };

        let (outcome, ()) = tokio::join!(waiting, filling);

        assert_eq!(outcome, None);
        assert_eq!(
            sink.unless_full(async { "sent" }).await,
            None,
            "nothing starts once the merge is full"
        );
        assert_eq!(merge.take().dropped(), 1);
    }

    #[tokio::test]
    async fn a_merge_holding_exactly_its_bound_is_not_full() {
        let sink = Sink::new(Arc::new(SharedMerge::new(2)), 0);
        sink.take(page_of(0..2));
        sink.take(page_of(1..2));

        assert!(!sink.is_full(), "no post of a new image was dropped");
        assert_eq!(sink.unless_full(async { "sent" }).await, Some("sent"));
    }

    #[tokio::test]
    async fn work_that_ends_as_the_merge_fills_keeps_its_output() {
        let sink = Sink::new(Arc::new(SharedMerge::new(1)), 0);
        let received = async {
            sink.take(page_of(0..2));
            "received"
        };

        assert_eq!(sink.unless_full(received).await, Some("received"));
        assert!(sink.is_full());
    }

    #[test]
    fn pages_cover_the_total_up_to_the_cap() {
        assert_eq!(
            plan(200, 200, 1001, 100),
            Plan {
                pages: 6,
                page_size: 200
            }
        );
        assert_eq!(
            plan(200, 200, 1000, 100),
            Plan {
                pages: 5,
                page_size: 200
            }
        );
        assert_eq!(
            plan(100, 100, 50_000, 100),
            Plan {
                pages: 100,
                page_size: 100
            }
        );
        assert_eq!(
            plan(100, 100, 50_000, 3),
            Plan {
                pages: 3,
                page_size: 100
            }
        );
    }

    #[test]
    fn the_total_puts_full_pages_then_the_rest_then_none() {
        let plan = plan(100, 100, 250, 100);
        let on = |page| plan.posts_on(250, page);
        assert_eq!((on(1), on(2), on(3), on(4)), (100, 100, 50, 0));
        assert_eq!(plan.posts_on(0, 1), 0);
        assert_eq!(plan.posts_on(u64::MAX, u32::MAX), 100);
    }

    #[test]
    fn a_short_first_page_with_more_to_come_reveals_the_server_clamp() {
        assert_eq!(
            plan(1000, 100, 450, 100),
            Plan {
                pages: 5,
                page_size: 100
            }
        );
    }

    #[test]
    fn a_short_last_and_only_page_is_one_page() {
        assert_eq!(
            plan(1000, 7, 7, 100),
            Plan {
                pages: 1,
                page_size: 1000
            }
        );
        assert_eq!(
            plan(1000, 0, 0, 100),
            Plan {
                pages: 1,
                page_size: 1000
            }
        );
    }
}
