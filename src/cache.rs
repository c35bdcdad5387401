//! The result cache: moka entries bounded by memory, with a long lifetime for complete
//! results and a short one for partial ones, plus single flight.
//!
//! Single flight means concurrent identical questions share one run: the first asker starts
//! it as a detached task, later askers wait for the same task, and the task itself stores
//! its result. A client that hangs up therefore never wastes the work.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use moka::Expiry;
use tracing::Instrument;

/// A value the cache can hold: it knows its size and whether it is complete.
pub trait Cacheable: Send + Sync + 'static {
    /// Approximate memory the value takes, in bytes.
    fn weight_bytes(&self) -> usize;
    /// Whether the value is partial (kept for the short lifetime).
    fn is_partial(&self) -> bool;

    /// Whether the value is worth keeping at all; one that is not reaches the askers of its
    /// run and is then forgotten.
    fn is_storable(&self) -> bool {
        true
    }
}

type Flight<V> = Shared<BoxFuture<'static, Option<Arc<V>>>>;

/// A memory-bounded, expiring cache with single flight per key.
pub struct ResultCache<K, V> {
    entries: moka::sync::Cache<K, Arc<V>>,
    in_flight: Mutex<HashMap<K, Flight<V>>>,
}

impl<K, V> std::fmt::Debug for ResultCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultCache")
            .field("entries", &self.entries.entry_count())
            .field("weighted_size_bytes", &self.entries.weighted_size())
            .finish()
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Stored before this request.
    Cached,
    /// Computed for this request, or for a concurrent identical one it joined.
    Fresh,
}

struct Lifetimes {
    complete: Duration,
    partial: Duration,
}

impl<K, V: Cacheable> Expiry<K, Arc<V>> for Lifetimes {
    fn expire_after_create(
        &self,
        _key: &K,
        value: &Arc<V>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(if value.is_partial() {
            self.partial
        } else {
            self.complete
        })
    }

    fn expire_after_update(
        &self,
        key: &K,
        value: &Arc<V>,
        updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, value, updated_at)
    }
}

impl<K, V> ResultCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Cacheable,
{
    /// A cache holding at most `max_bytes` of values; complete values live `ttl`, partial
    /// ones `partial_ttl`.
    pub fn new(max_bytes: u64, ttl: Duration, partial_ttl: Duration) -> ResultCache<K, V> {
        ResultCache::with_eviction_hook(max_bytes, ttl, partial_ttl, || {})
    }

    /// Like [`ResultCache::new`], calling `on_evict` whenever a value is evicted to stay
    /// under `max_bytes` (not when it expires or is replaced).
    pub fn with_eviction_hook(
        max_bytes: u64,
        ttl: Duration,
        partial_ttl: Duration,
        on_evict: impl Fn() + Send + Sync + 'static,
    ) -> ResultCache<K, V> {
        let entries = moka::sync::Cache::builder()
            .eviction_listener(move |_key, _value, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    on_evict();
                }
            })
            .max_capacity(max_bytes)
            .weigher(|_key, value: &Arc<V>| u32::try_from(value.weight_bytes()).unwrap_or(u32::MAX))
            .expire_after(Lifetimes {
                complete: ttl,
                partial: partial_ttl,
            })
            .build();
        ResultCache {
            entries,
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// The stored value for `key`, if any.
    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        self.entries.get(key)
    }

    /// Number of stored values (approximate until pending maintenance runs).
    pub fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }

    /// Memory the stored values take, in bytes (approximate, as weighed).
    pub fn weighted_size_bytes(&self) -> u64 {
        self.entries.weighted_size()
    }

    /// Runs pending maintenance (expiry, eviction); for tests and periodic reporting.
    pub fn run_pending_tasks(&self) {
        self.entries.run_pending_tasks();
    }

    /// The stored value for `key`, or the result of the future `run` makes, computed once
    /// however many callers ask at the same time.
    ///
    /// `run` is called only on a miss. Its future is spawned as its own task and stores its
    /// result itself, so it completes even if every caller goes away. With `fresh`, the stored value is ignored and replaced.
    /// Returns `None` only if the task died without a result (a panic).
    pub async fn get_or_run<R, F>(
        self: &Arc<Self>,
        key: K,
        fresh: bool,
        run: R,
    ) -> Option<(Arc<V>, Origin)>
    where
        R: FnOnce() -> F,
        F: Future<Output = V> + Send + 'static,
    {
        if !fresh && let Some(value) = self.entries.get(&key) {
            return Some((value, Origin::Cached));
        }
        let flight = {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // A run may have stored its value and left between the look-up above and the lock.
            if !fresh && let Some(value) = self.entries.get(&key) {
                return Some((value, Origin::Cached));
            }
            match in_flight.get(&key) {
                Some(flight) => flight.clone(),
                None => {
                    let flight = self.start(key.clone(), run());
                    in_flight.insert(key, flight.clone());
                    flight
                }
            }
        };
        flight.await.map(|value| (value, Origin::Fresh))
    }

    fn start<F>(self: &Arc<Self>, key: K, run: F) -> Flight<V>
    where
        F: Future<Output = V> + Send + 'static,
    {
        let cache = Arc::clone(self);
        let task = tokio::spawn(
            async move {
                let _leave = LeaveOnDrop {
                    cache: Arc::clone(&cache),
                    key: key.clone(),
                };
                let value = Arc::new(run.await);
                if value.is_storable() {
                    cache.entries.insert(key, Arc::clone(&value));
                }
                value
            }
            .in_current_span(),
        );
        async move { task.await.ok() }.boxed().shared()
    }
}

