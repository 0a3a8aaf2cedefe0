//! Subscriptions: what they see ([`SubscriptionFilter`]), how they run
//! ([`SubscriptionOptions`]) and their handle ([`Subscription`]); the message the bus carries
//! ([`Delivered`]) and where lagging subscribers read from ([`LogSource`]).

use std::collections::HashSet;
use std::fmt::{self, Display};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use events_bus::{
    Bus, CatchUpSource, Sequenced, SourceError, Subscriber, SubscriberError, SubscriberHealth,
    SubscriberId, SubscriberOptions, SubscriberReport, SubscriberSettings,
};
use events_core::RecordedEvent;
use events_sled::Store;
use serde::Serialize;

use crate::config::EventLogConfig;
use crate::error::SubscribeError;
use crate::trace::SpanLinks;

/// An event as the bus carries it: shared, sequenced by its global position. (The bus's
/// `Sequenced` cannot be implemented on `RecordedEvent` itself, a foreign type.)
#[derive(Debug, Clone)]
pub(crate) struct Delivered(pub(crate) Arc<RecordedEvent>);

impl Sequenced for Delivered {
    fn sequence(&self) -> u64 {
        self.0.position
    }
}

/// The bus's catch-up source: the store's global log. Emptied when the event log closes, so
/// a handle kept on a closed subscription does not keep the store's files open.
#[derive(Debug)]
pub(crate) struct LogSource {
    store: RwLock<Option<Store>>,
}

impl LogSource {
    pub(crate) fn new(store: Store) -> Self {
        Self {
            store: RwLock::new(Some(store)),
        }
    }

    pub(crate) fn clear(&self) {
        let store = self
            .store
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(store);
    }
}

impl CatchUpSource<Delivered> for LogSource {
    fn read_after(&self, after_sequence: u64, max: usize) -> Result<Vec<Delivered>, SourceError> {
        let store = self
            .store
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| SourceError::new("the event log is closed"))?;
        store
            .read_log(after_sequence.saturating_add(1), Some(max))
            .map(|event| {
                event
                    .map(|e| Delivered(Arc::new(e)))
                    .map_err(SourceError::from_error)
            })
            .collect()
    }
}

/// Which events a subscription handles: by aggregate type and/or event type. An empty filter
/// ([`SubscriptionFilter::all`], the default) handles every event; each list that is set must
/// contain the event's type for it to be handled. Events left out still advance the
/// subscription (they are counted as `filtered` in its health).
///
/// # Example
///
/// ```
/// use eventlog::SubscriptionFilter;
///
/// let filter = SubscriptionFilter::all()
///     .aggregate_type("pipeline")
///     .event_type("pipeline_completed")
///     .event_type("pipeline_failed");
/// assert_eq!(filter.aggregate_types.as_deref(), Some(&["pipeline".to_string()][..]));
/// assert_eq!(filter.event_types.as_ref().map(Vec::len), Some(2));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubscriptionFilter {
    /// Handle only events of these aggregate types. Default = `None`: any aggregate type.
    pub aggregate_types: Option<Vec<String>>,
    /// Handle only events of these event types. Default = `None`: any event type.
    pub event_types: Option<Vec<String>>,
}

