//! The store handle: open (through a panic guard, with invariant checks), append, flush, close.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Duration;

use chrono::Utc;
use events_core::{EventValidator, NewEvent, RecordedEvent, ValidationError};

use crate::config::{Durability, StoreConfig};
use crate::error::{AppendError, OpenError, ReadError, StoreError};
use crate::index::{StreamEntry, push_position};
use crate::keys::StreamKey;
use crate::recovery::prepare;
use crate::state::{CommitListener, Counters, Pending, Scope, Shared, State, lock};
use crate::types::{AppendBatch, AppendResult, StreamRead};
use crate::writer::Writer;
use events_core::ExpectedVersion;

/// What an acknowledged event counts against `max_unwritten_bytes`: the memory it holds until the
/// writer has written it — the `Arc<RecordedEvent>` and every heap block the event owns, each
/// rounded up as glibc's allocator rounds it (8 bytes of header, 16-byte steps, 32 at least).
/// Counting the payload alone put a queued 100-byte event at 106 bytes; it occupies ~536.
fn pending_bytes(event: &NewEvent) -> usize {
    fn heap_block(len: usize) -> usize {
        if len == 0 {
            0
        } else {
            (len + 8).max(32).next_multiple_of(16)
        }
    }
    let context = &event.context;
    let strings = [
        Some(&event.event_type),
        Some(&event.aggregate_type),
        Some(&event.aggregate_id),
        Some(&context.source),
        context.trace_id.as_ref(),
        context.user_id.as_ref(),
        context.session_id.as_ref(),
        context.correlation_id.as_ref(),
        context.causation_id.as_ref(),
    ];
    // An `Arc` puts two counters before the value.
    heap_block(2 * std::mem::size_of::<usize>() + std::mem::size_of::<RecordedEvent>())
        + heap_block(event.payload.capacity())
        + strings
            .into_iter()
            .flatten()
            .map(|s| heap_block(s.capacity()))
            .sum::<usize>()
}

/// The store format this build writes and reads.
pub const STORE_FORMAT: u32 = 2;

/// The sled directory inside a store's directory.
pub(crate) const DATA_DIR: &str = "data";

/// An open event store. Cloning is cheap: every clone is a handle to the same store.
///
/// # Example
///
/// ```
/// use events_core::{EventContext, NewEvent};
/// use omni_domain::{CacheMiss};
/// use events_sled::{ExpectedVersion, Store, StoreConfig, StreamRead};
///
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(StoreConfig::new(dir.path()))?;
/// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "not_found".into() };
/// let event = NewEvent::from_event("cache-1", &miss, EventContext::new("example"))?;
/// let result = store.append(ExpectedVersion::NoStream, vec![event])?;
/// assert_eq!((result.last_version, result.last_position), (1, 1));
///
/// let events: Vec<_> = store
///     .read_stream("cache", "cache-1", StreamRead::forwards())?
///     .collect::<Result<_, _>>()?;
/// assert_eq!(events[0].metadata.event_type, "cache_miss");
/// store.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) shared: Arc<Shared>,
    /// Closes the store when the last handle is dropped.
    _guard: Arc<CloseGuard>,
}

#[derive(Debug)]
struct CloseGuard(Option<Arc<Shared>>);

impl Drop for CloseGuard {
    fn drop(&mut self) {
        let Some(shared) = self.0.take() else {
            return;
        };
        if shared.on_writer_thread() {
            // The last handle went away inside the commit listener, on the writer thread, which
            // cannot join itself: mark the store closing (the writer drains once the listener
            // returns) and run this drop again on a thread of its own.
            shared.begin_close();
            let path = shared.config.path.clone();
            if let Err(error) = std::thread::Builder::new()
                .name("eventlog-close".into())
                .spawn(move || drop(CloseGuard(Some(shared))))
            {
                tracing::error!(
                    name: "event_store_close_thread_failed",
                    path = %path.display(),
                    error = %error,
                    "no thread to close a store dropped inside its commit listener; it stays open until the process exits"
                );
            }
            return;
        }
        if let Err(e) = shared.shutdown() {
            tracing::warn!(name: "event_store_close_failed", error = %e, "closing the store on drop failed");
        }
        let data = shared.config.path.join(DATA_DIR);
        let failed = lock(&shared.state).failed.is_some();
        let Some(shared) = Arc::into_inner(shared) else {
            return;
        };
        if failed {
            // After a failed write sled can block for good in the flush its handles make when
            // they are dropped: drop them on a thread of their own and give up waiting after a
            // while rather than hang the caller (the store then stays locked until the process
            // exits).
            let (done, finished) = std::sync::mpsc::channel();
            let released = std::thread::Builder::new()
                .name("eventlog-release".into())
                .spawn(move || {
                    drop(shared);
                    let _ = done.send(());
                });
            if released.is_err() || finished.recv_timeout(Duration::from_secs(5)).is_err() {
                tracing::error!(
                    name: "event_store_release_stuck",
                    path = %data.display(),
                    "sled did not close after a failed write; the store stays locked until the process exits"
                );
                return;
            }
        } else {
            drop(shared);
        }
        // sled closes now; wait until it has let go of its lock, so the store can be reopened
        // at once.
        wait_unlocked(&data);
    }
}

