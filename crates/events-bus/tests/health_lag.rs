//! `health` reports each subscriber's state, counters, queue length and lag, and serializes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Gate, wait_until};
use events_bus::{Backpressure, Bus, SubscriberOptions, SubscriberState};

#[test]
fn health_shows_lag_and_queue() {
    let bus: Bus<u64> = Bus::builder().last_published(100).build();
    let gate = Gate::new();
    let wait = Arc::clone(&gate);
    let options = SubscriberOptions::new()
        .settings(|s| s.backpressure(Backpressure::Block))
        .settings(|s| s.capacity(16));
    let id = bus
        .subscribe("projector", options, move |n: &u64| {
            if *n > 103 {
                wait.wait();
            }
            Ok::<(), String>(())
        })
        .unwrap();
    bus.subscribe(
        "idle",
        SubscriberOptions::new().settings(|s| s.backpressure(Backpressure::Block)),
        |_: &u64| Ok::<(), String>(()),
    )
    .unwrap();

    let health = bus.health();
    assert_eq!(health.len(), 2);
    assert_eq!(
        health[0].last_sequence, 100,
        "a live subscriber starts after the last published"
    );
    assert_eq!(health[0].lag, 0);

    bus.publish_batch(101..=110).unwrap();
    // 101..=103 handled, 104 in hand (stuck), 105..=110 queued.
    assert!(wait_until(Duration::from_secs(10), || bus.health()[0]
        .last_sequence
        == 103));
    assert!(wait_until(Duration::from_secs(10), || bus.health()[0]
        .queue_len
        == 6));
    assert!(wait_until(Duration::from_secs(10), || bus.health()[1].lag == 0));
    let health = bus.health();
    let projector = &health[0];
    assert_eq!(projector.id, id);
    assert_eq!(projector.name, "projector");
    assert_eq!(projector.state, SubscriberState::Live);
    assert_eq!(projector.counts.delivered, 3);
    assert_eq!(projector.lag, 7);
    assert_eq!(projector.capacity, 16);
    assert_eq!(projector.last_error, None);
    assert_eq!(health[1].counts.delivered, 10);

    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json[0]["name"], "projector");
    assert_eq!(json[0]["state"], "live");
    assert_eq!(json[0]["lag"], 7);
    assert_eq!(json[0]["delivered"], 3);
    assert_eq!(json[0]["queue_len"], 6);
    assert_eq!(json[1]["lag"], 0);

    gate.open();
    assert!(wait_until(Duration::from_secs(10), || bus.health()[0].lag == 0));
    let reports = bus.shutdown().unwrap();
    assert_eq!(reports[0].counts.delivered, 10);
    let json = serde_json::to_value(&reports[0]).unwrap();
    assert_eq!(json["state"], "finished");
    assert_eq!(json["last_sequence"], 110);
}
