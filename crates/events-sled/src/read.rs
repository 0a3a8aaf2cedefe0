//! Reads: an aggregate's events by version (forwards or backwards), the global log by position,
//! one aggregate type's events in log order, and the list of aggregates. Every reader is a lazy
//! iterator that sees the events visible when it was created: in durable mode every durable
//! event (an append still waiting for its sync is not read: a crash could discard it and give its
//! position to another event), in buffered mode every acknowledged one (read-your-writes, even of
//! events a crash may still lose).

use std::collections::{BTreeMap, VecDeque};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use events_core::RecordedEvent;

use crate::error::ReadError;
use crate::index::{StreamRun, page_position, persisted_head, show_key, stream_page_at};
use crate::keys::{
    StreamKey, TAG_STREAM, parse_stream_page_key, prefix_end, stream_prefix, stream_type_prefix,
    type_page_key, type_prefix,
};
use crate::record::{EventRef, Record, Run, decode_page};
use crate::segment::{Frame, SegmentReader};
use crate::state::{Scope, Shared, corrupted, lock};
use crate::store::Store;
use crate::types::{AggregateInfo, Direction, StreamRead};

/// Counts the events an iterator returned and reports them when it is dropped.
#[derive(Debug)]
struct Retrieved {
    shared: Arc<Shared>,
    count: u64,
    what: &'static str,
}

impl Drop for Retrieved {
    fn drop(&mut self) {
        if self.count > 0 {
            self.shared
                .counters
                .events_retrieved
                .fetch_add(self.count, Ordering::Relaxed);
            tracing::debug!(
                name: "event_store_events_retrieved",
                read = self.what,
                count = self.count,
                "events retrieved"
            );
        }
    }
}

/// A sled range iterator (which has no `Debug` of its own).
struct Cursor(sled::Iter);

impl std::fmt::Debug for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cursor")
    }
}

/// An aggregate's events, lazily, in version order. Created by [`Store::read_stream`].
#[derive(Debug)]
pub struct StreamEvents {
    shared: Arc<Shared>,
    stream: StreamKey,
    aggregate_type: String,
    aggregate_id: String,
    /// Runs that were in memory when the read began (the newest versions).
    memory_runs: Vec<StreamRun>,
    page: Option<(u64, Vec<Run>)>,
    walk: VersionWalk,
    cache: Option<Record>,
    failed: bool,
    retrieved: Retrieved,
}

impl StreamEvents {
    fn position_of(&mut self, version: u64) -> Result<u64, ReadError> {
        let in_memory = self
            .memory_runs
            .partition_point(|r| r.last_version() < version);
        if let Some(position) = self
            .memory_runs
            .get(in_memory)
            .and_then(|r| r.position_of(version))
        {
            return Ok(position);
        }
        if let Some((first, runs)) = &self.page
            && let Some(position) = page_position(*first, runs, version)
        {
            return Ok(position);
        }
        let page = stream_page_at(&self.shared.log, &self.stream, version)?.ok_or_else(|| {
            corrupted(format!(
                "no index page of `{}/{}` holds version {version}",
                self.aggregate_type, self.aggregate_id
            ))
        })?;
        let position = page_position(page.0, &page.1, version).ok_or_else(|| {
            corrupted(format!(
                "index page of `{}/{}` from version {} lacks version {version}",
                self.aggregate_type, self.aggregate_id, page.0
            ))
        })?;
        self.page = Some(page);
        Ok(position)
    }

    fn read(&mut self, version: u64) -> Result<RecordedEvent, ReadError> {
        let position = self.position_of(version)?;
        let event = self.shared.event_at(position, &mut self.cache)?;
        check_stream_event(
            event,
            &self.aggregate_type,
            &self.aggregate_id,
            version,
            position,
        )
    }
}

/// The versions a stream read still has to visit: forwards from `next` up to `last`, or
/// backwards from `next` down to `last` (at least 1), at most `remaining` of them. Shared by
/// [`StreamEvents`] and [`crate::ReadOnlyStreamEvents`].
#[derive(Debug)]
pub(crate) struct VersionWalk {
    next: u64,
    last: u64,
    direction: Direction,
    remaining: usize,
}

