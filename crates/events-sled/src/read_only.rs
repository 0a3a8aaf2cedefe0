//! A read-only view of a store that another process (the daemon) may be writing: the global
//! log from the segment files, and stream and type reads from an index built in memory.

use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use events_core::RecordedEvent;

use crate::error::{OpenError, ReadError};
use crate::index::{StreamEntry, StreamRun, push_position};
use crate::keys::StreamKey;
use crate::read::{VersionWalk, check_stream_event, offset_of, parse_frame};
use crate::record::{EventRef, GENESIS, Hash, Record, Run, record_hash};
use crate::recovery::LOG_DIR;
use crate::segment::vfs::{Dir, FsDir};
use crate::segment::{ReadOnlySegmentLog, SegmentError, SegmentLog, SegmentReader};
use crate::state::corrupted;
use crate::store::{DATA_DIR, STORE_FORMAT};
use crate::types::{AggregateInfo, StreamRead};

/// Type-index runs a [`ReadOnlyTypeEvents`] copies out of the index at a time.
const TYPE_RUNS_PER_BATCH: usize = 1024;
/// Events a [`LogFollower`] reads per batch.
const FOLLOW_BATCH: usize = 1024;

/// A store opened **read-only**, beside the process that writes it.
///
/// sled, which holds a store's indexes, snapshots and consumer positions, locks its directory
/// while a process has the store open, and sled 0.34 has no read-only mode (nor is a copy of a
/// live sled directory a consistent image). So this handle never opens sled: it reads only the
/// log's segment files (`<store>/log/`, see docs/design.md, "Segment files"), and answers
/// stream and aggregate-type reads from an index it builds **in memory** by scanning the whole
/// log when it opens, and extends on every [`ReadOnlyStore::refresh`]. Open time and memory are
/// therefore proportional to the log. Measured on this machine (2 cores, release build, page
/// cache warm): 1 000 000 events of 200-byte payloads, 10 000 aggregates of 4 types appended
/// interleaved (the worst case for the index: one run per event), 229 MB of segments — the
/// open takes 0.73–0.84 s and the handle holds about 50 MB (RSS 2 → 52 MB, peak 66 MB).
/// Aggregates appended in runs of consecutive events cost much less memory. Reproduce with
/// `STORE=/tmp/ro-store cargo run --release -p events-sled --example read_only_open_cost`
/// (the first run builds the store; run it again for the figure of a fresh process).
///
/// Nothing is written: segment files are opened for reading only; a torn or half-written tail
/// is not cut (the writer may be writing it), reads simply stop before it. What reads see:
///
/// - every event whose group the writer has written to the segment files — in durable mode
///   possibly a moment before its `fdatasync` returned (so before the appender was
///   acknowledged): a process crash keeps such a group, a power loss may not;
/// - not the appends still queued in the writer (buffered mode acknowledges them before they
///   are written; the daemon writes them within its next group, usually within milliseconds);
/// - nothing appended after the last [`ReadOnlyStore::refresh`] (opening is the first one), or
///   follow the log with [`ReadOnlyStore::follow`].
///
/// Every record is checked as it is indexed: frame crc, record decoding, the hash chain, and
/// that each event continues its aggregate's versions; damage is [`ReadError::Corrupted`].
/// Snapshots, consumer positions and sled's indexes are not available read-only.
///
/// # Example
///
/// ```
/// use events_core::{EventContext, NewEvent};
/// use events_sled::{ExpectedVersion, ReadOnlyStore, Store, StoreConfig, StreamRead};
///
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(StoreConfig::new(dir.path()))?;
/// let event = |v| NewEvent::from_parts("noted", "note", "n-1", v, b"hi".to_vec(), EventContext::default());
/// store.append(ExpectedVersion::Any, vec![event(1)])?;
///
/// // Another process (here: the same one) reads while `store` holds sled's lock.
/// let reader = ReadOnlyStore::open(dir.path())?;
/// assert_eq!(reader.last_position(), 1);
/// store.append(ExpectedVersion::Any, vec![event(2)])?;
/// store.flush()?;
/// assert_eq!(reader.refresh()?, 2);
/// let versions: Vec<u64> = reader
///     .read_stream("note", "n-1", StreamRead::forwards())?
///     .map(|e| e.map(|e| e.metadata.version))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(versions, [1, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ReadOnlyStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    segments: ReadOnlySegmentLog,
    index: RwLock<Index>,
    /// The last position indexed: what reads cover.
    last_position: AtomicU64,
    /// Serializes refreshes (each extends the index from where the last stopped).
    refresh: Mutex<Refresh>,
}

