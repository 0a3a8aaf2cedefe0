//! The Omni Writer's aggregates, folded from its typed events: one per aggregate type
//! (`article_generation`, `prompt_validation`, `cache`, `retry`, `pipeline`), each with the
//! [`EventSet`](events_core::EventSet) of its events. They are what `events-dump state` prints.
//!
//! The folds are lenient about order (a `completed` without a `started` still records what it
//! carries) but strict about types: an event of another aggregate type is an
//! [`ApplyError::UnexpectedEvent`] (raised when the event set decodes it).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use events_core::{Aggregate, ApplyError, EventMetadata, event_set};
use serde::{Deserialize, Serialize};

use crate::events::{
    ARTICLE_GENERATION, ArticleGenerationCompleted, ArticleGenerationFailed,
    ArticleGenerationStarted, ArticleOutput, CACHE, CacheHit, CacheInvalidated, CacheMiss,
    CacheSet, GenerationConfig, PIPELINE, PROMPT_VALIDATION, PipelineCompleted, PipelineFailed,
    PipelineStarted, PromptInput, PromptValidationCompleted, PromptValidationFailed,
    PromptValidationStarted, RETRY, RetryAttempted, RetryFailed, RetrySucceeded,
};

event_set! {
    /// The events of an article generation.
    #[derive(Debug, Clone, PartialEq)]
    pub enum ArticleGenerationEvent {
        /// A generation attempt began.
        Started(ArticleGenerationStarted),
        /// It produced an article.
        Completed(ArticleGenerationCompleted),
        /// It failed.
        Failed(ArticleGenerationFailed),
    }
}

event_set! {
    /// The events of a prompt validation.
    #[derive(Debug, Clone, PartialEq)]
    pub enum PromptValidationEvent {
        /// Validation began.
        Started(PromptValidationStarted),
        /// Every rule was checked.
        Completed(PromptValidationCompleted),
        /// Validation could not finish.
        Failed(PromptValidationFailed),
    }
}

event_set! {
    /// The events of a cache.
    #[derive(Debug, Clone, PartialEq)]
    pub enum CacheEvent {
        /// A lookup found its entry.
        Hit(CacheHit),
        /// A lookup found nothing usable.
        Miss(CacheMiss),
        /// An entry was stored.
        Set(CacheSet),
        /// An entry was removed.
        Invalidated(CacheInvalidated),
    }
}

event_set! {
    /// The events of a retried operation.
    #[derive(Debug, Clone, PartialEq)]
    pub enum RetryEvent {
        /// An attempt failed and another follows.
        Attempted(RetryAttempted),
        /// An attempt succeeded.
        Succeeded(RetrySucceeded),
        /// It ran out of attempts.
        Failed(RetryFailed),
    }
}

event_set! {
    /// The events of a generation pipeline.
    #[derive(Debug, Clone, PartialEq)]
    pub enum PipelineEvent {
        /// The pipeline began.
        Started(PipelineStarted),
        /// It finished.
        Completed(PipelineCompleted),
        /// It stopped on an error.
        Failed(PipelineFailed),
    }
}

/// Where a started-then-finished operation stands (article generations, prompt validations,
/// pipelines).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// No event yet.
    #[default]
    NotStarted,
    /// Started, not finished.
    Started,
    /// Finished successfully.
    Completed,
    /// Finished with an error (a later `started` begins a new attempt).
    Failed,
}

/// One article's generation (aggregate type `article_generation`).
///
/// # Example
///
/// ```
/// use events_core::{Aggregate, EventContext, NewEvent};
/// use omni_domain::{ArticleGeneration, ArticleGenerationFailed, RunStatus};
///
/// let failed = ArticleGenerationFailed {
///     error_message: "API timeout".into(),
///     error_type: "TimeoutError".into(),
///     generation_time: 10.0,
/// };
/// let recorded = NewEvent::from_event("gen_1", &failed, EventContext::default())?
///     .into_recorded(1, 1);
/// let mut generation = ArticleGeneration::default();
/// generation.apply_recorded(&recorded, &omni_domain::registry())?;
/// assert_eq!(generation.status, RunStatus::Failed);
/// assert_eq!(generation.failures, 1);
/// assert_eq!(generation.last_error_type.as_deref(), Some("TimeoutError"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArticleGeneration {
    /// Where the generation stands.
    pub status: RunStatus,
    /// The generation settings of the latest attempt.
    pub config: Option<GenerationConfig>,
    /// The prompt being answered.
    pub prompt: Option<PromptInput>,
    /// Which variation of the prompt this is.
    pub variation: Option<u32>,
    /// When the latest attempt began (from its payload).
    pub started_at: Option<DateTime<Utc>>,
    /// When it last completed or failed (the event's timestamp).
    pub finished_at: Option<DateTime<Utc>>,
    /// `started` events seen: 1 + the retries.
    pub attempts: u32,
    /// `failed` events seen.
    pub failures: u32,
    /// The article produced.
    pub article: Option<ArticleOutput>,
    /// The model that answered.
    pub model_used: Option<String>,
    /// Tokens the model consumed, when known.
    pub tokens_used: Option<u64>,
    /// Seconds the last completed or failed attempt took.
    pub generation_time: Option<f64>,
    /// The last failure's message.
    pub last_error_message: Option<String>,
    /// The last failure's kind.
    pub last_error_type: Option<String>,
}

