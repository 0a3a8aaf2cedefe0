//! The store's hot paths, a few events per iteration: appends (one event; 100 events) and reads
//! (one aggregate of 100 events; 1 000 events of the global log, owned; the same 1 000 events
//! scanned as borrowed views), through the facade (`EventLog`) and through `events_sled::Store`
//! alone, so the difference is the facade's (its lock, its bus hand-off).
//!
//! Appends are buffered (acknowledged once sequenced; the writer thread writes behind), with W's
//! events: `article_generation_started`, 200-byte payloads, expected version checked. Reads run on
//! a store of 1 000 aggregates × 100 events built before measuring and reopened (so they come
//! from sled, not from the writer's queue); the sled cache is 256 MiB, as in events-bench.
//!
//! Run: `cargo bench -p eventlog --bench append_read`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(
    missing_docs,
    reason = "criterion_group! writes an undocumented `pub fn benches`"
)]

use std::hint::black_box;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use eventlog::{
    Durability, EventContext, EventLog, EventLogConfig, ExpectedVersion, NewEvent, Position,
    StoreConfig, StreamId, StreamRead, now_micros,
};
use events_sled::Store;
use omni_domain::{ArticleGenerationStarted, GenerationConfig, PromptInput};

const CACHE: u64 = 256 << 20;
const AGGREGATES: u64 = 1_000;
const PER_AGGREGATE: u64 = 100;

fn event(aggregate: u64, n: u64) -> NewEvent {
    let started = ArticleGenerationStarted {
        config: GenerationConfig {
            model_type: "deepseek".into(),
            temperature: 0.42,
            max_tokens: 2048,
            language: "pt-BR".into(),
        },
        prompt: PromptInput {
            text: format!(
                "stru ka dempra fla ne ti gro hor vi sa zecas lin tor ple mi o dri fisgul ben \
                 cha ro u bra cle wenxo ya pe so na te qui jo in ha gen elfru do go {n}"
            ),
            index: (n % 1000) as u32,
        },
        variation: (n % 10) as u32,
        started_at: now_micros(),
    };
    NewEvent::from_event(
        format!("gen-{aggregate}"),
        &started,
        EventContext::new("bench"),
    )
    .unwrap()
}

fn stream(aggregate: u64) -> StreamId {
    StreamId::of::<ArticleGenerationStarted>(format!("gen-{aggregate}"))
}

fn expected(version: u64) -> ExpectedVersion {
    if version == 0 {
        ExpectedVersion::NoStream
    } else {
        ExpectedVersion::exact(version)
    }
}

fn facade(dir: &Path) -> EventLog {
    EventLog::open(
        EventLogConfig::new(dir)
            .registry(omni_domain::registry())
            .durability(Durability::Buffered)
            .store(|s| s.cache_capacity(CACHE))
            .snapshot_every(None),
    )
    .unwrap()
}

fn store(dir: &Path) -> Store {
    Store::open(
        StoreConfig::new(dir)
            .durability(Durability::Buffered)
            .cache_capacity(CACHE),
    )
    .unwrap()
}

/// An append path: `append(expected, events)` to aggregate `gen-<n>`.
type AppendFn<'a> = Box<dyn Fn(u64, ExpectedVersion, Vec<NewEvent>) + 'a>;