impl SubscriptionFilter {
    /// Every event.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, RecordedEvent, StreamId, SubscriptionFilter};
    /// use omni_domain::{CacheHit, CacheMiss};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "cold".into() };
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// log.subscribe("everything", SubscriptionFilter::all(), move |e: &RecordedEvent| {
    ///     tx.send(e.metadata.event_type.clone())
    /// })?;
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// log.append_event(&StreamId::of::<CacheMiss>("c1"), ExpectedVersion::Any, &miss, EventContext::default())?;
    /// assert_eq!([rx.recv()?, rx.recv()?], ["cache_hit", "cache_miss"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn all() -> Self {
        Self::default()
    }

    /// Also accept events of `aggregate_type` (the first call restricts the filter to it).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, RecordedEvent, StreamId, SubscriptionFilter};
    /// use omni_domain::{CacheHit, RetryFailed};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let failed = RetryFailed { operation: "call".into(), total_attempts: 3, final_error: "down".into(), total_time: 1.0 };
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let retries = SubscriptionFilter::all().aggregate_type("retry");
    /// log.subscribe("retries", retries, move |e: &RecordedEvent| tx.send(e.position))?;
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// log.append_event(&StreamId::of::<RetryFailed>("r1"), ExpectedVersion::Any, &failed, EventContext::default())?;
    /// assert_eq!(rx.recv()?, 2); // the cache event at position 1 was left out
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn aggregate_type(mut self, aggregate_type: impl Into<String>) -> Self {
        self.aggregate_types
            .get_or_insert_with(Vec::new)
            .push(aggregate_type.into());
        self
    }

    /// Also accept events of `event_type` (the first call restricts the filter to it).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, RecordedEvent, StreamId, SubscriptionFilter};
    /// use omni_domain::{CacheHit, CacheMiss};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "cold".into() };
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let misses = SubscriptionFilter::all().event_type("cache_miss");
    /// log.subscribe("misses", misses, move |e: &RecordedEvent| tx.send(e.position))?;
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// log.append_event(&StreamId::of::<CacheMiss>("c1"), ExpectedVersion::Any, &miss, EventContext::default())?;
    /// assert_eq!(rx.recv()?, 2); // the hit at position 1 was left out
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_types
            .get_or_insert_with(Vec::new)
            .push(event_type.into());
        self
    }

    /// Whether the filter lets every event through.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::SubscriptionFilter;
    ///
    /// assert!(SubscriptionFilter::all().is_all());
    /// assert!(!SubscriptionFilter::all().aggregate_type("cache").is_all());
    /// assert!(!SubscriptionFilter::all().event_type("cache_hit").is_all());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_all(&self) -> bool {
        self.aggregate_types.is_none() && self.event_types.is_none()
    }

    /// Whether `event` passes the filter.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, Position, StreamId, SubscriptionFilter};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// let event = log.read_log(Position::START, None)?.next().ok_or("empty")??;
    /// assert!(SubscriptionFilter::all().aggregate_type("retry").aggregate_type("cache").matches(&event));
    /// assert!(SubscriptionFilter::all().event_type("cache_hit").matches(&event));
    /// assert!(!SubscriptionFilter::all().aggregate_type("cache").event_type("cache_miss").matches(&event));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        let accepts = |list: &Option<Vec<String>>, value: &str| {
            list.as_ref().is_none_or(|l| l.iter().any(|v| v == value))
        };
        accepts(&self.aggregate_types, &event.metadata.aggregate_type)
            && accepts(&self.event_types, &event.metadata.event_type)
    }
}

/// Changes a subscription's [`SubscriberSettings`] over the event log's defaults.
type SettingsChange = Arc<dyn Fn(SubscriberSettings) -> SubscriberSettings + Send + Sync>;

/// How one subscription runs. Every setting left unset takes the event log's default from
/// [`EventLogConfig`]. A [`SubscriptionFilter`] converts into options with only that filter set,
/// so the subscribe methods take either.
///
/// # Example
///
/// ```
/// use eventlog::{Backpressure, FailurePolicy, SubscriptionFilter, SubscriptionOptions};
///
/// let options = SubscriptionOptions::new()
///     .filter(SubscriptionFilter::all().aggregate_type("cache"))
///     .bus(|b| b.capacity(64).backpressure(Backpressure::CatchUp).failure_policy(FailurePolicy::Skip))
///     .sync_commits(false);
/// let from_filter: SubscriptionOptions = SubscriptionFilter::all().event_type("cache_hit").into();
/// # let _ = (options, from_filter);
/// ```
#[derive(Clone, Default)]
pub struct SubscriptionOptions {
    pub(crate) filter: SubscriptionFilter,
    bus: Option<SettingsChange>,
    sync_commits: Option<bool>,
}

impl fmt::Debug for SubscriptionOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionOptions")
            .field("filter", &self.filter)
            .field("bus", &self.bus.as_ref().map(|_| "Fn(SubscriberSettings)"))
            .field("sync_commits", &self.sync_commits)
            .finish()
    }
}

impl From<SubscriptionFilter> for SubscriptionOptions {
    fn from(filter: SubscriptionFilter) -> Self {
        Self::new().filter(filter)
    }
}

