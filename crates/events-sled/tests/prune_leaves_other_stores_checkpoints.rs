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
#[test]
fn a_checkpoint_names_the_store_it_was_exported_from() {
    let shared = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open_sharing(&dir_a, shared.path());
    let b = open_sharing(&dir_b, shared.path());
    let file_a = checkpoint(&a, 1);
    let file_b = checkpoint(&b, 1);
    let id_a = events_sled::read_manifest(&file_a).unwrap().store_id;
    let id_b = events_sled::read_manifest(&file_b).unwrap().store_id;
    assert!(id_a.is_some() && id_b.is_some());
    assert_ne!(id_a, id_b);
    assert_eq!(id_a.as_deref(), Some(a.store_id()));
    // The id is the store's for good: reopened, it is the same.
    let id = a.store_id().to_string();
    a.close().unwrap();
    let a = open_sharing(&dir_a, shared.path());
    assert_eq!(a.store_id(), id);
    a.close().unwrap();
    b.close().unwrap();
}

/// Rewrites `path` as a checkpoint written before store ids existed: no `store_id` in the
/// manifest, and `source` set to `source`.
fn as_written_before_store_ids(path: &Path, source: &Path) {
    let mut sections = checkpoint_sections(path);
    let (_, manifest) = sections.pop().unwrap();
    let mut manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let fields = manifest.as_object_mut().unwrap();
    assert!(fields.remove("store_id").is_some());
    fields.insert("source".into(), source.display().to_string().into());
    sections.push((b'M', serde_json::to_vec(&manifest).unwrap()));
    write_checkpoint_sections(path, &sections);
    let read = events_sled::verify_checkpoint(path).unwrap();
    assert_eq!(read.store_id, None);
}

#[test]
fn checkpoints_from_before_store_ids_are_told_apart_by_their_store_path() {
    let shared = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open_sharing(&dir_a, shared.path());
    let old_of_a = checkpoint(&a, 1);
    let old_of_b = checkpoint(&a, 2);
    let newest_of_a = checkpoint(&a, 3);
    as_written_before_store_ids(&old_of_a, dir_a.path());
    as_written_before_store_ids(&old_of_b, dir_b.path());
    let removed = a.prune_checkpoints(0).unwrap();
    assert_eq!(removed, vec![old_of_a]);
    assert!(
        old_of_b.exists(),
        "store a deleted a checkpoint naming store b's path"
    );
    assert!(newest_of_a.exists());
    a.close().unwrap();
}

#[test]
fn the_free_function_keeps_each_stores_newest_checkpoint() {
    let shared = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open_sharing(&dir_a, shared.path());
    let b = open_sharing(&dir_b, shared.path());
    let a_files = [checkpoint(&a, 1), checkpoint(&a, 2)];
    let b_files = [checkpoint(&b, 1), checkpoint(&b, 2)];
    a.close().unwrap();
    b.close().unwrap();
    let removed = events_sled::prune_checkpoints(shared.path(), 0).unwrap();
    assert_eq!(removed, vec![a_files[0].clone(), b_files[0].clone()]);
    assert!(a_files[1].exists() && b_files[1].exists());
}
