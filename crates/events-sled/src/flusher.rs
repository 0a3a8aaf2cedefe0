//! Flushes, off the writer's path: every `flush_interval` (if anything was written) the flusher
//! thread `fdatasync`s the log's active segment (buffered mode's durability point), then makes
//! what sled holds durable — `db.flush()` (which only `sync_file_range`s) then `fdatasync` on
//! sled's data file — with the synced position noted in sled. `Store::flush` and closing run the
//! same procedure.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::fault::SyncPoint;
use crate::keys::SYNCED_KEY;
use crate::record::encode_synced;
use crate::state::{Shared, lock};

impl Shared {
    /// Makes everything written to sled so far durable; returns the position it covers.
    ///
    /// Any failure fails the store (every later append gets `AppendError::Failed`), whoever
    /// called: Linux reports a writeback error once per open file description, so after a failed
    /// `fdatasync` the next one can "succeed" over data that never reached the disk. A failed store
    /// is not flushed again: only reopening it (which recovers the log's tail) tells what is on
    /// disk.
    pub(crate) fn flush_sled(&self) -> Result<u64, String> {
        let mut flushed = lock(&self.flushed);
        if let Some(reason) = &lock(&self.state).failed {
            return Err(reason.clone());
        }
        match self.flush_sled_locked() {
            Ok(written) => {
                *flushed = written;
                Ok(written)
            }
            Err(reason) => {
                self.fail(reason.clone());
                Err(reason)
            }
        }
    }

    /// `fdatasync`s sled's data file (`sync_file_range` in sled's own flush does not reach the
    /// drive). A failure must fail the store: see [`Shared::flush_sled`].
    pub(crate) fn sync_data_file(&self) -> std::io::Result<()> {
        self.before_sync(SyncPoint::DataFile)?;
        self.data_file.sync_data()
    }

    /// [`Shared::flush_sled`]'s work, under its lock: the log's active segment first (it is the
    /// truth), then sled, with a note of the synced position that sled may only hold once the
    /// segment bytes it names are on disk.
    fn flush_sled_locked(&self) -> Result<u64, String> {
        let (written, hash) = {
            let state = lock(&self.state);
            (state.written_upto, state.written_hash)
        };
        self.sync_log()
            .map_err(|e| format!("fdatasync of the log: {e}"))?;
        {
            let mut state = lock(&self.state);
            if state.durable_upto < written {
                state.durable_upto = written;
            }
            self.progress.notify_all();
        }
        let started = std::time::SystemTime::now();
        // sled learns of a synced position only after the segment sync: on open, a log shorter
        // than this position lost acknowledged events (damaged or truncated segment files).
        self.log
            .insert(SYNCED_KEY, encode_synced(written, &hash).as_slice())
            .map_err(|e| format!("writing the synced position: {e}"))?;
        self.db.flush().map_err(|e| format!("flushing sled: {e}"))?;
        self.sync_new_blobs()
            .map_err(|e| format!("fsync of sled's blob files: {e}"))?;
        *lock(&self.blobs_synced) = started;
        self.sync_data_file()
            .map_err(|e| format!("fdatasync of sled's data file: {e}"))?;
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(written)
    }

    /// Flushes sled if anything was written since the last flush.
    pub(crate) fn flush_if_behind(&self) -> Result<(), String> {
        let written = self.written_upto.load(Ordering::Acquire);
        if *lock(&self.flushed) < written {
            self.flush_sled()?;
        }
        Ok(())
    }
}

impl Shared {
    /// sled keeps large tree nodes in files under `data/blobs` and does not `fsync` them: sync
    /// every blob written since the previous flush began (with a margin for clock granularity),
    /// then the directory, before the flush is called durable.
    fn sync_new_blobs(&self) -> std::io::Result<()> {
        let dir = self.config.path.join(crate::store::DATA_DIR).join("blobs");
        let since = *lock(&self.blobs_synced) - std::time::Duration::from_secs(2);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut synced = 0;
        for entry in entries {
            let entry = entry?;
            let fresh = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|modified| modified >= since)
                .unwrap_or(true);
            if fresh {
                match std::fs::File::open(entry.path()) {
                    Ok(file) => file.sync_all()?,
                    // sled deletes superseded blobs at any time.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                synced += 1;
            }
        }
        if synced > 0 {
            std::fs::File::open(&dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// Starts the thread that flushes sled every `flush_interval` while something new was written.
pub(crate) fn start(shared: &Arc<Shared>) -> std::io::Result<()> {
    let thread_shared = Arc::clone(shared);
    let handle = std::thread::Builder::new()
        .name("eventlog-flusher".into())
        .spawn(move || run(&thread_shared))?;
    *lock(&shared.flusher) = Some(handle);
    Ok(())
}

fn run(shared: &Shared) {
    loop {
        {
            let state = lock(&shared.state);
            if state.closing || state.failed.is_some() {
                return;
            }
            let state = shared
                .flusher_wake
                .wait_timeout(state, shared.config.flush_interval)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
            if state.closing || state.failed.is_some() {
                return;
            }
        }
        if shared.flush_if_behind().is_err() {
            // `flush_sled` has failed the store.
            return;
        }
    }
}