impl SubscriptionOptions {
    /// Every setting at the event log's default, no filter.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, RecordedEvent, StreamId, SubscriptionOptions};
    /// use omni_domain::{CacheHit, CacheMiss};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "cold".into() };
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// log.subscribe("all", SubscriptionOptions::new(), move |e: &RecordedEvent| tx.send(e.position))?;
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// log.append_event(&StreamId::of::<CacheMiss>("c1"), ExpectedVersion::Any, &miss, EventContext::default())?;
    /// assert_eq!((rx.recv()?, rx.recv()?), (1, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Which events are handled. Default = [`SubscriptionFilter::all`].
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, RecordedEvent, StreamId, SubscriptionFilter, SubscriptionOptions};
    /// use omni_domain::{CacheHit, CacheMiss};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "cold".into() };
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let options = SubscriptionOptions::new().filter(SubscriptionFilter::all().event_type("cache_miss"));
    /// log.subscribe("misses", options, move |e: &RecordedEvent| tx.send(e.position))?;
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// log.append_event(&StreamId::of::<CacheMiss>("c1"), ExpectedVersion::Any, &miss, EventContext::default())?;
    /// assert_eq!(rx.recv()?, 2); // the hit at position 1 was left out
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn filter(mut self, filter: SubscriptionFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Changes this subscription's bus settings (capacity, backpressure, failure policy,
    /// catch-up batch): `change` gets the event log's defaults
    /// ([`EventLogConfig::bus`](crate::EventLogConfig::bus)) and returns this subscription's,
    /// e.g. `.bus(|b| b.capacity(64))`. Default = the event log's defaults unchanged.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventLog, EventLogConfig, RecordedEvent, SubscribeError, SubscriptionOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).bus(|b| b.capacity(256)))?;
    /// let ignore = |_: &RecordedEvent| Ok::<(), String>(());
    /// let small = log.subscribe("small", SubscriptionOptions::new().bus(|b| b.capacity(8)), ignore)?;
    /// assert_eq!(small.health().ok_or("not running")?.capacity, 8);
    /// let default = log.subscribe("default", SubscriptionOptions::new(), ignore)?;
    /// assert_eq!(default.health().ok_or("not running")?.capacity, 256);
    /// let empty = log.subscribe("empty", SubscriptionOptions::new().bus(|b| b.capacity(0)), ignore);
    /// assert!(matches!(empty, Err(SubscribeError::Bus(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn bus(
        mut self,
        change: impl Fn(SubscriberSettings) -> SubscriberSettings + Send + Sync + 'static,
    ) -> Self {
        self.bus = Some(Arc::new(change));
        self
    }

    /// Durable subscriptions and projections only: whether each committed position (and state)
    /// is flushed to disk before the next event is handled. Without it a commit reaches disk
    /// with the store's next flush, so after a crash the subscription may see again events it
    /// had acknowledged (a projection's state goes back with its position: never applied twice).
    /// Default = true when the store is [`Durability::Durable`](crate::Durability::Durable),
    /// false when it is buffered.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{Durability, EventContext, EventLog, EventLogConfig, ExpectedVersion, RecordedEvent};
    /// use eventlog::{StreamId, SubscriptionOptions};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let config = EventLogConfig::new(dir.path()).registry(omni_domain::registry());
    /// let log = EventLog::open(config.durability(Durability::Buffered))?;
    /// // Buffered store, but every committed position flushed to disk before the next event.
    /// let options = SubscriptionOptions::new().sync_commits(true);
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let indexer = log.subscribe_durable("indexer", options, move |e: &RecordedEvent| tx.send(e.position))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// assert_eq!(rx.recv()?, 1);
    /// indexer.unsubscribe()?;
    /// assert_eq!(log.admin().consumer("indexer")?.ok_or("no commit")?.position, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn sync_commits(mut self, sync: bool) -> Self {
        self.sync_commits = Some(sync);
        self
    }

    /// The bus's options: these settings over the config's defaults, and the filter.
    pub(crate) fn bus_options(&self, config: &EventLogConfig) -> SubscriberOptions<Delivered> {
        let settings = match &self.bus {
            Some(change) => change(config.bus),
            None => config.bus,
        };
        let mut options = SubscriberOptions::with_settings(settings);
        if !self.filter.is_all() {
            let filter = self.filter.clone();
            options = options.filter(move |d: &Delivered| filter.matches(&d.0));
        }
        options
    }

    pub(crate) fn sync(&self, store_durable: bool) -> bool {
        self.sync_commits.unwrap_or(store_durable)
    }
}

