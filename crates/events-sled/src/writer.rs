//! The writer thread: the only writer of the log's segment files. It takes acknowledged events in
//! commit order, turns each group into one hash-chained record, appends it to the active segment
//! (in durable mode then `fdatasync`s it), and hands the committed events to the commit
//! listener. sled flushes (`flusher.rs`) and index persistence (`indexer.rs`) happen on their
//! own threads, so the writer never waits for either.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use events_core::RecordedEvent;

use crate::config::Durability;
use crate::fault::SyncPoint;
use crate::record::{Hash, encode_record, record_hash};
use crate::segment::SegmentError;
use crate::state::{Shared, lock};

pub(crate) struct Writer {
    shared: Arc<Shared>,
    chain_head: Hash,
    /// When the group now forming was first seen (buffered mode's grouping window).
    window_start: Option<Instant>,
}

/// Approximate bytes an event takes in a record (for cutting records and backpressure).
pub(crate) fn event_size(event: &RecordedEvent) -> usize {
    let m = &event.metadata;
    48 + event.payload.len()
        + m.aggregate_id.len()
        + [
            &m.trace_id,
            &m.user_id,
            &m.session_id,
            &m.correlation_id,
            &m.causation_id,
        ]
        .iter()
        .map(|s| s.as_ref().map_or(0, |s| s.len() + 1))
        .sum::<usize>()
}

#[derive(Debug)]
enum WriteError {
    Log(SegmentError),
    Io(std::io::Error),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Log(e) => write!(f, "log: {e}"),
            Self::Io(e) => write!(f, "I/O: {e}"),
        }
    }
}

impl Writer {
    pub(crate) fn spawn(shared: Arc<Shared>, chain_head: Hash) -> std::io::Result<JoinHandle<()>> {
        let writer = Self {
            shared,
            chain_head,
            window_start: None,
        };
        std::thread::Builder::new()
            .name("eventlog-writer".into())
            .spawn(move || writer.run())
    }

    fn run(mut self) {
        // Ends once closing has drained the queue (the indexes and the final flush follow in
        // `shutdown`) or the store failed.
        while let Some(events) = self.next_work() {
            if let Err(e) = self.write(events) {
                self.fail(&e);
                break;
            }
        }
        let mut state = lock(&self.shared.state);
        state.writer_done = true;
        self.shared.progress.notify_all();
    }

    fn fail(&self, error: &WriteError) {
        self.shared.fail(error.to_string());
    }

    /// The next group to write, or `None` when the writer should stop.
    fn next_work(&mut self) -> Option<Vec<Arc<RecordedEvent>>> {
        let shared = &self.shared;
        let mut state = lock(&shared.state);
        loop {
            if state.failed.is_some() {
                return None;
            }
            let available = state.unwritten.len() - state.taken;
            if available > 0 {
                let target = shared.config.record_target_bytes;
                let mut cut = 0;
                let mut bytes = 0;
                for (n, pending) in state.unwritten.iter().skip(state.taken).enumerate() {
                    // Records are cut by their encoded size, not by the memory events hold.
                    bytes += event_size(&pending.event);
                    if pending.commit_end {
                        cut = n + 1;
                        if bytes >= target {
                            break;
                        }
                    }
                }
                // Buffered mode: let a small group grow for up to `group_delay` — fewer, larger
                // records cost fewer sled keys and fewer bytes per event.
                let window = shared.config.group_delay;
                if shared.config.durability == Durability::Buffered
                    && !window.is_zero()
                    && !state.closing
                    && bytes < target
                {
                    let now = Instant::now();
                    let deadline = *self.window_start.get_or_insert(now) + window;
                    if now < deadline {
                        state = shared
                            .writer_wake
                            .wait_timeout(state, deadline - now)
                            .map(|(guard, _)| guard)
                            .unwrap_or_else(|poisoned| poisoned.into_inner().0);
                        continue;
                    }
                }
                self.window_start = None;
                if cut > 0 {
                    let start = state.taken;
                    let events = state
                        .unwritten
                        .range(start..start + cut)
                        .map(|p| Arc::clone(&p.event))
                        .collect();
                    state.taken += cut;
                    return Some(events);
                }
            }
            if state.closing && state.taken == 0 {
                return None;
            }
            state.writer_idle = true;
            state = shared
                .writer_wake
                .wait_timeout(state, Duration::from_secs(1))
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
            state.writer_idle = false;
        }
    }

