//! The publisher thread, `eventlog-publisher`: hands committed events to the bus, so that the
//! store's writer thread never waits for a subscriber.
//!
//! The store's commit listener runs on the writer thread. It only queues each committed group
//! here and returns: it never blocks and never calls the bus. The queue holds at most
//! [`QUEUE_BYTES`] (counted as the memory the events hold); a group that does not fit is not
//! queued, only its position is noted as committed. The publisher, having fallen behind, then
//! reads what it missed from the store's log — up to the position the writer reported committed,
//! never past it — and goes back to the queue. So memory stays bounded, appends never wait for
//! a handler, and the bus still gets every committed event once, in log order.
//!
//! A [`Backpressure::Block`](crate::Backpressure::Block) subscription with a full queue makes
//! this thread wait (and so delays delivery to every subscription), not the writer: its handler
//! may append, load (and snapshot), flush, checkpoint or verify without deadlocking the store.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use events_bus::{Bus, BusError, CatchUpSource};
use events_core::RecordedEvent;
use events_sled::CommitListener;

use crate::projection::lock;
use crate::subscription::{Delivered, LogSource};

/// How much the publisher's queue holds before it falls behind and reads from the store: 16 MiB,
/// counting each event as the memory it holds.
pub(crate) const QUEUE_BYTES: usize = 16 << 20;

/// Events read from the store at once while the publisher catches up.
const CATCH_UP_BATCH: usize = 256;

/// The first pause after a failed catch-up read (it doubles up to [`MAX_BACKOFF`]).
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// About the memory an event holds (its allocation and its strings).
fn footprint(event: &RecordedEvent) -> usize {
    let m = &event.metadata;
    std::mem::size_of::<RecordedEvent>()
        + event.payload.len()
        + m.aggregate_id.len()
        + m.aggregate_type.len()
        + m.event_type.len()
}

/// What the writer's listener hands the publisher.
#[derive(Default)]
struct Feed {
    /// Committed groups, in log order (with gaps where a group did not fit), each with the
    /// memory its events hold.
    batches: VecDeque<(usize, Vec<Arc<RecordedEvent>>)>,
    /// The memory the queued events hold.
    queued_bytes: usize,
    /// The last position the writer reported committed, queued or not: what the publisher
    /// publishes up to, and never past.
    committed: u64,
    /// Set by `close`: publish what is committed, then end.
    stop: bool,
    /// Whether the publisher waits for `wake` (the listener notifies it only then).
    idle: bool,
    /// The last position handed to the bus, for `close` to wait on.
    published: u64,
    /// Whether the publisher thread has ended.
    done: bool,
    /// Threads waiting in `wait_committed` (the listener then notifies on every group).
    watchers: usize,
}

struct Shared {
    /// How many bytes the queue holds at most ([`QUEUE_BYTES`]; smaller in tests).
    queue_bytes: usize,
    feed: Mutex<Feed>,
    /// Wakes the publisher (a group, or `stop`) and whoever waits for it to publish or end.
    wake: Condvar,
}