/// Where indexing stopped.
#[derive(Debug, Default)]
struct Refresh {
    /// The frames after the last one indexed.
    reader: Option<SegmentReader>,
    /// The hash of the last record indexed (the chain head).
    head: Option<Hash>,
}

/// The in-memory stream and type indexes.
#[derive(Debug, Default)]
struct Index {
    streams: HashMap<StreamKey, StreamEntry>,
    types: HashMap<String, Vec<Run>>,
}

fn read_lock<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_lock<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn mutex<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn open_error(e: SegmentError) -> OpenError {
    match e {
        SegmentError::Io { path, source } => OpenError::Io { path, source },
        other => OpenError::Corrupted {
            detail: format!("the log's segment files: {other}"),
        },
    }
}

impl ReadOnlyStore {
    /// Opens the store at `path` read-only: lists and reads its segment files and indexes the
    /// whole log in memory (see the type's documentation for the cost). Works while another
    /// process holds the store. Writes nothing.
    ///
    /// # Errors
    ///
    /// - [`OpenError::NoStore`] when `path` holds no store (no `log/` and no `data/`);
    /// - [`OpenError::NeedsMigration`] for a format-1 store (a `data/` directory and no `log/`:
    ///   format 1 kept its log in sled);
    /// - [`OpenError::Io`] when a file cannot be read;
    /// - [`OpenError::Corrupted`] when the segment files are damaged (a sealed segment, a gap,
    ///   a record that does not decode, a broken hash chain, versions that do not follow).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        let path = path.as_ref();
        let log_dir = path.join(LOG_DIR);
        if !log_dir.is_dir() {
            if path.join(DATA_DIR).is_dir() {
                return Err(OpenError::NeedsMigration {
                    path: path.to_path_buf(),
                    found: 1,
                    supported: STORE_FORMAT,
                });
            }
            return Err(OpenError::NoStore {
                path: path.to_path_buf(),
            });
        }
        let dir = FsDir::existing(&log_dir).map_err(|source| OpenError::Io {
            path: log_dir.clone(),
            source,
        })?;
        let dir: Arc<dyn Dir> = Arc::new(dir);
        let segments = SegmentLog::open_read_only(dir).map_err(open_error)?;
        let store = Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                segments,
                index: RwLock::new(Index::default()),
                last_position: AtomicU64::new(0),
                refresh: Mutex::new(Refresh::default()),
            }),
        };
        store.index_new().map_err(|e| match e {
            ReadError::Io { path, source } => OpenError::Io { path, source },
            other => OpenError::Corrupted {
                detail: other.to_string(),
            },
        })?;
        tracing::debug!(
            path = %path.display(),
            last_position = store.last_position(),
            "store opened read-only"
        );
        Ok(store)
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The store's id, as written in its segment headers (`None` while it has no segment).
    pub fn store_id(&self) -> Option<String> {
        self.inner
            .segments
            .store_id()
            .map(|id| uuid::Uuid::from_bytes(id).hyphenated().to_string())
    }

    /// The last position the reads cover (as of the last refresh); 0 when the log is empty.
    pub fn last_position(&self) -> u64 {
        self.inner.last_position.load(Ordering::Acquire)
    }

    /// Reads what the writer appended since the last refresh (or the open) and indexes it;
    /// returns the new [`ReadOnlyStore::last_position`]. Cheap when nothing changed (a
    /// directory listing and a read of the active segment's end).
    ///
    /// # Errors
    ///
    /// [`ReadError::Io`] when a file cannot be read; [`ReadError::Corrupted`] when what was
    /// appended does not decode or does not continue the log.
    pub fn refresh(&self) -> Result<u64, ReadError> {
        self.inner.segments.refresh()?;
        self.index_new()
    }

    /// Indexes the frames the segment log holds after the last one indexed.
    fn index_new(&self) -> Result<u64, ReadError> {
        let inner = &*self.inner;
        let mut refresh = mutex(&inner.refresh);
        let from = inner.last_position.load(Ordering::Acquire) + 1;
        if inner.segments.last_position() < from {
            return Ok(from - 1);
        }
        if refresh.reader.is_none() {
            refresh.reader = Some(inner.segments.reader(from)?);
        }
        let Refresh { reader, head } = &mut *refresh;
        let Some(reader) = reader.as_mut() else {
            return Ok(from - 1);
        };
        let mut index = write_lock(&inner.index);
        let mut next = from;
        for frame in reader {
            let frame = frame?;
            let record = parse_frame(frame)?;
            if record.first_position() != next {
                return Err(corrupted(format!(
                    "the log has a gap: position {next} expected, a record at {} found",
                    record.first_position()
                )));
            }
            let expected_prev = match head {
                Some(hash) => Some(*hash),
                None if next == 1 => Some(GENESIS),
                None => None,
            };
            if let Some(prev) = expected_prev
                && *record.prev_hash() != prev
            {
                return Err(corrupted(format!(
                    "the hash chain is broken at the record at position {next}"
                )));
            }
            let mut problem = None;
            let mut position = next;
            record
                .check_all_visiting(|event| {
                    if problem.is_some() {
                        return;
                    }
                    let key = StreamKey::new(event.aggregate_type, event.aggregate_id);
                    let entry = index.streams.entry(key).or_default();
                    if event.version != entry.head.saturating_add(1) {
                        problem = Some(format!(
                            "position {position} holds version {} of `{}/{}`, whose version was {}",
                            event.version, event.aggregate_type, event.aggregate_id, entry.head
                        ));
                        return;
                    }
                    entry.push(position);
                    match index.types.get_mut(event.aggregate_type) {
                        Some(runs) => push_position(runs, position),
                        None => {
                            index.types.insert(
                                event.aggregate_type.to_owned(),
                                vec![Run { position, count: 1 }],
                            );
                        }
                    }
                    position += 1;
                })
                .map_err(|e| corrupted(format!("log record at position {next}: {e}")))?;
            if let Some(problem) = problem {
                return Err(corrupted(problem));
            }
            *head = Some(record_hash(record.bytes()));
            next = record.last_position() + 1;
            inner
                .last_position
                .store(record.last_position(), Ordering::Release);
        }
        Ok(next - 1)
    }

    /// An aggregate's current version (0: no events), as of the last refresh.
    pub fn stream_version(&self, aggregate_type: &str, aggregate_id: &str) -> u64 {
        read_lock(&self.inner.index)
            .streams
            .get(&StreamKey::new(aggregate_type, aggregate_id))
            .map_or(0, |e| e.head)
    }

    /// An aggregate's events, lazily, as [`crate::Store::read_stream`] reads them, up to the
    /// last refresh.
    ///
    /// # Errors
    ///
    /// None at creation (the index is in memory); each item is a `Result`, an error ending the
    /// iteration.
    pub fn read_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        read: StreamRead,
    ) -> Result<ReadOnlyStreamEvents, ReadError> {
        let (head, runs) = read_lock(&self.inner.index)
            .streams
            .get(&StreamKey::new(aggregate_type, aggregate_id))
            .map_or((0, Vec::new()), |e| (e.head, e.runs.clone()));
        Ok(ReadOnlyStreamEvents {
            store: self.clone(),
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            runs,
            walk: VersionWalk::new(&read, head),
            cache: None,
            failed: false,
        })
    }

    /// The global log from `from_position`, lazily, at most `limit` events, up to
    /// [`ReadOnlyStore::last_position`] when the read began.
    pub fn read_log(&self, from_position: u64, limit: Option<usize>) -> ReadOnlyLogEvents {
        ReadOnlyLogEvents {
            store: self.clone(),
            reader: None,
            record: None,
            next: from_position.max(1),
            end: self.last_position(),
            remaining: limit.unwrap_or(usize::MAX),
            failed: false,
        }
    }

    /// Visits the global log from `from_position`, at most `limit` events, each borrowed where
    /// it lies, until `visit` returns [`ControlFlow::Break`]; as [`crate::Store::scan_log`].
    /// Returns how many events were visited.
    ///
    /// # Errors
    ///
    /// [`ReadError`] when the log cannot be read or does not decode.
    pub fn scan_log(
        &self,
        from_position: u64,
        limit: Option<usize>,
        mut visit: impl FnMut(EventRef<'_>) -> ControlFlow<()>,
    ) -> Result<u64, ReadError> {
        let mut events = self.read_log(from_position, limit);
        let mut visited = 0u64;
        while let Some((record, mut offset)) = events.next_record()? {
            while events.next <= record.last_position()
                && events.next <= events.end
                && events.remaining > 0
            {
                let position = events.next;
                let (event, after) = record
                    .view(position, offset)
                    .map_err(|e| corrupted(format!("log record at position {position}: {e}")))?;
                offset = after;
                events.next += 1;
                events.remaining -= 1;
                visited += 1;
                if visit(event).is_break() {
                    return Ok(visited);
                }
            }
        }
        Ok(visited)
    }

    /// Every event of one aggregate type, in log order, from `from_position`, lazily, up to
    /// [`ReadOnlyStore::last_position`] when the read began.
    ///
    /// # Errors
    ///
    /// None at creation; each item is a `Result`, an error ending the iteration.
    pub fn read_aggregate_type(
        &self,
        aggregate_type: &str,
        from_position: u64,
        limit: Option<usize>,
    ) -> Result<ReadOnlyTypeEvents, ReadError> {
        Ok(ReadOnlyTypeEvents {
            store: self.clone(),
            aggregate_type: aggregate_type.to_owned(),
            queue: VecDeque::new(),
            next: from_position.max(1),
            end: self.last_position(),
            remaining: limit.unwrap_or(usize::MAX),
            cache: None,
            failed: false,
        })
    }

    /// The aggregates (all, or those of one type) with their versions, sorted as
    /// [`crate::Store::aggregates`] sorts them.
    ///
    /// # Errors
    ///
    /// [`ReadError::Corrupted`] when an aggregate's key does not decode (never for keys this
    /// handle built).
    pub fn aggregates(
        &self,
        aggregate_type: Option<&str>,
    ) -> Result<Vec<AggregateInfo>, ReadError> {
        let mut heads: Vec<(StreamKey, u64)> = read_lock(&self.inner.index)
            .streams
            .iter()
            .map(|(key, entry)| (key.clone(), entry.head))
            .collect();
        heads.sort_unstable();
        let mut out = Vec::with_capacity(heads.len());
        for (key, version) in heads {
            let (t, id, _) = StreamKey::parse(key.as_bytes())
                .map_err(|e| corrupted(format!("stream key: {e}")))?;
            if aggregate_type.is_none_or(|wanted| wanted == t) {
                out.push(AggregateInfo {
                    aggregate_type: t,
                    aggregate_id: id,
                    version,
                });
            }
        }
        Ok(out)
    }

    /// Follows the log from `from_position`: yields every event there and after, as the writer
    /// appends them, refreshing every [`LogFollower::poll_interval`] (default 100 ms) when it
    /// reached the end. It ends when its [`LogFollower::stop_flag`] is set, or after
    /// [`LogFollower::idle_timeout`] without a new event (default: never).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use events_core::{EventContext, NewEvent};
    /// use events_sled::{ExpectedVersion, ReadOnlyStore, Store, StoreConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(StoreConfig::new(dir.path()))?;
    /// let reader = ReadOnlyStore::open(dir.path())?;
    /// let event = NewEvent::from_parts("noted", "note", "n-1", 1, b"hi".to_vec(), EventContext::default());
    /// store.append(ExpectedVersion::Any, vec![event])?;
    /// store.flush()?;
    /// let followed: Vec<u64> = reader
    ///     .follow(1)
    ///     .poll_interval(Duration::from_millis(10))
    ///     .idle_timeout(Some(Duration::from_millis(200)))
    ///     .map(|e| e.map(|e| e.position))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(followed, [1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn follow(&self, from_position: u64) -> LogFollower {
        LogFollower {
            store: self.clone(),
            next: from_position.max(1),
            batch: VecDeque::new(),
            poll: Duration::from_millis(100),
            idle_timeout: None,
            stop: Arc::new(AtomicBool::new(false)),
            idle_since: None,
            failed: false,
        }
    }

    /// The event at `position`, through a one-record cache.
    fn event_at(
        &self,
        position: u64,
        cache: &mut Option<Record>,
    ) -> Result<RecordedEvent, ReadError> {
        crate::state::stored_event(&self.inner.segments, position, cache)
    }
}

