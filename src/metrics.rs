//! [`EventLogMetrics`]: the store's metrics, the bus's subscribers and the aggregate loads, in
//! one serializable value.

use events_bus::{SubscriberHealth, SubscriberState};
use events_sled::StoreMetrics;
use serde::Serialize;

/// Everything an operator looks at, as returned by [`crate::Admin::metrics`]. Serializes to
/// JSON as `{"store": {...}, "bus": {...}, "aggregates": {...}, "replication": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventLogMetrics {
    /// The store's metrics (the seed's names: `storage_path`, `total_events_stored`, ...).
    pub store: StoreMetrics,
    /// The subscriptions.
    pub bus: BusMetrics,
    /// Aggregate loads and their snapshots.
    pub aggregates: AggregateMetrics,
    /// Each replicator started by [`crate::EventLog::replicate`] (running, or ended and not
    /// yet replaced by another).
    pub replication: Vec<ReplicationMetrics>,
}

/// One replicator's progress, as [`crate::Admin::metrics`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicationMetrics {
    /// The JetStream stream it ships to.
    pub stream: String,
    /// `connecting`, `replicating`, `retrying`, `stopped` or `failed`.
    pub state: &'static str,
    /// Every event up to this position is in the stream.
    pub replicated_position: u64,
    /// Events committed to the log and not yet in the stream.
    pub replication_lag_events: u64,
    /// Messages published (retries included).
    pub published: u64,
    /// Publishes that failed or whose outcome was unknown.
    pub publish_errors: u64,
    /// Times the connection to NATS was lost.
    pub disconnects: u64,
    /// Times it was re-established.
    pub reconnects: u64,
    /// The last error, as text.
    pub last_error: Option<String>,
}

impl ReplicationMetrics {
    pub(crate) fn new(status: events_nats::ReplicationStatus, last_position: u64) -> Self {
        Self {
            state: status.state.as_str(),
            replication_lag_events: last_position.saturating_sub(status.replicated_position),
            replicated_position: status.replicated_position,
            published: status.published,
            publish_errors: status.publish_errors,
            disconnects: status.disconnects,
            reconnects: status.reconnects,
            last_error: status.last_error,
            stream: status.stream,
        }
    }
}

/// The subscriptions, as seen by the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BusMetrics {
    /// The global position of the last event delivered to the bus (committed, and flushed in
    /// durable mode).
    pub last_published: u64,
    /// Subscriptions running.
    pub subscriptions: usize,
    /// Subscriptions catching up from the store.
    pub catching_up: usize,
    /// Subscriptions stopped by their failure policy (still listed until unsubscribed).
    pub stopped: usize,
    /// Events handled, over every subscription.
    pub delivered: u64,
    /// Handler errors and panics, over every subscription.
    pub failures: u64,
    /// Each subscription's health.
    pub subscribers: Vec<SubscriberHealth>,
}

impl BusMetrics {
    pub(crate) fn new(last_published: u64, subscribers: Vec<SubscriberHealth>) -> Self {
        let count = |f: fn(&SubscriberHealth) -> bool| subscribers.iter().filter(|h| f(h)).count();
        Self {
            last_published,
            subscriptions: subscribers.len(),
            catching_up: count(|h| h.state == SubscriberState::CatchingUp),
            stopped: count(|h| matches!(h.state, SubscriberState::Stopped { .. })),
            delivered: subscribers.iter().map(|h| h.counts.delivered).sum(),
            failures: subscribers
                .iter()
                .map(|h| h.counts.errors + h.counts.panics)
                .sum(),
            subscribers,
        }
    }
}

/// Aggregate loads since the event log was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AggregateMetrics {
    /// The automatic snapshot interval, in events (`None`: off).
    pub snapshot_every: Option<u64>,
    /// Aggregates loaded (latest state, as of a version, or replayed).
    pub loads: u64,
    /// Events applied by those loads.
    pub events_applied: u64,
    /// Loads that started from a snapshot.
    pub loads_from_snapshot: u64,
    /// Snapshots saved (automatically or on request).
    pub snapshots_saved: u64,
    /// Snapshots that did not decode and were skipped.
    pub snapshots_unreadable: u64,
    /// Automatic snapshots that could not be saved.
    pub snapshot_save_failures: u64,
}
