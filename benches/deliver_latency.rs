//! Publish → deliver latency with 1, 4 and 16 subscriptions at a sustained append rate.
//!
//! Four appender threads append one event at a time on a shared fixed schedule (`RATE` events/s
//! in all, for `SECONDS` s). A time stamp is taken right before each `append` call; each
//! subscription's handler records `now − stamp` into its own HDR histogram on delivery. The
//! figures are the p50/p99/p99.9/max over every delivery of every subscription; the `append`
//! call's own latency is recorded too. Three store modes: buffered with a 500 µs `group_delay`
//! (the writer lets a small group grow that long), buffered with its default `group_delay` of 0,
//! and durable, where an event is delivered only after the group holding it is on disk, so the
//! latency includes its group's `fdatasync`.
//!
//! A baseline row (`store`, 0 subscriptions) runs the same schedule on `events_sled::Store`
//! alone and records the time to the store's commit listener: what is left is the facade's
//! publisher thread (one queue and one thread hop) and the bus (one queue and one thread hop per
//! subscription).
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
    Durability, EventContext, EventLog, EventLogConfig, ExpectedVersion, NewEvent, RecordedEvent,
    StreamId, SubscriptionFilter,
};
use events_sled::{Store, StoreConfig};
use hdrhistogram::Histogram;
use omni_domain::CacheHit;

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

/// Send times (ns since `epoch`) by event index, and where deliveries record their latency.
struct Clock {
    epoch: Instant,
    sent: Vec<AtomicU64>,
}

impl Clock {
    fn new(total: u64) -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            sent: (0..total).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Records the latency of the event whose index is in its correlation id.
    fn delivered(&self, event: &RecordedEvent, into: &Mutex<Histogram<u64>>) {
        let now = self.now();
        let index: usize = event
            .metadata
            .correlation_id
            .as_deref()
            .and_then(|c| c.parse().ok())
            .unwrap();
        let at = self.sent[index].load(Ordering::Acquire);
        into.lock()
            .unwrap()
            .record(now.saturating_sub(at).max(1_000))
            .unwrap();
    }
}

/// The store settings a run uses.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Buffered with a 500 µs `group_delay`: the writer lets a small group grow that long.
    BufferedDelayed,
    /// Buffered, default settings (`group_delay` 0: each group is written as soon as the writer
    /// is free).
    Buffered,
    /// Durable, default settings (group commit, one `fdatasync` per group).
    Durable,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::BufferedDelayed => "buffered, group_delay 500 µs",
            Mode::Buffered => "buffered (default group_delay 0)",
            Mode::Durable => "durable",
        }
    }

    fn store(self, config: StoreConfig) -> StoreConfig {
        let config = config.cache_capacity(64 << 20);
        match self {
            Mode::BufferedDelayed => config
                .durability(Durability::Buffered)
                .group_delay(Duration::from_micros(500)),
            Mode::Buffered => config.durability(Durability::Buffered),
            Mode::Durable => config.durability(Durability::Durable),
        }
    }
}

struct Outcome {
    deliver: Histogram<u64>,
    append: Histogram<u64>,
    achieved_rate: f64,
    delivered: u64,
}

type Append = Arc<dyn Fn(NewEvent) + Send + Sync>;

/// Appends `total` events on the schedule from `APPENDERS` threads; returns the append
/// latencies and the achieved rate.
fn drive(clock: &Arc<Clock>, append: &Append, rate: u64, total: u64) -> (Histogram<u64>, f64) {
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let start = Instant::now();
    let appenders: Vec<_> = (0..APPENDERS)
        .map(|t| {
            let clock = Arc::clone(clock);
            let append = Arc::clone(append);
            std::thread::spawn(move || {
                let mut latencies = histogram();
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
                    let before = clock.now();
                    clock.sent[n as usize].store(before, Ordering::Release);
                    append(event);
                    latencies.record((clock.now() - before).max(1_000)).unwrap();
                }
                latencies
            })
        })
        .collect();
    let mut latencies = histogram();
    for appender in appenders {
        latencies.add(appender.join().unwrap()).unwrap();
    }
    (latencies, total as f64 / start.elapsed().as_secs_f64())
}

