//! Pruning takes any age in days, `u32::MAX` included: an age reaching before the earliest time
//! the clock can represent prunes nothing, instead of overflowing the date arithmetic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use events_sled::{CheckpointPolicy, ExpectedVersion, Store, list_checkpoints, prune_checkpoints};

#[test]
fn pruning_older_than_u32_max_days_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .append(ExpectedVersion::Any, vec![hit("a", 1)])
        .unwrap();
    store.checkpoint().unwrap();
    store
        .append(ExpectedVersion::Any, vec![hit("a", 2)])
        .unwrap();
    store.checkpoint().unwrap();
    let checkpoints = dir.path().join("checkpoints");
    assert_eq!(
        store.prune_checkpoints(u32::MAX).unwrap(),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(prune_checkpoints(&checkpoints, u32::MAX).unwrap().len(), 0);
    assert_eq!(list_checkpoints(&checkpoints).unwrap().len(), 2);
    store.close().unwrap();
}

#[test]
fn automatic_checkpoints_keeping_u32_max_days_keep_coming() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(&dir).checkpoints(CheckpointPolicy {
        every_events: Some(5),
        keep_days: Some(u32::MAX),
        ..CheckpointPolicy::default()
    }))
    .unwrap();
    let checkpoints = dir.path().join("checkpoints");
    // Each automatic export is followed by a prune: the checkpointer must survive it and export
    // again when the store has grown again.
    for round in 1..=3_u64 {
        for i in 1..=5 {
            store
                .append(ExpectedVersion::Any, vec![hit("a", round * 10 + i)])
                .unwrap();
        }
        assert!(
            wait_until(std::time::Duration::from_secs(30), || {
                list_checkpoints(&checkpoints).map_or(0, |c| c.len()) >= round as usize
            }),
            "no automatic checkpoint number {round} within 30 s"
        );
    }
    assert!(store.verify().unwrap().ok);
    store.close().unwrap();
}
