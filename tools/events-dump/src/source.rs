//! Opening what the commands read: a store directory, a checkpoint file (imported into a
//! temporary directory), or the store's newest checkpoint. A store held by a running process
//! is reported plainly, with its newest checkpoint.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use eventlog::{
    CheckpointInfo, CheckpointManifest, EventLog, EventLogConfig, EventLogError, OpenError,
    import_checkpoint, list_checkpoints,
};
use tempfile::TempDir;

use crate::cli::SourceArgs;
use crate::progress;

/// How long to wait for a store's lock: long enough for a just-closed store to be released,
/// short enough to report a running daemon at once.
const LOCK_WAIT: Duration = Duration::from_millis(300);

/// sled's page cache for the dump (it reads, mostly once).
const CACHE_BYTES: u64 = 64 << 20;

/// An opened source.
#[derive(Debug)]
pub struct Source {
    /// The event log read.
    pub log: EventLog,
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
        self.log.close().context("closing the store")?;
        Ok(())
    }
}

fn config(dir: &Path) -> EventLogConfig {
    EventLogConfig::new(dir)
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

fn open_store(dir: &Path) -> anyhow::Result<Source> {
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
    let log = match EventLog::open(config(dir)) {
        Ok(log) => log,
        Err(EventLogError::Open(OpenError::Locked { .. })) => {
            return Err(anyhow::anyhow!(in_use_message(dir)));
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

/// What to say when the store is locked by another process.
fn in_use_message(dir: &Path) -> String {
    let head = format!(
        "the store at {} is in use by a running process (sled locks it while omni-writer runs)",
        dir.display()
    );
    match newest_checkpoint(dir) {
        Ok(Some(info)) => {
            let (position, created) = info.manifest.as_ref().map_or((0, String::new()), |m| {
                (m.last_position, m.created_at.to_rfc3339())
            });
            format!(
                "{head}; its newest checkpoint is {} (position {position}, created {created}); \
                 rerun with --latest-checkpoint to read it",
                info.path.display()
            )
        }
        Ok(None) => format!(
            "{head}; it has no checkpoint yet: take one with `kill -USR1 <omni-writer pid>` (or \
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
    let log = EventLog::open(config(&into)).context("opening the imported checkpoint")?;
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