fn run_facade(mode: Mode, subscribers: usize, rate: u64, seconds: u64) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(
        EventLogConfig::new(dir.path())
            .registry(omni_domain::registry())
            .store(|s| mode.store(s)),
    )
    .unwrap();
    let total = rate * seconds;
    let clock = Clock::new(total);
    let histograms: Vec<Arc<Mutex<Histogram<u64>>>> = (0..subscribers)
        .map(|_| Arc::new(Mutex::new(histogram())))
        .collect();
    for (i, hist) in histograms.iter().enumerate() {
        let clock = Arc::clone(&clock);
        let hist = Arc::clone(hist);
        log.subscribe(
            format!("sub-{i}"),
            SubscriptionFilter::all(),
            move |event: &RecordedEvent| {
                clock.delivered(event, &hist);
                Ok::<(), String>(())
            },
        )
        .unwrap();
    }
    let append: Append = {
        let log = log.clone();
        Arc::new(move |event| {
            let stream = StreamId::new(event.aggregate_type.as_str(), event.aggregate_id.as_str());
            log.append(&stream, ExpectedVersion::Any, vec![event])
                .unwrap();
        })
    };
    let (append_latency, achieved_rate) = drive(&clock, &append, rate, total);
    drop(append);
    let reports = log.close().unwrap();
    let mut deliver = histogram();
    for hist in &histograms {
        deliver.add(&*hist.lock().unwrap()).unwrap();
    }
    Outcome {
        deliver,
        append: append_latency,
        achieved_rate,
        delivered: reports.iter().map(|r| r.counts.delivered).sum(),
    }
}

/// The same schedule on the store alone, timed to its commit listener.
fn run_store(mode: Mode, rate: u64, seconds: u64) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(mode.store(StoreConfig::new(dir.path()))).unwrap();
    let total = rate * seconds;
    let clock = Clock::new(total);
    let hist = Arc::new(Mutex::new(histogram()));
    let count = Arc::new(AtomicU64::new(0));
    {
        let (clock, hist, count) = (Arc::clone(&clock), Arc::clone(&hist), Arc::clone(&count));
        store.set_commit_listener(Some(Arc::new(move |events: &[Arc<RecordedEvent>]| {
            for event in events {
                clock.delivered(event, &hist);
            }
            count.fetch_add(events.len() as u64, Ordering::Relaxed);
        })));
    }
    let append: Append = {
        let store = store.clone();
        Arc::new(move |event| {
            store.append(ExpectedVersion::Any, vec![event]).unwrap();
        })
    };
    let (append_latency, achieved_rate) = drive(&clock, &append, rate, total);
    drop(append);
    store.flush().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    store.set_commit_listener(None);
    store.close().unwrap();
    let deliver = hist.lock().unwrap().clone();
    Outcome {
        deliver,
        append: append_latency,
        achieved_rate,
        delivered: count.load(Ordering::Relaxed),
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
        "| store mode | subscriptions | achieved rate/s | deliveries | deliver p50 | p99 | p99.9 | max | append p50 | append p99 |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for mode in [Mode::BufferedDelayed, Mode::Buffered, Mode::Durable] {
        for subscribers in [0, 1, 4, 16] {
            let (label, o) = if subscribers == 0 {
                (
                    "0 (store → commit listener)".to_string(),
                    run_store(mode, rate, seconds),
                )
            } else {
                (
                    subscribers.to_string(),
                    run_facade(mode, subscribers, rate, seconds),
                )
            };
            assert_eq!(o.delivered, rate * seconds * subscribers.max(1) as u64);
            println!(
                "| {} | {label} | {:.0} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
                mode.label(),
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
