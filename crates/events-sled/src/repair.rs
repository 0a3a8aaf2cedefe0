//! Rebuilding sled's part of a store from the log. sled holds only what the log can rebuild
//! (the stream and type indexes) plus snapshots and consumer positions: when sled's files are
//! damaged, its directory is set aside and a new one is built from the segment files, keeping
//! the snapshots and consumers the old one still yields.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use crate::config::StoreConfig;
use crate::error::OpenError;
use crate::keys::{FORMAT_KEY, STORE_ID_KEY};
use crate::recovery::{LOG_DIR, log_id, open_corrupted};
use crate::store::{DATA_DIR, STORE_FORMAT, Store, open_sled, panic_message, wait_unlocked};

/// What [`repair_store`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RepairReport {
    /// The log's last position: every event is still there (the log was not touched).
    pub last_position: u64,
    /// Where sled's damaged directory was moved (kept, not deleted), if there was one.
    pub set_aside: Option<PathBuf>,
    /// Whether the old sled directory could be opened to salvage snapshots and consumers.
    pub salvaged: bool,
    /// Snapshot entries carried over.
    pub snapshots: u64,
    /// Consumer positions carried over.
    pub consumers: u64,
}

/// Entries of the snapshots and consumers trees of a damaged sled directory, if it opens.
type Salvage = (Vec<(sled::IVec, sled::IVec)>, Vec<(sled::IVec, sled::IVec)>);

fn salvage(config: &StoreConfig, data: &Path) -> Option<Salvage> {
    let read = || -> Result<Salvage, OpenError> {
        let db = open_sled(config, data)?;
        let entries = |name: &str| -> Result<Vec<_>, OpenError> {
            let tree = db.open_tree(name).map_err(OpenError::Storage)?;
            // What reads back before the first damaged page; the rest is lost.
            Ok(tree.iter().map_while(Result::ok).collect())
        };
        Ok((entries("snapshots")?, entries("consumers")?))
    };
    let result = catch_unwind(AssertUnwindSafe(read));
    wait_unlocked(data);
    let error = match result {
        Ok(Ok(salvage)) => return Some(salvage),
        Ok(Err(e)) => e.to_string(),
        Err(panic) => format!("sled panicked: {}", panic_message(panic.as_ref())),
    };
    tracing::warn!(
        name: "event_store_repair_salvage_failed",
        error = %error,
        "the damaged sled directory does not open: snapshots and consumer positions are not carried over"
    );
    None
}

/// Rebuilds sled's part of the store at `path` from its log: sled's directory (`data/`) is
/// moved aside to `data.damaged-<unix micros>` (kept, never deleted), a new one is made with the
/// store's id (from the log's segment headers), the snapshots and consumer positions the old
/// directory still yields are carried over, and opening the store replays the whole log into
/// new indexes (closing persists them). The log itself is not touched.
///
/// `Store::open` does this by itself when sled's files fail to open (sled reports them
/// corrupted, or panics on them) and the store has a log; `events-dump repair` runs it on demand
/// (for damage sled does not notice on open, which `verify` reports in the indexes).
///
/// What is lost: a consumer position or snapshot the damaged directory no longer yields (the
/// consumer then starts from the beginning: events are delivered again, never skipped; a missing
/// snapshot costs load time), the persisted counters (events retrieved, checkpoints and snapshots
/// created), and the synced-position check of the next open (sled's note of it is gone).
///
/// # Errors
///
/// [`OpenError::Locked`] when a process holds the store; [`OpenError::Corrupted`] when there is no
/// log to rebuild from; [`OpenError::Io`] when moving or creating directories fails; any error of
/// [`Store::open`] on the rebuilt store.
pub fn repair_store(path: &Path) -> Result<RepairReport, OpenError> {
    let config = StoreConfig::new(path);
    let data = path.join(DATA_DIR);
    let log_dir = path.join(LOG_DIR);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OpenError::Io { path, source }
    };
    let store_id = log_id(path)?.ok_or_else(|| {
        open_corrupted(format!(
            "{} holds no intact segment: there is no log to rebuild from",
            log_dir.display()
        ))
    })?;
    let mut set_aside = None;
    if data.exists() {
        // sled locks `data/db` while a process has the store open.
        if let Ok(file) = std::fs::File::open(data.join("db")) {
            if fs2::FileExt::try_lock_exclusive(&file).is_err() {
                return Err(OpenError::Locked {
                    path: path.to_path_buf(),
                });
            }
            let _ = fs2::FileExt::unlock(&file);
        }
        let aside = path.join(format!(
            "{DATA_DIR}.damaged-{}",
            chrono::Utc::now().timestamp_micros()
        ));
        std::fs::rename(&data, &aside).map_err(io(&data))?;
        set_aside = Some(aside);
    }
    let salvaged = set_aside
        .as_deref()
        .and_then(|aside| salvage(&config, aside));
    let (mut snapshots, mut consumers) = (0, 0);
    std::fs::create_dir_all(&data).map_err(io(&data))?;
    {
        let db = open_sled(&config, &data)?;
        let tree = |name: &str| db.open_tree(name).map_err(OpenError::Storage);
        let log = tree("log")?;
        log.insert(FORMAT_KEY, &STORE_FORMAT.to_be_bytes())
            .map_err(OpenError::Storage)?;
        log.insert(STORE_ID_KEY, store_id.as_slice())
            .map_err(OpenError::Storage)?;
        if let Some((old_snapshots, old_consumers)) = &salvaged {
            let (snapshot_tree, consumer_tree) = (tree("snapshots")?, tree("consumers")?);
            for (key, value) in old_snapshots {
                snapshot_tree
                    .insert(key, value)
                    .map_err(OpenError::Storage)?;
                snapshots += 1;
            }
            for (key, value) in old_consumers {
                consumer_tree
                    .insert(key, value)
                    .map_err(OpenError::Storage)?;
                consumers += 1;
            }
        }
        db.flush().map_err(OpenError::Storage)?;
        std::fs::File::open(data.join("db"))
            .and_then(|file| file.sync_all())
            .map_err(io(&data))?;
    }
    wait_unlocked(&data);
    // No watermark: opening replays the whole log into the indexes; closing persists them.
    let store = Store::open_once(config).map_err(crate::store::OpenFailure::into_error)?;
    let last_position = store.last_position();
    store
        .close()
        .map_err(|e| open_corrupted(format!("closing the rebuilt store: {e}")))?;
    let report = RepairReport {
        last_position,
        set_aside,
        salvaged: salvaged.is_some(),
        snapshots,
        consumers,
    };
    tracing::warn!(
        name: "event_store_repaired",
        path = %path.display(),
        last_position,
        set_aside = ?report.set_aside,
        snapshots,
        consumers,
        "sled's part of the store was rebuilt from the log"
    );
    Ok(report)
}
