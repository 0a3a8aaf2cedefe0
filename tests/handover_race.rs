//! The hand-over race: a catch-up subscription starts from the beginning while appends keep
//! landing; it must switch from history to live with no gap and no duplicate. Repeated 60 times,
//! with a roomy queue and a tiny one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::time::Duration;

use common::{Seen, cache_hit, config, one_to, wait_until};
use eventlog::{EventLog, ExpectedVersion, Position, SubscriptionOptions};

const ROUNDS: u64 = 60;
const APPENDS_PER_ROUND: u64 = 80;

#[test]
fn catch_up_hands_over_to_live_without_gap_or_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    for round in 0..ROUNDS {
        let appender = {
            let log = log.clone();
            std::thread::spawn(move || {
                for n in 0..APPENDS_PER_ROUND {
                    log.append_own(
                        ExpectedVersion::Any,
                        vec![cache_hit(&format!("a{}", n % 5), n)],
                    )
                    .unwrap();
                }
            })
        };
        // Subscribe somewhere in the middle of the appends.
        std::thread::sleep(Duration::from_micros(round * 37 % 1500));
        let seen = Seen::default();
        let capacity = if round.is_multiple_of(2) { 1024 } else { 2 };
        let subscription = log
            .subscribe_from(
                format!("race-{round}"),
                Position::START,
                SubscriptionOptions::new().bus(move |b| b.capacity(capacity)),
                seen.handler(),
            )
            .unwrap();
        appender.join().unwrap();
        let last = log.last_position().unwrap().get();
        assert!(
            wait_until(Duration::from_secs(20), || seen.len() as u64 >= last),
            "round {round}: {} of {last} delivered",
            seen.len()
        );
        let report = subscription.unsubscribe().unwrap();
        assert_eq!(seen.positions(), one_to(last), "round {round}");
        assert_eq!(report.last_sequence, last, "round {round}");
    }
    log.close().unwrap();
}
