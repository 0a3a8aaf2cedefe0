//! `Backpressure::Block`: the publisher waits for a slow subscriber's channel to have room.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use common::{Gate, wait_until};
use events_bus::{Backpressure, Bus, SubscriberOptions};

#[test]
fn the_publisher_waits_for_room() {
    let bus: Bus<u64> = Bus::new();
    let gate = Gate::new();
    let wait = Arc::clone(&gate);
    let options = SubscriberOptions::new()
        .settings(|s| s.backpressure(Backpressure::Block))
        .settings(|s| s.capacity(2));
    bus.subscribe("stuck", options, move |_: &u64| {
        wait.wait();
        Ok::<(), String>(())
    })
    .unwrap();

    let published = Arc::new(AtomicU64::new(0));
    let progress = Arc::clone(&published);
    let publisher = bus.clone();
    let publishing = thread::spawn(move || {
        for n in 1..=10u64 {
            publisher.publish(n).unwrap();
            progress.store(n, Ordering::SeqCst);
        }
    });

    // One message in the stuck handler, two in the channel: the fourth publish waits.
    assert!(wait_until(Duration::from_secs(10), || published
        .load(Ordering::SeqCst)
        == 3));
    thread::sleep(Duration::from_millis(100));
    assert_eq!(
        published.load(Ordering::SeqCst),
        3,
        "the publisher must wait"
    );
    assert!(!publishing.is_finished());
    let health = bus.health().remove(0);
    assert_eq!(health.queue_len, 2);

    gate.open();
    publishing.join().unwrap();
    let report = bus.shutdown().unwrap().remove(0);
    assert_eq!(report.counts.delivered, 10);
    assert_eq!(report.counts.catch_ups, 0);
}
