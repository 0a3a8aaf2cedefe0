//! The publisher handle [`Bus`] and its builder [`BusBuilder`].

use std::collections::VecDeque;
use std::fmt::{self, Display};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use crossbeam_channel::Sender;

use crate::error::BusError;
use crate::health::{SubscriberHealth, SubscriberId, SubscriberReport, SubscriberState};
use crate::options::{Backpressure, SubscriberOptions};
use crate::source::{CatchUpSource, Sequenced};
use crate::subscriber::{FnSubscriber, Subscriber};
use crate::worker::{BusShared, Link, Mode, SubShared, Worker, lock};

/// Builds a [`Bus`]: its catch-up source and the sequence it starts after.
pub struct BusBuilder<M> {
    source: Option<Arc<dyn CatchUpSource<M>>>,
    last_published: u64,
}

impl<M: Sequenced + Clone + Send + Sync + 'static> BusBuilder<M> {
    /// Where lagging subscribers and subscribers started from a past sequence read the
    /// messages they missed. Pass an `Arc<S>` to keep a handle on it. Default = no source: then
    /// only [`Backpressure::Block`] subscribers starting live can be added.
    #[must_use]
    pub fn catch_up_source(mut self, source: impl CatchUpSource<M> + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The sequence already published before the bus starts (for an event store: its last
    /// global position). The first publish must be greater; a subscriber starting live starts
    /// after it. Default = 0 (nothing published yet).
    #[must_use]
    pub fn last_published(mut self, sequence: u64) -> Self {
        self.last_published = sequence;
        self
    }

    /// The bus, with no subscriber yet.
    pub fn build(self) -> Bus<M> {
        let shared = Arc::new(BusShared::default());
        shared
            .last_published
            .store(self.last_published, Ordering::SeqCst);
        shared
            .announced
            .store(self.last_published, Ordering::SeqCst);
        Bus {
            inner: Arc::new(Inner {
                shared,
                source: self.source,
                publish: Mutex::new(()),
                registry: Mutex::new(Registry {
                    entries: Vec::new(),
                    snapshot: Arc::from(Vec::new()),
                }),
                next_id: AtomicU64::new(0),
            }),
        }
    }
}

impl<M> fmt::Debug for BusBuilder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusBuilder")
            .field("catch_up_source", &self.source.is_some())
            .field("last_published", &self.last_published)
            .finish()
    }
}

/// A publisher with subscriber threads.
///
/// Each subscriber runs on its own thread, named `bus-<name>`, fed by a bounded channel. The
/// bus knows one thing of a message: its [`sequence`](Sequenced::sequence), which must strictly
/// increase from one publish to the next. A failing or panicking subscriber never affects the
/// publisher or the other subscribers (see [`FailurePolicy`](crate::FailurePolicy)); a slow one
/// either slows the publisher down or catches up from the source later (see [`Backpressure`]).
///
/// `Bus` is a cheap handle: clones share the same bus. When the last clone is dropped without
/// [`shutdown`](Bus::shutdown), the drop shuts the bus down the same way (draining and joining
/// every subscriber thread) and discards the reports. A subscriber that holds a clone of its own
/// bus keeps it alive: call `shutdown` explicitly then. A handler may call
/// [`unsubscribe`](Bus::unsubscribe) on itself (its thread is then not joined but ends after the
/// handler returns); it should not call `shutdown`, which waits for a publish in progress, and
/// that publish may be waiting for this very handler under [`Backpressure::Block`].
///
/// # Example
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use events_bus::{Backpressure, Bus, SubscriberOptions, SubscriberState};
///
/// let bus: Bus<u64> = Bus::new();
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// // Without a catch-up source, a subscriber uses Block backpressure.
/// let options = SubscriberOptions::new().settings(|s| s.backpressure(Backpressure::Block));
/// bus.subscribe("printer", options, move |n: &u64| {
///     sink.lock().map_err(|_| "poisoned")?.push(*n);
///     Ok::<(), &str>(())
/// })?;
///
/// bus.publish(1)?;
/// bus.publish_batch([2, 3, 5])?;
///
/// let reports = bus.shutdown()?;
/// assert_eq!(reports[0].name, "printer");
/// assert_eq!(reports[0].counts.delivered, 4);
/// assert_eq!(reports[0].last_sequence, 5);
/// assert_eq!(reports[0].state, SubscriberState::Finished);
/// assert_eq!(*seen.lock().map_err(|_| "poisoned")?, vec![1, 2, 3, 5]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Bus<M> {
    inner: Arc<Inner<M>>,
}

