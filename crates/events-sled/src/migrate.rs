//! Migration of a format-1 store (the log's records in sled, `L` · first position keys of the
//! `log` tree) into a new store of this build's format (records in segment files), through a
//! checkpoint: the records are copied byte for byte, so the hash chain carries over.
//!
//! sled writes to its directory whenever it opens one (a new snapshot of its page table, a
//! rewritten tail), so the old store is never opened in place: its sled directory is copied, under
//! sled's own lock (a store in use is refused), and the copy is read, with the store's journal
//! and durable mark (read in place: `format1`). The old store is left exactly as it was.

mod format1;

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::checkpoint::{
    CheckpointManifest, LogFollower, Origin, Progress, SectionWriter, import_checkpoint, invalid,
    io_error,
};
use crate::config::StoreConfig;
use crate::consumer::decode_consumer;
use crate::error::{CheckpointError, OpenError, StoreError};
use crate::keys::{FORMAT_KEY, STORE_ID_KEY, StreamKey, TAG_LOG};
use crate::record::{Hash, Record, record_hash};
use crate::recovery::FORMAT_SLED_LOG;
use crate::snapshot::decode_snapshot;
use crate::store::{data_dir, open_sled, panic_message, wait_unlocked};

/// Migrates the format-1 store at `from` into a new store at `to` (which must not exist, or be
/// empty), leaving `from` untouched.
///
/// The old store's sled directory is copied (under sled's lock: a store in use is refused) next
/// to `to`, and the copy is read into a checkpoint file next to `to`
/// (`.<to's name>.migrate.evlc.<pid>.partial`): the log records byte for byte in position order,
/// each checked to decode and to follow the one before (positions from 1 without a gap, the hash
/// chain, each aggregate's versions 1, 2, 3, ...); then the snapshots no newer than their
/// aggregate's last version in the records, then the consumers no further than the records' last
/// position (others are left out with a warning, as an export leaves them out). The file is
/// synced and imported with [`import_checkpoint`], which verifies it again and builds the new
/// store; the copy and the file are removed, also on failure (as is `to`, if the migration made
/// it). The manifest's `store_format` is 1, the format the records were taken from; its
/// `store_id` is the old store's (the new store gets an id of its own).
///
/// A format-1 store in durable mode that was not closed cleanly may hold its last acknowledged
/// appends only in its journal (`<from>/journal/journal-{a,b}.wal`): read under the same lock,
/// as format-1 open replayed it, the current epoch's intact entries (a torn tail dropped) whose
/// records sled does not hold yet follow sled's records into the checkpoint, each continuing the
/// log exactly. The durable mark (`<from>/durable.mark`) is then checked as format-1 open did:
/// sled's flush sequence must have reached the mark's, and the log the mark's position with the
/// mark's chain hash.
///
/// `progress` is told `(done, total)` in events: once while the records are copied, then again
/// while the new store is built. Disk space: the old store's sled directory and the checkpoint
/// are held next to `to` while the migration runs.
///
/// # Errors
///
/// [`CheckpointError::NotMigratable`] when `from` holds no format-1 store (another format, or
/// none); [`CheckpointError::Open`] with [`OpenError::Locked`] when a process holds the store
/// open, with another [`OpenError`] when sled cannot open the copy of its files;
/// [`CheckpointError::Invalid`] (naming `from`) when a record does not decode or does not follow
/// the one before, a snapshot or consumer does not decode, a journal file's header is damaged or
/// of another version, a damaged journal entry is followed by an intact one of its epoch, or a
/// journal record beyond sled's log does not continue it;
/// [`CheckpointError::LostFlushedWrites`] when the log does not reach the durable mark (sled's
/// files lost flushed writes; it names how many acknowledged events are missing);
/// [`CheckpointError::TargetNotEmpty`]
/// when `to` holds something; [`CheckpointError::Io`] when a file cannot be read, copied or
/// written (`from` not existing included); whatever [`import_checkpoint`] returns.
pub fn migrate_store(
    from: &Path,
    to: &Path,
    progress: Option<Progress<'_>>,
) -> Result<CheckpointManifest, CheckpointError> {
    refuse_non_empty(to)?;
    let existed = to.exists();
    let (copy, checkpoint) = temporary_paths(to);
    if let Some(parent) = checkpoint.parent() {
        fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    let mut progress = progress;
    // One callback lent to both steps (a `Progress` cannot be reborrowed for a shorter time).
    let mut report = |done: u64, total: u64| {
        if let Some(progress) = progress.as_mut() {
            progress(done, total);
        }
    };
    let exported = export_format_1(from, &copy, &checkpoint, Some(&mut report));
    let result = exported.and_then(|_| import_checkpoint(&checkpoint, to, Some(&mut report)));
    let _ = fs::remove_file(&checkpoint);
    if result.is_err() && !existed {
        // What a failed import made of the new store: a second attempt needs `to` empty.
        let _ = fs::remove_dir_all(to);
    }
    if let Ok(manifest) = &result {
        tracing::info!(
            name: "event_store_migrated",
            from = %from.display(),
            to = %to.display(),
            last_position = manifest.last_position,
            records = manifest.records,
            snapshots = manifest.snapshots,
            consumers = manifest.consumers,
            "format-1 store migrated"
        );
    }
    result
}

/// Refuses a target directory that holds something, before any work is done.
fn refuse_non_empty(to: &Path) -> Result<(), CheckpointError> {
    match fs::read_dir(to) {
        Ok(mut entries) => match entries.next() {
            Some(_) => Err(CheckpointError::TargetNotEmpty {
                path: to.to_path_buf(),
            }),
            None => Ok(()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CheckpointError::Io {
            path: to.to_path_buf(),
            source,
        }),
    }
}

/// Writes a checkpoint of the format-1 store at `from` to `file` (which must not exist), reading
/// a copy of its sled directory made at `copy` (removed again). On failure `file` is removed.
pub(crate) fn export_format_1(
    from: &Path,
    copy: &Path,
    file: &Path,
    progress: Option<Progress<'_>>,
) -> Result<CheckpointManifest, CheckpointError> {
    let created_at = Utc::now();
    let data = data_dir(from);
    if !from.is_dir() {
        return Err(CheckpointError::Io {
            path: from.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no store directory here"),
        });
    }
    if !data.join("db").is_file() {
        return Err(CheckpointError::NotMigratable {
            path: from.to_path_buf(),
            found: None,
        });
    }
    let copied = copy_locked(from, &data, copy);
    let result = copied.and_then(|files| {
        let config = StoreConfig::new(from);
        let db = open_sled(&config, copy)?;
        // sled can panic on damaged files, as it can when a store opens.
        let read = catch_unwind(AssertUnwindSafe(|| {
            write_from_sled(from, &db, &files, file, created_at, progress)
        }));
        drop(db);
        wait_unlocked(copy);
        read.unwrap_or_else(|panic| {
            Err(CheckpointError::Open(OpenError::EnginePanicked {
                message: panic_message(panic.as_ref()),
            }))
        })
    });
    let _ = fs::remove_dir_all(copy);
    if result.is_err() {
        let _ = fs::remove_file(file);
    }
    result
}

/// Copies the sled directory `data` of the store at `from` to `copy` and reads the store's
/// journal and durable mark, holding sled's lock on its data file meanwhile (so no process opens
/// the store during the copy, and the three are of one moment).
fn copy_locked(from: &Path, data: &Path, copy: &Path) -> Result<format1::Files, CheckpointError> {
    let db_file = data.join("db");
    let lock = fs::File::open(&db_file).map_err(io_error(&db_file))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            return Err(CheckpointError::Open(OpenError::Locked {
                path: from.to_path_buf(),
            }));
        }
        Err(fs::TryLockError::Error(source)) => {
            return Err(CheckpointError::Io {
                path: db_file,
                source,
            });
        }
    }
    let copied = copy_dir(data, copy).and_then(|()| format1::Files::read(from));
    let _ = lock.unlock();
    copied
}

