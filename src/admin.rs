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
use crate::metrics::{AggregateMetrics, BusMetrics, EventLogMetrics, ReplicationMetrics};
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
    /// # Example
    ///
    /// ```
    /// use eventlog::{
    ///     EventContext, EventLog, EventLogConfig, ExpectedVersion, RecordedEvent, StreamId,
    ///     SubscriptionFilter,
    /// };
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// assert!(log.admin().consumer("warmer")?.is_none());
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let warmer = log.subscribe_durable("warmer", SubscriptionFilter::all(), move |e: &RecordedEvent| tx.send(e.position))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// assert_eq!(rx.recv()?, 1);
    /// warmer.unsubscribe()?; // joins its thread: the position it handled is committed
    /// assert_eq!(log.admin().consumer("warmer")?.map(|c| c.position), Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`]; [`AdminError::Closed`].
    pub fn consumer(&self, name: &str) -> Result<Option<ConsumerCheckpoint>, AdminError> {
        self.log.with_store(|s| Ok(s.consumer(name)?))
    }

    /// Every durable consumer's name and committed position.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{
    ///     EventContext, EventLog, EventLogConfig, ExpectedVersion, RecordedEvent, StreamId,
    ///     SubscriptionFilter,
    /// };
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// assert!(log.admin().consumers()?.is_empty());
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let warmer = log.subscribe_durable("warmer", SubscriptionFilter::all(), move |e: &RecordedEvent| tx.send(e.position))?;
    /// assert_eq!(rx.recv()?, 1); // it starts from the beginning the first time
    /// warmer.unsubscribe()?;
    /// assert_eq!(log.admin().consumers()?, vec![("warmer".to_string(), 1)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// # Example
    ///
    /// ```
    /// use eventlog::{
    ///     AdminError, EventContext, EventLog, EventLogConfig, ExpectedVersion, RecordedEvent, StreamId,
    ///     SubscriptionFilter,
    /// };
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let warmer = log.subscribe_durable("warmer", SubscriptionFilter::all(), move |e: &RecordedEvent| tx.send(e.position))?;
    /// assert_eq!(rx.recv()?, 1);
    /// let running = log.admin().remove_consumer("warmer");
    /// assert!(matches!(running, Err(AdminError::ConsumerRunning { .. })));
    /// warmer.unsubscribe()?;
    /// assert!(log.admin().consumer("warmer")?.is_some());
    /// log.admin().remove_consumer("warmer")?;
    /// assert!(log.admin().consumer("warmer")?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, Version};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let stream = StreamId::of::<CacheHit>("c1");
    /// log.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default())?;
    /// log.admin().save_snapshot(&stream, Version(1), 1, b"state")?;
    /// let saved = log.admin().snapshots(&stream)?;
    /// assert_eq!(saved.len(), 1);
    /// assert_eq!((saved[0].version, saved[0].schema_version), (1, 1));
    /// assert_eq!(saved[0].state, b"state");
    /// // The aggregate has not reached version 2: refused.
    /// assert!(log.admin().save_snapshot(&stream, Version(2), 1, b"state").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, Version};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let stream = StreamId::of::<CacheHit>("c1");
    /// for _ in 0..2 {
    ///     log.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default())?;
    /// }
    /// let admin = log.admin();
    /// admin.save_snapshot(&stream, Version(1), 1, b"v1 state")?;
    /// admin.save_snapshot(&stream, Version(2), 2, b"v2 state")?;
    /// // The newest snapshot with schema version 1, skipping the newer one with schema version 2.
    /// let snapshot = admin.load_snapshot(&stream, 1)?.ok_or("no snapshot")?;
    /// assert_eq!((snapshot.version, snapshot.state), (1, b"v1 state".to_vec()));
    /// assert!(admin.load_snapshot(&stream, 3)?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, Version};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let stream = StreamId::of::<CacheHit>("c1");
    /// for version in 1..=2 {
    ///     log.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default())?;
    ///     log.admin().save_snapshot(&stream, Version(version), 1, b"state")?;
    /// }
    /// let versions: Vec<u64> = log.admin().snapshots(&stream)?.iter().map(|s| s.version).collect();
    /// assert_eq!(versions, [1, 2]);
    /// assert!(log.admin().snapshots(&StreamId::of::<CacheHit>("c2"))?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for id in ["c1", "c2"] {
    ///     log.append_event(&StreamId::of::<CacheHit>(id), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// }
    /// let report = log.admin().verify()?;
    /// assert!(report.ok && report.issues.is_empty());
    /// assert_eq!((report.last_position, report.events, report.aggregates), (2, 2, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let empty = log.admin().chain_head()?;
    /// assert_eq!(empty.position, 0);
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// let head = log.admin().chain_head()?;
    /// assert_eq!(head.position, 1);
    /// assert_ne!(head.hash, empty.hash);
    /// assert_eq!(head.hash, log.admin().verify()?.chain_head); // verify reports the same head
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for _ in 0..3 {
    ///     log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// }
    /// let mut checked = Vec::new();
    /// let report = log.admin().verify_with(&mut |position, last| checked.push((position, last)))?;
    /// assert!(report.ok);
    /// assert_eq!(checked.last(), Some(&(3, 3)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, verify_checkpoint};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// let backups = tempfile::tempdir()?;
    /// let file = backups.path().join("backup.checkpoint");
    /// let manifest = log.admin().export_checkpoint(&file)?;
    /// assert_eq!((manifest.event_count, manifest.last_position), (1, 1));
    /// assert_eq!(verify_checkpoint(&file)?.chain_head, manifest.chain_head);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`AdminError::Checkpoint`]; [`AdminError::Closed`].
    pub fn export_checkpoint(&self, path: &Path) -> Result<CheckpointManifest, AdminError> {
        self.log.with_store(|s| Ok(s.export_checkpoint(path)?))
    }

    /// [`Admin::export_checkpoint`] reporting progress in events.
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
    /// for _ in 0..2 {
    ///     log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// }
    /// let backups = tempfile::tempdir()?;
    /// let mut done = Vec::new();
    /// let file = backups.path().join("backup.checkpoint");
    /// let manifest = log.admin().export_checkpoint_with(&file, &mut |events, total| done.push((events, total)))?;
    /// assert_eq!(manifest.last_position, 2);
    /// assert_eq!(done.last(), Some(&(2, 2)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, verify_checkpoint};
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// let (file, manifest) = log.admin().checkpoint()?;
    /// assert!(file.starts_with(log.admin().checkpoint_dir()));
    /// assert_eq!(manifest.last_position, 1);
    /// assert_eq!(verify_checkpoint(&file)?.last_position, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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

    /// The store's id: random, fixed when the store was created, written in every segment
    /// file's header and in the JetStream stream a replicator creates for it.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventLog, EventLogConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// let id = log.admin().store_id()?;
    /// log.close()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// assert_eq!(log.admin().store_id()?, id);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`AdminError::Closed`].
    pub fn store_id(&self) -> Result<String, AdminError> {
        self.log
            .with_store(|s| Ok::<_, AdminError>(s.store_id().to_owned()))
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
        let (store, last_position) = self
            .log
            .with_store(|s| Ok::<_, AdminError>((s.metrics(), s.last_position())))?;
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
            replication: inner
                .replications
                .statuses()
                .into_iter()
                .map(|status| ReplicationMetrics::new(status, last_position))
                .collect(),
        })
    }
}
