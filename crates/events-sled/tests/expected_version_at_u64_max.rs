//! `ExpectedVersion::exact(u64::MAX)` is an ordinary expectation that no aggregate meets: on an
//! existing stream it is a conflict, never an arithmetic overflow, and re-sending a stored event's
//! id with it is a conflict too, not a "retry" answered with version 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use events_sled::{AppendBatch, AppendError, ExpectedVersion};

fn assert_conflict(result: Result<events_sled::AppendResult, AppendError>, actual_version: u64) {
    match result {
        Err(AppendError::WrongExpectedVersion {
            expected, actual, ..
        }) => {
            assert_eq!(expected, ExpectedVersion::exact(u64::MAX));
            assert_eq!(actual, actual_version);
        }
        other => panic!("expected a version conflict, got {other:?}"),
    }
}

#[test]
fn exact_u64_max_on_an_existing_stream_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .append(ExpectedVersion::NoStream, vec![hit("a", 1), hit("a", 2)])
        .unwrap();
    let position = store.last_position();
    assert_conflict(
        store.append(ExpectedVersion::exact(u64::MAX), vec![hit("a", 3)]),
        2,
    );
    assert_conflict(
        store.append(
            ExpectedVersion::exact(u64::MAX),
            vec![hit("a", 4), hit("a", 5)],
        ),
        2,
    );
    assert_eq!(store.last_position(), position, "nothing was written");
    assert_eq!(store.stream_version("cache", "a").unwrap(), 2);
}

#[test]
fn resending_a_stored_event_id_with_exact_u64_max_is_a_conflict_not_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let first = hit("a", 1);
    store
        .append(ExpectedVersion::NoStream, vec![first.clone()])
        .unwrap();
    // The same id again: a wrapped `u64::MAX + 1` would make this look like a retry of version 0.
    assert_conflict(
        store.append(ExpectedVersion::exact(u64::MAX), vec![first.clone()]),
        1,
    );
    // In a multi-aggregate call too.
    let result = store.append_batches(vec![
        AppendBatch::new(ExpectedVersion::exact(u64::MAX), vec![first]),
        AppendBatch::new(ExpectedVersion::Any, vec![hit("b", 1)]),
    ]);
    assert!(
        matches!(
            result,
            Err(AppendError::WrongExpectedVersion { actual: 1, .. })
        ),
        "{result:?}"
    );
    assert_eq!(store.last_position(), 1, "nothing was written");
}
