//! Projections: a durable subscription whose own state is committed with its position, in one
//! atomic store write, after every event.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use events_bus::{Subscriber, SubscriberError, SubscriberHealth, SubscriberReport};
use events_core::{ApplyError, CodecError, EventRegistry, Position, RecordedEvent, codec};
use events_sled::Store;
use serde::{Serialize, de::DeserializeOwned};

use crate::error::SubscribeError;
use crate::subscription::{Delivered, Subscription, deliver_span};
use crate::trace::SpanLinks;

/// A read model kept up to date from the log: the projection *is* its state.
///
/// [`crate::EventLog::project`] runs it as a durable subscription. After each event it applies,
/// its encoded state and the event's position are committed together in one store write, so
/// after a crash (even `kill -9`) the stored state is exactly the fold of the events up to the
/// stored position: none applied twice, none skipped. The state is encoded with the event codec
/// (bincode), so it must be plain serde data; raise [`Projection::STATE_VERSION`] when its shape
/// changes, and the projection is rebuilt from the start of the log.
///
/// # Example
///
/// ```
/// use eventlog::{
///     ApplyError, EventContext, EventLog, EventLogConfig, EventRegistry, ExpectedVersion,
///     Position, Projection, RecordedEvent, StreamId, SubscriptionFilter,
/// };
/// use omni_domain::CacheMiss;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Default, Serialize, Deserialize)]
/// struct Misses(u64);
///
/// impl Projection for Misses {
///     fn apply(&mut self, _: &RecordedEvent, _: &EventRegistry) -> Result<(), ApplyError> {
///         self.0 += 1;
///         Ok(())
///     }
/// }
///
/// let dir = tempfile::tempdir()?;
/// let config = || EventLogConfig::new(dir.path()).registry(omni_domain::registry());
/// let log = EventLog::open(config())?;
/// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "expired".into() };
/// let stream = StreamId::of::<CacheMiss>("c1");
/// log.append_event(&stream, ExpectedVersion::Any, &miss, EventContext::default())?;
/// let misses = log.project::<Misses>("misses", SubscriptionFilter::all().event_type("cache_miss"))?;
/// log.append_event(&stream, ExpectedVersion::Any, &miss, EventContext::default())?;
/// log.close()?; // every committed event is handled before close returns
///
/// let log = EventLog::open(config())?;
/// let (position, state) = log.projection_state::<Misses>("misses")?.unwrap_or_default();
/// assert_eq!((position, state.0), (Position(2), 2));
/// # drop(misses);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Projection: Default + Serialize + DeserializeOwned + Send + 'static {
    /// The version of the state's shape, stored with it. Default = 1.
    const STATE_VERSION: u16 = 1;

    /// Applies one event. On an error (or a panic) the state is restored to what was last
    /// committed, and the subscription's failure policy decides what happens next.
    ///
    /// # Errors
    ///
    /// An [`ApplyError`] when the event cannot be applied.
    fn apply(&mut self, event: &RecordedEvent, registry: &EventRegistry) -> Result<(), ApplyError>;
}

/// The state a projection's thread shares with its handle.
#[derive(Debug)]
pub(crate) struct Shared<P> {
    pub(crate) position: u64,
    pub(crate) state: P,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `version (u16 BE) · codec payload`.
pub(crate) fn encode_state<P: Projection>(state: &P) -> Result<Vec<u8>, CodecError> {
    let mut out = P::STATE_VERSION.to_be_bytes().to_vec();
    out.extend_from_slice(&codec::encode_payload(state)?);
    Ok(out)
}

/// What a stored projection state is.
pub(crate) enum StoredState<P> {
    /// Nothing committed yet.
    Empty,
    /// Committed with another state version: rebuild.
    OtherVersion(u16),
    /// The state.
    State(P),
}

pub(crate) fn decode_state<P: Projection>(
    name: &str,
    bytes: &[u8],
) -> Result<StoredState<P>, SubscribeError> {
    let Some((version, body)) = bytes.split_first_chunk::<2>() else {
        return if bytes.is_empty() {
            Ok(StoredState::Empty)
        } else {
            Err(SubscribeError::ProjectionState {
                name: name.to_string(),
                source: CodecError::Decode {
                    what: "projection state",
                    reason: format!("{} bytes is too short for its version", bytes.len()),
                },
            })
        };
    };
    let version = u16::from_be_bytes(*version);
    if version != P::STATE_VERSION {
        return Ok(StoredState::OtherVersion(version));
    }
    codec::decode_payload(body)
        .map(StoredState::State)
        .map_err(|source| SubscribeError::ProjectionState {
            name: name.to_string(),
            source,
        })
}

/// The projection's handler on its subscriber thread.
pub(crate) struct Runner<P> {
    pub(crate) name: String,
    pub(crate) store: Store,
    pub(crate) registry: Arc<EventRegistry>,
    pub(crate) links: Arc<SpanLinks>,
    pub(crate) sync: bool,
    pub(crate) shared: Arc<Mutex<Shared<P>>>,
    /// The state bytes last committed (restored when an apply fails).
    pub(crate) committed: Vec<u8>,
    /// An event applied in memory whose commit failed: retry the commit, not the apply.
    pub(crate) uncommitted: Option<(u64, Vec<u8>)>,
}

impl<P: Projection> Runner<P> {
    /// Puts the state back to what was last committed.
    fn restore(&self, shared: &mut Shared<P>) {
        match decode_state::<P>(&self.name, &self.committed) {
            Ok(StoredState::State(state)) => shared.state = state,
            Ok(StoredState::Empty | StoredState::OtherVersion(_)) => shared.state = P::default(),
            Err(error) => {
                // Cannot happen (these bytes were encoded here); keep the default rather than
                // a half-applied state.
                tracing::error!(projection = %self.name, error = %error, "restoring the committed state failed");
                shared.state = P::default();
            }
        }
    }

