//! Loading aggregates ([`Aggregate`], from `events-core`): from the latest snapshot plus the
//! events after it ([`Loaded`]), snapshotted automatically.

use std::sync::atomic::{AtomicU64, Ordering};

use events_core::{Aggregate, EventRegistry, StreamId, Version, codec};

use events_sled::{Snapshot, SnapshotError, Store, StreamRead};
use serde::Serialize;

use crate::error::LoadError;

/// An aggregate's state as loaded, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Loaded<A> {
    /// The aggregate's stream (in JSON: `aggregate_type` and `aggregate_id`).
    #[serde(flatten)]
    pub stream: StreamId,
    /// The version the state reflects (0: the aggregate has no events, the state is the
    /// default).
    pub version: Version,
    /// The version of the snapshot the load started from, if it used one.
    pub from_snapshot: Option<Version>,
    /// Events applied on top of the snapshot (or from the start).
    pub events_applied: u64,
    /// Whether this load saved a new snapshot.
    pub snapshot_saved: bool,
    /// The folded state.
    pub state: A,
}

/// Counters of aggregate loads, for the metrics.
#[derive(Debug, Default)]
pub(crate) struct LoadCounters {
    pub(crate) loads: AtomicU64,
    pub(crate) events_applied: AtomicU64,
    pub(crate) loads_from_snapshot: AtomicU64,
    pub(crate) snapshots_saved: AtomicU64,
    pub(crate) snapshots_unreadable: AtomicU64,
    pub(crate) snapshot_save_failures: AtomicU64,
}

/// What a load needs from the event log.
pub(crate) struct Loader<'a> {
    pub(crate) store: &'a Store,
    pub(crate) registry: &'a EventRegistry,
    pub(crate) counters: &'a LoadCounters,
}

/// How a load uses snapshots.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SnapshotUse {
    /// Ignore them: replay every event.
    None,
    /// Start from the best one; save a new one when at least this many events were applied.
    Read { save_every: Option<u64> },
}

