//! A filter predicate applies to live and catch-up messages; filtered messages still advance the
//! subscriber's last sequence.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use common::{Publisher, VecSource};
use events_bus::{Backpressure, Bus, SubscriberOptions};

#[test]
fn only_matching_messages_reach_the_handler() {
    let source = VecSource::<u64>::new();
    let bus = Bus::builder().catch_up_source(Arc::clone(&source)).build();
    let publisher = Publisher {
        bus: bus.clone(),
        source: Arc::clone(&source),
    };
    for n in 1..=50 {
        publisher.publish(n);
    }

    let live = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&live);
    bus.subscribe(
        "live-even",
        SubscriberOptions::new()
            .settings(|s| s.backpressure(Backpressure::Block))
            .filter(|n: &u64| n.is_multiple_of(2)),
        move |n: &u64| {
            out.lock().unwrap().push(*n);
            Ok::<(), String>(())
        },
    )
    .unwrap();
    // From the start, so the first 50 come from the source; a tiny channel makes it lag again.
    let caught = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&caught);
    bus.subscribe_from(
        "history-threes",
        0,
        SubscriberOptions::new()
            .settings(|s| s.capacity(1))
            .filter(|n: &u64| n.is_multiple_of(3)),
        move |n: &u64| {
            out.lock().unwrap().push(*n);
            Ok::<(), String>(())
        },
    )
    .unwrap();
    for n in 51..=100 {
        publisher.publish(n);
    }
    let reports = bus.shutdown().unwrap();

    let even: Vec<u64> = (51..=100).filter(|n| n % 2 == 0).collect();
    assert_eq!(*live.lock().unwrap(), even);
    assert_eq!(reports[0].counts.delivered, 25);
    assert_eq!(reports[0].counts.filtered, 25);
    assert_eq!(
        reports[0].last_sequence, 100,
        "filtered messages advance the last sequence"
    );

    let threes: Vec<u64> = (1..=100).filter(|n| n % 3 == 0).collect();
    assert_eq!(*caught.lock().unwrap(), threes);
    assert_eq!(reports[1].counts.delivered, 33);
    assert_eq!(reports[1].counts.filtered, 67);
    assert_eq!(reports[1].last_sequence, 100);
}