/// An aggregate's events, read-only. Created by [`ReadOnlyStore::read_stream`].
#[derive(Debug)]
pub struct ReadOnlyStreamEvents {
    store: ReadOnlyStore,
    aggregate_type: String,
    aggregate_id: String,
    runs: Vec<StreamRun>,
    walk: VersionWalk,
    cache: Option<Record>,
    failed: bool,
}

impl ReadOnlyStreamEvents {
    fn read(&mut self, version: u64) -> Result<RecordedEvent, ReadError> {
        let at = self.runs.partition_point(|r| r.last_version() < version);
        let position = self
            .runs
            .get(at)
            .and_then(|r| r.position_of(version))
            .ok_or_else(|| {
                corrupted(format!(
                    "the index of `{}/{}` lacks version {version}",
                    self.aggregate_type, self.aggregate_id
                ))
            })?;
        let event = self.store.event_at(position, &mut self.cache)?;
        check_stream_event(
            event,
            &self.aggregate_type,
            &self.aggregate_id,
            version,
            position,
        )
    }
}

impl Iterator for ReadOnlyStreamEvents {
    type Item = Result<RecordedEvent, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let version = self.walk.step()?;
        let result = self.read(version);
        self.failed = result.is_err();
        Some(result)
    }
}

/// The global log, read-only, in position order. Created by [`ReadOnlyStore::read_log`].
#[derive(Debug)]
pub struct ReadOnlyLogEvents {
    store: ReadOnlyStore,
    reader: Option<SegmentReader>,
    /// The record holding `next`, and the offset of `next`'s event in it.
    record: Option<(Record, usize)>,
    next: u64,
    end: u64,
    remaining: usize,
    failed: bool,
}

