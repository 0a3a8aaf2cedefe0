//! [`Admin`]: the administrative view of an [`EventLog`]: durable consumers, raw snapshots,
//! verification, checkpoints and metrics. Kept apart from the handle's
//! core verbs (append, read, load, subscribe).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use events_core::{StreamId, Version};
use events_sled::{
    ChainHead, CheckpointManifest, ConsumerCheckpoint, Progress, Snapshot, VerifyReport,
};

use crate::error::AdminError;
use crate::log::EventLog;
use crate::metrics::{AggregateMetrics, BusMetrics, EventLogMetrics};
use crate::subscription::{release, reserve};

/// The administrative view of an [`EventLog`], from [`EventLog::admin`]: borrows the log.
///
/// # Example
///
/// ```
/// use eventlog::{EventLog, EventLogConfig, list_checkpoints};
///
/// let dir = tempfile::tempdir()?;
/// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
/// let admin = log.admin();
/// let (path, manifest) = admin.checkpoint()?;
/// assert!(path.exists());
/// assert_eq!(list_checkpoints(&admin.checkpoint_dir())?.len(), 1);
/// assert_eq!(manifest.last_position, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Admin<'a> {
    log: &'a EventLog,
}

impl<'a> Admin<'a> {
    pub(crate) fn new(log: &'a EventLog) -> Self {
        Self { log }
    }

