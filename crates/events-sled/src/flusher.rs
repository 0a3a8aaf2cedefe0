//! sled flushes, off the writer's path: every `flush_interval` (if anything was written) the
//! flusher thread makes what sled holds durable — `db.flush()` (which only `sync_file_range`s)
//! then `fdatasync` on sled's data file. In durable mode it first swaps the two journal files
//! (under the lock the writer holds from a journal entry to its sled insert, so the retired file
//! only holds groups already in sled) and starts a new epoch in the retired file afterwards.
//! `Store::flush` and closing run the same procedure.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::state::{Shared, lock};

impl Shared {
    /// Makes everything written to sled so far durable; returns the position it covers.
    pub(crate) fn flush_sled(&self) -> Result<u64, String> {
        let mut flushed = lock(&self.flushed);
        if let Some(journals) = lock(&self.journals).as_mut() {
            journals.swap();
        }
        let written = lock(&self.state).written_upto;
        self.db.flush().map_err(|e| format!("flushing sled: {e}"))?;
        self.data_file
            .sync_data()
            .map_err(|e| format!("fdatasync of sled's data file: {e}"))?;
        if let Some(journals) = lock(&self.journals).as_mut() {
            journals
                .spare
                .reset()
                .map_err(|e| format!("retiring a journal file: {e}"))?;
        }
        *flushed = written;
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        if state.durable_upto < written {
            state.durable_upto = written;
        }
        self.progress.notify_all();
        Ok(written)
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
        let written = shared.written_upto.load(Ordering::Acquire);
        let flushed = *lock(&shared.flushed);
        if written > flushed
            && let Err(reason) = shared.flush_sled()
        {
            shared.fail(reason);
            return;
        }
    }
}
