//! [`EventLog`]: the one handle. It opens the store, builds the bus on top of it, publishes
//! every committed group of events from its publisher thread (fed by the store's writer thread,
//! which never waits for it), and closes them in order.

use std::fmt::{self, Display};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use events_bus::{Bus, BusError, Subscriber, SubscriberHealth, SubscriberReport};
use events_core::{
    ARTICLE_GENERATION, CACHE, DomainEvent, EventContext, EventRegistry, NewEvent, PIPELINE,
    PROMPT_VALIDATION, RETRY, RecordedEvent,
};
use events_sled::{
    AggregateInfo, AppendBatch, AppendResult, ChainHead, CheckpointInfo, CheckpointManifest,
    ConsumerCheckpoint, Durability, EventRef, ExpectedVersion, LogEvents, OpenError, Progress,
    Snapshot, Store, StoreConfig, StreamEvents, StreamRead, TypeEvents, VerifyReport,
};
use serde_json::Value;
use tracing::field::Empty;

use crate::aggregate::{Aggregate, LoadCounters, Loaded, Loader, SnapshotUse};
use crate::config::EventLogConfig;
use crate::error::EventLogError;
use crate::metrics::{AggregateMetrics, BusMetrics, EventLogMetrics};
use crate::omni::{ArticleGeneration, Cache, Pipeline, PromptValidation, RetryOperation};
use crate::projection::{self, Projection, ProjectionHandle, Runner, StoredState};
use crate::publisher::Publisher;
use crate::subscription::{
    ConsumerNames, Delivered, Durable, LogSource, Plain, Position, Subscription,
    SubscriptionOptions, release, reserve,
};
use crate::trace::SpanLinks;

/// How long `close` waits for the publisher thread to hand the last committed events to the
/// bus (and then to end).
const CLOSE_PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

struct Inner {
    /// `None` once closed. Every call holds the read lock while it uses the store, so `close`
    /// (which takes the write lock) waits for calls in progress and no append slips past it.
    store: RwLock<Option<Store>>,
    bus: Bus<Delivered>,
    source: Arc<LogSource>,
    config: EventLogConfig,
    durable: bool,
    path: PathBuf,
    links: Arc<SpanLinks>,
    publisher: Publisher,
    consumers: ConsumerNames,
    loads: LoadCounters,
}

impl Inner {
    /// Closes everything, in order: no more calls; every acknowledged event committed and handed
    /// to the bus; every subscriber drained and joined; the store closed.
    fn shutdown(&self) -> Result<Vec<SubscriberReport>, EventLogError> {
        let store = self
            .store
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or(EventLogError::Closed)?;
        let span = tracing::info_span!("eventlog_close", path = %self.path.display());
        let _entered = span.enter();
        let mut first_error: Option<EventLogError> = None;
        match store.flush() {
            Ok(_) => {
                let last = store.last_position();
                if !self.publisher.wait_for(last, CLOSE_PUBLISH_TIMEOUT) {
                    tracing::warn!(
                        name: "eventlog_close_publish_timeout",
                        last_position = last,
                        "the publisher did not hand the last committed events to the bus in time"
                    );
                }
            }
            Err(error) => first_error = Some(error.into()),
        }
        self.publisher.stop(CLOSE_PUBLISH_TIMEOUT);
        let reports = match self.bus.shutdown() {
            Ok(reports) => reports,
            Err(error) => {
                first_error.get_or_insert(error.into());
                Vec::new()
            }
        };
        store.set_commit_listener(None);
        self.source.clear();
        if let Err(error) = store.close() {
            first_error.get_or_insert(error.into());
        }
        tracing::info!(
            name: "eventlog_closed",
            subscribers = reports.len(),
            "event log closed"
        );
        match first_error {
            Some(error) => Err(error),
            None => Ok(reports),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        match self.shutdown() {
            Ok(_) | Err(EventLogError::Closed) => {}
            Err(error) => {
                tracing::warn!(name: "eventlog_close_failed", error = %error, "closing the event log on drop failed");
            }
        }
    }
}

/// The event log: one cloneable handle that appends, reads, loads aggregates, snapshots,
/// checkpoints, subscribes and reports metrics, over one store directory.
///
/// Every clone is a handle to the same log (`EventLog` is `Send + Sync`). The log closes when
/// [`EventLog::close`] is called on any handle, or when the last handle is dropped; closing
/// delivers every acknowledged event to every subscription first. A subscription handler that
/// holds a clone of the log keeps it open: call `close` explicitly then.
///
/// # Delivery
///
/// The store's writer thread hands each committed group of events (flushed to disk first in
/// durable mode) to the log's publisher thread, `eventlog-publisher`, without ever waiting for
/// it; the publisher hands them to the bus in log order, and the bus gives every subscription
/// its own thread and bounded queue. So an event is delivered only once it is committed, to each
/// subscription in global position order, exactly once while the process lives (a failing
/// handler is retried by its [`FailurePolicy`](crate::FailurePolicy)). In
/// [`Durability::Buffered`] mode "committed" means written to sled, not yet flushed: a crash can
/// lose the last events of the log after they were delivered (their positions then go to new
/// events). Durable mode has no such window.
///
/// No subscription ever slows appends down. With the default
/// [`Backpressure::CatchUp`](crate::Backpressure::CatchUp) a slow subscription falls behind and
/// reads what it missed from the store. A [`Backpressure::Block`](crate::Backpressure::Block)
/// subscription with a full queue makes the publisher wait, which delays delivery to every
/// subscription (the publisher's own bounded queue then fills, and it later reads what it
/// missed from the store); its handler may still append, load, snapshot, flush or checkpoint.
///
/// # Example
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use eventlog::{
///     CacheHit, EventContext, EventLog, EventLogConfig, ExpectedVersion, SubscriptionFilter,
/// };
///
/// let dir = tempfile::tempdir()?;
/// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// log.subscribe("audit", SubscriptionFilter::all(), move |event: &eventlog::RecordedEvent| {
///     sink.lock().map_err(|_| "poisoned")?.push(event.position);
///     Ok::<(), &str>(())
/// })?;
///
/// let hit = CacheHit { cache_key: "prompt:1".into(), cache_type: "memory".into(), response_time: 0.002 };
/// let result = log.append_event("cache-1", ExpectedVersion::NoStream, &hit, EventContext::new("omni-writer"))?;
/// assert_eq!((result.last_version, result.last_position), (1, 1));
///
/// let reports = log.close()?; // delivers everything committed, joins every thread
/// assert_eq!(reports[0].last_sequence, 1);
/// assert_eq!(*seen.lock().map_err(|_| "poisoned")?, vec![1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

impl fmt::Debug for EventLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLog")
            .field("path", &self.inner.path)
            .field("closed", &self.is_closed())
            .field("bus", &self.inner.bus)
            .finish()
    }
}