impl<M> Clone for Bus<M> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<M> fmt::Debug for Bus<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field(
                "last_published",
                &self.inner.shared.last_published.load(Ordering::SeqCst),
            )
            .field(
                "shut_down",
                &self.inner.shared.closed.load(Ordering::SeqCst),
            )
            .field("subscribers", &lock(&self.inner.registry).entries.len())
            .field("catch_up_source", &self.inner.source.is_some())
            .finish()
    }
}

impl<M: Sequenced + Clone + Send + Sync + 'static> Default for Bus<M> {
    fn default() -> Self {
        Self::new()
    }
}

struct Inner<M> {
    shared: Arc<BusShared>,
    source: Option<Arc<dyn CatchUpSource<M>>>,
    /// Serialises publishes (and live subscriptions against them).
    publish: Mutex<()>,
    registry: Mutex<Registry<M>>,
    next_id: AtomicU64,
}

struct Registry<M> {
    entries: Vec<Entry<M>>,
    /// What the publisher iterates over, rebuilt when a subscriber comes or goes.
    snapshot: Arc<[Arc<SubShared<M>>]>,
}

impl<M> Registry<M> {
    fn rebuild(&mut self) {
        self.snapshot = self.entries.iter().map(|e| Arc::clone(&e.shared)).collect();
    }
}

struct Entry<M> {
    shared: Arc<SubShared<M>>,
    /// Dropping it wakes the thread out of any wait so it sees its stop flag.
    stop_tx: Sender<()>,
    thread: JoinHandle<SubscriberReport>,
}

impl<M> Entry<M> {
    /// Waits for the thread to end and returns its report.
    fn join(self) -> SubscriberReport {
        let Entry {
            shared,
            stop_tx,
            thread,
        } = self;
        if thread.thread().id() == thread::current().id() {
            // Called from the subscriber's own handler: it ends once the handler returns.
            tracing::warn!(
                subscriber = %shared.name,
                "a subscriber cannot join its own thread; it ends after the current message"
            );
            drop(stop_tx);
            return shared.report_now(None);
        }
        let report = match thread.join() {
            Ok(report) => report,
            Err(_) => shared.report_now(Some(SubscriberState::Stopped {
                reason: "the subscriber thread panicked outside its handler".into(),
            })),
        };
        drop(stop_tx);
        report
    }
}

impl<M> Inner<M> {
    fn snapshot(&self) -> Arc<[Arc<SubShared<M>>]> {
        Arc::clone(&lock(&self.registry).snapshot)
    }

    /// Stops taking messages, lets every subscriber drain, joins them all.
    fn shut_down(&self) -> Result<Vec<SubscriberReport>, BusError> {
        {
            let _publishing = lock(&self.publish);
            if self.shared.closed.swap(true, Ordering::SeqCst) {
                return Err(BusError::ShutDown);
            }
        }
        let entries = {
            let mut registry = lock(&self.registry);
            let entries = std::mem::take(&mut registry.entries);
            registry.rebuild();
            entries
        };
        tracing::info!(
            subscribers = entries.len(),
            last_published = self.shared.last_published.load(Ordering::SeqCst),
            "shutting the bus down"
        );
        for entry in &entries {
            entry.shared.release_sender();
        }
        Ok(entries.into_iter().map(Entry::join).collect())
    }
}

impl<M> Drop for Inner<M> {
    /// Dropping the last [`Bus`] handle without `shutdown` shuts the bus down all the same.
    fn drop(&mut self) {
        if let Ok(reports) = self.shut_down() {
            tracing::debug!(
                subscribers = reports.len(),
                "bus dropped without shutdown: every subscriber drained and joined"
            );
        }
    }
}

