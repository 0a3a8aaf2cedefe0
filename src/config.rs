//! [`EventLogConfig`]: one builder for the store, the bus, the registry and the aggregates,
//! validated by [`crate::EventLog::open`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use events_bus::{BusError, SubscriberSettings};
use events_core::EventRegistry;
use events_sled::{Durability, StoreConfig};

use crate::error::OpenError;

/// The default number of events between automatic aggregate snapshots: 1000.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 1000;

/// The default time [`crate::EventLog::open`] waits for a directory lock being released: 1 s.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(1);

/// How to open an [`crate::EventLog`]: the store's settings (every [`StoreConfig`] setting is
/// reachable through [`EventLogConfig::store`]), the event registry, the defaults of every
/// subscription (every [`SubscriberSettings`] setting, through [`EventLogConfig::bus`]) and the
/// aggregate snapshot interval.
///
/// # Example
///
/// ```
/// use eventlog::{Backpressure, Durability, EventLog, EventLogConfig, EventRegistry, Position};
///
/// let dir = tempfile::tempdir()?;
/// let config = EventLogConfig::new(dir.path())
///     .registry(EventRegistry::new())
///     .store(|s| s.cache_capacity(32 << 20).durability(Durability::Buffered))
///     .bus(|b| b.capacity(256).backpressure(Backpressure::CatchUp))
///     .snapshot_every(Some(500));
/// let log = EventLog::open(config)?;
/// assert_eq!(log.last_position()?, Position::START);
/// log.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct EventLogConfig {
    pub(crate) store: StoreConfig,
    pub(crate) registry: Arc<EventRegistry>,
    pub(crate) snapshot_every: Option<u64>,
    pub(crate) bus: SubscriberSettings,
    pub(crate) lock_wait: Duration,
}

