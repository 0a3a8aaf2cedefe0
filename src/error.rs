//! Typed errors of the facade, one per operation: [`OpenError`], [`AppendError`],
//! [`ReadError`], [`LoadError`], [`SubscribeError`] and [`AdminError`], and [`Error`], the
//! superset with a `From` for each, for callers that handle them alike. Every cause is kept as
//! the error's [`source`](std::error::Error::source).

use events_bus::BusError;
use events_core::{ApplyError, CodecError, ExpectedVersion, RegistryError, StreamId, Version};
use events_sled::{
    AppendError as StoreAppendError, CheckpointError, OpenError as StoreOpenError,
    ReadError as StoreReadError, SnapshotError, StoreError,
};

/// The event log was closed: each operation's error has a `Closed` variant made from this.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Closed;

macro_rules! closed_into {
    ($($error:ident),+) => {
        $(impl From<Closed> for $error {
            fn from(_: Closed) -> Self {
                Self::Closed
            }
        })+
    };
}

closed_into!(
    AppendError,
    ReadError,
    LoadError,
    SubscribeError,
    AdminError
);

/// Why [`EventLog::open`](crate::EventLog::open) (or
/// [`EventLog::open_read_only`](crate::EventLog::open_read_only)) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A setting of [`EventLogConfig`](crate::EventLogConfig) (or of its bus settings) is out of
    /// range.
    #[error("invalid setting `{setting}`: {reason}")]
    InvalidConfig {
        /// The setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The store could not be opened (locked by another process, damaged, a setting out of
    /// range, a store to migrate first, ...).
    #[error(transparent)]
    Store(#[from] StoreOpenError),
    /// The publisher thread could not be started.
    #[error("the publisher thread could not start")]
    Thread(#[source] std::io::Error),
}

/// Why an append failed. Nothing of a failed append is stored.
///
/// # Example
///
/// ```
/// use eventlog::{AppendError, EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
/// use omni_domain::CacheMiss;
///
/// let dir = tempfile::tempdir()?;
/// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
/// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "expired".into() };
/// let stream = StreamId::of::<CacheMiss>("cache-1");
/// log.append_event(&stream, ExpectedVersion::NoStream, &miss, EventContext::default())?;
/// let again = log.append_event(&stream, ExpectedVersion::NoStream, &miss, EventContext::default());
/// assert!(matches!(again, Err(AppendError::WrongExpectedVersion { actual, .. }) if actual == 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// Optimistic concurrency: the stream is not at the version the append expected.
    #[error("`{stream}` is at version {actual}, the append expected {expected}")]
    WrongExpectedVersion {
        /// The stream appended to.
        stream: StreamId,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The stream's actual version (0: it does not exist).
        actual: Version,
    },
    /// An event names another stream than the one appended to.
    #[error("event {index} belongs to `{found}`, not to `{stream}` it was appended to")]
    WrongStream {
        /// The stream appended to.
        stream: StreamId,
        /// The index of the event in the append.
        index: usize,
        /// The stream the event names.
        found: StreamId,
    },
    /// A typed event's payload could not be encoded.
    #[error("an event's payload could not be encoded")]
    Encode(#[from] CodecError),
    /// The event log was closed.
    #[error("the event log is closed")]
    Closed,
    /// The store refused or failed the append: invalid or empty events, too large, the disk
    /// full, the store no longer writing, ...
    #[error(transparent)]
    Store(StoreAppendError),
}

impl From<StoreAppendError> for AppendError {
    fn from(error: StoreAppendError) -> Self {
        match error {
            StoreAppendError::WrongExpectedVersion {
                aggregate_type,
                aggregate_id,
                expected,
                actual,
            } => Self::WrongExpectedVersion {
                stream: StreamId::new(aggregate_type, aggregate_id),
                expected,
                actual: Version(actual),
            },
            StoreAppendError::Closed => Self::Closed,
            other => Self::Store(other),
        }
    }
}

impl AppendError {
    /// Whether this is a version conflict ([`AppendError::WrongExpectedVersion`]): reload the
    /// aggregate and decide again.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{AppendError, EventContext, EventLog, EventLogConfig, ExpectedVersion, StreamId};
    /// use omni_domain::CacheMiss;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "expired".into() };
    /// let stream = StreamId::of::<CacheMiss>("c1");
    /// log.append_event(&stream, ExpectedVersion::NoStream, &miss, EventContext::default())?;
    /// let again = log.append_event(&stream, ExpectedVersion::NoStream, &miss, EventContext::default());
    /// assert!(again.err().ok_or("no conflict")?.is_conflict());
    /// assert!(!AppendError::Closed.is_conflict());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::WrongExpectedVersion { .. })
    }
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The event log was closed.
    #[error("the event log is closed")]
    Closed,
    /// The store could not be read, or what it read does not decode.
    #[error(transparent)]
    Store(#[from] StoreReadError),
    /// The registry could not decode an event (unknown type, undecodable payload).
    #[error(transparent)]
    Decode(#[from] RegistryError),
}

/// Why an aggregate could not be loaded (or snapshotted).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The event log was closed.
    #[error("the event log is closed")]
    Closed,
    /// The aggregate's events could not be read.
    #[error(transparent)]
    Read(#[from] StoreReadError),
    /// Its snapshots could not be read or saved.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Its state could not be encoded for a snapshot.
    #[error("the aggregate's state could not be encoded")]
    Encode(#[from] CodecError),
    /// The aggregate could not apply one of its events.
    #[error("`{stream}` could not apply version {version}")]
    Apply {
        /// The aggregate's stream.
        stream: StreamId,
        /// The version of the event that failed.
        version: Version,
        /// Why.
        #[source]
        source: ApplyError,
    },
    /// [`EventLog::load_at`](crate::EventLog::load_at) asked for a version the aggregate has
    /// not reached.
    #[error("`{stream}` is at version {current}, not {requested}")]
    VersionNotReached {
        /// The aggregate's stream.
        stream: StreamId,
        /// The version asked for.
        requested: Version,
        /// The aggregate's current version.
        current: Version,
    },
}

/// Why a subscription or projection could not start or stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The event log was closed.
    #[error("the event log is closed")]
    Closed,
    /// The bus refused it (invalid settings, a thread that cannot start, an unknown
    /// subscription).
    #[error(transparent)]
    Bus(BusError),
    /// A durable subscription or projection of this name is already running in this process.
    #[error("a durable subscription or projection named `{name}` is already running")]
    DuplicateConsumer {
        /// The consumer's name.
        name: String,
    },
    /// The consumer's committed position and state could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A projection's stored state does not decode as its type.
    #[error("the stored state of projection `{name}` does not decode")]
    ProjectionState {
        /// The projection's name.
        name: String,
        /// Why.
        #[source]
        source: CodecError,
    },
    /// The name belongs to a durable subscription (a position without a projection state).
    #[error(
        "`{name}` has a committed position ({position}) but no projection state: it is a durable subscription"
    )]
    NotAProjection {
        /// The consumer's name.
        name: String,
        /// Its committed position.
        position: u64,
    },
}

impl From<BusError> for SubscribeError {
    fn from(error: BusError) -> Self {
        match error {
            BusError::ShutDown => Self::Closed,
            other => Self::Bus(other),
        }
    }
}

/// Why an administrative call ([`Admin`](crate::Admin): checkpoints, verification, consumers,
/// snapshots, flush) or [`EventLog::close`](crate::EventLog::close) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The event log was closed.
    #[error("the event log is closed")]
    Closed,
    /// A store-wide operation (flush, verify, consumers, close) failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A checkpoint could not be exported, listed or pruned.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A snapshot could not be saved or read.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A consumer of this name is running: it cannot be removed now.
    #[error("a durable subscription or projection named `{name}` is running")]
    ConsumerRunning {
        /// The consumer's name.
        name: String,
    },
    /// The bus failed to shut down cleanly.
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Any error of the facade: each operation's error converts into it, for callers that treat
/// them alike (`?` in a function returning `eventlog::Error`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`OpenError`].
    #[error(transparent)]
    Open(#[from] OpenError),
    /// See [`AppendError`].
    #[error(transparent)]
    Append(#[from] AppendError),
    /// See [`ReadError`].
    #[error(transparent)]
    Read(#[from] ReadError),
    /// See [`LoadError`].
    #[error(transparent)]
    Load(#[from] LoadError),
    /// See [`SubscribeError`].
    #[error(transparent)]
    Subscribe(#[from] SubscribeError),
    /// See [`AdminError`].
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// See [`ReplicationError`](events_nats::ReplicationError).
    #[error(transparent)]
    Replication(#[from] events_nats::ReplicationError),
}

impl Error {
    /// Whether this is a version conflict ([`AppendError::WrongExpectedVersion`]).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{
    ///     AdminError, AppendResult, Error, EventContext, EventLog, EventLogConfig, ExpectedVersion,
    ///     StreamId,
    /// };
    /// use omni_domain::CacheMiss;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "expired".into() };
    /// let stream = StreamId::of::<CacheMiss>("c1");
    /// let append = |expected| -> Result<AppendResult, Error> {
    ///     Ok(log.append_event(&stream, expected, &miss, EventContext::default())?)
    /// };
    /// append(ExpectedVersion::NoStream)?;
    /// assert!(append(ExpectedVersion::NoStream).err().ok_or("no conflict")?.is_conflict());
    /// assert!(!Error::from(AdminError::Closed).is_conflict());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Append(error) if error.is_conflict())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_are_lifted_out_of_store_append_errors() {
        let error = AppendError::from(StoreAppendError::WrongExpectedVersion {
            aggregate_type: "cache".into(),
            aggregate_id: "c".into(),
            expected: ExpectedVersion::NoStream,
            actual: 2,
        });
        assert!(error.is_conflict());
        assert!(Error::from(error).is_conflict());
        assert!(matches!(
            AppendError::from(StoreAppendError::Empty),
            AppendError::Store(StoreAppendError::Empty)
        ));
        assert!(matches!(
            AppendError::from(StoreAppendError::Closed),
            AppendError::Closed
        ));
    }

    #[test]
    fn causes_are_kept_as_sources() {
        use std::error::Error as _;
        let error = LoadError::Apply {
            stream: StreamId::new("cache", "c"),
            version: Version(3),
            source: ApplyError::rejected("no"),
        };
        assert_eq!(error.to_string(), "`cache/c` could not apply version 3");
        assert_eq!(
            error.source().map(ToString::to_string).as_deref(),
            Some("no")
        );
    }
}