impl Shared {
    /// Waits, at most `timeout`, until `ready` holds for the feed; whether it did.
    fn wait_until(&self, timeout: Duration, ready: impl Fn(&Feed) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut feed = lock(&self.feed);
        while !ready(&feed) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            feed = self
                .wake
                .wait_timeout(feed, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
        true
    }

    /// The commit listener's work: queue the group, or note that it was committed.
    fn offer(&self, events: &[Arc<RecordedEvent>]) {
        let Some(last) = events.last().map(|e| e.position) else {
            return;
        };
        let bytes: usize = events.iter().map(|e| footprint(e)).sum();
        let mut feed = lock(&self.feed);
        feed.committed = feed.committed.max(last);
        if feed.queued_bytes + bytes <= self.queue_bytes {
            feed.batches.push_back((bytes, events.to_vec()));
            feed.queued_bytes += bytes;
        } else {
            tracing::trace!(
                name: "eventlog_publisher_behind",
                first_position = events.first().map_or(last, |e| e.position),
                last_position = last,
                queued_bytes = feed.queued_bytes,
                "publisher queue full; the publisher reads these events from the store"
            );
        }
        if feed.idle || feed.watchers > 0 {
            self.wake.notify_all();
        }
    }
}

/// What the publisher does next.
enum Next {
    Batch(Vec<Arc<RecordedEvent>>),
    CatchUp(u64),
}

/// The publisher thread's state.
struct Worker {
    shared: Arc<Shared>,
    bus: Bus<Delivered>,
    source: Arc<LogSource>,
    /// The last position handed to the bus (`Feed::published`, without the lock).
    last: u64,
}

impl Worker {
    fn run(mut self) {
        while let Some(next) = self.next() {
            match next {
                Next::Batch(batch) => {
                    if let Some(first) = batch.first().map(|e| e.position)
                        && first > self.last + 1
                        // Groups before this one did not fit in the queue.
                        && !self.catch_up(first - 1)
                    {
                        break;
                    }
                    let fresh: Vec<Delivered> = batch
                        .into_iter()
                        .filter(|e| e.position > self.last)
                        .map(Delivered)
                        .collect();
                    self.publish(fresh);
                }
                Next::CatchUp(upto) => {
                    if !self.catch_up(upto) {
                        break;
                    }
                }
            }
        }
        let mut feed = lock(&self.shared.feed);
        feed.done = true;
        self.shared.wake.notify_all();
    }

    /// The next queued group; else a catch-up to what was committed; else, once stopped, the
    /// end (`None`) — everything committed is published by then.
    fn next(&self) -> Option<Next> {
        let mut feed = lock(&self.shared.feed);
        loop {
            if let Some((bytes, batch)) = feed.batches.pop_front() {
                feed.queued_bytes = feed.queued_bytes.saturating_sub(bytes);
                return Some(Next::Batch(batch));
            }
            if feed.committed > self.last {
                return Some(Next::CatchUp(feed.committed));
            }
            if feed.stop {
                return None;
            }
            feed.idle = true;
            feed = self
                .shared
                .wake
                .wait(feed)
                .unwrap_or_else(PoisonError::into_inner);
            feed.idle = false;
        }
    }

    fn stopping(&self) -> bool {
        lock(&self.shared.feed).stop
    }