/// The names of the durable subscriptions and projections running in this process.
pub(crate) type ConsumerNames = Arc<Mutex<HashSet<String>>>;

/// Reserves a consumer name; released by the returned guard's owner on unsubscribe.
/// Returns whether the name was free.
pub(crate) fn reserve(names: &ConsumerNames, name: &str) -> bool {
    names
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(name.to_string())
}

pub(crate) fn release(names: &ConsumerNames, name: &str) {
    names
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(name);
}

/// A running subscription. Dropping the handle does not stop it: it runs until
/// [`Subscription::unsubscribe`] or until the event log closes.
///
/// # Example
///
/// ```
/// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, RecordedEvent, StreamId};
/// use omni_domain::CacheHit;
///
/// let dir = tempfile::tempdir()?;
/// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// let subscription = log.subscribe("watcher", eventlog::SubscriptionFilter::all(), move |e: &RecordedEvent| {
///     tx.send(e.position)
/// })?;
/// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
/// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
/// assert_eq!(rx.recv()?, 1);
/// assert!(subscription.health().is_some());
/// let report = subscription.unsubscribe()?;
/// assert_eq!((report.name.as_str(), report.counts.delivered), ("watcher", 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Subscription {
    pub(crate) id: SubscriberId,
    pub(crate) name: String,
    pub(crate) bus: Bus<Delivered>,
    /// Set for durable subscriptions and projections: their name is released on unsubscribe.
    pub(crate) consumer: Option<ConsumerNames>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("durable", &self.consumer.is_some())
            .finish()
    }
}

impl Subscription {
    /// The subscription's id, unique within its event log.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventLog, EventLogConfig, RecordedEvent, SubscriptionFilter};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// let ignore = |_: &RecordedEvent| Ok::<(), String>(());
    /// let a = log.subscribe("a", SubscriptionFilter::all(), ignore)?;
    /// let b = log.subscribe("b", SubscriptionFilter::all(), ignore)?;
    /// assert_ne!(a.id(), b.id());
    /// let b_health = log.health().into_iter().find(|h| h.id == b.id()).ok_or("not listed")?;
    /// assert_eq!(b_health.name, "b");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn id(&self) -> SubscriberId {
        self.id
    }

    /// Its name (its thread is named `bus-<name>`).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, RecordedEvent, StreamId, SubscriptionFilter};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let watcher = log.subscribe("watcher", SubscriptionFilter::all(), move |_: &RecordedEvent| {
    ///     tx.send(std::thread::current().name().map(String::from))
    /// })?;
    /// assert_eq!(watcher.name(), "watcher");
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// assert_eq!(rx.recv()?.as_deref(), Some("bus-watcher"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How it is doing now (`None` once it was unsubscribed or the log closed).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, RecordedEvent, StreamId, SubscriptionFilter};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let watcher = log.subscribe("watcher", SubscriptionFilter::all(), move |e: &RecordedEvent| tx.send(e.position))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// assert_eq!(rx.recv()?, 1);
    /// let health = watcher.health().ok_or("not running")?;
    /// assert_eq!((health.name.as_str(), health.state.is_terminal()), ("watcher", false));
    /// log.close()?;
    /// assert!(watcher.health().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn health(&self) -> Option<SubscriberHealth> {
        self.bus.health().into_iter().find(|h| h.id == self.id)
    }

    /// Stops the subscription after the event it is handling (events still queued for it are
    /// not handled), joins its thread and returns its report; `last_sequence` is the global
    /// position it is done with.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, RecordedEvent, StreamId, SubscriptionFilter};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let watcher = log.subscribe("watcher", SubscriptionFilter::all(), move |e: &RecordedEvent| tx.send(e.position))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// assert_eq!(rx.recv()?, 1);
    /// let report = watcher.unsubscribe()?;
    /// assert_eq!((report.name.as_str(), report.counts.delivered, report.last_sequence), ("watcher", 1, 1));
    /// assert!(log.health().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Closed`] when the event log was closed (its report was returned by
    /// [`crate::EventLog::close`]); [`SubscribeError::Bus`] if it was already unsubscribed.
    pub fn unsubscribe(self) -> Result<SubscriberReport, SubscribeError> {
        let result = self.bus.unsubscribe(self.id).map_err(SubscribeError::from);
        if let Some(names) = &self.consumer {
            release(names, &self.name);
        }
        result
    }
}