/// Removes a key from the in-flight table when its run ends, even by panic, after the run
/// has stored its value.
struct LeaveOnDrop<K: Hash + Eq, V> {
    cache: Arc<ResultCache<K, V>>,
    key: K,
}

impl<K: Hash + Eq, V> Drop for LeaveOnDrop<K, V> {
    fn drop(&mut self) {
        let mut in_flight = self
            .cache
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        in_flight.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[derive(Debug)]
    struct Value {
        partial: bool,
        bytes: usize,
    }

    impl Cacheable for Value {
        fn weight_bytes(&self) -> usize {
            self.bytes
        }
        fn is_partial(&self) -> bool {
            self.partial
        }
    }

    fn cache() -> Arc<ResultCache<String, Value>> {
        Arc::new(ResultCache::new(
            1 << 20,
            Duration::from_secs(60),
            Duration::from_secs(1),
        ))
    }

    #[tokio::test]
    async fn concurrent_identical_asks_share_one_run() {
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, wait) = tokio::sync::watch::channel(false);
        let asks: Vec<_> = (0..20)
            .map(|_| {
                let (cache, runs, mut wait) = (cache.clone(), runs.clone(), wait.clone());
                tokio::spawn(async move {
                    let run = async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        let _ = wait.wait_for(|go| *go).await;
                        Value {
                            partial: false,
                            bytes: 10,
                        }
                    };
                    cache
                        .get_or_run("k".to_string(), false, || run)
                        .await
                        .unwrap()
                        .1
                })
            })
            .collect();
        tokio::task::yield_now().await;
        release.send(true).unwrap();
        for ask in asks {
            assert_eq!(ask.await.unwrap(), Origin::Fresh);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let again = cache
            .get_or_run("k".into(), false, || async { unreachable!() })
            .await;
        assert_eq!(again.unwrap().1, Origin::Cached);
    }

    #[tokio::test]
    async fn a_run_whose_caller_left_still_stores_its_value() {
        let cache = cache();
        let (release, mut wait) = tokio::sync::watch::channel(false);
        let (stored_tx, stored_rx) = tokio::sync::oneshot::channel();
        let run = async move {
            let _ = wait.wait_for(|go| *go).await;
            let _ = stored_tx.send(());
            Value {
                partial: false,
                bytes: 10,
            }
        };
        let ask = tokio::spawn({
            let cache = cache.clone();
            async move { cache.get_or_run("k".to_string(), false, || run).await }
        });
        tokio::task::yield_now().await;
        ask.abort();
        release.send(true).unwrap();
        stored_rx.await.unwrap();
        for _ in 0..100 {
            if cache.get(&"k".to_string()).is_some() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the abandoned run never stored its value");
    }

    #[tokio::test]
    async fn fresh_replaces_the_stored_value() {
        let cache = cache();
        let first = cache.get_or_run("k".into(), false, || async {
            Value {
                partial: false,
                bytes: 1,
            }
        });
        first.await.unwrap();
        let second = cache.get_or_run("k".into(), true, || async {
            Value {
                partial: false,
                bytes: 2,
            }
        });
        let (value, origin) = second.await.unwrap();
        assert_eq!((value.bytes, origin), (2, Origin::Fresh));
        assert_eq!(cache.get(&"k".to_string()).unwrap().bytes, 2);
    }

    #[tokio::test]
    async fn a_panicking_run_answers_none_and_frees_the_key() {
        let cache = cache();
        let failed = cache
            .get_or_run("k".into(), false, || async { panic!("boom") })
            .await;
        assert!(failed.is_none());
        let retried = cache.get_or_run("k".into(), false, || async {
            Value {
                partial: true,
                bytes: 1,
            }
        });
        assert_eq!(retried.await.unwrap().1, Origin::Fresh);
    }

    #[test]
    fn complete_values_live_the_long_lifetime_and_partial_ones_the_short() {
        let lifetimes = Lifetimes {
            complete: Duration::from_secs(7200),
            partial: Duration::from_secs(300),
        };
        let value = |partial| Arc::new(Value { partial, bytes: 1 });
        let now = Instant::now();
        let created = |value: &Arc<Value>| lifetimes.expire_after_create(&0u8, value, now);
        let replaced = |value: &Arc<Value>| {
            // A replacement is judged afresh, whatever the value it replaced had left.
            lifetimes.expire_after_update(&0u8, value, now, Some(Duration::from_secs(1)))
        };

        assert_eq!(created(&value(false)), Some(Duration::from_secs(7200)));
        assert_eq!(created(&value(true)), Some(Duration::from_secs(300)));
        assert_eq!(replaced(&value(false)), Some(Duration::from_secs(7200)));
        assert_eq!(replaced(&value(true)), Some(Duration::from_secs(300)));
    }

    #[test]
    fn memory_bound_evicts() {
        let cache: ResultCache<u32, Value> =
            ResultCache::new(1000, Duration::from_secs(60), Duration::from_secs(1));
        for key in 0..100 {
            cache.entries.insert(
                key,
                Arc::new(Value {
                    partial: false,
                    bytes: 100,
                }),
            );
        }
        cache.run_pending_tasks();
        assert!(
            cache.weighted_size_bytes() <= 1000,
            "{}",
            cache.weighted_size_bytes()
        );
    }
}
