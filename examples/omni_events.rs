//! Builds, validates and encodes one of each Omni Writer event and prints it as JSON.
//!
//! Run with `cargo run --example omni_events`.

use events_core::{EventContext, codec};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = omni_domain::registry();
    let validator = omni_domain::validator();
    let config = json!({"model_type": "openai", "temperature": 0.7, "max_tokens": 4096, "language": "pt-BR"});
    let examples = [
        (
            "pipeline_started",
            "pipeline_123",
            json!({"pipeline_type": "single_instance", "config": config, "total_prompts": 1}),
        ),
        (
            "prompt_validation_started",
            "val_123",
            json!({"prompt_text": "Texto do prompt", "validation_rules": ["length", "content"]}),
        ),
        (
            "prompt_validation_completed",
            "val_123",
            json!({"is_valid": true, "validation_results": {"length": true, "content": true}, "estimated_tokens": 500}),
        ),
        (
            "cache_miss",
            "cache_123",
            json!({"cache_key": "prompt_hash", "cache_type": "memory", "reason": "not_found"}),
        ),
        (
            "article_generation_started",
            "gen_123",
            json!({"config": config, "prompt": {"text": "Texto do prompt", "index": 0}, "variation": 0, "started_at": "2025-01-27T21:30:00Z"}),
        ),
        (
            "retry_attempted",
            "retry_123",
            json!({"operation": "api_call", "attempt_number": 2, "max_attempts": 3, "delay_seconds": 1.0, "error_message": "Connection timeout"}),
        ),
        (
            "retry_succeeded",
            "retry_123",
            json!({"operation": "api_call", "final_attempt_number": 3, "total_time": 5.5}),
        ),
        (
            "article_generation_completed",
            "gen_123",
            json!({"article_output": {"content": "...", "filename": "artigo_1.txt", "metadata": {}}, "generation_time": 5.5, "model_used": "gpt-4o", "tokens_used": 1500}),
        ),
        (
            "cache_set",
            "cache_123",
            json!({"cache_key": "prompt_hash", "cache_type": "memory", "ttl_seconds": 3600, "size_bytes": 2048}),
        ),
        (
            "pipeline_completed",
            "pipeline_123",
            json!({"pipeline_type": "single_instance", "total_articles": 1, "successful_articles": 1, "failed_articles": 0, "total_time": 30.5, "zip_path": "/path/to/zip"}),
        ),
    ];
    let context = EventContext::new("omni-writer")
        .with_trace_id("trace_456")
        .with_correlation_id("pipeline_123");
    for (position, (event_type, aggregate_id, payload)) in (1_u64..).zip(examples) {
        let event = registry.create(event_type, aggregate_id, payload, context.clone())?;
        validator.validate_event(&event)?;
        let recorded = event.into_recorded(1, position);
        let metadata_bytes = codec::encode_metadata(&recorded.metadata)?;
        println!(
            "{event_type}: {} metadata bytes + {} payload bytes",
            metadata_bytes.len(),
            recorded.payload.len()
        );
        println!(
            "{}",
            serde_json::to_string(&registry.event_to_json(&recorded)?)?
        );
    }
    Ok(())
}
