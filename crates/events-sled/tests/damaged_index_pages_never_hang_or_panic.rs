//! A damaged index page is a `Corrupted` finding, never a hang nor a panic: a run reaching far past
//! the log's end does not keep `verify()` walking it, and a page key whose first version is near
//! `u64::MAX` makes appends, reads and `verify()` report corruption instead of overflowing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use common::*;
use events_sled::{AppendError, ExpectedVersion, ReadError, Store, VerifyReport};

/// Long enough for any healthy verify or append on this small store on a loaded machine; a walk
/// of a 2^40 run takes hours.
const TIMEOUT: Duration = Duration::from_secs(60);

/// 50 events over 5 aggregates, every index page persisted (the store is closed).
fn build(dir: &tempfile::TempDir) {
    let store = Store::open(config(dir).index_flush_events(10)).unwrap();
    for i in 1..=50 {
        store
            .append(ExpectedVersion::Any, vec![hit(&format!("s{}", i % 5), i)])
            .unwrap();
    }
    assert!(store.verify().unwrap().ok);
    store.close().unwrap();
}

/// Runs `change` on the store's raw sled `log` tree, then waits until sled lets go of its lock.
fn damage(dir: &tempfile::TempDir, change: impl FnOnce(&sled::Tree)) {
    let db = raw_sled(dir);
    let log = db.open_tree("log").unwrap();
    change(&log);
    db.flush().unwrap();
}

/// A built store whose stream `cache/s1` has a page at `first_version` with `runs` written over
/// its index.
fn store_with_damaged_s1_page(first_version: u64, runs: &[(u64, u64)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    build(&dir);
    damage(&dir, |log| {
        log.insert(
            events_sled::fuzz::stream_page_key("cache", "s1", first_version),
            page(runs),
        )
        .unwrap();
    });
    dir
}

/// An index page: `(gap, length)` runs, as `record.rs` lays them out.
fn page(runs: &[(u64, u64)]) -> Vec<u8> {
    let mut bytes = vec![1];
    varint(&mut bytes, runs.len() as u64);
    for &(gap, len) in runs {
        varint(&mut bytes, gap);
        varint(&mut bytes, len);
    }
    bytes
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Runs `f` on another thread, failing the test if it panics or has not returned within the
/// timeout (a hang must fail the test, not stall the suite).
fn within_timeout<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(value) => value,
        Err(RecvTimeoutError::Timeout) => panic!("{what} did not return within {TIMEOUT:?}"),
        Err(RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

fn verify_within_timeout(store: Store) -> VerifyReport {
    within_timeout("verify()", move || store.verify()).unwrap()
}

/// Appends one event to `cache/{id}` on another thread; the store comes back with the result.
fn append_within_timeout(
    store: Store,
    id: &'static str,
) -> (Store, Result<events_sled::AppendResult, AppendError>) {
    within_timeout("append()", move || {
        let result = store.append(ExpectedVersion::Any, vec![hit(id, 99)]);
        (store, result)
    })
}

#[test]
fn verify_reports_runs_past_the_log_end_without_walking_them() {
    let dir = tempfile::tempdir().unwrap();
    build(&dir);
    let (stream_key, type_key) = (events_sled::fuzz::stream_page_key("cache", "s1", 1), {
        let mut key = vec![b'T', 0, 5];
        key.extend_from_slice(b"cache");
        key.extend_from_slice(&1_u64.to_be_bytes());
        key
    });
    damage(&dir, |log| {
        assert!(log.contains_key(&stream_key).unwrap());
        assert!(log.contains_key(&type_key).unwrap());
        // Well-formed pages whose one run is 2^40 positions long.
        log.insert(&stream_key, page(&[(1, 1 << 40)])).unwrap();
        log.insert(&type_key, page(&[(1, 1 << 40)])).unwrap();
    });
    let report = verify_within_timeout(open(&dir));
    assert!(!report.ok);
    for kind in ["stream_index", "type_index"] {
        assert!(
            report
                .issues
                .iter()
                .any(|i| i.kind == kind && i.detail.contains("past the log's end")),
            "no {kind} issue about the log's end: {report:#?}"
        );
    }
}

#[test]
fn append_after_a_page_key_near_u64_max_is_corruption_not_a_panic() {
    // The stream's last page claims versions from u64::MAX - 1 on, at positions 1..=5.
    let dir = store_with_damaged_s1_page(u64::MAX - 1, &[(1, 5)]);
    let (store, appended) = append_within_timeout(open(&dir), "s1");
    assert!(
        matches!(
            appended,
            Err(AppendError::Read(ReadError::Corrupted { .. }))
        ),
        "{appended:?}"
    );
    assert!(
        matches!(
            store.stream_version("cache", "s1"),
            Err(ReadError::Corrupted { .. })
        ),
        "{:?}",
        store.stream_version("cache", "s1")
    );
    // Other aggregates are untouched.
    store
        .append(ExpectedVersion::exact(10), vec![hit("s2", 51)])
        .unwrap();
}

#[test]
fn verify_reports_a_page_key_near_u64_max_without_panicking() {
    let dir = store_with_damaged_s1_page(u64::MAX - 1, &[(1, 5)]);
    let report = verify_within_timeout(open(&dir));
    assert!(!report.ok);
    assert!(
        report.issues.iter().all(|i| i.kind == "stream_index"),
        "{report:#?}"
    );
}

/// Writes a page of stream `cache/s1` at `first_version` with `runs`, then appends to `s1`: the
/// append is refused as corruption and writes nothing.
fn append_after_damaged_page_is_corruption(first_version: u64, runs: &[(u64, u64)]) {
    let dir = store_with_damaged_s1_page(first_version, runs);
    let (store, appended) = append_within_timeout(open(&dir), "s1");
    assert!(
        matches!(
            appended,
            Err(AppendError::Read(ReadError::Corrupted { .. }))
        ),
        "{appended:?}"
    );
    assert_eq!(store.last_position(), 50, "nothing was written");
}

#[test]
fn append_after_a_page_beyond_the_log_end_is_corruption() {
    // Version 500 at position 600, in a log of 50: consistent in itself, but past the end.
    append_after_damaged_page_is_corruption(500, &[(600, 1)]);
}

#[test]
fn append_after_a_page_whose_run_lies_past_the_log_end_is_corruption() {
    // The stream's last page: version 11 at position 600, in a log of 50. The version is below
    // the log's end, the position is not.
    append_after_damaged_page_is_corruption(11, &[(600, 1)]);
}
