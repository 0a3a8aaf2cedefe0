//! [`ReadOnlyEventLog`]: reading a store that another process (the daemon) holds open.

use std::fmt;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use events_core::{EventRegistry, RecordedEvent};
use events_sled::{
    AggregateInfo, EventRef, LogFollower, ReadOnlyLogEvents, ReadOnlyStore, ReadOnlyStreamEvents,
    ReadOnlyTypeEvents, StreamRead,
};
use serde_json::Value;

use crate::error::EventLogError;
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
    /// Payloads are decoded with the Omni Writer registry ([`EventLogConfig::new`]'s default);
    /// give another with [`ReadOnlyEventLog::with_registry`].
    ///
    /// [`EventLogConfig::new`]: crate::EventLogConfig::new
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{CacheHit, EventContext, EventLog, EventLogConfig, ExpectedVersion};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.002 };
    /// log.append_event("cache-1", ExpectedVersion::Any, &hit, EventContext::default())?;
    /// log.flush()?;
    ///
    /// // While `log` holds the store (in the daemon, say):
    /// let reader = EventLog::open_read_only(dir.path())?;
    /// assert_eq!(reader.last_position(), 1);
    /// let event = reader.read_log(1, None).next().transpose()?.ok_or("no event")?;
    /// assert_eq!(reader.event_to_json(&event)?["payload"]["cache_key"], "k");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`EventLogError::Open`] with `OpenError::NoStore` (nothing there),
    /// `OpenError::NeedsMigration` (a format-1 store), `OpenError::Io` or
    /// `OpenError::Corrupted`.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<ReadOnlyEventLog, EventLogError> {
        let _span = tracing::info_span!("eventlog_open_read_only").entered();
        Ok(ReadOnlyEventLog {
            store: ReadOnlyStore::open(path)?,
            registry: Arc::new(EventRegistry::omni_writer()),
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
    /// Decodes payloads with `registry` instead of the Omni Writer one.
    #[must_use]
    pub fn with_registry(mut self, registry: impl Into<Arc<EventRegistry>>) -> Self {
        self.registry = registry.into();
        self
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// The store's id (`None` while it has no segment file yet).
    pub fn store_id(&self) -> Option<String> {
        self.store.store_id()
    }

    /// The registry that decodes payloads.
    pub fn registry(&self) -> &EventRegistry {
        &self.registry
    }

    /// The last position the reads cover (as of the open or the last refresh).
    pub fn last_position(&self) -> u64 {
        self.store.last_position()
    }

    /// Reads and indexes what the writer appended since; returns the new last position.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Read`] when the files cannot be read or what was appended is damaged.
    pub fn refresh(&self) -> Result<u64, EventLogError> {
        Ok(self.store.refresh()?)
    }

    /// The global log from `from_position`, lazily, at most `limit` events, up to
    /// [`ReadOnlyEventLog::last_position`].
    pub fn read_log(&self, from_position: u64, limit: Option<usize>) -> ReadOnlyLogEvents {
        self.store.read_log(from_position, limit)
    }

    /// Visits the global log, each event borrowed (see [`EventLog::scan_log`]).
    ///
    /// # Errors
    ///
    /// [`EventLogError::Read`] when the log cannot be read or does not decode.
    pub fn scan_log(
        &self,
        from_position: u64,
        limit: Option<usize>,
        visit: impl FnMut(EventRef<'_>) -> ControlFlow<()>,
    ) -> Result<u64, EventLogError> {
        Ok(self.store.scan_log(from_position, limit, visit)?)
    }

    /// An aggregate's events, lazily (see [`EventLog::read_stream`]).
    ///
    /// # Errors
    ///
    /// [`EventLogError::Read`] (each item is a `Result` too).
    pub fn read_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        read: StreamRead,
    ) -> Result<ReadOnlyStreamEvents, EventLogError> {
        Ok(self.store.read_stream(aggregate_type, aggregate_id, read)?)
    }

    /// An aggregate's version (0: no events).
    pub fn stream_version(&self, aggregate_type: &str, aggregate_id: &str) -> u64 {
        self.store.stream_version(aggregate_type, aggregate_id)
    }

    /// One aggregate type's events, in log order, lazily.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Read`] (each item is a `Result` too).
    pub fn read_aggregate_type(
        &self,
        aggregate_type: &str,
        from_position: u64,
        limit: Option<usize>,
    ) -> Result<ReadOnlyTypeEvents, EventLogError> {
        Ok(self
            .store
            .read_aggregate_type(aggregate_type, from_position, limit)?)
    }

    /// The aggregates (all, or those of one type) with their versions.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Read`].
    pub fn aggregates(
        &self,
        aggregate_type: Option<&str>,
    ) -> Result<Vec<AggregateInfo>, EventLogError> {
        Ok(self.store.aggregates(aggregate_type)?)
    }

    /// Tails the log from `from_position` as the writer appends (see
    /// `events_sled::ReadOnlyStore::follow`): set the poll interval, an idle timeout or use the
    /// stop flag on the returned [`LogFollower`].
    pub fn follow(&self, from_position: u64) -> LogFollower {
        self.store.follow(from_position)
    }

    /// A recorded event as one flat JSON object (see [`EventLog::event_to_json`]).
    ///
    /// # Errors
    ///
    /// [`EventLogError::Registry`] when its type is unknown or its payload does not decode.
    pub fn event_to_json(&self, event: &RecordedEvent) -> Result<Value, EventLogError> {
        Ok(self.registry.event_to_json(event)?)
    }
}
