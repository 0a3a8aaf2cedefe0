//! Opening what the commands read: a store directory, a checkpoint file (imported into a
//! temporary directory), or the store's newest checkpoint. A store held by a running process
//! (the daemon) is read **live**, read-only, from its log files: `log`, `stream`, `streams`,
//! `types` and `info` work on it; commands that need its sled data (snapshots, consumers, the
//! indexes `verify` checks) say so, with its newest checkpoint.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use eventlog::{
    AggregateInfo, CheckpointInfo, CheckpointManifest, EventLog, EventLogConfig, EventRegistry,
    OpenError, Position, ReadOnlyEventLog, RecordedEvent, StoreOpenError, StoreReadError, StreamId,
    StreamRead, Trace, TraceQuery, import_checkpoint, list_checkpoints,
};
use tempfile::TempDir;

use crate::cli::SourceArgs;
use crate::progress;

/// How long to wait for a store's lock: long enough for a just-closed store to be released,
/// short enough to report a running daemon at once.
const LOCK_WAIT: Duration = Duration::from_millis(300);

/// sled's page cache for the dump (it reads, mostly once).
const CACHE_BYTES: u64 = 64 << 20;

/// Events, lazily; an error ends the iteration.
pub type Events = Box<dyn Iterator<Item = Result<RecordedEvent, StoreReadError>>>;

/// What a source reads through: the store itself (opened as its only user), or a store in use
/// by another process, read-only from its log files.
#[derive(Debug)]
pub enum Handle {
    /// The store (or an imported checkpoint), opened read-write: every command works.
    Store(EventLog),
    /// A live store, read-only (see `EventLog::open_read_only`).
    Live(ReadOnlyEventLog),
}

impl Handle {
    /// The full handle, for commands that need the store's sled data; on a live store, an error
    /// saying what to do instead.
    ///
    /// # Errors
    ///
    /// On a live store.
    pub fn full(&self, command: &str) -> anyhow::Result<&EventLog> {
        match self {
            Self::Store(log) => Ok(log),
            Self::Live(live) => Err(anyhow::anyhow!(in_use_message(live.path(), command))),
        }
    }

    /// The registry that decodes payloads.
    pub fn registry(&self) -> &EventRegistry {
        match self {
            Self::Store(log) => log.registry(),
            Self::Live(live) => live.registry(),
        }
    }

    /// The last position reads see.
    ///
    /// # Errors
    ///
    /// When the store is closed.
    pub fn last_position(&self) -> anyhow::Result<u64> {
        Ok(match self {
            Self::Store(log) => log.last_position()?.get(),
            Self::Live(live) => live.last_position().get(),
        })
    }

    /// The global log from `from`.
    ///
    /// # Errors
    ///
    /// When the store is closed.
    pub fn read_log(&self, from: u64, limit: Option<usize>) -> anyhow::Result<Events> {
        Ok(match self {
            Self::Store(log) => Box::new(log.read_log(Position(from), limit)?),
            Self::Live(live) => Box::new(live.read_log(Position(from), limit)),
        })
    }

    /// One aggregate type's events from `from`.
    ///
    /// # Errors
    ///
    /// When the index cannot be read.
    pub fn read_aggregate_type(
        &self,
        aggregate_type: &str,
        from: u64,
        limit: Option<usize>,
    ) -> anyhow::Result<Events> {
        Ok(match self {
            Self::Store(log) => {
                Box::new(log.read_aggregate_type(aggregate_type, Position(from), limit)?)
            }
            Self::Live(live) => {
                Box::new(live.read_aggregate_type(aggregate_type, Position(from), limit)?)
            }
        })
    }

    /// One aggregate's events.
    ///
    /// # Errors
    ///
    /// When the index cannot be read.
    pub fn read_stream(&self, stream: &StreamId, read: StreamRead) -> anyhow::Result<Events> {
        Ok(match self {
            Self::Store(log) => Box::new(log.read_stream(stream, read)?),
            Self::Live(live) => Box::new(live.read_stream(stream, read)?),
        })
    }

