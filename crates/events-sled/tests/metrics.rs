//! Metrics carry the seed's names and survive a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use events_sled::{ExpectedVersion, Store, StreamRead};

#[test]
fn metrics_use_the_seed_names_and_persist_counters() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(config(&dir).registry(omni_domain::registry())).unwrap();
        for n in 1..=5 {
            store
                .append(ExpectedVersion::Any, vec![hit("a", n)])
                .unwrap();
        }
        store
            .append(ExpectedVersion::Any, vec![hit("b", 9)])
            .unwrap();
        let read = store
            .read_stream("cache", "a", StreamRead::forwards())
            .unwrap()
            .count();
        assert_eq!(read, 5);
        store.save_snapshot("cache", "a", 5, 1, b"s").unwrap();
        store.checkpoint().unwrap();
        let metrics = store.metrics();
        assert_eq!(metrics.total_events_stored, 6);
        assert_eq!(metrics.total_events_retrieved, 5);
        assert_eq!(metrics.aggregates, 2);
        assert_eq!(metrics.registered_events.len(), 16);
        let json = serde_json::to_value(&metrics).unwrap();
        for key in [
            "storage_path",
            "total_events_stored",
            "total_events_retrieved",
            "checkpoints_created",
            "snapshots_created",
            "last_checkpoint_time",
            "last_snapshot_time",
            "registered_events",
            "aggregates",
            "last_position",
            "bytes_on_disk",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        assert!(metrics.bytes_on_disk > 0);
        store.close().unwrap();
    }
    let store = open(&dir);
    let metrics = store.metrics();
    assert_eq!(metrics.total_events_stored, 6);
    assert_eq!(metrics.total_events_retrieved, 5);
    assert_eq!(metrics.checkpoints_created, 1);
    assert_eq!(metrics.snapshots_created, 1);
    assert_eq!(metrics.aggregates, 2);
    assert!(metrics.last_checkpoint_time.is_some());
}

#[test]
fn group_and_sync_histograms_count_every_group_write_and_log_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(&dir).durability(events_sled::Durability::Durable)).unwrap();
    for n in 1..=10 {
        store
            .append(ExpectedVersion::Any, vec![hit("a", n), hit("a", n + 100)])
            .unwrap();
    }
    let metrics = store.metrics();
    let groups = &metrics.group_events;
    assert_eq!(groups.count, metrics.group_writes_since_open);
    // Every event is in exactly one group.
    assert_eq!(groups.sum, 20.0);
    assert!(groups.count >= 1 && groups.count <= 10, "{groups:?}");
    // Two-event appends, one at a time: no group holds a single event.
    assert_eq!(groups.buckets[0].le, 1.0);
    assert_eq!(groups.buckets[0].count, 0);
    assert!(
        groups
            .buckets
            .windows(2)
            .all(|w| w[0].count <= w[1].count && w[0].le < w[1].le)
    );
    // Durable mode syncs the log once per group.
    let syncs = &metrics.log_sync_seconds;
    assert!(syncs.count >= groups.count, "{syncs:?} vs {groups:?}");
    assert!(syncs.sum > 0.0 && syncs.sum < 60.0, "{syncs:?}");
    let json = serde_json::to_value(&metrics).unwrap();
    assert_eq!(json["group_events"]["count"], groups.count);
    assert!(json["log_sync_seconds"]["buckets"].is_array());
    store.close().unwrap();
}
