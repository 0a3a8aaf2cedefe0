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

use events_core::{DomainEvent, EventRegistry, EventValidator, RegistryError};

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