    /// An aggregate's version (0: none).
    ///
    /// # Errors
    ///
    /// When the index cannot be read.
    pub fn stream_version(&self, stream: &StreamId) -> anyhow::Result<u64> {
        Ok(match self {
            Self::Store(log) => log.stream_version(stream)?.get(),
            Self::Live(live) => live.stream_version(stream).get(),
        })
    }

    /// The events of one trace or correlation id, as a causation tree.
    ///
    /// # Errors
    ///
    /// When the log cannot be read.
    pub fn trace(&self, query: &TraceQuery) -> anyhow::Result<Trace> {
        Ok(match self {
            Self::Store(log) => log.trace(query)?,
            Self::Live(live) => live.trace(query)?,
        })
    }

    /// The aggregates and their versions.
    ///
    /// # Errors
    ///
    /// When the index cannot be read.
    pub fn aggregates(&self, aggregate_type: Option<&str>) -> anyhow::Result<Vec<AggregateInfo>> {
        Ok(match self {
            Self::Store(log) => log.aggregates(aggregate_type)?,
            Self::Live(live) => live.aggregates(aggregate_type)?,
        })
    }
}

/// An opened source.
#[derive(Debug)]
pub struct Source {
    /// The event log read.
    pub log: Handle,
    /// What it is, for humans (`store ./omni-writer-data`, `checkpoint FILE`).
    pub description: String,
    /// The checkpoint's manifest, when the source is a checkpoint.
    pub manifest: Option<CheckpointManifest>,
    /// The store directory asked for (`--store`), for its checkpoint directory.
    pub store_dir: PathBuf,
    // Declared after `log`, so the log is closed before its directory is removed.
    _temp: Option<TempDir>,
}

impl Source {
    /// Closes the log and removes any temporary directory.
    ///
    /// # Errors
    ///
    /// When the store's final writes fail.
    pub fn close(self) -> anyhow::Result<()> {
        if let Handle::Store(log) = self.log {
            log.close().context("closing the store")?;
        }
        Ok(())
    }
}

/// How the dump opens a store: the Omni Writer's registry, no automatic snapshots.
pub fn config(dir: &Path) -> EventLogConfig {
    EventLogConfig::new(dir)
        .registry(omni_domain::registry())
        .store(|s| s.cache_capacity(CACHE_BYTES))
        .snapshot_every(None)
        .lock_wait(LOCK_WAIT)
}

/// The checkpoint directory of the store at `dir` (`<dir>/checkpoints`).
pub fn checkpoint_dir(dir: &Path) -> PathBuf {
    config(dir).store_config().checkpoint_dir()
}

/// The newest readable checkpoint in the store's checkpoint directory.
///
/// # Errors
///
/// When the directory cannot be read.
pub fn newest_checkpoint(store: &Path) -> anyhow::Result<Option<CheckpointInfo>> {
    let dir = checkpoint_dir(store);
    let listed = list_checkpoints(&dir)
        .with_context(|| format!("listing the checkpoints in {}", dir.display()))?;
    // Oldest first by manifest time; unreadable ones last.
    Ok(listed
        .into_iter()
        .rev()
        .find(|info| info.manifest.is_some()))
}

/// Opens the source `args` name.
///
/// # Errors
///
/// When the store does not exist, is in use (with the newest checkpoint in the message), or
/// cannot be opened; when a checkpoint is missing or damaged.
pub fn open(args: &SourceArgs) -> anyhow::Result<Source> {
    if let Some(file) = &args.checkpoint {
        return open_checkpoint(file, &args.store);
    }
    if args.latest_checkpoint {
        let Some(newest) = newest_checkpoint(&args.store)? else {
            bail!(
                "no checkpoint in {}: take one with `kill -USR1 <omni-writer pid>`, run omni-writer \
                 with --checkpoint-every SECS, or `events-dump checkpoint export FILE`",
                checkpoint_dir(&args.store).display()
            );
        };
        return open_checkpoint(&newest.path, &args.store);
    }
    open_store(&args.store)
}

