//! [`EventLogConfig`]: one builder for the store, the bus, the registry and the aggregates,
//! validated by [`crate::EventLog::open`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use events_bus::{Backpressure, DEFAULT_CAPACITY, DEFAULT_CATCH_UP_BATCH, FailurePolicy};
use events_core::EventRegistry;
use events_sled::{Durability, StoreConfig};

use crate::error::EventLogError;

/// The default number of events between automatic aggregate snapshots: 1000.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 1000;

/// The default time [`crate::EventLog::open`] waits for a directory lock being released: 1 s.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(1);

/// How to open an [`crate::EventLog`]: the store's settings (every [`StoreConfig`] setting is
/// reachable through [`EventLogConfig::store`]), the event registry, the defaults of every
/// subscription and the aggregate snapshot interval.
///
/// # Example
///
/// ```
/// use eventlog::{Backpressure, Durability, EventLog, EventLogConfig};
///
/// let dir = tempfile::tempdir()?;
/// let config = EventLogConfig::new(dir.path())
///     .store(|s| s.cache_capacity(32 << 20).durability(Durability::Buffered))
///     .snapshot_every(Some(500))
///     .subscriber_capacity(256)
///     .subscriber_backpressure(Backpressure::CatchUp);
/// let log = EventLog::open(config)?;
/// assert_eq!(log.last_position()?, 0);
/// log.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct EventLogConfig {
    pub(crate) store: StoreConfig,
    pub(crate) registry: Arc<EventRegistry>,
    pub(crate) snapshot_every: Option<u64>,
    pub(crate) subscriber_capacity: usize,
    pub(crate) subscriber_backpressure: Backpressure,
    pub(crate) subscriber_failure_policy: FailurePolicy,
    pub(crate) subscriber_catch_up_batch: usize,
    pub(crate) lock_wait: Duration,
}

