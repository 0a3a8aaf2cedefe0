//! `eventlog`: an embedded event-sourcing event log on sled.
//!
//! One directory, one handle: [`EventLog`] composes the store (`events-sled`: hash-chained log,
//! per-aggregate and per-type indexes, snapshots, consumers, checkpoints) and the bus
//! (`events-bus`: one thread per subscriber, bounded queues, catch-up) over the event types of
//! `events-core`. It
//!
//! - appends with optimistic concurrency ([`EventLog::append`], [`EventLog::append_event`],
//!   atomic multi-aggregate [`EventLog::append_batches`]) and reads streams, the global log and
//!   aggregate types lazily;
//! - publishes every committed event to subscriptions, in global log order, once each:
//!   live ([`EventLog::subscribe`]), from a past position ([`EventLog::subscribe_from`]),
//!   durable across restarts ([`EventLog::subscribe_durable`]) and projections whose state is
//!   committed with their position ([`EventLog::project`]);
//! - loads [`Aggregate`]s from their latest snapshot plus the events after it, as of any
//!   version, snapshotting automatically every [`EventLogConfig::snapshot_every`] events; the
//!   Omni Writer's aggregates ([`ArticleGeneration`], [`Pipeline`], ...) are the worked example;
//! - exports, lists and prunes checkpoints, verifies the store, and reports
//!   [`EventLogMetrics`] (store + subscriptions + aggregate loads).
//!
//! The crate emits `tracing` spans (`eventlog_append`, `eventlog_deliver` — which follows from
//! the append that caused it —, `eventlog_load`, `eventlog_open`, `eventlog_close`) and never
//! installs a subscriber.
//!
//! # Example
//!
//! ```
//! use eventlog::{
//!     ArticleGeneration, ArticleGenerationStarted, EventContext, EventLog, EventLogConfig,
//!     ExpectedVersion, GenerationConfig, Position, PromptInput, RunStatus, SubscriptionFilter,
//! };
//!
//! let dir = tempfile::tempdir()?;
//! let log = EventLog::open(EventLogConfig::new(dir.path()))?;
//!
//! let started = ArticleGenerationStarted {
//!     config: GenerationConfig {
//!         model_type: "openai".into(),
//!         temperature: 0.7,
//!         max_tokens: 4096,
//!         language: "pt-BR".into(),
//!     },
//!     prompt: PromptInput { text: "Escreva sobre Rust".into(), index: 0 },
//!     variation: 1,
//!     started_at: eventlog::now_micros(),
//! };
//! let context = EventContext::new("omni-writer").with_trace_id("trace-1");
//! log.append_event("gen_1", ExpectedVersion::NoStream, &started, context)?;
//!
//! // History first, then live events, with no gap and no duplicate.
//! let (tx, rx) = std::sync::mpsc::channel();
//! let filter = SubscriptionFilter::all().aggregate_type("article_generation");
//! log.subscribe_from("printer", Position::Start, filter, move |event: &eventlog::RecordedEvent| {
//!     tx.send(event.position)
//! })?;
//! assert_eq!(rx.recv()?, 1);
//!
//! let generation = log.load::<ArticleGeneration>("gen_1")?;
//! assert_eq!(generation.state.status, RunStatus::Started);
//! assert_eq!(generation.version, 1);
//!
//! let metrics = serde_json::to_value(log.metrics()?)?;
//! assert_eq!(metrics["store"]["total_events_stored"], 1);
//! assert_eq!(metrics["bus"]["subscriptions"], 1);
//! log.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod aggregate;
mod config;
mod error;
mod log;
mod metrics;
mod omni;
mod projection;
mod publisher;
mod read_only;
mod subscription;
mod trace;

pub use aggregate::{Aggregate, Loaded};
pub use config::{DEFAULT_LOCK_WAIT, DEFAULT_SNAPSHOT_EVERY, EventLogConfig};
pub use error::{ApplyError, EventLogError};
pub use log::EventLog;
pub use metrics::{AggregateMetrics, BusMetrics, EventLogMetrics};
pub use omni::{
    ArticleGeneration, Cache, CachedKey, Pipeline, PromptValidation, RetryOperation, RetryStatus,
    RunStatus,
};
pub use projection::{Projection, ProjectionHandle};
pub use read_only::ReadOnlyEventLog;
pub use subscription::{Position, Subscription, SubscriptionFilter, SubscriptionOptions};

// The member crates' types that appear in this crate's signatures, so users need no other
// dependency.
pub use events_bus::{
    Backpressure, Failure, FailureKind, FailurePolicy, SubscriberCounts, SubscriberHealth,
    SubscriberId, SubscriberReport, SubscriberState,
};
pub use events_core::{
    ARTICLE_GENERATION, ArticleGenerationCompleted, ArticleGenerationCompletedV1,
    ArticleGenerationFailed, ArticleGenerationStarted, ArticleOutput, CACHE, CacheHit,
    CacheInvalidated, CacheMiss, CacheSet, CodecError, DomainEvent, EventContext, EventFactory,
    EventMetadata, EventRegistry, GenerationConfig, NewEvent, PIPELINE, PROMPT_VALIDATION,
    PipelineCompleted, PipelineFailed, PipelineStarted, PromptInput, PromptValidationCompleted,
    PromptValidationFailed, PromptValidationStarted, RETRY, RecordedEvent, RegistryError,
    RetryAttempted, RetryFailed, RetrySucceeded, ValidationError, now_micros,
};
pub use events_sled::{
    AggregateInfo, AppendBatch, AppendError, AppendResult, ChainHead, CheckpointError,
    CheckpointInfo, CheckpointManifest, CheckpointPolicy, ConsumerCheckpoint, Direction,
    Durability, EventRef, ExpectedVersion, LogEvents, LogFollower, OpenError, Progress, ReadError,
    ReadOnlyLogEvents, ReadOnlyStreamEvents, ReadOnlyTypeEvents, RepairReport, Snapshot,
    SnapshotError, StoreConfig, StoreError, StoreLimits, StoreMetrics, StreamEvents, StreamRead,
    TypeEvents, VerifyIssue, VerifyReport, import_checkpoint, list_checkpoints, migrate_store,
    prune_checkpoints, read_manifest, repair_store, verify_checkpoint, verify_checkpoint_with,
};
