//! [`ReadOnlyEventLog`]: reading a store that another process (the daemon) holds open.

use std::fmt;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use events_core::{EventRegistry, Position, RecordedEvent, StreamId, Version};
use events_sled::{
    AggregateInfo, EventRef, LogFollower, ReadOnlyLogEvents, ReadOnlyStore, ReadOnlyStreamEvents,
    ReadOnlyTypeEvents, StreamRead,
};
use serde_json::Value;

use crate::error::{OpenError, ReadError};
use crate::log::EventLog;

impl EventLog {
    /// Opens the store at `path` **read-only**, beside the process that writes it (sled's lock
    /// keeps a second [`EventLog::open`] out: it fails with `OpenError::Locked`). Nothing is
    /// written. The handle reads the log's segment files and answers stream and aggregate-type
    /// reads from an index it builds in memory by scanning the whole log, so its open time and
    /// memory grow with the log (about 0.8 s and at most 50 MB per million events, see
    /// `events_sled::ReadOnlyStore`). It sees what the writer has written to the segment
    /// files as of the open and each [`ReadOnlyEventLog::refresh`]; [`ReadOnlyEventLog::follow`]
    /// tails the log. Snapshots, consumers, subscriptions and appends need the writer's handle.
    ///
    /// Payloads are decoded to JSON with `registry`.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, Position, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.002 };
    /// log.append_event(&StreamId::of::<CacheHit>("cache-1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// log.flush()?;
    ///
    /// // While `log` holds the store (in the daemon, say):
    /// let reader = EventLog::open_read_only(dir.path(), omni_domain::registry())?;
    /// assert_eq!(reader.last_position(), 1);
    /// let event = reader.read_log(Position::START, None).next().transpose()?.ok_or("no event")?;
    /// assert_eq!(reader.event_to_json(&event)?["payload"]["cache_key"], "k");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`OpenError::Store`] with `NoStore` (nothing there), `NeedsMigration` (a format-1
    /// store), `Io` or `Corrupted`.
    pub fn open_read_only(
        path: impl AsRef<Path>,
        registry: impl Into<Arc<EventRegistry>>,
    ) -> Result<ReadOnlyEventLog, OpenError> {
        let _span = tracing::info_span!("eventlog_open_read_only").entered();
        Ok(ReadOnlyEventLog {
            store: ReadOnlyStore::open(path)?,
            registry: registry.into(),
        })
    }
}

/// A store read beside its writer. Created by [`EventLog::open_read_only`]; cheap to clone
/// (clones share the index).
#[derive(Clone)]
pub struct ReadOnlyEventLog {
    store: ReadOnlyStore,
    registry: Arc<EventRegistry>,
}

impl fmt::Debug for ReadOnlyEventLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadOnlyEventLog")
            .field("path", &self.store.path())
            .field("last_position", &self.store.last_position())
            .finish_non_exhaustive()
    }
}

