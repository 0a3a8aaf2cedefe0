//! Durable subscriptions and projections resume after a clean restart right after the last
//! event they acknowledged; a name runs once at a time; a failed event is not acknowledged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::time::Duration;

use common::{Seen, cache_hit, cache_miss, config, one_to, wait_until};
use eventlog::{
    ApplyError, EventLog, EventRegistry, ExpectedVersion, FailurePolicy, Projection, RecordedEvent,
    SubscribeError, SubscriberState, SubscriptionFilter, SubscriptionOptions,
};
use serde::{Deserialize, Serialize};

fn append(log: &EventLog, from: u64, count: u64) {
    for n in from..from + count {
        log.append_own(ExpectedVersion::Any, vec![cache_hit("c", n)])
            .unwrap();
    }
}

#[test]
fn durable_subscription_resumes_after_its_last_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let first = Seen::default();
    let subscription = log
        .subscribe_durable("mailer", SubscriptionFilter::all(), first.handler())
        .unwrap();
    assert!(matches!(
        log.subscribe_durable("mailer", SubscriptionFilter::all(), first.handler()),
        Err(SubscribeError::DuplicateConsumer { .. })
    ));
    append(&log, 0, 10);
    log.close().unwrap();
    assert_eq!(first.positions(), one_to(10));
    drop(subscription);

    let log = EventLog::open(config(dir.path())).unwrap();
    assert_eq!(
        log.admin().consumer("mailer").unwrap().unwrap().position,
        10
    );
    append(&log, 10, 5); // history for the next run
    let second = Seen::default();
    log.subscribe_durable("mailer", SubscriptionFilter::all(), second.handler())
        .unwrap();
    append(&log, 15, 5); // live
    log.close().unwrap();
    assert_eq!(second.positions(), (11..=20).collect::<Vec<_>>());

    // A handler that fails on 23 (policy Stop) acknowledges 21 and 22 only.
    let log = EventLog::open(config(dir.path())).unwrap();
    let third = Seen::default();
    let mut record = third.handler();
    let subscription = log
        .subscribe_durable(
            "mailer",
            SubscriptionOptions::new().bus(|b| b.failure_policy(FailurePolicy::Stop)),
            move |event: &RecordedEvent| {
                if event.position == 23 {
                    return Err("mail server down".to_string());
                }
                record(event)
            },
        )
        .unwrap();
    append(&log, 20, 5);
    assert!(wait_until(Duration::from_secs(10), || {
        subscription
            .health()
            .is_some_and(|h| matches!(h.state, SubscriberState::Stopped { .. }))
    }));
    assert_eq!(
        log.admin().consumer("mailer").unwrap().unwrap().position,
        22
    );
    // Its name is free again once it is unsubscribed.
    subscription.unsubscribe().unwrap();
    let fourth = Seen::default();
    log.subscribe_durable("mailer", SubscriptionFilter::all(), fourth.handler())
        .unwrap();
    log.close().unwrap();
    assert_eq!(third.positions(), vec![21, 22]);
    assert_eq!(fourth.positions(), vec![23, 24, 25]);
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Misses {
    count: u64,
    positions: Vec<u64>,
}

impl Projection for Misses {
    fn apply(&mut self, event: &RecordedEvent, _: &EventRegistry) -> Result<(), ApplyError> {
        self.count += 1;
        self.positions.push(event.position);
        Ok(())
    }
}

#[test]
fn projection_resumes_with_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let filter = SubscriptionFilter::all().event_type("cache_miss");
    let log = EventLog::open(config(dir.path())).unwrap();
    let projection = log.project::<Misses>("misses", filter.clone()).unwrap();
    for n in 0..6_u64 {
        let event = if n.is_multiple_of(2) {
            cache_miss("c", n)
        } else {
            cache_hit("c", n)
        };
        log.append_own(ExpectedVersion::Any, vec![event]).unwrap();
    }
    log.close().unwrap();
    assert_eq!(projection.position(), 5);
    projection.read(|state, position| {
        assert_eq!((state.count, position.get()), (3, 5));
    });

    let log = EventLog::open(config(dir.path())).unwrap();
    let (position, stored) = log.projection_state::<Misses>("misses").unwrap().unwrap();
    assert_eq!((position.get(), &stored.positions[..]), (5, &[1, 3, 5][..]));
    log.append_own(ExpectedVersion::Any, vec![cache_miss("c", 6)])
        .unwrap();
    let projection = log.project::<Misses>("misses", filter).unwrap();
    log.append_own(ExpectedVersion::Any, vec![cache_miss("c", 7)])
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || projection
        .position()
        == 8));
    projection.read(|state, _| assert_eq!(state.positions, vec![1, 3, 5, 7, 8]));
    // A durable subscription's name cannot be read as a projection's.
    log.subscribe_durable("plain", SubscriptionFilter::all(), |_: &RecordedEvent| {
        Ok::<(), String>(())
    })
    .unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        log.admin()
            .consumer("plain")
            .unwrap()
            .is_some_and(|c| c.position == 8)
    }));
    log.close().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    assert!(matches!(
        log.project::<Misses>("plain", SubscriptionFilter::all()),
        Err(SubscribeError::NotAProjection { .. })
    ));
    log.close().unwrap();
}
