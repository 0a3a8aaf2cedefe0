//! Appending the same event ids at the same expected version again returns the original result
//! and writes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use events_sled::{AppendBatch, AppendError, ExpectedVersion};

#[test]
fn exact_retry_returns_the_original_result() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .append(ExpectedVersion::NoStream, vec![hit("a", 0)])
        .unwrap();
    let events = vec![hit("a", 1), hit("a", 2)];
    let first = store
        .append(ExpectedVersion::exact(1), events.clone())
        .unwrap();
    store
        .append(ExpectedVersion::Any, vec![hit("b", 9)])
        .unwrap();
    let position = store.last_position();
    let again = store.append(ExpectedVersion::exact(1), events).unwrap();
    assert_eq!(again, first);
    assert_eq!(store.last_position(), position, "nothing was written");
}

#[test]
fn no_stream_retry_returns_the_original_result() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let events = vec![hit("a", 1)];
    let first = store
        .append(ExpectedVersion::NoStream, events.clone())
        .unwrap();
    assert_eq!(
        store.append(ExpectedVersion::NoStream, events).unwrap(),
        first
    );
    assert_eq!(store.last_position(), 1);
}

#[test]
fn any_retry_of_the_last_append_is_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let events = vec![hit("a", 1), hit("a", 2)];
    let first = store.append(ExpectedVersion::Any, events.clone()).unwrap();
    assert_eq!(store.append(ExpectedVersion::Any, events).unwrap(), first);
    assert_eq!(store.last_position(), 2);
}

#[test]
fn any_retry_is_recognised_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let events = vec![hit("a", 1)];
    let first = {
        let store = open(&dir);
        let first = store.append(ExpectedVersion::Any, events.clone()).unwrap();
        store.close().unwrap();
        first
    };
    let store = events_sled::Store::open(config(&dir).index_flush_events(1)).unwrap();
    assert_eq!(store.append(ExpectedVersion::Any, events).unwrap(), first);
    assert_eq!(store.last_position(), 1);
}

#[test]
fn same_ids_at_another_place_are_a_conflict_not_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let events = vec![hit("a", 1)];
    store
        .append(ExpectedVersion::NoStream, events.clone())
        .unwrap();
    store
        .append(ExpectedVersion::exact(1), vec![hit("a", 2)])
        .unwrap();
    let err = store.append(ExpectedVersion::exact(1), events).unwrap_err();
    assert!(matches!(
        err,
        AppendError::WrongExpectedVersion { actual: 2, .. }
    ));
}

#[test]
fn multi_aggregate_retry_returns_every_original_result() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let batches = vec![
        AppendBatch::new(ExpectedVersion::NoStream, vec![hit("a", 1)]),
        AppendBatch::new(ExpectedVersion::NoStream, vec![hit("b", 2), hit("b", 3)]),
    ];
    let first = store.append_batches(batches.clone()).unwrap();
    assert_eq!(store.append_batches(batches).unwrap(), first);
    assert_eq!(store.last_position(), 3);
}