/// Opens the store, retrying while its directory lock is still being released (see
/// [`EventLogConfig::lock_wait`]).
fn open_store(config: StoreConfig, lock_wait: Duration) -> Result<Store, EventLogError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match Store::open(config.clone()) {
            Err(OpenError::Locked { path }) => {
                let waited = started.elapsed();
                if waited >= lock_wait {
                    return Err(OpenError::Locked { path }.into());
                }
                tracing::debug!(
                    name: "eventlog_open_locked",
                    path = %path.display(),
                    waited_ms = waited.as_millis() as u64,
                    "store directory still locked; retrying"
                );
                std::thread::sleep(pause.min(lock_wait - waited));
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return Ok(other?),
        }
    }
}

fn bus_error(error: BusError) -> EventLogError {
    match error {
        BusError::ShutDown => EventLogError::Closed,
        other => EventLogError::Bus(other),
    }
}

impl EventLog {
    /// Opens (creating if needed) the event log described by `config`: the store, then the bus
    /// on top of it, and the publisher thread that feeds the bus with committed events.
    ///
    /// # Errors
    ///
    /// [`EventLogError::InvalidConfig`] for a facade setting out of range;
    /// [`EventLogError::Open`] when the store cannot be opened (a store setting out of range,
    /// the directory locked by another process, damaged files, ...).
    pub fn open(config: EventLogConfig) -> Result<Self, EventLogError> {
        config.validate()?;
        let span = tracing::info_span!("eventlog_open", path = %config.path().display());
        let _entered = span.enter();
        let store_config = config.store.clone().registry(Arc::clone(&config.registry));
        let store = open_store(store_config, config.lock_wait)?;
        let durable = store.durability() == Durability::Durable;
        let last = store.last_position();
        let source = Arc::new(LogSource::new(store.clone()));
        // The bus starts after the store's last event: nothing is appended before the listener
        // is set (no other handle exists yet), so no event is neither in history nor live.
        let bus = Bus::builder()
            .catch_up_source(Arc::clone(&source))
            .last_published(last)
            .build();
        // The listener only queues committed groups for the publisher thread: the writer never
        // waits for the bus, so never for a subscriber's handler.
        let publisher =
            Publisher::start(bus.clone(), Arc::clone(&source), last).map_err(|source| {
                OpenError::Io {
                    path: config.path().to_path_buf(),
                    source,
                }
            })?;
        store.set_commit_listener(Some(publisher.listener()));
        tracing::info!(
            name: "eventlog_opened",
            path = %config.path().display(),
            last_position = last,
            durable,
            "event log opened"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                path: config.path().to_path_buf(),
                store: RwLock::new(Some(store)),
                bus,
                source,
                durable,
                links: Arc::new(SpanLinks::default()),
                publisher,
                consumers: ConsumerNames::default(),
                loads: LoadCounters::default(),
                config,
            }),
        })
    }

    /// Runs `f` with the store, holding off `close` meanwhile.
    fn with_store<R>(
        &self,
        f: impl FnOnce(&Store) -> Result<R, EventLogError>,
    ) -> Result<R, EventLogError> {
        let guard = self
            .inner
            .store
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let store = guard.as_ref().ok_or(EventLogError::Closed)?;
        f(store)
    }

    fn loader<R>(
        &self,
        f: impl FnOnce(&Loader<'_>) -> Result<R, EventLogError>,
    ) -> Result<R, EventLogError> {
        self.with_store(|store| {
            f(&Loader {
                store,
                registry: &self.inner.config.registry,
                counters: &self.inner.loads,
            })
        })
    }

    /// The event log's directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The registry of event types: it validates appends and decodes payloads. Use it to create
    /// events from a type name and JSON ([`EventRegistry::create`]).
    pub fn registry(&self) -> &EventRegistry {
        &self.inner.config.registry
    }

    /// Whether the log was closed.
    pub fn is_closed(&self) -> bool {
        self.inner
            .store
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    // ----- appends -------------------------------------------------------------------------

    /// Appends `events`, all of one aggregate, if the aggregate is at `expected`: all are stored
    /// or none. Versions follow the aggregate's, global positions the log's end. Appending the
    /// same event ids again after an unseen outcome returns the original result (idempotent
    /// retry). In durable mode it returns once the events are on disk.
    ///
    /// # Errors
    ///
    /// [`EventLogError::WrongExpectedVersion`] on a conflict; [`EventLogError::Append`] for an
    /// invalid, empty or too large append or a failed store; [`EventLogError::Closed`].
    pub fn append(
        &self,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, EventLogError> {
        let first = events.first();
        let span = tracing::debug_span!(
            "eventlog_append",
            aggregate_type = first.map_or("", |e| e.aggregate_type.as_str()),
            aggregate_id = first.map_or("", |e| e.aggregate_id.as_str()),
            events = events.len(),
            expected = %expected,
            first_position = Empty,
            last_position = Empty,
        );
        let _entered = span.enter();
        self.inner
            .links
            .record(&span, events.iter().map(|e| e.event_id));
        let result = self.with_store(|store| Ok(store.append(expected, events)?))?;
        span.record("first_position", result.first_position);
        span.record("last_position", result.last_position);
        Ok(result)
    }

    /// Appends to several aggregates atomically, each batch with its own expected version: all
    /// batches are stored, at consecutive positions in the order given, or none is.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{
    ///     AppendBatch, CacheSet, EventContext, EventLog, EventLogConfig, ExpectedVersion, NewEvent,
    /// };
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// let set = CacheSet { cache_key: "k".into(), cache_type: "memory".into(), ttl_seconds: Some(60), size_bytes: 512 };
    /// let event = |id: &str| NewEvent::from_event(id, &set, EventContext::default());
    /// let results = log.append_batches(vec![
    ///     AppendBatch::new(ExpectedVersion::NoStream, vec![event("a")?]),
    ///     AppendBatch::new(ExpectedVersion::NoStream, vec![event("b")?, event("b")?]),
    /// ])?;
    /// assert_eq!((results[1].first_position, results[1].last_version), (2, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`EventLog::append`], plus [`EventLogError::Append`] with
    /// [`AppendError::DuplicateAggregate`](crate::AppendError::DuplicateAggregate) when two
    /// batches name the same aggregate.
    pub fn append_batches(
        &self,
        batches: Vec<AppendBatch>,
    ) -> Result<Vec<AppendResult>, EventLogError> {
        let span = tracing::debug_span!(
            "eventlog_append",
            batches = batches.len(),
            events = batches.iter().map(|b| b.events.len()).sum::<usize>(),
            first_position = Empty,
            last_position = Empty,
        );
        let _entered = span.enter();
        self.inner.links.record(
            &span,
            batches
                .iter()
                .flat_map(|b| b.events.iter().map(|e| e.event_id)),
        );
        let results = self.with_store(|store| Ok(store.append_batches(batches)?))?;
        if let (Some(first), Some(last)) = (results.first(), results.last()) {
            span.record("first_position", first.first_position);
            span.record("last_position", last.last_position);
        }
        Ok(results)
    }

    /// Appends one typed event to aggregate `aggregate_id` (of `E`'s aggregate type).
    ///
    /// # Errors
    ///
    /// [`EventLogError::Codec`] when the payload cannot be encoded; otherwise as
    /// [`EventLog::append`].
    pub fn append_event<E: DomainEvent>(
        &self,
        aggregate_id: impl Into<String>,
        expected: ExpectedVersion,
        event: &E,
        context: EventContext,
    ) -> Result<AppendResult, EventLogError> {
        let event = NewEvent::from_event(aggregate_id, event, context)?;
        self.append(expected, vec![event])
    }

    // ----- reads ---------------------------------------------------------------------------
    //
    // What reads see follows the store's durability: in durable mode only durable events (an
    // append still waiting for its sync is not read, not counted by `stream_version` or
    // `last_position`); in buffered mode every acknowledged event, durable or not.

    /// An aggregate's events, lazily: from a version, forwards or backwards, with a limit. In
    /// durable mode only durable events are read (see [`Durability`]).
    ///
    /// # Errors
    ///
    /// [`EventLogError::Read`] when the index cannot be read (each item is a `Result` too);
    /// [`EventLogError::Closed`].
    pub fn read_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        read: StreamRead,
    ) -> Result<StreamEvents, EventLogError> {
        self.with_store(|s| Ok(s.read_stream(aggregate_type, aggregate_id, read)?))
    }

    /// An aggregate's current version (0: it has no events); in durable mode, its last durable
    /// version.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Read`]; [`EventLogError::Closed`].
    pub fn stream_version(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<u64, EventLogError> {
        self.with_store(|s| Ok(s.stream_version(aggregate_type, aggregate_id)?))
    }

    /// The global log from `from_position` (positions start at 1), lazily, at most `limit`
    /// events, up to [`EventLog::last_position`] when the read began.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Closed`]; each item is a `Result`.
    pub fn read_log(
        &self,
        from_position: u64,
        limit: Option<usize>,
    ) -> Result<LogEvents, EventLogError> {
        self.with_store(|s| Ok(s.read_log(from_position, limit)))
    }

    /// Visits the global log from `from_position`, at most `limit` events, each borrowed where it
    /// lies ([`EventRef`]: no allocation per event), until `visit` returns
    /// [`ControlFlow::Break`]. The fastest way to scan the log (about twice
    /// [`EventLog::read_log`]'s rate in `BENCHMARKS.md`); covers the events up to
    /// [`EventLog::last_position`] when the scan began. Returns how many events were visited. [`EventLog::close`] waits for a
    /// scan in progress to end.
    ///
    /// # Example
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use eventlog::{CacheHit, EventContext, EventLog, EventLogConfig, ExpectedVersion};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.002 };
    /// for id in ["cache-1", "cache-2", "cache-1"] {
    ///     log.append_event(id, ExpectedVersion::Any, &hit, EventContext::default())?;
    /// }
    /// let mut versions = Vec::new();
    /// let visited = log.scan_log(1, None, |event| {
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
    /// [`EventLogError::Read`] when the log cannot be read or does not decode (the scan stops
    /// there); [`EventLogError::Closed`].
    pub fn scan_log(
        &self,
        from_position: u64,
        limit: Option<usize>,
        visit: impl FnMut(EventRef<'_>) -> ControlFlow<()>,
    ) -> Result<u64, EventLogError> {
        self.with_store(|s| Ok(s.scan_log(from_position, limit, visit)?))
    }

    /// Every event of one aggregate type, in log order, from `from_position`, lazily.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Read`]; [`EventLogError::Closed`].
    pub fn read_aggregate_type(
        &self,
        aggregate_type: &str,
        from_position: u64,
        limit: Option<usize>,
    ) -> Result<TypeEvents, EventLogError> {
        self.with_store(|s| Ok(s.read_aggregate_type(aggregate_type, from_position, limit)?))
    }

    /// The aggregates (all, or those of one type) with their current versions.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Read`]; [`EventLogError::Closed`].
    pub fn aggregates(
        &self,
        aggregate_type: Option<&str>,
    ) -> Result<Vec<AggregateInfo>, EventLogError> {
        self.with_store(|s| Ok(s.aggregates(aggregate_type)?))
    }

    /// Position of the last event reads see (0: the log is empty): in durable mode the last
    /// durable one, in buffered mode the last acknowledged one.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Closed`].
    pub fn last_position(&self) -> Result<u64, EventLogError> {
        self.with_store(|s| Ok(s.last_position()))
    }

    /// Position up to which every event is flushed to disk.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Closed`].
    pub fn durable_position(&self) -> Result<u64, EventLogError> {
        self.with_store(|s| Ok(s.durable_position()))
    }

    /// A recorded event as one flat JSON object (metadata, position and decoded payload).
    ///
    /// # Errors
    ///
    /// [`EventLogError::Registry`] when its type is unknown or its payload does not decode.
    pub fn event_to_json(&self, event: &RecordedEvent) -> Result<Value, EventLogError> {
        Ok(self.inner.config.registry.event_to_json(event)?)
    }

    // ----- aggregates and snapshots --------------------------------------------------------

    /// Loads aggregate `aggregate_id` of type `A`: its latest readable snapshot (of
    /// `A::STATE_VERSION`), then the events after it. When at least
    /// [`EventLogConfig::snapshot_every`] events were applied, saves a new snapshot at the
    /// loaded version (a failure to save is logged, not returned). A snapshot that does not
    /// decode is skipped with a warning. An aggregate with no events loads as version 0 with
    /// the default state.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Apply`] when an event does not apply; [`EventLogError::Read`] or
    /// [`EventLogError::Snapshot`] when the store cannot be read; [`EventLogError::Closed`].
    pub fn load<A: Aggregate>(&self, aggregate_id: &str) -> Result<Loaded<A>, EventLogError> {
        let save_every = self.inner.config.snapshot_every;
        self.loader(|l| l.load::<A>(aggregate_id, None, SnapshotUse::Read { save_every }))
    }

    /// Loads aggregate `aggregate_id` as it was at `version`: from the newest snapshot at or
    /// below it, then the events up to it. Never saves a snapshot.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{Cache, CacheHit, EventContext, EventLog, EventLogConfig, ExpectedVersion};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).snapshot_every(Some(2)))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for _ in 0..5 {
    ///     log.append_event("c1", ExpectedVersion::Any, &hit, EventContext::default())?;
    /// }
    /// assert!(log.load::<Cache>("c1")?.snapshot_saved); // a snapshot at version 5
    /// let then = log.load_at::<Cache>("c1", 3)?; // before that snapshot: from the events
    /// assert_eq!((then.version, then.state.hits, then.from_snapshot), (3, 3, None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`EventLogError::VersionNotReached`] when the aggregate is below `version`; otherwise as
    /// [`EventLog::load`].
    pub fn load_at<A: Aggregate>(
        &self,
        aggregate_id: &str,
        version: u64,
    ) -> Result<Loaded<A>, EventLogError> {
        self.loader(|l| {
            l.load::<A>(
                aggregate_id,
                Some(version),
                SnapshotUse::Read { save_every: None },
            )
        })
    }

    /// Rebuilds aggregate `aggregate_id` from all its events, ignoring snapshots (the seed's
    /// replay; also the reference a snapshot-based load must equal).
    ///
    /// # Errors
    ///
    /// As [`EventLog::load`].
    pub fn replay<A: Aggregate>(&self, aggregate_id: &str) -> Result<Loaded<A>, EventLogError> {
        self.loader(|l| l.load::<A>(aggregate_id, None, SnapshotUse::None))
    }

    /// Loads aggregate `aggregate_id` and saves a snapshot of it at its current version now
    /// (unless it has no events, or its latest snapshot is already at that version).
    ///
    /// # Errors
    ///
    /// As [`EventLog::load`], plus [`EventLogError::Snapshot`] or [`EventLogError::Codec`]
    /// when the snapshot cannot be saved.
    pub fn snapshot<A: Aggregate>(&self, aggregate_id: &str) -> Result<Loaded<A>, EventLogError> {
        self.loader(|l| {
            let mut loaded =
                l.load::<A>(aggregate_id, None, SnapshotUse::Read { save_every: None })?;
            if loaded.version > 0 && loaded.from_snapshot != Some(loaded.version) {
                l.save_snapshot(aggregate_id, loaded.version, &loaded.state)?;
                loaded.snapshot_saved = true;
            }
            Ok(loaded)
        })
    }

    /// The folded state of an Omni Writer aggregate as JSON, by aggregate type name
    /// (`article_generation`, `prompt_validation`, `cache`, `retry`, `pipeline`): the latest
    /// state, or as of version `at`. `None` when the aggregate has no events (or `at` is 0).
    /// Never writes (no automatic snapshot): this is what `events-dump state` prints.
    ///
    /// The JSON is the [`Loaded`] value: `aggregate_type`, `aggregate_id`, `version`,
    /// `from_snapshot`, `events_applied`, `snapshot_saved` and `state`.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, RetryAttempted};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// let attempt = RetryAttempted {
    ///     operation: "api_call".into(),
    ///     attempt_number: 2,
    ///     max_attempts: 3,
    ///     delay_seconds: 1.0,
    ///     error_message: "Connection timeout".into(),
    /// };
    /// log.append_event("retry-9", ExpectedVersion::NoStream, &attempt, EventContext::default())?;
    /// let json = log.load_omni_state("retry", "retry-9", None)?.ok_or("no events")?;
    /// assert_eq!(json["version"], 1);
    /// assert_eq!(json["state"]["status"], "retrying");
    /// assert_eq!(json["state"]["last_error"], "Connection timeout");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`EventLogError::NoOmniAggregate`] for another aggregate type; otherwise as
    /// [`EventLog::load_at`].
    pub fn load_omni_state(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        at: Option<u64>,
    ) -> Result<Option<Value>, EventLogError> {
        match aggregate_type {
            ARTICLE_GENERATION => self.omni_json::<ArticleGeneration>(aggregate_id, at),
            PROMPT_VALIDATION => self.omni_json::<PromptValidation>(aggregate_id, at),
            CACHE => self.omni_json::<Cache>(aggregate_id, at),
            RETRY => self.omni_json::<RetryOperation>(aggregate_id, at),
            PIPELINE => self.omni_json::<Pipeline>(aggregate_id, at),
            other => Err(EventLogError::NoOmniAggregate {
                aggregate_type: other.to_string(),
            }),
        }
    }

    fn omni_json<A: Aggregate>(
        &self,
        aggregate_id: &str,
        at: Option<u64>,
    ) -> Result<Option<Value>, EventLogError> {
        let loaded =
            self.loader(|l| l.load::<A>(aggregate_id, at, SnapshotUse::Read { save_every: None }))?;
        if loaded.version == 0 {
            return Ok(None);
        }
        Ok(Some(serde_json::to_value(&loaded)?))
    }

    /// Saves already-encoded state as the aggregate's snapshot at `version` (keeping the newest
    /// few, see the store's `snapshots_to_keep`). [`EventLog::snapshot`] does this for an
    /// [`Aggregate`].
    ///
    /// # Errors
    ///
    /// [`EventLogError::Snapshot`]; [`EventLogError::Closed`].
    pub fn save_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        version: u64,
        schema_version: u16,
        state: &[u8],
    ) -> Result<(), EventLogError> {
        self.with_store(|s| {
            Ok(s.save_snapshot(aggregate_type, aggregate_id, version, schema_version, state)?)
        })
    }

    /// The newest snapshot of the aggregate with this schema version that it still reaches.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Snapshot`]; [`EventLogError::Closed`].
    pub fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        schema_version: u16,
    ) -> Result<Option<Snapshot>, EventLogError> {
        self.with_store(|s| Ok(s.load_snapshot(aggregate_type, aggregate_id, schema_version)?))
    }

    /// Every kept snapshot of the aggregate, oldest first.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Snapshot`]; [`EventLogError::Closed`].
    pub fn snapshots(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<Snapshot>, EventLogError> {
        self.with_store(|s| Ok(s.snapshots(aggregate_type, aggregate_id)?))
    }

    // ----- subscriptions -------------------------------------------------------------------

    fn add(
        &self,
        name: String,
        after: u64,
        options: &SubscriptionOptions,
        subscriber: Box<dyn Subscriber<Delivered>>,
        consumer: Option<ConsumerNames>,
    ) -> Result<Subscription, EventLogError> {
        let id = self
            .inner
            .bus
            .subscribe_boxed(
                name.clone(),
                Some(after),
                options.bus_options(&self.inner.config),
                subscriber,
            )
            .map_err(bus_error)?;
        Ok(Subscription {
            id,
            name,
            bus: self.inner.bus.clone(),
            consumer,
        })
    }

    /// Subscribes `handler` to every event appended after this call (that passes the
    /// options' filter), on a thread named `bus-<name>`.
    ///
    /// Guarantee: each such event is handled once, in global position order, after it is
    /// committed (and flushed, in durable mode), as long as the process lives; none before this
    /// call is handled.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Bus`] for invalid options or a thread that cannot start;
    /// [`EventLogError::Closed`].
    pub fn subscribe<F, E>(
        &self,
        name: impl Into<String>,
        options: impl Into<SubscriptionOptions>,
        handler: F,
    ) -> Result<Subscription, EventLogError>
    where
        F: FnMut(&RecordedEvent) -> Result<(), E> + Send + 'static,
        E: Display,
    {
        let after = self.last_position()?;
        self.subscribe_from(name, Position::After(after), options, handler)
    }

    /// Subscribes `handler` from a past position: the events after it (that pass the filter)
    /// are read from the store, then live events follow, with no gap and no duplicate at the
    /// hand-over even while appends race with it.
    ///
    /// Guarantee: every event after `from`, in global position order, each once while the
    /// process lives, each only once it is committed.
    ///
    /// # Errors
    ///
    /// As [`EventLog::subscribe`].
    pub fn subscribe_from<F, E>(
        &self,
        name: impl Into<String>,
        from: Position,
        options: impl Into<SubscriptionOptions>,
        handler: F,
    ) -> Result<Subscription, EventLogError>
    where
        F: FnMut(&RecordedEvent) -> Result<(), E> + Send + 'static,
        E: Display,
    {
        let name = name.into();
        let options = options.into();
        let subscriber = Plain {
            name: name.clone(),
            links: Arc::clone(&self.inner.links),
            handler,
        };
        self.with_store(|_| Ok(()))?;
        self.add(name, from.after(), &options, Box::new(subscriber), None)
    }

    /// Subscribes `handler` under a durable `name`: it starts after the position committed
    /// under that name (from the start the first time), and after each event it handles
    /// successfully, commits that event's position in the store.
    ///
    /// Guarantee: after a restart (or a crash) it resumes right after the last event it
    /// acknowledged, i.e. whose handler returned `Ok` and whose position was committed. An event
    /// whose handler ran but whose commit did not reach disk (the process died in between, or
    /// commits are not synced, see [`SubscriptionOptions::sync_commits`]) is delivered again:
    /// at-least-once across crashes, exactly once while the process lives. For effects that must
    /// be applied exactly once across crashes, keep them in the store with
    /// [`EventLog::project`]. One durable subscription or projection per name runs at a time.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{
    ///     CacheMiss, EventContext, EventLog, EventLogConfig, ExpectedVersion, RecordedEvent,
    ///     SubscriptionFilter,
    /// };
    ///
    /// let dir = tempfile::tempdir()?;
    /// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "expired".into() };
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// log.subscribe_durable("warmer", SubscriptionFilter::all(), |_: &RecordedEvent| Ok::<(), String>(()))?;
    /// log.append_event("c1", ExpectedVersion::Any, &miss, EventContext::default())?;
    /// log.close()?;
    ///
    /// // After a restart it resumes after position 1: only the new event is handled.
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// assert_eq!(log.consumer("warmer")?.map(|c| c.position), Some(1));
    /// log.append_event("c1", ExpectedVersion::Any, &miss, EventContext::default())?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// log.subscribe_durable("warmer", SubscriptionFilter::all(), move |e: &RecordedEvent| tx.send(e.position))?;
    /// assert_eq!(rx.recv()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`EventLogError::DuplicateConsumer`] when one of this name runs already;
    /// [`EventLogError::Store`] when its position cannot be read; otherwise as
    /// [`EventLog::subscribe`].
    pub fn subscribe_durable<F, E>(
        &self,
        name: impl Into<String>,
        options: impl Into<SubscriptionOptions>,
        handler: F,
    ) -> Result<Subscription, EventLogError>
    where
        F: FnMut(&RecordedEvent) -> Result<(), E> + Send + 'static,
        E: Display,
    {
        let name = name.into();
        let options = options.into();
        self.with_store(|store| {
            reserve(&self.inner.consumers, &name)?;
            let result =
                store
                    .consumer(&name)
                    .map_err(EventLogError::from)
                    .and_then(|checkpoint| {
                        let subscriber = Durable {
                            name: name.clone(),
                            links: Arc::clone(&self.inner.links),
                            store: store.clone(),
                            sync: options.sync(self.inner.durable),
                            handled_uncommitted: None,
                            handler,
                        };
                        let after = checkpoint.map_or(0, |c| c.position);
                        self.add(
                            name.clone(),
                            after,
                            &options,
                            Box::new(subscriber),
                            Some(Arc::clone(&self.inner.consumers)),
                        )
                    });
            if result.is_err() {
                release(&self.inner.consumers, &name);
            }
            result
        })
    }

    /// Runs projection `P` under the durable `name`: restores its state and position from the
    /// store (a state of another [`Projection::STATE_VERSION`] is dropped and rebuilt from the
    /// start), then applies every later event that passes the filter, committing its state and
    /// position together after each one, in one atomic store write.
    ///
    /// Guarantee: the stored state is always the fold of exactly the events up to the stored
    /// position: a crash (even `kill -9`) never applies an event twice nor skips one.
    ///
    /// # Errors
    ///
    /// [`EventLogError::ProjectionState`] when the stored state does not decode (or the name
    /// belongs to a durable subscription); otherwise as [`EventLog::subscribe_durable`].
    pub fn project<P: Projection>(
        &self,
        name: impl Into<String>,
        options: impl Into<SubscriptionOptions>,
    ) -> Result<ProjectionHandle<P>, EventLogError> {
        let name = name.into();
        let options = options.into();
        self.with_store(|store| {
            reserve(&self.inner.consumers, &name)?;
            let result = self.start_projection::<P>(store, &name, &options);
            if result.is_err() {
                release(&self.inner.consumers, &name);
            }
            result
        })
    }

    fn start_projection<P: Projection>(
        &self,
        store: &Store,
        name: &str,
        options: &SubscriptionOptions,
    ) -> Result<ProjectionHandle<P>, EventLogError> {
        let (after, state, committed) = match store.consumer(name)? {
            None => (0, P::default(), Vec::new()),
            Some(checkpoint) => match projection::decode_state::<P>(name, &checkpoint.state)? {
                StoredState::State(state) => (checkpoint.position, state, checkpoint.state),
                StoredState::Empty if checkpoint.position == 0 => (0, P::default(), Vec::new()),
                StoredState::Empty => {
                    return Err(EventLogError::ProjectionState {
                        name: name.to_string(),
                        reason: format!(
                            "a position ({}) but no state: the name belongs to a durable subscription",
                            checkpoint.position
                        ),
                    });
                }
                StoredState::OtherVersion(found) => {
                    tracing::warn!(
                        name: "eventlog_projection_rebuilt",
                        projection = name,
                        stored_version = found,
                        state_version = P::STATE_VERSION,
                        "stored projection state has another version; rebuilding from the start"
                    );
                    (0, P::default(), Vec::new())
                }
            },
        };
        let shared = Arc::new(Mutex::new(projection::Shared {
            position: after,
            state,
        }));
        let runner = Runner {
            name: name.to_string(),
            store: store.clone(),
            registry: Arc::clone(&self.inner.config.registry),
            links: Arc::clone(&self.inner.links),
            sync: options.sync(self.inner.durable),
            shared: Arc::clone(&shared),
            committed,
            uncommitted: None,
        };
        let subscription = self.add(
            name.to_string(),
            after,
            options,
            Box::new(runner),
            Some(Arc::clone(&self.inner.consumers)),
        )?;
        Ok(ProjectionHandle {
            subscription,
            shared,
        })
    }

    /// The state and position projection `P` last committed under `name`, read from the store
    /// (`None` if it never committed, or committed another state version).
    ///
    /// # Errors
    ///
    /// [`EventLogError::ProjectionState`] when the stored state does not decode;
    /// [`EventLogError::Store`]; [`EventLogError::Closed`].
    pub fn projection_state<P: Projection>(
        &self,
        name: &str,
    ) -> Result<Option<(u64, P)>, EventLogError> {
        let Some(checkpoint) = self.consumer(name)? else {
            return Ok(None);
        };
        match projection::decode_state::<P>(name, &checkpoint.state)? {
            StoredState::State(state) => Ok(Some((checkpoint.position, state))),
            StoredState::Empty | StoredState::OtherVersion(_) => Ok(None),
        }
    }

    /// A durable consumer's committed position and state (durable subscriptions and
    /// projections), if it committed any.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Store`]; [`EventLogError::Closed`].
    pub fn consumer(&self, name: &str) -> Result<Option<ConsumerCheckpoint>, EventLogError> {
        self.with_store(|s| Ok(s.consumer(name)?))
    }

    /// Every durable consumer's name and committed position.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Store`]; [`EventLogError::Closed`].
    pub fn consumers(&self) -> Result<Vec<(String, u64)>, EventLogError> {
        self.with_store(|s| Ok(s.consumers()?))
    }

    /// Forgets a durable consumer's position and state (the next durable subscription or
    /// projection of that name starts from the beginning).
    ///
    /// # Errors
    ///
    /// [`EventLogError::DuplicateConsumer`] while one of that name runs;
    /// [`EventLogError::Store`]; [`EventLogError::Closed`].
    pub fn remove_consumer(&self, name: &str) -> Result<(), EventLogError> {
        self.with_store(|s| {
            reserve(&self.inner.consumers, name)?;
            let result = s.remove_consumer(name);
            release(&self.inner.consumers, name);
            Ok(result?)
        })
    }

    /// The health of every subscription, in subscription order.
    pub fn health(&self) -> Vec<SubscriberHealth> {
        self.inner.bus.health()
    }

    // ----- store-wide ----------------------------------------------------------------------

    /// Makes every acknowledged append durable; returns the durable position.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Store`] when the store stopped writing; [`EventLogError::Closed`].
    pub fn flush(&self) -> Result<u64, EventLogError> {
        self.with_store(|s| Ok(s.flush()?))
    }

    /// Checks the hash chain, every aggregate's versions, every index and snapshot, and reports
    /// what is wrong and where.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Store`] when the store cannot be read (damage is in the report);
    /// [`EventLogError::Closed`].
    pub fn verify(&self) -> Result<VerifyReport, EventLogError> {
        self.with_store(|s| Ok(s.verify()?))
    }

    /// The head of the log's hash chain over everything acknowledged so far: record it
    /// elsewhere to pin the history before it (see `docs/design.md`).
    ///
    /// # Errors
    ///
    /// [`EventLogError::Store`] when the store cannot be read or is not writing;
    /// [`EventLogError::Closed`].
    pub fn chain_head(&self) -> Result<ChainHead, EventLogError> {
        self.with_store(|s| Ok(s.chain_head()?))
    }

    /// [`EventLog::verify`] reporting progress: `(position checked, last position)`.
    ///
    /// # Errors
    ///
    /// As [`EventLog::verify`].
    pub fn verify_with(
        &self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<VerifyReport, EventLogError> {
        self.with_store(|s| Ok(s.verify_with(progress)?))
    }

    /// Exports a consistent, verifiable checkpoint of the whole store to `path` while appends
    /// continue.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Checkpoint`]; [`EventLogError::Closed`].
    pub fn export_checkpoint(&self, path: &Path) -> Result<CheckpointManifest, EventLogError> {
        self.with_store(|s| Ok(s.export_checkpoint(path)?))
    }

    /// [`EventLog::export_checkpoint`] reporting progress in events.
    ///
    /// # Errors
    ///
    /// As [`EventLog::export_checkpoint`].
    pub fn export_checkpoint_with(
        &self,
        path: &Path,
        progress: Progress<'_>,
    ) -> Result<CheckpointManifest, EventLogError> {
        self.with_store(|s| Ok(s.export_checkpoint_with(path, progress)?))
    }

    /// Exports a checkpoint into the configured checkpoint directory, named by time and
    /// position.
    ///
    /// # Errors
    ///
    /// As [`EventLog::export_checkpoint`].
    pub fn checkpoint(&self) -> Result<(PathBuf, CheckpointManifest), EventLogError> {
        self.with_store(|s| Ok(s.checkpoint()?))
    }

    /// The checkpoints in the configured checkpoint directory, oldest first.
    ///
    /// # Errors
    ///
    /// As [`EventLog::export_checkpoint`].
    pub fn list_checkpoints(&self) -> Result<Vec<CheckpointInfo>, EventLogError> {
        self.with_store(|s| Ok(s.list_checkpoints()?))
    }

    /// Deletes this store's checkpoints in the configured directory older than `days` days,
    /// except its newest one that passes full verification; other stores' files in the directory
    /// are left alone. Returns what was deleted (see `Store::prune_checkpoints`).
    ///
    /// # Errors
    ///
    /// As [`EventLog::export_checkpoint`].
    pub fn prune_checkpoints(&self, days: u32) -> Result<Vec<PathBuf>, EventLogError> {
        self.with_store(|s| Ok(s.prune_checkpoints(days)?))
    }

    /// The store's metrics, every subscription's health and the aggregate load counters.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventLog, EventLogConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// let json = serde_json::to_value(log.metrics()?)?;
    /// assert_eq!(json["store"]["total_events_stored"], 0);
    /// assert_eq!(json["bus"]["subscriptions"], 0);
    /// assert_eq!(json["aggregates"]["snapshot_every"], 1000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`EventLogError::Closed`].
    pub fn metrics(&self) -> Result<EventLogMetrics, EventLogError> {
        let store = self.with_store(|s| Ok(s.metrics()))?;
        let bus = &self.inner.bus;
        let loads = &self.inner.loads;
        let get = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        Ok(EventLogMetrics {
            store,
            bus: BusMetrics::new(bus.last_published(), bus.health()),
            aggregates: AggregateMetrics {
                snapshot_every: self.inner.config.snapshot_every,
                loads: get(&loads.loads),
                events_applied: get(&loads.events_applied),
                loads_from_snapshot: get(&loads.loads_from_snapshot),
                snapshots_saved: get(&loads.snapshots_saved),
                snapshots_unreadable: get(&loads.snapshots_unreadable),
                snapshot_save_failures: get(&loads.snapshot_save_failures),
            },
        })
    }

    /// Closes the event log for every handle: refuses new calls, waits for calls in progress,
    /// hands every acknowledged event to the bus, lets every subscription handle all of them
    /// (lagging ones catch up from the store first), joins every thread, and closes the store.
    /// Returns one report per subscription. Dropping the last handle does the same.
    ///
    /// # Errors
    ///
    /// [`EventLogError::Closed`] when it was already closed; [`EventLogError::Store`] when the
    /// store's final writes failed (everything is closed all the same).
    pub fn close(self) -> Result<Vec<SubscriberReport>, EventLogError> {
        self.inner.shutdown()
    }
}
