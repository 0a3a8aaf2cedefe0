//! One subscriber: the state its thread shares with the publisher ([`SubShared`]) and the loop
//! its thread runs ([`Worker`]).
//!
//! # Live, lagging and the hand-over
//!
//! Each subscriber has a [`Link`] behind a mutex, shared by the publisher and the subscriber
//! thread, holding its delivery [`Mode`]. The publisher sends a message only to a `Live`
//! subscriber; a `CatchUp` subscriber whose channel is full is switched to `Lagging` by the
//! publisher (under the lock) and gets nothing more. Only the subscriber thread switches
//! `Lagging` back to `Live`, under the same lock, and only once the last published sequence is
//! not greater than its own last sequence. The publisher stores the last published sequence
//! *before* offering the message to any subscriber, so either the subscriber sees the new
//! sequence (and reads that message from the source) or the publisher sees `Live` (and sends
//! it): never neither. Both may happen; the subscriber drops every message whose sequence is
//! not greater than its last one, so that yields no duplicate.
//!
//! A publisher offers only to the subscribers registered when it took its list, before it
//! publishes anything. So it first *announces* the last sequence it is about to publish
//! ([`BusShared::announced`]), and a subscriber catches up to — and goes live only once it is
//! past — the announced sequence, not the last published one: one registered after the list
//! was taken reads the rest of that publish from the source instead of waiting for offers that
//! never come.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};

use crate::health::{
    Failure, FailureKind, MAX_REPORTED_FAILURES, SubscriberCounts, SubscriberHealth, SubscriberId,
    SubscriberReport, SubscriberState,
};
use crate::options::{Backpressure, FailurePolicy, Filter, MAX_RETRY_BACKOFF, MAX_SOURCE_BACKOFF};
use crate::source::{CatchUpSource, Sequenced};
use crate::subscriber::Subscriber;

/// How many consecutive failed catch-up reads a subscriber tolerates once the bus is shutting
/// down before it stops (while the bus runs, it retries for ever).
const SHUTDOWN_SOURCE_ATTEMPTS: u32 = 3;

/// Locks a mutex, ignoring poisoning: no code panics while holding these locks (handlers run
/// outside them), and the data they guard stays consistent at every step.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the bus shares with every subscriber thread.
#[derive(Debug, Default)]
pub(crate) struct BusShared {
    /// The last sequence published (written only under the bus's publish lock).
    pub(crate) last_published: AtomicU64,
    /// The last sequence of the publish under way, or `last_published` between publishes:
    /// stored (under the publish lock) before the publisher takes its list of subscribers. A
    /// subscriber registered after that list was taken is offered none of the publish's
    /// messages, so no subscriber goes live before it is past this sequence.
    pub(crate) announced: AtomicU64,
    /// Whether shutdown has begun.
    pub(crate) closed: AtomicBool,
}

/// How the publisher treats a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The publisher sends it every message.
    Live,
    /// The publisher sends it nothing: it reads from the catch-up source.
    Lagging,
    /// Its thread has ended: the publisher sends it nothing.
    Closed,
}

/// The part of a subscriber the publisher and the subscriber thread change together.
#[derive(Debug)]
pub(crate) struct Link<M> {
    pub(crate) mode: Mode,
    /// The channel's sending end; `None` once the bus let go of it (shutdown, unsubscribe).
    pub(crate) sender: Option<Sender<M>>,
}

/// A subscriber's counters, readable from any thread.
#[derive(Debug, Default)]
struct Stats {
    delivered: AtomicU64,
    errors: AtomicU64,
    panics: AtomicU64,
    retries: AtomicU64,
    skipped: AtomicU64,
    filtered: AtomicU64,
    catch_ups: AtomicU64,
    source_errors: AtomicU64,
    last_sequence: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    fn counts(&self) -> SubscriberCounts {
        SubscriberCounts {
            delivered: self.delivered.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            filtered: self.filtered.load(Ordering::Relaxed),
            catch_ups: self.catch_ups.load(Ordering::Relaxed),
            source_errors: self.source_errors.load(Ordering::Relaxed),
        }
    }
}

/// The state of a subscriber's end, and its last error.
#[derive(Debug, Default)]
struct Status {
    terminal: Option<SubscriberState>,
    last_error: Option<String>,
}

/// What the bus and a subscriber thread share.
#[derive(Debug)]
pub(crate) struct SubShared<M> {
    pub(crate) id: SubscriberId,
    pub(crate) name: String,
    backpressure: Backpressure,
    capacity: usize,
    link: Mutex<Link<M>>,
    stop: AtomicBool,
    stats: Stats,
    status: Mutex<Status>,
}

