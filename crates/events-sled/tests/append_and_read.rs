//! Appends get consecutive versions and gap-free positions; reads return them in every direction.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use events_sled::{ExpectedVersion, StreamRead};

#[test]
fn versions_and_positions_are_assigned_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let a1 = store
        .append(ExpectedVersion::NoStream, vec![hit("a", 1), hit("a", 2)])
        .unwrap();
    assert_eq!((a1.first_version, a1.last_version), (1, 2));
    assert_eq!((a1.first_position, a1.last_position), (1, 2));
    let b1 = store
        .append(ExpectedVersion::Any, vec![hit("b", 3)])
        .unwrap();
    assert_eq!((b1.last_version, b1.last_position), (1, 3));
    let a2 = store
        .append(ExpectedVersion::exact(2), vec![hit("a", 4)])
        .unwrap();
    assert_eq!((a2.last_version, a2.last_position), (3, 4));
    assert_eq!(store.stream_version("cache", "a").unwrap(), 3);
    assert_eq!(store.stream_version("cache", "nobody").unwrap(), 0);
    assert_eq!(store.last_position(), 4);
}

#[test]
fn streams_read_forwards_backwards_and_with_limits() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for n in 1..=10 {
        store
            .append(ExpectedVersion::Any, vec![hit("a", n)])
            .unwrap();
        store
            .append(ExpectedVersion::Any, vec![hit("b", 100 + n)])
            .unwrap();
    }
    let keys = |read: StreamRead| -> Vec<String> {
        store
            .read_stream("cache", "a", read)
            .unwrap()
            .map(|e| cache_key_of(&e.unwrap()))
            .collect()
    };
    assert_eq!(keys(StreamRead::forwards()).len(), 10);
    assert_eq!(
        keys(StreamRead::forwards().from(9)),
        vec!["key-9", "key-10"]
    );
    assert_eq!(
        keys(StreamRead::backwards().limit(2)),
        vec!["key-10", "key-9"]
    );
    assert_eq!(
        keys(StreamRead::backwards().from(3)),
        vec!["key-3", "key-2", "key-1"]
    );
    assert_eq!(keys(StreamRead::forwards().from(11)), Vec::<String>::new());
    let versions: Vec<u64> = store
        .read_stream("cache", "b", StreamRead::forwards())
        .unwrap()
        .map(|e| e.unwrap().metadata.version)
        .collect();
    assert_eq!(versions, (1..=10).collect::<Vec<_>>());
}

#[test]
fn reads_survive_reopen_and_index_flushes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = events_sled::Store::open(config(&dir).index_flush_events(7)).unwrap();
        for n in 1..=50 {
            let id = format!("s{}", n % 4);
            store
                .append(ExpectedVersion::Any, vec![hit(&id, n)])
                .unwrap();
        }
        store.close().unwrap();
    }
    let store = events_sled::Store::open(config(&dir).index_flush_events(7)).unwrap();
    assert_eq!(store.last_position(), 50);
    let log: Vec<u64> = store
        .read_log(1, None)
        .map(|e| e.unwrap().position)
        .collect();
    assert_eq!(log, (1..=50).collect::<Vec<_>>());
    for s in 0..4 {
        let id = format!("s{s}");
        let events: Vec<_> = store
            .read_stream("cache", &id, StreamRead::forwards())
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        assert_eq!(
            events.len() as u64,
            store.stream_version("cache", &id).unwrap()
        );
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.metadata.version, i as u64 + 1);
            assert_eq!(e.metadata.aggregate_id, id);
        }
    }
    let by_type: Vec<u64> = store
        .read_aggregate_type("cache", 10, Some(5))
        .unwrap()
        .map(|e| e.unwrap().position)
        .collect();
    assert_eq!(by_type, vec![10, 11, 12, 13, 14]);
    let aggregates = store.aggregates(None).unwrap();
    assert_eq!(aggregates.len(), 4);
    assert_eq!(aggregates.iter().map(|a| a.version).sum::<u64>(), 50);
}
