//! A slow `CatchUp` subscriber with a tiny channel falls far behind while the publisher
//! publishes 20 000 messages without ever blocking; it catches up from the source and ends with
//! every message exactly once, in order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{Gate, Publisher, VecSource, assert_exactly, wait_until};
use events_bus::{Bus, SubscriberOptions, SubscriberState};

const TOTAL: u64 = 20_000;

#[test]
fn a_lagging_subscriber_catches_up_without_blocking_the_publisher() {
    let source = VecSource::<u64>::new();
    let bus = Bus::builder().catch_up_source(Arc::clone(&source)).build();
    let gate = Gate::new();
    let seen = Arc::new(Mutex::new(Vec::with_capacity(TOTAL as usize)));
    let handled = Arc::new(AtomicU64::new(0));

    let (out, wait, count) = (Arc::clone(&seen), Arc::clone(&gate), Arc::clone(&handled));
    // The default backpressure is CatchUp.
    let id = bus
        .subscribe(
            "slow",
            SubscriberOptions::new().settings(|s| s.capacity(4)),
            move |n: &u64| {
                // Stuck on the first message until the publisher is done, then slow-ish.
                wait.wait();
                if n.is_multiple_of(1_000) {
                    thread::sleep(Duration::from_millis(1));
                }
                out.lock().unwrap().push(*n);
                count.fetch_add(1, Ordering::SeqCst);
                Ok::<(), String>(())
            },
        )
        .unwrap();

    // The publisher runs on its own thread: had it blocked on the stuck subscriber, it would
    // never finish while the gate is closed.
    let publisher = Publisher {
        bus: bus.clone(),
        source: Arc::clone(&source),
    };
    let publishing = thread::spawn(move || {
        for n in 1..=TOTAL {
            publisher.publish(n);
        }
    });
    assert!(
        wait_until(Duration::from_secs(20), || publishing.is_finished()),
        "the publisher blocked on a stuck CatchUp subscriber"
    );
    publishing.join().unwrap();

    // The publish loop finished while the subscriber had handled nothing.
    assert_eq!(handled.load(Ordering::SeqCst), 0);
    let health = bus.health().remove(0);
    assert_eq!(health.id, id);
    assert_eq!(health.state, SubscriberState::CatchingUp, "marked lagging");
    assert_eq!(health.lag, TOTAL);
    assert!(health.queue_len <= 4);

    gate.open();
    assert!(wait_until(Duration::from_secs(20), || {
        bus.health()[0].last_sequence == TOTAL
    }));
    assert!(wait_until(Duration::from_secs(5), || bus.health()[0].state
        == SubscriberState::Live));
    // Live again: a new message arrives through the channel.
    source.append(TOTAL + 1);
    bus.publish(TOTAL + 1).unwrap();

    let report = bus.shutdown().unwrap().remove(0);
    assert_eq!(report.state, SubscriberState::Finished);
    assert_eq!(report.counts.delivered, TOTAL + 1);
    assert!(report.counts.catch_ups >= 1, "it went through catching up");
    assert_eq!(report.counts.source_errors, 0);
    assert!(source.reads.load(Ordering::Relaxed) >= 1);
    let expected: Vec<u64> = (1..=TOTAL + 1).collect();
    assert_exactly(&seen.lock().unwrap(), &expected, "slow subscriber");
}