impl<M> SubShared<M> {
    pub(crate) fn new(
        id: SubscriberId,
        name: String,
        backpressure: Backpressure,
        capacity: usize,
        link: Link<M>,
        last_sequence: u64,
    ) -> Self {
        let stats = Stats::default();
        stats.last_sequence.store(last_sequence, Ordering::Relaxed);
        Self {
            id,
            name,
            backpressure,
            capacity,
            link: Mutex::new(link),
            stop: AtomicBool::new(false),
            stats,
            status: Mutex::new(Status::default()),
        }
    }

    /// Asks the thread to stop after the message it is handling (it is woken by the caller
    /// dropping the stop channel's sender).
    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Drops the bus's sending end of the channel: the thread drains what is queued, then ends.
    pub(crate) fn release_sender(&self) {
        let sender = lock(&self.link).sender.take();
        drop(sender);
    }

    fn state(&self, mode: Mode) -> SubscriberState {
        if let Some(terminal) = &lock(&self.status).terminal {
            return terminal.clone();
        }
        match mode {
            Mode::Live => SubscriberState::Live,
            Mode::Lagging => SubscriberState::CatchingUp,
            Mode::Closed => SubscriberState::Finished,
        }
    }

    pub(crate) fn health(&self, last_published: u64) -> SubscriberHealth {
        let (mode, queue_len) = {
            let link = lock(&self.link);
            (link.mode, link.sender.as_ref().map_or(0, Sender::len))
        };
        let last_sequence = self.stats.last_sequence.load(Ordering::SeqCst);
        SubscriberHealth {
            id: self.id,
            name: self.name.clone(),
            state: self.state(mode),
            counts: self.stats.counts(),
            last_sequence,
            lag: last_published.saturating_sub(last_sequence),
            queue_len,
            capacity: self.capacity,
            last_error: lock(&self.status).last_error.clone(),
        }
    }

    /// A report from what is known now, for a thread that could not be joined.
    pub(crate) fn report_now(&self, fallback: Option<SubscriberState>) -> SubscriberReport {
        let mode = lock(&self.link).mode;
        let state = match fallback {
            Some(state) => state,
            None => self.state(mode),
        };
        SubscriberReport {
            id: self.id,
            name: self.name.clone(),
            state,
            counts: self.stats.counts(),
            last_sequence: self.stats.last_sequence.load(Ordering::SeqCst),
            failures: Vec::new(),
        }
    }

    fn set_last_error(&self, error: String) {
        lock(&self.status).last_error = Some(error);
    }
}

impl<M: Sequenced + Clone + Send + Sync + 'static> SubShared<M> {
    /// The publisher's side: sends `message` if the subscriber is live, following its
    /// backpressure policy. Never fails: a full `CatchUp` channel switches the subscriber to
    /// lagging, a closed channel marks it closed.
    pub(crate) fn offer(&self, message: &M) {
        let mut link = lock(&self.link);
        if link.mode != Mode::Live {
            return;
        }
        let Some(sender) = link.sender.as_ref() else {
            return;
        };
        match self.backpressure {
            Backpressure::CatchUp => match sender.try_send(message.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    link.mode = Mode::Lagging;
                    tracing::debug!(
                        subscriber = %self.name,
                        id = self.id.get(),
                        sequence = message.sequence(),
                        capacity = self.capacity,
                        "subscriber channel full: lagging, it will catch up from the source"
                    );
                }
                Err(TrySendError::Disconnected(_)) => link.mode = Mode::Closed,
            },
            Backpressure::Block => {
                // Never block while holding the lock: the subscriber takes it to check its mode.
                // A Block subscriber leaves `Live` only by closing, so sending outside the lock
                // cannot race with a hand-over.
                let sender = sender.clone();
                drop(link);
                if sender.send(message.clone()).is_err() {
                    lock(&self.link).mode = Mode::Closed;
                }
            }
        }
    }
}

/// What to do after a step.
enum Flow {
    Continue,
    End(SubscriberState),
}

/// Everything a subscriber thread owns.
pub(crate) struct Worker<M> {
    pub(crate) shared: Arc<SubShared<M>>,
    pub(crate) bus: Arc<BusShared>,
    pub(crate) stop_rx: Receiver<()>,
    pub(crate) subscriber: Box<dyn Subscriber<M>>,
    pub(crate) source: Option<Arc<dyn CatchUpSource<M>>>,
    pub(crate) filter: Option<Filter<M>>,
    pub(crate) policy: FailurePolicy,
    pub(crate) catch_up_batch: usize,
    pub(crate) source_backoff: Duration,
    pub(crate) last: u64,
    pub(crate) failures: VecDeque<Failure>,
}

