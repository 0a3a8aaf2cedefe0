//! Workload W: the names, the sizes at each scale, and the appends each one makes.

use clap::ValueEnum;
use serde::Serialize;

/// Events per append of the batch workloads (and events per aggregate of the batch store).
pub const BATCH: usize = 100;
/// Writer threads of `W-durable-16-writers`.
pub const MANY_WRITERS: usize = 16;
/// Subscribers of `W-subscribe`.
pub const SUBSCRIBERS: usize = 4;
/// Events between two snapshots of the W-load-snapshot aggregate.
pub const SNAPSHOT_EVERY: usize = 1_000;

/// One workload of W. The order here is the order they run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum, Serialize)]
pub enum Workload {
    /// 100 000 events round-robin over 10 000 aggregates, one event per append, version checked.
    #[value(name = "W-append-single")]
    #[serde(rename = "W-append-single")]
    AppendSingle,
    /// 1 000 000 events: 10 000 aggregates × 100, one append of 100 per aggregate.
    #[value(name = "W-append-batch")]
    #[serde(rename = "W-append-batch")]
    AppendBatch,
    /// Read every aggregate of the batch store in full, after reopening it.
    #[value(name = "W-read-stream")]
    #[serde(rename = "W-read-stream")]
    ReadStream,
    /// Read the whole global log of the batch store from the start, after reopening it.
    #[value(name = "W-read-all")]
    #[serde(rename = "W-read-all")]
    ReadAll,
    /// W-read-all without copying: every event visited as a borrowed view (eventlog:
    /// `EventLog::scan_log`; SQLite: `row.get_ref`; raw sled: slices of its buffers).
    #[value(name = "W-read-all-scan")]
    #[serde(rename = "W-read-all-scan")]
    ReadAllScan,
    /// W-append-single, every acknowledged append durable, one writer thread.
    #[value(name = "W-durable-1-writer")]
    #[serde(rename = "W-durable-1-writer")]
    Durable1,
    /// W-append-single, every acknowledged append durable, 16 writer threads each owning 1/16 of
    /// the aggregates.
    #[value(name = "W-durable-16-writers")]
    #[serde(rename = "W-durable-16-writers")]
    Durable16,
    /// W-append-batch, every acknowledged append durable.
    #[value(name = "W-durable-batch")]
    #[serde(rename = "W-durable-batch")]
    DurableBatch,
    /// Load an `ArticleGeneration` aggregate of 100 000 events without snapshots (a full fold),
    /// after reopening.
    #[value(name = "W-load")]
    #[serde(rename = "W-load")]
    Load,
    /// The same aggregate with a snapshot every 1 000 events up to 99 000: the load reads the
    /// snapshot at 99 000 and folds the 1 000 events after it (the worst case of that interval).
    #[value(name = "W-load-snapshot")]
    #[serde(rename = "W-load-snapshot")]
    LoadSnapshot,
    /// Publish→deliver latency p50/p99 with 4 subscribers during W-append-single (the eventlog
    /// only: the baselines have no push delivery).
    #[value(name = "W-subscribe")]
    #[serde(rename = "W-subscribe")]
    Subscribe,
    /// W-append-batch's events shipped to a local single-node NATS JetStream (the eventlog
    /// only): the whole log from position 1 after appending it (events shipped per second,
    /// the append rate alone beside it), then appends with the replicator running (the append
    /// rate with replication on and the replication lag).
    #[value(name = "W-replicate")]
    #[serde(rename = "W-replicate")]
    Replicate,
}

impl Workload {
    /// Every workload, in running order.
    pub fn all() -> Vec<Self> {
        Self::value_variants().to_vec()
    }

    /// The name used on the command line and as the JSON key.
    pub fn name(self) -> &'static str {
        match self {
            Self::AppendSingle => "W-append-single",
            Self::AppendBatch => "W-append-batch",
            Self::ReadStream => "W-read-stream",
            Self::ReadAll => "W-read-all",
            Self::ReadAllScan => "W-read-all-scan",
            Self::Durable1 => "W-durable-1-writer",
            Self::Durable16 => "W-durable-16-writers",
            Self::DurableBatch => "W-durable-batch",
            Self::Load => "W-load",
            Self::LoadSnapshot => "W-load-snapshot",
            Self::Subscribe => "W-subscribe",
            Self::Replicate => "W-replicate",
        }
    }

    /// Whether the workload reads the batch store (built by `W-append-batch`).
    pub fn reads_batch_store(self) -> bool {
        matches!(self, Self::ReadStream | Self::ReadAll | Self::ReadAllScan)
    }

    /// Whether the workload reads without copying (borrowed views instead of owned events).
    pub fn zero_copy(self) -> bool {
        self == Self::ReadAllScan
    }
}

/// How big W is: full size, a tenth (`--quick`) or a hundredth (`--tiny`, for the smoke test).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// The sizes of the issue.
    Full,
    /// A tenth of every size.
    Quick,
    /// A hundredth of every size (used by the smoke test only).
    Tiny,
}

impl Scale {
    fn divisor(self) -> usize {
        match self {
            Self::Full => 1,
            Self::Quick => 10,
            Self::Tiny => 100,
        }
    }

    /// Events of the single-event workloads (100 000 at full size).
    pub fn single_events(self) -> usize {
        100_000 / self.divisor()
    }

    /// Aggregates of every workload (10 000 at full size).
    pub fn aggregates(self) -> usize {
        10_000 / self.divisor()
    }

    /// Events of the batch store: aggregates × [`BATCH`] (1 000 000 at full size).
    pub fn batch_events(self) -> usize {
        self.aggregates() * BATCH
    }

    /// Events of the aggregate W-load loads (100 000 at full size).
    pub fn load_events(self) -> usize {
        100_000 / self.divisor()
    }
}

