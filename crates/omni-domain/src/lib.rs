//! The Omni Writer's domain on the `eventlog` event store: the sixteen events of the seed
//! (article generation, prompt validation, cache, retry, pipeline) with the values they carry,
//! their [`registry`] (upcasters included), a [`validator`], and one aggregate per aggregate type
//! with the [`EventSet`](events_core::EventSet) of its events.
//!
//! The library (`eventlog`) knows nothing of this crate: the daemon, the dump tool, the benches
//! and the tests use it as any application would use its own domain.
//!
//! # Example
//!
//! ```
//! use events_core::{Aggregate, EventContext, EventValidator, NewEvent};
//! use omni_domain::{Cache, CacheHit, CacheEvent};
//!
//! let hit = CacheHit { cache_key: "k".into(), cache_type: "memory".into(), response_time: 0.001 };
//! let event = NewEvent::from_event("cache-1", &hit, EventContext::new("omni-writer"))?;
//! omni_domain::validator().validate_event(&event)?;
//!
//! let mut cache = Cache::default();
//! cache.apply(CacheEvent::Hit(hit), &event.metadata(1))?;
//! assert_eq!(cache.keys["k"].hits, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod aggregates;
mod events;

use events_core::{
    Aggregate, DomainEvent, EventRegistry, EventValidator, RecordedEvent, RegistryError,
};

pub use aggregates::{
    ArticleGeneration, ArticleGenerationEvent, Cache, CacheEvent, CachedKey, Pipeline,
    PipelineEvent, PromptValidation, PromptValidationEvent, RetryEvent, RetryOperation,
    RetryStatus, RunStatus,
};
pub use events::{
    ARTICLE_GENERATION, ArticleGenerationCompleted, ArticleGenerationCompletedV1,
    ArticleGenerationFailed, ArticleGenerationStarted, ArticleOutput, CACHE, CacheHit,
    CacheInvalidated, CacheMiss, CacheSet, GenerationConfig, PIPELINE, PROMPT_VALIDATION,
    PipelineCompleted, PipelineFailed, PipelineStarted, PromptInput, PromptValidationCompleted,
    PromptValidationFailed, PromptValidationStarted, RETRY, RetryAttempted, RetryFailed,
    RetrySucceeded,
};

/// The five aggregate types of the Omni Writer.
pub const AGGREGATE_TYPES: [&str; 5] = [
    ARTICLE_GENERATION,
    PROMPT_VALIDATION,
    CACHE,
    RETRY,
    PIPELINE,
];

/// Something to do with one Omni Writer aggregate type, whichever it is: the way to go from an
/// aggregate type's name (read from a store, a command line, a URL) to its Rust type.
pub trait WithAggregate {
    /// What the job gives.
    type Output;
    /// Does the job with aggregate `A`.
    fn run<A: Aggregate>(self) -> Self::Output;
}

/// Runs `job` with the Omni Writer aggregate whose type is `aggregate_type`; `None` for another
/// type.
///
/// # Example
///
/// ```
/// use events_core::Aggregate;
/// use omni_domain::{WithAggregate, with_aggregate};
///
/// struct StateVersion;
/// impl WithAggregate for StateVersion {
///     type Output = u16;
///     fn run<A: Aggregate>(self) -> u16 {
///         A::STATE_VERSION
///     }
/// }
/// assert_eq!(with_aggregate("pipeline", StateVersion), Some(1));
/// assert_eq!(with_aggregate("invoice", StateVersion), None);
/// ```
pub fn with_aggregate<J: WithAggregate>(aggregate_type: &str, job: J) -> Option<J::Output> {
    Some(match aggregate_type {
        ArticleGeneration::AGGREGATE_TYPE => job.run::<ArticleGeneration>(),
        PromptValidation::AGGREGATE_TYPE => job.run::<PromptValidation>(),
        Cache::AGGREGATE_TYPE => job.run::<Cache>(),
        RetryOperation::AGGREGATE_TYPE => job.run::<RetryOperation>(),
        Pipeline::AGGREGATE_TYPE => job.run::<Pipeline>(),
        _ => return None,
    })
}

