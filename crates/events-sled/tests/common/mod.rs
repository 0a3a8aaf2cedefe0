//! Helpers shared by the store's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use events_core::{EventContext, NewEvent};
use events_sled::{Durability, Store, StoreConfig};
use omni_domain::CacheHit;
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
        assert!(
            wait_until(std::time::Duration::from_secs(30), || file
                .try_lock()
                .is_ok()),
            "sled still holds {} 30 s after the raw Db dropped",
            self.data.display()
        );
        file.unlock().unwrap();
    }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: std::time::Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Faults for the store's test-only sync hook (`StoreConfig::sync_hook`, feature
/// `fault-injection`): hold syncs of the log's segment files, or fail the next sync of sled's data
/// file.
#[derive(Debug, Default)]
pub struct SyncFaults {
    state: std::sync::Mutex<FaultState>,
    changed: std::sync::Condvar,
}

#[derive(Debug, Default)]
struct FaultState {
    hold_log: bool,
    log_held: usize,
    fail_data_file: bool,
    data_file_failures: usize,
}

/// How long a held sync or a test waiting for one waits before giving up (a regression then
/// fails the test instead of hanging it).
pub const FAULT_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

impl SyncFaults {
    pub fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::default()
    }

    /// The hook to give `StoreConfig::sync_hook`.
    pub fn hook(self: &std::sync::Arc<Self>) -> events_sled::SyncHook {
        let faults = std::sync::Arc::clone(self);
        std::sync::Arc::new(move |point| faults.on_sync(point))
    }

    /// Syncs of the log from now on wait until [`SyncFaults::release_log`].
    pub fn hold_log(&self) {
        self.state.lock().unwrap().hold_log = true;
    }

    pub fn release_log(&self) {
        self.state.lock().unwrap().hold_log = false;
        self.changed.notify_all();
    }

    /// Waits until a log sync is being held; panics after [`FAULT_WAIT`].
    pub fn wait_log_held(&self) {
        let state = self.state.lock().unwrap();
        let (state, timeout) = self
            .changed
            .wait_timeout_while(state, FAULT_WAIT, |s| s.log_held == 0)
            .unwrap();
        assert!(
            !timeout.timed_out() && state.log_held > 0,
            "no log sync started within {FAULT_WAIT:?}"
        );
    }

    /// The next sync of sled's data file fails (once).
    pub fn fail_next_data_file_sync(&self) {
        self.state.lock().unwrap().fail_data_file = true;
    }

    /// How many data-file syncs were made to fail.
    pub fn data_file_failures(&self) -> usize {
        self.state.lock().unwrap().data_file_failures
    }

    fn on_sync(&self, point: events_sled::SyncPoint) -> std::io::Result<()> {
        let mut state = self.state.lock().unwrap();
        match point {
            events_sled::SyncPoint::Log if state.hold_log => {
                state.log_held += 1;
                self.changed.notify_all();
                let (mut state, _) = self
                    .changed
                    .wait_timeout_while(state, FAULT_WAIT, |s| s.hold_log)
                    .unwrap();
                state.log_held -= 1;
                Ok(())
            }
            events_sled::SyncPoint::DataFile if state.fail_data_file => {
                state.fail_data_file = false;
                state.data_file_failures += 1;
                Err(std::io::Error::other("injected fdatasync failure"))
            }
            _ => Ok(()),
        }
    }
}

/// A checkpoint file's sections `(tag, bytes)`, manifest last (see `checkpoint.rs` for the layout).
pub fn checkpoint_sections(path: &std::path::Path) -> Vec<(u8, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"EVLCKPT1");
    let body = &bytes[..bytes.len() - 48];
    let mut sections = Vec::new();
    let mut at = 8;
    while at < body.len() {
        let tag = body[at];
        let len = u64::from_be_bytes(body[at + 1..at + 9].try_into().unwrap()) as usize;
        sections.push((tag, body[at + 9..at + 9 + len].to_vec()));
        at += 9 + len;
    }
    sections
}

/// Writes `sections` as a checkpoint file with a correct footer (manifest offset and hash).
pub fn write_checkpoint_sections(path: &std::path::Path, sections: &[(u8, Vec<u8>)]) {
    let mut out = b"EVLCKPT1".to_vec();
    let mut manifest_offset = 0;
    for (tag, bytes) in sections {
        if *tag == b'M' {
            manifest_offset = out.len() as u64;
        }
        out.push(*tag);
        out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    let hash = blake3::hash(&out);
    out.extend_from_slice(&manifest_offset.to_be_bytes());
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(b"EVLCKEND");
    std::fs::write(path, out).unwrap();
}
