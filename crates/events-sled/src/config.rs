//! The store's configuration: a builder with documented defaults, validated by [`crate::Store::open`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use events_core::{EventRegistry, ValidationLimits};

use crate::error::OpenError;

/// What a crash keeps. See `docs/design.md` for the full contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// An append returns once it is sequenced and readable. It reaches the log's segment file at
    /// the next group write (immediately when the writer is idle) and the disk (`fdatasync`)
    /// within [`StoreConfig::flush_interval`].
    /// A crash loses at most the appends acknowledged since the last flush, and always a suffix:
    /// never part of an append, never out of order, never leaving a gap. Reads see every
    /// acknowledged event at once (read-your-writes), durable or not: an event read may still be
    /// lost by a crash, and its position then given to another event.
    Buffered,
    /// An append returns only after it is on disk: its group is appended to the log's active
    /// segment file and `fdatasync`ed (the log is the journal: sled, which holds only what can be
    /// rebuilt from the log, is not on this path), so it survives `kill -9` and power loss. Concurrent appends share one `fdatasync` (group commit). Reads see only durable
    /// events: until its sync is done, an append is not read, not counted by
    /// `Store::stream_version` or `Store::last_position` (but later appends are already checked
    /// against it).
    #[default]
    Durable,
}

/// When checkpoints are exported automatically, where they go and how long they are kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckpointPolicy {
    /// Directory of checkpoint files. Default = `<store path>/checkpoints`.
    pub dir: Option<PathBuf>,
    /// Export automatically once this many events were appended since the last checkpoint.
    /// Default = never.
    pub every_events: Option<u64>,
    /// Export automatically once this many payload and metadata bytes were appended since the last
    /// checkpoint. Default = never.
    pub every_bytes: Option<u64>,
    /// After each automatic export, delete this store's checkpoints older than this many days —
    /// never its newest checkpoint that passes full verification, and never another store's (see
    /// [`crate::Store::prune_checkpoints`]). At least 1 (0 is refused by [`crate::Store::open`]).
    /// Default = keep all.
    pub keep_days: Option<u32>,
}

/// Limits on what one append may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLimits {
    /// Limits on each event's fields and payload. Default = [`ValidationLimits::default`].
    pub validation: ValidationLimits,
    /// Most events in one append call (over all its aggregates). Default = 10 000.
    pub max_events_per_append: usize,
    /// Most payload bytes in one append call. Default = 8 MiB.
    pub max_append_bytes: usize,
    /// Most bytes of acknowledged events waiting for the writer before appends wait; with the
    /// page cache, this bounds the store's memory. A queued event counts as the memory it holds
    /// (the event and each heap block it owns: ~540 bytes for a 100-byte payload).
    /// Default = 16 MiB.
    pub max_unwritten_bytes: usize,
    /// Appends are refused with [`crate::AppendError::DiskFull`] while the store's filesystem has
    /// less free space than this, so the storage engine never runs out mid-write (sled can stall
    /// for good when a write fails for lack of space). Zero disables the check. Default = 64 MiB.
    pub min_free_disk_bytes: u64,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            validation: ValidationLimits::default(),
            max_events_per_append: 10_000,
            max_append_bytes: 8 << 20,
            max_unwritten_bytes: 16 << 20,
            min_free_disk_bytes: 64 << 20,
        }
    }
}

/// How to open a store.
///
/// # Example
///
/// ```
/// use events_sled::{Durability, Store, StoreConfig};
///
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(
///     StoreConfig::new(dir.path())
///         .cache_capacity(64 << 20)
///         .durability(Durability::Buffered),
/// )?;
/// assert_eq!(store.last_position(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub(crate) path: PathBuf,
    pub(crate) cache_capacity: u64,
    pub(crate) durability: Durability,
    pub(crate) flush_interval: Duration,
    pub(crate) group_delay: Duration,
    pub(crate) checkpoints: CheckpointPolicy,
    pub(crate) limits: StoreLimits,
    pub(crate) registry: Option<Arc<EventRegistry>>,
    pub(crate) record_target_bytes: usize,
    pub(crate) index_flush_events: u64,
    pub(crate) snapshots_to_keep: usize,
    pub(crate) segment_size: usize,
    pub(crate) log_segment_bytes: u64,
    pub(crate) max_cached_streams: usize,
    #[cfg(feature = "fault-injection")]
    pub(crate) sync_hook: Option<crate::fault::HookSlot>,
}

