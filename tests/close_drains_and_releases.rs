//! Closing (or dropping the last handle) delivers every acknowledged event first, joins every
//! thread and releases the store's directory, even while subscription handles are still held.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::time::Duration;

use common::{Seen, cache_hit, config, one_to};
use eventlog::{
    AdminError, AppendError, EventLog, ExpectedVersion, RecordedEvent, SubscribeError,
    SubscriptionOptions,
};

fn slow(seen: &Seen) -> impl FnMut(&RecordedEvent) -> Result<(), String> + Send + 'static {
    let mut record = seen.handler();
    move |event: &RecordedEvent| {
        std::thread::sleep(Duration::from_micros(300));
        record(event)
    }
}

#[test]
fn close_delivers_everything_and_frees_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path())).unwrap();
    let seen = Seen::default();
    let subscription = log
        .subscribe(
            "slow",
            SubscriptionOptions::new().bus(|b| b.capacity(2)),
            slow(&seen),
        )
        .unwrap();
    let other = log.clone();
    for n in 0..200 {
        log.append_own(ExpectedVersion::Any, vec![cache_hit("c", n)])
            .unwrap();
    }
    let reports = log.close().unwrap();
    assert_eq!(reports[0].last_sequence, 200);
    assert_eq!(seen.positions(), one_to(200));

    // Every handle is closed; the subscription handle only reports it.
    assert!(other.is_closed());
    assert!(matches!(
        other.append_own(ExpectedVersion::Any, vec![cache_hit("c", 0)]),
        Err(AppendError::Closed)
    ));
    assert!(matches!(other.admin().metrics(), Err(AdminError::Closed)));
    assert!(matches!(
        subscription.unsubscribe(),
        Err(SubscribeError::Closed)
    ));
    assert!(matches!(other.close(), Err(AdminError::Closed)));

    // The directory is free while the old handles are still alive.
    let reopened = match EventLog::open(config(dir.path())) {
        Ok(log) => log,
        Err(e) => panic!("reopen: {e:?}"),
    };
    assert_eq!(reopened.last_position().unwrap().get(), 200);
    reopened.close().unwrap();
}

#[test]
fn dropping_the_last_handle_closes_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Seen::default();
    {
        let log = EventLog::open(config(dir.path())).unwrap();
        log.subscribe(
            "slow",
            SubscriptionOptions::new().bus(|b| b.capacity(2)),
            slow(&seen),
        )
        .unwrap();
        for n in 0..100 {
            log.append_own(ExpectedVersion::Any, vec![cache_hit("c", n)])
                .unwrap();
        }
    }
    assert_eq!(seen.positions(), one_to(100));
    let reopened = EventLog::open(config(dir.path())).unwrap();
    assert_eq!(reopened.last_position().unwrap().get(), 100);
}