impl EventLogConfig {
    /// A configuration for the event log at `path`, with every default.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            store: StoreConfig::new(path),
            registry: Arc::new(EventRegistry::omni_writer()),
            snapshot_every: Some(DEFAULT_SNAPSHOT_EVERY),
            subscriber_capacity: DEFAULT_CAPACITY,
            subscriber_backpressure: Backpressure::CatchUp,
            subscriber_failure_policy: FailurePolicy::default(),
            subscriber_catch_up_batch: DEFAULT_CATCH_UP_BATCH,
            lock_wait: DEFAULT_LOCK_WAIT,
        }
    }

    /// Changes the store's settings: `change` gets the current [`StoreConfig`] and returns the
    /// new one, e.g. `.store(|s| s.durability(Durability::Buffered).cache_capacity(64 << 20))`.
    /// Default = [`StoreConfig::new`] at the path, whose defaults are documented there (durable
    /// appends, 256 MiB cache, ...). The store's `registry` setting is always replaced by
    /// [`EventLogConfig::registry`] at open.
    #[must_use]
    pub fn store(mut self, change: impl FnOnce(StoreConfig) -> StoreConfig) -> Self {
        self.store = change(self.store);
        self
    }

    /// Shorthand for `.store(|s| s.durability(durability))`. Default = [`Durability::Durable`]:
    /// an append returns once it is on disk, and is delivered to subscribers only then.
    #[must_use]
    pub fn durability(self, durability: Durability) -> Self {
        self.store(|s| s.durability(durability))
    }

    /// The event types the log accepts (appends of other types are refused as invalid), and
    /// decodes for aggregates and JSON. Default = [`EventRegistry::omni_writer`].
    #[must_use]
    pub fn registry(mut self, registry: impl Into<Arc<EventRegistry>>) -> Self {
        self.registry = registry.into();
        self
    }

    /// How many events an aggregate load may apply on top of its latest snapshot before it saves
    /// a new one (see [`crate::EventLog::load`]); `None` never snapshots automatically. Must be
    /// at least 1. Default = `Some(1000)`.
    #[must_use]
    pub fn snapshot_every(mut self, events: Option<u64>) -> Self {
        self.snapshot_every = events;
        self
    }

    /// Default channel capacity of a subscription (events queued for its thread). Must be at
    /// least 1. Default = 1024.
    #[must_use]
    pub fn subscriber_capacity(mut self, capacity: usize) -> Self {
        self.subscriber_capacity = capacity;
        self
    }

    /// Default backpressure of a subscription. Default = [`Backpressure::CatchUp`]: one that
    /// falls behind reads what it missed from the store. [`Backpressure::Block`]: a full
    /// subscriber holds up the event log's publisher thread, and so delivery to every
    /// subscription — never the appends (the store's writer never waits for the publisher, which
    /// reads what it missed from the store once its own bounded queue is full). Its handler may
    /// append, load, snapshot, flush or checkpoint; it must not close the event log, which waits
    /// for the publisher that waits for it.
    #[must_use]
    pub fn subscriber_backpressure(mut self, backpressure: Backpressure) -> Self {
        self.subscriber_backpressure = backpressure;
        self
    }

    /// Default failure policy of a subscription: what happens when its handler returns an error
    /// or panics. Default = `Retry { max_attempts: 3, backoff: 10 ms }`, then the subscription
    /// stops.
    #[must_use]
    pub fn subscriber_failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.subscriber_failure_policy = policy;
        self
    }

    /// Default number of events a catching-up subscription reads from the store at once. Must be
    /// at least 1. Default = 256.
    #[must_use]
    pub fn subscriber_catch_up_batch(mut self, events: usize) -> Self {
        self.subscriber_catch_up_batch = events;
        self
    }

    /// How long [`crate::EventLog::open`] keeps retrying while the store's directory is locked.
    /// sled 0.34 releases its directory lock lazily, on a background thread, after the last
    /// handle of a store is dropped, so reopening a store this process has just closed can find
    /// it still locked for a few milliseconds. A store held by another process stays locked
    /// longer than this, and the open fails with `OpenError::Locked`. Zero fails at once.
    /// Default = 1 s.
    #[must_use]
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// The event log's directory.
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// The store's settings as they stand.
    pub fn store_config(&self) -> &StoreConfig {
        &self.store
    }

    /// Checks the facade's own settings (the store checks its own when it opens).
    pub(crate) fn validate(&self) -> Result<(), EventLogError> {
        let invalid = |setting: &'static str, reason: &str| {
            Err(EventLogError::InvalidConfig {
                setting,
                reason: reason.to_string(),
            })
        };
        if self.snapshot_every == Some(0) {
            return invalid("snapshot_every", "must be at least 1 (None disables it)");
        }
        if self.subscriber_capacity == 0 {
            return invalid("subscriber_capacity", "must be at least 1");
        }
        if self.subscriber_catch_up_batch == 0 {
            return invalid("subscriber_catch_up_batch", "must be at least 1");
        }
        if let FailurePolicy::Retry {
            max_attempts: 0, ..
        } = self.subscriber_failure_policy
        {
            return invalid(
                "subscriber_failure_policy",
                "Retry needs at least one attempt",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = EventLogConfig::new("/tmp/x");
        assert_eq!(config.snapshot_every, Some(1000));
        assert_eq!(config.subscriber_capacity, 1024);
        assert_eq!(config.subscriber_backpressure, Backpressure::CatchUp);
        assert_eq!(config.subscriber_catch_up_batch, 256);
        assert_eq!(config.lock_wait, Duration::from_secs(1));
        assert_eq!(config.subscriber_failure_policy, FailurePolicy::default());
        assert!(config.registry.contains("article_generation_started"));
        assert!(config.validate().is_ok());
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        let bad = [
            EventLogConfig::new("/tmp/x").snapshot_every(Some(0)),
            EventLogConfig::new("/tmp/x").subscriber_capacity(0),
            EventLogConfig::new("/tmp/x").subscriber_catch_up_batch(0),
            EventLogConfig::new("/tmp/x").subscriber_failure_policy(FailurePolicy::Retry {
                max_attempts: 0,
                backoff: Duration::ZERO,
            }),
        ];
        for config in bad {
            assert!(matches!(
                config.validate(),
                Err(EventLogError::InvalidConfig { .. })
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
