//! A source's recent traffic: requests and errors in the last few minutes, kept in one
//! bucket per minute so that `/v1/sources` can show whether a source is failing now, not
//! only since the process started.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Minutes the window spans: the current minute and the ones before it.
pub const WINDOW_MINUTES: u64 = 5;

/// One minute's counts; `minute` tells which minute they belong to, so a stale bucket is
/// recognised and reset rather than added to.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    minute: u64,
    requests: u64,
    errors: u64,
}

/// Requests and errors per minute over the last [`WINDOW_MINUTES`] minutes.
///
/// Minutes are counted from the window's creation on a monotonic clock, so the window
/// slides in whole minutes: it covers between four and five minutes of traffic.
#[derive(Debug)]
pub struct RecentCounts {
    started: Instant,
    buckets: Mutex<[Bucket; WINDOW_MINUTES as usize]>,
}

/// What the window holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RecentTotals {
    /// Length of the window, in seconds.
    pub window_secs: u64,
    /// Requests sent within the window.
    pub requests: u64,
    /// Requests within the window that failed.
    pub errors: u64,
}

impl Default for RecentCounts {
    fn default() -> RecentCounts {
        RecentCounts::new()
    }
}

impl RecentCounts {
    /// An empty window starting now.
    pub fn new() -> RecentCounts {
        RecentCounts {
            started: Instant::now(),
            buckets: Mutex::new([Bucket::default(); WINDOW_MINUTES as usize]),
        }
    }

    /// Counts a request sent now; `failed` when it ended in an error.
    pub fn record(&self, failed: bool) {
        self.record_at(self.minute_now(), failed);
    }

    /// The totals of the window ending now.
    pub fn totals(&self) -> RecentTotals {
        self.totals_at(self.minute_now())
    }

    fn minute_now(&self) -> u64 {
        self.started.elapsed().as_secs() / 60
    }

    /// Counts a request in `minute` (minutes since the window's creation).
    fn record_at(&self, minute: u64, failed: bool) {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = &mut buckets[(minute % WINDOW_MINUTES) as usize];
        if bucket.minute != minute {
            *bucket = Bucket {
                minute,
                ..Bucket::default()
            };
        }
        bucket.requests += 1;
        bucket.errors += u64::from(failed);
    }

    /// The totals of the buckets of `minute` and the minutes before it within the window.
    fn totals_at(&self, minute: u64) -> RecentTotals {
        let buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest = minute.saturating_sub(WINDOW_MINUTES - 1);
        let live = buckets
            .iter()
            .filter(|bucket| (oldest..=minute).contains(&bucket.minute));
        live.fold(
            RecentTotals {
                window_secs: WINDOW_MINUTES * 60,
                ..RecentTotals::default()
            },
            |mut totals, bucket| {
                totals.requests += bucket.requests;
                totals.errors += bucket.errors;
                totals
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(totals: RecentTotals) -> (u64, u64) {
        (totals.requests, totals.errors)
    }

    #[test]
    fn counts_requests_and_errors_of_the_current_minute() {
        let recent = RecentCounts::new();
        recent.record(false);
        recent.record(true);
        recent.record(false);

        let totals = recent.totals();

        assert_eq!(counts(totals), (3, 1));
        assert_eq!(totals.window_secs, 300);
    }

    #[test]
    fn sums_the_last_five_minutes() {
        let recent = RecentCounts::new();
        for minute in 0..5 {
            recent.record_at(minute, minute == 2);
        }

        assert_eq!(counts(recent.totals_at(4)), (5, 1));
    }

    #[test]
    fn minutes_older_than_the_window_drop_out() {
        let recent = RecentCounts::new();
        recent.record_at(0, true);
        recent.record_at(3, false);

        assert_eq!(counts(recent.totals_at(4)), (2, 1));
        assert_eq!(
            counts(recent.totals_at(5)),
            (1, 0),
            "minute 0 left the window"
        );
        assert_eq!(
            counts(recent.totals_at(60)),
            (0, 0),
            "a quiet hour empties it"
        );
    }

    #[test]
    fn a_reused_bucket_starts_from_zero() {
        let recent = RecentCounts::new();
        recent.record_at(1, true);
        recent.record_at(1, true);

        recent.record_at(6, false);

        assert_eq!(counts(recent.totals_at(6)), (1, 0));
    }
}
