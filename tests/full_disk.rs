//! A full disk: on a 20 MiB tmpfs (mounted by the test; it needs root — without the permission
//! to mount, the test says so and passes without checking anything), durable appends run until
//! the disk is full. Checked:
//!
//! - once free space falls below the store's minimum (`min_free_disk_bytes`, 2 MiB here), appends
//!   fail with a typed error (`AppendError::DiskFull`) before anything is written — never a
//!   panic and never a hang (a watchdog fails the test after 120 s) — and so does every later
//!   append while the disk stays full;
//! - once space is freed (a filler file written beforehand is deleted), the same handle appends
//!   again and closes cleanly, and the store reopens with every acknowledged append and verifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use eventlog::{
    AppendError, CacheHit, Durability, EventContext, EventLog, EventLogConfig, EventLogError,
    ExpectedVersion, NewEvent,
};
use uuid::Uuid;

/// A mounted tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Self, String> {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if output.status.success() {
            Ok(Self(dir.to_path_buf()))
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The store refuses appends below 2 MiB free (the tmpfs is 20 MiB).
const MIN_FREE: u64 = 2 << 20;

fn config(dir: &Path) -> EventLogConfig {
    EventLogConfig::new(dir)
        .durability(Durability::Durable)
        .snapshot_every(None)
        .store(|s| {
            s.cache_capacity(8 << 20)
                .flush_interval(Duration::from_millis(20))
                .limits(eventlog::StoreLimits {
                    min_free_disk_bytes: MIN_FREE,
                    ..eventlog::StoreLimits::default()
                })
        })
}

fn events(aggregate: &str, n: u64) -> Vec<NewEvent> {
    (0..25)
        .map(|i| {
            let hit = CacheHit {
                cache_key: format!("{n}:{i}:{}", "k".repeat(900)),
                cache_type: "disk".into(),
                response_time: 0.0,
            };
            NewEvent::from_event(aggregate, &hit, EventContext::new("test")).unwrap()
        })
        .collect()
}

/// Appends until an append fails; returns the acknowledged (first position, event ids) and the
/// error.
fn fill(log: &EventLog) -> (Vec<(u64, Vec<Uuid>)>, EventLogError) {
    let mut acked = Vec::new();
    for n in 0.. {
        let batch = events(&format!("agg-{}", n % 13), n);
        let ids: Vec<Uuid> = batch.iter().map(|e| e.event_id).collect();
        match log.append(ExpectedVersion::Any, batch) {
            Ok(result) => acked.push((result.first_position, ids)),
            Err(error) => return (acked, error),
        }
    }
    unreachable!()
}

#[test]
fn a_full_disk_fails_appends_with_a_typed_error_and_loses_nothing_acknowledged() {
    let scratch = tempfile::tempdir().unwrap();
    let mount_point = scratch.path().join("disk");
    std::fs::create_dir(&mount_point).unwrap();
    let _tmpfs = match Tmpfs::mount(&mount_point, "20m") {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs here ({reason}); the full-disk test needs root"
            );
            return;
        }
    };
    let filler = mount_point.join("filler");
    std::fs::write(&filler, vec![0_u8; 4 << 20]).unwrap();
    let store = mount_point.join("store");

    let (tx, rx) = mpsc::channel();
    {
        let store = store.clone();
        let filler = filler.clone();
        std::thread::spawn(move || {
            let log = EventLog::open(config(&store)).unwrap();
            let (mut acked, error) = fill(&log);
            let again = log.append(ExpectedVersion::Any, events("again", 0));
            // Freeing space lets the same handle append again: the refusal is not sticky.
            std::fs::remove_file(&filler).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            let after = log.append(ExpectedVersion::Any, events("freed", 0));
            if let Ok(result) = &after {
                acked.push((result.first_position, Vec::new()));
            }
            let closed = log.close();
            tx.send((
                acked,
                error.to_string(),
                matches_disk_full(&error),
                again.is_err(),
                after.is_ok(),
                closed.is_ok(),
            ))
            .unwrap();
        });
    }
    let (acked, error, typed, again_failed, appends_after_freeing, closed) = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("appending to a full disk hung (or panicked)");
    eprintln!(
        "full disk after {} acknowledged appends ({} events): {error}; closed cleanly: {closed}",
        acked.len(),
        acked.len() * 25
    );
    assert!(typed, "not AppendError::DiskFull: {error}");
    assert!(again_failed, "an append on the full disk succeeded");
    assert!(
        appends_after_freeing,
        "appends did not resume once space was freed"
    );
    assert!(closed, "the store did not close cleanly");
    assert!(
        acked.len() > 100,
        "the disk filled too early: {} appends",
        acked.len()
    );

    let log = EventLog::open(config(&store)).unwrap();
    let stored: Vec<Uuid> = log
        .read_log(1, None)
        .unwrap()
        .map(|e| e.unwrap().metadata.event_id)
        .collect();
    for (first, ids) in acked.iter().filter(|(_, ids)| !ids.is_empty()) {
        let at = (*first - 1) as usize;
        assert_eq!(
            stored.get(at..at + ids.len()),
            Some(ids.as_slice()),
            "the append acknowledged at {first} is missing after the reopen"
        );
    }
    let report = log.verify().unwrap();
    assert!(report.ok, "{report:?}");
    log.append(ExpectedVersion::Any, events("after", 0))
        .unwrap();
    log.close().unwrap();
}

fn matches_disk_full(error: &EventLogError) -> bool {
    matches!(error, EventLogError::Append(AppendError::DiskFull { .. }))
}