impl ReadOnlyLogEvents {
    /// The record holding `next` and `next`'s offset in it; `None` past the end.
    fn next_record(&mut self) -> Result<Option<(Record, usize)>, ReadError> {
        if self.next > self.end || self.remaining == 0 {
            return Ok(None);
        }
        if self.reader.is_none() {
            self.reader = Some(self.store.inner.segments.reader(self.next)?);
        }
        let next = self.next;
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        let frame = reader
            .next()
            .ok_or_else(|| corrupted(format!("no log record holds position {next}")))??;
        let record = parse_frame(frame)?;
        if !record.contains(next) {
            return Err(corrupted(format!(
                "expected position {next} in the log, found a record of {}..={}",
                record.first_position(),
                record.last_position()
            )));
        }
        let offset = offset_of(&record, next)?;
        Ok(Some((record, offset)))
    }

    fn read_next(&mut self) -> Result<Option<RecordedEvent>, ReadError> {
        let next = self.next;
        if !self.record.as_ref().is_some_and(|(r, _)| r.contains(next)) {
            self.record = self.next_record()?;
        }
        let Some((record, offset)) = self.record.as_mut() else {
            return Ok(None);
        };
        let (event, after) = record
            .view(next, *offset)
            .map_err(|e| corrupted(format!("log record at position {next}: {e}")))?;
        *offset = after;
        Ok(Some(event.to_owned()))
    }
}