impl StoreConfig {
    /// A configuration for the store at `path`, with every default.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            cache_capacity: 256 << 20,
            durability: Durability::default(),
            flush_interval: Duration::from_millis(200),
            group_delay: Duration::ZERO,
            checkpoints: CheckpointPolicy::default(),
            limits: StoreLimits::default(),
            registry: None,
            record_target_bytes: 64 << 10,
            index_flush_events: 100_000,
            snapshots_to_keep: 3,
            segment_size: 1 << 20,
            log_segment_bytes: 64 << 20,
            max_cached_streams: 100_000,
            #[cfg(feature = "fault-injection")]
            sync_hook: None,
        }
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// sled's page cache, in bytes. Resident memory on scans is about twice this. Default = 256 MiB.
    #[must_use]
    pub fn cache_capacity(mut self, bytes: u64) -> Self {
        self.cache_capacity = bytes;
        self
    }

    /// What a crash keeps. Default = [`Durability::Durable`].
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How often the log's active segment is `fdatasync`ed in buffered mode, and sled (indexes,
    /// snapshots, consumers) is flushed to disk in both modes. In buffered mode this bounds what
    /// a crash loses. Default = 200 ms.
    #[must_use]
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// In buffered mode, how long the writer lets a small group grow before writing it (a group
    /// is written at once when it reaches `record_target_bytes`). Under a moderate append rate,
    /// larger groups mean fewer log records and fewer bytes per event; the cost is that much extra
    /// delay before events reach sled and subscribers (measured: 500 µs moved the median
    /// append→delivery latency from ~35 µs to ~600 µs). Under a high rate the writer is busy and
    /// groups grow anyway. Durable mode never waits. Default = zero (write at once).
    #[must_use]
    pub fn group_delay(mut self, delay: Duration) -> Self {
        self.group_delay = delay;
        self
    }

    /// Automatic checkpoints and their directory. Default = [`CheckpointPolicy::default`]
    /// (no automatic checkpoints, directory `<path>/checkpoints`).
    #[must_use]
    pub fn checkpoints(mut self, policy: CheckpointPolicy) -> Self {
        self.checkpoints = policy;
        self
    }

    /// Limits on appends. Default = [`StoreLimits::default`].
    #[must_use]
    pub fn limits(mut self, limits: StoreLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Accept only event types registered here (at a known schema version, on their aggregate
    /// type). Default = none: any event type is accepted.
    #[must_use]
    pub fn registry(mut self, registry: impl Into<Arc<EventRegistry>>) -> Self {
        self.registry = Some(registry.into());
        self
    }

    /// Size at which a group commit is cut (at the next append boundary). Each group is one log
    /// record in one frame: larger groups share a record's header, string table and chain link
    /// among more events; smaller ones make stream and type reads, which read and check the
    /// whole record holding an event, read less. Default = 64 KiB.
    #[must_use]
    pub fn record_target_bytes(mut self, bytes: usize) -> Self {
        self.record_target_bytes = bytes;
        self
    }

    /// How many events are indexed in memory before the indexes are persisted; also the most
    /// events an open replays. Default = 100 000.
    #[must_use]
    pub fn index_flush_events(mut self, events: u64) -> Self {
        self.index_flush_events = events;
        self
    }

    /// Snapshots kept per aggregate; older ones are deleted when a new one is saved. Default = 3.
    #[must_use]
    pub fn snapshots_to_keep(mut self, count: usize) -> Self {
        self.snapshots_to_keep = count;
        self
    }

    /// sled's log segment size, a power of two from 256 KiB to 16 MiB. Fixed when the store is
    /// created (reopening uses the stored one). Measured here with 64 KiB records: 1 MiB segments
    /// wrote faster and took 30–45 % less disk than 8 MiB ones (sled then keeps large tree nodes
    /// as blob files), reading 10–25 % slower. Default = 1 MiB.
    #[must_use]
    pub fn segment_size(mut self, bytes: usize) -> Self {
        self.segment_size = bytes;
        self
    }

    /// The size of the log's segment files, from 64 KiB to 4 GiB: the active segment is
    /// preallocated to it (so a sync updates no file size), and a full one is sealed and never
    /// written again. Takes effect for segments created from then on. Default = 64 MiB.
    #[must_use]
    pub fn log_segment_bytes(mut self, bytes: u64) -> Self {
        self.log_segment_bytes = bytes;
        self
    }

    /// Most aggregates whose current version is kept in memory once indexed; an aggregate not
    /// kept costs one sled lookup on its next append. Each kept one holds its key strings, version
    /// and last event id (a few hundred bytes). Default = 100 000.
    #[must_use]
    pub fn max_cached_streams(mut self, count: usize) -> Self {
        self.max_cached_streams = count;
        self
    }

    /// Test-only (cargo feature `fault-injection`): `hook` runs before each sync of the store's
    /// data and can delay it (by blocking) or fail it (by returning an error). Default = none.
    #[cfg(feature = "fault-injection")]
    #[must_use]
    pub fn sync_hook(mut self, hook: crate::fault::SyncHook) -> Self {
        self.sync_hook = Some(crate::fault::HookSlot(hook));
        self
    }

    /// The registry appends are checked against, if one was set with [`StoreConfig::registry`].
    pub fn get_registry(&self) -> Option<&EventRegistry> {
        self.registry.as_deref()
    }

    /// The limits appends are held to (see [`StoreConfig::limits`]).
    pub fn get_limits(&self) -> &StoreLimits {
        &self.limits
    }

    /// The directory checkpoints are written to.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.checkpoints
            .dir
            .clone()
            .unwrap_or_else(|| self.path.join("checkpoints"))
    }

    pub(crate) fn validate(&self) -> Result<(), OpenError> {
        let invalid = |setting: &'static str, reason: String| {
            Err(OpenError::InvalidConfig { setting, reason })
        };
        if self.path.as_os_str().is_empty() {
            return invalid("path", "the store path is empty".into());
        }
        if self.cache_capacity < 1 << 20 {
            return invalid(
                "cache_capacity",
                format!("{} bytes is below the 1 MiB minimum", self.cache_capacity),
            );
        }
        if self.flush_interval.is_zero() || self.flush_interval > Duration::from_secs(3600) {
            return invalid(
                "flush_interval",
                format!("{:?} is outside 1 ns ..= 1 h", self.flush_interval),
            );
        }
        if self.group_delay > Duration::from_secs(1) {
            return invalid(
                "group_delay",
                format!("{:?} is more than 1 s", self.group_delay),
            );
        }
        if !(1 << 10..=4 << 20).contains(&self.record_target_bytes) {
            return invalid(
                "record_target_bytes",
                format!("{} is outside 1 KiB ..= 4 MiB", self.record_target_bytes),
            );
        }
        if self.index_flush_events == 0 {
            return invalid("index_flush_events", "must be at least 1".into());
        }
        if self.snapshots_to_keep == 0 {
            return invalid("snapshots_to_keep", "must be at least 1".into());
        }
        if !self.segment_size.is_power_of_two()
            || !(256 << 10..=16 << 20).contains(&self.segment_size)
        {
            return invalid(
                "segment_size",
                format!(
                    "{} is not a power of two from 256 KiB to 16 MiB",
                    self.segment_size
                ),
            );
        }
        if !(64 << 10..=4 << 30).contains(&self.log_segment_bytes) {
            return invalid(
                "log_segment_bytes",
                format!("{} is outside 64 KiB ..= 4 GiB", self.log_segment_bytes),
            );
        }
        if self.max_cached_streams == 0 {
            return invalid("max_cached_streams", "must be at least 1".into());
        }
        let limits = &self.limits;
        if limits.max_events_per_append == 0 {
            return invalid("limits.max_events_per_append", "must be at least 1".into());
        }
        if limits.max_append_bytes == 0 || limits.max_unwritten_bytes < limits.max_append_bytes {
            return invalid(
                "limits.max_unwritten_bytes",
                format!(
                    "{} must be at least max_append_bytes ({}), which must be positive",
                    limits.max_unwritten_bytes, limits.max_append_bytes
                ),
            );
        }
        if limits.validation.max_id_len == 0
            || limits.validation.max_name_len == 0
            || limits.validation.max_id_len > u16::MAX as usize
            || limits.validation.max_name_len > u16::MAX as usize
        {
            return invalid(
                "limits.validation",
                "id and name lengths must be between 1 and 65535".into(),
            );
        }
        if self.checkpoints.keep_days == Some(0) {
            return invalid(
                "checkpoints.keep_days",
                "must be at least 1: 0 would delete each automatic checkpoint as it is written"
                    .into(),
            );
        }
        if matches!(self.checkpoints.every_events, Some(0))
            || matches!(self.checkpoints.every_bytes, Some(0))
        {
            return invalid(
                "checkpoints",
                "automatic thresholds must be positive".into(),
            );
        }
        Ok(())
    }
}
