//! Pruning never deletes the newest checkpoint that passes full verification, however old it is:
//! a newer file whose manifest reads but whose body is damaged does not count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use events_sled::{ExpectedVersion, Store, prune_checkpoints, read_manifest, verify_checkpoint};

/// Appends one event and exports a checkpoint into the store's checkpoint directory, `count`
/// times; returns the files, oldest first.
fn checkpoints(store: &Store, count: u64) -> Vec<PathBuf> {
    (0..count)
        .map(|i| {
            store
                .append(ExpectedVersion::Any, vec![hit("a", i)])
                .unwrap();
            store.checkpoint().unwrap().0
        })
        .collect()
}

/// Flips a byte in the middle of the file's first section, leaving the manifest readable.
fn damage_body(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[20] ^= 0xFF;
    std::fs::write(path, bytes).unwrap();
    assert!(read_manifest(path).is_ok(), "the manifest still reads");
    assert!(verify_checkpoint(path).is_err(), "the body is damaged");
}

fn remaining(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn pruning_everything_older_than_now_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let files = checkpoints(&store, 3);
    let removed = store.prune_checkpoints(0).unwrap();
    assert_eq!(removed, files[..2].to_vec());
    assert_eq!(
        remaining(&store.config().checkpoint_dir()),
        vec![files[2].clone()]
    );
    verify_checkpoint(&files[2]).unwrap();
    store.close().unwrap();
}

#[test]
fn a_newer_damaged_checkpoint_does_not_protect_itself_at_the_cost_of_a_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let files = checkpoints(&store, 3);
    damage_body(&files[2]);
    let removed = store.prune_checkpoints(0).unwrap();
    assert!(
        files[1].exists(),
        "the newest checkpoint that verifies was deleted (removed: {removed:?})"
    );
    verify_checkpoint(&files[1]).unwrap();
    assert!(!files[0].exists());
    assert!(removed.contains(&files[0]));
    store.close().unwrap();
}

#[test]
fn the_free_function_keeps_the_newest_verified_checkpoint_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let files = checkpoints(&store, 2);
    let checkpoint_dir = store.config().checkpoint_dir();
    store.close().unwrap();
    let removed = prune_checkpoints(&checkpoint_dir, 0).unwrap();
    assert_eq!(removed, vec![files[0].clone()]);
    assert_eq!(remaining(&checkpoint_dir), vec![files[1].clone()]);
}