impl Iterator for ReadOnlyLogEvents {
    type Item = Result<RecordedEvent, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.remaining == 0 || self.next > self.end {
            return None;
        }
        match self.read_next() {
            Ok(Some(event)) => {
                self.next += 1;
                self.remaining -= 1;
                Some(Ok(event))
            }
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// One aggregate type's events, read-only, in log order. Created by
/// [`ReadOnlyStore::read_aggregate_type`].
#[derive(Debug)]
pub struct ReadOnlyTypeEvents {
    store: ReadOnlyStore,
    aggregate_type: String,
    /// Runs copied from the index, still to read.
    queue: VecDeque<Run>,
    next: u64,
    end: u64,
    remaining: usize,
    cache: Option<Record>,
    failed: bool,
}

impl ReadOnlyTypeEvents {
    fn next_position(&mut self) -> Option<u64> {
        loop {
            while let Some(run) = self.queue.front() {
                if run.end() <= self.next {
                    self.queue.pop_front();
                    continue;
                }
                let position = run.position.max(self.next);
                return (position <= self.end).then_some(position);
            }
            // The index only grows: the runs at and after `next` are where they were.
            let index = read_lock(&self.store.inner.index);
            let runs = index.types.get(&self.aggregate_type)?;
            let at = runs.partition_point(|r| r.end() <= self.next);
            let batch = runs.get(at..)?.iter().take(TYPE_RUNS_PER_BATCH);
            self.queue.extend(batch.copied());
            if self.queue.is_empty() {
                return None;
            }
        }
    }
}

impl Iterator for ReadOnlyTypeEvents {
    type Item = Result<RecordedEvent, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.remaining == 0 {
            return None;
        }
        let position = self.next_position()?;
        let result = self
            .store
            .event_at(position, &mut self.cache)
            .and_then(|event| {
                if event.metadata.aggregate_type == self.aggregate_type {
                    Ok(event)
                } else {
                    Err(corrupted(format!(
                        "position {position} was indexed as `{}`, it holds a `{}` event",
                        self.aggregate_type, event.metadata.aggregate_type
                    )))
                }
            });
        match &result {
            Ok(_) => {
                self.next = position + 1;
                self.remaining -= 1;
            }
            Err(_) => self.failed = true,
        }
        Some(result)
    }
}

/// Follows the log as the writer appends: an endless iterator (until stopped). Created by
/// [`ReadOnlyStore::follow`]. Each `next` blocks until an event is there, the stop flag is set
/// or the idle timeout passed (then it returns `None`).
#[derive(Debug)]
pub struct LogFollower {
    store: ReadOnlyStore,
    next: u64,
    batch: VecDeque<RecordedEvent>,
    poll: Duration,
    idle_timeout: Option<Duration>,
    stop: Arc<AtomicBool>,
    idle_since: Option<Instant>,
    failed: bool,
}

impl LogFollower {
    /// How long to wait between refreshes once the end of the log is reached (default 100 ms).
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll = interval;
        self
    }

