//! `--ack-log`: after a clean run, every append call left a `begin` and an `ack` line, the `ack`
//! ranges tile the log exactly, and each range holds the events whose ids the line hashes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::process::Command;

use eventlog::{EventLog, EventLogConfig, Position};

#[test]
fn ack_lines_name_every_append_by_positions_and_event_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let acks = dir.path().join("acks.log");
    let output = Command::new(env!("CARGO_BIN_EXE_omni-writer"))
        .args(["--store", store.to_str().unwrap()])
        .args(["--ack-log", acks.to_str().unwrap()])
        .args(["--pipelines", "6", "--seed", "3", "--workers", "3"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let log =
        EventLog::open(EventLogConfig::new(&store).registry(omni_domain::registry())).unwrap();
    let events: Vec<_> = log
        .read_log(Position(1), None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let last = log.last_position().unwrap();
    assert_eq!(events.len() as u64, last);

    let text = std::fs::read_to_string(&acks).unwrap();
    let mut begins: HashMap<String, usize> = HashMap::new();
    let mut ranges = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields[0] {
            "begin" => {
                assert_eq!(fields.len(), 4, "{line}");
                *begins.entry(fields[3].to_string()).or_default() += 1;
            }
            "ack" => {
                assert_eq!(fields.len(), 5, "{line}");
                let first: u64 = fields[1].parse().unwrap();
                let last: u64 = fields[2].parse().unwrap();
                let count: u64 = fields[3].parse().unwrap();
                assert_eq!(last + 1 - first, count, "{line}");
                let mut hasher = blake3::Hasher::new();
                for event in &events[(first - 1) as usize..last as usize] {
                    hasher.update(event.metadata.event_id.as_bytes());
                }
                assert_eq!(hasher.finalize().to_hex().as_str(), fields[4], "{line}");
                ranges.push((first, last, fields[4].to_string()));
            }
            other => panic!("unknown line kind {other}: {line}"),
        }
    }
    // A clean run: one begin per ack, and the acks tile 1..=last.
    ranges.sort();
    assert_eq!(ranges.len(), begins.values().sum::<usize>());
    let mut next = 1;
    for (first, last, hash) in &ranges {
        assert_eq!(*first, next, "gap or overlap before {first}");
        assert!(begins.contains_key(hash));
        next = last + 1;
    }
    assert_eq!(next, last + 1);
    assert!(ranges.len() > 6, "only {} appends", ranges.len());
    log.close().unwrap();
}
