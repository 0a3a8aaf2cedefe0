//! `unsubscribe` stops and joins the subscriber's thread and reports its counts; threads do not
//! accumulate when subscribers come and go.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{DropGuard, Gate, Publisher, VecSource};
use events_bus::{Backpressure, Bus, BusError, SubscriberOptions, SubscriberState};

#[test]
fn subscribers_coming_and_going_are_each_joined() {
    let source = VecSource::<u64>::new();
    let bus = Bus::builder().catch_up_source(Arc::clone(&source)).build();
    let publisher = Publisher {
        bus: bus.clone(),
        source: Arc::clone(&source),
    };
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut next = 0u64;
    for round in 0..200usize {
        let guard = DropGuard(Arc::clone(&dropped));
        let thread_name = Arc::new(Mutex::new(None));
        let name_out = Arc::clone(&thread_name);
        let options = if round % 2 == 0 {
            SubscriberOptions::new().settings(|s| s.capacity(2))
        } else {
            SubscriberOptions::new().settings(|s| s.backpressure(Backpressure::Block))
        };
        let id = bus
            .subscribe(format!("s{round}"), options, move |_: &u64| {
                let _keep = &guard;
                *name_out.lock().unwrap() = std::thread::current().name().map(str::to_owned);
                Ok::<(), String>(())
            })
            .unwrap();
        for _ in 0..3 {
            next += 1;
            publisher.publish(next);
        }
        // Wait for the three messages through health, then unsubscribe.
        assert!(common::wait_until(
            std::time::Duration::from_secs(10),
            || { bus.health()[0].last_sequence == next }
        ));
        let report = bus.unsubscribe(id).unwrap();
        // The handler (and its guard) is dropped when the thread ends: joined means dropped.
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            round + 1,
            "round {round}: thread not joined"
        );
        assert_eq!(report.id, id);
        assert_eq!(report.name, format!("s{round}"));
        assert_eq!(report.state, SubscriberState::Finished);
        assert_eq!(report.counts.delivered, 3);
        assert_eq!(report.last_sequence, next);
        assert_eq!(
            thread_name.lock().unwrap().as_deref(),
            Some(format!("bus-s{round}").as_str())
        );
        assert!(bus.health().is_empty());
        assert!(matches!(
            bus.unsubscribe(id),
            Err(BusError::UnknownSubscriber { .. })
        ));
    }
}

#[test]
fn unsubscribe_does_not_wait_for_the_queue() {
    let bus: Bus<u64> = Bus::new();
    let gate = Gate::new();
    let wait = Arc::clone(&gate);
    let options = SubscriberOptions::new()
        .settings(|s| s.backpressure(Backpressure::Block))
        .settings(|s| s.capacity(100));
    let id = bus
        .subscribe("busy", options, move |_: &u64| {
            wait.wait();
            Ok::<(), String>(())
        })
        .unwrap();
    bus.publish_batch(1..=50).unwrap();
    let bus2 = bus.clone();
    let unsubscribing = std::thread::spawn(move || bus2.unsubscribe(id).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(20));
    gate.open();
    let report = unsubscribing.join().unwrap();
    // It stops after the message in hand; the rest of the queue is not handled.
    assert!(report.counts.delivered < 50, "{report:?}");
    assert_eq!(report.last_sequence, report.counts.delivered);
    bus.shutdown().unwrap();
}
