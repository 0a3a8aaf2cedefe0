//! A disk filled past the store's free-space reserve: with `min_free_disk_bytes` at 0 (as when
//! another process fills the disk faster than the store checks), durable appends run on a
//! 20 MiB tmpfs until sled's own writes fail with "no space left" (the test mounts the tmpfs; it
//! needs root — without the permission to mount, it says so and passes without checking
//! anything). Checked:
//!
//! - the append that hits the full disk fails with `AppendError::Failed`, and so does every later
//!   one; nothing panics; the append, the later one and `close` all return, and the process
//!   exits, within 120 s (a watchdog; the store waits at most 5 s for a stalled sled on close);
//! - once space is freed (a filler file written beforehand is deleted), the store reopens — in a
//!   new process: a sled that stalled on the full disk keeps the directory locked until its
//!   process exits — with every acknowledged append, `verify()` passes, and appends work again.
//!
//! The filling runs in a child process (this test binary, re-executed), which reports what it
//! saw as JSON on stdout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eventlog::{
    AppendError, CacheHit, Durability, EventContext, EventLog, EventLogConfig, EventLogError,
    ExpectedVersion, NewEvent, StoreLimits,
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

fn config(dir: &Path) -> EventLogConfig {
    EventLogConfig::new(dir)
        .durability(Durability::Durable)
        .snapshot_every(None)
        .store(|s| {
            s.cache_capacity(8 << 20)
                .flush_interval(Duration::from_millis(20))
                .limits(StoreLimits {
                    min_free_disk_bytes: 0,
                    ..StoreLimits::default()
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

const CHILD: &str = "EVENTLOG_DISK_PAST_RESERVE_CHILD";

/// What the child saw.
#[derive(serde::Serialize, serde::Deserialize)]
struct Seen {
    acked: Vec<(u64, Vec<Uuid>)>,
    error: String,
    failed: bool,
    again: Result<(), String>,
    close_secs: f64,
}

fn child(store: &Path) -> ! {
    let seen = run(store);
    println!("SEEN {}", serde_json::to_string(&seen).unwrap());
    std::process::exit(0);
}

fn run(store: &Path) -> Seen {
    let log = EventLog::open(config(store)).unwrap();
    let mut acked = Vec::new();
    let mut n = 0;
    let error = loop {
        let batch = events(&format!("agg-{}", n % 13), n);
        let ids: Vec<Uuid> = batch.iter().map(|e| e.event_id).collect();
        match log.append(ExpectedVersion::Any, batch) {
            Ok(result) => acked.push((result.first_position, ids)),
            Err(error) => break error,
        }
        n += 1;
    };
    let again = log
        .append(ExpectedVersion::Any, events("again", 0))
        .map(|_| ())
        .map_err(|e| e.to_string());
    let started = Instant::now();
    let _ = log.close();
    Seen {
        acked,
        failed: matches!(error, EventLogError::Append(AppendError::Failed { .. })),
        error: error.to_string(),
        again,
        close_secs: started.elapsed().as_secs_f64(),
    }
}

#[test]
fn a_disk_filled_past_the_reserve_fails_appends_and_loses_nothing_acknowledged() {
    if let Ok(store) = std::env::var(CHILD) {
        child(Path::new(&store));
    }
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

    let mut process = Command::new(std::env::current_exe().unwrap())
        .args([
            "a_disk_filled_past_the_reserve_fails_appends_and_loses_nothing_acknowledged",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, &store)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The report is larger than a pipe's buffer: read it while the child runs.
    let mut child_stdout = process.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut child_stdout, &mut text).map(|_| text)
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while process.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = process.kill();
            panic!("appending to a full disk, or closing the store after, hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stdout = reader.join().unwrap().unwrap();
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("SEEN ").map(|(_, report)| report))
        .unwrap_or_else(|| panic!("the child reported nothing (it panicked?): {stdout}"));
    let seen: Seen = serde_json::from_str(line).unwrap();
    eprintln!(
        "full disk after {} acknowledged appends ({} events): {}; closed in {:.1} s",
        seen.acked.len(),
        seen.acked.len() * 25,
        seen.error,
        seen.close_secs
    );
    assert!(seen.failed, "not AppendError::Failed: {}", seen.error);
    assert!(seen.again.is_err(), "an append after the failure succeeded");
    assert!(
        seen.acked.len() > 100,
        "the disk filled too early: {} appends",
        seen.acked.len()
    );

    std::fs::remove_file(&filler).unwrap();
    let log = EventLog::open(config(&store)).unwrap();
    let stored: Vec<Uuid> = log
        .read_log(1, None)
        .unwrap()
        .map(|e| e.unwrap().metadata.event_id)
        .collect();
    for (first, ids) in &seen.acked {
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
