//! A failing catch-up source is retried with a backoff and reported in health; the subscriber
//! still ends with every message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{VecSource, assert_exactly, quiet_subscriber_panics, wait_until};
use events_bus::{Bus, CatchUpSource, SourceError, SubscriberOptions, SubscriberState};

/// Fails its first reads (one of them by panicking), then reads from the inner log.
struct Flaky {
    inner: Arc<VecSource<u64>>,
    failures_left: AtomicU32,
}

impl CatchUpSource<u64> for Flaky {
    fn read_after(&self, after: u64, max: usize) -> Result<Vec<u64>, SourceError> {
        match self.failures_left.fetch_sub(1, Ordering::SeqCst) {
            4 => panic!("source panic"),
            1..=5 => Err(SourceError::from_error(std::io::Error::other("disk busy"))),
            _ => {
                self.failures_left.store(0, Ordering::SeqCst);
                self.inner.read_after(after, max)
            }
        }
    }
}

#[test]
fn source_errors_are_retried_and_reported() {
    quiet_subscriber_panics();
    let log = VecSource::<u64>::new();
    for n in 1..=300 {
        log.append(n);
    }
    let source = Arc::new(Flaky {
        inner: Arc::clone(&log),
        failures_left: AtomicU32::new(5),
    });
    let bus = Bus::builder()
        .catch_up_source(Arc::clone(&source))
        .last_published(300)
        .build();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&seen);
    let options = SubscriberOptions::new()
        .settings(|s| s.source_backoff(Duration::from_millis(1)))
        .settings(|s| s.catch_up_batch(64));
    bus.subscribe_from("reader", 0, options, move |n: &u64| {
        out.lock().unwrap().push(*n);
        Ok::<(), String>(())
    })
    .unwrap();

    assert!(wait_until(Duration::from_secs(10), || bus.health()[0]
        .state
        == SubscriberState::Live));
    let health = bus.health().remove(0);
    assert_eq!(health.counts.source_errors, 5);
    assert_eq!(health.lag, 0);
    assert!(health.last_error.unwrap().contains("disk busy"));

    let report = bus.shutdown().unwrap().remove(0);
    assert_eq!(report.counts.source_errors, 5);
    assert_eq!(report.counts.delivered, 300);
    assert_exactly(
        &seen.lock().unwrap(),
        &(1..=300).collect::<Vec<_>>(),
        "reader",
    );
}

/// A source missing published messages is an error too (no silent gap), and at shutdown the
/// subscriber gives up after a few attempts, saying where it stopped.
#[test]
fn a_source_with_a_gap_stops_the_subscriber_at_shutdown() {
    let log = VecSource::<u64>::new();
    for n in 1..=10 {
        log.append(n);
    }
    // 11..=20 were published but never reached the source.
    let bus = Bus::builder()
        .catch_up_source(Arc::clone(&log))
        .last_published(20)
        .build();
    let options = SubscriberOptions::new().settings(|s| s.source_backoff(Duration::from_millis(1)));
    bus.subscribe_from("gap", 0, options, |_: &u64| Ok::<(), String>(()))
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || bus.health()[0]
        .counts
        .source_errors
        >= 2));
    assert_eq!(bus.health()[0].last_sequence, 10);
    assert_eq!(bus.health()[0].state, SubscriberState::CatchingUp);

    let report = bus.shutdown().unwrap().remove(0);
    assert_eq!(report.last_sequence, 10);
    assert_eq!(report.counts.delivered, 10);
    match &report.state {
        SubscriberState::Stopped { reason } => {
            assert!(reason.contains("during shutdown"), "{reason}");
            assert!(reason.contains("no message after sequence 10"), "{reason}");
        }
        other => panic!("expected stopped, got {other:?}"),
    }
}
