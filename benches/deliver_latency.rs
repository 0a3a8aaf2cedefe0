//! Publish → deliver latency with 1, 4 and 16 subscriptions at a sustained append rate.
//!
//! Four appender threads append one event at a time on a shared fixed schedule (`RATE`
//! events/s in all, for `SECONDS` s). A time stamp is taken right before each `append` call; each subscription's
//! handler records `now − stamp` into its own HDR histogram on delivery. The figures are the
//! p50/p99/p99.9/max over every delivery of every subscription; the append call's own latency is
//! recorded too. Both durability modes: in durable mode an event is delivered only after the
//! group holding it is on disk, so the latency includes the `fdatasync` of its group commit.
//!
//! This is a plain `harness = false` binary (criterion measures throughput of closures, not
//! latency distributions under a sustained load). Run:
//! `cargo bench -p eventlog --bench deliver_latency` (env `DELIVER_BENCH_SECONDS`,
//! `DELIVER_BENCH_RATE` override the defaults 5 s and 2000 events/s).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventlog::{
    CacheHit, Durability, EventContext, EventLog, EventLogConfig, ExpectedVersion, NewEvent,
    RecordedEvent, SubscriptionFilter,
};
use hdrhistogram::Histogram;

/// Appender threads sharing the schedule (so that durable appends, each waiting for its group's
/// `fdatasync`, can sustain the rate through group commit).
const APPENDERS: u64 = 4;

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s, 3 significant digits; values in nanoseconds.
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).unwrap()
}

fn micros(ns: u64) -> f64 {
    ns as f64 / 1_000.0
}

struct Outcome {
    deliver: Histogram<u64>,
    append: Histogram<u64>,
    achieved_rate: f64,
    delivered: u64,
}

fn run(durability: Durability, subscribers: usize, rate: u64, seconds: u64) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(
        EventLogConfig::new(dir.path())
            .durability(durability)
            .store(|s| s.cache_capacity(64 << 20)),
    )
    .unwrap();
    let total = rate * seconds;
    let epoch = Instant::now();
    // Send time of event n (ns since `epoch`), by the index carried in its correlation id.
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let histograms: Vec<Arc<Mutex<Histogram<u64>>>> = (0..subscribers)
        .map(|_| Arc::new(Mutex::new(histogram())))
        .collect();
    for (i, hist) in histograms.iter().enumerate() {
        let sent = Arc::clone(&sent);
        let hist = Arc::clone(hist);
        log.subscribe(
            format!("sub-{i}"),
            SubscriptionFilter::all(),
            move |event: &RecordedEvent| {
                let now = epoch.elapsed().as_nanos() as u64;
                let index: usize = event
                    .metadata
                    .correlation_id
                    .as_deref()
                    .and_then(|c| c.parse().ok())
                    .ok_or("no index")?;
                let at = sent[index].load(Ordering::Acquire);
                hist.lock()
                    .map_err(|_| "poisoned")?
                    .record(now.saturating_sub(at).max(1_000))
                    .map_err(|_| "out of range")?;
                Ok::<(), &str>(())
            },
        )
        .unwrap();
    }

    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let start = Instant::now();
    let appenders: Vec<_> = (0..APPENDERS)
        .map(|t| {
            let log = log.clone();
            let sent = Arc::clone(&sent);
            std::thread::spawn(move || {
                let mut append = histogram();
                let hit = CacheHit {
                    cache_key: "prompt:42".into(),
                    cache_type: "memory".into(),
                    response_time: 0.001,
                };
                for n in (t..total).step_by(APPENDERS as usize) {
                    let due = start + interval * n as u32;
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let event = NewEvent::from_event(
                        format!("cache-{}", n % 100),
                        &hit,
                        EventContext::new("bench").with_correlation_id(n.to_string()),
                    )
                    .unwrap();
                    let before = epoch.elapsed().as_nanos() as u64;
                    sent[n as usize].store(before, Ordering::Release);
                    log.append(ExpectedVersion::Any, vec![event]).unwrap();
                    append
                        .record((epoch.elapsed().as_nanos() as u64 - before).max(1_000))
                        .unwrap();
                }
                append
            })
        })
        .collect();
    let mut append = histogram();
    for appender in appenders {
        append.add(appender.join().unwrap()).unwrap();
    }
    let elapsed = start.elapsed();
    let reports = log.close().unwrap();
    let delivered = reports.iter().map(|r| r.counts.delivered).sum();
    let mut deliver = histogram();
    for hist in &histograms {
        deliver.add(&*hist.lock().unwrap()).unwrap();
    }
    Outcome {
        deliver,
        append,
        achieved_rate: total as f64 / elapsed.as_secs_f64(),
        delivered,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a `cargo test --benches` run passes nothing: keep it short.
    let benching = std::env::args().any(|a| a == "--bench");
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let seconds = env("DELIVER_BENCH_SECONDS", if benching { 5 } else { 1 });
    let rate = env("DELIVER_BENCH_RATE", if benching { 2_000 } else { 200 });
    println!(
        "publish -> deliver latency, {rate} appends/s (1 event each, {APPENDERS} appender threads) for {seconds} s, µs"
    );
    println!(
        "| durability | subscribers | achieved rate/s | deliveries | deliver p50 | p99 | p99.9 | max | append p50 | append p99 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for durability in [Durability::Buffered, Durability::Durable] {
        for subscribers in [1, 4, 16] {
            let o = run(durability, subscribers, rate, seconds);
            assert_eq!(o.delivered, rate * seconds * subscribers as u64);
            println!(
                "| {durability:?} | {subscribers} | {:.0} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
                o.achieved_rate,
                o.delivered,
                micros(o.deliver.value_at_quantile(0.5)),
                micros(o.deliver.value_at_quantile(0.99)),
                micros(o.deliver.value_at_quantile(0.999)),
                micros(o.deliver.max()),
                micros(o.append.value_at_quantile(0.5)),
                micros(o.append.value_at_quantile(0.99)),
            );
        }
    }
}
