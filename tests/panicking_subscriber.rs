//! A subscription whose handler panics is isolated: the others and the writer carry on, and its
//! panics show in its health and in the metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::time::Duration;

use common::{Seen, cache_hit, config, one_to, wait_until};
use eventlog::{
    EventLog, ExpectedVersion, FailurePolicy, RecordedEvent, SubscriberState, SubscriptionFilter,
    SubscriptionOptions,
};

#[test]
fn a_panicking_handler_hurts_nobody_else() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    // Default policy: retried 3 times in all, then stopped.
    log.subscribe(
        "panicker",
        SubscriptionFilter::all(),
        |event: &RecordedEvent| -> Result<(), String> {
            if event.position == 3 {
                panic!("boom at 3");
            }
            Ok(())
        },
    )
    .unwrap();
    let skipped = Seen::default();
    let mut record = skipped.handler();
    log.subscribe(
        "skipper",
        SubscriptionOptions::new().bus(|b| b.failure_policy(FailurePolicy::Skip)),
        move |event: &RecordedEvent| {
            if event.position.is_multiple_of(2) {
                panic!("even position {}", event.position);
            }
            record(event)
        },
    )
    .unwrap();
    let healthy = Seen::default();
    log.subscribe("healthy", SubscriptionFilter::all(), healthy.handler())
        .unwrap();

    for n in 0..10 {
        log.append_own(ExpectedVersion::Any, vec![cache_hit("c", n)])
            .unwrap();
    }
    assert!(wait_until(Duration::from_secs(10), || healthy.len() == 10));
    assert!(wait_until(Duration::from_secs(10), || {
        log.health()
            .iter()
            .all(|h| h.last_sequence == 10 || h.name == "panicker")
            && log
                .health()
                .iter()
                .any(|h| h.name == "panicker" && h.state.is_terminal())
    }));
    // The writer is unaffected.
    log.append_own(ExpectedVersion::Any, vec![cache_hit("c", 10)])
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || healthy.len() == 11));

    let metrics = log.admin().metrics().unwrap();
    let panicker = metrics
        .bus
        .subscribers
        .iter()
        .find(|h| h.name == "panicker")
        .unwrap();
    assert!(matches!(panicker.state, SubscriberState::Stopped { .. }));
    assert_eq!(panicker.counts.panics, 3);
    assert_eq!(panicker.last_sequence, 2);
    assert!(
        panicker
            .last_error
            .as_deref()
            .unwrap()
            .contains("boom at 3")
    );
    assert_eq!(metrics.bus.stopped, 1);

    let reports = log.close().unwrap();
    let skipper = reports.iter().find(|r| r.name == "skipper").unwrap();
    assert_eq!(skipper.counts.panics, 5);
    assert_eq!(skipper.counts.skipped, 5);
    assert_eq!(skipper.last_sequence, 11);
    assert_eq!(skipped.positions(), vec![1, 3, 5, 7, 9, 11]);
    assert_eq!(healthy.positions(), one_to(11));
}
