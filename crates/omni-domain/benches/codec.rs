//! The codec's micro-paths: a W payload (`ArticleGenerationStarted`, 200 bytes encoded) and an
//! event's metadata (every optional field set, as the writer daemon sets them), encoded and
//! decoded by `events_core::codec` (format byte + bincode 2.0.1).
//!
//! Run: `cargo bench -p events-core --bench codec`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(
    missing_docs,
    reason = "criterion_group! writes an undocumented `pub fn benches`"
)]

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use events_core::{EventMetadata, codec};
use omni_domain::{ArticleGenerationStarted, GenerationConfig, PromptInput};
use uuid::Uuid;

fn started() -> ArticleGenerationStarted {
    ArticleGenerationStarted {
        config: GenerationConfig {
            model_type: "deepseek".into(),
            temperature: 0.42,
            max_tokens: 2048,
            language: "pt-BR".into(),
        },
        prompt: PromptInput {
            // Sized so the encoded payload is about W's 200 bytes.
            text: "stru ka dempra fla ne ti gro hor vi sa zecas lin tor ple mi o dri \
                   fisgul ben cha ro u bra cle wenxo ya pe so na te qui jo in ha gen \
                   elfru do go ar ti lu mor"
                .into(),
            index: 17,
        },
        variation: 3,
        started_at: DateTime::<Utc>::from_timestamp_micros(1_735_689_600_123_456).unwrap(),
    }
}

fn metadata() -> EventMetadata {
    EventMetadata {
        event_id: Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef),
        event_type: "article_generation_started".into(),
        aggregate_id: "gen-000123-004".into(),
        aggregate_type: "article_generation".into(),
        version: 42,
        timestamp: DateTime::<Utc>::from_timestamp_micros(1_735_689_600_123_456).unwrap(),
        trace_id: Some("4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e".into()),
        user_id: Some("user-ana".into()),
        session_id: Some("session-0123456789abcdef".into()),
        source: "omni-writer".into(),
        correlation_id: Some("pipeline-000123".into()),
        causation_id: Some("7d0e8f1a-2b3c-4d5e-8f60-718293a4b5c6".into()),
        schema_version: 1,
    }
}

fn codec_benches(c: &mut Criterion) {
    let payload = started();
    let payload_bytes = codec::encode_payload(&payload).unwrap();
    let meta = metadata();
    let meta_bytes = codec::encode_metadata(&meta).unwrap();
    eprintln!(
        "payload: {} bytes encoded ({} as JSON); metadata: {} bytes encoded",
        payload_bytes.len(),
        serde_json::to_vec(&payload).unwrap().len(),
        meta_bytes.len()
    );

    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode_payload/article_generation_started", |b| {
        b.iter(|| codec::encode_payload(black_box(&payload)).unwrap());
    });
    group.bench_function("decode_payload/article_generation_started", |b| {
        b.iter(|| {
            codec::decode_payload::<ArticleGenerationStarted>(black_box(&payload_bytes)).unwrap()
        });
    });
    group.bench_function("encode_metadata", |b| {
        b.iter(|| codec::encode_metadata(black_box(&meta)).unwrap());
    });
    group.bench_function("decode_metadata", |b| {
        b.iter(|| codec::decode_metadata(black_box(&meta_bytes)).unwrap());
    });
    group.finish();
}

criterion_group!(benches, codec_benches);
criterion_main!(benches);