impl VersionWalk {
    /// The walk `read` asks for over a stream whose newest version is `head`.
    pub(crate) fn new(read: &StreamRead, head: u64) -> Self {
        let (next, last) = match read.direction {
            Direction::Forwards => (read.from.unwrap_or(1).max(1), head),
            Direction::Backwards => (read.from.unwrap_or(head).min(head), 1),
        };
        Self {
            next,
            last,
            direction: read.direction,
            remaining: read.limit.unwrap_or(usize::MAX),
        }
    }

    /// The next version to read, or `None` when the walk is over.
    pub(crate) fn step(&mut self) -> Option<u64> {
        if self.remaining == 0 {
            return None;
        }
        let version = self.next;
        let in_range = match self.direction {
            Direction::Forwards => version <= self.last,
            Direction::Backwards => version >= 1 && version >= self.last,
        };
        if !in_range {
            return None;
        }
        match self.direction {
            Direction::Forwards => self.next += 1,
            Direction::Backwards => self.next -= 1,
        }
        self.remaining -= 1;
        Some(version)
    }
}

/// `event`, read at the `position` the index gives for `version` of `aggregate_type/aggregate_id`,
/// when it is that event; [`ReadError::Corrupted`] when it is another.
pub(crate) fn check_stream_event(
    event: RecordedEvent,
    aggregate_type: &str,
    aggregate_id: &str,
    version: u64,
    position: u64,
) -> Result<RecordedEvent, ReadError> {
    let m = &event.metadata;
    if m.version != version || m.aggregate_type != aggregate_type || m.aggregate_id != aggregate_id
    {
        return Err(corrupted(format!(
            "the index puts version {version} of `{aggregate_type}/{aggregate_id}` at position \
             {position}, which holds version {} of `{}/{}`",
            m.version, m.aggregate_type, m.aggregate_id
        )));
    }
    Ok(event)
}

impl Iterator for StreamEvents {
    type Item = Result<RecordedEvent, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let version = self.walk.step()?;
        let result = self.read(version);
        match &result {
            Ok(_) => self.retrieved.count += 1,
            Err(_) => self.failed = true,
        }
        Some(result)
    }
}

/// Where the next events of a log read come from: a record from the segment files, or events still in the
/// writer's queue.
#[derive(Debug)]
enum Chunk {
    /// A record, and the byte offset of the event at the reader's next position.
    Stored(Record, usize),
    /// Queued events, from the reader's next position on.
    Queued(VecDeque<Arc<RecordedEvent>>),
}

/// Walks the log's records in order from a position, falling back to the writer's queue for
/// positions the segment files do not hold yet. Shared by [`LogEvents`] and [`Store::scan_log`].
#[derive(Debug)]
struct LogCursor {
    shared: Arc<Shared>,
    records: Option<SegmentReader>,
}

impl LogCursor {
    /// The chunk that holds `next` (positioned at it), up to `end`.
    fn chunk(&mut self, next: u64, end: u64) -> Result<Chunk, ReadError> {
        if next > self.shared.written_upto.load(Ordering::Acquire) {
            let state = lock(&self.shared.state);
            if next > state.written_upto {
                let skip = usize::try_from(next - state.written_upto - 1).unwrap_or(usize::MAX);
                let take = usize::try_from(end - next + 1)
                    .unwrap_or(usize::MAX)
                    .min(4096);
                let queued: VecDeque<_> = state
                    .unwritten
                    .iter()
                    .skip(skip)
                    .take(take)
                    .map(|p| Arc::clone(&p.event))
                    .collect();
                if queued.is_empty() {
                    return Err(corrupted(format!("position {next} is beyond the log")));
                }
                return Ok(Chunk::Queued(queued));
            }
        }
        loop {
            let frame = match self.records.as_mut().and_then(Iterator::next) {
                Some(frame) => frame?,
                None => {
                    // No reader yet, or it reached the end it saw: start one at `next`.
                    let mut reader = self.shared.segments.reader(next)?;
                    let frame = reader.next().ok_or_else(|| {
                        corrupted(format!("no log record holds position {next}"))
                    })??;
                    self.records = Some(reader);
                    frame
                }
            };
            let record = parse_frame(frame)?;
            if !record.contains(next) {
                // The reader is not where this read is: seek again.
                self.records = None;
                if record.first_position() > next {
                    return Err(corrupted(format!(
                        "the log has a gap: position {next} is missing before {}",
                        record.first_position()
                    )));
                }
                continue;
            }
            let offset = offset_of(&record, next)?;
            return Ok(Chunk::Stored(record, offset));
        }
    }
}

