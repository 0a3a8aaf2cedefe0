//! What the full-disk tests share: a small tmpfs (mounting needs root), a durable store on it,
//! appends until one fails, and the check that every acknowledged append survived.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use eventlog::{
    AppendError, Durability, EventContext, EventLog, EventLogConfig, ExpectedVersion, NewEvent,
    Position, StoreLimits,
};
use omni_domain::CacheHit;
use uuid::Uuid;

/// A mounted tmpfs, unmounted on drop.
pub struct Tmpfs(PathBuf);

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

/// A 20 MiB tmpfs under `scratch` holding a 4 MiB filler file; returns the mount, the store's
/// directory on it and the filler. `None` (after saying so) where mounting is not permitted.
pub fn small_disk(scratch: &Path) -> Option<(Tmpfs, PathBuf, PathBuf)> {
    let mount_point = scratch.join("disk");
    std::fs::create_dir(&mount_point).unwrap();
    let tmpfs = match Tmpfs::mount(&mount_point, "20m") {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs here ({reason}); the full-disk test needs root"
            );
            return None;
        }
    };
    let filler = mount_point.join("filler");
    std::fs::write(&filler, vec![0_u8; 4 << 20]).unwrap();
    Some((tmpfs, mount_point.join("store"), filler))
}

/// A durable store that refuses appends below `min_free_disk_bytes` free.
pub fn config(dir: &Path, min_free_disk_bytes: u64) -> EventLogConfig {
    EventLogConfig::new(dir)
        .registry(omni_domain::registry())
        .durability(Durability::Durable)
        .snapshot_every(None)
        .store(|s| {
            s.cache_capacity(8 << 20)
                // The tmpfs is 20 MiB: the default 64 MiB segment would not fit.
                .log_segment_bytes(1 << 20)
                .flush_interval(Duration::from_millis(20))
                .limits(StoreLimits {
                    min_free_disk_bytes,
                    ..StoreLimits::default()
                })
        })
}

/// One append's worth: 25 events of ~1 KiB.
pub fn events(aggregate: &str, n: u64) -> Vec<NewEvent> {
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

/// Appends until an append fails: each acknowledged append's first position and event ids, and
/// the error.
pub fn fill(log: &EventLog) -> (Vec<(u64, Vec<Uuid>)>, AppendError) {
    let mut acked = Vec::new();
    for n in 0.. {
        let batch = events(&format!("agg-{}", n % 13), n);
        let ids: Vec<Uuid> = batch.iter().map(|e| e.event_id).collect();
        match log.append(&super::stream_of(&batch), ExpectedVersion::Any, batch) {
            Ok(result) => acked.push((result.first_position, ids)),
            Err(error) => return (acked, error),
        }
    }
    unreachable!()
}

/// Reopens the store: every acknowledged append is where it was acknowledged, `verify()` passes,
/// and appends work.
pub fn assert_acknowledged_kept(
    store: &Path,
    min_free_disk_bytes: u64,
    acked: &[(u64, Vec<Uuid>)],
) {
    let log = EventLog::open(config(store, min_free_disk_bytes)).unwrap();
    let stored: Vec<Uuid> = log
        .read_log(Position(1), None)
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
    let report = log.admin().verify().unwrap();
    assert!(report.ok, "{report:?}");
    let after = events("after", 0);
    log.append(&super::stream_of(&after), ExpectedVersion::Any, after)
        .unwrap();
    log.close().unwrap();
}
