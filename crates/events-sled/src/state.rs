//! What the store's threads share: the sled trees, the sequencer state behind one lock, and the
//! counters.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::thread::{JoinHandle, ThreadId};

use events_core::{EventValidator, RecordedEvent};

use crate::config::{Durability, StoreConfig};
use crate::error::ReadError;
use crate::histogram::{AtomicHistogram, GroupEvents, SyncNanos};
use crate::index::{
    Memtable, PageError, StreamEntry, page_position, persisted_head, stream_page_at,
};
use crate::keys::StreamKey;
use crate::record::{Hash, PersistedCounters, Record};
use crate::segment::{SegmentError, SegmentFiles, SegmentLog};

/// Called on the writer thread with each group of events once it is committed (and, in durable
/// mode, flushed), in log order.
///
/// The store holds its listener until it closes. A listener may hold a [`Store`](crate::Store)
/// handle: closing the store (with `Store::close` on any handle) drops the listener and so that
/// handle, and the last handle may even be dropped inside the listener (the close then finishes
/// on a thread of its own once the listener returns). But a store whose listener holds a handle
/// never sees its *last* handle dropped while the listener is set: it closes only through
/// `Store::close` or `Store::set_commit_listener(None)`.
pub type CommitListener = Arc<dyn Fn(&[Arc<RecordedEvent>]) + Send + Sync>;

/// An acknowledged event waiting for the writer.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) event: Arc<RecordedEvent>,
    /// Whether this is the last event of its append call: groups are cut only here.
    pub(crate) commit_end: bool,
    /// What it counts against `max_unwritten_bytes`: on the call's last event, the memory every
    /// event of the call holds; 0 on the others (the writer removes whole calls: groups are cut
    /// only at a call's end).
    pub(crate) bytes: usize,
}

/// The sequencer's state, behind [`Shared::state`].
#[derive(Debug)]
pub(crate) struct State {
    /// The position the next event gets.
    pub(crate) next_position: u64,
    /// Events at `written_upto + 1 ..`, acknowledged but not yet in the segment files.
    pub(crate) unwritten: VecDeque<Pending>,
    pub(crate) unwritten_bytes: usize,
    /// Every position up to here is in the segment files.
    pub(crate) written_upto: u64,
    /// The chain hash of the record ending at `written_upto`.
    pub(crate) written_hash: Hash,
    /// Every position up to here is flushed to disk.
    pub(crate) durable_upto: u64,
    /// The indexes after the watermark.
    pub(crate) memtable: Memtable,
    /// The persisted indexes reach this position.
    pub(crate) watermark: u64,
    /// Set when a write failed: nothing more is written.
    pub(crate) failed: Option<String>,
    /// Set by `close`: the writer drains and stops.
    pub(crate) closing: bool,
    /// Set by the writer when it has stopped.
    pub(crate) writer_done: bool,
    /// Set while the writer waits for work: only then do appends pay for waking it.
    pub(crate) writer_idle: bool,
    /// Set while a group — the front of `unwritten` — is being written (by the writer thread, or
    /// by an appending thread that found no group in flight): one at a time, in log order.
    pub(crate) writing: bool,
    /// Groups appending threads wrote themselves, for the writer thread to hand to the commit
    /// listener (always on the writer thread, in log order).
    pub(crate) to_notify: VecDeque<Vec<Arc<RecordedEvent>>>,
}

/// Counters for the metrics; the persisted ones are loaded at open and saved with each index flush.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) events_retrieved: AtomicU64,
    pub(crate) checkpoints_created: AtomicU64,
    pub(crate) snapshots_created: AtomicU64,
    pub(crate) last_checkpoint_micros: AtomicI64,
    pub(crate) last_snapshot_micros: AtomicI64,
    /// Aggregates with at least one written event.
    pub(crate) aggregates: AtomicU64,
    pub(crate) events_appended: AtomicU64,
    pub(crate) appends: AtomicU64,
    pub(crate) conflicts: AtomicU64,
    pub(crate) group_writes: AtomicU64,
    pub(crate) flushes: AtomicU64,
    /// Events of each group written to the log since open.
    pub(crate) group_events: AtomicHistogram<GroupEvents>,
    /// Duration of each `fdatasync` of the log since open ([`Shared::sync_log`]).
    pub(crate) log_syncs: AtomicHistogram<SyncNanos>,
    /// Position of the last checkpoint (for the automatic policy).
    pub(crate) checkpoint_position: AtomicU64,
    /// Bytes appended since the last checkpoint.
    pub(crate) bytes_since_checkpoint: AtomicU64,
}

