//! A consumer's committed position never runs ahead of the log: committing a position the log
//! has not reached is refused, and a projection's state found ahead of the log (after damage)
//! is never handed back clamped to the log's end as if it had been folded only that far.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use events_sled::{ExpectedVersion, StoreError};

#[test]
fn committing_a_position_past_the_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for i in 1..=3 {
        store
            .append(ExpectedVersion::Any, vec![hit("a", i)])
            .unwrap();
    }
    match store.commit_consumer("projection", 10, b"folded to 10", false) {
        Err(StoreError::PositionBeyondLog {
            position: 10,
            last_position: 3,
        }) => {}
        other => panic!("committing position 10 of a 3-event log: {other:?}"),
    }
    assert_eq!(store.consumer("projection").unwrap(), None);
    // The log's end itself is fine.
    store
        .commit_consumer("projection", 3, b"folded to 3", false)
        .unwrap();
    assert_eq!(store.consumer("projection").unwrap().unwrap().position, 3);
}

#[test]
fn a_projection_state_ahead_of_the_log_is_not_resumed_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        for i in 1..=5 {
            store
                .append(ExpectedVersion::Any, vec![hit("a", i)])
                .unwrap();
        }
        store
            .commit_consumer("projection", 5, b"folded to 5", false)
            .unwrap();
        store
            .commit_consumer("subscription", 5, b"", false)
            .unwrap();
        store.close().unwrap();
    }
    // Damage: the consumers now claim position 9 of a 5-event log.
    {
        let db = raw_sled(&dir);
        let consumers = db.open_tree("consumers").unwrap();
        for (name, state) in [("projection", &b"folded to 9"[..]), ("subscription", b"")] {
            let mut value = vec![1];
            value.extend_from_slice(&9_u64.to_be_bytes());
            value.extend_from_slice(state);
            consumers.insert(name, value).unwrap();
        }
        db.flush().unwrap();
    }
    let store = open(&dir);
    // State folded past the log's end would be wrong at any position: the projection starts
    // over (its events are all in the log).
    assert_eq!(store.consumer("projection").unwrap(), None);
    // A subscription keeps no state: it resumes at the log's end.
    assert_eq!(store.consumer("subscription").unwrap().unwrap().position, 5);
}