    /// A durable consumer's committed position and state (durable subscriptions and
    /// projections), if it committed any.
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`]; [`AdminError::Closed`].
    pub fn consumer(&self, name: &str) -> Result<Option<ConsumerCheckpoint>, AdminError> {
        self.log.with_store(|s| Ok(s.consumer(name)?))
    }

    /// Every durable consumer's name and committed position.
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`]; [`AdminError::Closed`].
    pub fn consumers(&self) -> Result<Vec<(String, u64)>, AdminError> {
        self.log.with_store(|s| Ok(s.consumers()?))
    }

    /// Forgets a durable consumer's position and state (the next durable subscription or
    /// projection of that name starts from the beginning).
    ///
    /// # Errors
    ///
    /// [`AdminError::ConsumerRunning`] while one of that name runs;
    /// [`AdminError::Store`]; [`AdminError::Closed`].
    pub fn remove_consumer(&self, name: &str) -> Result<(), AdminError> {
        self.log.with_store(|s| {
            let consumers = &self.log.inner().consumers;
            if !reserve(consumers, name) {
                return Err(AdminError::ConsumerRunning {
                    name: name.to_string(),
                });
            }
            let result = s.remove_consumer(name);
            release(consumers, name);
            Ok(result?)
        })
    }

    /// Saves already-encoded state as the aggregate's snapshot at `version` (keeping the newest
    /// few, see the store's `snapshots_to_keep`). [`EventLog::snapshot`] does this for an
    /// [`Aggregate`](crate::Aggregate).
    ///
    /// # Errors
    ///
    /// [`AdminError::Snapshot`]; [`AdminError::Closed`].
    pub fn save_snapshot(
        &self,
        stream: &StreamId,
        version: Version,
        schema_version: u16,
        state: &[u8],
    ) -> Result<(), AdminError> {
        self.log.with_store(|s| {
            Ok(s.save_snapshot(
                stream.aggregate_type(),
                stream.aggregate_id(),
                version.get(),
                schema_version,
                state,
            )?)
        })
    }

    /// The newest snapshot of the aggregate with this schema version that it still reaches.
    ///
    /// # Errors
    ///
    /// [`AdminError::Snapshot`]; [`AdminError::Closed`].
    pub fn load_snapshot(
        &self,
        stream: &StreamId,
        schema_version: u16,
    ) -> Result<Option<Snapshot>, AdminError> {
        self.log.with_store(|s| {
            Ok(s.load_snapshot(
                stream.aggregate_type(),
                stream.aggregate_id(),
                schema_version,
            )?)
        })
    }

    /// Every kept snapshot of the aggregate, oldest first.
    ///
    /// # Errors
    ///
    /// [`AdminError::Snapshot`]; [`AdminError::Closed`].
    pub fn snapshots(&self, stream: &StreamId) -> Result<Vec<Snapshot>, AdminError> {
        self.log
            .with_store(|s| Ok(s.snapshots(stream.aggregate_type(), stream.aggregate_id())?))
    }

    /// Checks the hash chain, every aggregate's versions, every index and snapshot, and reports
    /// what is wrong and where.
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`] when the store cannot be read (damage is in the report);
    /// [`AdminError::Closed`].
    pub fn verify(&self) -> Result<VerifyReport, AdminError> {
        self.log.with_store(|s| Ok(s.verify()?))
    }

    /// The head of the log's hash chain over everything acknowledged so far: record it
    /// elsewhere to pin the history before it (see `docs/design.md`).
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`] when the store cannot be read or is not writing;
    /// [`AdminError::Closed`].
    pub fn chain_head(&self) -> Result<ChainHead, AdminError> {
        self.log.with_store(|s| Ok(s.chain_head()?))
    }

    /// [`Admin::verify`] reporting progress: `(position checked, last position)`.
    ///
    /// # Errors
    ///
    /// As [`Admin::verify`].
    pub fn verify_with(
        &self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<VerifyReport, AdminError> {
        self.log.with_store(|s| Ok(s.verify_with(progress)?))
    }

    /// Exports a consistent, verifiable checkpoint of the whole store to `path` while appends
    /// continue.
    ///
    /// # Errors
    ///
    /// [`AdminError::Checkpoint`]; [`AdminError::Closed`].
    pub fn export_checkpoint(&self, path: &Path) -> Result<CheckpointManifest, AdminError> {
        self.log.with_store(|s| Ok(s.export_checkpoint(path)?))
    }

    /// [`Admin::export_checkpoint`] reporting progress in events.
    ///
    /// # Errors
    ///
    /// As [`Admin::export_checkpoint`].
    pub fn export_checkpoint_with(
        &self,
        path: &Path,
        progress: Progress<'_>,
    ) -> Result<CheckpointManifest, AdminError> {
        self.log
            .with_store(|s| Ok(s.export_checkpoint_with(path, progress)?))
    }

    /// Exports a checkpoint into the configured checkpoint directory, named by time and
    /// position.
    ///
    /// # Errors
    ///
    /// As [`Admin::export_checkpoint`].
    pub fn checkpoint(&self) -> Result<(PathBuf, CheckpointManifest), AdminError> {
        self.log.with_store(|s| Ok(s.checkpoint()?))
    }

    /// The configured checkpoint directory (default = `<path>/checkpoints`), for
    /// [`list_checkpoints`](crate::list_checkpoints) and
    /// [`prune_checkpoints`](crate::prune_checkpoints), which work on a directory without an
    /// open store.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventLog, EventLogConfig, list_checkpoints};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// let (file, _manifest) = log.admin().checkpoint()?;
    /// let listed = list_checkpoints(&log.admin().checkpoint_dir())?;
    /// assert_eq!(listed.len(), 1);
    /// assert_eq!(listed[0].path, file);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.log.inner().config.store_config().checkpoint_dir()
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
    /// let json = serde_json::to_value(log.admin().metrics()?)?;
    /// assert_eq!(json["store"]["total_events_stored"], 0);
    /// assert_eq!(json["bus"]["subscriptions"], 0);
    /// assert_eq!(json["aggregates"]["snapshot_every"], 1000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`AdminError::Closed`].
    pub fn metrics(&self) -> Result<EventLogMetrics, AdminError> {
        let store = self.log.with_store(|s| Ok::<_, AdminError>(s.metrics()))?;
        let inner = self.log.inner();
        let bus = &inner.bus;
        let loads = &inner.loads;
        let get = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        Ok(EventLogMetrics {
            store,
            bus: BusMetrics::new(bus.last_published(), bus.health()),
            aggregates: AggregateMetrics {
                snapshot_every: inner.config.snapshot_every,
                loads: get(&loads.loads),
                events_applied: get(&loads.events_applied),
                loads_from_snapshot: get(&loads.loads_from_snapshot),
                snapshots_saved: get(&loads.snapshots_saved),
                snapshots_unreadable: get(&loads.snapshots_unreadable),
                snapshot_save_failures: get(&loads.snapshot_save_failures),
            },
        })
    }
}
