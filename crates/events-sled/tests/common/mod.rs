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

/// The store's sled database opened directly, to damage it. Dropping it closes sled and waits
/// until sled's background threads have let go of the file lock (sled 0.34 releases it only when
/// its last internal reference goes, a moment after the `Db` drops), so the store can be reopened
/// at once instead of failing with `Locked` now and then.
pub struct RawSled {
    db: Option<sled::Db>,
    data: std::path::PathBuf,
}

/// Opens `<dir>/data` with the store's segment size.
pub fn raw_sled(dir: &TempDir) -> RawSled {
    let data = dir.path().join("data");
    let db = sled::Config::new()
        .path(&data)
        .segment_size(1 << 20)
        .open()
        .unwrap();
    RawSled { db: Some(db), data }
}

impl std::ops::Deref for RawSled {
    type Target = sled::Db;

    fn deref(&self) -> &sled::Db {
        self.db.as_ref().unwrap()
    }
}

impl Drop for RawSled {
    fn drop(&mut self) {
        drop(self.db.take());
        let file = std::fs::File::open(self.data.join("db")).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while file.try_lock().is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "sled still holds {} 30 s after the raw Db dropped",
                self.data.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        file.unlock().unwrap();
    }
}
