//! A slow subscription with a tiny queue falls behind without slowing the writer, then catches
//! up from the store: nothing lost, nothing twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::time::{Duration, Instant};

use common::{Seen, cache_hit, config, one_to, wait_until};
use eventlog::{EventLog, ExpectedVersion, RecordedEvent, SubscriberState, SubscriptionOptions};

const EVENTS: u64 = 400;
const HANDLER_PAUSE: Duration = Duration::from_millis(2);

#[test]
fn slow_subscriber_lags_without_blocking_the_writer_then_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let seen = Seen::default();
    let mut record = seen.handler();
    log.subscribe(
        "slow",
        SubscriptionOptions::new().bus(|b| b.capacity(4)),
        move |event: &RecordedEvent| {
            std::thread::sleep(HANDLER_PAUSE);
            record(event)
        },
    )
    .unwrap();

    let started = Instant::now();
    for n in 0..EVENTS {
        log.append_own(ExpectedVersion::Any, vec![cache_hit("c", n)])
            .unwrap();
    }
    let appending = started.elapsed();
    let handled_when_done = seen.len() as u64;
    // The handler alone needs EVENTS × 2 ms = 800 ms; the writer did not wait for it.
    assert!(
        appending < HANDLER_PAUSE * EVENTS as u32 / 2,
        "appending took {appending:?}"
    );
    assert!(
        handled_when_done < EVENTS / 2,
        "the subscriber kept up ({handled_when_done})"
    );

    assert!(wait_until(Duration::from_secs(30), || seen.len() as u64 >= EVENTS));
    assert_eq!(seen.positions(), one_to(EVENTS));
    assert!(wait_until(Duration::from_secs(5), || {
        let health = &log.health()[0];
        health.state == SubscriberState::Live && health.lag == 0
    }));
    let health = &log.health()[0];
    assert!(health.counts.catch_ups > 0, "{health:?}");
    assert_eq!(health.lag, 0);

    // Live again: new events still arrive, once.
    log.append_own(ExpectedVersion::Any, vec![cache_hit("c", EVENTS)])
        .unwrap();
    let reports = log.close().unwrap();
    assert_eq!(seen.positions(), one_to(EVENTS + 1));
    assert_eq!(reports[0].counts.delivered, EVENTS + 1);
}
