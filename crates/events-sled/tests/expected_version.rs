//! Optimistic concurrency: each expected-version kind, and a conflict is its own error with the
//! expected and actual versions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use events_sled::{AppendError, ExpectedVersion};

fn conflict(result: Result<events_sled::AppendResult, AppendError>) -> (ExpectedVersion, u64) {
    match result {
        Err(AppendError::WrongExpectedVersion {
            expected,
            actual,
            aggregate_type,
            aggregate_id,
        }) => {
            assert_eq!(
                (aggregate_type.as_str(), aggregate_id.as_str()),
                ("cache", "a")
            );
            (expected, actual)
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn no_stream_accepts_only_a_new_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .append(ExpectedVersion::NoStream, vec![hit("a", 1)])
        .unwrap();
    assert_eq!(
        conflict(store.append(ExpectedVersion::NoStream, vec![hit("a", 2)])),
        (ExpectedVersion::NoStream, 1)
    );
}

#[test]
fn stream_exists_refuses_a_new_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    assert_eq!(
        conflict(store.append(ExpectedVersion::StreamExists, vec![hit("a", 1)])),
        (ExpectedVersion::StreamExists, 0)
    );
    store
        .append(ExpectedVersion::Any, vec![hit("a", 1)])
        .unwrap();
    let r = store
        .append(ExpectedVersion::StreamExists, vec![hit("a", 2)])
        .unwrap();
    assert_eq!(r.last_version, 2);
}

#[test]
fn exact_must_match_the_current_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .append(ExpectedVersion::exact(0), vec![hit("a", 1), hit("a", 2)])
        .unwrap();
    assert_eq!(
        conflict(store.append(ExpectedVersion::exact(1), vec![hit("a", 3)])),
        (ExpectedVersion::exact(1), 2)
    );
    assert_eq!(
        conflict(store.append(ExpectedVersion::exact(3), vec![hit("a", 3)])),
        (ExpectedVersion::exact(3), 2)
    );
    store
        .append(ExpectedVersion::exact(2), vec![hit("a", 3)])
        .unwrap();
    assert_eq!(store.stream_version("cache", "a").unwrap(), 3);
}

#[test]
fn any_never_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for n in 1..=5 {
        let r = store
            .append(ExpectedVersion::Any, vec![hit("a", n)])
            .unwrap();
        assert_eq!(r.last_version, n);
    }
}

#[test]
fn a_refused_append_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .append(ExpectedVersion::NoStream, vec![hit("a", 1)])
        .unwrap();
    let before = store.last_position();
    let _ = store.append(ExpectedVersion::exact(7), vec![hit("a", 2), hit("a", 3)]);
    assert_eq!(store.last_position(), before);
    assert_eq!(store.stream_version("cache", "a").unwrap(), 1);
    let err = store
        .append(ExpectedVersion::exact(7), vec![hit("a", 2)])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`cache/a` is at version 1, the append expected version 7"
    );
}