    /// Reads the events after the last published one, up to `upto` (a committed position), from
    /// the store and publishes them. A failed read is retried with a backoff; once `close` asked
    /// the publisher to stop, a failed read gives up (logged): then it returns false.
    fn catch_up(&mut self, upto: u64) -> bool {
        let mut backoff = FIRST_BACKOFF;
        while self.last < upto {
            let failure = match self.source.read_after(self.last, CATCH_UP_BATCH) {
                Ok(events) => {
                    let mut expected = self.last + 1;
                    let events: Vec<Delivered> = events
                        .into_iter()
                        .take_while(|d| {
                            let next = d.0.position == expected && d.0.position <= upto;
                            expected += 1;
                            next
                        })
                        .collect();
                    if events.is_empty() {
                        format!("the store returned no event at position {}", self.last + 1)
                    } else {
                        self.publish(events);
                        backoff = FIRST_BACKOFF;
                        continue;
                    }
                }
                Err(error) => error.to_string(),
            };
            if self.stopping() {
                tracing::error!(
                    name: "eventlog_publish_gave_up",
                    after_position = self.last,
                    committed = upto,
                    error = %failure,
                    "closing: committed events could not be read for the bus"
                );
                return false;
            }
            tracing::warn!(
                name: "eventlog_publisher_read_failed",
                after_position = self.last,
                committed = upto,
                error = %failure,
                backoff_ms = backoff.as_millis() as u64,
                "reading committed events for the bus failed; retrying"
            );
            let feed = lock(&self.shared.feed);
            if !feed.stop {
                drop(
                    self.shared
                        .wake
                        .wait_timeout(feed, backoff)
                        .unwrap_or_else(PoisonError::into_inner),
                );
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        true
    }

    /// Hands `events` (in log order, after the last published) to the bus.
    fn publish(&mut self, events: Vec<Delivered>) {
        let Some(last) = events.last().map(|d| d.0.position) else {
            return;
        };
        match self.bus.publish_batch(events) {
            Ok(_) | Err(BusError::ShutDown) => {}
            Err(error) => {
                tracing::error!(name: "eventlog_publish_failed", error = %error, "publishing committed events failed");
            }
        }
        self.last = last;
        lock(&self.shared.feed).published = last;
        self.shared.wake.notify_all();
    }
}

/// The publisher thread and what feeds it.
pub(crate) struct Publisher {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Publisher {
    /// Starts the publisher thread; `last` is the position the bus starts after.
    pub(crate) fn start(
        bus: Bus<Delivered>,
        source: Arc<LogSource>,
        last: u64,
    ) -> std::io::Result<Self> {
        Self::start_with(bus, source, last, QUEUE_BYTES)
    }

    fn start_with(
        bus: Bus<Delivered>,
        source: Arc<LogSource>,
        last: u64,
        queue_bytes: usize,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue_bytes,
            feed: Mutex::new(Feed {
                committed: last,
                published: last,
                ..Feed::default()
            }),
            wake: Condvar::new(),
        });
        let worker = Worker {
            shared: Arc::clone(&shared),
            bus,
            source,
            last,
        };
        let thread = std::thread::Builder::new()
            .name("eventlog-publisher".into())
            .spawn(move || worker.run())?;
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The store's commit listener: it queues each committed group for the publisher and
    /// returns at once. It holds no handle on the store.
    pub(crate) fn listener(&self) -> CommitListener {
        let shared = Arc::clone(&self.shared);
        Arc::new(move |events: &[Arc<RecordedEvent>]| shared.offer(events))
    }

    /// Waits until everything up to `position` is handed to the bus; false on timeout.
    pub(crate) fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        self.shared
            .wait_until(timeout, |feed| feed.published >= position)
    }

    /// Waits at most `timeout` until an event after `after` is committed; whether one is.
    pub(crate) fn wait_committed(&self, after: u64, timeout: Duration) -> bool {
        lock(&self.shared.feed).watchers += 1;
        let committed = self
            .shared
            .wait_until(timeout, |feed| feed.committed > after || feed.stop);
        lock(&self.shared.feed).watchers -= 1;
        committed
    }

    /// Asks the publisher to publish what is committed and end, and joins it; gives up waiting
    /// after `timeout` (a `Block` subscription that never takes its events), leaving the thread
    /// to end on its own. Returns whether it ended.
    pub(crate) fn stop(&self, timeout: Duration) -> bool {
        let Some(thread) = lock(&self.thread).take() else {
            return true;
        };
        lock(&self.shared.feed).stop = true;
        self.shared.wake.notify_all();
        if !self.shared.wait_until(timeout, |feed| feed.done) {
            tracing::warn!(
                name: "eventlog_publisher_stuck",
                "the publisher thread did not end in time (a Block subscription does not take its events); not joined"
            );
            return false;
        }
        if thread.join().is_err() {
            tracing::error!(name: "eventlog_publisher_panicked", "the publisher thread panicked");
        }
        true
    }
}

impl Drop for Publisher {
    /// `close` stops the publisher; this is the safety net should it not have run.
    fn drop(&mut self) {
        self.stop(Duration::from_secs(30));
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let feed = lock(&self.shared.feed);
        f.debug_struct("Publisher")
            .field("committed", &feed.committed)
            .field("queued_bytes", &feed.queued_bytes)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use events_bus::{Backpressure, SubscriberOptions};
    use events_core::{EventContext, NewEvent};
    use events_sled::{ExpectedVersion, Store, StoreConfig};
    use omni_domain::CacheHit;

    /// A fresh store, its log as a catch-up source, and a bus reading from it.
    fn store_and_bus() -> (tempfile::TempDir, Store, Arc<LogSource>, Bus<Delivered>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path()).cache_capacity(8 << 20)).unwrap();
        let source = Arc::new(LogSource::new(store.clone()));
        let bus = Bus::builder()
            .catch_up_source(Arc::clone(&source))
            .last_published(0)
            .build();
        (dir, store, source, bus)
    }