/// Waits (up to 5 s) until no one holds sled's lock on the data file in `data`. sled releases
/// it when its last internal reference goes, which its I/O threads may hold briefly after a close.
pub(crate) fn wait_unlocked(data: &Path) {
    let Ok(file) = std::fs::File::open(data.join("db")) else {
        return;
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if file.try_lock().is_ok() {
            let _ = file.unlock();
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Joins one of the store's threads, if it runs; a panic it died of is logged, never dropped.
fn join_reporting_panic(handle: Option<std::thread::JoinHandle<()>>, thread: &str) {
    if let Some(handle) = handle
        && let Err(panic) = handle.join()
    {
        tracing::error!(
            name: "event_store_thread_panicked",
            thread,
            panic = %panic_message(panic.as_ref()),
            "a store thread panicked"
        );
    }
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// The segment size an existing sled directory was created with (sled refuses another).
fn existing_segment_size(data: &Path) -> Option<usize> {
    // sled ends the file with a binary CRC: read it as bytes, not as UTF-8.
    let bytes = std::fs::read(data.join("conf")).ok()?;
    let conf = String::from_utf8_lossy(&bytes);
    conf.lines()
        .find_map(|line| line.strip_prefix("segment_size: "))
        .and_then(|value| value.trim().parse().ok())
}

pub(crate) fn open_sled(config: &StoreConfig, data: &Path) -> Result<sled::Db, OpenError> {
    let segment_size = existing_segment_size(data).unwrap_or(config.segment_size);
    let sled_config = sled::Config::new()
        .path(data)
        .cache_capacity(config.cache_capacity)
        .segment_size(segment_size)
        // The writer flushes itself, on the schedule the durability mode names.
        .flush_every_ms(None);
    match catch_unwind(AssertUnwindSafe(|| sled_config.open())) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(sled::Error::Io(e))) if e.to_string().contains("could not acquire lock") => {
            Err(OpenError::Locked {
                path: config.path.clone(),
            })
        }
        Ok(Err(sled::Error::Io(source))) => Err(OpenError::Io {
            path: data.to_path_buf(),
            source,
        }),
        Ok(Err(e @ (sled::Error::Corruption { .. } | sled::Error::Unsupported(_)))) => {
            Err(OpenError::Corrupted {
                detail: format!("sled: {e}"),
            })
        }
        Ok(Err(e)) => Err(OpenError::Storage(e)),
        Err(panic) => Err(OpenError::EnginePanicked {
            message: panic_message(panic.as_ref()),
        }),
    }
}

/// Why an open failed: sled's own files did not open (sled reported them corrupted or panicked
/// on them; `Store::open` then rebuilds them from the log), or anything else.
#[derive(Debug)]
pub(crate) enum OpenFailure {
    SledDamaged(OpenError),
    Other(OpenError),
}

impl From<OpenError> for OpenFailure {
    fn from(error: OpenError) -> Self {
        Self::Other(error)
    }
}

impl OpenFailure {
    pub(crate) fn into_error(self) -> OpenError {
        match self {
            Self::SledDamaged(e) | Self::Other(e) => e,
        }
    }
}

impl Store {
    /// Opens (creating if needed) the store described by `config`.
    ///
    /// Opening never panics: a panic inside sled on damaged files is caught and returned as
    /// [`OpenError::EnginePanicked`]. After sled opens, the store checks its own invariants (the
    /// format version, the last record, the index watermark against the log, and every event after
    /// the watermark against its stream's head and the hash chain).
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidConfig`] for a setting out of range; [`OpenError::Locked`] when another
    /// process holds the store; [`OpenError::FormatTooNew`]; [`OpenError::Corrupted`] or
    /// [`OpenError::EnginePanicked`] for damaged files; [`OpenError::Io`] or
    /// [`OpenError::Storage`] otherwise.
    pub fn open(config: StoreConfig) -> Result<Self, OpenError> {
        config.validate()?;
        let span = tracing::info_span!("event_store_open", path = %config.path.display());
        let _enter = span.enter();
        match Self::open_once(config.clone()) {
            Err(OpenFailure::SledDamaged(error)) if crate::recovery::has_log(&config.path) => {
                // sled holds nothing the log cannot rebuild: set its files aside, rebuild.
                tracing::warn!(
                    name: "event_store_sled_damaged",
                    path = %config.path.display(),
                    error = %error,
                    "sled's files do not open; rebuilding them from the log"
                );
                crate::repair::repair_store(&config.path)?;
                Self::open_once(config).map_err(OpenFailure::into_error)
            }
            other => other.map_err(OpenFailure::into_error),
        }
    }

    /// Opens without repairing: the error says whether sled's own files failed to open.
    pub(crate) fn open_once(config: StoreConfig) -> Result<Self, OpenFailure> {
        let started = std::time::Instant::now();
        let data = config.path.join(DATA_DIR);
        std::fs::create_dir_all(&data).map_err(|source| OpenError::Io {
            path: data.clone(),
            source,
        })?;
        let db = open_sled(&config, &data).map_err(|e| match e {
            OpenError::Corrupted { .. } | OpenError::EnginePanicked { .. } => {
                OpenFailure::SledDamaged(e)
            }
            other => OpenFailure::Other(other),
        })?;
        let prepared = match catch_unwind(AssertUnwindSafe(|| prepare(&config, &data, &db))) {
            Ok(result) => result?,
            // Only sled panics on damaged files (the log's reads return errors).
            Err(panic) => {
                return Err(OpenFailure::SledDamaged(OpenError::EnginePanicked {
                    message: panic_message(panic.as_ref()),
                }));
            }
        };
        let (recovered, persisted) = (prepared.recovered, prepared.persisted);
        // sled's lock is ours: no export of this store runs. Temporary files of exports a
        // crash cut short would otherwise stay in the checkpoint directory for good.
        let checkpoint_dir = config.checkpoint_dir();
        let abandoned = crate::checkpoint::remove_abandoned_exports(&checkpoint_dir);
        if abandoned > 0 {
            tracing::info!(
                name: "event_store_abandoned_exports_removed",
                count = abandoned,
                dir = %checkpoint_dir.display(),
                "temporary files of exports cut short by a crash removed"
            );
        }
        let counters = Counters::default();
        counters.load(persisted);
        counters.aggregates.store(
            persisted.aggregates + recovered.new_aggregates,
            Ordering::Relaxed,
        );
        counters
            .checkpoint_position
            .store(recovered.last_position, Ordering::Relaxed);
        let mut validator = EventValidator::new().with_limits(config.limits.validation.clone());
        if let Some(registry) = &config.registry {
            validator = validator.with_registry(Arc::clone(registry));
        }
        let last_position = recovered.last_position;
        let shared = Arc::new(Shared {
            store_id: prepared.store_id,
            validator,
            db,
            log: prepared.log,
            snapshots: prepared.snapshots,
            consumers: prepared.consumers,
            data_file: prepared.data_file,
            state: Mutex::new(State {
                next_position: last_position + 1,
                unwritten: VecDeque::new(),
                unwritten_bytes: 0,
                written_upto: last_position,
                written_hash: recovered.chain_head,
                durable_upto: last_position,
                memtable: recovered.memtable,
                watermark: recovered.watermark,
                failed: None,
                closing: false,
                writer_done: false,
                writer_idle: false,
                writing: false,
                to_notify: VecDeque::new(),
            }),
            writer_wake: Condvar::new(),
            progress: Condvar::new(),
            written_upto: AtomicU64::new(last_position),
            counters,
            listener: RwLock::new(None),
            writer: Mutex::new(None),
            writer_thread: std::sync::OnceLock::new(),
            checkpointer: Mutex::new(None),
            checkpoint_wake: Condvar::new(),
            segments: prepared.segments,
            flushed: Mutex::new(last_position),
            // A crash may have left blobs unsynced: the first flush syncs them all.
            blobs_synced: Mutex::new(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(2)),
            flusher: Mutex::new(None),
            flusher_wake: Condvar::new(),
            free_disk: AtomicU64::new(u64::MAX),
            free_disk_checked_ms: AtomicU64::new(0),
            opened_at: std::time::Instant::now(),
            indexing: Mutex::new(()),
            indexer: Mutex::new(None),
            indexer_wake: Condvar::new(),
            config,
        });
        let thread_error = |source| OpenError::Io {
            path: shared.config.path.clone(),
            source,
        };
        let writer = Writer::spawn(Arc::clone(&shared)).map_err(thread_error)?;
        let _ = shared.writer_thread.set(writer.thread().id());
        *lock(&shared.writer) = Some(writer);
        crate::flusher::start(&shared).map_err(thread_error)?;
        crate::indexer::start(&shared).map_err(thread_error)?;
        crate::checkpoint::start_automatic(&shared).map_err(thread_error)?;
        tracing::info!(
            name: "event_store_init",
            path = %shared.config.path.display(),
            last_position,
            replayed = recovered.replayed,
            durability = ?shared.config.durability,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "event store opened"
        );
        Ok(Self {
            _guard: Arc::new(CloseGuard(Some(Arc::clone(&shared)))),
            shared,
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.shared.config.path
    }

    /// The store's id: a UUID made when the store is first opened (or, for a store made before
    /// ids existed, on its first open since) and kept in it for good. A store restored from a
    /// checkpoint gets its own. Checkpoints name it in their manifest, so a store prunes only its
    /// own checkpoints in a shared directory.
    pub fn store_id(&self) -> &str {
        &self.shared.store_id
    }

    /// The durability mode the store was opened with.
    pub fn durability(&self) -> Durability {
        self.shared.config.durability
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.shared.config
    }

    /// Position of the last event readers see (0: the log is empty): in durable mode the last
    /// durable event (an append still waiting for its sync is not counted), in buffered mode the
    /// last acknowledged one.
    pub fn last_position(&self) -> u64 {
        self.shared.last_visible()
    }

    /// Position up to which every event is flushed to disk.
    pub fn durable_position(&self) -> u64 {
        lock(&self.shared.state).durable_upto
    }

    /// Appends `events`, all of one aggregate, if the aggregate is at `expected`. Versions follow
    /// the aggregate's current one; global positions follow the log's end, gap-free. All events are
    /// stored or none.
    ///
    /// Appending the same event ids again at the same expectation, after an outcome that was not
    /// seen (a timeout, a crash), returns the original result and writes nothing. A retry is
    /// recognised when the events right after the expected version (for `Exact` and `NoStream`),
    /// or the aggregate's last events (for `Any` and `StreamExists`), carry the same ids.
    ///
    /// In [`Durability::Durable`] mode this returns once the events are on disk (and only then do
    /// reads show them); in buffered mode, once they are sequenced and readable.
    ///
    /// # Errors
    ///
    /// [`AppendError::WrongExpectedVersion`] on a conflict (also for `Exact(u64::MAX)`, which no
    /// aggregate reaches); [`AppendError::Invalid`] for an invalid event; [`AppendError::Empty`],
    /// [`AppendError::TooLarge`]; [`AppendError::Failed`] or [`AppendError::Closed`] when the store
    /// is not writing; [`AppendError::Read`] when the aggregate's index cannot be read or is
    /// damaged.
    pub fn append(
        &self,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, AppendError> {
        let mut results = self.append_batches(vec![AppendBatch::new(expected, events)])?;
        results.pop().ok_or(AppendError::Empty)
    }

    /// Appends to several aggregates atomically, each batch with its own expected version: every
    /// batch is stored, at consecutive positions in the order given, or none is.
    ///
    /// # Errors
    ///
    /// As [`Store::append`], plus [`AppendError::DuplicateAggregate`] when two batches name the
    /// same aggregate.
    pub fn append_batches(
        &self,
        batches: Vec<AppendBatch>,
    ) -> Result<Vec<AppendResult>, AppendError> {
        let span = tracing::debug_span!("event_store_append", batches = batches.len());
        let _enter = span.enter();
        self.shared.append(batches)
    }

    /// Makes every acknowledged append durable: writes what is queued, flushes sled and
    /// `fdatasync`s its data file.
    ///
    /// # Errors
    ///
    /// [`StoreError::Failed`] when the store is not writing, or when this flush failed — which
    /// fails the store: every later append gets [`AppendError::Failed`] until it is reopened (a
    /// failed `fdatasync` is reported once, so a later one could "succeed" over lost data).
    pub fn flush(&self) -> Result<u64, StoreError> {
        let shared = &self.shared;
        shared
            .wait_written()
            .map_err(|reason| StoreError::Failed { reason })?;
        shared
            .flush_sled()
            .map_err(|reason| StoreError::Failed { reason })
    }

    /// Sets the function called with each committed group of events, in log order, on the writer
    /// thread (after the group is flushed in durable mode). It must be quick: the writer waits for
    /// it. A panic in it is caught and logged. Replaces any earlier listener.
    ///
    /// The store holds the listener until it closes. A listener may hold a handle on this store:
    /// closing (with [`Store::close`] on any handle) drops the listener and that handle with it,
    /// and when the last handle is dropped inside the listener the close finishes on a thread of
    /// its own. But while such a listener is set, the store's last handle is the listener's, so
    /// dropping every other handle does not close the store: call [`Store::close`] (or set the
    /// listener to `None`) first.
    pub fn set_commit_listener(&self, listener: Option<CommitListener>) {
        if let Ok(mut slot) = self.shared.listener.write() {
            *slot = listener;
        }
    }

    /// Drains queued appends, persists the indexes and counters, flushes, and stops the store's
    /// threads. Other handles get [`AppendError::Closed`] afterwards.
    ///
    /// Called inside the commit listener (on the writer thread, which cannot wait for itself) it
    /// only refuses further appends and returns `Ok`: the writer drains once the listener returns,
    /// and the rest of the close happens when the last handle is dropped.
    ///
    /// # Errors
    ///
    /// [`StoreError::Failed`] if the final writes failed.
    pub fn close(self) -> Result<(), StoreError> {
        // Dropping the handle afterwards releases sled (and its lock) if this was the last one.
        self.shared.shutdown()
    }
}

impl Shared {
    /// Waits until every event acknowledged so far is written to sled; returns the written
    /// position then (at least what was acknowledged, and always the end of a record).
    pub(crate) fn wait_written(&self) -> Result<u64, String> {
        let mut state = lock(&self.state);
        let target = state.next_position - 1;
        loop {
            // A failed store writes nothing more, even when nothing is left to wait for.
            if let Some(reason) = &state.failed {
                return Err(reason.clone());
            }
            if state.written_upto >= target {
                break;
            }
            if state.writer_done {
                return Err("the store is closed".into());
            }
            self.writer_wake.notify_all();
            state = self
                .progress
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        Ok(state.written_upto)
    }

    /// Whether the caller runs on the writer thread (inside the commit listener).
    pub(crate) fn on_writer_thread(&self) -> bool {
        self.writer_thread.get() == Some(&std::thread::current().id())
    }

    /// Refuses new appends and lets the writer drain what is queued, then stop.
    fn begin_close(&self) {
        {
            let mut state = lock(&self.state);
            state.closing = true;
            self.writer_wake.notify_all();
        }
        self.checkpoint_wake.notify_all();
    }

    pub(crate) fn shutdown(&self) -> Result<(), StoreError> {
        self.begin_close();
        if self.on_writer_thread() {
            // Inside the commit listener: the writer cannot wait for itself. It drains and stops
            // once the listener returns; the last handle's drop finishes the close.
            tracing::debug!(
                name: "event_store_close_deferred",
                "close called inside the commit listener; it finishes when the last handle is dropped"
            );
            return Ok(());
        }
        let writer = lock(&self.writer).take();
        join_reporting_panic(writer, "writer");
        // The writer is gone, so the listener is no longer called: drop it, and with it any
        // handle on this store it holds (which would otherwise keep the store open for good).
        let listener = self
            .listener
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        drop(listener);
        self.flusher_wake.notify_all();
        self.indexer_wake.notify_all();
        for (thread, name) in [
            (&self.flusher, "flusher"),
            (&self.indexer, "indexer"),
            (&self.checkpointer, "checkpointer"),
        ] {
            let handle = lock(thread).take();
            join_reporting_panic(handle, name);
        }
        let failed = lock(&self.state).failed.clone();
        if let Some(reason) = failed {
            return Err(StoreError::Failed { reason });
        }
        // The writer has drained and stopped: persist the indexes, then one last flush makes
        // everything durable.
        if let Err(reason) = self.persist_indexes() {
            self.fail(reason.clone());
            return Err(StoreError::Failed { reason });
        }
        if let Err(reason) = self.flush_if_behind() {
            // `flush_sled` has failed the store.
            return Err(StoreError::Failed { reason });
        }
        if let Err(e) = self.segments.close() {
            let reason = format!("closing the log: {e}");
            self.fail(reason.clone());
            return Err(StoreError::Failed { reason });
        }
        Ok(())
    }

    /// Checks a call before it is sequenced: its aggregates' stream keys, and its event count.
    fn check_call(&self, batches: &[AppendBatch]) -> Result<(Vec<StreamKey>, u64), AppendError> {
        if batches.is_empty() || batches.iter().any(|b| b.events.is_empty()) {
            return Err(AppendError::Empty);
        }
        let limits = &self.config.limits;
        let count: usize = batches.iter().map(|b| b.events.len()).sum();
        if count > limits.max_events_per_append {
            return Err(AppendError::TooLarge {
                what: "event count",
                size: count,
                max: limits.max_events_per_append,
            });
        }
        let payload: usize = batches
            .iter()
            .flat_map(|b| &b.events)
            .map(|e| e.payload.len())
            .sum();
        if payload > limits.max_append_bytes {
            return Err(AppendError::TooLarge {
                what: "payload bytes",
                size: payload,
                max: limits.max_append_bytes,
            });
        }
        let now = Utc::now();
        // Sets are only needed (and only allocated) when there is something to compare.
        let mut ids = HashMap::with_capacity(if count > 1 { count } else { 0 });
        let mut streams = Vec::with_capacity(batches.len());
        let mut seen_streams =
            HashSet::with_capacity(if batches.len() > 1 { batches.len() } else { 0 });
        let mut index = 0;
        for batch in batches {
            let first = &batch.events[0];
            for event in &batch.events {
                self.validator
                    .validate_event_at(event, now)
                    .map_err(|source| AppendError::Invalid { index, source })?;
                if event.aggregate_type != first.aggregate_type
                    || event.aggregate_id != first.aggregate_id
                {
                    return Err(AppendError::Invalid {
                        index,
                        source: ValidationError::MixedAggregates {
                            index,
                            expected_type: first.aggregate_type.clone(),
                            expected_id: first.aggregate_id.clone(),
                            found_type: event.aggregate_type.clone(),
                            found_id: event.aggregate_id.clone(),
                        },
                    });
                }
                if count == 1 {
                    index += 1;
                    continue;
                }
                if let Some(earlier) = ids.insert(event.event_id, index) {
                    return Err(AppendError::Invalid {
                        index,
                        source: ValidationError::DuplicateEventId {
                            event_id: event.event_id,
                            first: earlier,
                            index,
                        },
                    });
                }
                index += 1;
            }
            let stream = StreamKey::new(&first.aggregate_type, &first.aggregate_id);
            if batches.len() > 1 && !seen_streams.insert(stream.clone()) {
                return Err(AppendError::DuplicateAggregate {
                    aggregate_type: first.aggregate_type.clone(),
                    aggregate_id: first.aggregate_id.clone(),
                });
            }
            streams.push(stream);
        }
        Ok((streams, count as u64))
    }

    fn not_writing(state: &State) -> Option<AppendError> {
        if let Some(reason) = &state.failed {
            return Some(AppendError::Failed {
                reason: reason.clone(),
            });
        }
        if state.closing || state.writer_done {
            return Some(AppendError::Closed);
        }
        None
    }

    /// Refuses appends while the filesystem is nearly full (measured at most every 50 ms).
    fn check_disk_space(&self) -> Result<(), AppendError> {
        let required = self.config.limits.min_free_disk_bytes;
        if required == 0 {
            return Ok(());
        }
        let now = self.opened_at.elapsed().as_millis() as u64 + 1;
        let checked = self.free_disk_checked_ms.load(Ordering::Relaxed);
        // Measured at most every 50 ms, but on every append once less than twice the reserve was
        // left: near the limit, 50 ms of appends can be a large part of what is left.
        let near_the_limit = self.free_disk.load(Ordering::Relaxed) < required.saturating_mul(2);
        let available = if checked == 0 || near_the_limit || now.saturating_sub(checked) >= 50 {
            // An unmeasurable filesystem is not refused: sled will report real failures.
            let available = fs2::available_space(&self.config.path).unwrap_or(u64::MAX);
            self.free_disk.store(available, Ordering::Relaxed);
            self.free_disk_checked_ms.store(now, Ordering::Relaxed);
            available
        } else {
            self.free_disk.load(Ordering::Relaxed)
        };
        if available < required {
            return Err(AppendError::DiskFull {
                available,
                required,
            });
        }
        Ok(())
    }

    pub(crate) fn append(
        self: &Arc<Self>,
        batches: Vec<AppendBatch>,
    ) -> Result<Vec<AppendResult>, AppendError> {
        let (streams, call_events) = self.check_call(&batches)?;
        self.check_disk_space()?;
        // Measured once, outside the state lock; `assign` charges it to the call's last event.
        let call_bytes: usize = batches
            .iter()
            .flat_map(|b| &b.events)
            .map(pending_bytes)
            .sum();
        let mut look_for_retry = true;
        loop {
            let mut state = lock(&self.state);
            loop {
                if let Some(error) = Self::not_writing(&state) {
                    return Err(error);
                }
                if state.unwritten_bytes == 0
                    || state.unwritten_bytes + call_bytes <= self.config.limits.max_unwritten_bytes
                {
                    break;
                }
                state = self
                    .progress
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            // Phase 1: every aggregate's head, and whether this call conflicts or looks like a retry.
            let mut heads = Vec::with_capacity(batches.len());
            let mut conflict = None;
            let mut maybe_retry = false;
            for (batch, stream) in batches.iter().zip(&streams) {
                let entry = self.entry(&mut state, stream)?;
                let head = entry.head;
                let last_event_id = entry.last_event_id;
                heads.push(head);
                if !batch.expected.accepts(head) {
                    conflict.get_or_insert((batch, head));
                } else if look_for_retry
                    && matches!(
                        batch.expected,
                        ExpectedVersion::Any | ExpectedVersion::StreamExists
                    )
                    && head >= batch.events.len() as u64
                {
                    let last_id = batch.events.last().map(|e| e.event_id);
                    let known = match last_event_id {
                        Some(id) => Some(id),
                        None => {
                            let position = self.persisted_position(stream, head)?;
                            // `event_at` locks the state for positions past the written log, and
                            // this holds it: such a position (damage) must not get there.
                            if position > state.written_upto {
                                return Err(AppendError::Read(ReadError::Corrupted {
                                    detail: format!(
                                        "the index puts version {head} of `{}` at position \
                                         {position}, past the log's end at {}",
                                        stream.label(),
                                        state.written_upto
                                    ),
                                }));
                            }
                            let id = self.event_at(position, &mut None)?.metadata.event_id;
                            if let Some(entry) = state.memtable.streams.get_mut(stream) {
                                entry.last_event_id = Some(id);
                            }
                            Some(id)
                        }
                    };
                    if known == last_id {
                        maybe_retry = true;
                    }
                }
            }
            if conflict.is_some() || maybe_retry {
                drop(state);
                if let Some(results) = self.original_results(&batches, &heads)? {
                    tracing::debug!(
                        name: "event_store_append_retry_recognised",
                        batches = results.len(),
                        "append recognised as a retry; nothing written"
                    );
                    self.wait_durable(results.iter().map(|r| r.last_position).max().unwrap_or(0))?;
                    return Ok(results);
                }
                if let Some((batch, actual)) = conflict {
                    self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
                    let first = &batch.events[0];
                    return Err(AppendError::WrongExpectedVersion {
                        aggregate_type: first.aggregate_type.clone(),
                        aggregate_id: first.aggregate_id.clone(),
                        expected: batch.expected,
                        actual,
                    });
                }
                look_for_retry = false;
                continue;
            }
            // Positions must fit with the one after the last (records and readers step to it).
            // Only damaged data puts the log's end near `u64::MAX`; versions then fit too, since
            // `entry` checked that every head is below the next position.
            if state.next_position.checked_add(call_events).is_none() {
                return Err(AppendError::Read(ReadError::Corrupted {
                    detail: format!(
                        "the log ends at position {}: {call_events} more positions do not fit",
                        state.next_position.saturating_sub(1)
                    ),
                }));
            }
            // Phase 2: assign versions and positions, queue for the writer.
            let results = Self::assign(&mut state, batches, &streams, &heads, call_bytes);
            state.unwritten_bytes += call_bytes;
            // Durable mode, leader/follower: when no group is in flight, this thread writes and
            // syncs the next group itself (saving two thread hops on the way to the
            // acknowledgement); appends arriving meanwhile join the group after it.
            let led = if self.config.durability == Durability::Durable && !state.closing {
                self.take_group(&mut state)
            } else {
                None
            };
            if led.is_none() && state.writer_idle {
                self.writer_wake.notify_one();
            }
            drop(state);
            if let Some((group, chain_head)) = led {
                self.lead(group, chain_head);
            }
            let last = results.last().map_or(0, |r| r.last_position);
            let events: u64 = results
                .iter()
                .map(|r| r.last_version - r.first_version + 1)
                .sum();
            self.counters.appends.fetch_add(1, Ordering::Relaxed);
            self.counters
                .events_appended
                .fetch_add(events, Ordering::Relaxed);
            if self.config.durability == Durability::Durable {
                self.wait_durable(last)?;
            }
            for result in &results {
                tracing::debug!(
                    name: "event_store_event_stored",
                    aggregate_type = %result.aggregate_type,
                    aggregate_id = %result.aggregate_id,
                    first_version = result.first_version,
                    last_version = result.last_version,
                    first_position = result.first_position,
                    last_position = result.last_position,
                    "events stored"
                );
            }
            return Ok(results);
        }
    }

    fn assign(
        state: &mut State,
        batches: Vec<AppendBatch>,
        streams: &[StreamKey],
        heads: &[u64],
        call_bytes: usize,
    ) -> Vec<AppendResult> {
        let State {
            memtable,
            unwritten,
            next_position,
            ..
        } = state;
        let mut results = Vec::with_capacity(batches.len());
        for ((batch, stream), &head) in batches.into_iter().zip(streams).zip(heads) {
            let entry = memtable
                .streams
                .entry(stream.clone())
                .or_insert(StreamEntry {
                    head,
                    ..StreamEntry::default()
                });
            let first_position = *next_position;
            let mut result = AppendResult {
                aggregate_type: String::new(),
                aggregate_id: String::new(),
                first_version: head + 1,
                last_version: head,
                first_position,
                last_position: first_position,
            };
            for event in batch.events {
                let position = *next_position;
                *next_position += 1;
                let version = entry.head + 1;
                entry.push(position);
                entry.last_event_id = Some(event.event_id);
                let types = memtable
                    .types
                    .entry(event.aggregate_type.clone())
                    .or_default();
                push_position(types, position);
                if result.aggregate_type.is_empty() {
                    result.aggregate_type = event.aggregate_type.clone();
                    result.aggregate_id = event.aggregate_id.clone();
                }
                result.last_version = version;
                result.last_position = position;
                unwritten.push_back(Pending {
                    event: Arc::new(event.into_recorded(version, position)),
                    commit_end: false,
                    bytes: 0,
                });
            }
            results.push(result);
        }
        if let Some(last) = unwritten.back_mut() {
            last.commit_end = true;
            last.bytes = call_bytes;
        }
        results
    }

    /// Writes a group an appending thread took (see `take_group`); the writer thread hands it
    /// to the commit listener. A failure fails the store, as on the writer thread.
    fn lead(&self, group: Vec<Arc<RecordedEvent>>, chain_head: crate::record::Hash) {
        if let Err(e) = self.write_group(&group, chain_head, true) {
            self.fail(e.to_string());
        }
    }

    /// In durable mode, waits until `position` is flushed; otherwise returns at once.
    fn wait_durable(&self, position: u64) -> Result<(), AppendError> {
        if self.config.durability != Durability::Durable {
            return Ok(());
        }
        let mut state = lock(&self.state);
        while state.durable_upto < position {
            if let Some(reason) = &state.failed {
                return Err(AppendError::Failed {
                    reason: reason.clone(),
                });
            }
            if state.writer_done {
                return Err(AppendError::Closed);
            }
            // A follower whose group is still queued when the log falls free leads it.
            if !state.closing
                && let Some((group, chain_head)) = self.take_group(&mut state)
            {
                drop(state);
                self.lead(group, chain_head);
                state = lock(&self.state);
                continue;
            }
            state = self
                .progress
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        Ok(())
    }

    /// If every batch's events are already stored where this call would have put them (same ids,
    /// same order), the results of that earlier append.
    fn original_results(
        self: &Arc<Self>,
        batches: &[AppendBatch],
        heads: &[u64],
    ) -> Result<Option<Vec<AppendResult>>, ReadError> {
        let mut results = Vec::with_capacity(batches.len());
        for (batch, &head) in batches.iter().zip(heads) {
            let n = batch.events.len() as u64;
            // `Exact(v)` comes from the caller: no version follows `u64::MAX`, so such a call was
            // never stored and is not a retry (it is the conflict it looks like).
            let first_version = match batch.expected {
                ExpectedVersion::Exact(v) => match v.get().checked_add(1) {
                    Some(first) => first,
                    None => return Ok(None),
                },
                ExpectedVersion::NoStream => 1,
                ExpectedVersion::Any | ExpectedVersion::StreamExists => match head.checked_sub(n) {
                    Some(before) => before + 1,
                    None => return Ok(None),
                },
            };
            // `check_call` refused empty batches, so `n >= 1`.
            let last_version = match first_version.checked_add(n - 1) {
                Some(last) if last <= head => last,
                _ => return Ok(None),
            };
            let first = &batch.events[0];
            // Against every sequenced event, durable or not: a retry may arrive while its
            // original is still in flight.
            let stored: Vec<RecordedEvent> = self
                .read_stream(
                    &first.aggregate_type,
                    &first.aggregate_id,
                    StreamRead::forwards().from(first_version).limit(n as usize),
                    Scope::Sequenced,
                )?
                .collect::<Result<_, _>>()?;
            if stored.len() != batch.events.len()
                || stored
                    .iter()
                    .zip(&batch.events)
                    .any(|(s, e)| s.metadata.event_id != e.event_id)
            {
                return Ok(None);
            }
            let (Some(first_stored), Some(last_stored)) = (stored.first(), stored.last()) else {
                return Ok(None);
            };
            results.push(AppendResult {
                aggregate_type: first.aggregate_type.clone(),
                aggregate_id: first.aggregate_id.clone(),
                first_version,
                last_version,
                first_position: first_stored.position,
                last_position: last_stored.position,
            });
        }
        Ok(Some(results))
    }
}

/// The store's data directory inside `path` (for tools that inspect files).
pub fn data_dir(path: &Path) -> PathBuf {
    path.join(DATA_DIR)
}

#[cfg(test)]
mod tests {
    use events_core::{EventContext, NewEvent};
    use omni_domain::CacheMiss;

    use super::pending_bytes;

    fn event(payload_len: usize) -> NewEvent {
        let miss = CacheMiss {
            cache_key: "k".repeat(payload_len),
            cache_type: "disk".into(),
            reason: "not_found".into(),
        };
        NewEvent::from_event("agg-1", &miss, EventContext::new("test")).expect("a valid event")
    }

    #[test]
    fn a_queued_event_counts_at_least_the_memory_it_holds() {
        let small = event(10);
        let strings = small.event_type.len()
            + small.aggregate_type.len()
            + small.aggregate_id.len()
            + small.context.source.len();
        let held =
            std::mem::size_of::<events_core::RecordedEvent>() + small.payload.len() + strings;
        assert!(
            pending_bytes(&small) >= held,
            "{} < {held}",
            pending_bytes(&small)
        );
        // A queued small event is hundreds of bytes, whatever its payload.
        assert!(pending_bytes(&small) >= 300, "{}", pending_bytes(&small));
    }

    #[test]
    fn a_larger_payload_counts_the_buffer_it_holds() {
        let large = event(10_000);
        let grown = pending_bytes(&large) - pending_bytes(&event(10));
        assert!(grown >= large.payload.capacity() - 100, "{grown}");
        assert!(grown <= large.payload.capacity() + 100, "{grown}");
    }
}
