//! A checkpoint's consumers and snapshots never run ahead of its records: a projection that
//! commits, or a snapshot saved, while an export runs is restored with a state that is exactly the
//! fold of the restored log up to its position, and the restored store verifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use events_sled::{ExpectedVersion, Store, StoreConfig, import_checkpoint, verify_checkpoint};

const PROJECTION: &str = "projector";

/// The projection's state after folding the log up to `position`: how many events and the sum of
/// their positions and payload lengths. Two different prefixes of the log fold differently.
fn fold(store: &Store, position: u64) -> Vec<u8> {
    let (mut count, mut sum) = (0_u64, 0_u64);
    if position > 0 {
        for event in store.read_log(1, Some(position as usize)) {
            let event = event.unwrap();
            count += 1;
            sum += event.position + event.payload.len() as u64;
        }
    }
    format!("{count}:{sum}").into_bytes()
}

/// The aggregate's state at `version`: the cache keys of its events, in order.
fn aggregate_state(store: &Store, id: &str, version: u64) -> Vec<u8> {
    let keys: Vec<String> = store
        .read_stream("cache", id, events_sled::StreamRead::forwards())
        .unwrap()
        .map(Result::unwrap)
        .take(version as usize)
        .map(|e| cache_key_of(&e))
        .collect();
    keys.join(",").into_bytes()
}

/// Appends `n` events to aggregate `id`, then commits the projection and saves a snapshot at the
/// new end, each with the state folded up to it.
fn advance(store: &Store, id: &str, n: u64) {
    for _ in 0..n {
        let next = store.last_position() + 1;
        store
            .append(ExpectedVersion::Any, vec![hit(id, next)])
            .unwrap();
    }
    let position = store.last_position();
    store
        .commit_consumer(PROJECTION, position, &fold(store, position), false)
        .unwrap();
    let version = store.stream_version("cache", id).unwrap();
    store
        .save_snapshot(
            "cache",
            id,
            version,
            1,
            &aggregate_state(store, id, version),
        )
        .unwrap();
}

/// Imports `file` and checks the restored store: the projection's state is the fold of the
/// restored log up to its position, every snapshot is within its aggregate and holds the state
/// at its version, and `verify()` finds nothing.
fn import_and_check(file: &std::path::Path, ids: &[&str]) {
    let manifest = verify_checkpoint(file).unwrap();
    let target = tempfile::tempdir().unwrap();
    let into = target.path().join("restored");
    import_checkpoint(file, &into, None).unwrap();
    let restored = Store::open(StoreConfig::new(&into)).unwrap();
    assert_eq!(restored.last_position(), manifest.last_position);
    if let Some(projection) = restored.consumer(PROJECTION).unwrap() {
        assert!(projection.position <= manifest.last_position);
        assert_eq!(
            String::from_utf8_lossy(&projection.state),
            String::from_utf8_lossy(&fold(&restored, projection.position)),
            "the projection restored at position {} holds the state of another position",
            projection.position
        );
    }
    for id in ids {
        let current = restored.stream_version("cache", id).unwrap();
        for snapshot in restored.snapshots("cache", id).unwrap() {
            assert!(
                snapshot.version <= current,
                "a snapshot of `cache/{id}` at version {} but the restored aggregate is at {current}",
                snapshot.version
            );
            assert_eq!(
                snapshot.state,
                aggregate_state(&restored, id, snapshot.version)
            );
        }
    }
    let report = restored.verify().unwrap();
    assert!(report.ok, "{report:?}");
    restored.close().unwrap();
}

#[test]
fn a_projection_and_a_snapshot_committed_during_an_export_stay_out_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    advance(&store, "a", 20);
    let file = dir.path().join("during.evlc");
    let mut moved = false;
    // The progress callback runs while the export copies records: the projection commits and a
    // snapshot is saved there, beyond the position the export covers.
    store
        .export_checkpoint_with(&file, &mut |_, _| {
            if !moved {
                moved = true;
                advance(&store, "a", 10);
            }
        })
        .unwrap();
    assert!(moved, "the export reported no progress");
    assert_eq!(store.last_position(), 30);
    store.close().unwrap();
    import_and_check(&file, &["a"]);
}

#[test]
fn exports_while_a_projection_commits_and_snapshots_are_saved_import_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    advance(&store, "a", 200);
    advance(&store, "b", 200);
    let stop = Arc::new(AtomicBool::new(false));
    let projector = {
        let store = store.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut rounds = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                advance(&store, if rounds.is_multiple_of(2) { "a" } else { "b" }, 3);
                rounds += 1;
            }
        })
    };
    for i in 0..3 {
        let file = dir.path().join(format!("busy-{i}.evlc"));
        store.export_checkpoint(&file).unwrap();
        import_and_check(&file, &["a", "b"]);
    }
    stop.store(true, Ordering::Relaxed);
    projector.join().unwrap();
    store.close().unwrap();
}