fn appends(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.measurement_time(Duration::from_secs(5));
    for through in ["facade", "store"] {
        let dir = tempfile::tempdir().unwrap();
        let (log, raw);
        let append: AppendFn<'_> = if through == "facade" {
            log = facade(dir.path());
            // Built once, as a caller holding its streams would.
            let streams: Vec<StreamId> = (0..AGGREGATES).map(stream).collect();
            Box::new(move |aggregate, e, events| {
                log.append(&streams[aggregate as usize], e, events).unwrap();
            })
        } else {
            raw = store(dir.path());
            Box::new(|_, e, events| {
                raw.append(e, events).unwrap();
            })
        };
        let mut versions = vec![0_u64; AGGREGATES as usize];
        let mut turn = 0_u64;
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("single", through), |b| {
            b.iter_batched(
                || {
                    let aggregate = turn % AGGREGATES;
                    turn += 1;
                    let v = versions[aggregate as usize];
                    versions[aggregate as usize] += 1;
                    (aggregate, expected(v), vec![event(aggregate, v)])
                },
                |(aggregate, e, events)| append(aggregate, e, events),
                criterion::BatchSize::SmallInput,
            );
        });
        group.throughput(Throughput::Elements(100));
        group.bench_function(BenchmarkId::new("batch_100", through), |b| {
            b.iter_batched(
                || {
                    let aggregate = turn % AGGREGATES;
                    turn += 1;
                    let v = versions[aggregate as usize];
                    versions[aggregate as usize] += 100;
                    (
                        aggregate,
                        expected(v),
                        (v..v + 100).map(|n| event(aggregate, n)).collect(),
                    )
                },
                |(aggregate, e, events)| append(aggregate, e, events),
                criterion::BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn reads(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = facade(dir.path());
        for aggregate in 0..AGGREGATES {
            let events = (0..PER_AGGREGATE).map(|n| event(aggregate, n)).collect();
            log.append(&stream(aggregate), ExpectedVersion::NoStream, events)
                .unwrap();
        }
        log.close().unwrap();
    }
    let total = AGGREGATES * PER_AGGREGATE;
    let mut group = c.benchmark_group("read");
    group.measurement_time(Duration::from_secs(5));
    let mut turn = 0_u64;
    {
        let log = facade(dir.path());
        group.throughput(Throughput::Elements(PER_AGGREGATE));
        group.bench_function(BenchmarkId::new("stream_100", "facade"), |b| {
            b.iter(|| {
                turn += 1;
                let stream = stream(turn % AGGREGATES);
                let mut count = 0;
                for event in log.read_stream(&stream, StreamRead::forwards()).unwrap() {
                    black_box(event.unwrap());
                    count += 1;
                }
                assert_eq!(count, PER_AGGREGATE);
            });
        });
        group.throughput(Throughput::Elements(1_000));
        group.bench_function(BenchmarkId::new("log_1000", "facade"), |b| {
            b.iter(|| {
                turn += 1;
                let from = (turn * 7_919) % (total - 1_000) + 1;
                let mut count = 0;
                for event in log.read_log(Position(from), Some(1_000)).unwrap() {
                    black_box(event.unwrap());
                    count += 1;
                }
                assert_eq!(count, 1_000);
            });
        });
        log.close().unwrap();
    }
    {
        let raw = store(dir.path());
        group.throughput(Throughput::Elements(PER_AGGREGATE));
        group.bench_function(BenchmarkId::new("stream_100", "store"), |b| {
            b.iter(|| {
                turn += 1;
                let id = format!("gen-{}", turn % AGGREGATES);
                let mut count = 0;
                for event in raw
                    .read_stream("article_generation", &id, StreamRead::forwards())
                    .unwrap()
                {
                    black_box(event.unwrap());
                    count += 1;
                }
                assert_eq!(count, PER_AGGREGATE);
            });
        });
        group.throughput(Throughput::Elements(1_000));
        group.bench_function(BenchmarkId::new("log_1000", "store"), |b| {
            b.iter(|| {
                turn += 1;
                let from = (turn * 7_919) % (total - 1_000) + 1;
                let mut count = 0;
                for event in raw.read_log(from, Some(1_000)) {
                    black_box(event.unwrap());
                    count += 1;
                }
                assert_eq!(count, 1_000);
            });
        });
        group.bench_function(BenchmarkId::new("scan_log_1000", "store"), |b| {
            b.iter(|| {
                turn += 1;
                let from = (turn * 7_919) % (total - 1_000) + 1;
                let mut bytes = 0;
                let visited = raw
                    .scan_log(from, Some(1_000), |event| {
                        bytes += event.payload.len();
                        black_box(event);
                        ControlFlow::Continue(())
                    })
                    .unwrap();
                assert_eq!(visited, 1_000);
                black_box(bytes);
            });
        });
        raw.close().unwrap();
    }
    group.finish();
}

criterion_group!(benches, appends, reads);
criterion_main!(benches);