/// The sizes of one workload at one scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shape {
    /// Events appended (or read, or loaded).
    pub events: usize,
    /// Aggregates they are spread over.
    pub aggregates: usize,
    /// Events per append.
    pub per_append: usize,
    /// Writer threads.
    pub writers: usize,
    /// Whether every acknowledged append must be durable.
    pub durable: bool,
}

impl Shape {
    /// The shape of `workload` at `scale`; `durable_events` overrides the event count of the
    /// single-event durable workloads.
    pub fn of(workload: Workload, scale: Scale, durable_events: Option<usize>) -> Self {
        let single = |events, writers, durable| Self {
            events,
            aggregates: scale.aggregates(),
            per_append: 1,
            writers,
            durable,
        };
        let batch = |durable| Self {
            events: scale.batch_events(),
            aggregates: scale.aggregates(),
            per_append: BATCH,
            writers: 1,
            durable,
        };
        let durable_single = durable_events.unwrap_or(scale.single_events());
        match workload {
            Workload::AppendSingle => single(scale.single_events(), 1, false),
            Workload::AppendBatch
            | Workload::ReadStream
            | Workload::ReadAll
            | Workload::ReadAllScan
            | Workload::Replicate => batch(false),
            Workload::Durable1 => single(durable_single, 1, true),
            Workload::Durable16 => single(durable_single, MANY_WRITERS, true),
            Workload::DurableBatch => batch(true),
            Workload::Load | Workload::LoadSnapshot => Self {
                events: scale.load_events(),
                aggregates: 1,
                per_append: BATCH,
                writers: 1,
                durable: false,
            },
            Workload::Subscribe => single(scale.single_events(), 1, false),
        }
    }

    /// The appends, per writer thread, in the order each thread makes them.
    ///
    /// Single-event shapes go round-robin over the aggregates (event `i` is the next event of
    /// aggregate `i % aggregates`); batch shapes append each aggregate's events in one go. With
    /// several writers, writer `t` owns the aggregates `a` with `a % writers == t`, so expected
    /// versions never conflict between threads.
    pub fn plan(&self) -> Vec<Vec<Append>> {
        let writers = self.writers.max(1);
        let mut plans = vec![Vec::new(); writers];
        let aggregates = self.aggregates.max(1);
        let mut next_version = vec![0_u64; aggregates];
        let mut first = 0;
        let mut turn = 0;
        while first < self.events {
            let aggregate = turn % aggregates;
            let count = self.per_append.min(self.events - first);
            let expected = next_version[aggregate];
            next_version[aggregate] += count as u64;
            plans[aggregate % writers].push(Append {
                aggregate: aggregate as u32,
                expected,
                first,
                count,
            });
            first += count;
            turn += 1;
        }
        plans
    }
}

/// One append call: `count` events from input event `first`, to aggregate `gen-<aggregate>`,
/// which must be at version `expected` (0: it must not exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Append {
    /// The aggregate's number `n` in `gen-<n>`.
    pub aggregate: u32,
    /// Its version before this append.
    pub expected: u64,
    /// Index of the first event in the [`crate::input::Input`].
    pub first: usize,
    /// How many events.
    pub count: usize,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn full_sizes_are_the_issues() {
        let s = Shape::of(Workload::AppendSingle, Scale::Full, None);
        assert_eq!((s.events, s.aggregates, s.per_append), (100_000, 10_000, 1));
        let b = Shape::of(Workload::AppendBatch, Scale::Full, None);
        assert_eq!(
            (b.events, b.aggregates, b.per_append),
            (1_000_000, 10_000, 100)
        );
        let q = Shape::of(Workload::AppendBatch, Scale::Quick, None);
        assert_eq!((q.events, q.aggregates), (100_000, 1_000));
        let d = Shape::of(Workload::Durable16, Scale::Full, Some(20_000));
        assert_eq!((d.events, d.writers, d.durable), (20_000, 16, true));
    }

    #[test]
    fn single_plan_is_round_robin_with_checked_versions() {
        let shape = Shape::of(Workload::AppendSingle, Scale::Tiny, None);
        let plan = shape.plan();
        assert_eq!(plan.len(), 1);
        let appends = &plan[0];
        assert_eq!(appends.len(), 1_000);
        assert_eq!(
            appends[0],
            Append {
                aggregate: 0,
                expected: 0,
                first: 0,
                count: 1
            }
        );
        assert_eq!(
            appends[101],
            Append {
                aggregate: 1,
                expected: 1,
                first: 101,
                count: 1
            }
        );
        assert_eq!(appends[999].expected, 9);
    }

    #[test]
    fn sixteen_writers_own_disjoint_aggregates_of_the_full_workload() {
        let shape = Shape::of(Workload::Durable16, Scale::Full, None);
        let plan = shape.plan();
        assert_eq!(plan.len(), 16);
        for (t, appends) in plan.iter().enumerate() {
            assert_eq!(appends.len(), 6_250);
            let owned: std::collections::HashSet<_> = appends.iter().map(|a| a.aggregate).collect();
            assert_eq!(owned.len(), 625);
            assert!(owned.iter().all(|a| *a as usize % 16 == t));
        }
        let total: usize = plan.iter().flatten().map(|a| a.count).sum();
        assert_eq!(total, 100_000);
    }

    #[test]
    fn batch_plan_appends_each_aggregate_once() {
        let plan = Shape::of(Workload::AppendBatch, Scale::Tiny, None).plan();
        assert_eq!(plan[0].len(), 100);
        assert!(plan[0].iter().all(|a| a.expected == 0 && a.count == 100));
        assert_eq!(plan[0][7].first, 700);
    }
}
