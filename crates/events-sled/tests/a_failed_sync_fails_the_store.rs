//! A failed sync of the store's data fails the store. Linux reports a writeback error once per
//! open file description: if a consumer commit's, an explicit flush's or a checkpoint export's
//! `fdatasync` gets it and the store carries on, the next sync "succeeds" over lost data. So every
//! later append fails with `AppendError::Failed` until the store is reopened, and what was
//! acknowledged before is intact after the reopen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use events_sled::{AppendError, Durability, ExpectedVersion, Store, StoreConfig, StoreError};

fn durable(dir: &tempfile::TempDir) -> StoreConfig {
    // The flusher never runs during a test: the injected failure is the call's own sync's.
    config(dir)
        .durability(Durability::Durable)
        .flush_interval(Duration::from_secs(3600))
}

/// A store with three acknowledged events, whose next data-file sync fails.
fn store_about_to_fail(dir: &tempfile::TempDir) -> (Store, Arc<SyncFaults>) {
    let faults = SyncFaults::new();
    let store = Store::open(durable(dir).sync_hook(faults.hook())).unwrap();
    for n in 1..=3 {
        store
            .append(ExpectedVersion::Any, vec![hit("a", n)])
            .unwrap();
    }
    faults.fail_next_data_file_sync();
    (store, faults)
}

/// After the failed sync: appends fail with the typed error, a flush cannot "succeed", and a
/// reopened store holds exactly the acknowledged events.
fn assert_failed_then_intact(dir: &tempfile::TempDir, store: Store, faults: &SyncFaults) {
    assert_eq!(
        faults.data_file_failures(),
        1,
        "the injected failure was not hit"
    );
    let append = store.append(ExpectedVersion::Any, vec![hit("a", 4)]);
    assert!(
        matches!(append, Err(AppendError::Failed { .. })),
        "an append after a failed sync: {append:?}"
    );
    let flush = store.flush();
    assert!(
        matches!(flush, Err(StoreError::Failed { .. })),
        "a flush after a failed sync: {flush:?}"
    );
    assert!(matches!(store.close(), Err(StoreError::Failed { .. })));

    let reopened = Store::open(durable(dir)).unwrap();
    let keys: Vec<String> = reopened
        .read_log(1, None)
        .map(|e| cache_key_of(&e.unwrap()))
        .collect();
    assert_eq!(keys, ["key-1", "key-2", "key-3"]);
    let report = reopened.verify().unwrap();
    assert!(report.issues.is_empty(), "{:?}", report.issues);
    reopened
        .append(ExpectedVersion::exact(3), vec![hit("a", 4)])
        .unwrap();
    reopened.close().unwrap();
}

#[test]
fn a_failed_consumer_commit_sync_fails_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = store_about_to_fail(&dir);
    let commit = store.commit_consumer("projection", 3, b"state", true);
    assert!(commit.is_err(), "the durable commit reported {commit:?}");
    assert_failed_then_intact(&dir, store, &faults);
}

#[test]
fn a_failed_explicit_flush_fails_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = store_about_to_fail(&dir);
    let flush = store.flush();
    assert!(
        matches!(flush, Err(StoreError::Failed { .. })),
        "the flush reported {flush:?}"
    );
    assert_failed_then_intact(&dir, store, &faults);
}

#[test]
fn a_failed_checkpoint_sync_fails_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = store_about_to_fail(&dir);
    let exported = store.export_checkpoint(&dir.path().join("export.evlc"));
    assert!(exported.is_err(), "the export reported {exported:?}");
    assert_failed_then_intact(&dir, store, &faults);
}

#[test]
fn a_failed_store_saves_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _faults) = store_about_to_fail(&dir);
    assert!(store.flush().is_err(), "the injected sync failure");
    // Snapshots go to the same sled files whose sync just failed: nothing more is written.
    let saved = store.save_snapshot("cache", "a", 3, 1, b"state at 3");
    assert!(
        matches!(saved, Err(events_sled::SnapshotError::NotWriting { .. })),
        "a snapshot saved on a failed store: {saved:?}"
    );
    assert!(store.load_snapshot("cache", "a", 1).unwrap().is_none());
}