/// Where a pipeline's trace lies in the log, from its stream's events (read forwards): the
/// daemon appends `pipeline_started` first and `pipeline_completed`/`pipeline_failed` last, and
/// every event of the pipeline carries its id as correlation id. Returns the first position
/// and, once the pipeline has ended, the last (else the trace may still grow); `None` for a
/// stream without events.
///
/// # Errors
///
/// The first error the events yield.
///
/// # Example
///
/// ```
/// use events_core::{EventContext, NewEvent};
/// use omni_domain::{PipelineCompleted, PipelineStarted, GenerationConfig, pipeline_span};
///
/// let config = GenerationConfig { model_type: "m".into(), temperature: 0.5, max_tokens: 10, language: "pt-BR".into() };
/// let started = PipelineStarted { pipeline_type: "single_instance".into(), config, total_prompts: 1 };
/// let first = NewEvent::from_event("pipeline-000001", &started, EventContext::default())?.into_recorded(1, 7);
/// assert_eq!(pipeline_span([Ok::<_, ()>(first.clone())]), Ok(Some((7, None))));
/// let done = PipelineCompleted { pipeline_type: "single_instance".into(), total_articles: 1, successful_articles: 1, failed_articles: 0, total_time: 1.0, zip_path: "x.zip".into() };
/// let last = NewEvent::from_event("pipeline-000001", &done, EventContext::default())?.into_recorded(2, 40);
/// assert_eq!(pipeline_span([Ok::<_, ()>(first), Ok(last)]), Ok(Some((7, Some(40)))));
/// assert_eq!(pipeline_span(Vec::<Result<_, ()>>::new()), Ok(None));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn pipeline_span<E>(
    stream: impl IntoIterator<Item = Result<RecordedEvent, E>>,
) -> Result<Option<(u64, Option<u64>)>, E> {
    let mut events = stream.into_iter();
    let Some(first) = events.next().transpose()? else {
        return Ok(None);
    };
    let last = events.last().transpose()?;
    let last = last.as_ref().unwrap_or(&first);
    let ended = [PipelineCompleted::EVENT_TYPE, PipelineFailed::EVENT_TYPE]
        .contains(&last.metadata.event_type.as_str());
    Ok(Some((first.position, ended.then_some(last.position))))
}

/// Adds the sixteen Omni Writer event types and their upcasters to `registry`.
///
/// # Errors
///
/// [`RegistryError::DuplicateEventType`] when `registry` already holds one of the types.
pub fn register(registry: &mut EventRegistry) -> Result<(), RegistryError> {
    registry.register::<ArticleGenerationStarted>()?;
    registry.register::<ArticleGenerationCompleted>()?;
    registry.register::<ArticleGenerationFailed>()?;
    registry.register::<PromptValidationStarted>()?;
    registry.register::<PromptValidationCompleted>()?;
    registry.register::<PromptValidationFailed>()?;
    registry.register::<CacheHit>()?;
    registry.register::<CacheMiss>()?;
    registry.register::<CacheSet>()?;
    registry.register::<CacheInvalidated>()?;
    registry.register::<RetryAttempted>()?;
    registry.register::<RetrySucceeded>()?;
    registry.register::<RetryFailed>()?;
    registry.register::<PipelineStarted>()?;
    registry.register::<PipelineCompleted>()?;
    registry.register::<PipelineFailed>()?;
    registry.register_upcaster(
        ArticleGenerationCompleted::EVENT_TYPE,
        1,
        |v1: ArticleGenerationCompletedV1| ArticleGenerationCompleted::from(v1),
    )
}

/// A registry holding the sixteen Omni Writer event types and their upcasters.
pub fn registry() -> EventRegistry {
    let mut registry = EventRegistry::new();
    // An empty registry refuses none of sixteen distinct types nor the upcaster of a registered
    // one; `tests/registry.rs` (`sixteen_omni_writer_types_are_registered`) checks that every one is there.
    if let Err(error) = register(&mut registry) {
        tracing::error!(name: "omni_registry_incomplete", error = %error, "Omni Writer registry refused a type");
    }
    registry
}

/// A validator that accepts only the Omni Writer event types.
pub fn validator() -> EventValidator {
    EventValidator::new().with_registry(registry())
}