    fn write(&mut self, events: Vec<Arc<RecordedEvent>>) -> Result<(), WriteError> {
        let shared = Arc::clone(&self.shared);
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        let (first_position, last_position) = (first.position, last.position);
        let total_bytes: usize = events.iter().map(|e| event_size(e)).sum();
        // One group, one record, one checksummed frame: a torn frame is cut whole on open.
        let record = encode_record(&self.chain_head, &events);
        self.chain_head = record_hash(&record);
        let durable = shared.config.durability == Durability::Durable;
        let event_count = u32::try_from(events.len()).map_err(|_| {
            WriteError::Io(std::io::Error::other("a group of more than 2^32 events"))
        })?;
        shared
            .segments
            .append(first_position, event_count, &record)
            .map_err(WriteError::Log)?;
        if durable {
            // The log is the journal: the group is durable once its segment bytes are synced.
            shared.before_sync(SyncPoint::Log).map_err(WriteError::Io)?;
            shared.segments.sync().map_err(WriteError::Log)?;
        }
        let created = events.iter().filter(|e| e.metadata.version == 1).count() as u64;
        {
            let mut state = lock(&shared.state);
            for _ in 0..events.len() {
                if let Some(pending) = state.unwritten.pop_front() {
                    state.unwritten_bytes -= pending.bytes;
                }
            }
            state.taken -= events.len();
            state.written_upto = last_position;
            state.written_hash = self.chain_head;
            shared.written_upto.store(last_position, Ordering::Release);
            // Under the state lock, so the indexer persists a count that matches `written_upto`.
            shared
                .counters
                .aggregates
                .fetch_add(created, Ordering::Relaxed);
            if last_position - state.watermark >= shared.config.index_flush_events {
                shared.indexer_wake.notify_one();
            }
            if durable {
                state.durable_upto = last_position;
            }
            shared.progress.notify_all();
        }
        shared.counters.group_writes.fetch_add(1, Ordering::Relaxed);
        shared
            .counters
            .bytes_since_checkpoint
            .fetch_add(total_bytes as u64, Ordering::Relaxed);
        tracing::trace!(
            name: "event_store_group_written",
            first_position,
            last_position,
            events = events.len(),
            durable,
            "group written"
        );
        self.notify_listener(&events);
        self.maybe_wake_checkpointer(last_position);
        Ok(())
    }

    fn notify_listener(&self, events: &[Arc<RecordedEvent>]) {
        let listener = self
            .shared
            .listener
            .read()
            .ok()
            .and_then(|guard| guard.clone());
        if let Some(listener) = listener
            && let Err(panic) = catch_unwind(AssertUnwindSafe(|| listener(events)))
        {
            let message = crate::store::panic_message(panic.as_ref());
            tracing::error!(
                name: "event_store_listener_panicked",
                panic = %message,
                "commit listener panicked; the store keeps writing"
            );
        }
    }

    fn maybe_wake_checkpointer(&self, last_position: u64) {
        let policy = &self.shared.config.checkpoints;
        let counters = &self.shared.counters;
        let by_events = policy.every_events.is_some_and(|every| {
            last_position.saturating_sub(counters.checkpoint_position.load(Ordering::Relaxed))
                >= every
        });
        let by_bytes = policy
            .every_bytes
            .is_some_and(|every| counters.bytes_since_checkpoint.load(Ordering::Relaxed) >= every);
        if by_events || by_bytes {
            self.shared.checkpoint_wake.notify_all();
        }
    }
}
