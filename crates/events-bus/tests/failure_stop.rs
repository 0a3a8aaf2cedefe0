//! `FailurePolicy::Stop` stops the subscriber at once; its state and last sequence say so, in
//! health and in its report, and the publisher goes on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::wait_until;
use events_bus::{Backpressure, Bus, FailurePolicy, SubscriberOptions, SubscriberState};

#[test]
fn the_first_failure_stops_the_subscriber() {
    let bus: Bus<u64> = Bus::new();
    let options = SubscriberOptions::new()
        .settings(|s| s.backpressure(Backpressure::Block))
        .settings(|s| s.capacity(1))
        .settings(|s| s.failure_policy(FailurePolicy::Stop));
    bus.subscribe("fragile", options, |n: &u64| {
        if *n == 3 {
            Err("three breaks it")
        } else {
            Ok(())
        }
    })
    .unwrap();

    bus.publish_batch(1..=3).unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        matches!(bus.health()[0].state, SubscriberState::Stopped { .. })
    }));
    let health = bus.health().remove(0);
    assert_eq!(health.last_sequence, 2);
    assert_eq!(health.counts.errors, 1);
    assert_eq!(
        health.last_error.as_deref(),
        Some("sequence 3: error: three breaks it")
    );

    // A capacity of 1 and Block backpressure: were the stopped subscriber still fed, this
    // would hang.
    for n in 4..=1_000u64 {
        bus.publish(n).unwrap();
    }
    assert_eq!(bus.health()[0].lag, 998);

    let report = bus.shutdown().unwrap().remove(0);
    assert_eq!(report.counts.delivered, 2);
    assert_eq!(report.counts.retries, 0);
    assert_eq!(report.last_sequence, 2);
    match &report.state {
        SubscriberState::Stopped { reason } => {
            assert!(reason.contains("sequence 3 (policy Stop)"), "{reason}");
            assert!(reason.contains("three breaks it"), "{reason}");
        }
        other => panic!("expected stopped, got {other:?}"),
    }
}
