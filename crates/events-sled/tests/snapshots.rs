//! Snapshots: save, load the latest, keep the last N, skip a stale schema, refuse a future version.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use events_sled::{ExpectedVersion, SnapshotError, StoreConfig};

fn with_events(dir: &tempfile::TempDir, config: StoreConfig, n: u64) -> events_sled::Store {
    let _ = dir;
    let store = events_sled::Store::open(config).unwrap();
    for i in 1..=n {
        store
            .append(ExpectedVersion::Any, vec![hit("a", i)])
            .unwrap();
    }
    store
}

#[test]
fn the_latest_snapshot_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let store = with_events(&dir, config(&dir), 10);
    store.save_snapshot("cache", "a", 4, 1, b"four").unwrap();
    store.save_snapshot("cache", "a", 9, 1, b"nine").unwrap();
    let loaded = store.load_snapshot("cache", "a", 1).unwrap().unwrap();
    assert_eq!((loaded.version, loaded.state.as_slice()), (9, &b"nine"[..]));
    assert!(store.load_snapshot("cache", "nobody", 1).unwrap().is_none());
}

#[test]
fn only_the_last_n_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = with_events(&dir, config(&dir).snapshots_to_keep(2), 10);
    for v in [2, 4, 6, 8] {
        store.save_snapshot("cache", "a", v, 1, &[v as u8]).unwrap();
    }
    let versions: Vec<u64> = store
        .snapshots("cache", "a")
        .unwrap()
        .iter()
        .map(|s| s.version)
        .collect();
    assert_eq!(versions, vec![6, 8]);
}

#[test]
fn a_snapshot_of_another_schema_version_is_skipped_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let store = with_events(&dir, config(&dir), 10);
    store
        .save_snapshot("cache", "a", 3, 1, b"old-layout")
        .unwrap();
    store
        .save_snapshot("cache", "a", 8, 2, b"new-layout")
        .unwrap();
    assert_eq!(
        store
            .load_snapshot("cache", "a", 1)
            .unwrap()
            .unwrap()
            .version,
        3
    );
    assert_eq!(
        store
            .load_snapshot("cache", "a", 2)
            .unwrap()
            .unwrap()
            .version,
        8
    );
    assert!(store.load_snapshot("cache", "a", 3).unwrap().is_none());
}

#[test]
fn a_snapshot_beyond_the_aggregate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = with_events(&dir, config(&dir), 3);
    assert!(matches!(
        store.save_snapshot("cache", "a", 4, 1, b"x"),
        Err(SnapshotError::VersionAhead {
            version: 4,
            current: 3,
            ..
        })
    ));
    assert!(matches!(
        store.save_snapshot("cache", "a", 0, 1, b"x"),
        Err(SnapshotError::VersionZero)
    ));
}

#[test]
fn snapshots_and_their_counters_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = with_events(&dir, config(&dir), 5);
        store.save_snapshot("cache", "a", 5, 1, b"five").unwrap();
        assert_eq!(store.metrics().snapshots_created, 1);
        store.close().unwrap();
    }
    let store = open(&dir);
    assert_eq!(
        store.load_snapshot("cache", "a", 1).unwrap().unwrap().state,
        b"five"
    );
    let metrics = store.metrics();
    assert_eq!(metrics.snapshots_created, 1);
    assert!(metrics.last_snapshot_time.is_some());
}

#[test]
fn ids_that_extend_another_do_not_share_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let store = with_events(&dir, config(&dir), 2);
    store
        .append(ExpectedVersion::Any, vec![hit("a\u{1}x", 1)])
        .ok();
    store
        .append(ExpectedVersion::Any, vec![hit("ab", 1)])
        .unwrap();
    store.save_snapshot("cache", "ab", 1, 1, b"ab").unwrap();
    store.save_snapshot("cache", "a", 2, 1, b"a").unwrap();
    assert_eq!(store.snapshots("cache", "a").unwrap().len(), 1);
    assert_eq!(store.snapshots("cache", "ab").unwrap().len(), 1);
}
