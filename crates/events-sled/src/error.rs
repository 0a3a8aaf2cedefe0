//! Typed errors of `events-sled`, one enum per operation.

use std::path::PathBuf;

use events_core::ValidationError;

use events_core::ExpectedVersion;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A setting is out of range.
    #[error("invalid setting `{setting}`: {reason}")]
    InvalidConfig {
        /// The setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Another process holds the store open (sled locks its directory).
    #[error(
        "the store at {} is in use by another process; open a checkpoint of it instead",
        path.display()
    )]
    Locked {
        /// The store's directory.
        path: PathBuf,
    },
    /// There is no store at the path (read-only opens, which never create one).
    #[error("no store at {}: it has neither a log/ nor a data/ directory", path.display())]
    NoStore {
        /// The directory asked for.
        path: PathBuf,
    },
    /// A file or directory could not be used.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// sled reported an error.
    #[error("storage error while opening: {0}")]
    Storage(#[source] sled::Error),
    /// sled panicked on damaged files; the panic was caught.
    #[error("the storage engine failed on damaged files: {message}")]
    EnginePanicked {
        /// The panic's message.
        message: String,
    },
    /// The store was written by an older build in a layout this one does not open in place:
    /// `events-dump migrate` copies it into a new store.
    #[error(
        "the store at {} has format {found}; this build reads format {supported}: migrate it with `events-dump migrate --from {} --to NEW_DIR`",
        path.display(), path.display()
    )]
    NeedsMigration {
        /// The store's directory.
        path: PathBuf,
        /// The format the store has.
        found: u32,
        /// The format this build reads.
        supported: u32,
    },
    /// The store was written by a newer format than this build reads.
    #[error("store format {found} is newer than this build's {supported}")]
    FormatTooNew {
        /// The format in the store.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },
    /// The store's own invariants do not hold: the files are damaged.
    #[error("the store is corrupted: {detail}")]
    Corrupted {
        /// What is wrong and where.
        detail: String,
    },
}

