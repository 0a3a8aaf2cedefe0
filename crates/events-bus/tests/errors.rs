//! The bus refuses bad calls with typed errors, and publishes nothing then.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::VecSource;
use events_bus::{Backpressure, Bus, BusError, FailurePolicy, SubscriberOptions};

fn ok(_: &u64) -> Result<(), String> {
    Ok(())
}

#[test]
fn out_of_order_publishes_are_refused() {
    let bus: Bus<u64> = Bus::new();
    assert!(matches!(
        bus.publish(0),
        Err(BusError::OutOfOrder { last: 0, got: 0 })
    ));
    bus.publish(5).unwrap();
    assert!(matches!(
        bus.publish(5),
        Err(BusError::OutOfOrder { last: 5, got: 5 })
    ));
    assert!(matches!(
        bus.publish(3),
        Err(BusError::OutOfOrder { last: 5, got: 3 })
    ));
    // A batch is checked whole before anything is published.
    assert!(matches!(
        bus.publish_batch([6, 7, 7, 8]),
        Err(BusError::OutOfOrder { last: 7, got: 7 })
    ));
    assert_eq!(bus.last_published(), 5);
    assert_eq!(bus.publish_batch([6, 9, 20]).unwrap(), 3);
    assert_eq!(bus.last_published(), 20);
    assert_eq!(bus.publish_batch(Vec::new()).unwrap(), 0);
}

#[test]
fn catch_up_needs_a_source() {
    let bus: Bus<u64> = Bus::new();
    // CatchUp is the default backpressure.
    assert!(matches!(
        bus.subscribe("s", SubscriberOptions::new(), ok),
        Err(BusError::NoCatchUpSource { name }) if name == "s"
    ));
    assert!(matches!(
        bus.subscribe_from(
            "s",
            0,
            SubscriberOptions::new().settings(|s| s.backpressure(Backpressure::Block)),
            ok
        ),
        Err(BusError::NoCatchUpSource { .. })
    ));
    assert!(bus.health().is_empty());

    let with_source = Bus::builder()
        .catch_up_source(VecSource::<u64>::new())
        .build();
    with_source
        .subscribe("s", SubscriberOptions::new(), ok)
        .unwrap();
    assert_eq!(with_source.shutdown().unwrap().len(), 1);
}

#[test]
fn invalid_options_and_names_are_refused() {
    let bus: Bus<u64> = Bus::builder()
        .catch_up_source(Arc::new(VecSource::new()))
        .build();
    let err = bus
        .subscribe(
            "s",
            SubscriberOptions::new().settings(|s| s.capacity(0)),
            ok,
        )
        .unwrap_err();
    assert!(matches!(
        err,
        BusError::InvalidOptions {
            option: "capacity",
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "invalid subscriber option `capacity`: must be at least 1"
    );
    let zero_attempts = SubscriberOptions::new().settings(|s| {
        s.failure_policy(FailurePolicy::Retry {
            max_attempts: 0,
            backoff: Duration::ZERO,
        })
    });
    assert!(matches!(
        bus.subscribe("s", zero_attempts, ok),
        Err(BusError::InvalidOptions {
            option: "failure_policy",
            ..
        })
    ));
    assert!(matches!(
        bus.subscribe("nul\0name", SubscriberOptions::new(), ok),
        Err(BusError::InvalidName { .. })
    ));
    assert!(bus.health().is_empty());
}

#[test]
fn unknown_subscribers_are_refused() {
    let bus: Bus<u64> = Bus::builder()
        .catch_up_source(VecSource::<u64>::new())
        .build();
    let id = bus.subscribe("s", SubscriberOptions::new(), ok).unwrap();
    bus.unsubscribe(id).unwrap();
    let err = bus.unsubscribe(id).unwrap_err();
    assert!(matches!(err, BusError::UnknownSubscriber { id: got } if got == id));
    bus.shutdown().unwrap();
    assert!(matches!(bus.unsubscribe(id), Err(BusError::ShutDown)));
}
