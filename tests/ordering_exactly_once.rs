//! Four appender threads, three subscriptions (default, a tiny queue that keeps falling behind,
//! and a blocking one): each subscription sees every event exactly once, in position order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::sync::Arc;
use std::sync::Mutex;

use common::{Seen, cache_hit, config, one_to};
use eventlog::{
    Backpressure, EventLog, ExpectedVersion, Position, RecordedEvent, SubscriptionFilter,
    SubscriptionOptions,
};

const THREADS: u64 = 4;
const APPENDS_PER_THREAD: u64 = 400;

#[test]
fn every_subscription_sees_every_event_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let default = Seen::default();
    let lagging = Seen::default();
    let blocking = Seen::default();
    let ids = Arc::new(Mutex::new(Vec::new()));
    log.subscribe("default", SubscriptionFilter::all(), default.handler())
        .unwrap();
    log.subscribe(
        "lagging",
        SubscriptionOptions::new().bus(|b| b.capacity(2)),
        lagging.handler(),
    )
    .unwrap();
    let sink = Arc::clone(&ids);
    let mut record = blocking.handler();
    log.subscribe(
        "blocking",
        SubscriptionOptions::new()
            .bus(|b| b.capacity(8))
            .bus(|b| b.backpressure(Backpressure::Block)),
        move |event: &RecordedEvent| {
            sink.lock().unwrap().push(event.metadata.event_id);
            record(event)
        },
    )
    .unwrap();

    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for n in 0..APPENDS_PER_THREAD {
                    // Own aggregates and one shared by every thread; 1 to 3 events per append.
                    let aggregate = if n.is_multiple_of(3) {
                        "shared".to_string()
                    } else {
                        format!("t{t}-{}", n % 7)
                    };
                    let events = (0..=(n % 3)).map(|k| cache_hit(&aggregate, k)).collect();
                    log.append_own(ExpectedVersion::Any, events).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let last = log.last_position().unwrap().get();
    let expected_ids: Vec<_> = log
        .read_log(Position(1), None)
        .unwrap()
        .map(|e| e.unwrap().metadata.event_id)
        .collect();
    let reports = log.close().unwrap();

    let per_thread: u64 = (0..APPENDS_PER_THREAD).map(|n| n % 3 + 1).sum();
    assert_eq!(last, THREADS * per_thread);
    for (name, seen) in [
        ("default", &default),
        ("lagging", &lagging),
        ("blocking", &blocking),
    ] {
        assert_eq!(seen.positions(), one_to(last), "{name}");
    }
    // The events delivered are the events stored, in the same order.
    assert_eq!(*ids.lock().unwrap(), expected_ids);
    for report in &reports {
        assert_eq!(report.last_sequence, last, "{}", report.name);
        assert_eq!(report.counts.delivered, last, "{}", report.name);
    }
    let lagging_report = reports.iter().find(|r| r.name == "lagging").unwrap();
    assert!(
        lagging_report.counts.catch_ups > 0,
        "the tiny queue never fell behind: {lagging_report:?}"
    );
}
