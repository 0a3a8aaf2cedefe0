//! An append across several aggregates is atomic: all batches are stored at consecutive positions,
//! or none is.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use events_sled::{AppendBatch, AppendError, ExpectedVersion, StreamRead};

#[test]
fn all_batches_land_at_consecutive_positions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .append(ExpectedVersion::Any, vec![hit("b", 0)])
        .unwrap();
    let results = store
        .append_batches(vec![
            AppendBatch::new(ExpectedVersion::NoStream, vec![hit("a", 1), hit("a", 2)]),
            AppendBatch::new(ExpectedVersion::exact(1), vec![hit("b", 3)]),
        ])
        .unwrap();
    assert_eq!(
        (results[0].first_position, results[0].last_position),
        (2, 3)
    );
    assert_eq!((results[1].first_position, results[1].last_version), (4, 2));
}

#[test]
fn one_conflict_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .append(ExpectedVersion::Any, vec![hit("b", 0)])
        .unwrap();
    let err = store
        .append_batches(vec![
            AppendBatch::new(ExpectedVersion::NoStream, vec![hit("a", 1)]),
            AppendBatch::new(ExpectedVersion::NoStream, vec![hit("b", 2)]),
        ])
        .unwrap_err();
    assert!(
        matches!(err, AppendError::WrongExpectedVersion { ref aggregate_id, actual: 1, .. } if aggregate_id == "b")
    );
    assert_eq!(store.last_position(), 1);
    assert_eq!(store.stream_version("cache", "a").unwrap(), 0);
    assert_eq!(
        store
            .read_stream("cache", "a", StreamRead::forwards())
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn one_invalid_event_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut bad = hit("b", 2);
    bad.aggregate_id = String::new();
    let err = store
        .append_batches(vec![
            AppendBatch::new(ExpectedVersion::Any, vec![hit("a", 1)]),
            AppendBatch::new(ExpectedVersion::Any, vec![bad]),
        ])
        .unwrap_err();
    assert!(matches!(err, AppendError::Invalid { index: 1, .. }));
    assert_eq!(store.last_position(), 0);
}

#[test]
fn the_same_aggregate_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let err = store
        .append_batches(vec![
            AppendBatch::new(ExpectedVersion::Any, vec![hit("a", 1)]),
            AppendBatch::new(ExpectedVersion::Any, vec![hit("a", 2)]),
        ])
        .unwrap_err();
    assert!(matches!(err, AppendError::DuplicateAggregate { .. }));
}

#[test]
fn mixed_aggregates_in_one_batch_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let err = store
        .append(ExpectedVersion::Any, vec![hit("a", 1), hit("b", 2)])
        .unwrap_err();
    assert!(matches!(err, AppendError::Invalid { index: 1, .. }));
}

#[test]
fn empty_appends_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    assert!(matches!(
        store.append(ExpectedVersion::Any, vec![]),
        Err(AppendError::Empty)
    ));
    assert!(matches!(
        store.append_batches(vec![]),
        Err(AppendError::Empty)
    ));
}

#[test]
fn oversized_appends_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let limits = events_sled::StoreLimits {
        max_events_per_append: 2,
        ..events_sled::StoreLimits::default()
    };
    let store = events_sled::Store::open(config(&dir).limits(limits)).unwrap();
    let err = store
        .append(
            ExpectedVersion::Any,
            vec![hit("a", 1), hit("a", 2), hit("a", 3)],
        )
        .unwrap_err();
    assert!(matches!(
        err,
        AppendError::TooLarge {
            what: "event count",
            size: 3,
            max: 2
        }
    ));
}
