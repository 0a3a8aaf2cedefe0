//! sled flushes, off the writer's path: every `flush_interval` (if anything was written) the
//! flusher thread makes what sled holds durable — `db.flush()` (which only `sync_file_range`s)
//! then `fdatasync` on sled's data file. In durable mode it first swaps the two journal files
//! (under the lock the writer holds from a journal entry to its sled insert, so the retired file
//! only holds groups already in sled) and starts a new epoch in the retired file afterwards.
//! After each flush it records the flushed position and its chain hash in the durable mark
//! (`mark.rs`). `Store::flush` and closing run the same procedure.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::fault::SyncPoint;
use crate::keys::FLUSH_SEQUENCE_KEY;
use crate::mark::Mark;
use crate::state::{Shared, lock};

impl Shared {
    /// Makes everything written to sled so far durable; returns the position it covers.
    ///
    /// Any failure fails the store (every later append gets `AppendError::Failed`), whoever
    /// called: Linux reports a writeback error once per open file description, so after a failed
    /// `fdatasync` the next one can "succeed" over data that never reached the disk. A failed store
    /// is not flushed again: only reopening it (which replays the journal and checks the log
    /// against the durable mark) tells what is on disk.
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

    /// [`Shared::flush_sled`]'s work, under its lock.
    fn flush_sled_locked(&self) -> Result<u64, String> {
        if let Some(journals) = lock(&self.journals).as_mut() {
            journals.swap();
        }
        let (written, hash) = {
            let state = lock(&self.state);
            (state.written_upto, state.written_hash)
        };
        let started = std::time::SystemTime::now();
        // Everything written to sled before this point — events, snapshots, consumer
        // positions — precedes this key in sled's log: if it survives, they do.
        let sequence = lock(&self.mark).next_sequence();
        self.log
            .insert(FLUSH_SEQUENCE_KEY, &sequence.to_be_bytes())
            .map_err(|e| format!("writing the flush sequence: {e}"))?;
        self.db.flush().map_err(|e| format!("flushing sled: {e}"))?;
        self.sync_new_blobs()
            .map_err(|e| format!("fsync of sled's blob files: {e}"))?;
        *lock(&self.blobs_synced) = started;
        self.sync_data_file()
            .map_err(|e| format!("fdatasync of sled's data file: {e}"))?;
        lock(&self.mark)
            .write(&Mark {
                sequence,
                position: written,
                hash,
            })
            .map_err(|e| format!("writing the durable mark: {e}"))?;
        if let Some(journals) = lock(&self.journals).as_mut() {
            journals
                .spare
                .reset()
                .map_err(|e| format!("retiring a journal file: {e}"))?;
        }
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        if state.durable_upto < written {
            state.durable_upto = written;
        }
        self.progress.notify_all();
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
