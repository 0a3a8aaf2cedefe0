//! The seed's structured log events are emitted. (Alone in its binary: tracing caches callsite
//! interest process-wide, so another test running without a subscriber could hide events.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use events_sled::{ExpectedVersion, StreamRead};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

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
