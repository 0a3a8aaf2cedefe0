//! A panicking subscriber hurts neither the publisher nor the other subscribers; its panics are
//! counted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{quiet_subscriber_panics, wait_until};
use events_bus::{
    Backpressure, Bus, FailureKind, FailurePolicy, SubscriberOptions, SubscriberState,
};

#[test]
fn panics_are_contained_and_counted() {
    quiet_subscriber_panics();
    let bus: Bus<u64> = Bus::new();
    let block = || {
        SubscriberOptions::new()
            .settings(|s| s.backpressure(Backpressure::Block))
            .settings(|s| s.capacity(4))
    };

    // Panics on every tenth message, skips it, goes on.
    bus.subscribe(
        "flaky",
        block().settings(|s| s.failure_policy(FailurePolicy::Skip)),
        |n: &u64| {
            if n.is_multiple_of(10) {
                panic!("no multiples of ten: {n}");
            }
            Ok::<(), String>(())
        },
    )
    .unwrap();
    // Panics on everything: the default policy retries three times, then stops it.
    bus.subscribe(
        "broken",
        block().settings(|s| {
            s.failure_policy(FailurePolicy::Retry {
                max_attempts: 3,
                backoff: Duration::from_millis(1),
            })
        }),
        |_: &u64| -> Result<(), String> { panic!("always") },
    )
    .unwrap();
    // A healthy one beside them.
    let healthy_sum = Arc::new(AtomicU64::new(0));
    let sum = Arc::clone(&healthy_sum);
    bus.subscribe("healthy", block(), move |n: &u64| {
        sum.fetch_add(*n, Ordering::SeqCst);
        Ok::<(), String>(())
    })
    .unwrap();

    // The publisher never fails and never hangs, though two subscribers panic (and one of
    // them, with Block backpressure, stops for good).
    for n in 1..=200u64 {
        bus.publish(n).unwrap();
    }
    assert!(wait_until(Duration::from_secs(10), || {
        bus.health()
            .iter()
            .any(|h| h.name == "broken" && matches!(h.state, SubscriberState::Stopped { .. }))
    }));

    let reports = bus.shutdown().unwrap();
    let flaky = &reports[0];
    assert_eq!(flaky.counts.panics, 20);
    assert_eq!(flaky.counts.skipped, 20);
    assert_eq!(flaky.counts.delivered, 180);
    assert_eq!(flaky.last_sequence, 200);
    assert!(flaky.failures.iter().all(|f| f.kind == FailureKind::Panic));
    assert_eq!(flaky.failures[0].message, "no multiples of ten: 10");

    let broken = &reports[1];
    assert_eq!(broken.counts.panics, 3);
    assert_eq!(broken.counts.delivered, 0);
    assert_eq!(broken.last_sequence, 0);
    assert!(
        matches!(&broken.state, SubscriberState::Stopped { reason } if reason.contains("always"))
    );

    let healthy = &reports[2];
    assert_eq!(healthy.counts.delivered, 200);
    assert_eq!(healthy.counts.panics, 0);
    assert_eq!(healthy_sum.load(Ordering::SeqCst), 200 * 201 / 2);
}