    /// End after this long without a new event (`None`, the default: never).
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The flag that ends the follower: set it (from any thread) and the next `next` returns
    /// `None` within a poll interval.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// The position of the next event it yields.
    pub fn next_position(&self) -> u64 {
        self.next
    }

    fn step(&mut self) -> Result<Option<RecordedEvent>, ReadError> {
        loop {
            if let Some(event) = self.batch.pop_front() {
                self.next = event.position + 1;
                self.idle_since = None;
                return Ok(Some(event));
            }
            if self.stop.load(Ordering::Acquire) {
                return Ok(None);
            }
            if self.store.last_position() < self.next {
                self.store.refresh()?;
            }
            if self.store.last_position() >= self.next {
                for event in self.store.read_log(self.next, Some(FOLLOW_BATCH)) {
                    self.batch.push_back(event?);
                }
                continue;
            }
            let idle_since = *self.idle_since.get_or_insert_with(Instant::now);
            let mut wait = self.poll;
            if let Some(timeout) = self.idle_timeout {
                let left = timeout.saturating_sub(idle_since.elapsed());
                if left.is_zero() {
                    return Ok(None);
                }
                wait = wait.min(left);
            }
            // Sleep in slices, so a stop is seen quickly even with a long interval.
            let until = Instant::now() + wait;
            while !self.stop.load(Ordering::Acquire) {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(Duration::from_millis(20)));
            }
        }
    }
}

impl Iterator for LogFollower {
    type Item = Result<RecordedEvent, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.step() {
            Ok(event) => event.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
