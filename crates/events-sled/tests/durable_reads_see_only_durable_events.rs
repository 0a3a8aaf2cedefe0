//! Durable mode: readers see only durable events. An append whose group is not yet synced is
//! invisible to every read and position accessor until it is durable (a crash could still discard
//! it and give its position to another event), while appends are still sequenced against it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::ops::ControlFlow;
use std::sync::Arc;

use common::*;
use events_sled::{AppendError, AppendResult, Durability, ExpectedVersion, Store, StreamRead};
use tracing_subscriber::layer::SubscriberExt;

fn open_durable(dir: &tempfile::TempDir, faults: &Arc<SyncFaults>) -> Store {
    Store::open(
        config(dir)
            .durability(Durability::Durable)
            .sync_hook(faults.hook()),
    )
    .unwrap()
}

/// What every read of the store shows, as cache keys (and the position accessors).
#[derive(Debug, PartialEq)]
struct Seen {
    last_position: u64,
    stream_version: u64,
    log: Vec<String>,
    scanned: u64,
    forwards: Vec<String>,
    backwards: Vec<String>,
    by_type: Vec<String>,
    aggregate_versions: Vec<u64>,
}

fn seen(store: &Store) -> Seen {
    let keys = |events: &mut dyn Iterator<Item = Result<events_core::RecordedEvent, _>>| {
        events
            .map(|e: Result<_, events_sled::ReadError>| cache_key_of(&e.unwrap()))
            .collect::<Vec<_>>()
    };
    Seen {
        last_position: store.last_position(),
        stream_version: store.stream_version("cache", "a").unwrap(),
        log: keys(&mut store.read_log(1, None)),
        scanned: store
            .scan_log(1, None, |_| ControlFlow::Continue(()))
            .unwrap(),
        forwards: keys(
            &mut store
                .read_stream("cache", "a", StreamRead::forwards())
                .unwrap(),
        ),
        backwards: keys(
            &mut store
                .read_stream("cache", "a", StreamRead::backwards())
                .unwrap(),
        ),
        by_type: keys(&mut store.read_aggregate_type("cache", 1, None).unwrap()),
        aggregate_versions: store
            .aggregates(None)
            .unwrap()
            .into_iter()
            .map(|a| a.version)
            .collect(),
    }
}

fn durable_as_of(keys: &[&str]) -> Seen {
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    let n = keys.len() as u64;
    Seen {
        last_position: n,
        stream_version: n,
        log: keys.clone(),
        scanned: n,
        forwards: keys.clone(),
        backwards: keys.iter().rev().cloned().collect(),
        by_type: keys,
        aggregate_versions: vec![n],
    }
}

/// Appends `a`'s first event, then `second` on another thread with its log sync held: once
/// this returns, position 2 is assigned but not durable.
fn second_append_in_flight(
    store: &Store,
    faults: &SyncFaults,
    second: events_core::NewEvent,
) -> std::thread::JoinHandle<Result<AppendResult, AppendError>> {
    store
        .append(ExpectedVersion::NoStream, vec![hit("a", 1)])
        .unwrap();
    faults.hold_log();
    let appender = {
        let store = store.clone();
        std::thread::spawn(move || store.append(ExpectedVersion::exact(1), vec![second]))
    };
    faults.wait_log_held();
    appender
}

#[test]
fn an_append_in_flight_is_not_read_until_it_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let faults = SyncFaults::new();
    let store = open_durable(&dir, &faults);
    let appender = second_append_in_flight(&store, &faults, hit("a", 2));
    assert_eq!(store.durable_position(), 1);
    assert_eq!(seen(&store), durable_as_of(&["key-1"]));

    faults.release_log();
    let result = appender.join().unwrap().unwrap();
    assert_eq!((result.last_version, result.last_position), (2, 2));
    // Acknowledged means durable, and from then on read.
    assert_eq!(seen(&store), durable_as_of(&["key-1", "key-2"]));
    store.close().unwrap();
}

/// Reports each recognised retry on a channel.
struct RetrySignal(std::sync::mpsc::Sender<()>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RetrySignal {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().name() == "event_store_append_retry_recognised" {
            let _ = self.0.send(());
        }
    }
}

#[test]
fn appends_are_still_checked_against_events_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let faults = SyncFaults::new();
    let store = open_durable(&dir, &faults);
    let second = hit("a", 2);
    let appender = second_append_in_flight(&store, &faults, second.clone());
    assert_eq!(store.stream_version("cache", "a").unwrap(), 1);

    // Another writer expecting version 1 conflicts with the version 2 in flight.
    let conflict = store
        .append(ExpectedVersion::exact(1), vec![hit("a", 3)])
        .unwrap_err();
    assert!(
        matches!(
            conflict,
            AppendError::WrongExpectedVersion { actual: 2, .. }
        ),
        "{conflict:?}"
    );
    // Re-sending the append in flight is recognised as a retry of it, not stored again.
    let (recognised, retries) = std::sync::mpsc::channel();
    let retry = {
        let store = store.clone();
        std::thread::spawn(move || {
            let subscriber = tracing_subscriber::registry().with(RetrySignal(recognised));
            tracing::subscriber::with_default(subscriber, || {
                store.append(ExpectedVersion::Any, vec![second])
            })
        })
    };
    let seen_retry = retries.recv_timeout(FAULT_WAIT);
    faults.release_log();
    assert!(
        seen_retry.is_ok(),
        "the re-sent append was not recognised as a retry while its original was in flight"
    );
    let original = appender.join().unwrap().unwrap();
    let retried = retry.join().unwrap().unwrap();
    assert_eq!(original, retried);
    assert_eq!(store.stream_version("cache", "a").unwrap(), 2);
    assert_eq!(store.last_position(), 2);
    store.close().unwrap();
}
