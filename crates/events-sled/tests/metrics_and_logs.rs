//! Metrics carry the seed's names and survive a restart; the seed's structured log events are
//! emitted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use events_sled::{ExpectedVersion, Store, StreamRead};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

#[test]
fn metrics_use_the_seed_names_and_persist_counters() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store =
            Store::open(config(&dir).registry(events_core::EventRegistry::omni_writer())).unwrap();
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

#[derive(Clone, Default)]
struct Names(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> Layer<S> for Names {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        self.0
            .lock()
            .unwrap()
            .push(event.metadata().name().to_string());
    }
}

#[test]
fn the_seed_log_events_are_emitted() {
    let names = Names::default();
    let subscriber = Registry::default().with(names.clone());
    tracing::subscriber::with_default(subscriber, || {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store
            .append(ExpectedVersion::Any, vec![hit("a", 1)])
            .unwrap();
        let _ = store
            .read_stream("cache", "a", StreamRead::forwards())
            .unwrap()
            .count();
        store.save_snapshot("cache", "a", 1, 1, b"s").unwrap();
        store.checkpoint().unwrap();
        store.close().unwrap();
    });
    let names = names.0.lock().unwrap();
    for expected in [
        "event_store_init",
        "event_store_event_stored",
        "event_store_events_retrieved",
        "event_store_snapshot_created",
        "event_store_checkpoint_created",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not emitted: {names:?}"
        );
    }
}
