//! `FailurePolicy::Retry` re-delivers the same message with a doubling backoff, then stops the
//! subscriber once the attempts are exhausted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use events_bus::{
    Backpressure, Bus, FailureKind, FailurePolicy, SubscriberOptions, SubscriberState,
};

fn options(max_attempts: u32) -> SubscriberOptions<u64> {
    SubscriberOptions::new()
        .settings(|s| s.backpressure(Backpressure::Block))
        .settings(|s| {
            s.failure_policy(FailurePolicy::Retry {
                max_attempts,
                backoff: Duration::from_millis(5),
            })
        })
}

#[test]
fn a_transient_failure_is_retried_until_it_succeeds() {
    let bus: Bus<u64> = Bus::new();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&attempts);
    bus.subscribe("transient", options(3), move |n: &u64| {
        let mut log = log.lock().unwrap();
        log.push((*n, Instant::now()));
        let tries_of_5 = log.iter().filter(|(m, _)| *m == 5).count();
        if *n == 5 && tries_of_5 < 3 {
            return Err(format!("attempt {tries_of_5} at 5 fails"));
        }
        Ok(())
    })
    .unwrap();
    bus.publish_batch(1..=10).unwrap();
    let report = bus.shutdown().unwrap().remove(0);

    assert_eq!(report.state, SubscriberState::Finished);
    assert_eq!(report.counts.delivered, 10);
    assert_eq!(report.counts.errors, 2);
    assert_eq!(report.counts.retries, 2);
    assert_eq!(report.last_sequence, 10);
    assert_eq!(
        report
            .failures
            .iter()
            .map(|f| (f.sequence, f.attempt, f.kind))
            .collect::<Vec<_>>(),
        vec![(5, 1, FailureKind::Error), (5, 2, FailureKind::Error)]
    );
    let log = attempts.lock().unwrap();
    let order: Vec<u64> = log.iter().map(|(n, _)| *n).collect();
    assert_eq!(order, vec![1, 2, 3, 4, 5, 5, 5, 6, 7, 8, 9, 10]);
    // Backoff 5 ms, then doubled to 10 ms.
    let fives: Vec<Instant> = log
        .iter()
        .filter(|(n, _)| *n == 5)
        .map(|(_, t)| *t)
        .collect();
    assert!(fives[1] - fives[0] >= Duration::from_millis(5));
    assert!(fives[2] - fives[1] >= Duration::from_millis(10));
}

#[test]
fn exhausted_attempts_stop_the_subscriber_at_the_last_good_sequence() {
    let bus: Bus<u64> = Bus::new();
    bus.subscribe("stubborn", options(3), |n: &u64| {
        if *n == 5 {
            Err("five never works")
        } else {
            Ok(())
        }
    })
    .unwrap();
    // The stopped subscriber does not block the publisher, though it uses Block backpressure.
    bus.publish_batch(1..=100).unwrap();
    let report = bus.shutdown().unwrap().remove(0);

    assert_eq!(report.counts.delivered, 4);
    assert_eq!(report.counts.errors, 3);
    assert_eq!(report.counts.retries, 2);
    assert_eq!(report.last_sequence, 4, "it says where to resume");
    match &report.state {
        SubscriberState::Stopped { reason } => {
            assert!(
                reason.contains("gave up on sequence 5 after 3 attempts"),
                "{reason}"
            );
            assert!(reason.contains("five never works"), "{reason}");
        }
        other => panic!("expected stopped, got {other:?}"),
    }
}
