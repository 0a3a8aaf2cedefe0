//! Restoring a store from its JetStream stream: [`restore_from_stream`] appends every event of
//! a store's own stream (sequence = position), in order, into a new store so that positions,
//! event ids, versions, timestamps, schema versions, context and payload bytes come out
//! identical, then verifies the new store and reads it back.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use events_core::{ExpectedVersion, Position, RecordedEvent, StreamId, ValidationError, Version};
use events_nats::{FollowError, StreamReader, StreamSummary};
use events_sled::{AppendError as StoreAppendError, VerifyReport};
use uuid::Uuid;

use crate::append::AppendBatch;
use crate::config::EventLogConfig;
use crate::error::{AdminError, AppendError, OpenError, ReadError};
use crate::log::EventLog;

/// How long a restore waits for the stream's next message before giving up: the messages it
/// waits for are in the stream already, so only a server that stopped answering takes this long.
const STALL: Duration = Duration::from_secs(30);

/// Most events in one append of a restore (fewer when the store's limits are lower): large
/// enough that a durable store syncs rarely, small enough to bound the memory a chunk holds.
const CHUNK_EVENTS: usize = 4096;

/// What [`restore_from_stream`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreReport {
    /// The stream read.
    pub stream: String,
    /// The store that owns the stream (from its description), if it names one.
    pub owner_store: Option<String>,
    /// The restored store's directory.
    pub path: PathBuf,
    /// Events restored.
    pub events: u64,
    /// The restored store's last position (= the stream's last sequence when the restore began).
    pub last_position: u64,
    /// The restored store's hash-chain head, from its verification.
    pub chain_head: String,
    /// How long the restore took, verification and read-back included.
    pub elapsed: Duration,
}

/// Why [`restore_from_stream`] failed. On a failure after the target store was created, the
/// directory holds the events restored before it: remove it before trying again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The target directory exists and is not empty (a restore never writes over anything).
    #[error(
        "{} is not empty: restore into a new or empty directory",
        path.display()
    )]
    TargetNotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// The target directory could not be read.
    #[error("could not read {}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The stream merges other streams (JetStream `sources`): positions repeat in it, so it is
    /// no one store's log.
    #[error(
        "stream {stream} merges other streams ({}): positions repeat in it; restore from one store's own stream",
        sources.join(", ")
    )]
    MergedStream {
        /// The stream.
        stream: String,
        /// The streams it merges.
        sources: Vec<String>,
    },
    /// The stream does not hold every sequence from 1 to its last (messages were removed), so
    /// the log's first positions cannot be restored.
    #[error(
        "stream {stream} holds {messages} messages for sequences {first_sequence}..={last_sequence}: it lost events and cannot be restored"
    )]
    IncompleteStream {
        /// The stream.
        stream: String,
        /// Its first sequence.
        first_sequence: u64,
        /// Its last sequence.
        last_sequence: u64,
        /// The messages it holds.
        messages: u64,
    },
    /// The stream could not be read (no such stream, no server, a message that is not an
    /// event or carries another position than its sequence).
    #[error(transparent)]
    Stream(#[from] FollowError),
    /// The stream delivered nothing for a while although it holds more messages.
    #[error(
        "stream {stream} delivered nothing for {waited:?} at sequence {next_sequence} (its last is {last_sequence})"
    )]
    Stalled {
        /// The stream.
        stream: String,
        /// The sequence waited for.
        next_sequence: u64,
        /// The last sequence to restore.
        last_sequence: u64,
        /// How long it waited.
        waited: Duration,
    },
    /// The stream delivered another position than the next one (it skips or repeats one).
    #[error("stream {stream} delivered position {found} where {expected} was next")]
    Gap {
        /// The stream.
        stream: String,
        /// The position expected.
        expected: u64,
        /// The position delivered.
        found: u64,
    },
    /// The target store could not be opened.
    #[error("could not open the target store")]
    Open(#[from] OpenError),
    /// An event's type is not in the configuration's registry (the store refuses events of
    /// types it does not know): give the registry of the stream's event types.
    #[error(
        "event type `{event_type}` (position {position}) is not in the registry: configure the registry of the stream's event types"
    )]
    UnknownEventType {
        /// The type.
        event_type: String,
        /// The position of the first event of that type.
        position: u64,
    },
    /// The target store refused or failed an append.
    #[error("the target store refused the event at position {position}")]
    Append {
        /// The position of the event refused (of the first event of the append, unless the
        /// store named one).
        position: u64,
        /// The store's error.
        #[source]
        source: AppendError,
    },
    /// An append landed elsewhere than the event's position or version (the stream repeats
    /// an event id, or its versions do not follow).
    #[error(
        "event {event_id} for position {position}, version {version} was stored at position {stored_position}, version {stored_version}"
    )]
    Misplaced {
        /// The event's position in the stream.
        position: u64,
        /// Its version there.
        version: u64,
        /// Its id.
        event_id: Uuid,
        /// Where the store put it.
        stored_position: u64,
        /// The version the store gave it.
        stored_version: u64,
    },
    /// Flushing, verifying or closing the restored store failed.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// Reading the restored store back failed.
    #[error("reading the restored store back failed")]
    ReadBack(#[source] ReadError),
    /// The restored store's verification found problems.
    #[error(
        "the restored store does not verify: {} problems{}",
        report.issue_count,
        report.issues.first().map_or(String::new(), |i| format!(", the first: {} at {}: {}", i.kind, i.location, i.detail))
    )]
    NotVerified {
        /// The verification's report.
        report: Box<VerifyReport>,
    },
    /// Read back, the restored store holds another event than the one restored at a position
    /// (`None`: nothing there, or nothing was restored there).
    #[error(
        "the restored store holds event {found:?} at position {position}, where the stream has {expected:?}"
    )]
    Mismatch {
        /// The position.
        position: u64,
        /// The event id restored there.
        expected: Option<Uuid>,
        /// The event id read back.
        found: Option<Uuid>,
    },
}

