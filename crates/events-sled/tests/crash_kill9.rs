//! Kill -9 torture: the test re-runs its own binary as a writer (appends, snapshots, checkpoint
//! exports), kills it at random moments, reopens and checks. Durable mode: no acknowledged append
//! is lost. Both modes: no partial append, no gap, the hash chain and indexes verify.
//!
//! Rounds per mode: `EVENTLOG_CRASH_KILLS` (default 12).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use events_core::{EventContext, NewEvent, codec};
use events_sled::{Durability, ExpectedVersion, Store, StoreConfig};
use omni_domain::CacheHit;

const CHILD: &str = "EVENTLOG_CRASH_CHILD";

fn config(dir: &Path, durability: Durability) -> StoreConfig {
    StoreConfig::new(dir)
        .cache_capacity(16 << 20)
        .durability(durability)
        .flush_interval(Duration::from_millis(20))
        .index_flush_events(300)
        .record_target_bytes(2048)
}

fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// The writer: appends 1–5 events at a time to one of 20 aggregates and acknowledges each append
/// in a file (unbuffered, one line per append) after `append` returns.
fn child(dir: &Path, durability: Durability, acks: &Path, seed: u64) -> ! {
    let store = Store::open(config(dir, durability)).unwrap();
    let mut acks = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(acks)
        .unwrap();
    let mut seed = seed | 1;
    let mut n: u64 = 0;
    loop {
        n += 1;
        let aggregate = format!("agg-{}", rng(&mut seed) % 20);
        let count = 1 + rng(&mut seed) % 5;
        let tag = rng(&mut seed);
        let events: Vec<NewEvent> = (0..count)
            .map(|i| {
                NewEvent::from_event(
                    aggregate.as_str(),
                    &CacheHit {
                        cache_key: format!("{tag}:{count}:{i}"),
                        cache_type: "crash".into(),
                        response_time: 0.0,
                    },
                    EventContext::new("crash-test"),
                )
                .unwrap()
            })
            .collect();
        let result = store.append(ExpectedVersion::Any, events).unwrap();
        writeln!(
            acks,
            "{tag} {count} {} {}",
            result.first_position, result.last_position
        )
        .unwrap();
        if n.is_multiple_of(97) {
            let version = store.stream_version("cache", &aggregate).unwrap();
            store
                .save_snapshot("cache", &aggregate, version, 1, &tag.to_le_bytes())
                .unwrap();
        }
        if n.is_multiple_of(400) {
            store.checkpoint().unwrap();
        }
    }
}

struct Ack {
    tag: u64,
    count: u64,
    first: u64,
    last: u64,
}

fn read_acks(path: &Path) -> Vec<Ack> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let parts: Vec<u64> = line.split(' ').filter_map(|p| p.parse().ok()).collect();
            // A line cut by the kill is incomplete: it was never acknowledged to anyone.
            (parts.len() == 4).then(|| Ack {
                tag: parts[0],
                count: parts[1],
                first: parts[2],
                last: parts[3],
            })
        })
        .collect()
}

/// Checks the reopened store against the acknowledgements; returns the log's last position.
fn check(dir: &Path, durability: Durability, acks: &[Ack], round: usize) -> u64 {
    let store = Store::open(config(dir, durability)).unwrap();
    let last = store.last_position();
    // Every event in the log belongs to a complete append: `count` events tagged alike, in a row.
    let mut by_position: HashMap<u64, (u64, u64, u64)> = HashMap::new();
    let events: Vec<_> = store.read_log(1, None).map(Result::unwrap).collect();
    assert_eq!(
        events.len() as u64,
        last,
        "round {round}: the log has a gap"
    );
    let mut i = 0;
    while i < events.len() {
        let key = codec::decode_payload::<CacheHit>(&events[i].payload)
            .unwrap()
            .cache_key;
        let parts: Vec<u64> = key.split(':').map(|p| p.parse().unwrap()).collect();
        let (tag, count) = (parts[0], parts[1]);
        assert_eq!(
            parts[2], 0,
            "round {round}: append {tag} starts mid-way at {}",
            events[i].position
        );
        for k in 0..count {
            let event = events.get(i + k as usize).unwrap_or_else(|| {
                panic!("round {round}: append {tag} is partial at the log's end")
            });
            let key = codec::decode_payload::<CacheHit>(&event.payload)
                .unwrap()
                .cache_key;
            assert_eq!(
                key,
                format!("{tag}:{count}:{k}"),
                "round {round}: partial append {tag}"
            );
            by_position.insert(event.position, (tag, count, k));
        }
        i += count as usize;
    }
    for ack in acks {
        if durability == Durability::Durable {
            assert!(
                ack.last <= last,
                "round {round}: durable append {} acknowledged at {}..={} but the log ends at {last}",
                ack.tag,
                ack.first,
                ack.last
            );
        }
        if ack.last <= last {
            for (k, position) in (ack.first..=ack.last).enumerate() {
                assert_eq!(
                    by_position.get(&position),
                    Some(&(ack.tag, ack.count, k as u64)),
                    "round {round}: acknowledged append {} is not where it was acknowledged",
                    ack.tag
                );
            }
        } else {
            assert!(
                ack.first > last,
                "round {round}: acknowledged append {} is partial",
                ack.tag
            );
        }
    }
    let report = store.verify().unwrap();
    assert!(report.ok, "round {round}: {report:?}");
    for info in store.list_checkpoints().unwrap() {
        // A checkpoint is either complete and valid or was never renamed into place.
        events_sled::verify_checkpoint(&info.path).unwrap();
    }
    store.close().unwrap();
    last
}

fn torture(durability: Durability, test_name: &str) {
    let kills: usize = std::env::var("EVENTLOG_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let acks_path: PathBuf = dir.path().join("acks");
    let mut seed = 0x2545_F491_4F6C_DD1D_u64;
    for round in 0..kills {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(
                CHILD,
                format!(
                    "{}|{}|{}",
                    store_dir.display(),
                    acks_path.display(),
                    rng(&mut seed)
                ),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + rng(&mut seed) % 400));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acks = read_acks(&acks_path);
        let last = check(&store_dir, durability, &acks, round);
        // Buffered appends lost by the crash were acknowledged, then legitimately lost: their
        // positions are given to new appends, so forget them.
        let kept: String = acks
            .iter()
            .filter(|a| a.last <= last)
            .map(|a| format!("{} {} {} {}\n", a.tag, a.count, a.first, a.last))
            .collect();
        std::fs::write(&acks_path, kept).unwrap();
    }
    let acks = read_acks(&acks_path);
    assert!(
        acks.len() > kills,
        "the writer barely wrote: {} appends",
        acks.len()
    );
}

fn maybe_child(durability: Durability) {
    if let Ok(spec) = std::env::var(CHILD) {
        let parts: Vec<&str> = spec.split('|').collect();
        child(
            Path::new(parts[0]),
            durability,
            Path::new(parts[1]),
            parts[2].parse().unwrap(),
        );
    }
}

#[test]
fn kill9_loses_no_acknowledged_durable_append() {
    maybe_child(Durability::Durable);
    torture(
        Durability::Durable,
        "kill9_loses_no_acknowledged_durable_append",
    );
}

#[test]
fn kill9_in_buffered_mode_keeps_a_whole_prefix() {
    maybe_child(Durability::Buffered);
    torture(
        Durability::Buffered,
        "kill9_in_buffered_mode_keeps_a_whole_prefix",
    );
}
