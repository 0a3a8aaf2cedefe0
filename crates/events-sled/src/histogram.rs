//! A lock-free histogram with fixed buckets, for the store's hot paths: recording a value is two
//! relaxed atomic adds (its bucket's count and the sum), with no lock and no allocation. Reading
//! it ([`AtomicHistogram::snapshot`]) gives a [`HistogramSnapshot`]: cumulative bucket counts,
//! the number of observations and their sum, in the Prometheus shape.
//!
//! The store keeps two (see [`crate::StoreMetrics`]): the events of each group write
//! ([`GroupEvents`]) and the duration of each `fdatasync` of the log ([`SyncNanos`]).

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// The fixed buckets of one kind of histogram.
pub(crate) trait Buckets {
    /// Inclusive upper bounds, ascending, in the unit values are recorded in. A value above the
    /// last one is counted only in the total.
    const BOUNDS: &'static [u64];
    /// Multiplies a recorded value (and a bound) into the unit the snapshot reports.
    const SCALE: f64;
}

/// Events per group write: one record, one frame (and in durable mode one sync) each.
#[derive(Debug)]
pub(crate) struct GroupEvents;

impl Buckets for GroupEvents {
    const BOUNDS: &'static [u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];
    const SCALE: f64 = 1.0;
}

/// The duration of a log sync, recorded in nanoseconds and reported in seconds.
#[derive(Debug)]
pub(crate) struct SyncNanos;

impl Buckets for SyncNanos {
    const BOUNDS: &'static [u64] = &[
        50_000,
        100_000,
        250_000,
        500_000,
        1_000_000,
        2_500_000,
        5_000_000,
        10_000_000,
        25_000_000,
        50_000_000,
        100_000_000,
        250_000_000,
        1_000_000_000,
    ];
    const SCALE: f64 = 1e-9;
}

/// Counts per bucket (not cumulative; one more than the bounds: the last counts values above
/// every bound) and the sum of the values recorded.
pub(crate) struct AtomicHistogram<B: Buckets> {
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
    buckets: PhantomData<B>,
}

impl<B: Buckets> Default for AtomicHistogram<B> {
    fn default() -> Self {
        Self {
            counts: (0..=B::BOUNDS.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            buckets: PhantomData,
        }
    }
}

impl<B: Buckets> fmt::Debug for AtomicHistogram<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtomicHistogram")
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

impl<B: Buckets> AtomicHistogram<B> {
    /// Counts one observation of `value`: two relaxed atomic adds. The sum wraps past `u64::MAX`
    /// (in nanoseconds, after 584 years of syncing).
    pub(crate) fn record(&self, value: u64) {
        // The first bound at or above the value: buckets are `le` (less than or equal).
        let index = B::BOUNDS.partition_point(|&bound| bound < value);
        if let Some(count) = self.counts.get(index) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// What was recorded so far. Taken without a lock while values are recorded: each count is
    /// exact as of its own load, the cumulative counts never decrease and `count` is their total,
    /// but `sum` may include an observation the buckets do not yet (or the reverse).
    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0_u64;
        let mut buckets = Vec::with_capacity(B::BOUNDS.len());
        for (bound, count) in B::BOUNDS.iter().zip(self.counts.iter()) {
            cumulative = cumulative.saturating_add(count.load(Ordering::Relaxed));
            buckets.push(HistogramBucket {
                le: *bound as f64 * B::SCALE,
                count: cumulative,
            });
        }
        let above = self
            .counts
            .last()
            .map_or(0, |count| count.load(Ordering::Relaxed));
        HistogramSnapshot {
            buckets,
            count: cumulative.saturating_add(above),
            sum: self.sum.load(Ordering::Relaxed) as f64 * B::SCALE,
        }
    }
}

/// A histogram's content at one moment, in the Prometheus shape: each bucket counts the
/// observations at or below its upper bound (so counts never decrease from one bucket to the
/// next); observations above the last bound are counted only in `count` (the `+Inf` bucket).
///
/// ```
/// use events_sled::{HistogramBucket, HistogramSnapshot};
///
/// let snapshot = HistogramSnapshot {
///     buckets: vec![HistogramBucket { le: 1.0, count: 2 }, HistogramBucket { le: 4.0, count: 3 }],
///     count: 4,
///     sum: 12.0,
/// };
/// assert_eq!(snapshot.mean(), Some(3.0));
/// let json = serde_json::to_value(&snapshot)?;
/// assert_eq!(json["buckets"][1]["le"], 4.0);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramSnapshot {
    /// The buckets, by ascending upper bound, with cumulative counts.
    pub buckets: Vec<HistogramBucket>,
    /// Every observation, including those above the last bound.
    pub count: u64,
    /// The sum of the observed values, in the histogram's unit.
    pub sum: f64,
}

