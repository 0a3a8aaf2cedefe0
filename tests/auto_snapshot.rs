//! Loads snapshot automatically every N applied events, start from the newest snapshot, load as
//! of a version from the newest snapshot at or below it, and skip snapshots that do not decode.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use common::{cache_hit, cache_miss, config};
use eventlog::{Aggregate, EventLog, ExpectedVersion, LoadError, StreamId, Version};
use omni_domain::Cache;

fn append(log: &EventLog, from: u64, count: u64) {
    for n in from..from + count {
        let event = if n.is_multiple_of(4) {
            cache_miss("c", n)
        } else {
            cache_hit("c", n)
        };
        log.append_own(ExpectedVersion::Any, vec![event]).unwrap();
    }
}

fn versions(log: &EventLog) -> Vec<u64> {
    log.admin()
        .snapshots(&StreamId::new("cache", "c"))
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
            first.version.get(),
            first.from_snapshot.map(Version::get),
            first.events_applied,
            first.snapshot_saved
        ),
        (35, None, 35, true)
    );
    let again = log.load::<Cache>("c").unwrap();
    assert_eq!(
        (
            again.from_snapshot.map(Version::get),
            again.events_applied,
            again.snapshot_saved
        ),
        (Some(35), 0, false)
    );
    assert_eq!(again.state, first.state);

    append(&log, 35, 5);
    let tail = log.load::<Cache>("c").unwrap();
    assert_eq!(
        (
            tail.from_snapshot.map(Version::get),
            tail.events_applied,
            tail.snapshot_saved
        ),
        (Some(35), 5, false)
    );
    append(&log, 40, 10);
    let saved = log.load::<Cache>("c").unwrap();
    assert_eq!(
        (
            saved.version.get(),
            saved.events_applied,
            saved.snapshot_saved
        ),
        (50, 15, true)
    );
    assert_eq!(versions(&log), vec![35, 50]);
    assert_eq!(saved.state, log.replay::<Cache>("c").unwrap().state);

    // As of a version: from the newest snapshot at or below it.
    let at = log.load_at::<Cache>("c", Version(42)).unwrap();
    assert_eq!(
        (
            at.version.get(),
            at.from_snapshot.map(Version::get),
            at.events_applied
        ),
        (42, Some(35), 7)
    );
    let early = log.load_at::<Cache>("c", Version(20)).unwrap();
    assert_eq!(
        (early.from_snapshot.map(Version::get), early.events_applied),
        (None, 20)
    );
    assert_eq!(early.state.hits + early.state.misses, 20);
    assert!(matches!(
        log.load_at::<Cache>("c", Version(51)),
        Err(LoadError::VersionNotReached {
            current: Version(50),
            ..
        })
    ));

    // On request.
    append(&log, 50, 3);
    let snapshot = log.snapshot::<Cache>("c").unwrap();
    assert!(snapshot.snapshot_saved);
    assert_eq!(versions(&log), vec![35, 50, 53]);

    // A snapshot that does not decode is skipped, with the same result.
    log.admin()
        .save_snapshot(
            &StreamId::new("cache", "c"),
            Version(53),
            Cache::STATE_VERSION,
            b"garbage",
        )
        .unwrap();
    let fallback = log.load::<Cache>("c").unwrap();
    assert_eq!(
        (
            fallback.from_snapshot.map(Version::get),
            fallback.events_applied
        ),
        (Some(50), 3)
    );
    assert_eq!(fallback.state, log.replay::<Cache>("c").unwrap().state);
    // A snapshot of another state version is ignored.
    log.admin()
        .save_snapshot(
            &StreamId::new("cache", "c"),
            Version(53),
            Cache::STATE_VERSION + 1,
            b"future",
        )
        .unwrap();
    assert_eq!(
        log.load::<Cache>("c").unwrap().from_snapshot,
        Some(Version(50))
    );

    let metrics = log.admin().metrics().unwrap().aggregates;
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
    assert_eq!((empty.version.get(), empty.state), (0, Cache::default()));
    log.close().unwrap();
}
