//! The systems W runs on: the eventlog store and the two baselines, behind one small interface.
//!
//! Each system is opened on a directory (created empty, or reopened), hands out one append
//! handle per writer thread, and reads streams and the whole log back, materialising every event
//! into owned values and returning how many it read (the runner checks the counts). It also scans
//! the whole store without copying (borrowed views), and loads the `ArticleGeneration` aggregate
//! (with its own snapshots).

use std::path::Path;

use clap::ValueEnum;
use serde::Serialize;

use ::eventlog::{Aggregate, EventRegistry, RecordedEvent};
use omni_domain::ArticleGeneration;

use crate::input::Input;
use crate::workload::Append;

pub mod eventlog;
pub mod raw_sled;
pub mod sqlite;

/// Page cache given to both sled-based systems (the eventlog store's default), so the engine
/// baseline runs with the same memory.
pub const SLED_CACHE_BYTES: u64 = 256 << 20;

/// Which system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum, Serialize)]
pub enum SystemName {
    /// The store under test: the `eventlog` facade (`EventLog`), the handle a user opens.
    #[value(name = "eventlog")]
    #[serde(rename = "eventlog")]
    Eventlog,
    /// A plain SQLite event table through rusqlite (bundled SQLite), as a typical developer
    /// writes it.
    #[value(name = "sqlite")]
    #[serde(rename = "sqlite")]
    Sqlite,
    /// sled used directly: one key per event, one `apply_batch` per append (`insert` for a
    /// one-event append), no version checks. The engine ceiling.
    #[value(name = "raw_sled")]
    #[serde(rename = "raw_sled")]
    RawSled,
}

impl SystemName {
    /// Every system, in running order.
    pub fn all() -> Vec<Self> {
        Self::value_variants().to_vec()
    }

    /// The name used on the command line and as the JSON key.
    pub fn name(self) -> &'static str {
        match self {
            Self::Eventlog => "eventlog",
            Self::Sqlite => "sqlite",
            Self::RawSled => "raw_sled",
        }
    }
}

/// A system W runs on.
pub trait System: Sized {
    /// A handle one writer thread appends through.
    type Writer: Writer;

    /// Opens the store in `dir` (creating it when empty). `durable`: every acknowledged append
    /// must be on disk (fsynced) before `append` returns.
    fn open(dir: &Path, durable: bool) -> anyhow::Result<Self>;

    /// A new append handle, for one thread.
    fn writer(&self) -> anyhow::Result<Self::Writer>;

    /// Makes everything appended so far durable.
    fn flush(&self) -> anyhow::Result<()>;

    /// Closes the store (all writers are dropped before).
    fn close(self) -> anyhow::Result<()>;

    /// Reads all events of aggregate `gen-<aggregate>` in version order; returns how many.
    fn read_stream(&self, aggregate: u32) -> anyhow::Result<u64>;

    /// Reads the whole store from the start (the global log, or for raw sled every key);
    /// returns how many events.
    fn read_all(&self) -> anyhow::Result<u64>;

    /// Visits the whole store from the start without copying an event: every field borrowed
    /// where it lies. Returns how many events and the sum of their payload lengths.
    fn scan_all(&self) -> anyhow::Result<Scanned>;

    /// Loads aggregate `gen-<aggregate>` as an `ArticleGeneration`: from its latest snapshot if
    /// it has one, then the events after it.
    fn load(&self, aggregate: u32) -> anyhow::Result<LoadOutcome>;

    /// Loads aggregate `gen-<aggregate>` and saves a snapshot of its state at its version.
    fn snapshot(&self, aggregate: u32) -> anyhow::Result<u64>;
}

/// What [`System::scan_all`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scanned {
    /// Events visited.
    pub events: u64,
    /// Sum of their payload lengths (so nothing is optimised away, and a check).
    pub payload_bytes: u64,
}

/// What one aggregate load did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOutcome {
    /// The version the state reflects.
    pub version: u64,
    /// The snapshot it started from.
    pub from_snapshot: Option<u64>,
    /// Events applied on top of it.
    pub events_applied: u64,
}

/// The fold the baselines use: the eventlog's own `Aggregate::apply_recorded`, on owned
/// `RecordedEvent`s, so all three systems do the same work per event.
pub fn apply(
    state: &mut ArticleGeneration,
    event: &RecordedEvent,
    registry: &EventRegistry,
) -> anyhow::Result<()> {
    state.apply_recorded(event, registry)?;
    Ok(())
}

/// One writer thread's append handle.
pub trait Writer: Send {
    /// Appends `append.count` input events from `append.first` to aggregate
    /// `gen-<append.aggregate>`, expecting it at version `append.expected` (0: absent).
    fn append(&mut self, input: &Input, append: &Append) -> anyhow::Result<()>;
}
