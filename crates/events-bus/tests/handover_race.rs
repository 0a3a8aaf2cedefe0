//! `subscribe_from` while another thread publishes continuously: the hand-over from catch-up to
//! live delivery yields no gap and no duplicate, however the two interleave.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use common::{Publisher, VecSource, assert_exactly};
use events_bus::{Backpressure, Bus, Sequenced, SubscriberOptions, SubscriberState};

const ITERATIONS: u64 = 200;
const MESSAGES: u64 = 400;

#[test]
fn subscribe_from_during_publishing_has_no_gap_and_no_duplicate() {
    let mut total_catch_ups = 0;
    for iteration in 0..ITERATIONS {
        let source = VecSource::<u64>::new();
        let bus = Bus::builder().catch_up_source(Arc::clone(&source)).build();
        let publisher = Publisher {
            bus: bus.clone(),
            source: Arc::clone(&source),
        };
        // Vary where the subscriber joins and how much room it has.
        let join_at = (iteration * 7) % MESSAGES;
        let after = if iteration % 3 == 0 { 0 } else { join_at / 2 };
        let capacity = [1, 2, 4, 1024][(iteration % 4) as usize];
        let backpressure = if iteration % 5 == 0 {
            Backpressure::Block
        } else {
            Backpressure::CatchUp
        };

        let burst = 3 + iteration % 11;
        let publishing = thread::spawn(move || {
            for n in 1..=MESSAGES {
                publisher.publish(n);
                // Bursts that overflow a tiny channel, and pauses in which the subscriber
                // catches up and hands over while publishing goes on.
                if n % burst == 0 {
                    thread::sleep(Duration::from_micros(20));
                }
            }
        });
        while (source.len() as u64) < join_at {
            thread::yield_now();
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let out = Arc::clone(&seen);
        let options = SubscriberOptions::new()
            .settings(|s| s.capacity(capacity))
            .settings(|s| s.backpressure(backpressure))
            .settings(|s| s.catch_up_batch(16));
        bus.subscribe_from("late", after, options, move |n: &u64| {
            out.lock().unwrap().push(*n);
            Ok::<(), String>(())
        })
        .unwrap();
        publishing.join().unwrap();

        let report = bus.shutdown().unwrap().remove(0);
        let expected: Vec<u64> = (after + 1..=MESSAGES).collect();
        assert_exactly(
            &seen.lock().unwrap(),
            &expected,
            &format!(
                "iteration {iteration} (after {after}, join at {join_at}, capacity {capacity}, {backpressure:?})"
            ),
        );
        assert_eq!(report.state, SubscriberState::Finished);
        assert_eq!(report.last_sequence, MESSAGES);
        assert!(report.counts.catch_ups >= 1);
        total_catch_ups += report.counts.catch_ups;
    }
    // The test is only worth something if subscribers lag again after handing over, while
    // publishing goes on (thousands of rounds in practice).
    assert!(
        total_catch_ups > ITERATIONS,
        "only {total_catch_ups} catch-ups: no hand-over raced with publishing"
    );
}

/// A message that notes, each time the bus copies it for a subscriber, what the bus says was
/// last published.
struct Probe {
    sequence: u64,
    bus: Arc<OnceLock<Bus<Probe>>>,
    seen_at_offer: Arc<Mutex<Vec<(u64, u64)>>>,
}

impl Sequenced for Probe {
    fn sequence(&self) -> u64 {
        self.sequence
    }
}

impl Clone for Probe {
    fn clone(&self) -> Self {
        if let Some(bus) = self.bus.get() {
            self.seen_at_offer
                .lock()
                .unwrap()
                .push((self.sequence, bus.last_published()));
        }
        Self {
            sequence: self.sequence,
            bus: Arc::clone(&self.bus),
            seen_at_offer: Arc::clone(&self.seen_at_offer),
        }
    }
}

/// The hand-over relies on the publisher recording a message's sequence as published *before*
/// offering it to any subscriber: a subscriber that finds nothing new under its lock then
/// really gets the next message live.
#[test]
fn a_sequence_is_recorded_as_published_before_it_is_offered() {
    let cell = Arc::new(OnceLock::new());
    let seen_at_offer = Arc::new(Mutex::new(Vec::new()));
    let bus: Bus<Probe> = Bus::new();
    assert!(cell.set(bus.clone()).is_ok());
    bus.subscribe(
        "probe",
        SubscriberOptions::new().settings(|s| s.backpressure(Backpressure::Block)),
        |_: &Probe| Ok::<(), String>(()),
    )
    .unwrap();
    for sequence in 1..=5 {
        bus.publish(Probe {
            sequence,
            bus: Arc::clone(&cell),
            seen_at_offer: Arc::clone(&seen_at_offer),
        })
        .unwrap();
    }
    bus.shutdown().unwrap();
    let seen = seen_at_offer.lock().unwrap();
    assert_eq!(seen.len(), 5);
    for (sequence, published) in seen.iter() {
        assert_eq!(
            sequence, published,
            "offered before being recorded as published"
        );
    }
}
