//! `FailurePolicy::Skip` counts the failure and moves on to the next message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use events_bus::{Backpressure, Bus, FailurePolicy, SubscriberOptions, SubscriberState};

#[test]
fn failed_messages_are_skipped_and_listed() {
    let bus: Bus<u64> = Bus::new();
    let handled = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&handled);
    let options = SubscriberOptions::new()
        .settings(|s| s.backpressure(Backpressure::Block))
        .settings(|s| s.failure_policy(FailurePolicy::Skip));
    bus.subscribe("odd-only", options, move |n: &u64| {
        out.lock().unwrap().push(*n);
        if n.is_multiple_of(2) {
            Err(format!("{n} is even"))
        } else {
            Ok(())
        }
    })
    .unwrap();
    bus.publish_batch(1..=10).unwrap();
    let report = bus.shutdown().unwrap().remove(0);

    // Each message was tried once: no retry.
    assert_eq!(*handled.lock().unwrap(), (1..=10).collect::<Vec<_>>());
    assert_eq!(report.state, SubscriberState::Finished);
    assert_eq!(report.counts.delivered, 5);
    assert_eq!(report.counts.errors, 5);
    assert_eq!(report.counts.skipped, 5);
    assert_eq!(report.counts.retries, 0);
    assert_eq!(report.last_sequence, 10);
    let skipped: Vec<u64> = report.failures.iter().map(|f| f.sequence).collect();
    assert_eq!(skipped, vec![2, 4, 6, 8, 10]);
    assert_eq!(report.failures[0].message, "2 is even");
}
