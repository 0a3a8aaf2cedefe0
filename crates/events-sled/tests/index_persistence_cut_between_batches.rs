//! The indexer writes its pages in several sled batches (so that no single batch holds sled's
//! process-wide write lock for long), the watermark with the last. A crash between the batches
//! leaves some streams' and types' pages past the watermark and others not: the store opens,
//! takes up what the pages hold, reads every event exactly once, appends on, and verifies. A cut
//! persistence that may reach past the log's end (a lost log tail) rebuilds the indexes instead.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::{config, hit, raw_sled};
use events_sled::{ExpectedVersion, Store, StreamRead};

/// Streams written to: more than one batch's worth (256), so the cut falls between batches.
const STREAMS: u64 = 600;

type Keys = BTreeMap<Vec<u8>, Vec<u8>>;

/// Every index page (`S` and `T` keys) of the store at `dir`.
fn pages(dir: &tempfile::TempDir) -> Keys {
    let db = raw_sled(dir);
    let log = db.open_tree("log").unwrap();
    let mut keys = Keys::new();
    for tag in [b'S', b'T'] {
        for entry in log.scan_prefix([tag]) {
            let (key, value) = entry.unwrap();
            keys.insert(key.to_vec(), value.to_vec());
        }
    }
    keys
}

fn append_round(store: &Store, round: u64) {
    for s in 0..STREAMS {
        store
            .append(
                ExpectedVersion::Any,
                vec![hit(&format!("s{s}"), round * STREAMS + s)],
            )
            .unwrap();
    }
}

/// A store after two rounds of appends (one event per stream each), whose index persistence of
/// the second round was cut: the pages of the streams `cut_stream` picks (and, with
/// `cut_types`, the type's) are as after the first round, the rest as after the second; the
/// watermark is the first round's, and the cut persistence was going to `going_to`.
fn cut_store(
    cut_stream: impl Fn(&[u8]) -> bool,
    cut_types: bool,
    going_to: impl FnOnce(u64) -> u64,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(&dir)).unwrap();
    append_round(&store, 0);
    store.close().unwrap();
    let first = pages(&dir);
    let store = Store::open(config(&dir)).unwrap();
    append_round(&store, 1);
    let last = store.last_position();
    store.close().unwrap();
    let second = pages(&dir);

    let db = raw_sled(&dir);
    let log = db.open_tree("log").unwrap();
    let mut batch = sled::Batch::default();
    for key in second.keys() {
        let cut = if key[0] == b'S' {
            cut_stream(key)
        } else {
            cut_types
        };
        if cut {
            match first.get(key) {
                Some(value) => batch.insert(key.as_slice(), value.as_slice()),
                None => batch.remove(key.as_slice()),
            }
        }
    }
    batch.insert(b"Mwatermark".as_slice(), &STREAMS.to_be_bytes());
    batch.insert(b"Mindexing".as_slice(), &going_to(last).to_be_bytes());
    log.apply_batch(batch).unwrap();
    db.flush().unwrap();
    drop(log);
    drop(db);
    dir
}

/// Every stream reads back its events once, in order; the type index lists every position
/// once; appends continue each stream's versions; verify is clean, before and after a reopen.
fn check_whole(dir: &tempfile::TempDir, rounds: u64) {
    let store = Store::open(config(dir)).unwrap();
    assert_eq!(store.last_position(), rounds * STREAMS);
    for s in [0, 1, 255, 256, 257, 511, STREAMS - 1] {
        let id = format!("s{s}");
        let positions: Vec<u64> = store
            .read_stream("cache", &id, StreamRead::forwards())
            .unwrap()
            .map(|e| e.unwrap().position)
            .collect();
        let want: Vec<u64> = (0..rounds).map(|r| r * STREAMS + s + 1).collect();
        assert_eq!(positions, want, "{id}");
    }
    let typed: Vec<u64> = store
        .read_aggregate_type("cache", 1, None)
        .unwrap()
        .map(|e| e.unwrap().position)
        .collect();
    assert_eq!(typed, (1..=rounds * STREAMS).collect::<Vec<_>>());
    let report = store.verify().unwrap();
    assert!(report.ok, "{:?}", report.issues);
    let next = store
        .append(ExpectedVersion::exact(rounds), vec![hit("s7", 9_999)])
        .unwrap();
    assert_eq!(next.last_version, rounds + 1);
    store.close().unwrap();

    let store = Store::open(config(dir)).unwrap();
    let report = store.verify().unwrap();
    assert!(report.ok, "{:?}", report.issues);
    assert_eq!(store.stream_version("cache", "s7").unwrap(), rounds + 1);
    assert_eq!(
        store.read_aggregate_type("cache", 1, None).unwrap().count() as u64,
        rounds * STREAMS + 1
    );
    store.close().unwrap();
}

/// Whether a stream page key belongs to a stream whose id ends in an odd digit (the key ends
/// with the id, then the page's first version as 8 bytes).
fn odd_stream(key: &[u8]) -> bool {
    key.len() > 8 && key[key.len() - 9] % 2 == 1
}

#[test]
fn some_streams_paged_past_the_watermark_the_type_not() {
    let dir = cut_store(odd_stream, true, |last| last);
    check_whole(&dir, 2);
}

#[test]
fn every_stream_and_the_type_paged_past_the_watermark() {
    let dir = cut_store(|_| false, false, |last| last);
    check_whole(&dir, 2);
}

#[test]
fn the_type_paged_past_the_watermark_and_no_stream() {
    let dir = cut_store(|_| true, false, |last| last);
    check_whole(&dir, 2);
}

#[test]
fn a_cut_persistence_that_may_reach_past_the_log_end_rebuilds_the_indexes() {
    // The persistence was going further than the log now reaches (its tail lost with the
    // crash): pages past the watermark cannot be trusted, so all are rebuilt from the log.
    let dir = cut_store(odd_stream, true, |last| last + 1_000);
    check_whole(&dir, 2);
}