/// The record a segment frame holds.
pub(crate) fn parse_frame(frame: Frame) -> Result<Record, ReadError> {
    let first = frame.first_position;
    let record = Record::parse(frame.record)
        .map_err(|e| corrupted(format!("log record at position {first}: {e}")))?;
    // The segment layer places records by their frames' headers: a record must hold what its
    // frame says, or a read by position would return another position's events.
    if record.first_position() != first
        || record.last_position() - first + 1 != u64::from(frame.event_count)
    {
        return Err(corrupted(format!(
            "the record framed at position {first} does not hold what its frame says"
        )));
    }
    Ok(record)
}

/// The byte offset of `position`'s event in `record` (which holds it), for a read starting
/// mid-record: steps over the events before it.
pub(crate) fn offset_of(record: &Record, position: u64) -> Result<usize, ReadError> {
    let mut offset = record.start();
    for before in record.first_position()..position {
        offset = record
            .view(before, offset)
            .map_err(|e| corrupted(format!("log record at position {before}: {e}")))?
            .1;
    }
    Ok(offset)
}

/// The global log, lazily, in position order. Created by [`Store::read_log`].
#[derive(Debug)]
pub struct LogEvents {
    cursor: LogCursor,
    chunk: Option<Chunk>,
    next: u64,
    end: u64,
    remaining: usize,
    failed: bool,
    retrieved: Retrieved,
}

impl LogEvents {
    fn read_next(&mut self) -> Result<RecordedEvent, ReadError> {
        let next = self.next;
        loop {
            match &mut self.chunk {
                Some(Chunk::Stored(record, offset)) if record.contains(next) => {
                    let (event, after) = record
                        .view(next, *offset)
                        .map_err(|e| corrupted(format!("log record at position {next}: {e}")))?;
                    *offset = after;
                    return Ok(event.to_owned());
                }
                Some(Chunk::Queued(queue)) if !queue.is_empty() => {
                    let event = queue
                        .pop_front()
                        .ok_or_else(|| corrupted("the queue emptied"))?;
                    if event.position != next {
                        return Err(corrupted(format!(
                            "expected position {next} in the log, found {}",
                            event.position
                        )));
                    }
                    return Ok(RecordedEvent::clone(&event));
                }
                _ => self.chunk = Some(self.cursor.chunk(next, self.end)?),
            }
        }
    }
}