impl Aggregate for ArticleGeneration {
    type Event = ArticleGenerationEvent;
    const AGGREGATE_TYPE: &'static str = ARTICLE_GENERATION;

    fn apply(&mut self, event: Self::Event, metadata: &EventMetadata) -> Result<(), ApplyError> {
        match event {
            ArticleGenerationEvent::Started(e) => {
                self.status = RunStatus::Started;
                self.config = Some(e.config);
                self.prompt = Some(e.prompt);
                self.variation = Some(e.variation);
                self.started_at = Some(e.started_at);
                self.attempts += 1;
            }
            ArticleGenerationEvent::Completed(e) => {
                self.status = RunStatus::Completed;
                self.article = Some(e.article_output);
                self.generation_time = Some(e.generation_time);
                self.model_used = Some(e.model_used);
                self.tokens_used = e.tokens_used;
                self.finished_at = Some(metadata.timestamp);
            }
            ArticleGenerationEvent::Failed(e) => {
                self.status = RunStatus::Failed;
                self.failures += 1;
                self.generation_time = Some(e.generation_time);
                self.last_error_message = Some(e.error_message);
                self.last_error_type = Some(e.error_type);
                self.finished_at = Some(metadata.timestamp);
            }
        }
        Ok(())
    }
}

/// One prompt's validation (aggregate type `prompt_validation`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptValidation {
    /// Where the validation stands.
    pub status: RunStatus,
    /// The prompt's text.
    pub prompt_text: Option<String>,
    /// The rules checked.
    pub validation_rules: Vec<String>,
    /// Whether every rule passed (once completed).
    pub is_valid: Option<bool>,
    /// Each rule's outcome.
    pub validation_results: BTreeMap<String, bool>,
    /// Tokens the prompt is expected to cost.
    pub estimated_tokens: Option<u64>,
    /// The rules that could not be checked, from the last failure.
    pub failed_rules: Vec<String>,
    /// `started` events seen.
    pub attempts: u32,
    /// The last failure's message.
    pub last_error_message: Option<String>,
    /// The last failure's kind.
    pub last_error_type: Option<String>,
    /// When it last completed or failed (the event's timestamp).
    pub finished_at: Option<DateTime<Utc>>,
}

impl Aggregate for PromptValidation {
    type Event = PromptValidationEvent;
    const AGGREGATE_TYPE: &'static str = PROMPT_VALIDATION;

    fn apply(&mut self, event: Self::Event, metadata: &EventMetadata) -> Result<(), ApplyError> {
        match event {
            PromptValidationEvent::Started(e) => {
                self.status = RunStatus::Started;
                self.prompt_text = Some(e.prompt_text);
                self.validation_rules = e.validation_rules;
                self.attempts += 1;
            }
            PromptValidationEvent::Completed(e) => {
                self.status = RunStatus::Completed;
                self.is_valid = Some(e.is_valid);
                self.validation_results = e.validation_results;
                self.estimated_tokens = Some(e.estimated_tokens);
                self.finished_at = Some(metadata.timestamp);
            }
            PromptValidationEvent::Failed(e) => {
                self.status = RunStatus::Failed;
                self.failed_rules = e.failed_rules;
                self.last_error_message = Some(e.error_message);
                self.last_error_type = Some(e.error_type);
                self.finished_at = Some(metadata.timestamp);
            }
        }
        Ok(())
    }
}

/// What a cache knows of one key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CachedKey {
    /// The cache holding it (`"memory"`, `"redis"`).
    pub cache_type: String,
    /// Whether the key is stored now (set, and not invalidated since).
    pub present: bool,
    /// Lookups that found it.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Times it was stored.
    pub sets: u64,
    /// Seconds the stored entry lives, from the last `set`.
    pub ttl_seconds: Option<u64>,
    /// Size of the stored value, from the last `set`.
    pub size_bytes: Option<u64>,
    /// Why it last missed or was invalidated.
    pub last_reason: Option<String>,
}

