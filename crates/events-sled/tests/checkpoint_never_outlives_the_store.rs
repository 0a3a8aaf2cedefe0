//! A checkpoint never covers more of the log than a crash of the store can keep: in buffered
//! mode too, an exported checkpoint (which is `fsync`ed) must not hold events that a `kill -9`
//! right after the export takes from the store — otherwise the store goes on with other events
//! at those positions, and the "copy of the store" holds a history the store never kept.
//!
//! The test re-runs its own binary as a child that appends in buffered mode with sled's flush
//! held off (a 1 h flush interval), exports a checkpoint, and aborts (no destructor runs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use events_sled::{Durability, ExpectedVersion, Store, StoreConfig, verify_checkpoint};

const CHILD: &str = "EVENTLOG_CHECKPOINT_OUTLIVES_CHILD";

fn store_config(path: &Path) -> StoreConfig {
    StoreConfig::new(path)
        .cache_capacity(8 << 20)
        .durability(Durability::Buffered)
        .flush_interval(Duration::from_secs(3600))
}

fn child(dir: &Path) -> ! {
    let store = Store::open(store_config(&dir.join("store"))).unwrap();
    for n in 0..50 {
        store
            .append(ExpectedVersion::Any, vec![hit(&format!("a{}", n % 3), n)])
            .unwrap();
    }
    store.export_checkpoint(&dir.join("copy.evlc")).unwrap();
    std::process::abort();
}

#[test]
fn a_buffered_checkpoint_never_covers_more_than_a_crash_keeps() {
    if let Ok(dir) = std::env::var(CHILD) {
        child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "a_buffered_checkpoint_never_covers_more_than_a_crash_keeps",
            "--exact",
            "--include-ignored",
            "--test-threads=1",
        ])
        .env(CHILD, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child should have aborted");
    let manifest = verify_checkpoint(&dir.path().join("copy.evlc")).unwrap();
    assert_eq!(manifest.last_position, 50);
    let store = Store::open(store_config(&dir.path().join("store"))).unwrap();
    let kept = store.last_position();
    store.close().unwrap();
    assert!(
        manifest.last_position <= kept,
        "the checkpoint covers {} events, the store kept {kept} after the crash",
        manifest.last_position
    );
}
