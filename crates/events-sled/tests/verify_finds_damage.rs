//! `verify()` passes on a healthy store and pinpoints tampering: an altered record breaks the hash
//! chain, a damaged index page points at the wrong events, a missing record is a gap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use events_sled::{ExpectedVersion, Store};

fn build(dir: &tempfile::TempDir) {
    let store = Store::open(config(dir).index_flush_events(40).record_target_bytes(1024)).unwrap();
    for i in 1..=300 {
        store
            .append(ExpectedVersion::Any, vec![hit(&format!("s{}", i % 5), i)])
            .unwrap();
    }
    store.save_snapshot("cache", "s1", 10, 1, b"ok").unwrap();
    let report = store.verify().unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.last_position, 300);
    assert_eq!(report.aggregates, 5);
    store.close().unwrap();
}

/// Opens the store's sled database directly, to damage it.
fn raw(dir: &tempfile::TempDir) -> (RawSled, sled::Tree) {
    let db = raw_sled(dir);
    let log = db.open_tree("log").unwrap();
    (db, log)
}

fn log_key(position: u64) -> Vec<u8> {
    let mut key = vec![b'L'];
    key.extend_from_slice(&position.to_be_bytes());
    key
}

#[test]
fn an_altered_payload_breaks_the_chain_where_it_happened() {
    let dir = tempfile::tempdir().unwrap();
    build(&dir);
    let second_record = {
        let (db, log) = raw(&dir);
        let mut records = log.range(log_key(1)..=log_key(u64::MAX));
        let (key, value) = records.next().unwrap().unwrap();
        let (next_key, _) = records.next().unwrap().unwrap();
        let mut altered = value.to_vec();
        let last = altered.len() - 1;
        altered[last] ^= 1; // the last payload byte: still decodes, different content
        log.insert(key, altered).unwrap();
        db.flush().unwrap();
        u64::from_be_bytes(next_key[1..].try_into().unwrap())
    };
    let store = open(&dir);
    let report = store.verify().unwrap();
    assert!(!report.ok);
    let chain: Vec<_> = report.issues.iter().filter(|i| i.kind == "chain").collect();
    assert_eq!(chain.len(), 1, "{report:?}");
    assert_eq!(chain[0].location, format!("position {second_record}"));
}

#[test]
fn a_damaged_index_page_is_named() {
    let dir = tempfile::tempdir().unwrap();
    build(&dir);
    {
        let (db, log) = raw(&dir);
        let (key, _) = log.scan_prefix(b"S").next().unwrap().unwrap();
        // A well-formed page that points version 1 at position 2, which belongs elsewhere.
        log.insert(key, vec![1, 1, 2, 1]).unwrap();
        db.flush().unwrap();
    }
    let store = open(&dir);
    let report = store.verify().unwrap();
    assert!(!report.ok);
    assert!(
        report.issues.iter().all(|i| i.kind == "stream_index"),
        "{report:?}"
    );
    assert!(report.issues[0].location.starts_with('S'));
}

#[test]
fn a_missing_record_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    build(&dir);
    let missing = {
        let (db, log) = raw(&dir);
        let mut records = log.range(log_key(1)..=log_key(u64::MAX));
        records.next();
        let (key, _) = records.next().unwrap().unwrap();
        log.remove(&key).unwrap();
        db.flush().unwrap();
        u64::from_be_bytes(key[1..].try_into().unwrap())
    };
    let store = open(&dir);
    let report = store.verify().unwrap();
    assert!(!report.ok);
    assert_eq!(report.issues[0].kind, "log");
    assert_eq!(report.issues[0].location, format!("position {missing}"));
}

#[test]
fn garbage_in_a_record_is_corruption_on_read_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    build(&dir);
    {
        let (db, log) = raw(&dir);
        log.insert(log_key(1), vec![1, 0, 0, 0, 0, 0, 0, 0, 1, 200, 7])
            .unwrap();
        db.flush().unwrap();
    }
    let store = open(&dir);
    let first = store.read_log(1, Some(1)).next().unwrap();
    assert!(matches!(
        first,
        Err(events_sled::ReadError::Corrupted { .. })
    ));
    assert!(!store.verify().unwrap().ok);
}

#[test]
fn the_chain_head_matches_verify_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    build(&dir);
    let store = open(&dir);
    let head = store.chain_head().unwrap();
    assert_eq!(head.position, 300);
    let report = store.verify().unwrap();
    assert_eq!(report.chain_head, head.hash);
    let (path, manifest) = store.checkpoint().unwrap();
    assert_eq!(manifest.chain_head, head.hash);
    assert!(
        path.to_string_lossy()
            .contains(&format!("{:012}", manifest.last_position)),
        "the file name carries the manifest's position: {}",
        path.display()
    );
    let empty_dir = tempfile::tempdir().unwrap();
    let empty = open(&empty_dir);
    assert_eq!(empty.chain_head().unwrap().hash, "0".repeat(64));
}
