//! Aggregate load time against stream length, with and without snapshots.
//!
//! One store is built before any measurement (buffered appends of 100 events per call):
//!
//! - `no_snapshots/1000` and `no_snapshots/100000`: a full fold of 1 000 and 100 000 events;
//! - `snapshot_every_1000/100000`: 100 000 events snapshotted every 1 000 — the load starts
//!   from the snapshot at 100 000 and applies nothing (best case);
//! - `snapshot_every_1000/100999`: the same plus 999 events after the last snapshot (worst case
//!   for a 1 000-event interval: one snapshot decode plus 999 events).
//!
//! The aggregate is the Omni Writer's `ArticleGeneration` (started / completed / failed events
//! with a ~300-byte article), whose state stays the same size however long the stream.
//!
//! Run: `cargo bench -p eventlog --bench aggregate_load`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(
    missing_docs,
    reason = "criterion_group! writes an undocumented `pub fn benches`"
)]

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use eventlog::{
    Durability, EventContext, EventLog, EventLogConfig, ExpectedVersion, NewEvent, StreamId,
    now_micros,
};
use omni_domain::{
    ArticleGeneration, ArticleGenerationCompleted, ArticleGenerationFailed,
    ArticleGenerationStarted, ArticleOutput, GenerationConfig, PromptInput,
};

fn event(aggregate_id: &str, n: u64) -> NewEvent {
    let context = EventContext::new("bench").with_trace_id(format!("trace-{n}"));
    match n % 3 {
        0 => NewEvent::from_event(
            aggregate_id,
            &ArticleGenerationStarted {
                config: GenerationConfig {
                    model_type: "openai".into(),
                    temperature: 0.7,
                    max_tokens: 4096,
                    language: "pt-BR".into(),
                },
                prompt: PromptInput {
                    text: format!("Escreva um artigo sobre o tema {n}"),
                    index: (n % 100) as u32,
                },
                variation: (n % 4) as u32,
                started_at: now_micros(),
            },
            context,
        ),
        1 => NewEvent::from_event(
            aggregate_id,
            &ArticleGenerationCompleted {
                article_output: ArticleOutput {
                    content: "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(5),
                    filename: format!("artigo_{n}.txt"),
                    metadata: BTreeMap::from([("words".to_string(), "45".to_string())]),
                },
                generation_time: 3.2,
                model_used: "gpt-4".into(),
                tokens_used: Some(n),
            },
            context,
        ),
        _ => NewEvent::from_event(
            aggregate_id,
            &ArticleGenerationFailed {
                error_message: "API timeout".into(),
                error_type: "TimeoutError".into(),
                generation_time: 10.0,
            },
            context,
        ),
    }
    .unwrap()
}

fn stream(aggregate_id: &str) -> StreamId {
    StreamId::of::<ArticleGenerationStarted>(aggregate_id)
}

/// Appends `count` events to `aggregate_id`, saving a snapshot after every `snapshot_every`.
fn build(log: &EventLog, aggregate_id: &str, count: u64, snapshot_every: Option<u64>) {
    let mut n = 0;
    while n < count {
        let batch = 100.min(count - n);
        let events = (n..n + batch).map(|k| event(aggregate_id, k)).collect();
        log.append(&stream(aggregate_id), ExpectedVersion::exact(n), events)
            .unwrap();
        n += batch;
        if let Some(every) = snapshot_every
            && n.is_multiple_of(every)
        {
            log.snapshot::<ArticleGeneration>(aggregate_id).unwrap();
        }
    }
}

fn aggregate_load(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        EventLogConfig::new(dir.path())
            .registry(omni_domain::registry())
            .durability(Durability::Buffered)
            .store(|s| s.cache_capacity(256 << 20))
            // Measured loads never save: the snapshots are those made while building.
            .snapshot_every(None)
    };
    let log = EventLog::open(config()).unwrap();
    build(&log, "plain-1k", 1_000, None);
    build(&log, "plain-100k", 100_000, None);
    build(&log, "snap-100k", 100_000, Some(1_000));
    build(&log, "snap-100k-tail", 100_000, Some(1_000));
    let tail: Vec<_> = (100_000..100_999)
        .map(|k| event("snap-100k-tail", k))
        .collect();
    log.append(
        &stream("snap-100k-tail"),
        ExpectedVersion::exact(100_000),
        tail,
    )
    .unwrap();
    log.close().unwrap();
    // Reopen so the measured reads come from sled, as after a restart.
    let log = EventLog::open(config()).unwrap();

    let mut group = c.benchmark_group("aggregate_load");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    for (label, id, events) in [
        ("no_snapshots", "plain-1k", 1_000_u64),
        ("no_snapshots", "plain-100k", 100_000),
        ("snapshot_every_1000", "snap-100k", 100_000),
        ("snapshot_every_1000", "snap-100k-tail", 100_999),
    ] {
        let check = log.load::<ArticleGeneration>(id).unwrap();
        assert_eq!(check.version, events);
        eprintln!(
            "{label}/{events}: from_snapshot {:?}, events applied {}",
            check.from_snapshot, check.events_applied
        );
        group.bench_with_input(BenchmarkId::new(label, events), &id, |b, id| {
            b.iter(|| log.load::<ArticleGeneration>(id).unwrap().version);
        });
    }
    group.finish();
    log.close().unwrap();
}

criterion_group!(benches, aggregate_load);
criterion_main!(benches);
