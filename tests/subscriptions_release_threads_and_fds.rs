//! Resource bounds as subscribers come and go: 200 subscriptions of every kind (live, catch-up
//! from the start, durable, projection), each handling events then unsubscribed, leave the
//! process with the threads (`/proc/self/task`) and open file descriptors (`/proc/self/fd`) it
//! had before. While 8 are live, there are at least 8 more threads: the count is what it seems.
//! (One test in this file: the counts are per process.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eventlog::{
    ApplyError, Durability, EventContext, EventLog, EventLogConfig, EventRegistry, ExpectedVersion,
    NewEvent, Position, Projection, RecordedEvent, SubscriptionFilter,
};
use omni_domain::CacheHit;
use serde::{Deserialize, Serialize};

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

fn threads() -> usize {
    count("/proc/self/task")
}

fn fds() -> usize {
    count("/proc/self/fd")
}

/// Waits (up to 5 s) for `probe` to return `want`; returns the last value seen.
fn settle(want: usize, probe: fn() -> usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = probe();
        if now == want || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn hit(n: u64) -> NewEvent {
    let hit = CacheHit {
        cache_key: format!("k{n}"),
        cache_type: "memory".into(),
        response_time: 0.0,
    };
    NewEvent::from_event(format!("c{}", n % 7), &hit, EventContext::new("test")).unwrap()
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Count(u64);

impl Projection for Count {
    fn apply(&mut self, _: &RecordedEvent, _: &EventRegistry) -> Result<(), ApplyError> {
        self.0 += 1;
        Ok(())
    }
}

fn wait_for(counter: &AtomicU64, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while counter.load(Ordering::SeqCst) < at_least {
        assert!(Instant::now() < deadline, "a subscription handled nothing");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn threads_and_fds_return_to_their_baseline_as_subscribers_come_and_go() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(
        EventLogConfig::new(dir.path())
            .registry(omni_domain::registry())
            .durability(Durability::Buffered)
            .store(|s| {
                s.cache_capacity(16 << 20)
                    .flush_interval(Duration::from_millis(20))
            }),
    )
    .unwrap();
    let mut n = 0;
    for _ in 0..50 {
        n += 1;
        log.append_own(ExpectedVersion::Any, vec![hit(n)]).unwrap();
    }
    // Warm up once (anything started lazily by a first subscription is then in the baseline).
    log.subscribe("warm-up", SubscriptionFilter::all(), |_: &RecordedEvent| {
        Ok::<(), String>(())
    })
    .unwrap()
    .unsubscribe()
    .unwrap();
    let (base_threads, base_fds) = (threads(), fds());

    // The measurement is live: 8 running subscriptions are 8 more threads.
    let live: Vec<_> = (0..8)
        .map(|i| {
            log.subscribe(
                format!("live-{i}"),
                SubscriptionFilter::all(),
                |_: &RecordedEvent| Ok::<(), String>(()),
            )
            .unwrap()
        })
        .collect();
    let during = threads();
    assert!(
        during >= base_threads + 8,
        "{during} threads with 8 subscriptions, {base_threads} before"
    );
    for subscription in live {
        subscription.unsubscribe().unwrap();
    }

    let mut peak = 0;
    for i in 0..200_u64 {
        let handled = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&handled);
        let handler = move |_: &RecordedEvent| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<(), String>(())
        };
        n += 1;
        match i % 4 {
            0 => {
                let s = log
                    .subscribe(format!("plain-{i}"), SubscriptionFilter::all(), handler)
                    .unwrap();
                log.append_own(ExpectedVersion::Any, vec![hit(n)]).unwrap();
                wait_for(&handled, 1);
                peak = peak.max(threads());
                s.unsubscribe().unwrap();
            }
            1 => {
                let s = log
                    .subscribe_from(
                        format!("catch-up-{i}"),
                        Position::START,
                        SubscriptionFilter::all(),
                        handler,
                    )
                    .unwrap();
                wait_for(&handled, 50);
                peak = peak.max(threads());
                s.unsubscribe().unwrap();
            }
            2 => {
                let s = log
                    .subscribe_durable(format!("durable-{i}"), SubscriptionFilter::all(), handler)
                    .unwrap();
                wait_for(&handled, 50);
                peak = peak.max(threads());
                s.unsubscribe().unwrap();
            }
            _ => {
                let p = log
                    .project::<Count>(format!("projection-{i}"), SubscriptionFilter::all())
                    .unwrap();
                log.append_own(ExpectedVersion::Any, vec![hit(n)]).unwrap();
                let deadline = Instant::now() + Duration::from_secs(20);
                while p.position() < n {
                    assert!(Instant::now() < deadline, "the projection applied nothing");
                    std::thread::sleep(Duration::from_millis(1));
                }
                peak = peak.max(threads());
                p.stop().unwrap();
            }
        }
        if i % 4 != 0 && i % 4 != 3 {
            log.append_own(ExpectedVersion::Any, vec![hit(n)]).unwrap();
        }
    }
    let after_threads = settle(base_threads, threads);
    let after_fds = settle(base_fds, fds);
    eprintln!(
        "threads: {base_threads} before, {during} with 8 live, peak {peak} during the 200, \
         {after_threads} after; fds: {base_fds} before, {after_fds} after"
    );
    assert_eq!(after_threads, base_threads, "threads leaked");
    assert_eq!(after_fds, base_fds, "file descriptors leaked");
    assert!(
        log.health().is_empty(),
        "subscriptions left: {:?}",
        log.health()
    );
    log.close().unwrap();
}
