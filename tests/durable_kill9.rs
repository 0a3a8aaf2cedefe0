//! Durable subscriptions and projections across `kill -9`: the test re-runs its own binary as
//! a child that appends and consumes (a projection and a durable subscription, both filtered to
//! the `cache` aggregate type), kills it at a random moment, reopens the store and checks:
//!
//! - the projection's stored state is exactly the fold of the matching events up to its stored
//!   position (none applied twice, none skipped);
//! - the durable subscription handled every matching event up to its stored position, and (in
//!   durable mode, where commits are synced) at most the one event in flight after it;
//! - a restarted durable subscription resumes right after its stored position.
//!
//! Both durability modes. In buffered mode commits are not synced, so a crash may take the
//! projection back to an earlier position, with its state (still never applied twice); and the
//! crash may lose the log's unflushed tail, events that were already delivered: the handler's
//! acknowledgements beyond the surviving log are forgotten after each round.
//!
//! Rounds per mode: `EVENTLOG_FACADE_KILLS` (default 3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::AppendOwn;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{cache_hit, cache_miss, pipeline_started, wait_until};
use eventlog::{
    ApplyError, Durability, EventLog, EventLogConfig, EventRegistry, ExpectedVersion, Position,
    Projection, RecordedEvent, SubscriptionFilter,
};
use serde::{Deserialize, Serialize};

const CHILD: &str = "EVENTLOG_FACADE_KILL9_CHILD";

fn config(dir: &Path, durability: Durability) -> EventLogConfig {
    EventLogConfig::new(dir)
        .registry(omni_domain::registry())
        .durability(durability)
        .store(|s| {
            s.cache_capacity(16 << 20)
                .flush_interval(Duration::from_millis(20))
        })
}

fn filter() -> SubscriptionFilter {
    SubscriptionFilter::all().aggregate_type("cache")
}

/// Order-sensitive digest of the positions applied: a double or a skipped apply changes it.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Tally {
    count: u64,
    last: u64,
    digest: u64,
}

impl Tally {
    fn add(&mut self, position: u64) -> Result<(), ApplyError> {
        if position <= self.last {
            return Err(ApplyError::rejected(format!(
                "position {position} after {}",
                self.last
            )));
        }
        self.count += 1;
        self.last = position;
        self.digest = self
            .digest
            .wrapping_mul(0x100_0000_01B3)
            .wrapping_add(position);
        Ok(())
    }
}

impl Projection for Tally {
    fn apply(&mut self, event: &RecordedEvent, _: &EventRegistry) -> Result<(), ApplyError> {
        self.add(event.position)
    }
}

fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// The child: consumes with a projection and a durable subscription (acknowledging each handled
/// position in a file, unbuffered), and appends a mix of events until it is killed.
fn child(dir: &Path, durability: Durability, acks: &Path) -> ! {
    let log = EventLog::open(config(dir, durability)).unwrap();
    let _tally = log.project::<Tally>("tally", filter()).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(acks)
        .unwrap();
    let _acker = log
        .subscribe_durable("acker", filter(), move |event: &RecordedEvent| {
            file.write_all(format!("{}\n", event.position).as_bytes())
        })
        .unwrap();
    let mut n: u64 = 0;
    loop {
        n += 1;
        let event = match n % 4 {
            0 => pipeline_started(&format!("p{}", n % 3), 2),
            1 => cache_miss(&format!("c{}", n % 5), n),
            _ => cache_hit(&format!("c{}", n % 5), n),
        };
        log.append_own(ExpectedVersion::Any, vec![event]).unwrap();
    }
}

fn read_acks(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.parse().ok())
        .collect()
}

