//! Helpers shared by the store's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use events_core::{CacheHit, EventContext, NewEvent};
use events_sled::{Durability, Store, StoreConfig};
use tempfile::TempDir;

/// A cache-hit event for aggregate `id`, with a recognisable key.
pub fn hit(id: &str, n: u64) -> NewEvent {
    NewEvent::from_event(
        id,
        &CacheHit {
            cache_key: format!("key-{n}"),
            cache_type: "memory".into(),
            response_time: n as f64,
        },
        EventContext::new("test").with_trace_id(format!("trace-{n}")),
    )
    .unwrap()
}

pub fn config(dir: &TempDir) -> StoreConfig {
    StoreConfig::new(dir.path())
        .cache_capacity(16 << 20)
        .durability(Durability::Buffered)
}

pub fn open(dir: &TempDir) -> Store {
    Store::open(config(dir)).unwrap()
}

pub fn cache_key_of(event: &events_core::RecordedEvent) -> String {
    events_core::codec::decode_payload::<CacheHit>(&event.payload)
        .unwrap()
        .cache_key
}