impl<M: Sequenced + Clone + Send + Sync + 'static> Bus<M> {
    /// A bus with no catch-up source, starting at sequence 0. Equivalent to
    /// `Bus::builder().build()`.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to set the catch-up source and the starting sequence.
    pub fn builder() -> BusBuilder<M> {
        BusBuilder {
            source: None,
            last_published: 0,
        }
    }

    /// Adds a subscriber running `handler` on a thread named `bus-<name>`, starting live: it
    /// gets every message published after this call.
    ///
    /// # Errors
    ///
    /// - [`BusError::InvalidOptions`] when `options` do not validate;
    /// - [`BusError::InvalidName`] when `name` contains a NUL byte;
    /// - [`BusError::NoCatchUpSource`] for [`Backpressure::CatchUp`] on a bus without a source;
    /// - [`BusError::ShutDown`] after shutdown;
    /// - [`BusError::Spawn`] when the thread cannot be started.
    pub fn subscribe<F, E>(
        &self,
        name: impl Into<String>,
        options: SubscriberOptions<M>,
        handler: F,
    ) -> Result<SubscriberId, BusError>
    where
        F: FnMut(&M) -> Result<(), E> + Send + 'static,
        E: Display,
    {
        self.add(name.into(), None, options, Box::new(FnSubscriber(handler)))
    }

    /// Adds a subscriber that first reads every message with a sequence greater than
    /// `after_sequence` from the catch-up source, then switches to live delivery without a gap
    /// or a duplicate. `after_sequence` 0 means from the beginning.
    ///
    /// # Errors
    ///
    /// As [`subscribe`](Bus::subscribe); [`BusError::NoCatchUpSource`] whatever the
    /// backpressure when the bus has no source.
    pub fn subscribe_from<F, E>(
        &self,
        name: impl Into<String>,
        after_sequence: u64,
        options: SubscriberOptions<M>,
        handler: F,
    ) -> Result<SubscriberId, BusError>
    where
        F: FnMut(&M) -> Result<(), E> + Send + 'static,
        E: Display,
    {
        self.add(
            name.into(),
            Some(after_sequence),
            options,
            Box::new(FnSubscriber(handler)),
        )
    }

    /// Adds a [`Subscriber`] trait object, starting live (`after_sequence: None`) or from a
    /// past sequence (`Some(after)`, as [`subscribe_from`](Bus::subscribe_from)).
    ///
    /// # Errors
    ///
    /// As [`subscribe`](Bus::subscribe) and [`subscribe_from`](Bus::subscribe_from).
    pub fn subscribe_boxed(
        &self,
        name: impl Into<String>,
        after_sequence: Option<u64>,
        options: SubscriberOptions<M>,
        subscriber: Box<dyn Subscriber<M>>,
    ) -> Result<SubscriberId, BusError> {
        self.add(name.into(), after_sequence, options, subscriber)
    }

    fn add(
        &self,
        name: String,
        start_after: Option<u64>,
        options: SubscriberOptions<M>,
        subscriber: Box<dyn Subscriber<M>>,
    ) -> Result<SubscriberId, BusError> {
        options.validate()?;
        if name.contains('\0') {
            return Err(BusError::InvalidName {
                name,
                reason: "a thread name cannot contain a NUL byte",
            });
        }
        let needs_source =
            start_after.is_some() || options.settings.backpressure == Backpressure::CatchUp;
        if needs_source && self.inner.source.is_none() {
            return Err(BusError::NoCatchUpSource { name });
        }
        // A live subscriber must start exactly after the last published message: hold off
        // publishers while it is registered. One starting from a sequence catches up anyway.
        let _publishing = start_after.is_none().then(|| lock(&self.inner.publish));
        let mut registry = lock(&self.inner.registry);
        if self.inner.shared.closed.load(Ordering::SeqCst) {
            return Err(BusError::ShutDown);
        }
        let (last, mode) = match start_after {
            Some(after) => (after, Mode::Lagging),
            None => (
                self.inner.shared.last_published.load(Ordering::SeqCst),
                Mode::Live,
            ),
        };
        let id = SubscriberId(self.inner.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        let (tx, rx) = crossbeam_channel::bounded(options.settings.capacity);
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let shared = Arc::new(SubShared::new(
            id,
            name.clone(),
            options.settings.backpressure,
            options.settings.capacity,
            Link {
                mode,
                sender: Some(tx),
            },
            last,
        ));
        let worker = Worker {
            shared: Arc::clone(&shared),
            bus: Arc::clone(&self.inner.shared),
            stop_rx,
            subscriber,
            source: self.inner.source.clone(),
            filter: options.filter.clone(),
            policy: options.settings.failure_policy,
            catch_up_batch: options.settings.catch_up_batch,
            source_backoff: options.settings.source_backoff,
            last,
            failures: VecDeque::new(),
        };
        let thread = thread::Builder::new()
            .name(format!("bus-{name}"))
            .spawn(move || worker.run(rx))
            .map_err(|source| BusError::Spawn {
                name: name.clone(),
                source,
            })?;
        registry.entries.push(Entry {
            shared,
            stop_tx,
            thread,
        });
        registry.rebuild();
        tracing::info!(
            subscriber = %name,
            id = id.get(),
            after_sequence = last,
            catching_up = start_after.is_some(),
            backpressure = ?options.settings.backpressure,
            capacity = options.settings.capacity,
            "subscribed"
        );
        Ok(id)
    }

    /// Stops a subscriber after the message it is handling (what is still queued for it is not
    /// handled), joins its thread and returns its report, whose `last_sequence` says where it
    /// stopped.
    ///
    /// # Errors
    ///
    /// [`BusError::UnknownSubscriber`] when no subscriber has this id, [`BusError::ShutDown`]
    /// after shutdown.
    pub fn unsubscribe(&self, id: SubscriberId) -> Result<SubscriberReport, BusError> {
        let entry = {
            let mut registry = lock(&self.inner.registry);
            if self.inner.shared.closed.load(Ordering::SeqCst) {
                return Err(BusError::ShutDown);
            }
            let position = registry
                .entries
                .iter()
                .position(|e| e.shared.id == id)
                .ok_or(BusError::UnknownSubscriber { id })?;
            let entry = registry.entries.remove(position);
            registry.rebuild();
            entry
        };
        entry.shared.request_stop();
        entry.shared.release_sender();
        let report = entry.join();
        tracing::info!(
            subscriber = %report.name,
            id = id.get(),
            delivered = report.counts.delivered,
            last_sequence = report.last_sequence,
            "unsubscribed"
        );
        Ok(report)
    }

    /// Publishes one message to every subscriber.
    ///
    /// Returns once every live subscriber has it queued (or, for a full
    /// [`Backpressure::CatchUp`] subscriber, once it is marked lagging). A
    /// [`Backpressure::Block`] subscriber with a full channel makes this call wait.
    ///
    /// # Errors
    ///
    /// [`BusError::OutOfOrder`] when the message's sequence is not greater than the last one
    /// published (nothing is published), [`BusError::ShutDown`] after shutdown.
    pub fn publish(&self, message: M) -> Result<(), BusError> {
        let _publishing = lock(&self.inner.publish);
        if self.inner.shared.closed.load(Ordering::SeqCst) {
            return Err(BusError::ShutDown);
        }
        let last = self.inner.shared.last_published.load(Ordering::SeqCst);
        let sequence = message.sequence();
        if sequence <= last {
            return Err(BusError::OutOfOrder {
                last,
                got: sequence,
            });
        }
        self.inner
            .shared
            .announced
            .store(sequence, Ordering::SeqCst);
        let subscribers = self.inner.snapshot();
        self.fan_out(&subscribers, &message);
        Ok(())
    }

    /// Publishes messages in order, as one call of [`publish`](Bus::publish) each, and
    /// returns how many were published.
    ///
    /// # Errors
    ///
    /// [`BusError::OutOfOrder`] when the sequences do not strictly increase from the last one
    /// published: then nothing is published. [`BusError::ShutDown`] after shutdown.
    pub fn publish_batch<I>(&self, messages: I) -> Result<usize, BusError>
    where
        I: IntoIterator<Item = M>,
    {
        let messages: Vec<M> = messages.into_iter().collect();
        let _publishing = lock(&self.inner.publish);
        if self.inner.shared.closed.load(Ordering::SeqCst) {
            return Err(BusError::ShutDown);
        }
        let mut last = self.inner.shared.last_published.load(Ordering::SeqCst);
        for message in &messages {
            let sequence = message.sequence();
            if sequence <= last {
                return Err(BusError::OutOfOrder {
                    last,
                    got: sequence,
                });
            }
            last = sequence;
        }
        // Before taking the list of subscribers: see `BusShared::announced`.
        self.inner.shared.announced.store(last, Ordering::SeqCst);
        let subscribers = self.inner.snapshot();
        for message in &messages {
            self.fan_out(&subscribers, message);
        }
        Ok(messages.len())
    }

    /// Records `message` as the last published, then offers it to every subscriber. The order
    /// matters for the hand-over: see the `worker` module.
    fn fan_out(&self, subscribers: &[Arc<SubShared<M>>], message: &M) {
        let sequence = message.sequence();
        self.inner
            .shared
            .last_published
            .store(sequence, Ordering::SeqCst);
        for subscriber in subscribers {
            subscriber.offer(message);
        }
        tracing::trace!(sequence, subscribers = subscribers.len(), "published");
    }

    /// The last sequence published (or the builder's
    /// [`last_published`](BusBuilder::last_published) if nothing was published yet).
    pub fn last_published(&self) -> u64 {
        self.inner.shared.last_published.load(Ordering::SeqCst)
    }

    /// The health of every subscriber, in subscription order; empty after shutdown.
    pub fn health(&self) -> Vec<SubscriberHealth> {
        let subscribers = self.inner.snapshot();
        let last_published = self.last_published();
        subscribers
            .iter()
            .map(|s| s.health(last_published))
            .collect()
    }

    /// Whether [`shutdown`](Bus::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.inner.shared.closed.load(Ordering::SeqCst)
    }

    /// Stops taking messages and subscribers, lets every subscriber handle what was published
    /// before this call (a lagging one catches up from the source first), joins every thread,
    /// and returns one report per subscriber, in subscription order. Waits for a publish in
    /// progress to finish first.
    ///
    /// # Errors
    ///
    /// [`BusError::ShutDown`] when the bus was already shut down.
    pub fn shutdown(&self) -> Result<Vec<SubscriberReport>, BusError> {
        self.inner.shut_down()
    }
}