impl ReadOnlyEventLog {
    /// The store's directory.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// let reader = EventLog::open_read_only(dir.path(), omni_domain::registry())?;
    /// assert_eq!(reader.path(), dir.path());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// The store's id (`None` while it has no segment file yet).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// let reader = EventLog::open_read_only(dir.path(), omni_domain::registry())?;
    /// let id = reader.store_id().ok_or("no segment file")?;
    /// uuid::Uuid::parse_str(&id)?; // a hyphenated UUID, written in every segment's header
    /// let again = EventLog::open_read_only(dir.path(), omni_domain::registry())?;
    /// assert_eq!(again.store_id(), Some(id));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn store_id(&self) -> Option<String> {
        self.store.store_id()
    }

    /// The registry that decodes payloads.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// let reader = EventLog::open_read_only(dir.path(), omni_domain::registry())?;
    /// assert!(reader.registry().contains("cache_hit"));
    /// assert!(!reader.registry().contains("no_such_event"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn registry(&self) -> &EventRegistry {
        &self.registry
    }

    /// The last position the reads cover (as of the open or the last refresh).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// let reader = EventLog::open_read_only(dir.path(), omni_domain::registry())?;
    /// assert_eq!(reader.last_position(), 2);
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// assert_eq!(reader.last_position(), 2); // until the next refresh
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn last_position(&self) -> Position {
        Position(self.store.last_position())
    }

    /// Reads and indexes what the writer appended since; returns the new last position.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let stream = StreamId::of::<CacheHit>("c1");
    /// log.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default())?;
    /// let reader = EventLog::open_read_only(dir.path(), omni_domain::registry())?;
    /// log.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default())?;
    /// assert_eq!(reader.stream_version(&stream), 1);
    /// assert_eq!(reader.refresh()?, 2);
    /// assert_eq!(reader.stream_version(&stream), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReadError::Store`] when the files cannot be read or what was appended is damaged.
    pub fn refresh(&self) -> Result<Position, ReadError> {
        Ok(Position(self.store.refresh()?))
    }

    /// The global log from position `from` on, lazily, at most `limit` events, up to
    /// [`ReadOnlyEventLog::last_position`].
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, Position, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for id in ["a", "b", "c"] {
    ///     log.append_event(&StreamId::of::<CacheHit>(id), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// }
    /// let reader = EventLog::open_read_only(dir.path(), omni_domain::registry())?;
    /// let ids: Vec<String> = reader
    ///     .read_log(Position(2), Some(1))
    ///     .map(|e| e.map(|e| e.metadata.aggregate_id))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(ids, ["b"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_log(&self, from: Position, limit: Option<usize>) -> ReadOnlyLogEvents {
        self.store.read_log(from.get(), limit)
    }

    /// Visits the global log, each event borrowed (see [`EventLog::scan_log`]).
    ///
    /// # Example
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, Position, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for id in ["a", "b", "a"] {
    ///     log.append_event(&StreamId::of::<CacheHit>(id), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// }
    /// let reader = EventLog::open_read_only(dir.path(), omni_domain::registry())?;
    /// let mut seen = Vec::new();
    /// let visited = reader.scan_log(Position::START, None, |event| {
    ///     seen.push((event.position, event.aggregate_id.to_owned(), event.version));
    ///     ControlFlow::Continue(())
    /// })?;
    /// assert_eq!(visited, 3);
    /// assert_eq!(seen[2], (3, "a".to_owned(), 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReadError::Store`] when the log cannot be read or does not decode.
    pub fn scan_log(
        &self,
        from: Position,
        limit: Option<usize>,
        visit: impl FnMut(EventRef<'_>) -> ControlFlow<()>,
    ) -> Result<u64, ReadError> {
        Ok(self.store.scan_log(from.get(), limit, visit)?)
    }

    /// An aggregate's events, lazily (see [`EventLog::read_stream`]).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, StreamRead};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for id in ["c1", "c2", "c1"] {
    ///     log.append_event(&StreamId::of::<CacheHit>(id), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// }
    /// let reader = EventLog::open_read_only(dir.path(), omni_domain::registry())?;
    /// let positions: Vec<u64> = reader
    ///     .read_stream(&StreamId::new("cache", "c1"), StreamRead::forwards())?
    ///     .map(|e| e.map(|e| e.position))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(positions, [1, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReadError::Store`] (each item is a `Result` too).
    pub fn read_stream(
        &self,
        stream: &StreamId,
        read: StreamRead,
    ) -> Result<ReadOnlyStreamEvents, ReadError> {
        Ok(self
            .store
            .read_stream(stream.aggregate_type(), stream.aggregate_id(), read)?)
    }

    /// A stream's version ([`Version::NONE`]: no events).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, Version};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let stream = StreamId::of::<CacheHit>("c1");
    /// log.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default())?;
    /// log.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default())?;
    /// let reader = EventLog::open_read_only(dir.path(), omni_domain::registry())?;
    /// assert_eq!(reader.stream_version(&stream), Version(2));
    /// assert_eq!(reader.stream_version(&StreamId::new("cache", "nobody")), Version::NONE);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stream_version(&self, stream: &StreamId) -> Version {
        Version(
            self.store
                .stream_version(stream.aggregate_type(), stream.aggregate_id()),
        )
    }

    /// One aggregate type's events, in log order, lazily.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, Position, StreamId};
    /// use omni_domain::{CacheHit, RetryFailed};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let failed = RetryFailed { operation: "call".into(), total_attempts: 3, final_error: "down".into(), total_time: 1.0 };
    /// log.append_event(&StreamId::of::<CacheHit>("c"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// log.append_event(&StreamId::of::<RetryFailed>("r"), ExpectedVersion::Any, &failed, EventContext::default())?;
    /// let reader = EventLog::open_read_only(dir.path(), omni_domain::registry())?;
    /// let retries: Vec<u64> = reader
    ///     .read_aggregate_type("retry", Position::START, None)?
    ///     .map(|e| e.map(|e| e.position))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(retries, [2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReadError::Store`] (each item is a `Result` too).
    pub fn read_aggregate_type(
        &self,
        aggregate_type: &str,
        from: Position,
        limit: Option<usize>,
    ) -> Result<ReadOnlyTypeEvents, ReadError> {
        Ok(self
            .store
            .read_aggregate_type(aggregate_type, from.get(), limit)?)
    }

    /// The aggregates (all, or those of one type) with their versions.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for id in ["c1", "c1", "c2"] {
    ///     log.append_event(&StreamId::of::<CacheHit>(id), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// }
    /// let reader = EventLog::open_read_only(dir.path(), omni_domain::registry())?;
    /// let caches = reader.aggregates(Some("cache"))?;
    /// assert_eq!(caches, log.aggregates(Some("cache"))?);
    /// assert_eq!(caches.iter().map(|a| a.version).sum::<u64>(), 3);
    /// assert!(reader.aggregates(Some("pipeline"))?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReadError::Store`].
    pub fn aggregates(
        &self,
        aggregate_type: Option<&str>,
    ) -> Result<Vec<AggregateInfo>, ReadError> {
        Ok(self.store.aggregates(aggregate_type)?)
    }

    /// Tails the log from position `from` on as the writer appends (see
    /// `events_sled::ReadOnlyStore::follow`): set the poll interval, an idle timeout or use the
    /// stop flag on the returned [`LogFollower`].
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, Position, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let stream = StreamId::of::<CacheHit>("c1");
    /// log.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default())?;
    /// let reader = EventLog::open_read_only(dir.path(), omni_domain::registry())?;
    /// let follower = reader
    ///     .follow(Position::START)
    ///     .poll_interval(Duration::from_millis(10))
    ///     .idle_timeout(Some(Duration::from_millis(200))); // ends after 200 ms without events
    /// log.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default())?; // after the open
    /// let positions: Vec<u64> = follower.map(|e| e.map(|e| e.position)).collect::<Result<_, _>>()?;
    /// assert_eq!(positions, [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn follow(&self, from: Position) -> LogFollower {
        self.store.follow(from.get())
    }

    /// A recorded event as one flat JSON object (see [`EventLog::event_to_json`]).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, Position, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// let reader = EventLog::open_read_only(dir.path(), omni_domain::registry())?;
    /// let event = reader.read_log(Position::START, None).next().ok_or("empty")??;
    /// let json = reader.event_to_json(&event)?;
    /// assert_eq!((json["position"].as_u64(), json["aggregate_id"].as_str()), (Some(1), Some("c1")));
    /// assert_eq!((json["event_type"].as_str(), json["payload"]["cache_key"].as_str()), (Some("cache_hit"), Some("k")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReadError::Decode`] when its type is unknown or its payload does not decode.
    pub fn event_to_json(&self, event: &RecordedEvent) -> Result<Value, ReadError> {
        Ok(self.registry.event_to_json(event)?)
    }
}
