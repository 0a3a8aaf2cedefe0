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

mod common;
use common::AppendOwn;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::full_disk::{assert_acknowledged_kept, config, events, fill, small_disk};
use eventlog::{AppendError, EventLog, ExpectedVersion, StoreAppendError};
use uuid::Uuid;

/// No free-space reserve: sled's own writes meet the full disk.
const MIN_FREE: u64 = 0;

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
    let log = EventLog::open(config(store, MIN_FREE)).unwrap();
    let (acked, error) = fill(&log);
    let again = log
        .append_own(ExpectedVersion::Any, events("again", 0))
        .map(|_| ())
        .map_err(|e| e.to_string());
    let started = Instant::now();
    let _ = log.close();
    Seen {
        acked,
        failed: matches!(error, AppendError::Store(StoreAppendError::Failed { .. })),
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
    let Some((_tmpfs, store, filler)) = small_disk(scratch.path()) else {
        return;
    };

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
    assert_acknowledged_kept(&store, MIN_FREE, &seen.acked);
}
