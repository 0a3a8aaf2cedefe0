//! Several subscribers get every message exactly once, in order, while several threads publish
//! through a mutex-serialised publisher.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::thread;

use common::{Event, Publisher, VecSource, assert_exactly};
use events_bus::{Backpressure, Bus, SubscriberOptions, SubscriberState};

const THREADS: u64 = 4;
const PER_THREAD: u64 = 2_500;

#[test]
fn every_subscriber_sees_every_message_once_in_order() {
    let source = VecSource::<Arc<Event>>::new();
    let bus = Bus::builder().catch_up_source(Arc::clone(&source)).build();

    let mut sinks = Vec::new();
    let setups = [
        (
            "block",
            SubscriberOptions::new()
                .settings(|s| s.backpressure(Backpressure::Block))
                .settings(|s| s.capacity(8)),
        ),
        (
            "catch-up",
            SubscriberOptions::new().settings(|s| s.capacity(16)),
        ),
        ("default", SubscriberOptions::new()),
    ];
    for (name, options) in setups {
        let sink = Arc::new(Mutex::new(Vec::new()));
        let out = Arc::clone(&sink);
        bus.subscribe(name, options, move |e: &Arc<Event>| {
            assert_eq!(e.payload, format!("event {}", e.position));
            out.lock().unwrap().push(e.position);
            Ok::<(), String>(())
        })
        .unwrap();
        sinks.push((name, sink));
    }

    // The publisher requires increasing sequences: the threads share it behind a mutex that
    // also hands out the next position.
    let publisher = Arc::new(Mutex::new((
        0u64,
        Publisher {
            bus: bus.clone(),
            source: Arc::clone(&source),
        },
    )));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let publisher = Arc::clone(&publisher);
            thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    let mut guard = publisher.lock().unwrap();
                    guard.0 += 1;
                    let position = guard.0;
                    guard.1.publish(common::event(position));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let total = THREADS * PER_THREAD;
    assert_eq!(bus.last_published(), total);

    let reports = bus.shutdown().unwrap();
    let expected: Vec<u64> = (1..=total).collect();
    for ((name, sink), report) in sinks.iter().zip(&reports) {
        assert_eq!(report.name, *name);
        assert_eq!(report.state, SubscriberState::Finished);
        assert_eq!(report.counts.delivered, total, "{name}");
        assert_eq!(report.last_sequence, total, "{name}");
        assert_exactly(&sink.lock().unwrap(), &expected, name);
    }
}
