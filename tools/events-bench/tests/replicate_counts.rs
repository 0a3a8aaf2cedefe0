#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! W-replicate runs end to end against a real `nats-server` (Debian's, as CI installs it): both
//! streams hold exactly the log, every phase reports a rate, and the baselines report null.
//! Nothing about speed is asserted. `--tiny`: 10 000 events.

use std::process::Command;

#[test]
fn w_replicate_ships_exactly_the_log_and_reports_every_phase() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_events-bench"))
        .args(["--tiny", "--json", "--workload", "W-replicate"])
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "events-bench failed:\n{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let workload = &json["workloads"]["W-replicate"];
    let events = workload["events"].as_u64().unwrap();
    assert_eq!(events, 10_000, "{workload}");
    assert!(workload["eventlog"].as_f64().unwrap() > 0.0, "{workload}");
    assert!(workload["sqlite"].is_null() && workload["raw_sled"].is_null());

    let figures = &workload["details"]["eventlog"]["replicate"];
    assert_eq!(
        figures["stream_messages"].as_u64(),
        Some(events),
        "{figures}"
    );
    assert_eq!(figures["publish_errors"].as_u64(), Some(0), "{figures}");
    let alone = figures["append_alone_per_s"].as_array().unwrap();
    assert_eq!(alone.len(), 2, "{figures}");
    for rate in alone.iter().chain([
        &figures["append_with_replication_per_s"],
        &figures["bare_publish_per_s"],
    ]) {
        assert!(rate.as_f64().unwrap() > 0.0, "{figures}");
    }
    let lag = &figures["lag"];
    assert!(lag["samples"].as_u64().unwrap() >= 2, "{lag}");
    assert!(lag["max_events"].as_u64().unwrap() <= events, "{lag}");
    // The run's directory is removed at the end.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
