//! `eventlog`: an embedded event-sourcing event log.
//!
//! One directory, one handle: [`EventLog`] composes the store (`events-sled`: the log in
//! append-only segment files, per-aggregate and per-type indexes, snapshots and consumers in
//! sled, checkpoints) and the bus (`events-bus`: one thread per subscriber, bounded queues,
//! catch-up) over the event vocabulary of `events-core`. It
//!
//! - appends to a [`StreamId`] with optimistic concurrency ([`EventLog::append`], typed
//!   [`EventLog::append_event`] and [`EventLog::append_events`], atomic multi-stream
//!   [`EventLog::append_batches`]) and reads streams, the global log and aggregate types lazily;
//! - publishes every committed event to subscriptions, in global log order, once each:
//!   live ([`EventLog::subscribe`]), from a past [`Position`] ([`EventLog::subscribe_from`]),
//!   durable across restarts ([`EventLog::subscribe_durable`]) and projections whose state is
//!   committed with their position ([`EventLog::project`]);
//! - loads [`Aggregate`]s, whose events are one typed enum ([`event_set!`]), from their latest
//!   snapshot plus the events after it, as of any [`Version`], snapshotting automatically every
//!   [`EventLogConfig::snapshot_every`] events;
//! - and, through [`EventLog::admin`], exports checkpoints (listed and pruned by
//!   [`list_checkpoints`] and [`prune_checkpoints`], which need no open store), verifies the
//!   store, manages durable consumers and raw snapshots, and reports [`EventLogMetrics`].
//!
//! Each operation has its own error ([`OpenError`], [`AppendError`], [`ReadError`],
//! [`LoadError`], [`SubscribeError`], [`AdminError`]); [`Error`] takes any of them.
//!
//! The crate emits `tracing` spans (`eventlog_append`, `eventlog_deliver` — which follows from
//! the append that caused it —, `eventlog_load`, `eventlog_open`, `eventlog_close`) and never
//! installs a subscriber. `docs/architecture.md` shows the layers, the threads and the path of
//! one append.
//!
//! # Example
//!
//! Your own events, an aggregate folding them, appends, a load and a subscription:
//!
//! ```
//! use eventlog::{
//!     Aggregate, ApplyError, DomainEvent, EventContext, EventLog, EventLogConfig,
//!     EventMetadata, EventRegistry, ExpectedVersion, Position, RecordedEvent, StreamId,
//!     SubscriptionFilter, event_set,
//! };
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! struct Deposited { cents: u64 }
//! impl DomainEvent for Deposited {
//!     const EVENT_TYPE: &'static str = "deposited";
//!     const AGGREGATE_TYPE: &'static str = "account";
//! }
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! struct Withdrawn { cents: u64 }
//! impl DomainEvent for Withdrawn {
//!     const EVENT_TYPE: &'static str = "withdrawn";
//!     const AGGREGATE_TYPE: &'static str = "account";
//! }
//!
//! event_set! {
//!     /// What happens to an account.
//!     #[derive(Debug, Clone, PartialEq)]
//!     pub enum AccountEvent {
//!         /// Money came in.
//!         Deposited(Deposited),
//!         /// Money went out.
//!         Withdrawn(Withdrawn),
//!     }
//! }
//!
//! #[derive(Debug, Default, Serialize, Deserialize)]
//! struct Account { balance: i64 }
//!
//! impl Aggregate for Account {
//!     const AGGREGATE_TYPE: &'static str = "account";
//!     type Event = AccountEvent;
//!     fn apply(&mut self, event: AccountEvent, _: &EventMetadata) -> Result<(), ApplyError> {
//!         match event {
//!             AccountEvent::Deposited(e) => self.balance += e.cents as i64,
//!             AccountEvent::Withdrawn(e) => self.balance -= e.cents as i64,
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let mut registry = EventRegistry::new();
//! registry.register::<Deposited>()?;
//! registry.register::<Withdrawn>()?;
//! let dir = tempfile::tempdir()?;
//! let log = EventLog::open(EventLogConfig::new(dir.path()).registry(registry))?;
//!
//! // History first, then live events, with no gap and no duplicate.
//! let (tx, rx) = std::sync::mpsc::channel();
//! let filter = SubscriptionFilter::all().aggregate_type("account");
//! log.subscribe_from("printer", Position::START, filter, move |event: &RecordedEvent| {
//!     tx.send(event.position)
//! })?;
//!
//! let account = StreamId::new("account", "acc-1");
//! let context = EventContext::new("bank").with_trace_id("trace-1");
//! log.append_events(
//!     &account,
//!     ExpectedVersion::NoStream,
//!     [AccountEvent::from(Deposited { cents: 500 }), Withdrawn { cents: 120 }.into()],
//!     context,
//! )?;
//! assert_eq!(rx.recv()?, 1);
//!
//! let loaded = log.load::<Account>("acc-1")?;
//! assert_eq!((loaded.state.balance, loaded.version.get()), (380, 2));
//!
//! let metrics = serde_json::to_value(log.admin().metrics()?)?;
//! assert_eq!(metrics["store"]["total_events_stored"], 2);
//! assert_eq!(metrics["bus"]["subscriptions"], 1);
//! log.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// README.md's example is compiled and run as a doc test, so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;