impl Counters {
    pub(crate) fn load(&self, persisted: PersistedCounters) {
        self.events_retrieved
            .store(persisted.events_retrieved, Ordering::Relaxed);
        self.checkpoints_created
            .store(persisted.checkpoints_created, Ordering::Relaxed);
        self.snapshots_created
            .store(persisted.snapshots_created, Ordering::Relaxed);
        self.last_checkpoint_micros
            .store(persisted.last_checkpoint_micros, Ordering::Relaxed);
        self.last_snapshot_micros
            .store(persisted.last_snapshot_micros, Ordering::Relaxed);
        self.aggregates
            .store(persisted.aggregates, Ordering::Relaxed);
    }

    pub(crate) fn persisted(&self) -> PersistedCounters {
        PersistedCounters {
            events_retrieved: self.events_retrieved.load(Ordering::Relaxed),
            checkpoints_created: self.checkpoints_created.load(Ordering::Relaxed),
            snapshots_created: self.snapshots_created.load(Ordering::Relaxed),
            last_checkpoint_micros: self.last_checkpoint_micros.load(Ordering::Relaxed),
            last_snapshot_micros: self.last_snapshot_micros.load(Ordering::Relaxed),
            aggregates: self.aggregates.load(Ordering::Relaxed),
        }
    }
}

/// Everything the store's handles and threads share.
pub(crate) struct Shared {
    /// The store's id (see [`crate::Store::store_id`]).
    pub(crate) store_id: String,
    pub(crate) config: StoreConfig,
    pub(crate) validator: EventValidator,
    pub(crate) db: sled::Db,
    pub(crate) log: sled::Tree,
    pub(crate) snapshots: sled::Tree,
    pub(crate) consumers: sled::Tree,
    /// sled's data file, for `fdatasync` (sled's own flush does not flush the drive's cache).
    pub(crate) data_file: File,
    pub(crate) state: Mutex<State>,
    /// Wakes the writer: events to write, a flush asked for, or closing.
    pub(crate) writer_wake: Condvar,
    /// Signals that `written_upto` or `durable_upto` moved, or the writer failed or stopped.
    pub(crate) progress: Condvar,
    /// Mirror of `State::written_upto`, for readers that need not lock.
    pub(crate) written_upto: AtomicU64,
    pub(crate) counters: Counters,
    pub(crate) listener: RwLock<Option<CommitListener>>,
    pub(crate) writer: Mutex<Option<JoinHandle<()>>>,
    /// The writer thread's id: the thread the listener runs on, which closing must not join.
    pub(crate) writer_thread: OnceLock<ThreadId>,
    pub(crate) checkpointer: Mutex<Option<JoinHandle<()>>>,
    pub(crate) checkpoint_wake: Condvar,
    /// The global log: the records, in segment files.
    pub(crate) segments: SegmentLog,
    /// Serialises flushes; holds the written position the last flush covered.
    pub(crate) flushed: Mutex<u64>,
    /// When the last flush began: blob files written since then still need an `fsync`.
    pub(crate) blobs_synced: Mutex<std::time::SystemTime>,
    pub(crate) flusher: Mutex<Option<JoinHandle<()>>>,
    pub(crate) flusher_wake: Condvar,
    /// The filesystem's free bytes, and when they were last measured (ms since open).
    pub(crate) free_disk: AtomicU64,
    pub(crate) free_disk_checked_ms: AtomicU64,
    pub(crate) opened_at: std::time::Instant,
    /// Serialises index persistence.
    pub(crate) indexing: Mutex<()>,
    pub(crate) indexer: Mutex<Option<JoinHandle<()>>>,
    pub(crate) indexer_wake: Condvar,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("path", &self.config.path)
            .finish_non_exhaustive()
    }
}

/// Locks a mutex; a poisoned lock is still usable because no code path panics while holding it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn corrupted(detail: impl Into<String>) -> ReadError {
    ReadError::Corrupted {
        detail: detail.into(),
    }
}

impl From<SegmentError> for ReadError {
    fn from(e: SegmentError) -> Self {
        match e {
            SegmentError::Io { path, source } => ReadError::Io { path, source },
            other => corrupted(format!("the log's segment files: {other}")),
        }
    }
}

impl From<PageError> for ReadError {
    fn from(e: PageError) -> Self {
        match e {
            PageError::Storage(e) => ReadError::Storage(e),
            PageError::Corrupted(detail) => ReadError::Corrupted { detail },
        }
    }
}

/// The log record holding `position`, read from the segment files (the live store's and the
/// read-only store's alike).
pub(crate) fn record_holding(segments: &SegmentFiles, position: u64) -> Result<Record, ReadError> {
    let bytes = segments.record_at(position)?;
    let record = Record::parse(bytes)
        .map_err(|e| corrupted(format!("log record holding position {position}: {e}")))?;
    if !record.contains(position) {
        return Err(corrupted(format!(
            "log record at {} ends at {}, before position {position}",
            record.first_position(),
            record.last_position()
        )));
    }
    Ok(record)
}

