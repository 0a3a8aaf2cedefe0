//! The Omni Writer's events: article generation, prompt validation, cache, retry and pipeline,
//! with the domain values they carry. Field names are the seed's, so the JSON matches it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use events_core::DomainEvent;

/// Aggregate type of article generations.
pub const ARTICLE_GENERATION: &str = "article_generation";
/// Aggregate type of prompt validations.
pub const PROMPT_VALIDATION: &str = "prompt_validation";
/// Aggregate type of cache entries.
pub const CACHE: &str = "cache";
/// Aggregate type of retried operations.
pub const RETRY: &str = "retry";
/// Aggregate type of generation pipelines.
pub const PIPELINE: &str = "pipeline";

/// How an article is generated: the model and its sampling settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationConfig {
    /// The model family asked (`"openai"`, `"deepseek"`).
    pub model_type: String,
    /// Sampling temperature.
    pub temperature: f64,
    /// Most tokens the model may produce.
    pub max_tokens: u32,
    /// Language of the article (`"pt-BR"`).
    pub language: String,
}

/// One prompt given to the generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptInput {
    /// The prompt's text.
    pub text: String,
    /// Its position in the pipeline's list of prompts.
    pub index: u32,
}

/// An article the generator produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArticleOutput {
    /// The article's text.
    pub content: String,
    /// The file it is written to.
    pub filename: String,
    /// Free-form facts about the article.
    pub metadata: BTreeMap<String, String>,
}

macro_rules! domain_event {
    ($ty:ident, $event_type:literal, $aggregate_type:expr) => {
        domain_event!($ty, $event_type, $aggregate_type, 1);
    };
    ($ty:ident, $event_type:literal, $aggregate_type:expr, $schema:literal) => {
        impl DomainEvent for $ty {
            const EVENT_TYPE: &'static str = $event_type;
            const AGGREGATE_TYPE: &'static str = $aggregate_type;
            const SCHEMA_VERSION: u16 = $schema;
        }
    };
}

/// Generation of an article began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArticleGenerationStarted {
    /// The generation settings.
    pub config: GenerationConfig,
    /// The prompt being answered.
    pub prompt: PromptInput,
    /// Which variation of the prompt this is.
    pub variation: u32,
    /// When generation began.
    pub started_at: DateTime<Utc>,
}
domain_event!(
    ArticleGenerationStarted,
    "article_generation_started",
    ARTICLE_GENERATION
);

/// Generation of an article succeeded. Schema 2 added `tokens_used`; schema-1 payloads are
/// upcast with `tokens_used: None` (see [`ArticleGenerationCompletedV1`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArticleGenerationCompleted {
    /// The article produced.
    pub article_output: ArticleOutput,
    /// Seconds the generation took.
    pub generation_time: f64,
    /// The model that answered.
    pub model_used: String,
    /// Tokens the model consumed, when known.
    pub tokens_used: Option<u64>,
}
domain_event!(
    ArticleGenerationCompleted,
    "article_generation_completed",
    ARTICLE_GENERATION,
    2
);

/// Schema 1 of [`ArticleGenerationCompleted`], before `tokens_used` was recorded. Kept to read
/// old payloads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArticleGenerationCompletedV1 {
    /// The article produced.
    pub article_output: ArticleOutput,
    /// Seconds the generation took.
    pub generation_time: f64,
    /// The model that answered.
    pub model_used: String,
}

impl From<ArticleGenerationCompletedV1> for ArticleGenerationCompleted {
    fn from(v1: ArticleGenerationCompletedV1) -> Self {
        Self {
            article_output: v1.article_output,
            generation_time: v1.generation_time,
            model_used: v1.model_used,
            tokens_used: None,
        }
    }
}

/// Generation of an article failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArticleGenerationFailed {
    /// What went wrong.
    pub error_message: String,
    /// The error's kind (`"TimeoutError"`).
    pub error_type: String,
    /// Seconds spent before failing.
    pub generation_time: f64,
}
domain_event!(
    ArticleGenerationFailed,
    "article_generation_failed",
    ARTICLE_GENERATION
);

/// Validation of a prompt began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptValidationStarted {
    /// The prompt's text.
    pub prompt_text: String,
    /// The rules to check (`"length"`, `"content"`).
    pub validation_rules: Vec<String>,
}
domain_event!(
    PromptValidationStarted,
    "prompt_validation_started",
    PROMPT_VALIDATION
);