impl EventLogConfig {
    /// A configuration for the event log at `path`, with every default.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{Durability, EventLog, EventLogConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path().join("events")))?; // creates the directory
    /// assert!(dir.path().join("events").is_dir());
    /// let metrics = log.admin().metrics()?;
    /// assert_eq!(metrics.store.durability, Durability::Durable);
    /// assert_eq!(metrics.aggregates.snapshot_every, Some(1000));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            store: StoreConfig::new(path),
            registry: Arc::new(EventRegistry::new()),
            snapshot_every: Some(DEFAULT_SNAPSHOT_EVERY),
            bus: SubscriberSettings::new(),
            lock_wait: DEFAULT_LOCK_WAIT,
        }
    }

    /// Changes the store's settings: `change` gets the current [`StoreConfig`] and returns the
    /// new one, e.g. `.store(|s| s.durability(Durability::Buffered).cache_capacity(64 << 20))`.
    /// Default = [`StoreConfig::new`] at the path, whose defaults are documented there (durable
    /// appends, 256 MiB cache, ...). The registry is set with [`EventLogConfig::registry`]
    /// only: one set here makes [`EventLog::open`](crate::EventLog::open) fail with
    /// [`OpenError::InvalidConfig`] (`store.registry`).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{AppendError, EventContext, EventLog, EventLogConfig, ExpectedVersion, NewEvent};
    /// use eventlog::{StoreAppendError, StoreLimits, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let limits = StoreLimits { max_events_per_append: 2, ..StoreLimits::default() };
    /// let config = EventLogConfig::new(dir.path()).registry(omni_domain::registry());
    /// let log = EventLog::open(config.store(|s| s.limits(limits)))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let three = (0..3).map(|_| NewEvent::from_event("c1", &hit, EventContext::default()));
    /// let refused = log.append(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, three.collect::<Result<_, _>>()?);
    /// assert!(matches!(refused, Err(AppendError::Store(StoreAppendError::TooLarge { max: 2, .. }))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn store(mut self, change: impl FnOnce(StoreConfig) -> StoreConfig) -> Self {
        self.store = change(self.store);
        self
    }

    /// Shorthand for `.store(|s| s.durability(durability))`. Default = [`Durability::Durable`]:
    /// an append returns once it is on disk, and is delivered to subscribers only then.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{Durability, EventLog, EventLogConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).durability(Durability::Buffered))?;
    /// assert_eq!(log.admin().metrics()?.store.durability, Durability::Buffered);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn durability(self, durability: Durability) -> Self {
        self.store(|s| s.durability(durability))
    }

    /// The event types the log accepts (appends of other types are refused as invalid), and
    /// decodes for aggregates and JSON. Default = an empty registry, with which every append
    /// is refused (`ValidationError::UnregisteredEventType`): give yours
    /// (`omni_domain::registry()` for the Omni Writer's). Events of types it does not know can
    /// still be read (their payload stays undecoded).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{AppendError, EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
    /// use eventlog::{StoreAppendError, ValidationError};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let stream = StreamId::of::<CacheHit>("c1");
    /// let bare = EventLog::open(EventLogConfig::new(dir.path().join("bare")))?;
    /// let refused = bare.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default());
    /// assert!(matches!(refused, Err(AppendError::Store(StoreAppendError::Invalid {
    ///     source: ValidationError::UnregisteredEventType { .. }, ..
    /// }))));
    /// let log = EventLog::open(EventLogConfig::new(dir.path().join("omni")).registry(omni_domain::registry()))?;
    /// assert_eq!(log.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default())?.last_position, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn registry(mut self, registry: impl Into<Arc<EventRegistry>>) -> Self {
        self.registry = registry.into();
        self
    }

    /// How many events an aggregate load may apply on top of its latest snapshot before it saves
    /// a new one (see [`crate::EventLog::load`]); `None` never snapshots automatically. Must be
    /// at least 1. Default = `Some(1000)`.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventLog, EventLogConfig, OpenError};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let config = EventLogConfig::new(dir.path());
    /// let zero = EventLog::open(config.clone().snapshot_every(Some(0)));
    /// assert!(matches!(zero, Err(OpenError::InvalidConfig { setting: "snapshot_every", .. })));
    /// let log = EventLog::open(config.snapshot_every(Some(500)))?;
    /// assert_eq!(log.admin().metrics()?.aggregates.snapshot_every, Some(500));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn snapshot_every(mut self, events: Option<u64>) -> Self {
        self.snapshot_every = events;
        self
    }

    /// Changes the default settings of every subscription: `change` gets the current
    /// [`SubscriberSettings`] and returns the new ones, e.g. `.bus(|b| b.capacity(256))`; a
    /// subscription overrides them with [`SubscriptionOptions::bus`](crate::SubscriptionOptions::bus).
    /// Default = [`SubscriberSettings::new`], whose defaults are documented there (capacity 1024,
    /// [`Backpressure::CatchUp`](crate::Backpressure::CatchUp), 3 retries, ...).
    /// [`Backpressure::Block`](crate::Backpressure::Block): a full subscriber holds up the event
    /// log's publisher thread, and so delivery to every subscription — never the appends. Its
    /// handler may append, load, snapshot, flush or checkpoint; it must not close the event log,
    /// which waits for the publisher that waits for it.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventLog, EventLogConfig, OpenError, RecordedEvent, SubscriptionFilter};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let config = EventLogConfig::new(dir.path());
    /// let empty = EventLog::open(config.clone().bus(|b| b.capacity(0)));
    /// assert!(matches!(empty, Err(OpenError::InvalidConfig { setting: "capacity", .. })));
    /// let log = EventLog::open(config.bus(|b| b.capacity(64)))?;
    /// let subscription = log.subscribe("small", SubscriptionFilter::all(), |_: &RecordedEvent| Ok::<(), String>(()))?;
    /// assert_eq!(subscription.health().ok_or("not running")?.capacity, 64);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn bus(mut self, change: impl FnOnce(SubscriberSettings) -> SubscriberSettings) -> Self {
        self.bus = change(self.bus);
        self
    }

    /// How long [`crate::EventLog::open`] keeps retrying while the store's directory is locked.
    /// sled 0.34 releases its directory lock lazily, on a background thread, after the last
    /// handle of a store is dropped, so reopening a store this process has just closed can find
    /// it still locked for a few milliseconds. A store held by another process stays locked
    /// longer than this, and the open fails with `OpenError::Locked`. Zero fails at once.
    /// Default = 1 s.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use eventlog::{EventLog, EventLogConfig, OpenError, StoreOpenError};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let config = EventLogConfig::new(dir.path()).lock_wait(Duration::from_millis(50));
    /// let log = EventLog::open(config.clone())?;
    /// let started = Instant::now();
    /// let second = EventLog::open(config); // `log` holds the directory
    /// assert!(matches!(second, Err(OpenError::Store(StoreOpenError::Locked { .. }))));
    /// assert!(started.elapsed() >= Duration::from_millis(50)); // after retrying for 50 ms
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// The event log's directory.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventLog, EventLogConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let config = EventLogConfig::new(dir.path().join("events"));
    /// assert_eq!(config.path(), dir.path().join("events"));
    /// let log = EventLog::open(config.clone())?;
    /// assert!(EventLog::open_read_only(config.path(), omni_domain::registry()).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// The store's settings as they stand.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{CheckpointPolicy, EventLogConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let config = EventLogConfig::new(dir.path());
    /// assert_eq!(config.store_config().path(), dir.path());
    /// assert_eq!(config.store_config().checkpoint_dir(), dir.path().join("checkpoints"));
    /// let elsewhere = CheckpointPolicy { dir: Some(dir.path().join("backups")), ..CheckpointPolicy::default() };
    /// let config = config.store(|s| s.checkpoints(elsewhere));
    /// assert_eq!(config.store_config().checkpoint_dir(), dir.path().join("backups"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn store_config(&self) -> &StoreConfig {
        &self.store
    }

    /// Checks the facade's own settings and the bus defaults (the store checks its own when
    /// it opens).
    pub(crate) fn validate(&self) -> Result<(), OpenError> {
        if self.snapshot_every == Some(0) {
            return Err(OpenError::InvalidConfig {
                setting: "snapshot_every",
                reason: "must be at least 1 (None disables it)",
            });
        }
        // The log's registry is the one it validates with and decodes with: set twice, one
        // would be silently ignored.
        if self.store.get_registry().is_some() {
            return Err(OpenError::InvalidConfig {
                setting: "store.registry",
                reason: "set the registry with EventLogConfig::registry, which the store uses too",
            });
        }
        match self.bus.validate() {
            Err(BusError::InvalidOptions { option, reason }) => Err(OpenError::InvalidConfig {
                setting: option,
                reason,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events_bus::FailurePolicy;

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = EventLogConfig::new("/tmp/x");
        assert_eq!(config.snapshot_every, Some(1000));
        assert_eq!(config.bus, SubscriberSettings::new());
        assert_eq!(config.lock_wait, Duration::from_secs(1));
        assert_eq!(config.registry.event_types().count(), 0);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        let bad = [
            (
                EventLogConfig::new("/tmp/x").snapshot_every(Some(0)),
                "snapshot_every",
            ),
            (
                EventLogConfig::new("/tmp/x").bus(|b| b.capacity(0)),
                "capacity",
            ),
            (
                EventLogConfig::new("/tmp/x").bus(|b| b.catch_up_batch(0)),
                "catch_up_batch",
            ),
            (
                EventLogConfig::new("/tmp/x").bus(|b| {
                    b.failure_policy(FailurePolicy::Retry {
                        max_attempts: 0,
                        backoff: Duration::ZERO,
                    })
                }),
                "failure_policy",
            ),
            (
                EventLogConfig::new("/tmp/x").store(|s| s.registry(EventRegistry::new())),
                "store.registry",
            ),
        ];
        for (config, name) in bad {
            assert!(matches!(
                config.validate(),
                Err(OpenError::InvalidConfig { setting, .. }) if setting == name
            ));
        }
        assert!(
            EventLogConfig::new("/tmp/x")
                .snapshot_every(None)
                .validate()
                .is_ok()
        );
    }
}