/// The event at `position` in the segment files, reusing `cache` when it holds the right record
/// (events read together are usually in one record) and keeping the record read otherwise.
pub(crate) fn stored_event(
    segments: &SegmentFiles,
    position: u64,
    cache: &mut Option<Record>,
) -> Result<RecordedEvent, ReadError> {
    if !cache.as_ref().is_some_and(|r| r.contains(position)) {
        *cache = Some(record_holding(segments, position)?);
    }
    let Some(record) = cache.as_mut() else {
        return Err(corrupted("the record cache emptied"));
    };
    record
        .event(position)
        .map_err(|e| corrupted(format!("event at position {position}: {e}")))
}

/// Which events a read covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// What readers may see: in durable mode only durable events (one a crash could still
    /// discard, and whose position it could give to another event, is not shown); in buffered
    /// mode every acknowledged event.
    Visible,
    /// Every sequenced event, durable or not: for checking appends against what is queued.
    Sequenced,
}

impl Shared {
    /// The last position a reader sees (see [`Scope::Visible`]), under the state lock.
    pub(crate) fn visible_end(&self, state: &State) -> u64 {
        match self.config.durability {
            Durability::Durable => state.durable_upto,
            Durability::Buffered => state.next_position - 1,
        }
    }

    /// [`Shared::visible_end`], taking the state lock.
    pub(crate) fn last_visible(&self) -> u64 {
        self.visible_end(&lock(&self.state))
    }

    /// The last position a read in `scope` covers, under the state lock.
    pub(crate) fn scope_end(&self, state: &State, scope: Scope) -> u64 {
        match scope {
            Scope::Visible => self.visible_end(state),
            Scope::Sequenced => state.next_position - 1,
        }
    }

    /// Stops all writing after a storage failure: every waiting and later append fails.
    pub(crate) fn fail(&self, reason: String) {
        tracing::error!(name: "event_store_write_failed", error = %reason, "event store stopped writing");
        let mut state = lock(&self.state);
        if state.failed.is_none() {
            state.failed = Some(reason);
        }
        self.progress.notify_all();
        self.flusher_wake.notify_all();
        self.indexer_wake.notify_all();
        self.checkpoint_wake.notify_all();
    }

    /// The stream's entry, loading its head from the persisted pages if memory does not hold it.
    pub(crate) fn entry<'s>(
        &self,
        state: &'s mut State,
        stream: &StreamKey,
    ) -> Result<&'s mut StreamEntry, ReadError> {
        if !state.memtable.streams.contains_key(stream) {
            let written = state.written_upto;
            let head = persisted_head(&self.log, stream, || written)?;
            // Version `v` sits at a position of at least `v`, so a head at or past the next
            // position is damage (and would overflow the versions this append assigns).
            if head >= state.next_position {
                return Err(corrupted(format!(
                    "the index puts `{}` at version {head}, but the log ends at position {}",
                    stream.label(),
                    state.next_position.saturating_sub(1)
                )));
            }
            state.memtable.streams.insert(
                stream.clone(),
                StreamEntry {
                    head,
                    runs: Vec::new(),
                    last_event_id: None,
                },
            );
        }
        state
            .memtable
            .streams
            .get_mut(stream)
            .ok_or_else(|| corrupted("stream entry vanished"))
    }

    /// The log record holding `position`, read from the segments.
    pub(crate) fn record_at(&self, position: u64) -> Result<Record, ReadError> {
        record_holding(&self.segments, position)
    }

    /// The event at `position`, from memory if not yet written, else from sled (reusing `cache`
    /// when it holds the right record).
    pub(crate) fn event_at(
        &self,
        position: u64,
        cache: &mut Option<Record>,
    ) -> Result<RecordedEvent, ReadError> {
        if position > self.written_upto.load(Ordering::Acquire) {
            let state = lock(&self.state);
            if position > state.written_upto {
                let index =
                    usize::try_from(position - state.written_upto - 1).unwrap_or(usize::MAX);
                return state
                    .unwritten
                    .get(index)
                    .map(|p| RecordedEvent::clone(&p.event))
                    .ok_or_else(|| corrupted(format!("position {position} is beyond the log")));
            }
        }
        stored_event(&self.segments, position, cache)
    }

    /// The position of a persisted stream version (one whose runs have left memory).
    pub(crate) fn persisted_position(
        &self,
        stream: &StreamKey,
        version: u64,
    ) -> Result<u64, ReadError> {
        let (first, runs) = stream_page_at(&self.log, stream, version)?
            .ok_or_else(|| corrupted(format!("no index page holds version {version}")))?;
        page_position(first, &runs, version).ok_or_else(|| {
            corrupted(format!(
                "index page from version {first} lacks version {version}"
            ))
        })
    }
}
