//! The store's byte layouts, through the hidden `events_sled::fuzz` entry points: key encoding
//! (a log record's key, a stream index page's key) and log records (encode a group of events as
//! one record; decode one — `fuzz::decode_record` does what reads and `verify` do to a record:
//! parses it, checks every event, visits every event as a borrowed view, turns each into an
//! owned `RecordedEvent`, and looks each up by position through the record's offset table).
//!
//! Records of W's events (200-byte payloads): 100 events of one aggregate (one W-append-batch
//! append) and 100 events of 100 aggregates (a group of W-append-single appends).
//!
//! Run: `cargo bench -p events-sled --bench layout`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(
    missing_docs,
    reason = "criterion_group! writes an undocumented `pub fn benches`"
)]

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use events_core::{EventMetadata, RecordedEvent};
use events_sled::fuzz;
use uuid::Uuid;

/// `count` W-like events from position 1: `aggregates` aggregates round-robin.
fn events(count: u64, aggregates: u64) -> Vec<RecordedEvent> {
    (0..count)
        .map(|i| {
            let aggregate = i % aggregates;
            RecordedEvent {
                position: i + 1,
                metadata: EventMetadata {
                    event_id: Uuid::from_u128(
                        0x4000_0000_0000_8000_0000_0000_0000_0000 | i as u128,
                    ),
                    event_type: "article_generation_started".into(),
                    aggregate_id: format!("gen-{aggregate}"),
                    aggregate_type: "article_generation".into(),
                    version: i / aggregates + 1,
                    timestamp: DateTime::<Utc>::from_timestamp_micros(
                        1_735_689_600_000_000 + i as i64 * 1_000,
                    )
                    .unwrap(),
                    trace_id: None,
                    user_id: None,
                    session_id: None,
                    source: "bench".into(),
                    correlation_id: None,
                    causation_id: None,
                    schema_version: 1,
                },
                // 200 bytes that do not compress trivially.
                payload: (0..200_u32)
                    .map(|k| (k.wrapping_mul(2_654_435_761).wrapping_add(i as u32) >> 24) as u8)
                    .collect(),
            }
        })
        .collect()
}

fn layout(c: &mut Criterion) {
    let mut keys = c.benchmark_group("keys");
    keys.throughput(Throughput::Elements(1));
    keys.bench_function("log_key", |b| {
        b.iter(|| fuzz::log_key(black_box(123_456_789)));
    });
    keys.bench_function("stream_page_key", |b| {
        b.iter(|| {
            fuzz::stream_page_key(
                black_box("article_generation"),
                black_box("gen-1234"),
                black_box(1_025),
            )
        });
    });
    keys.finish();

    let mut records = c.benchmark_group("record");
    for (label, count, aggregates) in [
        ("1_event", 1_u64, 1_u64),
        ("100_events_1_aggregate", 100, 1),
        ("100_events_100_aggregates", 100, 100),
    ] {
        let group = events(count, aggregates);
        let bytes = fuzz::encode_record(&group);
        assert_eq!(fuzz::decode_record(&bytes), Ok(count));
        eprintln!(
            "record {label}: {} bytes ({:.0} per event)",
            bytes.len(),
            bytes.len() as f64 / count as f64
        );
        records.throughput(Throughput::Elements(count));
        records.bench_with_input(BenchmarkId::new("encode", label), &group, |b, group| {
            b.iter(|| fuzz::encode_record(black_box(group)));
        });
        records.bench_with_input(BenchmarkId::new("decode", label), &bytes, |b, bytes| {
            b.iter(|| fuzz::decode_record(black_box(bytes)).unwrap());
        });
    }
    records.finish();
}

criterion_group!(benches, layout);
criterion_main!(benches);
