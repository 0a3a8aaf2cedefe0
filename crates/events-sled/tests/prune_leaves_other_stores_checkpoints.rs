//! Stores sharing one checkpoint directory: a store prunes only the files whose manifest names it
//! (its store id), never another store's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use events_sled::{CheckpointPolicy, ExpectedVersion, Store, list_checkpoints};

fn open_sharing(dir: &tempfile::TempDir, shared: &Path) -> Store {
    Store::open(config(dir).checkpoints(CheckpointPolicy {
        dir: Some(shared.to_path_buf()),
        ..CheckpointPolicy::default()
    }))
    .unwrap()
}

fn checkpoint(store: &Store, n: u64) -> PathBuf {
    store
        .append(ExpectedVersion::Any, vec![hit("a", n)])
        .unwrap();
    store.checkpoint().unwrap().0
}

#[test]
fn a_store_prunes_only_its_own_checkpoints() {
    let shared = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open_sharing(&dir_a, shared.path());
    let b = open_sharing(&dir_b, shared.path());
    let b_files = [checkpoint(&b, 1), checkpoint(&b, 2)];
    let a_files = [checkpoint(&a, 1), checkpoint(&a, 2)];
    let removed = a.prune_checkpoints(0).unwrap();
    assert_eq!(removed, vec![a_files[0].clone()]);
    for file in &b_files {
        assert!(
            file.exists(),
            "store a deleted store b's {}",
            file.display()
        );
    }
    assert!(a_files[1].exists());
    assert_eq!(list_checkpoints(shared.path()).unwrap().len(), 3);
    a.close().unwrap();
    b.close().unwrap();
}
