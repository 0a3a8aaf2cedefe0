//! The JSON of every Omni Writer event uses the seed's field names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use events_core::*;
use omni_domain::*;
use serde_json::{Value, json};

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

fn config() -> Value {
    json!({"model_type": "openai", "temperature": 0.7, "max_tokens": 4096, "language": "pt-BR"})
}

/// Each type with a payload in the seed's field names; the factory must accept it and give back
/// exactly those names.
fn seed_payloads() -> Vec<(&'static str, Value)> {
    vec![
        (
            "article_generation_started",
            json!({
            "config": config(),
            "prompt": {"text": "Texto do prompt", "index": 0},
            "variation": 0,
            "started_at": "2025-01-27T21:30:00Z"}),
        ),
        (
            "article_generation_completed",
            json!({
            "article_output": {"content": "...", "filename": "a.txt", "metadata": {}},
            "generation_time": 5.5, "model_used": "gpt-4o", "tokens_used": 1500}),
        ),
        (
            "article_generation_failed",
            json!({
            "error_message": "API timeout", "error_type": "TimeoutError", "generation_time": 10.0}),
        ),
        (
            "prompt_validation_started",
            json!({
            "prompt_text": "Texto do prompt", "validation_rules": ["length", "content"]}),
        ),
        (
            "prompt_validation_completed",
            json!({
            "is_valid": true, "validation_results": {"length": true, "content": true},
            "estimated_tokens": 500}),
        ),
        (
            "prompt_validation_failed",
            json!({
            "error_message": "rule engine down", "error_type": "RuntimeError",
            "failed_rules": ["content"]}),
        ),
        (
            "cache_hit",
            json!({"cache_key": "prompt_hash", "cache_type": "memory", "response_time": 0.001}),
        ),
        (
            "cache_miss",
            json!({"cache_key": "prompt_hash", "cache_type": "memory", "reason": "not_found"}),
        ),
        (
            "cache_set",
            json!({"cache_key": "prompt_hash", "cache_type": "memory", "ttl_seconds": 3600,
            "size_bytes": 2048}),
        ),
        (
            "cache_invalidated",
            json!({"cache_key": "prompt_hash", "cache_type": "memory", "reason": "expired"}),
        ),
        (
            "retry_attempted",
            json!({"operation": "api_call", "attempt_number": 2, "max_attempts": 3,
            "delay_seconds": 1.0, "error_message": "Connection timeout"}),
        ),
        (
            "retry_succeeded",
            json!({"operation": "api_call", "final_attempt_number": 3, "total_time": 5.5}),
        ),
        (
            "retry_failed",
            json!({"operation": "api_call", "total_attempts": 3, "total_time": 9.0,
            "final_error": "Connection timeout"}),
        ),
        (
            "pipeline_started",
            json!({"pipeline_type": "single_instance", "config": config(),
            "total_prompts": 5}),
        ),
        (
            "pipeline_completed",
            json!({"pipeline_type": "single_instance", "total_articles": 5,
            "successful_articles": 4, "failed_articles": 1, "total_time": 30.5,
            "zip_path": "/path/to/zip"}),
        ),
        (
            "pipeline_failed",
            json!({"pipeline_type": "single_instance", "error_message": "disk full",
            "error_type": "OSError", "processed_prompts": 2, "total_time": 12.0}),
        ),
    ]
}

#[test]
fn every_type_is_covered() {
    let registry = omni_domain::registry();
    let covered: BTreeSet<&str> = seed_payloads().iter().map(|(t, _)| *t).collect();
    let registered: BTreeSet<&str> = registry.event_types().collect();
    assert_eq!(covered, registered);
}

#[test]
fn payload_json_keeps_the_seed_field_names() {
    let registry = omni_domain::registry();
    for (event_type, payload) in seed_payloads() {
        let event = registry
            .create(
                event_type,
                "agg-1",
                payload.clone(),
                EventContext::new("seed"),
            )
            .unwrap_or_else(|e| panic!("{event_type}: {e}"));
        let back = registry
            .payload_to_json(&event.event_type, event.schema_version, &event.payload)
            .unwrap();
        assert_eq!(keys(&back), keys(&payload), "{event_type}");
    }
}

#[test]
fn seed_examples_keep_their_values() {
    let registry = omni_domain::registry();
    let event = registry
        .create(
            "retry_attempted",
            "retry_123",
            json!({"operation": "api_call", "attempt_number": 2, "max_attempts": 3,
                   "delay_seconds": 1.0, "error_message": "Connection timeout"}),
            EventContext::default(),
        )
        .unwrap();
    let typed: RetryAttempted = events_core::codec::decode_payload(&event.payload).unwrap();
    assert_eq!(typed.attempt_number, 2);
    assert_eq!(typed.error_message, "Connection timeout");
}

#[test]
fn envelope_json_carries_every_metadata_field() {
    let registry = omni_domain::registry();
    let event = registry
        .create(
            "cache_miss",
            "cache_123",
            json!({"cache_key": "prompt_hash", "cache_type": "memory", "reason": "not_found"}),
            EventContext::new("omni-writer")
                .with_trace_id("trace_456")
                .with_user_id("u")
                .with_session_id("s")
                .with_correlation_id("c")
                .with_causation_id("k"),
        )
        .unwrap()
        .into_recorded(1, 1);
    let json = registry.event_to_json(&event).unwrap();
    let expected: BTreeSet<String> = [
        "position",
        "event_id",
        "event_type",
        "aggregate_id",
        "aggregate_type",
        "version",
        "timestamp",
        "trace_id",
        "user_id",
        "session_id",
        "source",
        "correlation_id",
        "causation_id",
        "schema_version",
        "payload",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(keys(&json), expected);
    assert_eq!(json["event_type"], "cache_miss");
    assert_eq!(json["trace_id"], "trace_456");
}