impl Iterator for LogEvents {
    type Item = Result<RecordedEvent, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.remaining == 0 || self.next > self.end {
            return None;
        }
        match self.read_next() {
            Ok(event) => {
                self.next += 1;
                self.remaining -= 1;
                self.retrieved.count += 1;
                Some(Ok(event))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// One aggregate type's events, lazily, in log order. Created by [`Store::read_aggregate_type`].
#[derive(Debug)]
pub struct TypeEvents {
    shared: Arc<Shared>,
    aggregate_type: String,
    /// Positions still to read from the current page.
    queue: VecDeque<Run>,
    pages: Option<Cursor>,
    /// Runs that were in memory when the read began.
    memory_runs: Option<Vec<Run>>,
    next: u64,
    end: u64,
    remaining: usize,
    cache: Option<Record>,
    failed: bool,
    retrieved: Retrieved,
}

impl TypeEvents {
    fn next_position(&mut self) -> Result<Option<u64>, ReadError> {
        loop {
            while let Some(run) = self.queue.front_mut() {
                if run.count == 0 || run.end() <= self.next {
                    self.queue.pop_front();
                    continue;
                }
                let position = run.position.max(self.next);
                if position > self.end {
                    return Ok(None);
                }
                return Ok(Some(position));
            }
            if let Some(pages) = self.pages.as_mut() {
                match pages.0.next() {
                    Some(entry) => {
                        let (key, value) = entry?;
                        decode_page(&value)
                            .map(|runs| self.queue.extend(runs))
                            .map_err(|e| corrupted(format!("type page {}: {e}", show_key(&key))))?;
                        continue;
                    }
                    None => self.pages = None,
                }
            }
            match self.memory_runs.take() {
                Some(runs) => self.queue.extend(runs),
                None => return Ok(None),
            }
        }
    }
}

impl Iterator for TypeEvents {
    type Item = Result<RecordedEvent, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.remaining == 0 {
            return None;
        }
        let result = self.next_position().and_then(|position| match position {
            None => Ok(None),
            Some(position) => {
                let event = self.shared.event_at(position, &mut self.cache)?;
                if event.metadata.aggregate_type != self.aggregate_type {
                    return Err(corrupted(format!(
                        "the `{}` index lists position {position}, which holds a `{}` event",
                        self.aggregate_type, event.metadata.aggregate_type
                    )));
                }
                self.next = position + 1;
                Ok(Some(event))
            }
        });
        match result {
            Ok(Some(event)) => {
                self.remaining -= 1;
                self.retrieved.count += 1;
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

impl Shared {
    /// A stream's version in its persisted index pages (0: none), checked against the log's
    /// written end.
    fn persisted_head(&self, stream: &StreamKey) -> Result<u64, ReadError> {
        let written = || self.written_upto.load(Ordering::Acquire);
        Ok(persisted_head(&self.log, stream, written)?)
    }

    /// An aggregate's events in `scope`.
    pub(crate) fn read_stream(
        self: &Arc<Self>,
        aggregate_type: &str,
        aggregate_id: &str,
        read: StreamRead,
        scope: Scope,
    ) -> Result<StreamEvents, ReadError> {
        let stream = StreamKey::new(aggregate_type, aggregate_id);
        // Memory first, pages second: runs leave memory only once their pages are written.
        let in_memory = {
            let state = lock(&self.state);
            let end = self.scope_end(&state, scope);
            state
                .memtable
                .streams
                .get(&stream)
                .map(|entry| (entry.head_upto(end), entry.runs.clone()))
        };
        let (head, memory_runs) = match in_memory {
            Some(found) => found,
            None => (self.persisted_head(&stream)?, Vec::new()),
        };
        Ok(StreamEvents {
            shared: Arc::clone(self),
            stream,
            aggregate_type: aggregate_type.to_string(),
            aggregate_id: aggregate_id.to_string(),
            memory_runs,
            page: None,
            walk: VersionWalk::new(&read, head),
            cache: None,
            failed: false,
            retrieved: Retrieved {
                shared: Arc::clone(self),
                count: 0,
                what: "stream",
            },
        })
    }

    /// An aggregate's version as of the events in `scope`.
    pub(crate) fn stream_version(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        scope: Scope,
    ) -> Result<u64, ReadError> {
        let stream = StreamKey::new(aggregate_type, aggregate_id);
        let in_memory = {
            let state = lock(&self.state);
            let end = self.scope_end(&state, scope);
            state
                .memtable
                .streams
                .get(&stream)
                .map(|e| e.head_upto(end))
        };
        match in_memory {
            Some(head) => Ok(head),
            None => self.persisted_head(&stream),
        }
    }
}

impl Store {
    /// An aggregate's events, lazily: from a version, forwards or backwards, with a limit. In
    /// durable mode only durable events are read; in buffered mode every acknowledged one.
    ///
    /// # Errors
    ///
    /// [`ReadError`] when the index cannot be read; each item is a `Result` too, an error ending
    /// the iteration (damaged bytes are [`ReadError::Corrupted`], never a panic).
    pub fn read_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        read: StreamRead,
    ) -> Result<StreamEvents, ReadError> {
        self.shared
            .read_stream(aggregate_type, aggregate_id, read, Scope::Visible)
    }

    /// An aggregate's current version (0: it has no events): in durable mode its last durable
    /// version, in buffered mode its last acknowledged one. (An append's expected-version check
    /// is against every event already sequenced, durable or not.)
    ///
    /// # Errors
    ///
    /// [`ReadError`] when the index cannot be read.
    pub fn stream_version(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<u64, ReadError> {
        self.shared
            .stream_version(aggregate_type, aggregate_id, Scope::Visible)
    }

    /// The global log from `from_position` (positions start at 1), lazily, at most `limit`
    /// events, up to [`Store::last_position`] when the read began (in durable mode, the last
    /// durable event).
    ///
    /// # Errors
    ///
    /// None at creation; each item is a `Result`, an error ending the iteration.
    pub fn read_log(&self, from_position: u64, limit: Option<usize>) -> LogEvents {
        let end = self.shared.last_visible();
        LogEvents {
            cursor: LogCursor {
                shared: Arc::clone(&self.shared),
                records: None,
            },
            chunk: None,
            next: from_position.max(1),
            end,
            remaining: limit.unwrap_or(usize::MAX),
            failed: false,
            retrieved: Retrieved {
                shared: Arc::clone(&self.shared),
                count: 0,
                what: "log",
            },
        }
    }

    /// Visits the global log from `from_position`, at most `limit` events, each borrowed where it
    /// lies ([`EventRef`]: no allocation per event), until `visit` returns
    /// [`ControlFlow::Break`]. The fastest way to scan the log; covers the events up to
    /// [`Store::last_position`] when the scan began. Returns how many events were visited.
    ///
    /// # Errors
    ///
    /// [`ReadError`] when the log cannot be read or does not decode (the scan stops there).
    ///
    /// # Example
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use events_core::{EventContext, NewEvent};
    /// use events_sled::{ExpectedVersion, Store, StoreConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(StoreConfig::new(dir.path()))?;
    /// let event = NewEvent::from_parts("noted", "note", "n-1", 1, b"hi".to_vec(), EventContext::default());
    /// store.append(ExpectedVersion::Any, vec![event])?;
    /// let mut bytes = 0;
    /// let visited = store.scan_log(1, None, |event| {
    ///     bytes += event.payload.len();
    ///     ControlFlow::Continue(())
    /// })?;
    /// assert_eq!((visited, bytes), (1, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scan_log(
        &self,
        from_position: u64,
        limit: Option<usize>,
        mut visit: impl FnMut(EventRef<'_>) -> ControlFlow<()>,
    ) -> Result<u64, ReadError> {
        let end = self.shared.last_visible();
        let mut cursor = LogCursor {
            shared: Arc::clone(&self.shared),
            records: None,
        };
        let mut retrieved = Retrieved {
            shared: Arc::clone(&self.shared),
            count: 0,
            what: "scan",
        };
        let limit = limit.map_or(u64::MAX, |l| l as u64);
        let mut next = from_position.max(1);
        while next <= end && retrieved.count < limit {
            match cursor.chunk(next, end)? {
                Chunk::Stored(record, mut offset) => {
                    while next <= record.last_position() && next <= end && retrieved.count < limit {
                        let (event, after) = record.view(next, offset).map_err(|e| {
                            corrupted(format!("log record at position {next}: {e}"))
                        })?;
                        offset = after;
                        next += 1;
                        retrieved.count += 1;
                        if visit(event).is_break() {
                            return Ok(retrieved.count);
                        }
                    }
                }
                Chunk::Queued(queue) => {
                    for event in queue {
                        if retrieved.count >= limit {
                            break;
                        }
                        next += 1;
                        retrieved.count += 1;
                        if visit(EventRef::from(event.as_ref())).is_break() {
                            return Ok(retrieved.count);
                        }
                    }
                }
            }
        }
        Ok(retrieved.count)
    }

    /// Every event of one aggregate type, in log order, from `from_position`, lazily, up to
    /// [`Store::last_position`] when the read began.
    ///
    /// # Errors
    ///
    /// [`ReadError`] when the index cannot be read; each item is a `Result` too.
    pub fn read_aggregate_type(
        &self,
        aggregate_type: &str,
        from_position: u64,
        limit: Option<usize>,
    ) -> Result<TypeEvents, ReadError> {
        let shared = &self.shared;
        let (memory_runs, end) = {
            let state = lock(&shared.state);
            (
                state
                    .memtable
                    .types
                    .get(aggregate_type)
                    .cloned()
                    .unwrap_or_default(),
                shared.visible_end(&state),
            )
        };
        let from = from_position.max(1);
        let start = shared
            .log
            .range(type_page_key(aggregate_type, 0)..=type_page_key(aggregate_type, from))
            .next_back()
            .transpose()?
            .map_or_else(
                || type_page_key(aggregate_type, from),
                |(key, _)| key.to_vec(),
            );
        let pages = shared
            .log
            .range(start..prefix_end(&type_prefix(aggregate_type)));
        Ok(TypeEvents {
            shared: Arc::clone(shared),
            aggregate_type: aggregate_type.to_string(),
            queue: VecDeque::new(),
            pages: Some(Cursor(pages)),
            memory_runs: Some(memory_runs),
            next: from,
            end,
            remaining: limit.unwrap_or(usize::MAX),
            cache: None,
            failed: false,
            retrieved: Retrieved {
                shared: Arc::clone(shared),
                count: 0,
                what: "aggregate_type",
            },
        })
    }

    /// The aggregates (all, or those of one type) with their current versions (as
    /// [`Store::stream_version`] reports them), sorted by type and id.
    ///
    /// # Errors
    ///
    /// [`ReadError`] when the index cannot be read or does not decode.
    pub fn aggregates(
        &self,
        aggregate_type: Option<&str>,
    ) -> Result<Vec<AggregateInfo>, ReadError> {
        let shared = &self.shared;
        let mut heads: BTreeMap<StreamKey, u64> = {
            let state = lock(&shared.state);
            let end = shared.visible_end(&state);
            state
                .memtable
                .streams
                .iter()
                .map(|(key, entry)| (key.clone(), entry.head_upto(end)))
                .filter(|(_, head)| *head > 0)
                .collect()
        };
        let prefix = match aggregate_type {
            Some(t) => stream_type_prefix(t),
            None => vec![TAG_STREAM],
        };
        let end = prefix_end(&prefix);
        let mut cursor = prefix.clone();
        loop {
            let Some(entry) = shared.log.range(cursor.clone()..end.clone()).next() else {
                break;
            };
            let (key, _) = entry?;
            let (stream, _) = parse_stream_page_key(&key)
                .map_err(|e| corrupted(format!("stream page {}: {e}", show_key(&key))))?;
            let head = shared.persisted_head(&stream)?;
            let slot = heads.entry(stream.clone()).or_insert(0);
            *slot = (*slot).max(head);
            cursor = prefix_end(&stream_prefix(&stream));
        }
        heads
            .into_iter()
            .map(|(stream, version)| {
                let (aggregate_type, aggregate_id, _) = StreamKey::parse(stream.as_bytes())
                    .map_err(|e| corrupted(format!("stream key: {e}")))?;
                Ok(AggregateInfo {
                    aggregate_type,
                    aggregate_id,
                    version,
                })
            })
            .filter(|info| match (info, aggregate_type) {
                (Ok(info), Some(t)) => info.aggregate_type == t,
                _ => true,
            })
            .collect()
    }
}
