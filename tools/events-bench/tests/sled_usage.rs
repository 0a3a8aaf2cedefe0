#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `sled-usage` counts a closed store's live index data: after a tiny W-append-single run (1 000
//! events over 100 aggregates), one stream-index key per aggregate, live bytes no more than
//! sled's files, and the log's segment files measured apart.

use std::process::Command;

fn run(args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_events-bench"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "events-bench {args:?} failed:\n{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let start = stdout.find('{').expect("a JSON object");
    serde_json::from_str(&stdout[start..]).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn counts_one_stream_key_per_aggregate_and_no_more_live_bytes_than_sled_holds() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let appended = run(&[
        "run-one",
        "--workload",
        "W-append-single",
        "--system",
        "eventlog",
        "--dir",
        root,
        "--scale",
        "tiny",
    ]);
    assert_eq!(appended["events"], 1_000);
    let store = dir.path().join("eventlog").join("W-append-single");
    let usage = run(&["sled-usage", "--store", store.to_str().unwrap()]);

    let streams = &usage["trees"]["log"]["S"];
    assert_eq!(streams["keys"], 100, "{usage}");
    let live = usage["sled_live_bytes"].as_u64().unwrap();
    let sled_files = usage["sled_on_disk"]["apparent"].as_u64().unwrap();
    assert!(live > 0 && live <= sled_files, "{usage}");
    // The log holds the events: at least their 200-byte payloads.
    let log_files = usage["log_on_disk"]["apparent"].as_u64().unwrap();
    assert!(log_files >= 200 * 1_000, "{usage}");
}

#[test]
fn a_missing_store_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let output = Command::new(env!("CARGO_BIN_EXE_events-bench"))
        .args(["sled-usage", "--store"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nothing-here"), "{stderr}");
}