/// Copies the directory `from` into a new directory `to`, recursively.
fn copy_dir(from: &Path, to: &Path) -> Result<(), CheckpointError> {
    fs::create_dir(to).map_err(io_error(to))?;
    for entry in fs::read_dir(from).map_err(io_error(from))? {
        let entry = entry.map_err(io_error(from))?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        if entry.file_type().map_err(io_error(&source))?.is_dir() {
            copy_dir(&source, &target)?;
        } else {
            fs::copy(&source, &target).map_err(io_error(&source))?;
        }
    }
    Ok(())
}

fn storage(e: sled::Error) -> CheckpointError {
    CheckpointError::Store(StoreError::Storage(e))
}

/// The store format of a format-1 candidate: its `M format` key, or 1 for a store older than
/// that key that holds log records (as opening decides); `None` for none.
fn store_format(from: &Path, log: &sled::Tree) -> Result<Option<u32>, CheckpointError> {
    match log.get(FORMAT_KEY).map_err(storage)? {
        Some(bytes) => {
            let array: [u8; 4] = bytes.as_ref().try_into().map_err(|_| {
                invalid(
                    from,
                    format!("the store's format key is {} bytes, not 4", bytes.len()),
                )
            })?;
            Ok(Some(u32::from_be_bytes(array)))
        }
        None if log.scan_prefix([TAG_LOG]).next().is_some() => Ok(Some(FORMAT_SLED_LOG)),
        None => Ok(None),
    }
}

/// The first position in a format-1 log record key.
fn key_position(key: &[u8]) -> Option<u64> {
    let (&tag, position) = key.split_first()?;
    let position: [u8; 8] = position.try_into().ok()?;
    (tag == TAG_LOG).then_some(u64::from_be_bytes(position))
}

/// The last position of a format-1 log (for progress), 0 when it is empty or its last record
/// does not decode (the copy reports that record).
fn last_position(log: &sled::Tree) -> Result<u64, CheckpointError> {
    let last = log.scan_prefix([TAG_LOG]).next_back().transpose();
    Ok(last
        .map_err(storage)?
        .and_then(|(_, value)| Record::parse(bytes::Bytes::copy_from_slice(&value)).ok())
        .map_or(0, |record| record.last_position()))
}

