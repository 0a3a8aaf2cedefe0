//! Opening refuses bad settings, a store in use, a newer format and damaged files with typed
//! errors, and never panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use events_sled::{OpenError, Store, StoreConfig, StoreLimits};

#[test]
fn settings_out_of_range_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, StoreConfig)> = vec![
        ("cache_capacity", config(&dir).cache_capacity(10)),
        (
            "flush_interval",
            config(&dir).flush_interval(Duration::ZERO),
        ),
        ("record_target_bytes", config(&dir).record_target_bytes(10)),
        ("index_flush_events", config(&dir).index_flush_events(0)),
        ("snapshots_to_keep", config(&dir).snapshots_to_keep(0)),
        ("segment_size", config(&dir).segment_size(1000)),
        ("max_cached_streams", config(&dir).max_cached_streams(0)),
        (
            "limits.max_events_per_append",
            config(&dir).limits(StoreLimits {
                max_events_per_append: 0,
                ..StoreLimits::default()
            }),
        ),
        ("path", StoreConfig::new("")),
    ];
    for (setting, config) in cases {
        match Store::open(config) {
            Err(OpenError::InvalidConfig { setting: named, .. }) => assert_eq!(named, setting),
            other => panic!("{setting}: {other:?}"),
        }
    }
}

#[test]
fn a_store_in_use_is_reported_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(&dir);
    match Store::open(config(&dir)) {
        Err(e @ OpenError::Locked { .. }) => assert!(e.to_string().contains("in use")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    open(&dir).close().unwrap();
    {
        let db = raw_sled(&dir);
        db.open_tree("log")
            .unwrap()
            .insert(b"Mformat", &99_u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(
        Store::open(config(&dir)),
        Err(OpenError::FormatTooNew {
            found: 99,
            supported: events_sled::STORE_FORMAT
        })
    ));
}

/// sled holds only what the log can rebuild: indexes reaching past the log's end (a power loss
/// in buffered mode can keep sled's pages and lose the segment bytes they cover) are rebuilt.
#[test]
fn indexes_beyond_the_log_are_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .append(events_sled::ExpectedVersion::Any, vec![hit("a", 1)])
        .unwrap();
    store.close().unwrap();
    {
        let db = raw_sled(&dir);
        db.open_tree("log")
            .unwrap()
            .insert(b"Mwatermark", &500_u64.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(config(&dir)).unwrap();
    assert_eq!(store.stream_version("cache", "a").unwrap(), 1);
    store
        .append(events_sled::ExpectedVersion::exact(1), vec![hit("a", 2)])
        .unwrap();
    let report = store.verify().unwrap();
    assert!(report.ok, "{report:?}");
    store.close().unwrap();
    let store = Store::open(config(&dir)).unwrap();
    assert_eq!(store.stream_version("cache", "a").unwrap(), 2);
    assert!(store.verify().unwrap().ok);
}

#[test]
fn damaged_files_give_an_error_never_a_panic() {
    for seed in 0..12_u64 {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        for i in 0..200 {
            store
                .append(events_sled::ExpectedVersion::Any, vec![hit("a", i)])
                .unwrap();
        }
        store.close().unwrap();
        let db_file = dir.path().join("data").join("db");
        let mut bytes = std::fs::read(&db_file).unwrap();
        // Scribble over a deterministic spread of bytes.
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (x as usize) % bytes.len();
            bytes[at] ^= (x >> 32) as u8 | 1;
        }
        std::fs::write(&db_file, &bytes).unwrap();
        // Either it opens (and then verify reports), or it fails with a typed error.
        if let Ok(store) = Store::open(config(&dir)) {
            let _ = store.verify();
            let _ = store.read_log(1, None).count();
        }
    }
}

#[test]
fn a_store_reopens_with_the_segment_size_it_was_created_with() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(&dir).segment_size(2 << 20)).unwrap();
    store
        .append(events_sled::ExpectedVersion::Any, vec![hit("a", 1)])
        .unwrap();
    store.close().unwrap();
    let store = Store::open(config(&dir)).unwrap();
    assert_eq!(store.last_position(), 1);
}