    /// Applies the event in memory and encodes the new state; on failure the state is restored.
    fn apply(&mut self, event: &RecordedEvent) -> Result<Vec<u8>, SubscriberError> {
        let registry = Arc::clone(&self.registry);
        let shared = Arc::clone(&self.shared);
        let mut guard = lock(&shared);
        let outcome = catch_unwind(AssertUnwindSafe(|| guard.state.apply(event, &registry)));
        let failure = match outcome {
            Ok(Ok(())) => match encode_state(&guard.state) {
                Ok(bytes) => {
                    guard.position = event.position;
                    return Ok(bytes);
                }
                Err(error) => SubscriberError::from_error(error),
            },
            Ok(Err(error)) => SubscriberError::from_error(error),
            Err(payload) => {
                self.restore(&mut guard);
                drop(guard);
                // Let the bus count it as a panic, with its own message.
                resume_unwind(payload);
            }
        };
        self.restore(&mut guard);
        Err(failure)
    }
}

impl<P: Projection> Subscriber<Delivered> for Runner<P> {
    fn handle(&mut self, message: &Delivered) -> Result<(), SubscriberError> {
        let event = &message.0;
        let span = deliver_span(&self.name, event, &self.links);
        let _entered = span.enter();
        let bytes = match self.uncommitted.take() {
            Some((position, bytes)) if position == event.position => bytes,
            _ => self.apply(event)?,
        };
        if let Err(error) =
            self.store
                .commit_consumer(&self.name, event.position, &bytes, self.sync)
        {
            self.uncommitted = Some((event.position, bytes));
            return Err(SubscriberError::from_error(error));
        }
        self.committed = bytes;
        Ok(())
    }
}

/// A running projection: its subscription, and the state as applied so far.
pub struct ProjectionHandle<P> {
    pub(crate) subscription: Subscription,
    pub(crate) shared: Arc<Mutex<Shared<P>>>,
}

impl<P> fmt::Debug for ProjectionHandle<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProjectionHandle")
            .field("subscription", &self.subscription)
            .field("position", &lock(&self.shared).position)
            .finish()
    }
}