/// A cache's activity (aggregate type `cache`): totals and per-key state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cache {
    /// Lookups that found their entry.
    pub hits: u64,
    /// Lookups that found nothing usable.
    pub misses: u64,
    /// Entries stored.
    pub sets: u64,
    /// Entries removed.
    pub invalidations: u64,
    /// Sum of the hits' response times, in seconds.
    pub total_hit_response_time: f64,
    /// Each key seen.
    pub keys: BTreeMap<String, CachedKey>,
}

impl Cache {
    fn key(&mut self, key: String, cache_type: String) -> &mut CachedKey {
        let entry = self.keys.entry(key).or_default();
        entry.cache_type = cache_type;
        entry
    }
}

impl Aggregate for Cache {
    type Event = CacheEvent;
    const AGGREGATE_TYPE: &'static str = CACHE;

    fn apply(&mut self, event: Self::Event, _: &EventMetadata) -> Result<(), ApplyError> {
        match event {
            CacheEvent::Hit(e) => {
                self.hits += 1;
                self.total_hit_response_time += e.response_time;
                self.key(e.cache_key, e.cache_type).hits += 1;
            }
            CacheEvent::Miss(e) => {
                self.misses += 1;
                let key = self.key(e.cache_key, e.cache_type);
                key.misses += 1;
                key.present = false;
                key.last_reason = Some(e.reason);
            }
            CacheEvent::Set(e) => {
                self.sets += 1;
                let key = self.key(e.cache_key, e.cache_type);
                key.sets += 1;
                key.present = true;
                key.ttl_seconds = e.ttl_seconds;
                key.size_bytes = Some(e.size_bytes);
            }
            CacheEvent::Invalidated(e) => {
                self.invalidations += 1;
                let key = self.key(e.cache_key, e.cache_type);
                key.present = false;
                key.last_reason = Some(e.reason);
            }
        }
        Ok(())
    }
}

/// Where a retried operation stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryStatus {
    /// No event yet.
    #[default]
    NotStarted,
    /// Attempts under way.
    Retrying,
    /// An attempt succeeded.
    Succeeded,
    /// It ran out of attempts.
    Failed,
}

/// A retried operation (aggregate type `retry`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetryOperation {
    /// Where it stands.
    pub status: RetryStatus,
    /// The operation retried (`"api_call"`).
    pub operation: Option<String>,
    /// `attempted` events seen.
    pub attempts_recorded: u32,
    /// The last attempt's number.
    pub last_attempt_number: u32,
    /// Most attempts allowed.
    pub max_attempts: u32,
    /// Seconds waited before attempts, summed.
    pub total_delay_seconds: f64,
    /// The error that caused the last retry.
    pub last_error: Option<String>,
    /// The attempt that succeeded, or the attempts made when it failed.
    pub final_attempt_number: Option<u32>,
    /// Seconds over all attempts, once finished.
    pub total_time: Option<f64>,
}

impl Aggregate for RetryOperation {
    type Event = RetryEvent;
    const AGGREGATE_TYPE: &'static str = RETRY;

    fn apply(&mut self, event: Self::Event, _: &EventMetadata) -> Result<(), ApplyError> {
        match event {
            RetryEvent::Attempted(e) => {
                self.status = RetryStatus::Retrying;
                self.operation = Some(e.operation);
                self.attempts_recorded += 1;
                self.last_attempt_number = e.attempt_number;
                self.max_attempts = e.max_attempts;
                self.total_delay_seconds += e.delay_seconds;
                self.last_error = Some(e.error_message);
            }
            RetryEvent::Succeeded(e) => {
                self.status = RetryStatus::Succeeded;
                self.operation = Some(e.operation);
                self.final_attempt_number = Some(e.final_attempt_number);
                self.total_time = Some(e.total_time);
            }
            RetryEvent::Failed(e) => {
                self.status = RetryStatus::Failed;
                self.operation = Some(e.operation);
                self.final_attempt_number = Some(e.total_attempts);
                self.total_time = Some(e.total_time);
                self.last_error = Some(e.final_error);
            }
        }
        Ok(())
    }
}

/// A generation pipeline run (aggregate type `pipeline`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Where the pipeline stands.
    pub status: RunStatus,
    /// The kind of pipeline (`"single_instance"`, `"multi_instance"`).
    pub pipeline_type: Option<String>,
    /// The generation settings.
    pub config: Option<GenerationConfig>,
    /// How many prompts it was to process.
    pub total_prompts: u32,
    /// `started` events seen.
    pub runs: u32,
    /// When it last started (the event's timestamp).
    pub started_at: Option<DateTime<Utc>>,
    /// When it last completed or failed (the event's timestamp).
    pub finished_at: Option<DateTime<Utc>>,
    /// Articles attempted (once completed).
    pub total_articles: u32,
    /// Articles generated.
    pub successful_articles: u32,
    /// Articles that failed.
    pub failed_articles: u32,
    /// Prompts processed: all of them once completed, those before the failure once failed.
    pub processed_prompts: u32,
    /// Seconds the pipeline took.
    pub total_time: Option<f64>,
    /// The archive holding the articles.
    pub zip_path: Option<String>,
    /// The last failure's message.
    pub last_error_message: Option<String>,
    /// The last failure's kind.
    pub last_error_type: Option<String>,
}