    /// Appends `events` one at a time through `publisher`, flushes, and waits until all are
    /// published and the publisher has stopped.
    fn append_and_stop(store: &Store, publisher: &Publisher, events: u64) {
        store.set_commit_listener(Some(publisher.listener()));
        for n in 0..events {
            store.append(ExpectedVersion::Any, vec![hit(n)]).unwrap();
        }
        store.flush().unwrap();
        assert!(publisher.wait_for(events, Duration::from_secs(60)));
        assert!(publisher.stop(Duration::from_secs(60)));
    }

    fn hit(n: u64) -> NewEvent {
        let hit = CacheHit {
            cache_key: format!("key-{n}"),
            cache_type: "memory".into(),
            response_time: 0.001,
        };
        NewEvent::from_event(format!("c-{}", n % 3), &hit, EventContext::new("test")).unwrap()
    }

    /// With a queue too small for any group, every event is read back from the store: a Block
    /// subscriber still gets every committed event once, in order, and the writer never waited.
    #[test]
    fn a_publisher_whose_queue_is_full_reads_what_it_missed_from_the_store() {
        const EVENTS: u64 = 300;
        let (_dir, store, source, bus) = store_and_bus();
        let (tx, rx) = std::sync::mpsc::channel();
        bus.subscribe(
            "slow",
            SubscriberOptions::new()
                .settings(|s| s.capacity(1))
                .settings(|s| s.backpressure(Backpressure::Block)),
            move |d: &Delivered| {
                std::thread::sleep(Duration::from_micros(200));
                tx.send(d.0.position).map_err(|e| e.to_string())
            },
        )
        .unwrap();
        let publisher = Publisher::start_with(bus.clone(), Arc::clone(&source), 0, 1).unwrap();
        append_and_stop(&store, &publisher, EVENTS);
        assert_eq!(lock(&publisher.shared.feed).queued_bytes, 0);
        let reports = bus.shutdown().unwrap();
        assert_eq!(reports[0].counts.delivered, EVENTS);
        let seen: Vec<u64> = rx.try_iter().collect();
        assert_eq!(seen, (1..=EVENTS).collect::<Vec<_>>());
        store.set_commit_listener(None);
        source.clear();
        store.close().unwrap();
    }

    /// Queued groups and groups read back from the store interleave without a gap or a
    /// duplicate: the queue holds about one group here.
    #[test]
    fn queued_and_missed_groups_are_published_once_in_order() {
        const EVENTS: u64 = 400;
        let (_dir, store, source, bus) = store_and_bus();
        let (tx, rx) = std::sync::mpsc::channel();
        bus.subscribe(
            "block",
            SubscriberOptions::new()
                .settings(|s| s.capacity(2))
                .settings(|s| s.backpressure(Backpressure::Block)),
            move |d: &Delivered| tx.send(d.0.position).map_err(|e| e.to_string()),
        )
        .unwrap();
        let one_group = footprint(&hit(0).into_recorded(1, 1)) * 2;
        let publisher =
            Publisher::start_with(bus.clone(), Arc::clone(&source), 0, one_group).unwrap();
        append_and_stop(&store, &publisher, EVENTS);
        bus.shutdown().unwrap();
        let seen: Vec<u64> = rx.try_iter().collect();
        assert_eq!(seen, (1..=EVENTS).collect::<Vec<_>>());
        store.set_commit_listener(None);
        source.clear();
        store.close().unwrap();
    }

    /// A publisher that cannot read what it missed (the store refuses) retries until `close`
    /// stops it, then gives up instead of spinning or hanging the close.
    #[test]
    fn stopping_gives_up_on_events_the_store_cannot_serve() {
        let (_dir, store, source, bus) = store_and_bus();
        let publisher = Publisher::start_with(bus.clone(), Arc::clone(&source), 0, 1).unwrap();
        store.set_commit_listener(Some(publisher.listener()));
        source.clear(); // every catch-up read now fails
        for n in 0..3 {
            store.append(ExpectedVersion::Any, vec![hit(n)]).unwrap();
        }
        store.flush().unwrap();
        assert!(!publisher.wait_for(3, Duration::from_millis(50)));
        assert!(
            publisher.stop(Duration::from_secs(60)),
            "the publisher ended"
        );
        assert_eq!(bus.last_published(), 0);
        bus.shutdown().unwrap();
        store.set_commit_listener(None);
        store.close().unwrap();
    }
}