impl HistogramSnapshot {
    /// The mean observed value (`None` before the first observation).
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// One bucket of a [`HistogramSnapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HistogramBucket {
    /// The bucket's inclusive upper bound ("less than or equal"), in the histogram's unit.
    pub le: f64,
    /// Observations at or below `le`.
    pub count: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;

    #[derive(Debug)]
    struct Small;

    impl Buckets for Small {
        const BOUNDS: &'static [u64] = &[1, 10, 100];
        const SCALE: f64 = 0.5;
    }

    #[test]
    fn a_value_goes_to_the_first_bound_at_or_above_it() {
        let histogram = AtomicHistogram::<Small>::default();
        let values = [0, 1, 2, 10, 11, 100, 101, 5000];
        for value in values {
            histogram.record(value);
        }
        let snapshot = histogram.snapshot();
        let les: Vec<f64> = snapshot.buckets.iter().map(|b| b.le).collect();
        let counts: Vec<u64> = snapshot.buckets.iter().map(|b| b.count).collect();
        assert_eq!(les, [0.5, 5.0, 50.0]);
        assert_eq!(counts, [2, 4, 6]);
        assert_eq!(snapshot.count, 8);
        assert_eq!(snapshot.sum, values.iter().sum::<u64>() as f64 * 0.5);
    }

    #[test]
    fn an_empty_histogram_has_zero_counts_and_no_mean() {
        let snapshot = AtomicHistogram::<GroupEvents>::default().snapshot();
        assert_eq!(snapshot.buckets.len(), GroupEvents::BOUNDS.len());
        assert!(snapshot.buckets.iter().all(|b| b.count == 0));
        assert_eq!(
            (snapshot.count, snapshot.sum, snapshot.mean()),
            (0, 0.0, None)
        );
    }

    #[test]
    fn sync_nanos_report_seconds() {
        let histogram = AtomicHistogram::<SyncNanos>::default();
        histogram.record(300_000);
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.buckets[0].le, 50e-6);
        assert_eq!(snapshot.buckets[2].count, 0);
        assert_eq!(snapshot.buckets[3].count, 1);
        assert!((snapshot.sum - 300e-6).abs() < 1e-12);
    }

    /// The hot-path cost (BENCHMARKS.md, "Daemon HTTP surface"): `cargo test --release -p
    /// events-sled --lib histogram::tests::record_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a timing, not a check"]
    fn record_cost() {
        use std::hint::black_box;
        use std::time::Instant;
        let n = 20_000_000_u64;
        let groups = AtomicHistogram::<GroupEvents>::default();
        let started = Instant::now();
        for i in 0..n {
            groups.record(black_box(i % 300));
        }
        let per_group = started.elapsed().as_nanos() as f64 / n as f64;
        let syncs = AtomicHistogram::<SyncNanos>::default();
        let started = Instant::now();
        for _ in 0..n {
            // What `sync_log` adds around the sync: two clock reads and a record.
            let sync_started = Instant::now();
            syncs.record(u64::try_from(sync_started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
        let per_sync = started.elapsed().as_nanos() as f64 / n as f64;
        println!("per group write: {per_group:.1} ns; per log sync: {per_sync:.1} ns");
        assert_eq!(groups.snapshot().count + syncs.snapshot().count, 2 * n);
    }

    #[test]
    fn concurrent_records_are_all_counted() {
        let histogram = Arc::new(AtomicHistogram::<GroupEvents>::default());
        let threads: Vec<_> = (0..4_u64)
            .map(|t| {
                let histogram = Arc::clone(&histogram);
                std::thread::spawn(move || {
                    for n in 0..10_000 {
                        histogram.record((n + t) % 5000);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 40_000);
        let expected: u64 = (0..4_u64)
            .flat_map(|t| (0..10_000).map(move |n| (n + t) % 5000))
            .sum();
        assert_eq!(snapshot.sum, expected as f64);
        let counts: Vec<u64> = snapshot.buckets.iter().map(|b| b.count).collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]));
    }
}