mod admin;
mod aggregate;
mod append;
mod causation;
mod config;
mod error;
mod log;
mod metrics;
mod projection;
mod publisher;
mod read;
mod read_only;
mod replicate;
mod restore;
mod subscribe;
mod subscription;
mod trace;

pub use admin::Admin;
pub use aggregate::Loaded;
pub use append::AppendBatch;
pub use causation::{DEFAULT_TRACE_EVENTS, Trace, TraceQuery, TraceStep};
pub use config::{DEFAULT_LOCK_WAIT, DEFAULT_SNAPSHOT_EVERY, EventLogConfig};
pub use error::{AdminError, AppendError, Error, LoadError, OpenError, ReadError, SubscribeError};
pub use log::EventLog;
pub use metrics::{AggregateMetrics, BusMetrics, EventLogMetrics, ReplicationMetrics};
pub use projection::{Projection, ProjectionHandle};
pub use read_only::ReadOnlyEventLog;
pub use restore::{RestoreError, RestoreReport, restore_from_stream, restore_from_stream_with};
pub use subscription::{Subscription, SubscriptionFilter, SubscriptionOptions};

// The member crates' types that appear in this crate's signatures, so users need no other
// dependency.
pub use events_bus::{
    Backpressure, Failure, FailureKind, FailurePolicy, SubscriberCounts, SubscriberHealth,
    SubscriberId, SubscriberReport, SubscriberSettings, SubscriberState,
};
pub use events_core::{
    Aggregate, ApplyError, CodecError, DomainEvent, EventContext, EventFactory, EventMetadata,
    EventRegistry, EventSet, ExpectedVersion, NewEvent, Position, RecordedEvent, RegistryError,
    StreamId, ValidationError, Version, event_set, now_micros,
};
pub use events_nats::{
    FollowError, Follower, ReplicationConfig, ReplicationError, ReplicationProbe,
    ReplicationStatus, Replicator, ReplicatorState, Ship, StreamReader, StreamSummary,
};
pub use events_sled::{
    AggregateInfo, AppendError as StoreAppendError, AppendResult, ChainHead, CheckpointError,
    CheckpointInfo, CheckpointManifest, CheckpointPolicy, ConsumerCheckpoint, Direction,
    Durability, EventRef, HistogramBucket, HistogramSnapshot, LogEvents, LogFollower,
    OpenError as StoreOpenError, Progress, ReadError as StoreReadError, ReadOnlyLogEvents,
    ReadOnlyStreamEvents, ReadOnlyTypeEvents, RepairReport, Snapshot, SnapshotError, StoreConfig,
    StoreError, StoreLimits, StoreMetrics, StreamEvents, StreamRead, TypeEvents, VerifyIssue,
    VerifyReport, import_checkpoint, list_checkpoints, migrate_store, prune_checkpoints,
    read_manifest, repair_store, verify_checkpoint, verify_checkpoint_with,
};
