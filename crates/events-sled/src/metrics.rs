//! The store's metrics: the seed's list plus what an operator needs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Durability;
use crate::histogram::HistogramSnapshot;
use crate::state::lock;
use crate::store::Store;

/// A snapshot of the store's counters. Serializes to JSON with the seed's names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreMetrics {
    /// The store's directory.
    pub storage_path: String,
    /// Events in the log.
    pub total_events_stored: u64,
    /// Events returned by reads, over the store's life.
    pub total_events_retrieved: u64,
    /// Checkpoints exported, over the store's life (the seed's backups).
    pub checkpoints_created: u64,
    /// Snapshots saved, over the store's life.
    pub snapshots_created: u64,
    /// When the last checkpoint was exported.
    pub last_checkpoint_time: Option<DateTime<Utc>>,
    /// When the last snapshot was saved.
    pub last_snapshot_time: Option<DateTime<Utc>>,
    /// Registered event types and the Rust types carrying them (empty without a registry).
    pub registered_events: BTreeMap<String, String>,
    /// Aggregates with at least one written event.
    pub aggregates: u64,
    /// Position of the last acknowledged event.
    pub last_position: u64,
    /// Every event up to here is written to the log's segment files.
    pub written_position: u64,
    /// Every event up to here is flushed to disk.
    pub durable_position: u64,
    /// Bytes the store's directory takes on disk.
    pub bytes_on_disk: u64,
    /// The durability mode.
    pub durability: Durability,
    /// Append calls since the store was opened.
    pub appends_since_open: u64,
    /// Events appended since the store was opened.
    pub events_appended_since_open: u64,
    /// Appends refused for a wrong expected version since open.
    pub conflicts_since_open: u64,
    /// Group writes since open (events per group = events appended / group writes).
    pub group_writes_since_open: u64,
    /// Flushes to disk since open.
    pub flushes_since_open: u64,
    /// Events per group write since open: one observation per group written to the log's
    /// segment files (one record, one frame; in durable mode, one sync shared by the appends in
    /// it), valued at the number of events in it. Its `count` is `group_writes_since_open`.
    pub group_events: HistogramSnapshot,
    /// Seconds each `fdatasync` of the log's active segment took since open, failed ones
    /// included: durable mode's sync of each group, and the first step of every flush (the
    /// flusher's every `flush_interval`, `Store::flush`, a checkpoint's and the close's). sled's
    /// own syncs are not counted.
    pub log_sync_seconds: HistogramSnapshot,
    /// Acknowledged events not yet written to sled.
    pub unwritten_events: u64,
    /// The persisted indexes reach this position.
    pub index_watermark: u64,
    /// Aggregates whose state is held in memory.
    pub cached_aggregates: u64,
    /// Why the store stopped writing, if it did.
    pub failure: Option<String>,
}

fn time(micros: i64) -> Option<DateTime<Utc>> {
    if micros == 0 {
        None
    } else {
        DateTime::<Utc>::from_timestamp_micros(micros)
    }
}

/// Bytes under `path`, following no links.
pub(crate) fn disk_usage(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => disk_usage(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

impl Store {
    /// The store's metrics now.
    pub fn metrics(&self) -> StoreMetrics {
        let shared = &self.shared;
        let c = &shared.counters;
        let (last_position, written, durable, unwritten, watermark, cached, failure) = {
            let state = lock(&shared.state);
            (
                state.next_position - 1,
                state.written_upto,
                state.durable_upto,
                state.unwritten.len() as u64,
                state.watermark,
                state.memtable.streams.len() as u64,
                state.failed.clone(),
            )
        };
        StoreMetrics {
            storage_path: shared.config.path.display().to_string(),
            total_events_stored: last_position,
            total_events_retrieved: c.events_retrieved.load(Ordering::Relaxed),
            checkpoints_created: c.checkpoints_created.load(Ordering::Relaxed),
            snapshots_created: c.snapshots_created.load(Ordering::Relaxed),
            last_checkpoint_time: time(c.last_checkpoint_micros.load(Ordering::Relaxed)),
            last_snapshot_time: time(c.last_snapshot_micros.load(Ordering::Relaxed)),
            registered_events: shared
                .config
                .registry
                .as_ref()
                .map(|r| r.registered_events())
                .unwrap_or_default(),
            aggregates: c.aggregates.load(Ordering::Relaxed),
            last_position,
            written_position: written,
            durable_position: durable,
            bytes_on_disk: disk_usage(&shared.config.path),
            durability: shared.config.durability,
            appends_since_open: c.appends.load(Ordering::Relaxed),
            events_appended_since_open: c.events_appended.load(Ordering::Relaxed),
            conflicts_since_open: c.conflicts.load(Ordering::Relaxed),
            group_writes_since_open: c.group_writes.load(Ordering::Relaxed),
            flushes_since_open: c.flushes.load(Ordering::Relaxed),
            group_events: c.group_events.snapshot(),
            log_sync_seconds: c.log_syncs.snapshot(),
            unwritten_events: unwritten,
            index_watermark: watermark,
            cached_aggregates: cached,
            failure,
        }
    }
}
