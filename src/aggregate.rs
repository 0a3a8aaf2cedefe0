//! Aggregates: state folded from an aggregate's events ([`Aggregate`]), loaded from the latest
//! snapshot plus the events after it ([`Loaded`]), snapshotted automatically.

use std::sync::atomic::{AtomicU64, Ordering};

use events_core::{EventRegistry, RecordedEvent, codec};
use events_sled::{Snapshot, SnapshotError, Store, StreamRead};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::{ApplyError, EventLogError};

/// State rebuilt by applying an aggregate's events in version order.
///
/// The state is also what snapshots hold: it is encoded with the event codec (bincode behind a
/// format byte), so it must be plain serde data (no `serde_json::Value`, no
/// `skip_serializing_if`, no `flatten`). Raise [`Aggregate::STATE_VERSION`] whenever the state's
/// shape changes: snapshots of another version are ignored, and rebuilt from the events.
///
/// # Example
///
/// ```
/// use eventlog::{
///     Aggregate, ApplyError, CacheHit, CacheMiss, EventContext, EventLog, EventLogConfig,
///     EventRegistry, ExpectedVersion, RecordedEvent,
/// };
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Default, Serialize, Deserialize)]
/// struct HitRate {
///     hits: u64,
///     misses: u64,
/// }
///
/// impl Aggregate for HitRate {
///     const AGGREGATE_TYPE: &'static str = "cache";
///     fn apply(&mut self, event: &RecordedEvent, _: &EventRegistry) -> Result<(), ApplyError> {
///         match event.event_type() {
///             "cache_hit" => self.hits += 1,
///             "cache_miss" => self.misses += 1,
///             _ => {}
///         }
///         Ok(())
///     }
/// }
///
/// let dir = tempfile::tempdir()?;
/// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
/// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
/// log.append_event("c1", ExpectedVersion::Any, &hit, EventContext::default())?;
/// log.append_event("c1", ExpectedVersion::Any, &hit, EventContext::default())?;
/// let loaded = log.load::<HitRate>("c1")?;
/// assert_eq!((loaded.state.hits, loaded.version), (2, 2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Aggregate: Default + Serialize + DeserializeOwned + Send + 'static {
    /// The aggregate type whose events this folds (`"article_generation"`).
    const AGGREGATE_TYPE: &'static str;
    /// The version of the state's shape, stored with each snapshot. Default = 1.
    const STATE_VERSION: u16 = 1;

    /// Applies one event (the next version) to the state. Decode payloads with
    /// `registry.decode::<E>(event)`, which upcasts old schemas.
    ///
    /// # Errors
    ///
    /// An [`ApplyError`] when the event cannot be applied; the load fails with
    /// [`EventLogError::Apply`].
    fn apply(&mut self, event: &RecordedEvent, registry: &EventRegistry) -> Result<(), ApplyError>;
}

/// An aggregate's state as loaded, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Loaded<A> {
    /// The aggregate's type.
    pub aggregate_type: String,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// The version the state reflects (0: the aggregate has no events, the state is the
    /// default).
    pub version: u64,
    /// The version of the snapshot the load started from, if it used one.
    pub from_snapshot: Option<u64>,
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
    ) -> Result<Option<(u64, A)>, EventLogError> {
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
    ) -> Result<Loaded<A>, EventLogError> {
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
                return Err(EventLogError::VersionNotReached {
                    aggregate_type: A::AGGREGATE_TYPE.to_string(),
                    aggregate_id: id.to_string(),
                    requested,
                    current,
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
                    .apply(&event, self.registry)
                    .map_err(|source| EventLogError::Apply {
                        aggregate_type: A::AGGREGATE_TYPE.to_string(),
                        aggregate_id: id.to_string(),
                        version: event.metadata.version,
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
            aggregate_type: A::AGGREGATE_TYPE.to_string(),
            aggregate_id: id.to_string(),
            version,
            from_snapshot,
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
    ) -> Result<(), EventLogError> {
        let bytes = codec::encode_payload(state)?;
        self.store
            .save_snapshot(A::AGGREGATE_TYPE, id, version, A::STATE_VERSION, &bytes)?;
        self.counters
            .snapshots_saved
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
