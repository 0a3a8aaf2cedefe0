//! What a stream read costs, taken apart (BENCHMARKS.md, "Point reads, zeroed blocks and
//! median passes"): a store of 10 000 aggregates × 100 events, each aggregate appended in one
//! call (W-append-batch's shape), then, per pass, the time per stream to open a read, to read a
//! stream's first event, and per event to read every stream whole and the whole log.
//!
//! Run with `cargo run --release --example read_costs [STORE_DIR]` (default: a temporary
//! directory; a given directory is filled on the first run and reused after).

use std::time::Instant;

use eventlog::{
    EventContext, EventLog, EventLogConfig, ExpectedVersion, NewEvent, Position, StreamId,
    StreamRead,
};
use omni_domain::CacheHit;

const AGGREGATES: u32 = 10_000;
const PER_AGGREGATE: usize = 100;
const PASSES: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| temp.path().join("store"), std::path::PathBuf::from);
    let config = || {
        EventLogConfig::new(&dir)
            .registry(omni_domain::registry())
            .snapshot_every(None)
    };
    let log = EventLog::open(config())?;
    if log.last_position()?.get() == 0 {
        // ~200-byte payloads, like W's.
        let hit = CacheHit {
            cache_key: "k".repeat(150),
            cache_type: "memory".into(),
            response_time: 0.001,
        };
        for a in 0..AGGREGATES {
            let id = format!("gen-{a}");
            let events = (0..PER_AGGREGATE)
                .map(|_| NewEvent::from_event(id.clone(), &hit, EventContext::new("read_costs")))
                .collect::<Result<Vec<_>, _>>()?;
            log.append(
                &StreamId::of::<CacheHit>(id.as_str()),
                ExpectedVersion::NoStream,
                events,
            )?;
        }
    }
    log.close()?;
    let log = EventLog::open(config())?;
    let streams: Vec<StreamId> = (0..AGGREGATES)
        .map(|a| StreamId::of::<CacheHit>(format!("gen-{a}").as_str()))
        .collect();
    let events = u64::from(AGGREGATES) * PER_AGGREGATE as u64;
    for pass in 1..=PASSES {
        let started = Instant::now();
        for stream in &streams {
            std::hint::black_box(log.read_stream(stream, StreamRead::forwards())?);
        }
        let open = per(started, streams.len() as u64);
        let started = Instant::now();
        for stream in &streams {
            for event in log.read_stream(stream, StreamRead::forwards().limit(1))? {
                std::hint::black_box(event?);
            }
        }
        let first = per(started, streams.len() as u64);
        let started = Instant::now();
        let mut read = 0;
        for stream in &streams {
            for event in log.read_stream(stream, StreamRead::forwards())? {
                std::hint::black_box(event?);
                read += 1;
            }
        }
        let whole = per(started, read);
        let started = Instant::now();
        let mut logged = 0;
        for event in log.read_log(Position::START, None)? {
            std::hint::black_box(event?);
            logged += 1;
        }
        let all = per(started, logged);
        if read != events || logged != events {
            return Err(
                format!("read {read} stream events and {logged} log events, not {events}").into(),
            );
        }
        println!(
            "pass {pass}: open a stream read {open:.2} µs, its first event {first:.2} µs; \
             per event: streams whole {whole:.3} µs, the log {all:.3} µs"
        );
    }
    log.close()?;
    Ok(())
}

/// Microseconds per item since `started`.
fn per(started: Instant, items: u64) -> f64 {
    started.elapsed().as_secs_f64() * 1e6 / items.max(1) as f64
}