impl<M: Sequenced + Clone + Send + Sync + 'static> Worker<M> {
    /// The thread's body: handles messages until stopped, then reports.
    pub(crate) fn run(mut self, rx: Receiver<M>) -> SubscriberReport {
        let span = tracing::info_span!(
            "bus.subscriber",
            subscriber = %self.shared.name,
            id = self.shared.id.get()
        );
        let _entered = span.enter();
        tracing::debug!(last_sequence = self.last, "subscriber thread started");

        if let Err(message) = self.hook(|s| s.on_start()) {
            tracing::error!(subscriber = %self.shared.name, panic = %message, "on_start hook panicked");
        }
        let end = self.main_loop(&rx);

        // Let the publisher know, and free whatever is still queued.
        lock(&self.shared.link).mode = Mode::Closed;
        drop(rx);
        lock(&self.shared.status).terminal = Some(end.clone());

        let mut report = SubscriberReport {
            id: self.shared.id,
            name: self.shared.name.clone(),
            state: end,
            counts: self.shared.stats.counts(),
            last_sequence: self.last,
            failures: self.failures.drain(..).collect(),
        };
        let on_stop = {
            let report = &report;
            self.hook(|s| s.on_stop(report))
        };
        if let Err(message) = on_stop {
            tracing::error!(subscriber = %self.shared.name, panic = %message, "on_stop hook panicked");
            report.counts = self.shared.stats.counts();
        }
        match &report.state {
            SubscriberState::Stopped { reason } => tracing::warn!(
                subscriber = %report.name,
                last_sequence = report.last_sequence,
                delivered = report.counts.delivered,
                errors = report.counts.errors,
                panics = report.counts.panics,
                reason = %reason,
                "subscriber stopped"
            ),
            _ => tracing::debug!(
                subscriber = %report.name,
                last_sequence = report.last_sequence,
                delivered = report.counts.delivered,
                errors = report.counts.errors,
                panics = report.counts.panics,
                "subscriber finished"
            ),
        }
        report
    }

    /// Runs a hook, catching (and counting) a panic.
    fn hook(&mut self, call: impl FnOnce(&mut dyn Subscriber<M>)) -> Result<(), String> {
        let subscriber = &mut self.subscriber;
        catch_unwind(AssertUnwindSafe(|| call(subscriber.as_mut()))).map_err(|payload| {
            bump(&self.shared.stats.panics);
            panic_message(payload.as_ref())
        })
    }

    fn stop_requested(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    fn is_lagging(&self) -> bool {
        lock(&self.shared.link).mode == Mode::Lagging
    }

    /// Sleeps for `pause`, or less if a stop is requested. Returns false when stopped.
    fn pause(&self, pause: Duration) -> bool {
        match self.stop_rx.recv_timeout(pause) {
            Err(RecvTimeoutError::Timeout) => !self.stop_requested(),
            Ok(()) | Err(RecvTimeoutError::Disconnected) => false,
        }
    }

    fn main_loop(&mut self, rx: &Receiver<M>) -> SubscriberState {
        let stop_rx = self.stop_rx.clone();
        loop {
            if self.stop_requested() {
                return SubscriberState::Finished;
            }
            let flow = match rx.try_recv() {
                Ok(message) => self.live(&message),
                Err(TryRecvError::Empty) if self.is_lagging() => self.catch_up(),
                Err(TryRecvError::Empty) => {
                    // Live with an empty channel: wait for a message or a stop. The publisher only
                    // switches us to lagging when the channel is full, so this wait always ends.
                    crossbeam_channel::select! {
                        recv(rx) -> message => match message {
                            Ok(message) => self.live(&message),
                            // Disconnected: the next `try_recv` says so.
                            Err(_) => Flow::Continue,
                        },
                        recv(stop_rx) -> _ => Flow::End(SubscriberState::Finished),
                    }
                }
                // The bus let go of the channel (shutdown) and it is drained. A lagging
                // subscriber first catches up to the last published sequence.
                Err(TryRecvError::Disconnected) if self.is_lagging() => self.catch_up(),
                Err(TryRecvError::Disconnected) => Flow::End(SubscriberState::Finished),
            };
            if let Flow::End(state) = flow {
                return state;
            }
        }
    }

    /// A message from the channel: dropped if already handled, else handled.
    fn live(&mut self, message: &M) -> Flow {
        let sequence = message.sequence();
        if sequence <= self.last {
            tracing::trace!(
                sequence,
                last_sequence = self.last,
                "dropping an already handled message"
            );
            return Flow::Continue;
        }
        self.handle(message, sequence)
    }

    fn advance(&mut self, sequence: u64) {
        self.last = sequence;
        self.shared
            .stats
            .last_sequence
            .store(sequence, Ordering::SeqCst);
    }

    fn record_failure(&mut self, failure: Failure) {
        if self.failures.len() >= MAX_REPORTED_FAILURES {
            self.failures.pop_front();
        }
        self.failures.push_back(failure);
    }

    /// Filters and handles one message, applying the failure policy.
    fn handle(&mut self, message: &M, sequence: u64) -> Flow {
        let mut attempt: u32 = 0;
        let mut backoff = match self.policy {
            FailurePolicy::Retry { backoff, .. } => backoff,
            FailurePolicy::Skip | FailurePolicy::Stop => Duration::ZERO,
        };
        loop {
            attempt = attempt.saturating_add(1);
            let outcome = {
                let span = tracing::trace_span!("bus.deliver", sequence, attempt);
                let _entered = span.enter();
                let filter = self.filter.as_deref();
                let subscriber = &mut self.subscriber;
                catch_unwind(AssertUnwindSafe(|| {
                    if let Some(filter) = filter
                        && !filter(message)
                    {
                        return Ok(false);
                    }
                    subscriber.handle(message).map(|()| true)
                }))
            };
            let (kind, error) = match outcome {
                Ok(Ok(true)) => {
                    bump(&self.shared.stats.delivered);
                    self.advance(sequence);
                    return Flow::Continue;
                }
                Ok(Ok(false)) => {
                    bump(&self.shared.stats.filtered);
                    self.advance(sequence);
                    return Flow::Continue;
                }
                Ok(Err(error)) => {
                    bump(&self.shared.stats.errors);
                    tracing::warn!(
                        subscriber = %self.shared.name,
                        sequence,
                        attempt,
                        error = %error,
                        "subscriber failed to handle a message"
                    );
                    (FailureKind::Error, error.to_string())
                }
                Err(payload) => {
                    bump(&self.shared.stats.panics);
                    let error = panic_message(payload.as_ref());
                    tracing::error!(
                        subscriber = %self.shared.name,
                        sequence,
                        attempt,
                        error = %error,
                        "subscriber panicked while handling a message"
                    );
                    (FailureKind::Panic, error)
                }
            };
            let what = match kind {
                FailureKind::Error => "error",
                FailureKind::Panic => "panic",
            };
            self.shared
                .set_last_error(format!("sequence {sequence}: {what}: {error}"));
            self.record_failure(Failure {
                sequence,
                attempt,
                kind,
                message: error.clone(),
            });
            match self.policy {
                FailurePolicy::Skip => {
                    bump(&self.shared.stats.skipped);
                    self.advance(sequence);
                    tracing::warn!(subscriber = %self.shared.name, sequence, "skipping the failed message (policy Skip)");
                    return Flow::Continue;
                }
                FailurePolicy::Stop => {
                    return Flow::End(SubscriberState::Stopped {
                        reason: format!("{what} at sequence {sequence} (policy Stop): {error}"),
                    });
                }
                FailurePolicy::Retry { max_attempts, .. } if attempt >= max_attempts => {
                    return Flow::End(SubscriberState::Stopped {
                        reason: format!(
                            "gave up on sequence {sequence} after {attempt} attempts (policy Retry): {what}: {error}"
                        ),
                    });
                }
                FailurePolicy::Retry { .. } => {
                    bump(&self.shared.stats.retries);
                    if !self.pause(backoff) {
                        return Flow::End(SubscriberState::Finished);
                    }
                    backoff = backoff.saturating_mul(2).min(MAX_RETRY_BACKOFF);
                }
            }
        }
    }

    /// Re-enters live delivery if nothing was published beyond our last sequence. Returns
    /// whether it did.
    fn try_go_live(&self) -> bool {
        let mut link = lock(&self.shared.link);
        if self.bus.announced.load(Ordering::SeqCst) > self.last {
            return false;
        }
        if link.mode == Mode::Lagging {
            link.mode = Mode::Live;
        }
        true
    }

    /// Reads missed messages from the source until caught up with the publisher, then goes
    /// back to live delivery.
    fn catch_up(&mut self) -> Flow {
        let Some(source) = self.source.clone() else {
            // `Bus` refuses such subscribers; kept as a typed end rather than a panic.
            return Flow::End(SubscriberState::Stopped {
                reason: "lagging without a catch-up source".into(),
            });
        };
        bump(&self.shared.stats.catch_ups);
        tracing::info!(
            subscriber = %self.shared.name,
            after_sequence = self.last,
            last_published = self.bus.last_published.load(Ordering::SeqCst),
            "catching up from the source"
        );
        let mut backoff = self.source_backoff;
        let mut failures: u32 = 0;
        loop {
            if self.stop_requested() {
                return Flow::End(SubscriberState::Finished);
            }
            // Everything up to `target` is in the source (a store commits before it publishes).
            let target = self.bus.announced.load(Ordering::SeqCst);
            if self.last >= target {
                if self.try_go_live() {
                    tracing::info!(
                        subscriber = %self.shared.name,
                        last_sequence = self.last,
                        "caught up: back to live delivery"
                    );
                    let last = self.last;
                    if let Err(message) = self.hook(|s| s.on_live(last)) {
                        tracing::error!(subscriber = %self.shared.name, panic = %message, "on_live hook panicked");
                    }
                    return Flow::Continue;
                }
                continue;
            }
            let before = self.last;
            let batch = self.catch_up_batch;
            let read = catch_unwind(AssertUnwindSafe(|| source.read_after(before, batch)));
            let error = match read {
                Ok(Ok(messages)) => {
                    for message in &messages {
                        let sequence = message.sequence();
                        if sequence <= self.last {
                            continue;
                        }
                        if sequence > target {
                            break;
                        }
                        if self.stop_requested() {
                            return Flow::End(SubscriberState::Finished);
                        }
                        if let Flow::End(state) = self.handle(message, sequence) {
                            return Flow::End(state);
                        }
                    }
                    if self.last > before {
                        failures = 0;
                        backoff = self.source_backoff;
                        continue;
                    }
                    format!(
                        "the source returned no message after sequence {before} although {target} was published"
                    )
                }
                Ok(Err(error)) => error.to_string(),
                Err(payload) => format!("the source panicked: {}", panic_message(payload.as_ref())),
            };
            failures = failures.saturating_add(1);
            bump(&self.shared.stats.source_errors);
            self.shared
                .set_last_error(format!("catch-up after sequence {before}: {error}"));
            tracing::warn!(
                subscriber = %self.shared.name,
                after_sequence = before,
                target,
                attempt = failures,
                error = %error,
                "catch-up read failed; retrying"
            );
            if self.bus.closed.load(Ordering::SeqCst) && failures >= SHUTDOWN_SOURCE_ATTEMPTS {
                return Flow::End(SubscriberState::Stopped {
                    reason: format!(
                        "the catch-up source failed {failures} times during shutdown: {error}"
                    ),
                });
            }
            if !self.pause(backoff) {
                return Flow::End(SubscriberState::Finished);
            }
            backoff = backoff.saturating_mul(2).min(MAX_SOURCE_BACKOFF);
        }
    }
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_extracted() {
        let caught = catch_unwind(|| std::panic::panic_any("static")).err();
        assert_eq!(caught.as_deref().map(panic_message), Some("static".into()));
        let caught = catch_unwind(|| std::panic::panic_any(String::from("owned"))).err();
        assert_eq!(caught.as_deref().map(panic_message), Some("owned".into()));
        let caught = catch_unwind(|| std::panic::panic_any(42u8)).err();
        assert_eq!(
            caught.as_deref().map(panic_message),
            Some("panic with a non-string payload".into())
        );
    }

    fn shared(backpressure: Backpressure, capacity: usize) -> (SubShared<u64>, Receiver<u64>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let link = Link {
            mode: Mode::Live,
            sender: Some(tx),
        };
        let shared = SubShared::new(SubscriberId(1), "t".into(), backpressure, capacity, link, 0);
        (shared, rx)
    }

    #[test]
    fn full_catch_up_channel_switches_to_lagging() {
        let (sub, rx) = shared(Backpressure::CatchUp, 2);
        for n in 1..=5 {
            sub.offer(&n);
        }
        assert_eq!(lock(&sub.link).mode, Mode::Lagging);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![1, 2]);
        let health = sub.health(5);
        assert_eq!(health.state, SubscriberState::CatchingUp);
        assert_eq!(health.lag, 5);
    }

    #[test]
    fn closed_channel_marks_closed() {
        let (sub, rx) = shared(Backpressure::Block, 1);
        drop(rx);
        sub.offer(&1);
        assert_eq!(lock(&sub.link).mode, Mode::Closed);
        let (sub, rx) = shared(Backpressure::CatchUp, 1);
        drop(rx);
        sub.offer(&1);
        assert_eq!(lock(&sub.link).mode, Mode::Closed);
        assert_eq!(sub.report_now(None).state, SubscriberState::Finished);
    }

    struct Log(Vec<u64>);
    impl CatchUpSource<u64> for Log {
        fn read_after(&self, after: u64, max: usize) -> Result<Vec<u64>, crate::SourceError> {
            Ok(self
                .0
                .iter()
                .copied()
                .filter(|n| *n > after)
                .take(max)
                .collect())
        }
    }

    /// A lagging worker with a channel of 4, after sequence `last`, whose source holds 1..=10.
    fn lagging_worker(last: u64, published: u64) -> (Worker<u64>, Receiver<u64>) {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let (_stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let link = Link {
            mode: Mode::Lagging,
            sender: Some(tx),
        };
        let shared = Arc::new(SubShared::new(
            SubscriberId(1),
            "w".into(),
            Backpressure::CatchUp,
            4,
            link,
            last,
        ));
        let bus = Arc::new(BusShared::default());
        bus.last_published.store(published, Ordering::SeqCst);
        bus.announced.store(published, Ordering::SeqCst);
        let worker = Worker {
            shared,
            bus,
            stop_rx,
            subscriber: Box::new(crate::subscriber::FnSubscriber(|_: &u64| {
                Ok::<(), String>(())
            })),
            source: Some(Arc::new(Log((1..=10).collect()))),
            filter: None,
            policy: FailurePolicy::Stop,
            catch_up_batch: 3,
            source_backoff: Duration::from_millis(1),
            last,
            failures: VecDeque::new(),
        };
        (worker, rx)
    }

    #[test]
    fn going_live_rechecks_the_published_sequence_under_the_lock() {
        // Something was published after the worker's last sequence: it must stay lagging (the
        // publisher skipped it for that message), whatever the worker saw before locking.
        let (worker, _rx) = lagging_worker(5, 6);
        assert!(!worker.try_go_live());
        assert_eq!(lock(&worker.shared.link).mode, Mode::Lagging);
        worker.bus.last_published.store(5, Ordering::SeqCst);
        worker.bus.announced.store(5, Ordering::SeqCst);
        assert!(worker.try_go_live());
        assert_eq!(lock(&worker.shared.link).mode, Mode::Live);
        // Ahead of the publisher (started after a sequence not yet published): live too.
        let (worker, _rx) = lagging_worker(9, 7);
        assert!(worker.try_go_live());
    }

    #[test]
    fn a_publish_under_way_keeps_a_catching_up_worker_off_live_until_it_is_read() {
        // 1..=7 published, 8..=10 announced by a publish that took its subscriber list before
        // this worker registered: it reads up to 10 from the source before going live.
        let (mut worker, _rx) = lagging_worker(2, 7);
        worker.bus.announced.store(10, Ordering::SeqCst);
        assert!(!worker.try_go_live());
        assert!(matches!(worker.catch_up(), Flow::Continue));
        assert_eq!(worker.last, 10);
        assert_eq!(worker.shared.stats.counts().delivered, 8);
        assert_eq!(lock(&worker.shared.link).mode, Mode::Live);
    }

    #[test]
    fn catch_up_stops_at_the_last_published_sequence() {
        // The source holds 1..=10 but only 1..=7 were published: deliver up to 7, go live.
        let (mut worker, _rx) = lagging_worker(2, 7);
        assert!(matches!(worker.catch_up(), Flow::Continue));
        assert_eq!(worker.last, 7);
        assert_eq!(worker.shared.stats.counts().delivered, 5);
        assert_eq!(worker.shared.stats.counts().catch_ups, 1);
        assert_eq!(lock(&worker.shared.link).mode, Mode::Live);
        // A live duplicate of an already handled message is dropped.
        assert!(matches!(worker.live(&7), Flow::Continue));
        assert_eq!(worker.shared.stats.counts().delivered, 5);
        assert!(matches!(worker.live(&8), Flow::Continue));
        assert_eq!(worker.shared.stats.counts().delivered, 6);
    }
}
