//! [`ReplicaSource`]: what a replicator needs from the log it ships. The `eventlog` facade
//! implements it over its store; this crate knows no store.

use std::time::Duration;

use events_core::RecordedEvent;

use crate::error::SourceError;

/// The log a [`Replicator`](crate::Replicator) ships. Its calls block; the replicator makes
/// them on its runtime's blocking threads, never on the thread that drives the network.
pub trait ReplicaSource: Send + Sync + 'static {
    /// The store's id, recorded in the stream it owns.
    ///
    /// # Errors
    ///
    /// [`SourceError`] when the log is closed or cannot be read.
    fn store_id(&self) -> Result<String, SourceError>;

    /// The events from position `from` (inclusive) on, in order, at most `max`, up to the last
    /// position this replicator may ship (see [`Ship`](crate::Ship)). When there is none yet,
    /// waits at most `wait` for one, then returns what there is (maybe nothing).
    ///
    /// # Errors
    ///
    /// [`SourceError`] when the log is closed or cannot be read.
    fn read(
        &self,
        from: u64,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<RecordedEvent>, SourceError>;

    /// The log's last position (committed, durable or not).
    ///
    /// # Errors
    ///
    /// [`SourceError`] when the log is closed.
    fn last_position(&self) -> Result<u64, SourceError>;
}
