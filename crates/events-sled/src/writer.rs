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
use crate::state::{Shared, State, lock};

pub(crate) struct Writer {
    shared: Arc<Shared>,
    /// When the group now forming was first seen (buffered mode's grouping window).
    window_start: Option<Instant>,
}

/// What the writer thread does next.
enum Work {
    /// Hand groups that appending threads wrote themselves (durable mode's leaders) to the
    /// commit listener, in log order.
    Notify(Vec<Vec<Arc<RecordedEvent>>>),
    /// Write this group, chained to this hash.
    Write(Vec<Arc<RecordedEvent>>, Hash),
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
pub(crate) enum WriteError {
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
    pub(crate) fn spawn(shared: Arc<Shared>) -> std::io::Result<JoinHandle<()>> {
        let writer = Self {
            shared,
            window_start: None,
        };
        std::thread::Builder::new()
            .name("eventlog-writer".into())
            .spawn(move || writer.run())
    }

    fn run(mut self) {
        // Ends once closing has drained the queue (the indexes and the final flush follow in
        // `shutdown`) or the store failed.
        while let Some(work) = self.next_work() {
            match work {
                Work::Notify(groups) => {
                    for group in &groups {
                        self.notify_listener(group);
                    }
                }
                Work::Write(events, chain_head) => {
                    if let Err(e) = self.shared.write_group(&events, chain_head, false) {
                        self.fail(&e);
                        break;
                    }
                    // Taken while nothing waited to be notified, and no one else writes until
                    // this group is committed: it is next in log order.
                    self.notify_listener(&events);
                }
            }
        }
        let mut state = lock(&self.shared.state);
        state.writer_done = true;
        self.shared.progress.notify_all();
    }

    fn fail(&self, error: &WriteError) {
        self.shared.fail(error.to_string());
    }

    /// The next work, or `None` when the writer should stop.
    fn next_work(&mut self) -> Option<Work> {
        let shared = &self.shared;
        let mut state = lock(&shared.state);
        loop {
            if !state.to_notify.is_empty() {
                return Some(Work::Notify(state.to_notify.drain(..).collect()));
            }
            if state.failed.is_some() {
                return None;
            }
            if !state.unwritten.is_empty() && !state.writing {
                let (bytes, cut) = shared.group_cut(&state);
                // Buffered mode: let a small group grow for up to `group_delay` — fewer, larger
                // records cost fewer frames and fewer bytes per event.
                let window = shared.config.group_delay;
                if shared.config.durability == Durability::Buffered
                    && !window.is_zero()
                    && !state.closing
                    && bytes < shared.config.record_target_bytes
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
                if let Some((events, chain_head)) = shared.take(&mut state, cut) {
                    return Some(Work::Write(events, chain_head));
                }
            }
            if state.closing && !state.writing {
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
}

impl Shared {
    /// Where the next group ends: the queued events cut at the first commit boundary past
    /// `record_target_bytes`. Returns (encoded bytes, events) of the group.
    fn group_cut(&self, state: &State) -> (usize, usize) {
        let target = self.config.record_target_bytes;
        let (mut cut, mut bytes, mut cut_bytes) = (0, 0, 0);
        for (n, pending) in state.unwritten.iter().enumerate() {
            // Records are cut by their encoded size, not by the memory events hold.
            bytes += event_size(&pending.event);
            if pending.commit_end {
                cut = n + 1;
                cut_bytes = bytes;
                if bytes >= target {
                    break;
                }
            }
        }
        (if cut == 0 { bytes } else { cut_bytes }, cut)
    }

    /// `fdatasync` of the log's active segment (through the test-only sync hook): durable mode's
    /// per-group sync, and every flush's first step.
    /// Each sync's duration, failed or not, goes to the `log_syncs` histogram.
    pub(crate) fn sync_log(&self) -> Result<(), WriteError> {
        let started = Instant::now();
        let synced = self
            .before_sync(SyncPoint::Log)
            .map_err(WriteError::Io)
            .and_then(|()| self.segments.sync().map(drop).map_err(WriteError::Log));
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.counters.log_syncs.record(nanos);
        synced
    }

    /// Takes the next group for writing, if any and if no one writes now: its events and the
    /// chain hash it follows. The taker must call [`Shared::write_group`] with them.
    pub(crate) fn take_group(&self, state: &mut State) -> Option<(Vec<Arc<RecordedEvent>>, Hash)> {
        if state.writing || state.failed.is_some() {
            return None;
        }
        let (_, cut) = self.group_cut(state);
        self.take(state, cut)
    }

    /// Takes the first `cut` queued events as the group being written (none when `cut` is 0).
    /// Only one group is written at a time: the caller checked that none is.
    fn take(&self, state: &mut State, cut: usize) -> Option<(Vec<Arc<RecordedEvent>>, Hash)> {
        if cut == 0 {
            return None;
        }
        let events = state
            .unwritten
            .range(..cut)
            .map(|p| Arc::clone(&p.event))
            .collect();
        state.writing = true;
        Some((events, state.written_hash))
    }

    /// Writes a group taken with [`Shared::take_group`]: one hash-chained record, one frame
    /// appended to the active segment, synced in durable mode; then commits it (readers and
    /// durable appenders see it). The writer thread hands the events to the commit listener
    /// itself; for a `leader` (an appending thread) they are queued for the writer thread.
    pub(crate) fn write_group(
        &self,
        events: &[Arc<RecordedEvent>],
        chain_head: Hash,
        leader: bool,
    ) -> Result<(), WriteError> {
        let shared = self;
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        let (first_position, last_position) = (first.position, last.position);
        let total_bytes: usize = events.iter().map(|e| event_size(e)).sum();
        // One group, one record, one checksummed frame: a torn frame is cut whole on open.
        let record = encode_record(&chain_head, events);
        let chain_head = record_hash(&record);
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
            shared.sync_log()?;
        }
        let created = events.iter().filter(|e| e.metadata.version == 1).count() as u64;
        {
            let mut state = lock(&shared.state);
            for _ in 0..events.len() {
                if let Some(pending) = state.unwritten.pop_front() {
                    state.unwritten_bytes -= pending.bytes;
                }
            }
            state.written_upto = last_position;
            state.written_hash = chain_head;
            state.writing = false;
            if leader {
                // Queued in the same critical section as the commit: no later group can reach
                // the listener before this one.
                state.to_notify.push_back(events.to_vec());
                shared.writer_wake.notify_one();
            }
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
        shared.counters.group_events.record(events.len() as u64);
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
        self.maybe_wake_checkpointer(last_position);
        Ok(())
    }

    fn maybe_wake_checkpointer(&self, last_position: u64) {
        let policy = &self.config.checkpoints;
        let counters = &self.counters;
        let by_events = policy.every_events.is_some_and(|every| {
            last_position.saturating_sub(counters.checkpoint_position.load(Ordering::Relaxed))
                >= every
        });
        let by_bytes = policy
            .every_bytes
            .is_some_and(|every| counters.bytes_since_checkpoint.load(Ordering::Relaxed) >= every);
        if by_events || by_bytes {
            self.checkpoint_wake.notify_all();
        }
    }
}
