//! Subscribing: live, from a past position, durable across restarts, and projections whose
//! state is committed with their position.

use std::fmt::Display;
use std::sync::{Arc, Mutex};

use events_bus::{Subscriber, SubscriberHealth};
use events_core::{Position, RecordedEvent};
use events_sled::Store;

use crate::error::SubscribeError;
use crate::log::EventLog;
use crate::projection::{self, Projection, ProjectionHandle, Runner, StoredState};
use crate::subscription::{
    ConsumerNames, Delivered, Durable, Plain, Subscription, SubscriptionOptions, release, reserve,
};

impl EventLog {
    fn add(
        &self,
        name: String,
        after: u64,
        options: &SubscriptionOptions,
        subscriber: Box<dyn Subscriber<Delivered>>,
        consumer: Option<ConsumerNames>,
    ) -> Result<Subscription, SubscribeError> {
        let inner = self.inner();
        let id = inner.bus.subscribe_boxed(
            name.clone(),
            Some(after),
            options.bus_options(&inner.config),
            subscriber,
        )?;
        Ok(Subscription {
            id,
            name,
            bus: inner.bus.clone(),
            consumer,
        })
    }

    /// Subscribes `handler` to every event appended after this call (that passes the
    /// options' filter), on a thread named `bus-<name>`.
    ///
    /// Guarantee: each such event is handled once, in global position order, after it is
    /// committed (and flushed, in durable mode), as long as the process lives; none before this
    /// call is handled.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{
    ///     EventContext, EventLog, EventLogConfig, ExpectedVersion, RecordedEvent, StreamId,
    ///     SubscriptionFilter,
    /// };
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let stream = StreamId::of::<CacheHit>("c1");
    /// log.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default())?; // before: not handled
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// log.subscribe("audit", SubscriptionFilter::all(), move |e: &RecordedEvent| tx.send(e.position))?;
    /// log.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default())?;
    /// log.close()?; // every committed event is handled before close returns
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Bus`] for invalid settings or a thread that cannot start;
    /// [`SubscribeError::Closed`].
    pub fn subscribe<F, E>(
        &self,
        name: impl Into<String>,
        options: impl Into<SubscriptionOptions>,
        handler: F,
    ) -> Result<Subscription, SubscribeError>
    where
        F: FnMut(&RecordedEvent) -> Result<(), E> + Send + 'static,
        E: Display,
    {
        let after = self.with_store(|s| Ok::<_, SubscribeError>(s.last_position()))?;
        self.subscribe_from(name, Position(after), options, handler)
    }

    /// Subscribes `handler` from a past position: the events after it (that pass the filter)
    /// are read from the store, then live events follow, with no gap and no duplicate at the
    /// hand-over even while appends race with it.
    ///
    /// Guarantee: every event after `from`, in global position order, each once while the
    /// process lives, each only once it is committed.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{
    ///     EventContext, EventLog, EventLogConfig, ExpectedVersion, Position, RecordedEvent, StreamId,
    ///     SubscriptionFilter,
    /// };
    /// use omni_domain::CacheHit;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let stream = StreamId::of::<CacheHit>("c1");
    /// for _ in 0..3 {
    ///     log.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default())?;
    /// }
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// log.subscribe_from("replay", Position(1), SubscriptionFilter::all(), move |e: &RecordedEvent| tx.send(e.position))?;
    /// log.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default())?; // live
    /// log.close()?;
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [2, 3, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`EventLog::subscribe`].
    pub fn subscribe_from<F, E>(
        &self,
        name: impl Into<String>,
        after: Position,
        options: impl Into<SubscriptionOptions>,
        handler: F,
    ) -> Result<Subscription, SubscribeError>
    where
        F: FnMut(&RecordedEvent) -> Result<(), E> + Send + 'static,
        E: Display,
    {
        let name = name.into();
        let options = options.into();
        let subscriber = Plain {
            name: name.clone(),
            links: Arc::clone(&self.inner().links),
            handler,
        };
        self.with_store(|_| Ok::<_, SubscribeError>(()))?;
        self.add(name, after.get(), &options, Box::new(subscriber), None)
    }

    /// Subscribes `handler` under a durable `name`: it starts after the position committed
    /// under that name (from the start the first time), and after each event it handles
    /// successfully, commits that event's position in the store.
    ///
    /// Guarantee: after a restart (or a crash) it resumes right after the last event it
    /// acknowledged, i.e. whose handler returned `Ok` and whose position was committed. An event
    /// whose handler ran but whose commit did not reach disk (the process died in between, or
    /// commits are not synced, see [`SubscriptionOptions::sync_commits`]) is delivered again:
    /// at-least-once across crashes, exactly once while the process lives. For effects that must
    /// be applied exactly once across crashes, keep them in the store with
    /// [`EventLog::project`]. One durable subscription or projection per name runs at a time.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{
    ///     EventContext, EventLog, EventLogConfig, ExpectedVersion, RecordedEvent, StreamId,
    ///     SubscriptionFilter,
    /// };
    /// use omni_domain::CacheMiss;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let config = || EventLogConfig::new(dir.path()).registry(omni_domain::registry());
    /// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "expired".into() };
    /// let stream = StreamId::of::<CacheMiss>("c1");
    /// let log = EventLog::open(config())?;
    /// log.subscribe_durable("warmer", SubscriptionFilter::all(), |_: &RecordedEvent| Ok::<(), String>(()))?;
    /// log.append_event(&stream, ExpectedVersion::Any, &miss, EventContext::default())?;
    /// log.close()?;
    ///
    /// // After a restart it resumes after position 1: only the new event is handled.
    /// let log = EventLog::open(config())?;
    /// assert_eq!(log.admin().consumer("warmer")?.map(|c| c.position), Some(1));
    /// log.append_event(&stream, ExpectedVersion::Any, &miss, EventContext::default())?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// log.subscribe_durable("warmer", SubscriptionFilter::all(), move |e: &RecordedEvent| tx.send(e.position))?;
    /// assert_eq!(rx.recv()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SubscribeError::DuplicateConsumer`] when one of this name runs already;
    /// [`SubscribeError::Store`] when its position cannot be read; otherwise as
    /// [`EventLog::subscribe`].
    pub fn subscribe_durable<F, E>(
        &self,
        name: impl Into<String>,
        options: impl Into<SubscriptionOptions>,
        handler: F,
    ) -> Result<Subscription, SubscribeError>
    where
        F: FnMut(&RecordedEvent) -> Result<(), E> + Send + 'static,
        E: Display,
    {
        let name = name.into();
        let options = options.into();
        self.with_store(|store| {
            if !reserve(&self.inner().consumers, &name) {
                return Err(SubscribeError::DuplicateConsumer { name });
            }
            let result = store
                .consumer(&name)
                .map_err(SubscribeError::from)
                .and_then(|checkpoint| {
                    let subscriber = Durable {
                        name: name.clone(),
                        links: Arc::clone(&self.inner().links),
                        store: store.clone(),
                        sync: options.sync(self.inner().durable),
                        handled_uncommitted: None,
                        handler,
                    };
                    let after = checkpoint.map_or(0, |c| c.position);
                    self.add(
                        name.clone(),
                        after,
                        &options,
                        Box::new(subscriber),
                        Some(Arc::clone(&self.inner().consumers)),
                    )
                });
            if result.is_err() {
                release(&self.inner().consumers, &name);
            }
            result
        })
    }

    /// Runs projection `P` under the durable `name`: restores its state and position from the
    /// store (a state of another [`Projection::STATE_VERSION`] is dropped and rebuilt from the
    /// start), then applies every later event that passes the filter, committing its state and
    /// position together after each one, in one atomic store write.
    ///
    /// Guarantee: the stored state is always the fold of exactly the events up to the stored
    /// position: a crash (even `kill -9`) never applies an event twice nor skips one.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{
    ///     ApplyError, EventContext, EventLog, EventLogConfig, EventRegistry, ExpectedVersion,
    ///     Position, Projection, RecordedEvent, StreamId, SubscriptionFilter,
    /// };
    /// use omni_domain::CacheHit;
    ///
    /// #[derive(Default, serde::Serialize, serde::Deserialize)]
    /// struct Hits(u64);
    /// impl Projection for Hits {
    ///     fn apply(&mut self, _: &RecordedEvent, _: &EventRegistry) -> Result<(), ApplyError> {
    ///         self.0 += 1;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let stream = StreamId::of::<CacheHit>("c1");
    /// log.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default())?;
    /// let hits = log.project::<Hits>("hits", SubscriptionFilter::all())?; // starts from the beginning
    /// log.append_event(&stream, ExpectedVersion::Any, &hit, EventContext::default())?;
    /// log.close()?; // applies every committed event first
    /// assert_eq!(hits.read(|state, position| (state.0, position)), (2, Position(2)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SubscribeError::ProjectionState`] when the stored state does not decode;
    /// [`SubscribeError::NotAProjection`] when the name belongs to a durable subscription; otherwise as [`EventLog::subscribe_durable`].
    pub fn project<P: Projection>(
        &self,
        name: impl Into<String>,
        options: impl Into<SubscriptionOptions>,
    ) -> Result<ProjectionHandle<P>, SubscribeError> {
        let name = name.into();
        let options = options.into();
        self.with_store(|store| {
            if !reserve(&self.inner().consumers, &name) {
                return Err(SubscribeError::DuplicateConsumer { name });
            }
            let result = self.start_projection::<P>(store, &name, &options);
            if result.is_err() {
                release(&self.inner().consumers, &name);
            }
            result
        })
    }

    fn start_projection<P: Projection>(
        &self,
        store: &Store,
        name: &str,
        options: &SubscriptionOptions,
    ) -> Result<ProjectionHandle<P>, SubscribeError> {
        let (after, state, committed) = match store.consumer(name)? {
            None => (0, P::default(), Vec::new()),
            Some(checkpoint) => match projection::decode_state::<P>(name, &checkpoint.state)? {
                StoredState::State(state) => (checkpoint.position, state, checkpoint.state),
                StoredState::Empty if checkpoint.position == 0 => (0, P::default(), Vec::new()),
                StoredState::Empty => {
                    return Err(SubscribeError::NotAProjection {
                        name: name.to_string(),
                        position: checkpoint.position,
                    });
                }
                StoredState::OtherVersion(found) => {
                    tracing::warn!(
                        name: "eventlog_projection_rebuilt",
                        projection = name,
                        stored_version = found,
                        state_version = P::STATE_VERSION,
                        "stored projection state has another version; rebuilding from the start"
                    );
                    (0, P::default(), Vec::new())
                }
            },
        };
        let shared = Arc::new(Mutex::new(projection::Shared {
            position: after,
            state,
        }));
        let runner = Runner {
            name: name.to_string(),
            store: store.clone(),
            registry: Arc::clone(&self.inner().config.registry),
            links: Arc::clone(&self.inner().links),
            sync: options.sync(self.inner().durable),
            shared: Arc::clone(&shared),
            committed,
            uncommitted: None,
        };
        let subscription = self.add(
            name.to_string(),
            after,
            options,
            Box::new(runner),
            Some(Arc::clone(&self.inner().consumers)),
        )?;
        Ok(ProjectionHandle {
            subscription,
            shared,
        })
    }

    /// The state and position projection `P` last committed under `name`, read from the store
    /// (`None` if it never committed, or committed another state version).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{
    ///     ApplyError, EventContext, EventLog, EventLogConfig, EventRegistry, ExpectedVersion,
    ///     Position, Projection, RecordedEvent, StreamId, SubscriptionFilter,
    /// };
    /// use omni_domain::CacheHit;
    ///
    /// #[derive(Default, serde::Serialize, serde::Deserialize)]
    /// struct Hits(u64);
    /// impl Projection for Hits {
    ///     fn apply(&mut self, _: &RecordedEvent, _: &EventRegistry) -> Result<(), ApplyError> {
    ///         self.0 += 1;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let dir = tempfile::tempdir()?;
    /// let config = || EventLogConfig::new(dir.path()).registry(omni_domain::registry());
    /// let log = EventLog::open(config())?;
    /// assert!(log.projection_state::<Hits>("hits")?.is_none());
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// log.project::<Hits>("hits", SubscriptionFilter::all())?;
    /// log.close()?;
    ///
    /// // Read back from the store, without running the projection.
    /// let log = EventLog::open(config())?;
    /// let (position, hits) = log.projection_state::<Hits>("hits")?.ok_or("never committed")?;
    /// assert_eq!((position, hits.0), (Position(1), 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SubscribeError::ProjectionState`] when the stored state does not decode;
    /// [`SubscribeError::Store`]; [`SubscribeError::Closed`].
    pub fn projection_state<P: Projection>(
        &self,
        name: &str,
    ) -> Result<Option<(Position, P)>, SubscribeError> {
        let Some(checkpoint) = self.with_store(|s| Ok::<_, SubscribeError>(s.consumer(name)?))?
        else {
            return Ok(None);
        };
        match projection::decode_state::<P>(name, &checkpoint.state)? {
            StoredState::State(state) => Ok(Some((Position(checkpoint.position), state))),
            StoredState::Empty | StoredState::OtherVersion(_) => Ok(None),
        }
    }

    /// The health of every subscription, in subscription order.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{EventLog, EventLogConfig, RecordedEvent, SubscriptionFilter};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// assert!(log.health().is_empty());
    /// let audit = log.subscribe("audit", SubscriptionFilter::all(), |_: &RecordedEvent| Ok::<(), String>(()))?;
    /// log.subscribe("mailer", SubscriptionFilter::all(), |_: &RecordedEvent| Ok::<(), String>(()))?;
    /// let names: Vec<String> = log.health().into_iter().map(|h| h.name).collect();
    /// assert_eq!(names, ["audit", "mailer"]);
    /// audit.unsubscribe()?;
    /// assert_eq!(log.health().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn health(&self) -> Vec<SubscriberHealth> {
        self.inner().bus.health()
    }
}
