//! Event types, metadata, registry, factory, codec and validation for the `eventlog` event store.
//!
//! This crate knows nothing of storage or threads. It defines:
//!
//! - [`EventMetadata`], the fields every event carries (ids, version, time, tracing ids);
//! - [`DomainEvent`], the trait a payload type implements, and the envelopes [`NewEvent`] (about to
//!   be appended) and [`RecordedEvent`] (stored, with its version and global position);
//! - the sixteen Omni Writer events ([`ArticleGenerationStarted`], ..., [`PipelineFailed`]);
//! - [`EventRegistry`] and [`EventFactory`]: create events from a type name and JSON, upcast old
//!   payloads, convert events to and from JSON;
//! - [`codec`]: the one module that turns payloads and metadata into bytes;
//! - [`EventValidator`] and [`validate_sequence`].
//!
//! # Example
//!
//! ```
//! use events_core::{
//!     ArticleGenerationFailed, EventContext, EventRegistry, EventValidator, NewEvent,
//! };
//!
//! let failed = ArticleGenerationFailed {
//!     error_message: "API timeout".into(),
//!     error_type: "TimeoutError".into(),
//!     generation_time: 10.0,
//! };
//! let event = NewEvent::from_event("gen_123", &failed, EventContext::new("omni-writer"))?;
//! EventValidator::omni_writer().validate_event(&event)?;
//!
//! let recorded = event.into_recorded(1, 1);
//! let registry = EventRegistry::omni_writer();
//! let json = registry.event_to_json(&recorded)?;
//! assert_eq!(json["payload"]["error_type"], "TimeoutError");
//! assert_eq!(registry.event_from_json(json)?, recorded);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod codec;
mod error;
mod event;
mod omni;
mod registry;
mod validation;

pub use error::{CodecError, RegistryError, ValidationError};
pub use event::{DomainEvent, EventContext, EventMetadata, NewEvent, RecordedEvent, now_micros};
pub use omni::{
    ARTICLE_GENERATION, ArticleGenerationCompleted, ArticleGenerationCompletedV1,
    ArticleGenerationFailed, ArticleGenerationStarted, ArticleOutput, CACHE, CacheHit,
    CacheInvalidated, CacheMiss, CacheSet, GenerationConfig, PIPELINE, PROMPT_VALIDATION,
    PipelineCompleted, PipelineFailed, PipelineStarted, PromptInput, PromptValidationCompleted,
    PromptValidationFailed, PromptValidationStarted, RETRY, RetryAttempted, RetryFailed,
    RetrySucceeded,
};
pub use registry::{EventFactory, EventRegistry, EventTypeInfo};
pub use validation::{EventValidator, ValidationLimits, validate_sequence};
