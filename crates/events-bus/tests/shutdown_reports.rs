//! `shutdown` drains every subscriber, joins its thread and reports; dropping the bus does the
//! same; a shut-down bus refuses work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use common::{DropGuard, Gate, Publisher, VecSource};
use events_bus::{Backpressure, Bus, BusError, SubscriberOptions, SubscriberState};

#[test]
fn shutdown_drains_queued_messages_and_reports() {
    let bus: Bus<u64> = Bus::new();
    let handled = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    for name in ["a", "b"] {
        let count = Arc::clone(&handled);
        let guard = DropGuard(Arc::clone(&dropped));
        let options = SubscriberOptions::new()
            .settings(|s| s.backpressure(Backpressure::Block))
            .settings(|s| s.capacity(100));
        bus.subscribe(name, options, move |_: &u64| {
            let _keep = &guard;
            thread::sleep(Duration::from_micros(200));
            count.fetch_add(1, Ordering::SeqCst);
            Ok::<(), String>(())
        })
        .unwrap();
    }
    bus.publish_batch(1..=50).unwrap();
    let reports = bus.shutdown().unwrap();

    assert_eq!(dropped.load(Ordering::SeqCst), 2, "both threads joined");
    assert_eq!(
        handled.load(Ordering::SeqCst),
        100,
        "the queues were drained"
    );
    let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    for report in &reports {
        assert_eq!(report.state, SubscriberState::Finished);
        assert_eq!(report.counts.delivered, 50);
        assert_eq!(report.last_sequence, 50);
        assert!(report.failures.is_empty());
    }

    assert!(bus.is_shut_down());
    assert!(bus.health().is_empty());
    assert!(matches!(bus.publish(51), Err(BusError::ShutDown)));
    assert!(matches!(bus.publish_batch([51]), Err(BusError::ShutDown)));
    assert!(matches!(
        bus.subscribe(
            "late",
            SubscriberOptions::new().settings(|s| s.backpressure(Backpressure::Block)),
            |_: &u64| Ok::<(), String>(())
        ),
        Err(BusError::ShutDown)
    ));
    assert!(matches!(bus.shutdown(), Err(BusError::ShutDown)));
}

#[test]
fn shutdown_lets_a_lagging_subscriber_catch_up_first() {
    let source = VecSource::<u64>::new();
    let bus = Bus::builder().catch_up_source(Arc::clone(&source)).build();
    let publisher = Publisher {
        bus: bus.clone(),
        source: Arc::clone(&source),
    };
    let gate = Gate::new();
    let wait = Arc::clone(&gate);
    bus.subscribe(
        "lagging",
        SubscriberOptions::new().settings(|s| s.capacity(2)),
        move |_: &u64| {
            wait.wait();
            Ok::<(), String>(())
        },
    )
    .unwrap();
    for n in 1..=500 {
        publisher.publish(n);
    }
    assert_eq!(bus.health()[0].state, SubscriberState::CatchingUp);
    gate.open();
    let report = bus.shutdown().unwrap().remove(0);
    assert_eq!(report.counts.delivered, 500);
    assert_eq!(report.last_sequence, 500);
    assert_eq!(report.state, SubscriberState::Finished);
}

#[test]
fn dropping_the_bus_drains_and_joins_every_thread() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let handled = Arc::new(AtomicU64::new(0));
    {
        let bus: Bus<u64> = Bus::new();
        for name in ["x", "y", "z"] {
            let guard = DropGuard(Arc::clone(&dropped));
            let count = Arc::clone(&handled);
            let options =
                SubscriberOptions::new().settings(|s| s.backpressure(Backpressure::Block));
            bus.subscribe(name, options, move |_: &u64| {
                let _keep = &guard;
                count.fetch_add(1, Ordering::SeqCst);
                Ok::<(), String>(())
            })
            .unwrap();
        }
        let clone = bus.clone();
        bus.publish_batch(1..=20).unwrap();
        drop(bus);
        // A clone keeps the bus alive.
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        clone.publish(21).unwrap();
    }
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        3,
        "every thread joined on drop"
    );
    assert_eq!(
        handled.load(Ordering::SeqCst),
        63,
        "every queue drained on drop"
    );
}
