//! Helpers shared by the integration tests: an in-memory catch-up source, a serialised
//! publisher, a gate, a drop counter.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use events_bus::{Bus, CatchUpSource, Sequenced, SourceError};

/// A message like the facade's `Arc<RecordedEvent>`: a position and a payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Event {
    pub position: u64,
    pub payload: String,
}

impl Sequenced for Event {
    fn sequence(&self) -> u64 {
        self.position
    }
}

pub fn event(position: u64) -> Arc<Event> {
    Arc::new(Event {
        position,
        payload: format!("event {position}"),
    })
}

/// An in-memory log: the test appends to it *before* publishing, as a store commits before
/// it publishes.
pub struct VecSource<M> {
    log: RwLock<Vec<M>>,
    pub reads: AtomicUsize,
}

impl<M: Sequenced + Clone> VecSource<M> {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            log: RwLock::new(Vec::new()),
            reads: AtomicUsize::new(0),
        })
    }

    pub fn append(&self, message: M) {
        self.log.write().unwrap().push(message);
    }

    pub fn len(&self) -> usize {
        self.log.read().unwrap().len()
    }
}

impl<M: Sequenced + Clone + Send + Sync> CatchUpSource<M> for VecSource<M> {
    fn read_after(&self, after: u64, max: usize) -> Result<Vec<M>, SourceError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let log = self.log.read().map_err(|_| SourceError::new("poisoned"))?;
        let start = log.partition_point(|m| m.sequence() <= after);
        Ok(log[start..].iter().take(max).cloned().collect())
    }
}

/// Appends to the source, then publishes: one call per message, under one lock.
pub struct Publisher<M> {
    pub bus: Bus<M>,
    pub source: Arc<VecSource<M>>,
}

impl<M: Sequenced + Clone + Send + Sync + 'static> Publisher<M> {
    pub fn publish(&self, message: M) {
        self.source.append(message.clone());
        self.bus.publish(message).unwrap();
    }
}

/// A gate subscribers wait on until the test opens it.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.changed.wait(open).unwrap();
        }
    }

    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.changed.notify_all();
    }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Counts its drops: moved into a handler closure, it is dropped when the subscriber's thread
/// ends.
pub struct DropGuard(pub Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Keeps intentional panics on subscriber threads (`bus-*`) out of the test output; panics on
/// other threads are printed as usual.
pub fn quiet_subscriber_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let on_bus = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("bus-"));
        if !on_bus {
            default(info);
        }
    }));
}

/// Asserts `seen` is exactly `expected`, in order, naming the first difference.
pub fn assert_exactly(seen: &[u64], expected: &[u64], what: &str) {
    if seen == expected {
        return;
    }
    let first = seen
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(seen.len().min(expected.len()));
    panic!(
        "{what}: {} messages seen, {} expected; first difference at index {first}: seen {:?}, expected {:?}",
        seen.len(),
        expected.len(),
        seen.get(first.saturating_sub(2)..(first + 3).min(seen.len())),
        expected.get(first.saturating_sub(2)..(first + 3).min(expected.len())),
    );
}
