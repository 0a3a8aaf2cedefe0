//! [`EventLog`]: the one handle. It opens the store, builds the bus on top of it, publishes
//! every committed group of events from its publisher thread (fed by the store's writer thread,
//! which never waits for it), and closes them in order. Its verbs live beside their subject:
//! appends in `append.rs`, reads in `read.rs`, loads in `aggregate.rs`, subscriptions in
//! `subscribe.rs`, administration in `admin.rs`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use events_bus::{Bus, SubscriberReport};
use events_core::{EventRegistry, Position};
use events_sled::{Durability, OpenError as StoreOpenError, Store, StoreConfig};

use crate::admin::Admin;
use crate::aggregate::{LoadCounters, Loader};
use crate::config::EventLogConfig;
use crate::error::{AdminError, Closed, OpenError};
use crate::publisher::Publisher;
use crate::replicate::Replications;
use crate::subscription::{ConsumerNames, Delivered, LogSource};
use crate::trace::SpanLinks;

/// How long `close` waits for the publisher thread to hand the last committed events to the
/// bus (and then to end).
const CLOSE_PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Inner {
    /// `None` once closed. Every call holds the read lock while it uses the store, so `close`
    /// (which takes the write lock) waits for calls in progress and no append slips past it.
    pub(crate) store: RwLock<Option<Store>>,
    pub(crate) bus: Bus<Delivered>,
    pub(crate) source: Arc<LogSource>,
    pub(crate) config: EventLogConfig,
    pub(crate) durable: bool,
    pub(crate) path: PathBuf,
    pub(crate) links: Arc<SpanLinks>,
    pub(crate) publisher: Publisher,
    pub(crate) consumers: ConsumerNames,
    pub(crate) loads: LoadCounters,
    pub(crate) replications: Replications,
}

impl Inner {
    /// Closes everything, in order: no more calls; every acknowledged event committed and handed
    /// to the bus; every subscriber drained and joined; the store closed.
    fn shutdown(&self) -> Result<Vec<SubscriberReport>, AdminError> {
        let store = self
            .store
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or(AdminError::Closed)?;
        let span = tracing::info_span!("eventlog_close", path = %self.path.display());
        let _entered = span.enter();
        let mut first_error: Option<AdminError> = None;
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
            Ok(_) | Err(AdminError::Closed) => {}
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
/// [`Durability::Buffered`] mode "committed" means written to the log's segment file, not yet synced: a crash can
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
///     EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, SubscriptionFilter,
/// };
/// use omni_domain::CacheHit;
///
/// let dir = tempfile::tempdir()?;
/// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// log.subscribe("audit", SubscriptionFilter::all(), move |event: &eventlog::RecordedEvent| {
///     sink.lock().map_err(|_| "poisoned")?.push(event.position);
///     Ok::<(), &str>(())
/// })?;
///
/// let hit = CacheHit { cache_key: "prompt:1".into(), cache_type: "memory".into(), response_time: 0.002 };
/// let stream = StreamId::of::<CacheHit>("cache-1");
/// let result = log.append_event(&stream, ExpectedVersion::NoStream, &hit, EventContext::new("omni-writer"))?;
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
fn open_store(config: StoreConfig, lock_wait: Duration) -> Result<Store, StoreOpenError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match Store::open(config.clone()) {
            Err(StoreOpenError::Locked { path }) => {
                let waited = started.elapsed();
                if waited >= lock_wait {
                    return Err(StoreOpenError::Locked { path });
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
            other => return other,
        }
    }
}

impl EventLog {
    /// Opens (creating if needed) the event log described by `config`: the store, then the bus
    /// on top of it, and the publisher thread that feeds the bus with committed events.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventLog, EventLogConfig, Position};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// assert_eq!(log.last_position()?, Position::START);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidConfig`] for a facade or bus setting out of range;
    /// [`OpenError::Store`] when the store cannot be opened (a store setting out of range,
    /// the directory locked by another process, damaged files, a format-1 store to migrate);
    /// [`OpenError::Thread`] when the publisher thread cannot start.
    pub fn open(config: EventLogConfig) -> Result<Self, OpenError> {
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
            Publisher::start(bus.clone(), Arc::clone(&source), last).map_err(OpenError::Thread)?;
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
                replications: Replications::default(),
                config,
            }),
        })
    }

    /// Runs `f` with the store, holding off `close` meanwhile; `E::from(Closed)` once closed.
    pub(crate) fn with_store<R, E: From<Closed>>(
        &self,
        f: impl FnOnce(&Store) -> Result<R, E>,
    ) -> Result<R, E> {
        let guard = self
            .inner
            .store
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let store = guard.as_ref().ok_or(Closed)?;
        f(store)
    }

    pub(crate) fn loader<R, E: From<Closed>>(
        &self,
        f: impl FnOnce(&Loader<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        self.with_store(|store| {
            f(&Loader {
                store,
                registry: &self.inner.config.registry,
                counters: &self.inner.loads,
            })
        })
    }

    /// The event log's directory.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventLog, EventLogConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// assert_eq!(log.path(), dir.path());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The registry of event types: it validates appends and decodes payloads. Use it to create
    /// events from a type name and JSON ([`EventRegistry::create`]).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// assert!(log.registry().contains("cache_hit"));
    /// let payload = serde_json::json!({ "cache_key": "k", "cache_type": "memory", "response_time": 0.001 });
    /// let event = log.registry().create("cache_hit", "c1", payload, EventContext::default())?;
    /// assert_eq!((event.aggregate_type.as_str(), event.aggregate_id.as_str()), ("cache", "c1"));
    /// let unknown = log.registry().create("no_such_type", "c1", serde_json::json!({}), EventContext::default());
    /// assert!(unknown.is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn registry(&self) -> &EventRegistry {
        &self.inner.config.registry
    }

    /// The administrative view: checkpoints, verification, durable consumers, raw snapshots,
    /// subscription health and metrics.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventLog, EventLogConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// assert!(log.admin().verify()?.ok);
    /// assert!(log.admin().consumers()?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn admin(&self) -> Admin<'_> {
        Admin::new(self)
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Whether the log was closed.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventLog, EventLogConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// let other = log.clone();
    /// assert!(!other.is_closed());
    /// log.close()?; // closes the log for every handle
    /// assert!(other.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner
            .store
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    /// Makes every acknowledged append durable; returns the durable position.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{Durability, EventLog, EventLogConfig, Position};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).durability(Durability::Buffered))?;
    /// assert_eq!(log.flush()?, Position::START);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`] when the store stopped writing; [`AdminError::Closed`].
    pub fn flush(&self) -> Result<Position, AdminError> {
        self.with_store(|s| Ok(Position(s.flush()?)))
    }

    /// Closes the event log for every handle: refuses new calls, waits for calls in progress,
    /// hands every acknowledged event to the bus, lets every subscription handle all of them
    /// (lagging ones catch up from the store first), joins every thread, and closes the store.
    /// Returns one report per subscription. Dropping the last handle does the same.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventLog, EventLogConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// let other = log.clone();
    /// assert!(log.close()?.is_empty()); // no subscription: no report
    /// assert!(other.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`AdminError::Closed`] when it was already closed; [`AdminError::Store`] when the
    /// store's final writes failed (everything is closed all the same).
    pub fn close(self) -> Result<Vec<SubscriberReport>, AdminError> {
        self.inner.shutdown()
    }
}
