//! Checkpoints: exported while appends continue, verified, imported into a new directory; damaged
//! files are refused with a typed error; listed and pruned.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use events_sled::{
    CheckpointError, CheckpointPolicy, ExpectedVersion, StreamRead, import_checkpoint,
    list_checkpoints, prune_checkpoints, verify_checkpoint,
};

fn filled(dir: &tempfile::TempDir, n: u64) -> events_sled::Store {
    let store = open(dir);
    for i in 1..=n {
        store
            .append(ExpectedVersion::Any, vec![hit(&format!("s{}", i % 7), i)])
            .unwrap();
    }
    store
}

#[test]
fn export_while_appending_is_consistent_and_imports() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(&dir, 500);
    store.save_snapshot("cache", "s1", 3, 1, b"state").unwrap();
    store
        .commit_consumer("projector", 120, b"proj", false)
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let store = store.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut n = 10_000;
            while !stop.load(Ordering::Relaxed) {
                store
                    .append(ExpectedVersion::Any, vec![hit("busy", n)])
                    .unwrap();
                n += 1;
            }
        })
    };
    let file = dir.path().join("out").join("one.evlc");
    let manifest = store.export_checkpoint(&file).unwrap();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(manifest.last_position >= 500);
    assert_eq!(manifest.snapshots, 1);
    assert_eq!(manifest.consumers, 1);
    assert_eq!(verify_checkpoint(&file).unwrap(), manifest);

    let restored_dir = tempfile::tempdir().unwrap();
    let into = restored_dir.path().join("restored");
    import_checkpoint(&file, &into, None).unwrap();
    let restored = events_sled::Store::open(events_sled::StoreConfig::new(&into)).unwrap();
    assert_eq!(restored.last_position(), manifest.last_position);
    let original: Vec<_> = store
        .read_log(1, Some(manifest.last_position as usize))
        .map(Result::unwrap)
        .collect();
    let copy: Vec<_> = restored.read_log(1, None).map(Result::unwrap).collect();
    assert_eq!(original, copy);
    let s3: Vec<_> = restored
        .read_stream("cache", "s3", StreamRead::forwards())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        s3.len() as u64,
        restored.stream_version("cache", "s3").unwrap()
    );
    assert_eq!(
        restored
            .load_snapshot("cache", "s1", 1)
            .unwrap()
            .unwrap()
            .state,
        b"state"
    );
    assert_eq!(
        restored.consumer("projector").unwrap().unwrap().state,
        b"proj"
    );
    let report = restored.verify().unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.chain_head, manifest.chain_head);
}

#[test]
fn import_refuses_a_non_empty_target() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(&dir, 5);
    let file = dir.path().join("c.evlc");
    store.export_checkpoint(&file).unwrap();
    let target = tempfile::tempdir().unwrap();
    std::fs::write(target.path().join("something"), b"x").unwrap();
    assert!(matches!(
        import_checkpoint(&file, target.path(), None),
        Err(CheckpointError::TargetNotEmpty { .. })
    ));
}

#[test]
fn every_truncation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(&dir, 40);
    let file = dir.path().join("c.evlc");
    store.export_checkpoint(&file).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let cut_file = dir.path().join("cut.evlc");
    for cut in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
        std::fs::write(&cut_file, &bytes[..cut]).unwrap();
        assert!(
            matches!(
                verify_checkpoint(&cut_file),
                Err(CheckpointError::Invalid { .. })
            ),
            "truncation at {cut} accepted"
        );
    }
}

#[test]
fn every_flipped_byte_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(&dir, 20);
    let file = dir.path().join("c.evlc");
    store.export_checkpoint(&file).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let bad_file = dir.path().join("bad.evlc");
    for at in (0..bytes.len()).step_by(3) {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x40;
        std::fs::write(&bad_file, &damaged).unwrap();
        let result = verify_checkpoint(&bad_file);
        assert!(
            matches!(result, Err(CheckpointError::Invalid { .. })),
            "flip at byte {at} accepted: {result:?}"
        );
        let target = tempfile::tempdir().unwrap();
        assert!(import_checkpoint(&bad_file, &target.path().join("x"), None).is_err());
    }
}

#[test]
fn a_missing_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        verify_checkpoint(&dir.path().join("nope.evlc")),
        Err(CheckpointError::Io { .. })
    ));
}

#[test]
fn checkpoints_are_listed_and_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(&dir, 10);
    let (first, _) = store.checkpoint().unwrap();
    store
        .append(ExpectedVersion::Any, vec![hit("x", 1)])
        .unwrap();
    let (second, _) = store.checkpoint().unwrap();
    let listed = store.list_checkpoints().unwrap();
    assert_eq!(
        listed.iter().map(|c| c.path.clone()).collect::<Vec<_>>(),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(listed[1].manifest.as_ref().unwrap().last_position, 11);
    let checkpoint_dir = store.config().checkpoint_dir();
    assert!(prune_checkpoints(&checkpoint_dir, 1).unwrap().is_empty());
    // The newest checkpoint that verifies is never pruned.
    assert_eq!(prune_checkpoints(&checkpoint_dir, 0).unwrap(), vec![first]);
    let left = list_checkpoints(&checkpoint_dir).unwrap();
    assert_eq!(
        left.iter().map(|c| c.path.clone()).collect::<Vec<_>>(),
        vec![second]
    );
    assert_eq!(store.metrics().checkpoints_created, 2);
}

#[test]
fn growth_past_the_threshold_exports_automatically() {
    let dir = tempfile::tempdir().unwrap();
    let store = events_sled::Store::open(config(&dir).checkpoints(CheckpointPolicy {
        every_events: Some(50),
        ..CheckpointPolicy::default()
    }))
    .unwrap();
    let wait_for = |count: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while store.list_checkpoints().unwrap().len() < count {
            assert!(
                std::time::Instant::now() < deadline,
                "no automatic checkpoint"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    for i in 1..=60 {
        store
            .append(ExpectedVersion::Any, vec![hit("a", i)])
            .unwrap();
    }
    wait_for(1);
    for i in 61..=80 {
        store
            .append(ExpectedVersion::Any, vec![hit("a", i)])
            .unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        store.list_checkpoints().unwrap().len(),
        1,
        "below the threshold again"
    );
    for i in 81..=130 {
        store
            .append(ExpectedVersion::Any, vec![hit("a", i)])
            .unwrap();
    }
    wait_for(2);
    for info in store.list_checkpoints().unwrap() {
        verify_checkpoint(&info.path).unwrap();
    }
}
