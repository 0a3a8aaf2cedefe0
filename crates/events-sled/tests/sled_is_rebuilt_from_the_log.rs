//! sled holds only what the log can rebuild (indexes) plus snapshots and consumer positions.
//! Checked: a store whose sled directory is gone, or whose sled files do not open, opens with
//! every event, version and index rebuilt from the log (the damaged directory set aside, never
//! deleted); `repair_store` rebuilds on demand and carries over the snapshots and consumers the
//! old directory yields; a store in use is not repaired.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use events_sled::{ExpectedVersion, OpenError, Store, repair_store};
use tempfile::TempDir;

/// What a store shows: every event (position, id, aggregate, version), and each aggregate's
/// version as the index reports it.
type Contents = (Vec<(u64, uuid::Uuid, String, u64)>, Vec<u64>);

fn contents(store: &Store) -> Contents {
    let events = store
        .read_log(1, None)
        .map(|e| {
            let e = e.unwrap();
            (
                e.position,
                e.metadata.event_id,
                e.metadata.aggregate_id.clone(),
                e.metadata.version,
            )
        })
        .collect();
    let versions = (0..7)
        .map(|i| store.stream_version("cache", &format!("a{i}")).unwrap())
        .collect();
    (events, versions)
}

/// A store of 7 aggregates (its index flushed part way), a snapshot and a consumer, closed.
fn build(dir: &TempDir) -> (String, Contents) {
    let store = Store::open(config(dir).index_flush_events(50)).unwrap();
    for n in 0..300_u64 {
        store
            .append(ExpectedVersion::Any, vec![hit(&format!("a{}", n % 7), n)])
            .unwrap();
    }
    store.save_snapshot("cache", "a1", 40, 1, b"state").unwrap();
    store.commit_consumer("reader", 250, b"", true).unwrap();
    let id = store.store_id().to_owned();
    let seen = contents(&store);
    store.close().unwrap();
    (id, seen)
}

fn set_aside_dirs(dir: &TempDir) -> usize {
    std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("data.damaged-")
        })
        .count()
}

#[test]
fn a_store_without_its_sled_directory_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (id, before) = build(&dir);
    std::fs::remove_dir_all(dir.path().join("data")).unwrap();
    let store = open(&dir);
    assert_eq!(store.store_id(), id, "the log's id is the store's");
    assert_eq!(contents(&store), before);
    assert!(store.verify().unwrap().ok);
    store
        .append(ExpectedVersion::exact(before.1[0]), vec![hit("a0", 1000)])
        .unwrap();
    store.close().unwrap();
}

/// Damage to sled's files, one kind per case: sled either refuses them (corrupted, or a panic
/// the store catches), and the store sets them aside and rebuilds, or reads them as empty, and
/// the store rebuilds in place. Either way every event, version and index is back.
#[test]
fn sled_files_that_do_not_open_are_rebuilt_from_the_log() {
    let mut set_aside = 0;
    for case in ["garbage db", "garbage conf", "truncated db"] {
        let dir = tempfile::tempdir().unwrap();
        let (id, before) = build(&dir);
        let data = dir.path().join("data");
        let db = data.join("db");
        let len = std::fs::metadata(&db).unwrap().len() as usize;
        match case {
            "garbage db" => std::fs::write(&db, vec![0xA5; len.max(4096)]).unwrap(),
            "garbage conf" => std::fs::write(data.join("conf"), vec![0xA5; 64]).unwrap(),
            _ => std::fs::File::options()
                .write(true)
                .open(&db)
                .unwrap()
                .set_len(len as u64 / 3)
                .unwrap(),
        }
        let store = Store::open(config(&dir)).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(store.store_id(), id, "{case}");
        assert_eq!(contents(&store), before, "{case}");
        assert!(store.verify().unwrap().ok, "{case}");
        store.close().unwrap();
        set_aside += set_aside_dirs(&dir);
    }
    assert!(
        set_aside > 0,
        "no case made sled refuse its files: the set-aside path was not run"
    );
}

#[test]
fn repair_rebuilds_the_indexes_and_keeps_snapshots_and_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let (id, before) = build(&dir);
    let report = repair_store(dir.path()).unwrap();
    assert_eq!(report.last_position, 300);
    assert!(report.salvaged);
    assert_eq!((report.snapshots, report.consumers), (1, 1));
    assert!(report.set_aside.as_ref().unwrap().exists());
    let store = open(&dir);
    assert_eq!(store.store_id(), id);
    assert_eq!(contents(&store), before);
    assert_eq!(
        store
            .load_snapshot("cache", "a1", 1)
            .unwrap()
            .map(|s| s.version),
        Some(40)
    );
    assert_eq!(store.consumer("reader").unwrap().unwrap().position, 250);
    assert!(store.verify().unwrap().ok);
    store.close().unwrap();
}

#[test]
fn a_store_in_use_is_not_repaired() {
    let dir = tempfile::tempdir().unwrap();
    build(&dir);
    let store = open(&dir);
    assert!(matches!(
        repair_store(dir.path()),
        Err(OpenError::Locked { .. })
    ));
    assert_eq!(set_aside_dirs(&dir), 0);
    store.close().unwrap();
}