/// Restores a new store at `config`'s path from `reader`'s stream: a store's own stream, as
/// [`EventLog::replicate`] writes it. Every event from sequence 1 to the stream's last
/// sequence when the restore begins is appended, in order, in batches, with
/// [`ExpectedVersion::Exact`] of its version - 1, so that positions, event ids, versions,
/// timestamps, schema versions, every context field and the payload bytes are the stream's.
/// Then the store is flushed, verified ([`Admin::verify`](crate::Admin::verify)) and read back,
/// each position's event id compared with the one restored there (kept in memory: 16 bytes an
/// event), and closed.
///
/// `config` must carry the registry of the stream's event types (the store refuses events of
/// types it does not know; `events-dump restore` passes `omni_domain::registry()`), and limits
/// that take the stream's events. The store's durability is `config`'s; the restore flushes
/// at the end, so a buffered store restores faster and is as durable when this returns.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, Position, ReplicationConfig,
///     StreamId, StreamReader, restore_from_stream};
/// use omni_domain::CacheHit;
///
/// let server = events_nats::LocalServer::start()?;
/// let dir = tempfile::tempdir()?;
/// let config = |name: &str| EventLogConfig::new(dir.path().join(name)).registry(omni_domain::registry());
/// let log = EventLog::open(config("original"))?;
/// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
/// for id in ["c1", "c2", "c1"] {
///     log.append_event(&StreamId::of::<CacheHit>(id), ExpectedVersion::Any, &hit, EventContext::default())?;
/// }
/// let replicator = log.replicate(ReplicationConfig::new(server.url()).stream("ORDERS"))?;
/// assert!(replicator.wait_replicated(3, Duration::from_secs(10)));
/// replicator.stop()?;
///
/// let reader = StreamReader::connect(&server.url(), "ORDERS", Duration::from_secs(10))?;
/// let report = restore_from_stream(&reader, config("restored"))?;
/// assert_eq!((report.events, report.last_position), (3, 3));
/// let restored = EventLog::open(config("restored"))?;
/// let all = |log: &EventLog| -> Result<Vec<_>, Box<dyn std::error::Error>> {
///     Ok(log.read_log(Position::START, None)?.collect::<Result<Vec<_>, _>>()?)
/// };
/// assert_eq!(all(&restored)?, all(&log)?); // positions, ids, versions, timestamps, metadata, payloads
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`RestoreError::TargetNotEmpty`] when the directory exists and is not empty (nothing is
/// touched); [`RestoreError::MergedStream`] for a stream that merges others;
/// [`RestoreError::IncompleteStream`]; [`RestoreError::Stream`] when the stream cannot be read;
/// [`RestoreError::Stalled`]; [`RestoreError::Open`]; [`RestoreError::UnknownEventType`] naming
/// the first type the registry lacks; [`RestoreError::Append`] and [`RestoreError::Misplaced`]
/// when the store does not take an event as it is; [`RestoreError::NotVerified`] and
/// [`RestoreError::Mismatch`] when the restored store is not the stream; [`RestoreError::Admin`]
/// and [`RestoreError::ReadBack`].
pub fn restore_from_stream(
    reader: &StreamReader,
    config: EventLogConfig,
) -> Result<RestoreReport, RestoreError> {
    restore_from_stream_with(reader, config, &mut |_, _| {})
}

/// [`restore_from_stream`] reporting progress: `(position restored, last position)` after
/// each batch.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, ReplicationConfig, StreamId,
///     StreamReader, restore_from_stream_with};
/// use omni_domain::CacheHit;
///
/// let server = events_nats::LocalServer::start()?;
/// let dir = tempfile::tempdir()?;
/// let config = |name: &str| EventLogConfig::new(dir.path().join(name)).registry(omni_domain::registry());
/// let log = EventLog::open(config("original"))?;
/// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
/// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
/// let replicator = log.replicate(ReplicationConfig::new(server.url()))?;
/// assert!(replicator.wait_replicated(1, Duration::from_secs(10)));
///
/// let reader = StreamReader::connect(&server.url(), "EVENTLOG", Duration::from_secs(10))?;
/// let mut seen = Vec::new();
/// restore_from_stream_with(&reader, config("restored"), &mut |done, last| seen.push((done, last)))?;
/// assert_eq!(seen.last(), Some(&(1, 1)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// As [`restore_from_stream`].
pub fn restore_from_stream_with(
    reader: &StreamReader,
    config: EventLogConfig,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RestoreReport, RestoreError> {
    let started = Instant::now();
    let path = config.path().to_path_buf();
    check_empty(&path)?;
    let summary = reader.summary()?;
    if summary.is_merged() {
        return Err(RestoreError::MergedStream {
            stream: summary.name,
            sources: summary.sources,
        });
    }
    if summary.messages != summary.last_sequence {
        return Err(RestoreError::IncompleteStream {
            stream: summary.name,
            first_sequence: summary.first_sequence,
            last_sequence: summary.last_sequence,
            messages: summary.messages,
        });
    }
    let limits = config.store_config().get_limits();
    let chunk = Chunk::new(
        limits.max_events_per_append.min(CHUNK_EVENTS),
        limits.max_append_bytes,
    );
    tracing::info!(
        name: "eventlog_restore_started",
        stream = %summary.name,
        owner_store = summary.owner_store.as_deref().unwrap_or(""),
        last_sequence = summary.last_sequence,
        into = %path.display(),
        "restoring a store from its stream"
    );
    let log = EventLog::open(config)?;
    let restored = restore_into(&log, reader, &summary, chunk, progress);
    // Closed after a failure too (what was restored stays for the user to inspect).
    let closed = log.close();
    let chain_head = restored?;
    closed?;
    let report = RestoreReport {
        stream: summary.name,
        owner_store: summary.owner_store,
        path,
        events: summary.last_sequence,
        last_position: summary.last_sequence,
        chain_head,
        elapsed: started.elapsed(),
    };
    tracing::info!(
        name: "eventlog_restore_finished",
        stream = %report.stream,
        events = report.events,
        chain_head = %report.chain_head,
        elapsed_ms = u64::try_from(report.elapsed.as_millis()).unwrap_or(u64::MAX),
        "restored and verified"
    );
    Ok(report)
}

/// Refuses a target that exists and is not an empty directory.
fn check_empty(path: &Path) -> Result<(), RestoreError> {
    if !path.exists() {
        return Ok(());
    }
    let io = |source| RestoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    if std::fs::read_dir(path).map_err(io)?.next().is_some() {
        return Err(RestoreError::TargetNotEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Appends the stream's events into `log`, flushes, verifies and reads back; returns the chain
/// head.
fn restore_into(
    log: &EventLog,
    reader: &StreamReader,
    summary: &StreamSummary,
    mut chunk: Chunk,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<String, RestoreError> {
    let last = summary.last_sequence;
    // Ids by position - 1, for the read-back.
    let mut ids: Vec<Uuid> = Vec::with_capacity(usize::try_from(last.min(1 << 20)).unwrap_or(0));
    if last > 0 {
        let mut follower = reader.follow(1)?;
        while follower.next_sequence() <= last {
            let Some(event) = follower.next(STALL)? else {
                return Err(RestoreError::Stalled {
                    stream: summary.name.clone(),
                    next_sequence: follower.next_sequence(),
                    last_sequence: last,
                    waited: STALL,
                });
            };
            let expected = ids.len() as u64 + 1;
            if event.position != expected {
                return Err(RestoreError::Gap {
                    stream: summary.name.clone(),
                    expected,
                    found: event.position,
                });
            }
            if !chunk.takes(&event) {
                chunk.append_to(log)?;
                progress(chunk.next_position - 1, last);
            }
            ids.push(event.metadata.event_id);
            chunk.push(event);
        }
        chunk.append_to(log)?;
        progress(chunk.next_position - 1, last);
    }
    log.flush()?;
    let report = log.admin().verify()?;
    if !report.ok {
        return Err(RestoreError::NotVerified {
            report: Box::new(report),
        });
    }
    read_back(log, &ids)?;
    Ok(report.chain_head)
}

/// Compares the event id at every position of `log` with `ids` (position - 1 indexed).
fn read_back(log: &EventLog, ids: &[Uuid]) -> Result<(), RestoreError> {
    let mut count = 0u64;
    for event in log
        .read_log(Position::START, None)
        .map_err(RestoreError::ReadBack)?
    {
        let event = event.map_err(|e| RestoreError::ReadBack(e.into()))?;
        count += 1;
        let expected = usize::try_from(count - 1)
            .ok()
            .and_then(|i| ids.get(i))
            .copied();
        if event.position != count || expected != Some(event.metadata.event_id) {
            return Err(RestoreError::Mismatch {
                position: count,
                expected,
                found: Some(event.metadata.event_id),
            });
        }
    }
    if let Some(missing) = usize::try_from(count).ok().and_then(|i| ids.get(i)) {
        return Err(RestoreError::Mismatch {
            position: count + 1,
            expected: Some(*missing),
            found: None,
        });
    }
    Ok(())
}

/// The events of one append: consecutive events of one stream in one batch; a stream that
/// comes back after another starts the next append (a call may name a stream once).
struct Chunk {
    max_events: usize,
    max_bytes: usize,
    batches: Vec<AppendBatch>,
    streams: HashSet<StreamId>,
    events: usize,
    bytes: usize,
    /// The position of the chunk's first event.
    next_position: u64,
}

impl Chunk {
    fn new(max_events: usize, max_bytes: usize) -> Self {
        Self {
            max_events: max_events.max(1),
            max_bytes,
            batches: Vec::new(),
            streams: HashSet::new(),
            events: 0,
            bytes: 0,
            next_position: 1,
        }
    }

    /// Whether `event` can join this append (an empty chunk takes anything: the store then
    /// says what is wrong with it).
    fn takes(&self, event: &RecordedEvent) -> bool {
        let Some(current) = self.batches.last() else {
            return true;
        };
        let m = &event.metadata;
        let same = current.stream.is(&m.aggregate_type, &m.aggregate_id);
        self.events < self.max_events
            && self.bytes.saturating_add(event.payload.len()) <= self.max_bytes
            && (same
                || !self.streams.contains(&StreamId::new(
                    m.aggregate_type.clone(),
                    m.aggregate_id.clone(),
                )))
    }

    fn push(&mut self, event: RecordedEvent) {
        self.events += 1;
        self.bytes = self.bytes.saturating_add(event.payload.len());
        let m = &event.metadata;
        match self.batches.last_mut() {
            Some(batch) if batch.stream.is(&m.aggregate_type, &m.aggregate_id) => {
                batch.events.push(event.to_new_event());
            }
            _ => {
                let stream = StreamId::new(m.aggregate_type.clone(), m.aggregate_id.clone());
                self.streams.insert(stream.clone());
                let expected = ExpectedVersion::Exact(Version(m.version.saturating_sub(1)));
                self.batches.push(AppendBatch::new(
                    stream,
                    expected,
                    vec![event.to_new_event()],
                ));
            }
        }
    }

    /// Appends the chunk (when it holds anything) and checks where each batch landed.
    fn append_to(&mut self, log: &EventLog) -> Result<(), RestoreError> {
        if self.batches.is_empty() {
            return Ok(());
        }
        let first = self.next_position;
        let batches = std::mem::take(&mut self.batches);
        // What each batch's first event must get, to check the store's answer.
        let wanted: Vec<(u64, u64, Uuid)> = batches
            .iter()
            .scan(first, |position, batch| {
                let at = *position;
                *position += batch.events.len() as u64;
                let version = match batch.expected {
                    ExpectedVersion::Exact(v) => v.get() + 1,
                    _ => 0,
                };
                Some((at, version, batch.events[0].event_id))
            })
            .collect();
        let results = log
            .append_batches(batches)
            .map_err(|error| refused(error, first))?;
        for ((position, version, event_id), result) in wanted.into_iter().zip(&results) {
            if result.first_position != position || result.first_version != version {
                return Err(RestoreError::Misplaced {
                    position,
                    version,
                    event_id,
                    stored_position: result.first_position,
                    stored_version: result.first_version,
                });
            }
        }
        self.next_position = first + self.events as u64;
        self.streams.clear();
        self.events = 0;
        self.bytes = 0;
        Ok(())
    }
}

/// The error for an append of the chunk starting at `first` that the store refused: an
/// unknown type by name, the event the store names by its position.
fn refused(error: AppendError, first: u64) -> RestoreError {
    match error {
        AppendError::Store(StoreAppendError::Invalid {
            index,
            source: ValidationError::UnregisteredEventType { event_type },
        }) => RestoreError::UnknownEventType {
            event_type,
            position: first + index as u64,
        },
        AppendError::Store(StoreAppendError::Invalid { index, source }) => RestoreError::Append {
            position: first + index as u64,
            source: AppendError::Store(StoreAppendError::Invalid { index, source }),
        },
        source => RestoreError::Append {
            position: first,
            source,
        },
    }
}