/// Writes the checkpoint of the format-1 store in `db` (a copy of the store at `from`) and
/// `files` (its journal and durable mark).
fn write_from_sled(
    from: &Path,
    db: &sled::Db,
    files: &format1::Files,
    file: &Path,
    created_at: chrono::DateTime<Utc>,
    mut progress: Option<Progress<'_>>,
) -> Result<CheckpointManifest, CheckpointError> {
    let log = db.open_tree("log").map_err(storage)?;
    let found = store_format(from, &log)?;
    if found != Some(FORMAT_SLED_LOG) {
        return Err(CheckpointError::NotMigratable {
            path: from.to_path_buf(),
            found,
        });
    }
    let store_id = match log.get(STORE_ID_KEY).map_err(storage)? {
        Some(bytes) => Some(
            uuid::Uuid::from_slice(&bytes)
                .map_err(|_| {
                    invalid(
                        from,
                        format!("the store id is {} bytes, not 16", bytes.len()),
                    )
                })?
                .hyphenated()
                .to_string(),
        ),
        None => None,
    };
    let journal = files.journal_records(from)?;
    let total = last_position(&log)?.max(journal.last().map_or(0, Record::last_position));
    let mark = files.mark();
    // The hash of the record ending at the mark's position, once one does.
    let mut hash_at_mark: Option<Hash> = None;
    let mut at_mark = |record: &Record| {
        if mark.is_some_and(|mark| mark.position == record.last_position()) {
            hash_at_mark = Some(record_hash(record.bytes()));
        }
    };
    let mut out = SectionWriter::create(file)?;
    let mut follower = LogFollower::new();
    for entry in log.scan_prefix([TAG_LOG]) {
        let (key, value) = entry.map_err(storage)?;
        let damaged = |detail: String| {
            invalid(
                from,
                format!(
                    "the format-1 log record under key {}: {detail}",
                    key.escape_ascii()
                ),
            )
        };
        let position = key_position(&key).ok_or_else(|| damaged("a malformed key".into()))?;
        let record = Record::parse(bytes::Bytes::copy_from_slice(&value))
            .map_err(|e| damaged(e.to_string()))?;
        if record.first_position() != position {
            return Err(damaged(format!(
                "the record starts at position {}, its key says {position}",
                record.first_position()
            )));
        }
        follower.follow(&record).map_err(damaged)?;
        out.record(&record)?;
        at_mark(&record);
        if let Some(progress) = progress.as_mut() {
            progress(record.last_position(), total);
        }
    }
    // The journal's records that sled does not hold yet, as format-1 open replayed them: those
    // already in sled are skipped, the others must continue the log exactly.
    for record in journal {
        if record.last_position() <= follower.last_position() {
            continue;
        }
        follower.follow(&record).map_err(|detail| {
            invalid(
                from,
                format!(
                    "the format-1 journal's record for positions {}..={} does not continue the \
                     log: {detail}",
                    record.first_position(),
                    record.last_position()
                ),
            )
        })?;
        out.record(&record)?;
        at_mark(&record);
        if let Some(progress) = progress.as_mut() {
            progress(record.last_position(), total);
        }
    }
    let last = follower.last_position();
    format1::check_mark(from, &log, mark, last, hash_at_mark)?;
    let snapshots = db.open_tree("snapshots").map_err(storage)?;
    for entry in snapshots.iter() {
        let (key, value) = entry.map_err(storage)?;
        let snapshot = decode_snapshot(&key, &value).map_err(|e| {
            invalid(
                from,
                format!(
                    "the format-1 snapshot {}: {e}",
                    crate::index::show_key(&key)
                ),
            )
        })?;
        let stream = StreamKey::new(&snapshot.aggregate_type, &snapshot.aggregate_id);
        out.snapshot(&key, &value, &snapshot, follower.version(stream.as_bytes()))?;
    }
    let consumers = db.open_tree("consumers").map_err(storage)?;
    for entry in consumers.iter() {
        let (key, value) = entry.map_err(storage)?;
        let name = String::from_utf8_lossy(&key).into_owned();
        let consumer = decode_consumer(&value)
            .map_err(|detail| invalid(from, format!("the format-1 consumer `{name}`: {detail}")))?;
        out.consumer(&key, &value, consumer.position, last)?;
    }
    out.finish(Origin {
        created_at,
        store_format: FORMAT_SLED_LOG,
        source: from.display().to_string(),
        store_id,
    })
}

/// The temporary paths a migration into `to` uses, next to it: the copy of the old store's sled
/// directory and the checkpoint file, named after `to` and this process.
fn temporary_paths(to: &Path) -> (PathBuf, PathBuf) {
    let parent = to
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "store".into());
    let pid = std::process::id();
    (
        parent.join(format!(".{name}.migrate-sled.{pid}.partial")),
        parent.join(format!(".{name}.migrate.evlc.{pid}.partial")),
    )
}
