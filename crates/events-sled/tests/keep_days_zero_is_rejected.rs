//! `CheckpointPolicy::keep_days = Some(0)` would have every automatic export delete the checkpoint
//! it just wrote: opening a store with it is refused with a typed configuration error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use events_sled::{CheckpointPolicy, OpenError, Store};

#[test]
fn keep_days_zero_is_an_invalid_setting() {
    let dir = tempfile::tempdir().unwrap();
    let opened = Store::open(config(&dir).checkpoints(CheckpointPolicy {
        every_events: Some(10),
        keep_days: Some(0),
        ..CheckpointPolicy::default()
    }));
    match opened {
        Err(OpenError::InvalidConfig { setting, reason }) => {
            assert_eq!(setting, "checkpoints.keep_days");
            assert!(reason.contains("at least 1"), "{reason}");
        }
        Err(other) => panic!("another error: {other}"),
        Ok(_) => panic!("a store opened with keep_days = 0"),
    }
}

#[test]
fn keep_days_one_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(&dir).checkpoints(CheckpointPolicy {
        every_events: Some(10),
        keep_days: Some(1),
        ..CheckpointPolicy::default()
    }))
    .unwrap();
    store.close().unwrap();
}