/// Checks that `dir` looks like a store before anything opens it (opening would create one).
fn check_store_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        bail!(
            "no store at {}: the directory does not exist (start omni-writer, or pass --store DIR)",
            dir.display()
        );
    }
    // The store keeps sled's files in `<dir>/data` (docs/design.md, "Directory layout"): without
    // it, opening would create a new, empty store instead of reading one.
    if !dir.join("data").is_dir() {
        bail!(
            "{} is not an eventlog store (it has no data/ directory)",
            dir.display()
        );
    }
    Ok(())
}

fn open_store(dir: &Path) -> anyhow::Result<Source> {
    check_store_dir(dir)?;
    let log = match EventLog::open(config(dir)) {
        Ok(log) => Handle::Store(log),
        Err(OpenError::Store(StoreOpenError::Locked { .. })) => {
            tracing::info!(
                store = %dir.display(),
                "the store is in use by a running process: reading its log files read-only"
            );
            return open_live(dir);
        }
        Err(error) => {
            return Err(error).with_context(|| format!("opening the store at {}", dir.display()));
        }
    };
    Ok(Source {
        log,
        description: format!("store {}", dir.display()),
        manifest: None,
        store_dir: dir.to_path_buf(),
        _temp: None,
    })
}

/// Opens the store at `dir` read-only, from its log files: works while a running process
/// holds it, and takes no lock.
///
/// # Errors
///
/// When there is no store, it needs migrating, or its log files cannot be read.
pub fn open_live(dir: &Path) -> anyhow::Result<Source> {
    check_store_dir(dir)?;
    let live = EventLog::open_read_only(dir, omni_domain::registry())
        .with_context(|| format!("reading the store at {} read-only", dir.display()))?;
    Ok(Source {
        description: format!(
            "store {} (live: read-only from its log files, as of position {})",
            dir.display(),
            live.last_position()
        ),
        log: Handle::Live(live),
        manifest: None,
        store_dir: dir.to_path_buf(),
        _temp: None,
    })
}

/// What to say when `command` needs the sled data of a store a running process holds.
fn in_use_message(dir: &Path, command: &str) -> String {
    let head = format!(
        "the store at {} is in use by a running process (sled locks it while omni-writer runs): \
         `{command}` needs its sled data (snapshots, consumers, indexes), which only that process \
         can read. `log` (and `log --follow`), `stream`, `streams`, `types` and `info` read a live \
         store read-only; for `{command}`, stop the daemon first, or read a checkpoint",
        dir.display()
    );
    match newest_checkpoint(dir) {
        Ok(Some(info)) => {
            let (position, created) = info.manifest.as_ref().map_or((0, String::new()), |m| {
                (m.last_position, m.created_at.to_rfc3339())
            });
            format!(
                "{head}: its newest checkpoint is {} (position {position}, created {created}); \
                 rerun with --latest-checkpoint to read it",
                info.path.display()
            )
        }
        Ok(None) => format!(
            "{head}: it has no checkpoint yet: take one with `kill -USR1 <omni-writer pid>` (or \
             run omni-writer with --checkpoint-every SECS), then rerun with --latest-checkpoint"
        ),
        Err(error) => format!("{head}; its checkpoints could not be listed: {error:#}"),
    }
}

fn open_checkpoint(file: &Path, store_dir: &Path) -> anyhow::Result<Source> {
    if !file.is_file() {
        bail!("no checkpoint file at {}", file.display());
    }
    let temp = tempfile::Builder::new()
        .prefix("events-dump-")
        .tempdir()
        .context("creating a temporary directory for the checkpoint")?;
    let into = temp.path().join("store");
    let bar = progress::bar(0, "importing checkpoint");
    let imported = {
        let mut report = progress::callback(&bar);
        import_checkpoint(file, &into, Some(&mut report))
    };
    bar.finish_and_clear();
    let manifest = imported.with_context(|| format!("reading checkpoint {}", file.display()))?;
    let log =
        Handle::Store(EventLog::open(config(&into)).context("opening the imported checkpoint")?);
    Ok(Source {
        log,
        description: format!(
            "checkpoint {} (position {}, created {})",
            file.display(),
            manifest.last_position,
            manifest.created_at.to_rfc3339()
        ),
        manifest: Some(manifest),
        store_dir: store_dir.to_path_buf(),
        _temp: Some(temp),
    })
}