impl Aggregate for Pipeline {
    type Event = PipelineEvent;
    const AGGREGATE_TYPE: &'static str = PIPELINE;

    fn apply(&mut self, event: Self::Event, metadata: &EventMetadata) -> Result<(), ApplyError> {
        match event {
            PipelineEvent::Started(e) => {
                self.status = RunStatus::Started;
                self.pipeline_type = Some(e.pipeline_type);
                self.config = Some(e.config);
                self.total_prompts = e.total_prompts;
                self.runs += 1;
                self.started_at = Some(metadata.timestamp);
            }
            PipelineEvent::Completed(e) => {
                self.status = RunStatus::Completed;
                self.pipeline_type = Some(e.pipeline_type);
                self.total_articles = e.total_articles;
                self.successful_articles = e.successful_articles;
                self.failed_articles = e.failed_articles;
                self.processed_prompts = self.total_prompts.max(e.total_articles);
                self.total_time = Some(e.total_time);
                self.zip_path = Some(e.zip_path);
                self.finished_at = Some(metadata.timestamp);
            }
            PipelineEvent::Failed(e) => {
                self.status = RunStatus::Failed;
                self.pipeline_type = Some(e.pipeline_type);
                self.processed_prompts = e.processed_prompts;
                self.total_time = Some(e.total_time);
                self.last_error_message = Some(e.error_message);
                self.last_error_type = Some(e.error_type);
                self.finished_at = Some(metadata.timestamp);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events_core::{DomainEvent, EventContext, NewEvent, RecordedEvent, codec};

    fn recorded<E: DomainEvent>(event: &E, version: u64) -> RecordedEvent {
        NewEvent::from_event("a", event, EventContext::default())
            .unwrap()
            .into_recorded(version, version)
    }

    fn config() -> GenerationConfig {
        GenerationConfig {
            model_type: "openai".into(),
            temperature: 0.7,
            max_tokens: 4096,
            language: "pt-BR".into(),
        }
    }

    #[test]
    fn article_generation_retries_then_completes() {
        let registry = crate::registry();
        let mut state = ArticleGeneration::default();
        let started = ArticleGenerationStarted {
            config: config(),
            prompt: PromptInput {
                text: "p".into(),
                index: 0,
            },
            variation: 2,
            started_at: events_core::now_micros(),
        };
        let failed = ArticleGenerationFailed {
            error_message: "timeout".into(),
            error_type: "TimeoutError".into(),
            generation_time: 1.5,
        };
        let completed = ArticleGenerationCompleted {
            article_output: ArticleOutput {
                content: "text".into(),
                filename: "a.txt".into(),
                metadata: BTreeMap::new(),
            },
            generation_time: 3.0,
            model_used: "gpt".into(),
            tokens_used: Some(900),
        };
        for (version, event) in [
            recorded(&started, 1),
            recorded(&failed, 2),
            recorded(&started, 3),
            recorded(&completed, 4),
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(event.metadata.version, version as u64 + 1);
            state.apply_recorded(event, &registry).unwrap();
        }
        assert_eq!(state.status, RunStatus::Completed);
        assert_eq!((state.attempts, state.failures), (2, 1));
        assert_eq!(state.tokens_used, Some(900));
        assert_eq!(state.variation, Some(2));
        assert_eq!(state.last_error_type.as_deref(), Some("TimeoutError"));
        // The state is what snapshots hold: it round-trips through the codec.
        let bytes = codec::encode_payload(&state).unwrap();
        assert_eq!(
            codec::decode_payload::<ArticleGeneration>(&bytes).unwrap(),
            state
        );
    }

    #[test]
    fn events_of_another_aggregate_type_are_refused() {
        let registry = crate::registry();
        let hit = CacheHit {
            cache_key: "k".into(),
            cache_type: "memory".into(),
            response_time: 0.1,
        };
        let err = Pipeline::default()
            .apply_recorded(&recorded(&hit, 1), &registry)
            .unwrap_err();
        assert!(matches!(err, ApplyError::UnexpectedEvent { .. }));
        let mut cache = Cache::default();
        cache.apply_recorded(&recorded(&hit, 1), &registry).unwrap();
        assert_eq!(cache.keys["k"].hits, 1);
    }
}
