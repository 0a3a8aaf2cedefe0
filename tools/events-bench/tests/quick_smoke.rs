#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Smoke test: the runner runs end to end and prints the JSON object with the three required keys.
//! It asserts nothing about speed. Uses `--tiny` (a hundredth of W) so it stays fast in a debug
//! build.

use std::process::Command;

#[test]
fn tiny_json_run_has_the_three_keys_with_positive_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_events-bench"))
        .args([
            "--tiny",
            "--json",
            "--workload",
            "W-append-single",
            "--workload",
            "W-read-all",
        ])
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "events-bench failed:\n{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    let workloads = json["workloads"].as_object().expect("a workloads object");
    assert_eq!(workloads.len(), 2, "{workloads:?}");
    for name in ["W-append-single", "W-read-all"] {
        let workload = &workloads[name];
        for system in ["eventlog", "sqlite", "raw_sled"] {
            let rate = workload[system]
                .as_f64()
                .unwrap_or_else(|| panic!("{name}.{system} is not a number: {workload}"));
            assert!(rate > 0.0, "{name}.{system} = {rate}");
        }
        assert!(workload["events"].as_u64().unwrap() > 0);
    }
    // The run's directory is removed at the end.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn loads_and_subscriptions_report_figures_and_null_for_baselines_without_push() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_events-bench"))
        .args([
            "--tiny",
            "--json",
            "--workload",
            "W-load",
            "--workload",
            "W-subscribe",
            "--workload",
            "W-read-all-scan",
        ])
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "events-bench failed:\n{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for name in ["W-load", "W-read-all-scan"] {
        let workload = &json["workloads"][name];
        for system in ["eventlog", "sqlite", "raw_sled"] {
            assert!(
                workload[system].as_f64().unwrap() > 0.0,
                "{name}: {workload}"
            );
        }
    }
    assert_eq!(json["workloads"]["W-read-all-scan"]["zero_copy"], true);
    assert!(
        json["workloads"]["W-load"]["load_ms"]["sqlite"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let subscribe = &json["workloads"]["W-subscribe"];
    assert!(subscribe["eventlog"].as_f64().unwrap() > 0.0, "{subscribe}");
    assert!(subscribe["sqlite"].is_null() && subscribe["raw_sled"].is_null());
    let p50 = subscribe["deliver_p50_us"].as_f64().unwrap();
    let p99 = subscribe["deliver_p99_us"].as_f64().unwrap();
    assert!(p50 > 0.0 && p99 >= p50, "{subscribe}");
}