impl<P: Projection> ProjectionHandle<P> {
    /// Calls `read` with the state and the position of the last event applied. The state seen
    /// here is committed (or being committed) in the store; every event up to the position has
    /// been applied exactly once.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{ApplyError, EventContext, EventLog, EventLogConfig, EventRegistry, ExpectedVersion};
    /// use eventlog::{Position, Projection, RecordedEvent, StreamId, SubscriptionFilter};
    /// use omni_domain::CacheMiss;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Default, Serialize, Deserialize)]
    /// # struct Misses(u64);
    /// # impl Projection for Misses {
    /// #     fn apply(&mut self, _: &RecordedEvent, _: &EventRegistry) -> Result<(), ApplyError> {
    /// #         self.0 += 1;
    /// #         Ok(())
    /// #     }
    /// # }
    /// // `Misses(u64)`: a projection counting the events it applies (as in the `Projection` example).
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "cold".into() };
    /// let misses = log.project::<Misses>("misses", SubscriptionFilter::all())?;
    /// log.append_event(&StreamId::of::<CacheMiss>("c1"), ExpectedVersion::Any, &miss, EventContext::default())?;
    /// log.append_event(&StreamId::of::<CacheMiss>("c1"), ExpectedVersion::Any, &miss, EventContext::default())?;
    /// log.close()?; // every committed event is handled before close returns
    /// assert_eq!(misses.read(|state, position| (state.0, position)), (2, Position(2)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read<R>(&self, read: impl FnOnce(&P, Position) -> R) -> R {
        let shared = lock(&self.shared);
        read(&shared.state, Position(shared.position))
    }

    /// The position of the last event applied.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{ApplyError, EventContext, EventLog, EventLogConfig, EventRegistry, ExpectedVersion};
    /// use eventlog::{Position, Projection, RecordedEvent, StreamId, SubscriptionFilter};
    /// use omni_domain::{CacheHit, CacheMiss};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Default, Serialize, Deserialize)]
    /// # struct Misses(u64);
    /// # impl Projection for Misses {
    /// #     fn apply(&mut self, _: &RecordedEvent, _: &EventRegistry) -> Result<(), ApplyError> {
    /// #         self.0 += 1;
    /// #         Ok(())
    /// #     }
    /// # }
    /// // `Misses(u64)`: a projection counting the events it applies (as in the `Projection` example).
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "cold".into() };
    /// let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
    /// let misses = log.project::<Misses>("misses", SubscriptionFilter::all().event_type("cache_miss"))?;
    /// assert_eq!(misses.position(), Position::START);
    /// log.append_event(&StreamId::of::<CacheMiss>("c1"), ExpectedVersion::Any, &miss, EventContext::default())?;
    /// log.append_event(&StreamId::of::<CacheHit>("c1"), ExpectedVersion::Any, &hit, EventContext::default())?;
    /// log.close()?; // every committed event is handled before close returns
    /// assert_eq!(misses.position(), 1); // the hit at position 2 is not applied
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn position(&self) -> Position {
        Position(lock(&self.shared).position)
    }

    /// The projection's subscription.
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{ApplyError, EventLog, EventLogConfig, EventRegistry, Projection, RecordedEvent};
    /// use eventlog::SubscriptionFilter;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Default, Serialize, Deserialize)]
    /// # struct Misses(u64);
    /// # impl Projection for Misses {
    /// #     fn apply(&mut self, _: &RecordedEvent, _: &EventRegistry) -> Result<(), ApplyError> {
    /// #         self.0 += 1;
    /// #         Ok(())
    /// #     }
    /// # }
    /// // `Misses(u64)`: a projection counting the events it applies (as in the `Projection` example).
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()))?;
    /// let misses = log.project::<Misses>("misses", SubscriptionFilter::all())?;
    /// assert_eq!(misses.subscription().name(), "misses");
    /// let listed = log.health().into_iter().find(|h| h.id == misses.subscription().id());
    /// assert_eq!(listed.ok_or("not running")?.name, "misses");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscription(&self) -> &Subscription {
        &self.subscription
    }

    /// How it is doing now (`None` once it was stopped or the log closed).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{ApplyError, EventContext, EventLog, EventLogConfig, EventRegistry, ExpectedVersion};
    /// use eventlog::{Position, Projection, RecordedEvent, StreamId, SubscriptionFilter};
    /// use omni_domain::CacheMiss;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Default, Serialize, Deserialize)]
    /// # struct Misses(u64);
    /// # impl Projection for Misses {
    /// #     fn apply(&mut self, _: &RecordedEvent, _: &EventRegistry) -> Result<(), ApplyError> {
    /// #         self.0 += 1;
    /// #         Ok(())
    /// #     }
    /// # }
    /// // `Misses(u64)`: a projection counting the events it applies (as in the `Projection` example).
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "cold".into() };
    /// let misses = log.project::<Misses>("misses", SubscriptionFilter::all())?;
    /// log.append_event(&StreamId::of::<CacheMiss>("c1"), ExpectedVersion::Any, &miss, EventContext::default())?;
    /// let health = misses.health().ok_or("not running")?;
    /// assert_eq!((health.name.as_str(), health.state.is_terminal()), ("misses", false));
    /// log.close()?;
    /// assert!(misses.health().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn health(&self) -> Option<SubscriberHealth> {
        self.subscription.health()
    }

    /// Stops the projection (its committed state and position stay in the store: projecting
    /// again under the same name resumes from them).
    ///
    /// # Example
    ///
    /// ```
    /// use eventlog::{ApplyError, EventContext, EventLog, EventLogConfig, EventRegistry, ExpectedVersion};
    /// use eventlog::{Position, Projection, RecordedEvent, StreamId, SubscriptionFilter};
    /// use omni_domain::CacheMiss;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Default, Serialize, Deserialize)]
    /// # struct Misses(u64);
    /// # impl Projection for Misses {
    /// #     fn apply(&mut self, _: &RecordedEvent, _: &EventRegistry) -> Result<(), ApplyError> {
    /// #         self.0 += 1;
    /// #         Ok(())
    /// #     }
    /// # }
    /// // `Misses(u64)`: a projection counting the events it applies (as in the `Projection` example).
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = EventLog::open(EventLogConfig::new(dir.path()).registry(omni_domain::registry()))?;
    /// let miss = CacheMiss { cache_key: "k".into(), cache_type: "memory".into(), reason: "cold".into() };
    /// let misses = log.project::<Misses>("misses", SubscriptionFilter::all())?;
    /// for _ in 0..3 {
    ///     log.append_event(&StreamId::of::<CacheMiss>("c1"), ExpectedVersion::Any, &miss, EventContext::default())?;
    /// }
    /// let report = misses.stop()?;
    /// // What it applied before it stopped is committed, with its position.
    /// let (position, state) = log.projection_state::<Misses>("misses")?.unwrap_or_default();
    /// assert_eq!((position, state.0), (Position(report.last_sequence), report.last_sequence));
    /// // Projecting again resumes there: each event is applied once.
    /// let again = log.project::<Misses>("misses", SubscriptionFilter::all())?;
    /// log.close()?;
    /// assert_eq!(again.read(|state, position| (state.0, position)), (3, Position(3)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Subscription::unsubscribe`].
    pub fn stop(self) -> Result<SubscriberReport, SubscribeError> {
        self.subscription.unsubscribe()
    }
}