/// Why an append was refused or failed. Nothing of a refused append is stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// Optimistic concurrency: the aggregate is not at the expected version.
    #[error(
        "`{aggregate_type}/{aggregate_id}` is at version {actual}, the append expected {expected}"
    )]
    WrongExpectedVersion {
        /// The aggregate's type.
        aggregate_type: String,
        /// The aggregate's id.
        aggregate_id: String,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The aggregate's actual version (0: it does not exist).
        actual: u64,
    },
    /// An event is invalid.
    #[error("event {index} is invalid: {source}")]
    Invalid {
        /// Index of the event within the call (over all aggregates).
        index: usize,
        /// Why.
        #[source]
        source: ValidationError,
    },
    /// The call holds no events, or an aggregate with no events.
    #[error("nothing to append: every aggregate needs at least one event")]
    Empty,
    /// A multi-aggregate append names one aggregate twice.
    #[error("`{aggregate_type}/{aggregate_id}` appears twice in one append")]
    DuplicateAggregate {
        /// The aggregate's type.
        aggregate_type: String,
        /// The aggregate's id.
        aggregate_id: String,
    },
    /// The call is larger than the configured limits.
    #[error("the append's {what} is {size}, the limit is {max}")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The filesystem is nearly full: the append was refused before anything was written. It
    /// succeeds again once space is freed.
    #[error(
        "only {available} bytes are free on the store's filesystem, appends need {required}: free some space"
    )]
    DiskFull {
        /// Free bytes on the filesystem.
        available: u64,
        /// The configured minimum (`StoreLimits::min_free_disk_bytes`).
        required: u64,
    },
    /// The store stopped writing after a storage failure; reopen it.
    #[error("the store stopped writing after a failure ({reason}); reopen it")]
    Failed {
        /// The failure.
        reason: String,
    },
    /// The store is closed.
    #[error("the store is closed")]
    Closed,
    /// Reading the aggregate's index or a possible earlier attempt failed; damaged data (an
    /// index beyond the log's end, a log whose positions would pass `u64::MAX`) is
    /// [`ReadError::Corrupted`].
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// sled reported an error.
    #[error("storage error while reading: {0}")]
    Storage(#[from] sled::Error),
    /// Stored bytes do not decode.
    #[error("corrupted data: {detail}")]
    Corrupted {
        /// What is wrong and where.
        detail: String,
    },
    /// Reading the log's segment files failed.
    #[error("I/O error reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Why a snapshot could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The snapshot's version is beyond the aggregate's current version.
    #[error(
        "cannot snapshot `{aggregate_type}/{aggregate_id}` at version {version}: it is at {current}"
    )]
    VersionAhead {
        /// The aggregate's type.
        aggregate_type: String,
        /// The aggregate's id.
        aggregate_id: String,
        /// The snapshot's version.
        version: u64,
        /// The aggregate's current version.
        current: u64,
    },
    /// Version 0 holds no state to snapshot.
    #[error("a snapshot needs a version of at least 1")]
    VersionZero,
    /// The store stopped writing, so the snapshot could not be ordered after its events.
    #[error("the store is not writing: {reason}")]
    NotWriting {
        /// Why.
        reason: String,
    },
    /// sled reported an error.
    #[error("storage error on snapshots: {0}")]
    Storage(#[from] sled::Error),
    /// A stored snapshot does not decode.
    #[error("corrupted snapshot: {detail}")]
    Corrupted {
        /// What is wrong and where.
        detail: String,
    },
    /// Reading the aggregate's version failed.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Why a checkpoint could not be exported, verified, imported, listed or pruned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A file could not be read or written.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a valid checkpoint, or its content does not match its manifest (for
    /// [`crate::migrate_store`]: the format-1 store's records, snapshots or consumers are
    /// damaged; `path` is then the store's directory).
    #[error("checkpoint {} is invalid: {detail}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and where.
        detail: String,
    },
    /// The import target already holds something.
    #[error("cannot import into {}: the directory is not empty", path.display())]
    TargetNotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// Reading the store failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Opening the import target failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Writing the imported events failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store is closed or failed.
    #[error("the store is not writing: {reason}")]
    NotWriting {
        /// Why.
        reason: String,
    },
    /// [`crate::migrate_store`] was given something other than a format-1 store: only those are
    /// migrated (a store of this build's format opens as it is).
    #[error(
        "{} is not a format-1 store ({}): only format-1 stores are migrated",
        path.display(),
        match found {
            Some(format) => format!("it has format {format}"),
            None => "it holds no store format".to_string(),
        }
    )]
    NotMigratable {
        /// The directory given as the store to migrate.
        path: PathBuf,
        /// The store format found there; `None` when there is none (an empty store, or not a
        /// store).
        found: Option<u32>,
    },
    /// [`crate::migrate_store`]: the format-1 store's durable mark (`durable.mark`) says sled had
    /// flushed writes that its files no longer hold (they were truncated or damaged), so
    /// migrating it would drop acknowledged data. The old store is left as it is.
    #[error(
        "the format-1 store at {} lost writes it had flushed to disk: {detail}; {} acknowledged \
         events are missing (the log ends at position {last_position}, the durable mark is at \
         {durable_position}); it is not migrated",
        path.display(),
        durable_position.saturating_sub(*last_position)
    )]
    LostFlushedWrites {
        /// The format-1 store's directory.
        path: PathBuf,
        /// The last position of its log (sled's records and the journal's that continue them).
        last_position: u64,
        /// The position its durable mark says was flushed.
        durable_position: u64,
        /// What does not match the mark.
        detail: String,
    },
}

/// Why a store-wide operation (flush, close, listing, counters) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled reported an error.
    #[error("storage error: {0}")]
    Storage(#[from] sled::Error),
    /// A file operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Stored bytes do not decode.
    #[error("corrupted data: {detail}")]
    Corrupted {
        /// What is wrong and where.
        detail: String,
    },
    /// The store stopped writing after a storage failure; reopen it.
    #[error("the store stopped writing after a failure ({reason}); reopen it")]
    Failed {
        /// The failure.
        reason: String,
    },
    /// The store is closed.
    #[error("the store is closed")]
    Closed,
    /// A consumer committed a position the log has not reached (readers see up to
    /// `last_position`).
    #[error("position {position} is beyond the log's end at {last_position}")]
    PositionBeyondLog {
        /// The position given.
        position: u64,
        /// The last position readers see.
        last_position: u64,
    },
}

impl From<ReadError> for StoreError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Storage(e) => Self::Storage(e),
            ReadError::Corrupted { detail } => Self::Corrupted { detail },
            ReadError::Io { source, .. } => Self::Io(source),
        }
    }
}
