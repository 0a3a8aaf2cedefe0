//! Reading a store the daemon holds: `log`, `stream`, `streams`, `types` and `info` read it
//! live, read-only, from its log files (positions continuous, every event equal to what the
//! store shows once the daemon stopped), and `log --follow` prints events as they are appended.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{
    arg, dump, dump_bin, json_lines, json_object, signal, spawn_writer, stderr, wait_started,
    wait_until,
};
use serde_json::Value;

fn positions(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_live_store_is_read_read_only_and_followed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = arg(&store);
    let mut daemon = spawn_writer(&["--store", s, "--rate", "500", "--json", "--seed", "11"]);
    let _logs = wait_started(&mut daemon);

    // The store is locked (sled data needs the daemon) ...
    let verify = dump(&["--store", s, "verify"]);
    assert_eq!(verify.status.code(), Some(2));
    assert!(
        stderr(&verify).contains("in use by a running process"),
        "{}",
        stderr(&verify)
    );
    // ... and its log is read live.
    let mut live = Vec::new();
    assert!(wait_until(Duration::from_secs(30), || {
        let output = dump(&["--store", s, "log", "--json"]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        live = json_lines(&output);
        live.len() >= 20
    }));
    assert_eq!(
        positions(&live),
        (1..=live.len() as u64).collect::<Vec<_>>()
    );

    // `log --follow` from after what was read: prints events appended after it started.
    let from = live.len() as u64 + 1;
    let mut follower = Command::new(dump_bin())
        .args(["--store", s, "log", "--follow", "--json", "--from"])
        .arg(from.to_string())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    let reading = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut followed: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while followed.len() < 30 && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            followed.push(serde_json::from_str(&line).unwrap());
        }
    }
    follower.kill().unwrap();
    let _ = follower.wait();
    drop(rx);
    let _ = reading.join();
    assert!(followed.len() >= 30, "followed {} events", followed.len());
    assert_eq!(
        positions(&followed),
        (from..from + followed.len() as u64).collect::<Vec<_>>()
    );

    // The other live commands.
    let streams = json_lines(&dump(&["--store", s, "streams", "--json"]));
    assert!(!streams.is_empty());
    let first = &streams[0];
    let (t, id) = (
        first["aggregate_type"].as_str().unwrap(),
        first["aggregate_id"].as_str().unwrap(),
    );
    let stream = json_lines(&dump(&["--store", s, "stream", t, id, "--json"]));
    assert!(stream.len() as u64 >= first["version"].as_u64().unwrap());
    for (v, event) in stream.iter().enumerate() {
        assert_eq!(event["version"].as_u64().unwrap(), v as u64 + 1);
    }
    let types = dump(&["--store", s, "types", "--json"]);
    assert_eq!(types.status.code(), Some(0), "{}", stderr(&types));
    assert!(!json_lines(&types).is_empty());
    let info = json_object(&dump(&["--store", s, "info", "--json"]));
    assert_eq!(info["live"], true);
    assert!(info["last_position"].as_u64().unwrap() >= live.len() as u64);

    signal(&daemon, "TERM");
    let output = daemon.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // What was read live is what the store holds once the daemon stopped.
    let after = json_lines(&dump(&["--store", s, "log", "--json"]));
    assert!(after.len() >= live.len() + followed.len());
    assert_eq!(&after[..live.len()], &live[..]);
    let at = (from - 1) as usize;
    assert_eq!(&after[at..at + followed.len()], &followed[..]);
    let stream_after = json_lines(&dump(&["--store", s, "stream", t, id, "--json"]));
    assert_eq!(&stream_after[..stream.len()], &stream[..]);
}
