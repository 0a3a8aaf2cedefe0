//! Reads: one stream, the global log (lazily or by borrowing each event), one aggregate type,
//! the aggregates, and where the log ends.
//!
//! What reads see follows the store's durability: in durable mode only durable events (an
//! append still waiting for its sync is not read, not counted by `stream_version` or
//! `last_position`); in buffered mode every acknowledged event, durable or not.

use std::ops::ControlFlow;

use events_core::{Position, RecordedEvent, StreamId, Version};
use events_sled::{AggregateInfo, EventRef, LogEvents, StreamEvents, StreamRead, TypeEvents};
use serde_json::Value;

use crate::error::ReadError;
use crate::log::EventLog;

impl EventLog {
    /// A stream's events, lazily: from a version, forwards or backwards, with a limit. In
    /// durable mode only durable events are read (see [`Durability`](crate::Durability)).
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
    /// let stream = StreamId::of::<CacheHit>("cache-1");
    /// for _ in 0..3 {
    ///     log.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default())?;
    /// }
    /// let newest: Vec<u64> = log
    ///     .read_stream(&stream, StreamRead::backwards().limit(2))?
    ///     .map(|e| e.map(|e| e.version()))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(newest, [3, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReadError::Store`] when the index cannot be read (each item is a `Result` too);
    /// [`ReadError::Closed`].
    pub fn read_stream(
        &self,
        stream: &StreamId,
        read: StreamRead,
    ) -> Result<StreamEvents, ReadError> {
        self.with_store(|s| {
            Ok(s.read_stream(stream.aggregate_type(), stream.aggregate_id(), read)?)
        })
    }

    /// A stream's current version ([`Version::NONE`]: it has no events); in durable mode, its
    /// last durable version.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventLog, EventLogConfig, StreamId, Version};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// assert_eq!(log.stream_version(&StreamId::new("cache", "nobody"))?, Version::NONE);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReadError::Store`]; [`ReadError::Closed`].
    pub fn stream_version(&self, stream: &StreamId) -> Result<Version, ReadError> {
        self.with_store(|s| {
            Ok(Version(s.stream_version(
                stream.aggregate_type(),
                stream.aggregate_id(),
            )?))
        })
    }

    /// The global log from position `from` on (positions start at 1; [`Position::START`] reads
    /// it all), lazily, at most `limit` events, up to [`EventLog::last_position`] when the read
    /// began.
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
    /// let ids: Vec<String> = log
    ///     .read_log(Position(2), Some(5))?
    ///     .map(|e| e.map(|e| e.metadata.aggregate_id))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(ids, ["b", "c"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReadError::Closed`]; each item is a `Result`.
    pub fn read_log(&self, from: Position, limit: Option<usize>) -> Result<LogEvents, ReadError> {
        self.with_store(|s| Ok(s.read_log(from.get(), limit)))
    }

    /// Visits the global log from position `from`, at most `limit` events, each borrowed where
    /// it lies ([`EventRef`]: no allocation per event), until `visit` returns
    /// [`ControlFlow::Break`]. The fastest way to scan the log (about twice
    /// [`EventLog::read_log`]'s rate in `BENCHMARKS.md`); covers the events up to
    /// [`EventLog::last_position`] when the scan began. Returns how many events were visited.
    /// [`EventLog::close`] waits for a scan in progress to end.
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
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.002 };
    /// for id in ["cache-1", "cache-2", "cache-1"] {
    ///     log.append_event(&StreamId::of::<CacheHit>(id), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// }
    /// let mut versions = Vec::new();
    /// let visited = log.scan_log(Position::START, None, |event| {
    ///     versions.push((event.aggregate_id.to_owned(), event.version));
    ///     ControlFlow::Continue(())
    /// })?;
    /// assert_eq!(visited, 3);
    /// assert_eq!(versions[2], ("cache-1".to_owned(), 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReadError::Store`] when the log cannot be read or does not decode (the scan stops
    /// there); [`ReadError::Closed`].
    pub fn scan_log(
        &self,
        from: Position,
        limit: Option<usize>,
        visit: impl FnMut(EventRef<'_>) -> ControlFlow<()>,
    ) -> Result<u64, ReadError> {
        self.with_store(|s| Ok(s.scan_log(from.get(), limit, visit)?))
    }

    /// Every event of one aggregate type, in log order, from position `from` on, lazily.
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
    /// let retries = log.read_aggregate_type("retry", Position::START, None)?.count();
    /// assert_eq!(retries, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReadError::Store`]; [`ReadError::Closed`].
    pub fn read_aggregate_type(
        &self,
        aggregate_type: &str,
        from: Position,
        limit: Option<usize>,
    ) -> Result<TypeEvents, ReadError> {
        self.with_store(|s| Ok(s.read_aggregate_type(aggregate_type, from.get(), limit)?))
    }

    /// The aggregates (all, or those of one type) with their current versions.
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
    /// log.append_event(&StreamId::of::<CacheHit>("c"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// let all = log.aggregates(None)?;
    /// assert_eq!((all[0].aggregate_id.as_str(), all[0].version), ("c", 1));
    /// assert!(log.aggregates(Some("pipeline"))?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReadError::Store`]; [`ReadError::Closed`].
    pub fn aggregates(
        &self,
        aggregate_type: Option<&str>,
    ) -> Result<Vec<AggregateInfo>, ReadError> {
        self.with_store(|s| Ok(s.aggregates(aggregate_type)?))
    }

    /// Position of the last event reads see ([`Position::START`]: the log is empty): in durable
    /// mode the last durable one, in buffered mode the last acknowledged one.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventLog, EventLogConfig, Position};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// assert_eq!(log.last_position()?, Position::START);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReadError::Closed`].
    pub fn last_position(&self) -> Result<Position, ReadError> {
        self.with_store(|s| Ok(Position(s.last_position())))
    }

    /// Position up to which every event is flushed to disk.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{Durability, EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let config = EventLogConfig::new(dir.path()).registry(omni_domain::registry());
    /// let log = EventLog::open(config.durability(Durability::Buffered))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// log.flush()?;
    /// assert_eq!(log.durable_position()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReadError::Closed`].
    pub fn durable_position(&self) -> Result<Position, ReadError> {
        self.with_store(|s| Ok(Position(s.durable_position())))
    }

    /// A recorded event as one flat JSON object (metadata, position and decoded payload).
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
    /// log.append_event(&StreamId::of::<CacheHit>("c"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// let event = log.read_log(Position::START, None)?.next().ok_or("empty")??;
    /// assert_eq!(log.event_to_json(&event)?["payload"]["cache_key"], "k");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReadError::Decode`] when its type is unknown or its payload does not decode.
    pub fn event_to_json(&self, event: &RecordedEvent) -> Result<Value, ReadError> {
        Ok(self.inner().config.registry.event_to_json(event)?)
    }
}