/// Validation of a prompt finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptValidationCompleted {
    /// Whether every rule passed.
    pub is_valid: bool,
    /// Each rule's outcome.
    pub validation_results: BTreeMap<String, bool>,
    /// Tokens the prompt is expected to cost.
    pub estimated_tokens: u64,
}
domain_event!(
    PromptValidationCompleted,
    "prompt_validation_completed",
    PROMPT_VALIDATION
);

/// Validation of a prompt could not be carried out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptValidationFailed {
    /// What went wrong.
    pub error_message: String,
    /// The error's kind.
    pub error_type: String,
    /// The rules that could not be checked or failed hard.
    pub failed_rules: Vec<String>,
}
domain_event!(
    PromptValidationFailed,
    "prompt_validation_failed",
    PROMPT_VALIDATION
);

/// A cache lookup found its entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheHit {
    /// The key looked up.
    pub cache_key: String,
    /// The cache (`"memory"`, `"redis"`).
    pub cache_type: String,
    /// Seconds the lookup took.
    pub response_time: f64,
}
domain_event!(CacheHit, "cache_hit", CACHE);

/// A cache lookup found nothing usable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheMiss {
    /// The key looked up.
    pub cache_key: String,
    /// The cache.
    pub cache_type: String,
    /// Why it missed (`"not_found"`, `"expired"`).
    pub reason: String,
}
domain_event!(CacheMiss, "cache_miss", CACHE);

/// An entry was stored in the cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheSet {
    /// The key stored.
    pub cache_key: String,
    /// The cache.
    pub cache_type: String,
    /// Seconds the entry lives, if it expires.
    pub ttl_seconds: Option<u64>,
    /// Size of the stored value in bytes.
    pub size_bytes: u64,
}
domain_event!(CacheSet, "cache_set", CACHE);

/// An entry was removed from the cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheInvalidated {
    /// The key removed.
    pub cache_key: String,
    /// The cache.
    pub cache_type: String,
    /// Why it was removed.
    pub reason: String,
}
domain_event!(CacheInvalidated, "cache_invalidated", CACHE);

/// A failed operation is being tried again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryAttempted {
    /// The operation retried (`"api_call"`).
    pub operation: String,
    /// This attempt's number, from 1.
    pub attempt_number: u32,
    /// Most attempts allowed.
    pub max_attempts: u32,
    /// Seconds waited before this attempt.
    pub delay_seconds: f64,
    /// The error that caused the retry.
    pub error_message: String,
}
domain_event!(RetryAttempted, "retry_attempted", RETRY);

/// A retried operation finally succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrySucceeded {
    /// The operation.
    pub operation: String,
    /// The attempt that succeeded.
    pub final_attempt_number: u32,
    /// Seconds over all attempts.
    pub total_time: f64,
}
domain_event!(RetrySucceeded, "retry_succeeded", RETRY);

/// A retried operation ran out of attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryFailed {
    /// The operation.
    pub operation: String,
    /// Attempts made.
    pub total_attempts: u32,
    /// Seconds over all attempts.
    pub total_time: f64,
    /// The last error.
    pub final_error: String,
}
domain_event!(RetryFailed, "retry_failed", RETRY);

/// A generation pipeline began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineStarted {
    /// The kind of pipeline (`"single_instance"`, `"multi_instance"`).
    pub pipeline_type: String,
    /// The generation settings.
    pub config: GenerationConfig,
    /// How many prompts it will process.
    pub total_prompts: u32,
}
domain_event!(PipelineStarted, "pipeline_started", PIPELINE);

/// A generation pipeline finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineCompleted {
    /// The kind of pipeline.
    pub pipeline_type: String,
    /// Articles attempted.
    pub total_articles: u32,
    /// Articles generated.
    pub successful_articles: u32,
    /// Articles that failed.
    pub failed_articles: u32,
    /// Seconds the pipeline took.
    pub total_time: f64,
    /// The archive holding the articles.
    pub zip_path: String,
}
domain_event!(PipelineCompleted, "pipeline_completed", PIPELINE);

/// A generation pipeline stopped on an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineFailed {
    /// The kind of pipeline.
    pub pipeline_type: String,
    /// What went wrong.
    pub error_message: String,
    /// The error's kind.
    pub error_type: String,
    /// Prompts processed before the failure.
    pub processed_prompts: u32,
    /// Seconds before the failure.
    pub total_time: f64,
}
domain_event!(PipelineFailed, "pipeline_failed", PIPELINE);