/// Checks the reopened store; returns the durable subscription's stored position.
fn check(dir: &Path, durability: Durability, acks: &[u64], round: usize) -> (u64, u64, u64) {
    let log = EventLog::open(config(dir, durability)).unwrap();
    let last = log.last_position().unwrap().get();
    let matching: Vec<u64> = log
        .read_log(Position(1), None)
        .unwrap()
        .map(Result::unwrap)
        .filter(|e| filter().matches(e))
        .map(|e| e.position)
        .collect();

    // The projection: exactly the fold of the matching events up to its position.
    let (position, tally) = log
        .projection_state::<Tally>("tally")
        .unwrap()
        .unwrap_or_default();
    assert!(
        position <= last,
        "round {round}: projection ahead of the log"
    );
    let mut expected = Tally::default();
    for &p in matching.iter().filter(|&&p| p <= position.get()) {
        expected.add(p).unwrap();
    }
    assert_eq!(tally, expected, "round {round}: projection at {position}");

    // The durable subscription: every matching event up to its position was handled, and at
    // most one matching event after it (handled, killed before its commit).
    let acked = log
        .admin()
        .consumer("acker")
        .unwrap()
        .map_or(0, |c| c.position);
    assert!(acked <= last);
    for p in matching.iter().filter(|&&p| p <= acked) {
        assert!(
            acks.contains(p),
            "round {round}: {p} acknowledged but never handled"
        );
    }
    let beyond: Vec<_> = acks.iter().filter(|&&p| p > acked).collect();
    assert!(
        durability == Durability::Buffered || beyond.len() <= 1,
        "round {round}: handled beyond the stored position {acked}: {beyond:?}"
    );
    for p in acks {
        // In buffered mode the crash may lose the log's tail, events included that were already
        // delivered: positions beyond the surviving log are forgotten after each round.
        assert!(
            matching.contains(p) || (durability == Durability::Buffered && *p > last),
            "round {round}: handled {p}, not a matching event"
        );
    }
    eprintln!(
        "round {round}: log at {last}, projection at {position} ({} applied), acker at {acked} ({} handled)",
        tally.count,
        acks.len()
    );
    log.close().unwrap();
    (acked, tally.count, last)
}

fn torture(durability: Durability, test_name: &str) {
    if let Ok(spec) = std::env::var(CHILD) {
        let (dir, acks) = spec.split_once('|').unwrap();
        child(Path::new(dir), durability, Path::new(acks));
    }
    let kills: usize = std::env::var("EVENTLOG_FACADE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let acks_path = tmp.path().join("acks");
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut duplicates_allowed = 0;
    let mut acked = 0;
    for round in 0..kills {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, format!("{}|{}", dir.display(), acks_path.display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(tmp.path().join(format!("child-{round}.log"))).unwrap())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300 + rng(&mut seed) % 500));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acks = read_acks(&acks_path);
        let (position, projected, last) = check(&dir, durability, &acks, round);
        if durability == Durability::Buffered {
            // Delivered, then lost with the unflushed tail: their positions go to new events.
            let kept: String = acks
                .iter()
                .filter(|&&p| p <= last)
                .map(|p| format!("{p}\n"))
                .collect();
            std::fs::write(&acks_path, kept).unwrap();
        }
        let child_log = std::fs::read_to_string(tmp.path().join(format!("child-{round}.log")))
            .unwrap_or_default();
        if child_log.contains("panicked") {
            panic!("round {round}: the child failed:\n{child_log}");
        }
        // Each kill may leave one handled-but-uncommitted event (synced commits), or those
        // handled since the last flush (buffered), handled again next round.
        duplicates_allowed += match durability {
            Durability::Durable => 1,
            _ => acks.len(),
        };
        let mut sorted = acks.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert!(
            acks.len() - sorted.len() <= duplicates_allowed,
            "round {round}: {} duplicates",
            acks.len() - sorted.len()
        );
        assert!(
            position >= acked,
            "round {round}: the stored position went back"
        );
        acked = position;
        assert!(
            projected > 0 || round == 0,
            "round {round}: nothing projected"
        );
    }
    assert!(acked > 0, "the durable subscription never committed");

    // Resume: the next event handled is the first matching one after the stored position.
    let log = EventLog::open(config(&dir, durability)).unwrap();
    let stored = log.admin().consumer("acker").unwrap().unwrap().position;
    let next_matching = log
        .read_log(Position(stored + 1), None)
        .unwrap()
        .map(Result::unwrap)
        .find(|e| filter().matches(e))
        .map(|e| e.position);
    let first = Arc::new(Mutex::new(None));
    let sink = Arc::clone(&first);
    log.subscribe_durable("acker", filter(), move |event: &RecordedEvent| {
        sink.lock().unwrap().get_or_insert(event.position);
        Ok::<(), String>(())
    })
    .unwrap();
    log.append_own(ExpectedVersion::Any, vec![cache_hit("c0", 0)])
        .unwrap();
    let appended = log.last_position().unwrap().get();
    assert!(wait_until(Duration::from_secs(20), || first
        .lock()
        .unwrap()
        .is_some()));
    assert_eq!(
        *first.lock().unwrap(),
        Some(next_matching.unwrap_or(appended))
    );
    log.close().unwrap();
}

#[test]
fn kill9_durable_never_applies_twice_nor_skips() {
    torture(
        Durability::Durable,
        "kill9_durable_never_applies_twice_nor_skips",
    );
}

#[test]
fn kill9_buffered_never_applies_twice_nor_skips() {
    torture(
        Durability::Buffered,
        "kill9_buffered_never_applies_twice_nor_skips",
    );
}