impl Loader<'_> {
    /// Decodes a snapshot's state, or `None` (with a warning) when it does not decode.
    fn decode<A: Aggregate>(&self, snapshot: &Snapshot) -> Option<A> {
        match codec::decode_payload::<A>(&snapshot.state) {
            Ok(state) => Some(state),
            Err(error) => {
                self.counters
                    .snapshots_unreadable
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    name: "eventlog_snapshot_unreadable",
                    aggregate_type = A::AGGREGATE_TYPE,
                    aggregate_id = %snapshot.aggregate_id,
                    version = snapshot.version,
                    error = %error,
                    "snapshot does not decode; loading from the events instead"
                );
                None
            }
        }
    }

    /// The newest readable snapshot of the current state version at or below `target`
    /// (`None`: the newest the aggregate reaches).
    fn best_snapshot<A: Aggregate>(
        &self,
        id: &str,
        target: Option<u64>,
    ) -> Result<Option<(u64, A)>, LoadError> {
        // Like the store's `load_snapshot` (newest of this state version that the aggregate
        // still reaches), but bounded by `target` and falling back to older snapshots when one
        // does not decode.
        let current = self.store.stream_version(A::AGGREGATE_TYPE, id)?;
        let limit = target.unwrap_or(current).min(current);
        let snapshots = match self.store.snapshots(A::AGGREGATE_TYPE, id) {
            Ok(snapshots) => snapshots,
            Err(SnapshotError::Corrupted { detail }) => {
                self.counters
                    .snapshots_unreadable
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    name: "eventlog_snapshot_unreadable",
                    aggregate_type = A::AGGREGATE_TYPE,
                    aggregate_id = id,
                    error = %detail,
                    "snapshots do not decode; loading from the events instead"
                );
                return Ok(None);
            }
            Err(other) => return Err(other.into()),
        };
        for snapshot in snapshots.into_iter().rev() {
            if snapshot.schema_version != A::STATE_VERSION || snapshot.version > limit {
                continue;
            }
            if let Some(state) = self.decode::<A>(&snapshot) {
                return Ok(Some((snapshot.version, state)));
            }
        }
        Ok(None)
    }

    /// Loads aggregate `id` of type `A` up to `target` (`None`: its current version).
    pub(crate) fn load<A: Aggregate>(
        &self,
        id: &str,
        target: Option<u64>,
        snapshots: SnapshotUse,
    ) -> Result<Loaded<A>, LoadError> {
        let span = tracing::debug_span!(
            "eventlog_load",
            aggregate_type = A::AGGREGATE_TYPE,
            aggregate_id = id,
            target = target.unwrap_or(0),
            version = tracing::field::Empty,
            events_applied = tracing::field::Empty,
            from_snapshot = tracing::field::Empty,
        );
        let _entered = span.enter();
        if let Some(requested) = target {
            let current = self.store.stream_version(A::AGGREGATE_TYPE, id)?;
            if requested > current {
                return Err(LoadError::VersionNotReached {
                    stream: StreamId::new(A::AGGREGATE_TYPE, id),
                    requested: Version(requested),
                    current: Version(current),
                });
            }
        }
        let base = match snapshots {
            SnapshotUse::None => None,
            SnapshotUse::Read { .. } => self.best_snapshot::<A>(id, target)?,
        };
        let from_snapshot = base.as_ref().map(|(version, _)| *version);
        let (mut version, mut state) = base.unwrap_or((0, A::default()));
        // A snapshot is at most the current version (`best_snapshot` skips any beyond `limit`);
        // no version follows `u64::MAX`, so from there there is nothing to read.
        let next = version.checked_add(1);
        let mut read = StreamRead::forwards().from(next.unwrap_or(u64::MAX));
        if let Some(target) = target {
            read =
                read.limit(usize::try_from(target.saturating_sub(version)).unwrap_or(usize::MAX));
        }
        let mut applied = 0_u64;
        if next.is_some() && read.limit != Some(0) {
            for event in self.store.read_stream(A::AGGREGATE_TYPE, id, read)? {
                let event = event?;
                state
                    .apply_recorded(&event, self.registry)
                    .map_err(|source| LoadError::Apply {
                        stream: StreamId::new(A::AGGREGATE_TYPE, id),
                        version: Version(event.metadata.version),
                        source,
                    })?;
                version = event.metadata.version;
                applied += 1;
            }
        }
        let mut snapshot_saved = false;
        if let SnapshotUse::Read {
            save_every: Some(every),
        } = snapshots
            && target.is_none()
            && applied >= every
            && version > 0
        {
            snapshot_saved = self.save(id, version, &state);
        }
        let counters = self.counters;
        counters.loads.fetch_add(1, Ordering::Relaxed);
        counters
            .events_applied
            .fetch_add(applied, Ordering::Relaxed);
        if from_snapshot.is_some() {
            counters.loads_from_snapshot.fetch_add(1, Ordering::Relaxed);
        }
        span.record("version", version);
        span.record("events_applied", applied);
        span.record("from_snapshot", from_snapshot.unwrap_or(0));
        Ok(Loaded {
            stream: StreamId::new(A::AGGREGATE_TYPE, id),
            version: Version(version),
            from_snapshot: from_snapshot.map(Version),
            events_applied: applied,
            snapshot_saved,
            state,
        })
    }

    /// Saves `state` as the snapshot at `version`; a failure is logged, not returned (a load
    /// must not fail because its snapshot could not be kept).
    fn save<A: Aggregate>(&self, id: &str, version: u64, state: &A) -> bool {
        match self.save_snapshot(id, version, state) {
            Ok(()) => true,
            Err(error) => {
                self.counters
                    .snapshot_save_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    name: "eventlog_snapshot_save_failed",
                    aggregate_type = A::AGGREGATE_TYPE,
                    aggregate_id = id,
                    version,
                    error = %error,
                    "automatic snapshot failed; the load itself succeeded"
                );
                false
            }
        }
    }

    /// Encodes and saves `state` as the snapshot of `id` at `version`.
    pub(crate) fn save_snapshot<A: Aggregate>(
        &self,
        id: &str,
        version: u64,
        state: &A,
    ) -> Result<(), LoadError> {
        let bytes = codec::encode_payload(state)?;
        self.store
            .save_snapshot(A::AGGREGATE_TYPE, id, version, A::STATE_VERSION, &bytes)?;
        self.counters
            .snapshots_saved
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl crate::log::EventLog {
    /// Loads aggregate `aggregate_id` of type `A`: its latest readable snapshot (of
    /// `A::STATE_VERSION`), then the events after it, each decoded as `A::Event` (upcast when
    /// older). When at least [`EventLogConfig::snapshot_every`](crate::EventLogConfig::snapshot_every)
    /// events were applied, saves a new snapshot at the loaded version (a failure to save is
    /// logged, not returned). A snapshot that does not decode is skipped with a warning. An
    /// aggregate with no events loads as version 0 with the default state.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
    /// use omni_domain::{Cache, CacheHit};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// let cache = log.load::<Cache>("c1")?;
    /// assert_eq!((cache.version.get(), cache.state.hits), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`LoadError::Apply`] when an event does not decode or apply; [`LoadError::Read`] or
    /// [`LoadError::Snapshot`] when the store cannot be read; [`LoadError::Closed`].
    pub fn load<A: Aggregate>(&self, aggregate_id: &str) -> Result<Loaded<A>, LoadError> {
        let save_every = self.inner().config.snapshot_every;
        self.loader(|l| l.load::<A>(aggregate_id, None, SnapshotUse::Read { save_every }))
    }

    /// Loads aggregate `aggregate_id` as it was at `version`: from the newest snapshot at or
    /// below it, then the events up to it. Never saves a snapshot.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, Version};
    /// use omni_domain::{Cache, CacheHit};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let config = EventLogConfig::new(dir.path()).registry(omni_domain::registry());
    /// let log = EventLog::open(config.snapshot_every(Some(2)))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// for _ in 0..5 {
    ///     log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// }
    /// assert!(log.load::<Cache>("c1")?.snapshot_saved); // a snapshot at version 5
    /// let then = log.load_at::<Cache>("c1", Version(3))?; // before that snapshot: from the events
    /// assert_eq!((then.version, then.state.hits, then.from_snapshot), (Version(3), 3, None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`LoadError::VersionNotReached`] when the aggregate is below `version`; otherwise as
    /// [`EventLog::load`](crate::EventLog::load).
    pub fn load_at<A: Aggregate>(
        &self,
        aggregate_id: &str,
        version: Version,
    ) -> Result<Loaded<A>, LoadError> {
        self.loader(|l| {
            l.load::<A>(
                aggregate_id,
                Some(version.get()),
                SnapshotUse::Read { save_every: None },
            )
        })
    }

    /// Rebuilds aggregate `aggregate_id` from all its events, ignoring snapshots (the seed's
    /// replay; also the reference a snapshot-based load must equal).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
    /// use omni_domain::{Cache, CacheHit};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// log.snapshot::<Cache>("c1")?;
    /// let replayed = log.replay::<Cache>("c1")?;
    /// assert_eq!((replayed.from_snapshot, replayed.events_applied), (None, 1));
    /// assert_eq!(replayed.state, log.load::<Cache>("c1")?.state);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`EventLog::load`](crate::EventLog::load).
    pub fn replay<A: Aggregate>(&self, aggregate_id: &str) -> Result<Loaded<A>, LoadError> {
        self.loader(|l| l.load::<A>(aggregate_id, None, SnapshotUse::None))
    }

    /// Loads aggregate `aggregate_id` and saves a snapshot of it at its current version now
    /// (unless it has no events, or its latest snapshot is already at that version).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId, Version};
    /// use omni_domain::{Cache, CacheHit};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// assert!(log.snapshot::<Cache>("c1")?.snapshot_saved);
    /// assert_eq!(log.load::<Cache>("c1")?.from_snapshot, Some(Version(1)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`EventLog::load`](crate::EventLog::load), plus [`LoadError::Snapshot`] or
    /// [`LoadError::Encode`] when the snapshot cannot be saved.
    pub fn snapshot<A: Aggregate>(&self, aggregate_id: &str) -> Result<Loaded<A>, LoadError> {
        self.loader(|l| {
            let mut loaded =
                l.load::<A>(aggregate_id, None, SnapshotUse::Read { save_every: None })?;
            if loaded.version > Version::NONE && loaded.from_snapshot != Some(loaded.version) {
                l.save_snapshot(aggregate_id, loaded.version.get(), &loaded.state)?;
                loaded.snapshot_saved = true;
            }
            Ok(loaded)
        })
    }
}
