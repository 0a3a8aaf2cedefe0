//! Proptest strategies for every Omni Writer payload, shared by the property tests.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use events_core::*;
use omni_domain::*;
use proptest::prelude::*;

pub fn text() -> impl Strategy<Value = String> {
    "\\PC{0,24}"
}

pub fn seconds() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), 0.0..1.0e6_f64, -1.0e3..0.0_f64]
}

pub fn micros_time() -> impl Strategy<Value = DateTime<Utc>> {
    (0_i64..4_102_444_800_000_000)
        .prop_map(|us| DateTime::<Utc>::from_timestamp_micros(us).unwrap())
}

pub fn config() -> impl Strategy<Value = GenerationConfig> {
    (text(), -2.0..2.0_f64, any::<u32>(), text()).prop_map(
        |(model_type, temperature, max_tokens, language)| GenerationConfig {
            model_type,
            temperature,
            max_tokens,
            language,
        },
    )
}

pub fn prompt() -> impl Strategy<Value = PromptInput> {
    (text(), any::<u32>()).prop_map(|(text, index)| PromptInput { text, index })
}

pub fn article() -> impl Strategy<Value = ArticleOutput> {
    (
        text(),
        text(),
        prop::collection::btree_map(text(), text(), 0..4),
    )
        .prop_map(|(content, filename, metadata)| ArticleOutput {
            content,
            filename,
            metadata,
        })
}

pub fn rules() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(text(), 0..5)
}

pub fn results() -> impl Strategy<Value = BTreeMap<String, bool>> {
    prop::collection::btree_map(text(), any::<bool>(), 0..5)
}

pub fn article_generation_started() -> impl Strategy<Value = ArticleGenerationStarted> {
    (config(), prompt(), any::<u32>(), micros_time()).prop_map(
        |(config, prompt, variation, started_at)| ArticleGenerationStarted {
            config,
            prompt,
            variation,
            started_at,
        },
    )
}

pub fn article_generation_completed() -> impl Strategy<Value = ArticleGenerationCompleted> {
    (article(), seconds(), text(), any::<Option<u64>>()).prop_map(
        |(article_output, generation_time, model_used, tokens_used)| ArticleGenerationCompleted {
            article_output,
            generation_time,
            model_used,
            tokens_used,
        },
    )
}

pub fn article_generation_failed() -> impl Strategy<Value = ArticleGenerationFailed> {
    (text(), text(), seconds()).prop_map(|(error_message, error_type, generation_time)| {
        ArticleGenerationFailed {
            error_message,
            error_type,
            generation_time,
        }
    })
}

pub fn prompt_validation_started() -> impl Strategy<Value = PromptValidationStarted> {
    (text(), rules()).prop_map(|(prompt_text, validation_rules)| PromptValidationStarted {
        prompt_text,
        validation_rules,
    })
}

pub fn prompt_validation_completed() -> impl Strategy<Value = PromptValidationCompleted> {
    (any::<bool>(), results(), any::<u64>()).prop_map(
        |(is_valid, validation_results, estimated_tokens)| PromptValidationCompleted {
            is_valid,
            validation_results,
            estimated_tokens,
        },
    )
}

pub fn prompt_validation_failed() -> impl Strategy<Value = PromptValidationFailed> {
    (text(), text(), rules()).prop_map(|(error_message, error_type, failed_rules)| {
        PromptValidationFailed {
            error_message,
            error_type,
            failed_rules,
        }
    })
}

pub fn cache_hit() -> impl Strategy<Value = CacheHit> {
    (text(), text(), seconds()).prop_map(|(cache_key, cache_type, response_time)| CacheHit {
        cache_key,
        cache_type,
        response_time,
    })
}

pub fn cache_miss() -> impl Strategy<Value = CacheMiss> {
    (text(), text(), text()).prop_map(|(cache_key, cache_type, reason)| CacheMiss {
        cache_key,
        cache_type,
        reason,
    })
}

pub fn cache_set() -> impl Strategy<Value = CacheSet> {
    (text(), text(), any::<Option<u64>>(), any::<u64>()).prop_map(
        |(cache_key, cache_type, ttl_seconds, size_bytes)| CacheSet {
            cache_key,
            cache_type,
            ttl_seconds,
            size_bytes,
        },
    )
}

pub fn cache_invalidated() -> impl Strategy<Value = CacheInvalidated> {
    (text(), text(), text()).prop_map(|(cache_key, cache_type, reason)| CacheInvalidated {
        cache_key,
        cache_type,
        reason,
    })
}

pub fn retry_attempted() -> impl Strategy<Value = RetryAttempted> {
    (text(), any::<u32>(), any::<u32>(), seconds(), text()).prop_map(
        |(operation, attempt_number, max_attempts, delay_seconds, error_message)| RetryAttempted {
            operation,
            attempt_number,
            max_attempts,
            delay_seconds,
            error_message,
        },
    )
}

pub fn retry_succeeded() -> impl Strategy<Value = RetrySucceeded> {
    (text(), any::<u32>(), seconds()).prop_map(|(operation, final_attempt_number, total_time)| {
        RetrySucceeded {
            operation,
            final_attempt_number,
            total_time,
        }
    })
}

pub fn retry_failed() -> impl Strategy<Value = RetryFailed> {
    (text(), any::<u32>(), seconds(), text()).prop_map(
        |(operation, total_attempts, total_time, final_error)| RetryFailed {
            operation,
            total_attempts,
            total_time,
            final_error,
        },
    )
}

pub fn pipeline_started() -> impl Strategy<Value = PipelineStarted> {
    (text(), config(), any::<u32>()).prop_map(|(pipeline_type, config, total_prompts)| {
        PipelineStarted {
            pipeline_type,
            config,
            total_prompts,
        }
    })
}

pub fn pipeline_completed() -> impl Strategy<Value = PipelineCompleted> {
    (
        text(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        seconds(),
        text(),
    )
        .prop_map(
            |(
                pipeline_type,
                total_articles,
                successful_articles,
                failed_articles,
                total_time,
                zip_path,
            )| PipelineCompleted {
                pipeline_type,
                total_articles,
                successful_articles,
                failed_articles,
                total_time,
                zip_path,
            },
        )
}

pub fn pipeline_failed() -> impl Strategy<Value = PipelineFailed> {
    (text(), text(), text(), any::<u32>(), seconds()).prop_map(
        |(pipeline_type, error_message, error_type, processed_prompts, total_time)| {
            PipelineFailed {
                pipeline_type,
                error_message,
                error_type,
                processed_prompts,
                total_time,
            }
        },
    )
}

fn opt_id() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[a-zA-Z0-9_-]{1,40}")
}

pub fn context() -> impl Strategy<Value = EventContext> {
    (
        opt_id(),
        opt_id(),
        opt_id(),
        "[a-z-]{1,20}",
        opt_id(),
        opt_id(),
    )
        .prop_map(
            |(trace_id, user_id, session_id, source, correlation_id, causation_id)| EventContext {
                trace_id,
                user_id,
                session_id,
                source,
                correlation_id,
                causation_id,
            },
        )
}