/// The delivery span of one event, following from the append span that stored it.
pub(crate) fn deliver_span(
    subscription: &str,
    event: &RecordedEvent,
    links: &SpanLinks,
) -> tracing::Span {
    let span = tracing::debug_span!(
        "eventlog_deliver",
        subscription,
        position = event.position,
        event_type = %event.metadata.event_type,
        aggregate_type = %event.metadata.aggregate_type,
        aggregate_id = %event.metadata.aggregate_id,
    );
    links.link(&span, &event.metadata.event_id);
    span
}

/// A plain subscription's handler: the user's closure inside the delivery span.
pub(crate) struct Plain<F> {
    pub(crate) name: String,
    pub(crate) links: Arc<SpanLinks>,
    pub(crate) handler: F,
}

impl<F, E> Subscriber<Delivered> for Plain<F>
where
    F: FnMut(&RecordedEvent) -> Result<(), E> + Send,
    E: Display,
{
    fn handle(&mut self, message: &Delivered) -> Result<(), SubscriberError> {
        let span = deliver_span(&self.name, &message.0, &self.links);
        let _entered = span.enter();
        (self.handler)(&message.0).map_err(|e| SubscriberError::new(e.to_string()))
    }
}

/// A durable subscription's handler: the user's closure, then the position committed in the
/// store. A handled event whose commit failed is not handed to the closure again when the bus
/// retries it: only the commit is retried.
pub(crate) struct Durable<F> {
    pub(crate) name: String,
    pub(crate) links: Arc<SpanLinks>,
    pub(crate) store: Store,
    pub(crate) sync: bool,
    pub(crate) handled_uncommitted: Option<u64>,
    pub(crate) handler: F,
}

impl<F, E> Subscriber<Delivered> for Durable<F>
where
    F: FnMut(&RecordedEvent) -> Result<(), E> + Send,
    E: Display,
{
    fn handle(&mut self, message: &Delivered) -> Result<(), SubscriberError> {
        let event = &message.0;
        let span = deliver_span(&self.name, event, &self.links);
        let _entered = span.enter();
        if self.handled_uncommitted != Some(event.position) {
            (self.handler)(event).map_err(|e| SubscriberError::new(e.to_string()))?;
            self.handled_uncommitted = Some(event.position);
        }
        self.store
            .commit_consumer(&self.name, event.position, &[], self.sync)
            .map_err(SubscriberError::from_error)?;
        self.handled_uncommitted = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events_core::{EventContext, NewEvent};
    use omni_domain::CacheHit;

    fn event(aggregate_id: &str) -> RecordedEvent {
        let hit = CacheHit {
            cache_key: "k".into(),
            cache_type: "memory".into(),
            response_time: 0.0,
        };
        NewEvent::from_event(aggregate_id, &hit, EventContext::default())
            .unwrap()
            .into_recorded(1, 7)
    }

    #[test]
    fn filters_match_on_both_lists() {
        let e = event("c");
        assert!(SubscriptionFilter::all().matches(&e));
        assert!(
            SubscriptionFilter::all()
                .aggregate_type("cache")
                .matches(&e)
        );
        assert!(
            !SubscriptionFilter::all()
                .aggregate_type("pipeline")
                .matches(&e)
        );
        assert!(
            SubscriptionFilter::all()
                .aggregate_type("pipeline")
                .aggregate_type("cache")
                .event_type("cache_hit")
                .matches(&e)
        );
        assert!(
            !SubscriptionFilter::all()
                .aggregate_type("cache")
                .event_type("cache_miss")
                .matches(&e)
        );
        assert_eq!(Delivered(Arc::new(e)).sequence(), 7);
    }
}
