//! Loads snapshot automatically every N applied events, start from the newest snapshot, load as
//! of a version from the newest snapshot at or below it, and skip snapshots that do not decode.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{cache_hit, cache_miss, config};
use eventlog::{Aggregate, Cache, EventLog, EventLogError, ExpectedVersion};

fn append(log: &EventLog, from: u64, count: u64) {
    for n in from..from + count {
        let event = if n.is_multiple_of(4) {
            cache_miss("c", n)
        } else {
            cache_hit("c", n)
        };
        log.append(ExpectedVersion::Any, vec![event]).unwrap();
    }
}

fn versions(log: &EventLog) -> Vec<u64> {
    log.snapshots("cache", "c")
        .unwrap()
        .iter()
        .map(|s| s.version)
        .collect()
}

#[test]
fn snapshots_every_n_events_and_loads_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path()).snapshot_every(Some(10))).unwrap();
    append(&log, 0, 35);
    let first = log.load::<Cache>("c").unwrap();
    assert_eq!(
        (
            first.version,
            first.from_snapshot,
            first.events_applied,
            first.snapshot_saved
        ),
        (35, None, 35, true)
    );
    let again = log.load::<Cache>("c").unwrap();
    assert_eq!(
        (
            again.from_snapshot,
            again.events_applied,
            again.snapshot_saved
        ),
        (Some(35), 0, false)
    );
    assert_eq!(again.state, first.state);

    append(&log, 35, 5);
    let tail = log.load::<Cache>("c").unwrap();
    assert_eq!(
        (tail.from_snapshot, tail.events_applied, tail.snapshot_saved),
        (Some(35), 5, false)
    );
    append(&log, 40, 10);
    let saved = log.load::<Cache>("c").unwrap();
    assert_eq!(
        (saved.version, saved.events_applied, saved.snapshot_saved),
        (50, 15, true)
    );
    assert_eq!(versions(&log), vec![35, 50]);
    assert_eq!(saved.state, log.replay::<Cache>("c").unwrap().state);

    // As of a version: from the newest snapshot at or below it.
    let at = log.load_at::<Cache>("c", 42).unwrap();
    assert_eq!(
        (at.version, at.from_snapshot, at.events_applied),
        (42, Some(35), 7)
    );
    let early = log.load_at::<Cache>("c", 20).unwrap();
    assert_eq!((early.from_snapshot, early.events_applied), (None, 20));
    assert_eq!(early.state.hits + early.state.misses, 20);
    assert!(matches!(
        log.load_at::<Cache>("c", 51),
        Err(EventLogError::VersionNotReached { current: 50, .. })
    ));

    // On request.
    append(&log, 50, 3);
    let snapshot = log.snapshot::<Cache>("c").unwrap();
    assert!(snapshot.snapshot_saved);
    assert_eq!(versions(&log), vec![35, 50, 53]);

    // A snapshot that does not decode is skipped, with the same result.
    log.save_snapshot("cache", "c", 53, Cache::STATE_VERSION, b"garbage")
        .unwrap();
    let fallback = log.load::<Cache>("c").unwrap();
    assert_eq!(
        (fallback.from_snapshot, fallback.events_applied),
        (Some(50), 3)
    );
    assert_eq!(fallback.state, log.replay::<Cache>("c").unwrap().state);
    // A snapshot of another state version is ignored.
    log.save_snapshot("cache", "c", 53, Cache::STATE_VERSION + 1, b"future")
        .unwrap();
    assert_eq!(log.load::<Cache>("c").unwrap().from_snapshot, Some(50));

    let metrics = log.metrics().unwrap().aggregates;
    assert!(metrics.snapshots_unreadable >= 1);
    assert_eq!(metrics.snapshots_saved, 3);
    log.close().unwrap();
}

#[test]
fn no_snapshots_when_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(config(dir.path()).snapshot_every(None)).unwrap();
    append(&log, 0, 30);
    let loaded = log.load::<Cache>("c").unwrap();
    assert_eq!((loaded.events_applied, loaded.snapshot_saved), (30, false));
    assert!(versions(&log).is_empty());
    // An aggregate with no events loads as version 0, the default state.
    let empty = log.load::<Cache>("nobody").unwrap();
    assert_eq!((empty.version, empty.state), (0, Cache::default()));
    log.close().unwrap();
}
