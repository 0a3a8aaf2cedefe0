//! `subscribe_from` while a `publish_batch` is under way: the subscriber joins after the
//! publisher took its list of subscribers, so the batch's remaining messages are never offered
//! to it. It must not go live before the batch is published — it reads those messages from the
//! source — or they are lost to it. A slow `Block` subscriber keeps each batch in flight for
//! milliseconds, so the late subscriber joins mid-batch in practice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{VecSource, assert_exactly};
use events_bus::{Backpressure, Bus, SubscriberOptions};

const MESSAGES: u64 = 120;
const BATCH: u64 = 20;

#[test]
fn a_subscriber_joining_during_a_batch_misses_none_of_it() {
    for iteration in 0..12 {
        let source = VecSource::<u64>::new();
        let bus = Bus::builder().catch_up_source(Arc::clone(&source)).build();
        // Each offer to this one waits for its 1-slot channel: a batch takes ~20 ms to fan out.
        bus.subscribe(
            "slow",
            SubscriberOptions::new()
                .settings(|s| s.capacity(1))
                .settings(|s| s.backpressure(Backpressure::Block)),
            |_: &u64| {
                thread::sleep(Duration::from_millis(1));
                Ok::<(), String>(())
            },
        )
        .unwrap();
        let publishing = {
            let bus = bus.clone();
            let source = Arc::clone(&source);
            thread::spawn(move || {
                for first in (1..=MESSAGES).step_by(BATCH as usize) {
                    let batch: Vec<u64> = (first..first + BATCH).collect();
                    // As a store does: committed (readable) before published.
                    for &n in &batch {
                        source.append(n);
                    }
                    bus.publish_batch(batch).unwrap();
                }
            })
        };
        // Join somewhere inside the second to fifth batch.
        let join_after = BATCH + 3 + iteration * 7;
        while bus.last_published() < join_after {
            thread::yield_now();
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let out = Arc::clone(&seen);
        bus.subscribe_from(
            "late",
            0,
            SubscriberOptions::new().settings(|s| s.capacity(1024)),
            move |n: &u64| {
                out.lock().unwrap().push(*n);
                Ok::<(), String>(())
            },
        )
        .unwrap();
        publishing.join().unwrap();
        let reports = bus.shutdown().unwrap();
        let late = reports.iter().find(|r| r.name == "late").unwrap();
        let expected: Vec<u64> = (1..=MESSAGES).collect();
        assert_exactly(
            &seen.lock().unwrap(),
            &expected,
            &format!("iteration {iteration} (joined after {join_after})"),
        );
        assert_eq!(late.last_sequence, MESSAGES);
    }
}
